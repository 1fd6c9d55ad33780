//! `dvkg identity new|show` and `dvkg definition new|verify` as an operator
//! and a cluster creator run them: files, modes, exit codes, and refusals
//! that name the field at fault.

use std::path::Path;

use serde_json::Value;

use crate::common::{Output, dvkg};

const WITHDRAWAL: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const WITHDRAWAL_CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// Creates an identity in `dir/sub`; returns the record printed on stdout.
fn new_identity(dir: &Path, sub: &str, name: &str, port: u16) -> Value {
    let address = format!("127.0.0.1:{port}");
    let out = dvkg(
        dir,
        &[
            "identity",
            "new",
            "--dir",
            sub,
            "--name",
            name,
            "--address",
            &address,
        ],
    );
    out.assert_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

/// Four identities in `op1` … `op4`; returns the operator.json paths.
fn four_operators(dir: &Path) -> Vec<String> {
    (1..=4)
        .map(|i| {
            let sub = format!("op{i}");
            new_identity(dir, &sub, &format!("operator-{i}"), 9000 + i);
            format!("{sub}/operator.json")
        })
        .collect()
}

fn definition_new(dir: &Path, operators: &[String], extra: &[&str]) -> Output {
    let mut args = vec!["definition", "new"];
    for op in operators {
        args.push("--operator");
        args.push(op);
    }
    if !extra.contains(&"--network") {
        args.extend(["--network", "hoodi"]);
    }
    if !extra.contains(&"--withdrawal-address") {
        args.extend(["--withdrawal-address", WITHDRAWAL]);
    }
    args.extend(extra);
    dvkg(dir, &args)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn identity_new_then_show_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dvkg(
        dir.path(),
        &[
            "identity",
            "new",
            "--name",
            "alice",
            "--address",
            "[::1]:9000",
        ],
    );
    out.assert_code(0)
        .assert_mentions(".dvkg/identity.json")
        .assert_mentions("NOT encrypted");
    let record: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(record["version"], 2);
    assert_eq!(record["name"], "alice");
    assert_eq!(record["address"], "[::1]:9000");
    assert_eq!(record["identity_key"].as_str().unwrap().len(), 64);
    assert!(
        record["age_recipient"]
            .as_str()
            .unwrap()
            .starts_with("age1")
    );
    assert!(!out.stdout.contains("AGE-SECRET-KEY") && !out.stderr.contains("AGE-SECRET-KEY"));

    let home = dir.path().join(".dvkg");
    let secret = home.join("identity.json");
    assert_eq!(
        std::fs::read_to_string(home.join("operator.json")).unwrap(),
        out.stdout
    );
    let secret_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&secret).unwrap()).unwrap();
    assert_eq!(secret_json["version"], 2);
    assert!(
        secret_json["age_identity"]
            .as_str()
            .unwrap()
            .starts_with("AGE-SECRET-KEY-1")
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(mode(&home), 0o700);
    }

    let shown = dvkg(dir.path(), &["identity", "show", "--json"]);
    shown.assert_code(0);
    assert_eq!(shown.stdout, out.stdout);
    dvkg(dir.path(), &["identity", "show"])
        .assert_code(0)
        .assert_mentions("name:          alice")
        .assert_mentions(record["identity_key"].as_str().unwrap())
        .assert_mentions("not encrypted");

    // An existing identity is never overwritten.
    let before = std::fs::read(&secret).unwrap();
    dvkg(
        dir.path(),
        &["identity", "new", "--name", "bob", "--address", "h:1"],
    )
    .assert_code(1)
    .assert_mentions("already exists")
    .assert_mentions("pass another --identity");
    assert_eq!(std::fs::read(&secret).unwrap(), before);

    dvkg(dir.path(), &["identity", "show", "--dir", "nowhere"])
        .assert_code(1)
        .assert_mentions("no identity in nowhere")
        .assert_mentions("dvkg identity new");
}

