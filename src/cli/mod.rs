//! The command line: one file per subcommand, each with its `XxxArgs` and a
//! `run()` that first validates the arguments into a config, then acts.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

pub mod ceremony;
pub mod check;
pub mod definition;
pub mod demo;
pub mod identity;
pub mod restore;
pub mod retire;
pub mod secret;
pub mod slashing;
pub mod slashing_sync;
pub mod verify;
pub mod verify_keyshares;

/// Whether this build has `--fault` (the `fault-injection` feature, for the
/// adversarial tests only). A release build (`cargo build --release`) never
/// has it: the feature is only switched on by the crate's own
/// dev-dependency, which plain builds do not resolve.
pub const FAULT_INJECTION: bool = cfg!(feature = "fault-injection");

/// What `dvkg --version` prints after `dvkg`: the package version, and in a
/// fault-injection build a mark that scripts check before they measure or
/// ship the binary (`scripts/release-dvkg.sh`).
#[cfg(not(feature = "fault-injection"))]
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// What `dvkg --version` prints after `dvkg`: the package version, and in a
/// fault-injection build a mark that scripts check before they measure or
/// ship the binary (`scripts/release-dvkg.sh`).
#[cfg(feature = "fault-injection")]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (fault-injection build: has --fault, never for a real ceremony)"
);

/// The line a fault-injection build prints on stderr at every start, even
/// with `-q`: such a binary must never be mistaken for a release.
pub const FAULT_BUILD_WARNING: &str = "dvkg: WARNING: this is a fault-injection test build (it has --fault); never use it for a real ceremony, build one with `cargo build --release`";

/// dvkg: generate Ethereum validator keys together with the other operators
/// of a distributed validator cluster, without any machine ever holding a
/// whole validator key.
#[derive(Debug, Parser)]
#[command(name = "dvkg", version = VERSION, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 1 user or configuration error, 2 usage error, \
3 ceremony aborted with an identified culprit, 4 peer timeout or unreachable, \
5 verification failed or signing refused, 6 ceremony aborted without a proven culprit, \
7 outputs written but not confirmed by every operator, 130 stopped by a signal, 255 internal error."
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or show this operator's identity (Ed25519 + age).
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Create or check a cluster definition.
    #[command(subcommand)]
    Definition(definition::DefinitionCommand),
    /// Run the key generation ceremony with the other operators.
    Ceremony(ceremony::CeremonyArgs),
    /// Check public outputs (lock, transcript, deposit data) with no secret.
    Verify(verify::VerifyArgs),
    /// Run a whole ceremony of N operators on this machine over loopback QUIC.
    Demo(demo::DemoArgs),
    /// Rebuild this operator's keystores from its sealed share bundle.
    Restore(restore::RestoreArgs),
    /// After a reshare: erase this operator's previous keystores and share
    /// bundle, once the new outputs verify (best effort).
    Retire(retire::RetireArgs),
    /// Check, with every other operator at the same time, that the cluster
    /// can sign: run it before anyone deposits.
    Check(check::CheckArgs),
    /// Slashing protection: an EIP-3076 database, its imports, checks and
    /// exports, and the merge of a cluster's histories.
    #[command(subcommand)]
    Slashing(slashing::SlashingCommand),
}

/// Sets up logging on stderr from `-v`/`-q` and `RUST_LOG`.
pub fn init_tracing(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Runs the parsed command.
///
/// # Errors
///
/// A [`CliError`] whose kind fixes the exit code.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Identity(command) => identity::run(command),
        Command::Definition(command) => definition::run(command),
        Command::Ceremony(args) => ceremony::run(args, cli.quiet),
        Command::Verify(args) => verify::run(args),
        Command::Demo(args) => demo::run(args, cli.quiet),
        Command::Restore(args) => restore::run(args),
        Command::Retire(args) => retire::run(args),
        Command::Check(args) => check::run(args, cli.quiet),
        Command::Slashing(command) => slashing::run(command),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
