//! Deliberate misbehaviour, for testing how honest operators react (cargo
//! feature `fault-injection`; never in a default or release build).
//!
//! `dvkg ceremony --fault KIND[@ROUND]` makes this operator dishonest in one
//! way, as a real dishonest operator would be: every changed message is
//! re-signed with its own identity key, so what the others receive is a
//! validly signed lie, and they must name this operator from the message
//! alone. `dvkg demo --fault OPERATOR=KIND[@ROUND]` does the same inside the
//! demo. The kinds, their rounds, and what an honest operator must conclude
//! are in `ceremony-specs/faults.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use rand::RngCore;
use rand::rngs::OsRng;

use crate::ceremony::OperatorId;
use crate::crypto::SecretBytes;
use crate::crypto::identity::IdentityKey;
use crate::dkg::messages::{
    Ack, AnySigned, Body, Complaint, FromAny, IntoAny, Receipt, ShareBundle, ShareBytes, Signed,
};
use crate::wire::Bytes;

/// One way to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Round 1: one peer (the lowest-numbered) gets a wrong share of
    /// validator 0; every other peer gets correct shares.
    BadShare,
    /// Round 1: validator 0's first commitment is the identity point.
    IdentityCommitment,
    /// Round 1: validator 0's first commitment is a curve point outside the
    /// prime-order subgroup.
    NonSubgroupCommitment,
    /// Round 1: validator 0's proof of knowledge does not verify.
    BadProof,
    /// Round 1: one peer (the lowest-numbered) gets a different signed deal
    /// than every other peer.
    Equivocate,
    /// Round 2: a complaint about the lowest-numbered peer's correct shares.
    LyingComplaint,
    /// Round 3: validator 0's partial signature is a valid point that is not
    /// this operator's signature.
    BadPartial,
    /// Round 4: one peer (the lowest-numbered) gets a finalize signing
    /// another transcript hash; every other peer gets the right one.
    BadFinalize,
    /// Random bytes instead of this round's message.
    Garbage,
    /// A frame one byte over the receivers' size limit instead of this
    /// round's message.
    Oversized,
    /// This round's message signed for another session, as a replay from an
    /// earlier ceremony would be.
    Replay,
    /// Stop sending at the start of this round, keeping the connections
    /// open.
    Stall,
    /// Exit at the start of this round, without a word to the peers.
    Exit,
    /// From the start of this round on, nothing this operator sends
    /// arrives (a one-way outage of its uplink), while it still receives:
    /// at round 4, it ends up holding every finalize message while no one
    /// holds its own.
    Mute,
    /// Round 5, the write: 5 ms pass after every output file, so that a
    /// test can kill the operator at a random moment of its write.
    SlowWrite,
    /// Round 1, a split's dealer: it deals validator 0's secret plus one,
    /// consistently (commitments, proof and shares agree), so that only the
    /// constant differs from the validator's key.
    WrongConstant,
    /// Round 1, a reshare's dealer: it deals its previous share as is,
    /// without its Lagrange coefficient over the dealers.
    RawShare,
    /// Round 1, a reshare's dealer: it weighs its previous share with its
    /// Lagrange coefficient over every previous operator instead of over
    /// the dealers.
    WrongLambda,
}

impl FaultKind {
    const ALL: [(Self, &'static str); 18] = [
        (Self::BadShare, "bad-share"),
        (Self::IdentityCommitment, "identity-commitment"),
        (Self::NonSubgroupCommitment, "non-subgroup-commitment"),
        (Self::BadProof, "bad-proof"),
        (Self::Equivocate, "equivocate"),
        (Self::LyingComplaint, "lying-complaint"),
        (Self::BadPartial, "bad-partial"),
        (Self::BadFinalize, "bad-finalize"),
        (Self::Garbage, "garbage"),
        (Self::Oversized, "oversized"),
        (Self::Replay, "replay"),
        (Self::Stall, "stall"),
        (Self::Exit, "exit"),
        (Self::Mute, "mute"),
        (Self::SlowWrite, "slow-write"),
        (Self::WrongConstant, "wrong-constant"),
        (Self::RawShare, "raw-share"),
        (Self::WrongLambda, "wrong-lambda"),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("?", |(_, name)| name)
    }

    /// The rounds this fault can happen in, and its default round.
    fn rounds(self) -> (std::ops::RangeInclusive<u8>, u8) {
        match self {
            Self::BadShare
            | Self::IdentityCommitment
            | Self::NonSubgroupCommitment
            | Self::BadProof
            | Self::Equivocate
            | Self::WrongConstant
            | Self::RawShare
            | Self::WrongLambda => (1..=1, 1),
            Self::LyingComplaint => (2..=2, 2),
            Self::BadPartial => (3..=3, 3),
            Self::BadFinalize => (4..=4, 4),
            // Round 0's hello is bound to the definition only: a hello from
            // another session is just another nonce.
            Self::Replay => (1..=4, 1),
            Self::Garbage | Self::Oversized | Self::Stall | Self::Exit => (0..=4, 1),
            Self::Mute => (0..=4, 4),
            Self::SlowWrite => (5..=5, 5),
        }
    }

    /// Every kind, by command-line name.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|(_, name)| *name)
    }
}

