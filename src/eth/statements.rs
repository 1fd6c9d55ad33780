//! What an Ethereum validator's key signs in a ceremony, as statements of
//! the core's plan: one deposit message per deposit amount (and, for an SSV
//! cluster, the ownership message). The core carries each statement's
//! parameters opaquely; this module writes and reads them, and turns them
//! into the bytes signed.
//!
//! Formats: `ceremony-specs/formats.md` §4.5.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::ssz::DepositMessage;
use super::{ExecutionAddress, Gwei, WithdrawalCredentials};
use crate::crypto::Scalar;
use crate::dkg::plan::{AttachmentKind, Attachments, Statement, StatementKind};
use crate::dkg::signing::Statements;
use crate::ssv::OperatorKey;
use crate::ssv::operator_key::CIPHERTEXT_BYTES;
use crate::ssv::ownership::ownership_message;
use crate::wire::{self, Bytes, VarBytes};

/// The parameters of one deposit statement: the network's genesis fork
/// version, the withdrawal credentials and the amount (in Gwei).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositParams {
    /// `GENESIS_FORK_VERSION` of the network.
    pub fork_version: Bytes<4>,
    /// The validator's withdrawal credentials.
    pub withdrawal_credentials: Bytes<32>,
    /// The deposit amount in Gwei.
    pub amount: u64,
}

/// What every validator of a DKG deposits: the same credentials and the
/// same list of amounts (one deposit message, and so one signature, per
/// amount), under one network's genesis fork version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositPlan {
    /// `GENESIS_FORK_VERSION` of the network.
    pub fork_version: [u8; 4],
    /// The withdrawal credentials of every validator.
    pub withdrawal_credentials: [u8; 32],
    /// The deposit amounts in Gwei; at least one.
    pub amounts: Vec<u64>,
}

impl DepositPlan {
    /// A plan for `credentials` and `amounts` on the network with
    /// `fork_version`.
    pub fn new(
        fork_version: [u8; 4],
        credentials: WithdrawalCredentials,
        amounts: &[Gwei],
    ) -> Self {
        Self {
            fork_version,
            withdrawal_credentials: credentials.to_bytes(),
            amounts: amounts.iter().map(|a| a.0).collect(),
        }
    }

    /// The plan's statements: one deposit per amount, in order.
    pub fn statements(&self) -> Vec<Statement> {
        self.amounts
            .iter()
            .map(|&amount| Statement {
                kind: StatementKind::Deposit,
                params: VarBytes(
                    wire::encode(&DepositParams {
                        fork_version: Bytes(self.fork_version),
                        withdrawal_credentials: Bytes(self.withdrawal_credentials),
                        amount,
                    })
                    .unwrap_or_default(),
                ),
            })
            .collect()
    }

    /// The deposit plan of a plan's statements: every deposit statement's
    /// parameters, which must share one fork version and one credential.
    /// `None` when there is no deposit or they disagree.
    pub fn from_statements(statements: &[Statement]) -> Option<Self> {
        let params: Vec<DepositParams> = statements
            .iter()
            .filter(|s| s.kind == StatementKind::Deposit)
            .map(|s| deposit_params(s).ok())
            .collect::<Option<_>>()?;
        let first = *params.first()?;
        if params.iter().any(|p| {
            p.fork_version != first.fork_version
                || p.withdrawal_credentials != first.withdrawal_credentials
        }) {
            return None;
        }
        Some(Self {
            fork_version: first.fork_version.0,
            withdrawal_credentials: first.withdrawal_credentials.0,
            amounts: params.iter().map(|p| p.amount).collect(),
        })
    }
}

/// Reads a deposit statement's parameters.
///
/// # Errors
///
/// The decoding error, in words.
pub fn deposit_params(statement: &Statement) -> Result<DepositParams, String> {
    wire::decode(&statement.params.0, 64).map_err(|e| format!("deposit parameters: {e}"))
}

