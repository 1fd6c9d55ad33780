//! The gateway to the network: typed, length-bounded frames between the
//! participants of one ceremony, over a [`Transport`]. The QUIC mesh
//! ([`quic::Mesh`]: mutual TLS with pinned identity keys, see [`tls`]) is
//! the real one; an in-memory network ([`memory`], feature `test-utils`),
//! with injectable delays and drops, runs the driver in one test process.
//!
//! Every frame lands in a [`mailbox::Mailbox`] per (peer, kind): a frame for
//! a later round waits there until the driver asks for it. Every wait has a
//! deadline; a peer that closes or goes silent is named. This module knows
//! no protocol message: a frame's kind is a number the driver assigns.

pub mod mailbox;
#[cfg(any(test, feature = "test-utils"))]
pub mod memory;
pub mod quic;
pub mod tls;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use zeroize::{Zeroize as _, Zeroizing};

use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityPublicKey;
use crate::wire::{self, Bytes};

pub use mailbox::Mailbox;
pub use quic::Mesh;

/// The frame format version.
pub const FRAME_VERSION: u16 = 2;
/// Close code: the ceremony finished.
pub const CLOSE_DONE: u32 = 0;
/// Close code: this operator aborted.
pub const CLOSE_ABORT: u32 = 1;
/// Close code: the peer is not expected on this connection.
pub const CLOSE_REFUSED: u32 = 2;
/// How long a silent connection stays up (keep-alives are sent well within).
pub const IDLE_TIMEOUT_SECS: u64 = 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FrameKind {
    /// A protocol message; the number is the driver's (its message kind).
    Message(u8),
    /// The sender aborted; the payload is its abort report.
    Abort,
    /// The sender holds every finalize message and will write its outputs.
    Done,
    /// The sender's outputs are durably in place; the payload is its lock
    /// hash.
    Confirm,
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(tag) => write!(f, "message-{tag}"),
            Self::Abort => f.write_str("abort report"),
            Self::Done => f.write_str("closing"),
            Self::Confirm => f.write_str("confirmation"),
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
/// out by [`Mailbox::recv`] are [`Zeroizing`]. Copies inside quinn's own
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
    /// The message kinds of the protocol (frames of others are refused).
    pub messages: &'static [u8],
    /// When to give up connecting.
    pub connect_deadline: Instant,
}

/// The sending half of a connected transport; receiving is the
/// [`Mailbox`]'s. Implemented by the QUIC mesh and the in-memory network.
pub trait Transport: Send + Sync {
    /// The other participants this transport reaches.
    fn peers(&self) -> Vec<OperatorId>;

    /// The mailbox received frames are filed in.
    fn mailbox(&self) -> &Mailbox;

    /// Sends one frame to `peer`. With `acknowledged`, waits until the peer
    /// has received all of it (used before closing).
    ///
    /// # Errors
    ///
    /// [`TransportError::Send`] or a timeout naming the peer.
    fn send(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        payload: Zeroizing<Vec<u8>>,
        acknowledged: bool,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Sends the same frame to every peer, concurrently.
    ///
    /// # Errors
    ///
    /// The first [`TransportError`] met.
    fn broadcast(
        &self,
        kind: FrameKind,
        payload: &[u8],
        acknowledged: bool,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        let sends: Vec<_> = self
            .peers()
            .into_iter()
            .map(|peer| self.send(peer, kind, Zeroizing::new(payload.to_vec()), acknowledged))
            .collect();
        async move {
            let results = futures_join_all(sends).await;
            results
                .into_iter()
                .find_map(Result::err)
                .map_or(Ok(()), Err)
        }
    }

    /// Closes every connection with `code`, then waits up to `linger` for
    /// the close to reach the peers.
    fn close(self, code: u32, reason: &[u8], linger: Duration) -> impl Future<Output = ()> + Send;
}

/// Runs every future to completion, concurrently, and returns their results
/// in order.
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => *slot = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// The longest a single send may take: a peer that stops granting stream or
/// flow-control credit is named, not waited on forever.
pub const SEND_TIMEOUT_SECS: u64 = 120;

/// The encoded frame of `payload`, wiped when dropped.
///
/// # Errors
///
/// [`TransportError::Send`], a bug.
pub fn encode_frame(
    me: OperatorId,
    ceremony: [u8; 32],
    peer: OperatorId,
    kind: FrameKind,
    mut payload: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, TransportError> {
    // Moved into the frame, which wipes it when dropped.
    let frame = Frame {
        version: FRAME_VERSION,
        ceremony: Bytes(ceremony),
        kind,
        sender: me,
        payload: std::mem::take(&mut *payload),
    };
    wire::encode(&frame)
        .map(Zeroizing::new)
        .map_err(|e| TransportError::Send {
            peer,
            reason: e.to_string(),
        })
}
