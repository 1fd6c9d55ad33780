//! Checking the evidence of a blame from public data alone.
//!
//! An abort report carries a [`DkgError`]'s [`Evidence`]; anyone holding the
//! ceremony's [`Context`] (from the cluster definition) can check that the
//! signed messages in it convict the named operator. Evidence of what
//! arrived on an authenticated channel (a bad signature, a message for
//! another session) is reported, but cannot convince a third party.

use super::checks::{check_echoes, check_hello_echoes};
use super::error::{DkgError, Evidence};
use super::finalize::parse_partials;
use super::judge::{deal_verdict, judge, shares_verdict};
use super::messages::{AnySigned, Body, MessageKind, Receipt, Signed};
use super::plan::Context;
use super::signing::{self, Statements};
use super::vss;
use crate::ceremony::OperatorId;
use crate::crypto::G2Point;

/// The outcome of checking evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The operator the evidence convicts.
    pub culprit: OperatorId,
    /// True when the evidence proves the fault to anyone; false when it only
    /// records what the accuser saw on the culprit's channel.
    pub proven: bool,
    /// The fault, in words.
    pub fault: String,
}

/// Why evidence convicts no one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the evidence does not show a fault: {0}")]
pub struct EvidenceError(pub String);

fn genuine<T: Body>(context: &Context, message: &Signed<T>) -> Result<(), EvidenceError> {
    let key = context.key(message.header.sender).ok_or_else(|| {
        EvidenceError(format!(
            "operator {} is not in the roster",
            message.header.sender
        ))
    })?;
    if message.header.kind != T::KIND || !message.signature_valid(key) {
        return Err(EvidenceError(format!(
            "the {} message is not signed by operator {}",
            T::KIND,
            message.header.sender
        )));
    }
    Ok(())
}

fn verdict(err: DkgError) -> Result<Verdict, EvidenceError> {
    match err.culprit() {
        Some(culprit) => Ok(Verdict {
            culprit,
            proven: true,
            fault: err.to_string(),
        }),
        None => Err(EvidenceError(err.to_string())),
    }
}

