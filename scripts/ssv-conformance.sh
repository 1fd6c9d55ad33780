#!/usr/bin/env bash
# Conformance of `dvkg verify --keyshares` with keyshares files that SSV's
# own tools wrote: the fixtures of shared/vectors/ssv (see SOURCES.md
# there; they are public repositories' data and stay out of this repo).
#
# For each fixture: the file must pass, with each operator's encrypted key
# where SOURCES.md provides them (every slot decrypted); then a flipped
# signature byte must be refused (exit 5), and two swapped ciphertexts
# must be refused by the operators whose slots they are. A swap is
# invisible without those operators' keys (to SSV nodes as well), so it is
# skipped, with a note, for fixtures without keys.
#
#   scripts/ssv-conformance.sh [DVKG_BINARY]
#
# Skips (exit 0) when ../shared (beside the repository) holds no
# vectors/ssv. Without DVKG_BINARY it builds one with ${CARGO:-cargo}.
set -euo pipefail
cd "$(dirname "$0")/.."

vectors=
if [ -d ../shared/vectors/ssv ]; then
    vectors=../shared/vectors/ssv
fi
if [ -z "$vectors" ]; then
    echo "ssv-conformance: skipped: no ../shared/vectors/ssv beside the repository"
    exit 0
fi

dvkg=${1:-}
if [ -z "$dvkg" ]; then
    "${CARGO:-cargo}" build --quiet --bin dvkg
    dvkg=target/debug/dvkg
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# expect CODE NAME -- ARGS...: runs `dvkg verify ARGS` and counts whether it
# exited CODE. With CODE 5, a FAIL line must name what was checked.
expect() {
    local want=$1 name=$2 status=0
    shift 3
    "$dvkg" verify "$@" >"$work/out" 2>"$work/err" || status=$?
    if [ "$status" -eq "$want" ]; then
        passed=$((passed + 1))
        echo "ok    $name (exit $status)"
        if [ "$want" -ne 0 ]; then
            grep '^FAIL' "$work/out" | head -3 | sed 's/^/        /'
        fi
    else
        failed=$((failed + 1))
        echo "FAIL  $name: exit $status, expected $want"
        sed 's/^/        /' "$work/out" "$work/err"
    fi
}

# tamper IN OUT MODE: a copy of IN with the first entry's sharesData
# changed. MODE sig flips a hex digit inside the ownership signature; MODE
# swap exchanges the first two operators' ciphertexts. The rest of the
# file is left byte for byte as it was.
tamper() {
    local text head key start value n offset new
    text=$(<"$1")
    head=${text%%'"sharesData"'*}
    key=${text:${#head}}
    key=${key%%0x*}
    start=$((${#head} + ${#key} + 2))
    value=${text:start}
    value=${value%%\"*}
    n=$(((${#value} / 2 - 96) / 304))
    case $3 in
    sig)
        local digit=${value:20:1}
        local flipped=0
        [ "$digit" = 0 ] && flipped=1
        new=${value:0:20}$flipped${value:21}
        ;;
    swap)
        offset=$((2 * (96 + 48 * n)))
        new=${value:0:offset}${value:offset+512:512}${value:offset:512}${value:offset+1024}
        ;;
    esac
    printf '%s' "${text:0:start}$new${text:start+${#value}}" >"$2"
}

# fixture DIR FILE OWNER NONCE KEYS...: KEYS are operator directories
# (encrypted_private_key.json and password) in ascending operator order.
fixture() {
    local dir=$1 file=$2 owner=$3 nonce=$4
    shift 4
    local path=$vectors/$dir/$file
    # The owner and nonce are those SOURCES.md gives for the fixture.
    if ! grep -q "$dir" "$vectors/SOURCES.md" || ! grep -q "owner $owner, nonce $nonce" "$vectors/SOURCES.md"; then
        failed=$((failed + 1))
        echo "FAIL  $dir: SOURCES.md no longer gives owner $owner, nonce $nonce"
        return
    fi
    local base=(--keyshares "$path" --ssv-owner "$owner" --ssv-nonce "$nonce")
    echo "== $dir/$file (owner $owner, nonce $nonce)"
    expect 0 "passes" -- "${base[@]}"
    local keydir
    for keydir in "$@"; do
        expect 0 "passes, with $keydir's slot decrypted" -- "${base[@]}" \
            --ssv-operator-private-key "$vectors/$keydir/encrypted_private_key.json" \
            --password-file "$vectors/$keydir/password"
    done
    expect 5 "refused with the operator nonce off by one" -- \
        --keyshares "$path" --ssv-owner "$owner" --ssv-nonce "$((nonce + 1))"

    local tampered=$work/$dir-sig.json
    tamper "$path" "$tampered" sig
    expect 5 "refused with a signature byte flipped" -- \
        --keyshares "$tampered" --ssv-owner "$owner" --ssv-nonce "$nonce"

    tampered=$work/$dir-swap.json
    tamper "$path" "$tampered" swap
    if [ $# -ge 3 ]; then
        for keydir in "$1" "$2"; do
            expect 5 "swapped ciphertexts 1 and 2 refused by $keydir" -- \
                --keyshares "$tampered" --ssv-owner "$owner" --ssv-nonce "$nonce" \
                --ssv-operator-private-key "$vectors/$keydir/encrypted_private_key.json" \
                --password-file "$vectors/$keydir/password"
        done
        expect 0 "swapped ciphertexts 1 and 2 leave $3's slot intact" -- \
            --keyshares "$tampered" --ssv-owner "$owner" --ssv-nonce "$nonce" \
            --ssv-operator-private-key "$vectors/$3/encrypted_private_key.json" \
            --password-file "$vectors/$3/password"
    else
        echo "skip  swapped ciphertexts: no operator keys for this fixture, and a swap is visible only to the operators whose slots it is"
    fi
}

fixture ssv-dkg-bulk-4 keyshares.json 0xDCc846fA10C7CfCE9e6Eb37e06eD93b666cFC5E9 1 \
    ssv-dkg-operators/operator1 ssv-dkg-operators/operator2 \
    ssv-dkg-operators/operator3 ssv-dkg-operators/operator4
fixture ssv-dkg-valid-13 keyshares.json 0x5cC0DdE14E7256340CC820415a6022a7d1c93A35 2731
fixture ssv-keys-1.1.0 multi-shares.json 0x81592c3de184a3e2c0dcb5a261bc107bfa91f494 1

echo "ssv-conformance: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
