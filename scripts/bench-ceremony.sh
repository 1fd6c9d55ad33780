#!/usr/bin/env bash
# Benchmark of whole ceremonies: 4 `dvkg ceremony` processes (threshold 3) on
# this machine over loopback QUIC, for V = 100, 1,000 and 10,000 validators
# (override with VALIDATORS="..."). Reports the wall time of the ceremony,
# the peak memory (max RSS) of each operator, and the ratio of the wall time
# to the cryptographic floor measured in the same run by `cargo bench --bench
# dkg` on one core (t G1 multiplications, 1 signature, and 1/V of a sound
# batched check with 64-bit weights per validator per operator), spread over
# this machine's cores. Then `dvkg verify` on operator 1's outputs: its wall
# time per validator, its peak memory, and the transcript's size.
#
# Every operator also encrypts its V keystores with one KDF run: scrypt
# n = 2^18 by default, whose working set alone is 256 MiB (128 * r * n bytes);
# KDF=pbkdf2 measures the ceremony's own memory without it.
set -euo pipefail
cd "$(dirname "$0")/.."

validators=${VALIDATORS:-"100 1000 10000"}
kdf=${KDF:-scrypt}
n=4
t=3
address=0x0f51bb10119727a7e5ea3538074fb341f56b09ad
cores=$(nproc)

# One core: blst's multi-scalar multiplications and Miller loops would use
# them all, and the wall time below divides the floor by the core count.
# The benches first: their build turns on the dev-dependency features
# (test-utils, fault-injection) and leaves that build of dvkg in
# target/release, which the release build below replaces.
cargo bench --quiet --bench dkg --no-run 2>/dev/null
floor_ms=$(DVKG_BENCH_FLOOR_ONLY=1 taskset -c 0 cargo bench --quiet --bench dkg 2>/dev/null | awk '/floor_ms_per_validator/ {print $2}')
# The ordinary release binary (`cargo build --release`), refused if it has
# fault injection; DVKG_BIN= measures another build (say the one before a
# change) against the floor of this run, with the same check.
dvkg=$(bash scripts/release-dvkg.sh)
echo "machine: $cores cores; keystore KDF: $kdf; floor at n=4, t=3: $floor_ms ms per validator per operator on one core (taskset -c 0 cargo bench --bench dkg)"

timer=()
if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -f "%M"); fi

# Every run's directory stays until the script ends: on ext4, creating
# files just after deleting many (the last V's 2·V keystore and password
# files per operator) is slower for a while: the next ceremony's outputs
# took 2.0-2.4 s instead of 0.2 s at V=1,000 on this machine.
works=()
trap 'rm -rf "${works[@]}"' EXIT
for v in $validators; do
  work=$(mktemp -d)
  works+=("$work")
  (
    cd "$work"
    ports=$(python3 -c 'import socket
s=[socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
    ops=()
    i=1
    for port in $ports; do
      "$dvkg" -q identity new --dir "op$i" --name "op$i" --address "127.0.0.1:$port" >/dev/null 2>&1
      ops+=(--operator "op$i/operator.json")
      i=$((i + 1))
    done
    "$dvkg" -q definition new "${ops[@]}" --threshold $t --validators "$v" --network hoodi \
      --withdrawal-address $address --withdrawal-type 0x02 --out def.json >/dev/null 2>&1
    # Flush what earlier steps (the build, the last V) left dirty: each
    # operator's output commit is one syncfs, which would wait for it too.
    sync
    start=$(date +%s%N)
    pids=()
    # Not -q: each operator's `ceremony complete in ...` line is read below
    # (no progress bars off a terminal).
    for i in 1 2 3 4; do
      if [ ${#timer[@]} -gt 0 ]; then
        "${timer[@]}" -o "rss$i" "$dvkg" ceremony --definition def.json --identity "op$i" --out "out$i" \
          --timeout 120 --round-timeout 1200 --kdf "$kdf" 2> "log$i" &
      else
        "$dvkg" ceremony --definition def.json --identity "op$i" --out "out$i" \
          --timeout 120 --round-timeout 1200 --kdf "$kdf" 2> "log$i" &
      fi
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    end=$(date +%s%N)
    wall_ms=$(( (end - start) / 1000000 ))
    rss="n/a"
    if [ -f rss1 ]; then
      rss=$(for i in 1 2 3 4; do tail -n 1 "rss$i"; done | awk '{printf "%s%.0f", (NR>1?" ":""), $1/1024}')" MiB"
    fi
    floor_wall_ms=$(awk -v f="$floor_ms" -v v="$v" -v c="$cores" 'BEGIN {printf "%.0f", f * v * 4 / c}')
    ratio=$(awk -v w="$wall_ms" -v f="$floor_wall_ms" 'BEGIN {printf "%.2f", w / f}')
    vstart=$(date +%s%N)
    if [ ${#timer[@]} -gt 0 ]; then
      "${timer[@]}" -o vrss "$dvkg" -q verify out1 >/dev/null
      vrss="$(tail -n 1 vrss | awk '{printf "%.0f", $1/1024}') MiB"
    else
      "$dvkg" -q verify out1 >/dev/null
      vrss="n/a"
    fi
    vend=$(date +%s%N)
    verify_ms=$(( (vend - vstart) / 1000000 ))
    transcript_bytes=$(du -cb out1/transcript* | tail -n 1 | cut -f1)
    printf 'V=%-6s wall %6.2f s | peak RSS per operator: %s | crypto floor on %s cores %6.2f s | wall/floor %s\n' \
      "$v" "$(awk -v w="$wall_ms" 'BEGIN {print w/1000}')" "$rss" "$cores" \
      "$(awk -v w="$floor_wall_ms" 'BEGIN {print w/1000}')" "$ratio"
    printf '  dvkg verify out1: %.2f s (%.3f ms per validator), peak RSS %s | transcript %d bytes (%.0f per validator)\n' \
      "$(awk -v w="$verify_ms" 'BEGIN {print w/1000}')" "$(awk -v w="$verify_ms" -v v="$v" 'BEGIN {print w/v}')" "$vrss" \
      "$transcript_bytes" "$(awk -v b="$transcript_bytes" -v v="$v" 'BEGIN {print b/v}')"
    # Each operator's own account of where its time went.
    for i in 1 2 3 4; do
      sed -n "s/^dvkg: ceremony complete in \(.*\); lock hash .*/  operator $i: \1/p" "log$i"
    done
  )
done
