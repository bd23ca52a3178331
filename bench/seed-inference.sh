#!/bin/sh
# seed-inference benchmark, plain side: the reference platform's ML test
# (inference over 1.5M rows x 39 features on 2 cores) reproduced on a
# deterministic Criteo-like set (bench/seed_inference/seed_gen.c), with
# plain XGBoost through libxgboost's C API (bench/seed_inference/xgb_plain.c)
# in an ordinary process, 2 threads:
#   1. the data set, generated once and cached under BUILD keyed by rows
#      and seed (bench-cache/seed-inference/), so reruns skip it;
#   2. a 100-tree, depth-6 model trained on the first SEED_TRAIN_ROWS rows
#      (validated on the next SEED_VALID_ROWS), plain training time kept;
#   3. plain inference on all rows (load model, parse CSV, DMatrix,
#      predict, write id,prediction): wall time (median of SEED_RUNS) and
#      peak RSS; beside it (a'), coffer-enclave's own predict engine
#      (bench/seed_inference/xgb_engine.c: enclave/xgb.c and csv.c compiled
#      into an ordinary process, the plaintext file read directly), so the
#      enclave's figures split into the engine and what the TEE costs;
#   4. the same inference as a coffer task (issue 7's part b): the model
#      file of step 2 and the same CSV pushed by one organisation, one
#      xgboost.predict task run with `coffer task run` through coffer-kms,
#      coffer-enclave in the soft TEE and cofferd (as bench/joint-sql.sh),
#      decryption of the inputs and encryption of the output included, on
#      an instance of 2 cores: one untimed run whose predictions (decrypted
#      with `coffer task result`) must equal the plain ones within 1e-6,
#      then SEED_RUNS timed runs handed to the warm enclave (checked in
#      cofferd.log; median kept), the enclave's peak memory and per-phase
#      log lines; the cold start (the launch alone, same sizes) apart.
# Needs root (the soft TEE), python3 and curl.
#
#   usage: bench/seed-inference.sh [BUILD]        (default build)
#
# Environment:
#   SEED_ROWS        rows in the data set (default 1500000)
#   SEED_TRAIN_ROWS  rows trained on (default 500000, at most a third of
#                    SEED_ROWS)
#   SEED_VALID_ROWS  rows after them for the validation AUC (default
#                    100000, at most a fifteenth of SEED_ROWS)
#   SEED             generator seed (default 1); the model's seed is 0
#   SEED_RUNS        timed inference runs of each side, the median kept
#                    (default 5: the platform runs vary by a few %)
#   SEED_MEMORY      memory of the instance of part (b)'s table task, which
#                    predicts the CSV's rows as they are decrypted (default 1G)
#   SEED_ENCLAVE     its secretmem arena (default 512M: the rows are never
#                    held whole, but the predictions' CSV and its ciphertext
#                    are, each grown by doubling; 256M was seen not to fit)
#   SEED_SQL_MEMORY  memory of the instance of the query task, which loads
#                    the CSV into SQLite first (default 2G)
#   SEED_SQL_ENCLAVE its arena (default 1G: the plaintext kept for the
#                    loader's second pass, then SQLite's copy of the rows)
#   SEED_OUT         report file, or - for stdout only. Default:
#                    bench/results/seed-inference.md for the full run with
#                    the defaults, stdout otherwise (a quick check does not
#                    overwrite the result)
#   TMPDIR           where the model, predictions and the platform's state
#                    go (about twice the CSV; deleted after)
set -eu

build=${1:-build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
here=$(cd "$(dirname "$0")" && pwd)
gen=$build/bench/seed_inference/seed_gen
xgb=$build/bench/seed_inference/xgb_plain
engine=$build/bench/seed_inference/xgb_engine
rows=${SEED_ROWS:-1500000}
seed=${SEED:-1}
runs=${SEED_RUNS:-5}
nthread=2
cores=2
memory=${SEED_MEMORY:-1G}
enclave_size=${SEED_ENCLAVE:-512M}
sql_memory=${SEED_SQL_MEMORY:-2G}
sql_enclave_size=${SEED_SQL_ENCLAVE:-1G}

say() { echo "seed-inference bench: $*" >&2; }
die() {
	say "$*"
	exit 1
}
for v in "$rows" "$seed" "$runs"; do
	case $v in '' | *[!0-9]*) die "SEED_ROWS/SEED/SEED_RUNS must be integers" ;; esac
done
if [ "$rows" -lt 30 ] || [ "$runs" -lt 1 ]; then
	die "SEED_ROWS must be >= 30, SEED_RUNS >= 1"
fi
train_rows=${SEED_TRAIN_ROWS:-500000}
[ "$train_rows" -le $((rows / 3)) ] || train_rows=$((rows / 3))
valid_rows=${SEED_VALID_ROWS:-100000}
[ "$valid_rows" -le $((rows / 15)) ] || valid_rows=$((rows / 15))
if [ -n "${SEED_OUT:-}" ]; then
	out=$SEED_OUT
elif [ "$rows" = 1500000 ] && [ "$train_rows" = 500000 ] && [ "$valid_rows" = 100000 ] &&
	[ "$seed" = 1 ] && [ "$runs" -ge 3 ]; then
	out=$here/results/seed-inference.md
else
	out=-
fi
if [ ! -x "$gen" ] || [ ! -x "$xgb" ] || [ ! -x "$engine" ]; then
	die "no $gen, $xgb or $engine (run make build)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench-seed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT HUP TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# key=value from a file of xgb_plain's output
get() { sed -n "s/^$2=//p" "$1"; }

# 1. The data set, cached by rows and seed. The generator's version is in
# the key too (its own checksum), so a changed generator regenerates.
gen_sum=$(sha256sum "$gen" | cut -c1-12)
cache=$build/bench-cache/seed-inference
data=$cache/rows$rows-seed$seed-gen$gen_sum.csv
mkdir -p "$cache"
if [ -s "$data" ] && [ -s "$data.meta" ]; then
	gen_note="cached: generated in $(get "$data.meta" gen_s) s by an earlier run"
else
	rm -f "$cache"/rows"$rows"-seed"$seed"-gen*.csv "$cache"/rows"$rows"-seed"$seed"-gen*.csv.meta
	say "generating $rows rows (seed $seed) into $data"
	t0=$(now)
	"$gen" --rows "$rows" --seed "$seed" -o "$data.tmp"
	t1=$(now)
	mv "$data.tmp" "$data"
	{
		echo "gen_s=$(secs "$t0" "$t1")"
		echo "bytes=$(wc -c <"$data")"
		echo "sha256=$(sha256sum "$data" | cut -d' ' -f1)"
	} >"$data.meta"
	gen_note="generated in $(get "$data.meta" gen_s) s by this run"
fi
data_bytes=$(get "$data.meta" bytes)
data_sha=$(get "$data.meta" sha256)
[ "$(wc -c <"$data")" = "$data_bytes" ] || die "$data: size differs from $data.meta (delete $cache)"
# Into the page cache, as for every run below.
cat "$data" >/dev/null

