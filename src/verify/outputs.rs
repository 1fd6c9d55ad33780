//! Checking a ceremony's outputs: the transcript against the protocol, the
//! lock against the transcript and its definition, every deposit file
//! against the lock, and optionally one operator's keystores against the
//! lock's public shares.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::deposits::{EntryReport, FileReport};
use super::{Checks, Report, read_json};
use crate::ceremony::lock::{self, ClusterLock};
use crate::ceremony::outputs;
use crate::ceremony::transcript_file;
use crate::dkg::transcript::{self, Transcript, TranscriptError, Verified};
use crate::eth::deposit::{self, DepositEntry, Expectations, FieldProblem};
use crate::eth::keystore::{Keystore, KeystoreDecryptor, Password};
use crate::eth::statements::EthStatements;
use crate::store;

/// Which ceremony outputs to check.
#[derive(Debug, Clone, Default)]
pub struct OutputPaths {
    /// The lock.
    pub lock: Option<PathBuf>,
    /// The transcript.
    pub transcript: Option<PathBuf>,
    /// Deposit files found in the directory.
    pub deposit_files: Vec<PathBuf>,
    /// Keystores to check, with the file of the password that opens them.
    pub keystores: Option<(PathBuf, PathBuf)>,
    /// The confirmation record of an output directory.
    pub confirmation: Option<PathBuf>,
    /// The `keyshares.json` of an output directory (checked when the lock
    /// is an SSV cluster's).
    pub keyshares: Option<PathBuf>,
}

/// Why an output directory cannot be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// The directory cannot be listed.
    #[error("cannot read the output directory {path}")]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It holds no lock.
    #[error("{path} holds no {}", outputs::LOCK_FILE)]
    NoLock {
        /// The directory.
        path: PathBuf,
    },
}

impl OutputPaths {
    /// The outputs found in a ceremony output directory.
    ///
    /// # Errors
    ///
    /// [`DirError`] when the directory is unreadable or holds no lock.
    pub fn in_dir(dir: &Path) -> Result<Self, DirError> {
        let entries = std::fs::read_dir(dir).map_err(|source| DirError::Unreadable {
            path: dir.to_owned(),
            source,
        })?;
        let mut deposit_files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("deposit_data-") && n.ends_with(".json"))
            })
            .collect();
        deposit_files.sort();
        let lock = dir.join(outputs::LOCK_FILE);
        if !lock.exists() {
            return Err(DirError::NoLock {
                path: dir.to_owned(),
            });
        }
        Ok(Self {
            lock: Some(lock),
            transcript: Some(transcript_file::in_dir(dir)),
            deposit_files,
            keystores: None,
            confirmation: Some(dir.join(outputs::CONFIRMATION_FILE)),
            keyshares: Some(dir.join(crate::ceremony::keyshares::KEYSHARES_FILE)),
        })
    }
}

/// The transcript's text, when the caller already read it.
#[derive(Debug, Default)]
pub struct Preread {
    /// The transcript's text, for the JSON view (a binary transcript is
    /// decoded from its file as it is read).
    pub transcript: Option<String>,
}

/// Checks a ceremony output directory with no secret.
///
/// # Errors
///
/// [`DirError`] when the directory cannot be read at all.
pub fn check_dir(dir: &Path, expect: &Expectations) -> Result<Report, DirError> {
    let paths = OutputPaths::in_dir(dir)?;
    Ok(check_outputs(&paths, expect, &Preread::default()))
}

/// Whether `keyshares` is absent because its directory is a split
/// dealer's: the dealer writes the lock and transcript only, so its
/// directory holds no share bundle, no keystores and no `keyshares.json`.
/// An operator's directory that lost its `keyshares.json` still has its
/// shares, and fails the check.
fn is_split_dealer_dir(keyshares: &Path, lock: &ClusterLock) -> bool {
    if lock.kind != crate::dkg::plan::CeremonyKind::Split || keyshares.exists() {
        return false;
    }
    let Some(dir) = keyshares.parent() else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    !entries.filter_map(Result::ok).any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name == outputs::KEYSTORE_DIR
            || (name.starts_with("shares-operator-") && name.ends_with(".age"))
    })
}

