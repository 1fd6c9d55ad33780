//! `dvkg verify`: check public outputs with no secret.
//!
//! On a ceremony output directory (or `--lock` / `--transcript`) it checks
//! the transcript against the protocol, the lock against the transcript and
//! the definition, and every deposit file, one line per check. On a lone
//! deposit data file it recomputes every entry's roots, verifies its
//! signature, matches its fork version to its network and checks its
//! credentials and amount, one line per entry. `--json` prints the same as a
//! report; the exit code is 0 only when every check passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::ceremony::transcript_file;
use crate::error::{CliError, ErrorKind};
use crate::eth::ExecutionAddress;
use crate::eth::deposit::{self, Expectations};
use crate::eth::network::Network;
use crate::store;
use crate::verify::deposits::{self, EntryReport, FileReport};
use crate::verify::outputs::{self, DirError, OutputPaths, Preread};
use crate::verify::{Report, abort};

/// Arguments of `dvkg verify`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg verify dvkg-output
  dvkg verify dvkg-output --network mainnet --withdrawal-address 0x0f51bb10119727a7e5ea3538074fb341f56b09ad --json
  dvkg verify --deposit-data dvkg-output/deposit-data.json --network hoodi
  dvkg verify dvkg-output --keystores dvkg-output/validator_keys --password-file dvkg-output/validator_keys/password.txt
  dvkg verify --abort-report abort-report.json --definition cluster-definition.json
  dvkg verify --keyshares keyshares.json --ssv-owner 0x0f51bb10119727a7e5ea3538074fb341f56b09ad --ssv-nonce 0")]
pub struct VerifyArgs {
    /// A ceremony output directory to check as a whole.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A cluster lock file.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// A public ceremony transcript: transcript.bin, or its JSON view
    /// (`dvkg transcript show --json`).
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// A deposit data file (repeat for several).
    #[arg(long = "deposit-data", value_name = "FILE")]
    pub deposit_data: Vec<PathBuf>,
    /// The network every deposit must be for: mainnet, sepolia, holesky,
    /// hoodi, gnosis, chiado, or NAME:0xFORKVERSION for a custom network.
    /// Without it, each entry's network_name must be a known network.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// The execution address every deposit must withdraw to.
    #[arg(long, value_name = "ADDRESS")]
    pub withdrawal_address: Option<String>,
    /// Also check this operator's keystores (a validator_keys directory)
    /// against the public shares of the lock.
    #[arg(long, value_name = "DIR", requires = "password_file")]
    pub keystores: Option<PathBuf>,
    /// The password file of --keystores, or of an encrypted
    /// --ssv-operator-private-key.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// An abort report written by `dvkg ceremony` (repeat for several): its
    /// evidence is checked against --definition, and the check passes only
    /// if the evidence proves the named culprit's fault to anyone.
    #[arg(long = "abort-report", value_name = "FILE", requires = "definition")]
    pub abort_report: Vec<PathBuf>,
    /// The cluster definition the abort reports are about.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
    /// Print a machine-readable JSON report on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// A reshare's chain: the output directories of the ceremonies it
    /// continues, newest first. Each must verify and be the previous lock
    /// of the one before.
    #[arg(long, value_name = "DIR")]
    pub previous: Vec<PathBuf>,
    /// `--keyshares` and its `--ssv-*` flags (src/cli/verify_keyshares.rs).
    #[command(flatten)]
    pub ssv: super::verify_keyshares::KeysharesArgs,
}

/// `VerifyArgs` checked and parsed, before any file is read.
#[derive(Debug)]
pub struct VerifyConfig {
    /// The deposit files to check.
    pub deposit_files: Vec<PathBuf>,
    /// What the entries must match.
    pub expect: Expectations,
    /// JSON output.
    pub json: bool,
    /// Ceremony outputs to check, if any.
    pub outputs: Option<OutputPaths>,
    /// Abort reports to check, with the definition they are about.
    pub abort_reports: Option<(Vec<PathBuf>, PathBuf)>,
    /// The chain of previous output directories, newest first.
    pub previous: Vec<PathBuf>,
}

/// The outputs named by the flags: a directory, or `--lock` and
/// `--transcript`.
fn output_paths(args: &VerifyArgs) -> Result<Option<OutputPaths>, CliError> {
    let keystores = args.keystores.clone().zip(args.password_file.clone());
    let paths = match &args.dir {
        Some(dir) => OutputPaths {
            keystores,
            ..in_dir(dir)?
        },
        None => OutputPaths {
            lock: args.lock.clone(),
            transcript: args.transcript.clone(),
            deposit_files: Vec::new(),
            keystores,
            confirmation: None,
            keyshares: None,
        },
    };
    if paths.lock.is_none() && paths.transcript.is_none() {
        return Ok(None);
    }
    Ok(Some(paths))
}

