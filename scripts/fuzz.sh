#!/usr/bin/env bash
# Fuzzes dvkg's readers of hostile input with cargo fuzz (libFuzzer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (default: all of them) for SECONDS (default 600), one
# after the other, starting from a valid example of every input
# (examples/fuzz_seeds.rs) and the standards' vectors. Needs a nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A crash stops that
# target and leaves its input in fuzz/artifacts/TARGET/; once fixed, copy it
# to fuzz/regressions/TARGET/, where `cargo test` replays it forever.
# A summary line per target (executions, corpus, crashes) is printed at the
# end and kept in fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wire definition lock transcript deposit_data keystore abort_report)
fi

cargo run --quiet --features test-utils --example fuzz_seeds
mkdir -p fuzz/logs
summary=()
for target in "${targets[@]}"; do
    log="fuzz/logs/$target.log"
    echo "fuzzing $target for $seconds s (log: $log)"
    status=0
    (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 \
        -print_final_stats=1) >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
    summary+=("$target: ${execs:-?} executions in $seconds s, corpus $corpus inputs, crash artifacts $crashes, exit $status")
done
printf '%s\n' "${summary[@]}" | tee fuzz/logs/summary.txt
