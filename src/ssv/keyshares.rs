//! Building a `keyshares.json` from its parts.
//!
//! The ceremony (or the dealer of the tests) supplies, per validator, the
//! validator public key, its owner nonce, the ownership signature and, per
//! operator in ascending id order, the id, the registered operator key, the
//! share public key and the ciphertext. [`KeysharesBuilder`] checks the rules
//! SSV's tools check and lays the file out as ssv-dkg does
//! ([`crate::ssv::json`]).

use crate::crypto::{PublicKey, Signature};
use crate::eth::ExecutionAddress;

use super::json::{KeysharesJson, OperatorJson, PayloadJson, ShareDataJson, ShareEntryJson};
use super::operator_key::{Ciphertext, OperatorKey, OperatorKeyError};
use super::shares_data::SharesData;
use super::{CLUSTER_SIZES, CreatedAt, KEYSHARES_VERSION};

/// One operator's part of one validator.
#[derive(Debug, Clone)]
pub struct OperatorSlot {
    /// The SSV operator id (the share's evaluation point).
    pub id: u64,
    /// The registered operator key, verbatim.
    pub operator_key: String,
    /// The public key of this operator's share.
    pub share_public_key: PublicKey,
    /// The share, encrypted to the operator.
    pub ciphertext: Ciphertext,
}

/// One validator of the file.
#[derive(Debug, Clone)]
pub struct ValidatorShares {
    /// The validator (group) public key.
    pub public_key: PublicKey,
    /// The owner nonce this registration uses.
    pub nonce: u64,
    /// The validator key's signature of the ownership message for `nonce`.
    pub signature: Signature,
    /// The operators, in ascending id order.
    pub operators: Vec<OperatorSlot>,
}

/// Why the parts do not make a keyshares file SSV accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No validator.
    #[error("a keyshares file needs at least one validator")]
    NoValidators,
    /// A cluster size SSV does not accept.
    #[error("validator {validator} has {operators} operators; SSV clusters have 4, 7, 10 or 13")]
    ClusterSize {
        /// Index of the validator.
        validator: usize,
        /// Operators given.
        operators: usize,
    },
    /// Operator id 0.
    #[error("validator {validator}: operator ids start at 1, got 0")]
    ZeroId {
        /// Index of the validator.
        validator: usize,
    },
    /// Ids out of order or repeated.
    #[error(
        "validator {validator}: operator ids must be strictly ascending, got {id} after {previous}"
    )]
    IdsNotAscending {
        /// Index of the validator.
        validator: usize,
        /// The id before.
        previous: u64,
        /// The id out of place.
        id: u64,
    },
    /// Validators with different operators or keys.
    #[error("validator {validator} has other operators (ids or keys) than validator 0")]
    OperatorsDiffer {
        /// Index of the validator.
        validator: usize,
    },
    /// Nonces that are not consecutive.
    #[error(
        "validator {validator} has nonce {got}; nonces go up by one per validator, expected {expected}"
    )]
    NonceNotConsecutive {
        /// Index of the validator.
        validator: usize,
        /// The nonce expected.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// An operator key SSV would refuse.
    #[error("operator {id}: unusable operator key")]
    OperatorKey {
        /// The operator.
        id: u64,
        /// Why.
        #[source]
        source: OperatorKeyError,
    },
    /// The same public key twice in one validator.
    #[error(
        "validator {validator}: the same validator public key appears twice (validators {first} and {validator})"
    )]
    DuplicateValidator {
        /// The later validator.
        validator: usize,
        /// The earlier one.
        first: usize,
    },
}

/// Assembles a keyshares file.
#[derive(Debug, Clone)]
pub struct KeysharesBuilder {
    owner: ExecutionAddress,
    created_at: CreatedAt,
    validators: Vec<ValidatorShares>,
}

impl KeysharesBuilder {
    /// A file for `owner`, stamped `created_at`.
    pub fn new(owner: ExecutionAddress, created_at: CreatedAt) -> Self {
        Self {
            owner,
            created_at,
            validators: Vec::new(),
        }
    }

