#!/bin/sh
# Starts what exists of the platform with embedded defaults: this host's
# soft TEE platform key (created once), then shows the client. The
# daemons (cofferd, coffer-kms) arrive with their issues; see README.
set -eu
build=${1:-build}
bin=$build/bin
dir=${COFFER_PLATFORM_DIR:-/var/lib/coffer/platform}

echo "coffer: programs in $bin: $(find "$bin" -maxdepth 1 -type f -perm -u+x -printf '%f ' | sort)"
if [ "$(id -u)" -eq 0 ]; then
	if [ ! -f "$dir/key.pem" ]; then
		"$bin/coffer-launch" platform init --dir "$dir"
	fi
	fp=$("$bin/coffer-launch" platform cert --dir "$dir" | openssl x509 -noout -fingerprint -sha256)
	echo "coffer: soft TEE platform ready in $dir ($fp)"
	echo "coffer: run a program in the soft TEE:  $bin/coffer-launch run -- PROGRAM [ARGS]"
else
	echo "coffer: not root: the soft TEE launcher (coffer-launch) needs root; skipping its platform key"
fi
echo "coffer: cofferd and coffer-kms are not built yet (issues 5 and 6)"
echo
exec "$bin/coffer" --help
