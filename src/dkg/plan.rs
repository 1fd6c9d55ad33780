//! The plan of a ceremony: who takes part, in which roles, at which share
//! index, how the dealings combine, and what each validator's key signs.
//!
//! One core runs three ceremonies (protocol.md §2):
//!
//! | kind | dealers | holders | combination |
//! |---|---|---|---|
//! | `dkg` | every participant | every participant | [`Combine::Fresh`]: the Joint-Feldman sum |
//! | `split` | one dealer, who holds no share | every other participant | [`Combine::Split`]: the dealer's constant commitment is the known validator key |
//! | `reshare` | old operators | new operators | [`Combine::Reshare`]: each dealer's constant commitment is λ_j·PK_j, and their sum the known validator key |
//!
//! A participant is named by its **slot** ([`OperatorId`]): its sender id and
//! its position in the roster (slot `s` at position `s − 1`). A **holder**
//! receives a share of every validator key, evaluated at its **share index**
//! (a nonzero `u64`, distinct within the ceremony: slot numbers in a DKG, SSV
//! operator ids in an SSV cluster, the new set's indices in a reshare). A
//! **dealer** deals a polynomial per validator. "Who sends this message" is
//! one question, [`Plan::senders`], that every check asks.
//!
//! Spec: `ceremony-specs/protocol.md`, §2.

use std::fmt;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::messages::{Hello, MessageKind, Signed};
use crate::ceremony::{MAX_PARTICIPANTS, OperatorId, Params, ParamsError};
use crate::crypto::Scalar;
use crate::crypto::identity::IdentityPublicKey;
use crate::wire::{Bytes, VarBytes};

/// Which ceremony a plan runs. It enters the session id, every domain
/// string and the transcript hash, so no message of one kind of ceremony is
/// valid in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeremonyKind {
    /// A fresh distributed key generation.
    Dkg,
    /// One dealer shares existing validator keys.
    Split,
    /// Old operators reshare existing validator keys to new ones.
    Reshare,
}

impl CeremonyKind {
    /// The name used in domain strings and files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dkg => "dkg",
            Self::Split => "split",
            Self::Reshare => "reshare",
        }
    }

    /// The domain string `"dvkg/2 <kind> <purpose>"` (protocol.md §9).
    pub fn domain(self, purpose: &str) -> Vec<u8> {
        format!(
            "dvkg/{} {} {purpose}",
            super::messages::PROTOCOL_VERSION,
            self.name()
        )
        .into_bytes()
    }
}

impl fmt::Display for CeremonyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The point at which a holder's shares are evaluated: a nonzero integer,
/// distinct within a ceremony (`f(0)` is the secret).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct ShareIndex(NonZeroU64);

/// Why a value is not a share index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("share index 0 is not allowed: f(0) is the secret")]
pub struct ShareIndexError;

impl ShareIndex {
    /// The index as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The index as a field element.
    pub fn scalar(self) -> Scalar {
        Scalar::from_u64(self.get())
    }

    /// The default index of a slot: the slot number.
    pub fn of_slot(slot: OperatorId) -> Self {
        Self(NonZeroU64::from(slot.nonzero()))
    }
}

impl TryFrom<u64> for ShareIndex {
    type Error = ShareIndexError;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        NonZeroU64::new(value).map(Self).ok_or(ShareIndexError)
    }
}

impl From<ShareIndex> for u64 {
    fn from(index: ShareIndex) -> u64 {
        index.get()
    }
}

impl fmt::Display for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl fmt::Debug for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareIndex({})", self.get())
    }
}

/// One participant: its identity key and its roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    /// The Ed25519 key that signs its messages (and its TLS certificate).
    pub identity: IdentityPublicKey,
    /// Whether it deals a polynomial per validator.
    pub deals: bool,
    /// The share index it holds its shares at; `None` for a dealer that
    /// holds no share.
    pub share: Option<ShareIndex>,
}

/// What a reshare dealer held before: its share index in the previous lock
/// and its public share of every validator there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousShares {
    /// The dealer's slot in this ceremony.
    pub dealer: OperatorId,
    /// Its share index in the previous ceremony.
    pub index: ShareIndex,
    /// `PK_{v,j}`, its public share of validator `v` in the previous lock
    /// (compressed).
    pub public_shares: Vec<Bytes<48>>,
}

