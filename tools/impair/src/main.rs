//! `impair CONFIG`: a user-space UDP relay that stands between the
//! operators of a dvkg field test and does to their packets what real
//! networks do: delay, jitter, loss, duplication, reordering, a limited
//! rate, partitions, one-way cuts and operators that accept no inbound
//! traffic (a NAT without a port forward). The kernel of the test machine
//! has no netem, so this runs in user space.
//!
//! Every operator's address in the cluster definition is a port of this
//! relay (`op` lines); the relay forwards what arrives there to the
//! operator's real address, from a socket of its own per flow, the way a
//! UDP proxy does, and sends the answers back. It knows which operator
//! sent a packet by its source IP (each operator has its own network
//! namespace and address).
//!
//! The configuration is one directive per line (`#` starts a comment):
//!
//! ```text
//! listen 10.77.0.1                     # the relay's address
//! op 1 10.77.0.11 9001 10.77.0.11:9000 # index, its source IP, relay port, real address
//! link * * delay=100 jitter=20 loss=0.1 dup=0.01 reorder=0.05 rate=10000000
//! link 2 * rate=1000000                # later lines override the fields they name
//! noinbound 3                          # nobody's packets reach operator 3 unasked
//! block 2 3                            # 2 cannot dial 3 (3 can still dial 2)
//! cut 1,2 3,4 at=10 for=15             # drop 1,2 -> 3,4 from 10 s to 25 s
//! cut * 4 bytes=200000 for=60          # ... from when 200 kB were relayed
//! seed 7                               # the random choices, for a repeatable run
//! ```
//!
//! Delays are milliseconds, rates bits per second, probabilities 0..1,
//! times seconds from the relay's start. On SIGINT or SIGTERM it prints
//! per-link counts (forwarded, lost, cut, queue drops, no-inbound) and
//! exits. Events (cuts starting and ending) are printed as they happen.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Operator indices, as in the definition.
type Op = u32;

#[derive(Debug, Clone)]
struct OpConfig {
    ip: IpAddr,
    port: u16,
    target: SocketAddr,
}

/// The impairment of one directed link.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    delay_ms: f64,
    jitter_ms: f64,
    loss: f64,
    dup: f64,
    reorder: f64,
    /// Bits per second; 0 is unlimited.
    rate: f64,
}

#[derive(Debug, Clone)]
enum Start {
    At(Duration),
    Bytes(u64),
}

#[derive(Debug, Clone)]
struct Cut {
    from: Option<BTreeSet<Op>>,
    to: Option<BTreeSet<Op>>,
    start: Start,
    length: Duration,
    text: String,
}

/// A set of operators; `None` is every one (`*`).
type Ops = Option<BTreeSet<Op>>;

/// A `link` line: the senders, the receivers, the fields it sets.
type Rule = (
    Option<BTreeSet<Op>>,
    Option<BTreeSet<Op>>,
    Vec<(String, f64)>,
);

#[derive(Debug, Default)]
struct Config {
    listen: Option<IpAddr>,
    ops: BTreeMap<Op, OpConfig>,
    rules: Vec<Rule>,
    noinbound: BTreeSet<Op>,
    /// Flows (client, target) that are dropped: one blocked direction.
    blocked: Vec<(Ops, Ops)>,
    cuts: Vec<Cut>,
    seed: u64,
}

fn parse_set(text: &str) -> Result<Option<BTreeSet<Op>>, String> {
    if text == "*" {
        return Ok(None);
    }
    text.split(',')
        .map(|s| s.parse::<Op>().map_err(|e| format!("operator `{s}`: {e}")))
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Some)
}

fn matches(set: &Option<BTreeSet<Op>>, op: Op) -> bool {
    set.as_ref().is_none_or(|s| s.contains(&op))
}

