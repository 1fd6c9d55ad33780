//! Domain types shared by the protocol, the driver and the files: operator
//! indices and validated ceremony parameters.

pub mod definition;
pub mod driver;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod keyshares;
pub mod lock;
pub mod outputs;
pub mod report;
pub mod split;
pub mod transcript_file;

use std::fmt;

use serde::{Deserialize, Serialize};

/// The fewest operators a cluster may have.
pub const MIN_OPERATORS: u8 = 3;
/// The most operators a cluster may have (the holders of shares).
pub const MAX_OPERATORS: u8 = 64;
/// The most participants one ceremony may have: the holders and any
/// dealers that hold no share (a split's dealer, a reshare's old
/// operators).
pub const MAX_PARTICIPANTS: u8 = 128;
/// The most validators one ceremony may create.
pub const MAX_VALIDATORS: u32 = 65_536;

/// A participant's slot: its sender id and its roster position (slot `s` is
/// at position `s − 1`), `1..=128`. Its share index, where shares are
/// evaluated, is a separate number (`crate::dkg::plan::ShareIndex`), by
/// default the slot number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct OperatorId(u8);

/// Why a value is not an operator index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator index {0} is outside 1..={MAX_PARTICIPANTS}")]
pub struct OperatorIdError(pub u64);

impl OperatorId {
    /// The index as a number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The slot as a nonzero number.
    pub fn nonzero(self) -> std::num::NonZeroU8 {
        // Construction refuses 0.
        std::num::NonZeroU8::new(self.0).unwrap_or(std::num::NonZeroU8::MIN)
    }

    /// The 0-based position of this operator in index order.
    pub fn position(self) -> usize {
        usize::from(self.0) - 1
    }

    /// The operator at 0-based `position`.
    ///
    /// # Errors
    ///
    /// When `position + 1` is not a valid index.
    pub fn from_position(position: usize) -> Result<Self, OperatorIdError> {
        u8::try_from(position + 1)
            .map_err(|_| OperatorIdError(position as u64 + 1))
            .and_then(Self::try_from)
    }
}

impl TryFrom<u8> for OperatorId {
    type Error = OperatorIdError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if value == 0 || value > MAX_PARTICIPANTS {
            return Err(OperatorIdError(u64::from(value)));
        }
        Ok(Self(value))
    }
}

impl From<OperatorId> for u8 {
    fn from(id: OperatorId) -> u8 {
        id.0
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorId({})", self.0)
    }
}

/// The size of a ceremony: `n` operators (the holders of shares), threshold
/// `t`, `V` validators.
/// Valid by construction: `3 <= n <= 64`, `n/2 < t <= n`, `1 <= V <= 65,536`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawParams", into = "RawParams")]
pub struct Params {
    operators: u8,
    threshold: u8,
    validators: u32,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    operators: u8,
    threshold: u8,
    validators: u32,
}

/// Why parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// Too few or too many operators.
    #[error("{0} operators: a cluster has between {MIN_OPERATORS} and {MAX_OPERATORS}")]
    Operators(u64),
    /// A threshold that is not a strict majority, or above n.
    #[error("threshold {threshold} with {operators} operators: it must be more than half of them and at most all ({} to {operators})", operators / 2 + 1)]
    Threshold {
        /// The threshold given.
        threshold: u64,
        /// The number of operators.
        operators: u64,
    },
    /// No validators, or too many.
    #[error("{0} validators: a ceremony creates between 1 and {MAX_VALIDATORS}")]
    Validators(u64),
}

impl Params {
    /// Validates `n`, `t` and `V`.
    ///
    /// # Errors
    ///
    /// [`ParamsError`] naming the value out of range.
    pub fn new(operators: u64, threshold: u64, validators: u64) -> Result<Self, ParamsError> {
        if !(u64::from(MIN_OPERATORS)..=u64::from(MAX_OPERATORS)).contains(&operators) {
            return Err(ParamsError::Operators(operators));
        }
        if threshold * 2 <= operators || threshold > operators {
            return Err(ParamsError::Threshold {
                threshold,
                operators,
            });
        }
        if !(1..=u64::from(MAX_VALIDATORS)).contains(&validators) {
            return Err(ParamsError::Validators(validators));
        }
        // The ranges above make every conversion exact.
        Ok(Self {
            operators: u8::try_from(operators).map_err(|_| ParamsError::Operators(operators))?,
            threshold: u8::try_from(threshold).map_err(|_| ParamsError::Threshold {
                threshold,
                operators,
            })?,
            validators: u32::try_from(validators)
                .map_err(|_| ParamsError::Validators(validators))?,
        })
    }

    /// The default threshold for `n` operators: `ceil(2n/3)`, raised to a
    /// strict majority where that is larger.
    pub fn default_threshold(operators: u64) -> u64 {
        operators
            .saturating_mul(2)
            .div_ceil(3)
            .max(operators / 2 + 1)
    }

    /// `n`.
    pub fn operators(&self) -> usize {
        usize::from(self.operators)
    }

    /// `t`.
    pub fn threshold(&self) -> usize {
        usize::from(self.threshold)
    }

    /// `V`.
    pub fn validators(&self) -> usize {
        self.validators as usize
    }
}

impl TryFrom<RawParams> for Params {
    type Error = ParamsError;

    fn try_from(raw: RawParams) -> Result<Self, Self::Error> {
        Self::new(
            u64::from(raw.operators),
            u64::from(raw.threshold),
            u64::from(raw.validators),
        )
    }
}

impl From<Params> for RawParams {
    fn from(p: Params) -> Self {
        Self {
            operators: p.operators,
            threshold: p.threshold,
            validators: p.validators,
        }
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Params(n={}, t={}, V={})",
            self.operators, self.threshold, self.validators
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_ranges() {
        assert!(Params::new(3, 2, 1).is_ok());
        assert!(Params::new(64, 33, 65_536).is_ok());
        assert_eq!(Params::new(2, 2, 1), Err(ParamsError::Operators(2)));
        assert_eq!(Params::new(65, 60, 1), Err(ParamsError::Operators(65)));
        assert!(matches!(
            Params::new(4, 2, 1),
            Err(ParamsError::Threshold { .. })
        ));
        assert!(matches!(
            Params::new(4, 5, 1),
            Err(ParamsError::Threshold { .. })
        ));
        assert_eq!(Params::new(4, 3, 0), Err(ParamsError::Validators(0)));
        assert_eq!(
            Params::new(4, 3, 65_537),
            Err(ParamsError::Validators(65_537))
        );
        for (n, t) in [(3, 2), (4, 3), (7, 5), (10, 7), (13, 9), (64, 43)] {
            assert_eq!(Params::default_threshold(n), t, "n={n}");
            assert!(Params::new(n, t, 1).is_ok());
        }
    }

    #[test]
    fn operator_ids_refuse_zero_and_serde_validates() {
        assert!(OperatorId::try_from(0).is_err());
        assert!(OperatorId::try_from(129).is_err());
        assert!(OperatorId::try_from(128).is_ok());
        assert_eq!(OperatorId::from_position(0).unwrap().get(), 1);
        assert!(serde_json::from_str::<OperatorId>("0").is_err());
        assert!(
            serde_json::from_str::<Params>(r#"{"operators":4,"threshold":2,"validators":1}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Params>(r#"{"operators":4,"threshold":3,"validators":1,"x":1}"#)
                .is_err()
        );
    }
}
