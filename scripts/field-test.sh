#!/usr/bin/env bash
# The field test: dvkg ceremonies as real operators run them, each operator
# on its own host (a network namespace on a bridge this script creates and
# removes), every packet through a user-space impairment relay
# (tools/impair: delay, jitter, loss, duplication, reordering, rate,
# partitions, one-way cuts, operators that accept no inbound traffic; the
# kernel here has no netem).
#
#   sudo scripts/field-test.sh [SCENARIO...]     # default: every scenario
#   scripts/field-test.sh --list
#
# Scenarios: see `--list`. `random` runs FIELD_RANDOM (default 50) random
# fault schedules and checks each against the invariant of "Never a split
# outcome" (ceremony-specs/protocol.md §5); `messages` runs the situations
# of issue 17's "Found 3" with DVKG_BEFORE (when given) and DVKG, and prints
# each operator's main error line side by side.
#
# Environment:
#   DVKG         the dvkg binary to test (default: target/release/dvkg, built
#                with `cargo build --release` when missing)
#   DVKG_BEFORE  an older binary for the `messages` table (optional)
#   FIELD_WORK   where to keep the files (default: a temp dir, kept)
#   FIELD_RANDOM how many random schedules (default 50)
#   FIELD_SEED   the first random seed (default 1)
#   FIELD_SITUATIONS  only these situations of `messages` (their keys)
#   FIELD_ALLOW_FAULT=1  test a binary that carries --fault (a bench build)
#
# Needs root (namespaces, veth, a bridge) and `ip`; without them it says so
# and exits 0 (skipped). It is not part of .ci/run: it takes about half an
# hour and needs root.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scenarios_all="clean impaired staggered partition15 partition60 oneway n7 nat1 nat2 nat2-relay-via ping random messages"
if [ "${1:-}" = "--list" ]; then
  cat <<'EOF'
clean           4 operators, no impairment
impaired        100 ms ± 20 ms, 10% loss, 1% duplication, 5% reordering, 10 Mbit/s (operator 4: 1 Mbit/s)
staggered       the operators start 0, 30, 60 and 90 s apart
partition15     {1,2} | {3,4} for 15 s in round 1, --round-timeout 60
partition60     {1,2} | {3,4} for 60 s in round 1, --round-timeout 300
oneway          1 -> 3 cut for 25 s in round 1 (3 -> 1 still flows), --round-timeout 60
n7              7 operators, threshold 5, with the impairment of `impaired`
nat1            operator 3 accepts no inbound (a NAT): reached by its own dials
nat2            operators 3 and 4 accept no inbound: no direct path between them (relay)
nat2-relay-via  as nat2, with --relay-via 1
ping            dvkg ping on 4 operators; operator 2 cannot dial 3 (3 can dial 2)
random          FIELD_RANDOM random fault schedules against "Never a split outcome"
messages        the situations of issue 17 "Found 3", DVKG_BEFORE against DVKG
EOF
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "field-test: skipped: needs root and iproute2 (network namespaces, a bridge)" >&2
  exit 0
fi
if ! ip netns add dvkg-probe 2>/dev/null; then
  echo "field-test: skipped: this machine does not allow network namespaces" >&2
  exit 0
fi
ip netns del dvkg-probe

# One field test at a time: each builds and removes the same bridge.
exec 9> /tmp/dvkg-field-test.lock
if ! flock -n 9; then
  echo "field-test: another field test is running (it owns the bridge and namespaces)" >&2
  exit 1
fi

dvkg=${DVKG:-$root/target/release/dvkg}
if [ ! -x "$dvkg" ]; then
  cargo build --release --quiet || exit 1
fi
if [ -z "${FIELD_ALLOW_FAULT:-}" ] && "$dvkg" ceremony --help | grep -q -- '--fault'; then
  echo "field-test: $dvkg carries fault injection; test the ordinary release build" >&2
  exit 1
