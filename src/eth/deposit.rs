//! `deposit_data-*.json`: building, writing, reading and verifying deposits.
//!
//! The file is the one the Ethereum deposit CLIs write (ethstaker-deposit-cli
//! `utils/export_data.py`, staking-deposit-cli before it): a JSON array with
//! one object per deposit, written by Python's `json.dump` with its default
//! `", "` and `": "` separators, on one line without a trailing newline. Hex
//! is bare and lowercase; `amount` is a JSON number of Gwei. The Launchpad
//! (`staking-launchpad` `validateDepositKey.ts`) recomputes both roots and
//! verifies the signature; [`verify_entry`] does the same and more.
//!
//! See `ceremony-specs/formats.md`, "Deposit data".

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::amount::{self, Gwei};
use super::credentials::{ExecutionAddress, WithdrawalCredentials, WithdrawalKind};
use super::network::Network;
use super::ssz::{DepositData, DepositMessage};
use crate::crypto::{PublicKey, SecretKey, Signature};
use crate::hexfmt::{self, Prefix};

/// The `deposit_cli_version` this tool writes.
///
/// Older Launchpad deployments refused files below 2.7.0
/// (`staking-launchpad` before PR #714); the field carries no other meaning,
/// so a value those deployments accept is written.
pub const DEPOSIT_CLI_VERSION: &str = "2.7.0";

/// The field names of one deposit, in the order the deposit CLIs write them.
pub const FIELDS: [&str; 9] = [
    "pubkey",
    "withdrawal_credentials",
    "amount",
    "signature",
    "deposit_message_root",
    "deposit_data_root",
    "fork_version",
    "network_name",
    "deposit_cli_version",
];

/// One entry of a deposit data file, with every field decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DepositEntry {
    /// The validator's public key (48 bytes, not yet validated as a point).
    pub pubkey: [u8; 48],
    /// The withdrawal credentials.
    pub withdrawal_credentials: [u8; 32],
    /// The amount in Gwei (deposit units).
    pub amount: Gwei,
    /// The deposit signature (96 bytes, not yet validated as a point).
    pub signature: [u8; 96],
    /// `hash_tree_root(DepositMessage)`.
    pub deposit_message_root: [u8; 32],
    /// `hash_tree_root(DepositData)`.
    pub deposit_data_root: [u8; 32],
    /// The network's genesis fork version.
    pub fork_version: [u8; 4],
    /// The network's name.
    pub network_name: String,
    /// The version string of the tool that wrote the file.
    pub deposit_cli_version: String,
}

impl DepositEntry {
    /// The deposit message this entry signs.
    pub fn message(&self) -> DepositMessage {
        DepositMessage {
            pubkey: self.pubkey,
            withdrawal_credentials: self.withdrawal_credentials,
            amount: self.amount.0,
        }
    }

    /// Builds an entry from a signature made elsewhere (for example a
    /// threshold signature combined from shares), computing both roots.
    /// The signature is not checked here; see [`verify_entry`].
    pub fn from_signature(
        pubkey: &PublicKey,
        credentials: WithdrawalCredentials,
        amount: Gwei,
        network: &Network,
        signature: &Signature,
    ) -> Self {
        Self::from_signature_bytes(
            pubkey.to_bytes(),
            credentials,
            amount,
            network,
            signature.to_bytes(),
        )
    }

    /// [`DepositEntry::from_signature`], from the compressed key and
    /// signature as they are (not decoded, so not checked to be points).
    pub fn from_signature_bytes(
        pubkey: [u8; 48],
        credentials: WithdrawalCredentials,
        amount: Gwei,
        network: &Network,
        signature: [u8; 96],
    ) -> Self {
        let message = DepositMessage {
            pubkey,
            withdrawal_credentials: credentials.to_bytes(),
            amount: amount.0,
        };
        let data = DepositData {
            pubkey: message.pubkey,
            withdrawal_credentials: message.withdrawal_credentials,
            amount: message.amount,
            signature,
        };
        Self {
            pubkey: message.pubkey,
            withdrawal_credentials: message.withdrawal_credentials,
            amount,
            signature: data.signature,
            deposit_message_root: message.root(),
            deposit_data_root: data.root(),
            fork_version: network.genesis_fork_version(),
            network_name: network.name().to_owned(),
            deposit_cli_version: DEPOSIT_CLI_VERSION.to_owned(),
        }
    }

