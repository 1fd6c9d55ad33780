//! Tests of the keystore reader and writer: the EIP-2335 vectors, round
//! trips, refusals and the KDF bounds.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

const PATH: &str = "m/12381/3600/0/0/0";

/// An edit of a keystore's JSON.
type Edit = fn(&mut serde_json::Value);

fn cheap_scrypt() -> KdfParams {
    KdfParams::scrypt(16, 8, 1).unwrap()
}

fn key_pair(byte: u8) -> (SecretBytes<32>, PublicKey) {
    let mut raw = [0u8; 32];
    raw[31] = byte;
    let secret = SecretBytes::new(&mut raw);
    let pubkey = SecretKey::from_bytes(&secret).unwrap().public_key();
    (secret, pubkey)
}

fn meta(pubkey: &PublicKey) -> KeystoreMeta<'_> {
    KeystoreMeta {
        pubkey,
        path: PATH,
        description: "",
    }
}

fn sample(params: KdfParams) -> (Keystore, Password, SecretBytes<32>) {
    let mut rng = StdRng::seed_from_u64(1);
    let password = Password::new("correct horse");
    let (secret, pubkey) = key_pair(7);
    let enc = KeystoreEncryptor::new(&password, params, SaltMode::Shared, &mut rng).unwrap();
    let ks = enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap();
    (ks, password, secret)
}

/// Edits the JSON of `ks` and parses it again.
fn reparse(
    ks: &Keystore,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<Keystore, KeystoreError> {
    let mut value: serde_json::Value = serde_json::from_str(&ks.to_json_string().unwrap()).unwrap();
    edit(&mut value);
    Keystore::from_json_str(&value.to_string())
}

#[test]
fn password_normalisation() {
    let vector = Password::new("𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑");
    assert_eq!(
        hex::encode(vector.expose_secret()),
        "7465737470617373776f7264f09f9491"
    );
    assert_eq!(Password::new("pass\n").expose_secret(), b"pass");
    assert_eq!(Password::new("pa\u{85}ss").expose_secret(), b"pass");
    assert_eq!(
        Password::new("a b\u{7f}\u{0}\u{9f}").expose_secret(),
        b"a b"
    );
    assert_eq!(format!("{vector:?}"), "Password(<redacted>)");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn normalised_passwords_have_no_control_codes(s in any::<String>()) {
        let pw = Password::new(&s);
        let text = std::str::from_utf8(pw.expose_secret()).unwrap();
        prop_assert!(!text.chars().any(is_control));
    }
}

#[test]
fn round_trip_with_cheap_params() {
    for params in [cheap_scrypt(), KdfParams::pbkdf2(16).unwrap()] {
        let (ks, password, secret) = sample(params);
        let reread = Keystore::from_json_str(&ks.to_json_string().unwrap()).unwrap();
        assert_eq!(reread, ks);
        assert_eq!(reread.kdf().params().kind(), params.kind());
        assert_eq!(decrypt(&reread, &password).unwrap(), secret);
    }
}

#[test]
fn wrong_password_and_tampering_fail_the_checksum() {
    let (ks, password, _) = sample(cheap_scrypt());
    let err = decrypt(&ks, &Password::new("wrong")).unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassword));
    assert_eq!(
        err.to_string(),
        "wrong password: the keystore checksum does not match"
    );

    let mut tampered = ks.clone();
    tampered.ciphertext[0] ^= 1;
    assert!(matches!(
        decrypt(&tampered, &password),
        Err(KeystoreError::WrongPassword)
    ));
    let mut tampered = ks.clone();
    tampered.checksum[31] ^= 1;
    assert!(matches!(
        decrypt(&tampered, &password),
        Err(KeystoreError::WrongPassword)
    ));
}

#[test]
fn pubkey_field_is_checked_after_decryption() {
    let (ks, password, _) = sample(cheap_scrypt());
    let (_, other) = key_pair(8);
    let swapped = reparse(&ks, |v| v["pubkey"] = other.to_hex().into()).unwrap();
    assert!(matches!(
        decrypt(&swapped, &password),
        Err(KeystoreError::PubkeyMismatch { .. })
    ));
}

