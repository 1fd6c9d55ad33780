#!/usr/bin/env bash
# Prints the path of a dvkg binary fit to measure or ship: DVKG_BIN if set,
# else the release binary, which this builds with `cargo build --release
# --bin dvkg` (after any `cargo bench`, whose build with the
# dev-dependency features can leave a fault-injection dvkg in
# target/release). Refuses (exit 1) a binary whose `dvkg --version` says it
# is a fault-injection build, or that offers `--fault`.
#
#   dvkg=$(scripts/release-dvkg.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DVKG_BIN:-}" ]; then
  bin=$DVKG_BIN
else
  ${CARGO:-cargo} build --release --quiet --bin dvkg >&2
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/dvkg
fi
if [ ! -x "$bin" ]; then
  echo "release-dvkg: $bin is not an executable" >&2
  exit 1
fi
bin=$(realpath "$bin")
version=$("$bin" --version 2>/dev/null) || {
  echo "release-dvkg: $bin --version failed" >&2
  exit 1
}
faults=$("$bin" ceremony --help 2>/dev/null | grep -c -- '--fault' || true)
if [[ "$version" == *fault-injection* ]] || [ "$faults" -ne 0 ]; then
  echo "release-dvkg: refusing $bin: it is a fault-injection build ($version; --fault in its ceremony --help)" >&2
  echo "release-dvkg: build the release binary with \`cargo build --release\`, not through cargo test or cargo bench" >&2
  exit 1
fi
echo "$bin"
