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
//! it. Every field is checked on the way in, so a [`Keystore`] always has a
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

use std::fmt;

use aes::Aes128;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;
use zeroize::Zeroizing;

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

/// The serde schema of an EIP-2335 version 4 keystore, without logic.
///
/// Every struct refuses unknown fields. Strings stay strings here; hex,
/// lengths, function names and KDF bounds are checked when converting to a
/// [`Keystore`], so that errors can name the field. Field
/// order is the order of the EIP's test vectors, which is the order written.
pub mod json {
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
}

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

/// The two key derivation functions of EIP-2335.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KdfKind {
    /// scrypt (RFC 7914); the deposit CLI's default.
    #[default]
    Scrypt,
    /// PBKDF2 with HMAC-SHA256 (RFC 2898).
    Pbkdf2,
}

impl KdfKind {
    /// The `crypto.kdf.function` value.
    pub fn function_name(self) -> &'static str {
        match self {
            Self::Scrypt => SCRYPT,
            Self::Pbkdf2 => PBKDF2,
        }
    }
}

/// Validated KDF cost parameters (without the salt); `dklen` is always 32.
///
/// Constructors refuse anything EIP-2335 does not define and anything above
/// the `MAX_*` limits of this module, so that a hostile keystore cannot make
/// a reader hang or run out of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams(Cost);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cost {
    Scrypt { log2_n: u8, r: u32, p: u32 },
    Pbkdf2 { c: u32 },
}

impl KdfParams {
    /// scrypt with `n = 2^18, r = 8, p = 1`, the deposit CLI defaults, readable
    /// by every tool.
    pub fn scrypt_default() -> Self {
        Self(Cost::Scrypt {
            log2_n: 18,
            r: 8,
            p: 1,
        })
    }

    /// PBKDF2-HMAC-SHA256 with `c = 2^18`, the deposit CLI defaults.
    pub fn pbkdf2_default() -> Self {
        Self(Cost::Pbkdf2 { c: 1 << 18 })
    }

    /// The defaults of `kind`.
    pub fn default_for(kind: KdfKind) -> Self {
        match kind {
            KdfKind::Scrypt => Self::scrypt_default(),
            KdfKind::Pbkdf2 => Self::pbkdf2_default(),
        }
    }

    /// scrypt with explicit parameters, e.g. cheap ones for tests.
    ///
    /// Keystores written with less than the defaults are refused by
    /// ethstaker-deposit-cli (it wants `n·r·p >= 2^20`).
    ///
    /// # Errors
    ///
    /// [`KdfParamsError`] if `n` is not a power of two in `2..=2^20`, `r` or
    /// `p` is zero, or the memory or work limit is exceeded.
    pub fn scrypt(n: u64, r: u64, p: u64) -> Result<Self, KdfParamsError> {
        if n < 2 || !n.is_power_of_two() {
            return Err(KdfParamsError::ScryptNNotPowerOfTwo { n });
        }
        let log2_n = n.trailing_zeros();
        if log2_n > MAX_SCRYPT_LOG2_N {
            return Err(KdfParamsError::ScryptNTooLarge { n });
        }
        if r == 0 {
            return Err(KdfParamsError::ScryptZero { name: "r" });
        }
        if p == 0 {
            return Err(KdfParamsError::ScryptZero { name: "p" });
        }
        let too_expensive = KdfParamsError::ScryptTooExpensive { n, r, p };
        let memory = n.checked_mul(r).and_then(|nr| nr.checked_mul(128));
        let work = n.checked_mul(r).and_then(|nr| nr.checked_mul(p));
        match (memory, work) {
            (Some(memory), Some(work))
                if memory <= MAX_SCRYPT_MEMORY_BYTES && work <= MAX_SCRYPT_WORK => {}
            _ => return Err(too_expensive),
        }
        // Both fit: r, p <= work <= 2^24 and log2_n <= 20.
        let (Ok(log2_n), Ok(r), Ok(p)) = (u8::try_from(log2_n), u32::try_from(r), u32::try_from(p))
        else {
            return Err(too_expensive);
        };
        Ok(Self(Cost::Scrypt { log2_n, r, p }))
    }

