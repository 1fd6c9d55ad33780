//! Runs the protocol's round sequence ([`crate::dkg::machine`]) over a
//! [`Transport`]: per round, send, collect with a deadline, compute (off the
//! async threads), and turn every failure into a blame or a named missing
//! participant. The QUIC mesh is the transport of a real ceremony
//! ([`run`]); any other, the in-memory one of the tests included, goes
//! through [`run_over`].
//!
//! Spec: `ceremony-specs/protocol.md` for the rounds; this module adds the
//! transport's rules: frames bound to the ceremony, an abort report sent to
//! every peer on failure, and a closing exchange so that no participant
//! closes before every other holds every finalize message.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use tokio::time::Instant;
use tracing::{info, warn};
use zeroize::Zeroizing;

pub use super::report::{ABORT_REPORT_VERSION, AbortReport};
use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityKey;
use crate::dkg::evidence::verify_evidence;
use crate::dkg::machine::{Expect, Inbox, Machine, Outgoing, Step};
use crate::dkg::messages::{AnySigned, MessageKind};
use crate::dkg::signing::Statements;
use crate::dkg::{self, Context, DkgError, Evidence, KnownSecrets, Output};
use crate::net::{self, Closed, FrameKind, Limits, Mesh, Peer, Transport, TransportError};
use crate::wire::{self, Bytes, WireError};

/// How long to wait for the closing exchange once every finalize message is
/// in, at least ([`closing_wait`]).
pub const CLOSING_SECS: u64 = 10;

/// The closing wait of `dvkg ceremony` for `validators` validators:
/// [`CLOSING_SECS`] plus 2 ms per validator. Each participant waits this
/// long for every peer's `Done`, then, once its own outputs are committed,
/// for every peer's `Confirm`; a peer still writing its outputs must fit in
/// it. Writing them takes time in proportion to the validators: at 65,536
/// on a 2-core machine with four operators on one disk, 20 to 78 s each,
/// and finished up to 53 s apart, which a flat 10 s wait reported as
/// unconfirmed (exit 7). The wait ends as soon as every peer has spoken.
pub fn closing_wait(validators: usize) -> Duration {
    Duration::from_secs(CLOSING_SECS).saturating_add(
        Duration::from_millis(2).saturating_mul(u32::try_from(validators).unwrap_or(u32::MAX)),
    )
}

/// The frame kind of a protocol message.
pub fn frame_kind(kind: MessageKind) -> FrameKind {
    FrameKind::Message(kind.tag())
}

/// The message kinds of the ceremony, as frame tags.
pub const MESSAGE_TAGS: [u8; 6] = [0, 1, 2, 3, 4, 5];

/// Why a ceremony failed, from this participant's point of view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// A protocol fault, with a culprit when a peer caused it.
    #[error(transparent)]
    Protocol(DkgError),
    /// A peer sent bytes that do not decode as the expected message.
    #[error("operator {peer} sent a malformed {kind} message: {reason}")]
    Malformed {
        /// The sender.
        peer: OperatorId,
        /// What was expected.
        kind: MessageKind,
        /// The decoding error.
        reason: WireError,
    },
    /// A peer did not send a message of the round before the deadline.
    #[error("operator {peer} did not send its {kind} message before the deadline")]
    Silent {
        /// The silent participant.
        peer: OperatorId,
        /// What was awaited.
        kind: MessageKind,
    },
    /// Nothing arrived from any peer before the round deadline: this
    /// machine lost the network, or every other operator stopped at once.
    #[error(
        "no {kind} message from any of the {peers} other operators arrived before the deadline"
    )]
    Isolated {
        /// How many peers there are.
        peers: usize,
        /// What was awaited.
        kind: MessageKind,
    },
    /// The network failed us: a missing, silent or misbehaving peer.
    #[error(transparent)]
    Transport(TransportError),
    /// Another participant aborted, and its report names a culprit whose
    /// evidence we checked ourselves.
    #[error("operator {reporter} aborted the ceremony: {fault}")]
    PeerAbortProven {
        /// Who aborted.
        reporter: OperatorId,
        /// Whom the checked evidence convicts.
        culprit: OperatorId,
        /// The fault.
        fault: String,
        /// The evidence, checked, to pass on in our own report.
        evidence: Box<Evidence>,
    },
    /// Another participant aborted and its report names someone we cannot
    /// check (a channel-level fault or a missing peer): we repeat its claim
    /// as its claim, and blame no one on its word.
    #[error("operator {reporter} aborted the ceremony and reports: {message}")]
    PeerAbortClaimed {
        /// Who aborted.
        reporter: OperatorId,
        /// Its report.
        report: Box<AbortReport>,
        /// Its message.
        message: String,
    },
    /// A local failure (a bug, or the machine).
    #[error("internal error: {0}")]
    Internal(String),
    /// This participant was stopped (a signal): it says so to its peers.
    #[error("operator {me} stopped: {reason}")]
    Stopped {
        /// This participant.
        me: OperatorId,
        /// Why (`interrupted`, `terminated`).
        reason: String,
    },
    /// This participant could not keep its shares safe (the recovery file
    /// could not be written), so it stops before they are used.
    #[error("operator {me} could not write its recovery file: {reason}")]
    Checkpoint {
        /// This participant.
        me: OperatorId,
        /// Why.
        reason: String,
    },
    /// This participant stopped on purpose (fault injection: stall or
    /// exit).
    #[cfg(feature = "fault-injection")]
    #[error("fault injection: {0}")]
    Injected(String),
}

impl CeremonyError {
    /// The participant at fault, if the failure names one. Exhaustive.
    pub fn culprit(&self) -> Option<OperatorId> {
        match self {
            Self::Protocol(err) => err.culprit(),
            Self::Malformed { peer, .. } => Some(*peer),
            Self::Transport(err) => match err {
                TransportError::BadFrame { peer, .. } => Some(*peer),
                // Different definitions are a coordination mistake: each
                // side sees the other as "another ceremony".
                TransportError::OtherCeremony { .. }
                | TransportError::Endpoint { .. }
                | TransportError::Tls(_)
                | TransportError::Unreachable { .. }
                | TransportError::Timeout { .. }
                | TransportError::PeerClosed { .. }
                | TransportError::PeerAborted { .. }
                | TransportError::Send { .. }
                | TransportError::SendTimeout { .. } => None,
            },
            Self::PeerAbortProven { culprit, .. } => Some(*culprit),
            // A peer's claim is repeated, never turned against the peer:
            // an honest participant reporting a fault without proof (say,
            // conflicting hellos) is not the culprit.
            Self::Silent { .. }
            | Self::Isolated { .. }
            | Self::PeerAbortClaimed { .. }
            | Self::Internal(_)
            | Self::Stopped { .. }
            | Self::Checkpoint { .. } => None,
            #[cfg(feature = "fault-injection")]
            Self::Injected(_) => None,
        }
    }

    /// The participant that went missing, if that is the failure.
    pub fn missing(&self) -> Option<OperatorId> {
        match self {
            Self::Silent { peer, .. } => Some(*peer),
            Self::Transport(err) => match err {
                TransportError::Timeout { peer, .. }
                | TransportError::PeerClosed { peer, .. }
                | TransportError::Send { peer, .. } => Some(*peer),
                // Our own uplink is too slow: no peer is missing.
                TransportError::SendTimeout { .. } => None,
                TransportError::Unreachable { missing, .. } => missing.first().map(|m| m.peer),
                TransportError::Endpoint { .. }
                | TransportError::Tls(_)
                | TransportError::PeerAborted { .. }
                | TransportError::BadFrame { .. }
                | TransportError::OtherCeremony { .. } => None,
            },
            // A missing participant is named as a peer's claim (its report
            // is relayed as such), never as a fault.
            Self::PeerAbortClaimed { report, .. } => report.missing,
            // A participant that stops tells its peers it is leaving: it is
            // the one missing.
            Self::Stopped { me, .. } | Self::Checkpoint { me, .. } => Some(*me),
            // Everyone at once: no peer is singled out.
            Self::Protocol(_)
            | Self::Malformed { .. }
            | Self::PeerAbortProven { .. }
            | Self::Isolated { .. }
            | Self::Internal(_) => None,
            #[cfg(feature = "fault-injection")]
            Self::Injected(_) => None,
        }
    }

