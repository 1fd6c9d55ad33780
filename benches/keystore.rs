//! Writing 1,000 EIP-2335 keystores under one password with the default
//! scrypt costs (n = 2^18, r = 8, p = 1): one shared salt and KDF run
//! (`SaltMode::Shared`) against a salt and KDF run per keystore
//! (`SaltMode::PerKeystore`).
//!
//! 1,000 per-keystore scrypt runs take minutes, so that group measures
//! `PER_KEYSTORE_COUNT` keystores; at the end the bench prints both totals
//! extrapolated to 1,000 keystores and their ratio.
//!
//! Run: `cargo bench --bench keystore` (smoke test: `-- --test`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use dvkg::crypto::{PublicKey, SecretBytes, SecretKey};
use dvkg::eth::keystore::{KdfParams, KeystoreEncryptor, KeystoreMeta, Password, SaltMode};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Keystores written in the shared-salt group.
const SHARED_COUNT: usize = 1_000;
/// Keystores written in the per-keystore group (each one runs scrypt).
const PER_KEYSTORE_COUNT: usize = 10;
const PATH: &str = "m/12381/3600/0/0/0";

/// Total time and iterations measured per group, for the final summary.
static MEASURED: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn keys(count: usize, rng: &mut StdRng) -> Vec<(SecretBytes<32>, PublicKey)> {
    (0..count)
        .map(|_| {
            let mut raw = [0u8; 32];
            rng.fill_bytes(&mut raw);
            // Below the group order r = 0x73ed…, almost surely not zero.
            raw[0] &= 0x3f;
            let secret = SecretBytes::new(&mut raw);
            let pubkey = SecretKey::from_bytes(&secret)
                .expect("valid scalar")
                .public_key();
            (secret, pubkey)
        })
        .collect()
}

/// Writes every key once under `mode`, KDF setup included.
fn write_all(
    password: &Password,
    mode: SaltMode,
    keys: &[(SecretBytes<32>, PublicKey)],
    rng: &mut StdRng,
) {
    let encryptor = KeystoreEncryptor::new(password, KdfParams::scrypt_default(), mode, rng)
        .expect("encryptor");
    for (secret, pubkey) in keys {
        let meta = KeystoreMeta {
            pubkey,
            path: PATH,
            description: "",
        };
        let keystore = encryptor.encrypt(secret, meta, rng).expect("encrypt");
        criterion::black_box(keystore);
    }
}

fn bench(c: &mut Criterion, name: &'static str, mode: SaltMode, count: usize) {
    let mut rng = StdRng::seed_from_u64(2335);
    let keys = keys(count, &mut rng);
    let password = Password::new("a benchmark password");
    let mut group = c.benchmark_group("keystore");
    // Each iteration takes seconds: few samples, each of one iteration.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                write_all(&password, mode, &keys, &mut rng);
            }
            let elapsed = start.elapsed();
            let mut measured = MEASURED.lock().expect("lock");
            let entry = measured.entry(name).or_default();
            entry.0 += elapsed;
            entry.1 += iters;
            elapsed
        });
    });
    group.finish();
}

fn summary() {
    let measured = MEASURED.lock().expect("lock");
    let mean = |name: &str| {
        measured
            .get(name)
            .filter(|(_, n)| *n > 0)
            .map(|(total, n)| total.as_secs_f64() / *n as f64)
    };
    let (Some(shared), Some(per)) = (mean("shared_salt_1000"), mean("per_keystore_salt_10")) else {
        return;
    };
    let per_1000 = per / PER_KEYSTORE_COUNT as f64 * SHARED_COUNT as f64;
    println!("\nkeystore summary (scrypt n=2^18, r=8, p=1):");
    println!("  shared salt:       {SHARED_COUNT} keystores in {shared:.2} s");
    println!(
        "  per-keystore salt: {PER_KEYSTORE_COUNT} keystores in {per:.2} s ({:.3} s each), \
         {SHARED_COUNT} extrapolated: {per_1000:.1} s",
        per / PER_KEYSTORE_COUNT as f64
    );
    println!(
        "  ratio for {SHARED_COUNT} keystores: {:.0}x",
        per_1000 / shared
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, "shared_salt_1000", SaltMode::Shared, SHARED_COUNT);
    bench(
        &mut c,
        "per_keystore_salt_10",
        SaltMode::PerKeystore,
        PER_KEYSTORE_COUNT,
    );
    c.final_summary();
    summary();
}
