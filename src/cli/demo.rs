//! `dvkg demo`: a whole ceremony of N operators in one process, each on its
//! own loopback QUIC endpoint with its own fresh identity, then `verify` on
//! every operator's outputs.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rand::rngs::OsRng;

use super::ceremony::{CeremonyConfig, run_operator};
use crate::ceremony::definition::ssv::{NewSsv, SsvOperator};
use crate::ceremony::definition::{ClusterDefinition, NewDefinition, NewSplit, OperatorRecord};
use crate::ceremony::driver::Quiet;
use crate::ceremony::outputs::KeystoreOptions;
use crate::ceremony::{OperatorId, Params};
use crate::crypto::identity::IdentityKey;
use crate::error::CliError;
use crate::eth::keystore::{KdfParams, SaltMode};
use crate::eth::network::Network;
use crate::eth::{ExecutionAddress, Gwei, WithdrawalKind};
use crate::identity::OperatorIdentity;
use crate::net::Peer;
use crate::ssv::{CreatedAt, OperatorPrivateKey};
use crate::store::{self, sealed};

/// The demo's withdrawal address (a well-known test address; change it with
/// --withdrawal-address for anything real).
pub const DEMO_WITHDRAWAL_ADDRESS: &str = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad";

/// Arguments of `dvkg demo`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg demo
  dvkg demo --operators 7 --validators 10 --out demo-output
  dvkg demo --ssv --operators 4
  dvkg demo --reshare-to 5")]
pub struct DemoArgs {
    /// Number of operators.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub operators: u64,
    /// Signatures needed per validator (default ceil(2n/3)).
    #[arg(long, value_name = "T")]
    pub threshold: Option<u64>,
    /// Number of validators.
    #[arg(long, value_name = "V", default_value_t = 2)]
    pub validators: u64,
    /// Network of the deposits.
    #[arg(long, value_name = "NAME", default_value = "hoodi")]
    pub network: String,
    /// Withdrawal address of the validators.
    #[arg(long, value_name = "ADDRESS", default_value = DEMO_WITHDRAWAL_ADDRESS)]
    pub withdrawal_address: String,
    /// Withdrawal credential type: 0x01 or 0x02 (compounding); the same
    /// default as `dvkg definition new`.
    #[arg(long, value_name = "TYPE", default_value = super::definition::DEFAULT_WITHDRAWAL_TYPE)]
    pub withdrawal_type: String,
    /// Output directory (one subdirectory per operator); must not exist.
    #[arg(long, value_name = "DIR", default_value = "dvkg-demo")]
    pub out: PathBuf,
    /// Make an SSV cluster: demo SSV operator keys (RSA-2048) and ids,
    /// shares at those ids, and a keyshares.json at every operator. Needs
    /// 4, 7, 10 or 13 operators.
    #[arg(long)]
    pub ssv: bool,
    /// The SSV owner address (with --ssv; default: the withdrawal address).
    #[arg(long, value_name = "ADDRESS", requires = "ssv")]
    pub ssv_owner: Option<String>,
    /// The owner's first SSV nonce (with --ssv).
    #[arg(long, value_name = "N", requires = "ssv", default_value_t = 0)]
    pub ssv_nonce: u64,
    /// Split these existing validator keys (a directory of EIP-2335
    /// keystores) instead of making new ones: a dealer deals them to the
    /// operators, and `--validators` is the number of keystores.
    #[arg(long, value_name = "DIR")]
    pub split_keystores: Option<PathBuf>,
    /// The password of every keystore in --split-keystores (without it,
    /// each keystore's keystore-<name>.txt beside it).
    #[arg(long, value_name = "FILE", requires = "split_keystores")]
    pub keystore_password_file: Option<PathBuf>,
    /// After the DKG, reshare its keys to this many operators: the first
    /// old operators continue, new ones join, every old operator deals.
    /// Writes `dkg/` and `reshare/` under --out and verifies both.
    #[arg(long, value_name = "N2", conflicts_with = "split_keystores")]
    pub reshare_to: Option<u64>,
    /// The reshare's threshold (with --reshare-to; default as for a DKG of
    /// N2 operators, or SSV's).
    #[arg(long, value_name = "T2", requires = "reshare_to")]
    pub reshare_threshold: Option<u64>,
    /// Seconds to wait for any one round.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub round_timeout: u64,
    /// Make one operator misbehave (built with the `fault-injection` feature
    /// only): OPERATOR=KIND[@ROUND], e.g. 2=bad-share; the kinds are those of
    /// `dvkg ceremony --fault`.
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "OPERATOR=KIND[@ROUND]")]
    pub fault: Option<crate::ceremony::fault::OperatorFault>,
}

