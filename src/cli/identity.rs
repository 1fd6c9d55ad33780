//! `dvkg identity new|show`: this operator's Ed25519 identity and age key.
//!
//! `new` writes the identity directory (see `identity` for the files)
//! and prints the public operator record on stdout: that JSON is what the
//! operator sends to the cluster creator, who passes it to
//! `dvkg definition new --operator`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::ceremony::definition::ssv::SsvOperator;
use crate::ceremony::definition::{self, OperatorRecord};
use crate::error::CliError;
use crate::identity::{self as store_identity, IdentityError, Passphrase};
use crate::ssv::OperatorKey;

/// `dvkg identity` subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create this operator's identity: an Ed25519 key (TLS certificate and
    /// message signing) and an age X25519 identity.
    New(NewArgs),
    /// Print the public operator record to send to the cluster creator.
    Show(ShowArgs),
}

/// Arguments of `dvkg identity new`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg identity new --identity .dvkg --name alice --address node1.example.org:9000
  dvkg identity new --address 127.0.0.1:9001 --passphrase-file passphrase.txt
  pass show dvkg/passphrase | dvkg identity new --address 127.0.0.1:9001 --passphrase-file -
  dvkg identity new --address node1.example.org:9000 --ssv-operator-id 42 --ssv-operator-key ssv-key.txt

Prints the operator record (operator.json) on stdout: send it to the cluster
creator. A passphrase file may be -, a FIFO or <(pass show ...).")]
pub struct NewArgs {
    /// Directory to create the identity in (created with mode 0700). An
    /// existing identity there is never overwritten. `--dir` is an alias.
    #[arg(long = "identity", visible_alias = "dir", value_name = "DIR", default_value = store_identity::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Seal the secret file with the age passphrase read from this file
    /// (one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// This operator's name, as other operators will see it (default: this
    /// machine's host name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The HOST:PORT other operators reach this one at (required).
    #[arg(long, value_name = "HOST:PORT")]
    pub address: Option<String>,
    /// This operator's SSV operator id, for SSV clusters (with
    /// --ssv-operator-key).
    #[arg(long, value_name = "ID", requires = "ssv_operator_key")]
    pub ssv_operator_id: Option<u64>,
    /// This operator's registered SSV public key: a file holding the base64
    /// string SSV publishes (kept verbatim) or a PEM, or that base64 string
    /// itself. Only the public key: dvkg never needs the SSV private key.
    #[arg(long, value_name = "FILE", requires = "ssv_operator_id")]
    pub ssv_operator_key: Option<String>,
}

/// Arguments of `dvkg identity show`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg identity show
  dvkg identity show --identity .dvkg --json
  dvkg identity show --identity .dvkg --passphrase-file passphrase.txt")]
