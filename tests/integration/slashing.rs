//! `dvkg slashing`: the EIP-3076 rules on messages dvkg recorded itself (not
//! only imported ones), atomic refusals, an export → import round trip, two
//! processes racing for one key, the merge of a cluster's histories through
//! a real lock, and every exit code. The vectors here are written from
//! EIP-3076's rules; the public conformance suite runs separately
//! (`scripts/interchange-tests.sh`).

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{Output, dvkg};

/// Hoodi's genesis validators root (`--network hoodi`).
const HOODI: &str = "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f";
const OTHER_ROOT: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";

fn key(i: u8) -> String {
    format!("0x{}", format!("{i:02x}").repeat(48))
}

fn signing_root(i: u64) -> String {
    format!("0x{i:064x}")
}

fn att(dir: &Path, db: &str, pubkey: &str, source: u64, target: u64, root: Option<u64>) -> Output {
    let (s, t) = (source.to_string(), target.to_string());
    let r = root.map(signing_root);
    let mut args = vec![
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
    ];
    if let Some(r) = &r {
        args.extend(["--signing-root", r.as_str()]);
    }
    dvkg(dir, &args)
}

fn block(dir: &Path, db: &str, pubkey: &str, slot: u64, root: Option<u64>) -> Output {
    let s = slot.to_string();
    let r = root.map(signing_root);
    let mut args = vec![
        "slashing",
        "check-block",
        "--db",
        db,
        "--genesis-validators-root",
        HOODI,
        "--pubkey",
        pubkey,
        "--slot",
        &s,
    ];
    if let Some(r) = &r {
        args.extend(["--signing-root", r.as_str()]);
    }
    dvkg(dir, &args)
}

fn import(dir: &Path, db: &str, file: &str) -> Output {
    dvkg(
        dir,
        &["slashing", "import", "--db", db, "--network", "hoodi", file],
    )
}

fn export(dir: &Path, db: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "slashing",
        "export",
        "--db",
        db,
        "--network",
        "hoodi",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    dvkg(dir, &args)
}

fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(value).unwrap()).unwrap();
    name.to_owned()
}

/// One record: a key, its signed slots, its (source, target) attestations.
type Record<'a> = (&'a str, &'a [u64], &'a [(u64, u64)]);

