//! The command line: one file per subcommand, each with its `XxxArgs` and a
//! `run()` that first validates the arguments into a config, then acts.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// `-q`: status lines are not printed (errors and warnings still are).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a status line on stderr (what a command did, where its outputs
/// are, what to do next) unless `-q` was given. Errors and warnings are
/// printed with `eprintln!`, always.
macro_rules! status {
    ($($arg:tt)*) => {
        if !$crate::cli::quiet() {
            eprintln!($($arg)*);
        }
    };
}

pub mod ceremony;
pub mod check;
pub mod definition;
pub mod demo;
pub mod identity;
pub mod names;
pub mod ping;
pub mod restore;
pub mod retire;
pub mod secret;
pub mod slashing;
pub mod slashing_sync;
pub mod transcript;
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
3 ceremony aborted with an identified culprit, 4 peer timeout or unreachable (ping: a pair \
with no path), \
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
    /// Before the ceremony, with every other operator at the same time:
    /// test every pair both ways over QUIC and print who reaches whom.
    Ping(ping::PingArgs),
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
    /// Print a ceremony transcript readably, or as JSON.
    #[command(subcommand)]
    Transcript(transcript::TranscriptCommand),
}

/// Sets up logging on stderr from `-v`/`-q` and `RUST_LOG` ([`log_filter`]),
/// in colour only on a terminal and without `NO_COLOR` ([`log_colour`]).
pub fn init_tracing(cli: &Cli) {
    let stderr_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let no_color = std::env::var_os("NO_COLOR");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter(
            cli.quiet,
            cli.verbose,
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(log_colour(stderr_terminal, no_color.as_deref()))
        .with_target(false)
        .try_init();
}

/// What is logged: `RUST_LOG` when it is set and valid; else errors only
/// with `-q`, warnings by default, and with `-v` / `-vv` dvkg's own info /
/// debug lines while every other crate (rustls, quinn, ...) stays at warn;
/// `-vvv` is trace for everything.
pub fn log_filter(
    quiet: bool,
    verbose: u8,
    rust_log: Option<&str>,
) -> tracing_subscriber::EnvFilter {
    if let Some(filter) = rust_log
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
    {
        return filter;
    }
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,dvkg=info",
        (false, 2) => "warn,dvkg=debug",
        (false, _) => "trace",
    };
    tracing_subscriber::EnvFilter::new(default)
}

