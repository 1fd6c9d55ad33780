//! The cluster definition (`cluster-definition.json`): who the operators are
//! and what the ceremony creates. Every operator runs the ceremony from the
//! same file; its hash binds every protocol message to it.
//!
//! # Format, version 2
//!
//! ```json
//! {
//!   "version": 2,
//!   "name": "cluster",
//!   "operators": [
//!     {
//!       "name": "alice",
//!       "identity_key": "<64 hex: Ed25519 public key>",
//!       "age_recipient": "age1…",
//!       "address": "alice.example.org:9000"
//!     }
//!   ],
//!   "threshold": 3,
//!   "validators": 1,
//!   "network": "hoodi",
//!   "withdrawal_type": "0x01",
//!   "withdrawal_address": "0x<EIP-55 checksummed>",
//!   "fee_recipient": null,
//!   "amounts_gwei": [32000000000],
//!   "definition_hash": "<64 hex>"
//! }
//! ```
//!
//! Operators are listed in operator order: the operator at position `p`
//! (0-based) has index `p + 1`. Every validator receives one deposit per
//! entry of `amounts_gwei`. Unknown fields are refused, at the top level and
//! in operator records.
//!
//! An SSV cluster's definition has, after `amounts_gwei`, an `ssv` object
//! (`{"owner", "nonce", "created_at"}`), and every operator record an `ssv`
//! object (`{"operator_id", "operator_key"}`): see [`ssv`] for their rules.
//! Both are absent otherwise.
//!
//! # The definition hash
//!
//! `definition_hash = SHA-256("dvkg/2 cluster definition" ‖ J)`, where `J`
//! is the compact JSON encoding (`serde_json::to_vec`: no whitespace, fields
//! in the order above, `fee_recipient` written as `null` when absent, the
//! `ssv` objects left out when absent) of
//! every field except `definition_hash` itself. The hash is recomputed from
//! the parsed values, so reformatting the file keeps it; changing any value
//! does not. To make one definition have one hash, values must be written in
//! their canonical form: the network as `dvkg` prints it, the withdrawal type
//! as `0x01`/`0x02`, addresses EIP-55 checksummed and age recipients in
//! lowercase Bech32.

pub mod reshare;
pub mod ssv;

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{OperatorId, Params, ParamsError};
use crate::crypto::identity::IdentityPublicKey;
use crate::dkg::Context;
use crate::dkg::plan::{
    CeremonyKind, Combine, Participant, Plan, PlanError, PreviousShares, RawPlan, ShareIndex,
    Statement, StatementKind,
};
use crate::eth::amount::{self, AmountError};
use crate::eth::credentials::AddressError;
use crate::eth::network::NetworkError;
use crate::eth::statements::{self, DepositPlan, OwnershipParams};
use crate::eth::{ExecutionAddress, Gwei, Network, WithdrawalCredentials, WithdrawalKind};
use crate::ssv::operator_key::OperatorKeyError;
use crate::store::sealed::{self, AgeRecipient, SealError};
use crate::store::{self, StoreError};
use crate::wire::{Bytes, VarBytes};

/// The definition format this version reads and writes.
pub const DEFINITION_VERSION: u64 = 2;
/// The operator record file (`operator.json`) format version written; 1
/// (without the `ssv` object) is read too.
pub const OPERATOR_FILE_VERSION: u64 = 2;
/// The domain string in front of the hashed definition fields.
pub const DEFINITION_HASH_DOMAIN: &[u8] = b"dvkg/2 cluster definition";
/// The longest operator or cluster name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The largest definition file read (64 operators and 2048 amounts fit in
/// well under 100 KiB).
pub const MAX_DEFINITION_FILE_BYTES: u64 = 1024 * 1024;
/// The largest operator record file read.
pub const MAX_OPERATOR_FILE_BYTES: u64 = 64 * 1024;
/// The longest `host:port` address (a 253-character DNS name and a port).
const MAX_ADDRESS_CHARS: usize = 260;

/// The top-level fields of a version-2 definition, in order.
const FIELDS: [&str; 18] = [
    "version",
    "kind",
    "name",
    "operators",
    "dealer",
    "dealers",
    "threshold",
    "validators",
    "validator_keys",
    "validator_indices",
    "network",
    "withdrawal_type",
    "withdrawal_address",
    "fee_recipient",
    "amounts_gwei",
    "ssv",
    "previous_lock",
    "definition_hash",
];

/// One operator as the others see it: everything public another operator
/// needs to reach it, authenticate it and seal data to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRecord {
    /// A name for humans: 1 to 64 printable characters.
    pub name: String,
    /// The Ed25519 key that signs the operator's messages and TLS
    /// certificate.
    pub identity_key: IdentityPublicKey,
    /// The age X25519 recipient its share backup is sealed to (`age1…`).
    pub age_recipient: String,
    /// Where the other operators reach it: `host:port`.
    pub address: String,
    /// Its SSV operator id and registered key, if it is an SSV operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssv: Option<ssv::SsvOperator>,
}

/// `operator.json`: an [`OperatorRecord`] with a format version.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorFile {
    version: u64,
    name: String,
    identity_key: IdentityPublicKey,
    age_recipient: String,
    address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssv: Option<ssv::SsvOperator>,
}

