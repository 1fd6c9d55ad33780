//! Never a split outcome (issue 16), tried as operators would meet it, with
//! `dvkg ceremony` processes over loopback QUIC: an outage at the end of a
//! ceremony, a disk too small, a crash during the write, a signal, and
//! `dvkg check`, which tells a cluster that can sign from one that cannot.
//! Each test asserts the outcome at every operator.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::ceremony::{Cluster, check_outputs, wait};
use crate::common::dvkg;

const PBKDF2: [&str; 2] = ["--kdf", "pbkdf2"];

/// Starts `dvkg check` for operator `i`, with extra flags.
fn check(cluster: &Cluster, i: usize, lock: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dvkg"))
        .current_dir(cluster.root.path())
        .args([
            "check",
            "--lock",
            lock,
            "--identity",
            &format!("op{i}"),
            "--timeout",
            "30",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `dvkg check` at all four operators at once; `args(i)` gives
/// operator i's lock and extra flags. Returns each one's exit code and
/// standard output.
fn check_all(
    cluster: &Cluster,
    args: impl Fn(usize) -> (String, Vec<String>),
) -> Vec<(i32, String)> {
    let children: Vec<Child> = (1..=cluster.n)
        .map(|i| {
            let (lock, extra) = args(i);
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            check(cluster, i, &lock, &extra)
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        })
        .collect()
}

fn own_lock(i: usize) -> (String, Vec<String>) {
    (format!("out{i}/cluster-lock.json"), Vec::new())
}

fn pending(i: usize) -> String {
    format!("out{i}.pending-shares-operator-{i}.age")
}

/// Restores operator `i` from its pending file and `lock` into
/// `restored{i}`.
fn restore(cluster: &Cluster, i: usize, lock: &str) {
    dvkg(
        cluster.root.path(),
        &[
            "restore",
            "--pending",
            &pending(i),
            "--lock",
            lock,
            "--identity",
            &format!("op{i}"),
            "--out",
            &format!("restored{i}"),
            "--kdf",
            "pbkdf2",
        ],
    )
    .assert_code(0)
    .assert_mentions("restored operator");
}

/// The check flags of a restored operator.
fn restored_lock(lock: &str, i: usize) -> (String, Vec<String>) {
    (
        lock.to_owned(),
        vec![
            "--keystores".into(),
            format!("restored{i}"),
            "--password-file".into(),
            format!("restored{i}/password.txt"),
        ],
    )
}

#[test]
fn an_outage_after_the_finalize_messages_leaves_every_share_recoverable() {
    // Operator 4's uplink fails once it holds every finalize message, but
    // before anyone holds its own (fault mute@4: nothing it sends arrives,
    // it still receives). Before, it wrote a lock and exited 0 alone while
    // the others kept nothing.
    let cluster = Cluster::new(4, 3, 2);
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| {
            let mut extra = PBKDF2.to_vec();
            if i == 4 {
                extra.extend(["--fault", "mute@4"]);
            }
            // The others notice operator 4 is gone when its connection
            // idles out (20 s), after it wrote its outputs (its closing wait
            // is 10 s).
            cluster.start_with(i, "definition.json", (30, 30), &extra)
        })
        .collect();
    let done: Vec<_> = children.into_iter().map(|c| wait(c, started)).collect();
    for (k, d) in done.iter().enumerate() {
        assert_ne!(d.code, 0, "operator {} exited 0:\n{}", k + 1, d.stderr);
    }
    // Operator 4 wrote its outputs, confirmed by no one.
    assert_eq!(done[3].code, 7, "{}", done[3].stderr);
    assert!(
        done[3].stderr.contains("not every operator confirmed"),
        "{}",
        done[3].stderr
    );
    assert!(done[3].stderr.contains("dvkg check"), "{}", done[3].stderr);
    dvkg(cluster.root.path(), &["verify", "out4"])
        .assert_code(5)
        .assert_mentions("UNCONFIRMED");
    // The others abort naming it, and keep their shares.
    for i in 1..=3 {
        let d = &done[i - 1];
        assert_eq!(d.code, 4, "operator {i}:\n{}", d.stderr);
        assert!(
            d.stderr.contains("operator 4"),
            "operator {i}:\n{}",
            d.stderr
        );
        assert!(
            d.stderr
                .contains(&format!("dvkg restore --pending {}", pending(i))),
            "{}",
            d.stderr
        );
        assert!(!cluster.path(&format!("out{i}")).exists());
        restore(&cluster, i, "out4/cluster-lock.json");
    }
    // With the shares restored, the cluster can sign.
    let results = check_all(&cluster, |i| {
        if i == 4 {
            own_lock(4)
        } else {
            restored_lock("out4/cluster-lock.json", i)
        }
    });
    for (i, (code, output)) in results.iter().enumerate() {
        assert_eq!(*code, 0, "check at operator {}:\n{output}", i + 1);
        assert!(output.contains("1 spare operator"), "{output}");
        for op in 1..=4 {
            assert!(
                output.contains(&format!(
                    "operator {op} (op{op}) holds working shares for 2 of 2"
                )),
                "{output}"
            );
        }
    }
}

#[test]
fn check_names_an_operator_that_lost_its_keystores() {
    let cluster = Cluster::new(4, 3, 3);
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| cluster.start_with(i, "definition.json", (30, 20), &PBKDF2))
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        let d = wait(child, started);
        assert_eq!(d.code, 0, "operator {}:\n{}", k + 1, d.stderr);
    }
    check_outputs(&cluster, 3);
    for (i, (code, output)) in check_all(&cluster, own_lock).iter().enumerate() {
        assert_eq!(*code, 0, "healthy check at operator {}:\n{output}", i + 1);
        assert!(output.contains("it has 1 spare operator"), "{output}");
    }
    // Operator 2's keystores are gone: the cluster still signs, with no
    // spare operator left.
    std::fs::remove_dir_all(cluster.path("out2/validator_keys")).unwrap();
    for (i, (code, output)) in check_all(&cluster, own_lock).iter().enumerate() {
        assert_eq!(*code, 0, "check at operator {}:\n{output}", i + 1);
        assert!(
            output.contains("FAIL  operator 2 (op2) holds working shares for 0 of 3 validators"),
            "{output}"
        );
        assert!(output.contains("it has 0 spare operators"), "{output}");
    }
    // And with operator 3's gone too, it cannot.
    std::fs::remove_dir_all(cluster.path("out3/validator_keys")).unwrap();
    for (i, (code, output)) in check_all(&cluster, own_lock).iter().enumerate() {
        assert_eq!(*code, 5, "check at operator {}:\n{output}", i + 1);
        assert!(output.contains("CANNOT sign"), "{output}");
    }
}

