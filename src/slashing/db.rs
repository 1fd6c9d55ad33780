//! The slashing-protection database: SQLite, with EIP-3076 semantics as
//! Lighthouse implements them for a minimal database.
//!
//! Spec: `ceremony-specs/slashing.md` ("Database schema", "Rules"), citing
//! EIP-3076 and Lighthouse's `slashing_database.rs`.
//!
//! Every check of a message and its record happen in one `BEGIN EXCLUSIVE`
//! transaction, so two processes (or threads) signing for one key are
//! serialised by SQLite's file lock: the second waits (up to
//! [`BUSY_TIMEOUT_SECS`]), then sees the first one's record. A database
//! belongs to one chain: its `genesis_validators_root` is stored in the
//! `metadata` table when it is created, and opening it for another root is
//! refused.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::interchange::{
    Interchange, InterchangeData, InterchangeError, SignedAttestation, SignedBlock, Watermarks,
};
use super::merge::{KeyMap, KeyedBy, MergeError, MergeInput, merge};
use super::{Epoch, MAX_SLOT_OR_EPOCH, PublicKeyBytes, Root, SigningRoot, Slot};

/// The version of the schema below, stored in `metadata`.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a command waits for another process's transaction on the same
/// database before giving up (Lighthouse waits 5 s for its pool; a check is
/// a few milliseconds, so this is only ever reached by a stuck process).
pub const BUSY_TIMEOUT_SECS: u64 = 10;

/// The schema. `STRICT` tables refuse values of the wrong type; the `CHECK`s
/// keep keys and roots at their lengths. One block per slot and one
/// attestation per target and key (`UNIQUE`), as in Lighthouse; a null
/// signing root is SQL `NULL`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS metadata (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS validators (
    id INTEGER PRIMARY KEY,
    pubkey BLOB NOT NULL UNIQUE CHECK (length(pubkey) = 48)
) STRICT;
CREATE TABLE IF NOT EXISTS signed_blocks (
    validator_id INTEGER NOT NULL REFERENCES validators(id),
    slot INTEGER NOT NULL CHECK (slot >= 0),
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS signed_blocks_by_slot
    ON signed_blocks (validator_id, slot);
CREATE TABLE IF NOT EXISTS signed_attestations (
    validator_id INTEGER NOT NULL REFERENCES validators(id),
    source_epoch INTEGER NOT NULL CHECK (source_epoch >= 0),
    target_epoch INTEGER NOT NULL CHECK (target_epoch >= 0),
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS signed_attestations_by_target
    ON signed_attestations (validator_id, target_epoch);
CREATE INDEX IF NOT EXISTS signed_attestations_by_source
    ON signed_attestations (validator_id, source_epoch);
";

/// A message about to be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A block proposal.
    Block {
        /// Its slot.
        slot: Slot,
        /// Its signing root, if known.
        signing_root: SigningRoot,
    },
    /// An attestation.
    Attestation {
        /// `data.source.epoch`.
        source: Epoch,
        /// `data.target.epoch`.
        target: Epoch,
        /// Its signing root, if known.
        signing_root: SigningRoot,
    },
}

/// Why signing is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safe {
    /// A new message, now recorded.
    Recorded,
    /// The very message already recorded (same slot or target, same
    /// non-null signing root): signing it again is harmless and nothing new
    /// is recorded.
    SameAsRecorded,
}

/// The outcome of a check that allows signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Why it is safe.
    pub safe: Safe,
    /// True when the key had no history in this database: the check could
    /// only compare against nothing.
    pub first_for_key: bool,
}

/// A recorded attestation, as quoted in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedAttestation {
    /// Its source epoch.
    pub source: Epoch,
    /// Its target epoch.
    pub target: Epoch,
    /// Its signing root.
    pub signing_root: SigningRoot,
}

impl fmt::Display for RecordedAttestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source {} target {}", self.source, self.target)
    }
}

