//! Network presets: names, genesis fork versions and amount units.
//!
//! Sources: the `GENESIS_FORK_VERSION` of each network's `config.yaml`
//! (consensus-specs `configs/mainnet.yaml` for mainnet; the network repos and
//! their copies in Lighthouse's `built_in_network_configs/`), cross-checked
//! against the deposit CLIs' `settings.py`. Gnosis and Chiado count deposits in
//! mGNO-like units: `MULTIPLIER = 32` (1 GNO is written as 32 000 000 000).

use std::fmt;
use std::str::FromStr;

use crate::hexfmt::{self, Prefix};

/// A network known by name, with its genesis fork version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KnownNetwork {
    /// Ethereum mainnet.
    Mainnet,
    /// The Sepolia testnet.
    Sepolia,
    /// The Holesky testnet (deprecated by the deposit CLIs in favour of Hoodi).
    Holesky,
    /// The Hoodi testnet.
    Hoodi,
    /// Gnosis chain.
    Gnosis,
    /// Chiado, Gnosis chain's testnet.
    Chiado,
}

impl KnownNetwork {
    /// Every known network, in the order `--help` lists them.
    pub const ALL: [Self; 6] = [
        Self::Mainnet,
        Self::Sepolia,
        Self::Holesky,
        Self::Hoodi,
        Self::Gnosis,
        Self::Chiado,
    ];

    /// The name written in `network_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mainnet => "mainnet",
            Self::Sepolia => "sepolia",
            Self::Holesky => "holesky",
            Self::Hoodi => "hoodi",
            Self::Gnosis => "gnosis",
            Self::Chiado => "chiado",
        }
    }

    /// `GENESIS_FORK_VERSION`, the fork version of every deposit domain.
    pub fn genesis_fork_version(self) -> [u8; 4] {
        match self {
            Self::Mainnet => [0x00, 0x00, 0x00, 0x00],
            Self::Sepolia => [0x90, 0x00, 0x00, 0x69],
            Self::Holesky => [0x01, 0x01, 0x70, 0x00],
            Self::Hoodi => [0x10, 0x00, 0x09, 0x10],
            Self::Gnosis => [0x00, 0x00, 0x00, 0x64],
            Self::Chiado => [0x00, 0x00, 0x00, 0x6f],
        }
    }

    /// How many deposit units one native coin is worth, over 10^9
    /// (1 for ETH networks; 32 for Gnosis chains, where 1 GNO = 32 * 10^9).
    pub fn amount_multiplier(self) -> u64 {
        match self {
            Self::Gnosis | Self::Chiado => 32,
            Self::Mainnet | Self::Sepolia | Self::Holesky | Self::Hoodi => 1,
        }
    }

    /// The symbol of the network's staking coin.
    pub fn coin(self) -> &'static str {
        match self {
            Self::Gnosis | Self::Chiado => "GNO",
            Self::Mainnet | Self::Sepolia | Self::Holesky | Self::Hoodi => "ETH",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.name() == name)
    }
}

/// The network deposits are made on: a known preset, or a custom network
/// given by name and genesis fork version (devnets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Network {
    /// A preset network.
    Known(KnownNetwork),
    /// A custom network.
    Custom {
        /// Its `network_name`.
        name: String,
        /// Its `GENESIS_FORK_VERSION`.
        genesis_fork_version: [u8; 4],
    },
}

/// Why a network could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// Not a known network name.
    #[error(
        "unknown network {0:?} (known: mainnet, sepolia, holesky, hoodi, gnosis, chiado; or NAME:0xFORKVERSION for a custom network)"
    )]
    Unknown(String),
    /// A custom network with a malformed fork version.
    #[error("bad fork version for custom network {name:?}: {source}")]
    BadForkVersion {
        /// The custom network's name.
        name: String,
        /// The hex problem.
        source: hexfmt::HexError,
    },
    /// A custom network that reuses a known name or has an unusable name.
    #[error(
        "custom network name {0:?} must be non-empty, lowercase [a-z0-9-] and not a known network's name"
    )]
    BadCustomName(String),
}

