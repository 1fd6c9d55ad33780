//! `dvkg slashing`: the EIP-3076 slashing-protection database.
//!
//! - `import` merges an interchange file into the database, all or nothing;
//! - `check-block` / `check-attestation` record a message that is safe to
//!   sign (exit 0) or refuse it (exit 5), saying which rule and record;
//! - `export` writes the history as an interchange file;
//! - `merge` turns several nodes' histories into one, through the lock;
//! - `serve` and `sync` exchange the operators' histories over QUIC
//!   (`super::slashing_sync`).
//!
//! Rules and formats: `ceremony-specs/slashing.md`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};

use crate::ceremony::lock::ClusterLock;
use crate::error::{CliError, ErrorKind};
use crate::eth::network::Network;
use crate::slashing::db::{CheckError, Checked, DbError, Message, Safe, SlashingDb};
use crate::slashing::file::{read_interchange, write_new_file};
use crate::slashing::interchange::{Interchange, InterchangeError};
use crate::slashing::merge::{KeyMap, KeyedBy, MergeInput, merge};
use crate::slashing::{MAX_SLOT_OR_EPOCH, PublicKeyBytes, Root, SigningRoot};
use crate::store::{self, StoreError};

/// The `dvkg slashing` subcommands.
#[derive(Debug, Subcommand)]
pub enum SlashingCommand {
    /// Import an EIP-3076 slashing-protection file into the database, all or
    /// nothing. Merges by maximum: nothing at or below the file's highest
    /// slot, source or target will be signed afterwards.
    Import(ImportArgs),
    /// Check that signing a block is safe; record it and exit 0, or refuse
    /// with exit 5 saying why.
    CheckBlock(CheckBlockArgs),
    /// Check that signing an attestation is safe; record it and exit 0, or
    /// refuse with exit 5 saying why (double vote, surround vote, watermark).
    CheckAttestation(CheckAttestationArgs),
    /// Write the database's history as an EIP-3076 (version 5) file.
    Export(ExportArgs),
    /// Merge several nodes' slashing-protection files into one minified
    /// history, keyed by one operator's share keys or by the validator keys.
    Merge(MergeArgs),
    /// Serve this operator's history to the other operators of the lock,
    /// signed with its identity key, until stopped (SIGINT or SIGTERM).
    Serve(super::slashing_sync::ServeArgs),
    /// Before signing again: fetch the other operators' signed histories,
    /// verify and merge them into this operator's database; exit 0 only
    /// with enough peers (default n - t + 1), else exit 4 naming the
    /// missing ones.
    Sync(super::slashing_sync::SyncArgs),
}

/// The chain a command is for (exactly one of the two).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ChainArgs {
    /// The chain's genesis validators root, 0x and 64 hex digits.
    #[arg(long, value_name = "ROOT")]
    pub genesis_validators_root: Option<String>,
    /// A known network standing in for --genesis-validators-root: mainnet,
    /// sepolia, holesky, hoodi, gnosis or chiado.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
}

/// The chain `merge` is for; by default the lock's network.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct MergeChainArgs {
    /// The chain's genesis validators root, 0x and 64 hex digits (default:
    /// the root of the lock's network; required for a custom network).
    #[arg(long, value_name = "ROOT")]
    pub genesis_validators_root: Option<String>,
    /// A known network standing in for --genesis-validators-root.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
}

