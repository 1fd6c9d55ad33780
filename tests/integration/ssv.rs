//! `dvkg verify --keyshares` on SSV keyshares files the test makes itself
//! (dealer mode with the test operator keys): exit codes, one line per
//! check, `--json`, the own-slot check from a PEM and from SSV's encrypted
//! key file, and tampering refused with the field named.

use std::path::Path;

use base64ct::{Base64, Encoding};
use dvkg::eth::ExecutionAddress;
use dvkg::eth::keystore::Password;
use dvkg::ssv::dealer::{self, DealerSpec};
use dvkg::ssv::{CreatedAt, encrypted_key};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::{Output, dvkg};

const OWNER: &str = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6";
const IDS: [u64; 4] = [11, 27, 103, 404];

/// Writes a two-validator keyshares file (nonces 8 and 9) and operator 27's
/// private key as a PEM and as SSV's encrypted key file.
fn setup(dir: &Path) -> String {
    let owner: ExecutionAddress = OWNER.parse().unwrap();
    let keys = dealer::test_operators(&IDS).unwrap();
    let spec = DealerSpec {
        owner,
        first_nonce: 8,
        created_at: CreatedAt::from_unix(1_735_787_045, 600_000_000),
        operators: keys.iter().map(|(id, k)| (*id, k.public_key())).collect(),
        validators: 2,
    };
    let dealt = dealer::deal(&spec, &mut StdRng::seed_from_u64(5)).unwrap();
    let text = dealt.keyshares.to_json_string().unwrap();
    std::fs::write(dir.join("keyshares.json"), &text).unwrap();
    let pem = keys[1].1.to_pkcs1_pem().unwrap();
    std::fs::write(dir.join("operator-27.pem"), pem.as_bytes()).unwrap();
    let json = encrypted_key::encrypt(
        pem.as_bytes(),
        &Password::new("12345678"),
        64,
        &mut StdRng::seed_from_u64(6),
    )
    .unwrap();
    std::fs::write(dir.join("encrypted_private_key.json"), json).unwrap();
    std::fs::write(dir.join("password"), "12345678\n").unwrap();
    text
}

fn verify(dir: &Path, file: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        "--keyshares",
        file,
        "--ssv-owner",
        OWNER,
        "--ssv-nonce",
        "8",
    ];
    args.extend_from_slice(extra);
    dvkg(dir, &args)
}

fn tampered(dir: &Path, text: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    change(&mut value);
    std::fs::write(dir.join("tampered.json"), value.to_string()).unwrap();
    "tampered.json".into()
}

#[test]
fn a_generated_keyshares_file_passes_with_one_line_per_check() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = verify(dir.path(), "keyshares.json", &[]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("ok  ") || l.contains(" checks: "))
    );
    assert!(out.stdout.contains("ok    shares[1]: ownership signature: the validator key signed keccak256(\"0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6:9\")"));
    assert!(
        out.stdout
            .contains("ok    nonce sequence: ownerNonce 8 to 9, one per entry in order")
    );
    assert!(
        out.stdout.ends_with("26 checks: 26 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn json_report_lists_every_check() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = verify(dir.path(), "keyshares.json", &["--json"]);
    out.assert_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["version"], 1);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 26);
    assert!(
        checks
            .iter()
            .all(|c| c["ok"] == true && c["check"].is_string() && c["detail"].is_string())
    );
}

#[test]
fn an_operator_checks_its_own_slot_from_a_pem_or_the_encrypted_key() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = verify(
        dir.path(),
        "keyshares.json",
        &["--ssv-operator-private-key", "operator-27.pem"],
    );
    out.assert_code(0);
    assert_eq!(
        out.stdout
            .matches("own slot decrypts to its share: operator 27's slot decrypts")
            .count(),
        2
    );
    let out = verify(
        dir.path(),
        "keyshares.json",
        &[
            "--ssv-operator-private-key",
            "encrypted_private_key.json",
            "--password-file",
            "password",
        ],
    );
    out.assert_code(0);
    assert_eq!(out.stdout.matches("operator 27's slot decrypts").count(), 2);
}

#[test]
fn a_missing_or_wrong_password_is_a_user_error() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    verify(
        dir.path(),
        "keyshares.json",
        &["--ssv-operator-private-key", "encrypted_private_key.json"],
    )
    .assert_code(1)
    .assert_mentions("hint: pass its password file with --password-file");
    std::fs::write(dir.path().join("wrong"), "87654321").unwrap();
    verify(
        dir.path(),
        "keyshares.json",
        &[
            "--ssv-operator-private-key",
            "encrypted_private_key.json",
            "--password-file",
            "wrong",
        ],
    )
    .assert_code(1)
    .assert_mentions("wrong password");
}

