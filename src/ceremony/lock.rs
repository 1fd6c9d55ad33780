//! `cluster-lock.json`: the ceremony's public outcome, the same bytes at
//! every operator. See `ceremony-specs/formats.md`, "Cluster lock".
//!
//! The lock repeats the definition, and per validator its public key, the
//! operators' public shares and its deposit data; it is bound to the
//! transcript by the transcript hash, which every participant signed in
//! round 4 (the signed finalize messages are in the lock). `lock_hash`
//! covers everything but itself and those signatures, in the canonical
//! binary encoding of typed values (never a JSON value tree, whose key
//! order a serde feature could change).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::definition::ClusterDefinition;
use super::definition::ssv::{SsvCluster, SsvOperator};
use crate::dkg::messages::{Finalize, Signed};
use crate::dkg::plan::{CeremonyKind, ShareIndex, StatementKind};
use crate::dkg::transcript::Transcript;
use crate::eth::deposit::DepositEntry;
use crate::eth::network::Network;
use crate::eth::statements::{DepositPlan, OwnershipParams};
use crate::eth::{Gwei, WithdrawalCredentials};
use crate::wire::{self, Bytes};

/// The lock format version.
pub const LOCK_VERSION: u32 = 2;
/// Domain of the lock hash.
pub const LOCK_DOMAIN: &[u8] = b"dvkg/2 cluster lock";

/// One deposit of a validator, with the fields (and field order) of a
/// `deposit_data-*.json` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockDeposit {
    /// The validator's public key.
    pub pubkey: Bytes<48>,
    /// The withdrawal credentials.
    pub withdrawal_credentials: Bytes<32>,
    /// The amount in Gwei.
    pub amount: u64,
    /// The deposit signature.
    pub signature: Bytes<96>,
    /// `hash_tree_root(DepositMessage)`.
    pub deposit_message_root: Bytes<32>,
    /// `hash_tree_root(DepositData)`.
    pub deposit_data_root: Bytes<32>,
    /// The network's genesis fork version.
    pub fork_version: Bytes<4>,
    /// The network's name.
    pub network_name: String,
    /// The tool version written in the entry.
    pub deposit_cli_version: String,
}

impl From<&DepositEntry> for LockDeposit {
    fn from(entry: &DepositEntry) -> Self {
        Self {
            pubkey: Bytes(entry.pubkey),
            withdrawal_credentials: Bytes(entry.withdrawal_credentials),
            amount: entry.amount.0,
            signature: Bytes(entry.signature),
            deposit_message_root: Bytes(entry.deposit_message_root),
            deposit_data_root: Bytes(entry.deposit_data_root),
            fork_version: Bytes(entry.fork_version),
            network_name: entry.network_name.clone(),
            deposit_cli_version: entry.deposit_cli_version.clone(),
        }
    }
}

impl LockDeposit {
    /// The deposit data entry.
    pub fn to_entry(&self) -> DepositEntry {
        DepositEntry {
            pubkey: self.pubkey.0,
            withdrawal_credentials: self.withdrawal_credentials.0,
            amount: Gwei(self.amount),
            signature: self.signature.0,
            deposit_message_root: self.deposit_message_root.0,
            deposit_data_root: self.deposit_data_root.0,
            fork_version: self.fork_version.0,
            network_name: self.network_name.clone(),
            deposit_cli_version: self.deposit_cli_version.clone(),
        }
    }
}

/// One validator in the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockValidator {
    /// The validator public key.
    pub pubkey: Bytes<48>,
    /// Each operator's public share, in operator order (the order of
    /// [`ClusterLock::share_indices`]).
    pub public_shares: Vec<Bytes<48>>,
    /// Its deposits, as in the deposit data files.
    #[serde(deserialize_with = "exact_vec")]
    pub deposit_data: Vec<LockDeposit>,
}

