//! Dealer mode, for tests only (feature `test-utils`): a keyshares file made
//! by one party that knows the validator keys, with fixed test operator keys
//! and a caller's RNG, so that tests on a fresh clone cover the format with
//! vectors the project makes itself.
//!
//! The shares are Shamir shares of the validator key at x = the SSV operator
//! ids, with threshold `n − (n−1)/3`, as a ceremony makes them. The test
//! operator keys in `testdata/` are RSA-2048 keys generated for dvkg's tests
//! and nothing else; they protect nothing.

use rand::{CryptoRng, RngCore};

use crate::crypto::{BlsError, Scalar, SecretKey};
use crate::eth::ExecutionAddress;

use super::keyshares::{BuildError, Keyshares, KeysharesBuilder, OperatorSlot, ValidatorShares};
use super::operator_key::{OperatorKey, OperatorPrivateKey, PrivateKeyError};
use super::ownership::sign_ownership;
use super::{CreatedAt, threshold_for};

/// The test operator keys (PKCS#1 PEM), made for these tests only.
pub const TEST_OPERATOR_KEYS: [&str; 7] = [
    include_str!("testdata/operator-1.pem"),
    include_str!("testdata/operator-2.pem"),
    include_str!("testdata/operator-3.pem"),
    include_str!("testdata/operator-4.pem"),
    include_str!("testdata/operator-5.pem"),
    include_str!("testdata/operator-6.pem"),
    include_str!("testdata/operator-7.pem"),
];

/// A 1024-bit RSA public key (SubjectPublicKeyInfo PEM), which SSV refuses.
pub const TEST_RSA_1024_PUBLIC_KEY: &str = include_str!("testdata/rsa-1024-public.pem");

/// Why dealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DealerError {
    /// There is no test key with this index.
    #[error("there are {available} test operator keys, not {wanted}")]
    NoSuchTestKey {
        /// Keys wanted.
        wanted: usize,
        /// Keys available.
        available: usize,
    },
    /// A test key did not parse.
    #[error("a test operator key does not parse")]
    Key(#[from] PrivateKeyError),
    /// A cluster size SSV does not accept.
    #[error("{0} operators is not an SSV cluster size")]
    ClusterSize(usize),
    /// A scalar was not a usable key.
    #[error("a dealt scalar is not a BLS secret key")]
    Bls(#[from] BlsError),
    /// RSA encryption failed.
    #[error("RSA encryption failed")]
    Rsa(#[from] rsa::Error),
    /// The parts do not make a keyshares file.
    #[error("the dealt parts do not build")]
    Build(#[from] BuildError),
}

/// Test operator key `index` (0-based).
///
/// # Errors
///
/// [`DealerError::NoSuchTestKey`] past the last key.
pub fn test_operator_key(index: usize) -> Result<OperatorPrivateKey, DealerError> {
    let pem = TEST_OPERATOR_KEYS
        .get(index)
        .ok_or(DealerError::NoSuchTestKey {
            wanted: index + 1,
            available: TEST_OPERATOR_KEYS.len(),
        })?;
    Ok(OperatorPrivateKey::from_pem(pem)?)
}

/// The first `count` test operators with the given ids: `(id, private key)`.
///
/// # Errors
///
/// [`DealerError::NoSuchTestKey`] for more ids than test keys.
pub fn test_operators(ids: &[u64]) -> Result<Vec<(u64, OperatorPrivateKey)>, DealerError> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| Ok((id, test_operator_key(i)?)))
        .collect()
}

/// What to deal.
#[derive(Debug, Clone)]
pub struct DealerSpec {
    /// The cluster owner.
    pub owner: ExecutionAddress,
    /// The nonce of the first validator.
    pub first_nonce: u64,
    /// The `createdAt` to write.
    pub created_at: CreatedAt,
    /// The operators, ascending by id, with their registered keys.
    pub operators: Vec<(u64, OperatorKey)>,
    /// How many validators.
    pub validators: usize,
}

/// One dealt validator: its key and each operator's share.
#[derive(Debug)]
pub struct DealtValidator {
    /// The validator key.
    pub secret: SecretKey,
    /// The shares, in operator order.
    pub shares: Vec<SecretKey>,
}

/// The result: the parts (to tamper with and rebuild), the file, the keys.
#[derive(Debug)]
pub struct Dealt {
    /// The parts given to the builder, per validator.
    pub parts: Vec<ValidatorShares>,
    /// The built file.
    pub keyshares: Keyshares,
    /// The keys behind it.
    pub validators: Vec<DealtValidator>,
}

/// Deals `spec.validators` validators to the operators and builds the file.
///
/// # Errors
///
/// A [`DealerError`]; [`DealerError::ClusterSize`] for a size SSV refuses.
pub fn deal<R: RngCore + CryptoRng>(spec: &DealerSpec, rng: &mut R) -> Result<Dealt, DealerError> {
    let n = spec.operators.len();
    let threshold = threshold_for(n).ok_or(DealerError::ClusterSize(n))?;
    let ids: Vec<u64> = spec.operators.iter().map(|(id, _)| *id).collect();
    let mut parts = Vec::with_capacity(spec.validators);
    let mut validators = Vec::with_capacity(spec.validators);
    let mut builder = KeysharesBuilder::new(spec.owner, spec.created_at.clone());
    for v in 0..spec.validators {
        let secret = nonzero_scalar(rng);
        let shares: Vec<SecretKey> = shamir_shares(&secret, &ids, threshold, rng)
            .iter()
            .map(Scalar::to_secret_key)
            .collect::<Result<_, _>>()?;
        let secret = secret.to_secret_key()?;
        let nonce = spec.first_nonce + v as u64;
        let mut operators = Vec::with_capacity(n);
        for ((id, key), share) in spec.operators.iter().zip(&shares) {
            operators.push(OperatorSlot {
                id: *id,
                operator_key: key.registered().to_owned(),
                share_public_key: share.public_key(),
                ciphertext: key.encrypt_share(share, rng)?,
            });
        }
        let part = ValidatorShares {
            public_key: secret.public_key(),
            nonce,
            signature: sign_ownership(&secret, &spec.owner, nonce),
            operators,
        };
        builder = builder.validator(part.clone());
        parts.push(part);
        validators.push(DealtValidator { secret, shares });
    }
    Ok(Dealt {
        parts,
        keyshares: builder.build()?,
        validators,
    })
}

/// Shamir shares of `secret` at x = each id, for any `threshold` of them:
/// `f(x) = secret + a_1·x + … + a_{t−1}·x^{t−1}` with random `a_k`.
pub fn shamir_shares<R: RngCore + CryptoRng>(
    secret: &Scalar,
    ids: &[u64],
    threshold: usize,
    rng: &mut R,
) -> Vec<Scalar> {
    let mut coefficients = vec![secret.clone()];
    coefficients.extend((1..threshold).map(|_| Scalar::random(rng)));
    ids.iter()
        .map(|&id| {
            let x = Scalar::from_u64(id);
            coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, a| acc.mul(&x).add(a))
        })
        .collect()
}

fn nonzero_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Scalar {
    loop {
        let s = Scalar::random(rng);
        if !s.is_zero() {
            return s;
        }
    }
}
