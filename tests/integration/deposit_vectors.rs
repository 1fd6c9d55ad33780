//! The published deposit vectors (`ceremony-specs/vectors/deposit.json`,
//! written by the EthStaker deposit CLI 1.3.0) regenerated from their secret
//! key: signature, both roots and every other field, byte for byte.

use dvkg::crypto::{SecretBytes, SecretKey};
use dvkg::eth::WithdrawalCredentials;
use dvkg::eth::deposit::{self, DepositEntry, Expectations};
use dvkg::eth::network::{KnownNetwork, Network};
use dvkg::eth::ssz::deposit_domain;
use dvkg::hexfmt::{self, Prefix};

use crate::common::load_vector;

fn secret_key(vector: &serde_json::Value) -> SecretKey {
    let text = vector["signing_secret_key"].as_str().unwrap();
    let mut raw = hexfmt::decode_fixed::<32>(text, Prefix::Optional).unwrap();
    SecretKey::from_bytes(&SecretBytes::new(&mut raw)).unwrap()
}

fn published_entries(vector: &serde_json::Value) -> Vec<(serde_json::Value, DepositEntry)> {
    vector["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| (value.clone(), deposit::parse_entry(value).unwrap()))
        .collect()
}

#[test]
fn deposit_domains_match_every_network() {
    let vector = load_vector("deposit.json");
    let domains = vector["deposit_domains"].as_object().unwrap();
    assert_eq!(domains.len(), KnownNetwork::ALL.len());
    for known in KnownNetwork::ALL {
        let expected = domains[known.name()].as_str().unwrap();
        assert_eq!(
            hex::encode(deposit_domain(known.genesis_fork_version())),
            expected,
            "{}",
            known.name()
        );
    }
    assert_eq!(
        hex::encode(deposit_domain(Network::MAINNET.genesis_fork_version())),
        vector["intermediates_mainnet"]["deposit_domain"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn every_published_entry_is_regenerated_exactly() {
    let vector = load_vector("deposit.json");
    let sk = secret_key(&vector);
    let entries = published_entries(&vector);
    assert_eq!(entries.len(), 4, "mainnet 0x02, 0x01, 0x00 and hoodi 0x00");
    for (value, published) in &entries {
        let network = Network::known(&published.network_name).unwrap();
        let credentials =
            WithdrawalCredentials::from_bytes(&published.withdrawal_credentials).unwrap();
        let mut ours = DepositEntry::sign(&sk, credentials, published.amount, &network);
        assert_eq!(ours.pubkey, published.pubkey);
        assert_eq!(
            hex::encode(ours.signature),
            value["signature"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(ours.deposit_message_root),
            value["deposit_message_root"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(ours.deposit_data_root),
            value["deposit_data_root"].as_str().unwrap()
        );
        // Everything else too, once the writing tool's version is the same.
        ours.deposit_cli_version = published.deposit_cli_version.clone();
        assert_eq!(&ours, published);
        // And the JSON text we write holds exactly the published values.
        let written: serde_json::Value =
            serde_json::from_str(&deposit::to_file_string(&[ours])).unwrap();
        assert_eq!(written[0], *value);
        assert!(deposit::verify_entry(published, &Expectations::default()).is_empty());
    }
}

#[test]
fn mainnet_compounding_signing_root_matches_the_intermediate() {
    let vector = load_vector("deposit.json");
    let (_, entry) = &published_entries(&vector)[0];
    assert_eq!(entry.withdrawal_credentials[0], 0x02);
    assert_eq!(
        hex::encode(entry.message().signing_root(entry.fork_version)),
        vector["intermediates_mainnet"]["signing_root_0x02"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn written_file_uses_the_deposit_cli_layout() {
    let vector = load_vector("deposit.json");
    let entries: Vec<DepositEntry> = published_entries(&vector)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let text = deposit::to_file_string(&entries[..2]);
    // Python's json.dump: one line, ", " and ": " separators, fields in the
    // deposit CLI's order, no trailing newline.
    let pubkey = hex::encode(entries[0].pubkey);
    assert!(text.starts_with(&format!(
        "[{{\"pubkey\": \"{pubkey}\", \"withdrawal_credentials\": \"02"
    )));
    assert!(text.contains("\"amount\": 32000000000, \"signature\": \""));
    assert!(text.contains(
        "\"network_name\": \"mainnet\", \"deposit_cli_version\": \"1.3.0\"}, {\"pubkey\""
    ));
    assert!(text.ends_with("\"}]"));
    assert!(!text.contains('\n'));
}

/// `examples/deposit_data-mainnet-0x02.json` is the published mainnet 0x02
/// entry as Python's `json.dump` writes it (the deposit CLIs' writer); our
/// writer must reproduce those bytes exactly.
#[test]
fn writer_reproduces_python_json_dump_byte_for_byte() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/deposit_data-mainnet-0x02.json");
    let published = std::fs::read_to_string(path).unwrap();
    let entries: Vec<DepositEntry> = deposit::parse_file(&published)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(deposit::to_file_string(&entries), published);
}
