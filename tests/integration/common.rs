//! Shared helpers: paths to vectors, a temporary directory, ports for the
//! operators, and running the `dvkg` binary with its exit status and output
//! captured.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `n` distinct UDP ports, each free when handed out, for operators that
/// listen on them.
///
/// They come from below the kernel's ephemeral range (32768–60999 by
/// default), in turn for the whole test binary. A port the kernel picks for
/// a socket bound to port 0 (as `free_ports` did, and as every QUIC client
/// socket does) is one any other test's socket may be given again between
/// the pick and the operator's own bind: "Address already in use" in a test
/// that has nothing to do with it.
pub fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32768);
    if low < 12_000 {
        // No room below an unusual ephemeral range: the kernel's pick.
        let sockets: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        return sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
    }
    let first = 10_000;
    let span = low - first;
    // Another test binary running at the same time starts elsewhere.
    let offset = std::process::id() as usize * 7_919 % span;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..span {
        if ports.len() == n {
            break;
        }
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(first + (offset + k) % span).unwrap();
        // Free on every address, as an operator listens on 0.0.0.0.
        if std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "no {n} free ports below {low}");
    ports
}

/// The project's `ceremony-specs/vectors/NAME`.
pub fn vector_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ceremony-specs/vectors")
        .join(name)
}

/// A vector file parsed as JSON.
pub fn load_vector(name: &str) -> serde_json::Value {
    let path = vector_path(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Output {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless stdout or stderr contains `needle`.
    #[track_caller]
    pub fn assert_mentions(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "expected output to mention {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `dvkg ARGS` in `dir`.
pub fn dvkg(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dvkg"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn dvkg");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `dvkg ARGS` in `dir` with `input` on its standard input (a pipe).
pub fn dvkg_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dvkg"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dvkg");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from another thread, so that a child that does not read all
    // of it cannot block the test.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for dvkg");
    let _ = writer.join();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