/// A list read with no spare room: a JSON list's length is not known
/// before its end, so a vector read from one keeps room for four; one
/// deposit per validator then cost 1 KB more per validator, 65 MB for a
/// lock of 65,536.
fn exact_vec<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    let mut list = Vec::<T>::deserialize(deserializer)?;
    list.shrink_to_fit();
    Ok(list)
}

/// One validator's SSV registration in the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSsvValidator {
    /// The owner nonce its registration uses.
    pub nonce: u64,
    /// The validator key's signature of the ownership message for that
    /// nonce (the first 96 bytes of its `sharesData`).
    pub ownership_signature: Bytes<96>,
}

/// The SSV part of a lock: what `keyshares.json` holds beyond the
/// definition, the validator keys and their public shares, except the
/// ciphertexts (which are in the transcript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSsv {
    /// Per validator, in order.
    pub validators: Vec<LockSsvValidator>,
}

/// The cluster lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterLock {
    /// [`LOCK_VERSION`].
    pub version: u32,
    /// The ceremony that made it.
    pub kind: CeremonyKind,
    /// The definition the ceremony ran.
    pub definition: ClusterDefinition,
    /// The share index of each operator, in operator order: the point its
    /// shares are evaluated at.
    pub share_indices: Vec<ShareIndex>,
    /// The hash of the public transcript.
    pub transcript_hash: Bytes<32>,
    /// The validators, in order.
    pub validators: Vec<LockValidator>,
    /// For an SSV cluster: each validator's nonce and ownership signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssv: Option<LockSsv>,
    /// For a reshare: the lock hash of the previous lock (which the
    /// definition holds whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_lock_hash: Option<Bytes<32>>,
    /// SHA-256 over [`LOCK_DOMAIN`] and every field above.
    pub lock_hash: Bytes<32>,
    /// Every participant's signed finalize message (over the transcript
    /// hash).
    pub operator_signatures: Vec<Signed<Finalize>>,
}

#[derive(Serialize)]
struct Hashed<'a> {
    version: u32,
    kind: CeremonyKind,
    definition: HashedDefinition<'a>,
    share_indices: &'a [ShareIndex],
    transcript_hash: &'a Bytes<32>,
    validators: &'a [LockValidator],
    ssv: Option<&'a LockSsv>,
    previous_lock_hash: Option<&'a Bytes<32>>,
}

/// The definition as the lock hash encodes it: every optional field an
/// `Option` (byte 0, or byte 1 and the value), never left out, so that the
/// encoding delimits itself.
#[derive(Serialize)]
struct HashedDefinition<'a> {
    version: u64,
    kind: CeremonyKind,
    name: &'a str,
    operators: Vec<HashedRecord<'a>>,
    dealer: Option<HashedRecord<'a>>,
    dealers: Option<&'a [u64]>,
    threshold: u64,
    validators: u64,
    validator_keys: Option<&'a [Bytes<48>]>,
    validator_indices: Option<&'a [u64]>,
    network: &'a str,
    withdrawal_type: Option<&'a str>,
    withdrawal_address: Option<&'a str>,
    fee_recipient: Option<&'a str>,
    amounts_gwei: Option<&'a [u64]>,
    ssv: Option<&'a SsvCluster>,
    /// The previous lock, by its hash (which commits to all of it).
    previous_lock: Option<&'a Bytes<32>>,
    definition_hash: &'a Bytes<32>,
}

/// An operator record as the lock hash encodes it.
#[derive(Serialize)]
struct HashedRecord<'a> {
    name: &'a str,
    identity_key: &'a crate::crypto::identity::IdentityPublicKey,
    age_recipient: &'a str,
    address: &'a str,
    ssv: Option<&'a SsvOperator>,
}

impl<'a> HashedRecord<'a> {
    fn of(o: &'a super::definition::OperatorRecord) -> Self {
        Self {
            name: &o.name,
            identity_key: &o.identity_key,
            age_recipient: &o.age_recipient,
            address: &o.address,
            ssv: o.ssv.as_ref(),
        }
    }
}

