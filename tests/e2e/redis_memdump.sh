#!/bin/sh
# The soft TEE's memory protection, shown with memory dumps: what root on
# the host can read of a process with gcore and /proc/PID/mem.
#
# Redis (Debian's redis-server, unmodified) runs twice on free loopback
# ports, once plainly and once in the soft TEE (coffer-launch, or the
# runtime preloaded directly while the launcher is not built). Three values
# are stored in each; both processes are dumped both ways. The plain dumps
# must hold every value, the soft ones none, and the soft Redis must still
# answer with the right values; every thread of the soft Redis but
# jemalloc's background thread must run on a secretmem stack, none of the
# plain one's. Then the same for tests/e2e/secret_rows, which fills 100 MB
# of heap with marked rows: every row is found in the plain dumps, none in
# the soft ones.
#
# A value counts as found in its text form or as the 8-byte little-endian
# integer Redis keeps for an integer-looking value (the text of all but the
# last command is gone from a plain Redis's buffers; the integers remain).
# A dump that read (almost) nothing cannot pass: the bytes read are checked.
#
# Run as root (reading another process's memory; the launcher is the soft
# TEE's hardware) with COFFER_BIN set to the built programs' folder; meson's
# e2e suite does that. Exit 77 (skipped) when not root. POSIX sh; prints one
# "ok - ..." or "not ok - ..." line per check and exits 1 if any failed.
set -eu
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
: "${COFFER_BIN:=$(cd "$here/../.." && pwd)/build/bin}"
PROCMEM=$here/procmem.py
RUNTIME=$COFFER_BIN/libcoffer-soft.so
MIMALLOC=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
SECRET_ROWS=${COFFER_SECRET_ROWS:-$COFFER_BIN/../tests/e2e/secret_rows}
ENCLAVE_BYTES=268435456
VALUES="11112233 11114455 11116677"
ROW_MARK=SECRETROW-0 # the marker and a row number's first digit: rows only

if [ "$(id -u)" -ne 0 ]; then
	echo "# skipped: reading other processes' memory and launching the soft TEE need root"
	exit 77
fi
for tool in redis-server redis-cli gcore python3 pgrep; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "not ok - $tool is not installed (scripts/deps.sh installs it)"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-memdump.XXXXXX")
started="" # every process this script started or found, killed on exit

cleanup() {
	for p in $started; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $started; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

npass=0
nfail=0

ok() {
	npass=$((npass + 1))
	echo "ok - $1"
}

not_ok() {
	nfail=$((nfail + 1))
	echo "not ok - $1"
}

# context FILE: the first lines of FILE as diagnostics.
context() {
	if [ -s "$1" ]; then
		head -n 5 "$1" | sed 's/^/#   /'
	fi
}

# free_port START: the first port from START on that nothing listens on.
free_port() {
	p=$1
	while [ "$p" -lt $(($1 + 100)) ]; do
		if python3 -c 'import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null; then
			echo "$p"
			return 0
		fi
		p=$((p + 1))
	done
	return 1
}

# The soft TEE: coffer-launch when it is built and works, else the runtime
# and mimalloc preloaded directly (what the launcher does, minus isolation
# and attestation).
launcher=""
if [ -x "$COFFER_BIN/coffer-launch" ] &&
	"$COFFER_BIN/coffer-launch" run --help >/dev/null 2>&1; then
	launcher=$COFFER_BIN/coffer-launch
	echo "# soft TEE: $launcher run --enclave-size 256M"
	# A throw-away platform key: attestation is not what is tested here.
	COFFER_PLATFORM_DIR=$T/platform
	export COFFER_PLATFORM_DIR
	if ! "$launcher" platform init --dir "$COFFER_PLATFORM_DIR" >"$T/platform.log" 2>&1; then
		echo "not ok - coffer-launch platform init failed"
		context "$T/platform.log"
		exit 1
	fi
else
	echo "# launcher not available, runtime preloaded directly"
	echo "# soft TEE: COFFER_ENCLAVE_SIZE=$ENCLAVE_BYTES LD_PRELOAD=$RUNTIME:$MIMALLOC"
	if [ ! -f "$RUNTIME" ] || [ ! -f "$MIMALLOC" ]; then
		echo "not ok - runtime $RUNTIME or allocator $MIMALLOC missing"
		exit 1
	fi
fi

# start MODE NAME CMD...: starts CMD in the background, plainly or in the
# soft TEE, with stdout/stderr in $T/NAME.out/.err; the started pid is $bgpid.
start() {
	_mode=$1
	_name=$2
	shift 2
	if [ "$_mode" = plain ]; then
		"$@" >"$T/$_name.out" 2>"$T/$_name.err" &
	elif [ -n "$launcher" ]; then
		"$launcher" run --enclave-size 256M -- "$@" >"$T/$_name.out" 2>"$T/$_name.err" &
	else
		env COFFER_ENCLAVE_SIZE=$ENCLAVE_BYTES LD_PRELOAD="$RUNTIME:$MIMALLOC" \
			"$@" >"$T/$_name.out" 2>"$T/$_name.err" &
	fi
	bgpid=$!
	started="$started $bgpid"
}

# program_pid PID: the program itself: PID, or under the launcher its
# deepest descendant (the launcher forks the enclave). Recorded for cleanup.
program_pid() {
	_p=$1
	while _c=$(pgrep -P "$_p" | head -n 1) && [ -n "$_c" ]; do
		_p=$_c
	done
	case " $started " in *" $_p "*) ;; *) started="$started $_p" ;; esac
	echo "$_p"
}

