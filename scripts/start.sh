#!/bin/sh
# Starts the platform on this host with embedded defaults and stays in the
# foreground until Ctrl-C (SIGINT) or SIGTERM, which stop what it started.
#
# The first start makes what is missing, once: the soft TEE platform key,
# the platform admin's key (it signs organisations' enrollment tokens for
# the KMS), the KMS's sealed state, and cofferd's state (database, blobs,
# TLS certificate, audit key, and the admin's first password). Later
# starts reuse all of it; nothing is re-initialised.
#
#   coffer-kms  in the soft TEE   https://127.0.0.1:8444   STATE/kms
#   cofferd     control plane     https://127.0.0.1:8443   STATE/cofferd
#
#   COFFER_PLATFORM_DIR  platform key (default /var/lib/coffer/platform)
#   COFFER_STATE         everything else (default /var/lib/coffer)
#   COFFER_LISTEN        cofferd's HOST:PORT (default 127.0.0.1:8443)
#   COFFER_KMS_LISTEN    the KMS's HOST:PORT (default 127.0.0.1:8444)
#
# The KMS's state is sealed to its measurement, which covers its program
# and its arguments (docs/soft-tee.md): a rebuilt coffer-kms, or another
# COFFER_KMS_LISTEN or COFFER_STATE, cannot open it. This script records
# the measurement at the first start and refuses, saying why, rather than
# start a KMS that cannot read its keys.
#
# Services already answering on their ports are reused, not started twice.
# What the clients need is written to STATE/start.env (scripts/demo.sh
# reads it).
set -eu
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
dir=${COFFER_PLATFORM_DIR:-/var/lib/coffer/platform}
state=${COFFER_STATE:-/var/lib/coffer}
listen=${COFFER_LISTEN:-127.0.0.1:8443}
kms_listen=${COFFER_KMS_LISTEN:-127.0.0.1:8444}
url=https://$listen
kms_url=https://$kms_listen

