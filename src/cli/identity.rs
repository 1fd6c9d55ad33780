//! `dvkg identity new|show`: this operator's Ed25519 identity and age key.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// `dvkg identity` subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create this operator's identity: an Ed25519 key (TLS certificate and
    /// message signing) and an age X25519 identity.
    New(NewArgs),
    /// Print the public operator record to send to the cluster creator.
    Show(ShowArgs),
}

/// Arguments of `dvkg identity new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create the identity in.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub dir: PathBuf,
    /// Seal the secret file with the age passphrase read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// This operator's name, as other operators will see it.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The host:port other operators reach this one at.
    #[arg(long, value_name = "HOST:PORT")]
    pub address: Option<String>,
}

/// Arguments of `dvkg identity show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Directory holding the identity.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub dir: PathBuf,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `dvkg identity …`.
///
/// # Errors
///
/// Not built yet: always a user error.
pub fn run(command: IdentityCommand) -> Result<ExitCode, CliError> {
    match command {
        IdentityCommand::New(_) => Err(super::not_built("identity new")),
        IdentityCommand::Show(_) => Err(super::not_built("identity show")),
    }
}