    /// PBKDF2-HMAC-SHA256 with an explicit iteration count.
    ///
    /// # Errors
    ///
    /// [`KdfParamsError::Pbkdf2CountOutOfRange`] unless `1 <= c <= 2^24`.
    pub fn pbkdf2(c: u64) -> Result<Self, KdfParamsError> {
        match u32::try_from(c) {
            Ok(c32) if c32 > 0 && c <= MAX_PBKDF2_C => Ok(Self(Cost::Pbkdf2 { c: c32 })),
            _ => Err(KdfParamsError::Pbkdf2CountOutOfRange { c }),
        }
    }

    /// Which function these parameters are for.
    pub fn kind(&self) -> KdfKind {
        match self.0 {
            Cost::Scrypt { .. } => KdfKind::Scrypt,
            Cost::Pbkdf2 { .. } => KdfKind::Pbkdf2,
        }
    }
}

/// KDF parameters together with a salt: everything needed to derive a key
/// from a password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SaltedKdf {
    params: KdfParams,
    salt: Vec<u8>,
}

impl SaltedKdf {
    /// Pairs `params` with a given salt (to reproduce a keystore).
    ///
    /// # Errors
    ///
    /// [`KdfParamsError::EmptySalt`] if `salt` is empty.
    pub fn new(params: KdfParams, salt: Vec<u8>) -> Result<Self, KdfParamsError> {
        if salt.is_empty() {
            return Err(KdfParamsError::EmptySalt);
        }
        Ok(Self { params, salt })
    }

    /// Pairs `params` with a fresh random [`SALT_BYTES`]-byte salt.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(params: KdfParams, rng: &mut R) -> Self {
        let mut salt = vec![0u8; SALT_BYTES];
        rng.fill_bytes(&mut salt);
        Self { params, salt }
    }

    /// The cost parameters.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }
}

/// A keystore password, normalised as EIP-2335 §"Password requirements"
/// demands: NFKD, then C0 (`U+0000..=U+001F`), DEL (`U+007F`) and C1
/// (`U+0080..=U+009F`) control codes removed, UTF-8 encoded. A trailing
/// newline from a password file is therefore harmless. Spaces are kept.
///
/// # Security
///
/// The normalised bytes are kept in a buffer sized exactly once and wiped on
/// drop; `Debug` prints `<redacted>`. The `&str` given to [`Password::new`] is
/// the caller's to wipe.
#[derive(Clone)]
pub struct Password {
    normalized: Zeroizing<String>,
}

impl Password {
    /// Normalises `password`.
    pub fn new(password: &str) -> Self {
        let kept = || password.nfkd().filter(|&c| !is_control(c));
        // Size the buffer first so that pushing never reallocates and leaves
        // an unwiped copy behind.
        let len = kept().map(char::len_utf8).sum();
        let mut normalized = Zeroizing::new(String::with_capacity(len));
        kept().for_each(|c| normalized.push(c));
        Self { normalized }
    }

    /// The normalised UTF-8 bytes that enter the KDF.
    pub fn expose_secret(&self) -> &[u8] {
        self.normalized.as_bytes()
    }

