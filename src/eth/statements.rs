//! What an Ethereum validator's key signs in a ceremony, as statements of
//! the core's plan: one deposit message per deposit amount (and, for an SSV
//! cluster, the ownership message). The core carries each statement's
//! parameters opaquely; this module writes and reads them, and turns them
//! into the bytes signed.
//!
//! Formats: `ceremony-specs/formats.md` §4.5.

use serde::{Deserialize, Serialize};

use super::ssz::DepositMessage;
use super::{Gwei, WithdrawalCredentials};
use crate::dkg::plan::{Statement, StatementKind};
use crate::dkg::signing::Statements;
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

/// The layer that defines Ethereum statements for the core.
pub struct EthStatements;

impl Statements for EthStatements {
    fn message(
        &self,
        _validator: usize,
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
            StatementKind::Ownership | StatementKind::Possession => {
                Err(format!("no Ethereum {} is defined yet", statement.kind))
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
}