    /// Signs a deposit with a whole secret key.
    ///
    /// dvkg itself never holds a whole validator key; this serves tests and
    /// the reproduction of published vectors.
    pub fn sign(
        secret_key: &SecretKey,
        credentials: WithdrawalCredentials,
        amount: Gwei,
        network: &Network,
    ) -> Self {
        let pubkey = secret_key.public_key();
        let message = DepositMessage {
            pubkey: pubkey.to_bytes(),
            withdrawal_credentials: credentials.to_bytes(),
            amount: amount.0,
        };
        let signature = secret_key.sign(&message.signing_root(network.genesis_fork_version()));
        Self::from_signature(&pubkey, credentials, amount, network, &signature)
    }

    /// The entry as a JSON object (for embedding, e.g. in the cluster lock).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.to_json_value()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }

    fn to_json_value(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("pubkey", Value::String(hex::encode(self.pubkey))),
            (
                "withdrawal_credentials",
                Value::String(hex::encode(self.withdrawal_credentials)),
            ),
            ("amount", Value::from(self.amount.0)),
            ("signature", Value::String(hex::encode(self.signature))),
            (
                "deposit_message_root",
                Value::String(hex::encode(self.deposit_message_root)),
            ),
            (
                "deposit_data_root",
                Value::String(hex::encode(self.deposit_data_root)),
            ),
            (
                "fork_version",
                Value::String(hex::encode(self.fork_version)),
            ),
            ("network_name", Value::String(self.network_name.clone())),
            (
                "deposit_cli_version",
                Value::String(self.deposit_cli_version.clone()),
            ),
        ]
    }
}

/// Renders a deposit data file exactly as the deposit CLIs do: Python's
/// `json.dump(list)` with default separators, one line, no trailing newline.
pub fn to_file_string(entries: &[DepositEntry]) -> String {
    let mut out = String::from("[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('{');
        for (j, (key, value)) in entry.to_json_value().into_iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            // serde_json renders ASCII strings and integers exactly as Python's
            // json module does; network names are ASCII by construction.
            out.push_str(&Value::String(key.to_owned()).to_string());
            out.push_str(": ");
            out.push_str(&value.to_string());
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// A problem with one field of one entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldProblem {
    /// The field's JSON name, or `entry` for problems of the whole entry.
    pub field: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl FieldProblem {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a deposit data file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DepositFileError {
    /// Not valid JSON.
    #[error("not valid JSON: {}", crate::store::describe_json_error(.0))]
    NotJson(#[source] serde_json::Error),
    /// Valid JSON, but not a list.
    #[error("expected a JSON list of deposits, found {0}")]
    NotAList(&'static str),
    /// An empty list.
    #[error("the file holds no deposits")]
    Empty,
}

/// What one entry of a file decoded to: the entry, or the problems of the
/// fields that could not be decoded.
pub type EntryParse = Result<DepositEntry, Vec<FieldProblem>>;

/// Reads a deposit data file. The file as a whole must be a non-empty JSON
/// list; each entry is decoded on its own so that one bad entry does not hide
/// the state of the others.
///
/// # Errors
///
/// [`DepositFileError`] when the text is not a non-empty JSON list.
///
/// The list is read one entry at a time: only the decoded entries are kept,
/// never a JSON tree of the whole file (twice its text: 100 MB for 65,536
/// deposits).
pub fn parse_file(text: &str) -> Result<Vec<EntryParse>, DepositFileError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = serde::Deserializer::deserialize_any(&mut deserializer, Entries)
        .and_then(|parsed| deserializer.end().map(|()| parsed))
        .map_err(DepositFileError::NotJson)?;
    let list = parsed.map_err(DepositFileError::NotAList)?;
    if list.is_empty() {
        return Err(DepositFileError::Empty);
    }
    Ok(list)
}

/// The visitor of [`parse_file`]: a list's entries, each decoded as it is
/// read; or what the file holds instead of a list.
struct Entries;

impl<'de> serde::de::Visitor<'de> for Entries {
    type Value = Result<Vec<EntryParse>, &'static str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON list of deposits")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(value) = seq.next_element::<Value>()? {
            entries.push(parse_entry(&value));
        }
        Ok(Ok(entries))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Err(json_kind(&Value::Object(serde_json::Map::new()))))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::Null)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::Bool(false))))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(0))))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(0))))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(0))))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::String(String::new()))))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Decodes one entry, naming every field that is missing, unknown, of the
