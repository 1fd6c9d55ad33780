//! Secrets at rest, sealed with [age](https://age-encryption.org/v1): to an
//! operator's X25519 recipient (share bundles), or with a passphrase (the
//! identity file). This is the only module that calls the `age` crate; the
//! rest of dvkg names its key types through [`AgeIdentity`] and
//! [`AgeRecipient`].
//!
//! Sealed files are binary age files (no ASCII armor: the `armor` feature is
//! off). Opening returns the plaintext in a [`Zeroizing`] buffer.
//!
//! # Security
//!
//! What we wipe: opened plaintexts (read into a buffer sized so that it never
//! reallocates), the passphrase copies we make, and the intermediate
//! encodings of a generated age identity. What we cannot wipe: the chunk
//! buffers inside age's stream writer and reader (age zeroizes its file and
//! payload keys, not its 64 KiB plaintext chunks), and the caller's own copies
//! of what it seals.

use std::io::Write as _;

use age::secrecy::{ExposeSecret as _, SecretString};
use rand::{CryptoRng, RngCore};
use zeroize::{Zeroize as _, Zeroizing};

/// An age X25519 identity (secret key, `AGE-SECRET-KEY-1…`).
///
/// # Security
///
/// Wiped on drop (x25519-dalek's `StaticSecret`); `age` gives it no `Debug`
/// or `Display`. Its text form is only available through
/// [`identity_to_string`], in a zeroizing buffer.
pub type AgeIdentity = age::x25519::Identity;

/// An age X25519 recipient (public key, `age1…`).
pub type AgeRecipient = age::x25519::Recipient;

/// The first bytes of every binary age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The Bech32 human-readable part of an age secret key.
const SECRET_KEY_HRP: &str = "age-secret-key-";

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Encryption failed (a bug or an OS RNG failure).
    #[error("failed to encrypt: {0}")]
    Encrypt(#[source] Box<age::EncryptError>),
    /// Writing to the in-memory buffer failed (a bug).
    #[error("failed to encrypt: {0}")]
    EncryptIo(#[source] std::io::Error),
    /// The bytes are not an age file.
    #[error("not an age-encrypted file")]
    NotAge,
    /// The age header is malformed.
    #[error("the age header is malformed or was modified")]
    BadHeader,
    /// Sealed with a passphrase, but opened with an identity.
    #[error("the file is sealed with a passphrase, not to an age identity")]
    PassphraseSealed,
    /// Sealed to recipients, but opened with a passphrase.
    #[error("the file is sealed to an age recipient, not with a passphrase")]
    NotPassphraseSealed,
    /// Sealed to another recipient.
    #[error("the file is not sealed to this age identity")]
    NotForThisIdentity,
    /// The passphrase does not open the file.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The passphrase's scrypt work factor is beyond what we accept.
    #[error(
        "the file's passphrase work factor 2^{required} is far above this machine's 2^{target}; refusing to spend that much time and memory"
    )]
    ExcessiveWork {
        /// The file's `log2(N)`.
        required: u8,
        /// This machine's calibrated `log2(N)`.
        target: u8,
    },
    /// The payload does not decrypt: truncated or modified.
    #[error("the sealed data is truncated or was modified")]
    Corrupt,
    /// An age secret key string that does not parse.
    #[error("not an age secret key (AGE-SECRET-KEY-1…)")]
    BadIdentity,
    /// An age recipient string that does not parse.
    #[error("not an age X25519 recipient (age1…): {0}")]
    BadRecipient(&'static str),
}

fn decrypt_error(err: age::DecryptError, passphrase: bool) -> SealError {
    match err {
        age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed
            if passphrase =>
        {
            SealError::WrongPassphrase
        }
        age::DecryptError::NoMatchingKeys if passphrase => SealError::NotPassphraseSealed,
        age::DecryptError::NoMatchingKeys => SealError::NotForThisIdentity,
        age::DecryptError::ExcessiveWork { required, target } => {
            SealError::ExcessiveWork { required, target }
        }
        age::DecryptError::UnknownFormat => SealError::NotAge,
        age::DecryptError::InvalidHeader | age::DecryptError::InvalidMac => SealError::BadHeader,
        _ => SealError::Corrupt,
    }
}

/// Whether `bytes` start like a binary age file.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_MAGIC)
}

/// Parses an age recipient (`age1…`).
///
/// # Errors
///
/// [`SealError::BadRecipient`].
pub fn parse_recipient(text: &str) -> Result<AgeRecipient, SealError> {
    text.parse::<AgeRecipient>()
        .map_err(SealError::BadRecipient)
}

