#!/bin/sh
# The two-party task end to end, through real processes: coffer-kms and
# coffer-enclave in the soft TEE, cofferd as the untrusted control plane.
# org-a and org-b each push a CSV of 100k rows (30 % of ids shared), an
# analyst asks for per-region counts and sums over the join with
# min_group_size 10, both approve, it runs, and both decrypt a result equal
# to sqlite3's on the plaintext. Then the invariant: random canaries
# planted in every input row appear nowhere in cofferd's memory (gcore),
# its database, its blobs, any log, or a core of the enclave taken while
# it holds the joined data. Bad input fails with a clear error.
set -eu

bin=${COFFER_BIN:?}
tmp=$(mktemp -d)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/platform.sh"
trap 'platform_down; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT INT TERM

need_root
command -v sqlite3 >/dev/null || { echo "not ok - sqlite3 (the CLI) is not installed"; exit 1; }

# --- the data: canaries share a random per-run prefix nothing else has ---
canary=cnry$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
python3 - "$tmp" "$canary" <<'PY'
import random, sys
tmp, canary = sys.argv[1:]
rng = random.Random(6)
regions = ["north", "south", "east", "west", "centre", "coast", "hills", "islands"]
shared = rng.sample(range(100000), 30000)
b_ids = shared + list(range(100000, 170000))
rng.shuffle(b_ids)
with open(f"{tmp}/a.csv", "w") as f:
    f.write("id,region,age,note\n")
    for i in range(100000):
        # One region with 6 rows only: its group is below k and must vanish.
        region = "tiny" if i < 6 else regions[rng.randrange(len(regions))]
        f.write(f"{i},{region},{rng.randrange(18, 90)},{canary}{rng.getrandbits(48):012x}\n")
with open(f"{tmp}/b.csv", "w") as f:
    f.write("id,spend,note\n")
    for i in b_ids:
        f.write(f"{i},{rng.randrange(1, 100000) / 100:.2f},{canary}{rng.getrandbits(48):012x}\n")
PY
# the tiny region's rows must be among the shared ids to form a group
python3 - "$tmp" <<'PY'
import sys
tmp = sys.argv[1]
a = open(f"{tmp}/a.csv").read().splitlines()
b = open(f"{tmp}/b.csv").read().splitlines()
bids = {l.split(",")[0] for l in b[1:]}
extra = [f"{i},7.50,{b[1].split(',')[2]}" for i in range(6) if str(i) not in bids]
open(f"{tmp}/b.csv", "a").write("".join(x + "\n" for x in extra))
PY

# cofferd without sanitizers: its memory can be walked (ASan's shadow cannot).
cofferd=$bin/../tests/e2e/cofferd
platform_up
ok "coffer-kms (soft TEE) and cofferd run; org-a and org-b registered"

for o in a b; do
	run 0 "org-$o pushes 100k rows" env COFFER_HOME="$tmp/$o" \
		"$coffer" dataset push data "$tmp/$o.csv" --key "$(jget "$tmp/$o.key.json" key)"
done

meas=$("$launch" measure --cores 1 --memory 1G --enclave-size 512M "$enclave")
query="SELECT a.region, count(*) AS n, sum(b.spend) AS total FROM a JOIN b USING (id) GROUP BY a.region ORDER BY a.region"
task_json "$tmp/task.json" joint "$query" 10 "$meas"
export COFFER_HOME=$tmp/an
run 0 "the analyst creates the task" "$coffer" task create --file "$tmp/task.json"
id=$(cut -d' ' -f1 "$tmp/out")
for o in a b; do
	run 0 "org-$o reviews and approves it" env COFFER_HOME="$tmp/$o" "$coffer" task approve "$id" --yes
done
if grep -q "SELECT a.region" "$tmp/err" "$tmp/out"; then ok "the approval shows the query for review"; else
	not_ok "the approval does not show the query"; fi
run 0 "the task runs in coffer-enclave" "$coffer" task run "$id" --wait --timeout 300
run 0 "its status says it succeeded" "$coffer" task status "$id"
if grep -q succeeded "$tmp/out"; then ok "state succeeded"; else not_ok "status: $(cat "$tmp/out")"; fi

# The expected result: the same SQL on the plaintext, groups under 10 dropped.
sqlite3 "$tmp/plain.db" <<EOF
.mode csv
.import $tmp/a.csv a
.import $tmp/b.csv b
.headers on
.output $tmp/expected.csv
SELECT a.region, count(*) AS n, sum(b.spend) AS total FROM a JOIN b USING (id)
 GROUP BY a.region HAVING count(*) >= 10 ORDER BY a.region;
EOF
for o in a b; do
	run 0 "org-$o decrypts the result" env COFFER_HOME="$tmp/$o" \
		"$coffer" task result "$id" result -o "$tmp/result-$o.csv"
	if python3 - "$tmp/expected.csv" "$tmp/result-$o.csv" <<'PY'
import csv, sys
def rows(p):
    r = list(csv.reader(open(p, newline="")))
    return r[0], [(x[0], int(x[1]), round(float(x[2]), 2)) for x in r[1:]]
