//! The ownership signature of an SSV registration.
//!
//! Every validator registered with SSV carries, in the first 96 bytes of its
//! `sharesData`, a signature by the validator key itself over
//!
//! ```text
//! keccak256(ASCII("<owner>:<nonce>"))
//! ```
//!
//! where `<owner>` is the owner's address in EIP-55 mixed case with `0x`
//! (Go's `common.Address.String()`, alloy's `Address` `Display`, web3's
//! `toChecksumAddress`) and `<nonce>` the owner's registration nonce in
//! decimal. The 32-byte digest is signed as is, with Ethereum's ciphersuite
//! (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`) and no signing domain. It
//! binds the shares to one owner and one nonce, so that a registration cannot
//! be replayed by someone else or twice.
//!
//! Sources: ssvlabs/ssv `eth/eventhandler/validation.go` `verifySignature`,
//! ssvlabs/ssv-dkg `pkgs/crypto` `VerifyOwnerNonceSignature`, ssvlabs/ssv-keys
//! `KeySharesItem.validateSingleShares`, sigp/anchor `anchor/eth/src/util.rs`
//! `verify_signature` (whose `test_sig_verification` mainnet vector is the
//! unit test below).

use sha3::{Digest, Keccak256};

use crate::crypto::{PublicKey, SecretKey, Signature};
use crate::eth::ExecutionAddress;

/// The 32 bytes every validator key signs for its SSV registration:
/// `keccak256("<EIP-55 owner>:<decimal nonce>")`.
pub fn ownership_message(owner: &ExecutionAddress, nonce: u64) -> [u8; 32] {
    message_for_text(&owner.to_checksum(), nonce)
}

/// The digest of `"<owner_text>:<nonce>"` for an owner spelled exactly as
/// given, so that a verifier can tell a signer that did not checksum the
/// address (see [`crate::ssv::verify`]).
pub(crate) fn message_for_text(owner_text: &str, nonce: u64) -> [u8; 32] {
    Keccak256::digest(format!("{owner_text}:{nonce}").as_bytes()).into()
}

/// Signs the ownership message with a whole validator key (dealer mode and
/// tests; a ceremony threshold-signs [`ownership_message`] instead).
pub fn sign_ownership(key: &SecretKey, owner: &ExecutionAddress, nonce: u64) -> Signature {
    key.sign(&ownership_message(owner, nonce))
}

/// Whether `signature` is the validator's signature of `owner` and `nonce`.
pub fn verify_ownership(
    signature: &Signature,
    validator: &PublicKey,
    owner: &ExecutionAddress,
    nonce: u64,
) -> bool {
    signature.verify(validator, &ownership_message(owner, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The on-chain registration of sigp/anchor's `test_sig_verification`
    // (anchor/eth/src/util.rs), taken by its values.
    const OWNER: &str = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6";
    const NONCE: u64 = 8;
    const VALIDATOR: &str = "94cbce91137bfda4a7638941a68d6b156712bd1ce80e5dc580adc74a445099cbbfb9f97a6c7c89c6a87e28e0657821ac";
    const SIGNATURE: &str = "9720bfb2aa152d512232dc255f9565b226800bc362f1e2462e08a8856317497e3d21c5e2690b86f8e27f3c6c666d9487104c72847bba9493aa8fcc2d473b4c83dcc7b3db2f732da2a8a3df6e2609a65222e335321f694a7ab3ac16f55920d645";

    fn vector() -> (ExecutionAddress, PublicKey, Signature) {
        let owner: ExecutionAddress = OWNER.parse().unwrap();
        let validator = PublicKey::from_bytes(&hex::decode(VALIDATOR).unwrap()).unwrap();
        let signature = Signature::from_bytes(&hex::decode(SIGNATURE).unwrap()).unwrap();
        (owner, validator, signature)
    }

    #[test]
    fn mainnet_vector_verifies() {
        let (owner, validator, signature) = vector();
        assert_eq!(owner.to_checksum(), OWNER, "the owner is EIP-55 already");
        assert!(verify_ownership(&signature, &validator, &owner, NONCE));
    }

    #[test]
    fn mainnet_vector_fails_with_a_lowercase_address() {
        let (_, validator, signature) = vector();
        let lowercase = OWNER.to_ascii_lowercase();
        assert!(!signature.verify(&validator, &message_for_text(&lowercase, NONCE)));
        // The EIP-55 spelling of the same text verifies: only the case differs.
        assert!(signature.verify(&validator, &message_for_text(OWNER, NONCE)));
    }

    #[test]
    fn mainnet_vector_fails_with_another_nonce() {
        let (owner, validator, signature) = vector();
        assert!(!verify_ownership(&signature, &validator, &owner, NONCE + 1));
        assert!(!verify_ownership(&signature, &validator, &owner, NONCE - 1));
    }

    #[test]
    fn the_message_is_keccak_of_the_checksummed_text() {
        let owner: ExecutionAddress = OWNER.to_ascii_lowercase().parse().unwrap();
        let expected: [u8; 32] = Keccak256::digest(format!("{OWNER}:8")).into();
        assert_eq!(ownership_message(&owner, 8), expected);
    }
}
