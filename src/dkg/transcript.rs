//! The public transcript of a ceremony, its hash, and its verification with
//! no secret.
//!
//! Spec: `ceremony-specs/protocol.md`, "Transcript".

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use rayon::prelude::*;

use super::checks::{
    Report, check_agreement, check_echoes, check_hello, check_hello_echoes, check_receipts,
    check_signed,
};
use super::error::{DkgError, Evidence, LocalError};
use super::finalize::{self, CombineFault};
use super::judge::judge;
use super::messages::{
    Ack, Body, DealBundle, Finalize, Hello, IntoAny, MessageKind, PartialSignatures, Receipt,
    Signed,
};
use super::plan::Context;
use super::signing::{self, Statements};
use super::{sign, vss};
use crate::crypto::{G1Point, G2Point};
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
        wire::hash_encoding(&mut hasher, &part);
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
    /// A message checked and not kept could not be read again as evidence
    /// (the file changed, or became unreadable, while it was verified).
    #[error("cannot read the transcript again for the evidence: {0}")]
    Recall(String),
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

/// Checks that the first echo's receipts are `receipts`, those of the
/// messages it echoes.
fn echoes_match(
    kind: MessageKind,
    first: Option<&[Receipt]>,
    receipts: &[Receipt],
) -> Result<(), TranscriptError> {
    if first.is_some_and(|r| r != receipts) {
        return Err(TranscriptError::Inconsistent(Inconsistency::Echoes(kind)));
    }
    Ok(())
}

/// Where a [`Verifier`] gets back, as evidence, a message it checked and
/// did not keep: a transcript read as a stream keeps no deal and no partial
/// signature. Only a transcript that fails needs one.
pub trait Recall {
    /// Every deal, in slot order.
    ///
    /// # Errors
    ///
    /// [`TranscriptError::Recall`] if they cannot be read again.
    fn deals(&mut self) -> Result<Vec<Signed<DealBundle>>, TranscriptError>;

    /// The partial-signature message of the holder at `position`.
    ///
    /// # Errors
    ///
    /// [`TranscriptError::Recall`] if it cannot be read again.
    fn partials(&mut self, position: usize) -> Result<Signed<PartialSignatures>, TranscriptError>;
}

/// The [`Recall`] of a transcript in memory.
struct InMemory<'a>(&'a Transcript);

impl Recall for InMemory<'_> {
    fn deals(&mut self) -> Result<Vec<Signed<DealBundle>>, TranscriptError> {
        Ok(self.0.deals.clone())
    }

    fn partials(&mut self, position: usize) -> Result<Signed<PartialSignatures>, TranscriptError> {
        self.0.partials.get(position).cloned().ok_or_else(|| {
            TranscriptError::Recall(format!("no partial-signature message {position}"))
        })
    }
}

/// Checks a transcript against the protocol with no secret
/// (protocol.md, "Verifying a transcript"): every signature against the
/// pinned identities, the session id, every echo, every point's encoding and
/// subgroup, every proof of knowledge, the absence of complaints, the derived
/// group keys and public shares, every partial and combined signature, and
/// every operator's signature on the transcript hash.
///
/// A [`Verifier`] fed with the transcript's parts, in order: the same
/// checks as a transcript file read as a stream.
///
/// # Errors
///
/// [`TranscriptError`]: a named operator's violation, or an inconsistency.
pub fn verify_transcript<R: RngCore + CryptoRng + ?Sized>(
    transcript: &Transcript,
    statements: &dyn Statements,
    rng: &mut R,
) -> Result<Verified, TranscriptError> {
    let mut recall = InMemory(transcript);
    let mut verifier = Verifier::start(
        transcript.version,
        &transcript.context,
        &transcript.hellos,
        statements,
        rng,
    )?;
    verifier.deals(transcript.deals.len())?;
    for (position, deal) in transcript.deals.iter().enumerate() {
        verifier.deal(position, deal)?;
    }
    verifier.acks(&transcript.acks, &mut recall)?;
    verifier.partials(transcript.partials.len())?;
    for (position, message) in transcript.partials.iter().enumerate() {
        verifier.partial(position, message, &mut recall)?;
    }
    verifier.combine(&mut recall)?;
    verifier.records(&transcript.validators)?;
    verifier.finals(&transcript.finals)
}

