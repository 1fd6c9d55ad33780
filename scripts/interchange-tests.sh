#!/usr/bin/env bash
# Runs the public EIP-3076 conformance suite
# (eth-clients/slashing-protection-interchange-tests v5.3.0, the one
# Lighthouse, Prysm and Nimbus run) through `dvkg slashing`, twice:
#
#   direct      each test on one fresh database: every step's interchange
#               through `dvkg slashing import`, then its blocks and
#               attestations through `check-block` / `check-attestation`;
#   round trip  the same, but after each step's import the history is
#               exported minified (`export --minify`), imported into another
#               fresh database, and the step's checks run there.
#
# Each import, block and attestation is compared with its `should_succeed`:
# that flag is the expectation for a minimal database (one that keeps only
# watermarks after an import, as Lighthouse's and dvkg's do);
# `should_succeed_complete` is for databases that keep every imported
# message, and is only counted here, for information.
#
# The suite is public data kept outside this repository (../shared); it is
# never copied in. Without it the script says so and exits 0.
#
# Usage: scripts/interchange-tests.sh
#   DVKG_BIN=path/to/dvkg     the binary (default target/release/dvkg, built
#                             with `cargo build --release` if missing)
#   INTERCHANGE_TESTS=DIR     the suite's generated/ folder (default
#                             ../shared/vectors/slashing-interchange/generated)
#   CARGO=cargo               the cargo command used to build
set -euo pipefail
cd "$(dirname "$0")/.."

suite="${INTERCHANGE_TESTS:-../shared/vectors/slashing-interchange/generated}"
if [ ! -d "$suite" ]; then
  echo "interchange-tests: skipped: the conformance suite is not at $suite (../shared is absent)"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "interchange-tests: python3 is needed to read the suite's JSON" >&2
  exit 1
fi

bin="${DVKG_BIN:-target/release/dvkg}"
if [ ! -x "$bin" ]; then
  if [ -n "${DVKG_BIN:-}" ]; then
    echo "interchange-tests: DVKG_BIN=$bin is not an executable" >&2
    exit 1
  fi
  echo "interchange-tests: building $bin"
  ${CARGO:-cargo} build --release --quiet
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$suite" "$bin" "$work" <<'PY'
import glob, json, os, subprocess, sys

suite, binary, work = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]

def dvkg(*args):
    return subprocess.run([binary, "slashing", *args], capture_output=True, text=True)

def expect(ok, result, what, problems, refused_code):
    want = 0 if ok else refused_code
    if result.returncode != want:
        problems.append(f"{what}: expected exit {want}, got {result.returncode}: "
                        f"{(result.stdout + result.stderr).strip()}")

def run(path, test, mode, counts):
    name = test["name"]
    root = test["genesis_validators_root"]
    here = os.path.join(work, mode, name)
    os.makedirs(here)
    db = os.path.join(here, "db-0.sqlite")
    problems = []
    for i, step in enumerate(test["steps"]):
        file = os.path.join(here, f"step-{i}.json")
        with open(file, "w") as f:
            json.dump(step["interchange"], f)
        r = dvkg("import", "--db", db, "--genesis-validators-root", root, file)
        # A refused import exits 1 and changes nothing.
        expect(step["should_succeed"], r, f"step {i} import", problems, 1)
        counts["imports"] += 1
        if mode == "round-trip":
            fresh = os.path.join(here, f"db-{i + 1}.sqlite")
            if os.path.exists(db):
                out = os.path.join(here, f"step-{i}-export.json")
                r = dvkg("export", "--db", db, "--genesis-validators-root", root,
                         "--minify", "--out", out)
                if r.returncode != 0:
                    problems.append(f"step {i} export: exit {r.returncode}: {r.stderr.strip()}")
                    break
                r = dvkg("import", "--db", fresh, "--genesis-validators-root", root, out)
                if r.returncode != 0:
                    problems.append(f"step {i} re-import: exit {r.returncode}: {r.stderr.strip()}")
                    break
            db = fresh
        for j, b in enumerate(step["blocks"]):
            r = dvkg("check-block", "--db", db, "--genesis-validators-root", root,
                     "--pubkey", b["pubkey"], "--slot", b["slot"],
                     "--signing-root", b["signing_root"])
            expect(b["should_succeed"], r, f"step {i} block {j} (slot {b['slot']})", problems, 5)
            counts["blocks"] += 1
            if b.get("should_succeed_complete", b["should_succeed"]) != b["should_succeed"]:
                counts["minimal_only"] += 1
        for j, a in enumerate(step["attestations"]):
            r = dvkg("check-attestation", "--db", db, "--genesis-validators-root", root,
                     "--pubkey", a["pubkey"], "--source-epoch", a["source_epoch"],
                     "--target-epoch", a["target_epoch"], "--signing-root", a["signing_root"])
            expect(a["should_succeed"], r,
                   f"step {i} attestation {j} ({a['source_epoch']}, {a['target_epoch']})",
                   problems, 5)
            counts["attestations"] += 1
            if a.get("should_succeed_complete", a["should_succeed"]) != a["should_succeed"]:
                counts["minimal_only"] += 1
    return problems

files = sorted(glob.glob(os.path.join(suite, "*.json")))
if not files:
    print(f"interchange-tests: no tests in {suite}", file=sys.stderr)
    sys.exit(1)
failed = 0
for mode in ("direct", "round-trip"):
    counts = {"imports": 0, "blocks": 0, "attestations": 0, "minimal_only": 0}
    passed = 0
    for path in files:
        with open(path) as f:
            test = json.load(f)
        problems = run(path, test, mode, counts)
        if problems:
            failed += 1
            print(f"FAIL  {mode:10} {test['name']}")
            for p in problems:
                print(f"      {p}")
        else:
            passed += 1
    print(f"{mode:10}: {passed}/{len(files)} tests passed "
          f"({counts['imports']} imports, {counts['blocks']} blocks, "
          f"{counts['attestations']} attestations compared with should_succeed; "
          f"{counts['minimal_only']} of them expect otherwise of a complete database)")
sys.exit(1 if failed else 0)
PY
