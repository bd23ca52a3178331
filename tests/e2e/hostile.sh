#!/bin/sh
# A hostile control plane, through real processes: coffer-kms and
# coffer-enclave in the soft TEE, cofferd as the untrusted control plane.
# cofferd is "compromised" by editing its store the way an attacker who
# owns it would: its SQLite database with the sqlite3 CLI (while it runs,
# and once while it is stopped) and its blob files, recomputing every
# digest, size and hash cofferd keeps itself, so that none of cofferd's own
# checks (nor coffer task show's digest check) notices. Each attack must
# fail closed in the KMS or the enclave: the run fails (state failed, exit
# status 1), its message and log name the reason, the KMS's audit log has
# the refusal where the KMS refused, and no output exists.
#   1. org-a's ciphertext swapped after approval: for its other dataset
#      (same key), for org-b's, its header over another payload, truncated;
#   2. approvals replayed from another task (one or both), or one dropped;
#   3. the SQL or the policy changed after both owners approved;
#   4. an output recipient added, substituted or dropped, an output added;
#      and a signed task naming a key that is not the org's registered one.
# Then bad input fails with a clear error and loses nothing: broken task
# JSON, tasks missing members, SQL that writes, a query whose every group
# is under k (suppressed: an empty result), row dumps under allow_rows
# false, a CSV with a ragged row. A good task still runs and is right.
#   6. A committed output forged or swapped by cofferd, its size, SHA-256
#      and attestation fixed to match in cofferd's database: a CSV of its
#      own encrypted to both recipients' (public) age keys (with the
#      enclave's attestation kept, dropped, or redone with an output key
#      of its own, which the KMS never signed), the genuine output of
#      another task (with that task's genuine attestation), and another
#      task's run passed off as this task's newest. coffer task result
#      refuses each before decrypting (the output is not signed by an
#      enclave the KMS released keys to for this task) and writes no file;
#      the genuine output, put back, is accepted and names its enclave.
set -eu

bin=${COFFER_BIN:?}
tmp=$(mktemp -d)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/platform.sh"
trap 'platform_down; rm -rf "$tmp"' EXIT INT TERM

need_root
command -v sqlite3 >/dev/null || { echo "not ok - sqlite3 (the CLI) is not installed"; exit 1; }
t0=$(date +%s)

# --- small data: org-a has two datasets of the same shape, org-b one ---
python3 - "$tmp" <<'PY'
import random, sys
tmp = sys.argv[1]
rng = random.Random(7)
regions = ["north", "south", "east", "west", "centre"]
def table(path, header, rows):
    with open(path, "w") as f:
        f.write(header + "\n")
        f.writelines(",".join(map(str, r)) + "\n" for r in rows)
table(f"{tmp}/a.csv", "id,region,age",
      [(i, regions[i % 5], rng.randrange(18, 90)) for i in range(300)])
table(f"{tmp}/other.csv", "id,region,age",
      [(i, "elsewhere", rng.randrange(18, 90)) for i in range(1000, 1200)])
table(f"{tmp}/b.csv", "id,spend",
      [(i, f"{rng.randrange(100, 99999) / 100:.2f}") for i in range(100, 400)])
# line 5 has two fields where the header has three
with open(f"{tmp}/ragged.csv", "w") as f:
    f.write("id,region,age\n1,north,30\n2,south,41\n3,east,52\n4,west\n5,centre,63\n")
PY

platform_up
ok "coffer-kms (soft TEE) and cofferd run; org-a and org-b registered"
db=$state/cofferd.db
# The attacker's tools: the sqlite3 CLI on cofferd's live database (WAL)...
sql() { sqlite3 -batch -cmd ".timeout 10000" "$db" "$@"; }
# ...and a key of its own to receive outputs with.
"$coffer" age keygen -o "$tmp/attacker.key" >/dev/null 2>&1
attacker=$(sed -n 's/^# public key: //p' "$tmp/attacker.key")
[ -n "$attacker" ] || { not_ok "no attacker key: $(cat "$tmp/attacker.key")"; exit 1; }

push() { # push ORG NAME FILE
	run 0 "org-$1 pushes $2 ($(($(wc -l <"$3") - 1)) rows)" env COFFER_HOME="$tmp/$1" \
		"$coffer" dataset push "$2" "$3" --key "$(jget "$tmp/$1.key.json" key)"
}
push a data "$tmp/a.csv"
push a other "$tmp/other.csv"
push b data "$tmp/b.csv"
# Runs go to a small instance (a 64 MiB enclave starts in a fraction of
# the default 512 MiB's time); tasks allow both sizes, and the last one
# runs on cofferd's default.
meas=$("$launch" measure --cores 1 --memory 1G --enclave-size 64M "$enclave")
meas_default=$("$launch" measure --cores 1 --memory 1G --enclave-size 512M "$enclave")
run 0 "the admin makes a small instance" env COFFER_HOME="$tmp/adm" \
	"$coffer" instance create small --cores 1 --memory 1G --enclave-size 64M
