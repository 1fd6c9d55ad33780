//! Interchange files on disk: bounded reads, and writes that appear whole
//! and never replace an existing file.
//!
//! The write goes to a temporary file in the same directory (0644: a
//! history is public), is synced, then hard-linked to its final name:
//! `link(2)` fails if the name exists, so the check and the creation are one
//! step, and a reader never sees a half-written file.
//!
//! (A single-file sibling of `store::AtomicDir`; it lives here until the
//! store module grows one.)

use std::fs;
use std::io::Write as _;
use std::path::Path;

use super::interchange::Interchange;
use crate::store::{self, StoreError};

/// Why an interchange file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Missing, unreadable, too large or not text.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not an EIP-3076 interchange.
    #[error("{0}")]
    Json(String),
}

/// Reads and parses an interchange file (at most
/// [`store::MAX_INPUT_FILE_BYTES`]).
///
/// # Errors
///
/// [`ReadError`] naming what is wrong (serde's message names the field,
/// line and column).
pub fn read_interchange(path: &Path) -> Result<Interchange, ReadError> {
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES)?;
    Interchange::from_json(&text).map_err(|err| ReadError::Json(store::describe_json_error(&err)))
}

/// Writes `bytes` as the new file `path`, atomically; an existing `path` is
/// never replaced.
///
/// # Errors
///
/// [`StoreError::Exists`] if `path` exists (before or at the moment of the
/// link), or an I/O error naming the path; no temporary file is left.
pub fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;

    if path.exists() {
        return Err(StoreError::Exists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let temp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let io = |at: &Path| {
        let at = at.to_owned();
        move |source| StoreError::Io { path: at, source }
    };
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .map_err(io(&temp))?;
        file.write_all(bytes).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        fs::hard_link(&temp, path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::Exists {
                    path: path.to_owned(),
                }
            } else {
                StoreError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })
    })();
    let _ = fs::remove_file(&temp);
    result?;
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("history.json");
        write_new_file(&out, b"one").unwrap();
        assert!(matches!(
            write_new_file(&out, b"two"),
            Err(StoreError::Exists { .. })
        ));
        assert_eq!(fs::read(&out).unwrap(), b"one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn read_names_json_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, "{\"metadata\": {").unwrap();
        let err = read_interchange(&path).unwrap_err();
        assert!(err.to_string().contains("ends early"), "{err}");
        assert!(matches!(
            read_interchange(&dir.path().join("missing.json")),
            Err(ReadError::Store(_))
        ));
    }
}
