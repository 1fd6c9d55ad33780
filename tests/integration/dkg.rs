//! The pure protocol end to end in one process: whole ceremonies for several
//! cluster sizes, the share algebra, transcript verification, dealer mode
//! against the published deposit vector.

use dvkg::ceremony::OperatorId;
use dvkg::crypto::{G1Point, PublicKey, Scalar, SecretBytes, SecretKey, Signature};
use dvkg::dkg::plan::ShareIndex;
use dvkg::dkg::signing::lagrange_at_zero;
use dvkg::dkg::transcript::{Transcript, verify_transcript};
use dvkg::dkg::{Output, dealer};
use dvkg::eth::deposit::{self, DepositEntry, Expectations};
use dvkg::eth::network::Network;
use dvkg::eth::statements::{DepositPlan, EthStatements};
use dvkg::eth::{Gwei, WithdrawalCredentials};
use dvkg::hexfmt::{self, Prefix};
use dvkg::wire;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::common::load_vector;
use crate::dkg_harness::{Hooks, dkg_cluster, dkg_cluster_at, hoodi_plan, run};

/// The share index of an output's holder.
fn index_of(o: &Output) -> ShareIndex {
    o.transcript.context.plan.share_index(o.me).unwrap()
}

fn interpolate(outputs: &[&Output], v: usize) -> Scalar {
    let signers: Vec<ShareIndex> = outputs.iter().map(|o| index_of(o)).collect();
    lagrange_at_zero(&signers)
        .iter()
        .zip(outputs)
        .fold(Scalar::ZERO, |acc, (lambda, o)| {
            acc.add(&lambda.mul(&o.secret_shares[v]))
        })
}

fn check_ceremony(n: u64, t: u64, validators: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let cluster = dkg_cluster(n, t, validators, hoodi_plan(), &mut rng);
    check_run(&cluster, n, t, validators, seed, &mut rng);
}

/// A whole ceremony of `cluster`: identical transcripts, a transcript that
/// verifies, shares that match their public shares, any t of which
/// interpolate to the validator key and t − 1 do not, and valid deposits.
fn check_run(
    cluster: &dvkg::dkg::runner::Cluster,
    n: u64,
    t: u64,
    validators: u64,
    seed: u64,
    rng: &mut StdRng,
) {
    let run = run(cluster, Hooks::default(), seed);
    assert!(run.errors.is_empty(), "n={n} t={t}: {:?}", run.errors);
    let outputs: Vec<&Output> = run.outputs.values().collect();
    assert_eq!(outputs.len(), n as usize);

    // Every operator holds the same transcript, byte for byte.
    let first = wire::encode(&outputs[0].transcript).unwrap();
    for o in &outputs {
        assert_eq!(
            wire::encode(&o.transcript).unwrap(),
            first,
            "operator {}",
            o.me
        );
    }
    let transcript = &outputs[0].transcript;
    let verified = verify_transcript(transcript, &EthStatements, rng).unwrap();
    let plan = DepositPlan::from_statements(transcript.context.plan.statements()).unwrap();
    assert_eq!(verified.group_keys.len(), validators as usize);

    for (v, record) in transcript.validators.iter().enumerate() {
        let group_key = G1Point::from_bytes(&record.group_key.0).unwrap();
        // Each operator's secret share matches its public share.
        for o in &outputs {
            assert_eq!(
                G1Point::mul_generator(&o.secret_shares[v]).to_bytes(),
                record.public_shares[transcript.context.plan.holder_position(o.me).unwrap()].0,
                "public share of operator {}",
                o.me
            );
        }
        // Any t shares interpolate to the group secret; t-1 do not.
        for _ in 0..3 {
            let mut subset = outputs.clone();
            subset.shuffle(rng);
            let secret = interpolate(&subset[..t as usize], v);
            assert_eq!(G1Point::mul_generator(&secret), group_key);
            let short = interpolate(&subset[..t as usize - 1], v);
            assert_ne!(G1Point::mul_generator(&short), group_key);
        }
        // The combined deposit signature is a valid deposit.
        let pubkey = PublicKey::from_bytes(&record.group_key.0).unwrap();
        let credentials = WithdrawalCredentials::from_bytes(&plan.withdrawal_credentials).unwrap();
        for (d, amount) in plan.amounts.iter().enumerate() {
            let signature = Signature::from_bytes(&record.signatures[d].0).unwrap();
            let entry = DepositEntry::from_signature(
                &pubkey,
                credentials,
                Gwei(*amount),
                &Network::HOODI,
                &signature,
            );
            assert!(deposit::verify_entry(&entry, &Expectations::default()).is_empty());
        }
    }
}