/// A transcript checked part by part, in the order of its encoding
/// (protocol.md, "Verifying a transcript"), keeping only what later parts
/// are checked against: the receipts, the running sums of the commitments,
/// the derived keys, the decoded partial signatures, and a running hash of
/// the transcript. No deal and no raw partial signature is kept, so a
/// transcript file is verified as it is read, in memory that does not
/// grow with its deals.
///
/// Call, in order: [`start`](Self::start), [`deals`](Self::deals),
/// [`deal`](Self::deal) for each, [`acks`](Self::acks),
/// [`partials`](Self::partials), [`partial`](Self::partial) for each,
/// [`combine`](Self::combine), [`records`](Self::records),
/// [`finals`](Self::finals). Each checks what it is given and returns the
/// first fault; after one, the verifier is of no further use.
pub struct Verifier<'a, R: ?Sized> {
    context: &'a Context,
    statements: &'a dyn Statements,
    rng: &'a mut R,
    session: [u8; 32],
    /// `SHA-256(domain ‖ encode(everything before the finals))`, so far.
    hasher: Sha256,
    hellos: &'a [Signed<Hello>],
    /// Receipts of the deals seen, in slot order.
    deals: Vec<Receipt>,
    aggregator: Option<signing::Aggregator>,
    acks: Vec<Signed<Ack>>,
    keys: Vec<signing::ValidatorKeys>,
    hashed: Vec<Vec<G2Point>>,
    /// Receipts of the partial-signature messages seen, in holder order.
    partials: Vec<Receipt>,
    /// The ack receipts each of them carries.
    partial_echoes: Vec<Vec<Receipt>>,
    /// `decoded[holder][v][d]`.
    decoded: Vec<Vec<Vec<G2Point>>>,
    combined: Vec<Vec<G2Point>>,
    group_keys: Vec<G1Point>,
}

impl<'a, R: RngCore + CryptoRng + ?Sized> Verifier<'a, R> {
    /// Round 0: the version, the context and the hellos, then the session
    /// id.
    ///
    /// # Errors
    ///
    /// [`TranscriptError`] for another version, or a hello at fault.
    pub fn start(
        version: u32,
        context: &'a Context,
        hellos: &'a [Signed<Hello>],
        statements: &'a dyn Statements,
        rng: &'a mut R,
    ) -> Result<Self, TranscriptError> {
        if version != TRANSCRIPT_VERSION {
            return Err(TranscriptError::Inconsistent(Inconsistency::Version(
                version,
            )));
        }
        in_order(context, MessageKind::Hello, hellos)?;
        for hello in hellos {
            check_hello(context, hello.header.sender, hello)?;
        }
        let session = context.session_id(&hellos.iter().collect::<Vec<_>>());
        let mut hasher = Sha256::new();
        hasher.update(context.plan.kind().domain(TRANSCRIPT_PURPOSE));
        wire::hash_encoding(&mut hasher, &version);
        wire::hash_encoding(&mut hasher, context);
        wire::hash_encoding(&mut hasher, hellos);
        Ok(Self {
            context,
            statements,
            rng,
            session,
            hasher,
            hellos,
            deals: Vec::new(),
            aggregator: Some(signing::Aggregator::new(&context.plan.params())),
            acks: Vec::new(),
            keys: Vec::new(),
            hashed: Vec::new(),
            partials: Vec::new(),
            partial_echoes: Vec::new(),
            decoded: Vec::new(),
            combined: Vec::new(),
            group_keys: Vec::new(),
        })
    }

    /// Round 1 begins: `count` deals follow.
    ///
    /// # Errors
    ///
    /// [`Inconsistency::Count`] unless there is one per dealer.
    pub fn deals(&mut self, count: usize) -> Result<(), TranscriptError> {
        self.count(MessageKind::Deal, count)
    }

