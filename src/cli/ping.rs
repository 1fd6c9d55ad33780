//! `dvkg ping --definition F`: days before the ceremony, every operator
//! runs it at the same time; it tests every pair both ways over the real
//! pinned QUIC and prints who reaches whom (see [`crate::net::ping`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::ceremony::{load_definition, participant_slot};
use super::names::Names;
use crate::ceremony::OperatorId;
use crate::error::{CliError, ErrorKind};
use crate::identity;
use crate::net::Peer;
use crate::net::ping::{self, Cell, Matrix, PingEvent, PingOutcome, PingSetup, Verdict};
use crate::wire::Bytes;

/// How long, at most, an operator waits for the others' rows once its own
/// dials have settled (and at most `--timeout`).
pub const ROW_GRACE_SECS: u64 = 10;

/// Arguments of `dvkg ping`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg ping --definition cluster-definition.json
  dvkg ping --definition cluster-definition.json --listen 0.0.0.0:9000 --json

Every operator of the definition runs it at the same time, days before the
ceremony. It exits 0 when the ceremony will connect: every pair of operators
reaches each other in at least one direction, or through a relay that every
operator reaches; 4 otherwise.")]
pub struct PingArgs {
    /// The cluster definition of the coming ceremony.
    #[arg(long, value_name = "FILE")]
    pub definition: PathBuf,
    /// This operator's identity directory.
    #[arg(long, value_name = "DIR", default_value = ".dvkg")]
    pub identity: PathBuf,
    /// The passphrase of a sealed identity, read from this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Listen (UDP) on this address instead of 0.0.0.0 with this operator's
    /// port from the definition, as the ceremony would.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Stop dialling operators that have not answered after this many
    /// seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Print the matrix as JSON on stdout (formats.md §10.5).
    #[arg(long)]
    pub json: bool,
}

/// The ping, validated and loaded, before any network activity.
struct PingConfig {
    names: Names,
    identity: identity::OperatorIdentity,
    me: OperatorId,
    listen: SocketAddr,
    peers: Vec<Peer>,
    /// Every participant's address, resolved (this operator's included).
    addresses: BTreeMap<OperatorId, SocketAddr>,
    definition_hash: [u8; 32],
    timeout: Duration,
}

impl PingConfig {
    fn from_args(args: &PingArgs) -> Result<Self, CliError> {
        let (definition, context) = load_definition(&args.definition)?;
        let identity =
            super::identity::load_identity(&args.identity, args.passphrase_file.as_deref())?;
        let me = participant_slot(&definition, &identity, &args.definition)?;
        let mesh = super::ceremony::Mesh::of(&definition, me, &args.definition)?;
        Ok(Self {
            names: Names::new(&definition),
            identity,
            me,
            listen: args.listen.unwrap_or(mesh.listen),
            peers: mesh.peers,
            addresses: mesh.addresses,
            definition_hash: context.definition_hash.0,
            timeout: Duration::from_secs(args.timeout),
        })
    }
}

