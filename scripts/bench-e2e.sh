#!/usr/bin/env bash
# End-to-end figures from the DS-Lite lab in the kernel lab VM
# (tests/dslite_lab.rs, tests/support/dslite_lab.rs):
#   - bring-up: b4d start -> a LAN host (busybox udhcpc) has its DHCPv4
#     lease, resolves web.example.net through b4d's DNS proxy and fetches
#     it over HTTP through the softwire;
#   - every fault drill's re-convergence: from the fault's end (or the
#     signal that makes b4d notice it) to that HTTP fetch working again;
#   medians, min and max over RUNS runs (default 3) of the drills, and of
#     tests/tunnel.rs's renumbering / AAAA / option 64 drills;
#   - TCP throughput with iperf3 through the tunnel (LAN host -> B4 ->
#     AFTR -> IPv4 server) vs the plain IPv6 path (B4 -> ISP) in the same
#     VM and the same run, side by side with the ratio.
# The VM is software-emulated (TCG): absolute times and throughput are
# pessimistic; the ratio is what compares.
#   - one bring-up and one WAN flap line by line (b4d's log, udhcpc, ICMP on the CPE), to
#     show where the time goes;
# Usage: scripts/bench-e2e.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "re-convergence (LAN host HTTP fetch by name works again):"
MEASURE_LOG_DIR="$out" ./scripts/measure-runs.sh dslite_lab "$RUNS"
echo
echo "the WAN renumbering, AFTR AAAA change and option 64 change drills (tests/tunnel.rs; IPv4 working = ping through the tunnel):"
mkdir -p "$out/tunnel"
MEASURE_LOG_DIR="$out/tunnel" ./scripts/measure-runs.sh tunnel "$RUNS" wan_address_aftr_record

# Runs the #[ignore]d lab test $1 (release build), its output in $out/$2.log.
run_ignored() {
    echo "bench-e2e: $1" >&2
    cargo test --release --test dslite_lab -- --ignored --nocapture --exact "$1" \
        >"$out/$2.log" 2>&1 || {
        echo "bench-e2e: $1 failed:" >&2
        tail -40 "$out/$2.log" >&2
        exit 1
    }
}

run_ignored bring_up_and_wan_flap_timelines timeline
echo
echo "where the time goes (seconds; b4d log, udhcpc, ICMP/ND/TCP seen on the CPE, prober):"
sed -n "s/.*timeline: //p" "$out/timeline.log" | grep -v "ubus::" | cut -c1-190 || true

run_ignored throughput_tunnel_vs_plain_ipv6 iperf3
echo
grep -o "throughput: .*" "$out/iperf3.log" | sed 's/^\[vm\] //' || echo "throughput: no result"
