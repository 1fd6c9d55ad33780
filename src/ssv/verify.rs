//! Checking a `keyshares.json`: ours, or one written by ssv-dkg or ssv-keys.
//!
//! [`verify_keyshares`] reads the file field by field and returns one
//! [`Check`] per property, each with a [`Problem`] naming the entry and the
//! field when it fails. The properties are what SSV's own tools and nodes
//! check, plus what can be checked with no chain access:
//!
//! | property | who else checks it |
//! |---|---|
//! | layout, `version`, `createdAt` | ssv-keys `KeyShares.fromJson`, the SDK (v1.1.0 or v1.2.0), ssv-dkg `ValidateKeysharesCLI` |
//! | field types of each entry | ssv-keys/SDK class validators (`ownerNonce` a number, `publicKey` 98 characters) |
//! | operator ids: ≥ 1, ascending, equal in `data` and `payload`, n ∈ {4, 7, 10, 13} | SSV node `validateOperators`, SDK `validateConsistentOperatorIds`, ssv-dkg |
//! | operator keys: base64 of an RSA-2048 PEM, distinct | SDK `OperatorPublicKeyValidator`, ssv-keys operator-unique |
//! | validator public key: valid, the same in `data` and `payload` | ssv-dkg `ValidateKeysharesCLI` steps 4 and 6, SDK `PublicKeyValidator` |
//! | `sharesData` length `96 + 304·n` | SSV node `handleValidatorAdded`, ssv-dkg |
//! | share public keys: valid G1 points | SSV node (`DeserializeBLSPublicKey` when it uses them), ssv-dkg |
//! | share public keys interpolate, at the ids, to the validator key on a polynomial of degree `t − 1` | ssv-dkg `VerifyValidatorAtSharesData` (with all n) |
//! | ciphertexts below their operator's RSA modulus | SSV node (Go's `DecryptPKCS1v15` refuses them) |
//! | `ownerAddress` is the given owner | ssv-dkg `ValidateKeysharesCLI` step 2 |
//! | ownership signature for the owner and nonce `first + index` | SSV node `verifySignature`, ssv-keys `validateSingleShares`, SDK |
//! | nonces `first, first + 1, …` | SSV node (its own nonce count), SDK `validateSharesPreRegistration` |
//! | distinct validators, one cluster for all entries | SDK `ensureValidatorsUniqueness`, `validateConsistentOperatorIds` |
//! | with a private key: that operator's slot decrypts to its share | SSV node `validatorAddedEventToShare` (now `ekm`) |
//!
//! An all-lowercase `ownerAddress` passes: ssv-keys' own test file has one,
//! and ssv-keys, the SDK and ssv-dkg all checksum or compare the address
//! case-insensitively before use. What matters is that the signature was
//! made over the EIP-55 form, which the signature check enforces (and, when
//! it fails, tells apart a signer that did not checksum).
//!
//! A swap of two operators' ciphertexts leaves every public property intact
//! (unless a ciphertext then exceeds the other key's modulus): only the
//! operators can see it, each on its own slot, which is what
//! `--ssv-operator-private-key` is for.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::group::{G1Point, g1_from_projective, g1_msm};
use crate::crypto::{BlsError, PublicKey, Scalar, Signature};
use crate::eth::ExecutionAddress;
use crate::eth::credentials::AddressError;
use crate::hexfmt::{self, HexError, Prefix};

use super::created_at::{CreatedAt, CreatedAtError};
use super::operator_key::{
    OperatorKey, OperatorKeyError, OperatorPrivateKey, PlaintextForm, SlotError,
};
use super::ownership::{message_for_text, ownership_message};
use super::shares_data::{SharesData, SharesDataError};
use super::{CLUSTER_SIZES, threshold_for};

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The file as a whole.
    File,
    /// `shares[i]`.
    Entry(usize),
}

/// The property a check checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Property {
    /// The top-level object: `version`, `createdAt`, a non-empty `shares`.
    Layout,
    /// `version` is one SSV's tools read.
    Version,
    /// `createdAt` is an RFC 3339 timestamp.
    CreatedAt,
    /// Every field of an entry is there with its type.
    EntryFields,
    /// Operator ids: valid, ascending, the same in `data` and `payload`.
    OperatorIds,
    /// Operator keys: RSA-2048, distinct.
    OperatorKeys,
    /// The validator public key: valid, the same in `data` and `payload`.
    ValidatorPublicKey,
    /// `sharesData` is `96 + 304·n` bytes.
    SharesDataLength,
    /// Every share public key is a valid G1 point.
    SharePublicKeys,
    /// The share public keys are shares of the validator key.
    ShareInterpolation,
    /// Every ciphertext can be a ciphertext of its operator's key.
    Ciphertexts,
    /// `ownerAddress` is the owner.
    OwnerAddress,
    /// The ownership signature verifies.
    OwnershipSignature,
    /// The given private key's slot decrypts to its share.
    OwnSlot,
    /// `ownerNonce` counts up from the first nonce.
    NonceSequence,
    /// No validator appears twice.
    DistinctValidators,
    /// Every entry has the same operators.
    SameOperators,
}

impl Property {
    /// How the property is named in a report line.
    pub fn label(self) -> &'static str {
        match self {
            Self::Layout => "layout",
            Self::Version => "version",
            Self::CreatedAt => "createdAt",
            Self::EntryFields => "field types",
            Self::OperatorIds => "operator ids",
            Self::OperatorKeys => "operator keys",
            Self::ValidatorPublicKey => "validator public key",
            Self::SharesDataLength => "sharesData length",
            Self::SharePublicKeys => "share public keys",
            Self::ShareInterpolation => "share public keys interpolate to the validator key",
            Self::Ciphertexts => "ciphertexts fit their operator keys",
            Self::OwnerAddress => "ownerAddress",
            Self::OwnershipSignature => "ownership signature",
            Self::OwnSlot => "own slot decrypts to its share",
            Self::NonceSequence => "nonce sequence",
            Self::DistinctValidators => "distinct validators",
            Self::SameOperators => "same operators in every entry",
        }
    }
}

/// One finding: the subject, the property, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The file or one entry.
    pub subject: Subject,
    /// What was checked.
    pub property: Property,
    /// What was found: a description when the property holds, the
    /// [`Problem`] otherwise.
    pub outcome: Result<String, Problem>,
}

impl Check {
    /// Whether the property holds.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The report name, e.g. `shares[0]: ownership signature`.
    pub fn name(&self) -> String {
        match self.subject {
            Subject::File => self.property.label().to_owned(),
            Subject::Entry(i) => format!("shares[{i}]: {}", self.property.label()),
        }
    }

    /// What was found, in words.
    pub fn detail(&self) -> String {
        match &self.outcome {
            Ok(detail) => detail.clone(),
            Err(problem) => problem.to_string(),
        }
    }

    /// The JSON path of the field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        self.outcome.as_ref().err().and_then(Problem::field)
    }

    fn new(subject: Subject, property: Property, outcome: Result<String, Problem>) -> Self {
        Self {
            subject,
            property,
            outcome,
        }
    }
}

impl Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Line<'a> {
            check: String,
            ok: bool,
            detail: String,
            property: Property,
            #[serde(skip_serializing_if = "Option::is_none")]
            entry: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
        Line {
            check: self.name(),
            ok: self.ok(),
            detail: self.detail(),
            property: self.property,
            entry: match self.subject {
                Subject::File => None,
                Subject::Entry(i) => Some(i),
            },
            field: self.field(),
        }
        .serialize(serializer)
    }
}

/// A signature that failed, and what it does verify for, if anything
/// nearby: the usual mistakes of a signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// It verifies over the all-lowercase owner: the signer did not apply
    /// EIP-55.
    LowercaseOwner,
    /// It verifies for the entry's own `ownerNonce`, which is not the
    /// expected nonce.
    FileNonce(u64),
    /// It verifies for the entry's `ownerAddress`, which is another owner.
    FileOwner(String),
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LowercaseOwner => f.write_str(
                "; it verifies over the all-lowercase address instead: the signer did not write the owner in EIP-55, and SSV nodes will refuse it",
            ),
            Self::FileNonce(nonce) => {
                write!(f, "; it verifies for the entry's ownerNonce {nonce} instead")
            }
            Self::FileOwner(owner) => {
                write!(f, "; it verifies for the entry's ownerAddress {owner} instead")
            }
        }
    }
}

