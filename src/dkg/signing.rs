//! Threshold signing of the deposits: what each validator signs, partial
//! signatures, their batched verification, and Lagrange combination.
//!
//! Spec: `ceremony-specs/protocol.md`, "Round 3" and "Round 4".

use rand::{CryptoRng, RngCore};
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
    /// `PK_{v,m}` for `m = 1..=n`, in operator order.
    pub public_shares: Vec<G1Point>,
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
    let mut share_sums = Vec::with_capacity(params.validators() * n);
    for a in aggregated.chunks(params.threshold()) {
        for m in 1..=n as u64 {
            share_sums.push(G1Sum::horner(a, m));
        }
    }
    let shares = group::normalize_g1(&share_sums);
    aggregated
        .chunks(params.threshold())
        .zip(shares.chunks(n))
        .map(|(a, pks)| ValidatorKeys {
            group_key: a.first().copied().unwrap_or_else(G1Point::generator),
            public_shares: pks.to_vec(),
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
/// pairing product: for random 64-bit `τ_i` (per operator, `τ_0` for the
/// combined signature), `ρ_v` (per validator) and `κ_{v,d}` (per deposit,
/// `κ_{v,0} = 1`),
///
/// `e(G1, Σ ρ_v κ_{v,d} τ_i σ_{v,d,i}) == Π_v e(ρ_v Q_v, Σ_d κ_{v,d} H_{v,d})`
/// with `Q_v = τ_0 Y_v + Σ_i τ_i PK_{v,i}`.
///
/// A wrong signature `σ_{v,d,i}` passes with probability about 2^-63
/// (Schwartz–Zippel over the weights, drawn after the signatures are fixed).
/// Costs one Miller loop per validator.
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
    let Some(first) = checks.first() else {
        return true;
    };
    let n = first.partials.len();
    let tau: Vec<u64> = (0..=n).map(|_| rng.next_u64() | 1).collect();
    let mut g2_points: Vec<G2Point> = Vec::new();
    let mut g2_scalars: Vec<Scalar> = Vec::new();
    let mut terms: Vec<(G1Point, G2Point)> = Vec::with_capacity(checks.len());
    for check in checks {
        let rho = rng.next_u64() | 1;
        // ρ_v Q_v = Σ_i (ρ_v τ_i) PK_{v,i} + (ρ_v τ_0) Y_v, in one pass
        // (the weights are 128-bit products).
        let mut points = Vec::with_capacity(check.keys.public_shares.len() + 1);
        points.push(check.keys.group_key);
        points.extend(check.keys.public_shares.iter().copied());
        let weights: Vec<u128> = tau
            .iter()
            .map(|&t| u128::from(t) * u128::from(rho))
            .collect();
        let q = group::g1_lincomb_u128(&points, &weights);
        let mut hashed = G2Sum::default();
        for (d, message) in check.messages.iter().enumerate() {
            // κ below 2^62, so that it is a positive i64.
            let kappa: u64 = if d == 0 { 1 } else { (rng.next_u64() >> 2) | 1 };
            hashed.add(&message.mul_i64(i64::try_from(kappa).unwrap_or(1)));
            let weight = Scalar::from_u64(rho).mul(&Scalar::from_u64(kappa));
            if let Some(sigma) = check.combined.get(d) {
                g2_points.push(*sigma);
                g2_scalars.push(weight.mul(&Scalar::from_u64(tau.first().copied().unwrap_or(1))));
            }
            for (partials, &t) in check.partials.iter().zip(tau.iter().skip(1)) {
                if let Some(sigma) = partials.get(d) {
                    g2_points.push(*sigma);
                    g2_scalars.push(weight.mul(&Scalar::from_u64(t)));
                }
            }
        }
        terms.push((q, hashed.to_point()));
    }
    let lhs = group::g2_msm(&g2_points, &g2_scalars);
    group::pairing_check(&lhs, &terms)
}

/// Whether one signature verifies: `e(G1, σ) == e(key, H(m))`.
pub fn signature_valid(key: &G1Point, message: &G2Point, signature: &G2Point) -> bool {
    group::pairing_check(signature, &[(*key, *message)])
}
