//! EIP-2335 (ERC-2335) BLS12-381 keystores, version 4: encrypting share
//! secrets for export and decrypting keystores written by any conforming tool.
//!
//! Spec: <https://eips.ethereum.org/EIPS/eip-2335> (text identical in
//! ERC-2335), summarised with the stricter reader rules of
//! ethstaker-deposit-cli in `eth-formats.md` §3 "EIP-2335 keystore (version
//! 4)" and §3.1 "Official test vectors". The vectors live in
//! `ceremony-specs/vectors/eip2335.json`.
//!
//! The layout follows lighthouse's `eth2_keystore`: [`json`] is a
//! logic-free serde schema, and [`Keystore`] is the validated value built from
//! it; [`kdf`] derives keys from passwords, [`batch`] writes and reads many
//! keystores under one password. Every field is checked on the way in, so a [`Keystore`] always has a
//! supported KDF with bounded cost, a 16-byte IV, a 32-byte ciphertext and
//! checksum, and a valid BLS public key.
//!
//! The algorithm, per EIP-2335 §"Definitions" and §"Decryption":
//!
//! - `DK = KDF(password, salt)`, 32 bytes, where the password is
//!   NFKD-normalised with control codes removed ([`Password`]);
//! - `checksum = SHA256(DK[16..32] ‖ cipher.message)`;
//! - `cipher.message = AES-128-CTR(key = DK[0..16], iv, secret)`, where the IV
//!   is the full 128-bit big-endian initial counter.
//!
//! Writing many keystores under one password is the common case for share
//! export, so [`KeystoreEncryptor`] can run the KDF once and reuse one salt
//! ([`SaltMode::Shared`], as ethstaker-deposit-cli does) and
//! [`KeystoreDecryptor`] caches derived keys so that reading them back costs
//! one KDF as well.
//!
//! # What we cannot wipe
//!
//! Derived keys, normalised passwords and decrypted secrets live in zeroizing
//! buffers. Not wiped: the caller's original password string, the
//! normalisation iterator's small internal buffer, and the internal state of
//! the scrypt, PBKDF2/HMAC, SHA-256 and AES crates (built without their
//! `zeroize` features), nor copies the compiler makes when values move.

use aes::Aes128;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use uuid::Uuid;

use crate::crypto::{BlsError, PublicKey, SECRET_KEY_BYTES, SecretBytes, SecretKey};
use crate::hexfmt::{self, HexError, Prefix};

/// The only keystore version this module reads or writes.
pub const KEYSTORE_VERSION: u64 = 4;
/// Length of the KDF output, `dklen`; EIP-2335 keystores always use 32.
pub const DERIVED_KEY_BYTES: usize = 32;
/// Length of the random salt written with new keystores.
pub const SALT_BYTES: usize = 32;
/// Length of the AES-128-CTR initial counter.
pub const IV_BYTES: usize = 16;
/// Length of the SHA-256 checksum.
pub const CHECKSUM_BYTES: usize = 32;

/// scrypt `n` of the deposit CLI defaults, 2^18.
pub const DEFAULT_SCRYPT_N: u64 = 1 << 18;
/// scrypt `r` of the deposit CLI defaults.
pub const DEFAULT_SCRYPT_R: u64 = 8;
/// scrypt `p` of the deposit CLI defaults.
pub const DEFAULT_SCRYPT_P: u64 = 1;
/// PBKDF2 iteration count `c` of the deposit CLI defaults, 2^18.
pub const DEFAULT_PBKDF2_C: u64 = 1 << 18;

/// Largest accepted `log2(n)` for scrypt: more would take minutes per key.
pub const MAX_SCRYPT_LOG2_N: u32 = 20;
/// Largest accepted scrypt memory use, `128 * n * r` bytes (1 GiB).
pub const MAX_SCRYPT_MEMORY_BYTES: u64 = 1 << 30;
/// Largest accepted scrypt work, `n * r * p` (8 times the default).
pub const MAX_SCRYPT_WORK: u64 = 1 << 24;
/// Largest accepted PBKDF2 iteration count (64 times the default).
pub const MAX_PBKDF2_C: u64 = 1 << 24;

