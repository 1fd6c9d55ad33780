//! The EIP-3076 slashing-protection interchange format, version 5.
//!
//! Spec: <https://eips.ethereum.org/EIPS/eip-3076> and its JSON schema
//! (`metadata` with `interchange_format_version` and
//! `genesis_validators_root`; `data[]` with `pubkey`, `signed_blocks`,
//! `signed_attestations`). Numbers are decimal strings, hex is `0x`-prefixed,
//! `signing_root` is optional. As in Lighthouse's `interchange.rs`, unknown
//! fields are refused inside `metadata` and the records (a misspelt
//! `signing_root` must not silently drop a root) and tolerated at the top
//! level, where the EIP leaves room for extensions.
//!
//! Pure: parsing, checking and minifying; no file or database access.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{Epoch, MAX_SLOT_OR_EPOCH, PublicKeyBytes, Root, Slot};

/// The one interchange format version dvkg reads and writes.
pub const INTERCHANGE_FORMAT_VERSION: &str = "5";

/// A whole interchange file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interchange {
    /// Format version and chain.
    pub metadata: InterchangeMetadata,
    /// One record per validator key (a key may appear more than once).
    pub data: Vec<InterchangeData>,
}

/// The `metadata` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeMetadata {
    /// Must be [`INTERCHANGE_FORMAT_VERSION`]; kept as read so that a refusal
    /// can quote it.
    pub interchange_format_version: String,
    /// The chain the history belongs to.
    pub genesis_validators_root: Root,
}

/// One validator's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeData {
    /// The signing key (a validator key, or an operator's share of one).
    pub pubkey: PublicKeyBytes,
    /// Signed block proposals.
    pub signed_blocks: Vec<SignedBlock>,
    /// Signed attestations.
    pub signed_attestations: Vec<SignedAttestation>,
}

/// A signed block proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBlock {
    /// The block's slot.
    #[serde(with = "decimal")]
    pub slot: Slot,
    /// `compute_signing_root(block, domain)`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<Root>,
}

/// A signed attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedAttestation {
    /// `attestation.data.source.epoch`.
    #[serde(with = "decimal")]
    pub source_epoch: Epoch,
    /// `attestation.data.target.epoch`.
    #[serde(with = "decimal")]
    pub target_epoch: Epoch,
    /// `compute_signing_root(attestation, domain)`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<Root>,
}

/// Why an interchange is not for this database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterchangeError {
    /// A format version other than "5".
    #[error(
        "interchange_format_version is {got:?}; dvkg reads version \"{INTERCHANGE_FORMAT_VERSION}\" only"
    )]
    UnsupportedVersion {
        /// The version in the file.
        got: String,
    },
    /// Another chain's history.
    #[error("genesis_validators_root is {got}, not {expected}: the history is for another chain")]
    WrongGenesisRoot {
        /// The root the database or command is for.
        expected: Root,
        /// The root in the file.
        got: Root,
    },
}

impl Interchange {
    /// An interchange with no records.
    pub fn empty(genesis_validators_root: Root) -> Self {
        Self {
            metadata: InterchangeMetadata {
                interchange_format_version: INTERCHANGE_FORMAT_VERSION.to_owned(),
                genesis_validators_root,
            },
            data: Vec::new(),
        }
    }

    /// The history of keys that have never signed anything: one record per
    /// key with empty lists, which EIP-3076 allows and validator clients
    /// import to register the keys (the `slashing-protection.json` a
    /// ceremony writes for its new share keys).
    pub fn for_new_keys(
        genesis_validators_root: Root,
        keys: impl IntoIterator<Item = PublicKeyBytes>,
    ) -> Self {
        let mut out = Self::empty(genesis_validators_root);
        out.data = keys
            .into_iter()
            .map(|pubkey| InterchangeData {
                pubkey,
                signed_blocks: Vec::new(),
                signed_attestations: Vec::new(),
            })
            .collect();
        out
    }

    /// Parses an interchange file's text.
    ///
    /// # Errors
    ///
    /// The JSON error (serde's message names the field, line and column).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The file's text: pretty JSON and a final newline.
    ///
    /// # Errors
    ///
    /// Only if serialization fails, which these types cannot make happen.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Checks the version and the chain, before anything is imported.
    ///
    /// # Errors
    ///
    /// [`InterchangeError`] naming what differs.
    pub fn check_for(&self, genesis_validators_root: Root) -> Result<(), InterchangeError> {
        if self.metadata.interchange_format_version != INTERCHANGE_FORMAT_VERSION {
            return Err(InterchangeError::UnsupportedVersion {
                got: self.metadata.interchange_format_version.clone(),
            });
        }
        if self.metadata.genesis_validators_root != genesis_validators_root {
            return Err(InterchangeError::WrongGenesisRoot {
                expected: genesis_validators_root,
                got: self.metadata.genesis_validators_root,
            });
        }
        Ok(())
    }