inst=$(grep -o 'inst-[0-9a-f]*' "$tmp/out" | head -1)
run 0 "the admin starts it" env COFFER_HOME="$tmp/adm" "$coffer" instance start "$inst"

# mk_task FILE NAME QUERY [POLICY_JSON [INPUTS_JSON]]: a task over
# org-a/data (a) and org-b/data (b) (or INPUTS) whose output "result" goes
# to both organisations, on either enclave size.
mk_task() {
	python3 - "$tmp" "$meas $meas_default" "$@" <<'PY'
import json, sys
tmp, meas, out, name, query = sys.argv[1:6]
policy = json.loads(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] else None
inputs = json.loads(sys.argv[7]) if len(sys.argv) > 7 else \
    {"a": {"dataset": "org-a/data"}, "b": {"dataset": "org-b/data"}}
pub = {o: json.load(open(f"{tmp}/{o}.pub.json")) for o in "ab"}
task = {"version": 1, "name": name,
    "inputs": inputs,
    "function": {"kind": "sql", "query": query},
    "outputs": [{"name": "result", "recipients": [
        {"org": "org-a", "recipient": pub["a"]["age_recipient"]},
        {"org": "org-b", "recipient": pub["b"]["age_recipient"]}]}],
    "tee": {"kinds": ["soft"], "measurements": meas.split()}}
if policy is not None:
    task["policy"] = policy
json.dump(task, open(out, "w"), indent=1)
PY
}
# create FILE: the analyst submits it; the id in $id.
create() {
	run 0 "the analyst creates task $(basename "$1" .json)" env COFFER_HOME="$tmp/an" \
		"$coffer" task create --file "$1"
	id=$(cut -d' ' -f1 "$tmp/out")
}
# approve ID ORG...: each org reviews the task and signs its digest.
approve() {
	tid=$1; shift
	for o in "$@"; do
		run 0 "org-$o approves $tid" env COFFER_HOME="$tmp/$o" "$coffer" task approve "$tid" --yes
	done
}
q_good="SELECT a.region, count(*) AS n, sum(b.spend) AS total FROM a JOIN b USING (id) GROUP BY a.region ORDER BY a.region"
k5='{"min_group_size": 5, "allow_rows": false}'
mk_task "$tmp/std.json" @NAME@ "$q_good" "$k5"
# new_task NAME [QUERY [POLICY_JSON]]: made, submitted and approved by
# both; without QUERY the per-region join above under k = 5.
new_task() {
	if [ $# -gt 1 ]; then mk_task "$tmp/$1.json" "$@"
	else sed "s/@NAME@/$1/" "$tmp/std.json" >"$tmp/$1.json"; fi
	create "$tmp/$1.json"
	approve "$id" a b
}

# forge ID PYTHON: rewrites task ID in cofferd's database as its owner
# would: PYTHON edits t (the parsed task), the task is stored in canonical
# form and the digest column recomputed, so cofferd's view stays
# consistent: coffer task show (which recomputes the digest from the task
# cofferd serves, and refuses a mismatch) must agree with it.
forge() {
	sql "SELECT task FROM tasks WHERE id = '$1'" >"$tmp/stored.json"
	python3 - "$tmp/stored.json" "$tmp/forged.json" "$2" "$tmp" "$attacker" <<'PY'
import json, sys
src, dst, edit, tmp, attacker = sys.argv[1:]
t = json.load(open(src))
pub = {o: json.load(open(f"{tmp}/{o}.pub.json")) for o in "ab"}
exec(edit)
open(dst, "w").write(json.dumps(t, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
PY
	forged=$("$coffer" task digest "$tmp/forged.json")
	sql "UPDATE tasks SET task = CAST(readfile('$tmp/forged.json') AS TEXT), digest = '$forged'
	     WHERE id = '$1'"
}
forged_ok() {
	run 0 "$1 forged: cofferd serves it, digest consistent (coffer task show agrees)" \
		env COFFER_HOME="$tmp/an" "$coffer" task show "$1"
	if grep -qF "$2" "$tmp/out"; then ok "$1 as cofferd now shows it: $2"
	else not_ok "$1: task show does not show '$2': $(head -c 600 "$tmp/out")"; fi
}

# cofferd_restart: cofferd again on its port, over the same state (as
# platform_up started it), after its database was edited offline.
cofferd_restart() {
	port=$(head -1 "$tmp/cofferd.port")
	"${cofferd:-$bin/cofferd}" --state "$state" --listen "127.0.0.1:$port" --ready-fd 3 \
		--admin-password-file "$tmp/adminpw" --kms "$kms_url" --kms-ca "$tmp/a/kms-ca.pem" \
		--platform-cert "$plat/cert.pem" --launch "${cofferd_launch:-$launch}" --enclave "$enclave" \
		>>"$tmp/cofferd.log" 2>&1 3>"$tmp/cofferd.port2" &
	cofferd_job=$!
	cofferd_pid=$cofferd_job # platform.sh's name for it
	i=0
	until [ -s "$tmp/cofferd.port2" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$cofferd_job" 2>/dev/null; then
			not_ok "cofferd did not start again: $(tail -5 "$tmp/cofferd.log")"
			exit 1
		fi
		sleep 0.1
	done
	rm -f "$tmp/cofferd.port2"
}

# run_task WANT_RC NAME ID [--instance INST]: the analyst runs task ID
# and follows it to its end; then, once cofferd has reaped the enclave
# (the exit status is known), the run's status with its log in
# $tmp/status.out. Sets $runid, $state_, $exit_ and $msg.
run_task() {
	want=$1; tname=$2; rid=$3; shift 3
	run "$want" "$tname" env COFFER_HOME="$tmp/an" "$coffer" task run "$rid" --wait --timeout 120 "$@"
	runid=$(sed -n 's/^\(run-[0-9a-f]*\) of task .*/\1/p' "$tmp/out" | head -1)
	i=0
	until env COFFER_HOME="$tmp/an" "$coffer" task status "$runid" >"$tmp/status.out" 2>&1 &&
		grep -q "^$runid of task .*, exit status" "$tmp/status.out"; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then not_ok "$tname: $runid has no exit status"; break; fi
		sleep 0.1
	done
	state_=$(sed -n "s/^$runid of task [^:]*: \([a-z]*\).*/\1/p" "$tmp/status.out")
	exit_=$(sed -n "s/^$runid of task .*, exit status \([0-9]*\)$/\1/p" "$tmp/status.out")
	msg=$(sed -n 's/^  message //p' "$tmp/status.out")
}

# refused_run NAME ID REASON: the run of task ID fails, its message (in
# coffer task status, and the run's log) names REASON, and no output
# exists: neither organisation can fetch one, and cofferd holds no output
# blob of the run.
refused_run() {
	rname=$1; rid=$2; why=$3
	denied=$(grep -c "denied: " "$tmp/kms/audit.log" || true)
	run_task 1 "$rname: the run fails" "$rid" --instance "$inst"
	echo "# $rname: $msg"
	check "$rname: state" "$state_" failed
	check "$rname: the enclave's exit status" "$exit_" 1
	case $msg in
	*"$why"*) ok "$rname: the message names the reason ($why)" ;;
	*) not_ok "$rname: the message should name '$why': $msg" ;;
	esac
	if sed -n '/^log:/,$p' "$tmp/status.out" | grep -qF "$why"; then
		ok "$rname: so does the run's log"
	else not_ok "$rname: the log of $runid: $(head -c 800 "$tmp/status.out")"; fi
	env COFFER_HOME="$tmp/an" "$coffer" task status "$rid" >"$tmp/task.out" 2>&1 || true
	if grep -q "^$rid failed" "$tmp/task.out"; then ok "$rname: the task is failed"
	else not_ok "$rname: task status $rid: $(head -3 "$tmp/task.out")"; fi
	case $why in approval_* | recipient_key)
		# the KMS's own signed audit log has the refusal, by check name
		check "$rname: one more refusal in the KMS's audit log" \
			"$(grep -c "denied: " "$tmp/kms/audit.log" || true)" $((denied + 1))
		if tail -1 "$tmp/kms/audit.log" | grep -q "denied: $why"; then
			ok "$rname: the KMS audited it as denied: $why"
		else not_ok "$rname: the KMS's last audit entry: $(tail -1 "$tmp/kms/audit.log")"; fi
	esac
	no_output "$rname" "$rid"
	set -- "$state/blobs/$runid".*
	if [ -e "$1" ]; then not_ok "$rname: cofferd holds an output of $runid: $*"
	else ok "$rname: cofferd holds no output blob of $runid"; fi
}
# no_output NAME ID: neither organisation gets an output of task ID.
no_output() {
	for o in a b; do
		rm -f "$tmp/leak-$o.csv"
		run 1 "$1: org-$o gets no result" env COFFER_HOME="$tmp/$o" \
			"$coffer" task result "$2" result -o "$tmp/leak-$o.csv"
		if [ -e "$tmp/leak-$o.csv" ]; then not_ok "$1: a result file for org-$o exists"; fi
	done
}

# ======================= 1. swapped ciphertext =======================
ds_a=$(sql "SELECT id FROM datasets WHERE kms_dataset = 'org-a/data' AND state = 'ready'")
ds_other=$(sql "SELECT id FROM datasets WHERE kms_dataset = 'org-a/other' AND state = 'ready'")
ds_b=$(sql "SELECT id FROM datasets WHERE kms_dataset = 'org-b/data' AND state = 'ready'")
blobs=$state/blobs
for f in "$ds_a" "$ds_other" "$ds_b"; do
	[ -s "$blobs/$f" ] || { not_ok "no blob $blobs/$f"; exit 1; }
done
cp "$blobs/$ds_a" "$tmp/a.age"
cp "$blobs/$ds_b" "$tmp/b.age"
# swap_blob FILE: org-a/data's blob becomes FILE; size and sha256 in the
# datasets table follow, as cofferd would have them for a file it received.
swap_blob() {
	cp "$1" "$blobs/$ds_a"
	sql "UPDATE datasets SET size = $(wc -c <"$1"),
	     sha256 = '$(sha256sum "$1" | cut -d' ' -f1)' WHERE id = '$ds_a'"
}
restore_blob() { swap_blob "$tmp/a.age"; }

new_task swap-other
swap_blob "$blobs/$ds_other"
refused_run "org-a/data swapped for org-a/other (same key)" "$id" \
	"input a: its header is not the one the KMS registered"

new_task swap-b
swap_blob "$tmp/b.age"
refused_run "org-a/data swapped for org-b/data" "$id" \
	"input a: its header is not the one the KMS registered"

# The registered header kept, the payload of org-a/other behind it: the
# header check passes and age's chunk authentication refuses.
python3 - "$tmp/a.age" "$blobs/$ds_other" "$tmp/spliced.age" <<'PY'
import sys
def split(p):
    b = open(p, "rb").read()
    i = b.index(b"\n---") ; j = b.index(b"\n", i + 1) + 1
    return b[:j], b[j:]
ha, _ = split(sys.argv[1]); _, po = split(sys.argv[2])
open(sys.argv[3], "wb").write(ha + po)
PY
new_task swap-splice
swap_blob "$tmp/spliced.age"
refused_run "org-a/data's header over org-a/other's payload" "$id" "input a: the ciphertext does not decrypt"

head -c $(($(wc -c <"$tmp/a.age") - 100)) "$tmp/a.age" >"$tmp/truncated.age"
new_task swap-truncated
swap_blob "$tmp/truncated.age"
refused_run "org-a/data truncated by 100 bytes" "$id" "input a: the ciphertext does not decrypt"
restore_blob

# ======================= 2. replayed approvals =======================
new_task replay-x
x=$id
# Y: a row dump without a policy, which org-a approved and org-b did not.
mk_task "$tmp/replay-y.json" replay-y "SELECT a.id, a.age, b.spend FROM a JOIN b USING (id)"
create "$tmp/replay-y.json"
y=$id
approve "$y" a
refused "cofferd itself: $y without org-b's approval" "approvals are missing" \
	env COFFER_HOME="$tmp/an" "$coffer" task run "$y"
# org-b's approval of X copied to Y, next to org-a's genuine one.
sql "INSERT INTO approvals(task_id, org, sig, created)
       SELECT '$y', org, sig, created FROM approvals WHERE task_id = '$x' AND org = 'org-b';
     UPDATE tasks SET state = 'approved' WHERE id = '$y'"
check "$y carries org-b's approval of $x" "$(sql "SELECT count(*) FROM approvals a JOIN approvals b
	ON a.sig = b.sig WHERE a.task_id = '$y' AND b.task_id = '$x'")" 1
refused_run "org-b's approval of $x replayed on $y" "$y" "approval_signature"
case $msg in *"org-b's approval does not verify"*) ok "the KMS names org-b's approval" ;;
*) not_ok "the KMS should name org-b's approval: $msg" ;; esac
# Both of X's approvals on Y.
sql "DELETE FROM approvals WHERE task_id = '$y';
     INSERT INTO approvals(task_id, org, sig, created)
       SELECT '$y', org, sig, created FROM approvals WHERE task_id = '$x';
     UPDATE tasks SET state = 'approved' WHERE id = '$y'"
