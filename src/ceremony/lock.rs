//! `cluster-lock.json`: the ceremony's public outcome, the same bytes at
//! every operator. See `ceremony-specs/formats.md`, "Cluster lock".
//!
//! The lock repeats the definition, and per validator its public key, the
//! operators' public shares and its deposit data; it is bound to the
//! transcript by the transcript hash, which every operator signed in round 4
//! (the signed finalize messages are in the lock). `lock_hash` covers
//! everything but itself and those signatures.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::definition::ClusterDefinition;
use crate::crypto::{PublicKey, Signature};
use crate::dkg::messages::{Finalize, Signed};
use crate::dkg::transcript::Transcript;
use crate::eth::deposit::DepositEntry;
use crate::eth::network::Network;
use crate::eth::{Gwei, WithdrawalCredentials};
use crate::wire::Bytes;

/// The lock format version.
pub const LOCK_VERSION: u32 = 1;
/// Domain of the lock hash.
pub const LOCK_DOMAIN: &[u8] = b"dvkg/1 cluster lock";

/// One validator in the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockValidator {
    /// The validator public key.
    pub pubkey: Bytes<48>,
    /// Operator `m`'s public share at position `m - 1`.
    pub public_shares: Vec<Bytes<48>>,
    /// Its deposits, as in the deposit data files.
    pub deposit_data: Vec<serde_json::Value>,
}

/// The cluster lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterLock {
    /// [`LOCK_VERSION`].
    pub version: u32,
    /// The definition the ceremony ran.
    pub definition: ClusterDefinition,
    /// The hash of the public transcript.
    pub transcript_hash: Bytes<32>,
    /// The validators, in order.
    pub validators: Vec<LockValidator>,
    /// SHA-256 over [`LOCK_DOMAIN`] and every field above.
    pub lock_hash: Bytes<32>,
    /// Every operator's signed finalize message (over the transcript hash).
    pub operator_signatures: Vec<Signed<Finalize>>,
}

#[derive(Serialize)]
struct Hashed<'a> {
    version: u32,
    definition: &'a ClusterDefinition,
    transcript_hash: &'a Bytes<32>,
    validators: &'a [LockValidator],
}

/// Why a lock could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A derived key or signature is unusable (cannot happen for a verified
    /// transcript).
    #[error("validator {validator}: {reason}")]
    Invalid {
        /// The validator.
        validator: usize,
        /// Why.
        reason: String,
    },
    /// The definition does not parse.
    #[error("the definition is invalid: {0}")]
    Definition(String),
}

/// The deposit entries of every validator, from a transcript's combined
/// signatures: `entries[v][d]`.
///
/// # Errors
///
/// [`LockError`] if a key or signature in the transcript is unusable.
pub fn deposit_entries(
    transcript: &Transcript,
    network: &Network,
) -> Result<Vec<Vec<DepositEntry>>, LockError> {
    let plan = &transcript.context.plan;
    let credentials = WithdrawalCredentials::from_bytes(&plan.withdrawal_credentials.0)
        .map_err(|e| LockError::Definition(e.to_string()))?;
    transcript
        .validators
        .iter()
        .enumerate()
        .map(|(v, record)| {
            let invalid = |reason: String| LockError::Invalid {
                validator: v,
                reason,
            };
            let pubkey =
                PublicKey::from_bytes(&record.group_key.0).map_err(|e| invalid(e.to_string()))?;
            plan.amounts
                .iter()
                .zip(&record.signatures)
                .map(|(&amount, signature)| {
                    let signature =
                        Signature::from_bytes(&signature.0).map_err(|e| invalid(e.to_string()))?;
                    Ok(DepositEntry::from_signature(
                        &pubkey,
                        credentials,
                        Gwei(amount),
                        network,
                        &signature,
                    ))
                })
                .collect()
        })
        .collect()
}

impl ClusterLock {
    /// The lock of a completed ceremony.
    ///
    /// # Errors
    ///
    /// [`LockError`] if the definition or transcript is unusable.
    pub fn new(definition: &ClusterDefinition, transcript: &Transcript) -> Result<Self, LockError> {
        let network: Network = definition
            .network
            .parse()
            .map_err(|e: crate::eth::network::NetworkError| LockError::Definition(e.to_string()))?;
        let entries = deposit_entries(transcript, &network)?;
        let validators = transcript
            .validators
            .iter()
            .zip(entries)
            .map(|(record, deposits)| LockValidator {
                pubkey: record.group_key,
                public_shares: record.public_shares.clone(),
                deposit_data: deposits.iter().map(DepositEntry::to_json).collect(),
            })
            .collect();
        let mut lock = Self {
            version: LOCK_VERSION,
            definition: definition.clone(),
            transcript_hash: Bytes(transcript.hash()),
            validators,
            lock_hash: Bytes([0; 32]),
            operator_signatures: transcript.finals.clone(),
        };
        lock.lock_hash = Bytes(lock.compute_hash());
        Ok(lock)
    }

    /// Recomputes the lock hash.
    pub fn compute_hash(&self) -> [u8; 32] {
        let hashed = Hashed {
            version: self.version,
            definition: &self.definition,
            transcript_hash: &self.transcript_hash,
            validators: &self.validators,
        };
        let mut hasher = Sha256::new();
        hasher.update(LOCK_DOMAIN);
        hasher.update(serde_json::to_vec(&hashed).unwrap_or_default());
        hasher.finalize().into()
    }
}
