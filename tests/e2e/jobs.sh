#!/bin/sh
# Issue 7's jobs through the whole platform (coffer-kms and coffer-enclave
# in the soft TEE, cofferd): xgboost.train in the enclave gives the model
# plain XGBoost trains on the same rows, parameters and seed (predictions
# within 1e-6); xgboost.predict in the enclave equals plain prediction;
# psi gives each recipient only the granted form and is exact; stats
# match sqlite3 on the plaintext; a malformed model, a missing label and
# a non-numeric feature fail the task with a clear reason.
set -eu

bin=${COFFER_BIN:?}
tmp=$(mktemp -d)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/platform.sh"
trap 'platform_down; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT INT TERM

need_root
seed=$bin/../bench/seed_inference
[ -x "$seed/xgb_plain" ] || { echo "not ok - $seed/xgb_plain is not built"; exit 1; }

# Criteo-like rows: id,label,I1..I13,C1..C26 (empty fields are missing values).
"$seed/seed_gen" --rows 3000 --seed 7 -o "$tmp/data.csv"
# Two key sets for psi, overlapping in 300 values, and a ragged-free table for stats.
python3 - "$tmp" <<'PY'
import random, sys
tmp = sys.argv[1]
r = random.Random(11)
a = r.sample(range(100000), 1000)
b = r.sample(a, 300) + r.sample(range(100000, 200000), 700)
r.shuffle(b)
open(f"{tmp}/ka.csv", "w").write("id,x\n" + "".join(f"{v},{r.random():.6f}\n" for v in a))
open(f"{tmp}/kb.csv", "w").write("cust_id\n" + "".join(f"{v}\n" for v in b))
open(f"{tmp}/psi.expected", "w").write("".join(f"{v}\n" for v in sorted(set(a) & set(b))))
PY
printf '{"learner": "not a model"' >"$tmp/bad-model.json"

platform_up
ok "coffer-kms (soft TEE) and cofferd run"
push() { # ORG NAME FILE
	run 0 "org-$1 pushes $2" env COFFER_HOME="$tmp/$1" \
		"$coffer" dataset push "$2" "$3" --key "$(jget "$tmp/$1.key.json" key)"
}
push a data "$tmp/data.csv"
push a keys "$tmp/ka.csv"
push b keys "$tmp/kb.csv"
push a badmodel "$tmp/bad-model.json"

meas=$("$launch" measure --cores 1 --memory 1G --enclave-size 512M "$enclave")
features=$(python3 -c 'print(",".join([f"I{i}" for i in range(1,14)] + [f"C{i}" for i in range(1,27)]))')
# task NAME FUNCTION_JSON INPUTS_JSON OUTPUTS_JSON [POLICY_JSON] -> $tmp/NAME.json
task() {
	python3 - "$tmp" "$meas" "$@" <<'PY'
import json, sys
tmp, meas, name, fn, inputs, outputs = sys.argv[1:7]
pub = {o: json.load(open(f"{tmp}/{o}.pub.json")) for o in "ab"}
outs = [{"name": n, "recipients": [{"org": f"org-{o}", "recipient": pub[o]["age_recipient"]} for o in orgs]}
        for n, orgs in json.loads(outputs).items()]
t = {"version": 1, "name": name, "inputs": json.loads(inputs), "function": json.loads(fn),
     "outputs": outs, "tee": {"kinds": ["soft"], "measurements": [meas]}}
if len(sys.argv) > 7:
    t["policy"] = json.loads(sys.argv[7])
json.dump(t, open(f"{tmp}/{name}.json", "w"))
PY
}
# submit NAME ORG...: created by the analyst, approved by each ORG, run; id in $id.
submit() {
	name=$1; shift
	COFFER_HOME=$tmp/an "$coffer" task create --file "$tmp/$name.json" >"$tmp/out"
	id=$(cut -d' ' -f1 "$tmp/out")
	for o in "$@"; do COFFER_HOME=$tmp/$o "$coffer" task approve "$id" --yes >/dev/null 2>&1; done
	set +e
	COFFER_HOME=$tmp/an "$coffer" task run "$id" --wait --timeout 300 >"$tmp/$name.run" 2>&1
	run_rc=$?
	set -e
}
result() { # ORG TASK OUTPUT FILE
	COFFER_HOME=$tmp/$1 "$coffer" task result "$2" "$3" -o "$4" >"$tmp/out" 2>"$tmp/err"
}

