//! The per-operator, per-validator cost of the whole DKG protocol (rounds 0
//! to 4, all checks, transcript), next to a floor measured in the same run:
//! the unavoidable primitives per validator, `t` G1 multiplications for the
//! commitments, one BLS signature, and one share of a batched pairing check
//! (one Miller loop); next to that floor plus the checks a sound protocol
//! cannot skip (the proof of knowledge's nonce, the subgroup checks of the
//! `t` aggregated commitments and of the `n − 1` partial signatures
//! received); and next to naive per-item checks (every share, proof and
//! partial signature verified on its own).
//!
//! Run: `taskset -c 0 cargo bench --bench dkg` (V = 1,000;
//! `DVKG_BENCH_VALIDATORS=N` to change it, `DVKG_BENCH_SIZES=4` for n = 4
//! only, `DVKG_BENCH_SIZES=ssv` for an SSV cluster against a plain DKG of the
//! same size; `DVKG_BENCH_PRIMITIVES=1` for the primitives' costs,
//! `DVKG_BENCH_FIXED_BASE=1` for blst's fixed-base table against the floor).
//! All operators run in this one process, one after another, so total
//! time / n is one operator's time. blst spreads large multi-scalar
//! multiplications over every core the process may use: `taskset -c 0`
//! pins it to one, for the per-core figures (the bench says how many it
//! had).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dvkg::ceremony::OperatorId;
use dvkg::crypto::group::{g2_msm_u128, pairing_check};
use dvkg::crypto::{G1Point, G2Point, Scalar};
use dvkg::dkg::plan::{CeremonyKind, ShareIndex};
use dvkg::dkg::runner::{self, Cluster, Hooks};
use dvkg::dkg::{signing, vss};
use dvkg::eth::statements::{DepositPlan, EthStatements};
use dvkg::eth::{ExecutionAddress, Gwei, WithdrawalCredentials, WithdrawalKind};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

fn plan() -> DepositPlan {
    let address = ExecutionAddress::from_bytes([0x42; 20]);
    let credentials =
        WithdrawalCredentials::for_address(WithdrawalKind::Compounding, address).expect("0x02");
    DepositPlan::new(
        [0x10, 0x00, 0x09, 0x10],
        credentials,
        &[Gwei(32_000_000_000)],
    )
}

/// Runs a whole ceremony in process (the library's runner: the machine's
/// round sequence, every operator in turn); returns the time spent per
/// step (start, rounds 1 to 4, finish), summed over the operators.
fn ceremony(n: u64, t: u64, v: u64, rng: &mut StdRng) -> [Duration; 6] {
    let cluster = Cluster::dkg(
        n,
        t,
        v,
        None,
        plan().statements(),
        Arc::new(EthStatements),
        rng,
    );
    let run = runner::run(&cluster, Hooks::default(), rng.next_u64());
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.outputs.len(), n as usize);
    run.times
}

/// The same ceremony for an SSV cluster of 4 at ids 11, 27, 103, 404: one
/// more statement (the ownership message) and, per holder, one RSA-2048
/// encryption of its share per validator (dvkg's test operator keys).
fn ssv_ceremony(v: u64, rng: &mut StdRng) -> [Duration; 6] {
    use dvkg::dkg::Context;
    use dvkg::dkg::plan::Plan;
    use dvkg::eth::statements::{OwnershipParams, ssv_attachments};
    use dvkg::wire::Bytes;

    let base = Cluster::dkg(
        4,
        3,
        v,
        None,
        plan().statements(),
        Arc::new(EthStatements),
        rng,
    );
    let roster: Vec<_> = base
        .context
        .plan
        .participants()
        .iter()
        .map(|p| p.identity)
        .collect();
    let ids: Vec<ShareIndex> = [11u64, 27, 103, 404]
        .iter()
        .map(|&i| ShareIndex::try_from(i).expect("index"))
        .collect();
    let mut statements = plan().statements();
    statements.push(
        OwnershipParams {
            owner: Bytes([0x38; 20]),
            first_nonce: 0,
        }
        .statement(),
    );
    let keys: Vec<_> = (0..4)
        .map(|i| {
            dvkg::ssv::dealer::test_operator_key(i)
                .expect("a test key")
                .public_key()
        })
        .collect();
    let plan = Plan::dkg(&roster, Some(&ids), 3, v as u32, statements)
        .and_then(|p| p.with_attachments(ssv_attachments(&keys)))
        .expect("an SSV plan");
    let identities = base
        .identities
        .iter()
        .map(|k| dvkg::crypto::identity::IdentityKey::from_seed(&k.to_seed()))
        .collect();
    let cluster = Cluster::new(
        Context {
            plan,
            definition_hash: base.context.definition_hash,
        },
        identities,
        Arc::new(EthStatements),
    );
    let run = runner::run(&cluster, Hooks::default(), rng.next_u64());
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    run.times
}