    /// One deal, the `position`-th: its sender, signature, hello echoes,
    /// encodings, proofs of knowledge and (for a split or reshare) constant
    /// commitments; then its commitments join the sums.
    ///
    /// # Errors
    ///
    /// [`TranscriptError`] naming the dealer.
    pub fn deal(
        &mut self,
        position: usize,
        deal: &Signed<DealBundle>,
    ) -> Result<(), TranscriptError> {
        let (context, plan) = (self.context, &self.context.plan);
        self.sender(MessageKind::Deal, position, &deal.header)?;
        check_signed(context, &self.session, deal.header.sender, deal)?;
        check_hello_echoes(context, self.hellos, deal)?;
        let parsed = vss::parse_deal_subgroup_deferred(plan, deal)?;
        if let Some((dealer, validator)) =
            vss::first_invalid_proof(plan.kind(), &self.session, &[&parsed], self.rng)
        {
            // A point outside the subgroup is the more precise fault.
            vss::parse_deal(plan, deal)?;
            return Err(DkgError::InvalidProof {
                culprit: dealer,
                validator,
                evidence: Box::new(Evidence::Deal { deal: deal.clone() }),
            }
            .into());
        }
        if let Some(validator) = vss::first_wrong_constant(plan, &parsed)? {
            return Err(vss::wrong_constant(plan, deal, validator).into());
        }
        if let Some(aggregator) = &mut self.aggregator {
            aggregator.add(&parsed.commitments);
        }
        self.deals.push(Receipt::of(deal));
        wire::hash_encoding(&mut self.hasher, deal);
        Ok(())
    }

    /// Round 2: the acks, their deal echoes, no complaint; then round 3's
    /// derivation: the sums' subgroup, the known keys (split, reshare), the
    /// group keys and public shares, and the messages to sign.
    ///
    /// # Errors
    ///
    /// [`TranscriptError`] naming an operator at fault.
    pub fn acks(
        &mut self,
        acks: &[Signed<Ack>],
        recall: &mut dyn Recall,
    ) -> Result<(), TranscriptError> {
        let (context, plan) = (self.context, &self.context.plan);
        let session = self.session;
        self.echoing(acks, MessageKind::Deal, |a| &a.deals, &self.deals)?;
        for ack in acks {
            if let Some(complaint) = ack.body.complaints.first() {
                let deals = self.recall_deals(recall)?;
                let agreed = plan
                    .dealers()
                    .iter()
                    .position(|&d| d == complaint.dealer())
                    .and_then(|position| deals.get(position));
                return Err(judge(context, &session, agreed, ack, complaint).into());
            }
        }
        wire::hash_encoding(&mut self.hasher, acks);
        self.acks = acks.to_vec();

        let params = plan.params();
        let aggregated = self
            .aggregator
            .take()
            .map(signing::Aggregator::finish)
            .unwrap_or_default();
        if !aggregated.par_iter().all(G1Point::in_subgroup) {
            vss::check_aggregate(plan, &aggregated, &self.recall_deals(recall)?)?;
        }
        if let Some(known) = plan.group_keys() {
            sign::check_known_keys(&aggregated, params.threshold(), known)?;
        }
        self.keys = signing::keys_from_aggregate(&params, plan.indices(), &aggregated);
        self.hashed = signing::hashed_messages(plan, self.statements, &session, &self.keys)
            .map_err(DkgError::from)?;
        Ok(())
    }

    /// Round 3 begins: `count` partial-signature messages follow.
    ///
    /// # Errors
    ///
    /// [`Inconsistency::Count`] unless there is one per holder.
    pub fn partials(&mut self, count: usize) -> Result<(), TranscriptError> {
        self.count(MessageKind::Partials, count)
    }

    /// One holder's partial signatures, the `position`-th: its sender,
    /// signature, ack receipts, and every signature's encoding and
    /// subgroup. The signatures are checked by [`combine`](Self::combine).
    ///
    /// # Errors
    ///
    /// [`TranscriptError`] naming the holder.
    pub fn partial(
        &mut self,
        position: usize,
        message: &Signed<PartialSignatures>,
        recall: &mut dyn Recall,
    ) -> Result<(), TranscriptError> {
        let (context, plan) = (self.context, &self.context.plan);
        let sender = message.header.sender;
        self.sender(MessageKind::Partials, position, &message.header)?;
        check_signed(context, &self.session, sender, message)?;
        check_receipts(
            context,
            MessageKind::Ack,
            &self.session,
            sender,
            &message.body.acks,
            || message.clone().into_any(),
        )?;
        let decoded = match finalize::decode_partials(plan, message) {
            Ok(decoded) => decoded,
            Err(fault) => {
                let evidence = Evidence::Partials {
                    partials: message.clone(),
                    ack: self.holder_ack(position)?,
                    deals: self.recall_deals(recall)?,
                };
                return Err(fault.into_error(plan, sender, Box::new(evidence)).into());
            }
        };
        self.decoded.push(decoded);
        self.partials.push(Receipt::of(message));
        self.partial_echoes.push(message.body.acks.clone());
        wire::hash_encoding(&mut self.hasher, message);
        Ok(())
    }