/// Parses an age secret key (`AGE-SECRET-KEY-1…`).
///
/// # Errors
///
/// [`SealError::BadIdentity`]; the error never repeats the text.
pub fn parse_identity(text: &str) -> Result<AgeIdentity, SealError> {
    text.parse::<AgeIdentity>()
        .map_err(|_| SealError::BadIdentity)
}

/// The text form of `identity` (`AGE-SECRET-KEY-1…`), in a buffer wiped on
/// drop.
pub fn identity_to_string(identity: &AgeIdentity) -> Zeroizing<String> {
    let secret = identity.to_string();
    Zeroizing::new(secret.expose_secret().to_owned())
}

/// The recipient of `identity`, as text (`age1…`).
pub fn recipient_of(identity: &AgeIdentity) -> String {
    identity.to_public().to_string()
}

/// A fresh age X25519 identity from `rng`.
///
/// `age::x25519::Identity::generate` draws from the OS RNG; this takes 32
/// bytes from the injected RNG instead (so tests are reproducible) and goes
/// through the identity's Bech32 text form, the only constructor age offers.
///
/// # Errors
///
/// [`SealError::BadIdentity`] if the encoding were wrong (a bug).
pub fn generate_identity<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
) -> Result<AgeIdentity, SealError> {
    let mut key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(key.as_mut());
    let text = bech32_encode_upper(SECRET_KEY_HRP, key.as_ref());
    parse_identity(&text)
}

/// Seals `plaintext` to `recipient`.
///
/// # Errors
///
/// [`SealError::Encrypt`] / [`SealError::EncryptIo`], which are bugs.
pub fn seal_to(recipient: &AgeRecipient, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|err| SealError::Encrypt(Box::new(err)))?;
    write_sealed(encryptor, plaintext)
}

/// Seals `plaintext` with `passphrase` (age's scrypt recipient, work factor
/// calibrated to about one second on this machine).
///
/// # Errors
///
/// [`SealError::EncryptIo`], a bug.
pub fn seal_with_passphrase(passphrase: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let encryptor = age::Encryptor::with_user_passphrase(SecretString::from(passphrase));
    write_sealed(encryptor, plaintext)
}

fn write_sealed(encryptor: age::Encryptor, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    // Header (~200 bytes) + 16-byte nonce + 16-byte tag per 64 KiB chunk.
    let mut sealed = Vec::with_capacity(plaintext.len() + 512);
    let mut writer = encryptor
        .wrap_output(&mut sealed)
        .map_err(SealError::EncryptIo)?;
    writer.write_all(plaintext).map_err(SealError::EncryptIo)?;
    writer.finish().map_err(SealError::EncryptIo)?;
    Ok(sealed)
}

/// Opens data sealed to `identity`'s recipient.
///
/// # Errors
///
/// [`SealError::NotForThisIdentity`] when sealed to someone else,
/// [`SealError::PassphraseSealed`] when sealed with a passphrase, and
/// [`SealError::NotAge`], [`SealError::BadHeader`] or [`SealError::Corrupt`]
/// for damaged input.
pub fn open_with(identity: &AgeIdentity, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if !is_sealed(sealed) {
        return Err(SealError::NotAge);
    }
    let decryptor = age::Decryptor::new_buffered(sealed).map_err(|e| decrypt_error(e, false))?;
    if decryptor.is_scrypt() {
        return Err(SealError::PassphraseSealed);
    }
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| decrypt_error(e, false))?;
    read_plaintext(reader, sealed.len())
}

/// Opens data sealed with a passphrase.
///
/// # Errors
///
/// [`SealError::WrongPassphrase`], [`SealError::NotPassphraseSealed`] when
/// sealed to a recipient, [`SealError::ExcessiveWork`] for a work factor far
/// above this machine's, and [`SealError::NotAge`], [`SealError::BadHeader`]
/// or [`SealError::Corrupt`] for damaged input.
pub fn open_with_passphrase(
    passphrase: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if !is_sealed(sealed) {
        return Err(SealError::NotAge);
    }
    let decryptor = age::Decryptor::new_buffered(sealed).map_err(|e| decrypt_error(e, true))?;
    if !decryptor.is_scrypt() {
        return Err(SealError::NotPassphraseSealed);
    }
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase));
    let reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| decrypt_error(e, true))?;
    read_plaintext(reader, sealed.len())
}

