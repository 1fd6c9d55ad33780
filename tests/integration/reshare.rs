//! Reshares as operators run them: a DKG of `dvkg ceremony` processes, then
//! `dvkg definition reshare` and a second set of processes, on loopback
//! QUIC. Each checks that the validator keys are unchanged, that any
//! t_new new shares sign for them and t_new − 1 do not, that the new
//! outputs verify, and that the previous directories are never touched.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use dvkg::ceremony::lock::ClusterLock;
use dvkg::crypto::{G1Point, Scalar};
use dvkg::dkg::plan::ShareIndex;
use dvkg::dkg::signing::lagrange_at_zero;
use dvkg::eth::keystore::{Keystore, KeystoreDecryptor, Password};

use crate::ceremony::wait;
use crate::common::{dvkg, free_ports};

const ADDRESS: &str = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad";

struct World {
    root: tempfile::TempDir,
}

impl World {
    /// Identities `names` (each `dvkg identity new`, on a free port).
    fn new(names: &[&str]) -> Self {
        let world = Self {
            root: tempfile::tempdir().unwrap(),
        };
        world.identities(names);
        world
    }

    fn identities(&self, names: &[&str]) {
        let ports = free_ports(names.len());
        for (name, port) in names.iter().zip(ports) {
            dvkg(
                self.root.path(),
                &[
                    "identity",
                    "new",
                    "--dir",
                    name,
                    "--name",
                    name,
                    "--address",
                    &format!("127.0.0.1:{port}"),
                ],
            )
            .assert_code(0);
        }
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.root.path().join(relative)
    }

