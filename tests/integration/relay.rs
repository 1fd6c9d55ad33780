//! Operators that accept no inbound UDP (issue 17): reached by their own
//! dials, and two of them through a relay. "No inbound UDP" is a record
//! that advertises a port where nothing listens while the operator listens
//! (`--listen`) elsewhere: nobody can dial it, but its own dials and their
//! replies get through, exactly as behind a NAT without a port forward.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::Instant;

use crate::ceremony::{Cluster, check_outputs, wait};
use crate::common::dvkg;
use crate::common::free_ports;

/// A cluster of four whose operators `no_inbound` advertise a dead port;
/// the real port each of them listens on.
fn nat_cluster(no_inbound: &[usize]) -> (Cluster, BTreeMap<usize, u16>) {
    let root = tempfile::tempdir().unwrap();
    let n = 4;
    let ports = free_ports(2 * n);
    let mut listen = BTreeMap::new();
    for i in 1..=n {
        let dir = format!("op{i}");
        let advertised = ports[i - 1];
        if no_inbound.contains(&i) {
            listen.insert(i, ports[n + i - 1]);
        }
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
                &format!("127.0.0.1:{advertised}"),
            ],
        )
        .assert_code(0);
    }
    let cluster = Cluster { root, n };
    cluster.definition("definition.json", 3, 2);
    (cluster, listen)
}

/// Runs the four operators (`extra` flags per operator) to the end; their
/// stderr, after checking that every one succeeded and that the outputs
/// agree byte for byte.
fn run(
    cluster: &Cluster,
    listen: &BTreeMap<usize, u16>,
    extra: &BTreeMap<usize, Vec<String>>,
) -> Vec<String> {
    let started = Instant::now();
    let children: Vec<Child> = (1..=cluster.n)
        .map(|i| {
            let mut flags: Vec<String> = extra.get(&i).cloned().unwrap_or_default();
            if let Some(port) = listen.get(&i) {
                flags.push("--listen".into());
                flags.push(format!("127.0.0.1:{port}"));
            }
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            cluster.start_with(i, "definition.json", (90, 30), &flags)
        })
        .collect();
    let mut stderr = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "operator {} failed:\n{}", i + 1, done.stderr);
        assert!(done.stderr.contains("ceremony complete"), "{}", done.stderr);
        stderr.push(done.stderr);
    }
    check_outputs(cluster, 3);
    stderr
}

/// The status line operator `me` printed for peer `peer`.
fn status_line(stderr: &str, me: usize, peer: usize) -> String {
    let prefix = format!("dvkg: operator {me}: connected to operator {peer} (op{peer}): ");
    stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no status line for operator {peer}:\n{stderr}"))
        .to_owned()
}

#[test]
fn issue_17_one_operator_with_no_inbound_udp_is_reached_by_its_own_dials() {
    let (cluster, listen) = nat_cluster(&[3]);
    let stderr = run(&cluster, &listen, &BTreeMap::new());
    for peer in [1, 2, 4] {
        let line = status_line(&stderr[2], 3, peer);
        assert!(line.contains(": dialled at 127.0.0.1:"), "{line}");
    }
    for (i, text) in stderr.iter().enumerate() {
        assert!(!text.contains("(relay)"), "operator {}:\n{text}", i + 1);
    }
}

/// Which relay operator `me`'s status line for `peer` names.
fn relay_of(stderr: &[String], me: usize, peer: usize) -> usize {
    let line = status_line(&stderr[me - 1], me, peer);
    let (_, rest) = line
        .split_once(": through operator ")
        .unwrap_or_else(|| panic!("not relayed: {line}"));
    assert!(rest.contains("(relay)"), "{line}");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn issue_17_two_operators_with_no_inbound_udp_connect_through_a_relay() {
    let (cluster, listen) = nat_cluster(&[3, 4]);
    let stderr = run(&cluster, &listen, &BTreeMap::new());
    let via = relay_of(&stderr, 3, 4);
    assert!([1, 2].contains(&via), "{via}");
    // Both ends kept the same connection, through the same relay.
    assert_eq!(relay_of(&stderr, 4, 3), via);
    assert!(
        stderr[2].contains(&format!("operator 4 reached via operator {via} (relay)")),
        "{}",
        stderr[2]
    );
    assert!(
        stderr[via - 1].contains("relaying between operator"),
        "{}",
        stderr[via - 1]
    );
    // Every other pair is direct.
    for (me, peer) in [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 1), (4, 2)] {
        let line = status_line(&stderr[me - 1], me, peer);
        assert!(!line.contains("(relay)"), "{line}");
    }
}

#[test]
fn issue_17_relay_via_names_the_relay_by_index_or_name() {
    let (cluster, listen) = nat_cluster(&[3, 4]);
    // The same flag for everyone, the relay included (it just relays).
    let extra = BTreeMap::from([
        (1, vec!["--relay-via".to_owned(), "1".to_owned()]),
        (2, vec!["--relay-via".to_owned(), "op1".to_owned()]),
        (3, vec!["--relay-via".to_owned(), "1".to_owned()]),
        (4, vec!["--relay-via".to_owned(), "op1".to_owned()]),
    ]);
    let stderr = run(&cluster, &listen, &extra);
    assert_eq!(relay_of(&stderr, 3, 4), 1);
    assert_eq!(relay_of(&stderr, 4, 3), 1);
    assert!(
        stderr[0].contains("relaying between operator"),
        "{}",
        stderr[0]
    );
}

#[test]
fn relay_via_must_name_an_operator() {
    let (cluster, _) = nat_cluster(&[]);
    for (wanted, says) in [
        (
            "9",
            "--relay-via \"9\" is no operator of the cluster definition",
        ),
        ("nobody", "--relay-via \"nobody\" is no operator"),
    ] {
        dvkg(
            cluster.root.path(),
            &[
                "ceremony",
                "--definition",
                "definition.json",
                "--identity",
                "op2",
                "--out",
                "out2",
                "--relay-via",
                wanted,
            ],
        )
        .assert_code(1)
        .assert_mentions(says)
        .assert_mentions("hint:");
    }
}