    /// Adds the next validator (in nonce order).
    #[must_use]
    pub fn validator(mut self, validator: ValidatorShares) -> Self {
        self.validators.push(validator);
        self
    }

    /// Checks the rules and lays the file out.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the validator, operator and rule.
    pub fn build(self) -> Result<Keyshares, BuildError> {
        let first = self.validators.first().ok_or(BuildError::NoValidators)?;
        let first_nonce = first.nonce;
        let reference: Vec<(u64, &str)> = first
            .operators
            .iter()
            .map(|slot| (slot.id, slot.operator_key.as_str()))
            .collect();
        for slot in &first.operators {
            OperatorKey::from_registered(&slot.operator_key).map_err(|source| {
                BuildError::OperatorKey {
                    id: slot.id,
                    source,
                }
            })?;
        }
        let mut shares = Vec::with_capacity(self.validators.len());
        for (index, validator) in self.validators.iter().enumerate() {
            check_operators(index, validator)?;
            let ids: Vec<(u64, &str)> = validator
                .operators
                .iter()
                .map(|slot| (slot.id, slot.operator_key.as_str()))
                .collect();
            if ids != reference {
                return Err(BuildError::OperatorsDiffer { validator: index });
            }
            let expected = first_nonce.saturating_add(index as u64);
            if validator.nonce != expected {
                return Err(BuildError::NonceNotConsecutive {
                    validator: index,
                    expected,
                    got: validator.nonce,
                });
            }
            if let Some(first) = self
                .validators
                .iter()
                .take(index)
                .position(|other| other.public_key == validator.public_key)
            {
                return Err(BuildError::DuplicateValidator {
                    validator: index,
                    first,
                });
            }
            shares.push(entry(&self.owner, validator));
        }
        Ok(Keyshares(KeysharesJson {
            version: KEYSHARES_VERSION.to_owned(),
            created_at: self.created_at.as_str().to_owned(),
            shares,
        }))
    }
}

fn check_operators(index: usize, validator: &ValidatorShares) -> Result<(), BuildError> {
    let n = validator.operators.len();
    if !CLUSTER_SIZES.contains(&n) {
        return Err(BuildError::ClusterSize {
            validator: index,
            operators: n,
        });
    }
    let mut previous = 0u64;
    for slot in &validator.operators {
        if slot.id == 0 {
            return Err(BuildError::ZeroId { validator: index });
        }
        if slot.id <= previous {
            return Err(BuildError::IdsNotAscending {
                validator: index,
                previous,
                id: slot.id,
            });
        }
        previous = slot.id;
    }
    Ok(())
}

fn entry(owner: &ExecutionAddress, validator: &ValidatorShares) -> ShareEntryJson {
    let public_key = format!("0x{}", validator.public_key.to_hex());
    let mut share_public_keys = Vec::with_capacity(validator.operators.len());
    let mut ciphertexts = Vec::with_capacity(validator.operators.len());
    for slot in &validator.operators {
        share_public_keys.push(slot.share_public_key.to_bytes());
        ciphertexts.push(slot.ciphertext);
    }
    // The lists have one element per operator and there are at least four.
    let shares_data = SharesData::new(&validator.signature, share_public_keys, ciphertexts)
        .map(|data| data.to_hex())
        .unwrap_or_default();
    ShareEntryJson {
        data: ShareDataJson {
            owner_nonce: validator.nonce,
            owner_address: owner.to_checksum(),
            public_key: public_key.clone(),
            operators: validator
                .operators
                .iter()
                .map(|slot| OperatorJson {
                    id: slot.id,
                    operator_key: slot.operator_key.clone(),
                })
                .collect(),
        },
        payload: PayloadJson {
            public_key,
            operator_ids: validator.operators.iter().map(|slot| slot.id).collect(),
            shares_data,
        },
    }
}

/// A built keyshares file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyshares(KeysharesJson);

impl Keyshares {
    /// The file as ssv-dkg writes it: compact JSON on one line and `\n`
    /// (Go's `json.NewEncoder(file).Encode`). Every operator writing the
    /// same parts writes the same bytes.
    ///
    /// # Errors
    ///
    /// serde_json's error, which these plain types do not produce.
    pub fn to_json_string(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string(&self.0)?;
        text.push('\n');
        Ok(text)
    }

