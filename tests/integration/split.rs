//! Splitting existing validator keys over real processes: `dvkg definition
//! split` from the keystores' public keys, four `dvkg ceremony` operators
//! and the dealer's `dvkg ceremony --keystores` on loopback QUIC. Any three
//! operators' shares rebuild the original keys and sign as they do; the
//! dealer writes no secret; a bad keystore input is refused before any
//! connection; a dealer's wrong constant is named and proven; and an SSV
//! split's keyshares.json verifies.

use std::path::Path;
use std::process::Child;
use std::time::Instant;

use dvkg::ceremony::lock::ClusterLock;
use dvkg::crypto::group::G2Sum;
use dvkg::crypto::{G1Point, G2Point, Scalar, SecretBytes, SecretKey};
use dvkg::dkg::plan::ShareIndex;
use dvkg::dkg::signing::lagrange_at_zero;
use dvkg::eth::keystore::{
    KdfParams, Keystore, KeystoreDecryptor, KeystoreEncryptor, KeystoreMeta, Password, SaltMode,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::ceremony::{Cluster, wait};
use crate::common::{dvkg, free_ports};

const PASSWORD: &str = "split test password";

/// Writes `count` keystores (one shared-salt PBKDF2, cheap for tests) of
/// fresh secrets into `dir`, and returns the secrets.
pub fn keystores(dir: &Path, count: usize, seed: u64) -> Vec<Scalar> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let encryptor = KeystoreEncryptor::new(
        &Password::new(PASSWORD),
        KdfParams::pbkdf2(16).unwrap(),
        SaltMode::Shared,
        &mut rng,
    )
    .unwrap();
    (0..count)
        .map(|v| {
            let secret = Scalar::random(&mut rng);
            let key = SecretKey::from_bytes(&secret.to_bytes_be()).unwrap();
            let keystore = encryptor
                .encrypt(
                    &secret.to_bytes_be(),
                    KeystoreMeta {
                        pubkey: &key.public_key(),
                        path: &format!("m/12381/3600/{v}/0/0"),
                        description: "split test",
                    },
                    &mut rng,
                )
                .unwrap();
            std::fs::write(
                dir.join(format!("keystore-{v}.json")),
                keystore.to_json_string().unwrap(),
            )
            .unwrap();
            secret
        })
        .collect()
}

