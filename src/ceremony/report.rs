//! The abort report: what a participant tells its peers, and writes to
//! disk, when it aborts; and how a report received from a peer, or read
//! from a file, is judged with no trust in its writer.
//!
//! Format: `ceremony-specs/formats.md` §9.

use serde::{Deserialize, Serialize};

use crate::ceremony::OperatorId;
use crate::dkg::evidence::{EvidenceError, verify_evidence};
use crate::dkg::signing::Statements;
use crate::dkg::{Context, Evidence};
use crate::wire::Bytes;

/// The abort report format version.
pub const ABORT_REPORT_VERSION: u32 = 2;

/// What a participant tells its peers, and writes to disk, when it aborts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortReport {
    /// [`ABORT_REPORT_VERSION`].
    pub version: u32,
    /// The definition hash of the ceremony.
    pub definition_hash: Bytes<32>,
    /// The participant writing the report.
    pub reporter: OperatorId,
    /// The round it was in (0 to 4; 5 for the closing exchange).
    pub round: u8,
    /// The participant it blames for a protocol fault, if any.
    pub culprit: Option<OperatorId>,
    /// The participant that went missing (timeout or closed connection),
    /// if that is why it aborted.
    pub missing: Option<OperatorId>,
    /// The failure in words.
    pub message: String,
    /// The signed messages that prove the fault, when there are.
    pub evidence: Option<Evidence>,
}

/// What a report proves to anyone holding the ceremony's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The evidence proves the named culprit's fault.
    Proven {
        /// The culprit.
        culprit: OperatorId,
        /// The fault in words.
        fault: String,
    },
    /// The report proves nothing to a third party, for this reason.
    Unproven(Unproven),
}

/// Why a report proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unproven {
    /// Another report format version.
    #[error("report version {0} (this dvkg reads version {ABORT_REPORT_VERSION})")]
    Version(u32),
    /// A report about another ceremony.
    #[error("the report is about the ceremony with definition hash {theirs}, not {ours}")]
    OtherCeremony {
        /// The report's definition hash.
        theirs: Bytes<32>,
        /// Ours.
        ours: Bytes<32>,
    },
    /// An absence: it can be observed, never proven.
    #[error(
        "{by} reports operator {missing} missing; an absence cannot be proven, only observed: {message}"
    )]
    Missing {
        /// Who reports.
        by: String,
        /// The missing participant.
        missing: OperatorId,
        /// The report's message.
        message: String,
    },
    /// A blame with no signed evidence.
    #[error(
        "{by} blames operator {culprit} with no signed evidence (a channel-level fault, seen only by the reporter): {message}"
    )]
    NoEvidence {
        /// Who reports.
        by: String,
        /// The participant blamed.
        culprit: OperatorId,
        /// The report's message.
        message: String,
    },
    /// A report that blames no one.
    #[error("{by} blames no one: {message}")]
    NoBlame {
        /// Who reports.
        by: String,
        /// The report's message.
        message: String,
    },
    /// Evidence that does not verify.
    #[error("{by}: the evidence does not verify: {reason}")]
    Invalid {
        /// Who reports.
        by: String,
        /// Why.
        reason: EvidenceError,
    },
    /// Evidence that convicts someone other than the report names.
    #[error("{by} names {named} but its evidence convicts operator {convicted}")]
    OtherCulprit {
        /// Who reports.
        by: String,
        /// Whom the report names.
        named: String,
        /// Whom the evidence convicts.
        convicted: OperatorId,
    },
    /// Evidence of what the reporter saw, which convinces no third party.
    #[error(
        "{by}: the evidence shows what operator {culprit} signed but does not prove the fault to a third party: {fault}"
    )]
    ChannelOnly {
        /// Who reports.
        by: String,
        /// The participant the evidence points at.
        culprit: OperatorId,
        /// The fault in words.
        fault: String,
    },
}

impl AbortReport {
    /// "operator R (round N)", for messages about this report.
    fn by(&self) -> String {
        format!("operator {} (round {})", self.reporter, self.round)
    }

    /// The report's message without control characters (it is the peer's
    /// text).
    pub fn printable_message(&self) -> String {
        self.message
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    }

    /// Judges the report against `context`, trusting nothing its writer
    /// says: it proves a fault only when its evidence convicts the culprit
    /// it names, to anyone.
    pub fn judge(&self, context: &Context, statements: &dyn Statements) -> Judgement {
        if self.version != ABORT_REPORT_VERSION {
            return Judgement::Unproven(Unproven::Version(self.version));
        }
        if self.definition_hash != context.definition_hash {
            return Judgement::Unproven(Unproven::OtherCeremony {
                theirs: self.definition_hash,
                ours: context.definition_hash,
            });
        }
        let by = self.by();
        let message = self.printable_message();
        let Some(evidence) = &self.evidence else {
            return Judgement::Unproven(match (self.culprit, self.missing) {
                (_, Some(missing)) => Unproven::Missing {
                    by,
                    missing,
                    message,
                },
                (Some(culprit), None) => Unproven::NoEvidence {
                    by,
                    culprit,
                    message,
                },
                (None, None) => Unproven::NoBlame { by, message },
            });
        };
        let verdict = match verify_evidence(context, statements, evidence) {
            Ok(verdict) => verdict,
            Err(reason) => return Judgement::Unproven(Unproven::Invalid { by, reason }),
        };
        if self.culprit != Some(verdict.culprit) {
            return Judgement::Unproven(Unproven::OtherCulprit {
                by,
                named: self
                    .culprit
                    .map_or("no one".to_owned(), |c| format!("operator {c}")),
                convicted: verdict.culprit,
            });
        }
        if !verdict.proven {
            return Judgement::Unproven(Unproven::ChannelOnly {
                by,
                culprit: verdict.culprit,
                fault: verdict.fault,
            });
        }
        Judgement::Proven {
            culprit: verdict.culprit,
            fault: verdict.fault,
        }
    }
}
