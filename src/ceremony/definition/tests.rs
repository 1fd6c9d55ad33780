//! Tests of the cluster definition.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::crypto::identity::IdentityKey;

const ADDRESS: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn record(rng: &mut StdRng, i: usize) -> OperatorRecord {
    let key = IdentityKey::generate(rng);
    let age = sealed::generate_identity(rng).unwrap();
    OperatorRecord {
        name: format!("operator-{i}"),
        identity_key: key.public(),
        age_recipient: sealed::recipient_of(&age),
        address: format!("10.0.0.{i}:9000"),
        ssv: None,
    }
}

fn new_definition(n: usize) -> NewDefinition {
    let mut rng = StdRng::seed_from_u64(n as u64);
    NewDefinition {
        name: "test cluster".to_owned(),
        operators: (1..=n).map(|i| record(&mut rng, i)).collect(),
        threshold: None,
        validators: 2,
        network: Network::HOODI,
        withdrawal_kind: WithdrawalKind::Eth1,
        withdrawal_address: ADDRESS.to_lowercase().parse().unwrap(),
        fee_recipient: None,
        amounts: vec![Gwei(32_000_000_000)],
        ssv: None,
    }
}

/// Re-hashes after an edit, so that the edit itself is what is checked.
fn rehashed(mut definition: ClusterDefinition) -> ClusterDefinition {
    definition.definition_hash = definition.compute_hash().unwrap();
    definition
}

#[test]
fn create_round_trip_and_context() {
    let definition = ClusterDefinition::create(new_definition(4)).unwrap();
    assert_eq!(definition.threshold, 3);
    assert_eq!(definition.withdrawal_address.as_deref(), Some(ADDRESS));
    let text = definition.to_json_pretty().unwrap();
    let parsed = ClusterDefinition::from_json(&text).unwrap();
    assert_eq!(parsed, definition);
    // Reformatting keeps the hash.
    let compact = serde_json::to_string(&definition).unwrap();
    assert_eq!(ClusterDefinition::from_json(&compact).unwrap(), definition);

    let context = definition.to_context().unwrap();
    assert_eq!(context.params(), Params::new(4, 3, 2).unwrap());
    assert_eq!(context.definition_hash, definition.definition_hash);
    let deposits = DepositPlan::from_statements(context.plan.statements()).unwrap();
    assert_eq!(deposits.fork_version, [0x10, 0x00, 0x09, 0x10]);
    assert_eq!(deposits.amounts, vec![32_000_000_000]);
    for (position, op) in definition.operators.iter().enumerate() {
        let id = definition.operator_index(&op.identity_key).unwrap();
        assert_eq!(id.position(), position);
        assert_eq!(context.key(id), Some(&op.identity_key));
    }
    let stranger = IdentityKey::generate(&mut StdRng::seed_from_u64(99)).public();
    assert_eq!(definition.operator_index(&stranger), None);
}

#[test]
fn the_hash_is_the_documented_one() {
    let definition = ClusterDefinition::create(new_definition(3)).unwrap();
    // The compact file encoding, with the last field cut off.
    let compact = serde_json::to_string(&definition).unwrap();
    let tail = format!(
        ",\"definition_hash\":\"{}\"}}",
        hex::encode(definition.definition_hash.0)
    );
    let hashed = format!("{}}}", compact.strip_suffix(&tail).unwrap());
    assert!(hashed.starts_with("{\"version\":2,\"kind\":\"dkg\",\"name\":"));
    let mut hasher = Sha256::new();
    hasher.update(b"dvkg/2 cluster definition");
    hasher.update(hashed.as_bytes());
    let expected: [u8; 32] = hasher.finalize().into();
    assert_eq!(definition.definition_hash.0, expected);
}

