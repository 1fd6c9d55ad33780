//! Secret hygiene: after a whole ceremony of separate processes logging at
//! trace level, no key share, group secret, identity secret or password
//! appears in any log line or public file; every secret file is 0600; the
//! `Debug` output of every secret-bearing type is redacted; secret types
//! wipe themselves.

use std::cell::RefCell;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use dvkg::crypto::{Scalar, SecretBytes};
use dvkg::dkg::dealer;
use dvkg::dkg::messages::{ShareBundle, ShareBytes, Signed};
use dvkg::dkg::plan::ShareIndex;
use dvkg::dkg::signing::lagrange_at_zero;
use dvkg::eth::keystore::{Keystore, KeystoreDecryptor, Password};
use rand::SeedableRng;
use rand::rngs::StdRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ceremony::Cluster;
use crate::dkg_harness::{self, Hooks, Views, hoodi_plan};

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// Every text form a 32-byte secret could take in a log or a JSON file.
fn forms(bytes: &[u8]) -> Vec<String> {
    let lower = hex::encode(bytes);
    vec![lower.clone(), lower.to_uppercase(), format!("{bytes:?}")]
}

#[test]
fn no_secret_in_trace_logs_or_public_files_and_secret_files_are_0600() {
    let cluster = Cluster::new(4, 3, 2);
    std::fs::write(
        cluster.path("op1-password.txt"),
        "correct horse battery staple\n",
    )
    .unwrap();
    // Trace logs are large: each process writes them to a file, so that no
    // pipe fills while another process is being waited for.
    let children: Vec<Child> = (1..=4)
        .map(|i| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_dvkg"));
            command
                .current_dir(cluster.root.path())
                .args(["-vvv", "ceremony", "--definition", "definition.json"])
                .args(["--identity", &format!("op{i}"), "--out", &format!("out{i}")])
                .args([
                    "--kdf",
                    "pbkdf2",
                    "--timeout",
                    "60",
                    "--round-timeout",
                    "30",
                ])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(File::create(cluster.path(&format!("log{i}.out"))).unwrap())
                .stderr(File::create(cluster.path(&format!("log{i}.err"))).unwrap());
            if i == 1 {
                command.args(["--password-file", "op1-password.txt"]);
            }
            command.spawn().unwrap()
        })
        .collect();
    let mut logs = String::new();
    for (k, mut child) in children.into_iter().enumerate() {
        let i = k + 1;
        let status = child.wait().unwrap();
        let mut log = std::fs::read_to_string(cluster.path(&format!("log{i}.err"))).unwrap();
        log.push_str(&std::fs::read_to_string(cluster.path(&format!("log{i}.out"))).unwrap());
        assert!(status.success(), "operator {i}:\n{log}");
        assert!(
            log.contains("TRACE"),
            "operator {i} did not log at trace level"
        );
        logs.push_str(&log);
    }

    // The secrets: every identity seed and age identity, every password,
    // every key share, and each validator's group secret (which must never
    // exist anywhere: it is interpolated here only to look for it).
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut shares: Vec<Vec<(u64, Scalar)>> = vec![Vec::new(), Vec::new()];
    for i in 1..=4u64 {
        let identity: serde_json::Value = serde_json::from_slice(
            &std::fs::read(cluster.path(&format!("op{i}/identity.json"))).unwrap(),
        )
        .unwrap();
        for field in ["identity_seed", "age_identity"] {
            let value = identity[field].as_str().unwrap().to_owned();
            secrets.push((format!("operator {i}'s {field}"), value));
        }
        let keys = cluster.path(&format!("out{i}/validator_keys"));
        // Operator 1 gave its own password; the others had one generated.
        let password = if i == 1 {
            assert!(!keys.join("password.txt").exists());
            "correct horse battery staple".to_owned()
        } else {
            assert_eq!(mode(&keys.join("password.txt")), 0o600);
            let text = std::fs::read_to_string(keys.join("password.txt")).unwrap();
            text.trim().to_owned()
        };
        secrets.push((
            format!("operator {i}'s keystore password"),
            password.clone(),
        ));
        let mut decryptor = KeystoreDecryptor::new();
        for (v, validator_shares) in shares.iter_mut().enumerate() {
            let path = keys.join(format!("keystore-{v}.json"));
            let keystore =
                Keystore::from_json_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let secret = decryptor
                .decrypt(&keystore, &Password::new(&password))
                .unwrap();
            for form in forms(secret.expose_secret()) {
                secrets.push((format!("operator {i}'s share of validator {v}"), form));
            }
            let scalar = Scalar::from_bytes_be(secret.expose_secret()).unwrap();
            validator_shares.push((i, scalar));
        }
    }
    for (v, validator_shares) in shares.iter().enumerate() {
        let ids: Vec<ShareIndex> = validator_shares[..3]
            .iter()
            .map(|(i, _)| ShareIndex::try_from(*i).unwrap())
            .collect();
        let mut secret = Scalar::from_u64(0);
        for ((_, share), coefficient) in validator_shares.iter().zip(lagrange_at_zero(&ids)) {
            secret = secret.add(&share.mul(&coefficient));
        }
        for form in forms(secret.to_bytes_be().expose_secret()) {
            secrets.push((format!("validator {v}'s group secret"), form));
        }
    }

    // The haystacks: every log line, every public file, every file name.
    let mut public: Vec<(String, String)> = vec![("the trace logs".into(), logs)];
    for i in 1..=4 {
        let out = cluster.path(&format!("out{i}"));
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            public.push((format!("a file name in out{i}"), name.clone()));
            if path.is_file() && name.ends_with(".json") {
                public.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
        public.push((
            format!("op{i}/operator.json"),
            std::fs::read_to_string(cluster.path(&format!("op{i}/operator.json"))).unwrap(),
        ));
    }
    public.push((
        "definition.json".into(),
        std::fs::read_to_string(cluster.path("definition.json")).unwrap(),
    ));
    for (what, secret) in &secrets {
        for (where_, text) in &public {
            assert!(
                !text.contains(secret.as_str()),
                "{what} appears in {where_}"
            );
        }
    }

    // Every secret file is 0600, every directory holding one 0700 or the
    // output directory's own.
    for i in 1..=4 {
        assert_eq!(mode(&cluster.path(&format!("op{i}/identity.json"))), 0o600);
        assert_eq!(mode(&cluster.path(&format!("op{i}"))), 0o700);
        let out = cluster.path(&format!("out{i}"));
        assert_eq!(mode(&out.join(format!("shares-operator-{i}.age"))), 0o600);
        for entry in std::fs::read_dir(out.join("validator_keys")).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn debug_output_of_secret_bearing_values_is_redacted() {
    // Dealer mode, so that the constant terms (the coefficients that sum to
    // each group secret) are known to the test.
    let mut rng = StdRng::seed_from_u64(77);
    let cluster = dkg_harness::dkg_cluster(4, 3, 2, hoodi_plan(), &mut rng);
    let constants: Vec<Vec<Scalar>> = (0..4)
        .map(|_| (0..2).map(|_| Scalar::random(&mut rng)).collect())
        .collect();
    let captured: RefCell<Vec<Signed<ShareBundle>>> = RefCell::new(Vec::new());
    let run = dkg_harness::run(
        &cluster,
        Hooks {
            constants: Some(constants.clone()),
            shares: Some(Box::new(|_, views: &mut Views<ShareBundle>| {
                for view in views.values() {
                    captured.borrow_mut().extend(view.values().cloned());
                }
            })),
            ..Hooks::default()
        },
        77,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);

    let mut secrets: Vec<String> = Vec::new();
    for c in constants.iter().flatten() {
        secrets.extend(forms(c.to_bytes_be().expose_secret()));
    }
    for output in run.outputs.values() {
        for share in &output.secret_shares {
            secrets.extend(forms(share.to_bytes_be().expose_secret()));
        }
    }
    for bundle in captured.borrow().iter() {
        for share in &bundle.body.shares {
            secrets.extend(forms(share.expose_secret()));
        }
    }
    for key in &cluster.identities {
        let debug = format!("{key:?}");
        assert!(debug.contains("redacted"), "{debug}");
    }
    let password = Password::new("correct horse battery staple");
    let mut debug = vec![
        format!("{:?}", run.outputs),
        format!("{:?}", captured.borrow()),
        format!("{:?}", constants),
        format!("{password:?}"),
        format!("{:?}", SecretBytes::new(&mut [7u8; 32])),
    ];
    debug.push(format!("{:#?}", run.outputs));
    for text in &debug {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in {text}");
        }
        assert!(!text.contains("correct horse"), "the password in {text}");
        assert!(!text.contains("[7, 7, 7"), "secret bytes in {text}");
    }
    // Dealer-mode additive split of a known secret stays redacted too.
    let split = dealer::additive_split(&Scalar::from_u64(5), 3, &mut rng);
    assert!(format!("{split:?}").contains("redacted"));
}

fn wipes_on_drop<T: ZeroizeOnDrop>() {}

#[test]
fn secret_types_zeroize() {
    // The types that hold secret bytes wipe themselves when dropped...
    wipes_on_drop::<SecretBytes<32>>();
    wipes_on_drop::<ShareBytes>();
    assert!(std::mem::needs_drop::<Scalar>());
    assert!(std::mem::needs_drop::<Password>());
    // ...and the wipe they run clears them.
    let mut scalar = Scalar::random(&mut StdRng::seed_from_u64(1));
    assert!(!scalar.is_zero());
    scalar.zeroize();
    assert!(scalar.is_zero());
    let mut bytes = SecretBytes::new(&mut [9u8; 32]);
    bytes.zeroize();
    assert_eq!(bytes.expose_secret(), &[0u8; 32]);
    let mut raw = [5u8; 32];
    let _moved = SecretBytes::new(&mut raw);
    assert_eq!(raw, [0u8; 32], "SecretBytes::new wipes its source");
    let mut share = ShareBytes::new(&SecretBytes::new(&mut [3u8; 32]));
    share.zeroize();
    assert_eq!(share.expose_secret(), &[0u8; 32]);
}