/// Runs `dvkg ping`.
///
/// # Errors
///
/// A user error for bad input (exit 1); exit 4 when some pair of
/// operators reaches each other in neither direction, or is not known to.
pub fn run(args: PingArgs, quiet: bool) -> Result<ExitCode, CliError> {
    let config = PingConfig::from_args(&args)?;
    let socket = UdpSocket::bind(config.listen).map_err(|err| {
        CliError::user(format!("cannot listen on {}", config.listen))
            .with_source(&err)
            .with_hint("pass --listen HOST:PORT, or free the port")
    })?;
    let names = &config.names;
    if !quiet {
        eprintln!(
            "dvkg: {} pinging {} operators of definition {}, listening on {}",
            names.name(config.me),
            config.peers.len(),
            hex::encode(config.definition_hash),
            config.listen
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal("failed to start the async runtime").with_source(&e))?;
    let ours = Bytes(config.definition_hash);
    let outcome = runtime.block_on(async {
        let now = tokio::time::Instant::now();
        let dial_deadline = now + config.timeout;
        let setup = PingSetup {
            me: config.me,
            definition_hash: config.definition_hash,
            peers: config.peers.clone(),
            dial_deadline,
            row_deadline: dial_deadline + config.timeout.min(Duration::from_secs(ROW_GRACE_SECS)),
            idle: config.timeout,
        };
        ping::run(setup, &config.identity.key, socket, |event| {
            if !quiet {
                eprintln!("dvkg: {}", event_line(names, config.me, &ours, event));
            }
        })
        .await
    });
    let outcome = outcome.map_err(|err| {
        CliError::user(format!("cannot ping from {}", config.listen)).with_source(&err)
    })?;
    let matrix = Matrix::build(&outcome, &config.addresses);
    let verdict = matrix.verdict();
    let text = if args.json {
        let report = json_report(&config, &outcome, &matrix, &verdict);
        serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::internal("failed to render the report").with_source(&e))?
            + "\n"
    } else {
        render(names, &ours, &outcome, &matrix, &verdict)
    };
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .map_err(|e| CliError::user("failed to write the matrix").with_source(&e))?;
    }
    if verdict.connects_through_relay() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(failure(names, &matrix, &verdict))
}

/// One progress line on stderr.
fn event_line(names: &Names, me: OperatorId, ours: &Bytes<32>, event: &PingEvent) -> String {
    match event {
        PingEvent::Dialled { peer, dial } => match dial {
            ping::Dial::Reached {
                address,
                rtt_micros,
            } => format!(
                "dialled {}: reached, {}",
                names.tried(*peer, address),
                ping::rtt_text(*rtt_micros)
            ),
            ping::Dial::Failed {
                address,
                attempts,
                failure,
            } => format!(
                "dialled {}: not reached after {attempts} attempt{}: {}",
                names.tried(*peer, address),
                if *attempts == 1 { "" } else { "s" },
                failure.describe(ours)
            ),
        },
        PingEvent::Accepted { peer, from } => format!(
            "{} reached {} from {from}",
            names.name(*peer),
            names.name(me)
        ),
        PingEvent::Refused { from, reason } => format!(
            "refused an incoming connection from {from}: {}",
            names.label(reason)
        ),
        PingEvent::Row { peer } => format!("received the row of {}", names.name(*peer)),
    }
}

/// `operator 3 (c) and operator 4 (d)`, or `operator 1 (a), operator 2 (b)
/// or operator 3 (c)` with `last` = "or".
fn list(names: &Names, ids: &[OperatorId], last: &str) -> String {
    let shown: Vec<String> = ids.iter().map(|&id| names.name(id)).collect();
    match shown.split_last() {
        None => String::new(),
        Some((only, [])) => only.clone(),
        Some((tail, head)) => format!("{} {last} {tail}", head.join(", ")),
    }
}

/// The verdict, one line each.
fn verdict_lines(names: &Names, verdict: &Verdict) -> Vec<String> {
    let mut lines = Vec::new();
    if verdict.connects() {
        lines.push(
            "every pair of operators reaches each other in at least one direction: the ceremony \
             will connect"
                .to_owned(),
        );
    }
    for &(a, b) in &verdict.no_path {
        if verdict.relay_candidates.is_empty() {
            lines.push(format!(
                "{} and {} reach each other in neither direction, and no operator is reached by \
                 every other one to relay them: give one of the two a port forward (inbound UDP \
                 to its port)",
                names.name(a),
                names.name(b)
            ));
        } else {
            lines.push(format!(
                "{} and {} reach each other in neither direction: the ceremony connects them via \
                 a relay, {} (every operator reaches it), automatically after 10 s, or from the \
                 start with --relay-via {} (the same flag for every operator)",
                names.name(a),
                names.name(b),
                list(names, &verdict.relay_candidates, "or"),
                verdict.relay_candidates.first().map_or(0, |r| r.get()),
            ));
        }
    }
    if !verdict.connects() && verdict.connects_through_relay() {
        lines.push(
            "every other pair reaches each other directly: the ceremony will connect, through \
             the relay for the pairs above"
                .to_owned(),
        );
    }
    for &(a, b) in &verdict.unknown {
        lines.push(format!(
            "whether {} and {} reach each other is not known: a row is missing (every operator \
             runs `dvkg ping` at the same time)",
            names.name(a),
            names.name(b)
        ));
    }
    for &o in &verdict.no_inbound {
        lines.push(format!(
            "{} accepts no inbound connection (a NAT, or a firewall with no inbound UDP): fine \
             as long as it dials out to the others",
            names.at(o)
        ));
    }
    lines
}

