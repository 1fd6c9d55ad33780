//! The gateway to the network: a full mesh of QUIC connections between the
//! operators, mutually authenticated with pinned identity keys (see
//! [`tls`]), carrying length-bounded, typed frames.
//!
//! Operator `i` dials every operator `j > i` and accepts from every `j < i`,
//! so each pair shares one connection. Dialling retries with backoff until a
//! deadline, so operators may start minutes apart. Every message travels on
//! its own unidirectional stream, is read with a size bound before decoding,
//! and lands in a mailbox per (peer, kind): a message for a later round
//! waits there until the driver asks for it. Every wait has a deadline; a
//! peer that closes or goes silent is named.

pub mod tls;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info, warn};
use zeroize::{Zeroize as _, Zeroizing};

use crate::ceremony::OperatorId;
use crate::crypto::identity::{IdentityKey, IdentityPublicKey};
use crate::dkg::messages::MessageKind;
use crate::wire::{self, Bytes};

/// The frame format version.
pub const FRAME_VERSION: u16 = 1;
/// Close code: the ceremony finished.
pub const CLOSE_DONE: u32 = 0;
/// Close code: this operator aborted.
pub const CLOSE_ABORT: u32 = 1;
/// Close code: the peer is not expected on this connection.
pub const CLOSE_REFUSED: u32 = 2;
/// How long a silent connection stays up (keep-alives are sent well within).
pub const IDLE_TIMEOUT_SECS: u64 = 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FrameKind {
    /// A protocol message of this kind.
    Message(MessageKind),
    /// The sender aborted; the payload is its abort report.
    Abort,
    /// The sender holds every finalize message and will close.
    Done,
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(kind) => kind.fmt(f),
            Self::Abort => f.write_str("abort report"),
            Self::Done => f.write_str("closing"),
        }
    }
}

/// The unit sent on a stream: binds the ceremony (definition hash), the
/// kind and the sender, around an encoded payload.
///
/// # Security
///
/// A payload may hold key shares (round 1's share bundles): it is wiped
/// when the frame is dropped, and the encoded frame and the payload handed
/// out by [`Mesh::recv`] are [`Zeroizing`]. Copies inside quinn's own
/// buffers are beyond reach (the bytes travel inside TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// [`FRAME_VERSION`].
    pub version: u16,
    /// The definition hash of the ceremony.
    pub ceremony: Bytes<32>,
    /// What the payload is.
    pub kind: FrameKind,
    /// The sending operator.
    pub sender: OperatorId,
    /// The encoded message (decoded in one allocation: no stray copy).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.payload.zeroize();
    }
}

/// Why the network failed us.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The local socket or endpoint could not be set up.
    #[error("failed to open the QUIC endpoint on {address}: {reason}")]
    Endpoint {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Some operators could not be reached before the deadline.
    #[error("could not connect to operator(s) {} before the deadline", list(.missing))]
    Unreachable {
        /// The operators still missing.
        missing: Vec<OperatorId>,
    },
    /// A peer did not send an expected message in time.
    #[error("operator {peer} did not send its {kind} message before the deadline")]
    Timeout {
        /// The silent operator.
        peer: OperatorId,
        /// What was awaited.
        kind: FrameKind,
    },
    /// A peer closed its connection or was lost.
    #[error("operator {peer} closed the connection or went away: {reason}")]
    PeerClosed {
        /// The operator.
        peer: OperatorId,
        /// The connection error.
        reason: String,
    },
    /// A peer aborted the ceremony.
    #[error("operator {peer} aborted the ceremony")]
    PeerAborted {
        /// The aborting operator.
        peer: OperatorId,
        /// Its encoded abort report.
        report: Vec<u8>,
    },
    /// A peer sent bytes that are not a valid frame for this ceremony.
    #[error("operator {peer} sent an invalid frame: {reason}")]
    BadFrame {
        /// The operator.
        peer: OperatorId,
        /// What was wrong.
        reason: String,
    },
    /// A peer is running another ceremony (another cluster definition).
    #[error("operator {peer} is running another ceremony (definition hash {theirs})")]
    OtherCeremony {
        /// The operator.
        peer: OperatorId,
        /// Its definition hash.
        theirs: String,
    },
    /// Sending failed.
    #[error("failed to send to operator {peer}: {reason}")]
    Send {
        /// The operator.
        peer: OperatorId,
        /// Why.
        reason: String,
    },
}

