//! Checking public outputs with no secret: a ceremony's output directory
//! (transcript, lock, deposit data, and optionally one operator's
//! keystores), lone deposit data files, and abort reports. Every check
//! becomes one [`Check`] line of a [`Report`]; nothing here prints or
//! decides an exit code (that is `cli::verify`'s job).
//!
//! What is checked, in order: `ceremony-specs/formats.md` §11.

use std::path::Path;

use serde::Serialize;

use crate::store;

pub mod abort;
pub mod deposits;
pub mod keyshares;
pub mod outputs;

pub use outputs::{OutputPaths, check_outputs};

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// A list of checks, as `dvkg verify` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Report format version.
    pub version: u32,
    /// True when every check passed.
    pub ok: bool,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Every deposit data entry checked, each naming its file, index,
    /// public key and the fields at fault (empty when none was checked).
    pub deposits: Vec<deposits::EntryReport>,
}

/// The report format version: 3, one shape for every mode (formats.md
/// §11.2).
pub const REPORT_VERSION: u32 = 3;

/// Checks being gathered.
#[derive(Debug, Default)]
pub struct Checks(pub Vec<Check>);

impl Checks {
    /// Records `check` with its outcome; returns whether it passed.
    pub fn add(&mut self, check: impl Into<String>, result: Result<String, String>) -> bool {
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        self.0.push(Check {
            check: check.into(),
            ok,
            detail,
        });
        ok
    }

    /// The finished report.
    pub fn into_report(self) -> Report {
        self.into_report_with(Vec::new())
    }

    /// The finished report, with the deposit entries that were checked.
    pub fn into_report_with(self, deposits: Vec<deposits::EntryReport>) -> Report {
        Report {
            version: REPORT_VERSION,
            ok: self.0.iter().all(|c| c.ok) && deposits.iter().all(|d| d.ok),
            checks: self.0,
            deposits,
        }
    }
}

/// Parses `path` as a `what`, from `text` when it was already read.
///
/// # Errors
///
/// Why the file cannot be read or parsed, naming it.
pub fn read_json<T: serde::de::DeserializeOwned>(
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
