//! A split's inputs: the existing validator keys, as EIP-2335 keystores the
//! deposit CLIs, charon and the validator clients export.
//!
//! `dvkg definition split` reads only the keystores' `pubkey` fields (no
//! password is needed to make the definition); the dealer's `dvkg ceremony
//! --keystores DIR` decrypts them into the secrets it deals. Keystores are
//! matched to the definition's validators by public key, never by file
//! order, and every mismatch (a keystore whose key is not in the
//! definition, a validator with no keystore, two keystores of one key, a
//! wrong password) is refused before any connection.
//!
//! Spec: `ceremony-specs/formats.md` §7.7.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::crypto::Scalar;
use crate::dkg::KnownSecrets;
use crate::eth::keystore::{Keystore, KeystoreDecryptor, KeystoreError, Password};
use crate::store;
use crate::wire::Bytes;

/// The largest keystore file read.
const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;

/// A keystore found in a directory.
#[derive(Debug, Clone)]
pub struct FoundKeystore {
    /// Its file.
    pub path: PathBuf,
    /// The keystore.
    pub keystore: Keystore,
}

impl FoundKeystore {
    /// Its public key, compressed.
    pub fn pubkey(&self) -> Bytes<48> {
        Bytes(self.keystore.pubkey().to_bytes())
    }
}

/// Why a split's keystores cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitInputError {
    /// The directory cannot be listed.
    #[error("cannot read the keystore directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: store::StoreError,
    },
    /// A file that looks like a keystore does not parse as one.
    #[error("{path} is not a valid EIP-2335 keystore: {source}")]
    Keystore {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeystoreError,
    },
    /// No keystore in the directory.
    #[error("{path} holds no EIP-2335 keystore (*.json with a crypto object)")]
    Empty {
        /// The directory.
        path: PathBuf,
    },
    /// Two keystores of one key.
    #[error("{first} and {second} hold the same validator key 0x{pubkey}")]
    Duplicate {
        /// The first file.
        first: PathBuf,
        /// The second.
        second: PathBuf,
        /// The key, hex.
        pubkey: String,
    },
    /// A keystore whose key the definition does not split.
    #[error(
        "{path} holds validator key 0x{pubkey}, which is not one of the definition's validator_keys"
    )]
    NotInDefinition {
        /// The file.
        path: PathBuf,
        /// The key, hex.
        pubkey: String,
    },
    /// A validator of the definition with no keystore.
    #[error("no keystore in {dir} holds validator {validator}'s key 0x{pubkey}")]
    Missing {
        /// The directory.
        dir: PathBuf,
        /// The validator (0-based).
        validator: usize,
        /// The key, hex.
        pubkey: String,
    },
    /// No password for a keystore.
    #[error("no password for {path}: pass --keystore-password-file, or put it in {txt}")]
    NoPassword {
        /// The keystore.
        path: PathBuf,
        /// The per-keystore password file looked for.
        txt: PathBuf,
    },
    /// A keystore does not decrypt, or decrypts to another key.
    #[error("{path} does not open: {source}")]
    Decrypt {
        /// The file.
        path: PathBuf,
        /// Why (a wrong password, or a key that is not the `pubkey`).
        #[source]
        source: KeystoreError,
    },
}

/// File names in natural order: `keystore-2.json` before `keystore-10.json`.
fn natural_key(name: &str) -> Vec<(String, u128)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut number: Option<u128> = None;
    for c in name.chars() {
        match (c.to_digit(10), number) {
            (Some(d), Some(n)) => number = Some(n.saturating_mul(10).saturating_add(u128::from(d))),
            (Some(d), None) => number = Some(u128::from(d)),
            (None, Some(n)) => {
                out.push((std::mem::take(&mut text), n));
                number = None;
                text.push(c);
            }
            (None, None) => text.push(c),
        }
    }
    out.push((text, number.unwrap_or(0)));
    out
}

