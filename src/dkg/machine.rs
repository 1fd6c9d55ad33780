//! The round sequence, once: each participant's ceremony as a pure state
//! machine. The driver (over any transport), the in-process runner of the
//! tests, the fuzz seeds and the benchmark all step the same machine; none
//! of them writes the rounds out again.
//!
//! A machine says which messages it awaits ([`Machine::expects`]: a kind
//! and the peers that send it, as the plan names them), takes them all at
//! once ([`Machine::advance`]), and returns what to send next: a message
//! for every other participant ([`Outgoing::All`]) or for one
//! ([`Outgoing::To`], the share bundles). Its own messages it keeps and
//! adds to what it receives.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand::{CryptoRng, RngCore};

use super::error::{DkgError, LocalError};
use super::messages::{AnySigned, Body, FromAny, IntoAny, MessageKind, Signed};
use super::plan::Context;
use super::signing::Statements;
use super::state::{self, KnownSecrets};
use super::{Output, ack, deal, finalize, sign};
use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityKey;

/// A message to send.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// The same message to every other participant.
    All(AnySigned),
    /// A message to one participant only (a share bundle).
    To(OperatorId, AnySigned),
}

/// Messages received in one round: `inbox[kind][sender]`.
pub type Inbox = BTreeMap<MessageKind, BTreeMap<OperatorId, AnySigned>>;

/// What a machine awaits: messages of `kind` from each of `from` (peers
/// only: its own it keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The kind.
    pub kind: MessageKind,
    /// The peers that send it, in slot order.
    pub from: Vec<OperatorId>,
}

/// The result of a step: the next state and what to send, or the end.
pub enum Step {
    /// The ceremony goes on.
    Next(Machine, Vec<Outgoing>),
    /// The ceremony is complete.
    Done(Output),
}

/// The state between rounds, boxed: the states differ much in size.
enum Stage {
    Hello(Box<state::Round0>),
    Deal(Box<state::Round1>),
    Ack(Box<state::Round2>),
    Partials(Box<state::Round3>),
    Finalize(Box<state::Round4>),
}

/// One participant's ceremony.
///
/// # Security
///
/// Holds the round state, which holds key shares after round 2; it is
/// wiped on drop, and `Debug` is redacted.
pub struct Machine {
    stage: Stage,
    context: Context,
    me: OperatorId,
    identity: Arc<IdentityKey>,
    statements: Arc<dyn Statements + Send>,
    /// What this participant sent this round, added to what it receives.
    own: Vec<AnySigned>,
    #[cfg(any(test, feature = "test-utils"))]
    constants: Option<Vec<crate::crypto::Scalar>>,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Machine(participant {}, round {}, <redacted>)",
            self.me,
            self.round()
        )
    }
}

impl Machine {
    /// Starts the ceremony of participant `me` (Round 0): its hello.
    ///
    /// # Errors
    ///
    /// As [`deal::start`].
    pub fn start<R: RngCore + CryptoRng + ?Sized>(
        context: Context,
        me: OperatorId,
        identity: Arc<IdentityKey>,
        statements: Arc<dyn Statements + Send>,
        known: Option<KnownSecrets>,
        rng: &mut R,
    ) -> Result<(Self, Vec<Outgoing>), DkgError> {
        let (round0, hello) = deal::start(context.clone(), me, &identity, known, rng)?;
        let hello = hello.into_any();
        let machine = Self {
            stage: Stage::Hello(Box::new(round0)),
            context,
            me,
            identity,
            statements,
            own: vec![hello.clone()],
            #[cfg(any(test, feature = "test-utils"))]
            constants: None,
        };
        Ok((machine, vec![Outgoing::All(hello)]))
    }

