//! An in-memory network (feature `test-utils`): every participant's
//! endpoint in one process, frames encoded and filed exactly as the QUIC
//! mesh files them, with a policy that may drop or delay any frame. With it
//! the driver's own logic (the abort relay, the closing exchange, a late or
//! vanishing peer) is tested in process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use super::mailbox::Mailbox;
use super::{CLOSE_DONE, Closed, FrameKind, Transport, TransportError, encode_frame};
use crate::ceremony::OperatorId;

/// One frame in flight, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// The sender.
    pub from: OperatorId,
    /// The recipient.
    pub to: OperatorId,
    /// What the frame carries.
    pub kind: FrameKind,
    /// Its encoded length.
    pub bytes: usize,
}

/// What the network does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver it now.
    Deliver,
    /// Lose it (the send itself succeeds, as on a real network).
    Drop,
    /// Deliver it after a delay.
    Delay(Duration),
}

/// Decides the fate of each frame; it may also change the frame's bytes
/// (to test what a tampered or corrupted frame does).
pub type Policy = Box<dyn FnMut(&Packet, &mut Vec<u8>) -> Delivery + Send>;

struct Inner {
    ceremony: [u8; 32],
    mailboxes: BTreeMap<OperatorId, Arc<Mailbox>>,
    policy: Mutex<Policy>,
    closed: Mutex<BTreeSet<OperatorId>>,
}

/// The network: create it with every slot, then take one endpoint per
/// participant.
#[derive(Clone)]
pub struct MemoryNetwork {
    inner: Arc<Inner>,
}

impl MemoryNetwork {
    /// A network among `slots` for the ceremony with definition hash
    /// `ceremony`, refusing frames over `max_frame_bytes`; every frame is
    /// delivered until [`MemoryNetwork::set_policy`].
    pub fn new(
        ceremony: [u8; 32],
        max_frame_bytes: u64,
        messages: &[u8],
        slots: &[OperatorId],
    ) -> Self {
        let mailboxes = slots
            .iter()
            .map(|&s| {
                (
                    s,
                    Arc::new(Mailbox::new(ceremony, max_frame_bytes, messages.to_vec())),
                )
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                ceremony,
                mailboxes,
                policy: Mutex::new(Box::new(|_, _| Delivery::Deliver)),
                closed: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Replaces the policy.
    pub fn set_policy(
        &self,
        policy: impl FnMut(&Packet, &mut Vec<u8>) -> Delivery + Send + 'static,
    ) {
        if let Ok(mut slot) = self.inner.policy.lock() {
            *slot = Box::new(policy);
        }
    }

    /// The endpoint of participant `me`.
    pub fn endpoint(&self, me: OperatorId) -> MemoryEndpoint {
        MemoryEndpoint {
            me,
            peers: self
                .inner
                .mailboxes
                .keys()
                .copied()
                .filter(|&s| s != me)
                .collect(),
            mailbox: self
                .inner
                .mailboxes
                .get(&me)
                .cloned()
                .unwrap_or_else(|| Arc::new(Mailbox::new(self.inner.ceremony, 0, Vec::new()))),
            inner: self.inner.clone(),
        }
    }
}

/// One participant's side of a [`MemoryNetwork`].
pub struct MemoryEndpoint {
    me: OperatorId,
    peers: Vec<OperatorId>,
    mailbox: Arc<Mailbox>,
    inner: Arc<Inner>,
}

impl MemoryEndpoint {
    fn is_closed(&self, who: OperatorId) -> bool {
        self.inner.closed.lock().is_ok_and(|c| c.contains(&who))
    }
}

impl Transport for MemoryEndpoint {
    fn peers(&self) -> Vec<OperatorId> {
        self.peers.clone()
    }

    fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    async fn send(
        &self,
        peer: OperatorId,
        kind: FrameKind,
        payload: Zeroizing<Vec<u8>>,
        _acknowledged: bool,
    ) -> Result<(), TransportError> {
        if self.is_closed(self.me) || self.is_closed(peer) {
            return Err(TransportError::PeerClosed {
                peer,
                reason: if self.is_closed(self.me) {
                    Closed::Local
                } else {
                    Closed::Dropped
                },
            });
        }
        let mut bytes = encode_frame(self.me, self.inner.ceremony, peer, kind, payload)?;
        let packet = Packet {
            from: self.me,
            to: peer,
            kind,
            bytes: bytes.len(),
        };
        let delivery = match self.inner.policy.lock() {
            Ok(mut policy) => policy(&packet, &mut bytes),
            Err(_) => Delivery::Deliver,
        };
        let Some(mailbox) = self.inner.mailboxes.get(&peer).cloned() else {
            return Err(TransportError::Send {
                peer,
                reason: "no such participant".into(),
            });
        };
        let me = self.me;
        match delivery {
            Delivery::Deliver => {
                mailbox.file(me, &bytes);
            }
            Delivery::Drop => {}
            Delivery::Delay(wait) => {
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    mailbox.file(me, &bytes);
                });
            }
        }
        Ok(())
    }

    async fn close(self, code: u32, _reason: &[u8], _linger: Duration) {
        if let Ok(mut closed) = self.inner.closed.lock() {
            closed.insert(self.me);
        }
        let reason = if code == CLOSE_DONE {
            Closed::Finished
        } else {
            Closed::Aborted(format!("close code {code}"))
        };
        for peer in &self.peers {
            if let Some(mailbox) = self.inner.mailboxes.get(peer) {
                mailbox.closed(self.me, reason.clone());
            }
        }
    }
}

impl Drop for MemoryEndpoint {
    fn drop(&mut self) {
        // An endpoint dropped without a close is a participant gone without
        // a word: its peers see the connection lost.
        let newly = self
            .inner
            .closed
            .lock()
            .is_ok_and(|mut closed| closed.insert(self.me));
        if newly {
            for peer in &self.peers {
                if let Some(mailbox) = self.inner.mailboxes.get(peer) {
                    mailbox.closed(self.me, Closed::Dropped);
                }
            }
        }
    }
}
