#!/usr/bin/env bash
# Installs what b4d's integration tests need (Debian 12 / Ubuntu), idempotently:
#   kea-dhcp6-server, dnsmasq-base, tcpdump, iproute2, procps, python3,
#   iputils-ping, shellcheck and busybox (the init script is checked and run
#   under ash), the DHCPv4 clients udhcpc (busybox), isc-dhcp-client and
#   dhcpcd-base, kea-admin (perfdhcp, for scripts/bench-dhcpv4.sh),
#   chromium and fonts-dejavu-core (the LuCI page test renders the view headless),
#   unbound, bind9-dnsutils (dig), ldnsutils (zone signing), dnsperf and valgrind
#   (bench-dns.sh; valgrind's callgrind counts instructions per query),
#   iperf3 (scripts/bench-e2e.sh: tunnel vs plain IPv6 throughput),
#   radvd (tests/lan6.rs: Router Advertisements from br-lan's prefix)
#   and the rustup components clippy and rustfmt.
# The DHCPv6 servers are only ever started by the tests, inside network
# namespaces; this script stops and disables their system services if the
# packages started any. Runs apt-get update only when something is missing.
# Usage: scripts/install-test-deps.sh   (as root, or with sudo available)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -E"
    else
        echo "install-test-deps: must run as root (or with sudo)" >&2
        exit 1
    fi
fi

say() { echo "install-test-deps: $*"; }

PACKAGES=(kea-dhcp6-server dnsmasq-base tcpdump iproute2 procps python3 iputils-ping shellcheck
    busybox udhcpc isc-dhcp-client dhcpcd-base kea-admin chromium fonts-dejavu-core
    unbound bind9-dnsutils ldnsutils dnsperf valgrind iperf3 radvd)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for p in "${PACKAGES[@]}"; do
    if installed "$p"; then
        say "$p already installed"
    else
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing: ${missing[*]}"
    say "apt-get update"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
    say "all packages present, nothing to install"
fi

# The tests start their own servers inside namespaces; make sure the
# packaged services are not running (and do not start at boot).
for svc in kea-dhcp6-server dnsmasq unbound radvd; do
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet "$svc" 2>/dev/null; then
            say "stopping service $svc"
            $SUDO systemctl stop "$svc" || true
        fi
        if systemctl is-enabled --quiet "$svc" 2>/dev/null; then
            say "disabling service $svc"
            $SUDO systemctl disable "$svc" || true
        fi
    elif [ -x "/etc/init.d/$svc" ]; then
        if $SUDO "/etc/init.d/$svc" status >/dev/null 2>&1; then
            say "stopping service $svc"
            $SUDO "/etc/init.d/$svc" stop || true
        fi
    fi
done

for tool in ip ss sysctl kea-dhcp6 dnsmasq tcpdump python3 ping shellcheck busybox udhcpc dhclient dhcpcd perfdhcp chromium \
    unbound dig ldns-signzone dnsperf iperf3 radvd; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1; then
        echo "install-test-deps: $tool still missing after install" >&2
        exit 1
    fi
done
say "tools: kea-dhcp6 $(PATH="$PATH:/usr/sbin" kea-dhcp6 -v), $(PATH="$PATH:/usr/sbin" dnsmasq --version | head -n1)"

if command -v rustup >/dev/null 2>&1; then
    for comp in clippy rustfmt; do
        if rustup component list --installed 2>/dev/null | grep -q "^${comp}"; then
            say "rustup component $comp already installed"
        else
            say "rustup component add $comp"
            rustup component add "$comp"
        fi
    done
else
    say "rustup not found, skipping clippy/rustfmt components"
fi

say "done"