/// Checks `evidence` against `context` (and the layer that defines its
/// statements, for partial signatures) and returns whom it convicts.
///
/// # Errors
///
/// [`EvidenceError`] when the evidence is not signed by the accused or
/// shows no fault.
pub fn verify_evidence(
    context: &Context,
    statements: &dyn Statements,
    evidence: &Evidence,
) -> Result<Verdict, EvidenceError> {
    let plan = &context.plan;
    match evidence {
        Evidence::Message { message } => verify_message(context, message),
        Evidence::Deal { deal } => {
            genuine(context, deal)?;
            if !plan.deals(deal.header.sender) {
                return Err(EvidenceError(format!(
                    "operator {} is not a dealer of this ceremony",
                    deal.header.sender
                )));
            }
            match deal_verdict(context, &deal.header.session.0, deal) {
                Some(err) => verdict(err),
                None => Err(EvidenceError("the deal is valid".into())),
            }
        }
        Evidence::Shares { deal, shares } => {
            genuine(context, deal)?;
            genuine(context, shares)?;
            if deal.header.sender != shares.header.sender
                || deal.header.session != shares.header.session
            {
                return Err(EvidenceError(
                    "the deal and the shares are not one dealer's in one session".into(),
                ));
            }
            match shares_verdict(context, &deal.header.session.0, deal, shares) {
                Some(err) => verdict(err),
                None => Err(EvidenceError("the shares match the commitments".into())),
            }
        }
        Evidence::Equivocation {
            echoed,
            session,
            first,
            second,
        } => {
            let key = context.key(first.operator).ok_or_else(|| {
                EvidenceError(format!("operator {} is not in the roster", first.operator))
            })?;
            if first.operator != second.operator || first == second {
                return Err(EvidenceError(
                    "the receipts are not two different messages of one operator".into(),
                ));
            }
            if !first.valid(*echoed, &session.0, key) || !second.valid(*echoed, &session.0, key) {
                return Err(EvidenceError(
                    "a receipt is not signed by the operator".into(),
                ));
            }
            // Hellos are bound only to the definition, so a hello from an
            // earlier ceremony of the same definition also verifies: two
            // hellos show a conflict, not which ceremony each was for.
            let hello = *echoed == MessageKind::Hello;
            Ok(Verdict {
                culprit: first.operator,
                proven: !hello,
                fault: if hello {
                    format!(
                        "operator {} signed two different hellos for this definition (in this ceremony, or one in an earlier one)",
                        first.operator
                    )
                } else {
                    format!(
                        "operator {} signed two different {echoed} messages",
                        first.operator
                    )
                },
            })
        }
        Evidence::Ack { ack, deal } => {
            genuine(context, ack)?;
            let complaint = ack
                .body
                .complaints
                .first()
                .ok_or_else(|| EvidenceError("the ack has no complaint".into()))?;
            let deal = deal
                .as_ref()
                .ok_or_else(|| EvidenceError("the accused dealer's deal is missing".into()))?;
            genuine(context, deal)?;
            if deal.header.sender != complaint.dealer() {
                return Err(EvidenceError("the deal is not the accused dealer's".into()));
            }
            verdict(judge(
                context,
                &ack.header.session.0,
                Some(deal),
                ack,
                complaint,
            ))
        }
        Evidence::Partials {
            partials,
            ack,
            deals,
        } => {
            genuine(context, partials)?;
            genuine(context, ack)?;
            let signer = partials.header.sender;
            let Some(holder) = plan.holder_position(signer) else {
                return Err(EvidenceError(format!(
                    "operator {signer} holds no share in this ceremony"
                )));
            };
            // The deals must be those the signer acknowledged: its ack is
            // echoed in its partial signatures, and the ack echoes the deals.
            if ack.header.sender != signer
                || ack.header.session != partials.header.session
                || partials.body.acks.get(signer.position()) != Some(&Receipt::of(ack))
            {
                return Err(EvidenceError(
                    "the ack is not the one the signer echoed".into(),
                ));
            }
            if deals.iter().map(Receipt::of).collect::<Vec<_>>() != ack.body.deals {
                return Err(EvidenceError(
                    "the deals are not those the signer acknowledged".into(),
                ));
            }
            if deals.len() != plan.dealers().len() {
                return Err(EvidenceError(
                    "the evidence does not hold every deal".into(),
                ));
            }
            let mut parsed = Vec::with_capacity(deals.len());
            for (deal, &dealer) in deals.iter().zip(plan.dealers()) {
                genuine(context, deal)?;
                if deal.header.sender != dealer || deal.header.session != partials.header.session {
                    return Err(EvidenceError(
                        "the deals are not the session's, in slot order".into(),
                    ));
                }
                parsed.push(vss::parse_deal(plan, deal).map_err(|e| EvidenceError(e.to_string()))?);
            }
            let commitments: Vec<_> = parsed.iter().map(|p| p.commitments.as_slice()).collect();
            let params = plan.params();
            let keys = signing::derive_keys(&params, plan.indices(), &commitments);
            let rows = match parse_partials(context, deals, ack, partials) {
                Ok(rows) => rows,
                Err(err) => return verdict(err),
            };
            let session = partials.header.session.0;
            for (v, (row, key)) in rows.iter().zip(&keys).enumerate() {
                let hashed: Vec<G2Point> =
                    signing::messages(plan, statements, &session, v, &key.group_key)
                        .map_err(|e| EvidenceError(e.to_string()))?
                        .iter()
                        .map(|m| G2Point::hash(m))
                        .collect();
                let Some(public_share) = key.public_shares.get(holder) else {
                    continue;
                };
                for (d, (sigma, message)) in row.iter().zip(&hashed).enumerate() {
                    if !signing::signature_valid(public_share, message, sigma) {
                        return Ok(Verdict {
                            culprit: signer,
                            proven: true,
                            fault: format!(
                                "operator {signer} sent an invalid partial signature for validator {v}, {}",
                                signing::label(plan, d)
                            ),
                        });
                    }
                }
            }
            Err(EvidenceError("every partial signature is valid".into()))
        }
        Evidence::Finalize {
            finalize,
            expected_hash,
        } => {
            genuine(context, finalize)?;
            if finalize.body.transcript_hash == *expected_hash {
                return Err(EvidenceError(
                    "the operator signed the expected transcript".into(),
                ));
            }
            Ok(Verdict {
                culprit: finalize.header.sender,
                proven: false,
                fault: format!(
                    "operator {} signed transcript {} instead of {} (recompute the transcript hash to confirm)",
                    finalize.header.sender,
                    hex::encode(finalize.body.transcript_hash.0),
                    hex::encode(expected_hash.0)
                ),
            })
        }
        Evidence::Channel { peer, message } => Ok(Verdict {
            culprit: *peer,
            proven: false,
            fault: format!(
                "the accuser received a {} message on operator {peer}'s authenticated channel that failed its checks",
                message.header().kind
            ),
        }),
        Evidence::HelloEcho { deal, hellos } => {
            genuine(context, deal)?;
            if hellos.len() != plan.slots().len() {
                return Err(EvidenceError(
                    "the evidence does not hold every hello".into(),
                ));
            }
            for (hello, &slot) in hellos.iter().zip(plan.slots()) {
                genuine(context, hello)?;
                if hello.header.sender != slot || hello.header.session != context.definition_hash {
                    return Err(EvidenceError(
                        "the hellos are not this definition's, in slot order".into(),
                    ));
                }
            }
            if context.session_id(&hellos.iter().collect::<Vec<_>>()) != deal.header.session.0 {
                return Err(EvidenceError(
                    "the hellos do not make the deal's session".into(),
                ));
            }
            match check_hello_echoes(context, hellos, deal) {
                Err(err) => verdict(err),
                Ok(()) => Err(EvidenceError(
                    "the deal echoes exactly the hellos of its session".into(),
                )),
            }
        }
    }
}

