//! Checking lone deposit data files: every entry's roots, signature,
//! network, credentials and amount, one report line per entry.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Check, REPORT_VERSION, Report};
use crate::eth::deposit::{self, DepositEntry, Expectations, FieldProblem};
use crate::store::{self, StoreError};

/// The outcome of checking one entry: the `deposits[]` of a verification
/// report (formats.md §11.2), in every mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

impl EntryReport {
    /// The report of a decoded entry.
    pub fn decoded(
        file: &str,
        index: usize,
        entry: &DepositEntry,
        problems: Vec<FieldProblem>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            index,
            pubkey: Some(hex::encode(entry.pubkey)),
            network: Some(entry.network_name.clone()),
            amount_gwei: Some(entry.amount.0),
            ok: problems.is_empty(),
            problems,
        }
    }

    /// `entry <i> pubkey <short>: <field>: <message>; …`: the entry, its key
    /// and every field at fault, for a report line.
    pub fn describe(&self) -> String {
        let pubkey = self
            .pubkey
            .as_deref()
            .and_then(|p| hex::decode(p).ok())
            .map_or_else(|| "?".to_owned(), |bytes| deposit::short_hex(&bytes));
        let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        format!(
            "entry {} pubkey {pubkey}: {}",
            self.index,
            problems.join("; ")
        )
    }
}

/// The outcome of checking one file.
#[derive(Debug)]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// Problems across entries (mixed networks, conflicting deposits).
    pub problems: Vec<String>,
    /// One report per entry.
    pub entries: Vec<EntryReport>,
}

impl FileReport {
    /// The file's line of a verification report: `deposit data <file>`,
    /// passing with the number of deposits, or failing with every entry and
    /// field at fault and the problems across entries.
    pub fn check(&self) -> Check {
        let failed: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !e.ok)
            .map(EntryReport::describe)
            .chain(self.problems.iter().cloned())
            .collect();
        Check {
            check: format!("deposit data {}", self.file),
            ok: failed.is_empty(),
            detail: if failed.is_empty() {
                format!("{} deposits, all valid", self.entries.len())
            } else {
                failed.join("; ")
            },
        }
    }
}

/// The verification report of deposit files alone (`dvkg verify
/// --deposit-data FILE…`): one check per file and one `deposits` entry per
/// deposit, the shape of every `dvkg verify` report.
pub fn deposit_report(files: &[FileReport]) -> Report {
    let checks: Vec<Check> = files.iter().map(FileReport::check).collect();
    Report {
        version: REPORT_VERSION,
        ok: checks.iter().all(|c| c.ok),
        checks,
        deposits: files
            .iter()
            .flat_map(|f| f.entries.iter().cloned())
            .collect(),
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
                let report = EntryReport::decoded(&shown, index, &entry, problems);
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
