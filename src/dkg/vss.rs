//! Feldman verifiable secret sharing: polynomials, commitments, Schnorr
//! proofs of knowledge, and the checks of shares and proofs (batched with
//! random weights, one by one to find a culprit).
//!
//! Spec: `ceremony-specs/protocol.md`, "Round 1" and "Round 2".

use std::fmt;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use sha2::{Digest, Sha512};

use super::error::{Counted, DkgError, Evidence, Item, KnownConstant, LocalError};
use super::messages::{DealBundle, ProofBytes, Signed};
use super::plan::{CeremonyKind, Combine, Plan, ShareIndex};
use crate::ceremony::OperatorId;
use crate::crypto::group::{G1Batch, G1Sum};
use crate::crypto::{G1Point, Scalar};
use crate::wire::Bytes;

/// Validators per batched check: large enough for Pippenger's algorithm to
/// pay off, small enough to bound the memory of one multi-scalar
/// multiplication (a few MiB) whatever the number of validators.
pub const BATCH_VALIDATORS: usize = 1024;

/// The purpose in the domain of the proof-of-knowledge challenge,
/// `"dvkg/2 <kind> proof of knowledge"` (protocol.md, Round 1, Step 3).
pub const PROOF_PURPOSE: &str = "proof of knowledge";

/// A secret polynomial `f(x) = a_0 + a_1 x + … + a_{t-1} x^{t-1}`.
///
/// # Security
///
/// The coefficients are secret (`a_0` is this dealer's contribution to the
/// validator key). [`Scalar`] wipes itself on drop; `Debug` is redacted.
pub struct Polynomial {
    coefficients: Vec<Scalar>,
}

impl fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Polynomial(degree {}, <redacted>)",
            self.coefficients.len().saturating_sub(1)
        )
    }
}

impl Polynomial {
    /// A random polynomial with `threshold` coefficients (degree `t - 1`).
    pub fn random<R: RngCore + CryptoRng + ?Sized>(threshold: usize, rng: &mut R) -> Self {
        Self {
            coefficients: (0..threshold).map(|_| Scalar::random(rng)).collect(),
        }
    }

    /// A polynomial with the given constant term and random other
    /// coefficients (dealer mode: sharing a known secret).
    pub fn with_constant<R: RngCore + CryptoRng + ?Sized>(
        constant: Scalar,
        threshold: usize,
        rng: &mut R,
    ) -> Self {
        let mut coefficients = vec![constant];
        coefficients.extend((1..threshold).map(|_| Scalar::random(rng)));
        Self { coefficients }
    }

    /// `f(x)` by Horner's rule.
    pub fn evaluate(&self, x: ShareIndex) -> Scalar {
        let x = x.scalar();
        self.coefficients
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, a| acc.mul(&x).add(a))
    }

    /// `a_0`.
    pub fn constant(&self) -> &Scalar {
        // A polynomial always has `threshold >= 2` coefficients.
        static ZERO: Scalar = Scalar::ZERO;
        self.coefficients.first().unwrap_or(&ZERO)
    }

    /// The Feldman commitments `a_k · G1`.
    pub fn commitments(&self) -> Vec<G1Point> {
        self.coefficients
            .iter()
            .map(G1Point::mul_generator)
            .collect()
    }
}

/// The proof-of-knowledge challenge
/// `c = SHA-512("dvkg/2 <kind> proof of knowledge" ‖ session ‖ validator ‖
/// dealer ‖ C_0 ‖ R) mod r` (validator as 4 big-endian bytes, the dealer's
/// slot as one byte).
pub fn proof_challenge(
    kind: CeremonyKind,
    session: &[u8; 32],
    validator: usize,
    dealer: OperatorId,
    c0: &G1Point,
    r: &G1Point,
) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update(kind.domain(PROOF_PURPOSE));
    hasher.update(session);
    hasher.update((validator as u32).to_be_bytes());
    hasher.update([dealer.get()]);
    hasher.update(c0.to_bytes());
    hasher.update(r.to_bytes());
    let digest: [u8; 64] = hasher.finalize().into();
    Scalar::from_wide(&digest)
}

