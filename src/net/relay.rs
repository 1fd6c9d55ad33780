//! The operator relay: an operator that two others both reach carries a
//! whole QUIC connection between them, and sees only its ciphertext.
//!
//! Spec: `ceremony-specs/formats.md` §10.1 ("Relay").
//!
//! **Who relays.** Every operator offers the service to the other
//! operators of the same ceremony, on the connections its mesh keeps (so
//! only to peers pinned by the definition). A peer A opens a bidirectional
//! stream to the relay R with a [`Header::Request`] naming the target B; R
//! checks that B is another operator of the ceremony and that it holds a
//! direct connection to B, opens a bidirectional stream to B with a
//! [`Header::Offer`] naming A, and once B accepts, answers A with
//! [`ACCEPTED`] and copies bytes both ways ([`Hub`]). Nothing on these
//! streams is interpreted by R after the header.
//!
//! **What runs inside.** A and B each run a second QUIC endpoint over a
//! [`RelaySocket`], whose "datagrams" travel on those streams, each with a
//! two-byte length ([`write_datagram`]). A stream is reliable, so nothing
//! is lost on the way; QUIC's own loss recovery simply has nothing to do.
//! (QUIC DATAGRAM frames on the outer connection would cap an inner packet
//! below the 1200 bytes an Initial needs.) The inner connection uses the
//! same pinned TLS configuration as a direct one: A checks that the server
//! proves B's identity key, B that the client proves A's. The relay holds
//! neither key, so it cannot read, alter or impersonate; it can drop or
//! delay, which is the same as a link that fails.
//!
//! **Limits.** A relay carries at most [`Hub::max_pipes_per_origin`] pipes
//! opened by one peer at a time, at most [`Hub::pipe_bytes`] bytes on one
//! pipe, and ends a pipe as soon as one direction ends, fails, or stays
//! silent for the idle timeout (the inner connection sends a keep-alive
//! every 2 s, so silence means it is gone).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use crate::ceremony::OperatorId;

/// The first bytes of every relay stream.
pub const RELAY_MAGIC: &[u8; 12] = b"dvkg-relay/1";
/// The length of a [`Header`]: the magic, a kind byte, an operator index.
pub const HEADER_BYTES: usize = RELAY_MAGIC.len() + 2;
/// The answer that accepts a relay stream; anything else is a
/// [`Refusal`] code, after which the stream is finished.
pub const ACCEPTED: u8 = 0;
/// The largest datagram carried on a relay stream. The inner endpoint
/// sends at most 1200-byte packets (no path MTU discovery on a relayed
/// path); this leaves room for a peer configured otherwise.
pub const MAX_DATAGRAM_BYTES: usize = 1500;
/// How long a relay stream may take to deliver its header and get an
/// answer.
pub const RELAY_HEADER_SECS: u64 = 5;
/// Datagrams queued towards one relayed path before more are dropped (as
/// a full UDP socket buffer would).
const PATH_QUEUE: usize = 256;

const REQUEST: u8 = 1;
const OFFER: u8 = 2;

/// The header that opens a relay stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// From a peer to its relay: "carry this stream to `target`".
    Request {
        /// The operator to reach.
        target: OperatorId,
    },
    /// From the relay to the target: "`origin` reaches you through me".
    Offer {
        /// The operator at the other end.
        origin: OperatorId,
    },
}

impl Header {
    /// The bytes of this header.
    pub fn encode(self) -> [u8; HEADER_BYTES] {
        let (kind, id) = match self {
            Self::Request { target } => (REQUEST, target),
            Self::Offer { origin } => (OFFER, origin),
        };
        let mut out = [0; HEADER_BYTES];
        for (slot, byte) in out
            .iter_mut()
            .zip(RELAY_MAGIC.iter().chain([kind, id.get()].iter()))
        {
            *slot = *byte;
        }
        out
    }

    /// Parses a header.
    ///
    /// # Errors
    ///
    /// [`Refusal::Malformed`] for another length, magic or kind, or an
    /// index that is no operator index at all.
    pub fn decode(bytes: &[u8]) -> Result<Self, Refusal> {
        let (Some(magic), Some(&kind), Some(&id), HEADER_BYTES) = (
            bytes.get(..RELAY_MAGIC.len()),
            bytes.get(RELAY_MAGIC.len()),
            bytes.get(RELAY_MAGIC.len() + 1),
            bytes.len(),
        ) else {
            return Err(Refusal::Malformed);
        };
        if magic != RELAY_MAGIC {
            return Err(Refusal::Malformed);
        }
        let id = OperatorId::try_from(id).map_err(|_| Refusal::Malformed)?;
        match kind {
            REQUEST => Ok(Self::Request { target: id }),
            OFFER => Ok(Self::Offer { origin: id }),
            _ => Err(Refusal::Malformed),
        }
    }
}