#[test]
fn shared_salt_is_one_salt_with_distinct_ivs_and_uuids() {
    let mut rng = StdRng::seed_from_u64(2);
    let password = Password::new("pw");
    let enc =
        KeystoreEncryptor::new(&password, cheap_scrypt(), SaltMode::Shared, &mut rng).unwrap();
    let keystores: Vec<_> = (1..=5u8)
        .map(|i| {
            let (secret, pubkey) = key_pair(i);
            enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap()
        })
        .collect();
    let shared = enc.shared_kdf().unwrap();
    assert!(keystores.iter().all(|k| k.kdf() == shared));
    assert_eq!(shared.salt().len(), SALT_BYTES);
    let ivs: std::collections::HashSet<_> = keystores.iter().map(|k| *k.iv()).collect();
    let uuids: std::collections::HashSet<_> = keystores.iter().map(|k| k.uuid()).collect();
    assert_eq!((ivs.len(), uuids.len()), (5, 5));
    assert!(keystores.iter().all(|k| k.uuid().get_version_num() == 4));

    let mut dec = KeystoreDecryptor::new();
    for k in &keystores {
        dec.decrypt(k, &password).unwrap();
    }
    assert_eq!(dec.kdf_runs(), 1);
    assert!(matches!(
        dec.decrypt(&keystores[0], &Password::new("no")),
        Err(KeystoreError::WrongPassword)
    ));
    assert_eq!(dec.kdf_runs(), 2);
    assert!(!format!("{enc:?} {dec:?}").contains("salt: ["));
}

#[test]
fn per_keystore_salts_are_distinct() {
    let mut rng = StdRng::seed_from_u64(3);
    let password = Password::new("pw");
    let enc =
        KeystoreEncryptor::new(&password, cheap_scrypt(), SaltMode::PerKeystore, &mut rng).unwrap();
    assert!(enc.shared_kdf().is_none());
    let keystores: Vec<_> = (1..=3u8)
        .map(|i| {
            let (secret, pubkey) = key_pair(i);
            enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap()
        })
        .collect();
    let salts: std::collections::HashSet<_> =
        keystores.iter().map(|k| k.kdf().salt().to_vec()).collect();
    assert_eq!(salts.len(), 3);
    let mut dec = KeystoreDecryptor::new();
    for k in &keystores {
        dec.decrypt(k, &password).unwrap();
    }
    assert_eq!(dec.kdf_runs(), 3);
}

#[test]
fn unknown_fields_are_rejected() {
    let (ks, _, _) = sample(cheap_scrypt());
    for edit in [
        (|v: &mut serde_json::Value| v["name"] = "x".into()) as Edit,
        |v| v["crypto"]["kdf"]["params"]["extra"] = 1.into(),
        |v| v["crypto"]["checksum"]["params"]["x"] = 1.into(),
        |v| v["crypto"]["cipher"]["params"]["x"] = 1.into(),
    ] {
        assert!(matches!(
            reparse(&ks, edit),
            Err(KeystoreError::Json { .. })
        ));
    }
}

#[test]
fn other_versions_and_functions_are_rejected() {
    let (ks, _, _) = sample(cheap_scrypt());
    let err = reparse(&ks, |v| v["version"] = 3.into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::UnsupportedVersion { version: 3 }
    ));
    // An Ethereum 1 (version 3) keystore has another shape altogether.
    let v3 = r#"{"crypto":{"cipher":"aes-128-ctr","kdf":"scrypt"},"id":"x","version":3}"#;
    assert!(matches!(
        Keystore::from_json_str(v3),
        Err(KeystoreError::UnsupportedVersion { version: 3 })
    ));

    let err = reparse(&ks, |v| {
        v["crypto"]["cipher"]["function"] = "aes-256-ctr".into()
    })
    .unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::UnsupportedFunction {
            module: "cipher",
            ..
        }
    ));
    let err = reparse(&ks, |v| v["crypto"]["checksum"]["function"] = "sha3".into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::UnsupportedFunction {
            module: "checksum",
            ..
        }
    ));
    let err = reparse(
        &ks,
        |v| {
            v["crypto"]["kdf"] =
                serde_json::json!({"function": "argon2id", "params": {"m": 1}, "message": ""})
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::UnsupportedFunction { module: "kdf", .. }
    ));
    let err = reparse(&ks, |v| v["crypto"]["kdf"]["function"] = "pbkdf2".into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::InvalidField {
            field: "crypto.kdf.params",
            ..
        }
    ));
}

