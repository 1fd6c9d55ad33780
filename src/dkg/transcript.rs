//! The public transcript of a ceremony, its hash, and its verification with
//! no secret.
//!
//! Spec: `ceremony-specs/protocol.md`, "Transcript".

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::checks::{Report, check_echoes, check_hello, check_hello_echoes, check_signed};
use super::error::{DkgError, Evidence};
use super::finalize::{Expected, holder_acks, verify_and_combine};
use super::judge::judge;
use super::messages::{
    Ack, DealBundle, Finalize, Hello, IntoAny, MessageKind, PartialSignatures, Receipt, Signed,
};
use super::plan::Context;
use super::signing::{self, Statements};
use super::{sign, vss};
use crate::crypto::G1Point;
use crate::wire::{self, Bytes};

/// The transcript format version.
pub const TRANSCRIPT_VERSION: u32 = 2;

/// The purpose in the domain of the transcript hash,
/// `"dvkg/2 <kind> transcript"`.
pub const TRANSCRIPT_PURPOSE: &str = "transcript";

/// The public outcome for one validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorRecord {
    /// `Y_v`, the validator public key.
    pub group_key: Bytes<48>,
    /// `PK_{v,m}` for every holder `m`, in holder order.
    pub public_shares: Vec<Bytes<48>>,
    /// The combined (threshold) signature of each statement.
    pub signatures: Vec<Bytes<96>>,
}

/// Everything public about a ceremony: the context, every broadcast message
/// as signed by its sender, the derived keys and signatures, and the
/// operators' signatures on the whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// [`TRANSCRIPT_VERSION`].
    pub version: u32,
    /// The plan and the definition hash.
    pub context: Context,
    /// Round 0, every participant's, in slot order.
    pub hellos: Vec<Signed<Hello>>,
    /// Round 1 broadcasts, the dealers', in slot order.
    pub deals: Vec<Signed<DealBundle>>,
    /// Round 2, every participant's, in slot order.
    pub acks: Vec<Signed<Ack>>,
    /// Round 3, the holders', in slot order.
    pub partials: Vec<Signed<PartialSignatures>>,
    /// Per validator: keys and combined signatures.
    pub validators: Vec<ValidatorRecord>,
    /// Round 4, every participant's, in slot order; not covered by
    /// [`Transcript::hash`].
    pub finals: Vec<Signed<Finalize>>,
}

#[derive(Serialize)]
struct HashedPart<'a> {
    version: u32,
    context: &'a Context,
    hellos: &'a [Signed<Hello>],
    deals: &'a [Signed<DealBundle>],
    acks: &'a [Signed<Ack>],
    partials: &'a [Signed<PartialSignatures>],
    validators: &'a [ValidatorRecord],
}

impl Transcript {
    /// A transcript without finalize signatures.
    pub fn new(
        context: Context,
        hellos: Vec<Signed<Hello>>,
        deals: Vec<Signed<DealBundle>>,
        acks: Vec<Signed<Ack>>,
        partials: Vec<Signed<PartialSignatures>>,
        validators: Vec<ValidatorRecord>,
    ) -> Self {
        Self {
            version: TRANSCRIPT_VERSION,
            context,
            hellos,
            deals,
            acks,
            partials,
            validators,
            finals: Vec::new(),
        }
    }

    /// `SHA-256("dvkg/2 <kind> transcript" ‖ encode(everything but the
    /// finals))`: what every participant signs in round 4.
    pub fn hash(&self) -> [u8; 32] {
        let part = HashedPart {
            version: self.version,
            context: &self.context,
            hellos: &self.hellos,
            deals: &self.deals,
            acks: &self.acks,
            partials: &self.partials,
            validators: &self.validators,
        };
        let mut hasher = Sha256::new();
        hasher.update(self.context.plan.kind().domain(TRANSCRIPT_PURPOSE));
        hasher.update(wire::encode(&part).unwrap_or_default());
        hasher.finalize().into()
    }

    /// The session id, from the hellos.
    pub fn session_id(&self) -> [u8; 32] {
        self.context
            .session_id(&self.hellos.iter().collect::<Vec<_>>())
    }
}

/// Why a transcript does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscriptError {
    /// A protocol violation by a named operator.
    #[error(transparent)]
    Protocol(#[from] DkgError),
    /// The transcript is not what the protocol would produce: a wrong
    /// version, count, order, or a derived value that does not match its
    /// recomputation.
    #[error("transcript inconsistent: {0}")]
    Inconsistent(Inconsistency),
}