fi
impair=$root/tools/impair/target/release/impair
if [ ! -x "$impair" ]; then
  (cd tools/impair && cargo build --release --quiet) || exit 1
fi
work=${FIELD_WORK:-$(mktemp -d /tmp/dvkg-field.XXXXXX)}
mkdir -p "$work"
echo "field-test: $dvkg, files in $work" >&2

bridge=dvkgbr0
relay_ip=10.77.0.1
max_ops=7
withdrawal=0x0f51bb10119727a7e5ea3538074fb341f56b09ad

op_ip() { echo "10.77.0.$((10 + $1))"; }

cleanup() {
  jobs -p | xargs -r kill 2>/dev/null
  for i in $(seq 1 $max_ops); do
    ip netns del "dvkg-op$i" 2>/dev/null
  done
  ip link del "$bridge" 2>/dev/null
}
trap cleanup EXIT

setup() {
  cleanup
  ip link add "$bridge" type bridge || return 1
  ip addr add "$relay_ip/24" dev "$bridge"
  ip link set "$bridge" up
  for i in $(seq 1 $max_ops); do
    ip netns add "dvkg-op$i"
    ip link add "dvkv$i" type veth peer name eth0 netns "dvkg-op$i"
    ip link set "dvkv$i" master "$bridge" up
    ip -n "dvkg-op$i" addr add "$(op_ip "$i")/24" dev eth0
    ip -n "dvkg-op$i" link set eth0 up
    ip -n "dvkg-op$i" link set lo up
  done
}
setup || { echo "field-test: could not build the bridge and namespaces" >&2; exit 1; }

# The main line of an operator's log: its error, or its lock hash.
outcome_line() {
  local log=$1
  if grep -q '^dvkg: ceremony complete' "$log"; then
    grep '^dvkg: ceremony complete' "$log" | sed 's/.*lock hash \(.\{16\}\).*/complete, lock \1…/'
  else
    grep -m1 '^error:' "$log" | cut -c1-240
  fi
}

# prepare DIR N T V [BIN]: identities (addresses: the relay's ports) and a
# definition.
prepare() {
  local dir=$1 n=$2 t=$3 v=$4 bin=${5:-$dvkg}
  rm -rf "$dir"
  mkdir -p "$dir"
  local ops=()
  for i in $(seq 1 "$n"); do
    "$bin" -q identity new --dir "$dir/op$i" --name "operator-$i" --address "$relay_ip:$((9000 + i))" \
      >/dev/null 2>>"$dir/prepare.log" || return 1
    ops+=(--operator "$dir/op$i/operator.json")
  done
  "$bin" -q definition new "${ops[@]}" --threshold "$t" --validators "$v" --network hoodi \
    --withdrawal-address "$withdrawal" --withdrawal-type 0x01 --out "$dir/definition.json" \
    >/dev/null 2>>"$dir/prepare.log"
}

# relay_config DIR N RULES...: the impairment relay's configuration.
relay_config() {
  local dir=$1 n=$2
  shift 2
  {
    echo "listen $relay_ip"
    for i in $(seq 1 "$n"); do
      echo "op $i $(op_ip "$i") $((9000 + i)) $(op_ip "$i"):9000"
    done
    for rule in "$@"; do echo "$rule"; done
  } > "$dir/impair.conf"
}

