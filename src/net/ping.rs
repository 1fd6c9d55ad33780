//! `dvkg ping`: before a ceremony, every operator tests every pair both
//! ways over the real pinned QUIC, and they share what they found.
//!
//! Spec: `ceremony-specs/formats.md` §10.5.
//!
//! Unlike the mesh ([`super::quic`]), nothing is deduplicated: the dial
//! i → j and the dial j → i are separate tests, each on its own
//! connection. Each operator binds its listening socket, dials every peer
//! (retrying until the dial deadline, as the ceremony does) and accepts
//! every peer's dial, with the ceremony's mutual TLS: the roster of the
//! definition's identity keys.
//!
//! **Never mixed with a ceremony.** A ping negotiates its own ALPN,
//! [`PING_ALPN`], and offers the ceremony's ([`tls::ALPN`]) after it, only
//! to recognise a peer that runs `dvkg ceremony`: when the other side
//! settles on the ceremony's, the ping closes the connection before either
//! side sends a byte, so a ceremony's mailbox never sees a ping's stream
//! (which it would blame its sender for), and the peer is named as running
//! the ceremony.
//!
//! On a dialled connection:
//!
//! 1. the dialler sends a [`PingHello`] alone on the first unidirectional
//!    stream: the definition hash and the ping id
//!    `SHA-256("dvkg-ping/1" ‖ definition hash)`, which no ceremony's frame
//!    carries (they carry the bare definition hash);
//! 2. the acceptor answers with its own [`PingHello`] on its first
//!    unidirectional stream (also when the definitions differ, so that the
//!    dialler can show both hashes);
//! 3. the dialler times [`ECHO_ROUNDS`] echoes, each on a new
//!    bidirectional stream: the fastest is the round-trip time reported.
//!
//! Once its own dials are settled, an operator sends its [`PingRow`] (its
//! dials and who dialled it) on a new unidirectional stream to every peer
//! it holds a connection with, either direction, and collects the others'
//! rows until every row is in or the row deadline passes.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument as _, debug};

use super::quic::{closed_reason, dial_failure, peer_key, transport_config};
use super::{
    CLOSE_DONE, CLOSE_REFUSED, Closed, DIAL_ATTEMPT_SECS, DONE_REASON, Peer, TransportError, tls,
};
use crate::ceremony::OperatorId;
use crate::crypto::identity::{IdentityKey, IdentityPublicKey};
use crate::wire::{self, Bytes};

/// The version of the ping's messages.
pub const PING_VERSION: u16 = 1;
/// The domain of the ping id.
pub const PING_DOMAIN: &[u8] = b"dvkg-ping/1";
/// How many echoes a dial times.
pub const ECHO_ROUNDS: usize = 3;
/// How long each step on an established connection (a hello, an echo, a
/// row) may take.
pub const PING_STEP_SECS: u64 = 5;
/// The largest ping message read.
pub const MAX_PING_MESSAGE_BYTES: u64 = 64 * 1024;
/// The bytes of one echo.
const ECHO_BYTES: usize = 8;
/// The close reason of a ping connection closed because the peer runs
/// another definition, or a ceremony.
const REFUSED_REASON: &[u8] = b"ping refused";

/// The ALPN protocol id of a ping.
pub const PING_ALPN: &[u8] = b"dvkg-ping/1";

/// The ALPN a ping offers and accepts: its own first, then the ceremony's
/// (to recognise a peer that runs the ceremony).
fn alpn() -> Vec<Vec<u8>> {
    vec![PING_ALPN.to_vec(), tls::ALPN.to_vec()]
}

/// Whether `connection` settled on the ping's ALPN.
fn speaks_ping(connection: &quinn::Connection) -> bool {
    connection
        .handshake_data()
        .and_then(|any| any.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .is_some_and(|protocol| protocol == PING_ALPN)
}

/// What a peer that settled on the ceremony's ALPN is told.
const CEREMONY_ALPN: &str = "it negotiated the ceremony's ALPN, not the ping's";

/// `SHA-256("dvkg-ping/1" ‖ definition hash)`: what a ping is bound to.
pub fn ping_id(definition_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(PING_DOMAIN);
    hasher.update(definition_hash);
    hasher.finalize().into()
}

/// The first stream of a ping connection, both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingHello {
    /// [`PING_VERSION`].
    pub version: u16,
    /// [`ping_id`] of `definition`.
    pub ping: Bytes<32>,
    /// The sender's definition hash.
    pub definition: Bytes<32>,
    /// The sending operator.
    pub sender: OperatorId,
}

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DialFailure {
    /// No handshake completed before the deadline.
    NoAnswer,
    /// A handshake failed (TLS: the identity at that address is not the
    /// pinned one, or it does not know ours; or another protocol).
    Handshake(String),
    /// The peer runs another definition (its hash).
    OtherDefinition(Bytes<32>),
    /// The peer runs `dvkg ceremony`, not `dvkg ping` (what showed it).
    Ceremony(String),
    /// Anything else (an invalid hello, a failed echo, a closed
    /// connection).
    Other(String),
}

