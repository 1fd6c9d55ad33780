//! The serde schema of `keyshares.json`, without logic.
//!
//! Field names, order and types are those ssv-dkg writes (its
//! `wire.KeySharesCLI`, `Data`, `ShareData`, `Payload` and `spec.Operator`
//! structs, ssvlabs/ssv-dkg `pkgs/wire/types.go`):
//!
//! ```json
//! {"version":"v1.1.0","createdAt":"…","shares":[
//!   {"data":{"ownerNonce":8,"ownerAddress":"0x…EIP-55…","publicKey":"0x…",
//!            "operators":[{"id":11,"operatorKey":"LS0t…"}, …]},
//!    "payload":{"publicKey":"0x…","operatorIds":[11, …],"sharesData":"0x…"}}]}
//! ```
//!
//! `ownerNonce`, `id` and the `operatorIds` are JSON numbers (the SDK skips
//! its nonce check when `ownerNonce` is not a number); everything else is a
//! string. ssv-dkg writes the file with Go's `json.Encoder`: compact, one
//! line, then `\n`, which [`crate::ssv::Keyshares::to_json_string`]
//! reproduces. Reading is done field by field in [`crate::ssv::verify`], so
//! that every problem can name its field.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeysharesJson {
    /// `v1.1.0` when written by dvkg.
    pub version: String,
    /// RFC 3339.
    pub created_at: String,
    /// One entry per validator, in nonce order.
    pub shares: Vec<ShareEntryJson>,
}

/// One validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareEntryJson {
    /// What the web app and SDK check against the chain.
    pub data: ShareDataJson,
    /// The arguments of the `registerValidator` call.
    pub payload: PayloadJson,
}

/// `shares[i].data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShareDataJson {
    /// The owner's registration nonce for this validator.
    pub owner_nonce: u64,
    /// The owner, EIP-55.
    pub owner_address: String,
    /// The validator public key, `0x` + 96 hex.
    pub public_key: String,
    /// The operators, ascending by id.
    pub operators: Vec<OperatorJson>,
}

/// `shares[i].data.operators[j]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OperatorJson {
    /// The SSV operator id.
    pub id: u64,
    /// The registered operator key, verbatim.
    pub operator_key: String,
}

/// `shares[i].payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PayloadJson {
    /// The validator public key, `0x` + 96 hex.
    pub public_key: String,
    /// The operator ids, ascending.
    pub operator_ids: Vec<u64>,
    /// `0x` + hex of [`crate::ssv::SharesData`].
    pub shares_data: String,
}
