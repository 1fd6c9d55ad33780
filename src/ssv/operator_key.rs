//! SSV operator keys: RSA-2048, and the encryption of a key share to one.
//!
//! # The registered key
//!
//! An SSV operator registers its public key on chain as a string: base64
//! (standard alphabet, padded) of a PEM block labelled `RSA PUBLIC KEY` whose
//! body is, despite the label, a SubjectPublicKeyInfo (`x509.MarshalPKIXPublicKey`
//! in Go), in 64-column lines with a trailing newline. That string is what
//! `keyshares.json` carries as `operatorKey`, and the SSV web app and SDK
//! compare it with the registered one character for character, so
//! [`OperatorKey`] keeps it verbatim and only derives the RSA key from it.
//! SSV operator keys are RSA-2048 (`rsa.GenerateKey(rand.Reader, 2048)` in
//! every SSV tool); anything else is refused.
//!
//! # The ciphertext
//!
//! Each operator's slot in `sharesData` is RSA PKCS#1 v1.5 encryption, under
//! the operator's key, of its share secret written as ASCII hex: the 32-byte
//! big-endian scalar as 64 lowercase hex characters without `0x`, which is
//! herumi's `SerializeToHexStr` that ssv-dkg encrypts. A 2048-bit key gives
//! exactly 256 bytes. An SSV node decrypts its slot, parses the hex as a BLS
//! secret key and requires its public key to be the slot's share public key;
//! otherwise the validator is malformed for it. ssv-keys encrypts the same
//! hex with a `0x` prefix, which SSV nodes strip, so the reader here accepts
//! both and says which it found.
//!
//! Sources: ssvlabs/ssv `utils/rsaencryption/rsa_encryption.go`
//! (`GenerateKeys`, `DecodeKey`, `ExtractPublicKey`), ssvlabs/ssv
//! `operator/validator/event_handler.go` `validatorAddedEventToShare` of
//! earlier releases (decrypt, `SetHexString`, compare with the share public
//! key; current releases do it in `ekm`), ssvlabs/ssv-dkg `pkgs/crypto`
//! (`ParseRSAPubkey`, `EncodePublicKey`) and `pkgs/dkg/drand.go` (what is
//! encrypted), ssvlabs/ssv-sdk `operatorPublicKey.validator.ts`.
//!
//! # RUSTSEC-2023-0071
//!
//! The `rsa` crate's private-key operations are not constant-time (the
//! "Marvin" timing side channel, RUSTSEC-2023-0071, unfixed in 0.9). dvkg
//! encrypts with public keys only on every path that runs a ceremony. It
//! decrypts in exactly one place, [`OperatorPrivateKey::decrypt_share`],
//! used when an operator checks its own slot (`dvkg verify --keyshares
//! --ssv-operator-private-key`) and by the demo and tests on their own
//! throw-away keys. That is acceptable: the decryption runs locally and
//! offline, on the operator's own key and a handful of ciphertexts that the
//! operator chose to check, and its timing is observable by no one else.
//! Marvin needs an oracle, a remote party that submits many chosen
//! ciphertexts and measures each decryption; dvkg answers no one with a
//! decryption. Blinding is used all the same.

use std::fmt;

use base64ct::{Base64, Encoding};
use rand::{CryptoRng, RngCore};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use crate::crypto::{BlsError, SECRET_KEY_BYTES, SecretBytes, SecretKey};
use crate::eth::keystore::Password;

use super::encrypted_key::{self, EncryptedKeyError};

/// The only RSA modulus size SSV operator keys have.
pub const RSA_MODULUS_BITS: usize = 2048;
/// Length of one encrypted share: the modulus size of RSA-2048.
pub const CIPHERTEXT_BYTES: usize = RSA_MODULUS_BITS / 8;
/// Length of the plaintext: the share as bare lowercase hex.
pub const PLAINTEXT_HEX_CHARS: usize = 2 * SECRET_KEY_BYTES;

