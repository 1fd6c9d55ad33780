//! Fuzzing entry points (feature `test-utils`): one function per reader of
//! hostile input, called by the targets in `fuzz/` (`scripts/fuzz.sh`) and,
//! on every saved crash and seed, by the regression tests in `cargo test`.
//!
//! Each function must return normally on any input: an error is the right
//! answer to bad bytes, a panic is a bug. Where a reader accepts its input,
//! the function also checks a property the rest of dvkg relies on (the wire
//! encoding is canonical, a definition survives a JSON round trip, ...), and
//! panics if it does not hold.
//!
//! [`seeds`] makes a valid example of every input from a whole in-memory
//! ceremony, so that fuzzing starts from real messages and files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, OnceLock};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ceremony::definition::{ClusterDefinition, NewDefinition};
use crate::ceremony::lock::ClusterLock;
use crate::ceremony::report::{ABORT_REPORT_VERSION, AbortReport};
use crate::crypto::SecretBytes;
use crate::crypto::identity::IdentityKey;
use crate::dkg::messages::{
    Ack, AnySigned, DealBundle, Finalize, FromAny, Hello, PartialSignatures, ShareBundle,
    ShareBytes, Signed,
};
use crate::dkg::runner::{self, Cluster, Hooks};
use crate::dkg::transcript::{Transcript, verify_transcript};
use crate::dkg::{Context, Evidence};
use crate::eth::deposit::{self, Expectations};
use crate::eth::keystore::{self, Keystore, Password};
use crate::eth::statements::EthStatements;
use crate::eth::{ExecutionAddress, Gwei, WithdrawalKind};
use crate::identity::OperatorIdentity;
use crate::net::Frame;
use crate::store::sealed;
use crate::wire;

/// The names of the fuzz targets, as in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 9] = [
    "wire",
    "definition",
    "lock",
    "transcript",
    "deposit_data",
    "keystore",
    "abort_report",
    "keyshares",
    "interchange",
];

/// Runs the target called `name` on `data`.
///
/// # Panics
///
/// On an unknown name, and wherever the target finds a bug.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "wire" => wire(data),
        "definition" => definition(data),
        "lock" => lock(data),
        "transcript" => transcript(data),
        "deposit_data" => deposit_data(data),
        "keystore" => keystore(data),
        "abort_report" => abort_report(data),
        "keyshares" => keyshares(data),
        "interchange" => interchange(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// Decodes as `T` with the reader's limit; what decodes must encode back to
/// the same bytes (one encoding per value, so hashes and signatures over
/// encodings cannot be malleated).
fn canonical<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = wire::decode::<T>(data, data.len() as u64) {
        let again = wire::encode(&value).expect("a decoded value encodes");
        assert_eq!(again, data, "two encodings of one value");
    }
}

/// The wire decoder, for every type that crosses the network.
pub fn wire(data: &[u8]) {
    canonical::<Frame>(data);
    canonical::<Signed<Hello>>(data);
    canonical::<Signed<DealBundle>>(data);
    canonical::<Signed<ShareBundle>>(data);
    canonical::<Signed<Ack>>(data);
    canonical::<Signed<PartialSignatures>>(data);
    canonical::<Signed<Finalize>>(data);
}

/// The cluster definition reader.
pub fn definition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(definition) = ClusterDefinition::from_json(text) else {
        return;
    };
    // A definition that loads is valid, yields a context, and survives its
    // own writer.
    definition
        .to_context()
        .expect("a loaded definition has a context");
    let json = definition.to_json_pretty().expect("a definition writes");
    let again = ClusterDefinition::from_json(&json).expect("a written definition loads");
    assert_eq!(again, definition);
}

/// The cluster lock reader, with the checks `dvkg verify` makes on its own.
pub fn lock(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(lock) = serde_json::from_str::<ClusterLock>(text) else {
        return;
    };
    let _ = lock.compute_hash();
    let _ = lock.definition.validate();
    for entry in lock.deposit_entries() {
        let _ = deposit::verify_entry(&entry, &Expectations::default());
    }
}

