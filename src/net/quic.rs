//! The QUIC mesh: a full mesh of connections between the participants,
//! mutually authenticated with pinned identity keys (see [`super::tls`]).
//!
//! Spec: `ceremony-specs/formats.md` §10.1.
//!
//! **Both sides dial.** Every participant dials every other one and accepts
//! every other one, so that a pair connects when either direction gets
//! through: an operator behind a NAT or a firewall with no inbound UDP is
//! reached by its own dials. Dialling retries (each attempt waits up to
//! [`DIAL_ATTEMPT_SECS`], then backs off from 100 ms doubling to 2 s) until
//! the connect deadline, so participants may start minutes apart.
//!
//! **One connection per pair, chosen by one side.** When both directions
//! succeed, a pair holds two connections, and both sides must keep the same
//! one. The lower-indexed participant of the pair decides: it keeps the
//! first connection to that peer that completes its handshake, whichever
//! side dialled it, and says so by sending [`SELECT`] as the first stream
//! on it; every other connection between the two it closes with
//! [`CLOSE_REFUSED`] (`duplicate`). The higher-indexed participant keeps
//! the connection on which the selection arrives, and nothing else. Only
//! one side chooses, so the two cannot disagree. A chosen connection that
//! is lost while the mesh is still connecting is forgotten, and the pair
//! connects again (a participant that restarts is welcome back).
//!
//! **A relay when no direct path exists.** Two operators that both accept
//! no inbound UDP cannot dial each other. Every operator relays for the
//! others of its ceremony over the connections it keeps
//! ([`super::relay`]): a peer reaches another *through* it, with a whole
//! QUIC connection, pinned end to end, carried on relay streams and
//! run by a second endpoint over a [`RelaySocket`]. With
//! `relay_via` (`--relay-via`), every peer is dialled through that
//! operator from the start, besides directly; without it, a peer not
//! connected [`DIAL_ATTEMPT_SECS`] after connecting started is dialled
//! through every operator this side holds a direct connection to
//! (re-checked each second). A relayed connection goes through the same
//! selection as a direct one, so a pair still keeps one: the first that
//! completes, which is the direct one wherever a direct path exists (it
//! crosses one link instead of two, and starts first).
//!
//! Every frame then travels on its own unidirectional stream and is read
//! with a size bound before decoding, into the [`Mailbox`]. Connections
//! live as long as the round timeout allows: the idle timeout and the send
//! limit follow from it ([`super::idle_timeout`], [`super::send_limit`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info, warn};
use zeroize::Zeroizing;

use super::mailbox::{Filed, Mailbox};
use super::relay::{self, Hub, RelaySocket};
use super::{
    CLOSE_ABORT, CLOSE_DONE, CLOSE_REFUSED, Closed, DIAL_ATTEMPT_SECS, DONE_REASON, FrameKind,
    KEEP_ALIVE_SECS, Limits, Peer, Transport, TransportError, Unreached, encode_frame, tls,
};
use crate::ceremony::OperatorId;
use crate::crypto::identity::{IdentityKey, IdentityPublicKey};

/// The first stream on the connection the lower-indexed participant of a
/// pair keeps: "this is the one". Nothing else is ever sent before it.
pub const SELECT: &[u8] = b"dvkg-select/1";

/// How long the chooser waits to get [`SELECT`] out on a new connection.
const SELECT_SECS: u64 = 5;

/// An established full mesh.
pub struct Mesh {
    me: OperatorId,
    ceremony: [u8; 32],
    endpoint: quinn::Endpoint,
    /// The endpoint of the relayed connections ([`RelaySocket`]).
    relayed: quinn::Endpoint,
    /// The relay service, and the paths of the relayed connections.
    hub: Arc<Hub>,
    connections: BTreeMap<OperatorId, quinn::Connection>,
    routes: BTreeMap<OperatorId, Route>,
    mailbox: Arc<Mailbox>,
    round_timeout: Duration,
}

/// How a kept connection reaches its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Directly; this side dialled it.
    Dialled,
    /// Directly; the peer dialled it.
    Accepted,
    /// Through operator `via`, which relays its ciphertext.
    Relayed {
        /// The relay.
        via: OperatorId,
    },
}

impl Route {
    /// Whether the connection is direct (not relayed).
    pub fn direct(self) -> bool {
        !matches!(self, Self::Relayed { .. })
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dialled => f.write_str("direct, dialled"),
            Self::Accepted => f.write_str("direct, accepted"),
            Self::Relayed { via } => write!(f, "via operator {via} (relay)"),
        }
    }
}

/// What the mesh tells its caller while it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectEvent {
    /// `peer` is connected; `connected` of `total` are.
    Connected {
        /// The peer.
        peer: OperatorId,
        /// How the connection kept reaches it.
        route: Route,
        /// The round-trip time measured by the handshake.
        rtt: Duration,
        /// How many peers are connected now.
        connected: usize,
        /// How many there are.
        total: usize,
    },
    /// The connection to `peer` was lost while connecting the others; it
    /// is being connected again.
    Lost {
        /// The peer.
        peer: OperatorId,
        /// Why.
        reason: Closed,
    },
    /// About once a second while some peers are missing.
    Waiting {
        /// The peers not connected yet.
        missing: Vec<OperatorId>,
        /// Since connecting started.
        elapsed: Duration,
        /// Until the deadline.
        remaining: Duration,
    },
}

/// The transport parameters of every connection, from the round timeout.
pub(crate) fn transport_config(round_timeout: Duration) -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config.max_idle_timeout(quinn::IdleTimeout::try_from(super::idle_timeout(round_timeout)).ok());
    config.keep_alive_interval(Some(Duration::from_secs(KEEP_ALIVE_SECS)));
    config.max_concurrent_uni_streams(quinn::VarInt::from_u32(256));
    Arc::new(config)
}

/// The transport parameters of a relayed connection: those of a direct
/// one, with 1200-byte packets (no path MTU discovery: the relay streams
/// have no path MTU, and a packet stays one bounded datagram).
fn relayed_transport_config(round_timeout: Duration) -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config.max_idle_timeout(quinn::IdleTimeout::try_from(super::idle_timeout(round_timeout)).ok());
    config.keep_alive_interval(Some(Duration::from_secs(KEEP_ALIVE_SECS)));
    config.max_concurrent_uni_streams(quinn::VarInt::from_u32(256));
    config.mtu_discovery_config(None);
    Arc::new(config)
}