#[test]
fn sealed_identity_needs_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "correct horse\n").unwrap();
    std::fs::write(dir.path().join("wrong"), "battery staple\n").unwrap();
    std::fs::write(dir.path().join("empty"), "\n").unwrap();

    dvkg(
        dir.path(),
        &[
            "identity",
            "new",
            "--address",
            "127.0.0.1:9000",
            "--passphrase-file",
            "empty",
        ],
    )
    .assert_code(1)
    .assert_mentions("--passphrase-file")
    .assert_mentions("is empty");
    assert!(!dir.path().join(".dvkg").exists());

    let out = dvkg(
        dir.path(),
        &[
            "identity",
            "new",
            "--name",
            "carol",
            "--address",
            "127.0.0.1:9000",
            "--passphrase-file",
            "pw",
        ],
    );
    out.assert_code(0)
        .assert_mentions("identity.json.age")
        .assert_mentions("sealed with your passphrase");
    let sealed = dir.path().join(".dvkg/identity.json.age");
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!dir.path().join(".dvkg/identity.json").exists());
    #[cfg(unix)]
    assert_eq!(mode(&sealed), 0o600);

    // Without the passphrase, show prints the public record, unchecked.
    dvkg(dir.path(), &["identity", "show", "--json"])
        .assert_code(0)
        .assert_mentions("\"carol\"");
    let opened = dvkg(
        dir.path(),
        &["identity", "show", "--json", "--passphrase-file", "pw"],
    );
    opened.assert_code(0);
    assert_eq!(opened.stdout, out.stdout);
    dvkg(dir.path(), &["identity", "show", "--passphrase-file", "pw"])
        .assert_code(0)
        .assert_mentions("opened and checked");
    dvkg(
        dir.path(),
        &["identity", "show", "--passphrase-file", "wrong"],
    )
    .assert_code(1)
    .assert_mentions("wrong passphrase")
    .assert_mentions("--passphrase-file");
}

#[test]
fn identity_new_requires_an_address() {
    let dir = tempfile::tempdir().unwrap();
    dvkg(dir.path(), &["identity", "new"])
        .assert_code(1)
        .assert_mentions("missing --address")
        .assert_mentions("hint: pass --address HOST:PORT");
    dvkg(dir.path(), &["identity", "new", "--address", "127.0.0.1:0"])
        .assert_code(1)
        .assert_mentions("--address")
        .assert_mentions("port");
    assert!(!dir.path().join(".dvkg").exists());
}

#[test]
fn definition_new_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut operators = four_operators(dir.path());
    // The last operator's record given inline, as pasted from a message.
    operators[3] = std::fs::read_to_string(dir.path().join(&operators[3])).unwrap();

    let out = definition_new(dir.path(), &operators, &["--name", "test cluster"]);
    out.assert_code(0)
        .assert_mentions("wrote cluster-definition.json: 4 operators, threshold 3");
    let hash = out.stdout.trim().to_owned();
    assert_eq!(hash.len(), 64, "{}", out.stdout);

    let file = dir.path().join("cluster-definition.json");
    let definition: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(definition["version"], 2);
    assert_eq!(definition["threshold"], 3);
    assert_eq!(definition["validators"], 1);
    assert_eq!(definition["network"], "hoodi");
    assert_eq!(definition["withdrawal_type"], "0x01");
    assert_eq!(definition["withdrawal_address"], WITHDRAWAL_CHECKSUMMED);
    assert_eq!(definition["fee_recipient"], Value::Null);
    assert_eq!(
        definition["amounts_gwei"],
        serde_json::json!([32_000_000_000u64])
    );
    assert_eq!(definition["definition_hash"], hash.as_str());
    assert_eq!(definition["operators"][3]["name"], "operator-4");

    let verified = dvkg(
        dir.path(),
        &["definition", "verify", "cluster-definition.json"],
    );
    verified
        .assert_code(0)
        .assert_mentions("cluster-definition.json: ok")
        .assert_mentions("operators:       4 (threshold 3)")
        .assert_mentions("network:         hoodi (fork version 0x10000910)")
        .assert_mentions(&format!("0x01 credentials to {WITHDRAWAL_CHECKSUMMED}"))
        .assert_mentions("32 ETH (32000000000 Gwei)")
        .assert_mentions("operator 1:      operator-1 at 127.0.0.1:9001")
        .assert_mentions("operator 4:      operator-4 at 127.0.0.1:9004")
        .assert_mentions(&format!("definition hash: {hash}"));

    // Never overwritten.
    let before = std::fs::read(&file).unwrap();
    definition_new(dir.path(), &operators, &[])
        .assert_code(1)
        .assert_mentions("already exists")
        .assert_mentions("--out");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // Compounding credentials, partial deposits and gnosis units.
    definition_new(
        dir.path(),
        &operators,
        &[
            "--withdrawal-type",
            "0x02",
            "--amount",
            "1",
            "--amount",
            "2.5",
            "--network",
            "gnosis",
            "--validators",
            "3",
            "--threshold",
            "4",
            "--fee-recipient",
            WITHDRAWAL_CHECKSUMMED,
            "--out",
            "gnosis.json",
        ],
    )
    .assert_code(0);
    dvkg(dir.path(), &["definition", "verify", "gnosis.json"])
        .assert_code(0)
        .assert_mentions("operators:       4 (threshold 4)")
        .assert_mentions("validators:      3")
        .assert_mentions("0x02 credentials")
        .assert_mentions("2 per validator: 1 GNO (32000000000 Gwei), 2.5 GNO (80000000000 Gwei)")
        .assert_mentions(&format!("fee recipient:   {WITHDRAWAL_CHECKSUMMED}"));
}

