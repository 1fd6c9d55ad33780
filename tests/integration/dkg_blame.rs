//! One test per blame: a dishonest operator (always operator 2) misbehaves
//! at one step; every honest operator must abort naming exactly operator 2
//! (or the lying complainer), and the evidence must convict it standalone.

use std::cell::RefCell;

use dvkg::ceremony::OperatorId;
use dvkg::crypto::{BlsError, G1Point, G2Point};
use dvkg::dkg::DkgError;
use dvkg::dkg::error::{Counted, StatementLabel};
use dvkg::dkg::evidence::verify_evidence;
use dvkg::dkg::messages::{Body, Complaint, MessageKind, Receipt, ShareBundle, Signed};
use dvkg::dkg::plan::StatementKind;
use dvkg::eth::statements::EthStatements;
use dvkg::wire::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::dkg_harness::{Cluster, Hooks, Run, Views, dkg_cluster, hoodi_plan, id, resign, run};

const CULPRIT: u8 = 2;

fn cluster(seed: u64) -> Cluster {
    dkg_cluster(4, 3, 2, hoodi_plan(), &mut StdRng::seed_from_u64(seed))
}

/// Applies `change` to what the culprit sends to every other operator.
fn to_others<T: Body>(
    _cluster: &Cluster,
    views: &mut Views<T>,
    mut change: impl FnMut(&mut Signed<T>),
) {
    for (recipient, view) in views.iter_mut() {
        if *recipient != id(CULPRIT) {
            let message = view.get_mut(&id(CULPRIT)).unwrap();
            change(message);
        }
    }
}

/// Every honest operator failed with an error naming `culprit` that
/// satisfies `expected`, and its evidence convicts `culprit` (proven or not,
/// as `proven` says).
#[track_caller]
fn assert_blamed(
    cluster: &Cluster,
    run: &Run,
    culprit: u8,
    proven: bool,
    expected: impl Fn(&DkgError) -> bool,
) {
    let honest: Vec<OperatorId> = cluster
        .ids()
        .into_iter()
        .filter(|&o| o != id(CULPRIT))
        .collect();
    assert!(
        run.outputs.is_empty(),
        "the ceremony completed despite the fault"
    );
    for op in honest {
        let err = run
            .errors
            .get(&op)
            .unwrap_or_else(|| panic!("operator {op} did not abort; errors: {:?}", run.errors));
        assert_eq!(
            err.culprit(),
            Some(id(culprit)),
            "operator {op} blamed the wrong operator: {err}"
        );
        assert!(
            expected(err),
            "operator {op} failed with an unexpected error: {err:?}"
        );
        let evidence = err.evidence().expect("a blame carries evidence");
        let verdict = verify_evidence(&cluster.context, cluster.statements(), evidence)
            .unwrap_or_else(|e| panic!("operator {op}'s evidence does not verify: {e}"));
        assert_eq!(verdict.culprit, id(culprit), "evidence of operator {op}");
        assert_eq!(
            verdict.proven, proven,
            "evidence of operator {op}: {}",
            verdict.fault
        );
        // The evidence survives a JSON round trip (as in an abort report).
        let json = serde_json::to_string(evidence).unwrap();
        let back: dvkg::dkg::Evidence = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, evidence);
    }
}

/// An uncompressed G1 encoding of a point on the curve outside the subgroup.
fn non_subgroup_point() -> [u8; 96] {
    for x in 1u64.. {
        let mut bytes = [0u8; 48];
        bytes[40..].copy_from_slice(&x.to_be_bytes());
        bytes[0] |= 0x80;
        if G1Point::from_bytes(&bytes) == Err(BlsError::NotInSubgroup) {
            let point: blstrs::G1Affine =
                Option::from(blstrs::G1Affine::from_compressed_unchecked(&bytes)).unwrap();
            let uncompressed = point.to_uncompressed();
            assert_eq!(
                G1Point::from_uncompressed(&uncompressed),
                Err(BlsError::NotInSubgroup)
            );
            return uncompressed;
        }
    }
    unreachable!()
}