/// wrong JSON type or malformed.
pub fn parse_entry(value: &Value) -> EntryParse {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldProblem::new(
            "entry",
            format!("expected an object, found {}", json_kind(value)),
        )]);
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.push(FieldProblem::new(key, "unknown field"));
        }
    }
    let mut hex_field = |name: &'static str| -> Option<&str> {
        match object.get(name) {
            None => problems.push(FieldProblem::new(name, "missing")),
            Some(Value::String(text)) => return Some(text),
            Some(other) => problems.push(FieldProblem::new(
                name,
                format!("expected a string, found {}", json_kind(other)),
            )),
        }
        None
    };
    let pubkey = hex_field("pubkey");
    let credentials = hex_field("withdrawal_credentials");
    let signature = hex_field("signature");
    let message_root = hex_field("deposit_message_root");
    let data_root = hex_field("deposit_data_root");
    let fork_version = hex_field("fork_version");
    let network_name = hex_field("network_name");
    let cli_version = hex_field("deposit_cli_version");

    let amount = match object.get("amount") {
        None => {
            problems.push(FieldProblem::new("amount", "missing"));
            None
        }
        Some(Value::Number(number)) => match number.as_u64() {
            Some(gwei) => Some(Gwei(gwei)),
            None => {
                problems.push(FieldProblem::new(
                    "amount",
                    format!("{number} is not a whole, non-negative number of Gwei"),
                ));
                None
            }
        },
        Some(other) => {
            problems.push(FieldProblem::new(
                "amount",
                format!("expected a JSON number of Gwei, found {}", json_kind(other)),
            ));
            None
        }
    };

    fn decode<const N: usize>(
        name: &'static str,
        text: Option<&str>,
        problems: &mut Vec<FieldProblem>,
    ) -> Option<[u8; N]> {
        let text = text?;
        hexfmt::decode_fixed::<N>(text, Prefix::Forbidden)
            .map_err(|err| problems.push(FieldProblem::new(name, err.to_string())))
            .ok()
    }
    let pubkey = decode::<48>("pubkey", pubkey, &mut problems);
    let credentials = decode::<32>("withdrawal_credentials", credentials, &mut problems);
    let signature = decode::<96>("signature", signature, &mut problems);
    let message_root = decode::<32>("deposit_message_root", message_root, &mut problems);
    let data_root = decode::<32>("deposit_data_root", data_root, &mut problems);
    let fork_version = decode::<4>("fork_version", fork_version, &mut problems);

    match (
        pubkey,
        credentials,
        amount,
        signature,
        message_root,
        data_root,
        fork_version,
        network_name,
        cli_version,
    ) {
        (
            Some(pubkey),
            Some(withdrawal_credentials),
            Some(amount),
            Some(signature),
            Some(deposit_message_root),
            Some(deposit_data_root),
            Some(fork_version),
            Some(network_name),
            Some(deposit_cli_version),
        ) if problems.is_empty() => Ok(DepositEntry {
            pubkey,
            withdrawal_credentials,
            amount,
            signature,
            deposit_message_root,
            deposit_data_root,
            fork_version,
            network_name: network_name.to_owned(),
            deposit_cli_version: deposit_cli_version.to_owned(),
        }),
        _ => Err(problems),
    }
}

