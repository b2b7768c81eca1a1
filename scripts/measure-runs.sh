#!/usr/bin/env bash
# Runs kernel-lab tests RUNS times and prints the median, min and max of
# every `measure: <what> <seconds> s` line they print. Shared by the bench
# scripts (bench-tunnel.sh, bench-e2e.sh).
# Usage: scripts/measure-runs.sh TEST_FILE RUNS [TEST_FILTER...]
# Env: MEASURE_LOG_DIR keeps the run logs there (default: a temp folder).
set -euo pipefail
cd "$(dirname "$0")/.."
test_file="$1"
runs="$2"
shift 2

./scripts/install-test-deps.sh >/dev/null
./scripts/vm.sh setup >/dev/null

out="${MEASURE_LOG_DIR:-$(mktemp -d)}"
# The release build is what ships (opt-level z, LTO); a debug b4d starts
# about half a second slower in the emulated VM and skews every figure.
cargo test --release --test "$test_file" --no-run >/dev/null 2>&1
for i in $(seq 1 "$runs"); do
    echo "measure-runs: $test_file, run $i of $runs" >&2
    cargo test --release --test "$test_file" -- --nocapture --test-threads=1 "$@" >"$out/run$i.log" 2>&1 || {
        echo "measure-runs: run $i failed, see its log:" >&2
        tail -40 "$out/run$i.log" >&2
        exit 1
    }
done

python3 - "$out" <<'PY'
import re, statistics, sys, pathlib
times = {}
for log in sorted(pathlib.Path(sys.argv[1]).glob("run*.log")):
    for m in re.finditer(r"measure: (.+) ([0-9.]+) s$", log.read_text(), re.M):
        times.setdefault(m.group(1), []).append(float(m.group(2)))
print(f"{'what':<72} {'median':>8} {'min':>8} {'max':>8}  runs")
for what, values in times.items():
    print(f"{what:<72} {statistics.median(values):>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s  {len(values)}")
PY
