//! How the command line names an operator in its messages: by slot and
//! name, and with the address tried where an address matters, e.g.
//! `operator 3 (carol, 10.0.0.3:9000)`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::ceremony::OperatorId;
use crate::ceremony::definition::ClusterDefinition;
use crate::net::{TransportError, Unreached};

/// The participants of a definition, by slot: name and address.
#[derive(Debug, Clone, Default)]
pub struct Names {
    records: BTreeMap<OperatorId, (String, String)>,
}

impl Names {
    /// The participants of `definition` (its operators, then a split's or
    /// a reshare's dealers), by slot.
    pub fn new(definition: &ClusterDefinition) -> Self {
        let records = definition
            .participants()
            .enumerate()
            .filter_map(|(position, record)| {
                OperatorId::from_position(position)
                    .ok()
                    .map(|id| (id, (record.name.clone(), record.address.clone())))
            })
            .collect();
        Self { records }
    }

    /// `operator 3 (carol)`.
    pub fn name(&self, id: OperatorId) -> String {
        match self.records.get(&id) {
            Some((name, _)) => format!("operator {id} ({name})"),
            None => format!("operator {id}"),
        }
    }

    /// `operator 3 (carol, 10.0.0.3:9000)`, the address the definition
    /// gives.
    pub fn at(&self, id: OperatorId) -> String {
        match self.records.get(&id) {
            Some((name, address)) => format!("operator {id} ({name}, {address})"),
            None => format!("operator {id}"),
        }
    }

    /// `operator 3 (carol, ADDRESS)`, with the address actually tried.
    pub fn tried(&self, id: OperatorId, address: impl std::fmt::Display) -> String {
        match self.records.get(&id) {
            Some((name, _)) => format!("operator {id} ({name}, {address})"),
            None => format!("operator {id} ({address})"),
        }
    }

    /// The name alone, for a column header: `carol`.
    pub fn bare(&self, id: OperatorId) -> &str {
        self.records.get(&id).map_or("", |(name, _)| name.as_str())
    }

    /// `text` with every bare `operator N` (the way the protocol's and the
    /// transport's messages name a participant) named as `operator N
    /// (name)`; an `operator N` already followed by ` (` is left alone.
    /// The messages below the CLI know slots only; the definition, and so
    /// the names, is the CLI's.
    pub fn label(&self, text: &str) -> String {
        const WORD: &str = "operator ";
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(WORD) {
            let (before, from) = rest.split_at(at);
            out.push_str(before);
            let after = from.get(WORD.len()..).unwrap_or_default();
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            let boundary = !before
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let number = after.get(..digits).unwrap_or_default();
            let tail = after.get(digits..).unwrap_or_default();
            let next = tail.chars().next();
            let labelled = tail.starts_with(" (");
            let id = number
                .parse::<u8>()
                .ok()
                .and_then(|n| OperatorId::try_from(n).ok())
                .filter(|id| self.records.contains_key(id));
            match id {
                Some(id)
                    if boundary
                        && !labelled
                        && !next.is_some_and(|c| c.is_alphanumeric() || c == '_') =>
                {
                    out.push_str(&self.name(id));
                    rest = tail;
                }
                _ => {
                    out.push_str(WORD);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// One operator the mesh could not connect to:
    /// `operator 3 (carol, 10.0.0.3:9000): 4 attempts, the last: no answer`.
    pub fn unreached(&self, missing: &Unreached) -> String {
        let mut out = format!(
            "{}: {} attempt{}",
            self.tried(missing.peer, missing.address),
            missing.attempts,
            if missing.attempts == 1 { "" } else { "s" }
        );
        match &missing.last {
            Some(last) => {
                let _ = write!(out, ", the last: {last}");
            }
            None if missing.attempts > 0 => out.push_str(", no answer yet"),
            None => {}
        }
        if let Some(relayed) = &missing.relayed {
            let _ = write!(out, "; through a relay: {}", self.label(relayed));
        }
        out
    }

    /// A transport failure in words that name the operators, with the
    /// address tried where one was.
    pub fn transport(&self, err: &TransportError) -> String {
        match err {
            TransportError::Unreachable { missing, refused } => {
                let shown: Vec<String> = missing.iter().map(|m| self.unreached(m)).collect();
                format!(
                    "could not connect before the deadline, in either direction, to {}{}",
                    shown.join("; "),
                    crate::net::refused_text(refused)
                )
            }
            other => self.label(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut records = BTreeMap::new();
        for (i, name) in [(1u8, "alice"), (3, "carol"), (12, "lena")] {
            records.insert(
                OperatorId::try_from(i).unwrap(),
                (name.to_owned(), format!("10.0.0.{i}:9000")),
            );
        }
        Names { records }
    }

    #[test]
    fn label_names_bare_operators_only() {
        let names = names();
        assert_eq!(
            names.label("operator 3 sent a share; operator 12's deal; operator 1"),
            "operator 3 (carol) sent a share; operator 12 (lena)'s deal; operator 1 (alice)"
        );
        // Already named, unknown, another word, or not a slot: unchanged.
        for text in [
            "operator 3 (carol, 10.0.0.3:9000) is at fault",
            "operator 7 is missing",
            "cooperator 3 left",
            "operator 3x",
            "operator index 0 is outside 1..=128",
            "operators 1 and 3",
        ] {
            assert_eq!(names.label(text), text);
        }
    }

    #[test]
    fn unreachable_names_the_address_tried() {
        let names = names();
        let peer = OperatorId::try_from(3).unwrap();
        let address = "10.0.0.33:9001".parse().unwrap();
        let err = TransportError::Unreachable {
            missing: vec![Unreached {
                peer,
                address,
                attempts: 4,
                last: Some("no answer".into()),
                relayed: None,
            }],
            refused: Vec::new(),
        };
        assert_eq!(
            names.transport(&err),
            "could not connect before the deadline, in either direction, to operator 3 (carol, \
             10.0.0.33:9001): 4 attempts, the last: no answer"
        );
        let err = TransportError::Unreachable {
            missing: vec![Unreached {
                peer,
                address,
                attempts: 1,
                last: None,
                relayed: Some("operator 1 has no route to it".into()),
            }],
            refused: Vec::new(),
        };
        assert_eq!(
            names.transport(&err),
            "could not connect before the deadline, in either direction, to operator 3 (carol, \
             10.0.0.33:9001): 1 attempt, no answer yet; through a relay: operator 1 (alice) has \
             no route to it"
        );
        let err = TransportError::Timeout {
            peer,
            kind: crate::net::FrameKind::Done,
        };
        assert_eq!(
            names.transport(&err),
            "operator 3 (carol) did not send its closing message before the deadline"
        );
    }
}
