//! Deposit amounts in Gwei (deposit units), with the deposit contract's and
//! the beacon chain's limits.
//!
//! Sources: `MIN_DEPOSIT_AMOUNT` (1 ETH) and `MAX_EFFECTIVE_BALANCE` (32 ETH)
//! in consensus-specs `phase0/beacon-chain.md`; `MAX_EFFECTIVE_BALANCE_ELECTRA`
//! (2048 ETH) for compounding credentials in `electra/beacon-chain.md`
//! (EIP-7251). The deposit contract takes whole Gwei only. On Gnosis chains
//! the same unit limits apply to mGNO-like units (1 GNO = 32 * 10^9 units).

use std::fmt;

use super::credentials::WithdrawalKind;
use super::network::Network;

/// Deposit units (Gwei on Ethereum networks) in one whole ETH.
pub const ETH_IN_GWEI: u64 = 1_000_000_000;
/// `MIN_DEPOSIT_AMOUNT`: the smallest deposit the contract accepts.
pub const MIN_DEPOSIT_GWEI: u64 = ETH_IN_GWEI;
/// `MAX_EFFECTIVE_BALANCE` for 0x00 and 0x01 credentials; more would only be
/// swept back to the withdrawal address.
pub const MAX_EFFECTIVE_BALANCE_GWEI: u64 = 32 * ETH_IN_GWEI;
/// `MAX_EFFECTIVE_BALANCE_ELECTRA` for 0x02 (compounding) credentials.
pub const MAX_EFFECTIVE_BALANCE_ELECTRA_GWEI: u64 = 2048 * ETH_IN_GWEI;

/// An amount in deposit units (Gwei), as written in `amount`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Gwei(pub u64);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Not a decimal number of coins, or of Gwei with a `gwei` suffix.
    #[error(
        "{0:?} is not an amount: write whole or decimal coins (\"32\", \"1.5\") or units with a suffix (\"32000000000gwei\")"
    )]
    Malformed(String),
    /// More than 9 decimals: not a whole number of Gwei.
    #[error("{0:?} is not a whole number of Gwei (at most 9 decimals)")]
    FractionalGwei(String),
    /// Too large to represent.
    #[error("{0:?} is too large")]
    Overflow(String),
    /// A deposit below `MIN_DEPOSIT_AMOUNT`.
    #[error("deposit of {got} is below the 1 ETH minimum ({MIN_DEPOSIT_GWEI} Gwei)")]
    BelowMinimum {
        /// The amount.
        got: Gwei,
    },
    /// Deposits for one validator that add up to more than its credentials'
    /// maximum effective balance.
    #[error("deposits add up to {total} Gwei, over the {max} Gwei maximum for {kind} credentials")]
    AboveMaximum {
        /// The sum of the validator's deposits.
        total: u128,
        /// The maximum for the kind.
        max: u64,
        /// The credential type's label.
        kind: &'static str,
    },
    /// No amount at all.
    #[error("at least one deposit amount is needed")]
    Empty,
}

impl Gwei {
    /// Parses an amount as a user gives it: a decimal number of the network's
    /// coins (`32`, `1.5`; scaled by the network's multiplier), or a raw
    /// number of units with a `gwei` suffix (`32000000000gwei`).
    ///
    /// # Errors
    ///
    /// [`AmountError`] for malformed, fractional-Gwei or overflowing input.
    pub fn parse(text: &str, network: &Network) -> Result<Self, AmountError> {
        let trimmed = text.trim();
        if let Some(units) = trimmed.strip_suffix("gwei") {
            if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AmountError::Malformed(text.to_owned()));
            }
            return units
                .parse::<u64>()
                .map(Self)
                .map_err(|_| AmountError::Overflow(text.to_owned()));
        }
        let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits_only(whole)
            || !digits_only(fraction)
            || (trimmed.contains('.') && fraction.is_empty())
        {
            return Err(AmountError::Malformed(text.to_owned()));
        }
        let significant = fraction.trim_end_matches('0');
        if significant.len() > 9 {
            return Err(AmountError::FractionalGwei(text.to_owned()));
        }
        let overflow = || AmountError::Overflow(text.to_owned());
        let whole: u64 = whole.parse().map_err(|_| overflow())?;
        let mut frac_gwei: u64 = 0;
        for (i, b) in significant.bytes().enumerate() {
            let digit = u64::from(b - b'0');
            frac_gwei += digit * 10u64.pow(8 - i as u32);
        }
        let coins_in_units = whole
            .checked_mul(ETH_IN_GWEI)
            .and_then(|w| w.checked_add(frac_gwei))
            .ok_or_else(overflow)?;
        coins_in_units
            .checked_mul(network.amount_multiplier())
            .map(Self)
            .ok_or_else(overflow)
    }

    /// The amount as a decimal number of the network's coins.
    pub fn display_in(self, network: &Network) -> String {
        let per_coin = ETH_IN_GWEI * network.amount_multiplier();
        let whole = self.0 / per_coin;
        let rest = self.0 % per_coin;
        if rest == 0 {
            return format!("{whole} {}", network.coin());
        }
        // Up to 9 + log10(32) decimals; print exactly, then trim zeros.
        let scale: u128 = 1_000_000_000_000;
        let frac = u128::from(rest) * scale / u128::from(per_coin);
        let text = format!("{frac:012}");
        format!("{whole}.{} {}", text.trim_end_matches('0'), network.coin())
    }
}

