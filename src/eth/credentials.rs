//! Execution addresses (EIP-55) and withdrawal credentials.
//!
//! Layouts from consensus-specs `phase0/validator.md` ("Withdrawal
//! credentials") and `electra/beacon-chain.md` (EIP-7251):
//!
//! - `0x00 ‖ sha256(bls_withdrawal_pubkey)[1..32]`, legacy BLS credentials:
//!   read and verified, never generated;
//! - `0x01 ‖ 0x00 * 11 ‖ address`, `ETH1_ADDRESS_WITHDRAWAL_PREFIX`;
//! - `0x02 ‖ 0x00 * 11 ‖ address`, `COMPOUNDING_WITHDRAWAL_PREFIX`.

use std::fmt;
use std::str::FromStr;

use sha3::{Digest, Keccak256};

use crate::hexfmt::{self, Prefix};

/// A 20-byte execution-layer address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecutionAddress([u8; 20]);

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not 0x followed by 40 hex digits.
    #[error("not an execution address: {0}")]
    Malformed(hexfmt::HexError),
    /// Mixed case that is not the EIP-55 checksum.
    #[error("bad EIP-55 checksum in {given} (the checksummed form is {expected})")]
    BadChecksum {
        /// The address as given.
        given: String,
        /// The correctly checksummed address.
        expected: String,
    },
}

impl ExecutionAddress {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The EIP-55 mixed-case checksummed form, with `0x`.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            // EIP-55: uppercase a letter when the matching nibble of
            // keccak256(lowercase hex) is >= 8.
            let byte = hash.get(i / 2).copied().unwrap_or(0);
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            out.push(if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }
}

impl FromStr for ExecutionAddress {
    type Err = AddressError;

    /// Parses `0x` + 40 hex digits. All-lowercase and all-uppercase input is
    /// taken as is; mixed case must carry a valid EIP-55 checksum.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes =
            hexfmt::decode_fixed::<20>(text, Prefix::Required).map_err(AddressError::Malformed)?;
        let address = Self(bytes);
        let digits = text.get(2..).unwrap_or_default();
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            let expected = address.to_checksum();
            if expected.get(2..) != Some(digits) {
                return Err(AddressError::BadChecksum {
                    given: text.to_owned(),
                    expected,
                });
            }
        }
        Ok(address)
    }
}

impl fmt::Display for ExecutionAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for ExecutionAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutionAddress({})", self.to_checksum())
    }
}

/// The withdrawal credential types a deposit can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithdrawalKind {
    /// `0x00`: BLS withdrawal key (legacy; read only).
    Bls,
    /// `0x01`: execution address, 32 ETH maximum effective balance.
    Eth1,
    /// `0x02`: compounding execution address (EIP-7251), 2048 ETH maximum.
    Compounding,
}

impl WithdrawalKind {
    /// The credential prefix byte.
    pub fn prefix(self) -> u8 {
        match self {
            Self::Bls => 0x00,
            Self::Eth1 => 0x01,
            Self::Compounding => 0x02,
        }
    }

    /// How the kind is written in definitions and messages (`0x01`, …).
    pub fn label(self) -> &'static str {
        match self {
            Self::Bls => "0x00",
            Self::Eth1 => "0x01",
            Self::Compounding => "0x02",
        }
    }
}

impl FromStr for WithdrawalKind {
    type Err = String;

    /// Parses the kinds a new deposit may use: `0x01` / `01` / `eth1`, and
    /// `0x02` / `02` / `compounding`. `0x00` is refused: it is never generated.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "0x01" | "01" | "eth1" => Ok(Self::Eth1),
            "0x02" | "02" | "compounding" => Ok(Self::Compounding),
            "0x00" | "00" | "bls" => Err(
                "0x00 (BLS) withdrawal credentials are never generated; use 0x01 or 0x02"
                    .to_owned(),
            ),
            other => Err(format!(
                "unknown withdrawal type {other:?}: expected 0x01 or 0x02"
            )),
        }
    }
}

/// 32-byte withdrawal credentials, parsed by their prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithdrawalCredentials {
    /// `0x00 ‖ sha256(bls pubkey)[1..]`; the 31-byte hash tail is kept.
    Bls([u8; 31]),
    /// `0x01 ‖ 0x00 * 11 ‖ address`.
    Eth1(ExecutionAddress),
    /// `0x02 ‖ 0x00 * 11 ‖ address`.
    Compounding(ExecutionAddress),
}

/// Why 32 bytes are not withdrawal credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// A prefix other than 0x00, 0x01 or 0x02.
    #[error("unknown withdrawal credentials prefix 0x{0:02x} (expected 0x00, 0x01 or 0x02)")]
    UnknownPrefix(u8),
    /// 0x01/0x02 credentials whose 11 padding bytes are not zero.
    #[error("bytes 1..12 of 0x{0:02x} withdrawal credentials must be zero")]
    NonZeroPadding(u8),
}