/// Reads a lock, refusing another format version by name (before its
/// fields, which another version names differently). The version is read
/// on its own, not through a JSON tree of the whole lock (five times its
/// text).
fn read_lock(path: &Path) -> Result<ClusterLock, String> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: Option<serde_json::Value>,
    }
    // Parsed from the file, twice (the version, then the lock), so that its
    // text is never held beside the lock.
    let open = || {
        store::open_input(path, store::MAX_INPUT_FILE_BYTES)
            .map_err(|e| format!("cannot read cluster lock {}: {e}", path.display()))
    };
    let invalid = |e: serde_json::Error| {
        format!(
            "{} is not a valid cluster lock: {}",
            path.display(),
            store::describe_json_error(&e)
        )
    };
    let version: VersionOnly = serde_json::from_reader(open()?).map_err(invalid)?;
    if version.version.as_ref().and_then(serde_json::Value::as_u64)
        != Some(u64::from(lock::LOCK_VERSION))
    {
        return Err(format!(
            "{}: unsupported cluster lock version {}: this dvkg reads version {}",
            path.display(),
            version
                .version
                .map_or_else(|| "(none)".to_owned(), |v| v.to_string()),
            lock::LOCK_VERSION
        ));
    }
    serde_json::from_reader(open()?).map_err(invalid)
}

