//! Round 3: judge the acks, derive the keys, and partial-sign every
//! statement (protocol.md, "Round 3").

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::checks::receive;
use super::error::{DkgError, LocalError};
use super::judge::judge;
use super::messages::{Ack, MessageKind, PartialSignatures, Receipt, Signed};
use super::signing::{self, Statements};
use super::state;
use super::vss;
use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityKey;
use crate::crypto::{G1Point, G2Point, Scalar};
use crate::wire::{Bytes, VarBytes};

/// Round 3 (protocol.md, Round 3): check the acks (echoes and complaints),
/// derive the group keys and public shares, and, for a holder,
/// partial-sign every statement of every validator.
///
/// # Errors
///
/// A [`DkgError`] naming the culprit: an equivocating dealer, a dealer
/// convicted by a complaint, or a false complainer.
pub fn part3<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round2,
    identity: &IdentityKey,
    acks: &BTreeMap<OperatorId, Signed<Ack>>,
    statements: &dyn Statements,
    rng: &mut R,
) -> Result<(state::Round3, Option<Signed<PartialSignatures>>), DkgError> {
    let state::Round2 {
        context,
        me,
        session,
        hellos,
        deals,
        parsed,
        shares,
        aggregated,
        ack: my_ack,
    } = state;
    let plan = &context.plan;
    let params = plan.params();
    // Round 3, Step 1
    // > Check every ack's header and signature.
    // Round 3, Step 2
    // > Check the deal echoes in every ack: identical receipts, or the dealer
    // > equivocated.
    let acks = receive(
        &context,
        &session,
        Some(&my_ack),
        None,
        acks,
        MessageKind::Deal,
        |a: &Ack| &a.deals,
    )?;
    // Round 3, Step 3
    // > Judge every complaint, in complainer order: the first verdict aborts
    // > the ceremony, naming the dealer or the false complainer.
    for ack in &acks {
        if let Some(complaint) = ack.body.complaints.first() {
            let agreed = plan
                .dealers()
                .iter()
                .position(|&d| d == complaint.dealer())
                .and_then(|position| deals.get(position));
            return Err(judge(&context, &session, agreed, ack, complaint));
        }
    }
    // Without complaints every deal parsed and, at a holder, every share
    // arrived.
    let commitments: Vec<&[Vec<G1Point>]> = parsed
        .iter()
        .flatten()
        .map(|p| p.commitments.as_slice())
        .collect();
    let holds = plan.share_index(me).is_some();
    if commitments.len() != deals.len()
        || (holds && shares.iter().any(|s| s.len() != params.validators()))
    {
        return Err(LocalError::SilentFailure.into());
    }
    // Round 3, Step 4
    // > Derive A_{v,k} = Σ_j C_{vj,k} over the dealers and check that each
    // > is in the prime-order subgroup (if one is not, name the first dealer
    // > whose deal has a point outside it); for a split or a reshare, check
    // > A_{v,0} is the known validator key; derive the group key Y_v =
    // > A_{v,0} and every holder's public share PK_{v,m} = Σ_k x_m^k A_{v,k};
    // > the secret share is x_{v,i} = Σ_j f_{vj}(x_i).
    let aggregated = aggregated.unwrap_or_else(|| signing::aggregate(&params, &commitments));
    vss::check_aggregate(plan, &aggregated, &deals)?;
    if let Some(known) = plan.group_keys() {
        check_known_keys(&aggregated, params.threshold(), known)?;
    }
    let keys = signing::keys_from_aggregate(&params, plan.indices(), &aggregated);
    let secret_shares: Vec<Scalar> = if holds {
        (0..params.validators())
            .map(|v| {
                shares
                    .iter()
                    .filter_map(|s| s.get(v))
                    .fold(Scalar::ZERO, |acc, s| acc.add(s))
            })
            .collect()
    } else {
        Vec::new()
    };
    drop(shares);
    // Round 3, Step 5
    // > Partial-sign every statement of every validator and broadcast the
    // > signatures with a receipt of every ack.
    let hashed = signing::hashed_messages(plan, statements, &session, &keys)?;
    let own_partials: Vec<Vec<G2Point>> = hashed
        .par_iter()
        .zip(&secret_shares)
        .map(|(messages, x)| messages.iter().map(|h| h.mul(x)).collect())
        .collect();
    // > A holder of a plan with attachments makes one per validator from
    // > its own share (§2.7) and sends them with its signatures.
    let attachments = match plan.attachment_params(me) {
        Some((spec, params)) => {
            let mut rng = &mut *rng;
            let fail = |reason| LocalError::Attachment {
                kind: spec.kind,
                reason,
            };
            let made = statements
                .attach(spec.kind, params, &secret_shares, &mut rng)
                .map_err(fail)?;
            if made.len() != secret_shares.len() {
                return Err(fail(format!(
                    "{} made for {} validators",
                    made.len(),
                    secret_shares.len()
                ))
                .into());
            }
            if let Some((v, bytes)) = made
                .iter()
                .enumerate()
                .find(|(_, b)| b.len() != spec.bytes as usize)
            {
                return Err(fail(format!(
                    "validator {v}: {} bytes made, the plan asks for {}",
                    bytes.len(),
                    spec.bytes
                ))
                .into());
            }
            made.into_iter().map(VarBytes).collect()
        }
        None => Vec::new(),
    };
    let partials = holds.then(|| {
        let body = PartialSignatures {
            acks: acks.iter().map(Receipt::of).collect(),
            signatures: own_partials
                .iter()
                .map(|row| row.iter().map(|s| Bytes(s.to_uncompressed())).collect())
                .collect(),
            attachments,
        };
        Signed::sign(identity, session, me, body)
    });
    let state = state::Round3 {
        context,
        me,
        session,
        hellos,
        deals,
        acks,
        keys,
        hashed,
        secret_shares,
        partials: partials.clone(),
        own_partials,
    };
    Ok((state, partials))
}

/// Checks that every `A_{v,0}` is the known key of validator `v`: with every
/// constant commitment checked against the plan in round 2, a mismatch means
/// the plan's known points contradict each other (a local error).
pub(crate) fn check_known_keys(
    aggregated: &[G1Point],
    threshold: usize,
    known: &[Bytes<48>],
) -> Result<(), DkgError> {
    let mismatch = aggregated
        .par_chunks(threshold)
        .zip(known)
        .position_first(|(a, key)| a.first().map(G1Point::to_bytes) != Some(key.0));
    match mismatch {
        Some(v) => Err(LocalError::KnownKeysInconsistent(v).into()),
        None => Ok(()),
    }
}