#[test]
fn edits_are_caught_by_the_hash() {
    let definition = ClusterDefinition::create(new_definition(4)).unwrap();
    let text = definition
        .to_json_pretty()
        .unwrap()
        .replace("\"validators\": 2", "\"validators\": 3");
    let err = ClusterDefinition::from_json(&text).unwrap_err();
    assert!(matches!(err, DefinitionError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("run dvkg definition new again"));
}

#[test]
fn structural_refusals_name_the_field() {
    let definition = ClusterDefinition::create(new_definition(4)).unwrap();
    let mut value = serde_json::to_value(&definition).unwrap();
    value["extra"] = serde_json::json!(1);
    let err = ClusterDefinition::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(&err, DefinitionError::UnknownField { field } if field == "extra"),
        "{err}"
    );

    let mut value = serde_json::to_value(&definition).unwrap();
    value["version"] = serde_json::json!(1);
    let err = ClusterDefinition::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(err, DefinitionError::UnsupportedVersion { .. }),
        "{err}"
    );

    let mut value = serde_json::to_value(&definition).unwrap();
    value["threshold"] = serde_json::json!("3");
    let err = ClusterDefinition::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(
            err,
            DefinitionError::FieldType {
                field: "threshold",
                ..
            }
        ),
        "{err}"
    );

    let mut value = serde_json::to_value(&definition).unwrap();
    value.as_object_mut().unwrap().remove("network");
    let err = ClusterDefinition::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(err, DefinitionError::MissingField { field: "network" }),
        "{err}"
    );

    let mut value = serde_json::to_value(&definition).unwrap();
    value["operators"][2]["port"] = serde_json::json!(1);
    let err = ClusterDefinition::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(err, DefinitionError::Operator { index: 3, .. }),
        "{err}"
    );

    // A key given twice.
    let text = definition.to_json_pretty().unwrap().replacen(
        "\"threshold\": 3,",
        "\"threshold\": 3, \"threshold\": 3,",
        1,
    );
    let err = ClusterDefinition::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("duplicate field"), "{err}");
}

#[test]
fn parameter_and_operator_refusals() {
    let check = |edit: &dyn Fn(&mut ClusterDefinition), expect: &str| {
        let mut definition = ClusterDefinition::create(new_definition(4)).unwrap();
        edit(&mut definition);
        let err = rehashed(definition).validate().unwrap_err().to_string();
        assert!(err.contains(expect), "{err:?} lacks {expect:?}");
    };
    check(&|d| d.threshold = 2, "invalid threshold");
    check(&|d| d.threshold = 5, "invalid threshold");
    check(&|d| d.validators = 0, "invalid validators");
    check(&|d| d.validators = 65_537, "invalid validators");
    check(&|d| d.operators.truncate(2), "invalid operators");
    check(&|d| d.network = "mainet".into(), "invalid network");
    check(
        &|d| d.network = "dev:10000910".into(),
        "network \"dev:10000910\" must be written \"dev:0x10000910\"",
    );
    check(
        &|d| d.withdrawal_type = Some("0x00".into()),
        "withdrawal_type",
    );
    check(
        &|d| d.withdrawal_type = Some("01".into()),
        "withdrawal_type",
    );
    check(
        &|d| d.withdrawal_address = Some(ADDRESS.to_lowercase()),
        "withdrawal_address",
    );
    check(
        &|d| d.withdrawal_address = Some(ADDRESS.replace('a', "A")),
        "invalid withdrawal_address: bad EIP-55 checksum",
    );
    check(
        &|d| d.fee_recipient = Some("0x12".into()),
        "invalid fee_recipient",
    );
    check(
        &|d| d.amounts_gwei = Some(vec![500_000_000]),
        "amounts_gwei",
    );
    check(
        &|d| d.amounts_gwei = Some(vec![32_000_000_000, 1_000_000_000]),
        "amounts_gwei",
    );
    check(&|d| d.amounts_gwei = Some(vec![]), "amounts_gwei");
    check(&|d| d.name = String::new(), "name");
    check(
        &|d| d.operators[2].address = "10.0.0.9:0".into(),
        "operator 3: address",
    );
    check(
        &|d| d.operators[1].name = "bad\nname".into(),
        "operator 2: name",
    );
    check(
        &|d| d.operators[3].age_recipient = "age1xyz".into(),
        "operator 4: age_recipient",
    );
    check(
        &|d| d.operators[0].age_recipient = d.operators[0].age_recipient.to_uppercase(),
        "operator 1: age_recipient",
    );
    check(
        &|d| d.operators[0].identity_key = IdentityPublicKey(Bytes([0; 32])),
        "operator 1: identity_key",
    );
    check(
        &|d| d.operators[3].identity_key = d.operators[1].identity_key,
        "operators 2 and 4 have the same identity_key",
    );
    check(
        &|d| d.operators[2].name = d.operators[0].name.clone(),
        "operators 1 and 3 have the same name",
    );
    check(
        &|d| d.operators[1].address = d.operators[0].address.clone(),
        "operators 1 and 2 have the same address",
    );
    check(
        &|d| d.operators[3].age_recipient = d.operators[2].age_recipient.clone(),
        "operators 3 and 4 have the same age_recipient",
    );
    // 0x02 allows up to 2048 ETH.
    let mut compounding = new_definition(4);
    compounding.withdrawal_kind = WithdrawalKind::Compounding;
    compounding.amounts = vec![Gwei(2_000_000_000_000), Gwei(48_000_000_000)];
    assert!(ClusterDefinition::create(compounding.clone()).is_ok());
    compounding.amounts.push(Gwei(1_000_000_000));
    assert!(matches!(
        ClusterDefinition::create(compounding),
        Err(DefinitionError::Amounts(_))
    ));
}