impl DialFailure {
    /// A short name, for the JSON report.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NoAnswer => "no_answer",
            Self::Handshake(_) => "handshake",
            Self::OtherDefinition(_) => "other_definition",
            Self::Ceremony(_) => "ceremony",
            Self::Other(_) => "other",
        }
    }

    /// The matrix cell text for a dial of `address` that failed so.
    pub fn cell(&self, address: SocketAddr) -> String {
        match self {
            Self::NoAnswer => format!("no: timed out dialling {address}"),
            Self::Handshake(_) => format!("no: handshake failed with {address}"),
            Self::OtherDefinition(_) => format!("no: other definition at {address}"),
            Self::Ceremony(_) => format!("no: a ceremony at {address}"),
            Self::Other(_) => format!("no: failed at {address}"),
        }
    }

    /// The whole reason, `ours` this side's definition hash.
    pub fn describe(&self, ours: &Bytes<32>) -> String {
        match self {
            Self::NoAnswer => "no handshake completed before the deadline".into(),
            Self::Handshake(why) => why.clone(),
            Self::OtherDefinition(theirs) => format!(
                "it runs another definition: its definition hash is {theirs}, this one's {ours}"
            ),
            Self::Ceremony(why) => format!("it runs `dvkg ceremony`, not `dvkg ping` ({why})"),
            Self::Other(why) => why.clone(),
        }
    }
}

/// How one dial went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dial {
    /// The peer answered the ping.
    Reached {
        /// The address dialled.
        address: SocketAddr,
        /// The fastest echo, in microseconds.
        rtt_micros: u64,
    },
    /// It did not.
    Failed {
        /// The address dialled.
        address: SocketAddr,
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed.
        failure: DialFailure,
    },
}

/// What one operator found, sent to every peer it has a connection with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingRow {
    /// [`PING_VERSION`].
    pub version: u16,
    /// The ping id.
    pub ping: Bytes<32>,
    /// The sending operator.
    pub sender: OperatorId,
    /// Its dials, one per peer.
    pub dials: Vec<(OperatorId, Dial)>,
    /// The peers whose ping reached it, and the address each came from.
    pub incoming: Vec<(OperatorId, SocketAddr)>,
}

/// What a ping is run with.
#[derive(Debug, Clone)]
pub struct PingSetup {
    /// This operator.
    pub me: OperatorId,
    /// The definition hash.
    pub definition_hash: [u8; 32],
    /// The other operators.
    pub peers: Vec<Peer>,
    /// When to stop dialling.
    pub dial_deadline: Instant,
    /// When to stop waiting for the others' rows.
    pub row_deadline: Instant,
    /// The QUIC idle timeout's base (see [`super::idle_timeout`]).
    pub idle: Duration,
}