    /// The schema value.
    pub fn as_json(&self) -> &KeysharesJson {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::ssv::dealer::{self, DealerSpec, TEST_RSA_1024_PUBLIC_KEY};

    fn parts(ids: &[u64], validators: usize) -> (ExecutionAddress, Vec<ValidatorShares>) {
        let owner: ExecutionAddress = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6"
            .parse()
            .unwrap();
        let keys = dealer::test_operators(ids).unwrap();
        let spec = DealerSpec {
            owner,
            first_nonce: 3,
            created_at: CreatedAt::from_unix(1_700_000_000, 0),
            operators: keys.iter().map(|(id, k)| (*id, k.public_key())).collect(),
            validators,
        };
        (
            owner,
            dealer::deal(&spec, &mut StdRng::seed_from_u64(7))
                .unwrap()
                .parts,
        )
    }

    fn build(
        owner: ExecutionAddress,
        parts: Vec<ValidatorShares>,
    ) -> Result<Keyshares, BuildError> {
        parts
            .into_iter()
            .fold(
                KeysharesBuilder::new(owner, CreatedAt::from_unix(0, 0)),
                KeysharesBuilder::validator,
            )
            .build()
    }

    #[test]
    fn seven_operators_with_gaps_build() {
        let (owner, parts) = parts(&[2, 3, 5, 8, 13, 21, 34], 2);
        let file = build(owner, parts).unwrap();
        let json = file.as_json();
        assert_eq!(json.version, "v1.1.0");
        assert_eq!(json.shares.len(), 2);
        assert_eq!(json.shares[1].data.owner_nonce, 4);
        assert_eq!(
            json.shares[0].payload.operator_ids,
            [2, 3, 5, 8, 13, 21, 34]
        );
        assert_eq!(
            json.shares[0].payload.shares_data.len(),
            2 + 2 * (96 + 304 * 7)
        );
    }

    #[test]
    fn the_builder_refuses_what_ssv_refuses() {
        let (owner, good) = parts(&[1, 2, 3, 4], 2);
        assert_eq!(build(owner, vec![]).unwrap_err(), BuildError::NoValidators);

        let mut unsorted = good.clone();
        unsorted[0].operators.swap(1, 2);
        assert_eq!(
            build(owner, unsorted).unwrap_err(),
            BuildError::IdsNotAscending {
                validator: 0,
                previous: 3,
                id: 2
            }
        );

        let mut five = good.clone();
        let extra = five[0].operators[3].clone();
        five[0].operators.push(OperatorSlot { id: 5, ..extra });
        assert_eq!(
            build(owner, five).unwrap_err(),
            BuildError::ClusterSize {
                validator: 0,
                operators: 5
            }
        );

        let mut gap = good.clone();
        gap[1].nonce = 5;
        assert_eq!(
            build(owner, gap).unwrap_err(),
            BuildError::NonceNotConsecutive {
                validator: 1,
                expected: 4,
                got: 5
            }
        );

        let mut twice = good.clone();
        twice[1] = twice[0].clone();
        twice[1].nonce = 4;
        assert_eq!(
            build(owner, twice).unwrap_err(),
            BuildError::DuplicateValidator {
                validator: 1,
                first: 0
            }
        );

        let mut weak = good.clone();
        let registered = <base64ct::Base64 as base64ct::Encoding>::encode_string(
            TEST_RSA_1024_PUBLIC_KEY.as_bytes(),
        );
        for v in &mut weak {
            v.operators[0].operator_key = registered.clone();
        }
        let err = build(owner, weak).unwrap_err();
        assert_eq!(
            err,
            BuildError::OperatorKey {
                id: 1,
                source: OperatorKeyError::WrongSize { bits: 1024 }
            }
        );

        let mut other = good;
        other[1].operators[2].id = 9;
        other[1].operators[3].id = 10;
        assert_eq!(
            build(owner, other).unwrap_err(),
            BuildError::OperatorsDiffer { validator: 1 }
        );
    }
}