#[test]
fn whole_ceremonies_for_every_cluster_size() {
    for (i, (n, t)) in [(3, 2), (4, 3), (7, 5), (10, 7)].into_iter().enumerate() {
        for v in [1, 5] {
            check_ceremony(n, t, v, 100 + i as u64 * 10 + v);
        }
    }
}

#[test]
fn shares_at_ssv_operator_ids_and_beyond_32_bits() {
    // SSV evaluates shares at its operator ids; a uint64 id above 2^32
    // must work too (the batch then weighs the keys, not the commitments).
    for (i, indices) in [
        vec![11, 27, 103, 404],
        vec![5, 1 << 33, 77, (1 << 63) + 12_345],
        vec![2, 9, 14, 40, 41, 300, 1 << 40],
    ]
    .into_iter()
    .enumerate()
    {
        let n = indices.len() as u64;
        let t = n - (n - 1) / 3;
        let seed = 500 + i as u64;
        let mut rng = StdRng::seed_from_u64(seed);
        let cluster = dkg_cluster_at(&indices, t, 3, hoodi_plan(), &mut rng);
        assert_eq!(
            cluster
                .context
                .plan
                .indices()
                .iter()
                .map(|x| x.get())
                .collect::<Vec<_>>(),
            indices
        );
        check_run(&cluster, n, t, 3, seed, &mut rng);
    }
}

#[test]
fn several_deposits_per_validator_are_all_signed() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut plan = hoodi_plan();
    plan.amounts = vec![1_000_000_000, 31_000_000_000];
    let cluster = dkg_cluster(4, 3, 2, plan, &mut rng);
    let run = run(&cluster, Hooks::default(), 5);
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let transcript = &run.outputs.values().next().unwrap().transcript;
    verify_transcript(transcript, &EthStatements, &mut rng).unwrap();
    assert!(
        transcript
            .validators
            .iter()
            .all(|r| r.signatures.len() == 2)
    );
}

#[test]
fn verify_transcript_fails_on_changed_bytes() {
    let mut rng = StdRng::seed_from_u64(9);
    let cluster = dkg_cluster(3, 2, 1, hoodi_plan(), &mut rng);
    let run = run(&cluster, Hooks::default(), 9);
    let transcript = run.outputs.values().next().unwrap().transcript.clone();
    verify_transcript(&transcript, &EthStatements, &mut rng).unwrap();
    let dir = tempfile::tempdir().unwrap();
    use dvkg::ceremony::transcript_file;
    let bytes = wire::encode(&transcript).unwrap();
    // Every region of the encoding, then random positions.
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(bytes.len() / 97 + 1).collect();
    positions.extend((0..60).map(|_| rng.gen_range(0..bytes.len())));
    for position in positions {
        let mut changed = bytes.clone();
        changed[position] ^= 1 << rng.gen_range(0..8);
        let Ok(decoded) = wire::decode::<Transcript>(&changed, u64::MAX) else {
            continue;
        };
        assert!(
            verify_transcript(&decoded, &EthStatements, &mut rng).is_err(),
            "flipping a bit at byte {position} of {} went unnoticed",
            bytes.len()
        );
        // The same transcript as a file, verified as it is read.
        let path = dir.path().join("changed.bin");
        std::fs::write(&path, transcript_file::to_bytes(&decoded).unwrap()).unwrap();
        let checked = transcript_file::verify_file(&path, &EthStatements, &mut rng).unwrap();
        assert!(
            checked.verdict.is_err(),
            "flipping a bit at byte {position} went unnoticed in the file"
        );
    }
}

