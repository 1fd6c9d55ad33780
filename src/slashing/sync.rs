//! Sync before signing: `dvkg slashing serve` answers, `dvkg slashing sync`
//! asks every other operator of the lock for its history and merges them.
//!
//! Spec: `ceremony-specs/slashing.md`, "Sync before signing".
//!
//! The transport is the ceremony's: QUIC with TLS 1.3, every operator's
//! certificate carrying its identity key and pinned to the lock's operators
//! ([`crate::net::tls`]), with an ALPN of its own ([`SYNC_ALPN`]) so that a
//! sync never talks to a ceremony endpoint or the other way round. It is
//! not the ceremony's full [`crate::net::Mesh`]: a sync must go on with the
//! peers it reaches, and a server answers whoever of the lock asks, so the
//! syncing operator dials each peer on its own.
//!
//! One exchange per peer, on one bidirectional stream:
//!
//! 1. the syncing operator sends a [`SyncRequest`] with a fresh nonce;
//! 2. the serving operator answers a [`SyncResponse`]: its database's
//!    history for this lock's keys, minified, as EIP-3076 JSON, inside an
//!    [`ExportBody`] that binds the lock, both operators and the nonce,
//!    signed with its identity key over
//!    `SHA-256(EXPORT_DOMAIN ‖ bincode(body))` (under the identity key's
//!    own message domain);
//! 3. the syncing operator checks it ([`verify_export`]): the operator it
//!    dialled, this lock, its own request, the signature, the chain and
//!    every key; and only then merges it.
//!
//! Both messages are bincode through [`crate::wire`], read with a size
//! bound before decoding.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::interchange::Interchange;
use super::merge::{KeyMap, KeyedBy, MergeError, MergeInput, merge};
use super::{Epoch, PublicKeyBytes, Root, Slot};
use crate::ceremony::OperatorId;
use crate::crypto::identity::{IdentityKey, IdentityPublicKey, IdentitySignature};
use crate::net::{CLOSE_DONE, CLOSE_REFUSED, KEEP_ALIVE_SECS, MIN_IDLE_TIMEOUT_SECS, Peer, tls};
use crate::wire::{self, Bytes, WireError};

/// The sync protocol's version.
pub const SYNC_VERSION: u16 = 1;
/// The ALPN protocol id of serve and sync.
pub const SYNC_ALPN: &[u8] = b"dvkg-slashing-sync/1";
/// The domain in front of every signed export.
pub const EXPORT_DOMAIN: &[u8] = b"dvkg/2 slashing-protection export\0";
/// The largest request a server reads.
pub const MAX_REQUEST_BYTES: u64 = 1024;
/// How long a server gives one client to ask and to read the answer.
pub const SERVE_EXCHANGE_SECS: u64 = 60;

/// The bound on a response for a lock of `validators` validators: a
/// minified record is well under 1 KiB of JSON.
pub fn max_response_bytes(validators: usize) -> u64 {
    (validators as u64)
        .saturating_mul(1024)
        .saturating_add(64 * 1024)
        .min(wire::MAX_MESSAGE_BYTES)
}

/// What the syncing operator asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// [`SYNC_VERSION`].
    pub version: u16,
    /// The lock both sides hold.
    pub lock_hash: Bytes<32>,
    /// The asking operator.
    pub requester: OperatorId,
    /// Fresh for this request: the answer must carry it.
    pub nonce: Bytes<32>,
}

/// What a serving operator signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// [`SYNC_VERSION`].
    pub version: u16,
    /// The lock.
    pub lock_hash: Bytes<32>,
    /// The serving operator, whose identity key signs.
    pub sender: OperatorId,
    /// The operator that asked.
    pub requester: OperatorId,
    /// The request's nonce.
    pub nonce: Bytes<32>,
    /// The history: EIP-3076 version 5 JSON, this lock's keys only.
    #[serde(with = "serde_bytes")]
    pub interchange: Vec<u8>,
}

