//! Rounds 0 and 1: hello, then deal (protocol.md, "Round 0" and "Round 1").

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::checks::{check_hello, check_set};
use super::error::{DkgError, LocalError};
use super::messages::{
    self, DealBundle, Hello, MessageKind, Receipt, ShareBundle, ShareBytes, Signed, ValidatorDeal,
};
use super::plan::{Combine, Context};
use super::state::{self, KnownSecrets};
use super::vss::{self, Polynomial};
use crate::ceremony::OperatorId;
use crate::crypto::identity::IdentityKey;
use crate::crypto::{G1Point, Scalar};
use crate::wire::Bytes;

/// What round 1 produces: the next state, the broadcast deal (dealers
/// only), and one share bundle per holder (dealers only).
pub type Round1Output = (
    state::Round1,
    Option<Signed<DealBundle>>,
    BTreeMap<OperatorId, Signed<ShareBundle>>,
);

/// Round 0 (protocol.md, Round 0, Steps 1–2): announce this participant
/// with a fresh nonce.
///
/// `known` are a split or reshare dealer's secrets (the validator keys, or
/// its previous shares), one per validator; `None` for everyone else.
///
/// # Errors
///
/// [`LocalError`] when `identity` is not `me`'s key in the plan, or the
/// known secrets do not fit this participant's role.
pub fn start<R: RngCore + CryptoRng + ?Sized>(
    context: Context,
    me: OperatorId,
    identity: &IdentityKey,
    known: Option<KnownSecrets>,
    rng: &mut R,
) -> Result<(state::Round0, Signed<Hello>), DkgError> {
    if context.key(me) != Some(&identity.public()) {
        return Err(LocalError::NotOurKey(me).into());
    }
    let needs_known = context.plan.deals(me) && !matches!(context.plan.combine(), Combine::Fresh);
    match &known {
        None if needs_known => {
            return Err(LocalError::DealerSecrets("a split or reshare dealer needs them").into());
        }
        Some(_) if !needs_known => {
            return Err(
                LocalError::DealerSecrets("only a split or reshare dealer has them").into(),
            );
        }
        Some(secrets) if secrets.0.len() != context.params().validators() => {
            return Err(LocalError::DealerSecrets("one per validator is needed").into());
        }
        _ => {}
    }
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let hello = Hello {
        version: messages::PROTOCOL_VERSION,
        definition_hash: context.definition_hash,
        operator: me,
        nonce: Bytes(nonce),
    };
    let hello = Signed::sign(identity, context.definition_hash.0, me, hello);
    Ok((
        state::Round0 {
            context,
            me,
            hello: hello.clone(),
            known,
        },
        hello,
    ))
}

/// Round 1 (protocol.md, Round 1): check every hello, derive the session id,
/// and, for a dealer, deal: commitments and proofs for all, shares for each
/// holder.
///
/// # Errors
///
/// A [`DkgError`] naming the participant whose hello is invalid or for
/// another definition.
pub fn part1<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round0,
    identity: &IdentityKey,
    hellos: &BTreeMap<OperatorId, Signed<Hello>>,
    rng: &mut R,
) -> Result<Round1Output, DkgError> {
    let (state, hellos, session) = open_session(state, hellos)?;
    let state::Round0 {
        context, me, known, ..
    } = state;
    if !context.plan.deals(me) {
        return Ok((
            state::Round1 {
                context,
                me,
                session,
                hellos,
                deal: None,
            },
            None,
            BTreeMap::new(),
        ));
    }
    // Round 1, Step 3
    // > For each validator v, sample f_v of degree t-1 (its constant term
    // > fixed by the plan for a split or a reshare), commit
    // > C_{v,k} = a_{v,k}·G1, and prove knowledge of a_{v,0}.
    let threshold = context.params().threshold();
    let polynomials: Vec<Polynomial> = match known {
        None => (0..context.params().validators())
            .map(|_| Polynomial::random(threshold, rng))
            .collect(),
        Some(KnownSecrets(secrets)) => {
            let lambda = context
                .plan
                .known_constant(me)
                .map_or(Scalar::ONE, |(lambda, _)| lambda);
            secrets
                .iter()
                .map(|secret| Polynomial::with_constant(lambda.mul(secret), threshold, rng))
                .collect()
        }
    };
    let (deal, shares) =
        deal_polynomials(&context, &session, me, &hellos, &polynomials, identity, rng);
    drop(polynomials);
    Ok((
        state::Round1 {
            context,
            me,
            session,
            hellos,
            deal: Some(deal.clone()),
        },
        Some(deal),
        shares,
    ))
}

