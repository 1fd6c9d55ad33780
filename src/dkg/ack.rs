//! Round 2: check every deal and this holder's shares, and acknowledge with
//! echoes and complaints (protocol.md, "Round 2").

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};

use super::checks::{check_hello_echoes, check_set, check_signed};
use super::error::{DkgError, Evidence, LocalError, Mislabel};
use super::messages::{
    Ack, Complaint, DealBundle, IntoAny, MessageKind, Receipt, ShareBundle, Signed,
};
use super::signing;
use super::state;
use super::vss::{self, ParsedDeal, ShareCheck};
use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityKey;
use crate::crypto::{G1Point, Scalar};

/// Round 2 (protocol.md, Round 2): check every deal and, for a holder, its
/// shares; acknowledge with echoes and complaints.
///
/// Problems with a deal's content or with shares become complaints in the
/// ack, so that every participant can judge them in round 3; only problems
/// seen on a peer's channel (bad signature, wrong session) abort here.
/// `shares` holds one bundle per dealer for a holder, and is empty for a
/// participant that holds no share.
///
/// # Errors
///
/// A [`DkgError`] naming the participant whose message is invalid.
pub fn part2<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round1,
    identity: &IdentityKey,
    deals: &BTreeMap<OperatorId, Signed<DealBundle>>,
    shares: &BTreeMap<OperatorId, Signed<ShareBundle>>,
    rng: &mut R,
) -> Result<(state::Round2, Signed<Ack>), DkgError> {
    let state::Round1 {
        context,
        me,
        session,
        hellos,
        deal: my_deal,
    } = state;
    let plan = &context.plan;
    let params = plan.params();
    let my_index = plan.share_index(me);
    check_set(plan, MessageKind::Deal, deals)?;
    if my_index.is_some() {
        check_set(plan, MessageKind::Shares, shares)?;
    } else if !shares.is_empty() {
        return Err(DkgError::WrongMessageSet {
            kind: MessageKind::Shares,
            expected: Vec::new(),
            got: shares.keys().copied().collect(),
        });
    }
    if let Some(own) = &my_deal
        && deals.get(&me) != Some(own)
    {
        return Err(LocalError::OwnMessageMissing(MessageKind::Deal).into());
    }
    // Round 2, Step 1
    // > Check every deal's header and signature. A deal for another session
    // > is explained by the hello echoes: an operator that signed two hellos
    // > equivocated; otherwise the dealer is at fault.
    for (&dealer, deal) in deals {
        if let Err(err) = check_signed(&context, &session, dealer, deal) {
            if matches!(err, DkgError::WrongSession { .. })
                && let Some(position) = deal
                    .body
                    .hellos
                    .iter()
                    .zip(&hellos)
                    .position(|(r, h)| *r != Receipt::of(h))
                && let (Some(theirs), Some(ours)) =
                    (deal.body.hellos.get(position), hellos.get(position))
                && context.key(theirs.operator).is_some_and(|key| {
                    theirs.valid(MessageKind::Hello, &context.definition_hash.0, key)
                })
            {
                // Two hellos signed by one participant: it equivocated, or
                // the dealer replayed an old one. Nothing here tells which.
                return Err(DkgError::ConflictingHellos {
                    operator: theirs.operator,
                    reporter: dealer,
                    receiver: me,
                    evidence: Box::new(Evidence::Equivocation {
                        echoed: MessageKind::Hello,
                        session: context.definition_hash,
                        first: Receipt::of(ours),
                        second: *theirs,
                    }),
                });
            }
            return Err(err);
        }
    }
    for (&dealer, bundle) in shares {
        check_signed(&context, &session, dealer, bundle)?;
        if bundle.body.recipient != me {
            return Err(DkgError::WrongMessage {
                culprit: dealer,
                expected: MessageKind::Shares,
                got: Mislabel::SharesFor(bundle.body.recipient),
                evidence: Box::new(Evidence::Channel {
                    peer: dealer,
                    message: bundle.clone().into_any(),
                }),
            });
        }
    }
    // Round 2, Step 2
    // > Check the hello echoes in every deal against the hellos received: a
    // > deal signed in our session must echo exactly the hellos that make it.
    let deals: Vec<Signed<DealBundle>> = deals.values().cloned().collect();
    for deal in &deals {
        check_hello_echoes(&context, &hellos, deal)?;
    }
    // Round 2, Step 3
    // > Check every deal's counts and encodings (points on the curve and not
    // > the identity; the subgroup check is deferred), then every proof of
    // > knowledge (one random linear combination; on failure, each deal in
    // > full, subgroup included, and each proof on its own), then, for a
    // > split or a reshare, that each constant commitment is the point the
    // > plan fixes. An invalid deal becomes a BadDeal complaint.
    let kind = plan.kind();
    let mut complaints = Vec::new();
    let mut parsed: Vec<Option<ParsedDeal>> = Vec::with_capacity(deals.len());
    for deal in &deals {
        match vss::parse_deal_subgroup_deferred(plan, deal) {
            Ok(p) => parsed.push(Some(p)),
            Err(_) => {
                complaints.push(Complaint::BadDeal { deal: deal.clone() });
                parsed.push(None);
            }
        }
    }
    let candidates: Vec<&ParsedDeal> = parsed.iter().flatten().collect();
    let mut bad = Vec::new();
    if vss::first_invalid_proof(kind, &session, &candidates, rng).is_some() {
        for (position, deal) in parsed.iter().enumerate() {
            let Some(deal) = deal else { continue };
            let in_subgroup = deals
                .get(position)
                .is_some_and(|d| vss::parse_deal(plan, d).is_ok());
            if !in_subgroup
                || (0..deal.proofs.len()).any(|v| !vss::proof_valid(kind, &session, deal, v))
            {
                bad.push(position);
            }
        }
    }
    for (position, deal) in parsed.iter().enumerate() {
        if let Some(deal) = deal
            && !bad.contains(&position)
            && vss::first_wrong_constant(plan, deal)?.is_some()
        {
            bad.push(position);
        }
    }
    bad.sort_unstable();
    for position in bad {
        if let (Some(slot), Some(deal)) = (parsed.get_mut(position), deals.get(position)) {
            *slot = None;
            complaints.push(Complaint::BadDeal { deal: deal.clone() });
        }
    }

    // Round 2, Step 4
    // > Check this holder's shares from every valid deal: bound to the
    // > deal's hash, one per validator, canonical, and matching the
    // > commitments (their sum against the aggregated commitments as one
    // > random linear combination; on failure, each dealer's as one, then
    // > one by one). Bad shares become a BadShares complaint revealing them.
    let mut received: Vec<Vec<Scalar>> = vec![Vec::new(); deals.len()];
    let mut aggregated = None;
    if let Some(x) = my_index {
        for (position, (deal, bundle)) in parsed.iter().zip(shares.values()).enumerate() {
            let Some(_) = deal else { continue };
            let hash_ok = deals
                .get(position)
                .is_some_and(|d| d.body_hash() == bundle.body.deal_hash.0);
            let decoded: Option<Vec<Scalar>> =
                if hash_ok && bundle.body.shares.len() == params.validators() {
                    bundle
                        .body
                        .shares
                        .iter()
                        .map(|s| Scalar::from_bytes_be(s.expose_secret()))
                        .collect()
                } else {
                    None
                };
            match decoded {
                Some(values) => {
                    if let Some(slot) = received.get_mut(position) {
                        *slot = values;
                    }
                }
                None => complaints.push(Complaint::BadShares {
                    shares: bundle.clone(),
                }),
            }
        }
        let checks: Vec<ShareCheck<'_>> = parsed
            .iter()
            .zip(&received)
            .filter_map(|(deal, values)| {
                let deal = deal.as_ref()?;
                (values.len() == params.validators()).then_some(ShareCheck {
                    dealer: deal.dealer,
                    commitments: &deal.commitments,
                    shares: values,
                })
            })
            .collect();
        // The shares in aggregate first: x_v = Σ_j s_vj against A_{v,k} =
        // Σ_j C_{vj,k}, which is all the key share needs; the dealers one by
        // one only if that fails, to name them.
        aggregated = (checks.len() == deals.len()).then(|| {
            let commitments: Vec<&[Vec<G1Point>]> = checks.iter().map(|c| c.commitments).collect();
            signing::aggregate(&params, &commitments)
        });
        let aggregate_valid = aggregated.as_ref().is_some_and(|aggregated| {
            let per_validator: Vec<Vec<G1Point>> = aggregated
                .chunks(params.threshold())
                .map(<[G1Point]>::to_vec)
                .collect();
            let sums: Vec<Scalar> = (0..params.validators())
                .map(|v| {
                    checks
                        .iter()
                        .filter_map(|c| c.shares.get(v))
                        .fold(Scalar::ZERO, |acc, s| acc.add(s))
                })
                .collect();
            let total = ShareCheck {
                dealer: me,
                commitments: &per_validator,
                shares: &sums,
            };
            vss::first_invalid_share(x, std::slice::from_ref(&total), rng).is_none()
        });
        if !aggregate_valid && vss::first_invalid_share(x, &checks, rng).is_some() {
            for check in &checks {
                let bad = check
                    .commitments
                    .iter()
                    .zip(check.shares)
                    .any(|(c, s)| !vss::share_valid(x, c, s));
                if bad && let Some(bundle) = shares.get(&check.dealer) {
                    complaints.push(Complaint::BadShares {
                        shares: bundle.clone(),
                    });
                }
            }
        }
    }
    complaints.sort_by_key(Complaint::dealer);

    // Round 2, Step 5
    // > Broadcast a signed ack: a receipt of every deal, and the complaints.
    let ack = Ack {
        deals: deals.iter().map(Receipt::of).collect(),
        complaints,
    };
    let ack = Signed::sign(identity, session, me, ack);
    let state = state::Round2 {
        context,
        me,
        session,
        hellos,
        deals,
        parsed,
        shares: received,
        aggregated,
        ack: ack.clone(),
    };
    Ok((state, ack))
}