const RSA_PUBLIC_KEY_LABEL: &str = "RSA PUBLIC KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
const RSA_PRIVATE_KEY_LABEL: &str = "RSA PRIVATE KEY";
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// Why a string or file is not a usable SSV operator public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorKeyError {
    /// The registered form is base64; this is not.
    #[error("not base64 (an SSV operator key is base64 of a PEM block)")]
    Base64,
    /// Not a PEM block (after base64 decoding, for the registered form).
    #[error("not a PEM block: {reason}")]
    Pem {
        /// What the PEM parser said.
        reason: String,
    },
    /// A PEM block of another kind.
    #[error("the PEM block is labelled {label:?}, expected \"RSA PUBLIC KEY\" or \"PUBLIC KEY\"")]
    Label {
        /// The label found.
        label: String,
    },
    /// Neither a SubjectPublicKeyInfo nor a PKCS#1 RSA public key.
    #[error("the PEM body is not an RSA public key (neither SubjectPublicKeyInfo nor PKCS#1)")]
    NotRsa,
    /// An RSA key of another size.
    #[error("the key is RSA-{bits}, but SSV operator keys must be RSA-2048")]
    WrongSize {
        /// The modulus size found.
        bits: usize,
    },
}

/// An SSV operator's public key: the string as registered, and the RSA-2048
/// key it encodes.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey {
    registered: String,
    key: RsaPublicKey,
}

impl OperatorKey {
    /// Parses the registered form, `operatorKey` in `keyshares.json`: base64
    /// of a PEM. The string is kept exactly as given (surrounding whitespace
    /// aside), since SSV's tools compare it as a string.
    ///
    /// # Errors
    ///
    /// An [`OperatorKeyError`] naming the first rule broken; a key that is
    /// not RSA-2048 is [`OperatorKeyError::WrongSize`].
    pub fn from_registered(text: &str) -> Result<Self, OperatorKeyError> {
        let registered = text.trim();
        let pem = Base64::decode_vec(registered).map_err(|_| OperatorKeyError::Base64)?;
        let key = public_key_from_pem(&pem)?;
        Ok(Self {
            registered: registered.to_owned(),
            key,
        })
    }

    /// Parses a PEM file (`RSA PUBLIC KEY` with a SubjectPublicKeyInfo or
    /// PKCS#1 body, or `PUBLIC KEY`). Its registered form is SSV's encoding
    /// of the key ([`OperatorKey::canonical_registered`]), the string that
    /// SSV's own tools derive from it.
    ///
    /// # Errors
    ///
    /// As [`OperatorKey::from_registered`].
    pub fn from_pem(text: &str) -> Result<Self, OperatorKeyError> {
        let key = public_key_from_pem(text.as_bytes())?;
        let registered = canonical_registered(&key)?;
        Ok(Self { registered, key })
    }

    /// Either form: a PEM when the text starts with `-----BEGIN`, the
    /// registered base64 otherwise.
    ///
    /// # Errors
    ///
    /// As [`OperatorKey::from_registered`].
    pub fn parse(text: &str) -> Result<Self, OperatorKeyError> {
        if text.trim_start().starts_with("-----BEGIN") {
            Self::from_pem(text)
        } else {
            Self::from_registered(text)
        }
    }

    /// The registered string, as given.
    pub fn registered(&self) -> &str {
        &self.registered
    }

    /// SSV's encoding of this key: base64 of `-----BEGIN RSA PUBLIC
    /// KEY-----`, the SubjectPublicKeyInfo in 64-column base64 lines, and
    /// `-----END RSA PUBLIC KEY-----`, each line ending in `\n` (Go's
    /// `pem.EncodeToMemory`).
    pub fn canonical_registered(&self) -> String {
        // The key was parsed from DER, so it encodes again.
        canonical_registered(&self.key).unwrap_or_default()
    }

    /// Whether the registered string is SSV's own encoding of the key.
    pub fn is_canonical(&self) -> bool {
        self.registered == self.canonical_registered()
    }