/// Why an operator record was refused. Each message starts with the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not JSON, or not the record's shape (an unknown or missing field).
    #[error("not an operator record: {}", crate::store::describe_json_error(.0))]
    Malformed(#[source] serde_json::Error),
    /// An `operator.json` of another format version.
    #[error(
        "unsupported operator record version {0}: this dvkg reads versions 1 and {OPERATOR_FILE_VERSION}"
    )]
    UnsupportedVersion(String),
    /// A version-1 record with an `ssv` object, which version 1 lacks.
    #[error(
        "an operator record of version 1 has no ssv field: write version {OPERATOR_FILE_VERSION}"
    )]
    SsvInVersionOne,
    /// SSV operator id 0.
    #[error("ssv.operator_id must be 1 or more: SSV operator ids start at 1")]
    SsvOperatorId,
    /// An SSV operator key SSV would refuse.
    #[error("ssv.operator_key: {source}")]
    SsvOperatorKey {
        /// Why.
        #[source]
        source: OperatorKeyError,
    },
    /// An unusable name.
    #[error(
        "name {0:?} must be 1 to {MAX_NAME_CHARS} printable characters, without leading or trailing spaces"
    )]
    Name(String),
    /// Bytes that are not a usable Ed25519 public key.
    #[error("identity_key {0} is not a valid Ed25519 public key")]
    IdentityKey(IdentityPublicKey),
    /// Not an age recipient.
    #[error("age_recipient {value:?}: {source}")]
    AgeRecipient {
        /// The text given.
        value: String,
        /// Why age refused it.
        #[source]
        source: SealError,
    },
    /// An age recipient not in its canonical (lowercase) form.
    #[error("age_recipient {given:?} must be written {canonical:?}")]
    NonCanonicalAgeRecipient {
        /// The text given.
        given: String,
        /// Its canonical form.
        canonical: String,
    },
    /// Not `host:port`.
    #[error("address {value:?} is not HOST:PORT: {reason}")]
    Address {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Checks a name: 1 to [`MAX_NAME_CHARS`] characters, none of them a control
/// character, no leading or trailing whitespace.
///
/// # Errors
///
/// [`RecordError::Name`].
pub fn check_name(name: &str) -> Result<(), RecordError> {
    let count = name.chars().count();
    let ok = (1..=MAX_NAME_CHARS).contains(&count)
        && !name.chars().any(char::is_control)
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(RecordError::Name(name.to_owned()))
    }
}

/// Checks an operator address: `host:port`, where host is a DNS name, an
/// IPv4 address or a bracketed IPv6 address and port is 1 to 65535.
///
/// # Errors
///
/// [`RecordError::Address`] saying what is wrong.
pub fn check_address(text: &str) -> Result<(), RecordError> {
    let fail = |reason| {
        Err(RecordError::Address {
            value: text.to_owned(),
            reason,
        })
    };
    if text.len() > MAX_ADDRESS_CHARS {
        return fail("too long");
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return fail("missing :PORT");
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return fail("the port must be a number from 1 to 65535");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return fail("the port must be a number from 1 to 65535"),
        Ok(_) => {}
    }
    if let Some(inner) = host.strip_prefix('[') {
        let Some(v6) = inner.strip_suffix(']') else {
            return fail("an IPv6 host must be written in brackets: [::1]:9000");
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return fail("the bracketed host is not an IPv6 address");
        }
        return Ok(());
    }
    if host.contains(':') {
        return fail("an IPv6 host must be written in brackets: [::1]:9000");
    }
    if host.is_empty() {
        return fail("missing host");
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return fail("the host is not a DNS name or IP address");
    }
    Ok(())
}

impl OperatorRecord {
    /// Checks every field: name, Ed25519 key, age recipient, address.
    ///
    /// # Errors
    ///
    /// The first [`RecordError`] found, naming the field.
    pub fn validate(&self) -> Result<(), RecordError> {
        check_name(&self.name)?;
        if !self.identity_key.is_valid() {
            return Err(RecordError::IdentityKey(self.identity_key));
        }
        self.recipient()?;
        check_address(&self.address)?;
        if let Some(registration) = &self.ssv {
            registration.validate()?;
        }
        Ok(())
    }

    /// The parsed age recipient, which must be in canonical form.
    ///
    /// # Errors
    ///
    /// [`RecordError::AgeRecipient`] or
    /// [`RecordError::NonCanonicalAgeRecipient`].
    pub fn recipient(&self) -> Result<AgeRecipient, RecordError> {
        let recipient = sealed::parse_recipient(&self.age_recipient).map_err(|source| {
            RecordError::AgeRecipient {
                value: self.age_recipient.clone(),
                source,
            }
        })?;
        let canonical = recipient.to_string();
        if canonical != self.age_recipient {
            return Err(RecordError::NonCanonicalAgeRecipient {
                given: self.age_recipient.clone(),
                canonical,
            });
        }
        Ok(recipient)
    }

    /// Parses an `operator.json` (`{"version": 1, "name": …}`) and validates
    /// the record.
    ///
    /// # Errors
    ///
    /// [`RecordError`] naming the problem.
    pub fn from_file_json(text: &str) -> Result<Self, RecordError> {
        let value: Value = serde_json::from_str(text).map_err(RecordError::Malformed)?;
        match value.get("version").map(Value::as_u64) {
            Some(Some(1 | OPERATOR_FILE_VERSION)) => {}
            Some(_) => {
                let version = value.get("version").map(Value::to_string);
                return Err(RecordError::UnsupportedVersion(version.unwrap_or_default()));
            }
            // Let serde name the missing field.
            None => {}
        }
        let file: OperatorFile = serde_json::from_str(text).map_err(RecordError::Malformed)?;
        if file.version == 1 && file.ssv.is_some() {
            return Err(RecordError::SsvInVersionOne);
        }
        let record = Self {
            name: file.name,
            identity_key: file.identity_key,
            age_recipient: file.age_recipient,
            address: file.address,
            ssv: file.ssv,
        };
        record.validate()?;
        Ok(record)
    }

    /// The `operator.json` text: pretty JSON with a format version and a
    /// final newline.
    ///
    /// # Errors
    ///
    /// A serde error, which would be a bug.
    pub fn to_file_json(&self) -> Result<String, serde_json::Error> {
        let file = OperatorFile {
            version: OPERATOR_FILE_VERSION,
            name: self.name.clone(),
            identity_key: self.identity_key,
            age_recipient: self.age_recipient.clone(),
            address: self.address.clone(),
            ssv: self.ssv.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file)?;
        text.push('\n');
        Ok(text)
    }
}