/// An export and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedExport {
    /// What is signed.
    pub body: ExportBody,
    /// The sender's identity signature over [`export_digest`].
    pub signature: IdentitySignature,
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The signed history.
    Export(SignedExport),
    /// The server will not answer this request, and says why.
    Refused {
        /// Why, in words.
        reason: String,
    },
}

/// `SHA-256(EXPORT_DOMAIN ‖ bincode(body))`.
///
/// # Errors
///
/// [`WireError`] if the body cannot be encoded (a bug).
pub fn export_digest(body: &ExportBody) -> Result<[u8; 32], WireError> {
    let encoded = wire::encode(body)?;
    let mut hasher = Sha256::new();
    hasher.update(EXPORT_DOMAIN);
    hasher.update(&encoded);
    Ok(hasher.finalize().into())
}

/// Signs `body` with `key`.
///
/// # Errors
///
/// As [`export_digest`].
pub fn sign_export(key: &IdentityKey, body: ExportBody) -> Result<SignedExport, WireError> {
    let signature = key.sign(&export_digest(&body)?);
    Ok(SignedExport { body, signature })
}

/// What the syncing operator expects of one peer's export.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The lock.
    pub lock_hash: [u8; 32],
    /// The operator dialled (pinned by TLS).
    pub sender: OperatorId,
    /// Its identity key in the lock.
    pub sender_key: IdentityPublicKey,
    /// This operator.
    pub requester: OperatorId,
    /// The nonce sent.
    pub nonce: [u8; 32],
    /// The lock's keys.
    pub keys: &'a KeyMap,
    /// The chain.
    pub genesis_validators_root: Root,
}

/// Why a peer's export is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportRefusal {
    /// Another protocol version.
    #[error("it speaks sync version {got}; this dvkg speaks {SYNC_VERSION}")]
    Version {
        /// Its version.
        got: u16,
    },
    /// An export of another lock.
    #[error("it is for another cluster lock (hash {theirs})")]
    OtherLock {
        /// Its lock hash, hex.
        theirs: String,
    },
    /// An export that names another operator than the one dialled.
    #[error("it claims to be operator {claimed}'s export")]
    WrongSender {
        /// Who it claims to be from.
        claimed: OperatorId,
    },
    /// An answer to another request (a replay).
    #[error("it answers another request (another operator or nonce): a replay")]
    OtherRequest,
    /// The signature does not verify.
    #[error("its signature does not verify under the operator's identity key in the lock")]
    BadSignature,
    /// Not an EIP-3076 file.
    #[error("its history is not an EIP-3076 interchange: {0}")]
    NotInterchange(String),
    /// Another chain or a key the lock does not know.
    #[error(transparent)]
    Merge(MergeError),
    /// The export could not be encoded to check its signature (a bug).
    #[error("it cannot be re-encoded: {0}")]
    Encoding(String),
}

/// Checks one peer's signed export, in order: version, lock, sender,
/// request, signature, then its content (chain and keys, through the same
/// merge the sync will do). Returns the history.
///
/// # Errors
///
/// The first [`ExportRefusal`] met; the export must then not be merged.
pub fn verify_export(
    signed: &SignedExport,
    expected: &Expected<'_>,
) -> Result<Interchange, ExportRefusal> {
    let body = &signed.body;
    if body.version != SYNC_VERSION {
        return Err(ExportRefusal::Version { got: body.version });
    }
    if body.lock_hash.0 != expected.lock_hash {
        return Err(ExportRefusal::OtherLock {
            theirs: hex::encode(body.lock_hash.0),
        });
    }
    if body.sender != expected.sender {
        return Err(ExportRefusal::WrongSender {
            claimed: body.sender,
        });
    }
    if body.requester != expected.requester || body.nonce.0 != expected.nonce {
        return Err(ExportRefusal::OtherRequest);
    }
    let digest = export_digest(body).map_err(|e| ExportRefusal::Encoding(e.to_string()))?;
    if !expected.sender_key.verify(&digest, &signed.signature) {
        return Err(ExportRefusal::BadSignature);
    }
    let text = std::str::from_utf8(&body.interchange)
        .map_err(|e| ExportRefusal::NotInterchange(e.to_string()))?;
    let interchange =
        Interchange::from_json(text).map_err(|e| ExportRefusal::NotInterchange(e.to_string()))?;
    let name = format!("operator {}'s export", expected.sender);
    merge(
        &[MergeInput {
            name: &name,
            interchange: &interchange,
        }],
        expected.keys,
        KeyedBy::Validators,
        expected.genesis_validators_root,
    )
    .map_err(ExportRefusal::Merge)?;
    Ok(interchange)
}

