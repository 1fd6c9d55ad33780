//! The SSZ containers a deposit signs, rooted with the `tree_hash` derive.
//!
//! Definitions from consensus-specs `phase0/beacon-chain.md`: `DepositMessage`,
//! `DepositData`, `ForkData`, `SigningData`, `compute_domain` and
//! `compute_signing_root`. Deposits use `DOMAIN_DEPOSIT` with the network's
//! `GENESIS_FORK_VERSION` and a zero `genesis_validators_root`
//! (`phase0/deposit-contract.md`, "Deposit domain"), so they are valid in every
//! fork.

use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

/// `DOMAIN_DEPOSIT`.
pub const DOMAIN_DEPOSIT: [u8; 4] = [0x03, 0x00, 0x00, 0x00];

/// `DepositMessage { pubkey, withdrawal_credentials, amount }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, TreeHash)]
pub struct DepositMessage {
    /// `Bytes48`: the validator's public key.
    pub pubkey: [u8; 48],
    /// `Bytes32`.
    pub withdrawal_credentials: [u8; 32],
    /// `Gwei` (uint64).
    pub amount: u64,
}

/// `DepositData { pubkey, withdrawal_credentials, amount, signature }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, TreeHash)]
pub struct DepositData {
    /// `Bytes48`.
    pub pubkey: [u8; 48],
    /// `Bytes32`.
    pub withdrawal_credentials: [u8; 32],
    /// `Gwei` (uint64).
    pub amount: u64,
    /// `BLSSignature` (Bytes96).
    pub signature: [u8; 96],
}

/// `ForkData { current_version, genesis_validators_root }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, TreeHash)]
struct ForkData {
    current_version: [u8; 4],
    genesis_validators_root: [u8; 32],
}

/// `SigningData { object_root, domain }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, TreeHash)]
struct SigningData {
    object_root: [u8; 32],
    domain: [u8; 32],
}

impl DepositMessage {
    /// `hash_tree_root(DepositMessage)`: the file's `deposit_message_root`.
    pub fn root(&self) -> [u8; 32] {
        self.tree_hash_root().0
    }

    /// `compute_signing_root(deposit_message, domain)`: what is signed.
    pub fn signing_root(&self, genesis_fork_version: [u8; 4]) -> [u8; 32] {
        SigningData {
            object_root: self.root(),
            domain: deposit_domain(genesis_fork_version),
        }
        .tree_hash_root()
        .0
    }
}

impl DepositData {
    /// `hash_tree_root(DepositData)`: the file's `deposit_data_root`, the
    /// value the deposit contract checks.
    pub fn root(&self) -> [u8; 32] {
        self.tree_hash_root().0
    }
}

/// `compute_domain(DOMAIN_DEPOSIT, fork_version, Root())`:
/// `DOMAIN_DEPOSIT ‖ hash_tree_root(ForkData)[..28]`.
pub fn deposit_domain(genesis_fork_version: [u8; 4]) -> [u8; 32] {
    let fork_data_root = ForkData {
        current_version: genesis_fork_version,
        genesis_validators_root: [0; 32],
    }
    .tree_hash_root()
    .0;
    let mut domain = [0u8; 32];
    let (head, tail) = domain.split_at_mut(4);
    head.copy_from_slice(&DOMAIN_DEPOSIT);
    tail.copy_from_slice(fork_data_root.get(..28).unwrap_or(&[0u8; 28]));
    domain
}