/// Four operators `op1`..`op4` (SSV ids and test keys with `ssv`), a
/// dealer `dealer`, keystores of `count` keys in `keys/`, a password file
/// and the split definition `split.json`.
fn setup(count: usize, ssv: bool) -> (Cluster, Vec<Scalar>) {
    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(5);
    let ids = [11u64, 27, 103, 404];
    for (i, port) in ports.iter().enumerate() {
        let dir = if i == 4 {
            "dealer".to_owned()
        } else {
            format!("op{}", i + 1)
        };
        let mut args = vec![
            "identity".to_owned(),
            "new".into(),
            "--dir".into(),
            dir.clone(),
            "--name".into(),
            dir.clone(),
            "--address".into(),
            format!("127.0.0.1:{port}"),
        ];
        if ssv && i < 4 {
            let key = dvkg::ssv::dealer::test_operator_key(i)
                .unwrap()
                .public_key()
                .registered()
                .to_owned();
            args.extend([
                "--ssv-operator-id".into(),
                ids[i].to_string(),
                "--ssv-operator-key".into(),
                key,
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dvkg(root.path(), &args).assert_code(0);
    }
    let secrets = keystores(&root.path().join("keys"), count, 7);
    std::fs::write(root.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let mut args = vec!["definition", "split"];
    for op in ["op1", "op2", "op3", "op4"] {
        args.push("--operator");
        args.push(Box::leak(format!("{op}/operator.json").into_boxed_str()));
    }
    args.extend([
        "--dealer",
        "dealer/operator.json",
        "--keystores",
        "keys",
        "--network",
        "hoodi",
        "--out",
        "split.json",
    ]);
    if ssv {
        args.extend([
            "--ssv-owner",
            "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6",
            "--ssv-nonce",
            "8",
        ]);
    }
    dvkg(root.path(), &args)
        .assert_code(0)
        .assert_mentions("wrote split.json: a split, 4 operators, threshold 3")
        .assert_mentions("a split cannot retire the original keys");
    (Cluster { root, n: 4 }, secrets)
}

/// The dealer's process (participant 5).
fn dealer(cluster: &Cluster, extra: &[&str]) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_dvkg"))
        .current_dir(cluster.root.path())
        .args([
            "-v",
            "ceremony",
            "--definition",
            "split.json",
            "--identity",
            "dealer",
            "--out",
            "out-dealer",
            "--timeout",
            "60",
            "--round-timeout",
            "30",
            "--keystores",
            "keys",
        ])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_split(cluster: &Cluster, dealer_extra: &[&str]) -> Vec<crate::ceremony::Finished> {
    let started = Instant::now();
    let mut children: Vec<Child> = (1..=4)
        .map(|i| cluster.start(i, "split.json", (60, 30)))
        .collect();
    children.push(dealer(cluster, dealer_extra));
    children.into_iter().map(|c| wait(c, started)).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push(
            entry
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn three_keys_split_over_four_operators_and_a_dealer() {
    let (cluster, secrets) = setup(3, false);
    let done = run_split(&cluster, &["--keystore-password-file", "password"]);
    for (i, d) in done.iter().enumerate() {
        assert_eq!(d.code, 0, "participant {}:\n{}", i + 1, d.stderr);
    }
    // The dealer is told plainly what a split cannot do.
    assert!(
        done[4].stderr.contains("a split cannot retire them")
            && done[4].stderr.contains("mnemonic"),
        "{}",
        done[4].stderr
    );
    // The dealer writes the public record only.
    assert_eq!(
        files_in(&cluster.path("out-dealer")),
        ["cluster-lock.json", "confirmation.json", "transcript.bin"]
    );
    let lock_bytes = std::fs::read(cluster.path("out1/cluster-lock.json")).unwrap();
    assert_eq!(
        std::fs::read(cluster.path("out-dealer/cluster-lock.json")).unwrap(),
        lock_bytes
    );
    for dir in ["out1", "out2", "out3", "out4", "out-dealer"] {
        dvkg(cluster.root.path(), &["verify", dir])
            .assert_code(0)
            .assert_mentions("split: the keys dealt are the definition's validator keys")
            .assert_mentions("deposit nothing new");
        assert_eq!(
            std::fs::read(cluster.path(&format!("{dir}/cluster-lock.json"))).unwrap(),
            lock_bytes
        );
    }
    // No deposit data at the operators either: the validators are live.
    assert!(
        !files_in(&cluster.path("out1"))
            .iter()
            .any(|f| f.starts_with("deposit_data"))
    );
    let lock: ClusterLock = serde_json::from_slice(&lock_bytes).unwrap();
    assert_eq!(lock.kind, dvkg::dkg::plan::CeremonyKind::Split);
    // Any three operators' keystores rebuild each original key, and their
    // partial signatures combine to the original key's signature, byte for
    // byte.
    let mut decryptor = KeystoreDecryptor::new();
    let message = b"a message the original key signs";
    for chosen in [[1usize, 2, 3], [2, 3, 4], [1, 2, 4]] {
        let xs: Vec<ShareIndex> = chosen.iter().map(|&i| lock.share_indices[i - 1]).collect();
        let lambdas = lagrange_at_zero(&xs);
        for (v, secret) in secrets.iter().enumerate() {
            let mut recovered = Scalar::ZERO;
            let mut combined = G2Sum::default();
            for (&i, lambda) in chosen.iter().zip(&lambdas) {
                let keys = cluster.path(&format!("out{i}/validator_keys"));
                let password = std::fs::read_to_string(keys.join("password.txt")).unwrap();
                let keystore = Keystore::from_json_str(
                    &std::fs::read_to_string(keys.join(format!("keystore-{v}.json"))).unwrap(),
                )
                .unwrap();
                let share = decryptor
                    .decrypt(&keystore, &Password::new(&password))
                    .unwrap();
                let share = Scalar::from_bytes_be(share.expose_secret()).unwrap();
                recovered = recovered.add(&lambda.mul(&share));
                let partial = G2Point::hash(message).mul(&share).mul(lambda);
                combined.add_point(&partial);
            }
            assert_eq!(&recovered, secret, "validator {v} from {chosen:?}");
            let mut raw = *secret.to_bytes_be().expose_secret();
            let key = SecretKey::from_bytes(&SecretBytes::new(&mut raw)).unwrap();
            assert_eq!(
                combined.to_point().to_bytes(),
                key.sign(message).to_bytes(),
                "validator {v}"
            );
            assert_eq!(
                G1Point::mul_generator(secret).to_bytes(),
                lock.validators[v].pubkey.0
            );
        }
    }
}

/// The dealer's refusal, before any connection: it exits 1 at once (no
/// operator is running) and writes nothing.
fn dealer_refuses(cluster: &Cluster, extra: &[&str], needle: &str) {
    let started = Instant::now();
    let done = wait(dealer(cluster, extra), started);
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr.contains(needle),
        "{needle:?} not in:\n{}",
        done.stderr
    );
    assert!(
        done.elapsed.as_secs() < 20,
        "refused after {:?}",
        done.elapsed
    );
    assert!(!cluster.path("out-dealer").exists());
}

#[test]
fn bad_keystore_inputs_are_refused_before_connecting() {
    let (cluster, _) = setup(2, false);
    let keys = cluster.path("keys");
    // A wrong password.
    std::fs::write(cluster.path("wrong"), "not the password\n").unwrap();
    dealer_refuses(
        &cluster,
        &["--keystore-password-file", "wrong"],
        "wrong password",
    );
    // No password at all, and no keystore-<name>.txt beside them.
    dealer_refuses(&cluster, &[], "no password for keys/keystore-0.json");
    // Per-keystore passwords beside each keystore work as input.
    for v in 0..2 {
        std::fs::write(keys.join(format!("keystore-{v}.txt")), PASSWORD).unwrap();
    }
    // A keystore the definition does not split.
    let extra = tempfile::tempdir().unwrap();
    keystores(extra.path(), 1, 99);
    std::fs::copy(
        extra.path().join("keystore-0.json"),
        keys.join("keystore-extra.json"),
    )
    .unwrap();
    dealer_refuses(
        &cluster,
        &["--keystore-password-file", "password"],
        "which is not one of the definition's validator_keys",
    );
    std::fs::remove_file(keys.join("keystore-extra.json")).unwrap();
    // A validator with no keystore.
    std::fs::remove_file(keys.join("keystore-1.json")).unwrap();
    dealer_refuses(
        &cluster,
        &["--keystore-password-file", "password"],
        "no keystore in keys holds validator 1's key",
    );
    // An operator who passes --keystores is told it is not the dealer.
    let started = Instant::now();
    let done = wait(
        cluster.start_with(1, "split.json", (60, 30), &["--keystores", "keys"]),
        started,
    );
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(done.stderr.contains("--keystores is for a split's dealer"));
    // And the dealer without --keystores is told what it must pass.
    let started = Instant::now();
    let done = wait(
        std::process::Command::new(env!("CARGO_BIN_EXE_dvkg"))
            .current_dir(cluster.root.path())
            .args([
                "ceremony",
                "--definition",
                "split.json",
                "--identity",
                "dealer",
                "--out",
                "x",
            ])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        started,
    );
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("pass --keystores DIR"),
        "{}",
        done.stderr
    );
}

/// Runs a split of 2 keys with one fault injected, by the dealer (`None`)
/// or by operator `i`, and checks that every honest party aborts naming
/// `culprit` for `reason`, that nobody wrote outputs, and that an honest
/// operator's abort report proves it to anyone with the definition.
fn split_fault(faulty: Option<usize>, fault: &str, culprit: &str, reason: &str) {
    let (cluster, _) = setup(2, false);
    let started = Instant::now();
    let mut children: Vec<Child> = (1..=4)
        .map(|i| {
            let extra: &[&str] = if faulty == Some(i) {
                &["--fault", fault]
            } else {
                &[]
            };
            cluster.start_with(i, "split.json", (60, 30), extra)
        })
        .collect();
    let mut dealer_extra = vec!["--keystore-password-file", "password"];
    if faulty.is_none() {
        dealer_extra.extend(["--fault", fault]);
    }
    children.push(dealer(&cluster, &dealer_extra));
    let done: Vec<_> = children.into_iter().map(|c| wait(c, started)).collect();
    for (p, d) in done.iter().enumerate() {
        let party = p + 1;
        let is_faulty = match faulty {
            Some(i) => i == party,
            None => party == 5,
        };
        if is_faulty {
            continue;
        }
        assert_eq!(d.code, 3, "{fault}: party {party}:\n{}", d.stderr);
        assert!(
            d.stderr.contains(culprit) && d.stderr.contains(reason),
            "{fault}: party {party} should name {culprit} for {reason}:\n{}",
            d.stderr
        );
    }
    for i in 1..=4 {
        assert!(
            !cluster.path(&format!("out{i}")).exists(),
            "{fault}: out{i}"
        );
    }
    assert!(!cluster.path("out-dealer").exists(), "{fault}: out-dealer");
    let honest = (1..=4).find(|&i| faulty != Some(i)).unwrap();
    let prefix = format!("out{honest}.abort-report-operator-{honest}-");
    let report = std::fs::read_dir(cluster.root.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .unwrap_or_else(|| panic!("{fault}: operator {honest}'s abort report"));
    dvkg(
        cluster.root.path(),
        &[
            "verify",
            "--abort-report",
            report.to_str().unwrap(),
            "--definition",
            "split.json",
        ],
    )
    .assert_code(0)
    .assert_mentions(culprit);
}

#[test]
fn a_dealer_dealing_another_key_is_named_and_nothing_is_written() {
    split_fault(
        None,
        "wrong-constant",
        "operator 5",
        "the validator's public key",
    );
}

#[test]
fn a_dealers_bad_share_to_one_operator_is_named_and_nothing_is_written() {
    split_fault(None, "bad-share", "operator 5", "share");
}

#[test]
fn an_equivocating_dealer_is_named_and_nothing_is_written() {
    split_fault(None, "equivocate", "operator 5", "operator 5");
}

#[test]
fn an_operators_false_complaint_is_named_and_nothing_is_written() {
    split_fault(Some(2), "lying-complaint", "operator 2", "complain");
}

#[test]
fn an_ssv_split_writes_keyshares_that_verify() {
    let (cluster, _) = setup(2, true);
    let done = run_split(&cluster, &["--keystore-password-file", "password"]);
    for (i, d) in done.iter().enumerate() {
        assert_eq!(d.code, 0, "participant {}:\n{}", i + 1, d.stderr);
    }
    let first = std::fs::read(cluster.path("out1/keyshares.json")).unwrap();
    for i in 1..=4 {
        assert_eq!(
            std::fs::read(cluster.path(&format!("out{i}/keyshares.json"))).unwrap(),
            first
        );
        dvkg(cluster.root.path(), &["verify", &format!("out{i}")])
            .assert_code(0)
            .assert_mentions("keyshares.json: built from the lock and transcript");
    }
    assert!(!cluster.path("out-dealer/keyshares.json").exists());
    // The dealer's outputs verify without one (`dvkg demo --split-keystores
    // --ssv` verifies every directory, the dealer's too).
    dvkg(cluster.root.path(), &["verify", "out-dealer"])
        .assert_code(0)
        .assert_mentions("keyshares.json: none at a split's dealer");
    let private = dvkg::ssv::dealer::test_operator_key(2).unwrap();
    std::fs::write(
        cluster.path("op3.pem"),
        private.to_pkcs1_pem().unwrap().as_bytes(),
    )
    .unwrap();
    dvkg(
        cluster.root.path(),
        &[
            "verify",
            "--keyshares",
            "out3/keyshares.json",
            "--ssv-owner",
            "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6",
            "--ssv-nonce",
            "8",
            "--ssv-operator-private-key",
            "op3.pem",
        ],
    )
    .assert_code(0)
    .assert_mentions("own slot decrypts to its share");
}

#[test]
fn wrong_constant_is_refused_for_anyone_but_the_dealer() {
    let (cluster, _) = setup(1, false);
    let started = Instant::now();
    let child = cluster.start_with(1, "split.json", (60, 30), &["--fault", "wrong-constant"]);
    let done = wait(child, started);
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("--fault wrong-constant is for a split's dealer")
            && done.stderr.contains("operator 1"),
        "{}",
        done.stderr
    );
    assert!(!cluster.path("out1").exists());
}
