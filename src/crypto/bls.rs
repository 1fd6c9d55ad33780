//! min_pk BLS wrappers over blst: validated public keys and signatures, and a
//! secret key that never prints itself.

use std::fmt;

use blst::BLST_ERROR;
use blst::min_pk;

use super::secret::SecretBytes;

/// The hash-to-curve domain separation tag of Ethereum's BLS signatures
/// (proof-of-possession ciphersuite, draft-irtf-cfrg-bls-signature-04 §4.2.3).
pub const SIGNATURE_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Length of a big-endian BLS secret scalar.
pub const SECRET_KEY_BYTES: usize = 32;
/// Length of a compressed G1 public key.
pub const PUBLIC_KEY_BYTES: usize = 48;
/// Length of a compressed G2 signature.
pub const SIGNATURE_BYTES: usize = 96;

/// Why bytes were refused as a BLS key or signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlsError {
    /// The secret scalar is zero or not below the group order.
    #[error("secret key is zero or not below the BLS12-381 group order")]
    SecretKeyOutOfRange,
    /// The bytes are not a point on the curve in compressed form.
    #[error("not a valid compressed point (bad length, flags or coordinates)")]
    BadEncoding,
    /// The point is the identity (point at infinity).
    #[error("the point at infinity is not allowed")]
    Identity,
    /// The point is on the curve but not in the prime-order subgroup.
    #[error("the point is not in the prime-order subgroup")]
    NotInSubgroup,
}

impl BlsError {
    fn from_blst(err: BLST_ERROR) -> Self {
        match err {
            BLST_ERROR::BLST_PK_IS_INFINITY => Self::Identity,
            BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Self::NotInSubgroup,
            _ => Self::BadEncoding,
        }
    }
}

/// A BLS secret key (a scalar in `[1, r-1]`).
///
/// # Security
///
/// blst's own `SecretKey` wipes itself on drop but derives `Debug`, so it is
/// kept private inside this wrapper, whose `Debug` prints `<redacted>`. There
/// is no `Display` and no `Serialize`; [`SecretKey::to_bytes`] returns a
/// zeroizing buffer.
#[derive(Clone)]
pub struct SecretKey(min_pk::SecretKey);

impl SecretKey {
    /// Parses a 32-byte big-endian scalar.
    ///
    /// # Errors
    ///
    /// [`BlsError::SecretKeyOutOfRange`] if the scalar is zero or `>= r`.
    pub fn from_bytes(bytes: &SecretBytes<SECRET_KEY_BYTES>) -> Result<Self, BlsError> {
        min_pk::SecretKey::from_bytes(bytes.expose_secret())
            .map(Self)
            .map_err(|_| BlsError::SecretKeyOutOfRange)
    }

    /// The 32-byte big-endian scalar, in a buffer that is wiped on drop.
    pub fn to_bytes(&self) -> SecretBytes<SECRET_KEY_BYTES> {
        let mut raw = self.0.to_bytes();
        SecretBytes::new(&mut raw)
    }

    /// The matching public key, `sk * G1`.
    pub fn public_key(&self) -> PublicKey {
        let pk = self.0.sk_to_pk();
        PublicKey {
            bytes: pk.compress(),
            point: pk,
        }
    }

    /// Signs `message` with Ethereum's ciphersuite.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let sig = self.0.sign(message, SIGNATURE_DST, &[]);
        Signature {
            bytes: sig.compress(),
            point: sig,
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A validated BLS public key: on the curve, in the subgroup, not the
/// identity (the `KeyValidate` of the IETF draft).
#[derive(Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; PUBLIC_KEY_BYTES],
    point: min_pk::PublicKey,
}

impl PublicKey {
    /// Decompresses and validates a public key.
    ///
    /// # Errors
    ///
    /// Any [`BlsError`] naming why the bytes are not a usable key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        let array: [u8; PUBLIC_KEY_BYTES] = bytes.try_into().map_err(|_| BlsError::BadEncoding)?;
        let point = min_pk::PublicKey::key_validate(&array).map_err(BlsError::from_blst)?;
        Ok(Self {
            bytes: array,
            point,
        })
    }

    /// The public key of a point already known to be in the subgroup (a
    /// [`G1Point`](super::G1Point) from a checked constructor or derived
    /// from checked points), without decoding it again: no square root, no
    /// subgroup check.
    ///
    /// # Errors
    ///
    /// [`BlsError::Identity`] for the identity, which is no usable key.
    pub fn from_point(point: &super::G1Point) -> Result<Self, BlsError> {
        if point.is_identity() {
            return Err(BlsError::Identity);
        }
        Ok(Self {
            bytes: point.to_bytes(),
            point: min_pk::PublicKey::from(*point.0.as_ref()),
        })
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.bytes
    }

