//! `dvkg definition new|verify`: the cluster definition every operator signs
//! up to before a ceremony.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// `dvkg definition` subcommands.
#[derive(Debug, Subcommand)]
pub enum DefinitionCommand {
    /// Build `cluster-definition.json` from operator records and parameters.
    New(NewArgs),
    /// Check a cluster definition and print its hash.
    Verify(VerifyArgs),
}

/// Arguments of `dvkg definition new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// An operator record (file written by `dvkg identity show --json`); once
    /// per operator, in operator order.
    #[arg(long = "operator", value_name = "FILE", required = true)]
    pub operators: Vec<PathBuf>,
    /// Signatures needed to sign for a validator (default ceil(2n/3)).
    #[arg(long, value_name = "T")]
    pub threshold: Option<u16>,
    /// Number of validators to create.
    #[arg(long, value_name = "V", default_value_t = 1)]
    pub validators: u32,
    /// Network: mainnet, sepolia, holesky, hoodi, gnosis, chiado or NAME:0xFORKVERSION.
    #[arg(long, value_name = "NAME")]
    pub network: String,
    /// Execution address withdrawals go to.
    #[arg(long, value_name = "ADDRESS")]
    pub withdrawal_address: String,
    /// Withdrawal credential type: 0x01 or 0x02 (compounding).
    #[arg(long, value_name = "TYPE", default_value = "0x01")]
    pub withdrawal_type: String,
    /// Fee recipient address.
    #[arg(long, value_name = "ADDRESS")]
    pub fee_recipient: Option<String>,
    /// Deposit amount per validator, in the network's coin; repeat for
    /// partial deposits.
    #[arg(long = "amount", value_name = "AMOUNT")]
    pub amounts: Vec<String>,
    /// Where to write the definition.
    #[arg(long, value_name = "FILE", default_value = "cluster-definition.json")]
    pub out: PathBuf,
}

/// Arguments of `dvkg definition verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The definition to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `dvkg definition …`.
///
/// # Errors
///
/// Not built yet: always a user error.
pub fn run(command: DefinitionCommand) -> Result<ExitCode, CliError> {
    match command {
        DefinitionCommand::New(_) => Err(super::not_built("definition new")),
        DefinitionCommand::Verify(_) => Err(super::not_built("definition verify")),
    }
}