/// What the verifier is told to expect beyond what the file says of itself.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The network the deposits must be for (`--network`).
    pub network: Option<Network>,
    /// The address withdrawals must go to (`--withdrawal-address`).
    pub withdrawal_address: Option<ExecutionAddress>,
}

/// Checks everything about one entry that can be checked without a secret:
/// the network and fork version, the public key, the withdrawal credentials,
/// the amount, both roots, and the signature. Returns every problem found,
/// an empty list when the entry is good.
pub fn verify_entry(entry: &DepositEntry, expect: &Expectations) -> Vec<FieldProblem> {
    check_entry(entry, expect, true)
}

/// [`verify_entry`] for many entries, with the signatures checked in one
/// batch (and one by one only if the batch fails): the same verdicts, about
/// three times faster.
pub fn verify_entries<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    entries: &[DepositEntry],
    expect: &Expectations,
    rng: &mut R,
) -> Vec<Vec<FieldProblem>> {
    use rayon::prelude::*;
    // Every core: decoding a signature (a square root and a subgroup check
    // in G2) costs more than its share of the batch.
    let mut problems: Vec<Vec<FieldProblem>> = entries
        .par_iter()
        .map(|e| check_entry(e, expect, false))
        .collect();
    let decoded: Vec<Option<(PublicKey, [u8; 32], Signature)>> = entries
        .par_iter()
        .map(|e| {
            let key = PublicKey::from_bytes(&e.pubkey).ok()?;
            let signature = Signature::from_bytes(&e.signature).ok()?;
            Some((key, e.message().signing_root(e.fork_version), signature))
        })
        .collect();
    let items: Vec<(&PublicKey, &[u8], &Signature)> = decoded
        .iter()
        .flatten()
        .map(|(k, m, s)| (k, m.as_slice(), s))
        .collect();
    if crate::crypto::verify_batch(&items, rng) {
        // Entries whose key or signature does not decode were already named.
        return problems;
    }
    for (entry, found) in entries.iter().zip(problems.iter_mut()) {
        if let Some(problem) = signature_problem(entry) {
            found.push(problem);
        }
    }
    problems
}

fn signature_problem(entry: &DepositEntry) -> Option<FieldProblem> {
    let pubkey = PublicKey::from_bytes(&entry.pubkey).ok()?;
    let signature = Signature::from_bytes(&entry.signature).ok()?;
    if signature.verify(&pubkey, &entry.message().signing_root(entry.fork_version)) {
        return None;
    }
    Some(FieldProblem::new(
        "signature",
        format!(
            "does not verify for this pubkey, credentials and amount under fork version {}",
            hex::encode(entry.fork_version)
        ),
    ))
}