#[test]
fn names_and_addresses() {
    for good in ["alice", "Operator 7 (EU)", "ü", &"x".repeat(64)] {
        assert!(check_name(good).is_ok(), "{good:?}");
    }
    for bad in ["", " alice", "alice ", "a\tb", "a\u{7}", &"x".repeat(65)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    for good in [
        "127.0.0.1:9000",
        "[::1]:9000",
        "node-1.example.org:65535",
        "localhost:1",
        "example.org.:443",
    ] {
        assert!(check_address(good).is_ok(), "{good:?}");
    }
    for bad in [
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:+1",
        ":9000",
        "::1:9000",
        "[::1:9000",
        "[nope]:9000",
        "-bad.example:1",
        "a..b:1",
        "host name:1",
    ] {
        assert!(check_address(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn operator_files() {
    let mut rng = StdRng::seed_from_u64(5);
    let op = record(&mut rng, 1);
    let text = op.to_file_json().unwrap();
    assert!(text.contains("\"version\": 2"));
    assert!(
        !text.contains("ssv"),
        "no ssv object without a registration"
    );
    assert_eq!(OperatorRecord::from_file_json(&text).unwrap(), op);
    // Version 1, which has no ssv object, is read too.
    let one = text.replace("\"version\": 2", "\"version\": 1");
    assert_eq!(OperatorRecord::from_file_json(&one).unwrap(), op);
    let bumped = text.replace("\"version\": 2", "\"version\": 3");
    assert!(matches!(
        OperatorRecord::from_file_json(&bumped),
        Err(RecordError::UnsupportedVersion(_))
    ));
    let extra = text.replace("\"version\": 2", "\"version\": 2, \"x\": 0");
    let err = OperatorRecord::from_file_json(&extra).unwrap_err();
    assert!(err.to_string().contains("unknown field `x`"), "{err}");
    let bad = text.replace(":9000", ":0");
    assert!(matches!(
        OperatorRecord::from_file_json(&bad),
        Err(RecordError::Address { .. })
    ));
}

/// An SSV cluster of `ids`, with dvkg's test operator keys.
fn ssv_definition(ids: &[u64]) -> NewDefinition {
    let mut new = new_definition(ids.len());
    for (position, (record, &id)) in new.operators.iter_mut().zip(ids).enumerate() {
        record.ssv = Some(ssv::SsvOperator {
            operator_id: id,
            operator_key: crate::ssv::dealer::test_operator_key(position)
                .unwrap()
                .public_key()
                .registered()
                .to_owned(),
        });
    }
    new.ssv = Some(ssv::NewSsv {
        owner: ADDRESS.parse().unwrap(),
        nonce: 8,
        created_at: crate::ssv::CreatedAt::parse("2026-12-01T00:00:00Z").unwrap(),
    });
    new
}

#[test]
fn an_ssv_definition_makes_a_plan_at_the_ids() {
    // Given out of order: create sorts by id; the threshold is SSV's.
    let mut new = ssv_definition(&[103, 11, 404, 27]);
    new.operators.swap(0, 2);
    let definition = ClusterDefinition::create(new).unwrap();
    let ids: Vec<u64> = definition
        .operators
        .iter()
        .map(|o| o.ssv.as_ref().unwrap().operator_id)
        .collect();
    assert_eq!(ids, [11, 27, 103, 404]);
    assert_eq!(definition.threshold, 3);
    // Round trip, and the hash covers the SSV fields.
    let text = definition.to_json_pretty().unwrap();
    assert!(text.contains("\"created_at\": \"2026-12-01T00:00:00Z\""));
    assert_eq!(ClusterDefinition::from_json(&text).unwrap(), definition);
    let edited = text.replace("\"nonce\": 8", "\"nonce\": 9");
    assert!(matches!(
        ClusterDefinition::from_json(&edited),
        Err(DefinitionError::HashMismatch { .. })
    ));
    let context = definition.to_context().unwrap();
    let plan = &context.plan;
    let indices: Vec<u64> = plan.indices().iter().map(|i| i.get()).collect();
    assert_eq!(indices, ids);
    let kinds: Vec<_> = plan.statements().iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            crate::dkg::plan::StatementKind::Deposit,
            crate::dkg::plan::StatementKind::Ownership
        ]
    );
    let attachments = plan.attachments().unwrap();
    assert_eq!(attachments.bytes, 256);
    assert_eq!(attachments.params.len(), 4);
    assert_eq!(
        attachments.params[1].0,
        definition.operators[1]
            .ssv
            .as_ref()
            .unwrap()
            .operator_key
            .as_bytes()
    );
    // Without the ssv object, the records' SSV fields change nothing.
    let mut plain = ssv_definition(&[11, 27, 103, 404]);
    plain.ssv = None;
    let plain = ClusterDefinition::create(plain).unwrap();
    assert!(plain.to_context().unwrap().plan.attachments().is_none());
    assert_eq!(plain.to_context().unwrap().plan.indices()[0].get(), 1);
}

#[test]
fn ssv_rules_are_named() {
    let refused = |new: NewDefinition, expect: &str| {
        let err = ClusterDefinition::create(new).unwrap_err().to_string();
        assert!(err.contains(expect), "{err:?} lacks {expect:?}");
    };
    refused(
        ssv_definition(&[1, 2, 3, 4, 5]),
        "an SSV cluster has 4, 7, 10 or 13 operators, not 5",
    );
    let mut low = ssv_definition(&[1, 2, 3, 4]);
    low.threshold = Some(2);
    refused(low, "an SSV cluster of 4 operators signs with 3 of them");
    let mut all = ssv_definition(&[1, 2, 3, 4]);
    all.threshold = Some(4);
    refused(all, "signs with 3 of them");
    refused(
        ssv_definition(&[5, 9, 5, 12]),
        "operators 1 and 2 have the same ssv operator_id 5",
    );
    refused(
        ssv_definition(&[0, 9, 10, 12]),
        "ssv.operator_id must be 1 or more",
    );
    let mut missing = ssv_definition(&[1, 2, 3, 4]);
    missing.operators[2].ssv = None;
    refused(missing, "has no ssv operator id and key");
    let mut same_key = ssv_definition(&[1, 2, 3, 4]);
    same_key.operators[3].ssv.as_mut().unwrap().operator_key = same_key.operators[0]
        .ssv
        .as_ref()
        .unwrap()
        .operator_key
        .clone();
    refused(same_key, "operators 1 and 4 have the same ssv operator_key");
    let mut small = ssv_definition(&[1, 2, 3, 4]);
    small.operators[1].ssv.as_mut().unwrap().operator_key = {
        use base64ct::Encoding;
        base64ct::Base64::encode_string(crate::ssv::dealer::TEST_RSA_1024_PUBLIC_KEY.as_bytes())
    };
    refused(small, "operator 2: ssv.operator_key: the key is RSA-1024");
    let mut overflow = ssv_definition(&[1, 2, 3, 4]);
    overflow.ssv.as_mut().unwrap().nonce = u64::MAX;
    refused(overflow, "invalid ssv.nonce");
    // Edited files: unsorted operators, a lowercase owner.
    let definition = ClusterDefinition::create(ssv_definition(&[1, 2, 3, 4])).unwrap();
    let mut unsorted = definition.clone();
    unsorted.operators.swap(1, 2);
    let err = rehashed(unsorted).validate().unwrap_err().to_string();
    assert!(
        err.contains("operator 3 has SSV operator id 2 after 3"),
        "{err}"
    );
    let mut lower = definition.clone();
    lower.ssv.as_mut().unwrap().owner = ADDRESS.to_lowercase();
    let err = rehashed(lower).validate().unwrap_err().to_string();
    assert!(err.contains("ssv.owner"), "{err}");
    let mut time = definition;
    time.ssv.as_mut().unwrap().created_at = "yesterday".into();
    let err = rehashed(time).validate().unwrap_err().to_string();
    assert!(err.contains("invalid ssv.created_at"), "{err}");
}
