//! The protocol's messages, as signed and sent. Spec: `ceremony-specs/protocol.md`,
//! section "Messages".
//!
//! Points and scalars travel as raw bytes ([`Bytes`]) and are validated by the
//! round that consumes them, so that a signed message carrying a bad point is
//! itself the evidence against its sender.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ceremony::OperatorId;
use crate::crypto::identity::{IdentityKey, IdentityPublicKey, IdentitySignature};
use crate::wire::{self, Bytes, VarBytes};

/// The protocol version carried in every header and hello.
pub const PROTOCOL_VERSION: u16 = 2;

/// Domain of the digest every operator signs (protocol.md, "Signed messages").
pub const SIGNED_MESSAGE_DOMAIN: &[u8] = b"dvkg/2 signed message";

/// What a message is, which fixes its round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// Round 0: hello.
    Hello,
    /// Round 1: the dealer's broadcast commitments and proofs.
    Deal,
    /// Round 1: the dealer's private shares for one recipient.
    Shares,
    /// Round 2: acknowledgement with echo hashes and complaints.
    Ack,
    /// Round 3: partial signatures.
    Partials,
    /// Round 4: the signed transcript hash.
    Finalize,
}

impl MessageKind {
    /// The protocol round this message belongs to.
    pub fn round(self) -> u8 {
        match self {
            Self::Hello => 0,
            Self::Deal | Self::Shares => 1,
            Self::Ack => 2,
            Self::Partials => 3,
            Self::Finalize => 4,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Hello => "hello",
            Self::Deal => "deal",
            Self::Shares => "shares",
            Self::Ack => "ack",
            Self::Partials => "partial signatures",
            Self::Finalize => "finalize",
        };
        write!(f, "round-{} {name}", self.round())
    }
}

/// A message body, which knows its kind.
pub trait Body: Serialize + DeserializeOwned + Clone {
    /// The kind of message this body is sent in.
    const KIND: MessageKind;
}

/// What every signature binds besides the body: version, session, kind and
/// sender. For hellos the session is the definition hash (the session id is
/// not known yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The session id (the definition hash for hellos).
    pub session: Bytes<32>,
    /// The message kind (and so the round).
    pub kind: MessageKind,
    /// The signing operator.
    pub sender: OperatorId,
}

/// A body signed by its sender's identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Body"))]
pub struct Signed<T: Body> {
    /// The context the signature binds.
    pub header: Header,
    /// The content.
    pub body: T,
    /// Ed25519 over [`signed_digest`]`(header, body_hash(body))`.
    pub signature: IdentitySignature,
}

/// `SHA-256(encode(body))`: what an echo hash is computed over.
pub fn body_hash<T: Serialize>(body: &T) -> [u8; 32] {
    let mut hasher = Sha256::new();
    wire::hash_encoding(&mut hasher, body);
    hasher.finalize().into()
}

/// `SHA-256(SIGNED_MESSAGE_DOMAIN ‖ encode(header) ‖ body_hash)`: what the
/// sender signs.
pub fn signed_digest(header: &Header, body_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(SIGNED_MESSAGE_DOMAIN);
    hasher.update(wire::encode(header).unwrap_or_default());
    hasher.update(body_hash);
    hasher.finalize().into()
}

impl<T: Body> Signed<T> {
    /// Signs `body` as `sender` in `session`.
    pub fn sign(key: &IdentityKey, session: [u8; 32], sender: OperatorId, body: T) -> Self {
        let header = Header {
            version: PROTOCOL_VERSION,
            session: Bytes(session),
            kind: T::KIND,
            sender,
        };
        let signature = key.sign(&signed_digest(&header, &body_hash(&body)));
        Self {
            header,
            body,
            signature,
        }
    }

    /// The hash of the body (the echo hash for deals).
    pub fn body_hash(&self) -> [u8; 32] {
        body_hash(&self.body)
    }

    /// Whether the signature verifies under `key`.
    pub fn signature_valid(&self, key: &IdentityPublicKey) -> bool {
        key.verify(
            &signed_digest(&self.header, &self.body_hash()),
            &self.signature,
        )
    }
}

/// Round 0: an operator announces itself (protocol.md, Round 0, Step 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The hash of the definition this participant holds.
    pub definition_hash: Bytes<32>,
    /// The participant's slot.
    pub operator: OperatorId,
    /// 32 fresh random bytes; all nonces together make the session id.
    pub nonce: Bytes<32>,
}

impl Body for Hello {
    const KIND: MessageKind = MessageKind::Hello;
}

/// A Schnorr proof of knowledge of a polynomial's constant term, as bytes:
/// `R = k·G1` (uncompressed) and `z = k + c·a_0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBytes {
    /// `R`, uncompressed G1 (96 bytes).
    pub r: Bytes<96>,
    /// `z`, a big-endian scalar.
    pub z: Bytes<32>,
}

/// One validator's part of a deal: Feldman commitments and the proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorDeal {
    /// `C_k = a_k·G1` for `k < t`, uncompressed (96 bytes each): decoding
    /// needs no square root, the largest cost of receiving a deal.
    pub commitments: Vec<Bytes<96>>,
    /// Proof of knowledge of `a_0`.
    pub proof: ProofBytes,
}

