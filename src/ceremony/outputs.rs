//! What an operator writes after a successful ceremony, built in memory
//! (then written atomically by `crate::store`): the lock, the transcript,
//! the deposit data files, the share keystores with their password file,
//! `slashing-protection.json` for the new share keys, and the age-sealed
//! share bundle.
//!
//! Formats: `ceremony-specs/formats.md`, "Ceremony outputs".

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use rand::{CryptoRng, Rng, RngCore, SeedableRng as _};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::definition::ClusterDefinition;
use super::lock::{self, ClusterLock};
use crate::ceremony::OperatorId;
use crate::crypto::group::G1Batch;
use crate::crypto::{G1Point, PublicKey, Scalar};
use crate::dkg::Output;
use crate::eth::deposit::{self, DepositEntry};
use crate::eth::keystore::{KdfParams, KeystoreEncryptor, KeystoreMeta, Password, SaltMode};
use crate::store::sealed::{self, AgeRecipient};
use crate::store::{AtomicDir, OutputFile, StoreError};
use crate::wire::Bytes;

/// The lock's file name.
pub const LOCK_FILE: &str = "cluster-lock.json";
/// The transcript's file name.
pub use super::transcript_file::TRANSCRIPT_FILE;
/// The keystore directory.
pub const KEYSTORE_DIR: &str = "validator_keys";
/// The generated password's file name, inside [`KEYSTORE_DIR`].
pub const PASSWORD_FILE: &str = "password.txt";
/// The share bundle format version.
pub const SHARE_BUNDLE_VERSION: u32 = 1;

/// The EIP-3076 history of this operator's new share keys: empty, for the
/// chain of the definition's network, ready to import into a validator
/// client (`ceremony-specs/slashing.md`, "With the ceremony").
pub const SLASHING_PROTECTION_FILE: &str = "slashing-protection.json";

/// The confirmation record's file name (formats.md §8.7).
pub const CONFIRMATION_FILE: &str = "confirmation.json";
/// The confirmation record format version.
pub const CONFIRMATION_VERSION: u32 = 1;

/// The pending recovery file of `operator` for the output directory `out`:
/// `<out>.pending-shares-operator-<i>.age`, beside it. It holds the sealed
/// share bundle from round 3 on, so that no later failure costs the
/// operator its shares.
pub fn pending_file(out: &std::path::Path, operator: OperatorId) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dvkg-output".into());
    out.with_file_name(format!("{name}.pending-shares-operator-{operator}.age"))
}

/// How many bytes the outputs of `context` take, with a margin: measured
/// per validator as the transcript (the deals, partial signatures and
/// keys), the lock, one keystore and the deposit data, then one half
/// more, plus 1 MiB.
pub fn estimated_bytes(context: &crate::dkg::Context) -> u64 {
    let plan = &context.plan;
    let params = plan.params();
    let n = params.operators() as u64;
    let t = params.threshold() as u64;
    let dealers = plan.dealers().len() as u64;
    let d = plan.statements().len() as u64;
    let v = params.validators() as u64;
    let transcript = dealers * (t * 200 + 300) + n * (d * 400) + n * 110 + d * 200;
    let lock = 150 + n * 110 + d * 800;
    let keystore = 1_100;
    let deposits = d * 720;
    // An SSV cluster's ciphertexts: once in the transcript, once in
    // keyshares.json with the share keys and signature, hex each time.
    let ssv = plan
        .attachments()
        .map_or(0, |a| n * u64::from(a.bytes) * 2 * 2 + n * 700 + 600);
    let per_validator = transcript + lock + keystore + deposits + ssv + 40;
    (per_validator * v).saturating_mul(3) / 2 + (1 << 20)
}

/// Whether every operator confirmed its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationState {
    /// Every operator said its outputs are durably in place, with this lock.
    Confirmed,
    /// Some operator did not (or the exchange has not run): do not deposit
    /// before `dvkg check` passes.
    Unconfirmed,
}

/// An operator that did not confirm, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnconfirmedOperator {
    /// The operator.
    pub operator: OperatorId,
    /// Why, in words.
    pub reason: String,
}

/// `confirmation.json`: the outcome of the exchange that follows the
/// writing of the outputs (protocol.md, "Never a split outcome").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationRecord {
    /// [`CONFIRMATION_VERSION`].
    pub version: u32,
    /// The lock these outputs hold.
    pub lock_hash: Bytes<32>,
    /// Confirmed or not.
    pub state: ConfirmationState,
    /// The operators that confirmed this lock, this one included.
    pub confirmed_by: Vec<OperatorId>,
    /// The others.
    pub unconfirmed: Vec<UnconfirmedOperator>,
}

