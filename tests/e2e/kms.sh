#!/bin/sh
# coffer-kms end to end, through real processes: the KMS runs in the soft
# TEE (coffer-launch); two organisations verify it (coffer attest),
# enroll with admin tokens, create keys, encrypt their data with stock
# `age -r` and register it; both approve a task; a test enclave
# (release_enclave, also under coffer-launch) gets the keys and decrypts
# both files. Then refusals through the same path (missing approval,
# debug TEE, other measurement, disabled key), a restart that keeps the
# state, the sealed state file and a memory dump of the running KMS
# scanned for an imported key, and the audit log verified.
set -eu

bin=${COFFER_BIN:?}
launch=$bin/coffer-launch
coffer=$bin/coffer
e2e=$bin/../tests/e2e
kms=$e2e/coffer-kms
enclave=$e2e/release_enclave
procmem=$(cd "$(dirname "$0")" && pwd)/procmem.py
tmp=$(mktemp -d)
lpid=
stop_kms() { stop_pid "$lpid"; lpid=; }
trap 'stop_kms; rm -rf "$tmp"' EXIT INT TERM
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

need_root
command -v age >/dev/null || { echo "not ok - stock age is not installed"; exit 1; }

plat=$tmp/platform
export COFFER_PLATFORM_DIR=$plat
"$launch" platform init --dir "$plat" 2>/dev/null
port=$(free_port)
url=https://127.0.0.1:$port

COFFER_HOME=$tmp/admin "$coffer" admin keygen >"$tmp/admin.pub"

start_kms() {
	rm -f "$tmp/kms.log"
	"$launch" run --platform-dir "$plat" -- "$kms" --state "$tmp/state" \
		--admin-pub "$tmp/admin.pub" --platform-cert "$plat/cert.pem" \
		--listen "127.0.0.1:$port" >"$tmp/kms.log" 2>&1 &
	lpid=$!
	wait_for_line "$tmp/kms.log" "listening on" "$lpid" || exit 1
	kms_pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$tmp/kms.log" | head -1)
}
start_kms
ok "coffer-kms listens in the soft TEE"

# --- two organisations: attest, keys, enrollment, a key, a dataset ---
for o in a b; do
	export COFFER_HOME=$tmp/$o
	run 0 "org-$o attests the KMS" "$coffer" attest "$url" --platform-cert "$plat/cert.pem"
	"$coffer" org keygen --org "org-$o" >"$tmp/$o.pub.json"
	COFFER_HOME=$tmp/admin "$coffer" admin enroll-token --from "$tmp/$o.pub.json" >"$tmp/$o.token"
	run 0 "org-$o registers" "$coffer" org register --token "$tmp/$o.token"
	"$coffer" key create --json >"$tmp/$o.key.json"
	printf 'id,value\n1,10\n2,20\n3,SECRET-ROW-OF-%s-7f3e\n' "$o" >"$tmp/$o.csv"
	age -r "$(jget "$tmp/$o.key.json" recipient)" -o "$tmp/$o.csv.age" "$tmp/$o.csv"
	run 0 "org-$o registers its dataset (stock age -r)" \
		"$coffer" dataset register data "$tmp/$o.csv.age" --key "$(jget "$tmp/$o.key.json" key)"
done
unset COFFER_HOME
ca=$tmp/a/kms-ca.pem

# --- the task: both inputs, results to both, this enclave's measurement ---
enclave_args="--kms $url --cacert $ca --task $tmp/task.json --approval $tmp/a.appr --approval $tmp/b.appr --check a=$tmp/a.csv.age --check b=$tmp/b.csv.age"
# shellcheck disable=SC2086
meas=$("$launch" measure "$enclave" $enclave_args)
# shellcheck disable=SC2086
meas_debug=$("$launch" measure --debug "$enclave" $enclave_args)
python3 - "$tmp" "$meas" "$meas_debug" <<'PY'
import json, sys
tmp, meas, meas_debug = sys.argv[1:]
pub = {o: json.load(open(f"{tmp}/{o}.pub.json")) for o in "ab"}
task = {
    "inputs": {"a": {"dataset": "org-a/data"}, "b": {"dataset": "org-b/data"}},
    "function": {"kind": "sql", "query": "SELECT count(*) FROM a JOIN b USING (id)"},
    "outputs": [{"name": "result", "recipients": [
        {"org": "org-a", "recipient": pub["a"]["age_recipient"]},
        {"org": "org-b", "recipient": pub["b"]["age_recipient"]}]}],
    "tee": {"kinds": ["soft"], "measurements": [meas, meas_debug]},
}
json.dump(task, open(f"{tmp}/task.json", "w"), indent=1)
PY
COFFER_HOME=$tmp/a "$coffer" task approve "$tmp/task.json" --yes -o "$tmp/a.appr" 2>/dev/null
COFFER_HOME=$tmp/b "$coffer" task approve "$tmp/task.json" --yes -o "$tmp/b.appr" 2>/dev/null

# shellcheck disable=SC2086
run 0 "the enclave gets both keys and decrypts both files" "$launch" run --platform-dir "$plat" -- "$enclave" $enclave_args
cp "$tmp/out" "$tmp/release.json"
for o in a b; do
	want=$(sha256sum "$tmp/$o.csv" | cut -d' ' -f1)
	if grep -q "$want" "$tmp/release.json"; then ok "input $o decrypted inside matches org-$o's file"; else
		not_ok "input $o: plaintext hash $want not in $(head -c 600 "$tmp/release.json")"; fi
