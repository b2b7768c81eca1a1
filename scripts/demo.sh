#!/usr/bin/env bash
# The end-to-end DS-Lite demo: boots the kernel lab VM and builds, inside
# it, an ISP (kea-dhcp6 with IA_NA/IA_PD/DNS/AFTR-Name, dnsmasq DNS, a
# kernel AFTR = ip6tnl + nftables masquerade), an IPv4-only web server on
# 198.51.100.10, and a CPE running b4d with br-lan and an IPv6-only WAN.
# A LAN host gets its IPv4 lease from b4d with busybox udhcpc, resolves
# web.example.net through b4d's DNS proxy and fetches it over HTTP through
# the tunnel; then b4d's `ubus call b4 status` report is shown.
#
# The demo is the #[ignore]d test `demo` in tests/dslite_lab.rs (the lab
# code is shared with the drills). Everything runs in namespaces inside a
# throwaway VM; nothing touches this machine's network.
# Needs root. On a fresh Debian 12 it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it installs packages and boots a VM)"; exit 1; }
echo "== installing test dependencies (apt, only what is missing)"
./scripts/install-test-deps.sh >/dev/null
echo "== preparing the kernel lab VM (scripts/vm.sh setup)"
./scripts/vm.sh setup >/dev/null
echo "== building b4d and the lab (cargo, a few minutes the first time)"
cargo test --test dslite_lab --no-run --quiet 2>&1 | grep -v '^ *Executable' || true
echo "== booting the VM and running the demo"
# Only the demo's own lines (libtest's and the VM wrapper's bookkeeping
# are dropped; the full transcript is kept under target/test-output/).
set +e
cargo test --quiet --test dslite_lab -- --ignored --nocapture --exact demo 2>&1 |
    sed -u -n -e 's/^\[vm\] //' -e '/^\(==\|   \|  \|[{}]\)/p' -e '/panicked\|FAILED\|failed/p'
status=${PIPESTATUS[0]}
set -e
[ "$status" = 0 ] || { echo "demo: FAILED (exit $status); see target/test-output/dslite_lab/"; exit "$status"; }
