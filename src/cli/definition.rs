//! `dvkg definition new|verify`: the cluster definition every operator signs
//! up to before a ceremony (format: `ceremony::definition`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::ceremony::definition::ssv::NewSsv;
use crate::ceremony::definition::{
    self, ClusterDefinition, DefinitionError, NewDefinition, NewReshare, NewSplit, OperatorRecord,
    ValidDefinition,
};
use crate::ceremony::lock::ClusterLock;
use crate::ceremony::{MAX_OPERATORS, MAX_VALIDATORS, Params, ParamsError};
use crate::dkg::plan::CeremonyKind;
use crate::error::CliError;
use crate::eth::amount::MAX_EFFECTIVE_BALANCE_GWEI;
use crate::eth::{ExecutionAddress, Gwei, Network, WithdrawalKind};
use crate::ssv::CreatedAt;
use crate::store::{self, StoreError};

/// The deposit of one validator when no `--amount` is given: 32 * 10^9
/// units, which is 32 ETH, or 1 GNO on Gnosis chains.
pub const DEFAULT_AMOUNT: Gwei = Gwei(MAX_EFFECTIVE_BALANCE_GWEI);

/// The cluster name when no `--name` is given.
pub const DEFAULT_CLUSTER_NAME: &str = "cluster";

/// The withdrawal credential type of `definition new` and `demo` when
/// `--withdrawal-type` is not given: 0x01, what the deposit CLIs, charon
/// and ssv-dkg write for an execution address unless compounding is asked
/// for; 0x02 (compounding, up to 2048 ETH per validator) is opted into.
pub const DEFAULT_WITHDRAWAL_TYPE: &str = "0x01";

/// `dvkg definition` subcommands.
#[derive(Debug, Subcommand)]
pub enum DefinitionCommand {
    /// Build `cluster-definition.json` from operator records and parameters.
    New(Box<NewArgs>),
    /// Build a split's definition: existing validator keys (read from their
    /// keystores' public keys, no password needed), a dealer who holds
    /// them, and the operators who will hold the shares.
    Split(Box<SplitArgs>),
    /// Build a reshare's definition: the previous lock's validator keys,
    /// kept, dealt by previous operators to a new roster (or the same one,
    /// for fresh shares).
    Reshare(Box<ReshareArgs>),
    /// Check a cluster definition and print its summary and hash.
    Verify(VerifyArgs),
}

/// Arguments of `dvkg definition split`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg definition split --operator op1.json --operator op2.json --operator op3.json --operator op4.json --dealer dealer.json --keystores validator_keys --network hoodi")]
pub struct SplitArgs {
    /// An operator record (`operator.json`, or its JSON inline), once per
    /// operator: the operators receive the shares.
    #[arg(long = "operator", value_name = "FILE", required = true)]
    pub operators: Vec<PathBuf>,
    /// The dealer's operator record: the party that holds the keys and
    /// deals them. It must be an identity of its own; an operator that also
    /// holds the keys makes a second identity for dealing.
    #[arg(long, value_name = "FILE")]
    pub dealer: PathBuf,
    /// The directory of the validators' EIP-2335 keystores (only their
    /// public keys are read here).
    #[arg(long, value_name = "DIR")]
    pub keystores: PathBuf,
    /// Operators needed to sign (default ceil(2n/3), or SSV's).
    #[arg(long, value_name = "T")]
    pub threshold: Option<u64>,
    /// The network the validators are on.
    #[arg(long, value_name = "NAME", default_value = "mainnet")]
    pub network: String,
    /// Fee recipient address.
    #[arg(long, value_name = "ADDRESS")]
    pub fee_recipient: Option<String>,
    /// A name for the cluster.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CLUSTER_NAME)]
    pub name: String,
    /// Where to write the definition (never overwritten).
    #[arg(long, value_name = "FILE", default_value = "cluster-definition.json")]
    pub out: PathBuf,
    /// Split into an SSV cluster registered by this owner address.
    #[arg(long, value_name = "ADDRESS", requires = "ssv_nonce")]
    pub ssv_owner: Option<String>,
    /// The owner's next SSV registration nonce: validator v uses N + v.
    #[arg(long, value_name = "N", requires = "ssv_owner")]
    pub ssv_nonce: Option<u64>,
    /// The createdAt written into keyshares.json (RFC 3339; default: now).
    #[arg(long, value_name = "TIME", requires = "ssv_owner")]
    pub ssv_created_at: Option<String>,
}