/// A fault and the round it happens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// In which round (0 hello, 1 deal, 2 acknowledge, 3 sign, 4 finalize).
    pub round: u8,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind.name(), self.round)
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, round) = match s.split_once('@') {
            Some((name, round)) => (name, Some(round)),
            None => (s, None),
        };
        let kind = FaultKind::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(kind, _)| *kind)
            .ok_or_else(|| {
                format!(
                    "unknown fault {name:?}; one of: {}",
                    FaultKind::names().collect::<Vec<_>>().join(", ")
                )
            })?;
        let (allowed, default) = kind.rounds();
        let round = match round {
            None => default,
            Some(r) => r
                .parse::<u8>()
                .ok()
                .filter(|r| allowed.contains(r))
                .ok_or_else(|| {
                    format!(
                        "fault {name} happens in round {}, not {r:?}",
                        if allowed.start() == allowed.end() {
                            allowed.start().to_string()
                        } else {
                            format!("{} to {}", allowed.start(), allowed.end())
                        }
                    )
                })?,
        };
        Ok(Self { kind, round })
    }
}

/// `OPERATOR=KIND[@ROUND]`, for `dvkg demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorFault {
    /// The dishonest operator.
    pub operator: OperatorId,
    /// Its fault.
    pub fault: Fault,
}

impl FromStr for OperatorFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (operator, fault) = s
            .split_once('=')
            .ok_or_else(|| format!("expected OPERATOR=KIND[@ROUND], got {s:?}"))?;
        let operator = operator
            .parse::<u8>()
            .ok()
            .and_then(|i| OperatorId::try_from(i).ok())
            .ok_or_else(|| format!("{operator:?} is not an operator index"))?;
        Ok(Self {
            operator,
            fault: fault.parse()?,
        })
    }
}

/// What the driver does at the start of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Go on.
    Continue,
    /// Stop sending; keep the connections open.
    Stall,
    /// End without a word to anyone.
    Exit,
}

/// The payload to send to each peer instead of the honest one.
pub enum Outgoing {
    /// The honest message, unchanged.
    Honest,
    /// These bytes to every peer, instead of the encoded message.
    Raw(Vec<u8>),
    /// This (re-signed) message to every peer.
    Same(AnySigned),
    /// These (re-signed) messages to some peers; the rest get the honest
    /// one.
    PerPeer(BTreeMap<OperatorId, AnySigned>),
}

/// A dishonest operator's state: its fault, and what it captured to lie
/// consistently (its tampered deal, for its own echo; a peer's shares, for a
/// false complaint).
pub struct Injector {
    fault: Fault,
    me: OperatorId,
    /// Set when the process must really exit (a separate `dvkg ceremony`
    /// process); in the demo, the operator just drops its connections.
    pub exit_process: bool,
    tampered_deal: Mutex<Option<Receipt>>,
    captured_shares: Mutex<Option<Signed<ShareBundle>>>,
}

impl Injector {
    /// The injector for `fault` at operator `me`.
    pub fn new(fault: Fault, me: OperatorId, exit_process: bool) -> Self {
        Self {
            fault,
            me,
            exit_process,
            tampered_deal: Mutex::new(None),
            captured_shares: Mutex::new(None),
        }
    }