const SCRYPT: &str = "scrypt";
const PBKDF2: &str = "pbkdf2";
const HMAC_SHA256: &str = "hmac-sha256";
const SHA256: &str = "sha256";
const AES_128_CTR: &str = "aes-128-ctr";

pub mod batch;
pub mod json;
pub mod kdf;
#[cfg(test)]
mod tests;

pub use batch::{KeystoreDecryptor, KeystoreEncryptor, SaltMode};
#[cfg(test)]
use kdf::is_control;
use kdf::{Cost, DerivedKey, ct_eq};
pub use kdf::{KdfKind, KdfParams, Password, SaltedKdf};

/// Why KDF parameters were refused: unsupported by EIP-2335, or so costly
/// that reading the keystore would hang or exhaust memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KdfParamsError {
    /// scrypt `n` is not a power of two greater than 1.
    #[error("scrypt n must be a power of two greater than 1, got {n}")]
    ScryptNNotPowerOfTwo {
        /// The value found.
        n: u64,
    },
    /// scrypt `n` is above 2^[`MAX_SCRYPT_LOG2_N`].
    #[error("scrypt n = {n} is above the limit of 2^{MAX_SCRYPT_LOG2_N}")]
    ScryptNTooLarge {
        /// The value found.
        n: u64,
    },
    /// scrypt `r` or `p` is zero.
    #[error("scrypt {name} must be at least 1")]
    ScryptZero {
        /// `r` or `p`.
        name: &'static str,
    },
    /// The parameters exceed [`MAX_SCRYPT_MEMORY_BYTES`] or [`MAX_SCRYPT_WORK`].
    #[error(
        "scrypt n = {n}, r = {r}, p = {p} exceed the limits of 128·n·r <= 1 GiB and n·r·p <= 2^24"
    )]
    ScryptTooExpensive {
        /// Cost.
        n: u64,
        /// Block size.
        r: u64,
        /// Parallelisation.
        p: u64,
    },
    /// The scrypt implementation refused parameters that passed our checks.
    #[error("the scrypt implementation refused the parameters")]
    ScryptRejected,
    /// PBKDF2 `c` is zero or above [`MAX_PBKDF2_C`].
    #[error("pbkdf2 iteration count c = {c} is outside 1..=2^24")]
    Pbkdf2CountOutOfRange {
        /// The value found.
        c: u64,
    },
    /// PBKDF2 with a pseudo-random function other than HMAC-SHA256.
    #[error("pbkdf2 prf must be hmac-sha256, got {prf:?}")]
    UnsupportedPrf {
        /// The value found.
        prf: String,
    },
    /// `dklen` other than 32.
    #[error("kdf dklen must be 32, got {dklen}")]
    UnsupportedDklen {
        /// The value found.
        dklen: u64,
    },
    /// An empty salt.
    #[error("the kdf salt must not be empty")]
    EmptySalt,
}

/// Why a keystore could not be read, written, encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The text is not JSON of the keystore schema (syntax, missing or
    /// unknown field, wrong type).
    #[error("failed to parse keystore json")]
    Json {
        /// The parser's report, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// Serialising the keystore failed.
    #[error("failed to serialize keystore json")]
    Serialize {
        /// The serialiser's report.
        #[source]
        source: serde_json::Error,
    },
    /// A `version` other than 4.
    #[error("unsupported keystore version {version}, only eip-2335 version 4 is supported")]
    UnsupportedVersion {
        /// The version found.
        version: u64,
    },
    /// A KDF, checksum or cipher function other than the EIP-2335 ones.
    #[error("unsupported {module} function {function:?}, expected {expected}")]
    UnsupportedFunction {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// The function found.
        function: String,
        /// What this module supports.
        expected: &'static str,
    },
    /// A hex field that does not decode to the required length.
    #[error("invalid hex in keystore field {field}")]
    InvalidHex {
        /// Dotted JSON path of the field, e.g. `crypto.cipher.params.iv`.
        field: &'static str,
        /// What is wrong with the hex.
        #[source]
        source: HexError,
    },
    /// A field with a value the format does not allow.
    #[error("invalid keystore field {field}: {reason}")]
    InvalidField {
        /// Dotted JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// KDF parameters that are unsupported or too costly.
    #[error("unsupported or unsafe kdf parameters")]
    InvalidKdfParams {
        /// Which parameter and why.
        #[from]
        source: KdfParamsError,
    },
    /// The `pubkey` field is not a valid BLS public key.
    #[error("keystore field pubkey is not a valid bls public key")]
    InvalidPubkey {
        /// Why the key was refused.
        #[source]
        source: BlsError,
    },
    /// A derivation path that is not an EIP-2334 path.
    #[error(
        "invalid derivation path {path:?}: expected an eip-2334 path such as m/12381/3600/0/0/0"
    )]
    InvalidPath {
        /// The path given.
        path: String,
    },
    /// Writing a keystore without a derivation path.
    #[error(
        "refusing to write a keystore with an empty path: every keystore needs an eip-2334 path such as m/12381/3600/0/0/0"
    )]
    MissingPath,
    /// The checksum does not match: almost always the wrong password,
    /// otherwise a corrupted keystore.
    #[error("wrong password: the keystore checksum does not match")]
    WrongPassword,
    /// The decrypted (or given) secret is not a BLS secret key.
    #[error("the secret is not a valid bls secret key")]
    InvalidSecretKey {
        /// Why the scalar was refused.
        #[source]
        source: BlsError,
    },
    /// The secret's public key differs from the `pubkey` field.
    #[error("the secret key belongs to public key {got}, but the keystore pubkey is {expected}")]
    PubkeyMismatch {
        /// The `pubkey` field, hex.
        expected: String,
        /// The public key of the secret, hex.
        got: String,
    },
}

