//! `encrypted_private_key.json`: the password-encrypted operator key that
//! SSV nodes and ssv-dkg operators keep.
//!
//! The file is the `crypto` object of an EIP-2335 (version 4) keystore with
//! nothing around it, as wealdtech's `go-eth2-wallet-encryptor-keystorev4`
//! writes it: `{"checksum": …, "cipher": …, "kdf": …}`, by default PBKDF2
//! (HMAC-SHA256, `c = 2^18`, `dklen = 32`) and AES-128-CTR. The encrypted
//! secret is not a BLS scalar but the operator's RSA key as a PKCS#1 PEM
//! (`-----BEGIN RSA PRIVATE KEY-----`), of any length. The rules are those of
//! EIP-2335:
//!
//! - `DK = KDF(NFKD(password) without control codes, salt)`, 32 bytes;
//! - `checksum = SHA256(DK[16..32] ‖ cipher.message)`;
//! - `plaintext = AES-128-CTR(key = DK[0..16], iv)(cipher.message)`.
//!
//! Sources: ssvlabs/ssv-dkg `pkgs/crypto` `ReadEncryptedPrivateKey` /
//! `EncryptPrivateKey`; ssvlabs/ssv `cli/generate_operator_keys.go`;
//! wealdtech/go-eth2-wallet-encryptor-keystorev4 `decrypt.go`,
//! `encryptor.go`, `norm.go`.
//!
//! The serde schema of the three modules is the one of
//! [`crate::eth::keystore::json`], reused as is. Fields beside them (some SSV
//! node versions add the public key) are ignored.
//!
//! # What we cannot wipe
//!
//! The derived key and the plaintext live in zeroizing buffers; the internal
//! state of the PBKDF2, scrypt, SHA-256 and AES crates does not.

use aes::Aes128;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::SecretBytes;
use crate::eth::keystore::json::{
    ChecksumModule, CipherModule, CipherParams, EmptyParams, KdfModule, KdfModuleParams,
    Pbkdf2Params,
};
use crate::eth::keystore::{KdfParams, KdfParamsError, Password};

/// PBKDF2 iteration count of the SSV tools (wealdtech's default cost 2^18).
pub const DEFAULT_PBKDF2_C: u64 = 1 << 18;

/// The file: the three modules of a keystore's `crypto` object, written in
/// the order Go's JSON encoder sorts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedKeyJson {
    /// Password check.
    pub checksum: ChecksumModule,
    /// Encryption of the PEM.
    pub cipher: CipherModule,
    /// Password-based key derivation.
    pub kdf: KdfModule,
}

