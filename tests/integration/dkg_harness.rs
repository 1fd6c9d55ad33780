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

/// The SSV owner of [`ssv_cluster`].
pub const SSV_OWNER: [u8; 20] = [0x38; 20];

/// An SSV cluster's plan at operator ids `ids`: deposits, the ownership
/// message from nonce 8, and every holder's shares encrypted to its test
/// operator key (`dvkg::ssv::dealer`).
pub fn ssv_cluster(ids: &[u64], t: u64, v: u64, rng: &mut StdRng) -> Cluster {
    ssv_cluster_with(ids, t, v, rng, Arc::new(EthStatements))
}

/// The same, with another statements layer (to make one holder lie).
pub fn ssv_cluster_with(
    ids: &[u64],
    t: u64,
    v: u64,
    rng: &mut StdRng,
    layer: Arc<dyn dvkg::dkg::signing::Statements + Send>,
) -> Cluster {
    use dvkg::eth::statements::{OwnershipParams, ssv_attachments};
    use dvkg::ssv::dealer::test_operator_key;
    use dvkg::wire::Bytes;

    let indices: Vec<ShareIndex> = ids
        .iter()
        .map(|&i| ShareIndex::try_from(i).unwrap())
        .collect();
    let mut statements = hoodi_plan().statements();
    statements.push(
        OwnershipParams {
            owner: Bytes(SSV_OWNER),
            first_nonce: 8,
        }
        .statement(),
    );
    let base = Cluster::dkg(
        ids.len() as u64,
        t,
        v,
        Some(&indices),
        statements,
        Arc::new(EthStatements),
        rng,
    );
    let keys: Vec<_> = (0..ids.len())
        .map(|i| test_operator_key(i).unwrap().public_key())
        .collect();
    let mut context = base.context.clone();
    context.plan = context
        .plan
        .with_attachments(ssv_attachments(&keys))
        .unwrap();
    let identities = base
        .ids()
        .iter()
        .map(|&o| dvkg::crypto::identity::IdentityKey::from_seed(&base.identity(o).to_seed()))
        .collect();
    Cluster::new(context, identities, layer)
}
