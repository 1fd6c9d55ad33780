//! The in-process cluster of the pure protocol, for the tests: the
//! library's runner (`dvkg::dkg::runner`, the machine's round sequence with
//! hooks), and Ethereum deposit plans for it.

use std::sync::Arc;

use dvkg::dkg::plan::ShareIndex;
pub use dvkg::dkg::runner::{Cluster, Hooks, Run, Views, id, resign, run};
use dvkg::eth::statements::{DepositPlan, EthStatements};
use dvkg::eth::{ExecutionAddress, Gwei, WithdrawalCredentials, WithdrawalKind};
use rand::rngs::StdRng;

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

/// A DKG of `n` operators at their slot numbers, threshold `t`, `v`
/// validators, depositing as `plan` says.
pub fn dkg_cluster(n: u64, t: u64, v: u64, plan: DepositPlan, rng: &mut StdRng) -> Cluster {
    Cluster::dkg(
        n,
        t,
        v,
        None,
        plan.statements(),
        Arc::new(EthStatements),
        rng,
    )
}

/// The same at share indices `indices`.
pub fn dkg_cluster_at(
    indices: &[u64],
    t: u64,
    v: u64,
    plan: DepositPlan,
    rng: &mut StdRng,
) -> Cluster {
    let indices: Vec<ShareIndex> = indices
        .iter()
        .map(|&i| ShareIndex::try_from(i).unwrap())
        .collect();
    Cluster::dkg(
        indices.len() as u64,
        t,
        v,
        Some(&indices),
        plan.statements(),
        Arc::new(EthStatements),
        rng,
    )
}