/// A cluster definition as written on disk. Build one with
/// [`ClusterDefinition::create`]; read one with [`ClusterDefinition::load`].
/// Both validate; a value built by hand is checked by
/// [`ClusterDefinition::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDefinition {
    /// Format version: [`DEFINITION_VERSION`].
    pub version: u64,
    /// The ceremony: `dkg` (new keys) or `split` (existing keys, dealt by
    /// one dealer).
    pub kind: CeremonyKind,
    /// A name for humans.
    pub name: String,
    /// The operators, in operator order (index = position + 1): the holders
    /// of the shares.
    pub operators: Vec<OperatorRecord>,
    /// A split's dealer: the party that holds the existing keys and deals
    /// them, holding no share (participant n + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealer: Option<OperatorRecord>,
    /// A reshare's dealers: operator indices of the previous lock, ascending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealers: Option<Vec<u64>>,
    /// Operators needed to sign: `n/2 < t <= n`.
    pub threshold: u64,
    /// Validators: 1 to 65,536.
    pub validators: u64,
    /// A split's validator public keys, in validator order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_keys: Option<Vec<Bytes<48>>>,
    /// A reshare of some of the previous lock's validators: their positions
    /// in it, ascending (all of them when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_indices: Option<Vec<u64>>,
    /// The network, as [`Network`] parses and prints it.
    pub network: String,
    /// A DKG's withdrawal credential type: `0x01` or `0x02`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal_type: Option<String>,
    /// A DKG's withdrawal address, EIP-55 checksummed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal_address: Option<String>,
    /// The execution address of the validators' fee recipient, if set.
    pub fee_recipient: Option<String>,
    /// The deposits each new validator of a DKG receives, in Gwei (deposit
    /// units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amounts_gwei: Option<Vec<u64>>,
    /// The SSV registration, for an SSV cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssv: Option<ssv::SsvCluster>,
    /// A reshare's previous lock, whole: every participant derives the plan
    /// from it, and the hash commits to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_lock: Option<Box<super::lock::ClusterLock>>,
    /// SHA-256 over the other fields; see the module documentation.
    pub definition_hash: Bytes<32>,
}

/// The fields covered by the definition hash, in file order.
#[derive(Serialize)]
struct HashedFields<'a> {
    version: u64,
    kind: CeremonyKind,
    name: &'a str,
    operators: &'a [OperatorRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    dealer: Option<&'a OperatorRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dealers: Option<&'a [u64]>,
    threshold: u64,
    validators: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    validator_keys: Option<&'a [Bytes<48>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validator_indices: Option<&'a [u64]>,
    network: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    withdrawal_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    withdrawal_address: Option<&'a str>,
    fee_recipient: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amounts_gwei: Option<&'a [u64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssv: Option<&'a ssv::SsvCluster>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_lock: Option<&'a super::lock::ClusterLock>,
}

/// What a new definition is made of, already parsed.
#[derive(Debug, Clone)]
pub struct NewDefinition {
    /// The cluster's name.
    pub name: String,
    /// The operators, in operator order.
    pub operators: Vec<OperatorRecord>,
    /// The threshold; `None` for [`Params::default_threshold`].
    pub threshold: Option<u64>,
    /// Validators to create.
    pub validators: u64,
    /// The network.
    pub network: Network,
    /// The withdrawal credential type.
    pub withdrawal_kind: WithdrawalKind,
    /// Where withdrawals go.
    pub withdrawal_address: ExecutionAddress,
    /// The fee recipient.
    pub fee_recipient: Option<ExecutionAddress>,
    /// Deposits per validator.
    pub amounts: Vec<Gwei>,
    /// The SSV registration, for an SSV cluster: its operators are then
    /// sorted into ascending SSV id and the threshold defaults to SSV's.
    pub ssv: Option<ssv::NewSsv>,
}

/// What `dvkg definition split` is given: a split of existing validator
/// keys, by one dealer, to the operators.
#[derive(Debug, Clone)]
pub struct NewSplit {
    /// The cluster's name.
    pub name: String,
    /// The operators, who receive the shares.
    pub operators: Vec<OperatorRecord>,
    /// The dealer, who holds the keys.
    pub dealer: OperatorRecord,
    /// The threshold; `None` for the default (SSV's for an SSV cluster).
    pub threshold: Option<u64>,
    /// The validators' public keys, in validator order.
    pub validator_keys: Vec<Bytes<48>>,
    /// The network the validators are on.
    pub network: Network,
    /// The fee recipient.
    pub fee_recipient: Option<ExecutionAddress>,
    /// The SSV registration, for an SSV cluster.
    pub ssv: Option<ssv::NewSsv>,
}

/// What `dvkg definition reshare` is given: the previous lock, the new
/// operators and the dealers among the previous ones.
#[derive(Debug, Clone)]
pub struct NewReshare {
    /// The cluster's name.
    pub name: String,
    /// The previous lock (verified by the caller).
    pub previous_lock: super::lock::ClusterLock,
    /// The new operators, who receive the shares.
    pub operators: Vec<OperatorRecord>,
    /// The dealers: operator indices of the previous lock, ascending.
    pub dealers: Vec<u64>,
    /// The threshold; `None` for the default.
    pub threshold: Option<u64>,
    /// The validators reshared (positions in the previous lock); `None`
    /// for all.
    pub validator_indices: Option<Vec<u64>>,
    /// The SSV registration, for an SSV cluster.
    pub ssv: Option<ssv::NewSsv>,
}

/// A definition's contents, checked and typed.
#[derive(Debug, Clone)]
pub struct ValidDefinition {
    /// The ceremony.
    pub kind: CeremonyKind,
    /// `n` (the operators, who hold shares), `t`, `V`.
    pub params: Params,
    /// The network.
    pub network: Network,
    /// A DKG's withdrawal credentials (none for a split: its validators
    /// already deposited).
    pub credentials: Option<WithdrawalCredentials>,
    /// A DKG's deposits per validator (empty for a split).
    pub amounts: Vec<Gwei>,
    /// The fee recipient, if set.
    pub fee_recipient: Option<ExecutionAddress>,
    /// Every participant's identity key, in slot order: the operators, then
    /// a split's dealer.
    pub roster: Vec<IdentityPublicKey>,
    /// Each operator's age recipient, in operator order.
    pub recipients: Vec<AgeRecipient>,
    /// A split's validator keys, in validator order (empty for a DKG).
    pub validator_keys: Vec<Bytes<48>>,
    /// The definition hash (checked against the contents).
    pub definition_hash: Bytes<32>,
    /// The SSV registration, for an SSV cluster.
    pub ssv: Option<ssv::ValidSsv>,
    /// A reshare's previous lock, dealers and validators.
    pub reshare: Option<reshare::ValidReshare>,
}

impl ValidDefinition {
    /// What every new validator of a DKG deposits; `None` for a split.
    pub fn deposit_plan(&self) -> Option<DepositPlan> {
        self.credentials.map(|credentials| {
            DepositPlan::new(
                self.network.genesis_fork_version(),
                credentials,
                &self.amounts,
            )
        })
    }

