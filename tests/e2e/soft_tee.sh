#!/bin/sh
# The soft TEE launcher end to end, with real processes: platform key,
# measurement, measured launch, reports verified by `coffer tee verify`,
# sealing keys, confinement of bad input. The enclave program is
# tee_probe (tests/e2e/tee_probe.c), built without sanitizers.
set -eu

bin=${COFFER_BIN:?}
launch=$bin/coffer-launch
coffer=$bin/coffer
probe=$bin/../tests/tee_probe
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failed=1; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$3', got '$2')"; fi; }

if [ "$(id -u)" -ne 0 ]; then
	# memfd_secret beyond RLIMIT_MEMLOCK (8 MiB) needs CAP_IPC_LOCK.
	echo "ok - # SKIP soft TEE tests need root (CAP_IPC_LOCK for secretmem)"
	exit 0
fi

plat=$tmp/platform
other=$tmp/other
export COFFER_PLATFORM_DIR=$plat
hex64=$(printf '5a%.0s' $(seq 64))

# --- platform ---
"$launch" platform init --dir "$plat" 2>/dev/null && ok "platform init" || not_ok "platform init"
check "key.pem is 0600" "$(stat -c %a "$plat/key.pem")" 600
check "seal.secret is 0600" "$(stat -c %a "$plat/seal.secret")" 600
"$launch" platform cert --dir "$plat" >"$tmp/cert.pem"
openssl x509 -in "$tmp/cert.pem" -noout -text | grep -q "NIST CURVE: P-384" && ok "platform cert is P-384" || not_ok "platform cert is P-384"
set +e
"$launch" platform init --dir "$plat" 2>"$tmp/err"; rc=$?
set -e
check "platform init refuses to overwrite" "$rc" 1
"$launch" platform init --dir "$other" 2>/dev/null
"$launch" platform cert --dir "$other" >"$tmp/other.pem"

# --- measurement ---
cp "$probe" "$tmp/prog"
m_wait=$("$launch" measure "$tmp/prog" wait "$tmp/go")
m1=$("$launch" measure "$tmp/prog" info)
m2=$("$launch" measure "$tmp/prog" info)
check "measurement is stable" "$m1" "$m2"
check "measurement is SHA-384 hex" "${#m1}" 96
m_args=$("$launch" measure "$tmp/prog" info extra)
[ "$m_args" != "$m1" ] && ok "an argument changes the measurement" || not_ok "an argument changes the measurement"
m_size=$("$launch" measure --enclave-size 128M "$tmp/prog" info)
[ "$m_size" != "$m1" ] && ok "the enclave size changes the measurement" || not_ok "the enclave size changes the measurement"
cp "$probe" "$tmp/prog2"
python3 -c "import sys; d=bytearray(open(sys.argv[1],'rb').read()); d[2000]^=1; open(sys.argv[1],'wb').write(d)" "$tmp/prog2"
m_byte=$("$launch" measure "$tmp/prog2" info)
[ "$m_byte" != "$m1" ] && ok "one program byte changes the measurement" || not_ok "one program byte changes the measurement"
echo '{"version":1,"env":["LANG"]}' >"$tmp/manifest.json"
m_man=$("$launch" measure --manifest "$tmp/manifest.json" "$tmp/prog" info)
[ "$m_man" != "$m1" ] && ok "the manifest changes the measurement" || not_ok "the manifest changes the measurement"

# --- measured launch: what runs is what was measured ---
out=$("$launch" run -- "$tmp/prog" info 2>"$tmp/launch.err")
check "run reports the measured value" "$(echo "$out" | head -1)" "$m1"
grep -q "tee=soft .*measurement=$m1" "$tmp/launch.err" && ok "the launcher says tee=soft and the measurement" || not_ok "the launcher says tee=soft and the measurement"
"$launch" run --quiet -- "$tmp/prog" wait "$tmp/go" >"$tmp/waited" &
lpid=$!
sleep 0.5
cp /bin/true "$tmp/prog"   # replace the file while the instance runs
touch "$tmp/go"
wait $lpid || true
check "replacing the program file after launch changes nothing" "$(head -1 "$tmp/waited")" "$m_wait"
cp "$probe" "$tmp/prog"

# --- reports ---
"$launch" run --quiet -- "$tmp/prog" report "$hex64" "$tmp/report.bin"
check "report is 352 bytes" "$(stat -c %s "$tmp/report.bin")" 352
mrep=$("$launch" measure "$tmp/prog" report "$hex64" "$tmp/report.bin")
"$coffer" tee verify "$tmp/report.bin" --platform-cert "$tmp/cert.pem" --report-data "$hex64" \
	--measurement "$mrep" >/dev/null && ok "report verifies with report_data and measurement" \
	|| not_ok "report verifies with report_data and measurement"
"$coffer" tee verify "$tmp/report.bin" --platform-cert "$tmp/cert.pem" --json | grep -q '"tee":"soft","hardware":false' \
	&& ok "claims say tee soft, not hardware" || not_ok "claims say tee soft, not hardware"