    /// Encrypts a share to this operator: RSA PKCS#1 v1.5 of the share's 64
    /// lowercase hex characters.
    ///
    /// # Errors
    ///
    /// None for an RSA-2048 key; the `rsa` crate's error is kept for form.
    pub fn encrypt_share<R: RngCore + CryptoRng>(
        &self,
        share: &SecretKey,
        rng: &mut R,
    ) -> Result<Ciphertext, rsa::Error> {
        let plaintext = share_plaintext(&share.to_bytes());
        let bytes = self
            .key
            .encrypt(rng, Pkcs1v15Encrypt, plaintext.as_slice())?;
        Ciphertext::from_slice(&bytes).ok_or(rsa::Error::Internal)
    }

    /// Whether `ciphertext`, read as a big-endian integer, is below the
    /// modulus: every ciphertext made under this key is, and an SSV node
    /// cannot decrypt one that is not.
    pub fn fits(&self, ciphertext: &Ciphertext) -> bool {
        BigUint::from_bytes_be(ciphertext.as_bytes()) < *self.key.n()
    }

    /// Whether `other` encodes the same RSA key, however it is written.
    pub fn same_key(&self, other: &Self) -> bool {
        self.key == other.key
    }

    /// Whether `private` is this key's private half.
    pub fn matches(&self, private: &OperatorPrivateKey) -> bool {
        self.key.n() == private.0.n() && self.key.e() == private.0.e()
    }
}

impl fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start: String = self.registered.chars().take(16).collect();
        write!(f, "OperatorKey({start}…)")
    }
}

/// Base64 of Go's `pem.EncodeToMemory` of the SubjectPublicKeyInfo under
/// the label `RSA PUBLIC KEY`.
fn canonical_registered(key: &RsaPublicKey) -> Result<String, OperatorKeyError> {
    let der = key
        .to_public_key_der()
        .map_err(|_| OperatorKeyError::NotRsa)?;
    let body = Base64::encode_string(der.as_bytes());
    let mut pem = format!("-----BEGIN {RSA_PUBLIC_KEY_LABEL}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {RSA_PUBLIC_KEY_LABEL}-----\n"));
    Ok(Base64::encode_string(pem.as_bytes()))
}

fn public_key_from_pem(pem: &[u8]) -> Result<RsaPublicKey, OperatorKeyError> {
    let (label, der) = decode_pem(pem).map_err(|reason| OperatorKeyError::Pem { reason })?;
    if label != RSA_PUBLIC_KEY_LABEL && label != PUBLIC_KEY_LABEL {
        return Err(OperatorKeyError::Label { label });
    }
    // SSV writes a SubjectPublicKeyInfo under the PKCS#1 label; accept the
    // PKCS#1 body that the label promises as well.
    let key = RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| RsaPublicKey::from_pkcs1_der(&der))
        .map_err(|_| OperatorKeyError::NotRsa)?;
    let bits = key.n().bits();
    if bits != RSA_MODULUS_BITS {
        return Err(OperatorKeyError::WrongSize { bits });
    }
    Ok(key)
}

/// One PEM block: its label and body. Tolerates the `\r\n` line endings and
/// surrounding whitespace of hand-copied files.
fn decode_pem(pem: &[u8]) -> Result<(String, Vec<u8>), String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not UTF-8 text".to_owned())?;
    let normalized = text.trim().replace("\r\n", "\n");
    let (label, der) = rsa::pkcs8::der::pem::decode_vec(normalized.as_bytes())
        .map_err(|e| e.to_string().to_lowercase())?;
    Ok((label.to_owned(), der))
}

/// The plaintext of a slot: the 32-byte share as 64 lowercase hex characters.
fn share_plaintext(share: &SecretBytes<SECRET_KEY_BYTES>) -> Zeroizing<[u8; PLAINTEXT_HEX_CHARS]> {
    let mut out = Zeroizing::new([0u8; PLAINTEXT_HEX_CHARS]);
    // 32 bytes always fit 64 characters.
    let _ = hex::encode_to_slice(share.expose_secret(), out.as_mut_slice());
    out
}