/// A binary transcript file is verified as it is decoded
/// (`transcript_file::verify_file`, no deal or partial signature kept):
/// the same verdict as in memory, and for a forgery the same culprit with
/// the same evidence, read again from the file when it was not kept.
#[test]
fn a_transcript_file_verifies_as_a_stream_as_in_memory() {
    use dvkg::ceremony::transcript_file;
    use dvkg::dkg::DkgError;
    use dvkg::dkg::evidence::verify_evidence;
    use dvkg::dkg::transcript::TranscriptError;

    use crate::dkg_harness::{Cluster, resign};

    let mut rng = StdRng::seed_from_u64(152);
    let cluster = dkg_cluster(4, 3, 6, hoodi_plan(), &mut rng);
    let transcript = run(&cluster, Hooks::default(), 152)
        .outputs
        .into_values()
        .next()
        .unwrap()
        .transcript;
    let dir = tempfile::tempdir().unwrap();
    let mut verify_both = |name: &str, t: &Transcript| {
        let path = dir.path().join(name);
        let bytes = transcript_file::to_bytes(t).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let checked = transcript_file::verify_file(&path, &EthStatements, &mut rng).unwrap();
        let in_memory = verify_transcript(t, &EthStatements, &mut rng);
        // The bytes verified as a stream (what the fuzz target compares).
        let streamed = transcript_file::verify_bytes(&bytes, &EthStatements, &mut rng).unwrap();
        assert_eq!(
            streamed.verdict.as_ref().err().map(ToString::to_string),
            checked.verdict.as_ref().err().map(ToString::to_string),
            "{name}"
        );
        (checked, in_memory)
    };

    let (checked, in_memory) = verify_both("good.bin", &transcript);
    let verified = in_memory.unwrap();
    assert_eq!(verified.hash, transcript.hash());
    assert_eq!(checked.verdict.unwrap(), verified);
    // What the checks after verification read is all there; the bulk is not.
    let kept = &checked.transcript;
    assert_eq!(kept.context, transcript.context);
    assert_eq!(kept.validators, transcript.validators);
    assert_eq!(kept.finals, transcript.finals);
    assert!(kept.deals.iter().all(|d| d.body.validators.is_empty()));
    assert!(kept.partials.iter().all(|p| p.body.signatures.is_empty()));

    // Forgeries re-signed by their senders, each named the same way on both
    // paths, with evidence that convicts the sender.
    type Forge = fn(&Cluster, &mut Transcript) -> OperatorId;
    type Expected = fn(&DkgError) -> bool;
    let forgeries: [(&str, Forge, Expected); 2] = [
        (
            "a partial signature of another validator",
            |cluster, t| {
                let other = t.partials[1].body.signatures[1][0];
                t.partials[1].body.signatures[0][0] = other;
                resign(cluster, &mut t.partials[1]);
                t.partials[1].header.sender
            },
            |e| matches!(e, DkgError::InvalidPartialSignature { validator: 0, .. }),
        ),
        (
            "a proof of knowledge of another validator",
            |cluster, t| {
                let other = t.deals[2].body.validators[4].proof;
                t.deals[2].body.validators[3].proof = other;
                resign(cluster, &mut t.deals[2]);
                t.deals[2].header.sender
            },
            |e| matches!(e, DkgError::InvalidProof { validator: 3, .. }),
        ),
    ];
    for (what, forge, expected) in forgeries {
        let mut forged = transcript.clone();
        let culprit = forge(&cluster, &mut forged);
        let (checked, in_memory) = verify_both("forged.bin", &forged);
        let (Err(TranscriptError::Protocol(streamed)), Err(TranscriptError::Protocol(in_memory))) =
            (checked.verdict, in_memory)
        else {
            panic!("{what}: not refused as a protocol fault on both paths");
        };
        assert!(expected(&streamed), "{what}: {streamed}");
        assert_eq!(streamed.culprit(), Some(culprit), "{what}");
        assert_eq!(streamed.evidence(), in_memory.evidence(), "{what}");
        let evidence = streamed.evidence().expect("a blame carries evidence");
        let verdict = verify_evidence(&cluster.context, cluster.statements(), evidence).unwrap();
        assert_eq!(verdict.culprit, culprit, "{what}");
        assert!(verdict.proven, "{what}");
    }
}

