//! The fuzz targets' bodies (`dvkg::fuzzing`) on every input that ever
//! crashed one (`fuzz/regressions/<target>/`), on a valid example of each
//! input, and on a few thousand seeded mutations of those examples: none may
//! panic. The long runs are `scripts/fuzz.sh`'s (cargo fuzz, not in CI).

use std::path::Path;

use dvkg::fuzzing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn saved_crashes_do_not_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for target in fuzzing::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            fuzzing::run(target, &data);
        }
    }
}

#[test]
fn seeds_are_accepted_and_mutations_do_not_crash() {
    let seeds = fuzzing::seeds();
    for target in fuzzing::TARGETS {
        assert!(
            seeds.iter().any(|(t, _, _)| *t == target),
            "no seed for {target}"
        );
    }
    let mut rng = StdRng::seed_from_u64(5);
    for (target, name, data) in &seeds {
        fuzzing::run(target, data);
        let mutations = if *target == "transcript" { 40 } else { 300 };
        for _ in 0..mutations {
            let mut mutated = data.clone();
            match rng.gen_range(0..4) {
                0 => {
                    let i = rng.gen_range(0..mutated.len());
                    mutated[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => mutated.truncate(rng.gen_range(0..mutated.len())),
                2 => {
                    let i = rng.gen_range(0..mutated.len());
                    mutated[i] = rng.r#gen();
                }
                _ => {
                    let i = rng.gen_range(0..mutated.len());
                    let byte = mutated[i];
                    mutated.insert(i, byte);
                }
            }
            let result = std::panic::catch_unwind(|| fuzzing::run(target, &mutated));
            assert!(
                result.is_ok(),
                "{target} panicked on a mutation of seed {name}: {:?}",
                String::from_utf8_lossy(&mutated)
            );
        }
    }
}