    fn same_as(&self, other: &Self) -> bool {
        ct_eq(self.expose_secret(), other.expose_secret())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Equality that does not stop at the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `DK`, split into the AES key `DK[0..16]` and the checksum key `DK[16..32]`.
///
/// # Security
///
/// Both halves are wiped on drop; there is no `Debug`.
struct DerivedKey {
    cipher_key: SecretBytes<16>,
    checksum_key: SecretBytes<16>,
}

impl DerivedKey {
    fn derive(password: &Password, kdf: &SaltedKdf) -> Result<Self, KdfParamsError> {
        let mut dk = SecretBytes::<DERIVED_KEY_BYTES>::zeroed();
        let pw = password.expose_secret();
        match kdf.params.0 {
            Cost::Scrypt { log2_n, r, p } => {
                let params = scrypt::Params::new(log2_n, r, p)
                    .map_err(|_| KdfParamsError::ScryptRejected)?;
                scrypt::scrypt(pw, &kdf.salt, &params, dk.expose_secret_mut())
                    .map_err(|_| KdfParamsError::ScryptRejected)?;
            }
            Cost::Pbkdf2 { c } => {
                pbkdf2::pbkdf2_hmac::<Sha256>(pw, &kdf.salt, c, dk.expose_secret_mut());
            }
        }
        let mut key = Self {
            cipher_key: SecretBytes::zeroed(),
            checksum_key: SecretBytes::zeroed(),
        };
        let halves = key
            .cipher_key
            .expose_secret_mut()
            .iter_mut()
            .chain(key.checksum_key.expose_secret_mut().iter_mut());
        for (dst, src) in halves.zip(dk.expose_secret()) {
            *dst = *src;
        }
        Ok(key)
    }

    /// `SHA256(DK[16..32] ‖ ciphertext)`.
    fn checksum(&self, ciphertext: &[u8; SECRET_KEY_BYTES]) -> [u8; CHECKSUM_BYTES] {
        let mut hasher = Sha256::new();
        hasher.update(self.checksum_key.expose_secret());
        hasher.update(ciphertext);
        hasher.finalize().into()
    }

    /// AES-128-CTR in place; encryption and decryption are the same.
    fn apply_cipher(&self, iv: &[u8; IV_BYTES], buf: &mut [u8; SECRET_KEY_BYTES]) {
        let mut cipher = Ctr128BE::<Aes128>::new(self.cipher_key.expose_secret().into(), iv.into());
        cipher.apply_keystream(buf);
    }
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
    if meta.path.is_empty() {
        return Err(KeystoreError::MissingPath);
    }
    if !is_eip2334_path(meta.path) {
        return Err(KeystoreError::InvalidPath {
            path: meta.path.to_owned(),
        });
    }
    check_secret_matches(secret, meta.pubkey)
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

/// How salts are chosen for keystores written under one password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaltMode {
    /// One random salt and one KDF run for all keystores, as
    /// ethstaker-deposit-cli does. Anyone with the password opens all of them
    /// anyway; a guesser gains nothing beyond attacking them as one.
    #[default]
    Shared,
    /// A fresh salt and a KDF run per keystore.
    PerKeystore,
}

/// Writes many keystores under one password.
///
/// Each keystore gets a fresh random IV and UUID. With [`SaltMode::Shared`]
/// the KDF runs once in [`KeystoreEncryptor::new`]; with
/// [`SaltMode::PerKeystore`] it runs in every [`KeystoreEncryptor::encrypt`].
///
/// # Security
///
/// Holds the derived key (shared mode) or the normalised password (per-keystore
/// mode), both wiped on drop. `Debug` shows only the mode and public
/// parameters.
pub struct KeystoreEncryptor {
    params: KdfParams,
    keys: EncryptorKeys,
}

enum EncryptorKeys {
    Shared { kdf: SaltedKdf, key: DerivedKey },
    PerKeystore { password: Password },
}

impl KeystoreEncryptor {
    /// Prepares to encrypt under `password`; in shared mode, draws the salt
    /// and runs the KDF.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::InvalidKdfParams`] if the KDF refuses its parameters.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(
        password: &Password,
        params: KdfParams,
        mode: SaltMode,
        rng: &mut R,
    ) -> Result<Self, KeystoreError> {
        let keys = match mode {
            SaltMode::Shared => {
                let kdf = SaltedKdf::random(params, rng);
                let key = DerivedKey::derive(password, &kdf)?;
                EncryptorKeys::Shared { kdf, key }
            }
            SaltMode::PerKeystore => EncryptorKeys::PerKeystore {
                password: password.clone(),
            },
        };
        Ok(Self { params, keys })
    }

    /// Encrypts one secret.
    ///
    /// # Errors
    ///
    /// As [`encrypt_with`].
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
        &self,
        secret: &SecretBytes<SECRET_KEY_BYTES>,
        meta: KeystoreMeta<'_>,
        rng: &mut R,
    ) -> Result<Keystore, KeystoreError> {
        check_before_writing(secret, &meta)?;
        let mut iv = [0u8; IV_BYTES];
        rng.fill_bytes(&mut iv);
        let mut uuid_bytes = [0u8; 16];
        rng.fill_bytes(&mut uuid_bytes);
        let uuid = uuid::Builder::from_random_bytes(uuid_bytes).into_uuid();
        match &self.keys {
            EncryptorKeys::Shared { kdf, key } => {
                Ok(seal(secret, kdf.clone(), key, iv, uuid, &meta))
            }
            EncryptorKeys::PerKeystore { password } => {
                let kdf = SaltedKdf::random(self.params, rng);
                let key = DerivedKey::derive(password, &kdf)?;
                Ok(seal(secret, kdf, &key, iv, uuid, &meta))
            }
        }
    }