/// Why signing is refused: the message could be slashable, or is below what
/// the history can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A block at a recorded slot whose signing root is not known to be the
    /// same (EIP-3076: refuse unless identical signing root).
    #[error(
        "double proposal: a block at slot {slot} is already signed (recorded signing root {recorded}), \
         and this one is not known to be the same block"
    )]
    DoubleProposal {
        /// The slot.
        slot: Slot,
        /// The recorded block's signing root.
        recorded: SigningRoot,
    },
    /// A block at or below the lowest recorded slot.
    #[error(
        "slot {slot} is at or below the lowest signed slot {lowest} in the history (its watermark)"
    )]
    SlotAtOrBelowWatermark {
        /// The slot asked for.
        slot: Slot,
        /// The lowest recorded slot.
        lowest: Slot,
    },
    /// An attestation whose source is after its target.
    #[error("source epoch {source_epoch} is after target epoch {target_epoch}")]
    SourceExceedsTarget {
        /// The source asked for.
        source_epoch: Epoch,
        /// The target asked for.
        target_epoch: Epoch,
    },
    /// A different attestation with the same target.
    #[error(
        "double vote: an attestation with target epoch {target_epoch} is already signed \
         ({recorded}, signing root {recorded_root}), and this one is not known to be the same",
        recorded_root = recorded.signing_root
    )]
    DoubleVote {
        /// The target asked for.
        target_epoch: Epoch,
        /// The recorded attestation.
        recorded: RecordedAttestation,
    },
    /// A recorded attestation surrounds this one.
    #[error(
        "surround vote: the recorded attestation {recorded} surrounds this one \
         (source {source_epoch} target {target_epoch})"
    )]
    SurroundedByRecorded {
        /// The source asked for.
        source_epoch: Epoch,
        /// The target asked for.
        target_epoch: Epoch,
        /// The recorded attestation.
        recorded: RecordedAttestation,
    },
    /// This attestation surrounds a recorded one.
    #[error(
        "surround vote: this attestation (source {source_epoch} target {target_epoch}) surrounds \
         the recorded attestation {recorded}"
    )]
    SurroundsRecorded {
        /// The source asked for.
        source_epoch: Epoch,
        /// The target asked for.
        target_epoch: Epoch,
        /// The recorded attestation.
        recorded: RecordedAttestation,
    },
    /// A source below the lowest recorded source.
    #[error(
        "source epoch {source_epoch} is below the lowest source epoch {lowest} in the history (its watermark)"
    )]
    SourceBelowWatermark {
        /// The source asked for.
        source_epoch: Epoch,
        /// The lowest recorded source.
        lowest: Epoch,
    },
    /// A target at or below the lowest recorded target.
    #[error(
        "target epoch {target_epoch} is at or below the lowest target epoch {lowest} in the history (its watermark)"
    )]
    TargetAtOrBelowWatermark {
        /// The target asked for.
        target_epoch: Epoch,
        /// The lowest recorded target.
        lowest: Epoch,
    },
}

/// Why the database could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed (not a database, read-only, disk full, …).
    #[error("{0}")]
    Sqlite(#[source] rusqlite::Error),
    /// Another process held the database longer than [`BUSY_TIMEOUT_SECS`].
    #[error("the database stayed locked by another process for {BUSY_TIMEOUT_SECS} s")]
    Busy,
    /// The database belongs to another chain.
    #[error("the database is for genesis validators root {stored}, not {requested}")]
    WrongGenesisRoot {
        /// The root stored in the database.
        stored: Root,
        /// The root asked for.
        requested: Root,
    },
    /// A schema this dvkg does not know.
    #[error("the database has schema version {got}; this dvkg reads version {SCHEMA_VERSION}")]
    SchemaVersion {
        /// The stored version.
        got: i64,
    },
    /// A stored value dvkg would never write.
    #[error("the database holds an invalid {what}")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
    },
    /// A slot or epoch above [`MAX_SLOT_OR_EPOCH`].
    #[error("{what} {value} is above the largest slot or epoch dvkg stores ({MAX_SLOT_OR_EPOCH})")]
    OutOfRange {
        /// Which number.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// An interchange for another chain or version (nothing was imported).
    #[error(transparent)]
    Interchange(#[from] InterchangeError),
    /// A peer's history that cannot be mapped (nothing was imported).
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// Export of a key the database has never seen.
    #[error("the database has no history for {pubkey}")]
    UnknownKey {
        /// The key.
        pubkey: PublicKeyBytes,
    },
    /// After an import, a watermark was lower than before: a bug in dvkg
    /// (the transaction is rolled back).
    #[error("importing lowered a watermark of {pubkey} (a bug in dvkg; nothing was imported)")]
    Inconsistent {
        /// The key.
        pubkey: PublicKeyBytes,
    },
}

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> Self {
        if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
            || err.sqlite_error_code() == Some(ErrorCode::DatabaseLocked)
        {
            Self::Busy
        } else {
            Self::Sqlite(err)
        }
    }
}

/// A check that did not allow signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The message is refused (nothing was recorded).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The database could not answer (nothing was recorded).
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for CheckError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Db(err.into())
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Records in the file.
    pub records: usize,
    /// Distinct keys among them.
    pub keys: usize,
    /// Keys the database did not know before.
    pub new_keys: usize,
}

/// An open slashing-protection database for one chain.
#[derive(Debug)]
pub struct SlashingDb {
    conn: Connection,
    genesis_validators_root: Root,
}

