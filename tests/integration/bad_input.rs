//! Every row of the bad-input table in `ceremony-specs/cli-errors.md`, run
//! as written: the exit code, the message, no panic, and not one new file or
//! directory left behind. The table is the specification; this test reads
//! it, so the two cannot drift apart.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use walkdir_lite::list_tree;

use crate::common::dvkg;

const ADDRESS: &str = "0x0f51bb10119727a7e5ea3538074fb341f56b09ad";

/// A minimal recursive listing (paths relative to `root`), to see whether a
/// command left anything behind.
mod walkdir_lite {
    use std::collections::BTreeSet;
    use std::path::Path;

    pub fn list_tree(root: &Path) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                out.insert(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
                if path.is_dir() && !path.is_symlink() {
                    stack.push(path);
                }
            }
        }
        out
    }
}

/// Writes the bad variants of the JSON file `name` next to it:
/// `<stem>.empty|truncated|version|unknown|wrongtype|huge.json`. `field` is
/// the top-level field (of the object, or of the first list entry) whose
/// JSON type `wrongtype` changes.
fn variants(dir: &Path, name: &str, field: &str) {
    let path = dir.join(name);
    let stem = name.trim_end_matches(".json");
    let raw = std::fs::read(&path).unwrap();
    let write = |suffix: &str, bytes: &[u8]| {
        std::fs::write(dir.join(format!("{stem}.{suffix}.json")), bytes).unwrap()
    };
    write("empty", b"");
    write("truncated", &raw[..raw.len() / 2]);
    let value: Value = serde_json::from_slice(&raw).unwrap();
    let change = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut value = value.clone();
        let object = match &mut value {
            Value::Array(list) => list[0].as_object_mut().unwrap(),
            other => other.as_object_mut().unwrap(),
        };
        f(object);
        serde_json::to_vec_pretty(&value).unwrap()
    };
    if value.get("version").is_some() {
        write(
            "version",
            &change(&|o| {
                o.insert("version".into(), Value::from(99));
            }),
        );
    }
    write(
        "unknown",
        &change(&|o| {
            o.insert("surprise".into(), Value::from(1));
        }),
    );
    write(
        "wrongtype",
        &change(&|o| {
            let old = o
                .get(field)
                .unwrap_or_else(|| panic!("{name} has no {field}"));
            let new = if old.is_string() {
                Value::from(12345)
            } else {
                Value::from(old.to_string())
            };
            o.insert(field.into(), new);
        }),
    );
    let huge = std::fs::File::create(dir.join(format!("{stem}.huge.json"))).unwrap();
    huge.set_len(300 * 1024 * 1024).unwrap();
}