/// The public fields written next to an encrypted secret.
#[derive(Debug, Clone, Copy)]
pub struct KeystoreMeta<'a> {
    /// Public key of the secret; checked against the secret before writing.
    pub pubkey: &'a PublicKey,
    /// EIP-2334 derivation path, e.g. `m/12381/3600/0/0/0`; must not be empty.
    pub path: &'a str,
    /// Free text, may be empty.
    pub description: &'a str,
}

/// A validated EIP-2335 version 4 keystore.
///
/// Holds only public data (the secret is encrypted), so it derives `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keystore {
    kdf: SaltedKdf,
    checksum: [u8; CHECKSUM_BYTES],
    iv: [u8; IV_BYTES],
    ciphertext: [u8; SECRET_KEY_BYTES],
    description: String,
    pubkey: PublicKey,
    path: String,
    uuid: Uuid,
}

impl Keystore {
    /// Parses and validates keystore JSON.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::UnsupportedVersion`] or
    /// [`KeystoreError::UnsupportedFunction`] when the file is of another
    /// format, [`KeystoreError::Json`] when it does not fit the schema, and
    /// the errors of [`Keystore::try_from`] for invalid values.
    pub fn from_json_str(text: &str) -> Result<Self, KeystoreError> {
        match serde_json::from_str::<json::JsonKeystore>(text) {
            Ok(schema) => Self::try_from(schema),
            Err(source) => Err(diagnose(text).unwrap_or(KeystoreError::Json { source })),
        }
    }

    /// Pretty JSON in the field order of the EIP's vectors.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::MissingPath`] if the path is empty (possible for a
    /// keystore read from elsewhere): this crate never writes one without.
    pub fn to_json_string(&self) -> Result<String, KeystoreError> {
        serde_json::to_string_pretty(&self.to_json()?)
            .map_err(|source| KeystoreError::Serialize { source })
    }

    /// The schema form, for embedding in other documents.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::MissingPath`] if the path is empty.
    pub fn to_json(&self) -> Result<json::JsonKeystore, KeystoreError> {
        if self.path.is_empty() {
            return Err(KeystoreError::MissingPath);
        }
        let salt = hex::encode(&self.kdf.salt);
        let dklen = DERIVED_KEY_BYTES as u64;
        let (function, params) = match self.kdf.params.0 {
            Cost::Scrypt { log2_n, r, p } => (
                SCRYPT,
                json::KdfModuleParams::Scrypt(json::ScryptParams {
                    dklen,
                    n: 1u64 << log2_n,
                    p: p.into(),
                    r: r.into(),
                    salt,
                }),
            ),
            Cost::Pbkdf2 { c } => (
                PBKDF2,
                json::KdfModuleParams::Pbkdf2(json::Pbkdf2Params {
                    dklen,
                    c: c.into(),
                    prf: HMAC_SHA256.to_owned(),
                    salt,
                }),
            ),
        };
        Ok(json::JsonKeystore {
            crypto: json::Crypto {
                kdf: json::KdfModule {
                    function: function.to_owned(),
                    params,
                    message: String::new(),
                },
                checksum: json::ChecksumModule {
                    function: SHA256.to_owned(),
                    params: json::EmptyParams {},
                    message: hex::encode(self.checksum),
                },
                cipher: json::CipherModule {
                    function: AES_128_CTR.to_owned(),
                    params: json::CipherParams {
                        iv: hex::encode(self.iv),
                    },
                    message: hex::encode(self.ciphertext),
                },
            },
            description: self.description.clone(),
            pubkey: self.pubkey.to_hex(),
            path: self.path.clone(),
            uuid: self.uuid.hyphenated().to_string(),
            version: KEYSTORE_VERSION,
        })
    }