/// What the ping tells its caller as it goes.
#[derive(Debug, Clone)]
pub enum PingEvent {
    /// A dial of this side settled.
    Dialled {
        /// The peer.
        peer: OperatorId,
        /// How it went.
        dial: Dial,
    },
    /// A peer's ping reached this side.
    Accepted {
        /// The peer.
        peer: OperatorId,
        /// From where.
        from: SocketAddr,
    },
    /// An incoming connection was refused.
    Refused {
        /// From where.
        from: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A peer's row arrived.
    Row {
        /// The peer.
        peer: OperatorId,
    },
}

/// What one operator's ping found: its own dials, its incoming
/// connections, and the rows of the peers that arrived.
#[derive(Debug, Clone)]
pub struct PingOutcome {
    /// This operator.
    pub me: OperatorId,
    /// Its dials.
    pub dials: BTreeMap<OperatorId, Dial>,
    /// The peers whose ping reached it, and from where.
    pub incoming: BTreeMap<OperatorId, SocketAddr>,
    /// Incoming connections refused: from where, and why.
    pub refused: Vec<(SocketAddr, String)>,
    /// The rows of the other operators that arrived.
    pub rows: BTreeMap<OperatorId, PingRow>,
}

/// What the tasks report to [`run`].
enum Event {
    Dialled {
        peer: OperatorId,
        dial: Dial,
        connection: Option<quinn::Connection>,
    },
    Accepted {
        peer: OperatorId,
        from: SocketAddr,
        connection: quinn::Connection,
    },
    Refused {
        from: SocketAddr,
        reason: String,
    },
    Row(PingRow),
    RowSent {
        peer: OperatorId,
    },
}

/// Everything the connection tasks share.
#[derive(Clone)]
struct Shared {
    me: OperatorId,
    hello: PingHello,
    events: mpsc::UnboundedSender<Event>,
    idle: Duration,
}

impl Shared {
    fn send(&self, event: Event) {
        // The receiver is gone only once the ping is over.
        let _ = self.events.send(event);
    }
}

/// Runs one operator's ping on `socket`, until every row is in or the row
/// deadline passes.
///
/// # Errors
///
/// [`TransportError::Endpoint`] or [`TransportError::Tls`] if the endpoint
/// cannot be set up. Peers that cannot be reached are findings, not errors.
pub async fn run(
    setup: PingSetup,
    identity: &IdentityKey,
    socket: UdpSocket,
    on_event: impl Fn(&PingEvent) + Send,
) -> Result<PingOutcome, TransportError> {
    let address = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let endpoint_error = |reason: String| TransportError::Endpoint {
        address: address.clone(),
        reason,
    };
    let mut roster: Vec<IdentityPublicKey> = setup.peers.iter().map(|p| p.key).collect();
    roster.push(identity.public());
    let mut server_tls = tls::server_config(identity, &roster)?;
    server_tls.alpn_protocols = alpn();
    let server_crypto =
        QuicServerConfig::try_from(server_tls).map_err(|e| endpoint_error(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server.transport_config(transport_config(setup.idle));
    let runtime =
        quinn::default_runtime().ok_or_else(|| endpoint_error("no async runtime".into()))?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )
    .map_err(|e| endpoint_error(e.to_string()))?;

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let ping = Bytes(ping_id(&setup.definition_hash));
    let shared = Shared {
        me: setup.me,
        hello: PingHello {
            version: PING_VERSION,
            ping,
            definition: Bytes(setup.definition_hash),
            sender: setup.me,
        },
        events: events_tx,
        idle: setup.idle,
    };
    for peer in &setup.peers {
        let mut client_tls = tls::client_config(identity, peer.key)?;
        client_tls.alpn_protocols = alpn();
        let client_crypto =
            QuicClientConfig::try_from(client_tls).map_err(|e| endpoint_error(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
        client.transport_config(transport_config(setup.idle));
        let span = tracing::debug_span!("ping", operator = %peer.id, address = %peer.address);
        tokio::spawn(
            dial(
                shared.clone(),
                endpoint.clone(),
                client,
                peer.clone(),
                setup.dial_deadline,
            )
            .instrument(span),
        );
    }
    tokio::spawn(accept(
        shared.clone(),
        endpoint.clone(),
        setup.peers.iter().map(|p| (p.key, p.id)).collect(),
    ));

    let mut outcome = PingOutcome {
        me: setup.me,
        dials: BTreeMap::new(),
        incoming: BTreeMap::new(),
        refused: Vec::new(),
        rows: BTreeMap::new(),
    };
    // Every connection with a peer, either direction: the row goes on one.
    let mut connections: BTreeMap<OperatorId, Vec<quinn::Connection>> = BTreeMap::new();
    let mut row: Option<Arc<Vec<u8>>> = None;
    // Peers the row was handed to, and those that acknowledged it.
    let mut sending: BTreeMap<OperatorId, bool> = BTreeMap::new();
    let wanted = setup.peers.len();
    loop {
        if row.is_none() && outcome.dials.len() == wanted {
            let mine = PingRow {
                version: PING_VERSION,
                ping,
                sender: setup.me,
                dials: outcome.dials.iter().map(|(k, v)| (*k, v.clone())).collect(),
                incoming: outcome.incoming.iter().map(|(k, v)| (*k, *v)).collect(),
            };
            let bytes = wire::encode(&mine).map_err(|e| endpoint_error(e.to_string()))?;
            row = Some(Arc::new(bytes));
        }
        if let Some(bytes) = &row {
            for (peer, live) in &connections {
                if !sending.contains_key(peer) {
                    sending.insert(*peer, false);
                    tokio::spawn(send_row(shared.clone(), *peer, live.clone(), bytes.clone()));
                }
            }
            let all_rows = outcome.rows.len() == wanted;
            let all_sent = sending.values().all(|acked| *acked);
            if all_rows && all_sent {
                break;
            }
        }
        let event = tokio::select! {
            event = events.recv() => event,
            () = tokio::time::sleep_until(setup.row_deadline) => break,
        };
        let Some(event) = event else { break };
        match event {
            Event::Dialled {
                peer,
                dial,
                connection,
            } => {
                on_event(&PingEvent::Dialled {
                    peer,
                    dial: dial.clone(),
                });
                outcome.dials.insert(peer, dial);
                if let Some(connection) = connection {
                    connections.entry(peer).or_default().push(connection);
                }
            }
            Event::Accepted {
                peer,
                from,
                connection,
            } => {
                on_event(&PingEvent::Accepted { peer, from });
                // The incoming list of this side's row is the one at the
                // time its dials settle; a later dial still reaches the
                // matrix through the dialler's own row.
                outcome.incoming.insert(peer, from);
                connections.entry(peer).or_default().push(connection);
            }
            Event::Refused { from, reason } => {
                on_event(&PingEvent::Refused {
                    from,
                    reason: reason.clone(),
                });
                outcome.refused.push((from, reason));
            }
            Event::Row(received) => {
                if received.sender != setup.me {
                    on_event(&PingEvent::Row {
                        peer: received.sender,
                    });
                    outcome.rows.entry(received.sender).or_insert(received);
                }
            }
            Event::RowSent { peer } => {
                sending.insert(peer, true);
            }
        }
    }
    endpoint.close(quinn::VarInt::from_u32(CLOSE_DONE), DONE_REASON);
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    Ok(outcome)
}

/// Sends this side's row to `peer` on the first of its connections that
/// takes it, acknowledged.
async fn send_row(
    shared: Shared,
    peer: OperatorId,
    connections: Vec<quinn::Connection>,
    bytes: Arc<Vec<u8>>,
) {
    for connection in connections {
        let sent = tokio::time::timeout(Duration::from_secs(PING_STEP_SECS), async {
            let mut stream = connection.open_uni().await.map_err(|e| e.to_string())?;
            stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
            stream.finish().map_err(|e| e.to_string())?;
            stream.stopped().await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        })
        .await;
        match sent {
            Ok(Ok(())) => break,
            Ok(Err(why)) => debug!(peer = %peer, %why, "could not send the row on a connection"),
            Err(_) => debug!(peer = %peer, "the row was not acknowledged in time"),
        }
    }
    // Sent or not, there is nothing more to try.
    shared.send(Event::RowSent { peer });
}

/// Reads one whole unidirectional stream of at most `limit` bytes.
async fn read_stream(connection: &quinn::Connection, limit: u64) -> Result<Vec<u8>, String> {
    let mut stream = connection.accept_uni().await.map_err(|e| e.to_string())?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    stream.read_to_end(limit).await.map_err(|e| e.to_string())
}

/// Reads every row `peer` sends on `connection`, until it ends.
async fn read_rows(shared: Shared, peer: OperatorId, connection: quinn::Connection) {
    loop {
        let Ok(bytes) = read_stream(&connection, MAX_PING_MESSAGE_BYTES).await else {
            return;
        };
        match wire::decode::<PingRow>(&bytes, MAX_PING_MESSAGE_BYTES) {
            Ok(row)
                if row.sender == peer
                    && row.version == PING_VERSION
                    && row.ping == shared.hello.ping =>
            {
                shared.send(Event::Row(row));
            }
            Ok(row) => {
                debug!(peer = %peer, sender = %row.sender, "a row for another ping or sender; ignored");
            }
            Err(err) => {
                debug!(peer = %peer, %err, "an invalid row; ignored");
            }
        }
    }
}

/// The failure a closed connection means during a ping's hello.
fn hello_closed(err: &quinn::ConnectionError, idle: Duration) -> DialFailure {
    match closed_reason(err, idle) {
        Closed::Refused(reason) if reason.as_bytes() == REFUSED_REASON => {
            DialFailure::Other("it refused the ping".into())
        }
        other => DialFailure::Other(format!("the connection ended during the ping: {other}")),
    }
}

/// The hello exchange and the echoes on a connection this side dialled:
/// the fastest echo, or why the ping failed.
async fn ping_dialled(
    shared: &Shared,
    peer: OperatorId,
    connection: &quinn::Connection,
) -> Result<Duration, DialFailure> {
    if !speaks_ping(connection) {
        return Err(DialFailure::Ceremony(CEREMONY_ALPN.into()));
    }
    let step = Duration::from_secs(PING_STEP_SECS);
    let hello = wire::encode(&shared.hello).map_err(|e| DialFailure::Other(e.to_string()))?;
    let sent = async {
        let mut stream = connection.open_uni().await.map_err(|e| e.to_string())?;
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        stream.finish().map_err(|e| e.to_string())
    };
    match tokio::time::timeout(step, sent).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            return Err(match connection.close_reason() {
                Some(err) => hello_closed(&err, shared.idle),
                None => DialFailure::Other(format!("the hello could not be sent: {why}")),
            });
        }
        Err(_) => {
            return Err(DialFailure::Other(
                "the hello could not be sent in time".into(),
            ));
        }
    }
    let answer = tokio::select! {
        answer = tokio::time::timeout(step, read_stream(connection, MAX_PING_MESSAGE_BYTES)) => answer,
        err = connection.closed() => return Err(hello_closed(&err, shared.idle)),
    };
    let bytes = match answer {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            let err = connection.closed().await;
            return Err(hello_closed(&err, shared.idle));
        }
        Err(_) => {
            return Err(DialFailure::Other(format!(
                "it accepted the connection but sent no ping hello within {PING_STEP_SECS} s \
                 (is it running `dvkg ceremony` instead of `dvkg ping`?)"
            )));
        }
    };
    let theirs: PingHello = wire::decode(&bytes, MAX_PING_MESSAGE_BYTES)
        .map_err(|e| DialFailure::Other(format!("it sent an invalid ping hello: {e}")))?;
    if theirs.definition != shared.hello.definition {
        return Err(DialFailure::OtherDefinition(theirs.definition));
    }
    if theirs.version != PING_VERSION || theirs.sender != peer || theirs.ping != shared.hello.ping {
        return Err(DialFailure::Other(format!(
            "it sent a ping hello of version {} from claimed operator {} for ping id {}",
            theirs.version, theirs.sender, theirs.ping
        )));
    }
    let mut fastest: Option<Duration> = None;
    for round in 0..ECHO_ROUNDS {
        let nonce = (round as u64).to_le_bytes();
        let started = Instant::now();
        let echoed = tokio::time::timeout(step, async {
            let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(&nonce).await.map_err(|e| e.to_string())?;
            send.finish().map_err(|e| e.to_string())?;
            recv.read_to_end(ECHO_BYTES)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        match echoed {
            Ok(Ok(back)) if back == nonce => {
                let took = started.elapsed();
                fastest = Some(fastest.map_or(took, |f| f.min(took)));
            }
            Ok(Ok(_)) => return Err(DialFailure::Other("it echoed other bytes".into())),
            Ok(Err(why)) => return Err(DialFailure::Other(format!("an echo failed: {why}"))),
            Err(_) => {
                return Err(DialFailure::Other(format!(
                    "an echo took longer than {PING_STEP_SECS} s"
                )));
            }
        }
    }
    fastest.ok_or_else(|| DialFailure::Other("no echo".into()))
}

/// Dials `peer` until its ping is answered, it refuses for good, or the
/// deadline passes; reports the outcome.
async fn dial(
    shared: Shared,
    endpoint: quinn::Endpoint,
    client: quinn::ClientConfig,
    peer: Peer,
    deadline: Instant,
) {
    let mut attempts = 0u32;
    let mut last = DialFailure::NoAnswer;
    let mut backoff = Duration::from_millis(100);
    let failed = |attempts: u32, failure: DialFailure| Event::Dialled {
        peer: peer.id,
        dial: Dial::Failed {
            address: peer.address,
            attempts,
            failure,
        },
        connection: None,
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        attempts += 1;
        let attempt_until = deadline.min(now + Duration::from_secs(DIAL_ATTEMPT_SECS));
        let connecting =
            match endpoint.connect_with(client.clone(), peer.address, tls::CERTIFICATE_NAME) {
                Ok(connecting) => connecting,
                Err(err) => {
                    shared.send(failed(attempts, DialFailure::Other(err.to_string())));
                    return;
                }
            };
        match tokio::time::timeout_at(attempt_until, connecting).await {
            Ok(Ok(connection)) => match ping_dialled(&shared, peer.id, &connection).await {
                Ok(rtt) => {
                    let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
                    tokio::spawn(read_rows(shared.clone(), peer.id, connection.clone()));
                    shared.send(Event::Dialled {
                        peer: peer.id,
                        dial: Dial::Reached {
                            address: peer.address,
                            rtt_micros: micros,
                        },
                        connection: Some(connection),
                    });
                    return;
                }
                Err(failure) => {
                    // An answer from the peer itself: dialling again gets
                    // the same one.
                    connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), REFUSED_REASON);
                    shared.send(failed(attempts, failure));
                    return;
                }
            },
            Ok(Err(err)) => {
                let text = dial_failure(&err);
                debug!(failure = %text, "ping dial failed; retrying");
                last = if matches!(err, quinn::ConnectionError::TimedOut) {
                    DialFailure::NoAnswer
                } else {
                    DialFailure::Handshake(text)
                };
            }
            Err(_) => last = DialFailure::NoAnswer,
        }
        let wake = deadline.min(Instant::now() + backoff);
        tokio::time::sleep_until(wake).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    shared.send(failed(attempts, last));
}

/// Accepts every incoming connection and answers its ping.
async fn accept(
    shared: Shared,
    endpoint: quinn::Endpoint,
    roster: Vec<(IdentityPublicKey, OperatorId)>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        let roster = roster.clone();
        tokio::spawn(async move {
            let from = incoming.remote_address();
            let refuse = |reason: String| shared.send(Event::Refused { from, reason });
            let connection = match tokio::time::timeout(
                Duration::from_secs(DIAL_ATTEMPT_SECS),
                incoming,
            )
            .await
            {
                Ok(Ok(connection)) => connection,
                Ok(Err(err)) => return refuse(format!("handshake failed: {err}")),
                Err(_) => return refuse("the handshake did not complete".into()),
            };
            let key = peer_key(&connection);
            let Some(&(_, peer)) = roster.iter().find(|(k, _)| Some(*k) == key) else {
                connection.close(
                    quinn::VarInt::from_u32(CLOSE_REFUSED),
                    b"not an operator of this cluster",
                );
                return refuse("not an operator of this cluster".into());
            };
            if !speaks_ping(&connection) {
                connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), REFUSED_REASON);
                return refuse(format!(
                    "operator {peer} runs `dvkg ceremony`, not `dvkg ping` ({CEREMONY_ALPN})"
                ));
            }
            match answer(&shared, peer, &connection).await {
                Ok(()) => {
                    tokio::spawn(echo(connection.clone()));
                    tokio::spawn(read_rows(shared.clone(), peer, connection.clone()));
                    shared.send(Event::Accepted {
                        peer,
                        from,
                        connection,
                    });
                }
                Err(reason) => {
                    connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), REFUSED_REASON);
                    refuse(format!("operator {peer}'s ping: {reason}"));
                }
            }
        });
    }
}

