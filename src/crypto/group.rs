//! Group arithmetic for the DKG: scalars, G1 and G2 points, multi-scalar
//! multiplication and pairing checks, over blst (through `blstrs`).
//!
//! Every point that enters from outside goes through `from_bytes`, which
//! checks the encoding, the curve, the prime-order subgroup and (for G1
//! commitments) that it is not the identity. Points built here by arithmetic
//! are in the subgroup by construction.

use std::fmt;

use blst::MultiPoint;
use blstrs::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective};
use ff::Field;
use group::prime::PrimeCurveAffine;
use group::{Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroize;

use super::bls::{BlsError, PublicKey, SIGNATURE_DST, Signature};
use super::secret::SecretBytes;

/// An element of the scalar field `Fr` of BLS12-381 (integers mod `r`).
///
/// # Security
///
/// Scalars hold polynomial coefficients and key shares. The value is
/// overwritten with zero on drop; `Debug` prints `<redacted>`; there is no
/// `Display` or `Serialize`. Public scalars (Lagrange coefficients, proof
/// responses) use the same type and pay the same negligible wiping cost.
#[derive(Clone, PartialEq, Eq)]
pub struct Scalar(pub(crate) blstrs::Scalar);

impl Scalar {
    /// Zero.
    pub const ZERO: Self = Self(blstrs::Scalar::ZERO);
    /// One.
    pub const ONE: Self = Self(blstrs::Scalar::ONE);

    /// A uniformly random scalar: 64 random bytes reduced mod `r` ("wide
    /// reduction"), so the bias is below 2^-128.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let out = Self::from_wide(&wide);
        wide.zeroize();
        out
    }

    /// Reduces 64 big-endian bytes mod `r`.
    ///
    /// Horner's rule over three limbs of 2, 31 and 31 bytes: each limb is
    /// below `2^248 < r`, so it converts exactly, and the multiplications
    /// by `2^248` reduce mod `r`: a dozen field multiplications instead of
    /// `from_u128`'s 64 doublings per 16-byte limb, and no branch on the
    /// value, since random coefficients and key shares come through here.
    pub fn from_wide(bytes: &[u8; 64]) -> Self {
        let (head, rest) = bytes.split_at(2);
        let (middle, low) = rest.split_at(31);
        let shift = blstrs::Scalar::from(2u64).pow_vartime([248]);
        let acc = limb_248(head) * shift + limb_248(middle);
        Self(acc * shift + limb_248(low))
    }

    /// A small integer, such as an operator index.
    pub fn from_u64(value: u64) -> Self {
        Self(blstrs::Scalar::from(value))
    }

    /// Parses a canonical 32-byte big-endian scalar (`< r`).
    pub fn from_bytes_be(bytes: &[u8; 32]) -> Option<Self> {
        Option::from(blstrs::Scalar::from_bytes_be(bytes)).map(Self)
    }

    /// The 32-byte big-endian encoding, in a buffer wiped on drop.
    pub fn to_bytes_be(&self) -> SecretBytes<32> {
        let mut raw = self.0.to_bytes_be();
        SecretBytes::new(&mut raw)
    }

    /// `self + other`.
    pub fn add(&self, other: &Self) -> Self {
        Self(self.0 + other.0)
    }

    /// `self - other`.
    pub fn sub(&self, other: &Self) -> Self {
        Self(self.0 - other.0)
    }

    /// `self * other`.
    pub fn mul(&self, other: &Self) -> Self {
        Self(self.0 * other.0)
    }

    /// The multiplicative inverse, or `None` for zero.
    pub fn invert(&self) -> Option<Self> {
        Option::from(self.0.invert()).map(Self)
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        bool::from(self.0.is_zero())
    }

    /// Uses this scalar as a BLS secret key (for signing with the standard
    /// API, and for keystores).
    ///
    /// # Errors
    ///
    /// [`BlsError::SecretKeyOutOfRange`] for zero.
    pub fn to_secret_key(&self) -> Result<super::SecretKey, BlsError> {
        super::SecretKey::from_bytes(&self.to_bytes_be())
    }

    /// The scalar of a BLS secret key.
    pub fn from_secret_key(key: &super::SecretKey) -> Self {
        // A secret key is a canonical non-zero scalar, so this cannot fail;
        // fall back to zero rather than panic if blst ever disagreed.
        Self::from_bytes_be(key.to_bytes().expose_secret()).unwrap_or(Self::ZERO)
    }
}