/// Operator 2 broadcasts the same changed deal to everyone and, as a
/// consistent liar, echoes that deal in its own ack.
fn deal_fault(
    seed: u64,
    change: impl Fn(&mut dvkg::dkg::messages::DealBundle) + 'static,
) -> (Cluster, Run) {
    let cluster = cluster(seed);
    let sent = RefCell::new(None);
    let hooks = Hooks {
        deals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                change(&mut m.body);
                resign(c, m);
                *sent.borrow_mut() = Some(Receipt::of(m));
            })
        })),
        acks: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            let receipt = sent.borrow().unwrap();
            to_others(c, views, |m| {
                m.body.deals[CULPRIT as usize - 1] = receipt;
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, seed);
    (cluster, run)
}

#[test]
fn bad_message_signature() {
    let cluster = cluster(1);
    let hooks = Hooks {
        deals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| m.signature.0.0[10] ^= 1)
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 1);
    assert_blamed(&cluster, &run, CULPRIT, false, |e| {
        matches!(
            e,
            DkgError::BadSignature {
                kind: MessageKind::Deal,
                ..
            }
        )
    });
}

#[test]
fn message_for_another_session() {
    let cluster = cluster(2);
    let hooks = Hooks {
        deals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                *m = Signed::sign(
                    c.identity(id(CULPRIT)),
                    [7; 32],
                    id(CULPRIT),
                    m.body.clone(),
                );
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 2);
    assert_blamed(&cluster, &run, CULPRIT, false, |e| {
        matches!(e, DkgError::WrongSession { .. })
    });
}

#[test]
fn message_for_another_round() {
    let cluster = cluster(3);
    let hooks = Hooks {
        deals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.header.kind = MessageKind::Ack;
                let digest = dvkg::dkg::messages::signed_digest(&m.header, &m.body_hash());
                m.signature = c.identity(id(CULPRIT)).sign(&digest);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 3);
    assert_blamed(&cluster, &run, CULPRIT, false, |e| {
        matches!(
            e,
            DkgError::WrongMessage {
                expected: MessageKind::Deal,
                ..
            }
        )
    });
}

#[test]
fn hello_for_another_definition() {
    let cluster = cluster(4);
    let hooks = Hooks {
        hellos: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.definition_hash = Bytes([0xee; 32]);
                *m = Signed::sign(
                    c.identity(id(CULPRIT)),
                    [0xee; 32],
                    id(CULPRIT),
                    m.body.clone(),
                );
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 4);
    assert_blamed(&cluster, &run, CULPRIT, false, |e| {
        matches!(e, DkgError::DefinitionMismatch { .. })
    });
}

#[test]
fn identity_point_commitment() {
    let (cluster, run) = deal_fault(5, |deal| {
        let mut identity = [0u8; 96];
        identity[0] = 0x40;
        deal.validators[1].commitments[1] = Bytes(identity);
    });
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::InvalidPoint {
                validator: 1,
                reason: BlsError::Identity,
                ..
            }
        )
    });
}

#[test]
fn non_subgroup_commitment() {
    let point = non_subgroup_point();
    let (cluster, run) = deal_fault(6, move |deal| {
        deal.validators[0].commitments[2] = Bytes(point)
    });
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::InvalidPoint {
                validator: 0,
                reason: BlsError::NotInSubgroup,
                ..
            }
        )
    });
}

#[test]
fn malformed_commitment_encoding() {
    let (cluster, run) = deal_fault(7, |deal| deal.validators[0].proof.r = Bytes([0xff; 96]));
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::InvalidPoint {
                reason: BlsError::BadEncoding,
                ..
            }
        )
    });
}

#[test]
fn non_canonical_proof_scalar() {
    let order =
        hex::decode("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001").unwrap();
    let (cluster, run) = deal_fault(8, move |deal| {
        deal.validators[1].proof.z = Bytes(order.clone().try_into().unwrap())
    });
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(e, DkgError::InvalidScalar { validator: 1, .. })
    });
}

#[test]
fn wrong_number_of_commitments_or_entries() {
    let (cluster, run) = deal_fault(9, |deal| {
        deal.validators[0].commitments.pop();
    });
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::WrongCount {
                expected: 3,
                got: 2,
                ..
            }
        )
    });
    let (cluster, run) = deal_fault(10, |deal| {
        deal.validators.pop();
    });
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::WrongCount {
                expected: 2,
                got: 1,
                ..
            }
        )
    });
}