/// The parameters of the SSV ownership statement: the owner, and the nonce
/// of validator 0 (validator `v` uses `first_nonce + v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipParams {
    /// The owner's execution address.
    pub owner: Bytes<20>,
    /// The owner nonce of validator 0.
    pub first_nonce: u64,
}

impl OwnershipParams {
    /// The statement: validator `v`'s key signs
    /// `keccak256("<EIP-55 owner>:<first_nonce + v>")`.
    pub fn statement(&self) -> Statement {
        Statement {
            kind: StatementKind::Ownership,
            params: VarBytes(wire::encode(self).unwrap_or_default()),
        }
    }

    /// Reads an ownership statement's parameters.
    ///
    /// # Errors
    ///
    /// The decoding error, in words.
    pub fn of(statement: &Statement) -> Result<Self, String> {
        wire::decode(&statement.params.0, 64).map_err(|e| format!("ownership parameters: {e}"))
    }

    /// The owner nonce of validator `validator`.
    ///
    /// # Errors
    ///
    /// When it would pass `u64::MAX`.
    pub fn nonce(&self, validator: usize) -> Result<u64, String> {
        u64::try_from(validator)
            .ok()
            .and_then(|v| self.first_nonce.checked_add(v))
            .ok_or_else(|| format!("nonce {} + {validator} overflows", self.first_nonce))
    }
}

/// The attachments of an SSV cluster: every holder encrypts its own share
/// of every validator to its registered operator key (`keys`, in holder
/// order: ascending operator id).
pub fn ssv_attachments(keys: &[OperatorKey]) -> Attachments {
    Attachments {
        kind: AttachmentKind::SsvShare,
        bytes: CIPHERTEXT_BYTES as u32,
        params: keys
            .iter()
            .map(|k| VarBytes(k.registered().as_bytes().to_vec()))
            .collect(),
    }
}

/// The layer that defines Ethereum statements for the core.
pub struct EthStatements;

impl Statements for EthStatements {
    fn message(
        &self,
        validator: usize,
        statement: &Statement,
        group_key: &[u8; 48],
    ) -> Result<Vec<u8>, String> {
        match statement.kind {
            StatementKind::Deposit => {
                let params = deposit_params(statement)?;
                let message = DepositMessage {
                    pubkey: *group_key,
                    withdrawal_credentials: params.withdrawal_credentials.0,
                    amount: params.amount,
                };
                Ok(message.signing_root(params.fork_version.0).to_vec())
            }
            StatementKind::Ownership => {
                let params = OwnershipParams::of(statement)?;
                let owner = ExecutionAddress::from_bytes(params.owner.0);
                Ok(ownership_message(&owner, params.nonce(validator)?).to_vec())
            }
            StatementKind::Possession => Err(format!("no Ethereum {} exists", statement.kind)),
        }
    }