impl Zeroize for Scalar {
    fn zeroize(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: `self.0` is a valid, aligned, initialised `blstrs::Scalar`
        // that we hold by unique reference; a volatile write of another valid
        // value keeps the compiler from eliding the wipe.
        unsafe {
            std::ptr::write_volatile(&mut self.0, blstrs::Scalar::ZERO);
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Scalar {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scalar(<redacted>)")
    }
}

/// A big-endian integer of at most 31 bytes (below `2^248 < r`) as a
/// scalar, exactly; longer input is cut to its first 31 bytes, which no
/// caller passes.
fn limb_248(bytes: &[u8]) -> blstrs::Scalar {
    let bytes = bytes.get(..31).unwrap_or(bytes);
    let mut padded = [0u8; 32];
    if let Some(slot) = padded.get_mut(32 - bytes.len()..) {
        slot.copy_from_slice(bytes);
    }
    // Below 2^248, so always canonical.
    let out = Option::from(blstrs::Scalar::from_bytes_be(&padded)).unwrap_or(blstrs::Scalar::ZERO);
    padded.zeroize();
    out
}

/// A point of the G1 subgroup: a Feldman commitment, a public share or a
/// group public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct G1Point(pub(crate) G1Affine);

impl G1Point {
    /// The generator `G1`.
    pub fn generator() -> Self {
        Self(G1Affine::generator())
    }

    /// `scalar * G1`.
    pub fn mul_generator(scalar: &Scalar) -> Self {
        Self((G1Projective::generator() * scalar.0).to_affine())
    }

    /// `scalar * self`.
    pub fn mul(&self, scalar: &Scalar) -> Self {
        Self((self.0 * scalar.0).to_affine())
    }

    /// Decodes a compressed point, refusing bad encodings, points outside the
    /// subgroup and the identity.
    ///
    /// # Errors
    ///
    /// The [`BlsError`] naming the problem.
    pub fn from_bytes(bytes: &[u8; 48]) -> Result<Self, BlsError> {
        // The unchecked decoding tells "not on the curve" apart from "not in
        // the subgroup", so that blame can say which.
        validated(Option::from(G1Affine::from_compressed_unchecked(bytes))).map(Self)
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.to_compressed()
    }

    /// Decodes an uncompressed point (96 bytes, ZCash serialization),
    /// refusing bad encodings, points off the curve or outside the subgroup,
    /// and the identity. No square root is needed, which makes this about a
    /// third cheaper than [`G1Point::from_bytes`]: the protocol's messages
    /// carry points uncompressed.
    ///
    /// # Errors
    ///
    /// The [`BlsError`] naming the problem.
    pub fn from_uncompressed(bytes: &[u8; 96]) -> Result<Self, BlsError> {
        validated(Option::from(G1Affine::from_uncompressed_unchecked(bytes))).map(Self)
    }

    /// The 96-byte uncompressed encoding.
    pub fn to_uncompressed(&self) -> [u8; 96] {
        self.0.to_uncompressed()
    }

    /// Decodes an uncompressed point like [`G1Point::from_uncompressed`]
    /// (on the curve, not the identity) but **without** the subgroup check,
    /// which costs more than the rest of a deal's validation.
    ///
    /// # Security
    ///
    /// The result may lie outside the prime-order subgroup. Only the DKG's
    /// received commitments go through this, and the protocol checks the
    /// subgroup membership of everything it derives from them, which covers
    /// every key it outputs (protocol.md, "Deferred subgroup checks"); on a
    /// failure it falls back to [`G1Point::from_uncompressed`] to name the
    /// dealer.
    ///
    /// # Errors
    ///
    /// [`BlsError::BadEncoding`] off the curve or badly encoded,
    /// [`BlsError::Identity`] for the identity.
    pub fn from_uncompressed_subgroup_deferred(bytes: &[u8; 96]) -> Result<Self, BlsError> {
        let point: G1Affine = Option::from(G1Affine::from_uncompressed_unchecked(bytes))
            .ok_or(BlsError::BadEncoding)?;
        if bool::from(point.is_identity()) {
            return Err(BlsError::Identity);
        }
        if !bool::from(point.is_on_curve()) {
            return Err(BlsError::BadEncoding);
        }
        Ok(Self(point))
    }

    /// Whether this point is in the prime-order subgroup (always true for a
    /// point from a checked constructor).
    pub fn in_subgroup(&self) -> bool {
        self.0.torsion_free()
    }

    /// This point as a validated BLS public key.
    ///
    /// # Errors
    ///
    /// [`BlsError::Identity`] for the identity, which is no usable key.
    pub fn to_public_key(&self) -> Result<PublicKey, BlsError> {
        PublicKey::from_bytes(&self.to_bytes())
    }

    /// Whether this is the identity.
    pub fn is_identity(&self) -> bool {
        bool::from(self.0.is_identity())
    }
}

impl fmt::Debug for G1Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "G1({})", hex::encode(self.to_bytes()))
    }
}