fn verify_message(context: &Context, message: &AnySigned) -> Result<Verdict, EvidenceError> {
    match message {
        AnySigned::Hello(hello) => {
            genuine(context, hello)?;
            if hello.body.definition_hash != context.definition_hash
                || hello.header.session != context.definition_hash
            {
                // An operator may be in several clusters with one identity:
                // a hello for another definition shows a misconfiguration the
                // accuser saw, not a fault a third party can pin on it.
                return Ok(Verdict {
                    culprit: hello.header.sender,
                    proven: false,
                    fault: format!(
                        "operator {} holds another cluster definition",
                        hello.header.sender
                    ),
                });
            }
            if hello.body.operator != hello.header.sender
                || hello.body.version != super::messages::PROTOCOL_VERSION
            {
                return Ok(Verdict {
                    culprit: hello.header.sender,
                    proven: true,
                    fault: format!("operator {} sent a malformed hello", hello.header.sender),
                });
            }
            Err(EvidenceError("the hello is valid".into()))
        }
        AnySigned::Shares(_) => Err(EvidenceError(
            "shares alone prove nothing; the deal is needed".into(),
        )),
        carrier => {
            let header = carrier.header();
            let Some((echoed, receipts)) = carrier.receipts() else {
                return Err(EvidenceError("this message carries no echoes".into()));
            };
            let sender_key = context
                .key(header.sender)
                .ok_or_else(|| EvidenceError("unknown sender".into()))?;
            let signed = match carrier {
                AnySigned::Deal(m) => m.signature_valid(sender_key),
                AnySigned::Ack(m) => m.signature_valid(sender_key),
                AnySigned::Partials(m) => m.signature_valid(sender_key),
                AnySigned::Finalize(m) => m.signature_valid(sender_key),
                AnySigned::Hello(_) | AnySigned::Shares(_) => false,
            };
            if !signed {
                return Err(EvidenceError(format!(
                    "the message is not signed by operator {}",
                    header.sender
                )));
            }
            let session = if echoed == MessageKind::Hello {
                context.definition_hash.0
            } else {
                header.session.0
            };
            match check_echoes(
                context,
                echoed,
                &session,
                &[(header.sender, receipts, carrier.clone())],
                None,
            ) {
                Err(err) => verdict(err),
                Ok(()) => Err(EvidenceError("the echoes are well-formed".into())),
            }
        }
    }
}
