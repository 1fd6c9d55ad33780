//! An in-process cluster (tests, fuzz seeds and benchmarks; feature
//! `test-utils`): every participant's [`Machine`] steps in turn and messages
//! are handed over in memory, through hooks with which a test makes one
//! participant dishonest (re-signing what it sends with its own identity
//! key, as a real dishonest operator would).
//!
//! The round sequence is the machine's; this runner only delivers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::machine::{Inbox, Machine, Outgoing, Step};
use super::messages::{
    Ack, AnySigned, Body, DealBundle, Finalize, FromAny, Hello, IntoAny, MessageKind,
    PartialSignatures, ShareBundle, Signed,
};
use super::plan::{Context, Plan, Statement};
use super::signing::Statements;
use super::{DkgError, KnownSecrets, Output};
use crate::ceremony::OperatorId;
use crate::crypto::Scalar;
use crate::crypto::identity::IdentityKey;
use crate::wire::Bytes;

/// The slot numbered `i`.
///
/// # Panics
///
/// If `i` is not a slot number.
#[allow(clippy::unwrap_used)]
pub fn id(i: u8) -> OperatorId {
    OperatorId::try_from(i).unwrap()
}

/// A cluster: its public context, every participant's identity, and the
/// layer that defines its statements.
pub struct Cluster {
    /// The context every participant holds.
    pub context: Context,
    /// Every participant's identity key, in slot order.
    pub identities: Vec<Arc<IdentityKey>>,
    statements: Arc<dyn Statements + Send>,
}

impl Cluster {
    /// A cluster of `identities` running `context`.
    pub fn new(
        context: Context,
        identities: Vec<IdentityKey>,
        statements: Arc<dyn Statements + Send>,
    ) -> Self {
        Self {
            context,
            identities: identities.into_iter().map(Arc::new).collect(),
            statements,
        }
    }

    /// A DKG of `n` fresh identities, threshold `t`, `v` validators, shares
    /// at `indices` (slot numbers when `None`), signing `signed`.
    ///
    /// # Panics
    ///
    /// If the sizes are invalid.
    #[allow(clippy::expect_used)]
    pub fn dkg(
        n: u64,
        t: u64,
        v: u64,
        indices: Option<&[super::plan::ShareIndex]>,
        signed: Vec<Statement>,
        statements: Arc<dyn Statements + Send>,
        rng: &mut StdRng,
    ) -> Self {
        let identities: Vec<IdentityKey> = (0..n).map(|_| IdentityKey::generate(rng)).collect();
        let roster: Vec<_> = identities.iter().map(IdentityKey::public).collect();
        let plan = Plan::dkg(
            &roster,
            indices,
            u8::try_from(t).expect("t"),
            u32::try_from(v).expect("v"),
            signed,
        )
        .expect("a valid plan");
        let context = Context {
            plan,
            definition_hash: Bytes([0xd5; 32]),
        };
        Self::new(context, identities, statements)
    }

    /// The identity of `operator`.
    ///
    /// # Panics
    ///
    /// If `operator` is not a participant.
    #[allow(clippy::indexing_slicing)]
    pub fn identity(&self, operator: OperatorId) -> &IdentityKey {
        &self.identities[operator.position()]
    }

    /// Every slot, in order.
    pub fn ids(&self) -> Vec<OperatorId> {
        self.context.plan.slots().to_vec()
    }

    /// The layer that defines the statements.
    pub fn statements(&self) -> &dyn Statements {
        self.statements.as_ref()
    }
}

/// Re-signs `message` as its sender, after a dishonest change to its body.
pub fn resign<T: Body>(cluster: &Cluster, message: &mut Signed<T>) {
    let sender = message.header.sender;
    let session = message.header.session.0;
    *message = Signed::sign(
        cluster.identity(sender),
        session,
        sender,
        message.body.clone(),
    );
}

/// What each recipient receives in a round: `views[recipient][sender]`.
pub type Views<T> = BTreeMap<OperatorId, BTreeMap<OperatorId, Signed<T>>>;

/// A hook on what recipients receive of one kind.
pub type Hook<'a, T> = Option<Box<dyn FnMut(&Cluster, &mut Views<T>) + 'a>>;

/// Hooks that change what recipients receive, round by round.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Round 0.
    pub hellos: Hook<'a, Hello>,
    /// Round 1 broadcasts.
    pub deals: Hook<'a, DealBundle>,
    /// Round 1 private bundles.
    pub shares: Hook<'a, ShareBundle>,
    /// Round 2.
    pub acks: Hook<'a, Ack>,
    /// Round 3.
    pub partials: Hook<'a, PartialSignatures>,
    /// Round 4.
    pub finals: Hook<'a, Finalize>,
    /// Dealer mode: each participant's constant terms (a fresh DKG).
    pub constants: Option<Vec<Vec<Scalar>>>,
    /// The known secrets of a split's or a reshare's dealers.
    pub known: BTreeMap<OperatorId, Vec<Scalar>>,
}

/// One message as sent: its sender, its recipient (`None`: every other
/// participant) and the message.
pub type Sent = (OperatorId, Option<OperatorId>, AnySigned);