/// How a connection ended, in the words of [`Closed`]: the peer's close
/// code and reason, or what the QUIC stack saw.
pub fn closed_reason(err: &quinn::ConnectionError, idle: Duration) -> Closed {
    use quinn::ConnectionError as E;
    match err {
        E::ApplicationClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason).into_owned();
            match u32::try_from(close.error_code.into_inner()) {
                Ok(CLOSE_DONE) if close.reason.as_ref() == DONE_REASON => Closed::Finished,
                Ok(CLOSE_DONE) => Closed::Dropped,
                Ok(CLOSE_ABORT) => Closed::Aborted(reason),
                Ok(CLOSE_REFUSED) => Closed::Refused(reason),
                _ => Closed::Refused(format!(
                    "close code {}: {reason}",
                    close.error_code.into_inner()
                )),
            }
        }
        E::TimedOut => Closed::Silent(idle),
        E::Reset => Closed::Reset,
        E::LocallyClosed => Closed::Local,
        E::ConnectionClosed(close) => Closed::Other(format!("QUIC error: {close}")),
        E::TransportError(err) => Closed::Other(format!("QUIC error: {err}")),
        E::VersionMismatch => Closed::Other("it speaks no QUIC version this machine does".into()),
        E::CidsExhausted => Closed::Other("QUIC connection ids exhausted".into()),
    }
}

/// Why a dial attempt failed, for the message that names the peer.
pub(crate) fn dial_failure(err: &quinn::ConnectionError) -> String {
    use quinn::ConnectionError as E;
    let text = err.to_string();
    match err {
        E::TimedOut => "no answer".into(),
        E::ConnectionClosed(_) | E::TransportError(_) if text.contains("certificate") => format!(
            "it answered, but the TLS handshake failed ({text}): the identity at that address is \
             not the one in the definition, or it does not know ours"
        ),
        E::ConnectionClosed(_) if text.contains("no_application_protocol") => format!(
            "it answered but speaks another protocol version ({text}); ALPN {}",
            String::from_utf8_lossy(tls::ALPN)
        ),
        _ => text,
    }
}

/// The identity key of the peer of an established connection.
pub(crate) fn peer_key(connection: &quinn::Connection) -> Option<IdentityPublicKey> {
    connection
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|certs| certs.first().and_then(|c| tls::certificate_key(c).ok()))
}

/// What the tasks of [`Mesh::connect`] report to it.
enum Event {
    /// A handshake with `peer` completed.
    Established {
        peer: OperatorId,
        connection: quinn::Connection,
        route: Route,
    },
    /// `peer` chose `connection` (this side is the higher-indexed one).
    Chosen {
        peer: OperatorId,
        connection: quinn::Connection,
        route: Route,
    },
    /// The kept connection to `peer`, with this stable id, ended.
    Lost {
        peer: OperatorId,
        id: usize,
        reason: Closed,
    },
}

/// Per peer: how dialling it went.
#[derive(Default)]
struct DialLog {
    attempts: u32,
    last: Option<String>,
    /// Why the last attempt through a relay failed, and which.
    relayed: Option<String>,
}

/// Everything a dialling task needs; cloned into each.
#[derive(Clone)]
struct Dialer {
    endpoint: quinn::Endpoint,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
    kept: watch::Receiver<BTreeSet<OperatorId>>,
    log: Arc<Mutex<BTreeMap<OperatorId, DialLog>>>,
    idle: Duration,
    /// The endpoint of relayed connections.
    relayed: quinn::Endpoint,
    hub: Arc<Hub>,
}

impl Dialer {
    /// Counts a dial attempt to `peer`, as it starts (so that one still
    /// in flight at the deadline is counted).
    fn attempt(&self, peer: OperatorId) {
        if let Ok(mut log) = self.log.lock() {
            log.entry(peer).or_default().attempts += 1;
        }
    }

    /// Records why the last dial attempt to `peer` failed.
    fn failed(&self, peer: OperatorId, failure: String) {
        if let Ok(mut log) = self.log.lock() {
            log.entry(peer).or_default().last = Some(failure);
        }
    }