/// Proves knowledge of `a_0` for `C_0 = a_0 · G1`: `R = k·G1`, `z = k + c·a_0`.
pub fn prove<R: RngCore + CryptoRng + ?Sized>(
    kind: CeremonyKind,
    session: &[u8; 32],
    validator: usize,
    dealer: OperatorId,
    a0: &Scalar,
    c0: &G1Point,
    rng: &mut R,
) -> ProofBytes {
    prove_with_nonce(
        kind,
        session,
        validator,
        dealer,
        a0,
        c0,
        &Scalar::random(rng),
    )
}

/// [`prove`] with the nonce `k` drawn by the caller, who must never use it
/// twice (two proofs with one nonce reveal `a_0`).
pub(crate) fn prove_with_nonce(
    kind: CeremonyKind,
    session: &[u8; 32],
    validator: usize,
    dealer: OperatorId,
    a0: &Scalar,
    c0: &G1Point,
    k: &Scalar,
) -> ProofBytes {
    let r = G1Point::mul_generator(k);
    let c = proof_challenge(kind, session, validator, dealer, c0, &r);
    let z = k.add(&c.mul(a0));
    ProofBytes {
        r: Bytes(r.to_uncompressed()),
        z: Bytes(*z.to_bytes_be().expose_secret()),
    }
}

/// A deal whose encodings and counts have been checked: points are in the
/// subgroup and not the identity, scalars canonical. Proofs are not checked
/// yet.
#[derive(Debug, Clone)]
pub struct ParsedDeal {
    /// The dealer.
    pub dealer: OperatorId,
    /// `commitments[v][k]`.
    pub commitments: Vec<Vec<G1Point>>,
    /// `proofs[v] = (R, z)`.
    pub proofs: Vec<(G1Point, Scalar)>,
}

/// Checks a signed deal's counts and encodings (protocol.md, Round 2, Step 3).
///
/// # Errors
///
/// [`DkgError::WrongCount`], [`DkgError::InvalidPoint`] or
/// [`DkgError::InvalidScalar`] naming the dealer, with the deal as evidence.
pub fn parse_deal(plan: &Plan, deal: &Signed<DealBundle>) -> Result<ParsedDeal, DkgError> {
    parse_deal_with(plan, deal, G1Point::from_uncompressed)
}

/// [`parse_deal`] without the subgroup checks of the points, which the
/// caller must make on what it derives from them (protocol.md, "Deferred
/// subgroup checks").
///
/// # Errors
///
/// As [`parse_deal`], except for points outside the subgroup.
pub fn parse_deal_subgroup_deferred(
    plan: &Plan,
    deal: &Signed<DealBundle>,
) -> Result<ParsedDeal, DkgError> {
    parse_deal_with(plan, deal, G1Point::from_uncompressed_subgroup_deferred)
}

