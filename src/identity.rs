//! An operator's identity on disk, in one directory (default `.dvkg`):
//!
//! | file | contents | mode |
//! |---|---|---|
//! | `identity.json` | the secret identity, in clear | 0600 |
//! | `identity.json.age` | the same JSON, sealed with an age passphrase | 0600 |
//! | `operator.json` | the public [`OperatorRecord`] to send to the cluster creator | 0644 |
//!
//! Exactly one of the two secret files exists. The secret JSON (version 2;
//! version 1, without `ssv`, is read too):
//!
//! ```json
//! {
//!   "version": 2,
//!   "name": "alice",
//!   "address": "alice.example.org:9000",
//!   "identity_seed": "<64 hex: the Ed25519 seed>",
//!   "age_identity": "AGE-SECRET-KEY-1…",
//!   "ssv": {"operator_id": 11, "operator_key": "LS0tLS1CRUdJTi…"}
//! }
//! ```
//!
//! `ssv`, the operator's SSV registration (public), is present only for an
//! SSV operator; dvkg never holds the SSV private key.
//!
//! Files are never overwritten: each is written to a temporary file in the
//! same directory, synced, then linked to its final name, which fails if the
//! name exists. The directory is created with mode 0700 when missing.
//!
//! # Security
//!
//! The secret JSON is built and parsed in zeroizing buffers; the parsed
//! fields are wiped on drop. What we cannot wipe: the stack copies of the
//! 32-byte seed made while decoding it, serde_json's scratch buffer when a
//! string holds escapes (the secret fields never do), and age's internal
//! chunk buffers (see [`crate::store::sealed`]). Unlinking a temporary file after a
//! failed write does not erase its blocks.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ceremony::definition::ssv::SsvOperator;
use crate::ceremony::definition::{self, OperatorRecord, RecordError};
use crate::crypto::identity::IdentityKey;
use crate::crypto::secret::SecretBytes;
use crate::hexfmt::{self, Prefix};
use crate::store::sealed::{self, AgeIdentity, SealError};
use crate::store::{StoreError, write_new_file};

/// The identity directory used when none is given.
pub const DEFAULT_DIR: &str = ".dvkg";
/// The secret identity file, in clear.
pub const SECRET_FILE: &str = "identity.json";
/// The secret identity file, sealed with a passphrase.
pub const SEALED_SECRET_FILE: &str = "identity.json.age";
/// The public operator record.
pub const PUBLIC_FILE: &str = "operator.json";
/// The secret identity format version written; version 1 is read too.
pub const IDENTITY_FILE_VERSION: u64 = 2;
/// The largest secret identity file read.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;
/// The largest passphrase file read.
pub const MAX_PASSPHRASE_FILE_BYTES: u64 = 4 * 1024;

/// This operator's secret identity.
///
/// # Security
///
/// Both keys wipe themselves on drop (`ed25519_dalek::SigningKey`,
/// x25519-dalek's `StaticSecret`). `Debug` shows only the public parts; there
/// is no `Display` or `Serialize`. The keys leave the process only sealed
/// (or, without a passphrase, in a 0600 file) through [`create`].
pub struct OperatorIdentity {
    /// The Ed25519 identity key.
    pub key: IdentityKey,
    /// The age X25519 identity that share backups are sealed to.
    pub age: AgeIdentity,
    /// The operator's name.
    pub name: String,
    /// Where the other operators reach it: `host:port`.
    pub address: String,
    /// Its SSV registration, if it is an SSV operator.
    pub ssv: Option<SsvOperator>,
}

impl OperatorIdentity {
    /// The public record to send to the cluster creator.
    pub fn record(&self) -> OperatorRecord {
        OperatorRecord {
            name: self.name.clone(),
            identity_key: self.key.public(),
            age_recipient: sealed::recipient_of(&self.age),
            address: self.address.clone(),
            ssv: self.ssv.clone(),
        }
    }

    /// The secret JSON, in a zeroizing buffer.
    fn to_secret_json(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        let seed = self.key.to_seed();
        let file = SecretFile {
            version: IDENTITY_FILE_VERSION,
            name: self.name.clone(),
            address: self.address.clone(),
            identity_seed: hex::encode(seed.expose_secret()),
            age_identity: sealed::identity_to_string(&self.age).to_string(),
            ssv: self.ssv.clone(),
        };
        // Large enough that the buffer never grows (which would leave an
        // unwiped copy): names and addresses are bounded.
        let mut out = Zeroizing::new(Vec::with_capacity(4096));
        serde_json::to_writer_pretty(&mut *out, &file).map_err(IdentityError::Json)?;
        out.push(b'\n');
        Ok(out)
    }
}