/// Whether log lines are coloured: only on a terminal, and never when
/// `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn log_colour(stderr_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Runs the parsed command.
///
/// # Errors
///
/// A [`CliError`] whose kind fixes the exit code.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    QUIET.store(cli.quiet, Ordering::Relaxed);
    match cli.command {
        Command::Identity(command) => identity::run(command),
        Command::Definition(command) => definition::run(command),
        Command::Ceremony(args) => ceremony::run(args, cli.quiet),
        Command::Ping(args) => ping::run(args, cli.quiet),
        Command::Verify(args) => verify::run(args),
        Command::Demo(args) => demo::run(args, cli.quiet),
        Command::Restore(args) => restore::run(args),
        Command::Retire(args) => retire::run(args),
        Command::Check(args) => check::run(args, cli.quiet),
        Command::Slashing(command) => slashing::run(command),
        Command::Transcript(command) => transcript::run(command),
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

    /// The lines a subscriber with `filter` lets through, of one debug line
    /// from dvkg and one from each of rustls and quinn.
    fn logged(filter: tracing_subscriber::EnvFilter) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "dvkg::net::quic", "dvkg debug line");
            tracing::info!(target: "dvkg::ceremony", "dvkg info line");
            tracing::debug!(target: "rustls::client::hs", "rustls debug line");
            tracing::info!(target: "quinn_proto::connection", "quinn info line");
            tracing::warn!(target: "quinn::endpoint", "quinn warning");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn issue_17_verbose_shows_dvkg_lines_not_the_transport_noise() {
        let vv = logged(log_filter(false, 2, None));
        assert!(
            vv.contains("dvkg debug line") && vv.contains("dvkg info line"),
            "{vv}"
        );
        assert!(
            !vv.contains("rustls debug line") && !vv.contains("quinn info line"),
            "{vv}"
        );
        assert!(vv.contains("quinn warning"), "{vv}");

        let v = logged(log_filter(false, 1, None));
        assert!(
            v.contains("dvkg info line") && !v.contains("dvkg debug line"),
            "{v}"
        );

        let quiet = logged(log_filter(true, 0, None));
        assert!(
            !quiet.contains("quinn warning") && !quiet.contains("dvkg"),
            "{quiet}"
        );

        let vvv = logged(log_filter(false, 3, None));
        assert!(vvv.contains("rustls debug line"), "{vvv}");

        // RUST_LOG wins, and a blank or invalid one falls back to the flags.
        let env = logged(log_filter(false, 0, Some("rustls=debug")));
        assert!(
            env.contains("rustls debug line") && !env.contains("dvkg info line"),
            "{env}"
        );
        let blank = logged(log_filter(false, 2, Some(" ")));
        assert!(
            blank.contains("dvkg debug line") && !blank.contains("rustls"),
            "{blank}"
        );
    }

    #[test]
    fn issue_17_demo_and_definition_new_default_to_the_same_withdrawal_type() {
        let demo = match Cli::try_parse_from(["dvkg", "demo"]).unwrap().command {
            Command::Demo(args) => args.withdrawal_type,
            other => panic!("{other:?}"),
        };
        let new = Cli::try_parse_from([
            "dvkg",
            "definition",
            "new",
            "--operator",
            "a.json",
            "--network",
            "hoodi",
            "--withdrawal-address",
            "0x0f51bb10119727a7e5ea3538074fb341f56b09ad",
        ])
        .unwrap();
        let Command::Definition(definition::DefinitionCommand::New(args)) = new.command else {
            panic!("not definition new")
        };
        assert_eq!(demo, args.withdrawal_type);
        assert_eq!(demo, "0x01");
    }

    /// Every command's `--help` ends with examples, and every example
    /// parses (the part after a `|` being the dvkg command).
    #[test]
    fn issue_17_every_command_has_examples_that_parse() {
        fn leaves(
            command: &clap::Command,
            path: Vec<String>,
            out: &mut Vec<(Vec<String>, clap::Command)>,
        ) {
            let subcommands: Vec<&clap::Command> = command
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            if subcommands.is_empty() {
                out.push((path.clone(), command.clone()));
            }
            for sub in subcommands {
                let mut next = path.clone();
                next.push(sub.get_name().to_owned());
                leaves(sub, next, out);
            }
        }
        let mut all = Vec::new();
        leaves(&Cli::command(), Vec::new(), &mut all);
        assert!(all.len() >= 19, "{} commands", all.len());
        for (path, command) in all {
            let name = path.join(" ");
            let help = command
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                help.starts_with("Example"),
                "dvkg {name} --help has no examples"
            );
            let examples: Vec<&str> = help
                .lines()
                .filter_map(|line| line.strip_prefix("  "))
                .map(|line| line.rsplit("| ").next().unwrap_or(line))
                .filter(|line| line.starts_with("dvkg "))
                .collect();
            assert!(!examples.is_empty(), "dvkg {name}: no example command");
            for example in examples {
                let words: Vec<&str> = example.split_whitespace().collect();
                assert!(
                    words
                        .get(1..=path.len())
                        .is_some_and(|w| w == path.as_slice()),
                    "dvkg {name}: example {example:?} is of another command"
                );
                if let Err(err) = Cli::try_parse_from(&words) {
                    panic!("dvkg {name}: example {example:?} does not parse: {err}");
                }
            }
        }
    }

    #[test]
    fn issue_17_no_color_turns_colour_off() {
        use std::ffi::OsStr;
        assert!(log_colour(true, None));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(false, None));
    }
}