fn diagnosis_suffix(diagnosis: &Option<Diagnosis>) -> String {
    diagnosis
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Why a property does not hold, naming the field (a JSON path such as
/// `shares[1].data.ownerNonce`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The text is not JSON.
    #[error("not JSON: {reason}")]
    NotJson {
        /// The parser's report.
        reason: String,
    },
    /// A field is missing.
    #[error("{field} is missing")]
    Missing {
        /// The field.
        field: String,
    },
    /// A field of the wrong JSON type.
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A field the format does not have.
    #[error("{field} is not a field of a keyshares file")]
    Unknown {
        /// The field.
        field: String,
    },
    /// An empty `shares`.
    #[error("{field} is empty: a keyshares file holds at least one validator")]
    Empty {
        /// The field.
        field: String,
    },
    /// Several problems of one check.
    #[error("{}", join(.problems))]
    Several {
        /// The problems, in file order.
        problems: Vec<Problem>,
    },
    /// A `version` no SSV tool reads.
    #[error(
        "version {found:?} is read by no SSV tool: ssv-keys 1.1 reads v1.1.x and the SDK v1.1.0 or v1.2.0"
    )]
    Version {
        /// The version found.
        found: String,
    },
    /// A bad `createdAt`.
    #[error("createdAt: {source}")]
    CreatedAt {
        /// Why.
        #[source]
        source: CreatedAtError,
    },
    /// Bad hex.
    #[error("{field}: {source}")]
    Hex {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: HexError,
    },
    /// An `ownerAddress` that is no address.
    #[error("{field}: {source}")]
    Address {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: AddressError,
    },
    /// An `ownerAddress` of someone else.
    #[error("{field} is {found}, but the owner is {expected}")]
    OwnerMismatch {
        /// The field.
        field: String,
        /// The address in the file (EIP-55).
        found: String,
        /// The given owner (EIP-55).
        expected: String,
    },
    /// A cluster size SSV refuses.
    #[error("{field} lists {count} operators; SSV clusters have 4, 7, 10 or 13")]
    ClusterSize {
        /// The field.
        field: String,
        /// Operators listed.
        count: usize,
    },
    /// Operator id 0.
    #[error("{field} is 0; SSV operator ids start at 1")]
    ZeroId {
        /// The field.
        field: String,
    },
    /// Ids out of order or repeated.
    #[error("{field} is {id} after {previous}: operator ids must be strictly ascending")]
    NotAscending {
        /// The field.
        field: String,
        /// The id before.
        previous: u64,
        /// The id out of place.
        id: u64,
    },
    /// `data.operators` and `payload.operatorIds` disagree.
    #[error("{field} is {payload:?}, but data.operators has ids {data:?}")]
    IdsDiffer {
        /// The field (`payload.operatorIds`).
        field: String,
        /// Ids in `data.operators`.
        data: Vec<u64>,
        /// `payload.operatorIds`.
        payload: Vec<u64>,
    },
    /// An unusable operator key.
    #[error("{field} (operator {operator}): {source}")]
    OperatorKey {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
        /// Why.
        #[source]
        source: OperatorKeyError,
    },
    /// One key for two operators.
    #[error("{field} (operator {operator}) is the key of operator {first} as well")]
    DuplicateKey {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
        /// The operator with the same key before it.
        first: u64,
    },
    /// A validator public key that is no valid G1 point.
    #[error("{field}: not a valid BLS public key: {source}")]
    ValidatorKey {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: BlsError,
    },
    /// `data.publicKey` and `payload.publicKey` differ.
    #[error("{field} is {payload}, but data.publicKey is {data}")]
    PublicKeysDiffer {
        /// The field (`payload.publicKey`).
        field: String,
        /// `data.publicKey`.
        data: String,
        /// `payload.publicKey`.
        payload: String,
    },
    /// A bad `sharesData` length.
    #[error("{field}: {source}")]
    SharesData {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: SharesDataError,
    },
    /// A share public key that is no valid G1 point.
    #[error(
        "{field}: the share public key of operator {operator} is not a valid BLS public key: {source}"
    )]
    SharePublicKey {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
        /// Why.
        #[source]
        source: BlsError,
    },
    /// One share public key off the polynomial of the others.
    #[error(
        "{field}: the share public key of operator {operator} is not a share of the validator key (the other {others} interpolate to it, this one does not)"
    )]
    ShareNotOnPolynomial {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
        /// How many others agree.
        others: usize,
    },
    /// Share public keys that are not shares of the validator key.
    #[error(
        "{field}: the share public keys do not interpolate, at the operator ids, to the validator public key on a polynomial of degree {degree}"
    )]
    SharesInconsistent {
        /// The field.
        field: String,
        /// `t − 1`.
        degree: usize,
    },
    /// A ciphertext no PKCS#1 v1.5 decryption under the key accepts.
    #[error(
        "{field}: the ciphertext of operator {operator} is not below its key's modulus, so it cannot be an encryption under that key"
    )]
    CiphertextTooLarge {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
    },
    /// A signature that is no valid G2 point.
    #[error("{field}: the ownership signature is not a valid BLS signature: {source}")]
    SignatureEncoding {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: BlsError,
    },
    /// A signature that does not verify.
    #[error(
        "{field}: the ownership signature (its first 96 bytes) does not verify under the validator key for owner {owner} and nonce {nonce}{}",
        diagnosis_suffix(.diagnosis)
    )]
    SignatureInvalid {
        /// The field.
        field: String,
        /// The owner, EIP-55.
        owner: String,
        /// The nonce expected.
        nonce: u64,
        /// What it verifies for instead, if anything nearby.
        diagnosis: Option<Diagnosis>,
    },
    /// An `ownerNonce` out of sequence.
    #[error("{field} is {found}, expected {expected} (first nonce {first} + entry {index})")]
    Nonce {
        /// The field.
        field: String,
        /// The nonce found.
        found: u64,
        /// The nonce expected.
        expected: u64,
        /// The first nonce.
        first: u64,
        /// The entry.
        index: usize,
    },
    /// A validator registered twice in one file.
    #[error("{field} is the validator of shares[{first}] as well")]
    DuplicateValidator {
        /// The field.
        field: String,
        /// The earlier entry.
        first: usize,
    },
    /// An entry with other operators than the first.
    #[error("{field} are not the operators of shares[0]: one file registers one cluster")]
    OperatorsDiffer {
        /// The field.
        field: String,
    },
    /// The private key is no operator's.
    #[error("{field}: the private key belongs to none of these operators")]
    NoSlot {
        /// The field.
        field: String,
    },
    /// The slot did not decrypt to a share.
    #[error("{field}: operator {operator}'s slot: {source}")]
    Slot {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
        /// Why.
        #[source]
        source: SlotError,
    },
    /// The slot decrypts to another share than the slot's public key.
    #[error(
        "{field}: operator {operator}'s slot decrypts to a share whose public key is {derived}, but the slot's share public key is {expected}"
    )]
    SlotMismatch {
        /// The field.
        field: String,
        /// The operator.
        operator: u64,
        /// The public key of the decrypted share.
        derived: String,
        /// The share public key in `sharesData`.
        expected: String,
    },
}