/// The transcript readers (the binary file and the JSON view) and the full
/// public verification.
pub fn transcript(data: &[u8]) {
    let parsed = if data.starts_with(crate::ceremony::transcript_file::MAGIC) {
        crate::ceremony::transcript_file::from_bytes(data).ok()
    } else {
        std::str::from_utf8(data)
            .ok()
            .and_then(|text| serde_json::from_str::<Transcript>(text).ok())
    };
    let Some(transcript) = parsed else {
        return;
    };
    let _ = transcript.hash();
    let _ = transcript.session_id();
    let verdict = verify_transcript(&transcript, &EthStatements, &mut StdRng::seed_from_u64(0));
    // The binary file verified as a stream agrees with the transcript
    // verified in memory.
    if data.starts_with(crate::ceremony::transcript_file::MAGIC) {
        let streamed = crate::ceremony::transcript_file::verify_bytes(
            data,
            &EthStatements,
            &mut StdRng::seed_from_u64(0),
        );
        let agrees = streamed.is_ok_and(|c| c.verdict.is_ok() == verdict.is_ok());
        assert!(
            agrees,
            "the streamed verdict differs from the in-memory one"
        );
    }
}

/// The deposit data reader, and every entry's checks (one by one and
/// batched).
pub fn deposit_data(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = deposit::parse_file(text) else {
        return;
    };
    let entries: Vec<_> = parsed.into_iter().filter_map(Result::ok).collect();
    for entry in &entries {
        let _ = deposit::verify_entry(entry, &Expectations::default());
    }
    let _ = deposit::verify_entries(
        &entries,
        &Expectations::default(),
        &mut StdRng::seed_from_u64(0),
    );
    let _ = deposit::verify_file(&entries);
}

/// The EIP-2335 keystore reader; decryption too when the KDF is cheap
/// enough to fuzz.
pub fn keystore(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(keystore) = Keystore::from_json_str(text) else {
        return;
    };
    let json = keystore.to_json_string().expect("a keystore writes");
    let again = Keystore::from_json_str(&json).expect("a written keystore loads");
    assert_eq!(again.to_json_string().expect("writes"), json);
    let value: serde_json::Value = serde_json::from_str(text).expect("it parsed before");
    let params = &value["crypto"]["kdf"]["params"];
    let cost = params["n"]
        .as_u64()
        .map(|n| n.saturating_mul(params["r"].as_u64().unwrap_or(1)))
        .or_else(|| params["c"].as_u64())
        .unwrap_or(u64::MAX);
    if cost <= 4096 {
        let _ = keystore::decrypt(&keystore, &Password::new("fuzz password"));
    }
}

/// The abort report reader and its judgement against the fixture ceremony.
pub fn abort_report(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = serde_json::from_str::<AbortReport>(text) else {
        return;
    };
    let _ = crate::verify::abort::judge_abort_report(&report, &fixture().context);
}

/// The SSV keyshares checks, on any file: every problem is a failed check,
/// never a panic. With the fixture's test operator key, the own-slot
/// decryption runs too.
pub fn keyshares(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let owner = ExecutionAddress::from_bytes(SSV_OWNER);
    let key = crate::ssv::dealer::test_operator_key(0).expect("a test key");
    let checks = crate::ssv::verify_keyshares(text, &owner, SSV_NONCE, Some(&key));
    assert!(!checks.is_empty(), "every file gets at least one finding");
}

/// The EIP-3076 interchange reader; what reads must write and read back to
/// the same value.
pub fn interchange(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = crate::slashing::interchange::Interchange::from_json(text) else {
        return;
    };
    let json = file.to_json().expect("an interchange writes");
    let again = crate::slashing::interchange::Interchange::from_json(&json).expect("it reads back");
    assert_eq!(again.to_json().expect("writes"), json);
    let _ = file.minify();
}

