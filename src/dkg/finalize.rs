//! Round 4 and the end: verify and combine the partial signatures, sign the
//! transcript, and check that everyone signed the same one (protocol.md,
//! "Round 4" and "Finish").

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::Output;
use super::checks::receive;
use super::error::{Counted, DkgError, Evidence, Item, LocalError};
use super::messages::{Ack, DealBundle, Finalize, MessageKind, PartialSignatures, Receipt, Signed};
use super::plan::{Context, Plan};
use super::signing::{self, Combiner, SignatureCheck, ValidatorKeys};
use super::state;
use super::transcript::{Transcript, ValidatorRecord};
use crate::ceremony::OperatorId;
use crate::crypto::G2Point;
use crate::crypto::identity::IdentityKey;
use crate::wire::Bytes;

/// Decodes and counts one holder's partial signatures.
pub(crate) fn parse_partials(
    context: &Context,
    deals: &[Signed<DealBundle>],
    ack: &Signed<Ack>,
    message: &Signed<PartialSignatures>,
) -> Result<Vec<Vec<G2Point>>, DkgError> {
    decode_partials(&context.plan, message).map_err(|fault| {
        fault.into_error(
            &context.plan,
            message.header.sender,
            Box::new(Evidence::Partials {
                partials: message.clone(),
                ack: ack.clone(),
                deals: deals.to_vec(),
            }),
        )
    })
}

/// Why one holder's partial signatures do not decode, before the evidence
/// (the message, its signer's ack and every deal) is attached.
#[derive(Debug)]
pub(crate) enum PartialsFault {
    /// Not one row per validator: as many as this.
    Rows(usize),
    /// Not as many attachments as the plan asks: as many as this.
    Attachments(usize),
    /// An attachment of the wrong length.
    AttachmentBytes {
        /// Its validator.
        validator: usize,
        /// Its length.
        got: usize,
    },
    /// A row without one signature per statement.
    Count {
        /// The row's validator.
        validator: usize,
        /// Its signatures.
        got: usize,
    },
    /// A signature that is no point of G2's subgroup.
    Point {
        /// Its validator.
        validator: usize,
        /// Its statement.
        statement: usize,
        /// Why.
        reason: crate::crypto::BlsError,
    },
}

impl PartialsFault {
    /// The error naming `signer`, with `evidence`.
    pub(crate) fn into_error(
        self,
        plan: &Plan,
        signer: OperatorId,
        evidence: Box<Evidence>,
    ) -> DkgError {
        let validators = plan.params().validators();
        let (what, expected, got) = match self {
            Self::Rows(got) => (Counted::PartialRows, validators, got),
            Self::Attachments(got) => (
                Counted::Attachments,
                plan.attachments().map_or(0, |_| validators),
                got,
            ),
            Self::AttachmentBytes { validator, got } => (
                Counted::AttachmentBytes { validator },
                plan.attachments().map_or(0, |a| a.bytes as usize),
                got,
            ),
            Self::Count { validator, got } => (
                Counted::Partials { validator },
                plan.statements().len(),
                got,
            ),
            Self::Point {
                validator,
                statement,
                reason,
            } => {
                return DkgError::InvalidPoint {
                    culprit: signer,
                    validator,
                    item: Item::Partial(signing::label(plan, statement)),
                    reason,
                    evidence,
                };
            }
        };
        DkgError::WrongCount {
            culprit: signer,
            what,
            expected,
            got,
            evidence,
        }
    }
}

