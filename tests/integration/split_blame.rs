//! The split ceremony in process (the library's runner): one dealer (the
//! last participant, holding no share) deals existing validator keys to
//! four operators. The happy path recovers the keys from any three shares
//! and signs as the original keys do; each fault names its culprit with
//! evidence that convicts it on its own, as the DKG's blame suite does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use dvkg::ceremony::OperatorId;
use dvkg::crypto::{G1Point, G2Point, Scalar, SecretKey};
use dvkg::dkg::error::KnownConstant;
use dvkg::dkg::evidence::verify_evidence;
use dvkg::dkg::messages::{Complaint, MessageKind, ShareBundle, Signed};
use dvkg::dkg::plan::{CeremonyKind, Combine, Participant, Plan, RawPlan, ShareIndex};
use dvkg::dkg::signing::{PossessionOnly, lagrange_at_zero, possession_message};
use dvkg::dkg::{Context, DkgError, KnownSecrets};
use dvkg::wire::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::dkg_harness::{Cluster, Hooks, Run, Views, id, resign, run};

const OPERATORS: usize = 4;
const THRESHOLD: u8 = 3;
const VALIDATORS: usize = 2;
/// The dealer's slot: after the operators.
const DEALER: u8 = OPERATORS as u8 + 1;

/// A split of `VALIDATORS` random keys to four operators at indices 1..4
/// (or `indices`), with the keys' secrets.
fn split(seed: u64, indices: &[u64]) -> (Cluster, Vec<Scalar>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let secrets: Vec<Scalar> = (0..VALIDATORS).map(|_| Scalar::random(&mut rng)).collect();
    let keys: Vec<_> = (0..=OPERATORS)
        .map(|_| dvkg::crypto::identity::IdentityKey::generate(&mut rng))
        .collect();
    let mut participants: Vec<Participant> = keys
        .iter()
        .take(OPERATORS)
        .zip(indices)
        .map(|(k, &x)| Participant {
            identity: k.public(),
            deals: false,
            share: Some(ShareIndex::try_from(x).unwrap()),
        })
        .collect();
    participants.push(Participant {
        identity: keys[OPERATORS].public(),
        deals: true,
        share: None,
    });
    let plan = Plan::new(RawPlan {
        kind: CeremonyKind::Split,
        participants,
        threshold: THRESHOLD,
        validators: VALIDATORS as u32,
        combine: Combine::Split {
            group_keys: secrets
                .iter()
                .map(|s| Bytes(G1Point::mul_generator(s).to_bytes()))
                .collect(),
        },
        statements: vec![dvkg::dkg::plan::Statement {
            kind: dvkg::dkg::plan::StatementKind::Possession,
            params: dvkg::wire::VarBytes(Vec::new()),
        }],
        attachments: None,
    })
    .unwrap();
    let context = Context {
        plan,
        definition_hash: Bytes([0x5b; 32]),
    };
    (
        Cluster::new(context, keys, Arc::new(PossessionOnly)),
        secrets,
    )
}

/// The dealer's known secrets, for the runner.
fn known(secrets: &[Scalar]) -> BTreeMap<OperatorId, Vec<Scalar>> {
    BTreeMap::from([(id(DEALER), secrets.to_vec())])
}

#[test]
fn a_split_recovers_the_keys_and_signs_as_they_do() {
    for indices in [[1u64, 2, 3, 4], [11, 27, 103, 404]] {
        let (cluster, secrets) = split(1, &indices);
        let result = run(
            &cluster,
            Hooks {
                known: known(&secrets),
                ..Hooks::default()
            },
            1,
        );
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        // Every participant, the dealer included, finished with the same
        // transcript; the dealer holds nothing.
        assert_eq!(result.outputs.len(), OPERATORS + 1);
        assert!(result.outputs[&id(DEALER)].secret_shares.is_empty());
        let transcript = &result.outputs[&id(1)].transcript;
        assert_eq!(transcript.finals.len(), OPERATORS + 1);
        let session = transcript.session_id();
        // Any three operators' shares interpolate to the original secret,
        // and sign the possession message as the original key does.
        for chosen in [[1u8, 2, 3], [2, 3, 4], [1, 3, 4]] {
            let xs: Vec<ShareIndex> = chosen
                .iter()
                .map(|&o| ShareIndex::try_from(indices[usize::from(o) - 1]).unwrap())
                .collect();
            let lambdas = lagrange_at_zero(&xs);
            for (v, secret) in secrets.iter().enumerate() {
                let recovered = chosen
                    .iter()
                    .zip(&lambdas)
                    .fold(Scalar::ZERO, |acc, (&o, l)| {
                        acc.add(&l.mul(&result.outputs[&id(o)].secret_shares[v]))
                    });
                assert_eq!(&recovered, secret, "validator {v} from {chosen:?}");
                let key = SecretKey::from_bytes(&secret.to_bytes_be()).unwrap();
                let group_key = G1Point::mul_generator(secret);
                let message =
                    possession_message(&cluster.context.plan, &session, v, &group_key.to_bytes());
                let signed = transcript.validators[v].signatures[0].0;
                assert_eq!(key.sign(&message).to_bytes(), signed);
                assert_eq!(G2Point::hash(&message).mul(secret).to_bytes(), signed);
            }
        }
    }
}