impl Problem {
    /// The JSON path of the field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Missing { field }
            | Self::WrongType { field, .. }
            | Self::Unknown { field }
            | Self::Empty { field }
            | Self::Hex { field, .. }
            | Self::Address { field, .. }
            | Self::OwnerMismatch { field, .. }
            | Self::ClusterSize { field, .. }
            | Self::ZeroId { field }
            | Self::NotAscending { field, .. }
            | Self::IdsDiffer { field, .. }
            | Self::OperatorKey { field, .. }
            | Self::DuplicateKey { field, .. }
            | Self::ValidatorKey { field, .. }
            | Self::PublicKeysDiffer { field, .. }
            | Self::SharesData { field, .. }
            | Self::SharePublicKey { field, .. }
            | Self::ShareNotOnPolynomial { field, .. }
            | Self::SharesInconsistent { field, .. }
            | Self::CiphertextTooLarge { field, .. }
            | Self::SignatureEncoding { field, .. }
            | Self::SignatureInvalid { field, .. }
            | Self::Nonce { field, .. }
            | Self::DuplicateValidator { field, .. }
            | Self::OperatorsDiffer { field }
            | Self::NoSlot { field }
            | Self::Slot { field, .. }
            | Self::SlotMismatch { field, .. } => Some(field),
            Self::Several { problems } => problems.first().and_then(Problem::field),
            Self::CreatedAt { .. } => Some("createdAt"),
            Self::Version { .. } => Some("version"),
            Self::NotJson { .. } => None,
        }
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks a keyshares file for `owner`, whose first validator uses nonce
/// `first_nonce` (entry `i` uses `first_nonce + i`). With `private_key`,
/// also decrypts that operator's slot of every entry.
///
/// Never fails: every problem, including text that is not JSON, is a
/// failed [`Check`].
pub fn verify_keyshares(
    text: &str,
    owner: &ExecutionAddress,
    first_nonce: u64,
    private_key: Option<&OperatorPrivateKey>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let root: Value = match serde_json::from_str(text) {
        Ok(root) => root,
        Err(err) => {
            checks.push(Check::new(
                Subject::File,
                Property::Layout,
                Err(Problem::NotJson {
                    reason: crate::store::describe_json_error(&err),
                }),
            ));
            return checks;
        }
    };
    let Some(entries) = check_file(&root, &mut checks) else {
        return checks;
    };
    let mut parsed: Vec<Option<EntryOutcome>> = Vec::with_capacity(entries.len());
    for (index, value) in entries.iter().enumerate() {
        parsed.push(check_entry(
            value,
            index,
            owner,
            first_nonce,
            private_key,
            &mut checks,
        ));
    }
    check_across(&parsed, first_nonce, &mut checks);
    checks
}

/// The top level; returns the entries when there are any to check.
fn check_file<'v>(root: &'v Value, checks: &mut Vec<Check>) -> Option<&'v Vec<Value>> {
    let Some(object) = root.as_object() else {
        checks.push(Check::new(
            Subject::File,
            Property::Layout,
            Err(Problem::WrongType {
                field: "(top level)".into(),
                expected: "an object",
                found: kind(root),
            }),
        ));
        return None;
    };
    let mut problems = unknown_fields(object, "", &["version", "createdAt", "shares"]);
    let entries = match object.get("shares") {
        None => {
            problems.push(Problem::Missing {
                field: "shares".into(),
            });
            None
        }
        Some(Value::Array(entries)) if entries.is_empty() => {
            problems.push(Problem::Empty {
                field: "shares".into(),
            });
            None
        }
        Some(Value::Array(entries)) => Some(entries),
        Some(other) => {
            problems.push(Problem::WrongType {
                field: "shares".into(),
                expected: "an array",
                found: kind(other),
            });
            None
        }
    };
    let version = string_field(object, "version", "version", &mut problems);
    let created_at = string_field(object, "createdAt", "createdAt", &mut problems);
    checks.push(Check::new(
        Subject::File,
        Property::Layout,
        several(problems).map(|()| {
            let n = entries.map_or(0, Vec::len);
            format!(
                "version, createdAt and {n} share entr{}",
                if n == 1 { "y" } else { "ies" }
            )
        }),
    ));
    if let Some(version) = version {
        checks.push(Check::new(
            Subject::File,
            Property::Version,
            check_version(version),
        ));
    }
    if let Some(created_at) = created_at {
        checks.push(Check::new(
            Subject::File,
            Property::CreatedAt,
            CreatedAt::parse(created_at)
                .map(|c| format!("{c}"))
                .map_err(|source| Problem::CreatedAt { source }),
        ));
    }
    entries
}

fn check_version(version: &str) -> Result<String, Problem> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let parts: Vec<Option<u64>> = bare.split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(1), Some(1), Some(0)] => Ok(format!(
            "{version}: read by ssv-keys 1.1 (v1.1.x) and the SSV SDK (v1.1.0, v1.2.0); dvkg writes it"
        )),
        [Some(1), Some(1), Some(_)] => Ok(format!(
            "{version}: read by ssv-keys 1.1 (v1.1.x), not by the SSV SDK (v1.1.0, v1.2.0 only)"
        )),
        [Some(1), Some(2), Some(0)] => Ok(format!(
            "{version}: read by the SSV SDK (v1.1.0, v1.2.0), not by ssv-keys 1.1 (v1.1.x only)"
        )),
        _ => Err(Problem::Version {
            found: version.to_owned(),
        }),
    }
}

/// An entry's fields, typed.
struct Entry<'v> {
    owner_nonce: u64,
    owner_address: &'v str,
    data_public_key: &'v str,
    operators: Vec<(u64, &'v str)>,
    payload_public_key: &'v str,
    operator_ids: Vec<u64>,
    shares_data: &'v str,
}

/// What the cross-entry checks need of an entry.
struct EntryOutcome {
    nonce: u64,
    validator: Option<[u8; 48]>,
    operators: Vec<(u64, String)>,
}

