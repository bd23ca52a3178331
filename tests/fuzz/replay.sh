#!/bin/sh
# Replays every file of a fuzz corpus through its target once: a crash,
# a sanitizer report or a leak fails the test.
set -eu
target=$1
corpus=$2
[ -d "$corpus" ] || { echo "replay: no corpus at $corpus" >&2; exit 1; }
n=$(find "$corpus" -type f | wc -l)
[ "$n" -gt 0 ] || { echo "replay: empty corpus $corpus" >&2; exit 1; }
exec "$target" -runs=0 "$corpus"