/// Arguments of `dvkg definition reshare`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg definition reshare --previous-lock out/cluster-lock.json --replace 2=new-op2.json
  dvkg definition reshare --previous-lock out/cluster-lock.json --add op5.json --threshold 4 --out reshare-definition.json")]
pub struct ReshareArgs {
    /// The lock of the ceremony whose shares are reshared (it must verify).
    #[arg(long, value_name = "FILE")]
    pub previous_lock: PathBuf,
    /// The whole new roster, one operator record per flag (instead of
    /// editing the previous one with --add, --remove, --replace).
    #[arg(long = "operator", value_name = "FILE", conflicts_with_all = ["add", "remove", "replace"])]
    pub operators: Vec<PathBuf>,
    /// Add an operator (its record) to the previous roster.
    #[arg(long, value_name = "FILE")]
    pub add: Vec<PathBuf>,
    /// Remove previous operator I from the roster.
    #[arg(long, value_name = "I")]
    pub remove: Vec<u64>,
    /// Replace previous operator I (lost, or leaving) by the operator of
    /// record FILE, at the same position.
    #[arg(long, value_name = "I=FILE")]
    pub replace: Vec<String>,
    /// The new threshold (default ceil(2n/3), or SSV's).
    #[arg(long, value_name = "T")]
    pub threshold: Option<u64>,
    /// The previous operators that deal, by previous index, e.g. 1,3,4
    /// (default: every previous operator still in the roster). At least the
    /// previous threshold.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub dealers: Vec<u64>,
    /// Reshare only these validators of the previous lock, by position,
    /// e.g. 0,2 (default: all).
    #[arg(long = "validators", value_name = "LIST", value_delimiter = ',')]
    pub validator_indices: Vec<u64>,
    /// For an SSV cluster: the owner's next registration nonce, for the new
    /// keyshares.json (validator v uses N + v).
    #[arg(long, value_name = "N")]
    pub ssv_nonce: Option<u64>,
    /// The createdAt written into keyshares.json (RFC 3339; default: now).
    #[arg(long, value_name = "TIME", requires = "ssv_nonce")]
    pub ssv_created_at: Option<String>,
    /// A name for the new cluster (default: the previous one's).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where to write the definition (never overwritten).
    #[arg(long, value_name = "FILE", default_value = "cluster-definition.json")]
    pub out: PathBuf,
}

/// Arguments of `dvkg definition new`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  dvkg definition new --operator op1.json --operator op2.json --operator op3.json --operator op4.json --network hoodi --withdrawal-address 0x0f51bb10119727a7e5ea3538074fb341f56b09ad
  dvkg definition new --operator op1.json --operator op2.json --operator op3.json --operator op4.json --threshold 3 --validators 10 --network mainnet --withdrawal-address 0x0f51bb10119727a7e5ea3538074fb341f56b09ad --withdrawal-type 0x02 --out cluster-definition.json

Send the file to every operator; each checks it with `dvkg definition verify`
and compares the printed hash.")]
pub struct NewArgs {
    /// An operator record: a file written by `dvkg identity new`
    /// (`operator.json`), or that JSON inline (starting with `{`). Once per
    /// operator, in operator order.
    #[arg(long = "operator", value_name = "FILE", required = true)]
    pub operators: Vec<PathBuf>,
    /// Operators needed to sign for a validator: more than half of them, at
    /// most all (default ceil(2n/3)).
    #[arg(long, value_name = "T")]
    pub threshold: Option<u64>,
    /// Number of validators to create (1 to 65536).
    #[arg(long, value_name = "V", default_value_t = 1)]
    pub validators: u64,
    /// Network: mainnet, sepolia, holesky, hoodi, gnosis, chiado or NAME:0xFORKVERSION.
    #[arg(long, value_name = "NAME")]
    pub network: String,
    /// Execution address withdrawals go to.
    #[arg(long, value_name = "ADDRESS")]
    pub withdrawal_address: String,
    /// Withdrawal credential type: 0x01 or 0x02 (compounding).
    #[arg(long, value_name = "TYPE", default_value = DEFAULT_WITHDRAWAL_TYPE)]
    pub withdrawal_type: String,
    /// Fee recipient address.
    #[arg(long, value_name = "ADDRESS")]
    pub fee_recipient: Option<String>,
    /// Deposit amount per validator, in the network's coin ("32", "1.5") or
    /// in units with a suffix ("32000000000gwei"); repeat for several
    /// deposits per validator. Default: one deposit of 32 ETH (1 GNO on
    /// Gnosis chains).
    #[arg(long = "amount", value_name = "AMOUNT")]
    pub amounts: Vec<String>,
    /// A name for the cluster.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CLUSTER_NAME)]
    pub name: String,
    /// Where to write the definition (never overwritten).
    #[arg(long, value_name = "FILE", default_value = "cluster-definition.json")]
    pub out: PathBuf,
    /// Make an SSV cluster registered by this owner address: shares at the
    /// operators' SSV ids, a keyshares.json among the outputs. Every
    /// operator record must carry its SSV id and key.
    #[arg(long, value_name = "ADDRESS", requires = "ssv_nonce")]
    pub ssv_owner: Option<String>,
    /// The owner's next SSV registration nonce: validator v uses N + v (the
    /// owner's number of registrations so far, as the SSV web app shows).
    #[arg(long, value_name = "N", requires = "ssv_owner")]
    pub ssv_nonce: Option<u64>,
    /// The createdAt written into keyshares.json (RFC 3339; default: now).
    /// The definition fixes it, so every operator writes the same file.
    #[arg(long, value_name = "TIME", requires = "ssv_owner")]
    pub ssv_created_at: Option<String>,
}