fn check_entry(
    entry: &DepositEntry,
    expect: &Expectations,
    check_signature: bool,
) -> Vec<FieldProblem> {
    let mut problems = Vec::new();

    // Network: the name must be the expected one, and the fork version the
    // genesis fork version of that name.
    let network = match &expect.network {
        Some(network) => {
            if entry.network_name != network.name() {
                problems.push(FieldProblem::new(
                    "network_name",
                    format!("is {:?}, expected {:?}", entry.network_name, network.name()),
                ));
            }
            Some(network.clone())
        }
        None => {
            let known = Network::known(&entry.network_name);
            if known.is_none() {
                problems.push(FieldProblem::new(
                    "network_name",
                    format!(
                        "{:?} is not a known network; pass --network {}:0x{} if it is a custom one",
                        entry.network_name,
                        entry.network_name,
                        hex::encode(entry.fork_version)
                    ),
                ));
            }
            known
        }
    };
    if let Some(network) = &network
        && entry.fork_version != network.genesis_fork_version()
    {
        problems.push(FieldProblem::new(
            "fork_version",
            format!(
                "{} does not match network {} (genesis fork version {})",
                hex::encode(entry.fork_version),
                network.name(),
                hex::encode(network.genesis_fork_version())
            ),
        ));
    }

    let pubkey = PublicKey::from_bytes(&entry.pubkey)
        .map_err(|err| {
            problems.push(FieldProblem::new(
                "pubkey",
                format!("not a valid BLS public key: {err}"),
            ))
        })
        .ok();

    match WithdrawalCredentials::from_bytes(&entry.withdrawal_credentials) {
        Err(err) => problems.push(FieldProblem::new("withdrawal_credentials", err.to_string())),
        Ok(credentials) => {
            if let Err(err) = amount::check_deposits(&[entry.amount], credentials.kind()) {
                problems.push(FieldProblem::new("amount", err.to_string()));
            }
            if let Some(expected) = expect.withdrawal_address {
                match credentials.address() {
                    Some(address) if address == expected => {}
                    Some(address) => problems.push(FieldProblem::new(
                        "withdrawal_credentials",
                        format!("pay out to {address}, expected {expected}"),
                    )),
                    None => problems.push(FieldProblem::new(
                        "withdrawal_credentials",
                        format!(
                            "are 0x00 (BLS) credentials, expected an execution address {expected}"
                        ),
                    )),
                }
            }
        }
    }

    let message = entry.message();
    let message_root = message.root();
    if message_root != entry.deposit_message_root {
        problems.push(FieldProblem::new(
            "deposit_message_root",
            format!(
                "is {}, recomputed {}",
                hex::encode(entry.deposit_message_root),
                hex::encode(message_root)
            ),
        ));
    }
    let data_root = DepositData {
        pubkey: entry.pubkey,
        withdrawal_credentials: entry.withdrawal_credentials,
        amount: entry.amount.0,
        signature: entry.signature,
    }
    .root();
    if data_root != entry.deposit_data_root {
        problems.push(FieldProblem::new(
            "deposit_data_root",
            format!(
                "is {}, recomputed {}",
                hex::encode(entry.deposit_data_root),
                hex::encode(data_root)
            ),
        ));
    }

    match Signature::from_bytes(&entry.signature) {
        Err(err) => problems.push(FieldProblem::new(
            "signature",
            format!("not a valid BLS signature: {err}"),
        )),
        Ok(_) if check_signature && pubkey.is_some() => problems.extend(signature_problem(entry)),
        Ok(_) => {}
    }

    if entry.deposit_cli_version.trim().is_empty() {
        problems.push(FieldProblem::new("deposit_cli_version", "is empty"));
    }
    problems
}

/// Checks that concern several entries of one file: every entry is for the
/// same network, and deposits to the same public key agree on their
/// credentials (the first deposit fixes them; a conflicting later one would
/// be ignored) and together stay within the maximum effective balance.
pub fn verify_file(entries: &[DepositEntry]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut networks: Vec<&str> = entries.iter().map(|e| e.network_name.as_str()).collect();
    networks.sort_unstable();
    networks.dedup();
    if networks.len() > 1 {
        problems.push(format!(
            "the file mixes deposits for several networks: {}",
            networks.join(", ")
        ));
    }
    let mut by_pubkey: BTreeMap<[u8; 48], Vec<&DepositEntry>> = BTreeMap::new();
    for entry in entries {
        by_pubkey.entry(entry.pubkey).or_default().push(entry);
    }
    for (pubkey, group) in by_pubkey {
        let Some(first) = group.first() else { continue };
        if group
            .iter()
            .any(|e| e.withdrawal_credentials != first.withdrawal_credentials)
        {
            problems.push(format!(
                "deposits to pubkey {} carry different withdrawal credentials; only the first would count",
                short_hex(&pubkey)
            ));
            continue;
        }
        if group.len() > 1
            && let Ok(credentials) =
                WithdrawalCredentials::from_bytes(&first.withdrawal_credentials)
        {
            let amounts: Vec<Gwei> = group.iter().map(|e| e.amount).collect();
            if let Err(err @ amount::AmountError::AboveMaximum { .. }) =
                amount::check_deposits(&amounts, credentials.kind())
            {
                problems.push(format!("pubkey {}: {err}", short_hex(&pubkey)));
            }
        }
    }
    problems
}