/// One RSA-2048 PKCS#1 v1.5 encryption of a share, as an SSV holder makes
/// per validator.
fn rsa_encryption(samples: usize, rng: &mut StdRng) -> Duration {
    let key = dvkg::ssv::dealer::test_operator_key(0)
        .expect("a test key")
        .public_key();
    let share = Scalar::random(rng).to_secret_key().expect("a key");
    let start = Instant::now();
    for _ in 0..samples {
        let _ = key.encrypt_share(&share, rng).expect("encrypts");
    }
    start.elapsed() / samples as u32
}

/// The floor per validator: `t` G1 multiplications (the commitments), one
/// signature (hash to G2 and one G2 multiplication), and 1/V of one sound
/// batched check of V signatures under V keys: a random 64-bit weight per
/// signature on both sides (a 64-bit G1 multiplication, and 1/V of a G2
/// multi-scalar multiplication over 64-bit weights) and a pairing product of
/// V + 1 Miller loops with one final exponentiation. Without the weights the
/// batch would not be a check: errors in two signatures could cancel.
fn floor(t: usize, v: usize, rng: &mut StdRng) -> Duration {
    let scalars: Vec<Scalar> = (0..t * v).map(|_| Scalar::random(rng)).collect();
    let start = Instant::now();
    let commitments: Vec<G1Point> = scalars.iter().map(G1Point::mul_generator).collect();
    let keys: Vec<G1Point> = commitments.iter().step_by(t).copied().collect();
    let hashes: Vec<G2Point> = (0..v)
        .map(|i| G2Point::hash(&(i as u64).to_be_bytes()))
        .collect();
    let signatures: Vec<G2Point> = hashes
        .iter()
        .zip(scalars.iter().step_by(t))
        .map(|(h, x)| h.mul(x))
        .collect();
    let weights: Vec<u64> = (0..v).map(|_| rng.next_u64() | 1).collect();
    let terms: Vec<(G1Point, G2Point)> = keys
        .iter()
        .zip(&hashes)
        .zip(&weights)
        .map(|((k, h), &w)| (k.mul_u64(w).to_point(), *h))
        .collect();
    let wide: Vec<u128> = weights.iter().map(|&w| u128::from(w)).collect();
    let sum = g2_msm_u128(&signatures, &wide);
    let ok = pairing_check(&sum, &terms);
    assert!(ok, "floor check must pass");
    start.elapsed() / v as u32
}

/// What a sound protocol adds to the floor per validator and cannot skip
/// (protocol.md §1.3, Round 1): the nonce `R` of the proof of knowledge (a
/// G1 multiplication), the subgroup checks of the `t` aggregated
/// commitments, and the subgroup checks of the `n − 1` partial signatures
/// received (decoded from their uncompressed encoding).
fn unskippable(n: usize, t: usize, samples: usize, rng: &mut StdRng) -> Duration {
    let nonces: Vec<Scalar> = (0..samples).map(|_| Scalar::random(rng)).collect();
    let aggregated: Vec<G1Point> = (0..t)
        .map(|_| G1Point::mul_generator(&Scalar::random(rng)))
        .collect();
    let partials: Vec<[u8; 192]> = (0..n - 1)
        .map(|i| {
            G2Point::hash(&(i as u64).to_be_bytes())
                .mul(&Scalar::random(rng))
                .to_uncompressed()
        })
        .collect();
    let start = Instant::now();
    for nonce in &nonces {
        let _r = G1Point::mul_generator(nonce);
        assert!(aggregated.iter().all(G1Point::in_subgroup));
        assert!(
            partials
                .iter()
                .all(|p| G2Point::from_uncompressed(p).is_ok())
        );
    }
    start.elapsed() / samples as u32
}

