//! dvkg: distributed validator key generation.
//!
//! N operators of an Ethereum distributed validator cluster run one ceremony
//! together and each leaves with a share of every validator key; the full
//! private key is never assembled anywhere. This crate is the library behind
//! the `dvkg` binary, laid out so that each concern has one home:
//!
//! - [`crypto`]: the only gateway to BLS12-381 (blst); secret wrappers.
//! - [`eth`]: Ethereum formats (networks, withdrawal credentials, deposit
//!   data, EIP-2335 keystores), isolated from the protocol.
//! - [`slashing`]: slashing protection (EIP-3076 database, interchange
//!   files, merging a cluster's histories).
//! - [`ssv`]: the SSV network's `keyshares.json` and operator keys.
//! - [`cli`]: the command-line edge; [`error`]: user-facing errors and exit
//!   codes.
//!
//! The normative description of every format lives in `ceremony-specs/`.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod ceremony;
pub mod check;
pub mod cli;
pub mod collect;
pub mod crypto;
pub mod dkg;
pub mod error;
pub mod eth;
#[cfg(feature = "test-utils")]
pub mod fuzzing;
pub mod hexfmt;
pub mod identity;
pub mod net;
pub mod slashing;
pub mod ssv;
pub mod store;
pub mod verify;
pub mod wire;
