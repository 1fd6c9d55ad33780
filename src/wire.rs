//! The one place that speaks bincode: canonical binary encodings of protocol
//! messages, for signing, hashing and the network.
//!
//! Options: fixed-width little-endian integers, a size limit equal to the
//! input's length (so a forged length prefix cannot make the decoder allocate
//! more than the message carries), and trailing bytes refused. Human-readable
//! formats (the JSON transcript) see byte strings as lowercase hex.

use std::fmt;

use bincode::Options;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest message dvkg will decode, whatever the ceremony's size.
pub const MAX_MESSAGE_BYTES: u64 = 512 * 1024 * 1024;

/// Why bytes could not be decoded or a value encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Longer than allowed, checked before decoding.
    #[error("message of {got} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The message length.
        got: u64,
        /// The limit.
        max: u64,
    },
    /// Not a valid encoding of the expected type.
    #[error("malformed message: {}", describe(.0))]
    Malformed(#[source] bincode::Error),
    /// Bytes after the encoded value.
    #[error("trailing bytes after the encoded value")]
    Trailing,
    /// A file that does not begin with the magic bytes of its format.
    #[error("the file does not begin with its format's magic bytes")]
    Magic,
}

/// bincode's errors in words a reader can act on (its own Display says
/// "io error: " with nothing after it for a truncated input).
fn describe(err: &bincode::Error) -> String {
    match err.as_ref() {
        bincode::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated: the input ends inside a field".to_owned()
        }
        bincode::ErrorKind::SizeLimit => {
            "a length field claims more bytes than the input holds".to_owned()
        }
        other => other.to_string(),
    }
}

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(limit)
        .reject_trailing_bytes()
}

/// The canonical encoding of `value`.
///
/// Encoding the protocol's types cannot fail (no maps with non-string keys,
/// no unsized sequences), and the limit is the global one.
///
/// # Errors
///
/// [`WireError::Malformed`] if serde reports an error, which would be a bug.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    options(MAX_MESSAGE_BYTES)
        .serialize(value)
        .map_err(WireError::Malformed)
}

/// The bytes [`encode`] puts before the elements of a sequence of `len`
/// elements (its length as a `u64`), for a hash of a sequence whose
/// elements arrive one at a time.
pub fn encode_len(len: usize) -> Vec<u8> {
    encode(&(len as u64)).unwrap_or_default()
}

/// Adds [`encode`]`(value)` to `hasher` as it is encoded: the hash of an
/// encoding without the encoding in memory (a deal of 65,536 validators is
/// 27 MB, a transcript 200 MB). The encoder writes a field at a time, so
/// the bytes reach the hasher through a 64 KiB buffer; and it has no size
/// limit, so it makes no pass to measure first.
pub fn hash_encoding<T: Serialize + ?Sized>(hasher: &mut sha2::Sha256, value: &T) {
    let options = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian();
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, HashWriter(hasher));
    // Encoding our own types cannot fail, nor can writing to a hasher.
    let _ = options.serialize_into(&mut buffered, value);
    let _ = std::io::Write::flush(&mut buffered);
}

/// A SHA-256 as a writer.
struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The compact options, for files only (never signed or hashed): the same
/// encoding with every integer, length and enum tag as a bincode 1 varint
/// (below 251 one byte; else 251, 252 or 253 then 2, 4 or 8 little-endian
/// bytes).
fn compact_options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .with_limit(limit)
        .reject_trailing_bytes()
}

/// The compact encoding of `value` (see [`compact_options`]): what
/// `transcript.bin` holds. Signatures and hashes are over [`encode`]; a
/// reader re-encodes.
///
/// # Errors
///
/// [`WireError::Malformed`] if serde reports an error, which would be a bug.
pub fn encode_compact<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    compact_options(MAX_MESSAGE_BYTES)
        .serialize(value)
        .map_err(WireError::Malformed)
}

/// [`encode_compact`] straight into `writer`, with no copy in memory.
///
/// # Errors
///
/// [`WireError::Malformed`] if serde or `writer` reports an error.
pub fn encode_compact_into<T: Serialize>(
    writer: &mut dyn std::io::Write,
    value: &T,
) -> Result<(), WireError> {
    compact_options(MAX_MESSAGE_BYTES)
        .serialize_into(writer, value)
        .map_err(WireError::Malformed)
}

