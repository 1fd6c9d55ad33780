//! Network presets: names, genesis fork versions and amount units.
//!
//! Sources: the `GENESIS_FORK_VERSION` of each network's `config.yaml`
//! (consensus-specs `configs/mainnet.yaml` for mainnet; the network repos and
//! their copies in Lighthouse's `built_in_network_configs/`), cross-checked
//! against the deposit CLIs' `settings.py`. Gnosis and Chiado count deposits in
//! mGNO-like units: `MULTIPLIER = 32` (1 GNO is written as 32 000 000 000).
//!
//! Genesis validators roots (the `genesis_validators_root` of each chain's
//! genesis state, which EIP-3076 interchange files and exit domains carry):
//! the table of `../shared/reference/eth-formats.md` §2, which matches the
//! deposit CLIs' `settings.py` (`GENESIS_VALIDATORS_ROOT`, used there for
//! BLS-to-execution changes) and each network's published parameters (for
//! example the Hoodi README of `eth-clients/hoodi`). A chain's root is fixed
//! at genesis, so these never change; a custom network has none here.
//!
//! Chain clocks (genesis time, `SECONDS_PER_SLOT`, `SLOTS_PER_EPOCH`), used
//! only to tell whether a slashing-protection history runs beyond the
//! current epoch: each chain's genesis state `genesis_time` (for Hoodi,
//! `MIN_GENESIS_TIME` 1742212800 + `GENESIS_DELAY` 600 of its `config.yaml`;
//! mainnet's as in Lodestar's published network genesis data), 12-second
//! slots and 32-slot epochs on the Ethereum chains, 5 and 16 on Gnosis and
//! Chiado.

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

    /// The chain's `genesis_validators_root`, which names it in EIP-3076
    /// slashing-protection files (sources in the module docs).
    pub fn genesis_validators_root(self) -> [u8; 32] {
        match self {
            Self::Mainnet => MAINNET_GENESIS_VALIDATORS_ROOT,
            Self::Sepolia => SEPOLIA_GENESIS_VALIDATORS_ROOT,
            Self::Holesky => HOLESKY_GENESIS_VALIDATORS_ROOT,
            Self::Hoodi => HOODI_GENESIS_VALIDATORS_ROOT,
            Self::Gnosis => GNOSIS_GENESIS_VALIDATORS_ROOT,
            Self::Chiado => CHIADO_GENESIS_VALIDATORS_ROOT,
        }
    }

    /// The chain's clock: genesis time (Unix seconds), seconds per slot and
    /// slots per epoch, which tell the current slot and epoch by the wall
    /// clock (sources in the module docs).
    pub fn clock(self) -> ChainClock {
        let (genesis_time, seconds_per_slot, slots_per_epoch) = match self {
            Self::Mainnet => (1_606_824_023, 12, 32),
            Self::Sepolia => (1_655_733_600, 12, 32),
            Self::Holesky => (1_695_902_400, 12, 32),
            Self::Hoodi => (1_742_213_400, 12, 32),
            Self::Gnosis => (1_638_993_340, 5, 16),
            Self::Chiado => (1_665_396_300, 5, 16),
        };
        ChainClock {
            genesis_time,
            seconds_per_slot,
            slots_per_epoch,
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

const MAINNET_GENESIS_VALIDATORS_ROOT: [u8; 32] =
    hex_root(b"4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95");
const SEPOLIA_GENESIS_VALIDATORS_ROOT: [u8; 32] =
    hex_root(b"d8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078");
const HOLESKY_GENESIS_VALIDATORS_ROOT: [u8; 32] =
    hex_root(b"9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1");
const HOODI_GENESIS_VALIDATORS_ROOT: [u8; 32] =
    hex_root(b"212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f");
const GNOSIS_GENESIS_VALIDATORS_ROOT: [u8; 32] =
    hex_root(b"f5dcb5564e829aab27264b9becd5dfaa017085611224cb3036f573368dbb9d47");
const CHIADO_GENESIS_VALIDATORS_ROOT: [u8; 32] =
    hex_root(b"9d642dac73058fbf39c0ae41ab1e34e4d889043cb199851ded7095bc99eb4c1e");

/// A chain's slot clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainClock {
    /// The genesis state's `genesis_time`, in Unix seconds.
    pub genesis_time: u64,
    /// `SECONDS_PER_SLOT`.
    pub seconds_per_slot: u64,
    /// `SLOTS_PER_EPOCH`.
    pub slots_per_epoch: u64,
}

impl ChainClock {
    /// The slot at Unix time `now` (slot 0 before genesis).
    pub fn slot_at(&self, now: u64) -> u64 {
        now.saturating_sub(self.genesis_time) / self.seconds_per_slot.max(1)
    }

    /// The epoch at Unix time `now` (epoch 0 before genesis).
    pub fn epoch_at(&self, now: u64) -> u64 {
        self.slot_at(now) / self.slots_per_epoch.max(1)
    }
}

/// Decodes 64 lowercase hex digits at compile time (only the constants
/// above call it, so a bad digit or index is a build error, not a panic; a
/// unit test also checks each root against the reference table).
#[allow(clippy::indexing_slicing)]
const fn hex_root(hex: &[u8; 64]) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (digit(hex[2 * i]) << 4) | digit(hex[2 * i + 1]);
        i += 1;
    }
    out
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

    /// The chain's `genesis_validators_root`; `None` for a custom network,
    /// whose root dvkg cannot know (pass it with `--genesis-validators-root`).
    pub fn genesis_validators_root(&self) -> Option<[u8; 32]> {
        match self {
            Self::Known(known) => Some(known.genesis_validators_root()),
            Self::Custom { .. } => None,
        }
    }

    /// The chain's clock; `None` for a custom network, whose genesis time
    /// dvkg cannot know.
    pub fn clock(&self) -> Option<ChainClock> {
        match self {
            Self::Known(known) => Some(known.clock()),
            Self::Custom { .. } => None,
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
    fn clocks_count_slots_and_epochs_from_genesis() {
        let clock = KnownNetwork::Mainnet.clock();
        assert_eq!(clock.slot_at(0), 0);
        assert_eq!(clock.slot_at(clock.genesis_time + 11), 0);
        assert_eq!(clock.slot_at(clock.genesis_time + 12 * 33), 33);
        assert_eq!(clock.epoch_at(clock.genesis_time + 12 * 33), 1);
        let gnosis = KnownNetwork::Gnosis.clock();
        assert_eq!(gnosis.epoch_at(gnosis.genesis_time + 5 * 16 * 7 + 4), 7);
        assert!(Network::known("hoodi").and_then(|n| n.clock()).is_some());
    }

    #[test]
    fn genesis_validators_roots_match_the_reference() {
        // eth-formats.md §2.
        let expected = [
            (
                "mainnet",
                "4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
            ),
            (
                "sepolia",
                "d8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
            ),
            (
                "holesky",
                "9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1",
            ),
            (
                "hoodi",
                "212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
            ),
            (
                "gnosis",
                "f5dcb5564e829aab27264b9becd5dfaa017085611224cb3036f573368dbb9d47",
            ),
            (
                "chiado",
                "9d642dac73058fbf39c0ae41ab1e34e4d889043cb199851ded7095bc99eb4c1e",
            ),
        ];
        assert_eq!(expected.len(), KnownNetwork::ALL.len());
        for (name, root) in expected {
            let network: Network = name.parse().unwrap();
            assert_eq!(
                hex::encode(network.genesis_validators_root().unwrap()),
                root
            );
        }
        let custom: Network = "devnet-7:0x10000910".parse().unwrap();
        assert_eq!(custom.genesis_validators_root(), None);
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