fn check_entry(
    value: &Value,
    index: usize,
    owner: &ExecutionAddress,
    first_nonce: u64,
    private_key: Option<&OperatorPrivateKey>,
    checks: &mut Vec<Check>,
) -> Option<EntryOutcome> {
    let subject = Subject::Entry(index);
    let at = |field: &str| format!("shares[{index}].{field}");
    let mut push = |property: Property, outcome: Result<String, Problem>| {
        checks.push(Check::new(subject, property, outcome));
    };

    let entry = match parse_entry(value, index) {
        Ok(entry) => {
            push(
                Property::EntryFields,
                Ok("data (ownerNonce, ownerAddress, publicKey, operators) and payload (publicKey, operatorIds, sharesData) have their types".into()),
            );
            entry
        }
        Err(problems) => {
            push(Property::EntryFields, Err(Problem::Several { problems }));
            return None;
        }
    };
    let outcome = EntryOutcome {
        nonce: entry.owner_nonce,
        validator: None,
        operators: entry
            .operators
            .iter()
            .map(|(id, key)| (*id, (*key).to_owned()))
            .collect(),
    };

    // Operator ids.
    let ids = &entry.operator_ids;
    let ids_result = check_ids(&entry, index);
    let ids_ok = ids_result.is_ok();
    push(Property::OperatorIds, ids_result);

    // Operator keys.
    let mut keys: Vec<Option<OperatorKey>> = Vec::with_capacity(entry.operators.len());
    let mut key_problems = Vec::new();
    for (j, (id, text)) in entry.operators.iter().enumerate() {
        let field = at(&format!("data.operators[{j}].operatorKey"));
        match OperatorKey::from_registered(text) {
            Ok(key) => {
                if let Some(first) =
                    keys.iter()
                        .zip(&entry.operators)
                        .find_map(|(k, (other, _))| {
                            k.as_ref().filter(|k| k.same_key(&key)).map(|_| *other)
                        })
                {
                    key_problems.push(Problem::DuplicateKey {
                        field,
                        operator: *id,
                        first,
                    });
                }
                keys.push(Some(key));
            }
            Err(source) => {
                key_problems.push(Problem::OperatorKey {
                    field,
                    operator: *id,
                    source,
                });
                keys.push(None);
            }
        }
    }
    let non_canonical = keys.iter().flatten().filter(|k| !k.is_canonical()).count();
    push(
        Property::OperatorKeys,
        several(key_problems).map(|()| {
            let mut detail = format!(
                "{} distinct RSA-2048 keys (base64 of a PEM \"RSA PUBLIC KEY\")",
                keys.len()
            );
            if non_canonical > 0 {
                detail.push_str(&format!(
                    "; {non_canonical} not in the encoding SSV's tools write, kept verbatim"
                ));
            }
            detail
        }),
    );

    // The validator public key.
    let validator = check_validator_key(&entry, index);
    let validator_key = validator.as_ref().ok().copied();
    push(
        Property::ValidatorPublicKey,
        validator.map(|key| format!("0x{}, the same in data and payload", key.to_hex())),
    );

    // sharesData.
    let shares_data =
        SharesData::from_hex(entry.shares_data, ids.len()).map_err(|source| Problem::SharesData {
            field: at("payload.sharesData"),
            source,
        });
    push(
        Property::SharesDataLength,
        shares_data
            .as_ref()
            .map(|_| {
                format!(
                    "{} bytes = 96 + 304·{}",
                    SharesData::expected_len(ids.len()),
                    ids.len()
                )
            })
            .map_err(Clone::clone),
    );
    let Ok(shares_data) = shares_data else {
        push_owner_and_signature(
            &entry,
            index,
            owner,
            first_nonce,
            None,
            validator_key.as_ref(),
            &mut push,
        );
        return Some(EntryOutcome {
            validator: validator_key.map(|k| k.to_bytes()),
            ..outcome
        });
    };

    // Share public keys.
    let mut share_keys: Vec<Option<PublicKey>> = Vec::with_capacity(ids.len());
    let mut share_problems = Vec::new();
    for (bytes, &id) in shares_data.share_public_keys().iter().zip(ids) {
        match PublicKey::from_bytes(bytes) {
            Ok(key) => share_keys.push(Some(key)),
            Err(source) => {
                share_problems.push(Problem::SharePublicKey {
                    field: at("payload.sharesData"),
                    operator: id,
                    source,
                });
                share_keys.push(None);
            }
        }
    }
    let share_keys_ok = share_problems.is_empty();
    push(
        Property::SharePublicKeys,
        several(share_problems).map(|()| format!("{} valid G1 points", share_keys.len())),
    );

    // The share public keys are shares of the validator key.
    if let (true, true, Some(validator), Some(threshold)) = (
        ids_ok,
        share_keys_ok,
        validator_key.as_ref(),
        threshold_for(ids.len()),
    ) {
        let points: Vec<G1Point> = share_keys
            .iter()
            .flatten()
            .filter_map(|k| G1Point::from_bytes(&k.to_bytes()).ok())
            .collect();
        push(
            Property::ShareInterpolation,
            check_interpolation(
                ids,
                &points,
                validator,
                threshold,
                &at("payload.sharesData"),
            ),
        );
    }

    // Ciphertexts below their moduli.
    if keys.len() == shares_data.ciphertexts().len() {
        let too_large: Vec<Problem> = keys
            .iter()
            .zip(shares_data.ciphertexts())
            .zip(ids)
            .filter_map(|((key, ciphertext), &id)| {
                key.as_ref()
                    .filter(|k| !k.fits(ciphertext))
                    .map(|_| Problem::CiphertextTooLarge {
                        field: at("payload.sharesData"),
                        operator: id,
                    })
            })
            .collect();
        push(
            Property::Ciphertexts,
            several(too_large).map(|()| {
                format!(
                    "{} ciphertexts of 256 bytes, each below its operator's RSA modulus",
                    shares_data.ciphertexts().len()
                )
            }),
        );
    }

    push_owner_and_signature(
        &entry,
        index,
        owner,
        first_nonce,
        Some(&shares_data),
        validator_key.as_ref(),
        &mut push,
    );

    // One's own slot.
    if let Some(private) = private_key {
        push(
            Property::OwnSlot,
            check_own_slot(private, &keys, ids, &shares_data, &at("payload.sharesData")),
        );
    }

    Some(EntryOutcome {
        validator: validator_key.map(|k| k.to_bytes()),
        ..outcome
    })
}

fn push_owner_and_signature(
    entry: &Entry<'_>,
    index: usize,
    owner: &ExecutionAddress,
    first_nonce: u64,
    shares_data: Option<&SharesData>,
    validator: Option<&PublicKey>,
    push: &mut impl FnMut(Property, Result<String, Problem>),
) {
    let field = format!("shares[{index}].data.ownerAddress");
    let file_owner = entry.owner_address.parse::<ExecutionAddress>();
    push(
        Property::OwnerAddress,
        match &file_owner {
            Err(source) => Err(Problem::Address {
                field,
                source: source.clone(),
            }),
            Ok(found) if found != owner => Err(Problem::OwnerMismatch {
                field,
                found: found.to_checksum(),
                expected: owner.to_checksum(),
            }),
            Ok(_) if entry.owner_address == owner.to_checksum() => {
                Ok(format!("{}, EIP-55", entry.owner_address))
            }
            Ok(_) => Ok(format!(
                "{} is the owner, not in EIP-55 (dvkg and ssv-dkg write {}; ssv-keys, the SDK and ssv-dkg read any case)",
                entry.owner_address,
                owner.to_checksum()
            )),
        },
    );
    let (Some(shares_data), Some(validator)) = (shares_data, validator) else {
        return;
    };
    let nonce = first_nonce.saturating_add(index as u64);
    let field = format!("shares[{index}].payload.sharesData");
    let outcome = match Signature::from_bytes(shares_data.signature_bytes()) {
        Err(source) => Err(Problem::SignatureEncoding { field, source }),
        Ok(signature) if signature.verify(validator, &ownership_message(owner, nonce)) => {
            Ok(format!(
                "the validator key signed keccak256(\"{}:{nonce}\")",
                owner.to_checksum()
            ))
        }
        Ok(signature) => {
            let lowercase = format!("0x{}", hex::encode(owner.as_bytes()));
            let diagnosis = if signature.verify(validator, &message_for_text(&lowercase, nonce)) {
                Some(Diagnosis::LowercaseOwner)
            } else if entry.owner_nonce != nonce
                && signature.verify(validator, &ownership_message(owner, entry.owner_nonce))
            {
                Some(Diagnosis::FileNonce(entry.owner_nonce))
            } else {
                file_owner
                    .as_ref()
                    .ok()
                    .filter(|found| {
                        *found != owner
                            && signature.verify(validator, &ownership_message(found, nonce))
                    })
                    .map(|found| Diagnosis::FileOwner(found.to_checksum()))
            };
            Err(Problem::SignatureInvalid {
                field,
                owner: owner.to_checksum(),
                nonce,
                diagnosis,
            })
        }
    };
    push(Property::OwnershipSignature, outcome);
}

fn check_ids(entry: &Entry<'_>, index: usize) -> Result<String, Problem> {
    let field = |f: String| format!("shares[{index}].{f}");
    let data_ids: Vec<u64> = entry.operators.iter().map(|(id, _)| *id).collect();
    let mut problems = Vec::new();
    if data_ids != entry.operator_ids {
        problems.push(Problem::IdsDiffer {
            field: field("payload.operatorIds".into()),
            data: data_ids.clone(),
            payload: entry.operator_ids.clone(),
        });
    }
    for (list, ids) in [
        ("data.operators", &data_ids),
        ("payload.operatorIds", &entry.operator_ids),
    ] {
        let name = |j: usize| {
            if list == "data.operators" {
                field(format!("data.operators[{j}].id"))
            } else {
                field(format!("payload.operatorIds[{j}]"))
            }
        };
        let mut previous: Option<u64> = None;
        for (j, &id) in ids.iter().enumerate() {
            if id == 0 {
                problems.push(Problem::ZeroId { field: name(j) });
            } else if let Some(prev) = previous.filter(|&p| id <= p) {
                problems.push(Problem::NotAscending {
                    field: name(j),
                    previous: prev,
                    id,
                });
            }
            previous = Some(id);
        }
    }
    if !CLUSTER_SIZES.contains(&entry.operator_ids.len()) {
        problems.push(Problem::ClusterSize {
            field: field("payload.operatorIds".into()),
            count: entry.operator_ids.len(),
        });
    }
    several(problems).map(|()| {
        let n = entry.operator_ids.len();
        format!(
            "{:?}: {n} operators, threshold {}, ascending, the same in data and payload",
            entry.operator_ids,
            threshold_for(n).unwrap_or(0)
        )
    })
}

