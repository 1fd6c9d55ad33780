//! EIP-2335 keystores against the official vectors
//! (`ceremony-specs/vectors/eip2335.json`, eth-formats.md §3.1), with the
//! real default KDF costs. Each test runs only a handful of KDFs.

use dvkg::crypto::{PublicKey, SecretBytes};
use dvkg::eth::keystore::{
    KdfKind, KdfParams, Keystore, KeystoreDecryptor, KeystoreEncryptor, KeystoreError,
    KeystoreMeta, Password, SaltMode, SaltedKdf, decrypt, encrypt_with,
};
use rand::rngs::OsRng;
use serde_json::Value;

struct Vectors {
    file: Value,
}

impl Vectors {
    fn load() -> Self {
        Self {
            file: crate::common::load_vector("eip2335.json"),
        }
    }

    fn str(&self, pointer: &str) -> &str {
        self.file
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{pointer}"))
    }

    fn password(&self) -> Password {
        Password::new(self.str("/password"))
    }

    fn secret(&self) -> SecretBytes<32> {
        let mut raw: [u8; 32] = hex::decode(self.str("/secret"))
            .unwrap()
            .try_into()
            .unwrap();
        SecretBytes::new(&mut raw)
    }

    fn pubkey(&self) -> PublicKey {
        PublicKey::from_bytes(&hex::decode(self.str("/pubkey")).unwrap()).unwrap()
    }

    fn keystore(&self, kind: &str) -> &Value {
        &self.file["keystores"][kind]
    }
}

#[test]
fn vector_password_normalises() {
    let v = Vectors::load();
    assert_eq!(
        hex::encode(v.password().expose_secret()),
        v.str("/password_nfkd_utf8_hex")
    );
}

#[test]
fn scrypt_vector() {
    let v = Vectors::load();
    let kdf = |p: &Value| {
        KdfParams::scrypt(
            p["n"].as_u64().unwrap(),
            p["r"].as_u64().unwrap(),
            p["p"].as_u64().unwrap(),
        )
        .unwrap()
    };
    check_vector(&v, "scrypt", KdfKind::Scrypt, kdf);
}

#[test]
fn pbkdf2_vector() {
    let v = Vectors::load();
    assert_eq!(
        v.keystore("pbkdf2")["crypto"]["kdf"]["params"]["prf"],
        "hmac-sha256"
    );
    let kdf = |p: &Value| KdfParams::pbkdf2(p["c"].as_u64().unwrap()).unwrap();
    check_vector(&v, "pbkdf2", KdfKind::Pbkdf2, kdf);
}

fn check_vector(v: &Vectors, name: &str, kind: KdfKind, kdf_params: impl Fn(&Value) -> KdfParams) {
    let vector = v.keystore(name);
    let password = v.password();
    let secret = v.secret();
    let pubkey = v.pubkey();

    // Read and decrypt the published keystore.
    let parsed = Keystore::from_json_str(&vector.to_string()).unwrap();
    assert_eq!(parsed.pubkey(), &pubkey);
    assert_eq!(parsed.kdf().params().kind(), kind);
    let mut decryptor = KeystoreDecryptor::new();
    assert_eq!(
        decryptor.decrypt(&parsed, &password).unwrap(),
        secret,
        "{name}: decrypted secret"
    );

    // A wrong password is reported as such, after one more KDF.
    let err = decryptor
        .decrypt(&parsed, &Password::new("testpassword"))
        .unwrap_err();
    assert!(
        matches!(err, KeystoreError::WrongPassword),
        "{name}: {err:?}"
    );
    assert_eq!(decryptor.kdf_runs(), 2);

    // Re-encrypt with the vector's own salt, IV and UUID, built from the raw
    // JSON rather than from `parsed`, and get the vector back exactly.
    let params = &vector["crypto"]["kdf"]["params"];
    let salt = hex::decode(params["salt"].as_str().unwrap()).unwrap();
    let kdf = SaltedKdf::new(kdf_params(params), salt).unwrap();
    let iv: [u8; 16] = hex::decode(vector["crypto"]["cipher"]["params"]["iv"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let uuid = uuid::Uuid::parse_str(vector["uuid"].as_str().unwrap()).unwrap();
    let meta = KeystoreMeta {
        pubkey: &pubkey,
        path: vector["path"].as_str().unwrap(),
        description: vector["description"].as_str().unwrap(),
    };
    let rebuilt = encrypt_with(&secret, &password, &kdf, iv, uuid, meta).unwrap();
    assert_eq!(rebuilt, parsed, "{name}: rebuilt keystore");
    let text = rebuilt.to_json_string().unwrap();
    let produced: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(&produced, vector, "{name}: produced json\n{text}");
    for module in ["cipher", "checksum"] {
        let expected = hex::decode(vector["crypto"][module]["message"].as_str().unwrap()).unwrap();
        let got = hex::decode(produced["crypto"][module]["message"].as_str().unwrap()).unwrap();
        assert_eq!(got, expected, "{name}: {module}.message");
    }
    assert_eq!(
        rebuilt.ciphertext().as_slice(),
        hex::decode(v.str(&format!("/keystores/{name}/crypto/cipher/message"))).unwrap()
    );
    // Written in the EIP's field order.
    let order = [
        "\"crypto\"",
        "\"description\"",
        "\"pubkey\"",
        "\"path\"",
        "\"uuid\"",
        "\"version\"",
    ];
    let positions: Vec<_> = order.iter().map(|key| text.find(key).unwrap()).collect();
    assert!(positions.is_sorted(), "{name}: field order\n{text}");

    // Fresh randomness with the default (2^18) costs, then back.
    let encryptor = KeystoreEncryptor::new(
        &password,
        KdfParams::default_for(kind),
        SaltMode::Shared,
        &mut OsRng,
    )
    .unwrap();
    let meta = KeystoreMeta {
        pubkey: &pubkey,
        path: "m/12381/3600/0/0/0",
        description: "",
    };
    let fresh = encryptor.encrypt(&secret, meta, &mut OsRng).unwrap();
    assert_ne!(fresh.kdf().salt(), kdf.salt());
    assert_ne!(fresh.iv(), &iv);
    let reread = Keystore::from_json_str(&fresh.to_json_string().unwrap()).unwrap();
    assert_eq!(reread, fresh);
    assert_eq!(
        decrypt(&reread, &password).unwrap(),
        secret,
        "{name}: fresh round trip"
    );
}
