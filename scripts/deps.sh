#!/bin/sh
# Installs the Debian packages coffer needs to build, test and run.
# Silent when everything is present; runs `apt-get update` only when
# something is missing, so repeated `make` calls cost nothing.
set -eu

PACKAGES="
meson ninja-build pkg-config clang llvm libclang-rt-14-dev
libssl-dev libjansson-dev libcmocka-dev zlib1g-dev libsqlite3-dev
age openssl curl sqlite3
libmimalloc-dev libseccomp-dev libevent-dev libcurl4-openssl-dev libargon2-dev
redis-server redis-tools gdb
libxgboost-dev
"

missing=""
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