impl fmt::Debug for OperatorIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorIdentity")
            .field("key", &self.key)
            .field("age", &"<redacted>")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("ssv", &self.ssv)
            .finish()
    }
}

/// The on-disk secret JSON.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    version: u64,
    name: String,
    address: String,
    identity_seed: String,
    age_identity: String,
    /// Public; nothing to wipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[zeroize(skip)]
    ssv: Option<SsvOperator>,
}

/// A passphrase read from a file.
///
/// # Security
///
/// Wiped on drop; `Debug` prints `<redacted>`; no `Display`.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase (for tests and callers that already hold one).
    pub fn new(text: &str) -> Self {
        Self(Zeroizing::new(text.to_owned()))
    }

    /// The passphrase.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where an identity's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPaths {
    /// The secret file that exists (clear or sealed).
    pub secret: PathBuf,
    /// Whether it is sealed with a passphrase.
    pub sealed: bool,
    /// The public `operator.json` (which may be missing).
    pub public: PathBuf,
}

/// Why an identity could not be created or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Creating would overwrite an existing identity.
    #[error("an identity already exists: {path}")]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// No secret identity file in the directory.
    #[error("no identity in {dir} (neither {SECRET_FILE} nor {SEALED_SECRET_FILE})")]
    NotFound {
        /// The directory.
        dir: PathBuf,
    },
    /// The identity path is a file, not a directory.
    #[error("{path} is a file, not an identity directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The identity directory, or a file in it, cannot be looked at.
    #[error("cannot look into the identity directory {dir}: {source}")]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// The OS error (permission denied, a symlink loop, ...).
        #[source]
        source: io::Error,
    },
    /// Both a clear and a sealed identity file.
    #[error("both {clear} and {sealed} exist: keep only one")]
    Ambiguous {
        /// The clear file.
        clear: PathBuf,
        /// The sealed file.
        sealed: PathBuf,
    },
    /// A sealed identity and no passphrase.
    #[error("{path} is sealed with a passphrase: pass --passphrase-file FILE")]
    PassphraseRequired {
        /// The sealed file.
        path: PathBuf,
    },
    /// A passphrase for an identity that is not sealed.
    #[error("{path} is not sealed with a passphrase: leave out --passphrase-file")]
    PassphraseNotNeeded {
        /// The clear file.
        path: PathBuf,
    },
    /// The sealed file did not open.
    #[error("failed to open {path}: {source}")]
    Open {
        /// The sealed file.
        path: PathBuf,
        /// Why (for example a wrong passphrase).
        #[source]
        source: SealError,
    },
    /// Sealing or key generation failed (a bug).
    #[error("failed to seal the identity: {0}")]
    Seal(#[source] SealError),
    /// A file could not be read.
    #[error("failed to read {0}")]
    Read(#[source] StoreError),
    /// A file could not be written.
    #[error("failed to write {0}")]
    Write(#[source] StoreError),
    /// The identity directory could not be created.
    #[error("failed to create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The secret file is not the expected JSON. The parser's own message
    /// is left out: it could quote secret material.
    #[error("{path} is not a valid identity file (at line {line}, column {column})")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where parsing stopped.
        line: usize,
        /// Where parsing stopped.
        column: usize,
    },
    /// Another format version.
    #[error(
        "{path} has identity format version {got}: this dvkg reads versions 1 and {IDENTITY_FILE_VERSION}"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        got: u64,
    },
    /// A secret field that does not decode.
    #[error("{path}: {field} is malformed")]
    BadSecret {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
    },
    /// A name or address that is not valid.
    #[error("{0}")]
    Record(#[source] RecordError),
    /// `operator.json` is not a valid operator record.
    #[error("{path}: {source}")]
    PublicRecord {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RecordError,
    },
    /// `operator.json` does not describe the secret identity next to it.
    #[error("{public} does not match the identity in {secret}")]
    Mismatch {
        /// The public file.
        public: PathBuf,
        /// The secret file.
        secret: PathBuf,
    },
    /// A secret file other users can read or write.
    #[error("{path} is accessible by other users (mode {mode:03o}); it must be 0600")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An unusable passphrase file.
    #[error("passphrase file {path} {reason}")]
    Passphrase {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// Serializing failed (a bug).
    #[error("failed to encode the identity: {0}")]
    Json(#[source] serde_json::Error),
}

/// Finds the identity files in `dir`.
///
/// # Errors
///
/// [`IdentityError::NotFound`] when `dir` does not exist or holds neither
/// secret file, [`IdentityError::NotADirectory`] when it is a file,
/// [`IdentityError::Unreadable`] when it cannot be looked into, or
/// [`IdentityError::Ambiguous`].
pub fn locate(dir: &Path) -> Result<IdentityPaths, IdentityError> {
    let unreadable = |source| IdentityError::Unreadable {
        dir: dir.to_owned(),
        source,
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(IdentityError::NotADirectory {
                path: dir.to_owned(),
            });
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(IdentityError::NotFound {
                dir: dir.to_owned(),
            });
        }
        Err(err) => return Err(unreadable(err)),
    }
    let clear = dir.join(SECRET_FILE);
    let sealed = dir.join(SEALED_SECRET_FILE);
    let public = dir.join(PUBLIC_FILE);
    // A file that cannot be looked at is not a missing one: a directory
    // without search permission would otherwise read as empty.
    let present = |path: &Path| match path.symlink_metadata() {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(unreadable(err)),
    };
    match (present(&clear)?, present(&sealed)?) {
        (true, true) => Err(IdentityError::Ambiguous { clear, sealed }),
        (true, false) => Ok(IdentityPaths {
            secret: clear,
            sealed: false,
            public,
        }),
        (false, true) => Ok(IdentityPaths {
            secret: sealed,
            sealed: true,
            public,
        }),
        (false, false) => Err(IdentityError::NotFound {
            dir: dir.to_owned(),
        }),
    }
}

/// Creates a new identity in `dir`: an Ed25519 key and an age identity,
/// both from `rng`, and the operator's SSV registration if it has one. With
/// a passphrase the secret file is sealed (`identity.json.age`); without,
/// it is written in clear (`identity.json`). Writes `operator.json` too,
/// and returns its record.
///
/// # Errors
///
/// [`IdentityError::Record`] for a bad name, address or SSV registration,
/// [`IdentityError::Exists`] when any identity file is already there (it is
/// never overwritten), or an I/O error.
pub fn create<R: RngCore + CryptoRng + ?Sized>(
    dir: &Path,
    name: &str,
    address: &str,
    ssv: Option<SsvOperator>,
    passphrase: Option<&str>,
    rng: &mut R,
) -> Result<OperatorRecord, IdentityError> {
    definition::check_name(name).map_err(IdentityError::Record)?;
    definition::check_address(address).map_err(IdentityError::Record)?;
    if let Some(registration) = &ssv {
        registration.validate().map_err(IdentityError::Record)?;
    }
    for file in [SECRET_FILE, SEALED_SECRET_FILE, PUBLIC_FILE] {
        let path = dir.join(file);
        if exists(&path) {
            return Err(IdentityError::Exists { path });
        }
    }
    create_dir(dir)?;

    let identity = OperatorIdentity {
        key: IdentityKey::generate(rng),
        age: sealed::generate_identity(rng).map_err(IdentityError::Seal)?,
        name: name.to_owned(),
        address: address.to_owned(),
        ssv,
    };
    let record = identity.record();
    let public = record.to_file_json().map_err(IdentityError::Json)?;
    let secret = identity.to_secret_json()?;
    let secret_path = match passphrase {
        Some(passphrase) => {
            let sealed =
                sealed::seal_with_passphrase(passphrase, &secret).map_err(IdentityError::Seal)?;
            let path = dir.join(SEALED_SECRET_FILE);
            write_new_file(&path, &sealed, 0o600).map_err(|e| write_error(e, &path))?;
            path
        }
        None => {
            let path = dir.join(SECRET_FILE);
            write_new_file(&path, &secret, 0o600).map_err(|e| write_error(e, &path))?;
            path
        }
    };
    let public_path = dir.join(PUBLIC_FILE);
    if let Err(err) = write_new_file(&public_path, public.as_bytes(), 0o644) {
        // Leave the directory as we found it; the secret file is ours.
        let _ = fs::remove_file(&secret_path);
        return Err(write_error(err, &public_path));
    }
    Ok(record)
}

/// Loads the secret identity in `dir`, opening it with `passphrase` when it
/// is sealed.
///
/// # Errors
///
/// [`IdentityError::PassphraseRequired`] for a sealed file and no
/// passphrase, [`IdentityError::PassphraseNotNeeded`] for a clear file and a
/// passphrase, [`IdentityError::Open`] for a wrong passphrase,
/// [`IdentityError::InsecurePermissions`] for a file others can access, and
/// errors for missing or malformed files.
pub fn load(dir: &Path, passphrase: Option<&str>) -> Result<OperatorIdentity, IdentityError> {
    let paths = locate(dir)?;
    check_permissions(&paths.secret)?;
    let bytes = crate::store::read_bytes(&paths.secret, MAX_SECRET_FILE_BYTES)
        .map_err(IdentityError::Read)?;
    let json = match (paths.sealed, passphrase) {
        (true, None) => {
            return Err(IdentityError::PassphraseRequired { path: paths.secret });
        }
        (false, Some(_)) => {
            return Err(IdentityError::PassphraseNotNeeded { path: paths.secret });
        }
        (true, Some(passphrase)) => {
            sealed::open_with_passphrase(passphrase, &bytes).map_err(|source| {
                IdentityError::Open {
                    path: paths.secret.clone(),
                    source,
                }
            })?
        }
        (false, None) => bytes,
    };
    parse_secret(&paths.secret, &json)
}

fn parse_secret(path: &Path, json: &[u8]) -> Result<OperatorIdentity, IdentityError> {
    let malformed = |err: &serde_json::Error| IdentityError::Malformed {
        path: path.to_owned(),
        line: err.line(),
        column: err.column(),
    };
    // Read the version first, so that a newer file is reported as such
    // rather than as unknown fields.
    #[derive(Deserialize)]
    struct Version {
        version: u64,
    }
    let version: Version = serde_json::from_slice(json).map_err(|e| malformed(&e))?;
    if !matches!(version.version, 1 | IDENTITY_FILE_VERSION) {
        return Err(IdentityError::UnsupportedVersion {
            path: path.to_owned(),
            got: version.version,
        });
    }
    let file: SecretFile = serde_json::from_slice(json).map_err(|e| malformed(&e))?;
    let bad = |field| IdentityError::BadSecret {
        path: path.to_owned(),
        field,
    };
    let mut seed = hexfmt::decode_fixed::<32>(&file.identity_seed, Prefix::Forbidden)
        .map_err(|_| bad("identity_seed"))?;
    let seed = SecretBytes::new(&mut seed);
    let age = sealed::parse_identity(&file.age_identity).map_err(|_| bad("age_identity"))?;
    definition::check_name(&file.name).map_err(IdentityError::Record)?;
    definition::check_address(&file.address).map_err(IdentityError::Record)?;
    if let Some(registration) = &file.ssv {
        if version.version == 1 {
            return Err(IdentityError::Record(RecordError::SsvInVersionOne));
        }
        registration.validate().map_err(IdentityError::Record)?;
    }
    Ok(OperatorIdentity {
        key: IdentityKey::from_seed(&seed),
        age,
        name: file.name.clone(),
        address: file.address.clone(),
        ssv: file.ssv.clone(),
    })
}

/// Reads and validates `operator.json` in `dir`.
///
/// # Errors
///
/// [`IdentityError::Read`] or [`IdentityError::PublicRecord`].
pub fn load_record(dir: &Path) -> Result<OperatorRecord, IdentityError> {
    let path = dir.join(PUBLIC_FILE);
    let text = crate::store::read_text(&path, definition::MAX_OPERATOR_FILE_BYTES)
        .map_err(IdentityError::Read)?;
    OperatorRecord::from_file_json(&text).map_err(|source| IdentityError::PublicRecord {
        path: path.clone(),
        source,
    })
}

/// Reads a passphrase file: at most [`MAX_PASSPHRASE_FILE_BYTES`], UTF-8,
/// one trailing newline (`\n` or `\r\n`) removed, not empty. The file may
/// be `-` (standard input), a FIFO or a pipe
/// ([`crate::store::read_secret_bytes`]).
///
/// # Errors
///
/// [`IdentityError::Read`] or [`IdentityError::Passphrase`].
pub fn read_passphrase(path: &Path) -> Result<Passphrase, IdentityError> {
    let bytes = crate::store::read_secret_bytes(path, MAX_PASSPHRASE_FILE_BYTES)
        .map_err(IdentityError::Read)?;
    let fail = |reason| IdentityError::Passphrase {
        path: path.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| fail("is not UTF-8 text"))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(fail("is empty"));
    }
    Ok(Passphrase::new(text))
}

fn write_error(err: StoreError, path: &Path) -> IdentityError {
    match &err {
        StoreError::Exists { .. } => IdentityError::Exists {
            path: path.to_owned(),
        },
        StoreError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
            IdentityError::Exists {
                path: path.to_owned(),
            }
        }
        _ => IdentityError::Write(err),
    }
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn create_dir(dir: &Path) -> Result<(), IdentityError> {
    let fail = |source| IdentityError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    if let Ok(meta) = fs::metadata(dir) {
        if meta.is_dir() {
            return Ok(());
        }
        return Err(fail(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a directory",
        )));
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(fail)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = fs::metadata(path).map_err(|source| {
        IdentityError::Read(StoreError::Io {
            path: path.to_owned(),
            source,
        })
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn create_and_load_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("id");
        let mut rng = StdRng::seed_from_u64(1);
        let record = create(&home, "alice", "127.0.0.1:9000", None, None, &mut rng).unwrap();
        let identity = load(&home, None).unwrap();
        assert_eq!(identity.record(), record);
        assert_eq!(load_record(&home).unwrap(), record);
        let debug = format!("{identity:?}");
        assert!(debug.contains("<redacted>") && !debug.contains("AGE-SECRET-KEY"));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&home.join(SECRET_FILE)), 0o600);
            assert_eq!(mode(&home), 0o700);
            fs::set_permissions(home.join(SECRET_FILE), fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load(&home, None),
                Err(IdentityError::InsecurePermissions { mode: 0o644, .. })
            ));
            fs::set_permissions(home.join(SECRET_FILE), fs::Permissions::from_mode(0o600)).unwrap();
        }

        // Never overwritten, whatever the variant asked for.
        let before = fs::read(home.join(SECRET_FILE)).unwrap();
        for passphrase in [None, Some("pw")] {
            assert!(matches!(
                create(&home, "bob", "127.0.0.1:9001", None, passphrase, &mut rng),
                Err(IdentityError::Exists { .. })
            ));
        }
        assert_eq!(fs::read(home.join(SECRET_FILE)).unwrap(), before);
        assert!(matches!(
            load(&home, Some("pw")),
            Err(IdentityError::PassphraseNotNeeded { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("none"), None),
            Err(IdentityError::NotFound { .. })
        ));
    }

    #[test]
    fn locate_tells_a_missing_identity_from_a_file_and_an_unreadable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let home = dir.path().join("id");
        create(&home, "dave", "127.0.0.1:9000", None, None, &mut rng).unwrap();

        let missing = dir.path().join("none");
        assert!(matches!(locate(&missing), Err(IdentityError::NotFound { dir }) if dir == missing));
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(matches!(
            locate(&empty),
            Err(IdentityError::NotFound { .. })
        ));

        let file = home.join(PUBLIC_FILE);
        assert!(
            matches!(locate(&file), Err(IdentityError::NotADirectory { path }) if path == file)
        );

        #[cfg(unix)]
        {
            // A symlink loop fails even for root, unlike a chmod.
            let looped = dir.path().join("loop");
            std::os::unix::fs::symlink(&looped, &looped).unwrap();
            assert!(matches!(
                locate(&looped),
                Err(IdentityError::Unreadable { dir, .. }) if dir == looped
            ));
        }
        assert!(locate(&home).is_ok());
    }

    #[test]
    fn create_and_load_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let record = create(
            dir.path(),
            "carol",
            "[::1]:9000",
            None,
            Some("pw"),
            &mut rng,
        )
        .unwrap();
        let sealed_bytes = fs::read(dir.path().join(SEALED_SECRET_FILE)).unwrap();
        assert!(sealed::is_sealed(&sealed_bytes));
        assert!(!dir.path().join(SECRET_FILE).exists());
        assert_eq!(load(dir.path(), Some("pw")).unwrap().record(), record);
        let err = load(dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("--passphrase-file"), "{err}");
        assert!(matches!(
            load(dir.path(), Some("wrong")),
            Err(IdentityError::Open {
                source: SealError::WrongPassphrase,
                ..
            })
        ));
    }

    #[test]
    fn an_ssv_registration_is_kept_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let key = crate::ssv::dealer::test_operator_key(2)
            .unwrap()
            .public_key()
            .registered()
            .to_owned();
        let ssv = SsvOperator {
            operator_id: 103,
            operator_key: key,
        };
        let home = dir.path().join("ssv");
        let record = create(
            &home,
            "ssv",
            "127.0.0.1:9000",
            Some(ssv.clone()),
            None,
            &mut rng,
        )
        .unwrap();
        assert_eq!(record.ssv.as_ref(), Some(&ssv));
        assert_eq!(load(&home, None).unwrap().record(), record);
        assert_eq!(load_record(&home).unwrap(), record);
        let text = fs::read_to_string(home.join(SECRET_FILE)).unwrap();
        assert!(text.contains("\"version\": 2") && text.contains("\"operator_id\": 103"));
        // A version-1 file cannot carry it.
        let one = dir.path().join("one");
        fs::create_dir(&one).unwrap();
        write_new_file(
            &one.join(SECRET_FILE),
            text.replace("\"version\": 2", "\"version\": 1").as_bytes(),
            0o600,
        )
        .unwrap();
        assert!(matches!(
            load(&one, None),
            Err(IdentityError::Record(RecordError::SsvInVersionOne))
        ));
        // An id of 0, or a key that is not RSA-2048, is refused up front.
        let zero = SsvOperator {
            operator_id: 0,
            ..ssv.clone()
        };
        assert!(matches!(
            create(
                &dir.path().join("z"),
                "z",
                "127.0.0.1:1",
                Some(zero),
                None,
                &mut rng
            ),
            Err(IdentityError::Record(RecordError::SsvOperatorId))
        ));
        let bad = SsvOperator {
            operator_key: "not base64!".into(),
            ..ssv
        };
        assert!(matches!(
            create(
                &dir.path().join("b"),
                "b",
                "127.0.0.1:1",
                Some(bad),
                None,
                &mut rng
            ),
            Err(IdentityError::Record(RecordError::SsvOperatorKey { .. }))
        ));
        assert!(!dir.path().join("z").join(SECRET_FILE).exists());
    }

    #[test]
    fn refuses_bad_names_addresses_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        assert!(matches!(
            create(dir.path(), "", "127.0.0.1:9000", None, None, &mut rng),
            Err(IdentityError::Record(RecordError::Name(_)))
        ));
        assert!(matches!(
            create(dir.path(), "dave", "127.0.0.1", None, None, &mut rng),
            Err(IdentityError::Record(RecordError::Address { .. }))
        ));
        assert!(!dir.path().join(SECRET_FILE).exists());

        write_new_file(&dir.path().join(SECRET_FILE), b"{\"version\":3}", 0o600).unwrap();
        assert!(matches!(
            load(dir.path(), None),
            Err(IdentityError::UnsupportedVersion { got: 3, .. })
        ));
        fs::remove_file(dir.path().join(SECRET_FILE)).unwrap();
        write_new_file(
            &dir.path().join(SECRET_FILE),
            b"{\"version\":1,\"identity_seed\":\"secret!\"",
            0o600,
        )
        .unwrap();
        let err = load(dir.path(), None).unwrap_err();
        assert!(matches!(err, IdentityError::Malformed { .. }));
        assert!(!err.to_string().contains("secret!"));
    }

    #[test]
    fn passphrase_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        for (content, expected) in [
            ("hunter2\n", Some("hunter2")),
            ("hunter2\r\n", Some("hunter2")),
            ("two words  \n\n", Some("two words  \n")),
            ("x", Some("x")),
            ("\n", None),
            ("", None),
        ] {
            fs::write(&path, content).unwrap();
            let read = read_passphrase(&path);
            match expected {
                Some(text) => assert_eq!(read.unwrap().expose_secret(), text),
                None => assert!(matches!(read, Err(IdentityError::Passphrase { .. }))),
            }
        }
        fs::write(&path, vec![b'a'; 5000]).unwrap();
        assert!(matches!(
            read_passphrase(&path),
            Err(IdentityError::Read(StoreError::TooLarge { .. }))
        ));
        assert_eq!(format!("{:?}", Passphrase::new("x")), "<redacted>");
    }
}