    fn evidence(&self) -> Option<Evidence> {
        match self {
            Self::Protocol(err) => err.evidence().cloned(),
            Self::PeerAbortProven { evidence, .. } => Some((**evidence).clone()),
            Self::Malformed { .. }
            | Self::Silent { .. }
            | Self::Isolated { .. }
            | Self::Transport(_)
            | Self::PeerAbortClaimed { .. }
            | Self::Internal(_)
            | Self::Stopped { .. }
            | Self::Checkpoint { .. } => None,
            #[cfg(feature = "fault-injection")]
            Self::Injected(_) => None,
        }
    }
}

/// Progress callbacks: the driver says what it is waiting for.
pub trait Progress: Send + Sync {
    /// A round started; `total` messages are awaited.
    fn round(&self, round: u8, name: &str, total: usize);
    /// One more message of the current round arrived (or one more peer
    /// connected, in round 0).
    fn tick(&self, round: u8);
    /// The round is done.
    fn done(&self, round: u8);
    /// While connecting: `peer` (slot and name) is connected, as `how`
    /// says (its address, who dialled, the round trip).
    fn connected(&self, _peer: &str, _how: &str) {}
    /// About once a second while connecting: the peers still missing (slot
    /// and name), the time since connecting started and until it gives up.
    fn waiting(&self, _missing: &[String], _elapsed: Duration, _remaining: Duration) {}
}

/// Progress that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn round(&self, _: u8, _: &str, _: usize) {}
    fn tick(&self, _: u8) {}
    fn done(&self, _: u8) {}
}

/// Where a holder keeps its shares safe once they are final (protocol.md,
/// "Never a split outcome"): called in round 3, before its partial
/// signatures leave, so that whatever happens next its shares can be
/// recovered.
pub trait Checkpoint: Send + Sync {
    /// Persists `shares` (this holder's, one per validator) durably.
    ///
    /// # Errors
    ///
    /// Why they could not be written; the ceremony then stops.
    fn shares_final(&self, shares: &[crate::crypto::Scalar]) -> Result<(), String>;
}

/// A request to stop (a signal), with its reason.
pub type Stop = tokio::sync::watch::Receiver<Option<String>>;

/// What one participant runs, independent of the transport.
pub struct Setup {
    /// The protocol context (from the definition).
    pub context: Context,
    /// This participant.
    pub me: OperatorId,
    /// The layer that defines what the validators sign.
    pub statements: Arc<dyn Statements + Send>,
    /// A split or reshare dealer's secrets.
    pub known: Option<KnownSecrets>,
    /// How long to wait for each round's messages once the round started.
    pub round_timeout: Duration,
    /// How long the closing exchange waits for every peer's word
    /// ([`CLOSING_SECS`] by default).
    pub closing_timeout: Duration,
    /// Where this holder keeps its final shares safe, if anywhere.
    pub checkpoint: Option<Arc<dyn Checkpoint>>,
    /// Stops the ceremony (and tells the peers) when it changes.
    pub stop: Option<Stop>,
    /// The fault this participant injects, if any.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Arc<super::fault::Injector>>,
}

/// Everything the QUIC driver needs, validated.
pub struct DriverConfig {
    /// What to run.
    pub setup: Setup,
    /// The bound socket to serve on.
    pub socket: UdpSocket,
    /// The other participants.
    pub peers: Vec<Peer>,
    /// How long to wait for every peer to connect.
    pub connect_timeout: Duration,
    /// Dial every peer through this one too, from the start
    /// (`--relay-via`); without, a relay is tried automatically for a peer
    /// not reached directly.
    pub relay_via: Option<OperatorId>,
}

/// The bound on any one frame of this ceremony, from its size.
pub fn max_frame_bytes(context: &Context) -> u64 {
    let plan = &context.plan;
    let n = plan.slots().len() as u64;
    let dealers = plan.dealers().len() as u64;
    let t = plan.params().threshold() as u64;
    let v = plan.params().validators() as u64;
    let d = plan.statements().len() as u64;
    // A deal: per validator t commitments and a proof, with length prefixes;
    // an ack may carry up to one deal per dealer as complaint evidence.
    // Points travel uncompressed: 96 bytes in G1, 192 in G2, each with an
    // 8-byte length prefix.
    let deal = v * (t * 104 + 176) + n * 120 + 4096;
    // Partials: per validator d signatures and the plan's attachment (an
    // SSV share's RSA ciphertext), each with its length prefix. In a DKG
    // the deals bound it anyway; with a split's one dealer they do not.
    let attachment = plan.attachments().map_or(0, |a| u64::from(a.bytes) + 16);
    let partials = v * (d * 200 + 16 + attachment) + n * 120 + 4096;
    (dealers * deal)
        .max(partials)
        .clamp(64 * 1024, wire::MAX_MESSAGE_BYTES)
}

struct Session<'a, T: Transport> {
    transport: T,
    me: OperatorId,
    max: u64,
    round_timeout: Duration,
    /// Round 0 waits at least until then: the connect deadline (see
    /// [`Session::collect`]).
    hello_until: Option<Instant>,
    closing_timeout: Duration,
    progress: &'a dyn Progress,
    round: u8,
    /// The transcript this participant signed in round 4, once it has:
    /// with it, a peer's report that another participant signed a
    /// different transcript is checked, not just repeated.
    signed: Option<SignedTranscript>,
    checkpoint: Option<Arc<dyn Checkpoint>>,
    /// Where the time went so far.
    times: PhaseTimes,
    #[cfg(feature = "fault-injection")]
    fault: Option<(Arc<super::fault::Injector>, Arc<IdentityKey>)>,
}

/// The names of the rounds, for progress.
const ROUND_NAMES: [&str; 5] = ["hello", "deal", "acknowledge", "sign", "finalize"];

/// Where one participant's ceremony time went, phase by phase: what
/// `dvkg ceremony -v` logs, so that a user sees whether the time went to
/// its own computation or to waiting for the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Connecting to every peer.
    pub connect: Duration,
    /// Rounds 0 to 4, in order.
    pub rounds: Vec<RoundTime>,
    /// Checking the round-4 messages and assembling the output.
    pub finish: Duration,
    /// The closing exchange (every peer says it holds everything).
    pub closing: Duration,
}

/// One round of [`PhaseTimes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTime {
    /// The round.
    pub round: u8,
    /// Its name ("deal", "sign", ...).
    pub name: &'static str,
    /// This participant's own work: checking the previous round's messages
    /// and computing (and, in round 3, checkpointing) what it sends in this
    /// one.
    pub compute: Duration,
    /// Sending its messages and waiting until every peer's have arrived.
    pub wait: Duration,
}