/// A key whose history runs beyond the current slot or epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beyond {
    /// The key, as the peer's history names it.
    pub pubkey: PublicKeyBytes,
    /// Its highest signed slot, when beyond the current slot.
    pub slot: Option<Slot>,
    /// Its highest signed target, when beyond the current epoch.
    pub target: Option<Epoch>,
}

/// The keys of `history` with a block after `current_slot` or an
/// attestation whose target (or source) is after `current_epoch`.
pub fn beyond_now(history: &Interchange, current_slot: Slot, current_epoch: Epoch) -> Vec<Beyond> {
    history
        .data
        .iter()
        .filter_map(|record| {
            let slot = record
                .signed_blocks
                .iter()
                .map(|b| b.slot)
                .max()
                .filter(|&s| s > current_slot);
            let target = record
                .signed_attestations
                .iter()
                .map(|a| a.target_epoch.max(a.source_epoch))
                .max()
                .filter(|&t| t > current_epoch);
            (slot.is_some() || target.is_some()).then_some(Beyond {
                pubkey: record.pubkey,
                slot,
                target,
            })
        })
        .collect()
}

/// Merges verified histories into one keyed by `keyed_by`.
///
/// # Errors
///
/// [`MergeError`], which [`verify_export`] has already ruled out for each.
pub fn merge_verified(
    histories: &BTreeMap<OperatorId, Interchange>,
    keys: &KeyMap,
    keyed_by: KeyedBy,
    genesis_validators_root: Root,
) -> Result<Interchange, MergeError> {
    let names: Vec<String> = histories
        .keys()
        .map(|id| format!("operator {id}'s export"))
        .collect();
    let inputs: Vec<MergeInput<'_>> = names
        .iter()
        .zip(histories.values())
        .map(|(name, interchange)| MergeInput { name, interchange })
        .collect();
    merge(&inputs, keys, keyed_by, genesis_validators_root)
}

/// Why a peer contributed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFailure {
    /// No connection before the deadline; the last error seen.
    Unreachable {
        /// What the last attempt met.
        reason: String,
    },
    /// Connected, but the exchange broke or did not finish in time.
    Exchange {
        /// What happened.
        reason: String,
    },
    /// The server answered that it will not serve this request.
    Refused {
        /// Its reason, as it sent it.
        reason: String,
    },
    /// The answer was malformed, or its export failed [`verify_export`].
    Invalid {
        /// Why.
        reason: String,
    },
}

impl PeerFailure {
    /// Whether the peer sent something provably wrong (as opposed to being
    /// absent or declining).
    pub fn is_invalid(&self) -> bool {
        match self {
            Self::Invalid { .. } => true,
            Self::Unreachable { .. } | Self::Exchange { .. } | Self::Refused { .. } => false,
        }
    }
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { reason } => {
                write!(f, "could not be reached before the deadline ({reason})")
            }
            Self::Exchange { reason } => write!(f, "connected but did not answer: {reason}"),
            // The reason is the peer's text: shown quoted and escaped.
            Self::Refused { reason } => write!(f, "declined to serve: {reason:?}"),
            Self::Invalid { reason } => write!(f, "sent an export that is refused: {reason}"),
        }
    }
}

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The TLS configuration.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The QUIC endpoint.
    #[error("failed to open the QUIC endpoint: {0}")]
    Endpoint(String),
}

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config.max_idle_timeout(
        quinn::IdleTimeout::try_from(Duration::from_secs(MIN_IDLE_TIMEOUT_SECS)).ok(),
    );
    config.keep_alive_interval(Some(Duration::from_secs(KEEP_ALIVE_SECS)));
    config.max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    config.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Arc::new(config)
}

