//! Checking lone deposit data files: every entry's roots, signature,
//! network, credentials and amount, one report line per entry.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::eth::deposit::{self, DepositEntry, Expectations, FieldProblem};
use crate::store::{self, StoreError};

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

/// The deposit report format version.
pub const DEPOSIT_REPORT_VERSION: u32 = 1;

/// The report on deposit files, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct DepositReport {
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

impl DepositReport {
    /// The report over `files`.
    pub fn new(files: Vec<FileReport>) -> Self {
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
        Self {
            version: DEPOSIT_REPORT_VERSION,
            ok: failed == 0 && file_problems == 0,
            passed,
            failed,
            files,
        }
    }

    /// Problems across entries, in all files.
    pub fn file_problems(&self) -> usize {
        self.files.iter().map(|f| f.problems.len()).sum()
    }
}

/// Why a deposit data file could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DepositFileError {
    /// The file cannot be read.
    #[error("failed to read deposit data file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The file is not a JSON list of deposits.
    #[error("{path} is not a deposit data file")]
    NotDeposits {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: deposit::DepositFileError,
    },
}

/// Checks one deposit data file.
///
/// # Errors
///
/// [`DepositFileError`] when the file cannot be read or is not a JSON list
/// of deposits (problems inside entries are reported, not returned).
pub fn check_deposit_file(
    path: &Path,
    expect: &Expectations,
) -> Result<FileReport, DepositFileError> {
    let shown = path.display().to_string();
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|source| {
        DepositFileError::Read {
            path: path.to_owned(),
            source,
        }
    })?;
    let parsed = deposit::parse_file(&text).map_err(|source| DepositFileError::NotDeposits {
        path: path.to_owned(),
        source,
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