/// One operator's encrypted share: 256 bytes of RSA-2048 ciphertext.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ciphertext([u8; CIPHERTEXT_BYTES]);

impl Ciphertext {
    /// Wraps 256 bytes.
    pub fn from_bytes(bytes: [u8; CIPHERTEXT_BYTES]) -> Self {
        Self(bytes)
    }

    /// Wraps a slice of exactly 256 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; CIPHERTEXT_BYTES]>::try_from(bytes).ok().map(Self)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; CIPHERTEXT_BYTES] {
        &self.0
    }
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ciphertext({}…)",
            hex::encode(self.0.get(..8).unwrap_or_default())
        )
    }
}

/// Why an operator private key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateKeyError {
    /// Not a PEM block (nor JSON, nor base64 of a PEM).
    #[error("not a PEM private key: {reason}")]
    Pem {
        /// What the PEM parser said.
        reason: String,
    },
    /// A PEM block of another kind.
    #[error(
        "the PEM block is labelled {label:?}, expected \"RSA PRIVATE KEY\" (PKCS#1) or \"PRIVATE KEY\" (PKCS#8)"
    )]
    Label {
        /// The label found.
        label: String,
    },
    /// The body is not an RSA private key, or an inconsistent one.
    #[error("the PEM body is not a valid RSA private key")]
    NotRsa,
    /// An RSA key of another size.
    #[error("the key is RSA-{bits}, but SSV operator keys must be RSA-2048")]
    WrongSize {
        /// The modulus size found.
        bits: usize,
    },
    /// An `encrypted_private_key.json` given without a password.
    #[error(
        "the key is an encrypted operator key (encrypted_private_key.json) and needs its password"
    )]
    PasswordNeeded,
    /// An `encrypted_private_key.json` that did not decrypt.
    #[error("cannot decrypt the encrypted operator key")]
    Encrypted(#[source] EncryptedKeyError),
}

/// Why an operator's slot did not yield its share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlotError {
    /// PKCS#1 v1.5 decryption failed: not a ciphertext for this key.
    #[error("the ciphertext does not decrypt under this operator key (RSA PKCS#1 v1.5)")]
    Decrypt,
    /// The plaintext is not 64 hex characters, with or without `0x`.
    #[error("the plaintext is {len} bytes, not 64 hex characters of a share")]
    Plaintext {
        /// Its length.
        len: usize,
    },
    /// The hex is not a BLS secret key.
    #[error("the plaintext is not a BLS secret key")]
    Scalar(#[source] BlsError),
}

/// How the plaintext of a slot was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaintextForm {
    /// 64 hex characters, as ssv-dkg and dvkg write.
    BareHex,
    /// `0x` and 64 hex characters, as ssv-keys writes (SSV nodes strip it).
    PrefixedHex,
}

/// An SSV operator's RSA private key.
///
/// # Security
///
/// The `rsa` crate wipes the key's components on drop. Its `Debug` prints
/// them, so it is wrapped here with a `Debug` that prints `<redacted>`; there
/// is no `Display` and no `Serialize`. See the module docs for the one place
/// it decrypts and RUSTSEC-2023-0071.
#[derive(Clone)]
pub struct OperatorPrivateKey(RsaPrivateKey);

