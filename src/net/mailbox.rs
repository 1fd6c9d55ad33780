//! What every transport does with the frames it receives: bound them,
//! decode them, bind them to the ceremony and the sender, refuse a second
//! frame of a kind, and file them per (peer, kind) until the driver asks.
//! A wait ends with the frame, an abort from any peer, an invalid frame, a
//! closed connection, or the deadline.
//!
//! Spec: `ceremony-specs/formats.md` §10.3.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::debug;
use zeroize::Zeroizing;

use super::{Closed, FRAME_VERSION, Frame, FrameKind, TransportError};
use crate::ceremony::OperatorId;
use crate::wire;

#[derive(Default)]
struct State {
    queues: HashMap<(OperatorId, FrameKind), VecDeque<Zeroizing<Vec<u8>>>>,
    closed: BTreeMap<OperatorId, Closed>,
    aborts: Vec<(OperatorId, Vec<u8>)>,
    bad: Vec<(OperatorId, Bad)>,
    seen: HashSet<(OperatorId, FrameKind)>,
}

#[derive(Clone)]
enum Bad {
    Frame(String),
    OtherCeremony(String),
}

/// Frames received, per (peer, kind), plus what went wrong with each peer.
pub struct Mailbox {
    ceremony: [u8; 32],
    max_frame_bytes: u64,
    /// The message kinds the protocol uses; a frame of any other is refused.
    messages: Vec<u8>,
    state: Mutex<State>,
    notify: Notify,
}

/// Whether to keep reading a peer's frames after one was filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    /// The frame was accepted.
    Accepted,
    /// The frame was refused and the peer named; stop reading it.
    Refused,
}

impl Mailbox {
    /// A mailbox for the ceremony with definition hash `ceremony`, refusing
    /// frames over `max_frame_bytes` and message frames of a kind not in
    /// `messages`.
    pub fn new(ceremony: [u8; 32], max_frame_bytes: u64, messages: Vec<u8>) -> Self {
        Self {
            ceremony,
            max_frame_bytes,
            messages,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
        }
    }

    /// The largest frame accepted.
    pub fn max_frame_bytes(&self) -> u64 {
        self.max_frame_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Changes the state and wakes every waiter.
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.notify.notify_waiters();
    }

    /// Records that `peer` sent more than the frame limit.
    pub fn too_long(&self, peer: OperatorId) {
        let max = self.max_frame_bytes;
        self.update(|state| {
            state.bad.push((
                peer,
                Bad::Frame(format!("a frame over the {max}-byte limit")),
            ));
        });
    }

    /// Records that `peer`'s connection ended, with `reason` (kept: the
    /// first reason is the real one).
    pub fn closed(&self, peer: OperatorId, reason: Closed) {
        self.update(|state| {
            state.closed.entry(peer).or_insert(reason);
        });
    }

    /// Files one frame received from `peer` (protocol bytes, already bounded
    /// by the transport to [`Mailbox::max_frame_bytes`]).
    pub fn file(&self, peer: OperatorId, bytes: &[u8]) -> Filed {
        let refuse = |bad: Bad| {
            self.update(|state| state.bad.push((peer, bad)));
            Filed::Refused
        };
        if bytes.len() as u64 > self.max_frame_bytes {
            self.too_long(peer);
            return Filed::Refused;
        }
        let mut frame: Frame = match wire::decode(bytes, self.max_frame_bytes) {
            Ok(frame) => frame,
            Err(err) => return refuse(Bad::Frame(err.to_string())),
        };
        if frame.version != FRAME_VERSION || frame.sender != peer {
            return refuse(Bad::Frame(format!(
                "frame version {} from claimed operator {}",
                frame.version, frame.sender
            )));
        }
        if frame.ceremony.0 != self.ceremony {
            return refuse(Bad::OtherCeremony(hex::encode(frame.ceremony.0)));
        }
        if let FrameKind::Message(tag) = frame.kind
            && !self.messages.contains(&tag)
        {
            return refuse(Bad::Frame(format!("a frame of unknown kind {tag}")));
        }
        debug!(kind = %frame.kind, bytes = bytes.len(), "frame received");
        // Every peer sends at most one frame of each kind: a second one is
        // refused (and named), so a peer cannot fill our memory.
        let duplicate = !self.lock().seen.insert((peer, frame.kind));
        if duplicate {
            return refuse(Bad::Frame(format!("a second {} frame", frame.kind)));
        }
        let payload = std::mem::take(&mut frame.payload);
        self.update(|state| match frame.kind {
            FrameKind::Abort => state.aborts.push((peer, payload)),
            kind => state
                .queues
                .entry((peer, kind))
                .or_default()
                .push_back(Zeroizing::new(payload)),
        });
        Filed::Accepted
    }

    /// Waits for `peer`'s next frame of `kind`, until `deadline`. An abort
    /// from any peer, a closed connection, or an invalid frame (from any
    /// peer when `any_bad_frame`, else from `peer` only) ends the wait.
    ///
    /// # Errors
    ///
    /// [`TransportError`] naming the peer at fault.
    pub async fn recv(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        deadline: Instant,
        any_bad_frame: bool,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        self.recv_scoped(peer, kind, deadline, any_bad_frame, true)
            .await
    }

    /// [`Mailbox::recv`] that ignores aborts and the invalid frames of
    /// other peers: what `peer` itself sent, to check first hand a fault
    /// another participant reports about it.
    ///
    /// # Errors
    ///
    /// [`TransportError`] naming `peer`.
    pub async fn recv_first_hand(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        self.recv_scoped(peer, kind, deadline, false, false).await
    }

    async fn recv_scoped(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        deadline: Instant,
        any_bad_frame: bool,
        aborts: bool,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = {
                let mut state = self.lock();
                let abort = state.aborts.first().filter(|_| aborts);
                if let Some((from, report)) = abort {
                    Some(Err(TransportError::PeerAborted {
                        peer: *from,
                        report: report.clone(),
                    }))
                } else if let Some((from, bad)) = state
                    .bad
                    .iter()
                    .find(|(from, _)| any_bad_frame || *from == peer)
                {
                    Some(Err(match bad {
                        Bad::OtherCeremony(theirs) => TransportError::OtherCeremony {
                            peer: *from,
                            theirs: theirs.clone(),
                            ours: hex::encode(self.ceremony),
                        },
                        Bad::Frame(reason) => TransportError::BadFrame {
                            peer: *from,
                            reason: reason.clone(),
                        },
                    }))
                } else if let Some(payload) = state
                    .queues
                    .get_mut(&(peer, kind))
                    .and_then(VecDeque::pop_front)
                {
                    Some(Ok(payload))
                } else {
                    state.closed.get(&peer).map(|reason| {
                        Err(TransportError::PeerClosed {
                            peer,
                            reason: reason.clone(),
                        })
                    })
                }
            };
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
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = self.lock().aborts.first().cloned() {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The abort report `peer` sent, if it did.
    pub fn abort_of(&self, peer: OperatorId) -> Option<Vec<u8>> {
        self.lock()
            .aborts
            .iter()
            .find(|(from, _)| *from == peer)
            .map(|(_, report)| report.clone())
    }

    /// The peers whose connection has ended, with the reason.
    pub fn closed_peers(&self) -> BTreeMap<OperatorId, Closed> {
        self.lock().closed.clone()
    }

    /// Whether a frame of `kind` from `peer` has arrived (whether or not it
    /// was taken since): what a wait can show as received, and who is still
    /// missing when it ends.
    pub fn arrived(&self, peer: OperatorId, kind: FrameKind) -> bool {
        self.lock().seen.contains(&(peer, kind))
    }
}