/// An interchange with one record per [`Record`].
fn interchange(root: &str, records: &[Record<'_>]) -> Value {
    let data: Vec<Value> = records
        .iter()
        .map(|(pubkey, slots, atts)| {
            json!({
                "pubkey": pubkey,
                "signed_blocks": slots.iter().map(|s| json!({"slot": s.to_string()})).collect::<Vec<_>>(),
                "signed_attestations": atts.iter().map(|(s, t)| json!({
                    "source_epoch": s.to_string(), "target_epoch": t.to_string()
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "metadata": {"interchange_format_version": "5", "genesis_validators_root": root},
        "data": data,
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn double_and_surround_votes_against_recorded_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(0xa1);
    att(d, "db", &k, 2, 6, Some(1))
        .assert_code(0)
        .assert_mentions("safe");
    // The very same attestation again: safe, nothing new.
    att(d, "db", &k, 2, 6, Some(1))
        .assert_code(0)
        .assert_mentions("already recorded");
    att(d, "db", &k, 2, 6, Some(2))
        .assert_code(5)
        .assert_mentions("double vote");
    // No signing root (or all zeros) never matches, not even itself.
    att(d, "db", &k, 2, 6, None)
        .assert_code(5)
        .assert_mentions("double vote");
    att(d, "db", &k, 2, 6, Some(0))
        .assert_code(5)
        .assert_mentions("double vote");
    att(d, "db", &k, 3, 5, Some(3))
        .assert_code(5)
        .assert_mentions("surround vote: the recorded attestation source 2 target 6 surrounds");
    att(d, "db", &k, 1, 7, Some(3))
        .assert_code(5)
        .assert_mentions("surrounds the recorded attestation source 2 target 6");
    att(d, "db", &k, 1, 7, Some(3)).assert_mentions("nothing was recorded");
    att(d, "db", &k, 4, 3, Some(3))
        .assert_code(5)
        .assert_mentions("source epoch 4 is after target epoch 3");
    att(d, "db", &k, 6, 8, Some(4)).assert_code(0);
    // Below the lowest target, without a surround: the watermark.
    att(d, "db", &k, 2, 4, Some(5))
        .assert_code(5)
        .assert_mentions("at or below the lowest target epoch 6");
    // Another key has its own history.
    att(d, "db", &key(0xa2), 3, 5, Some(3)).assert_code(0);

    block(d, "db", &k, 10, Some(1)).assert_code(0);
    block(d, "db", &k, 10, Some(1))
        .assert_code(0)
        .assert_mentions("already recorded");
    block(d, "db", &k, 10, Some(2))
        .assert_code(5)
        .assert_mentions("double proposal");
    block(d, "db", &k, 10, None).assert_code(5);
    block(d, "db", &k, 9, Some(1))
        .assert_code(5)
        .assert_mentions("at or below the lowest signed slot 10");
    block(d, "db", &k, 11, None).assert_code(0);
    block(d, "db", &k, 11, None)
        .assert_code(5)
        .assert_mentions("double proposal");
}

#[test]
fn exit_codes_and_messages_name_the_flag_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(0xb1);
    // 2: usage (missing chain, both chains, a slot that is not a number).
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--pubkey",
            &k,
            "--slot",
            "1",
        ],
    )
    .assert_code(2);
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--network",
            "hoodi",
            "--genesis-validators-root",
            HOODI,
            "--pubkey",
            &k,
            "--slot",
            "1",
        ],
    )
    .assert_code(2);
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--network",
            "hoodi",
            "--pubkey",
            &k,
            "--slot",
            "x",
        ],
    )
    .assert_code(2);
    // 1: a flag value dvkg refuses.
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--network",
            "hoodi",
            "--pubkey",
            "0x12",
            "--slot",
            "1",
        ],
    )
    .assert_code(1)
    .assert_mentions("invalid value for --pubkey");
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--network",
            "dev:0x10000910",
            "--pubkey",
            &k,
            "--slot",
            "1",
        ],
    )
    .assert_code(1)
    .assert_mentions("--genesis-validators-root");
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--network",
            "hoodi",
            "--pubkey",
            &k,
            "--slot",
            "1",
            "--signing-root",
            "0x12",
        ],
    )
    .assert_code(1)
    .assert_mentions("--signing-root");
    // 0, then 1 for the same database opened for another chain.
    block(d, "db", &k, 1, Some(1)).assert_code(0);
    dvkg(
        d,
        &[
            "slashing",
            "check-block",
            "--db",
            "db",
            "--genesis-validators-root",
            OTHER_ROOT,
            "--pubkey",
            &k,
            "--slot",
            "5",
        ],
    )
    .assert_code(1)
    .assert_mentions("belongs to another chain")
    .assert_mentions(HOODI);
    // 1: a file that is not a database.
    std::fs::write(
        d.join("junk"),
        "this is not an sqlite database, only some text",
    )
    .unwrap();
    block(d, "junk", &k, 1, None)
        .assert_code(1)
        .assert_mentions("cannot use the slashing-protection database junk");
    // 5: refused.
    block(d, "db", &k, 1, Some(2)).assert_code(5);
    // 1: import problems.
    import(d, "db", "missing.json")
        .assert_code(1)
        .assert_mentions("missing.json");
    std::fs::write(d.join("bad.json"), "{\"metadata\": ").unwrap();
    import(d, "db", "bad.json")
        .assert_code(1)
        .assert_mentions("bad.json");
    let mut typo = interchange(HOODI, &[(&k, &[5], &[])]);
    typo["data"][0]["signed_blocks"][0]["signingroot"] = json!(signing_root(1));
    write_json(d, "typo.json", &typo);
    import(d, "db", "typo.json")
        .assert_code(1)
        .assert_mentions("signingroot");
    // 1: export to an existing file, or from a missing database.
    std::fs::write(d.join("taken.json"), "keep").unwrap();
    export(d, "db", "taken.json", &[])
        .assert_code(1)
        .assert_mentions("already exists");
    assert_eq!(
        std::fs::read_to_string(d.join("taken.json")).unwrap(),
        "keep"
    );
    export(d, "nodb", "x.json", &[])
        .assert_code(1)
        .assert_mentions("no slashing-protection database at nodb");
    assert!(!d.join("nodb").exists());
    export(d, "db", "x.json", &["--pubkey", &key(0xee)])
        .assert_code(1)
        .assert_mentions("no history for");
}

