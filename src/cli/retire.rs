//! `dvkg retire`: after a reshare, erase one operator's previous secret
//! files (its share keystores, their passwords and its sealed share bundle),
//! once the new outputs verify and continue the previous lock.
//!
//! Best effort, and it says so: it overwrites each file with zeros, syncs
//! it, and removes it, but it cannot reach copies, backups, snapshots, a
//! copy-on-write file system's old blocks or a flash drive's remapped ones,
//! and no command can revoke the other previous operators' shares: any
//! previous threshold of them who kept theirs can still sign. Spec:
//! `ceremony-specs/formats.md` §7.8.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::ceremony::lock::ClusterLock;
use crate::ceremony::outputs::LOCK_FILE;
use crate::dkg::plan::CeremonyKind;
use crate::error::{CliError, ErrorKind};
use crate::store;

/// Arguments of `dvkg retire`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg retire --previous old-output --confirm-new new-output")]
pub struct RetireArgs {
    /// This operator's output directory of the previous ceremony, whose
    /// secret files are erased (its public files are kept).
    #[arg(long, value_name = "DIR")]
    pub previous: PathBuf,
    /// The reshare's output directory (this operator's or any other's):
    /// it must verify and continue the lock in --previous.
    #[arg(long, value_name = "DIR")]
    pub confirm_new: PathBuf,
}

/// What no retire can do, printed every time.
pub const RETIRE_WARNING: &str = "dvkg: this is best effort: copies, backups, snapshots and a disk's remapped blocks are out of reach, and the other previous operators' shares are not touched: any previous threshold of previous operators who kept theirs can still sign; the only full revocation is a new key and moving the stake";

fn read_lock(dir: &Path, flag: &str) -> Result<ClusterLock, CliError> {
    let path = dir.join(LOCK_FILE);
    let text = store::read_text(&path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("cannot read {flag} {}", path.display()))
            .with_source(&err)
            .with_hint(format!("{flag} names a ceremony output directory"))
    })?;
    serde_json::from_str(&text).map_err(|err| {
        CliError::user(format!("{} is not a cluster lock", path.display())).with_source(&err)
    })
}

/// The secret files of an output directory: the share keystores, their
/// password files (`password.txt` and each `keystore-<v>.txt`), and the
/// sealed share bundles.
fn secret_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    let list = |d: &Path| -> Result<Vec<PathBuf>, CliError> {
        match std::fs::read_dir(d) {
            Ok(entries) => Ok(entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => {
                Err(CliError::user(format!("cannot list {}", d.display())).with_source(&err))
            }
        }
    };
    for path in list(&dir.join("validator_keys"))? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| {
            n.starts_with("keystore-") && (n.ends_with(".json") || n.ends_with(".txt"))
                || n == "password.txt"
        }) {
            files.push(path);
        }
    }
    for path in list(dir)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name
            .as_deref()
            .is_some_and(|n| n.starts_with("shares-operator-") && n.ends_with(".age"))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Overwrites `path` with zeros, syncs it and removes it.
fn erase(path: &Path) -> std::io::Result<u64> {
    let length = std::fs::metadata(path)?.len();
    {
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = length;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(zeros.get(..n).unwrap_or_default())?;
            left -= n as u64;
        }
        file.sync_all()?;
    }
    std::fs::remove_file(path)?;
    Ok(length)
}

/// Runs `dvkg retire`.
///
/// # Errors
///
/// Exit 1 for unreadable or unrelated directories, exit 5 when the new
/// outputs do not verify; nothing is erased in either case.
pub fn run(args: RetireArgs) -> Result<ExitCode, CliError> {
    let previous = read_lock(&args.previous, "--previous")?;
    let new = read_lock(&args.confirm_new, "--confirm-new")?;
    if new.kind != CeremonyKind::Reshare || new.previous_lock_hash != Some(previous.lock_hash) {
        return Err(CliError::user(format!(
            "{} does not continue {}: its lock is {} and names {} as its previous lock, not {}",
            args.confirm_new.display(),
            args.previous.display(),
            new.kind,
            new.previous_lock_hash
                .map_or_else(|| "no lock".to_owned(), |h| hex::encode(h.0)),
            hex::encode(previous.lock_hash.0)
        ))
        .with_hint("--confirm-new names the output directory of the reshare of the --previous ceremony; nothing was erased"));
    }
    let report = super::verify::check_dir(&args.confirm_new, &Default::default())?;
    if !report.ok {
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect();
        return Err(CliError::new(
            ErrorKind::VerificationFailed,
            format!(
                "the new outputs in {} do not verify: {}",
                args.confirm_new.display(),
                failed.join("; ")
            ),
        )
        .with_hint("nothing was erased: run `dvkg verify` on the new outputs and retire only once they pass"));
    }
    let files = secret_files(&args.previous)?;
    status!(
        "dvkg: the reshare in {} verifies ({} checks) and continues {}: erasing {} secret file(s)",
        args.confirm_new.display(),
        report.checks.len(),
        args.previous.display(),
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        match erase(path) {
            Ok(bytes) => status!(
                "dvkg: overwrote ({bytes} bytes) and removed {}",
                path.display()
            ),
            Err(err) => failures.push(format!("{}: {err}", path.display())),
        }
    }
    eprintln!("{RETIRE_WARNING}");
    if !failures.is_empty() {
        return Err(CliError::user(format!(
            "could not erase {} file(s): {}",
            failures.len(),
            failures.join("; ")
        ))
        .with_hint("erase them by hand: they still hold this operator's previous shares"));
    }
    Ok(ExitCode::SUCCESS)
}
