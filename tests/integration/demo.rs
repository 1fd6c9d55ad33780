//! `dvkg demo`, the README's first command, and `dvkg verify DIR` on its
//! outputs: what passes, what a changed byte breaks, and what never leaks.

use std::path::Path;

use serde_json::Value;

use crate::common::dvkg;

fn demo(dir: &Path, out: &str, extra: &[&str]) -> crate::common::Output {
    let mut args = vec!["-vvv", "demo", "--validators", "2", "--out", out];
    args.extend_from_slice(extra);
    dvkg(dir, &args)
}

#[test]
fn demo_runs_verifies_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), "demo", &[]);
    out.assert_code(0)
        .assert_mentions("ceremony complete")
        .assert_mentions("all passed");
    for i in 1..=4 {
        assert!(
            dir.path()
                .join(format!("demo/operator-{i}/cluster-lock.json"))
                .exists()
        );
    }

    // The JSON report of `dvkg verify DIR`.
    let report = dvkg(dir.path(), &["verify", "demo/operator-3", "--json"]);
    report.assert_code(0);
    let json: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert!(json["checks"].as_array().unwrap().len() >= 10);

    // `dvkg transcript show` recomputes the hash the lock and every
    // finalize carry; its JSON view verifies as the binary file does.
    let lock: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo/operator-2/cluster-lock.json")).unwrap(),
    )
    .unwrap();
    let hash = lock["transcript_hash"].as_str().unwrap();
    let shown = dvkg(dir.path(), &["transcript", "show", "demo/operator-2"]);
    shown
        .assert_code(0)
        .assert_mentions(&format!("transcript hash  {hash}"))
        .assert_mentions("4 participants, threshold 3, 2 validators");
    assert_eq!(
        shown.stdout.matches("signs this transcript's hash").count(),
        4,
        "{}",
        shown.stdout
    );
    let view = dvkg(
        dir.path(),
        &["transcript", "show", "demo/operator-2", "--json"],
    );
    view.assert_code(0);
    std::fs::write(dir.path().join("view.json"), &view.stdout).unwrap();
    dvkg(dir.path(), &["verify", "--transcript", "view.json"])
        .assert_code(0)
        .assert_mentions("ok    transcript: verifies against the protocol");
    dvkg(
        dir.path(),
        &["verify", "--transcript", "demo/operator-2/transcript.bin"],
    )
    .assert_code(0)
    .assert_mentions("ok    transcript: verifies against the protocol");

    // The generated keystore password and the identity secrets never appear
    // in the logs (at trace level), the outputs' public files or stdout.
    let password = std::fs::read_to_string(
        dir.path()
            .join("demo/operator-1/validator_keys/password.txt"),
    )
    .unwrap();
    let password = password.trim();
    assert_eq!(password.len(), 32);
    let public: Vec<String> = ["cluster-lock.json", "transcript.bin"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(dir.path().join("demo/operator-1").join(f)).unwrap();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect();
    for text in [&out.stdout, &out.stderr, &public[0], &public[1]] {
        assert!(!text.contains(password), "the keystore password leaked");
        assert!(!text.contains("AGE-SECRET-KEY"), "an age identity leaked");
    }
    let mode = std::fs::metadata(
        dir.path()
            .join("demo/operator-1/validator_keys/password.txt"),
    )
    .unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Running it again into the same directory is refused, not overwritten.
    demo(dir.path(), "demo", &[])
        .assert_code(1)
        .assert_mentions("already exists");
}

