//! One dishonest or vanishing operator per test, as separate `dvkg ceremony`
//! processes over loopback QUIC (4 operators, threshold 3; operator 2 runs
//! with `--fault`, a flag of the `fault-injection` feature that tests build
//! with). Every honest operator must exit with the documented code and name
//! operator 2, no operator may leave key material on disk, every honest
//! abort report must be judged by `dvkg verify --abort-report` as it
//! deserves (proof of operator 2's fault when the fault is provable), and
//! the same definition must then run to completion without the fault.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::ceremony::{Cluster, assert_no_secrets, check_outputs, wait};
use crate::common::dvkg;

const FAULTY: usize = 2;
const HONEST: [usize; 3] = [1, 3, 4];
/// Connect and round timeouts: the round timeout bounds the stall and exit
/// cases, and leaves room for four processes on a loaded 2-core machine.
const TIMEOUTS: (u64, u64) = (60, 8);

/// What the honest operators' abort reports can prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// Signed evidence that convicts operator 2 in anyone's eyes.
    Proven,
    /// A fault only the receiving channel saw (unsigned or wrong-session
    /// bytes): the report names operator 2 but cannot prove it.
    ChannelLevel,
    /// Operator 2 went missing: named, never proven.
    Missing,
    /// Operator 2 signed a finalize on another transcript: named, and proven
    /// to every operator that holds the transcript, but a third party must
    /// recompute the transcript hash to confirm it.
    Transcript,
}

struct Case {
    fault: &'static str,
    code: i32,
    /// Text every honest operator's message contains (first-hand or as
    /// relayed from the operator that saw it first).
    needle: &'static str,
    proof: Proof,
}