#[test]
fn bad_proof_of_knowledge() {
    let (cluster, run) = deal_fault(11, |deal| {
        let z = &mut deal.validators[1].proof.z.0;
        z[31] ^= 1;
    });
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(e, DkgError::InvalidProof { validator: 1, .. })
    });
}

fn share_fault(seed: u64, change: impl Fn(&mut ShareBundle) + 'static) -> (Cluster, Run) {
    let cluster = cluster(seed);
    let hooks = Hooks {
        shares: Some(Box::new(
            move |c: &Cluster, views: &mut Views<ShareBundle>| {
                // Only operator 3 receives bad shares.
                let message = views
                    .get_mut(&id(3))
                    .unwrap()
                    .get_mut(&id(CULPRIT))
                    .unwrap();
                change(&mut message.body);
                resign(c, message);
            },
        )),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, seed);
    (cluster, run)
}

#[test]
fn bad_share_to_one_operator() {
    let (cluster, run) = share_fault(12, |bundle| {
        let mut shares: Vec<dvkg::dkg::messages::ShareBytes> = bundle.shares.clone();
        let mut raw = *shares[1].expose_secret();
        raw[31] ^= 1;
        shares[1] = dvkg::dkg::messages::ShareBytes::new(&dvkg::crypto::SecretBytes::new(&mut raw));
        bundle.shares = shares;
    });
    assert_blamed(
        &cluster,
        &run,
        CULPRIT,
        true,
        |e| matches!(e, DkgError::InvalidShare { complainer, validator: 1, .. } if *complainer == id(3)),
    );
}

#[test]
fn shares_bound_to_another_deal() {
    let (cluster, run) = share_fault(13, |bundle| bundle.deal_hash = Bytes([1; 32]));
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(e, DkgError::SharesForAnotherDeal { .. })
    });
}