    /// The same history reduced to what a minimal database keeps: per key,
    /// one block at the highest slot and one attestation with the highest
    /// source and the highest target (each taken separately), with no
    /// signing roots. Records of one key are merged; keys keep the order in
    /// which they first appear.
    ///
    /// A minimal database refuses everything the full history refuses (see
    /// `ceremony-specs/slashing.md`, "Why the minified history is safe"),
    /// which is why EIP-3076 allows it and Lighthouse imports this way.
    pub fn minify(&self) -> Self {
        let mut order: Vec<PublicKeyBytes> = Vec::new();
        let mut seen: HashMap<PublicKeyBytes, Watermarks> = HashMap::new();
        for record in &self.data {
            let marks = seen.entry(record.pubkey).or_insert_with(|| {
                order.push(record.pubkey);
                Watermarks::default()
            });
            marks.add_record(record);
        }
        let data = order
            .into_iter()
            .map(|pubkey| {
                seen.get(&pubkey)
                    .copied()
                    .unwrap_or_default()
                    .into_record(pubkey)
            })
            .collect();
        Self {
            metadata: self.metadata.clone(),
            data,
        }
    }
}

/// The highest slot, source and target seen for one key: all a minimal
/// history keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// The highest signed slot, if any block was signed.
    pub max_slot: Option<Slot>,
    /// The highest source and the highest target (each its own maximum),
    /// if any attestation was signed.
    pub max_source_target: Option<(Epoch, Epoch)>,
}

impl Watermarks {
    /// Raises the marks to cover a signed block.
    pub fn add_block(&mut self, slot: Slot) {
        self.max_slot = Some(self.max_slot.map_or(slot, |s| s.max(slot)));
    }

    /// Raises the marks to cover a signed attestation.
    pub fn add_attestation(&mut self, source: Epoch, target: Epoch) {
        self.max_source_target = Some(match self.max_source_target {
            Some((s, t)) => (s.max(source), t.max(target)),
            None => (source, target),
        });
    }

    /// Raises the marks to cover every message of a record.
    pub fn add_record(&mut self, record: &InterchangeData) {
        for block in &record.signed_blocks {
            self.add_block(block.slot);
        }
        for att in &record.signed_attestations {
            self.add_attestation(att.source_epoch, att.target_epoch);
        }
    }

    /// Raises the marks to cover `other`.
    pub fn merge(&mut self, other: &Self) {
        if let Some(slot) = other.max_slot {
            self.add_block(slot);
        }
        if let Some((source, target)) = other.max_source_target {
            self.add_attestation(source, target);
        }
    }

    /// The minified record for `pubkey`: at most one block and one
    /// attestation, without signing roots.
    pub fn into_record(self, pubkey: PublicKeyBytes) -> InterchangeData {
        InterchangeData {
            pubkey,
            signed_blocks: self
                .max_slot
                .map(|slot| SignedBlock {
                    slot,
                    signing_root: None,
                })
                .into_iter()
                .collect(),
            signed_attestations: self
                .max_source_target
                .map(|(source_epoch, target_epoch)| SignedAttestation {
                    source_epoch,
                    target_epoch,
                    signing_root: None,
                })
                .into_iter()
                .collect(),
        }
    }
}

/// Slots and epochs as EIP-3076 writes them: decimal strings ("81952"),
/// never JSON numbers, digits only, at most [`MAX_SLOT_OR_EPOCH`].
mod decimal {
    use super::*;

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    struct DecimalVisitor;