#[test]
fn a_refused_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(0xc1);
    att(d, "db", &k, 3, 4, Some(1)).assert_code(0);
    block(d, "db", &k, 7, Some(1)).assert_code(0);
    let before = std::fs::read(d.join("db")).unwrap();
    export(d, "db", "before.json", &[]).assert_code(0);

    // Another chain, another version, and a file whose last record is bad:
    // each refused with exit 1, and not one of the good records lands.
    let big = [(k.as_str(), &[1000u64][..], &[(900u64, 1000u64)][..])];
    write_json(d, "other-chain.json", &interchange(OTHER_ROOT, &big));
    import(d, "db", "other-chain.json")
        .assert_code(1)
        .assert_mentions("refused to import other-chain.json")
        .assert_mentions("nothing was imported");
    let mut v4 = interchange(HOODI, &big);
    v4["metadata"]["interchange_format_version"] = json!("4");
    write_json(d, "v4.json", &v4);
    import(d, "db", "v4.json")
        .assert_code(1)
        .assert_mentions("interchange_format_version");
    let mut broken = interchange(HOODI, &[big[0], (&key(0xc2), &[1], &[])]);
    broken["data"][1]["pubkey"] = json!("0x1234");
    write_json(d, "broken.json", &broken);
    import(d, "db", "broken.json").assert_code(1);

    assert_eq!(std::fs::read(d.join("db")).unwrap(), before);
    export(d, "db", "after.json", &[]).assert_code(0);
    assert_eq!(
        read_json(&d.join("before.json")),
        read_json(&d.join("after.json"))
    );
    // Had any refused file landed, its (900, 1000) would refuse this.
    att(d, "db", &k, 4, 5, Some(2)).assert_code(0);
}

#[test]
fn import_merges_by_maximum_and_accepts_stale_and_slashable_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(0xd1);
    let first = interchange(HOODI, &[(&k, &[50, 40], &[(5, 9), (8, 6)])]);
    write_json(d, "first.json", &first);
    import(d, "db", "first.json")
        .assert_code(0)
        .assert_mentions("1 keys (1 new)");
    // Stale (lower) and repeated: accepted, no watermark goes down.
    let stale = interchange(HOODI, &[(&k, &[3], &[(1, 2)]), (&k, &[], &[])]);
    write_json(d, "stale.json", &stale);
    import(d, "db", "stale.json").assert_code(0);
    import(d, "db", "first.json").assert_code(0);
    block(d, "db", &k, 50, Some(1)).assert_code(5);
    block(d, "db", &k, 51, Some(1)).assert_code(0);
    // Max source 8 and max target 9, each taken separately.
    att(d, "db", &k, 7, 10, Some(1))
        .assert_code(5)
        .assert_mentions("surrounds the recorded attestation source 8 target 9");
    att(d, "db", &k, 8, 10, Some(1)).assert_code(0);
}