    /// The protocol's view of the definition (formats.md §7.5). A DKG: every
    /// operator deals and holds a share at its slot, and the keys sign the
    /// deposits. A split: the operators hold shares, the dealer (the last
    /// participant) deals the known keys and holds none, and the keys sign
    /// a possession message. For an SSV cluster the shares sit at the SSV
    /// operator ids, every validator also signs its ownership message, and
    /// every holder attaches its shares encrypted to its own operator key.
    ///
    /// # Errors
    ///
    /// [`PlanError`], which a validated definition never gives.
    pub fn context(&self) -> Result<Context, PlanError> {
        let threshold = u8::try_from(self.params.threshold()).map_err(|_| {
            PlanError::Params(ParamsError::Threshold {
                threshold: self.params.threshold() as u64,
                operators: self.params.operators() as u64,
            })
        })?;
        let mut statements = match self.deposit_plan() {
            Some(deposits) => deposits.statements(),
            None => vec![Statement {
                kind: StatementKind::Possession,
                params: VarBytes(Vec::new()),
            }],
        };
        let n = self.params.operators();
        let indices: Vec<ShareIndex> = match &self.ssv {
            Some(ssv) => {
                statements.push(
                    OwnershipParams {
                        owner: Bytes(*ssv.owner.as_bytes()),
                        first_nonce: ssv.first_nonce,
                    }
                    .statement(),
                );
                ssv.ids()
                    .into_iter()
                    .map(|id| ShareIndex::try_from(id).map_err(|_| PlanError::Participants(0)))
                    .collect::<Result<_, _>>()?
            }
            None => (0..n)
                .map(|p| {
                    OperatorId::from_position(p)
                        .map(ShareIndex::of_slot)
                        .map_err(|_| PlanError::Participants(n))
                })
                .collect::<Result<_, _>>()?,
        };
        let mut plan = match self.kind {
            CeremonyKind::Dkg => Plan::dkg(
                &self.roster,
                Some(&indices),
                threshold,
                self.params.validators() as u32,
                statements,
            )?,
            CeremonyKind::Reshare => {
                let reshare = self.reshare.as_ref().ok_or(PlanError::Roles {
                    kind: CeremonyKind::Reshare,
                    rule: "has its previous lock",
                })?;
                let participants = self
                    .roster
                    .iter()
                    .enumerate()
                    .map(|(position, &identity)| Participant {
                        identity,
                        deals: reshare
                            .dealers
                            .iter()
                            .any(|d| d.slot.position() == position),
                        share: indices.get(position).copied(),
                    })
                    .collect();
                let previous = reshare
                    .dealers
                    .iter()
                    .map(|d| PreviousShares {
                        dealer: d.slot,
                        index: d.previous_index,
                        public_shares: reshare.public_shares(d),
                    })
                    .collect();
                Plan::new(RawPlan {
                    kind: CeremonyKind::Reshare,
                    participants,
                    threshold,
                    validators: self.params.validators() as u32,
                    combine: Combine::Reshare {
                        group_keys: self.validator_keys.clone(),
                        previous,
                    },
                    statements,
                    attachments: None,
                })?
            }
            CeremonyKind::Split => {
                let mut participants: Vec<Participant> = self
                    .roster
                    .iter()
                    .zip(&indices)
                    .map(|(&identity, &share)| Participant {
                        identity,
                        deals: false,
                        share: Some(share),
                    })
                    .collect();
                if let Some(&dealer) = self.roster.get(n) {
                    participants.push(Participant {
                        identity: dealer,
                        deals: true,
                        share: None,
                    });
                }
                Plan::new(RawPlan {
                    kind: CeremonyKind::Split,
                    participants,
                    threshold,
                    validators: self.params.validators() as u32,
                    combine: Combine::Split {
                        group_keys: self.validator_keys.clone(),
                    },
                    statements,
                    attachments: None,
                })?
            }
        };
        if let Some(ssv) = &self.ssv {
            let keys: Vec<_> = ssv.operators.iter().map(|(_, k)| k.clone()).collect();
            plan = plan.with_attachments(statements::ssv_attachments(&keys))?;
        }
        Ok(Context {
            plan,
            definition_hash: self.definition_hash,
        })
    }
}