/// Arguments of `dvkg definition verify`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  dvkg definition verify cluster-definition.json")]
pub struct VerifyArgs {
    /// The definition to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `NewArgs`, parsed: everything the definition is made of.
#[derive(Debug)]
pub struct NewConfig {
    /// The definition's contents, not yet checked as a whole.
    pub definition: NewDefinition,
    /// Where to write it.
    pub out: PathBuf,
}

fn parse_flag<T, E>(
    flag: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, CliError>
where
    E: std::error::Error + 'static,
{
    parse(text).map_err(|err| {
        CliError::user(format!("invalid value for {flag}: {text:?}")).with_source(&err)
    })
}

/// Reads one `--operator` value: inline JSON or a file.
fn read_operator(index: usize, value: &Path) -> Result<OperatorRecord, CliError> {
    let inline = value
        .to_str()
        .filter(|text| text.trim_start().starts_with('{'));
    let (text, shown) = match inline {
        Some(text) => (text.to_owned(), "inline JSON".to_owned()),
        None => {
            let text =
                store::read_text(value, definition::MAX_OPERATOR_FILE_BYTES).map_err(|err| {
                    CliError::user(format!(
                        "failed to read the operator record given as --operator #{index}"
                    ))
                    .with_source(&err)
                    .with_hint(
                        "pass the operator.json written by `dvkg identity new`, or its JSON inline",
                    )
                })?;
            (text, value.display().to_string())
        }
    };
    OperatorRecord::from_file_json(&text).map_err(|err| {
        CliError::user(format!(
            "invalid operator record for operator {index} (--operator #{index}, {shown})"
        ))
        .with_source(&err)
        .with_hint(format!(
            "ask operator {index} for the operator record printed by `dvkg identity new` or `dvkg identity show --json`"
        ))
    })
}

const ADDRESS_HINT: &str = "give 0x and 40 hex digits, all lowercase or EIP-55 checksummed";

/// The SSV flags, parsed.
fn ssv_flags(
    owner: Option<&str>,
    nonce: Option<u64>,
    created_at: Option<&str>,
) -> Result<Option<NewSsv>, CliError> {
    let (Some(owner), Some(nonce)) = (owner, nonce) else {
        return Ok(None);
    };
    let owner: ExecutionAddress =
        parse_flag("--ssv-owner", owner, str::parse).map_err(|err| err.with_hint(ADDRESS_HINT))?;
    let created_at = match created_at {
        Some(text) => parse_flag("--ssv-created-at", text, CreatedAt::parse).map_err(|err| {
            err.with_hint("write an RFC 3339 time, for example 2026-12-01T12:00:00Z")
        })?,
        None => CreatedAt::now(),
    };
    Ok(Some(NewSsv {
        owner,
        nonce,
        created_at,
    }))
}

/// `SplitArgs`, parsed.
#[derive(Debug)]
pub struct SplitConfig {
    /// The definition's contents, not yet checked as a whole.
    pub definition: NewSplit,
    /// The keystores the keys came from, for the summary.
    pub keystores: Vec<(PathBuf, crate::wire::Bytes<48>)>,
    /// Where to write it.
    pub out: PathBuf,
}

impl SplitConfig {
    /// Parses every flag, reads the records and the keystores' public keys.
    ///
    /// # Errors
    ///
    /// A user error naming the flag, file (and operator) at fault.
    pub fn from_args(args: SplitArgs) -> Result<Self, CliError> {
        let network: Network = parse_flag("--network", &args.network, str::parse)?;
        let fee_recipient = args
            .fee_recipient
            .as_deref()
            .map(|text| {
                parse_flag::<ExecutionAddress, _>("--fee-recipient", text, str::parse)
                    .map_err(|err| err.with_hint(ADDRESS_HINT))
            })
            .transpose()?;
        let ssv = ssv_flags(
            args.ssv_owner.as_deref(),
            args.ssv_nonce,
            args.ssv_created_at.as_deref(),
        )?;
        let operators = args
            .operators
            .iter()
            .enumerate()
            .map(|(position, value)| read_operator(position + 1, value))
            .collect::<Result<Vec<_>, _>>()?;
        let dealer = read_record("--dealer", &args.dealer)?;
        let found = crate::ceremony::split::find_keystores(&args.keystores).map_err(|err| {
            CliError::user(format!(
                "invalid value for --keystores {}",
                args.keystores.display()
            ))
            .with_source(&err)
            .with_hint("give the directory of the validators' EIP-2335 keystores (keystore-*.json)")
        })?;
        let keystores: Vec<(PathBuf, crate::wire::Bytes<48>)> =
            found.iter().map(|k| (k.path.clone(), k.pubkey())).collect();
        Ok(Self {
            definition: NewSplit {
                name: args.name,
                operators,
                dealer,
                threshold: args.threshold,
                validator_keys: keystores.iter().map(|(_, k)| *k).collect(),
                network,
                fee_recipient,
                ssv,
            },
            keystores,
            out: args.out,
        })
    }
}

/// Reads the dealer's record, naming the flag.
fn read_record(flag: &str, value: &Path) -> Result<OperatorRecord, CliError> {
    let inline = value
        .to_str()
        .filter(|text| text.trim_start().starts_with('{'));
    let text = match inline {
        Some(text) => text.to_owned(),
        None => store::read_text(value, definition::MAX_OPERATOR_FILE_BYTES).map_err(|err| {
            CliError::user(format!("failed to read {flag} {}", value.display()))
                .with_source(&err)
                .with_hint("pass the operator.json written by `dvkg identity new` for the dealer")
        })?,
    };
    OperatorRecord::from_file_json(&text).map_err(|err| {
        CliError::user(format!(
            "invalid operator record for {flag} {}",
            value.display()
        ))
        .with_source(&err)
    })
}

impl NewConfig {
    /// Parses every flag and reads the operator records.
    ///
    /// # Errors
    ///
    /// A user error naming the flag (and operator) at fault.
    pub fn from_args(args: NewArgs) -> Result<Self, CliError> {
        let network: Network = parse_flag("--network", &args.network, str::parse)?;
        let withdrawal_kind: WithdrawalKind = args.withdrawal_type.parse().map_err(|reason| {
            CliError::user(format!(
                "invalid value for --withdrawal-type: {:?}: {reason}",
                args.withdrawal_type
            ))
        })?;
        let address_hint = ADDRESS_HINT;
        let withdrawal_address: ExecutionAddress =
            parse_flag("--withdrawal-address", &args.withdrawal_address, str::parse)
                .map_err(|err| err.with_hint(address_hint))?;
        let fee_recipient = args
            .fee_recipient
            .as_deref()
            .map(|text| {
                parse_flag::<ExecutionAddress, _>("--fee-recipient", text, str::parse)
                    .map_err(|err| err.with_hint(address_hint))
            })
            .transpose()?;
        let amounts = if args.amounts.is_empty() {
            vec![DEFAULT_AMOUNT]
        } else {
            args.amounts
                .iter()
                .map(|text| {
                    parse_flag("--amount", text, |t| Gwei::parse(t, &network)).map_err(|err| {
                        err.with_hint(format!(
                            "write a number of {} (\"32\", \"1.5\") or of units with a gwei suffix",
                            network.coin()
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let ssv = ssv_flags(
            args.ssv_owner.as_deref(),
            args.ssv_nonce,
            args.ssv_created_at.as_deref(),
        )?;
        let operators = args
            .operators
            .iter()
            .enumerate()
            .map(|(position, value)| read_operator(position + 1, value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            definition: NewDefinition {
                name: args.name,
                operators,
                threshold: args.threshold,
                validators: args.validators,
                network,
                withdrawal_kind,
                withdrawal_address,
                fee_recipient,
                amounts,
                ssv,
            },
            out: args.out,
        })
    }
}

/// A hint for a refused definition, naming the flag that fixes it.
fn definition_hint(err: &DefinitionError, operators: usize) -> Option<String> {
    let n = u64::try_from(operators).unwrap_or(u64::MAX);
    Some(match err {
        DefinitionError::Params {
            source: ParamsError::Threshold { .. },
            ..
        } => format!(
            "pass --threshold T with {} <= T <= {n}, or leave it out for {}",
            n / 2 + 1,
            Params::default_threshold(n)
        ),
        DefinitionError::Params {
            source: ParamsError::Operators(_),
            ..
        } => format!("pass --operator once per operator: 3 to {MAX_OPERATORS} of them"),
        DefinitionError::Params {
            source: ParamsError::Validators(_),
            ..
        } => format!("pass --validators V with 1 <= V <= {MAX_VALIDATORS}"),
        DefinitionError::DuplicateOperator { field, .. } if field.starts_with("ssv") => {
            "each SSV operator has its own id and key: check the --ssv-operator-id and --ssv-operator-key each operator gave to `dvkg identity new`".to_owned()
        }
        DefinitionError::DuplicateOperator { .. } => {
            "each --operator must be a different operator's record; was one given twice?"
                .to_owned()
        }
        DefinitionError::Operator { index, .. } => {
            format!("ask operator {index} to check its record (`dvkg identity show`)")
        }
        DefinitionError::Amounts(_) => "each --amount must be at least 1 ETH, and together at most 32 ETH for 0x01 credentials or 2048 ETH for 0x02".to_owned(),
        DefinitionError::Name(_) => "pass another --name".to_owned(),
        DefinitionError::SsvClusterSize { .. } => {
            "pass --operator 4, 7, 10 or 13 times, or leave out --ssv-owner for a cluster outside SSV".to_owned()
        }
        DefinitionError::SsvThreshold { expected, .. } => {
            format!("leave out --threshold (or pass --threshold {expected}): SSV fixes it")
        }
        DefinitionError::SsvOperatorMissing { index } => format!(
            "ask operator {index} for a record made with `dvkg identity new --ssv-operator-id ID --ssv-operator-key FILE`"
        ),
        DefinitionError::SsvField { field, .. } => match *field {
            "ssv.nonce" => "pass a smaller --ssv-nonce or fewer --validators".to_owned(),
            _ => "check --ssv-owner and --ssv-created-at".to_owned(),
        },
        _ => return None,
    })
}

fn run_new(config: NewConfig) -> Result<ExitCode, CliError> {
    refuse_existing(&config.out)?;
    let operators = config.definition.operators.len();
    let definition = ClusterDefinition::create(config.definition)
        .map_err(|err| refused_definition(&err, operators))?;
    write_definition(&config.out, &definition)
}

fn run_split(config: SplitConfig) -> Result<ExitCode, CliError> {
    refuse_existing(&config.out)?;
    let operators = config.definition.operators.len();
    let definition = ClusterDefinition::create_split(config.definition)
        .map_err(|err| refused_definition(&err, operators))?;
    for (v, (path, key)) in config.keystores.iter().enumerate() {
        status!(
            "validator {v}: 0x{} from {}",
            hex::encode(key.0),
            path.display()
        );
    }
    write_definition(&config.out, &definition)?;
    eprintln!(
        "the dealer runs `dvkg ceremony --definition {} --keystores DIR --keystore-password-file F`, the operators `dvkg ceremony --definition {}`\n\
         a split cannot retire the original keys: whoever held them, and every copy, backup or mnemonic they came from, can still sign, get the validators slashed or exit them, alone",
        config.out.display(),
        config.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads and checks a previous lock: intact (its lock hash) and, beside it,
/// its transcript when present.
fn read_previous_lock(path: &Path) -> Result<ClusterLock, CliError> {
    let text = store::read_text(path, store::MAX_INPUT_FILE_BYTES).map_err(|err| {
        CliError::user(format!("cannot read --previous-lock {}", path.display())).with_source(&err)
    })?;
    let lock: ClusterLock = serde_json::from_str(&text).map_err(|err| {
        CliError::user(format!(
            "--previous-lock {} is not a cluster lock",
            path.display()
        ))
        .with_source(&err)
        .with_hint("pass the cluster-lock.json of the ceremony whose shares are reshared")
    })?;
    Ok(lock)
}

fn run_reshare(args: ReshareArgs) -> Result<ExitCode, CliError> {
    refuse_existing(&args.out)?;
    let previous = read_previous_lock(&args.previous_lock)?;
    let n_old = previous.definition.operators.len() as u64;
    let index_flag = |flag: &str, i: u64| -> Result<usize, CliError> {
        if i == 0 || i > n_old {
            return Err(CliError::user(format!(
                "invalid value for {flag}: {i} is not an operator of the previous lock (1 to {n_old})"
            )));
        }
        Ok((i - 1) as usize)
    };
    // The roster: given whole, or the previous one edited.
    let mut continuing: Vec<bool> = vec![true; previous.definition.operators.len()];
    let operators: Vec<OperatorRecord> = if !args.operators.is_empty() {
        let records = args
            .operators
            .iter()
            .enumerate()
            .map(|(position, value)| read_operator(position + 1, value))
            .collect::<Result<Vec<_>, _>>()?;
        for (position, old) in previous.definition.operators.iter().enumerate() {
            if let Some(slot) = continuing.get_mut(position) {
                *slot = records.iter().any(|r| r.identity_key == old.identity_key);
            }
        }
        records
    } else {
        let mut slots: Vec<Option<OperatorRecord>> = previous
            .definition
            .operators
            .iter()
            .cloned()
            .map(Some)
            .collect();
        for &i in &args.remove {
            let p = index_flag("--remove", i)?;
            if let (Some(slot), Some(flag)) = (slots.get_mut(p), continuing.get_mut(p)) {
                *slot = None;
                *flag = false;
            }
        }
        for value in &args.replace {
            let (i, file) = value.split_once('=').ok_or_else(|| {
                CliError::user(format!("invalid value for --replace: {value}"))
                    .with_hint("write --replace I=FILE: previous operator I's position goes to the operator of record FILE")
            })?;
            let i: u64 = i.trim().parse().map_err(|_| {
                CliError::user(format!(
                    "invalid value for --replace: {i} is not an operator index"
                ))
            })?;
            let p = index_flag("--replace", i)?;
            let record = read_record("--replace", Path::new(file))?;
            if let (Some(slot), Some(flag)) = (slots.get_mut(p), continuing.get_mut(p)) {
                *slot = Some(record);
                *flag = false;
            }
        }
        let mut records: Vec<OperatorRecord> = slots.into_iter().flatten().collect();
        for value in &args.add {
            records.push(read_record("--add", value)?);
        }
        records
    };
    let dealers: Vec<u64> = if args.dealers.is_empty() {
        (1..=n_old)
            .filter(|&i| continuing.get((i - 1) as usize).copied().unwrap_or(false))
            .collect()
    } else {
        let mut list = args.dealers.clone();
        list.sort_unstable();
        list
    };
    let ssv = match (&previous.definition.ssv, args.ssv_nonce) {
        (Some(old), Some(nonce)) => ssv_flags(
            Some(old.owner.as_str()),
            Some(nonce),
            args.ssv_created_at.as_deref(),
        )?,
        (Some(_), None) => {
            return Err(CliError::user(
                "the previous lock is an SSV cluster's: pass --ssv-nonce N, the owner's next registration nonce",
            )
            .with_hint("the new keyshares.json registers the validators again, at nonces N, N+1, …"));
        }
        (None, Some(_)) => {
            return Err(CliError::user(
                "--ssv-nonce is for the reshare of an SSV cluster, and the previous lock is not one",
            ));
        }
        (None, None) => None,
    };
    let count = operators.len();
    let definition = ClusterDefinition::create_reshare(NewReshare {
        name: args
            .name
            .unwrap_or_else(|| previous.definition.name.clone()),
        previous_lock: previous,
        operators,
        dealers,
        threshold: args.threshold,
        validator_indices: (!args.validator_indices.is_empty())
            .then(|| args.validator_indices.clone()),
        ssv,
    })
    .map_err(|err| {
        refused_definition(&err, count).with_hint(format!(
            "the previous lock is {}: it must be intact and its shares must lie on one polynomial",
            args.previous_lock.display()
        ))
    })?;
    write_definition(&args.out, &definition)?;
    eprintln!(
        "dealers (previous operators): {:?}; each runs `dvkg ceremony --definition {} --previous DIR` with its previous output directory, every other operator `dvkg ceremony --definition {}`
         no reshare revokes the previous shares: any {} previous operators who keep theirs can still sign; after the new lock verifies, each previous operator runs `dvkg retire`",
        definition.dealers.as_deref().unwrap_or_default(),
        args.out.display(),
        args.out.display(),
        definition
            .previous_lock
            .as_ref()
            .map_or(0, |l| l.definition.threshold),
    );
    Ok(ExitCode::SUCCESS)
}

fn refuse_existing(out: &Path) -> Result<(), CliError> {
    if out.symlink_metadata().is_ok() {
        return Err(
            CliError::user(format!("{} already exists", out.display())).with_hint(
                "a definition is never overwritten; pass another --out or remove the file",
            ),
        );
    }
    Ok(())
}

fn refused_definition(err: &DefinitionError, operators: usize) -> CliError {
    let report = CliError::user("refusing to create the cluster definition").with_source(err);
    match definition_hint(err, operators) {
        Some(hint) => report.with_hint(hint),
        None => report,
    }
}

fn write_definition(out: &Path, definition: &ClusterDefinition) -> Result<ExitCode, CliError> {
    let shown = out.display().to_string();
    let text = definition.to_json_pretty().map_err(|err| {
        CliError::internal("failed to encode the cluster definition").with_source(&err)
    })?;
    store::write_new_file(out, text.as_bytes(), 0o644).map_err(|err| {
        let report = CliError::user(format!("failed to write {shown}")).with_source(&err);
        match &err {
            StoreError::Exists { .. } => {
                report.with_hint("a definition is never overwritten; pass another --out")
            }
            _ => report,
        }
    })?;
    let hash = hex::encode(definition.definition_hash.0);
    writeln!(std::io::stdout().lock(), "{hash}").map_err(|err| output_error(&err))?;
    status!(
        "wrote {shown}: {}{} operators, threshold {}, {} validator{} on {}\nsend it to every operator; each checks it with `dvkg definition verify {shown}` and compares the hash {hash}",
        match definition.kind {
            CeremonyKind::Split => "a split, ",
            CeremonyKind::Reshare => "a reshare, ",
            CeremonyKind::Dkg => "",
        },
        definition.operators.len(),
        definition.threshold,
        definition.validators,
        if definition.validators == 1 { "" } else { "s" },
        definition.network,
    );
    if let Some(ssv) = &definition.ssv {
        let ids: Vec<String> = definition
            .operators
            .iter()
            .filter_map(|o| o.ssv.as_ref().map(|s| s.operator_id.to_string()))
            .collect();
        status!(
            "SSV cluster of owner {} from nonce {}: shares at SSV operator ids {}; the ceremony writes keyshares.json for the owner to register",
            ssv.owner,
            ssv.nonce,
            ids.join(", "),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable summary printed by `verify`.
pub fn summary(path: &Path, definition: &ClusterDefinition, valid: &ValidDefinition) -> String {
    let network = &valid.network;
    let mut text = format!(
        "cluster definition {}: ok\n\
         kind:            {}\n\
         name:            {}\n\
         operators:       {} (threshold {})\n\
         validators:      {}\n\
         network:         {} (fork version 0x{})\n",
        path.display(),
        match valid.kind {
            CeremonyKind::Dkg => "dkg (new validator keys)",
            CeremonyKind::Split => "split (existing validator keys, dealt by the dealer)",
            CeremonyKind::Reshare =>
                "reshare (the previous lock's validator keys, kept; new shares)",
        },
        definition.name,
        valid.params.operators(),
        valid.params.threshold(),
        valid.params.validators(),
        network.name(),
        hex::encode(network.genesis_fork_version()),
    );
    if let Some(credentials) = valid.credentials {
        let amounts: Vec<String> = valid
            .amounts
            .iter()
            .map(|a| format!("{} ({} Gwei)", a.display_in(network), a.0))
            .collect();
        let address = credentials
            .address()
            .map(|a| a.to_checksum())
            .unwrap_or_default();
        text.push_str(&format!(
            "withdrawal:      {} credentials to {address}\n\
             deposits:        {} per validator: {}\n",
            credentials.kind().label(),
            amounts.len(),
            amounts.join(", "),
        ));
    }
    text.push_str(&format!(
        "fee recipient:   {}\n",
        valid
            .fee_recipient
            .map(|a| a.to_checksum())
            .unwrap_or_else(|| "not set".to_owned())
    ));
    if let Some(ssv) = &valid.ssv {
        let last = ssv.first_nonce + valid.params.validators() as u64 - 1;
        text.push_str(&format!(
            "ssv owner:       {} (nonces {} to {last})\nssv created at:  {}\n",
            ssv.owner.to_checksum(),
            ssv.first_nonce,
            ssv.created_at,
        ));
    }
    for (position, op) in definition.operators.iter().enumerate() {
        let ssv = op
            .ssv
            .as_ref()
            .map(|s| format!(", SSV operator {}", s.operator_id))
            .unwrap_or_default();
        text.push_str(&format!(
            "operator {}:      {} at {} (identity key {}{ssv})\n",
            position + 1,
            op.name,
            op.address,
            op.identity_key
        ));
    }
    if let Some(dealer) = &definition.dealer {
        text.push_str(&format!(
            "dealer:          {} at {} (identity key {})\n",
            dealer.name, dealer.address, dealer.identity_key
        ));
    }
    for (v, key) in valid.validator_keys.iter().enumerate() {
        text.push_str(&format!("validator {v}:     0x{}\n", hex::encode(key.0)));
    }
    if let Some(reshare) = &valid.reshare {
        let dealers: Vec<String> = reshare
            .dealers
            .iter()
            .map(|d| format!("{} (previous operator {})", d.slot, d.previous_operator))
            .collect();
        text.push_str(&format!(
            "previous lock:   {} ({} operators, threshold {})\n\
             dealers:         {}\n\
             reshared:        previous validators {:?}\n",
            hex::encode(reshare.previous.lock_hash.0),
            reshare.previous.definition.operators.len(),
            reshare.previous.definition.threshold,
            dealers.join(", "),
            reshare.subset,
        ));
    }
    text.push_str(&format!(
        "definition hash: {}\n",
        hex::encode(valid.definition_hash.0)
    ));
    text
}

fn run_verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let path = &args.file;
    let shown = path.display();
    let definition = ClusterDefinition::load(path).map_err(|err| {
        let report =
            CliError::user(format!("invalid cluster definition {shown}")).with_source(&err);
        match &err {
            DefinitionError::Read { .. } => report.with_hint("check the path given to verify"),
            DefinitionError::HashMismatch { .. } => report.with_hint(
                "ask the cluster creator for the original file; a definition must not be edited by hand",
            ),
            _ => report,
        }
    })?;
    let valid = definition.validate().map_err(|err| {
        CliError::internal("a loaded definition failed validation").with_source(&err)
    })?;
    let text = summary(path, &definition, &valid);
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|err| output_error(&err))?;
    Ok(ExitCode::SUCCESS)
}

fn output_error(err: &std::io::Error) -> CliError {
    CliError::user("failed to write to stdout").with_source(err)
}

/// Runs `dvkg definition …`.
///
/// # Errors
///
/// A user error naming the flag, field or operator at fault.
pub fn run(command: DefinitionCommand) -> Result<ExitCode, CliError> {
    match command {
        DefinitionCommand::New(args) => run_new(NewConfig::from_args(*args)?),
        DefinitionCommand::Split(args) => run_split(SplitConfig::from_args(*args)?),
        DefinitionCommand::Reshare(args) => run_reshare(*args),
        DefinitionCommand::Verify(args) => run_verify(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn new_args(extra: &[&str]) -> NewArgs {
        let base = [
            "dvkg",
            "definition",
            "new",
            "--operator",
            "a.json",
            "--withdrawal-address",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ];
        let network: &[&str] = if extra.contains(&"--network") {
            &[]
        } else {
            &["--network", "hoodi"]
        };
        let cli = Cli::try_parse_from(base.iter().chain(network).chain(extra.iter())).unwrap();
        match cli.command {
            Command::Definition(DefinitionCommand::New(args)) => *args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn flags_are_checked_before_any_file_is_read() {
        for (extra, flag) in [
            (&["--network", "mainet"][..], "--network"),
            (&["--withdrawal-type", "0x00"][..], "--withdrawal-type"),
            (&["--fee-recipient", "0x12"][..], "--fee-recipient"),
            (&["--amount", "abc"][..], "--amount"),
        ] {
            let err = NewConfig::from_args(new_args(extra)).unwrap_err();
            assert!(err.message.contains(flag), "{}", err.render());
        }
        // Flags are fine; then the operator file is missing.
        let err = NewConfig::from_args(new_args(&[])).unwrap_err();
        assert!(err.message.contains("--operator #1"), "{}", err.render());
    }

    #[test]
    fn default_amount_is_one_standard_deposit() {
        assert_eq!(DEFAULT_AMOUNT, Gwei(32_000_000_000));
        let gnosis: Network = "gnosis".parse().unwrap();
        assert_eq!(DEFAULT_AMOUNT.display_in(&gnosis), "1 GNO");
    }
}