/// Decodes one compactly encoded `T` from `reader`, as it reads (no copy of
/// the input in memory), reading at most `max` bytes, and refusing bytes
/// after it.
///
/// # Errors
///
/// [`WireError`] naming the problem (an I/O error is
/// [`WireError::Malformed`]).
pub fn decode_compact_from<R: std::io::Read, T: DeserializeOwned>(
    reader: R,
    max: u64,
) -> Result<T, WireError> {
    decode_compact_seed_from(reader, max, std::marker::PhantomData::<T>)
}

/// [`decode_compact_from`] through a serde `seed`, which may consume the
/// value's parts as they are decoded (a transcript verified as it is read,
/// keeping none of its deals).
///
/// # Errors
///
/// As [`decode_compact_from`].
pub fn decode_compact_seed_from<'de, R: std::io::Read, S: de::DeserializeSeed<'de>>(
    mut reader: R,
    max: u64,
    seed: S,
) -> Result<S::Value, WireError> {
    let value = compact_options(max.min(MAX_MESSAGE_BYTES))
        .deserialize_from_seed(seed, &mut reader)
        .map_err(WireError::Malformed)?;
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok(value),
        Ok(_) => Err(WireError::Trailing),
        Err(err) => Err(WireError::Malformed(Box::new(bincode::ErrorKind::Io(err)))),
    }
}

/// Decodes `bytes` as a `T`, refusing inputs over `max` bytes (checked before
/// any decoding) and trailing bytes.
///
/// # Errors
///
/// [`WireError`] naming the problem.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: u64) -> Result<T, WireError> {
    let len = bytes.len() as u64;
    let max = max.min(MAX_MESSAGE_BYTES);
    if len > max {
        return Err(WireError::TooLarge { got: len, max });
    }
    options(len)
        .deserialize(bytes)
        .map_err(WireError::Malformed)
}

/// A fixed-size byte string: bytes in bincode, lowercase hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> zeroize::Zeroize for Bytes<N> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> fmt::Display for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

struct BytesVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for BytesVisitor<N> {
    type Value = Bytes<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes, or {} lowercase hex characters", 2 * N)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(v)
            .map(Bytes)
            .map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        crate::hexfmt::decode_fixed::<N>(v, crate::hexfmt::Prefix::Forbidden)
            .map(Bytes)
            .map_err(|err| E::custom(format_args!("{err}")))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BytesVisitor::<N>)
        } else {
            deserializer.deserialize_bytes(BytesVisitor::<N>)
        }
    }
}

/// A byte string of any length: a `u64` length and the bytes in bincode,
/// lowercase hex in JSON.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VarBytes(pub Vec<u8>);

impl fmt::Debug for VarBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for VarBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

struct VarBytesVisitor;

impl<'de> Visitor<'de> for VarBytesVisitor {
    type Value = VarBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes, or lowercase hex characters")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(VarBytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(VarBytes(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(E::custom("hex must be lowercase"));
        }
        hex::decode(v)
            .map(VarBytes)
            .map_err(|err| E::custom(format_args!("not hex: {err}")))
    }
}

impl<'de> Deserialize<'de> for VarBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(VarBytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(VarBytesVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_bytes_encode_as_length_and_bytes_or_hex() {
        let value = VarBytes(vec![0xab, 0x01]);
        assert_eq!(
            encode(&value).unwrap(),
            [2, 0, 0, 0, 0, 0, 0, 0, 0xab, 0x01]
        );
        assert_eq!(
            decode::<VarBytes>(&encode(&value).unwrap(), 64).unwrap(),
            value
        );
        assert_eq!(serde_json::to_string(&value).unwrap(), "\"ab01\"");
        assert!(serde_json::from_str::<VarBytes>("\"AB01\"").is_err());
        assert_eq!(serde_json::from_str::<VarBytes>("\"ab01\"").unwrap(), value);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u8,
        key: Bytes<4>,
        items: Vec<Bytes<2>>,
    }

    #[test]
    fn round_trip_limits_and_trailing_bytes() {
        let sample = Sample {
            id: 7,
            key: Bytes([1, 2, 3, 4]),
            items: vec![Bytes([5, 6])],
        };
        let bytes = encode(&sample).unwrap();
        assert_eq!(decode::<Sample>(&bytes, 1024).unwrap(), sample);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<Sample>(&trailing, 1024),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Sample>(&bytes, 3),
            Err(WireError::TooLarge { .. })
        ));
        assert!(decode::<Sample>(&bytes[..bytes.len() - 1], 1024).is_err());
        // A forged length prefix claiming 2^40 items fails without allocating.
        let mut forged = bytes.clone();
        forged[21..29].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<Sample>(&forged, 1024).is_err());
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(json, r#"{"id":7,"key":"01020304","items":["0506"]}"#);
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), sample);
    }
}
