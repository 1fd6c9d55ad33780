//! `payload.sharesData`: the bytes an SSV registration puts on chain.
//!
//! ```text
//! sharesData = signature (96) ‖ share_public_key_1 (48) ‖ … ‖ share_public_key_n (48)
//!                            ‖ ciphertext_1 (256)       ‖ … ‖ ciphertext_n (256)
//! ```
//!
//! Both lists are in the order of `payload.operatorIds`, which is ascending,
//! so the length is `96 + 304·n` bytes; the JSON field is `0x` and the bytes
//! in hex. The signature is the ownership signature
//! ([`crate::ssv::ownership`]); each ciphertext is the RSA encryption of that
//! operator's share ([`crate::ssv::operator_key`]).
//!
//! Sources: ssvlabs/ssv `eth/eventhandler/handlers.go` `handleValidatorAdded`
//! (the length rule and the split), ssvlabs/ssv-dkg
//! `pkgs/initiator/initiator.go` (the layout it writes), sigp/anchor
//! `anchor/eth/src/util.rs` `parse_shares`.

use crate::crypto::{PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Signature};
use crate::hexfmt::{self, HexError, Prefix};

use super::operator_key::{CIPHERTEXT_BYTES, Ciphertext};

/// Bytes that each operator adds to `sharesData`: a share public key and a
/// ciphertext.
pub const SLOT_BYTES: usize = PUBLIC_KEY_BYTES + CIPHERTEXT_BYTES;

/// Why bytes are not a `sharesData` for the given number of operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SharesDataError {
    /// Not `0x` and an even number of hex digits.
    #[error("sharesData is not 0x-prefixed hex")]
    Hex(#[source] HexError),
    /// A cluster of no operators.
    #[error("sharesData needs at least one operator")]
    NoOperators,
    /// The byte length is not `96 + 304·n`.
    #[error(
        "sharesData is {got} bytes, but {operators} operators need 96 + 304·{operators} = {expected}"
    )]
    Length {
        /// Operators in the payload.
        operators: usize,
        /// `96 + 304·operators`.
        expected: usize,
        /// The length found.
        got: usize,
    },
    /// Building from lists of different lengths.
    #[error("{public_keys} share public keys but {ciphertexts} ciphertexts")]
    CountMismatch {
        /// Share public keys given.
        public_keys: usize,
        /// Ciphertexts given.
        ciphertexts: usize,
    },
}

/// A decoded `sharesData`: the ownership signature, then one share public
/// key and one ciphertext per operator, in ascending operator-id order.
///
/// The signature and the share public keys are kept as bytes: whether they
/// are valid points is a separate finding that [`crate::ssv::verify`]
/// reports per operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharesData {
    signature: [u8; SIGNATURE_BYTES],
    share_public_keys: Vec<[u8; PUBLIC_KEY_BYTES]>,
    ciphertexts: Vec<Ciphertext>,
}

impl SharesData {
    /// The length of a `sharesData` for `operators` operators.
    pub fn expected_len(operators: usize) -> usize {
        SIGNATURE_BYTES + SLOT_BYTES * operators
    }

    /// Assembles the parts, in ascending operator-id order.
    ///
    /// # Errors
    ///
    /// [`SharesDataError::CountMismatch`] if the lists differ in length,
    /// [`SharesDataError::NoOperators`] if they are empty.
    pub fn new(
        signature: &Signature,
        share_public_keys: Vec<[u8; PUBLIC_KEY_BYTES]>,
        ciphertexts: Vec<Ciphertext>,
    ) -> Result<Self, SharesDataError> {
        if share_public_keys.len() != ciphertexts.len() {
            return Err(SharesDataError::CountMismatch {
                public_keys: share_public_keys.len(),
                ciphertexts: ciphertexts.len(),
            });
        }
        if share_public_keys.is_empty() {
            return Err(SharesDataError::NoOperators);
        }
        Ok(Self {
            signature: signature.to_bytes(),
            share_public_keys,
            ciphertexts,
        })
    }

    /// Splits `bytes` for a cluster of `operators`.
    ///
    /// # Errors
    ///
    /// [`SharesDataError::Length`] unless the length is `96 + 304·operators`;
    /// [`SharesDataError::NoOperators`] for zero operators.
    pub fn from_bytes(bytes: &[u8], operators: usize) -> Result<Self, SharesDataError> {
        if operators == 0 {
            return Err(SharesDataError::NoOperators);
        }
        let expected = Self::expected_len(operators);
        if bytes.len() != expected {
            return Err(SharesDataError::Length {
                operators,
                expected,
                got: bytes.len(),
            });
        }
        let length_error = SharesDataError::Length {
            operators,
            expected,
            got: bytes.len(),
        };
        let (signature, rest) = bytes
            .split_first_chunk::<SIGNATURE_BYTES>()
            .ok_or_else(|| length_error.clone())?;
        let (keys, ciphertexts) = rest
            .split_at_checked(PUBLIC_KEY_BYTES * operators)
            .ok_or_else(|| length_error.clone())?;
        let share_public_keys = keys
            .chunks_exact(PUBLIC_KEY_BYTES)
            .map(<[u8; PUBLIC_KEY_BYTES]>::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| length_error.clone())?;
        let ciphertexts = ciphertexts
            .chunks_exact(CIPHERTEXT_BYTES)
            .map(Ciphertext::from_slice)
            .collect::<Option<Vec<_>>>()
            .ok_or(length_error)?;
        Ok(Self {
            signature: *signature,
            share_public_keys,
            ciphertexts,
        })
    }

