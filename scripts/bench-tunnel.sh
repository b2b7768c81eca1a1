#!/usr/bin/env bash
# Tunnel bring-up and re-convergence times, measured on a real kernel in the
# kernel lab VM (scripts/vm.sh): runs the tunnel tests RUNS times (default 3)
# and prints the median, min and max of every `measure:` line they print:
#   - bring-up: DHCPv6 lease acquired -> tunnel, 192.0.0.2/29 and default route installed;
#   - WAN address change, AFTR AAAA change, DHCPv6 option 64 change:
#     from the change to IPv4 working again from the LAN host, and inside b4d
#     from the DHCPv6 Reply to the tunnel moved;
#   - restart after kill -9 until the adopted tunnel is confirmed.
# The VM is software-emulated (TCG), so absolute times are pessimistic.
# Usage: scripts/bench-tunnel.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"

./scripts/install-test-deps.sh >/dev/null
./scripts/vm.sh setup >/dev/null

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo test --test tunnel --no-run >/dev/null 2>&1
for i in $(seq 1 "$RUNS"); do
    echo "bench-tunnel: run $i of $RUNS" >&2
    cargo test --test tunnel -- --nocapture --test-threads=1 \
        b4_carries wan_address_aftr_record >"$out/run$i.log" 2>&1 || {
        echo "bench-tunnel: run $i failed, see its log:" >&2
        tail -40 "$out/run$i.log" >&2
        exit 1
    }
done

python3 - "$out" <<'EOF'
import re, statistics, sys, pathlib
times = {}
for log in sorted(pathlib.Path(sys.argv[1]).glob("run*.log")):
    for m in re.finditer(r"measure: (.+?) ([0-9.]+) s", log.read_text()):
        times.setdefault(m.group(1), []).append(float(m.group(2)))
print(f"{'what':<72} {'median':>8} {'min':>8} {'max':>8}  runs")
for what, values in times.items():
    print(f"{what:<72} {statistics.median(values):>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s  {len(values)}")
EOF
