//! Checking the `keyshares.json` of an SSV output directory: it must be the
//! file the lock and the transcript build, byte for byte, and pass every
//! check SSV's own tools make.
//!
//! When the bytes differ, the first field that differs is named, and for
//! `sharesData` the part: the ownership signature, the share public key or
//! the ciphertext of which operator. What no check here can see is whether
//! a ciphertext decrypts to its operator's share: only that operator can
//! (`dvkg verify --keyshares … --ssv-operator-private-key`).

use std::path::Path;

use serde_json::Value;

use super::Checks;
use crate::ceremony::keyshares;
use crate::ceremony::lock::ClusterLock;
use crate::dkg::transcript::Transcript;
use crate::ssv::{self, SharesData};
use crate::store;

/// Adds the checks of `path` for an SSV lock. `transcript` is given when
/// it verified and is the lock's; without it, only SSV's own checks run.
pub fn check(
    checks: &mut Checks,
    path: &Path,
    lock: &ClusterLock,
    transcript: Option<&Transcript>,
) {
    let Some(valid) = lock.definition.validate().ok().and_then(|v| v.ssv) else {
        return;
    };
    let text = match store::read_text(path, store::MAX_INPUT_FILE_BYTES) {
        Ok(text) => text,
        Err(err) => {
            checks.add(
                "keyshares.json: present",
                Err(format!(
                    "{err}; an SSV cluster's outputs include {}",
                    keyshares::KEYSHARES_FILE
                )),
            );
            return;
        }
    };
    if let Some(transcript) = transcript {
        let result = match keyshares::file_text(lock, transcript) {
            Ok(Some(rebuilt)) if rebuilt == text => Ok(format!(
                "byte-identical to the file the lock and transcript build: {} validators, operators {}",
                lock.validators.len(),
                ids(&valid.ids())
            )),
            Ok(Some(rebuilt)) => Err(first_difference(&text, &rebuilt, &valid.ids())),
            Ok(None) => Err("the lock's definition is not an SSV cluster's".to_owned()),
            Err(err) => Err(format!(
                "cannot build it from the lock and transcript: {err}"
            )),
        };
        checks.add("keyshares.json: built from the lock and transcript", result);
    }
    let results = ssv::verify_keyshares(&text, &valid.owner, valid.first_nonce, None);
    let failed: Vec<String> = results
        .iter()
        .filter(|c| !c.ok())
        .map(|c| format!("{}: {}", c.name(), c.detail()))
        .collect();
    checks.add(
        "keyshares.json: passes SSV's checks",
        if failed.is_empty() {
            Ok(format!(
                "{} checks: layout, version {}, ids and keys, share keys, ownership signatures for {} from nonce {}",
                results.len(),
                ssv::KEYSHARES_VERSION,
                valid.owner.to_checksum(),
                valid.first_nonce
            ))
        } else {
            Err(failed.join("; "))
        },
    );
}

fn ids(ids: &[u64]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names the first field where `file` differs from `rebuilt` (both
/// keyshares texts), and the part of `sharesData` that differs.
fn first_difference(file: &str, rebuilt: &str, ids: &[u64]) -> String {
    let Ok(found) = serde_json::from_str::<Value>(file) else {
        return "not JSON".to_owned();
    };
    let Ok(expected) = serde_json::from_str::<Value>(rebuilt) else {
        return "the rebuilt file is not JSON (a bug)".to_owned();
    };
    match difference(&found, &expected, String::new()) {
        Some((path, got, want)) => {
            if path.ends_with("sharesData") {
                let part = shares_data_part(&got, &want, ids);
                format!("{path}: {part}")
            } else {
                format!(
                    "{path} is {}, the lock and transcript give {}",
                    short(&got),
                    short(&want)
                )
            }
        }
        None => "the same values, written differently (formatting or key order)".to_owned(),
    }
}

/// The first differing leaf: its path and both values.
fn difference(found: &Value, expected: &Value, path: String) -> Option<(String, Value, Value)> {
    match (found, expected) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, want) in b {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match a.get(key) {
                    Some(got) => {
                        if let Some(d) = difference(got, want, here) {
                            return Some(d);
                        }
                    }
                    None => return Some((here, Value::Null, want.clone())),
                }
            }
            a.iter()
                .find(|(k, _)| !b.contains_key(*k))
                .map(|(k, extra)| (format!("{path}.{k}"), extra.clone(), Value::Null))
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, want) in b.iter().enumerate() {
                match a.get(i) {
                    Some(got) => {
                        if let Some(d) = difference(got, want, format!("{path}[{i}]")) {
                            return Some(d);
                        }
                    }
                    None => return Some((format!("{path}[{i}]"), Value::Null, want.clone())),
                }
            }
            a.get(b.len())
                .map(|extra| (format!("{path}[{}]", b.len()), extra.clone(), Value::Null))
        }
        _ if found == expected => None,
        _ => Some((path, found.clone(), expected.clone())),
    }
}

/// Which part of two `sharesData` values differs.
fn shares_data_part(got: &Value, want: &Value, ids: &[u64]) -> String {
    let operators = ids.len();
    let who = |slot: usize| {
        format!(
            "operator {} (SSV id {})",
            slot + 1,
            ids.get(slot).copied().unwrap_or_default()
        )
    };
    let (Some(got), Some(want)) = (got.as_str(), want.as_str()) else {
        return "not a string".to_owned();
    };
    let found = match SharesData::from_hex(got, operators) {
        Ok(found) => found,
        Err(err) => return err.to_string(),
    };
    let Ok(expected) = SharesData::from_hex(want, operators) else {
        return "the rebuilt sharesData does not decode (a bug)".to_owned();
    };
    if found.signature_bytes() != expected.signature_bytes() {
        return "the ownership signature is not the lock's".to_owned();
    }
    for (slot, (a, b)) in found
        .share_public_keys()
        .iter()
        .zip(expected.share_public_keys())
        .enumerate()
    {
        if a != b {
            return format!(
                "the share public key of {} is not the lock's public share",
                who(slot)
            );
        }
    }
    for (slot, (a, b)) in found
        .ciphertexts()
        .iter()
        .zip(expected.ciphertexts())
        .enumerate()
    {
        if a != b {
            let moved = expected
                .ciphertexts()
                .iter()
                .position(|c| c == a)
                .map(|other| format!(" (it is the one {} sent)", who(other)))
                .unwrap_or_default();
            return format!(
                "the ciphertext of {} is not the one it sent in its signed round-3 message{moved}",
                who(slot)
            );
        }
    }
    "differs in its hex spelling".to_owned()
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 100 {
        let start: String = text.chars().take(96).collect();
        format!("{start}…")
    } else {
        text
    }
}