pub struct ShowArgs {
    /// Directory holding the identity. `--dir` is an alias.
    #[arg(long = "identity", visible_alias = "dir", value_name = "DIR", default_value = store_identity::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Print the record as JSON (the `operator.json` format).
    #[arg(long)]
    pub json: bool,
    /// Open a sealed identity with the passphrase in this file, to check
    /// that `operator.json` matches it.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `NewArgs`, validated.
#[derive(Debug)]
pub struct NewConfig {
    /// The identity directory.
    pub dir: PathBuf,
    /// The operator's name.
    pub name: String,
    /// The operator's `host:port`.
    pub address: String,
    /// The passphrase to seal the secret file with.
    pub passphrase: Option<Passphrase>,
    /// The SSV registration.
    pub ssv: Option<SsvOperator>,
}

/// `ShowArgs`, validated.
#[derive(Debug)]
pub struct ShowConfig {
    /// The identity directory.
    pub dir: PathBuf,
    /// JSON output.
    pub json: bool,
    /// The passphrase of a sealed identity.
    pub passphrase: Option<Passphrase>,
}

/// The default operator name: this machine's host name when it is a valid
/// name, else `operator`.
fn default_name() -> String {
    let candidates = [
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        std::fs::read_to_string("/etc/hostname").ok(),
        std::env::var("HOSTNAME").ok(),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_owned())
        .find(|name| definition::check_name(name).is_ok())
        .unwrap_or_else(|| "operator".to_owned())
}

/// Reads `--passphrase-file`: a file, a FIFO, or `-` for standard input
/// (asked for without echo when standard input is a terminal).
pub(crate) fn passphrase_from(path: Option<&Path>) -> Result<Option<Passphrase>, CliError> {
    path.map(|path| {
        if crate::store::is_stdin(path) && super::secret::can_prompt() {
            let typed = super::secret::prompt("passphrase (not echoed)")?;
            return Ok(Passphrase::new(&typed));
        }
        store_identity::read_passphrase(path).map_err(|err| {
            CliError::user("invalid value for --passphrase-file")
                .with_source(&err)
                .with_hint("put the passphrase alone in the file, on one line")
        })
    })
    .transpose()
}

impl NewConfig {
    /// Validates the arguments (reading the passphrase file).
    ///
    /// # Errors
    ///
    /// A user error naming the flag.
    pub fn from_args(args: NewArgs) -> Result<Self, CliError> {
        let Some(address) = args.address else {
            return Err(CliError::user("missing --address").with_hint(
                "pass --address HOST:PORT, where the other operators will reach this one (for a test on one machine: --address 127.0.0.1:9001)",
            ));
        };
        definition::check_address(&address).map_err(|err| {
            CliError::user("invalid value for --address")
                .with_source(&err)
                .with_hint(
                    "write HOST:PORT, for example node1.example.org:9000 or [2001:db8::1]:9000",
                )
        })?;
        let name = match args.name {
            Some(name) => {
                definition::check_name(&name)
                    .map_err(|err| CliError::user("invalid value for --name").with_source(&err))?;
                name
            }
            None => default_name(),
        };
        let ssv = match (args.ssv_operator_id, args.ssv_operator_key) {
            (Some(id), Some(key)) => Some(ssv_operator(id, &key)?),
            _ => None,
        };
        Ok(Self {
            dir: args.dir,
            name,
            address,
            passphrase: passphrase_from(args.passphrase_file.as_deref())?,
            ssv,
        })
    }
}

/// The SSV registration of `--ssv-operator-id` and `--ssv-operator-key`:
/// the key is a file (base64 or PEM) or the base64 string itself.
fn ssv_operator(id: u64, key: &str) -> Result<SsvOperator, CliError> {
    if id == 0 {
        return Err(CliError::user("invalid value for --ssv-operator-id: 0")
            .with_hint("SSV operator ids start at 1: pass the id SSV assigned when the operator registered"));
    }
    let path = Path::new(key);
    let (text, source) = if path.is_file() {
        let text = crate::store::read_text(path, 64 * 1024).map_err(|err| {
            CliError::user(format!(
                "failed to read --ssv-operator-key {}",
                path.display()
            ))
            .with_source(&err)
        })?;
        (text, format!("--ssv-operator-key {}", path.display()))
    } else {
        (key.to_owned(), "--ssv-operator-key".to_owned())
    };
    let parsed = OperatorKey::parse(&text).map_err(|err| {
        CliError::user(format!("invalid value for {source}"))
            .with_source(&err)
            .with_hint("give the operator's public key as SSV publishes it (base64, starting LS0tLS1CRUdJTi), or a PEM file of it; SSV operator keys are RSA-2048")
    })?;
    Ok(SsvOperator {
        operator_id: id,
        operator_key: parsed.registered().to_owned(),
    })
}

impl ShowConfig {
    /// Validates the arguments (reading the passphrase file).
    ///
    /// # Errors
    ///
    /// A user error naming the flag.
    pub fn from_args(args: ShowArgs) -> Result<Self, CliError> {
        Ok(Self {
            dir: args.dir,
            json: args.json,
            passphrase: passphrase_from(args.passphrase_file.as_deref())?,
        })
    }
}

/// Turns an identity error into a report with the hint for its case.
/// `flag` is the option that named the directory (`--identity`, which
/// `dvkg identity` also accepts as `--dir`).
pub(crate) fn identity_error(message: String, err: &IdentityError, flag: &str) -> CliError {
    let report = CliError::user(message).with_source(err);
    match identity_hint(err, flag) {
        Some(hint) => report.with_hint(hint),
        None => report,
    }
}

/// The hint for each way an identity fails to load: only a missing one is
/// told to create one.
fn identity_hint(err: &IdentityError, flag: &str) -> Option<String> {
    Some(match err {
        IdentityError::Exists { .. } => format!(
            "an identity is never overwritten; pass another {flag} to create a second one, or use this one"
        ),
        IdentityError::NotFound { dir } => format!(
            "create one with `dvkg identity new --identity {} --address HOST:PORT`, or pass the {flag} DIR it was created in",
            dir.display()
        ),
        IdentityError::NotADirectory { path } => {
            let inside = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    [
                        store_identity::SECRET_FILE,
                        store_identity::SEALED_SECRET_FILE,
                        store_identity::PUBLIC_FILE,
                    ]
                    .contains(&name)
                });
            match path.parent().filter(|p| inside && !p.as_os_str().is_empty()) {
                Some(parent) => format!(
                    "{flag} takes the identity directory, not a file in it: pass {flag} {}",
                    parent.display()
                ),
                None => format!(
                    "{flag} takes the directory that holds {} and {}",
                    store_identity::SECRET_FILE,
                    store_identity::PUBLIC_FILE
                ),
            }
        }
        IdentityError::Unreadable { dir, .. } => format!(
            "check that {} is the identity directory and that this user may read it (ls -ld {})",
            dir.display(),
            dir.display()
        ),
        IdentityError::Ambiguous { sealed, .. } => format!(
            "keep only the file this operator uses: the sealed {} needs --passphrase-file",
            sealed.display()
        ),
        IdentityError::PassphraseRequired { .. } => {
            "pass --passphrase-file FILE with the passphrase the identity was sealed with (`-` reads it from standard input; run in a terminal to be asked for it)".to_owned()
        }
        IdentityError::PassphraseNotNeeded { .. } => {
            "leave out --passphrase-file: this identity is stored in clear".to_owned()
        }
        IdentityError::Open { .. } => {
            "check the passphrase given with --passphrase-file: it is the one the identity was sealed with".to_owned()
        }
        IdentityError::InsecurePermissions { path, .. } => {
            format!("run `chmod 600 {}`", path.display())
        }
        IdentityError::Malformed { .. } | IdentityError::BadSecret { .. } => {
            "the identity file is damaged: restore it from its backup (an identity cannot be recreated)".to_owned()
        }
        IdentityError::UnsupportedVersion { .. } => {
            "this identity was written by another dvkg version: use that version, or a newer dvkg".to_owned()
        }
        IdentityError::Mismatch { .. } => {
            "operator.json was replaced or edited; remove it and run `dvkg identity show --json` to see the record of the secret identity".to_owned()
        }
        _ => return None,
    })
}

