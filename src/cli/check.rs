//! `dvkg check --lock cluster-lock.json --identity DIR`: can this cluster
//! sign? Every operator runs it at the same time; see [`crate::check`].

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::rngs::OsRng;

use super::ceremony::read_secret_file;
use super::names::Names;
use crate::ceremony::lock::ClusterLock;
use crate::ceremony::outputs;
use crate::check::{self, CheckReport};
use crate::crypto::Scalar;
use crate::error::{CliError, ErrorKind};
use crate::eth::keystore::{Keystore, KeystoreDecryptor, Password};
use crate::net::{Limits, Mesh, Transport};
use crate::store;

/// Arguments of `dvkg check`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg check --lock out/cluster-lock.json --identity .dvkg
  dvkg check --lock their/cluster-lock.json --identity .dvkg --keystores restored --password-file restored/password.txt

Every operator of the cluster runs it at the same time. It exits 0 only when
at least the threshold of operators hold working shares of every validator.")]
pub struct CheckArgs {
    /// The cluster lock.
    #[arg(long, value_name = "FILE")]
    pub lock: PathBuf,
    /// This operator's identity directory.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// The passphrase of a sealed identity, read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// This operator's keystores (default: validator_keys next to the lock).
    #[arg(long, value_name = "DIR")]
    pub keystores: Option<PathBuf>,
    /// The keystores' password file (default: password.txt among them).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Give up on operators that have not connected after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Listen on this address instead of 0.0.0.0 with this operator's port.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// This operator's shares as its keystores hold them: `None` for a
/// validator whose keystore is missing or does not open.
fn load_shares(
    dir: &Path,
    password_file: &Path,
    validators: usize,
) -> Result<(Vec<Option<Scalar>>, Vec<String>), CliError> {
    let password = Password::new(&read_secret_file(password_file, "--password-file")?);
    let mut decryptor = KeystoreDecryptor::new();
    let mut problems = Vec::new();
    let shares = (0..validators)
        .map(|v| {
            let path = dir.join(outputs::keystore_file(v));
            let opened = store::read_text(&path, 1024 * 1024)
                .map_err(|e| e.to_string())
                .and_then(|json| Keystore::from_json_str(&json).map_err(|e| e.to_string()))
                .and_then(|k| decryptor.decrypt(&k, &password).map_err(|e| e.to_string()))
                .and_then(|secret| {
                    Scalar::from_bytes_be(secret.expose_secret())
                        .ok_or_else(|| "not a scalar".to_owned())
                });
            match opened {
                Ok(share) => Some(share),
                Err(problem) => {
                    if problems.len() < 3 {
                        problems.push(format!("{}: {problem}", path.display()));
                    }
                    None
                }
            }
        })
        .collect();
    Ok((shares, problems))
}

/// Runs `dvkg check`.
///
/// # Errors
///
/// A user error for bad input, a peer timeout (exit 4), or exit 5 when the
/// cluster cannot sign for every validator.
pub fn run(args: CheckArgs, quiet: bool) -> Result<ExitCode, CliError> {
    let lock_text = store::read_text(&args.lock, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("cannot read {}", args.lock.display()))
            .with_source(&err)
            .with_hint("pass the cluster-lock.json the ceremony wrote")
    })?;
    let lock: ClusterLock = serde_json::from_str(&lock_text).map_err(|err| {
        CliError::user(format!("{} is not a cluster lock", args.lock.display())).with_source(&err)
    })?;
    if lock.compute_hash() != lock.lock_hash.0 {
        return Err(CliError::user(format!(
            "{} does not match its own lock hash: it was edited",
            args.lock.display()
        ))
        .with_hint("run `dvkg verify` on it"));
    }
    let me_identity =
        super::identity::load_identity(&args.identity, args.passphrase_file.as_deref())?;
    let me = lock
        .definition
        .operator_index(&me_identity.key.public())
        .ok_or_else(|| {
            CliError::user(format!(
                "this identity is not an operator of the cluster in {}",
                args.lock.display()
            ))
        })?;
    let keystores = args.keystores.clone().unwrap_or_else(|| {
        args.lock
            .parent()
            .unwrap_or(Path::new("."))
            .join(outputs::KEYSTORE_DIR)
    });
    let password_file = args
        .password_file
        .clone()
        .unwrap_or_else(|| keystores.join(outputs::PASSWORD_FILE));
    let (shares, problems) = match load_shares(&keystores, &password_file, lock.validators.len()) {
        Ok(loaded) => loaded,
        // Still take part, with no share: the others learn this operator
        // holds none.
        Err(err) => (vec![None; lock.validators.len()], vec![err.message]),
    };
    for problem in &problems {
        eprintln!("dvkg: warning: {problem}");
    }
    let resolved = super::ceremony::resolve_roster(&lock.definition.operators, |id, record| {
        super::ceremony::resolve(id, &record.address)
    })?;
    let (own, peers) = super::ceremony::split_roster(&resolved, me);
    let listen = args.listen.or_else(|| {
        own.map(|address| SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), address.port()))
    });
    let listen = listen.ok_or_else(|| CliError::internal("no listen address"))?;
    let socket = UdpSocket::bind(listen).map_err(|err| {
        CliError::user(format!("cannot listen on {listen}"))
            .with_source(&err)
            .with_hint("pass --listen HOST:PORT, or free the port")
    })?;
    if !quiet {
        eprintln!(
            "dvkg: operator {me} checking lock {} with the other operators, listening on {listen}",
            hex::encode(lock.lock_hash.0)
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal("failed to start the async runtime").with_source(&e))?;
    let timeout = Duration::from_secs(args.timeout);
    let names = Names::new(&lock.definition);
    let key = Arc::new(me_identity.key);
    let report = runtime.block_on(async {
        let limits = Limits {
            max_frame_bytes: (lock.validators.len() as u64 * 210 + 64 * 1024)
                .min(crate::wire::MAX_MESSAGE_BYTES),
            messages: &check::TAGS,
            connect_deadline: tokio::time::Instant::now() + timeout,
            round_timeout: timeout,
        };
        let mesh = Mesh::connect(
            me,
            check::binding(&lock.lock_hash.0),
            &key,
            socket,
            &peers,
            limits,
            None,
            |_| {},
        )
        .await
        .map_err(|err| {
            CliError::new(
                ErrorKind::PeerTimeout,
                "the check could not reach every operator",
            )
            .with_cause(names.transport(&err))
            .with_hint("every operator runs `dvkg check` with this lock at the same time")
        })?;
        let result = check::run_over(&mesh, &lock, me, &key, &shares, timeout, &mut OsRng).await;
        mesh.close(
            crate::net::CLOSE_DONE,
            crate::net::DONE_REASON,
            Duration::from_secs(2),
        )
        .await;
        result.map_err(|err| {
            CliError::new(ErrorKind::PeerTimeout, "the check did not complete")
                .with_source(&err)
                .map_text(|text| names.label(text))
        })
    })?;
    print(&report, args.json)?;
    if report.can_sign() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(
            ErrorKind::VerificationFailed,
            format!(
                "the cluster cannot sign for every validator: {} need at least {} working shares",
                list(&report.unsignable),
                report.threshold
            ),
        )
        .with_hint("do not deposit; restore the missing shares (dvkg restore) and check again"))
    }
}

