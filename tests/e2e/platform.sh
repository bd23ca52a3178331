# Sourced after lib.sh by the e2e scripts that need the whole platform:
# platform_up starts coffer-kms in the soft TEE and cofferd, and makes two
# organisations (org-a, org-b) with their keys registered at the KMS, a
# user each (org-admin) logged in under $tmp/a and $tmp/b, and the admin
# logged in under $tmp/adm. platform_down stops both servers.
# Needs $tmp and $bin; sets $kms_url, $cofferd_url, $ca, $launch, $coffer,
# $enclave, $kms_pid, $cofferd_pid, $state (cofferd's state directory).
# $cofferd, when set, is the cofferd program to run (default $bin/cofferd),
# $cofferd_launch the launcher it runs enclaves with (default $launch).
launch=$bin/coffer-launch
coffer=$bin/coffer
e2e=$bin/../tests/e2e
enclave=$e2e/coffer-enclave
kms_job=
cofferd_job=

platform_up() {
	plat=$tmp/platform
	export COFFER_PLATFORM_DIR=$plat
	"$launch" platform init --dir "$plat" 2>/dev/null
	port=$(free_port)
	kms_url=https://127.0.0.1:$port
	COFFER_HOME=$tmp/kmsadmin "$coffer" admin keygen >"$tmp/kmsadmin.pub"
	"$launch" run --platform-dir "$plat" -- "$e2e/coffer-kms" --state "$tmp/kms" \
		--admin-pub "$tmp/kmsadmin.pub" --platform-cert "$plat/cert.pem" \
		--listen "127.0.0.1:$port" >"$tmp/kms.log" 2>&1 &
	kms_job=$!
	wait_for_line "$tmp/kms.log" "listening on" "$kms_job" || exit 1
	kms_pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$tmp/kms.log" | head -1)

	for o in a b; do
		export COFFER_HOME=$tmp/$o
		"$coffer" attest "$kms_url" --platform-cert "$plat/cert.pem" >/dev/null
		"$coffer" org keygen --org "org-$o" >"$tmp/$o.pub.json"
		COFFER_HOME=$tmp/kmsadmin "$coffer" admin enroll-token --from "$tmp/$o.pub.json" >"$tmp/$o.token"
		"$coffer" org register --token "$tmp/$o.token" >/dev/null
		"$coffer" key create --json >"$tmp/$o.key.json"
	done
	unset COFFER_HOME

	printf 'admin-password-e2e-0123\n' >"$tmp/adminpw"
	printf 'user-password-e2e-0123\n' >"$tmp/pw"
	state=$tmp/cofferd
	"${cofferd:-$bin/cofferd}" --state "$state" --listen 127.0.0.1:0 --ready-fd 3 \
		--admin-password-file "$tmp/adminpw" --kms "$kms_url" --kms-ca "$tmp/a/kms-ca.pem" \
		--platform-cert "$plat/cert.pem" --launch "${cofferd_launch:-$launch}" --enclave "$enclave" \
		>"$tmp/cofferd.log" 2>&1 3>"$tmp/cofferd.port" &
	cofferd_job=$!
	cofferd_pid=$cofferd_job
	i=0
	until [ -s "$tmp/cofferd.port" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$cofferd_job" 2>/dev/null; then
			not_ok "cofferd did not start: $(tail -5 "$tmp/cofferd.log")"
			exit 1
		fi
		sleep 0.1
	done
	cofferd_url=https://127.0.0.1:$(head -1 "$tmp/cofferd.port")
	ca=$state/tls.crt

	export COFFER_HOME=$tmp/adm
	"$coffer" login "$cofferd_url" --user admin --password-file "$tmp/adminpw" --cacert "$ca" >/dev/null
	for o in a b; do
		"$coffer" org create "org-$o" --from "$tmp/$o.pub.json" >/dev/null
		"$coffer" user create "user-$o" --org "org-$o" --role org-admin --password-file "$tmp/pw" >/dev/null
		COFFER_HOME=$tmp/$o "$coffer" login "$cofferd_url" --user "user-$o" --password-file "$tmp/pw" \
			--cacert "$ca" >/dev/null
	done
	"$coffer" user create analyst --org org-a --role analyst --password-file "$tmp/pw" >/dev/null
	mkdir -p "$tmp/an"
	cp "$tmp/a/kms-ca.pem" "$tmp/an/" 2>/dev/null || true
	COFFER_HOME=$tmp/an "$coffer" login "$cofferd_url" --user analyst --password-file "$tmp/pw" \
		--cacert "$ca" >/dev/null
	unset COFFER_HOME
}

platform_down() {
	stop_pid "$cofferd_job"
	cofferd_job=
	stop_pid "$kms_job"
	kms_job=
}

# task_json FILE NAME QUERY K MEASUREMENT: a task over org-a/data and
# org-b/data whose output "result" goes to both organisations.
task_json() {
	python3 - "$tmp" "$@" <<'PY'
import json, sys
tmp, out, name, query, k, meas = sys.argv[1:]
pub = {o: json.load(open(f"{tmp}/{o}.pub.json")) for o in "ab"}
task = {"version": 1, "name": name,
    "inputs": {"a": {"dataset": "org-a/data"}, "b": {"dataset": "org-b/data"}},
    "function": {"kind": "sql", "query": query},
    "outputs": [{"name": "result", "recipients": [
        {"org": "org-a", "recipient": pub["a"]["age_recipient"]},
        {"org": "org-b", "recipient": pub["b"]["age_recipient"]}]}],
    "policy": {"min_group_size": int(k), "allow_rows": False},
    "tee": {"kinds": ["soft"], "measurements": [meas]}}
json.dump(task, open(out, "w"), indent=1)
PY
}