# run DIR N "CEREMONY ARGS" "START DELAYS" [BIN] [KILL] [PER-OPERATOR]: starts
# the relay and every operator in its namespace, waits, and writes
# DIR/exit.<i>. KILL is "OPERATOR SECONDS": that operator is killed
# (SIGKILL) then. PER-OPERATOR is "ARGS1:ARGS2:...": more arguments for
# each operator.
run() {
  local dir=$1 n=$2 args=$3 delays=${4:-} bin=${5:-$dvkg} kill=${6:-} perop=${7:-}
  "$impair" "$dir/impair.conf" > "$dir/impair.stats" 2> "$dir/impair.log" &
  local relay=$!
  sleep 0.3
  local pids=() i delay own
  for i in $(seq 1 "$n"); do
    delay=$(echo "$delays" | awk -v i="$i" '{print ($i == "" ? 0 : $i)}')
    own=$(echo "$perop" | cut -s -d: -f"$i")
    (
      sleep "$delay"
      # shellcheck disable=SC2086
      exec ip netns exec "dvkg-op$i" "$bin" ceremony --definition "$dir/definition.json" \
        --identity "$dir/op$i" --out "$dir/out$i" --listen "$(op_ip "$i"):9000" $args $own \
        > "$dir/op$i.out" 2> "$dir/op$i.log"
    ) &
    pids+=($!)
  done
  if [ -n "$kill" ]; then
    local victim=${kill% *} at=${kill#* }
    (sleep "$at"; pkill -KILL -f -- "--identity $dir/op$victim " ) &
  fi
  for i in $(seq 1 "$n"); do
    wait "${pids[$((i - 1))]}"
    echo $? > "$dir/exit.$i"
  done
  kill -TERM "$relay" 2>/dev/null
  wait "$relay" 2>/dev/null
}

# table DIR N: one line per operator: exit code and outcome.
table() {
  local dir=$1 n=$2
  for i in $(seq 1 "$n"); do
    printf '  operator %d  exit %-3s %s\n' "$i" "$(cat "$dir/exit.$i")" "$(outcome_line "$dir/op$i.log")"
  done
}

# split_check DIR N: the invariant of "Never a split outcome". Prints
# "ok: ..." or "VIOLATED: ..." and returns nonzero on a violation.
split_check() {
  local dir=$1 n=$2 locks=() zero=0 with_lock=0 i
  for i in $(seq 1 "$n"); do
    if [ -f "$dir/out$i/cluster-lock.json" ]; then
      locks+=("$(sha256sum < "$dir/out$i/cluster-lock.json" | cut -c1-16)")
      with_lock=$((with_lock + 1))
    fi
    [ "$(cat "$dir/exit.$i")" = 0 ] && zero=$((zero + 1))
    if compgen -G "$dir/.out$i.partial-*" >/dev/null; then
      echo "VIOLATED: operator $i left a partial output directory"
      return 1
    fi
  done
  local distinct
  distinct=$(printf '%s\n' "${locks[@]:-}" | grep -v '^$' | sort -u | wc -l)
  if [ "$distinct" -gt 1 ]; then
    echo "VIOLATED: $distinct different locks"
    return 1
  fi
  if [ "$zero" -gt 0 ] && [ "$with_lock" -lt "$n" ]; then
    echo "VIOLATED: $zero operator(s) exited 0 but only $with_lock hold outputs"
    return 1
  fi
  if [ "$with_lock" -gt 0 ] && [ "$with_lock" -lt "$n" ]; then
    # Every operator without outputs must hold the pending file that
    # restores its shares against the lock that exists.
    local lock_file
    lock_file=$(ls "$dir"/out*/cluster-lock.json | head -n 1)
    for i in $(seq 1 "$n"); do
      [ -f "$dir/out$i/cluster-lock.json" ] && continue
      local pending=$dir/out$i.pending-shares-operator-$i.age
      if [ ! -f "$pending" ]; then
        echo "VIOLATED: a lock exists, operator $i has neither outputs nor a pending file"
        return 1
      fi
      rm -rf "$dir/restored$i"
      if ! "$dvkg" -q restore --pending "$pending" --lock "$lock_file" --identity "$dir/op$i" \
        --out "$dir/restored$i" > /dev/null 2> "$dir/restore$i.log"; then
        echo "VIOLATED: operator $i cannot restore from its pending file: $(head -n 1 "$dir/restore$i.log")"
        return 1
      fi
    done
    echo "ok: recoverable ($with_lock of $n hold outputs, the others restored from their pending files)"
    return 0
  fi
  if [ "$with_lock" -eq "$n" ]; then
    echo "ok: every operator holds the same lock ($zero exited 0)"
  else
    echo "ok: no lock anywhere (nobody exited 0)"
  fi
}

# Cuts that start in round 1: 200 validators over 2 Mbit/s links make
# round 1 last seconds, and the connection handshakes relay well under
# 150 kB (the relay logs the bytes relayed every half second).
in_round1="link * * delay=20 rate=2000000"
round1_bytes=150000
impairment=("link * * delay=100 jitter=20 loss=0.1 dup=0.01 reorder=0.05 rate=10000000" "link 4 * rate=1000000")
failures=0

scenario() {
  local name=$1 n=$2 t=$3 v=$4 args=$5 delays=$6
  shift 6
  local dir=$work/$name
  echo "== $name"
  prepare "$dir" "$n" "$t" "$v" || { echo "  could not prepare"; failures=$((failures + 1)); return; }
  relay_config "$dir" "$n" "$@"
  local start end
  start=$(date +%s)
  run "$dir" "$n" "$args" "$delays"
  end=$(date +%s)
  table "$dir" "$n"
  grep -h "through operator .* (relay)" "$dir"/op*.log 2>/dev/null | sed 's/^dvkg: /  relayed: /' | sort -u
  local verdict
  verdict=$(split_check "$dir" "$n")
  echo "  $verdict; $((end - start)) s"
  local all_zero=1
  for i in $(seq 1 "$n"); do [ "$(cat "$dir/exit.$i")" = 0 ] || all_zero=0; done
  if [ "$all_zero" = 1 ]; then
    echo "  completed: byte-identical locks at every operator"
  else
    echo "  NOT COMPLETED"
    failures=$((failures + 1))
  fi
  case $verdict in VIOLATED*) failures=$((failures + 1)) ;; esac
  printf '%s\t%s\n' "$name" "$([ "$all_zero" = 1 ] && echo completed || echo failed)" >> "$work/summary.tsv"
}