/// Round 1 broadcast: a dealer's commitments for every validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealBundle {
    /// Echo of round 0: a receipt of every participant's hello, in slot
    /// order.
    pub hellos: Vec<Receipt>,
    /// One entry per validator, in validator order.
    pub validators: Vec<ValidatorDeal>,
}

impl Body for DealBundle {
    const KIND: MessageKind = MessageKind::Deal;
}

/// A share `f(i)` as a 32-byte big-endian scalar.
///
/// # Security
///
/// This is key material in transit: it exists only inside a [`ShareBundle`],
/// is encoded only by `wire` into a buffer sent over the pinned TLS channel,
/// and appears in public files only as complaint evidence after an abort
/// (when the shares it reveals are never used). Wiped on drop; `Debug` is
/// redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct ShareBytes(Bytes<32>);

impl fmt::Debug for ShareBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareBytes(<redacted>)")
    }
}

impl ShareBytes {
    /// Wraps the big-endian bytes of a share.
    pub fn new(bytes: &crate::crypto::SecretBytes<32>) -> Self {
        Self(Bytes(*bytes.expose_secret()))
    }

    /// The raw bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0.0
    }
}

/// Round 1 private message: a dealer's shares for one recipient, bound to the
/// hash of the dealer's broadcast deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBundle {
    /// The holder these shares are for.
    pub recipient: OperatorId,
    /// [`body_hash`] of the dealer's [`DealBundle`].
    pub deal_hash: Bytes<32>,
    /// `f_v(x)` for every validator `v`, `x` the recipient's share index.
    pub shares: Vec<ShareBytes>,
}

impl Body for ShareBundle {
    const KIND: MessageKind = MessageKind::Shares;
}

/// The echo of one broadcast message: its body hash and its sender's
/// signature, enough for anyone to check that the sender signed that body
/// (protocol.md, "Echoes"). Two receipts for the same sender and kind with
/// different hashes or signatures prove that the sender equivocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The sender of the echoed message.
    pub operator: OperatorId,
    /// [`body_hash`] of the message as received.
    pub hash: Bytes<32>,
    /// The sender's signature on it.
    pub signature: IdentitySignature,
}

impl Receipt {
    /// The receipt of a received message.
    pub fn of<T: Body>(message: &Signed<T>) -> Self {
        Self {
            operator: message.header.sender,
            hash: Bytes(message.body_hash()),
            signature: message.signature,
        }
    }

    /// Whether the receipt's signature verifies for a `kind` message of
    /// `session` under `key`.
    pub fn valid(&self, kind: MessageKind, session: &[u8; 32], key: &IdentityPublicKey) -> bool {
        let header = Header {
            version: PROTOCOL_VERSION,
            session: Bytes(*session),
            kind,
            sender: self.operator,
        };
        key.verify(&signed_digest(&header, &self.hash.0), &self.signature)
    }
}

/// A self-proving complaint against a dealer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Complaint {
    /// The dealer's broadcast deal is invalid (publicly checkable).
    BadDeal {
        /// The deal as received, signed by the dealer.
        deal: Signed<DealBundle>,
    },
    /// The dealer's private shares do not match its commitments; the
    /// complainer reveals them.
    BadShares {
        /// The shares as received, signed by the dealer.
        shares: Signed<ShareBundle>,
    },
}

impl Complaint {
    /// The accused dealer.
    pub fn dealer(&self) -> OperatorId {
        match self {
            Self::BadDeal { deal } => deal.header.sender,
            Self::BadShares { shares } => shares.header.sender,
        }
    }
}

/// Round 2 broadcast: what the operator received, and its complaints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// Echo of round 1: a receipt of every dealer's deal, in slot order.
    pub deals: Vec<Receipt>,
    /// Complaints; empty when every deal and share checked out.
    pub complaints: Vec<Complaint>,
}

impl Body for Ack {
    const KIND: MessageKind = MessageKind::Ack;
}

/// Round 3 broadcast of a holder: partial signatures,
/// `[validator][statement]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialSignatures {
    /// Echo of round 2: a receipt of every participant's ack, in slot
    /// order.
    pub acks: Vec<Receipt>,
    /// Uncompressed G2 partial signatures (192 bytes each).
    pub signatures: Vec<Vec<Bytes<192>>>,
    /// The plan's attachments, one per validator, each of the plan's
    /// length; empty when the plan has none.
    pub attachments: Vec<VarBytes>,
}

impl Body for PartialSignatures {
    const KIND: MessageKind = MessageKind::Partials;
}

/// Round 4 broadcast: the participant's signature on the transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finalize {
    /// Echo of round 3: a receipt of every holder's partial-signature
    /// message, in slot order.
    pub partials: Vec<Receipt>,
    /// [`crate::dkg::transcript::Transcript::hash`].
    pub transcript_hash: Bytes<32>,
}