/// Checks the given outputs; every problem becomes a failed check.
pub fn check_outputs(paths: &OutputPaths, expect: &Expectations, preread: &Preread) -> Report {
    let mut checks = Checks::default();
    let mut rng = rand::rngs::OsRng;
    // Read and verified as one: a binary transcript as a stream, keeping
    // none of its deals and partial signatures (what `transcript` is then
    // without: `transcript_file::Checked`).
    let checked: Option<(Transcript, Result<Verified, TranscriptError>)> =
        paths.transcript.as_ref().and_then(|path| {
            let checked = match preread.transcript.as_deref() {
                Some(text) => transcript_file::from_json(path, text).map(|t| {
                    let verdict = transcript::verify_transcript(&t, &EthStatements, &mut rng);
                    (t, verdict)
                }),
                None => transcript_file::verify_file(path, &EthStatements, &mut rng)
                    .map(|c| (c.transcript, c.verdict)),
            }
            .map_err(|e| e.to_string());
            let ok = checked
                .as_ref()
                .map(|_| format!("{} parsed", path.display()))
                .map_err(Clone::clone);
            checks.add("transcript: readable", ok);
            checked.ok()
        });
    let (transcript, verified): (Option<Transcript>, Option<Verified>) = match checked {
        Some((t, result)) => {
            let params = t.context.params();
            let detail = result.as_ref().map(|v| {
                format!(
                    "{} operators (threshold {}), {} validators: every signature, echo, proof, share, partial and combined signature checks out; session {}",
                    params.operators(),
                    params.threshold(),
                    v.group_keys.len(),
                    hex::encode(v.session)
                )
            });
            checks.add(
                "transcript: verifies against the protocol",
                detail.map_err(|e| e.to_string()),
            );
            (Some(t), result.ok())
        }
        None => (None, None),
    };
    let lock: Option<ClusterLock> = paths.lock.as_ref().and_then(|path| {
        let parsed = read_lock(path);
        checks.add(
            "lock: readable",
            parsed
                .as_ref()
                .map(|_| format!("{} parsed", path.display()))
                .map_err(Clone::clone),
        );
        parsed.ok()
    });
    let mut lock_entries: Vec<DepositEntry> = Vec::new();
    let mut lock_verified = false;
    // The transcript, once it verified and is the lock's.
    let mut lock_transcript: Option<&Transcript> = None;
    if let Some(lock) = &lock {
        let definition = &lock.definition;
        let valid = definition.validate();
        checks.add(
            "lock: definition is valid",
            valid
                .as_ref()
                .map(|v| format!("definition hash {}", hex::encode(v.definition_hash.0)))
                .map_err(|e| e.to_string()),
        );
        checks.add(
            "lock: lock hash",
            if lock.compute_hash() == lock.lock_hash.0 {
                Ok(hex::encode(lock.lock_hash.0))
            } else {
                Err(format!(
                    "recorded {}, recomputed {}",
                    hex::encode(lock.lock_hash.0),
                    hex::encode(lock.compute_hash())
                ))
            },
        );
        lock_entries = lock.deposit_entries();
        if let (Some(transcript), Some(verified)) = (&transcript, &verified) {
            checks.add(
                "lock: the transcript ran this definition",
                match definition.to_context() {
                    Ok(c) if c == transcript.context => {
                        Ok("plan, roster, definition hash and statements match".into())
                    }
                    Ok(_) => {
                        Err("the transcript's context differs from the lock's definition".into())
                    }
                    Err(e) => Err(e.to_string()),
                },
            );
            let same = lock.transcript_hash.0 == verified.hash;
            if same {
                lock_transcript = Some(transcript);
            }
            checks.add(
                "lock: transcript hash",
                if same {
                    Ok(hex::encode(lock.transcript_hash.0))
                } else {
                    Err("the lock names another transcript".into())
                },
            );
            checks.add(
                "lock: every operator signed the transcript",
                if lock.operator_signatures == transcript.finals {
                    Ok(format!(
                        "{} finalize signatures, as in the transcript",
                        lock.operator_signatures.len()
                    ))
                } else {
                    Err("the lock's operator signatures are not the transcript's".into())
                },
            );
            let rebuilt = ClusterLock::with_transcript_hash(definition, transcript, verified.hash);
            checks.add(
                "lock: validators, public shares and deposit data derive from the transcript",
                match rebuilt {
                    Ok(rebuilt)
                        if rebuilt.validators == lock.validators
                            && rebuilt.share_indices == lock.share_indices
                            && rebuilt.kind == lock.kind
                            && rebuilt.ssv == lock.ssv
                            && rebuilt.previous_lock_hash == lock.previous_lock_hash =>
                    {
                        Ok(format!("{} validators", lock.validators.len()))
                    }
                    Ok(_) => {
                        Err("the lock's validators differ from those the transcript derives".into())
                    }
                    Err(e) => Err(e.to_string()),
                },
            );
        }
        // Every deposit in the lock verifies on its own.
        let mut expect = expect.clone();
        if let Ok(valid) = &valid {
            expect.network.get_or_insert(valid.network.clone());
            if expect.withdrawal_address.is_none() {
                expect.withdrawal_address = valid.credentials.and_then(|c| c.address());
            }
        }
        let split = lock.kind == crate::dkg::plan::CeremonyKind::Split;
        if split {
            checks.add(
                "split: the keys dealt are the definition's validator keys",
                check_split(lock, verified.as_ref().and(transcript.as_ref())),
            );
        }
        if lock.kind == crate::dkg::plan::CeremonyKind::Reshare {
            check_reshare(
                &mut checks,
                lock,
                verified.as_ref().and(transcript.as_ref()),
            );
        }
        let failures: Vec<String> = deposit::verify_entries(&lock_entries, &expect, &mut rng)
            .into_iter()
            .enumerate()
            .flat_map(|(i, problems)| {
                problems
                    .into_iter()
                    .map(move |p| format!("deposit {i}: {p}"))
            })
            .collect();
        lock_verified = failures.is_empty() && !lock_entries.is_empty();
        checks.add(
            "lock: every deposit verifies",
            if split && lock_entries.is_empty() {
                Ok("a split: its validators are live, and deposit nothing new".into())
            } else if split {
                Err("a split's lock holds deposit data".into())
            } else if failures.is_empty() && !lock_entries.is_empty() {
                Ok(format!(
                    "{} deposits: roots, signatures, network, credentials, amounts",
                    lock_entries.len()
                ))
            } else if lock_entries.is_empty() {
                Err("the lock holds no deposit data".into())
            } else {
                Err(failures.join("; "))
            },
        );
    }
    // Each of the lock's deposits, by value, to its position; which of them
    // the files hold (flags, not a set of the files' entries: 43 MB at
    // 65,536).
    let lock_set: HashMap<&DepositEntry, usize> = lock_entries
        .iter()
        .enumerate()
        .map(|(position, entry)| (entry, position))
        .collect();
    let mut in_files = vec![false; lock_entries.len()];
    let mut deposit_reports = Vec::new();
    for path in &paths.deposit_files {
        let checked = check_deposit_file(
            path,
            lock.is_some().then_some(lock_entries.as_slice()),
            &lock_set,
            lock_verified,
            expect,
            &mut rng,
        );
        match checked {
            Ok((file, decoded)) => {
                let mut line = file.check();
                if line.ok && lock_verified {
                    line.detail = format!(
                        "{} deposits, all in the lock, all valid",
                        file.entries.len()
                    );
                }
                checks.0.push(line);
                for entry in &decoded {
                    if let Some(found) = lock_set.get(entry).and_then(|&p| in_files.get_mut(p)) {
                        *found = true;
                    }
                }
                deposit_reports.extend(file.entries);
            }
            Err(problem) => {
                checks.add(format!("deposit data {}", path.display()), Err(problem));
            }
        }
    }
    if lock.is_some() && !paths.deposit_files.is_empty() {
        let missing = lock_entries
            .iter()
            .filter(|e| {
                !lock_set
                    .get(e)
                    .is_some_and(|&p| in_files.get(p).copied().unwrap_or(false))
            })
            .count();
        checks.add(
            "deposit data files hold every deposit of the lock",
            if missing == 0 {
                Ok(format!(
                    "{} deposits in {} file(s)",
                    lock_entries.len(),
                    paths.deposit_files.len()
                ))
            } else {
                Err(format!(
                    "{missing} deposits of the lock are in no deposit data file"
                ))
            },
        );
    }
    if lock
        .as_ref()
        .is_some_and(|l| l.kind == crate::dkg::plan::CeremonyKind::Dkg)
        && paths.lock.as_ref().and_then(|p| p.parent()).is_some()
        && paths.deposit_files.is_empty()
        && paths.transcript.is_some()
    {
        checks.add(
            "deposit data files",
            Err("no deposit_data-*.json next to the lock".into()),
        );
    }
    if let (Some(path), Some(lock)) = (&paths.keyshares, &lock) {
        if is_split_dealer_dir(path, lock) {
            checks.add(
                "keyshares.json: none at a split's dealer",
                Ok("the dealer writes the lock and transcript only, no share; the operators' directories hold keyshares.json".to_owned()),
            );
        } else {
            super::keyshares::check(&mut checks, path, lock, lock_transcript);
        }
    }
    if let Some(path) = &paths.confirmation {
        checks.add(
            "confirmation: every operator confirmed its outputs",
            check_confirmation(path, lock.as_ref()),
        );
    }
    if let (Some((dir, password_file)), Some(lock)) = (&paths.keystores, &lock) {
        let result = store::read_secret_text(password_file)
            .map_err(|e| format!("--password-file: {e}"))
            .and_then(|text| check_keystores(dir, &Password::new(&text), lock));
        checks.add(format!("keystores in {}", dir.display()), result);
    }
    checks.into_report_with(deposit_reports)
}