/// How the dealings combine into the validator keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Combine {
    /// Joint-Feldman: each dealer's constant term is its own random scalar;
    /// the validator key is their sum.
    Fresh,
    /// One dealer whose constant commitment of validator `v` must equal the
    /// known validator key `group_keys[v]`.
    Split {
        /// The validator keys (compressed), in validator order.
        group_keys: Vec<Bytes<48>>,
    },
    /// Several dealers, dealer `j`'s constant commitment of validator `v`
    /// must equal `λ_j·PK_{v,j}` (λ_j its Lagrange coefficient at 0 over the
    /// dealers' previous indices), and the sum of those the known key.
    Reshare {
        /// The validator keys (compressed), in validator order.
        group_keys: Vec<Bytes<48>>,
        /// Every dealer's previous index and public shares, in slot order.
        previous: Vec<PreviousShares>,
    },
}

/// What a statement is, for the layer that defines its bytes and for
/// messages to the user. The core treats every kind alike, except
/// [`StatementKind::Possession`], whose message it builds itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// A deposit message (the layer above computes its signing root).
    Deposit,
    /// An ownership message (the layer above computes it).
    Ownership,
    /// Proof that the shares sign for the validator key, bound to the
    /// session (protocol.md §2.3); built by the core.
    Possession,
}

impl fmt::Display for StatementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deposit => "deposit",
            Self::Ownership => "ownership message",
            Self::Possession => "possession message",
        })
    }
}

/// One statement every validator's key signs: its kind and the parameters
/// the defining layer reads (opaque to the core, but hashed with the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// What it is.
    pub kind: StatementKind,
    /// Its parameters, encoded by the defining layer (formats.md §4.5).
    pub params: VarBytes,
}

/// What the layer above makes each holder attach to its partial
/// signatures, per validator. The core carries the attachments into the
/// transcript and checks only their number and length: what they contain
/// (for SSV, the holder's share encrypted to its own operator key) no
/// other participant can check (protocol.md §2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// The holder's share of the validator key, RSA-encrypted to its SSV
    /// operator key (the ciphertext of its slot in `sharesData`).
    SsvShare,
}

impl fmt::Display for AttachmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SsvShare => "encrypted SSV share",
        })
    }
}

/// The attachments of a plan: their kind, their exact length, and each
/// holder's parameters (opaque to the core, read by the layer that makes
/// them: for SSV, the holder's registered operator key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachments {
    /// What they are.
    pub kind: AttachmentKind,
    /// The length of every attachment, in bytes: 1 to
    /// [`MAX_ATTACHMENT_BYTES`].
    pub bytes: u32,
    /// Each holder's parameters, in holder order.
    pub params: Vec<VarBytes>,
}

/// The longest attachment a plan may ask for (an RSA-4096 ciphertext is 512
/// bytes).
pub const MAX_ATTACHMENT_BYTES: u32 = 1024;

/// The plan of one ceremony: valid by construction, including through
/// serde (every check of [`Plan::new`] runs on deserialization).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPlan", into = "RawPlan")]
pub struct Plan {
    raw: RawPlan,
    params: Params,
    /// Every slot, in order.
    all: Vec<OperatorId>,
    /// The dealers' slots, in order.
    dealers: Vec<OperatorId>,
    /// The holders' slots, in order.
    holders: Vec<OperatorId>,
    /// The holders' share indices, in holder order.
    indices: Vec<ShareIndex>,
}

/// The serialized plan (protocol.md §2.1 gives its encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    /// The ceremony kind.
    pub kind: CeremonyKind,
    /// Every participant, in slot order.
    pub participants: Vec<Participant>,
    /// `t`: holders needed to sign.
    pub threshold: u8,
    /// `V`: validators.
    pub validators: u32,
    /// How the dealings combine.
    pub combine: Combine,
    /// What each validator's key signs, in order.
    pub statements: Vec<Statement>,
    /// What each holder attaches to its partial signatures, if anything.
    pub attachments: Option<Attachments>,
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No participant, or more than the protocol allows.
    #[error("{0} participants: a ceremony has between 1 and {MAX_PARTICIPANTS}")]
    Participants(usize),
    /// The holders, threshold or validators are out of range.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Two holders at one share index.
    #[error("participants {first} and {second} both hold shares at index {index}")]
    DuplicateIndex {
        /// The shared index.
        index: ShareIndex,
        /// The first participant.
        first: OperatorId,
        /// The second.
        second: OperatorId,
    },
    /// The roles do not fit the ceremony kind.
    #[error("a {kind} ceremony {rule}")]
    Roles {
        /// The kind.
        kind: CeremonyKind,
        /// The rule broken.
        rule: &'static str,
    },
    /// A list of known keys or public shares of the wrong length.
    #[error("{what}: {got} entries for {expected} validators")]
    KnownKeys {
        /// Which list.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The number of validators.
        expected: usize,
    },
    /// Nothing to sign.
    #[error("no statement to sign")]
    NoStatement,
    /// Attachments of no length, too long, or not one entry of parameters
    /// per holder.
    #[error(
        "attachments: {rule} (got {bytes} bytes each and parameters for {params} of {holders} holders)"
    )]
    Attachments {
        /// The rule broken.
        rule: &'static str,
        /// The length asked for.
        bytes: u32,
        /// Parameter entries given.
        params: usize,
        /// Holders in the plan.
        holders: usize,
    },
}

