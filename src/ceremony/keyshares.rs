//! `keyshares.json` of an SSV cluster, from the ceremony's public outcome:
//! the definition (owner, nonces, `createdAt`, operator ids and keys) and
//! the validators' keys and public shares in the lock, the ownership
//! signatures in the lock, and each operator's ciphertexts in its signed
//! partial-signature message of the transcript.
//!
//! Every operator builds it from the same lock and transcript, so every
//! operator writes the same bytes; `dvkg verify` builds it again and
//! compares. Format: `ceremony-specs/formats.md` §10.

use super::definition::DefinitionError;
use super::lock::ClusterLock;
use crate::crypto::{BlsError, PublicKey, Signature};
use crate::dkg::transcript::Transcript;
use crate::ssv::operator_key::CIPHERTEXT_BYTES;
use crate::ssv::{Ciphertext, Keyshares, KeysharesBuilder, OperatorSlot, ValidatorShares};

/// The file's name in an output directory.
pub const KEYSHARES_FILE: &str = "keyshares.json";

/// Why the file cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysharesError {
    /// The lock's definition is invalid.
    #[error("the lock's definition: {0}")]
    Definition(#[from] DefinitionError),
    /// The lock has no SSV part, or one of another length.
    #[error("the lock holds no ownership signature for validator {0}")]
    NoOwnership(usize),
    /// The transcript lacks an operator's partial signatures.
    #[error("the transcript has {got} partial-signature messages for {expected} operators")]
    Partials {
        /// Messages found.
        got: usize,
        /// Operators.
        expected: usize,
    },
    /// An operator's message lacks the ciphertext of a validator.
    #[error("operator {operator} sent no 256-byte ciphertext for validator {validator}")]
    Ciphertext {
        /// The operator (slot).
        operator: usize,
        /// The validator.
        validator: usize,
    },
    /// A key or signature of the lock does not decode.
    #[error("validator {validator}: {reason}")]
    Point {
        /// The validator.
        validator: usize,
        /// Why.
        reason: BlsError,
    },
    /// The parts break one of SSV's rules.
    #[error(transparent)]
    Build(#[from] crate::ssv::keyshares::BuildError),
    /// Encoding failed (a bug).
    #[error("failed to encode keyshares.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The `keyshares.json` of a lock and its transcript, as built by SSV's
/// rules; `None` for a cluster that is not an SSV cluster.
///
/// The transcript must be the lock's (the caller checks its hash); its
/// partial-signature messages are in holder order, which for an SSV
/// definition is ascending operator id, the order of `sharesData`.
///
/// # Errors
///
/// [`KeysharesError`] naming what is missing.
pub fn build(
    lock: &ClusterLock,
    transcript: &Transcript,
) -> Result<Option<Keyshares>, KeysharesError> {
    let valid = lock.definition.validate()?;
    let Some(ssv) = valid.ssv else {
        return Ok(None);
    };
    let ssv_lock = lock.ssv.as_ref().ok_or(KeysharesError::NoOwnership(0))?;
    let n = ssv.operators.len();
    if transcript.partials.len() != n {
        return Err(KeysharesError::Partials {
            got: transcript.partials.len(),
            expected: n,
        });
    }
    let mut builder = KeysharesBuilder::new(ssv.owner, ssv.created_at.clone());
    for (v, validator) in lock.validators.iter().enumerate() {
        let point = |reason| KeysharesError::Point {
            validator: v,
            reason,
        };
        let registration = ssv_lock
            .validators
            .get(v)
            .ok_or(KeysharesError::NoOwnership(v))?;
        let mut operators = Vec::with_capacity(n);
        for (position, ((id, key), partials)) in
            ssv.operators.iter().zip(&transcript.partials).enumerate()
        {
            let ciphertext = partials
                .body
                .attachments
                .get(v)
                .filter(|a| a.0.len() == CIPHERTEXT_BYTES)
                .and_then(|a| Ciphertext::from_slice(&a.0))
                .ok_or(KeysharesError::Ciphertext {
                    operator: position + 1,
                    validator: v,
                })?;
            let share = validator
                .public_shares
                .get(position)
                .ok_or(KeysharesError::Point {
                    validator: v,
                    reason: BlsError::BadEncoding,
                })?;
            operators.push(OperatorSlot {
                id: *id,
                operator_key: key.registered().to_owned(),
                share_public_key: PublicKey::from_bytes(&share.0).map_err(point)?,
                ciphertext,
            });
        }
        builder = builder.validator(ValidatorShares {
            public_key: PublicKey::from_bytes(&validator.pubkey.0).map_err(point)?,
            nonce: registration.nonce,
            signature: Signature::from_bytes(&registration.ownership_signature.0).map_err(point)?,
            operators,
        });
    }
    Ok(Some(builder.build()?))
}

/// The file's bytes: [`build`], as written.
///
/// # Errors
///
/// As [`build`].
pub fn file_text(
    lock: &ClusterLock,
    transcript: &Transcript,
) -> Result<Option<String>, KeysharesError> {
    build(lock, transcript)?
        .map(|k| k.to_json_string().map_err(KeysharesError::from))
        .transpose()
}
