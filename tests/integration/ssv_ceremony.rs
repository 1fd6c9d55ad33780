//! SSV clusters end to end: `dvkg identity new --ssv-operator-id
//! --ssv-operator-key`, `dvkg definition new --ssv-owner --ssv-nonce`, and
//! separate `dvkg ceremony` processes over loopback QUIC, whose
//! `keyshares.json` must be byte-identical everywhere, verify, decrypt slot
//! by slot to each operator's keystore share, and be refused by `dvkg
//! verify` when tampered with, naming the field. Bad SSV definitions are
//! refused before any connection.
//!
//! The operators' SSV keys are dvkg's test keys (`src/ssv/testdata`), whose
//! private halves let the test decrypt every slot.

use std::path::Path;
use std::process::Child;
use std::time::Instant;

use base64ct::{Base64, Encoding};
use dvkg::ceremony::definition::ClusterDefinition;
use dvkg::ceremony::lock::ClusterLock;
use dvkg::eth::keystore::{Keystore, KeystoreDecryptor, Password};
use dvkg::ssv::dealer::{TEST_RSA_1024_PUBLIC_KEY, test_operator_key};
use dvkg::ssv::{Ciphertext, SharesData};
use serde_json::Value;

use crate::ceremony::{Cluster, check_outputs, wait};
use crate::common::{Output, dvkg, free_ports};

const OWNER: &str = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6";
const NONCE: u64 = 8;
const WITHDRAWAL: &str = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad";

/// Operator `position`'s registered SSV key (test key `position`).
fn registered_key(position: usize) -> String {
    test_operator_key(position)
        .unwrap()
        .public_key()
        .registered()
        .to_owned()
}

/// `dvkg identity new` for operator `i` (1-based) in `root/op<i>`, with SSV
/// id `id` and the key given as `key_arg` (a file or the string).
fn identity(root: &Path, i: usize, port: u16, id: u64, key_arg: &str) -> Output {
    let dir = format!("op{i}");
    dvkg(
        root,
        &[
            "identity",
            "new",
            "--dir",
            &dir,
            "--name",
            &dir,
            "--address",
            &format!("127.0.0.1:{port}"),
            "--ssv-operator-id",
            &id.to_string(),
            "--ssv-operator-key",
            key_arg,
        ],
    )
}

