#!/bin/sh
# `make start` and `make demo` for real, in a temporary state directory on
# random ports: scripts/start.sh makes the platform key, the admin key, the
# KMS (soft TEE) and cofferd, and stays up; scripts/demo.sh runs the
# two-party example against it and checks the result with sqlite3; a
# second start.sh sees the services running and starts nothing; SIGINT
# stops both services and exits 0; the next start reuses everything (same
# admin password, same KMS measurement, the datasets still listed, the
# demo's task runs again: the KMS still holds the keys); the demo runs
# again. A KMS state that this KMS cannot open is refused with the reason.
set -eu

bin=${COFFER_BIN:?}
tmp=$(mktemp -d)
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
spid=
. "$here/lib.sh"
trap 'stop_pid "$spid"; rm -rf "$tmp"' EXIT INT TERM

need_root
command -v sqlite3 >/dev/null || { echo "not ok - sqlite3 (the CLI) is not installed"; exit 1; }

# start.sh runs $BUILD/bin/coffer-kms and coffer-enclave under coffer-launch;
# in the sanitizer build those are tests/e2e's uninstrumented copies.
mkdir -p "$tmp/build/bin"
for p in coffer coffer-launch cofferd libcoffer-soft.so; do ln -s "$bin/$p" "$tmp/build/bin/$p"; done
for p in coffer-kms coffer-enclave; do
	if [ -x "$bin/../tests/e2e/$p" ]; then ln -s "$bin/../tests/e2e/$p" "$tmp/build/bin/$p"; else
		ln -s "$bin/$p" "$tmp/build/bin/$p"; fi
done

COFFER_STATE=$tmp/state
COFFER_PLATFORM_DIR=$tmp/platform
COFFER_LISTEN=127.0.0.1:$(free_port)
COFFER_KMS_LISTEN=127.0.0.1:$(free_port)
export COFFER_STATE COFFER_PLATFORM_DIR COFFER_LISTEN COFFER_KMS_LISTEN
# A background job of a non-interactive shell ignores SIGINT, and a shell
# cannot trap what it was started ignoring: env gives it back its default.
start_bg() {
	env --default-signal=INT "$src/scripts/start.sh" "$tmp/build" >"$tmp/start$1.log" 2>&1 &
	spid=$!
	t0=$(date +%s%N)
	wait_for_line "$tmp/start$1.log" "Ctrl-C stops it" "$spid" || exit 1
	ok "start $1: up in $((($(date +%s%N) - t0) / 1000000)) ms"
}
stop_int() {
	kill -INT "$spid"
	rc=0
	wait "$spid" || rc=$?
	spid=
	check "SIGINT stops start.sh with status 0" "$rc" 0
	if grep -q "stopped; the state stays" "$tmp/start$1.log"; then ok "it says it stopped"; else
		not_ok "no stop message: $(tail -3 "$tmp/start$1.log")"; fi
	if pgrep -f "$tmp/state" >/dev/null; then not_ok "processes of the state remain: $(pgrep -af "$tmp/state")"
	else ok "cofferd and coffer-kms are gone"; fi
}
demo() {
	t0=$(date +%s%N)
	if COFFER_DEMO_KEEP=${2:-0} "$src/scripts/demo.sh" "$tmp/build" >"$tmp/demo$1.log" 2>&1; then
		ok "demo $1 ran in $((($(date +%s%N) - t0) / 1000000)) ms"
	else
		not_ok "demo $1 failed: $(tail -15 "$tmp/demo$1.log")"
	fi
	n=$(grep -c "result equals sqlite3 on the plaintext" "$tmp/demo$1.log" || true)
	check "demo $1: both organisations' results equal sqlite3's" "$n" 2
}

# --- first start: everything is made ---
start_bg 1
pw=$COFFER_STATE/cofferd/admin.password
for f in "$COFFER_PLATFORM_DIR/key.pem" "$COFFER_STATE/admin.key" "$COFFER_STATE/kms/kms.db.sealed" \
	"$pw" "$COFFER_STATE/cofferd/tls.crt" "$COFFER_STATE/start.env"; do
	if [ -s "$f" ]; then ok "made ${f#"$tmp"/}"; else not_ok "no ${f#"$tmp"/}"; fi
done
if grep -q "admin's first password is in $pw" "$tmp/start1.log" && grep -q "https://$COFFER_LISTEN" "$tmp/start1.log"
then ok "it prints the API URL and where the admin's password is"; else
	not_ok "start output: $(cat "$tmp/start1.log")"; fi
if grep -qF -e "$(cat "$pw")" "$tmp/start1.log"; then not_ok "the password itself is printed"; else
	ok "the password itself is not printed"; fi
cp "$pw" "$tmp/pw.1"
meas1=$(cat "$COFFER_STATE/kms.measurement")

run 0 "a second start.sh while it runs" "$src/scripts/start.sh" "$tmp/build"
if grep -q "already running; nothing started twice" "$tmp/out"; then ok "it says so and starts nothing"; else
	not_ok "second start: $(cat "$tmp/out")"; fi
check "one cofferd of this state" "$(pgrep -fc "cofferd --state $COFFER_STATE")" 1

demo 1 1
kept=$(sed -n 's/^demo: kept //p' "$tmp/demo1.log")
task=$(sed -n 's/.*organisations .*, task \(task-[0-9a-f]*\)$/\1/p' "$tmp/demo1.log")
stop_int 1

# --- second start: nothing re-made, nothing lost ---
start_bg 2
if grep -q "key made\|platform key created" "$tmp/start2.log"; then not_ok "keys were made again"; else
	ok "no key made again"; fi
if cmp -s "$pw" "$tmp/pw.1"; then ok "same admin password file"; else not_ok "the admin password changed"; fi
check "same KMS measurement" "$(cat "$COFFER_STATE/kms.measurement")" "$meas1"
. "$COFFER_STATE/start.env"
export COFFER_HOME=$tmp/adm
run 0 "the admin logs in with the first start's password" "$bin/coffer" login "$COFFER_URL" --user admin \
	--password-file "$pw" --cacert "$COFFER_CA"
run 0 "dataset list" "$bin/coffer" dataset list
check "the demo's two datasets are still there, ready" "$(grep -c " ready " "$tmp/out")" 2
export COFFER_HOME=$kept/analyst
run 0 "the demo's task runs again after the restart (the KMS kept the keys)" \
	"$bin/coffer" task run "$task" --wait --timeout 60
unset COFFER_HOME
rm -rf "$kept"
demo 2
stop_int 2

# --- a KMS state this KMS cannot open is refused with the reason ---
COFFER_KMS_LISTEN=127.0.0.1:$(free_port)
run 1 "start with another COFFER_KMS_LISTEN (measured: the sealed state cannot open)" \
	"$src/scripts/start.sh" "$tmp/build"
if grep -q "is sealed to measurement" "$tmp/err"; then ok "refused, saying why"; else
	not_ok "no reason: $(cat "$tmp/out" "$tmp/err")"; fi
if pgrep -f "$tmp/state" >/dev/null; then not_ok "it left processes: $(pgrep -af "$tmp/state")"; else
	ok "nothing left running"; fi

exit $failed