/// On a connection `peer` dialled: reads its hello and answers with ours.
async fn answer(
    shared: &Shared,
    peer: OperatorId,
    connection: &quinn::Connection,
) -> Result<(), String> {
    let step = Duration::from_secs(PING_STEP_SECS);
    let bytes = match tokio::time::timeout(step, read_stream(connection, MAX_PING_MESSAGE_BYTES))
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(why)) => return Err(format!("its first stream failed: {why}")),
        Err(_) => {
            return Err(format!(
                "it sent no ping hello within {PING_STEP_SECS} s (is it running `dvkg ceremony` instead of `dvkg ping`?)"
            ));
        }
    };
    let theirs: PingHello = wire::decode(&bytes, MAX_PING_MESSAGE_BYTES)
        .map_err(|e| format!("an invalid ping hello: {e}"))?;
    // Ours goes back whatever theirs says, so that the dialler can name
    // both definitions.
    let hello = wire::encode(&shared.hello).map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(step, async {
        let mut stream = connection.open_uni().await.map_err(|e| e.to_string())?;
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        stream.finish().map_err(|e| e.to_string())?;
        stream.stopped().await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })
    .await
    .map_err(|_| "the answer was not acknowledged in time".to_owned())?;
    reply?;
    if theirs.definition != shared.hello.definition {
        // Give the dialler a moment to read our hello before the close.
        let _ = tokio::time::timeout(step, connection.closed()).await;
        return Err(format!(
            "it runs another definition: its definition hash is {}, this one's {}",
            theirs.definition, shared.hello.definition
        ));
    }
    if theirs.version != PING_VERSION || theirs.sender != peer || theirs.ping != shared.hello.ping {
        return Err(format!(
            "a ping hello of version {} from claimed operator {}",
            theirs.version, theirs.sender
        ));
    }
    debug!(me = %shared.me, peer = %peer, "ping answered");
    Ok(())
}

