//! Runs the protocol of `crate::dkg` over the QUIC mesh of `crate::net`:
//! per round, send, collect with a deadline, compute (off the async
//! threads), and turn every failure into a blame or a named missing peer.
//!
//! Spec: `ceremony-specs/protocol.md` for the rounds; this module adds the
//! transport's rules: frames bound to the ceremony, an abort report sent to
//! every peer on failure, and a closing exchange so that no operator closes
//! before every other holds every finalize message.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityKey;
use crate::dkg::evidence::verify_evidence;
use crate::dkg::messages::{Body, MessageKind, Signed};
use crate::dkg::{self, Context, DkgError, Evidence, Output};
use crate::net::{self, FrameKind, Limits, Mesh, Peer, TransportError};
use crate::wire::{self, Bytes};

/// The abort report format version.
pub const ABORT_REPORT_VERSION: u32 = 1;

/// How long to wait for the closing exchange once every finalize message is
/// in.
pub const CLOSING_SECS: u64 = 10;

/// What an operator tells its peers, and writes to disk, when it aborts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortReport {
    /// [`ABORT_REPORT_VERSION`].
    pub version: u32,
    /// The definition hash of the ceremony.
    pub definition_hash: Bytes<32>,
    /// The operator writing the report.
    pub reporter: OperatorId,
    /// The round it was in (0 to 4; 5 for the closing exchange).
    pub round: u8,
    /// The operator it blames for a protocol fault, if any.
    pub culprit: Option<OperatorId>,
    /// The operator that went missing (timeout or closed connection), if
    /// that is why it aborted.
    pub missing: Option<OperatorId>,
    /// The failure in words.
    pub message: String,
    /// The signed messages that prove the fault, when there are.
    pub evidence: Option<Evidence>,
}

/// Why a ceremony failed, from this operator's point of view.
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
        reason: String,
    },
    /// The network failed us: a missing, silent or misbehaving peer.
    #[error(transparent)]
    Transport(TransportError),
    /// Another operator aborted, and its report names a culprit whose
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
    /// Another operator aborted and its report names someone we cannot
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
    /// This operator stopped on purpose (fault injection: stall or exit).
    #[cfg(feature = "fault-injection")]
    #[error("fault injection: {0}")]
    Injected(String),
}

impl CeremonyError {
    /// The operator at fault, if the failure names one.
    pub fn culprit(&self) -> Option<OperatorId> {
        match self {
            Self::Protocol(err) => err.culprit(),
            Self::Malformed { peer, .. } => Some(*peer),
            Self::Transport(err) => match err {
                TransportError::BadFrame { peer, .. }
                | TransportError::OtherCeremony { peer, .. } => Some(*peer),
                _ => None,
            },
            Self::PeerAbortProven { culprit, .. } => Some(*culprit),
            // A peer's claim is repeated, never turned against the peer:
            // an honest operator reporting a fault without proof (say,
            // conflicting hellos) is not the culprit.
            Self::PeerAbortClaimed { .. } => None,
            Self::Internal(_) => None,
            #[cfg(feature = "fault-injection")]
            Self::Injected(_) => None,
        }
    }

    /// The operator that went missing, if that is the failure.
    pub fn missing(&self) -> Option<OperatorId> {
        match self {
            Self::Transport(err) => match err {
                TransportError::Timeout { peer, .. }
                | TransportError::PeerClosed { peer, .. }
                | TransportError::Send { peer, .. } => Some(*peer),
                TransportError::Unreachable { missing } => missing.first().copied(),
                _ => None,
            },
            // A missing operator is named as a peer's claim (its report is
            // relayed as such), never as a fault.
            Self::PeerAbortClaimed { report, .. } => report.missing,
            _ => None,
        }
    }

