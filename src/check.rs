//! `dvkg check`: can this cluster sign? Every operator of a lock runs it at
//! the same time, over the same pinned mesh as the ceremony: each
//! partial-signs a fresh joint challenge for every validator with the shares
//! it holds (its keystores, as its validator client would load them), and
//! each checks every operator's partial signatures against the lock's
//! public shares. A cluster can sign for a validator when at least `t`
//! operators hold working shares of it. This is what a staking team runs
//! before it deposits, and how an outcome split by a failure at the end of
//! a ceremony is found (protocol.md, "Never a split outcome").
//!
//! The exchange, over frames bound to `SHA-256("dvkg/2 check" ‖ lock
//! hash)`:
//!
//! 1. every operator sends a signed [`CheckHello`] with a fresh nonce;
//! 2. the challenge is `SHA-256("dvkg/2 check challenge" ‖ lock hash ‖
//!    nonce_1 ‖ … ‖ nonce_n)`, and validator `v`'s message `challenge ‖
//!    u32_be(v)`;
//! 3. every operator sends a signed [`CheckSignatures`]: per validator, its
//!    partial signature of that message, or none when it holds no working
//!    share of it;
//! 4. every operator verifies them all (batched per operator, one by one on
//!    failure) under the lock's public shares.
//!
//! Format: `ceremony-specs/formats.md` §13.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::ceremony::OperatorId;
use crate::ceremony::lock::ClusterLock;
use crate::crypto::group::{self, G2Sum};
use crate::crypto::identity::{IdentityKey, IdentityPublicKey, IdentitySignature};
use crate::crypto::{G1Point, G2Point, Scalar};
use crate::net::{FrameKind, Transport, TransportError};
use crate::wire::{self, Bytes};

/// The check's protocol version.
pub const CHECK_VERSION: u16 = 1;
/// The frame tag of a [`CheckHello`].
pub const HELLO_TAG: u8 = 16;
/// The frame tag of a [`CheckSignatures`].
pub const SIGNATURES_TAG: u8 = 17;
/// The frame tags of the check.
pub const TAGS: [u8; 2] = [HELLO_TAG, SIGNATURES_TAG];

/// `SHA-256("dvkg/2 check" ‖ lock hash)`: what the check's frames are bound
/// to, so that they never mix with a ceremony's.
pub fn binding(lock_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"dvkg/2 check");
    hasher.update(lock_hash);
    hasher.finalize().into()
}

/// Round 1: an operator announces itself with a fresh nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckHello {
    /// [`CHECK_VERSION`].
    pub version: u16,
    /// The lock checked.
    pub lock_hash: Bytes<32>,
    /// The operator.
    pub operator: OperatorId,
    /// 32 fresh random bytes.
    pub nonce: Bytes<32>,
}

/// Round 2: an operator's partial signatures of the challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSignatures {
    /// The challenge signed.
    pub challenge: Bytes<32>,
    /// The operator.
    pub operator: OperatorId,
    /// Per validator, the partial signature (uncompressed G2), or none.
    pub signatures: Vec<Option<Bytes<192>>>,
}

/// A body and its sender's signature over
/// `SHA-256("dvkg/2 check message" ‖ tag ‖ encode(body))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheck<T> {
    /// The content.
    pub body: T,
    /// The sender's identity signature.
    pub signature: IdentitySignature,
}

fn digest<T: Serialize>(tag: u8, body: &T) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"dvkg/2 check message");
    hasher.update([tag]);
    hasher.update(wire::encode(body).unwrap_or_default());
    hasher.finalize().into()
}

impl<T: Serialize> SignedCheck<T> {
    fn sign(key: &IdentityKey, tag: u8, body: T) -> Self {
        let signature = key.sign(&digest(tag, &body));
        Self { body, signature }
    }

    fn valid(&self, tag: u8, key: &IdentityPublicKey) -> bool {
        key.verify(&digest(tag, &self.body), &self.signature)
    }
}

/// What one operator showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorResult {
    /// The operator.
    pub operator: OperatorId,
    /// Its name in the definition.
    pub name: String,
    /// The validators it holds a working share of.
    pub working: usize,
    /// Why it showed none, when it showed nothing at all.
    pub problem: Option<String>,
    /// The validators whose share did not work (0-based), at most 10.
    pub failing: Vec<usize>,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The lock checked.
    pub lock_hash: Bytes<32>,
    /// Its threshold.
    pub threshold: usize,
    /// Its validators.
    pub validators: usize,
    /// Each operator, in order.
    pub operators: Vec<OperatorResult>,
    /// The fewest operators with a working share of any one validator.
    pub weakest: usize,
    /// The validators with fewer than `t` working shares (0-based), at most
    /// 10.
    pub unsignable: Vec<usize>,
}