refused_run "both approvals of $x replayed on $y" "$y" "approval_signature"

new_task drop-b
sql "DELETE FROM approvals WHERE task_id = '$id' AND org = 'org-b'"
refused_run "org-b's approval dropped, the task still marked approved" "$id" "approval_missing"


# ======================= 3. SQL changed after approval =======================
# Offline: cofferd stopped, its database edited, cofferd started again on
# the same port (the profiles' URL and session tokens still hold).
new_task sql-dump
stop_pid "$cofferd_job"
forge "$id" 't["function"]["query"] = "SELECT a.id, a.region, a.age, b.spend FROM a JOIN b USING (id)"; del t["policy"]'
cofferd_restart
ok "cofferd restarted over its edited database"
forged_ok "$id" "SELECT a.id, a.region, a.age, b.spend"
refused_run "the query changed to a row dump and the policy dropped (offline edit)" "$id" \
	"approval_signature"

# Live: only the query's WHERE, the policy as approved.
new_task sql-where
forge "$id" 't["function"]["query"] = t["function"]["query"].replace("USING (id)", "USING (id) WHERE a.age > 80")'
forged_ok "$id" "WHERE a.age > 80"
refused_run "a WHERE added to the approved query" "$id" "approval_signature"

# Only the policy: k lowered to 1 and rows allowed.
new_task policy-lifted
forge "$id" 't["policy"] = {"min_group_size": 1, "allow_rows": True}'
refused_run "the policy lifted after approval" "$id" "approval_signature"