/// Why a relay (or a target) refused a relay stream: the one-byte answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The header is not a relay header.
    #[error("the relay header was malformed")]
    Malformed,
    /// The target is no other operator of this ceremony.
    #[error("the target is no other operator of this ceremony")]
    NotAnOperator,
    /// The relay holds no connection to the target (yet).
    #[error("the relay holds no connection to the target")]
    NoRoute,
    /// The relay carries as many pipes for this peer as it allows.
    #[error("the relay carries as many pipes for this operator as it allows")]
    Busy,
    /// The target did not accept the relayed stream.
    #[error("the target did not accept the relayed stream")]
    TargetRefused,
}

impl Refusal {
    /// The answer byte.
    pub fn code(self) -> u8 {
        match self {
            Self::Malformed => 1,
            Self::NotAnOperator => 2,
            Self::NoRoute => 3,
            Self::Busy => 4,
            Self::TargetRefused => 5,
        }
    }

    /// The refusal an answer byte stands for (`None` for [`ACCEPTED`] and
    /// unknown codes).
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::Malformed,
            Self::NotAnOperator,
            Self::NoRoute,
            Self::Busy,
            Self::TargetRefused,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// Why opening a relayed path failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// This side holds no direct connection to the relay.
    #[error("not connected to operator {0} directly")]
    NotConnected(OperatorId),
    /// The relay refused.
    #[error("operator {via} refused to relay: {refusal}")]
    Refused {
        /// The relay.
        via: OperatorId,
        /// Its answer.
        refusal: Refusal,
    },
    /// The stream to the relay failed or gave no answer in time.
    #[error("the relay stream through operator {via} failed: {reason}")]
    Stream {
        /// The relay.
        via: OperatorId,
        /// Why.
        reason: String,
    },
}

/// The most bytes one pipe may carry, both directions together: four times
/// what a pair exchanges at most (one frame of each message kind and of
/// each control kind, each at the frame bound, either way), plus 64 MiB
/// for QUIC's own packets. A ceremony never comes near it; a peer that
/// would use a relay as a free tunnel is cut off.
pub fn pipe_bytes(limits: &super::Limits) -> u64 {
    let kinds = limits.messages.len() as u64 + 3;
    limits
        .max_frame_bytes
        .saturating_mul(kinds)
        .saturating_mul(2 * 4)
        .saturating_add(64 << 20)
}

/// The synthetic address of a relayed path to `peer` through `via`, as
/// the inner endpoint sees it: `192.0.2.VIA` (TEST-NET-1, never routed)
/// and port `2·PEER + 1` when this side opened the path, `2·PEER` when the
/// peer did. A pair may hold a path opened by either side through the same
/// relay; the low bit keeps them apart.
pub fn path_address(via: OperatorId, peer: OperatorId, opened_here: bool) -> SocketAddr {
    let port = u16::from(peer.get()) * 2 + u16::from(opened_here);
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, via.get()), port))
}

/// The relay and the peer of a [`path_address`].
pub fn parse_path_address(address: SocketAddr) -> Option<(OperatorId, OperatorId)> {
    let SocketAddr::V4(v4) = address else {
        return None;
    };
    let [192, 0, 2, via] = v4.ip().octets() else {
        return None;
    };
    let peer = u8::try_from(v4.port() / 2).ok()?;
    Some((
        OperatorId::try_from(via).ok()?,
        OperatorId::try_from(peer).ok()?,
    ))
}

/// Writes one datagram: a big-endian `u16` length, then the bytes.
///
/// # Errors
///
/// The stream's error, or `InvalidInput` for a datagram over
/// [`MAX_DATAGRAM_BYTES`].
pub async fn write_datagram<W: AsyncWrite + Unpin>(out: &mut W, datagram: &[u8]) -> io::Result<()> {
    let len = u16::try_from(datagram.len())
        .ok()
        .filter(|&l| usize::from(l) <= MAX_DATAGRAM_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "datagram too long"))?;
    let mut framed = Vec::with_capacity(datagram.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(datagram);
    out.write_all(&framed).await
}

