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

/// A failure of the protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkgError {
    /// The caller passed the wrong set of messages (a bug in the driver, not
    /// a peer's fault).
    #[error("expected {kind} messages from operators {expected:?}, got them from {got:?}")]
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
    #[error("invalid local input: {0}")]
    InvalidInput(String),

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
        got: String,
        /// What was received.
        evidence: Box<Evidence>,
    },
    /// A hello for another cluster definition.
    #[error("operator {culprit} holds another cluster definition (hash {theirs}, ours {ours})")]
    DefinitionMismatch {
        /// The operator with the other definition.
        culprit: OperatorId,
        /// Its definition hash.
        theirs: String,
        /// Ours.
        ours: String,
        /// Its signed hello.
        evidence: Box<Evidence>,
    },
    /// A point that is not a valid compressed point of the subgroup, or is
    /// the identity.
    #[error("operator {culprit} sent an invalid {item} for validator {validator}: {reason}")]
    InvalidPoint {
        /// The dealer.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// Which point (`commitment 2`, `proof commitment`).
        item: String,
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
        item: String,
        /// The signed message.
        evidence: Box<Evidence>,
    },
    /// The wrong number of validators, commitments, shares or signatures.
    #[error("operator {culprit} sent {got} {what}, expected {expected}")]
    WrongCount {
        /// The sender.
        culprit: OperatorId,
        /// What was counted.
        what: String,
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
        "operator {culprit} sent an invalid partial signature for validator {validator}, deposit {deposit}"
    )]
    InvalidPartialSignature {
        /// The signer.
        culprit: OperatorId,
        /// The validator index (0-based).
        validator: usize,
        /// The deposit index within the validator (0-based).
        deposit: usize,
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
            | Self::InvalidShare { culprit, .. }
            | Self::SharesForAnotherDeal { culprit, .. }
            | Self::Equivocation { culprit, .. }
            | Self::FalseComplaint { culprit, .. }
            | Self::InvalidReceipt { culprit, .. }
            | Self::InvalidPartialSignature { culprit, .. }
            | Self::FinalizeMismatch { culprit, .. }
            | Self::HelloEchoMismatch { culprit, .. } => Some(*culprit),
            Self::WrongMessageSet { .. }
            | Self::InvalidInput(_)
            | Self::ConflictingHellos { .. } => None,
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
            | Self::InvalidShare { evidence, .. }
            | Self::SharesForAnotherDeal { evidence, .. }
            | Self::Equivocation { evidence, .. }
            | Self::FalseComplaint { evidence, .. }
            | Self::InvalidReceipt { evidence, .. }
            | Self::InvalidPartialSignature { evidence, .. }
            | Self::FinalizeMismatch { evidence, .. }
            | Self::HelloEchoMismatch { evidence, .. }
            | Self::ConflictingHellos { evidence, .. } => Some(evidence),
            Self::WrongMessageSet { .. } | Self::InvalidInput(_) => None,
        }
    }
}