#[test]
fn equivocating_dealer() {
    // Operator 4 receives another (signed) deal than everyone else.
    let cluster = cluster(14);
    let hooks = Hooks {
        deals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            let message = views
                .get_mut(&id(4))
                .unwrap()
                .get_mut(&id(CULPRIT))
                .unwrap();
            message.body.validators[0].proof.z.0[31] ^= 1;
            resign(c, message);
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 14);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
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
fn conflicting_hellos_are_reported_without_a_proven_culprit() {
    // Operator 4 receives another nonce from operator 2 than everyone else,
    // so its session id differs. Hellos are bound only to the definition, so
    // nobody can tell a second hello of this ceremony from a replayed one of
    // an earlier ceremony: every honest operator names operator 2's hello
    // and the operator that reported the other one, and proves nothing.
    let cluster = cluster(15);
    let hooks = Hooks {
        hellos: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            let message = views
                .get_mut(&id(4))
                .unwrap()
                .get_mut(&id(CULPRIT))
                .unwrap();
            message.body.nonce.0[0] ^= 1;
            resign(c, message);
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 15);
    for op in [1, 3, 4] {
        let err = &run.errors[&id(op)];
        assert!(
            matches!(err, DkgError::ConflictingHellos { operator, .. } if *operator == id(CULPRIT)),
            "operator {op}: {err:?}"
        );
        assert_eq!(err.culprit(), None);
        let verdict = verify_evidence(
            &cluster.context,
            cluster.statements(),
            err.evidence().unwrap(),
        )
        .unwrap();
        assert_eq!((verdict.culprit, verdict.proven), (id(CULPRIT), false));
    }
}

#[test]
fn a_dealer_echoing_another_hello_than_its_session_is_blamed() {
    // Operator 2 replays, in its deal's echoes, a hello of operator 3 from
    // an earlier ceremony of the same definition, while signing its deal in
    // this ceremony's session: its own deal contradicts itself.
    let cluster = cluster(23);
    let earlier = crate::dkg_harness::run(&cluster, Hooks::default(), 99);
    assert!(earlier.errors.is_empty());
    let old_hello = earlier.outputs[&id(1)].transcript.hellos[2].clone();
    let hooks = Hooks {
        deals: Some(Box::new(move |c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.hellos[2] = Receipt::of(&old_hello);
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 23);
    assert_blamed(
        &cluster,
        &run,
        CULPRIT,
        true,
        |e| matches!(e, DkgError::HelloEchoMismatch { operator, .. } if *operator == id(3)),
    );
}

/// Operator 2 acks with `complaint()` against operator 1, whose deal and
/// shares are valid: every honest operator must convict operator 2 of a
/// false complaint, with evidence that proves it.
fn assert_false_complaint<'a>(
    seed: u64,
    mut hooks: Hooks<'a>,
    complaint: impl Fn() -> Complaint + 'a,
) {
    let cluster = cluster(seed);
    hooks.acks = Some(Box::new(move |c: &Cluster, views: &mut Views<_>| {
        let complaint = complaint();
        to_others(c, views, |m| {
            m.body.complaints = vec![complaint.clone()];
            resign(c, m);
        })
    }));
    let run = run(&cluster, hooks, seed);
    assert_blamed(
        &cluster,
        &run,
        CULPRIT,
        true,
        |e| matches!(e, DkgError::FalseComplaint { dealer, .. } if *dealer == id(1)),
    );
}

#[test]
fn lying_complainer_is_blamed() {
    // Operator 2 complains about operator 1's valid shares.
    let captured: RefCell<Option<Signed<ShareBundle>>> = RefCell::new(None);
    let hooks = Hooks {
        shares: Some(Box::new(|_: &Cluster, views: &mut Views<ShareBundle>| {
            *captured.borrow_mut() = Some(views[&id(CULPRIT)][&id(1)].clone());
        })),
        ..Hooks::default()
    };
    assert_false_complaint(16, hooks, || Complaint::BadShares {
        shares: captured.borrow().clone().unwrap(),
    });
}

#[test]
fn lying_complaint_about_a_valid_deal() {
    let captured = RefCell::new(None);
    let hooks = Hooks {
        deals: Some(Box::new(|_: &Cluster, views: &mut Views<_>| {
            *captured.borrow_mut() = Some(views[&id(CULPRIT)][&id(1)].clone());
        })),
        ..Hooks::default()
    };
    assert_false_complaint(17, hooks, || Complaint::BadDeal {
        deal: captured.borrow().clone().unwrap(),
    });
}

#[test]
fn complaint_with_a_deal_from_an_earlier_run_convicts_the_complainer() {
    // Operator 2 complains about operator 1 with operator 1's genuine deal
    // from an earlier ceremony of the same definition: signed by operator
    // 1, but not the deal of this session (protocol.md §12, item 2). It
    // must not pass for equivocation by operator 1.
    let earlier = crate::dkg_harness::run(&cluster(24), Hooks::default(), 98);
    assert!(earlier.errors.is_empty());
    let old_deal = earlier.outputs[&id(1)].transcript.deals[0].clone();
    assert_false_complaint(24, Hooks::default(), move || Complaint::BadDeal {
        deal: old_deal.clone(),
    });
}

#[test]
fn forged_receipt_in_an_ack() {
    let cluster = cluster(18);
    let hooks = Hooks {
        acks: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.deals[0].signature.0.0[5] ^= 1;
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 18);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::InvalidReceipt {
                echoed: MessageKind::Deal,
                ..
            }
        )
    });
}

#[test]
fn bad_partial_signature() {
    let cluster = cluster(19);
    let hooks = Hooks {
        partials: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.signatures[1][0] =
                    Bytes(G2Point::hash(b"not a partial signature").to_uncompressed());
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 19);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::InvalidPartialSignature {
                validator: 1,
                statement: StatementLabel {
                    kind: StatementKind::Deposit,
                    nth: 0,
                },
                ..
            }
        )
    });
}

#[test]
fn malformed_partial_signature() {
    let cluster = cluster(20);
    let hooks = Hooks {
        partials: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.signatures[0][0] = Bytes([0x11; 192]);
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 20);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(e, DkgError::InvalidPoint { .. })
    });
}