fn parse_deal_with(
    plan: &Plan,
    deal: &Signed<DealBundle>,
    decode: fn(&[u8; 96]) -> Result<G1Point, crate::crypto::BlsError>,
) -> Result<ParsedDeal, DkgError> {
    let params = plan.params();
    let dealer = deal.header.sender;
    let evidence = || Box::new(Evidence::Deal { deal: deal.clone() });
    let validators = &deal.body.validators;
    if validators.len() != params.validators() {
        return Err(DkgError::WrongCount {
            culprit: dealer,
            what: Counted::ValidatorEntries,
            expected: params.validators(),
            got: validators.len(),
            evidence: evidence(),
        });
    }
    let participants = plan.slots().len();
    if deal.body.hellos.len() != participants {
        return Err(DkgError::WrongCount {
            culprit: dealer,
            what: Counted::HelloReceipts,
            expected: participants,
            got: deal.body.hellos.len(),
            evidence: evidence(),
        });
    }
    let mut commitments = Vec::with_capacity(validators.len());
    let mut proofs = Vec::with_capacity(validators.len());
    for (v, entry) in validators.iter().enumerate() {
        if entry.commitments.len() != params.threshold() {
            return Err(DkgError::WrongCount {
                culprit: dealer,
                what: Counted::Commitments { validator: v },
                expected: params.threshold(),
                got: entry.commitments.len(),
                evidence: evidence(),
            });
        }
        let points = crate::collect::try_collect_exact(entry.commitments.iter().enumerate().map(
            |(k, bytes)| {
                decode(&bytes.0).map_err(|reason| DkgError::InvalidPoint {
                    culprit: dealer,
                    validator: v,
                    item: Item::Commitment(k),
                    reason,
                    evidence: evidence(),
                })
            },
        ))?;
        let r = decode(&entry.proof.r.0).map_err(|reason| DkgError::InvalidPoint {
            culprit: dealer,
            validator: v,
            item: Item::ProofR,
            reason,
            evidence: evidence(),
        })?;
        let z = Scalar::from_bytes_be(&entry.proof.z.0).ok_or_else(|| DkgError::InvalidScalar {
            culprit: dealer,
            validator: v,
            item: Item::ProofZ,
            evidence: evidence(),
        })?;
        commitments.push(points);
        proofs.push((r, z));
    }
    Ok(ParsedDeal {
        dealer,
        commitments,
        proofs,
    })
}

/// The deferred subgroup check (protocol.md, "Deferred subgroup checks"):
/// every aggregated commitment `A_{v,k}` must be in the prime-order
/// subgroup. If one is not, some dealer sent a point outside it: the first
/// such deal, in operator order, is named (every operator holds the same
/// deals, so every operator names the same dealer).
///
/// # Errors
///
/// [`DkgError::InvalidPoint`] naming the dealer, with its deal as evidence.
pub fn check_aggregate(
    plan: &Plan,
    aggregated: &[G1Point],
    deals: &[Signed<DealBundle>],
) -> Result<(), DkgError> {
    if aggregated.par_iter().all(G1Point::in_subgroup) {
        return Ok(());
    }
    for deal in deals {
        parse_deal(plan, deal)?;
    }
    Err(LocalError::BatchMismatch("point of the deals (subgroup)").into())
}

/// The first validator whose constant commitment in `deal` is not the
/// point the plan fixes (protocol.md, Round 2, Step 3): for a split the
/// validator key itself, for a reshare `λ_j·PK_{v,j}`. `None` when the
/// plan fixes none or every one matches.
///
/// # Errors
///
/// [`LocalError::KnownKeyInvalid`] when a known point of the plan does not
/// decode.
pub fn first_wrong_constant(plan: &Plan, deal: &ParsedDeal) -> Result<Option<usize>, DkgError> {
    let Some((lambda, points)) = plan.known_constant(deal.dealer) else {
        return Ok(None);
    };
    let split = matches!(plan.combine(), Combine::Split { .. });
    let verdicts: Vec<Result<bool, usize>> = deal
        .commitments
        .par_iter()
        .zip(points)
        .enumerate()
        .map(|(v, (commitments, known))| {
            let Some(c0) = commitments.first() else {
                return Ok(false);
            };
            if split {
                // λ = 1: the encodings compare, no multiplication needed.
                return Ok(c0.to_bytes() == known.0);
            }
            let point = G1Point::from_bytes(&known.0).map_err(|_| v)?;
            Ok(point.mul(&lambda) == *c0)
        })
        .collect();
    for (v, verdict) in verdicts.into_iter().enumerate() {
        match verdict {
            Ok(true) => {}
            Ok(false) => return Ok(Some(v)),
            Err(v) => return Err(LocalError::KnownKeyInvalid(v).into()),
        }
    }
    // A parsed deal has V entries and the plan V known points, so every
    // validator was compared.
    Ok(None)
}

/// The error for a wrong constant commitment of `deal` at `validator`.
pub fn wrong_constant(plan: &Plan, deal: &Signed<DealBundle>, validator: usize) -> DkgError {
    DkgError::WrongConstant {
        culprit: deal.header.sender,
        validator,
        expected: match plan.combine() {
            Combine::Reshare { .. } => KnownConstant::WeightedPreviousShare,
            Combine::Split { .. } | Combine::Fresh => KnownConstant::ValidatorKey,
        },
        evidence: Box::new(Evidence::Deal { deal: deal.clone() }),
    }
}

