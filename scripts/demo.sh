#!/usr/bin/env bash
# A scripted demo of b4d's WAN side: an "ISP" network namespace runs
# kea-dhcp6 handing out an address, a /56 prefix, DNS servers and an AFTR
# name (option 64); a "CPE" namespace runs b4d on its WAN. You see b4d
# acquire the lease, renew it on SIGUSR1, and release it on SIGTERM.
# Everything happens inside two namespaces this script creates and removes.
# Needs root. Installs what it needs (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)"; exit 1; }
./scripts/install-test-deps.sh >/dev/null
echo "== building b4d (release)"
cargo build --release --quiet
B4D="$PWD/target/release/b4d"

ISP="b4d-demo-isp-$$"
CPE="b4d-demo-cpe-$$"
WORK="$(mktemp -d /tmp/b4d-demo.XXXXXX)"
B4D_PID=""
KEA_PID=""
cleanup() {
    [ -n "$B4D_PID" ] && kill "$B4D_PID" 2>/dev/null || true
    [ -n "$KEA_PID" ] && kill "$KEA_PID" 2>/dev/null || true
    sleep 0.3
    ip netns del "$ISP" 2>/dev/null || true
    ip netns del "$CPE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== topology: [$CPE] wan <--veth--> eth0 [$ISP]"
ip netns add "$ISP"
ip netns add "$CPE"
ip link add wan netns "$CPE" type veth peer name eth0 netns "$ISP"
ip -n "$CPE" link set lo up
ip -n "$ISP" link set lo up
ip netns exec "$ISP" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip -n "$ISP" link set eth0 up
ip -n "$CPE" link set wan address 02:00:00:00:b4:d0
ip -n "$CPE" link set wan up

cat >"$WORK/kea.json" <<EOF
{ "Dhcp6": {
    "interfaces-config": { "interfaces": [ "eth0" ] },
    "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea.leases" },
    "server-id": { "type": "EN", "enterprise-id": 2495, "identifier": "0b4d", "persist": false },
    "renew-timer": 20, "rebind-timer": 32, "preferred-lifetime": 40, "valid-lifetime": 60,
    "option-data": [
        { "name": "dns-servers", "data": "2001:db8::53" },
        { "name": "domain-search", "data": "isp.example" },
        { "name": "aftr-name", "data": "aftr.isp.example", "always-send": true }
    ],
    "subnet6": [ {
        "id": 1, "subnet": "2001:db8:1::/64", "interface": "eth0",
        "pools": [ { "pool": "2001:db8:1::100-2001:db8:1::1ff" } ],
        "pd-pools": [ { "prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56 } ]
    } ],
    "loggers": [ { "name": "kea-dhcp6", "severity": "INFO",
                   "output_options": [ { "output": "$WORK/kea.log" } ] } ]
} }
EOF
echo "== ISP: starting kea-dhcp6 (address pool, /56 prefixes, DNS, AFTR-Name aftr.isp.example)"
KEA_PIDFILE_DIR="$WORK" KEA_LOCKFILE_DIR="$WORK" \
    ip netns exec "$ISP" kea-dhcp6 -c "$WORK/kea.json" >/dev/null 2>&1 &
KEA_PID=$!
for _ in $(seq 50); do grep -q DHCP6_STARTED "$WORK/kea.log" 2>/dev/null && break; sleep 0.1; done

cat >"$WORK/b4d.uci" <<EOF
config globals 'globals'
	option state_dir '$WORK/state'

config wan 'wan'
	option device 'wan'
	option prefix_hint '56'
EOF
echo "== CPE: b4d check-config"
"$B4D" check-config --config "$WORK/b4d.uci" | sed -n '/config wan/,/^$/p'

echo "== CPE: starting b4d on wan (its log follows)"
ip netns exec "$CPE" "$B4D" --foreground --config "$WORK/b4d.uci" 2>&1 | sed -u 's/^/  | /' &
sleep 0.2
B4D_PID=$(ip netns pids "$CPE" | head -n1)
sleep 6
echo "== asking b4d to renew now (SIGUSR1)"
kill -USR1 "$B4D_PID"
sleep 2
echo "== stopping b4d (SIGTERM): it releases the lease"
kill -TERM "$B4D_PID"
for _ in $(seq 50); do kill -0 "$B4D_PID" 2>/dev/null || break; sleep 0.1; done
B4D_PID=""
echo "== what the ISP's server saw"
grep -oE "DHCP6_(LEASE_ALLOC|PD_LEASE_ALLOC|LEASE_RENEW|PD_LEASE_RENEW|RELEASE_NA|RELEASE_PD)[^,]*" "$WORK/kea.log" | sed 's/^/  kea: /'
echo "== demo done; namespaces removed"