/// Arguments of `dvkg slashing import`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg slashing import --db slashing.db --network mainnet interchange.json")]
pub struct ImportArgs {
    /// The slashing-protection database (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The EIP-3076 interchange file to import.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Arguments of `dvkg slashing check-block`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg slashing check-block --db slashing.db --network mainnet --pubkey 0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c --slot 123456")]
pub struct CheckBlockArgs {
    /// The slashing-protection database (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The signing key, 0x and 96 hex digits.
    #[arg(long, value_name = "PUBKEY")]
    pub pubkey: String,
    /// The block's slot.
    #[arg(long, value_name = "SLOT", value_parser = clap::value_parser!(u64).range(0..=MAX_SLOT_OR_EPOCH))]
    pub slot: u64,
    /// The block's signing root, 0x and 64 hex digits. Without it (or with
    /// all zeros) the block never counts as the same as a recorded one.
    #[arg(long, value_name = "ROOT")]
    pub signing_root: Option<String>,
}

/// Arguments of `dvkg slashing check-attestation`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg slashing check-attestation --db slashing.db --network mainnet --pubkey 0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c --source-epoch 100 --target-epoch 101")]
pub struct CheckAttestationArgs {
    /// The slashing-protection database (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The signing key, 0x and 96 hex digits.
    #[arg(long, value_name = "PUBKEY")]
    pub pubkey: String,
    /// The attestation's source epoch.
    #[arg(long, value_name = "EPOCH", value_parser = clap::value_parser!(u64).range(0..=MAX_SLOT_OR_EPOCH))]
    pub source_epoch: u64,
    /// The attestation's target epoch.
    #[arg(long, value_name = "EPOCH", value_parser = clap::value_parser!(u64).range(0..=MAX_SLOT_OR_EPOCH))]
    pub target_epoch: u64,
    /// The attestation's signing root, 0x and 64 hex digits. Without it (or
    /// with all zeros) it never counts as the same as a recorded one.
    #[arg(long, value_name = "ROOT")]
    pub signing_root: Option<String>,
}

/// Arguments of `dvkg slashing export`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg slashing export --db slashing.db --network mainnet --out interchange.json
  dvkg slashing export --db slashing.db --network mainnet --minify --out minified.json")]
pub struct ExportArgs {
    /// The slashing-protection database (must exist).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Export only this key (repeat for several); default: every key.
    #[arg(long = "pubkey", value_name = "PUBKEY")]
    pub pubkeys: Vec<String>,
    /// Write only each key's highest slot, source and target (what a
    /// minimal database such as Lighthouse's keeps).
    #[arg(long)]
    pub minify: bool,
    /// The file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `dvkg slashing merge`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg slashing merge --lock out/cluster-lock.json --for-operator 2 --network mainnet --out merged.json node1.json node2.json node3.json")]
#[command(group(ArgGroup::new("keyed_by").required(true).multiple(false)))]
pub struct MergeArgs {
    /// The cluster lock that maps every share key to its validator.
    #[arg(long, value_name = "FILE")]
    pub lock: PathBuf,
    /// Key the output by operator I's share keys (1-based).
    #[arg(long, value_name = "I", group = "keyed_by", value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub for_operator: Option<u64>,
    /// Key the output by the validator public keys.
    #[arg(long, group = "keyed_by")]
    pub group_keys: bool,
    /// The chain (default: the lock's network).
    #[command(flatten)]
    pub chain: MergeChainArgs,
    /// The interchange files to merge, keyed by share or validator keys.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// The file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `ImportArgs` validated.
#[derive(Debug)]
pub struct ImportConfig {
    /// The database.
    pub db: PathBuf,
    /// The chain.
    pub genesis_validators_root: Root,
    /// The file to import.
    pub file: PathBuf,
}

/// A `check-block` or `check-attestation` validated.
#[derive(Debug)]
pub struct CheckConfig {
    /// The database.
    pub db: PathBuf,
    /// The chain.
    pub genesis_validators_root: Root,
    /// The signing key.
    pub pubkey: PublicKeyBytes,
    /// What is to be signed.
    pub message: Message,
}

/// `ExportArgs` validated.
#[derive(Debug)]
pub struct ExportConfig {
    /// The database.
    pub db: PathBuf,
    /// The chain.
    pub genesis_validators_root: Root,
    /// Only these keys, if given.
    pub pubkeys: Option<Vec<PublicKeyBytes>>,
    /// Minify the output.
    pub minify: bool,
    /// The output file.
    pub out: PathBuf,
}

/// `MergeArgs` validated (the lock is read by `run`).
#[derive(Debug)]
pub struct MergeConfig {
    /// The lock.
    pub lock: PathBuf,
    /// How the output is keyed.
    pub keyed_by: KeyedBy,
    /// The chain, if given on the command line.
    pub genesis_validators_root: Option<Root>,
    /// The inputs.
    pub files: Vec<PathBuf>,
    /// The output file.
    pub out: PathBuf,
}

fn parse_root(text: &str, flag: &str) -> Result<Root, CliError> {
    text.parse().map_err(|err| {
        CliError::user(format!("invalid value for {flag}: {text:?}"))
            .with_source(&err)
            .with_hint("give 0x and 64 hex digits")
    })
}

fn parse_pubkey(text: &str) -> Result<PublicKeyBytes, CliError> {
    text.parse().map_err(|err| {
        CliError::user(format!("invalid value for --pubkey: {text:?}"))
            .with_source(&err)
            .with_hint("give the signing key as 0x and 96 hex digits")
    })
}

fn network_root(text: &str) -> Result<Root, CliError> {
    let network: Network = text.parse().map_err(|err| {
        CliError::user(format!("invalid value for --network: {text:?}")).with_source(&err)
    })?;
    network.genesis_validators_root().map(Root).ok_or_else(|| {
        CliError::user(format!(
            "network {network} is a custom network: dvkg does not know its genesis validators root"
        ))
        .with_hint("pass --genesis-validators-root 0x… instead of --network")
    })
}

impl ChainArgs {
    fn root(&self) -> Result<Root, CliError> {
        match (&self.genesis_validators_root, &self.network) {
            (Some(text), _) => parse_root(text, "--genesis-validators-root"),
            (None, Some(name)) => network_root(name),
            // clap's group makes one of the two required.
            (None, None) => Err(CliError::new(
                ErrorKind::Usage,
                "pass --genesis-validators-root or --network",
            )),
        }
    }
}

impl MergeChainArgs {
    pub(crate) fn root(&self) -> Result<Option<Root>, CliError> {
        match (&self.genesis_validators_root, &self.network) {
            (Some(text), _) => parse_root(text, "--genesis-validators-root").map(Some),
            (None, Some(name)) => network_root(name).map(Some),
            (None, None) => Ok(None),
        }
    }
}

impl ImportConfig {
    /// Validates the arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_args(args: ImportArgs) -> Result<Self, CliError> {
        Ok(Self {
            genesis_validators_root: args.chain.root()?,
            db: args.db,
            file: args.file,
        })
    }
}

fn signing_root(text: Option<&str>) -> Result<SigningRoot, CliError> {
    text.map(|t| parse_root(t, "--signing-root"))
        .transpose()
        .map(SigningRoot::from)
}

impl CheckConfig {
    /// Validates `check-block` arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_block_args(args: CheckBlockArgs) -> Result<Self, CliError> {
        Ok(Self {
            genesis_validators_root: args.chain.root()?,
            pubkey: parse_pubkey(&args.pubkey)?,
            message: Message::Block {
                slot: args.slot,
                signing_root: signing_root(args.signing_root.as_deref())?,
            },
            db: args.db,
        })
    }

