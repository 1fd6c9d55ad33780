//! Operator identities: Ed25519 keys that sign every protocol message (and,
//! in the transport, the operator's TLS certificate).
//!
//! Every message signature covers a fixed domain string, so that nothing a
//! dvkg operator signs can be replayed as a TLS handshake signature or the
//! other way round (TLS 1.3 signs its own context strings).

use std::fmt;

use ed25519_dalek::Signer;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::secret::SecretBytes;
use crate::wire::Bytes;

/// The domain string in front of every signed protocol message.
pub const MESSAGE_SIGNING_DOMAIN: &[u8] = b"dvkg/2 operator message signature\0";

/// An operator's secret identity key.
///
/// # Security
///
/// `ed25519_dalek::SigningKey` wipes itself on drop (feature `zeroize`). This
/// wrapper has a redacted `Debug` and no `Display` or `Serialize`; the seed
/// is only exported through [`IdentityKey::to_seed`] for sealing to disk.
pub struct IdentityKey(ed25519_dalek::SigningKey);

impl IdentityKey {
    /// A fresh random identity.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self(ed25519_dalek::SigningKey::from_bytes(&seed));
        zeroize::Zeroize::zeroize(&mut seed);
        key
    }

    /// Rebuilds an identity from its 32-byte seed.
    pub fn from_seed(seed: &SecretBytes<32>) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed.expose_secret()))
    }

    /// The 32-byte seed, in a buffer wiped on drop.
    pub fn to_seed(&self) -> SecretBytes<32> {
        let mut seed = self.0.to_bytes();
        SecretBytes::new(&mut seed)
    }

    /// The public half.
    pub fn public(&self) -> IdentityPublicKey {
        IdentityPublicKey(Bytes(self.0.verifying_key().to_bytes()))
    }

    /// Signs `digest` under [`MESSAGE_SIGNING_DOMAIN`].
    pub fn sign(&self, digest: &[u8]) -> IdentitySignature {
        let mut message = Vec::with_capacity(MESSAGE_SIGNING_DOMAIN.len() + digest.len());
        message.extend_from_slice(MESSAGE_SIGNING_DOMAIN);
        message.extend_from_slice(digest);
        IdentitySignature(Bytes(self.0.sign(&message).to_bytes()))
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey(<redacted>, public {})", self.public())
    }
}

/// An operator's public identity key: raw Ed25519 bytes, checked when used.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentityPublicKey(pub Bytes<32>);

impl IdentityPublicKey {
    /// Verifies `signature` over `digest` under [`MESSAGE_SIGNING_DOMAIN`].
    /// A key that is not a valid curve point verifies nothing.
    pub fn verify(&self, digest: &[u8], signature: &IdentitySignature) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0.0) else {
            return false;
        };
        let mut message = Vec::with_capacity(MESSAGE_SIGNING_DOMAIN.len() + digest.len());
        message.extend_from_slice(MESSAGE_SIGNING_DOMAIN);
        message.extend_from_slice(digest);
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0.0);
        // verify_strict refuses small-order keys and non-canonical signatures,
        // so that one message has one valid signature per key.
        key.verify_strict(&message, &signature).is_ok()
    }

    /// Whether the bytes are a usable Ed25519 public key.
    pub fn is_valid(&self) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0.0).is_ok_and(|k| !k.is_weak())
    }

    /// The raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.0
    }
}

impl fmt::Display for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.0))
    }
}

impl fmt::Debug for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityPublicKey({self})")
    }
}

/// An Ed25519 signature by an operator.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentitySignature(pub Bytes<64>);

impl fmt::Debug for IdentitySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySignature({})", hex::encode(self.0.0))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn sign_verify_and_seed_round_trip() {
        let mut rng = StdRng::seed_from_u64(1);
        let key = IdentityKey::generate(&mut rng);
        let public = key.public();
        let sig = key.sign(b"digest");
        assert!(public.verify(b"digest", &sig));
        assert!(!public.verify(b"digesT", &sig));
        let again = IdentityKey::from_seed(&key.to_seed());
        assert_eq!(again.public(), public);
        assert!(format!("{key:?}").contains("<redacted>"));
        assert!(public.is_valid());
        assert!(!IdentityPublicKey(Bytes([0; 32])).is_valid());
    }
}
