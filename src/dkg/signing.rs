//! Threshold signing of the deposits: what each validator signs, partial
//! signatures, their batched verification, and Lagrange combination.
//!
//! Spec: `ceremony-specs/protocol.md`, "Round 3" and "Round 4".

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ceremony::{OperatorId, Params};
use crate::crypto::group::{self, G1Sum, G2Sum};
use crate::crypto::{G1Point, G2Point, Scalar};
use crate::eth::ssz::DepositMessage;
use crate::eth::{Gwei, WithdrawalCredentials};
use crate::wire::Bytes;

/// What every validator of the ceremony deposits: the same credentials and
/// the same list of amounts (one deposit message, and so one signature, per
/// amount), under one network's genesis fork version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositPlan {
    /// `GENESIS_FORK_VERSION` of the network.
    pub fork_version: Bytes<4>,
    /// The withdrawal credentials of every validator.
    pub withdrawal_credentials: Bytes<32>,
    /// The deposit amounts in Gwei; at least one.
    pub amounts: Vec<u64>,
}

impl DepositPlan {
    /// A plan for `credentials` and `amounts` on the network with
    /// `fork_version`.
    pub fn new(
        fork_version: [u8; 4],
        credentials: WithdrawalCredentials,
        amounts: &[Gwei],
    ) -> Self {
        Self {
            fork_version: Bytes(fork_version),
            withdrawal_credentials: Bytes(credentials.to_bytes()),
            amounts: amounts.iter().map(|a| a.0).collect(),
        }
    }

    /// Deposits per validator.
    pub fn deposits(&self) -> usize {
        self.amounts.len()
    }

    /// The deposit messages of the validator with `group_key`.
    pub fn messages(&self, group_key: &G1Point) -> Vec<DepositMessage> {
        self.amounts
            .iter()
            .map(|&amount| DepositMessage {
                pubkey: group_key.to_bytes(),
                withdrawal_credentials: self.withdrawal_credentials.0,
                amount,
            })
            .collect()
    }

    /// `H(signing_root)` of each deposit of the validator with `group_key`.
    pub fn hashed_messages(&self, group_key: &G1Point) -> Vec<G2Point> {
        self.messages(group_key)
            .iter()
            .map(|m| G2Point::hash(&m.signing_root(self.fork_version.0)))
            .collect()
    }
}

/// The public keys derived from all deals for one validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorKeys {
    /// `Y_v = A_{v,0}`.
    pub group_key: G1Point,
    /// `PK_{v,m} = Σ_k m^k A_{v,k}` for `m = 1..=n`, in operator order.
    pub public_shares: Vec<G1Point>,
    /// The aggregated commitments `A_{v,0..t}` the keys derive from; the
    /// pairing batch weighs these `t` points instead of the `n + 1` keys.
    /// Empty when the weights would not fit in 128 bits ([`betas_fit`]):
    /// the batch then weighs the keys, and the memory is not spent.
    pub coefficients: Vec<G1Point>,
}

/// Derives every validator's group key and public shares from the dealers'
/// commitments (protocol.md, Round 3, Step 4): `A_{v,k} = Σ_j C_{vj,k}`,
/// `Y_v = A_{v,0}`, `PK_{v,m} = Σ_k m^k A_{v,k}`.
///
/// `commitments[j][v][k]` is dealer `j`'s `C_{vj,k}`.
pub fn derive_keys(params: &Params, commitments: &[&[Vec<G1Point>]]) -> Vec<ValidatorKeys> {
    keys_from_aggregate(params, &aggregate(params, commitments))
}

/// `A_{v,k} = Σ_j C_{vj,k}` for every validator `v` and `k < t`, validator
/// by validator (`t` points each).
pub fn aggregate(params: &Params, commitments: &[&[Vec<G1Point>]]) -> Vec<G1Point> {
    let mut sums: Vec<G1Sum> = Vec::with_capacity(params.validators() * params.threshold());
    for v in 0..params.validators() {
        for k in 0..params.threshold() {
            let mut acc = G1Sum::default();
            for dealer in commitments {
                if let Some(point) = dealer.get(v).and_then(|c| c.get(k)) {
                    acc.add(point);
                }
            }
            sums.push(acc);
        }
    }
    group::normalize_g1(&sums)
}

