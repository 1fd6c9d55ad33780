//! The QUIC mesh: a full mesh of connections between the participants,
//! mutually authenticated with pinned identity keys (see [`super::tls`]).
//!
//! Participant `i` dials every participant `j > i` and accepts from every
//! `j < i`, so each pair shares one connection. Dialling retries with
//! backoff until a deadline, so participants may start minutes apart. Every
//! frame travels on its own unidirectional stream and is read with a size
//! bound before decoding, into the [`Mailbox`].

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info, warn};
use zeroize::Zeroizing;

use super::mailbox::{Filed, Mailbox};
use super::{
    CLOSE_ABORT, CLOSE_DONE, CLOSE_REFUSED, FrameKind, IDLE_TIMEOUT_SECS, Limits, Peer,
    SEND_TIMEOUT_SECS, Transport, TransportError, encode_frame, tls,
};
use crate::ceremony::OperatorId;
use crate::crypto::identity::{IdentityKey, IdentityPublicKey};

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

        let mailbox = Arc::new(Mailbox::new(
            ceremony,
            limits.max_frame_bytes,
            limits.messages.to_vec(),
        ));
        for (&peer, connection) in &connections {
            let span = tracing::debug_span!("peer", operator = %peer);
            tokio::spawn(read_frames(peer, connection.clone(), mailbox.clone()).instrument(span));
        }
        Ok(Self {
            me,
            ceremony,
            endpoint,
            connections,
            mailbox,
        })
    }

    /// The peers of this mesh.
    pub fn peer_ids(&self) -> impl Iterator<Item = OperatorId> + '_ {
        self.connections.keys().copied()
    }
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
        };
        handle.send(peer, kind, payload, acknowledged).await
    }

    async fn close(self, code: u32, reason: &[u8], linger: Duration) {
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
        payload: Zeroizing<Vec<u8>>,
        acknowledged: bool,
    ) -> Result<(), TransportError> {
        let send_error = |reason: String| TransportError::Send { peer, reason };
        let bytes = encode_frame(self.me, self.ceremony, peer, kind, payload)?;
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
/// ends or the peer sends an invalid frame. One task per peer, inside a
/// span naming it.
async fn read_frames(peer: OperatorId, connection: quinn::Connection, mailbox: Arc<Mailbox>) {
    let limit = usize::try_from(mailbox.max_frame_bytes()).unwrap_or(usize::MAX);
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
                mailbox.closed(peer, reason);
                return;
            }
        };
        let bytes = match stream.read_to_end(limit).await {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(quinn::ReadToEndError::TooLong) => {
                mailbox.too_long(peer);
                return;
            }
            Err(err) => {
                // A lost connection or a reset stream is what a crash or a
                // network failure looks like: the peer is missing, not at fault.
                mailbox.closed(peer, err.to_string());
                return;
            }
        };
        if mailbox.file(peer, &bytes) == Filed::Refused {
            return;
        }
    }
}
