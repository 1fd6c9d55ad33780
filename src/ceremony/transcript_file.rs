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

use rand::{CryptoRng, RngCore};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::dkg::Context;
use crate::dkg::messages::{Ack, DealBundle, Finalize, Hello, PartialSignatures, Signed};
use crate::dkg::signing::Statements;
use crate::dkg::transcript::{
    self, Recall, Transcript, TranscriptError, ValidatorRecord, Verified, Verifier,
};
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
        Format::Binary => wire::decode_compact_from(open_binary(path)?, MAX_TRANSCRIPT_BYTES)
            .map_err(|source| TranscriptFileError::Binary {
                path: path.to_owned(),
                source,
            }),
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

/// A binary transcript file, read past its magic.
fn open_binary(path: &Path) -> Result<BufReader<std::fs::File>, TranscriptFileError> {
    let io = |source| TranscriptFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 16];
    reader.read_exact(&mut magic).map_err(io)?;
    Ok(reader)
}

/// A transcript file verified: what [`verify_file`] returns.
#[derive(Debug)]
pub struct Checked {
    /// The transcript. From a binary file, without its bulk: its deals have
    /// no per-validator entries and its partial-signature messages no
    /// signatures (their attachments are kept), which is all the checks
    /// after verification read (the context, the records, the finals, the
    /// attachments). Its [`Transcript::hash`] is then not the transcript's:
    /// take [`Verified::hash`].
    pub transcript: Transcript,
    /// The verdict.
    pub verdict: Result<Verified, TranscriptError>,
}

/// Reads and verifies the transcript at `path`
/// ([`verify_transcript`](crate::dkg::transcript::verify_transcript)'s
/// checks). A binary file is verified as it is decoded, one message at a
/// time, and no deal or partial signature is kept: 4 × 65,536 validators'
/// transcript (184 MB) is verified in memory that does not hold it. A
/// failure that needs a dropped message as evidence reads the file again.
/// The JSON view is verified in memory.
///
/// # Errors
///
/// [`TranscriptFileError`] when the file cannot be read or decoded (a
/// transcript that decodes and does not verify is a `verdict`).
pub fn verify_file<R: RngCore + CryptoRng + ?Sized>(
    path: &Path,
    statements: &dyn Statements,
    rng: &mut R,
) -> Result<Checked, TranscriptFileError> {
    if format_of(path)? == Format::Json {
        let transcript = read(path)?;
        let verdict = transcript::verify_transcript(&transcript, statements, rng);
        return Ok(Checked {
            transcript,
            verdict,
        });
    }
    stream(open_binary(path)?, statements, rng, || {
        read(path).map_err(|e| e.to_string())
    })
    .map_err(|source| TranscriptFileError::Binary {
        path: path.to_owned(),
        source,
    })
}

/// [`verify_file`] on the bytes of a binary transcript file (magic
/// included), verified as a stream in the same way.
///
/// # Errors
///
/// [`WireError`] if the magic is missing or the rest is not exactly one
/// transcript.
pub fn verify_bytes<R: RngCore + CryptoRng + ?Sized>(
    bytes: &[u8],
    statements: &dyn Statements,
    rng: &mut R,
) -> Result<Checked, WireError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(WireError::Magic)?;
    stream(body, statements, rng, || {
        from_bytes(bytes).map_err(|e| e.to_string())
    })
}

/// Decodes the transcript after the magic from `reader`, verifying it as
/// it goes; `read_again` decodes the whole transcript, should a failure
/// need evidence.
fn stream<R: RngCore + CryptoRng + ?Sized>(
    reader: impl std::io::Read,
    statements: &dyn Statements,
    rng: &mut R,
    read_again: impl FnMut() -> Result<Transcript, String>,
) -> Result<Checked, WireError> {
    let mut recall = Reread {
        read: read_again,
        cache: None,
    };
    let seed = Streaming {
        statements,
        rng,
        recall: &mut recall,
    };
    wire::decode_compact_seed_from(reader, MAX_TRANSCRIPT_BYTES, seed)
}

/// The [`Recall`] of a transcript read as a stream: the whole transcript
/// decoded again by `read`, once, when a failure first needs evidence.
struct Reread<F> {
    read: F,
    cache: Option<Transcript>,
}

impl<F: FnMut() -> Result<Transcript, String>> Reread<F> {
    fn transcript(&mut self) -> Result<&Transcript, TranscriptError> {
        if self.cache.is_none() {
            self.cache = Some((self.read)().map_err(TranscriptError::Recall)?);
        }
        self.cache
            .as_ref()
            .ok_or_else(|| TranscriptError::Recall("unreadable".into()))
    }
}

impl<F: FnMut() -> Result<Transcript, String>> Recall for Reread<F> {
    fn deals(&mut self) -> Result<Vec<Signed<DealBundle>>, TranscriptError> {
        Ok(self.transcript()?.deals.clone())
    }