/// The validation every received point goes through: a decoding, then not
/// the identity, then in the prime-order subgroup (in that order, so that
/// blame says which rule failed).
fn validated<A>(decoded: Option<A>) -> Result<A, BlsError>
where
    A: PrimeCurveAffine + TorsionFree,
{
    let point = decoded.ok_or(BlsError::BadEncoding)?;
    if bool::from(point.is_identity()) {
        return Err(BlsError::Identity);
    }
    if !point.torsion_free() {
        return Err(BlsError::NotInSubgroup);
    }
    Ok(point)
}

/// The subgroup test of blstrs' affine types, which is inherent, not a trait.
trait TorsionFree {
    fn torsion_free(&self) -> bool;
}

impl TorsionFree for G1Affine {
    fn torsion_free(&self) -> bool {
        bool::from(self.is_torsion_free())
    }
}

impl TorsionFree for G2Affine {
    fn torsion_free(&self) -> bool {
        bool::from(self.is_torsion_free())
    }
}

/// A running sum of G1 points in projective form.
#[derive(Clone, Copy, Debug)]
pub struct G1Sum(G1Projective);

impl Default for G1Sum {
    fn default() -> Self {
        Self(G1Projective::identity())
    }
}

impl G1Sum {
    /// Adds a point.
    pub fn add(&mut self, point: &G1Point) {
        self.0 += point.0;
    }

    /// The sum as a point.
    pub fn to_point(&self) -> G1Point {
        G1Point(self.0.to_affine())
    }
}

impl G1Sum {
    /// `k * self` for a small non-negative integer (an operator index),
    /// by double-and-add: a handful of group operations instead of a
    /// full-width scalar multiplication.
    pub fn mul_small(&self, k: u64) -> Self {
        let mut acc = G1Projective::identity();
        for bit in (0..64 - k.leading_zeros()).rev() {
            acc = acc.double();
            if (k >> bit) & 1 == 1 {
                acc += self.0;
            }
        }
        Self(acc)
    }

    /// `self + other`.
    pub fn plus(&self, other: &Self) -> Self {
        Self(self.0 + other.0)
    }

    /// `sum_k x^k * coefficients[k]` by Horner's rule, for a small `x` (an
    /// operator index): the public share of operator `x` from the
    /// coefficient commitments.
    pub fn horner(coefficients: &[G1Point], x: u64) -> Self {
        let mut acc = Self::default();
        for point in coefficients.iter().rev() {
            acc = acc.mul_small(x);
            acc.add(point);
        }
        acc
    }
}

/// Converts many projective sums to points with one shared inversion.
pub fn normalize_g1(sums: &[G1Sum]) -> Vec<G1Point> {
    let projective: Vec<G1Projective> = sums.iter().map(|s| s.0).collect();
    let mut affine = vec![G1Affine::identity(); projective.len()];
    G1Projective::batch_normalize(&projective, &mut affine);
    affine.into_iter().map(G1Point).collect()
}

/// A linear combination of G1 points that must equal the identity, checked
/// with multi-scalar multiplications: the shape of every batched check
/// (Schnorr proofs, shares against commitments).
///
/// Terms come in two kinds: full-width scalars ([`G1Batch::add`]) and short
/// non-negative integers that are subtracted ([`G1Batch::sub_short`]). The
/// random weights of a batch are 64-bit integers, and a multi-scalar
/// multiplication costs in proportion to the bit length of its scalars, so
/// the short terms (about four times cheaper) get their own.
#[derive(Default)]
pub struct G1Batch {
    points: Vec<G1Point>,
    scalars: Vec<Scalar>,
    short_points: Vec<G1Point>,
    short_weights: Vec<u128>,
    generator: Option<Scalar>,
}

impl G1Batch {
    /// Adds `scalar * point`.
    pub fn add(&mut self, point: &G1Point, scalar: Scalar) {
        self.points.push(*point);
        self.scalars.push(scalar);
    }

    /// Subtracts `weight * point` (a short integer weight).
    pub fn sub_short(&mut self, point: &G1Point, weight: u128) {
        self.short_points.push(*point);
        self.short_weights.push(weight);
    }

    /// Adds `scalar * G1`.
    pub fn add_generator(&mut self, scalar: &Scalar) {
        self.generator = Some(match self.generator.take() {
            Some(acc) => acc.add(scalar),
            None => scalar.clone(),
        });
    }