    fn evidence(&self) -> Option<Evidence> {
        match self {
            Self::Protocol(err) => err.evidence().cloned(),
            Self::PeerAbortProven { evidence, .. } => Some((**evidence).clone()),
            _ => None,
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
}

/// Progress that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn round(&self, _: u8, _: &str, _: usize) {}
    fn tick(&self, _: u8) {}
    fn done(&self, _: u8) {}
}

/// Everything the driver needs, validated.
pub struct DriverConfig {
    /// The protocol context (from the definition).
    pub context: Context,
    /// This operator.
    pub me: OperatorId,
    /// The bound socket to serve on.
    pub socket: UdpSocket,
    /// The other operators.
    pub peers: Vec<Peer>,
    /// How long to wait for every peer to connect.
    pub connect_timeout: Duration,
    /// How long to wait for each round's messages once the round started.
    pub round_timeout: Duration,
    /// The fault this operator injects, if any.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Arc<super::fault::Injector>>,
}

/// The bound on any one frame of this ceremony, from its size.
pub fn max_frame_bytes(context: &Context) -> u64 {
    let n = context.params.operators() as u64;
    let t = context.params.threshold() as u64;
    let v = context.params.validators() as u64;
    let d = context.plan.deposits() as u64;
    // A deal: per validator t commitments and a proof, with length prefixes;
    // an ack may carry up to n deals as complaint evidence.
    // Points travel uncompressed: 96 bytes in G1, 192 in G2, each with an
    // 8-byte length prefix.
    let deal = v * (t * 104 + 176) + n * 120 + 4096;
    let partials = v * (d * 200 + 16) + n * 120 + 4096;
    (n * deal)
        .max(partials)
        .clamp(64 * 1024, wire::MAX_MESSAGE_BYTES)
}

struct Session<'a> {
    mesh: Mesh,
    me: OperatorId,
    max: u64,
    round_timeout: Duration,
    progress: &'a dyn Progress,
    round: u8,
    /// The transcript this operator signed in round 4, once it has: with
    /// it, a peer's report that another operator signed a different
    /// transcript is checked, not just repeated.
    signed: Option<SignedTranscript>,
    #[cfg(feature = "fault-injection")]
    fault: Option<(Arc<super::fault::Injector>, Arc<IdentityKey>)>,
}

