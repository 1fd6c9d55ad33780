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
    connections: BTreeMap<OperatorId, quinn::Connection>,
    mailbox: Arc<Mailbox>,
    round_timeout: Duration,
}

/// What the mesh tells its caller while it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectEvent {
    /// `peer` is connected; `connected` of `total` are.
    Connected {
        /// The peer.
        peer: OperatorId,
        /// Whether this side dialled the connection kept (else the peer
        /// did).
        dialled: bool,
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
fn transport_config(round_timeout: Duration) -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config.max_idle_timeout(quinn::IdleTimeout::try_from(super::idle_timeout(round_timeout)).ok());
    config.keep_alive_interval(Some(Duration::from_secs(KEEP_ALIVE_SECS)));
    config.max_concurrent_uni_streams(quinn::VarInt::from_u32(256));
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
fn dial_failure(err: &quinn::ConnectionError) -> String {
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
fn peer_key(connection: &quinn::Connection) -> Option<IdentityPublicKey> {
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
        dialled: bool,
    },
    /// `peer` chose `connection` (this side is the higher-indexed one).
    Chosen {
        peer: OperatorId,
        connection: quinn::Connection,
        dialled: bool,
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
                                dialled: true,
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
struct CloseOnDrop(Option<quinn::Endpoint>);

impl CloseOnDrop {
    fn disarm(mut self) -> Option<quinn::Endpoint> {
        self.0.take()
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(endpoint) = self.0.take() {
            endpoint.close(quinn::VarInt::from_u32(CLOSE_ABORT), b"aborted");
        }
    }
}

impl Mesh {
    /// Binds `socket`, dials every peer and accepts every peer, until one
    /// connection to each is kept or the deadline passes. `on_event` is
    /// told each time a peer connects or is lost, and about once a second
    /// who is still missing.
    ///
    /// # Errors
    ///
    /// [`TransportError::Unreachable`] naming the missing operators and
    /// what was tried.
    pub async fn connect(
        me: OperatorId,
        ceremony: [u8; 32],
        identity: &IdentityKey,
        socket: UdpSocket,
        peers: &[Peer],
        limits: Limits,
        on_event: impl Fn(ConnectEvent) + Send,
    ) -> Result<Self, TransportError> {
        let started = Instant::now();
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
        let server_crypto =
            QuicServerConfig::try_from(server_tls).map_err(|e| endpoint_error(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(transport_config(limits.round_timeout));
        let runtime =
            quinn::default_runtime().ok_or_else(|| endpoint_error("no async runtime".into()))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            runtime,
        )
        .map_err(|e| endpoint_error(e.to_string()))?;
        let guard = CloseOnDrop(Some(endpoint.clone()));

        let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
        let (kept_tx, kept_rx) = watch::channel(BTreeSet::<OperatorId>::new());
        let dialer = Dialer {
            endpoint: endpoint.clone(),
            deadline: limits.connect_deadline,
            events: events_tx.clone(),
            kept: kept_rx.clone(),
            log: Arc::new(Mutex::new(BTreeMap::new())),
            idle,
        };
        let mut clients = BTreeMap::new();
        for peer in peers {
            let client_tls = tls::client_config(identity, peer.key)?;
            let client_crypto = QuicClientConfig::try_from(client_tls)
                .map_err(|e| endpoint_error(e.to_string()))?;
            let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
            client.transport_config(transport_config(limits.round_timeout));
            dialer.spawn(peer.clone(), client.clone());
            clients.insert(peer.id, client);
        }
        let refused: Arc<Mutex<Vec<(SocketAddr, String)>>> = Arc::default();
        spawn_acceptor(
            endpoint.clone(),
            peers.iter().map(|p| (p.key, p.id)).collect(),
            events_tx.clone(),
            kept_rx.clone(),
            refused.clone(),
        );

        let wanted = peers.len();
        let mut kept: BTreeMap<OperatorId, quinn::Connection> = BTreeMap::new();
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
            let (peer, connection, dialled) = match event {
                Event::Established {
                    peer,
                    connection,
                    dialled,
                } => {
                    if peer < me {
                        // The peer chooses: wait for its word on this one.
                        spawn_chosen_waiter(
                            peer,
                            connection,
                            dialled,
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
                    (peer, connection, dialled)
                }
                Event::Chosen {
                    peer,
                    connection,
                    dialled,
                } => (peer, connection, dialled),
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
                    }
                    continue;
                }
            };
            if let Some(old) = kept.insert(peer, connection.clone())
                && old.stable_id() != connection.stable_id()
            {
                old.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"replaced");
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
            info!(peer = %peer, dialled, rtt_ms = rtt.as_millis(), address = %connection.remote_address(), "connected");
            on_event(ConnectEvent::Connected {
                peer,
                dialled,
                rtt,
                connected: kept.len(),
                total: wanted,
            });
        }
        if kept.len() < wanted {
            let log = dialer.log.lock().map(|l| {
                l.iter()
                    .map(|(id, d)| (*id, (d.attempts, d.last.clone())))
                    .collect::<BTreeMap<_, _>>()
            });
            let log = log.unwrap_or_default();
            let quitter = gave_up.as_ref().map(|(peer, _)| *peer);
            let missing: Vec<Unreached> = peers
                .iter()
                .filter(|p| !kept.contains_key(&p.id) && Some(p.id) != quitter)
                .map(|p| {
                    let (attempts, last) = log.get(&p.id).cloned().unwrap_or_default();
                    Unreached {
                        peer: p.id,
                        address: p.address,
                        attempts,
                        last,
                    }
                })
                .collect();
            let refused = refused.lock().map(|r| r.clone()).unwrap_or_default();
            endpoint.close(quinn::VarInt::from_u32(CLOSE_ABORT), b"unreachable peers");
            drop(guard);
            if let (true, Some((peer, reason))) = (missing.is_empty(), gave_up) {
                return Err(TransportError::PeerClosed { peer, reason });
            }
            return Err(TransportError::Unreachable { missing, refused });
        }
        let endpoint = guard.disarm().unwrap_or(endpoint);

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
            connections: kept,
            mailbox,
            round_timeout: limits.round_timeout,
        })
    }

    /// The peers of this mesh.
    pub fn peer_ids(&self) -> impl Iterator<Item = OperatorId> + '_ {
        self.connections.keys().copied()
    }

    /// The connection kept to `peer`: its address and round-trip time.
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
    dialled: bool,
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
                    let _ = events.send(Event::Chosen { peer, connection, dialled });
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
/// connected, further connections are closed as duplicates.
fn spawn_acceptor(
    endpoint: quinn::Endpoint,
    roster: Vec<(IdentityPublicKey, OperatorId)>,
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
                if kept.borrow().contains(&peer) {
                    connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"duplicate");
                    return;
                }
                let sent = events.send(Event::Established {
                    peer,
                    connection: connection.clone(),
                    dialled: false,
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

    async fn close(self, code: u32, reason: &[u8], linger: Duration) {
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
                .map(|(position, (key, socket))| {
                    let me = id(u8::try_from(position + 1).unwrap());
                    let others: Vec<Peer> = peers.iter().filter(|p| p.id != me).cloned().collect();
                    tokio::spawn(async move {
                        Mesh::connect(me, [1; 32], &key, socket, &others, limits(seconds), |_| {})
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
                        Mesh::connect(me, [1; 32], &key, socket, &others, limits(4), |_| {})
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
                        Mesh::connect(me, [1; 32], &key, socket, &others, limits(seconds), |_| {})
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