# ======================= 4. recipients changed after approval =======================
new_task rcpt-added
forge "$id" 't["outputs"][0]["recipients"].append({"org": "org-a", "recipient": attacker})'
forged_ok "$id" "$attacker"
refused_run "the attacker's key added as a recipient" "$id" "approval_signature"

new_task rcpt-swapped
forge "$id" 't["outputs"][0]["recipients"][1]["recipient"] = attacker'
refused_run "org-b's recipient replaced by the attacker's key" "$id" "approval_signature"

new_task rcpt-rerouted
forge "$id" 't["outputs"][0]["recipients"] = [{"org": "org-a", "recipient": pub["a"]["age_recipient"]}]'
refused_run "org-b dropped from the recipients (org-a's registered key only)" "$id" "approval_signature"

new_task output-added
forge "$id" 't["outputs"].append({"name": "copy", "query": "SELECT count(*) AS n FROM a", "recipients": [{"org": "org-a", "recipient": attacker}]})'
refused_run "an output for the attacker added" "$id" "approval_signature"

# Defence in depth: even a task both owners signed cannot name a key as
# an organisation's recipient that is not the one the KMS registered.
mk_task "$tmp/rcpt-mislabelled.json" rcpt-mislabelled "$q_good" "$k5"
python3 - "$tmp/rcpt-mislabelled.json" "$attacker" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); t["outputs"][0]["recipients"][1]["recipient"] = sys.argv[2]
json.dump(t, open(sys.argv[1], "w"))
PY
create "$tmp/rcpt-mislabelled.json"
approve "$id" a b
refused_run "an approved task with the attacker's key labelled org-b" "$id" "recipient_key"

