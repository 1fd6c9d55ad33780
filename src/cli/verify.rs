//! `dvkg verify`: check public outputs with no secret.
//!
//! Today it checks deposit data files: every entry's roots are recomputed,
//! its signature verified, its fork version matched to its network and its
//! credentials and amount checked. It prints one line per entry and a
//! summary (or a JSON report with `--json`), and exits 0 only when every
//! entry of every file passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::error::{CliError, ErrorKind};
use crate::eth::ExecutionAddress;
use crate::eth::deposit::{self, DepositEntry, Expectations, FieldProblem};
use crate::eth::network::Network;
use crate::store;

/// Arguments of `dvkg verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A ceremony output directory to check as a whole.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A cluster lock file.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// A public ceremony transcript.
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
    /// Print a machine-readable JSON report on stdout instead of text.
    #[arg(long)]
    pub json: bool,
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
}

impl VerifyConfig {
    /// Validates the arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_args(args: VerifyArgs) -> Result<Self, CliError> {
        if args.dir.is_some() || args.lock.is_some() || args.transcript.is_some() {
            return Err(super::not_built("verify DIR|--lock|--transcript")
                .with_hint("ceremony outputs arrive with `dvkg ceremony`; pass --deposit-data FILE to check a deposit file"));
        }
        if args.deposit_data.is_empty() {
            return Err(CliError::user("nothing to verify").with_hint(
                "pass --deposit-data FILE (or an output directory once ceremonies are built)",
            ));
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
        })
    }
}

/// The outcome of checking one entry.
#[derive(Debug, Serialize)]
pub struct EntryReport {
    /// The file the entry is in.
    pub file: String,
    /// The entry's 0-based index in the file.
    pub index: usize,
    /// Its public key, when it decoded.
    pub pubkey: Option<String>,
    /// The network named in the entry, when it decoded.
    pub network: Option<String>,
    /// The amount in Gwei, when it decoded.
    pub amount_gwei: Option<u64>,
    /// Whether every check passed.
    pub ok: bool,
    /// What failed, per field.
    pub problems: Vec<FieldProblem>,
}

/// The outcome of checking one file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// Problems across entries (mixed networks, conflicting deposits).
    pub problems: Vec<String>,
    /// One report per entry.
    pub entries: Vec<EntryReport>,
}

/// The whole report, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Report format version.
    pub version: u32,
    /// True when every check passed.
    pub ok: bool,
    /// Entries that passed.
    pub passed: usize,
    /// Entries that failed.
    pub failed: usize,
    /// Per-file results.
    pub files: Vec<FileReport>,
}

/// Checks one deposit data file.
///
/// # Errors
///
/// A user error when the file cannot be read or is not a JSON list of
/// deposits (problems inside entries are reported, not returned).
pub fn check_deposit_file(path: &Path, expect: &Expectations) -> Result<FileReport, CliError> {
    let shown = path.display().to_string();
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("failed to read deposit data file {shown}"))
            .with_source(&err)
            .with_hint("check the path given to --deposit-data")
    })?;
    let parsed = deposit::parse_file(&text).map_err(|err| {
        CliError::user(format!("{shown} is not a deposit data file"))
            .with_source(&err)
            .with_hint(
                "a deposit data file is the JSON list written by dvkg or an Ethereum deposit CLI",
            )
    })?;
    let mut good: Vec<DepositEntry> = Vec::new();
    let entries = parsed
        .into_iter()
        .enumerate()
        .map(|(index, parse)| match parse {
            Ok(entry) => {
                let problems = deposit::verify_entry(&entry, expect);
                let report = EntryReport {
                    file: shown.clone(),
                    index,
                    pubkey: Some(hex::encode(entry.pubkey)),
                    network: Some(entry.network_name.clone()),
                    amount_gwei: Some(entry.amount.0),
                    ok: problems.is_empty(),
                    problems,
                };
                good.push(entry);
                report
            }
            Err(problems) => EntryReport {
                file: shown.clone(),
                index,
                pubkey: None,
                network: None,
                amount_gwei: None,
                ok: false,
                problems,
            },
        })
        .collect();
    Ok(FileReport {
        file: shown,
        problems: deposit::verify_file(&good),
        entries,
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
    let config = VerifyConfig::from_args(args)?;
    let mut files = Vec::new();
    for path in &config.deposit_files {
        files.push(check_deposit_file(path, &config.expect)?);
    }
    let passed = files
        .iter()
        .flat_map(|f| &f.entries)
        .filter(|e| e.ok)
        .count();
    let failed = files
        .iter()
        .flat_map(|f| &f.entries)
        .filter(|e| !e.ok)
        .count();
    let file_problems: usize = files.iter().map(|f| f.problems.len()).sum();
    let ok = failed == 0 && file_problems == 0;
    let report = Report {
        version: 1,
        ok,
        passed,
        failed,
        files,
    };

    let mut stdout = std::io::stdout().lock();
    let written = if config.json {
        serde_json::to_string_pretty(&report)
            .map_err(|err| CliError::internal("failed to render the JSON report").with_source(&err))
            .and_then(|text| writeln!(stdout, "{text}").map_err(|err| output_error(&err)))
    } else {
        let mut text = String::new();
        for file in &report.files {
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
