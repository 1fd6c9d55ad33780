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
use crate::ceremony::definition::{ClusterDefinition, NewDefinition, OperatorRecord};
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
    /// Withdrawal credential type: 0x01 or 0x02.
    #[arg(long, value_name = "TYPE", default_value = "0x02")]
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

    // Fresh identities and loopback sockets, then the definition.
    let started = Instant::now();
    let ssv_operators = if args.ssv {
        Some(demo_ssv_operators(args.operators as usize)?)
    } else {
        None
    };
    let mut identities = Vec::new();
    let mut sockets = Vec::new();
    let mut records = Vec::new();
    for i in 1..=args.operators {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| CliError::user("cannot bind a loopback socket").with_source(&e))?;
        let address = socket
            .local_addr()
            .map_err(|e| CliError::internal("no local address").with_source(&e))?;
        let identity = OperatorIdentity {
            key: IdentityKey::generate(&mut OsRng),
            age: sealed::generate_identity(&mut OsRng)
                .map_err(|e| CliError::internal("age key").with_source(&e))?,
            name: format!("demo-operator-{i}"),
            address: address.to_string(),
            ssv: ssv_operators.as_ref().and_then(|list| {
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
    let definition = ClusterDefinition::create(NewDefinition {
        name: "dvkg demo".into(),
        operators: records.clone(),
        threshold: Some(threshold),
        validators: args.validators,
        network,
        withdrawal_kind,
        withdrawal_address,
        fee_recipient: None,
        amounts: vec![Gwei(32_000_000_000)],
        ssv: args.ssv.then(|| NewSsv {
            owner: ssv_owner,
            nonce: args.ssv_nonce,
            created_at: CreatedAt::now(),
        }),
    })
    .map_err(|err| CliError::user("invalid demo definition").with_source(&err))?;
    let context = definition
        .to_context()
        .map_err(|err| CliError::user("invalid demo definition").with_source(&err))?;
    let json = definition
        .to_json_pretty()
        .map_err(|err| CliError::internal("definition").with_source(&err))?;
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CliError::user(format!("cannot create {}", args.out.display())).with_source(&e)
    })?;
    let definition_path = args.out.join("cluster-definition.json");
    std::fs::write(&definition_path, format!("{json}\n")).map_err(|e| {
        CliError::user(format!("cannot write {}", definition_path.display())).with_source(&e)
    })?;
    eprintln!(
        "dvkg demo: {} operators (threshold {threshold}), {} validator(s) on {}, each operator on its own loopback QUIC endpoint",
        args.operators, args.validators, definition.network
    );

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
            let peers = records
                .iter()
                .enumerate()
                .filter(|(p, _)| *p != position)
                .map(|(p, record): (usize, &OperatorRecord)| {
                    Ok(Peer {
                        id: OperatorId::from_position(p)
                            .map_err(|e| CliError::internal(e.to_string()))?,
                        name: record.name.clone(),
                        key: record.identity_key,
                        address: record
                            .address
                            .parse::<SocketAddr>()
                            .map_err(|e| CliError::internal(e.to_string()))?,
                    })
                })
                .collect::<Result<Vec<_>, CliError>>()?;
            Ok(CeremonyConfig {
                definition: definition.clone(),
                context: context.clone(),
                identity,
                me,
                listen,
                socket: Some(socket),
                peers,
                out: args.out.join(format!("operator-{}", me)),
                keystores: KeystoreOptions {
                    password: None,
                    kdf: KdfParams::scrypt_default(),
                    salt_mode: SaltMode::Shared,
                },
                connect_timeout: Duration::from_secs(30),
                round_timeout: Duration::from_secs(args.round_timeout),
                remove_stale: false,
                #[cfg(feature = "fault-injection")]
                fault: args.fault.filter(|f| f.operator == me).map(|f| {
                    std::sync::Arc::new(crate::ceremony::fault::Injector::new(f.fault, me, false))
                }),
            })
        })
        .collect::<Result<_, CliError>>()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal("failed to start the async runtime").with_source(&e))?;
    let results = runtime.block_on(async {
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
    })?;
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
    if !failures.is_empty() {
        return Err(demo_failure(&args, failures));
    }
    let elapsed = started.elapsed();
    let _ = quiet;

    // Verify every operator's outputs as CI would.
    let mut all_ok = true;
    for position in 0..summaries.len() {
        let dir = args.out.join(format!("operator-{}", position + 1));
        let report = super::verify::check_dir(&dir, &Default::default())?;
        all_ok &= report.ok;
        eprintln!(
            "dvkg demo: verify {}: {} checks, {}",
            dir.display(),
            report.checks.len(),
            if report.ok { "all passed" } else { "FAILED" }
        );
    }
    if let Some(keys) = &ssv_operators {
        all_ok &= check_ssv_outputs(&args.out, keys, &ssv_owner, args.ssv_nonce)?;
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
    for position in 0..summaries.len() {
        println!(
            "  {}/  (operator {}'s lock, transcript, deposit data, keystores, sealed share backup)",
            args.out
                .join(format!("operator-{}", position + 1))
                .display(),
            position + 1
        );
    }
    println!(
        "check them again with: dvkg verify {}",
        args.out.join("operator-1").display()
    );
    if ssv_operators.is_some() {
        let file = args
            .out
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
            args.out.join("operator-1").join(SSV_KEY_FILE).display(),
        );
        println!(
            "  (the demo's SSV operator keys in operator-*/{SSV_KEY_FILE} are throwaway keys made for this demo: never register operators with them)"
        );
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

/// The demo operator's SSV private key file, in its output directory.
pub const SSV_KEY_FILE: &str = "ssv-operator-key.pem";

/// `count` demo SSV operators: distinct ids in ascending order, spread out
/// as on the SSV network, and fresh RSA-2048 keys (generated in parallel;
/// about a second each).
fn demo_ssv_operators(count: usize) -> Result<Vec<(u64, OperatorPrivateKey)>, CliError> {
    use rand::Rng as _;
    use rayon::prelude::*;
    eprintln!("dvkg demo: generating {count} demo SSV operator keys (RSA-2048)");
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
        eprintln!(
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
            eprintln!("  {line}");
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