# ======================= 5. bad input, nothing lost =======================
ntasks() { sql "SELECT count(*) FROM tasks"; }
before=$(ntasks)
export COFFER_HOME="$tmp/an"
printf '{"version": 1, "name": "broken", "inputs": {"a": {"dataset": "org-a/da' >"$tmp/broken.json"
refused "a task file of broken JSON" "not valid JSON" "$coffer" task create --file "$tmp/broken.json"
mk_task "$tmp/full.json" incomplete "$q_good" "$k5"
for member in outputs inputs tee; do
	python3 - "$tmp/full.json" "$tmp/missing.json" "$member" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); del t[sys.argv[3]]
json.dump(t, open(sys.argv[2], "w"))
PY
	run 1 "a task without $member: coffer task create refuses it" \
		"$coffer" task create --file "$tmp/missing.json"
	if grep -q "$member" "$tmp/err"; then ok "the client names the missing $member: $(head -1 "$tmp/err")"
	else not_ok "the client's error does not name $member: $(head -c 300 "$tmp/err")"; fi
	# cofferd itself, without the client's checks in front of it
	python3 -c 'import json,sys; print(json.dumps({"task": json.load(open(sys.argv[1]))}))' \
		"$tmp/missing.json" >"$tmp/body.json"
	code=$(curl -s -o "$tmp/answer.json" -w '%{http_code}' --cacert "$ca" \
		-H "Authorization: Bearer $(cat "$tmp/an/cofferd.token")" -H 'Content-Type: application/json' \
		--data-binary @"$tmp/body.json" "$cofferd_url/v1/tasks")
	check "a task without $member: cofferd answers 400" "$code" 400
	if grep -q "$member" "$tmp/answer.json"; then ok "cofferd names the missing $member: $(cat "$tmp/answer.json")"
	else not_ok "cofferd's answer does not name $member: $(head -c 300 "$tmp/answer.json")"; fi
done
printf '{"task": {"version": 1, "inputs": ' >"$tmp/body.json"
code=$(curl -s -o "$tmp/answer.json" -w '%{http_code}' --cacert "$ca" \
	-H "Authorization: Bearer $(cat "$tmp/an/cofferd.token")" -H 'Content-Type: application/json' \
	--data-binary @"$tmp/body.json" "$cofferd_url/v1/tasks")
check "broken JSON straight to cofferd: 400" "$code" 400
echo "# cofferd on broken JSON: $(cat "$tmp/answer.json")"
check "no task was stored for any of them" "$(ntasks)" "$before"
unset COFFER_HOME
# cofferd checks only the members the KMS reads (docs/api.md): a task
# without a function is stored, and the enclave refuses it by name, before
# it asks the KMS for any key.
python3 - "$tmp/full.json" "$tmp/nofunction.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); del t["function"]; t["name"] = "no-function"
json.dump(t, open(sys.argv[2], "w"))
PY
create "$tmp/nofunction.json"
approve "$id" a b
refused_run "a task without function" "$id" 'the task needs a function'
if grep -q "the KMS released" "$tmp/status.out" "$state/runs/$runid.log"; then
	not_ok "a task without function: keys were asked for"; else ok "a task without function: no key was asked for"; fi