    fn start(&self, name: &str, definition: &str, out: &str, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_dvkg"))
            .current_dir(self.root.path())
            .args([
                "-v",
                "ceremony",
                "--definition",
                definition,
                "--identity",
                name,
                "--out",
                out,
                "--timeout",
                "60",
                "--round-timeout",
                "30",
                "--kdf",
                "pbkdf2",
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// A DKG of `names`, threshold `t`, `v` validators: outputs in
    /// `dkg-<name>/`.
    fn dkg(&self, names: &[&str], t: usize, v: usize) {
        let mut args: Vec<String> = vec!["definition".into(), "new".into()];
        for name in names {
            args.extend(["--operator".into(), format!("{name}/operator.json")]);
        }
        for arg in [
            "--threshold",
            &t.to_string(),
            "--validators",
            &v.to_string(),
            "--network",
            "hoodi",
            "--withdrawal-address",
            ADDRESS,
            "--out",
            "dkg.json",
        ] {
            args.push(arg.to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dvkg(self.root.path(), &args).assert_code(0);
        let started = Instant::now();
        let children: Vec<Child> = names
            .iter()
            .map(|n| self.start(n, "dkg.json", &format!("dkg-{n}"), &[]))
            .collect();
        for (name, child) in names.iter().zip(children) {
            let done = wait(child, started);
            assert_eq!(done.code, 0, "dkg {name}:\n{}", done.stderr);
        }
    }

    fn lock(&self, dir: &str) -> ClusterLock {
        serde_json::from_slice(
            &std::fs::read(self.path(&format!("{dir}/cluster-lock.json"))).unwrap(),
        )
        .unwrap()
    }

    /// `dvkg definition reshare --previous-lock dkg-<first>/cluster-lock.json ARGS --out reshare.json`.
    fn define(&self, previous: &str, args: &[&str]) -> crate::common::Output {
        let lock = format!("{previous}/cluster-lock.json");
        let mut all = vec!["definition", "reshare", "--previous-lock", &lock];
        all.extend_from_slice(args);
        all.extend(["--out", "reshare.json"]);
        dvkg(self.root.path(), &all)
    }

    /// Runs the reshare: every participant of `reshare.json` (`names`), the
    /// dealers (`dealers`, each with its previous directory) with
    /// `--previous`; faults by name. Returns each one's exit and stderr.
    fn reshare(
        &self,
        names: &[&str],
        dealers: &[&str],
        faults: &BTreeMap<&str, &str>,
        tag: &str,
    ) -> Vec<crate::ceremony::Finished> {
        let started = Instant::now();
        let children: Vec<Child> = names
            .iter()
            .map(|n| {
                let previous = format!("dkg-{n}");
                let mut extra: Vec<&str> = Vec::new();
                if dealers.contains(n) {
                    extra.extend(["--previous", previous.as_str()]);
                }
                if let Some(fault) = faults.get(n) {
                    extra.extend(["--fault", fault]);
                }
                self.start(n, "reshare.json", &format!("{tag}-{n}"), &extra)
            })
            .collect();
        children.into_iter().map(|c| wait(c, started)).collect()
    }

    /// Every file under the previous directories, with its bytes.
    fn snapshot(&self, names: &[&str]) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for n in names {
            let dir = self.path(&format!("dkg-{n}"));
            walk(&dir, &mut |p| {
                out.insert(p.display().to_string(), std::fs::read(p).unwrap());
            });
        }
        out
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

/// Operator `dir`'s share of validator `v`, from its keystore.
fn share(world: &World, dir: &str, v: usize) -> Scalar {
    let keys = world.path(&format!("{dir}/validator_keys"));
    let password = std::fs::read_to_string(keys.join("password.txt")).unwrap();
    let keystore = Keystore::from_json_str(
        &std::fs::read_to_string(keys.join(format!("keystore-{v}.json"))).unwrap(),
    )
    .unwrap();
    let secret = KeystoreDecryptor::new()
        .decrypt(&keystore, &Password::new(&password))
        .unwrap();
    Scalar::from_bytes_be(secret.expose_secret()).unwrap()
}

/// The key the shares of `holders` (directories, with their share indices)
/// interpolate to.
fn interpolate(world: &World, holders: &[(&str, ShareIndex)], v: usize) -> [u8; 48] {
    let indices: Vec<ShareIndex> = holders.iter().map(|(_, x)| *x).collect();
    let lambdas = lagrange_at_zero(&indices);
    let mut secret = Scalar::ZERO;
    for ((dir, _), lambda) in holders.iter().zip(&lambdas) {
        secret = secret.add(&lambda.mul(&share(world, dir, v)));
    }
    G1Point::mul_generator(&secret).to_bytes()
}

/// The checks of every happy path: all exit 0, the keys are the previous
/// lock's (of `subset`), any t_new new holders interpolate to them and
/// t_new − 1 do not, every new directory verifies, dealers-only hold no
/// secret, and the previous directories are unchanged.
fn check_reshare(
    world: &World,
    done: &[crate::ceremony::Finished],
    names: &[&str],
    holders: &[&str],
    subset: &[usize],
    before: &BTreeMap<String, Vec<u8>>,
    previous_names: &[&str],
) -> ClusterLock {
    for (name, d) in names.iter().zip(done) {
        assert_eq!(d.code, 0, "reshare {name}:\n{}", d.stderr);
        assert!(
            d.stderr.contains("no reshare can revoke the old ones"),
            "{}",
            d.stderr
        );
    }
    let previous = world.lock(&format!("dkg-{}", previous_names[0]));
    let lock = world.lock(&format!("re-{}", holders[0]));
    assert_eq!(lock.kind, dvkg::dkg::plan::CeremonyKind::Reshare);
    assert_eq!(lock.previous_lock_hash, Some(previous.lock_hash));
    assert_eq!(lock.validators.len(), subset.len());
    for (validator, &old) in lock.validators.iter().zip(subset) {
        assert_eq!(validator.pubkey, previous.validators[old].pubkey);
        // The deposits are carried over unchanged.
        assert_eq!(
            validator.deposit_data,
            previous.validators[old].deposit_data
        );
    }
    let t = lock.definition.threshold as usize;
    let indexed: Vec<(String, ShareIndex)> = holders
        .iter()
        .zip(&lock.share_indices)
        .map(|(h, x)| (format!("re-{h}"), *x))
        .collect();
    let as_refs: Vec<(&str, ShareIndex)> = indexed.iter().map(|(d, x)| (d.as_str(), *x)).collect();
    for v in 0..subset.len() {
        let first = &as_refs[..t];
        let last = &as_refs[as_refs.len() - t..];
        assert_eq!(
            interpolate(world, first, v),
            lock.validators[v].pubkey.0,
            "validator {v}"
        );
        assert_eq!(
            interpolate(world, last, v),
            lock.validators[v].pubkey.0,
            "validator {v}"
        );
        assert_ne!(
            interpolate(world, &as_refs[..t - 1], v),
            lock.validators[v].pubkey.0,
            "t - 1 new shares must not give the key"
        );
    }
    for name in names {
        let dir = format!("re-{name}");
        dvkg(world.root.path(), &["verify", &dir])
            .assert_code(0)
            .assert_mentions("reshare: the validator keys are unchanged")
            .assert_mentions("reshare: the previous lock is the one named");
        if !holders.contains(name) {
            let mut files: Vec<String> = std::fs::read_dir(world.path(&dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(
                files,
                ["cluster-lock.json", "confirmation.json", "transcript.bin"]
            );
        }
    }
    assert_eq!(
        &world.snapshot(previous_names),
        before,
        "a previous directory changed"
    );
    lock
}

#[test]
fn refresh_four_to_four_with_dealers_1_3_4_and_a_validator_subset() {
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 3);
    let before = world.snapshot(&ops);
    world
        .define("dkg-op1", &["--dealers", "1,3,4", "--validators", "0,2"])
        .assert_code(0)
        .assert_mentions("a reshare, 4 operators, threshold 3, 2 validators");
    let done = world.reshare(&ops, &["op1", "op3", "op4"], &BTreeMap::new(), "re");
    let lock = check_reshare(&world, &done, &ops, &ops, &[0, 2], &before, &ops);
    // The residual risk, documented: the previous shares still sign.
    let previous = world.lock("dkg-op1");
    let old: Vec<(&str, ShareIndex)> = vec![
        ("dkg-op1", previous.share_indices[0]),
        ("dkg-op2", previous.share_indices[1]),
        ("dkg-op3", previous.share_indices[2]),
    ];
    assert_eq!(interpolate(&world, &old, 0), lock.validators[0].pubkey.0);
}

#[test]
fn grow_four_to_seven_with_a_new_threshold() {
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 1);
    let new = ["op5", "op6", "op7"];
    world.identities(&new);
    let before = world.snapshot(&ops);
    world
        .define(
            "dkg-op1",
            &[
                "--add",
                "op5/operator.json",
                "--add",
                "op6/operator.json",
                "--add",
                "op7/operator.json",
                "--threshold",
                "5",
            ],
        )
        .assert_code(0)
        .assert_mentions("a reshare, 7 operators, threshold 5");
    let all = ["op1", "op2", "op3", "op4", "op5", "op6", "op7"];
    let done = world.reshare(&all, &ops, &BTreeMap::new(), "re");
    check_reshare(&world, &done, &all, &all, &[0], &before, &ops);
    // The chain: verify walks back to the DKG, and refuses a wrong link.
    dvkg(
        world.root.path(),
        &["verify", "re-op5", "--previous", "dkg-op3"],
    )
    .assert_code(0)
    .assert_mentions("previous dkg-op3: continued by the lock before it");
    dvkg(
        world.root.path(),
        &["verify", "re-op5", "--previous", "re-op1"],
    )
    .assert_code(5)
    .assert_mentions("the one before continues");
}

#[test]
fn remove_one_and_replace_a_lost_one_with_as_many_dealers_as_the_old_threshold() {
    // op3 is lost; op1 leaves but deals; op2 moves from index 2 to 1.
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 2);
    world.identities(&["op9"]);
    let before = world.snapshot(&ops);
    world
        .define(
            "dkg-op1",
            &[
                "--remove",
                "1",
                "--replace",
                "3=op9/operator.json",
                "--dealers",
                "1,2,4",
            ],
        )
        .assert_code(0)
        .assert_mentions("a reshare, 3 operators");
    let names = ["op2", "op9", "op4", "op1"];
    let done = world.reshare(&names, &["op1", "op2", "op4"], &BTreeMap::new(), "re");
    let lock = check_reshare(
        &world,
        &done,
        &names,
        &["op2", "op9", "op4"],
        &[0, 1],
        &before,
        &ops,
    );
    let previous = world.lock("dkg-op1");
    assert_ne!(
        previous.share_indices[1], lock.share_indices[0],
        "op2's index changed"
    );
}

#[test]
fn a_disjoint_new_set() {
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 1);
    let new = ["na", "nb", "nc", "nd"];
    world.identities(&new);
    let before = world.snapshot(&ops);
    let mut args = Vec::new();
    let files: Vec<String> = new.iter().map(|n| format!("{n}/operator.json")).collect();
    for f in &files {
        args.extend(["--operator", f.as_str()]);
    }
    args.extend(["--dealers", "1,2,3"]);
    world.define("dkg-op1", &args).assert_code(0);
    let names = ["na", "nb", "nc", "nd", "op1", "op2", "op3"];
    let done = world.reshare(&names, &["op1", "op2", "op3"], &BTreeMap::new(), "re");
    check_reshare(&world, &done, &names, &new, &[0], &before, &ops);

    // Retiring: refused against a directory that does not continue the
    // previous lock, with nothing erased; then op1's secrets are erased and
    // its public files kept.
    dvkg(
        world.root.path(),
        &[
            "retire",
            "--previous",
            "dkg-op1",
            "--confirm-new",
            "dkg-op2",
        ],
    )
    .assert_code(1)
    .assert_mentions("does not continue");
    assert_eq!(world.snapshot(&ops), before);
    dvkg(
        world.root.path(),
        &["retire", "--previous", "dkg-op1", "--confirm-new", "re-na"],
    )
    .assert_code(0)
    .assert_mentions("best effort")
    .assert_mentions("can still sign");
    let left: Vec<String> = world
        .snapshot(&["op1"])
        .keys()
        .map(|k| k.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert!(left.contains(&"cluster-lock.json".to_owned()), "{left:?}");
    assert!(
        !left
            .iter()
            .any(|f| f.starts_with("keystore-") || f == "password.txt" || f.ends_with(".age")),
        "{left:?}"
    );
}

#[test]
fn bad_reshare_definitions_and_inputs_are_refused_before_connecting() {
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 1);
    // Fewer dealers than the previous threshold.
    world
        .define("dkg-op1", &["--dealers", "1,2"])
        .assert_code(1)
        .assert_mentions("at least 3 previous operators must deal");
    // A previous lock whose public shares are off the polynomial (its hash
    // recomputed, so that only the algebra is wrong).
    let mut lock = world.lock("dkg-op1");
    let other = G1Point::mul_generator(&Scalar::from_u64(7)).to_bytes();
    lock.validators[0].public_shares[3] = dvkg::wire::Bytes(other);
    lock.lock_hash = dvkg::wire::Bytes(lock.compute_hash());
    std::fs::create_dir(world.path("bad")).unwrap();
    std::fs::write(
        world.path("bad/cluster-lock.json"),
        serde_json::to_string_pretty(&lock).unwrap(),
    )
    .unwrap();
    world
        .define("bad", &[])
        .assert_code(1)
        .assert_mentions("operator 4's public share is not on the polynomial");
    assert!(!world.path("reshare.json").exists());
    // A dealer whose --previous is another ceremony's directory.
    world.define("dkg-op1", &[]).assert_code(0);
    let started = Instant::now();
    let done = wait(
        world.start("op1", "reshare.json", "x", &["--previous", "bad"]),
        started,
    );
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("is not the previous lock the definition names"),
        "{}",
        done.stderr
    );
    // A dealer without --previous.
    let done = wait(world.start("op1", "reshare.json", "x", &[]), started);
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("pass --previous DIR"),
        "{}",
        done.stderr
    );
    assert!(!world.path("x").exists());
}

/// A reshare of 4 → 4 with dealers 1, 2, 3 where `faulty` injects
/// `fault`: every honest party exits 3 naming it, nothing is written, the
/// previous directories are unchanged, and a re-run succeeds.
fn reshare_fault(faulty: &str, fault: &str, needle: &str) {
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 1);
    let before = world.snapshot(&ops);
    world
        .define("dkg-op1", &["--dealers", "1,2,3"])
        .assert_code(0);
    let dealers = ["op1", "op2", "op3"];
    let done = world.reshare(&ops, &dealers, &BTreeMap::from([(faulty, fault)]), "bad");
    for (name, d) in ops.iter().zip(&done) {
        if *name == faulty {
            continue;
        }
        assert_eq!(d.code, 3, "{fault}: {name}:\n{}", d.stderr);
        assert!(d.stderr.contains(needle), "{fault}: {name}:\n{}", d.stderr);
        assert!(!world.path(&format!("bad-{name}")).exists());
    }
    assert_eq!(
        world.snapshot(&ops),
        before,
        "{fault}: a previous directory changed"
    );
    // The pending files of the aborted run are discarded, and it runs again.
    for entry in std::fs::read_dir(world.root.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(".pending-")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let done = world.reshare(&ops, &dealers, &BTreeMap::new(), "re");
    check_reshare(&world, &done, &ops, &ops, &[0], &before, &ops);
}

#[test]
fn a_dealer_dealing_its_raw_share_is_named() {
    reshare_fault(
        "op2",
        "raw-share",
        "operator 2 (op2) dealt validator 0 a constant commitment",
    );
}

#[test]
fn a_dealer_weighing_over_the_wrong_set_is_named() {
    reshare_fault(
        "op1",
        "wrong-lambda",
        "operator 1 (op1) dealt validator 0 a constant commitment",
    );
}

#[test]
fn a_dealers_bad_sub_share_is_named() {
    reshare_fault(
        "op3",
        "bad-share",
        "operator 3 (op3) sent operator 1 (op1) a share for validator 0",
    );
}

#[test]
fn reshare_faults_are_refused_for_anyone_but_a_dealer() {
    let ops = ["op1", "op2", "op3", "op4"];
    let world = World::new(&ops);
    world.dkg(&ops, 3, 1);
    world
        .define("dkg-op1", &["--dealers", "1,2,3"])
        .assert_code(0);
    let started = Instant::now();
    // Operator 4 holds but does not deal; and raw-share is no DKG fault.
    let done = wait(
        world.start("op4", "reshare.json", "x", &["--fault", "raw-share"]),
        started,
    );
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("--fault raw-share is for a reshare's dealer"),
        "{}",
        done.stderr
    );
    let done = wait(
        world.start("op1", "dkg.json", "y", &["--fault", "wrong-lambda"]),
        started,
    );
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("is for a reshare's dealer"),
        "{}",
        done.stderr
    );
    assert!(!world.path("x").exists() && !world.path("y").exists());
}
