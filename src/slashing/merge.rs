//! Merging a cluster's histories into one safe history.
//!
//! Spec: `ceremony-specs/slashing.md`, "Merging a cluster's histories".
//!
//! In a distributed validator each operator's validator client signs with
//! its *share* of the validator key, so each node's history is keyed by that
//! node's share keys; a history may also be keyed by the validator keys. A
//! share signature is only ever part of a duty the validator signed, so a
//! message any operator signed with any share counts against the validator,
//! and therefore against every operator's share of it. The merge maps every
//! key to its validator through a [`KeyMap`] (built from the cluster lock),
//! keeps per validator the highest slot, the highest source and the highest
//! target (each taken separately, as minification does), and writes the
//! result keyed by one operator's shares or by the validator keys.
//!
//! Pure: no file or database access.

use std::collections::HashMap;

use super::interchange::{Interchange, InterchangeError, Watermarks};
use super::{PublicKeyBytes, Root};
use crate::ceremony::lock::ClusterLock;

/// One validator's keys: its public key and every operator's public share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorKeys {
    /// The validator public key.
    pub pubkey: PublicKeyBytes,
    /// Operator `m`'s public share at position `m - 1`.
    pub shares: Vec<PublicKeyBytes>,
}

/// Which key of each validator a history is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedBy {
    /// Operator `I`'s shares (1-based, as in the lock and definition).
    Operator(usize),
    /// The validator public keys.
    Validators,
}

/// Every key of a cluster mapped to its validator.
#[derive(Debug, Clone)]
pub struct KeyMap {
    validators: Vec<ValidatorKeys>,
    index: HashMap<PublicKeyBytes, usize>,
    operators: usize,
}

/// Why a key map or a merge was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A key map with no validators.
    #[error("the key map has no validators")]
    NoValidators,
    /// Validators with different numbers of shares.
    #[error("validator {validator} has {got} shares, validator 1 has {expected}")]
    ShareCount {
        /// The validator (1-based).
        validator: usize,
        /// Shares of validator 1.
        expected: usize,
        /// Shares of this one.
        got: usize,
    },
    /// One key used twice (for two validators, or as share and validator).
    #[error("key {pubkey} appears more than once in the key map")]
    DuplicateKey {
        /// The key.
        pubkey: PublicKeyBytes,
    },
    /// An operator outside `1..=n`.
    #[error("there is no operator {operator}: the cluster has operators 1 to {operators}")]
    NoSuchOperator {
        /// The operator asked for.
        operator: usize,
        /// How many there are.
        operators: usize,
    },
    /// An input for another chain or format version.
    #[error("{file}: {source}")]
    Interchange {
        /// The input's name (its path).
        file: String,
        /// What is wrong.
        source: InterchangeError,
    },
    /// An input with a key that is neither a validator nor a share.
    #[error("{file}: key {pubkey} is neither a validator nor a share of this cluster")]
    UnknownKey {
        /// The input's name (its path).
        file: String,
        /// The key.
        pubkey: PublicKeyBytes,
    },
}

impl KeyMap {
    /// A key map over `validators`.
    ///
    /// # Errors
    ///
    /// [`MergeError`] if there are no validators, share counts differ or a
    /// key appears twice.
    pub fn new(validators: Vec<ValidatorKeys>) -> Result<Self, MergeError> {
        let operators = validators
            .first()
            .map(|v| v.shares.len())
            .ok_or(MergeError::NoValidators)?;
        let mut index = HashMap::new();
        for (i, validator) in validators.iter().enumerate() {
            if validator.shares.len() != operators {
                return Err(MergeError::ShareCount {
                    validator: i + 1,
                    expected: operators,
                    got: validator.shares.len(),
                });
            }
            for key in std::iter::once(&validator.pubkey).chain(&validator.shares) {
                if index.insert(*key, i).is_some() {
                    return Err(MergeError::DuplicateKey { pubkey: *key });
                }
            }
        }
        Ok(Self {
            validators,
            index,
            operators,
        })
    }

    /// The key map of a cluster lock: `validators[v].pubkey` and
    /// `validators[v].public_shares[operator - 1]`.
    ///
    /// # Errors
    ///
    /// As [`KeyMap::new`].
    pub fn from_lock(lock: &ClusterLock) -> Result<Self, MergeError> {
        Self::new(
            lock.validators
                .iter()
                .map(|v| ValidatorKeys {
                    pubkey: PublicKeyBytes(v.pubkey.0),
                    shares: v
                        .public_shares
                        .iter()
                        .map(|s| PublicKeyBytes(s.0))
                        .collect(),
                })
                .collect(),
        )
    }

