# Shared by the e2e scripts (sourced, POSIX sh): TAP-like reporting, a
# command runner that keeps stdout/stderr, a JSON getter, and starting
# background servers. The sourcing script sets $tmp first and exits with
# $failed.
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failed=1; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$3', got '$2')"; fi; }
# run WANT_RC NAME CMD...: runs CMD with stdout in $tmp/out, stderr in $tmp/err.
run() {
	want=$1; name=$2; shift 2
	set +e
	"$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
	set -e
	if [ "$rc" = "$want" ]; then ok "$name"; else
		not_ok "$name: exit $rc, want $want: $(head -c 800 "$tmp/err")"; fi
}
# refused NAME CHECK CMD...: exits 1 and names CHECK on stderr.
refused() {
	name=$1; want_check=$2; shift 2
	run 1 "$name refused" "$@"
	if grep -q "$want_check" "$tmp/err"; then ok "$name: reason is $want_check"; else
		not_ok "$name: reason should be $want_check: $(head -c 400 "$tmp/err")"; fi
}
# jget FILE a.b.c: a JSON member ("" if absent; booleans as true/false).
jget() { python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k] if isinstance(v, dict) else None
print("" if v is None else (str(v).lower() if isinstance(v, bool) else v))' "$@"; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for_line LOG PATTERN PID: until LOG has PATTERN (10 s), or PID died.
wait_for_line() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$3" 2>/dev/null; then
			not_ok "no '$2' in $1: $(tail -5 "$1" 2>/dev/null)"
			return 1
		fi
		sleep 0.1
	done
}
# stop_pid PID: terminates and reaps a background job.
stop_pid() {
	if [ -n "$1" ]; then
		kill "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}
need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "ok - # SKIP the soft TEE needs root (CAP_IPC_LOCK for secretmem)"
		exit 0
	fi
}