    /// Dials `peer` until a connection to it is kept (by either side) or
    /// the deadline passes.
    fn spawn(&self, peer: Peer, client: quinn::ClientConfig) {
        let this = self.clone();
        let span = tracing::debug_span!("dial", operator = %peer.id, address = %peer.address);
        tokio::spawn(
            async move {
                let mut kept = this.kept.clone();
                let mut backoff = Duration::from_millis(100);
                loop {
                    let now = Instant::now();
                    if kept.borrow().contains(&peer.id) || now >= this.deadline {
                        return;
                    }
                    let attempt_until =
                        this.deadline.min(now + Duration::from_secs(DIAL_ATTEMPT_SECS));
                    this.attempt(peer.id);
                    let connecting = match this.endpoint.connect_with(
                        client.clone(),
                        peer.address,
                        tls::CERTIFICATE_NAME,
                    ) {
                        Ok(connecting) => connecting,
                        Err(err) => {
                            // Not retried: the endpoint is closing, or the
                            // address cannot be dialled at all.
                            this.failed(peer.id, err.to_string());
                            return;
                        }
                    };
                    match tokio::time::timeout_at(attempt_until, connecting).await {
                        Ok(Ok(connection)) => {
                            let _ = this.events.send(Event::Established {
                                peer: peer.id,
                                connection: connection.clone(),
                                route: Route::Dialled,
                            });
                            // Kept (by either side), or closed as a
                            // duplicate or lost: then dial again.
                            tokio::select! {
                                reason = connection.closed() => {
                                    debug!(reason = %closed_reason(&reason, this.idle), "dialled connection closed");
                                }
                                () = until_kept(&mut kept, peer.id) => return,
                            }
                        }
                        Ok(Err(err)) => {
                            let failure = dial_failure(&err);
                            debug!(%failure, "dial failed; retrying");
                            this.failed(peer.id, failure);
                        }
                        Err(_) => {
                            let waited = attempt_until.saturating_duration_since(now);
                            this.failed(
                                peer.id,
                                format!("no answer within {} s", waited.as_secs().max(1)),
                            );
                        }
                    }
                    let wake = this.deadline.min(Instant::now() + backoff);
                    tokio::select! {
                        () = tokio::time::sleep_until(wake) => {}
                        () = until_kept(&mut kept, peer.id) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            .instrument(span),
        );
    }
}

impl Dialer {
    /// Records why the last attempt to reach `peer` through a relay
    /// failed.
    fn relay_failed(&self, peer: OperatorId, failure: String) {
        if let Ok(mut log) = self.log.lock() {
            log.entry(peer).or_default().relayed = Some(failure);
        }
    }

    /// Dials `peer` through the relay `via`, until a connection to it is
    /// kept (by either side) or the deadline passes: opens a relayed path
    /// (once this side holds a direct connection to `via`, and `via` one
    /// to `peer`), then runs the handshake over it with the same pinned
    /// TLS configuration as a direct dial.
    fn spawn_relayed(&self, peer: Peer, via: OperatorId, client: quinn::ClientConfig) {
        let this = self.clone();
        let span = tracing::debug_span!("relayed dial", operator = %peer.id, via = %via);
        tokio::spawn(
            async move {
                let mut kept = this.kept.clone();
                let mut backoff = Duration::from_millis(100);
                loop {
                    let now = Instant::now();
                    if kept.borrow().contains(&peer.id) || now >= this.deadline {
                        return;
                    }
                    match this.hub.open(via, peer.id).await {
                        Err(err) => {
                            debug!(%err, "no relayed path yet");
                            this.relay_failed(peer.id, err.to_string());
                        }
                        Ok((address, path)) => {
                            let attempt_until =
                                this.deadline.min(now + Duration::from_secs(DIAL_ATTEMPT_SECS));
                            let connecting = match this.relayed.connect_with(
                                client.clone(),
                                address,
                                tls::CERTIFICATE_NAME,
                            ) {
                                Ok(connecting) => connecting,
                                Err(err) => {
                                    this.hub.socket().detach(address, path);
                                    this.relay_failed(peer.id, err.to_string());
                                    return;
                                }
                            };
                            match tokio::time::timeout_at(attempt_until, connecting).await {
                                Ok(Ok(connection)) => {
                                    // The path lives as long as the
                                    // connection on it.
                                    let socket = this.hub.socket().clone();
                                    let watched = connection.clone();
                                    tokio::spawn(async move {
                                        watched.closed().await;
                                        socket.detach(address, path);
                                    });
                                    let _ = this.events.send(Event::Established {
                                        peer: peer.id,
                                        connection: connection.clone(),
                                        route: Route::Relayed { via },
                                    });
                                    tokio::select! {
                                        reason = connection.closed() => {
                                            debug!(reason = %closed_reason(&reason, this.idle), "relayed connection closed");
                                        }
                                        () = until_kept(&mut kept, peer.id) => return,
                                    }
                                }
                                Ok(Err(err)) => {
                                    this.hub.socket().detach(address, path);
                                    this.relay_failed(
                                        peer.id,
                                        format!("through operator {via}: {}", dial_failure(&err)),
                                    );
                                }
                                Err(_) => {
                                    this.hub.socket().detach(address, path);
                                    this.relay_failed(
                                        peer.id,
                                        format!("through operator {via}: no answer"),
                                    );
                                }
                            }
                        }
                    }
                    let wake = this.deadline.min(Instant::now() + backoff);
                    tokio::select! {
                        () = tokio::time::sleep_until(wake) => {}
                        () = until_kept(&mut kept, peer.id) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            .instrument(span),
        );
    }

    /// The automatic fallback: from [`DIAL_ATTEMPT_SECS`] after `started`,
    /// each second, dials every peer still missing through every operator
    /// this side holds a direct connection to (and has not tried yet).
    fn spawn_fallback(
        &self,
        started: Instant,
        peers: Vec<Peer>,
        clients: BTreeMap<OperatorId, quinn::ClientConfig>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tried: BTreeSet<(OperatorId, OperatorId)> = BTreeSet::new();
            let start = this
                .deadline
                .min(started + Duration::from_secs(DIAL_ATTEMPT_SECS));
            tokio::time::sleep_until(start).await;
            while Instant::now() < this.deadline {
                let missing: Vec<&Peer> = {
                    let kept = this.kept.borrow();
                    peers.iter().filter(|p| !kept.contains(&p.id)).collect()
                };
                if missing.is_empty() {
                    return;
                }
                let relays = this.hub.direct_peers();
                for peer in missing {
                    for &via in relays.iter().filter(|&&via| via != peer.id) {
                        if tried.insert((peer.id, via))
                            && let Some(client) = clients.get(&peer.id)
                        {
                            debug!(operator = %peer.id, %via, "no direct connection yet: trying a relay");
                            this.spawn_relayed(peer.clone(), via, client.clone());
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Resolves once `peer` is in the kept set.
async fn until_kept(kept: &mut watch::Receiver<BTreeSet<OperatorId>>, peer: OperatorId) {
    if kept.wait_for(|set| set.contains(&peer)).await.is_err() {
        // The mesh is gone: nothing will be kept any more.
        std::future::pending::<()>().await;
    }
}

/// Closes the endpoint, and with it every connection, with an abort code
/// when dropped armed: a connect that fails, or is dropped because the
/// operator stopped, never leaves its peers to read code 0 (`finished`)
/// from connections dropped without a word.
struct CloseOnDrop(Vec<quinn::Endpoint>);

impl CloseOnDrop {
    fn disarm(mut self) {
        self.0.clear();
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        for endpoint in self.0.drain(..) {
            endpoint.close(quinn::VarInt::from_u32(CLOSE_ABORT), b"aborted");
        }
    }
}

impl Mesh {
    /// Binds `socket`, dials every peer and accepts every peer, until one
    /// connection to each is kept or the deadline passes. `on_event` is
    /// told each time a peer connects or is lost, and about once a second
    /// who is still missing. With `relay_via`, every other peer is also
    /// dialled through that one from the start; without, a peer still
    /// missing after [`DIAL_ATTEMPT_SECS`] is dialled through every peer
    /// connected directly (see the module documentation).
    ///
    /// # Errors
    ///
    /// [`TransportError::Unreachable`] naming the missing operators and
    /// what was tried.
    // Each argument is a distinct input of the mesh; a struct for them
    // would only rename the call.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        me: OperatorId,
        ceremony: [u8; 32],
        identity: &IdentityKey,
        socket: UdpSocket,
        peers: &[Peer],
        limits: Limits,
        relay_via: Option<OperatorId>,
        on_event: impl Fn(ConnectEvent) + Send,
    ) -> Result<Self, TransportError> {
        let started = Instant::now();
        // Relaying through oneself is no relay.
        let relay_via = relay_via.filter(|&via| via != me);
        let address = socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let endpoint_error = |reason: String| TransportError::Endpoint {
            address: address.clone(),
            reason,
        };
        let idle = super::idle_timeout(limits.round_timeout);
        let mut roster: Vec<IdentityPublicKey> = peers.iter().map(|p| p.key).collect();
        roster.push(identity.public());
        let server_tls = tls::server_config(identity, &roster)?;
        let server_crypto = Arc::new(
            QuicServerConfig::try_from(server_tls).map_err(|e| endpoint_error(e.to_string()))?,
        );
        let mut server = quinn::ServerConfig::with_crypto(server_crypto.clone());
        server.transport_config(transport_config(limits.round_timeout));
        let runtime =
            quinn::default_runtime().ok_or_else(|| endpoint_error("no async runtime".into()))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            runtime.clone(),
        )
        .map_err(|e| endpoint_error(e.to_string()))?;
        // The relayed connections: the same server (and below, client) TLS
        // configuration, so that they are pinned exactly as direct ones.
        let relay_socket = RelaySocket::new(me);
        let mut relayed_server = quinn::ServerConfig::with_crypto(server_crypto);
        relayed_server.transport_config(relayed_transport_config(limits.round_timeout));
        let relayed = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(relayed_server),
            relay_socket.clone(),
            runtime,
        )
        .map_err(|e| endpoint_error(e.to_string()))?;
        let guard = CloseOnDrop(vec![endpoint.clone(), relayed.clone()]);
        let hub = Hub::new(
            me,
            peers.iter().map(|p| p.id).collect(),
            relay_socket,
            relay::pipe_bytes(&limits),
            idle,
        );

        let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
        let (kept_tx, kept_rx) = watch::channel(BTreeSet::<OperatorId>::new());
        let dialer = Dialer {
            endpoint: endpoint.clone(),
            deadline: limits.connect_deadline,
            events: events_tx.clone(),
            kept: kept_rx.clone(),
            log: Arc::new(Mutex::new(BTreeMap::new())),
            idle,
            relayed: relayed.clone(),
            hub: hub.clone(),
        };
        let mut clients = BTreeMap::new();
        let mut relayed_clients = BTreeMap::new();
        for peer in peers {
            let client_tls = tls::client_config(identity, peer.key)?;
            let client_crypto = Arc::new(
                QuicClientConfig::try_from(client_tls)
                    .map_err(|e| endpoint_error(e.to_string()))?,
            );
            let mut client = quinn::ClientConfig::new(client_crypto.clone());
            client.transport_config(transport_config(limits.round_timeout));
            dialer.spawn(peer.clone(), client.clone());
            clients.insert(peer.id, client);
            let mut relayed_client = quinn::ClientConfig::new(client_crypto);
            relayed_client.transport_config(relayed_transport_config(limits.round_timeout));
            if let Some(via) = relay_via
                && via != peer.id
            {
                dialer.spawn_relayed(peer.clone(), via, relayed_client.clone());
            }
            relayed_clients.insert(peer.id, relayed_client);
        }
        if relay_via.is_none() {
            dialer.spawn_fallback(started, peers.to_vec(), relayed_clients.clone());
        }
        let refused: Arc<Mutex<Vec<(SocketAddr, String)>>> = Arc::default();
        let roster: Vec<(IdentityPublicKey, OperatorId)> =
            peers.iter().map(|p| (p.key, p.id)).collect();
        spawn_acceptor(
            endpoint.clone(),
            roster.clone(),
            false,
            events_tx.clone(),
            kept_rx.clone(),
            refused.clone(),
        );
        spawn_acceptor(
            relayed.clone(),
            roster,
            true,
            events_tx.clone(),
            kept_rx.clone(),
            refused.clone(),
        );

        let wanted = peers.len();
        let mut kept: BTreeMap<OperatorId, quinn::Connection> = BTreeMap::new();
        let mut routes: BTreeMap<OperatorId, Route> = BTreeMap::new();
        let mut gave_up: Option<(OperatorId, Closed)> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while kept.len() < wanted {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = tick.tick() => {
                    let now = Instant::now();
                    on_event(ConnectEvent::Waiting {
                        missing: peers.iter().map(|p| p.id).filter(|id| !kept.contains_key(id)).collect(),
                        elapsed: now.duration_since(started),
                        remaining: limits.connect_deadline.saturating_duration_since(now),
                    });
                    continue;
                }
                () = tokio::time::sleep_until(limits.connect_deadline) => break,
            };
            let Some(event) = event else { break };
            let (peer, connection, route) = match event {
                Event::Established {
                    peer,
                    connection,
                    route,
                } => {
                    if peer < me {
                        // The peer chooses: wait for its word on this one.
                        spawn_chosen_waiter(
                            peer,
                            connection,
                            route,
                            limits.connect_deadline,
                            events_tx.clone(),
                            kept_rx.clone(),
                        );
                        continue;
                    }
                    // This side chooses: the first connection that completes.
                    if kept.contains_key(&peer) {
                        connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"duplicate");
                        continue;
                    }
                    let announced = tokio::time::timeout(
                        Duration::from_secs(SELECT_SECS),
                        announce(&connection),
                    )
                    .await;
                    if !matches!(announced, Ok(Ok(()))) {
                        debug!(peer = %peer, "could not tell the peer which connection is kept");
                        connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"not kept");
                        continue;
                    }
                    (peer, connection, route)
                }
                Event::Chosen {
                    peer,
                    connection,
                    route,
                } => (peer, connection, route),
                Event::Lost { peer, id, reason } => {
                    if let Closed::Aborted(_) = reason
                        && kept.get(&peer).is_some_and(|c| c.stable_id() == id)
                    {
                        // It gave up connecting (or was stopped): the
                        // ceremony cannot go on, and waiting longer only
                        // delays the same answer. Whoever it could not
                        // reach is missing here too, not it.
                        kept.remove(&peer);
                        gave_up = Some((peer, reason));
                        break;
                    }
                    if kept.get(&peer).is_some_and(|c| c.stable_id() == id) {
                        kept.remove(&peer);
                        let lost = routes.remove(&peer);
                        hub.forget(peer);
                        kept_tx.send_modify(|set| {
                            set.remove(&peer);
                        });
                        warn!(peer = %peer, %reason, "connection lost while connecting; connecting again");
                        on_event(ConnectEvent::Lost { peer, reason });
                        if let (Some(p), Some(client)) =
                            (peers.iter().find(|p| p.id == peer), clients.get(&peer))
                        {
                            dialer.spawn(p.clone(), client.clone());
                        }
                        // And through the relay named, or the one that
                        // carried the lost connection.
                        let via = match (relay_via, lost) {
                            (Some(via), _) | (None, Some(Route::Relayed { via })) => Some(via),
                            (None, _) => None,
                        };
                        if let (Some(via), Some(p), Some(client)) = (
                            via.filter(|&via| via != peer),
                            peers.iter().find(|p| p.id == peer),
                            relayed_clients.get(&peer),
                        ) {
                            dialer.spawn_relayed(p.clone(), via, client.clone());
                        }
                    }
                    continue;
                }
            };
            if let Some(old) = kept.insert(peer, connection.clone())
                && old.stable_id() != connection.stable_id()
            {
                old.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"replaced");
            }
            routes.insert(peer, route);
            if route.direct() {
                // Relayed for the others, and relaying for them.
                hub.keep(peer, connection.clone());
            } else {
                hub.forget(peer);
            }
            kept_tx.send_modify(|set| {
                set.insert(peer);
            });
            let events = events_tx.clone();
            let watched = connection.clone();
            tokio::spawn(async move {
                let reason = closed_reason(&watched.closed().await, idle);
                let _ = events.send(Event::Lost {
                    peer,
                    id: watched.stable_id(),
                    reason,
                });
            });
            let rtt = connection.rtt();
            match route {
                Route::Relayed { via } => info!(
                    peer = %peer,
                    rtt_ms = rtt.as_millis(),
                    "operator {peer} reached via operator {via} (relay)"
                ),
                _ => {
                    info!(peer = %peer, %route, rtt_ms = rtt.as_millis(), address = %connection.remote_address(), "connected")
                }
            }
            on_event(ConnectEvent::Connected {
                peer,
                route,
                rtt,
                connected: kept.len(),
                total: wanted,
            });
        }
        if kept.len() < wanted {
            let log = dialer.log.lock().map(|l| {
                l.iter()
                    .map(|(id, d)| (*id, (d.attempts, d.last.clone(), d.relayed.clone())))
                    .collect::<BTreeMap<_, _>>()
            });
            let log = log.unwrap_or_default();
            let quitter = gave_up.as_ref().map(|(peer, _)| *peer);
            let missing: Vec<Unreached> = peers
                .iter()
                .filter(|p| !kept.contains_key(&p.id) && Some(p.id) != quitter)
                .map(|p| {
                    let (attempts, last, relayed) = log.get(&p.id).cloned().unwrap_or_default();
                    Unreached {
                        peer: p.id,
                        address: p.address,
                        attempts,
                        last,
                        relayed,
                    }
                })
                .collect();
            let refused = refused.lock().map(|r| r.clone()).unwrap_or_default();
            endpoint.close(quinn::VarInt::from_u32(CLOSE_ABORT), b"unreachable peers");
            relayed.close(quinn::VarInt::from_u32(CLOSE_ABORT), b"unreachable peers");
            drop(guard);
            if let (true, Some((peer, reason))) = (missing.is_empty(), gave_up) {
                return Err(TransportError::PeerClosed { peer, reason });
            }
            return Err(TransportError::Unreachable { missing, refused });
        }
        guard.disarm();

        let mailbox = Arc::new(Mailbox::new(
            ceremony,
            limits.max_frame_bytes,
            limits.messages.to_vec(),
        ));
        for (&peer, connection) in &kept {
            let span = tracing::debug_span!("peer", operator = %peer);
            tokio::spawn(
                read_frames(peer, connection.clone(), mailbox.clone(), idle).instrument(span),
            );
        }
        Ok(Self {
            me,
            ceremony,
            endpoint,
            relayed,
            hub,
            connections: kept,
            routes,
            mailbox,
            round_timeout: limits.round_timeout,
        })
    }

    /// The peers of this mesh.
    pub fn peer_ids(&self) -> impl Iterator<Item = OperatorId> + '_ {
        self.connections.keys().copied()
    }

    /// How the connection kept to `peer` reaches it.
    pub fn route(&self, peer: OperatorId) -> Option<Route> {
        self.routes.get(&peer).copied()
    }

    /// The connection kept to `peer`: its address and round-trip time (a
    /// relayed connection's address is the synthetic one of its path,
    /// [`relay::path_address`]).
    pub fn path(&self, peer: OperatorId) -> Option<(SocketAddr, Duration)> {
        self.connections
            .get(&peer)
            .map(|c| (c.remote_address(), c.rtt()))
    }
}

/// Tells the peer that `connection` is the one kept: [`SELECT`], alone on
/// the first stream.
async fn announce(connection: &quinn::Connection) -> Result<(), String> {
    let mut stream = connection.open_uni().await.map_err(|e| e.to_string())?;
    stream.write_all(SELECT).await.map_err(|e| e.to_string())?;
    stream.finish().map_err(|e| e.to_string())
}

/// On a connection the lower-indexed `peer` decides about: waits for its
/// [`SELECT`] (then reports it chosen) or for another connection to be
/// kept (then closes this one).
fn spawn_chosen_waiter(
    peer: OperatorId,
    connection: quinn::Connection,
    route: Route,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
    mut kept: watch::Receiver<BTreeSet<OperatorId>>,
) {
    tokio::spawn(async move {
        let chosen = async {
            let mut stream = connection.accept_uni().await.ok()?;
            let bytes = stream.read_to_end(SELECT.len()).await.ok()?;
            (bytes == SELECT).then_some(())
        };
        tokio::select! {
            chosen = tokio::time::timeout_at(deadline, chosen) => {
                if matches!(chosen, Ok(Some(()))) {
                    let _ = events.send(Event::Chosen { peer, connection, route });
                } else {
                    connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"not chosen");
                }
            }
            () = until_kept(&mut kept, peer) => {
                connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"duplicate");
            }
        }
    });
}

/// Accepts every incoming connection: a handshake from a key of `roster`
/// is reported as established with that peer; one that fails (a key of no
/// operator, another protocol) is recorded in `refused`. Once the mesh is
/// connected, further connections are closed as duplicates. On the
/// endpoint of `relayed` connections, the key must also be that of the
/// operator the relay named for the path (its [`relay::path_address`]).
fn spawn_acceptor(
    endpoint: quinn::Endpoint,
    roster: Vec<(IdentityPublicKey, OperatorId)>,
    relayed: bool,
    events: mpsc::UnboundedSender<Event>,
    kept: watch::Receiver<BTreeSet<OperatorId>>,
    refused: Arc<Mutex<Vec<(SocketAddr, String)>>>,
) {
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let roster = roster.clone();
            let events = events.clone();
            let kept = kept.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                let from = incoming.remote_address();
                // No deadline of our own on the handshake: the dialler may
                // already hold the connection as established (it completes
                // one flight before this side does) and keep it, so giving
                // up here would leave it a connection this side no longer
                // knows, reset at its next packet, after an outage as short
                // as a dial attempt. QUIC's idle timeout, which follows
                // --round-timeout, bounds a handshake that really stalled.
                let connection = match incoming.await {
                    Ok(connection) => connection,
                    Err(err) => {
                        debug!(%from, %err, "incoming connection failed");
                        if let Ok(mut refused) = refused.lock() {
                            refused.push((from, err.to_string()));
                        }
                        return;
                    }
                };
                let key = peer_key(&connection);
                let Some(&(_, peer)) = roster.iter().find(|(k, _)| Some(*k) == key) else {
                    connection.close(
                        quinn::VarInt::from_u32(CLOSE_REFUSED),
                        b"not an operator of this cluster",
                    );
                    return;
                };
                let route = if relayed {
                    match relay::parse_path_address(from) {
                        Some((via, origin)) if origin == peer => Route::Relayed { via },
                        _ => {
                            connection.close(
                                quinn::VarInt::from_u32(CLOSE_REFUSED),
                                b"not the operator the relay named",
                            );
                            return;
                        }
                    }
                } else {
                    Route::Accepted
                };
                if kept.borrow().contains(&peer) {
                    connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"duplicate");
                    return;
                }
                let sent = events.send(Event::Established {
                    peer,
                    connection: connection.clone(),
                    route,
                });
                if sent.is_err() {
                    // The mesh is connected (or gave up) already.
                    connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"duplicate");
                }
            });
        }
    });
}