/// Checks one deposit data file of a ceremony's outputs: every entry
/// decodes, is one of the lock's deposits (when there is a lock; an entry
/// that is not is compared with the lock's deposit of the same public key,
/// naming each field that differs) and passes §4.4 (only the entries not
/// already verified in the lock, when the lock's verified). Returns the
/// file's report, which names each failing entry's index, public key and
/// fields, and its decoded entries.
fn check_deposit_file(
    path: &Path,
    lock: Option<&[DepositEntry]>,
    lock_set: &HashMap<&DepositEntry, usize>,
    lock_verified: bool,
    expect: &Expectations,
    rng: &mut rand::rngs::OsRng,
) -> Result<(FileReport, Vec<DepositEntry>), String> {
    let shown = path.display().to_string();
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|e| e.to_string())?;
    let parsed = deposit::parse_file(&text).map_err(|e| e.to_string())?;
    // Not held beside the decoded entries (46 MB at 65,536).
    drop(text);
    let mut reports: Vec<Option<EntryReport>> = Vec::with_capacity(parsed.len());
    let mut decoded: Vec<(usize, DepositEntry, Vec<FieldProblem>)> = Vec::new();
    for (index, parse) in parsed.into_iter().enumerate() {
        match parse {
            Ok(entry) => {
                let problems = match lock {
                    Some(lock) if !lock_set.contains_key(&entry) => {
                        differences_from_lock(&entry, lock)
                    }
                    _ => Vec::new(),
                };
                decoded.push((index, entry, problems));
                reports.push(None);
            }
            Err(problems) => reports.push(Some(EntryReport {
                file: shown.clone(),
                index,
                pubkey: None,
                network: None,
                amount_gwei: None,
                ok: false,
                problems,
            })),
        }
    }
    // Entries equal to the lock's were verified with it; the others are
    // verified here, so that a tampered entry also says which of its own
    // checks fail (a signature that no longer covers the amount).
    let unverified: Vec<usize> = (0..decoded.len())
        .filter(|&i| {
            !lock_verified
                || decoded
                    .get(i)
                    .is_some_and(|(_, entry, _)| !lock_set.contains_key(entry))
        })
        .collect();
    let to_verify: Vec<DepositEntry> = unverified
        .iter()
        .filter_map(|&i| decoded.get(i).map(|(_, entry, _)| entry.clone()))
        .collect();
    for (&i, problems) in unverified
        .iter()
        .zip(deposit::verify_entries(&to_verify, expect, rng))
    {
        if let Some((_, _, found)) = decoded.get_mut(i) {
            found.extend(problems);
        }
    }
    let entries: Vec<DepositEntry> = decoded.iter().map(|(_, e, _)| e.clone()).collect();
    let file_problems = deposit::verify_file(&entries);
    for (index, entry, problems) in decoded {
        if let Some(slot) = reports.get_mut(index) {
            *slot = Some(EntryReport::decoded(&shown, index, &entry, problems));
        }
    }
    Ok((
        FileReport {
            file: shown,
            problems: file_problems,
            entries: reports.into_iter().flatten().collect(),
        },
        entries,
    ))
}

