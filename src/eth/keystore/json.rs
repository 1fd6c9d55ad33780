//! The serde schema of an EIP-2335 version 4 keystore, without logic.
//!
//! Every struct refuses unknown fields. Strings stay strings here; hex,
//! lengths, function names and KDF bounds are checked when converting to a
//! [`Keystore`], so that errors can name the field. Field
//! order is the order of the EIP's test vectors, which is the order written.

use serde::{Deserialize, Serialize};

/// The whole keystore file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonKeystore {
    /// KDF, checksum and cipher modules.
    pub crypto: Crypto,
    /// Free text; optional in the EIP, so a missing one reads as `""`.
    #[serde(default)]
    pub description: String,
    /// The 48-byte public key, 96 hex characters.
    pub pubkey: String,
    /// EIP-2334 derivation path, or `""` when there is none.
    pub path: String,
    /// RFC 4122 UUID.
    pub uuid: String,
    /// Keystore format version; 4 for EIP-2335.
    pub version: u64,
}

/// The `crypto` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crypto {
    /// Password-based key derivation.
    pub kdf: KdfModule,
    /// Password check.
    pub checksum: ChecksumModule,
    /// Encryption of the secret.
    pub cipher: CipherModule,
}

/// `crypto.kdf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfModule {
    /// `scrypt` or `pbkdf2`.
    pub function: String,
    /// Parameters of `function`.
    pub params: KdfModuleParams,
    /// Always `""`.
    pub message: String,
}

/// `crypto.kdf.params`, told apart by their field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KdfModuleParams {
    /// RFC 7914 parameters.
    Scrypt(ScryptParams),
    /// RFC 2898 parameters.
    Pbkdf2(Pbkdf2Params),
}

/// scrypt parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScryptParams {
    /// Output length in bytes.
    pub dklen: u64,
    /// CPU/memory cost, a power of two.
    pub n: u64,
    /// Parallelisation.
    pub p: u64,
    /// Block size.
    pub r: u64,
    /// Salt, hex.
    pub salt: String,
}

/// PBKDF2 parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pbkdf2Params {
    /// Output length in bytes.
    pub dklen: u64,
    /// Iteration count.
    pub c: u64,
    /// Pseudo-random function; `hmac-sha256`.
    pub prf: String,
    /// Salt, hex.
    pub salt: String,
}

/// `crypto.checksum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksumModule {
    /// `sha256`.
    pub function: String,
    /// Always `{}`.
    pub params: EmptyParams,
    /// The checksum, hex.
    pub message: String,
}

/// An empty parameter object, `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyParams {}

/// `crypto.cipher`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherModule {
    /// `aes-128-ctr`.
    pub function: String,
    /// The initial counter.
    pub params: CipherParams,
    /// The encrypted secret, hex.
    pub message: String,
}

/// `crypto.cipher.params`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherParams {
    /// 16-byte initial counter, hex.
    pub iv: String,
}
