//! Dealer mode, for tests only (feature `test-utils`): run the real protocol
//! but choose each dealer's constant terms, so that the group secret is a
//! known value. With the constants of dealers `1..n-1` random and the last
//! one `secret − Σ others`, the ceremony shares `secret`; its threshold
//! signatures must then equal `Sign(secret, m)` byte for byte.

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};

use super::deal::{Round1Output, deal_polynomials, open_session};
use super::error::{DkgError, LocalError};
use super::messages::{Hello, Signed};
use super::state;
use super::vss::Polynomial;
use crate::ceremony::OperatorId;
use crate::crypto::Scalar;
use crate::crypto::identity::IdentityKey;

/// [`super::part1`] of a dealer with chosen constant terms, one per
/// validator.
///
/// # Errors
///
/// As [`super::part1`], and [`LocalError::DealerSecrets`] for a wrong
/// number of constants or a participant that does not deal.
pub fn part1_with_constants<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round0,
    identity: &IdentityKey,
    hellos: &BTreeMap<OperatorId, Signed<Hello>>,
    constants: Vec<Scalar>,
    rng: &mut R,
) -> Result<Round1Output, DkgError> {
    let (state, hellos, session) = open_session(state, hellos)?;
    let state::Round0 { context, me, .. } = state;
    if !context.plan.deals(me) {
        return Err(LocalError::DealerSecrets("only a dealer has them").into());
    }
    if constants.len() != context.params().validators() {
        return Err(LocalError::DealerSecrets("one per validator is needed").into());
    }
    let threshold = context.params().threshold();
    let polynomials: Vec<Polynomial> = constants
        .into_iter()
        .map(|c| Polynomial::with_constant(c, threshold, rng))
        .collect();
    let (deal, shares) =
        deal_polynomials(&context, &session, me, &hellos, &polynomials, identity, rng);
    Ok((
        state::Round1 {
            context,
            me,
            session,
            hellos,
            deal: Some(deal.clone()),
        },
        Some(deal),
        shares,
    ))
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