#[test]
fn tampering_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = setup(dir.path());
    // A signature bit.
    let file = tampered(dir.path(), &text, |v| {
        let field = &mut v["shares"][1]["payload"]["sharesData"];
        let mut bytes = hex::decode(&field.as_str().unwrap()[2..]).unwrap();
        bytes[7] ^= 0x80;
        *field = format!("0x{}", hex::encode(bytes)).into();
    });
    verify(dir.path(), &file, &[])
        .assert_code(5)
        .assert_mentions("FAIL  shares[1]: ownership signature: shares[1].payload.sharesData");
    // Two swapped ciphertexts: only their operators can tell.
    let file = tampered(dir.path(), &text, |v| {
        let field = &mut v["shares"][0]["payload"]["sharesData"];
        let mut bytes = hex::decode(&field.as_str().unwrap()[2..]).unwrap();
        let at = |i: usize| 96 + 48 * 4 + 256 * i;
        let first = bytes[at(0)..at(1)].to_vec();
        bytes.copy_within(at(1)..at(2), at(0));
        bytes[at(1)..at(2)].copy_from_slice(&first);
        *field = format!("0x{}", hex::encode(bytes)).into();
    });
    verify(dir.path(), &file, &["--ssv-operator-private-key", "operator-27.pem"])
        .assert_code(5)
        .assert_mentions("FAIL  shares[0]: own slot decrypts to its share: shares[0].payload.sharesData: operator 27's slot");
    // A wrong nonce.
    let file = tampered(dir.path(), &text, |v| {
        v["shares"][1]["data"]["ownerNonce"] = 10.into()
    });
    verify(dir.path(), &file, &[])
        .assert_code(5)
        .assert_mentions("FAIL  nonce sequence: shares[1].data.ownerNonce is 10, expected 9");
    // An unsorted id.
    let file = tampered(dir.path(), &text, |v| {
        v["shares"][0]["payload"]["operatorIds"] = serde_json::json!([11, 103, 27, 404]);
    });
    verify(dir.path(), &file, &[])
        .assert_code(5)
        .assert_mentions("shares[0].payload.operatorIds[2] is 27 after 103");
    // A share public key that is not the operator's share.
    let file = tampered(dir.path(), &text, |v| {
        let field = &mut v["shares"][0]["payload"]["sharesData"];
        let mut bytes = hex::decode(&field.as_str().unwrap()[2..]).unwrap();
        bytes.copy_within(96..144, 96 + 48 * 3);
        *field = format!("0x{}", hex::encode(bytes)).into();
    });
    verify(dir.path(), &file, &[])
        .assert_code(5)
        .assert_mentions(
            "the share public key of operator 404 is not a share of the validator key",
        );
    // A 1024-bit operator key.
    let weak = Base64::encode_string(dealer::TEST_RSA_1024_PUBLIC_KEY.as_bytes());
    let file = tampered(dir.path(), &text, |v| {
        v["shares"][0]["data"]["operators"][0]["operatorKey"] = weak.into()
    });
    verify(dir.path(), &file, &[])
        .assert_code(5)
        .assert_mentions(
            "(operator 11): the key is RSA-1024, but SSV operator keys must be RSA-2048",
        );
    // Another owner.
    dvkg(
        dir.path(),
        &["verify", "--keyshares", "keyshares.json", "--ssv-owner", "0x5cC0DdE14E7256340CC820415a6022a7d1c93A35", "--ssv-nonce", "8"],
    )
    .assert_code(5)
    .assert_mentions("shares[0].data.ownerAddress is 0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6, but the owner is 0x5cC0DdE14E7256340CC820415a6022a7d1c93A35");
}

#[test]
fn unreadable_inputs_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    verify(dir.path(), "absent.json", &[])
        .assert_code(1)
        .assert_mentions("hint: check the path given to --keyshares");
    std::fs::write(dir.path().join("garbage.json"), "not json").unwrap();
    verify(dir.path(), "garbage.json", &[])
        .assert_code(1)
        .assert_mentions("is not JSON");
    verify(
        dir.path(),
        "keyshares.json",
        &["--ssv-operator-private-key", "absent.pem"],
    )
    .assert_code(1)
    .assert_mentions("--ssv-operator-private-key");
    verify(
        dir.path(),
        "keyshares.json",
        &["--ssv-operator-private-key", "password"],
    )
    .assert_code(1)
    .assert_mentions("cannot use password as an SSV operator private key");
    dvkg(
        dir.path(),
        &[
            "verify",
            "--keyshares",
            "keyshares.json",
            "--ssv-owner",
            "0x1234",
            "--ssv-nonce",
            "8",
        ],
    )
    .assert_code(1)
    .assert_mentions("invalid value for --ssv-owner");
    dvkg(
        dir.path(),
        &[
            "verify",
            "--keyshares",
            "keyshares.json",
            "--ssv-nonce",
            "8",
        ],
    )
    .assert_code(2);
    dvkg(
        dir.path(),
        &[
            "verify",
            "--keyshares",
            "keyshares.json",
            "--ssv-owner",
            OWNER,
            "--ssv-nonce",
            "-1",
        ],
    )
    .assert_code(2);
}