impl Plan {
    /// Validates a plan.
    ///
    /// # Errors
    ///
    /// [`PlanError`] naming the rule broken.
    pub fn new(raw: RawPlan) -> Result<Self, PlanError> {
        let count = raw.participants.len();
        if count == 0 || count > usize::from(MAX_PARTICIPANTS) {
            return Err(PlanError::Participants(count));
        }
        let all: Vec<OperatorId> = (0..count)
            .map(OperatorId::from_position)
            .collect::<Result<_, _>>()
            .map_err(|_| PlanError::Participants(count))?;
        let dealers: Vec<OperatorId> = all
            .iter()
            .zip(&raw.participants)
            .filter(|(_, p)| p.deals)
            .map(|(&s, _)| s)
            .collect();
        let holding: Vec<(OperatorId, ShareIndex)> = all
            .iter()
            .zip(&raw.participants)
            .filter_map(|(&s, p)| p.share.map(|i| (s, i)))
            .collect();
        let params = Params::new(
            holding.len() as u64,
            u64::from(raw.threshold),
            u64::from(raw.validators),
        )?;
        for (position, &(slot, index)) in holding.iter().enumerate() {
            if let Some(&(first, _)) = holding.iter().take(position).find(|(_, i)| *i == index) {
                return Err(PlanError::DuplicateIndex {
                    index,
                    first,
                    second: slot,
                });
            }
        }
        let roles = |rule| PlanError::Roles {
            kind: raw.kind,
            rule,
        };
        let v = params.validators();
        let known = |what, list: &[Bytes<48>]| {
            if list.len() == v {
                Ok(())
            } else {
                Err(PlanError::KnownKeys {
                    what,
                    got: list.len(),
                    expected: v,
                })
            }
        };
        match (&raw.kind, &raw.combine) {
            (CeremonyKind::Dkg, Combine::Fresh) => {
                if raw
                    .participants
                    .iter()
                    .any(|p| !p.deals || p.share.is_none())
                {
                    return Err(roles("has every participant deal and hold a share"));
                }
            }
            (CeremonyKind::Split, Combine::Split { group_keys }) => {
                known("group_keys", group_keys)?;
                let [dealer] = dealers.as_slice() else {
                    return Err(roles("has exactly one dealer"));
                };
                let dealer_holds = raw
                    .participants
                    .get(dealer.position())
                    .is_some_and(|p| p.share.is_some());
                if dealer_holds || holding.len() + 1 != count {
                    return Err(roles(
                        "has a dealer that holds no share, and every other participant holds one",
                    ));
                }
            }
            (
                CeremonyKind::Reshare,
                Combine::Reshare {
                    group_keys,
                    previous,
                },
            ) => {
                known("group_keys", group_keys)?;
                if dealers.is_empty() {
                    return Err(roles("has at least one dealer"));
                }
                let listed: Vec<OperatorId> = previous.iter().map(|p| p.dealer).collect();
                if listed != dealers {
                    return Err(roles(
                        "lists the previous shares of exactly its dealers, in slot order",
                    ));
                }
                for (position, p) in previous.iter().enumerate() {
                    known("previous public shares", &p.public_shares)?;
                    if previous.iter().take(position).any(|q| q.index == p.index) {
                        return Err(roles("has dealers at distinct previous indices"));
                    }
                }
            }
            _ => return Err(roles("needs its own combination of dealings")),
        }
        if raw.statements.is_empty() {
            return Err(PlanError::NoStatement);
        }
        if let Some(a) = &raw.attachments {
            let fault = |rule| PlanError::Attachments {
                rule,
                bytes: a.bytes,
                params: a.params.len(),
                holders: holding.len(),
            };
            if a.bytes == 0 || a.bytes > MAX_ATTACHMENT_BYTES {
                return Err(fault("each is 1 to 1024 bytes long"));
            }
            if a.params.len() != holding.len() {
                return Err(fault("every holder has its parameters"));
            }
        }
        let (holders, indices) = holding.into_iter().unzip();
        Ok(Self {
            raw,
            params,
            all,
            dealers,
            holders,
            indices,
        })
    }