impl Transport for Mesh {
    fn peers(&self) -> Vec<OperatorId> {
        self.connections.keys().copied().collect()
    }

    fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    async fn send(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        payload: Zeroizing<Vec<u8>>,
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        let connection = self
            .connections
            .get(&peer)
            .ok_or_else(|| TransportError::Send {
                peer,
                reason: "no connection".into(),
            })?;
        let handle = SendHandle {
            me: self.me,
            ceremony: self.ceremony,
            connection: connection.clone(),
            round_timeout: self.round_timeout,
            fanout: self.connections.len(),
        };
        handle.send(peer, kind, payload, acknowledged).await
    }

    /// Closes the relayed connections first and ends their paths, then
    /// waits for the pipes this operator relays for others to end (up to
    /// the round timeout after a success, so that a pair still finishing
    /// its last round is not cut off; up to `linger` after an abort), then
    /// closes the direct connections. The order keeps two relays from
    /// waiting for each other: a side's own relayed paths end before it
    /// waits for anyone.
    async fn close(self, code: u32, reason: &[u8], linger: Duration) {
        self.relayed.close(quinn::VarInt::from_u32(code), reason);
        let _ = tokio::time::timeout(linger, self.relayed.wait_idle()).await;
        self.hub.socket().detach_all();
        if self.hub.active_pipes() > 0 {
            let within = if code == super::CLOSE_DONE {
                self.round_timeout.max(linger)
            } else {
                linger
            };
            debug!(
                pipes = self.hub.active_pipes(),
                "waiting for the relayed pairs to finish"
            );
            self.hub.pipes_ended(within).await;
        }
        self.endpoint.close(quinn::VarInt::from_u32(code), reason);
        let _ = tokio::time::timeout(linger, self.endpoint.wait_idle()).await;
    }
}

