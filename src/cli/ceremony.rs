//! `dvkg ceremony`: run the DKG with the other operators and write this
//! operator's outputs.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::OsRng;

use super::names::Names;
use crate::ceremony::OperatorId;
use crate::ceremony::definition::{ClusterDefinition, OperatorRecord};
use crate::ceremony::driver::{
    self, CeremonyError, Checkpoint, DriverConfig, Finished, Progress, Setup,
};
use crate::ceremony::outputs::{
    self, ConfirmationRecord, ConfirmationState, KeystoreOptions, UnconfirmedOperator,
};
use crate::ceremony::report::AbortReport;
use crate::ceremony::split::Passwords;
use crate::crypto::Scalar;
use crate::dkg::plan::CeremonyKind;
use crate::dkg::{Context, DkgError, KnownSecrets};
use crate::error::{CliError, ErrorKind};
use crate::eth::keystore::{KdfKind, KdfParams, Password, SaltMode};
use crate::eth::statements::EthStatements;
use crate::identity::{self, OperatorIdentity};
use crate::net::{Peer, TransportError};
use crate::store::sealed::AgeRecipient;
use crate::store::{self, StoreError};
use tracing::info;

/// Arguments of `dvkg ceremony`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg ceremony --definition cluster-definition.json --identity .dvkg --out dvkg-output
  dvkg ceremony --definition cluster-definition.json --passphrase-file passphrase.txt --password-file keystore-password.txt
  pass show dvkg/keystores | dvkg ceremony --definition cluster-definition.json --password-file -
  dvkg ceremony --definition split-definition.json --keystores validator_keys --keystore-password-file password.txt
  dvkg ceremony --definition reshare-definition.json --previous old-output

Every operator runs it at the same time. Secret files may be -, a FIFO or
<(pass show ...); a sealed identity without --passphrase-file is asked for
on the terminal.")]
pub struct CeremonyArgs {
    /// The cluster definition every operator agreed on.
    #[arg(long, value_name = "FILE")]
    pub definition: PathBuf,
    /// This operator's identity directory.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// The passphrase of a sealed identity, read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Output directory; must not exist yet.
    #[arg(long, value_name = "DIR", default_value = "dvkg-output")]
    pub out: PathBuf,
    /// Give up on operators that have not connected after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Give up on an operator whose message of a round has not arrived this
    /// many seconds after the round started. It also sets how long a network
    /// outage may last (the QUIC idle timeout) and how long one send may take
    /// (this plus the frame's size at 100 kbit/s): raise it for slow or
    /// unreliable links.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub round_timeout: u64,
    /// Listen (UDP) on this address instead of 0.0.0.0 with this operator's
    /// port from the definition: behind a port forward or in a container.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Dial every other operator through this one as well, from the start
    /// (its index in the definition, or its name): for an operator that
    /// accepts no inbound UDP, to reach another that accepts none either.
    /// The relay carries only ciphertext; TLS runs end to end, pinned as on
    /// a direct connection. Without the flag, an operator not reached
    /// directly within 10 s is dialled through every operator connected.
    #[arg(long, value_name = "OPERATOR")]
    pub relay_via: Option<String>,
    /// Encrypt the keystores with the password in this file instead of a
    /// generated one (written to validator_keys/password.txt).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Keystore key derivation: scrypt (n=2^18) or pbkdf2 (c=2^18).
    #[arg(long, value_name = "KDF", default_value = "scrypt", value_parser = ["scrypt", "pbkdf2"])]
    pub kdf: String,
    /// Give every keystore its own salt and KDF run (slow: about a second
    /// per keystore) instead of one shared salt.
    #[arg(long)]
    pub salt_per_keystore: bool,
    /// Remove the temporary output directories an interrupted earlier run
    /// of this definition left beside --out (they are only warned about
    /// otherwise).
    #[arg(long)]
    pub remove_stale: bool,
    /// A split's dealer: the directory of the EIP-2335 keystores of the
    /// validators the definition splits (matched by public key).
    #[arg(long, value_name = "DIR")]
    pub keystores: Option<PathBuf>,
    /// A split's dealer: the password of every keystore in --keystores
    /// (without it, each keystore's own keystore-<name>.txt beside it).
    #[arg(long, value_name = "FILE", requires = "keystores")]
    pub keystore_password_file: Option<PathBuf>,
    /// A reshare's dealer: its output directory of the previous ceremony
    /// (the previous lock and its sealed share bundle, opened with
    /// --identity). Only read, never changed.
    #[arg(long, value_name = "DIR")]
    pub previous: Option<PathBuf>,
    /// Misbehave on purpose, to test the other operators (built with the
    /// `fault-injection` feature only): KIND[@ROUND], KIND one of bad-share,
    /// identity-commitment, non-subgroup-commitment, bad-proof, equivocate,
    /// lying-complaint, bad-partial, bad-finalize, garbage, oversized, replay,
    /// stall, exit, mute, slow-write, wrong-constant (a split's dealer).
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "KIND[@ROUND]")]
    pub fault: Option<crate::ceremony::fault::Fault>,
}

/// The ceremony, validated and loaded, before any network activity.
pub struct CeremonyConfig {
    /// The definition.
    pub definition: ClusterDefinition,
    /// The protocol context.
    pub context: Context,
    /// This operator's identity.
    pub identity: OperatorIdentity,
    /// Its index.
    pub me: OperatorId,
    /// Where to listen.
    pub listen: SocketAddr,
    /// A socket already bound to `listen`, if the caller holds one.
    pub socket: Option<UdpSocket>,
    /// The other operators.
    pub peers: Vec<Peer>,
    /// Where to write.
    pub out: PathBuf,
    /// Keystore options.
    pub keystores: KeystoreOptions,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Per-round timeout.
    pub round_timeout: Duration,
    /// Dial every peer through this operator too (`--relay-via`).
    pub relay_via: Option<OperatorId>,
    /// Remove this definition's stale temporary output directories.
    pub remove_stale: bool,
    /// A split dealer's secrets: the validator keys it deals.
    pub known: Option<KnownSecrets>,
    /// The fault this operator injects, if any.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Arc<crate::ceremony::fault::Injector>>,
}

/// Loads and checks a definition, naming the file on failure.
///
/// # Errors
///
/// A user error naming the file and the field.
pub fn load_definition(path: &Path) -> Result<(ClusterDefinition, Context), CliError> {
    let shown = path.display();
    let definition = ClusterDefinition::load(path).map_err(|err| {
        CliError::user(format!("invalid cluster definition {shown}"))
            .with_source(&err)
            .with_hint(
                "check the file against the creator's copy, or run `dvkg definition verify` on it",
            )
    })?;
    let context = definition.to_context().map_err(|err| {
        CliError::user(format!("invalid cluster definition {shown}")).with_source(&err)
    })?;
    Ok((definition, context))
}