/// Why an `encrypted_private_key.json` could not be read or decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptedKeyError {
    /// Not JSON of the expected shape.
    #[error("not an encrypted operator key (a keystore v4 crypto object)")]
    Json(#[source] serde_json::Error),
    /// A function other than pbkdf2/scrypt, sha256 and aes-128-ctr.
    #[error("unsupported {module} function {function:?}, expected {expected}")]
    UnsupportedFunction {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// The function found.
        function: String,
        /// What is supported.
        expected: &'static str,
    },
    /// KDF parameters that are unsupported or too costly.
    #[error("unsupported or unsafe kdf parameters")]
    Kdf(#[from] KdfParamsError),
    /// A hex field that does not decode, or has the wrong length.
    #[error("invalid hex in field {field}")]
    Hex {
        /// Dotted path of the field.
        field: &'static str,
    },
    /// The checksum does not match: the wrong password, or a corrupted file.
    #[error("wrong password: the checksum of the encrypted operator key does not match")]
    WrongPassword,
}

/// Decrypts the file with `password`, returning the plaintext (the PEM).
///
/// # Errors
///
/// [`EncryptedKeyError`] naming the field or rule, and
/// [`EncryptedKeyError::WrongPassword`] when the checksum does not match.
pub fn decrypt(text: &str, password: &Password) -> Result<Zeroizing<Vec<u8>>, EncryptedKeyError> {
    let file: EncryptedKeyJson = serde_json::from_str(text).map_err(EncryptedKeyError::Json)?;
    require_function("checksum", &file.checksum.function, "sha256")?;
    require_function("cipher", &file.cipher.function, "aes-128-ctr")?;
    let key = derive(&file.kdf, password)?;
    let ciphertext = hex::decode(&file.cipher.message).map_err(|_| EncryptedKeyError::Hex {
        field: "cipher.message",
    })?;
    let expected: [u8; 32] = decode_fixed(&file.checksum.message, "checksum.message")?;
    let iv: [u8; 16] = decode_fixed(&file.cipher.params.iv, "cipher.params.iv")?;
    let checksum = checksum(&key, &ciphertext);
    if !ct_eq(&checksum, &expected) {
        return Err(EncryptedKeyError::WrongPassword);
    }
    let mut plaintext = Zeroizing::new(ciphertext);
    apply_cipher(&key, &iv, &mut plaintext);
    Ok(plaintext)
}

/// Encrypts `plaintext` (an operator key PEM) as SSV's tools do: PBKDF2 with
/// `c` iterations ([`DEFAULT_PBKDF2_C`] for a real key), a random 32-byte
/// salt and IV, AES-128-CTR. Returns the JSON text.
///
/// # Errors
///
/// [`EncryptedKeyError::Kdf`] for an iteration count out of range.
pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
    plaintext: &[u8],
    password: &Password,
    c: u64,
    rng: &mut R,
) -> Result<String, EncryptedKeyError> {
    KdfParams::pbkdf2(c)?;
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);
    let kdf = KdfModule {
        function: "pbkdf2".into(),
        params: KdfModuleParams::Pbkdf2(Pbkdf2Params {
            dklen: 32,
            c,
            prf: "hmac-sha256".into(),
            salt: hex::encode(salt),
        }),
        message: String::new(),
    };
    let key = derive(&kdf, password)?;
    let mut ciphertext = plaintext.to_vec();
    apply_cipher(&key, &iv, &mut ciphertext);
    let file = EncryptedKeyJson {
        checksum: ChecksumModule {
            function: "sha256".into(),
            params: EmptyParams {},
            message: hex::encode(checksum(&key, &ciphertext)),
        },
        cipher: CipherModule {
            function: "aes-128-ctr".into(),
            params: CipherParams {
                iv: hex::encode(iv),
            },
            message: hex::encode(&ciphertext),
        },
        kdf,
    };
    serde_json::to_string(&file).map_err(EncryptedKeyError::Json)
}

fn require_function(
    module: &'static str,
    function: &str,
    expected: &'static str,
) -> Result<(), EncryptedKeyError> {
    if function == expected {
        Ok(())
    } else {
        Err(EncryptedKeyError::UnsupportedFunction {
            module,
            function: function.to_owned(),
            expected,
        })
    }
}

fn decode_fixed<const N: usize>(
    text: &str,
    field: &'static str,
) -> Result<[u8; N], EncryptedKeyError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or(EncryptedKeyError::Hex { field })
}