/// How a deposit entry that is not in the lock differs from the lock's
/// deposit of the same public key (the closest one, when the lock holds
/// several for it): one problem per field, or one for a public key that is
/// not a validator of the lock.
fn differences_from_lock(entry: &DepositEntry, lock: &[DepositEntry]) -> Vec<FieldProblem> {
    let differences = |theirs: &DepositEntry| -> Vec<FieldProblem> {
        let mut found = Vec::new();
        let mut differ = |field: &str, here: String, there: String| {
            if here != there {
                found.push(FieldProblem {
                    field: field.to_owned(),
                    message: format!("is {here} here, {there} in the lock's deposit for this key"),
                });
            }
        };
        differ(
            "withdrawal_credentials",
            hex::encode(entry.withdrawal_credentials),
            hex::encode(theirs.withdrawal_credentials),
        );
        differ(
            "amount",
            entry.amount.0.to_string(),
            theirs.amount.0.to_string(),
        );
        differ(
            "signature",
            deposit::short_hex(&entry.signature),
            deposit::short_hex(&theirs.signature),
        );
        differ(
            "deposit_message_root",
            hex::encode(entry.deposit_message_root),
            hex::encode(theirs.deposit_message_root),
        );
        differ(
            "deposit_data_root",
            hex::encode(entry.deposit_data_root),
            hex::encode(theirs.deposit_data_root),
        );
        differ(
            "fork_version",
            hex::encode(entry.fork_version),
            hex::encode(theirs.fork_version),
        );
        differ(
            "network_name",
            entry.network_name.clone(),
            theirs.network_name.clone(),
        );
        differ(
            "deposit_cli_version",
            entry.deposit_cli_version.clone(),
            theirs.deposit_cli_version.clone(),
        );
        found
    };
    lock.iter()
        .filter(|theirs| theirs.pubkey == entry.pubkey)
        .map(differences)
        .min_by_key(Vec::len)
        .unwrap_or_else(|| {
            vec![FieldProblem {
                field: "pubkey".to_owned(),
                message: "is not a validator of the lock".to_owned(),
            }]
        })
}