/// The syncing side: who to ask and how long to try.
pub struct SyncConfig<'a> {
    /// This operator.
    pub me: OperatorId,
    /// The lock.
    pub lock_hash: [u8; 32],
    /// This operator's identity.
    pub identity: &'a IdentityKey,
    /// Every other operator of the lock.
    pub peers: Vec<Peer>,
    /// When to give up on a peer.
    pub deadline: Instant,
    /// The largest answer read.
    pub max_response_bytes: u64,
    /// The lock's keys.
    pub keys: &'a KeyMap,
    /// The chain.
    pub genesis_validators_root: Root,
}

/// A socket for dialling `peers` (any local port, the peers' family).
///
/// # Errors
///
/// The bind error.
pub fn client_socket(peers: &[Peer]) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if peers.iter().all(|p| p.address.is_ipv4()) {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    UdpSocket::bind(any)
}

/// Asks every peer for its export, concurrently, each until the deadline,
/// and verifies each answer. Returns, per peer, its verified history or
/// why it gave none.
///
/// # Errors
///
/// [`SyncError`] if the endpoint or TLS cannot be set up.
pub async fn fetch_exports(
    config: &SyncConfig<'_>,
    socket: UdpSocket,
) -> Result<BTreeMap<OperatorId, Result<Interchange, PeerFailure>>, SyncError> {
    let runtime =
        quinn::default_runtime().ok_or_else(|| SyncError::Endpoint("no async runtime".into()))?;
    let endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .map_err(|e| SyncError::Endpoint(e.to_string()))?;
    let mut asks = Vec::new();
    for peer in &config.peers {
        let mut client_tls = tls::client_config(config.identity, peer.key)?;
        client_tls.alpn_protocols = vec![SYNC_ALPN.to_vec()];
        let crypto = QuicClientConfig::try_from(client_tls)
            .map_err(|e| SyncError::Endpoint(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(transport_config());
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        asks.push(ask_one(config, &endpoint, client, peer.clone(), nonce));
    }
    let results = crate::net::futures_join_all(asks).await;
    endpoint.close(quinn::VarInt::from_u32(CLOSE_DONE), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(config
        .peers
        .iter()
        .map(|p| p.id)
        .zip(results)
        .collect::<BTreeMap<_, _>>())
}

async fn ask_one(
    config: &SyncConfig<'_>,
    endpoint: &quinn::Endpoint,
    client: quinn::ClientConfig,
    peer: Peer,
    nonce: [u8; 32],
) -> Result<Interchange, PeerFailure> {
    let mut backoff = Duration::from_millis(100);
    let mut last = "no attempt finished".to_owned();
    let connection = loop {
        if Instant::now() >= config.deadline {
            return Err(PeerFailure::Unreachable { reason: last });
        }
        let attempt = endpoint
            .connect_with(client.clone(), peer.address, tls::CERTIFICATE_NAME)
            .map_err(|e| PeerFailure::Unreachable {
                reason: e.to_string(),
            })?;
        match tokio::time::timeout_at(config.deadline, attempt).await {
            Ok(Ok(connection)) => break connection,
            Ok(Err(err)) => {
                debug!(peer = %peer.id, %err, "dial failed; retrying");
                last = err.to_string();
            }
            Err(_) => return Err(PeerFailure::Unreachable { reason: last }),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    };
    let exchange = exchange(config, &connection, nonce);
    let answer = match tokio::time::timeout_at(config.deadline, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(PeerFailure::Exchange {
            reason: "no answer before the deadline".into(),
        }),
    };
    connection.close(quinn::VarInt::from_u32(CLOSE_DONE), b"done");
    let signed = answer?;
    verify_export(
        &signed,
        &Expected {
            lock_hash: config.lock_hash,
            sender: peer.id,
            sender_key: peer.key,
            requester: config.me,
            nonce,
            keys: config.keys,
            genesis_validators_root: config.genesis_validators_root,
        },
    )
    .map_err(|err| PeerFailure::Invalid {
        reason: err.to_string(),
    })
}

async fn exchange(
    config: &SyncConfig<'_>,
    connection: &quinn::Connection,
    nonce: [u8; 32],
) -> Result<SignedExport, PeerFailure> {
    let broke = |reason: String| PeerFailure::Exchange { reason };
    let request = SyncRequest {
        version: SYNC_VERSION,
        lock_hash: Bytes(config.lock_hash),
        requester: config.me,
        nonce: Bytes(nonce),
    };
    let bytes = wire::encode(&request).map_err(|e| broke(e.to_string()))?;
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| broke(e.to_string()))?;
    send.write_all(&bytes)
        .await
        .map_err(|e| broke(e.to_string()))?;
    send.finish().map_err(|e| broke(e.to_string()))?;
    let limit = usize::try_from(config.max_response_bytes).unwrap_or(usize::MAX);
    let answer = match recv.read_to_end(limit).await {
        Ok(answer) => answer,
        Err(quinn::ReadToEndError::TooLong) => {
            return Err(PeerFailure::Invalid {
                reason: format!(
                    "its answer exceeds the {}-byte limit for this lock",
                    config.max_response_bytes
                ),
            });
        }
        Err(err) => return Err(broke(err.to_string())),
    };
    match wire::decode::<SyncResponse>(&answer, config.max_response_bytes) {
        Ok(SyncResponse::Export(signed)) => Ok(signed),
        Ok(SyncResponse::Refused { reason }) => Err(PeerFailure::Refused { reason }),
        Err(err) => Err(PeerFailure::Invalid {
            reason: format!("its answer is not a sync response: {err}"),
        }),
    }
}

/// A deliberate misbehaviour of a server, for the adversarial tests.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeFault {
    /// The history is changed after it is signed.
    BadSignature,
    /// The export claims to be from another operator (signed, but with
    /// this operator's key).
    WrongOperator,
}

#[cfg(feature = "fault-injection")]
impl std::str::FromStr for ServeFault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "bad-signature" => Ok(Self::BadSignature),
            "wrong-operator" => Ok(Self::WrongOperator),
            other => Err(format!(
                "unknown serve fault {other:?}: bad-signature or wrong-operator"
            )),
        }
    }
}