/// What a send needs of the mesh.
struct SendHandle {
    me: OperatorId,
    ceremony: [u8; 32],
    connection: quinn::Connection,
    round_timeout: Duration,
    fanout: usize,
}

impl SendHandle {
    async fn send(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        payload: Zeroizing<Vec<u8>>,
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        let bytes = encode_frame(self.me, self.ceremony, peer, kind, payload)?;
        let after = super::send_limit(self.round_timeout, bytes.len() as u64, self.fanout);
        match tokio::time::timeout(after, self.send_unbounded(peer, &bytes, acknowledged)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::SendTimeout { peer, kind, after }),
        }
    }

    async fn send_unbounded(
        &self,
        peer: OperatorId,
        bytes: &[u8],
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        let idle = super::idle_timeout(self.round_timeout);
        let lost = |err: &quinn::ConnectionError| TransportError::PeerClosed {
            peer,
            reason: closed_reason(err, idle),
        };
        let write_error = |err: quinn::WriteError| match err {
            quinn::WriteError::ConnectionLost(err) => lost(&err),
            other => TransportError::Send {
                peer,
                reason: other.to_string(),
            },
        };
        let mut stream = self.connection.open_uni().await.map_err(|e| lost(&e))?;
        stream.write_all(bytes).await.map_err(write_error)?;
        stream.finish().map_err(|e| TransportError::Send {
            peer,
            reason: e.to_string(),
        })?;
        if acknowledged {
            stream.stopped().await.map_err(|e| match e {
                quinn::StoppedError::ConnectionLost(err) => lost(&err),
                other => TransportError::Send {
                    peer,
                    reason: other.to_string(),
                },
            })?;
        }
        Ok(())
    }
}