/// Runs `dvkg demo`.
///
/// # Errors
///
/// A user error for bad flags; the ceremony's error if it fails.
pub fn run(args: DemoArgs, quiet: bool) -> Result<ExitCode, CliError> {
    let network: Network =
        args.network
            .parse()
            .map_err(|err: crate::eth::network::NetworkError| {
                CliError::user(format!("invalid value for --network: {:?}", args.network))
                    .with_source(&err)
            })?;
    let withdrawal_address: ExecutionAddress =
        args.withdrawal_address
            .parse()
            .map_err(|err: crate::eth::credentials::AddressError| {
                CliError::user(format!(
                    "invalid value for --withdrawal-address: {:?}",
                    args.withdrawal_address
                ))
                .with_source(&err)
            })?;
    let withdrawal_kind: WithdrawalKind =
        args.withdrawal_type.parse().map_err(|reason: String| {
            CliError::user(format!("invalid value for --withdrawal-type: {reason}"))
        })?;
    let ssv_owner = match &args.ssv_owner {
        Some(text) => text.parse::<ExecutionAddress>().map_err(|err| {
            CliError::user(format!("invalid value for --ssv-owner: {text:?}")).with_source(&err)
        })?,
        None => withdrawal_address,
    };
    let default_threshold = if args.ssv {
        let n = usize::try_from(args.operators).unwrap_or(usize::MAX);
        let t = crate::ssv::threshold_for(n).ok_or_else(|| {
            CliError::user(format!(
                "invalid value for --operators with --ssv: {}",
                args.operators
            ))
            .with_hint("an SSV cluster has 4, 7, 10 or 13 operators")
        })?;
        t as u64
    } else {
        Params::default_threshold(args.operators)
    };
    let threshold = args.threshold.unwrap_or(default_threshold);
    Params::new(args.operators, threshold, args.validators).map_err(|err| {
        CliError::user("invalid ceremony size")
            .with_source(&err)
            .with_hint("check --operators, --threshold and --validators")
    })?;
    #[cfg(feature = "fault-injection")]
    if let Some(f) = &args.fault
        && u64::from(f.operator.get()) > args.operators
    {
        return Err(CliError::user(format!(
            "invalid value for --fault: operator {} is not one of the {} operators",
            f.operator, args.operators
        )));
    }
    store::check_new_dir(&args.out).map_err(|err| {
        CliError::user(format!(
            "output directory {} already exists",
            args.out.display()
        ))
        .with_source(&err)
        .with_hint("pass another --out, or remove the old demo")
    })?;

    // With --reshare-to the DKG goes to dkg/, the reshare to reshare/.
    let root = if args.reshare_to.is_some() {
        args.out.join("dkg")
    } else {
        args.out.clone()
    };
    // Fresh identities and loopback sockets, then the definition.
    let started = Instant::now();
    let ssv_operators = if args.ssv {
        Some(demo_ssv_operators(args.operators as usize)?)
    } else {
        None
    };
    // A split: the keystores' keys, and the dealer's secrets, checked
    // before anything else is made.
    let split = match &args.split_keystores {
        Some(dir) => {
            let found = crate::ceremony::split::find_keystores(dir).map_err(|err| {
                CliError::user(format!(
                    "invalid value for --split-keystores {}",
                    dir.display()
                ))
                .with_source(&err)
            })?;
            let keys: Vec<crate::wire::Bytes<48>> = found.iter().map(|k| k.pubkey()).collect();
            let passwords = match &args.keystore_password_file {
                Some(path) => {
                    crate::ceremony::split::Passwords::One(crate::eth::keystore::Password::new(
                        &super::ceremony::read_secret_file(path, "--keystore-password-file")?,
                    ))
                }
                None => crate::ceremony::split::Passwords::Beside,
            };
            let opening = Instant::now();
            let secrets =
                crate::ceremony::split::dealer_secrets(dir, &passwords, &keys).map_err(|err| {
                    CliError::user(format!(
                        "cannot deal from --split-keystores {}",
                        dir.display()
                    ))
                    .with_source(&err)
                })?;
            let salts: std::collections::HashSet<&crate::eth::keystore::SaltedKdf> =
                found.iter().map(|k| k.keystore.kdf()).collect();
            status!(
                "dvkg demo: the dealer opened {} keystores in {:.2} s ({} distinct KDF salts, one KDF each, in parallel)",
                keys.len(),
                opening.elapsed().as_secs_f64(),
                salts.len()
            );
            Some((keys, secrets))
        }
        None => None,
    };
    let mut identities = Vec::new();
    let mut sockets = Vec::new();
    let mut records = Vec::new();
    let participants = args.operators + u64::from(split.is_some());
    for i in 1..=participants {
        let dealer = i > args.operators;
        let socket = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| CliError::user("cannot bind a loopback socket").with_source(&e))?;
        let address = socket
            .local_addr()
            .map_err(|e| CliError::internal("no local address").with_source(&e))?;
        let identity = OperatorIdentity {
            key: IdentityKey::generate(&mut OsRng),
            age: sealed::generate_identity(&mut OsRng)
                .map_err(|e| CliError::internal("age key").with_source(&e))?,
            name: if dealer {
                "demo-dealer".to_owned()
            } else {
                format!("demo-operator-{i}")
            },
            address: address.to_string(),
            ssv: ssv_operators.as_ref().filter(|_| !dealer).and_then(|list| {
                list.get(i as usize - 1).map(|(id, key)| SsvOperator {
                    operator_id: *id,
                    operator_key: key.public_key().registered().to_owned(),
                })
            }),
        };
        records.push(identity.record());
        identities.push(identity);
        sockets.push(socket);
    }
    let new_ssv = args.ssv.then(|| NewSsv {
        owner: ssv_owner,
        nonce: args.ssv_nonce,
        created_at: CreatedAt::now(),
    });
    let (known, definition) = match split {
        Some((validator_keys, secrets)) => {
            let mut operators = records.clone();
            let dealer = operators
                .pop()
                .ok_or_else(|| CliError::internal("no dealer record"))?;
            let definition = ClusterDefinition::create_split(NewSplit {
                name: "dvkg demo split".into(),
                operators,
                dealer,
                threshold: Some(threshold),
                validator_keys,
                network,
                fee_recipient: None,
                ssv: new_ssv,
            });
            (Some(secrets), definition)
        }
        None => (
            None,
            ClusterDefinition::create(NewDefinition {
                name: "dvkg demo".into(),
                operators: records.clone(),
                threshold: Some(threshold),
                validators: args.validators,
                network,
                withdrawal_kind,
                withdrawal_address,
                fee_recipient: None,
                amounts: vec![Gwei(32_000_000_000)],
                ssv: new_ssv,
            }),
        ),
    };
    let definition =
        definition.map_err(|err| CliError::user("invalid demo definition").with_source(&err))?;
    let mut known = known;
    let context = definition
        .to_context()
        .map_err(|err| CliError::user("invalid demo definition").with_source(&err))?;
    let json = definition
        .to_json_pretty()
        .map_err(|err| CliError::internal("definition").with_source(&err))?;
    std::fs::create_dir_all(&root)
        .map_err(|e| CliError::user(format!("cannot create {}", root.display())).with_source(&e))?;
    let definition_path = root.join("cluster-definition.json");
    std::fs::write(&definition_path, format!("{json}\n")).map_err(|e| {
        CliError::user(format!("cannot write {}", definition_path.display())).with_source(&e)
    })?;
    status!(
        "dvkg demo: {}{} operators (threshold {threshold}), {} validator(s) on {}, each on its own loopback QUIC endpoint",
        if known.is_some() {
            "a split of existing keys by a dealer to "
        } else {
            ""
        },
        args.operators,
        definition.validators,
        definition.network
    );
    let dealer_slot = known
        .as_ref()
        .and_then(|_| OperatorId::from_position(args.operators as usize).ok());
    let dir_of = move |me: OperatorId| -> String {
        if Some(me) == dealer_slot {
            "dealer".to_owned()
        } else {
            format!("operator-{me}")
        }
    };

    let kept: Vec<OperatorIdentity> = identities.iter().map(copy_identity).collect();
    let configs: Vec<CeremonyConfig> = identities
        .into_iter()
        .zip(sockets)
        .enumerate()
        .map(|(position, (identity, socket))| {
            let me = OperatorId::from_position(position)
                .map_err(|e| CliError::internal(e.to_string()))?;
            let listen = socket
                .local_addr()
                .map_err(|e| CliError::internal("no local address").with_source(&e))?;
            let peers = peers_except(&records, position)?;
            Ok(CeremonyConfig {
                definition: definition.clone(),
                context: context.clone(),
                identity,
                me,
                listen,
                socket: Some(socket),
                peers,
                out: root.join(dir_of(me)),
                keystores: KeystoreOptions {
                    password: None,
                    kdf: KdfParams::scrypt_default(),
                    salt_mode: SaltMode::Shared,
                },
                connect_timeout: Duration::from_secs(30),
                round_timeout: Duration::from_secs(args.round_timeout),
                relay_via: None,
                remove_stale: false,
                known: if Some(me) == dealer_slot {
                    known.take()
                } else {
                    None
                },
                #[cfg(feature = "fault-injection")]
                fault: args.fault.filter(|f| f.operator == me).map(|f| {
                    std::sync::Arc::new(crate::ceremony::fault::Injector::new(f.fault, me, false))
                }),
            })
        })
        .collect::<Result<_, CliError>>()?;

    let summaries = run_all(configs).map_err(|failures| demo_failure(&args, failures))?;
    let elapsed = started.elapsed();
    let _ = quiet;

    // Verify every operator's outputs as CI would.
    let mut all_ok = true;
    let dirs: Vec<String> = (0..summaries.len())
        .filter_map(|p| OperatorId::from_position(p).ok())
        .map(dir_of)
        .collect();
    all_ok &= verify_dirs(&root, &dirs)?;
    if let Some(keys) = &ssv_operators {
        all_ok &= check_ssv_outputs(&root, keys, &ssv_owner, args.ssv_nonce)?;
    }
    let Some(first) = summaries.first() else {
        return Err(CliError::internal("no operator finished"));
    };
    println!(
        "ceremony complete in {:.2} s (protocol {:.2} s, then outputs and keystores {:.2} s per operator): {} validator(s), lock hash {}",
        elapsed.as_secs_f64(),
        first.protocol_time.as_secs_f64(),
        first.output_time.as_secs_f64(),
        first.validators.len(),
        hex::encode(first.lock_hash)
    );
    for (v, key) in first.validators.iter().enumerate() {
        println!("  validator {v}: {key}");
    }
    println!("files:");
    println!(
        "  {}  (the definition every operator ran)",
        definition_path.display()
    );
    for (position, name) in dirs.iter().enumerate() {
        if name == "dealer" {
            println!(
                "  {}/  (the dealer's lock and transcript: it writes no secret; the keystores it split still can sign, alone)",
                root.join(name).display()
            );
        } else {
            println!(
                "  {}/  (operator {}'s lock, transcript, {}keystores, sealed share backup)",
                root.join(name).display(),
                position + 1,
                if dealer_slot.is_some() {
                    ""
                } else {
                    "deposit data, "
                }
            );
        }
    }
    println!(
        "check them again with: dvkg verify {}",
        root.join("operator-1").display()
    );
    if ssv_operators.is_some() {
        let file = root
            .join("operator-1")
            .join(crate::ceremony::keyshares::KEYSHARES_FILE);
        println!(
            "SSV: {} is the same file at every operator; the owner {} registers it (nonces from {}) with the SSV web app or SDK, once every operator has checked its slot:\n  dvkg verify --keyshares {} --ssv-owner {} --ssv-nonce {} --ssv-operator-private-key {}",
            file.display(),
            ssv_owner.to_checksum(),
            args.ssv_nonce,
            file.display(),
            ssv_owner.to_checksum(),
            args.ssv_nonce,
            root.join("operator-1").join(SSV_KEY_FILE).display(),
        );
        println!(
            "  (the demo's SSV operator keys in operator-*/{SSV_KEY_FILE} are throwaway keys made for this demo: never register operators with them)"
        );
    }
    if let Some(n2) = args.reshare_to {
        let next_nonce = args.ssv_nonce + args.validators;
        all_ok &= reshare_phase(
            &args,
            n2,
            &root,
            kept,
            ssv_operators.as_deref(),
            (&ssv_owner, next_nonce),
        )?;
    }
    if all_ok {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(
            crate::error::ErrorKind::VerificationFailed,
            "the demo's outputs did not verify",
        ))
    }
}