fn list(items: &[usize]) -> String {
    let shown: Vec<String> = items.iter().map(|v| format!("validator {v}")).collect();
    shown.join(", ")
}

fn print(report: &CheckReport, json: bool) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let fail = |e: std::io::Error| CliError::user("failed to write the report").with_source(&e);
    if json {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| CliError::internal("failed to render the report").with_source(&e))?;
        return writeln!(stdout, "{text}").map_err(fail);
    }
    let v = report.validators;
    for o in &report.operators {
        let detail = match (&o.problem, o.failing.is_empty()) {
            (Some(problem), _) => format!(": {problem}"),
            (None, true) => String::new(),
            (None, false) => format!(" (not for {})", list(&o.failing)),
        };
        writeln!(
            stdout,
            "{}  operator {} ({}) holds working shares for {} of {v} validators{detail}",
            if o.working == v { "ok  " } else { "FAIL" },
            o.operator,
            o.name,
            o.working
        )
        .map_err(fail)?;
    }
    match report.spares() {
        Some(spares) => writeln!(
            stdout,
            "the cluster can sign for all {v} validators (threshold {}); it has {spares} spare operator{}",
            report.threshold,
            if spares == 1 { "" } else { "s" }
        ),
        None => writeln!(
            stdout,
            "the cluster CANNOT sign for every validator: {} (threshold {})",
            list(&report.unsignable),
            report.threshold
        ),
    }
    .map_err(fail)
}