/// Loads this operator's identity for a command that acts as it (the one
/// loader of `ceremony`, `restore`, `check` and `slashing sync`): reads
/// `--passphrase-file` if given, opens the identity in `dir` (named by
/// `--identity`), and reports each failure with its own hint.
///
/// # Errors
///
/// A user error naming the directory or the passphrase file.
pub(crate) fn load_identity(
    dir: &Path,
    passphrase_file: Option<&Path>,
) -> Result<store_identity::OperatorIdentity, CliError> {
    let passphrase = passphrase_file
        .map(|p| crate::cli::ceremony::read_secret_file(p, "--passphrase-file"))
        .transpose()?;
    let fail = |err: IdentityError| {
        identity_error(
            format!("failed to load the identity in {}", dir.display()),
            &err,
            "--identity",
        )
    };
    match store_identity::load(dir, passphrase.as_deref().map(String::as_str)) {
        // A sealed identity and no --passphrase-file: ask, in a terminal.
        Err(IdentityError::PassphraseRequired { .. })
            if passphrase.is_none() && super::secret::can_prompt() =>
        {
            let typed = super::secret::prompt(&format!(
                "passphrase of the sealed identity in {} (not echoed)",
                dir.display()
            ))?;
            store_identity::load(dir, Some(&typed)).map_err(|err| match err {
                IdentityError::Open { .. } => CliError::user(format!(
                    "failed to load the identity in {}",
                    dir.display()
                ))
                .with_source(&err)
                .with_hint("the passphrase typed is not the one the identity was sealed with: run the command again"),
                other => fail(other),
            })
        }
        loaded => loaded.map_err(fail),
    }
}

fn output_error(err: &std::io::Error) -> CliError {
    CliError::user("failed to write to stdout").with_source(err)
}

fn record_json(record: &OperatorRecord) -> Result<String, CliError> {
    record
        .to_file_json()
        .map_err(|err| CliError::internal("failed to encode the operator record").with_source(&err))
}

fn run_new(config: NewConfig) -> Result<ExitCode, CliError> {
    let record = store_identity::create(
        &config.dir,
        &config.name,
        &config.address,
        config.ssv.clone(),
        config.passphrase.as_ref().map(Passphrase::expose_secret),
        &mut rand::rngs::OsRng,
    )
    .map_err(|err| {
        identity_error(
            format!("failed to create an identity in {}", config.dir.display()),
            &err,
            "--identity",
        )
    })?;
    let json = record_json(&record)?;
    std::io::stdout()
        .lock()
        .write_all(json.as_bytes())
        .map_err(|err| output_error(&err))?;

    let (secret, note) = match config.passphrase {
        Some(_) => (
            store_identity::SEALED_SECRET_FILE,
            "sealed with your passphrase",
        ),
        None => (
            store_identity::SECRET_FILE,
            "NOT encrypted; pass --passphrase-file to seal it",
        ),
    };
    let dir = &config.dir;
    status!(
        "created operator {:?} in {}\n  secret key:      {} (mode 0600, {note})\n  operator record: {} (printed above)\nsend the operator record to the cluster creator; keep the secret key private and backed up",
        record.name,
        dir.display(),
        dir.join(secret).display(),
        dir.join(store_identity::PUBLIC_FILE).display(),
    );
    Ok(ExitCode::SUCCESS)
}