/// A reshare's checks, from the lock alone (its definition holds the
/// previous lock): the previous lock is the one named and intact, its
/// public shares lie on one polynomial through each key, and the validator
/// keys are unchanged. With a verified transcript of this definition, every
/// dealer's constant commitment was checked to be λ_j·PK_j, and their sum the
/// key, by the transcript verification itself (the plan carries the
/// previous public shares).
fn check_reshare(checks: &mut Checks, lock: &ClusterLock, transcript: Option<&Transcript>) {
    let Some(previous) = lock.definition.previous_lock.as_deref() else {
        checks.add(
            "reshare: the previous lock is the one named",
            Err("the lock's definition holds no previous lock".into()),
        );
        return;
    };
    checks.add(
        "reshare: the previous lock is the one named",
        if previous.compute_hash() != previous.lock_hash.0 {
            Err("the embedded previous lock does not match its own lock hash".into())
        } else if lock.previous_lock_hash != Some(previous.lock_hash) {
            Err("the lock's previous_lock_hash is not the embedded previous lock's".into())
        } else {
            Ok(format!(
                "previous lock {} ({} operators, threshold {}, kind {})",
                hex::encode(previous.lock_hash.0),
                previous.definition.operators.len(),
                previous.definition.threshold,
                previous.kind
            ))
        },
    );
    checks.add(
        "reshare: the previous public shares lie on one polynomial through each key",
        crate::ceremony::definition::reshare::check_on_polynomial(previous).map(|()| {
            format!(
                "{} validators, degree {}",
                previous.validators.len(),
                previous.definition.threshold.saturating_sub(1)
            )
        }),
    );
    let subset: Vec<usize> = match &lock.definition.validator_indices {
        Some(list) => list.iter().map(|&v| v as usize).collect(),
        None => (0..previous.validators.len()).collect(),
    };
    let unchanged = if subset.len() != lock.validators.len() {
        Err(format!(
            "the definition reshares {} validators, the lock has {}",
            subset.len(),
            lock.validators.len()
        ))
    } else if let Some((v, (_, old))) =
        lock.validators
            .iter()
            .zip(&subset)
            .enumerate()
            .find(|(_, (validator, old))| {
                previous.validators.get(**old).map(|x| x.pubkey) != Some(validator.pubkey)
            })
    {
        Err(format!(
            "validator {v}: its key is not previous validator {old}'s: the key changed"
        ))
    } else {
        match transcript {
            Some(t)
                if t.validators
                    .iter()
                    .zip(&lock.validators)
                    .all(|(r, l)| r.group_key == l.pubkey) =>
            {
                Ok(format!(
                    "{} validators keep their keys: every dealer's constant commitment is its previous public share times its Lagrange coefficient over the dealers, and they add up to the key",
                    subset.len()
                ))
            }
            Some(_) => Err("the transcript's keys are not the previous lock's".into()),
            None => Ok(format!(
                "{} validators in the lock keep the previous lock's keys (no verified transcript to check the dealing)",
                subset.len()
            )),
        }
    };
    checks.add("reshare: the validator keys are unchanged", unchanged);
}

