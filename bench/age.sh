#!/bin/sh
# age benchmark: `coffer age encrypt/decrypt` of one large file against
# `openssl speed` for ChaCha20-Poly1305 (single core, 64 KiB buffers, the
# age chunk size) and against stock age(1), all in one run on one machine.
#
#   usage: bench/age.sh [BUILD]     (coffer is BUILD/bin/coffer; default build)
#
# Environment:
#   AGE_BENCH_MIB      input size in MiB (default 1024)
#   AGE_BENCH_RUNS     timed runs per command, best kept (default 3)
#   AGE_BENCH_SECONDS  seconds per `openssl speed` run (default 3)
#   AGE_BENCH_PROFILE  1: always profile with perf, 0: never, auto (default):
#                      only when coffer misses the 80 % target
#   AGE_BENCH_OUT      report file, or - for stdout only. Default:
#                      bench/results/age.md for the full 1024 MiB run, stdout
#                      otherwise (a quick check does not overwrite the result)
#   AGE                stock age binary (default: age on PATH; empty or none: rows skipped)
#   TMPDIR             where the temporary input goes (needs 2 x size free)
#
# Per-command results live in variables named through eval (w_cenc, ...).
# shellcheck disable=SC2034,SC2154
set -eu

build=${1:-build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
here=$(cd "$(dirname "$0")" && pwd)
coffer=$build/bin/coffer
mib=${AGE_BENCH_MIB:-1024}
runs=${AGE_BENCH_RUNS:-3}
secs=${AGE_BENCH_SECONDS:-3}
profile=${AGE_BENCH_PROFILE:-auto}
age=${AGE-$(command -v age || true)}
if [ -n "${AGE_BENCH_OUT:-}" ]; then
	out=$AGE_BENCH_OUT
elif [ "$mib" = 1024 ]; then
	out=$here/results/age.md
else
	out=-
fi
target=0.80

say() { echo "age bench: $*" >&2; }
die() {
	say "$*"
	exit 1
}

for v in "$mib" "$runs" "$secs"; do
	case $v in '' | *[!0-9]* | 0) die "AGE_BENCH_MIB/RUNS/SECONDS must be positive integers" ;; esac
done
[ -x "$coffer" ] || die "no $coffer (run make build)"
command -v openssl >/dev/null 2>&1 || die "openssl not found"
if [ -n "$age" ] && [ ! -x "$age" ]; then
	die "AGE=$age is not an executable (AGE= skips stock age)"
fi
bytes=$((mib * 1048576))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench-age.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT HUP TERM

# --- timing -----------------------------------------------------------
# timed CMD...: runs CMD once with stdout on /dev/null; prints
# "wall user sys" in seconds. python3 gives exact rusage of the child;
# otherwise date(1) plus GNU time, or wall time only.
pytimer='
import os, sys, time
argv = sys.argv[1:]
fa = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
t0 = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)
_, status, ru = os.wait4(pid, 0)
t1 = time.perf_counter()
print("%.4f %.3f %.3f" % (t1 - t0, ru.ru_utime, ru.ru_stime))
sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)
'
if command -v python3 >/dev/null 2>&1; then
	timer=python3
elif [ -x /usr/bin/time ]; then
	timer=gnutime
else
	timer=wall-only
fi

timed() {
	if [ "$timer" = python3 ]; then
		python3 -c "$pytimer" "$@"
		return
	fi
	t0=$(date +%s%N)
	if [ "$timer" = gnutime ]; then
		/usr/bin/time -f '%U %S' -o "$tmp/rusage" "$@" >/dev/null || return 1
	else
		"$@" >/dev/null || return 1
		echo "- -" >"$tmp/rusage"
	fi
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" -v r="$(tail -n 1 "$tmp/rusage")" \
		'BEGIN { printf "%.4f %s\n", (b - a) / 1e9, r }'
}

# calc DECIMALS EXPR: EXPR evaluated by awk, printed with DECIMALS places.
calc() { awk "BEGIN { printf \"%.$1f\", $2 }"; }

