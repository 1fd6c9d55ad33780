//! Secrets a command is given: a file, a FIFO or process substitution
//! (`--password-file <(pass show x)`), `-` or `/dev/stdin` for standard
//! input, or, when a command needs one that no flag gives and it runs in a
//! terminal, a prompt that does not echo.
//!
//! The files are read by `store::read_secret_bytes`; this module only adds
//! the terminal. Secrets are never logged, and are held in zeroizing
//! buffers.

use std::io::IsTerminal as _;

use zeroize::Zeroizing;

use crate::error::CliError;

/// Whether this process may prompt: standard input and standard error are
/// both a terminal (the prompt is written to stderr, the answer read from
/// the terminal without echo).
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks for a secret on the terminal, without echo: `question` is shown
/// on stderr followed by `: `.
///
/// # Security
///
/// The terminal line is read into a `String` by `console`, which may have
/// grown (and so copied) it before it is moved into the returned zeroizing
/// buffer; those copies are not wiped.
///
/// # Errors
///
/// A user error when the terminal cannot be read or nothing was typed.
pub fn prompt(question: &str) -> Result<Zeroizing<String>, CliError> {
    let term = console::Term::stderr();
    term.write_str(&format!("{question}: "))
        .and_then(|()| term.flush())
        .map_err(|err| CliError::user("cannot write a prompt to the terminal").with_source(&err))?;
    let answer = Zeroizing::new(term.read_secure_line().map_err(|err| {
        CliError::user(format!("cannot read the {question} from the terminal")).with_source(&err)
    })?);
    if answer.is_empty() {
        return Err(
            CliError::user(format!("no {question} was typed")).with_hint(
                "type it at the prompt, or give it in a file with the command's --*-file flag",
            ),
        );
    }
    Ok(answer)
}
