//! The reshare parts of a definition: the previous lock, the dealers chosen
//! among its operators, and the validators reshared.
//!
//! A reshare keeps every validator key and moves its shares to a new
//! operator set (or a new threshold, or fresh shares for the same set). The
//! previous lock travels inside the definition, so every participant, a
//! newcomer included, derives the same plan from the definition alone, and
//! the definition hash commits to the previous lock. Its checks, before any
//! connection (`ceremony-specs/formats.md` §7.8):
//!
//! - the previous lock is intact (its lock hash) and its definition valid;
//! - every validator's public shares lie on one polynomial of degree
//!   `t_old − 1` whose value at 0 is the validator key: otherwise the
//!   dealers' weighted shares could not add up to the key, whoever deals;
//! - the dealers are distinct operators of the previous lock, at least
//!   `t_old` of them, ascending;
//! - the validators reshared are distinct positions of the previous lock,
//!   ascending; the network is the previous lock's.

use crate::ceremony::OperatorId;
use crate::ceremony::lock::ClusterLock;
use crate::crypto::{G1Point, Scalar};
use crate::dkg::plan::ShareIndex;
use crate::wire::Bytes;

use super::{ClusterDefinition, DefinitionError, OperatorRecord};

/// A dealer of a reshare: an operator of the previous lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReshareDealer {
    /// Its slot in this ceremony.
    pub slot: OperatorId,
    /// Its operator index in the previous lock.
    pub previous_operator: OperatorId,
    /// Its share index in the previous lock.
    pub previous_index: ShareIndex,
}

/// A reshare definition's parts, checked.
#[derive(Debug, Clone)]
pub struct ValidReshare {
    /// The previous lock.
    pub previous: ClusterLock,
    /// The validators reshared: their positions in the previous lock.
    pub subset: Vec<usize>,
    /// The dealers, in slot order.
    pub dealers: Vec<ReshareDealer>,
}

impl ValidReshare {
    /// The previous public shares of `dealer`, of every validator reshared.
    pub fn public_shares(&self, dealer: &ReshareDealer) -> Vec<Bytes<48>> {
        self.subset
            .iter()
            .filter_map(|&v| {
                self.previous
                    .validators
                    .get(v)
                    .and_then(|validator| {
                        validator
                            .public_shares
                            .get(dealer.previous_operator.position())
                    })
                    .copied()
            })
            .collect()
    }

