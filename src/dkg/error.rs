//! Errors of the pure protocol, with blame.
//!
//! Every failure a peer can cause names that peer (`culprit`) and carries the
//! signed messages that prove it ([`Evidence`]), which anyone can check with
//! [`crate::dkg::evidence::verify_evidence`] from public data alone. Failures
//! seen only on a peer's authenticated channel (a bad signature, a message for
//! another session) name the peer; their evidence shows what was received
//! but cannot prove who sent it to a third party.

use serde::{Deserialize, Serialize};

use super::messages::{
    Ack, AnySigned, DealBundle, Finalize, MessageKind, PartialSignatures, Receipt, ShareBundle,
    Signed,
};
use super::plan::{AttachmentKind, PlanError, StatementKind};
use crate::ceremony::OperatorId;
use crate::crypto::BlsError;

/// The signed messages behind a blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Evidence {
    /// A signed message that is itself the proof: a hello for another
    /// definition, an ack or echo with a forged receipt or wrong counts.
    Message {
        /// The message as received.
        message: AnySigned,
    },
    /// A deal whose content is publicly invalid.
    Deal {
        /// The deal as received.
        deal: Signed<DealBundle>,
    },
    /// Shares that fail against the dealer's commitments.
    Shares {
        /// The dealer's deal (with the commitments).
        deal: Signed<DealBundle>,
        /// The dealer's signed shares for the complainer.
        shares: Signed<ShareBundle>,
    },
    /// Two different messages of one kind signed by one operator.
    Equivocation {
        /// The kind of message.
        echoed: MessageKind,
        /// The session the receipts are signed in (the definition hash for
        /// hellos).
        session: crate::wire::Bytes<32>,
        /// One receipt.
        first: Receipt,
        /// A receipt with another hash or signature from the same operator.
        second: Receipt,
    },
    /// An ack whose complaint is false or whose receipt is forged; with the
    /// accused dealer's deal, which shows the complaint false.
    Ack {
        /// The ack.
        ack: Signed<Ack>,
        /// The accused dealer's deal, when the complaint concerns one.
        deal: Option<Signed<DealBundle>>,
    },
    /// A partial signature that does not verify; with the signer's own ack
    /// (echoed in its partial signatures) and every deal it acknowledged,
    /// from which the signer's public share and the group keys are derived.
    Partials {
        /// The signer's partial signatures.
        partials: Signed<PartialSignatures>,
        /// The signer's ack.
        ack: Signed<Ack>,
        /// All deals, in operator order.
        deals: Vec<Signed<DealBundle>>,
    },
    /// A deal whose hello echoes contradict its own session: with the hellos
    /// that make that session.
    HelloEcho {
        /// The deal.
        deal: Signed<DealBundle>,
        /// The hellos, in operator order, whose nonces make the deal's session.
        hellos: Vec<Signed<super::messages::Hello>>,
    },
    /// A finalize signature on another transcript.
    Finalize {
        /// The finalize message.
        finalize: Signed<Finalize>,
        /// The hash of the transcript every honest operator signed.
        expected_hash: crate::wire::Bytes<32>,
    },
    /// What was received on the culprit's authenticated channel: it shows
    /// what arrived, but only the receiver saw who sent it, so it convinces
    /// no third party.
    Channel {
        /// The operator whose authenticated channel carried the message.
        peer: OperatorId,
        /// The message as received.
        message: AnySigned,
    },
}

/// What was counted when a message holds the wrong number of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Validator entries in a deal.
    ValidatorEntries,
    /// Hello receipts in a deal.
    HelloReceipts,
    /// Commitments of one validator in a deal.
    Commitments {
        /// The validator (0-based).
        validator: usize,
    },
    /// Receipts of the previous round's messages in an echo.
    Receipts(MessageKind),
    /// Shares in a share bundle.
    Shares,
    /// Validator rows of partial signatures.
    PartialRows,
    /// Partial signatures of one validator.
    Partials {
        /// The validator (0-based).
        validator: usize,
    },
    /// Attachments to partial signatures (one per validator).
    Attachments,
    /// Bytes of one validator's attachment.
    AttachmentBytes {
        /// The validator (0-based).
        validator: usize,
    },
}

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ValidatorEntries => f.write_str("validator entries in its deal"),
            Self::HelloReceipts => f.write_str("hello receipts in its deal"),
            Self::Commitments { validator } => write!(f, "commitments for validator {validator}"),
            Self::Receipts(kind) => write!(f, "receipts of {kind} messages"),
            Self::Shares => f.write_str("shares"),
            Self::PartialRows => f.write_str("validator rows of partial signatures"),
            Self::Partials { validator } => {
                write!(f, "partial signatures for validator {validator}")
            }
            Self::Attachments => f.write_str("attachments to its partial signatures"),
            Self::AttachmentBytes { validator } => {
                write!(f, "bytes in its attachment for validator {validator}")
            }
        }
    }
}

