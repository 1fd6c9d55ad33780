//! `dvkg ping`: separate processes on loopback QUIC, one per operator, each
//! with its own identity, on a definition made by `dvkg definition new`.
//! An operator "behind a NAT" listens (`--listen`) on another port than the
//! one its record advertises, where nothing listens: no dial reaches it,
//! while its own dials get out.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::ceremony::Cluster;
use crate::common::free_ports;

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Starts operator `i`'s `dvkg ping`; `nat` makes it listen on a port of
/// its own instead of the advertised one.
fn start(
    cluster: &Cluster,
    i: usize,
    definition: &str,
    timeout: u64,
    nat: bool,
    json: bool,
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dvkg"));
    command
        .current_dir(cluster.root.path())
        .args([
            "ping",
            "--definition",
            definition,
            "--identity",
            &format!("op{i}"),
            "--timeout",
            &timeout.to_string(),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if nat {
        command.args(["--listen", &format!("127.0.0.1:{}", free_ports(1)[0])]);
    }
    if json {
        command.arg("--json");
    }
    command.spawn().unwrap()
}

fn finish(child: Child) -> Ran {
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs operators 1..=n at once; those in `nat` behind a NAT.
fn ping_all(cluster: &Cluster, n: usize, nat: &[usize], timeout: u64) -> Vec<Ran> {
    let children: Vec<Child> = (1..=n)
        .map(|i| {
            start(
                cluster,
                i,
                "definition.json",
                timeout,
                nat.contains(&i),
                true,
            )
        })
        .collect();
    children.into_iter().map(finish).collect()
}

/// The cell `from` → `to` of a JSON report.
fn cell(report: &Value, from: u64, to: u64) -> &Value {
    report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["from"] == from && c["to"] == to)
        .unwrap_or_else(|| panic!("no cell {from} -> {to} in {report:#}"))
}

fn address(report: &Value, operator: u64) -> String {
    report["operators"][usize::try_from(operator - 1).unwrap()]["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn ping_four_reachable_operators_print_a_full_matrix() {
    let cluster = Cluster::new(4, 3, 1);
    let mut children: Vec<Child> = (1..=3)
        .map(|i| start(&cluster, i, "definition.json", 20, false, true))
        .collect();
    // Operator 4 prints the matrix for people.
    children.push(start(&cluster, 4, "definition.json", 20, false, false));
    let ran: Vec<Ran> = children.into_iter().map(finish).collect();
    for (i, run) in ran.iter().enumerate().take(3) {
        assert_eq!(
            run.code,
            0,
            "operator {}: {}\n{}",
            i + 1,
            run.stdout,
            run.stderr
        );
        let report = run.json();
        assert_eq!(report["me"], i + 1);
        assert_eq!(report["rows"], serde_json::json!([1, 2, 3, 4]));
        assert_eq!(report["verdict"]["connects"], true);
        assert_eq!(report["verdict"]["no_inbound"], serde_json::json!([]));
        assert_eq!(report["cells"].as_array().unwrap().len(), 16);
        for from in 1..=4u64 {
            for to in 1..=4u64 {
                let c = cell(&report, from, to);
                if from == to {
                    assert_eq!(c["result"], "self");
                    assert_eq!(c["text"], "--");
                    continue;
                }
                assert_eq!(c["result"], "direct", "{c}");
                assert_eq!(c["address"].as_str().unwrap(), address(&report, to));
                let rtt = c["rtt_micros"].as_u64().unwrap_or_else(|| panic!("{c}"));
                assert!(rtt > 0, "{c}");
                let text = c["text"].as_str().unwrap();
                assert!(text.ends_with(" ms") || text.ends_with(" µs"), "{c}");
            }
        }
    }
    let text = &ran[3];
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("from \\ to"), "{}", text.stdout);
    assert!(text.stdout.contains("1 op1"), "{}", text.stdout);
    assert!(
        text.stdout.contains(
            "verdict: every pair of operators reaches each other in at least one direction"
        ),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains(" ? "), "{}", text.stdout);
    // Progress on stderr names the peers with the address dialled.
    assert!(
        text.stderr.contains("dialled operator 1 (op1, 127.0.0.1:"),
        "{}",
        text.stderr
    );
}

#[test]
fn ping_an_operator_with_no_inbound_is_fine() {
    let cluster = Cluster::new(4, 3, 1);
    let ran = ping_all(&cluster, 4, &[3], 10);
    for (i, run) in ran.iter().enumerate() {
        assert_eq!(
            run.code,
            0,
            "operator {}: {}\n{}",
            i + 1,
            run.stdout,
            run.stderr
        );
        let report = run.json();
        assert_eq!(report["verdict"]["connects"], true, "{report:#}");
        assert_eq!(report["verdict"]["no_inbound"], serde_json::json!([3]));
        for other in [1u64, 2, 4] {
            // Its column: every dial of it failed, at its advertised address.
            let into = cell(&report, other, 3);
            assert_eq!(into["result"], "failed", "{into}");
            assert_eq!(into["failure"], "no_answer", "{into}");
            assert_eq!(into["address"].as_str().unwrap(), address(&report, 3));
            assert_eq!(
                into["text"].as_str().unwrap(),
                format!("no: timed out dialling {}", address(&report, 3))
            );
            // Its row: its own dials got out.
            let out = cell(&report, 3, other);
            assert_eq!(out["result"], "direct", "{out}");
            assert!(out["rtt_micros"].as_u64().is_some(), "{out}");
        }
    }
}

#[test]
fn ping_two_operators_with_no_inbound_need_a_relay() {
    let cluster = Cluster::new(4, 3, 1);
    let ran = ping_all(&cluster, 4, &[3, 4], 10);
    for (i, run) in ran.iter().enumerate() {
        // The ceremony relays them (automatically): ping passes, and says so.
        assert_eq!(
            run.code,
            0,
            "operator {}: {}\n{}",
            i + 1,
            run.stdout,
            run.stderr
        );
        let report = run.json();
        let verdict = &report["verdict"];
        assert_eq!(verdict["connects"], false);
        assert_eq!(verdict["connects_through_relay"], true);
        assert_eq!(
            verdict["no_path"],
            serde_json::json!([[3, 4]]),
            "{report:#}"
        );
        assert_eq!(verdict["no_inbound"], serde_json::json!([3, 4]));
        assert_eq!(verdict["relay_candidates"], serde_json::json!([1, 2]));
    }
    // Operators 3 and 4 never got each other's row, but each knows both
    // directions of their pair first-hand, and 4's dials of 1 and 2 from
    // their rows' incoming lists.
    let three = ran[2].json();
    assert_eq!(three["rows"], serde_json::json!([1, 2, 3]));
    assert_eq!(cell(&three, 3, 4)["result"], "failed");
    assert_eq!(cell(&three, 4, 3)["result"], "not_arrived");
    for to in [1, 2] {
        let c = cell(&three, 4, to);
        assert_eq!(c["result"], "direct", "{c}");
        assert!(c.get("rtt_micros").is_none(), "{c}");
        assert_eq!(c["text"], "yes");
    }
}

#[test]
fn ping_a_peer_with_another_definition_is_refused_by_name() {
    let cluster = Cluster::new(4, 3, 1);
    cluster.definition("other.json", 3, 2);
    let mut children: Vec<Child> = (1..=3)
        .map(|i| start(&cluster, i, "definition.json", 8, false, true))
        .collect();
    children.push(start(&cluster, 4, "other.json", 8, false, true));
    let ran: Vec<Ran> = children.into_iter().map(finish).collect();
    let ours = ran[0].json()["definition_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = ran[3].json()["definition_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(ours, theirs);
    for (i, run) in ran.iter().enumerate() {
        assert_eq!(
            run.code,
            4,
            "operator {}: {}\n{}",
            i + 1,
            run.stdout,
            run.stderr
        );
    }
    for run in ran.iter().take(3) {
        let report = run.json();
        let c = cell(&report, report["me"].as_u64().unwrap(), 4);
        assert_eq!(c["failure"], "other_definition", "{c}");
        let reason = c["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!(
                "its definition hash is {theirs}, this one's {ours}"
            )),
            "{reason}"
        );
        assert!(
            run.stderr.contains("dialled operator 4 (op4, 127.0.0.1:"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("it runs another definition"),
            "{}",
            run.stderr
        );
        assert_eq!(report["verdict"]["relay_candidates"], serde_json::json!([]));
    }
    let four = ran[3].json();
    for to in 1..=3u64 {
        assert_eq!(cell(&four, 4, to)["failure"], "other_definition");
    }
}

#[test]
fn ping_a_peer_running_the_ceremony_is_named() {
    let cluster = Cluster::new(4, 3, 1);
    let ceremony = cluster.start_with(4, "definition.json", (10, 10), &["--kdf", "pbkdf2"]);
    let children: Vec<Child> = (1..=3)
        .map(|i| start(&cluster, i, "definition.json", 20, false, true))
        .collect();
    let ran: Vec<Ran> = children.into_iter().map(finish).collect();
    for run in &ran {
        assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
        let report = run.json();
        let c = cell(&report, report["me"].as_u64().unwrap(), 4);
        assert_eq!(c["failure"], "ceremony", "{c}");
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains("it runs `dvkg ceremony`, not `dvkg ping`"),
            "{c}"
        );
        // Its dials were refused before a byte was sent: the ceremony's
        // mailbox never saw a ping stream to blame anyone for.
        let refused = report["refused"].as_array().unwrap();
        assert!(
            refused.iter().any(|r| r["reason"]
                .as_str()
                .unwrap()
                .starts_with("operator 4 (op4) runs `dvkg ceremony`, not `dvkg ping`")),
            "{report:#}"
        );
    }
    let ceremony = finish(ceremony);
    assert_eq!(ceremony.code, 4, "{}", ceremony.stderr);
    assert!(
        !ceremony.stderr.contains("invalid frame"),
        "{}",
        ceremony.stderr
    );
}