/// Echoes every bidirectional stream the dialler opens, until the
/// connection ends.
async fn echo(connection: quinn::Connection) {
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        tokio::spawn(async move {
            if let Ok(Ok(bytes)) = tokio::time::timeout(
                Duration::from_secs(PING_STEP_SECS),
                recv.read_to_end(ECHO_BYTES),
            )
            .await
            {
                let _ = send.write_all(&bytes).await;
                let _ = send.finish();
            }
        });
    }
}

/// One cell of the matrix: what is known of the dial `from` → `to`.
///
/// A relayed path (`Via`) is left for the relay to add: the verdict only
/// counts [`Cell::Direct`] as a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// The diagonal.
    Myself,
    /// The dial got through: the address tried and, when the dialler's own
    /// row says, the round-trip time.
    Direct {
        /// The address dialled.
        address: SocketAddr,
        /// The fastest echo in microseconds; `None` when only the
        /// receiving side saw the dial (the dialler's row is missing).
        rtt_micros: Option<u64>,
    },
    /// The dial failed, in the dialler's own words.
    Failed {
        /// The address dialled.
        address: SocketAddr,
        /// How many attempts.
        attempts: u32,
        /// Why.
        failure: DialFailure,
    },
    /// The dialler's row is missing, and this operator (the receiving
    /// side) never saw its dial arrive.
    NotArrived {
        /// This operator's address, which the dialler would have dialled.
        address: SocketAddr,
    },
    /// The dialler's row never arrived.
    Unknown,
}