/// The history a server sends: EIP-3076 JSON bytes, or why it cannot.
pub type ExportFn = dyn Fn() -> Result<Vec<u8>, String> + Send + Sync;

/// What a server reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEvent {
    /// An operator was sent this operator's history.
    Served {
        /// Who asked.
        operator: OperatorId,
    },
    /// An operator's request was declined.
    Declined {
        /// Who asked.
        operator: OperatorId,
        /// Why.
        reason: String,
    },
}

/// The serving side.
pub struct ServeConfig {
    /// This operator.
    pub me: OperatorId,
    /// The lock.
    pub lock_hash: [u8; 32],
    /// This operator's identity.
    pub identity: Arc<IdentityKey>,
    /// Every other operator of the lock (who may ask).
    pub peers: Vec<Peer>,
    /// The history to send.
    pub export: Arc<ExportFn>,
    /// Told of every request.
    pub on_event: Arc<dyn Fn(ServeEvent) + Send + Sync>,
    /// The fault to inject.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<ServeFault>,
}

/// Serves on `socket` until `stop` resolves, then closes the endpoint.
///
/// # Errors
///
/// [`SyncError`] if the endpoint or TLS cannot be set up.
pub async fn serve(
    config: ServeConfig,
    socket: UdpSocket,
    stop: impl Future<Output = ()>,
) -> Result<(), SyncError> {
    let roster: Vec<IdentityPublicKey> = config.peers.iter().map(|p| p.key).collect();
    let mut server_tls = tls::server_config(&config.identity, &roster)?;
    server_tls.alpn_protocols = vec![SYNC_ALPN.to_vec()];
    let crypto =
        QuicServerConfig::try_from(server_tls).map_err(|e| SyncError::Endpoint(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport_config());
    let runtime =
        quinn::default_runtime().ok_or_else(|| SyncError::Endpoint("no async runtime".into()))?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )
    .map_err(|e| SyncError::Endpoint(e.to_string()))?;
    let config = Arc::new(config);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let config = config.clone();
                tokio::spawn(async move {
                    let answered = tokio::time::timeout(
                        Duration::from_secs(SERVE_EXCHANGE_SECS),
                        answer(&config, incoming),
                    )
                    .await;
                    if answered.is_err() {
                        debug!("a client took too long; dropped");
                    }
                });
            }
        }
    }
    endpoint.close(quinn::VarInt::from_u32(CLOSE_DONE), b"stopped");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(())
}

