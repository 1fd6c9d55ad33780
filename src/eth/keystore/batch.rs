//! Many keystores under one password: one KDF run for all of them when
//! they share a salt, and a cache of derived keys when reading them back.

use std::fmt;

use rand::{CryptoRng, RngCore};

use super::*;

/// How salts are chosen for keystores written under one password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaltMode {
    /// One random salt and one KDF run for all keystores, as
    /// ethstaker-deposit-cli does. Anyone with the password opens all of them
    /// anyway; a guesser gains nothing beyond attacking them as one.
    #[default]
    Shared,
    /// A fresh salt and a KDF run per keystore.
    PerKeystore,
}

/// Writes many keystores under one password.
///
/// Each keystore gets a fresh random IV and UUID. With [`SaltMode::Shared`]
/// the KDF runs once in [`KeystoreEncryptor::new`]; with
/// [`SaltMode::PerKeystore`] it runs in every [`KeystoreEncryptor::encrypt`].
///
/// # Security
///
/// Holds the derived key (shared mode) or the normalised password (per-keystore
/// mode), both wiped on drop. `Debug` shows only the mode and public
/// parameters.
pub struct KeystoreEncryptor {
    pub(super) params: KdfParams,
    pub(super) keys: EncryptorKeys,
}

pub(super) enum EncryptorKeys {
    Shared { kdf: SaltedKdf, key: DerivedKey },
    PerKeystore { password: Password },
}

impl KeystoreEncryptor {
    /// Prepares to encrypt under `password`; in shared mode, draws the salt
    /// and runs the KDF.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::InvalidKdfParams`] if the KDF refuses its parameters.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(
        password: &Password,
        params: KdfParams,
        mode: SaltMode,
        rng: &mut R,
    ) -> Result<Self, KeystoreError> {
        let keys = match mode {
            SaltMode::Shared => {
                let kdf = SaltedKdf::random(params, rng);
                let key = DerivedKey::derive(password, &kdf)?;
                EncryptorKeys::Shared { kdf, key }
            }
            SaltMode::PerKeystore => EncryptorKeys::PerKeystore {
                password: password.clone(),
            },
        };
        Ok(Self { params, keys })
    }

    /// Encrypts one secret.
    ///
    /// # Errors
    ///
    /// As [`encrypt_with`].
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
        &self,
        secret: &SecretBytes<SECRET_KEY_BYTES>,
        meta: KeystoreMeta<'_>,
        rng: &mut R,
    ) -> Result<Keystore, KeystoreError> {
        check_before_writing(secret, &meta)?;
        self.seal_new(secret, meta, rng)
    }

    /// [`KeystoreEncryptor::encrypt`] for a secret the caller has already
    /// checked against `meta.pubkey` (the ceremony checks all its shares
    /// against their public shares in one batch): the path is checked, the
    /// public key is not recomputed from the secret.
    ///
    /// # Errors
    ///
    /// As [`encrypt_with`], but never [`KeystoreError::PubkeyMismatch`].
    pub fn encrypt_prechecked<R: RngCore + CryptoRng + ?Sized>(
        &self,
        secret: &SecretBytes<SECRET_KEY_BYTES>,
        meta: KeystoreMeta<'_>,
        rng: &mut R,
    ) -> Result<Keystore, KeystoreError> {
        check_path(&meta)?;
        self.seal_new(secret, meta, rng)
    }

    fn seal_new<R: RngCore + CryptoRng + ?Sized>(
        &self,
        secret: &SecretBytes<SECRET_KEY_BYTES>,
        meta: KeystoreMeta<'_>,
        rng: &mut R,
    ) -> Result<Keystore, KeystoreError> {
        let mut iv = [0u8; IV_BYTES];
        rng.fill_bytes(&mut iv);
        let mut uuid_bytes = [0u8; 16];
        rng.fill_bytes(&mut uuid_bytes);
        let uuid = uuid::Builder::from_random_bytes(uuid_bytes).into_uuid();
        match &self.keys {
            EncryptorKeys::Shared { kdf, key } => {
                Ok(seal(secret, kdf.clone(), key, iv, uuid, &meta))
            }
            EncryptorKeys::PerKeystore { password } => {
                let kdf = SaltedKdf::random(self.params, rng);
                let key = DerivedKey::derive(password, &kdf)?;
                Ok(seal(secret, kdf, &key, iv, uuid, &meta))
            }
        }
    }

    /// The salt mode.
    pub fn salt_mode(&self) -> SaltMode {
        match self.keys {
            EncryptorKeys::Shared { .. } => SaltMode::Shared,
            EncryptorKeys::PerKeystore { .. } => SaltMode::PerKeystore,
        }
    }

    /// The shared KDF parameters and salt, in [`SaltMode::Shared`].
    pub fn shared_kdf(&self) -> Option<&SaltedKdf> {
        match &self.keys {
            EncryptorKeys::Shared { kdf, .. } => Some(kdf),
            EncryptorKeys::PerKeystore { .. } => None,
        }
    }
}

impl fmt::Debug for KeystoreEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreEncryptor")
            .field("params", &self.params)
            .field("salt_mode", &self.salt_mode())
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// How many derived keys a [`KeystoreDecryptor`] keeps.
pub(super) const MAX_CACHED_KEYS: usize = 16;

/// Decrypts many keystores, running the KDF once per distinct (password, KDF
/// parameters, salt): 1,000 keystores written with [`SaltMode::Shared`] cost
/// one KDF.
///
/// Only keys that passed a checksum are cached, at most 16, oldest evicted
/// first.
///
/// # Security
///
/// Holds normalised passwords and derived keys, all wiped on drop. `Debug`
/// shows only counts.
#[derive(Default)]
pub struct KeystoreDecryptor {
    pub(super) cache: Vec<CachedKey>,
    pub(super) kdf_runs: u64,
}

pub(super) struct CachedKey {
    pub(super) password: Password,
    pub(super) kdf: SaltedKdf,
    pub(super) key: DerivedKey,
}

impl KeystoreDecryptor {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decrypts `keystore`, reusing a cached derived key when possible.
    ///
    /// # Errors
    ///
    /// As [`decrypt`].
    pub fn decrypt(
        &mut self,
        keystore: &Keystore,
        password: &Password,
    ) -> Result<SecretBytes<SECRET_KEY_BYTES>, KeystoreError> {
        if let Some(hit) = self
            .cache
            .iter()
            .find(|c| c.kdf == keystore.kdf && c.password.same_as(password))
        {
            return open(keystore, &hit.key);
        }
        let key = DerivedKey::derive(password, &keystore.kdf)?;
        self.kdf_runs += 1;
        let result = open(keystore, &key);
        if !matches!(result, Err(KeystoreError::WrongPassword)) {
            if self.cache.len() >= MAX_CACHED_KEYS {
                self.cache.remove(0);
            }
            self.cache.push(CachedKey {
                password: password.clone(),
                kdf: keystore.kdf.clone(),
                key,
            });
        }
        result
    }

    /// How many times the KDF has run.
    pub fn kdf_runs(&self) -> u64 {
        self.kdf_runs
    }
}

impl fmt::Debug for KeystoreDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreDecryptor")
            .field("cached_keys", &self.cache.len())
            .field("kdf_runs", &self.kdf_runs)
            .finish()
    }
}