/// Reads one datagram written by [`write_datagram`]; `None` when the
/// stream ends cleanly between two.
///
/// # Errors
///
/// The stream's error; `UnexpectedEof` for a stream that ends inside one;
/// `InvalidData` for a length over [`MAX_DATAGRAM_BYTES`].
pub async fn read_datagram<R: AsyncRead + Unpin>(input: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    if input.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let mut second = [0u8; 1];
    input.read_exact(&mut second).await?;
    let len = usize::from(u16::from_be_bytes([first[0], second[0]]));
    if len > MAX_DATAGRAM_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a relayed datagram of {len} bytes, over {MAX_DATAGRAM_BYTES}"),
        ));
    }
    let mut datagram = vec![0; len];
    input.read_exact(&mut datagram).await?;
    Ok(Some(datagram))
}

/// One attached path of a [`RelaySocket`].
struct PathEntry {
    id: u64,
    out: mpsc::Sender<Vec<u8>>,
    /// Dropped to stop the path's reader.
    _stop: oneshot::Sender<()>,
}

/// A "UDP socket" for quinn whose datagrams travel on relay streams, one
/// stream pair per remote [`path_address`].
///
/// Sending to an address with no path drops the datagram, as UDP drops
/// one to an unreachable host; so does sending to a path whose queue is
/// full. Receiving yields the datagrams of every path, each from its path
/// address.
pub struct RelaySocket {
    local: SocketAddr,
    paths: Mutex<BTreeMap<SocketAddr, PathEntry>>,
    inbound_tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    inbound: Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    next_id: AtomicU64,
}

impl fmt::Debug for RelaySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paths: Vec<SocketAddr> = self
            .paths
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        f.debug_struct("RelaySocket")
            .field("local", &self.local)
            .field("paths", &paths)
            .finish()
    }
}