    /// Whether the combination is the identity.
    ///
    /// The generator's scalar is secret-derived (a random combination of
    /// shares): it is multiplied by blst's constant-time multiplication,
    /// not inside the Pippenger multi-scalar multiplication, whose memory
    /// accesses follow its scalars' digits. The other terms are public
    /// points with public or random weights.
    pub fn is_identity(mut self) -> bool {
        let generator = self
            .generator
            .take()
            .map_or_else(G1Projective::identity, |g| G1Projective::generator() * g.0);
        let long = g1_msm(&self.points, &self.scalars);
        let short = g1_msm_u128(&self.short_points, &self.short_weights);
        bool::from((generator + long - short).is_identity())
    }
}

/// The weights as blst's Pippenger wants them, little-endian, each in as
/// many bytes as the largest needs; and that largest bit length (at least
/// 1).
fn weight_bytes(weights: &[u128]) -> (Vec<u8>, usize) {
    let max = weights.iter().copied().max().unwrap_or(0);
    let bits = (128 - max.leading_zeros() as usize).max(1);
    let width = bits.div_ceil(8);
    let mut out = Vec::with_capacity(weights.len() * width);
    for w in weights {
        out.extend_from_slice(w.to_le_bytes().get(..width).unwrap_or_default());
    }
    (out, bits)
}

/// blst's Pippenger over the first `min(points, weights)` pairs, at the
/// weights' real bit length; `None` when there is none.
fn pippenger_u128<A>(points: &[A], weights: &[u128]) -> Option<<[A] as MultiPoint>::Output>
where
    [A]: MultiPoint,
{
    let count = points.len().min(weights.len());
    let (points, weights) = (points.get(..count)?, weights.get(..count)?);
    if count == 0 {
        return None;
    }
    let (bytes, bits) = weight_bytes(weights);
    Some(points.mult(&bytes, bits))
}

/// `Σ_i weights[i] * points[i]` for short non-negative integer weights, by
/// blst's Pippenger over the weights' real bit length (the scalar version
/// always pays for 255 bits).
pub fn g1_msm_u128(points: &[G1Point], weights: &[u128]) -> G1Projective {
    let affine: Vec<blst::blst_p1_affine> = points.iter().map(|p| *p.0.as_ref()).collect();
    let mut out = G1Projective::identity();
    if let Some(sum) = pippenger_u128(&affine, weights) {
        *AsMut::<blst::blst_p1>::as_mut(&mut out) = sum;
    }
    out
}

/// `Σ_i weights[i] * points[i]` for a few points with short public weights,
/// on the calling thread: one double-and-add over the longest weight shared
/// by every point (Straus and Shamir's trick), adding at each bit the
/// precomputed sum of the points whose weight has that bit set. For one
/// validator's handful of key points, where blst's multi-scalar
/// multiplication would hand each point to its thread pool; callers
/// run it on every core over the validators instead. Variable time: the
/// weights are a verifier's random draws or public integers, never a
/// secret.
pub fn g1_small_msm_u128(points: &[G1Point], weights: &[u128]) -> G1Projective {
    // Groups of at most four points: a table of 16 subset sums each.
    const GROUP: usize = 4;
    let mut total = G1Projective::identity();
    for (points, weights) in points.chunks(GROUP).zip(weights.chunks(GROUP)) {
        let mut table = [G1Projective::identity(); 1 << GROUP];
        for mask in 1..1usize << points.len() {
            let lower = mask & (mask - 1);
            let bit = (mask ^ lower).trailing_zeros() as usize;
            let sum = match (table.get(lower), points.get(bit)) {
                (Some(&below), Some(point)) => below + point.0,
                _ => continue,
            };
            if let Some(slot) = table.get_mut(mask) {
                *slot = sum;
            }
        }
        let top = weights
            .iter()
            .map(|w| 128 - w.leading_zeros())
            .max()
            .unwrap_or(0);
        let mut acc = G1Projective::identity();
        for bit in (0..top).rev() {
            acc = acc.double();
            let mask = weights.iter().enumerate().fold(0usize, |mask, (i, w)| {
                mask | ((((w >> bit) & 1) as usize) << i)
            });
            if let Some(sum) = table.get(mask).filter(|_| mask != 0) {
                acc += sum;
            }
        }
        total += acc;
    }
    total
}