impl ConfirmationRecord {
    /// The record written with the outputs, before the exchange: only this
    /// operator vouches for them.
    pub fn before_exchange(lock_hash: [u8; 32], me: OperatorId, others: &[OperatorId]) -> Self {
        Self {
            version: CONFIRMATION_VERSION,
            lock_hash: Bytes(lock_hash),
            state: ConfirmationState::Unconfirmed,
            confirmed_by: vec![me],
            unconfirmed: others
                .iter()
                .map(|&operator| UnconfirmedOperator {
                    operator,
                    reason: "the confirmation exchange did not complete".into(),
                })
                .collect(),
        }
    }

    /// The record as pretty JSON with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }
}

/// The sealed share bundle of `operator`: `shares` in a [`ShareBundle`],
/// sealed to `recipient` (its own age key).
///
/// # Errors
///
/// [`OutputError::Encode`] if sealing fails.
pub fn seal_shares(
    definition_hash: Bytes<32>,
    operator: OperatorId,
    shares: &[Scalar],
    recipient: &AgeRecipient,
) -> Result<Zeroizing<Vec<u8>>, OutputError> {
    let bundle = ShareBundle {
        version: SHARE_BUNDLE_VERSION,
        definition_hash,
        operator,
        shares: shares
            .iter()
            .map(|s| crate::dkg::messages::ShareBytes::new(&s.to_bytes_be()))
            .collect(),
    };
    let plaintext =
        Zeroizing::new(
            serde_json::to_vec(&bundle).map_err(|e| OutputError::Encode {
                what: "share bundle",
                reason: e.to_string(),
            })?,
        );
    sealed::seal_to(recipient, &plaintext)
        .map(Zeroizing::new)
        .map_err(|e| OutputError::Encode {
            what: "share bundle",
            reason: e.to_string(),
        })
}

/// The sealed bundle's file name for `operator`.
pub fn share_bundle_file(operator: OperatorId) -> String {
    format!("shares-operator-{operator}.age")
}

/// The keystore file name of validator `v` (0-based).
pub fn keystore_file(v: usize) -> String {
    format!("keystore-{v}.json")
}

/// The EIP-2334-shaped path written in share keystores.
pub fn keystore_path(v: usize) -> String {
    format!("m/12381/3600/{v}/0/0")
}

/// The plaintext of the sealed share bundle: enough, with the public lock,
/// to rebuild the keystores.
///
/// # Security
///
/// Holds every secret share of the operator; it exists only inside the age
/// encryption and in memory while sealing or restoring.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBundle {
    /// [`SHARE_BUNDLE_VERSION`].
    pub version: u32,
    /// The definition hash of the ceremony.
    pub definition_hash: Bytes<32>,
    /// The operator.
    pub operator: OperatorId,
    /// `x_{v,operator}`, big-endian, per validator.
    pub shares: Vec<crate::dkg::messages::ShareBytes>,
}