    /// The fault.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    fn at(&self, kind: FaultKind, round: u8) -> bool {
        self.fault.kind == kind && self.fault.round == round
    }

    /// Whether nothing this operator sends in `round` (5: the closing and
    /// confirmation exchanges, 6: after the write) should arrive.
    pub fn muted(&self, round: u8) -> bool {
        self.fault.kind == FaultKind::Mute && round >= self.fault.round
    }

    /// How long to pause after each output file (fault `slow-write`).
    pub fn write_pace(&self) -> Option<std::time::Duration> {
        (self.fault.kind == FaultKind::SlowWrite).then(|| std::time::Duration::from_millis(5))
    }

    /// A dealer's known secrets as this fault deals them: for
    /// `wrong-constant`, validator 0's plus one; for `raw-share` and
    /// `wrong-lambda` (a reshare's dealer, whose secrets the core weighs
    /// with `lambda`, its coefficient over the dealers), every secret times
    /// `1/lambda` (so that the share is dealt as is) or times
    /// `wrong/lambda` (`wrong` its coefficient over every previous
    /// operator).
    pub fn known_secrets(
        &self,
        known: crate::dkg::KnownSecrets,
        lambda: Option<crate::crypto::Scalar>,
        wrong: Option<crate::crypto::Scalar>,
    ) -> crate::dkg::KnownSecrets {
        let mut known = known;
        let inverse = lambda.and_then(|l| l.invert());
        match (self.fault.kind, inverse) {
            (FaultKind::WrongConstant, _) => {
                if let Some(first) = known.0.first_mut() {
                    *first = first.add(&crate::crypto::Scalar::ONE);
                }
            }
            (FaultKind::RawShare, Some(inverse)) => {
                for secret in &mut known.0 {
                    *secret = secret.mul(&inverse);
                }
            }
            (FaultKind::WrongLambda, Some(inverse)) => {
                if let Some(wrong) = wrong {
                    let factor = wrong.mul(&inverse);
                    for secret in &mut known.0 {
                        *secret = secret.mul(&factor);
                    }
                }
            }
            _ => {}
        }
        known
    }

    /// What to do at the start of `round`.
    pub fn before_round(&self, round: u8) -> Action {
        if self.at(FaultKind::Stall, round) {
            Action::Stall
        } else if self.at(FaultKind::Exit, round) {
            Action::Exit
        } else {
            Action::Continue
        }
    }

    /// Keeps the shares received in round 1 from `peers`' lowest-numbered
    /// member, to complain about them falsely.
    pub fn observe_shares(&self, shares: &BTreeMap<OperatorId, AnySigned>) {
        if self.fault.kind != FaultKind::LyingComplaint {
            return;
        }
        if let Some((_, bundle)) = shares.iter().find(|(from, _)| **from != self.me)
            && let Some(bundle) = Signed::<ShareBundle>::from_any(bundle.clone())
            && let Ok(mut slot) = self.captured_shares.lock()
        {
            *slot = Some(bundle);
        }
    }

    /// What to send instead of `message` (sent in `round` to `peers`), with
    /// `max_frame` the receivers' frame limit.
    pub fn outgoing(
        &self,
        round: u8,
        message: &AnySigned,
        key: &IdentityKey,
        peers: &[OperatorId],
        max_frame: u64,
    ) -> Outgoing {
        if let AnySigned::Ack(ack) = message
            && let Some(consistent) = self.consistent_ack(ack, key)
        {
            return Outgoing::Same(consistent.into_any());
        }
        if self.fault.round != round {
            return Outgoing::Honest;
        }
        let first_peer = peers.first().copied();
        match self.fault.kind {
            FaultKind::Garbage => {
                let mut bytes = vec![0u8; 1 + (OsRng.next_u32() % 4096) as usize];
                OsRng.fill_bytes(&mut bytes);
                Outgoing::Raw(bytes)
            }
            FaultKind::Oversized => {
                Outgoing::Raw(vec![0u8; usize::try_from(max_frame).unwrap_or(0) + 1])
            }
            FaultKind::Replay => {
                let mut earlier = message.header().session.0;
                earlier[0] ^= 0x5a;
                Outgoing::Same(replayed(message, key, earlier))
            }
            FaultKind::IdentityCommitment
            | FaultKind::NonSubgroupCommitment
            | FaultKind::BadProof
            | FaultKind::Equivocate => {
                let AnySigned::Deal(deal) = message else {
                    return Outgoing::Honest;
                };
                let mut body = deal.body.clone();
                let Some(validator) = body.validators.first_mut() else {
                    return Outgoing::Honest;
                };
                match self.fault.kind {
                    FaultKind::IdentityCommitment => {
                        let mut identity = [0u8; 96];
                        identity[0] = 0x40;
                        if let Some(c) = validator.commitments.first_mut() {
                            *c = Bytes(identity);
                        }
                    }
                    FaultKind::NonSubgroupCommitment => {
                        if let Some(c) = validator.commitments.first_mut() {
                            *c = Bytes(crate::crypto::group::non_subgroup_g1_uncompressed());
                        }
                    }
                    _ => validator.proof.z.0[31] ^= 1,
                }
                let tampered = resign(key, deal, body);
                if self.fault.kind == FaultKind::Equivocate {
                    let Some(peer) = first_peer else {
                        return Outgoing::Honest;
                    };
                    Outgoing::PerPeer(BTreeMap::from([(peer, tampered.into_any())]))
                } else {
                    // A consistent liar: its own ack will echo this deal.
                    if let Ok(mut slot) = self.tampered_deal.lock() {
                        *slot = Some(Receipt::of(&tampered));
                    }
                    Outgoing::Same(tampered.into_any())
                }
            }
            FaultKind::BadShare => {
                let (AnySigned::Shares(bundle), Some(peer)) = (message, first_peer) else {
                    return Outgoing::Honest;
                };
                if bundle.body.recipient != peer {
                    return Outgoing::Honest;
                }
                let mut body = bundle.body.clone();
                if let Some(share) = body.shares.first_mut() {
                    let mut raw = *share.expose_secret();
                    raw[31] ^= 1;
                    *share = ShareBytes::new(&SecretBytes::new(&mut raw));
                }
                Outgoing::Same(resign(key, bundle, body).into_any())
            }
            FaultKind::LyingComplaint => {
                let AnySigned::Ack(ack) = message else {
                    return Outgoing::Honest;
                };
                let Some(shares) = self.captured_shares.lock().ok().and_then(|s| s.clone()) else {
                    return Outgoing::Honest;
                };
                let mut body = ack.body.clone();
                body.complaints = vec![Complaint::BadShares { shares }];
                Outgoing::Same(resign(key, ack, body).into_any())
            }
            FaultKind::BadPartial => {
                let AnySigned::Partials(partials) = message else {
                    return Outgoing::Honest;
                };
                let mut body = partials.body.clone();
                if let Some(first) = body.signatures.first_mut().and_then(|v| v.first_mut()) {
                    *first = Bytes(
                        crate::crypto::G2Point::hash(b"dvkg fault injection: not a partial")
                            .to_uncompressed(),
                    );
                }
                Outgoing::Same(resign(key, partials, body).into_any())
            }
            FaultKind::BadFinalize => {
                let (AnySigned::Finalize(finalize), Some(peer)) = (message, first_peer) else {
                    return Outgoing::Honest;
                };
                let mut body = finalize.body.clone();
                body.transcript_hash.0[0] ^= 1;
                Outgoing::PerPeer(BTreeMap::from([(
                    peer,
                    resign(key, finalize, body).into_any(),
                )]))
            }
            // The wrong constant is dealt, not tampered with: see
            // `Injector::known_secrets`.
            FaultKind::Stall
            | FaultKind::Exit
            | FaultKind::Mute
            | FaultKind::SlowWrite
            | FaultKind::WrongConstant
            | FaultKind::RawShare
            | FaultKind::WrongLambda => Outgoing::Honest,
        }
    }

    /// The ack to send after a tampered broadcast deal: one that echoes the
    /// tampered deal as this operator's own, as a consistent liar would.
    fn consistent_ack(&self, ack: &Signed<Ack>, key: &IdentityKey) -> Option<Signed<Ack>> {
        let receipt = self.tampered_deal.lock().ok().and_then(|r| *r)?;
        let mut body = ack.body.clone();
        let slot = body.deals.iter_mut().find(|r| r.operator == self.me)?;
        *slot = receipt;
        Some(resign(key, ack, body))
    }
}

/// `message` signed again by `key` in another `session`, as a replay from an
/// earlier ceremony would be.
fn replayed(message: &AnySigned, key: &IdentityKey, session: [u8; 32]) -> AnySigned {
    fn again<T: Body>(m: &Signed<T>, key: &IdentityKey, session: [u8; 32]) -> Signed<T> {
        Signed::sign(key, session, m.header.sender, m.body.clone())
    }
    match message {
        AnySigned::Hello(m) => again(m, key, session).into_any(),
        AnySigned::Deal(m) => again(m, key, session).into_any(),
        AnySigned::Shares(m) => again(m, key, session).into_any(),
        AnySigned::Ack(m) => again(m, key, session).into_any(),
        AnySigned::Partials(m) => again(m, key, session).into_any(),
        AnySigned::Finalize(m) => again(m, key, session).into_any(),
    }
}

/// `body` signed by `key` in the session and as the sender of `like`: a
/// changed message, validly signed by the dishonest operator.
fn resign<T: Body>(key: &IdentityKey, like: &Signed<T>, body: T) -> Signed<T> {
    Signed::sign(key, like.header.session.0, like.header.sender, body)
}