/// The result of a run: the outputs of a completed ceremony, or the errors
/// of the round where it stopped, per participant; every message sent; and
/// the time spent in each step (start, rounds 1 to 4, finish), summed over
/// the participants.
pub struct Run {
    /// Each participant's output, when all completed.
    pub outputs: BTreeMap<OperatorId, Output>,
    /// The errors of the round where the run stopped.
    pub errors: BTreeMap<OperatorId, DkgError>,
    /// Every message sent, in order.
    pub sent: Vec<Sent>,
    /// Time per step, summed over participants.
    pub times: [Duration; 6],
}

fn views_of<T: Body>(messages: &[Sent], recipients: &[OperatorId]) -> Views<T>
where
    Signed<T>: FromAny,
{
    let mut views: Views<T> = recipients.iter().map(|&r| (r, BTreeMap::new())).collect();
    for (sender, to, message) in messages {
        let Some(typed) = Signed::<T>::from_any(message.clone()) else {
            continue;
        };
        for (&recipient, view) in views.iter_mut() {
            if to.is_none_or(|to| to == recipient) {
                view.insert(*sender, typed.clone());
            }
        }
    }
    views
}

fn hooked<T: Body>(
    cluster: &Cluster,
    messages: &[Sent],
    hook: &mut Hook<'_, T>,
    inboxes: &mut BTreeMap<OperatorId, Inbox>,
) where
    Signed<T>: FromAny + IntoAny,
{
    let kind = T::KIND;
    if !messages.iter().any(|(_, _, m)| m.kind() == kind) {
        return;
    }
    let mut views: Views<T> = views_of(messages, &cluster.ids());
    if let Some(hook) = hook.as_mut() {
        hook(cluster, &mut views);
    }
    for (recipient, view) in views {
        let inbox = inboxes.entry(recipient).or_default();
        inbox.insert(
            kind,
            view.into_iter().map(|(s, m)| (s, m.into_any())).collect(),
        );
    }
}

/// Runs rounds while every participant succeeds; stops after the first
/// round in which any fails, returning the failures of that round.
///
/// # Panics
///
/// If a participant cannot start (a bug in the test's cluster).
#[allow(clippy::expect_used)]
pub fn run(cluster: &Cluster, mut hooks: Hooks<'_>, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = Run {
        outputs: BTreeMap::new(),
        errors: BTreeMap::new(),
        sent: Vec::new(),
        times: [Duration::ZERO; 6],
    };
    let mut machines: BTreeMap<OperatorId, Machine> = BTreeMap::new();
    let mut round: Vec<Sent> = Vec::new();
    let started = Instant::now();
    for op in cluster.ids() {
        let known = hooks.known.remove(&op).map(KnownSecrets);
        match Machine::start(
            cluster.context.clone(),
            op,
            cluster.identities[op.position()].clone(),
            cluster.statements.clone(),
            known,
            &mut rng,
        ) {
            Ok((mut machine, outgoing)) => {
                if let Some(constants) = hooks.constants.as_ref() {
                    machine = machine.with_constants(constants[op.position()].clone());
                }
                record(op, outgoing, &mut round);
                machines.insert(op, machine);
            }
            Err(err) => {
                run.errors.insert(op, err);
            }
        }
    }
    run.times[0] += started.elapsed();
    if !run.errors.is_empty() {
        return run;
    }
    for step in 1..=5 {
        // Every participant receives what was sent to it, and its own
        // messages (a share bundle to itself included).
        let mut all = round.clone();
        for (&op, machine) in &machines {
            for own in machine.own_messages() {
                let addressed = (own.kind() == MessageKind::Shares).then_some(op);
                if !round
                    .iter()
                    .any(|(s, _, m)| *s == op && m.kind() == own.kind())
                {
                    all.push((op, addressed, own.clone()));
                }
            }
        }
        let mut inboxes: BTreeMap<OperatorId, Inbox> = BTreeMap::new();
        hooked(cluster, &all, &mut hooks.hellos, &mut inboxes);
        hooked(cluster, &all, &mut hooks.deals, &mut inboxes);
        hooked(cluster, &all, &mut hooks.shares, &mut inboxes);
        hooked(cluster, &all, &mut hooks.acks, &mut inboxes);
        hooked(cluster, &all, &mut hooks.partials, &mut inboxes);
        hooked(cluster, &all, &mut hooks.finals, &mut inboxes);
        run.sent.append(&mut round);
        let started = Instant::now();
        let mut next = BTreeMap::new();
        for (op, machine) in std::mem::take(&mut machines) {
            let inbox = inboxes.remove(&op).unwrap_or_default();
            match machine.advance(inbox, &mut rng) {
                Ok(Step::Next(machine, outgoing)) => {
                    record(op, outgoing, &mut round);
                    next.insert(op, machine);
                }
                Ok(Step::Done(output)) => {
                    run.outputs.insert(op, output);
                }
                Err(err) => {
                    run.errors.insert(op, err);
                }
            }
        }
        if let Some(slot) = run.times.get_mut(step) {
            *slot += started.elapsed();
        }
        if !run.errors.is_empty() {
            run.outputs.clear();
            return run;
        }
        machines = next;
        if machines.is_empty() {
            break;
        }
    }
    run
}

fn record(sender: OperatorId, outgoing: Vec<Outgoing>, into: &mut Vec<Sent>) {
    for message in outgoing {
        match message {
            Outgoing::All(m) => into.push((sender, None, m)),
            Outgoing::To(to, m) => into.push((sender, Some(to), m)),
        }
    }
}
