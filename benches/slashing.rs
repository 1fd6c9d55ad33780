//! Slashing protection at scale, through the library (not a timed test):
//!
//! 1. an EIP-3076 file of V validators × A attestations each (V = 10,000,
//!    A = 1,000: ten million attestations) rendered, parsed, imported into a
//!    fresh database and exported again;
//! 2. the latency of one check-and-record of an attestation (one exclusive
//!    transaction and its commit, as `dvkg slashing check-attestation` does
//!    after opening the database) against a database holding R = 100,000
//!    recorded attestations, spread over 100 keys and all on one key:
//!    median and p99 over C checks; then that history exported.
//!
//! Run: `cargo bench --bench slashing` (`DVKG_BENCH_VALIDATORS`,
//! `DVKG_BENCH_ATTESTATIONS`, `DVKG_BENCH_RECORDS`, `DVKG_BENCH_CHECKS` to
//! change V, A, R, C). The database lives in a temporary directory on the
//! disk `TMPDIR` names; each commit is synced (SQLite's defaults), so the
//! check latency is mostly the disk's sync time.

use std::time::{Duration, Instant};

use dvkg::slashing::db::{Message, SlashingDb};
use dvkg::slashing::interchange::{Interchange, InterchangeData, SignedAttestation};
use dvkg::slashing::{PublicKeyBytes, Root, SigningRoot};

const GENESIS: Root = Root([0x4b; 32]);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: usize) -> PublicKeyBytes {
    let mut bytes = [0xa0u8; 48];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    PublicKeyBytes(bytes)
}

fn root(i: u64) -> Root {
    let mut bytes = [0x11u8; 32];
    bytes[..8].copy_from_slice(&i.to_be_bytes());
    Root(bytes)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn import_export(validators: usize, attestations: usize) {
    println!(
        "== import/export: {validators} validators × {attestations} attestations = {} attestations",
        validators * attestations
    );
    let mut interchange = Interchange::empty(GENESIS);
    for v in 0..validators {
        interchange.data.push(InterchangeData {
            pubkey: key(v),
            signed_blocks: Vec::new(),
            signed_attestations: (0..attestations as u64)
                .map(|e| SignedAttestation {
                    source_epoch: e,
                    target_epoch: e + 1,
                    signing_root: Some(root(e)),
                })
                .collect(),
        });
    }
    let start = Instant::now();
    let text = interchange.to_json().expect("render");
    let render = start.elapsed();
    drop(interchange);
    println!(
        "render JSON: {} ({:.0} MB)",
        secs(render),
        text.len() as f64 / 1e6
    );

    let start = Instant::now();
    let parsed = Interchange::from_json(&text).expect("parse");
    let parse = start.elapsed();
    println!("parse JSON: {}", secs(parse));
    drop(text);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = SlashingDb::open(&dir.path().join("bench.sqlite"), GENESIS).expect("open");
    let start = Instant::now();
    let summary = db.import(&parsed).expect("import");
    let import = start.elapsed();
    println!(
        "import into a fresh database: {} ({} keys)",
        secs(import),
        summary.keys
    );
    println!("parse + import: {}", secs(parse + import));

    let start = Instant::now();
    let exported = db.export(None).expect("export");
    let text = exported.to_json().expect("render");
    let export = start.elapsed();
    println!(
        "export + render: {} ({} keys, {:.1} MB: the minimal database keeps one attestation per key)",
        secs(export),
        exported.data.len(),
        text.len() as f64 / 1e6
    );
}

/// Fills a database with `records` attestations over `keys` keys (source
/// e, target e + 1), in batches of one transaction each.
fn fill(db: &mut SlashingDb, keys: usize, records: usize) -> Duration {
    let per_key = records / keys;
    let start = Instant::now();
    let messages: Vec<(PublicKeyBytes, Message)> = (0..per_key as u64)
        .flat_map(|e| {
            (0..keys).map(move |k| {
                (
                    key(k),
                    Message::Attestation {
                        source: e,
                        target: e + 1,
                        signing_root: SigningRoot::from_bytes(root(e).0),
                    },
                )
            })
        })
        .collect();
    for chunk in messages.chunks(10_000) {
        let results = db.check_and_record_batch(chunk).expect("batch");
        assert!(results.iter().all(Result::is_ok), "fill refused a message");
    }
    start.elapsed()
}

fn check_latency(keys: usize, records: usize, checks: usize) {
    println!("== check latency: {records} recorded attestations over {keys} keys, {checks} checks");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.sqlite");
    let mut db = SlashingDb::open(&path, GENESIS).expect("open");
    let filled = fill(&mut db, keys, records);
    println!(
        "fill (batched, checked): {} ({} per message)",
        secs(filled),
        micros(filled / records as u32)
    );
    let per_key = (records / keys) as u64;
    let mut times = Vec::with_capacity(checks);
    let mut refusals = Vec::new();
    for c in 0..checks {
        let k = c % keys;
        let epoch = per_key + (c / keys) as u64;
        let start = Instant::now();
        let result = db.check_and_record_attestation(
            &key(k),
            epoch,
            epoch + 1,
            SigningRoot::from_bytes(root(epoch).0),
        );
        times.push(start.elapsed());
        assert!(result.is_ok(), "a safe attestation was refused: {result:?}");
        // A surround vote against the history: refused (timed apart).
        if c % 10 == 0 {
            let start = Instant::now();
            let result = db.check_and_record_attestation(&key(k), 0, epoch + 5, SigningRoot::NULL);
            refusals.push(start.elapsed());
            assert!(result.is_err(), "a surround vote was accepted");
        }
    }
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or_default()
    };
    println!(
        "check + record one attestation: median {}, p99 {}, max {}",
        micros(at(0.5)),
        micros(at(0.99)),
        micros(at(1.0))
    );
    refusals.sort();
    println!(
        "refuse a surround vote ({} of them): median {}",
        refusals.len(),
        micros(
            refusals
                .get(refusals.len() / 2)
                .copied()
                .unwrap_or_default()
        )
    );
    let start = Instant::now();
    let exported = db.export(None).expect("export");
    let text = exported.to_json().expect("render");
    println!(
        "export + render the whole history: {} ({:.1} MB)",
        secs(start.elapsed()),
        text.len() as f64 / 1e6
    );
    drop(db);
    // What `dvkg slashing check-attestation` adds: opening the database.
    let mut opens = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let db = SlashingDb::open(&path, GENESIS).expect("open");
        opens.push(start.elapsed());
        drop(db);
    }
    opens.sort();
    println!(
        "open (schema and root check): median {}",
        micros(opens.get(opens.len() / 2).copied().unwrap_or_default())
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let validators = env("DVKG_BENCH_VALIDATORS", 10_000);
    let attestations = env("DVKG_BENCH_ATTESTATIONS", 1_000);
    let records = env("DVKG_BENCH_RECORDS", 100_000);
    let checks = env("DVKG_BENCH_CHECKS", 1_000);
    import_export(validators, attestations);
    check_latency(100, records, checks);
    check_latency(1, records, checks);
}
