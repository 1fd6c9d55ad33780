//! Frozen formats: whole dealer-mode ceremonies with a fixed RNG, written as
//! JSON under `ceremony-specs/vectors/dkg/`, with every message's bytes, the
//! polynomials and proof nonces behind them, and the shares, public shares,
//! signatures, transcript and lock that result.
//!
//! Each test regenerates its vector and compares it with the file: a change
//! to any encoding, hash input or derivation shows up here. When a format
//! changes on purpose, rewrite the files with `DVKG_UPDATE_VECTORS=1 cargo
//! test vectors`, bump the version concerned, and say so in formats.md.
//!
//! Each test also checks its vector on its own terms, from the JSON alone,
//! the way a second implementation would: every message decodes and is
//! signed by its sender; each dealer's shares lie on the polynomial whose
//! commitments it broadcast; the proofs' nonces give their R; any t shares
//! interpolate to the validator secret; and the combined signatures are that
//! secret's signatures.

use std::collections::BTreeMap;
use std::sync::Arc;

use dvkg::ceremony::definition::ssv::{NewSsv, SsvOperator};
use dvkg::ceremony::definition::{ClusterDefinition, NewDefinition};
use dvkg::ceremony::keyshares;
use dvkg::ceremony::lock::ClusterLock;
use dvkg::crypto::identity::IdentityKey;
use dvkg::crypto::{G1Point, G2Point, Scalar, SecretBytes, SecretKey};
use dvkg::dkg::messages::{AnySigned, MessageKind};
use dvkg::dkg::plan::ShareIndex;
use dvkg::dkg::runner::{Cluster, Hooks, run};
use dvkg::dkg::signing::{self, lagrange_at_zero};
use dvkg::dkg::vss;
use dvkg::eth::statements::EthStatements;
use dvkg::eth::{ExecutionAddress, Gwei, WithdrawalKind};
use dvkg::identity::OperatorIdentity;
use dvkg::ssv::dealer::test_operator_key;
use dvkg::ssv::{Ciphertext, CreatedAt, verify_keyshares};
use dvkg::store::sealed;
use dvkg::wire;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{load_vector, vector_path};

const VALIDATORS: u64 = 2;

fn hex32(scalar: &Scalar) -> String {
    hex::encode(scalar.to_bytes_be().expose_secret())
}

/// The SSV owner of the SSV vector.
const OWNER: &str = "0x382f6FF5B9a29FcF1Dd2bf8B86C3234Dc7ed2Df6";
/// Its first nonce.
const FIRST_NONCE: u64 = 8;

