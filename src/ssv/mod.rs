//! SSV network formats: the `keyshares.json` that registers a distributed
//! validator with SSV, the operators' RSA keys, and the encrypted operator
//! key file SSV nodes keep.
//!
//! Spec: `ceremony-specs/formats.md` §14, which
//! cites the SSV code each rule was checked against.
//!
//! The pieces, each usable on its own:
//!
//! - [`ownership`]: the message every validator key signs for its owner,
//!   `keccak256("<EIP-55 owner>:<decimal nonce>")`;
//! - [`shares_data`]: the `sharesData` blob, `signature ‖ share public keys ‖
//!   ciphertexts`;
//! - [`operator_key`]: SSV operator keys (RSA-2048), the encryption of a
//!   share to an operator, and the decryption of one's own slot;
//! - [`encrypted_key`]: the `encrypted_private_key.json` of SSV nodes;
//! - [`keyshares`]: building the file from its parts; [`json`] is its serde
//!   schema;
//! - [`verify`]: checking any keyshares file, one [`verify::Check`] per
//!   property;
//! - `dealer` (feature `test-utils`): a dealer-mode generator with fixed
//!   test keys, so that tests cover the format with vectors of their own.
//!
//! Nothing here touches the network or the ceremony: the ceremony supplies
//! the validator key, the shares' public keys, the threshold signature and
//! the ciphertexts, and [`keyshares::KeysharesBuilder`] lays them out.

pub mod created_at;
#[cfg(any(test, feature = "test-utils"))]
pub mod dealer;
pub mod encrypted_key;
pub mod json;
pub mod keyshares;
pub mod operator_key;
pub mod ownership;
pub mod shares_data;
pub mod verify;

pub use created_at::CreatedAt;
pub use keyshares::{Keyshares, KeysharesBuilder, OperatorSlot, ValidatorShares};
pub use operator_key::{Ciphertext, OperatorKey, OperatorPrivateKey};
pub use shares_data::SharesData;
pub use verify::{Check, verify_keyshares};

/// The `version` dvkg writes. ssv-keys 1.1 reads only `v1.1.x` and the SSV
/// SDK only `v1.1.0` or `v1.2.0`, so this is the one value both accept.
pub const KEYSHARES_VERSION: &str = "v1.1.0";

/// The cluster sizes SSV accepts: `n = 3f + 1` operators for `f` of 1 to 4
/// (the SSV node's `validateOperators`, ssv-dkg's `ValidatedOperatorData`,
/// the SDK's `isOperatorsLengthValid`).
pub const CLUSTER_SIZES: [usize; 4] = [4, 7, 10, 13];

/// The signing threshold of an SSV cluster of `operators`: `n − f` with
/// `f = (n − 1) / 3`, so 3, 5, 7 and 9 (ssv-dkg `utils.GetThreshold`).
/// `None` for a size SSV does not accept.
pub fn threshold_for(operators: usize) -> Option<usize> {
    CLUSTER_SIZES
        .contains(&operators)
        .then(|| operators - (operators - 1) / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_three_f_plus_one() {
        let table: Vec<(usize, Option<usize>)> = (1..=14).map(|n| (n, threshold_for(n))).collect();
        for (n, t) in table {
            let expected = match n {
                4 => Some(3),
                7 => Some(5),
                10 => Some(7),
                13 => Some(9),
                _ => None,
            };
            assert_eq!(t, expected, "n = {n}");
        }
    }
}