/// The first and last 4 bytes of a key, for one-line reports.
pub fn short_hex(bytes: &[u8]) -> String {
    let text = hex::encode(bytes);
    match (text.get(..8), text.get(text.len().saturating_sub(8)..)) {
        (Some(head), Some(tail)) if text.len() > 16 => format!("{head}…{tail}"),
        _ => text,
    }
}

/// The withdrawal kind of an entry, if its credentials parse.
pub fn entry_kind(entry: &DepositEntry) -> Option<WithdrawalKind> {
    WithdrawalCredentials::from_bytes(&entry.withdrawal_credentials)
        .ok()
        .map(|c| c.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretBytes;

    fn test_key() -> SecretKey {
        let mut raw = [0u8; 32];
        raw[31] = 42;
        SecretKey::from_bytes(&SecretBytes::new(&mut raw)).unwrap()
    }

    fn entry(amount: u64, kind: WithdrawalKind) -> DepositEntry {
        let address = ExecutionAddress::from_bytes([0x11; 20]);
        let credentials = WithdrawalCredentials::for_address(kind, address).unwrap();
        DepositEntry::sign(&test_key(), credentials, Gwei(amount), &Network::HOODI)
    }

    #[test]
    fn written_file_reads_back_and_verifies() {
        let entries = vec![entry(32_000_000_000, WithdrawalKind::Eth1)];
        let text = to_file_string(&entries);
        assert!(text.starts_with("[{\"pubkey\": \""));
        assert!(!text.ends_with('\n'));
        let parsed: Vec<DepositEntry> = parse_file(&text)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(parsed, entries);
        assert!(verify_entry(&parsed[0], &Expectations::default()).is_empty());
        assert!(verify_file(&parsed).is_empty());
    }

    #[test]
    fn partial_deposits_over_the_maximum_are_flagged_per_pubkey() {
        let entries = vec![
            entry(20_000_000_000, WithdrawalKind::Eth1),
            entry(20_000_000_000, WithdrawalKind::Eth1),
        ];
        let problems = verify_file(&entries);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("over the 32000000000 Gwei maximum"));
        let mixed = vec![
            entry(1_000_000_000, WithdrawalKind::Eth1),
            entry(1_000_000_000, WithdrawalKind::Compounding),
        ];
        assert!(verify_file(&mixed)[0].contains("different withdrawal credentials"));
    }

    #[test]
    fn field_problems_are_named() {
        let mut value: Value = serde_json::from_str(&to_file_string(&[entry(
            32_000_000_000,
            WithdrawalKind::Eth1,
        )]))
        .unwrap();
        let object = value[0].as_object_mut().unwrap();
        object.insert("amount".into(), Value::String("32000000000".into()));
        object.insert("pubkey".into(), Value::String("0xab".into()));
        object.insert("extra".into(), Value::Bool(true));
        object.remove("fork_version");
        let problems = parse_entry(&value[0]).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for expected in ["amount", "pubkey", "extra", "fork_version"] {
            assert!(fields.contains(&expected), "{expected} not in {fields:?}");
        }
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(
            parse_file("{}"),
            Err(DepositFileError::NotAList("an object"))
        ));
        assert!(matches!(parse_file("[]"), Err(DepositFileError::Empty)));
        assert!(matches!(
            parse_file("[{"),
            Err(DepositFileError::NotJson(_))
        ));
        assert_eq!(
            parse_file("[1]").unwrap()[0].as_ref().unwrap_err()[0].field,
            "entry"
        );
    }
}