# SQL that writes: the fence (no policy) and the policy refuse it in the enclave.
new_task sql-delete "DELETE FROM a"
refused_run "DELETE FROM a, no policy (the fence)" "$id" "the query may not use DELETE"
new_task sql-insert "INSERT INTO b(id, spend) VALUES (1000000, 1.0)"
refused_run "INSERT INTO b, no policy (the fence)" "$id" "the query may not use INSERT"
new_task sql-two "SELECT count(*) AS n FROM a; DROP TABLE b"
refused_run "a SELECT with a DROP TABLE behind it" "$id" "more than one statement"
new_task sql-delete-k "DELETE FROM a" "$k5"
refused_run "DELETE FROM a under min_group_size 5 (the policy)" "$id" "the output policy needs a SELECT"

# Every group under k: suppressed (docs/output-policy.md), so the result
# is the header alone; the run succeeds.
new_task all-small "$q_good" '{"min_group_size": 1000, "allow_rows": false}'
run_task 0 "every group under k=1000: the run succeeds" "$id" --instance "$inst"
echo "# every group under k: $msg"
run 0 "org-b decrypts the result" env COFFER_HOME="$tmp/b" \
	"$coffer" task result "$id" result -o "$tmp/small.csv"
small_id=$id small_run=$runid
check "every group under k: the result is the header alone" "$(tr -d '\r' <"$tmp/small.csv")" "region,n,total"
new_task all-small-total "SELECT count(*) AS n, avg(a.age) AS age FROM a JOIN b USING (id)" \
	'{"min_group_size": 1000}'
run_task 0 "one aggregate row under k=1000: the run succeeds" "$id" --instance "$inst"
run 0 "org-a decrypts the result" env COFFER_HOME="$tmp/a" \
	"$coffer" task result "$id" result -o "$tmp/small2.csv"
check "one aggregate row under k: dropped, the header alone" "$(tr -d '\r' <"$tmp/small2.csv")" "n,age"

new_task row-dump "SELECT a.id, a.age, b.spend FROM a JOIN b USING (id)" '{"allow_rows": false}'
refused_run "a row dump under allow_rows false" "$id" "the query does not aggregate"
new_task row-groups "SELECT a.id, count(*) AS n FROM a JOIN b USING (id) GROUP BY a.id" '{"allow_rows": false}'
refused_run "groups of one row under allow_rows false" "$id" "allow_rows false"

# A CSV with a ragged row (line 5 has 2 fields, the header 3).
run 0 "org-a pushes a ragged CSV (the client encrypts it as it reads, without parsing)" env COFFER_HOME="$tmp/a" \
	"$coffer" dataset push ragged "$tmp/ragged.csv" --key "$(jget "$tmp/a.key.json" key)"
mk_task "$tmp/ragged.json" ragged "SELECT count(*) AS n FROM r" "" '{"r": {"dataset": "org-a/ragged"}}'
create "$tmp/ragged.json"
approve "$id" a
refused_run "a ragged CSV" "$id" "input r: line 5"

# ======================= the platform still works =======================
run 0 "org-a lists its datasets" env COFFER_HOME="$tmp/a" "$coffer" dataset list
for n in org-a/data org-a/other org-a/ragged; do
	if grep -q "$n" "$tmp/out"; then ok "$n is still listed"; else not_ok "$n is gone: $(cat "$tmp/out")"; fi
done
new_task good
run_task 0 "a good task runs (on cofferd's default enclave size)" "$id"
check "it succeeded" "$state_" succeeded
sqlite3 "$tmp/plain.db" <<SQL
.mode csv
.import $tmp/a.csv a
.import $tmp/b.csv b
.headers on
.output $tmp/expected.csv
SELECT a.region, count(*) AS n, sum(b.spend) AS total FROM a JOIN b USING (id)
 GROUP BY a.region HAVING count(*) >= 5 ORDER BY a.region;
SQL
for o in a b; do
	run 0 "org-$o decrypts the result" env COFFER_HOME="$tmp/$o" \
		"$coffer" task result "$id" result -o "$tmp/good-$o.csv"
	if python3 - "$tmp/expected.csv" "$tmp/good-$o.csv" <<'PY'
import csv, sys
def rows(p):
    r = list(csv.reader(open(p, newline="")))
    return r[0], [(x[0], int(x[1]), round(float(x[2]), 2)) for x in r[1:]]
(eh, e), (gh, g) = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if eh == gh and e == g and len(e) == 5 else 1)
PY
	then ok "org-$o's result equals sqlite3 on the plaintext (5 regions)"; else
		not_ok "org-$o's result differs: $(head -3 "$tmp/good-$o.csv") vs $(head -3 "$tmp/expected.csv")"; fi