/// The SSV owner of the SSV seeds.
const SSV_OWNER: [u8; 20] = [0x38; 20];
/// Its first nonce.
const SSV_NONCE: u64 = 8;

/// An SSV cluster's definition (4 operators at ids 11, 27, 103, 404, with
/// dvkg's test operator keys) and a whole ceremony of it, in memory: its
/// definition, transcript, lock and keyshares.json as seeds.
fn ssv_seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    use crate::ceremony::definition::ssv::{NewSsv, SsvOperator};
    let mut rng = StdRng::seed_from_u64(2336);
    let identities: Vec<OperatorIdentity> = [11u64, 27, 103, 404]
        .iter()
        .enumerate()
        .map(|(i, &id)| OperatorIdentity {
            key: IdentityKey::generate(&mut rng),
            age: sealed::generate_identity(&mut rng).expect("age identity"),
            name: format!("ssv-fuzz-{i}"),
            address: format!("127.0.0.1:{}", 9100 + i),
            ssv: Some(SsvOperator {
                operator_id: id,
                operator_key: crate::ssv::dealer::test_operator_key(i)
                    .expect("a test key")
                    .public_key()
                    .registered()
                    .to_owned(),
            }),
        })
        .collect();
    let definition = ClusterDefinition::create(NewDefinition {
        name: "fuzz ssv fixture".into(),
        operators: identities.iter().map(OperatorIdentity::record).collect(),
        threshold: None,
        validators: 2,
        network: "hoodi".parse().expect("hoodi"),
        withdrawal_kind: WithdrawalKind::Compounding,
        withdrawal_address: ExecutionAddress::from_bytes([0x42; 20]),
        fee_recipient: None,
        amounts: vec![Gwei(32_000_000_000)],
        ssv: Some(NewSsv {
            owner: ExecutionAddress::from_bytes(SSV_OWNER),
            nonce: SSV_NONCE,
            created_at: crate::ssv::CreatedAt::from_unix(1_796_000_000, 0),
        }),
    })
    .expect("ssv fixture definition");
    let context = definition.to_context().expect("ssv fixture context");
    let cluster = Cluster::new(
        context,
        identities
            .iter()
            .map(|i| IdentityKey::from_seed(&i.key.to_seed()))
            .collect(),
        Arc::new(EthStatements),
    );
    let run = runner::run(&cluster, Hooks::default(), 3077);
    let output = run.outputs.values().next().expect("a completed ceremony");
    let lock = ClusterLock::new(&definition, &output.transcript).expect("ssv lock");
    let text = crate::ceremony::keyshares::file_text(&lock, &output.transcript)
        .expect("keyshares")
        .expect("an ssv cluster");
    push_ceremony(out, "ssv", &definition, &output.transcript, &lock);
    out.push(("keyshares", "keyshares".into(), text.into_bytes()));
}