impl CheckReport {
    /// Whether every validator has at least `t` working shares.
    pub fn can_sign(&self) -> bool {
        self.weakest >= self.threshold
    }

    /// How many operators the cluster can lose and still sign for every
    /// validator (`weakest − t`), or `None` when it cannot sign now.
    pub fn spares(&self) -> Option<usize> {
        self.weakest.checked_sub(self.threshold)
    }
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The network failed us.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A peer sent something that is not its signed message for this lock.
    #[error("operator {peer} sent an invalid check message: {reason}")]
    Invalid {
        /// The peer.
        peer: OperatorId,
        /// What was wrong.
        reason: String,
    },
}

/// The message validator `v` signs for `challenge`.
pub fn message(challenge: &[u8; 32], v: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(36);
    m.extend_from_slice(challenge);
    m.extend_from_slice(&(v as u32).to_be_bytes());
    m
}

/// Runs the check for operator `me` of `lock` over `transport` (already
/// connected to every other operator), with `shares[v]` this operator's
/// share of validator `v` when it holds one.
///
/// # Errors
///
/// [`CheckError`] when a peer is missing or sends an invalid message.
pub async fn run_over<T: Transport, R: RngCore + CryptoRng>(
    transport: &T,
    lock: &ClusterLock,
    me: OperatorId,
    identity: &IdentityKey,
    shares: &[Option<Scalar>],
    timeout: Duration,
    rng: &mut R,
) -> Result<CheckReport, CheckError> {
    let roster: Vec<IdentityPublicKey> = lock
        .definition
        .operators
        .iter()
        .map(|o| o.identity_key)
        .collect();
    let key_of = |slot: OperatorId| roster.get(slot.position());
    let deadline = Instant::now() + timeout;
    let recv = |peer: OperatorId, tag: u8| async move {
        transport
            .mailbox()
            .recv(peer, FrameKind::Message(tag), deadline, true)
            .await
    };
    let invalid = |peer, reason: &str| CheckError::Invalid {
        peer,
        reason: reason.to_owned(),
    };

    // 1. Hellos.
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let hello = SignedCheck::sign(
        identity,
        HELLO_TAG,
        CheckHello {
            version: CHECK_VERSION,
            lock_hash: lock.lock_hash,
            operator: me,
            nonce: Bytes(nonce),
        },
    );
    let bytes = wire::encode(&hello).map_err(|e| invalid(me, &e.to_string()))?;
    transport
        .broadcast(FrameKind::Message(HELLO_TAG), &bytes, false)
        .await?;
    let mut nonces: BTreeMap<OperatorId, [u8; 32]> = BTreeMap::from([(me, nonce)]);
    for peer in transport.peers() {
        let bytes = recv(peer, HELLO_TAG).await?;
        let hello: SignedCheck<CheckHello> =
            wire::decode(&bytes, bytes.len() as u64).map_err(|e| invalid(peer, &e.to_string()))?;
        let signed = key_of(peer).is_some_and(|k| hello.valid(HELLO_TAG, k));
        if !signed
            || hello.body.operator != peer
            || hello.body.lock_hash != lock.lock_hash
            || hello.body.version != CHECK_VERSION
        {
            return Err(invalid(peer, "a hello not signed by it for this lock"));
        }
        nonces.insert(peer, hello.body.nonce.0);
    }

    // 2. The joint challenge.
    let mut hasher = Sha256::new();
    hasher.update(b"dvkg/2 check challenge");
    hasher.update(lock.lock_hash.0);
    for nonce in nonces.values() {
        hasher.update(nonce);
    }
    let challenge: [u8; 32] = hasher.finalize().into();
    let hashed: Vec<G2Point> = (0..lock.validators.len())
        .map(|v| G2Point::hash(&message(&challenge, v)))
        .collect();

    // 3. Our partial signatures, of the shares that are ours in the lock.
    let position = me.position();
    let signatures: Vec<Option<Bytes<192>>> = lock
        .validators
        .iter()
        .zip(&hashed)
        .zip(shares.iter().chain(std::iter::repeat(&None)))
        .map(|((validator, h), share)| {
            let share = share.as_ref()?;
            let public = validator.public_shares.get(position)?;
            (G1Point::mul_generator(share).to_bytes() == public.0)
                .then(|| Bytes(h.mul(share).to_uncompressed()))
        })
        .collect();
    let ours = SignedCheck::sign(
        identity,
        SIGNATURES_TAG,
        CheckSignatures {
            challenge: Bytes(challenge),
            operator: me,
            signatures,
        },
    );
    let bytes = Zeroizing::new(wire::encode(&ours).map_err(|e| invalid(me, &e.to_string()))?);
    transport
        .broadcast(FrameKind::Message(SIGNATURES_TAG), &bytes, false)
        .await?;
    let mut received: BTreeMap<OperatorId, CheckSignatures> =
        BTreeMap::from([(me, ours.body.clone())]);
    for peer in transport.peers() {
        let bytes = recv(peer, SIGNATURES_TAG).await?;
        let message: SignedCheck<CheckSignatures> =
            wire::decode(&bytes, bytes.len() as u64).map_err(|e| invalid(peer, &e.to_string()))?;
        let signed = key_of(peer).is_some_and(|k| message.valid(SIGNATURES_TAG, k));
        if !signed || message.body.operator != peer || message.body.challenge.0 != challenge {
            return Err(invalid(
                peer,
                "signatures not signed by it for this challenge",
            ));
        }
        received.insert(peer, message.body);
    }

    // 4. Every operator's signatures under its public shares.
    let mut working_per_validator = vec![0usize; lock.validators.len()];
    let mut operators = Vec::new();
    for (position, record) in lock.definition.operators.iter().enumerate() {
        let Ok(slot) = OperatorId::from_position(position) else {
            continue;
        };
        let mut result = OperatorResult {
            operator: slot,
            name: record.name.clone(),
            working: 0,
            problem: None,
            failing: Vec::new(),
        };
        match received.get(&slot) {
            None => result.problem = Some("sent nothing".into()),
            Some(message) if message.signatures.len() != lock.validators.len() => {
                result.problem = Some(format!(
                    "sent {} signatures for {} validators",
                    message.signatures.len(),
                    lock.validators.len()
                ));
            }
            Some(message) => {
                let works = verify_operator(lock, position, &hashed, &message.signatures, rng);
                for (v, ok) in works.iter().enumerate() {
                    if *ok {
                        result.working += 1;
                        if let Some(count) = working_per_validator.get_mut(v) {
                            *count += 1;
                        }
                    } else if result.failing.len() < 10 {
                        result.failing.push(v);
                    }
                }
            }
        }
        operators.push(result);
    }
    let threshold = lock.definition.threshold as usize;
    Ok(CheckReport {
        lock_hash: lock.lock_hash,
        threshold,
        validators: lock.validators.len(),
        weakest: working_per_validator.iter().copied().min().unwrap_or(0),
        unsignable: working_per_validator
            .iter()
            .enumerate()
            .filter(|(_, c)| **c < threshold)
            .map(|(v, _)| v)
            .take(10)
            .collect(),
        operators,
    })
}