/// One of the statements a validator signs, as the user reads it: its kind
/// and its place among the statements of that kind (`deposit 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLabel {
    /// The kind.
    pub kind: StatementKind,
    /// Its position among the plan's statements of this kind (0-based).
    pub nth: usize,
}

impl std::fmt::Display for StatementLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            StatementKind::Deposit => write!(f, "deposit {}", self.nth),
            StatementKind::Ownership | StatementKind::Possession if self.nth == 0 => {
                write!(f, "{}", self.kind)
            }
            StatementKind::Ownership | StatementKind::Possession => {
                write!(f, "{} {}", self.kind, self.nth)
            }
        }
    }
}

/// Which value of a message is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Commitment `k` of a deal.
    Commitment(usize),
    /// The proof's commitment `R`.
    ProofR,
    /// The proof's response `z`.
    ProofZ,
    /// A share.
    Share,
    /// The partial signature of a statement.
    Partial(StatementLabel),
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Commitment(k) => write!(f, "commitment {k}"),
            Self::ProofR => f.write_str("proof commitment R"),
            Self::ProofZ => f.write_str("proof response z"),
            Self::Share => f.write_str("share"),
            Self::Partial(statement) => write!(f, "partial signature for {statement}"),
        }
    }
}

/// Which known point a dealer's constant commitment must equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownConstant {
    /// The validator key itself (a split).
    ValidatorKey,
    /// `λ_j·PK_{v,j}`, the dealer's previous public share times its Lagrange
    /// coefficient over the dealers (a reshare).
    WeightedPreviousShare,
}

impl std::fmt::Display for KnownConstant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ValidatorKey => "the validator's public key",
            Self::WeightedPreviousShare => {
                "its previous public share times its Lagrange coefficient over the dealers"
            }
        })
    }
}