fn run_show(config: ShowConfig) -> Result<ExitCode, CliError> {
    let dir = &config.dir;
    let fail = |err: IdentityError| {
        identity_error(
            format!("failed to read the identity in {}", dir.display()),
            &err,
            "--identity",
        )
    };
    let paths = store_identity::locate(dir).map_err(fail)?;
    let public = if paths.public.exists() {
        Some(store_identity::load_record(dir).map_err(fail)?)
    } else {
        None
    };
    // Check the public record against the secret whenever we can open it.
    let checked = if paths.sealed && config.passphrase.is_none() {
        None
    } else {
        let identity = store_identity::load(
            dir,
            config.passphrase.as_ref().map(Passphrase::expose_secret),
        )
        .map_err(fail)?;
        Some(identity.record())
    };
    let record = match (public, checked) {
        (Some(public), Some(secret)) if public != secret => {
            return Err(fail(IdentityError::Mismatch {
                public: paths.public.clone(),
                secret: paths.secret.clone(),
            }));
        }
        (_, Some(record)) | (Some(record), None) => record,
        (None, None) => {
            return Err(fail(IdentityError::PassphraseRequired {
                path: paths.secret.clone(),
            })
            .with_hint(format!(
                "{} is missing; the record can only be rebuilt from the sealed secret",
                paths.public.display()
            )));
        }
    };

    let text = if config.json {
        record_json(&record)?
    } else {
        let secret_note = match (paths.sealed, config.passphrase.is_some()) {
            (true, true) => "sealed with a passphrase; opened and checked",
            (true, false) => {
                "sealed with a passphrase; not opened (pass --passphrase-file to check it)"
            }
            (false, _) => "not encrypted",
        };
        let ssv = match &record.ssv {
            Some(ssv) => {
                let start: String = ssv.operator_key.chars().take(24).collect();
                format!(
                    "ssv operator:  id {} (key {start}…, {} characters)\n",
                    ssv.operator_id,
                    ssv.operator_key.len()
                )
            }
            None => String::new(),
        };
        format!(
            "name:          {}\naddress:       {}\nidentity key:  {}\nage recipient: {}\n{ssv}secret key:    {} ({secret_note})\n",
            record.name,
            record.address,
            record.identity_key,
            record.age_recipient,
            paths.secret.display(),
        )
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|err| output_error(&err))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `dvkg identity …`.
///
/// # Errors
///
/// A user error naming the flag, file or problem.
pub fn run(command: IdentityCommand) -> Result<ExitCode, CliError> {
    match command {
        IdentityCommand::New(args) => run_new(NewConfig::from_args(args)?),
        IdentityCommand::Show(args) => run_show(ShowConfig::from_args(args)?),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> IdentityCommand {
        let cli = Cli::try_parse_from(std::iter::once("dvkg").chain(args.iter().copied())).unwrap();
        match cli.command {
            Command::Identity(command) => command,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn new_requires_a_valid_address_and_name() {
        let IdentityCommand::New(args) = parse(&["identity", "new"]) else {
            panic!()
        };
        let err = NewConfig::from_args(args).unwrap_err();
        assert!(err.message.contains("--address"));
        assert!(err.hints.iter().any(|h| h.contains("HOST:PORT")));

        let IdentityCommand::New(args) = parse(&["identity", "new", "--address", "h:0"]) else {
            panic!()
        };
        assert!(
            NewConfig::from_args(args)
                .unwrap_err()
                .message
                .contains("--address")
        );

        let IdentityCommand::New(args) =
            parse(&["identity", "new", "--address", "h:1", "--name", " x"])
        else {
            panic!()
        };
        assert!(
            NewConfig::from_args(args)
                .unwrap_err()
                .message
                .contains("--name")
        );

        let IdentityCommand::New(args) = parse(&["identity", "new", "--address", "h:1"]) else {
            panic!()
        };
        let config = NewConfig::from_args(args).unwrap();
        assert!(definition::check_name(&config.name).is_ok());
        assert_eq!(config.dir, PathBuf::from(".dvkg"));
    }
}