impl OperatorPrivateKey {
    /// A fresh RSA-2048 key (for `dvkg demo --ssv`: an SSV node makes its
    /// own with `ssv-node generate-operator-keys`).
    ///
    /// # Errors
    ///
    /// The `rsa` crate's error if prime generation fails.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Self, rsa::Error> {
        RsaPrivateKey::new(rng, RSA_MODULUS_BITS).map(Self)
    }

    /// Reads a PEM: `RSA PRIVATE KEY` (PKCS#1, what SSV writes) or
    /// `PRIVATE KEY` (PKCS#8), or base64 of such a PEM (the SSV node's
    /// `OperatorPrivateKey` setting).
    ///
    /// # Errors
    ///
    /// A [`PrivateKeyError`] naming the rule broken.
    pub fn from_pem(text: &str) -> Result<Self, PrivateKeyError> {
        let trimmed = text.trim();
        let pem: Zeroizing<Vec<u8>> = if trimmed.starts_with("-----BEGIN") {
            Zeroizing::new(trimmed.as_bytes().to_vec())
        } else {
            Zeroizing::new(
                Base64::decode_vec(trimmed).map_err(|_| PrivateKeyError::Pem {
                    reason: "neither a PEM block nor base64 of one".into(),
                })?,
            )
        };
        let (label, der) = decode_pem(&pem).map_err(|reason| PrivateKeyError::Pem { reason })?;
        let der = Zeroizing::new(der);
        let key = match label.as_str() {
            RSA_PRIVATE_KEY_LABEL => RsaPrivateKey::from_pkcs1_der(&der).ok(),
            PRIVATE_KEY_LABEL => RsaPrivateKey::from_pkcs8_der(&der).ok(),
            _ => return Err(PrivateKeyError::Label { label }),
        }
        .ok_or(PrivateKeyError::NotRsa)?;
        key.validate().map_err(|_| PrivateKeyError::NotRsa)?;
        let bits = key.n().bits();
        if bits != RSA_MODULUS_BITS {
            return Err(PrivateKeyError::WrongSize { bits });
        }
        Ok(Self(key))
    }

    /// Reads SSV's `encrypted_private_key.json` with its password.
    ///
    /// # Errors
    ///
    /// [`PrivateKeyError::Encrypted`] for a wrong password or a bad file,
    /// otherwise as [`OperatorPrivateKey::from_pem`] on the decrypted PEM.
    pub fn from_encrypted_json(text: &str, password: &Password) -> Result<Self, PrivateKeyError> {
        let plaintext =
            encrypted_key::decrypt(text, password).map_err(PrivateKeyError::Encrypted)?;
        let pem = std::str::from_utf8(&plaintext).map_err(|_| PrivateKeyError::Pem {
            reason: "the decrypted key is not text".into(),
        })?;
        Self::from_pem(pem)
    }

    /// Reads either kind: JSON (`encrypted_private_key.json`, which needs
    /// `password`) or a PEM.
    ///
    /// # Errors
    ///
    /// [`PrivateKeyError::PasswordNeeded`] for the encrypted kind without a
    /// password, otherwise as the two readers.
    pub fn load(text: &str, password: Option<&Password>) -> Result<Self, PrivateKeyError> {
        if text.trim_start().starts_with('{') {
            let password = password.ok_or(PrivateKeyError::PasswordNeeded)?;
            Self::from_encrypted_json(text, password)
        } else {
            Self::from_pem(text)
        }
    }

    /// The public half, in SSV's registered encoding.
    pub fn public_key(&self) -> OperatorKey {
        let key = self.0.to_public_key();
        let registered = canonical_registered(&key).unwrap_or_default();
        OperatorKey { registered, key }
    }

    /// The key as a PKCS#1 PEM (`RSA PRIVATE KEY`), as SSV writes it, in a
    /// buffer wiped on drop.
    ///
    /// # Errors
    ///
    /// The `pkcs1` crate's error if the key does not encode.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, rsa::pkcs1::Error> {
        self.0.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
    }

    /// Decrypts one's own slot and parses the share.
    ///
    /// This is the only RSA decryption in dvkg: see the module docs on
    /// RUSTSEC-2023-0071 for why it is acceptable here (local, offline, the
    /// operator's own key, no decryption oracle for anyone else). Blinding
    /// is on.
    ///
    /// # Errors
    ///
    /// A [`SlotError`] naming what did not work.
    pub fn decrypt_share(
        &self,
        ciphertext: &Ciphertext,
    ) -> Result<(SecretKey, PlaintextForm), SlotError> {
        let mut rng = rand::rngs::OsRng;
        let plaintext = Zeroizing::new(
            self.0
                .decrypt_blinded(&mut rng, Pkcs1v15Encrypt, ciphertext.as_bytes())
                .map_err(|_| SlotError::Decrypt)?,
        );
        let (form, digits) = match plaintext.strip_prefix(b"0x") {
            Some(rest) => (PlaintextForm::PrefixedHex, rest),
            None => (PlaintextForm::BareHex, plaintext.as_slice()),
        };
        let mut raw = Zeroizing::new([0u8; SECRET_KEY_BYTES]);
        if digits.len() != PLAINTEXT_HEX_CHARS
            || hex::decode_to_slice(digits, raw.as_mut_slice()).is_err()
        {
            return Err(SlotError::Plaintext {
                len: plaintext.len(),
            });
        }
        let key = SecretKey::from_bytes(&SecretBytes::new(&mut raw)).map_err(SlotError::Scalar)?;
        Ok((key, form))
    }
}