/// The operator a connection's pinned certificate belongs to.
fn operator_of(config: &ServeConfig, connection: &quinn::Connection) -> Option<OperatorId> {
    let key = connection
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|certs| certs.first().and_then(|c| tls::certificate_key(c).ok()))?;
    config.peers.iter().find(|p| p.key == key).map(|p| p.id)
}

/// Why a request is declined, if it is.
fn decline(config: &ServeConfig, operator: OperatorId, request: &SyncRequest) -> Option<String> {
    if request.version != SYNC_VERSION {
        return Some(format!(
            "operator {} speaks sync version {SYNC_VERSION}, not {}",
            config.me, request.version
        ));
    }
    if request.lock_hash.0 != config.lock_hash {
        return Some(format!(
            "operator {} serves the cluster lock {}, not {}",
            config.me,
            hex::encode(config.lock_hash),
            hex::encode(request.lock_hash.0)
        ));
    }
    if request.requester != operator {
        return Some(format!(
            "the request names operator {} but comes from operator {operator}",
            request.requester
        ));
    }
    None
}

async fn answer(config: &ServeConfig, incoming: quinn::Incoming) {
    let Ok(connection) = incoming.await else {
        return;
    };
    let Some(operator) = operator_of(config, &connection) else {
        connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"not an operator");
        return;
    };
    let Ok((mut send, mut recv)) = connection.accept_bi().await else {
        return;
    };
    let limit = usize::try_from(MAX_REQUEST_BYTES).unwrap_or(usize::MAX);
    let Ok(bytes) = recv.read_to_end(limit).await else {
        connection.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"bad request");
        return;
    };
    let response = match wire::decode::<SyncRequest>(&bytes, MAX_REQUEST_BYTES) {
        Err(err) => SyncResponse::Refused {
            reason: format!("not a sync request: {err}"),
        },
        Ok(request) => match decline(config, operator, &request) {
            Some(reason) => SyncResponse::Refused { reason },
            None => respond(config, operator, &request).await,
        },
    };
    let event = match &response {
        SyncResponse::Export(_) => ServeEvent::Served { operator },
        SyncResponse::Refused { reason } => ServeEvent::Declined {
            operator,
            reason: reason.clone(),
        },
    };
    let Ok(encoded) = wire::encode(&response) else {
        warn!("failed to encode a sync response (a bug)");
        return;
    };
    if send.write_all(&encoded).await.is_err() || send.finish().is_err() {
        return;
    }
    // The client closes once it has read everything.
    let _ = connection.closed().await;
    (config.on_event)(event);
}

