#!/bin/sh
# make bench: runs every benchmark listed below against one build
# directory (programs in BUILD/bin/). Each script gets BUILD as $1 and
# writes its report under bench/results/. Fails if any benchmark fails,
# after running them all.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

# One benchmark script (in bench/) per line.
benchmarks="
age.sh
soft_tee.sh
evidence.sh
kms.sh
joint-sql.sh
seed-inference.sh
"

if [ ! -d "$build/bin" ]; then
	echo "bench: no $build/bin (build first: make build)" >&2
	exit 1
fi

failed=""
for b in $benchmarks; do
	echo "== bench/$b"
	if ! sh "$here/$b" "$build"; then
		echo "bench: $b failed" >&2
		failed="$failed $b"
	fi
done

if [ -n "$failed" ]; then
	echo "bench: failed:$failed" >&2
	exit 1
fi
echo "bench: all passed"
