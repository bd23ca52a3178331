#!/bin/sh
# The two-party example of docs/quickstart.md, run against the platform
# that `make start` runs (in another terminal). Two organisations each
# push a small CSV, an analyst asks for per-region counts and sums over
# their join with min_group_size 5, both approve, coffer-enclave runs it
# in the soft TEE, both decrypt the result, and it is compared with
# sqlite3 on the plaintext. Then the audit log is fetched and verified.
#
# Every run makes its own organisations and users (a random suffix), so
# it can run again and again against the same platform. Every person has
# their own client profile (COFFER_HOME) in a temporary directory, which
# is removed at the end (COFFER_DEMO_KEEP=1 keeps it).
#
#   COFFER_STATE       where make start keeps its state (default /var/lib/coffer);
#                      its start.env says where the services answer
set -eu
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
state=${COFFER_STATE:-/var/lib/coffer}

fail() {
	echo "demo: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || fail "run it as root: it reads the platform admin's key and password in $state"
command -v sqlite3 >/dev/null || fail "the sqlite3 CLI is missing (scripts/deps.sh installs it)"
if [ ! -f "$state/start.env" ]; then
	fail "no $state/start.env: start the platform first, in another terminal:
    make start
(with the same COFFER_STATE if you set one)"
fi
# shellcheck disable=SC1091
. "$state/start.env"
code=$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 3 "$COFFER_URL/v1/me" || true)
kcode=$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 3 "$COFFER_KMS_URL/v1/info" || true)
if [ "$code" != 401 ] || [ "$kcode" != 200 ]; then
	fail "cofferd ($COFFER_URL) or coffer-kms ($COFFER_KMS_URL) does not answer:
start the platform first, in another terminal:
    make start"
fi

tmp=$(mktemp -d /tmp/coffer-demo.XXXXXX)
cleanup() {
	if [ "${COFFER_DEMO_KEEP:-0}" = 1 ]; then echo "demo: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
a=org-a-$run
b=org-b-$run
t0=$(date +%s.%N)

step() { printf '\n== %s\n' "$*"; }
# as WHO ARGS...: runs coffer ARGS as WHO, in WHO's own profile, and shows
# the command (on standard error: standard output may go to a file).
as() {
	who=$1
	shift
	echo "[$who] coffer $*" >&2
	COFFER_HOME=$tmp/$who "$bin/coffer" "$@"
}
# quiet WHO ARGS...: the same with the output kept in $tmp/out (shown on failure).
quiet() {
	who=$1
	shift
	echo "[$who] coffer $*"
	if ! COFFER_HOME=$tmp/$who "$bin/coffer" "$@" >"$tmp/out" 2>&1; then
		cat "$tmp/out" >&2
		fail "that failed"
	fi
}

echo "demo: cofferd $COFFER_URL, coffer-kms $COFFER_KMS_URL; organisations $a and $b"

step "1. Each organisation verifies the KMS (attestation) and makes its keys"
for o in $a $b; do
	as "$o" attest "$COFFER_KMS_URL" --platform-cert "$COFFER_PLATFORM_CERT" | grep -E '^(verified|tee|measurement|pinned):'
	as "$o" org keygen --org "$o" >"$tmp/$o.pub.json"
	cat "$tmp/$o.pub.json"
done

step "2. The platform admin signs their enrollment tokens; they register with the KMS and make a dataset key"
for o in $a $b; do
	quiet admin admin enroll-token --key "$COFFER_ADMIN_KEY" --from "$tmp/$o.pub.json" --expires 1h
	cp "$tmp/out" "$tmp/$o.token"
	as "$o" org register --token "$tmp/$o.token"
	as "$o" key create | tee "$tmp/$o.key"
done

step "3. The admin logs in to cofferd and creates the organisations and their users"
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/pw"
echo >>"$tmp/pw"
as admin login "$COFFER_URL" --user admin --password-file "$COFFER_ADMIN_PASSWORD_FILE" --cacert "$COFFER_CA"
for o in $a $b; do
	as admin org create "$o" --from "$tmp/$o.pub.json"
	as admin user create "admin-$o" --org "$o" --role org-admin --password-file "$tmp/pw"
done
as admin user create "analyst-$run" --org "$a" --role analyst --password-file "$tmp/pw"
for o in $a $b; do
	as "$o" login "$COFFER_URL" --user "admin-$o" --password-file "$tmp/pw" --cacert "$COFFER_CA"
done
as analyst login "$COFFER_URL" --user "analyst-$run" --password-file "$tmp/pw" --cacert "$COFFER_CA"

step "4. Each organisation encrypts its CSV to its KMS key and pushes it (the plaintext stays here)"
# org-a: customers (id, region, age); org-b: purchases (id, spend in cents).
# 400 customers, 300 buyers, 200 of them customers of org-a; region
# "tiny" has 3 joined rows, under k = 5.
awk -v seed="$((0x$run))" 'BEGIN {
	srand(seed); split("north south east west centre", r, " ")
	print "id,region,age"
	for (i = 0; i < 400; i++)
		printf "%d,%s,%d\n", i, (i < 3 ? "tiny" : r[1 + int(rand() * 5)]), 18 + int(rand() * 70)
}' >"$tmp/customers.csv"
awk -v seed="$((0x$run + 1))" 'BEGIN {
	srand(seed)
	print "id,spend"
	for (i = 0; i < 300; i++)
		printf "%d,%d\n", (i < 200 ? i : 1000 + i), 100 + int(rand() * 20000)
}' >"$tmp/purchases.csv"
echo "customers.csv: $(($(wc -l <"$tmp/customers.csv") - 1)) rows; purchases.csv: $(($(wc -l <"$tmp/purchases.csv") - 1)) rows"
as "$a" dataset push customers "$tmp/customers.csv" --key "$(awk '/^key /{print $2}' "$tmp/$a.key")"
as "$b" dataset push purchases "$tmp/purchases.csv" --key "$(awk '/^key /{print $2}' "$tmp/$b.key")"
as analyst dataset list