impl Cell {
    /// Whether the dial is known to have got through.
    pub fn reached(&self) -> bool {
        matches!(self, Self::Direct { .. })
    }

    /// Whether the dial is known to have failed.
    pub fn failed(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::NotArrived { .. })
    }

    fn from_dial(dial: &Dial) -> Self {
        match dial {
            Dial::Reached {
                address,
                rtt_micros,
            } => Self::Direct {
                address: *address,
                rtt_micros: Some(*rtt_micros),
            },
            Dial::Failed {
                address,
                attempts,
                failure,
            } => Self::Failed {
                address: *address,
                attempts: *attempts,
                failure: failure.clone(),
            },
        }
    }

    /// The text of the cell in the printed matrix.
    pub fn text(&self) -> String {
        match self {
            Self::Myself => "--".into(),
            Self::Direct {
                rtt_micros: Some(micros),
                ..
            } => rtt_text(*micros),
            Self::Direct {
                rtt_micros: None, ..
            } => "yes".into(),
            Self::Failed {
                address, failure, ..
            } => failure.cell(*address),
            Self::NotArrived { address } => format!("no: nothing arrived at {address}"),
            Self::Unknown => "?".into(),
        }
    }
}

/// A round-trip time for people: `12 ms`, `2.5 ms`, `45 µs` (a loopback
/// or LAN round trip is well below a millisecond).
pub fn rtt_text(micros: u64) -> String {
    if micros < 1000 {
        format!("{micros} µs")
    } else if micros >= 10_000 {
        format!("{} ms", (micros + 500) / 1000)
    } else {
        format!("{:.1} ms", micros as f64 / 1000.0)
    }
}

/// The whole N × N matrix as one operator assembled it, and the verdict.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Every operator, in index order.
    pub operators: Vec<OperatorId>,
    /// `cells[(from, to)]`.
    pub cells: BTreeMap<(OperatorId, OperatorId), Cell>,
    /// The operators whose row is in the matrix (this one's included).
    pub rows: Vec<OperatorId>,
}

/// What the matrix says about the ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Pairs that reach each other in neither direction.
    pub no_path: Vec<(OperatorId, OperatorId)>,
    /// Pairs with no known path, but a direction not known either.
    pub unknown: Vec<(OperatorId, OperatorId)>,
    /// Operators no dial reached, with at least one known to have failed
    /// (a NAT, or a firewall with no inbound UDP).
    pub no_inbound: Vec<OperatorId>,
    /// Operators that every other operator connects with, in at least one
    /// direction: the candidates for a relay.
    pub relay_candidates: Vec<OperatorId>,
}

impl Verdict {
    /// Whether every pair connects in at least one direction: the
    /// ceremony's mesh will connect.
    pub fn connects(&self) -> bool {
        self.no_path.is_empty() && self.unknown.is_empty()
    }