ping_scenario() {
  local dir=$work/ping n=4
  echo "== ping (operator 2 cannot dial 3; 3 can dial 2)"
  if ! "$dvkg" ping --help >/dev/null 2>&1; then
    echo "  skipped: this dvkg has no ping command"
    return
  fi
  prepare "$dir" "$n" 3 1
  relay_config "$dir" "$n" "block 2 3"
  "$impair" "$dir/impair.conf" > "$dir/impair.stats" 2> "$dir/impair.log" &
  local relay=$! pids=() i
  sleep 0.3
  for i in $(seq 1 "$n"); do
    ip netns exec "dvkg-op$i" "$dvkg" ping --definition "$dir/definition.json" --identity "$dir/op$i" \
      --listen "$(op_ip "$i"):9000" > "$dir/ping$i.out" 2> "$dir/ping$i.log" &
    pids+=($!)
  done
  for i in $(seq 1 "$n"); do
    wait "${pids[$((i - 1))]}"
    echo $? > "$dir/exit.$i"
  done
  kill -TERM "$relay" 2>/dev/null
  wait "$relay" 2>/dev/null
  echo "  operator 1's matrix (exit $(cat "$dir/exit.1")):"
  sed 's/^/    /' "$dir/ping1.out"
  for i in $(seq 2 "$n"); do
    if ! cmp -s <(grep -v '^dvkg:' "$dir/ping1.out") <(grep -v '^dvkg:' "$dir/ping$i.out"); then
      echo "  operator $i printed another matrix:"
      sed 's/^/    /' "$dir/ping$i.out"
    fi
  done
}