    /// KDF parameters and salt.
    pub fn kdf(&self) -> &SaltedKdf {
        &self.kdf
    }

    /// The AES-128-CTR initial counter.
    pub fn iv(&self) -> &[u8; IV_BYTES] {
        &self.iv
    }

    /// The encrypted secret, `cipher.message`.
    pub fn ciphertext(&self) -> &[u8; SECRET_KEY_BYTES] {
        &self.ciphertext
    }

    /// `checksum.message`.
    pub fn checksum(&self) -> &[u8; CHECKSUM_BYTES] {
        &self.checksum
    }

    /// The public key of the encrypted secret.
    pub fn pubkey(&self) -> &PublicKey {
        &self.pubkey
    }

    /// The derivation path; empty only for keystores read from elsewhere.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The keystore's UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl TryFrom<json::JsonKeystore> for Keystore {
    type Error = KeystoreError;

    /// Validates every field of the schema.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the field.
    fn try_from(schema: json::JsonKeystore) -> Result<Self, KeystoreError> {
        if schema.version != KEYSTORE_VERSION {
            return Err(KeystoreError::UnsupportedVersion {
                version: schema.version,
            });
        }
        let json::Crypto {
            kdf,
            checksum,
            cipher,
        } = schema.crypto;

        let kdf = parse_kdf(kdf)?;

        if checksum.function != SHA256 {
            return Err(unsupported_checksum(checksum.function));
        }
        let checksum =
            decode_field::<CHECKSUM_BYTES>("crypto.checksum.message", &checksum.message)?;

        if cipher.function != AES_128_CTR {
            return Err(unsupported_cipher(cipher.function));
        }
        let iv = decode_field::<IV_BYTES>("crypto.cipher.params.iv", &cipher.params.iv)?;
        let ciphertext =
            decode_field::<SECRET_KEY_BYTES>("crypto.cipher.message", &cipher.message)?;

        let pubkey_bytes = decode_field::<48>("pubkey", &schema.pubkey)?;
        let pubkey = PublicKey::from_bytes(&pubkey_bytes)
            .map_err(|source| KeystoreError::InvalidPubkey { source })?;

        // EIP-2335 allows "" for keys without a derivation path.
        if !schema.path.is_empty() && !is_eip2334_path(&schema.path) {
            return Err(KeystoreError::InvalidPath { path: schema.path });
        }

        let uuid = parse_uuid(&schema.uuid)?;

        Ok(Self {
            kdf,
            checksum,
            iv,
            ciphertext,
            description: schema.description,
            pubkey,
            path: schema.path,
            uuid,
        })
    }
}