#[test]
fn verify_names_what_a_changed_output_breaks() {
    let dir = tempfile::tempdir().unwrap();
    dvkg(dir.path(), &["demo", "--validators", "1", "--out", "demo"]).assert_code(0);
    let copy = |name: &str| {
        let target = dir.path().join(name);
        std::fs::create_dir(&target).unwrap();
        for entry in std::fs::read_dir(dir.path().join("demo/operator-1")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
            }
        }
        target
    };

    // A different group key in the lock: its hash and its derivation fail.
    let lock_dir = copy("lock");
    let lock_path = lock_dir.join("cluster-lock.json");
    let mut lock: Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    let key = lock["validators"][0]["public_shares"][1].clone();
    lock["validators"][0]["public_shares"][0] = key;
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    dvkg(dir.path(), &["verify", "lock"])
        .assert_code(5)
        .assert_mentions("FAIL  lock: lock hash")
        .assert_mentions(
            "FAIL  lock: validators, public shares and deposit data derive from the transcript",
        );

    // A changed partial signature in the transcript: its signature fails.
    // Edited in the JSON view, which verify DIR reads when there is no
    // transcript.bin (an earlier dvkg's directory).
    let transcript_dir = copy("transcript");
    let binary = transcript_dir.join("transcript.bin");
    let mut transcript: Value =
        serde_json::to_value(::dvkg::ceremony::transcript_file::read(&binary).unwrap()).unwrap();
    std::fs::remove_file(&binary).unwrap();
    let path = transcript_dir.join("transcript.json");
    let sig = transcript["partials"][1]["body"]["signatures"][0][0]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = format!(
        "{}{}",
        &sig[..10],
        if &sig[10..11] == "0" { "1" } else { "0" }
    ) + &sig[11..];
    transcript["partials"][1]["body"]["signatures"][0][0] = Value::String(flipped);
    std::fs::write(&path, serde_json::to_string(&transcript).unwrap()).unwrap();
    dvkg(dir.path(), &["verify", "transcript"])
        .assert_code(5)
        .assert_mentions("FAIL  transcript: verifies against the protocol: operator 2 sent a round-3 partial signatures message with an invalid signature");

    // A deposit file of another ceremony next to the lock.
    let deposit_dir = copy("deposit");
    let other = std::fs::read_dir(&deposit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("deposit_data-")
        })
        .unwrap();
    let published = crate::common::load_vector("deposit.json");
    std::fs::write(
        &other,
        serde_json::to_string(&vec![&published["entries"][0]]).unwrap(),
    )
    .unwrap();
    dvkg(dir.path(), &["verify", "deposit"])
        .assert_code(5)
        // The entry, its key and the field (issue 17).
        .assert_mentions("entry 0 pubkey 88b6b3a9")
        .assert_mentions("pubkey: is not a validator of the lock")
        .assert_mentions("deposits of the lock are in no deposit data file");
}

#[test]
fn demo_with_a_faulty_operator_names_it_and_writes_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(
        dir.path(),
        "faulty",
        &["--fault", "3=bad-proof", "--round-timeout", "20"],
    );
    out.assert_code(3)
        .assert_mentions(
            "operator 3 (demo-operator-3) sent an invalid proof of knowledge for validator 0",
        )
        .assert_mentions("operator 3 (the faulty one)")
        .assert_mentions("operator 3 (demo-operator-3, 127.0.0.1:")
        .assert_mentions("is at fault");
    for i in 1..=4 {
        let operator = dir.path().join(format!("faulty/operator-{i}"));
        assert!(!operator.exists(), "{} exists", operator.display());
    }
    // The abort reports prove the fault to anyone holding the definition.
    let mut reports: Vec<String> = std::fs::read_dir(dir.path().join("faulty"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.contains("abort-report"))
        .collect();
    reports.sort();
    assert_eq!(reports.len(), 4, "{reports:?}");
    let mut args = vec!["verify", "--definition", "faulty/cluster-definition.json"];
    for report in &reports {
        args.extend(["--abort-report", report.as_str()]);
    }
    dvkg(dir.path(), &args)
        .assert_code(0)
        .assert_mentions("4 checks: 4 passed");
}

#[test]
fn demo_fault_flag_values_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "a", &["--fault", "2=nonsense"])
        .assert_code(2)
        .assert_mentions("unknown fault \"nonsense\"");
    demo(dir.path(), "b", &["--fault", "2=bad-share@3"])
        .assert_code(2)
        .assert_mentions("fault bad-share happens in round 1");
    demo(dir.path(), "c", &["--fault", "9=garbage"])
        .assert_code(1)
        .assert_mentions("operator 9 is not one of the 4 operators");
    assert!(!dir.path().join("a").exists() && !dir.path().join("c").exists());
}

