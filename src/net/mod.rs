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
pub mod ping;
pub mod quic;
pub mod relay;
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
/// Close code: the peer is not expected on this connection, or the
/// connection is a second one between the same pair (reason `duplicate`).
pub const CLOSE_REFUSED: u32 = 2;
/// The reason text of a [`CLOSE_DONE`] close. A connection dropped without
/// an explicit close (a process that ends, a task dropped) also closes with
/// code 0, but with no reason: only this text says the peer finished.
pub const DONE_REASON: &[u8] = b"done";

/// How often a connection with nothing to say sends a keep-alive: well
/// within the 30 s or more that NAT mappings and stateful firewalls keep an
/// idle UDP flow, so that the idle timeout measures an outage, not silence.
pub const KEEP_ALIVE_SECS: u64 = 2;
/// The shortest QUIC idle timeout, whatever the round timeout.
pub const MIN_IDLE_TIMEOUT_SECS: u64 = 10;
/// The slowest link a transfer is given time for: 100 kbit/s, in bytes per
/// second.
pub const MIN_LINK_BYTES_PER_SEC: u64 = 12_500;
/// How long one dial attempt waits for the peer's handshake before trying
/// again with a fresh one (a peer that starts later is found by the next).
pub const DIAL_ATTEMPT_SECS: u64 = 10;

/// The QUIC idle timeout for a ceremony whose rounds wait `round_timeout`:
/// the round timeout itself (at least [`MIN_IDLE_TIMEOUT_SECS`]), so that
/// a connection outlives any outage the round deadline tolerates; a peer
/// that is really gone is named by the round deadline first. Both sides
/// offer it; QUIC uses the smaller of the two offers.
pub fn idle_timeout(round_timeout: Duration) -> Duration {
    round_timeout.max(Duration::from_secs(MIN_IDLE_TIMEOUT_SECS))
}

/// How long `bytes` take over a link of [`MIN_LINK_BYTES_PER_SEC`].
pub fn transfer_time(bytes: u64) -> Duration {
    Duration::from_secs(bytes.div_ceil(MIN_LINK_BYTES_PER_SEC))
}

/// How long one send of `bytes` to one of `fanout` peers may take: the
/// round timeout, plus the time the frame takes to every peer at once over
/// the slowest link counted ([`transfer_time`]). While a connection is
/// alive (the idle timeout has not fired) a send that takes longer is this
/// machine's uplink (or the peer's downlink) being too slow, not the peer
/// going silent.
pub fn send_limit(round_timeout: Duration, bytes: u64, fanout: usize) -> Duration {
    round_timeout + transfer_time(bytes.saturating_mul(fanout.max(1) as u64))
}

/// How a peer's connection ended, as far as this side can tell (its close
/// code and reason, or what the QUIC stack saw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// It closed with [`CLOSE_DONE`] and [`DONE_REASON`]: it finished.
    Finished,
    /// It closed with [`CLOSE_ABORT`]: it aborted, or gave up connecting
    /// (the reason it gave).
    Aborted(String),
    /// It refused the connection ([`CLOSE_REFUSED`], or another code).
    Refused(String),
    /// Code 0 without [`DONE_REASON`]: its end of the connection was
    /// dropped without a word (its process ended, say).
    Dropped,
    /// No packet arrived from it for the idle timeout.
    Silent(Duration),
    /// It answered with a stateless reset: it forgot the connection (its
    /// process restarted).
    Reset,
    /// This side closed it.
    Local,
    /// Anything else the QUIC stack reports (a protocol error).
    Other(String),
}

impl Closed {
    /// Whether the peer said it finished.
    pub fn finished(&self) -> bool {
        *self == Self::Finished
    }

    /// Whether the connection ended because nothing arrived (a failed link
    /// or a vanished peer), as opposed to a word from the peer.
    pub fn silent(&self) -> bool {
        matches!(self, Self::Silent(_) | Self::Dropped | Self::Reset)
    }
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finished => f.write_str("it finished"),
            Self::Aborted(reason) => write!(f, "it aborted ({reason})"),
            Self::Refused(reason) => write!(f, "it refused the connection ({reason})"),
            Self::Dropped => {
                f.write_str("it dropped the connection without a word (its process ended?)")
            }
            Self::Silent(after) => write!(
                f,
                "no packet arrived from it for {} s (it stopped, or the network between the two machines failed)",
                after.as_secs()
            ),
            Self::Reset => {
                f.write_str("it no longer knows the connection (its process restarted?)")
            }
            Self::Local => f.write_str("this machine closed it"),
            Self::Other(reason) => f.write_str(reason),
        }
    }
}