/// The outputs found in a ceremony output directory.
///
/// # Errors
///
/// A user error when the directory is unreadable or holds no lock.
pub fn in_dir(dir: &Path) -> Result<OutputPaths, CliError> {
    OutputPaths::in_dir(dir).map_err(|err| {
        let message = err.to_string();
        let out = match &err {
            DirError::Unreadable { source, .. } => CliError::user(message).with_source(source),
            DirError::NoLock { .. } => CliError::user(message),
        };
        out.with_hint("pass the directory `dvkg ceremony --out` wrote")
    })
}

impl VerifyConfig {
    /// Validates the arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_args(args: VerifyArgs) -> Result<Self, CliError> {
        let outputs = output_paths(&args)?;
        let abort_reports = match (&args.definition, args.abort_report.is_empty()) {
            (Some(definition), false) => Some((args.abort_report.clone(), definition.clone())),
            (Some(_), true) => {
                return Err(
                    CliError::user("--definition is given without --abort-report")
                        .with_hint("pass the abort report(s) to check with --abort-report FILE"),
                );
            }
            (None, _) => None,
        };
        if args.deposit_data.is_empty() && outputs.is_none() && abort_reports.is_none() {
            return Err(CliError::user("nothing to verify").with_hint(
                "pass a ceremony output directory, or --lock, --transcript, --deposit-data FILE \
                 or --abort-report FILE --definition FILE",
            ));
        }
        if abort_reports.is_some() && (outputs.is_some() || !args.deposit_data.is_empty()) {
            return Err(CliError::user(
                "--abort-report is checked on its own, not with ceremony outputs or deposit data",
            )
            .with_hint("run `dvkg verify` once per kind of input"));
        }
        let network = args
            .network
            .as_deref()
            .map(|text| {
                text.parse::<Network>().map_err(|err| {
                    CliError::user(format!("invalid value for --network: {text:?}"))
                        .with_source(&err)
                })
            })
            .transpose()?;
        let withdrawal_address = args
            .withdrawal_address
            .as_deref()
            .map(|text| {
                text.parse::<ExecutionAddress>().map_err(|err| {
                    CliError::user(format!("invalid value for --withdrawal-address: {text:?}"))
                        .with_source(&err)
                        .with_hint("give 0x and 40 hex digits, all lowercase or EIP-55 checksummed")
                })
            })
            .transpose()?;
        Ok(Self {
            deposit_files: args.deposit_data,
            expect: Expectations {
                network,
                withdrawal_address,
            },
            json: args.json,
            outputs,
            abort_reports,
            previous: args.previous.clone(),
        })
    }
}

/// Checks one deposit data file.
///
/// # Errors
///
/// A user error when the file cannot be read or is not a JSON list of
/// deposits (problems inside entries are reported, not returned).
pub fn check_deposit_file(path: &Path, expect: &Expectations) -> Result<FileReport, CliError> {
    deposits::check_deposit_file(path, expect).map_err(|err| match &err {
        deposits::DepositFileError::Read { source, .. } => CliError::user(err.to_string())
            .with_source(source)
            .with_hint("check the path given to --deposit-data"),
        deposits::DepositFileError::NotDeposits { source, .. } => CliError::user(err.to_string())
            .with_source(source)
            .with_hint(
                "a deposit data file is the JSON list written by dvkg or an Ethereum deposit CLI",
            ),
    })
}

fn entry_line(entry: &EntryReport) -> String {
    let pubkey = entry
        .pubkey
        .as_deref()
        .and_then(|p| hex::decode(p).ok())
        .map(|bytes| deposit::short_hex(&bytes))
        .unwrap_or_else(|| "?".to_owned());
    let amount = match (
        entry.amount_gwei,
        entry.network.as_deref().and_then(Network::known),
    ) {
        (Some(gwei), Some(network)) => crate::eth::Gwei(gwei).display_in(&network),
        (Some(gwei), None) => format!("{gwei} Gwei"),
        (None, _) => "?".to_owned(),
    };
    let network = entry.network.as_deref().unwrap_or("?");
    let head = format!(
        "{} #{} pubkey {pubkey} {network} {amount}",
        entry.file, entry.index
    );
    if entry.ok {
        format!("ok    {head}")
    } else {
        let problems: Vec<String> = entry.problems.iter().map(ToString::to_string).collect();
        format!("FAIL  {head}: {}", problems.join("; "))
    }
}