impl Body for Finalize {
    const KIND: MessageKind = MessageKind::Finalize;
}

/// Any signed protocol message, for evidence and abort reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "snake_case",
    tag = "kind",
    content = "message"
)]
pub enum AnySigned {
    /// A hello.
    Hello(Signed<Hello>),
    /// A deal.
    Deal(Signed<DealBundle>),
    /// A share bundle.
    Shares(Signed<ShareBundle>),
    /// An ack.
    Ack(Signed<Ack>),
    /// Partial signatures.
    Partials(Signed<PartialSignatures>),
    /// A finalize message.
    Finalize(Signed<Finalize>),
}

impl AnySigned {
    /// The header.
    pub fn header(&self) -> &Header {
        match self {
            Self::Hello(m) => &m.header,
            Self::Deal(m) => &m.header,
            Self::Shares(m) => &m.header,
            Self::Ack(m) => &m.header,
            Self::Partials(m) => &m.header,
            Self::Finalize(m) => &m.header,
        }
    }

    /// The echoed receipts the message carries, if it is of a kind that
    /// carries them, with the kind they echo.
    pub fn receipts(&self) -> Option<(MessageKind, &[Receipt])> {
        match self {
            Self::Deal(m) => Some((MessageKind::Hello, &m.body.hellos)),
            Self::Ack(m) => Some((MessageKind::Deal, &m.body.deals)),
            Self::Partials(m) => Some((MessageKind::Ack, &m.body.acks)),
            Self::Finalize(m) => Some((MessageKind::Partials, &m.body.partials)),
            Self::Hello(_) | Self::Shares(_) => None,
        }
    }
}

impl AnySigned {
    /// The kind of the message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Hello(_) => MessageKind::Hello,
            Self::Deal(_) => MessageKind::Deal,
            Self::Shares(_) => MessageKind::Shares,
            Self::Ack(_) => MessageKind::Ack,
            Self::Partials(_) => MessageKind::Partials,
            Self::Finalize(_) => MessageKind::Finalize,
        }
    }

    /// Decodes a message of `kind` from its canonical encoding (at most
    /// `max` bytes).
    ///
    /// # Errors
    ///
    /// [`wire::WireError`] when the bytes are not a `kind` message.
    pub fn decode(kind: MessageKind, bytes: &[u8], max: u64) -> Result<Self, wire::WireError> {
        Ok(match kind {
            MessageKind::Hello => Self::Hello(wire::decode(bytes, max)?),
            MessageKind::Deal => Self::Deal(wire::decode(bytes, max)?),
            MessageKind::Shares => Self::Shares(wire::decode(bytes, max)?),
            MessageKind::Ack => Self::Ack(wire::decode(bytes, max)?),
            MessageKind::Partials => Self::Partials(wire::decode(bytes, max)?),
            MessageKind::Finalize => Self::Finalize(wire::decode(bytes, max)?),
        })
    }

    /// The canonical encoding of the message (what travels).
    ///
    /// # Errors
    ///
    /// [`wire::WireError`], a bug.
    pub fn encode(&self) -> Result<Vec<u8>, wire::WireError> {
        match self {
            Self::Hello(m) => wire::encode(m),
            Self::Deal(m) => wire::encode(m),
            Self::Shares(m) => wire::encode(m),
            Self::Ack(m) => wire::encode(m),
            Self::Partials(m) => wire::encode(m),
            Self::Finalize(m) => wire::encode(m),
        }
    }
}

impl MessageKind {
    /// Every kind, in round order.
    pub const ALL: [Self; 6] = [
        Self::Hello,
        Self::Deal,
        Self::Shares,
        Self::Ack,
        Self::Partials,
        Self::Finalize,
    ];

    /// The kind's number on the wire (its index in [`MessageKind::ALL`]).
    pub fn tag(self) -> u8 {
        match self {
            Self::Hello => 0,
            Self::Deal => 1,
            Self::Shares => 2,
            Self::Ack => 3,
            Self::Partials => 4,
            Self::Finalize => 5,
        }
    }

    /// The kind with wire number `tag`.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

/// Wraps a typed message into [`AnySigned`].
pub trait IntoAny {
    /// The wrapped message.
    fn into_any(self) -> AnySigned;
}

/// Unwraps an [`AnySigned`] of the right kind.
pub trait FromAny: Sized {
    /// The typed message, if `any` is of this kind.
    fn from_any(any: AnySigned) -> Option<Self>;
}

macro_rules! into_any {
    ($body:ty, $variant:ident) => {
        impl IntoAny for Signed<$body> {
            fn into_any(self) -> AnySigned {
                AnySigned::$variant(self)
            }
        }

        impl FromAny for Signed<$body> {
            fn from_any(any: AnySigned) -> Option<Self> {
                match any {
                    AnySigned::$variant(m) => Some(m),
                    _ => None,
                }
            }
        }
    };
}
into_any!(Hello, Hello);
into_any!(DealBundle, Deal);
into_any!(ShareBundle, Shares);
into_any!(Ack, Ack);
into_any!(PartialSignatures, Partials);
into_any!(Finalize, Finalize);