fn list(ids: &[OperatorId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl TransportError {
    /// The operator this failure points at, if one.
    pub fn peer(&self) -> Option<OperatorId> {
        match self {
            Self::Timeout { peer, .. }
            | Self::PeerClosed { peer, .. }
            | Self::PeerAborted { peer, .. }
            | Self::BadFrame { peer, .. }
            | Self::OtherCeremony { peer, .. }
            | Self::Send { peer, .. } => Some(*peer),
            Self::Unreachable { missing } => missing.first().copied(),
            Self::Endpoint { .. } | Self::Tls(_) => None,
        }
    }
}

/// One peer of the mesh.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its index.
    pub id: OperatorId,
    /// Its pinned identity key.
    pub key: IdentityPublicKey,
    /// Where to dial it.
    pub address: SocketAddr,
}

/// Limits and deadlines of the mesh.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest frame accepted, checked before decoding.
    pub max_frame_bytes: u64,
    /// When to give up connecting.
    pub connect_deadline: Instant,
}

#[derive(Default)]
struct MailboxState {
    queues: HashMap<(OperatorId, FrameKind), VecDeque<Zeroizing<Vec<u8>>>>,
    closed: BTreeMap<OperatorId, String>,
    aborts: Vec<(OperatorId, Vec<u8>)>,
    bad: Vec<(OperatorId, String, bool)>,
    seen: std::collections::HashSet<(OperatorId, FrameKind)>,
}

/// Frames received, per (peer, kind), plus what went wrong with each peer.
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
    notify: Notify,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, MailboxState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Changes the state and wakes every waiter.
    fn update(&self, f: impl FnOnce(&mut MailboxState)) {
        f(&mut self.lock());
        self.notify.notify_waiters();
    }

    /// Takes from the state without waking anyone.
    fn take<R>(&self, f: impl FnOnce(&mut MailboxState) -> R) -> R {
        f(&mut self.lock())
    }
}

/// An established full mesh.
pub struct Mesh {
    me: OperatorId,
    ceremony: [u8; 32],
    endpoint: quinn::Endpoint,
    connections: BTreeMap<OperatorId, quinn::Connection>,
    mailbox: Arc<Mailbox>,
}

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config.max_idle_timeout(
        quinn::IdleTimeout::try_from(Duration::from_secs(IDLE_TIMEOUT_SECS)).ok(),
    );
    config.keep_alive_interval(Some(Duration::from_secs(2)));
    config.max_concurrent_uni_streams(quinn::VarInt::from_u32(256));
    Arc::new(config)
}