/// A deterministic ceremony: identities, dealer constants and the runner
/// all from fixed seeds. With `ssv_ids`, an SSV cluster of operators with
/// those ids and dvkg's test operator keys, whose outputs include
/// `keyshares.json`.
#[allow(clippy::needless_range_loop)]
fn generate(seed: u64, ssv_ids: Option<&[u64]>) -> Value {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = ssv_ids.map_or(4, <[u64]>::len);
    let t = n - (n - 1) / 3;
    let identities: Vec<OperatorIdentity> = (1..=n)
        .map(|i| OperatorIdentity {
            key: IdentityKey::generate(&mut rng),
            age: sealed::generate_identity(&mut rng).unwrap(),
            name: format!("vector-{i}"),
            address: format!("127.0.0.1:{}", 9000 + i),
            ssv: ssv_ids.map(|ids| SsvOperator {
                operator_id: ids[i - 1],
                operator_key: test_operator_key(i - 1)
                    .unwrap()
                    .public_key()
                    .registered()
                    .to_owned(),
            }),
        })
        .collect();
    let definition = ClusterDefinition::create(NewDefinition {
        name: "dvkg test vector".into(),
        operators: identities.iter().map(OperatorIdentity::record).collect(),
        threshold: Some(t as u64),
        validators: VALIDATORS,
        network: "hoodi".parse().unwrap(),
        withdrawal_kind: WithdrawalKind::Compounding,
        withdrawal_address: ExecutionAddress::from_bytes([0x42; 20]),
        fee_recipient: None,
        amounts: vec![Gwei(32_000_000_000)],
        ssv: ssv_ids.map(|_| NewSsv {
            owner: OWNER.parse().unwrap(),
            nonce: FIRST_NONCE,
            created_at: CreatedAt::parse("2026-12-01T00:00:00Z").unwrap(),
        }),
    })
    .unwrap();
    let context = definition.to_context().unwrap();
    let seeds: Vec<String> = identities
        .iter()
        .map(|i| hex::encode(i.key.to_seed().expose_secret()))
        .collect();
    let keys: Vec<IdentityKey> = identities
        .iter()
        .map(|i| IdentityKey::from_seed(&i.key.to_seed()))
        .collect();
    let constants: Vec<Vec<Scalar>> = (0..n)
        .map(|_| (0..VALIDATORS).map(|_| Scalar::random(&mut rng)).collect())
        .collect();
    let cluster = Cluster::new(context.clone(), keys, Arc::new(EthStatements));
    let result = run(
        &cluster,
        Hooks {
            constants: Some(constants.clone()),
            ..Hooks::default()
        },
        seed,
    );
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    let outputs = &result.outputs;
    let transcript = &outputs.values().next().unwrap().transcript;
    let plan = &transcript.context.plan;

    let messages: Vec<Value> = result
        .sent
        .iter()
        .map(|(from, to, message)| {
            json!({
                "kind": message.kind().to_string(),
                "from": from.get(),
                "to": to.map(|t| t.get()),
                "bytes": hex::encode(message.encode().unwrap()),
            })
        })
        .collect();
    // Each dealer's polynomials, recovered from its shares (the vector
    // states them for a reader to check against the commitments), and each
    // proof's nonce k = z − c·a_0.
    let session = transcript.session_id();
    let mut dealers = Vec::new();
    for (position, deal) in transcript.deals.iter().enumerate() {
        let dealer = deal.header.sender;
        let parsed = vss::parse_deal(plan, deal).unwrap();
        let mut polynomials = Vec::new();
        let mut nonces = Vec::new();
        for v in 0..VALIDATORS as usize {
            let shares: Vec<(ShareIndex, Scalar)> = result
                .sent
                .iter()
                .filter_map(|(from, to, m)| match m {
                    AnySigned::Shares(b) if *from == dealer => {
                        let x = plan.share_index(b.body.recipient)?;
                        let _ = to;
                        Some((x, Scalar::from_bytes_be(b.body.shares[v].expose_secret())?))
                    }
                    _ => None,
                })
                .collect();
            let coefficients = interpolate_coefficients(&shares[..t]);
            assert_eq!(&coefficients[0], &constants[position][v]);
            let (r, z) = &parsed.proofs[v];
            let c0 = parsed.commitments[v][0];
            let c = vss::proof_challenge(plan.kind(), &session, v, dealer, &c0, r);
            let k = z.sub(&c.mul(&coefficients[0]));
            assert_eq!(G1Point::mul_generator(&k), *r);
            polynomials.push(coefficients.iter().map(hex32).collect::<Vec<_>>());
            nonces.push(hex32(&k));
        }
        dealers.push(json!({
            "dealer": dealer.get(),
            "coefficients": polynomials,
            "proof_nonces": nonces,
        }));
    }
    let secret_shares: BTreeMap<String, Vec<String>> = outputs
        .iter()
        .map(|(op, o)| {
            (
                op.get().to_string(),
                o.secret_shares.iter().map(hex32).collect(),
            )
        })
        .collect();
    let group_secrets: Vec<String> = (0..VALIDATORS as usize)
        .map(|v| hex32(&constants.iter().fold(Scalar::ZERO, |acc, c| acc.add(&c[v]))))
        .collect();
    let encoded = wire::encode(transcript).unwrap();
    // The first message as it travels: inside a frame.
    let (first_from, _, first) = &result.sent[0];
    let frame = wire::encode(&dvkg::net::Frame {
        version: dvkg::net::FRAME_VERSION,
        ceremony: transcript.context.definition_hash,
        kind: dvkg::ceremony::driver::frame_kind(first.kind()),
        sender: *first_from,
        payload: first.encode().unwrap(),
    })
    .unwrap();
    let mut vector = json!({
        "description": "a dealer-mode DKG with a fixed RNG (rand 0.8 StdRng, ChaCha12); every message as sent, and what results",
        "protocol_version": dvkg::dkg::messages::PROTOCOL_VERSION,
        "transcript_version": dvkg::dkg::transcript::TRANSCRIPT_VERSION,
        "seed": seed,
        "inputs": {
            "context": serde_json::to_value(&transcript.context).unwrap(),
            "identity_seeds": seeds,
            "dealer_constants": constants.iter().map(|c| c.iter().map(hex32).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
        "dealers": dealers,
        "messages": messages,
        "frame_of_the_first_message": hex::encode(&frame),
        "outputs": {
            "session_id": hex::encode(session),
            "group_secrets": group_secrets,
            "secret_shares": secret_shares,
            "validators": serde_json::to_value(&transcript.validators).unwrap(),
            "transcript_hash": hex::encode(transcript.hash()),
            "transcript_encoding_sha256": hex::encode(Sha256::digest(&encoded)),
            "transcript_encoding_bytes": encoded.len(),
        },
    });
    let lock = ClusterLock::new(&definition, transcript).unwrap();
    vector["outputs"]["lock_hash"] = json!(hex::encode(lock.lock_hash.0));
    vector["outputs"]["lock"] = serde_json::to_value(&lock).unwrap();
    if ssv_ids.is_some() {
        let text = keyshares::file_text(&lock, transcript).unwrap().unwrap();
        vector["outputs"]["keyshares_json"] = json!(text);
    }
    vector
}

/// The coefficients of the polynomial through `points` (as many as its
/// degree + 1), by Lagrange interpolation.
fn interpolate_coefficients(points: &[(ShareIndex, Scalar)]) -> Vec<Scalar> {
    let t = points.len();
    let mut out = vec![Scalar::ZERO; t];
    for (i, (xi, yi)) in points.iter().enumerate() {
        // basis_i(x) = Π_{j≠i} (x − x_j) / (x_i − x_j), as coefficients.
        let mut basis = vec![Scalar::ONE];
        let mut denominator = Scalar::ONE;
        for (j, (xj, _)) in points.iter().enumerate() {
            if i == j {
                continue;
            }
            let mut next = vec![Scalar::ZERO; basis.len() + 1];
            for (k, b) in basis.iter().enumerate() {
                next[k + 1] = next[k + 1].add(b);
                next[k] = next[k].sub(&b.mul(&xj.scalar()));
            }
            basis = next;
            denominator = denominator.mul(&xi.scalar().sub(&xj.scalar()));
        }
        let scale = yi.mul(&denominator.invert().unwrap());
        for (k, b) in basis.iter().enumerate() {
            out[k] = out[k].add(&b.mul(&scale));
        }
    }
    out
}

/// Compares the generated vector with the file (or writes it with
/// `DVKG_UPDATE_VECTORS=1`).
fn frozen(name: &str, generated: &Value) -> Value {
    let path = vector_path(name);
    if std::env::var_os("DVKG_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = serde_json::to_string_pretty(generated).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    let stored = load_vector(name);
    if &stored != generated {
        let differing: Vec<String> = [
            "inputs",
            "dealers",
            "messages",
            "frame_of_the_first_message",
            "outputs",
        ]
        .iter()
        .filter(|k| stored[**k] != generated[**k])
        .map(|k| k.to_string())
        .collect();
        panic!(
            "{name} no longer matches what the code computes (differs in: {differing:?}); \
             if the format changed on purpose, run DVKG_UPDATE_VECTORS=1 cargo test vectors, \
             bump the version and document it in formats.md"
        );
    }
    stored
}

/// Checks a vector from its JSON alone.
fn check(vector: &Value) {
    let context: dvkg::dkg::Context =
        serde_json::from_value(vector["inputs"]["context"].clone()).unwrap();
    let plan = &context.plan;
    let t = plan.params().threshold();
    let decode = |h: &Value| hex::decode(h.as_str().unwrap()).unwrap();
    let scalar = |h: &Value| {
        let bytes: [u8; 32] = decode(h).try_into().unwrap();
        Scalar::from_bytes_be(&bytes).unwrap()
    };
    // The identity seeds are the roster's keys.
    for (seed, slot) in vector["inputs"]["identity_seeds"]
        .as_array()
        .unwrap()
        .iter()
        .zip(plan.slots())
    {
        let mut raw: [u8; 32] = decode(seed).try_into().unwrap();
        let key = IdentityKey::from_seed(&SecretBytes::new(&mut raw));
        assert_eq!(Some(&key.public()), plan.key(*slot));
    }
    // The frame carries the first message whole.
    let frame: dvkg::net::Frame =
        wire::decode(&decode(&vector["frame_of_the_first_message"]), u64::MAX).unwrap();
    assert_eq!(frame.version, dvkg::net::FRAME_VERSION);
    assert_eq!(frame.ceremony, context.definition_hash);
    assert_eq!(hex::encode(&frame.payload), vector["messages"][0]["bytes"]);
    // Every message decodes, re-encodes to itself, and is signed by its
    // sender.
    let mut deals = BTreeMap::new();
    let mut shares = Vec::new();
    for m in vector["messages"].as_array().unwrap() {
        let kind = MessageKind::ALL
            .into_iter()
            .find(|k| k.to_string() == m["kind"].as_str().unwrap())
            .unwrap();
        let bytes = decode(&m["bytes"]);
        let message = AnySigned::decode(kind, &bytes, u64::MAX).unwrap();
        assert_eq!(message.encode().unwrap(), bytes);
        let sender = message.header().sender;
        assert_eq!(u64::from(sender.get()), m["from"].as_u64().unwrap());
        let key = plan.key(sender).unwrap();
        let signed = match &message {
            AnySigned::Hello(x) => x.signature_valid(key),
            AnySigned::Deal(x) => x.signature_valid(key),
            AnySigned::Shares(x) => x.signature_valid(key),
            AnySigned::Ack(x) => x.signature_valid(key),
            AnySigned::Partials(x) => x.signature_valid(key),
            AnySigned::Finalize(x) => x.signature_valid(key),
        };
        assert!(signed, "a {kind} message of operator {sender}");
        match message {
            AnySigned::Deal(d) => {
                deals.insert(sender, vss::parse_deal(plan, &d).unwrap());
            }
            AnySigned::Shares(s) => shares.push(s),
            _ => {}
        }
    }
    // Each dealer's shares and commitments come from the stated polynomial;
    // the nonces give the proofs' R.
    for dealer in vector["dealers"].as_array().unwrap() {
        let slot =
            dvkg::ceremony::OperatorId::try_from(dealer["dealer"].as_u64().unwrap() as u8).unwrap();
        let deal = &deals[&slot];
        for (v, coefficients) in dealer["coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let a: Vec<Scalar> = coefficients
                .as_array()
                .unwrap()
                .iter()
                .map(scalar)
                .collect();
            for (k, c) in a.iter().enumerate() {
                assert_eq!(G1Point::mul_generator(c), deal.commitments[v][k]);
            }
            let k = scalar(&dealer["proof_nonces"][v]);
            assert_eq!(G1Point::mul_generator(&k), deal.proofs[v].0);
            for bundle in shares.iter().filter(|b| b.header.sender == slot) {
                let x = plan.share_index(bundle.body.recipient).unwrap().scalar();
                let expected = a
                    .iter()
                    .rev()
                    .fold(Scalar::ZERO, |acc, c| acc.mul(&x).add(c));
                let got = Scalar::from_bytes_be(bundle.body.shares[v].expose_secret()).unwrap();
                assert_eq!(got, expected);
            }
        }
    }
    // Any t holders' secret shares interpolate to the validator secret,
    // whose public key and signatures the transcript records.
    let outputs = &vector["outputs"];
    let validators: Vec<dvkg::dkg::transcript::ValidatorRecord> =
        serde_json::from_value(outputs["validators"].clone()).unwrap();
    for (v, record) in validators.iter().enumerate() {
        let secret = scalar(&outputs["group_secrets"][v]);
        assert_eq!(
            G1Point::mul_generator(&secret).to_bytes(),
            record.group_key.0
        );
        let chosen: Vec<(ShareIndex, Scalar)> = plan
            .holders()
            .iter()
            .rev()
            .take(t)
            .map(|h| {
                (
                    plan.share_index(*h).unwrap(),
                    scalar(&outputs["secret_shares"][h.get().to_string()][v]),
                )
            })
            .collect();
        let indices: Vec<ShareIndex> = chosen.iter().map(|(x, _)| *x).collect();
        let interpolated = lagrange_at_zero(&indices)
            .iter()
            .zip(&chosen)
            .fold(Scalar::ZERO, |acc, (l, (_, s))| acc.add(&l.mul(s)));
        assert_eq!(interpolated, secret);
        let key = SecretKey::from_bytes(&secret.to_bytes_be()).unwrap();
        let group_key = G1Point::from_bytes(&record.group_key.0).unwrap();
        let session: [u8; 32] = decode(&outputs["session_id"]).try_into().unwrap();
        let messages = signing::messages(plan, &EthStatements, &session, v, &group_key).unwrap();
        for (message, signature) in messages.iter().zip(&record.signatures) {
            assert_eq!(key.sign(message).to_bytes(), signature.0);
            assert_eq!(G2Point::hash(message).mul(&secret).to_bytes(), signature.0);
        }
    }
    // Each holder's attachments (an SSV cluster's) decrypt, under its test
    // operator key, to its own secret shares.
    if plan.attachments().is_some() {
        for m in vector["messages"].as_array().unwrap() {
            if m["kind"] != MessageKind::Partials.to_string() {
                continue;
            }
            let AnySigned::Partials(p) =
                AnySigned::decode(MessageKind::Partials, &decode(&m["bytes"]), u64::MAX).unwrap()
            else {
                unreachable!()
            };
            let slot = p.header.sender;
            let private = test_operator_key(slot.position()).unwrap();
            assert_eq!(p.body.attachments.len(), VALIDATORS as usize);
            for (v, attachment) in p.body.attachments.iter().enumerate() {
                let ciphertext = Ciphertext::from_slice(&attachment.0).unwrap();
                let (share, _) = private.decrypt_share(&ciphertext).unwrap();
                let expected = scalar(&outputs["secret_shares"][slot.get().to_string()][v]);
                assert_eq!(
                    share.to_bytes().expose_secret(),
                    expected.to_bytes_be().expose_secret()
                );
            }
        }
    }
}

#[test]
fn dkg_at_slot_indices_is_frozen() {
    let vector = frozen("dkg/dealer-4-operators.json", &generate(2026, None));
    check(&vector);
    // The lock in the vector is the lock the code writes, hash included.
    let lock: ClusterLock = serde_json::from_value(vector["outputs"]["lock"].clone()).unwrap();
    assert_eq!(
        hex::encode(lock.compute_hash()),
        vector["outputs"]["lock_hash"]
    );
}

#[test]
fn dkg_at_ssv_operator_ids_is_frozen() {
    let vector = frozen(
        "dkg/dealer-ssv-ids.json",
        &generate(2027, Some(&[11, 27, 103, 404])),
    );
    check(&vector);
    // The keyshares.json in the vector passes every check SSV's tools make.
    let text = vector["outputs"]["keyshares_json"].as_str().unwrap();
    let owner = OWNER.parse().unwrap();
    for (position, id) in [11u64, 27, 103, 404].iter().enumerate() {
        let private = test_operator_key(position).unwrap();
        let checks = verify_keyshares(text, &owner, FIRST_NONCE, Some(&private));
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.ok())
            .map(|c| c.detail())
            .collect();
        assert!(failed.is_empty(), "operator {id}: {failed:?}");
    }
    // And it is the file the lock and transcript build.
    let lock: ClusterLock = serde_json::from_value(vector["outputs"]["lock"].clone()).unwrap();
    assert_eq!(
        lock.share_indices
            .iter()
            .map(|i| i.get())
            .collect::<Vec<_>>(),
        [11, 27, 103, 404]
    );
    assert_eq!(
        hex::encode(lock.compute_hash()),
        vector["outputs"]["lock_hash"]
    );
}
