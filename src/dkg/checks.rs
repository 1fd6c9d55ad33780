//! The checks every round makes before it looks at content: one message
//! per expected sender, headers and signatures, and echoes.
//!
//! Spec: `ceremony-specs/protocol.md`, §3.4 "Checks on every received
//! message" and §4 "Echoes".

use std::collections::BTreeMap;

use super::error::{Counted, DkgError, Evidence, LocalError, Mislabel};
use super::messages::{
    self, AnySigned, Body, DealBundle, Hello, IntoAny, MessageKind, Receipt, Signed,
};
use super::plan::{Context, Plan};
use crate::ceremony::OperatorId;
use crate::wire::Bytes;

/// Checks that `messages` holds exactly one message from each sender of
/// `kind` the plan names (protocol.md §3.4).
pub(crate) fn check_set<T>(
    plan: &Plan,
    kind: MessageKind,
    messages: &BTreeMap<OperatorId, T>,
) -> Result<(), DkgError> {
    let expected = plan.senders(kind);
    if !messages.keys().eq(expected.iter()) {
        return Err(DkgError::WrongMessageSet {
            kind,
            expected: expected.to_vec(),
            got: messages.keys().copied().collect(),
        });
    }
    Ok(())
}

/// Checks a message's header and signature against its authenticated sender
/// (protocol.md §3.4, checks 2–4; check 1, decoding, is the transport's).
pub(crate) fn check_signed<T: Body>(
    context: &Context,
    session: &[u8; 32],
    sender: OperatorId,
    message: &Signed<T>,
) -> Result<(), DkgError>
where
    Signed<T>: IntoAny,
{
    let channel = || {
        Box::new(Evidence::Channel {
            peer: sender,
            message: message.clone().into_any(),
        })
    };
    let header = &message.header;
    if header.version != messages::PROTOCOL_VERSION
        || header.kind != T::KIND
        || header.sender != sender
    {
        return Err(DkgError::WrongMessage {
            culprit: sender,
            expected: T::KIND,
            got: Mislabel::Header {
                version: header.version,
                kind: header.kind,
                sender: header.sender,
            },
            evidence: channel(),
        });
    }
    let valid = context
        .key(sender)
        .is_some_and(|key| message.signature_valid(key));
    if !valid {
        return Err(DkgError::BadSignature {
            culprit: sender,
            kind: T::KIND,
            evidence: channel(),
        });
    }
    if header.session.0 != *session {
        return Err(DkgError::WrongSession {
            culprit: sender,
            kind: T::KIND,
            evidence: channel(),
        });
    }
    Ok(())
}

/// One echo report: the reporter, its receipts of the echoed round, and the
/// signed message carrying them.
pub(crate) type Report<'a> = (OperatorId, &'a [Receipt], AnySigned);