/// Resolves an operator's `host:port`.
///
/// # Errors
///
/// A user error naming the operator and its address.
pub fn resolve(operator: OperatorId, address: &str) -> Result<SocketAddr, CliError> {
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            CliError::user(format!(
                "cannot resolve operator {operator}'s address {address:?}"
            ))
            .with_hint("check the address in the cluster definition and this machine's DNS")
        })
}

/// The mesh a definition describes, seen from participant `me`: every
/// participant's resolved address (checked by [`check_advertised`]), where
/// `me` listens by default (every interface, at its advertised port), and
/// the others as peers to dial.
pub struct Mesh {
    /// Every participant's address, `me`'s included.
    pub addresses: std::collections::BTreeMap<OperatorId, SocketAddr>,
    /// `0.0.0.0` at `me`'s advertised port.
    pub listen: SocketAddr,
    /// Every other participant, in slot order.
    pub peers: Vec<Peer>,
}

impl Mesh {
    /// Resolves and checks every participant's address in `definition`
    /// (read from `path`, for messages).
    ///
    /// # Errors
    ///
    /// A user error naming an address that does not resolve or that the
    /// others cannot dial.
    pub fn of(
        definition: &ClusterDefinition,
        me: OperatorId,
        path: &Path,
    ) -> Result<Self, CliError> {
        let resolved = resolve_roster(definition.participants(), |id, record| {
            resolve(id, &record.address)
        })?;
        check_advertised(&resolved, path)?;
        let (own, peers) = split_roster(&resolved, me);
        let own = own.ok_or_else(|| CliError::internal("no address of this operator"))?;
        Ok(Self {
            addresses: resolved.iter().map(|&(id, _, a)| (id, a)).collect(),
            listen: SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), own.port()),
            peers,
        })
    }
}

/// Every participant of `roster` (in slot order) with its address, as
/// `address` resolves it (and names the one that does not resolve).
///
/// # Errors
///
/// `address`'s error.
pub fn resolve_roster<'a>(
    roster: impl IntoIterator<Item = &'a OperatorRecord>,
    mut address: impl FnMut(OperatorId, &OperatorRecord) -> Result<SocketAddr, CliError>,
) -> Result<Vec<(OperatorId, &'a OperatorRecord, SocketAddr)>, CliError> {
    roster
        .into_iter()
        .enumerate()
        .map(|(position, record)| {
            let id = OperatorId::from_position(position)
                .map_err(|e| CliError::internal(e.to_string()))?;
            Ok((id, record, address(id, record)?))
        })
        .collect()
}

/// `me`'s own address among `resolved`, and every other participant as a
/// peer to dial, in slot order: what the ceremony, `dvkg check` and `dvkg
/// slashing sync` connect.
pub fn split_roster(
    resolved: &[(OperatorId, &OperatorRecord, SocketAddr)],
    me: OperatorId,
) -> (Option<SocketAddr>, Vec<Peer>) {
    let mut own = None;
    let mut peers = Vec::new();
    for &(id, record, address) in resolved {
        if id == me {
            own = Some(address);
        } else {
            peers.push(Peer {
                id,
                name: record.name.clone(),
                key: record.identity_key,
                address,
            });
        }
    }
    (own, peers)
}

/// Refuses advertised addresses the other operators cannot dial: an
/// unspecified one (`0.0.0.0`, `[::]`) always, and a loopback one when
/// other operators are on other hosts (a definition whose operators are all
/// on loopback is a local test, and fine).
///
/// # Errors
///
/// A user error naming the operator and its address, with a hint to
/// `--listen`.
pub fn check_advertised(
    resolved: &[(OperatorId, &OperatorRecord, SocketAddr)],
    definition: &Path,
) -> Result<(), CliError> {
    let multi_host = resolved
        .iter()
        .any(|(_, _, a)| !a.ip().is_loopback() && !a.ip().is_unspecified());
    for (id, record, address) in resolved {
        let why = if address.ip().is_unspecified() {
            "an unspecified address (every interface) is where to listen, not an address others can dial"
        } else if multi_host && address.ip().is_loopback() {
            "a loopback address is this machine only, and the other operators are on other hosts"
        } else {
            continue;
        };
        return Err(CliError::user(format!(
            "operator {id} ({})'s address {:?} in {} cannot be dialled by the others: {why}",
            record.name,
            record.address,
            definition.display()
        ))
        .with_hint(
            "put the address (or DNS name) and UDP port the other operators reach in the record; \
             to listen on another local address or port, pass --listen HOST:PORT on that machine",
        ));
    }
    Ok(())
}

/// Reads a secret from a file (a password or passphrase): bounded, with
/// one trailing newline removed, and not empty. The file may be a FIFO or
/// a pipe, and `-` is standard input; `-` on a terminal asks without echo.
///
/// # Errors
///
/// A user error naming the flag and the file.
pub fn read_secret_file(path: &Path, flag: &str) -> Result<zeroize::Zeroizing<String>, CliError> {
    if store::is_stdin(path) && super::secret::can_prompt() {
        return super::secret::prompt(&format!("{flag} (not echoed)"));
    }
    store::read_secret_text(path).map_err(|err| match err {
        StoreError::Empty { .. } => CliError::user(format!("{flag} {} is empty", path.display())),
        other => {
            CliError::user(format!("failed to read {flag} {}", path.display())).with_source(&other)
        }
    })
}

/// The fewest characters a new keystore password may have (the EthStaker
/// deposit CLI's rule).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Reads the password for new keystores: as [`read_secret_file`], and at
/// least [`MIN_PASSWORD_CHARS`] characters that are not all whitespace.
///
/// # Errors
///
/// A user error naming the flag and the file.
pub fn read_new_password(path: &Path, flag: &str) -> Result<Password, CliError> {
    let text = read_secret_file(path, flag)?;
    let chars = text.chars().count();
    if chars < MIN_PASSWORD_CHARS || text.trim().is_empty() {
        return Err(CliError::user(format!(
            "{flag} {} holds a password of {chars} character(s); a keystore password needs at least {MIN_PASSWORD_CHARS}, not all blank",
            path.display()
        ))
        .with_hint("write a longer password to the file, or omit the flag to have one generated"));
    }
    Ok(Password::new(&text))
}

