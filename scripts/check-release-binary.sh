#!/usr/bin/env bash
# Proves that the ordinary release binary never carries fault injection,
# whatever was built before it: builds the benches first (`cargo bench
# --no-run`, whose build unifies the dev-dependency features test-utils and
# fault-injection into the package), then `cargo build --release`, and
# checks target/release/dvkg: no `--fault` in `dvkg ceremony --help` or
# `dvkg demo --help`, and no fault-injection mark in `dvkg --version`. So
# that the check can fail, it also checks that scripts/release-dvkg.sh
# refuses the test build (target/debug/dvkg after `cargo test --no-run`),
# which does have --fault.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-$PWD/target}

$cargo bench --quiet --no-run >/dev/null 2>&1
$cargo build --release --quiet --bin dvkg
bin=$target/release/dvkg
status=0
for command in ceremony demo; do
  count=$("$bin" "$command" --help | grep -c -- '--fault' || true)
  echo "target/release/dvkg $command --help: $count line(s) with --fault"
  [ "$count" -eq 0 ] || status=1
done
version=$("$bin" --version)
echo "target/release/dvkg --version: $version"
[[ "$version" != *fault-injection* ]] || status=1
if ! DVKG_BIN=$bin bash scripts/release-dvkg.sh >/dev/null; then
  echo "scripts/release-dvkg.sh refused the release binary" >&2
  status=1
fi

$cargo test --quiet --no-run >/dev/null 2>&1
test_bin=$target/debug/dvkg
if DVKG_BIN=$test_bin bash scripts/release-dvkg.sh >/dev/null 2>&1; then
  echo "scripts/release-dvkg.sh accepted the test build $test_bin, which has --fault" >&2
  status=1
else
  echo "target/debug/dvkg (cargo test's build): refused as a fault-injection build"
fi
if [ $status -ne 0 ]; then
  echo "FAIL: the release binary carries fault injection" >&2
fi
exit $status