#[test]
fn export_then_import_refuses_every_signed_slot_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = [key(0xe1), key(0xe2)];
    let mut signed = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        for epoch in 0..6u64 {
            let e = epoch + i as u64;
            att(d, "old", k, e, e + 1, Some(100 + e)).assert_code(0);
            block(d, "old", k, 32 * e + 3, Some(200 + e)).assert_code(0);
            signed.push((k.clone(), e, e + 1, 32 * e + 3));
        }
    }
    export(d, "old", "history.json", &[]).assert_code(0);
    let history = read_json(&d.join("history.json"));
    assert_eq!(history["metadata"]["interchange_format_version"], "5");
    assert_eq!(history["metadata"]["genesis_validators_root"], HOODI);
    let first = &history["data"][0];
    assert_eq!(first["signed_attestations"].as_array().unwrap().len(), 6);
    assert_eq!(first["signed_blocks"][0]["slot"], "3");
    assert_eq!(first["signed_blocks"][0]["signing_root"], signing_root(200));
    // The export never overwrites.
    export(d, "old", "history.json", &[]).assert_code(1);

    import(d, "new", "history.json").assert_code(0);
    for (k, source, target, slot) in &signed {
        // Signed before with another root: every one refused for a new root.
        att(d, "new", k, *source, *target, Some(999)).assert_code(5);
        block(d, "new", k, *slot, Some(999)).assert_code(5);
        // And every attestation surrounding it.
        if *source > 0 {
            att(d, "new", k, source - 1, target + 1, Some(999)).assert_code(5);
        }
    }
    // A minified export of one key carries the maxima only.
    export(d, "new", "min.json", &["--pubkey", &keys[1], "--minify"]).assert_code(0);
    let min = read_json(&d.join("min.json"));
    assert_eq!(min["data"].as_array().unwrap().len(), 1);
    assert_eq!(min["data"][0]["pubkey"], keys[1]);
    assert_eq!(
        min["data"][0]["signed_attestations"],
        json!([{"source_epoch": "6", "target_epoch": "7"}])
    );
    assert_eq!(min["data"][0]["signed_blocks"], json!([{"slot": "195"}]));
}

#[test]
fn two_processes_racing_for_one_key_exactly_one_signs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(0xf1);
    // Create the database first, then race on each new target.
    att(d, "db", &k, 0, 1, Some(1)).assert_code(0);
    let spawn = |target: u64, root: u64| {
        Command::new(env!("CARGO_BIN_EXE_dvkg"))
            .args([
                "slashing",
                "check-attestation",
                "--db",
                "db",
                "--network",
                "hoodi",
                "--pubkey",
                &k,
                "--source-epoch",
                "1",
                "--target-epoch",
                &target.to_string(),
                "--signing-root",
                &signing_root(root),
            ])
            .current_dir(d)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for target in 2..32u64 {
        let a = spawn(target, 2 * target);
        let b = spawn(target, 2 * target + 1);
        let codes: Vec<i32> = [a, b]
            .into_iter()
            .map(|child| {
                child
                    .wait_with_output()
                    .unwrap()
                    .status
                    .code()
                    .unwrap_or(-1)
            })
            .collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 5], "target {target}: exit codes {codes:?}");
    }
    // A fresh database created by two racing processes at once.
    for round in 0..8 {
        let db = format!("fresh-{round}");
        let mk = |root: u64| {
            Command::new(env!("CARGO_BIN_EXE_dvkg"))
                .args([
                    "slashing",
                    "check-block",
                    "--db",
                    &db,
                    "--network",
                    "hoodi",
                    "--pubkey",
                    &k,
                    "--slot",
                    "5",
                    "--signing-root",
                    &signing_root(root),
                ])
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (mk(1), mk(2));
        let mut codes: Vec<i32> = [a, b]
            .into_iter()
            .map(|child| {
                child
                    .wait_with_output()
                    .unwrap()
                    .status
                    .code()
                    .unwrap_or(-1)
            })
            .collect();
        codes.sort();
        assert_eq!(codes, vec![0, 5], "round {round}");
    }
}

/// A real lock from `dvkg demo` (4 operators, 2 validators): each
/// validator's key and its operators' shares, in the lock's bare hex.
fn demo_lock(dir: &Path) -> (String, Vec<(String, Vec<String>)>) {
    dvkg(dir, &["demo", "--validators", "2", "--out", "demo"]).assert_code(0);
    let lock_path = "demo/operator-1/cluster-lock.json".to_owned();
    let lock = read_json(&dir.join(&lock_path));
    let validators = lock["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                format!("0x{}", v["pubkey"].as_str().unwrap()),
                v["public_shares"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| format!("0x{}", s.as_str().unwrap()))
                    .collect(),
            )
        })
        .collect();
    (lock_path, validators)
}

