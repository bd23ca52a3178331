#!/bin/sh
# Builds the sanitizer build and runs every test: cmocka unit tests, e2e
# scripts and fuzz-corpus replays. Ends with one line "N passed, N failed".
set -u
build=${1:-build-test}

if ! ninja -C "$build" >"$build/ninja.log" 2>&1; then
	cat "$build/ninja.log"
	echo "0 passed, 1 failed (build)"
	exit 1
fi

# ASan/UBSan: any report aborts the test; leaks count as failures.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

meson test -C "$build" --no-rebuild --print-errorlogs --num-processes "$(nproc)" \
	>"$build/test.log" 2>&1
status=$?
# Show the per-test lines and any failure logs, not meson's banner.
grep -E '^ *[0-9]+/[0-9]+ |FAIL|ERROR|not ok' "$build/test.log" | sed 's/^ *//' | head -200

python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
            passed += 1
        else:
            failed += 1
            print("FAILED:", r.get("name"), r.get("result"))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
py=$?
[ $status -eq 0 ] && [ $py -eq 0 ]