    /// Validates `check-attestation` arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_attestation_args(args: CheckAttestationArgs) -> Result<Self, CliError> {
        Ok(Self {
            genesis_validators_root: args.chain.root()?,
            pubkey: parse_pubkey(&args.pubkey)?,
            message: Message::Attestation {
                source: args.source_epoch,
                target: args.target_epoch,
                signing_root: signing_root(args.signing_root.as_deref())?,
            },
            db: args.db,
        })
    }
}

impl ExportConfig {
    /// Validates the arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_args(args: ExportArgs) -> Result<Self, CliError> {
        let pubkeys = if args.pubkeys.is_empty() {
            None
        } else {
            Some(
                args.pubkeys
                    .iter()
                    .map(|text| parse_pubkey(text))
                    .collect::<Result<_, _>>()?,
            )
        };
        Ok(Self {
            genesis_validators_root: args.chain.root()?,
            db: args.db,
            pubkeys,
            minify: args.minify,
            out: args.out,
        })
    }
}

impl MergeConfig {
    /// Validates the arguments.
    ///
    /// # Errors
    ///
    /// A user error naming the flag with the bad value.
    pub fn from_args(args: MergeArgs) -> Result<Self, CliError> {
        let keyed_by = match (args.for_operator, args.group_keys) {
            (Some(operator), false) => {
                KeyedBy::Operator(usize::try_from(operator).map_err(|_| {
                    CliError::user(format!("invalid value for --for-operator: {operator}"))
                })?)
            }
            (None, true) => KeyedBy::Validators,
            _ => {
                return Err(CliError::new(
                    ErrorKind::Usage,
                    "pass exactly one of --for-operator I and --group-keys",
                ));
            }
        };
        Ok(Self {
            genesis_validators_root: args.chain.root()?,
            lock: args.lock,
            keyed_by,
            files: args.files,
            out: args.out,
        })
    }
}