impl RelaySocket {
    /// A socket with no path yet, for operator `me`.
    pub fn new(me: OperatorId) -> Arc<Self> {
        let (inbound_tx, inbound) = mpsc::channel(PATH_QUEUE);
        Arc::new(Self {
            local: SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(192, 0, 2, 0),
                u16::from(me.get()) * 2,
            )),
            paths: Mutex::new(BTreeMap::new()),
            inbound_tx,
            inbound: Mutex::new(inbound),
            next_id: AtomicU64::new(1),
        })
    }

    /// Carries the datagrams to and from `address` on `input` and
    /// `output` (replacing any path there before), until either ends or the
    /// path is detached; then finishes `output`. Returns the path's id.
    pub fn attach<R, W>(self: &Arc<Self>, address: SocketAddr, mut input: R, mut output: W) -> u64
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(PATH_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        if let Ok(mut paths) = self.paths.lock() {
            paths.insert(
                address,
                PathEntry {
                    id,
                    out: out_tx,
                    _stop: stop_tx,
                },
            );
        }
        tokio::spawn(async move {
            while let Some(datagram) = out_rx.recv().await {
                if write_datagram(&mut output, &datagram).await.is_err() {
                    return;
                }
            }
            // Detached: the far end reads the end of the stream.
            let _ = output.shutdown().await;
        });
        let inbound = self.inbound_tx.clone();
        let socket: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let read = async {
                loop {
                    match read_datagram(&mut input).await {
                        Ok(Some(datagram)) => {
                            if inbound.send((address, datagram)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(err) => {
                            debug!(%address, %err, "relayed path failed");
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                () = read => {}
                _ = stop_rx => {}
            }
            if let Some(socket) = socket.upgrade() {
                socket.detach(address, id);
            }
        });
        id
    }

    /// Detaches the path `id` at `address`, if it is still the one there.
    pub fn detach(&self, address: SocketAddr, id: u64) {
        if let Ok(mut paths) = self.paths.lock()
            && paths.get(&address).is_some_and(|p| p.id == id)
        {
            paths.remove(&address);
        }
    }

    /// Detaches every path: each stream is finished.
    pub fn detach_all(&self) {
        if let Ok(mut paths) = self.paths.lock() {
            paths.clear();
        }
    }

    /// How many paths are attached.
    pub fn paths(&self) -> usize {
        self.paths.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// Always writable: a full path drops datagrams instead of blocking.
#[derive(Debug)]
struct Writable;

impl quinn::UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl quinn::AsyncUdpSocket for RelaySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        Box::pin(Writable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let Ok(paths) = self.paths.lock() else {
            return Ok(());
        };
        let Some(path) = paths.get(&transmit.destination) else {
            // No path (any more): lost, like a datagram to a host that is
            // gone.
            return Ok(());
        };
        let size = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for segment in transmit.contents.chunks(size) {
            // A full queue drops the datagram, as a full socket buffer
            // would; QUIC's recovery sends it again.
            let _ = path.out.try_send(segment.to_vec());
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let Ok(mut inbound) = self.inbound.lock() else {
            return Poll::Ready(Err(io::Error::other("relay socket poisoned")));
        };
        let mut filled = 0;
        for (buf, slot) in bufs.iter_mut().zip(meta.iter_mut()) {
            loop {
                let next = if filled == 0 {
                    match inbound.poll_recv(cx) {
                        Poll::Ready(Some(next)) => next,
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(io::Error::other("relay socket closed")));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                } else {
                    match inbound.try_recv() {
                        Ok(next) => next,
                        Err(_) => return Poll::Ready(Ok(filled)),
                    }
                };
                let (from, datagram) = next;
                let Some(target) = buf.get_mut(..datagram.len()) else {
                    // Larger than quinn's buffer: dropped, as the kernel
                    // truncates an oversized datagram.
                    continue;
                };
                target.copy_from_slice(&datagram);
                *slot = RecvMeta {
                    addr: from,
                    len: datagram.len(),
                    stride: datagram.len(),
                    ecn: None,
                    dst_ip: None,
                };
                filled += 1;
                break;
            }
        }
        Poll::Ready(Ok(filled))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

/// Counts a relayed pipe while it lives.
struct PipeGuard {
    hub: Arc<Hub>,
    origin: OperatorId,
}

impl Drop for PipeGuard {
    fn drop(&mut self) {
        self.hub.pipes.send_modify(|n| *n = n.saturating_sub(1));
        if let Ok(mut per) = self.hub.per_origin.lock()
            && let Some(count) = per.get_mut(&self.origin)
        {
            *count = count.saturating_sub(1);
        }
    }
}

/// Why a pipe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Finished,
    Lost,
    Silent,
    Limit,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Finished => "one side finished",
            Self::Lost => "one side was lost",
            Self::Silent => "one side went silent",
            Self::Limit => "the byte limit was reached",
        })
    }
}

/// The relay service of one operator, and its view of the direct
/// connections it can relay over.
pub struct Hub {
    me: OperatorId,
    /// Every other operator of the ceremony.
    operators: BTreeSet<OperatorId>,
    /// The direct connections kept, by peer: the ones relayed over.
    direct: Mutex<BTreeMap<OperatorId, quinn::Connection>>,
    /// Where the paths that end here are attached.
    socket: Arc<RelaySocket>,
    /// How many pipes this operator relays now.
    pipes: watch::Sender<usize>,
    per_origin: Mutex<BTreeMap<OperatorId, usize>>,
    /// At most this many pipes opened by one peer at a time.
    pub max_pipes_per_origin: usize,
    /// At most this many bytes (both directions) on one pipe.
    pub pipe_bytes: u64,
    /// A pipe direction silent this long ends the pipe.
    idle: Duration,
}

impl Hub {
    /// The hub of operator `me` among `operators` (the others), with paths
    /// that end here attached to `socket`.
    pub fn new(
        me: OperatorId,
        operators: BTreeSet<OperatorId>,
        socket: Arc<RelaySocket>,
        pipe_bytes: u64,
        idle: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            me,
            max_pipes_per_origin: 2 * operators.len().max(1),
            operators,
            direct: Mutex::new(BTreeMap::new()),
            socket,
            pipes: watch::channel(0).0,
            per_origin: Mutex::new(BTreeMap::new()),
            pipe_bytes,
            idle,
        })
    }

    /// The socket paths ending here are attached to.
    pub fn socket(&self) -> &Arc<RelaySocket> {
        &self.socket
    }

    /// `connection` is the direct connection kept to `peer`: relay over
    /// it, and serve the relay streams `peer` opens on it.
    pub fn keep(self: &Arc<Self>, peer: OperatorId, connection: quinn::Connection) {
        if let Ok(mut direct) = self.direct.lock() {
            direct.insert(peer, connection.clone());
        }
        let hub = self.clone();
        let span = tracing::debug_span!("relay", operator = %peer);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                while let Ok((send, recv)) = connection.accept_bi().await {
                    tokio::spawn(hub.clone().handle(peer, send, recv));
                }
            },
            span,
        ));
    }

    /// No direct connection to `peer` is kept (any more).
    pub fn forget(&self, peer: OperatorId) {
        if let Ok(mut direct) = self.direct.lock() {
            direct.remove(&peer);
        }
    }

    /// The peers this side holds a direct connection to.
    pub fn direct_peers(&self) -> Vec<OperatorId> {
        self.direct
            .lock()
            .map(|d| d.keys().copied().collect())
            .unwrap_or_default()
    }

    /// How many pipes this operator relays now.
    pub fn active_pipes(&self) -> usize {
        *self.pipes.borrow()
    }

    /// Waits up to `within` for every pipe this operator relays to end.
    pub async fn pipes_ended(&self, within: Duration) {
        let mut pipes = self.pipes.subscribe();
        let _ = tokio::time::timeout(within, pipes.wait_for(|&n| n == 0)).await;
    }

    /// Opens a relayed path to `target` through `via` and attaches it to
    /// the socket; returns its address and id.
    ///
    /// # Errors
    ///
    /// [`RelayError`] naming the relay.
    pub async fn open(
        &self,
        via: OperatorId,
        target: OperatorId,
    ) -> Result<(SocketAddr, u64), RelayError> {
        let connection = self
            .direct
            .lock()
            .ok()
            .and_then(|d| d.get(&via).cloned())
            .ok_or(RelayError::NotConnected(via))?;
        let stream = |reason: String| RelayError::Stream { via, reason };
        let opened = tokio::time::timeout(Duration::from_secs(RELAY_HEADER_SECS), async {
            let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(&Header::Request { target }.encode())
                .await
                .map_err(|e| e.to_string())?;
            let mut answer = [0u8; 1];
            recv.read_exact(&mut answer)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((send, recv, answer[0]))
        })
        .await
        .map_err(|_| stream(format!("no answer within {RELAY_HEADER_SECS} s")))?
        .map_err(stream)?;
        let (send, recv, answer) = opened;
        if answer != ACCEPTED {
            let refusal = Refusal::from_code(answer).unwrap_or(Refusal::Malformed);
            return Err(RelayError::Refused { via, refusal });
        }
        let address = path_address(via, target, true);
        let id = self.socket.attach(address, recv, send);
        Ok((address, id))
    }

    /// One relay stream `peer` opened on its kept connection.
    async fn handle(
        self: Arc<Self>,
        peer: OperatorId,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        let mut header = [0u8; HEADER_BYTES];
        let read = tokio::time::timeout(
            Duration::from_secs(RELAY_HEADER_SECS),
            recv.read_exact(&mut header),
        )
        .await;
        let header = match read {
            Ok(Ok(())) => Header::decode(&header),
            _ => Err(Refusal::Malformed),
        };
        let refused = |mut send: quinn::SendStream, refusal: Refusal| async move {
            debug!(%refusal, "relay stream refused");
            let _ = send.write_all(&[refusal.code()]).await;
            let _ = send.finish();
            // Give the answer time to leave before the stream is dropped.
            let _ =
                tokio::time::timeout(Duration::from_secs(RELAY_HEADER_SECS), send.stopped()).await;
        };
        match header {
            Err(refusal) => refused(send, refusal).await,
            Ok(Header::Offer { origin }) => {
                if !self.operators.contains(&origin) || origin == peer {
                    return refused(send, Refusal::NotAnOperator).await;
                }
                if send.write_all(&[ACCEPTED]).await.is_err() {
                    return;
                }
                debug!(%origin, "a relayed path from operator {origin} arrived");
                self.socket
                    .attach(path_address(peer, origin, false), recv, send);
            }
            Ok(Header::Request { target }) => {
                if !self.operators.contains(&target) || target == peer || target == self.me {
                    return refused(send, Refusal::NotAnOperator).await;
                }
                let Some(guard) = self.admit(peer) else {
                    return refused(send, Refusal::Busy).await;
                };
                let Some(to_target) = self
                    .direct
                    .lock()
                    .ok()
                    .and_then(|d| d.get(&target).cloned())
                else {
                    return refused(send, Refusal::NoRoute).await;
                };
                let offered = tokio::time::timeout(Duration::from_secs(RELAY_HEADER_SECS), async {
                    let (mut t_send, mut t_recv) = to_target.open_bi().await.ok()?;
                    t_send
                        .write_all(&Header::Offer { origin: peer }.encode())
                        .await
                        .ok()?;
                    let mut answer = [0u8; 1];
                    t_recv.read_exact(&mut answer).await.ok()?;
                    (answer[0] == ACCEPTED).then_some((t_send, t_recv))
                })
                .await;
                let Ok(Some((t_send, t_recv))) = offered else {
                    return refused(send, Refusal::TargetRefused).await;
                };
                if send.write_all(&[ACCEPTED]).await.is_err() {
                    return;
                }
                info!(
                    origin = %peer,
                    %target,
                    "relaying between operator {peer} and operator {target}"
                );
                let ended = pipe((recv, send), (t_recv, t_send), self.pipe_bytes, self.idle).await;
                info!(
                    origin = %peer,
                    %target,
                    "relay between operator {peer} and operator {target} ended: {ended}"
                );
                drop(guard);
            }
        }
    }

    /// Counts a new pipe opened by `origin`, unless it has too many.
    fn admit(self: &Arc<Self>, origin: OperatorId) -> Option<PipeGuard> {
        let mut per = self.per_origin.lock().ok()?;
        let count = per.entry(origin).or_default();
        if *count >= self.max_pipes_per_origin {
            return None;
        }
        *count += 1;
        drop(per);
        self.pipes.send_modify(|n| *n += 1);
        Some(PipeGuard {
            hub: self.clone(),
            origin,
        })
    }
}