#[test]
fn sigint_in_round_two_stops_every_peer_within_two_seconds() {
    let cluster = Cluster::new(4, 3, 2);
    let started = Instant::now();
    let mut children: Vec<Child> = (1..=4)
        .map(|i| cluster.start_with(i, "definition.json", (30, 30), &PBKDF2))
        .collect();
    let mut victim = children.remove(1);
    let stderr = victim.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("round 1 complete") {
            break;
        }
    }
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &victim.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: String = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    let code = victim.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest}");
    assert!(
        rest.contains("operator 2 (op2) stopped: interrupted"),
        "{rest}"
    );
    for (k, child) in children.into_iter().enumerate() {
        let i = if k == 0 { 1 } else { k + 2 };
        let d = wait(child, started);
        let after = signalled.elapsed();
        assert_eq!(d.code, 4, "operator {i}:\n{}", d.stderr);
        assert!(
            d.stderr.contains("operator 2") && d.stderr.contains("interrupted"),
            "operator {i}:\n{}",
            d.stderr
        );
        assert!(
            after < Duration::from_secs(2) + Duration::from_millis(500),
            "operator {i} took {after:?}"
        );
    }
    for i in 1..=4 {
        assert!(!cluster.path(&format!("out{i}")).exists());
    }
}

/// Mounts a tmpfs of `size` at `dir`, if this machine allows it.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_disk_too_small_is_refused_before_connecting() {
    let cluster = Cluster::new(4, 3, 300);
    let small = cluster.path("small");
    if !mount_tmpfs(&small, "256k") {
        eprintln!("skipped: this machine does not let the test mount a small tmpfs");
        return;
    }
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| {
            let out = if i == 2 {
                "small/out2".to_owned()
            } else {
                format!("out{i}")
            };
            cluster.start_at(i, "definition.json", (8, 10), &out, &PBKDF2)
        })
        .collect();
    let done: Vec<_> = children.into_iter().map(|c| wait(c, started)).collect();
    let _ = Command::new("umount").arg(&small).status();
    let refused = &done[1];
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not enough room for the outputs")
            && refused.stderr.contains("needed")
            && refused.stderr.contains("free"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("connected"), "{}", refused.stderr);
    for i in [1, 3, 4] {
        let d = &done[i - 1];
        assert_eq!(d.code, 4, "operator {i}:\n{}", d.stderr);
        assert!(
            d.stderr.contains(
                "could not connect before the deadline, in either direction, to operator 2 (op2, 127.0.0.1:"
            ),
            "operator {i}:\n{}",
            d.stderr
        );
    }
}

