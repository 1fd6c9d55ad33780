//! Dealer mode, for tests only (feature `test-utils`): run the real protocol
//! but choose each dealer's constant terms, so that the group secret is a
//! known value. With the constants of operators `1..n-1` random and the last
//! one `secret − Σ others`, the ceremony shares `secret`; its threshold
//! signatures must then equal `Sign(secret, m)` byte for byte.

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};

use super::messages::{Hello, Signed};
use super::vss::Polynomial;
use super::{DkgError, deal_from, part1, shares_from, state};
use crate::ceremony::OperatorId;
use crate::crypto::Scalar;
use crate::crypto::identity::IdentityKey;

/// [`super::part1`] with chosen constant terms, one per validator.
///
/// # Errors
///
/// As [`super::part1`], and [`DkgError::InvalidInput`] for a wrong number of
/// constants.
pub fn part1_with_constants<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round0,
    identity: &IdentityKey,
    hellos: &BTreeMap<OperatorId, Signed<Hello>>,
    constants: Vec<Scalar>,
    rng: &mut R,
) -> Result<super::Round1Output, DkgError> {
    // Run the real round for its checks and session id, then replace the deal.
    let (mut round1, _, _) = part1(state, identity, hellos, rng)?;
    if constants.len() != round1.context.params.validators() {
        return Err(DkgError::InvalidInput(
            "one constant per validator is needed".into(),
        ));
    }
    let threshold = round1.context.params.threshold();
    let polynomials: Vec<Polynomial> = constants
        .into_iter()
        .map(|c| Polynomial::with_constant(c, threshold, rng))
        .collect();
    let deal = deal_from(
        &round1.session,
        round1.me,
        &round1.hellos,
        &polynomials,
        identity,
        rng,
    );
    let shares = shares_from(
        &round1.context,
        &round1.session,
        round1.me,
        &deal,
        &polynomials,
        identity,
    );
    round1.deal = deal.clone();
    Ok((round1, deal, shares))
}

/// Splits `secret` into `n` additive constants: `n − 1` random, the last the
/// remainder.
pub fn additive_split<R: RngCore + CryptoRng + ?Sized>(
    secret: &Scalar,
    n: usize,
    rng: &mut R,
) -> Vec<Scalar> {
    let mut parts: Vec<Scalar> = (1..n).map(|_| Scalar::random(rng)).collect();
    let sum = parts.iter().fold(Scalar::ZERO, |acc, p| acc.add(p));
    parts.push(secret.sub(&sum));
    parts
}