/// Decodes and counts one holder's partial signatures, naming the first
/// fault in validator order (whatever the cores).
pub(crate) fn decode_partials(
    plan: &Plan,
    message: &Signed<PartialSignatures>,
) -> Result<Vec<Vec<G2Point>>, PartialsFault> {
    let rows = &message.body.signatures;
    let validators = plan.params().validators();
    if rows.len() != validators {
        return Err(PartialsFault::Rows(rows.len()));
    }
    // Round 4, Step 2
    // > First each holder's message is parsed: as many attachments as the
    // > plan asks for (V or none), each of the plan's length, otherwise
    // > `WrongCount`; what they contain no other participant can check
    // > (§2.7).
    let (attached, length) = match plan.attachments() {
        Some(a) => (validators, a.bytes as usize),
        None => (0, 0),
    };
    let attachments = &message.body.attachments;
    if attachments.len() != attached {
        return Err(PartialsFault::Attachments(attachments.len()));
    }
    if let Some((validator, a)) = attachments
        .iter()
        .enumerate()
        .find(|(_, a)| a.0.len() != length)
    {
        return Err(PartialsFault::AttachmentBytes {
            validator,
            got: a.0.len(),
        });
    }
    // Decoded on every core (a subgroup check each); the first failure in
    // validator order is the one named.
    let statements = plan.statements().len();
    rows.par_iter()
        .enumerate()
        .map(|(validator, row)| {
            if row.len() != statements {
                return Err(PartialsFault::Count {
                    validator,
                    got: row.len(),
                });
            }
            crate::collect::try_collect_exact(row.iter().enumerate().map(|(statement, bytes)| {
                G2Point::from_uncompressed(&bytes.0).map_err(|reason| PartialsFault::Point {
                    validator,
                    statement,
                    reason,
                })
            }))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// What the partial signatures are checked against.
#[derive(Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// Every validator's keys.
    pub(crate) keys: &'a [ValidatorKeys],
    /// `hashed[v][d]`: `H(m)` of validator `v`'s statement `d`.
    pub(crate) hashed: &'a [Vec<G2Point>],
    /// This holder's position among the holders and its own partial
    /// signatures, which it computed and so does not decode (and
    /// subgroup-check) again; `None` when verifying a transcript.
    pub(crate) own: Option<(usize, &'a [Vec<G2Point>])>,
}

/// Verifies every partial signature (batched; one by one on failure, naming
/// the first bad signer in holder order), combines the first `t` holders'
/// per statement, and checks the combined signatures in the same batch.
///
/// `acks[i]` must be the ack of `partials[i]`'s signer.
pub(crate) fn verify_and_combine<R: RngCore + CryptoRng + ?Sized>(
    context: &Context,
    deals: &[Signed<DealBundle>],
    acks: &[&Signed<Ack>],
    partials: &[Signed<PartialSignatures>],
    expected: &Expected<'_>,
    rng: &mut R,
) -> Result<Vec<Vec<G2Point>>, DkgError> {
    let Expected { keys, hashed, own } = *expected;
    let plan = &context.plan;
    let decoded: Vec<Vec<Vec<G2Point>>> = partials
        .iter()
        .zip(acks)
        .enumerate()
        .map(|(position, (m, ack))| match own {
            Some((mine, points)) if mine == position => Ok(points.to_vec()),
            _ => parse_partials(context, deals, ack, m),
        })
        .collect::<Result<_, _>>()?;
    combine_checked(plan, &decoded, keys, hashed, rng).map_err(|fault| match fault {
        CombineFault::Invalid {
            position,
            validator,
            statement,
        } => match (partials.get(position), acks.get(position)) {
            (Some(message), Some(ack)) => DkgError::InvalidPartialSignature {
                culprit: message.header.sender,
                validator,
                statement: signing::label(plan, statement),
                evidence: Box::new(Evidence::Partials {
                    partials: message.clone(),
                    ack: (*ack).clone(),
                    deals: deals.to_vec(),
                }),
            },
            _ => LocalError::BatchMismatch("partial signature").into(),
        },
        CombineFault::Mismatch => LocalError::BatchMismatch("partial signature").into(),
    })
}

/// Why the partial signatures did not check out, before the evidence is
/// attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CombineFault {
    /// The first invalid one, in holder order, then validator order.
    Invalid {
        /// The signer's position among the holders.
        position: usize,
        /// Its validator.
        validator: usize,
        /// Its statement.
        statement: usize,
    },
    /// The batch failed and no signature on its own did (a bug).
    Mismatch,
}

/// The core of [`verify_and_combine`], on decoded signatures
/// (`decoded[holder][v][d]`): one batch of every partial and combined
/// signature; one by one on failure.
pub(crate) fn combine_checked<R: RngCore + CryptoRng + ?Sized>(
    plan: &Plan,
    decoded: &[Vec<Vec<G2Point>>],
    keys: &[ValidatorKeys],
    hashed: &[Vec<G2Point>],
    rng: &mut R,
) -> Result<Vec<Vec<G2Point>>, CombineFault> {
    let t = plan.params().threshold();
    // combined[v][d]
    let combiner = Combiner::first_t(plan.indices(), t);
    let statements = plan.statements().len();
    let combined: Vec<Vec<G2Point>> = (0..plan.params().validators())
        .into_par_iter()
        .map(|v| {
            (0..statements)
                .map(|d| {
                    let firsts: Vec<G2Point> = decoded
                        .iter()
                        .take(t)
                        .filter_map(|p| p.get(v).and_then(|row| row.get(d)).copied())
                        .collect();
                    combiner.combine(&firsts)
                })
                .collect()
        })
        .collect();
    let checks: Vec<SignatureCheck<'_>> = keys
        .iter()
        .zip(hashed)
        .zip(&combined)
        .enumerate()
        .map(|(v, ((keys, messages), combined))| SignatureCheck {
            keys,
            messages,
            partials: decoded
                .iter()
                .filter_map(|p| p.get(v).map(Vec::as_slice))
                .collect(),
            combined,
        })
        .collect();
    if signing::batch_valid(plan.indices(), &checks, rng) {
        return Ok(combined);
    }
    // Round 4, Step 3
    // > On failure, check one by one and name the first bad signer.
    for (position, rows) in decoded.iter().enumerate() {
        for (v, row) in rows.iter().enumerate() {
            for (d, sigma) in row.iter().enumerate() {
                let (Some(key), Some(message)) = (
                    keys.get(v).and_then(|k| k.public_shares.get(position)),
                    hashed.get(v).and_then(|h| h.get(d)),
                ) else {
                    continue;
                };
                if !signing::signature_valid(key, message, sigma) {
                    return Err(CombineFault::Invalid {
                        position,
                        validator: v,
                        statement: d,
                    });
                }
            }
        }
    }
    Err(CombineFault::Mismatch)
}

/// The acks of the holders, in holder order (their signers' own acks,
/// which their partial signatures echo).
pub(crate) fn holder_acks<'a>(context: &Context, acks: &'a [Signed<Ack>]) -> Vec<&'a Signed<Ack>> {
    context
        .plan
        .holders()
        .iter()
        .filter_map(|h| acks.get(h.position()))
        .collect()
}