    /// Whether the ceremony's mesh will connect, relaying the pairs with no
    /// direct path: every such pair has an operator that every operator
    /// reaches directly, through which the mesh relays it (automatically
    /// after a dial window, or from the start with `--relay-via`).
    pub fn connects_through_relay(&self) -> bool {
        self.unknown.is_empty() && (self.no_path.is_empty() || !self.relay_candidates.is_empty())
    }
}

impl Matrix {
    /// The matrix from `outcome`: this operator's own dials, the rows that
    /// arrived, and for the rows missing, what this operator saw arrive.
    /// `addresses` maps each operator to its address in the definition.
    pub fn build(outcome: &PingOutcome, addresses: &BTreeMap<OperatorId, SocketAddr>) -> Self {
        let operators: Vec<OperatorId> = addresses.keys().copied().collect();
        let me = outcome.me;
        let mut cells = BTreeMap::new();
        let mut rows = vec![me];
        rows.extend(outcome.rows.keys().copied().filter(|&o| o != me));
        rows.sort();
        for &from in &operators {
            let dials: BTreeMap<OperatorId, &Dial> = if from == me {
                outcome.dials.iter().map(|(k, v)| (*k, v)).collect()
            } else if let Some(row) = outcome.rows.get(&from) {
                row.dials.iter().map(|(k, v)| (*k, v)).collect()
            } else {
                BTreeMap::new()
            };
            let have_row = from == me || outcome.rows.contains_key(&from);
            for &to in &operators {
                let cell = if from == to {
                    Cell::Myself
                } else if let Some(dial) = dials.get(&to) {
                    Cell::from_dial(dial)
                } else if !have_row && to == me {
                    // First-hand: this side saw the dial arrive, or not.
                    match (outcome.incoming.get(&from), addresses.get(&me)) {
                        (Some(_), Some(address)) => Cell::Direct {
                            address: *address,
                            rtt_micros: None,
                        },
                        (None, Some(address)) => Cell::NotArrived { address: *address },
                        _ => Cell::Unknown,
                    }
                } else if !have_row
                    && let (Some(row), Some(address)) = (outcome.rows.get(&to), addresses.get(&to))
                    && row.incoming.iter().any(|(o, _)| *o == from)
                {
                    // The receiving side's row saw the dial arrive. (Its
                    // list is from when its own dials settled: a dial not
                    // in it may have arrived later, so it proves no
                    // failure.)
                    Cell::Direct {
                        address: *address,
                        rtt_micros: None,
                    }
                } else {
                    Cell::Unknown
                };
                cells.insert((from, to), cell);
            }
        }
        Self {
            operators,
            cells,
            rows,
        }
    }

    /// The cell `from` → `to`.
    pub fn cell(&self, from: OperatorId, to: OperatorId) -> &Cell {
        self.cells.get(&(from, to)).unwrap_or(&Cell::Unknown)
    }