    impl Visitor<'_> for DecimalVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "a decimal string such as \"81952\", at most {MAX_SLOT_OR_EPOCH}"
            )
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::invalid_value(de::Unexpected::Str(v), &self));
            }
            match v.parse::<u64>() {
                Ok(n) if n <= MAX_SLOT_OR_EPOCH => Ok(n),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(DecimalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKeyBytes {
        PublicKeyBytes([byte; 48])
    }

    fn sample() -> String {
        format!(
            r#"{{"metadata": {{"interchange_format_version": "5",
                 "genesis_validators_root": "0x{root}"}},
               "data": [{{"pubkey": "0x{pk}",
                 "signed_blocks": [{{"slot": "81952", "signing_root": "0x{sr}"}}, {{"slot": "81951"}}],
                 "signed_attestations": [{{"source_epoch": "2290", "target_epoch": "3007"}}]}}]}}"#,
            root = "04".repeat(32),
            pk = "aa".repeat(48),
            sr = "01".repeat(32)
        )
    }

    #[test]
    fn parses_the_eip_example_and_writes_decimal_strings() {
        let parsed = Interchange::from_json(&sample()).unwrap();
        assert_eq!(parsed.data.len(), 1);
        let record = &parsed.data[0];
        assert_eq!(record.signed_blocks[0].slot, 81952);
        assert_eq!(record.signed_blocks[1].signing_root, None);
        assert_eq!(record.signed_attestations[0].target_epoch, 3007);
        let text = parsed.to_json().unwrap();
        assert!(text.contains("\"slot\": \"81952\""), "{text}");
        assert!(text.contains("\"interchange_format_version\": \"5\""));
        assert!(!text.contains("\"signing_root\": null"));
        assert_eq!(Interchange::from_json(&text).unwrap(), parsed);
    }

    #[test]
    fn refuses_numbers_signs_unknown_fields_and_huge_values() {
        let base = sample();
        for (from, to) in [
            ("\"slot\": \"81952\"", "\"slot\": 81952"),
            ("\"slot\": \"81952\"", "\"slot\": \"-1\""),
            ("\"slot\": \"81952\"", "\"slot\": \" 1\""),
            ("\"slot\": \"81952\"", "\"slot\": \"\""),
            ("\"slot\": \"81952\"", "\"slot\": \"9223372036854775808\""),
            (
                "\"slot\": \"81951\"",
                "\"slot\": \"81951\", \"signingroot\": \"0x00\"",
            ),
            (
                "\"genesis_validators_root\"",
                "\"extra\": 1, \"genesis_validators_root\"",
            ),
        ] {
            let text = base.replacen(from, to, 1);
            assert_ne!(text, base);
            assert!(Interchange::from_json(&text).is_err(), "accepted {to}");
        }
        // At the top level an extension field is tolerated.
        let extended = base.replacen("{\"metadata\"", "{\"x-note\": 1, \"metadata\"", 1);
        assert!(Interchange::from_json(&extended).is_ok());
    }

    #[test]
    fn check_for_refuses_other_versions_and_chains() {
        let mut parsed = Interchange::from_json(&sample()).unwrap();
        let root = Root([4; 32]);
        assert_eq!(parsed.check_for(root), Ok(()));
        assert!(matches!(
            parsed.check_for(Root([5; 32])),
            Err(InterchangeError::WrongGenesisRoot { .. })
        ));
        parsed.metadata.interchange_format_version = "4".into();
        assert_eq!(
            parsed.check_for(root),
            Err(InterchangeError::UnsupportedVersion { got: "4".into() })
        );
    }

    #[test]
    fn minify_keeps_the_maxima_each_taken_separately() {
        let att = |s, t| SignedAttestation {
            source_epoch: s,
            target_epoch: t,
            signing_root: Some(Root([9; 32])),
        };
        let block = |slot| SignedBlock {
            slot,
            signing_root: None,
        };
        let interchange = Interchange {
            metadata: Interchange::empty(Root([0; 32])).metadata,
            data: vec![
                InterchangeData {
                    pubkey: key(1),
                    signed_blocks: vec![block(7), block(3)],
                    signed_attestations: vec![att(5, 2), att(1, 9)],
                },
                InterchangeData {
                    pubkey: key(2),
                    signed_blocks: vec![],
                    signed_attestations: vec![],
                },
                InterchangeData {
                    pubkey: key(1),
                    signed_blocks: vec![block(4)],
                    signed_attestations: vec![att(6, 8)],
                },
            ],
        };
        let min = interchange.minify();
        assert_eq!(min.data.len(), 2);
        assert_eq!(min.data[0].pubkey, key(1));
        assert_eq!(min.data[0].signed_blocks, vec![block(7)]);
        assert_eq!(
            min.data[0].signed_attestations,
            vec![SignedAttestation {
                source_epoch: 6,
                target_epoch: 9,
                signing_root: None
            }]
        );
        assert!(min.data[1].signed_blocks.is_empty());
        assert!(min.data[1].signed_attestations.is_empty());
        assert_eq!(min.minify(), min);

        let fresh = Interchange::for_new_keys(Root([0; 32]), [key(1), key(2)]);
        let text = fresh.to_json().unwrap();
        assert!(text.contains("\"signed_blocks\": []"), "{text}");
        assert_eq!(Interchange::from_json(&text).unwrap().data.len(), 2);
    }
}
