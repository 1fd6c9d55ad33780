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
use serde::Serialize;

use crate::ceremony::definition::ClusterDefinition;
use crate::ceremony::driver::{ABORT_REPORT_VERSION, AbortReport};
use crate::ceremony::lock::{self, ClusterLock};
use crate::ceremony::outputs;
use crate::dkg::evidence::verify_evidence;
use crate::dkg::transcript::{self as dkg_transcript, Transcript};
use crate::error::{CliError, ErrorKind};
use crate::eth::ExecutionAddress;
use crate::eth::deposit::{self, DepositEntry, Expectations, FieldProblem};
use crate::eth::keystore::{Keystore, KeystoreDecryptor, Password};
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
}

/// Which ceremony outputs to check.
#[derive(Debug, Clone, Default)]
pub struct OutputPaths {
    /// The lock.
    pub lock: Option<PathBuf>,
    /// The transcript.
    pub transcript: Option<PathBuf>,
    /// Deposit files found in the directory.
    pub deposit_files: Vec<PathBuf>,
    /// Keystores to check, with their password file.
    pub keystores: Option<(PathBuf, PathBuf)>,
}

impl OutputPaths {
    fn from_args(args: &VerifyArgs) -> Result<Option<Self>, CliError> {
        let mut paths = Self {
            lock: args.lock.clone(),
            transcript: args.transcript.clone(),
            deposit_files: Vec::new(),
            keystores: args.keystores.clone().zip(args.password_file.clone()),
        };
        if let Some(dir) = &args.dir {
            paths = Self::in_dir(dir)?;
            paths.keystores = args.keystores.clone().zip(args.password_file.clone());
        }
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
    pub fn in_dir(dir: &Path) -> Result<Self, CliError> {
        let entries = std::fs::read_dir(dir).map_err(|err| {
            CliError::user(format!(
                "cannot read the output directory {}",
                dir.display()
            ))
            .with_source(&err)
            .with_hint("pass the directory `dvkg ceremony --out` wrote")
        })?;
        let mut deposit_files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("deposit_data-") && n.ends_with(".json"))
            })
            .collect();
        deposit_files.sort();
        let lock = dir.join(outputs::LOCK_FILE);
        if !lock.exists() {
            return Err(CliError::user(format!(
                "{} holds no {}",
                dir.display(),
                outputs::LOCK_FILE
            ))
            .with_hint("pass the directory `dvkg ceremony --out` wrote"));
        }
        Ok(Self {
            lock: Some(lock),
            transcript: Some(dir.join(outputs::TRANSCRIPT_FILE)),
            deposit_files,
            keystores: None,
        })
    }
}

impl VerifyConfig {
    /// Validates the arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_args(args: VerifyArgs) -> Result<Self, CliError> {
        let outputs = OutputPaths::from_args(&args)?;
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
        let report = OutputsReport::from_checks(check_abort_reports(&texts, &context));
        return print_checks(&report, config.json);
    }
    if let Some(outputs) = &config.outputs {
        return run_outputs(outputs, &config);
    }
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

/// One check of the ceremony outputs.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The report on a ceremony's outputs.
#[derive(Debug, Serialize)]
pub struct OutputsReport {
    /// Report format version.
    pub version: u32,
    /// True when every check passed.
    pub ok: bool,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, check: impl Into<String>, result: Result<String, String>) -> bool {
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        self.0.push(Check {
            check: check.into(),
            ok,
            detail,
        });
        ok
    }
}

/// Parses `path` as a `what`, from `text` when it was already read.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: Option<&str>,
    what: &str,
) -> Result<T, String> {
    let read;
    let text = match text {
        Some(text) => text,
        None => {
            read = store::read_text(path, store::MAX_INPUT_FILE_BYTES)
                .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
            &read
        }
    };
    serde_json::from_str(text).map_err(|e| {
        format!(
            "{} is not a valid {what}: {}",
            path.display(),
            store::describe_json_error(&e)
        )
    })
}

/// Refuses, as a user error (exit 1), a file that `dvkg verify` was told to
/// check but cannot read or that is not JSON at all: a wrong path is not a
/// verification finding. What is JSON is checked, and its problems are
/// findings (exit 5). Returns the text, so that it is read once.
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
pub fn check_dir(dir: &Path, expect: &Expectations) -> Result<OutputsReport, CliError> {
    let paths = OutputPaths::in_dir(dir)?;
    Ok(check_outputs(&paths, expect))
}

/// Checks the given outputs; every problem becomes a failed check.
pub fn check_outputs(paths: &OutputPaths, expect: &Expectations) -> OutputsReport {
    check_outputs_read(paths, expect, &Preread::default())
}