impl Mesh {
    /// Binds `socket`, dials every higher-indexed peer and accepts every
    /// lower-indexed one, until all are connected or the deadline passes.
    /// `on_connected` is told each time a peer connects.
    ///
    /// # Errors
    ///
    /// [`TransportError::Unreachable`] naming the missing operators.
    pub async fn connect(
        me: OperatorId,
        ceremony: [u8; 32],
        identity: &IdentityKey,
        socket: UdpSocket,
        peers: &[Peer],
        limits: Limits,
        on_connected: impl Fn(OperatorId, usize) + Send,
    ) -> Result<Self, TransportError> {
        let address = socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let endpoint_error = |reason: String| TransportError::Endpoint {
            address: address.clone(),
            reason,
        };
        let mut roster: Vec<IdentityPublicKey> = peers.iter().map(|p| p.key).collect();
        roster.push(identity.public());
        let server_tls = tls::server_config(identity, &roster)?;
        let server_crypto =
            QuicServerConfig::try_from(server_tls).map_err(|e| endpoint_error(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(transport_config());
        let runtime =
            quinn::default_runtime().ok_or_else(|| endpoint_error("no async runtime".into()))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            runtime,
        )
        .map_err(|e| endpoint_error(e.to_string()))?;

        let mut connections: BTreeMap<OperatorId, quinn::Connection> = BTreeMap::new();
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(OperatorId, quinn::Connection)>();

        // Dial every higher-indexed peer, with backoff, until the deadline.
        for peer in peers.iter().filter(|p| p.id > me).cloned() {
            let client_tls = tls::client_config(identity, peer.key)?;
            let client_crypto = QuicClientConfig::try_from(client_tls)
                .map_err(|e| endpoint_error(e.to_string()))?;
            let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
            client.transport_config(transport_config());
            let endpoint = endpoint.clone();
            let tx = tx.clone();
            let deadline = limits.connect_deadline;
            tokio::spawn(async move {
                let mut backoff = Duration::from_millis(100);
                while Instant::now() < deadline {
                    let attempt = match endpoint.connect_with(
                        client.clone(),
                        peer.address,
                        tls::CERTIFICATE_NAME,
                    ) {
                        Ok(connecting) => tokio::time::timeout_at(deadline, connecting).await,
                        Err(err) => {
                            warn!(peer = %peer.id, %err, "cannot dial");
                            return;
                        }
                    };
                    match attempt {
                        Ok(Ok(connection)) => {
                            let _ = tx.send((peer.id, connection));
                            return;
                        }
                        Ok(Err(err)) => debug!(peer = %peer.id, %err, "dial failed; retrying"),
                        Err(_) => return,
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            });
        }
        // Accept every lower-indexed peer.
        let expected_incoming: Vec<(OperatorId, IdentityPublicKey)> = peers
            .iter()
            .filter(|p| p.id < me)
            .map(|p| (p.id, p.key))
            .collect();
        if !expected_incoming.is_empty() {
            let endpoint = endpoint.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(incoming) = endpoint.accept().await {
                    let expected = expected_incoming.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let Ok(connection) = incoming.await else {
                            return;
                        };
                        let key = connection
                            .peer_identity()
                            .and_then(|any| {
                                any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                                    .ok()
                            })
                            .and_then(|certs| {
                                certs.first().and_then(|c| tls::certificate_key(c).ok())
                            });
                        match expected.iter().find(|(_, k)| Some(*k) == key) {
                            Some((id, _)) => {
                                let _ = tx.send((*id, connection));
                            }
                            None => connection.close(
                                quinn::VarInt::from_u32(CLOSE_REFUSED),
                                b"not expected to dial",
                            ),
                        }
                    });
                }
            });
        }
        drop(tx);