/// A database failure as the user sees it.
pub(crate) fn db_error(path: &Path, err: DbError) -> CliError {
    let shown = path.display();
    match &err {
        DbError::WrongGenesisRoot { stored, .. } => CliError::user(format!(
            "the slashing-protection database {shown} belongs to another chain"
        ))
        .with_source(&err)
        .with_hint(format!(
            "a database keeps one chain: pass --genesis-validators-root {stored}, or another --db"
        )),
        DbError::Busy => CliError::user(format!(
            "the slashing-protection database {shown} is locked by another process"
        ))
        .with_source(&err)
        .with_hint("wait for the other dvkg or validator client using it to finish, then retry"),
        DbError::Inconsistent { .. } => {
            CliError::internal(format!("import into {shown} failed")).with_source(&err)
        }
        DbError::UnknownKey { .. } => CliError::user(format!("cannot export from {shown}"))
            .with_source(&err)
            .with_hint("pass only keys the database holds, or no --pubkey to export every key"),
        DbError::Sqlite(_)
        | DbError::SchemaVersion { .. }
        | DbError::Corrupt { .. }
        | DbError::OutOfRange { .. }
        | DbError::Interchange(_)
        | DbError::Merge(_) => CliError::user(format!(
            "cannot use the slashing-protection database {shown}"
        ))
        .with_source(&err)
        .with_hint("--db must name a dvkg slashing-protection database, or a new path for one"),
    }
}

pub(crate) fn open_db(path: &Path, root: Root) -> Result<SlashingDb, CliError> {
    SlashingDb::open(path, root).map_err(|err| db_error(path, err))
}

fn read_file(path: &Path, what: &str) -> Result<Interchange, CliError> {
    read_interchange(path).map_err(|err| {
        CliError::user(format!("failed to read {what} {}", path.display()))
            .with_source(&err)
            .with_hint("pass an EIP-3076 slashing-protection interchange file (JSON, version 5)")
    })
}

fn write_output(path: &Path, interchange: &Interchange) -> Result<(), CliError> {
    let text = interchange
        .to_json()
        .map_err(|err| CliError::internal("failed to render the interchange").with_source(&err))?;
    write_new_file(path, text.as_bytes()).map_err(|err| {
        let hint = match err {
            StoreError::Exists { .. } => "choose another --out; dvkg never overwrites",
            _ => "check that the directory of --out exists and is writable",
        };
        CliError::user(format!("failed to write {}", path.display()))
            .with_source(&err)
            .with_hint(hint)
    })
}