fn abort_reports(cluster: &Cluster, i: usize) -> Vec<PathBuf> {
    let prefix = format!("out{i}.abort-report-operator-{i}-");
    std::fs::read_dir(cluster.root.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn run_fault(case: &Case) {
    let cluster = Cluster::new(4, 3, 2);
    let started = Instant::now();
    let mut children: Vec<(usize, Child)> = (1..=4)
        .map(|i| {
            let mut extra = vec!["--kdf", "pbkdf2"];
            if i == FAULTY {
                extra.extend(["--fault", case.fault]);
            }
            (
                i,
                cluster.start_with(i, "definition.json", TIMEOUTS, &extra),
            )
        })
        .collect();
    let (_, mut faulty) = children.remove(FAULTY - 1);
    for (i, child) in children {
        let done = wait(child, started);
        assert_eq!(
            done.code, case.code,
            "{}: operator {i}'s exit code:\n{}",
            case.fault, done.stderr
        );
        assert!(
            done.stderr.contains("operator 2") && done.stderr.contains(case.needle),
            "{}: operator {i} did not name operator 2 with {:?}:\n{}",
            case.fault,
            case.needle,
            done.stderr
        );
        assert!(
            done.elapsed < Duration::from_secs(TIMEOUTS.1 * 4 + 20),
            "{}: operator {i} took {:?}",
            case.fault,
            done.elapsed
        );
    }
    // A stalled operator would sleep on; it has been named, so end it.
    let _ = faulty.kill();
    let _ = faulty.wait();
    assert_no_secrets(&cluster, &[1, 2, 3, 4]);

    let mut first_hand = 0;
    for i in HONEST {
        let reports = abort_reports(&cluster, i);
        assert_eq!(
            reports.len(),
            1,
            "{}: operator {i}'s abort reports: {reports:?}",
            case.fault
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&reports[0]).unwrap()).unwrap();
        let culprit = report["culprit"].as_u64();
        let missing = report["missing"].as_u64();
        let path = reports[0].to_string_lossy().into_owned();
        let verify = dvkg(
            cluster.root.path(),
            &[
                "verify",
                "--abort-report",
                &path,
                "--definition",
                "definition.json",
            ],
        );
        match case.proof {
            Proof::Proven => {
                assert_eq!(culprit, Some(2), "{}: {report:#}", case.fault);
                verify
                    .assert_code(0)
                    .assert_mentions("proven, operator 2 is at fault");
                first_hand += 1;
            }
            Proof::ChannelLevel => {
                // Either operator 2 is named first-hand, or another
                // operator's claim naming it is relayed.
                let message = report["message"].as_str().unwrap_or_default();
                assert!(
                    culprit == Some(2) || (culprit.is_none() && message.contains("operator 2")),
                    "{}: {report:#}",
                    case.fault
                );
                first_hand += usize::from(culprit == Some(2));
                verify.assert_code(5);
            }
            Proof::Transcript => {
                assert_eq!(culprit, Some(2), "{}: {report:#}", case.fault);
                verify
                    .assert_code(5)
                    .assert_mentions("recompute the transcript hash to confirm");
                first_hand += 1;
            }
            Proof::Missing => {
                assert_eq!(missing, Some(2), "{}: {report:#}", case.fault);
                assert_eq!(culprit, None, "{}: {report:#}", case.fault);
                verify
                    .assert_code(5)
                    .assert_mentions("reports operator 2 missing");
                first_hand += 1;
            }
        }
    }
    assert!(
        first_hand > 0,
        "{}: no honest operator named operator 2 first-hand",
        case.fault
    );

    // Every operator aborted, so no lock exists anywhere: the shares some
    // kept in pending files (those past round 3) belong to keys that are
    // never used. The operators discard them, as the refusal to start over
    // them says, and run again: the same definition, without the fault,
    // completes.
    for entry in std::fs::read_dir(cluster.root.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains(".pending-shares-operator-") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let started = Instant::now();
    let children: Vec<Child> = (1..=4)
        .map(|i| cluster.start_with(i, "definition.json", TIMEOUTS, &["--kdf", "pbkdf2"]))
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        let done = wait(child, started);
        assert_eq!(
            done.code,
            0,
            "{}: re-run, operator {}:\n{}",
            case.fault,
            k + 1,
            done.stderr
        );
    }
    check_outputs(&cluster, 3);
}

macro_rules! fault_tests {
    ($($name:ident: $fault:literal => $code:literal, $needle:literal, $proof:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run_fault(&Case {
                    fault: $fault,
                    code: $code,
                    needle: $needle,
                    proof: Proof::$proof,
                });
            }
        )*
    };
}

fault_tests! {
    bad_share_to_one_peer: "bad-share" => 3,
        "share for validator 0 that does not match its commitments", Proven;
    identity_commitment: "identity-commitment" => 3,
        "the point at infinity is not allowed", Proven;
    non_subgroup_commitment: "non-subgroup-commitment" => 3,
        "not in the prime-order subgroup", Proven;
    bad_proof_of_knowledge: "bad-proof" => 3,
        "invalid proof of knowledge for validator 0", Proven;
    equivocating_deal: "equivocate" => 3,
        "signed two different round-1 deal messages", Proven;
    lying_complaint: "lying-complaint" => 3,
        "complained falsely about operator 1", Proven;
    bad_partial_signature: "bad-partial" => 3,
        "invalid partial signature for validator 0", Proven;
    // Shown to operator 1 alone; operators 3 and 4 hold the right
    // finalizes, yet must abort too and write nothing.
    finalize_on_another_transcript_to_one_peer: "bad-finalize" => 3,
        "signed another transcript than", Transcript;
    garbage_bytes: "garbage" => 3,
        "malformed round-1 deal message", ChannelLevel;
    oversized_frame: "oversized@2" => 3,
        "over the", ChannelLevel;
    replayed_message_from_another_session: "replay@3" => 3,
        "for another session", ChannelLevel;
    stall_in_round_one: "stall@1" => 4,
        "did not send its round-1 deal message", Missing;
    exit_at_round_two: "exit@2" => 4,
        "operator 2", Missing;
}
