//! Threshold signing: the keys derived from the dealings, the messages each
//! validator signs, partial signatures, their batched verification, and
//! Lagrange combination at any share indices.
//!
//! Spec: `ceremony-specs/protocol.md`, "Round 3" and "Round 4".

use rand::{CryptoRng, RngCore};
use rand_core::CryptoRngCore;
use rayon::prelude::*;

use super::error::{LocalError, StatementLabel};
use super::plan::{AttachmentKind, Plan, ShareIndex, Statement, StatementKind};
use crate::ceremony::Params;
use crate::crypto::group::{self, G1Sum, G2Sum};
use crate::crypto::{G1Point, G2Point, Scalar};

/// The layer that defines what a validator's key signs (the deposits and
/// the SSV ownership message are Ethereum's, in `eth/`): it turns a
/// statement of the plan into the bytes signed, for one validator.
pub trait Statements: Sync {
    /// The bytes validator `validator`, whose key is `group_key`
    /// (compressed), signs for `statement`. Never asked for
    /// [`StatementKind::Possession`], which the core builds itself.
    ///
    /// # Errors
    ///
    /// Why the statement's parameters cannot be read (a local error: the
    /// plan comes from a definition checked before).
    fn message(
        &self,
        validator: usize,
        statement: &Statement,
        group_key: &[u8; 48],
    ) -> Result<Vec<u8>, String>;

    /// What a holder attaches to its partial signatures (the plan's
    /// [`super::plan::Attachments`]): one attachment per validator, made
    /// from its own share `shares[v]` of validator `v`'s key and its
    /// parameters in the plan. Asked only when the plan has attachments;
    /// the core checks their number and length.
    ///
    /// # Errors
    ///
    /// Why they cannot be made (a local error). The default makes none.
    fn attach(
        &self,
        kind: AttachmentKind,
        params: &[u8],
        shares: &[Scalar],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<Vec<u8>>, String> {
        let _ = (params, shares, rng);
        Err(format!("no layer makes the {kind}"))
    }
}

/// Statements for a plan that signs only possession messages: no layer
/// above is needed.
pub struct PossessionOnly;

impl Statements for PossessionOnly {
    fn message(&self, _: usize, statement: &Statement, _: &[u8; 48]) -> Result<Vec<u8>, String> {
        Err(format!(
            "a {} needs the layer that defines it",
            statement.kind
        ))
    }
}

/// The possession message of validator `validator` (protocol.md §2.3):
/// `"dvkg/2 <kind> possession" ‖ S ‖ u32_be(v) ‖ Y_v`. Signing it with the
/// threshold shares proves they sign for `Y_v`, in this session only.
pub fn possession_message(
    plan: &Plan,
    session: &[u8; 32],
    validator: usize,
    group_key: &[u8; 48],
) -> Vec<u8> {
    let mut message = plan.kind().domain("possession");
    message.extend_from_slice(session);
    message.extend_from_slice(&(validator as u32).to_be_bytes());
    message.extend_from_slice(group_key);
    message
}

/// The label of statement `index` of the plan, for messages to the user.
pub fn label(plan: &Plan, index: usize) -> StatementLabel {
    let statements = plan.statements();
    let kind = statements
        .get(index)
        .map_or(StatementKind::Deposit, |s| s.kind);
    let nth = statements
        .iter()
        .take(index)
        .filter(|s| s.kind == kind)
        .count();
    StatementLabel { kind, nth }
}

/// The messages validator `validator` signs, one per statement of the plan.
///
/// # Errors
///
/// [`LocalError::Statement`] when the layer above cannot build one.
pub fn messages(
    plan: &Plan,
    statements: &dyn Statements,
    session: &[u8; 32],
    validator: usize,
    group_key: &G1Point,
) -> Result<Vec<Vec<u8>>, LocalError> {
    let key = group_key.to_bytes();
    plan.statements()
        .iter()
        .enumerate()
        .map(|(index, statement)| match statement.kind {
            StatementKind::Possession => Ok(possession_message(plan, session, validator, &key)),
            StatementKind::Deposit | StatementKind::Ownership => statements
                .message(validator, statement, &key)
                .map_err(|reason| LocalError::Statement {
                    index,
                    kind: statement.kind,
                    reason,
                }),
        })
        .collect()
}

/// `H(m)` of every message of every validator, on every core.
///
/// # Errors
///
/// As [`messages`].
pub fn hashed_messages(
    plan: &Plan,
    statements: &dyn Statements,
    session: &[u8; 32],
    keys: &[ValidatorKeys],
) -> Result<Vec<Vec<G2Point>>, LocalError> {
    keys.par_iter()
        .enumerate()
        .map(|(v, k)| {
            Ok(messages(plan, statements, session, v, &k.group_key)?
                .iter()
                .map(|m| G2Point::hash(m))
                .collect())
        })
        .collect()
}

/// The public keys derived from all deals for one validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorKeys {
    /// `Y_v = A_{v,0}`.
    pub group_key: G1Point,
    /// `PK_{v,m} = Σ_k x_m^k A_{v,k}` for every holder `m` at share index
    /// `x_m`, in holder order.
    pub public_shares: Vec<G1Point>,
    /// The aggregated commitments `A_{v,0..t}` the keys derive from; the
    /// pairing batch weighs these `t` points instead of the `n + 1` keys.
    /// Empty when the weights would not fit in 128 bits ([`betas_fit`]):
    /// the batch then weighs the keys, and the memory is not spent.
    pub coefficients: Vec<G1Point>,
}