/// A failure that is no peer's fault: a bug in the caller, or inputs that
/// contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// This identity is not the plan's key of this slot.
    #[error("this identity is not participant {0}'s key in the plan")]
    NotOurKey(OperatorId),
    /// Our own message of a round is not among the messages given.
    #[error("our own {0} message is missing from the messages given")]
    OwnMessageMissing(MessageKind),
    /// A message filed under one kind is of another (a driver bug).
    #[error("a message given as a {0} message is of another kind")]
    Misfiled(MessageKind),
    /// A dealer of a split or a reshare was not given its secrets, was given
    /// the wrong number, or a fresh dealer was given some.
    #[error("the dealer's secret inputs: {0}")]
    DealerSecrets(&'static str),
    /// A deal or share failed our checks, yet no complaint was made.
    #[error("a deal or share failed locally but no complaint was made")]
    SilentFailure,
    /// A batch failed but every item in it passed alone.
    #[error("a batched check failed although every {0} in it is valid")]
    BatchMismatch(&'static str),
    /// Every dealer's constant commitment is the known point, yet their sum
    /// is not the known validator key: the plan's known keys contradict
    /// each other.
    #[error("validator {0}: the known points of the plan do not add up to its key")]
    KnownKeysInconsistent(usize),
    /// A known key of the plan does not decode.
    #[error("validator {0}: a known key of the plan is not a valid point")]
    KnownKeyInvalid(usize),
    /// The layer above could not build a statement's message.
    #[error("statement {index} ({kind}): {reason}")]
    Statement {
        /// Its index in the plan.
        index: usize,
        /// Its kind.
        kind: StatementKind,
        /// Why.
        reason: String,
    },
    /// A complaint's evidence is not the deal the complainer acknowledged.
    #[error("the deal offered as evidence is not the one operator {0} acknowledged")]
    EvidenceNotAcknowledged(OperatorId),
    /// The layer above could not make this holder's attachment, or made
    /// one of another length than the plan's.
    #[error("cannot make the {kind} attachments: {reason}")]
    Attachment {
        /// What the attachment is.
        kind: AttachmentKind,
        /// Why.
        reason: String,
    },
}

/// A failure of the protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkgError {
    /// The caller passed the wrong set of messages (a bug in the driver, not
    /// a peer's fault).
    #[error("expected {kind} messages from operators {}, got them from {}", list(.expected), list(.got))]
    WrongMessageSet {
        /// The message kind.
        kind: MessageKind,
        /// The operators expected.
        expected: Vec<OperatorId>,
        /// The operators present.
        got: Vec<OperatorId>,
    },
    /// Inputs inconsistent with the ceremony (a bug or a local
    /// misconfiguration, not a peer's fault).
    #[error("local error: {0}")]
    Local(#[from] LocalError),

    /// A message's signature does not verify under its sender's key.
    #[error("operator {culprit} sent a {kind} message with an invalid signature")]
    BadSignature {
        /// The sender.
        culprit: OperatorId,
        /// The message kind.
        kind: MessageKind,
        /// What was received.
        evidence: Box<Evidence>,
    },
    /// A message bound to another session (a replay or another ceremony).
    #[error("operator {culprit} sent a {kind} message for another session")]
    WrongSession {
        /// The sender.
        culprit: OperatorId,
        /// The message kind.
        kind: MessageKind,
        /// What was received.
        evidence: Box<Evidence>,
    },
    /// A message of another round or kind, another protocol version, or
    /// claiming another sender, where this one was expected.
    #[error("operator {culprit} sent {got} where a {expected} message was expected")]
    WrongMessage {
        /// The sender (the authenticated peer).
        culprit: OperatorId,
        /// The kind expected.
        expected: MessageKind,
        /// What the header said.
        got: Mislabel,
        /// What was received.
        evidence: Box<Evidence>,
    },
    /// A hello for another cluster definition.
    #[error("operator {culprit} holds another cluster definition (hash {theirs}, ours {ours})")]
    DefinitionMismatch {
        /// The operator with the other definition.
        culprit: OperatorId,
        /// Its definition hash.
        theirs: crate::wire::Bytes<32>,
        /// Ours.
        ours: crate::wire::Bytes<32>,
        /// Its signed hello.
        evidence: Box<Evidence>,
    },
    /// A point that is not a valid encoding (uncompressed, in messages) of a
    /// point of the prime-order subgroup, or is the identity.
    #[error("operator {culprit} sent an invalid {item} for validator {validator}: {reason}")]
    InvalidPoint {
        /// The dealer.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// Which point.
        item: Item,
        /// Why it is invalid.
        reason: BlsError,
        /// The signed deal.
        evidence: Box<Evidence>,
    },
    /// A scalar that is not canonical (not below the group order).
    #[error("operator {culprit} sent a non-canonical {item} for validator {validator}")]
    InvalidScalar {
        /// The sender.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// Which scalar.
        item: Item,
        /// The signed message.
        evidence: Box<Evidence>,
    },
    /// The wrong number of validators, commitments, shares or signatures.
    #[error("operator {culprit} sent {got} {what}, expected {expected}")]
    WrongCount {
        /// The sender.
        culprit: OperatorId,
        /// What was counted.
        what: Counted,
        /// The number required.
        expected: usize,
        /// The number sent.
        got: usize,
        /// The signed message.
        evidence: Box<Evidence>,
    },
    /// A proof of knowledge that does not verify.
    #[error("operator {culprit} sent an invalid proof of knowledge for validator {validator}")]
    InvalidProof {
        /// The dealer.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// The signed deal.
        evidence: Box<Evidence>,
    },
    /// A constant commitment that is not the point the plan fixes (a split's
    /// dealer sharing another key, a reshare dealer dealing another share).
    #[error(
        "operator {culprit} dealt validator {validator} a constant commitment that is not {expected}"
    )]
    WrongConstant {
        /// The dealer.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// What it had to equal.
        expected: KnownConstant,
        /// The signed deal.
        evidence: Box<Evidence>,
    },
    /// Shares that do not match the dealer's commitments.
    #[error(
        "operator {culprit} sent operator {complainer} a share for validator {validator} that does not match its commitments"
    )]
    InvalidShare {
        /// The dealer.
        culprit: OperatorId,
        /// The operator that received and revealed the share.
        complainer: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// The signed deal and shares.
        evidence: Box<Evidence>,
    },
    /// Shares bound to another deal than the one the dealer broadcast.
    #[error(
        "operator {culprit} sent operator {complainer} shares bound to another deal than its broadcast"
    )]
    SharesForAnotherDeal {
        /// The dealer.
        culprit: OperatorId,
        /// The recipient.
        complainer: OperatorId,
        /// The signed deal and shares.
        evidence: Box<Evidence>,
    },
    /// Different deals sent to different operators.
    #[error("operator {culprit} equivocated: it signed two different {echoed} messages")]
    Equivocation {
        /// The equivocating operator.
        culprit: OperatorId,
        /// The kind of message.
        echoed: MessageKind,
        /// Two receipts with different hashes, both signed by the dealer.
        evidence: Box<Evidence>,
    },
    /// A dealer's hello echoes name a hello other than the one its own
    /// session was computed from.
    #[error(
        "operator {culprit} echoed a hello of operator {operator} that is not the one its session was made from"
    )]
    HelloEchoMismatch {
        /// The dealer.
        culprit: OperatorId,
        /// The operator whose hello it misreported.
        operator: OperatorId,
        /// The deal and the hellos.
        evidence: Box<Evidence>,
    },
    /// Two operators disagree about a third one's hello and so about the
    /// session: either that operator sent two hellos, or the other replayed
    /// one from an earlier ceremony. Nothing shows which.
    #[error(
        "operator {operator}'s hello differs between operators {reporter} and {receiver}: either operator {operator} sent two different hellos or operator {reporter} replayed one from an earlier ceremony"
    )]
    ConflictingHellos {
        /// The operator whose hello differs.
        operator: OperatorId,
        /// The operator whose deal carried the other hello.
        reporter: OperatorId,
        /// This operator.
        receiver: OperatorId,
        /// The two receipts.
        evidence: Box<Evidence>,
    },
    /// A complaint whose evidence does not show the accused dealer at fault.
    #[error("operator {culprit} complained falsely about operator {dealer}")]
    FalseComplaint {
        /// The complainer.
        culprit: OperatorId,
        /// The dealer it accused.
        dealer: OperatorId,
        /// The ack and the dealer's deal.
        evidence: Box<Evidence>,
    },
    /// An echo whose receipt does not verify under its sender's key, or is
    /// out of order.
    #[error(
        "operator {culprit} echoed a forged or misplaced receipt of operator {operator}'s {echoed} message"
    )]
    InvalidReceipt {
        /// The echoing operator.
        culprit: OperatorId,
        /// The operator named in the receipt.
        operator: OperatorId,
        /// The kind of message echoed.
        echoed: MessageKind,
        /// The message carrying the receipt.
        evidence: Box<Evidence>,
    },
    /// A partial signature that does not verify under the signer's public
    /// share.
    #[error(
        "operator {culprit} sent an invalid partial signature for validator {validator}, {statement}"
    )]
    InvalidPartialSignature {
        /// The signer.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// The statement.
        statement: StatementLabel,
        /// The partial signatures and all deals.
        evidence: Box<Evidence>,
    },
    /// A finalize signature on a transcript other than the one every honest
    /// operator holds.
    #[error("operator {culprit} signed another transcript than ours")]
    FinalizeMismatch {
        /// The signer.
        culprit: OperatorId,
        /// The finalize message and our hash.
        evidence: Box<Evidence>,
    },
}