impl WithdrawalCredentials {
    /// Credentials of `kind` paying out to `address`.
    ///
    /// Returns `None` for [`WithdrawalKind::Bls`], which this tool never
    /// generates.
    pub fn for_address(kind: WithdrawalKind, address: ExecutionAddress) -> Option<Self> {
        match kind {
            WithdrawalKind::Eth1 => Some(Self::Eth1(address)),
            WithdrawalKind::Compounding => Some(Self::Compounding(address)),
            WithdrawalKind::Bls => None,
        }
    }

    /// Parses the 32 bytes of a deposit's `withdrawal_credentials`.
    ///
    /// # Errors
    ///
    /// [`CredentialsError`] for an unknown prefix or non-zero padding.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CredentialsError> {
        let (prefix, rest) = bytes
            .split_first()
            .ok_or(CredentialsError::UnknownPrefix(0))?;
        if *prefix == 0x00 {
            let mut tail = [0u8; 31];
            tail.copy_from_slice(rest);
            return Ok(Self::Bls(tail));
        }
        let (padding, address) = rest.split_at(11);
        let mut addr = [0u8; 20];
        addr.copy_from_slice(address);
        let credentials = match prefix {
            0x01 => Self::Eth1(ExecutionAddress(addr)),
            0x02 => Self::Compounding(ExecutionAddress(addr)),
            other => return Err(CredentialsError::UnknownPrefix(*other)),
        };
        if padding.iter().any(|&b| b != 0) {
            return Err(CredentialsError::NonZeroPadding(*prefix));
        }
        Ok(credentials)
    }

    /// The 32 bytes as written in deposits.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        match self {
            Self::Bls(tail) => out[1..].copy_from_slice(tail),
            Self::Eth1(address) | Self::Compounding(address) => {
                out[0] = self.kind().prefix();
                out[12..].copy_from_slice(address.as_bytes());
            }
        }
        out
    }

    /// The credential type.
    pub fn kind(&self) -> WithdrawalKind {
        match self {
            Self::Bls(_) => WithdrawalKind::Bls,
            Self::Eth1(_) => WithdrawalKind::Eth1,
            Self::Compounding(_) => WithdrawalKind::Compounding,
        }
    }

    /// The execution address paid out to, unless these are BLS credentials.
    pub fn address(&self) -> Option<ExecutionAddress> {
        match self {
            Self::Bls(_) => None,
            Self::Eth1(address) | Self::Compounding(address) => Some(*address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // EIP-55's own examples.
    const CHECKSUMMED: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_examples_round_trip() {
        for text in CHECKSUMMED {
            let address: ExecutionAddress = text.parse().unwrap();
            assert_eq!(address.to_checksum(), text);
            // Single-case input is accepted without a checksum.
            assert_eq!(
                text.to_lowercase().parse::<ExecutionAddress>().unwrap(),
                address
            );
            let upper = format!("0x{}", &text[2..].to_uppercase());
            assert_eq!(upper.parse::<ExecutionAddress>().unwrap(), address);
        }
    }

    #[test]
    fn bad_checksum_is_named() {
        let bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
        match bad.parse::<ExecutionAddress>() {
            Err(AddressError::BadChecksum { given, expected }) => {
                assert_eq!(given, bad);
                assert_eq!(expected, CHECKSUMMED[0]);
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        assert!(matches!(
            "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".parse::<ExecutionAddress>(),
            Err(AddressError::Malformed(_))
        ));
    }

    #[test]
    fn credentials_layouts() {
        let address: ExecutionAddress = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad"
            .parse()
            .unwrap();
        let eth1 = WithdrawalCredentials::for_address(WithdrawalKind::Eth1, address).unwrap();
        assert_eq!(
            hex::encode(eth1.to_bytes()),
            "0100000000000000000000000f51bb10119727a7e5ea3538074fb341f56b09ad"
        );
        let compounding =
            WithdrawalCredentials::for_address(WithdrawalKind::Compounding, address).unwrap();
        assert_eq!(
            hex::encode(compounding.to_bytes()),
            "0200000000000000000000000f51bb10119727a7e5ea3538074fb341f56b09ad"
        );
        assert_eq!(
            WithdrawalCredentials::from_bytes(&compounding.to_bytes()).unwrap(),
            compounding
        );
        assert!(WithdrawalCredentials::for_address(WithdrawalKind::Bls, address).is_none());

        let mut bls = [0x49u8; 32];
        bls[0] = 0;
        let parsed = WithdrawalCredentials::from_bytes(&bls).unwrap();
        assert_eq!(parsed.kind(), WithdrawalKind::Bls);
        assert_eq!(parsed.to_bytes(), bls);

        let mut padded = compounding.to_bytes();
        padded[5] = 1;
        assert_eq!(
            WithdrawalCredentials::from_bytes(&padded),
            Err(CredentialsError::NonZeroPadding(2))
        );
        let mut prefix = compounding.to_bytes();
        prefix[0] = 3;
        assert_eq!(
            WithdrawalCredentials::from_bytes(&prefix),
            Err(CredentialsError::UnknownPrefix(3))
        );
    }
}