/// Copies bytes both ways between two stream pairs until one direction
/// ends, fails, stays silent for `idle`, or the pipe has carried `limit`
/// bytes; then ends both.
async fn pipe(
    a: (quinn::RecvStream, quinn::SendStream),
    b: (quinn::RecvStream, quinn::SendStream),
    limit: u64,
    idle: Duration,
) -> Ended {
    let (mut a_recv, mut a_send) = a;
    let (mut b_recv, mut b_send) = b;
    let used = AtomicU64::new(0);
    let ended = tokio::select! {
        ended = forward(&mut a_recv, &mut b_send, &used, limit, idle) => ended,
        ended = forward(&mut b_recv, &mut a_send, &used, limit, idle) => ended,
    };
    let code = quinn::VarInt::from_u32(0);
    for send in [&mut a_send, &mut b_send] {
        if ended == Ended::Finished {
            let _ = send.finish();
        } else {
            let _ = send.reset(code);
        }
    }
    let _ = a_recv.stop(code);
    let _ = b_recv.stop(code);
    // Let the last bytes and the end of each stream leave.
    let linger = Duration::from_secs(RELAY_HEADER_SECS);
    let _ = tokio::time::timeout(linger, async {
        let _ = a_send.stopped().await;
        let _ = b_send.stopped().await;
    })
    .await;
    ended
}

