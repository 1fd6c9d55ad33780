//! Key derivation: the two EIP-2335 KDFs with bounded cost, salts, and
//! passwords normalised as the EIP requires.

use std::fmt;

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::*;

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
pub struct KdfParams(pub(super) Cost);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Cost {
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
    pub(super) params: KdfParams,
    pub(super) salt: Vec<u8>,
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
    pub(super) normalized: Zeroizing<String>,
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

    pub(super) fn same_as(&self, other: &Self) -> bool {
        ct_eq(self.expose_secret(), other.expose_secret())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

pub(super) fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Equality that does not stop at the first differing byte.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `DK`, split into the AES key `DK[0..16]` and the checksum key `DK[16..32]`.
///
/// # Security
///
/// Both halves are wiped on drop; there is no `Debug`.
pub(super) struct DerivedKey {
    pub(super) cipher_key: SecretBytes<16>,
    pub(super) checksum_key: SecretBytes<16>,
}

impl DerivedKey {
    pub(super) fn derive(password: &Password, kdf: &SaltedKdf) -> Result<Self, KdfParamsError> {
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
    pub(super) fn checksum(&self, ciphertext: &[u8; SECRET_KEY_BYTES]) -> [u8; CHECKSUM_BYTES] {
        let mut hasher = Sha256::new();
        hasher.update(self.checksum_key.expose_secret());
        hasher.update(ciphertext);
        hasher.finalize().into()
    }

    /// AES-128-CTR in place; encryption and decryption are the same.
    pub(super) fn apply_cipher(&self, iv: &[u8; IV_BYTES], buf: &mut [u8; SECRET_KEY_BYTES]) {
        let mut cipher = Ctr128BE::<Aes128>::new(self.cipher_key.expose_secret().into(), iv.into());
        cipher.apply_keystream(buf);
    }
}