# Other work on the machine skews every number: say how busy it was.
load=$(cut -d' ' -f1-3 /proc/loadavg)

# Waits up to 60 s for the machine to be under 10 % busy (as part (b)'s
# runs do); prints how busy it was in the last second, in %.
idle() {
	python3 -c '
import time
def busy():
    def snap():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t1, i1 = snap(); time.sleep(1); t2, i2 = snap()
    return 1 - (i2 - i1) / max(1, t2 - t1)
end = time.monotonic() + 60
b = busy()
while b > 0.10 and time.monotonic() < end:
    b = busy()
print(f"{100 * b:.0f}")'
}

# 2. Training, plain.
train_busy=$(idle)
say "training on $train_rows rows (validation: the next $valid_rows)"
t0=$(now)
"$xgb" train --data "$data" --model "$tmp/model.json" --rows "$train_rows" \
	--valid-rows "$valid_rows" --trees 100 --depth 6 --seed 0 --nthread "$nthread" >"$tmp/train.out"
t1=$(now)
train_wall=$(secs "$t0" "$t1")

# 3. Inference, plain (a) and coffer's engine in an ordinary process (a'),
# alternating: SEED_RUNS runs each, the median by wall time kept, each
# once the machine is idle.
i=1
while [ "$i" -le "$runs" ]; do
	idle >>"$tmp/a_busy"
	say "inference run $i/$runs on $rows rows"
	t0=$(now)
	"$xgb" predict --model "$tmp/model.json" --data "$data" --out "$tmp/pred.csv" \
		--nthread "$nthread" >"$tmp/pred$i.out"
	t1=$(now)
	echo "$(secs "$t0" "$t1") $i" >>"$tmp/walls"
	idle >>"$tmp/a_busy"
	say "inference run $i/$runs on $rows rows, coffer's engine outside the TEE"
	t0=$(now)
	"$engine" --model "$tmp/model.json" --data "$data" --out "$tmp/pred-engine.csv" \
		--nthread "$nthread" >"$tmp/engine$i.out"
	t1=$(now)
	echo "$(secs "$t0" "$t1") $i" >>"$tmp/engine_walls"
	i=$((i + 1))