/// Every EIP-2335 keystore in `dir` (not its subdirectories), in natural
/// file-name order: each `*.json` file holding a JSON object with a
/// `crypto` member. Other files (deposit data, `*.txt` passwords) are left
/// alone.
///
/// # Errors
///
/// [`SplitInputError`] naming the directory or file: unreadable, a
/// keystore that does not parse, none at all, or two of the same key.
pub fn find_keystores(dir: &Path) -> Result<Vec<FoundKeystore>, SplitInputError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SplitInputError::Directory {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort_by_cached_key(|p| {
        natural_key(
            &p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    });
    let mut found = Vec::new();
    let mut seen: HashMap<[u8; 48], PathBuf> = HashMap::new();
    for path in paths {
        let text = store::read_text(&path, MAX_KEYSTORE_BYTES).map_err(|source| {
            SplitInputError::Read {
                path: path.clone(),
                source,
            }
        })?;
        let looks_like_keystore = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .is_some_and(|v| v.get("crypto").is_some());
        if !looks_like_keystore {
            continue;
        }
        let keystore =
            Keystore::from_json_str(&text).map_err(|source| SplitInputError::Keystore {
                path: path.clone(),
                source,
            })?;
        let key = keystore.pubkey().to_bytes();
        if let Some(first) = seen.get(&key) {
            return Err(SplitInputError::Duplicate {
                first: first.clone(),
                second: path,
                pubkey: hex::encode(key),
            });
        }
        seen.insert(key, path.clone());
        found.push(FoundKeystore { path, keystore });
    }
    if found.is_empty() {
        return Err(SplitInputError::Empty {
            path: dir.to_owned(),
        });
    }
    Ok(found)
}

/// Where the keystore passwords come from.
pub enum Passwords {
    /// One password for every keystore.
    One(Password),
    /// Each keystore's in the `.txt` file of the same name beside it
    /// (`keystore-0.json` → `keystore-0.txt`), as charon and Teku keep them.
    Beside,
}

/// The per-keystore password file of `path`.
pub fn password_file_of(path: &Path) -> PathBuf {
    path.with_extension("txt")
}

/// The dealer's secrets: every validator's secret key, in the definition's
/// validator order, from the keystores in `dir`.
///
/// Keystores are matched to `validator_keys` by public key. The KDFs run in
/// parallel, once per distinct KDF salt and password (a directory written
/// with one shared salt costs one KDF run).
///
/// # Errors
///
/// [`SplitInputError`] naming the file or validator: a keystore whose key
/// the definition does not split, a validator without a keystore, a missing
/// or wrong password, or a keystore that decrypts to another key.
pub fn dealer_secrets(
    dir: &Path,
    passwords: &Passwords,
    validator_keys: &[Bytes<48>],
) -> Result<KnownSecrets, SplitInputError> {
    let found = find_keystores(dir)?;
    let wanted: HashMap<[u8; 48], usize> = validator_keys
        .iter()
        .enumerate()
        .map(|(v, k)| (k.0, v))
        .collect();
    let mut by_validator: BTreeMap<usize, &FoundKeystore> = BTreeMap::new();
    for keystore in &found {
        let key = keystore.pubkey();
        let Some(&v) = wanted.get(&key.0) else {
            return Err(SplitInputError::NotInDefinition {
                path: keystore.path.clone(),
                pubkey: hex::encode(key.0),
            });
        };
        by_validator.insert(v, keystore);
    }
    if let Some((v, key)) = validator_keys
        .iter()
        .enumerate()
        .find(|(v, _)| !by_validator.contains_key(v))
    {
        return Err(SplitInputError::Missing {
            dir: dir.to_owned(),
            validator: v,
            pubkey: hex::encode(key.0),
        });
    }
    // Each keystore's password, read up front so that a missing one is
    // named before any KDF runs.
    let jobs: Vec<(usize, &FoundKeystore, Password)> = by_validator
        .iter()
        .map(|(&v, keystore)| {
            let password = match passwords {
                Passwords::One(password) => password.clone(),
                Passwords::Beside => {
                    let txt = password_file_of(&keystore.path);
                    let text =
                        store::read_secret_text(&txt).map_err(|_| SplitInputError::NoPassword {
                            path: keystore.path.clone(),
                            txt: txt.clone(),
                        })?;
                    Password::new(&text)
                }
            };
            Ok((v, *keystore, password))
        })
        .collect::<Result<_, SplitInputError>>()?;
    // One group per distinct KDF (parameters and salt): its KDF runs once,
    // and the groups run in parallel.
    let mut groups: HashMap<
        &crate::eth::keystore::SaltedKdf,
        Vec<&(usize, &FoundKeystore, Password)>,
    > = HashMap::new();
    for job in &jobs {
        groups.entry(job.1.keystore.kdf()).or_default().push(job);
    }
    let groups: Vec<Vec<&(usize, &FoundKeystore, Password)>> = groups.into_values().collect();
    let opened: Vec<Vec<(usize, Scalar)>> = groups
        .par_iter()
        .map(|group| {
            let mut decryptor = KeystoreDecryptor::new();
            group
                .iter()
                .map(|(v, keystore, password)| {
                    let secret =
                        decryptor
                            .decrypt(&keystore.keystore, password)
                            .map_err(|source| SplitInputError::Decrypt {
                                path: keystore.path.clone(),
                                source,
                            })?;
                    // `decrypt` checked that the secret is the key of the
                    // keystore's pubkey, and so of validator v.
                    let scalar =
                        Scalar::from_bytes_be(secret.expose_secret()).ok_or_else(|| {
                            SplitInputError::Decrypt {
                                path: keystore.path.clone(),
                                source: KeystoreError::InvalidSecretKey {
                                    source: crate::crypto::BlsError::SecretKeyOutOfRange,
                                },
                            }
                        })?;
                    Ok((*v, scalar))
                })
                .collect::<Result<Vec<_>, SplitInputError>>()
        })
        .collect::<Result<_, _>>()?;
    let mut secrets: Vec<(usize, Scalar)> = opened.into_iter().flatten().collect();
    secrets.sort_by_key(|(v, _)| *v);
    Ok(KnownSecrets(secrets.into_iter().map(|(_, s)| s).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_sorts_numbers_as_numbers() {
        let mut names = vec![
            "keystore-10.json",
            "keystore-2.json",
            "keystore-1.json",
            "a.json",
        ];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(
            names,
            [
                "a.json",
                "keystore-1.json",
                "keystore-2.json",
                "keystore-10.json"
            ]
        );
    }
}