#[test]
fn definition_new_refusals_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let operators = four_operators(dir.path());
    let twice = vec![
        operators[0].clone(),
        operators[1].clone(),
        operators[2].clone(),
        operators[1].clone(),
    ];
    let bad_checksum = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
    let cases: [(&[String], &[&str], &[&str]); 9] = [
        (
            &twice,
            &[],
            &["operators 2 and 4 have the same identity_key", "--operator"],
        ),
        (
            &operators,
            &["--threshold", "2"],
            &["invalid threshold", "--threshold T with 3 <= T <= 4"],
        ),
        (
            &operators,
            &["--threshold", "5"],
            &["invalid threshold", "--threshold"],
        ),
        (&operators[..2], &[], &["invalid operators", "2 operators"]),
        (
            &operators,
            &["--validators", "0"],
            &["invalid validators", "--validators"],
        ),
        (
            &operators,
            &["--network", "mainet"],
            &["--network", "unknown network \"mainet\""],
        ),
        (
            &operators,
            &["--withdrawal-address", bad_checksum],
            &["--withdrawal-address", "bad EIP-55 checksum"],
        ),
        (
            &operators,
            &["--amount", "0.5"],
            &[
                "invalid amounts_gwei",
                "below the 1 ETH minimum",
                "--amount",
            ],
        ),
        (
            &operators,
            &["--amount", "32", "--amount", "1"],
            &[
                "invalid amounts_gwei",
                "over the 32000000000 Gwei maximum for 0x01",
            ],
        ),
    ];
    for (ops, extra, needles) in cases {
        let out = definition_new(dir.path(), ops, extra);
        out.assert_code(1);
        for needle in needles {
            out.assert_mentions(needle);
        }
        assert!(!out.stderr.contains("panicked"));
        assert!(!dir.path().join("cluster-definition.json").exists());
    }

    std::fs::write(
        dir.path().join("bad.json"),
        "{\"version\":1,\"name\":\"x\"}",
    )
    .unwrap();
    definition_new(dir.path(), &[operators[0].clone(), "bad.json".into()], &[])
        .assert_code(1)
        .assert_mentions("operator 2 (--operator #2, bad.json)")
        .assert_mentions("missing field");
}

#[test]
fn definition_verify_refuses_edited_files() {
    let dir = tempfile::tempdir().unwrap();
    let operators = four_operators(dir.path());
    definition_new(dir.path(), &operators, &[]).assert_code(0);
    let original = std::fs::read_to_string(dir.path().join("cluster-definition.json")).unwrap();

    let check = |name: &str, text: String, needles: &[&str]| {
        std::fs::write(dir.path().join(name), text).unwrap();
        let out = dvkg(dir.path(), &["definition", "verify", name]);
        out.assert_code(1);
        for needle in needles {
            out.assert_mentions(needle);
        }
    };
    check(
        "edited.json",
        original.replace("\"validators\": 1", "\"validators\": 2"),
        &[
            "does not match the contents",
            "the file was edited after it was created; run dvkg definition new again",
        ],
    );
    check(
        "threshold.json",
        original.replace("\"threshold\": 3", "\"threshold\": 2"),
        &["edited after it was created"],
    );
    check(
        "unknown.json",
        original.replace("\"version\": 2,", "\"version\": 2, \"extra\": true,"),
        &["unknown field `extra`"],
    );
    check(
        "version.json",
        original.replace("\"version\": 2,", "\"version\": 1,"),
        &["unsupported cluster definition version 1"],
    );
    check(
        "type.json",
        original.replace("\"threshold\": 3", "\"threshold\": \"3\""),
        &["invalid field `threshold`"],
    );
    dvkg(dir.path(), &["definition", "verify", "missing.json"])
        .assert_code(1)
        .assert_mentions("missing.json");
    // Reformatting alone keeps the hash.
    let value: Value = serde_json::from_str(&original).unwrap();
    std::fs::write(
        dir.path().join("compact.json"),
        serde_json::to_string(&value).unwrap(),
    )
    .unwrap();
    dvkg(dir.path(), &["definition", "verify", "compact.json"]).assert_code(0);
}

