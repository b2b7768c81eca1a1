#!/usr/bin/env bash
# End-to-end figures from the DS-Lite lab in the kernel lab VM
# (tests/dslite_lab.rs, tests/support/dslite_lab.rs):
#   - bring-up: b4d start -> a LAN host (busybox udhcpc) has its DHCPv4
#     lease, resolves web.example.net through b4d's DNS proxy and fetches
#     it over HTTP through the softwire;
#   - every fault drill's re-convergence: from the fault's end (or the
#     signal that makes b4d notice it) to that HTTP fetch working again;
#   medians, min and max over RUNS runs (default 3) of the drills;
#   - TCP throughput with iperf3 through the tunnel (LAN host -> B4 ->
#     AFTR -> IPv4 server) vs the plain IPv6 path (B4 -> ISP) in the same
#     VM and the same run, side by side with the ratio.
# The VM is software-emulated (TCG): absolute times and throughput are
# pessimistic; the ratio is what compares.
# Usage: scripts/bench-e2e.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"

./scripts/install-test-deps.sh >/dev/null
./scripts/vm.sh setup >/dev/null

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo test --test dslite_lab --no-run >/dev/null 2>&1
for i in $(seq 1 "$RUNS"); do
    echo "bench-e2e: drills, run $i of $RUNS" >&2
    cargo test --test dslite_lab -- --nocapture --test-threads=1 >"$out/run$i.log" 2>&1 || {
        echo "bench-e2e: run $i failed, see its log:" >&2
        tail -40 "$out/run$i.log" >&2
        exit 1
    }
done
echo "bench-e2e: iperf3, tunnel vs plain IPv6" >&2
cargo test --test dslite_lab -- --ignored --nocapture --exact throughput_tunnel_vs_plain_ipv6 \
    >"$out/iperf3.log" 2>&1 || {
    echo "bench-e2e: iperf3 run failed:" >&2
    tail -40 "$out/iperf3.log" >&2
    exit 1
}

python3 - "$out" <<'PY'
import re, statistics, sys, pathlib
times = {}
for log in sorted(pathlib.Path(sys.argv[1]).glob("run*.log")):
    for m in re.finditer(r"measure: (.+?) ([0-9.]+) s", log.read_text()):
        times.setdefault(m.group(1), []).append(float(m.group(2)))
print(f"{'re-convergence (LAN host HTTP fetch by name works again)':<72} {'median':>8} {'min':>8} {'max':>8}  runs")
for what, values in times.items():
    print(f"{what:<72} {statistics.median(values):>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s  {len(values)}")
text = (pathlib.Path(sys.argv[1]) / "iperf3.log").read_text()
m = re.search(r"throughput: .*", text)
print()
print(m.group(0) if m else "throughput: no result")
PY