/// How a transcript differs from what the protocol produces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Inconsistency {
    /// Another transcript format version.
    #[error("unsupported transcript version {0}")]
    Version(u32),
    /// A message list of the wrong length.
    #[error("{got} {kind} messages for {expected} senders")]
    Count {
        /// The kind.
        kind: MessageKind,
        /// The messages present.
        got: usize,
        /// The senders the plan names.
        expected: usize,
    },
    /// A message out of place.
    #[error("{kind} message {position} is signed as operator {sender}")]
    Order {
        /// The kind.
        kind: MessageKind,
        /// Its position in the list.
        position: usize,
        /// Its signer.
        sender: crate::ceremony::OperatorId,
    },
    /// The messages of a round do not match the receipts the next round
    /// echoes.
    #[error("the {0} messages do not match their echoes")]
    Echoes(MessageKind),
    /// The validator records are not as many as the validators.
    #[error("{got} validator records for {expected} validators")]
    Records {
        /// The records present.
        got: usize,
        /// The validators.
        expected: usize,
    },
    /// A validator's recorded keys are not those the deals derive.
    #[error("validator {0}: the recorded keys are not those derived from the deals")]
    Keys(usize),
    /// A validator's recorded signatures are not the combination of the
    /// partial signatures.
    #[error(
        "validator {0}: the recorded signatures are not the combination of the partial signatures"
    )]
    Signatures(usize),
}

/// What a verified transcript established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The session id.
    pub session: [u8; 32],
    /// The transcript hash every operator signed.
    pub hash: [u8; 32],
    /// The validator public keys.
    pub group_keys: Vec<G1Point>,
}

fn in_order<T: super::messages::Body>(
    context: &Context,
    kind: MessageKind,
    messages: &[Signed<T>],
) -> Result<(), TranscriptError> {
    let senders = context.plan.senders(kind);
    if messages.len() != senders.len() {
        return Err(TranscriptError::Inconsistent(Inconsistency::Count {
            kind,
            got: messages.len(),
            expected: senders.len(),
        }));
    }
    for (position, (message, &sender)) in messages.iter().zip(senders).enumerate() {
        if message.header.sender != sender {
            return Err(TranscriptError::Inconsistent(Inconsistency::Order {
                kind,
                position,
                sender: message.header.sender,
            }));
        }
    }
    Ok(())
}