    /// The salt mode.
    pub fn salt_mode(&self) -> SaltMode {
        match self.keys {
            EncryptorKeys::Shared { .. } => SaltMode::Shared,
            EncryptorKeys::PerKeystore { .. } => SaltMode::PerKeystore,
        }
    }

    /// The shared KDF parameters and salt, in [`SaltMode::Shared`].
    pub fn shared_kdf(&self) -> Option<&SaltedKdf> {
        match &self.keys {
            EncryptorKeys::Shared { kdf, .. } => Some(kdf),
            EncryptorKeys::PerKeystore { .. } => None,
        }
    }
}

impl fmt::Debug for KeystoreEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreEncryptor")
            .field("params", &self.params)
            .field("salt_mode", &self.salt_mode())
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// How many derived keys a [`KeystoreDecryptor`] keeps.
const MAX_CACHED_KEYS: usize = 16;

/// Decrypts many keystores, running the KDF once per distinct (password, KDF
/// parameters, salt): 1,000 keystores written with [`SaltMode::Shared`] cost
/// one KDF.
///
/// Only keys that passed a checksum are cached, at most 16, oldest evicted
/// first.
///
/// # Security
///
/// Holds normalised passwords and derived keys, all wiped on drop. `Debug`
/// shows only counts.
#[derive(Default)]
pub struct KeystoreDecryptor {
    cache: Vec<CachedKey>,
    kdf_runs: u64,
}

struct CachedKey {
    password: Password,
    kdf: SaltedKdf,
    key: DerivedKey,
}

impl KeystoreDecryptor {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decrypts `keystore`, reusing a cached derived key when possible.
    ///
    /// # Errors
    ///
    /// As [`decrypt`].
    pub fn decrypt(
        &mut self,
        keystore: &Keystore,
        password: &Password,
    ) -> Result<SecretBytes<SECRET_KEY_BYTES>, KeystoreError> {
        if let Some(hit) = self
            .cache
            .iter()
            .find(|c| c.kdf == keystore.kdf && c.password.same_as(password))
        {
            return open(keystore, &hit.key);
        }
        let key = DerivedKey::derive(password, &keystore.kdf)?;
        self.kdf_runs += 1;
        let result = open(keystore, &key);
        if !matches!(result, Err(KeystoreError::WrongPassword)) {
            if self.cache.len() >= MAX_CACHED_KEYS {
                self.cache.remove(0);
            }
            self.cache.push(CachedKey {
                password: password.clone(),
                kdf: keystore.kdf.clone(),
                key,
            });
        }
        result
    }

    /// How many times the KDF has run.
    pub fn kdf_runs(&self) -> u64 {
        self.kdf_runs
    }
}

