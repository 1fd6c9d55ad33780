#!/usr/bin/env bash
# Splitting existing validator keys, dvkg against ssv-keys (npm `ssv-keys`
# 1.1.0, the SSV tool that splits keys today), in one run: the same
# KEYSTORES (default 100) EIP-2335 keystores, as the deposit CLI writes them
# (scrypt n = 2^18, r = 8, p = 1, a salt each, one password), into shares
# for 4 SSV operators (RSA-2048 keys, threshold 3). Prints both wall times
# and their ratio.
#
# - dvkg: `dvkg demo --split-keystores DIR --keystore-password-file F
#   --operators 4 --ssv` (release build), timed whole: the dealer opens the
#   keystores (one KDF per distinct salt, in parallel), deals them over
#   loopback QUIC to 4 operators that check their shares, threshold-sign a
#   possession and the SSV ownership message per validator, write their
#   lock, transcript, share keystores (one more scrypt each) and
#   keyshares.json, then `dvkg verify` of every output. The demo makes its
#   own 4 SSV operator keys (RSA-2048, inside the timing).
# - ssv-keys: installed into a temporary directory by `npm install`. SSV=lib
#   (default) times a node script making exactly the calls of its `shares`
#   command (SSVKeys.extractKeys, buildShares, KeySharesItem.update and
#   buildPayload, one KeyShares file) over the same keystores, with 4
#   operators whose RSA-2048 keys openssl made beforehand; SSV=cli times
#   `ssv-keys shares --keystore DIR` itself, which decrypts every keystore
#   twice (a password check, then the split); SSV=both runs both. Its
#   keyshares file is then checked, untimed, with `dvkg verify --keyshares`
#   and every operator's private key.
#
# Needs node/npm with the npm registry, openssl and a Rust toolchain.
# DVKG_BIN= and MAKE_KEYSTORES_BIN= skip the cargo builds (prebuilt
# `target/release/dvkg` and `target/release/examples/make-keystores`);
# scripts/release-dvkg.sh refuses a dvkg built with fault injection.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${KEYSTORES:-100}
ssv_mode=${SSV:-lib}
case "$ssv_mode" in lib | cli | both) ;; *) echo "SSV must be lib, cli or both" >&2; exit 2 ;; esac
owner=0x0f51bb10119727a7e5ea3538074fb341f56b09ad
nonce=0
operator_ids=(11 27 103 404)
target=${CARGO_TARGET_DIR:-target}

make_keystores=${MAKE_KEYSTORES_BIN:-}
if [ -z "$make_keystores" ]; then
  # A separate build: examples enable the dev-dependency features
  # (test-utils), which the measured dvkg binary must not have.
  cargo build --release --quiet --example make-keystores
  make_keystores=$target/release/examples/make-keystores
fi
# After the example's build (it turns on the dev-dependency features): the
# ordinary release binary, refused if it has fault injection.
dvkg=$(bash scripts/release-dvkg.sh)
make_keystores=$(realpath "$make_keystores")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
secs() { awk -v m="$1" 'BEGIN {printf "%.1f", m / 1000}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); $count keystores (scrypt n=2^18, a salt each) into 4 shares (threshold 3)"

printf 'bench-split password\n' > password.txt
start=$(date +%s%N)
"$make_keystores" keys "$count" password.txt
echo "keystores written in $(secs "$(ms "$start")") s (untimed)"

# ssv-keys, installed now, with two overrides:
# - 1.1.0 depends on `prompts` from a git URL (github.com/meshin-blox/prompts,
#   a fork for its interactive CLI); where GitHub is unreachable that install
#   fails, so take the registry's prompts 2.4.2, which the non-interactive
#   `shares` command and the library never call.
# - its `js-base64: ^3.7.2` now resolves to 3.9, whose strict decode breaks
#   ssv-keys' operator-key check (it slices the PEM with the base64 string's
#   length, leaving the END line in the body, which 3.7 ignored): every
#   operator key, SSV's published ones too, is refused. 3.7.8 is the newest
#   3.7.
ssv_ok=1
ssv_reason=""
mkdir ssv
cat > ssv/package.json <<'EOF'
{ "name": "bench-split-ssv-keys", "private": true,
  "dependencies": { "ssv-keys": "1.1.0" },
  "overrides": { "prompts": "2.4.2", "js-base64": "3.7.8" } }
EOF
if ! (cd ssv && npm install --no-audit --no-fund --loglevel=error > ../npm.log 2>&1); then
  ssv_ok=0
  ssv_reason="npm install ssv-keys@1.1.0 failed: $(grep -m 3 -i 'error' npm.log | tr '\n' ' ')"
elif [ "$(cd ssv && node -p 'require("ssv-keys/package.json").version' 2>/dev/null)" != "1.1.0" ]; then
  ssv_ok=0
  ssv_reason="npm installed no ssv-keys 1.1.0"
fi

# 4 SSV operators for ssv-keys: RSA-2048, and the registered form of each
# public key (base64 of the SubjectPublicKeyInfo PEM under the label
# `RSA PUBLIC KEY`, as SSV writes it).
keys=()
for i in 1 2 3 4; do
  openssl genrsa -traditional -out "op$i.pem" 2048 2>/dev/null
  keys+=("$(openssl rsa -in "op$i.pem" -pubout 2>/dev/null | sed 's/PUBLIC KEY-----/RSA PUBLIC KEY-----/' | base64 -w0)")
done
ids_csv=$(IFS=,; echo "${operator_ids[*]}")
keys_csv=$(IFS=,; echo "${keys[*]}")

cat > ssv/split.js <<'EOF'
// The calls of ssv-keys' `shares` command (KeySharesAction.processFile),
// one keystore after another, into one keyshares file.
const fs = require('fs');
const path = require('path');
const { SSVKeys, KeySharesItem, KeyShares } = require('ssv-keys');
const [dir, passwordFile, ids, keys, ownerAddress, firstNonce, out] = process.argv.slice(2);
const password = fs.readFileSync(passwordFile, 'utf8').split('\n')[0];
const operators = ids.split(',').map((id, i) => ({ id: Number(id), operatorKey: keys.split(',')[i] }));
(async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  const keyShares = new KeyShares();
  for (const [index, file] of files.entries()) {
    const data = fs.readFileSync(path.join(dir, file), 'utf8');
    const ownerNonce = Number(firstNonce) + index;
    const ssvKeys = new SSVKeys();
    const { privateKey, publicKey } = await ssvKeys.extractKeys(data, password);
    const encryptedShares = await ssvKeys.buildShares(privateKey, operators);
    const item = new KeySharesItem();
    await item.update({ ownerAddress, ownerNonce, operators, publicKey });
    await item.buildPayload({ publicKey, operators, encryptedShares }, { ownerAddress, ownerNonce, privateKey });
    keyShares.add(item);
  }
  fs.writeFileSync(out, keyShares.toJson());
})().catch((err) => { console.error(err); process.exit(1); });
EOF