    /// A DKG plan: every participant deals and holds a share at `indices`
    /// (slot numbers when `None`).
    ///
    /// # Errors
    ///
    /// As [`Plan::new`].
    pub fn dkg(
        roster: &[IdentityPublicKey],
        indices: Option<&[ShareIndex]>,
        threshold: u8,
        validators: u32,
        statements: Vec<Statement>,
    ) -> Result<Self, PlanError> {
        let participants = roster
            .iter()
            .enumerate()
            .map(|(position, &identity)| {
                let slot = OperatorId::from_position(position)
                    .map_err(|_| PlanError::Participants(roster.len()))?;
                let share = match indices {
                    Some(list) => *list.get(position).ok_or(PlanError::Roles {
                        kind: CeremonyKind::Dkg,
                        rule: "gives every participant a share index",
                    })?,
                    None => ShareIndex::of_slot(slot),
                };
                Ok(Participant {
                    identity,
                    deals: true,
                    share: Some(share),
                })
            })
            .collect::<Result<_, PlanError>>()?;
        Self::new(RawPlan {
            kind: CeremonyKind::Dkg,
            participants,
            threshold,
            validators,
            combine: Combine::Fresh,
            statements,
            attachments: None,
        })
    }

    /// The same plan, with every holder attaching `attachments` to its
    /// partial signatures.
    ///
    /// # Errors
    ///
    /// As [`Plan::new`].
    pub fn with_attachments(self, attachments: Attachments) -> Result<Self, PlanError> {
        let mut raw = self.raw;
        raw.attachments = Some(attachments);
        Self::new(raw)
    }

    /// What each holder attaches to its partial signatures, if anything.
    pub fn attachments(&self) -> Option<&Attachments> {
        self.raw.attachments.as_ref()
    }

    /// The parameters of `slot`'s attachments, if the plan has attachments
    /// and `slot` holds shares.
    pub fn attachment_params(&self, slot: OperatorId) -> Option<(&Attachments, &[u8])> {
        let attachments = self.attachments()?;
        let position = self.holder_position(slot)?;
        attachments
            .params
            .get(position)
            .map(|p| (attachments, p.0.as_slice()))
    }

    /// The plan as serialized.
    pub fn raw(&self) -> &RawPlan {
        &self.raw
    }

    /// The ceremony kind.
    pub fn kind(&self) -> CeremonyKind {
        self.raw.kind
    }

    /// `n` (holders), `t`, `V`.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Every participant, in slot order.
    pub fn participants(&self) -> &[Participant] {
        &self.raw.participants
    }

    /// Every slot, in order.
    pub fn slots(&self) -> &[OperatorId] {
        &self.all
    }

    /// Whether `slot` takes part.
    pub fn contains(&self, slot: OperatorId) -> bool {
        slot.position() < self.all.len()
    }

    /// The identity key of `slot`.
    pub fn key(&self, slot: OperatorId) -> Option<&IdentityPublicKey> {
        self.raw
            .participants
            .get(slot.position())
            .map(|p| &p.identity)
    }

    /// The dealers, in slot order.
    pub fn dealers(&self) -> &[OperatorId] {
        &self.dealers
    }

    /// The holders, in slot order.
    pub fn holders(&self) -> &[OperatorId] {
        &self.holders
    }

    /// The holders' share indices, in holder order.
    pub fn indices(&self) -> &[ShareIndex] {
        &self.indices
    }

    /// Whether `slot` deals.
    pub fn deals(&self, slot: OperatorId) -> bool {
        self.dealers.binary_search(&slot).is_ok()
    }

    /// `slot`'s position among the holders, if it holds shares.
    pub fn holder_position(&self, slot: OperatorId) -> Option<usize> {
        self.holders.binary_search(&slot).ok()
    }