fn refuse_existing_output(path: &Path) -> Result<(), CliError> {
    if path.exists() {
        return Err(CliError::user(format!(
            "{} already exists; dvkg never overwrites outputs",
            path.display()
        ))
        .with_hint("choose another --out"));
    }
    Ok(())
}

pub(crate) fn say(line: &str) -> Result<(), CliError> {
    writeln!(std::io::stdout().lock(), "{line}")
        .map_err(|err| CliError::user("failed to write to stdout").with_source(&err))
}

fn interchange_refusal(file: &Path, err: &InterchangeError) -> CliError {
    let hint = match err {
        InterchangeError::WrongGenesisRoot { .. } => {
            "the file is for another chain: pass its chain's --genesis-validators-root or \
             --network (and a database for that chain)"
        }
        InterchangeError::UnsupportedVersion { .. } => {
            "export the history again as EIP-3076 interchange format version 5"
        }
    };
    CliError::user(format!(
        "refused to import {}: nothing was imported",
        file.display()
    ))
    .with_source(err)
    .with_hint(hint)
}

/// Runs `dvkg slashing …`.
///
/// # Errors
///
/// A user error (exit 1) for bad flags, files or databases, and for an
/// import that is refused; exit 5 when a check refuses to sign.
pub fn run(command: SlashingCommand) -> Result<ExitCode, CliError> {
    match command {
        SlashingCommand::Import(args) => run_import(ImportConfig::from_args(args)?),
        SlashingCommand::CheckBlock(args) => run_check(CheckConfig::from_block_args(args)?),
        SlashingCommand::CheckAttestation(args) => {
            run_check(CheckConfig::from_attestation_args(args)?)
        }
        SlashingCommand::Export(args) => run_export(ExportConfig::from_args(args)?),
        SlashingCommand::Merge(args) => run_merge(MergeConfig::from_args(args)?),
        SlashingCommand::Serve(args) => super::slashing_sync::run_serve(args),
        SlashingCommand::Sync(args) => super::slashing_sync::run_sync(args),
    }
}