/// Naive checks per validator for one operator: every proof, every share
/// and every partial signature verified on its own (n of each).
fn naive(n: usize, t: usize, samples: usize, rng: &mut StdRng) -> Duration {
    let session = [1u8; 32];
    let me = ShareIndex::try_from(1u64).expect("index");
    let kind = CeremonyKind::Dkg;
    let mut deals = Vec::new();
    for j in 0..n {
        let dealer = OperatorId::from_position(j).expect("id");
        let poly = vss::Polynomial::random(t, rng);
        let commitments = poly.commitments();
        let proof = vss::prove(
            kind,
            &session,
            0,
            dealer,
            poly.constant(),
            &commitments[0],
            rng,
        );
        let parsed = vss::ParsedDeal {
            dealer,
            commitments: vec![commitments],
            proofs: vec![(
                G1Point::from_uncompressed(&proof.r.0).expect("r"),
                Scalar::from_bytes_be(&proof.z.0).expect("z"),
            )],
        };
        deals.push((parsed, poly.evaluate(me)));
    }
    let x = Scalar::random(rng);
    let pk = G1Point::mul_generator(&x);
    let h = G2Point::hash(b"deposit");
    let sigma = h.mul(&x);
    let start = Instant::now();
    for _ in 0..samples {
        for (deal, share) in &deals {
            assert!(vss::proof_valid(kind, &session, deal, 0));
            assert!(vss::share_valid(me, &deal.commitments[0], share));
            assert!(signing::signature_valid(&pk, &h, &sigma));
        }
    }
    start.elapsed() / samples as u32
}

/// The cost of the primitives the protocol is made of, in microseconds.
fn primitives(rng: &mut StdRng) {
    const N: usize = 200;
    let scalars: Vec<Scalar> = (0..N).map(|_| Scalar::random(rng)).collect();
    let time = |name: &str, f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        println!(
            "{name:<40} {:>8.1} us",
            start.elapsed().as_secs_f64() * 1e6 / N as f64
        );
    };
    let mut g1 = Vec::new();
    time("G1 scalar multiplication (generator)", &mut || {
        g1 = scalars.iter().map(G1Point::mul_generator).collect()
    });
    let g1_bytes: Vec<[u8; 48]> = g1.iter().map(G1Point::to_bytes).collect();
    time("G1 decompress + subgroup check", &mut || {
        for b in &g1_bytes {
            let _ = G1Point::from_bytes(b);
        }
    });
    time("G1 mul by u64", &mut || {
        for p in &g1 {
            let _ = p.mul_u64(u64::MAX / 3);
        }
    });
    let mut g2 = Vec::new();
    time("hash to G2", &mut || {
        g2 = (0..N)
            .map(|i| G2Point::hash(&(i as u64).to_be_bytes()))
            .collect()
    });
    let mut sigs = Vec::new();
    time("G2 scalar multiplication", &mut || {
        sigs = g2.iter().zip(&scalars).map(|(h, x)| h.mul(x)).collect()
    });
    let g2_bytes: Vec<[u8; 96]> = sigs.iter().map(G2Point::to_bytes).collect();
    time("G2 decompress + subgroup check", &mut || {
        for b in &g2_bytes {
            let _ = G2Point::from_bytes(b);
        }
    });
    time("G1 subgroup check", &mut || {
        for p in &g1 {
            assert!(p.in_subgroup());
        }
    });
    let g2_uncompressed: Vec<[u8; 192]> = sigs.iter().map(G2Point::to_uncompressed).collect();
    time("G2 uncompressed decode + subgroup check", &mut || {
        for b in &g2_uncompressed {
            let _ = G2Point::from_uncompressed(b);
        }
    });
    time("Miller loop share of a 200-term pairing check", &mut || {
        let terms: Vec<(G1Point, G2Point)> = g1.iter().copied().zip(g2.iter().copied()).collect();
        let _ = pairing_check(&sigs[0], &terms);
    });
}