async fn respond(
    config: &ServeConfig,
    operator: OperatorId,
    request: &SyncRequest,
) -> SyncResponse {
    let export = config.export.clone();
    let history = match tokio::task::spawn_blocking(move || export()).await {
        Ok(Ok(history)) => history,
        Ok(Err(reason)) => {
            warn!(%operator, %reason, "cannot export the database");
            return SyncResponse::Refused {
                reason: format!("operator {}'s database could not be read", config.me),
            };
        }
        Err(_) => {
            return SyncResponse::Refused {
                reason: format!("operator {}'s export failed", config.me),
            };
        }
    };
    #[allow(unused_mut)]
    let mut body = ExportBody {
        version: SYNC_VERSION,
        lock_hash: Bytes(config.lock_hash),
        sender: config.me,
        requester: request.requester,
        nonce: request.nonce,
        interchange: history,
    };
    #[cfg(feature = "fault-injection")]
    if config.fault == Some(ServeFault::WrongOperator) {
        let n = config.peers.len() + 1;
        let next = config.me.position() + 1;
        body.sender = OperatorId::from_position(next % n).unwrap_or(config.me);
    }
    #[allow(unused_mut)]
    let mut signed = match sign_export(&config.identity, body) {
        Ok(signed) => signed,
        Err(err) => {
            warn!(%err, "cannot sign the export (a bug)");
            return SyncResponse::Refused {
                reason: format!("operator {} could not sign its export", config.me),
            };
        }
    };
    #[cfg(feature = "fault-injection")]
    if config.fault == Some(ServeFault::BadSignature) {
        signed.body.interchange.push(b' ');
    }
    SyncResponse::Export(signed)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::super::interchange::{InterchangeData, SignedAttestation, SignedBlock};
    use super::super::merge::ValidatorKeys;
    use super::*;

    const ROOT: Root = Root([7; 32]);
    const LOCK: [u8; 32] = [9; 32];

    fn key(v: u8, operator: u8) -> PublicKeyBytes {
        let mut bytes = [0u8; 48];
        bytes[0] = v;
        bytes[1] = operator;
        PublicKeyBytes(bytes)
    }

    fn keymap() -> KeyMap {
        KeyMap::new(vec![ValidatorKeys {
            pubkey: key(1, 0),
            shares: (1..=3).map(|m| key(1, m)).collect(),
        }])
        .unwrap()
    }

    fn op(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    fn history(pubkey: PublicKeyBytes, slot: u64, target: u64) -> Interchange {
        let mut out = Interchange::empty(ROOT);
        out.data.push(InterchangeData {
            pubkey,
            signed_blocks: vec![SignedBlock {
                slot,
                signing_root: None,
            }],
            signed_attestations: vec![SignedAttestation {
                source_epoch: target - 1,
                target_epoch: target,
                signing_root: None,
            }],
        });
        out
    }

    fn body(sender: u8, interchange: &Interchange) -> ExportBody {
        ExportBody {
            version: SYNC_VERSION,
            lock_hash: Bytes(LOCK),
            sender: op(sender),
            requester: op(2),
            nonce: Bytes([5; 32]),
            interchange: interchange.to_json().unwrap().into_bytes(),
        }
    }

    #[test]
    fn an_export_is_accepted_only_from_the_operator_dialled_for_this_request() {
        let mut rng = StdRng::seed_from_u64(3);
        let alice = IdentityKey::generate(&mut rng);
        let mallory = IdentityKey::generate(&mut rng);
        let keys = keymap();
        let good = history(key(1, 1), 10, 4);
        let expected = Expected {
            lock_hash: LOCK,
            sender: op(1),
            sender_key: alice.public(),
            requester: op(2),
            nonce: [5; 32],
            keys: &keys,
            genesis_validators_root: ROOT,
        };
        let signed = sign_export(&alice, body(1, &good)).unwrap();
        assert_eq!(verify_export(&signed, &expected).unwrap(), good);

        // Signed by another key.
        let forged = sign_export(&mallory, body(1, &good)).unwrap();
        assert_eq!(
            verify_export(&forged, &expected),
            Err(ExportRefusal::BadSignature)
        );
        // Changed after signing.
        let mut tampered = signed.clone();
        tampered.body.interchange = history(key(1, 1), 1, 2).to_json().unwrap().into_bytes();
        assert_eq!(
            verify_export(&tampered, &expected),
            Err(ExportRefusal::BadSignature)
        );
        // Claims another operator.
        let other = sign_export(&alice, body(3, &good)).unwrap();
        assert_eq!(
            verify_export(&other, &expected),
            Err(ExportRefusal::WrongSender { claimed: op(3) })
        );
        // Another nonce: a replay of an earlier answer.
        let mut replayed = body(1, &good);
        replayed.nonce = Bytes([6; 32]);
        let replayed = sign_export(&alice, replayed).unwrap();
        assert_eq!(
            verify_export(&replayed, &expected),
            Err(ExportRefusal::OtherRequest)
        );
        // Another lock.
        let mut elsewhere = body(1, &good);
        elsewhere.lock_hash = Bytes([1; 32]);
        let elsewhere = sign_export(&alice, elsewhere).unwrap();
        assert!(matches!(
            verify_export(&elsewhere, &expected),
            Err(ExportRefusal::OtherLock { .. })
        ));
        // A key the lock does not know, signed properly: named.
        let stranger = sign_export(&alice, body(1, &history(key(9, 9), 1, 2))).unwrap();
        let err = verify_export(&stranger, &expected).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("operator 1's export: key 0x0909"),
            "{err}"
        );
        // Not JSON.
        let mut junk = body(1, &good);
        junk.interchange = b"{".to_vec();
        let junk = sign_export(&alice, junk).unwrap();
        assert!(matches!(
            verify_export(&junk, &expected),
            Err(ExportRefusal::NotInterchange(_))
        ));
    }

    #[test]
    fn histories_beyond_now_are_found_and_verified_ones_merge_by_maximum() {
        let a = history(key(1, 1), 100, 3);
        let b = history(key(1, 3), 20, 9);
        assert!(beyond_now(&a, 100, 3).is_empty());
        assert_eq!(
            beyond_now(&a, 99, 3),
            vec![Beyond {
                pubkey: key(1, 1),
                slot: Some(100),
                target: None
            }]
        );
        assert_eq!(beyond_now(&b, 1000, 8)[0].target, Some(9));

        let histories: BTreeMap<_, _> = [(op(1), a), (op(3), b)].into_iter().collect();
        let merged = merge_verified(&histories, &keymap(), KeyedBy::Operator(2), ROOT).unwrap();
        assert_eq!(merged.data.len(), 1);
        assert_eq!(merged.data[0].pubkey, key(1, 2));
        assert_eq!(merged.data[0].signed_blocks[0].slot, 100);
        let att = merged.data[0].signed_attestations[0];
        assert_eq!((att.source_epoch, att.target_epoch), (8, 9));
    }

    #[test]
    fn requests_and_responses_round_trip_through_the_wire_format() {
        let request = SyncRequest {
            version: SYNC_VERSION,
            lock_hash: Bytes(LOCK),
            requester: op(2),
            nonce: Bytes([1; 32]),
        };
        let bytes = wire::encode(&request).unwrap();
        assert_eq!(
            wire::decode::<SyncRequest>(&bytes, MAX_REQUEST_BYTES).unwrap(),
            request
        );
        let mut long = bytes.clone();
        long.resize(MAX_REQUEST_BYTES as usize + 1, 0);
        assert!(matches!(
            wire::decode::<SyncRequest>(&long, MAX_REQUEST_BYTES),
            Err(WireError::TooLarge { .. })
        ));
        let refused = SyncResponse::Refused {
            reason: "no".into(),
        };
        let bytes = wire::encode(&refused).unwrap();
        assert_eq!(wire::decode::<SyncResponse>(&bytes, 1024).unwrap(), refused);
        assert!(max_response_bytes(10_000) > 10_000 * 512);
    }
}
