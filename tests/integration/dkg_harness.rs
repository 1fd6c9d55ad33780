//! An in-process cluster for the pure protocol: every operator's round
//! functions run in turn and messages are handed over in memory, with hooks
//! through which a test makes one operator dishonest (re-signing what it
//! sends with its own identity key, as a real dishonest operator would).

use std::collections::BTreeMap;

use dvkg::ceremony::{OperatorId, Params};
use dvkg::crypto::Scalar;
use dvkg::crypto::identity::IdentityKey;
use dvkg::dkg::messages::{
    Ack, Body, DealBundle, Finalize, Hello, PartialSignatures, ShareBundle, Signed,
};
use dvkg::dkg::signing::DepositPlan;
use dvkg::dkg::{self, Context, DkgError, Output, dealer};
use dvkg::eth::{ExecutionAddress, Gwei, WithdrawalCredentials, WithdrawalKind};
use dvkg::wire::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub fn id(i: u8) -> OperatorId {
    OperatorId::try_from(i).unwrap()
}

/// A cluster: its public context and every operator's identity.
pub struct Cluster {
    pub context: Context,
    pub identities: Vec<IdentityKey>,
}

pub fn hoodi_plan() -> DepositPlan {
    let address = ExecutionAddress::from_bytes([0x42; 20]);
    let credentials =
        WithdrawalCredentials::for_address(WithdrawalKind::Compounding, address).unwrap();
    DepositPlan::new(
        [0x10, 0x00, 0x09, 0x10],
        credentials,
        &[Gwei(32_000_000_000)],
    )
}

impl Cluster {
    pub fn new(n: u64, t: u64, v: u64, plan: DepositPlan, rng: &mut StdRng) -> Self {
        let params = Params::new(n, t, v).unwrap();
        let identities: Vec<IdentityKey> = (0..n).map(|_| IdentityKey::generate(rng)).collect();
        let context = Context {
            params,
            roster: identities.iter().map(IdentityKey::public).collect(),
            definition_hash: Bytes([0xd5; 32]),
            plan,
        };
        Self {
            context,
            identities,
        }
    }

    pub fn identity(&self, operator: OperatorId) -> &IdentityKey {
        &self.identities[operator.position()]
    }

