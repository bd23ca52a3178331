#!/bin/sh
# Runs each libFuzzer target for a bounded time (seconds, default 60),
# growing its corpus in a scratch copy so the committed corpus stays small.
# Crashes are written to build-test/fuzz-artifacts/.
set -eu
build=${1:-build-test}
seconds=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
ninja -C "$build" >/dev/null
art="$build/fuzz-artifacts"
mkdir -p "$art"
status=0
for target in "$build"/tests/fuzz/fuzz_*; do
	[ -x "$target" ] || continue
	name=$(basename "$target" | sed 's/^fuzz_//')
	seed="$src/tests/fuzz/corpus/$name"
	work="$build/fuzz-corpus/$name"
	mkdir -p "$work"
	echo "fuzz: $name for ${seconds}s"
	if ! ASAN_OPTIONS=detect_leaks=1 "$target" -max_total_time="$seconds" \
		-max_len=200000 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$art/$name-" -print_final_stats=1 \
		"$work" "$seed" >"$build/fuzz-$name.log" 2>&1; then
		echo "fuzz: $name FAILED, see $build/fuzz-$name.log and $art/" >&2
		status=1
	fi
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$build/fuzz-$name.log" | sed "s/^/  /"
done
exit $status