impl CeremonyConfig {
    /// Validates the arguments and loads the definition and identity.
    ///
    /// # Errors
    ///
    /// A user error naming the flag, file or field at fault.
    pub fn from_args(args: CeremonyArgs) -> Result<Self, CliError> {
        store::check_new_dir(&args.out).map_err(|err| {
            CliError::user(format!(
                "output directory {} already exists",
                args.out.display()
            ))
            .with_source(&err)
            .with_hint("pass another --out; dvkg never overwrites a ceremony's outputs")
        })?;
        let (definition, context) = load_definition(&args.definition)?;
        let identity =
            super::identity::load_identity(&args.identity, args.passphrase_file.as_deref())?;
        let me = participant_slot(&definition, &identity, &args.definition)?;
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = &args.fault {
            use crate::ceremony::fault::FaultKind;
            let deals_known = context.plan.deals(me) && context.plan.known_constant(me).is_some();
            let needs = match fault.kind {
                FaultKind::WrongConstant => Some((CeremonyKind::Split, "a split's dealer")),
                FaultKind::RawShare | FaultKind::WrongLambda => {
                    Some((CeremonyKind::Reshare, "a reshare's dealer"))
                }
                _ => None,
            };
            if let Some((kind, who)) = needs
                && !(deals_known && context.plan.kind() == kind)
            {
                return Err(CliError::user(format!(
                    "--fault {} is for {who}, and this identity is operator {me} of a {} ceremony",
                    fault.kind.name(),
                    context.plan.kind()
                ))
                .with_hint("inject it into a dealer's dvkg ceremony"));
            }
        }
        let known = dealer_inputs(&definition, &context, me, &args, &identity)?;
        let mesh = Mesh::of(&definition, me, &args.definition)?;
        let listen = args.listen.unwrap_or(mesh.listen);
        let peers = mesh.peers;
        let relay_via = args
            .relay_via
            .as_deref()
            .map(|wanted| relay_operator(&definition, me, wanted))
            .transpose()?
            .flatten();
        let password = args
            .password_file
            .as_deref()
            .map(|p| read_new_password(p, "--password-file"))
            .transpose()?;
        let kind = if args.kdf == "pbkdf2" {
            KdfKind::Pbkdf2
        } else {
            KdfKind::Scrypt
        };
        Ok(Self {
            definition,
            context,
            identity,
            me,
            listen,
            socket: None,
            peers,
            out: args.out,
            keystores: KeystoreOptions {
                password,
                kdf: KdfParams::default_for(kind),
                salt_mode: if args.salt_per_keystore {
                    SaltMode::PerKeystore
                } else {
                    SaltMode::Shared
                },
            },
            connect_timeout: Duration::from_secs(args.timeout),
            round_timeout: Duration::from_secs(args.round_timeout),
            relay_via,
            remove_stale: args.remove_stale,
            known,
            #[cfg(feature = "fault-injection")]
            fault: args
                .fault
                .map(|fault| Arc::new(crate::ceremony::fault::Injector::new(fault, me, true))),
        })
    }
}

/// This identity's slot in `definition` (read from `path`), or the error
/// that says it is no operator of it.
pub(crate) fn participant_slot(
    definition: &ClusterDefinition,
    identity: &crate::identity::OperatorIdentity,
    path: &Path,
) -> Result<OperatorId, CliError> {
    definition
        .participant_index(&identity.key.public())
        .ok_or_else(|| {
            CliError::user(format!(
                "this identity ({}) is not an operator of the cluster definition {}",
                identity.key.public(),
                path.display()
            ))
            .with_hint("check --identity, or ask the cluster creator to add this operator's record")
        })
}

/// The operator `--relay-via` names: an index of the definition or an
/// operator's name. `None` when it names this operator: the relay itself
/// runs with the same flags as everyone (one command line for the whole
/// cluster), and relays for the others whatever it is passed.
fn relay_operator(
    definition: &ClusterDefinition,
    me: OperatorId,
    wanted: &str,
) -> Result<Option<OperatorId>, CliError> {
    let records: Vec<_> = definition.participants().collect();
    let position = match wanted.parse::<usize>() {
        Ok(index) => index.checked_sub(1).filter(|&p| p < records.len()),
        Err(_) => records.iter().position(|r| r.name == wanted),
    };
    let names: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(p, r)| format!("{} ({})", p + 1, r.name))
        .collect();
    let Some(position) = position else {
        return Err(CliError::user(format!(
            "--relay-via {wanted:?} is no operator of the cluster definition"
        ))
        .with_hint(format!(
            "pass an operator's index or name: {}",
            names.join(", ")
        )));
    };
    let id = OperatorId::from_position(position).map_err(|e| CliError::internal(e.to_string()))?;
    if id == me {
        tracing::info!("--relay-via names this operator: it relays for the others");
        return Ok(None);
    }
    Ok(Some(id))
}

/// A split dealer's secrets, from `--keystores`, before any connection; and
/// `--keystores` refused from anyone else.
fn dealer_inputs(
    definition: &ClusterDefinition,
    context: &Context,
    me: OperatorId,
    args: &CeremonyArgs,
    identity: &identity::OperatorIdentity,
) -> Result<Option<KnownSecrets>, CliError> {
    let deals_known = context.plan.deals(me) && context.plan.known_constant(me).is_some();
    if definition.kind == CeremonyKind::Reshare {
        if args.keystores.is_some() {
            return Err(CliError::user(
                "--keystores is for a split's dealer; a reshare's dealers pass --previous DIR",
            ));
        }
        return previous_inputs(definition, me, deals_known, args, identity);
    }
    if args.previous.is_some() {
        return Err(CliError::user(format!(
            "--previous is for a reshare's dealers, and {} is a {} definition",
            args.definition.display(),
            definition.kind
        ))
        .with_hint("leave out --previous"));
    }
    let Some(dir) = &args.keystores else {
        if deals_known {
            return Err(CliError::user(format!(
                "this identity is the dealer of the split {}, and deals the validators' existing keys: pass --keystores DIR",
                args.definition.display()
            ))
            .with_hint("give the directory of the validators' EIP-2335 keystores, and --keystore-password-file F (or a keystore-<name>.txt beside each)"));
        }
        return Ok(None);
    };
    if !deals_known {
        return Err(CliError::user(format!(
            "--keystores is for a split's dealer, and this identity is operator {me} of a {} ceremony",
            definition.kind
        ))
        .with_hint("leave out --keystores and --keystore-password-file"));
    }
    let passwords = match &args.keystore_password_file {
        Some(path) => Passwords::One(Password::new(&read_secret_file(
            path,
            "--keystore-password-file",
        )?)),
        None => Passwords::Beside,
    };
    let keys = definition.validator_keys.as_deref().unwrap_or_default();
    status!(
        "dvkg: the dealer opens {} keystores in {}",
        keys.len(),
        dir.display()
    );
    let secrets = crate::ceremony::split::dealer_secrets(dir, &passwords, keys).map_err(|err| {
        CliError::user(format!("cannot deal from --keystores {}", dir.display()))
            .with_source(&err)
            .with_hint("the keystores must be exactly the definition's validators, each opening with its password")
    })?;
    Ok(Some(secrets))
}

