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
    let threshold = args
        .threshold
        .unwrap_or_else(|| Params::default_threshold(args.operators));
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
    if all_ok {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(
            crate::error::ErrorKind::VerificationFailed,
            "the demo's outputs did not verify",
        ))
    }
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