fn check_validator_key(entry: &Entry<'_>, index: usize) -> Result<PublicKey, Problem> {
    let parse = |text: &str, name: &str| {
        let field = format!("shares[{index}].{name}");
        let bytes =
            hexfmt::decode_fixed::<48>(text, Prefix::Required).map_err(|source| Problem::Hex {
                field: field.clone(),
                source,
            })?;
        PublicKey::from_bytes(&bytes).map_err(|source| Problem::ValidatorKey { field, source })
    };
    let data = parse(entry.data_public_key, "data.publicKey")?;
    let payload = parse(entry.payload_public_key, "payload.publicKey")?;
    if data != payload {
        return Err(Problem::PublicKeysDiffer {
            field: format!("shares[{index}].payload.publicKey"),
            data: entry.data_public_key.to_owned(),
            payload: entry.payload_public_key.to_owned(),
        });
    }
    Ok(payload)
}

/// Whether the share public keys lie, at the ids, on one polynomial of
/// degree `threshold − 1` whose value at 0 is the validator key; if not,
/// whether exactly one share is off it.
fn check_interpolation(
    ids: &[u64],
    points: &[G1Point],
    validator: &PublicKey,
    threshold: usize,
    field: &str,
) -> Result<String, Problem> {
    let all: Vec<usize> = (0..ids.len()).collect();
    if consistent(ids, points, validator, threshold, &all) {
        return Ok(format!(
            "any {threshold} of the {} share public keys interpolate, at the operator ids, to the validator key",
            ids.len()
        ));
    }
    let culprits: Vec<usize> = (0..ids.len())
        .filter(|&skip| {
            let rest: Vec<usize> = all.iter().copied().filter(|&i| i != skip).collect();
            consistent(ids, points, validator, threshold, &rest)
        })
        .collect();
    match culprits.as_slice() {
        [one] => Err(Problem::ShareNotOnPolynomial {
            field: field.to_owned(),
            operator: ids.get(*one).copied().unwrap_or(0),
            others: ids.len() - 1,
        }),
        _ => Err(Problem::SharesInconsistent {
            field: field.to_owned(),
            degree: threshold - 1,
        }),
    }
}

/// Whether the points at `subset` (at least `threshold` of them) lie on one
/// polynomial of degree `threshold − 1` through the validator key at 0.
fn consistent(
    ids: &[u64],
    points: &[G1Point],
    validator: &PublicKey,
    threshold: usize,
    subset: &[usize],
) -> bool {
    let Some((basis, rest)) = subset.split_at_checked(threshold) else {
        return false;
    };
    let xs: Vec<u64> = basis.iter().filter_map(|&i| ids.get(i).copied()).collect();
    let ys: Vec<G1Point> = basis
        .iter()
        .filter_map(|&i| points.get(i).copied())
        .collect();
    if xs.len() != threshold || ys.len() != threshold {
        return false;
    }
    let at = |z: u64| -> Option<[u8; 48]> {
        let weights = lagrange_at(&xs, z)?;
        Some(g1_from_projective(g1_msm(&ys, &weights)).to_bytes())
    };
    if at(0) != Some(validator.to_bytes()) {
        return false;
    }
    rest.iter().all(|&k| match (ids.get(k), points.get(k)) {
        (Some(&x), Some(point)) => at(x) == Some(point.to_bytes()),
        _ => false,
    })
}

/// Lagrange weights of the points at `xs` for the value at `z`.
fn lagrange_at(xs: &[u64], z: u64) -> Option<Vec<Scalar>> {
    let z = Scalar::from_u64(z);
    xs.iter()
        .enumerate()
        .map(|(j, &xj)| {
            let xj = Scalar::from_u64(xj);
            let mut numerator = Scalar::ONE;
            let mut denominator = Scalar::ONE;
            for (m, &xm) in xs.iter().enumerate() {
                if m != j {
                    let xm = Scalar::from_u64(xm);
                    numerator = numerator.mul(&z.sub(&xm));
                    denominator = denominator.mul(&xj.sub(&xm));
                }
            }
            denominator.invert().map(|inv| numerator.mul(&inv))
        })
        .collect()
}

fn check_own_slot(
    private: &OperatorPrivateKey,
    keys: &[Option<OperatorKey>],
    ids: &[u64],
    shares_data: &SharesData,
    field: &str,
) -> Result<String, Problem> {
    let position = keys
        .iter()
        .position(|key| key.as_ref().is_some_and(|k| k.matches(private)))
        .ok_or_else(|| Problem::NoSlot {
            field: field.replace("payload.sharesData", "data.operators"),
        })?;
    let operator = ids.get(position).copied().unwrap_or(0);
    let (Some(ciphertext), Some(expected)) = (
        shares_data.ciphertexts().get(position),
        shares_data.share_public_keys().get(position),
    ) else {
        return Err(Problem::NoSlot {
            field: field.to_owned(),
        });
    };
    let (share, form) = private
        .decrypt_share(ciphertext)
        .map_err(|source| Problem::Slot {
            field: field.to_owned(),
            operator,
            source,
        })?;
    let derived = share.public_key().to_bytes();
    if &derived != expected {
        return Err(Problem::SlotMismatch {
            field: field.to_owned(),
            operator,
            derived: format!("0x{}", hex::encode(derived)),
            expected: format!("0x{}", hex::encode(expected)),
        });
    }
    Ok(format!(
        "operator {operator}'s slot decrypts ({}) to the share of public key 0x{}",
        match form {
            PlaintextForm::BareHex => "64 hex characters",
            PlaintextForm::PrefixedHex => "0x and 64 hex characters, as ssv-keys writes",
        },
        hex::encode(derived)
    ))
}

fn check_across(parsed: &[Option<EntryOutcome>], first_nonce: u64, checks: &mut Vec<Check>) {
    let problems: Vec<Problem> = parsed
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let entry = entry.as_ref()?;
            let expected = first_nonce.saturating_add(index as u64);
            (entry.nonce != expected).then(|| Problem::Nonce {
                field: format!("shares[{index}].data.ownerNonce"),
                found: entry.nonce,
                expected,
                first: first_nonce,
                index,
            })
        })
        .collect();
    let last = first_nonce.saturating_add(parsed.len().saturating_sub(1) as u64);
    checks.push(Check::new(
        Subject::File,
        Property::NonceSequence,
        several(problems).map(|()| {
            if parsed.len() == 1 {
                format!("ownerNonce {first_nonce}, the given first nonce")
            } else {
                format!("ownerNonce {first_nonce} to {last}, one per entry in order")
            }
        }),
    ));
    if parsed.len() < 2 {
        return;
    }
    let mut duplicates = Vec::new();
    for (index, entry) in parsed.iter().enumerate() {
        let Some(key) = entry.as_ref().and_then(|e| e.validator) else {
            continue;
        };
        if let Some(first) = parsed
            .iter()
            .take(index)
            .position(|other| other.as_ref().and_then(|o| o.validator) == Some(key))
        {
            duplicates.push(Problem::DuplicateValidator {
                field: format!("shares[{index}].payload.publicKey"),
                first,
            });
        }
    }
    checks.push(Check::new(
        Subject::File,
        Property::DistinctValidators,
        several(duplicates).map(|()| format!("{} different validator keys", parsed.len())),
    ));
    let reference = parsed
        .first()
        .and_then(Option::as_ref)
        .map(|e| &e.operators);
    let differ: Vec<Problem> = parsed
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(index, entry)| {
            let entry = entry.as_ref()?;
            (Some(&entry.operators) != reference).then(|| Problem::OperatorsDiffer {
                field: format!("shares[{index}].data.operators"),
            })
        })
        .collect();
    checks.push(Check::new(
        Subject::File,
        Property::SameOperators,
        several(differ).map(|()| "every entry has the same operator ids and keys".to_owned()),
    ));
}