# dvkg.
start=$(date +%s%N)
if ! "$dvkg" demo --split-keystores keys --keystore-password-file password.txt --operators 4 \
  --ssv --ssv-owner "$owner" --ssv-nonce "$nonce" --round-timeout 1200 --out dvkg-out \
  > dvkg.out 2> dvkg.log; then
  cat dvkg.log dvkg.out >&2
  echo "dvkg demo failed" >&2
  exit 1
fi
dvkg_ms=$(ms "$start")
decrypt=$(sed -n 's/.*the dealer opened .* in \([0-9.]*\) s (\([0-9]*\) distinct.*/\1 s, \2 KDF runs/p' dvkg.log)
ceremony=$(sed -n 's/^ceremony complete in \([0-9.]*\) s (protocol \([0-9.]*\) s, then outputs and keystores \([0-9.]*\) s.*/\2 s protocol, \3 s outputs per operator/p' dvkg.out)
verified=$(grep -c 'all passed' dvkg.log || true)
echo "dvkg     $(secs "$dvkg_ms") s  (dvkg demo --split-keystores --ssv: dealer decrypt ${decrypt:-n/a}; ${ceremony:-n/a}; $verified of 5 outputs verified)"

run_ssv() { # mode
  local out="ssv-$1"
  mkdir "$out"
  local start status=0
  start=$(date +%s%N)
  if [ "$1" = lib ]; then
    (cd ssv && node split.js ../keys ../password.txt "$ids_csv" "$keys_csv" "$owner" "$nonce" \
      "../$out/keyshares.json") > "$out.log" 2>&1 || status=$?
  else
    # The CLI prints its errors and still exits 0.
    (cd ssv && npx --no-install ssv-keys shares --keystore=../keys --password="$(head -n 1 ../password.txt)" \
      --operator-ids="$ids_csv" --operator-keys="$keys_csv" --output-folder="../$out" \
      --owner-address="$owner" --owner-nonce="$nonce") > "$out.log" 2>&1 || status=$?
    grep -q 'Key distribution successful' "$out.log" || status=1
  fi
  ssv_ms=$(ms "$start")
  if [ $status -ne 0 ]; then
    tail -n 20 "$out.log" >&2
    return 1
  fi
  local file
  file=$(ls "$out"/*.json | head -n 1)
  local shares
  shares=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).shares.length)' "$file")
  # Every operator's slot of every validator decrypts to a share of it.
  local checked=0
  for i in 1 2 3 4; do
    if "$dvkg" -q verify --keyshares "$file" --ssv-owner "$owner" --ssv-nonce "$nonce" \
      --ssv-operator-private-key "op$i.pem" > "$out-verify$i.log" 2>&1; then
      checked=$((checked + 1))
    fi
  done
  local what="node script of SSVKeys calls, one KDF per keystore"
  [ "$1" = cli ] && what="ssv-keys shares --keystore DIR, two KDFs per keystore"
  echo "ssv-keys $(secs "$ssv_ms") s  ($what; $shares validators in its keyshares file, which dvkg verify passes for $checked of 4 operator keys)"
  printf 'ratio    ssv-keys (%s) / dvkg = %s\n' "$1" "$(awk -v s="$ssv_ms" -v d="$dvkg_ms" 'BEGIN {printf "%.1f", s / d}')"
}

if [ $ssv_ok -eq 0 ]; then
  echo "ssv-keys NOT RUN: $ssv_reason"
  exit 1
fi
modes=$ssv_mode
[ "$ssv_mode" = both ] && modes="lib cli"
for mode in $modes; do
  if ! run_ssv "$mode"; then
    echo "ssv-keys ($mode) FAILED: see the log above"
    exit 1
  fi
done