impl PhaseTimes {
    /// The rounds in words: `round 1 deal 0.82 s (own work 0.70 s, waiting
    /// 0.12 s), ...`.
    pub fn rounds_text(&self) -> String {
        self.rounds
            .iter()
            .map(|r| {
                format!(
                    "round {} {} {:.2} s (own work {:.2} s, sending and waiting {:.2} s)",
                    r.round,
                    r.name,
                    (r.compute + r.wait).as_secs_f64(),
                    r.compute.as_secs_f64(),
                    r.wait.as_secs_f64()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<T: Transport> Session<'_, T> {
    /// Encodes a message; the bytes are wiped when dropped, as a share
    /// bundle's would hold key shares.
    fn encode(&self, message: &AnySigned) -> Result<Zeroizing<Vec<u8>>, CeremonyError> {
        message
            .encode()
            .map(Zeroizing::new)
            .map_err(|e| CeremonyError::Internal(e.to_string()))
    }

    /// Whether what this participant sends now is lost (fault injection).
    fn muted(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        if let Some((injector, _)) = &self.fault {
            return injector.muted(self.round);
        }
        false
    }

    /// Sends what the machine wants sent.
    async fn send(&self, outgoing: &[Outgoing]) -> Result<(), CeremonyError> {
        if self.muted() {
            return Ok(());
        }
        for message in outgoing {
            let (to, message) = match message {
                Outgoing::All(m) => (None, m),
                Outgoing::To(peer, m) => (Some(*peer), m),
            };
            #[cfg(feature = "fault-injection")]
            if let Some((injector, key)) = &self.fault {
                self.send_faulty(injector, key, message, to).await?;
                continue;
            }
            let bytes = self.encode(message)?;
            let kind = frame_kind(message.kind());
            match to {
                None => self.transport.broadcast(kind, &bytes, false).await,
                Some(peer) => self.transport.send(peer, kind, bytes, false).await,
            }
            .map_err(CeremonyError::Transport)?;
        }
        Ok(())
    }

    /// Sends what the injected fault makes of `message` to `to` (every peer
    /// when `None`).
    #[cfg(feature = "fault-injection")]
    async fn send_faulty(
        &self,
        injector: &super::fault::Injector,
        key: &IdentityKey,
        message: &AnySigned,
        to: Option<OperatorId>,
    ) -> Result<(), CeremonyError> {
        use super::fault::Outgoing as Faulty;
        let peers = self.transport.peers();
        let outgoing = injector.outgoing(self.round, message, key, &peers, self.max);
        let targets: Vec<OperatorId> = match to {
            Some(peer) => vec![peer],
            None => peers,
        };
        for peer in targets {
            let bytes = match &outgoing {
                Faulty::Honest => self.encode(message)?,
                Faulty::Raw(bytes) => Zeroizing::new(bytes.clone()),
                Faulty::Same(m) => self.encode(m)?,
                Faulty::PerPeer(map) => match map.get(&peer) {
                    Some(m) => self.encode(m)?,
                    None => self.encode(message)?,
                },
            };
            self.transport
                .send(peer, frame_kind(message.kind()), bytes, false)
                .await
                .map_err(CeremonyError::Transport)?;
        }
        Ok(())
    }

    /// Starts round `round`: the injected fault may stall or end this
    /// participant here.
    async fn start_round(&mut self, round: u8) -> Result<(), CeremonyError> {
        self.round = round;
        #[cfg(feature = "fault-injection")]
        if let Some((injector, _)) = &self.fault {
            use super::fault::Action;
            match injector.before_round(round) {
                Action::Continue => {}
                Action::Stall => {
                    warn!(round, "fault injection: stalling");
                    tokio::time::sleep(self.round_timeout * 2 + Duration::from_secs(10)).await;
                    return Err(CeremonyError::Injected(format!("stalled in round {round}")));
                }
                Action::Exit => {
                    warn!(round, "fault injection: exiting");
                    if injector.exit_process {
                        std::process::exit(1);
                    }
                    return Err(CeremonyError::Injected(format!("exited in round {round}")));
                }
            }
        }
        Ok(())
    }

    /// Who is missing when the round deadline passes, decided from
    /// everything awaited in the round rather than from the peer the wait
    /// happened to be on, so that every honest participant names the same
    /// one (protocol.md, "Who is missing"): the lowest-slot peer with a
    /// frame of the round still missing, of the earliest kind awaited; if
    /// no frame at all arrived from any of two or more peers, nobody is
    /// singled out ([`CeremonyError::Isolated`]).
    fn silent(&self, expects: &[Expect], waited: MessageKind) -> CeremonyError {
        let mailbox = self.transport.mailbox();
        let lacking = expects.iter().find_map(|expect| {
            expect
                .from
                .iter()
                .copied()
                .filter(|&peer| !mailbox.arrived(peer, frame_kind(expect.kind)))
                .min()
                .map(|peer| (peer, expect.kind))
        });
        let peers = self.transport.peers();
        let heard_from_none = peers.len() >= 2
            && peers.iter().all(|&peer| {
                expects
                    .iter()
                    .filter(|e| e.from.contains(&peer))
                    .all(|e| !mailbox.arrived(peer, frame_kind(e.kind)))
            });
        match lacking {
            _ if heard_from_none => CeremonyError::Isolated {
                peers: peers.len(),
                kind: waited,
            },
            Some((peer, kind)) => CeremonyError::Silent { peer, kind },
            None => CeremonyError::Internal(format!(
                "a round-{waited} wait timed out with nothing missing"
            )),
        }
    }

    /// A silent connection to one peer, when the connections to every
    /// other peer (two or more) have gone silent too by now: this machine
    /// lost the network, and no peer is singled out
    /// ([`CeremonyError::Isolated`], as when no frame of a round arrived
    /// from anyone). The idle timeouts of connections cut at one moment
    /// fire within moments of each other; the wait for abort reports in
    /// flight ([`abort_in_flight`]) has passed by the time this is asked.
    fn isolated(&self, machine: &Machine, err: CeremonyError) -> CeremonyError {
        let CeremonyError::Transport(TransportError::PeerClosed { reason, .. }) = &err else {
            return err;
        };
        let peers = self.transport.peers();
        let closed = self.transport.mailbox().closed_peers();
        let all_silent = peers.len() >= 2
            && reason.silent()
            && peers
                .iter()
                .all(|peer| closed.get(peer).is_some_and(Closed::silent));
        match machine.expects().first() {
            Some(expect) if all_silent => CeremonyError::Isolated {
                peers: peers.len(),
                kind: expect.kind,
            },
            _ => err,
        }
    }

    /// Collects every message the machine awaits, keyed by kind and sender.
    ///
    /// Round 0 waits until the connect deadline if that is later than the
    /// round timeout: a peer connected to this participant may still be
    /// connecting to another (it sends its hello once its own mesh is
    /// complete), and naming it missing would blame the wrong operator, and
    /// another one than the participants that wait for the same absent
    /// peer name (protocol.md, "Who is missing"). Their abort, naming that
    /// peer, arrives first.
    async fn collect(&self, machine: &Machine, expects: &[Expect]) -> Result<Inbox, CeremonyError> {
        let mut deadline = Instant::now() + self.round_timeout;
        if self.round == 0
            && let Some(until) = self.hello_until
        {
            deadline = deadline.max(until);
        }
        let mut inbox = Inbox::new();
        for expect in expects {
            let kind = expect.kind;
            for &peer in &expect.from {
                let received = self
                    .transport
                    .mailbox()
                    .recv(peer, frame_kind(kind), deadline, true)
                    .await;
                let bytes = match received {
                    Ok(bytes) => bytes,
                    Err(TransportError::Timeout { .. }) => {
                        let err = self.silent(expects, kind);
                        return Err(self.on_failure(machine, &inbox, err).await);
                    }
                    Err(err) => {
                        let err = CeremonyError::Transport(err);
                        return Err(self.on_failure(machine, &inbox, err).await);
                    }
                };
                let message = AnySigned::decode(kind, &bytes, self.max)
                    .map_err(|reason| CeremonyError::Malformed { peer, kind, reason })?;
                self.progress.tick(self.round);
                inbox.entry(kind).or_default().insert(peer, message);
            }
        }
        Ok(inbox)
    }
}

impl<T: Transport> Session<'_, T> {
    /// How long to wait for a reported culprit's own frames, to see its
    /// fault first hand.
    const FIRST_HAND_MS: u64 = 3_000;

    /// Explains a failure of the network while this participant sends or
    /// awaits the round of `machine` (having `received` part of it): a peer
    /// that closed or went silent may be aborting, with its report in
    /// flight; a report that blames someone is checked first hand where we
    /// can.
    async fn on_failure(
        &self,
        machine: &Machine,
        received: &Inbox,
        err: CeremonyError,
    ) -> CeremonyError {
        let err = match err {
            CeremonyError::Silent { .. }
            | CeremonyError::Isolated { .. }
            | CeremonyError::Transport(
                TransportError::PeerClosed { .. } | TransportError::Send { .. },
            ) => abort_in_flight(&self.transport, err).await,
            other => other,
        };
        let err = self.isolated(machine, err);
        match err {
            CeremonyError::Transport(TransportError::PeerAborted { peer, report }) => {
                self.first_hand(machine, &machine.expects(), received, peer, report)
                    .await
            }
            other => other,
        }
    }

    /// A peer's abort report arrived while we await the round: if it blames
    /// a participant whose messages of this round we await, look at what
    /// that participant sent us. A fault we see ourselves (an invalid
    /// frame, a message that fails §3.4) is ours to report, proven to us;
    /// otherwise the peer's report is all we have.
    async fn first_hand(
        &self,
        machine: &Machine,
        expects: &[Expect],
        received: &Inbox,
        reporter: OperatorId,
        report: Vec<u8>,
    ) -> CeremonyError {
        let relayed = CeremonyError::Transport(TransportError::PeerAborted {
            peer: reporter,
            report,
        });
        let CeremonyError::Transport(TransportError::PeerAborted { report, .. }) = &relayed else {
            return relayed;
        };
        let Some(culprit) = serde_json::from_slice::<AbortReport>(report)
            .ok()
            .and_then(|r| r.culprit)
        else {
            return relayed;
        };
        // What the culprit sent us this round, already received.
        for message in received.values().filter_map(|from| from.get(&culprit)) {
            if let Err(err) = machine.screen(culprit, message)
                && err.culprit() == Some(culprit)
            {
                return CeremonyError::Protocol(err);
            }
        }
        let deadline = Instant::now() + Duration::from_millis(Self::FIRST_HAND_MS);
        let pending = expects.iter().filter(|e| {
            e.from.contains(&culprit)
                && !received
                    .get(&e.kind)
                    .is_some_and(|m| m.contains_key(&culprit))
        });
        for expect in pending {
            let kind = expect.kind;
            match self
                .transport
                .mailbox()
                .recv_first_hand(culprit, frame_kind(kind), deadline)
                .await
            {
                Ok(bytes) => match AnySigned::decode(kind, &bytes, self.max) {
                    Err(reason) => {
                        return CeremonyError::Malformed {
                            peer: culprit,
                            kind,
                            reason,
                        };
                    }
                    Ok(message) => {
                        if let Err(err) = machine.screen(culprit, &message)
                            && err.culprit() == Some(culprit)
                        {
                            return CeremonyError::Protocol(err);
                        }
                    }
                },
                Err(
                    err @ (TransportError::BadFrame { .. } | TransportError::OtherCeremony { .. }),
                ) => return CeremonyError::Transport(err),
                Err(_) => {}
            }
        }
        // The reporter may be a round ahead of us, and the fault in a
        // message of the next round that the culprit sent us too: we cannot
        // screen that one yet (its round's state is not ours), but a frame
        // or an encoding that is invalid is invalid in any round.
        let plan = &machine.context().plan;
        let me = machine.me();
        let next = MessageKind::ALL.into_iter().filter(|kind| {
            kind.round() == machine.round() + 1
                && plan.sends(*kind, culprit)
                && plan.recipients(*kind).contains(&me)
        });
        for kind in next {
            match self
                .transport
                .mailbox()
                .recv_first_hand(culprit, frame_kind(kind), deadline)
                .await
            {
                Ok(bytes) => {
                    if let Err(reason) = AnySigned::decode(kind, &bytes, self.max) {
                        return CeremonyError::Malformed {
                            peer: culprit,
                            kind,
                            reason,
                        };
                    }
                }
                Err(
                    err @ (TransportError::BadFrame { .. } | TransportError::OtherCeremony { .. }),
                ) => return CeremonyError::Transport(err),
                Err(_) => {}
            }
        }
        relayed
    }
}

/// Runs `work` on the blocking pool, so that the network keeps being served
/// while the round computes.
async fn compute<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DkgError> + Send + 'static,
) -> Result<T, CeremonyError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CeremonyError::Internal(format!("a protocol round panicked: {e}")))?
        .map_err(CeremonyError::Protocol)
}