/// Why a definition was refused. Every message names the field, and the
/// operator index where one operator is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The file could not be read.
    #[error("failed to read cluster definition {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// Not JSON, or a field given twice.
    #[error("not a valid cluster definition: {}", crate::store::describe_json_error(.0))]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("not a cluster definition: the top level must be a JSON object")]
    NotAnObject,
    /// Another format version.
    #[error(
        "unsupported cluster definition version {got}: this dvkg reads version {DEFINITION_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found, as written.
        got: String,
    },
    /// A field this version does not know.
    #[error("unknown field `{field}` in the cluster definition")]
    UnknownField {
        /// The field.
        field: String,
    },
    /// A required field is absent.
    #[error("missing field `{field}` in the cluster definition")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field of the wrong JSON type.
    #[error("invalid field `{field}`: {source}")]
    FieldType {
        /// The field.
        field: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The stored hash is not the hash of the contents.
    #[error(
        "definition_hash {stored:?} does not match the contents (computed {computed:?}): the file was edited after it was created; run dvkg definition new again"
    )]
    HashMismatch {
        /// The hash in the file.
        stored: Bytes<32>,
        /// The hash of the contents.
        computed: Bytes<32>,
    },
    /// An unusable cluster name.
    #[error(
        "name {0:?} must be 1 to {MAX_NAME_CHARS} printable characters, without leading or trailing spaces"
    )]
    Name(String),
    /// One operator's record is invalid.
    #[error("operators: operator {index}: {source}")]
    Operator {
        /// The operator's index (1-based).
        index: usize,
        /// What is wrong.
        #[source]
        source: RecordError,
    },
    /// Two operators share an identity key, name, address or age recipient.
    #[error("operators: operators {first} and {second} have the same {field} {value}")]
    DuplicateOperator {
        /// The shared field.
        field: &'static str,
        /// The first operator's index.
        first: usize,
        /// The second operator's index.
        second: usize,
        /// The shared value.
        value: String,
    },
    /// `n`, `t` or `V` out of range.
    #[error("invalid {field}: {source}")]
    Params {
        /// `operators`, `threshold` or `validators`.
        field: &'static str,
        /// The rule broken.
        #[source]
        source: ParamsError,
    },
    /// Not a network.
    #[error("invalid network: {source}")]
    Network {
        /// Why.
        #[source]
        source: NetworkError,
    },
    /// A value that parses but is not in its canonical form.
    #[error("{field} {given:?} must be written {canonical:?}")]
    NonCanonical {
        /// The field.
        field: &'static str,
        /// The text given.
        given: String,
        /// Its canonical form.
        canonical: String,
    },
    /// Not `0x01` or `0x02`.
    #[error("invalid withdrawal_type {value:?}: {reason}")]
    WithdrawalType {
        /// The text given.
        value: String,
        /// Why.
        reason: String,
    },
    /// Not an execution address, or a bad checksum.
    #[error("invalid {field}: {source}")]
    Address {
        /// `withdrawal_address` or `fee_recipient`.
        field: &'static str,
        /// Why.
        #[source]
        source: AddressError,
    },
    /// Deposit amounts out of range.
    #[error("invalid amounts_gwei: {0}")]
    Amounts(#[source] AmountError),
    /// The same amount listed twice: both deposits would sign the same
    /// message and be the same deposit data.
    #[error("invalid amounts_gwei: an amount is listed twice; use one deposit of their sum")]
    RepeatedAmount,
    /// The definition does not make a valid ceremony plan.
    #[error("the definition does not make a valid ceremony: {source}")]
    Plan {
        /// Why.
        #[source]
        source: PlanError,
    },
    /// A field the kind needs is missing, or one it does not have is there.
    #[error("{}", kind_field_message(*.kind, .field, *.present))]
    KindField {
        /// The definition's kind.
        kind: CeremonyKind,
        /// The field.
        field: &'static str,
        /// Whether it is there.
        present: bool,
    },
    /// A reshare field that does not hold (formats.md §7.8).
    #[error("invalid {field}: {reason}")]
    Reshare {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The dealer's record is invalid.
    #[error("dealer: {source}")]
    Dealer {
        /// What is wrong.
        #[source]
        source: RecordError,
    },
    /// The dealer shares a field with an operator.
    #[error(
        "the dealer and operator {operator} have the same {field} {value}: the dealer is a party of its own (an operator who also holds the keys deals with a second identity)"
    )]
    DealerIsOperator {
        /// The shared field.
        field: &'static str,
        /// The operator.
        operator: usize,
        /// The shared value.
        value: String,
    },
    /// Not one validator key per validator.
    #[error("validator_keys: {got} keys for {expected} validators")]
    ValidatorKeys {
        /// Keys given.
        got: usize,
        /// `validators`.
        expected: u64,
    },
    /// A validator key that is not a BLS public key.
    #[error("validator_keys[{index}] is not a valid BLS public key: {reason}")]
    ValidatorKey {
        /// Its position.
        index: usize,
        /// Why.
        reason: crate::crypto::BlsError,
    },
    /// The same validator key twice.
    #[error("validator_keys[{first}] and validator_keys[{second}] are the same key")]
    RepeatedValidatorKey {
        /// The first position.
        first: usize,
        /// The second.
        second: usize,
    },
    /// An SSV cluster of a size SSV does not accept.
    #[error("invalid operators: an SSV cluster has 4, 7, 10 or 13 operators, not {operators}")]
    SsvClusterSize {
        /// Operators given.
        operators: usize,
    },
    /// An SSV cluster with another threshold than SSV's.
    #[error(
        "invalid threshold: an SSV cluster of {operators} operators signs with {expected} of them (n - (n-1)/3, as SSV requires), not {threshold}"
    )]
    SsvThreshold {
        /// Operators.
        operators: usize,
        /// The threshold given.
        threshold: u64,
        /// SSV's threshold.
        expected: usize,
    },
    /// An operator of an SSV cluster without an SSV registration.
    #[error(
        "operators: operator {index} has no ssv operator id and key, which every operator of an SSV cluster needs (dvkg identity new --ssv-operator-id ID --ssv-operator-key FILE)"
    )]
    SsvOperatorMissing {
        /// The operator (1-based).
        index: usize,
    },
    /// Operators not in ascending SSV id order.
    #[error(
        "operators: operator {index} has SSV operator id {id} after {previous}: an SSV cluster lists its operators in ascending id order (dvkg definition new sorts them)"
    )]
    SsvIdsNotAscending {
        /// The operator out of place (1-based).
        index: usize,
        /// The id before it.
        previous: u64,
        /// Its id.
        id: u64,
    },
    /// An unusable `ssv.owner`, `ssv.nonce` or `ssv.created_at`.
    #[error("invalid {field}: {reason}")]
    SsvField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

fn kind_field_message(kind: CeremonyKind, field: &str, present: bool) -> String {
    if present {
        format!("field `{field}` is not part of a {kind} definition")
    } else {
        format!("missing field `{field}`: a {kind} definition needs it")
    }
}

fn take_field<T: DeserializeOwned>(
    map: &mut serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<T, DefinitionError> {
    let value = map
        .remove(field)
        .ok_or(DefinitionError::MissingField { field })?;
    serde_json::from_value(value).map_err(|source| DefinitionError::FieldType { field, source })
}

/// An optional field: absent or `null` is `None`.
fn take_optional<T: DeserializeOwned>(
    map: &mut serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<T>, DefinitionError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|source| DefinitionError::FieldType { field, source }),
    }
}

fn params_field(err: &ParamsError) -> &'static str {
    match err {
        ParamsError::Operators(_) => "operators",
        ParamsError::Threshold { .. } => "threshold",
        ParamsError::Validators(_) => "validators",
    }
}

fn parse_address(field: &'static str, text: &str) -> Result<ExecutionAddress, DefinitionError> {
    let address = text
        .parse::<ExecutionAddress>()
        .map_err(|source| DefinitionError::Address { field, source })?;
    let canonical = address.to_checksum();
    if canonical != text {
        return Err(DefinitionError::NonCanonical {
            field,
            given: text.to_owned(),
            canonical,
        });
    }
    Ok(address)
}