fn parse(text: &str) -> Result<Config, String> {
    let mut config = Config {
        seed: 1,
        ..Config::default()
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}: `{line}`", number + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let word = |i: usize| {
            words
                .get(i)
                .copied()
                .ok_or_else(|| at(format!("word {} missing", i + 1)))
        };
        let pairs = |from: usize| -> Result<Vec<(String, String)>, String> {
            words
                .iter()
                .skip(from)
                .map(|w| {
                    w.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| at(format!("`{w}` is not key=value")))
                })
                .collect()
        };
        match word(0)? {
            "listen" => config.listen = Some(word(1)?.parse().map_err(|e| at(format!("{e}")))?),
            "seed" => config.seed = word(1)?.parse().map_err(|e| at(format!("{e}")))?,
            "op" => {
                let id: Op = word(1)?.parse().map_err(|e| at(format!("{e}")))?;
                let op = OpConfig {
                    ip: word(2)?.parse().map_err(|e| at(format!("{e}")))?,
                    port: word(3)?.parse().map_err(|e| at(format!("{e}")))?,
                    target: word(4)?.parse().map_err(|e| at(format!("{e}")))?,
                };
                config.ops.insert(id, op);
            }
            "link" => {
                let from = parse_set(word(1)?).map_err(at)?;
                let to = parse_set(word(2)?).map_err(at)?;
                let mut fields = Vec::new();
                for (k, v) in pairs(3)? {
                    if !["delay", "jitter", "loss", "dup", "reorder", "rate"].contains(&k.as_str())
                    {
                        return Err(at(format!("unknown link field `{k}`")));
                    }
                    fields.push((k, v.parse::<f64>().map_err(|e| at(format!("{e}")))?));
                }
                config.rules.push((from, to, fields));
            }
            "block" => {
                let from = parse_set(word(1)?).map_err(at)?;
                let to = parse_set(word(2)?).map_err(at)?;
                config.blocked.push((from, to));
            }
            "noinbound" => {
                for op in parse_set(word(1)?).map_err(at)?.unwrap_or_default() {
                    config.noinbound.insert(op);
                }
            }
            "cut" => {
                let from = parse_set(word(1)?).map_err(at)?;
                let to = parse_set(word(2)?).map_err(at)?;
                let mut start = Start::At(Duration::ZERO);
                let mut length = Duration::from_secs(u64::from(u32::MAX));
                for (k, v) in pairs(3)? {
                    let number: f64 = v.parse().map_err(|e| at(format!("{e}")))?;
                    match k.as_str() {
                        "at" => start = Start::At(Duration::from_secs_f64(number)),
                        "bytes" => start = Start::Bytes(number as u64),
                        "for" => length = Duration::from_secs_f64(number),
                        _ => return Err(at(format!("unknown cut field `{k}`"))),
                    }
                }
                config.cuts.push(Cut {
                    from,
                    to,
                    start,
                    length,
                    text: line.to_string(),
                });
            }
            other => return Err(at(format!("unknown directive `{other}`"))),
        }
    }
    if config.listen.is_none() {
        return Err("no `listen` line".into());
    }
    if config.ops.is_empty() {
        return Err("no `op` lines".into());
    }
    Ok(config)
}

impl Config {
    fn link(&self, from: Op, to: Op) -> Link {
        let mut link = Link::default();
        for (f, t, fields) in &self.rules {
            if !(matches(f, from) && matches(t, to)) {
                continue;
            }
            for (k, v) in fields {
                let slot = match k.as_str() {
                    "delay" => &mut link.delay_ms,
                    "jitter" => &mut link.jitter_ms,
                    "loss" => &mut link.loss,
                    "dup" => &mut link.dup,
                    "reorder" => &mut link.reorder,
                    _ => &mut link.rate,
                };
                *slot = *v;
            }
        }
        link
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    forwarded: u64,
    bytes: u64,
    lost: u64,
    cut: u64,
    queue: u64,
    noinbound: u64,
    duplicated: u64,
}

/// One packet to send later.
struct Due {
    at: Instant,
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    bytes: Vec<u8>,
}

/// The shared state: the configuration, the random source, each link's
/// queue, the counts.
struct Relay {
    config: Config,
    started: Instant,
    rng: Mutex<StdRng>,
    /// When each directed link's rate limiter is next free.
    free_at: Mutex<HashMap<(Op, Op), Instant>>,
    counts: Mutex<BTreeMap<(Op, Op), Counts>>,
    relayed: AtomicU64,
    /// When each byte-triggered cut started (index into `config.cuts`).
    triggered: Mutex<HashMap<usize, Instant>>,
    due: mpsc::UnboundedSender<Due>,
}

/// The longest a rate-limited link queues a packet before dropping it.
const MAX_QUEUE: Duration = Duration::from_secs(2);

impl Relay {
    fn count(&self, from: Op, to: Op, f: impl FnOnce(&mut Counts)) {
        if let Ok(mut counts) = self.counts.lock() {
            f(counts.entry((from, to)).or_default());
        }
    }