    fn partials(&mut self, position: usize) -> Result<Signed<PartialSignatures>, TranscriptError> {
        self.transcript()?
            .partials
            .get(position)
            .cloned()
            .ok_or_else(|| {
                TranscriptError::Recall(format!("no partial-signature message {position}"))
            })
    }
}

/// The serde seed that decodes a binary transcript and feeds a
/// [`Verifier`] as it goes.
struct Streaming<'s, R: ?Sized> {
    statements: &'s dyn Statements,
    rng: &'s mut R,
    recall: &'s mut dyn Recall,
}

/// The field names of [`Transcript`], in order (bincode reads a struct as
/// a sequence of its fields).
const FIELDS: &[&str] = &[
    "version",
    "context",
    "hellos",
    "deals",
    "acks",
    "partials",
    "validators",
    "finals",
];

impl<'de, R: RngCore + CryptoRng + ?Sized> DeserializeSeed<'de> for Streaming<'_, R> {
    type Value = Checked;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_struct("Transcript", FIELDS, self)
    }
}

/// The verifier, until it finds a fault; then the fault.
enum Progress<V> {
    Checking(V),
    Failed(TranscriptError),
}

impl<V> Progress<V> {
    /// Runs one step of the verifier, unless it already failed.
    fn step(&mut self, f: impl FnOnce(&mut V) -> Result<(), TranscriptError>) {
        if let Self::Checking(verifier) = self
            && let Err(err) = f(verifier)
        {
            *self = Self::Failed(err);
        }
    }
}

impl<'de, R: RngCore + CryptoRng + ?Sized> Visitor<'de> for Streaming<'_, R> {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a transcript")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let Self {
            statements,
            rng,
            recall,
        } = self;
        let version: u32 = element(&mut seq, 0)?;
        let context: Context = element(&mut seq, 1)?;
        let hellos: Vec<Signed<Hello>> = element(&mut seq, 2)?;
        let mut progress = match Verifier::start(version, &context, &hellos, statements, &mut *rng)
        {
            Ok(verifier) => Progress::Checking(verifier),
            Err(err) => Progress::Failed(err),
        };
        let mut deals = Vec::new();
        each(
            &mut seq,
            3,
            |event: Event<Signed<DealBundle>>| match event {
                Event::Count(count) => progress.step(|v| v.deals(count)),
                Event::Item(position, deal) => {
                    progress.step(|v| v.deal(position, &deal));
                    deals.push(Signed {
                        header: deal.header,
                        body: DealBundle {
                            hellos: deal.body.hellos,
                            validators: Vec::new(),
                        },
                        signature: deal.signature,
                    });
                }
            },
        )?;
        let acks: Vec<Signed<Ack>> = element(&mut seq, 4)?;
        progress.step(|v| v.acks(&acks, &mut *recall));
        let mut partials = Vec::new();
        each(
            &mut seq,
            5,
            |event: Event<Signed<PartialSignatures>>| match event {
                Event::Count(count) => progress.step(|v| v.partials(count)),
                Event::Item(position, message) => {
                    progress.step(|v| v.partial(position, &message, &mut *recall));
                    partials.push(Signed {
                        header: message.header,
                        body: PartialSignatures {
                            acks: message.body.acks,
                            signatures: Vec::new(),
                            attachments: message.body.attachments,
                        },
                        signature: message.signature,
                    });
                }
            },
        )?;
        progress.step(|v| v.combine(&mut *recall));
        let validators: Vec<ValidatorRecord> = element(&mut seq, 6)?;
        progress.step(|v| v.records(&validators));
        let finals: Vec<Signed<Finalize>> = element(&mut seq, 7)?;
        let verdict = match progress {
            Progress::Checking(verifier) => verifier.finals(&finals),
            Progress::Failed(err) => Err(err),
        };
        Ok(Checked {
            transcript: Transcript {
                version,
                context,
                hellos,
                deals,
                acks,
                partials,
                validators,
                finals,
            },
            verdict,
        })
    }
}

/// The next field of the transcript, the `index`-th.
fn element<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, &"a transcript's 8 fields"))
}

/// What [`each`] reports: a sequence's length, then its elements.
enum Event<T> {
    Count(usize),
    Item(usize, T),
}

/// Decodes the next field, a sequence, one element at a time into `sink`.
fn each<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
    sink: impl FnMut(Event<T>),
) -> Result<(), A::Error> {
    seq.next_element_seed(Each {
        sink,
        marker: std::marker::PhantomData,
    })?
    .ok_or_else(|| de::Error::invalid_length(index, &"a transcript's 8 fields"))
}

struct Each<T, F> {
    sink: F,
    marker: std::marker::PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(Event<T>)> DeserializeSeed<'de> for Each<T, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(Event<T>)> Visitor<'de> for Each<T, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        // bincode knows every sequence's length before its elements.
        (self.sink)(Event::Count(seq.size_hint().unwrap_or(0)));
        let mut position = 0;
        while let Some(item) = seq.next_element()? {
            (self.sink)(Event::Item(position, item));
            position += 1;
        }
        Ok(())
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
