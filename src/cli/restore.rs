//! `dvkg restore`: rebuild an operator's keystores from its age-sealed share
//! bundle and the public lock, with its identity alone: from its own output
//! directory (`--from`), or, after a ceremony that aborted for it but
//! completed for another operator, from its pending recovery file and that
//! operator's lock (`--pending --lock`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rand::rngs::OsRng;

use super::ceremony::read_new_password;
use crate::ceremony::lock::ClusterLock;
use crate::ceremony::outputs::{self, KeystoreOptions, ShareBundle};
use crate::crypto::Scalar;
use crate::error::CliError;
use crate::eth::keystore::{KdfKind, KdfParams, SaltMode};
use crate::store::{self, sealed};

/// Arguments of `dvkg restore`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg restore --from dvkg-output --identity .dvkg --out restored
  dvkg restore --pending dvkg-output.pending-shares-operator-2.age --lock their/cluster-lock.json --out restored")]
pub struct RestoreArgs {
    /// The ceremony output directory holding `cluster-lock.json` and this
    /// operator's `shares-operator-<i>.age`.
    #[arg(long, value_name = "DIR", required_unless_present = "pending", conflicts_with_all = ["pending", "lock"])]
    pub from: Option<PathBuf>,
    /// This operator's pending recovery file
    /// (`<out>.pending-shares-operator-<i>.age`), kept by a ceremony that
    /// aborted after its shares were final.
    #[arg(long, value_name = "FILE", requires = "lock")]
    pub pending: Option<PathBuf>,
    /// The lock of an operator whose ceremony completed (with --pending).
    #[arg(long, value_name = "FILE", requires = "pending")]
    pub lock: Option<PathBuf>,
    /// This operator's identity directory (its age key opens the bundle).
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// The passphrase of a sealed identity, read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Where to write the keystores; must not exist yet.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Encrypt the keystores with the password in this file instead of a
    /// generated one (written to password.txt).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Keystore key derivation: scrypt (n=2^18) or pbkdf2 (c=2^18).
    #[arg(long, value_name = "KDF", default_value = "scrypt", value_parser = ["scrypt", "pbkdf2"])]
    pub kdf: String,
}