impl fmt::Display for Gwei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Gwei", self.0)
    }
}

/// The largest total deposit for credentials of `kind`.
pub fn max_total(kind: WithdrawalKind) -> u64 {
    match kind {
        WithdrawalKind::Bls | WithdrawalKind::Eth1 => MAX_EFFECTIVE_BALANCE_GWEI,
        WithdrawalKind::Compounding => MAX_EFFECTIVE_BALANCE_ELECTRA_GWEI,
    }
}

/// Checks one deposit against the contract's minimum.
///
/// # Errors
///
/// [`AmountError::BelowMinimum`].
pub fn check_deposit(amount: Gwei) -> Result<(), AmountError> {
    if amount.0 < MIN_DEPOSIT_GWEI {
        return Err(AmountError::BelowMinimum { got: amount });
    }
    Ok(())
}

/// Checks the deposits one validator will receive: each at least 1 ETH, and
/// together at most the maximum effective balance of its credentials.
///
/// # Errors
///
/// [`AmountError`] naming the first rule broken.
pub fn check_deposits(amounts: &[Gwei], kind: WithdrawalKind) -> Result<(), AmountError> {
    if amounts.is_empty() {
        return Err(AmountError::Empty);
    }
    for &amount in amounts {
        check_deposit(amount)?;
    }
    let total: u128 = amounts.iter().map(|a| u128::from(a.0)).sum();
    let max = max_total(kind);
    if total > u128::from(max) {
        return Err(AmountError::AboveMaximum {
            total,
            max,
            kind: kind.label(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_coins_and_units() {
        let mainnet = Network::MAINNET;
        let gnosis: Network = "gnosis".parse().unwrap();
        assert_eq!(Gwei::parse("32", &mainnet).unwrap(), Gwei(32_000_000_000));
        assert_eq!(Gwei::parse("1.5", &mainnet).unwrap(), Gwei(1_500_000_000));
        assert_eq!(Gwei::parse("0.000000001", &mainnet).unwrap(), Gwei(1));
        assert_eq!(Gwei::parse("1", &gnosis).unwrap(), Gwei(32_000_000_000));
        assert_eq!(
            Gwei::parse("32000000000gwei", &gnosis).unwrap(),
            Gwei(32_000_000_000)
        );
        assert!(matches!(
            Gwei::parse("0.0000000001", &mainnet),
            Err(AmountError::FractionalGwei(_))
        ));
        for bad in ["", "1.", ".5", "-1", "1e9", "abc", "gwei", "1.5gwei"] {
            assert!(
                matches!(Gwei::parse(bad, &mainnet), Err(AmountError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Gwei::parse("99999999999999999999", &mainnet),
            Err(AmountError::Overflow(_))
        ));
        assert_eq!(Gwei(32_000_000_000).display_in(&gnosis), "1 GNO");
        assert_eq!(Gwei(1_000_000_000).display_in(&gnosis), "0.03125 GNO");
        assert_eq!(Gwei(1_500_000_000).display_in(&mainnet), "1.5 ETH");
    }

    #[test]
    fn limits_per_credential_kind() {
        let eth = |n: u64| Gwei(n * ETH_IN_GWEI);
        assert!(check_deposits(&[eth(32)], WithdrawalKind::Eth1).is_ok());
        assert!(check_deposits(&[eth(1), eth(31)], WithdrawalKind::Eth1).is_ok());
        assert!(matches!(
            check_deposits(&[eth(32), eth(1)], WithdrawalKind::Eth1),
            Err(AmountError::AboveMaximum { .. })
        ));
        assert!(check_deposits(&[eth(2048)], WithdrawalKind::Compounding).is_ok());
        assert!(matches!(
            check_deposits(&[eth(2049)], WithdrawalKind::Compounding),
            Err(AmountError::AboveMaximum { .. })
        ));
        assert!(matches!(
            check_deposits(&[Gwei(999_999_999)], WithdrawalKind::Compounding),
            Err(AmountError::BelowMinimum { .. })
        ));
        assert_eq!(
            check_deposits(&[], WithdrawalKind::Eth1),
            Err(AmountError::Empty)
        );
    }
}