/// Adds `rho · (z·G1 − c·C_0 − R)` for one proof to `batch`, `rho` a
/// short integer weight.
fn add_proof(
    batch: &mut G1Batch,
    kind: CeremonyKind,
    session: &[u8; 32],
    deal: &ParsedDeal,
    v: usize,
    rho: u64,
) {
    let (Some(commitments), Some((r, z))) = (deal.commitments.get(v), deal.proofs.get(v)) else {
        return;
    };
    let Some(c0) = commitments.first() else {
        return;
    };
    let c = proof_challenge(kind, session, v, deal.dealer, c0, r);
    let rho_scalar = Scalar::from_u64(rho);
    batch.add_generator(&rho_scalar.mul(z));
    batch.add(c0, Scalar::ZERO.sub(&rho_scalar.mul(&c)));
    batch.sub_short(r, u128::from(rho));
}

/// Adds `rho · (s·G1 − Σ_k i^k C_k)` for one share to `batch`, `rho` a
/// short integer weight: the weights `rho·i^k` of the commitments stay
/// short integers while they fit in 128 bits.
fn add_share(
    batch: &mut G1Batch,
    me: ShareIndex,
    commitments: &[G1Point],
    share: &Scalar,
    rho: u64,
) {
    let rho_scalar = Scalar::from_u64(rho);
    batch.add_generator(&rho_scalar.mul(share));
    let i = me.get();
    let x = me.scalar();
    let mut short = Some(u128::from(rho));
    let mut power = rho_scalar;
    for c in commitments {
        match short {
            Some(weight) => batch.sub_short(c, weight),
            None => batch.add(c, Scalar::ZERO.sub(&power)),
        }
        short = short.and_then(|w| w.checked_mul(u128::from(i)));
        power = power.mul(&x);
    }
}

/// A random nonzero 64-bit weight for a batch check.
fn weight<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> u64 {
    rng.next_u64() | 1
}

/// Whether one proof of knowledge verifies.
pub fn proof_valid(kind: CeremonyKind, session: &[u8; 32], deal: &ParsedDeal, v: usize) -> bool {
    let mut batch = G1Batch::default();
    add_proof(&mut batch, kind, session, deal, v, 1);
    batch.is_identity()
}

/// Whether one share matches its commitments: `s·G1 == Σ_k x^k C_k` for the
/// holder at share index `x`.
pub fn share_valid(me: ShareIndex, commitments: &[G1Point], share: &Scalar) -> bool {
    let expected = G1Sum::horner(commitments, me.get()).to_point();
    G1Point::mul_generator(share) == expected
}