fn parse_kdf(kdf: json::KdfModule) -> Result<SaltedKdf, KeystoreError> {
    if !kdf.message.is_empty() {
        return Err(KeystoreError::InvalidField {
            field: "crypto.kdf.message",
            reason: "must be empty".to_owned(),
        });
    }
    let (params, salt) = match (kdf.function.as_str(), kdf.params) {
        (SCRYPT, json::KdfModuleParams::Scrypt(params)) => {
            check_dklen(params.dklen)?;
            (
                KdfParams::scrypt(params.n, params.r, params.p)?,
                params.salt,
            )
        }
        (PBKDF2, json::KdfModuleParams::Pbkdf2(params)) => {
            check_dklen(params.dklen)?;
            if params.prf != HMAC_SHA256 {
                return Err(KdfParamsError::UnsupportedPrf { prf: params.prf }.into());
            }
            (KdfParams::pbkdf2(params.c)?, params.salt)
        }
        (SCRYPT | PBKDF2, params) => {
            let given = match params {
                json::KdfModuleParams::Scrypt(_) => SCRYPT,
                json::KdfModuleParams::Pbkdf2(_) => PBKDF2,
            };
            return Err(KeystoreError::InvalidField {
                field: "crypto.kdf.params",
                reason: format!("{given} parameters given for kdf function {}", kdf.function),
            });
        }
        _ => return Err(unsupported_kdf(kdf.function)),
    };
    let salt = hexfmt::decode_vec(&salt, Prefix::Forbidden).map_err(|source| {
        KeystoreError::InvalidHex {
            field: "crypto.kdf.params.salt",
            source,
        }
    })?;
    Ok(SaltedKdf::new(params, salt)?)
}

fn check_dklen(dklen: u64) -> Result<(), KdfParamsError> {
    if dklen == DERIVED_KEY_BYTES as u64 {
        Ok(())
    } else {
        Err(KdfParamsError::UnsupportedDklen { dklen })
    }
}

fn decode_field<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], KeystoreError> {
    hexfmt::decode_fixed::<N>(text, Prefix::Forbidden)
        .map_err(|source| KeystoreError::InvalidHex { field, source })
}

fn parse_uuid(text: &str) -> Result<Uuid, KeystoreError> {
    let invalid = |reason: String| KeystoreError::InvalidField {
        field: "uuid",
        reason,
    };
    let uuid = Uuid::parse_str(text).map_err(|err| invalid(err.to_string()))?;
    // `parse_str` also takes the simple, braced and urn forms; RFC 4122's
    // string form, which every keystore writer uses, is the hyphenated one.
    if text.len() != uuid::fmt::Hyphenated::LENGTH {
        return Err(invalid(
            "expected the hyphenated form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".to_owned(),
        ));
    }
    Ok(uuid)
}

fn unsupported_kdf(function: String) -> KeystoreError {
    KeystoreError::UnsupportedFunction {
        module: "kdf",
        function,
        expected: "scrypt or pbkdf2",
    }
}

fn unsupported_checksum(function: String) -> KeystoreError {
    KeystoreError::UnsupportedFunction {
        module: "checksum",
        function,
        expected: SHA256,
    }
}

fn unsupported_cipher(function: String) -> KeystoreError {
    KeystoreError::UnsupportedFunction {
        module: "cipher",
        function,
        expected: AES_128_CTR,
    }
}

/// Explains a schema failure that is really "another format": a version
/// other than 4, or an unknown function name (whose parameters then would not
/// fit our schema either).
fn diagnose(text: &str) -> Option<KeystoreError> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if let Some(version) = value.get("version").and_then(serde_json::Value::as_u64)
        && version != KEYSTORE_VERSION
    {
        return Some(KeystoreError::UnsupportedVersion { version });
    }
    let function = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    if let Some(f) = function("/crypto/kdf/function").filter(|f| f != SCRYPT && f != PBKDF2) {
        return Some(unsupported_kdf(f));
    }
    if let Some(f) = function("/crypto/checksum/function").filter(|f| f != SHA256) {
        return Some(unsupported_checksum(f));
    }
    if let Some(f) = function("/crypto/cipher/function").filter(|f| f != AES_128_CTR) {
        return Some(unsupported_cipher(f));
    }
    None
}

/// EIP-2334 shape, as ethstaker-deposit-cli's reader checks it: `m` followed
/// by at least two unsigned 32-bit indices, no hardened markers.
fn is_eip2334_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("m/") else {
        return false;
    };
    let mut indices = 0usize;
    for part in rest.split('/') {
        if part.is_empty()
            || !part.bytes().all(|b| b.is_ascii_digit())
            || part.parse::<u32>().is_err()
        {
            return false;
        }
        indices += 1;
    }
    indices >= 2
}

/// Checks what this crate promises about every keystore it writes: a
/// non-empty EIP-2334 path, and a secret that is a valid key for `pubkey`.
fn check_before_writing(
    secret: &SecretBytes<SECRET_KEY_BYTES>,
    meta: &KeystoreMeta<'_>,
) -> Result<(), KeystoreError> {
    check_path(meta)?;
    check_secret_matches(secret, meta.pubkey)
}