/// A DKG's deposit fields: the credentials and the amounts.
fn check_deposits(
    withdrawal_type: &str,
    withdrawal_address: &str,
    amounts_gwei: &[u64],
) -> Result<(WithdrawalCredentials, Vec<Gwei>), DefinitionError> {
    let kind: WithdrawalKind =
        withdrawal_type
            .parse()
            .map_err(|reason| DefinitionError::WithdrawalType {
                value: withdrawal_type.to_owned(),
                reason,
            })?;
    if kind.label() != withdrawal_type {
        return Err(DefinitionError::NonCanonical {
            field: "withdrawal_type",
            given: withdrawal_type.to_owned(),
            canonical: kind.label().to_owned(),
        });
    }
    let address = parse_address("withdrawal_address", withdrawal_address)?;
    let credentials = WithdrawalCredentials::for_address(kind, address).ok_or_else(|| {
        DefinitionError::WithdrawalType {
            value: withdrawal_type.to_owned(),
            reason: "0x00 withdrawal credentials are never generated".to_owned(),
        }
    })?;
    let amounts: Vec<Gwei> = amounts_gwei.iter().copied().map(Gwei).collect();
    amount::check_deposits(&amounts, kind).map_err(DefinitionError::Amounts)?;
    let mut distinct = amounts_gwei.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != amounts_gwei.len() {
        return Err(DefinitionError::RepeatedAmount);
    }
    Ok((credentials, amounts))
}

/// A split's validator keys: one per validator, each a valid BLS public
/// key, no two the same.
fn check_validator_keys(
    keys: &[Bytes<48>],
    validators: u64,
) -> Result<Vec<Bytes<48>>, DefinitionError> {
    if keys.len() as u64 != validators {
        return Err(DefinitionError::ValidatorKeys {
            got: keys.len(),
            expected: validators,
        });
    }
    let mut seen: HashMap<[u8; 48], usize> = HashMap::new();
    for (index, key) in keys.iter().enumerate() {
        crate::crypto::PublicKey::from_bytes(&key.0)
            .map_err(|reason| DefinitionError::ValidatorKey { index, reason })?;
        if let Some(&first) = seen.get(&key.0) {
            return Err(DefinitionError::RepeatedValidatorKey {
                first,
                second: index,
            });
        }
        seen.insert(key.0, index);
    }
    Ok(keys.to_vec())
}

impl ClusterDefinition {
    /// Builds a definition: canonical forms, default threshold, hash; then
    /// validates it.
    ///
    /// # Errors
    ///
    /// [`DefinitionError`] naming the field (and operator) at fault.
    pub fn create(new: NewDefinition) -> Result<Self, DefinitionError> {
        let (operators, threshold) = Self::ordered(new.operators, new.threshold, new.ssv.is_some());
        Self::finish(Self {
            version: DEFINITION_VERSION,
            kind: CeremonyKind::Dkg,
            name: new.name,
            operators,
            dealer: None,
            dealers: None,
            threshold,
            validators: new.validators,
            validator_keys: None,
            validator_indices: None,
            network: new.network.to_string(),
            withdrawal_type: Some(new.withdrawal_kind.label().to_owned()),
            withdrawal_address: Some(new.withdrawal_address.to_checksum()),
            fee_recipient: new.fee_recipient.map(|a| a.to_checksum()),
            amounts_gwei: Some(new.amounts.iter().map(|a| a.0).collect()),
            ssv: new.ssv.map(ssv::NewSsv::to_cluster),
            previous_lock: None,
            definition_hash: Bytes([0; 32]),
        })
    }

    /// Builds a split's definition, as [`ClusterDefinition::create`] does a
    /// DKG's.
    ///
    /// # Errors
    ///
    /// [`DefinitionError`] naming the field (and operator) at fault.
    pub fn create_split(new: NewSplit) -> Result<Self, DefinitionError> {
        let (operators, threshold) = Self::ordered(new.operators, new.threshold, new.ssv.is_some());
        Self::finish(Self {
            version: DEFINITION_VERSION,
            kind: CeremonyKind::Split,
            name: new.name,
            operators,
            dealer: Some(new.dealer),
            dealers: None,
            threshold,
            validators: u64::try_from(new.validator_keys.len()).unwrap_or(u64::MAX),
            validator_keys: Some(new.validator_keys),
            validator_indices: None,
            network: new.network.to_string(),
            withdrawal_type: None,
            withdrawal_address: None,
            fee_recipient: new.fee_recipient.map(|a| a.to_checksum()),
            amounts_gwei: None,
            ssv: new.ssv.map(ssv::NewSsv::to_cluster),
            previous_lock: None,
            definition_hash: Bytes([0; 32]),
        })
    }

    /// Builds a reshare's definition, as [`ClusterDefinition::create`] does
    /// a DKG's.
    ///
    /// # Errors
    ///
    /// [`DefinitionError`] naming the field (and operator) at fault.
    pub fn create_reshare(new: NewReshare) -> Result<Self, DefinitionError> {
        let (operators, threshold) = Self::ordered(new.operators, new.threshold, new.ssv.is_some());
        let previous = new.previous_lock;
        let validators = match &new.validator_indices {
            Some(list) => u64::try_from(list.len()).unwrap_or(u64::MAX),
            None => u64::try_from(previous.validators.len()).unwrap_or(u64::MAX),
        };
        Self::finish(Self {
            version: DEFINITION_VERSION,
            kind: CeremonyKind::Reshare,
            name: new.name,
            operators,
            dealer: None,
            dealers: Some(new.dealers),
            threshold,
            validators,
            validator_keys: None,
            validator_indices: new.validator_indices,
            network: previous.definition.network.clone(),
            withdrawal_type: None,
            withdrawal_address: None,
            fee_recipient: previous.definition.fee_recipient.clone(),
            amounts_gwei: None,
            ssv: new.ssv.map(ssv::NewSsv::to_cluster),
            previous_lock: Some(Box::new(previous)),
            definition_hash: Bytes([0; 32]),
        })
    }

    /// The operators in their order (an SSV cluster's sorted by SSV id) and
    /// the threshold (the default when none is given: SSV's, or
    /// [`Params::default_threshold`]).
    fn ordered(
        mut records: Vec<OperatorRecord>,
        threshold: Option<u64>,
        ssv: bool,
    ) -> (Vec<OperatorRecord>, u64) {
        let count = records.len();
        let default = if ssv {
            // SSV's slot order; a record without an id is refused by
            // validation, wherever it sorts.
            records.sort_by_key(|r| r.ssv.as_ref().map(|s| s.operator_id));
            crate::ssv::threshold_for(count).map_or(0, |t| t as u64)
        } else {
            Params::default_threshold(u64::try_from(count).unwrap_or(u64::MAX))
        };
        (records, threshold.unwrap_or(default))
    }