impl fmt::Debug for OperatorPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorPrivateKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::ssv::dealer::test_operator_key;

    const RSA_1024_PUBLIC: &str = include_str!("testdata/rsa-1024-public.pem");

    fn share(byte: u8) -> SecretKey {
        let mut raw = [byte; 32];
        raw[0] = 0x11;
        SecretKey::from_bytes(&SecretBytes::new(&mut raw)).unwrap()
    }

    #[test]
    fn registered_form_round_trips_and_is_kept_verbatim() {
        let private = test_operator_key(0).unwrap();
        let public = private.public_key();
        assert!(public.is_canonical());
        let registered = public.registered().to_owned();
        let pem = String::from_utf8(Base64::decode_vec(&registered).unwrap()).unwrap();
        assert!(pem.starts_with(
            "-----BEGIN RSA PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ));
        assert!(pem.ends_with("\n-----END RSA PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64));
        let parsed = OperatorKey::from_registered(&registered).unwrap();
        assert_eq!(parsed, public);
        assert!(parsed.matches(&private));
        assert!(!parsed.matches(&test_operator_key(1).unwrap()));
        // From the PEM file, the registered form is SSV's encoding.
        assert_eq!(OperatorKey::parse(&pem).unwrap().registered(), registered);
        // A standard SPKI "PUBLIC KEY" PEM gives the same registered form.
        let spki = pem.replace("RSA PUBLIC KEY", "PUBLIC KEY");
        assert_eq!(
            OperatorKey::from_pem(&spki).unwrap().registered(),
            registered
        );
    }

    #[test]
    fn a_non_canonical_registered_string_is_kept_as_given() {
        let public = test_operator_key(0).unwrap().public_key();
        let pem = String::from_utf8(Base64::decode_vec(public.registered()).unwrap()).unwrap();
        let crlf = Base64::encode_string(pem.replace('\n', "\r\n").as_bytes());
        let parsed = OperatorKey::from_registered(&crlf).unwrap();
        assert_eq!(parsed.registered(), crlf);
        assert!(!parsed.is_canonical());
        assert_eq!(parsed.canonical_registered(), public.registered());
    }

    #[test]
    fn a_1024_bit_operator_key_is_refused_naming_the_rule() {
        let err = OperatorKey::from_pem(RSA_1024_PUBLIC).unwrap_err();
        assert_eq!(err, OperatorKeyError::WrongSize { bits: 1024 });
        assert_eq!(
            err.to_string(),
            "the key is RSA-1024, but SSV operator keys must be RSA-2048"
        );
        let registered = Base64::encode_string(RSA_1024_PUBLIC.as_bytes());
        assert_eq!(
            OperatorKey::from_registered(&registered).unwrap_err(),
            OperatorKeyError::WrongSize { bits: 1024 }
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert_eq!(
            OperatorKey::from_registered("not base64!").unwrap_err(),
            OperatorKeyError::Base64
        );
        let cert = Base64::encode_string(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        assert_eq!(
            OperatorKey::from_registered(&cert).unwrap_err(),
            OperatorKeyError::Label {
                label: "CERTIFICATE".into()
            }
        );
        let garbage = Base64::encode_string(
            b"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
        );
        assert_eq!(
            OperatorKey::from_registered(&garbage).unwrap_err(),
            OperatorKeyError::NotRsa
        );
    }

    #[test]
    fn a_share_encrypts_to_256_bytes_and_decrypts_to_bare_hex() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let private = test_operator_key(2).unwrap();
        let public = private.public_key();
        let secret = share(0x42);
        let ciphertext = public.encrypt_share(&secret, &mut rng).unwrap();
        assert!(public.fits(&ciphertext));
        let (back, form) = private.decrypt_share(&ciphertext).unwrap();
        assert_eq!(form, PlaintextForm::BareHex);
        assert_eq!(back.public_key(), secret.public_key());
        // The plaintext is exactly the 64 lowercase hex characters.
        let raw = private
            .0
            .decrypt(Pkcs1v15Encrypt, ciphertext.as_bytes())
            .unwrap();
        assert_eq!(
            raw,
            hex::encode(secret.to_bytes().expose_secret()).into_bytes()
        );
        // Another operator's key cannot decrypt it.
        assert_eq!(
            test_operator_key(3)
                .unwrap()
                .decrypt_share(&ciphertext)
                .unwrap_err(),
            SlotError::Decrypt
        );
    }

    #[test]
    fn a_0x_prefixed_plaintext_is_read_and_reported() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let private = test_operator_key(1).unwrap();
        let secret = share(0x24);
        let text = format!("0x{}", hex::encode(secret.to_bytes().expose_secret()));
        let bytes = private
            .0
            .to_public_key()
            .encrypt(&mut rng, Pkcs1v15Encrypt, text.as_bytes())
            .unwrap();
        let ciphertext = Ciphertext::from_slice(&bytes).unwrap();
        let (back, form) = private.decrypt_share(&ciphertext).unwrap();
        assert_eq!(form, PlaintextForm::PrefixedHex);
        assert_eq!(back.public_key(), secret.public_key());
    }

    #[test]
    fn private_keys_load_from_pkcs1_pkcs8_base64_and_encrypted_json() {
        let key = test_operator_key(0).unwrap();
        let pkcs1 = key.to_pkcs1_pem().unwrap();
        let from_pkcs1 = OperatorPrivateKey::load(&pkcs1, None).unwrap();
        assert!(key.public_key().matches(&from_pkcs1));
        let pkcs8 =
            rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key.0, rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(
            key.public_key()
                .matches(&OperatorPrivateKey::load(&pkcs8, None).unwrap())
        );
        let b64 = Base64::encode_string(pkcs1.as_bytes());
        assert!(
            key.public_key()
                .matches(&OperatorPrivateKey::load(&b64, None).unwrap())
        );

        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let password = Password::new("12345678");
        let json = encrypted_key::encrypt(pkcs1.as_bytes(), &password, 32, &mut rng).unwrap();
        assert!(matches!(
            OperatorPrivateKey::load(&json, None).unwrap_err(),
            PrivateKeyError::PasswordNeeded
        ));
        let loaded = OperatorPrivateKey::load(&json, Some(&password)).unwrap();
        assert!(key.public_key().matches(&loaded));
        assert!(matches!(
            OperatorPrivateKey::load(&json, Some(&Password::new("wrong"))).unwrap_err(),
            PrivateKeyError::Encrypted(EncryptedKeyError::WrongPassword)
        ));
        assert_eq!(format!("{loaded:?}"), "OperatorPrivateKey(<redacted>)");
    }
}