/// Round 0's state, the hellos in slot order, and the session id.
pub(crate) type Opened = (state::Round0, Vec<Signed<Hello>>, [u8; 32]);

/// Round 1, Steps 1–2: checks every hello and derives the session id.
pub(crate) fn open_session(
    state: state::Round0,
    hellos: &BTreeMap<OperatorId, Signed<Hello>>,
) -> Result<Opened, DkgError> {
    check_set(&state.context.plan, MessageKind::Hello, hellos)?;
    if hellos.get(&state.me) != Some(&state.hello) {
        return Err(LocalError::OwnMessageMissing(MessageKind::Hello).into());
    }
    for (&sender, hello) in hellos {
        // Round 1, Step 1
        // > Check every hello: header, signature, version, index, and that the
        // > definition hash is ours.
        check_hello(&state.context, sender, hello)?;
    }
    let hellos: Vec<Signed<Hello>> = hellos.values().cloned().collect();
    // Round 1, Step 2
    // > session id = SHA-256("dvkg/2 <kind> session" ‖ definition hash ‖ all
    // > nonces in slot order).
    let session = state.context.session_id(&hellos.iter().collect::<Vec<_>>());
    Ok((state, hellos, session))
}

/// Round 1, Steps 3–4 for chosen polynomials: the signed deal and one
/// signed share bundle per holder.
pub(crate) fn deal_polynomials<R: RngCore + CryptoRng + ?Sized>(
    context: &Context,
    session: &[u8; 32],
    me: OperatorId,
    hellos: &[Signed<Hello>],
    polynomials: &[Polynomial],
    identity: &IdentityKey,
    rng: &mut R,
) -> (
    Signed<DealBundle>,
    BTreeMap<OperatorId, Signed<ShareBundle>>,
) {
    let deal = deal_from(context, session, me, hellos, polynomials, identity, rng);
    // Round 1, Step 4
    // > Send each holder i, privately, f_v(x_i) for every v, bound to the
    // > deal's hash.
    let shares = shares_from(context, session, me, &deal, polynomials, identity);
    (deal, shares)
}

/// Builds and signs a deal for `polynomials`.
fn deal_from<R: RngCore + CryptoRng + ?Sized>(
    context: &Context,
    session: &[u8; 32],
    me: OperatorId,
    hellos: &[Signed<Hello>],
    polynomials: &[Polynomial],
    identity: &IdentityKey,
    rng: &mut R,
) -> Signed<DealBundle> {
    let kind = context.plan.kind();
    // The nonces first, in validator order, so that the deal depends on the
    // RNG alone, not on how the validators are spread over the cores.
    let nonces: Vec<Scalar> = polynomials.iter().map(|_| Scalar::random(rng)).collect();
    let validators = polynomials
        .par_iter()
        .zip(&nonces)
        .enumerate()
        .map(|(v, (poly, nonce))| {
            let commitments = poly.commitments();
            let c0 = commitments
                .first()
                .copied()
                .unwrap_or_else(G1Point::generator);
            let proof = vss::prove_with_nonce(kind, session, v, me, poly.constant(), &c0, nonce);
            ValidatorDeal {
                commitments: commitments
                    .iter()
                    .map(|c| Bytes(c.to_uncompressed()))
                    .collect(),
                proof,
            }
        })
        .collect();
    let body = DealBundle {
        hellos: hellos.iter().map(Receipt::of).collect(),
        validators,
    };
    Signed::sign(identity, *session, me, body)
}

/// Evaluates `polynomials` at every holder's share index and signs one
/// share bundle each.
fn shares_from(
    context: &Context,
    session: &[u8; 32],
    me: OperatorId,
    deal: &Signed<DealBundle>,
    polynomials: &[Polynomial],
    identity: &IdentityKey,
) -> BTreeMap<OperatorId, Signed<ShareBundle>> {
    let deal_hash = Bytes(deal.body_hash());
    let plan = &context.plan;
    plan.holders()
        .iter()
        .zip(plan.indices())
        .map(|(&recipient, &x)| {
            let shares = polynomials
                .iter()
                .map(|p| ShareBytes::new(&p.evaluate(x).to_bytes_be()))
                .collect();
            let body = ShareBundle {
                recipient,
                deal_hash,
                shares,
            };
            (recipient, Signed::sign(identity, *session, me, body))
        })
        .collect()
}