impl SlashingDb {
    /// Opens the database at `path` for `genesis_validators_root`, creating
    /// it (mode 0600) with that root if the file does not exist.
    ///
    /// # Errors
    ///
    /// [`DbError::WrongGenesisRoot`] for another chain's database,
    /// [`DbError::SchemaVersion`] for an unknown schema, or a SQLite error
    /// (for example when the file is not a database).
    pub fn open(path: &Path, genesis_validators_root: Root) -> Result<Self, DbError> {
        create_private_file(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(BUSY_TIMEOUT_SECS))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Schema and metadata in one exclusive transaction, so that two
        // processes creating the same database at once agree on its root.
        let txn = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        txn.execute_batch(SCHEMA)?;
        match metadata(&txn, "schema_version")? {
            None => {
                set_metadata(&txn, "schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(bytes) => {
                let got = <[u8; 8]>::try_from(bytes.as_slice())
                    .map(i64::from_be_bytes)
                    .map_err(|_| DbError::Corrupt {
                        what: "schema version",
                    })?;
                if got != SCHEMA_VERSION {
                    return Err(DbError::SchemaVersion { got });
                }
            }
        }
        match metadata(&txn, "genesis_validators_root")? {
            None => set_metadata(&txn, "genesis_validators_root", &genesis_validators_root.0)?,
            Some(bytes) => {
                let stored = <[u8; 32]>::try_from(bytes.as_slice())
                    .map(Root)
                    .map_err(|_| DbError::Corrupt {
                        what: "genesis validators root",
                    })?;
                if stored != genesis_validators_root {
                    return Err(DbError::WrongGenesisRoot {
                        stored,
                        requested: genesis_validators_root,
                    });
                }
            }
        }
        txn.commit()?;
        Ok(Self {
            conn,
            genesis_validators_root,
        })
    }

    /// The chain this database belongs to.
    pub fn genesis_validators_root(&self) -> Root {
        self.genesis_validators_root
    }

    /// Checks that signing `message` with `pubkey` is safe and, if so,
    /// records it, in one exclusive transaction. A key the database has
    /// never seen is registered with this first message.
    ///
    /// # Errors
    ///
    /// [`CheckError::Refused`] with the rule that refuses it, or
    /// [`CheckError::Db`]; nothing is recorded in either case.
    pub fn check_and_record(
        &mut self,
        pubkey: &PublicKeyBytes,
        message: &Message,
    ) -> Result<Checked, CheckError> {
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let checked = check_and_record_in(&txn, pubkey, message)?;
        txn.commit()?;
        Ok(checked)
    }

    /// [`Self::check_and_record`] for a block.
    ///
    /// # Errors
    ///
    /// As [`Self::check_and_record`].
    pub fn check_and_record_block(
        &mut self,
        pubkey: &PublicKeyBytes,
        slot: Slot,
        signing_root: SigningRoot,
    ) -> Result<Checked, CheckError> {
        self.check_and_record(pubkey, &Message::Block { slot, signing_root })
    }

    /// [`Self::check_and_record`] for an attestation.
    ///
    /// # Errors
    ///
    /// As [`Self::check_and_record`].
    pub fn check_and_record_attestation(
        &mut self,
        pubkey: &PublicKeyBytes,
        source: Epoch,
        target: Epoch,
        signing_root: SigningRoot,
    ) -> Result<Checked, CheckError> {
        self.check_and_record(
            pubkey,
            &Message::Attestation {
                source,
                target,
                signing_root,
            },
        )
    }

    /// Checks and records several messages, in order, in one exclusive
    /// transaction (one disk sync for all of them, as a validator client
    /// signing a whole epoch's attestations would want). Each message is
    /// checked against the history including the ones before it; refused
    /// ones are not recorded and do not stop the others.
    ///
    /// # Errors
    ///
    /// [`DbError`] if the database fails; then nothing is recorded.
    pub fn check_and_record_batch(
        &mut self,
        messages: &[(PublicKeyBytes, Message)],
    ) -> Result<Vec<Result<Checked, Refusal>>, DbError> {
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let mut out = Vec::with_capacity(messages.len());
        for (pubkey, message) in messages {
            match check_and_record_in(&txn, pubkey, message) {
                Ok(checked) => out.push(Ok(checked)),
                Err(CheckError::Refused(refusal)) => out.push(Err(refusal)),
                Err(CheckError::Db(err)) => return Err(err),
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Imports an EIP-3076 history, all or nothing, the way Lighthouse
    /// imports into a minimal database: per key, the history is reduced to
    /// its highest slot and its highest source and target (each taken
    /// separately, together with what the database already held), stored
    /// as one block and one attestation with null signing roots that act as
    /// lower bounds. Slashable data, repeated keys, repeated imports and
    /// stale files are accepted: the maximum never goes down.
    ///
    /// # Errors
    ///
    /// [`DbError::Interchange`] for another format version or chain, or a
    /// database error; nothing is imported then.
    pub fn import(&mut self, interchange: &Interchange) -> Result<ImportSummary, DbError> {
        interchange.check_for(self.genesis_validators_root)?;
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let mut summary = ImportSummary {
            records: interchange.data.len(),
            ..ImportSummary::default()
        };
        let mut keys = HashSet::new();
        for record in &interchange.data {
            let (id, new) = validator_id(&txn, &record.pubkey)?;
            if keys.insert(record.pubkey) {
                summary.keys += 1;
                summary.new_keys += usize::from(new);
            }
            import_record(&txn, id, record)?;
        }
        txn.commit()?;
        Ok(summary)
    }

    /// Merges a peer's history (already verified as coming from that peer)
    /// into this database: its keys are mapped through `keys` to this
    /// database's keys (`keyed_by`), minified, and imported as
    /// [`Self::import`] does. This is what `dvkg slashing sync` does with
    /// each peer's export.
    ///
    /// # Errors
    ///
    /// [`DbError::Merge`] when the history is for another chain or holds a
    /// key the map does not know (naming `name` and the key), or a database
    /// error; nothing is imported then.
    pub fn import_mapped(
        &mut self,
        name: &str,
        peer: &Interchange,
        keys: &KeyMap,
        keyed_by: KeyedBy,
    ) -> Result<ImportSummary, DbError> {
        let merged = merge(
            &[MergeInput {
                name,
                interchange: peer,
            }],
            keys,
            keyed_by,
            self.genesis_validators_root,
        )?;
        self.import(&merged)
    }

    /// The history as an EIP-3076 interchange: every key (in the order the
    /// database first saw them), or only `only` (in that order, repeats
    /// dropped); blocks by slot, attestations by source then target, null
    /// signing roots omitted.
    ///
    /// # Errors
    ///
    /// [`DbError::UnknownKey`] for a key in `only` the database has never
    /// seen, or a database error.
    pub fn export(&mut self, only: Option<&[PublicKeyBytes]>) -> Result<Interchange, DbError> {
        // A read transaction: one consistent snapshot of every table.
        let txn = self.conn.transaction()?;
        let mut known: Vec<(i64, PublicKeyBytes)> = Vec::new();
        {
            let mut stmt = txn.prepare("SELECT id, pubkey FROM validators ORDER BY id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let bytes: Vec<u8> = row.get(1)?;
                let key = <[u8; 48]>::try_from(bytes.as_slice())
                    .map(PublicKeyBytes)
                    .map_err(|_| DbError::Corrupt { what: "public key" })?;
                known.push((row.get(0)?, key));
            }
        }
        let selected: Vec<(i64, PublicKeyBytes)> = match only {
            None => known,
            Some(keys) => {
                let by_key: HashMap<PublicKeyBytes, i64> =
                    known.iter().map(|(id, key)| (*key, *id)).collect();
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for key in keys {
                    let id = by_key
                        .get(key)
                        .copied()
                        .ok_or(DbError::UnknownKey { pubkey: *key })?;
                    if seen.insert(*key) {
                        out.push((id, *key));
                    }
                }
                out
            }
        };
        let position: HashMap<i64, usize> = selected
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let mut data: Vec<InterchangeData> = selected
            .iter()
            .map(|(_, pubkey)| InterchangeData {
                pubkey: *pubkey,
                signed_blocks: Vec::new(),
                signed_attestations: Vec::new(),
            })
            .collect();
        {
            let mut stmt = txn.prepare(
                "SELECT validator_id, slot, signing_root FROM signed_blocks
                 ORDER BY validator_id, slot",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let Some(record) = position
                    .get(&row.get::<_, i64>(0)?)
                    .and_then(|&i| data.get_mut(i))
                else {
                    continue;
                };
                record.signed_blocks.push(SignedBlock {
                    slot: to_u64(row.get(1)?)?,
                    signing_root: root_from_sql(row.get(2)?)?.into(),
                });
            }
        }
        {
            let mut stmt = txn.prepare(
                "SELECT validator_id, source_epoch, target_epoch, signing_root
                 FROM signed_attestations
                 ORDER BY validator_id, source_epoch, target_epoch",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let Some(record) = position
                    .get(&row.get::<_, i64>(0)?)
                    .and_then(|&i| data.get_mut(i))
                else {
                    continue;
                };
                record.signed_attestations.push(SignedAttestation {
                    source_epoch: to_u64(row.get(1)?)?,
                    target_epoch: to_u64(row.get(2)?)?,
                    signing_root: root_from_sql(row.get(3)?)?.into(),
                });
            }
        }
        txn.commit()?;
        let mut out = Interchange::empty(self.genesis_validators_root);
        out.data = data;
        Ok(out)
    }
}

/// Creates `path` empty with mode 0600 unless it exists, so that SQLite
/// never creates the database world-readable. A concurrent creator is fine.
fn create_private_file(path: &Path) -> Result<(), DbError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(DbError::Sqlite(rusqlite::Error::InvalidPath(
            format!("{}: {err}", path.display()).into(),
        ))),
    }
}

fn metadata(txn: &Transaction<'_>, key: &str) -> Result<Option<Vec<u8>>, DbError> {
    Ok(txn
        .query_row(
            "SELECT value FROM metadata WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()?)
}

fn set_metadata(txn: &Transaction<'_>, key: &str, value: &[u8]) -> Result<(), DbError> {
    txn.execute(
        "INSERT INTO metadata (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(())
}

fn to_sql(what: &'static str, value: u64) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::OutOfRange { what, value })
}

fn to_u64(value: i64) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::Corrupt {
        what: "negative slot or epoch",
    })
}

fn root_to_sql(root: SigningRoot) -> Option<Vec<u8>> {
    root.bytes().map(|b| b.to_vec())
}

fn root_from_sql(value: Option<Vec<u8>>) -> Result<SigningRoot, DbError> {
    match value {
        None => Ok(SigningRoot::NULL),
        Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map(SigningRoot::from_bytes)
            .map_err(|_| DbError::Corrupt {
                what: "signing root",
            }),
    }
}

/// The key's row id, registering the key if new (`true` then).
fn validator_id(txn: &Transaction<'_>, pubkey: &PublicKeyBytes) -> Result<(i64, bool), DbError> {
    let existing: Option<i64> = txn
        .prepare_cached("SELECT id FROM validators WHERE pubkey = ?1")?
        .query_row(params![pubkey.0.as_slice()], |row| row.get(0))
        .optional()?;
    match existing {
        Some(id) => Ok((id, false)),
        None => {
            txn.prepare_cached("INSERT INTO validators (pubkey) VALUES (?1)")?
                .execute(params![pubkey.0.as_slice()])?;
            Ok((txn.last_insert_rowid(), true))
        }
    }
}

fn check_and_record_in(
    txn: &Transaction<'_>,
    pubkey: &PublicKeyBytes,
    message: &Message,
) -> Result<Checked, CheckError> {
    // Refuse the nonsensical before registering a key for it.
    if let Message::Attestation { source, target, .. } = *message
        && source > target
    {
        return Err(Refusal::SourceExceedsTarget {
            source_epoch: source,
            target_epoch: target,
        }
        .into());
    }
    let (id, first_for_key) = validator_id(txn, pubkey)?;
    let safe = match *message {
        Message::Block { slot, signing_root } => {
            let slot = to_sql("slot", slot)?;
            let safe = check_block(txn, id, slot, signing_root)?;
            if safe == Safe::Recorded {
                txn.prepare_cached(
                    "INSERT INTO signed_blocks (validator_id, slot, signing_root)
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id, slot, root_to_sql(signing_root)])?;
            }
            safe
        }
        Message::Attestation {
            source,
            target,
            signing_root,
        } => {
            let (source, target) = (
                to_sql("source epoch", source)?,
                to_sql("target epoch", target)?,
            );
            let safe = check_attestation(txn, id, source, target, signing_root)?;
            if safe == Safe::Recorded {
                txn.prepare_cached(
                    "INSERT INTO signed_attestations
                     (validator_id, source_epoch, target_epoch, signing_root)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    id,
                    source,
                    target,
                    root_to_sql(signing_root)
                ])?;
            }
            safe
        }
    };
    Ok(Checked {
        safe,
        first_for_key,
    })
}

/// The block rules (Lighthouse `check_block_proposal`; EIP-3076 "refuse to
/// sign any block with slot <= min(b.slot for b in data.signed_blocks if
/// b.pubkey == proposer_pubkey), except if it is a repeat signing as
/// determined by the signing_root").
fn check_block(
    txn: &Transaction<'_>,
    id: i64,
    slot: i64,
    signing_root: SigningRoot,
) -> Result<Safe, CheckError> {
    let same_slot: Option<Option<Vec<u8>>> = txn
        .prepare_cached(
            "SELECT signing_root FROM signed_blocks WHERE validator_id = ?1 AND slot = ?2",
        )?
        .query_row(params![id, slot], |row| row.get(0))
        .optional()?;
    if let Some(recorded) = same_slot {
        let recorded = root_from_sql(recorded)?;
        return if signing_root.matches(&recorded) {
            Ok(Safe::SameAsRecorded)
        } else {
            Err(Refusal::DoubleProposal {
                slot: to_u64(slot)?,
                recorded,
            }
            .into())
        };
    }
    let lowest: Option<i64> = txn
        .prepare_cached("SELECT MIN(slot) FROM signed_blocks WHERE validator_id = ?1")?
        .query_row(params![id], |row| row.get(0))?;
    if let Some(lowest) = lowest
        && slot <= lowest
    {
        return Err(Refusal::SlotAtOrBelowWatermark {
            slot: to_u64(slot)?,
            lowest: to_u64(lowest)?,
        }
        .into());
    }
    Ok(Safe::Recorded)
}

fn recorded_attestation(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, Option<Vec<u8>>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_recorded(row: (i64, i64, Option<Vec<u8>>)) -> Result<RecordedAttestation, DbError> {
    Ok(RecordedAttestation {
        source: to_u64(row.0)?,
        target: to_u64(row.1)?,
        signing_root: root_from_sql(row.2)?,
    })
}

/// The attestation rules (Lighthouse `check_attestation`; EIP-3076: refuse
/// a double vote, a surround vote either way, a source below the lowest
/// source and a target at or below the lowest target). Source <= target is
/// checked before.
fn check_attestation(
    txn: &Transaction<'_>,
    id: i64,
    source: i64,
    target: i64,
    signing_root: SigningRoot,
) -> Result<Safe, CheckError> {
    let (source_epoch, target_epoch) = (to_u64(source)?, to_u64(target)?);
    let same_target = txn
        .prepare_cached(
            "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
             WHERE validator_id = ?1 AND target_epoch = ?2",
        )?
        .query_row(params![id, target], recorded_attestation)
        .optional()?;
    if let Some(row) = same_target {
        let recorded = to_recorded(row)?;
        return if signing_root.matches(&recorded.signing_root) {
            Ok(Safe::SameAsRecorded)
        } else {
            Err(Refusal::DoubleVote {
                target_epoch,
                recorded,
            }
            .into())
        };
    }
    // A recorded vote that surrounds this one has a larger target; the
    // target index keeps this to the votes after `target`. The most recent
    // one is named, as Lighthouse does.
    let surrounding = txn
        .prepare_cached(
            "SELECT source_epoch, target_epoch, signing_root
             FROM signed_attestations INDEXED BY signed_attestations_by_target
             WHERE validator_id = ?1 AND target_epoch > ?3 AND source_epoch < ?2
             ORDER BY target_epoch DESC LIMIT 1",
        )?
        .query_row(params![id, source, target], recorded_attestation)
        .optional()?;
    if let Some(row) = surrounding {
        return Err(Refusal::SurroundedByRecorded {
            source_epoch,
            target_epoch,
            recorded: to_recorded(row)?,
        }
        .into());
    }
    // A recorded vote surrounded by this one has a larger source; the source
    // index keeps this to the votes after `source`, and the first one found
    // in index order (the lowest source) is named, so that no sort over the
    // whole history is needed even when the history is long.
    let surrounded = txn
        .prepare_cached(
            "SELECT source_epoch, target_epoch, signing_root
             FROM signed_attestations INDEXED BY signed_attestations_by_source
             WHERE validator_id = ?1 AND source_epoch > ?2 AND target_epoch < ?3
             ORDER BY source_epoch LIMIT 1",
        )?
        .query_row(params![id, source, target], recorded_attestation)
        .optional()?;
    if let Some(row) = surrounded {
        return Err(Refusal::SurroundsRecorded {
            source_epoch,
            target_epoch,
            recorded: to_recorded(row)?,
        }
        .into());
    }
    // One aggregate per query: SQLite answers a lone MIN or MAX from the
    // index in one step, but scans every row of the key for two at once.
    let lowest_source: Option<i64> = txn
        .prepare_cached(
            "SELECT MIN(source_epoch) FROM signed_attestations WHERE validator_id = ?1",
        )?
        .query_row(params![id], |row| row.get(0))?;
    let lowest_target: Option<i64> = txn
        .prepare_cached(
            "SELECT MIN(target_epoch) FROM signed_attestations WHERE validator_id = ?1",
        )?
        .query_row(params![id], |row| row.get(0))?;
    if let Some(lowest) = lowest_source
        && source < lowest
    {
        return Err(Refusal::SourceBelowWatermark {
            source_epoch,
            lowest: to_u64(lowest)?,
        }
        .into());
    }
    if let Some(lowest) = lowest_target
        && target <= lowest
    {
        return Err(Refusal::TargetAtOrBelowWatermark {
            target_epoch,
            lowest: to_u64(lowest)?,
        }
        .into());
    }
    Ok(Safe::Recorded)
}

/// One record of an import, Lighthouse's minimal way: the key's blocks are
/// replaced by one at max(recorded max, file max) and its attestations by
/// one at (max source, max target), both with null roots.
fn import_record(txn: &Transaction<'_>, id: i64, record: &InterchangeData) -> Result<(), DbError> {
    let mut marks = Watermarks::default();
    marks.add_record(record);
    let before = watermarks(txn, id)?;
    if let Some(file_max) = marks.max_slot {
        let slot = before.max_slot.map_or(file_max, |s| s.max(file_max));
        txn.prepare_cached("DELETE FROM signed_blocks WHERE validator_id = ?1")?
            .execute(params![id])?;
        txn.prepare_cached(
            "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?1, ?2, NULL)",
        )?
        .execute(params![id, to_sql("slot", slot)?])?;
    }
    if let Some((file_source, file_target)) = marks.max_source_target {
        let (source, target) = before
            .max_source_target
            .map_or((file_source, file_target), |(s, t)| {
                (s.max(file_source), t.max(file_target))
            });
        txn.prepare_cached("DELETE FROM signed_attestations WHERE validator_id = ?1")?
            .execute(params![id])?;
        txn.prepare_cached(
            "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
             VALUES (?1, ?2, ?3, NULL)",
        )?
        .execute(params![
            id,
            to_sql("source epoch", source)?,
            to_sql("target epoch", target)?
        ])?;
    }
    // As Lighthouse's consistency check: no maximum may have gone down.
    let after = watermarks(txn, id)?;
    let mut expected = before;
    expected.merge(&marks);
    if after != expected {
        return Err(DbError::Inconsistent {
            pubkey: record.pubkey,
        });
    }
    Ok(())
}

/// The key's current maxima.
fn watermarks(txn: &Transaction<'_>, id: i64) -> Result<Watermarks, DbError> {
    let max_slot: Option<i64> = txn
        .prepare_cached("SELECT MAX(slot) FROM signed_blocks WHERE validator_id = ?1")?
        .query_row(params![id], |row| row.get(0))?;
    // One aggregate per query, so each is one index lookup (see above).
    let source: Option<i64> = txn
        .prepare_cached(
            "SELECT MAX(source_epoch) FROM signed_attestations WHERE validator_id = ?1",
        )?
        .query_row(params![id], |row| row.get(0))?;
    let target: Option<i64> = txn
        .prepare_cached(
            "SELECT MAX(target_epoch) FROM signed_attestations WHERE validator_id = ?1",
        )?
        .query_row(params![id], |row| row.get(0))?;
    Ok(Watermarks {
        max_slot: max_slot.map(to_u64).transpose()?,
        max_source_target: match (source, target) {
            (Some(s), Some(t)) => Some((to_u64(s)?, to_u64(t)?)),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Root = Root([3; 32]);

    fn key(byte: u8) -> PublicKeyBytes {
        PublicKeyBytes([byte; 48])
    }

    fn root(byte: u8) -> SigningRoot {
        SigningRoot::from_bytes([byte; 32])
    }

    fn open(dir: &tempfile::TempDir) -> SlashingDb {
        SlashingDb::open(&dir.path().join("slashing.sqlite"), ROOT).unwrap()
    }

    fn att(db: &mut SlashingDb, s: u64, t: u64, r: SigningRoot) -> Result<Checked, CheckError> {
        db.check_and_record_attestation(&key(1), s, t, r)
    }

    fn refusal(result: Result<Checked, CheckError>) -> Refusal {
        match result {
            Err(CheckError::Refused(refusal)) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn blocks_follow_the_minimal_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        let k = key(1);
        let first = db.check_and_record_block(&k, 10, root(1)).unwrap();
        assert!(first.first_for_key);
        assert_eq!(first.safe, Safe::Recorded);
        // The same block again: harmless, nothing recorded.
        let again = db.check_and_record_block(&k, 10, root(1)).unwrap();
        assert_eq!(again.safe, Safe::SameAsRecorded);
        assert!(!again.first_for_key);
        assert!(matches!(
            refusal(db.check_and_record_block(&k, 10, root(2))),
            Refusal::DoubleProposal { slot: 10, .. }
        ));
        // A null root at a signed slot is never "the same block".
        refusal(db.check_and_record_block(&k, 10, SigningRoot::NULL));
        assert_eq!(
            refusal(db.check_and_record_block(&k, 9, root(1))),
            Refusal::SlotAtOrBelowWatermark {
                slot: 9,
                lowest: 10
            }
        );
        db.check_and_record_block(&k, 20, SigningRoot::NULL)
            .unwrap();
        // Between recorded slots, above the lowest: allowed, as in Lighthouse.
        db.check_and_record_block(&k, 15, root(3)).unwrap();
        refusal(db.check_and_record_block(&k, 20, SigningRoot::NULL));
        // Another key is independent.
        db.check_and_record_block(&key(2), 1, root(1)).unwrap();
    }

    #[test]
    fn attestations_refuse_double_and_surround_votes_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        assert_eq!(
            refusal(att(&mut db, 5, 4, root(1))),
            Refusal::SourceExceedsTarget {
                source_epoch: 5,
                target_epoch: 4
            }
        );
        att(&mut db, 2, 5, root(1)).unwrap();
        assert_eq!(
            att(&mut db, 2, 5, root(1)).unwrap().safe,
            Safe::SameAsRecorded
        );
        assert!(matches!(
            refusal(att(&mut db, 2, 5, root(2))),
            Refusal::DoubleVote {
                target_epoch: 5,
                ..
            }
        ));
        assert!(matches!(
            refusal(att(&mut db, 3, 5, SigningRoot::NULL)),
            Refusal::DoubleVote { .. }
        ));
        att(&mut db, 5, 9, root(3)).unwrap();
        // (6, 8) is surrounded by (5, 9).
        assert_eq!(
            refusal(att(&mut db, 6, 8, root(4))),
            Refusal::SurroundedByRecorded {
                source_epoch: 6,
                target_epoch: 8,
                recorded: RecordedAttestation {
                    source: 5,
                    target: 9,
                    signing_root: root(3)
                }
            }
        );
        // (4, 10) surrounds (5, 9).
        assert!(matches!(
            refusal(att(&mut db, 4, 10, root(4))),
            Refusal::SurroundsRecorded {
                recorded: RecordedAttestation {
                    source: 5,
                    target: 9,
                    ..
                },
                ..
            }
        ));
        // Below the lowest source, at or below the lowest target.
        assert!(matches!(
            refusal(att(&mut db, 1, 20, root(4))),
            Refusal::SurroundsRecorded { .. }
        ));
        assert_eq!(
            refusal(att(&mut db, 2, 4, root(4))),
            Refusal::TargetAtOrBelowWatermark {
                target_epoch: 4,
                lowest: 5
            }
        );
        assert_eq!(
            refusal(att(&mut db, 1, 6, root(4))),
            Refusal::SurroundsRecorded {
                source_epoch: 1,
                target_epoch: 6,
                recorded: RecordedAttestation {
                    source: 2,
                    target: 5,
                    signing_root: root(1)
                }
            }
        );
        att(&mut db, 9, 10, root(5)).unwrap();
    }

    #[test]
    fn watermarks_refuse_below_the_lowest_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        let mut file = Interchange::empty(ROOT);
        file.data.push(InterchangeData {
            pubkey: key(1),
            signed_blocks: vec![],
            signed_attestations: vec![SignedAttestation {
                source_epoch: 10,
                target_epoch: 20,
                signing_root: None,
            }],
        });
        db.import(&file).unwrap();
        assert_eq!(
            refusal(att(&mut db, 9, 30, root(1))),
            Refusal::SurroundsRecorded {
                source_epoch: 9,
                target_epoch: 30,
                recorded: RecordedAttestation {
                    source: 10,
                    target: 20,
                    signing_root: SigningRoot::NULL
                }
            }
        );
        // The same target with the file's null root is a double vote.
        assert!(matches!(
            refusal(att(&mut db, 10, 20, SigningRoot::NULL)),
            Refusal::DoubleVote { .. }
        ));
        att(&mut db, 10, 21, root(1)).unwrap();
        att(&mut db, 21, 22, root(1)).unwrap();
        // Below the lowest target, and no surround vote with any record.
        assert_eq!(
            refusal(att(&mut db, 10, 15, root(1))),
            Refusal::TargetAtOrBelowWatermark {
                target_epoch: 15,
                lowest: 20
            }
        );
    }

    #[test]
    fn import_is_atomic_merges_by_maximum_and_never_lowers() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        db.check_and_record_block(&key(1), 50, root(1)).unwrap();
        db.check_and_record_attestation(&key(1), 4, 8, root(1))
            .unwrap();
        let stale = Interchange {
            metadata: Interchange::empty(ROOT).metadata,
            data: vec![
                InterchangeData {
                    pubkey: key(1),
                    signed_blocks: vec![SignedBlock {
                        slot: 3,
                        signing_root: None,
                    }],
                    signed_attestations: vec![
                        SignedAttestation {
                            source_epoch: 6,
                            target_epoch: 7,
                            signing_root: None,
                        },
                        // Slashable with the one above: accepted.
                        SignedAttestation {
                            source_epoch: 1,
                            target_epoch: 7,
                            signing_root: Some(Root([2; 32])),
                        },
                    ],
                },
                InterchangeData {
                    pubkey: key(1),
                    signed_blocks: vec![],
                    signed_attestations: vec![],
                },
                InterchangeData {
                    pubkey: key(2),
                    signed_blocks: vec![],
                    signed_attestations: vec![],
                },
            ],
        };
        let summary = db.import(&stale).unwrap();
        assert_eq!(
            summary,
            ImportSummary {
                records: 3,
                keys: 2,
                new_keys: 1
            }
        );
        db.import(&stale).unwrap();
        let out = db.export(Some(&[key(1)])).unwrap();
        assert_eq!(out.data[0].signed_blocks[0].slot, 50);
        let a = out.data[0].signed_attestations[0];
        assert_eq!((a.source_epoch, a.target_epoch), (6, 8));

        // Another chain: refused, nothing changed.
        let before = db.export(None).unwrap();
        let mut other = stale.clone();
        other.metadata.genesis_validators_root = Root([9; 32]);
        other.data[0].signed_blocks[0].slot = 1000;
        assert!(matches!(
            db.import(&other),
            Err(DbError::Interchange(
                InterchangeError::WrongGenesisRoot { .. }
            ))
        ));
        let mut version = stale.clone();
        version.metadata.interchange_format_version = "4".into();
        version.data[0].signed_blocks[0].slot = 1000;
        assert!(db.import(&version).is_err());
        assert_eq!(db.export(None).unwrap(), before);
        assert!(matches!(
            db.export(Some(&[key(7)])),
            Err(DbError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_database_belongs_to_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(SlashingDb::open(&path, ROOT).unwrap());
        assert!(matches!(
            SlashingDb::open(&path, Root([4; 32])),
            Err(DbError::WrongGenesisRoot { stored: ROOT, .. })
        ));
        SlashingDb::open(&path, ROOT).unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not a database at all, just some bytes here").unwrap();
        assert!(matches!(
            SlashingDb::open(&junk, ROOT),
            Err(DbError::Sqlite(_))
        ));
    }

    #[test]
    fn a_batch_checks_each_message_against_the_ones_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        let results = db
            .check_and_record_batch(&[
                (
                    key(1),
                    Message::Attestation {
                        source: 1,
                        target: 5,
                        signing_root: root(1),
                    },
                ),
                (
                    key(1),
                    Message::Attestation {
                        source: 2,
                        target: 4,
                        signing_root: root(1),
                    },
                ),
                (
                    key(1),
                    Message::Block {
                        slot: 3,
                        signing_root: root(1),
                    },
                ),
            ])
            .unwrap();
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(Refusal::SurroundedByRecorded { .. })
        ));
        assert!(results[2].is_ok());
    }

    #[test]
    fn import_mapped_maps_a_peers_shares_to_ours() {
        use super::super::merge::ValidatorKeys;
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        let keys = KeyMap::new(vec![ValidatorKeys {
            pubkey: key(10),
            shares: vec![key(11), key(12)],
        }])
        .unwrap();
        let mut peer = Interchange::empty(ROOT);
        peer.data.push(InterchangeData {
            pubkey: key(12),
            signed_blocks: vec![],
            signed_attestations: vec![SignedAttestation {
                source_epoch: 3,
                target_epoch: 4,
                signing_root: Some(Root([1; 32])),
            }],
        });
        db.import_mapped("peer 2", &peer, &keys, KeyedBy::Operator(1))
            .unwrap();
        assert!(matches!(
            db.check_and_record_attestation(&key(11), 3, 4, root(1)),
            Err(CheckError::Refused(Refusal::DoubleVote { .. }))
        ));
        let mut stranger = peer.clone();
        stranger.data[0].pubkey = key(99);
        assert!(matches!(
            db.import_mapped("peer 3", &stranger, &keys, KeyedBy::Operator(1)),
            Err(DbError::Merge(MergeError::UnknownKey { .. }))
        ));
    }
}
