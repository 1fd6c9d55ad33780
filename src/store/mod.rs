//! The gateway to the disk: bounded reads of input files, and (for outputs)
//! atomic, refuse-to-overwrite writes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest input file dvkg reads (a deposit file for 65,536 validators is
/// about 45 MiB).
pub const MAX_INPUT_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than dvkg will read.
    #[error("{path} is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The path is a directory or another non-file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a whole text file of at most `max` bytes.
///
/// # Errors
///
/// [`StoreError`] when the file is missing, not a regular file, too large or
/// not UTF-8.
pub fn read_text(path: &Path, max: u64) -> Result<String, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(StoreError::NotAFile {
            path: path.to_owned(),
        });
    }
    if meta.len() > max {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The size can change between stat and read: bound the read itself too.
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            max,
        });
    }
    String::from_utf8(bytes).map_err(|_| StoreError::NotText {
        path: path.to_owned(),
    })
}