/// Derives every validator's group key and public shares from the dealers'
/// commitments (protocol.md, Round 3, Step 4): `A_{v,k} = Σ_j C_{vj,k}`,
/// `Y_v = A_{v,0}`, `PK_{v,m} = Σ_k x_m^k A_{v,k}`.
///
/// `commitments[j][v][k]` is dealer `j`'s `C_{vj,k}`.
pub fn derive_keys(
    params: &Params,
    indices: &[ShareIndex],
    commitments: &[&[Vec<G1Point>]],
) -> Vec<ValidatorKeys> {
    keys_from_aggregate(params, indices, &aggregate(params, commitments))
}

/// `A_{v,k} = Σ_j C_{vj,k}` for every validator `v` and `k < t`, over every
/// dealer.
pub fn aggregate(params: &Params, commitments: &[&[Vec<G1Point>]]) -> Vec<G1Point> {
    let mut aggregator = Aggregator::new(params);
    for dealer in commitments {
        aggregator.add(dealer);
    }
    aggregator.finish()
}

/// The sums of [`aggregate`], taken one dealer at a time: a transcript's
/// verifier adds each deal as it reads it, and keeps no deal.
#[derive(Debug, Clone)]
pub struct Aggregator {
    threshold: usize,
    /// `sums[v·t + k]`.
    sums: Vec<G1Sum>,
}

impl Aggregator {
    /// Empty sums for `params`' validators and threshold.
    pub fn new(params: &Params) -> Self {
        Self {
            threshold: params.threshold(),
            sums: vec![G1Sum::default(); params.validators() * params.threshold()],
        }
    }

    /// Adds one dealer's `commitments[v][k]` (on every core); entries past
    /// the validators or the threshold are ignored (a parsed deal has none).
    pub fn add(&mut self, commitments: &[Vec<G1Point>]) {
        self.sums
            .par_chunks_mut(self.threshold.max(1))
            .zip(commitments)
            .for_each(|(sums, points)| {
                for (sum, point) in sums.iter_mut().zip(points) {
                    sum.add(point);
                }
            });
    }

    /// `A_{v,k}`, flattened validator by validator (`t` points each).
    pub fn finish(self) -> Vec<G1Point> {
        group::normalize_g1(&self.sums)
    }
}