#[test]
fn ssv_demo_writes_keyshares_and_each_operators_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), "ssv", &["--ssv"]);
    out.assert_code(0)
        .assert_mentions("generating 4 demo SSV operator keys")
        .assert_mentions("its slot of every validator decrypts to its share")
        .assert_mentions("register")
        .assert_mentions("--ssv-operator-private-key");
    let first = std::fs::read(dir.path().join("ssv/operator-1/keyshares.json")).unwrap();
    for i in 1..=4 {
        let op = dir.path().join(format!("ssv/operator-{i}"));
        assert_eq!(std::fs::read(op.join("keyshares.json")).unwrap(), first);
        let mode = std::fs::metadata(op.join("ssv-operator-key.pem")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }
    let keyshares: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(keyshares["shares"].as_array().unwrap().len(), 2);
    // The owner defaults to the withdrawal address, the nonce to 0.
    assert_eq!(keyshares["shares"][1]["data"]["ownerNonce"], 1);
    dvkg(dir.path(), &["verify", "ssv/operator-2"])
        .assert_code(0)
        .assert_mentions("keyshares.json: built from the lock and transcript");

    // SSV's cluster sizes only, checked before anything is made.
    demo(dir.path(), "five", &["--ssv", "--operators", "5"])
        .assert_code(1)
        .assert_mentions("4, 7, 10 or 13 operators");
    assert!(!dir.path().join("five").exists());
}

#[test]
fn split_demo_deals_the_given_keystores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = crate::split::keystores(&dir.path().join("keys"), 2, 41);
    std::fs::write(dir.path().join("password"), "split test password").unwrap();
    let out = dvkg(
        dir.path(),
        &[
            "demo",
            "--split-keystores",
            "keys",
            "--keystore-password-file",
            "password",
            "--out",
            "split",
        ],
    );
    out.assert_code(0)
        .assert_mentions("split")
        .assert_mentions("still can sign, alone");
    let lock: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("split/dealer/cluster-lock.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(lock["kind"], "split");
    for (v, secret) in secrets.iter().enumerate() {
        let key = dvkg::crypto::G1Point::mul_generator(secret).to_bytes();
        assert_eq!(
            lock["validators"][v]["pubkey"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            hex::encode(key),
            "validator {v}"
        );
    }
    // The dealer's directory holds no secret file; every directory verifies.
    let mut dealer: Vec<_> = std::fs::read_dir(dir.path().join("split/dealer"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dealer.sort();
    assert_eq!(
        dealer,
        ["cluster-lock.json", "confirmation.json", "transcript.bin"]
    );
    for sub in ["dealer", "operator-1", "operator-4"] {
        dvkg(dir.path(), &["verify", &format!("split/{sub}")])
            .assert_code(0)
            .assert_mentions("split: the keys dealt are the definition's validator keys");
    }
    // A wrong password is refused before anything is made.
    std::fs::write(dir.path().join("wrong"), "not the password").unwrap();
    dvkg(
        dir.path(),
        &[
            "demo",
            "--split-keystores",
            "keys",
            "--keystore-password-file",
            "wrong",
            "--out",
            "bad",
        ],
    )
    .assert_code(1)
    .assert_mentions("--split-keystores");
    assert!(!dir.path().join("bad").exists());
}

#[test]
fn reshare_demo_keeps_the_keys_and_verifies_both_ceremonies() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(
        dir.path(),
        "r",
        &["--reshare-to", "5", "--reshare-threshold", "4"],
    );
    out.assert_code(0)
        .assert_mentions("keep their keys (checked)")
        .assert_mentions("can still sign");
    let dkg: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("r/dkg/operator-1/cluster-lock.json")).unwrap(),
    )
    .unwrap();
    let reshare: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("r/reshare/operator-5/cluster-lock.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(reshare["kind"], "reshare");
    assert_eq!(reshare["previous_lock_hash"], dkg["lock_hash"]);
    assert_eq!(reshare["definition"]["threshold"], 4);
    for v in 0..2 {
        assert_eq!(
            reshare["validators"][v]["pubkey"],
            dkg["validators"][v]["pubkey"]
        );
    }
    dvkg(dir.path(), &["verify", "r/reshare/operator-2"])
        .assert_code(0)
        .assert_mentions("reshare: the validator keys are unchanged");
}

#[test]
fn ssv_reshare_demo_writes_new_keyshares_at_the_next_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), "s", &["--ssv", "--reshare-to", "7"]);
    out.assert_code(0)
        .assert_mentions("keep their keys (checked)");
    let keyshares: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("s/reshare/operator-7/keyshares.json")).unwrap(),
    )
    .unwrap();
    // Two validators registered at nonces 0 and 1 by the DKG: the reshare's
    // file registers them again from nonce 2, with the 7 new operators.
    assert_eq!(keyshares["shares"][0]["data"]["ownerNonce"], 2);
    assert_eq!(
        keyshares["shares"][0]["data"]["operators"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    dvkg(dir.path(), &["verify", "s/reshare/operator-3"])
        .assert_code(0)
        .assert_mentions("keyshares.json: built from the lock and transcript");
}