/// A reshare dealer's secrets: its shares of the validators reshared, from
/// its previous output directory (`--previous DIR`: the previous lock, which
/// must be the definition's, and its sealed share bundle), before any
/// connection. `--previous` is refused from anyone who does not deal.
fn previous_inputs(
    definition: &ClusterDefinition,
    me: OperatorId,
    deals: bool,
    args: &CeremonyArgs,
    identity: &identity::OperatorIdentity,
) -> Result<Option<KnownSecrets>, CliError> {
    let Some(dir) = &args.previous else {
        if deals {
            return Err(CliError::user(format!(
                "this identity deals in the reshare {} (participant {me}): pass --previous DIR, its output directory of the previous ceremony",
                args.definition.display()
            ))
            .with_hint("the directory holds the previous cluster-lock.json and this operator's shares-operator-<i>.age; it is only read"));
        }
        return Ok(None);
    };
    if !deals {
        return Err(CliError::user(format!(
            "--previous is for a reshare's dealers, and this identity is participant {me}, which does not deal"
        ))
        .with_hint("leave out --previous"));
    }
    let valid = definition.validate().map_err(|err| {
        CliError::internal(format!("a loaded definition does not validate: {err}"))
    })?;
    let reshare = valid
        .reshare
        .ok_or_else(|| CliError::internal("a reshare definition without its previous lock"))?;
    let lock_path = dir.join(crate::ceremony::outputs::LOCK_FILE);
    let text = store::read_text(&lock_path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!(
            "cannot read the previous lock {}",
            lock_path.display()
        ))
        .with_source(&err)
        .with_hint("--previous names this operator's output directory of the previous ceremony")
    })?;
    let lock: crate::ceremony::lock::ClusterLock = serde_json::from_str(&text).map_err(|err| {
        CliError::user(format!("{} is not a cluster lock", lock_path.display())).with_source(&err)
    })?;
    if lock.compute_hash() != lock.lock_hash.0 || lock.lock_hash != reshare.previous.lock_hash {
        return Err(CliError::user(format!(
            "{} is not the previous lock the definition names (lock hash {}, the definition's {})",
            lock_path.display(),
            hex::encode(lock.lock_hash.0),
            hex::encode(reshare.previous.lock_hash.0)
        ))
        .with_hint("pass the output directory of the ceremony the reshare continues"));
    }
    let operator = lock
        .definition
        .operator_index(&identity.key.public())
        .ok_or_else(|| {
            CliError::internal("a dealer that is not an operator of the previous lock")
        })?;
    let bundle = dir.join(crate::ceremony::outputs::share_bundle_file(operator));
    let shares = super::restore::open_bundle(&lock, operator, &bundle, &identity.age)?;
    let known: Vec<crate::crypto::Scalar> = reshare
        .subset
        .iter()
        .filter_map(|&v| shares.get(v).cloned())
        .collect();
    status!(
        "dvkg: dealing operator {operator}'s previous shares of {} validators, from {}",
        known.len(),
        bundle.display()
    );
    Ok(Some(KnownSecrets(known)))
}

/// For the `wrong-lambda` fault: a reshare dealer's Lagrange coefficient
/// over every previous operator (the wrong set, unless all of them deal).
#[cfg(feature = "fault-injection")]
fn wrong_lambda(definition: &ClusterDefinition, identity: &OperatorIdentity) -> Option<Scalar> {
    let previous = definition.previous_lock.as_deref()?;
    let position = previous
        .definition
        .operators
        .iter()
        .position(|o| o.identity_key == identity.key.public())?;
    crate::dkg::signing::lagrange_at_zero(&previous.share_indices)
        .into_iter()
        .nth(position)
}

/// Progress bars on stderr, one per round; hidden when stderr is not a
/// terminal or with `--quiet`.
///
/// Off a terminal (systemd, docker, nohup) connecting prints plain lines
/// instead: one per peer as it connects, and every
/// [`WAITING_LINE_SECS`] one naming who is still missing and when the wait
/// ends.
pub struct Bars {
    me: OperatorId,
    hidden: bool,
    terminal: bool,
    bar: std::sync::Mutex<Option<ProgressBar>>,
    /// When the last "still waiting" line was printed (off a terminal).
    last_line: std::sync::Mutex<Option<Duration>>,
}

/// How often, off a terminal, a line names the operators still missing.
pub const WAITING_LINE_SECS: u64 = 30;

impl Bars {
    /// Bars for operator `me`.
    pub fn new(me: OperatorId, quiet: bool) -> Self {
        use std::io::IsTerminal as _;
        Self {
            me,
            hidden: quiet,
            terminal: std::io::stderr().is_terminal(),
            bar: std::sync::Mutex::new(None),
            last_line: std::sync::Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        if let Ok(mut guard) = self.bar.lock() {
            f(&mut guard);
        }
    }
}

impl Progress for Bars {
    fn round(&self, round: u8, name: &str, total: usize) {
        let target = if self.hidden || !self.terminal {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} {msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("operator {}", self.me));
        bar.set_message(format!("round {round}: {name}"));
        // The elapsed time moves even while nothing arrives.
        bar.enable_steady_tick(Duration::from_secs(1));
        self.with(|slot| {
            if let Some(old) = slot.replace(bar) {
                old.finish();
            }
        });
    }

    fn tick(&self, _round: u8) {
        self.with(|slot| {
            if let Some(bar) = slot {
                bar.inc(1);
            }
        });
    }

    fn done(&self, _round: u8) {
        self.with(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish();
            }
        });
    }

    fn connected(&self, peer: &str, how: &str) {
        if !self.hidden && !self.terminal {
            eprintln!("dvkg: operator {}: connected to {peer}: {how}", self.me);
        }
    }

    fn waiting(&self, missing: &[String], elapsed: Duration, remaining: Duration) {
        if self.hidden || missing.is_empty() {
            return;
        }
        let names = missing.join(", ");
        if self.terminal {
            self.with(|slot| {
                if let Some(bar) = slot {
                    bar.set_message(format!("round 0: connecting; waiting for {names}"));
                }
            });
            return;
        }
        let due = match self.last_line.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|at| {
                    elapsed.saturating_sub(at) >= Duration::from_secs(WAITING_LINE_SECS)
                }) && elapsed >= Duration::from_secs(WAITING_LINE_SECS);
                if due {
                    *last = Some(elapsed);
                }
                due
            }
            Err(_) => false,
        };
        if due {
            eprintln!(
                "dvkg: operator {}: still waiting for {names} after {} s; giving up in {} s (--timeout)",
                self.me,
                elapsed.as_secs(),
                remaining.as_secs()
            );
        }
    }
}