#[test]
fn merge_maps_every_nodes_shares_through_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (lock, v) = demo_lock(d);
    let (v1, v2) = (&v[0], &v[1]);
    // Node 1 signed with its shares; node 2 with its shares; a third file is
    // keyed by a validator key.
    write_json(
        d,
        "node1.json",
        &interchange(
            HOODI,
            &[
                (&v1.1[0], &[10], &[(2, 3), (3, 9)]),
                (&v2.1[0], &[], &[(1, 2)]),
            ],
        ),
    );
    write_json(
        d,
        "node2.json",
        &interchange(HOODI, &[(&v1.1[1], &[30], &[(5, 6)])]),
    );
    write_json(d, "group.json", &interchange(HOODI, &[(&v1.0, &[20], &[])]));
    let files = ["node1.json", "node2.json", "group.json"];
    let mut args = vec!["slashing", "merge", "--lock", &lock, "--for-operator", "3"];
    args.extend(files);
    args.extend(["--out", "op3.json"]);
    dvkg(d, &args)
        .assert_code(0)
        .assert_mentions("operator 3's share keys");
    let merged = read_json(&d.join("op3.json"));
    assert_eq!(merged["metadata"]["genesis_validators_root"], HOODI);
    assert_eq!(merged["data"][0]["pubkey"], v1.1[2]);
    assert_eq!(merged["data"][0]["signed_blocks"], json!([{"slot": "30"}]));
    assert_eq!(
        merged["data"][0]["signed_attestations"],
        json!([{"source_epoch": "5", "target_epoch": "9"}])
    );
    assert_eq!(merged["data"][1]["pubkey"], v2.1[2]);
    assert_eq!(merged["data"][1]["signed_blocks"], json!([]));

    // Operator 3 imports it: what the others signed is refused for its share.
    import(d, "op3.db", "op3.json").assert_code(0);
    block(d, "op3.db", &v1.1[2], 30, Some(1)).assert_code(5);
    att(d, "op3.db", &v1.1[2], 3, 9, Some(1)).assert_code(5);
    att(d, "op3.db", &v1.1[2], 4, 10, Some(1)).assert_code(5);
    att(d, "op3.db", &v2.1[2], 0, 3, Some(1)).assert_code(5);
    att(d, "op3.db", &v1.1[2], 5, 10, Some(1)).assert_code(0);

    let mut args = vec!["slashing", "merge", "--lock", &lock, "--group-keys"];
    args.extend(files);
    args.extend(["--out", "group-out.json"]);
    dvkg(d, &args).assert_code(0);
    let grouped = read_json(&d.join("group-out.json"));
    assert_eq!(grouped["data"][0]["pubkey"], v1.0);
    assert_eq!(grouped["data"][1]["pubkey"], v2.0);

    // A key the lock does not know, and a file for another chain: refused,
    // naming the file and the key; nothing written.
    write_json(
        d,
        "stranger.json",
        &interchange(HOODI, &[(&key(0x77), &[1], &[])]),
    );
    dvkg(
        d,
        &[
            "slashing",
            "merge",
            "--lock",
            &lock,
            "--group-keys",
            "node1.json",
            "stranger.json",
            "--out",
            "x.json",
        ],
    )
    .assert_code(1)
    .assert_mentions("stranger.json: key 0x7777")
    .assert_mentions("neither a validator nor a share");
    write_json(
        d,
        "other.json",
        &interchange(OTHER_ROOT, &[(&v1.1[0], &[1], &[])]),
    );
    dvkg(
        d,
        &[
            "slashing",
            "merge",
            "--lock",
            &lock,
            "--for-operator",
            "1",
            "other.json",
            "--out",
            "x.json",
        ],
    )
    .assert_code(1)
    .assert_mentions("other.json: genesis_validators_root");
    dvkg(
        d,
        &[
            "slashing",
            "merge",
            "--lock",
            &lock,
            "--for-operator",
            "5",
            "node1.json",
            "--out",
            "x.json",
        ],
    )
    .assert_code(1)
    .assert_mentions("there is no operator 5");
    assert!(!d.join("x.json").exists());
    // A lock whose contents no longer match its hash is refused.
    let mut tampered = read_json(&d.join(&lock));
    tampered["validators"][0]["public_shares"][0] = json!("ab".repeat(48));
    write_json(d, "tampered.json", &tampered);
    dvkg(
        d,
        &[
            "slashing",
            "merge",
            "--lock",
            "tampered.json",
            "--group-keys",
            "node1.json",
            "--out",
            "x.json",
        ],
    )
    .assert_code(1)
    .assert_mentions("does not match its lock_hash");
}