/// The matrix and the verdict, for people.
fn render(
    names: &Names,
    ours: &Bytes<32>,
    outcome: &PingOutcome,
    matrix: &Matrix,
    verdict: &Verdict,
) -> String {
    let label = |id: OperatorId| format!("{id} {}", names.bare(id));
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["from \\ to".to_owned()];
    header.extend(matrix.operators.iter().map(|&id| label(id)));
    table.push(header);
    for &from in &matrix.operators {
        let mut line = vec![label(from)];
        line.extend(
            matrix
                .operators
                .iter()
                .map(|&to| matrix.cell(from, to).text()),
        );
        table.push(line);
    }
    let columns = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .filter_map(|line| line.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "ping of definition {ours}, as {} sees it (rows: from, columns: to)\n",
        names.name(outcome.me)
    );
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for ((from, to), cell) in &matrix.cells {
        if let Cell::Failed {
            address,
            attempts,
            failure,
        } = cell
        {
            let _ = writeln!(
                out,
                "{} could not ping {}: {} ({attempts} attempt{})",
                names.name(*from),
                names.tried(*to, address),
                failure.describe(ours),
                if *attempts == 1 { "" } else { "s" }
            );
        }
    }
    let missing: Vec<OperatorId> = matrix
        .operators
        .iter()
        .copied()
        .filter(|o| !matrix.rows.contains(o))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "no row arrived from {} (`?`: not known)",
            list(names, &missing, "and")
        );
    }
    for (from, reason) in &outcome.refused {
        let _ = writeln!(
            out,
            "refused an incoming connection from {from}: {}",
            names.label(reason)
        );
    }
    for line in verdict_lines(names, verdict) {
        let _ = writeln!(out, "verdict: {line}");
    }
    out
}

/// The error a failed verdict exits with (exit 4).
fn failure(names: &Names, matrix: &Matrix, verdict: &Verdict) -> CliError {
    let pairs: Vec<String> = verdict
        .no_path
        .iter()
        .map(|&(a, b)| format!("{} and {}", names.name(a), names.name(b)))
        .collect();
    let mut err = if pairs.is_empty() {
        let unknown: Vec<String> = verdict
            .unknown
            .iter()
            .map(|&(a, b)| format!("{} and {}", names.name(a), names.name(b)))
            .collect();
        CliError::new(
            ErrorKind::PeerTimeout,
            format!(
                "could not tell whether every pair of operators connects: not known for {}",
                unknown.join("; ")
            ),
        )
        .with_hint(
            "every operator runs `dvkg ping` with this definition at the same time; raise \
             --timeout if they start minutes apart",
        )
    } else {
        CliError::new(
            ErrorKind::PeerTimeout,
            format!(
                "could not reach: {} reach each other in neither direction",
                pairs.join("; ")
            ),
        )
    };
    if !verdict.no_path.is_empty() {
        err = err.with_hint(match verdict.relay_candidates.as_slice() {
            [] => "no operator is reached by every other one: give one of each pair a port \
                   forward (inbound UDP to its port)"
                .to_owned(),
            candidates => format!(
                "the ceremony needs a relay for them: --relay-via OPERATOR, e.g. {}, which \
                 every operator reaches",
                list(names, candidates, "or")
            ),
        });
    }
    let refused_definition = matrix.cells.values().any(|c| {
        matches!(
            c,
            Cell::Failed {
                failure: ping::DialFailure::OtherDefinition(_),
                ..
            }
        )
    });
    if refused_definition {
        err = err.with_hint(
            "some operators run another definition: agree on one definition file (compare the \
             hashes above) and ping again",
        );
    }
    err
}