random_scenario() {
  local count=${FIELD_RANDOM:-50} seed=${FIELD_SEED:-1} violations=0 k
  echo "== random: $count fault schedules, checked against \"Never a split outcome\""
  printf '  %-4s %-62s %-22s %s\n' seed schedule exits verdict
  for k in $(seq "$seed" $((seed + count - 1))); do
    local dir=$work/random/$k
    prepare "$dir" 4 3 1 || { echo "  could not prepare"; return; }
    # The schedule, from the seed: loss, a one-way cut or a partition at
    # some point of the protocol, perhaps a kill.
    local plan
    plan=$(python3 - "$k" <<'PY'
import random, sys
r = random.Random(int(sys.argv[1]))
rules = [f"link * * delay={r.choice([0, 20, 100])} jitter={r.choice([0, 10])} loss={r.choice([0, 0.02, 0.1])}",
         f"seed {r.randint(1, 10**6)}"]
kind = r.choice(["cut", "cut", "partition", "none"])
a, b = r.sample([1, 2, 3, 4], 2)
at = r.choice(["at=0", f"bytes={r.randint(2_000, 400_000)}"])
length = r.choice([2, 5, 15, 40])
desc = []
if kind == "cut":
    rules.append(f"cut {a} {b} {at} for={length}")
    desc.append(f"cut {a}->{b} {at} {length}s")
elif kind == "partition":
    g = r.sample([1, 2, 3, 4], 2); h = [x for x in [1, 2, 3, 4] if x not in g]
    ga, hb = ",".join(map(str, g)), ",".join(map(str, h))
    rules += [f"cut {ga} {hb} {at} for={length}", f"cut {hb} {ga} {at} for={length}"]
    desc.append(f"partition {ga}|{hb} {at} {length}s")
kill = ""
if r.random() < 0.3:
    victim = r.randint(1, 4); when = round(r.uniform(0.5, 6.0), 1)
    kill = f"{victim} {when}"
    desc.append(f"kill {victim} at {when}s")
print(" ; ".join(rules))
print(", ".join(desc) or "loss only")
print(kill)
PY
)
    local rules desc kill
    rules=$(sed -n 1p <<< "$plan")
    desc=$(sed -n 2p <<< "$plan")
    kill=$(sed -n 3p <<< "$plan")
    local list=()
    IFS=';' read -ra list <<< "$rules"
    local trimmed=()
    for rule in "${list[@]}"; do trimmed+=("$(echo "$rule" | sed 's/^ *//; s/ *$//')"); done
    relay_config "$dir" 4 "${trimmed[@]}"
    run "$dir" 4 "--timeout 30 --round-timeout 10" "" "$dvkg" "$kill"
    local exits verdict
    exits=$(for i in 1 2 3 4; do printf '%s ' "$(cat "$dir/exit.$i")"; done)
    verdict=$(split_check "$dir" 4)
    case $verdict in VIOLATED*) violations=$((violations + 1)) ;; esac
    printf '  %-4s %-62s %-22s %s\n' "$k" "$desc" "$exits" "$verdict"
  done
  echo "  $violations violation(s) in $count schedules"
  [ "$violations" -eq 0 ] || failures=$((failures + 1))
}