impl Session<'_> {
    /// Encodes a message; the bytes are wiped when dropped, as a share
    /// bundle's would hold key shares.
    fn encode<T: Serialize>(&self, value: &T) -> Result<Zeroizing<Vec<u8>>, CeremonyError> {
        wire::encode(value)
            .map(Zeroizing::new)
            .map_err(|e| CeremonyError::Internal(e.to_string()))
    }

    async fn broadcast<T: Body + Send + 'static>(
        &self,
        message: &Signed<T>,
    ) -> Result<(), CeremonyError> {
        #[cfg(feature = "fault-injection")]
        if let Some((injector, key)) = &self.fault {
            let peers: Vec<OperatorId> = self.mesh.peers().collect();
            return self.send_faulty(injector, key, message, &peers).await;
        }
        let bytes = self.encode(message)?;
        self.mesh
            .broadcast(FrameKind::Message(T::KIND), &bytes, false)
            .await
            .map_err(CeremonyError::Transport)
    }

    /// Sends `message` to `peer` alone.
    async fn send_to<T: Body + Send + 'static>(
        &self,
        peer: OperatorId,
        message: &Signed<T>,
    ) -> Result<(), CeremonyError> {
        #[cfg(feature = "fault-injection")]
        if let Some((injector, key)) = &self.fault {
            return self.send_faulty(injector, key, message, &[peer]).await;
        }
        let bytes = self.encode(message)?;
        self.mesh
            .send(peer, FrameKind::Message(T::KIND), bytes, false)
            .await
            .map_err(CeremonyError::Transport)
    }

    /// Sends what the injected fault makes of `message` to each of `to`.
    #[cfg(feature = "fault-injection")]
    async fn send_faulty<T: Body + Send + 'static>(
        &self,
        injector: &super::fault::Injector,
        key: &IdentityKey,
        message: &Signed<T>,
        to: &[OperatorId],
    ) -> Result<(), CeremonyError> {
        use super::fault::Outgoing;
        let peers: Vec<OperatorId> = self.mesh.peers().collect();
        let outgoing = injector.outgoing(self.round, message, key, &peers, self.max);
        let encode_any = |m: &Box<dyn std::any::Any + Send>| match m.downcast_ref::<Signed<T>>() {
            Some(m) => self.encode(m),
            None => Err(CeremonyError::Internal(
                "fault injection: wrong type".into(),
            )),
        };
        for &peer in to {
            let bytes = match &outgoing {
                Outgoing::Honest => self.encode(message)?,
                Outgoing::Raw(bytes) => Zeroizing::new(bytes.clone()),
                Outgoing::Same(m) => encode_any(m)?,
                Outgoing::PerPeer(map) => match map.get(&peer) {
                    Some(m) => encode_any(m)?,
                    None => self.encode(message)?,
                },
            };
            self.mesh
                .send(peer, FrameKind::Message(T::KIND), bytes, false)
                .await
                .map_err(CeremonyError::Transport)?;
        }
        Ok(())
    }

    /// Starts round `round`: the injected fault may stall or end this
    /// operator here.
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

    /// Collects one `T` from every peer, plus ours, keyed by sender.
    async fn collect<T: Body + DeserializeOwned>(
        &self,
        own: Signed<T>,
    ) -> Result<BTreeMap<OperatorId, Signed<T>>, CeremonyError> {
        let deadline = Instant::now() + self.round_timeout;
        let mut out = BTreeMap::new();
        out.insert(self.me, own);
        let peers: Vec<OperatorId> = self.mesh.peers().collect();
        for peer in peers {
            let bytes = self
                .mesh
                .recv(peer, FrameKind::Message(T::KIND), deadline)
                .await
                .map_err(CeremonyError::Transport)?;
            let message: Signed<T> =
                wire::decode(&bytes, self.max).map_err(|e| CeremonyError::Malformed {
                    peer,
                    kind: T::KIND,
                    reason: e.to_string(),
                })?;
            self.progress.tick(self.round);
            out.insert(peer, message);
        }
        Ok(out)
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

/// Runs the whole ceremony for this operator. On failure, every peer is sent
/// an abort report before the error is returned.
///
/// # Errors
///
/// [`CeremonyError`] naming the culprit or the missing operator.
pub async fn run(
    config: DriverConfig,
    identity: Arc<IdentityKey>,
    progress: &dyn Progress,
) -> Result<Output, (CeremonyError, AbortReport)> {
    let DriverConfig {
        context,
        me,
        socket,
        peers,
        connect_timeout,
        round_timeout,
        #[cfg(feature = "fault-injection")]
        fault,
    } = config;
    let definition_hash = context.definition_hash;
    let report = |round: u8, err: &CeremonyError| AbortReport {
        version: ABORT_REPORT_VERSION,
        definition_hash,
        reporter: me,
        round,
        culprit: err.culprit(),
        missing: err.missing(),
        message: err.to_string(),
        evidence: err.evidence(),
    };
    let limits = Limits {
        max_frame_bytes: max_frame_bytes(&context),
        connect_deadline: Instant::now() + connect_timeout,
    };
    progress.round(0, "connecting", peers.len());
    let mesh = Mesh::connect(
        me,
        definition_hash.0,
        &identity,
        socket,
        &peers,
        limits,
        |_, _| progress.tick(0),
    )
    .await
    .map_err(|e| {
        let err = CeremonyError::Transport(e);
        let r = report(0, &err);
        (err, r)
    })?;
    progress.done(0);
    let mut session = Session {
        mesh,
        me,
        max: limits.max_frame_bytes,
        round_timeout,
        progress,
        round: 0,
        signed: None,
        #[cfg(feature = "fault-injection")]
        fault: fault.map(|f| (f, identity.clone())),
    };
    match rounds(&mut session, context.clone(), identity).await {
        Ok(output) => {
            session
                .mesh
                .close(net::CLOSE_DONE, b"done", Duration::from_secs(2))
                .await;
            Ok(output)
        }
        #[cfg(feature = "fault-injection")]
        Err(err @ CeremonyError::Injected(_)) => {
            // Gone without a word: the connections drop with the session.
            let r = report(session.round, &err);
            Err((err, r))
        }
        #[cfg(feature = "fault-injection")]
        Err(err) if session.fault.is_some() => {
            // A dishonest operator does not announce its own fault: it stays
            // connected and silent for a while, so that the honest operators
            // convict it from what it sent, then drops its connections.
            warn!(error = %err, "fault injection: failing silently");
            tokio::time::sleep(round_timeout.min(Duration::from_secs(5))).await;
            let r = report(session.round, &err);
            Err((err, r))
        }
        Err(err) => {
            // A closed connection or failed send may be a peer aborting: its
            // report, with the real reason, may still be in flight.
            let err = match err {
                CeremonyError::Transport(ref transport)
                    if !matches!(transport, TransportError::PeerAborted { .. }) =>
                {
                    match session.mesh.abort_report(Duration::from_millis(1500)).await {
                        Some((peer, report)) => {
                            CeremonyError::Transport(TransportError::PeerAborted { peer, report })
                        }
                        None => err,
                    }
                }
                other => other,
            };
            let err = explain_peer_abort(&context, session.signed.as_ref(), err);
            let r = report(session.round, &err);
            warn!(error = %err, "aborting");
            // JSON, not bincode: the evidence is a tagged enum, which bincode
            // cannot read back.
            if let Ok(bytes) = serde_json::to_vec(&r) {
                // Best effort: the peers may be gone already.
                let _ = tokio::time::timeout(
                    Duration::from_secs(3),
                    session.mesh.broadcast(FrameKind::Abort, &bytes, true),
                )
                .await;
            }
            session
                .mesh
                .close(net::CLOSE_ABORT, b"aborted", Duration::from_secs(1))
                .await;
            Err((err, r))
        }
    }
}

/// What this operator signed in round 4: the session, the receipts of the
/// n partial-signature messages it holds, and its transcript hash.
#[derive(Debug, Clone)]
struct SignedTranscript {
    session: Bytes<32>,
    partials: Vec<dkg::messages::Receipt>,
    hash: Bytes<32>,
}

/// Turns a peer's abort into our own verdict: its evidence checked by us,
/// or its claim repeated. With `ours` (what this operator signed in round
/// 4), a report that another operator signed a different transcript is
/// checked against it: a finalize in this session, echoing the very
/// partial-signature messages we hold, yet on another hash than ours, is
/// that operator's fault (the hellos, deals and acks are pinned by the
/// echoes of earlier rounds, so an honest signer holding our partials holds
/// our transcript). This proves it to us, not to a third party, who would
/// have to recompute the transcript. Without the receipts matching, the
/// signer may be honest and shown other partials by an equivocating peer.
fn explain_peer_abort(
    context: &Context,
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
    if let Some(evidence) = &report.evidence
        && let Ok(verdict) = verify_evidence(context, evidence)
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
    if report.definition_hash.0 != context.definition_hash.0 || report.reporter != *peer {
        return CeremonyError::Transport(TransportError::BadFrame {
            peer: *peer,
            reason: "an abort report for another ceremony or operator".into(),
        });
    }
    // The message is the peer's text: print no control characters of it.
    let message: String = report
        .message
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    CeremonyError::PeerAbortClaimed {
        reporter: *peer,
        report: Box::new(report),
        message,
    }
}

async fn rounds(
    s: &mut Session<'_>,
    context: Context,
    identity: Arc<IdentityKey>,
) -> Result<Output, CeremonyError> {
    let n = context.params.operators();
    let me = s.me;

    // Round 0: hello.
    s.start_round(0).await?;
    s.progress.round(0, "hello", n - 1);
    let id = identity.clone();
    let (state, hello) = compute(move || dkg::start(context, me, &id, &mut OsRng)).await?;
    s.broadcast(&hello).await?;
    let hellos = s.collect(hello).await?;
    s.progress.done(0);
    info!("round 0 complete: every operator said hello");

    // Round 1: deal.
    s.start_round(1).await?;
    s.progress.round(1, "deal", 2 * (n - 1));
    let id = identity.clone();
    let (state, deal, mut shares) =
        compute(move || dkg::part1(state, &id, &hellos, &mut OsRng)).await?;
    s.broadcast(&deal).await?;
    let own_shares = shares
        .remove(&me)
        .ok_or_else(|| CeremonyError::Internal("no share bundle for ourselves".into()))?;
    for (peer, bundle) in shares {
        s.send_to(peer, &bundle).await?;
    }
    let deals = s.collect(deal).await?;
    let shares = s.collect(own_shares).await?;
    #[cfg(feature = "fault-injection")]
    if let Some((injector, _)) = &s.fault {
        injector.observe_shares(&shares);
    }
    s.progress.done(1);
    info!("round 1 complete: every deal and share received");

    // Round 2: acknowledge.
    s.start_round(2).await?;
    s.progress.round(2, "acknowledge", n - 1);
    let id = identity.clone();
    let (state, ack) = compute(move || dkg::part2(state, &id, &deals, &shares, &mut OsRng)).await?;
    s.broadcast(&ack).await?;
    let acks = s.collect(ack).await?;
    s.progress.done(2);

    // Round 3: partial signatures.
    s.start_round(3).await?;
    s.progress.round(3, "sign", n - 1);
    let id = identity.clone();
    let (state, partials) = compute(move || dkg::part3(state, &id, &acks, &mut OsRng)).await?;
    s.broadcast(&partials).await?;
    let partials = s.collect(partials).await?;
    s.progress.done(3);

    // Round 4: finalize.
    s.start_round(4).await?;
    s.progress.round(4, "finalize", n - 1);
    let id = identity.clone();
    let (state, finalize) = compute(move || dkg::part4(state, &id, &partials, &mut OsRng)).await?;
    s.signed = Some(SignedTranscript {
        session: finalize.header.session,
        partials: finalize.body.partials.clone(),
        hash: finalize.body.transcript_hash,
    });
    s.broadcast(&finalize).await?;
    let finals = s.collect(finalize).await?;
    let output = compute(move || dkg::finish(state, &finals)).await?;
    s.progress.done(4);

    // Closing: tell every peer we hold everything, and wait until each has
    // said the same (or closed after finishing), so no one closes early. A
    // peer that aborts instead (it was shown a fault we were not, say a
    // finalize on another transcript) aborts us too: honest operators end
    // alike, and none writes outputs (protocol.md, Finish).
    s.round = 5;
    s.mesh
        .broadcast(FrameKind::Done, &[], false)
        .await
        .map_err(CeremonyError::Transport)?;
    let deadline = Instant::now() + Duration::from_secs(CLOSING_SECS);
    let peers: Vec<OperatorId> = s.mesh.peers().collect();
    for peer in peers {
        match s.mesh.recv_from_peer(peer, FrameKind::Done, deadline).await {
            Ok(_) => {}
            Err(TransportError::PeerClosed { reason, .. }) if reason == "it finished" => {}
            Err(err @ TransportError::PeerAborted { .. }) => {
                return Err(CeremonyError::Transport(err));
            }
            Err(err) => {
                warn!(peer = %peer, error = %err, "no closing message; the ceremony itself completed")
            }
        }
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::ceremony::Params;
    use crate::dkg::signing::DepositPlan;

    fn id(i: u8) -> OperatorId {
        OperatorId::try_from(i).unwrap()
    }

    fn keys() -> Vec<IdentityKey> {
        let mut rng = StdRng::seed_from_u64(31);
        (0..3).map(|_| IdentityKey::generate(&mut rng)).collect()
    }

    fn context() -> Context {
        Context {
            params: Params::new(3, 2, 1).unwrap(),
            roster: keys().iter().map(IdentityKey::public).collect(),
            definition_hash: Bytes([5; 32]),
            plan: DepositPlan {
                fork_version: Bytes([0; 4]),
                withdrawal_credentials: Bytes([1; 32]),
                amounts: vec![32_000_000_000],
            },
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
            None,
            CeremonyError::Transport(TransportError::PeerAborted {
                peer: id(2),
                report: b"not json".to_vec(),
            }),
        );
        assert_eq!(err.culprit(), Some(id(2)));
    }
}