done
good=$id good_run=$runid

# ======================= 6. outputs forged or swapped by cofferd =======================
good_digest=$("$coffer" task digest "$tmp/good.json")
run 0 "org-a fetches the genuine result again" env COFFER_HOME="$tmp/a" \
	"$coffer" task result "$good" result -o "$tmp/genuine.csv"
sed 's/^/# /' "$tmp/err"
if grep -q "made by a soft enclave, measurement $meas_default" "$tmp/err"; then
	ok "coffer task result names the enclave that made it (soft, the default measurement)"
else not_ok "the enclave is not named: $(cat "$tmp/err")"; fi
if grep -q "for task digest $good_digest" "$tmp/err"; then ok "and the task digest it was made for"
else not_ok "the digest is not named: $(cat "$tmp/err")"; fi
out_blob=$state/blobs/$good_run.out.0
[ -s "$out_blob" ] || { not_ok "no output blob $out_blob"; exit 1; }
cp "$out_blob" "$tmp/genuine.age"
sql "SELECT attestation FROM outputs WHERE run_id = '$good_run' AND name = 'result'" >"$tmp/genuine.att"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert a["sig"] and a["output_key"]["statement"]["output_key"]' \
	"$tmp/genuine.att" && ok "cofferd holds the enclave's attestation of the output" ||
	not_ok "no attestation in cofferd: $(head -c 300 "$tmp/genuine.att")"
