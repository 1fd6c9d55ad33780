//! The DKG protocol core: Joint-Feldman with proofs of knowledge, echoes,
//! self-proving complaints, threshold signing and a public transcript.
//!
//! Pure and sans-IO: no network, disk or clock; the RNG is a parameter. The
//! driver moves messages; this module computes. Each round is a function
//! that consumes the previous round's secret state by value and the messages
//! of every operator (its own included), keyed by the authenticated sender:
//!
//! | round | function | sends |
//! |---|---|---|
//! | 0 hello | [`start`] | [`messages::Hello`] (broadcast) |
//! | 1 deal | [`part1`] | [`messages::DealBundle`] (broadcast) and one [`messages::ShareBundle`] per operator (private) |
//! | 2 acknowledge | [`part2`] | [`messages::Ack`] (broadcast) |
//! | 3 partial signatures | [`part3`] | [`messages::PartialSignatures`] (broadcast) |
//! | 4 finalize | [`part4`] | [`messages::Finalize`] (broadcast) |
//! | output | [`finish`] | — |
//!
//! Spec: `ceremony-specs/protocol.md`. Comments quote its numbered steps.

use std::collections::BTreeMap;
use std::fmt;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ceremony::{OperatorId, Params};
use crate::crypto::identity::{IdentityKey, IdentityPublicKey};
use crate::crypto::{G1Point, G2Point, Scalar};
use crate::wire::Bytes;

#[cfg(any(test, feature = "test-utils"))]
pub mod dealer;
pub mod error;
pub mod evidence;
pub mod messages;
pub mod signing;
pub mod transcript;
pub mod vss;

pub use error::{DkgError, Evidence};
use messages::{
    Ack, AnySigned, Body, Complaint, DealBundle, Finalize, Hello, IntoAny, MessageKind,
    PartialSignatures, Receipt, ShareBundle, ShareBytes, Signed, ValidatorDeal,
};
use signing::{DepositPlan, SignatureCheck, ValidatorKeys};
use transcript::{Transcript, ValidatorRecord};
use vss::{ParsedDeal, Polynomial, ShareCheck};

/// What round 1 produces: the next state, the broadcast deal, and one share
/// bundle per recipient.
pub type Round1Output = (
    state::Round1,
    Signed<DealBundle>,
    BTreeMap<OperatorId, Signed<ShareBundle>>,
);

/// Domain of the session id (protocol.md, Round 1, Step 2).
pub const SESSION_DOMAIN: &[u8] = b"dvkg/1 session";

/// What every operator agrees on before the ceremony, from the cluster
/// definition: all of it public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// `n`, `t`, `V`.
    pub params: Params,
    /// Each operator's identity key, in operator order.
    pub roster: Vec<IdentityPublicKey>,
    /// The hash of the cluster definition.
    pub definition_hash: Bytes<32>,
    /// What each validator signs.
    pub plan: DepositPlan,
}

impl Context {
    /// Checks the context is consistent with itself.
    ///
    /// # Errors
    ///
    /// [`DkgError::InvalidInput`] naming the inconsistency.
    pub fn check(&self) -> Result<(), DkgError> {
        if self.roster.len() != self.params.operators() {
            return Err(DkgError::InvalidInput(format!(
                "{} identity keys for {} operators",
                self.roster.len(),
                self.params.operators()
            )));
        }
        if self.plan.amounts.is_empty() {
            return Err(DkgError::InvalidInput("no deposit amount".into()));
        }
        Ok(())
    }

    /// The identity key of `operator`.
    pub fn key(&self, operator: OperatorId) -> Option<&IdentityPublicKey> {
        self.roster.get(operator.position())
    }

    /// `SHA-256(SESSION_DOMAIN ‖ definition hash ‖ nonce_1 ‖ … ‖ nonce_n)`.
    pub fn session_id(&self, hellos: &[&Signed<Hello>]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(SESSION_DOMAIN);
        hasher.update(self.definition_hash.0);
        for hello in hellos {
            hasher.update(hello.body.nonce.0);
        }
        hasher.finalize().into()
    }
}

/// Secret state between rounds.
pub mod state {
    use super::*;

    /// After round 0.
    pub struct Round0 {
        pub(super) context: Context,
        pub(super) me: OperatorId,
        pub(super) hello: Signed<Hello>,
    }

    /// After round 1.
    ///
    /// # Security
    ///
    /// Holds nothing secret beyond the operator's own messages: the
    /// polynomials are dropped (and wiped) at the end of round 1, the
    /// operator's own shares travel in the share bundle addressed to itself.
    pub struct Round1 {
        pub(super) context: Context,
        pub(super) me: OperatorId,
        pub(super) session: [u8; 32],
        pub(super) hellos: Vec<Signed<Hello>>,
        pub(super) deal: Signed<DealBundle>,
    }

    /// After round 2.
    ///
    /// # Security
    ///
    /// Holds the shares received from every dealer (wiped on drop).
    pub struct Round2 {
        pub(super) context: Context,
        pub(super) me: OperatorId,
        pub(super) session: [u8; 32],
        pub(super) hellos: Vec<Signed<Hello>>,
        pub(super) deals: Vec<Signed<DealBundle>>,
        pub(super) parsed: Vec<Option<ParsedDeal>>,
        pub(super) shares: Vec<Vec<Scalar>>,
        /// `A_{v,k}` when every deal and share checked out (computed for
        /// the aggregate share check, reused in round 3).
        pub(super) aggregated: Option<Vec<G1Point>>,
        pub(super) ack: Signed<Ack>,
    }