/// The lock and transcript texts already read (by [`require_json`]).
#[derive(Default)]
struct Preread {
    lock: Option<String>,
    transcript: Option<String>,
}

fn check_outputs_read(
    paths: &OutputPaths,
    expect: &Expectations,
    preread: &Preread,
) -> OutputsReport {
    let mut checks = Checks(Vec::new());
    let mut rng = rand::rngs::OsRng;
    let transcript: Option<Transcript> = paths.transcript.as_ref().and_then(|path| {
        let parsed = read_json::<Transcript>(path, preread.transcript.as_deref(), "transcript");
        let ok = parsed
            .as_ref()
            .map(|_| format!("{} parsed", path.display()))
            .map_err(Clone::clone);
        checks.add("transcript: readable", ok);
        parsed.ok()
    });
    let verified = transcript.as_ref().and_then(|t| {
        let result = dkg_transcript::verify_transcript(t, &mut rng);
        let detail = result.as_ref().map(|v| {
            format!(
                "{} operators (threshold {}), {} validators: every signature, echo, proof, share, partial and combined signature checks out; session {}",
                t.context.params.operators(),
                t.context.params.threshold(),
                v.group_keys.len(),
                hex::encode(v.session)
            )
        });
        checks.add("transcript: verifies against the protocol", detail.map_err(|e| e.to_string()));
        result.ok()
    });
    let lock: Option<ClusterLock> = paths.lock.as_ref().and_then(|path| {
        let parsed = read_json::<ClusterLock>(path, preread.lock.as_deref(), "cluster lock")
            .and_then(|lock| {
                if lock.version == lock::LOCK_VERSION {
                    Ok(lock)
                } else {
                    Err(format!(
                        "{}: unsupported cluster lock version {}: this dvkg reads version {}",
                        path.display(),
                        lock.version,
                        lock::LOCK_VERSION
                    ))
                }
            });
        checks.add(
            "lock: readable",
            parsed
                .as_ref()
                .map(|_| format!("{} parsed", path.display()))
                .map_err(Clone::clone),
        );
        parsed.ok()
    });
    let mut lock_entries: Vec<DepositEntry> = Vec::new();
    let mut lock_verified = false;
    if let Some(lock) = &lock {
        let definition: &ClusterDefinition = &lock.definition;
        let valid = definition.validate();
        checks.add(
            "lock: definition is valid",
            valid
                .as_ref()
                .map(|v| format!("definition hash {}", hex::encode(v.definition_hash.0)))
                .map_err(|e| e.to_string()),
        );
        checks.add(
            "lock: lock hash",
            if lock.compute_hash() == lock.lock_hash.0 {
                Ok(hex::encode(lock.lock_hash.0))
            } else {
                Err(format!(
                    "recorded {}, recomputed {}",
                    hex::encode(lock.lock_hash.0),
                    hex::encode(lock.compute_hash())
                ))
            },
        );
        for validator in &lock.validators {
            for value in &validator.deposit_data {
                if let Ok(entry) = deposit::parse_entry(value) {
                    lock_entries.push(entry);
                }
            }
        }
        if let (Some(transcript), Some(_)) = (&transcript, &verified) {
            let context = definition.to_context();
            checks.add(
                "lock: the transcript ran this definition",
                match context {
                    Ok(c) if c == transcript.context => {
                        Ok("parameters, roster, definition hash and deposit plan match".into())
                    }
                    Ok(_) => {
                        Err("the transcript's context differs from the lock's definition".into())
                    }
                    Err(e) => Err(e.to_string()),
                },
            );
            checks.add(
                "lock: transcript hash",
                if lock.transcript_hash.0 == transcript.hash() {
                    Ok(hex::encode(lock.transcript_hash.0))
                } else {
                    Err("the lock names another transcript".into())
                },
            );
            checks.add(
                "lock: every operator signed the transcript",
                if lock.operator_signatures == transcript.finals {
                    Ok(format!(
                        "{} finalize signatures, as in the transcript",
                        lock.operator_signatures.len()
                    ))
                } else {
                    Err("the lock's operator signatures are not the transcript's".into())
                },
            );
            let rebuilt = ClusterLock::new(definition, transcript);
            checks.add(
                "lock: validators, public shares and deposit data derive from the transcript",
                match rebuilt {
                    Ok(rebuilt) if rebuilt.validators == lock.validators => {
                        Ok(format!("{} validators", lock.validators.len()))
                    }
                    Ok(_) => {
                        Err("the lock's validators differ from those the transcript derives".into())
                    }
                    Err(e) => Err(e.to_string()),
                },
            );
        }
        // Every deposit in the lock verifies on its own.
        let mut expect = expect.clone();
        if let Ok(valid) = &valid {
            expect.network.get_or_insert(valid.network.clone());
            if expect.withdrawal_address.is_none() {
                expect.withdrawal_address = valid.credentials.address();
            }
        }
        let failures: Vec<String> = deposit::verify_entries(&lock_entries, &expect, &mut rng)
            .into_iter()
            .enumerate()
            .flat_map(|(i, problems)| {
                problems
                    .into_iter()
                    .map(move |p| format!("deposit {i}: {p}"))
            })
            .collect();
        lock_verified = failures.is_empty() && !lock_entries.is_empty();
        checks.add(
            "lock: every deposit verifies",
            if failures.is_empty() && !lock_entries.is_empty() {
                Ok(format!(
                    "{} deposits: roots, signatures, network, credentials, amounts",
                    lock_entries.len()
                ))
            } else if lock_entries.is_empty() {
                Err("the lock holds no deposit data".into())
            } else {
                Err(failures.join("; "))
            },
        );
        if let Some(transcript) = &transcript {
            let _ = lock::deposit_entries(
                transcript,
                &expect.network.clone().unwrap_or(Network::MAINNET),
            );
        }
    }
    let lock_set: std::collections::HashSet<&DepositEntry> = lock_entries.iter().collect();
    let mut in_files: std::collections::HashSet<DepositEntry> = std::collections::HashSet::new();
    for path in &paths.deposit_files {
        let shown = path.display().to_string();
        let result = store::read_text(path, store::MAX_INPUT_FILE_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|text| deposit::parse_file(&text).map_err(|e| e.to_string()))
            .and_then(|parsed| {
                let entries: Vec<DepositEntry> = parsed
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| {
                        p.map_err(|problems| {
                            format!(
                                "entry {i}: {}",
                                problems
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                if lock.is_some() && !entries.iter().all(|e| lock_set.contains(e)) {
                    return Err("holds deposits that are not in the lock".into());
                }
                in_files.extend(entries.iter().cloned());
                // Entries equal to the lock's were verified with it.
                let problems: Vec<String> = if lock_verified {
                    Vec::new()
                } else {
                    deposit::verify_entries(&entries, expect, &mut rng)
                        .into_iter()
                        .flatten()
                        .map(|p| p.to_string())
                        .collect()
                }
                .into_iter()
                .chain(deposit::verify_file(&entries))
                .collect();
                if problems.is_empty() {
                    Ok(format!(
                        "{} deposits, {}all valid",
                        entries.len(),
                        if lock_verified {
                            "all in the lock, "
                        } else {
                            ""
                        }
                    ))
                } else {
                    Err(problems.join("; "))
                }
            });
        checks.add(format!("deposit data {shown}"), result);
    }
    if lock.is_some() && !paths.deposit_files.is_empty() {
        let missing = lock_entries
            .iter()
            .filter(|e| !in_files.contains(*e))
            .count();
        checks.add(
            "deposit data files hold every deposit of the lock",
            if missing == 0 {
                Ok(format!(
                    "{} deposits in {} file(s)",
                    lock_entries.len(),
                    paths.deposit_files.len()
                ))
            } else {
                Err(format!(
                    "{missing} deposits of the lock are in no deposit data file"
                ))
            },
        );
    }
    if lock.is_some()
        && paths.lock.as_ref().and_then(|p| p.parent()).is_some()
        && paths.deposit_files.is_empty()
        && paths.transcript.is_some()
    {
        checks.add(
            "deposit data files",
            Err("no deposit_data-*.json next to the lock".into()),
        );
    }
    if let (Some((dir, password_file)), Some(lock)) = (&paths.keystores, &lock) {
        let result = check_keystores(dir, password_file, lock);
        checks.add(format!("keystores in {}", dir.display()), result);
    }
    let ok = checks.0.iter().all(|c| c.ok);
    OutputsReport {
        version: 1,
        ok,
        checks: checks.0,
    }
}

fn check_keystores(dir: &Path, password_file: &Path, lock: &ClusterLock) -> Result<String, String> {
    let text = super::ceremony::read_secret_file(password_file, "--password-file")
        .map_err(|e| e.to_string())?;
    let password = Password::new(&text);
    let mut decryptor = KeystoreDecryptor::new();
    let mut operators = std::collections::BTreeSet::new();
    for (v, validator) in lock.validators.iter().enumerate() {
        let path = dir.join(outputs::keystore_file(v));
        let json = store::read_text(&path, 1024 * 1024).map_err(|e| e.to_string())?;
        let keystore =
            Keystore::from_json_str(&json).map_err(|e| format!("{}: {e}", path.display()))?;
        decryptor
            .decrypt(&keystore, &password)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let pubkey = keystore.pubkey().to_bytes();
        let position = validator
            .public_shares
            .iter()
            .position(|share| share.0 == pubkey)
            .ok_or_else(|| {
                format!(
                    "{}: its key is no operator's public share of validator {v}",
                    path.display()
                )
            })?;
        operators.insert(position + 1);
    }
    if operators.len() != 1 {
        return Err(format!(
            "the keystores belong to several operators: {operators:?}"
        ));
    }
    Ok(format!(
        "{} keystores decrypt and match operator {}'s public shares ({} KDF run(s))",
        lock.validators.len(),
        operators.iter().next().copied().unwrap_or(0),
        decryptor.kdf_runs()
    ))
}

fn run_outputs(paths: &OutputPaths, config: &VerifyConfig) -> Result<ExitCode, CliError> {
    let preread = Preread {
        lock: paths
            .lock
            .as_deref()
            .map(|lock| require_json(lock, "--lock (or in DIR)"))
            .transpose()?,
        transcript: paths
            .transcript
            .as_deref()
            .map(|transcript| require_json(transcript, "--transcript (or in DIR)"))
            .transpose()?,
    };
    let mut paths = paths.clone();
    paths
        .deposit_files
        .extend(config.deposit_files.iter().cloned());
    let report = check_outputs_read(&paths, &config.expect, &preread);
    print_checks(&report, config.json)
}

/// Prints checks one per line (or as JSON); exit 0 only if all passed.
fn print_checks(report: &OutputsReport, json: bool) -> Result<ExitCode, CliError> {
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

impl OutputsReport {
    fn from_checks(checks: Checks) -> Self {
        Self {
            version: 1,
            ok: checks.0.iter().all(|c| c.ok),
            checks: checks.0,
        }
    }
}

/// Checks abort reports against the ceremony's context: one check per
/// report, which passes only when its evidence proves the fault of the
/// operator it names to anyone, with no trust in the reporter.
fn check_abort_reports(reports: &[(&Path, String)], context: &crate::dkg::Context) -> Checks {
    let mut checks = Checks(Vec::new());
    for (path, text) in reports {
        let name = format!("abort report {}", path.display());
        let result = read_json::<AbortReport>(path, Some(text), "abort report")
            .and_then(|report| judge_abort_report(&report, context));
        checks.add(name, result);
    }
    checks
}

/// What an abort report proves, in one line.
///
/// # Errors
///
/// Why the report proves nothing: another ceremony, no evidence, evidence
/// that does not verify, convicts someone else, or is channel-level only.
pub fn judge_abort_report(
    report: &AbortReport,
    context: &crate::dkg::Context,
) -> Result<String, String> {
    if report.version != ABORT_REPORT_VERSION {
        return Err(format!(
            "report version {} (this dvkg reads version {ABORT_REPORT_VERSION})",
            report.version
        ));
    }
    if report.definition_hash.0 != context.definition_hash.0 {
        return Err(format!(
            "the report is about the ceremony with definition hash {}, not {}",
            hex::encode(report.definition_hash.0),
            hex::encode(context.definition_hash.0)
        ));
    }
    let by = format!("operator {} (round {})", report.reporter, report.round);
    let Some(evidence) = &report.evidence else {
        return Err(match (report.culprit, report.missing) {
            (_, Some(missing)) => format!(
                "{by} reports operator {missing} missing; an absence cannot be proven, only observed: {}",
                report.message
            ),
            (Some(culprit), None) => format!(
                "{by} blames operator {culprit} with no signed evidence (a channel-level fault, seen only by the reporter): {}",
                report.message
            ),
            (None, None) => format!("{by} blames no one: {}", report.message),
        });
    };
    let verdict = verify_evidence(context, evidence)
        .map_err(|e| format!("{by}: the evidence does not verify: {e}"))?;
    if report.culprit != Some(verdict.culprit) {
        return Err(format!(
            "{by} names {} but its evidence convicts operator {}",
            report
                .culprit
                .map_or("no one".to_owned(), |c| format!("operator {c}")),
            verdict.culprit
        ));
    }
    if !verdict.proven {
        return Err(format!(
            "{by}: the evidence shows what operator {} signed but does not prove the fault to a third party: {}",
            verdict.culprit, verdict.fault
        ));
    }
    Ok(format!(
        "{by}: proven, operator {} is at fault: {}",
        verdict.culprit, verdict.fault
    ))
}