    /// Lowercase hex without a prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// A BLS signature that decompressed to a point of the G2 subgroup.
#[derive(Clone, Copy)]
pub struct Signature {
    bytes: [u8; SIGNATURE_BYTES],
    point: min_pk::Signature,
}

impl Signature {
    /// Decompresses a signature and checks it is in the subgroup and not the
    /// identity.
    ///
    /// # Errors
    ///
    /// Any [`BlsError`] naming why the bytes are not a usable signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        let array: [u8; SIGNATURE_BYTES] = bytes.try_into().map_err(|_| BlsError::BadEncoding)?;
        let point = min_pk::Signature::sig_validate(&array, true).map_err(BlsError::from_blst)?;
        Ok(Self {
            bytes: array,
            point,
        })
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        self.bytes
    }

    /// Lowercase hex without a prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// `Verify(pk, message, signature)` with Ethereum's ciphersuite.
    pub fn verify(&self, public_key: &PublicKey, message: &[u8]) -> bool {
        // Both points were validated on construction, so blst need not
        // re-check the subgroups.
        self.point
            .verify(false, message, SIGNATURE_DST, &[], &public_key.point, false)
            == BLST_ERROR::BLST_SUCCESS
    }
}

impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for Signature {}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// Verifies many `(key, message, signature)` triples at once, with random
/// 64-bit weights (one Miller loop per triple and one final exponentiation,
/// against two Miller loops and a final exponentiation each one by one).
/// `false` means at least one triple is invalid; check them one by one to
/// find it.
pub fn verify_batch<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    items: &[(&PublicKey, &[u8], &Signature)],
    rng: &mut R,
) -> bool {
    if items.is_empty() {
        return true;
    }
    let rands: Vec<blst::blst_scalar> = items
        .iter()
        .map(|_| {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b[..8]);
            b[0] |= 1;
            blst::blst_scalar { b }
        })
        .collect();
    let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| *m).collect();
    let keys: Vec<&min_pk::PublicKey> = items.iter().map(|(k, _, _)| &k.point).collect();
    let signatures: Vec<&min_pk::Signature> = items.iter().map(|(_, _, s)| &s.point).collect();
    // Keys and signatures were validated on construction.
    min_pk::Signature::verify_multiple_aggregate_signatures(
        &messages,
        SIGNATURE_DST,
        &keys,
        false,
        &signatures,
        false,
        &rands,
        64,
    ) == BLST_ERROR::BLST_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        let mut raw = [0u8; 32];
        raw[31] = byte;
        SecretKey::from_bytes(&SecretBytes::new(&mut raw)).unwrap()
    }

    #[test]
    fn sign_verify_round_trip() {
        let sk = key(5);
        let pk = sk.public_key();
        let sig = sk.sign(b"hello");
        assert!(sig.verify(&pk, b"hello"));
        assert!(!sig.verify(&pk, b"hellO"));
        assert!(!sig.verify(&key(6).public_key(), b"hello"));
        let again = Signature::from_bytes(&sig.to_bytes()).unwrap();
        assert_eq!(again, sig);
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
    }

    #[test]
    fn zero_and_order_secret_keys_are_refused() {
        let mut zero = [0u8; 32];
        assert_eq!(
            SecretKey::from_bytes(&SecretBytes::new(&mut zero)).unwrap_err(),
            BlsError::SecretKeyOutOfRange
        );
        let mut order =
            hex::decode("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001")
                .unwrap()
                .try_into()
                .unwrap();
        assert!(SecretKey::from_bytes(&SecretBytes::new(&mut order)).is_err());
    }

    #[test]
    fn identity_and_garbage_points_are_refused() {
        let mut infinity = [0u8; 48];
        infinity[0] = 0xc0;
        assert_eq!(
            PublicKey::from_bytes(&infinity).unwrap_err(),
            BlsError::Identity
        );
        assert_eq!(
            PublicKey::from_bytes(&[1u8; 48]).unwrap_err(),
            BlsError::BadEncoding
        );
        assert_eq!(
            PublicKey::from_bytes(&[0u8; 47]).unwrap_err(),
            BlsError::BadEncoding
        );
        let mut sig_inf = [0u8; 96];
        sig_inf[0] = 0xc0;
        assert_eq!(
            Signature::from_bytes(&sig_inf).unwrap_err(),
            BlsError::Identity
        );
    }

    #[test]
    fn batch_verification_finds_a_bad_triple() {
        let mut rng = rand::rngs::OsRng;
        let keys: Vec<SecretKey> = (1..=4).map(key).collect();
        let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let messages: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 32]).collect();
        let sigs: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let items: Vec<(&PublicKey, &[u8], &Signature)> = pks
            .iter()
            .zip(&messages)
            .zip(&sigs)
            .map(|((p, m), s)| (p, m.as_slice(), s))
            .collect();
        assert!(verify_batch(&items, &mut rng));
        let mut bad = items.clone();
        bad[2].2 = &sigs[1];
        assert!(!verify_batch(&bad, &mut rng));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        assert_eq!(format!("{:?}", key(9)), "SecretKey(<redacted>)");
    }
}
