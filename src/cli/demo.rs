//! `dvkg demo`: a whole ceremony of N operators in one process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliError;

/// Arguments of `dvkg demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of operators.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub operators: u16,
    /// Signatures needed per validator.
    #[arg(long, value_name = "T", default_value_t = 3)]
    pub threshold: u16,
    /// Number of validators.
    #[arg(long, value_name = "V", default_value_t = 2)]
    pub validators: u32,
    /// Network of the deposits.
    #[arg(long, value_name = "NAME", default_value = "hoodi")]
    pub network: String,
    /// Output directory (one subdirectory per operator).
    #[arg(long, value_name = "DIR", default_value = "dvkg-demo")]
    pub out: PathBuf,
}

/// Runs `dvkg demo`.
///
/// # Errors
///
/// Not built yet: always a user error.
pub fn run(_args: DemoArgs) -> Result<ExitCode, CliError> {
    Err(super::not_built("demo"))
}