#[test]
fn finalize_on_another_transcript() {
    let cluster = cluster(21);
    let hooks = Hooks {
        finals: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.transcript_hash = Bytes([0; 32]);
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 21);
    assert_blamed(&cluster, &run, CULPRIT, false, |e| {
        matches!(e, DkgError::FinalizeMismatch { .. })
    });
}

#[test]
fn bad_partial_signature_to_one_operator_only() {
    // Operator 4 alone receives a bad partial signature from operator 2: it
    // alone can detect it, and names operator 2 with proof.
    let cluster = cluster(22);
    let hooks = Hooks {
        partials: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            let message = views
                .get_mut(&id(4))
                .unwrap()
                .get_mut(&id(CULPRIT))
                .unwrap();
            message.body.signatures[0][0] = Bytes(G2Point::hash(b"other").to_uncompressed());
            resign(c, message);
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 22);
    assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
    let err = &run.errors[&id(4)];
    assert!(
        matches!(err, DkgError::InvalidPartialSignature { validator: 0, .. }),
        "{err:?}"
    );
    let verdict = verify_evidence(
        &cluster.context,
        cluster.statements(),
        err.evidence().unwrap(),
    )
    .unwrap();
    assert_eq!((verdict.culprit, verdict.proven), (id(CULPRIT), true));
}

#[test]
fn deferred_subgroup_check_names_the_dealer() {
    use std::collections::BTreeMap;

    use dvkg::dkg::messages::DealBundle;
    use dvkg::dkg::{signing, vss};

    // The deferred decoder takes a point outside the subgroup, and still
    // refuses the identity and points off the curve.
    let point = non_subgroup_point();
    let decoded = G1Point::from_uncompressed_subgroup_deferred(&point).unwrap();
    assert!(!decoded.in_subgroup());
    assert!(G1Point::generator().in_subgroup());
    let mut identity = [0u8; 96];
    identity[0] = 0x40;
    assert_eq!(
        G1Point::from_uncompressed_subgroup_deferred(&identity),
        Err(BlsError::Identity)
    );
    let mut off_curve = G1Point::generator().to_uncompressed();
    off_curve[95] ^= 1;
    assert_eq!(
        G1Point::from_uncompressed_subgroup_deferred(&off_curve),
        Err(BlsError::BadEncoding)
    );

    // The deals of an honest run pass the aggregate check.
    let cluster = cluster(40);
    let captured: RefCell<BTreeMap<OperatorId, Signed<DealBundle>>> = RefCell::new(BTreeMap::new());
    let hooks = Hooks {
        deals: Some(Box::new(|_: &Cluster, views: &mut Views<_>| {
            *captured.borrow_mut() = views[&id(1)].clone();
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 40);
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let plan = &cluster.context.plan;
    let params = plan.params();
    let aggregate = |deals: &[Signed<DealBundle>]| {
        let parsed: Vec<vss::ParsedDeal> = deals
            .iter()
            .map(|d| vss::parse_deal_subgroup_deferred(plan, d).unwrap())
            .collect();
        let commitments: Vec<&[Vec<G1Point>]> =
            parsed.iter().map(|p| p.commitments.as_slice()).collect();
        signing::aggregate(&params, &commitments)
    };
    let mut deals: Vec<Signed<DealBundle>> = captured.into_inner().into_values().collect();
    vss::check_aggregate(plan, &aggregate(&deals), &deals).unwrap();

    // Dealer 2 puts a point outside the subgroup into a commitment of
    // validator 1: the aggregate check names it, with proof.
    deals[1].body.validators[1].commitments[2] = Bytes(point);
    resign(&cluster, &mut deals[1]);
    let err = vss::check_aggregate(plan, &aggregate(&deals), &deals).unwrap_err();
    assert!(
        matches!(
            err,
            DkgError::InvalidPoint {
                culprit,
                validator: 1,
                reason: BlsError::NotInSubgroup,
                ..
            } if culprit == id(CULPRIT)
        ),
        "{err:?}"
    );
    let verdict = verify_evidence(
        &cluster.context,
        cluster.statements(),
        err.evidence().unwrap(),
    )
    .unwrap();
    assert_eq!(verdict.culprit, id(CULPRIT));
    assert!(verdict.proven);
}

/// An SSV cluster of 4 at ids 11, 27, 103, 404 (whose holders attach their
/// encrypted shares).
fn ssv(seed: u64) -> Cluster {
    crate::dkg_harness::ssv_cluster(&[11, 27, 103, 404], 3, 2, &mut StdRng::seed_from_u64(seed))
}

#[test]
fn missing_attachment() {
    let cluster = ssv(40);
    let hooks = Hooks {
        partials: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.attachments.pop();
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 40);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::WrongCount {
                what: Counted::Attachments,
                expected: 2,
                got: 1,
                ..
            }
        )
    });
}