    /// Hashes and validates a new definition.
    fn finish(mut definition: Self) -> Result<Self, DefinitionError> {
        definition.definition_hash = definition.compute_hash()?;
        definition.validate()?;
        Ok(definition)
    }

    /// Reads, parses and validates a definition file (at most
    /// [`MAX_DEFINITION_FILE_BYTES`]).
    ///
    /// # Errors
    ///
    /// [`DefinitionError::Read`] for an unreadable file, otherwise as
    /// [`ClusterDefinition::from_json`].
    pub fn load(path: &Path) -> Result<Self, DefinitionError> {
        let text = store::read_text(path, MAX_DEFINITION_FILE_BYTES).map_err(|source| {
            DefinitionError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        Self::from_json(&text)
    }

    /// Parses and validates a definition.
    ///
    /// Fields are read one by one so that a refusal names the field serde
    /// would not (a wrong type, a missing field, an unknown one).
    ///
    /// # Errors
    ///
    /// [`DefinitionError`] naming the field (and operator) at fault; a
    /// changed value gives [`DefinitionError::HashMismatch`].
    pub fn from_json(text: &str) -> Result<Self, DefinitionError> {
        let value: Value = serde_json::from_str(text).map_err(DefinitionError::Json)?;
        let Value::Object(mut map) = value else {
            return Err(DefinitionError::NotAnObject);
        };
        match map.get("version") {
            None => return Err(DefinitionError::MissingField { field: "version" }),
            Some(v) if v.as_u64() == Some(DEFINITION_VERSION) => {}
            Some(v) => {
                return Err(DefinitionError::UnsupportedVersion { got: v.to_string() });
            }
        }
        if let Some(field) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(DefinitionError::UnknownField {
                field: field.clone(),
            });
        }
        let operators: Vec<Value> = take_field(&mut map, "operators")?;
        let operators = operators
            .into_iter()
            .enumerate()
            .map(|(position, value)| {
                serde_json::from_value::<OperatorRecord>(value).map_err(|source| {
                    DefinitionError::Operator {
                        index: position + 1,
                        source: RecordError::Malformed(source),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dealer = match map.remove("dealer") {
            None => None,
            Some(value) => Some(serde_json::from_value::<OperatorRecord>(value).map_err(
                |source| DefinitionError::Dealer {
                    source: RecordError::Malformed(source),
                },
            )?),
        };
        let definition = Self {
            version: take_field(&mut map, "version")?,
            kind: take_field(&mut map, "kind")?,
            name: take_field(&mut map, "name")?,
            operators,
            dealer,
            dealers: take_optional(&mut map, "dealers")?,
            threshold: take_field(&mut map, "threshold")?,
            validators: take_field(&mut map, "validators")?,
            validator_keys: take_optional(&mut map, "validator_keys")?,
            validator_indices: take_optional(&mut map, "validator_indices")?,
            network: take_field(&mut map, "network")?,
            withdrawal_type: take_optional(&mut map, "withdrawal_type")?,
            withdrawal_address: take_optional(&mut map, "withdrawal_address")?,
            fee_recipient: take_optional(&mut map, "fee_recipient")?,
            amounts_gwei: take_optional(&mut map, "amounts_gwei")?,
            ssv: take_optional(&mut map, "ssv")?,
            previous_lock: take_optional(&mut map, "previous_lock")?,
            definition_hash: take_field(&mut map, "definition_hash")?,
        };
        // The field-by-field pass above cannot see a key given twice (the
        // JSON map keeps the last); the derived, strict parser refuses it.
        serde_json::from_str::<Self>(text).map_err(DefinitionError::Json)?;
        definition.validate()?;
        Ok(definition)
    }

    /// The definition as pretty JSON with a final newline.
    ///
    /// # Errors
    ///
    /// [`DefinitionError::Json`], a bug.
    pub fn to_json_pretty(&self) -> Result<String, DefinitionError> {
        let mut text = serde_json::to_string_pretty(self).map_err(DefinitionError::Json)?;
        text.push('\n');
        Ok(text)
    }

    /// `SHA-256(DEFINITION_HASH_DOMAIN ‖ compact JSON of every field but
    /// definition_hash)`.
    ///
    /// # Errors
    ///
    /// [`DefinitionError::Json`], a bug.
    pub fn compute_hash(&self) -> Result<Bytes<32>, DefinitionError> {
        let fields = HashedFields {
            version: self.version,
            kind: self.kind,
            name: &self.name,
            operators: &self.operators,
            dealer: self.dealer.as_ref(),
            dealers: self.dealers.as_deref(),
            threshold: self.threshold,
            validators: self.validators,
            validator_keys: self.validator_keys.as_deref(),
            validator_indices: self.validator_indices.as_deref(),
            network: &self.network,
            withdrawal_type: self.withdrawal_type.as_deref(),
            withdrawal_address: self.withdrawal_address.as_deref(),
            fee_recipient: self.fee_recipient.as_deref(),
            amounts_gwei: self.amounts_gwei.as_deref(),
            ssv: self.ssv.as_ref(),
            previous_lock: self.previous_lock.as_deref(),
        };
        let encoded = serde_json::to_vec(&fields).map_err(DefinitionError::Json)?;
        let mut hasher = Sha256::new();
        hasher.update(DEFINITION_HASH_DOMAIN);
        hasher.update(&encoded);
        Ok(Bytes(hasher.finalize().into()))
    }

    /// Checks the version, the hash and every field.
    ///
    /// # Errors
    ///
    /// The first [`DefinitionError`] found, naming the field (and operator).
    pub fn validate(&self) -> Result<ValidDefinition, DefinitionError> {
        if self.version != DEFINITION_VERSION {
            return Err(DefinitionError::UnsupportedVersion {
                got: self.version.to_string(),
            });
        }
        let computed = self.compute_hash()?;
        if computed != self.definition_hash {
            return Err(DefinitionError::HashMismatch {
                stored: self.definition_hash,
                computed,
            });
        }
        if check_name(&self.name).is_err() {
            return Err(DefinitionError::Name(self.name.clone()));
        }

        self.check_kind_fields()?;
        if self.ssv.is_some() {
            ssv::check_size(self)?;
        }
        let operators = u64::try_from(self.operators.len()).unwrap_or(u64::MAX);
        let params = Params::new(operators, self.threshold, self.validators).map_err(|source| {
            DefinitionError::Params {
                field: params_field(&source),
                source,
            }
        })?;

        let mut recipients = Vec::with_capacity(self.operators.len());
        for (position, record) in self.operators.iter().enumerate() {
            let index = position + 1;
            record
                .validate()
                .map_err(|source| DefinitionError::Operator { index, source })?;
            recipients.push(
                record
                    .recipient()
                    .map_err(|source| DefinitionError::Operator { index, source })?,
            );
        }
        if let Some(dealer) = &self.dealer {
            dealer
                .validate()
                .map_err(|source| DefinitionError::Dealer { source })?;
        }
        self.check_duplicates()?;

        let network: Network = self
            .network
            .parse()
            .map_err(|source| DefinitionError::Network { source })?;
        if network.to_string() != self.network {
            return Err(DefinitionError::NonCanonical {
                field: "network",
                given: self.network.clone(),
                canonical: network.to_string(),
            });
        }
        let (credentials, amounts) = match (
            &self.withdrawal_type,
            &self.withdrawal_address,
            &self.amounts_gwei,
        ) {
            (Some(withdrawal_type), Some(withdrawal_address), Some(amounts_gwei)) => {
                let (credentials, amounts) =
                    check_deposits(withdrawal_type, withdrawal_address, amounts_gwei)?;
                (Some(credentials), amounts)
            }
            _ => (None, Vec::new()),
        };
        let fee_recipient = self
            .fee_recipient
            .as_deref()
            .map(|text| parse_address("fee_recipient", text))
            .transpose()?;
        let reshare = match self.kind {
            CeremonyKind::Reshare => Some(reshare::validate(self)?),
            CeremonyKind::Dkg | CeremonyKind::Split => None,
        };
        let validator_keys = match (&self.validator_keys, &reshare) {
            (Some(keys), _) => check_validator_keys(keys, self.validators)?,
            (None, Some(reshare)) => reshare.group_keys(),
            (None, None) => Vec::new(),
        };

        let ssv = self
            .ssv
            .as_ref()
            .map(|cluster| ssv::validate(self, cluster))
            .transpose()?;

        Ok(ValidDefinition {
            kind: self.kind,
            params,
            network,
            credentials,
            amounts,
            fee_recipient,
            roster: self.participants().map(|o| o.identity_key).collect(),
            recipients,
            validator_keys,
            definition_hash: self.definition_hash,
            ssv,
            reshare,
        })
    }

    /// Which fields the kind needs and which it must not have.
    fn check_kind_fields(&self) -> Result<(), DefinitionError> {
        let kind = self.kind;
        let fields: [(&'static str, bool); 8] = [
            ("dealer", self.dealer.is_some()),
            ("dealers", self.dealers.is_some()),
            ("validator_keys", self.validator_keys.is_some()),
            ("validator_indices", self.validator_indices.is_some()),
            ("withdrawal_type", self.withdrawal_type.is_some()),
            ("withdrawal_address", self.withdrawal_address.is_some()),
            ("amounts_gwei", self.amounts_gwei.is_some()),
            ("previous_lock", self.previous_lock.is_some()),
        ];
        let (needed, optional): (&[&str], &[&str]) = match kind {
            CeremonyKind::Dkg => (
                &["withdrawal_type", "withdrawal_address", "amounts_gwei"],
                &[],
            ),
            CeremonyKind::Split => (&["dealer", "validator_keys"], &[]),
            CeremonyKind::Reshare => (&["previous_lock", "dealers"], &["validator_indices"]),
        };
        for (field, present) in fields {
            let wanted = needed.contains(&field);
            if wanted != present && !(optional.contains(&field) && present) {
                return Err(DefinitionError::KindField {
                    kind,
                    field,
                    present,
                });
            }
        }
        Ok(())
    }

    /// Every participant in slot order: the operators, then a split's
    /// dealer.
    pub fn participants(&self) -> impl Iterator<Item = &OperatorRecord> {
        self.operators
            .iter()
            .chain(self.dealer.as_ref())
            .chain(reshare::departing_dealers(self))
    }

    fn check_duplicates(&self) -> Result<(), DefinitionError> {
        type Key = fn(&OperatorRecord) -> String;
        let keys: [(&'static str, Key); 4] = [
            ("identity_key", |o| o.identity_key.to_string()),
            ("name", |o| o.name.clone()),
            // Host names are case-insensitive.
            ("address", |o| o.address.to_ascii_lowercase()),
            ("age_recipient", |o| o.age_recipient.clone()),
        ];
        let n = self.operators.len();
        for (field, key) in keys {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for (position, record) in self.participants().enumerate() {
                let value = key(record);
                if let Some(&first) = seen.get(&value) {
                    if position >= n {
                        return Err(DefinitionError::DealerIsOperator {
                            field,
                            operator: first,
                            value,
                        });
                    }
                    return Err(DefinitionError::DuplicateOperator {
                        field,
                        first,
                        second: position + 1,
                        value,
                    });
                }
                seen.insert(value, position + 1);
            }
        }
        Ok(())
    }

    /// Validates the definition and returns the protocol's view of it.
    ///
    /// # Errors
    ///
    /// As [`ClusterDefinition::validate`].
    pub fn to_context(&self) -> Result<Context, DefinitionError> {
        self.validate()?
            .context()
            .map_err(|source| DefinitionError::Plan { source })
    }

    /// The index of the operator (a holder of shares) with identity key
    /// `key`.
    pub fn operator_index(&self, key: &IdentityPublicKey) -> Option<OperatorId> {
        self.operators
            .iter()
            .position(|o| &o.identity_key == key)
            .and_then(|position| OperatorId::from_position(position).ok())
    }

    /// The slot of the participant (an operator, or a split's dealer) with
    /// identity key `key`.
    pub fn participant_index(&self, key: &IdentityPublicKey) -> Option<OperatorId> {
        self.participants()
            .position(|o| &o.identity_key == key)
            .and_then(|position| OperatorId::from_position(position).ok())
    }
}

#[cfg(test)]
mod tests;