    /// Round 3 ends: the holders agree on the acks they echo, and every
    /// partial signature and the combination of the first `t` check out, in
    /// one batch.
    ///
    /// # Errors
    ///
    /// [`TranscriptError`] naming an equivocating operator or the first
    /// invalid signer.
    pub fn combine(&mut self, recall: &mut dyn Recall) -> Result<(), TranscriptError> {
        let (context, plan) = (self.context, &self.context.plan);
        let echoes: Vec<&[Receipt]> = self.partial_echoes.iter().map(Vec::as_slice).collect();
        check_agreement(context, MessageKind::Ack, &self.session, &echoes, None)?;
        let receipts: Vec<Receipt> = self.acks.iter().map(Receipt::of).collect();
        echoes_match(MessageKind::Ack, echoes.first().copied(), &receipts)?;
        let decoded = std::mem::take(&mut self.decoded);
        let combined =
            finalize::combine_checked(plan, &decoded, &self.keys, &self.hashed, self.rng);
        drop(decoded);
        self.hashed = Vec::new();
        self.combined = match combined {
            Ok(combined) => combined,
            Err(CombineFault::Invalid {
                position,
                validator,
                statement,
            }) => {
                let partials = self.recall_partials(recall, position)?;
                return Err(DkgError::InvalidPartialSignature {
                    culprit: partials.header.sender,
                    validator,
                    statement: signing::label(plan, statement),
                    evidence: Box::new(Evidence::Partials {
                        partials,
                        ack: self.holder_ack(position)?,
                        deals: self.recall_deals(recall)?,
                    }),
                }
                .into());
            }
            Err(CombineFault::Mismatch) => {
                return Err(DkgError::from(LocalError::BatchMismatch("partial signature")).into());
            }
        };
        Ok(())
    }

    /// The validator records: each the derived group key, public shares
    /// and combined signatures.
    ///
    /// # Errors
    ///
    /// [`Inconsistency`] naming the first validator whose record is not
    /// what the deals and partial signatures make.
    pub fn records(&mut self, records: &[ValidatorRecord]) -> Result<(), TranscriptError> {
        if self.keys.len() != records.len() {
            return Err(TranscriptError::Inconsistent(Inconsistency::Records {
                got: records.len(),
                expected: self.keys.len(),
            }));
        }
        let keys_differ = self
            .keys
            .par_iter()
            .zip(records)
            .position_first(|(derived, record)| {
                record.group_key.0 != derived.group_key.to_bytes()
                    || derived.public_shares.len() != record.public_shares.len()
                    || derived
                        .public_shares
                        .iter()
                        .zip(&record.public_shares)
                        .any(|(p, r)| p.to_bytes() != r.0)
            });
        if let Some(v) = keys_differ {
            return Err(TranscriptError::Inconsistent(Inconsistency::Keys(v)));
        }
        let signatures_differ =
            self.combined
                .par_iter()
                .zip(records)
                .position_first(|(combined, record)| {
                    combined.len() != record.signatures.len()
                        || combined
                            .iter()
                            .zip(&record.signatures)
                            .any(|(s, r)| s.to_bytes() != r.0)
                });
        if let Some(v) = signatures_differ {
            return Err(TranscriptError::Inconsistent(Inconsistency::Signatures(v)));
        }
        self.group_keys = std::mem::take(&mut self.keys)
            .into_iter()
            .map(|k| k.group_key)
            .collect();
        self.combined = Vec::new();
        wire::hash_encoding(&mut self.hasher, records);
        Ok(())
    }