/// Round 4 (protocol.md, Round 4): verify every partial signature, combine,
/// and sign the transcript.
///
/// # Errors
///
/// A [`DkgError`] naming the signer of an invalid partial signature, or a
/// participant that equivocated in round 2.
pub fn part4<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round3,
    identity: &IdentityKey,
    partials: &BTreeMap<OperatorId, Signed<PartialSignatures>>,
    rng: &mut R,
) -> Result<(state::Round4, Signed<Finalize>), DkgError> {
    let state::Round3 {
        context,
        me,
        session,
        hellos,
        deals,
        acks,
        keys,
        hashed,
        secret_shares,
        partials: mine,
        own_partials,
    } = state;
    // Round 4, Step 1
    // > Check every message's header and signature, then the ack echoes.
    let own_receipts: Vec<Receipt> = acks.iter().map(Receipt::of).collect();
    let partials = receive(
        &context,
        &session,
        mine.as_ref(),
        Some(&own_receipts),
        partials,
        MessageKind::Ack,
        |p: &PartialSignatures| &p.acks,
    )?;
    // Round 4, Step 2
    // > Verify all partial signatures and the combined signatures of the
    // > first t holders in one batch.
    let own = context
        .plan
        .holder_position(me)
        .map(|position| (position, own_partials.as_slice()));
    let combined = verify_and_combine(
        &context,
        &deals,
        &holder_acks(&context, &acks),
        &partials,
        &Expected {
            keys: &keys,
            hashed: &hashed,
            own,
        },
        rng,
    )?;
    // Round 4, Step 4
    // > Build the transcript and sign its hash.
    let validators = keys
        .iter()
        .zip(&combined)
        .map(|(k, sigs)| ValidatorRecord {
            group_key: Bytes(k.group_key.to_bytes()),
            public_shares: k
                .public_shares
                .iter()
                .map(|p| Bytes(p.to_bytes()))
                .collect(),
            signatures: sigs.iter().map(|s| Bytes(s.to_bytes())).collect(),
        })
        .collect();
    let transcript = Transcript::new(context.clone(), hellos, deals, acks, partials, validators);
    let public_shares = context
        .plan
        .holder_position(me)
        .map(|position| {
            keys.iter()
                .filter_map(|k| k.public_shares.get(position).copied())
                .collect()
        })
        .unwrap_or_default();
    let transcript_hash = transcript.hash();
    let body = Finalize {
        partials: transcript.partials.iter().map(Receipt::of).collect(),
        transcript_hash: Bytes(transcript_hash),
    };
    let finalize = Signed::sign(identity, session, me, body);
    Ok((
        state::Round4 {
            me,
            context,
            session,
            transcript,
            transcript_hash,
            secret_shares,
            public_shares,
            finalize: finalize.clone(),
        },
        finalize,
    ))
}

/// Round 4, Step 5: every finalize message signs `hash`, the transcript's;
/// the first that does not is named, with the hash it should have signed.
///
/// # Errors
///
/// [`DkgError::FinalizeMismatch`] naming its sender.
pub(crate) fn check_transcript_hash(
    finals: &[Signed<Finalize>],
    hash: [u8; 32],
) -> Result<(), DkgError> {
    match finals.iter().find(|m| m.body.transcript_hash.0 != hash) {
        Some(message) => Err(DkgError::FinalizeMismatch {
            culprit: message.header.sender,
            evidence: Box::new(Evidence::Finalize {
                finalize: message.clone(),
                expected_hash: Bytes(hash),
            }),
        }),
        None => Ok(()),
    }
}

/// The end (protocol.md, Round 4, Step 5): every participant signed the
/// same transcript; return this participant's shares and the full
/// transcript.
///
/// # Errors
///
/// A [`DkgError`] naming a participant that equivocated in round 3 or
/// signed another transcript.
pub fn finish(
    state: state::Round4,
    finals: &BTreeMap<OperatorId, Signed<Finalize>>,
) -> Result<Output, DkgError> {
    let state::Round4 {
        me,
        context,
        session,
        mut transcript,
        transcript_hash,
        secret_shares,
        public_shares,
        finalize,
    } = state;
    let finals = receive(
        &context,
        &session,
        Some(&finalize),
        None,
        finals,
        MessageKind::Partials,
        |f: &Finalize| &f.partials,
    )?;
    check_transcript_hash(&finals, transcript_hash)?;
    transcript.finals = finals;
    Ok(Output {
        me,
        transcript,
        secret_shares,
        public_shares,
    })
}