        let wanted = peers.len();
        while connections.len() < wanted {
            match tokio::time::timeout_at(limits.connect_deadline, rx.recv()).await {
                Ok(Some((id, connection))) => {
                    if let Some(old) = connections.insert(id, connection) {
                        old.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"replaced");
                    }
                    info!(peer = %id, "connected");
                    on_connected(id, connections.len());
                }
                Ok(None) | Err(_) => break,
            }
        }
        if connections.len() < wanted {
            let missing = peers
                .iter()
                .map(|p| p.id)
                .filter(|id| !connections.contains_key(id))
                .collect();
            endpoint.close(quinn::VarInt::from_u32(CLOSE_ABORT), b"unreachable peers");
            return Err(TransportError::Unreachable { missing });
        }

        let mailbox = Arc::new(Mailbox::default());
        for (&peer, connection) in &connections {
            let span = tracing::debug_span!("peer", operator = %peer);
            tokio::spawn(
                read_frames(
                    peer,
                    ceremony,
                    connection.clone(),
                    mailbox.clone(),
                    limits.max_frame_bytes,
                )
                .instrument(span),
            );
        }
        Ok(Self {
            me,
            ceremony,
            endpoint,
            connections,
            mailbox,
        })
    }

    /// Sends one frame to `peer` on a new stream. With `acknowledged`, waits
    /// until the peer has received all of it (used before closing).
    ///
    /// # Errors
    ///
    /// [`TransportError::Send`] when the stream cannot be written.
    pub async fn send(
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
        };
        handle.send(peer, kind, payload, acknowledged).await
    }

    /// Sends the same frame to every peer, concurrently.
    ///
    /// # Errors
    ///
    /// The first [`TransportError`] met.
    pub async fn broadcast(
        &self,
        kind: FrameKind,
        payload: &[u8],
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        let mut sends = tokio::task::JoinSet::new();
        for (&peer, connection) in &self.connections {
            let mesh = SendHandle {
                me: self.me,
                ceremony: self.ceremony,
                connection: connection.clone(),
            };
            let payload = Zeroizing::new(payload.to_vec());
            sends.spawn(async move { mesh.send(peer, kind, payload, acknowledged).await });
        }
        let mut first_error = None;
        while let Some(joined) = sends.join_next().await {
            if let Ok(Err(err)) = joined {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits for `peer`'s next frame of `kind`, until `deadline`. An abort
    /// from any peer, a closed connection or an invalid frame ends the wait.
    ///
    /// # Errors
    ///
    /// [`TransportError`] naming the peer at fault.
    pub async fn recv(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        self.recv_scoped(peer, kind, deadline, true).await
    }

    /// [`Mesh::recv`], where only `peer`'s own invalid frames end the wait
    /// (an abort from any peer still does): in the closing exchange, one
    /// peer's bad frame must not cut short the wait for the others.
    ///
    /// # Errors
    ///
    /// [`TransportError`] naming the peer at fault.
    pub async fn recv_from_peer(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        self.recv_scoped(peer, kind, deadline, false).await
    }

    async fn recv_scoped(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        deadline: Instant,
        any_bad_frame: bool,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        loop {
            let notified = self.mailbox.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = self.mailbox.take(|state| {
                if let Some((from, report)) = state.aborts.first() {
                    return Some(Err(TransportError::PeerAborted {
                        peer: *from,
                        report: report.clone(),
                    }));
                }
                if let Some((from, reason, other_ceremony)) = state
                    .bad
                    .iter()
                    .find(|(from, _, _)| any_bad_frame || *from == peer)
                {
                    return Some(Err(if *other_ceremony {
                        TransportError::OtherCeremony {
                            peer: *from,
                            theirs: reason.clone(),
                        }
                    } else {
                        TransportError::BadFrame {
                            peer: *from,
                            reason: reason.clone(),
                        }
                    }));
                }
                if let Some(payload) = state
                    .queues
                    .get_mut(&(peer, kind))
                    .and_then(VecDeque::pop_front)
                {
                    return Some(Ok(payload));
                }
                state.closed.get(&peer).map(|reason| {
                    Err(TransportError::PeerClosed {
                        peer,
                        reason: reason.clone(),
                    })
                })
            });
            if let Some(result) = ready {
                return result;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(TransportError::Timeout { peer, kind });
            }
        }
    }

    /// Waits up to `wait` for an abort report from any peer: when a peer
    /// closes or a send fails, the peer's own explanation may be in flight.
    pub async fn abort_report(&self, wait: Duration) -> Option<(OperatorId, Vec<u8>)> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.mailbox.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = self.mailbox.take(|state| state.aborts.first().cloned()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The peers of this mesh.
    pub fn peers(&self) -> impl Iterator<Item = OperatorId> + '_ {
        self.connections.keys().copied()
    }

    /// Closes every connection with `code`, then waits up to `linger` for
    /// the close to reach the peers.
    pub async fn close(self, code: u32, reason: &[u8], linger: Duration) {
        self.endpoint.close(quinn::VarInt::from_u32(code), reason);
        let _ = tokio::time::timeout(linger, self.endpoint.wait_idle()).await;
    }
}

/// What a spawned send needs of the mesh.
struct SendHandle {
    me: OperatorId,
    ceremony: [u8; 32],
    connection: quinn::Connection,
}

/// The longest a single send may take: a peer that stops granting stream or
/// flow-control credit is named, not waited on forever.
pub const SEND_TIMEOUT_SECS: u64 = 120;

impl SendHandle {
    async fn send(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        payload: Zeroizing<Vec<u8>>,
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        match tokio::time::timeout(
            Duration::from_secs(SEND_TIMEOUT_SECS),
            self.send_unbounded(peer, kind, payload, acknowledged),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout { peer, kind }),
        }
    }

    async fn send_unbounded(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        mut payload: Zeroizing<Vec<u8>>,
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        let send_error = |reason: String| TransportError::Send { peer, reason };
        // Moved into the frame, which wipes it when dropped.
        let frame = Frame {
            version: FRAME_VERSION,
            ceremony: Bytes(self.ceremony),
            kind,
            sender: self.me,
            payload: std::mem::take(&mut *payload),
        };
        let bytes = Zeroizing::new(wire::encode(&frame).map_err(|e| send_error(e.to_string()))?);
        let mut stream = self
            .connection
            .open_uni()
            .await
            .map_err(|e| send_error(e.to_string()))?;
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| send_error(e.to_string()))?;
        stream.finish().map_err(|e| send_error(e.to_string()))?;
        if acknowledged {
            stream
                .stopped()
                .await
                .map_err(|e| send_error(e.to_string()))?;
        }
        Ok(())
    }
}