/// The exit code class of a protocol failure. Exhaustive on purpose: a
/// new variant must decide.
pub fn protocol_error_kind(err: &DkgError) -> ErrorKind {
    match err {
        DkgError::WrongMessageSet { .. } | DkgError::Local(_) => ErrorKind::Internal,
        // One of two operators is at fault, and nothing shows which; an
        // operator with another definition is a coordination mistake.
        DkgError::ConflictingHellos { .. } | DkgError::DefinitionMismatch { .. } => {
            ErrorKind::Unproven
        }
        DkgError::BadSignature { .. }
        | DkgError::WrongSession { .. }
        | DkgError::WrongMessage { .. }
        | DkgError::InvalidPoint { .. }
        | DkgError::InvalidScalar { .. }
        | DkgError::WrongCount { .. }
        | DkgError::InvalidProof { .. }
        | DkgError::WrongConstant { .. }
        | DkgError::InvalidShare { .. }
        | DkgError::SharesForAnotherDeal { .. }
        | DkgError::Equivocation { .. }
        | DkgError::HelloEchoMismatch { .. }
        | DkgError::FalseComplaint { .. }
        | DkgError::InvalidReceipt { .. }
        | DkgError::InvalidPartialSignature { .. }
        | DkgError::FinalizeMismatch { .. } => ErrorKind::Culprit,
    }
}

/// The exit code class of a ceremony failure. Exhaustive on purpose.
pub fn ceremony_error_kind(err: &CeremonyError) -> ErrorKind {
    match err {
        CeremonyError::Protocol(err) => protocol_error_kind(err),
        CeremonyError::Malformed { .. } | CeremonyError::PeerAbortProven { .. } => {
            ErrorKind::Culprit
        }
        CeremonyError::Silent { .. } | CeremonyError::Isolated { .. } => ErrorKind::PeerTimeout,
        CeremonyError::Transport(err) => match err {
            TransportError::Endpoint { .. } | TransportError::Tls(_) => ErrorKind::User,
            TransportError::Unreachable { .. }
            | TransportError::Timeout { .. }
            | TransportError::PeerClosed { .. }
            | TransportError::Send { .. }
            | TransportError::SendTimeout { .. } => ErrorKind::PeerTimeout,
            TransportError::BadFrame { .. } => ErrorKind::Culprit,
            // A peer with another definition: a coordination mistake; an
            // abort report that was not explained: a claim.
            TransportError::OtherCeremony { .. } | TransportError::PeerAborted { .. } => {
                ErrorKind::Unproven
            }
        },
        CeremonyError::PeerAbortClaimed { report, .. } => {
            if report.missing.is_some() {
                ErrorKind::PeerTimeout
            } else {
                ErrorKind::Unproven
            }
        }
        CeremonyError::Internal(_) => ErrorKind::Internal,
        CeremonyError::Stopped { .. } => ErrorKind::Interrupted,
        CeremonyError::Checkpoint { .. } => ErrorKind::User,
        #[cfg(feature = "fault-injection")]
        CeremonyError::Injected(_) => ErrorKind::User,
    }
}

/// The hint that says how to recover shares kept in a pending file.
fn pending_hint(pending: &Path) -> String {
    format!(
        "this operator's shares are safe in {}: if another operator holds a lock (it completed), \
         recover them with `dvkg restore --pending {} --lock THEIR_cluster-lock.json --out DIR`, \
         then run `dvkg check` with every operator before anyone deposits",
        pending.display(),
        pending.display()
    )
}

/// Turns a ceremony failure into the user's report, with its exit code;
/// `me` is this operator (never told to check itself), `pending` its
/// pending recovery file, if it was written.
pub fn ceremony_error(
    err: &CeremonyError,
    definition: &ClusterDefinition,
    me: OperatorId,
    report: Option<(&Path, &AbortReport)>,
    pending: Option<&Path>,
) -> CliError {
    let kind = ceremony_error_kind(err);
    let names = Names::new(definition);
    let who = |id: OperatorId| names.at(id);
    let text = match err {
        CeremonyError::Transport(transport) => names.transport(transport),
        other => other.to_string(),
    };
    let mut out = CliError::new(kind, format!("ceremony aborted: {text}"));
    let written = if pending.is_some() {
        "its shares were kept in the pending file below"
    } else {
        "no key material was written"
    };
    let slow = "raise --round-timeout if the links are only slow (it sets how long a round, an \
                outage and a send may last; ceremony-specs/formats.md §10.1)";
    if let CeremonyError::Transport(TransportError::OtherCeremony { peer, theirs, ours }) = err {
        out = out.with_hint(format!(
            "a coordination mistake, not a fault: {} runs a definition with hash {theirs}, this \
             machine {ours}; agree on one definition file (every operator prints its hash when it \
             starts) and re-run the ceremony",
            who(*peer)
        ));
    } else if let CeremonyError::Transport(TransportError::SendTimeout { peer, .. }) = err {
        out = out.with_hint(format!(
            "this machine could not get its data out to {} in time: check this machine's uplink; {slow}",
            who(*peer)
        ));
    } else if let CeremonyError::Isolated { .. } = err {
        out = out.with_hint(format!(
            "every other operator went silent at once: check this machine's network (its link, \
             firewall, VPN) before blaming any of them; {slow}"
        ));
    } else if let CeremonyError::Transport(TransportError::Unreachable { missing, .. }) = err
        && missing.len() >= 2
        && missing.len() + 1 >= definition.participants().count()
    {
        out = out.with_hint(format!(
            "this machine reached none of the {} other operators, in either direction: check              this machine's network (its link, firewall, VPN, and that UDP to and from its port              passes) before blaming any of them",
            missing.len()
        ));
    } else if kind == ErrorKind::Unproven {
        out = out.with_hint(
            "no operator's fault is proven; compare the definition hashes every operator prints, then re-run the ceremony",
        );
    } else if let Some(culprit) = err.culprit().filter(|_| kind == ErrorKind::Culprit) {
        out = out.with_hint(format!("{} is at fault; {written}", who(culprit)));
    } else if let Some(missing) = err.missing().filter(|&m| m != me) {
        out = out.with_hint(format!(
            "check that {} is running `dvkg ceremony` with the same definition and that UDP \
             reaches it (or it reaches this machine); {slow}",
            who(missing)
        ));
    } else if err.missing().is_some() {
        // A peer's report names this operator as the one missing: it is
        // the peer that lost us, and this side cannot tell whose link.
        let by = match err {
            CeremonyError::PeerAbortClaimed { reporter, .. } => who(*reporter),
            _ => "another operator".into(),
        };
        out = out.with_hint(format!(
            "{by} lost this machine: check the network between the two; {slow}"
        ));
    }
    if let Some(pending) = pending {
        out = out.with_hint(pending_hint(pending));
    }
    if let Some((path, report)) = report {
        out = out.with_hint(if report.evidence.is_some() {
            format!(
                "the abort report (with the evidence) is in {}",
                path.display()
            )
        } else {
            format!("the abort report is in {}", path.display())
        });
    }
    // The protocol's and the transport's words know slots only.
    out.map_text(|text| names.label(text))
}