#[test]
fn transcript_hellos_name_the_fault_as_round_1_does() {
    // A hello re-signed by its sender with another version, another index or
    // another definition hash: verification names the sender with the same
    // error as an operator receiving it in round 1 (protocol.md §12, item 6).
    use dvkg::dkg::DkgError;
    use dvkg::dkg::transcript::TranscriptError;
    let mut rng = StdRng::seed_from_u64(10);
    let cluster = dkg_cluster(3, 2, 1, hoodi_plan(), &mut rng);
    let run = run(&cluster, Hooks::default(), 10);
    let transcript = run.outputs.values().next().unwrap().transcript.clone();
    type Change = fn(&mut dvkg::dkg::messages::Hello);
    let changes: [(&str, Change); 3] = [
        ("version", |h| h.version += 1),
        ("index", |h| h.operator = OperatorId::try_from(3u8).unwrap()),
        ("definition", |h| h.definition_hash.0[0] ^= 1),
    ];
    for (what, change) in changes {
        let mut changed = transcript.clone();
        change(&mut changed.hellos[1].body);
        crate::dkg_harness::resign(&cluster, &mut changed.hellos[1]);
        let err = verify_transcript(&changed, &EthStatements, &mut rng).unwrap_err();
        let TranscriptError::Protocol(err) = err else {
            panic!("{what}: {err}");
        };
        assert_eq!(
            err.culprit(),
            Some(OperatorId::try_from(2u8).unwrap()),
            "{what}"
        );
        let expected = if what == "definition" {
            matches!(err, DkgError::DefinitionMismatch { .. })
        } else {
            matches!(err, DkgError::WrongMessage { .. })
        };
        assert!(expected, "{what}: {err}");
    }
}

/// Dealer mode shares the published deposit vector's secret key 3-of-4; the
/// threshold signature must equal the published one byte for byte.
#[test]
fn dealer_mode_reproduces_the_published_deposit_signature() {
    let vector = load_vector("deposit.json");
    let mut raw = hexfmt::decode_fixed::<32>(
        vector["signing_secret_key"].as_str().unwrap(),
        Prefix::Optional,
    )
    .unwrap();
    let secret_key = SecretKey::from_bytes(&SecretBytes::new(&mut raw)).unwrap();
    let secret = Scalar::from_secret_key(&secret_key);
    let published = deposit::parse_entry(&vector["entries"][0]).unwrap();
    assert_eq!(published.withdrawal_credentials[0], 0x02);
    let credentials = WithdrawalCredentials::from_bytes(&published.withdrawal_credentials).unwrap();
    let plan = DepositPlan::new(published.fork_version, credentials, &[published.amount]);

    let mut rng = StdRng::seed_from_u64(11);
    let cluster = dkg_cluster(4, 3, 1, plan, &mut rng);
    let parts = dealer::additive_split(&secret, 4, &mut rng);
    let constants = parts.into_iter().map(|p| vec![p]).collect();
    let run = run(
        &cluster,
        Hooks {
            constants: Some(constants),
            ..Hooks::default()
        },
        11,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let transcript = &run.outputs.values().next().unwrap().transcript;
    verify_transcript(transcript, &EthStatements, &mut rng).unwrap();
    let record = &transcript.validators[0];
    assert_eq!(record.group_key.0, published.pubkey);
    assert_eq!(record.signatures[0].0, published.signature);
    let pubkey = PublicKey::from_bytes(&record.group_key.0).unwrap();
    let signature = Signature::from_bytes(&record.signatures[0].0).unwrap();
    let mut entry = DepositEntry::from_signature(
        &pubkey,
        credentials,
        published.amount,
        &Network::MAINNET,
        &signature,
    );
    entry.deposit_cli_version = published.deposit_cli_version.clone();
    assert_eq!(entry, published);
}

mod share_algebra {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any t of n shares of a random polynomial, at any distinct
        /// nonzero indices (slot numbers or 64-bit ids), reconstruct its
        /// constant; t-1 do not; a tampered share fails against the
        /// commitments.
        #[test]
        fn any_t_shares_reconstruct(
            seed in any::<u64>(),
            n in 3u8..12,
            pick in any::<u64>(),
            wide in any::<bool>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let t = (n / 2 + 1).max(2) as usize;
            let poly = dvkg::dkg::vss::Polynomial::random(t, &mut rng);
            let commitments = poly.commitments();
            let mut ids: Vec<ShareIndex> = Vec::new();
            while ids.len() < n as usize {
                let value = if wide { rand::RngCore::next_u64(&mut rng) } else { u64::from(ids.len() as u8 + 1) };
                if let Ok(index) = ShareIndex::try_from(value)
                    && !ids.contains(&index)
                {
                    ids.push(index);
                }
            }
            ids.shuffle(&mut StdRng::seed_from_u64(pick));
            let chosen = &ids[..t];
            let shares: Vec<Scalar> = chosen.iter().map(|&i| poly.evaluate(i)).collect();
            let lambdas = lagrange_at_zero(chosen);
            let secret = lambdas.iter().zip(&shares).fold(Scalar::ZERO, |acc, (l, s)| acc.add(&l.mul(s)));
            prop_assert_eq!(&secret, poly.constant());
            let fewer = lagrange_at_zero(&chosen[..t - 1]);
            let guess = fewer.iter().zip(&shares).fold(Scalar::ZERO, |acc, (l, s)| acc.add(&l.mul(s)));
            prop_assert_ne!(&guess, poly.constant());
            for (&i, share) in chosen.iter().zip(&shares) {
                prop_assert!(dvkg::dkg::vss::share_valid(i, &commitments, share));
                prop_assert!(!dvkg::dkg::vss::share_valid(i, &commitments, &share.add(&Scalar::ONE)));
            }
        }
    }
}