# wait_for PID SECONDS CMD...: retries CMD every 0.1 s until it succeeds;
# gives up early when process PID has exited.
wait_for() {
	_pid=$1
	_n=$(($2 * 10))
	shift 2
	while [ "$_n" -gt 0 ]; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$_pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
		_n=$((_n - 1))
	done
	return 1
}

redis_up() {
	[ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]
}

# has_arena PID: the process has a secretmem mapping (the runtime is active).
has_arena() {
	grep -q ' /secretmem (deleted)$' "/proc/$1/maps" 2>/dev/null
}

# dump_gcore LABEL PID: core file path on stdout; fails if none was written.
dump_gcore() {
	gcore -o "$T/core-$1" "$2" >"$T/gcore-$1.log" 2>&1 || true
	[ -s "$T/core-$1.$2" ] && echo "$T/core-$1.$2"
}

# dump_mem LABEL PID: /proc/PID/mem dump path on stdout; the bytes read in
# $T/mem-LABEL.stat. Fails if the reader failed.
dump_mem() {
	python3 "$PROCMEM" dump "$2" "$T/mem-$1" >"$T/mem-$1.stat" 2>"$T/mem-$1.err" &&
		echo "$T/mem-$1"
}

# count FILE PATTERN: occurrences of PATTERN in FILE (procmem.py syntax).
count() {
	python3 "$PROCMEM" count "$1" "$2" | awk '{ print $2 }'
}

# pick SIDE PLAIN SOFT: PLAIN or SOFT, by SIDE.
pick() {
	if [ "$1" = plain ]; then echo "$2"; else echo "$3"; fi
}

# check_bytes LABEL MIN: the /proc/PID/mem dump read at least MIN bytes.
check_bytes() {
	_bytes=$(sed -n 's/^bytes=\([0-9]*\).*/\1/p' "$T/mem-$1.stat")
	if [ -n "$_bytes" ] && [ "$_bytes" -ge "$2" ]; then
		ok "$1: /proc/PID/mem read $_bytes bytes ($(cat "$T/mem-$1.stat"))"
	else
		not_ok "$1: /proc/PID/mem read ${_bytes:-no} bytes, expected at least $2"
		context "$T/mem-$1.err"
	fi
}

# --- Redis ---

port_plain=$(free_port 26379)
port_soft=$(free_port $((port_plain + 1)))

start plain redis-plain /usr/bin/redis-server --save '' --appendonly no --daemonize no \
	--port "$port_plain" --bind 127.0.0.1 --dir "$T"
plain_launch_pid=$bgpid
start soft redis-soft /usr/bin/redis-server --save '' --appendonly no --daemonize no \
	--port "$port_soft" --bind 127.0.0.1 --dir "$T"
soft_launch_pid=$bgpid

redis_ok=1
for side in plain soft; do
	port=$(pick "$side" "$port_plain" "$port_soft")
	launched=$(pick "$side" "$plain_launch_pid" "$soft_launch_pid")
	if wait_for "$launched" 30 redis_up "$port"; then
		ok "redis-server ($side) answers on port $port"
	else
		not_ok "redis-server ($side) does not answer on port $port"
		context "$T/redis-$side.err"
		context "$T/redis-$side.out"
		redis_ok=0
	fi
done