    /// `slot`'s share index, if it holds shares.
    pub fn share_index(&self, slot: OperatorId) -> Option<ShareIndex> {
        self.raw
            .participants
            .get(slot.position())
            .and_then(|p| p.share)
    }

    /// How the dealings combine.
    pub fn combine(&self) -> &Combine {
        &self.raw.combine
    }

    /// What each validator's key signs.
    pub fn statements(&self) -> &[Statement] {
        &self.raw.statements
    }

    /// Who sends messages of `kind` (protocol.md §2.2): every participant
    /// says hello, acknowledges and finalizes; dealers deal and send
    /// shares; holders partial-sign. Echoes list their receipts in this
    /// order.
    pub fn senders(&self, kind: MessageKind) -> &[OperatorId] {
        match kind {
            MessageKind::Hello | MessageKind::Ack | MessageKind::Finalize => &self.all,
            MessageKind::Deal | MessageKind::Shares => &self.dealers,
            MessageKind::Partials => &self.holders,
        }
    }

    /// Whether `slot` sends messages of `kind`.
    pub fn sends(&self, kind: MessageKind, slot: OperatorId) -> bool {
        self.senders(kind).binary_search(&slot).is_ok()
    }

    /// Who receives `slot`'s messages of `kind`: share bundles go to each
    /// holder, everything else to every participant.
    pub fn recipients(&self, kind: MessageKind) -> &[OperatorId] {
        match kind {
            MessageKind::Shares => &self.holders,
            _ => &self.all,
        }
    }

    /// The known constant of dealer `dealer`'s polynomials, if the
    /// combination fixes one: the Lagrange weight `λ` and the points `P_v`
    /// such that the constant commitment of validator `v` must be `λ·P_v`
    /// (`λ = 1` for a split).
    pub fn known_constant(&self, dealer: OperatorId) -> Option<(Scalar, &[Bytes<48>])> {
        match &self.raw.combine {
            Combine::Fresh => None,
            Combine::Split { group_keys } => Some((Scalar::ONE, group_keys)),
            Combine::Reshare { previous, .. } => {
                let position = previous.iter().position(|p| p.dealer == dealer)?;
                let indices: Vec<ShareIndex> = previous.iter().map(|p| p.index).collect();
                let lambda = super::signing::lagrange_at_zero(&indices)
                    .into_iter()
                    .nth(position)?;
                previous
                    .get(position)
                    .map(|p| (lambda, p.public_shares.as_slice()))
            }
        }
    }

    /// The known validator keys, for a split or a reshare.
    pub fn group_keys(&self) -> Option<&[Bytes<48>]> {
        match &self.raw.combine {
            Combine::Fresh => None,
            Combine::Split { group_keys } | Combine::Reshare { group_keys, .. } => Some(group_keys),
        }
    }
}

impl TryFrom<RawPlan> for Plan {
    type Error = PlanError;

    fn try_from(raw: RawPlan) -> Result<Self, Self::Error> {
        Self::new(raw)
    }
}

impl From<Plan> for RawPlan {
    fn from(plan: Plan) -> Self {
        plan.raw
    }
}

/// What every participant agrees on before the ceremony, from its
/// definition: the plan and the definition's hash. All of it is public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Who does what.
    pub plan: Plan,
    /// The hash of the definition, which commits to everything else the
    /// layer above derives the plan's statements from.
    pub definition_hash: Bytes<32>,
}

impl Context {
    /// `n`, `t`, `V`.
    pub fn params(&self) -> Params {
        self.plan.params()
    }

    /// The identity key of `slot`.
    pub fn key(&self, slot: OperatorId) -> Option<&IdentityPublicKey> {
        self.plan.key(slot)
    }

    /// `SHA-256("dvkg/2 <kind> session" ‖ definition hash ‖ nonce_1 ‖ … ‖
    /// nonce_N)` over the hellos of every participant, in slot order
    /// (protocol.md, Round 1, Step 2).
    pub fn session_id(&self, hellos: &[&Signed<Hello>]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.plan.kind().domain("session"));
        hasher.update(self.definition_hash.0);
        for hello in hellos {
            hasher.update(hello.body.nonce.0);
        }
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::crypto::identity::IdentityKey;