/// The JSON report (formats.md §10.5).
#[derive(Debug, Serialize)]
struct PingReport {
    version: u16,
    definition_hash: String,
    ping_id: String,
    me: OperatorId,
    operators: Vec<OperatorView>,
    rows: Vec<OperatorId>,
    cells: Vec<CellView>,
    incoming: Vec<IncomingView>,
    refused: Vec<RefusedView>,
    verdict: VerdictView,
}

#[derive(Debug, Serialize)]
struct OperatorView {
    index: OperatorId,
    name: String,
    address: SocketAddr,
}

#[derive(Debug, Serialize)]
struct CellView {
    from: OperatorId,
    to: OperatorId,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_micros: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    text: String,
}

#[derive(Debug, Serialize)]
struct IncomingView {
    operator: OperatorId,
    from: SocketAddr,
}

#[derive(Debug, Serialize)]
struct RefusedView {
    from: SocketAddr,
    reason: String,
}

#[derive(Debug, Serialize)]
struct VerdictView {
    connects: bool,
    connects_through_relay: bool,
    no_path: Vec<[OperatorId; 2]>,
    unknown: Vec<[OperatorId; 2]>,
    no_inbound: Vec<OperatorId>,
    relay_candidates: Vec<OperatorId>,
}

fn cell_view(from: OperatorId, to: OperatorId, cell: &Cell, ours: &Bytes<32>) -> CellView {
    let mut view = CellView {
        from,
        to,
        result: "unknown",
        address: None,
        rtt_micros: None,
        attempts: None,
        failure: None,
        reason: None,
        text: cell.text(),
    };
    match cell {
        Cell::Myself => view.result = "self",
        Cell::Direct {
            address,
            rtt_micros,
        } => {
            view.result = "direct";
            view.address = Some(*address);
            view.rtt_micros = *rtt_micros;
        }
        Cell::Failed {
            address,
            attempts,
            failure,
        } => {
            view.result = "failed";
            view.address = Some(*address);
            view.attempts = Some(*attempts);
            view.failure = Some(failure.name());
            view.reason = Some(failure.describe(ours));
        }
        Cell::NotArrived { address } => {
            view.result = "not_arrived";
            view.address = Some(*address);
        }
        Cell::Unknown => {}
    }
    view
}

fn json_report(
    config: &PingConfig,
    outcome: &PingOutcome,
    matrix: &Matrix,
    verdict: &Verdict,
) -> PingReport {
    let ours = Bytes(config.definition_hash);
    PingReport {
        version: ping::PING_VERSION,
        definition_hash: hex::encode(config.definition_hash),
        ping_id: hex::encode(ping::ping_id(&config.definition_hash)),
        me: config.me,
        operators: config
            .addresses
            .iter()
            .map(|(&index, &address)| OperatorView {
                index,
                name: config.names.bare(index).to_owned(),
                address,
            })
            .collect(),
        rows: matrix.rows.clone(),
        cells: matrix
            .cells
            .iter()
            .map(|(&(from, to), cell)| cell_view(from, to, cell, &ours))
            .collect(),
        incoming: outcome
            .incoming
            .iter()
            .map(|(&operator, &from)| IncomingView { operator, from })
            .collect(),
        refused: outcome
            .refused
            .iter()
            .map(|(from, reason)| RefusedView {
                from: *from,
                reason: config.names.label(reason),
            })
            .collect(),
        verdict: VerdictView {
            connects: verdict.connects(),
            connects_through_relay: verdict.connects_through_relay(),
            no_path: verdict.no_path.iter().map(|&(a, b)| [a, b]).collect(),
            unknown: verdict.unknown.iter().map(|&(a, b)| [a, b]).collect(),
            no_inbound: verdict.no_inbound.clone(),
            relay_candidates: verdict.relay_candidates.clone(),
        },
    }
}
