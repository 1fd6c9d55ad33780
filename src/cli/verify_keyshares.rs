//! `dvkg verify --keyshares FILE --ssv-owner ADDR --ssv-nonce N`: check any
//! SSV `keyshares.json` on its own, one line per check (or `--json`).
//!
//! With `--ssv-operator-private-key FILE` (a PEM, or SSV's
//! `encrypted_private_key.json` with `--password-file`) it also decrypts
//! that operator's slot of every validator and checks it against the slot's
//! share public key: how an operator checks its own slot before
//! registration. Exit 0 only when every check passes, 5 when one does not,
//! 1 when an input cannot be read.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{CliError, ErrorKind};
use crate::eth::ExecutionAddress;
use crate::eth::keystore::Password;
use crate::ssv::operator_key::{OperatorPrivateKey, PrivateKeyError};
use crate::ssv::{Check, verify_keyshares};
use crate::store;

/// Largest operator key file read (a PEM or encrypted JSON is a few KiB).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The flags of `dvkg verify --keyshares`, flattened into `VerifyArgs`.
#[derive(Debug, Args)]
pub struct KeysharesArgs {
    /// An SSV keyshares.json to check on its own (ours, or one written by
    /// ssv-dkg or ssv-keys). Needs --ssv-owner and --ssv-nonce.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["ssv_owner", "ssv_nonce"],
        conflicts_with_all = ["dir", "lock", "transcript", "deposit_data", "abort_report", "keystores"]
    )]
    pub keyshares: Option<PathBuf>,
    /// The cluster owner the keyshares file must be for (the address that
    /// registers the validators).
    #[arg(long, value_name = "ADDRESS", requires = "keyshares")]
    pub ssv_owner: Option<String>,
    /// The owner nonce of the file's first validator; validator i must use
    /// N + i.
    #[arg(long, value_name = "N", requires = "keyshares")]
    pub ssv_nonce: Option<u64>,
    /// Also decrypt this operator's slot of every validator and check it: a
    /// PEM private key, or SSV's encrypted_private_key.json (with
    /// --password-file).
    #[arg(long, value_name = "FILE", requires = "keyshares")]
    pub ssv_operator_private_key: Option<PathBuf>,
}

/// `KeysharesArgs` checked, before any file is read.
#[derive(Debug)]
pub struct KeysharesConfig {
    /// The file to check.
    pub keyshares: PathBuf,
    /// The owner.
    pub owner: ExecutionAddress,
    /// The first nonce.
    pub first_nonce: u64,
    /// The operator private key, with the password file if any.
    pub private_key: Option<(PathBuf, Option<PathBuf>)>,
    /// JSON output.
    pub json: bool,
}

impl KeysharesConfig {
    /// Validates the flags.
    ///
    /// # Errors
    ///
    /// A user error naming the flag.
    pub fn from_args(
        args: &KeysharesArgs,
        password_file: Option<&Path>,
        json: bool,
    ) -> Result<Self, CliError> {
        let (Some(keyshares), Some(owner), Some(first_nonce)) =
            (&args.keyshares, &args.ssv_owner, args.ssv_nonce)
        else {
            return Err(
                CliError::user("--keyshares needs --ssv-owner and --ssv-nonce")
                    .with_hint("give the owner address and the nonce of the first validator"),
            );
        };
        let owner = owner.parse::<ExecutionAddress>().map_err(|err| {
            CliError::user(format!("invalid value for --ssv-owner: {owner:?}"))
                .with_source(&err)
                .with_hint("give 0x and 40 hex digits, all lowercase or EIP-55 checksummed")
        })?;
        if password_file.is_some() && args.ssv_operator_private_key.is_none() {
            return Err(CliError::user(
                "--password-file is given with --keyshares but without --ssv-operator-private-key",
            )
            .with_hint("the password decrypts an encrypted --ssv-operator-private-key"));
        }
        Ok(Self {
            keyshares: keyshares.clone(),
            owner,
            first_nonce,
            private_key: args
                .ssv_operator_private_key
                .clone()
                .map(|key| (key, password_file.map(Path::to_path_buf))),
            json,
        })
    }
}

/// The report `--json` prints.
#[derive(Debug, Serialize)]
pub struct KeysharesReport<'a> {
    /// Report format version.
    pub version: u32,
    /// True when every check passed.
    pub ok: bool,
    /// The file checked.
    pub file: String,
    /// Every check, in order.
    pub checks: &'a [Check],
}

/// Runs `dvkg verify --keyshares`.
///
/// # Errors
///
/// A user error (exit 1) for bad flags and unreadable inputs; a
/// verification failure (exit 5) when any check does not pass.
pub fn run(
    args: &KeysharesArgs,
    password_file: Option<&Path>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let config = KeysharesConfig::from_args(args, password_file, json)?;
    let text = read_keyshares(&config.keyshares)?;
    let private_key = config
        .private_key
        .as_ref()
        .map(|(key, password)| load_private_key(key, password.as_deref()))
        .transpose()?;
    let checks = verify_keyshares(
        &text,
        &config.owner,
        config.first_nonce,
        private_key.as_ref(),
    );
    print(&checks, &config)
}