# set_output FILE [ATTESTATION]: the good run's output becomes FILE, its
# size and sha256 follow, and its attestation becomes ATTESTATION (a file
# of JSON, or "" for none) if given: consistent in cofferd's records.
set_output() {
	cp "$1" "$out_blob"
	if [ $# -gt 1 ]; then
		if [ -n "$2" ]; then att="CAST(readfile('$2') AS TEXT)"; else att="''"; fi
		att=", attestation = $att"
	else att=""; fi
	sql "UPDATE outputs SET size = $(wc -c <"$1"), sha256 = '$(sha256sum "$1" | cut -d' ' -f1)'$att
	     WHERE run_id = '$good_run' AND name = 'result'"
}
# forged_result NAME WHY: neither recipient accepts the good task's
# output, each for WHY, and no file is written.
forged_result() {
	for o in a b; do
		rm -f "$tmp/forged-$o.csv"
		refused "$1: org-$o's coffer task result" \
			"the output is not signed by an enclave the KMS released keys to for this task" \
			env COFFER_HOME="$tmp/$o" "$coffer" task result "$good" result -o "$tmp/forged-$o.csv"
		if grep -qF "$2" "$tmp/err"; then ok "$1: org-$o is told why ($2)"
		else not_ok "$1: org-$o's error should say '$2': $(head -c 600 "$tmp/err")"; fi
		if [ -e "$tmp/forged-$o.csv" ]; then not_ok "$1: org-$o got a file"; fi
	done
	if ls "$tmp"/forged-?.csv.* >/dev/null 2>&1; then not_ok "$1: a temporary file was left behind"; fi
}

# cofferd's own CSV, encrypted to both recipients' public age keys: an age
# file org-a's identity opens and authenticates.
printf 'region,n,total\r\nnorth,1000,1.00\r\n' >"$tmp/forged.csv"
"$coffer" age encrypt -r "$(jget "$tmp/a.pub.json" age_recipient)" \
	-r "$(jget "$tmp/b.pub.json" age_recipient)" -o "$tmp/forged.age" "$tmp/forged.csv"
run 0 "cofferd's forged output opens with org-a's age identity" \
	"$coffer" age decrypt -i "$tmp/a/org-age.key" -o "$tmp/forged-open.csv" "$tmp/forged.age"
check "...to cofferd's CSV" "$(cat "$tmp/forged-open.csv")" "$(cat "$tmp/forged.csv")"
set_output "$tmp/forged.age"
check "cofferd lists the forged output's SHA-256 as the output's" \
	"$(sql "SELECT sha256 FROM outputs WHERE run_id = '$good_run' AND name = 'result'")" \
	"$(sha256sum "$tmp/forged.age" | cut -d' ' -f1)"
forged_result "cofferd's ciphertext under the enclave's attestation" "does not cover this ciphertext"
rm -f "$tmp/forged-raw.age"
refused "cofferd's ciphertext, fetched with --ciphertext" \
	"the output is not signed by an enclave the KMS released keys to for this task" \
	env COFFER_HOME="$tmp/a" "$coffer" task result "$good" result --ciphertext -o "$tmp/forged-raw.age"
if [ -e "$tmp/forged-raw.age" ]; then not_ok "--ciphertext wrote the forged file"; fi

set_output "$tmp/forged.age" ""
forged_result "cofferd's ciphertext, the attestation dropped" "cofferd lists no attestation"

# An attestation of cofferd's own: its Ed25519 output key in the KMS's
# statement (whose signature it cannot redo: the KMS's stays), and that
# key's valid signature over the task's digest, the name and the forged
# file's SHA-256.
openssl genpkey -algorithm ed25519 -out "$tmp/attacker-ed.pem" 2>/dev/null
python3 - "$tmp/genuine.att" "$good_digest" "$tmp/forged.age" "$tmp/msg.bin" <<'PY'
import hashlib, sys
att, digest, ct, out = sys.argv[1:]
msg = b"coffer-output-v1:" + bytes.fromhex(digest) + b"result\0" + hashlib.sha256(open(ct, "rb").read()).digest()
open(out, "wb").write(msg)
PY
openssl pkeyutl -sign -inkey "$tmp/attacker-ed.pem" -rawin -in "$tmp/msg.bin" -out "$tmp/msg.sig"
openssl pkey -in "$tmp/attacker-ed.pem" -pubout -outform DER 2>/dev/null | tail -c 32 >"$tmp/attacker-ed.pub"
python3 - "$tmp/genuine.att" "$tmp/attacker-ed.pub" "$tmp/msg.sig" "$tmp/own.att" <<'PY'
import base64, json, sys
att = json.load(open(sys.argv[1]))
att["output_key"]["statement"]["output_key"] = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
att["sig"] = base64.b64encode(open(sys.argv[3], "rb").read()).decode()
open(sys.argv[4], "w").write(json.dumps(att, sort_keys=True, separators=(",", ":")))
PY
set_output "$tmp/forged.age" "$tmp/own.att"
forged_result "cofferd's ciphertext under an output key of its own" "not signed by the pinned KMS"

# The genuine output of another task (every group under k: the header
# alone), with that task's genuine attestation.
small_blob=$state/blobs/$small_run.out.0
sql "SELECT attestation FROM outputs WHERE run_id = '$small_run' AND name = 'result'" >"$tmp/small.att"
set_output "$small_blob" "$tmp/small.att"
forged_result "the output of task $small_id swapped in" "the KMS released the output key for another task"

# Task small_id's run passed off as the good task's newest run.
set_output "$tmp/genuine.age" "$tmp/genuine.att"
sql "UPDATE runs SET task_id = '$good', started = started + 100000 WHERE id = '$small_run'"
forged_result "$small_id's run re-parented as $good's newest" "the KMS released the output key for another task"

# Both at once: cofferd serves task small_id itself (its JSON and digest)
# under the good task's id, with small_id's run and its genuine signed
# output. Every signature holds; only the digest each organisation's
# profile kept when it approved the good task shows the substitution.
sql "CREATE TABLE good_task AS SELECT task, digest FROM tasks WHERE id = '$good';
     UPDATE tasks SET task = (SELECT task FROM tasks WHERE id = '$small_id'),
                      digest = (SELECT digest FROM tasks WHERE id = '$small_id') WHERE id = '$good'"
for o in a b; do
	rm -f "$tmp/subst-$o.csv"
	refused "task $small_id served as $good: org-$o's coffer task result" "not the task you agreed to" \
		env COFFER_HOME="$tmp/$o" "$coffer" task result "$good" result -o "$tmp/subst-$o.csv"
	if [ -e "$tmp/subst-$o.csv" ]; then not_ok "the substituted task's output reached org-$o"; fi
done
sql "UPDATE tasks SET task = (SELECT task FROM good_task), digest = (SELECT digest FROM good_task)
     WHERE id = '$good'; DROP TABLE good_task"
sql "UPDATE runs SET task_id = '$small_id', started = started - 100000 WHERE id = '$small_run'"

# Put back, the genuine output is accepted again.
for o in a b; do
	rm -f "$tmp/again-$o.csv"
	run 0 "the genuine output put back: org-$o accepts it" env COFFER_HOME="$tmp/$o" \
		"$coffer" task result "$good" result -o "$tmp/again-$o.csv"
	check "org-$o's result is the genuine one" "$(cat "$tmp/again-$o.csv")" "$(cat "$tmp/good-$o.csv")"
done

# The attacker's key opens nothing cofferd holds.
opened=0
for f in "$state"/blobs/*; do
	if "$coffer" age decrypt -i "$tmp/attacker.key" -o /dev/null "$f" 2>/dev/null; then opened=$((opened + 1)); fi
done
check "no blob at cofferd opens with the attacker's key" "$opened" 0
# cofferd (instrumented in the sanitizer build) reported nothing.
if grep -E "runtime error|ERROR: [A-Za-z]*Sanitizer" "$tmp/cofferd.log"; then
	not_ok "cofferd's log has sanitizer reports"; else ok "no sanitizer report in cofferd's log"; fi
echo "# hostile.sh ran in $(($(date +%s) - t0)) s"

exit $failed
