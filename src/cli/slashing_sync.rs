//! `dvkg slashing serve` and `dvkg slashing sync`: the operators of a lock
//! exchange their slashing-protection histories, signed with their identity
//! keys, over QUIC pinned to the lock's operators ([`crate::slashing::sync`]).
//!
//! Protocol and exit codes: `ceremony-specs/slashing.md`, "Sync before
//! signing".

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::slashing::{MergeChainArgs, db_error, lock_root, open_db, read_lock, say};
use crate::ceremony::OperatorId;
use crate::ceremony::lock::ClusterLock;
use crate::crypto::identity::IdentityKey;
use crate::error::{CliError, ErrorKind};
use crate::eth::network::{ChainClock, Network};
use crate::net::Peer;
use crate::slashing::Root;
use crate::slashing::interchange::Interchange;
use crate::slashing::merge::{KeyMap, KeyedBy};
use crate::slashing::sync::{
    self, PeerFailure, ServeConfig, ServeEvent, SyncConfig, max_response_bytes,
};

/// Arguments of `dvkg slashing serve`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg slashing serve --lock out/cluster-lock.json --identity .dvkg --db slashing.db

Runs until stopped (SIGINT or SIGTERM, exit 130), answering every other
operator of the lock that runs `dvkg slashing sync`.")]
pub struct ServeArgs {
    /// The cluster lock: its operators may ask, and its keys are served.
    #[arg(long, value_name = "FILE")]
    pub lock: PathBuf,
    /// This operator's identity directory.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// The passphrase of a sealed identity, read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// This operator's slashing-protection database (must exist).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Listen on this address instead of 0.0.0.0 with this operator's port
    /// from the lock.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// The chain (default: the lock's network).
    #[command(flatten)]
    pub chain: MergeChainArgs,
    /// Misbehave on purpose (built with the `fault-injection` feature only):
    /// bad-signature or wrong-operator.
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "KIND")]
    pub fault: Option<sync::ServeFault>,
}

/// Arguments of `dvkg slashing sync`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg slashing sync --lock out/cluster-lock.json --identity .dvkg --db slashing.db

Exit 0: at least --min-peers operators' verified histories are merged; safe
to sign. Exit 4: fewer were reached (they are named); what was received is
merged, but do not sign yet. Exit 3: an operator sent an export that fails
verification (it is named and nothing of it is merged).")]
pub struct SyncArgs {
    /// The cluster lock: who to ask, and how their keys map to this
    /// operator's.
    #[arg(long, value_name = "FILE")]
    pub lock: PathBuf,
    /// This operator's identity directory.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// The passphrase of a sealed identity, read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// This operator's slashing-protection database (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// How many other operators' histories are needed (default n - t + 1:
    /// then any t operators that signed a duty include one of them).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=255))]
    pub min_peers: Option<u64>,
    /// Give up on operators that have not answered after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// The chain (default: the lock's network).
    #[command(flatten)]
    pub chain: MergeChainArgs,
}

/// An operator of a lock, loaded.
struct Member {
    lock: ClusterLock,
    keys: Arc<KeyMap>,
    me: OperatorId,
    identity: Arc<IdentityKey>,
    peers: Vec<Peer>,
    port: u16,
    root: Root,
    clock: Option<ChainClock>,
}