/// The abort report of `err`, raised in `round`.
fn report_of(context: &Context, me: OperatorId, round: u8, err: &CeremonyError) -> AbortReport {
    AbortReport {
        version: ABORT_REPORT_VERSION,
        definition_hash: context.definition_hash,
        reporter: me,
        round,
        culprit: err.culprit(),
        missing: err.missing(),
        message: err.to_string(),
        evidence: err.evidence(),
    }
}

/// A ceremony that completed: this participant's output, and its
/// connections, still open for the confirmation exchange once the outputs
/// are written (protocol.md, "Never a split outcome").
pub struct Finished<T: Transport> {
    /// This participant's shares and the transcript.
    pub output: Output,
    /// What is left to do with the peers.
    pub closing: Closing<T>,
    /// Where the time went.
    pub times: PhaseTimes,
}

/// The connections of a completed ceremony.
pub struct Closing<T: Transport> {
    transport: T,
    context: Context,
    me: OperatorId,
    wait: Duration,
    /// Nothing it sends arrives (fault injection).
    muted: bool,
}

/// Why a peer did not confirm its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unconfirmed {
    /// No word before the deadline.
    Silent,
    /// It confirmed a lock with another hash.
    OtherLock(Bytes<32>),
    /// It aborted, with this message.
    Aborted(String),
    /// Its connection ended without a confirmation.
    Gone(net::Closed),
    /// Something else went wrong waiting for it.
    Failed(String),
}

impl std::fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Silent => f.write_str("no confirmation before the deadline"),
            Self::OtherLock(hash) => write!(f, "it holds another lock ({hash})"),
            Self::Aborted(message) => write!(f, "it aborted: {message}"),
            Self::Gone(reason) => write!(f, "its connection ended: {reason}"),
            Self::Failed(reason) => f.write_str(reason),
        }
    }
}

/// The outcome of the confirmation exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The peers that confirmed the same lock.
    pub confirmed: Vec<OperatorId>,
    /// The peers that did not, and why.
    pub unconfirmed: Vec<(OperatorId, Unconfirmed)>,
}

impl Confirmation {
    /// Whether every peer confirmed the same lock.
    pub fn complete(&self) -> bool {
        self.unconfirmed.is_empty()
    }
}

impl<T: Transport> Closing<T> {
    /// Tells every peer that this participant's outputs are durably in
    /// place, with `lock_hash`, and waits (up to the closing wait) for each
    /// peer to say the same; then closes.
    pub async fn confirm(self, lock_hash: [u8; 32]) -> Confirmation {
        let Self {
            transport,
            wait,
            muted,
            ..
        } = self;
        let deadline = Instant::now() + wait;
        // Best effort, within the wait: a peer that is gone (its process
        // killed) never acknowledges, and does not confirm either way.
        if !muted {
            let _ = tokio::time::timeout_at(
                deadline,
                transport.broadcast(FrameKind::Confirm, &lock_hash, true),
            )
            .await;
        }
        let mut confirmation = Confirmation {
            confirmed: Vec::new(),
            unconfirmed: Vec::new(),
        };
        for peer in transport.peers() {
            let got = transport
                .mailbox()
                .recv_first_hand(peer, FrameKind::Confirm, deadline)
                .await;
            let outcome = match got {
                Ok(bytes) if bytes.as_slice() == lock_hash => None,
                Ok(bytes) => Some(Unconfirmed::OtherLock(Bytes(
                    <[u8; 32]>::try_from(bytes.as_slice()).unwrap_or_default(),
                ))),
                Err(err) => Some(match transport.mailbox().abort_of(peer) {
                    Some(report) => Unconfirmed::Aborted(
                        serde_json::from_slice::<AbortReport>(&report).map_or_else(
                            |_| "an unreadable report".into(),
                            |r| r.printable_message(),
                        ),
                    ),
                    None => match err {
                        TransportError::Timeout { .. } => Unconfirmed::Silent,
                        TransportError::PeerClosed { reason, .. } => Unconfirmed::Gone(reason),
                        other => Unconfirmed::Failed(other.to_string()),
                    },
                }),
            };
            match outcome {
                None => confirmation.confirmed.push(peer),
                Some(why) => confirmation.unconfirmed.push((peer, why)),
            }
        }
        transport
            .close(net::CLOSE_DONE, net::DONE_REASON, Duration::from_secs(2))
            .await;
        confirmation
    }

