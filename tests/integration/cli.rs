//! The `dvkg` binary as a user runs it: exit codes, messages that name what
//! is wrong, and `dvkg verify --deposit-data` on good and broken files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{dvkg, load_vector};

/// Writes each published entry to its own deposit file (entries for one
/// pubkey with different credentials must not share a file).
fn published_files(dir: &Path) -> Vec<PathBuf> {
    let vector = load_vector("deposit.json");
    vector["entries"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = dir.join(format!("deposit_data-{i}.json"));
            std::fs::write(&path, serde_json::to_string(&vec![entry]).unwrap()).unwrap();
            path
        })
        .collect()
}

/// The first published entry (mainnet, 0x02) after `edit`, in its own file.
fn edited_file(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let vector = load_vector("deposit.json");
    let mut entry = vector["entries"][0].clone();
    edit(entry.as_object_mut().unwrap());
    let path = dir.join("edited.json");
    std::fs::write(&path, serde_json::to_string(&vec![entry]).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn flip_hex_char(text: &str, at: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[at] = if chars[at] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

#[test]
fn verify_passes_the_published_entries() {
    let dir = tempfile::tempdir().unwrap();
    let files = published_files(dir.path());
    let mut args = vec!["verify"];
    for f in &files {
        args.push("--deposit-data");
        args.push(f.to_str().unwrap());
    }
    let out = dvkg(dir.path(), &args);
    out.assert_code(0)
        .assert_mentions("4 deposits checked: 4 passed, 0 failed");
    assert_eq!(
        out.stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        4
    );

    let mut json_args = args.clone();
    json_args.push("--json");
    let out = dvkg(dir.path(), &json_args);
    out.assert_code(0);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    // The report of every verify mode (formats.md §11.2): one check per
    // file, one entry per deposit.
    assert_eq!(report["version"], 3);
    let deposits = report["deposits"].as_array().unwrap();
    assert_eq!(deposits.len(), 4);
    assert!(deposits.iter().all(|d| d["ok"] == true));
    assert_eq!(report["checks"].as_array().unwrap().len(), files.len());

    // The right address passes; 0x00 credentials cannot match an address.
    let good = files[0].to_str().unwrap();
    dvkg(
        dir.path(),
        &[
            "verify",
            "--deposit-data",
            good,
            "--withdrawal-address",
            "0x0F51BB10119727A7E5EA3538074FB341F56B09AD",
            "--network",
            "mainnet",
        ],
    )
    .assert_code(0);
    dvkg(
        dir.path(),
        &[
            "verify",
            "--deposit-data",
            files[2].to_str().unwrap(),
            "--withdrawal-address",
            "0x0f51bb10119727a7e5ea3538074fb341f56b09ad",
        ],
    )
    .assert_code(5)
    .assert_mentions("withdrawal_credentials: are 0x00 (BLS) credentials");
}

#[test]
fn verify_names_a_flipped_signature_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_file(dir.path(), |e| {
        let sig = e["signature"].as_str().unwrap().to_owned();
        e["signature"] = Value::String(flip_hex_char(&sig, 100));
    });
    let out = dvkg(dir.path(), &["verify", "--deposit-data", &file]);
    out.assert_code(5)
        .assert_mentions("FAIL")
        .assert_mentions("signature: ");
    out.assert_mentions("1 deposit checked: 0 passed, 1 failed");
}

#[test]
fn verify_names_a_wrong_root() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_file(dir.path(), |e| {
        let root = e["deposit_data_root"].as_str().unwrap().to_owned();
        e["deposit_data_root"] = Value::String(flip_hex_char(&root, 0));
    });
    let out = dvkg(dir.path(), &["verify", "--deposit-data", &file, "--json"]);
    out.assert_code(5);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let problems = report["deposits"][0]["problems"].as_array().unwrap();
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["deposit_data_root"]);

    let file = edited_file(dir.path(), |e| {
        let root = e["deposit_message_root"].as_str().unwrap().to_owned();
        e["deposit_message_root"] = Value::String(flip_hex_char(&root, 10));
    });
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("deposit_message_root: is ");
}

