//! Whole ceremonies as operators run them: separate `dvkg ceremony`
//! processes on loopback QUIC, each with its own identity created by
//! `dvkg identity new`, on a definition made by `dvkg definition new`.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dvkg::ceremony::lock::ClusterLock;
use dvkg::crypto::{G1Point, Scalar};
use dvkg::dkg::plan::ShareIndex;
use dvkg::dkg::signing::lagrange_at_zero;
use dvkg::eth::deposit::{self, Expectations};
use dvkg::eth::keystore::{Keystore, KeystoreDecryptor, Password};
use rand::seq::SliceRandom;
use rand::thread_rng;

use crate::common::dvkg;

const ADDRESS: &str = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad";

/// A cluster on disk: identities and a definition.
pub struct Cluster {
    pub root: tempfile::TempDir,
    pub n: usize,
}

pub fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

impl Cluster {
    pub fn new(n: usize, t: usize, validators: usize) -> Self {
        let root = tempfile::tempdir().unwrap();
        let ports = free_ports(n);
        for (i, port) in ports.iter().enumerate() {
            let dir = format!("op{}", i + 1);
            dvkg(
                root.path(),
                &[
                    "identity",
                    "new",
                    "--dir",
                    &dir,
                    "--name",
                    &dir,
                    "--address",
                    &format!("127.0.0.1:{port}"),
                ],
            )
            .assert_code(0);
        }
        let cluster = Self { root, n };
        cluster.definition("definition.json", t, validators);
        cluster
    }