    /// The number of operators (shares per validator).
    pub fn operators(&self) -> usize {
        self.operators
    }

    /// The validators, in order.
    pub fn validators(&self) -> &[ValidatorKeys] {
        &self.validators
    }

    /// The validator (0-based) a key belongs to.
    pub fn validator_of(&self, key: &PublicKeyBytes) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Checks that `keyed_by` names an operator of this cluster.
    ///
    /// # Errors
    ///
    /// [`MergeError::NoSuchOperator`].
    pub fn check(&self, keyed_by: KeyedBy) -> Result<(), MergeError> {
        match keyed_by {
            KeyedBy::Operator(operator) if operator == 0 || operator > self.operators => {
                Err(MergeError::NoSuchOperator {
                    operator,
                    operators: self.operators,
                })
            }
            KeyedBy::Operator(_) | KeyedBy::Validators => Ok(()),
        }
    }

    /// Validator `v`'s key in the `keyed_by` form.
    fn key_of(&self, v: &ValidatorKeys, keyed_by: KeyedBy) -> Option<PublicKeyBytes> {
        match keyed_by {
            KeyedBy::Validators => Some(v.pubkey),
            KeyedBy::Operator(operator) => operator
                .checked_sub(1)
                .and_then(|i| v.shares.get(i))
                .copied(),
        }
    }
}

/// One input of a merge: a name for messages (the file's path) and its
/// parsed history.
#[derive(Debug, Clone, Copy)]
pub struct MergeInput<'a> {
    /// What to call it in errors.
    pub name: &'a str,
    /// The history.
    pub interchange: &'a Interchange,
}