/// `Σ_i weights[i] * points[i]` in G2 for short non-negative integer
/// weights (see [`g1_msm_u128`]).
pub fn g2_msm_u128(points: &[G2Point], weights: &[u128]) -> G2Point {
    let affine: Vec<blst::blst_p2_affine> = points.iter().map(|p| *p.0.as_ref()).collect();
    let mut out = G2Projective::identity();
    if let Some(sum) = pippenger_u128(&affine, weights) {
        *AsMut::<blst::blst_p2>::as_mut(&mut out) = sum;
    }
    G2Point(out.to_affine())
}

/// `sum_i scalars[i] * points[i]`, by Pippenger's algorithm (the identity
/// for no points: blst's Pippenger indexes its first point).
pub fn g1_msm(points: &[G1Point], scalars: &[Scalar]) -> G1Projective {
    if points.is_empty() || scalars.is_empty() {
        return G1Projective::identity();
    }
    let projective: Vec<G1Projective> = points.iter().map(|p| G1Projective::from(p.0)).collect();
    let raw: Vec<blstrs::Scalar> = scalars.iter().map(|s| s.0).collect();
    G1Projective::multi_exp(&projective, &raw)
}

/// A G2 point: a (partial) BLS signature or a hashed message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct G2Point(pub(crate) G2Affine);

impl G2Point {
    /// `H(message)`: hash to G2 with Ethereum's signature DST.
    pub fn hash(message: &[u8]) -> Self {
        Self(G2Projective::hash_to_curve(message, SIGNATURE_DST, &[]).to_affine())
    }

    /// `scalar * self`; with `self = H(m)` and a secret key, a signature.
    pub fn mul(&self, scalar: &Scalar) -> Self {
        Self((self.0 * scalar.0).to_affine())
    }

    /// Decodes a compressed signature, refusing bad encodings, points outside
    /// the subgroup and the identity.
    ///
    /// # Errors
    ///
    /// The [`BlsError`] naming the problem.
    pub fn from_bytes(bytes: &[u8; 96]) -> Result<Self, BlsError> {
        validated(Option::from(G2Affine::from_compressed_unchecked(bytes))).map(Self)
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 96] {
        self.0.to_compressed()
    }

    /// Decodes an uncompressed G2 point (192 bytes), refusing bad
    /// encodings, points off the curve or outside the subgroup, and the
    /// identity; no square root needed (see [`G1Point::from_uncompressed`]).
    ///
    /// # Errors
    ///
    /// The [`BlsError`] naming the problem.
    pub fn from_uncompressed(bytes: &[u8; 192]) -> Result<Self, BlsError> {
        validated(Option::from(G2Affine::from_uncompressed_unchecked(bytes))).map(Self)
    }

    /// The 192-byte uncompressed encoding.
    pub fn to_uncompressed(&self) -> [u8; 192] {
        self.0.to_uncompressed()
    }

    /// This point as a standard signature.
    ///
    /// # Errors
    ///
    /// Only if the point is the identity.
    pub fn to_signature(&self) -> Result<Signature, BlsError> {
        Signature::from_bytes(&self.to_bytes())
    }
}

impl fmt::Debug for G2Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "G2({})", hex::encode(self.to_bytes()))
    }
}

impl G1Point {
    /// `k * self` for a 64-bit `k`, by double-and-add (about a quarter of
    /// the cost of a full-width multiplication): random weights of batched
    /// checks are 64 bits.
    pub fn mul_u64(&self, k: u64) -> G1Sum {
        G1Sum(mul_u64_projective(G1Projective::from(self.0), k))
    }
}

fn mul_u64_projective<P: Group>(point: P, k: u64) -> P {
    let mut acc = P::identity();
    for bit in (0..64 - k.leading_zeros()).rev() {
        acc = acc.double();
        if (k >> bit) & 1 == 1 {
            acc += point;
        }
    }
    acc
}

impl G2Point {
    /// `k * self` for a signed 64-bit `k`, by double-and-add: the Lagrange
    /// coefficients of the signer set `{1, …, t}` are such integers.
    pub fn mul_i64(&self, k: i64) -> G2Sum {
        let product = mul_u64_projective(G2Projective::from(self.0), k.unsigned_abs());
        G2Sum(if k < 0 { -product } else { product })
    }
}

/// A running sum of G2 points in projective form.
#[derive(Clone, Copy, Debug)]
pub struct G2Sum(G2Projective);

impl Default for G2Sum {
    fn default() -> Self {
        Self(G2Projective::identity())
    }
}

impl G2Sum {
    /// Adds a point.
    pub fn add_point(&mut self, point: &G2Point) {
        self.0 += point.0;
    }