/// `DK`, 32 bytes, wiped on drop.
fn derive(kdf: &KdfModule, password: &Password) -> Result<SecretBytes<32>, EncryptedKeyError> {
    let mut dk = SecretBytes::<32>::zeroed();
    let pw = password.expose_secret();
    match (&kdf.function[..], &kdf.params) {
        ("pbkdf2", KdfModuleParams::Pbkdf2(p)) => {
            if p.prf != "hmac-sha256" {
                return Err(KdfParamsError::UnsupportedPrf { prf: p.prf.clone() }.into());
            }
            if p.dklen != 32 {
                return Err(KdfParamsError::UnsupportedDklen { dklen: p.dklen }.into());
            }
            KdfParams::pbkdf2(p.c)?;
            let c =
                u32::try_from(p.c).map_err(|_| KdfParamsError::Pbkdf2CountOutOfRange { c: p.c })?;
            let salt = hex::decode(&p.salt).map_err(|_| EncryptedKeyError::Hex {
                field: "kdf.params.salt",
            })?;
            pbkdf2::pbkdf2_hmac::<Sha256>(pw, &salt, c, dk.expose_secret_mut());
        }
        ("scrypt", KdfModuleParams::Scrypt(p)) => {
            if p.dklen != 32 {
                return Err(KdfParamsError::UnsupportedDklen { dklen: p.dklen }.into());
            }
            // Validated first: bounded memory and work.
            KdfParams::scrypt(p.n, p.r, p.p)?;
            let (Ok(log2_n), Ok(r), Ok(pp)) = (
                u8::try_from(p.n.trailing_zeros()),
                u32::try_from(p.r),
                u32::try_from(p.p),
            ) else {
                return Err(KdfParamsError::ScryptRejected.into());
            };
            let params =
                scrypt::Params::new(log2_n, r, pp).map_err(|_| KdfParamsError::ScryptRejected)?;
            let salt = hex::decode(&p.salt).map_err(|_| EncryptedKeyError::Hex {
                field: "kdf.params.salt",
            })?;
            scrypt::scrypt(pw, &salt, &params, dk.expose_secret_mut())
                .map_err(|_| KdfParamsError::ScryptRejected)?;
        }
        (function, _) => {
            return Err(EncryptedKeyError::UnsupportedFunction {
                module: "kdf",
                function: function.to_owned(),
                expected: "pbkdf2 or scrypt",
            });
        }
    }
    Ok(dk)
}

/// `SHA256(DK[16..32] ‖ ciphertext)`.
fn checksum(key: &SecretBytes<32>, ciphertext: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key.expose_secret().get(16..).unwrap_or_default());
    hasher.update(ciphertext);
    hasher.finalize().into()
}

/// AES-128-CTR with `DK[0..16]`, in place.
fn apply_cipher(key: &SecretBytes<32>, iv: &[u8; 16], buf: &mut [u8]) {
    let mut aes_key = SecretBytes::<16>::zeroed();
    for (dst, src) in aes_key
        .expose_secret_mut()
        .iter_mut()
        .zip(key.expose_secret())
    {
        *dst = *src;
    }
    let mut cipher = Ctr128BE::<Aes128>::new(aes_key.expose_secret().into(), iv.into());
    cipher.apply_keystream(buf);
}

/// Equality that does not stop at the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let secret =
            b"-----BEGIN RSA PRIVATE KEY-----\nnot really a key\n-----END RSA PRIVATE KEY-----\n";
        let text = encrypt(secret, &Password::new("12345678"), 16, &mut rng).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["checksum", "cipher", "kdf"]);
        assert_eq!(value["kdf"]["function"], "pbkdf2");
        assert_eq!(value["cipher"]["function"], "aes-128-ctr");
        // A password file's trailing newline is a control code: dropped, as
        // wealdtech's normPassphrase drops it.
        let plain = decrypt(&text, &Password::new("12345678\n")).unwrap();
        assert_eq!(plain.as_slice(), secret);
        assert!(matches!(
            decrypt(&text, &Password::new("1234567")).unwrap_err(),
            EncryptedKeyError::WrongPassword
        ));
    }

    #[test]
    fn extra_top_level_fields_are_ignored_and_bad_functions_named() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let text = encrypt(b"pem", &Password::new("pw"), 4, &mut rng).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["pubKey"] = "LS0t".into();
        let with_extra = value.to_string();
        assert_eq!(
            decrypt(&with_extra, &Password::new("pw"))
                .unwrap()
                .as_slice(),
            b"pem"
        );
        value["cipher"]["function"] = "aes-256-gcm".into();
        let err = decrypt(&value.to_string(), &Password::new("pw")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported cipher function \"aes-256-gcm\", expected aes-128-ctr"
        );
    }
}
