//! `dvkg slashing serve` and `sync` as operators run them: a real 4-operator
//! ceremony (separate processes on loopback QUIC) makes the lock and the
//! identities and each operator's `slashing-protection.json`, which starts
//! its database; the database is then filled through `check-attestation`;
//! serving operators are separate processes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::Value;

use crate::ceremony::{Cluster, wait};
use crate::common::{Output, dvkg};

/// A ceremony of 4 operators, threshold 3, 2 validators; returns the
/// cluster and, per validator, its 4 share keys (0x hex).
fn ceremony() -> (Cluster, Vec<Vec<String>>) {
    let cluster = Cluster::new(4, 3, 2);
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| cluster.start(i, "definition.json", (60, 30)))
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "operator {} failed:\n{}", i + 1, done.stderr);
    }
    let text = std::fs::read_to_string(cluster.path("out1/cluster-lock.json")).unwrap();
    let lock: Value = serde_json::from_str(&text).unwrap();
    let shares = lock["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["public_shares"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| format!("0x{}", s.as_str().unwrap()))
                .collect()
        })
        .collect();
    (cluster, shares)
}

fn att(dir: &Path, db: &str, pubkey: &str, source: u64, target: u64) -> Output {
    let (s, t) = (source.to_string(), target.to_string());
    // A signing root per (source, target): the same vote again is the same
    // message, never a refusal for that reason.
    let root = format!("0x{:032x}{:032x}", source + 1, target + 1);
    dvkg(
        dir,
        &[
            "slashing",
            "check-attestation",
            "--db",
            db,
            "--network",
            "hoodi",
            "--pubkey",
            pubkey,
            "--source-epoch",
            &s,
            "--target-epoch",
            &t,
            "--signing-root",
            &root,
        ],
    )
}

/// What each operator's validator client signed: (validator, source,
/// target) per operator 1..=4.
type History = [&'static [(usize, u64, u64)]; 4];

/// Far beyond the current epoch of any network.
const FUTURE: u64 = 2_000_000_000;

const HISTORIES: History = [
    &[(0, 1, 2), (0, 2, 3), (0, 3, 4)],
    &[(0, 1, 2), (0, 2, 5)],
    &[(0, 10, 11), (0, 11, 12), (1, 1, 2)],
    &[(0, 5, 20), (1, 7, FUTURE)],
];

/// Hoodi's genesis validators root.
const HOODI: &str = "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f";

/// Each operator's database `dbI` starts from the ceremony's
/// `slashing-protection.json` (an empty history of exactly its share keys
/// for Hoodi); then its history is recorded, each vote signed with that
/// operator's share.
fn record(cluster: &Cluster, shares: &[Vec<String>]) {
    for (i, history) in HISTORIES.iter().enumerate() {
        let db = format!("db{}", i + 1);
        let file = format!("out{}/slashing-protection.json", i + 1);
        let text = std::fs::read_to_string(cluster.path(&file)).unwrap();
        let empty: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(empty["metadata"]["interchange_format_version"], "5");
        assert_eq!(empty["metadata"]["genesis_validators_root"], HOODI);
        let data = empty["data"].as_array().unwrap();
        assert_eq!(data.len(), shares.len());
        for (record, validator) in data.iter().zip(shares) {
            assert_eq!(record["pubkey"], validator[i].as_str());
            assert_eq!(record["signed_blocks"], serde_json::json!([]));
            assert_eq!(record["signed_attestations"], serde_json::json!([]));
        }
        dvkg(
            cluster.root.path(),
            &[
                "slashing",
                "import",
                "--db",
                &db,
                "--network",
                "hoodi",
                &file,
            ],
        )
        .assert_code(0)
        .assert_mentions("2 keys (2 new)");
        for &(v, s, t) in *history {
            att(cluster.root.path(), &db, &shares[v][i], s, t).assert_code(0);
        }
    }
}

/// A running `dvkg slashing serve`: ready once it said so; its later stderr
/// is collected by a thread.
struct Server {
    child: Child,
    rest: Option<JoinHandle<String>>,
}

impl Server {
    fn start(cluster: &Cluster, i: usize, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dvkg"))
            .current_dir(cluster.root.path())
            .args([
                "slashing",
                "serve",
                "--lock",
                &format!("out{i}/cluster-lock.json"),
                "--identity",
                &format!("op{i}"),
                "--db",
                &format!("db{i}"),
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).unwrap();
            assert!(n > 0, "serve {i} ended before it was ready:\n{seen}");
            seen.push_str(&line);
            if line.contains("serving the slashing-protection history") {
                break;
            }
        }
        let rest = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = reader.read_to_string(&mut out);
            out
        });
        Self {
            child,
            rest: Some(rest),
        }
    }

    /// Stops it (by its own pid) and returns what it printed after starting.
    fn stop(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.rest.take().unwrap().join().unwrap()
    }
}

