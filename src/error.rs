//! User-facing errors and the exit-code table.
//!
//! Every module has its own structured error enum; only this module and
//! `cli/` turn them into reports. A report reads:
//!
//! ```text
//! error: failed to read deposit data file deposits.json
//! caused by: No such file or directory (os error 2)
//! hint: check the path given to --deposit-data
//! ```
//!
//! | code | meaning |
//! |-----:|---------|
//! | 0    | success |
//! | 1    | user or configuration error: a flag value dvkg rejects, an unreadable, invalid or too large input file, an output that exists |
//! | 2    | usage error (clap): unknown flag or subcommand, missing argument, a value that is not a number, out of range or not one of the choices |
//! | 3    | ceremony aborted with an identified culprit; `slashing sync` refused a peer's export |
//! | 4    | a peer timed out or could not be reached; `ping` found a pair of operators with no path (or could not tell); `slashing sync` verified too few peers |
//! | 5    | verification ran and found a problem: some check did not pass |
//! | 6    | ceremony aborted without a proven culprit: conflicting hellos (one of two operators is at fault, nothing shows which), another operator's report that cannot be checked, or operators running different definitions |
//! | 7    | the ceremony completed and this operator's outputs are written, but not every operator confirmed its own (`confirmation.json` says which): do not deposit before `dvkg check` passes |
//! | 130  | stopped by a signal (SIGINT, SIGTERM); the peers were told |
//! | 255  | internal error: a bug in dvkg |

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::process::ExitCode;

/// The class of a failure, which fixes the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Exit 1: bad input or configuration.
    User,
    /// Exit 2: the command line itself is malformed.
    Usage,
    /// Exit 3: a ceremony aborted and the culprit is known.
    Culprit,
    /// Exit 4: a peer timed out or could not be reached.
    PeerTimeout,
    /// Exit 5: a verification found a problem.
    VerificationFailed,
    /// Exit 6: a ceremony aborted and no culprit is proven.
    Unproven,
    /// Exit 7: outputs written, not confirmed by every operator.
    Unconfirmed,
    /// Exit 130: stopped by a signal.
    Interrupted,
    /// Exit 255: a bug.
    Internal,
}

impl ErrorKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::User => 1,
            Self::Usage => 2,
            Self::Culprit => 3,
            Self::PeerTimeout => 4,
            Self::VerificationFailed => 5,
            Self::Unproven => 6,
            Self::Unconfirmed => 7,
            Self::Interrupted => 130,
            Self::Internal => 255,
        }
    }
}

/// A failure as the user sees it: one message, the chain of causes, and
/// hints naming the flag or action that would help.
#[derive(Debug)]
pub struct CliError {
    /// What class of failure this is.
    pub kind: ErrorKind,
    /// What failed, lowercase, naming the file, field, flag or operator.
    pub message: String,
    /// The rendered source chain, outermost first.
    pub causes: Vec<String>,
    /// Suggestions, each rendered on a `hint:` line.
    pub hints: Vec<String>,
}

impl CliError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// A user or configuration error (exit 1).
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, message)
    }

    /// A bug (exit 255).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Records `source` and its own sources as `caused by:` lines.
    #[must_use]
    pub fn with_source(mut self, source: &(dyn StdError + 'static)) -> Self {
        let mut next: Option<&(dyn StdError + 'static)> = Some(source);
        while let Some(err) = next {
            let text = err.to_string();
            // thiserror's `{0}` formatting often repeats the source inline;
            // skip a cause already spelled out by its parent.
            if !self.causes.last().is_some_and(|prev| prev.ends_with(&text)) {
                self.causes.push(text);
            }
            next = err.source();
        }
        self
    }

    /// Adds a `caused by:` line.
    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }

    /// Rewrites the message, every cause and every hint with `f` (to name
    /// the operators they mention, say).
    #[must_use]
    pub fn map_text(mut self, f: impl Fn(&str) -> String) -> Self {
        self.message = f(&self.message);
        for line in self.causes.iter_mut().chain(self.hints.iter_mut()) {
            *line = f(line);
        }
        self
    }

    /// Adds a `hint:` line.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.exit_code())
    }

    /// The report printed on stderr.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        for cause in &self.causes {
            let _ = writeln!(out, "caused by: {cause}");
        }
        for hint in &self.hints {
            let _ = writeln!(out, "hint: {hint}");
        }
        out
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_fixed() {
        let table = [
            (ErrorKind::User, 1),
            (ErrorKind::Usage, 2),
            (ErrorKind::Culprit, 3),
            (ErrorKind::PeerTimeout, 4),
            (ErrorKind::VerificationFailed, 5),
            (ErrorKind::Unproven, 6),
            (ErrorKind::Unconfirmed, 7),
            (ErrorKind::Interrupted, 130),
            (ErrorKind::Internal, 255),
        ];
        for (kind, code) in table {
            assert_eq!(kind.exit_code(), code);
        }
    }

    #[test]
    fn render_lists_causes_and_hints() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = CliError::user("failed to read x.json")
            .with_source(&io)
            .with_hint("check --deposit-data");
        assert_eq!(
            err.render(),
            "error: failed to read x.json\ncaused by: no such file\nhint: check --deposit-data\n"
        );
    }
}
