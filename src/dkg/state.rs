//! Secret state between rounds: each round function consumes the previous
//! state by value, so no round can run twice on the same state.

use std::fmt;

use super::messages::{Ack, DealBundle, Finalize, Hello, PartialSignatures, Signed};
use super::plan::Context;
use super::signing::ValidatorKeys;
use super::transcript::Transcript;
use super::vss::ParsedDeal;
use crate::ceremony::OperatorId;
use crate::crypto::{G1Point, G2Point, Scalar};

/// A dealer's known secrets, one per validator: the validator keys of a
/// split, or the dealer's previous shares of a reshare (the core weighs
/// them with the dealer's Lagrange coefficient).
///
/// # Security
///
/// Secret keys or key shares. [`Scalar`] wipes itself on drop; `Debug` is
/// redacted; nothing here is serialized.
pub struct KnownSecrets(pub Vec<Scalar>);

impl fmt::Debug for KnownSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KnownSecrets({} <redacted>)", self.0.len())
    }
}

/// After round 0.
pub struct Round0 {
    pub(super) context: Context,
    pub(super) me: OperatorId,
    pub(super) hello: Signed<Hello>,
    pub(super) known: Option<KnownSecrets>,
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
    pub(super) deal: Option<Signed<DealBundle>>,
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
    /// `shares[j][v]` from the `j`-th dealer; empty for a participant that
    /// holds no share.
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
    pub(super) partials: Option<Signed<PartialSignatures>>,
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
    pub(super) public_shares: Vec<G1Point>,
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