    /// The validator keys reshared, in validator order.
    pub fn group_keys(&self) -> Vec<Bytes<48>> {
        self.subset
            .iter()
            .filter_map(|&v| self.previous.validators.get(v).map(|x| x.pubkey))
            .collect()
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DefinitionError {
    DefinitionError::Reshare {
        field,
        reason: reason.into(),
    }
}

/// The previous lock's operators that deal but are not operators of the new
/// cluster, in ascending previous index: they join as dealers only, after
/// the new operators. Lenient (invalid indices are skipped): validation
/// refuses those.
pub(super) fn departing_dealers(definition: &ClusterDefinition) -> Vec<&OperatorRecord> {
    let (Some(previous), Some(dealers)) = (&definition.previous_lock, &definition.dealers) else {
        return Vec::new();
    };
    dealers
        .iter()
        .filter_map(|&d| {
            usize::try_from(d)
                .ok()
                .and_then(|d| d.checked_sub(1))
                .and_then(|p| previous.definition.operators.get(p))
        })
        .filter(|record| {
            !definition
                .operators
                .iter()
                .any(|o| o.identity_key == record.identity_key)
        })
        .collect()
}

/// The Lagrange coefficients at `x` over `indices` (distinct, nonzero).
pub fn lagrange_at(indices: &[ShareIndex], x: u64) -> Option<Vec<Scalar>> {
    let x = Scalar::from_u64(x);
    indices
        .iter()
        .enumerate()
        .map(|(i, xi)| {
            let xi_s = Scalar::from_u64(xi.get());
            let mut numerator = Scalar::ONE;
            let mut denominator = Scalar::ONE;
            for (j, xj) in indices.iter().enumerate() {
                if i != j {
                    let xj_s = Scalar::from_u64(xj.get());
                    numerator = numerator.mul(&x.sub(&xj_s));
                    denominator = denominator.mul(&xi_s.sub(&xj_s));
                }
            }
            denominator.invert().map(|inv| numerator.mul(&inv))
        })
        .collect()
}

/// Checks that every validator's public shares in `lock` lie on one
/// polynomial of degree `t − 1` through its key.
///
/// # Errors
///
/// A message naming the validator and the first operator whose public share
/// is off the polynomial the first `t` define (or the key, at 0).
pub fn check_on_polynomial(lock: &ClusterLock) -> Result<(), String> {
    let t = usize::try_from(lock.definition.threshold).map_err(|_| "threshold".to_owned())?;
    let n = lock.share_indices.len();
    if t == 0 || t > n {
        return Err(format!("threshold {t} with {n} share indices"));
    }
    let first = lock.share_indices.get(..t).ok_or("too few share indices")?;
    let mut at_points = Vec::with_capacity(n - t + 1);
    at_points.push((None, lagrange_at(first, 0).ok_or("repeated share indices")?));
    for (position, x) in lock.share_indices.iter().enumerate().skip(t) {
        at_points.push((
            Some(position),
            lagrange_at(first, x.get()).ok_or("repeated share indices")?,
        ));
    }
    for (v, validator) in lock.validators.iter().enumerate() {
        if validator.public_shares.len() != n {
            return Err(format!(
                "validator {v} has {} public shares for {n} operators",
                validator.public_shares.len()
            ));
        }
        let points = validator
            .public_shares
            .iter()
            .take(t)
            .enumerate()
            .map(|(i, p)| {
                G1Point::from_bytes(&p.0)
                    .map_err(|e| format!("validator {v}: operator {}'s public share: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (position, lambdas) in &at_points {
            let mut sum = crate::crypto::group::G1Sum::default();
            for (point, lambda) in points.iter().zip(lambdas) {
                sum.add(&point.mul(lambda));
            }
            let expected = match position {
                None => Some(validator.pubkey),
                Some(p) => validator.public_shares.get(*p).copied(),
            };
            let expected = expected.ok_or("a missing public share")?;
            if sum.to_point().to_bytes() != expected.0 {
                return Err(match position {
                    None => format!(
                        "validator {v}: its public shares do not interpolate to its key: they are not shares of it"
                    ),
                    Some(p) => format!(
                        "validator {v}: operator {}'s public share is not on the polynomial of degree {} the others define: the shares do not belong together",
                        p + 1,
                        t - 1
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Validates the reshare fields of `definition` (whose kind is reshare and
/// whose kind fields are present).
pub(super) fn validate(definition: &ClusterDefinition) -> Result<ValidReshare, DefinitionError> {
    let Some(previous) = definition.previous_lock.as_deref() else {
        return Err(invalid("previous_lock", "missing"));
    };
    if previous.compute_hash() != previous.lock_hash.0 {
        return Err(invalid(
            "previous_lock",
            "its lock_hash does not match its contents: the lock was edited",
        ));
    }
    previous
        .definition
        .validate()
        .map_err(|e| invalid("previous_lock", format!("its definition is invalid: {e}")))?;
    if previous.share_indices.len() != previous.definition.operators.len() {
        return Err(invalid(
            "previous_lock",
            "it has not one share index per operator",
        ));
    }
    check_on_polynomial(previous).map_err(|e| invalid("previous_lock", e))?;
    if previous.definition.network != definition.network {
        return Err(invalid(
            "network",
            format!(
                "{} is not the previous lock's network {}: a reshare keeps its validators where they are",
                definition.network, previous.definition.network
            ),
        ));
    }

    let n_old = previous.definition.operators.len() as u64;
    let t_old = previous.definition.threshold;
    let dealers = definition.dealers.as_deref().unwrap_or_default();
    if dealers.windows(2).any(|w| w.first() >= w.last()) {
        return Err(invalid(
            "dealers",
            "list each dealer once, in ascending order",
        ));
    }
    if let Some(&bad) = dealers.iter().find(|&&d| d == 0 || d > n_old) {
        return Err(invalid(
            "dealers",
            format!("{bad} is not an operator of the previous lock (1 to {n_old})"),
        ));
    }
    if (dealers.len() as u64) < t_old {
        return Err(invalid(
            "dealers",
            format!(
                "{} dealers, but the previous lock's threshold is {t_old}: at least {t_old} previous operators must deal, or the key cannot be carried over",
                dealers.len()
            ),
        ));
    }

    let v_old = previous.validators.len();
    let subset: Vec<usize> = match &definition.validator_indices {
        None => (0..v_old).collect(),
        Some(list) => {
            if list.is_empty() {
                return Err(invalid(
                    "validator_indices",
                    "empty: leave it out to reshare every validator",
                ));
            }
            if list.windows(2).any(|w| w.first() >= w.last()) {
                return Err(invalid(
                    "validator_indices",
                    "list each validator once, in ascending order",
                ));
            }
            if let Some(&bad) = list.iter().find(|&&v| v >= v_old as u64) {
                return Err(invalid(
                    "validator_indices",
                    format!(
                        "{bad} is not a validator of the previous lock (0 to {})",
                        v_old - 1
                    ),
                ));
            }
            list.iter().map(|&v| v as usize).collect()
        }
    };
    if subset.len() as u64 != definition.validators {
        return Err(invalid(
            "validators",
            format!(
                "{} for {} validators reshared",
                definition.validators,
                subset.len()
            ),
        ));
    }

    // Slots: the new operators, then the departing dealers.
    let departing = departing_dealers(definition);
    let slot_of = |record: &OperatorRecord| -> Option<usize> {
        definition
            .operators
            .iter()
            .position(|o| o.identity_key == record.identity_key)
            .or_else(|| {
                departing
                    .iter()
                    .position(|o| o.identity_key == record.identity_key)
                    .map(|p| definition.operators.len() + p)
            })
    };
    let mut out = Vec::with_capacity(dealers.len());
    for &d in dealers {
        let previous_position = (d - 1) as usize;
        let record = previous
            .definition
            .operators
            .get(previous_position)
            .ok_or_else(|| invalid("dealers", "a dealer is not a previous operator"))?;
        let position = slot_of(record).ok_or_else(|| invalid("dealers", "a dealer has no slot"))?;
        let slot = OperatorId::from_position(position)
            .map_err(|_| invalid("dealers", "more than 128 participants"))?;
        let previous_operator = OperatorId::from_position(previous_position)
            .map_err(|_| invalid("dealers", "bad previous operator"))?;
        out.push(ReshareDealer {
            slot,
            previous_operator,
            previous_index: *previous
                .share_indices
                .get(previous_position)
                .ok_or_else(|| invalid("previous_lock", "a share index is missing"))?,
        });
    }
    out.sort_by_key(|d| d.slot);
    Ok(ValidReshare {
        previous: previous.clone(),
        subset,
        dealers: out,
    })
}