/// Checks echoes (protocol.md §4): every reporter's receipts of the
/// previous round's broadcasts must be well-formed (one per sender of
/// `echoed`, in the plan's order), signed by their senders, and identical
/// to every other reporter's, and to `own` (this participant's own
/// receipts, when it carries none in a message of this round). Two
/// different receipts for one sender prove that sender equivocated.
pub(crate) fn check_echoes(
    context: &Context,
    echoed: MessageKind,
    echoed_session: &[u8; 32],
    reports: &[Report<'_>],
    own: Option<&[Receipt]>,
) -> Result<(), DkgError> {
    for (reporter, receipts, carrier) in reports {
        check_receipts(context, echoed, echoed_session, *reporter, receipts, || {
            carrier.clone()
        })?;
    }
    let echoes: Vec<&[Receipt]> = reports.iter().map(|(_, receipts, _)| *receipts).collect();
    check_agreement(context, echoed, echoed_session, &echoes, own)
}

/// The first half of [`check_echoes`], for one reporter: its receipts are
/// one per sender of `echoed`, in the plan's order, each signed by its
/// sender. `carrier` gives the message carrying them, the evidence.
pub(crate) fn check_receipts(
    context: &Context,
    echoed: MessageKind,
    echoed_session: &[u8; 32],
    reporter: OperatorId,
    receipts: &[Receipt],
    carrier: impl Fn() -> AnySigned,
) -> Result<(), DkgError> {
    let senders = context.plan.senders(echoed);
    let evidence = || Box::new(Evidence::Message { message: carrier() });
    if receipts.len() != senders.len() {
        return Err(DkgError::WrongCount {
            culprit: reporter,
            what: Counted::Receipts(echoed),
            expected: senders.len(),
            got: receipts.len(),
            evidence: evidence(),
        });
    }
    for (receipt, &sender) in receipts.iter().zip(senders) {
        let signed = receipt.operator == sender
            && context
                .key(sender)
                .is_some_and(|key| receipt.valid(echoed, echoed_session, key));
        if !signed {
            return Err(DkgError::InvalidReceipt {
                culprit: reporter,
                operator: receipt.operator,
                echoed,
                evidence: evidence(),
            });
        }
    }
    Ok(())
}

/// The second half of [`check_echoes`]: every reporter's receipts (each
/// already checked by [`check_receipts`]) and `own` agree, sender by
/// sender; two that differ prove their sender equivocated.
pub(crate) fn check_agreement(
    context: &Context,
    echoed: MessageKind,
    echoed_session: &[u8; 32],
    echoes: &[&[Receipt]],
    own: Option<&[Receipt]>,
) -> Result<(), DkgError> {
    for position in 0..context.plan.senders(echoed).len() {
        let mut seen: Option<&Receipt> = own.and_then(|o| o.get(position));
        for receipts in echoes {
            let Some(receipt) = receipts.get(position) else {
                continue;
            };
            match seen {
                None => seen = Some(receipt),
                Some(first) if first != receipt => {
                    return Err(DkgError::Equivocation {
                        culprit: receipt.operator,
                        echoed,
                        evidence: Box::new(Evidence::Equivocation {
                            echoed,
                            session: Bytes(*echoed_session),
                            first: *first,
                            second: *receipt,
                        }),
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// What rounds 3, 4 and the end check first, in order: one message per
/// sender of `T`, ours among them unchanged if we send one, every header
/// and signature (local blame), then the echoes of the previous round that
/// they carry (compared with `own_receipts`, our receipts of that round,
/// when we send no `T`). Returns the messages in the plan's order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn receive<T: Body + PartialEq>(
    context: &Context,
    session: &[u8; 32],
    own: Option<&Signed<T>>,
    own_receipts: Option<&[Receipt]>,
    messages: &BTreeMap<OperatorId, Signed<T>>,
    echoed: MessageKind,
    receipts: fn(&T) -> &[Receipt],
) -> Result<Vec<Signed<T>>, DkgError>
where
    Signed<T>: IntoAny,
{
    check_set(&context.plan, T::KIND, messages)?;
    if let Some(own) = own
        && messages.get(&own.header.sender) != Some(own)
    {
        return Err(LocalError::OwnMessageMissing(T::KIND).into());
    }
    for (&sender, message) in messages {
        check_signed(context, session, sender, message)?;
    }
    let list: Vec<Signed<T>> = messages.values().cloned().collect();
    let reports: Vec<Report<'_>> = list
        .iter()
        .map(|m| (m.header.sender, receipts(&m.body), m.clone().into_any()))
        .collect();
    check_echoes(
        context,
        echoed,
        session,
        &reports,
        if own.is_some() { None } else { own_receipts },
    )?;
    Ok(list)
}

/// Checks one hello (protocol.md, Round 1, Step 1; and transcript
/// verification): header, signature, the definition hash, the version and
/// the index.
pub(crate) fn check_hello(
    context: &Context,
    sender: OperatorId,
    hello: &Signed<Hello>,
) -> Result<(), DkgError> {
    let header = &hello.header;
    if header.version != messages::PROTOCOL_VERSION
        || header.kind != MessageKind::Hello
        || header.sender != sender
    {
        check_signed(context, &context.definition_hash.0, sender, hello)?;
    }
    let valid = context
        .key(sender)
        .is_some_and(|key| hello.signature_valid(key));
    if !valid {
        return Err(DkgError::BadSignature {
            culprit: sender,
            kind: MessageKind::Hello,
            evidence: Box::new(Evidence::Channel {
                peer: sender,
                message: hello.clone().into_any(),
            }),
        });
    }
    if header.session != context.definition_hash
        || hello.body.definition_hash != context.definition_hash
    {
        return Err(DkgError::DefinitionMismatch {
            culprit: sender,
            theirs: hello.body.definition_hash,
            ours: context.definition_hash,
            evidence: Box::new(Evidence::Message {
                message: hello.clone().into_any(),
            }),
        });
    }
    if hello.body.version != messages::PROTOCOL_VERSION || hello.body.operator != sender {
        return Err(DkgError::WrongMessage {
            culprit: sender,
            expected: MessageKind::Hello,
            got: Mislabel::Hello {
                version: hello.body.version,
                operator: hello.body.operator,
            },
            evidence: Box::new(Evidence::Message {
                message: hello.clone().into_any(),
            }),
        });
    }
    Ok(())
}

/// Checks that a deal signed in the session made by `hellos` echoes exactly
/// those hellos (protocol.md, Round 2, Step 2).
pub(crate) fn check_hello_echoes(
    context: &Context,
    hellos: &[Signed<Hello>],
    deal: &Signed<DealBundle>,
) -> Result<(), DkgError> {
    let dealer = deal.header.sender;
    let slots = context.plan.slots();
    let carrier = || {
        Box::new(Evidence::Message {
            message: deal.clone().into_any(),
        })
    };
    if deal.body.hellos.len() != slots.len() {
        return Err(DkgError::WrongCount {
            culprit: dealer,
            what: Counted::Receipts(MessageKind::Hello),
            expected: slots.len(),
            got: deal.body.hellos.len(),
            evidence: carrier(),
        });
    }
    for ((receipt, hello), &slot) in deal.body.hellos.iter().zip(hellos).zip(slots) {
        let signed = receipt.operator == slot
            && context.key(slot).is_some_and(|key| {
                receipt.valid(MessageKind::Hello, &context.definition_hash.0, key)
            });
        if !signed {
            return Err(DkgError::InvalidReceipt {
                culprit: dealer,
                operator: receipt.operator,
                echoed: MessageKind::Hello,
                evidence: carrier(),
            });
        }
        if *receipt != Receipt::of(hello) {
            return Err(DkgError::HelloEchoMismatch {
                culprit: dealer,
                operator: receipt.operator,
                evidence: Box::new(Evidence::HelloEcho {
                    deal: deal.clone(),
                    hellos: hellos.to_vec(),
                }),
            });
        }
    }
    Ok(())
}
