//! The protocol core: Joint-Feldman dealings with proofs of knowledge,
//! echoes, self-proving complaints, threshold signing and a public
//! transcript, for three ceremonies on one plan (a fresh DKG, a split of
//! existing keys, a reshare).
//!
//! Pure and sans-IO: no network, disk or clock; the RNG is a parameter. The
//! driver moves messages; this module computes. Each round is a function
//! that consumes the previous round's secret state by value and the messages
//! of every sender (its own included), keyed by the authenticated sender:
//!
//! | round | function | who sends what |
//! |---|---|---|
//! | 0 hello | [`start`] | every participant: [`messages::Hello`] |
//! | 1 deal | [`part1`] | each dealer: [`messages::DealBundle`] to all, one [`messages::ShareBundle`] per holder (private) |
//! | 2 acknowledge | [`part2`] | every participant: [`messages::Ack`] |
//! | 3 partial signatures | [`part3`] | each holder: [`messages::PartialSignatures`] |
//! | 4 finalize | [`part4`] | every participant: [`messages::Finalize`] |
//! | output | [`finish`] | — |
//!
//! Who is a dealer and who a holder, at which share index, how the dealings
//! combine and what is signed: the [`plan`]. The sequence of the rounds
//! exists once, in [`machine`]. The core names no Ethereum type: what a
//! validator signs besides the possession message is defined by the layer
//! above, through [`signing::Statements`].
//!
//! Spec: `ceremony-specs/protocol.md`. Comments quote its numbered steps.

use std::fmt;

use crate::ceremony::OperatorId;
use crate::crypto::{G1Point, Scalar};

mod ack;
mod checks;
mod deal;
#[cfg(any(test, feature = "test-utils"))]
pub mod dealer;
pub mod error;
pub mod evidence;
mod finalize;
mod judge;
pub mod machine;
pub mod messages;
pub mod plan;
#[cfg(any(test, feature = "test-utils"))]
pub mod runner;
mod sign;
pub mod signing;
pub mod state;
pub mod transcript;
pub mod vss;

pub use ack::part2;
pub use deal::{Round1Output, part1, start};
pub use error::{DkgError, Evidence};
pub use finalize::{finish, part4};
pub use plan::{Context, Plan};
pub use sign::part3;
pub use state::KnownSecrets;

/// This participant's result: its secret key shares (none for a dealer
/// that holds no share), and the public transcript every participant holds
/// byte for byte.
pub struct Output {
    /// This participant.
    pub me: OperatorId,
    /// The full public transcript, finalize signatures included.
    pub transcript: transcript::Transcript,
    /// `x_{v,me}` for every validator `v`; empty for a participant that
    /// holds no share.
    pub secret_shares: Vec<Scalar>,
    /// `PK_{v,me} = x_{v,me}·G1` for every validator `v`, as the protocol
    /// derived (and, by the partial signatures it verified in round 4,
    /// checked) them; empty for a participant that holds no share.
    pub public_shares: Vec<G1Point>,
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
