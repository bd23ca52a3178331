#!/bin/sh
# Starts the platform with embedded defaults. Today only the `coffer`
# client exists (see README's status table), so this shows what it can do.
set -eu
build=${1:-build}
echo "coffer: the platform daemons (cofferd, coffer-kms, coffer-launch) are not built yet;"
echo "coffer: the client is ready at $build/bin/coffer"
echo
exec "$build/bin/coffer" --help