    /// Parses the JSON form, `0x` and hex, for a cluster of `operators`.
    ///
    /// # Errors
    ///
    /// [`SharesDataError::Hex`] for bad hex, otherwise as
    /// [`SharesData::from_bytes`].
    pub fn from_hex(text: &str, operators: usize) -> Result<Self, SharesDataError> {
        let bytes = hexfmt::decode_vec(text, Prefix::Required).map_err(SharesDataError::Hex)?;
        Self::from_bytes(&bytes, operators)
    }

    /// The bytes, `signature ‖ share public keys ‖ ciphertexts`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::expected_len(self.operators()));
        out.extend_from_slice(&self.signature);
        for key in &self.share_public_keys {
            out.extend_from_slice(key);
        }
        for ciphertext in &self.ciphertexts {
            out.extend_from_slice(ciphertext.as_bytes());
        }
        out
    }

    /// The JSON form: `0x` and lowercase hex.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.to_bytes()))
    }

    /// The number of operators.
    pub fn operators(&self) -> usize {
        self.share_public_keys.len()
    }

    /// The ownership signature, as bytes.
    pub fn signature_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.signature
    }

    /// The share public keys, as bytes, in operator order.
    pub fn share_public_keys(&self) -> &[[u8; PUBLIC_KEY_BYTES]] {
        &self.share_public_keys
    }

    /// The ciphertexts, in operator order.
    pub fn ciphertexts(&self) -> &[Ciphertext] {
        &self.ciphertexts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{SecretBytes, SecretKey};

    fn signature() -> Signature {
        let mut raw = [0u8; 32];
        raw[31] = 7;
        SecretKey::from_bytes(&SecretBytes::new(&mut raw))
            .unwrap()
            .sign(b"sharesData layout")
    }

    #[test]
    fn length_is_96_plus_304_per_operator() {
        assert_eq!(SLOT_BYTES, 304);
        for (n, len) in [(4, 1312), (7, 2224), (10, 3136), (13, 4048)] {
            assert_eq!(SharesData::expected_len(n), len);
        }
    }

    #[test]
    fn layout_is_signature_then_keys_then_ciphertexts() {
        let sig = signature();
        let keys: Vec<[u8; 48]> = (1..=4u8).map(|i| [i; 48]).collect();
        let cts: Vec<Ciphertext> = (0xa1..=0xa4u8)
            .map(|b| Ciphertext::from_bytes([b; 256]))
            .collect();
        let data = SharesData::new(&sig, keys.clone(), cts.clone()).unwrap();
        let bytes = data.to_bytes();
        assert_eq!(bytes.len(), 1312);
        assert_eq!(&bytes[..96], &sig.to_bytes());
        for i in 0..4 {
            assert_eq!(&bytes[96 + 48 * i..96 + 48 * (i + 1)], &[i as u8 + 1; 48]);
            let at = 96 + 48 * 4 + 256 * i;
            assert_eq!(&bytes[at..at + 256], &[0xa1 + i as u8; 256]);
        }
        let hex = data.to_hex();
        assert!(hex.starts_with("0x"));
        assert_eq!(hex.len(), 2 + 2 * 1312);
        let back = SharesData::from_hex(&hex, 4).unwrap();
        assert_eq!(back, data);
        assert_eq!(back.share_public_keys(), keys.as_slice());
        assert_eq!(back.ciphertexts(), cts.as_slice());
        assert_eq!(back.signature_bytes(), &sig.to_bytes());
    }

    #[test]
    fn wrong_lengths_and_counts_are_refused() {
        let bytes = vec![0u8; 1312];
        assert_eq!(
            SharesData::from_bytes(&bytes, 7).unwrap_err(),
            SharesDataError::Length {
                operators: 7,
                expected: 2224,
                got: 1312
            }
        );
        assert!(SharesData::from_bytes(&bytes[..1311], 4).is_err());
        assert_eq!(
            SharesData::from_bytes(&bytes, 0).unwrap_err(),
            SharesDataError::NoOperators
        );
        assert!(matches!(
            SharesData::from_hex(&hex::encode(&bytes), 4).unwrap_err(),
            SharesDataError::Hex(HexError::MissingPrefix)
        ));
        assert_eq!(
            SharesData::new(&signature(), vec![[0; 48]; 4], vec![]).unwrap_err(),
            SharesDataError::CountMismatch {
                public_keys: 4,
                ciphertexts: 0
            }
        );
    }
}