/// Runs `dvkg restore`.
///
/// # Errors
///
/// A user error naming the file or validator at fault.
pub fn run(args: RestoreArgs) -> Result<ExitCode, CliError> {
    store::check_new_dir(&args.out).map_err(|err| {
        CliError::user(format!(
            "output directory {} already exists",
            args.out.display()
        ))
        .with_source(&err)
        .with_hint("pass another --out; dvkg never overwrites keystores")
    })?;
    let me = super::identity::load_identity(&args.identity, args.passphrase_file.as_deref())?;
    let (lock_path, bundle_at): (PathBuf, Option<PathBuf>) =
        match (&args.from, &args.pending, &args.lock) {
            (Some(dir), _, _) => (dir.join(outputs::LOCK_FILE), None),
            (None, Some(pending), Some(lock)) => (lock.clone(), Some(pending.clone())),
            _ => {
                return Err(CliError::new(
                    crate::error::ErrorKind::Usage,
                    "pass --from DIR, or --pending FILE with --lock FILE",
                ));
            }
        };
    let lock_text = store::read_text(&lock_path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("failed to read {}", lock_path.display())).with_source(&err)
    })?;
    let lock: ClusterLock = serde_json::from_str(&lock_text).map_err(|err| {
        CliError::user(format!("{} is not a cluster lock", lock_path.display())).with_source(&err)
    })?;
    if lock.compute_hash() != lock.lock_hash.0 {
        return Err(CliError::user(format!(
            "{} does not match its own lock hash: it was edited",
            lock_path.display()
        ))
        .with_hint(
            "run `dvkg verify` on the other operator's output directory, and copy its lock again",
        ));
    }
    let operator = lock
        .definition
        .operator_index(&me.key.public())
        .ok_or_else(|| {
            CliError::user(format!(
                "this identity is not an operator of the cluster in {}",
                lock_path.display()
            ))
        })?;
    let bundle_path = match (&bundle_at, &args.from) {
        (Some(pending), _) => pending.clone(),
        (None, Some(dir)) => dir.join(outputs::share_bundle_file(operator)),
        (None, None) => return Err(CliError::internal("no share bundle to restore from")),
    };
    let shares = open_bundle(&lock, operator, &bundle_path, &me.age)?;

    let kdf = KdfParams::default_for(if args.kdf == "pbkdf2" {
        KdfKind::Pbkdf2
    } else {
        KdfKind::Scrypt
    });
    let password = args
        .password_file
        .as_deref()
        .map(|p| read_new_password(p, "--password-file"))
        .transpose()?;
    let keystores = KeystoreOptions {
        password,
        kdf,
        salt_mode: SaltMode::Shared,
    }
    .prepare(&mut OsRng)
    .map_err(|err| CliError::user("cannot prepare the keystore encryption").with_source(&err))?;
    let mut files = Vec::new();
    for (v, (scalar, validator)) in shares.iter().zip(&lock.validators).enumerate() {
        let public_share = validator
            .public_shares
            .get(operator.position())
            .ok_or_else(|| CliError::internal("a checked bundle without its public share"))?;
        let pubkey = crate::crypto::PublicKey::from_bytes(&public_share.0).map_err(|err| {
            CliError::user(format!(
                "validator {v}'s public share in the lock is not a key"
            ))
            .with_source(&err)
        })?;
        let file = outputs::share_keystore(
            &keystores,
            operator,
            v,
            scalar,
            &pubkey,
            outputs::ShareCheck::Here,
            &validator.pubkey,
            "",
            &mut OsRng,
        )
        .map_err(|err| {
            CliError::user(format!("cannot restore validator {v}'s keystore")).with_source(&err)
        })?;
        files.push(file);
    }
    files.extend(outputs::password_file(&keystores, ""));
    files.extend(outputs::keystore_password_files(
        &keystores,
        lock.validators.len(),
        "",
    ));
    store::write_dir_atomically(&args.out, &files).map_err(|err| {
        CliError::user(format!("failed to write {}", args.out.display())).with_source(&err)
    })?;
    status!(
        "dvkg: restored operator {operator}'s {} keystores into {}",
        lock.validators.len(),
        args.out.display()
    );
    if bundle_at.is_some() {
        status!(
            "dvkg: keep {} with them (it is this operator's sealed share backup), and run `dvkg check` with every operator before anyone deposits",
            bundle_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens operator `operator`'s sealed share bundle at `path` with its age
/// identity and checks it against `lock`: the same definition, the same
/// operator, one share per validator, each share the operator's public share
/// in the lock. Used by `dvkg restore` and by a reshare's dealers
/// (`dvkg ceremony --previous DIR`).
///
/// # Errors
///
/// A [`CliError`] naming the file and what does not match.
pub fn open_bundle(
    lock: &ClusterLock,
    operator: crate::ceremony::OperatorId,
    path: &std::path::Path,
    age: &crate::store::sealed::AgeIdentity,
) -> Result<Vec<Scalar>, CliError> {
    let sealed_bytes = store::read_bytes(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("failed to read {}", path.display())).with_source(&err)
    })?;
    let plaintext = sealed::open_with(age, &sealed_bytes).map_err(|err| {
        CliError::user(format!("cannot open {}", path.display()))
            .with_source(&err)
            .with_hint("the bundle opens only with the identity of the operator that wrote it")
    })?;
    let bundle: ShareBundle = serde_json::from_slice(&plaintext).map_err(|err| {
        CliError::user(format!("{} holds no share bundle", path.display())).with_source(&err)
    })?;
    if bundle.definition_hash != lock.definition.definition_hash || bundle.operator != operator {
        return Err(CliError::user(format!(
            "{} is operator {}'s bundle of another ceremony",
            path.display(),
            bundle.operator
        ))
        .with_hint("the lock and the bundle must come from the same cluster definition"));
    }
    if bundle.shares.len() != lock.validators.len() {
        return Err(CliError::user(format!(
            "{} holds {} shares for {} validators",
            path.display(),
            bundle.shares.len(),
            lock.validators.len()
        )));
    }
    bundle
        .shares
        .iter()
        .zip(&lock.validators)
        .enumerate()
        .map(|(v, (share, validator))| {
            let scalar = Scalar::from_bytes_be(share.expose_secret()).ok_or_else(|| {
                CliError::user(format!("validator {v}: the bundle's share is not a scalar"))
            })?;
            let public_share = validator
                .public_shares
                .get(operator.position())
                .ok_or_else(|| {
                    CliError::user(format!(
                        "validator {v}: the lock has no public share for operator {operator}"
                    ))
                })?;
            // Each share must be this operator's public share in the lock: a
            // pending file from another run of the same definition is
            // refused here.
            if crate::crypto::G1Point::mul_generator(&scalar).to_bytes() != public_share.0 {
                return Err(CliError::user(format!(
                    "validator {v}: the bundle's share does not match operator {operator}'s public share in the lock"
                ))
                .with_hint("the bundle and the lock are of different runs of this definition; use the lock of the run the bundle was kept in"));
            }
            Ok(scalar)
        })
        .collect()
}