fn read_plaintext(
    mut reader: impl std::io::Read,
    sealed_len: usize,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    // The plaintext is shorter than the sealed file, so this buffer never
    // grows (growing would leave an unwiped copy behind).
    let mut plaintext = Zeroizing::new(Vec::with_capacity(sealed_len));
    match reader.read_to_end(&mut plaintext) {
        Ok(_) => Ok(plaintext),
        Err(_) => {
            plaintext.zeroize();
            Err(SealError::Corrupt)
        }
    }
}

/// BIP-173 Bech32 (not Bech32m, as age uses), upper-cased as age writes
/// secret keys. Every intermediate is wiped.
fn bech32_encode_upper(hrp: &str, data: &[u8]) -> Zeroizing<String> {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut values: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(data.len() * 8 / 5 + 8));
    // 8-bit to 5-bit groups, zero-padded at the end.
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in data {
        acc = (acc << 8 | u32::from(byte)) & 0x1fff;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            values.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        values.push(((acc << (5 - bits)) & 31) as u8);
    }
    acc.zeroize();

    let hrp_bytes = hrp.as_bytes();
    let expanded = hrp_bytes
        .iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp_bytes.iter().map(|c| c & 31));
    let polymod = bech32_polymod(
        expanded
            .chain(values.iter().copied())
            .chain(std::iter::repeat_n(0, 6)),
    ) ^ 1;

    let mut out = Zeroizing::new(String::with_capacity(hrp.len() + 1 + values.len() + 6));
    let symbol = |v: u8| {
        char::from(
            CHARSET
                .get(usize::from(v & 31))
                .copied()
                .unwrap_or(b'q')
                .to_ascii_uppercase(),
        )
    };
    out.push_str(&hrp.to_ascii_uppercase());
    out.push('1');
    for &v in values.iter() {
        out.push(symbol(v));
    }
    for i in 0..6u32 {
        out.push(symbol(((polymod >> (5 * (5 - i))) & 31) as u8));
    }
    out
}

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GENERATOR: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn generated_identity_matches_age_text_form() {
        let mut rng = StdRng::seed_from_u64(7);
        let identity = generate_identity(&mut rng).unwrap();
        let text = identity_to_string(&identity);
        assert!(text.starts_with("AGE-SECRET-KEY-1"));
        // age re-encodes the same key to the same text.
        let again = parse_identity(&text).unwrap();
        assert_eq!(recipient_of(&again), recipient_of(&identity));
        // Deterministic from the RNG.
        let mut rng = StdRng::seed_from_u64(7);
        let same = generate_identity(&mut rng).unwrap();
        assert_eq!(*identity_to_string(&same), *text);
        // A known key: 32 zero bytes, as age itself encodes it.
        let zero = bech32_encode_upper(SECRET_KEY_HRP, &[0u8; 32]);
        let parsed = parse_identity(&zero).unwrap();
        assert_eq!(*identity_to_string(&parsed), *zero);
        assert!(matches!(
            parse_identity("AGE-SECRET-KEY-1QQQ"),
            Err(SealError::BadIdentity)
        ));
    }

    #[test]
    fn seal_to_recipient_and_open() {
        let mut rng = StdRng::seed_from_u64(1);
        let alice = generate_identity(&mut rng).unwrap();
        let bob = generate_identity(&mut rng).unwrap();
        let recipient = parse_recipient(&recipient_of(&alice)).unwrap();
        let sealed = seal_to(&recipient, b"share bundle").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(
            open_with(&alice, &sealed).unwrap().as_slice(),
            b"share bundle"
        );
        assert!(matches!(
            open_with(&bob, &sealed),
            Err(SealError::NotForThisIdentity)
        ));
        assert!(matches!(
            open_with_passphrase("x", &sealed),
            Err(SealError::NotPassphraseSealed)
        ));
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            open_with(&alice, &tampered),
            Err(SealError::Corrupt)
        ));
        assert!(matches!(
            open_with(&alice, b"{\"version\":1}"),
            Err(SealError::NotAge)
        ));
        assert!(matches!(
            parse_recipient("age1nope"),
            Err(SealError::BadRecipient(_))
        ));
    }

    #[test]
    fn seal_with_passphrase_and_open() {
        let sealed = seal_with_passphrase("correct horse", b"identity").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(
            open_with_passphrase("correct horse", &sealed)
                .unwrap()
                .as_slice(),
            b"identity"
        );
        assert!(matches!(
            open_with_passphrase("battery staple", &sealed),
            Err(SealError::WrongPassphrase)
        ));
        let mut rng = StdRng::seed_from_u64(2);
        let someone = generate_identity(&mut rng).unwrap();
        assert!(matches!(
            open_with(&someone, &sealed),
            Err(SealError::PassphraseSealed)
        ));
    }
}