/// Why outputs could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The lock could not be built.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// A keystore could not be made.
    #[error("failed to make keystore {validator}: {reason}")]
    Keystore {
        /// The validator.
        validator: usize,
        /// Why.
        reason: String,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or encoding failed.
    #[error("failed to write the {what}: {reason}")]
    Encode {
        /// Which output.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// How keystores are encrypted.
pub struct KeystoreOptions {
    /// The user's password, or `None` to generate one (written to
    /// `validator_keys/password.txt`).
    pub password: Option<Password>,
    /// The KDF (scrypt 2^18 by default).
    pub kdf: KdfParams,
    /// One salt for all keystores (default) or one each.
    pub salt_mode: SaltMode,
}

/// Keystore encryption made ready before the ceremony: the KDF (about a
/// second, and 256 MiB, for scrypt) runs once, up front, so that it neither
/// delays the outputs nor adds to the ceremony's peak memory.
///
/// # Security
///
/// Holds the derived key (in the encryptor) and the generated password, both
/// wiped on drop.
pub struct PreparedKeystores {
    /// The encryptor, holding the derived key.
    pub encryptor: KeystoreEncryptor,
    /// The generated password, to be written to `password.txt`.
    pub generated_password: Option<Zeroizing<String>>,
}

impl KeystoreOptions {
    /// Runs the KDF (once, with a shared salt) and keeps the derived key.
    ///
    /// # Errors
    ///
    /// [`OutputError::Keystore`] if the KDF parameters are refused.
    pub fn prepare<R: RngCore + CryptoRng>(
        self,
        rng: &mut R,
    ) -> Result<PreparedKeystores, OutputError> {
        let (password, generated_password) = match self.password {
            Some(password) => (password, None),
            None => {
                let text: Zeroizing<String> = Zeroizing::new(
                    (0..32)
                        .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
                        .collect(),
                );
                (Password::new(&text), Some(text))
            }
        };
        let encryptor =
            KeystoreEncryptor::new(&password, self.kdf, self.salt_mode, rng).map_err(|e| {
                OutputError::Keystore {
                    validator: 0,
                    reason: e.to_string(),
                }
            })?;
        Ok(PreparedKeystores {
            encryptor,
            generated_password,
        })
    }
}

impl Default for KeystoreOptions {
    fn default() -> Self {
        Self {
            password: None,
            kdf: KdfParams::scrypt_default(),
            salt_mode: SaltMode::Shared,
        }
    }
}

/// A summary for the user.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The lock hash.
    pub lock_hash: [u8; 32],
    /// Validator public keys.
    pub validators: Vec<String>,
    /// Deposit data file names.
    pub deposit_files: Vec<String>,
    /// For an SSV cluster: the owner (EIP-55) and first nonce the written
    /// `keyshares.json` registers with.
    pub keyshares: Option<(String, u64)>,
    /// Time spent connecting: waiting for every other operator to start
    /// and be reached.
    pub connect_time: std::time::Duration,
    /// Time from the mesh being connected to the last finalize message
    /// (waits for slower peers within the rounds included).
    pub protocol_time: std::time::Duration,
    /// Time spent building and writing the outputs.
    pub output_time: std::time::Duration,
    /// Time spent on the keystore KDF, before the ceremony.
    pub kdf_time: std::time::Duration,
    /// The steps of building and writing the outputs, in order, with their
    /// times (`lock`, `keystores`, ...), for `dvkg ceremony -v`.
    pub output_steps: Vec<(&'static str, Duration)>,
}

/// The steps of [`write`] timed so far, and when the current one began.
struct Steps(Vec<(&'static str, Duration)>, Instant);

impl Steps {
    /// Ends the current step, named `name`, and begins the next.
    fn end(&mut self, name: &'static str) {
        let now = Instant::now();
        self.0.push((name, now - self.1));
        self.1 = now;
    }
}

/// Groups the deposit entries into files, one per distinct amount, named
/// after the transcript hash.
pub fn deposit_files(
    entries: &[Vec<DepositEntry>],
    transcript_hash: &[u8; 32],
) -> Vec<(String, String)> {
    let prefix = hex::encode(transcript_hash.get(..4).unwrap_or_default());
    let mut amounts: Vec<u64> = entries.iter().flatten().map(|e| e.amount.0).collect();
    amounts.sort_unstable();
    amounts.dedup();
    let single = amounts.len() == 1;
    amounts
        .into_iter()
        .map(|amount| {
            let chosen: Vec<DepositEntry> = entries
                .iter()
                .flatten()
                .filter(|e| e.amount.0 == amount)
                .cloned()
                .collect();
            let name = if single {
                format!("deposit_data-{prefix}.json")
            } else {
                format!("deposit_data-{prefix}-{amount}gwei.json")
            };
            (name, deposit::to_file_string(&chosen))
        })
        .collect()
}

/// Whether [`share_keystore`] checks the share against the public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareCheck {
    /// Recompute `share·G1` and compare (`dvkg restore`: the shares come
    /// from a file).
    Here,
    /// The caller has checked every share against its public share in one
    /// batch ([`shares_match`]): a ceremony's outputs.
    Done,
}

/// Whether `shares[v]·G1 = public_shares[v]` for every `v`, checked in one
/// batch with random 64-bit weights (`(Σ r_v·x_v)·G1 = Σ r_v·PK_v`, one
/// multi-scalar multiplication instead of a multiplication per share); on
/// failure, the first validator whose share does not match.
///
/// # Errors
///
/// [`OutputError::Keystore`] naming that validator.
pub fn shares_match<R: RngCore + CryptoRng + ?Sized>(
    shares: &[Scalar],
    public_shares: &[G1Point],
    rng: &mut R,
) -> Result<(), OutputError> {
    let mismatch = |validator| OutputError::Keystore {
        validator,
        reason: "the share does not match its public share".into(),
    };
    if shares.len() != public_shares.len() {
        return Err(mismatch(shares.len().min(public_shares.len())));
    }
    let mut batch = G1Batch::default();
    let mut sum = Scalar::from_u64(0);
    for (share, public) in shares.iter().zip(public_shares) {
        let weight = rng.next_u64() | 1;
        sum = sum.add(&share.mul(&Scalar::from_u64(weight)));
        batch.sub_short(public, u128::from(weight));
    }
    batch.add_generator(&sum);
    if batch.is_identity() {
        return Ok(());
    }
    // One by one to name the validator; a batch that fails with every share
    // matching would be a bug of the batch, said as such.
    match shares
        .iter()
        .zip(public_shares)
        .position(|(share, public)| G1Point::mul_generator(share) != *public)
    {
        Some(first) => Err(mismatch(first)),
        None => Err(OutputError::Keystore {
            validator: 0,
            reason: "the batched share check failed, yet every share matches one by one".into(),
        }),
    }
}

/// The keystore file of `operator`'s share of validator `v`, in `dir`: an
/// EIP-2335 keystore (mode 0600: an encrypted key share still invites
/// offline guessing of a weak password) whose `pubkey` is the operator's
/// public share, `share·G1`: checked here or, for [`ShareCheck::Done`], by
/// the caller.
///
/// # Errors
///
/// [`OutputError::Keystore`] if the keystore cannot be made or, checked
/// here, the share does not match.
#[allow(clippy::too_many_arguments)]
pub fn share_keystore<R: RngCore + CryptoRng>(
    keystores: &PreparedKeystores,
    operator: OperatorId,
    v: usize,
    share: &Scalar,
    pubkey: &PublicKey,
    check: ShareCheck,
    group_key: &Bytes<48>,
    dir: &str,
    rng: &mut R,
) -> Result<OutputFile, OutputError> {
    let fail = |reason: String| OutputError::Keystore {
        validator: v,
        reason,
    };
    let path = keystore_path(v);
    let description = format!(
        "dvkg: operator {operator}'s share of validator {v} ({})",
        deposit::short_hex(&group_key.0)
    );
    let meta = KeystoreMeta {
        pubkey,
        path: &path,
        description: &description,
    };
    let secret = share.to_bytes_be();
    let keystore = match check {
        ShareCheck::Here => keystores.encryptor.encrypt(&secret, meta, rng),
        ShareCheck::Done => keystores.encryptor.encrypt_prechecked(&secret, meta, rng),
    }
    .and_then(|k| k.to_json_string())
    .map_err(|e| fail(e.to_string()))?;
    Ok(OutputFile::secret(
        PathBuf::from(dir).join(keystore_file(v)),
        Zeroizing::new(keystore.into_bytes()),
    ))
}

/// The generated password's file in `dir` (0600), if the password was
/// generated.
pub fn password_file(keystores: &PreparedKeystores, dir: &str) -> Option<OutputFile> {
    let text = keystores.generated_password.as_ref()?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() + 1));
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    Some(OutputFile::secret(
        PathBuf::from(dir).join(PASSWORD_FILE),
        bytes,
    ))
}

/// The password file of validator `v`'s keystore: `keystore-<v>.txt`, named
/// like the keystore, as Teku (`--validator-keys KEYS:PASSWORDS`) and charon
/// expect.
pub fn keystore_password_file(v: usize) -> String {
    format!("keystore-{v}.txt")
}

/// `keystore-<v>.txt` for each of `validators` keystores in `dir` (0600):
/// the generated password, without a newline, beside every keystore;
/// nothing when the operator gave its own password (dvkg writes a
/// password of the operator's nowhere).
pub fn keystore_password_files(
    keystores: &PreparedKeystores,
    validators: usize,
    dir: &str,
) -> Vec<OutputFile> {
    let Some(text) = keystores.generated_password.as_ref() else {
        return Vec::new();
    };
    (0..validators)
        .map(|v| {
            OutputFile::secret(
                PathBuf::from(dir).join(keystore_password_file(v)),
                Zeroizing::new(text.as_bytes().to_vec()),
            )
        })
        .collect()
}

/// `slashing-protection.json`: an EIP-3076 history with one empty record
/// per validator, keyed by this holder's public share of it, for the chain
/// of the definition's network. `None` for a custom network, whose genesis
/// validators root dvkg cannot know (the operator imports none then, or
/// makes one with `dvkg slashing export` from a database of that chain).
///
/// # Errors
///
/// [`OutputError::Encode`] if the JSON cannot be rendered (a bug).
pub fn slashing_protection_file(
    definition: &ClusterDefinition,
    lock: &ClusterLock,
    holder: usize,
) -> Result<Option<OutputFile>, OutputError> {
    let Some(root) = definition
        .network
        .parse::<crate::eth::network::Network>()
        .ok()
        .and_then(|n| n.genesis_validators_root())
    else {
        return Ok(None);
    };
    let keys = lock
        .validators
        .iter()
        .filter_map(|v| v.public_shares.get(holder))
        .map(|share| crate::slashing::PublicKeyBytes(share.0));
    let mut text =
        crate::slashing::interchange::Interchange::for_new_keys(crate::slashing::Root(root), keys)
            .to_json()
            .map_err(|e| OutputError::Encode {
                what: "slashing-protection.json",
                reason: e.to_string(),
            })?;
    text.push('\n');
    Ok(Some(OutputFile::public(
        SLASHING_PROTECTION_FILE,
        text.into_bytes(),
    )))
}

/// Writes every output file of participant `output.me` into `dir` (a
/// split's dealer, holding no share, writes the lock, the transcript and
/// the confirmation record only), one file at a time (so that at most one
/// file's bytes are in memory beside the ceremony's own state) except for
/// the keystores, made and written on every core (one per thread in
/// flight; with a salt per keystore, one at a time, as each runs the KDF),
/// recovery material first: the sealed share bundle,
/// the lock and the password, then the transcript, the deposit data,
/// `keyshares.json` for an SSV cluster, the keystores,
/// `slashing-protection.json`, and the confirmation record (unconfirmed until the exchange that follows).
///
/// # Errors
///
/// [`OutputError`] if the lock, a keystore or the sealed bundle cannot be
/// made, or a file cannot be written.
pub fn write<R: RngCore + CryptoRng>(
    definition: &ClusterDefinition,
    output: &Output,
    recipient: &AgeRecipient,
    keystores: &PreparedKeystores,
    dir: &mut AtomicDir,
    rng: &mut R,
) -> Result<Summary, OutputError> {
    let transcript = &output.transcript;
    let mut steps = Steps(Vec::new(), Instant::now());
    let lock = ClusterLock::new(definition, transcript)?;
    steps.end("lock");
    let entries: Vec<Vec<DepositEntry>> = lock
        .validators
        .iter()
        .map(|v| v.deposit_data.iter().map(|d| d.to_entry()).collect())
        .collect();
    let me = output.me;
    let dir: &AtomicDir = dir;
    let put = |file: OutputFile| dir.write(&file).map_err(OutputError::Store);
    let others: Vec<OperatorId> = transcript
        .context
        .plan
        .slots()
        .iter()
        .copied()
        .filter(|&s| s != me)
        .collect();
    // The lock and the transcript are encoded straight into their files
    // (94 MB and 184 MB at 65,536 validators), not into copies first.
    let put_lock = || {
        dir.write_public_with(Path::new(LOCK_FILE), |out| {
            serde_json::to_writer_pretty(&mut *out, &lock)?;
            out.write_all(b"\n")
        })
        .map_err(OutputError::Store)
    };
    let put_transcript = || {
        dir.write_public_with(Path::new(TRANSCRIPT_FILE), |out| {
            super::transcript_file::write_to(out, transcript)
        })
        .map_err(OutputError::Store)
    };
    let Some(holder) = transcript.context.plan.holder_position(me) else {
        // A split's dealer holds no share: the public record only, and no
        // secret file at all.
        put_lock()?;
        put_transcript()?;
        put(OutputFile::public(
            CONFIRMATION_FILE,
            ConfirmationRecord::before_exchange(lock.lock_hash.0, me, &others).to_json(),
        ))?;
        steps.end("lock, transcript and confirmation");
        return Ok(Summary {
            lock_hash: lock.lock_hash.0,
            validators: transcript
                .validators
                .iter()
                .map(|r| hex::encode(r.group_key.0))
                .collect(),
            deposit_files: Vec::new(),
            keyshares: None,
            connect_time: std::time::Duration::ZERO,
            protocol_time: std::time::Duration::ZERO,
            output_time: std::time::Duration::ZERO,
            kdf_time: std::time::Duration::ZERO,
            output_steps: steps.0,
        });
    };

    // Recovery material first: with these three files and the identity,
    // the keystores can be rebuilt (dvkg restore).
    put(OutputFile::secret(
        share_bundle_file(me),
        seal_shares(
            transcript.context.definition_hash,
            me,
            &output.secret_shares,
            recipient,
        )?,
    ))?;
    put_lock()?;
    if let Some(file) = password_file(keystores, KEYSTORE_DIR) {
        put(file)?;
    }
    for file in keystore_password_files(keystores, output.secret_shares.len(), KEYSTORE_DIR) {
        put(file)?;
    }
    steps.end("share bundle and lock");

    put_transcript()?;
    steps.end("transcript");
    // The lock holds the transcript hash already: not hashed again.
    let deposit_files = if entries.iter().all(Vec::is_empty) {
        Vec::new()
    } else {
        deposit_files(&entries, &lock.transcript_hash.0)
    };
    for (name, content) in &deposit_files {
        put(OutputFile::public(
            name.as_str(),
            content.clone().into_bytes(),
        ))?;
    }
    let keyshares =
        super::keyshares::file_text(&lock, transcript).map_err(|e| OutputError::Encode {
            what: "keyshares.json",
            reason: e.to_string(),
        })?;
    let keyshares_for = lock
        .definition
        .ssv
        .as_ref()
        .filter(|_| keyshares.is_some())
        .map(|s| (s.owner.clone(), s.nonce));
    if let Some(text) = keyshares {
        put(OutputFile::public(
            super::keyshares::KEYSHARES_FILE,
            text.into_bytes(),
        ))?;
    }
    steps.end("deposit data and keyshares");
    // Each keystore draws its IV and UUID (and, with a salt each, its salt)
    // from a generator of its own, seeded from `rng`.
    let seeds: Vec<[u8; 32]> = (0..output.secret_shares.len())
        .map(|_| {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            seed
        })
        .collect();
    // Defence in depth: round 4's partial signatures proved every share to
    // match its public share already; this checks the shares about to be
    // written once more, in one batch.
    shares_match(&output.secret_shares, &output.public_shares, rng)?;
    let keystore = |(v, ((share, record), seed)): (usize, ((&Scalar, _), &[u8; 32]))| {
        let record: &crate::dkg::transcript::ValidatorRecord = record;
        let public_share = output
            .public_shares
            .get(v)
            .ok_or_else(|| OutputError::Keystore {
                validator: v,
                reason: "no public share".into(),
            })?;
        let pubkey = PublicKey::from_point(public_share).map_err(|e| OutputError::Keystore {
            validator: v,
            reason: e.to_string(),
        })?;
        put(share_keystore(
            keystores,
            me,
            v,
            share,
            &pubkey,
            ShareCheck::Done,
            &record.group_key,
            KEYSTORE_DIR,
            &mut rand::rngs::StdRng::from_seed(*seed),
        )?)
    };
    if keystores.encryptor.salt_mode() == SaltMode::PerKeystore {
        // One KDF per keystore: one at a time, so that its memory (256 MiB
        // for scrypt) is needed once, not once per core.
        output
            .secret_shares
            .iter()
            .zip(&transcript.validators)
            .zip(&seeds)
            .enumerate()
            .try_for_each(keystore)?;
    } else {
        output
            .secret_shares
            .par_iter()
            .zip(&transcript.validators)
            .zip(&seeds)
            .enumerate()
            .try_for_each(keystore)?;
    }
    steps.end("keystores");
    if let Some(file) = slashing_protection_file(definition, &lock, holder)? {
        put(file)?;
    }
    put(OutputFile::public(
        CONFIRMATION_FILE,
        ConfirmationRecord::before_exchange(lock.lock_hash.0, me, &others).to_json(),
    ))?;
    steps.end("slashing protection and confirmation");

    let summary = Summary {
        lock_hash: lock.lock_hash.0,
        validators: transcript
            .validators
            .iter()
            .map(|r| hex::encode(r.group_key.0))
            .collect(),
        deposit_files: deposit_files.into_iter().map(|(name, _)| name).collect(),
        keyshares: keyshares_for,
        connect_time: std::time::Duration::ZERO,
        protocol_time: std::time::Duration::ZERO,
        output_time: std::time::Duration::ZERO,
        kdf_time: std::time::Duration::ZERO,
        output_steps: steps.0,
    };
    Ok(summary)
}
