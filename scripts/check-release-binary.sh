#!/usr/bin/env bash
# Proves that the ordinary binary never carries fault injection, whatever
# was built before it.
#
#   scripts/check-release-binary.sh [--profile release|dev]   (default: release)
#
# release: builds the benches first (`cargo bench --no-run`, whose build
# unifies the dev-dependency features test-utils and fault-injection into
# the package), then `cargo build --release`, and checks
# target/release/dvkg: no `--fault` in `dvkg ceremony --help` or `dvkg demo
# --help`, and no fault-injection mark in `dvkg --version`.
#
# dev: the same feature unification through `cargo test --no-run` and
# `cargo build` (the debug profile), which costs a CI run no second
# compilation of the dependencies; .ci/run uses it. Feature resolution does
# not depend on the profile, so the mechanism checked is the one the
# release build uses.
#
# So that the check can fail, both modes also check that
# scripts/release-dvkg.sh refuses the test build (target/debug/dvkg after
# `cargo test --no-run`), which does have --fault.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-$PWD/target}
profile=release
if [ "${1:-}" = "--profile" ]; then
  profile=${2:?--profile needs release or dev}
fi

case $profile in
  release)
    $cargo bench --quiet --no-run >/dev/null 2>&1
    $cargo build --release --quiet --bin dvkg
    bin=$target/release/dvkg
    ;;
  dev)
    $cargo test --quiet --no-run >/dev/null 2>&1
    $cargo build --quiet --bin dvkg
    bin=$target/debug/dvkg
    ;;
  *)
    echo "check-release-binary: --profile is release or dev, not $profile" >&2
    exit 2
    ;;
esac
status=0
for command in ceremony demo; do
  count=$("$bin" "$command" --help | grep -c -- '--fault' || true)
  echo "$bin $command --help: $count line(s) with --fault"
  [ "$count" -eq 0 ] || status=1
done
version=$("$bin" --version)
echo "$bin --version: $version"
[[ "$version" != *fault-injection* ]] || status=1
if ! DVKG_BIN=$bin bash scripts/release-dvkg.sh >/dev/null; then
  echo "scripts/release-dvkg.sh refused $bin" >&2
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
  echo "FAIL: the ordinary binary carries fault injection" >&2
fi
exit $status