impl<'a> HashedDefinition<'a> {
    fn of(d: &'a ClusterDefinition) -> Self {
        Self {
            version: d.version,
            kind: d.kind,
            name: &d.name,
            operators: d.operators.iter().map(HashedRecord::of).collect(),
            dealer: d.dealer.as_ref().map(HashedRecord::of),
            dealers: d.dealers.as_deref(),
            threshold: d.threshold,
            validators: d.validators,
            validator_keys: d.validator_keys.as_deref(),
            validator_indices: d.validator_indices.as_deref(),
            network: &d.network,
            withdrawal_type: d.withdrawal_type.as_deref(),
            withdrawal_address: d.withdrawal_address.as_deref(),
            fee_recipient: d.fee_recipient.as_deref(),
            amounts_gwei: d.amounts_gwei.as_deref(),
            ssv: d.ssv.as_ref(),
            previous_lock: d.previous_lock.as_ref().map(|l| &l.lock_hash),
            definition_hash: &d.definition_hash,
        }
    }
}

/// Why a lock could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The definition does not parse.
    #[error("the definition is invalid: {0}")]
    Definition(#[from] super::definition::DefinitionError),
    /// The transcript's plan has no deposits to build deposit data from.
    #[error("the transcript's plan signs no deposit, or deposits of several networks")]
    NoDeposits,
    /// An SSV definition whose transcript signed no ownership message.
    #[error("the definition is an SSV cluster's, but the transcript signed no ownership message")]
    NoOwnership,
}

/// The SSV part of the lock, from the transcript's combined signatures of
/// its ownership statement; `None` when the plan has none.
///
/// # Errors
///
/// [`LockError::NoOwnership`] if a validator lacks the signature or the
/// statement's parameters do not decode.
pub fn ssv_part(transcript: &Transcript) -> Result<Option<LockSsv>, LockError> {
    let statements = transcript.context.plan.statements();
    let Some(position) = statements
        .iter()
        .position(|s| s.kind == StatementKind::Ownership)
    else {
        return Ok(None);
    };
    let params = statements
        .get(position)
        .map(OwnershipParams::of)
        .and_then(Result::ok)
        .ok_or(LockError::NoOwnership)?;
    let validators = transcript
        .validators
        .iter()
        .enumerate()
        .map(|(v, record)| {
            Ok(LockSsvValidator {
                nonce: params.nonce(v).map_err(|_| LockError::NoOwnership)?,
                ownership_signature: *record
                    .signatures
                    .get(position)
                    .ok_or(LockError::NoOwnership)?,
            })
        })
        .collect::<Result<_, LockError>>()?;
    Ok(Some(LockSsv { validators }))
}