# openssl speed ARGS...: bytes/s for ChaCha20-Poly1305 on 64 KiB buffers.
ossl_speed() {
	openssl speed -mr -seconds "$secs" -bytes 65536 "$@" -evp chacha20-poly1305 2>/dev/null |
		awk -F: '/^\+F:/ { v = $NF } END { if (v == "") exit 1; print v }'
}

# --- setup ------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "generating $mib MiB of input in $tmp"
head -c "$bytes" /dev/zero |
	openssl enc -chacha20 -K "$(openssl rand -hex 32)" -iv "$(openssl rand -hex 16)" >"$tmp/plain"
[ "$(wc -c <"$tmp/plain" | tr -d ' ')" = "$bytes" ] || die "short input file"

"$coffer" age keygen -o "$tmp/key" 2>/dev/null
rcpt=$("$coffer" age recipient "$tmp/key")
"$coffer" age encrypt -r "$rcpt" -o "$tmp/ct" "$tmp/plain"
ctbytes=$(wc -c <"$tmp/ct" | tr -d ' ')

# Untimed correctness checks (they also pull both files into the page cache).
say "checking round trips"
"$coffer" age decrypt -i "$tmp/key" "$tmp/ct" | cmp -s - "$tmp/plain" ||
	die "coffer decrypt does not give back the input"
if [ -n "$age" ]; then
	"$age" -d -i "$tmp/key" "$tmp/ct" | cmp -s - "$tmp/plain" ||
		die "age cannot decrypt coffer's output"
fi

# --- measurements -----------------------------------------------------
say "openssl speed (${secs}s each)"
ossl_enc1=$(ossl_speed) || die "openssl speed failed"
ossl_dec1=$(ossl_speed -decrypt) || die "openssl speed -decrypt failed"

# run_op OP: one timed run of the command measured as OP.
run_op() {
	case $1 in
	read) set -- cat "$tmp/plain" ;;
	cenc) set -- "$coffer" age encrypt -r "$rcpt" "$tmp/plain" ;;
	cdec) set -- "$coffer" age decrypt -i "$tmp/key" "$tmp/ct" ;;
	aenc) set -- "$age" -r "$rcpt" "$tmp/plain" ;;
	adec) set -- "$age" -d -i "$tmp/key" "$tmp/ct" ;;
	esac
	timed "$@"
}
ops="read cenc cdec"
if [ -n "$age" ]; then
	ops="$ops aenc adec"
fi
say "warm-up run of each command"
for op in $ops; do
	run_op "$op" >/dev/null || die "$op failed"
done
# Rounds interleave the commands so background load hits them alike.
i=1
while [ "$i" -le "$runs" ]; do
	for op in $ops; do
		r=$(run_op "$op") || die "$op failed"
		echo "$r" >>"$tmp/t.$op"
		say "run $i $op: wall/user/sys $r"
	done
	i=$((i + 1))
done

say "openssl speed again"
ossl_enc2=$(ossl_speed) || die "openssl speed failed"
ossl_dec2=$(ossl_speed -decrypt) || die "openssl speed -decrypt failed"
ossl_enc=$(calc 0 "($ossl_enc1 > $ossl_enc2) ? $ossl_enc1 : $ossl_enc2")
ossl_dec=$(calc 0 "($ossl_dec1 > $ossl_dec2) ? $ossl_dec1 : $ossl_dec2")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------
best() { sort -n "$tmp/t.$1" | head -n 1; }
field() { echo "$1" | cut -d' ' -f"$2"; }
ossl_enc_mibs=$(calc 6 "$ossl_enc / 1048576")
ossl_dec_mibs=$(calc 6 "$ossl_dec / 1048576")

for op in $ops; do
	b=$(best "$op")
	eval "w_$op=\$(field \"\$b\" 1) u_$op=\$(field \"\$b\" 2) s_$op=\$(field \"\$b\" 3)"
done

# row LABEL OP OSSL_MIBS AGE_OP: one table row for OP.
row() {
	eval "w=\$w_$2 u=\$u_$2 s=\$s_$2"
	mibs=$(calc 0 "$mib / $w")
	if [ -n "$3" ]; then
		ro="$(calc 2 "$mib / $w / $3") ($(calc 0 "100 * $mib / $w / $3") %)"
	else
		ro="—"
	fi
	if [ -n "$4" ] && [ -n "$age" ]; then
		eval "aw=\$w_$4"
		ra=$(calc 2 "$aw / $w")
	else
		ra="—"
	fi
	echo "| $1 | $w | $u | $s | $mibs | $ro | $ra |"
}