#[test]
fn malformed_fields_are_named() {
    let (ks, _, _) = sample(cheap_scrypt());
    let cases: [(Edit, &str); 6] = [
        (
            |v| v["crypto"]["cipher"]["params"]["iv"] = "00".repeat(15).into(),
            "crypto.cipher.params.iv",
        ),
        (
            |v| v["crypto"]["cipher"]["message"] = "00".repeat(31).into(),
            "crypto.cipher.message",
        ),
        (
            |v| v["crypto"]["checksum"]["message"] = "zz".repeat(32).into(),
            "crypto.checksum.message",
        ),
        (
            |v| v["crypto"]["kdf"]["params"]["salt"] = "abc".into(),
            "crypto.kdf.params.salt",
        ),
        (
            |v| v["pubkey"] = format!("0x{}", "00".repeat(48)).into(),
            "pubkey",
        ),
        (
            |v| v["crypto"]["kdf"]["params"]["salt"] = "0xab".into(),
            "crypto.kdf.params.salt",
        ),
    ];
    for (edit, name) in cases {
        match reparse(&ks, edit) {
            Err(KeystoreError::InvalidHex { field, .. }) => assert_eq!(field, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let err = reparse(&ks, |v| v["pubkey"] = "00".repeat(48).into()).unwrap_err();
    assert!(matches!(err, KeystoreError::InvalidPubkey { .. }));
    let err = reparse(&ks, |v| v["uuid"] = "not-a-uuid".into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::InvalidField { field: "uuid", .. }
    ));
    let err = reparse(&ks, |v| v["uuid"] = ks.uuid().simple().to_string().into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::InvalidField { field: "uuid", .. }
    ));
    let err = reparse(&ks, |v| v["crypto"]["kdf"]["message"] = "x".into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::InvalidField {
            field: "crypto.kdf.message",
            ..
        }
    ));
    let err = reparse(&ks, |v| v["path"] = "m/12381'/3600".into()).unwrap_err();
    assert!(matches!(err, KeystoreError::InvalidPath { .. }));
    let err = reparse(&ks, |v| v["crypto"]["kdf"]["params"]["salt"] = "".into()).unwrap_err();
    assert!(matches!(
        err,
        KeystoreError::InvalidKdfParams {
            source: KdfParamsError::EmptySalt
        }
    ));
}

#[test]
fn absurd_kdf_params_are_refused() {
    let (ks, _, _) = sample(cheap_scrypt());
    let refused = |edit: Edit| {
        matches!(
            reparse(&ks, edit),
            Err(KeystoreError::InvalidKdfParams { .. })
        )
    };
    assert!(refused(
        |v| v["crypto"]["kdf"]["params"]["n"] = (1u64 << 21).into()
    ));
    assert!(refused(|v| v["crypto"]["kdf"]["params"]["n"] = 1000.into()));
    assert!(refused(|v| v["crypto"]["kdf"]["params"]["r"] = 0.into()));
    assert!(refused(
        |v| v["crypto"]["kdf"]["params"]["p"] = (1u64 << 40).into()
    ));
    assert!(refused(
        |v| v["crypto"]["kdf"]["params"]["dklen"] = 64.into()
    ));
    assert!(KdfParams::scrypt(1 << 20, 8, 1).is_ok());
    assert!(KdfParams::scrypt(1 << 20, 16, 1).is_err());
    assert!(KdfParams::scrypt(1 << 18, 8, 9).is_err());
    assert_eq!(
        KdfParams::pbkdf2(0),
        Err(KdfParamsError::Pbkdf2CountOutOfRange { c: 0 })
    );
    assert!(KdfParams::pbkdf2(1 << 24).is_ok());
    assert!(KdfParams::pbkdf2((1 << 24) + 1).is_err());
    assert_eq!(
        KdfParams::default_for(KdfKind::Scrypt),
        KdfParams::scrypt(DEFAULT_SCRYPT_N, DEFAULT_SCRYPT_R, DEFAULT_SCRYPT_P).unwrap()
    );
    assert_eq!(
        KdfParams::default_for(KdfKind::Pbkdf2),
        KdfParams::pbkdf2(DEFAULT_PBKDF2_C).unwrap()
    );
}

#[test]
fn empty_or_malformed_path_is_refused_on_write() {
    let mut rng = StdRng::seed_from_u64(4);
    let password = Password::new("pw");
    let (secret, pubkey) = key_pair(9);
    let enc =
        KeystoreEncryptor::new(&password, cheap_scrypt(), SaltMode::Shared, &mut rng).unwrap();
    let no_path = KeystoreMeta {
        pubkey: &pubkey,
        path: "",
        description: "",
    };
    assert!(matches!(
        enc.encrypt(&secret, no_path, &mut rng),
        Err(KeystoreError::MissingPath)
    ));
    let bad_path = KeystoreMeta {
        pubkey: &pubkey,
        path: "m/1",
        description: "",
    };
    assert!(matches!(
        enc.encrypt(&secret, bad_path, &mut rng),
        Err(KeystoreError::InvalidPath { .. })
    ));
    let (_, other) = key_pair(10);
    let wrong_key = KeystoreMeta {
        pubkey: &other,
        path: PATH,
        description: "",
    };
    assert!(matches!(
        enc.encrypt(&secret, wrong_key, &mut rng),
        Err(KeystoreError::PubkeyMismatch { .. })
    ));

    // A keystore read with an empty path (allowed by EIP-2335) is not
    // written back out.
    let ks = enc.encrypt(&secret, meta(&pubkey), &mut rng).unwrap();
    let read = reparse(&ks, |v| v["path"] = "".into()).unwrap();
    assert!(matches!(
        read.to_json_string(),
        Err(KeystoreError::MissingPath)
    ));
}
