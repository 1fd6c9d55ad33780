//! Checking the evidence of a blame from public data alone.
//!
//! An abort report carries a [`DkgError`]'s [`Evidence`]; anyone holding the
//! ceremony's [`Context`] (from the cluster definition) can check that the
//! signed messages in it convict the named operator. Evidence of what
//! arrived on an authenticated channel (a bad signature, a message for
//! another session) is reported, but cannot convince a third party.

use super::messages::{AnySigned, Body, MessageKind, Signed};
use super::{Context, DkgError, Evidence, check_echoes, judge, shares_verdict, signing, vss};
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

/// Checks `evidence` against `context` and returns whom it convicts.
///
/// # Errors
///
/// [`EvidenceError`] when the evidence is not signed by the accused or
/// shows no fault.
pub fn verify_evidence(context: &Context, evidence: &Evidence) -> Result<Verdict, EvidenceError> {
    context.check().map_err(|e| EvidenceError(e.to_string()))?;
    match evidence {
        Evidence::Message { message } => verify_message(context, message),
        Evidence::Deal { deal } => {
            genuine(context, deal)?;
            let session = deal.header.session.0;
            let parsed = match vss::parse_deal(&context.params, deal) {
                Ok(parsed) => parsed,
                Err(err) => return verdict(err),
            };
            match (0..parsed.proofs.len()).find(|&v| !vss::proof_valid(&session, &parsed, v)) {
                Some(validator) => verdict(DkgError::InvalidProof {
                    culprit: parsed.dealer,
                    validator,
                    evidence: Box::new(evidence.clone()),
                }),
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
            // The deals must be those the signer acknowledged: its ack is
            // echoed in its partial signatures, and the ack echoes the deals.
            if ack.header.sender != signer
                || ack.header.session != partials.header.session
                || partials.body.acks.get(signer.position())
                    != Some(&super::messages::Receipt::of(ack))
            {
                return Err(EvidenceError(
                    "the ack is not the one the signer echoed".into(),
                ));
            }
            if deals
                .iter()
                .map(super::messages::Receipt::of)
                .collect::<Vec<_>>()
                != ack.body.deals
            {
                return Err(EvidenceError(
                    "the deals are not those the signer acknowledged".into(),
                ));
            }
            if deals.len() != context.params.operators() {
                return Err(EvidenceError(
                    "the evidence does not hold every deal".into(),
                ));
            }
            let mut parsed = Vec::with_capacity(deals.len());
            for (position, deal) in deals.iter().enumerate() {
                genuine(context, deal)?;
                if deal.header.sender.position() != position
                    || deal.header.session != partials.header.session
                {
                    return Err(EvidenceError(
                        "the deals are not the session's, in operator order".into(),
                    ));
                }
                parsed.push(
                    vss::parse_deal(&context.params, deal)
                        .map_err(|e| EvidenceError(e.to_string()))?,
                );
            }
            let commitments: Vec<_> = parsed.iter().map(|p| p.commitments.as_slice()).collect();
            let keys = signing::derive_keys(&context.params, &commitments);
            let rows = match super::parse_partials(context, deals, ack, partials) {
                Ok(rows) => rows,
                Err(err) => return verdict(err),
            };
            for (v, (row, key)) in rows.iter().zip(&keys).enumerate() {
                let hashed: Vec<G2Point> = context.plan.hashed_messages(&key.group_key);
                let Some(public_share) = key.public_shares.get(signer.position()) else {
                    continue;
                };
                for (d, (sigma, message)) in row.iter().zip(&hashed).enumerate() {
                    if !signing::signature_valid(public_share, message, sigma) {
                        return Ok(Verdict {
                            culprit: signer,
                            proven: true,
                            fault: format!(
                                "operator {signer} sent an invalid partial signature for validator {v}, deposit {d}"
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
            if hellos.len() != context.params.operators() {
                return Err(EvidenceError(
                    "the evidence does not hold every hello".into(),
                ));
            }
            for (position, hello) in hellos.iter().enumerate() {
                genuine(context, hello)?;
                if hello.header.sender.position() != position
                    || hello.header.session != context.definition_hash
                {
                    return Err(EvidenceError(
                        "the hellos are not this definition's, in operator order".into(),
                    ));
                }
            }
            if context.session_id(&hellos.iter().collect::<Vec<_>>()) != deal.header.session.0 {
                return Err(EvidenceError(
                    "the hellos do not make the deal's session".into(),
                ));
            }
            match super::check_hello_echoes(context, hellos, deal) {
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
            ) {
                Err(err) => verdict(err),
                Ok(()) => Err(EvidenceError("the echoes are well-formed".into())),
            }
        }
    }
}