/// An SSV cluster of operators at `ids`: operator 1 gives its key as a PEM
/// file, operator 2 as the registered string inline, the others as a file
/// holding the registered string.
fn ssv_cluster(ids: &[u64], validators: usize) -> Cluster {
    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(ids.len());
    for (position, (&id, &port)) in ids.iter().zip(&ports).enumerate() {
        let i = position + 1;
        let key_arg = match position {
            0 => {
                let pem = Base64::decode_vec(&registered_key(0)).unwrap();
                std::fs::write(root.path().join("op1-key.pem"), pem).unwrap();
                "op1-key.pem".to_owned()
            }
            1 => registered_key(1),
            _ => {
                let name = format!("op{i}-key.txt");
                std::fs::write(root.path().join(&name), registered_key(position) + "\n").unwrap();
                name
            }
        };
        identity(root.path(), i, port, id, &key_arg)
            .assert_code(0)
            .assert_mentions("\"operator_id\"");
    }
    let cluster = Cluster { root, n: ids.len() };
    // Given in reverse order: definition new sorts them by SSV id.
    let mut args: Vec<String> = vec!["definition".into(), "new".into()];
    for i in (1..=ids.len()).rev() {
        args.push("--operator".into());
        args.push(format!("op{i}/operator.json"));
    }
    for arg in [
        "--validators",
        &validators.to_string(),
        "--network",
        "hoodi",
        "--withdrawal-address",
        WITHDRAWAL,
        "--withdrawal-type",
        "0x02",
        "--ssv-owner",
        &OWNER.to_lowercase(),
        "--ssv-nonce",
        &NONCE.to_string(),
        "--out",
        "definition.json",
    ] {
        args.push(arg.to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dvkg(cluster.root.path(), &args)
        .assert_code(0)
        .assert_mentions("SSV cluster of owner");
    cluster
}

fn run_ceremony(cluster: &Cluster) {
    let started = Instant::now();
    let children: Vec<Child> = (1..=cluster.n)
        .map(|i| cluster.start(i, "definition.json", (60, 30)))
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "operator {} failed:\n{}", i + 1, done.stderr);
        assert!(
            done.stderr.contains("SSV keyshares")
                && done.stderr.contains("--ssv-operator-private-key"),
            "{}",
            done.stderr
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// keyshares.json is the same at every operator, and each operator's slot
/// of every validator decrypts, with its SSV key, to the share in its
/// keystore; `dvkg verify --keyshares` with each key agrees.
fn check_keyshares(cluster: &Cluster, ids: &[u64]) {
    let text = read(&cluster.path("out1/keyshares.json"));
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["version"], "v1.1.0");
    let lock: ClusterLock =
        serde_json::from_str(&read(&cluster.path("out1/cluster-lock.json"))).unwrap();
    let indices: Vec<u64> = lock.share_indices.iter().map(|i| i.get()).collect();
    assert_eq!(indices, ids, "shares sit at the SSV ids");
    let mut decryptor = KeystoreDecryptor::new();
    for i in 1..=cluster.n {
        assert_eq!(
            read(&cluster.path(&format!("out{i}/keyshares.json"))),
            text,
            "operator {i}'s keyshares.json differs"
        );
        let private = test_operator_key(i - 1).unwrap();
        let keys = cluster.path(&format!("out{i}/validator_keys"));
        let password = read(&keys.join("password.txt"));
        for (v, entry) in file["shares"].as_array().unwrap().iter().enumerate() {
            assert_eq!(entry["data"]["ownerNonce"], NONCE + v as u64);
            assert_eq!(entry["data"]["ownerAddress"], OWNER);
            let ids_in_file: Vec<u64> = entry["payload"]["operatorIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            assert_eq!(ids_in_file, ids);
            let shares_data =
                SharesData::from_hex(entry["payload"]["sharesData"].as_str().unwrap(), ids.len())
                    .unwrap();
            let ciphertext: &Ciphertext = &shares_data.ciphertexts()[i - 1];
            let (share, _) = private.decrypt_share(ciphertext).unwrap();
            let keystore =
                Keystore::from_json_str(&read(&keys.join(format!("keystore-{v}.json")))).unwrap();
            let in_keystore = decryptor
                .decrypt(&keystore, &Password::new(&password))
                .unwrap();
            assert_eq!(
                share.to_bytes().expose_secret(),
                in_keystore.expose_secret(),
                "operator {i}, validator {v}"
            );
        }
        // What the operator runs before registration.
        std::fs::write(
            cluster.path(&format!("op{i}-private.pem")),
            private.to_pkcs1_pem().unwrap().as_bytes(),
        )
        .unwrap();
        dvkg(
            cluster.root.path(),
            &[
                "verify",
                "--keyshares",
                &format!("out{i}/keyshares.json"),
                "--ssv-owner",
                OWNER,
                "--ssv-nonce",
                &NONCE.to_string(),
                "--ssv-operator-private-key",
                &format!("op{i}-private.pem"),
            ],
        )
        .assert_code(0)
        .assert_mentions("own slot decrypts to its share");
    }
}

/// A copy of `out1` with its keyshares.json changed by `edit`.
fn tampered(cluster: &Cluster, name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let from = cluster.path("out1");
    let to = cluster.path(name);
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let mut value: Value = serde_json::from_str(&read(&to.join("keyshares.json"))).unwrap();
    edit(&mut value);
    let mut text = serde_json::to_string(&value).unwrap();
    text.push('\n');
    std::fs::write(to.join("keyshares.json"), text).unwrap();
    name.to_owned()
}

/// `sharesData` hex of entry 0, without `0x`.
fn shares_data(value: &mut Value) -> &mut Value {
    &mut value["shares"][0]["payload"]["sharesData"]
}

fn edit_hex(value: &mut Value, change: impl FnOnce(&mut Vec<u8>)) {
    let field = shares_data(value);
    let mut bytes = hex::decode(field.as_str().unwrap().trim_start_matches("0x")).unwrap();
    change(&mut bytes);
    *field = Value::String(format!("0x{}", hex::encode(bytes)));
}

#[test]
fn four_ssv_operators_at_ids_11_27_103_404() {
    let ids = [11, 27, 103, 404];
    let cluster = ssv_cluster(&ids, 2);
    // The definition holds every operator's id and key, sorted by id.
    let definition = ClusterDefinition::load(&cluster.path("definition.json")).unwrap();
    let listed: Vec<u64> = definition
        .operators
        .iter()
        .map(|o| o.ssv.as_ref().unwrap().operator_id)
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(definition.threshold, 3);
    assert_eq!(definition.ssv.as_ref().unwrap().owner, OWNER);
    for (position, op) in definition.operators.iter().enumerate() {
        assert_eq!(
            op.ssv.as_ref().unwrap().operator_key,
            registered_key(position)
        );
    }
    run_ceremony(&cluster);
    // Identical public files, verify at every operator, any 3 keystores
    // interpolate at the ids to the validator key, deposits verify.
    check_outputs(&cluster, 3);
    check_keyshares(&cluster, &ids);

    let verify_fails = |dir: &str, needles: &[&str]| {
        let out = dvkg(cluster.root.path(), &["verify", dir]);
        out.assert_code(5);
        for needle in needles {
            out.assert_mentions(needle);
        }
    };
    let dir = tampered(&cluster, "t-signature", |v| {
        edit_hex(v, |b| b[10] ^= 0x01);
    });
    verify_fails(
        &dir,
        &[
            "shares[0].payload.sharesData: the ownership signature is not the lock's",
            "ownership signature",
        ],
    );
    let dir = tampered(&cluster, "t-swapped", |v| {
        edit_hex(v, |b| {
            let first = 96 + 48 * 4;
            let (a, rest) = b[first..].split_at_mut(256);
            a.swap_with_slice(&mut rest[..256]);
        });
    });
    verify_fails(
        &dir,
        &[
            "the ciphertext of operator 1 (SSV id 11) is not the one it sent in its signed round-3 message (it is the one operator 2 (SSV id 27) sent)",
        ],
    );
    let dir = tampered(&cluster, "t-nonce", |v| {
        v["shares"][1]["data"]["ownerNonce"] = Value::from(NONCE + 2);
    });
    verify_fails(
        &dir,
        &[
            "shares[1].data.ownerNonce is 10, the lock and transcript give 9",
            "nonce",
        ],
    );
    let dir = tampered(&cluster, "t-owner", |v| {
        v["shares"][0]["data"]["ownerAddress"] = Value::from(OWNER.to_lowercase());
    });
    verify_fails(
        &dir,
        &[&format!(
            "shares[0].data.ownerAddress is \"{}\", the lock and transcript give \"{OWNER}\"",
            OWNER.to_lowercase()
        )],
    );
    let dir = tampered(&cluster, "t-unsorted", |v| {
        let operators = v["shares"][0]["data"]["operators"].as_array_mut().unwrap();
        operators.swap(0, 1);
    });
    verify_fails(
        &dir,
        &[
            "shares[0].data.operators[0].id is 27, the lock and transcript give 11",
            "operator ids",
        ],
    );
    let dir = tampered(&cluster, "t-share-key", |v| {
        let group = v["shares"][0]["data"]["publicKey"]
            .as_str()
            .unwrap()
            .to_owned();
        let group = hex::decode(group.trim_start_matches("0x")).unwrap();
        edit_hex(v, |b| {
            let at = 96 + 48 * 2;
            b[at..at + 48].copy_from_slice(&group);
        });
    });
    verify_fails(
        &dir,
        &["the share public key of operator 3 (SSV id 103) is not the lock's public share"],
    );
    // A missing file is named too.
    let dir = tampered(&cluster, "t-missing", |_| {});
    std::fs::remove_file(cluster.path(&dir).join("keyshares.json")).unwrap();
    verify_fails(&dir, &["keyshares.json: present"]);
}

#[test]
fn seven_ssv_operators_at_scattered_ids() {
    let ids = [3, 8, 21, 55, 144, 377, 987];
    let cluster = ssv_cluster(&ids, 1);
    run_ceremony(&cluster);
    check_outputs(&cluster, 5);
    check_keyshares(&cluster, &ids);
}

/// Writes `definition` to `name` after `edit`, with its hash recomputed, so
/// that only the SSV rule is at fault.
fn edited_definition(cluster: &Cluster, name: &str, edit: impl FnOnce(&mut ClusterDefinition)) {
    let mut definition = ClusterDefinition::load(&cluster.path("definition.json")).unwrap();
    edit(&mut definition);
    definition.definition_hash = definition.compute_hash().unwrap();
    std::fs::write(
        cluster.path(name),
        serde_json::to_string_pretty(&definition).unwrap(),
    )
    .unwrap();
}

#[test]
fn bad_ssv_definitions_are_refused_before_any_connection() {
    let ids = [11, 27, 103, 404, 500];
    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(6);
    for (position, &id) in ids.iter().enumerate() {
        identity(
            root.path(),
            position + 1,
            ports[position],
            id,
            &registered_key(position),
        )
        .assert_code(0);
    }
    // Operator 6 shares operator 1's id.
    identity(root.path(), 6, ports[5], 11, &registered_key(5)).assert_code(0);
    let definition = |operators: &[usize], extra: &[&str]| {
        let mut args: Vec<String> = vec!["definition".into(), "new".into()];
        for i in operators {
            args.push("--operator".into());
            args.push(format!("op{i}/operator.json"));
        }
        for arg in [
            "--network",
            "hoodi",
            "--withdrawal-address",
            WITHDRAWAL,
            "--ssv-owner",
            OWNER,
            "--ssv-nonce",
            "0",
            "--out",
            "bad.json",
        ]
        .iter()
        .chain(extra)
        {
            args.push((*arg).to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dvkg(root.path(), &args)
    };
    definition(&[1, 2, 3, 4, 5], &[])
        .assert_code(1)
        .assert_mentions("an SSV cluster has 4, 7, 10 or 13 operators, not 5");
    definition(&[1, 2, 3, 4], &["--threshold", "2"])
        .assert_code(1)
        .assert_mentions("an SSV cluster of 4 operators signs with 3 of them")
        .assert_mentions("leave out --threshold");
    definition(&[1, 2, 3, 6], &[])
        .assert_code(1)
        .assert_mentions("operators 1 and 2 have the same ssv operator_id 11")
        .assert_mentions("each SSV operator has its own id");
    assert!(!root.path().join("bad.json").exists());
    // A 1024-bit key is refused when the identity is made, and in a
    // record made by hand.
    let small = Base64::encode_string(TEST_RSA_1024_PUBLIC_KEY.as_bytes());
    identity(root.path(), 7, ports[0], 7, &small)
        .assert_code(1)
        .assert_mentions("--ssv-operator-key")
        .assert_mentions("RSA-2048");
    let mut record: Value =
        serde_json::from_str(&read(&root.path().join("op4/operator.json"))).unwrap();
    record["ssv"]["operator_key"] = Value::from(small);
    std::fs::write(root.path().join("small.json"), record.to_string()).unwrap();
    let out = dvkg(
        root.path(),
        &[
            "definition",
            "new",
            "--operator",
            "op1/operator.json",
            "--operator",
            "op2/operator.json",
            "--operator",
            "op3/operator.json",
            "--operator",
            "small.json",
            "--network",
            "hoodi",
            "--withdrawal-address",
            WITHDRAWAL,
            "--ssv-owner",
            OWNER,
            "--ssv-nonce",
            "0",
            "--out",
            "bad.json",
        ],
    );
    out.assert_code(1)
        .assert_mentions("RSA-1024")
        .assert_mentions("operator 4");

    // A valid SSV definition, then the same rules broken in files whose
    // hash was recomputed: dvkg ceremony refuses each before connecting
    // (nothing listens, so a connection attempt would time out instead).
    definition(&[1, 2, 3, 4], &[]).assert_code(0);
    std::fs::rename(
        root.path().join("bad.json"),
        root.path().join("definition.json"),
    )
    .unwrap();
    let cluster = Cluster { root, n: 4 };
    let ceremony = |name: &str, needle: &str| {
        let started = Instant::now();
        let done = wait(cluster.start_at(1, name, (60, 30), "never", &[]), started);
        assert_eq!(done.code, 1, "{}", done.stderr);
        assert!(
            done.stderr.contains(needle),
            "{needle:?} not in {}",
            done.stderr
        );
        assert!(
            done.elapsed.as_secs() < 20,
            "refused only after {:?}",
            done.elapsed
        );
        assert!(!cluster.path("never").exists());
    };
    edited_definition(&cluster, "threshold.json", |d| d.threshold = 4);
    ceremony("threshold.json", "signs with 3 of them");
    edited_definition(&cluster, "duplicate.json", |d| {
        d.operators[3].ssv.as_mut().unwrap().operator_id = 27;
    });
    ceremony("duplicate.json", "same ssv operator_id 27");
    edited_definition(&cluster, "unsorted.json", |d| d.operators.swap(0, 1));
    ceremony("unsorted.json", "ascending id order");
    edited_definition(&cluster, "small.json", |d| {
        d.operators[2].ssv.as_mut().unwrap().operator_key =
            Base64::encode_string(TEST_RSA_1024_PUBLIC_KEY.as_bytes());
    });
    ceremony("small.json", "RSA-1024");
    edited_definition(&cluster, "five.json", |d| {
        let extra = d.operators[0].clone();
        d.operators.push(extra);
    });
    ceremony("five.json", "not 5");
}
