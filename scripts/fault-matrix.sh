#!/usr/bin/env bash
# Runs `dvkg demo` once per fault kind (operator 2 dishonest, 4 operators,
# threshold 3) and prints, per fault, the demo's exit code and what each
# operator printed; then checks every abort report with `dvkg verify
# --abort-report`. The summary of ceremony-specs/faults.md, computed.
#
#   scripts/fault-matrix.sh [DVKG_BINARY]
#
# The binary must be built with the fault-injection feature; by default
# this builds one (`cargo build --features fault-injection`).
set -euo pipefail
cd "$(dirname "$0")/.."

dvkg=${1:-}
if [ -z "$dvkg" ]; then
    cargo build --quiet --features fault-injection
    dvkg=target/debug/dvkg
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for fault in bad-share identity-commitment non-subgroup-commitment bad-proof equivocate \
    lying-complaint bad-partial bad-finalize garbage oversized@2 replay@3 stall@1 exit@2; do
    out="$work/${fault//@/-}"
    status=0
    "$dvkg" -q demo --fault "2=$fault" --validators 2 --round-timeout 5 --out "$out" \
        >"$out.stdout" 2>"$out.stderr" || status=$?
    echo "== --fault 2=$fault: exit $status"
    grep '^dvkg demo: operator' "$out.stderr" || true
    grep '^error:' "$out.stderr" | sed 's/^/   operator 1 /' || true
    reports=()
    for report in "$out"/*abort-report*.json; do
        reports+=(--abort-report "$report")
    done
    "$dvkg" verify --definition "$out/cluster-definition.json" "${reports[@]}" \
        | sed 's/^/   /' || true
done