/// Writes an abort report next to the output directory; returns its path.
pub fn write_abort_report(out: &Path, report: &AbortReport) -> Option<PathBuf> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!(
        "{}.abort-report-operator-{}-{seconds}.json",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dvkg-output".into()),
        report.reporter
    );
    let path = out.with_file_name(name);
    let mut json = serde_json::to_string_pretty(report).ok()?;
    json.push('\n');
    // 0600: the evidence may reveal shares (a complaint reveals the shares it
    // received from the accused dealer).
    store::write_new_file(&path, json.as_bytes(), 0o600).ok()?;
    Some(path)
}

/// Keeps a holder's final shares in its pending recovery file (round 3),
/// sealed to its own age key.
struct PendingShares {
    path: PathBuf,
    recipient: AgeRecipient,
    definition_hash: crate::wire::Bytes<32>,
    me: OperatorId,
}

impl Checkpoint for PendingShares {
    fn shares_final(&self, shares: &[Scalar]) -> Result<(), String> {
        let sealed = outputs::seal_shares(self.definition_hash, self.me, shares, &self.recipient)
            .map_err(|e| e.to_string())?;
        store::write_new_file(&self.path, &sealed, 0o600).map_err(|e| e.to_string())?;
        info!(path = %self.path.display(), "shares kept in the pending recovery file");
        Ok(())
    }
}

/// Before anything else: that the output's temporary directory can be
/// made beside `out` (made, then removed again: nothing is left if the
/// ceremony never completes), room for the outputs there, no pending file
/// of an earlier run, and word about (or removal of) stale temporary
/// directories. Returns the tag of this definition's temporary directories.
fn preflight(
    out: &Path,
    context: &Context,
    me: OperatorId,
    remove_stale: bool,
) -> Result<String, CliError> {
    let tag = hex::encode(context.definition_hash.0.get(..4).unwrap_or_default());
    for (path, stale_tag) in store::stale_partials(out) {
        if remove_stale && stale_tag == tag {
            std::fs::remove_dir_all(&path).map_err(|err| {
                CliError::user(format!("cannot remove {}", path.display())).with_source(&err)
            })?;
            eprintln!(
                "dvkg: removed {}, left by an interrupted run of this definition",
                path.display()
            );
        } else {
            eprintln!(
                "dvkg: warning: {} was left by an interrupted run{}; remove it{}",
                path.display(),
                if stale_tag == tag {
                    " of this definition"
                } else {
                    ""
                },
                if stale_tag == tag {
                    " with --remove-stale"
                } else {
                    " by hand once you are sure no ceremony uses it"
                }
            );
        }
    }
    let pending = outputs::pending_file(out, me);
    if pending.symlink_metadata().is_ok() {
        return Err(CliError::user(format!(
            "{} holds this operator's shares from an earlier run",
            pending.display()
        ))
        .with_hint(pending_hint(&pending))
        .with_hint(
            "or, if that run's keys are to be discarded, move the file away and run again",
        ));
    }
    let dir = store::AtomicDir::create_tagged(out, &tag).map_err(|err| {
        CliError::user(format!(
            "cannot create the output directory beside {}",
            out.display()
        ))
        .with_source(&err)
        .with_hint("--out must name a new directory in a writable directory that exists")
    })?;
    let needed = outputs::estimated_bytes(context);
    let free = store::free_bytes(dir.temp_path()).map_err(|err| {
        CliError::user(format!(
            "cannot tell the free space beside {}",
            out.display()
        ))
        .with_source(&err)
    })?;
    drop(dir);
    if free < needed {
        return Err(CliError::user(format!(
            "not enough room for the outputs beside {}: about {} needed, {} free",
            out.display(),
            human_bytes(needed),
            human_bytes(free)
        ))
        .with_hint(
            "free some space or pass an --out on another file system, before the others start",
        ));
    }
    Ok(tag)
}

/// `n` bytes in KiB or MiB.
fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