    pub fn definition(&self, name: &str, t: usize, validators: usize) {
        let mut args: Vec<String> = vec!["definition".into(), "new".into()];
        for i in 1..=self.n {
            args.push("--operator".into());
            args.push(format!("op{i}/operator.json"));
        }
        for arg in [
            "--threshold",
            &t.to_string(),
            "--validators",
            &validators.to_string(),
            "--network",
            "hoodi",
            "--withdrawal-address",
            ADDRESS,
            "--withdrawal-type",
            "0x02",
            "--out",
            name,
        ] {
            args.push(arg.to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dvkg(self.root.path(), &args).assert_code(0);
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// Starts operator `i` with `definition`.
    pub fn start(&self, i: usize, definition: &str, timeouts: (u64, u64)) -> Child {
        self.start_with(i, definition, timeouts, &[])
    }

    /// Starts operator `i` with `definition` and extra flags.
    pub fn start_with(
        &self,
        i: usize,
        definition: &str,
        timeouts: (u64, u64),
        extra: &[&str],
    ) -> Child {
        self.start_at(i, definition, timeouts, &format!("out{i}"), extra)
    }

    /// Starts operator `i` with `definition`, writing to `out`, with extra
    /// flags.
    pub fn start_at(
        &self,
        i: usize,
        definition: &str,
        timeouts: (u64, u64),
        out: &str,
        extra: &[&str],
    ) -> Child {
        Command::new(env!("CARGO_BIN_EXE_dvkg"))
            .current_dir(self.root.path())
            .args([
                "-v",
                "ceremony",
                "--definition",
                definition,
                "--identity",
                &format!("op{i}"),
                "--out",
                out,
            ])
            .args([
                "--timeout",
                &timeouts.0.to_string(),
                "--round-timeout",
                &timeouts.1.to_string(),
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

pub struct Finished {
    pub code: i32,
    pub stderr: String,
    pub elapsed: Duration,
}

pub fn wait(child: Child, started: Instant) -> Finished {
    let out = child.wait_with_output().unwrap();
    Finished {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every operator's public files are identical, `dvkg verify` passes on
/// each, and any t operators' keystores interpolate to each validator's key.
pub fn check_outputs(cluster: &Cluster, t: usize) {
    let first = cluster.path("out1");
    let deposit_name = std::fs::read_dir(&first)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .find(|n| n.starts_with("deposit_data-"))
        .expect("a deposit data file");
    for i in 1..=cluster.n {
        let dir = cluster.path(&format!("out{i}"));
        for file in [
            "cluster-lock.json",
            "transcript.json",
            deposit_name.as_str(),
        ] {
            assert_eq!(
                read(&dir.join(file)),
                read(&first.join(file)),
                "operator {i}'s {file} differs"
            );
        }
        let keys = dir.join("validator_keys");
        dvkg(
            cluster.root.path(),
            &[
                "verify",
                dir.to_str().unwrap(),
                "--keystores",
                keys.to_str().unwrap(),
                "--password-file",
                keys.join("password.txt").to_str().unwrap(),
            ],
        )
        .assert_code(0)
        .assert_mentions("checks: ")
        .assert_mentions(" 0 failed");
        let mode = std::fs::metadata(keys.join("password.txt")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    // Test-only oracle: decrypt any t operators' keystores and interpolate.
    let lock: ClusterLock =
        serde_json::from_slice(&read(&first.join("cluster-lock.json"))).unwrap();
    let mut operators: Vec<usize> = (1..=cluster.n).collect();
    operators.shuffle(&mut thread_rng());
    let chosen = &operators[..t];
    let ids: Vec<ShareIndex> = chosen.iter().map(|&i| lock.share_indices[i - 1]).collect();
    let lambdas = lagrange_at_zero(&ids);
    let mut decryptor = KeystoreDecryptor::new();
    for (v, validator) in lock.validators.iter().enumerate() {
        let mut secret = Scalar::ZERO;
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
            secret =
                secret.add(&lambda.mul(&Scalar::from_bytes_be(share.expose_secret()).unwrap()));
        }
        assert_eq!(
            G1Point::mul_generator(&secret).to_bytes(),
            validator.pubkey.0,
            "validator {v}"
        );
        for entry in &validator.deposit_data {
            let entry = entry.to_entry();
            assert_eq!(entry.pubkey, validator.pubkey.0);
            assert!(deposit::verify_entry(&entry, &Expectations::default()).is_empty());
        }
    }
}

#[test]
fn four_operators_as_separate_processes() {
    let cluster = Cluster::new(4, 3, 3);
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| cluster.start(i, "definition.json", (40, 20)))
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "operator {} failed:\n{}", i + 1, done.stderr);
        assert!(done.stderr.contains("ceremony complete"), "{}", done.stderr);
    }
    check_outputs(&cluster, 3);

    // Operator 2 rebuilds its keystores from its sealed bundle and the lock.
    dvkg(
        cluster.root.path(),
        &[
            "restore",
            "--from",
            "out2",
            "--identity",
            "op2",
            "--out",
            "restored2",
        ],
    )
    .assert_code(0)
    .assert_mentions("restored operator 2's 3 keystores");
    dvkg(
        cluster.root.path(),
        &[
            "verify",
            "out2",
            "--keystores",
            "restored2",
            "--password-file",
            "restored2/password.txt",
        ],
    )
    .assert_code(0)
    .assert_mentions("match operator 2's public shares");
    // Operator 3's identity cannot open operator 2's bundle.
    std::fs::create_dir(cluster.path("swapped")).unwrap();
    std::fs::copy(
        cluster.path("out2/cluster-lock.json"),
        cluster.path("swapped/cluster-lock.json"),
    )
    .unwrap();
    std::fs::copy(
        cluster.path("out2/shares-operator-2.age"),
        cluster.path("swapped/shares-operator-3.age"),
    )
    .unwrap();
    dvkg(
        cluster.root.path(),
        &[
            "restore",
            "--from",
            "swapped",
            "--identity",
            "op3",
            "--out",
            "restored3",
        ],
    )
    .assert_code(1)
    .assert_mentions("cannot open swapped/shares-operator-3.age");
    assert!(!cluster.path("restored3").exists());
}

#[test]
fn operators_started_five_seconds_apart_in_random_order() {
    let cluster = Cluster::new(4, 3, 2);
    let mut order: Vec<usize> = (1..=4).collect();
    order.shuffle(&mut thread_rng());
    let started = Instant::now();
    let mut children = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if k > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        children.push((i, cluster.start(i, "definition.json", (40, 20))));
    }
    for (i, child) in children {
        let done = wait(child, started);
        assert_eq!(
            done.code, 0,
            "operator {i} (order {order:?}) failed:\n{}",
            done.stderr
        );
    }
    check_outputs(&cluster, 3);
}

pub fn assert_no_secrets(cluster: &Cluster, operators: &[usize]) {
    for &i in operators {
        let out = cluster.path(&format!("out{i}"));
        assert!(!out.exists(), "operator {i} left {} on disk", out.display());
    }
    let leftovers: Vec<String> = std::fs::read_dir(cluster.root.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.contains("partial") || n.contains("keystore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_wrong_definition_at_one_operator_is_named() {
    let cluster = Cluster::new(4, 3, 2);
    // Operator 4 holds a definition for 3 validators instead of 2.
    cluster.definition("other.json", 3, 3);
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| {
            cluster.start(
                i,
                if i == 4 {
                    "other.json"
                } else {
                    "definition.json"
                },
                (40, 20),
            )
        })
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        let i = k + 1;
        let done = wait(child, started);
        assert_ne!(done.code, 0, "operator {i} succeeded");
        // Operator 4 too: a coordination mistake, never "operator 1 is at
        // fault" (issue 17).
        assert_ne!(done.code, 3, "operator {i}:\n{}", done.stderr);
        if i != 4 {
            // Another definition is a coordination mistake, not a proven
            // fault: exit 6.
            assert_eq!(done.code, 6, "operator {i}:\n{}", done.stderr);
            assert!(
                done.stderr
                    .contains("operator 4 (op4) is running another ceremony")
                    && done.stderr.contains("its definition hash is"),
                "operator {i}:\n{}",
                done.stderr
            );
        }
        assert!(
            done.elapsed < Duration::from_secs(60),
            "operator {i} took {:?}",
            done.elapsed
        );
    }
    assert_no_secrets(&cluster, &[1, 2, 3, 4]);
}

#[test]
fn an_identity_not_in_the_definition_is_refused_and_its_slot_named() {
    let cluster = Cluster::new(4, 3, 1);
    // A stranger with operator 4's address tries to join.
    let record: serde_json::Value =
        serde_json::from_slice(&read(&cluster.path("op4/operator.json"))).unwrap();
    dvkg(
        cluster.root.path(),
        &[
            "identity",
            "new",
            "--dir",
            "stranger",
            "--name",
            "stranger",
            "--address",
            record["address"].as_str().unwrap(),
        ],
    )
    .assert_code(0);
    let stranger = dvkg(
        cluster.root.path(),
        &[
            "ceremony",
            "--definition",
            "definition.json",
            "--identity",
            "stranger",
            "--out",
            "out4",
        ],
    );
    stranger
        .assert_code(1)
        .assert_mentions("is not an operator of the cluster definition");
    let started = Instant::now();
    let children: Vec<Child> = (1..=3)
        .map(|i| cluster.start(i, "definition.json", (8, 20)))
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(done.code, 4, "operator {}:\n{}", k + 1, done.stderr);
        assert!(
            done.stderr.contains("to operator 4 (op4, 127.0.0.1:"),
            "operator {}:\n{}",
            k + 1,
            done.stderr
        );
        assert!(
            done.elapsed < Duration::from_secs(30),
            "took {:?}",
            done.elapsed
        );
    }
    assert_no_secrets(&cluster, &[1, 2, 3, 4]);
}

#[test]
fn an_operator_killed_after_round_one_is_named() {
    let cluster = Cluster::new(4, 3, 2);
    let started = Instant::now();
    let mut children: Vec<Child> = (1..=4)
        .map(|i| cluster.start(i, "definition.json", (40, 10)))
        .collect();
    // Kill operator 4 as soon as it logs that round 1 is complete.
    let mut victim = children.pop().unwrap();
    let stderr = victim.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("round 1 complete") {
            break;
        }
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    for (k, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(done.code, 4, "operator {}:\n{}", k + 1, done.stderr);
        assert!(
            done.stderr.contains("operator 4"),
            "operator {}:\n{}",
            k + 1,
            done.stderr
        );
        assert!(
            done.elapsed < Duration::from_secs(45),
            "took {:?}",
            done.elapsed
        );
    }
    assert_no_secrets(&cluster, &[1, 2, 3, 4]);
}
