#!/usr/bin/env bash
# Runs an N-operator ceremony as operators would: N separate `dvkg ceremony`
# processes on 127.0.0.1, each with its own identity, on one definition; then
# `dvkg verify` on every operator's outputs.
#
#   scripts/local-ceremony.sh [N=4] [T=ceil(2N/3)] [V=2] [NETWORK=hoodi]
#
# Set DVKG to use another binary (default: target/release/dvkg, built by
# `cargo build --release` and checked by scripts/release-dvkg.sh) and WORKDIR to keep the files somewhere (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-4}
t=${2:-$(( (2 * n + 2) / 3 ))}
v=${3:-2}
network=${4:-hoodi}
address=0x0f51bb10119727a7e5ea3538074fb341f56b09ad

# The release binary, rebuilt if stale and refused if it has fault
# injection (a `cargo bench` build can leave one in target/release).
dvkg=${DVKG:-}
if [ -z "$dvkg" ]; then
  dvkg=$(bash scripts/release-dvkg.sh)
fi
work=${WORKDIR:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
echo "local ceremony: $n operators, threshold $t, $v validator(s) on $network, in $work" >&2

# Free UDP ports, one per operator.
ports=$(python3 - "$n" <<'PY' 2>/dev/null || true
import socket, sys
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
if [ -z "$ports" ]; then
  ports=$(seq 19100 $((19100 + n - 1)) | tr '\n' ' ')
fi

operators=()
i=1
for port in $ports; do
  "$dvkg" -q identity new --dir "op$i" --name "operator-$i" --address "127.0.0.1:$port" > "op$i.json"
  operators+=(--operator "op$i/operator.json")
  i=$((i + 1))
done
"$dvkg" -q definition new "${operators[@]}" --threshold "$t" --validators "$v" \
  --network "$network" --withdrawal-address "$address" --withdrawal-type 0x02 --out definition.json >/dev/null

start=$(date +%s%N)
pids=()
for i in $(seq 1 "$n"); do
  "$dvkg" ceremony --definition definition.json --identity "op$i" --out "out$i" \
    --timeout 120 --round-timeout 600 2> "op$i.log" &
  pids+=($!)
done
status=0
for i in $(seq 1 "$n"); do
  if ! wait "${pids[$((i - 1))]}"; then
    echo "operator $i failed:" >&2
    tail -n 5 "op$i.log" >&2
    status=1
  fi
done
end=$(date +%s%N)
[ "$status" -eq 0 ] || exit "$status"
elapsed_ms=$(( (end - start) / 1000000 ))
printf 'ceremony wall time: %d.%03d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) >&2

for i in $(seq 1 "$n"); do
  "$dvkg" verify "out$i" --keystores "out$i/validator_keys" --password-file "out$i/validator_keys/password.txt" \
    | tail -n 1 | sed "s/^/operator $i: /"
done
if cmp -s out1/cluster-lock.json "out$n/cluster-lock.json"; then
  echo "the lock is the same at every operator: $(sha256sum out1/cluster-lock.json | cut -c1-16)…"
fi