/// Reads the file, refusing (exit 1) one that cannot be read or is not JSON
/// at all: a wrong path is not a verification finding.
fn read_keyshares(path: &Path) -> Result<String, CliError> {
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("cannot read {}", path.display()))
            .with_source(&err)
            .with_hint("check the path given to --keyshares")
    })?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|err| {
        CliError::user(format!(
            "{} is not JSON: {}",
            path.display(),
            store::describe_json_error(&err)
        ))
        .with_hint("pass the keyshares.json written by dvkg, ssv-dkg or ssv-keys")
    })?;
    Ok(text)
}

fn load_private_key(
    path: &Path,
    password_file: Option<&Path>,
) -> Result<OperatorPrivateKey, CliError> {
    let text = Zeroizing::new(store::read_text(path, MAX_KEY_FILE_BYTES).map_err(|err| {
        CliError::user(format!("cannot read {}", path.display()))
            .with_source(&err)
            .with_hint("check the path given to --ssv-operator-private-key")
    })?);
    let password = password_file
        .map(|file| {
            // A file, a FIFO or `-` (standard input).
            store::read_secret_bytes(file, MAX_KEY_FILE_BYTES)
                .and_then(|raw| {
                    // Normalised as SSV's keystore does: NFKD, control codes
                    // (a trailing newline) removed.
                    std::str::from_utf8(&raw).map(Password::new).map_err(|_| {
                        store::StoreError::NotText {
                            path: file.to_owned(),
                        }
                    })
                })
                .map_err(|err| {
                    CliError::user(format!("cannot read {}", file.display()))
                        .with_source(&err)
                        .with_hint("check the path given to --password-file")
                })
        })
        .transpose()?;
    OperatorPrivateKey::load(&text, password.as_ref()).map_err(|err| {
        let hint = match &err {
            PrivateKeyError::PasswordNeeded => "pass its password file with --password-file",
            PrivateKeyError::Encrypted(_) => "check the password file given to --password-file",
            _ => "pass the operator's RSA-2048 private key: a PEM, or SSV's encrypted_private_key.json",
        };
        CliError::user(format!(
            "cannot use {} as an SSV operator private key",
            path.display()
        ))
        .with_source(&err)
        .with_hint(hint)
    })
}

fn output_error(err: &std::io::Error) -> CliError {
    CliError::user("failed to write the report to stdout").with_source(err)
}

fn print(checks: &[Check], config: &KeysharesConfig) -> Result<ExitCode, CliError> {
    let ok = checks.iter().all(Check::ok);
    let mut stdout = std::io::stdout().lock();
    if config.json {
        let report = KeysharesReport {
            version: 1,
            ok,
            file: config.keyshares.display().to_string(),
            checks,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|err| {
            CliError::internal("failed to render the JSON report").with_source(&err)
        })?;
        writeln!(stdout, "{text}").map_err(|err| output_error(&err))?;
    } else {
        for check in checks {
            writeln!(
                stdout,
                "{}  {}: {}",
                if check.ok() { "ok  " } else { "FAIL" },
                check.name(),
                check.detail()
            )
            .map_err(|err| output_error(&err))?;
        }
        let failed = checks.iter().filter(|c| !c.ok()).count();
        writeln!(
            stdout,
            "{} checks: {} passed, {failed} failed",
            checks.len(),
            checks.len() - failed
        )
        .map_err(|err| output_error(&err))?;
    }
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(
            ErrorKind::VerificationFailed,
            format!(
                "{} is not a keyshares file SSV will accept: see the FAIL lines",
                config.keyshares.display()
            ),
        )
        .with_hint("regenerate the file rather than editing it; an SSV node refuses a validator whose shares or signature do not check out"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("dvkg").chain(args.iter().copied()))
    }

    #[test]
    fn flags_parse_and_need_each_other() {
        let cli = parse(&[
            "verify",
            "--keyshares",
            "k.json",
            "--ssv-owner",
            "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6",
            "--ssv-nonce",
            "8",
            "--ssv-operator-private-key",
            "key.json",
            "--password-file",
            "pw",
            "--json",
        ])
        .unwrap();
        let Command::Verify(args) = cli.command else {
            panic!("not verify");
        };
        assert_eq!(args.ssv.ssv_nonce, Some(8));
        assert!(args.json);
        assert!(parse(&["verify", "--keyshares", "k.json"]).is_err());
        assert!(parse(&["verify", "--ssv-owner", "0x00", "--ssv-nonce", "1"]).is_err());
        assert!(
            parse(&[
                "verify",
                "--keyshares",
                "k.json",
                "--ssv-owner",
                "0x00",
                "--ssv-nonce",
                "x"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "verify",
                "out",
                "--keyshares",
                "k.json",
                "--ssv-owner",
                "0x00",
                "--ssv-nonce",
                "1"
            ])
            .is_err()
        );
    }
}
