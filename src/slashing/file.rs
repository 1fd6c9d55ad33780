//! Interchange files on disk: bounded reads, and writes that appear whole
//! and never replace an existing file.
//!
//! The write is [`store::write_new_file`]: a temporary file in the same
//! directory, synced, then hard-linked to its final name (`link(2)` fails
//! if the name exists, so the check and the creation are one step, and a
//! reader never sees a half-written file).

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

/// Writes an interchange file as the new file `path` (0644: a history is
/// public), atomically; an existing `path` is never replaced.
///
/// # Errors
///
/// As [`store::write_new_file`].
pub fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    store::write_new_file(path, bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use std::fs;

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