/// Every operator but the faulty party aborted naming `culprit`, with
/// evidence that proves it standalone.
#[track_caller]
fn assert_blamed(
    cluster: &Cluster,
    result: &Run,
    culprit: u8,
    expected: impl Fn(&DkgError) -> bool,
) {
    assert!(
        result.outputs.is_empty(),
        "the split completed despite the fault"
    );
    for op in cluster.ids().into_iter().filter(|&o| o != id(culprit)) {
        let err = result
            .errors
            .get(&op)
            .unwrap_or_else(|| panic!("participant {op} did not abort: {:?}", result.errors));
        assert_eq!(err.culprit(), Some(id(culprit)), "participant {op}: {err}");
        assert!(expected(err), "participant {op}: {err:?}");
        let evidence = err.evidence().expect("a blame carries evidence");
        let verdict = verify_evidence(&cluster.context, cluster.statements(), evidence)
            .unwrap_or_else(|e| panic!("participant {op}'s evidence does not verify: {e}"));
        assert_eq!(verdict.culprit, id(culprit));
        assert!(verdict.proven, "{}", verdict.fault);
    }
}

#[test]
fn a_dealer_whose_constant_is_not_the_key_is_convicted() {
    let (cluster, secrets) = split(2, &[1, 2, 3, 4]);
    let mut wrong = secrets.clone();
    wrong[1] = wrong[1].add(&Scalar::ONE);
    let result = run(
        &cluster,
        Hooks {
            known: known(&wrong),
            ..Hooks::default()
        },
        2,
    );
    assert_blamed(&cluster, &result, DEALER, |e| {
        matches!(
            e,
            DkgError::WrongConstant {
                validator: 1,
                expected: KnownConstant::ValidatorKey,
                ..
            }
        )
    });
}

#[test]
fn a_bad_share_to_one_operator_convicts_the_dealer() {
    let (cluster, secrets) = split(3, &[1, 2, 3, 4]);
    let hooks = Hooks {
        known: known(&secrets),
        shares: Some(Box::new(|c: &Cluster, views: &mut Views<ShareBundle>| {
            let message = views.get_mut(&id(3)).unwrap().get_mut(&id(DEALER)).unwrap();
            let mut raw = *message.body.shares[0].expose_secret();
            raw[31] ^= 1;
            message.body.shares[0] =
                dvkg::dkg::messages::ShareBytes::new(&dvkg::crypto::SecretBytes::new(&mut raw));
            resign(c, message);
        })),
        ..Hooks::default()
    };
    let result = run(&cluster, hooks, 3);
    assert_blamed(
        &cluster,
        &result,
        DEALER,
        |e| matches!(e, DkgError::InvalidShare { complainer, validator: 0, .. } if *complainer == id(3)),
    );
}

#[test]
fn an_equivocating_dealer_is_convicted() {
    let (cluster, secrets) = split(4, &[1, 2, 3, 4]);
    let hooks = Hooks {
        known: known(&secrets),
        deals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            let message = views.get_mut(&id(4)).unwrap().get_mut(&id(DEALER)).unwrap();
            message.body.validators[0].proof.z.0[31] ^= 1;
            resign(c, message);
        })),
        ..Hooks::default()
    };
    let result = run(&cluster, hooks, 4);
    assert_blamed(&cluster, &result, DEALER, |e| {
        matches!(
            e,
            DkgError::Equivocation {
                echoed: MessageKind::Deal,
                ..
            }
        )
    });
}

#[test]
fn an_operators_false_complaint_convicts_it() {
    let (cluster, secrets) = split(5, &[1, 2, 3, 4]);
    let captured: RefCell<Option<Signed<ShareBundle>>> = RefCell::new(None);
    let hooks = Hooks {
        known: known(&secrets),
        shares: Some(Box::new(|_: &Cluster, views: &mut Views<ShareBundle>| {
            *captured.borrow_mut() = Some(views[&id(2)][&id(DEALER)].clone());
        })),
        acks: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            let complaint = Complaint::BadShares {
                shares: captured.borrow().clone().unwrap(),
            };
            for (recipient, view) in views.iter_mut() {
                if *recipient != id(2) {
                    let message = view.get_mut(&id(2)).unwrap();
                    message.body.complaints = vec![complaint.clone()];
                    resign(c, message);
                }
            }
        })),
        ..Hooks::default()
    };
    let result = run(&cluster, hooks, 5);
    assert_blamed(
        &cluster,
        &result,
        2,
        |e| matches!(e, DkgError::FalseComplaint { dealer, .. } if *dealer == id(DEALER)),
    );
}

#[test]
fn only_the_dealer_may_hold_known_secrets() {
    let (cluster, secrets) = split(6, &[1, 2, 3, 4]);
    let result = run(
        &cluster,
        Hooks {
            known: BTreeMap::from([(id(1), secrets.clone())]),
            ..Hooks::default()
        },
        6,
    );
    assert!(result.outputs.is_empty());
    assert!(
        result
            .errors
            .values()
            .any(|e| matches!(e, DkgError::Local(_))),
        "{:?}",
        result.errors
    );
    let _ = KnownSecrets(secrets);
}
