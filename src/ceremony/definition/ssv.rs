//! The SSV parts of a definition: each operator's SSV operator id and
//! registered key, and the cluster's owner, first nonce and `createdAt`.
//!
//! An SSV definition (one with a top-level `ssv` object) makes a DKG whose
//! shares sit at the operators' SSV ids, whose validator keys also sign the
//! SSV ownership message, and whose holders attach their shares encrypted to
//! their own operator keys (`ceremony-specs/formats.md` §3.3, §10).
//!
//! The rules, each SSV's own (the SSV node's `validateOperators`, ssv-dkg's
//! `ValidatedOperatorData`, the SDK's `isOperatorsLengthValid`):
//!
//! - 4, 7, 10 or 13 operators, and threshold `n − (n−1)/3`;
//! - every operator has an SSV id (1 or more) and an RSA-2048 key, no two
//!   the same;
//! - operators are listed in ascending id order (SSV's order of the slots
//!   in `sharesData`), which `dvkg definition new` sorts them into.

use serde::{Deserialize, Serialize};

use super::{ClusterDefinition, DefinitionError, RecordError, parse_address};
use crate::eth::ExecutionAddress;
use crate::ssv::{self, CreatedAt, OperatorKey};

/// An operator's SSV registration: its operator id and its registered
/// public key, verbatim (`operatorKey` in `keyshares.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsvOperator {
    /// The SSV operator id: 1 or more. Its shares are evaluated there.
    pub operator_id: u64,
    /// The registered key: base64 of a PEM, exactly as SSV publishes it.
    pub operator_key: String,
}

impl SsvOperator {
    /// Checks the id and parses the key (which must be RSA-2048).
    ///
    /// # Errors
    ///
    /// [`RecordError::SsvOperatorId`] or [`RecordError::SsvOperatorKey`].
    pub fn validate(&self) -> Result<OperatorKey, RecordError> {
        if self.operator_id == 0 {
            return Err(RecordError::SsvOperatorId);
        }
        OperatorKey::from_registered(&self.operator_key)
            .map_err(|source| RecordError::SsvOperatorKey { source })
    }
}

/// The cluster's SSV registration parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsvCluster {
    /// The owner's execution address, EIP-55 checksummed: the account that
    /// registers the validators, whose address every ownership signature
    /// binds.
    pub owner: String,
    /// The owner's registration nonce for validator 0; validator `v` uses
    /// `nonce + v`.
    pub nonce: u64,
    /// The `createdAt` every operator writes into `keyshares.json`.
    pub created_at: String,
}

/// An SSV definition's parameters, checked and typed.
#[derive(Debug, Clone)]
pub struct ValidSsv {
    /// The owner.
    pub owner: ExecutionAddress,
    /// The nonce of validator 0.
    pub first_nonce: u64,
    /// `createdAt`.
    pub created_at: CreatedAt,
    /// Each operator's id and key, in operator order (ascending id).
    pub operators: Vec<(u64, OperatorKey)>,
}

impl ValidSsv {
    /// The operator ids, in operator order.
    pub fn ids(&self) -> Vec<u64> {
        self.operators.iter().map(|(id, _)| *id).collect()
    }
}

/// What `dvkg definition new` is given for an SSV cluster.
#[derive(Debug, Clone)]
pub struct NewSsv {
    /// The owner.
    pub owner: ExecutionAddress,
    /// The nonce of validator 0.
    pub nonce: u64,
    /// `createdAt`.
    pub created_at: CreatedAt,
}

impl NewSsv {
    /// The definition's `ssv` object.
    pub fn to_cluster(self) -> SsvCluster {
        SsvCluster {
            owner: self.owner.to_checksum(),
            nonce: self.nonce,
            created_at: self.created_at.to_string(),
        }
    }
}

/// Checks an SSV definition's size and threshold, before the general rules
/// (whose messages would not name SSV's).
pub(super) fn check_size(definition: &ClusterDefinition) -> Result<(), DefinitionError> {
    let n = definition.operators.len();
    let expected = ssv::threshold_for(n).ok_or(DefinitionError::SsvClusterSize { operators: n })?;
    if definition.threshold != expected as u64 {
        return Err(DefinitionError::SsvThreshold {
            operators: n,
            threshold: definition.threshold,
            expected,
        });
    }
    Ok(())
}

/// Checks the SSV rules of a definition with an `ssv` object (the rest of
/// it already checked).
pub(super) fn validate(
    definition: &ClusterDefinition,
    cluster: &SsvCluster,
) -> Result<ValidSsv, DefinitionError> {
    check_size(definition)?;
    let n = definition.operators.len();
    let mut operators: Vec<(u64, OperatorKey)> = Vec::with_capacity(n);
    for (position, record) in definition.operators.iter().enumerate() {
        let index = position + 1;
        let Some(registration) = &record.ssv else {
            return Err(DefinitionError::SsvOperatorMissing { index });
        };
        let key = registration
            .validate()
            .map_err(|source| DefinitionError::Operator { index, source })?;
        for (earlier, (id, other)) in operators.iter().enumerate() {
            let duplicate =
                |field: &'static str, value: String| DefinitionError::DuplicateOperator {
                    field,
                    first: earlier + 1,
                    second: index,
                    value,
                };
            if *id == registration.operator_id {
                return Err(duplicate("ssv operator_id", id.to_string()));
            }
            if other.same_key(&key) {
                let start: String = registration.operator_key.chars().take(24).collect();
                return Err(duplicate("ssv operator_key", format!("{start}…")));
            }
        }
        if let Some((previous, _)) = operators.last()
            && *previous > registration.operator_id
        {
            return Err(DefinitionError::SsvIdsNotAscending {
                index,
                previous: *previous,
                id: registration.operator_id,
            });
        }
        operators.push((registration.operator_id, key));
    }
    let owner = parse_address("ssv.owner", &cluster.owner)?;
    let last = definition.validators.saturating_sub(1);
    if cluster.nonce.checked_add(last).is_none() {
        return Err(DefinitionError::SsvField {
            field: "ssv.nonce",
            reason: format!(
                "{} validators from nonce {} pass the largest nonce",
                definition.validators, cluster.nonce
            ),
        });
    }
    let created_at =
        CreatedAt::parse(&cluster.created_at).map_err(|e| DefinitionError::SsvField {
            field: "ssv.created_at",
            reason: e.to_string(),
        })?;
    Ok(ValidSsv {
        owner,
        first_nonce: cluster.nonce,
        created_at,
        operators,
    })
}