impl Member {
    fn load(
        lock_path: &Path,
        identity_dir: &Path,
        passphrase_file: Option<&Path>,
        chain: &MergeChainArgs,
    ) -> Result<Self, CliError> {
        let lock = read_lock(lock_path)?;
        let keys = KeyMap::from_lock(&lock).map_err(|err| {
            CliError::user(format!(
                "the cluster lock {} cannot map keys",
                lock_path.display()
            ))
            .with_source(&err)
        })?;
        let root = lock_root(&lock, chain.root()?)?;
        let clock = lock
            .definition
            .network
            .parse::<Network>()
            .ok()
            .and_then(|n| n.clock());
        let loaded = super::identity::load_identity(identity_dir, passphrase_file)?;
        let me = lock
            .definition
            .operator_index(&loaded.key.public())
            .ok_or_else(|| {
                CliError::user(format!(
                    "this identity ({}) is not an operator of the cluster lock {}",
                    loaded.key.public(),
                    lock_path.display()
                ))
                .with_hint("check --identity and --lock")
            })?;
        let resolved =
            super::ceremony::resolve_roster(&lock.definition.operators, |id, record| {
                record
                    .address
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        CliError::user(format!(
                            "cannot resolve operator {id}'s address {:?} in {}",
                            record.address,
                            lock_path.display()
                        ))
                        .with_hint("check this machine's DNS")
                    })
            })?;
        let (own, peers) = super::ceremony::split_roster(&resolved, me);
        let port = own.map(|address| address.port());
        Ok(Self {
            port: port.ok_or_else(|| CliError::internal("no address of this operator"))?,
            keys: Arc::new(keys),
            me,
            identity: Arc::new(loaded.key),
            peers,
            root,
            clock,
            lock,
        })
    }

    fn name(&self, id: OperatorId) -> String {
        self.lock
            .definition
            .operators
            .get(id.position())
            .map_or_else(
                || format!("operator {id}"),
                |r| format!("operator {id} ({})", r.name),
            )
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal("failed to start the async runtime").with_source(&e))
}

/// This operator's history for the lock's keys, minified, as JSON: what a
/// server sends. Keys of other clusters stay private.
fn export_for_lock(db: &Path, root: Root, keys: &KeyMap) -> Result<Vec<u8>, String> {
    let mut opened = crate::slashing::db::SlashingDb::open(db, root).map_err(|e| e.to_string())?;
    let mut history = opened.export(None).map_err(|e| e.to_string())?;
    history
        .data
        .retain(|record| keys.validator_of(&record.pubkey).is_some());
    history
        .minify()
        .to_json()
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}

/// Runs `dvkg slashing serve`.
///
/// # Errors
///
/// A user error (exit 1) for a bad lock, identity or database, or a port in
/// use; exit 130 once stopped by a signal, which is how it ends.
pub fn run_serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let member = Member::load(
        &args.lock,
        &args.identity,
        args.passphrase_file.as_deref(),
        &args.chain,
    )?;
    if !args.db.is_file() {
        return Err(CliError::user(format!(
            "no slashing-protection database at {}",
            args.db.display()
        ))
        .with_hint(
            "pass the --db this operator's checks and imports use; import the ceremony's \
             slashing-protection.json into a new one first",
        ));
    }
    // Fail now, not at the first request, on another chain's database.
    drop(open_db(&args.db, member.root)?);
    let listen = args.listen.unwrap_or(SocketAddr::new(
        std::net::Ipv4Addr::UNSPECIFIED.into(),
        member.port,
    ));
    let socket = UdpSocket::bind(listen).map_err(|err| {
        CliError::user(format!("cannot listen on {listen}"))
            .with_source(&err)
            .with_hint("pass --listen HOST:PORT, or free the port")
    })?;
    let db = args.db.clone();
    let root = member.root;
    let keys = member.keys.clone();
    let export: Arc<sync::ExportFn> = Arc::new(move || export_for_lock(&db, root, &keys));
    let names: BTreeMap<OperatorId, String> = member
        .peers
        .iter()
        .map(|p| (p.id, member.name(p.id)))
        .collect();
    let on_event = Arc::new(move |event: ServeEvent| match event {
        ServeEvent::Served { operator } => status!(
            "dvkg: sent this operator's history to {}",
            names.get(&operator).map_or("?", String::as_str)
        ),
        ServeEvent::Declined { operator, reason } => status!(
            "dvkg: declined a request of {}: {reason}",
            names.get(&operator).map_or("?", String::as_str)
        ),
    });
    let config = ServeConfig {
        me: member.me,
        lock_hash: member.lock.lock_hash.0,
        identity: member.identity.clone(),
        peers: member.peers.clone(),
        export,
        on_event,
        #[cfg(feature = "fault-injection")]
        fault: args.fault,
    };
    let runtime = runtime()?;
    let stopped = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|e| CliError::internal("cannot handle SIGINT").with_source(&e))?;
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|e| CliError::internal("cannot handle SIGTERM").with_source(&e))?;
        status!(
            "dvkg: {} serving the slashing-protection history of {} for lock {} on {listen}",
            member.name(member.me),
            args.db.display(),
            hex::encode(member.lock.lock_hash.0)
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<&'static str>();
        let stop = async move {
            let reason = tokio::select! {
                _ = interrupt.recv() => "interrupted",
                _ = terminate.recv() => "terminated",
            };
            let _ = tx.send(reason);
        };
        sync::serve(config, socket, stop)
            .await
            .map_err(|err| CliError::user(format!("cannot serve on {listen}")).with_source(&err))?;
        Ok::<_, CliError>(rx.await.unwrap_or("stopped"))
    })?;
    Err(CliError::new(
        ErrorKind::Interrupted,
        format!("{stopped}: stopped serving"),
    ))
}