/// A split's keys: the lock's validator keys are the definition's, one by
/// one, and (with a verified transcript) the dealer's constant commitments
/// gave exactly those keys.
fn check_split(lock: &ClusterLock, transcript: Option<&Transcript>) -> Result<String, String> {
    let keys = lock
        .definition
        .validator_keys
        .as_deref()
        .ok_or("the lock's definition has no validator_keys")?;
    if keys.len() != lock.validators.len() {
        return Err(format!(
            "the definition splits {} keys, the lock has {} validators",
            keys.len(),
            lock.validators.len()
        ));
    }
    if let Some(v) = lock
        .validators
        .iter()
        .zip(keys)
        .position(|(validator, key)| validator.pubkey != *key)
    {
        return Err(format!(
            "validator {v}: the lock's key is not the definition's validator_keys[{v}]"
        ));
    }
    let dealer = lock
        .definition
        .dealer
        .as_ref()
        .map_or_else(|| "the dealer".to_owned(), |d| format!("dealer {}", d.name));
    match transcript {
        Some(t)
            if t.validators
                .iter()
                .zip(keys)
                .all(|(r, k)| r.group_key == *k) =>
        {
            Ok(format!(
                "{} validators: {dealer}'s constant commitments are the definition's keys, and every party, {dealer} included, signed the transcript",
                keys.len()
            ))
        }
        Some(_) => Err("the transcript's keys are not the definition's validator_keys".into()),
        None => Ok(format!(
            "{} validators in the lock are the definition's keys (no verified transcript to check the dealing)",
            keys.len()
        )),
    }
}

/// Reads the confirmation record of an output directory: passes only when
/// every operator confirmed the lock beside it.
fn check_confirmation(path: &Path, lock: Option<&ClusterLock>) -> Result<String, String> {
    let record: outputs::ConfirmationRecord = read_json(path, None, "confirmation record")?;
    if record.version != outputs::CONFIRMATION_VERSION {
        return Err(format!(
            "{}: confirmation record version {} (this dvkg reads {})",
            path.display(),
            record.version,
            outputs::CONFIRMATION_VERSION
        ));
    }
    if let Some(lock) = lock
        && record.lock_hash != lock.lock_hash
    {
        return Err(format!(
            "{} is about another lock ({})",
            path.display(),
            record.lock_hash
        ));
    }
    let confirmed: Vec<String> = record
        .confirmed_by
        .iter()
        .map(ToString::to_string)
        .collect();
    match record.state {
        outputs::ConfirmationState::Confirmed if record.unconfirmed.is_empty() => Ok(format!(
            "operators {} confirmed lock {}",
            confirmed.join(", "),
            record.lock_hash
        )),
        _ => {
            let missing: Vec<String> = record
                .unconfirmed
                .iter()
                .map(|u| format!("operator {} ({})", u.operator, u.reason))
                .collect();
            Err(format!(
                "UNCONFIRMED: not confirmed by {}; do not deposit before `dvkg check` shows every operator holds working shares",
                missing.join("; ")
            ))
        }
    }
}

/// Decrypts one operator's keystores and matches each to its public share
/// in the lock.
fn check_keystores(dir: &Path, password: &Password, lock: &ClusterLock) -> Result<String, String> {
    let mut decryptor = KeystoreDecryptor::new();
    let mut operators = BTreeSet::new();
    for (v, validator) in lock.validators.iter().enumerate() {
        let path = dir.join(outputs::keystore_file(v));
        let json = store::read_text(&path, 1024 * 1024).map_err(|e| e.to_string())?;
        let keystore =
            Keystore::from_json_str(&json).map_err(|e| format!("{}: {e}", path.display()))?;
        decryptor
            .decrypt(&keystore, password)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let pubkey = keystore.pubkey().to_bytes();
        let position = validator
            .public_shares
            .iter()
            .position(|share| share.0 == pubkey)
            .ok_or_else(|| {
                format!(
                    "{}: its key is no operator's public share of validator {v}",
                    path.display()
                )
            })?;
        operators.insert(position + 1);
    }
    if operators.len() != 1 {
        return Err(format!(
            "the keystores belong to several operators: {operators:?}"
        ));
    }
    Ok(format!(
        "{} keystores decrypt and match operator {}'s public shares ({} KDF run(s))",
        lock.validators.len(),
        operators.iter().next().copied().unwrap_or(0),
        decryptor.kdf_runs()
    ))
}