set +e
"$coffer" tee verify "$tmp/report.bin" --platform-cert "$tmp/other.pem" >/dev/null 2>&1; rc=$?
set -e
check "another platform's certificate is refused" "$rc" 1
flips=0
for off in 0 9 20 30 50 100 160 190 210 255 260 300 351; do
	python3 -c "import sys; d=bytearray(open(sys.argv[1],'rb').read()); d[int(sys.argv[3])]^=1; open(sys.argv[2],'wb').write(d)" \
		"$tmp/report.bin" "$tmp/flip.bin" "$off"
	if "$coffer" tee verify "$tmp/flip.bin" --platform-cert "$tmp/cert.pem" >/dev/null 2>&1; then
		not_ok "flipped bit at byte $off accepted"; flips=1
	fi
done
[ $flips -eq 0 ] && ok "a flipped bit anywhere in the report is refused"
set +e
"$coffer" tee verify "$tmp/report.bin" --platform-cert "$tmp/cert.pem" --report-data "$(printf '00%.0s' $(seq 64))" >/dev/null 2>&1; rc=$?
set -e
check "a different report_data is refused" "$rc" 1
"$launch" run --quiet --debug -- "$tmp/prog" report "$hex64" "$tmp/debug.bin"
set +e
"$coffer" tee verify "$tmp/debug.bin" --platform-cert "$tmp/cert.pem" >/dev/null 2>&1; rc=$?
set -e
check "a debug enclave's report is refused by default" "$rc" 1
"$coffer" tee verify "$tmp/debug.bin" --platform-cert "$tmp/cert.pem" --allow-debug --json | grep -q '"debug":true' \
	&& ok "debug is visible in the claims" || not_ok "debug is visible in the claims"
check "a malformed request is refused" "$("$launch" run --quiet -- "$tmp/prog" bad)" refused

# --- sealing ---
k1=$("$launch" run --quiet -- "$tmp/prog" seal data)
k2=$("$launch" run --quiet -- "$tmp/prog" seal data)
check "same measurement, same sealing key" "$k1" "$k2"
k3=$("$launch" run --quiet --enclave-size 128M -- "$tmp/prog" seal data)
[ "$k3" != "$k1" ] && ok "another measurement cannot derive the key" || not_ok "another measurement cannot derive the key"
k4=$(COFFER_PLATFORM_DIR=$other "$launch" run --quiet -- "$tmp/prog" seal data)
[ "$k4" != "$k1" ] && ok "another platform cannot derive the key" || not_ok "another platform cannot derive the key"

# --- --user: an unprivileged uid keeping only CAP_IPC_LOCK (bit 14) ---
if id nobody >/dev/null 2>&1; then
	check "--user runs the enclave as that user" "$("$launch" run --quiet --user nobody -- /usr/bin/id -u)" "$(id -u nobody)"
	caps=$("$launch" run --quiet --user nobody -- /bin/grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status | awk '{print $2}' | sort -u)
	check "--user keeps only CAP_IPC_LOCK (effective, bounding, ambient)" "$caps" 0000000000004000
	check "--user enclave still attests" "$("$launch" run --quiet --user nobody -- "$tmp/prog" info | head -1)" "$m1"
fi

# --- exit status and bad input: one line, non-zero, nothing left running ---
set +e
"$launch" run --quiet -- /bin/sh -c 'exit 7'; rc=$?
check "the program's exit status is passed through" "$rc" 7
bad() {
	want=$1; shift
	name=$1; shift
	"$@" >/dev/null 2>"$tmp/err"; rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -q '^coffer-launch: ' "$tmp/err"; then
		ok "$name: exit $rc, one line"
	else
		not_ok "$name: exit $rc (want $want), $lines lines: $(cat "$tmp/err")"
	fi
}
bad 1 "missing program" "$launch" run -- "$tmp/nonexistent" info
bad 1 "enclave size beyond the host's memory" "$launch" run --enclave-size 64T -- "$tmp/prog" info
bad 2 "enclave size not a size" "$launch" run --enclave-size lots -- "$tmp/prog" info
echo '{"version":1,"colour":"blue"}' >"$tmp/bad.json"
bad 1 "unknown manifest field" "$launch" run --manifest "$tmp/bad.json" -- "$tmp/prog" info
echo '{"version":1,' >"$tmp/bad2.json"
bad 1 "malformed manifest" "$launch" run --manifest "$tmp/bad2.json" -- "$tmp/prog" info
bad 1 "no platform key" env COFFER_PLATFORM_DIR="$tmp/none" "$launch" run -- "$tmp/prog" info
bad 1 "hardware TEE not on this host" "$launch" run --tee sgx -- "$tmp/prog" info
bad 2 "no program" "$launch" run
chmod 0644 "$plat/key.pem"
bad 1 "world-readable platform key" "$launch" run -- "$tmp/prog" info
chmod 0600 "$plat/key.pem"
set -e
if pgrep -f "$tmp/prog" >/dev/null; then not_ok "no enclave left running"; else ok "no enclave left running"; fi

exit $failed