/// A ceremony's definition, transcript and lock as seeds, named
/// `PREFIX-definition`, `PREFIX-transcript`, `PREFIX-lock`.
fn push_ceremony(
    out: &mut Vec<(&'static str, String, Vec<u8>)>,
    prefix: &str,
    definition: &ClusterDefinition,
    transcript: &Transcript,
    lock: &ClusterLock,
) {
    out.push((
        "definition",
        format!("{prefix}-definition"),
        definition.to_json_pretty().expect("json").into_bytes(),
    ));
    out.push((
        "transcript",
        format!("{prefix}-transcript"),
        serde_json::to_vec_pretty(transcript).expect("transcript json"),
    ));
    out.push((
        "transcript",
        format!("{prefix}-transcript-bin"),
        crate::ceremony::transcript_file::to_bytes(transcript).expect("transcript bytes"),
    ));
    out.push((
        "lock",
        format!("{prefix}-lock"),
        serde_json::to_vec_pretty(lock).expect("lock json"),
    ));
}

/// A split (3 operators and a dealer, 2 existing keys) run in memory: its
/// definition, transcript and lock as seeds, so that the readers are
/// fuzzed from the split's own fields (`kind`, `dealer`,
/// `validator_keys`, a share-less participant, the split combination).
fn split_seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    use crate::ceremony::definition::NewSplit;
    use crate::crypto::{G1Point, Scalar};
    let mut rng = StdRng::seed_from_u64(2337);
    let identities: Vec<OperatorIdentity> = (0..4)
        .map(|i| OperatorIdentity {
            key: IdentityKey::generate(&mut rng),
            age: sealed::generate_identity(&mut rng).expect("age identity"),
            name: if i == 3 {
                "split-fuzz-dealer".to_owned()
            } else {
                format!("split-fuzz-{i}")
            },
            address: format!("127.0.0.1:{}", 9200 + i),
            ssv: None,
        })
        .collect();
    let secrets: Vec<Scalar> = (0..2).map(|_| Scalar::random(&mut rng)).collect();
    let definition = ClusterDefinition::create_split(NewSplit {
        name: "fuzz split fixture".into(),
        operators: identities[..3]
            .iter()
            .map(OperatorIdentity::record)
            .collect(),
        dealer: identities[3].record(),
        threshold: None,
        validator_keys: secrets
            .iter()
            .map(|s| wire::Bytes(G1Point::mul_generator(s).to_bytes()))
            .collect(),
        network: "hoodi".parse().expect("hoodi"),
        fee_recipient: None,
        ssv: None,
    })
    .expect("split fixture definition");
    let context = definition.to_context().expect("split fixture context");
    let dealer = *context.plan.dealers().last().expect("a dealer");
    let cluster = Cluster::new(
        context,
        identities
            .iter()
            .map(|i| IdentityKey::from_seed(&i.key.to_seed()))
            .collect(),
        Arc::new(EthStatements),
    );
    let hooks = Hooks {
        known: std::collections::BTreeMap::from([(dealer, secrets)]),
        ..Hooks::default()
    };
    let run = runner::run(&cluster, hooks, 3078);
    let output = run.outputs.values().next().expect("a completed split");
    let lock = ClusterLock::new(&definition, &output.transcript).expect("split lock");
    push_ceremony(out, "split", &definition, &output.transcript, &lock);
}

/// A refresh of the fixture cluster's DKG (`run`), run in memory: every
/// operator deals its shares, weighed over the three dealers, to the same
/// three operators. Its definition (with the previous lock inside), lock
/// (with `previous_lock_hash`) and transcript (with the reshare
/// combination's previous public shares) as seeds.
fn reshare_seeds(run: &runner::Run, out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    use crate::ceremony::definition::NewReshare;
    let f = fixture();
    let Some(first) = run.outputs.values().next() else {
        return;
    };
    let previous = ClusterLock::new(&f.definition, &first.transcript).expect("fixture lock");
    let definition = ClusterDefinition::create_reshare(NewReshare {
        name: "fuzz reshare fixture".into(),
        previous_lock: previous,
        operators: f.definition.operators.clone(),
        dealers: vec![1, 2, 3],
        threshold: None,
        validator_indices: None,
        ssv: None,
    })
    .expect("reshare fixture definition");
    let context = definition.to_context().expect("reshare fixture context");
    let cluster = Cluster::new(
        context,
        f.keys
            .iter()
            .map(|k| IdentityKey::from_seed(&k.to_seed()))
            .collect(),
        Arc::new(EthStatements),
    );
    let hooks = Hooks {
        known: run
            .outputs
            .iter()
            .map(|(&id, output)| (id, output.secret_shares.clone()))
            .collect(),
        ..Hooks::default()
    };
    let reshared = runner::run(&cluster, hooks, 3079);
    let output = reshared
        .outputs
        .values()
        .next()
        .expect("a completed reshare");
    let lock = ClusterLock::new(&definition, &output.transcript).expect("reshare lock");
    push_ceremony(out, "reshare", &definition, &output.transcript, &lock);
}