/// Checks that the first report's receipts are those of `messages`.
fn echoes_match<T: super::messages::Body>(
    kind: MessageKind,
    reports: &[Report<'_>],
    messages: &[Signed<T>],
) -> Result<(), TranscriptError> {
    let receipts: Vec<Receipt> = messages.iter().map(Receipt::of).collect();
    if reports
        .first()
        .is_some_and(|(_, r, _)| *r != receipts.as_slice())
    {
        return Err(TranscriptError::Inconsistent(Inconsistency::Echoes(kind)));
    }
    Ok(())
}

/// Checks a transcript against the protocol with no secret
/// (protocol.md, "Verifying a transcript"): every signature against the
/// pinned identities, the session id, every echo, every point's encoding and
/// subgroup, every proof of knowledge, the absence of complaints, the derived
/// group keys and public shares, every partial and combined signature, and
/// every operator's signature on the transcript hash.
///
/// # Errors
///
/// [`TranscriptError`]: a named operator's violation, or an inconsistency.
pub fn verify_transcript<R: RngCore + CryptoRng + ?Sized>(
    transcript: &Transcript,
    statements: &dyn Statements,
    rng: &mut R,
) -> Result<Verified, TranscriptError> {
    let context = &transcript.context;
    let plan = &context.plan;
    let params = plan.params();
    if transcript.version != TRANSCRIPT_VERSION {
        return Err(TranscriptError::Inconsistent(Inconsistency::Version(
            transcript.version,
        )));
    }
    in_order(context, MessageKind::Hello, &transcript.hellos)?;
    in_order(context, MessageKind::Deal, &transcript.deals)?;
    in_order(context, MessageKind::Ack, &transcript.acks)?;
    in_order(context, MessageKind::Partials, &transcript.partials)?;
    in_order(context, MessageKind::Finalize, &transcript.finals)?;

    // Round 0: hellos for this definition, then the session id.
    for hello in &transcript.hellos {
        check_hello(context, hello.header.sender, hello)?;
    }
    let session = transcript.session_id();

    // Round 1: deals, their hello echoes, encodings, proofs and constants.
    for deal in &transcript.deals {
        check_signed(context, &session, deal.header.sender, deal)?;
    }
    for deal in &transcript.deals {
        check_hello_echoes(context, &transcript.hellos, deal)?;
    }
    let parsed: Vec<vss::ParsedDeal> = transcript
        .deals
        .iter()
        .map(|d| vss::parse_deal_subgroup_deferred(plan, d))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&vss::ParsedDeal> = parsed.iter().collect();
    if let Some((dealer, validator)) = vss::first_invalid_proof(plan.kind(), &session, &refs, rng) {
        let deal = plan
            .dealers()
            .iter()
            .position(|&d| d == dealer)
            .and_then(|position| transcript.deals.get(position));
        if let Some(deal) = deal {
            // A point outside the subgroup is the more precise fault.
            vss::parse_deal(plan, deal)?;
            return Err(DkgError::InvalidProof {
                culprit: dealer,
                validator,
                evidence: Box::new(Evidence::Deal { deal: deal.clone() }),
            }
            .into());
        }
    }
    for (deal, signed) in parsed.iter().zip(&transcript.deals) {
        if let Some(validator) = vss::first_wrong_constant(plan, deal)? {
            return Err(vss::wrong_constant(plan, signed, validator).into());
        }
    }

    // Round 2: acks, their deal echoes, no complaints.
    for ack in &transcript.acks {
        check_signed(context, &session, ack.header.sender, ack)?;
    }
    let reports: Vec<Report<'_>> = transcript
        .acks
        .iter()
        .map(|ack| {
            (
                ack.header.sender,
                ack.body.deals.as_slice(),
                ack.clone().into_any(),
            )
        })
        .collect();
    check_echoes(context, MessageKind::Deal, &session, &reports, None)?;
    echoes_match(MessageKind::Deal, &reports, &transcript.deals)?;
    for ack in &transcript.acks {
        if let Some(complaint) = ack.body.complaints.first() {
            let agreed = plan
                .dealers()
                .iter()
                .position(|&d| d == complaint.dealer())
                .and_then(|position| transcript.deals.get(position));
            return Err(judge(context, &session, agreed, ack, complaint).into());
        }
    }

    // Round 3: derived keys, then partial signatures (their ack echoes).
    let commitments: Vec<&[Vec<G1Point>]> =
        parsed.iter().map(|p| p.commitments.as_slice()).collect();
    let aggregated = signing::aggregate(&params, &commitments);
    vss::check_aggregate(plan, &aggregated, &transcript.deals)?;
    if let Some(known) = plan.group_keys() {
        sign::check_known_keys(&aggregated, params.threshold(), known)?;
    }
    let keys = signing::keys_from_aggregate(&params, plan.indices(), &aggregated);
    if keys.len() != transcript.validators.len() {
        return Err(TranscriptError::Inconsistent(Inconsistency::Records {
            got: transcript.validators.len(),
            expected: keys.len(),
        }));
    }
    for (v, (derived, record)) in keys.iter().zip(&transcript.validators).enumerate() {
        let shares_match = derived.public_shares.len() == record.public_shares.len()
            && derived
                .public_shares
                .iter()
                .zip(&record.public_shares)
                .all(|(p, r)| p.to_bytes() == r.0);
        if record.group_key.0 != derived.group_key.to_bytes() || !shares_match {
            return Err(TranscriptError::Inconsistent(Inconsistency::Keys(v)));
        }
    }
    for message in &transcript.partials {
        check_signed(context, &session, message.header.sender, message)?;
    }
    let reports: Vec<Report<'_>> = transcript
        .partials
        .iter()
        .map(|m| {
            (
                m.header.sender,
                m.body.acks.as_slice(),
                m.clone().into_any(),
            )
        })
        .collect();
    check_echoes(context, MessageKind::Ack, &session, &reports, None)?;
    echoes_match(MessageKind::Ack, &reports, &transcript.acks)?;
    let hashed =
        signing::hashed_messages(plan, statements, &session, &keys).map_err(DkgError::from)?;
    let combined = verify_and_combine(
        context,
        &transcript.deals,
        &holder_acks(context, &transcript.acks),
        &transcript.partials,
        &Expected {
            keys: &keys,
            hashed: &hashed,
            own: None,
        },
        rng,
    )?;
    for (v, (sigs, record)) in combined.iter().zip(&transcript.validators).enumerate() {
        let recorded: Vec<Bytes<96>> = sigs.iter().map(|s| Bytes(s.to_bytes())).collect();
        if recorded != record.signatures {
            return Err(TranscriptError::Inconsistent(Inconsistency::Signatures(v)));
        }
    }

    // Round 4: every participant signed this transcript's hash.
    let hash = transcript.hash();
    for message in &transcript.finals {
        check_signed(context, &session, message.header.sender, message)?;
    }
    let reports: Vec<Report<'_>> = transcript
        .finals
        .iter()
        .map(|m| {
            (
                m.header.sender,
                m.body.partials.as_slice(),
                m.clone().into_any(),
            )
        })
        .collect();
    check_echoes(context, MessageKind::Partials, &session, &reports, None)?;
    echoes_match(MessageKind::Partials, &reports, &transcript.partials)?;
    for message in &transcript.finals {
        if message.body.transcript_hash.0 != hash {
            return Err(DkgError::FinalizeMismatch {
                culprit: message.header.sender,
                evidence: Box::new(Evidence::Finalize {
                    finalize: message.clone(),
                    expected_hash: Bytes(hash),
                }),
            }
            .into());
        }
    }
    Ok(Verified {
        session,
        hash,
        group_keys: keys.iter().map(|k| k.group_key).collect(),
    })
}