/// Issue 17: a sealed identity without `--passphrase-file`, an unreadable
/// directory and a path to a file each get their own error and hint; only
/// a missing identity is told to create one. The loader is the one of
/// `ceremony`, `restore`, `check` and `slashing sync`.
#[test]
fn issue_17_identity_load_failures_get_their_own_hints() {
    let dir = tempfile::tempdir().unwrap();
    let mut operators = four_operators(dir.path());
    std::fs::write(dir.path().join("pw"), "correct horse\n").unwrap();
    dvkg(
        dir.path(),
        &[
            "identity",
            "new",
            "--dir",
            "sealed",
            "--name",
            "sealed",
            "--address",
            "127.0.0.1:9005",
            "--passphrase-file",
            "pw",
        ],
    )
    .assert_code(0);
    operators.pop();
    operators.push("sealed/operator.json".to_owned());
    definition_new(dir.path(), &operators, &["--out", "def.json"]).assert_code(0);
    #[cfg(unix)]
    std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();

    let ceremony = |identity: &str| {
        dvkg(
            dir.path(),
            &[
                "ceremony",
                "--definition",
                "def.json",
                "--identity",
                identity,
                "--out",
                "out",
                "--timeout",
                "1",
            ],
        )
    };
    let create = "create one with `dvkg identity new";
    let hints = |out: &Output| -> Vec<String> {
        out.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("hint: "))
            .map(str::to_owned)
            .collect()
    };

    let missing = ceremony("nothere");
    missing
        .assert_code(1)
        .assert_mentions("no identity in nothere");
    assert!(
        hints(&missing).iter().any(|h| h.contains(create)),
        "{missing:?}"
    );

    let sealed = ceremony("sealed");
    sealed
        .assert_code(1)
        .assert_mentions("is sealed with a passphrase");
    let sealed_hints = hints(&sealed);
    assert!(
        sealed_hints.iter().any(|h| h.contains("--passphrase-file")),
        "{sealed:?}"
    );
    assert!(!sealed.stderr.contains(create), "{sealed:?}");

    let file = ceremony("op1/operator.json");
    file.assert_code(1)
        .assert_mentions("op1/operator.json is a file, not an identity directory");
    assert!(
        hints(&file)
            .iter()
            .any(|h| h.contains("pass --identity op1")),
        "{file:?}"
    );
    assert!(!file.stderr.contains(create), "{file:?}");

    #[cfg(unix)]
    {
        let unreadable = ceremony("loop");
        unreadable
            .assert_code(1)
            .assert_mentions("cannot look into the identity directory loop");
        assert!(
            hints(&unreadable).iter().any(|h| h.contains("may read it")),
            "{unreadable:?}"
        );
        assert!(!unreadable.stderr.contains(create), "{unreadable:?}");
    }
    assert!(!dir.path().join("out").exists());

    // The same loader in `dvkg restore`.
    let restore = dvkg(
        dir.path(),
        &[
            "restore",
            "--from",
            "nothere",
            "--identity",
            "op1/identity.json",
            "--out",
            "keys",
        ],
    );
    restore
        .assert_code(1)
        .assert_mentions("is a file, not an identity directory");
    assert!(
        hints(&restore)
            .iter()
            .any(|h| h.contains("pass --identity op1")),
        "{restore:?}"
    );
}