    /// Dealer mode (tests only): this dealer's constant terms, one per
    /// validator, instead of random ones (see [`super::dealer`]).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn with_constants(mut self, constants: Vec<crate::crypto::Scalar>) -> Self {
        self.constants = Some(constants);
        self
    }

    /// The messages this participant sent in the round it awaits the
    /// answers of (its own share bundle included), which it adds to what it
    /// receives.
    pub fn own_messages(&self) -> &[AnySigned] {
        &self.own
    }

    /// This participant.
    pub fn me(&self) -> OperatorId {
        self.me
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The round whose messages the machine awaits (0 hello … 4 finalize).
    pub fn round(&self) -> u8 {
        match self.stage {
            Stage::Hello(_) => 0,
            Stage::Deal(_) => 1,
            Stage::Ack(_) => 2,
            Stage::Partials(_) => 3,
            Stage::Finalize(_) => 4,
        }
    }

    /// The messages it awaits, by kind, from which peers.
    pub fn expects(&self) -> Vec<Expect> {
        let plan = &self.context.plan;
        let from = |kind: MessageKind| Expect {
            kind,
            from: plan
                .senders(kind)
                .iter()
                .copied()
                .filter(|&s| s != self.me)
                .collect(),
        };
        match self.stage {
            Stage::Hello(_) => vec![from(MessageKind::Hello)],
            Stage::Deal(_) => {
                let mut expect = vec![from(MessageKind::Deal)];
                if plan.share_index(self.me).is_some() {
                    expect.push(from(MessageKind::Shares));
                }
                expect
            }
            Stage::Ack(_) => vec![from(MessageKind::Ack)],
            Stage::Partials(_) => vec![from(MessageKind::Partials)],
            Stage::Finalize(_) => vec![from(MessageKind::Finalize)],
        }
    }

    /// This holder's secret key shares, once they are final: from round 3
    /// on (every complaint judged), before its partial signatures leave.
    /// `None` before, and for a participant that holds no share.
    ///
    /// # Security
    ///
    /// Key shares: for sealing them to disk (a recovery file), nothing
    /// else.
    pub fn final_shares(&self) -> Option<&[crate::crypto::Scalar]> {
        let shares = match &self.stage {
            Stage::Partials(s) => &s.secret_shares,
            Stage::Finalize(s) => &s.secret_shares,
            Stage::Hello(_) | Stage::Deal(_) | Stage::Ack(_) => return None,
        };
        (!shares.is_empty()).then_some(shares.as_slice())
    }

    /// The session id, once the hellos are in (round 1 on).
    fn session(&self) -> Option<&[u8; 32]> {
        match &self.stage {
            Stage::Hello(_) => None,
            Stage::Deal(s) => Some(&s.session),
            Stage::Ack(s) => Some(&s.session),
            Stage::Partials(s) => Some(&s.session),
            Stage::Finalize(s) => Some(&s.session),
        }
    }

    /// The checks every message of the round gets on its own (protocol.md
    /// §3.4: header, signature, session; for a hello, Round 1, Step 1), on
    /// one message from `sender`: to confirm first hand a fault a peer
    /// reports about `sender`.
    ///
    /// # Errors
    ///
    /// The [`DkgError`] naming `sender`.
    pub fn screen(&self, sender: OperatorId, message: &AnySigned) -> Result<(), DkgError> {
        let context = &self.context;
        let Some(session) = self.session() else {
            return match message {
                AnySigned::Hello(hello) => super::checks::check_hello(context, sender, hello),
                _ => Ok(()),
            };
        };
        use super::checks::check_signed;
        match message {
            AnySigned::Hello(m) => super::checks::check_hello(context, sender, m),
            AnySigned::Deal(m) => check_signed(context, session, sender, m),
            AnySigned::Shares(m) => check_signed(context, session, sender, m),
            AnySigned::Ack(m) => check_signed(context, session, sender, m),
            AnySigned::Partials(m) => check_signed(context, session, sender, m),
            AnySigned::Finalize(m) => check_signed(context, session, sender, m),
        }
    }

    /// Takes every message of the round and runs the next round.
    ///
    /// `inbox` may or may not hold this participant's own messages; missing
    /// ones are added.
    ///
    /// # Errors
    ///
    /// The round's [`DkgError`], naming the culprit.
    pub fn advance<R: RngCore + CryptoRng + ?Sized>(
        self,
        mut inbox: Inbox,
        rng: &mut R,
    ) -> Result<Step, DkgError> {
        let Self {
            stage,
            context,
            me,
            identity,
            statements,
            own,
            #[cfg(any(test, feature = "test-utils"))]
            constants,
        } = self;
        for message in own {
            inbox
                .entry(message.kind())
                .or_default()
                .entry(me)
                .or_insert(message);
        }
        let next = |stage, out: Vec<AnySigned>, to: Vec<Outgoing>| -> Result<Step, DkgError> {
            let mut outgoing: Vec<Outgoing> = out.iter().cloned().map(Outgoing::All).collect();
            outgoing.extend(to);
            Ok(Step::Next(
                Self {
                    stage,
                    context: context.clone(),
                    me,
                    identity: identity.clone(),
                    statements: statements.clone(),
                    own: out,
                    #[cfg(any(test, feature = "test-utils"))]
                    constants: None,
                },
                outgoing,
            ))
        };
        match stage {
            Stage::Hello(round0) => {
                let hellos = typed(&mut inbox, MessageKind::Hello)?;
                #[cfg(any(test, feature = "test-utils"))]
                let dealt = match constants {
                    Some(constants) => super::dealer::part1_with_constants(
                        *round0, &identity, &hellos, constants, rng,
                    )?,
                    None => deal::part1(*round0, &identity, &hellos, rng)?,
                };
                #[cfg(not(any(test, feature = "test-utils")))]
                let dealt = deal::part1(*round0, &identity, &hellos, rng)?;
                let (round1, deal, mut shares) = dealt;
                let own_shares = shares.remove(&me);
                let to = shares
                    .into_iter()
                    .map(|(holder, bundle)| Outgoing::To(holder, bundle.into_any()))
                    .collect();
                let out: Vec<AnySigned> = deal.into_iter().map(IntoAny::into_any).collect();
                let mut step = next(Stage::Deal(Box::new(round1)), out, to)?;
                // The own share bundle is kept, not sent.
                if let (Step::Next(machine, _), Some(bundle)) = (&mut step, own_shares) {
                    machine.own.push(bundle.into_any());
                }
                Ok(step)
            }
            Stage::Deal(round1) => {
                let deals = typed(&mut inbox, MessageKind::Deal)?;
                let shares = typed(&mut inbox, MessageKind::Shares)?;
                let (round2, ack) = ack::part2(*round1, &identity, &deals, &shares, rng)?;
                next(
                    Stage::Ack(Box::new(round2)),
                    vec![ack.into_any()],
                    Vec::new(),
                )
            }
            Stage::Ack(round2) => {
                let acks = typed(&mut inbox, MessageKind::Ack)?;
                let (round3, partials) =
                    sign::part3(*round2, &identity, &acks, statements.as_ref(), rng)?;
                let out = partials.into_iter().map(IntoAny::into_any).collect();
                next(Stage::Partials(Box::new(round3)), out, Vec::new())
            }
            Stage::Partials(round3) => {
                let partials = typed(&mut inbox, MessageKind::Partials)?;
                let (round4, finalize) = finalize::part4(*round3, &identity, &partials, rng)?;
                next(
                    Stage::Finalize(Box::new(round4)),
                    vec![finalize.into_any()],
                    Vec::new(),
                )
            }
            Stage::Finalize(round4) => {
                let finals = typed(&mut inbox, MessageKind::Finalize)?;
                finalize::finish(*round4, &finals).map(Step::Done)
            }
        }
    }
}

/// Takes the messages of `kind` out of `inbox`, typed.
fn typed<T: Body>(
    inbox: &mut Inbox,
    kind: MessageKind,
) -> Result<BTreeMap<OperatorId, Signed<T>>, DkgError>
where
    Signed<T>: FromAny,
{
    inbox
        .remove(&kind)
        .unwrap_or_default()
        .into_iter()
        .map(|(sender, message)| {
            Signed::<T>::from_any(message)
                .map(|m| (sender, m))
                .ok_or(DkgError::Local(LocalError::Misfiled(kind)))
        })
        .collect()
}