impl Network {
    /// Mainnet.
    pub const MAINNET: Self = Self::Known(KnownNetwork::Mainnet);
    /// Hoodi.
    pub const HOODI: Self = Self::Known(KnownNetwork::Hoodi);

    /// The name written in `network_name`.
    pub fn name(&self) -> &str {
        match self {
            Self::Known(known) => known.name(),
            Self::Custom { name, .. } => name,
        }
    }

    /// `GENESIS_FORK_VERSION`.
    pub fn genesis_fork_version(&self) -> [u8; 4] {
        match self {
            Self::Known(known) => known.genesis_fork_version(),
            Self::Custom {
                genesis_fork_version,
                ..
            } => *genesis_fork_version,
        }
    }

    /// Deposit units per native coin over 10^9 (custom networks count in ETH).
    pub fn amount_multiplier(&self) -> u64 {
        match self {
            Self::Known(known) => known.amount_multiplier(),
            Self::Custom { .. } => 1,
        }
    }

    /// The staking coin's symbol.
    pub fn coin(&self) -> &'static str {
        match self {
            Self::Known(known) => known.coin(),
            Self::Custom { .. } => "ETH",
        }
    }

    /// The known network with this exact name, if any.
    pub fn known(name: &str) -> Option<Self> {
        KnownNetwork::from_name(name).map(Self::Known)
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    /// Parses `mainnet`, `hoodi`, … or `NAME:0xFORKVERSION` for a custom
    /// network (for example `devnet-7:0x10000910`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(known) = Self::known(text) {
            return Ok(known);
        }
        let Some((name, version)) = text.split_once(':') else {
            return Err(NetworkError::Unknown(text.to_owned()));
        };
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && KnownNetwork::from_name(name).is_none();
        if !valid_name {
            return Err(NetworkError::BadCustomName(name.to_owned()));
        }
        let genesis_fork_version =
            hexfmt::decode_fixed::<4>(version, Prefix::Optional).map_err(|source| {
                NetworkError::BadForkVersion {
                    name: name.to_owned(),
                    source,
                }
            })?;
        Ok(Self::Custom {
            name: name.to_owned(),
            genesis_fork_version,
        })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(known) => f.write_str(known.name()),
            Self::Custom {
                name,
                genesis_fork_version,
            } => {
                write!(f, "{name}:0x{}", hex::encode(genesis_fork_version))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fork_versions_match_the_reference() {
        let expected = [
            ("mainnet", "00000000", 1),
            ("sepolia", "90000069", 1),
            ("holesky", "01017000", 1),
            ("hoodi", "10000910", 1),
            ("gnosis", "00000064", 32),
            ("chiado", "0000006f", 32),
        ];
        for (name, fork, multiplier) in expected {
            let network: Network = name.parse().unwrap();
            assert_eq!(network.name(), name);
            assert_eq!(hex::encode(network.genesis_fork_version()), fork);
            assert_eq!(network.amount_multiplier(), multiplier);
            assert_eq!(network.to_string(), name);
        }
    }

    #[test]
    fn custom_networks() {
        let network: Network = "devnet-7:0x10000910".parse().unwrap();
        assert_eq!(network.name(), "devnet-7");
        assert_eq!(network.genesis_fork_version(), [0x10, 0, 0x09, 0x10]);
        assert_eq!(network.to_string(), "devnet-7:0x10000910");
        assert!(matches!(
            "mainnet:0x00000001".parse::<Network>(),
            Err(NetworkError::BadCustomName(_))
        ));
        assert!(matches!(
            "dev:0x123".parse::<Network>(),
            Err(NetworkError::BadForkVersion { .. })
        ));
        assert!(matches!(
            "mainet".parse::<Network>(),
            Err(NetworkError::Unknown(_))
        ));
    }
}