/// The first invalid proof among `deals`, checked as one random linear
/// combination and, only if that fails, one by one.
pub fn first_invalid_proof<R: RngCore + CryptoRng + ?Sized>(
    kind: CeremonyKind,
    session: &[u8; 32],
    deals: &[&ParsedDeal],
    rng: &mut R,
) -> Option<(OperatorId, usize)> {
    let validators = deals.iter().map(|d| d.proofs.len()).max().unwrap_or(0);
    for start in (0..validators).step_by(BATCH_VALIDATORS) {
        let range = start..(start + BATCH_VALIDATORS).min(validators);
        let mut batch = G1Batch::default();
        for deal in deals {
            for v in range.clone().filter(|&v| v < deal.proofs.len()) {
                add_proof(&mut batch, kind, session, deal, v, weight(rng));
            }
        }
        if batch.is_identity() {
            continue;
        }
        let found = deals.iter().find_map(|deal| {
            range
                .clone()
                .find(|&v| v < deal.proofs.len() && !proof_valid(kind, session, deal, v))
                .map(|v| (deal.dealer, v))
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// One dealer's shares for this operator, with that dealer's commitments.
pub struct ShareCheck<'a> {
    /// The dealer.
    pub dealer: OperatorId,
    /// `commitments[v]`.
    pub commitments: &'a [Vec<G1Point>],
    /// `shares[v]`.
    pub shares: &'a [Scalar],
}

/// The first share that fails against its commitments, checked as one
/// random linear combination and, only if that fails, one by one.
pub fn first_invalid_share<R: RngCore + CryptoRng + ?Sized>(
    me: ShareIndex,
    checks: &[ShareCheck<'_>],
    rng: &mut R,
) -> Option<(OperatorId, usize)> {
    let validators = checks.iter().map(|c| c.shares.len()).max().unwrap_or(0);
    for start in (0..validators).step_by(BATCH_VALIDATORS) {
        let range = start..(start + BATCH_VALIDATORS).min(validators);
        let mut batch = G1Batch::default();
        for check in checks {
            for v in range.clone() {
                if let (Some(commitments), Some(share)) =
                    (check.commitments.get(v), check.shares.get(v))
                {
                    add_share(&mut batch, me, commitments, share, weight(rng));
                }
            }
        }
        if batch.is_identity() {
            continue;
        }
        let found = checks.iter().find_map(|check| {
            range
                .clone()
                .find_map(|v| match (check.commitments.get(v), check.shares.get(v)) {
                    (Some(c), Some(s)) if !share_valid(me, c, s) => Some((check.dealer, v)),
                    _ => None,
                })
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn id(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    fn x(i: u64) -> ShareIndex {
        ShareIndex::try_from(i).unwrap()
    }

    const DKG: CeremonyKind = CeremonyKind::Dkg;

    #[test]
    fn shares_match_commitments_and_tampering_is_caught() {
        let mut rng = StdRng::seed_from_u64(3);
        let poly = Polynomial::random(3, &mut rng);
        let commitments = poly.commitments();
        for i in [1, 2, 3, 4, 5, 404, (1 << 40) + 1] {
            assert!(share_valid(x(i), &commitments, &poly.evaluate(x(i))));
        }
        let bad = poly.evaluate(x(2)).add(&Scalar::ONE);
        assert!(!share_valid(x(2), &commitments, &bad));
        let shares = vec![poly.evaluate(x(2))];
        let commitments_v = vec![commitments.clone()];
        let checks = [ShareCheck {
            dealer: id(1),
            commitments: &commitments_v,
            shares: &shares,
        }];
        assert_eq!(first_invalid_share(x(2), &checks, &mut rng), None);
        let wrong = vec![bad];
        let checks = [ShareCheck {
            dealer: id(1),
            commitments: &commitments_v,
            shares: &wrong,
        }];
        assert_eq!(
            first_invalid_share(x(2), &checks, &mut rng),
            Some((id(1), 0))
        );
    }

    #[test]
    fn proofs_verify_and_bind_the_context() {
        let mut rng = StdRng::seed_from_u64(4);
        let session = [9u8; 32];
        let poly = Polynomial::random(2, &mut rng);
        let commitments = poly.commitments();
        let proof = prove(
            DKG,
            &session,
            0,
            id(1),
            poly.constant(),
            &commitments[0],
            &mut rng,
        );
        let deal = ParsedDeal {
            dealer: id(1),
            commitments: vec![commitments.clone()],
            proofs: vec![(
                G1Point::from_uncompressed(&proof.r.0).unwrap(),
                Scalar::from_bytes_be(&proof.z.0).unwrap(),
            )],
        };
        assert!(proof_valid(DKG, &session, &deal, 0));
        assert_eq!(first_invalid_proof(DKG, &session, &[&deal], &mut rng), None);
        assert!(!proof_valid(DKG, &[8u8; 32], &deal, 0));
        // The kind is bound: a DKG proof is no split proof.
        assert!(!proof_valid(CeremonyKind::Split, &session, &deal, 0));
        let other_dealer = ParsedDeal {
            dealer: id(2),
            ..deal.clone()
        };
        assert_eq!(
            first_invalid_proof(DKG, &session, &[&deal, &other_dealer], &mut rng),
            Some((id(2), 0))
        );
    }
}
