//! Judging a complaint (protocol.md, Round 3, Step 3): its evidence either
//! convicts the dealer or the complainer, and every participant reaches the
//! same verdict from the same signed messages.

use super::error::{Counted, DkgError, Evidence, Item, LocalError};
use super::messages::{Ack, Complaint, DealBundle, MessageKind, Receipt, ShareBundle, Signed};
use super::plan::Context;
use super::vss;
use crate::crypto::Scalar;
use crate::wire::Bytes;

/// Judges one complaint against `agreed`, the accused dealer's deal as every
/// participant holds it after the echo check.
pub(crate) fn judge(
    context: &Context,
    session: &[u8; 32],
    agreed: Option<&Signed<DealBundle>>,
    ack: &Signed<Ack>,
    complaint: &Complaint,
) -> DkgError {
    let plan = &context.plan;
    let complainer = ack.header.sender;
    let dealer = complaint.dealer();
    let false_complaint = || DkgError::FalseComplaint {
        culprit: complainer,
        dealer,
        evidence: Box::new(Evidence::Ack {
            ack: ack.clone(),
            deal: agreed.cloned(),
        }),
    };
    let Some(agreed) = agreed else {
        return false_complaint();
    };
    let (Some(key), Some(position)) = (
        context.key(dealer),
        plan.dealers().iter().position(|&d| d == dealer),
    ) else {
        return false_complaint();
    };
    // Round 3, Step 3
    // > The deal judged against must be the one the complainer acknowledged:
    // > its receipt in the complainer's ack, in the ack's session, signed by
    // > the dealer. Otherwise the evidence proves nothing about this ceremony.
    let acknowledged = ack.body.deals.get(position) == Some(&Receipt::of(agreed))
        && agreed.header.session == ack.header.session
        && agreed.header.kind == MessageKind::Deal
        && agreed.signature_valid(key);
    if !acknowledged {
        return LocalError::EvidenceNotAcknowledged(complainer).into();
    }
    match complaint {
        Complaint::BadDeal { deal } => {
            let genuine = deal.signature_valid(key)
                && deal.header.session.0 == *session
                && deal.header.kind == MessageKind::Deal;
            if !genuine {
                return false_complaint();
            }
            if deal != agreed {
                return DkgError::Equivocation {
                    culprit: dealer,
                    echoed: MessageKind::Deal,
                    evidence: Box::new(Evidence::Equivocation {
                        echoed: MessageKind::Deal,
                        session: Bytes(*session),
                        first: Receipt::of(agreed),
                        second: Receipt::of(deal),
                    }),
                };
            }
            deal_verdict(context, session, deal).unwrap_or_else(false_complaint)
        }
        Complaint::BadShares { shares } => {
            let genuine = shares.signature_valid(key)
                && shares.header.session.0 == *session
                && shares.header.kind == MessageKind::Shares
                && shares.body.recipient == complainer
                && plan.share_index(complainer).is_some();
            if !genuine {
                return false_complaint();
            }
            shares_verdict(context, session, agreed, shares).unwrap_or_else(false_complaint)
        }
    }
}

/// The dealer's fault that `deal` shows on its own, if any: it does not
/// parse (in full, subgroup included), a proof fails, or a constant
/// commitment is not the point the plan fixes.
pub(crate) fn deal_verdict(
    context: &Context,
    session: &[u8; 32],
    deal: &Signed<DealBundle>,
) -> Option<DkgError> {
    let plan = &context.plan;
    let parsed = match vss::parse_deal(plan, deal) {
        Ok(parsed) => parsed,
        Err(err) => return Some(err),
    };
    if let Some(validator) =
        (0..parsed.proofs.len()).find(|&v| !vss::proof_valid(plan.kind(), session, &parsed, v))
    {
        return Some(DkgError::InvalidProof {
            culprit: parsed.dealer,
            validator,
            evidence: Box::new(Evidence::Deal { deal: deal.clone() }),
        });
    }
    match vss::first_wrong_constant(plan, &parsed) {
        Ok(Some(validator)) => Some(vss::wrong_constant(plan, deal, validator)),
        Ok(None) => None,
        Err(err) => Some(err),
    }
}

/// The dealer's fault shown by `shares` against its deal, if any.
pub(crate) fn shares_verdict(
    context: &Context,
    session: &[u8; 32],
    deal: &Signed<DealBundle>,
    shares: &Signed<ShareBundle>,
) -> Option<DkgError> {
    let dealer = deal.header.sender;
    let complainer = shares.body.recipient;
    let evidence = || {
        Box::new(Evidence::Shares {
            deal: deal.clone(),
            shares: shares.clone(),
        })
    };
    // A deal that is invalid on its own (a point outside the subgroup, a bad
    // proof, a wrong constant) is the fault, whatever the shares.
    if let Some(fault) = deal_verdict(context, session, deal) {
        return Some(fault);
    }
    let parsed = vss::parse_deal(&context.plan, deal).ok()?;
    let x = context.plan.share_index(complainer)?;
    if shares.body.deal_hash.0 != deal.body_hash() {
        return Some(DkgError::SharesForAnotherDeal {
            culprit: dealer,
            complainer,
            evidence: evidence(),
        });
    }
    let validators = context.params().validators();
    if shares.body.shares.len() != validators {
        return Some(DkgError::WrongCount {
            culprit: dealer,
            what: Counted::Shares,
            expected: validators,
            got: shares.body.shares.len(),
            evidence: evidence(),
        });
    }
    for (validator, (bytes, commitments)) in shares
        .body
        .shares
        .iter()
        .zip(&parsed.commitments)
        .enumerate()
    {
        let Some(share) = Scalar::from_bytes_be(bytes.expose_secret()) else {
            return Some(DkgError::InvalidScalar {
                culprit: dealer,
                validator,
                item: Item::Share,
                evidence: evidence(),
            });
        };
        if !vss::share_valid(x, commitments, &share) {
            return Some(DkgError::InvalidShare {
                culprit: dealer,
                complainer,
                validator,
                evidence: evidence(),
            });
        }
    }
    None
}