per_cpu_s() { # CPU_SECONDS: MiB per CPU second, n/a below clock resolution
	if awk "BEGIN { exit !($1 > 0) }"; then calc 0 "$mib / $1"; else echo n/a; fi
}

verdict() { # OP OSSL_MIBS
	eval "w=\$w_$1"
	pct=$(calc 0 "100 * $mib / $w / $2")
	if [ "$(calc 0 "($mib / $w / $2 >= $target) ? 1 : 0")" = 1 ]; then
		echo "MET ($pct %)"
	else
		echo "MISSED ($pct %)"
	fi
}
enc_verdict=$(verdict cenc "$ossl_enc_mibs")
dec_verdict=$(verdict cdec "$ossl_dec_mibs")

# Serial floor: a loop that read()s and then seals cannot beat the pure
# crypto time plus the time to copy the input out of the page cache.
crypto_s=$(calc 4 "$bytes / $ossl_enc")
floor_s=$(calc 4 "$crypto_s + $w_read")
floor_pct=$(calc 0 "100 * $crypto_s / $floor_s")

do_profile=0
case $profile in
1) do_profile=1 ;;
auto) case "$enc_verdict$dec_verdict" in *MISSED*) do_profile=1 ;; esac ;;
esac

# profile_op CMD...: perf breakdown of one run (stdout on /dev/null).
profile_op() {
	if perf stat -x, -o "$tmp/pstat" \
		-e task-clock,syscalls:sys_enter_read,syscalls:sys_enter_write -- "$@" \
		>/dev/null 2>&1; then
		reads=$(awk -F, '$3 ~ /sys_enter_read$/ { print $1 }' "$tmp/pstat")
		writes=$(awk -F, '$3 ~ /sys_enter_write$/ { print $1 }' "$tmp/pstat")
		case $reads in '' | *[!0-9]*) ;; *)
			echo "syscalls: $reads read() (average $((bytes / reads)) bytes of input each), $writes write()"
			;;
		esac
	fi
	perf record -q -o "$tmp/perf.data" -- "$@" >/dev/null 2>&1 || return 1
	echo "samples by object:"
	perf report -i "$tmp/perf.data" --stdio -q --sort dso --percent-limit 0.5 2>/dev/null |
		sed '/^$/d; s/ *$//'
	echo "top kernel symbols (share of all samples):"
	perf report -i "$tmp/perf.data" --stdio -q --sort sym --dsos '[kernel.kallsyms]' \
		--percent-limit 1 2>/dev/null | sed '/^$/d; s/ *$//'
}

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
simd=$(awk '/^flags/ { for (i = 2; i <= NF; i++) if ($i ~ /^(avx|avx2|avx512f|avx512vl|sse4_1)$/) s = s " " $i; print s; exit }' /proc/cpuinfo)
rev=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$here/.." status --porcelain -- lib cli include 2>/dev/null)" ]; then
	rev="$rev + local changes in lib/cli/include"
fi
if [ -n "$age" ]; then
	age_line="$age ($("$age" --version 2>/dev/null || echo "version unknown"))"
else
	age_line="none (its rows are skipped)"
fi