    /// The SSV share ciphertexts: RSA PKCS#1 v1.5 of each share's hex under
    /// the holder's own operator key (its parameters: the registered key).
    /// This is public-key work only; dvkg decrypts only in the own-slot
    /// check and the demo (see [`crate::ssv::operator_key`]).
    fn attach(
        &self,
        kind: AttachmentKind,
        params: &[u8],
        shares: &[Scalar],
        mut rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<Vec<u8>>, String> {
        match kind {
            AttachmentKind::SsvShare => {
                let text = std::str::from_utf8(params)
                    .map_err(|_| "the operator key is not text".to_owned())?;
                let key = OperatorKey::from_registered(text)
                    .map_err(|e| format!("the operator key: {e}"))?;
                shares
                    .iter()
                    .map(|share| {
                        let secret = share
                            .to_secret_key()
                            .map_err(|e| format!("a share is not a key: {e}"))?;
                        key.encrypt_share(&secret, &mut rng)
                            .map(|c| c.as_bytes().to_vec())
                            .map_err(|e| format!("RSA encryption: {e}"))
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::{ExecutionAddress, WithdrawalKind};

    #[test]
    fn deposit_statements_round_trip_and_sign_the_deposit_root() {
        let credentials = WithdrawalCredentials::for_address(
            WithdrawalKind::Compounding,
            ExecutionAddress::from_bytes([0x42; 20]),
        )
        .unwrap();
        let plan = DepositPlan::new(
            [0x10, 0, 0x09, 0x10],
            credentials,
            &[Gwei(32_000_000_000), Gwei(1_000_000_000)],
        );
        let statements = plan.statements();
        assert_eq!(statements.len(), 2);
        assert_eq!(
            DepositPlan::from_statements(&statements),
            Some(plan.clone())
        );
        let key = [7u8; 48];
        let message = EthStatements.message(0, &statements[1], &key).unwrap();
        let expected = DepositMessage {
            pubkey: key,
            withdrawal_credentials: credentials.to_bytes(),
            amount: 1_000_000_000,
        }
        .signing_root(plan.fork_version);
        assert_eq!(message, expected);
    }

    #[test]
    fn the_ownership_statement_signs_ssvs_message_at_each_nonce() {
        // sigp/anchor's mainnet vector: owner and nonce 8.
        let owner: ExecutionAddress = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6"
            .parse()
            .unwrap();
        let params = OwnershipParams {
            owner: Bytes(*owner.as_bytes()),
            first_nonce: 7,
        };
        let statement = params.statement();
        assert_eq!(statement.kind, StatementKind::Ownership);
        assert_eq!(OwnershipParams::of(&statement).unwrap(), params);
        let key = [7u8; 48];
        // Validator 1 of a plan from nonce 7 uses nonce 8.
        let message = EthStatements.message(1, &statement, &key).unwrap();
        assert_eq!(message, ownership_message(&owner, 8));
        let pubkey: [u8; 48] = hex::decode("94cbce91137bfda4a7638941a68d6b156712bd1ce80e5dc580adc74a445099cbbfb9f97a6c7c89c6a87e28e0657821ac")
            .unwrap()
            .try_into()
            .unwrap();
        let pubkey = crate::crypto::PublicKey::from_bytes(&pubkey).unwrap();
        let signature: [u8; 96] = hex::decode("9720bfb2aa152d512232dc255f9565b226800bc362f1e2462e08a8856317497e3d21c5e2690b86f8e27f3c6c666d9487104c72847bba9493aa8fcc2d473b4c83dcc7b3db2f732da2a8a3df6e2609a65222e335321f694a7ab3ac16f55920d645")
            .unwrap()
            .try_into()
            .unwrap();
        let signature = crate::crypto::Signature::from_bytes(&signature).unwrap();
        assert!(signature.verify(&pubkey, &message));
        let other = EthStatements.message(0, &statement, &key).unwrap();
        assert!(!signature.verify(&pubkey, &other));
        // A nonce past u64::MAX is refused.
        let last = OwnershipParams {
            first_nonce: u64::MAX,
            ..params
        };
        assert!(EthStatements.message(1, &last.statement(), &key).is_err());
    }

    #[test]
    fn ssv_attachments_decrypt_to_the_shares() {
        use rand::SeedableRng;
        let private = crate::ssv::dealer::test_operator_key(0).unwrap();
        let attachments = ssv_attachments(&[private.public_key()]);
        assert_eq!(attachments.bytes, 256);
        let shares = [Scalar::from_u64(5), Scalar::from_u64(77)];
        let made = EthStatements
            .attach(
                AttachmentKind::SsvShare,
                &attachments.params[0].0,
                &shares,
                &mut rand::rngs::StdRng::seed_from_u64(1),
            )
            .unwrap();
        assert_eq!(made.len(), 2);
        for (bytes, share) in made.iter().zip(&shares) {
            let ciphertext = crate::ssv::Ciphertext::from_slice(bytes).unwrap();
            let (key, _) = private.decrypt_share(&ciphertext).unwrap();
            assert_eq!(
                key.to_bytes().expose_secret(),
                share.to_bytes_be().expose_secret()
            );
        }
        assert!(
            EthStatements
                .attach(
                    AttachmentKind::SsvShare,
                    b"not a key",
                    &shares,
                    &mut rand::rngs::StdRng::seed_from_u64(1),
                )
                .is_err()
        );
    }
}