fn parse_entry(value: &Value, index: usize) -> Result<Entry<'_>, Vec<Problem>> {
    let at = |field: &str| format!("shares[{index}]{field}");
    let mut problems = Vec::new();
    let Some(object) = value.as_object() else {
        return Err(vec![Problem::WrongType {
            field: at(""),
            expected: "an object",
            found: kind(value),
        }]);
    };
    problems.extend(unknown_fields(object, &at("."), &["data", "payload"]));
    let data = object_field(object, "data", &at(".data"), &mut problems);
    let payload = object_field(object, "payload", &at(".payload"), &mut problems);

    let mut owner_nonce = None;
    let mut owner_address = None;
    let mut data_public_key = None;
    let mut operators = None;
    if let Some(data) = data {
        problems.extend(unknown_fields(
            data,
            &at(".data."),
            &["ownerNonce", "ownerAddress", "publicKey", "operators"],
        ));
        owner_nonce = u64_field(data, "ownerNonce", &at(".data.ownerNonce"), &mut problems);
        owner_address = string_field(
            data,
            "ownerAddress",
            &at(".data.ownerAddress"),
            &mut problems,
        );
        data_public_key = string_field(data, "publicKey", &at(".data.publicKey"), &mut problems);
        operators =
            array_field(data, "operators", &at(".data.operators"), &mut problems).map(|list| {
                list.iter()
                    .enumerate()
                    .filter_map(|(j, op)| {
                        let path = at(&format!(".data.operators[{j}]"));
                        let Some(op) = op.as_object() else {
                            problems.push(Problem::WrongType {
                                field: path,
                                expected: "an object",
                                found: kind(op),
                            });
                            return None;
                        };
                        problems.extend(unknown_fields(
                            op,
                            &format!("{path}."),
                            &["id", "operatorKey"],
                        ));
                        let id = u64_field(op, "id", &format!("{path}.id"), &mut problems);
                        let key = string_field(
                            op,
                            "operatorKey",
                            &format!("{path}.operatorKey"),
                            &mut problems,
                        );
                        id.zip(key)
                    })
                    .collect::<Vec<_>>()
            });
    }
    let mut payload_public_key = None;
    let mut operator_ids = None;
    let mut shares_data = None;
    if let Some(payload) = payload {
        problems.extend(unknown_fields(
            payload,
            &at(".payload."),
            &["publicKey", "operatorIds", "sharesData"],
        ));
        payload_public_key = string_field(
            payload,
            "publicKey",
            &at(".payload.publicKey"),
            &mut problems,
        );
        operator_ids = array_field(
            payload,
            "operatorIds",
            &at(".payload.operatorIds"),
            &mut problems,
        )
        .map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(j, id)| {
                    let v = id.as_u64();
                    if v.is_none() {
                        problems.push(Problem::WrongType {
                            field: at(&format!(".payload.operatorIds[{j}]")),
                            expected: "a non-negative integer",
                            found: kind(id),
                        });
                    }
                    v
                })
                .collect::<Vec<_>>()
        });
        shares_data = string_field(
            payload,
            "sharesData",
            &at(".payload.sharesData"),
            &mut problems,
        );
    }
    match (
        owner_nonce,
        owner_address,
        data_public_key,
        operators,
        payload_public_key,
        operator_ids,
        shares_data,
    ) {
        (
            Some(owner_nonce),
            Some(owner_address),
            Some(data_public_key),
            Some(operators),
            Some(payload_public_key),
            Some(operator_ids),
            Some(shares_data),
        ) if problems.is_empty() => Ok(Entry {
            owner_nonce,
            owner_address,
            data_public_key,
            operators,
            payload_public_key,
            operator_ids,
            shares_data,
        }),
        _ => Err(problems),
    }
}

fn unknown_fields(object: &Map<String, Value>, prefix: &str, known: &[&str]) -> Vec<Problem> {
    object
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| Problem::Unknown {
            field: format!("{prefix}{key}"),
        })
        .collect()
}

fn object_field<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'v Map<String, Value>> {
    field(object, key, path, problems, "an object", Value::as_object)
}

fn array_field<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'v Vec<Value>> {
    field(object, key, path, problems, "an array", Value::as_array)
}

fn string_field<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'v str> {
    field(object, key, path, problems, "a string", Value::as_str)
}

fn u64_field(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    field(
        object,
        key,
        path,
        problems,
        "a non-negative integer",
        Value::as_u64,
    )
}