    /// After round 3.
    ///
    /// # Security
    ///
    /// Holds this operator's secret key share of every validator (wiped on
    /// drop).
    pub struct Round3 {
        pub(super) context: Context,
        pub(super) me: OperatorId,
        pub(super) session: [u8; 32],
        pub(super) hellos: Vec<Signed<Hello>>,
        pub(super) deals: Vec<Signed<DealBundle>>,
        pub(super) acks: Vec<Signed<Ack>>,
        pub(super) keys: Vec<ValidatorKeys>,
        pub(super) hashed: Vec<Vec<G2Point>>,
        pub(super) secret_shares: Vec<Scalar>,
        pub(super) partials: Signed<PartialSignatures>,
        /// The points of `partials`, not decoded again in round 4.
        pub(super) own_partials: Vec<Vec<G2Point>>,
    }

    /// After round 4.
    ///
    /// # Security
    ///
    /// Holds this operator's secret key shares (wiped on drop).
    pub struct Round4 {
        pub(super) me: OperatorId,
        pub(super) context: Context,
        pub(super) session: [u8; 32],
        pub(super) transcript: Transcript,
        pub(super) transcript_hash: [u8; 32],
        pub(super) secret_shares: Vec<Scalar>,
        pub(super) finalize: Signed<Finalize>,
    }

    macro_rules! redacted_debug {
        ($($ty:ident),*) => {$(
            impl fmt::Debug for $ty {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, concat!(stringify!($ty), "(operator {}, <redacted>)"), self.me)
                }
            }
        )*};
    }
    redacted_debug!(Round0, Round1, Round2, Round3, Round4);
}

/// This operator's result: its secret key shares, and the public transcript
/// every operator holds byte for byte.
pub struct Output {
    /// This operator.
    pub me: OperatorId,
    /// The full public transcript, finalize signatures included.
    pub transcript: Transcript,
    /// `x_{v,me}` for every validator `v`.
    pub secret_shares: Vec<Scalar>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Output(operator {}, {} secret shares <redacted>)",
            self.me,
            self.secret_shares.len()
        )
    }
}

/// Checks that `messages` holds exactly one message per operator.
fn check_set<T>(
    params: &Params,
    kind: MessageKind,
    messages: &BTreeMap<OperatorId, T>,
) -> Result<(), DkgError> {
    let expected: Vec<OperatorId> = params.operator_ids().collect();
    let got: Vec<OperatorId> = messages.keys().copied().collect();
    if got != expected {
        return Err(DkgError::WrongMessageSet {
            kind,
            expected,
            got,
        });
    }
    Ok(())
}

/// Checks a message's header and signature against its authenticated sender
/// (protocol.md, "Signed messages", checks 2–4; check 1, decoding, is the
/// transport's).
fn check_signed<T: Body>(
    context: &Context,
    session: &[u8; 32],
    sender: OperatorId,
    message: &Signed<T>,
) -> Result<(), DkgError>
where
    Signed<T>: IntoAny,
{
    let channel = || {
        Box::new(Evidence::Channel {
            peer: sender,
            message: message.clone().into_any(),
        })
    };
    let header = &message.header;
    if header.version != messages::PROTOCOL_VERSION
        || header.kind != T::KIND
        || header.sender != sender
    {
        return Err(DkgError::WrongMessage {
            culprit: sender,
            expected: T::KIND,
            got: format!(
                "a version-{} {} message signed as operator {}",
                header.version, header.kind, header.sender
            ),
            evidence: channel(),
        });
    }
    let key = context
        .key(sender)
        .ok_or_else(|| DkgError::InvalidInput(format!("no key for operator {sender}")))?;
    if !message.signature_valid(key) {
        return Err(DkgError::BadSignature {
            culprit: sender,
            kind: T::KIND,
            evidence: channel(),
        });
    }
    if header.session.0 != *session {
        return Err(DkgError::WrongSession {
            culprit: sender,
            kind: T::KIND,
            evidence: channel(),
        });
    }
    Ok(())
}