/// Which of one operator's signatures verify under its public shares: all
/// present ones in one random linear combination first, one by one only if
/// that fails.
fn verify_operator<R: RngCore + CryptoRng>(
    lock: &ClusterLock,
    position: usize,
    hashed: &[G2Point],
    signatures: &[Option<Bytes<192>>],
    rng: &mut R,
) -> Vec<bool> {
    let decoded: Vec<Option<(G1Point, G2Point)>> = lock
        .validators
        .iter()
        .zip(signatures)
        .map(|(validator, sigma)| {
            let sigma = G2Point::from_uncompressed(&sigma.as_ref()?.0).ok()?;
            let public = G1Point::from_bytes(&validator.public_shares.get(position)?.0).ok()?;
            Some((public, sigma))
        })
        .collect();
    let mut sum = G2Sum::default();
    let mut terms = Vec::new();
    for (entry, h) in decoded.iter().zip(hashed) {
        if let Some((public, sigma)) = entry {
            // An odd 63-bit weight: a positive i64.
            let w = (rng.next_u64() >> 1) | 1;
            sum.add(&sigma.mul_i64(i64::try_from(w).unwrap_or(1)));
            terms.push((public.mul_u64(w).to_point(), *h));
        }
    }
    let batch_ok = terms.is_empty() || group::pairing_check(&sum.to_point(), &terms);
    decoded
        .iter()
        .zip(hashed)
        .map(|(entry, h)| match entry {
            None => false,
            Some(_) if batch_ok => true,
            Some((public, sigma)) => group::pairing_check(sigma, &[(*public, *h)]),
        })
        .collect()
}