/// A stop request fed by SIGINT and SIGTERM, for every ceremony of this
/// process. Installed once, before the keystore KDF: from then on a signal
/// no longer kills the process but stops the ceremony, which tells its
/// peers (and, during the write, waits for the write to finish).
///
/// # Errors
///
/// An internal error if the handlers cannot be installed.
pub fn signal_stop() -> Result<driver::Stop, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::watch::channel(None);
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| CliError::internal("cannot handle SIGINT").with_source(&e))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| CliError::internal("cannot handle SIGTERM").with_source(&e))?;
    tokio::spawn(async move {
        let reason = tokio::select! {
            _ = interrupt.recv() => "interrupted",
            _ = terminate.recv() => "terminated",
        };
        let _ = tx.send(Some(reason.to_owned()));
        // Keep the handlers (and the channel) alive.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}

/// Runs one operator's ceremony to its written and confirmed outputs.
///
/// # Errors
///
/// The ceremony's failure, mapped to the exit-code table. Outputs are
/// written only after success; the shares are kept in the pending file from
/// round 3 on, so that no later failure loses them.
pub async fn run_operator(
    config: CeremonyConfig,
    progress: &dyn Progress,
    stop: Option<driver::Stop>,
) -> Result<outputs::Summary, CliError> {
    let CeremonyConfig {
        definition,
        context,
        identity,
        me,
        listen,
        socket,
        peers,
        out,
        keystores,
        connect_timeout,
        round_timeout,
        relay_via,
        remove_stale,
        known,
        #[cfg(feature = "fault-injection")]
        fault,
    } = config;
    let holds = context.plan.holder_position(me).is_some();
    #[cfg(feature = "fault-injection")]
    let known = match (&fault, known) {
        (Some(injector), Some(known)) => {
            let lambda = context.plan.known_constant(me).map(|(lambda, _)| lambda);
            Some(injector.known_secrets(known, lambda, wrong_lambda(&definition, &identity)))
        }
        (_, known) => known,
    };
    let tag = preflight(&out, &context, me, remove_stale)?;
    #[cfg(feature = "fault-injection")]
    let fault_pace = fault.as_ref().and_then(|f| f.write_pace());
    let socket = match socket {
        Some(socket) => socket,
        None => UdpSocket::bind(listen).map_err(|err| {
            CliError::user(format!("cannot listen on {listen}"))
                .with_source(&err)
                .with_hint("pass --listen HOST:PORT, or free the port")
        })?,
    };
    let recipient = identity.age.to_public();
    let pending = outputs::pending_file(&out, me);
    let checkpoint = Arc::new(PendingShares {
        path: pending.clone(),
        recipient: recipient.clone(),
        definition_hash: context.definition_hash,
        me,
    });
    // The closing and confirmation waits grow with the validators (the
    // peers' outputs), and never outlast a round.
    let closing_timeout =
        driver::closing_wait(context.plan.params().validators()).min(round_timeout);
    let driver_config = DriverConfig {
        setup: Setup {
            context,
            me,
            statements: Arc::new(EthStatements),
            known,
            round_timeout,
            closing_timeout,
            checkpoint: holds.then_some(checkpoint as Arc<dyn Checkpoint>),
            stop: stop.clone(),
            #[cfg(feature = "fault-injection")]
            fault,
        },
        socket,
        peers,
        connect_timeout,
        relay_via,
    };
    #[cfg(feature = "fault-injection")]
    let pace = fault_pace;
    #[cfg(not(feature = "fault-injection"))]
    let pace: Option<Duration> = None;
    let key = Arc::new(identity.key);
    // The keystore KDF runs now, before any peer is contacted: it is slow and
    // memory-hungry, and the ceremony must not wait on it at the end.
    let started = std::time::Instant::now();
    let keystores = tokio::task::spawn_blocking(move || keystores.prepare(&mut OsRng))
        .await
        .map_err(|e| CliError::internal(format!("the keystore KDF panicked: {e}")))?
        .map_err(|err| {
            CliError::user("cannot prepare the keystore encryption").with_source(&err)
        })?;
    let kdf_time = started.elapsed();
    let started = std::time::Instant::now();
    let Finished {
        output,
        closing,
        times,
    } = match driver::run(driver_config, key, progress).await {
        Ok(finished) => finished,
        Err((err, report)) => {
            let path = write_abort_report(&out, &report);
            let kept = pending.exists().then_some(pending.as_path());
            return Err(ceremony_error(
                &err,
                &definition,
                me,
                path.as_deref().map(|p| (p, &report)),
                kept,
            ));
        }
    };
    let protocol_time = started.elapsed();
    let started = std::time::Instant::now();
    // The write is not interrupted: a signal that arrives meanwhile is acted
    // on once the outputs are complete (or rolled back).
    let shown = out.display().to_string();
    let names = Names::new(&definition);
    let lock_out = out.clone();
    let target = out.clone();
    info!(out = %shown, "writing the outputs");
    let written = tokio::task::spawn_blocking(move || {
        let mut dir = store::AtomicDir::create_tagged(&target, &tag)?;
        dir.set_pace(pace);
        let mut summary = outputs::write(
            &definition,
            &output,
            &recipient,
            &keystores,
            &mut dir,
            &mut OsRng,
        )?;
        let committing = std::time::Instant::now();
        dir.commit()?;
        summary
            .output_steps
            .push(("directory sync and rename", committing.elapsed()));
        // Freeing the ceremony's state (the transcript, the shares) is part
        // of the phase too.
        drop(output);
        Ok::<_, outputs::OutputError>(summary)
    })
    .await
    .map_err(|e| CliError::internal(format!("writing outputs panicked: {e}")))?;
    let mut summary = match written {
        Ok(summary) => summary,
        Err(err) => {
            let reason = format!("could not write its outputs: {err}");
            let (_, report) = closing
                .abandon(CeremonyError::Checkpoint { me, reason })
                .await;
            let path = write_abort_report(&out, &report);
            let mut failure =
                CliError::user(format!("failed to write the outputs to {shown}")).with_source(&err);
            if pending.exists() {
                failure = failure.with_hint(pending_hint(&pending));
            }
            if let Some(path) = path {
                failure = failure.with_hint(format!("the abort report is in {}", path.display()));
            }
            return Err(failure);
        }
    };
    info!(out = %shown, "outputs written");
    // The outputs hold the sealed bundle now: the pending file is done.
    let _ = std::fs::remove_file(&pending);
    summary.connect_time = times.connect;
    summary.protocol_time = protocol_time.saturating_sub(times.connect);
    summary.output_time = started.elapsed();
    summary.kdf_time = kdf_time;
    info!(
        "time per phase: keystore KDF {:.2} s, connect {:.2} s, {}, finish {:.2} s, closing {:.2} s, outputs {:.2} s ({})",
        kdf_time.as_secs_f64(),
        times.connect.as_secs_f64(),
        times.rounds_text(),
        times.finish.as_secs_f64(),
        times.closing.as_secs_f64(),
        summary.output_time.as_secs_f64(),
        summary
            .output_steps
            .iter()
            .map(|(step, time)| format!("{step} {:.2} s", time.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let record_path = lock_out.join(outputs::CONFIRMATION_FILE);
    if let Some(reason) = stop.as_ref().and_then(|s| s.borrow().clone()) {
        let _ = closing
            .abandon(CeremonyError::Stopped {
                me,
                reason: reason.clone(),
            })
            .await;
        return Err(CliError::new(
            ErrorKind::Interrupted,
            format!(
                "stopped ({reason}) after writing the outputs to {shown}; they are not confirmed"
            ),
        )
        .with_hint(
            "do not deposit before `dvkg check` shows every operator holds working shares",
        ));
    }
    let confirmation = closing.confirm(summary.lock_hash).await;
    let mut record = ConfirmationRecord::before_exchange(summary.lock_hash, me, &[]);
    record
        .confirmed_by
        .extend(confirmation.confirmed.iter().copied());
    record.confirmed_by.sort();
    record.unconfirmed = confirmation
        .unconfirmed
        .iter()
        .map(|(operator, why)| UnconfirmedOperator {
            operator: *operator,
            reason: why.to_string(),
        })
        .collect();
    record.state = if confirmation.complete() {
        ConfirmationState::Confirmed
    } else {
        ConfirmationState::Unconfirmed
    };
    store::replace_file(&record_path, &record.to_json(), 0o644).map_err(|err| {
        CliError::user(format!(
            "failed to record the confirmation in {}",
            record_path.display()
        ))
        .with_source(&err)
    })?;
    if !confirmation.complete() {
        let unconfirmed: Vec<String> = confirmation
            .unconfirmed
            .iter()
            .map(|(operator, why)| {
                format!(
                    "{}: {}",
                    names.name(*operator),
                    names.label(&why.to_string())
                )
            })
            .collect();
        return Err(CliError::new(
            ErrorKind::Unconfirmed,
            format!(
                "the outputs are written to {shown}, but not every operator confirmed its own: {}",
                unconfirmed.join("; ")
            ),
        )
        .with_hint(
            "do not submit the deposit data until `dvkg check` shows every operator holds working shares",
        )
        .with_hint(format!(
            "an operator whose ceremony aborted can recover its shares with `dvkg restore --pending FILE --lock {}`",
            lock_out.join(outputs::LOCK_FILE).display()
        )));
    }
    Ok(summary)
}

/// What a split's dealer is told when its part is done (formats.md §7.7).
const DEALER_WARNING: &str = "dvkg: the split is done and the keys it dealt are wiped from this process's memory, but a split cannot retire them:\n  this machine saw every key, and every keystore, copy, backup and mnemonic they came from can still sign, get the validators slashed or exit them, alone\n  the transcript proves the split was correct, never that the original keys are gone: destroy them yourself, and never run them beside the cluster";

/// What every party of a reshare is told when it is done (formats.md §7.8).
const RESHARE_WARNING: &str = "dvkg: the reshare is done: the validator keys are unchanged and the new operators hold new shares, but no reshare can revoke the old ones:\n  any previous threshold of previous operators who kept their shares can still sign, alone; once the new lock verifies, each previous operator runs `dvkg retire --previous DIR --confirm-new DIR` (best effort: it cannot reach copies)\n  the only full revocation is a new key and moving the stake";

/// Runs `dvkg ceremony`.
///
/// # Errors
///
/// See [`run_operator`].
pub fn run(args: CeremonyArgs, quiet: bool) -> Result<ExitCode, CliError> {
    let identity_dir = args.identity.clone();
    let config = CeremonyConfig::from_args(args)?;
    let out = config.out.clone();
    let me = config.me;
    let warning = match config.definition.kind {
        CeremonyKind::Split if config.known.is_some() => Some(DEALER_WARNING),
        CeremonyKind::Reshare => Some(RESHARE_WARNING),
        CeremonyKind::Dkg | CeremonyKind::Split => None,
    };
    status!(
        "dvkg: operator {me} of {} joining the ceremony (definition {}), listening on {}",
        config.context.params().operators(),
        hex::encode(config.context.definition_hash.0),
        config.listen
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal("failed to start the async runtime").with_source(&e))?;
    let progress = Bars::new(me, quiet);
    let summary = runtime.block_on(async {
        let stop = signal_stop()?;
        run_operator(config, &progress, Some(stop)).await
    })?;
    status!(
        "dvkg: ceremony complete in {:.2} s (keystore KDF {:.2} s, waiting for the others to connect {:.2} s, protocol {:.2} s, outputs and keystores {:.2} s); lock hash {}",
        (summary.kdf_time + summary.connect_time + summary.protocol_time + summary.output_time)
            .as_secs_f64(),
        summary.kdf_time.as_secs_f64(),
        summary.connect_time.as_secs_f64(),
        summary.protocol_time.as_secs_f64(),
        summary.output_time.as_secs_f64(),
        hex::encode(summary.lock_hash)
    );
    status!("dvkg: outputs in {}", out.display());
    if let Some(warning) = warning {
        eprintln!("{warning}");
    }
    for file in &summary.deposit_files {
        status!("dvkg: deposit data {}", out.join(file).display());
    }
    if let Some((owner, nonce)) = &summary.keyshares {
        let file = out.join(crate::ceremony::keyshares::KEYSHARES_FILE);
        status!(
            "dvkg: SSV keyshares {} (owner {owner}, nonces from {nonce})\n  check your own slot before registration: dvkg verify --keyshares {} --ssv-owner {owner} --ssv-nonce {nonce} --ssv-operator-private-key YOUR_SSV_KEY [--password-file FILE]\n  then the owner registers the file with the SSV web app or SDK, after `dvkg check`",
            file.display(),
            file.display(),
        );
    }
    status!(
        "{}",
        next_steps(
            &out,
            &identity_dir,
            me,
            &summary.lock_hash,
            &summary.deposit_files
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// What an operator does after a successful ceremony, in order: compare
/// the lock hash, back up the sealed share bundle, check together, and only
/// then have one party submit the deposits.
pub fn next_steps(
    out: &Path,
    identity: &Path,
    me: OperatorId,
    lock_hash: &[u8; 32],
    deposit_files: &[String],
) -> String {
    let lock = out.join(outputs::LOCK_FILE);
    let bundle = out.join(outputs::share_bundle_file(me));
    let mut steps = vec![format!(
        "compare the lock hash {} with every other operator over another channel (a call, a signed message): all must have the same",
        hex::encode(lock_hash)
    )];
    if bundle.exists() {
        steps.push(format!(
            "back up {} off this machine, with the identity in {}: together they rebuild this operator's keystores (`dvkg restore`); the keystores and passwords in {} stay on the validator machine",
            bundle.display(),
            identity.display(),
            out.join(outputs::KEYSTORE_DIR).display()
        ));
    }
    steps.push(format!(
        "run `dvkg check --lock {} --identity {}` at the same time as every other operator",
        lock.display(),
        identity.display()
    ));
    if deposit_files.is_empty() {
        steps.push(
            "nothing to deposit: these validators were not created by this ceremony".to_owned(),
        );
    } else {
        let files: Vec<String> = deposit_files
            .iter()
            .map(|f| out.join(f).display().to_string())
            .collect();
        steps.push(format!(
            "only then, one party (the cluster creator, or whoever the cluster agreed on) submits each deposit of {} once; every operator holds the same deposit data, so nobody else deposits",
            files.join(", ")
        ));
    }
    let mut text = String::from("dvkg: next steps:");
    for (i, step) in steps.iter().enumerate() {
        text.push_str(&format!("\n  {}. {step}", i + 1));
    }
    text
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::ceremony::definition::OperatorRecord;
    use crate::crypto::identity::IdentityKey;

    fn record(name: &str, address: &str) -> OperatorRecord {
        OperatorRecord {
            name: name.into(),
            identity_key: IdentityKey::generate(&mut StdRng::seed_from_u64(1)).public(),
            age_recipient: String::new(),
            address: address.into(),
            ssv: None,
        }
    }

    fn check(addresses: &[&str]) -> Result<(), CliError> {
        let records: Vec<OperatorRecord> = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| record(&format!("op{}", i + 1), a))
            .collect();
        let resolved: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    OperatorId::from_position(i).unwrap(),
                    r,
                    r.address.parse::<SocketAddr>().unwrap(),
                )
            })
            .collect();
        check_advertised(&resolved, Path::new("definition.json"))
    }

    #[test]
    fn advertised_addresses_others_cannot_dial_are_refused() {
        // All on loopback: a local test.
        check(&["127.0.0.1:9001", "127.0.0.1:9002"]).unwrap();
        check(&["10.0.0.1:9000", "10.0.0.2:9000", "[2001:db8::3]:9000"]).unwrap();
        let mixed = check(&["10.0.0.1:9000", "127.0.0.1:9000"]).unwrap_err();
        let text = format!("{mixed:?}");
        assert!(text.contains("operator 2 (op2)"), "{text}");
        assert!(text.contains("loopback"), "{text}");
        assert!(text.contains("--listen"), "{text}");
        let any = check(&["0.0.0.0:9000", "127.0.0.1:9002"]).unwrap_err();
        let text = format!("{any:?}");
        assert!(text.contains("operator 1 (op1)"), "{text}");
        assert!(text.contains("unspecified"), "{text}");
        assert!(check(&["10.0.0.1:9000", "[::]:9000"]).is_err());
    }
}
