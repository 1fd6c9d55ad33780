//! Judging abort reports against the ceremony's context: one check per
//! report, which passes only when its evidence proves the fault of the
//! participant it names to anyone, with no trust in the reporter.

use std::path::Path;

use super::{Checks, Report, read_json};
use crate::ceremony::report::{AbortReport, Judgement};
use crate::dkg::Context;
use crate::eth::statements::EthStatements;

/// What one abort report proves, in one line.
///
/// # Errors
///
/// Why the report proves nothing: another ceremony, no evidence, evidence
/// that does not verify, convicts someone else, or is channel-level only.
pub fn judge_abort_report(report: &AbortReport, context: &Context) -> Result<String, String> {
    match report.judge(context, &EthStatements) {
        Judgement::Proven { culprit, fault } => Ok(format!(
            "operator {} (round {}): proven, operator {culprit} is at fault: {fault}",
            report.reporter, report.round
        )),
        Judgement::Unproven(why) => Err(why.to_string()),
    }
}

/// Checks abort reports (`(path, text)` each) against `context`.
pub fn check_abort_reports(reports: &[(&Path, String)], context: &Context) -> Report {
    let mut checks = Checks::default();
    for (path, text) in reports {
        let name = format!("abort report {}", path.display());
        let result = read_json::<AbortReport>(path, Some(text), "abort report")
            .and_then(|report| judge_abort_report(&report, context));
        checks.add(name, result);
    }
    checks.into_report()
}