#[test]
fn outputs_do_not_depend_on_the_number_of_cores() {
    // Rounds spread their per-validator work over rayon's pool; every
    // random draw happens before, in order, so the same RNG gives the same
    // transcript and shares on one core or many.
    let cluster = dkg_cluster(4, 3, 9, hoodi_plan(), &mut StdRng::seed_from_u64(41));
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(&cluster, Hooks::default(), 41))
    };
    let (one, four) = (on(1), on(4));
    assert!(one.errors.is_empty() && four.errors.is_empty());
    for (a, b) in one.outputs.values().zip(four.outputs.values()) {
        assert_eq!(a.transcript.hash(), b.transcript.hash());
        assert_eq!(a.secret_shares, b.secret_shares);
    }
}

/// `transcript.bin` (formats.md §8.3): the magic, then the compact
/// encoding; it decodes to the same transcript (same hash, still
/// verifying), from bytes and from a file, as does the JSON view; a
/// truncated file, a trailing byte and a file of neither format are
/// refused; and a validator costs at most 3 KB at n = 4, t = 3 (issue 15).
#[test]
fn the_transcript_file_round_trips_compactly() {
    use dvkg::ceremony::transcript_file::{self, Format, MAGIC, TranscriptFileError};

    let transcript_of = |v: u64, seed: u64| -> Transcript {
        let mut rng = StdRng::seed_from_u64(seed);
        let cluster = dkg_cluster(4, 3, v, hoodi_plan(), &mut rng);
        let run = run(&cluster, Hooks::default(), seed);
        run.outputs.into_values().next().unwrap().transcript
    };
    let small = transcript_of(8, 150);
    let large = transcript_of(24, 151);
    let small_bytes = transcript_file::to_bytes(&small).unwrap();
    let large_bytes = transcript_file::to_bytes(&large).unwrap();
    assert!(small_bytes.starts_with(MAGIC));
    let per_validator = (large_bytes.len() - small_bytes.len()) / 16;
    assert!(
        per_validator <= 3 * 1024,
        "{per_validator} bytes per validator"
    );
    // Against the JSON view, which spells every byte as two.
    let json = serde_json::to_vec(&large).unwrap();
    assert!(large_bytes.len() * 2 < json.len());

    let decoded = transcript_file::from_bytes(&large_bytes).unwrap();
    assert_eq!(decoded, large);
    assert_eq!(decoded.hash(), large.hash());
    verify_transcript(&decoded, &EthStatements, &mut StdRng::seed_from_u64(1)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let binary = write("transcript.bin", &large_bytes);
    assert_eq!(transcript_file::format_of(&binary).unwrap(), Format::Binary);
    assert_eq!(transcript_file::read(&binary).unwrap(), large);
    let view = write("transcript.json", &json);
    assert_eq!(transcript_file::format_of(&view).unwrap(), Format::Json);
    assert_eq!(transcript_file::read(&view).unwrap(), large);

    let truncated = write("truncated.bin", &large_bytes[..large_bytes.len() - 1]);
    assert!(matches!(
        transcript_file::read(&truncated),
        Err(TranscriptFileError::Binary { .. })
    ));
    let mut extra = large_bytes.clone();
    extra.push(0);
    let trailing = write("trailing.bin", &extra);
    let err = transcript_file::read(&trailing).unwrap_err();
    assert!(err.to_string().contains("trailing bytes"), "{err}");
    let neither = write("neither.bin", b"dvkg transcrip\x00 not this");
    assert!(matches!(
        transcript_file::read(&neither),
        Err(TranscriptFileError::Unknown { .. })
    ));
    // An output directory prefers transcript.bin, and falls back on an
    // earlier dvkg's transcript.json.
    assert_eq!(transcript_file::in_dir(dir.path()), binary);
    std::fs::remove_file(&binary).unwrap();
    assert_eq!(transcript_file::in_dir(dir.path()), view);
}