step "5. The analyst writes the task and submits it"
recipient() { sed -n 's/.*"age_recipient": *"\([^"]*\)".*/\1/p' "$tmp/$1.pub.json"; }
meas=$("$COFFER_LAUNCH" measure --cores 1 --memory 1G --enclave-size 512M "$COFFER_ENCLAVE")
query="SELECT c.region, count(*) AS buyers, sum(p.spend) AS spend FROM c JOIN p USING (id) GROUP BY c.region ORDER BY c.region"
cat >"$tmp/task.json" <<EOF
{
  "version": 1,
  "name": "spend-by-region-$run",
  "inputs": {
    "c": {"dataset": "$a/customers"},
    "p": {"dataset": "$b/purchases"}
  },
  "function": {"kind": "sql", "query": "$query"},
  "outputs": [
    {"name": "result",
     "recipients": [{"org": "$a", "recipient": "$(recipient "$a")"},
                    {"org": "$b", "recipient": "$(recipient "$b")"}]}
  ],
  "policy": {"min_group_size": 5, "allow_rows": false},
  "tee": {"kinds": ["soft"], "measurements": ["$meas"]}
}
EOF
cat "$tmp/task.json"
as analyst task create --file "$tmp/task.json" | tee "$tmp/task.id"
id=$(cut -d' ' -f1 "$tmp/task.id")

step "6. Both owners review the task and approve its digest"
as "$a" task approve "$id" --yes
as "$b" task approve "$id" --yes 2>/dev/null

step "7. The analyst runs it: cofferd starts coffer-enclave in the soft TEE; the KMS releases the keys to it"
as analyst task run "$id" --wait --timeout 120

step "8. Both organisations download and decrypt the result"
for o in $a $b; do
	as "$o" task result "$id" result -o "$tmp/result-$o.csv"
done
echo "the result ($a):"
tr -d '\r' <"$tmp/result-$a.csv" | sed 's/^/  /'

step "9. Check: the same query on the plaintext with sqlite3, groups under 5 dropped"
sqlite3 "$tmp/plain.db" <<EOF
CREATE TABLE c (id INTEGER, region TEXT, age INTEGER);
CREATE TABLE p (id INTEGER, spend INTEGER);
.mode csv
.import --skip 1 $tmp/customers.csv c
.import --skip 1 $tmp/purchases.csv p
.headers on
.output $tmp/expected.csv
SELECT c.region, count(*) AS buyers, sum(p.spend) AS spend FROM c JOIN p USING (id)
 GROUP BY c.region HAVING count(*) >= 5 ORDER BY c.region;
EOF
for o in $a $b; do
	if tr -d '\r' <"$tmp/result-$o.csv" | cmp -s - "$tmp/expected.csv"; then
		echo "$o's result equals sqlite3 on the plaintext"
	else
		echo "sqlite3:"
		sed 's/^/  /' "$tmp/expected.csv"
		fail "$o's result differs from sqlite3's"
	fi
done
grep -q '^tiny,' "$tmp/expected.csv" && fail "the check itself is wrong: tiny is in the expectation"
tr -d '\r' <"$tmp/result-$a.csv" | grep -q '^tiny,' && fail "the group under 5 (tiny) reached the result"
echo "the region 'tiny' (3 buyers) was suppressed by the output policy"

step "10. The admin fetches cofferd's audit log and verifies it with the key from the host"
quiet admin audit fetch -o "$tmp/audit.log"
as admin audit verify "$tmp/audit.log" --key-file "$COFFER_AUDIT_PUB"
echo "what this demo did, as the log has it (actor, operation, object, result):"
sed -n "/\"object\":\"org\/$a\"/,\$p" "$tmp/audit.log" |
	sed -n 's/.*"actor":"\([^"]*\)".*"object":"\([^"]*\)","operation":"\([^"]*\)".*"result":"\([^"]*\)".*/  \1  \3  \2  \4/p'

step "11. The KMS's own audit log: the key release to the enclave, for this task's digest only"
digest=$(cut -d' ' -f2 "$tmp/task.id")
kms_pub=$(curl -s --cacert "$COFFER_KMS_CA" "$COFFER_KMS_URL/v1/info" | sed -n 's/.*"kms_pub":"\([^"]*\)".*/\1/p')
as admin audit verify "$COFFER_KMS_AUDIT" --key "$kms_pub"
grep -F "$digest" "$COFFER_KMS_AUDIT" |
	sed -n 's/.*"actor":"\([^"]*\)".*"object":"\([^"]*\)","operation":"\([^"]*\)".*"result":"\([^"]*\)".*/  \1  \3  \2  \4/p'

t1=$(date +%s.%N)
echo
awk -v t0="$t0" -v t1="$t1" -v a="$a" -v b="$b" -v id="$id" \
	'BEGIN { printf "demo: done in %.1f s; organisations %s and %s, task %s\n", t1 - t0, a, b, id }'