done
median=$(sort -n "$tmp/engine_walls" | sed -n "$(((runs + 1) / 2))p")
e_wall=${median% *}
e_med=$tmp/engine${median#* }.out
e_walls=$(sort -n -k2 "$tmp/engine_walls" | cut -d' ' -f1 | paste -sd' ' | sed 's/ /, /g')
e_peak_kb=$(cat "$tmp"/engine*.out | sed -n 's/^peak_rss_kb=//p' | sort -n | tail -1)
# The engine writes CRLF (as the enclave does), xgb_plain LF: otherwise the same bytes.
tr -d '\r' <"$tmp/pred-engine.csv" | cmp -s - "$tmp/pred.csv" ||
	die "coffer's engine (xgb_engine) and xgb_plain predict differently"
median=$(sort -n "$tmp/walls" | sed -n "$(((runs + 1) / 2))p")
pred_wall=${median% *}
med=$tmp/pred${median#* }.out
walls=$(sort -n -k2 "$tmp/walls" | cut -d' ' -f1 | paste -sd' ' | sed 's/ /, /g')
peak_kb=$(cat "$tmp"/pred*.out | sed -n 's/^peak_rss_kb=//p' | sort -n | tail -1)
pred_lines=$(($(wc -l <"$tmp/pred.csv") - 1))
[ "$pred_lines" = "$rows" ] || die "predictions: $pred_lines rows, want $rows"
pred_sha=$(sha256sum "$tmp/pred.csv" | cut -d' ' -f1)

# 4. The same inference as a coffer task (issue 7's part b): coffer-kms and
# coffer-enclave in the soft TEE, cofferd, set up as tests/e2e/platform.sh
# and bench/joint-sql.sh do. One organisation owns both inputs (the model
# file trained above and the CSV) and receives the predictions. Two tasks:
# `table` (the CSV straight into the matrix) on an instance of 2 cores,
# SEED_MEMORY memory and a SEED_ENCLAVE secret arena, and `query` (the CSV
# into SQLite, then a SELECT) on one of SEED_SQL_MEMORY and
# SEED_SQL_ENCLAVE. Each: one untimed run (`--wait`, its result checked
# against the plain predictions), then SEED_RUNS timed runs, each handed to
# the warm enclave cofferd keeps launched and pre-faulted for the instance
# (checked in cofferd.log), each after the machine is idle. Timing as in
# joint-sql.sh: from `coffer task run`'s start to the enclave's last log
# line. The cold start is the launch alone with the same sizes.
if [ "$(id -u)" -ne 0 ]; then
	die "part (b) needs root (the soft TEE)"
fi
for p in python3 curl; do
	command -v $p >/dev/null || die "part (b) needs $p"
done
bin=$build/bin
for p in coffer coffer-kms coffer-launch coffer-enclave cofferd; do
	[ -x "$bin/$p" ] || die "no $bin/$p (make build)"
done
coffer=$bin/coffer
launch=$bin/coffer-launch
enclave=$bin/coffer-enclave
kms_job=
cofferd_job=
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
trap 'stop "$cofferd_job"; stop "$kms_job"; rm -rf "$tmp"' EXIT
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "part (b): setting up coffer-kms and cofferd (soft TEE)"
plat=$tmp/platform
export COFFER_PLATFORM_DIR=$plat
"$launch" platform init --dir "$plat" 2>/dev/null

# (a''): coffer's engine (xgb_engine) inside the soft TEE on the plaintext
# file, the instance's sizes, no platform: its heap in the secretmem arena
# (the runtime's malloc), its cores and memory confined. Timed by its own
# clock from main to exit: the launch (pre-faulting the arena) is the cold
# start, which a warm instance has behind it.
i=1
while [ "$i" -le "$runs" ]; do
	idle >>"$tmp/a_busy"
	say "inference run $i/$runs, coffer's engine in the soft TEE, no platform"
	"$launch" run --platform-dir "$plat" --quiet --cores "$cores" --memory "$memory" \
		--enclave-size "$enclave_size" -- "$engine" --model "$tmp/model.json" --data "$data" \
		--out "$tmp/pred-tee.csv" --nthread "$nthread" >"$tmp/tee$i.out"
	echo "$(get "$tmp/tee$i.out" total_s) $i" >>"$tmp/tee_walls"
	i=$((i + 1))
done
cmp -s "$tmp/pred-tee.csv" "$tmp/pred-engine.csv" ||
	die "coffer's engine predicts differently in the soft TEE"
median=$(sort -n "$tmp/tee_walls" | sed -n "$(((runs + 1) / 2))p")
t_wall=${median% *}
t_med=$tmp/tee${median#* }.out
t_walls=$(sort -n -k2 "$tmp/tee_walls" | cut -d' ' -f1 | paste -sd' ' | sed 's/ /, /g')
port=$(free_port)
kms_url=https://127.0.0.1:$port
COFFER_HOME=$tmp/kmsadmin "$coffer" admin keygen >"$tmp/kmsadmin.pub"
"$launch" run --platform-dir "$plat" -- "$bin/coffer-kms" --state "$tmp/kms" \
	--admin-pub "$tmp/kmsadmin.pub" --platform-cert "$plat/cert.pem" \
	--listen "127.0.0.1:$port" --log-level warn >"$tmp/kms.log" 2>&1 &
kms_job=$!
i=0
until curl -sk "$kms_url/v1/info" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$tmp/kms.log" >&2; exit 1; }
	sleep 0.1
done
export COFFER_HOME=$tmp/org
"$coffer" attest "$kms_url" --platform-cert "$plat/cert.pem" >/dev/null
"$coffer" org keygen --org org-a >"$tmp/org.pub.json"
COFFER_HOME=$tmp/kmsadmin "$coffer" admin enroll-token --from "$tmp/org.pub.json" >"$tmp/org.token"
"$coffer" org register --token "$tmp/org.token" >/dev/null
"$coffer" key create --json >"$tmp/org.key.json"
unset COFFER_HOME
printf 'admin-password-bench-0123\n' >"$tmp/adminpw"
printf 'user-password-bench-0123\n' >"$tmp/pw"
state=$tmp/cofferd
"$bin/cofferd" --state "$state" --listen 127.0.0.1:0 --ready-fd 3 \
	--admin-password-file "$tmp/adminpw" --kms "$kms_url" --kms-ca "$tmp/org/kms-ca.pem" \
	--platform-cert "$plat/cert.pem" --launch "$launch" --enclave "$enclave" \
	>"$tmp/cofferd.log" 2>&1 3>"$tmp/cofferd.port" &
cofferd_job=$!
i=0
until [ -s "$tmp/cofferd.port" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$cofferd_job" 2>/dev/null; then
		tail -5 "$tmp/cofferd.log" >&2
		exit 1
	fi
	sleep 0.1
done
cofferd_url=https://127.0.0.1:$(head -1 "$tmp/cofferd.port")
ca=$state/tls.crt
adm=$tmp/adm
export COFFER_HOME=$adm
"$coffer" login "$cofferd_url" --user admin --password-file "$tmp/adminpw" --cacert "$ca" >/dev/null
"$coffer" org create org-a --from "$tmp/org.pub.json" >/dev/null
"$coffer" user create user-a --org org-a --role org-admin --password-file "$tmp/pw" >/dev/null
COFFER_HOME=$tmp/org "$coffer" login "$cofferd_url" --user user-a --password-file "$tmp/pw" \
	--cacert "$ca" >/dev/null
# Two instances of 2 cores: one sized to the task reading the CSV straight
# into the matrix (function.table), one to the task loading it into SQLite
# first (function.query), which needs the rows in SQLite plus the matrix.
# The host has room for one of them at a time: each is started for its
# task's runs and stopped after.
for v in "$memory $enclave_size" "$sql_memory $sql_enclave_size"; do
	set -- $v
	i=$("$coffer" instance create "$(echo "seed-$1-$2" | tr A-Z a-z)" --cores "$cores" --memory "$1" --enclave-size "$2" |
		cut -d" " -f2)
	echo "$i"
done >"$tmp/instances"
inst=$(sed -n 1p "$tmp/instances")
inst_sql=$(sed -n 2p "$tmp/instances")
unset COFFER_HOME

# Both inputs pushed (encrypted to the organisation's KMS key), the tasks
# made and approved: not timed.
export COFFER_HOME=$tmp/org
say "part (b): pushing the model and the CSV"
key=$(jget "$tmp/org.key.json" key)
"$coffer" dataset push model "$tmp/model.json" --key "$key" --tmpdir "$tmp" >/dev/null
t0=$(now)
"$coffer" dataset push data "$data" --key "$key" --tmpdir "$tmp" >/dev/null
t1=$(now)
push_s=$(secs "$t0" "$t1")
meas=$("$launch" measure --cores "$cores" --memory "$memory" --enclave-size "$enclave_size" "$enclave")
meas_sql=$("$launch" measure --cores "$cores" --memory "$sql_memory" --enclave-size "$sql_enclave_size" "$enclave")
python3 - "$tmp" "$rows" "$meas" "$meas_sql" <<'PY'
import json, sys
tmp, rows, meas = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pub = json.load(open(f"{tmp}/org.pub.json"))
feats = [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
for mode, fn in (("table", {"table": "data"}),
                 ("sql", {"query": "SELECT id, " + ", ".join(feats) + " FROM data"})):
    json.dump({"version": 1, "name": f"seed-inference-bench-{mode}",
        "inputs": {"model": {"dataset": "org-a/model", "format": "xgboost-json"},
                   "data": {"dataset": "org-a/data"}},
        "function": dict({"kind": "xgboost.predict", "model": "model"}, **fn,
                         features=feats, id="id", nthread=2),
        "outputs": [{"name": "predictions", "recipients": [
            {"org": "org-a", "recipient": pub["age_recipient"]}]}],
        "policy": {"max_result_rows": max(rows, 1)},
        "tee": {"kinds": ["soft"], "measurements": meas}},
        open(f"{tmp}/task-{mode}.json", "w"), indent=1)
PY
task=$("$coffer" task create --file "$tmp/task-table.json" | cut -d' ' -f1)
task_sql=$("$coffer" task create --file "$tmp/task-sql.json" | cut -d' ' -f1)
for t in "$task" "$task_sql"; do
	"$coffer" task approve "$t" --yes >/dev/null 2>&1
done

# Per task: its instance started, one untimed run (warms the caches; its
# predictions are checked against the plain ones: same ids, each within
# 1e-6), SEED_RUNS timed runs handed to the warm enclave, the cold launch
# with the same sizes; the instance stopped.
: >"$tmp/b.out"
for m in table sql; do
	if [ $m = table ]; then
		t=$task i=$inst p=b mem=$memory esz=$enclave_size
	else
		t=$task_sql i=$inst_sql p=s mem=$sql_memory esz=$sql_enclave_size
	fi
	COFFER_HOME=$adm "$coffer" instance start "$i" >/dev/null
	say "part (b): untimed run of the $m task, its result checked"
	"$coffer" task run "$t" --instance "$i" --wait --timeout 1800 >"$tmp/wait.out" 2>&1 || {
		cat "$tmp/wait.out" >&2
		for f in "$state"/runs/*.log; do tail -30 "$f" >&2; done
		die "part (b): the untimed run of the $m task failed"
	}
	"$coffer" task result "$t" predictions -o "$tmp/pred-$m.csv" >/dev/null 2>&1 ||
		die "part (b): coffer task result failed"
	python3 - "$tmp/pred.csv" "$tmp/pred-$m.csv" >"$tmp/compare-$m.out" <<'PY' ||
import csv, sys
def read(p):
    with open(p, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        return head, [(x[0], float(x[1])) for x in r]
ha, a = read(sys.argv[1])
hb, b = read(sys.argv[2])
if len(a) != len(b):
    print(f"predictions: plain {len(a)} rows, coffer {len(b)}"); sys.exit(1)
worst, where = 0.0, -1
for i, ((ia, pa), (ib, pb)) in enumerate(zip(a, b)):
    if ia != ib:
        print(f"predictions: row {i + 1}: id {ia} (plain) vs {ib} (coffer)"); sys.exit(1)
    d = abs(pa - pb)
    if d > worst:
        worst, where = d, i
if worst > 1e-6:
    print(f"predictions differ: max |diff| {worst:.3g} at row {where + 1}"); sys.exit(1)
print(f"max_diff={worst:.3g}")
PY
		die "part (b), $m task: $(cat "$tmp/compare-$m.out")"
	say "part (b): $runs timed runs of the $m task on its warm instance, then the cold launch"
	python3 - "$tmp" "$runs" "$coffer" "$state" "$launch" "$cores" \
		"$m $t $i $mem $esz" >>"$tmp/b.out" <<'PY'
import json, os, re, statistics, subprocess, sys, time
tmp, runs, coffer, state, launch, cores = sys.argv[1:7]
modes = {m[0]: m[1:] for m in (a.split() for a in sys.argv[7:8])}
runs = int(runs)

def say(m):
    print(f"seed-inference bench: {m}", file=sys.stderr)

def busy(interval=1.0):
    def snap():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t1, i1 = snap(); time.sleep(interval); t2, i2 = snap()
    return 1 - (i2 - i1) / max(1, t2 - t1)

def quiet():
    """Waits up to 60 s for the machine to be under 10 % busy; how busy it was."""
    deadline = time.monotonic() + 60
    b = busy()
    while b > 0.10 and time.monotonic() < deadline:
        b = busy()
    return b

def cofferd_log():
    return open(f"{tmp}/cofferd.log").read()

def spares():
    return set(re.findall(r"a warm enclave \(pid (\d+)\) waits for a run", cofferd_log()))

def wait_spare(seen):
    """Waits (up to 120 s) for cofferd to log a warm enclave other than those seen."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not spares() - seen:
        time.sleep(0.1)

def status(run):
    p = subprocess.run([coffer, "task", "status", run, "--json"], capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {}

def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            out += [int(x) for x in open(f"/proc/{pid}/task/{t}/children").read().split()]
    except OSError:
        pass
    return out

def mem_of(pid):
    """The enclave process's memory numbers (kB) from /proc/PID/status."""
    m = {}
    try:
        for l in open(f"/proc/{pid}/status"):
            k, _, v = l.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                m[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return m

def pss(pid):
    """The enclave's proportional set size (kB): pages mapped twice count once."""
    m = {}
    try:
        for l in open(f"/proc/{pid}/smaps_rollup"):
            k, _, v = l.partition(":")
            if k in ("Pss", "Pss_File", "Pss_Anon", "Pss_Shmem"):
                m[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return m

def smaps(pid):
    """The enclave's mappings of more than 8 MiB resident: "MiB name perms" each."""
    try:
        big, name = [], ""
        for l in open(f"/proc/{pid}/smaps"):
            f = l.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", f[0]):
                name = (f[5] if len(f) > 5 else "[anon]") + " " + f[1]
            elif f[0] == "Rss:" and int(f[1]) > 8192:
                big.append(f"{int(f[1]) // 1024} MiB {name}")
        return "; ".join(big)
    except (OSError, ValueError, IndexError):
        return ""

num = r"([\d.]+)"
common = {
    "launch": rf"main began {num} s after the process was created",
    "spec": rf"spec fetched in {num} s",
    "release": rf"evidence and release in {num} s",
    "model": rf"input model: a model of \d+ bytes in {num} s",
    "function": rf"function: computed in {num} s",
    "output": rf"output predictions: encrypted to \d+ recipients? and committed in {num} s: "
              rf"encrypt {num} s, upload {num} s",
    "main": rf"SQLite heap peak {num} MiB",
}
phases = {
    "table": dict(common,
        data=rf"input data: \d+ rows read and predicted in {num} s: transfer {num} s, "
             rf"decrypt {num} s, parse \(predicting alongside\) {num} s, the last predictions {num} s; "
             rf"decryption's CPU {num} s",
        predict=rf"xgboost\.predict: \d+ rows, \d+ features of input data in {num} s \(the input "
                rf"read by {num} s, {num} s of it waiting for the predictor; predicting {num} s "
                rf"alongside, on \d+ threads?\)"),
    "sql": dict(common,
        data=rf"input data: \d+ rows, .* in {num} s: transfer {num} s, decrypt {num} s, "
             rf"check and type {num} s, insert {num} s; decryption's CPU {num} s",
        predict=rf"xgboost\.predict: \d+ rows, \d+ features in {num} s \(the query's rows until "
                rf"{num} s; predicting {num} s alongside, on \d+ threads?\)"),
}

def coffer_run(mode):
    task, inst = modes[mode][0], modes[mode][1]
    seen = spares()
    t0 = time.monotonic()
    p = subprocess.run([coffer, "task", "run", task, "--json", "--instance", inst],
                       capture_output=True, text=True, check=True)
    run = json.loads(p.stdout)["run"]
    run = run["id"] if isinstance(run, dict) else run
    log = f"{state}/runs/{run}.log"
    lrx = rf"{re.escape(run)}: (?:handed to the warm|started) .* \(pid (\d+)\)"
    lpid, mem, last_look, last_pss = None, {}, t0, 0.0
    while True:
        if lpid:
            for c in children(lpid):
                cur = mem_of(c)
                # smaps_rollup walks the page tables: every 0.1 s, not 10 ms.
                if time.monotonic() - last_pss > 0.1:
                    last_pss = time.monotonic()
                    cur.update(pss(c))
                if cur.get("VmRSS", 0) > mem.get("VmRSS", 0) + 4096:
                    mem["smaps"] = smaps(c) or mem.get("smaps", "")
                for k, v in cur.items():
                    mem[k] = max(mem.get(k, 0), v)
        else:
            m = re.search(lrx, cofferd_log())
            lpid = int(m.group(1)) if m else None
        text = open(log).read() if os.path.exists(log) else ""
        if "[main] finished " in text or "[main] failed: " in text:
            break
        if time.monotonic() - last_look > 2:
            last_look = time.monotonic()
            if status(run).get("exit_status") is not None:
                break
        if time.monotonic() - t0 > 1800:
            sys.exit(f"{run} did not finish in 1800 s")
        time.sleep(0.01)
    wall = time.monotonic() - t0
    r = status(run)
    while r.get("exit_status") is None:
        time.sleep(0.1)
        r = status(run)
    text = open(log).read()
    if r["state"] != "succeeded":
        sys.exit(f"{run} {r['state']}: {r.get('message')}\n{text}")
    ph = {"wall": wall, "mem": mem}
    for k, rx in phases[mode].items():
        mm = re.search(rx, text)
        if not mm:
            sys.exit(f"no '{k}' in the enclave's log:\n{text}")
        ph[k] = [float(x) for x in mm.groups()]
    ph["warm"] = f"{run}: handed to the warm" in cofferd_log()
    # The next run's warm enclave: launched before the next run starts (and
    # pre-faulted: quiet() waits for the machine to be idle).
    wait_spare(seen)
    return ph

res, busys = {m: [] for m in modes}, []
for i in range(runs):
    for mode in modes:
        busys.append(quiet())
        res[mode].append(coffer_run(mode))
        say(f"coffer run {i + 1}/{runs} ({mode}): {res[mode][-1]['wall']:.2f} s"
            f"{'' if res[mode][-1]['warm'] else ' (NOT warm)'}")

med = statistics.median
def out(k, v):
    print(f"{k}={v}")
for mode, rs in res.items():
    p = "b" if mode == "table" else "s"
    out(f"{p}_busy", f"{100 * max(busys):.0f}")
    memory, esize = modes[mode][2], modes[mode][3]
    walls = [r["wall"] for r in rs]
    r = rs[sorted(range(runs), key=lambda i: walls[i])[(runs - 1) // 2]]
    out(f"{p}_walls", ", ".join(f"{w:.2f}" for w in walls))
    out(f"{p}_wall", f"{med(walls):.2f}")
    out(f"{p}_warm", sum(x["warm"] for x in rs))
    d = r["data"]
    enc, upload = r["output"][1], r["output"][2]
    out(f"{p}_release", f"{r['spec'][0] + r['release'][0]:.2f}")
    out(f"{p}_model", f"{r['model'][0]:.2f}")
    out(f"{p}_load", f"{d[0]:.2f}")
    out(f"{p}_transfer", f"{d[1]:.2f}")
    out(f"{p}_decrypt", f"{d[2]:.2f}")
    out(f"{p}_parse", f"{d[3]:.2f}")
    # The workers' predicting time (the sum over both, overlapping the rows).
    out(f"{p}_predict_busy", f"{r['predict'][-1]:.2f}")
    if mode == "sql":
        out(f"{p}_insert", f"{d[4]:.2f}")
        out(f"{p}_query_matrix", f"{r['predict'][1]:.2f}")
        out(f"{p}_predict_write", f"{r['predict'][0] - r['predict'][1]:.2f}")
    else:
        out(f"{p}_predict_write", f"{d[4]:.2f}")
        out(f"{p}_wait", f"{r['predict'][2]:.2f}")
    out(f"{p}_function", f"{r['function'][0]:.2f}")
    out(f"{p}_output", f"{r['output'][0]:.2f}")
    out(f"{p}_encrypt", f"{enc:.2f}")
    out(f"{p}_upload", f"{upload:.2f}")
    out(f"{p}_heap", f"{r['main'][0]:.0f}")
    out(f"{p}_crypto", f"{d[2] + enc:.2f}")
    out(f"{p}_crypto_pct", f"{100 * (d[2] + enc) / r['wall']:.1f}")
    # The same by CPU time: the decrypting thread's own, not the moments the
    # job's other threads had its core (encryption runs alone: wall = CPU).
    out(f"{p}_decrypt_cpu", f"{d[-1]:.2f}")
    out(f"{p}_crypto_cpu", f"{d[-1] + enc:.2f}")
    out(f"{p}_crypto_cpu_pct", f"{100 * (d[-1] + enc) / r['wall']:.1f}")
    # A warm enclave's main began before it waited for the run: its
    # "finished" line is no measure of the run. The rest of the wall time is
    # the client, cofferd's hand-over and the run's bookkeeping.
    rest = (r["wall"] - r["spec"][0] - r["release"][0] - r["model"][0] - d[0] - r["function"][0]
            - r["output"][0])
    out(f"{p}_rest", f"{max(0.0, rest):.2f}")
    for k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "Pss", "Pss_File"):
        out(f"{p}_mem_{k}", max((x["mem"].get(k, 0) for x in rs), default=0))
    out(f"{p}_smaps", max(rs, key=lambda x: x["mem"].get("VmRSS", 0))["mem"].get("smaps", ""))
    launches = []
    for i in range(3):
        quiet()
        t0 = time.monotonic()
        subprocess.run([launch, "run", "--cores", cores, "--memory", memory, "--enclave-size", esize,
                        "--", "/bin/true"], capture_output=True, check=True)
        launches.append(time.monotonic() - t0)
    out(f"{p}_cold_launch", f"{med(launches):.2f}")
    out(f"{p}_cold_launches", ", ".join(f"{w:.2f}" for w in launches))
PY
	COFFER_HOME=$adm "$coffer" instance stop "$i" >/dev/null
done
unset COFFER_HOME

mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
peak_mb=$(mb "$peak_kb")
train_peak_mb=$(mb "$(get "$tmp/train.out" peak_rss_kb)")
data_mb=$(awk -v b="$data_bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
mem_cap_mb=$(awk -v k="$peak_kb" 'BEGIN { printf "%.0f", 1.2 * k / 1024 }')
train_s=$(get "$tmp/train.out" train_s)
mpc_lo=$(awk -v t="$train_s" 'BEGIN { printf "%.0f", 58 * t }')
mpc_hi=$(awk -v t="$train_s" 'BEGIN { printf "%.0f", 465 * t }')
round4() { awk -v x="$1" 'BEGIN { printf "%.4f", x }'; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
mem_gib=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
xgb_version=$(dpkg-query -W -f='${Version}' libxgboost-dev 2>/dev/null || echo unknown)

# Part (b)'s figures, and the targets: b_ the table task, s_ the query task;
# overheads over (a) plain XGBoost and over (a') coffer's engine outside the TEE.
bget() { get "$tmp/b.out" "$1"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", 100 * (b - a) / a }'; }
metmiss() { awk -v x="$1" -v t="$2" 'BEGIN { print (x <= t) ? "MET" : "MISSED" }'; }
ratio() { awk -v b="$1" -v a="$2" 'BEGIN { printf "%.2f", b / a }'; }
e_peak_mb=$(mb "$e_peak_kb")
e_over=$(pct "$pred_wall" "$e_wall")
t_over=$(pct "$(get "$e_med" total_s)" "$t_wall")
for p in b s; do
	w=$(bget ${p}_wall)
	c=$(awk -v w="$w" -v l="$(bget ${p}_cold_launch)" 'BEGIN { printf "%.2f", w + l }')
	o=$(pct "$pred_wall" "$w")
	oe=$(pct "$e_wall" "$w")
	eval "${p}_cold=\$c ${p}_over=\$o ${p}_over_e=\$oe ${p}_cold_over=\$(pct \"\$pred_wall\" \"\$c\")"
	eval "${p}_t_over=\$(metmiss \"\$o\" 3) ${p}_t_over_e=\$(metmiss \"\$oe\" 3)"
	eval "${p}_t_crypto=\$(metmiss \"\$(bget ${p}_crypto_cpu_pct)\" 5)"
	eval "${p}_hwm_mb=\$(mb \"\$(bget ${p}_mem_VmHWM)\") ${p}_anon_mb=\$(mb \"\$(bget ${p}_mem_RssAnon)\")"
	eval "${p}_file_mb=\$(mb \"\$(bget ${p}_mem_RssFile)\") ${p}_shmem_mb=\$(mb \"\$(bget ${p}_mem_RssShmem)\")"
	eval "${p}_pss_mb=\$(mb \"\$(bget ${p}_mem_Pss)\")"
	x=$(ratio "$(bget ${p}_mem_VmHWM)" "$peak_kb")
	xp=$(ratio "$(bget ${p}_mem_Pss)" "$peak_kb")
	eval "${p}_mem_x=\$x ${p}_t_mem=\$(metmiss \"\$x\" 1.2) ${p}_pss_x=\$xp ${p}_t_pss=\$(metmiss \"\$xp\" 1.2)"
done
a_parse=$(get "$med" parse_s)
a_dm=$(get "$med" dmatrix_s)
a_rest=$(awk -v t="$pred_wall" -v i="$(get "$med" total_s)" 'BEGIN { printf "%.2f", t - i }')
a_csv=$(awk -v p="$a_parse" -v d="$a_dm" 'BEGIN { printf "%.3f", p + d }')
matrix_mb=$(awk -v r="$rows" 'BEGIN { printf "%.0f", r * 39 * 4 / 1048576 }')
# (b) table's input phase without the last predictions (its log line holds both).
b_rows=$(awk -v l="$(bget b_load)" -v p="$(bget b_predict_write)" 'BEGIN { printf "%.2f", l - p }')
e_rest=$(awk -v t="$e_wall" -v r="$(get "$e_med" read_s)" -v f="$(get "$e_med" finish_s)" \
	-v w="$(get "$e_med" write_s)" 'BEGIN { printf "%.2f", t - r - f - w }')
# The parts of (b) with no counterpart in (a'), one after the other (the
# transfer overlaps the rows' phase and counts there).
b_x_plat=$(awk -v r="$(bget b_rest)" -v k="$(bget b_release)" -v m="$(bget b_model)" \
	-v u="$(bget b_upload)" 'BEGIN { printf "%.2f", r + k + m + u }')
b_x_rows=$(awk -v b="$b_rows" -v e="$(get "$e_med" read_s)" 'BEGIN { printf "%+.2f", b - e }')
b_x_last=$(awk -v b="$(bget b_predict_write)" -v e="$(get "$e_med" finish_s)" 'BEGIN { printf "%+.2f", b - e }')

report() {
	echo "# Seed inference: XGBoost over $rows rows x 39 features"
	echo
	echo "Generated by \`make bench\` (bench/seed-inference.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo "Machine: $(nproc) vCPU, $cpu, $mem_gib GiB, Linux $(uname -r);"
	echo "libxgboost $xgb_version (Debian), $nthread threads for every run; load average"
	echo "before the timed runs: $load."
	echo
	echo "The reference platform's performance test: inference over 1.5 million rows of"
	echo "39 features on 2 cores. Here on a deterministic Criteo-like set"
	echo "(bench/seed_inference/seed_gen.c, seed $seed: $rows rows, id, label, 13 integer"
	echo "counts I1..I13 with Criteo's skew and missing shares, 26 hashed categoricals"
	echo "C1..C26 as integers below 2^24, the label from a hidden logistic model;"
	echo "$data_mb MiB of CSV, $gen_note; SHA-256"
	echo "\`$data_sha\`)."
	echo "Model: 100 trees, depth 6, eta 0.3, binary:logistic, hist, seed 0, trained on"
	echo "the first $train_rows rows; AUC $(round4 "$(get "$tmp/train.out" valid-auc)") on the next $valid_rows (train AUC $(round4 "$(get "$tmp/train.out" train-auc)"))."
	echo
	echo "Three ways to run the same inference, in one run on one machine:"
	echo
	echo "- **(a) plain XGBoost**: bench/seed_inference/xgb_plain in an ordinary process,"
	echo "  as XGBoost is usually driven: read the CSV (page cache) into a dense float"
	echo "  array, build a DMatrix, XGBoosterPredictFromDMatrix with $nthread threads, write"
	echo "  \`id,prediction\`."
	echo "- **(a') coffer's engine, no TEE**: bench/seed_inference/xgb_engine, coffer-enclave's"
	echo "  own xgboost.predict (enclave/xgb.c, enclave/csv.c compiled in) in an ordinary"
	echo "  process on the plaintext file: the strict CSV reader fills blocks of rows while"
	echo "  $nthread worker threads, each with its own single-threaded booster, predict the"
	echo "  full ones in place and wipe them (docs/tasks.md). No secretmem, no key, no"
	echo "  decryption, no platform. (b) less (a') is what confidentiality costs."
	echo "- **(b) coffer task**: the same as an \`xgboost.predict\` task through coffer-kms,"
	echo "  coffer-enclave in the soft TEE and cofferd, decryption of the inputs and"
	echo "  encryption of the output included (details below)."
	echo
	echo "Wall time of (a) and (a') is the whole process; median of $runs runs each ((a): $walls s;"
	echo "(a'): $e_walls s), alternating, each started once the machine was idle (at most"
	echo "$(sort -n "$tmp/a_busy" | tail -1) % busy in the second before, up to 60 s waited). (a') predicts exactly what"
	echo "(a) does (the files are byte-identical but for line ends: checked every run)."
	echo
	echo "| run | plain | confidential | overhead | peak memory |"
	echo "|---|---:|---:|---:|---:|"
	echo "| reference: SGX VM | 172 s | 184 s | +6.98 % | |"
	echo "| reference: Gramine container | 220 s | 244 s | +10.9 % | |"
	echo "| reference: memory outside the enclave | | | | 2.1 GB |"
	echo "| coffer (a): plain XGBoost, ordinary process | $pred_wall s | | | $peak_mb MiB |"
	echo "| coffer (a'): coffer's engine, ordinary process, no TEE | $e_wall s | | $e_over % vs (a) | $e_peak_mb MiB |"
	echo "| coffer (a''): the same engine in the soft TEE (secretmem heap, 2-core cgroup), plaintext file, no platform, in-process time against (a')'s | $(get "$e_med" total_s) s | $t_wall s | $t_over % | |"
	echo "| coffer (b) over (a): coffer task in coffer-enclave (soft TEE), CSV predicted as it is decrypted (table), warm | $pred_wall s | $(bget b_wall) s | **$b_over %** | $b_pss_mb MiB (PSS; VmHWM $b_hwm_mb MiB; $enclave_size arena) |"
	echo "| coffer (b) over (a'): the same task against the same engine outside the TEE | $e_wall s | $(bget b_wall) s | **$b_over_e %** | |"
	echo "| coffer (b): the same, cold start (warm run + the launch alone), over (a) | $pred_wall s | $b_cold s | $b_cold_over % | |"
	echo "| coffer (b): coffer task, CSV loaded into SQLite then a query (query), warm, over (a) | $pred_wall s | $(bget s_wall) s | $s_over % | $s_pss_mb MiB (PSS; VmHWM $s_hwm_mb MiB; $sql_enclave_size arena) |"
	echo
	echo "The reference's absolute times come from other hardware and another software"
	echo "stack; what compares is the overhead in one run on one machine. Targets for (b):"
	echo "overhead at most 3 % warm, decryption and encryption at most 5 % of the job, peak"
	echo "memory at most 1.2x of (a), i.e. $mem_cap_mb MiB here."
	echo
	echo "**Targets** ((b) table, warm; the query task beside it):"
	echo
	echo "| target | (b) table | | (b) query | |"
	echo "|---|---:|---|---:|---|"
	echo "| overhead over (a), plain XGBoost, <= 3 % warm | $b_over % | **$b_t_over** | $s_over % | $s_t_over |"
	echo "| overhead over (a'), the same engine outside the TEE, <= 3 % warm | $b_over_e % | **$b_t_over_e** | $s_over_e % | $s_t_over_e |"
	echo "| decryption + encryption <= 5 % of the job (their CPU time) | $(bget b_crypto_cpu) s of $(bget b_wall) s = $(bget b_crypto_cpu_pct) % | **$b_t_crypto** | $(bget s_crypto_cpu_pct) % | $s_t_crypto |"
	echo "| the same, counted as the decrypting thread's wall time | $(bget b_crypto) s = $(bget b_crypto_pct) % | | $(bget s_crypto_pct) % | |"
	echo "| peak memory <= 1.2x of (a), as PSS | $b_pss_mb / $peak_mb MiB = ${b_pss_x}x | **$b_t_pss** | ${s_pss_x}x | $s_t_pss |"
	echo "| peak memory <= 1.2x of (a), as VmHWM | $b_hwm_mb / $peak_mb MiB = ${b_mem_x}x | **$b_t_mem** | ${s_mem_x}x | $s_t_mem |"
	echo
	echo "Against (a), (b) gains what its engine gains by overlapping reading with"
	echo "predicting (and never building a DMatrix), which (a') shows outside a TEE just as"
	echo "well. Against (a'), (b)'s overhead splits in two: the soft TEE itself, (a'') over"
	echo "(a'): the engine with its heap in secretmem, confined to 2 cores, on the same"
	echo "plaintext file ($t_over %; runs: $t_walls s); and the platform with the"
	echo "cryptography, (b) over (a''): fetching the ciphertext from cofferd, decrypting"
	echo "it, encrypting and uploading the predictions, the key release, the hand-over"
	echo "(below)."
	echo
	echo "(b): one organisation pushes the model file trained above (input \`format\`"
	echo "\`xgboost-json\`) and the same CSV with \`coffer dataset push\` (age-encrypted to"
	echo "its KMS key; the CSV's push took $push_s s, not timed) and approves two tasks,"
	echo "each \`xgboost.predict\` with features I1..I13, C1..C26, id \`id\`, nthread 2,"
	echo "the output (\`id,prediction\`) encrypted to the organisation:"
	echo
	echo "- **table**: \`\"table\": \"data\"\`, the CSV's rows predicted as it is decrypted"
	echo "  (no SQLite), on an instance of $cores cores, $memory memory and a $enclave_size secretmem"
	echo "  arena (\`coffer instance create --cores $cores --memory $memory --enclave-size"
	echo "  $enclave_size\`). The comparable of (a) and (a'), and the row the targets are for."
	echo "- **query**: \`\"query\": \"SELECT id, I1, ..., C26 FROM data\"\`, the CSV loaded"
	echo "  into an SQLite table first (as every SQL task does), the query's rows then"
	echo "  predicted as they are read, on an instance of $cores cores, $sql_memory memory and a"
	echo "  $sql_enclave_size arena (the loader keeps the plaintext for its second pass, then SQLite holds the rows)."
	echo
	echo "Both run through coffer-kms and coffer-enclave in the soft TEE and cofferd"
	echo "(\`coffer task run --instance\`). Timed from the command's start to the enclave's"
	echo "last log line (as bench/joint-sql.sh), median of $runs runs each (table: $(bget b_walls) s;"
	echo "query: $(bget s_walls) s), one task after the other (the host has room for one"
	echo "2-core instance at a time), each run started once the machine was idle (at most"
	echo "$(bget b_busy) and $(bget s_busy) % busy in the second before). Warm: cofferd keeps an enclave launched and"
	echo "its arena pre-faulted per instance size and hands the next run to it; after one"
	echo "untimed run of each task, $(bget b_warm) of $runs (table) and $(bget s_warm) of $runs (query) timed"
	echo "runs were handed to the warm enclave (cofferd.log). Each run includes the key"
	echo "release, fetching and decrypting both inputs, parsing, predicting, the CSV of"
	echo "predictions, encrypting and uploading it. Cold start:"
	echo "\`coffer-launch run --cores $cores --memory M --enclave-size S -- /bin/true\` alone with"
	echo "the instance's sizes, median of 3 (table: $(bget b_cold_launches) s; query: $(bget s_cold_launches) s),"
	echo "added to the warm run."
	echo
	echo "| (b) | wall | overhead over (a) | over (a') | peak memory: PSS | VmHWM |"
	echo "|---|---:|---:|---:|---:|---:|"
	echo "| table, warm | $(bget b_wall) s | $b_over % | $b_over_e % | $b_pss_mb MiB | $b_hwm_mb MiB |"
	echo "| table, cold start | $b_cold s | $b_cold_over % | | | |"
	echo "| query, warm | $(bget s_wall) s | $s_over % | $s_over_e % | $s_pss_mb MiB | $s_hwm_mb MiB |"
	echo "| query, cold start | $s_cold s | $s_cold_over % | | | |"
	echo
	echo "Predictions of (b), decrypted with \`coffer task result\`: the same $rows ids in"
	echo "the same order as (a)'s; max |difference| $(get "$tmp/compare-table.out" max_diff) (table), $(get "$tmp/compare-sql.out" max_diff) (query)"
	echo "(checked <= 1e-6; (b) writes CRLF, (a) LF, both \`%.9g\`)."
	echo
	echo "Decryption and encryption as the enclave logs them: decrypt = the input's"
	echo "streaming time less the time spent waiting for ciphertext (transfer) and in the"
	echo "CSV reader it feeds, as wall time and as the decrypting thread's CPU time"
	echo "(CLOCK_THREAD_CPUTIME_ID, likewise less the reads and writes); encrypt = sealing"
	echo "the predictions' CSV to the recipient, alone on its thread (wall = CPU). The"
	echo "target is read on CPU time: the decrypting thread shares 2 cores with the 2"
	echo "predicting ones and with the thread receiving the ciphertext, so its wall time"
	echo "also counts moments the core was predicting ($(bget b_decrypt) s of wall for $(bget b_decrypt_cpu) s of CPU)."
	echo
	echo "Memory of (b): the enclave process's VmHWM, read from /proc/PID/status every"
	echo "10 ms while each timed run ran (PID: coffer-launch's child; coffer-launch's pid"
	echo "is in cofferd.log), and its PSS from /proc/PID/smaps_rollup every 0.1 s; the"
	echo "largest of the runs. The secretmem arena's pages do show in RSS, as RssFile"
	echo "(memfd_secret's pages are file pages), but RSS counts a page once per mapping:"
	echo "the runtime maps the arena's secret file twice, the second view always writable"
	echo "to zero freed pages (tee/runtime/preload.c), so a page it zeroed counts twice"
	echo "and VmHWM overstates, up to 2x the arena; PSS counts each page once"
	echo "(Pss_File peaked at $(mb "$(bget b_mem_Pss_File)") MiB (table) and $(mb "$(bget s_mem_Pss_File)") MiB (query)). Table: RssFile"
	echo "peaked at $b_file_mb MiB, RssAnon at $b_anon_mb MiB, RssShmem at $b_shmem_mb MiB; query: $s_file_mb, $s_anon_mb and"
	echo "$s_shmem_mb MiB. The warm enclave pre-faults its whole arena before the run, so the"
	echo "figure is set by the instance's --enclave-size, which must hold everything the"
	echo "job allocates: for the table task the blocks of rows in flight (6 of at most"
	echo "16384 rows), the predictions' CSV and XGBoost's own buffers, never the whole"
	echo "matrix ($matrix_mb MiB as (a) holds it); the query task's SQLite heap peaked at $(bget s_heap) MiB."
	echo "(a)'s and (a')'s peaks are their own VmHWM (getrusage, processes with no aliased"
	echo "mappings, so RSS is PSS, bar shared libraries). The enclave's mappings over"
	echo "8 MiB resident at its peak: table: $(bget b_smaps); query: $(bget s_smaps)."
	echo
	echo "Phases, from each program's own clock ((b): the enclave's log, one line per"
	echo "phase, no data), the median run of each. (a') and (b) predict while they read:"
	echo "their row phase holds the predictions made alongside, and the last row is what"
	echo "is left once the input has ended."
	echo
	echo "| phase | (a) s | (a') s | (b) table s | (b) query s |"
	echo "|---|---:|---:|---:|---:|"
	echo "| (a), (a'): process start, model load, exit; (b): client's request, cofferd's hand-over to the warm enclave, the run's bookkeeping | $a_rest + $(get "$med" load_model_s) | $e_rest | $(bget b_rest) | $(bget s_rest) |"
	echo "| run spec, KMS CA check, evidence, key release | | | $(bget b_release) | $(bget s_release) |"
	echo "| (b): the model fetched and decrypted | | | $(bget b_model) | $(bget s_model) |"
	echo "| the rows, total: (a) parse + DMatrix; (a') read + parse, predicting alongside; (b) table: the input streamed in, predicting alongside; (b) query: the input into SQLite | $a_csv | $(get "$e_med" read_s) | $b_rows | $(bget s_load) |"
	echo "| - transfer of the ciphertext from cofferd | | | $(bget b_transfer) | $(bget s_transfer) |"
	echo "| - decrypt (age, ChaCha20-Poly1305) | | | $(bget b_decrypt) | $(bget s_decrypt) |"
	echo "| - parse: (a) CSV to floats; (a'), (b) table: CSV to floats, waits for a free block included; query: CSV checks and type inference | $a_parse | | $(bget b_parse) | $(bget s_parse) |"
	echo "| - (b) query: typed INSERTs into SQLite | | | | $(bget s_insert) |"
	echo "| - (a) DMatrix | $a_dm | | | |"
	echo "| (b) query: the SELECT's rows, predicting alongside | | | | $(bget s_query_matrix) |"
	echo "| predict: (a) all rows; (a'), (b): the last blocks once the rows ended; CSV of predictions included but for (a) | $(get "$med" predict_s) | $(get "$e_med" finish_s) | $(bget b_predict_write) | $(bget s_predict_write) |"
	echo "| (a), (a'): write the predictions' file | $(get "$med" write_s) | $(get "$e_med" write_s) | | |"
	echo "| (b): encrypt the predictions to the organisation | | | $(bget b_encrypt) | $(bget s_encrypt) |"
	echo "| (b): upload and commit | | | $(bget b_upload) | $(bget s_upload) |"
	echo "| **total** | **$pred_wall** | **$e_wall** | **$(bget b_wall)** | **$(bget s_wall)** |"
	echo
	echo "Medians of runs, so the phases need not add up to the total exactly. The"
	echo "workers of (b) spent $(bget b_predict_busy) s (table) and $(bget s_predict_busy) s (query) predicting, the sum"
	echo "over both, overlapping the rows' phase; (b) table's reader waited $(bget b_wait) s of"
	echo "its parse for a free block."
	echo
	echo "Where (b)'s $(awk -v b="$(bget b_wall)" -v e="$e_wall" 'BEGIN { printf "%.2f", b - e }') s beyond (a') go (table, warm; (a'') puts the soft TEE's own"
	echo "share at $t_over %): the steps (a') has no counterpart for, one after the other"
	echo "(request, hand-over, key release, the model's fetch, the upload and its"
	echo "fdatasync in cofferd, bookkeeping) $b_x_plat s; encrypting the predictions $(bget b_encrypt) s;"
	echo "the rows' phase $b_x_rows s longer than (a')'s reading of the plaintext file: it"
	echo "holds the decryption ($(bget b_decrypt_cpu) s of CPU), the waits for ciphertext ($(bget b_transfer) s), and"
	echo "shares the 2 cores with the thread receiving the ciphertext over TLS and with"
	echo "cofferd sending it, work (a') does not have; the last predictions $b_x_last s."
	echo "On this host cofferd and the instance share the same 2 cores; where the"
	echo "control plane has cores of its own, its share of that moves off the job. The"
	echo "query task adds SQLite: $(bget s_insert) s of INSERTs and $(bget s_query_matrix) s for the SELECT,"
	echo "predicting alongside."
	echo
	echo "Plain inference (a), phases of the median run (xgb_plain's own clock):"
	echo
	echo "| phase | seconds |"
	echo "|---|---:|"
	echo "| load model (JSON) | $(get "$med" load_model_s) |"
	echo "| parse CSV | $(get "$med" parse_s) |"
	echo "| build DMatrix | $(get "$med" dmatrix_s) |"
	echo "| predict | $(get "$med" predict_s) |"
	echo "| write predictions | $(get "$med" write_s) |"
	echo "| total (in process) | $(get "$med" total_s) |"
	echo
	echo "Predictions: $rows rows, SHA-256 \`$pred_sha\`."
	echo
	echo "Plain training ($train_rows rows, 100 trees, depth 6; started with the machine $train_busy % busy): $train_s s training"
	echo "($(get "$tmp/train.out" parse_s) s parse, $(get "$tmp/train.out" dmatrix_s) s DMatrix; $train_wall s wall for the"
	echo "process, validation included), peak $train_peak_mb MiB. For scale: published"
	echo "multi-party (MPC) gradient boosting runs 58-465x slower than plain XGBoost,"
	echo "which would be $mpc_lo-$mpc_hi s for this training."
}

if [ "$out" = - ]; then
	report
else
	report >"$out"
	cat "$out"
fi