/// Runs `dvkg verify` on each of `dirs` under `root`, as CI would, and
/// prints a line for each; whether all passed.
fn verify_dirs(root: &std::path::Path, dirs: &[String]) -> Result<bool, CliError> {
    let mut all_ok = true;
    for name in dirs {
        let dir = root.join(name);
        let report = super::verify::check_dir(&dir, &Default::default())?;
        all_ok &= report.ok;
        status!(
            "dvkg demo: verify {}: {} checks, {}",
            dir.display(),
            report.checks.len(),
            if report.ok { "all passed" } else { "FAILED" }
        );
    }
    Ok(all_ok)
}

/// Every participant of `records` but the one at `position`, as peers.
fn peers_except(records: &[OperatorRecord], position: usize) -> Result<Vec<Peer>, CliError> {
    records
        .iter()
        .enumerate()
        .filter(|(p, _)| *p != position)
        .map(|(p, record)| {
            Ok(Peer {
                id: OperatorId::from_position(p).map_err(|e| CliError::internal(e.to_string()))?,
                name: record.name.clone(),
                key: record.identity_key,
                address: record
                    .address
                    .parse::<SocketAddr>()
                    .map_err(|e| CliError::internal(e.to_string()))?,
            })
        })
        .collect()
}

/// A copy of an identity (the demo keeps its operators' for the reshare).
fn copy_identity(identity: &OperatorIdentity) -> OperatorIdentity {
    OperatorIdentity {
        key: IdentityKey::from_seed(&identity.key.to_seed()),
        age: identity.age.clone(),
        name: identity.name.clone(),
        address: identity.address.clone(),
        ssv: identity.ssv.clone(),
    }
}