#[test]
fn an_operator_that_reaches_nobody_is_told_to_check_its_own_network() {
    // Alone: every other operator is missing, so no one of them is to
    // blame (issue 17: "losing every peer at once says check this
    // machine's network").
    let cluster = Cluster::new(4, 3, 1);
    let started = Instant::now();
    let alone = wait(
        cluster.start_at(2, "definition.json", (3, 10), "out2", &PBKDF2),
        started,
    );
    assert_eq!(alone.code, 4, "{}", alone.stderr);
    assert!(
        alone
            .stderr
            .contains("this machine reached none of the 3 other operators"),
        "{}",
        alone.stderr
    );
    assert!(
        !alone.stderr.contains("check that operator"),
        "{}",
        alone.stderr
    );
}

#[test]
fn kill_9_during_the_write_never_costs_an_operator_its_shares() {
    // 20 runs: operator 3 is killed at a random moment of its write. It
    // recovers (its outputs, if they were committed, or its pending file and
    // another operator's lock); the others never exit 0; the cluster then
    // passes dvkg check.
    let mut rng = rand::thread_rng();
    let cluster = Cluster::new(4, 3, 40);
    for run in 0..20 {
        // Each run starts from the identities and the definition alone.
        for entry in std::fs::read_dir(cluster.root.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("out") || name.starts_with("restored") || name.starts_with(".out") {
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).unwrap();
                } else {
                    std::fs::remove_file(&path).unwrap();
                }
            }
        }
        let started = Instant::now();
        // A round timeout of 2 s makes the confirmation wait 2 s. Operator
        // 3 pauses 5 ms after each file it writes (fault slow-write: 40
        // keystores and 8 other files, about 240 ms), so that the kill lands
        // inside its write.
        let mut children: Vec<Child> = (1..=4)
            .map(|i| {
                let mut extra = PBKDF2.to_vec();
                if i == 3 {
                    extra.extend(["--fault", "slow-write"]);
                }
                cluster.start_with(i, "definition.json", (30, 2), &extra)
            })
            .collect();
        let mut victim = children.remove(2);
        let stderr = victim.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("writing the outputs") {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..220_000)));
        victim.kill().unwrap();
        victim.wait().unwrap();
        for (k, child) in children.into_iter().enumerate() {
            let i = [1, 2, 4][k];
            let d = wait(child, started);
            assert_eq!(d.code, 7, "run {run}, operator {i}:\n{}", d.stderr);
            assert!(
                d.stderr.contains("operator 3"),
                "run {run}, operator {i}:\n{}",
                d.stderr
            );
        }
        // All or nothing: out3 is absent, or complete and verifying with
        // every keystore (the files are made durable together at the
        // commit, then the directory is renamed into place).
        let out3 = cluster.path("out3");
        let committed = out3.exists();
        if committed {
            let keystores = std::fs::read_dir(out3.join("validator_keys"))
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("keystore-") && name.ends_with(".json")
                })
                .count();
            assert_eq!(keystores, 40, "run {run}: a committed out3 lacks keystores");
            // Killed before (or during) the confirmation exchange, it
            // cannot have confirmed: every other check passes.
            let verified = Command::new(env!("CARGO_BIN_EXE_dvkg"))
                .arg("verify")
                .arg(&out3)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&verified.stdout);
            assert!(
                report
                    .lines()
                    .any(|l| l.starts_with("ok    transcript: verifies"))
                    && report
                        .lines()
                        .filter(|l| l.starts_with("FAIL"))
                        .all(|l| l.starts_with("FAIL  confirmation:")),
                "run {run}: a committed out3 does not verify:\n{report}"
            );
        }
        if !committed {
            restore(&cluster, 3, "out1/cluster-lock.json");
        }
        let results = check_all(&cluster, |i| {
            if i == 3 && !committed {
                restored_lock("out1/cluster-lock.json", 3)
            } else {
                own_lock(i)
            }
        });
        for (i, (code, output)) in results.iter().enumerate() {
            assert_eq!(
                *code,
                0,
                "run {run} (committed: {committed}), check at operator {}:\n{output}",
                i + 1
            );
        }
    }
}