# --- xgboost.train: the enclave's model is plain XGBoost's ---
fn=$(python3 -c 'import json,sys; f=sys.argv[1].split(",")
print(json.dumps({"kind": "xgboost.train", "query": "SELECT label, " + ", ".join(f) + " FROM a ORDER BY rowid",
  "label": "label", "features": f,
  "params": {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 3, "eta": 0.3,
             "seed": 0, "nthread": 1, "num_round": 10, "eval_metric": ["auc", "logloss"]}}))' "$features")
task train "$fn" '{"a": {"dataset": "org-a/data"}}' '{"model": ["a"], "metrics": ["a"]}'
submit train a
check "xgboost.train runs in the enclave" "$run_rc" 0
result a "$id" model "$tmp/enclave-model.json" && ok "org-a decrypts the model" ||
	not_ok "model: $(cat "$tmp/err")"
result a "$id" metrics "$tmp/metrics.csv" && ok "org-a decrypts the training metrics" ||
	not_ok "metrics: $(cat "$tmp/err")"
check "metrics: header and 10 rounds" "$(head -1 "$tmp/metrics.csv" | tr -d '\r'),$(($(wc -l <"$tmp/metrics.csv") - 1))" \
	"round,train-auc,train-logloss,10"
"$seed/xgb_plain" train --data "$tmp/data.csv" --model "$tmp/plain-model.json" --trees 10 --depth 3 \
	--eta 0.3 --seed 0 --nthread 1 >/dev/null
"$seed/xgb_plain" predict --model "$tmp/plain-model.json" --data "$tmp/data.csv" --out "$tmp/plain.pred" \
	--nthread 1 >/dev/null
if "$seed/xgb_plain" predict --model "$tmp/enclave-model.json" --data "$tmp/data.csv" \
	--out "$tmp/enclave-model.pred" --nthread 1 >/dev/null 2>"$tmp/err"; then
	ok "plain XGBoost loads the enclave's model"; else not_ok "load: $(cat "$tmp/err")"; fi
# cmp_pred A B: same ids, predictions within 1e-6.
cmp_pred() {
	python3 - "$1" "$2" <<'PY'
import csv, sys
def rows(p):
    r = list(csv.reader(open(p, newline="")))
    return [(x[0], float(x[-1])) for x in r[1:]]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
bad = [(x, y) for x, y in zip(a, b) if x[0] != y[0] or abs(x[1] - y[1]) > 1e-6]
print(f"{len(a)} vs {len(b)} rows, {len(bad)} differ")
sys.exit(0 if len(a) == len(b) == 3000 and not bad else 1)
PY
}
if cmp_pred "$tmp/plain.pred" "$tmp/enclave-model.pred" >"$tmp/cmp"; then
	ok "the enclave-trained model predicts as plain XGBoost's (within 1e-6): $(cat "$tmp/cmp")"; else
	not_ok "models differ: $(cat "$tmp/cmp")"; fi

# --- xgboost.predict in the enclave, with the enclave's model ---
push a model "$tmp/enclave-model.json"
fn=$(python3 -c 'import json,sys; f=sys.argv[1].split(",")
print(json.dumps({"kind": "xgboost.predict", "model": "m", "query": "SELECT id, " + ", ".join(f) + " FROM a ORDER BY rowid",
  "features": f, "id": "id", "nthread": 1}))' "$features")
task predict "$fn" '{"a": {"dataset": "org-a/data"}, "m": {"dataset": "org-a/model", "format": "xgboost-json"}}' \
	'{"scores": ["a"]}'
submit predict a
check "xgboost.predict runs in the enclave" "$run_rc" 0
result a "$id" scores "$tmp/scores.csv" && ok "org-a decrypts the scores" || not_ok "scores: $(cat "$tmp/err")"
if cmp_pred "$tmp/enclave-model.pred" "$tmp/scores.csv" >"$tmp/cmp"; then
	ok "enclave predictions equal plain XGBoost's with that model (within 1e-6): $(cat "$tmp/cmp")"; else
	not_ok "predictions differ: $(cat "$tmp/cmp")"; fi

# --- xgboost.predict straight from the CSV input (table), threads left to the enclave ---
# The default run is confined to 1 core (a CFS quota, --cores 1) on a host with
# more: the enclave must predict on 1 thread, not one per host CPU.
fn=$(python3 -c 'import json,sys; f=sys.argv[1].split(",")
print(json.dumps({"kind": "xgboost.predict", "model": "m", "table": "a", "features": f, "id": "id"}))' \
	"$features")
task predict_table "$fn" '{"a": {"dataset": "org-a/data"}, "m": {"dataset": "org-a/model", "format": "xgboost-json"}}' \
	'{"scores": ["a"]}'
submit predict_table a
check "xgboost.predict from a table runs in the enclave" "$run_rc" 0
result a "$id" scores "$tmp/scores-table.csv" && ok "org-a decrypts the table's scores" ||
	not_ok "table scores: $(cat "$tmp/err")"
if cmp_pred "$tmp/enclave-model.pred" "$tmp/scores-table.csv" >"$tmp/cmp"; then
	ok "predictions from the table equal plain XGBoost's (within 1e-6): $(cat "$tmp/cmp")"; else
	not_ok "table predictions differ: $(cat "$tmp/cmp")"; fi
nproc_host=$(nproc)
log=$(grep -l "features of input a in" "$tmp"/cofferd/runs/*.log 2>/dev/null | tail -n 1)
if [ "$nproc_host" -gt 1 ] && [ -n "$log" ]; then
	if grep -q "alongside, on 1 thread)" "$log"; then
		ok "predicted on 1 thread: the instance's CPU quota, not the host's $nproc_host CPUs"; else
		not_ok "threads: $(grep -o 'on [0-9]* threads\?)' "$log")"; fi
elif [ -z "$log" ]; then
	not_ok "no run log names the table's predictions"
fi

# --- failures: a clear reason, the task failed ---
failed_with() { # NAME WANT
	if [ "$run_rc" != 0 ] && grep -q "$2" "$tmp/$1.run"; then ok "$1 fails: $2"; else
		not_ok "$1: rc $run_rc, want a failure naming '$2': $(tail -n 4 "$tmp/$1.run")"; fi
}
task badmodel "$fn" '{"a": {"dataset": "org-a/data"}, "m": {"dataset": "org-a/badmodel", "format": "xgboost-json"}}' \
	'{"scores": ["a"]}'
submit badmodel a
failed_with badmodel "is not an XGBoost JSON model"
task nolabel '{"kind": "xgboost.train", "query": "SELECT I1, I2 FROM a", "label": "label"}' \
	'{"a": {"dataset": "org-a/data"}}' '{"model": ["a"]}'
submit nolabel a
failed_with nolabel "has no label column"
task textfeature '{"kind": "xgboost.train", "query": "SELECT label, I1, '"'"'abc'"'"' AS t FROM a", "label": "label"}' \
	'{"a": {"dataset": "org-a/data"}}' '{"model": ["a"]}'
submit textfeature a
failed_with textfeature "is not a number"

# --- psi: the count to org-b, the ids to org-a only ---
task psi '{"kind": "psi", "keys": {"a": "id", "b": "cust_id"}, "outputs": {"size": "count", "ids": "ids"}}' \
	'{"a": {"dataset": "org-a/keys"}, "b": {"dataset": "org-b/keys"}}' '{"size": ["b"], "ids": ["a"]}'
submit psi a b
check "psi runs" "$run_rc" 0
result b "$id" size "$tmp/size.csv" && ok "org-b decrypts the count" || not_ok "size: $(cat "$tmp/err")"
check "the count is exact" "$(tr -d '\r' <"$tmp/size.csv" | tr '\n' ' ')" "count 300 "
if result b "$id" ids "$tmp/ids-b.csv"; then not_ok "org-b got the ids it was not granted"; else
	ok "org-b may not fetch the ids: $(head -c 120 "$tmp/err")"; fi
[ -e "$tmp/ids-b.csv" ] && not_ok "a file of ids was written for org-b"
result a "$id" ids "$tmp/ids.csv" && ok "org-a decrypts the ids" || not_ok "ids: $(cat "$tmp/err")"
if tail -n +2 "$tmp/ids.csv" | tr -d '\r' | sort -n | cmp -s - "$tmp/psi.expected"; then
	ok "the ids are exactly the intersection (300)"; else not_ok "ids differ from the intersection"; fi

# --- stats over org-a's keys table, against sqlite3 ---
task stats '{"kind": "stats", "table": "a", "columns": ["x"], "quantiles": [0.5]}' \
	'{"a": {"dataset": "org-a/keys"}}' '{"profile": ["a"]}' '{"min_group_size": 10}'
submit stats a
check "stats runs" "$run_rc" 0
result a "$id" profile "$tmp/profile.csv" && ok "org-a decrypts the statistics" || not_ok "stats: $(cat "$tmp/err")"
sqlite3 "$tmp/k.db" <<EOF
.mode csv
.import $tmp/ka.csv k
.output $tmp/stats.expected
SELECT count(x), avg(CAST(x AS REAL)), min(CAST(x AS REAL)), max(CAST(x AS REAL)) FROM k;
EOF
if python3 - "$tmp/profile.csv" "$tmp/stats.expected" <<'PY'
import csv, sys
r = list(csv.DictReader(open(sys.argv[1], newline="")))
n, mean, lo, hi = next(csv.reader(open(sys.argv[2])))
s = r[0]
ok = (len(r) == 1 and int(s["count"]) == int(n) and abs(float(s["mean"]) - float(mean)) < 1e-9
      and float(s["min"]) == float(lo) and float(s["max"]) == float(hi))
sys.exit(0 if ok else 1)
PY
then ok "count, mean, min and max equal sqlite3's on the plaintext"; else
	not_ok "stats differ: $(cat "$tmp/profile.csv") vs $(cat "$tmp/stats.expected")"; fi

exit $failed