/// The group keys and public shares from the aggregated commitments of
/// [`aggregate`].
pub fn keys_from_aggregate(params: &Params, aggregated: &[G1Point]) -> Vec<ValidatorKeys> {
    let n = params.operators();
    let share_sums: Vec<G1Sum> = aggregated
        .par_chunks(params.threshold())
        .flat_map_iter(|a| (1..=n as u64).map(move |m| G1Sum::horner(a, m)))
        .collect();
    let shares = group::normalize_g1(&share_sums);
    let weighs_coefficients = betas_fit(n, params.threshold());
    aggregated
        .chunks(params.threshold())
        .zip(shares.chunks(n))
        .map(|(a, pks)| ValidatorKeys {
            group_key: a.first().copied().unwrap_or_else(G1Point::generator),
            public_shares: pks.to_vec(),
            coefficients: if weighs_coefficients {
                a.to_vec()
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// The Lagrange coefficients at 0 of the signer set `{1, …, t}`:
/// `λ_i = Π_{j≠i} j / (j − i) = (−1)^{i+1} C(t, i)`, integers.
pub fn lagrange_first_t(threshold: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(threshold);
    let mut binomial: i128 = 1; // C(t, 0)
    for i in 1..=threshold as i128 {
        binomial = binomial * (threshold as i128 - i + 1) / i;
        let sign = if i % 2 == 1 { 1 } else { -1 };
        out.push(i64::try_from(sign * binomial).unwrap_or(i64::MAX));
    }
    out
}

/// The Lagrange coefficients at 0 of any signer set, as field elements.
pub fn lagrange_at_zero(signers: &[OperatorId]) -> Vec<Scalar> {
    signers
        .iter()
        .map(|&i| {
            let xi = Scalar::from_u64(u64::from(i.get()));
            let (num, den) = signers.iter().filter(|&&j| j != i).fold(
                (Scalar::ONE, Scalar::ONE),
                |(num, den), &j| {
                    let xj = Scalar::from_u64(u64::from(j.get()));
                    (num.mul(&xj), den.mul(&xj.sub(&xi)))
                },
            );
            // Distinct non-zero indices make every denominator invertible.
            den.invert()
                .map(|inv| num.mul(&inv))
                .unwrap_or(Scalar::ZERO)
        })
        .collect()
}

/// Combines the partial signatures of operators `1..=t` into the signature
/// of the group key: `σ = Σ_{i ≤ t} λ_i σ_i`.
pub fn combine_first_t(partials: &[G2Point], threshold: usize) -> G2Point {
    let mut acc = G2Sum::default();
    for (sigma, lambda) in partials.iter().zip(lagrange_first_t(threshold)) {
        acc.add(&sigma.mul_i64(lambda));
    }
    acc.to_point()
}

/// Everything needed to check one validator's signatures.
pub struct SignatureCheck<'a> {
    /// The validator's keys.
    pub keys: &'a ValidatorKeys,
    /// `H(m_d)` per deposit.
    pub messages: &'a [G2Point],
    /// `partials[i][d]`: operator `i + 1`'s partial signature on deposit `d`.
    pub partials: Vec<&'a [G2Point]>,
    /// The combined signature per deposit.
    pub combined: &'a [G2Point],
}

/// Verifies every partial signature and every combined signature in one
/// pairing product: for independent random odd 64-bit weights `w_{v,0}`
/// (the combined signature) and `w_{v,i}` (operator `i`) per validator, and
/// `κ_{v,d}` per deposit (`κ_{v,0} = 1`, below 2^62 otherwise),
///
/// `e(G1, Σ κ_{v,d} w_{v,i} σ_{v,d,i}) == Π_v e(Q_v, Σ_d κ_{v,d} H_{v,d})`
/// with `Q_v = w_{v,0} Y_v + Σ_i w_{v,i} PK_{v,i}`.
///
/// Several wrong signatures cancel with probability below 2^-60
/// (Schwartz–Zippel over the weights, drawn after the signatures are
/// fixed); a single one always fails. Costs one Miller loop per validator.
pub fn batch_valid<R: RngCore + CryptoRng + ?Sized>(
    checks: &[SignatureCheck<'_>],
    rng: &mut R,
) -> bool {
    // In chunks, so that the multi-scalar multiplication's memory stays
    // bounded whatever the number of validators.
    checks
        .chunks(super::vss::BATCH_VALIDATORS)
        .all(|chunk| batch_valid_chunk(chunk, rng))
}

fn batch_valid_chunk<R: RngCore + CryptoRng + ?Sized>(
    checks: &[SignatureCheck<'_>],
    rng: &mut R,
) -> bool {
    // The signatures of each validator's first deposit have 64-bit weights,
    // the others (w·κ) up to 126 bits: two multi-scalar multiplications,
    // each over its own bit length.
    let mut first = (Vec::new(), Vec::new());
    let mut others = (Vec::new(), Vec::new());
    let mut terms: Vec<(G1Point, G2Point)> = Vec::with_capacity(checks.len());
    for check in checks {
        if check.partials.len() != check.keys.public_shares.len() {
            // A signature without its key (or a key without its signature)
            // is no valid batch.
            return false;
        }
        let weights: Vec<u64> = (0..=check.partials.len())
            .map(|_| rng.next_u64() | 1)
            .collect();
        let q = weighted_key(check.keys, &weights);
        let mut hashed = G2Sum::default();
        for (d, message) in check.messages.iter().enumerate() {
            // κ below 2^62, so that it is a positive i64.
            let kappa: u64 = if d == 0 { 1 } else { (rng.next_u64() >> 2) | 1 };
            hashed.add(&message.mul_i64(i64::try_from(kappa).unwrap_or(1)));
            let (points, scalars) = if d == 0 { &mut first } else { &mut others };
            let signatures = std::iter::once(check.combined.get(d))
                .chain(check.partials.iter().map(|row| row.get(d)));
            for (sigma, &w) in signatures.zip(&weights) {
                if let Some(sigma) = sigma {
                    points.push(*sigma);
                    scalars.push(u128::from(w) * u128::from(kappa));
                }
            }
        }
        terms.push((q, hashed.to_point()));
    }
    let mut lhs = G2Sum::default();
    lhs.add_point(&group::g2_msm_u128(&first.0, &first.1));
    lhs.add_point(&group::g2_msm_u128(&others.0, &others.1));
    group::pairing_check(&lhs.to_point(), &terms)
}

/// Whether every `β_k` of [`weighted_key`] fits in 128 bits for `n`
/// operators and threshold `t`: `β_k < (n + 1)·2^64·n^k`.
pub fn betas_fit(n: usize, t: usize) -> bool {
    let n = n as u128;
    let mut bound = Some((n + 1) << 64);
    for _ in 1..t {
        bound = bound.and_then(|b| b.checked_mul(n));
    }
    bound.is_some()
}

/// `Q = w_0·Y + Σ_i w_i·PK_i` for `weights = [w_0, w_1, …, w_n]`.
///
/// Since `Y = A_0` and `PK_i = Σ_k i^k A_k`, `Q = Σ_k β_k A_k` with
/// `β_0 = w_0 + Σ_i w_i` and `β_k = Σ_i w_i i^k`: `t` points with weights of
/// `64 + log2(n + 1) + (t − 1)·log2(n)` bits (87 at n = 10, t = 7) instead
/// of `n + 1` points. For large `n` and `t`, where the `β_k` do not fit in
/// 128 bits, the keys themselves are weighed.
fn weighted_key(keys: &ValidatorKeys, weights: &[u64]) -> G1Point {
    let Some((&w0, per_operator)) = weights.split_first() else {
        return keys.group_key;
    };
    let betas: Option<Vec<u128>> = (0..keys.coefficients.len())
        .map(|k| {
            let mut beta = if k == 0 { u128::from(w0) } else { 0 };
            for (i, &w) in per_operator.iter().enumerate() {
                let power = (i as u128 + 1).checked_pow(u32::try_from(k).ok()?)?;
                beta = beta.checked_add(u128::from(w).checked_mul(power)?)?;
            }
            Some(beta)
        })
        .collect();
    match betas {
        Some(betas) if !betas.is_empty() && per_operator.len() == keys.public_shares.len() => {
            group::g1_from_projective(group::g1_msm_u128(&keys.coefficients, &betas))
        }
        _ => {
            let mut points = Vec::with_capacity(keys.public_shares.len() + 1);
            points.push(keys.group_key);
            points.extend(keys.public_shares.iter().copied());
            let weights: Vec<u128> = weights.iter().map(|&w| u128::from(w)).collect();
            group::g1_from_projective(group::g1_msm_u128(&points, &weights))
        }
    }
}

/// Whether one signature verifies: `e(G1, σ) == e(key, H(m))`.
pub fn signature_valid(key: &G1Point, message: &G2Point, signature: &G2Point) -> bool {
    group::pairing_check(signature, &[(*key, *message)])
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    use super::*;
    use crate::crypto::group::G1Sum;

    fn keys(n: u64, t: u64, rng: &mut StdRng) -> ValidatorKeys {
        let params = Params::new(n, t, 1).unwrap();
        let a: Vec<G1Point> = (0..t)
            .map(|_| G1Point::mul_generator(&Scalar::random(rng)))
            .collect();
        keys_from_aggregate(&params, &a).remove(0)
    }

    /// `w_0·Y + Σ_i w_i·PK_i`, one multiplication at a time.
    fn direct(keys: &ValidatorKeys, weights: &[u64]) -> G1Point {
        let mut acc = G1Sum::default();
        let points = std::iter::once(&keys.group_key).chain(&keys.public_shares);
        for (point, &w) in points.zip(weights) {
            acc.add(&point.mul(&Scalar::from_u64(w)));
        }
        acc.to_point()
    }

    #[test]
    fn weighted_key_matches_the_keys_it_stands_for() {
        let mut rng = StdRng::seed_from_u64(21);
        // Small clusters weigh the t commitments; n = 64, t = 64 does not
        // fit the β_k in 128 bits and weighs the n + 1 keys.
        for (n, t) in [(3, 2), (4, 3), (10, 7), (20, 14), (64, 64)] {
            let keys = keys(n, t, &mut rng);
            assert_eq!(keys.coefficients.is_empty(), n == 64, "n={n} t={t}");
            let weights: Vec<u64> = (0..=n).map(|_| rng.next_u64() | 1).collect();
            assert_eq!(
                weighted_key(&keys, &weights),
                direct(&keys, &weights),
                "n={n} t={t}"
            );
        }
    }

    #[test]
    fn beta_bound_is_exact_at_the_edge() {
        // (n + 1)·2^64·n^(t−1) < 2^128: n = 20, t = 14 gives 2^124.6;
        // n = 20, t = 15 gives 2^128.9.
        assert!(betas_fit(20, 14));
        assert!(!betas_fit(20, 15));
        assert!(betas_fit(3, 2) && betas_fit(10, 7));
        assert!(!betas_fit(64, 64));
    }

    #[test]
    fn batch_catches_one_bad_partial_among_several_deposits() {
        let mut rng = StdRng::seed_from_u64(22);
        let (n, t) = (4u64, 3u64);
        let params = Params::new(n, t, 1).unwrap();
        let coefficients: Vec<Scalar> = (0..t).map(|_| Scalar::random(&mut rng)).collect();
        let a: Vec<G1Point> = coefficients.iter().map(G1Point::mul_generator).collect();
        let keys = keys_from_aggregate(&params, &a).remove(0);
        let messages: Vec<G2Point> = (0..3u8).map(|d| G2Point::hash(&[d])).collect();
        // x_m = f(m) for f with the coefficients above.
        let share = |m: u64| {
            coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, c| acc.mul(&Scalar::from_u64(m)).add(c))
        };
        let mut partials: Vec<Vec<G2Point>> = (1..=n)
            .map(|m| messages.iter().map(|h| h.mul(&share(m))).collect())
            .collect();
        let combined: Vec<G2Point> = (0..messages.len())
            .map(|d| {
                let firsts: Vec<G2Point> = partials.iter().take(3).map(|p| p[d]).collect();
                combine_first_t(&firsts, t as usize)
            })
            .collect();
        let check = |partials: &[Vec<G2Point>], rng: &mut StdRng| {
            batch_valid(
                &[SignatureCheck {
                    keys: &keys,
                    messages: &messages,
                    partials: partials.iter().map(Vec::as_slice).collect(),
                    combined: &combined,
                }],
                rng,
            )
        };
        assert!(check(&partials, &mut rng));
        // Operator 4's second deposit signed with operator 3's share: only
        // the weights of deposit 1 (w·κ, above 64 bits) carry the error.
        partials[3][1] = messages[1].mul(&share(3));
        assert!(!check(&partials, &mut rng));
    }
}