(eh, e), (gh, g) = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if eh == gh and e == g and len(e) == 8 else 1)
PY
	then ok "org-$o's result equals sqlite3 on the plaintext (8 regions; 'tiny' suppressed)"; else
		not_ok "org-$o's result differs: $(head -3 "$tmp/result-$o.csv") vs $(head -3 "$tmp/expected.csv")"; fi
done
if grep -q tiny "$tmp/result-a.csv"; then not_ok "the group under k reached the result"; else
	ok "the group of 6 is not in the result"; fi

# --- the invariant: the canaries are only in the plaintext files ---
# A second task whose join runs until its time budget ends, so the enclave
# is caught holding both loaded inputs: dumped once both are loaded.
python3 - "$tmp/task.json" "$tmp/slow.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["name"] = "slow"
t["function"]["query"] = ("SELECT a.region, count(*) AS n FROM a JOIN b ON a.id % 4999 = b.id % 4999 "
                          "GROUP BY a.region")
t["policy"]["time_budget_seconds"] = 8
json.dump(t, open(sys.argv[2], "w"))
PY
"$coffer" task create --file "$tmp/slow.json" >"$tmp/out"
slow=$(cut -d' ' -f1 "$tmp/out")
for o in a b; do COFFER_HOME=$tmp/$o "$coffer" task approve "$slow" --yes >/dev/null 2>&1; done
ls "$state/runs" >"$tmp/runs.before"
"$coffer" task run "$slow" --wait --timeout 120 >"$tmp/slow.out" 2>&1 &
slow_job=$!
i=0
slow_log=/nonexistent
until [ "$(grep -c "input [ab]: " "$slow_log" 2>/dev/null)" = 2 ]; do
	i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
	new=$(ls "$state/runs" | grep -vxF -f "$tmp/runs.before" | head -1)
	[ -n "$new" ] && slow_log=$state/runs/$new
done
enclave_pid=$(sed -n 's/.*coffer-launch: .* pid=\([0-9]*\).*/\1/p' "$slow_log" 2>/dev/null | head -1)
if [ -n "$enclave_pid" ] && kill -0 "$enclave_pid" 2>/dev/null; then
	ok "the enclave runs the slow join with both inputs loaded"
	python3 "$here/procmem.py" dump "$enclave_pid" "$tmp/enclave.mem" >/dev/null
	gcore -o "$tmp/enclave.core" "$enclave_pid" >"$tmp/gcore-enclave.log" 2>&1 || true
	kill -0 "$enclave_pid" 2>/dev/null && ok "the dumps were taken while it ran" ||
		not_ok "the enclave ended before the dumps were complete"
else
	not_ok "no running enclave to dump: $(tail -n 3 "$slow_log")"
fi
wait "$slow_job" || true
if grep -q "handed to the warm" "$tmp/cofferd.log"; then
	ok "the second run went to the warm enclave the first run left waiting"; else
	not_ok "no run used a warm enclave: $(grep runner "$tmp/cofferd.log" | tail -n 3)"; fi
if grep -q "time budget" "$tmp/slow.out" || "$coffer" task status "$slow" 2>&1 | grep -q "time budget"; then
	ok "the slow join stopped at its time budget"; else not_ok "slow task: $(tail -3 "$tmp/slow.out")"; fi

python3 "$here/procmem.py" dump "$cofferd_pid" "$tmp/cofferd.mem" >/dev/null
gcore -o "$tmp/cofferd.core" "$cofferd_pid" >"$tmp/gcore.log" 2>&1 || true
for dump in "$tmp/cofferd.mem" "$tmp/cofferd.core.$cofferd_pid" "$tmp/enclave.mem" \
	"$tmp/enclave.core.$enclave_pid"; do
	name=$(basename "$dump")
	if [ ! -s "$dump" ]; then not_ok "no dump $name: $(tail -n 3 "$tmp"/gcore*.log)"; continue; fi
	# Control: something each process holds in readable memory: the task's
	# query in cofferd's heap, the enclave's program text (its memfd
	# image; its heap is secretmem).
	case $name in cofferd*) control="GROUP BY a.region";; *) control="started by cofferd under coffer-launch";; esac
	counts=$(python3 "$here/procmem.py" count "$dump" "$control" "$canary")
	if echo "$counts" | grep -q "^$control 0$"; then
		not_ok "$name does not hold '$control': the scan reads nothing"
	else ok "$name holds '$control' (the scan works)"; fi
	check "no canary in $name" "$(echo "$counts" | sed -n "s/^$canary //p")" 0
done
blobs=$(find "$state" -type f -size +1M | wc -l)
if [ "$blobs" -ge 2 ]; then ok "cofferd's state holds both datasets' ciphertext ($blobs large files)"; else
	not_ok "cofferd's state has $blobs files over 1 MiB"; fi
if leaks=$(grep -rl "$canary" "$state" "$tmp/kms" "$tmp"/*.log 2>/dev/null); then
	not_ok "canaries in $leaks"; else
	ok "no canary in cofferd's database, blobs, run logs, audit log, or any server log"; fi
for o in a b; do
	if grep -rqa "$canary" "$tmp/$o"; then not_ok "a canary in org-$o's profile"; else
		ok "no canary in org-$o's profile (it encrypts while reading)"; fi
done

exit $failed