    /// Adds another sum.
    pub fn add(&mut self, other: &Self) {
        self.0 += other.0;
    }

    /// The sum as a point.
    pub fn to_point(&self) -> G2Point {
        G2Point(self.0.to_affine())
    }
}

/// A scalar from a `u64` (random weights of batched checks).
impl From<u64> for Scalar {
    fn from(value: u64) -> Self {
        Self::from_u64(value)
    }
}

/// Checks `e(G1, signature) == prod_j e(keys[j], messages[j])`, the shape of
/// a random-linear-combination batch of BLS verifications grouped by
/// message: one Miller loop per distinct message plus one.
///
/// The terms go through blst's multi-Miller loop, which shares the `Fp12`
/// squarings of all terms (and spreads them over the cores blst may use),
/// then one final exponentiation.
pub fn pairing_check(signature: &G2Point, terms: &[(G1Point, G2Point)]) -> bool {
    let degenerate = bool::from(signature.0.is_identity())
        || terms.is_empty()
        || terms
            .iter()
            .any(|(key, message)| bool::from(key.0.is_identity() | message.0.is_identity()));
    if degenerate {
        // blst's loops take no point at infinity; e(O, Q) = e(P, O) = 1.
        return pairing_check_with_identities(signature, terms);
    }
    let (messages, keys): (Vec<blst::blst_p2_affine>, Vec<blst::blst_p1_affine>) = terms
        .iter()
        .map(|(key, message)| {
            (
                *AsRef::<blst::blst_p2_affine>::as_ref(&message.0),
                *AsRef::<blst::blst_p1_affine>::as_ref(&key.0),
            )
        })
        .unzip();
    let rhs = blst::blst_fp12::miller_loop_n(&messages, &keys);
    let lhs = blst::blst_fp12::miller_loop(
        AsRef::<blst::blst_p2_affine>::as_ref(&signature.0),
        AsRef::<blst::blst_p1_affine>::as_ref(&G1Affine::generator()),
    );
    // final_exp(conj(lhs) · rhs) == 1
    blst::blst_fp12::finalverify(&lhs, &rhs)
}

/// [`pairing_check`] through blstrs, which defines a pairing with the
/// identity as 1.
fn pairing_check_with_identities(signature: &G2Point, terms: &[(G1Point, G2Point)]) -> bool {
    let neg_g1 = -G1Affine::generator();
    let prepared_sig = G2Prepared::from(signature.0);
    let prepared: Vec<(G1Affine, G2Prepared)> = terms
        .iter()
        .map(|(key, message)| (key.0, G2Prepared::from(message.0)))
        .collect();
    let mut refs: Vec<(&G1Affine, &G2Prepared)> = Vec::with_capacity(terms.len() + 1);
    refs.push((&neg_g1, &prepared_sig));
    refs.extend(prepared.iter().map(|(k, m)| (k, m)));
    let result = Bls12::multi_miller_loop(&refs).final_exponentiation();
    bool::from(result.is_identity())
}

/// Converts a projective G1 sum to a point.
pub fn g1_from_projective(point: G1Projective) -> G1Point {
    G1Point(point.to_affine())
}