/// The group keys and public shares (at the holders' `indices`) from the
/// aggregated commitments of [`aggregate`].
pub fn keys_from_aggregate(
    params: &Params,
    indices: &[ShareIndex],
    aggregated: &[G1Point],
) -> Vec<ValidatorKeys> {
    let n = indices.len();
    let share_sums: Vec<G1Sum> = aggregated
        .par_chunks(params.threshold())
        .flat_map_iter(|a| indices.iter().map(move |x| G1Sum::horner(a, x.get())))
        .collect();
    let shares = group::normalize_g1(&share_sums);
    let weighs_coefficients = betas_fit(indices, params.threshold());
    aggregated
        .chunks(params.threshold())
        .zip(shares.chunks(n.max(1)))
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

/// The Lagrange coefficients at 0 of the signers at `indices`:
/// `λ_i = Π_{j≠i} x_j / (x_j − x_i)`, as field elements.
pub fn lagrange_at_zero(indices: &[ShareIndex]) -> Vec<Scalar> {
    indices
        .iter()
        .map(|&i| {
            let xi = i.scalar();
            let (num, den) = indices.iter().filter(|&&j| j != i).fold(
                (Scalar::ONE, Scalar::ONE),
                |(num, den), &j| {
                    let xj = j.scalar();
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

/// How the partial signatures of the first `t` holders combine into the
/// signature of the group key: `σ = Σ_{i ≤ t} λ_i σ_i`.
#[derive(Debug, Clone)]
pub enum Combiner {
    /// The first `t` holders are at indices `1..=t`: the coefficients are
    /// small integers, `λ_i = (−1)^{i+1} C(t, i)` (protocol.md, Round 4,
    /// Step 2), and combining costs a few group additions.
    Small(Vec<i64>),
    /// Any other indices: field coefficients, a full multiplication each.
    Field(Vec<Scalar>),
}

impl Combiner {
    /// The combiner of the first `threshold` of `indices`.
    pub fn first_t(indices: &[ShareIndex], threshold: usize) -> Self {
        let firsts = indices.get(..threshold).unwrap_or(indices);
        let consecutive = firsts
            .iter()
            .enumerate()
            .all(|(position, x)| x.get() == position as u64 + 1);
        if consecutive && let Some(small) = lagrange_first_t(threshold) {
            Self::Small(small)
        } else {
            Self::Field(lagrange_at_zero(firsts))
        }
    }

    /// Combines the partial signatures of the first `t` holders.
    pub fn combine(&self, partials: &[G2Point]) -> G2Point {
        let mut acc = G2Sum::default();
        match self {
            Self::Small(lambdas) => {
                for (sigma, &lambda) in partials.iter().zip(lambdas) {
                    acc.add(&sigma.mul_i64(lambda));
                }
            }
            Self::Field(lambdas) => {
                for (sigma, lambda) in partials.iter().zip(lambdas) {
                    acc.add_point(&sigma.mul(lambda));
                }
            }
        }
        acc.to_point()
    }
}

/// The Lagrange coefficients at 0 of the signer set `{1, …, t}`:
/// `λ_i = Π_{j≠i} j / (j − i) = (−1)^{i+1} C(t, i)`, integers; `None` if
/// one does not fit in an `i64` (never for `t ≤ 64`).
pub fn lagrange_first_t(threshold: usize) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(threshold);
    let mut binomial: i128 = 1; // C(t, 0)
    for i in 1..=threshold as i128 {
        binomial = binomial * (threshold as i128 - i + 1) / i;
        let sign = if i % 2 == 1 { 1 } else { -1 };
        out.push(i64::try_from(sign * binomial).ok()?);
    }
    Some(out)
}

/// Everything needed to check one validator's signatures.
pub struct SignatureCheck<'a> {
    /// The validator's keys.
    pub keys: &'a ValidatorKeys,
    /// `H(m_d)` per statement.
    pub messages: &'a [G2Point],
    /// `partials[i][d]`: holder `i`'s partial signature on statement `d`,
    /// in holder order.
    pub partials: Vec<&'a [G2Point]>,
    /// The combined signature per statement.
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
    indices: &[ShareIndex],
    checks: &[SignatureCheck<'_>],
    rng: &mut R,
) -> bool {
    // In chunks, so that the multi-scalar multiplication's memory stays
    // bounded whatever the number of validators.
    checks
        .chunks(super::vss::BATCH_VALIDATORS)
        .all(|chunk| batch_valid_chunk(indices, chunk, rng))
}

fn batch_valid_chunk<R: RngCore + CryptoRng + ?Sized>(
    indices: &[ShareIndex],
    checks: &[SignatureCheck<'_>],
    rng: &mut R,
) -> bool {
    if checks
        .iter()
        .any(|check| check.partials.len() != check.keys.public_shares.len())
    {
        // A signature without its key (or a key without its signature)
        // is no valid batch.
        return false;
    }
    // The weights first, on this thread (the generator is not shared):
    // per validator, `w_{v,0..=n}`, then `κ_{v,d}` per statement.
    let draws: Vec<(Vec<u64>, Vec<u64>)> = checks
        .iter()
        .map(|check| {
            let weights = (0..=check.partials.len())
                .map(|_| rng.next_u64() | 1)
                .collect();
            // κ below 2^62, so that it is a positive i64.
            let kappas = (0..check.messages.len())
                .map(|d| if d == 0 { 1 } else { (rng.next_u64() >> 2) | 1 })
                .collect();
            (weights, kappas)
        })
        .collect();
    // Then each validator's `Q_v` and `Σ_d κ_{v,d} H_{v,d}` on every core.
    let terms: Vec<(G1Point, G2Point)> = checks
        .par_iter()
        .zip(&draws)
        .map(|(check, (weights, kappas))| {
            let mut hashed = G2Sum::default();
            for (message, &kappa) in check.messages.iter().zip(kappas) {
                hashed.add(&message.mul_i64(i64::try_from(kappa).unwrap_or(1)));
            }
            (
                weighted_key(check.keys, indices, weights),
                hashed.to_point(),
            )
        })
        .collect();
    // The signatures of each validator's first deposit have 64-bit weights,
    // the others (w·κ) up to 126 bits: two multi-scalar multiplications,
    // each over its own bit length.
    let mut first = (Vec::new(), Vec::new());
    let mut others = (Vec::new(), Vec::new());
    for (check, (weights, kappas)) in checks.iter().zip(&draws) {
        for (d, &kappa) in kappas.iter().enumerate() {
            let (points, scalars) = if d == 0 { &mut first } else { &mut others };
            let signatures = std::iter::once(check.combined.get(d))
                .chain(check.partials.iter().map(|row| row.get(d)));
            for (sigma, &w) in signatures.zip(weights) {
                if let Some(sigma) = sigma {
                    points.push(*sigma);
                    scalars.push(u128::from(w) * u128::from(kappa));
                }
            }
        }
    }
    let mut lhs = G2Sum::default();
    lhs.add_point(&group::g2_msm_u128(&first.0, &first.1));
    lhs.add_point(&group::g2_msm_u128(&others.0, &others.1));
    group::pairing_check(&lhs.to_point(), &terms)
}

/// Whether every `β_k` of [`weighted_key`] fits in 128 bits for holders
/// at `indices` and threshold `t`: `β_k < (n + 1)·2^64·x_max^k`.
pub fn betas_fit(indices: &[ShareIndex], t: usize) -> bool {
    let n = indices.len() as u128;
    let largest = u128::from(indices.iter().map(|x| x.get()).max().unwrap_or(1));
    let mut bound = Some((n + 1) << 64);
    for _ in 1..t {
        bound = bound.and_then(|b| b.checked_mul(largest));
    }
    bound.is_some()
}

/// `Q = w_0·Y + Σ_i w_i·PK_i` for `weights = [w_0, w_1, …, w_n]`.
///
/// Since `Y = A_0` and `PK_i = Σ_k x_i^k A_k`, `Q = Σ_k β_k A_k` with
/// `β_0 = w_0 + Σ_i w_i` and `β_k = Σ_i w_i x_i^k`: `t` points with weights
/// of `64 + log2(n + 1) + (t − 1)·log2(x_max)` bits (87 at n = 10, t = 7
/// and indices 1..=10) instead of `n + 1` points. Where the `β_k` do not
/// fit in 128 bits (large indices, or large `n` and `t`), the keys
/// themselves are weighed.
fn weighted_key(keys: &ValidatorKeys, indices: &[ShareIndex], weights: &[u64]) -> G1Point {
    let Some((&w0, per_holder)) = weights.split_first() else {
        return keys.group_key;
    };
    let betas: Option<Vec<u128>> = (0..keys.coefficients.len())
        .map(|k| {
            let mut beta = if k == 0 { u128::from(w0) } else { 0 };
            for (x, &w) in indices.iter().zip(per_holder) {
                let power = u128::from(x.get()).checked_pow(u32::try_from(k).ok()?)?;
                beta = beta.checked_add(u128::from(w).checked_mul(power)?)?;
            }
            Some(beta)
        })
        .collect();
    match betas {
        Some(betas)
            if !betas.is_empty()
                && per_holder.len() == keys.public_shares.len()
                && indices.len() == per_holder.len() =>
        {
            group::g1_from_projective(group::g1_small_msm_u128(&keys.coefficients, &betas))
        }
        _ => {
            let mut points = Vec::with_capacity(keys.public_shares.len() + 1);
            points.push(keys.group_key);
            points.extend(keys.public_shares.iter().copied());
            let weights: Vec<u128> = weights.iter().map(|&w| u128::from(w)).collect();
            group::g1_from_projective(group::g1_small_msm_u128(&points, &weights))
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

    fn indices(list: &[u64]) -> Vec<ShareIndex> {
        list.iter()
            .map(|&i| ShareIndex::try_from(i).unwrap())
            .collect()
    }

    fn slots(n: u64) -> Vec<ShareIndex> {
        indices(&(1..=n).collect::<Vec<_>>())
    }

    fn keys(indices: &[ShareIndex], t: u64, rng: &mut StdRng) -> ValidatorKeys {
        let params = Params::new(indices.len() as u64, t, 1).unwrap();
        let a: Vec<G1Point> = (0..t)
            .map(|_| G1Point::mul_generator(&Scalar::random(rng)))
            .collect();
        keys_from_aggregate(&params, indices, &a).remove(0)
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
        // fit the β_k in 128 bits and weighs the n + 1 keys, nor do SSV
        // operator ids above 2^32 at t = 3.
        let cases: Vec<(Vec<ShareIndex>, u64, bool)> = vec![
            (slots(3), 2, true),
            (slots(4), 3, true),
            (slots(10), 7, true),
            (slots(20), 14, true),
            (slots(64), 64, false),
            (indices(&[11, 27, 103, 404]), 3, true),
            (indices(&[11, 27, 103, (1 << 40) + 7]), 3, false),
        ];
        for (indices, t, fits) in cases {
            let keys = keys(&indices, t, &mut rng);
            assert_eq!(!keys.coefficients.is_empty(), fits, "{indices:?} t={t}");
            let weights: Vec<u64> = (0..=indices.len()).map(|_| rng.next_u64() | 1).collect();
            assert_eq!(
                weighted_key(&keys, &indices, &weights),
                direct(&keys, &weights),
                "{indices:?} t={t}"
            );
        }
    }

    #[test]
    fn beta_bound_is_exact_at_the_edge() {
        // (n + 1)·2^64·n^(t−1) < 2^128: n = 20, t = 14 gives 2^124.6;
        // n = 20, t = 15 gives 2^128.9.
        assert!(betas_fit(&slots(20), 14));
        assert!(!betas_fit(&slots(20), 15));
        assert!(betas_fit(&slots(3), 2) && betas_fit(&slots(10), 7));
        assert!(!betas_fit(&slots(64), 64));
    }

    #[test]
    fn combiners_agree_with_interpolation_at_any_indices() {
        let mut rng = StdRng::seed_from_u64(23);
        let secret = Scalar::random(&mut rng);
        let a1 = Scalar::random(&mut rng);
        let a2 = Scalar::random(&mut rng);
        let f = |x: u64| {
            let x = Scalar::from_u64(x);
            secret.add(&a1.mul(&x)).add(&a2.mul(&x).mul(&x))
        };
        let h = G2Point::hash(b"message");
        for list in [
            vec![1, 2, 3, 4],
            vec![11, 27, 103, 404],
            vec![3, 1 << 33, 9, 2],
        ] {
            let indices = indices(&list);
            let combiner = Combiner::first_t(&indices, 3);
            assert_eq!(
                matches!(combiner, Combiner::Small(_)),
                list.starts_with(&[1, 2, 3])
            );
            let partials: Vec<G2Point> = list.iter().take(3).map(|&x| h.mul(&f(x))).collect();
            assert_eq!(combiner.combine(&partials), h.mul(&secret), "{list:?}");
        }
    }

    #[test]
    fn batch_catches_one_bad_partial_among_several_deposits() {
        let mut rng = StdRng::seed_from_u64(22);
        for list in [vec![1, 2, 3, 4], vec![11, 27, 103, 1 << 40]] {
            let indices = indices(&list);
            let t = 3usize;
            let params = Params::new(4, 3, 1).unwrap();
            let coefficients: Vec<Scalar> = (0..t).map(|_| Scalar::random(&mut rng)).collect();
            let a: Vec<G1Point> = coefficients.iter().map(G1Point::mul_generator).collect();
            let keys = keys_from_aggregate(&params, &indices, &a).remove(0);
            let messages: Vec<G2Point> = (0..3u8).map(|d| G2Point::hash(&[d])).collect();
            // x_m = f(m) for f with the coefficients above.
            let share = |m: u64| {
                coefficients
                    .iter()
                    .rev()
                    .fold(Scalar::ZERO, |acc, c| acc.mul(&Scalar::from_u64(m)).add(c))
            };
            let mut partials: Vec<Vec<G2Point>> = list
                .iter()
                .map(|&m| messages.iter().map(|h| h.mul(&share(m))).collect())
                .collect();
            let combiner = Combiner::first_t(&indices, t);
            let combined: Vec<G2Point> = (0..messages.len())
                .map(|d| {
                    let firsts: Vec<G2Point> = partials.iter().take(t).map(|p| p[d]).collect();
                    combiner.combine(&firsts)
                })
                .collect();
            let check = |partials: &[Vec<G2Point>], rng: &mut StdRng| {
                batch_valid(
                    &indices,
                    &[SignatureCheck {
                        keys: &keys,
                        messages: &messages,
                        partials: partials.iter().map(Vec::as_slice).collect(),
                        combined: &combined,
                    }],
                    rng,
                )
            };
            assert!(check(&partials, &mut rng), "{list:?}");
            // Holder 4's second statement signed with holder 3's share: only
            // the weights of statement 1 (w·κ, above 64 bits) carry the error.
            partials[3][1] = messages[1].mul(&share(list[2]));
            assert!(!check(&partials, &mut rng), "{list:?}");
        }
    }
}