if [ $redis_ok = 1 ]; then
	pid_plain=$(program_pid "$plain_launch_pid")
	pid_soft=$(program_pid "$soft_launch_pid")
	if has_arena "$pid_soft"; then
		ok "soft redis-server (pid $pid_soft) has its heap in a secretmem arena"
	else
		not_ok "soft redis-server (pid $pid_soft) has no secretmem mapping"
	fi
	if has_arena "$pid_plain"; then
		not_ok "plain redis-server (pid $pid_plain) has a secretmem mapping"
	fi
	# Redis's threads (main, bio_*, io_thd_*) run on secretmem stacks. One
	# known exception: jemalloc 5.3 starts its background thread through
	# dlsym(RTLD_NEXT, "pthread_create") from libjemalloc, which skips the
	# preloaded runtime (docs/soft-tee.md).
	for side in plain soft; do
		pid=$(pick "$side" "$pid_plain" "$pid_soft")
		python3 "$PROCMEM" threads "$pid" >"$T/threads-$side.txt" 2>&1 || true
		n=$(grep -c '^tid ' "$T/threads-$side.txt" || true)
		open=$(grep '^tid ' "$T/threads-$side.txt" | grep -vc ' /secretmem (deleted)$' || true)
		open_redis=$(grep '^tid ' "$T/threads-$side.txt" |
			grep -v '^tid [0-9]* jemalloc_bg_thd ' | grep -vc ' /secretmem (deleted)$' || true)
		if [ $side = soft ] && [ "$n" -ge 4 ] && [ "$open_redis" -eq 0 ]; then
			ok "soft redis-server: its threads run on secretmem stacks ($n threads; $open on an ordinary stack: jemalloc_bg_thd)"
		elif [ $side = plain ] && [ "$n" -ge 4 ] && [ "$open" -eq "$n" ]; then
			ok "plain redis-server: none of its $n threads runs on a secretmem stack"
		else
			not_ok "$side redis-server: $open of $n threads on ordinary stacks"
			context "$T/threads-$side.txt"
		fi
	done

	for side in plain soft; do
		port=$(pick "$side" "$port_plain" "$port_soft")
		i=1
		for v in $VALUES; do
			redis-cli -p "$port" set "intel_test$i" "$v" >/dev/null
			i=$((i + 1))
		done
	done

	for side in plain soft; do
		pid=$(pick "$side" "$pid_plain" "$pid_soft")
		for how in gcore mem; do
			label=redis-$side-$how
			if [ $how = gcore ]; then
				if ! file=$(dump_gcore "$label" "$pid"); then
					not_ok "$label: gcore wrote no core file"
					context "$T/gcore-$label.log"
					continue
				fi
				ok "$label: gcore wrote $(wc -c <"$file") bytes"
			else
				if ! file=$(dump_mem "$label" "$pid"); then
					not_ok "$label: /proc/$pid/mem could not be read"
					context "$T/mem-$label.err"
					continue
				fi
				# Redis itself and its libraries are readable in any case.
				check_bytes "$label" 1000000
			fi
			seen=""
			missing=""
			for v in $VALUES; do
				text=$(count "$file" "$v")
				int=$(count "$file" "le64:$v")
				if [ "$text" -gt 0 ] || [ "$int" -gt 0 ]; then
					seen="$seen $v(text $text, int $int)"
				else
					missing="$missing $v"
				fi
			done
			keys=$(count "$file" intel_test)
			if [ $side = plain ]; then
				if [ -z "$missing" ]; then
					ok "$label: every value is in the dump:$seen"
				else
					not_ok "$label: values missing from the plain dump:$missing"
				fi
			else
				if [ -z "$seen" ] && [ "$keys" -eq 0 ]; then
					ok "$label: no value and no key name in the dump"
				else
					not_ok "$label: secrets leaked:${seen:- (no value)}, key names $keys"
				fi
			fi
			rm -f "$file"
		done
	done

	i=1
	for v in $VALUES; do
		got=$(redis-cli -p "$port_soft" get "intel_test$i" 2>&1 || true)
		if [ "$got" = "$v" ]; then
			ok "soft redis: get intel_test$i = $v"
		else
			not_ok "soft redis: get intel_test$i = '$got', expected $v"
		fi
		i=$((i + 1))
	done
fi

# --- secret_rows ---

if [ ! -x "$SECRET_ROWS" ]; then
	not_ok "secret_rows is not built ($SECRET_ROWS)"
else
	start plain rows-plain "$SECRET_ROWS" 100
	rows_plain_pid=$bgpid
	start soft rows-soft "$SECRET_ROWS" 100
	rows_soft_pid=$bgpid
	for side in plain soft; do
		launched=$(pick "$side" "$rows_plain_pid" "$rows_soft_pid")
		if ! wait_for "$launched" 60 grep -q '^ready ' "$T/rows-$side.out"; then
			not_ok "secret_rows ($side) did not get ready"
			context "$T/rows-$side.err"
			continue
		fi
		rows=$(sed -n 's/^ready .* rows=\([0-9]*\)$/\1/p' "$T/rows-$side.out")
		pid=$(program_pid "$launched")
		ok "secret_rows ($side, pid $pid) holds $rows rows"
		if [ $side = soft ] && ! has_arena "$pid"; then
			not_ok "soft secret_rows (pid $pid) has no secretmem mapping"
		fi
		for how in gcore mem; do
			label=rows-$side-$how
			if [ $how = gcore ]; then
				if ! file=$(dump_gcore "$label" "$pid"); then
					not_ok "$label: gcore wrote no core file"
					context "$T/gcore-$label.log"
					continue
				fi
				ok "$label: gcore wrote $(wc -c <"$file") bytes"
			else
				if ! file=$(dump_mem "$label" "$pid"); then
					not_ok "$label: /proc/$pid/mem could not be read"
					context "$T/mem-$label.err"
					continue
				fi
				check_bytes "$label" 1000000
			fi
			n=$(count "$file" "$ROW_MARK")
			if [ $side = plain ]; then
				if [ "$n" -ge "$rows" ]; then
					ok "$label: all $rows rows are in the plain dump ($n markers)"
				else
					not_ok "$label: $n of $rows rows in the plain dump"
				fi
			else
				if [ "$n" -eq 0 ]; then
					ok "$label: no row in the dump"
				else
					not_ok "$label: $n rows leaked into the dump"
				fi
			fi
			rm -f "$file"
		done
	done
fi

echo "# $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