/// Reads every frame a peer sends into the mailbox, until the connection
/// ends or the peer sends an invalid frame. One task per peer, inside a
/// span naming it.
async fn read_frames(
    peer: OperatorId,
    connection: quinn::Connection,
    mailbox: Arc<Mailbox>,
    idle: Duration,
) {
    let limit = usize::try_from(mailbox.max_frame_bytes()).unwrap_or(usize::MAX);
    loop {
        let mut stream = match connection.accept_uni().await {
            Ok(stream) => stream,
            Err(err) => {
                mailbox.closed(peer, closed_reason(&err, idle));
                return;
            }
        };
        let bytes = match stream.read_to_end(limit).await {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(quinn::ReadToEndError::TooLong) => {
                mailbox.too_long(peer);
                return;
            }
            Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(err))) => {
                // A lost connection is what a crash or a network failure
                // looks like: the peer is missing, not at fault.
                mailbox.closed(peer, closed_reason(&err, idle));
                return;
            }
            Err(err) => {
                mailbox.closed(peer, Closed::Other(format!("a stream ended early: {err}")));
                return;
            }
        };
        if mailbox.file(peer, &bytes) == Filed::Refused {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn id(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    fn limits(seconds: u64) -> Limits {
        Limits {
            max_frame_bytes: 64 * 1024,
            messages: &[0],
            connect_deadline: Instant::now() + Duration::from_secs(seconds),
            round_timeout: Duration::from_secs(10),
        }
    }

    /// `n` participants on loopback; `listen[i]` is where participant i
    /// really listens, `advertised[i]` where the others dial it.
    fn setup(n: u8, advertised_wrong: &[u8]) -> (Vec<IdentityKey>, Vec<UdpSocket>, Vec<Peer>) {
        let mut rng = StdRng::seed_from_u64(7);
        let keys: Vec<IdentityKey> = (0..n).map(|_| IdentityKey::generate(&mut rng)).collect();
        let sockets: Vec<UdpSocket> = (0..n)
            .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        let peers = (1..=n)
            .map(|i| {
                let real = sockets[usize::from(i - 1)].local_addr().unwrap();
                // A port nobody listens on: a peer with no inbound path.
                let address = if advertised_wrong.contains(&i) {
                    let dead = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
                    dead.local_addr().unwrap()
                } else {
                    real
                };
                Peer {
                    id: id(i),
                    name: format!("op{i}"),
                    key: keys[usize::from(i - 1)].public(),
                    address,
                }
            })
            .collect();
        (keys, sockets, peers)
    }

    fn connect_all(
        n: u8,
        keys: Vec<IdentityKey>,
        sockets: Vec<UdpSocket>,
        peers: Vec<Peer>,
        seconds: u64,
    ) -> Vec<Result<Mesh, TransportError>> {
        connect_all_via(n, keys, sockets, peers, seconds, None)
    }

    fn connect_all_via(
        n: u8,
        keys: Vec<IdentityKey>,
        sockets: Vec<UdpSocket>,
        peers: Vec<Peer>,
        seconds: u64,
        relay_via: Option<OperatorId>,
    ) -> Vec<Result<Mesh, TransportError>> {
        connect_in(&runtime(), n, keys, sockets, peers, seconds, relay_via)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Connects every participant on `runtime`, which the meshes need for
    /// as long as they are used.
    fn connect_in(
        runtime: &tokio::runtime::Runtime,
        n: u8,
        keys: Vec<IdentityKey>,
        sockets: Vec<UdpSocket>,
        peers: Vec<Peer>,
        seconds: u64,
        relay_via: Option<OperatorId>,
    ) -> Vec<Result<Mesh, TransportError>> {
        runtime.block_on(async {
            let tasks: Vec<_> = keys
                .into_iter()
                .zip(sockets)
                .enumerate()
                .map(|(position, (key, socket))| {
                    let me = id(u8::try_from(position + 1).unwrap());
                    let others: Vec<Peer> = peers.iter().filter(|p| p.id != me).cloned().collect();
                    tokio::spawn(async move {
                        Mesh::connect(
                            me,
                            [1; 32],
                            &key,
                            socket,
                            &others,
                            limits(seconds),
                            relay_via,
                            |_| {},
                        )
                        .await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.unwrap());
            }
            assert_eq!(out.len(), usize::from(n));
            // A frame crosses every kept connection: it arrives only if
            // both sides of the pair kept the same one (each reads only the
            // connection it kept).
            let meshes: Vec<&Mesh> = out.iter().filter_map(|m| m.as_ref().ok()).collect();
            for mesh in &meshes {
                for peer in mesh.peers() {
                    mesh.send(peer, FrameKind::Message(0), Zeroizing::new(vec![7]), true)
                        .await
                        .unwrap();
                }
            }
            for mesh in &meshes {
                for peer in mesh.peers() {
                    let got = mesh
                        .mailbox()
                        .recv(
                            peer,
                            FrameKind::Message(0),
                            Instant::now() + Duration::from_secs(10),
                            true,
                        )
                        .await
                        .unwrap();
                    assert_eq!(got.as_slice(), [7]);
                }
            }
            out
        })
    }

    #[test]
    fn every_pair_keeps_one_connection() {
        let (keys, sockets, peers) = setup(4, &[]);
        for mesh in connect_all(4, keys, sockets, peers, 20) {
            assert_eq!(mesh.unwrap().peers().len(), 3);
        }
    }

    #[test]
    fn a_participant_no_one_can_dial_is_reached_by_its_own_dials() {
        // Operator 3 advertises a port nobody listens on (a NAT without a
        // port forward): every connection with it is one it dialled, even
        // with operator 4, which alone would have dialled it before.
        let (keys, sockets, peers) = setup(4, &[3]);
        for mesh in connect_all(4, keys, sockets, peers, 20) {
            assert_eq!(mesh.unwrap().peers().len(), 3);
        }
    }

    /// The route each participant of `meshes` kept to each peer.
    fn routes(meshes: &[Result<Mesh, TransportError>]) -> Vec<BTreeMap<OperatorId, Route>> {
        meshes
            .iter()
            .map(|m| {
                let mesh = m.as_ref().unwrap();
                mesh.peer_ids()
                    .map(|p| (p, mesh.route(p).unwrap()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn two_participants_no_one_can_dial_connect_through_a_relay() {
        // Operators 3 and 4 both advertise dead ports: neither can dial
        // the other, and after the first dial window each tries through
        // the operators it reached (1 and 2).
        let (keys, sockets, peers) = setup(4, &[3, 4]);
        let meshes = connect_all(4, keys, sockets, peers, 40);
        let routes = routes(&meshes);
        for (me, other) in [(2, 4), (3, 3)] {
            let route = routes[me][&id(other)];
            assert!(
                matches!(route, Route::Relayed { via } if via == id(1) || via == id(2)),
                "{routes:?}"
            );
        }
        // Everyone else is direct: the relay only where no direct path is.
        for (position, map) in routes.iter().enumerate() {
            for (&peer, route) in map {
                if !matches!((position, peer.get()), (2, 4) | (3, 3)) {
                    assert!(route.direct(), "{routes:?}");
                }
            }
        }
        // Both ends name the same relay: they kept the same connection.
        assert_eq!(routes[2][&id(4)], routes[3][&id(3)]);
    }

    #[test]
    fn relay_via_dials_through_the_named_operator_from_the_start() {
        let (keys, sockets, peers) = setup(4, &[3, 4]);
        let started = std::time::Instant::now();
        let meshes = connect_all_via(4, keys, sockets, peers, 40, Some(id(1)));
        let routes = routes(&meshes);
        assert_eq!(
            routes[2][&id(4)],
            Route::Relayed { via: id(1) },
            "{routes:?}"
        );
        assert_eq!(
            routes[3][&id(3)],
            Route::Relayed { via: id(1) },
            "{routes:?}"
        );
        assert!(routes[0].values().all(|r| r.direct()), "{routes:?}");
        // Not the automatic fallback, which waits a dial window first.
        assert!(
            started.elapsed() < Duration::from_secs(DIAL_ATTEMPT_SECS),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_relay_that_finishes_keeps_piping_until_the_relayed_pair_is_done() {
        let (keys, sockets, peers) = setup(4, &[3, 4]);
        let runtime = runtime();
        let meshes = connect_in(&runtime, 4, keys, sockets, peers, 40, Some(id(1)));
        let mut meshes: Vec<Mesh> = meshes.into_iter().map(Result::unwrap).collect();
        let four = meshes.pop().unwrap();
        let three = meshes.pop().unwrap();
        let one = meshes.remove(0);
        assert_eq!(three.route(id(4)), Some(Route::Relayed { via: id(1) }));
        runtime.block_on(async move {
            assert!(one.hub.active_pipes() >= 1);
            // Operator 1 finishes first, with a linger far shorter than
            // what the pair still has to say.
            let linger = Duration::from_millis(200);
            let closing = tokio::spawn(one.close(CLOSE_DONE, DONE_REASON, linger));
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(!closing.is_finished(), "the relay closed under the pair");
            // The pair still talks through it.
            three
                .send(id(4), FrameKind::Done, Zeroizing::new(vec![9]), true)
                .await
                .unwrap();
            let got = four
                .mailbox()
                .recv(
                    id(3),
                    FrameKind::Done,
                    Instant::now() + Duration::from_secs(5),
                    true,
                )
                .await
                .unwrap();
            assert_eq!(got.as_slice(), [9]);
            // Once the pair is done, so is the relay.
            three.close(CLOSE_DONE, DONE_REASON, linger).await;
            four.close(CLOSE_DONE, DONE_REASON, linger).await;
            closing.await.unwrap();
        });
    }

    #[test]
    fn a_relay_refuses_malformed_headers_and_targets_of_no_operator() {
        use super::relay::{ACCEPTED, Header, Refusal};
        let (keys, sockets, peers) = setup(3, &[]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let meshes: Vec<Mesh> = runtime.block_on(async {
            let tasks: Vec<_> = keys
                .into_iter()
                .zip(sockets)
                .enumerate()
                .map(|(position, (key, socket))| {
                    let me = id(u8::try_from(position + 1).unwrap());
                    let others: Vec<Peer> = peers.iter().filter(|p| p.id != me).cloned().collect();
                    tokio::spawn(async move {
                        Mesh::connect(me, [1; 32], &key, socket, &others, limits(20), None, |_| {})
                            .await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.unwrap().unwrap());
            }
            out
        });
        // Operator 2 asks operator 1 to relay.
        let to_relay = meshes[1].connections[&id(1)].clone();
        let ask = |header: Vec<u8>| {
            let connection = to_relay.clone();
            async move {
                let (mut send, mut recv) = connection.open_bi().await.unwrap();
                send.write_all(&header).await.unwrap();
                let mut answer = [0u8; 1];
                recv.read_exact(&mut answer).await.unwrap();
                answer[0]
            }
        };
        runtime.block_on(async {
            let mut wrong_magic = Header::Request { target: id(3) }.encode().to_vec();
            wrong_magic[3] = b'X';
            assert_eq!(ask(wrong_magic).await, Refusal::Malformed.code());
            let mut short = Header::Request { target: id(3) }.encode().to_vec();
            short.pop();
            // Too short: the relay waits for the rest, then refuses.
            let connection = to_relay.clone();
            let (mut send, mut recv) = connection.open_bi().await.unwrap();
            send.write_all(&short).await.unwrap();
            send.finish().unwrap();
            let mut answer = [0u8; 1];
            recv.read_exact(&mut answer).await.unwrap();
            assert_eq!(answer[0], Refusal::Malformed.code());
            for target in [9, 2, 1] {
                // No operator of this ceremony; the asker; the relay.
                let header = Header::Request { target: id(target) }.encode().to_vec();
                assert_eq!(
                    ask(header).await,
                    Refusal::NotAnOperator.code(),
                    "target {target}"
                );
            }
            // An offer must name another operator than the relay.
            let offer = Header::Offer { origin: id(2) }.encode().to_vec();
            assert_eq!(ask(offer).await, Refusal::NotAnOperator.code());
            // Operator 3 is one, and reachable: accepted.
            let header = Header::Request { target: id(3) }.encode().to_vec();
            assert_eq!(ask(header).await, ACCEPTED);
        });
    }

    #[test]
    fn a_pair_with_no_path_is_named_with_what_was_tried() {
        // Operators 2 and 3 advertise dead ports, so neither can dial the
        // other; both still reach operator 1.
        let (keys, sockets, peers) = setup(3, &[2, 3]);
        let dead_3 = peers[2].address;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let results: Vec<_> = runtime.block_on(async {
            let tasks: Vec<_> = keys
                .into_iter()
                .zip(sockets)
                .enumerate()
                .map(|(position, (key, socket))| {
                    let me = id(u8::try_from(position + 1).unwrap());
                    let others: Vec<Peer> = peers.iter().filter(|p| p.id != me).cloned().collect();
                    tokio::spawn(async move {
                        Mesh::connect(me, [1; 32], &key, socket, &others, limits(4), None, |_| {})
                            .await
                            .map(|mesh| mesh.peers())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.unwrap());
            }
            out
        });
        let Err(TransportError::Unreachable { missing, .. }) = &results[1] else {
            panic!("{results:?}");
        };
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].peer, id(3));
        assert_eq!(missing[0].address, dead_3);
        assert!(missing[0].attempts >= 1, "{:?}", missing[0]);
        let text = results[1].as_ref().unwrap_err().to_string();
        assert!(text.contains(&format!("operator 3 at {dead_3}")), "{text}");
    }

    /// Runs participants `running` of `peers` until each connects or
    /// gives up after `seconds`; the peers each one kept, or its error.
    fn run_some(
        keys: Vec<IdentityKey>,
        sockets: Vec<UdpSocket>,
        peers: &[Peer],
        running: &[u8],
        seconds: u64,
    ) -> Vec<Result<Vec<OperatorId>, TransportError>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = keys
                .into_iter()
                .zip(sockets)
                .enumerate()
                .filter(|(position, _)| running.contains(&u8::try_from(position + 1).unwrap()))
                .map(|(position, (key, socket))| {
                    let me = id(u8::try_from(position + 1).unwrap());
                    let others: Vec<Peer> = peers.iter().filter(|p| p.id != me).cloned().collect();
                    tokio::spawn(async move {
                        Mesh::connect(
                            me,
                            [1; 32],
                            &key,
                            socket,
                            &others,
                            limits(seconds),
                            None,
                            |_| {},
                        )
                        .await
                        .map(|mesh| mesh.peers())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.unwrap());
            }
            out
        })
    }

    #[test]
    fn an_operator_that_never_starts_is_the_only_one_named() {
        let (keys, sockets, peers) = setup(4, &[]);
        let results = run_some(keys, sockets, &peers, &[1, 2, 3], 4);
        for result in &results {
            let Err(TransportError::Unreachable { missing, .. }) = result else {
                panic!("{results:?}");
            };
            let ids: Vec<OperatorId> = missing.iter().map(|m| m.peer).collect();
            assert_eq!(ids, [id(4)], "{results:?}");
            assert!(missing[0].attempts >= 1, "{results:?}");
        }
    }

    #[test]
    fn close_reasons_tell_finished_from_dropped_and_aborted() {
        use quinn::{ApplicationClose, ConnectionError, VarInt};
        let app = |code: u32, reason: &'static [u8]| {
            ConnectionError::ApplicationClosed(ApplicationClose {
                error_code: VarInt::from_u32(code),
                reason: reason.into(),
            })
        };
        let idle = Duration::from_secs(30);
        assert_eq!(
            closed_reason(&app(CLOSE_DONE, b"done"), idle),
            Closed::Finished
        );
        // A connection dropped without a close also reads code 0.
        assert_eq!(closed_reason(&app(CLOSE_DONE, b""), idle), Closed::Dropped);
        assert_eq!(
            closed_reason(&app(CLOSE_ABORT, b"aborted"), idle),
            Closed::Aborted("aborted".into())
        );
        assert_eq!(
            closed_reason(&ConnectionError::TimedOut, idle),
            Closed::Silent(idle)
        );
        assert!(
            closed_reason(&ConnectionError::TimedOut, idle)
                .to_string()
                .contains("30 s")
        );
    }
}