/// A fixed cluster (3 operators, threshold 2, 2 validators on hoodi) with
/// its operators' identity keys.
pub struct Fixture {
    /// The definition.
    pub definition: ClusterDefinition,
    /// Its protocol context.
    pub context: Context,
    /// The operators' identity keys, by position.
    pub keys: Vec<IdentityKey>,
}

/// The fixture, made once from a fixed seed.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(2335);
        let identities: Vec<OperatorIdentity> = (1..=3)
            .map(|i| OperatorIdentity {
                key: IdentityKey::generate(&mut rng),
                age: sealed::generate_identity(&mut rng).expect("age identity"),
                name: format!("fuzz-{i}"),
                address: format!("127.0.0.1:{}", 9000 + i),
                ssv: None,
            })
            .collect();
        let definition = ClusterDefinition::create(NewDefinition {
            name: "fuzz fixture".into(),
            operators: identities.iter().map(OperatorIdentity::record).collect(),
            threshold: Some(2),
            validators: 2,
            network: "hoodi".parse().expect("hoodi"),
            withdrawal_kind: WithdrawalKind::Compounding,
            withdrawal_address: ExecutionAddress::from_bytes([0x42; 20]),
            fee_recipient: None,
            amounts: vec![Gwei(32_000_000_000)],
            ssv: None,
        })
        .expect("fixture definition");
        let context = definition.to_context().expect("fixture context");
        Fixture {
            definition,
            context,
            keys: identities.into_iter().map(|i| i.key).collect(),
        }
    })
}