say() { echo "coffer: $*"; }
die() {
	echo "coffer: $*" >&2
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	say "not root: the soft TEE (coffer-launch) needs root; nothing started"
	exit 1
fi
for p in coffer coffer-launch coffer-kms cofferd coffer-enclave; do
	[ -x "$bin/$p" ] || die "$bin/$p is missing: run make build"
done
case $state in /*) ;; *) state=$(pwd)/$state ;; esac
case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
# cofferd runs enclaves with coffer-launch, which finds the platform here.
export COFFER_PLATFORM_DIR="$dir"

# --- what is made once ---
if [ ! -f "$dir/key.pem" ]; then
	"$bin/coffer-launch" platform init --dir "$dir" >/dev/null
fi
mkdir -p "$state" "$state/service"
chmod 700 "$state" "$state/service"
if [ ! -f "$state/admin.key" ]; then
	"$bin/coffer" admin keygen --out "$state/admin.key" >"$state/admin.pub"
	say "platform admin key made: $state/admin.key (public: $state/admin.pub)"
fi

# answers URL: prints the HTTP status of GET URL (000: nothing answers).
answers() {
	curl -s -k -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}
# wait_file FILE PID NAME LOG: until FILE is non-empty; fails if PID died.
wait_file() {
	i=0
	until [ -s "$1" ]; do
		i=$((i + 1))
		if ! kill -0 "$2" 2>/dev/null || [ $i -gt 300 ]; then
			echo "coffer: $3 did not start; the end of its log ($4):" >&2
			tail -20 "$4" >&2
			return 1
		fi
		sleep 0.1
	done
}

kms_pid=
cofferd_pid=
started=
stop() {
	trap - INT TERM HUP
	# cofferd first: it kills its running enclaves as it stops.
	for p in $cofferd_pid $kms_pid; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $cofferd_pid $kms_pid; do
		wait "$p" 2>/dev/null || true
	done
}
trap 'stop; exit 1' EXIT
trap 'echo; say "stopping"; stop; say "stopped; the state stays in $state"; trap - EXIT; exit 0' INT TERM HUP

# --- coffer-kms in the soft TEE ---
# Its arguments are measured: keep them the same from start to start.
# Only called in a subshell ($(...) or &), which it replaces (exec), so
# that $! is coffer-launch itself.
kms() {
	exec "$@" "$bin/coffer-kms" --state "$state/kms" --admin-pub "$state/admin.pub" \
		--platform-cert "$dir/cert.pem" --listen "$kms_listen"
}
meas=$(kms "$bin/coffer-launch" measure)
code=$(answers "$kms_url/v1/info")
if [ "$code" != 000 ]; then
	running=$(curl -s -k --max-time 2 "$kms_url/v1/info" |
		sed -n 's/.*"measurement":"\([0-9a-f]*\)".*/\1/p')
	[ -n "$running" ] || die "$kms_listen answers, but not as coffer-kms (HTTP $code): set COFFER_KMS_LISTEN"
	# The measurement covers --state and --listen: equal means this state's KMS.
	if [ "$running" != "$meas" ]; then
		die "another coffer-kms answers on $kms_url (measurement $running),
not the one of $state ($meas): stop it, or set COFFER_KMS_LISTEN"
	fi
	say "coffer-kms of $state already answers on $kms_url: using it"
else
	if [ -f "$state/kms/kms.db.sealed" ] && [ -f "$state/kms.measurement" ] &&
		[ "$(cat "$state/kms.measurement")" != "$meas" ]; then
		die "the KMS state in $state/kms is sealed to measurement
  $(cat "$state/kms.measurement") ($(cat "$state/kms.args" 2>/dev/null || echo ?))
but this coffer-kms with these arguments measures
  $meas (listen $kms_listen)
A rebuilt coffer-kms or another COFFER_KMS_LISTEN/COFFER_STATE cannot open it.
Run the KMS that made it, or move $state/kms away to start afresh (its keys are
then lost, and the datasets encrypted to them with it)."
	fi
	log=$state/kms.log
	[ -f "$log" ] && mv -f "$log" "$log.1"
	kms "$bin/coffer-launch" run --platform-dir "$dir" -- >"$log" 2>&1 &
	kms_pid=$!
	i=0
	until grep -q "listening on" "$log" 2>/dev/null; do
		i=$((i + 1))
		if ! kill -0 "$kms_pid" 2>/dev/null || [ $i -gt 300 ]; then
			echo "coffer: coffer-kms did not start; the end of its log ($log):" >&2
			tail -20 "$log" >&2
			if grep -q "sealed state" "$log"; then
				echo "coffer: its sealed state cannot be opened by this coffer-kms with these" \
					"arguments (another build, COFFER_KMS_LISTEN or COFFER_STATE?)" >&2
			fi
			exit 1
		fi
		sleep 0.1
	done
	# It opened (or made) its sealed state under this measurement.
	echo "$meas" >"$state/kms.measurement"
	echo "listen $kms_listen" >"$state/kms.args"
	started="$started coffer-kms"
	say "coffer-kms runs in the soft TEE on $kms_url (log: $log)"
	say "  its measurement: $meas"
fi

# Verify the KMS as every client does, and keep its CA for cofferd.
if ! COFFER_HOME=$state/service "$bin/coffer" attest "$kms_url" --platform-cert "$dir/cert.pem" \
	>"$state/service/attest.txt" 2>&1; then
	cat "$state/service/attest.txt" >&2
	die "coffer attest $kms_url failed"
fi
kms_ca=$state/service/kms-ca.pem

# --- cofferd ---
cstate=$state/cofferd
code=$(answers "$url/v1/me")
if [ "$code" != 000 ]; then
	[ "$code" = 401 ] || die "$listen answers, but not as cofferd (HTTP $code for /v1/me): set COFFER_LISTEN"
	# Its certificate is this state's own: anything else is another cofferd.
	if ! curl -s -o /dev/null --max-time 2 --cacert "$cstate/tls.crt" "$url/v1/me" 2>/dev/null; then
		die "another cofferd answers on $url, not the one of $cstate: stop it, or set COFFER_LISTEN"
	fi
	say "cofferd of $cstate already answers on $url: using it"
else
	log=$state/cofferd.log
	[ -f "$log" ] && mv -f "$log" "$log.1"
	rm -f "$state/cofferd.ready"
	"$bin/cofferd" --state "$cstate" --listen "$listen" --ready-fd 3 \
		--kms "$kms_url" --kms-ca "$kms_ca" --platform-cert "$dir/cert.pem" \
		--launch "$bin/coffer-launch" --enclave "$bin/coffer-enclave" \
		>"$log" 2>&1 3>"$state/cofferd.ready" &
	cofferd_pid=$!
	wait_file "$state/cofferd.ready" "$cofferd_pid" cofferd "$log" || exit 1
	started="$started cofferd"
	say "cofferd runs on $url (log: $log)"
fi

cat >"$state/start.env" <<EOF
# Written by scripts/start.sh: where the platform started from $state answers.
COFFER_URL='$url'
COFFER_CA='$cstate/tls.crt'
COFFER_KMS_URL='$kms_url'
COFFER_KMS_CA='$kms_ca'
COFFER_PLATFORM_CERT='$dir/cert.pem'
COFFER_ADMIN_KEY='$state/admin.key'
COFFER_ADMIN_PASSWORD_FILE='$cstate/admin.password'
COFFER_AUDIT_PUB='$cstate/audit.pub'
COFFER_KMS_AUDIT='$state/kms/audit.log'
COFFER_ENCLAVE='$bin/coffer-enclave'
COFFER_LAUNCH='$bin/coffer-launch'
EOF

enclave_meas=$("$bin/coffer-launch" measure --cores 1 --memory 1G --enclave-size 512M "$bin/coffer-enclave")
if [ -f "$cstate/admin.password" ]; then
	pw="the admin's first password is in $cstate/admin.password (user admin)"
	pwopt="--password-file $cstate/admin.password"
else
	pw="user admin, with the password cofferd was first started with"
	pwopt=
fi
cat <<EOF

  API (cofferd)    $url
  its CA           $cstate/tls.crt   (coffer login ... --cacert, curl --cacert)
  login            $pw
  KMS              $kms_url   (clients: coffer attest $kms_url --platform-cert $dir/cert.pem)
  KMS admin key    $state/admin.key   (signs enrollment tokens)
  enclave          coffer-enclave, measurement for tasks (1 core, 1G, 512M):
                   $enclave_meas
  web portal       not built yet (README)

  First steps:     $bin/coffer login $url --user admin --cacert $cstate/tls.crt \\
                       $pwopt
  Two-party demo:  make demo   (docs/quickstart.md)
EOF

if [ -z "$started" ]; then
	trap - EXIT INT TERM HUP
	say "cofferd and coffer-kms were already running; nothing started twice (stop them where they run)"
	exit 0
fi
say "running:$started; Ctrl-C stops it (the state stays in $state)"

# Stay in the foreground; a service that dies ends the script (non-zero).
while :; do
	for p in $kms_pid $cofferd_pid; do
		if ! kill -0 "$p" 2>/dev/null; then
			rc=0
			wait "$p" 2>/dev/null || rc=$?
			if [ "$p" = "$kms_pid" ]; then name=coffer-kms log=kms.log; kms_pid=; else
				name=cofferd log=cofferd.log; cofferd_pid=; fi
			say "$name exited unexpectedly (status $rc); see $state/$log" >&2
			exit 1
		fi
	done
	sleep 1 &
	wait $! || true
done
