//! Slashing protection: an EIP-3076 database, interchange files, and the
//! merge of a cluster's histories.
//!
//! Spec: `ceremony-specs/slashing.md`, which cites EIP-3076
//! (<https://eips.ethereum.org/EIPS/eip-3076>) and the behaviour of
//! Lighthouse's `validator_client/slashing_protection`, whose "minimal"
//! semantics this module follows.
//!
//! The module is split by concern:
//!
//! - [`interchange`]: the EIP-3076 version 5 JSON types and minification;
//!   pure, no I/O.
//! - [`merge`]: a cluster's histories (keyed by share or validator keys)
//!   turned into one minified history keyed by one operator's shares or by
//!   the validator keys, through a [`merge::KeyMap`]; pure, no I/O.
//! - [`db`]: the SQLite database: check-and-record of blocks and
//!   attestations in one exclusive transaction each, atomic import, export.
//! - [`file`]: reading interchange files and writing them without ever
//!   replacing an existing file.
//!
//! - [`sync`]: `dvkg slashing serve` and `sync` over the lock's pinned QUIC
//!   identities: each peer sends its signed export, the syncing operator
//!   verifies it, maps it through the lock's [`merge::KeyMap`] and imports
//!   the merge of them all.

pub mod db;
pub mod file;
pub mod interchange;
pub mod merge;
pub mod sync;

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::hexfmt::{self, HexError, Prefix};

/// A slot number.
pub type Slot = u64;
/// An epoch number.
pub type Epoch = u64;

/// The largest slot or epoch dvkg stores: SQLite integers are signed 64-bit,
/// and no real chain comes near 2^63 (that many 12-second slots outlast the
/// sun), so a larger value is a malformed input, refused on the way in.
pub const MAX_SLOT_OR_EPOCH: u64 = i64::MAX as u64;

/// A 48-byte compressed BLS public key, as bytes: EIP-3076 names validators
/// by these bytes, and slashing protection never needs the curve point
/// (Lighthouse's `PublicKeyBytes` likewise). Written `0x` + 96 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKeyBytes(pub [u8; 48]);

/// A 32-byte root (`genesis_validators_root`, a signing root), written
/// `0x` + 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Root(pub [u8; 32]);

macro_rules! hex_newtype {
    ($name:ident, $len:expr, $what:expr) => {
        impl $name {
            /// The short form used in messages: `0x` and the first and last
            /// four bytes.
            pub fn short(&self) -> String {
                let hex = hex::encode(self.0);
                let (head, tail) = (
                    hex.get(..8).unwrap_or(""),
                    hex.get(hex.len() - 8..).unwrap_or(""),
                );
                format!("0x{head}…{tail}")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = HexError;

            /// Parses `0x` and exactly the right number of hex digits.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                hexfmt::decode_fixed::<$len>(text, Prefix::Required).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct HexVisitor;
                impl Visitor<'_> for HexVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} as 0x and {} hex digits", $what, 2 * $len)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                        v.parse()
                            .map_err(|err| E::custom(format_args!("{} {v:?}: {err}", $what)))
                    }
                }
                deserializer.deserialize_str(HexVisitor)
            }
        }
    };
}

hex_newtype!(PublicKeyBytes, 48, "public key");
hex_newtype!(Root, 32, "root");

/// The signing root of a signed message, or none.
///
/// EIP-3076 makes `signing_root` optional, and Lighthouse stores an absent
/// one as all zeros. Either way it says "unknown message": it never equals
/// another signing root, another null one included, so a message at an
/// already-signed slot or target is refused unless both roots are known and
/// equal. All-zero bytes are therefore stored and compared as null.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SigningRoot(Option<[u8; 32]>);

impl SigningRoot {
    /// The null signing root.
    pub const NULL: Self = Self(None);

    /// A root from bytes; all zeros is the null root.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        if bytes == [0; 32] {
            Self(None)
        } else {
            Self(Some(bytes))
        }
    }

    /// The known root's bytes, `None` when null.
    pub fn bytes(&self) -> Option<[u8; 32]> {
        self.0
    }

    /// Whether this is the null root.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// True only when both roots are known and equal: the one case in which
    /// re-signing at a recorded slot or target is the same message again.
    pub fn matches(&self, other: &Self) -> bool {
        matches!((self.0, other.0), (Some(a), Some(b)) if a == b)
    }
}

impl From<Option<Root>> for SigningRoot {
    fn from(root: Option<Root>) -> Self {
        root.map_or(Self::NULL, |r| Self::from_bytes(r.0))
    }
}

impl From<SigningRoot> for Option<Root> {
    fn from(root: SigningRoot) -> Self {
        root.0.map(Root)
    }
}

impl fmt::Display for SigningRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(bytes) => write!(f, "{}", Root(bytes).short()),
            None => f.write_str("none"),
        }
    }
}

impl fmt::Debug for SigningRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(bytes) => write!(f, "{}", Root(bytes)),
            None => f.write_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_or_zero_signing_root_never_matches() {
        let zero = SigningRoot::from_bytes([0; 32]);
        let one = SigningRoot::from_bytes([1; 32]);
        assert!(zero.is_null());
        assert!(!zero.matches(&zero));
        assert!(!SigningRoot::NULL.matches(&SigningRoot::NULL));
        assert!(!one.matches(&zero));
        assert!(!zero.matches(&one));
        assert!(one.matches(&SigningRoot::from_bytes([1; 32])));
        assert!(!one.matches(&SigningRoot::from_bytes([2; 32])));
    }

    #[test]
    fn hex_forms_are_strict() {
        let key = format!("0x{}", "ab".repeat(48));
        let parsed: PublicKeyBytes = key.parse().unwrap();
        assert_eq!(parsed.to_string(), key);
        assert_eq!(parsed.short(), "0xabababab…abababab");
        assert!("ab".repeat(48).parse::<PublicKeyBytes>().is_err());
        assert!(
            format!("0x{}", "ab".repeat(47))
                .parse::<PublicKeyBytes>()
                .is_err()
        );
        let root: Root = format!("0x{}", "0F".repeat(32)).parse().unwrap();
        assert_eq!(root.0, [0x0f; 32]);
        let json: Root = serde_json::from_str(&format!("\"0x{}\"", "01".repeat(32))).unwrap();
        assert_eq!(json.0, [1; 32]);
        let err = serde_json::from_str::<Root>("\"0x12\"").unwrap_err();
        assert!(
            err.to_string().contains("expected 64 hex characters"),
            "{err}"
        );
    }
}