/// Issue 17: secrets may come from a file, standard input (`-` or
/// `/dev/stdin`), a FIFO or a process substitution, not only from a
/// regular file.
#[test]
fn issue_17_secrets_from_stdin_a_pipe_and_a_fifo() {
    use crate::common::dvkg_with_stdin;
    let dir = tempfile::tempdir().unwrap();

    // Sealed through `-`: the passphrase arrives on a pipe.
    dvkg_with_stdin(
        dir.path(),
        &[
            "identity",
            "new",
            "--dir",
            "op",
            "--name",
            "piped",
            "--address",
            "127.0.0.1:9000",
            "--passphrase-file",
            "-",
        ],
        b"correct horse\n",
    )
    .assert_code(0)
    .assert_mentions("sealed with your passphrase");
    assert!(dir.path().join("op/identity.json.age").exists());

    // Opened through /dev/stdin, and a wrong one on stdin is refused.
    for (path, input, code) in [
        ("/dev/stdin", &b"correct horse\n"[..], 0),
        ("-", &b"correct horse"[..], 0),
        ("-", &b"battery staple\n"[..], 1),
        ("-", &b""[..], 1),
    ] {
        let out = dvkg_with_stdin(
            dir.path(),
            &["identity", "show", "--dir", "op", "--passphrase-file", path],
            input,
        );
        out.assert_code(code);
        if code == 0 {
            out.assert_mentions("opened and checked");
        }
    }

    // A FIFO, written by another process while dvkg reads it.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("pass.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "correct horse\n").unwrap())
        };
        dvkg(
            dir.path(),
            &[
                "identity",
                "show",
                "--dir",
                "op",
                "--passphrase-file",
                "pass.fifo",
            ],
        )
        .assert_code(0)
        .assert_mentions("opened and checked");
        writer.join().unwrap();
    }

    // A keystore password on stdin is checked like one from a file: the
    // error names `-`, so it was read.
    let operators = four_operators(dir.path());
    definition_new(dir.path(), &operators, &["--out", "def.json"]).assert_code(0);
    dvkg_with_stdin(
        dir.path(),
        &[
            "ceremony",
            "--definition",
            "def.json",
            "--identity",
            "op1",
            "--out",
            "out",
            "--password-file",
            "-",
        ],
        b"short\n",
    )
    .assert_code(1)
    .assert_mentions("--password-file - holds a password of 5 character(s)");
    assert!(!dir.path().join("out").exists());

    // A directory is still refused.
    dvkg(
        dir.path(),
        &["identity", "show", "--dir", "op", "--passphrase-file", "op"],
    )
    .assert_code(1)
    .assert_mentions("is not a regular file");
}

/// Issue 17: `-q` silences the status lines of `identity new` and
/// `definition new` (the record and the file are still written).
#[test]
fn issue_17_quiet_silences_status_lines() {
    let dir = tempfile::tempdir().unwrap();
    let warning = |stderr: &str| -> String {
        stderr
            .lines()
            .filter(|line| *line != dvkg::cli::FAULT_BUILD_WARNING)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let loud = dvkg(
        dir.path(),
        &[
            "identity",
            "new",
            "--identity",
            "op1",
            "--name",
            "op1",
            "--address",
            "127.0.0.1:9001",
        ],
    );
    loud.assert_code(0).assert_mentions("created operator");
    let quiet = dvkg(
        dir.path(),
        &[
            "-q",
            "identity",
            "new",
            "--identity",
            "op2",
            "--name",
            "op2",
            "--address",
            "127.0.0.1:9002",
        ],
    );
    quiet.assert_code(0);
    assert_eq!(warning(&quiet.stderr), "", "{quiet:?}");
    assert!(quiet.stdout.contains("identity_key"), "{quiet:?}");
    // --dir still works, as an alias.
    dvkg(
        dir.path(),
        &[
            "-q",
            "identity",
            "new",
            "--dir",
            "op3",
            "--name",
            "op3",
            "--address",
            "127.0.0.1:9003",
        ],
    )
    .assert_code(0);
    let operators: Vec<String> = (1..=3).map(|i| format!("op{i}/operator.json")).collect();
    let loud = definition_new(dir.path(), &operators, &["--out", "a.json"]);
    loud.assert_code(0).assert_mentions("wrote a.json");
    let mut args = vec!["-q", "definition", "new"];
    for op in &operators {
        args.extend(["--operator", op.as_str()]);
    }
    args.extend([
        "--network",
        "hoodi",
        "--withdrawal-address",
        WITHDRAWAL,
        "--out",
        "b.json",
    ]);
    let quiet = dvkg(dir.path(), &args);
    quiet.assert_code(0);
    assert_eq!(warning(&quiet.stderr), "", "{quiet:?}");
    assert!(dir.path().join("b.json").exists());
    // The same default withdrawal type as `dvkg demo`: 0x01.
    let definition: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("b.json")).unwrap()).unwrap();
    assert_eq!(definition["withdrawal_type"], "0x01", "{definition}");
}
