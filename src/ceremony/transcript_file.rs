//! The transcript file, `transcript.bin`: a 16-byte magic line, then the
//! transcript in the protocol's binary encoding (protocol.md §3.1) with
//! every integer and length as a varint ([`wire::encode_compact`]); its
//! signatures and hash are over the fixed-width encoding, which a reader
//! gets by re-encoding. It is half the size of the JSON view (2.8 KB
//! instead of 5.8 KB per validator at n = 4, t = 3), is decoded as it is
//! read (no copy of the file in memory), and `dvkg transcript show
//! [--json]` prints it readably.
//!
//! Readers also accept the JSON view (`transcript.json`, what dvkg wrote
//! before, and what `dvkg transcript show --json` prints). Spec:
//! `ceremony-specs/formats.md` §8.3.

use std::io::{BufReader, Read as _};
use std::path::{Path, PathBuf};

use crate::dkg::transcript::Transcript;
use crate::store;
use crate::wire::{self, WireError};

/// The binary transcript's file name in an output directory.
pub const TRANSCRIPT_FILE: &str = "transcript.bin";

/// The JSON view's file name, which output directories of earlier dvkg
/// versions hold instead (read when `transcript.bin` is absent).
pub const TRANSCRIPT_JSON_FILE: &str = "transcript.json";

/// The first 16 bytes of a binary transcript: `dvkg transcript` and a
/// newline. The transcript's own `version` (the varint right after it)
/// says which transcript follows.
pub const MAGIC: &[u8; 16] = b"dvkg transcript\n";

/// The largest transcript file read: the wire's limit on one message
/// (512 MiB; a ceremony of 65,536 validators at n = 4 writes 180 MB).
pub const MAX_TRANSCRIPT_BYTES: u64 = wire::MAX_MESSAGE_BYTES;

/// Why a transcript file cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscriptFileError {
    /// The file cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A binary transcript that does not decode.
    #[error("{} is not a valid binary transcript: {source}", path.display())]
    Binary {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: WireError,
    },
    /// A JSON transcript that does not parse.
    #[error("{} is not a valid transcript: {reason}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why, from the JSON parser.
        reason: String,
    },
    /// Neither a binary transcript nor JSON.
    #[error("{} is neither a binary transcript (it does not begin with \"dvkg transcript\") nor JSON", path.display())]
    Unknown {
        /// The file.
        path: PathBuf,
    },
}

/// What a transcript file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`MAGIC`], then the binary encoding.
    Binary,
    /// The JSON view (anything that does not begin with [`MAGIC`]).
    Json,
}

/// `MAGIC ‖ encode(transcript)`: the bytes of `transcript.bin`.
///
/// # Errors
///
/// [`WireError`] if the transcript exceeds the wire's limit.
pub fn to_bytes(transcript: &Transcript) -> Result<Vec<u8>, WireError> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend(wire::encode_compact(transcript)?);
    Ok(bytes)
}

/// Writes `MAGIC ‖ encode(transcript)` to `out`, as [`to_bytes`] makes.
///
/// # Errors
///
/// An I/O error from `out`, or the encoder's (as
/// [`std::io::ErrorKind::Other`]).
pub fn write_to(out: &mut dyn std::io::Write, transcript: &Transcript) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    wire::encode_compact_into(out, transcript).map_err(std::io::Error::other)
}

/// Decodes the bytes of a binary transcript file (magic included).
///
/// # Errors
///
/// [`WireError`] if the magic is missing or the rest is not exactly one
/// transcript.
pub fn from_bytes(bytes: &[u8]) -> Result<Transcript, WireError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(WireError::Magic)?;
    wire::decode_compact_from(body, MAX_TRANSCRIPT_BYTES)
}

/// Which format the file at `path` is in, from its first bytes.
///
/// # Errors
///
/// [`TranscriptFileError::Io`] if it cannot be read.
pub fn format_of(path: &Path) -> Result<Format, TranscriptFileError> {
    let io = |source| TranscriptFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(if head == MAGIC.as_slice() {
        Format::Binary
    } else {
        Format::Json
    })
}

/// Reads the transcript at `path`, binary (decoded as it is read, never
/// held whole) or JSON.
///
/// # Errors
///
/// [`TranscriptFileError`] naming the file and what is wrong.
pub fn read(path: &Path) -> Result<Transcript, TranscriptFileError> {
    match format_of(path)? {
        Format::Binary => {
            let io = |source| TranscriptFileError::Io {
                path: path.to_owned(),
                source,
            };
            let file = std::fs::File::open(path).map_err(io)?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut magic = [0u8; 16];
            reader.read_exact(&mut magic).map_err(io)?;
            wire::decode_compact_from(reader, MAX_TRANSCRIPT_BYTES).map_err(|source| {
                TranscriptFileError::Binary {
                    path: path.to_owned(),
                    source,
                }
            })
        }
        Format::Json => {
            let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
                TranscriptFileError::Json {
                    path: path.to_owned(),
                    reason: err.to_string(),
                }
            })?;
            from_json(path, &text)
        }
    }
}

/// Parses the JSON view.
///
/// # Errors
///
/// [`TranscriptFileError::Json`] (or `Unknown` for text that is not JSON
/// at all).
pub fn from_json(path: &Path, text: &str) -> Result<Transcript, TranscriptFileError> {
    serde_json::from_str(text).map_err(|err| {
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
            TranscriptFileError::Unknown {
                path: path.to_owned(),
            }
        } else {
            TranscriptFileError::Json {
                path: path.to_owned(),
                reason: store::describe_json_error(&err),
            }
        }
    })
}

/// The transcript file of an output directory: `transcript.bin`, else the
/// `transcript.json` of an earlier dvkg.
pub fn in_dir(dir: &Path) -> PathBuf {
    let binary = dir.join(TRANSCRIPT_FILE);
    let json = dir.join(TRANSCRIPT_JSON_FILE);
    if !binary.exists() && json.exists() {
        json
    } else {
        binary
    }
}
