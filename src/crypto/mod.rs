//! The only gateway to BLS12-381.
//!
//! Everything else in the crate imports keys, signatures, scalars and points
//! from here and never names `blst` or `blstrs` directly, so that the
//! validation rules (length, curve, subgroup, identity) are applied in one
//! place. Signatures use Ethereum's ciphersuite
//! `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` ("min_pk": public keys in G1,
//! signatures in G2), as in draft-irtf-cfrg-bls-signature-04 and the
//! consensus specs.
//!
//! `group.rs` holds the one `unsafe` block of the crate (a volatile wipe of
//! scalars), with its safety argument.

mod bls;
pub mod group;
pub mod identity;
pub mod secret;

pub use bls::{
    BlsError, PUBLIC_KEY_BYTES, PublicKey, SECRET_KEY_BYTES, SIGNATURE_BYTES, SIGNATURE_DST,
    SecretKey, Signature, verify_batch,
};
pub use group::{G1Point, G2Point, Scalar};
pub use secret::SecretBytes;
