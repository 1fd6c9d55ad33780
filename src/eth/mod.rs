//! Ethereum-specific outputs, isolated from the DKG core.
//!
//! Formats as this project writes them are described in
//! `ceremony-specs/formats.md`; every constant here cites its source.

pub mod amount;
pub mod credentials;
pub mod deposit;
pub mod keystore;
pub mod network;
pub mod ssz;
pub mod statements;

pub use amount::{ETH_IN_GWEI, Gwei};
pub use credentials::{ExecutionAddress, WithdrawalCredentials, WithdrawalKind};
pub use network::Network;