/// Runs every configured participant's ceremony in this process; the
/// summaries in slot order, or every failure by slot.
fn run_all(
    configs: Vec<CeremonyConfig>,
) -> Result<Vec<crate::ceremony::outputs::Summary>, Vec<(usize, CliError)>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            vec![(
                0,
                CliError::internal("failed to start the async runtime").with_source(&e),
            )]
        })?;
    let results = runtime
        .block_on(async {
            let stop = super::ceremony::signal_stop()?;
            let tasks: Vec<_> = configs
                .into_iter()
                .map(|config| {
                    let stop = stop.clone();
                    tokio::spawn(async move { run_operator(config, &Quiet, Some(stop)).await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await);
            }
            Ok::<_, CliError>(results)
        })
        .map_err(|e| vec![(0, e)])?;
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for (position, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(summary)) => summaries.push(summary),
            Ok(Err(err)) => failures.push((position + 1, err)),
            Err(join) => failures.push((
                position + 1,
                CliError::internal(format!("operator {} panicked: {join}", position + 1)),
            )),
        }
    }
    if failures.is_empty() {
        Ok(summaries)
    } else {
        Err(failures)
    }
}

/// The demo's reshare: the DKG in `root` reshared to `n2` operators. The
/// first old operators continue (same identity, same address), new ones
/// join, and every old operator deals from its DKG outputs; old operators
/// beyond `n2` deal and leave. Writes `reshare/` beside `root` and verifies
/// every directory.
fn reshare_phase(
    args: &DemoArgs,
    n2: u64,
    root: &std::path::Path,
    old: Vec<OperatorIdentity>,
    old_ssv: Option<&[(u64, OperatorPrivateKey)]>,
    (owner, nonce): (&ExecutionAddress, u64),
) -> Result<bool, CliError> {
    use crate::ceremony::definition::NewReshare;
    let out = args.out.join("reshare");
    let previous_path = root
        .join("operator-1")
        .join(crate::ceremony::outputs::LOCK_FILE);
    let text = store::read_text(&previous_path, store::MAX_INPUT_FILE_BYTES)
        .map_err(|e| CliError::internal("the DKG's lock").with_source(&e))?;
    let previous: crate::ceremony::lock::ClusterLock = serde_json::from_str(&text)
        .map_err(|e| CliError::internal("the DKG's lock").with_source(&e))?;
    let n_old = old.len();
    let n2 = usize::try_from(n2).unwrap_or(usize::MAX);
    let continuing = n_old.min(n2);
    // New operators' SSV registrations, at consecutive ids above the old
    // ones (distinct, and ascending in operator order as SSV requires).
    let new_count = n2.saturating_sub(n_old);
    let mut ssv_keys: Option<Vec<(u64, OperatorPrivateKey)>> = None;
    if let Some(old_keys) = old_ssv {
        let mut keys: Vec<(u64, OperatorPrivateKey)> =
            old_keys.iter().take(continuing).cloned().collect();
        let mut fresh = demo_ssv_operators(new_count)?;
        let top = old_keys.iter().map(|(id, _)| *id).max().unwrap_or(0);
        for (k, (id, _)) in fresh.iter_mut().enumerate() {
            *id = top + 1 + k as u64;
        }
        keys.extend(fresh);
        ssv_keys = Some(keys);
    }
    let mut identities: Vec<OperatorIdentity> = old;
    for k in 0..new_count {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| CliError::user("cannot bind a loopback socket").with_source(&e))?;
        let address = socket
            .local_addr()
            .map_err(|e| CliError::internal("no local address").with_source(&e))?;
        identities.push(OperatorIdentity {
            key: IdentityKey::generate(&mut OsRng),
            age: sealed::generate_identity(&mut OsRng)
                .map_err(|e| CliError::internal("age key").with_source(&e))?,
            name: format!("demo-operator-{}", n_old + k + 1),
            address: address.to_string(),
            ssv: ssv_keys.as_ref().and_then(|keys| {
                keys.get(continuing + k).map(|(id, key)| SsvOperator {
                    operator_id: *id,
                    operator_key: key.public_key().registered().to_owned(),
                })
            }),
        });
    }
    let roster: Vec<OperatorRecord> = previous
        .definition
        .operators
        .iter()
        .take(continuing)
        .cloned()
        .chain(identities.iter().skip(n_old).map(OperatorIdentity::record))
        .collect();
    let definition = ClusterDefinition::create_reshare(NewReshare {
        name: "dvkg demo reshare".into(),
        previous_lock: previous.clone(),
        operators: roster,
        dealers: (1..=n_old as u64).collect(),
        threshold: args.reshare_threshold,
        validator_indices: None,
        ssv: ssv_keys.as_ref().map(|_| NewSsv {
            owner: *owner,
            nonce,
            created_at: CreatedAt::now(),
        }),
    })
    .map_err(|err| CliError::user("invalid demo reshare").with_source(&err))?;
    let context = definition
        .to_context()
        .map_err(|err| CliError::user("invalid demo reshare").with_source(&err))?;
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError::user(format!("cannot create {}", out.display())).with_source(&e))?;
    let json = definition
        .to_json_pretty()
        .map_err(|err| CliError::internal("definition").with_source(&err))?;
    let definition_path = out.join("cluster-definition.json");
    std::fs::write(&definition_path, &json).map_err(|e| {
        CliError::user(format!("cannot write {}", definition_path.display())).with_source(&e)
    })?;
    let participants: Vec<OperatorRecord> = definition.participants().cloned().collect();
    status!(
        "dvkg demo: resharing to {n2} operators (threshold {}): {continuing} continue, {new_count} join, every one of the {n_old} old operators deals",
        definition.threshold
    );
    let holders = definition.operators.len();
    let mut configs = Vec::new();
    let mut dirs = Vec::new();
    for (position, record) in participants.iter().enumerate() {
        let me =
            OperatorId::from_position(position).map_err(|e| CliError::internal(e.to_string()))?;
        let identity = identities
            .iter()
            .find(|i| i.key.public() == record.identity_key)
            .map(copy_identity)
            .ok_or_else(|| CliError::internal("a participant without its identity"))?;
        let previous_operator = previous.definition.operator_index(&record.identity_key);
        let known = match previous_operator {
            Some(op) => {
                let bundle = root
                    .join(format!("operator-{op}"))
                    .join(crate::ceremony::outputs::share_bundle_file(op));
                Some(crate::dkg::KnownSecrets(super::restore::open_bundle(
                    &previous,
                    op,
                    &bundle,
                    &identity.age,
                )?))
            }
            None => None,
        };
        let address: SocketAddr = record
            .address
            .parse()
            .map_err(|e: std::net::AddrParseError| CliError::internal(e.to_string()))?;
        let socket = UdpSocket::bind(address).map_err(|e| {
            CliError::user(format!("cannot bind {address} again for the reshare")).with_source(&e)
        })?;
        let peers = peers_except(&participants, position)?;
        let dir = if position < holders {
            format!("operator-{me}")
        } else {
            format!(
                "dealer-{}",
                previous_operator.map_or_else(String::new, |op| op.to_string())
            )
        };
        dirs.push(dir.clone());
        configs.push(CeremonyConfig {
            definition: definition.clone(),
            context: context.clone(),
            identity,
            me,
            listen: address,
            socket: Some(socket),
            peers,
            out: out.join(&dir),
            keystores: KeystoreOptions {
                password: None,
                kdf: KdfParams::scrypt_default(),
                salt_mode: SaltMode::Shared,
            },
            connect_timeout: Duration::from_secs(30),
            round_timeout: Duration::from_secs(args.round_timeout),
            relay_via: None,
            remove_stale: false,
            known,
            #[cfg(feature = "fault-injection")]
            fault: None,
        });
    }
    let summaries = run_all(configs).map_err(|failures| demo_failure(args, failures))?;
    let mut all_ok = true;
    all_ok &= verify_dirs(&out, &dirs)?;
    if let Some(keys) = &ssv_keys {
        all_ok &= check_ssv_outputs(&out, keys, owner, nonce)?;
    }
    let same_keys = summaries.first().is_some_and(|s| {
        s.validators
            == previous
                .validators
                .iter()
                .map(|v| hex::encode(v.pubkey.0))
                .collect::<Vec<_>>()
    });
    all_ok &= same_keys;
    println!(
        "reshare complete: {} validator(s) keep their keys ({}), now shared by {n2} operators with threshold {}",
        previous.validators.len(),
        if same_keys { "checked" } else { "THEY CHANGED" },
        definition.threshold
    );
    for name in &dirs {
        println!("  {}/", out.join(name).display());
    }
    println!(
        "no reshare revokes the old shares: any {} of the old operators in {} can still sign; `dvkg retire --previous DIR --confirm-new DIR` erases one operator's copy, best effort",
        previous.definition.threshold,
        root.display()
    );
    Ok(all_ok)
}

