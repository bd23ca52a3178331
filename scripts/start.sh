#!/bin/sh
# Starts what exists of the platform with embedded defaults: this host's
# soft TEE platform key (created once), the platform admin's key (created
# once), and coffer-kms in the soft TEE on https://127.0.0.1:8443, then
# shows how a client attests it. cofferd arrives with its issue (README).
#
#   COFFER_PLATFORM_DIR  platform key (default /var/lib/coffer/platform)
#   COFFER_STATE         KMS state and admin key (default /var/lib/coffer)
#   COFFER_KMS_LISTEN    default 127.0.0.1:8443
set -eu
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
dir=${COFFER_PLATFORM_DIR:-/var/lib/coffer/platform}
state=${COFFER_STATE:-/var/lib/coffer}
listen=${COFFER_KMS_LISTEN:-127.0.0.1:8443}

echo "coffer: programs in $bin: $(find "$bin" -maxdepth 1 -type f -perm -u+x -printf '%f ' | sort)"
if [ "$(id -u)" -ne 0 ]; then
	echo "coffer: not root: the soft TEE (coffer-launch) needs root; nothing started"
	exec "$bin/coffer" --help
fi

if [ ! -f "$dir/key.pem" ]; then
	"$bin/coffer-launch" platform init --dir "$dir"
fi
fp=$("$bin/coffer-launch" platform cert --dir "$dir" | openssl x509 -noout -fingerprint -sha256)
echo "coffer: soft TEE platform ready in $dir ($fp)"

mkdir -p "$state"
chmod 700 "$state"
if [ ! -f "$state/admin.key" ]; then
	"$bin/coffer" admin keygen --out "$state/admin.key" >"$state/admin.pub"
	echo "coffer: platform admin key made: $state/admin.key (public: $state/admin.pub)"
fi

url="https://$listen"
if curl -s --max-time 2 -k "$url/v1/info" >/dev/null 2>&1; then
	echo "coffer: coffer-kms already answers on $url"
else
	log=$state/kms.log
	nohup "$bin/coffer-launch" run --platform-dir "$dir" -- "$bin/coffer-kms" \
		--state "$state/kms" --admin-pub "$state/admin.pub" \
		--platform-cert "$dir/cert.pem" --listen "$listen" >"$log" 2>&1 &
	i=0
	until grep -q "listening on" "$log" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "coffer: coffer-kms did not start; its log ($log):" >&2
			cat "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "coffer: coffer-kms runs in the soft TEE on $url (log: $log)"
	grep "measurement=" "$log" | sed 's/.*measurement=/coffer: its measurement: /'
fi
cat <<EOF

Next steps (docs/kms.md):
  $bin/coffer attest $url                      # verify the KMS, pin its CA
  $bin/coffer org keygen --org NAME            # as an organisation
  $bin/coffer admin enroll-token --key $state/admin.key --from ORG.json
  $bin/coffer org register --token TOKEN.json
  $bin/coffer key create                       # then: age -r RECIPIENT ...
Stop the KMS with: pkill -f 'coffer-kms --state $state/kms'
EOF