fn run_import(config: ImportConfig) -> Result<ExitCode, CliError> {
    let interchange = read_file(&config.file, "slashing-protection file")?;
    // Refuse before the database is even created.
    interchange
        .check_for(config.genesis_validators_root)
        .map_err(|err| interchange_refusal(&config.file, &err))?;
    let mut db = open_db(&config.db, config.genesis_validators_root)?;
    let summary = db.import(&interchange).map_err(|err| match err {
        DbError::Interchange(err) => interchange_refusal(&config.file, &err),
        other => db_error(&config.db, other),
    })?;
    say(&format!(
        "imported {} into {}: {} records, {} keys ({} new)",
        config.file.display(),
        config.db.display(),
        summary.records,
        summary.keys,
        summary.new_keys
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn describe(message: &Message) -> String {
    match *message {
        Message::Block { slot, .. } => format!("block at slot {slot}"),
        Message::Attestation { source, target, .. } => {
            format!("attestation source {source} target {target}")
        }
    }
}

fn run_check(config: CheckConfig) -> Result<ExitCode, CliError> {
    let mut db = open_db(&config.db, config.genesis_validators_root)?;
    let what = describe(&config.message);
    let key = config.pubkey.short();
    match db.check_and_record(&config.pubkey, &config.message) {
        Ok(Checked {
            safe,
            first_for_key,
        }) => {
            if first_for_key {
                tracing::warn!(
                    "{key} had no history in {}: import its slashing-protection file before \
                     signing with a key that signed elsewhere",
                    config.db.display()
                );
            }
            say(&match safe {
                Safe::Recorded => format!("safe: {what} for {key} recorded"),
                Safe::SameAsRecorded => {
                    format!("safe: {what} for {key} is the very message already recorded")
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Err(CheckError::Refused(refusal)) => Err(CliError::new(
            ErrorKind::VerificationFailed,
            format!("refused to sign {what} for {key}: {refusal}"),
        )
        .with_hint("signing it could get the validator slashed; nothing was recorded")),
        Err(CheckError::Db(err)) => Err(db_error(&config.db, err)),
    }
}

fn run_export(config: ExportConfig) -> Result<ExitCode, CliError> {
    refuse_existing_output(&config.out)?;
    if !config.db.is_file() {
        return Err(CliError::user(format!(
            "no slashing-protection database at {}",
            config.db.display()
        ))
        .with_hint("pass the --db the checks and imports used"));
    }
    let mut db = open_db(&config.db, config.genesis_validators_root)?;
    let mut interchange = db
        .export(config.pubkeys.as_deref())
        .map_err(|err| db_error(&config.db, err))?;
    if config.minify {
        interchange = interchange.minify();
    }
    write_output(&config.out, &interchange)?;
    say(&format!(
        "exported {} keys from {} to {}",
        interchange.data.len(),
        config.db.display(),
        config.out.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn read_lock(path: &Path) -> Result<ClusterLock, CliError> {
    let shown = path.display();
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("failed to read the cluster lock {shown}"))
            .with_source(&err)
            .with_hint("check the path given to --lock")
    })?;
    let lock: ClusterLock = serde_json::from_str(&text).map_err(|err| {
        CliError::user(format!(
            "{shown} is not a cluster lock: {}",
            store::describe_json_error(&err)
        ))
        .with_hint("pass the cluster-lock.json the ceremony wrote")
    })?;
    if lock.compute_hash() != lock.lock_hash.0 {
        return Err(CliError::user(format!(
            "the cluster lock {shown} does not match its lock_hash"
        ))
        .with_hint(format!(
            "run `dvkg verify --lock {shown}` to see what changed"
        )));
    }
    Ok(lock)
}

/// The chain of a command over a lock: the root given on the command line,
/// else the root of the lock's network.
pub(crate) fn lock_root(lock: &ClusterLock, given: Option<Root>) -> Result<Root, CliError> {
    match given {
        Some(root) => Ok(root),
        None => lock
            .definition
            .network
            .parse::<Network>()
            .ok()
            .and_then(|n| n.genesis_validators_root())
            .map(Root)
            .ok_or_else(|| {
                CliError::user(format!(
                    "dvkg does not know the genesis validators root of the lock's network {:?}",
                    lock.definition.network
                ))
                .with_hint("pass --genesis-validators-root 0x…")
            }),
    }
}

fn run_merge(config: MergeConfig) -> Result<ExitCode, CliError> {
    refuse_existing_output(&config.out)?;
    let lock = read_lock(&config.lock)?;
    let keys = KeyMap::from_lock(&lock).map_err(|err| {
        CliError::user(format!(
            "the cluster lock {} cannot map keys",
            config.lock.display()
        ))
        .with_source(&err)
    })?;
    let root = lock_root(&lock, config.genesis_validators_root)?;
    let names: Vec<String> = config
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let histories: Vec<Interchange> = config
        .files
        .iter()
        .map(|path| read_file(path, "slashing-protection file"))
        .collect::<Result<_, _>>()?;
    let inputs: Vec<MergeInput<'_>> = names
        .iter()
        .zip(&histories)
        .map(|(name, interchange)| MergeInput { name, interchange })
        .collect();
    let merged = merge(&inputs, &keys, config.keyed_by, root).map_err(|err| {
        CliError::user("refused to merge: nothing was written")
            .with_source(&err)
            .with_hint(
                "every file must be for the lock's chain and hold only keys of this cluster's lock",
            )
    })?;
    write_output(&config.out, &merged)?;
    let keyed = match config.keyed_by {
        KeyedBy::Operator(operator) => format!("operator {operator}'s share keys"),
        KeyedBy::Validators => "the validator keys".to_owned(),
    };
    say(&format!(
        "merged {} files into {}: {} validators keyed by {keyed}",
        config.files.len(),
        config.out.display(),
        merged.data.len()
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<SlashingCommand, clap::Error> {
        let mut full = vec!["dvkg", "slashing"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).map(|cli| match cli.command {
            Command::Slashing(command) => command,
            other => panic!("parsed as {other:?}"),
        })
    }

    const KEY: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";

    #[test]
    fn the_chain_is_one_of_two_flags() {
        let gvr = format!("0x{}", "00".repeat(32));
        assert!(parse(&["import", "--db", "d", "f.json"]).is_err());
        assert!(
            parse(&[
                "import",
                "--db",
                "d",
                "--network",
                "mainnet",
                "--genesis-validators-root",
                &gvr,
                "f.json"
            ])
            .is_err()
        );
        let SlashingCommand::Import(args) =
            parse(&["import", "--db", "d", "--network", "hoodi", "f.json"]).unwrap()
        else {
            panic!()
        };
        let config = ImportConfig::from_args(args).unwrap();
        assert_eq!(
            config.genesis_validators_root.to_string(),
            "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f"
        );
        let SlashingCommand::Import(args) = parse(&[
            "import",
            "--db",
            "d",
            "--network",
            "dev:0x10000910",
            "f.json",
        ])
        .unwrap() else {
            panic!()
        };
        let err = ImportConfig::from_args(args).unwrap_err();
        assert!(err.message.contains("custom network"), "{}", err.message);
    }

    #[test]
    fn check_flags_are_validated() {
        let gvr = format!("0x{}", "00".repeat(32));
        let SlashingCommand::CheckAttestation(args) = parse(&[
            "check-attestation",
            "--db",
            "d",
            "--genesis-validators-root",
            &gvr,
            "--pubkey",
            KEY,
            "--source-epoch",
            "1",
            "--target-epoch",
            "2",
            "--signing-root",
            &gvr,
        ])
        .unwrap() else {
            panic!()
        };
        let config = CheckConfig::from_attestation_args(args).unwrap();
        assert_eq!(
            config.message,
            Message::Attestation {
                source: 1,
                target: 2,
                signing_root: SigningRoot::NULL
            }
        );
        let SlashingCommand::CheckBlock(args) = parse(&[
            "check-block",
            "--db",
            "d",
            "--genesis-validators-root",
            &gvr,
            "--pubkey",
            "0x1234",
            "--slot",
            "1",
        ])
        .unwrap() else {
            panic!()
        };
        let err = CheckConfig::from_block_args(args).unwrap_err();
        assert!(err.message.contains("--pubkey"), "{}", err.message);
        // A slot SQLite cannot hold is a usage error.
        assert!(
            parse(&[
                "check-block",
                "--db",
                "d",
                "--genesis-validators-root",
                &gvr,
                "--pubkey",
                KEY,
                "--slot",
                "9223372036854775808",
            ])
            .is_err()
        );
    }

    #[test]
    fn merge_needs_exactly_one_keying() {
        assert!(parse(&["merge", "--lock", "l", "a.json", "--out", "o"]).is_err());
        assert!(
            parse(&[
                "merge",
                "--lock",
                "l",
                "--for-operator",
                "1",
                "--group-keys",
                "a.json",
                "--out",
                "o"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "merge",
                "--lock",
                "l",
                "--for-operator",
                "0",
                "a.json",
                "--out",
                "o"
            ])
            .is_err()
        );
        let SlashingCommand::Merge(args) = parse(&[
            "merge",
            "--lock",
            "l",
            "--for-operator",
            "2",
            "a.json",
            "b.json",
            "--out",
            "o",
        ])
        .unwrap() else {
            panic!()
        };
        let config = MergeConfig::from_args(args).unwrap();
        assert_eq!(config.keyed_by, KeyedBy::Operator(2));
        assert_eq!(config.files.len(), 2);
    }
}