fn sync(cluster: &Cluster, i: usize, extra: &[&str]) -> Output {
    let lock = format!("out{i}/cluster-lock.json");
    let identity = format!("op{i}");
    let db = format!("db{i}");
    let mut args = vec![
        "slashing",
        "sync",
        "--lock",
        &lock,
        "--identity",
        &identity,
        "--db",
        &db,
    ];
    args.extend_from_slice(extra);
    dvkg(cluster.root.path(), &args)
}

#[test]
fn a_deleted_database_is_rebuilt_from_three_peers() {
    let (cluster, shares) = ceremony();
    let d = cluster.root.path();
    record(&cluster, &shares);
    std::fs::remove_file(cluster.path("db2")).unwrap();

    let servers: Vec<Server> = [1, 3, 4]
        .iter()
        .map(|&i| Server::start(&cluster, i, &[]))
        .collect();
    let out = sync(&cluster, 2, &["--timeout", "60"]);
    let logs: Vec<String> = servers.into_iter().map(Server::stop).collect();
    out.assert_code(0)
        .assert_mentions("ok    operator 1 (op1)")
        .assert_mentions("ok    operator 3 (op3)")
        .assert_mentions("ok    operator 4 (op4)")
        .assert_mentions("synced: 3 of 3 other operators (at least 2 needed)")
        .assert_mentions("operator 2's share keys")
        // Operator 4's vote far in the future is kept, and reported.
        .assert_mentions("operator 4 (op4)'s history for")
        .assert_mentions(&format!("an attestation at epoch {FUTURE}"));
    for log in &logs {
        assert!(
            log.contains("sent this operator's history to operator 2 (op2)"),
            "{log}"
        );
    }

    // Every vote any peer signed, and every vote surrounding it, is now
    // refused for operator 2's share of that validator.
    for (i, history) in HISTORIES.iter().enumerate() {
        if i == 1 {
            continue;
        }
        for &(v, s, t) in *history {
            let share = &shares[v][1];
            att(d, "db2", share, s, t)
                .assert_code(5)
                .assert_mentions("refused to sign");
            att(d, "db2", share, s.saturating_sub(1), t + 1).assert_code(5);
        }
    }
    // Beyond everything the peers signed, operator 2 signs again.
    att(d, "db2", &shares[0][1], 11, 21).assert_code(0);
}

#[test]
fn too_few_peers_exit_4_and_forged_exports_are_refused_by_operator() {
    let (cluster, shares) = ceremony();
    let d = cluster.root.path();
    record(&cluster, &shares);
    std::fs::remove_file(cluster.path("db2")).unwrap();

    // More peers than there are: a user error naming the flag.
    sync(&cluster, 2, &["--min-peers", "4"])
        .assert_code(1)
        .assert_mentions("--min-peers 4");
    // A server needs its database.
    dvkg(
        d,
        &[
            "slashing",
            "serve",
            "--lock",
            "out3/cluster-lock.json",
            "--identity",
            "op3",
            "--db",
            "nowhere.db",
        ],
    )
    .assert_code(1)
    .assert_mentions("no slashing-protection database at nowhere.db");

    // Only operator 1 serves: 1 of the 2 needed.
    let server = Server::start(&cluster, 1, &[]);
    let out = sync(&cluster, 2, &["--timeout", "5"]);
    server.stop();
    out.assert_code(4)
        .assert_mentions("ok    operator 1 (op1)")
        .assert_mentions("FAIL  operator 3 (op3): could not be reached")
        .assert_mentions("synced from 1 of the 2 operators needed")
        .assert_mentions("missing operator 3 (op3), operator 4 (op4)")
        .assert_mentions("do not sign yet");
    // What operator 1 sent is merged all the same.
    for &(v, s, t) in HISTORIES[0] {
        att(d, "db2", &shares[v][1], s, t).assert_code(5);
    }

    // Operator 3's export is changed after signing; operator 4's claims to
    // be operator 1's. Both refused, each named; neither merged, while
    // operator 1's is.
    let honest = Server::start(&cluster, 1, &[]);
    let forged = Server::start(&cluster, 3, &["--fault", "bad-signature"]);
    let impostor = Server::start(&cluster, 4, &["--fault", "wrong-operator"]);
    let out = sync(&cluster, 2, &["--timeout", "60"]);
    for server in [honest, forged, impostor] {
        server.stop();
    }
    out.assert_code(3)
        .assert_mentions("FAIL  operator 3 (op3): sent an export that is refused: its signature does not verify")
        .assert_mentions("FAIL  operator 4 (op4): sent an export that is refused: it claims to be operator 1's export")
        .assert_mentions("refused the export of operator 3 (op3), operator 4 (op4)")
        .assert_mentions("the histories of operator 1 (op1) are merged");
    // Operator 3 signed (10, 11): had its export been merged, this would
    // be refused.
    att(d, "db2", &shares[0][1], 10, 11).assert_code(0);
}