    /// Gives up after the ceremony completed (the outputs could not be
    /// written, or this participant was stopped while writing): tells every
    /// peer why, so that none confirms with it, and closes.
    pub async fn abandon(self, err: CeremonyError) -> (CeremonyError, AbortReport) {
        let report = report_of(&self.context, self.me, 6, &err);
        if let Ok(bytes) = serde_json::to_vec(&report)
            && !self.muted
        {
            let _ = tokio::time::timeout(
                Duration::from_secs(3),
                self.transport.broadcast(FrameKind::Abort, &bytes, true),
            )
            .await;
        }
        self.transport
            .close(net::CLOSE_ABORT, b"aborted", Duration::from_secs(1))
            .await;
        (err, report)
    }
}

/// Waits until a stop is requested, and returns its reason.
async fn stopped(stop: &mut Stop) -> String {
    loop {
        if let Some(reason) = stop.borrow_and_update().clone() {
            return reason;
        }
        if stop.changed().await.is_err() {
            // The sender is gone: no stop will ever come.
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the whole ceremony for this participant over the QUIC mesh: connect,
/// then [`run_over`].
///
/// # Errors
///
/// [`CeremonyError`] naming the culprit or the missing participant, with
/// the abort report sent to the peers.
pub async fn run(
    config: DriverConfig,
    identity: Arc<IdentityKey>,
    progress: &dyn Progress,
) -> Result<Finished<Mesh>, (CeremonyError, AbortReport)> {
    let DriverConfig {
        setup,
        socket,
        peers,
        connect_timeout,
        relay_via,
    } = config;
    let limits = Limits {
        max_frame_bytes: max_frame_bytes(&setup.context),
        messages: &MESSAGE_TAGS,
        connect_deadline: Instant::now() + connect_timeout,
        round_timeout: setup.round_timeout,
    };
    progress.round(0, "connecting", peers.len());
    let started = Instant::now();
    let name = |id: OperatorId| {
        peers.iter().find(|p| p.id == id).map_or_else(
            || format!("operator {id}"),
            |p| format!("operator {id} ({})", p.name),
        )
    };
    let connecting = Mesh::connect(
        setup.me,
        setup.context.definition_hash.0,
        &identity,
        socket,
        &peers,
        limits,
        relay_via,
        |event| match event {
            net::quic::ConnectEvent::Connected {
                peer,
                route,
                rtt,
                connected,
                total,
            } => {
                progress.tick(0);
                let address = peers
                    .iter()
                    .find(|p| p.id == peer)
                    .map(|p| p.address.to_string())
                    .unwrap_or_default();
                let path = match route {
                    net::quic::Route::Dialled => format!("dialled at {address}"),
                    net::quic::Route::Accepted => {
                        format!("dialled us; we dial it at {address}")
                    }
                    net::quic::Route::Relayed { via } => {
                        format!("through {} (relay)", name(via))
                    }
                };
                let how = format!(
                    "{path}, round trip {} ms ({connected}/{total})",
                    rtt.as_millis()
                );
                progress.connected(&name(peer), &how);
            }
            net::quic::ConnectEvent::Lost { .. } => {}
            net::quic::ConnectEvent::Waiting {
                missing,
                elapsed,
                remaining,
            } => {
                let missing: Vec<String> = missing.into_iter().map(name).collect();
                progress.waiting(&missing, elapsed, remaining);
            }
        },
    );
    let mut stop = setup.stop.clone();
    let connected = match stop.as_mut() {
        Some(stop) => tokio::select! {
            mesh = connecting => mesh.map_err(CeremonyError::Transport),
            reason = stopped(stop) => Err(CeremonyError::Stopped { me: setup.me, reason }),
        },
        None => connecting.await.map_err(CeremonyError::Transport),
    };
    let mesh = connected.map_err(|err| {
        let r = report_of(&setup.context, setup.me, 0, &err);
        (err, r)
    })?;
    progress.done(0);
    let connect = started.elapsed();
    let mut finished = run_over_until(
        mesh,
        setup,
        identity,
        progress,
        Some(limits.connect_deadline),
    )
    .await?;
    finished.times.connect = connect;
    Ok(finished)
}

/// Runs the whole ceremony for this participant over `transport`, already
/// connected. On failure, every peer is sent an abort report before the
/// error is returned; on success, the connections stay open for the
/// confirmation exchange ([`Closing::confirm`]).
///
/// # Errors
///
/// [`CeremonyError`] naming the culprit or the missing participant.
pub async fn run_over<T: Transport>(
    transport: T,
    setup: Setup,
    identity: Arc<IdentityKey>,
    progress: &dyn Progress,
) -> Result<Finished<T>, (CeremonyError, AbortReport)> {
    run_over_until(transport, setup, identity, progress, None).await
}

/// [`run_over`], with round 0 waiting at least until `hello_until` (the
/// connect deadline of a mesh that just connected).
async fn run_over_until<T: Transport>(
    transport: T,
    setup: Setup,
    identity: Arc<IdentityKey>,
    progress: &dyn Progress,
    hello_until: Option<Instant>,
) -> Result<Finished<T>, (CeremonyError, AbortReport)> {
    let Setup {
        context,
        me,
        statements,
        known,
        round_timeout,
        closing_timeout,
        checkpoint,
        stop,
        #[cfg(feature = "fault-injection")]
        fault,
    } = setup;
    #[cfg(feature = "fault-injection")]
    let faulty = fault.is_some();
    let mut session = Session {
        max: transport.mailbox().max_frame_bytes(),
        transport,
        me,
        round_timeout,
        hello_until,
        closing_timeout,
        progress,
        round: 0,
        signed: None,
        checkpoint,
        times: PhaseTimes::default(),
        #[cfg(feature = "fault-injection")]
        fault: fault.map(|f| (f, identity.clone())),
    };
    let result = {
        let sequence = rounds(
            &mut session,
            context.clone(),
            identity,
            statements.clone(),
            known,
        );
        match stop {
            Some(mut stop) => tokio::select! {
                result = sequence => result,
                reason = stopped(&mut stop) => Err(CeremonyError::Stopped { me, reason }),
            },
            None => sequence.await,
        }
    };
    let muted = session.muted();
    let Session {
        transport,
        round,
        signed,
        times,
        ..
    } = session;
    match result {
        Ok(output) => Ok(Finished {
            output,
            times,
            closing: Closing {
                transport,
                context,
                me,
                wait: closing_timeout,
                muted,
            },
        }),
        #[cfg(feature = "fault-injection")]
        Err(err @ CeremonyError::Injected(_)) => {
            // Gone without a word: the connections drop with the session.
            let r = report_of(&context, me, round, &err);
            drop(transport);
            Err((err, r))
        }
        #[cfg(feature = "fault-injection")]
        Err(err) if faulty => {
            // A dishonest participant does not announce its own fault: it
            // stays connected and silent for a while, so that the honest
            // ones convict it from what it sent, then drops its connections.
            warn!(error = %err, "fault injection: failing silently");
            tokio::time::sleep(round_timeout.min(Duration::from_secs(5))).await;
            // Its own report (never sent) still relays what it learned.
            let err = explain_peer_abort(&context, statements.as_ref(), signed.as_ref(), err);
            let r = report_of(&context, me, round, &err);
            Err((err, r))
        }
        Err(err) => {
            let aborted = Aborted {
                context: &context,
                statements: statements.as_ref(),
                me,
                round,
                signed: signed.as_ref(),
                muted,
            };
            Err(aborted.abort(transport, err).await)
        }
    }
}

/// What an aborting participant knows when it reports.
struct Aborted<'a> {
    context: &'a Context,
    statements: &'a dyn Statements,
    me: OperatorId,
    round: u8,
    signed: Option<&'a SignedTranscript>,
    /// Nothing it sends arrives (fault injection).
    muted: bool,
}

impl Aborted<'_> {
    /// Explains the failure (a peer's own report may be in flight), sends
    /// the abort report to every peer, and closes.
    async fn abort<T: Transport>(
        &self,
        transport: T,
        err: CeremonyError,
    ) -> (CeremonyError, AbortReport) {
        // A closed connection, a failed send or a silent peer may be a peer
        // aborting: its report, with the real reason, may still be in
        // flight. What we saw ourselves (an invalid frame) stays ours.
        let err = match err {
            CeremonyError::Silent { .. }
            | CeremonyError::Isolated { .. }
            | CeremonyError::Transport(
                TransportError::PeerClosed { .. }
                | TransportError::Send { .. }
                | TransportError::Timeout { .. },
            ) => abort_in_flight(&transport, err).await,
            other => other,
        };
        let err = explain_peer_abort(self.context, self.statements, self.signed, err);
        let r = report_of(self.context, self.me, self.round, &err);
        warn!(error = %err, "aborting");
        // JSON, not bincode: the evidence is a tagged enum, which bincode
        // cannot read back.
        if let Ok(bytes) = serde_json::to_vec(&r)
            && !self.muted
        {
            // Best effort: the peers may be gone already.
            let _ = tokio::time::timeout(
                Duration::from_secs(3),
                transport.broadcast(FrameKind::Abort, &bytes, true),
            )
            .await;
        }
        transport
            .close(net::CLOSE_ABORT, b"aborted", Duration::from_secs(1))
            .await;
        (err, r)
    }
}

/// `err`, or the abort of a peer that explains it, if one arrives soon.
async fn abort_in_flight<T: Transport>(transport: &T, err: CeremonyError) -> CeremonyError {
    match transport
        .mailbox()
        .abort_report(Duration::from_millis(1500))
        .await
    {
        Some((peer, report)) => {
            CeremonyError::Transport(TransportError::PeerAborted { peer, report })
        }
        None => err,
    }
}

/// What this participant signed in round 4: the session, the receipts of
/// the partial-signature messages it holds, and its transcript hash.
#[derive(Debug, Clone)]
struct SignedTranscript {
    session: Bytes<32>,
    partials: Vec<dkg::messages::Receipt>,
    hash: Bytes<32>,
}

/// Turns a peer's abort into our own verdict: its evidence checked by us,
/// or its claim repeated. With `ours` (what this participant signed in
/// round 4), a report that another participant signed a different
/// transcript is checked against it: a finalize in this session, echoing
/// the very partial-signature messages we hold, yet on another hash than
/// ours, is that participant's fault (the hellos, deals and acks are pinned
/// by the echoes of earlier rounds, so an honest signer holding our
/// partials holds our transcript). This proves it to us, not to a third
/// party, who would have to recompute the transcript. Without the receipts
/// matching, the signer may be honest and shown other partials by an
/// equivocating peer.
fn explain_peer_abort(
    context: &Context,
    statements: &dyn Statements,
    ours: Option<&SignedTranscript>,
    err: CeremonyError,
) -> CeremonyError {
    let CeremonyError::Transport(TransportError::PeerAborted { peer, report }) = &err else {
        return err;
    };
    let Ok(report) = serde_json::from_slice::<AbortReport>(report) else {
        return CeremonyError::Transport(TransportError::BadFrame {
            peer: *peer,
            reason: "an unreadable abort report".into(),
        });
    };
    if report.definition_hash != context.definition_hash || report.reporter != *peer {
        return CeremonyError::Transport(TransportError::BadFrame {
            peer: *peer,
            reason: "an abort report for another ceremony or operator".into(),
        });
    }
    if let Some(evidence) = &report.evidence
        && let Ok(verdict) = verify_evidence(context, statements, evidence)
    {
        if verdict.proven {
            return CeremonyError::PeerAbortProven {
                reporter: *peer,
                culprit: verdict.culprit,
                fault: verdict.fault,
                evidence: Box::new(evidence.clone()),
            };
        }
        if let (
            Evidence::Finalize {
                finalize,
                expected_hash,
            },
            Some(ours),
        ) = (evidence, ours)
            && *expected_hash == ours.hash
            && finalize.header.session == ours.session
            && finalize.body.partials == ours.partials
        {
            // The culprit signed, in this very session (one from an earlier
            // run proves nothing) and over the partials we hold, another
            // transcript than ours.
            return CeremonyError::PeerAbortProven {
                reporter: *peer,
                culprit: verdict.culprit,
                fault: format!(
                    "operator {} signed another transcript than the one we hold ({})",
                    verdict.culprit,
                    hex::encode(ours.hash.0)
                ),
                evidence: Box::new(evidence.clone()),
            };
        }
    }
    // The message is the peer's text: print no control characters of it.
    let message = report.printable_message();
    CeremonyError::PeerAbortClaimed {
        reporter: *peer,
        report: Box::new(report),
        message,
    }
}

/// The round sequence over the transport: the machine's rounds, then the
/// closing exchange.
async fn rounds<T: Transport>(
    s: &mut Session<'_, T>,
    context: Context,
    identity: Arc<IdentityKey>,
    statements: Arc<dyn Statements + Send>,
    known: Option<KnownSecrets>,
) -> Result<Output, CeremonyError> {
    let me = s.me;
    s.start_round(0).await?;
    let id = identity.clone();
    let started = std::time::Instant::now();
    let (mut machine, mut outgoing) =
        compute(move || Machine::start(context, me, id, statements, known, &mut OsRng)).await?;
    let mut computed = started.elapsed();
    let output = loop {
        let started = std::time::Instant::now();
        if let Err(err) = s.send(&outgoing).await {
            return Err(s.on_failure(&machine, &Inbox::new(), err).await);
        }
        let round = machine.round();
        let expects = machine.expects();
        let name = ROUND_NAMES.get(usize::from(round)).copied().unwrap_or("");
        s.progress
            .round(round, name, expects.iter().map(|e| e.from.len()).sum());
        let inbox = s.collect(&machine, &expects).await?;
        s.times.rounds.push(RoundTime {
            round,
            name,
            compute: computed,
            wait: started.elapsed(),
        });
        #[cfg(feature = "fault-injection")]
        if let Some((injector, _)) = &s.fault
            && let Some(shares) = inbox.get(&MessageKind::Shares)
        {
            injector.observe_shares(shares);
        }
        s.progress.done(round);
        info!(
            "round {round} complete: every {} message received",
            expects
                .iter()
                .map(|e| e.kind.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        if round < 4 {
            s.start_round(round + 1).await?;
        }
        let started = std::time::Instant::now();
        match compute(move || machine.advance(inbox, &mut OsRng)).await? {
            Step::Next(next, out) => {
                // Round 3 computed this holder's final shares: they are made
                // safe before its partial signatures leave.
                if next.round() == 3
                    && let (Some(checkpoint), Some(shares)) =
                        (s.checkpoint.clone(), next.final_shares().map(<[_]>::to_vec))
                {
                    let me = s.me;
                    tokio::task::spawn_blocking(move || checkpoint.shares_final(&shares))
                        .await
                        .map_err(|e| {
                            CeremonyError::Internal(format!("the checkpoint panicked: {e}"))
                        })?
                        .map_err(|reason| CeremonyError::Checkpoint { me, reason })?;
                }
                if next.round() == 4 {
                    s.signed = out.iter().find_map(|m| match m {
                        Outgoing::All(AnySigned::Finalize(f)) => Some(SignedTranscript {
                            session: f.header.session,
                            partials: f.body.partials.clone(),
                            hash: f.body.transcript_hash,
                        }),
                        _ => None,
                    });
                }
                machine = next;
                outgoing = out;
                computed = started.elapsed();
            }
            Step::Done(output) => {
                s.times.finish = started.elapsed();
                break output;
            }
        }
    };
    let closing = std::time::Instant::now();

    // Closing: tell every peer we hold everything, and wait until each has
    // said the same (or closed after finishing), so no one closes early. A
    // peer that aborts instead (it was shown a fault we were not, say a
    // finalize on another transcript) aborts us too: honest participants
    // end alike, and none writes outputs (protocol.md, Finish).
    s.round = 5;
    if !s.muted() {
        s.transport
            .broadcast(FrameKind::Done, &[], false)
            .await
            .map_err(CeremonyError::Transport)?;
    }
    let deadline = Instant::now() + s.closing_timeout;
    for peer in s.transport.peers() {
        match s
            .transport
            .mailbox()
            .recv(peer, FrameKind::Done, deadline, false)
            .await
        {
            Ok(_) => {}
            Err(TransportError::PeerClosed { reason, .. }) if reason.finished() => {}
            Err(err @ TransportError::PeerAborted { .. }) => {
                return Err(CeremonyError::Transport(err));
            }
            Err(err) => {
                warn!(peer = %peer, error = %err, "no closing message; the ceremony itself completed")
            }
        }
    }
    s.times.closing = closing.elapsed();
    Ok(output)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::dkg::messages::Signed;
    use crate::dkg::plan::{Plan, Statement, StatementKind};
    use crate::dkg::signing::PossessionOnly;
    use crate::wire::VarBytes;

    fn id(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    fn keys() -> Vec<IdentityKey> {
        let mut rng = StdRng::seed_from_u64(31);
        (0..3).map(|_| IdentityKey::generate(&mut rng)).collect()
    }

    fn context() -> Context {
        let roster: Vec<_> = keys().iter().map(IdentityKey::public).collect();
        let possession = vec![Statement {
            kind: StatementKind::Possession,
            params: VarBytes::default(),
        }];
        Context {
            plan: Plan::dkg(&roster, None, 2, 1, possession).unwrap(),
            definition_hash: Bytes([5; 32]),
        }
    }

    /// Operator 2's abort report, as operator 1 receives it.
    fn relayed(context: &Context, report: AbortReport) -> CeremonyError {
        relayed_after(context, None, report)
    }

    /// The same, once operator 1 has signed the transcript `ours`.
    fn relayed_after(
        context: &Context,
        ours: Option<&SignedTranscript>,
        report: AbortReport,
    ) -> CeremonyError {
        let bytes = serde_json::to_vec(&report).unwrap();
        explain_peer_abort(
            context,
            &PossessionOnly,
            ours,
            CeremonyError::Transport(TransportError::PeerAborted {
                peer: id(2),
                report: bytes,
            }),
        )
    }

    fn report(context: &Context, culprit: Option<u8>, missing: Option<u8>) -> AbortReport {
        AbortReport {
            version: ABORT_REPORT_VERSION,
            definition_hash: context.definition_hash,
            reporter: id(2),
            round: 2,
            culprit: culprit.map(id),
            missing: missing.map(id),
            message: "operators 3 and 1 signed conflicting hellos\u{1b}[31m".into(),
            evidence: None,
        }
    }

    #[test]
    fn the_frame_bound_holds_an_ssv_splits_partials() {
        use crate::dkg::messages::{AnySigned, PartialSignatures};
        use crate::dkg::plan::{
            AttachmentKind, Attachments, CeremonyKind, Combine, Participant, RawPlan, ShareIndex,
        };
        // 4 holders and a dealer, 100 validators, possession and ownership,
        // a 256-byte RSA ciphertext per validator from each holder.
        let mut rng = StdRng::seed_from_u64(32);
        let keys: Vec<IdentityKey> = (0..5).map(|_| IdentityKey::generate(&mut rng)).collect();
        let v = 100;
        let statement = |kind| Statement {
            kind,
            params: VarBytes::default(),
        };
        let plan = Plan::new(RawPlan {
            kind: CeremonyKind::Split,
            participants: keys
                .iter()
                .enumerate()
                .map(|(p, key)| Participant {
                    identity: key.public(),
                    deals: p == 4,
                    share: (p < 4).then(|| ShareIndex::try_from(p as u64 + 1).unwrap()),
                })
                .collect(),
            threshold: 3,
            validators: v,
            combine: Combine::Split {
                group_keys: vec![Bytes([1; 48]); v as usize],
            },
            statements: vec![
                statement(StatementKind::Possession),
                statement(StatementKind::Ownership),
            ],
            attachments: Some(Attachments {
                kind: AttachmentKind::SsvShare,
                bytes: 256,
                params: (0..4).map(|i| VarBytes(vec![i])).collect(),
            }),
        })
        .unwrap();
        let context = Context {
            plan,
            definition_hash: Bytes([5; 32]),
        };
        let body = PartialSignatures {
            acks: Vec::new(),
            signatures: vec![vec![Bytes([0; 192]); 2]; v as usize],
            attachments: vec![VarBytes(vec![0; 256]); v as usize],
        };
        let frame = AnySigned::Partials(Signed::sign(&keys[0], [0; 32], id(1), body))
            .encode()
            .unwrap();
        // The 5 acks' receipts it echoes are in the bound's n * 120.
        assert!(
            frame.len() as u64 + 5 * 120 <= max_frame_bytes(&context),
            "{} bytes of partials, bound {}",
            frame.len(),
            max_frame_bytes(&context)
        );
    }

    #[test]
    fn a_peers_unproven_report_is_its_claim_and_blames_no_one() {
        let context = context();
        // Conflicting hellos: a fault without a proven culprit. The honest
        // reporter must not become the culprit at the others (protocol.md
        // §12, item 8), nor must the operator its report names.
        for (culprit, missing) in [(None, None), (Some(3), None), (None, Some(3))] {
            let err = relayed(&context, report(&context, culprit, missing));
            let CeremonyError::PeerAbortClaimed {
                reporter, message, ..
            } = &err
            else {
                panic!("{err:?}");
            };
            assert_eq!(*reporter, id(2));
            assert!(!message.contains('\u{1b}'), "{message}");
            assert_eq!(err.culprit(), None);
            assert_eq!(err.missing(), missing.map(id));
        }
    }

    #[test]
    fn a_finalize_on_another_transcript_is_proven_to_who_holds_ours() {
        // Operator 2 reports that operator 3 signed transcript B where it
        // expected A. Operator 1, which signed A in the same session, holds
        // the proof; before round 4, having signed another hash, or in
        // another session (operator 3's finalize from an earlier run), it
        // can only repeat the claim.
        let context = context();
        let (a, b) = (Bytes([0xa; 32]), Bytes([0xb; 32]));
        let receipts = |byte: u8| {
            vec![dkg::messages::Receipt {
                operator: id(1),
                hash: Bytes([byte; 32]),
                signature: crate::crypto::identity::IdentitySignature(Bytes([byte; 64])),
            }]
        };
        let signed = |session: u8, hash, partials: u8| SignedTranscript {
            session: Bytes([session; 32]),
            partials: receipts(partials),
            hash,
        };
        let finalize = Signed::sign(
            &keys()[2],
            [9; 32],
            id(3),
            dkg::messages::Finalize {
                partials: receipts(1),
                transcript_hash: b,
            },
        );
        let mut report = report(&context, Some(3), None);
        report.evidence = Some(Evidence::Finalize {
            finalize,
            expected_hash: a,
        });
        let err = relayed_after(&context, Some(&signed(9, a, 1)), report.clone());
        assert!(
            matches!(err, CeremonyError::PeerAbortProven { reporter, culprit, .. }
                if reporter == id(2) && culprit == id(3)),
            "{err:?}"
        );
        // Other partials: operator 3 may be honest, shown another round-3
        // message by an equivocating peer (the reporter, say).
        for other in [
            None,
            Some(signed(9, b, 1)),
            Some(signed(8, a, 1)),
            Some(signed(9, a, 2)),
        ] {
            let err = relayed_after(&context, other.as_ref(), report.clone());
            assert!(
                matches!(err, CeremonyError::PeerAbortClaimed { .. }),
                "{err:?}"
            );
            assert_eq!(err.culprit(), None);
        }
    }

    #[test]
    fn a_report_for_another_ceremony_or_unreadable_names_its_sender() {
        let context = context();
        let mut other = report(&context, Some(3), None);
        other.definition_hash = Bytes([6; 32]);
        let err = relayed(&context, other);
        assert!(matches!(
            err,
            CeremonyError::Transport(TransportError::BadFrame { .. })
        ));
        assert_eq!(err.culprit(), Some(id(2)));
        let err = explain_peer_abort(
            &context,
            &PossessionOnly,
            None,
            CeremonyError::Transport(TransportError::PeerAborted {
                peer: id(2),
                report: b"not json".to_vec(),
            }),
        );
        assert_eq!(err.culprit(), Some(id(2)));
    }

    /// The driver over the in-memory network: `n` participants of a
    /// possession-only DKG, each under `policy`; every participant's
    /// result.
    mod over_memory {
        use std::collections::BTreeMap;

        use super::*;
        use crate::net::memory::{Delivery, MemoryNetwork, Packet};

        type Results =
            BTreeMap<OperatorId, Result<(Output, Confirmation), (CeremonyError, AbortReport)>>;

        fn cluster(n: usize, seed: u64) -> (Context, Vec<Arc<IdentityKey>>) {
            let mut rng = StdRng::seed_from_u64(seed);
            let keys: Vec<IdentityKey> = (0..n).map(|_| IdentityKey::generate(&mut rng)).collect();
            let roster: Vec<_> = keys.iter().map(IdentityKey::public).collect();
            let possession = vec![Statement {
                kind: StatementKind::Possession,
                params: VarBytes::default(),
            }];
            let t = u8::try_from(n - (n - 1) / 3).unwrap();
            let context = Context {
                plan: Plan::dkg(&roster, None, t, 3, possession).unwrap(),
                definition_hash: Bytes([seed as u8; 32]),
            };
            (context, keys.into_iter().map(Arc::new).collect())
        }

        fn ceremony(
            n: usize,
            seed: u64,
            round_timeout: Duration,
            policy: impl FnMut(&Packet, &mut Vec<u8>) -> Delivery + Send + 'static,
        ) -> Results {
            let (context, keys) = cluster(n, seed);
            let network = MemoryNetwork::new(
                context.definition_hash.0,
                max_frame_bytes(&context),
                &MESSAGE_TAGS,
                context.plan.slots(),
            );
            network.set_policy(policy);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let tasks: Vec<_> = context
                    .plan
                    .slots()
                    .iter()
                    .map(|&me| {
                        let setup = Setup {
                            context: context.clone(),
                            me,
                            statements: Arc::new(PossessionOnly),
                            known: None,
                            round_timeout,
                            closing_timeout: Duration::from_millis(800),
                            checkpoint: None,
                            stop: None,
                            #[cfg(feature = "fault-injection")]
                            fault: None,
                        };
                        let endpoint = network.endpoint(me);
                        let key = keys[me.position()].clone();
                        tokio::spawn(async move {
                            let result = match run_over(endpoint, setup, key, &Quiet).await {
                                Ok(Finished {
                                    output, closing, ..
                                }) => {
                                    // The transcript hash stands for the
                                    // lock hash here.
                                    let confirmed = closing.confirm(output.transcript.hash()).await;
                                    Ok((output, confirmed))
                                }
                                Err(failed) => Err(failed),
                            };
                            (me, result)
                        })
                    })
                    .collect();
                let mut results = Results::new();
                for task in tasks {
                    let (me, result) = task.await.unwrap();
                    results.insert(me, result);
                }
                results
            })
        }

        fn message_tag(kind: MessageKind) -> FrameKind {
            frame_kind(kind)
        }

        #[test]
        fn a_whole_ceremony_completes_alike_everywhere() {
            let results = ceremony(4, 61, Duration::from_secs(10), |_, _| Delivery::Deliver);
            let hashes: Vec<[u8; 32]> = results
                .values()
                .map(|r| {
                    r.as_ref()
                        .map_err(|(e, _)| e.to_string())
                        .unwrap()
                        .0
                        .transcript
                        .hash()
                })
                .collect();
            assert_eq!(hashes.len(), 4);
            assert!(hashes.windows(2).all(|w| w[0] == w[1]));
        }

        #[test]
        fn a_late_peer_is_waited_for() {
            // Every frame of operator 3 arrives 300 ms late: slow, not
            // missing.
            let results = ceremony(4, 62, Duration::from_secs(10), |p, _| {
                if p.from == id(3) {
                    Delivery::Delay(Duration::from_millis(300))
                } else {
                    Delivery::Deliver
                }
            });
            for (me, result) in &results {
                assert!(result.is_ok(), "operator {me}: {:?}", result.as_ref().err());
            }
        }

        #[test]
        fn a_peer_that_goes_silent_is_named_missing_by_every_other() {
            // Operator 3's acks never arrive: every other operator stops at
            // the round deadline naming it, and none completes.
            let results = ceremony(4, 63, Duration::from_millis(1500), |p, _| {
                if p.from == id(3) && p.kind == message_tag(MessageKind::Ack) {
                    Delivery::Drop
                } else {
                    Delivery::Deliver
                }
            });
            for (me, result) in &results {
                let Err((err, report)) = result else {
                    panic!("operator {me} completed");
                };
                if *me != id(3) {
                    assert_eq!(err.missing(), Some(id(3)), "operator {me}: {err}");
                    assert_eq!(report.missing, Some(id(3)));
                    assert_eq!(err.culprit(), None);
                }
            }
        }

        #[test]
        fn an_abort_is_relayed_to_those_who_did_not_see_the_fault() {
            // Operator 2 alone receives a corrupted deal from operator 3: it
            // sees the fault first hand (3's channel) and aborts; the others
            // hold valid deals from 3, cannot check 2's claim, and abort on
            // its report, repeating it as a claim and blaming no one.
            let results = ceremony(4, 64, Duration::from_secs(10), |p, bytes| {
                if p.from == id(3) && p.to == id(2) && p.kind == message_tag(MessageKind::Deal) {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 1;
                }
                Delivery::Deliver
            });
            let Err((seen, _)) = &results[&id(2)] else {
                panic!("operator 2 completed");
            };
            assert_eq!(seen.culprit(), Some(id(3)), "{seen}");
            for other in [1, 4] {
                let Err((err, report)) = &results[&id(other)] else {
                    panic!("operator {other} completed");
                };
                assert!(
                    matches!(err, CeremonyError::PeerAbortClaimed { reporter, .. } if *reporter == id(2)),
                    "operator {other}: {err}"
                );
                assert_eq!(err.culprit(), None, "operator {other}");
                assert_eq!(report.culprit, None);
            }
        }

        #[test]
        fn the_closing_exchange_tolerates_a_lost_closing_word() {
            // Operator 4's Done frames are lost: the others wait the closing
            // time, warn, and complete (its connection may simply be gone
            // after it finished).
            let results = ceremony(4, 65, Duration::from_secs(10), |p, _| {
                if p.from == id(4) && p.kind == FrameKind::Done {
                    Delivery::Drop
                } else {
                    Delivery::Deliver
                }
            });
            for (me, result) in &results {
                assert!(result.is_ok(), "operator {me}: {:?}", result.as_ref().err());
            }
        }

        #[test]
        fn an_abort_in_the_closing_exchange_aborts_every_honest_operator() {
            // Operator 4 alone receives a finalize of operator 2 with a
            // broken signature: it aborts in round 4 while the others,
            // holding every finalize, wait in the closing exchange; its
            // report reaches them there, and none completes.
            let results = ceremony(4, 66, Duration::from_secs(10), |p, bytes| {
                if p.from == id(2) && p.to == id(4) && p.kind == message_tag(MessageKind::Finalize)
                {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 1;
                }
                Delivery::Deliver
            });
            for (me, result) in &results {
                assert!(result.is_err(), "operator {me} completed alone");
            }
        }

        #[test]
        fn an_outage_after_the_finalize_messages_leaves_no_one_confirmed() {
            // Operator 4 holds every finalize message when its link fails
            // both ways: no one else receives its finalize, it receives no
            // closing word or confirmation. It completes but is confirmed by
            // no one; the others abort, naming it missing. No operator ends
            // with a confirmed lock while another lost its shares.
            let late = [FrameKind::Done, FrameKind::Confirm, FrameKind::Abort];
            let results = ceremony(4, 67, Duration::from_millis(1500), move |p, _| {
                let from_4 = p.from == id(4)
                    && (p.kind == message_tag(MessageKind::Finalize) || late.contains(&p.kind));
                let to_4 = p.to == id(4) && late.contains(&p.kind);
                if from_4 || to_4 {
                    Delivery::Drop
                } else {
                    Delivery::Deliver
                }
            });
            let (_, confirmation) = results[&id(4)]
                .as_ref()
                .map_err(|(e, _)| e.to_string())
                .unwrap();
            assert!(confirmation.confirmed.is_empty(), "{confirmation:?}");
            assert_eq!(confirmation.unconfirmed.len(), 3);
            for other in [1, 2, 3] {
                let Err((err, _)) = &results[&id(other)] else {
                    panic!("operator {other} completed");
                };
                assert_eq!(err.missing(), Some(id(4)), "operator {other}: {err}");
            }
        }
    }
}