/// The demo operator's SSV private key file, in its output directory.
pub const SSV_KEY_FILE: &str = "ssv-operator-key.pem";

/// `count` demo SSV operators: distinct ids in ascending order, spread out
/// as on the SSV network, and fresh RSA-2048 keys (generated in parallel;
/// about a second each).
fn demo_ssv_operators(count: usize) -> Result<Vec<(u64, OperatorPrivateKey)>, CliError> {
    use rand::Rng as _;
    use rayon::prelude::*;
    status!("dvkg demo: generating {count} demo SSV operator keys (RSA-2048)");
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < count {
        ids.insert(OsRng.gen_range(1..=2000u64));
    }
    let keys: Vec<OperatorPrivateKey> = (0..count)
        .into_par_iter()
        .map(|_| OperatorPrivateKey::generate(&mut OsRng))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::internal("RSA key generation failed").with_source(&e))?;
    Ok(ids.into_iter().zip(keys).collect())
}

/// Writes each demo operator's SSV private key beside its outputs (0600),
/// and checks with it that its slot of every validator in its
/// `keyshares.json` decrypts to its share, and that every operator wrote
/// the same file.
fn check_ssv_outputs(
    out: &std::path::Path,
    keys: &[(u64, OperatorPrivateKey)],
    owner: &ExecutionAddress,
    nonce: u64,
) -> Result<bool, CliError> {
    let mut all_ok = true;
    let mut first: Option<String> = None;
    for (position, (id, key)) in keys.iter().enumerate() {
        let dir = out.join(format!("operator-{}", position + 1));
        let pem = key
            .to_pkcs1_pem()
            .map_err(|e| CliError::internal("cannot encode the demo SSV key").with_source(&e))?;
        let path = dir.join(SSV_KEY_FILE);
        store::write_new_file(&path, pem.as_bytes(), 0o600).map_err(|e| {
            CliError::user(format!("cannot write {}", path.display())).with_source(&e)
        })?;
        let file = dir.join(crate::ceremony::keyshares::KEYSHARES_FILE);
        let text = store::read_text(&file, store::MAX_INPUT_FILE_BYTES).map_err(|e| {
            CliError::user(format!("cannot read {}", file.display())).with_source(&e)
        })?;
        let checks = crate::ssv::verify_keyshares(&text, owner, nonce, Some(key));
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.ok())
            .map(|c| format!("{}: {}", c.name(), c.detail()))
            .collect();
        let same = first.get_or_insert_with(|| text.clone()) == &text;
        status!(
            "dvkg demo: SSV operator {id}: {} checks of {} with its own key, {}{}",
            checks.len(),
            file.display(),
            if failed.is_empty() {
                "its slot of every validator decrypts to its share"
            } else {
                "FAILED"
            },
            if same {
                ""
            } else {
                "; NOT the same file as operator 1's"
            }
        );
        for line in &failed {
            status!("  {line}");
        }
        all_ok &= failed.is_empty() && same;
    }
    Ok(all_ok)
}

/// Reports every operator's failure, and returns the one the demo exits
/// with: the first honest operator's (the dishonest one's own is only shown).
fn demo_failure(args: &DemoArgs, failures: Vec<(usize, CliError)>) -> CliError {
    #[cfg(feature = "fault-injection")]
    let faulty = args.fault.map(|f| usize::from(f.operator.get()));
    #[cfg(not(feature = "fault-injection"))]
    let faulty: Option<usize> = None;
    let _ = args;
    let mut chosen = None;
    for (operator, err) in failures {
        let label = if Some(operator) == faulty {
            " (the faulty one)"
        } else {
            ""
        };
        eprintln!(
            "dvkg demo: operator {operator}{label}: exit {}: {}",
            err.kind.exit_code(),
            err.message
        );
        if chosen.is_none() && Some(operator) != faulty {
            chosen = Some(err);
        }
    }
    chosen.unwrap_or_else(|| CliError::internal("only the faulty operator failed"))
}