/// What a mislabelled message claimed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mislabel {
    /// A header of another version, kind or sender.
    Header {
        /// Its version.
        version: u16,
        /// Its kind.
        kind: MessageKind,
        /// Its claimed sender.
        sender: OperatorId,
    },
    /// A hello body of another version or for another operator.
    Hello {
        /// Its version.
        version: u16,
        /// The operator it names.
        operator: OperatorId,
    },
    /// A share bundle addressed to another operator.
    SharesFor(OperatorId),
}

impl std::fmt::Display for Mislabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Header {
                version,
                kind,
                sender,
            } => write!(
                f,
                "a version-{version} {kind} message signed as operator {sender}"
            ),
            Self::Hello { version, operator } => {
                write!(f, "a version-{version} hello for operator {operator}")
            }
            Self::SharesFor(recipient) => write!(f, "shares addressed to operator {recipient}"),
        }
    }
}

fn list(ids: &[OperatorId]) -> String {
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl DkgError {
    /// The operator to blame, if any. Exhaustive on purpose: a new variant
    /// must decide whether it identifies a culprit.
    pub fn culprit(&self) -> Option<OperatorId> {
        match self {
            Self::BadSignature { culprit, .. }
            | Self::WrongSession { culprit, .. }
            | Self::WrongMessage { culprit, .. }
            | Self::DefinitionMismatch { culprit, .. }
            | Self::InvalidPoint { culprit, .. }
            | Self::InvalidScalar { culprit, .. }
            | Self::WrongCount { culprit, .. }
            | Self::InvalidProof { culprit, .. }
            | Self::WrongConstant { culprit, .. }
            | Self::InvalidShare { culprit, .. }
            | Self::SharesForAnotherDeal { culprit, .. }
            | Self::Equivocation { culprit, .. }
            | Self::FalseComplaint { culprit, .. }
            | Self::InvalidReceipt { culprit, .. }
            | Self::InvalidPartialSignature { culprit, .. }
            | Self::FinalizeMismatch { culprit, .. }
            | Self::HelloEchoMismatch { culprit, .. } => Some(*culprit),
            Self::WrongMessageSet { .. } | Self::Local(_) | Self::ConflictingHellos { .. } => None,
        }
    }

    /// The evidence of the blame, if any.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Self::BadSignature { evidence, .. }
            | Self::WrongSession { evidence, .. }
            | Self::WrongMessage { evidence, .. }
            | Self::DefinitionMismatch { evidence, .. }
            | Self::InvalidPoint { evidence, .. }
            | Self::InvalidScalar { evidence, .. }
            | Self::WrongCount { evidence, .. }
            | Self::InvalidProof { evidence, .. }
            | Self::WrongConstant { evidence, .. }
            | Self::InvalidShare { evidence, .. }
            | Self::SharesForAnotherDeal { evidence, .. }
            | Self::Equivocation { evidence, .. }
            | Self::FalseComplaint { evidence, .. }
            | Self::InvalidReceipt { evidence, .. }
            | Self::InvalidPartialSignature { evidence, .. }
            | Self::FinalizeMismatch { evidence, .. }
            | Self::HelloEchoMismatch { evidence, .. }
            | Self::ConflictingHellos { evidence, .. } => Some(evidence),
            Self::WrongMessageSet { .. } | Self::Local(_) => None,
        }
    }

    /// Whether this is a local failure (a bug or contradictory inputs), not
    /// anything a peer did. Exhaustive on purpose.
    pub fn is_local(&self) -> bool {
        match self {
            Self::WrongMessageSet { .. } | Self::Local(_) => true,
            Self::BadSignature { .. }
            | Self::WrongSession { .. }
            | Self::WrongMessage { .. }
            | Self::DefinitionMismatch { .. }
            | Self::InvalidPoint { .. }
            | Self::InvalidScalar { .. }
            | Self::WrongCount { .. }
            | Self::InvalidProof { .. }
            | Self::WrongConstant { .. }
            | Self::InvalidShare { .. }
            | Self::SharesForAnotherDeal { .. }
            | Self::Equivocation { .. }
            | Self::FalseComplaint { .. }
            | Self::InvalidReceipt { .. }
            | Self::InvalidPartialSignature { .. }
            | Self::FinalizeMismatch { .. }
            | Self::HelloEchoMismatch { .. }
            | Self::ConflictingHellos { .. } => false,
        }
    }
}
