#!/usr/bin/env bash
# DHCPv4 server benchmark: b4d vs dnsmasq, same machine, same run, same load.
#
# Topology: two network namespaces joined by a veth pair. The "server"
# namespace (10.0.0.1/16 on eth0) runs one server at a time; the "client"
# namespace (10.0.0.2/16) runs perfdhcp (Debian package kea-admin), which
# simulates CLIENTS distinct clients behind a relay (giaddr 10.0.0.2) and
# drives full DISCOVER-OFFER-REQUEST-ACK exchanges at up to RATE per second
# for DURATION seconds. Lease files live on tmpfs, as /tmp does on OpenWrt.
#
# Two measurements per server:
#   leases/s   ACKs perfdhcp received per second at the saturating RATE
#   peak RSS   VmHWM of the server after a second, unsaturated phase that
#              both servers complete (STEADY_RATE/s for CLIENTS clients), so
#              both hold the same number of leases when RSS is compared
#
# dnsmasq runs with --no-ping (b4d does not ping before offering either) and
# --quiet-dhcp; b4d with log_level 'warn'. Both are authoritative.
# Usage (root): scripts/bench-dhcpv4.sh  [env: CLIENTS RATE DURATION STEADY_RATE]
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-1000}"
RATE="${RATE:-20000}"
SECONDS_RUN="${DURATION:-10}"
STEADY_RATE="${STEADY_RATE:-200}"

for tool in perfdhcp dnsmasq ip; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null; then
        echo "bench-dhcpv4: $tool missing; run scripts/install-test-deps.sh" >&2
        exit 1
    fi
done
export PATH="$PATH:/usr/sbin:/sbin"

echo "== building b4d (release)"
cargo build --release --quiet
B4D="$PWD/target/release/b4d"

SRV="b4bench-srv-$$"
CLI="b4bench-cli-$$"
WORK="$(mktemp -d /dev/shm/b4bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$SRV"
ip netns add "$CLI"
ip link add eth0 netns "$SRV" type veth peer name eth0 netns "$CLI"
ip -n "$SRV" addr add 10.0.0.1/16 dev eth0
ip -n "$CLI" addr add 10.0.0.2/16 dev eth0
for ns in "$SRV" "$CLI"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done

cat >"$WORK/b4d.uci" <<EOF
config globals 'globals'
	option log_level 'warn'
	option state_dir '$WORK/state'
config wan 'wan'
	option device 'wan0'
	option dhcpv6 'off'
	option aftr '2001:db8::1'
config tunnel 'tunnel'
	option enabled '0'
config lan 'lan'
	option device 'eth0'
	option ipaddr '10.0.0.1'
	option netmask '255.255.0.0'
	option dns_proxy '0'
	option dhcp_start '100'
	option dhcp_limit '60000'
	option lease_time '12h'
	option lease_file '$WORK/b4d.leases'
EOF

start_server() {
    rm -f "$WORK"/*.leases
    case "$1" in
    b4d)
        ip netns exec "$SRV" "$B4D" --foreground --config "$WORK/b4d.uci" \
            >"$WORK/b4d.log" 2>&1 &
        ;;
    dnsmasq)
        ip netns exec "$SRV" dnsmasq --no-daemon --conf-file=/dev/null --port=0 \
            --interface=eth0 --bind-interfaces --user=root --pid-file= \
            --dhcp-range=10.0.0.100,10.0.234.199,255.255.0.0,12h \
            --dhcp-lease-max=100000 --dhcp-leasefile="$WORK/dnsmasq.leases" \
            --dhcp-authoritative --no-ping --quiet-dhcp \
            >"$WORK/dnsmasq.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    sleep 1
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "bench-dhcpv4: $1 did not start:" >&2
        cat "$WORK/$1.log" >&2
        exit 1
    fi
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# perfdhcp RATE CLIENTS SECONDS -> prints "acks"
run_perfdhcp() {
    local out
    out="$(ip netns exec "$CLI" perfdhcp -4 -l eth0 -r "$1" -R "$2" -p "$3" 2>&1 || true)"
    # The second "received packets" line is REQUEST-ACK.
    echo "$out" | awk '/received packets:/ {n++; if (n == 2) print $3}'
}

declare -A LEASES_PER_SEC RSS_KB STEADY_ACKS
for server in dnsmasq b4d; do
    echo "== $server: saturating ($RATE/s offered, $CLIENTS clients, ${SECONDS_RUN}s)"
    start_server "$server"
    acks="$(run_perfdhcp "$RATE" "$CLIENTS" "$SECONDS_RUN")"
    stop_server
    LEASES_PER_SEC[$server]="$(awk -v a="${acks:-0}" -v s="$SECONDS_RUN" 'BEGIN { printf "%.0f", a / s }')"

    echo "== $server: steady ($STEADY_RATE/s, $CLIENTS clients, ${SECONDS_RUN}s) for peak RSS"
    start_server "$server"
    STEADY_ACKS[$server]="$(run_perfdhcp "$STEADY_RATE" "$CLIENTS" "$SECONDS_RUN")"
    RSS_KB[$server]="$(awk '/VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")"
    stop_server
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "DHCPv4 server benchmark: $CLIENTS clients via perfdhcp, ${SECONDS_RUN}s per phase"
printf '%-34s %12s %12s %10s\n' "" "b4d" "dnsmasq" "b4d/dnsmasq"
printf '%-34s %12s %12s %10s\n' "leases/s (ACKs, ${RATE}/s offered)" \
    "${LEASES_PER_SEC[b4d]}" "${LEASES_PER_SEC[dnsmasq]}" \
    "$(ratio "${LEASES_PER_SEC[b4d]}" "${LEASES_PER_SEC[dnsmasq]}")"
printf '%-34s %12s %12s %10s\n' "ACKs at ${STEADY_RATE}/s offered" \
    "${STEADY_ACKS[b4d]}" "${STEADY_ACKS[dnsmasq]}" \
    "$(ratio "${STEADY_ACKS[b4d]}" "${STEADY_ACKS[dnsmasq]}")"
printf '%-34s %12s %12s %10s\n' "peak RSS (VmHWM, kB)" \
    "${RSS_KB[b4d]}" "${RSS_KB[dnsmasq]}" "$(ratio "${RSS_KB[b4d]}" "${RSS_KB[dnsmasq]}")"
