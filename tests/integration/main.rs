//! dvkg's one integration test binary: vectors from the standards, and the
//! `dvkg` binary driven as a user would drive it.

mod bad_input;
mod ceremony;
mod cli;
mod common;
mod demo;
mod deposit_vectors;
mod dkg;
mod dkg_blame;
mod dkg_harness;
mod faults;
mod fuzz_regressions;
mod identity_cli;
mod keystore;
mod outcomes;
mod ping;
mod relay;
mod reshare;
mod secrets;
mod slashing;
mod slashing_sync;
mod split;
mod split_blame;
mod ssv;
mod ssv_ceremony;
mod vectors;