    /// Round 4: every participant signed this transcript's hash, echoing
    /// the partial-signature messages.
    ///
    /// # Errors
    ///
    /// [`TranscriptError`] naming a participant at fault.
    pub fn finals(self, finals: &[Signed<Finalize>]) -> Result<Verified, TranscriptError> {
        let session = self.session;
        self.echoing(
            finals,
            MessageKind::Partials,
            |f| &f.partials,
            &self.partials,
        )?;
        let hash: [u8; 32] = self.hasher.finalize().into();
        super::finalize::check_transcript_hash(finals, hash)?;
        Ok(Verified {
            session,
            hash,
            group_keys: self.group_keys,
        })
    }

    /// A round whose every message echoes the previous round: one message
    /// per sender, each signed in the session, the echoes of `echoed`
    /// (`receipts` of each body) checked, and the first equal to
    /// `expected`, the receipts of the messages echoed.
    fn echoing<T: Body>(
        &self,
        messages: &[Signed<T>],
        echoed: MessageKind,
        receipts: fn(&T) -> &Vec<Receipt>,
        expected: &[Receipt],
    ) -> Result<(), TranscriptError>
    where
        Signed<T>: IntoAny,
    {
        let context = self.context;
        in_order(context, T::KIND, messages)?;
        for message in messages {
            check_signed(context, &self.session, message.header.sender, message)?;
        }
        let reports: Vec<Report<'_>> = messages
            .iter()
            .map(|m| {
                (
                    m.header.sender,
                    receipts(&m.body).as_slice(),
                    m.clone().into_any(),
                )
            })
            .collect();
        check_echoes(context, echoed, &self.session, &reports, None)?;
        echoes_match(
            echoed,
            messages.first().map(|m| receipts(&m.body).as_slice()),
            expected,
        )
    }

    /// Checks that `count` messages of `kind` are one per sender, and hashes
    /// the sequence's length.
    fn count(&mut self, kind: MessageKind, count: usize) -> Result<(), TranscriptError> {
        let expected = self.context.plan.senders(kind).len();
        if count != expected {
            return Err(TranscriptError::Inconsistent(Inconsistency::Count {
                kind,
                got: count,
                expected,
            }));
        }
        self.hasher.update(wire::encode_len(count));
        Ok(())
    }

    /// Checks that the `position`-th message of `kind` is signed as its
    /// sender.
    fn sender(
        &self,
        kind: MessageKind,
        position: usize,
        header: &super::messages::Header,
    ) -> Result<(), TranscriptError> {
        match self.context.plan.senders(kind).get(position) {
            Some(&sender) if sender == header.sender => Ok(()),
            _ => Err(TranscriptError::Inconsistent(Inconsistency::Order {
                kind,
                position,
                sender: header.sender,
            })),
        }
    }

    /// The ack of the holder at `position` (the one its partial signatures
    /// echo).
    fn holder_ack(&self, position: usize) -> Result<Signed<Ack>, TranscriptError> {
        finalize::holder_acks(self.context, &self.acks)
            .get(position)
            .map(|ack| (*ack).clone())
            .ok_or_else(|| TranscriptError::Recall(format!("no ack of holder {position}")))
    }

    /// Every deal, recalled, and checked to be the deals verified.
    fn recall_deals(
        &self,
        recall: &mut dyn Recall,
    ) -> Result<Vec<Signed<DealBundle>>, TranscriptError> {
        let deals = recall.deals()?;
        let receipts: Vec<Receipt> = deals.iter().map(Receipt::of).collect();
        if receipts != self.deals {
            return Err(TranscriptError::Recall(
                "the deals read again are not those verified: the transcript changed".into(),
            ));
        }
        Ok(deals)
    }

    /// The partial-signature message at `position`, recalled, and checked
    /// to be the one verified.
    fn recall_partials(
        &self,
        recall: &mut dyn Recall,
        position: usize,
    ) -> Result<Signed<PartialSignatures>, TranscriptError> {
        let message = recall.partials(position)?;
        if self.partials.get(position) != Some(&Receipt::of(&message)) {
            return Err(TranscriptError::Recall(format!(
                "partial-signature message {position} read again is not the one verified: the transcript changed"
            )));
        }
        Ok(message)
    }
}
