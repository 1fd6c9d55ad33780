//! Whole ceremonies as operators run them: separate `dvkg ceremony`
//! processes on loopback QUIC, each with its own identity created by
//! `dvkg identity new`, on a definition made by `dvkg definition new`.

use std::io::{BufRead, BufReader};
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

use crate::common::{dvkg, free_ports};

const ADDRESS: &str = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad";

/// A cluster on disk: identities and a definition.
pub struct Cluster {
    pub root: tempfile::TempDir,
    pub n: usize,
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
        for file in ["cluster-lock.json", "transcript.bin", deposit_name.as_str()] {
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

/// The stderr lines of a run, less the warning a fault-injection build
/// (the one `cargo test` runs) prints at every start.
fn without_build_warning(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| *line != dvkg::cli::FAULT_BUILD_WARNING)
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Issue 17: a successful ceremony ends with the next steps (compare the
/// lock hash, back up the share bundle, check together, one party
/// deposits), and `-q` prints nothing on success; a password file named
/// like each keystore sits beside it (Teku, charon); and `dvkg verify` on
/// a tampered deposit file names the entry, its key and the field, in one
/// JSON shape for both modes.
#[test]
fn issue_17_next_steps_keystore_passwords_and_tampered_deposits() {
    let cluster = Cluster::new(3, 2, 2);
    let started = Instant::now();
    let children: Vec<(usize, Child)> = (1..=3)
        .map(|i| {
            let quiet: &[&str] = if i == 3 { &["-q"] } else { &[] };
            let child = Command::new(env!("CARGO_BIN_EXE_dvkg"))
                .current_dir(cluster.root.path())
                .args(quiet)
                .args(["ceremony", "--definition", "definition.json"])
                .args(["--identity", &format!("op{i}"), "--out", &format!("out{i}")])
                .args([
                    "--timeout",
                    "40",
                    "--round-timeout",
                    "20",
                    "--kdf",
                    "pbkdf2",
                ])
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    let mut stderrs = Vec::new();
    for (i, child) in children {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "operator {i}:\n{}", done.stderr);
        stderrs.push((i, done.stderr));
    }
    let lock: ClusterLock =
        serde_json::from_slice(&read(&cluster.path("out1/cluster-lock.json"))).unwrap();
    let hash = hex::encode(lock.lock_hash.0);
    for (i, stderr) in &stderrs {
        if *i == 3 {
            assert_eq!(without_build_warning(stderr), "", "-q printed status lines");
            continue;
        }
        let steps = stderr
            .split("dvkg: next steps:")
            .nth(1)
            .unwrap_or_else(|| panic!("operator {i} printed no next steps:\n{stderr}"));
        for needle in [
            format!("compare the lock hash {hash}"),
            format!("back up out{i}/shares-operator-{i}.age"),
            format!("dvkg check --lock out{i}/cluster-lock.json --identity op{i}"),
            format!("submits each deposit of out{i}/deposit_data-"),
        ] {
            assert!(
                steps.contains(&needle),
                "operator {i}: {needle:?} in\n{steps}"
            );
        }
    }

    // keystore-<v>.txt: the generated password, 0600, opening keystore-<v>.json.
    let mut decryptor = KeystoreDecryptor::new();
    for dir in ["out1/validator_keys", "out3/validator_keys"] {
        let keys = cluster.path(dir);
        let password = std::fs::read_to_string(keys.join("password.txt")).unwrap();
        for v in 0..2 {
            let txt = keys.join(format!("keystore-{v}.txt"));
            assert_eq!(
                std::fs::read_to_string(&txt).unwrap(),
                password.trim_end_matches('\n'),
                "{}",
                txt.display()
            );
            let mode = std::fs::metadata(&txt).unwrap();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
                0o600
            );
            let keystore = Keystore::from_json_str(
                &std::fs::read_to_string(keys.join(format!("keystore-{v}.json"))).unwrap(),
            )
            .unwrap();
            decryptor
                .decrypt(
                    &keystore,
                    &Password::new(&std::fs::read_to_string(&txt).unwrap()),
                )
                .unwrap();
        }
    }
    // `dvkg restore` writes them too.
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
            "--kdf",
            "pbkdf2",
        ],
    )
    .assert_code(0);
    assert!(cluster.path("restored2/keystore-1.txt").exists());

    // A deposit file whose first entry's amount was edited.
    let deposit_name = std::fs::read_dir(cluster.path("out1"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .find(|n| n.starts_with("deposit_data-"))
        .unwrap();
    let path = cluster.path(&format!("out1/{deposit_name}"));
    let mut entries: serde_json::Value = serde_json::from_slice(&read(&path)).unwrap();
    let pubkey = entries[0]["pubkey"].as_str().unwrap().to_owned();
    let amount = entries[0]["amount"].as_u64().unwrap();
    entries[0]["amount"] = serde_json::Value::from(amount - 1_000_000_000);
    std::fs::write(&path, serde_json::to_string(&entries).unwrap()).unwrap();
    let short = format!("{}…{}", &pubkey[..8], &pubkey[pubkey.len() - 8..]);

    let text = dvkg(cluster.root.path(), &["verify", "out1"]);
    text.assert_code(5)
        .assert_mentions(&format!(
            "entry 0 pubkey {short}: amount: is {}",
            amount - 1_000_000_000
        ))
        .assert_mentions(&format!("{amount} in the lock's deposit for this key"));

    let dir_json: serde_json::Value =
        serde_json::from_str(&dvkg(cluster.root.path(), &["verify", "out1", "--json"]).stdout)
            .unwrap();
    let file = format!("out1/{deposit_name}");
    let file_json: serde_json::Value = serde_json::from_str(
        &dvkg(
            cluster.root.path(),
            &["verify", "--deposit-data", &file, "--json"],
        )
        .stdout,
    )
    .unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&dir_json), ["checks", "deposits", "ok", "version"]);
    assert_eq!(keys(&dir_json), keys(&file_json));
    assert_eq!(dir_json["version"], file_json["version"]);
    for report in [&dir_json, &file_json] {
        assert_eq!(report["ok"], false);
        let entry = &report["deposits"][0];
        assert_eq!(entry["index"], 0);
        assert_eq!(entry["pubkey"], pubkey.as_str());
        assert_eq!(entry["ok"], false);
        let fields: Vec<&str> = entry["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        // The lone file has no lock to compare with: its own checks name
        // the roots the edit broke.
        assert!(!fields.is_empty(), "{report}");
        assert_eq!(report["deposits"][1]["ok"], true, "{report}");
    }
    let dir_fields = dir_json["deposits"][0]["problems"].to_string();
    assert!(dir_fields.contains("\"amount\""), "{dir_fields}");
}