done
if grep -q "SECRET-ROW" "$tmp/release.json"; then not_ok "the enclave printed plaintext"; fi

# --- refusals through the same path ---
# Same program and arguments (so the same measurement), but org-b's
# approval file now holds org-a's approval a second time.
cp "$tmp/b.appr" "$tmp/b.appr.saved"
cp "$tmp/a.appr" "$tmp/b.appr"
# shellcheck disable=SC2086
refused "a missing approval" approval_missing "$launch" run --platform-dir "$plat" -- "$enclave" $enclave_args
mv "$tmp/b.appr.saved" "$tmp/b.appr"
# shellcheck disable=SC2086
refused "a debug TEE" debug "$launch" run --debug --platform-dir "$plat" -- "$enclave" $enclave_args
# shellcheck disable=SC2086
refused "another program (measurement)" measurement "$launch" run --platform-dir "$plat" -- "$enclave" $enclave_args --check a="$tmp/a.csv.age"
COFFER_HOME=$tmp/b "$coffer" key disable "$(jget "$tmp/b.key.json" key)" >/dev/null
# shellcheck disable=SC2086
refused "a disabled key" key_disabled "$launch" run --platform-dir "$plat" -- "$enclave" $enclave_args
COFFER_HOME=$tmp/b "$coffer" key enable "$(jget "$tmp/b.key.json" key)" >/dev/null

# --- an imported key the test knows: never on disk in the clear, never in a dump ---
age-keygen -o "$tmp/imported.key" 2>/dev/null
secret=$(grep AGE-SECRET-KEY "$tmp/imported.key")
run 0 "org-b imports an age identity" env COFFER_HOME="$tmp/b" "$coffer" key import "$tmp/imported.key"

# --- restart: the state survives ---
stop_kms
start_kms
run 0 "after a restart org-b's keys are still there" env COFFER_HOME="$tmp/b" "$coffer" key list --json
if [ "$(grep -o '"key"' "$tmp/out" | wc -l)" -ge 2 ]; then ok "both of org-b's keys listed"; else
	not_ok "key list after restart: $(head -c 400 "$tmp/out")"; fi
# shellcheck disable=SC2086
run 0 "after a restart the enclave gets the keys again" "$launch" run --platform-dir "$plat" -- "$enclave" $enclave_args

# The sealed state: no key, no name, no SQLite header in the clear.
for needle in "$secret" "org-a" "SQLite format"; do
	if grep -qaF "$needle" "$tmp/state/kms.db.sealed"; then
		not_ok "sealed state holds '$(echo "$needle" | cut -c1-20)...'"
	else ok "sealed state does not hold '$(echo "$needle" | cut -c1-20)...'"; fi
done

# The imported key's 32 raw bytes, as the KMS holds them (age's Bech32).
raw=$(python3 - "$secret" <<'PY'
import sys
s = sys.argv[1].lower()
data = [ "qpzry9x8gf2tvdw0s3jn54khce6mua7l".index(c) for c in s[s.rindex("1") + 1:-6] ]
acc = bits = 0
out = bytearray()
for v in data:
    acc = (acc << 5) | v
    bits += 5
    if bits >= 8:
        bits -= 8
        out.append((acc >> bits) & 0xff)
print(out.hex())
PY
)
# Memory dumps of the running KMS: /proc/PID/mem and gcore, what root can
# read (secretmem is not). The program's own text must be found, so the
# scans are shown to work.
python3 "$procmem" dump "$kms_pid" "$tmp/kms.mem" >/dev/null
gcore -o "$tmp/core" "$kms_pid" >"$tmp/gcore.log" 2>&1 || true
for dump in "$tmp/kms.mem" "$tmp/core.$kms_pid"; do
	name=$(basename "$dump")
	if [ ! -s "$dump" ]; then not_ok "no dump $name: $(tail -2 "$tmp/gcore.log")"; continue; fi
	counts=$(python3 "$procmem" count "$dump" "The key broker and CA of coffer" "$secret" "hex:$raw")
	n_text=$(echo "$counts" | sed -n 1p | awk '{print $NF}')
	n_ident=$(echo "$counts" | sed -n 2p | awk '{print $NF}')
	n_raw=$(echo "$counts" | sed -n 3p | awk '{print $NF}')
	if [ "$n_text" -ge 1 ]; then ok "$name reads the KMS's program text (the scan works)"; else
		not_ok "$name does not even hold the program's text: $counts"; fi
	if [ "$n_ident" = 0 ] && [ "$n_raw" = 0 ]; then ok "no imported key (text or raw bytes) in $name"; else
		not_ok "the imported key is in $name (text $n_ident, raw $n_raw)"; fi
done

# --- the audit log verifies under the KMS's key and tells the story ---
curl -s --cacert "$ca" "$url/v1/info" >"$tmp/info.json"
python3 -c 'import json,sys,base64; print(json.load(open(sys.argv[1]))["kms_pub"])' "$tmp/info.json" >"$tmp/kms.pub"
run 0 "the audit log verifies" "$coffer" audit verify "$tmp/state/audit.log" --key "$(cat "$tmp/kms.pub")"
for what in '"operation":"release","prev"' 'denied: approval_missing' 'denied: debug' 'denied: measurement' 'denied: key_disabled' '"operation":"key.import"'; do
	if grep -qF "$what" "$tmp/state/audit.log"; then ok "audit has $what"; else not_ok "audit lacks $what"; fi
done

stop_kms
exit $failed