/// The fixture directory every row runs in.
fn fixture() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    for i in 1..=3 {
        dvkg(
            dir,
            &[
                "identity",
                "new",
                "--dir",
                &format!("op{i}"),
                "--name",
                &format!("op{i}"),
                "--address",
                &format!("127.0.0.1:{}", 7100 + i),
            ],
        )
        .assert_code(0);
    }
    dvkg(
        dir,
        &[
            "definition",
            "new",
            "--operator",
            "op1/operator.json",
            "--operator",
            "op2/operator.json",
            "--operator",
            "op3/operator.json",
            "--threshold",
            "2",
            "--network",
            "hoodi",
            "--withdrawal-address",
            ADDRESS,
            "--withdrawal-type",
            "0x02",
            "--out",
            "definition.json",
        ],
    )
    .assert_code(0);
    dvkg(
        dir,
        &[
            "-q",
            "demo",
            "--operators",
            "3",
            "--validators",
            "1",
            "--out",
            "demo",
        ],
    )
    .assert_code(0);
    let operator = dir.join("demo/operator-1");
    let copy = |from: &Path, to: &str| {
        std::fs::copy(from, dir.join(to)).unwrap();
    };
    copy(&operator.join("cluster-lock.json"), "lock.json");
    // The binary transcript, two broken copies of it, and its JSON view
    // (whose variants follow).
    copy(&operator.join("transcript.bin"), "transcript.bin");
    let binary = std::fs::read(dir.join("transcript.bin")).unwrap();
    std::fs::write(
        dir.join("transcript.truncated.bin"),
        &binary[..binary.len() / 2],
    )
    .unwrap();
    let mut trailing = binary.clone();
    trailing.push(0);
    std::fs::write(dir.join("transcript.trailing.bin"), trailing).unwrap();
    let transcript = ::dvkg::ceremony::transcript_file::read(&dir.join("transcript.bin")).unwrap();
    std::fs::write(
        dir.join("transcript.json"),
        serde_json::to_vec(&transcript).unwrap(),
    )
    .unwrap();
    let deposit = std::fs::read_dir(&operator)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("deposit_data-"))
        .unwrap();
    copy(&deposit, "deposits.json");
    copy(&dir.join("op1/operator.json"), "record.json");
    variants(dir, "definition.json", "threshold");
    variants(dir, "lock.json", "lock_hash");
    variants(dir, "transcript.json", "hellos");
    variants(dir, "deposits.json", "amount");
    variants(dir, "record.json", "identity_key");

    // Identity directories with a bad identity.json each.
    let identity = std::fs::read(dir.join("op1/identity.json")).unwrap();
    let value: Value = serde_json::from_slice(&identity).unwrap();
    let bad: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("truncated", identity[..identity.len() / 2].to_vec()),
        ("version", {
            let mut v = value.clone();
            v["version"] = Value::from(99);
            serde_json::to_vec(&v).unwrap()
        }),
        ("unknown", {
            let mut v = value.clone();
            v["surprise"] = Value::from(1);
            serde_json::to_vec(&v).unwrap()
        }),
        ("wrongtype", {
            let mut v = value.clone();
            v["identity_seed"] = Value::from(5);
            serde_json::to_vec(&v).unwrap()
        }),
    ];
    for (name, bytes) in bad {
        let id = dir.join(format!("id-{name}"));
        std::fs::create_dir(&id).unwrap();
        std::fs::write(id.join("identity.json"), bytes).unwrap();
        set_mode(&id, 0o700);
        set_mode(&id.join("identity.json"), 0o600);
    }
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
    std::fs::write(dir.join("blank.txt"), b" \n").unwrap();
    std::fs::write(dir.join("short.txt"), b"hunter2\n").unwrap();
    root
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs dvkg; a row that does not finish within a minute (a command that
/// went on to wait for peers instead of refusing its input) is killed and
/// reported as exit -1.
fn run_with_deadline(dir: &Path, args: &[String]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dvkg"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

struct Row {
    line: usize,
    args: Vec<String>,
    code: i32,
    needle: String,
}

fn code_span(cell: &str) -> String {
    cell.trim().trim_matches('`').trim().to_owned()
}

/// The rows of the table: `| `dvkg ARGS` | CODE | `NEEDLE` |`.
fn rows() -> Vec<Row> {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremony-specs/cli-errors.md");
    let text = std::fs::read_to_string(&spec).unwrap();
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("| `dvkg ") else {
            continue;
        };
        let cells: Vec<&str> = rest.split(" | ").collect();
        assert_eq!(cells.len(), 3, "cli-errors.md:{}: {line}", number + 1);
        rows.push(Row {
            line: number + 1,
            args: code_span(cells[0])
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            code: cells[1].trim().parse().unwrap(),
            needle: code_span(cells[2].trim_end_matches('|')),
        });
    }
    rows
}

#[test]
fn every_bad_input_in_the_table_gets_its_documented_error() {
    let rows = rows();
    assert!(
        rows.len() >= 60,
        "only {} rows in cli-errors.md",
        rows.len()
    );
    let root = fixture();
    let dir = root.path();
    eprintln!("fixture ready in {}", dir.display());
    let before: BTreeSet<String> = list_tree(dir);
    let mut failures = Vec::new();
    for row in &rows {
        eprintln!("cli-errors.md:{}: dvkg {}", row.line, row.args.join(" "));
        let out = run_with_deadline(dir, &row.args);
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let after = list_tree(dir);
        let left: Vec<&String> = after.difference(&before).collect();
        let shown = format!("cli-errors.md:{} `dvkg {}`", row.line, row.args.join(" "));
        if code != row.code {
            failures.push(format!(
                "{shown}: exit {code}, documented {}\n{stderr}{stdout}",
                row.code
            ));
        } else if !stderr.contains(&row.needle) && !stdout.contains(&row.needle) {
            failures.push(format!(
                "{shown}: the output does not contain {:?}:\n{stderr}{stdout}",
                row.needle
            ));
        } else if stderr.contains("panicked") {
            failures.push(format!("{shown}: panicked:\n{stderr}"));
        } else if !left.is_empty() {
            failures.push(format!("{shown}: left {left:?} behind"));
        }
        // Whatever a failing row left, the next row starts clean.
        for path in left.iter().rev() {
            let path = dir.join(path);
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n\n")
    );
}