/// Reads every frame a peer sends into the mailbox, until the connection
/// ends. One task per peer, inside a span naming it.
async fn read_frames(
    peer: OperatorId,
    ceremony: [u8; 32],
    connection: quinn::Connection,
    mailbox: Arc<Mailbox>,
    max: u64,
) {
    loop {
        let mut stream = match connection.accept_uni().await {
            Ok(stream) => stream,
            Err(err) => {
                let reason = match &err {
                    quinn::ConnectionError::ApplicationClosed(close)
                        if close.error_code.into_inner() == u64::from(CLOSE_DONE) =>
                    {
                        "it finished".to_owned()
                    }
                    other => other.to_string(),
                };
                mailbox.update(|state| {
                    state.closed.entry(peer).or_insert(reason);
                });
                return;
            }
        };
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let bytes = match stream.read_to_end(limit).await {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(quinn::ReadToEndError::TooLong) => {
                mailbox.update(|state| {
                    state
                        .bad
                        .push((peer, format!("a frame over the {max}-byte limit"), false))
                });
                return;
            }
            Err(err) => {
                // A lost connection or a reset stream is what a crash or a
                // network failure looks like: the peer is missing, not at fault.
                mailbox.update(|state| {
                    state.closed.entry(peer).or_insert_with(|| err.to_string());
                });
                return;
            }
        };
        let mut frame: Frame = match wire::decode(&bytes, max) {
            Ok(frame) => frame,
            Err(err) => {
                mailbox.update(|state| state.bad.push((peer, err.to_string(), false)));
                return;
            }
        };
        if frame.version != FRAME_VERSION || frame.sender != peer {
            mailbox.update(|state| {
                state.bad.push((
                    peer,
                    format!(
                        "frame version {} from claimed operator {}",
                        frame.version, frame.sender
                    ),
                    false,
                ))
            });
            return;
        }
        if frame.ceremony.0 != ceremony {
            mailbox.update(|state| state.bad.push((peer, hex::encode(frame.ceremony.0), true)));
            return;
        }
        debug!(kind = ?frame.kind, bytes = bytes.len(), "frame received");
        // Every peer sends at most one frame of each kind: a second one is
        // refused (and named), so a peer cannot fill our memory.
        let duplicate = mailbox.take(|state| !state.seen.insert((peer, frame.kind)));
        if duplicate {
            mailbox.update(|state| {
                state
                    .bad
                    .push((peer, format!("a second {:?} frame", frame.kind), false))
            });
            return;
        }
        let payload = std::mem::take(&mut frame.payload);
        mailbox.update(|state| match frame.kind {
            FrameKind::Abort => state.aborts.push((peer, payload)),
            kind => state
                .queues
                .entry((peer, kind))
                .or_default()
                .push_back(Zeroizing::new(payload)),
        });
    }
}