/// The deposit entries of every validator, from a transcript's combined
/// signatures of its deposit statements: `entries[v][d]`.
///
/// The transcript is a verified one (the protocol's own, or one
/// [`verify_transcript`](crate::dkg::transcript::verify_transcript)
/// accepted): its keys are the derived ones and its signatures verified
/// combinations, so their bytes are used as they are, not decoded and
/// subgroup-checked again (a third of the outputs' time at V=10,000).
///
/// # Errors
///
/// [`LockError::NoDeposits`] if the statements are not a deposit plan or a
/// record lacks a deposit signature.
pub fn deposit_entries(
    transcript: &Transcript,
    network: &Network,
) -> Result<Vec<Vec<DepositEntry>>, LockError> {
    let statements = transcript.context.plan.statements();
    let plan = DepositPlan::from_statements(statements).ok_or(LockError::NoDeposits)?;
    let credentials = WithdrawalCredentials::from_bytes(&plan.withdrawal_credentials)
        .map_err(|_| LockError::NoDeposits)?;
    let deposit_positions: Vec<usize> = statements
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StatementKind::Deposit)
        .map(|(d, _)| d)
        .collect();
    // Every core: each validator's deposit roots hashed.
    transcript
        .validators
        .par_iter()
        .map(|record| {
            crate::collect::try_collect_exact(plan.amounts.iter().zip(&deposit_positions).map(
                |(&amount, &d)| {
                    let signature = record.signatures.get(d).ok_or(LockError::NoDeposits)?;
                    Ok(DepositEntry::from_signature_bytes(
                        record.group_key.0,
                        credentials,
                        Gwei(amount),
                        network,
                        signature.0,
                    ))
                },
            ))
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
        Self::with_transcript_hash(definition, transcript, transcript.hash())
    }

    /// [`ClusterLock::new`] with the transcript's hash given: that of a
    /// transcript verified as a stream, whose deals and partial signatures
    /// were not kept ([`crate::ceremony::transcript_file::Checked`]).
    ///
    /// # Errors
    ///
    /// As [`ClusterLock::new`].
    pub fn with_transcript_hash(
        definition: &ClusterDefinition,
        transcript: &Transcript,
        transcript_hash: [u8; 32],
    ) -> Result<Self, LockError> {
        let valid = definition.validate()?;
        // A split's validators are live: they deposit nothing new. A
        // reshare's carry the previous lock's deposits over unchanged.
        let deposits: Vec<Vec<LockDeposit>> = match (&valid.kind, &valid.reshare) {
            (CeremonyKind::Split, _) => vec![Vec::new(); transcript.validators.len()],
            (CeremonyKind::Reshare, Some(reshare)) => reshare
                .subset
                .iter()
                .map(|&v| {
                    reshare
                        .previous
                        .validators
                        .get(v)
                        .map(|x| x.deposit_data.clone())
                        .unwrap_or_default()
                })
                .collect(),
            (CeremonyKind::Dkg | CeremonyKind::Reshare, _) => {
                deposit_entries(transcript, &valid.network)?
                    .iter()
                    .map(|entries| entries.iter().map(LockDeposit::from).collect())
                    .collect()
            }
        };
        let validators = transcript
            .validators
            .iter()
            .zip(deposits)
            .map(|(record, deposit_data)| LockValidator {
                pubkey: record.group_key,
                public_shares: record.public_shares.clone(),
                deposit_data,
            })
            .collect();
        let plan = &transcript.context.plan;
        let ssv = ssv_part(transcript)?;
        if valid.ssv.is_some() != ssv.is_some() {
            return Err(LockError::NoOwnership);
        }
        let mut lock = Self {
            version: LOCK_VERSION,
            kind: plan.kind(),
            definition: definition.clone(),
            share_indices: plan.indices().to_vec(),
            transcript_hash: Bytes(transcript_hash),
            validators,
            ssv,
            previous_lock_hash: definition.previous_lock.as_ref().map(|l| l.lock_hash),
            lock_hash: Bytes([0; 32]),
            operator_signatures: transcript.finals.clone(),
        };
        lock.lock_hash = Bytes(lock.compute_hash());
        Ok(lock)
    }

    /// Recomputes the lock hash: `SHA-256("dvkg/2 cluster lock" ‖
    /// encode(version, kind, definition, share_indices, transcript_hash,
    /// validators, ssv))`, in the protocol's canonical binary encoding (`ssv`
    /// an option: a zero byte when absent).
    pub fn compute_hash(&self) -> [u8; 32] {
        let hashed = Hashed {
            version: self.version,
            kind: self.kind,
            definition: HashedDefinition::of(&self.definition),
            share_indices: &self.share_indices,
            transcript_hash: &self.transcript_hash,
            validators: &self.validators,
            ssv: self.ssv.as_ref(),
            previous_lock_hash: self.previous_lock_hash.as_ref(),
        };
        let mut hasher = Sha256::new();
        hasher.update(LOCK_DOMAIN);
        wire::hash_encoding(&mut hasher, &hashed);
        hasher.finalize().into()
    }

    /// Every deposit of the lock, as deposit data entries.
    pub fn deposit_entries(&self) -> Vec<DepositEntry> {
        self.validators
            .iter()
            .flat_map(|v| v.deposit_data.iter().map(LockDeposit::to_entry))
            .collect()
    }
}