    fn cut_now(&self, from: Op, to: Op, now: Instant) -> bool {
        let relayed = self.relayed.load(Ordering::Relaxed);
        let Ok(mut triggered) = self.triggered.lock() else {
            return false;
        };
        for (i, cut) in self.config.cuts.iter().enumerate() {
            let begin = match cut.start {
                Start::At(at) => self.started + at,
                Start::Bytes(bytes) => match triggered.get(&i) {
                    Some(at) => *at,
                    None if relayed >= bytes => {
                        eprintln!(
                            "impair: {:.1} s: cut triggered after {relayed} bytes: {}",
                            now.duration_since(self.started).as_secs_f64(),
                            cut.text
                        );
                        triggered.insert(i, now);
                        now
                    }
                    None => continue,
                },
            };
            if now >= begin
                && now < begin + cut.length
                && matches(&cut.from, from)
                && matches(&cut.to, to)
            {
                return true;
            }
        }
        false
    }

    /// Decides the fate of one packet from `from` to `to` on the flow that
    /// `client_of_flow` opened towards `target_of_flow` (a packet either
    /// way), and schedules what gets through.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        from: Op,
        to: Op,
        client_of_flow: Op,
        target_of_flow: Op,
        socket: &Arc<UdpSocket>,
        dest: Option<SocketAddr>,
        bytes: Vec<u8>,
    ) {
        let now = Instant::now();
        if self.config.noinbound.contains(&target_of_flow)
            || self
                .config
                .blocked
                .iter()
                .any(|(c, t)| matches(c, client_of_flow) && matches(t, target_of_flow))
        {
            self.count(from, to, |c| c.noinbound += 1);
            return;
        }
        if self.cut_now(from, to, now) {
            self.count(from, to, |c| c.cut += 1);
            return;
        }
        let link = self.config.link(from, to);
        let Ok(mut rng) = self.rng.lock() else { return };
        if rng.gen_bool(link.loss.clamp(0.0, 1.0)) {
            self.count(from, to, |c| c.lost += 1);
            return;
        }
        let mut depart = now;
        if link.rate > 0.0 {
            let Ok(mut free) = self.free_at.lock() else {
                return;
            };
            let free_at = free.entry((from, to)).or_insert(now);
            let start = (*free_at).max(now);
            if start.duration_since(now) > MAX_QUEUE {
                self.count(from, to, |c| c.queue += 1);
                return;
            }
            *free_at = start + Duration::from_secs_f64(bytes.len() as f64 * 8.0 / link.rate);
            depart = *free_at;
        }
        let delay = |rng: &mut StdRng| {
            let jitter = if link.jitter_ms > 0.0 {
                rng.gen_range(-link.jitter_ms..=link.jitter_ms)
            } else {
                0.0
            };
            let mut ms = (link.delay_ms + jitter).max(0.0);
            if rng.gen_bool(link.reorder.clamp(0.0, 1.0)) {
                ms += 2.0 * link.jitter_ms + 10.0;
            }
            Duration::from_secs_f64(ms / 1000.0)
        };
        let copies = if rng.gen_bool(link.dup.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        let len = bytes.len() as u64;
        for _ in 0..copies {
            let at = depart + delay(&mut rng);
            let _ = self.due.send(Due {
                at,
                socket: socket.clone(),
                to: dest,
                bytes: bytes.clone(),
            });
        }
        self.relayed.fetch_add(len, Ordering::Relaxed);
        self.count(from, to, |c| {
            c.forwarded += 1;
            c.bytes += len;
            c.duplicated += copies - 1;
        });
    }
}

/// Sends every scheduled packet when it is due.
async fn scheduler(mut due: mpsc::UnboundedReceiver<Due>) {
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut packets: HashMap<u64, Due> = HashMap::new();
    let mut sequence = 0u64;
    loop {
        let next = heap.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            item = due.recv() => {
                let Some(item) = item else { return };
                sequence += 1;
                heap.push(Reverse((item.at, sequence)));
                packets.insert(sequence, item);
            }
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                while let Some(Reverse((at, id))) = heap.peek().copied() {
                    if at > Instant::now() {
                        break;
                    }
                    heap.pop();
                    if let Some(p) = packets.remove(&id) {
                        let _ = match p.to {
                            Some(to) => p.socket.send_to(&p.bytes, to).await,
                            None => p.socket.send(&p.bytes).await,
                        };
                    }
                }
            }
        }
    }
}