/// Merges several histories of one cluster into one minified history keyed
/// by `keyed_by`, for `genesis_validators_root`.
///
/// The output has one record per validator of the key map, in the lock's
/// order: at most one block (the highest slot any input signed for any key
/// of that validator) and one attestation (the highest source and the
/// highest target, each its own maximum), without signing roots. A
/// validator no input mentions gets an empty record, so that importing the
/// output registers every key.
///
/// # Errors
///
/// [`MergeError`] naming the input and key: another version or chain, a key
/// the map does not know, or an operator outside the cluster. Nothing is
/// produced then.
pub fn merge(
    inputs: &[MergeInput<'_>],
    keys: &KeyMap,
    keyed_by: KeyedBy,
    genesis_validators_root: Root,
) -> Result<Interchange, MergeError> {
    keys.check(keyed_by)?;
    let mut marks = vec![Watermarks::default(); keys.validators.len()];
    for input in inputs {
        input
            .interchange
            .check_for(genesis_validators_root)
            .map_err(|source| MergeError::Interchange {
                file: input.name.to_owned(),
                source,
            })?;
        for record in &input.interchange.data {
            let slot = keys
                .validator_of(&record.pubkey)
                .and_then(|v| marks.get_mut(v))
                .ok_or_else(|| MergeError::UnknownKey {
                    file: input.name.to_owned(),
                    pubkey: record.pubkey,
                })?;
            slot.add_record(record);
        }
    }
    let mut out = Interchange::empty(genesis_validators_root);
    for (validator, mark) in keys.validators.iter().zip(marks) {
        if let Some(key) = keys.key_of(validator, keyed_by) {
            out.data.push(mark.into_record(key));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::interchange::{InterchangeData, SignedAttestation, SignedBlock};
    use super::*;

    const ROOT: Root = Root([7; 32]);

    fn key(v: u8, operator: u8) -> PublicKeyBytes {
        let mut bytes = [0u8; 48];
        bytes[0] = v;
        bytes[1] = operator;
        PublicKeyBytes(bytes)
    }

    /// Two validators, three operators; operator 0 is the validator key.
    fn keymap() -> KeyMap {
        KeyMap::new(
            (1..=2)
                .map(|v| ValidatorKeys {
                    pubkey: key(v, 0),
                    shares: (1..=3).map(|m| key(v, m)).collect(),
                })
                .collect(),
        )
        .unwrap()
    }

    /// A key, its block slots and its (source, target) attestations.
    type Record = (PublicKeyBytes, Vec<u64>, Vec<(u64, u64)>);

    fn history(records: Vec<Record>) -> Interchange {
        let mut out = Interchange::empty(ROOT);
        for (pubkey, slots, atts) in records {
            out.data.push(InterchangeData {
                pubkey,
                signed_blocks: slots
                    .into_iter()
                    .map(|slot| SignedBlock {
                        slot,
                        signing_root: Some(Root([1; 32])),
                    })
                    .collect(),
                signed_attestations: atts
                    .into_iter()
                    .map(|(s, t)| SignedAttestation {
                        source_epoch: s,
                        target_epoch: t,
                        signing_root: None,
                    })
                    .collect(),
            });
        }
        out
    }

    #[test]
    fn shares_of_every_operator_count_against_the_validator() {
        let keys = keymap();
        let node1 = history(vec![(key(1, 1), vec![10, 30], vec![(2, 3), (3, 9)])]);
        let node2 = history(vec![
            (key(1, 2), vec![20], vec![(5, 6)]),
            (key(2, 2), vec![], vec![(1, 2)]),
        ]);
        let by_validator = history(vec![(key(1, 0), vec![25], vec![])]);
        let inputs = [
            MergeInput {
                name: "a.json",
                interchange: &node1,
            },
            MergeInput {
                name: "b.json",
                interchange: &node2,
            },
            MergeInput {
                name: "c.json",
                interchange: &by_validator,
            },
        ];
        let out = merge(&inputs, &keys, KeyedBy::Operator(3), ROOT).unwrap();
        assert_eq!(out.data.len(), 2);
        assert_eq!(out.data[0].pubkey, key(1, 3));
        assert_eq!(out.data[0].signed_blocks.len(), 1);
        assert_eq!(out.data[0].signed_blocks[0].slot, 30);
        assert_eq!(out.data[0].signed_blocks[0].signing_root, None);
        let att = out.data[0].signed_attestations[0];
        assert_eq!((att.source_epoch, att.target_epoch), (5, 9));
        assert_eq!(out.data[1].pubkey, key(2, 3));
        assert!(out.data[1].signed_blocks.is_empty());
        let att = out.data[1].signed_attestations[0];
        assert_eq!((att.source_epoch, att.target_epoch), (1, 2));

        let grouped = merge(&inputs, &keys, KeyedBy::Validators, ROOT).unwrap();
        assert_eq!(grouped.data[0].pubkey, key(1, 0));
        assert_eq!(grouped.data[0].signed_blocks[0].slot, 30);
    }

    #[test]
    fn refuses_unknown_keys_other_chains_and_operators() {
        let keys = keymap();
        let stranger = history(vec![(key(9, 1), vec![1], vec![])]);
        let err = merge(
            &[MergeInput {
                name: "x.json",
                interchange: &stranger,
            }],
            &keys,
            KeyedBy::Validators,
            ROOT,
        )
        .unwrap_err();
        assert_eq!(
            err,
            MergeError::UnknownKey {
                file: "x.json".into(),
                pubkey: key(9, 1)
            }
        );
        assert!(err.to_string().starts_with("x.json: key 0x0901"), "{err}");

        let mut other = history(vec![]);
        other.metadata.genesis_validators_root = Root([8; 32]);
        let err = merge(
            &[MergeInput {
                name: "y.json",
                interchange: &other,
            }],
            &keys,
            KeyedBy::Validators,
            ROOT,
        )
        .unwrap_err();
        assert!(matches!(err, MergeError::Interchange { ref file, .. } if file == "y.json"));

        for operator in [0, 4] {
            assert_eq!(
                merge(&[], &keys, KeyedBy::Operator(operator), ROOT).unwrap_err(),
                MergeError::NoSuchOperator {
                    operator,
                    operators: 3
                }
            );
        }
    }

    #[test]
    fn a_key_map_refuses_duplicates_and_ragged_shares() {
        let dup = vec![
            ValidatorKeys {
                pubkey: key(1, 0),
                shares: vec![key(1, 1)],
            },
            ValidatorKeys {
                pubkey: key(2, 0),
                shares: vec![key(1, 1)],
            },
        ];
        assert_eq!(
            KeyMap::new(dup).unwrap_err(),
            MergeError::DuplicateKey { pubkey: key(1, 1) }
        );
        let ragged = vec![
            ValidatorKeys {
                pubkey: key(1, 0),
                shares: vec![key(1, 1)],
            },
            ValidatorKeys {
                pubkey: key(2, 0),
                shares: vec![],
            },
        ];
        assert!(matches!(
            KeyMap::new(ragged),
            Err(MergeError::ShareCount { validator: 2, .. })
        ));
        assert_eq!(KeyMap::new(vec![]).unwrap_err(), MergeError::NoValidators);
    }
}