impl fmt::Debug for KeystoreDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreDecryptor")
            .field("cached_keys", &self.cache.len())
            .field("kdf_runs", &self.kdf_runs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const PATH: &str = "m/12381/3600/0/0/0";

    /// An edit of a keystore's JSON.
    type Edit = fn(&mut serde_json::Value);

    fn cheap_scrypt() -> KdfParams {
        KdfParams::scrypt(16, 8, 1).unwrap()
    }

    fn key_pair(byte: u8) -> (SecretBytes<32>, PublicKey) {
        let mut raw = [0u8; 32];
        raw[31] = byte;
        let secret = SecretBytes::new(&mut raw);
        let pubkey = SecretKey::from_bytes(&secret).unwrap().public_key();
        (secret, pubkey)
    }

    fn meta(pubkey: &PublicKey) -> KeystoreMeta<'_> {
        KeystoreMeta {
            pubkey,
            path: PATH,
            description: "",
        }
    }

    fn sample(params: KdfParams) -> (Keystore, Password, SecretBytes<32>) {
        let mut rng = StdRng::seed_from_u64(1);
        let password = Password::new("correct horse");
        let (secret, pubkey) = key_pair(7);
        let enc = KeystoreEncryptor::new(&password, params, SaltMode::Shared, &mut rng).unwrap();
        let ks = enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap();
        (ks, password, secret)
    }

    /// Edits the JSON of `ks` and parses it again.
    fn reparse(
        ks: &Keystore,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Result<Keystore, KeystoreError> {
        let mut value: serde_json::Value =
            serde_json::from_str(&ks.to_json_string().unwrap()).unwrap();
        edit(&mut value);
        Keystore::from_json_str(&value.to_string())
    }

    #[test]
    fn password_normalisation() {
        let vector = Password::new("𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑");
        assert_eq!(
            hex::encode(vector.expose_secret()),
            "7465737470617373776f7264f09f9491"
        );
        assert_eq!(Password::new("pass\n").expose_secret(), b"pass");
        assert_eq!(Password::new("pa\u{85}ss").expose_secret(), b"pass");
        assert_eq!(
            Password::new("a b\u{7f}\u{0}\u{9f}").expose_secret(),
            b"a b"
        );
        assert_eq!(format!("{vector:?}"), "Password(<redacted>)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn normalised_passwords_have_no_control_codes(s in any::<String>()) {
            let pw = Password::new(&s);
            let text = std::str::from_utf8(pw.expose_secret()).unwrap();
            prop_assert!(!text.chars().any(is_control));
        }
    }

    #[test]
    fn round_trip_with_cheap_params() {
        for params in [cheap_scrypt(), KdfParams::pbkdf2(16).unwrap()] {
            let (ks, password, secret) = sample(params);
            let reread = Keystore::from_json_str(&ks.to_json_string().unwrap()).unwrap();
            assert_eq!(reread, ks);
            assert_eq!(reread.kdf().params().kind(), params.kind());
            assert_eq!(decrypt(&reread, &password).unwrap(), secret);
        }
    }

    #[test]
    fn wrong_password_and_tampering_fail_the_checksum() {
        let (ks, password, _) = sample(cheap_scrypt());
        let err = decrypt(&ks, &Password::new("wrong")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword));
        assert_eq!(
            err.to_string(),
            "wrong password: the keystore checksum does not match"
        );

        let mut tampered = ks.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(
            decrypt(&tampered, &password),
            Err(KeystoreError::WrongPassword)
        ));
        let mut tampered = ks.clone();
        tampered.checksum[31] ^= 1;
        assert!(matches!(
            decrypt(&tampered, &password),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn pubkey_field_is_checked_after_decryption() {
        let (ks, password, _) = sample(cheap_scrypt());
        let (_, other) = key_pair(8);
        let swapped = reparse(&ks, |v| v["pubkey"] = other.to_hex().into()).unwrap();
        assert!(matches!(
            decrypt(&swapped, &password),
            Err(KeystoreError::PubkeyMismatch { .. })
        ));
    }

    #[test]
    fn shared_salt_is_one_salt_with_distinct_ivs_and_uuids() {
        let mut rng = StdRng::seed_from_u64(2);
        let password = Password::new("pw");
        let enc =
            KeystoreEncryptor::new(&password, cheap_scrypt(), SaltMode::Shared, &mut rng).unwrap();
        let keystores: Vec<_> = (1..=5u8)
            .map(|i| {
                let (secret, pubkey) = key_pair(i);
                enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap()
            })
            .collect();
        let shared = enc.shared_kdf().unwrap();
        assert!(keystores.iter().all(|k| k.kdf() == shared));
        assert_eq!(shared.salt().len(), SALT_BYTES);
        let ivs: std::collections::HashSet<_> = keystores.iter().map(|k| *k.iv()).collect();
        let uuids: std::collections::HashSet<_> = keystores.iter().map(|k| k.uuid()).collect();
        assert_eq!((ivs.len(), uuids.len()), (5, 5));
        assert!(keystores.iter().all(|k| k.uuid().get_version_num() == 4));

        let mut dec = KeystoreDecryptor::new();
        for k in &keystores {
            dec.decrypt(k, &password).unwrap();
        }
        assert_eq!(dec.kdf_runs(), 1);
        assert!(matches!(
            dec.decrypt(&keystores[0], &Password::new("no")),
            Err(KeystoreError::WrongPassword)
        ));
        assert_eq!(dec.kdf_runs(), 2);
        assert!(!format!("{enc:?} {dec:?}").contains("salt: ["));
    }

    #[test]
    fn per_keystore_salts_are_distinct() {
        let mut rng = StdRng::seed_from_u64(3);
        let password = Password::new("pw");
        let enc =
            KeystoreEncryptor::new(&password, cheap_scrypt(), SaltMode::PerKeystore, &mut rng)
                .unwrap();
        assert!(enc.shared_kdf().is_none());
        let keystores: Vec<_> = (1..=3u8)
            .map(|i| {
                let (secret, pubkey) = key_pair(i);
                enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap()
            })
            .collect();
        let salts: std::collections::HashSet<_> =
            keystores.iter().map(|k| k.kdf().salt().to_vec()).collect();
        assert_eq!(salts.len(), 3);
        let mut dec = KeystoreDecryptor::new();
        for k in &keystores {
            dec.decrypt(k, &password).unwrap();
        }
        assert_eq!(dec.kdf_runs(), 3);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let (ks, _, _) = sample(cheap_scrypt());
        for edit in [
            (|v: &mut serde_json::Value| v["name"] = "x".into()) as Edit,
            |v| v["crypto"]["kdf"]["params"]["extra"] = 1.into(),
            |v| v["crypto"]["checksum"]["params"]["x"] = 1.into(),
            |v| v["crypto"]["cipher"]["params"]["x"] = 1.into(),
        ] {
            assert!(matches!(
                reparse(&ks, edit),
                Err(KeystoreError::Json { .. })
            ));
        }
    }

    #[test]
    fn other_versions_and_functions_are_rejected() {
        let (ks, _, _) = sample(cheap_scrypt());
        let err = reparse(&ks, |v| v["version"] = 3.into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::UnsupportedVersion { version: 3 }
        ));
        // An Ethereum 1 (version 3) keystore has another shape altogether.
        let v3 = r#"{"crypto":{"cipher":"aes-128-ctr","kdf":"scrypt"},"id":"x","version":3}"#;
        assert!(matches!(
            Keystore::from_json_str(v3),
            Err(KeystoreError::UnsupportedVersion { version: 3 })
        ));

        let err = reparse(&ks, |v| {
            v["crypto"]["cipher"]["function"] = "aes-256-ctr".into()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::UnsupportedFunction {
                module: "cipher",
                ..
            }
        ));
        let err =
            reparse(&ks, |v| v["crypto"]["checksum"]["function"] = "sha3".into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::UnsupportedFunction {
                module: "checksum",
                ..
            }
        ));
        let err = reparse(
            &ks,
            |v| {
                v["crypto"]["kdf"] =
                    serde_json::json!({"function": "argon2id", "params": {"m": 1}, "message": ""})
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::UnsupportedFunction { module: "kdf", .. }
        ));
        let err = reparse(&ks, |v| v["crypto"]["kdf"]["function"] = "pbkdf2".into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::InvalidField {
                field: "crypto.kdf.params",
                ..
            }
        ));
    }

    #[test]
    fn malformed_fields_are_named() {
        let (ks, _, _) = sample(cheap_scrypt());
        let cases: [(Edit, &str); 6] = [
            (
                |v| v["crypto"]["cipher"]["params"]["iv"] = "00".repeat(15).into(),
                "crypto.cipher.params.iv",
            ),
            (
                |v| v["crypto"]["cipher"]["message"] = "00".repeat(31).into(),
                "crypto.cipher.message",
            ),
            (
                |v| v["crypto"]["checksum"]["message"] = "zz".repeat(32).into(),
                "crypto.checksum.message",
            ),
            (
                |v| v["crypto"]["kdf"]["params"]["salt"] = "abc".into(),
                "crypto.kdf.params.salt",
            ),
            (
                |v| v["pubkey"] = format!("0x{}", "00".repeat(48)).into(),
                "pubkey",
            ),
            (
                |v| v["crypto"]["kdf"]["params"]["salt"] = "0xab".into(),
                "crypto.kdf.params.salt",
            ),
        ];
        for (edit, name) in cases {
            match reparse(&ks, edit) {
                Err(KeystoreError::InvalidHex { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let err = reparse(&ks, |v| v["pubkey"] = "00".repeat(48).into()).unwrap_err();
        assert!(matches!(err, KeystoreError::InvalidPubkey { .. }));
        let err = reparse(&ks, |v| v["uuid"] = "not-a-uuid".into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::InvalidField { field: "uuid", .. }
        ));
        let err = reparse(&ks, |v| v["uuid"] = ks.uuid().simple().to_string().into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::InvalidField { field: "uuid", .. }
        ));
        let err = reparse(&ks, |v| v["crypto"]["kdf"]["message"] = "x".into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::InvalidField {
                field: "crypto.kdf.message",
                ..
            }
        ));
        let err = reparse(&ks, |v| v["path"] = "m/12381'/3600".into()).unwrap_err();
        assert!(matches!(err, KeystoreError::InvalidPath { .. }));
        let err = reparse(&ks, |v| v["crypto"]["kdf"]["params"]["salt"] = "".into()).unwrap_err();
        assert!(matches!(
            err,
            KeystoreError::InvalidKdfParams {
                source: KdfParamsError::EmptySalt
            }
        ));
    }

    #[test]
    fn absurd_kdf_params_are_refused() {
        let (ks, _, _) = sample(cheap_scrypt());
        let refused = |edit: Edit| {
            matches!(
                reparse(&ks, edit),
                Err(KeystoreError::InvalidKdfParams { .. })
            )
        };
        assert!(refused(
            |v| v["crypto"]["kdf"]["params"]["n"] = (1u64 << 21).into()
        ));
        assert!(refused(|v| v["crypto"]["kdf"]["params"]["n"] = 1000.into()));
        assert!(refused(|v| v["crypto"]["kdf"]["params"]["r"] = 0.into()));
        assert!(refused(
            |v| v["crypto"]["kdf"]["params"]["p"] = (1u64 << 40).into()
        ));
        assert!(refused(
            |v| v["crypto"]["kdf"]["params"]["dklen"] = 64.into()
        ));
        assert!(KdfParams::scrypt(1 << 20, 8, 1).is_ok());
        assert!(KdfParams::scrypt(1 << 20, 16, 1).is_err());
        assert!(KdfParams::scrypt(1 << 18, 8, 9).is_err());
        assert_eq!(
            KdfParams::pbkdf2(0),
            Err(KdfParamsError::Pbkdf2CountOutOfRange { c: 0 })
        );
        assert!(KdfParams::pbkdf2(1 << 24).is_ok());
        assert!(KdfParams::pbkdf2((1 << 24) + 1).is_err());
        assert_eq!(
            KdfParams::default_for(KdfKind::Scrypt),
            KdfParams::scrypt(DEFAULT_SCRYPT_N, DEFAULT_SCRYPT_R, DEFAULT_SCRYPT_P).unwrap()
        );
        assert_eq!(
            KdfParams::default_for(KdfKind::Pbkdf2),
            KdfParams::pbkdf2(DEFAULT_PBKDF2_C).unwrap()
        );
    }

    #[test]
    fn empty_or_malformed_path_is_refused_on_write() {
        let mut rng = StdRng::seed_from_u64(4);
        let password = Password::new("pw");
        let (secret, pubkey) = key_pair(9);
        let enc =
            KeystoreEncryptor::new(&password, cheap_scrypt(), SaltMode::Shared, &mut rng).unwrap();
        let no_path = KeystoreMeta {
            pubkey: &pubkey,
            path: "",
            description: "",
        };
        assert!(matches!(
            enc.encrypt(&secret, no_path, &mut rng),
            Err(KeystoreError::MissingPath)
        ));
        let bad_path = KeystoreMeta {
            pubkey: &pubkey,
            path: "m/1",
            description: "",
        };
        assert!(matches!(
            enc.encrypt(&secret, bad_path, &mut rng),
            Err(KeystoreError::InvalidPath { .. })
        ));
        let (_, other) = key_pair(10);
        let wrong_key = KeystoreMeta {
            pubkey: &other,
            path: PATH,
            description: "",
        };
        assert!(matches!(
            enc.encrypt(&secret, wrong_key, &mut rng),
            Err(KeystoreError::PubkeyMismatch { .. })
        ));

        // A keystore read with an empty path (allowed by EIP-2335) is not
        // written back out.
        let ks = enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap();
        let read = reparse(&ks, |v| v["path"] = "".into()).unwrap();
        assert!(matches!(
            read.to_json_string(),
            Err(KeystoreError::MissingPath)
        ));
    }
}