fn check_path(meta: &KeystoreMeta<'_>) -> Result<(), KeystoreError> {
    if meta.path.is_empty() {
        return Err(KeystoreError::MissingPath);
    }
    if !is_eip2334_path(meta.path) {
        return Err(KeystoreError::InvalidPath {
            path: meta.path.to_owned(),
        });
    }
    Ok(())
}

fn check_secret_matches(
    secret: &SecretBytes<SECRET_KEY_BYTES>,
    pubkey: &PublicKey,
) -> Result<(), KeystoreError> {
    let got = SecretKey::from_bytes(secret)
        .map_err(|source| KeystoreError::InvalidSecretKey { source })?
        .public_key();
    if got == *pubkey {
        Ok(())
    } else {
        Err(KeystoreError::PubkeyMismatch {
            expected: pubkey.to_hex(),
            got: got.to_hex(),
        })
    }
}

/// Encrypts with an already derived key; infallible once inputs are checked.
fn seal(
    secret: &SecretBytes<SECRET_KEY_BYTES>,
    kdf: SaltedKdf,
    key: &DerivedKey,
    iv: [u8; IV_BYTES],
    uuid: Uuid,
    meta: &KeystoreMeta<'_>,
) -> Keystore {
    // The copy is encrypted in place, so no plaintext stays behind in it.
    let mut ciphertext = *secret.expose_secret();
    key.apply_cipher(&iv, &mut ciphertext);
    Keystore {
        checksum: key.checksum(&ciphertext),
        kdf,
        iv,
        ciphertext,
        description: meta.description.to_owned(),
        pubkey: *meta.pubkey,
        path: meta.path.to_owned(),
        uuid,
    }
}

/// Checks the checksum first, then decrypts and checks the key pair.
fn open(
    keystore: &Keystore,
    key: &DerivedKey,
) -> Result<SecretBytes<SECRET_KEY_BYTES>, KeystoreError> {
    if !ct_eq(&key.checksum(&keystore.ciphertext), &keystore.checksum) {
        return Err(KeystoreError::WrongPassword);
    }
    let mut secret = SecretBytes::<SECRET_KEY_BYTES>::zeroed();
    let buf = secret.expose_secret_mut();
    *buf = keystore.ciphertext;
    key.apply_cipher(&keystore.iv, buf);
    check_secret_matches(&secret, &keystore.pubkey)?;
    Ok(secret)
}

/// Encrypts `secret` with every random input given: reproduces a keystore
/// byte for byte (the EIP-2335 vectors), or serves callers that draw their
/// own randomness. Runs the KDF once.
///
/// # Errors
///
/// [`KeystoreError::MissingPath`] or [`KeystoreError::InvalidPath`] for a
/// path that is not a non-empty EIP-2334 path,
/// [`KeystoreError::InvalidSecretKey`] or [`KeystoreError::PubkeyMismatch`]
/// if `secret` is not the key of `meta.pubkey`, and
/// [`KeystoreError::InvalidKdfParams`] if the KDF refuses its parameters.
pub fn encrypt_with(
    secret: &SecretBytes<SECRET_KEY_BYTES>,
    password: &Password,
    kdf: &SaltedKdf,
    iv: [u8; IV_BYTES],
    uuid: Uuid,
    meta: KeystoreMeta<'_>,
) -> Result<Keystore, KeystoreError> {
    check_before_writing(secret, &meta)?;
    let key = DerivedKey::derive(password, kdf)?;
    Ok(seal(secret, kdf.clone(), &key, iv, uuid, &meta))
}

/// Decrypts `keystore` with `password`. Runs the KDF once; use
/// [`KeystoreDecryptor`] for many keystores.
///
/// # Errors
///
/// [`KeystoreError::WrongPassword`] if the checksum does not match,
/// [`KeystoreError::InvalidSecretKey`] or [`KeystoreError::PubkeyMismatch`]
/// if the plaintext is not the key of the `pubkey` field.
pub fn decrypt(
    keystore: &Keystore,
    password: &Password,
) -> Result<SecretBytes<SECRET_KEY_BYTES>, KeystoreError> {
    let key = DerivedKey::derive(password, &keystore.kdf)?;
    open(keystore, &key)
}