report=$tmp/report.md
{
	echo "# age benchmark"
	echo
	echo "Generated by \`bench/age.sh\` (\`make bench\`). Do not edit by hand; rerun it."
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- Machine: $(nproc) CPUs, $cpu_model (SIMD:$simd), kernel $(uname -sr) $(uname -m)"
	echo "- Load average (1/5/15 min): $load_start at start, $load_end at end"
	echo "- OpenSSL: $(openssl version)"
	echo "- coffer: $coffer (git $rev)"
	echo "- Stock age: $age_line"
	echo
	echo "## Method"
	echo
	echo "- Input: $mib MiB ($bytes bytes) of pseudo-random data (ChaCha20 keystream from"
	echo "  \`openssl enc\`) in a temporary directory under ${TMPDIR:-/tmp}, same disk as"
	echo "  the ciphertext ($ctbytes bytes, written once by \`coffer age encrypt -o\`)."
	echo "  Both files are deleted at the end."
	echo "- Commands read their input from that file and write to stdout on /dev/null,"
	echo "  so disk writes do not count; the input is in the page cache (one untimed"
	echo "  warm-up run of each command first, after a round-trip check with \`cmp\`)."
	echo "- Encrypt: \`coffer age encrypt -r RECIPIENT IN\`, \`age -r RECIPIENT IN\` (X25519)."
	echo "  Decrypt: \`coffer age decrypt -i KEY CT\`, \`age -d -i KEY CT\`, both on coffer's"
	echo "  ciphertext (stock age decrypting it is also the interoperability check)."
	echo "- $runs timed rounds, each running every command once in turn; the table shows"
	echo "  the fastest wall time per command with the user and system CPU time of that"
	echo "  same run ($timer timer). MiB/s is plaintext MiB per wall second."
	echo "- Reference: \`openssl speed -mr -seconds $secs -bytes 65536 -evp chacha20-poly1305\`"
	echo "  (and with \`-decrypt\`), one process, so one core; it divides by user CPU time."
	echo "  Run before and after the timed rounds; the higher figure is used."
	echo "- \"read input\" is \`cat IN\` (page-cache copy only), the I/O floor."
	echo
	echo "## Results"
	echo
	echo "| operation | wall s | user s | sys s | MiB/s | ratio to openssl speed | ratio to stock age |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "| openssl speed, encrypt | — | — | — | $(calc 0 "$ossl_enc_mibs") | 1.00 | — |"
	echo "| openssl speed, decrypt | — | — | — | $(calc 0 "$ossl_dec_mibs") | 1.00 | — |"
	row "coffer age encrypt" cenc "$ossl_enc_mibs" aenc
	row "coffer age decrypt" cdec "$ossl_dec_mibs" adec
	if [ -n "$age" ]; then
		row "stock age encrypt" aenc "$ossl_enc_mibs" aenc
		row "stock age decrypt" adec "$ossl_dec_mibs" adec
	fi
	row "read input (cat)" read "" ""
	echo
	echo "Ratio to stock age is age's wall time over coffer's (above 1: coffer is faster)."
	echo
	echo "**Target, at least 80 % of OpenSSL's single-core throughput:"
	echo "encrypt $enc_verdict, decrypt $dec_verdict.**"
	echo
	echo "Serial floor: $crypto_s s of ChaCha20-Poly1305 at openssl speed plus $w_read s"
	echo "to copy the input from the page cache = $floor_s s, i.e. at most $floor_pct % of"
	echo "openssl speed for a single thread that reads and then seals each chunk."
	if [ "$timer" != wall-only ]; then
		echo "User-space throughput (MiB per user CPU second): encrypt $(per_cpu_s "$u_cenc"),"
		echo "decrypt $(per_cpu_s "$u_cdec") MiB/s."
	fi
	if [ "$do_profile" = 1 ]; then
		echo
		echo "## Where the time goes"
		echo
		if command -v perf >/dev/null 2>&1; then
			echo "One \`perf stat\` and one \`perf record\` run of each coffer command on the"
			echo "same input (libcrypto is stripped, so its samples are one block:"
			echo "ChaCha20 and Poly1305; \`_copy_to_iter\` is read() copying from the page cache)."
			echo
			for op in cenc cdec; do
				if [ "$op" = cenc ]; then
					echo "coffer age encrypt:"
					set -- "$coffer" age encrypt -r "$rcpt" "$tmp/plain"
				else
					echo "coffer age decrypt:"
					set -- "$coffer" age decrypt -i "$tmp/key" "$tmp/ct"
				fi
				echo
				echo '```'
				profile_op "$@" || echo "perf record failed"
				echo '```'
				echo
			done
		else
			echo "perf is not installed: no profile."
		fi
	fi
} >"$report"

if [ "$out" = - ]; then
	cat "$report"
else
	mkdir -p "$(dirname "$out")"
	cp "$report" "$out"
	cat "$report"
	say "report written to $out"
fi