    pub fn ids(&self) -> Vec<OperatorId> {
        self.context.params.operator_ids().collect()
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

/// Hooks that change what recipients receive, round by round.
#[derive(Default)]
#[allow(clippy::type_complexity)]
pub struct Hooks<'a> {
    pub hellos: Option<Box<dyn FnMut(&Cluster, &mut Views<Hello>) + 'a>>,
    pub deals: Option<Box<dyn FnMut(&Cluster, &mut Views<DealBundle>) + 'a>>,
    pub shares: Option<Box<dyn FnMut(&Cluster, &mut Views<ShareBundle>) + 'a>>,
    pub acks: Option<Box<dyn FnMut(&Cluster, &mut Views<Ack>) + 'a>>,
    pub partials: Option<Box<dyn FnMut(&Cluster, &mut Views<PartialSignatures>) + 'a>>,
    pub finals: Option<Box<dyn FnMut(&Cluster, &mut Views<Finalize>) + 'a>>,
    /// Dealer mode: each operator's constant terms.
    pub constants: Option<Vec<Vec<Scalar>>>,
}

/// The result of a run: the outputs of a completed ceremony, or the errors
/// of the round where it stopped, per operator.
pub struct Run {
    pub outputs: BTreeMap<OperatorId, Output>,
    pub errors: BTreeMap<OperatorId, DkgError>,
}

fn broadcast<T: Body>(messages: &BTreeMap<OperatorId, Signed<T>>, ids: &[OperatorId]) -> Views<T> {
    ids.iter().map(|&r| (r, messages.clone())).collect()
}

/// Runs rounds while every operator succeeds; stops after the first round in
/// which any operator fails, returning the failures of that round.
pub fn run(cluster: &Cluster, mut hooks: Hooks<'_>, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = cluster.ids();
    let mut errors = BTreeMap::new();
    macro_rules! step {
        ($results:expr) => {{
            let mut ok = BTreeMap::new();
            for (op, result) in $results {
                match result {
                    Ok(value) => {
                        ok.insert(op, value);
                    }
                    Err(err) => {
                        errors.insert(op, err);
                    }
                }
            }
            if !errors.is_empty() {
                return Run {
                    outputs: BTreeMap::new(),
                    errors,
                };
            }
            ok
        }};
    }

    let round0 = step!(
        ids.iter()
            .map(|&op| (
                op,
                dkg::start(cluster.context.clone(), op, cluster.identity(op), &mut rng)
            ))
            .collect::<Vec<_>>()
    );
    let mut states = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for (op, (state, hello)) in round0 {
        states.insert(op, state);
        sent.insert(op, hello);
    }
    let mut views = broadcast(&sent, &ids);
    if let Some(hook) = hooks.hellos.as_mut() {
        hook(cluster, &mut views);
    }

    let mut results = Vec::new();
    for (op, state) in states {
        let result = match hooks.constants.as_ref() {
            Some(constants) => dealer::part1_with_constants(
                state,
                cluster.identity(op),
                &views[&op],
                constants[op.position()].clone(),
                &mut rng,
            ),
            None => dkg::part1(state, cluster.identity(op), &views[&op], &mut rng),
        };
        results.push((op, result));
    }
    let round1 = step!(results);
    let mut states = BTreeMap::new();
    let mut deals = BTreeMap::new();
    let mut share_views: Views<ShareBundle> = ids.iter().map(|&r| (r, BTreeMap::new())).collect();
    for (op, (state, deal, shares)) in round1 {
        states.insert(op, state);
        deals.insert(op, deal);
        for (recipient, bundle) in shares {
            share_views.get_mut(&recipient).unwrap().insert(op, bundle);
        }
    }
    let mut deal_views = broadcast(&deals, &ids);
    if let Some(hook) = hooks.deals.as_mut() {
        hook(cluster, &mut deal_views);
    }
    if let Some(hook) = hooks.shares.as_mut() {
        hook(cluster, &mut share_views);
    }

    let round2 = step!(
        states
            .into_iter()
            .map(|(op, state)| (
                op,
                dkg::part2(
                    state,
                    cluster.identity(op),
                    &deal_views[&op],
                    &share_views[&op],
                    &mut rng
                )
            ))
            .collect::<Vec<_>>()
    );
    let mut states = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for (op, (state, ack)) in round2 {
        states.insert(op, state);
        sent.insert(op, ack);
    }
    let mut views = broadcast(&sent, &ids);
    if let Some(hook) = hooks.acks.as_mut() {
        hook(cluster, &mut views);
    }

    let round3 = step!(
        states
            .into_iter()
            .map(|(op, state)| (
                op,
                dkg::part3(state, cluster.identity(op), &views[&op], &mut rng)
            ))
            .collect::<Vec<_>>()
    );
    let mut states = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for (op, (state, partials)) in round3 {
        states.insert(op, state);
        sent.insert(op, partials);
    }
    let mut views = broadcast(&sent, &ids);
    if let Some(hook) = hooks.partials.as_mut() {
        hook(cluster, &mut views);
    }

    let round4 = step!(
        states
            .into_iter()
            .map(|(op, state)| (
                op,
                dkg::part4(state, cluster.identity(op), &views[&op], &mut rng)
            ))
            .collect::<Vec<_>>()
    );
    let mut states = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for (op, (state, finalize)) in round4 {
        states.insert(op, state);
        sent.insert(op, finalize);
    }
    let mut views = broadcast(&sent, &ids);
    if let Some(hook) = hooks.finals.as_mut() {
        hook(cluster, &mut views);
    }

    let outputs = step!(
        states
            .into_iter()
            .map(|(op, state)| (op, dkg::finish(state, &views[&op])))
            .collect::<Vec<_>>()
    );
    Run { outputs, errors }
}
