//! The public transcript of a ceremony, its hash, and its verification with
//! no secret.
//!
//! Spec: `ceremony-specs/protocol.md`, "Transcript".

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::messages::{
    Ack, AnySigned, DealBundle, Finalize, Hello, IntoAny, MessageKind, PartialSignatures, Receipt,
    Signed,
};
use super::{Context, DkgError, Evidence, check_echoes, check_signed, signing, vss};
use crate::ceremony::OperatorId;
use crate::crypto::{G1Point, G2Point};
use crate::wire::{self, Bytes};

/// The transcript format version.
pub const TRANSCRIPT_VERSION: u32 = 1;

/// Domain of the transcript hash.
pub const TRANSCRIPT_DOMAIN: &[u8] = b"dvkg/1 transcript";

/// The public outcome for one validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorRecord {
    /// `Y_v`, the validator public key.
    pub group_key: Bytes<48>,
    /// `PK_{v,m}` for `m = 1..=n`.
    pub public_shares: Vec<Bytes<48>>,
    /// The combined (threshold) signature of each deposit.
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
    /// Parameters, roster, definition hash and deposit plan.
    pub context: Context,
    /// Round 0, in operator order.
    pub hellos: Vec<Signed<Hello>>,
    /// Round 1 broadcasts, in operator order.
    pub deals: Vec<Signed<DealBundle>>,
    /// Round 2, in operator order.
    pub acks: Vec<Signed<Ack>>,
    /// Round 3, in operator order.
    pub partials: Vec<Signed<PartialSignatures>>,
    /// Per validator: keys and combined signatures.
    pub validators: Vec<ValidatorRecord>,
    /// Round 4, in operator order; not covered by [`Transcript::hash`].
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

    /// `SHA-256(TRANSCRIPT_DOMAIN ‖ encode(everything but the finals))`: what
    /// every operator signs in round 4.
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
        hasher.update(TRANSCRIPT_DOMAIN);
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
    Inconsistent(String),
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
    what: MessageKind,
    messages: &[Signed<T>],
    n: usize,
) -> Result<(), TranscriptError> {
    if messages.len() != n {
        return Err(TranscriptError::Inconsistent(format!(
            "{} {what} messages for {n} operators",
            messages.len()
        )));
    }
    for (position, message) in messages.iter().enumerate() {
        if message.header.sender.position() != position {
            return Err(TranscriptError::Inconsistent(format!(
                "{what} message {position} is signed as operator {}",
                message.header.sender
            )));
        }
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
    rng: &mut R,
) -> Result<Verified, TranscriptError> {
    let context = &transcript.context;
    if transcript.version != TRANSCRIPT_VERSION {
        return Err(TranscriptError::Inconsistent(format!(
            "unsupported transcript version {}",
            transcript.version
        )));
    }
    context.check()?;
    let n = context.params.operators();
    in_order(MessageKind::Hello, &transcript.hellos, n)?;
    in_order(MessageKind::Deal, &transcript.deals, n)?;
    in_order(MessageKind::Ack, &transcript.acks, n)?;
    in_order(MessageKind::Partials, &transcript.partials, n)?;
    in_order(MessageKind::Finalize, &transcript.finals, n)?;

    // Round 0: hellos for this definition, then the session id.
    for hello in &transcript.hellos {
        super::check_hello(context, hello.header.sender, hello)?;
    }
    let session = transcript.session_id();

    // Round 1: deals, their hello echoes, encodings and proofs.
    for deal in &transcript.deals {
        check_signed(context, &session, deal.header.sender, deal)?;
    }
    for deal in &transcript.deals {
        super::check_hello_echoes(context, &transcript.hellos, deal)?;
    }
    let parsed: Vec<vss::ParsedDeal> = transcript
        .deals
        .iter()
        .map(|d| vss::parse_deal_subgroup_deferred(&context.params, d))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&vss::ParsedDeal> = parsed.iter().collect();
    if let Some((dealer, validator)) = vss::first_invalid_proof(&session, &refs, rng) {
        let deal = transcript.deals.get(dealer.position()).cloned();
        // A point outside the subgroup is the more precise fault.
        if let Some(deal) = &deal {
            vss::parse_deal(&context.params, deal)?;
        }
        return Err(DkgError::InvalidProof {
            culprit: dealer,
            validator,
            evidence: Box::new(Evidence::Deal {
                deal: deal.ok_or_else(|| TranscriptError::Inconsistent("missing deal".into()))?,
            }),
        }
        .into());
    }

    // Round 2: acks, their deal echoes, no complaints.
    for ack in &transcript.acks {
        check_signed(context, &session, ack.header.sender, ack)?;
    }
    let deal_receipts: Vec<Receipt> = transcript.deals.iter().map(Receipt::of).collect();
    let mut reports: Vec<(OperatorId, &[Receipt], AnySigned)> = Vec::with_capacity(n);
    for ack in &transcript.acks {
        reports.push((
            ack.header.sender,
            ack.body.deals.as_slice(),
            ack.clone().into_any(),
        ));
    }
    check_echoes(context, MessageKind::Deal, &session, &reports)?;
    if reports
        .first()
        .is_some_and(|(_, r, _)| *r != deal_receipts.as_slice())
    {
        return Err(TranscriptError::Inconsistent(
            "the deals do not match their echoes".into(),
        ));
    }
    for ack in &transcript.acks {
        if let Some(complaint) = ack.body.complaints.first() {
            let agreed = transcript.deals.get(complaint.dealer().position());
            return Err(super::judge(context, &session, agreed, ack, complaint).into());
        }
    }

    // Round 3: derived keys, then partial signatures (their ack echoes).
    let commitments: Vec<&[Vec<G1Point>]> =
        parsed.iter().map(|p| p.commitments.as_slice()).collect();
    let aggregated = signing::aggregate(&context.params, &commitments);
    vss::check_aggregate(&context.params, &aggregated, &transcript.deals)?;
    let keys = signing::keys_from_aggregate(&context.params, &aggregated);
    if keys.len() != transcript.validators.len() {
        return Err(TranscriptError::Inconsistent(format!(
            "{} validator records for {} validators",
            transcript.validators.len(),
            keys.len()
        )));
    }
    for (v, (derived, record)) in keys.iter().zip(&transcript.validators).enumerate() {
        let shares: Vec<Bytes<48>> = derived
            .public_shares
            .iter()
            .map(|p| Bytes(p.to_bytes()))
            .collect();
        if record.group_key.0 != derived.group_key.to_bytes() || record.public_shares != shares {
            return Err(TranscriptError::Inconsistent(format!(
                "validator {v}: the recorded keys are not those derived from the deals"
            )));
        }
    }
    for message in &transcript.partials {
        check_signed(context, &session, message.header.sender, message)?;
    }
    let mut reports: Vec<(OperatorId, &[Receipt], AnySigned)> = Vec::with_capacity(n);
    for message in &transcript.partials {
        reports.push((
            message.header.sender,
            message.body.acks.as_slice(),
            message.clone().into_any(),
        ));
    }
    check_echoes(context, MessageKind::Ack, &session, &reports)?;
    let ack_receipts: Vec<Receipt> = transcript.acks.iter().map(Receipt::of).collect();
    if reports
        .first()
        .is_some_and(|(_, r, _)| *r != ack_receipts.as_slice())
    {
        return Err(TranscriptError::Inconsistent(
            "the acks do not match their echoes".into(),
        ));
    }
    let hashed: Vec<Vec<G2Point>> = keys
        .iter()
        .map(|k| context.plan.hashed_messages(&k.group_key))
        .collect();
    let combined = super::verify_and_combine(
        context,
        &transcript.deals,
        &transcript.acks,
        &transcript.partials,
        &super::Expected {
            keys: &keys,
            hashed: &hashed,
            own: None,
        },
        rng,
    )?;
    for (v, (sigs, record)) in combined.iter().zip(&transcript.validators).enumerate() {
        let recorded: Vec<Bytes<96>> = sigs.iter().map(|s| Bytes(s.to_bytes())).collect();
        if recorded != record.signatures {
            return Err(TranscriptError::Inconsistent(format!(
                "validator {v}: the recorded signatures are not the combination of the partial signatures"
            )));
        }
    }

    // Round 4: every operator signed this transcript's hash.
    let hash = transcript.hash();
    for message in &transcript.finals {
        check_signed(context, &session, message.header.sender, message)?;
    }
    let mut reports: Vec<(OperatorId, &[Receipt], AnySigned)> = Vec::with_capacity(n);
    for message in &transcript.finals {
        reports.push((
            message.header.sender,
            message.body.partials.as_slice(),
            message.clone().into_any(),
        ));
    }
    check_echoes(context, MessageKind::Partials, &session, &reports)?;
    let partial_receipts: Vec<Receipt> = transcript.partials.iter().map(Receipt::of).collect();
    if reports
        .first()
        .is_some_and(|(_, r, _)| *r != partial_receipts.as_slice())
    {
        return Err(TranscriptError::Inconsistent(
            "the partial signatures do not match their echoes".into(),
        ));
    }
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