/// A faster floor? blst's one fixed-base method, a precomputed table
/// (`blst_p1s_mult_wbits`), against its constant-time multiplication, both
/// computing `s·G1` for the same
/// scalars; and the floor of this run with the table in place of its `t`
/// generator multiplications. The generator's scalars are the secret
/// polynomial coefficients, and the table method loads `table[digit]` for
/// each digit of the scalar (`gather_booth_wbits` in blst's
/// `multi_scalar.c`): which cache lines it touches follows the secret, so
/// dvkg does not use it whatever it saves.
#[allow(unsafe_code)]
fn fixed_base(t: usize, rng: &mut StdRng) {
    // s = Σ_j s_j·2^(32j): the table holds the eight points 2^(32j)·G1,
    // each multiplied by a 32-bit digit of s, with one shared run of 32
    // doublings.
    const CHUNKS: usize = 8;
    const N: usize = 2_000;
    let mut points = [blst::blst_p1_affine::default(); CHUNKS];
    // SAFETY: blst's generator is a static point; every out-pointer is a
    // live local of the type blst writes.
    unsafe {
        let mut p = *blst::blst_p1_generator();
        for point in &mut points {
            blst::blst_p1_to_affine(point, &p);
            for _ in 0..32 {
                let q = p;
                blst::blst_p1_double(&mut p, &q);
            }
        }
    }
    let pointers: Vec<*const blst::blst_p1_affine> = points.iter().map(|p| p as *const _).collect();
    let scalars: Vec<Scalar> = (0..N).map(|_| Scalar::random(rng)).collect();
    let little: Vec<[u8; 32]> = scalars
        .iter()
        .map(|s| {
            let mut le = *s.to_bytes_be().expose_secret();
            le.reverse();
            le
        })
        .collect();
    let start = Instant::now();
    let reference: Vec<[u8; 48]> = scalars
        .iter()
        .map(|s| G1Point::mul_generator(s).to_bytes())
        .collect();
    let constant_time = start.elapsed() / N as u32;
    println!(
        "{:<58} {:>8.1} us",
        "G1 generator multiplication, constant time (in use)",
        constant_time.as_secs_f64() * 1e6
    );
    let mut best = constant_time;
    for wbits in [4usize, 6, 8] {
        // SAFETY: the table and scratch are sized by blst's own sizeof
        // functions, in units of the types blst writes, and outlive the
        // calls; the scalar pointer array ends in null (contiguous digits),
        // each scalar holds CHUNKS·4 bytes.
        let elapsed = unsafe {
            let table_bytes = blst::blst_p1s_mult_wbits_precompute_sizeof(wbits, CHUNKS);
            let mut table = vec![
                blst::blst_p1_affine::default();
                table_bytes.div_ceil(std::mem::size_of::<blst::blst_p1_affine>())
            ];
            blst::blst_p1s_mult_wbits_precompute(
                table.as_mut_ptr(),
                wbits,
                pointers.as_ptr(),
                CHUNKS,
            );
            let scratch_bytes = blst::blst_p1s_mult_wbits_scratch_sizeof(CHUNKS);
            let mut scratch = vec![0 as blst::limb_t; scratch_bytes.div_ceil(8)];
            let start = Instant::now();
            let mut out = Vec::with_capacity(N);
            for le in &little {
                let digits: [*const u8; 2] = [le.as_ptr(), std::ptr::null()];
                let mut sum = blst::blst_p1::default();
                blst::blst_p1s_mult_wbits(
                    &mut sum,
                    table.as_ptr(),
                    wbits,
                    CHUNKS,
                    digits.as_ptr(),
                    32,
                    scratch.as_mut_ptr(),
                );
                out.push(sum);
            }
            let elapsed = start.elapsed() / N as u32;
            for (sum, expected) in out.iter().zip(&reference) {
                let mut bytes = [0u8; 48];
                blst::blst_p1_compress(bytes.as_mut_ptr(), sum);
                assert_eq!(&bytes, expected, "the table method computes s·G1");
            }
            elapsed
        };
        best = best.min(elapsed);
        println!(
            "{:<58} {:>8.1} us ({:.2}x the constant-time one)",
            format!("G1 generator multiplication, blst table (wbits {wbits})"),
            elapsed.as_secs_f64() * 1e6,
            elapsed.as_secs_f64() / constant_time.as_secs_f64()
        );
    }
    let floor = floor(t, 1_000, rng);
    let with_table = floor.saturating_sub((constant_time.saturating_sub(best)) * t as u32);
    println!(
        "floor at t = {t}: {:.3} ms/validator; with the fastest table instead: {:.3} ms ({:.2}x); not adopted: not constant time in the secret scalar",
        ms(floor),
        ms(with_table),
        with_table.as_secs_f64() / floor.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs us too:
    // keep that run tiny.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let v: u64 = std::env::var("DVKG_BENCH_VALIDATORS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 2 } else { 1_000 });
    let mut rng = StdRng::seed_from_u64(2026);
    if std::env::var_os("DVKG_BENCH_PRIMITIVES").is_some() {
        primitives(&mut rng);
        return;
    }
    if std::env::var_os("DVKG_BENCH_FIXED_BASE").is_some() {
        fixed_base(3, &mut rng);
        return;
    }
    if std::env::var_os("DVKG_BENCH_FLOOR_ONLY").is_some() {
        // For scripts/bench-ceremony.sh: the floor at n=4, t=3, in ms.
        println!(
            "floor_ms_per_validator {:.4}",
            ms(floor(3, 1_000, &mut rng))
        );
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "dkg bench: whole protocol in one process, V = {v} validators, one deposit each, {cores} core(s){}",
        if cores > 1 {
            " (blst's multi-scalar multiplications use them all; `taskset -c 0` for per-core figures)"
        } else {
            ""
        }
    );
    let sizes = std::env::var("DVKG_BENCH_SIZES").unwrap_or_default();
    if sizes.split(',').any(|s| s.trim() == "ssv") {
        // The plain DKG and the SSV cluster of the same size, back to back.
        let plain_times = ceremony(4, 3, v, &mut rng);
        let ids: Vec<ShareIndex> = [11u64, 27, 103, 404]
            .iter()
            .map(|&i| ShareIndex::try_from(i).expect("index"))
            .collect();
        let at_ids = Cluster::dkg(
            4,
            3,
            v,
            Some(&ids),
            plan().statements(),
            Arc::new(EthStatements),
            &mut rng,
        );
        let at_ids_times = runner::run(&at_ids, Hooks::default(), rng.next_u64()).times;
        let ssv_times = ssv_ceremony(v, &mut rng);
        let steps = |times: &[Duration; 6]| {
            times
                .iter()
                .map(|d| format!("{:.2}s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "        plain DKG, rounds 0..4 + finish:    {}",
            steps(&plain_times)
        );
        println!(
            "        DKG at the SSV ids:                 {}",
            steps(&at_ids_times)
        );
        println!(
            "        SSV cluster:                        {}",
            steps(&ssv_times)
        );
        let plain: Duration = plain_times.iter().sum();
        let ssv: Duration = ssv_times.iter().sum();
        let per = |d: Duration| d.as_secs_f64() * 1e3 / (4.0 * v as f64);
        let rsa = ms(rsa_encryption(if smoke { 2 } else { 500 }, &mut rng));
        println!(
            "n= 4 t=3 SSV (ids 11, 27, 103, 404; ownership statement; RSA-encrypted shares): {:.3} ms per validator per operator, plain DKG {:.3} ms -> SSV = {:.2}x plain; one RSA-2048 share encryption {:.3} ms",
            per(ssv),
            per(plain),
            per(ssv) / per(plain),
            rsa
        );
        return;
    }
    for (n, t) in [(4u64, 3u64), (10, 7)] {
        if !sizes.is_empty() && !sizes.split(',').any(|s| s.trim() == n.to_string()) {
            continue;
        }
        let times = ceremony(n, t, v, &mut rng);
        let total: Duration = times.iter().sum();
        let per = total.as_secs_f64() * 1e3 / (n as f64 * v as f64);
        let floor = ms(floor(t as usize, v.min(1_000) as usize, &mut rng));
        let naive = ms(naive(
            n as usize,
            t as usize,
            if smoke { 1 } else { 20 },
            &mut rng,
        ));
        let checks = ms(unskippable(
            n as usize,
            t as usize,
            if smoke { 1 } else { 200 },
            &mut rng,
        ));
        println!(
            "n={n:>2} t={t}: {:.3} ms per validator per operator (total {:.2} s for {n} operators)",
            per,
            total.as_secs_f64()
        );
        println!(
            "        rounds 0..4 + finish: {}",
            times
                .iter()
                .map(|d| format!("{:.2}s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "        floor {:.3} ms/validator (t G1 mults + 1 sign + 1/V batched pairing) -> protocol = {:.2}x floor",
            floor,
            per / floor
        );
        println!(
            "        + unskippable checks {:.3} ms (R, t G1 and n-1 G2 subgroup checks) = {:.3} ms -> protocol = {:.2}x",
            checks,
            floor + checks,
            per / (floor + checks)
        );
        println!(
            "        naive per-item checks alone: {:.3} ms/validator -> protocol = {:.2}x faster than naive checks",
            naive,
            naive / per
        );
    }
}