/// An operator the mesh could not connect to, with what was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreached {
    /// The operator.
    pub peer: OperatorId,
    /// The address dialled (from the definition).
    pub address: SocketAddr,
    /// How many dial attempts were made.
    pub attempts: u32,
    /// Why the last one failed.
    pub last: Option<String>,
    /// Why the last attempt through a relay failed, if one was made.
    pub relayed: Option<String>,
}

impl fmt::Display for Unreached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operator {} at {} ({} attempt{}",
            self.peer,
            self.address,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" }
        )?;
        match &self.last {
            Some(last) => write!(f, "; the last: {last})"),
            None if self.attempts > 0 => f.write_str("; no answer yet)"),
            None => f.write_str(")"),
        }?;
        match &self.relayed {
            Some(relayed) => write!(f, ", and through a relay: {relayed}"),
            None => Ok(()),
        }
    }
}

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
    /// Some operators could not be reached before the deadline, dialling
    /// them nor being dialled by them.
    #[error("could not connect to {} before the deadline, in either direction{}", unreached(.missing), refused_text(.refused))]
    Unreachable {
        /// The operators still missing, with what was tried.
        missing: Vec<Unreached>,
        /// Incoming connection attempts that failed their handshake: the
        /// address they came from and why (another cluster's operator, or
        /// an operator whose identity is not the one in the definition).
        refused: Vec<(SocketAddr, String)>,
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
    #[error("the connection to operator {peer} ended: {reason}")]
    PeerClosed {
        /// The operator.
        peer: OperatorId,
        /// How it ended.
        reason: Closed,
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
    #[error(
        "operator {peer} is running another ceremony: its definition hash is {theirs}, ours is {ours}"
    )]
    OtherCeremony {
        /// The operator.
        peer: OperatorId,
        /// Its definition hash.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// Sending failed.
    #[error("failed to send to operator {peer}: {reason}")]
    Send {
        /// The operator.
        peer: OperatorId,
        /// Why.
        reason: String,
    },
    /// A send did not complete within its limit ([`send_limit`]) although
    /// the connection is alive: the data does not get out fast enough.
    #[error(
        "this machine could not send its {kind} frame to operator {peer} within {} s",
        .after.as_secs()
    )]
    SendTimeout {
        /// The operator sent to.
        peer: OperatorId,
        /// What was sent.
        kind: FrameKind,
        /// The limit.
        after: Duration,
    },
}

fn unreached(missing: &[Unreached]) -> String {
    let shown: Vec<String> = missing.iter().map(ToString::to_string).collect();
    shown.join("; ")
}

/// The part of a "could not connect" message about refused incoming
/// attempts (empty when there were none).
pub fn refused_text(refused: &[(SocketAddr, String)]) -> String {
    match refused.first() {
        None => String::new(),
        Some((from, why)) => format!(
            "; {} incoming attempt{} refused, the last from {from}: {why}",
            refused.len(),
            if refused.len() == 1 { " was" } else { "s were" }
        ),
    }
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
            | Self::Send { peer, .. }
            | Self::SendTimeout { peer, .. } => Some(*peer),
            Self::Unreachable { missing, .. } => missing.first().map(|m| m.peer),
            Self::Endpoint { .. } | Self::Tls(_) => None,
        }
    }
}

/// One peer of the mesh.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its index.
    pub id: OperatorId,
    /// Its name in the definition (for messages).
    pub name: String,
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
    /// How long a round waits for a message: the idle timeout and the send
    /// limit follow from it ([`idle_timeout`], [`send_limit`]).
    pub round_timeout: Duration,
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
        let each = self.broadcast_each(kind, payload, acknowledged);
        async move {
            each.await
                .into_iter()
                .find_map(|(_, result)| result.err())
                .map_or(Ok(()), Err)
        }
    }

    /// Sends the same frame to every peer, concurrently, and returns every
    /// peer's outcome (so that a caller can tell one failed peer from all).
    fn broadcast_each(
        &self,
        kind: FrameKind,
        payload: &[u8],
        acknowledged: bool,
    ) -> impl Future<Output = Vec<(OperatorId, Result<(), TransportError>)>> + Send {
        let peers = self.peers();
        let sends: Vec<_> = peers
            .iter()
            .map(|&peer| self.send(peer, kind, Zeroizing::new(payload.to_vec()), acknowledged))
            .collect();
        async move {
            let results = futures_join_all(sends).await;
            peers.into_iter().zip(results).collect()
        }
    }

    /// Closes every connection with `code`, then waits up to `linger` for
    /// the close to reach the peers.
    fn close(self, code: u32, reason: &[u8], linger: Duration) -> impl Future<Output = ()> + Send;
}

/// Runs every future to completion, concurrently, and returns their results
/// in order.
pub(crate) async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
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