/// Runs `dvkg verify`.
///
/// # Errors
///
/// A user error for bad flags or unreadable files; a verification failure
/// (exit 5) when any check does not pass.
pub fn run(args: VerifyArgs) -> Result<ExitCode, CliError> {
    if args.ssv.keyshares.is_some() {
        return super::verify_keyshares::run(&args.ssv, args.password_file.as_deref(), args.json);
    }
    let config = VerifyConfig::from_args(args)?;
    if let Some((reports, definition)) = &config.abort_reports {
        let (_, context) = super::ceremony::load_definition(definition)?;
        let texts: Vec<(&Path, String)> = reports
            .iter()
            .map(|report| Ok((report.as_path(), require_json(report, "--abort-report")?)))
            .collect::<Result<_, CliError>>()?;
        let report = abort::check_abort_reports(&texts, &context);
        return print_checks(&report, config.json);
    }
    if let Some(outputs) = &config.outputs {
        return run_outputs(outputs, &config);
    }
    let mut files = Vec::new();
    for path in &config.deposit_files {
        files.push(check_deposit_file(path, &config.expect)?);
    }
    let report = deposits::deposit_report(&files);
    let passed = report.deposits.iter().filter(|e| e.ok).count();
    let failed = report.deposits.len() - passed;
    let file_problems: usize = files.iter().map(|f| f.problems.len()).sum();
    let ok = report.ok;

    let mut stdout = std::io::stdout().lock();
    let written = if config.json {
        serde_json::to_string_pretty(&report)
            .map_err(|err| CliError::internal("failed to render the JSON report").with_source(&err))
            .and_then(|text| writeln!(stdout, "{text}").map_err(|err| output_error(&err)))
    } else {
        let mut text = String::new();
        for file in &files {
            for entry in &file.entries {
                text.push_str(&entry_line(entry));
                text.push('\n');
            }
            for problem in &file.problems {
                text.push_str(&format!("FAIL  {}: {problem}\n", file.file));
            }
        }
        let total = passed + failed;
        text.push_str(&format!(
            "{total} deposit{} checked: {passed} passed, {failed} failed{}\n",
            if total == 1 { "" } else { "s" },
            if file_problems > 0 {
                format!(", {file_problems} file-level problem(s)")
            } else {
                String::new()
            }
        ));
        write!(stdout, "{text}").map_err(|err| output_error(&err))
    };
    written?;
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(ErrorKind::VerificationFailed, "verification failed: see the FAIL lines above")
            .with_hint("regenerate the deposit data rather than editing it; a deposit whose signature does not verify loses its ETH"))
    }
}

fn output_error(err: &std::io::Error) -> CliError {
    CliError::user("failed to write the report to stdout").with_source(err)
}

/// Refuses, as a user error (exit 1), a file that `dvkg verify` was told to
/// check but cannot read or that is not JSON at all: a wrong path is not a
/// verification finding. What is JSON is checked, and its problems are
/// findings (exit 5). Returns the text, so that it is read once.
/// A binary transcript is read later, as a stream (`None`); the JSON view
/// must be JSON, as [`require_json`].
fn require_transcript(path: &Path, flag: &str) -> Result<Option<String>, CliError> {
    match transcript_file::format_of(path) {
        Ok(transcript_file::Format::Binary) => Ok(None),
        Ok(transcript_file::Format::Json) => require_json(path, flag).map(Some),
        Err(err) => Err(CliError::user(format!("cannot read {}", path.display()))
            .with_source(&err)
            .with_hint(format!("check the path given to {flag}"))),
    }
}

fn require_json(path: &Path, flag: &str) -> Result<String, CliError> {
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("cannot read {}", path.display()))
            .with_source(&err)
            .with_hint(format!("check the path given to {flag}"))
    })?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|err| {
        CliError::user(format!(
            "{} is not JSON: {}",
            path.display(),
            store::describe_json_error(&err)
        ))
        .with_hint(format!("pass the file dvkg wrote to {flag}"))
    })?;
    Ok(text)
}