/// Checks echoes (protocol.md, "Echoes"): every reporter's receipts of the
/// previous round's broadcasts must be well-formed, signed by their senders,
/// and identical to every other reporter's. Two different receipts for one
/// sender prove that sender equivocated.
fn check_echoes(
    context: &Context,
    echoed: MessageKind,
    echoed_session: &[u8; 32],
    reports: &[(OperatorId, &[Receipt], AnySigned)],
) -> Result<(), DkgError> {
    let n = context.params.operators();
    for (reporter, receipts, carrier) in reports {
        let evidence = || {
            Box::new(Evidence::Message {
                message: carrier.clone(),
            })
        };
        if receipts.len() != n {
            return Err(DkgError::WrongCount {
                culprit: *reporter,
                what: format!("receipts of {echoed} messages"),
                expected: n,
                got: receipts.len(),
                evidence: evidence(),
            });
        }
        for (position, receipt) in receipts.iter().enumerate() {
            let in_place = receipt.operator.position() == position;
            let signed = context
                .key(receipt.operator)
                .is_some_and(|key| receipt.valid(echoed, echoed_session, key));
            if !in_place || !signed {
                return Err(DkgError::InvalidReceipt {
                    culprit: *reporter,
                    operator: receipt.operator,
                    echoed,
                    evidence: evidence(),
                });
            }
        }
    }
    for position in 0..n {
        let mut seen: Option<&Receipt> = None;
        for (_, receipts, _) in reports {
            let Some(receipt) = receipts.get(position) else {
                continue;
            };
            match seen {
                None => seen = Some(receipt),
                Some(first) if first != receipt => {
                    return Err(DkgError::Equivocation {
                        culprit: receipt.operator,
                        echoed,
                        evidence: Box::new(Evidence::Equivocation {
                            echoed,
                            session: Bytes(*echoed_session),
                            first: *first,
                            second: *receipt,
                        }),
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// What rounds 3, 4 and the end check first, in order: one message per
/// operator, ours among them unchanged, every header and signature (local
/// blame), then the echoes of the previous round that they carry. Returns the
/// messages in operator order.
fn receive<T: Body + PartialEq>(
    context: &Context,
    session: &[u8; 32],
    me: OperatorId,
    own: &Signed<T>,
    messages: &BTreeMap<OperatorId, Signed<T>>,
    echoed: MessageKind,
    receipts: fn(&T) -> &[Receipt],
) -> Result<Vec<Signed<T>>, DkgError>
where
    Signed<T>: IntoAny,
{
    check_set(&context.params, T::KIND, messages)?;
    if messages.get(&me) != Some(own) {
        return Err(DkgError::InvalidInput(format!(
            "our own {} message is missing",
            T::KIND
        )));
    }
    for (&sender, message) in messages {
        check_signed(context, session, sender, message)?;
    }
    let list: Vec<Signed<T>> = messages.values().cloned().collect();
    let reports: Vec<(OperatorId, &[Receipt], AnySigned)> = list
        .iter()
        .map(|m| (m.header.sender, receipts(&m.body), m.clone().into_any()))
        .collect();
    check_echoes(context, echoed, session, &reports)?;
    Ok(list)
}

/// Checks that a deal signed in the session made by `hellos` echoes exactly
/// those hellos (protocol.md, Round 2, Step 2).
pub(crate) fn check_hello_echoes(
    context: &Context,
    hellos: &[Signed<Hello>],
    deal: &Signed<DealBundle>,
) -> Result<(), DkgError> {
    let dealer = deal.header.sender;
    let n = context.params.operators();
    let carrier = || {
        Box::new(Evidence::Message {
            message: deal.clone().into_any(),
        })
    };
    if deal.body.hellos.len() != n {
        return Err(DkgError::WrongCount {
            culprit: dealer,
            what: "receipts of round-0 hello messages".into(),
            expected: n,
            got: deal.body.hellos.len(),
            evidence: carrier(),
        });
    }
    for (position, (receipt, hello)) in deal.body.hellos.iter().zip(hellos).enumerate() {
        let signed = receipt.operator.position() == position
            && context.key(receipt.operator).is_some_and(|key| {
                receipt.valid(MessageKind::Hello, &context.definition_hash.0, key)
            });
        if !signed {
            return Err(DkgError::InvalidReceipt {
                culprit: dealer,
                operator: receipt.operator,
                echoed: MessageKind::Hello,
                evidence: carrier(),
            });
        }
        if *receipt != Receipt::of(hello) {
            return Err(DkgError::HelloEchoMismatch {
                culprit: dealer,
                operator: receipt.operator,
                evidence: Box::new(Evidence::HelloEcho {
                    deal: deal.clone(),
                    hellos: hellos.to_vec(),
                }),
            });
        }
    }
    Ok(())
}

/// Round 0 (protocol.md, Round 0, Steps 1–2): announce this operator with a
/// fresh nonce.
///
/// # Errors
///
/// [`DkgError::InvalidInput`] when the context is inconsistent or `identity`
/// is not `me`'s key in the roster.
pub fn start<R: RngCore + CryptoRng + ?Sized>(
    context: Context,
    me: OperatorId,
    identity: &IdentityKey,
    rng: &mut R,
) -> Result<(state::Round0, Signed<Hello>), DkgError> {
    context.check()?;
    if context.key(me) != Some(&identity.public()) {
        return Err(DkgError::InvalidInput(format!(
            "this identity is not operator {me}'s key in the definition"
        )));
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
        },
        hello,
    ))
}

/// Checks one hello (protocol.md, Round 1, Step 1; and transcript
/// verification): header, signature, the definition hash, the version and
/// the index.
pub(crate) fn check_hello(
    context: &Context,
    sender: OperatorId,
    hello: &Signed<Hello>,
) -> Result<(), DkgError> {
    let header = &hello.header;
    if header.version != messages::PROTOCOL_VERSION
        || header.kind != MessageKind::Hello
        || header.sender != sender
    {
        check_signed(context, &context.definition_hash.0, sender, hello)?;
    }
    let key = context
        .key(sender)
        .ok_or_else(|| DkgError::InvalidInput(format!("no key for operator {sender}")))?;
    if !hello.signature_valid(key) {
        return Err(DkgError::BadSignature {
            culprit: sender,
            kind: MessageKind::Hello,
            evidence: Box::new(Evidence::Channel {
                peer: sender,
                message: hello.clone().into_any(),
            }),
        });
    }
    if header.session != context.definition_hash
        || hello.body.definition_hash != context.definition_hash
    {
        return Err(DkgError::DefinitionMismatch {
            culprit: sender,
            theirs: hex::encode(hello.body.definition_hash.0),
            ours: hex::encode(context.definition_hash.0),
            evidence: Box::new(Evidence::Message {
                message: hello.clone().into_any(),
            }),
        });
    }
    if hello.body.version != messages::PROTOCOL_VERSION || hello.body.operator != sender {
        return Err(DkgError::WrongMessage {
            culprit: sender,
            expected: MessageKind::Hello,
            got: format!(
                "a version-{} hello for operator {}",
                hello.body.version, hello.body.operator
            ),
            evidence: Box::new(Evidence::Message {
                message: hello.clone().into_any(),
            }),
        });
    }
    Ok(())
}

/// Round 1 (protocol.md, Round 1): check every hello, derive the session id,
/// and deal: commitments and proofs for all, shares for each.
///
/// # Errors
///
/// A [`DkgError`] naming the operator whose hello is invalid or for another
/// definition.
pub fn part1<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round0,
    identity: &IdentityKey,
    hellos: &BTreeMap<OperatorId, Signed<Hello>>,
    rng: &mut R,
) -> Result<Round1Output, DkgError> {
    let state::Round0 {
        context,
        me,
        hello: my_hello,
    } = state;
    let params = context.params;
    check_set(&params, MessageKind::Hello, hellos)?;
    if hellos.get(&me) != Some(&my_hello) {
        return Err(DkgError::InvalidInput(
            "our own hello is missing from the hellos".into(),
        ));
    }
    for (&sender, hello) in hellos {
        // Round 1, Step 1
        // > Check every hello: header, signature, version, index, and that the
        // > definition hash is ours.
        check_hello(&context, sender, hello)?;
    }
    let hellos: Vec<Signed<Hello>> = hellos.values().cloned().collect();
    // Round 1, Step 2
    // > session id = SHA-256("dvkg/1 session" ‖ definition hash ‖ all nonces
    // > in operator order).
    let session = context.session_id(&hellos.iter().collect::<Vec<_>>());

    // Round 1, Step 3
    // > For each validator v, sample f_v of degree t-1, commit C_{v,k} = a_{v,k}·G1,
    // > and prove knowledge of a_{v,0}.
    let polynomials: Vec<Polynomial> = (0..params.validators())
        .map(|_| Polynomial::random(params.threshold(), rng))
        .collect();
    let deal = deal_from(&session, me, &hellos, &polynomials, identity, rng);
    // Round 1, Step 4
    // > Send operator i, privately, f_v(i) for every v, bound to the deal's hash.
    let shares = shares_from(&context, &session, me, &deal, &polynomials, identity);
    drop(polynomials);
    Ok((
        state::Round1 {
            context,
            me,
            session,
            hellos,
            deal: deal.clone(),
        },
        deal,
        shares,
    ))
}

/// Builds and signs a deal for `polynomials`.
pub(crate) fn deal_from<R: RngCore + CryptoRng + ?Sized>(
    session: &[u8; 32],
    me: OperatorId,
    hellos: &[Signed<Hello>],
    polynomials: &[Polynomial],
    identity: &IdentityKey,
    rng: &mut R,
) -> Signed<DealBundle> {
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
            let proof = vss::prove_with_nonce(session, v, me, poly.constant(), &c0, nonce);
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

/// Evaluates `polynomials` at every operator and signs one share bundle each.
pub(crate) fn shares_from(
    context: &Context,
    session: &[u8; 32],
    me: OperatorId,
    deal: &Signed<DealBundle>,
    polynomials: &[Polynomial],
    identity: &IdentityKey,
) -> BTreeMap<OperatorId, Signed<ShareBundle>> {
    let deal_hash = Bytes(deal.body_hash());
    context
        .params
        .operator_ids()
        .map(|recipient| {
            let shares = polynomials
                .iter()
                .map(|p| ShareBytes::new(&p.evaluate(recipient).to_bytes_be()))
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

/// Round 2 (protocol.md, Round 2): check every deal and this operator's
/// shares, and acknowledge with echoes and complaints.
///
/// Problems with a deal's content or with shares become complaints in the
/// ack, so that every operator can judge them in round 3; only problems seen
/// on a peer's channel (bad signature, wrong session) abort here.
///
/// # Errors
///
/// A [`DkgError`] naming the operator whose message is invalid.
pub fn part2<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round1,
    identity: &IdentityKey,
    deals: &BTreeMap<OperatorId, Signed<DealBundle>>,
    shares: &BTreeMap<OperatorId, Signed<ShareBundle>>,
    rng: &mut R,
) -> Result<(state::Round2, Signed<Ack>), DkgError> {
    let state::Round1 {
        context,
        me,
        session,
        hellos,
        deal: my_deal,
    } = state;
    let params = context.params;
    check_set(&params, MessageKind::Deal, deals)?;
    check_set(&params, MessageKind::Shares, shares)?;
    if deals.get(&me) != Some(&my_deal) {
        return Err(DkgError::InvalidInput(
            "our own deal is missing from the deals".into(),
        ));
    }
    // Round 2, Step 1
    // > Check every deal's header and signature. A deal for another session
    // > is explained by the hello echoes: an operator that signed two hellos
    // > equivocated; otherwise the dealer is at fault.
    for (&dealer, deal) in deals {
        if let Err(err) = check_signed(&context, &session, dealer, deal) {
            if matches!(err, DkgError::WrongSession { .. })
                && let Some(position) = deal
                    .body
                    .hellos
                    .iter()
                    .zip(&hellos)
                    .position(|(r, h)| *r != Receipt::of(h))
                && let (Some(theirs), Some(ours)) =
                    (deal.body.hellos.get(position), hellos.get(position))
                && context.key(theirs.operator).is_some_and(|key| {
                    theirs.valid(MessageKind::Hello, &context.definition_hash.0, key)
                })
            {
                // Two hellos signed by one operator: it equivocated, or the
                // dealer replayed an old one. Nothing here tells which.
                return Err(DkgError::ConflictingHellos {
                    operator: theirs.operator,
                    reporter: dealer,
                    receiver: me,
                    evidence: Box::new(Evidence::Equivocation {
                        echoed: MessageKind::Hello,
                        session: context.definition_hash,
                        first: Receipt::of(ours),
                        second: *theirs,
                    }),
                });
            }
            return Err(err);
        }
    }
    for (&dealer, bundle) in shares {
        check_signed(&context, &session, dealer, bundle)?;
        if bundle.body.recipient != me {
            return Err(DkgError::WrongMessage {
                culprit: dealer,
                expected: MessageKind::Shares,
                got: format!("shares addressed to operator {}", bundle.body.recipient),
                evidence: Box::new(Evidence::Channel {
                    peer: dealer,
                    message: bundle.clone().into_any(),
                }),
            });
        }
    }
    // Round 2, Step 2
    // > Check the hello echoes in every deal against the hellos received: a
    // > deal signed in our session must echo exactly the hellos that make it.
    let deals: Vec<Signed<DealBundle>> = deals.values().cloned().collect();
    for deal in &deals {
        check_hello_echoes(&context, &hellos, deal)?;
    }
    // Round 2, Step 3
    // > Check every deal's counts and encodings (points on the curve and not
    // > the identity; the subgroup check is deferred), then every proof of
    // > knowledge (one random linear combination; on failure, each deal in
    // > full, subgroup included, and each proof on its own). An invalid deal
    // > becomes a BadDeal complaint.
    let mut complaints = Vec::new();
    let mut parsed: Vec<Option<ParsedDeal>> = Vec::with_capacity(deals.len());
    for deal in &deals {
        match vss::parse_deal_subgroup_deferred(&params, deal) {
            Ok(p) => parsed.push(Some(p)),
            Err(_) => {
                complaints.push(Complaint::BadDeal { deal: deal.clone() });
                parsed.push(None);
            }
        }
    }
    let candidates: Vec<&ParsedDeal> = parsed.iter().flatten().collect();
    let mut bad_proofs = Vec::new();
    if vss::first_invalid_proof(&session, &candidates, rng).is_some() {
        for deal in &candidates {
            let in_subgroup = deals
                .get(deal.dealer.position())
                .is_some_and(|d| vss::parse_deal(&params, d).is_ok());
            if !in_subgroup || (0..deal.proofs.len()).any(|v| !vss::proof_valid(&session, deal, v))
            {
                bad_proofs.push(deal.dealer);
            }
        }
    }
    for dealer in bad_proofs {
        if let (Some(slot), Some(deal)) = (
            parsed.get_mut(dealer.position()),
            deals.get(dealer.position()),
        ) {
            *slot = None;
            complaints.push(Complaint::BadDeal { deal: deal.clone() });
        }
    }

    // Round 2, Step 4
    // > Check this operator's shares from every valid deal: bound to the
    // > deal's hash, one per validator, canonical, and matching the
    // > commitments (their sum against the aggregated commitments as one
    // > random linear combination; on failure, each dealer's as one, then
    // > one by one). Bad shares become a BadShares complaint revealing them.
    let mut received: Vec<Vec<Scalar>> = vec![Vec::new(); params.operators()];
    for (deal, bundle) in parsed.iter().zip(shares.values()) {
        let Some(deal) = deal else { continue };
        let hash_ok = deals
            .get(deal.dealer.position())
            .is_some_and(|d| d.body_hash() == bundle.body.deal_hash.0);
        let decoded: Option<Vec<Scalar>> =
            if hash_ok && bundle.body.shares.len() == params.validators() {
                bundle
                    .body
                    .shares
                    .iter()
                    .map(|s| Scalar::from_bytes_be(s.expose_secret()))
                    .collect()
            } else {
                None
            };
        match decoded {
            Some(values) => {
                if let Some(slot) = received.get_mut(deal.dealer.position()) {
                    *slot = values;
                }
            }
            None => complaints.push(Complaint::BadShares {
                shares: bundle.clone(),
            }),
        }
    }
    let checks: Vec<ShareCheck<'_>> = parsed
        .iter()
        .flatten()
        .filter_map(|deal| {
            let values = received.get(deal.dealer.position())?;
            (values.len() == params.validators()).then_some(ShareCheck {
                dealer: deal.dealer,
                commitments: &deal.commitments,
                shares: values,
            })
        })
        .collect();
    // The shares in aggregate first: x_v = Σ_j s_vj against A_{v,k} = Σ_j
    // C_{vj,k}, which is all the key share needs; the dealers one by one
    // only if that fails, to name them.
    let aggregated = (checks.len() == params.operators()).then(|| {
        let commitments: Vec<&[Vec<G1Point>]> = checks.iter().map(|c| c.commitments).collect();
        signing::aggregate(&params, &commitments)
    });
    let aggregate_valid = aggregated.as_ref().is_some_and(|aggregated| {
        let per_validator: Vec<Vec<G1Point>> = aggregated
            .chunks(params.threshold())
            .map(<[G1Point]>::to_vec)
            .collect();
        let sums: Vec<Scalar> = (0..params.validators())
            .map(|v| {
                checks
                    .iter()
                    .filter_map(|c| c.shares.get(v))
                    .fold(Scalar::ZERO, |acc, s| acc.add(s))
            })
            .collect();
        let total = ShareCheck {
            dealer: me,
            commitments: &per_validator,
            shares: &sums,
        };
        vss::first_invalid_share(me, std::slice::from_ref(&total), rng).is_none()
    });
    if !aggregate_valid && vss::first_invalid_share(me, &checks, rng).is_some() {
        for check in &checks {
            let bad = check
                .commitments
                .iter()
                .zip(check.shares)
                .any(|(c, s)| !vss::share_valid(me, c, s));
            if bad && let Some(bundle) = shares.get(&check.dealer) {
                complaints.push(Complaint::BadShares {
                    shares: bundle.clone(),
                });
            }
        }
    }
    complaints.sort_by_key(Complaint::dealer);

    // Round 2, Step 5
    // > Broadcast a signed ack: a receipt of every deal, and the complaints.
    let ack = Ack {
        deals: deals.iter().map(Receipt::of).collect(),
        complaints,
    };
    let ack = Signed::sign(identity, session, me, ack);
    let state = state::Round2 {
        context,
        me,
        session,
        hellos,
        deals,
        parsed,
        shares: received,
        aggregated,
        ack: ack.clone(),
    };
    Ok((state, ack))
}

/// Judges one complaint (protocol.md, Round 3, Step 3): the evidence either
/// convicts the dealer or the complainer.
pub(crate) fn judge(
    context: &Context,
    session: &[u8; 32],
    agreed: Option<&Signed<DealBundle>>,
    ack: &Signed<Ack>,
    complaint: &Complaint,
) -> DkgError {
    let complainer = ack.header.sender;
    let dealer = complaint.dealer();
    let false_complaint = || DkgError::FalseComplaint {
        culprit: complainer,
        dealer,
        evidence: Box::new(Evidence::Ack {
            ack: ack.clone(),
            deal: agreed.cloned(),
        }),
    };
    let Some(agreed) = agreed else {
        return false_complaint();
    };
    let Some(key) = context.key(dealer) else {
        return false_complaint();
    };
    // Round 3, Step 3
    // > The deal judged against must be the one the complainer acknowledged:
    // > its receipt in the complainer's ack, in the ack's session, signed by
    // > the dealer. Otherwise the evidence proves nothing about this ceremony.
    let acknowledged = ack.body.deals.get(dealer.position()) == Some(&Receipt::of(agreed))
        && agreed.header.session == ack.header.session
        && agreed.header.kind == MessageKind::Deal
        && agreed.signature_valid(key);
    if !acknowledged {
        return DkgError::InvalidInput(format!(
            "the deal offered as evidence is not the one operator {complainer} acknowledged"
        ));
    }
    match complaint {
        Complaint::BadDeal { deal } => {
            let genuine = deal.signature_valid(key)
                && deal.header.session.0 == *session
                && deal.header.kind == MessageKind::Deal;
            if !genuine {
                return false_complaint();
            }
            if deal != agreed {
                return DkgError::Equivocation {
                    culprit: dealer,
                    echoed: MessageKind::Deal,
                    evidence: Box::new(Evidence::Equivocation {
                        echoed: MessageKind::Deal,
                        session: Bytes(*session),
                        first: Receipt::of(agreed),
                        second: Receipt::of(deal),
                    }),
                };
            }
            match vss::parse_deal(&context.params, deal) {
                Err(err) => err,
                Ok(parsed) => match (0..parsed.proofs.len())
                    .find(|&v| !vss::proof_valid(session, &parsed, v))
                {
                    Some(validator) => DkgError::InvalidProof {
                        culprit: dealer,
                        validator,
                        evidence: Box::new(Evidence::Deal { deal: deal.clone() }),
                    },
                    None => false_complaint(),
                },
            }
        }
        Complaint::BadShares { shares } => {
            let genuine = shares.signature_valid(key)
                && shares.header.session.0 == *session
                && shares.header.kind == MessageKind::Shares
                && shares.body.recipient == complainer;
            if !genuine {
                return false_complaint();
            }
            shares_verdict(context, session, agreed, shares).unwrap_or_else(false_complaint)
        }
    }
}

/// The dealer's fault shown by `shares` against its deal, if any.
pub(crate) fn shares_verdict(
    context: &Context,
    session: &[u8; 32],
    deal: &Signed<DealBundle>,
    shares: &Signed<ShareBundle>,
) -> Option<DkgError> {
    let dealer = deal.header.sender;
    let complainer = shares.body.recipient;
    let evidence = || {
        Box::new(Evidence::Shares {
            deal: deal.clone(),
            shares: shares.clone(),
        })
    };
    // A deal that is invalid on its own (a point outside the subgroup, a bad
    // proof) is the fault, whatever the shares.
    let parsed = match vss::parse_deal(&context.params, deal) {
        Ok(parsed) => parsed,
        Err(err) => return Some(err),
    };
    if let Some(validator) =
        (0..parsed.proofs.len()).find(|&v| !vss::proof_valid(session, &parsed, v))
    {
        return Some(DkgError::InvalidProof {
            culprit: dealer,
            validator,
            evidence: Box::new(Evidence::Deal { deal: deal.clone() }),
        });
    }
    if shares.body.deal_hash.0 != deal.body_hash() {
        return Some(DkgError::SharesForAnotherDeal {
            culprit: dealer,
            complainer,
            evidence: evidence(),
        });
    }
    if shares.body.shares.len() != context.params.validators() {
        return Some(DkgError::WrongCount {
            culprit: dealer,
            what: "shares".into(),
            expected: context.params.validators(),
            got: shares.body.shares.len(),
            evidence: evidence(),
        });
    }
    for (validator, (bytes, commitments)) in shares
        .body
        .shares
        .iter()
        .zip(&parsed.commitments)
        .enumerate()
    {
        let Some(share) = Scalar::from_bytes_be(bytes.expose_secret()) else {
            return Some(DkgError::InvalidScalar {
                culprit: dealer,
                validator,
                item: "share".into(),
                evidence: evidence(),
            });
        };
        if !vss::share_valid(complainer, commitments, &share) {
            return Some(DkgError::InvalidShare {
                culprit: dealer,
                complainer,
                validator,
                evidence: evidence(),
            });
        }
    }
    None
}

/// Round 3 (protocol.md, Round 3): check the acks (echoes and complaints),
/// derive the group keys and public shares, and partial-sign every deposit.
///
/// # Errors
///
/// A [`DkgError`] naming the culprit: an equivocating dealer, a dealer
/// convicted by a complaint, or a false complainer.
pub fn part3<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round2,
    identity: &IdentityKey,
    acks: &BTreeMap<OperatorId, Signed<Ack>>,
    rng: &mut R,
) -> Result<(state::Round3, Signed<PartialSignatures>), DkgError> {
    let state::Round2 {
        context,
        me,
        session,
        hellos,
        deals,
        parsed,
        shares,
        aggregated,
        ack: my_ack,
    } = state;
    let params = context.params;
    let _ = rng;
    // Round 3, Step 1
    // > Check every ack's header and signature.
    // Round 3, Step 2
    // > Check the deal echoes in every ack: identical receipts, or the dealer
    // > equivocated.
    let acks = receive(
        &context,
        &session,
        me,
        &my_ack,
        acks,
        MessageKind::Deal,
        |a: &Ack| &a.deals,
    )?;
    // Round 3, Step 3
    // > Judge every complaint, in complainer order: the first verdict aborts
    // > the ceremony, naming the dealer or the false complainer.
    for ack in &acks {
        if let Some(complaint) = ack.body.complaints.first() {
            return Err(judge(
                &context,
                &session,
                deals.get(complaint.dealer().position()),
                ack,
                complaint,
            ));
        }
    }
    // Without complaints every deal parsed and every share arrived.
    let commitments: Vec<&[Vec<G1Point>]> = parsed
        .iter()
        .flatten()
        .map(|p| p.commitments.as_slice())
        .collect();
    if commitments.len() != params.operators()
        || shares.iter().any(|s| s.len() != params.validators())
    {
        return Err(DkgError::InvalidInput(
            "a deal or share failed locally but no complaint was made".into(),
        ));
    }
    // Round 3, Step 4
    // > Derive A_{v,k} = Σ_j C_{vj,k} and check that each is in the
    // > prime-order subgroup (if one is not, name the first dealer whose
    // > deal has a point outside it); derive the group key Y_v = A_{v,0} and
    // > every public share PK_{v,m} = Σ_k m^k A_{v,k}; the secret share is
    // > x_{v,i} = Σ_j f_{vj}(i).
    let aggregated = aggregated.unwrap_or_else(|| signing::aggregate(&params, &commitments));
    vss::check_aggregate(&params, &aggregated, &deals)?;
    let keys = signing::keys_from_aggregate(&params, &aggregated);
    let secret_shares: Vec<Scalar> = (0..params.validators())
        .map(|v| {
            shares
                .iter()
                .filter_map(|s| s.get(v))
                .fold(Scalar::ZERO, |acc, s| acc.add(s))
        })
        .collect();
    drop(shares);
    // Round 3, Step 5
    // > Partial-sign every deposit message of every validator and broadcast
    // > the signatures with a receipt of every ack.
    let hashed: Vec<Vec<G2Point>> = keys
        .par_iter()
        .map(|k| context.plan.hashed_messages(&k.group_key))
        .collect();
    let own_partials: Vec<Vec<G2Point>> = hashed
        .par_iter()
        .zip(&secret_shares)
        .map(|(messages, x)| messages.iter().map(|h| h.mul(x)).collect())
        .collect();
    let body = PartialSignatures {
        acks: acks.iter().map(Receipt::of).collect(),
        signatures: own_partials
            .iter()
            .map(|row| row.iter().map(|s| Bytes(s.to_uncompressed())).collect())
            .collect(),
    };
    let partials = Signed::sign(identity, session, me, body);
    let state = state::Round3 {
        context,
        me,
        session,
        hellos,
        deals,
        acks,
        keys,
        hashed,
        secret_shares,
        partials: partials.clone(),
        own_partials,
    };
    Ok((state, partials))
}

/// Decodes and counts one operator's partial signatures.
pub(crate) fn parse_partials(
    context: &Context,
    deals: &[Signed<DealBundle>],
    ack: &Signed<Ack>,
    message: &Signed<PartialSignatures>,
) -> Result<Vec<Vec<G2Point>>, DkgError> {
    let signer = message.header.sender;
    let evidence = || {
        Box::new(Evidence::Partials {
            partials: message.clone(),
            ack: ack.clone(),
            deals: deals.to_vec(),
        })
    };
    let rows = &message.body.signatures;
    if rows.len() != context.params.validators() {
        return Err(DkgError::WrongCount {
            culprit: signer,
            what: "validator rows of partial signatures".into(),
            expected: context.params.validators(),
            got: rows.len(),
            evidence: evidence(),
        });
    }
    // Decoded on every core (a subgroup check each); the first failure in
    // validator order is the one named, whatever the cores. The parallel
    // part reports failures in a few bytes: the evidence (a copy of every
    // deal) is built once, for the failure named.
    enum Fault {
        Count(usize),
        Point(usize, crate::crypto::BlsError),
    }
    let decoded: Vec<Result<Vec<G2Point>, Fault>> = rows
        .par_iter()
        .map(|row| {
            if row.len() != context.plan.deposits() {
                return Err(Fault::Count(row.len()));
            }
            row.iter()
                .enumerate()
                .map(|(d, bytes)| {
                    G2Point::from_uncompressed(&bytes.0).map_err(|e| Fault::Point(d, e))
                })
                .collect()
        })
        .collect();
    decoded
        .into_iter()
        .enumerate()
        .map(|(v, row)| {
            row.map_err(|fault| match fault {
                Fault::Count(got) => DkgError::WrongCount {
                    culprit: signer,
                    what: format!("partial signatures for validator {v}"),
                    expected: context.plan.deposits(),
                    got,
                    evidence: evidence(),
                },
                Fault::Point(d, reason) => DkgError::InvalidPoint {
                    culprit: signer,
                    validator: v,
                    item: format!("partial signature for deposit {d}"),
                    reason,
                    evidence: evidence(),
                },
            })
        })
        .collect()
}

/// What the partial signatures are checked against.
#[derive(Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// Every validator's keys.
    pub(crate) keys: &'a [ValidatorKeys],
    /// `hashed[v][d]`: `H(m)` of validator `v`'s deposit `d`.
    pub(crate) hashed: &'a [Vec<G2Point>],
    /// This operator's position and its own partial signatures.
    pub(crate) own: Option<(usize, &'a [Vec<G2Point>])>,
}

/// Verifies every partial signature (batched; one by one on failure, naming
/// the first bad signer in operator order), combines the first `t` per
/// deposit, and checks the combined signatures in the same batch.
///
/// `expected.own` is this operator's position and the points of its own
/// partial signatures, which it computed and so does not decode (and
/// subgroup-check) again; `None` when verifying a transcript.
pub(crate) fn verify_and_combine<R: RngCore + CryptoRng + ?Sized>(
    context: &Context,
    deals: &[Signed<DealBundle>],
    acks: &[Signed<Ack>],
    partials: &[Signed<PartialSignatures>],
    expected: &Expected<'_>,
    rng: &mut R,
) -> Result<Vec<Vec<G2Point>>, DkgError> {
    let Expected { keys, hashed, own } = *expected;
    let t = context.params.threshold();
    let decoded: Vec<Vec<Vec<G2Point>>> = partials
        .iter()
        .zip(acks)
        .enumerate()
        .map(|(position, (m, ack))| match own {
            Some((mine, points)) if mine == position => Ok(points.to_vec()),
            _ => parse_partials(context, deals, ack, m),
        })
        .collect::<Result<_, _>>()?;
    // combined[v][d]
    let combined: Vec<Vec<G2Point>> = (0..context.params.validators())
        .map(|v| {
            (0..context.plan.deposits())
                .map(|d| {
                    let firsts: Vec<G2Point> = decoded
                        .iter()
                        .take(t)
                        .filter_map(|p| p.get(v).and_then(|row| row.get(d)).copied())
                        .collect();
                    signing::combine_first_t(&firsts, t)
                })
                .collect()
        })
        .collect();
    let checks: Vec<SignatureCheck<'_>> = keys
        .iter()
        .zip(hashed)
        .zip(&combined)
        .enumerate()
        .map(|(v, ((keys, messages), combined))| SignatureCheck {
            keys,
            messages,
            partials: decoded
                .iter()
                .filter_map(|p| p.get(v).map(Vec::as_slice))
                .collect(),
            combined,
        })
        .collect();
    if signing::batch_valid(&checks, rng) {
        return Ok(combined);
    }
    // Round 4, Step 3
    // > On failure, check one by one and name the first bad signer.
    for (signer, rows) in decoded.iter().enumerate() {
        for (v, row) in rows.iter().enumerate() {
            for (d, sigma) in row.iter().enumerate() {
                let (Some(key), Some(message)) = (
                    keys.get(v).and_then(|k| k.public_shares.get(signer)),
                    hashed.get(v).and_then(|h| h.get(d)),
                ) else {
                    continue;
                };
                if !signing::signature_valid(key, message, sigma) {
                    let culprit = OperatorId::from_position(signer)
                        .map_err(|_| DkgError::InvalidInput("signer index out of range".into()))?;
                    return Err(DkgError::InvalidPartialSignature {
                        culprit,
                        validator: v,
                        deposit: d,
                        evidence: Box::new(Evidence::Partials {
                            partials: partials
                                .get(signer)
                                .cloned()
                                .ok_or_else(|| DkgError::InvalidInput("missing partials".into()))?,
                            ack: acks
                                .get(signer)
                                .cloned()
                                .ok_or_else(|| DkgError::InvalidInput("missing ack".into()))?,
                            deals: deals.to_vec(),
                        }),
                    });
                }
            }
        }
    }
    Err(DkgError::InvalidInput(
        "valid partial signatures combined into an invalid signature".into(),
    ))
}

/// Round 4 (protocol.md, Round 4): verify every partial signature, combine,
/// and sign the transcript.
///
/// # Errors
///
/// A [`DkgError`] naming the signer of an invalid partial signature, or an
/// operator that equivocated in round 2.
pub fn part4<R: RngCore + CryptoRng + ?Sized>(
    state: state::Round3,
    identity: &IdentityKey,
    partials: &BTreeMap<OperatorId, Signed<PartialSignatures>>,
    rng: &mut R,
) -> Result<(state::Round4, Signed<Finalize>), DkgError> {
    let state::Round3 {
        context,
        me,
        session,
        hellos,
        deals,
        acks,
        keys,
        hashed,
        secret_shares,
        partials: mine,
        own_partials,
    } = state;
    // Round 4, Step 1
    // > Check every message's header and signature, then the ack echoes.
    let partials = receive(
        &context,
        &session,
        me,
        &mine,
        partials,
        MessageKind::Ack,
        |p: &PartialSignatures| &p.acks,
    )?;
    // Round 4, Step 2
    // > Verify all partial signatures and the combined signatures of the
    // > first t operators in one batch.
    let combined = verify_and_combine(
        &context,
        &deals,
        &acks,
        &partials,
        &Expected {
            keys: &keys,
            hashed: &hashed,
            own: Some((me.position(), &own_partials)),
        },
        rng,
    )?;
    // Round 4, Step 4
    // > Build the transcript and sign its hash.
    let validators = keys
        .iter()
        .zip(&combined)
        .map(|(k, sigs)| ValidatorRecord {
            group_key: Bytes(k.group_key.to_bytes()),
            public_shares: k
                .public_shares
                .iter()
                .map(|p| Bytes(p.to_bytes()))
                .collect(),
            signatures: sigs.iter().map(|s| Bytes(s.to_bytes())).collect(),
        })
        .collect();
    let transcript = Transcript::new(context.clone(), hellos, deals, acks, partials, validators);
    let transcript_hash = transcript.hash();
    let body = Finalize {
        partials: transcript.partials.iter().map(Receipt::of).collect(),
        transcript_hash: Bytes(transcript_hash),
    };
    let finalize = Signed::sign(identity, session, me, body);
    Ok((
        state::Round4 {
            me,
            context,
            session,
            transcript,
            transcript_hash,
            secret_shares,
            finalize: finalize.clone(),
        },
        finalize,
    ))
}

/// The end (protocol.md, Round 4, Step 5): every operator signed the same
/// transcript; return this operator's shares and the full transcript.
///
/// # Errors
///
/// A [`DkgError`] naming an operator that equivocated in round 3 or signed
/// another transcript.
pub fn finish(
    state: state::Round4,
    finals: &BTreeMap<OperatorId, Signed<Finalize>>,
) -> Result<Output, DkgError> {
    let state::Round4 {
        me,
        context,
        session,
        mut transcript,
        transcript_hash,
        secret_shares,
        finalize,
    } = state;
    let finals = receive(
        &context,
        &session,
        me,
        &finalize,
        finals,
        MessageKind::Partials,
        |f: &Finalize| &f.partials,
    )?;
    for message in &finals {
        if message.body.transcript_hash.0 != transcript_hash {
            return Err(DkgError::FinalizeMismatch {
                culprit: message.header.sender,
                evidence: Box::new(Evidence::Finalize {
                    finalize: message.clone(),
                    expected_hash: Bytes(transcript_hash),
                }),
            });
        }
    }
    transcript.finals = finals;
    Ok(Output {
        me,
        transcript,
        secret_shares,
    })
}
