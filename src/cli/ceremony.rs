//! `dvkg ceremony`: run the DKG with the other operators.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `dvkg ceremony`.
#[derive(Debug, Args)]
pub struct CeremonyArgs {
    /// The cluster definition every operator agreed on.
    #[arg(long, value_name = "FILE")]
    pub definition: PathBuf,
    /// This operator's identity directory.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// Output directory (must not exist yet).
    #[arg(long, value_name = "DIR", default_value = "dvkg-output")]
    pub out: PathBuf,
    /// Give up on peers that have not answered after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Encrypt the keystores with the password in this file instead of a
    /// generated one.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// Runs `dvkg ceremony`.
///
/// # Errors
///
/// Not built yet: always a user error.
pub fn run(_args: CeremonyArgs) -> Result<ExitCode, CliError> {
    Err(super::not_built("ceremony"))
}