/// The uncompressed encoding of a point on the curve that is outside the
/// prime-order subgroup: what a dishonest dealer would send to plant a
/// small-order component (fault injection only).
#[cfg(feature = "fault-injection")]
pub fn non_subgroup_g1_uncompressed() -> [u8; 96] {
    // Candidate x coordinates 1, 2, ...; about half are on the curve and
    // almost all of those are outside the subgroup (the cofactor is large).
    let mut x = 0u64;
    loop {
        x += 1;
        let mut bytes = [0u8; 48];
        bytes[40..].copy_from_slice(&x.to_be_bytes());
        bytes[0] |= 0x80;
        let candidate: Option<G1Affine> = G1Affine::from_compressed_unchecked(&bytes).into();
        if let Some(point) = candidate
            && validated(Some(point)) == Err(BlsError::NotInSubgroup)
        {
            return point.to_uncompressed();
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    use super::*;

    #[test]
    fn a_batch_of_generator_and_short_terms_alone_is_checked() {
        // The generator term (multiplied apart, in constant time) with
        // short terms only, and no full-width term: x·G1 − 1·(x·G1) is
        // the identity, x·G1 − 1·((x+1)·G1) is not.
        let mut rng = StdRng::seed_from_u64(15);
        let x = Scalar::random(&mut rng);
        let mut batch = G1Batch::default();
        batch.add_generator(&x);
        batch.sub_short(&G1Point::mul_generator(&x), 1);
        assert!(batch.is_identity());
        let mut batch = G1Batch::default();
        batch.add_generator(&x);
        batch.sub_short(&G1Point::mul_generator(&x.add(&Scalar::from_u64(1))), 1);
        assert!(!batch.is_identity());
        assert!(bool::from(g1_msm(&[], &[]).is_identity()));
        assert!(G1Batch::default().is_identity());
    }

    #[test]
    fn wide_reduction_matches_field_arithmetic() {
        let mut bytes = [0u8; 64];
        bytes[63] = 5;
        assert_eq!(Scalar::from_wide(&bytes), Scalar::from_u64(5));
        bytes[47] = 1; // 2^128
        let two_128 = Scalar::from_u64(1 << 32)
            .mul(&Scalar::from_u64(1 << 32))
            .mul(&Scalar::from_u64(1 << 32))
            .mul(&Scalar::from_u64(1 << 32));
        assert_eq!(Scalar::from_wide(&bytes), two_128.add(&Scalar::from_u64(5)));
        // 2^512 - 1 reduces to a canonical value that round-trips.
        let max = Scalar::from_wide(&[0xff; 64]);
        assert_eq!(
            Scalar::from_bytes_be(max.to_bytes_be().expose_secret()),
            Some(max)
        );
    }

    #[test]
    fn wide_reduction_matches_byte_by_byte_horner() {
        // An independent reduction: acc = 256·acc + byte over all 64 bytes.
        let mut rng = StdRng::seed_from_u64(248);
        let base = Scalar::from_u64(256);
        for case in 0..300 {
            let mut bytes = [0u8; 64];
            rng.fill_bytes(&mut bytes);
            if case % 3 == 0 {
                // A prefix of 0xff bytes, of every length across the limbs.
                let cut = case % 64;
                bytes
                    .get_mut(..cut)
                    .into_iter()
                    .flatten()
                    .for_each(|b| *b = 0xff);
            }
            let reference = bytes.iter().fold(Scalar::ZERO, |acc, &b| {
                acc.mul(&base).add(&Scalar::from_u64(u64::from(b)))
            });
            assert_eq!(Scalar::from_wide(&bytes), reference, "case {case}");
        }
    }

    #[test]
    fn small_msms_match_blsts_multi_scalar_multiplication() {
        // Up to nine points (three groups of four), weights from 0 to 128
        // bits, against blst's Pippenger over the same weights.
        let mut rng = StdRng::seed_from_u64(4);
        for count in 0..10usize {
            let points: Vec<G1Point> = (0..count)
                .map(|_| G1Point::mul_generator(&Scalar::random(&mut rng)))
                .collect();
            for bits in [0u32, 1, 7, 64, 70, 128] {
                let weights: Vec<u128> = (0..count)
                    .map(|_| {
                        let w = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
                        w.checked_shr(128 - bits).unwrap_or(0)
                    })
                    .collect();
                let ours = g1_small_msm_u128(&points, &weights);
                let pippenger = g1_msm_u128(&points, &weights);
                assert_eq!(ours, pippenger, "{count} points of {bits} bits");
            }
        }
    }

    #[test]
    fn signing_by_scalar_matches_blst() {
        let mut rng = StdRng::seed_from_u64(7);
        let x = Scalar::random(&mut rng);
        let sk = x.to_secret_key().unwrap();
        let ours = G2Point::hash(b"message").mul(&x);
        assert_eq!(ours.to_bytes(), sk.sign(b"message").to_bytes());
        assert_eq!(
            G1Point::mul_generator(&x).to_bytes(),
            sk.public_key().to_bytes()
        );
        assert_eq!(Scalar::from_secret_key(&sk), x);
    }

    #[test]
    fn pairing_check_accepts_valid_and_rejects_invalid() {
        let mut rng = StdRng::seed_from_u64(8);
        let x = Scalar::random(&mut rng);
        let pk = G1Point::mul_generator(&x);
        let h = G2Point::hash(b"m");
        let sig = h.mul(&x);
        assert!(pairing_check(&sig, &[(pk, h)]));
        assert!(!pairing_check(&sig, &[(pk, G2Point::hash(b"n"))]));
    }

    #[test]
    fn pairing_check_handles_batches_and_identities() {
        let mut rng = StdRng::seed_from_u64(9);
        let xs: Vec<Scalar> = (0..5).map(|_| Scalar::random(&mut rng)).collect();
        let hashes: Vec<G2Point> = (0..5u8).map(|i| G2Point::hash(&[i])).collect();
        let mut sum = G2Sum::default();
        for (x, h) in xs.iter().zip(&hashes) {
            sum.add_point(&h.mul(x));
        }
        let terms: Vec<(G1Point, G2Point)> = xs
            .iter()
            .zip(&hashes)
            .map(|(x, h)| (G1Point::mul_generator(x), *h))
            .collect();
        assert!(pairing_check(&sum.to_point(), &terms));
        let mut swapped = terms.clone();
        swapped.swap(0, 1);
        swapped[0].1 = terms[0].1;
        swapped[1].1 = terms[1].1;
        assert!(!pairing_check(&sum.to_point(), &swapped));
        // A term with the identity pairs to 1; so does an identity signature
        // against no term.
        let g2_identity = G2Point(G2Affine::identity());
        let mut with_identity = terms.clone();
        with_identity.push((G1Point(G1Affine::identity()), hashes[0]));
        assert!(pairing_check(&sum.to_point(), &with_identity));
        assert!(pairing_check(&g2_identity, &[]));
        assert!(!pairing_check(&sum.to_point(), &[]));
    }

    /// `Σ scalars[i]·points[i]` in G2 at full width: the oracle for
    /// [`g2_msm_u128`].
    fn g2_msm(points: &[G2Point], scalars: &[Scalar]) -> G2Point {
        let projective: Vec<G2Projective> =
            points.iter().map(|p| G2Projective::from(p.0)).collect();
        let raw: Vec<blstrs::Scalar> = scalars.iter().map(|s| s.0).collect();
        G2Point(G2Projective::multi_exp(&projective, &raw).to_affine())
    }

    #[test]
    fn short_weight_msms_match_scalar_multiplication() {
        let mut rng = StdRng::seed_from_u64(13);
        let g1: Vec<G1Point> = (0..40)
            .map(|_| G1Point::mul_generator(&Scalar::random(&mut rng)))
            .collect();
        let g2: Vec<G2Point> = (0..40u8).map(|i| G2Point::hash(&[i])).collect();
        let as_scalar = |k: u128| {
            Scalar::from_u64((k >> 64) as u64)
                .mul(&Scalar::from_u64(1 << 32))
                .mul(&Scalar::from_u64(1 << 32))
                .add(&Scalar::from_u64(k as u64))
        };
        // 1, 3 and 40 points (blst takes other paths below 32 points);
        // weights of 1, 64 and 126 bits, and zero.
        for count in [1usize, 3, 40] {
            for top in [1u128, u128::from(u64::MAX), (1 << 126) - 3] {
                let weights: Vec<u128> = (0..count as u128)
                    .map(|i| if i == 1 { 0 } else { top - i.min(top) })
                    .collect();
                let scalars: Vec<Scalar> = weights.iter().map(|&w| as_scalar(w)).collect();
                assert_eq!(
                    g1_from_projective(g1_msm_u128(&g1[..count], &weights)),
                    g1_from_projective(g1_msm(&g1[..count], &scalars)),
                    "G1, {count} points, top weight {top}"
                );
                assert_eq!(
                    g2_msm_u128(&g2[..count], &weights),
                    g2_msm(&g2[..count], &scalars),
                    "G2, {count} points, top weight {top}"
                );
            }
        }
        assert!(bool::from(g1_msm_u128(&[], &[]).is_identity()));
        assert_eq!(g2_msm_u128(&[], &[]), G2Point(G2Affine::identity()));
    }

    #[test]
    fn decoding_refuses_identity_and_garbage() {
        let mut identity = [0u8; 48];
        identity[0] = 0xc0;
        assert_eq!(G1Point::from_bytes(&identity), Err(BlsError::Identity));
        assert_eq!(G1Point::from_bytes(&[0xff; 48]), Err(BlsError::BadEncoding));
        let g = G1Point::generator();
        assert_eq!(G1Point::from_bytes(&g.to_bytes()), Ok(g));
        assert_eq!(G1Point::from_uncompressed(&g.to_uncompressed()), Ok(g));
        let mut uncompressed_identity = [0u8; 96];
        uncompressed_identity[0] = 0x40;
        assert_eq!(
            G1Point::from_uncompressed(&uncompressed_identity),
            Err(BlsError::Identity)
        );
        assert_eq!(
            G1Point::from_uncompressed(&[0x11; 96]),
            Err(BlsError::BadEncoding)
        );
        let h = G2Point::hash(b"x");
        assert_eq!(G2Point::from_uncompressed(&h.to_uncompressed()), Ok(h));
        assert_eq!(format!("{:?}", Scalar::ONE), "Scalar(<redacted>)");
    }
}