    fn roster(n: usize) -> Vec<IdentityPublicKey> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..n)
            .map(|_| IdentityKey::generate(&mut rng).public())
            .collect()
    }

    fn possession() -> Vec<Statement> {
        vec![Statement {
            kind: StatementKind::Possession,
            params: VarBytes(Vec::new()),
        }]
    }

    fn index(i: u64) -> ShareIndex {
        ShareIndex::try_from(i).unwrap()
    }

    #[test]
    fn a_dkg_plan_has_every_role_at_its_index() {
        let ids = [11, 27, 103, 404].map(index);
        let plan = Plan::dkg(&roster(4), Some(&ids), 3, 2, possession()).unwrap();
        assert_eq!(plan.params(), Params::new(4, 3, 2).unwrap());
        assert_eq!(plan.indices(), &ids);
        assert_eq!(plan.senders(MessageKind::Deal), plan.slots());
        assert_eq!(plan.senders(MessageKind::Partials), plan.slots());
        let slot = OperatorId::try_from(3u8).unwrap();
        assert_eq!(plan.share_index(slot), Some(index(103)));
        assert_eq!(plan.holder_position(slot), Some(2));
        let default = Plan::dkg(&roster(4), None, 3, 2, possession()).unwrap();
        assert_eq!(default.indices(), &[1, 2, 3, 4].map(index));
        // Through serde, the same checks.
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
        let twice = json.replace("\"share\":27", "\"share\":11");
        assert!(serde_json::from_str::<Plan>(&twice).is_err());
        let zero = json.replace("\"share\":27", "\"share\":0");
        assert!(serde_json::from_str::<Plan>(&zero).is_err());
    }

    #[test]
    fn roles_must_fit_the_kind() {
        let keys = roster(5);
        let participants = |dealer: Option<usize>| -> Vec<Participant> {
            keys.iter()
                .enumerate()
                .map(|(p, &identity)| Participant {
                    identity,
                    deals: Some(p) == dealer,
                    share: (Some(p) != dealer).then(|| index(p as u64 + 1)),
                })
                .collect()
        };
        let split = |participants, group_keys| {
            Plan::new(RawPlan {
                kind: CeremonyKind::Split,
                participants,
                threshold: 3,
                validators: 1,
                combine: Combine::Split { group_keys },
                statements: possession(),
                attachments: None,
            })
        };
        let plan = split(participants(Some(4)), vec![Bytes([1; 48])]).unwrap();
        assert_eq!(plan.dealers(), &[OperatorId::try_from(5u8).unwrap()]);
        assert_eq!(plan.holders().len(), 4);
        assert_eq!(plan.recipients(MessageKind::Shares), plan.holders());
        assert!(matches!(
            split(participants(None), vec![Bytes([1; 48])]),
            Err(PlanError::Roles { .. })
        ));
        assert!(matches!(
            split(participants(Some(4)), vec![]),
            Err(PlanError::KnownKeys { .. })
        ));
        let mixed = Plan::new(RawPlan {
            kind: CeremonyKind::Dkg,
            participants: participants(Some(4)),
            threshold: 3,
            validators: 1,
            combine: Combine::Fresh,
            statements: possession(),
            attachments: None,
        });
        assert!(matches!(mixed, Err(PlanError::Roles { .. })));
    }

    #[test]
    fn attachments_have_a_length_and_one_entry_per_holder() {
        let plan = Plan::dkg(&roster(4), None, 3, 2, possession()).unwrap();
        let slot = OperatorId::try_from(2u8).unwrap();
        assert!(plan.attachment_params(slot).is_none());
        let attachments = |bytes, count: usize| Attachments {
            kind: AttachmentKind::SsvShare,
            bytes,
            params: (0..count).map(|i| VarBytes(vec![i as u8])).collect(),
        };
        let with = plan.clone().with_attachments(attachments(256, 4)).unwrap();
        let (spec, params) = with.attachment_params(slot).unwrap();
        assert_eq!((spec.bytes, params), (256, &[1u8][..]));
        for (bytes, count) in [(0, 4), (1025, 4), (256, 3), (256, 5)] {
            assert!(
                matches!(
                    plan.clone().with_attachments(attachments(bytes, count)),
                    Err(PlanError::Attachments { .. })
                ),
                "{bytes} bytes, {count} entries"
            );
        }
        // Through serde, the same checks.
        let json = serde_json::to_string(&with).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), with);
        let broken = json.replace("\"bytes\":256", "\"bytes\":0");
        assert!(serde_json::from_str::<Plan>(&broken).is_err());
    }
}