# The situations of issue 17 "Found 3", each run with DVKG_BEFORE (when
# given) and DVKG. Prints every operator's main error line.
messages_scenario() {
  local bins=("$dvkg") labels=(after)
  if [ -n "${DVKG_BEFORE:-}" ]; then
    bins=("$DVKG_BEFORE" "$dvkg")
    labels=(before after)
  fi
  echo "== messages: the situations of \"Found 3\""
  local situations=(
    "uplink|this machine's uplink is too slow (operator 2 sends at 40 kbit/s)|4|3|300|--timeout 60 --round-timeout 10||link 2 * rate=40000"
    "isolated|operator 2 loses every peer at once in round 1|4|3|200|--timeout 60 --round-timeout 10||$in_round1;cut 2 * bytes=$round1_bytes for=600;cut * 2 bytes=$round1_bytes for=600"
    "vanish|operator 4 vanishes in round 1 (all its links cut)|4|3|200|--timeout 60 --round-timeout 10||$in_round1;cut 4 * bytes=$round1_bytes for=600;cut * 4 bytes=$round1_bytes for=600"
    "vanish-connecting|operator 4 vanishes while the others connect|4|3|1|--timeout 60 --round-timeout 10||cut 4 * bytes=20000 for=600;cut * 4 bytes=20000 for=600"
    "gaveup|operator 1 gives up connecting (operator 4 never reachable); the others keep waiting|4|3|1|--round-timeout 10|--timeout 10:--timeout 60:--timeout 60:--timeout 60|cut * 4 at=0;cut 4 * at=0"
    "wrongport|operator 4's record has a wrong port (nobody can dial it)|4|3|1|--timeout 30 --round-timeout 10||noinbound 4"
  )
  local entry
  for entry in "${situations[@]}"; do
    IFS='|' read -r key what n t v args perop rules <<< "$entry"
    if [ -n "${FIELD_SITUATIONS:-}" ] && ! grep -qw -- "$key" <<< "$FIELD_SITUATIONS"; then
      continue
    fi
    echo "  -- $what"
    local b
    for b in "${!bins[@]}"; do
      local bin=${bins[$b]} dir=$work/messages/$key-${labels[$b]}
      prepare "$dir" "$n" "$t" "$v" "$bin" || { echo "    ${labels[$b]}: could not prepare"; continue; }
      local list=()
      IFS=';' read -ra list <<< "$rules"
      relay_config "$dir" "$n" "${list[@]}"
      run "$dir" "$n" "$args" "" "$bin" "" "$perop"
      for i in $(seq 1 "$n"); do
        printf '    %-6s op %d exit %-3s %s\n' "${labels[$b]}" "$i" "$(cat "$dir/exit.$i")" "$(outcome_line "$dir/op$i.log")"
      done
    done
  done
}

selected=${*:-$scenarios_all}
: > "$work/summary.tsv"
for s in $selected; do
  case $s in
    clean) scenario clean 4 3 "${FIELD_V:-1}" "${FIELD_ARGS:-}" "" ;;
    impaired) scenario impaired 4 3 20 "--round-timeout 120" "" "${impairment[@]}" ;;
    staggered) scenario staggered 4 3 1 "" "0 30 60 90" ;;
    partition15) scenario partition15 4 3 200 "--round-timeout 60 ${FIELD_ARGS:-}" "" "$in_round1" \
      "cut 1,2 3,4 bytes=$round1_bytes for=15" "cut 3,4 1,2 bytes=$round1_bytes for=15" ;;
    partition60) scenario partition60 4 3 200 "--round-timeout 300 ${FIELD_ARGS:-}" "" "$in_round1" \
      "cut 1,2 3,4 bytes=$round1_bytes for=60" "cut 3,4 1,2 bytes=$round1_bytes for=60" ;;
    oneway) scenario oneway 4 3 200 "--round-timeout 60 ${FIELD_ARGS:-}" "" "$in_round1" \
      "cut 1 3 bytes=$round1_bytes for=25" ;;
    n7) scenario n7 7 5 10 "--round-timeout 120" "" "${impairment[@]}" ;;
    nat1) scenario nat1 4 3 1 "${FIELD_ARGS:-}" "" "noinbound 3" ;;
    nat2) scenario nat2 4 3 1 "" "" "noinbound 3,4" ;;
    nat2-relay-via) scenario nat2-relay-via 4 3 1 "--relay-via 1" "" "noinbound 3,4" ;;
    ping) ping_scenario ;;
    random) random_scenario ;;
    messages) messages_scenario ;;
    *) echo "field-test: unknown scenario $s (see --list)" >&2; failures=$((failures + 1)) ;;
  esac
done
echo "field-test: $failures failure(s); files in $work"
[ "$failures" -eq 0 ]