fn list(ids: &[OperatorId], member: &Member) -> String {
    ids.iter()
        .map(|id| member.name(*id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default number of peers: `n - t + 1`, so that any `t` operators that
/// signed a duty include one of them even when this operator was one of
/// the signers, and at most the `n - 1` there are.
pub fn default_min_peers(operators: usize, threshold: usize) -> usize {
    (operators.saturating_sub(threshold) + 1).min(operators.saturating_sub(1))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reports every key of a verified history that runs beyond the current
/// epoch: kept (safety first), but it stalls signing until then.
fn report_beyond(member: &Member, histories: &BTreeMap<OperatorId, Interchange>) {
    let Some(clock) = member.clock else {
        eprintln!(
            "dvkg: warning: cannot tell whether the histories run beyond the current epoch: dvkg \
             does not know the genesis time of the lock's network {:?}",
            member.lock.definition.network
        );
        return;
    };
    let now = now_unix();
    let (slot, epoch) = (clock.slot_at(now), clock.epoch_at(now));
    for (id, history) in histories {
        for beyond in sync::beyond_now(history, slot, epoch) {
            let what = match (beyond.slot, beyond.target) {
                (Some(s), Some(t)) => format!("a block at slot {s} and epoch {t}"),
                (Some(s), None) => format!("a block at slot {s}"),
                (None, Some(t)) => format!("an attestation at epoch {t}"),
                (None, None) => continue,
            };
            eprintln!(
                "dvkg: warning: {}'s history for {} holds {what}, beyond the current slot {slot} \
                 (epoch {epoch}): kept, so this validator cannot sign until then; check that \
                 operator's clock and history",
                member.name(*id),
                beyond.pubkey.short()
            );
        }
    }
}

/// Runs `dvkg slashing sync`.
///
/// # Errors
///
/// A user error (exit 1) for a bad lock, identity, database or
/// `--min-peers`; exit 4 with fewer verified peers than needed (naming the
/// missing ones), exit 3 when a peer's export fails verification (naming
/// it). In both cases what was verified is merged first.
pub fn run_sync(args: SyncArgs) -> Result<ExitCode, CliError> {
    let member = Member::load(
        &args.lock,
        &args.identity,
        args.passphrase_file.as_deref(),
        &args.chain,
    )?;
    let operators = member.lock.definition.operators.len();
    let threshold = usize::try_from(member.lock.definition.threshold).unwrap_or(usize::MAX);
    let needed = match args.min_peers {
        None => default_min_peers(operators, threshold),
        Some(k) => {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            if k >= operators {
                return Err(CliError::user(format!(
                    "--min-peers {k} asks for more peers than the {} other operators of {}",
                    operators - 1,
                    args.lock.display()
                ))
                .with_hint(format!(
                    "pass at most {}, or omit it for n - t + 1 = {}",
                    operators - 1,
                    default_min_peers(operators, threshold)
                )));
            }
            k
        }
    };
    // Opened (or created) first: a database of another chain fails now.
    let mut db = open_db(&args.db, member.root)?;
    let socket = sync::client_socket(&member.peers).map_err(|err| {
        CliError::user("cannot open a UDP socket to reach the other operators").with_source(&err)
    })?;
    status!(
        "dvkg: {} asking {} other operators for their slashing-protection histories (needs {needed})",
        member.name(member.me),
        member.peers.len()
    );
    let runtime = runtime()?;
    let results = runtime.block_on(async {
        let config = SyncConfig {
            me: member.me,
            lock_hash: member.lock.lock_hash.0,
            identity: &member.identity,
            peers: member.peers.clone(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(args.timeout),
            max_response_bytes: max_response_bytes(member.lock.validators.len()),
            keys: &member.keys,
            genesis_validators_root: member.root,
        };
        sync::fetch_exports(&config, socket).await
    });
    let results = results.map_err(|err| {
        CliError::user("cannot set up the connection to the other operators").with_source(&err)
    })?;
    let mut verified = BTreeMap::new();
    let mut failed: Vec<(OperatorId, PeerFailure)> = Vec::new();
    for (id, result) in results {
        match result {
            Ok(history) => {
                let keys = history.data.len();
                say(&format!(
                    "ok    {}: verified history of {keys} key{}",
                    member.name(id),
                    if keys == 1 { "" } else { "s" }
                ))?;
                verified.insert(id, history);
            }
            Err(failure) => {
                say(&format!("FAIL  {}: {failure}", member.name(id)))?;
                failed.push((id, failure));
            }
        }
    }
    report_beyond(&member, &verified);
    let keyed_by = KeyedBy::Operator(member.me.position() + 1);
    let merged_from: Vec<OperatorId> = verified.keys().copied().collect();
    if !verified.is_empty() {
        let merged = sync::merge_verified(&verified, &member.keys, keyed_by, member.root).map_err(
            |err| CliError::internal("failed to merge verified histories").with_source(&err),
        )?;
        let summary = db.import(&merged).map_err(|err| db_error(&args.db, err))?;
        say(&format!(
            "merged the histories of {} into {}: {} validators keyed by operator {}'s share keys",
            list(&merged_from, &member),
            args.db.display(),
            summary.keys,
            member.me
        ))?;
    }
    let invalid: Vec<OperatorId> = failed
        .iter()
        .filter(|(_, f)| f.is_invalid())
        .map(|(id, _)| *id)
        .collect();
    let missing: Vec<OperatorId> = failed.iter().map(|(id, _)| *id).collect();
    let merged_note = if merged_from.is_empty() {
        "nothing was merged".to_owned()
    } else {
        format!(
            "the histories of {} are merged",
            list(&merged_from, &member)
        )
    };
    if !invalid.is_empty() {
        return Err(CliError::new(
            ErrorKind::Culprit,
            format!(
                "refused the export of {}: it fails verification (see FAIL above); {merged_note}",
                list(&invalid, &member)
            ),
        )
        .with_hint(
            "do not sign until that operator's node is explained; its export was signed by \
             the wrong key, for the wrong operator or request, or holds keys of another cluster",
        ));
    }
    if verified.len() < needed {
        return Err(CliError::new(
            ErrorKind::PeerTimeout,
            format!(
                "synced from {} of the {needed} operators needed: missing {}; {merged_note}, but \
                 do not sign yet",
                verified.len(),
                list(&missing, &member)
            ),
        )
        .with_hint(
            "have the missing operators run `dvkg slashing serve` with this lock, then sync again",
        ));
    }
    if !missing.is_empty() {
        say(&format!(
            "not reached: {} (not needed: {} of {needed} answered)",
            list(&missing, &member),
            verified.len()
        ))?;
    }
    say(&format!(
        "synced: {} of {} other operators (at least {needed} needed); safe to sign",
        verified.len(),
        operators - 1
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_covers_every_signing_set() {
        // 4 operators, threshold 3: any 3 signers include one of any 2
        // peers, even when this operator signed.
        assert_eq!(default_min_peers(4, 3), 2);
        assert_eq!(default_min_peers(7, 5), 3);
        assert_eq!(default_min_peers(3, 2), 2);
        // Threshold 1: all n - 1 peers, the most there are.
        assert_eq!(default_min_peers(4, 1), 3);
        for n in 2..=13 {
            for t in 1..=n {
                let k = default_min_peers(n, t);
                assert!(k < n);
                // The operators that are not among the k peers (this one
                // included) are fewer than t, so no signing set avoids
                // the peers; with t = 1 nothing can ensure it.
                assert!(n - k < t || t == 1, "n={n} t={t} k={k}");
            }
        }
    }
}