#[test]
fn verify_names_a_fork_version_that_does_not_match_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_file(dir.path(), |e| {
        e["fork_version"] = Value::String("10000910".into())
    });
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("fork_version: 10000910 does not match network mainnet");
    // The published mainnet entry checked against another network.
    let files = published_files(dir.path());
    dvkg(
        dir.path(),
        &[
            "verify",
            "--deposit-data",
            files[0].to_str().unwrap(),
            "--network",
            "hoodi",
        ],
    )
    .assert_code(5)
    .assert_mentions("network_name: is \"mainnet\", expected \"hoodi\"")
    .assert_mentions("fork_version: 00000000 does not match network hoodi");
}

#[test]
fn verify_names_an_amount_under_one_eth() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_file(dir.path(), |e| e["amount"] = Value::from(999_999_999u64));
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("amount: deposit of 999999999 Gwei is below the 1 ETH minimum");
    let file = edited_file(dir.path(), |e| {
        e["amount"] = Value::String("32000000000".into())
    });
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("amount: expected a JSON number of Gwei, found a string");
}

#[test]
fn verify_names_malformed_hex() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_file(dir.path(), |e| {
        let pubkey = e["pubkey"].as_str().unwrap().replacen('8', "z", 1);
        e["pubkey"] = Value::String(pubkey);
    });
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("pubkey: invalid hex character 'z' at position 0");
    let file = edited_file(dir.path(), |e| {
        let sig = format!("0x{}", e["signature"].as_str().unwrap());
        e["signature"] = Value::String(sig);
    });
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("signature: must be bare hex without a 0x prefix");
    let file = edited_file(dir.path(), |e| {
        let creds = e["withdrawal_credentials"].as_str().unwrap()[1..].to_owned();
        e["withdrawal_credentials"] = Value::String(creds);
    });
    dvkg(dir.path(), &["verify", "--deposit-data", &file])
        .assert_code(5)
        .assert_mentions("withdrawal_credentials: expected 64 hex characters, got 63");
}

#[test]
fn unreadable_deposit_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    dvkg(dir.path(), &["verify", "--deposit-data", "missing.json"])
        .assert_code(1)
        .assert_mentions("error: failed to read deposit data file missing.json")
        .assert_mentions("hint: check the path given to --deposit-data");
    std::fs::write(dir.path().join("text.json"), "this is not json").unwrap();
    dvkg(dir.path(), &["verify", "--deposit-data", "text.json"])
        .assert_code(1)
        .assert_mentions("error: text.json is not a deposit data file")
        .assert_mentions("caused by: not valid JSON");
    std::fs::write(dir.path().join("object.json"), "{\"pubkey\": \"00\"}").unwrap();
    dvkg(dir.path(), &["verify", "--deposit-data", "object.json"])
        .assert_code(1)
        .assert_mentions("expected a JSON list of deposits, found an object");
    std::fs::write(dir.path().join("empty.json"), "").unwrap();
    dvkg(dir.path(), &["verify", "--deposit-data", "empty.json"]).assert_code(1);
    dvkg(dir.path(), &["verify", "--deposit-data", "."])
        .assert_code(1)
        .assert_mentions("is not a regular file");
    let out = dvkg(dir.path(), &["verify", "--deposit-data", "text.json"]);
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn bad_flag_values_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let files = published_files(dir.path());
    let file = files[0].to_str().unwrap();
    dvkg(
        dir.path(),
        &[
            "verify",
            "--deposit-data",
            file,
            "--withdrawal-address",
            "0x0F51bb10119727a7e5ea3538074fb341f56b09ad",
        ],
    )
    .assert_code(1)
    .assert_mentions("invalid value for --withdrawal-address")
    .assert_mentions("bad EIP-55 checksum");
    dvkg(
        dir.path(),
        &["verify", "--deposit-data", file, "--network", "mainet"],
    )
    .assert_code(1)
    .assert_mentions("invalid value for --network: \"mainet\"");
    dvkg(dir.path(), &["verify"])
        .assert_code(1)
        .assert_mentions("nothing to verify");
}

#[test]
fn usage_errors_exit_2_and_help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    dvkg(dir.path(), &["frobnicate"]).assert_code(2);
    dvkg(dir.path(), &["verify", "--no-such-flag"]).assert_code(2);
    let help = dvkg(dir.path(), &["--help"]);
    help.assert_code(0);
    for command in [
        "identity",
        "definition",
        "ceremony",
        "ping",
        "verify",
        "demo",
    ] {
        assert!(
            help.stdout.contains(command),
            "--help lacks {command}:\n{}",
            help.stdout
        );
    }
    help.assert_mentions("Exit codes: 0 success");
}