fn field<'v, T>(
    object: &'v Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Vec<Problem>,
    expected: &'static str,
    get: impl Fn(&'v Value) -> Option<T>,
) -> Option<T> {
    match object.get(key) {
        None => {
            problems.push(Problem::Missing { field: path.into() });
            None
        }
        Some(value) => {
            let got = get(value);
            if got.is_none() {
                problems.push(Problem::WrongType {
                    field: path.into(),
                    expected,
                    found: kind(value),
                });
            }
            got
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a non-negative integer",
        Value::Number(_) => "a negative or fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn several(mut problems: Vec<Problem>) -> Result<(), Problem> {
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(Problem::Several { problems }),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::crypto::{SecretBytes, SecretKey};
    use crate::ssv::dealer::{self, DealerSpec, Dealt, TEST_RSA_1024_PUBLIC_KEY};
    use crate::ssv::{CreatedAt, KeysharesBuilder};

    const OWNER: &str = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6";
    const IDS: [u64; 4] = [11, 27, 103, 404];
    const NONCE: u64 = 8;

    struct Fixture {
        owner: ExecutionAddress,
        keys: Vec<(u64, OperatorPrivateKey)>,
        dealt: Dealt,
        text: String,
    }

    fn fixture(validators: usize) -> Fixture {
        let owner: ExecutionAddress = OWNER.parse().unwrap();
        let keys = dealer::test_operators(&IDS).unwrap();
        let spec = DealerSpec {
            owner,
            first_nonce: NONCE,
            created_at: CreatedAt::parse("2025-01-02T03:04:05.6Z").unwrap(),
            operators: keys.iter().map(|(id, k)| (*id, k.public_key())).collect(),
            validators,
        };
        let dealt = dealer::deal(&spec, &mut StdRng::seed_from_u64(11)).unwrap();
        let text = dealt.keyshares.to_json_string().unwrap();
        Fixture {
            owner,
            keys,
            dealt,
            text,
        }
    }

    fn run(f: &Fixture, text: &str, key: Option<usize>) -> Vec<Check> {
        let key = key.map(|i| &f.keys[i].1);
        verify_keyshares(text, &f.owner, NONCE, key)
    }

    fn failures(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|c| !c.ok()).collect()
    }

    /// The one failed check, which must be of `property` and name `field`.
    #[track_caller]
    fn only_failure(checks: &[Check], property: Property, field: &str) -> Problem {
        let failed = failures(checks);
        assert_eq!(
            failed
                .iter()
                .map(|c| (c.property, c.field()))
                .collect::<Vec<_>>(),
            vec![(property, Some(field))],
            "{:#?}",
            failed
                .iter()
                .map(|c| format!("{}: {}", c.name(), c.detail()))
                .collect::<Vec<_>>()
        );
        failed[0].outcome.clone().unwrap_err()
    }

    fn edit(text: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(text).unwrap();
        change(&mut value);
        serde_json::to_string(&value).unwrap()
    }

    fn edit_shares_data(text: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
        edit(text, |v| {
            let field = &mut v["shares"][0]["payload"]["sharesData"];
            let mut bytes = hex::decode(&field.as_str().unwrap()[2..]).unwrap();
            change(&mut bytes);
            *field = format!("0x{}", hex::encode(bytes)).into();
        })
    }

    #[test]
    fn generated_keyshares_pass_every_check() {
        let f = fixture(1);
        let checks = run(&f, &f.text, None);
        assert!(failures(&checks).is_empty(), "{checks:#?}");
        let properties: Vec<Property> = checks.iter().map(|c| c.property).collect();
        assert_eq!(
            properties,
            [
                Property::Layout,
                Property::Version,
                Property::CreatedAt,
                Property::EntryFields,
                Property::OperatorIds,
                Property::OperatorKeys,
                Property::ValidatorPublicKey,
                Property::SharesDataLength,
                Property::SharePublicKeys,
                Property::ShareInterpolation,
                Property::Ciphertexts,
                Property::OwnerAddress,
                Property::OwnershipSignature,
                Property::NonceSequence,
            ]
        );
        // Every operator's slot decrypts to its own share.
        for (i, (id, _)) in f.keys.iter().enumerate() {
            let checks = run(&f, &f.text, Some(i));
            assert!(failures(&checks).is_empty(), "{checks:#?}");
            let slot = checks
                .iter()
                .find(|c| c.property == Property::OwnSlot)
                .unwrap();
            assert!(slot.detail().starts_with(&format!(
                "operator {id}'s slot decrypts (64 hex characters)"
            )));
        }
    }

    #[test]
    fn generated_file_has_ssv_dkg_layout() {
        let f = fixture(1);
        let v = &f.dealt.validators[0];
        let pubkey = format!("0x{}", v.secret.public_key().to_hex());
        let prefix = format!(
            "{{\"version\":\"v1.1.0\",\"createdAt\":\"2025-01-02T03:04:05.6Z\",\"shares\":[{{\"data\":{{\"ownerNonce\":8,\"ownerAddress\":\"{OWNER}\",\"publicKey\":\"{pubkey}\",\"operators\":[{{\"id\":11,\"operatorKey\":\"LS0tLS1CRUdJTiBSU0EgUFVCTElDIEtFWS0tLS0t"
        );
        assert!(f.text.starts_with(&prefix), "{}", &f.text[..400]);
        assert!(f.text.ends_with("\"}}]}\n"));
        assert_eq!(f.text.matches('\n').count(), 1);
        let payload = format!(
            "\"payload\":{{\"publicKey\":\"{pubkey}\",\"operatorIds\":[11,27,103,404],\"sharesData\":\"0x"
        );
        assert!(f.text.contains(&payload));
        // sharesData: the signature, then the share public keys in id order.
        let value: Value = serde_json::from_str(&f.text).unwrap();
        let data = SharesData::from_hex(
            value["shares"][0]["payload"]["sharesData"]
                .as_str()
                .unwrap(),
            4,
        )
        .unwrap();
        assert_eq!(data.to_bytes().len(), 96 + 304 * 4);
        let signature = Signature::from_bytes(data.signature_bytes()).unwrap();
        assert!(signature.verify(&v.secret.public_key(), &ownership_message(&f.owner, NONCE)));
        for (bytes, share) in data.share_public_keys().iter().zip(&v.shares) {
            assert_eq!(bytes, &share.public_key().to_bytes());
        }
        // Same parts, same bytes.
        assert_eq!(fixture(1).text, f.text);
    }

    #[test]
    fn a_flipped_signature_bit_is_refused() {
        let f = fixture(1);
        let text = edit_shares_data(&f.text, |b| b[40] ^= 0x01);
        let problem = only_failure(
            &run(&f, &text, None),
            Property::OwnershipSignature,
            "shares[0].payload.sharesData",
        );
        assert!(matches!(
            problem,
            Problem::SignatureInvalid { .. } | Problem::SignatureEncoding { .. }
        ));
    }

    #[test]
    fn two_swapped_ciphertexts_are_refused_by_their_operators() {
        let f = fixture(1);
        let at = |i: usize| 96 + 48 * 4 + 256 * i;
        let text = edit_shares_data(&f.text, |b| {
            let first: Vec<u8> = b[at(0)..at(1)].to_vec();
            let second: Vec<u8> = b[at(1)..at(2)].to_vec();
            b[at(0)..at(1)].copy_from_slice(&second);
            b[at(1)..at(2)].copy_from_slice(&first);
        });
        for operator in [0, 1] {
            let checks = run(&f, &text, Some(operator));
            let slot = checks
                .iter()
                .find(|c| c.property == Property::OwnSlot)
                .unwrap();
            assert_eq!(slot.field(), Some("shares[0].payload.sharesData"));
            assert!(
                matches!(
                    slot.outcome,
                    Err(Problem::Slot { operator: id, .. } | Problem::SlotMismatch { operator: id, .. }) if id == IDS[operator]
                ),
                "{slot:?}"
            );
        }
        // The untouched operators' slots still check out.
        let checks = run(&f, &text, Some(2));
        assert!(
            checks
                .iter()
                .find(|c| c.property == Property::OwnSlot)
                .unwrap()
                .ok()
        );
    }

    #[test]
    fn a_wrong_nonce_is_refused() {
        let f = fixture(1);
        // The file's nonce edited: the sequence check names it.
        let text = edit(&f.text, |v| v["shares"][0]["data"]["ownerNonce"] = 9.into());
        let problem = only_failure(
            &run(&f, &text, None),
            Property::NonceSequence,
            "shares[0].data.ownerNonce",
        );
        assert_eq!(
            problem.to_string(),
            "shares[0].data.ownerNonce is 9, expected 8 (first nonce 8 + entry 0)"
        );
        // The file checked against another first nonce: the signature is for 8.
        let checks = verify_keyshares(&f.text, &f.owner, 9, None);
        let failed: Vec<Property> = failures(&checks).iter().map(|c| c.property).collect();
        assert_eq!(
            failed,
            [Property::OwnershipSignature, Property::NonceSequence]
        );
        let signature = checks
            .iter()
            .find(|c| c.property == Property::OwnershipSignature)
            .unwrap();
        assert!(matches!(
            &signature.outcome,
            Err(Problem::SignatureInvalid {
                nonce: 9,
                diagnosis: Some(Diagnosis::FileNonce(8)),
                ..
            })
        ));
    }

    #[test]
    fn a_signature_over_the_lowercase_owner_is_refused() {
        let f = fixture(1);
        let secret = &f.dealt.validators[0].secret;
        let lowercase = OWNER.to_ascii_lowercase();
        let mut part = f.dealt.parts[0].clone();
        part.signature = secret.sign(&message_for_text(&lowercase, NONCE));
        let text = KeysharesBuilder::new(f.owner, CreatedAt::from_unix(0, 0))
            .validator(part)
            .build()
            .unwrap()
            .to_json_string()
            .unwrap();
        let problem = only_failure(
            &run(&f, &text, None),
            Property::OwnershipSignature,
            "shares[0].payload.sharesData",
        );
        assert!(matches!(
            problem,
            Problem::SignatureInvalid {
                diagnosis: Some(Diagnosis::LowercaseOwner),
                ..
            }
        ));
        assert!(
            problem
                .to_string()
                .contains("did not write the owner in EIP-55")
        );
    }

    #[test]
    fn a_lowercase_owner_address_field_passes_with_a_note() {
        // ssv-keys writes the owner as given and checksums it before use.
        let f = fixture(1);
        let text = edit(&f.text, |v| {
            v["shares"][0]["data"]["ownerAddress"] = OWNER.to_ascii_lowercase().into();
        });
        let checks = run(&f, &text, None);
        assert!(failures(&checks).is_empty());
        let owner = checks
            .iter()
            .find(|c| c.property == Property::OwnerAddress)
            .unwrap();
        assert!(
            owner.detail().contains("not in EIP-55"),
            "{}",
            owner.detail()
        );
    }

    #[test]
    fn another_owner_is_refused() {
        let f = fixture(1);
        let other: ExecutionAddress = "0x5cC0DdE14E7256340CC820415a6022a7d1c93A35"
            .parse()
            .unwrap();
        let checks = verify_keyshares(&f.text, &other, NONCE, None);
        let failed: Vec<(Property, Option<&str>)> = failures(&checks)
            .iter()
            .map(|c| (c.property, c.field()))
            .collect();
        assert_eq!(
            failed,
            [
                (Property::OwnerAddress, Some("shares[0].data.ownerAddress")),
                (
                    Property::OwnershipSignature,
                    Some("shares[0].payload.sharesData")
                ),
            ]
        );
        assert!(matches!(
            &checks.iter().find(|c| c.property == Property::OwnershipSignature).unwrap().outcome,
            Err(Problem::SignatureInvalid { diagnosis: Some(Diagnosis::FileOwner(o)), .. }) if o == OWNER
        ));
        // A mixed-case owner with a broken checksum is no address.
        let text = edit(&f.text, |v| {
            v["shares"][0]["data"]["ownerAddress"] =
                OWNER.replace('F', "f").replacen('b', "B", 1).into();
        });
        let owner = run(&f, &text, None)
            .into_iter()
            .find(|c| c.property == Property::OwnerAddress)
            .unwrap();
        assert!(matches!(owner.outcome, Err(Problem::Address { .. })));
    }

    #[test]
    fn an_unsorted_id_is_refused() {
        let f = fixture(1);
        let text = edit(&f.text, |v| {
            let data = &mut v["shares"][0]["data"]["operators"];
            let (a, b) = (data[1].clone(), data[2].clone());
            data[1] = b;
            data[2] = a;
            let ids = &mut v["shares"][0]["payload"]["operatorIds"];
            ids[1] = 103.into();
            ids[2] = 27.into();
        });
        let checks = run(&f, &text, None);
        let ids = checks
            .iter()
            .find(|c| c.property == Property::OperatorIds)
            .unwrap();
        assert_eq!(ids.field(), Some("shares[0].data.operators[2].id"));
        assert!(
            ids.detail()
                .contains("is 27 after 103: operator ids must be strictly ascending")
        );
        // The interpolation check needs valid ids and is left out; the
        // signature still verifies: only the order is wrong.
        assert!(
            checks
                .iter()
                .all(|c| c.property != Property::ShareInterpolation)
        );
        assert_eq!(failures(&checks).len(), 1);
        // An id only in payload.operatorIds out of line with data.operators.
        let text = edit(&f.text, |v| {
            v["shares"][0]["payload"]["operatorIds"][3] = 405.into()
        });
        let checks = run(&f, &text, None);
        let ids = checks
            .iter()
            .find(|c| c.property == Property::OperatorIds)
            .unwrap();
        assert_eq!(ids.field(), Some("shares[0].payload.operatorIds"));
    }

    #[test]
    fn a_wrong_share_public_key_is_refused() {
        let f = fixture(1);
        let mut raw = [0u8; 32];
        raw[31] = 5;
        let stranger = SecretKey::from_bytes(&SecretBytes::new(&mut raw))
            .unwrap()
            .public_key();
        let text = edit_shares_data(&f.text, |b| {
            b[96 + 48 * 2..96 + 48 * 3].copy_from_slice(&stranger.to_bytes());
        });
        let problem = only_failure(
            &run(&f, &text, None),
            Property::ShareInterpolation,
            "shares[0].payload.sharesData",
        );
        assert_eq!(
            problem,
            Problem::ShareNotOnPolynomial {
                field: "shares[0].payload.sharesData".into(),
                operator: 103,
                others: 3
            }
        );
        // Its operator finds out as well, from its own slot.
        let checks = run(&f, &text, Some(2));
        let slot = checks
            .iter()
            .find(|c| c.property == Property::OwnSlot)
            .unwrap();
        assert!(matches!(
            slot.outcome,
            Err(Problem::SlotMismatch { operator: 103, .. })
        ));
        // Garbage instead of a point is named as such.
        let text = edit_shares_data(&f.text, |b| b[96 + 48..96 + 96].fill(0x11));
        let problem = only_failure(
            &run(&f, &text, None),
            Property::SharePublicKeys,
            "shares[0].payload.sharesData",
        );
        assert!(matches!(
            problem,
            Problem::SharePublicKey { operator: 27, .. }
        ));
    }

    #[test]
    fn a_1024_bit_operator_key_is_refused() {
        let f = fixture(1);
        let weak = <base64ct::Base64 as base64ct::Encoding>::encode_string(
            TEST_RSA_1024_PUBLIC_KEY.as_bytes(),
        );
        let text = edit(&f.text, |v| {
            v["shares"][0]["data"]["operators"][1]["operatorKey"] = weak.into()
        });
        let checks = run(&f, &text, None);
        let keys = checks
            .iter()
            .find(|c| c.property == Property::OperatorKeys)
            .unwrap();
        assert_eq!(
            keys.field(),
            Some("shares[0].data.operators[1].operatorKey")
        );
        assert_eq!(
            keys.detail(),
            "shares[0].data.operators[1].operatorKey (operator 27): the key is RSA-1024, but SSV operator keys must be RSA-2048"
        );
    }

    #[test]
    fn field_types_layout_and_version_are_named() {
        let f = fixture(1);
        let text = edit(&f.text, |v| {
            v["shares"][0]["data"]["ownerNonce"] = "8".into();
            v["shares"][0]["payload"]["extra"] = 1.into();
        });
        let problem = only_failure(
            &run(&f, &text, None),
            Property::EntryFields,
            "shares[0].data.ownerNonce",
        );
        assert_eq!(
            problem.to_string(),
            "shares[0].data.ownerNonce must be a non-negative integer, found a string; shares[0].payload.extra is not a field of a keyshares file"
        );
        let text = edit(&f.text, |v| v["version"] = "v2.0.0".into());
        only_failure(&run(&f, &text, None), Property::Version, "version");
        let text = edit(&f.text, |v| v["version"] = "v1.2.0".into());
        assert!(failures(&run(&f, &text, None)).is_empty());
        let text = edit(&f.text, |v| v["createdAt"] = "today".into());
        only_failure(&run(&f, &text, None), Property::CreatedAt, "createdAt");
        let text = edit(&f.text, |v| v["shares"] = Value::Array(vec![]));
        only_failure(&run(&f, &text, None), Property::Layout, "shares");
        let checks = run(&f, "not json", None);
        assert_eq!(checks.len(), 1);
        assert!(matches!(checks[0].outcome, Err(Problem::NotJson { .. })));
    }

    #[test]
    fn a_short_shares_data_is_refused() {
        let f = fixture(1);
        let text = edit_shares_data(&f.text, |b| b.truncate(b.len() - 1));
        let problem = only_failure(
            &run(&f, &text, None),
            Property::SharesDataLength,
            "shares[0].payload.sharesData",
        );
        assert_eq!(
            problem.to_string(),
            "shares[0].payload.sharesData: sharesData is 1311 bytes, but 4 operators need 96 + 304·4 = 1312"
        );
    }

    #[test]
    fn several_validators_count_nonces_up() {
        let f = fixture(3);
        let checks = run(&f, &f.text, Some(3));
        assert!(failures(&checks).is_empty(), "{checks:#?}");
        let nonces = checks
            .iter()
            .find(|c| c.property == Property::NonceSequence)
            .unwrap();
        assert_eq!(
            nonces.detail(),
            "ownerNonce 8 to 10, one per entry in order"
        );
        assert!(
            checks
                .iter()
                .any(|c| c.property == Property::DistinctValidators)
        );
        assert!(checks.iter().any(|c| c.property == Property::SameOperators));
        // Out of order: nonces and signatures fail for both moved entries.
        let text = edit(&f.text, |v| {
            let shares = v["shares"].as_array_mut().unwrap();
            shares.swap(0, 1);
        });
        let checks = run(&f, &text, None);
        let failed: Vec<String> = failures(&checks).iter().map(|c| c.name()).collect();
        assert_eq!(
            failed,
            [
                "shares[0]: ownership signature",
                "shares[1]: ownership signature",
                "nonce sequence"
            ]
        );
        // The same validator twice.
        let text = edit(&f.text, |v| {
            let first = v["shares"][0].clone();
            v["shares"][2] = first;
        });
        let checks = run(&f, &text, None);
        let dup = checks
            .iter()
            .find(|c| c.property == Property::DistinctValidators)
            .unwrap();
        assert_eq!(dup.field(), Some("shares[2].payload.publicKey"));
    }

    #[test]
    fn checks_serialize_as_report_lines() {
        let f = fixture(1);
        let text = edit(&f.text, |v| v["shares"][0]["data"]["ownerNonce"] = 9.into());
        let checks = run(&f, &text, None);
        let json = serde_json::to_value(&checks).unwrap();
        let nonce = json
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["property"] == "nonce-sequence")
            .unwrap();
        assert_eq!(nonce["check"], "nonce sequence");
        assert_eq!(nonce["ok"], false);
        assert_eq!(nonce["field"], "shares[0].data.ownerNonce");
        let first = &json[3];
        assert_eq!(first["check"], "shares[0]: field types");
        assert_eq!(first["entry"], 0);
        assert!(first.get("field").is_none());
    }
}
