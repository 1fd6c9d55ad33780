//! `dvkg transcript show FILE|DIR [--json]`: a ceremony transcript,
//! readable. The default is a summary (the plan, the session id and
//! transcript hash recomputed from the file, every signed message with its
//! sender and size, every validator's key); `--json` prints the whole
//! transcript as JSON (formats.md §8.3), which every reader of dvkg also
//! accepts. It checks nothing: `dvkg verify` does. Exit 0, or 1 when the
//! file cannot be read.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::ceremony::transcript_file::{self, Format};
use crate::dkg::messages::{Body, Signed};
use crate::dkg::transcript::Transcript;
use crate::error::CliError;
use crate::wire;

/// The `dvkg transcript` subcommands.
#[derive(Debug, Subcommand)]
pub enum TranscriptCommand {
    /// Print a transcript readably: a summary, or all of it as JSON.
    Show(ShowArgs),
}

/// Arguments of `dvkg transcript show`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg transcript show out/transcript.bin
  dvkg transcript show out --json")]
pub struct ShowArgs {
    /// A transcript file (transcript.bin, or the JSON view), or an output
    /// directory holding one.
    #[arg(value_name = "FILE|DIR")]
    pub path: PathBuf,
    /// Print the whole transcript as JSON (formats.md §8.3) instead of the
    /// summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `dvkg transcript` subcommand.
///
/// # Errors
///
/// A user error naming the file that cannot be read.
pub fn run(command: TranscriptCommand) -> Result<ExitCode, CliError> {
    match command {
        TranscriptCommand::Show(args) => show(&args),
    }
}

fn show(args: &ShowArgs) -> Result<ExitCode, CliError> {
    let path = if args.path.is_dir() {
        transcript_file::in_dir(&args.path)
    } else {
        args.path.clone()
    };
    let transcript = transcript_file::read(&path).map_err(|err| {
        CliError::user(format!("cannot show {}", path.display()))
            .with_source(&err)
            .with_hint("pass a transcript.bin or transcript.json that dvkg wrote, or the output directory holding it")
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if args.json {
        serde_json::to_writer(&mut out, &transcript)
            .map_err(|e| match e.io_error_kind() {
                Some(kind) => std::io::Error::from(kind),
                None => std::io::Error::other(e),
            })
            .and_then(|()| writeln!(out))
    } else {
        let format = transcript_file::format_of(&path).unwrap_or(Format::Binary);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        write_summary(&mut out, &path, format, size, &transcript)
    };
    match written.and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is no error.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::user("cannot write to standard output").with_source(&err))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn short(bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    match (hex.get(..8), hex.get(hex.len().saturating_sub(8)..)) {
        (Some(head), Some(tail)) if hex.len() > 20 => format!("{head}…{tail}"),
        _ => hex,
    }
}

fn message_line<T: Body>(
    out: &mut impl std::io::Write,
    message: &Signed<T>,
    what: &str,
) -> std::io::Result<()> {
    let size = wire::encode(message).map(|b| b.len()).unwrap_or(0);
    writeln!(
        out,
        "  {:<26} from operator {:<3} {:>12} bytes  body hash {}  {what}",
        message.header.kind.to_string(),
        message.header.sender,
        size,
        short(&message.body_hash()),
    )
}

fn write_summary(
    out: &mut impl std::io::Write,
    path: &Path,
    format: Format,
    size: u64,
    transcript: &Transcript,
) -> std::io::Result<()> {
    let plan = &transcript.context.plan;
    let params = plan.params();
    let format = match format {
        Format::Binary => "binary",
        Format::Json => "JSON",
    };
    let validators = transcript.validators.len();
    let hash = transcript.hash();
    writeln!(
        out,
        "{}: {format} transcript, version {}, {size} bytes ({} per validator)",
        path.display(),
        transcript.version,
        size / u64::try_from(validators.max(1)).unwrap_or(1),
    )?;
    writeln!(
        out,
        "{} ceremony: {} participants, threshold {}, {} validators; statements: {}",
        plan.kind(),
        plan.slots().len(),
        params.threshold(),
        params.validators(),
        plan.statements()
            .iter()
            .map(|s| s.kind.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    )?;
    writeln!(
        out,
        "definition hash  {}",
        hex::encode(transcript.context.definition_hash.0)
    )?;
    writeln!(
        out,
        "session id       {}  (from the hellos)",
        hex::encode(transcript.session_id())
    )?;
    writeln!(
        out,
        "transcript hash  {}  (recomputed; every finalize message and the lock must carry it)",
        hex::encode(hash)
    )?;
    writeln!(out, "participants:")?;
    for (slot, participant) in plan.slots().iter().zip(plan.participants()) {
        writeln!(
            out,
            "  operator {slot:<3} identity {}  {}{}",
            short(&participant.identity.to_bytes()),
            if participant.deals {
                "deals"
            } else {
                "does not deal"
            },
            participant
                .share
                .map(|index| format!(", holds share index {index}"))
                .unwrap_or_else(|| ", holds no share".into()),
        )?;
    }
    writeln!(
        out,
        "messages, as their senders signed them (size: the signed encoding; dvkg verify checks every one):"
    )?;
    for m in &transcript.hellos {
        message_line(out, m, "")?;
    }
    for m in &transcript.deals {
        message_line(
            out,
            m,
            &format!(
                "{} validators' commitments and proofs",
                m.body.validators.len()
            ),
        )?;
    }
    for m in &transcript.acks {
        message_line(
            out,
            m,
            &format!(
                "{} deal receipts, {} complaints",
                m.body.deals.len(),
                m.body.complaints.len()
            ),
        )?;
    }
    for m in &transcript.partials {
        message_line(
            out,
            m,
            &format!("{} validators' partial signatures", m.body.signatures.len()),
        )?;
    }
    for m in &transcript.finals {
        let signed = if m.body.transcript_hash.0 == hash {
            "signs this transcript's hash"
        } else {
            "signs ANOTHER transcript hash"
        };
        message_line(out, m, signed)?;
    }
    writeln!(
        out,
        "validators (group key; public shares in holder order):"
    )?;
    for (v, record) in transcript.validators.iter().enumerate() {
        writeln!(
            out,
            "  {v:<6} {}  {}",
            hex::encode(record.group_key.0),
            record
                .public_shares
                .iter()
                .map(|p| short(&p.0))
                .collect::<Vec<_>>()
                .join(" "),
        )?;
    }
    Ok(())
}