/// A valid example of every target's input, from a whole ceremony of the
/// fixture cluster run in memory: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = fixture();
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut wire_seed = |name: &str, bytes: Vec<u8>| out.push(("wire", name.to_owned(), bytes));

    // A whole ceremony of the fixture cluster, in memory.
    let cluster = Cluster::new(
        f.context.clone(),
        f.keys
            .iter()
            .map(|k| IdentityKey::from_seed(&k.to_seed()))
            .collect(),
        Arc::new(EthStatements),
    );
    let run = runner::run(&cluster, Hooks::default(), 3076);
    let mut reshares = Vec::new();
    reshare_seeds(&run, &mut reshares);
    let ids = cluster.ids();
    let (first, second) = (ids[0], ids[1]);
    let sent = |kind, from, to: Option<_>| -> AnySigned {
        run.sent
            .iter()
            .find(|(s, t, m)| *s == from && (to.is_none() || *t == to) && m.kind() == kind)
            .map(|(_, _, m)| m.clone())
            .expect("the message was sent")
    };
    use crate::dkg::messages::MessageKind as K;
    let shares_to_first =
        Signed::<ShareBundle>::from_any(sent(K::Shares, second, Some(first))).expect("shares");
    let first_deal = Signed::<DealBundle>::from_any(sent(K::Deal, first, None)).expect("a deal");
    let second_deal = Signed::<DealBundle>::from_any(sent(K::Deal, second, None)).expect("a deal");
    for (name, kind) in [
        ("hello", K::Hello),
        ("deal", K::Deal),
        ("ack", K::Ack),
        ("partials", K::Partials),
        ("finalize", K::Finalize),
    ] {
        wire_seed(name, sent(kind, first, None).encode().expect("encode"));
    }
    wire_seed("shares", wire::encode(&shares_to_first).expect("encode"));
    wire_seed(
        "frame",
        wire::encode(&Frame {
            version: crate::net::FRAME_VERSION,
            ceremony: f.context.definition_hash,
            kind: crate::ceremony::driver::frame_kind(K::Deal),
            sender: first,
            payload: wire::encode(&first_deal).expect("encode"),
        })
        .expect("encode"),
    );
    let output = run.outputs.get(&first).expect("a completed ceremony");

    let definition = f.definition.to_json_pretty().expect("definition json");
    out.push(("definition", "definition".into(), definition.into_bytes()));
    let transcript = serde_json::to_vec_pretty(&output.transcript).expect("transcript json");
    out.push(("transcript", "transcript".into(), transcript));
    out.push((
        "transcript",
        "transcript-bin".into(),
        crate::ceremony::transcript_file::to_bytes(&output.transcript).expect("transcript bytes"),
    ));
    let lock = ClusterLock::new(&f.definition, &output.transcript).expect("lock");
    out.push((
        "lock",
        "lock".into(),
        serde_json::to_vec_pretty(&lock).expect("lock json"),
    ));
    out.push((
        "deposit_data",
        "deposit_data".into(),
        deposit::to_file_string(&lock.deposit_entries()).into_bytes(),
    ));

    // A keystore of operator 1's share of validator 0, with a KDF cheap
    // enough for the fuzzer to decrypt.
    let share = output.secret_shares[0].to_bytes_be();
    let secret_key = output.secret_shares[0]
        .to_secret_key()
        .expect("a share is a key");
    let kdf = keystore::SaltedKdf::new(
        keystore::KdfParams::pbkdf2(16).expect("pbkdf2 params"),
        vec![7; 32],
    )
    .expect("salted kdf");
    let keystore = keystore::encrypt_with(
        &share,
        &Password::new("fuzz password"),
        &kdf,
        [9; 16],
        uuid::Uuid::from_bytes([4; 16]),
        keystore::KeystoreMeta {
            pubkey: &secret_key.public_key(),
            path: "m/12381/3600/0/0/0",
            description: "fuzz seed",
        },
    )
    .expect("keystore");
    out.push((
        "keystore",
        "keystore-pbkdf2-16".into(),
        keystore
            .to_json_string()
            .expect("keystore json")
            .into_bytes(),
    ));

    // Operator 2's shares for operator 1 with one flipped bit, and the
    // abort report that proves it.
    let mut bad = shares_to_first.clone();
    let mut raw = *bad.body.shares[0].expose_secret();
    raw[31] ^= 1;
    bad.body.shares[0] = ShareBytes::new(&SecretBytes::new(&mut raw));
    let bad = Signed::sign(
        cluster.identity(second),
        bad.header.session.0,
        second,
        bad.body,
    );
    let report = AbortReport {
        version: ABORT_REPORT_VERSION,
        definition_hash: f.context.definition_hash,
        reporter: first,
        round: 2,
        culprit: Some(second),
        missing: None,
        message: "operator 2 sent operator 1 a bad share".into(),
        evidence: Some(Evidence::Shares {
            deal: second_deal,
            shares: bad,
        }),
    };
    out.push((
        "abort_report",
        "abort_report".into(),
        serde_json::to_vec_pretty(&report).expect("report json"),
    ));
    ssv_seeds(&mut out);
    split_seeds(&mut out);
    out.extend(reshares);
    // A slashing-protection interchange file with a block and an
    // attestation.
    use crate::slashing::interchange::{Interchange, SignedAttestation, SignedBlock};
    let mut file = Interchange::for_new_keys(
        crate::slashing::Root([0x11; 32]),
        [crate::slashing::PublicKeyBytes(lock.validators[0].pubkey.0)],
    );
    if let Some(record) = file.data.first_mut() {
        record.signed_blocks.push(SignedBlock {
            slot: 81952,
            signing_root: Some(crate::slashing::Root([0x22; 32])),
        });
        record.signed_attestations.push(SignedAttestation {
            source_epoch: 2290,
            target_epoch: 3007,
            signing_root: None,
        });
    }
    out.push((
        "interchange",
        "interchange".into(),
        file.to_json().expect("interchange json").into_bytes(),
    ));
    out
}
