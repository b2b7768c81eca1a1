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

exec ./scripts/measure-runs.sh tunnel "$RUNS" b4_carries wan_address_aftr_record