/// One direction of a [`pipe`].
async fn forward(
    input: &mut quinn::RecvStream,
    output: &mut quinn::SendStream,
    used: &AtomicU64,
    limit: u64,
    idle: Duration,
) -> Ended {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(idle, input.read(&mut buf)).await {
            Err(_) => return Ended::Silent,
            Ok(Ok(Some(n))) => n,
            Ok(Ok(None)) => return Ended::Finished,
            Ok(Err(_)) => return Ended::Lost,
        };
        let before = used.fetch_add(n as u64, Ordering::Relaxed);
        if before + n as u64 > limit {
            return Ended::Limit;
        }
        let Some(chunk) = buf.get(..n) else {
            return Ended::Lost;
        };
        if output.write_all(chunk).await.is_err() {
            return Ended::Lost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    #[test]
    fn headers_round_trip_and_malformed_ones_are_refused() {
        for header in [
            Header::Request { target: id(4) },
            Header::Offer { origin: id(128) },
        ] {
            let bytes = header.encode();
            assert_eq!(bytes.get(..12), Some(&RELAY_MAGIC[..]));
            assert_eq!(Header::decode(&bytes), Ok(header));
        }
        let good = Header::Request { target: id(3) }.encode();
        let mut wrong_magic = good;
        wrong_magic[0] ^= 1;
        let mut wrong_kind = good;
        wrong_kind[12] = 9;
        let mut no_operator = good;
        no_operator[13] = 0;
        for bad in [
            &wrong_magic[..],
            &wrong_kind[..],
            &no_operator[..],
            &good[..13],
            &[good.as_slice(), &[0]].concat()[..],
            b"",
        ] {
            assert_eq!(Header::decode(bad), Err(Refusal::Malformed), "{bad:?}");
        }
        for refusal in [
            Refusal::Malformed,
            Refusal::NotAnOperator,
            Refusal::NoRoute,
            Refusal::Busy,
            Refusal::TargetRefused,
        ] {
            assert_ne!(refusal.code(), ACCEPTED);
            assert_eq!(Refusal::from_code(refusal.code()), Some(refusal));
        }
        assert_eq!(Refusal::from_code(ACCEPTED), None);
    }

    #[test]
    fn path_addresses_name_the_relay_the_peer_and_the_opener() {
        let here = path_address(id(1), id(4), true);
        let there = path_address(id(1), id(4), false);
        assert_ne!(here, there);
        assert_eq!(parse_path_address(here), Some((id(1), id(4))));
        assert_eq!(parse_path_address(there), Some((id(1), id(4))));
        assert_eq!(
            parse_path_address(path_address(id(128), id(128), true)),
            Some((id(128), id(128)))
        );
        assert_eq!(parse_path_address("127.0.0.1:9000".parse().unwrap()), None);
    }

    #[tokio::test]
    async fn datagrams_are_framed_with_their_length() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let datagrams: Vec<Vec<u8>> = vec![
            vec![],
            vec![7],
            (0..1200).map(|i| (i % 251) as u8).collect(),
            vec![0xff; MAX_DATAGRAM_BYTES],
        ];
        for d in &datagrams {
            write_datagram(&mut a, d).await.unwrap();
        }
        drop(a);
        for d in &datagrams {
            assert_eq!(read_datagram(&mut b).await.unwrap().as_ref(), Some(d));
        }
        // A clean end between two datagrams.
        assert_eq!(read_datagram(&mut b).await.unwrap(), None);

        let (mut a, _b) = tokio::io::duplex(64);
        let err = write_datagram(&mut a, &vec![0; MAX_DATAGRAM_BYTES + 1])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

        // A length over the bound, and a stream ending inside a datagram.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u16::MAX.to_be_bytes()).await.unwrap();
        assert_eq!(
            read_datagram(&mut b).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 5, 1, 2]).await.unwrap();
        drop(a);
        assert_eq!(
            read_datagram(&mut b).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[tokio::test]
    async fn the_relay_socket_carries_datagrams_and_drops_unknown_destinations() {
        use quinn::AsyncUdpSocket as _;
        let left = RelaySocket::new(id(1));
        let right = RelaySocket::new(id(2));
        let (l_io, r_io) = tokio::io::duplex(64 * 1024);
        let (l_read, l_write) = tokio::io::split(l_io);
        let (r_read, r_write) = tokio::io::split(r_io);
        let to_right = path_address(id(3), id(2), true);
        let to_left = path_address(id(3), id(1), false);
        left.attach(to_right, l_read, l_write);
        right.attach(to_left, r_read, r_write);
        let payload = vec![42u8; 1200];
        left.try_send(&Transmit {
            destination: to_right,
            ecn: None,
            contents: &payload,
            segment_size: None,
            src_ip: None,
        })
        .unwrap();
        // Nowhere to go: dropped without an error.
        left.try_send(&Transmit {
            destination: path_address(id(3), id(9), true),
            ecn: None,
            contents: &payload,
            segment_size: None,
            src_ip: None,
        })
        .unwrap();
        let mut storage = vec![0u8; 1500];
        let (from, len) = std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut storage)];
            let mut meta = [RecvMeta::default()];
            right.poll_recv(cx, &mut bufs, &mut meta).map_ok(|n| {
                assert_eq!(n, 1);
                (meta[0].addr, meta[0].len)
            })
        })
        .await
        .unwrap();
        assert_eq!(from, to_left);
        assert_eq!(storage.get(..len), Some(&payload[..]));
        // Detaching ends the stream: the far side's path goes too.
        left.detach_all();
        for _ in 0..100 {
            if right.paths() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(right.paths(), 0);
    }
}