#[test]
fn attachment_of_the_wrong_length() {
    let cluster = ssv(41);
    let hooks = Hooks {
        partials: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.attachments[1].0.truncate(255);
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 41);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::WrongCount {
                what: Counted::AttachmentBytes { validator: 1 },
                expected: 256,
                got: 255,
                ..
            }
        )
    });
}

#[test]
fn attachments_in_a_plan_without_them() {
    let cluster = cluster(42);
    let hooks = Hooks {
        partials: Some(Box::new(|c: &Cluster, views: &mut Views<_>| {
            to_others(c, views, |m| {
                m.body.attachments.push(dvkg::wire::VarBytes(vec![0; 256]));
                resign(c, m);
            })
        })),
        ..Hooks::default()
    };
    let run = run(&cluster, hooks, 42);
    assert_blamed(&cluster, &run, CULPRIT, true, |e| {
        matches!(
            e,
            DkgError::WrongCount {
                what: Counted::Attachments,
                expected: 0,
                ..
            }
        )
    });
}

/// The Ethereum layer, except that the holder whose operator key is
/// `liar` encrypts validator 0's share in place of every other's.
struct Lying {
    liar: Vec<u8>,
}

impl dvkg::dkg::signing::Statements for Lying {
    fn message(
        &self,
        validator: usize,
        statement: &dvkg::dkg::plan::Statement,
        group_key: &[u8; 48],
    ) -> Result<Vec<u8>, String> {
        EthStatements.message(validator, statement, group_key)
    }

    fn attach(
        &self,
        kind: dvkg::dkg::plan::AttachmentKind,
        params: &[u8],
        shares: &[dvkg::crypto::Scalar],
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut made = EthStatements.attach(kind, params, shares, rng)?;
        if params == self.liar.as_slice() {
            let first = made[0].clone();
            for other in made.iter_mut().skip(1) {
                other.clone_from(&first);
            }
        }
        Ok(made)
    }
}

/// What no peer can check (protocol.md §2.7): a holder that encrypts
/// something else than its share, in ciphertexts of the right length. The
/// ceremony completes; only the operator's own key shows it, which is what
/// `dvkg verify --keyshares … --ssv-operator-private-key` is for.
#[test]
fn a_wrong_ciphertext_is_seen_only_with_its_operators_key() {
    use dvkg::ssv::Ciphertext;
    use dvkg::ssv::dealer::test_operator_key;

    let culprit = usize::from(CULPRIT) - 1;
    let key = test_operator_key(culprit).unwrap();
    let liar = key.public_key().registered().as_bytes().to_vec();
    let cluster = crate::dkg_harness::ssv_cluster_with(
        &[11, 27, 103, 404],
        3,
        2,
        &mut StdRng::seed_from_u64(43),
        std::sync::Arc::new(Lying { liar }),
    );
    let run = run(&cluster, Hooks::default(), 43);
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let output = &run.outputs[&id(1)];
    let partials = &output.transcript.partials[culprit];
    let own = &run.outputs[&id(CULPRIT)];
    for v in 0..2 {
        let ciphertext = Ciphertext::from_slice(&partials.body.attachments[v].0).unwrap();
        let (share, _) = key.decrypt_share(&ciphertext).unwrap();
        let expected = own.secret_shares[v].to_bytes_be();
        assert_eq!(
            share.to_bytes().expose_secret() == expected.expose_secret(),
            v == 0,
            "validator {v}"
        );
    }
}