    /// Whether `a` and `b` connect in at least one direction.
    pub fn connected(&self, a: OperatorId, b: OperatorId) -> bool {
        self.cell(a, b).reached() || self.cell(b, a).reached()
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        let mut no_path = Vec::new();
        let mut unknown = Vec::new();
        for (position, &a) in self.operators.iter().enumerate() {
            for &b in self.operators.iter().skip(position + 1) {
                if self.connected(a, b) {
                    continue;
                }
                if self.cell(a, b).failed() && self.cell(b, a).failed() {
                    no_path.push((a, b));
                } else {
                    unknown.push((a, b));
                }
            }
        }
        let no_inbound = self
            .operators
            .iter()
            .copied()
            .filter(|&to| {
                let column: Vec<&Cell> = self
                    .operators
                    .iter()
                    .filter(|&&from| from != to)
                    .map(|&from| self.cell(from, to))
                    .collect();
                !column.is_empty()
                    && !column.iter().any(|c| c.reached())
                    && column.iter().any(|c| c.failed())
            })
            .collect();
        let relay_candidates = self
            .operators
            .iter()
            .copied()
            .filter(|&r| {
                self.operators
                    .iter()
                    .all(|&other| other == r || self.connected(r, other))
            })
            .collect();
        Verdict {
            no_path,
            unknown,
            no_inbound,
            relay_candidates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9000 + u16::from(i)))
    }

    fn addresses(n: u8) -> BTreeMap<OperatorId, SocketAddr> {
        (1..=n).map(|i| (id(i), addr(i))).collect()
    }

    /// Operator `from`'s dials: reached unless `to` is in `blocked`.
    fn dials(from: u8, n: u8, blocked: &[u8]) -> BTreeMap<OperatorId, Dial> {
        (1..=n)
            .filter(|&to| to != from)
            .map(|to| {
                let dial = if blocked.contains(&to) {
                    Dial::Failed {
                        address: addr(to),
                        attempts: 2,
                        failure: DialFailure::NoAnswer,
                    }
                } else {
                    Dial::Reached {
                        address: addr(to),
                        rtt_micros: 400 + u64::from(to),
                    }
                };
                (id(to), dial)
            })
            .collect()
    }

    /// The outcome of operator `me` when everyone's row arrived and the
    /// operators of `nat` accept no inbound.
    fn outcome(me: u8, n: u8, nat: &[u8]) -> PingOutcome {
        let rows = (1..=n)
            .filter(|&o| o != me)
            .map(|o| {
                let row = PingRow {
                    version: PING_VERSION,
                    ping: Bytes([0; 32]),
                    sender: id(o),
                    dials: dials(o, n, nat).into_iter().collect(),
                    incoming: Vec::new(),
                };
                (id(o), row)
            })
            .collect();
        PingOutcome {
            me: id(me),
            dials: dials(me, n, nat),
            incoming: BTreeMap::new(),
            refused: Vec::new(),
            rows,
        }
    }

    #[test]
    fn one_operator_behind_a_nat_is_fine() {
        let matrix = Matrix::build(&outcome(1, 4, &[3]), &addresses(4));
        let verdict = matrix.verdict();
        assert!(verdict.connects(), "{verdict:?}");
        assert_eq!(verdict.no_inbound, [id(3)]);
        assert_eq!(verdict.relay_candidates.len(), 4);
        assert_eq!(matrix.cell(id(3), id(1)).text(), "401 µs");
        assert_eq!(
            matrix.cell(id(1), id(3)).text(),
            "no: timed out dialling 127.0.0.1:9003"
        );
        assert_eq!(matrix.cell(id(2), id(2)).text(), "--");
    }

    #[test]
    fn two_operators_behind_nats_need_a_relay() {
        let matrix = Matrix::build(&outcome(2, 4, &[3, 4]), &addresses(4));
        let verdict = matrix.verdict();
        assert!(!verdict.connects());
        assert_eq!(verdict.no_path, [(id(3), id(4))]);
        assert_eq!(verdict.no_inbound, [id(3), id(4)]);
        assert_eq!(verdict.relay_candidates, [id(1), id(2)]);
    }

    #[test]
    fn a_missing_row_is_unknown_except_what_this_side_saw() {
        let mut outcome = outcome(1, 3, &[]);
        outcome.rows.remove(&id(3));
        outcome.incoming.insert(id(2), addr(2));
        let matrix = Matrix::build(&outcome, &addresses(3));
        assert_eq!(matrix.cell(id(3), id(2)), &Cell::Unknown);
        assert_eq!(matrix.cell(id(3), id(2)).text(), "?");
        // Operator 3's dial of this side never arrived.
        assert_eq!(
            matrix.cell(id(3), id(1)),
            &Cell::NotArrived { address: addr(1) }
        );
        // Pair (2, 3) connects through 2's dial; pair (1, 3) through 1's.
        assert!(matrix.verdict().connects());
        assert_eq!(matrix.rows, [id(1), id(2)]);
    }

    #[test]
    fn a_pair_known_only_one_way_is_not_a_verdict_of_success() {
        let mut outcome = outcome(1, 3, &[3]);
        outcome.rows.remove(&id(3));
        outcome.rows.remove(&id(2));
        let matrix = Matrix::build(&outcome, &addresses(3));
        let verdict = matrix.verdict();
        // 1 ↔ 2 connects (1 dialled 2); 1 → 3 failed and 3 → 1 never
        // arrived: no path; 2 ↔ 3 is unknown.
        assert_eq!(verdict.no_path, [(id(1), id(3))]);
        assert_eq!(verdict.unknown, [(id(2), id(3))]);
        assert!(!verdict.connects());
    }

    #[test]
    fn a_missing_row_is_filled_by_the_receivers_incoming_list() {
        // Operator 2's view: 3 and 4 accept no inbound, 4's row is missing,
        // but 1's row says 4's dial reached it.
        let mut outcome = outcome(2, 4, &[3, 4]);
        outcome.rows.remove(&id(4));
        outcome.incoming.insert(id(4), addr(4));
        if let Some(row) = outcome.rows.get_mut(&id(1)) {
            row.incoming.push((id(4), addr(4)));
        }
        let matrix = Matrix::build(&outcome, &addresses(4));
        assert_eq!(
            matrix.cell(id(4), id(1)),
            &Cell::Direct {
                address: addr(1),
                rtt_micros: None
            }
        );
        assert_eq!(matrix.cell(id(4), id(3)), &Cell::Unknown);
        let verdict = matrix.verdict();
        assert_eq!(verdict.relay_candidates, [id(1), id(2)]);
        assert_eq!(verdict.unknown, [(id(3), id(4))]);
        assert!(verdict.no_path.is_empty());
    }

    #[test]
    fn ping_id_is_domain_separated() {
        let hash = [7; 32];
        assert_ne!(ping_id(&hash), hash);
        assert_ne!(ping_id(&hash), crate::check::binding(&hash));
        assert_eq!(ping_id(&hash), ping_id(&hash));
    }

    #[test]
    fn rows_round_trip_the_wire() {
        let outcome = outcome(1, 3, &[2]);
        let row = outcome.rows.get(&id(2)).unwrap().clone();
        let bytes = wire::encode(&row).unwrap();
        let back: PingRow = wire::decode(&bytes, MAX_PING_MESSAGE_BYTES).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn rtt_text_rounds() {
        assert_eq!(rtt_text(400), "400 µs");
        assert_eq!(rtt_text(2_460), "2.5 ms");
        assert_eq!(rtt_text(12_400), "12 ms");
        assert_eq!(rtt_text(9_960), "10.0 ms");
    }
}