/// Serves operator `target`'s relay port: every client gets its own
/// upstream socket (a flow), as through a NAT.
async fn serve(relay: Arc<Relay>, target: Op, listener: Arc<UdpSocket>) {
    let Some(op) = relay.config.ops.get(&target).cloned() else {
        return;
    };
    let by_ip: HashMap<IpAddr, Op> = relay.config.ops.iter().map(|(id, o)| (o.ip, *id)).collect();
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((len, client)) = listener.recv_from(&mut buf).await else {
            continue;
        };
        let Some(&from) = by_ip.get(&client.ip()) else {
            eprintln!("impair: a packet from {client}, which is no operator, dropped");
            continue;
        };
        let bytes = buf.get(..len).unwrap_or_default().to_vec();
        let upstream = match flows.get(&client) {
            Some(socket) => socket.clone(),
            None => {
                let Some(listen) = relay.config.listen else {
                    return;
                };
                let Ok(socket) = UdpSocket::bind(SocketAddr::new(listen, 0)).await else {
                    eprintln!("impair: cannot open a flow socket");
                    continue;
                };
                if socket.connect(op.target).await.is_err() {
                    eprintln!("impair: cannot reach {}", op.target);
                    continue;
                }
                let socket = Arc::new(socket);
                flows.insert(client, socket.clone());
                let back = socket.clone();
                let (relay, listener) = (relay.clone(), listener.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_536];
                    loop {
                        // An error is an ICMP "port unreachable" for a
                        // packet sent before the operator listened (it
                        // started later): the flow lives on, as a NAT's
                        // mapping does.
                        let Ok(len) = back.recv(&mut buf).await else {
                            continue;
                        };
                        let bytes = buf.get(..len).unwrap_or_default().to_vec();
                        relay.submit(target, from, from, target, &listener, Some(client), bytes);
                    }
                });
                socket
            }
        };
        relay.submit(from, target, from, target, &upstream, None, bytes);
    }
}

#[tokio::main]
async fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: impair CONFIG (see the module documentation)");
        std::process::exit(2);
    };
    let config = match std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|t| parse(&t).map_err(|e| format!("{path}: {e}")))
    {
        Ok(config) => config,
        Err(e) => {
            eprintln!("impair: {e}");
            std::process::exit(2);
        }
    };
    let (due_tx, due_rx) = mpsc::unbounded_channel();
    let listen = config.listen.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let seed = config.seed;
    let relay = Arc::new(Relay {
        config,
        started: Instant::now(),
        rng: Mutex::new(StdRng::seed_from_u64(seed)),
        free_at: Mutex::default(),
        counts: Mutex::default(),
        relayed: AtomicU64::new(0),
        triggered: Mutex::default(),
        due: due_tx,
    });
    tokio::spawn(scheduler(due_rx));
    for (&id, op) in &relay.config.ops {
        let socket = match UdpSocket::bind(SocketAddr::new(listen, op.port)).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("impair: cannot listen on {listen}:{}: {e}", op.port);
                std::process::exit(1);
            }
        };
        tokio::spawn(serve(relay.clone(), id, socket));
    }
    for cut in &relay.config.cuts {
        if let Start::At(at) = cut.start {
            let text = cut.text.clone();
            let length = cut.length;
            tokio::spawn(async move {
                tokio::time::sleep(at).await;
                eprintln!("impair: {:.1} s: cut begins: {text}", at.as_secs_f64());
                tokio::time::sleep(length.min(Duration::from_secs(86_400))).await;
                eprintln!(
                    "impair: {:.1} s: cut ends: {text}",
                    (at + length).as_secs_f64()
                );
            });
        }
    }
    let ticker = relay.clone();
    tokio::spawn(async move {
        // The relayed bytes over time, for placing byte-triggered cuts.
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = ticker.relayed.load(Ordering::Relaxed);
            if now != last {
                eprintln!(
                    "impair: {:.1} s: {now} bytes relayed",
                    ticker.started.elapsed().as_secs_f64()
                );
                last = now;
            }
        }
    });
    eprintln!(
        "impair: relaying {} operators on {listen}",
        relay.config.ops.len()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| {
            eprintln!("impair: no SIGTERM handler: {e}");
            std::process::exit(1)
        });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("link\tforwarded\tbytes\tlost\tcut\tqueue\tnoinbound\tduplicated");
    if let Ok(counts) = relay.counts.lock() {
        for ((from, to), c) in counts.iter() {
            println!(
                "{from}->{to}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                c.forwarded, c.bytes, c.lost, c.cut, c.queue, c.noinbound, c.duplicated
            );
        }
    }
}