/// Checks a ceremony output directory with no secret.
///
/// # Errors
///
/// A user error when the directory cannot be read at all.
pub fn check_dir(dir: &Path, expect: &Expectations) -> Result<Report, CliError> {
    let paths = in_dir(dir)?;
    Ok(outputs::check_outputs(&paths, expect, &Preread::default()))
}

fn run_outputs(paths: &OutputPaths, config: &VerifyConfig) -> Result<ExitCode, CliError> {
    // The lock must be JSON (a user error otherwise); the checks read it
    // again, so that its text (94 MB at 65,536 validators) is not held
    // while the transcript is verified.
    if let Some(lock) = paths.lock.as_deref() {
        require_json(lock, "--lock (or in DIR)")?;
    }
    let preread = Preread {
        transcript: paths
            .transcript
            .as_deref()
            .map(|transcript| require_transcript(transcript, "--transcript (or in DIR)"))
            .transpose()?
            .flatten(),
    };
    let mut paths = paths.clone();
    paths
        .deposit_files
        .extend(config.deposit_files.iter().cloned());
    let mut report = outputs::check_outputs(&paths, &config.expect, &preread);
    if !config.previous.is_empty() {
        let lock = paths
            .lock
            .as_deref()
            .and_then(|path| store::read_text(path, store::MAX_INPUT_FILE_BYTES).ok())
            .and_then(|text| {
                serde_json::from_str::<crate::ceremony::lock::ClusterLock>(&text).ok()
            });
        check_chain(
            &mut report,
            lock.and_then(|l| l.previous_lock_hash),
            &config.previous,
        )?;
    }
    print_checks(&report, config.json)
}

/// `--previous DIR...`: each directory verifies on its own, and its lock is
/// the previous lock of the one before it (the first, of the lock checked).
fn check_chain(
    report: &mut Report,
    mut expected: Option<crate::wire::Bytes<32>>,
    previous: &[PathBuf],
) -> Result<(), CliError> {
    for dir in previous {
        let inner = check_dir(dir, &Expectations::default())?;
        let failed: Vec<String> = inner
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.check.clone())
            .collect();
        report.checks.push(crate::verify::Check {
            check: format!("previous {}: verifies", dir.display()),
            ok: inner.ok,
            detail: if inner.ok {
                format!("{} checks passed", inner.checks.len())
            } else {
                format!("failed: {}", failed.join("; "))
            },
        });
        let path = dir.join(crate::ceremony::outputs::LOCK_FILE);
        let lock: Option<crate::ceremony::lock::ClusterLock> =
            store::read_text(&path, store::MAX_INPUT_FILE_BYTES)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
        let linked = match (&lock, expected) {
            (Some(lock), Some(hash)) if lock.lock_hash == hash => Ok(format!(
                "its lock {} is the previous lock of the one before",
                hex::encode(hash.0)
            )),
            (Some(lock), Some(hash)) => Err(format!(
                "its lock is {}, the one before continues {}",
                hex::encode(lock.lock_hash.0),
                hex::encode(hash.0)
            )),
            (Some(_), None) => {
                Err("the lock before it is not a reshare: the chain ends there".into())
            }
            (None, _) => Err(format!("{} is not a readable cluster lock", path.display())),
        };
        report.checks.push(crate::verify::Check {
            check: format!(
                "previous {}: continued by the lock before it",
                dir.display()
            ),
            ok: linked.is_ok(),
            detail: linked.unwrap_or_else(|e| e),
        });
        expected = lock.and_then(|l| l.previous_lock_hash);
    }
    report.ok = report.checks.iter().all(|c| c.ok);
    Ok(())
}

/// Prints checks one per line (or as JSON); exit 0 only if all passed.
fn print_checks(report: &Report, json: bool) -> Result<ExitCode, CliError> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(report).map_err(|err| {
            CliError::internal("failed to render the JSON report").with_source(&err)
        })?;
        writeln!(stdout, "{text}").map_err(|err| output_error(&err))?;
    } else {
        for check in &report.checks {
            writeln!(
                stdout,
                "{}  {}: {}",
                if check.ok { "ok  " } else { "FAIL" },
                check.check,
                check.detail
            )
            .map_err(|err| output_error(&err))?;
        }
        let failed = report.checks.iter().filter(|c| !c.ok).count();
        writeln!(
            stdout,
            "{} checks: {} passed, {failed} failed",
            report.checks.len(),
            report.checks.len() - failed
        )
        .map_err(|err| output_error(&err))?;
    }
    if report.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(
            ErrorKind::VerificationFailed,
            "verification failed: some checks did not pass",
        ))
    }
}
