#!/usr/bin/env bash
# Benchmark of the LAN DNS proxy: b4d against dnsmasq (what OpenWrt ships),
# side by side in the same run on the same machine, both forwarding to the
# same upstream (unbound serving a zone authoritatively over IPv6), driven by
# dnsperf from an IPv4 "LAN client" namespace:
#
#   client ns 192.168.1.100 ── router ns: b4d 192.168.1.1, dnsmasq 192.168.1.2
#                              router ns 2001:db8:1::2 ── upstream ns: unbound 2001:db8:1::53
#
# Workloads: cache-miss (every name asked once, so every query goes
# upstream) and cache-hit (a warmed set of names asked for DURATION seconds).
# Prints queries/s, latency percentiles (from dnsperf -v) and peak RSS
# (VmHWM) of each, with b4d/dnsmasq ratios. Everything runs in namespaces
# this script creates and deletes; no traffic leaves them.
#
# Usage (root): scripts/bench-dns.sh
#   env: MISS_NAMES (default 50000), HIT_NAMES (1000), DURATION (10 s),
#        CACHE (10000 entries, both), OUTSTANDING (100, dnsperf -q),
#        LAT_NAMES (5000), LATENCY_QPS (2000), ROUNDS (3),
#        B4D (a release binary to measure instead of building this tree's,
#        e.g. an older commit's for a before/after comparison),
#        PIN (0; 1: dnsperf on CPU 0, both proxies on CPU 1, so the load
#        generator and the proxy under test never share a core and each
#        proxy gets the same one; on a machine busy with other work a pinned
#        proxy cannot move away from it, so rounds vary more),
#        RPS (0; 1: each side's kernel receive work on its own CPU, see below;
#        in a VM the inter-processor interrupts cost more than they save)
set -euo pipefail
cd "$(dirname "$0")/.."

MISS_NAMES=${MISS_NAMES:-50000}
HIT_NAMES=${HIT_NAMES:-1000}
DURATION=${DURATION:-10}
CACHE=${CACHE:-10000}
OUTSTANDING=${OUTSTANDING:-100}
LAT_NAMES=${LAT_NAMES:-5000}
ROUNDS=${ROUNDS:-3}
LATENCY_QPS=${LATENCY_QPS:-2000}
PIN=${PIN:-0}
[ "$(nproc)" -ge 2 ] || PIN=0
CLIENT_CPU=()
SERVER_CPU=()
if [ "$PIN" = 1 ]; then
    CLIENT_CPU=(taskset -c 0)
    SERVER_CPU=(taskset -c 1)
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-dns: must run as root (network namespaces)" >&2
    exit 1
fi
export PATH="$PATH:/usr/sbin:/sbin"
for tool in dnsperf unbound dnsmasq python3 ip taskset; do
    command -v "$tool" >/dev/null || { echo "bench-dns: $tool missing; run scripts/install-test-deps.sh" >&2; exit 1; }
done

# Other work on the machine moves absolute numbers (the ratios less so):
# the load average goes into the report.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -z "${B4D:-}" ]; then
    echo "== building b4d (release)"
    cargo build --release -q
    B4D=$PWD/target/release/b4d
fi

WORK=$(mktemp -d /tmp/b4d-bench-dns.XXXXXX)
CLI=b4bench-$$-cli
RTR=b4bench-$$-rtr
UP=b4bench-$$-up
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "$CLI" "$RTR" "$UP"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== namespaces"
for ns in "$CLI" "$RTR" "$UP"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip link add eth0 netns "$CLI" type veth peer name eth1 netns "$RTR"
ip link add eth0 netns "$RTR" type veth peer name eth0 netns "$UP"
ip -n "$CLI" addr add 192.168.1.100/24 dev eth0
ip -n "$RTR" addr add 192.168.1.1/24 dev eth1
ip -n "$RTR" addr add 192.168.1.2/24 dev eth1
ip -n "$RTR" -6 addr add 2001:db8:1::2/64 dev eth0 nodad
ip -n "$UP" -6 addr add 2001:db8:1::53/64 dev eth0 nodad
for l in "$CLI eth0" "$RTR eth0" "$RTR eth1" "$UP eth0"; do
    set -- $l
    ip -n "$1" link set "$2" up
done
# A packet sent into a veth is received (IP, UDP, socket queue, wake-up) on
# the sending CPU, so without RPS the proxy's CPU time includes dnsperf's
# receive path and dnsperf's includes the proxy's. On a router the proxy
# receives its queries and the client machine its answers: RPS steers each
# side's receive work to that side's CPU, the same for both proxies.
RPS=${RPS:-0}
[ "$(nproc)" -ge 2 ] || RPS=0
if [ "$RPS" = 1 ]; then
    ip netns exec "$CLI" sh -c 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
    ip netns exec "$RTR" sh -c 'echo 2 > /sys/class/net/eth1/queues/rx-0/rps_cpus'
fi

echo "== upstream: unbound with $ROUNDS x ($MISS_NAMES + $LAT_NAMES) + $HIT_NAMES names"
python3 - "$WORK" "$MISS_NAMES" "$HIT_NAMES" "$LAT_NAMES" "$ROUNDS" <<'PY'
import sys
work, miss, hit, lat, rounds = (sys.argv[1], *map(int, sys.argv[2:6]))
# Round r uses names m<r>-<i> (cache-miss) and l<r>-<i> (latency); h<i> is
# the cache-hit set. Every name has its own address.
with open(f"{work}/bench.zone", "w") as z:
    z.write("$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns admin 1 7200 3600 1209600 300\n@ NS ns\nns AAAA 2001:db8:1::53\n")
    for r in range(1, rounds + 1):
        for i in range(miss):
            z.write(f"m{r}-{i} A 198.18.{i // 256 % 256}.{i % 256}\n")
        for i in range(lat):
            z.write(f"l{r}-{i} A 198.20.{i // 256 % 256}.{i % 256}\n")
        with open(f"{work}/miss{r}.txt", "w") as f:
            f.writelines(f"m{r}-{i}.bench.test A\n" for i in range(miss))
        with open(f"{work}/lat{r}.txt", "w") as f:
            f.writelines(f"l{r}-{i}.bench.test A\n" for i in range(lat))
    for i in range(hit):
        z.write(f"h{i} A 198.19.{i // 256 % 256}.{i % 256}\n")
with open(f"{work}/hit.txt", "w") as f:
    f.writelines(f"h{i}.bench.test A\n" for i in range(hit))
PY
cat > "$WORK/unbound.conf" <<CONF
server:
  interface: 2001:db8:1::53
  port: 53
  do-ip4: no
  do-daemonize: no
  use-syslog: no
  logfile: ""
  verbosity: 0
  username: ""
  chroot: ""
  pidfile: ""
  directory: "$WORK"
  access-control: ::/0 allow
  module-config: "iterator"
  num-threads: 1
  so-rcvbuf: 4m
  local-zone: "test." nodefault
auth-zone:
  name: "bench.test."
  zonefile: "$WORK/bench.zone"
  for-downstream: yes
  for-upstream: no
remote-control:
  control-enable: no
CONF
ip netns exec "$UP" unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
PIDS+=($!)

# Only the DNS proxy runs in b4d (no DHCPv4, no ubus, no tunnel), as only
# DNS runs in this dnsmasq.
echo "== b4d on 192.168.1.1, dnsmasq on 192.168.1.2 (cache $CACHE entries each)"
cat > "$WORK/b4d.uci" <<CONF
config globals 'globals'
	option log_level 'warn'
	option state_dir '$WORK/state'
	option ubus '0'
config wan 'wan'
	option device 'eth0'
	option dhcpv6 'off'
	option aftr '2001:db8:1::1'
config tunnel 'tunnel'
	option enabled '0'
config lan 'lan'
	option device 'eth1'
	option ipaddr '192.168.1.1'
	option dns_cache_size '$CACHE'
	option dhcp '0'
	list dns_server '2001:db8:1::53'
CONF
ip netns exec "$RTR" "${SERVER_CPU[@]}" "$B4D" --foreground --config "$WORK/b4d.uci" >"$WORK/b4d.log" 2>&1 &
B4D_PID=$!
PIDS+=($B4D_PID)
ip netns exec "$RTR" "${SERVER_CPU[@]}" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
    --server=2001:db8:1::53 --listen-address=192.168.1.2 --bind-interfaces \
    --cache-size="$CACHE" --pid-file="$WORK/dnsmasq.pid" --user=root --log-facility="$WORK/dnsmasq.syslog" \
    >"$WORK/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!
PIDS+=($DNSMASQ_PID)

wait_answer() {
    for _ in $(seq 50); do
        if ip netns exec "$CLI" python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
q = bytes.fromhex("abcd01000001000000000000026e730562656e636804746573740000010001")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
s.sendto(q, (sys.argv[1], 53)); s.recv(512)
PY
        sleep 0.2
    done
    echo "bench-dns: nothing answers on $1" >&2
    exit 1
}
wait_answer 192.168.1.1
wait_answer 192.168.1.2

# cpu PID: user+system CPU ticks so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

# run NAME PID SERVER FILE ARGS... : dnsperf into $WORK/NAME.out, and the
# proxy's CPU seconds during the run into $WORK/NAME.cpu.
run() {
    local name=$1 pid=$2 server=$3 file=$4
    shift 4
    local before
    before=$(cpu "$pid")
    ip netns exec "$CLI" "${CLIENT_CPU[@]}" dnsperf -s "$server" -d "$file" -q "$OUTSTANDING" -t 5 "$@" >"$WORK/$name.out" 2>&1
    awk -v a="$(cpu "$pid")" -v b="$before" -v t="$TICKS" 'BEGIN { printf "%.3f\n", (a - b) / t }' >"$WORK/$name.cpu"
}

# Throughput runs go as fast as dnsperf can; latency runs (dnsperf -v, which
# slows dnsperf itself) at a fixed LATENCY_QPS so they measure the proxy,
# not a queue.
# Each workload runs ROUNDS times, b4d and dnsmasq alternating, so that a
# burst of load from elsewhere on the machine hits both; the report takes
# medians (throughput, CPU) and pools the latency samples.
echo "== warming the cache-hit names"
run warm-b4d "$B4D_PID" 192.168.1.1 "$WORK/hit.txt" -n 1
run warm-dnsmasq "$DNSMASQ_PID" 192.168.1.2 "$WORK/hit.txt" -n 1
for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS: cache-miss ($MISS_NAMES new names each), cache-hit (${DURATION}s), latency runs at $LATENCY_QPS q/s"
    for proxy in b4d dnsmasq; do
        if [ "$proxy" = b4d ]; then pid=$B4D_PID; ip=192.168.1.1; else pid=$DNSMASQ_PID; ip=192.168.1.2; fi
        run "miss-$proxy-$round" "$pid" "$ip" "$WORK/miss$round.txt" -n 1
        run "misslat-$proxy-$round" "$pid" "$ip" "$WORK/lat$round.txt" -n 1 -v -Q "$LATENCY_QPS"
        run "hit-$proxy-$round" "$pid" "$ip" "$WORK/hit.txt" -l "$DURATION"
        run "hitlat-$proxy-$round" "$pid" "$ip" "$WORK/hit.txt" -l "$DURATION" -v -Q "$LATENCY_QPS"
    done
done

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
B4D_HWM=$(hwm "$B4D_PID")
DNSMASQ_HWM=$(hwm "$DNSMASQ_PID")

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$WORK" "$B4D_HWM" "$DNSMASQ_HWM" "$ROUNDS" "$LOAD_BEFORE" "$LOAD_AFTER" "$PIN" "$RPS" <<'PY'
import re, statistics, sys
work, b4d_hwm, dnsmasq_hwm, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
load_before, load_after, pinned, rps = sys.argv[5], sys.argv[6], sys.argv[7] == "1", sys.argv[8] == "1"

def dnsperf(name):
    text = open(f"{work}/{name}.out").read()
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", text).group(1))
    completed = int(re.search(r"Queries completed:\s+(\d+)", text).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", text).group(1))
    lat = sorted(float(l.split()[-1]) for l in text.splitlines()
                 if l.startswith("> ") and l.split()[1] == "NOERROR")
    cpu = float(open(f"{work}/{name}.cpu").read())
    return qps, completed, lost, lat, cpu

def stats(workload, proxy):
    qps, cpu_per_query, lat, lost = [], [], [], 0
    for r in range(1, rounds + 1):
        q, completed, l1, _, cpu = dnsperf(f"{workload}-{proxy}-{r}")
        _, _, l2, samples, _ = dnsperf(f"{workload}lat-{proxy}-{r}")
        qps.append(q)
        cpu_per_query.append(cpu * 1e6 / max(completed, 1))
        lat += samples
        lost += l1 + l2
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")
    return {"queries/s": statistics.median(qps), "CPU us/query": statistics.median(cpu_per_query),
            "p50 ms": pct(50), "p90 ms": pct(90), "p99 ms": pct(99), "p99.9 ms": pct(99.9),
            "lost": lost, "qps rounds": qps}

print()
print(f"{'workload':<11} {'metric':<13} {'b4d':>12} {'dnsmasq':>12} {'b4d/dnsmasq':>12}")
for workload in ("miss", "hit"):
    b, d = stats(workload, "b4d"), stats(workload, "dnsmasq")
    for metric in b:
        if metric == "qps rounds":
            print(f"{'':<11} {'q/s per round':<13} {' '.join(f'{x:.0f}' for x in b[metric]):>12} {' '.join(f'{x:.0f}' for x in d[metric]):>12}")
            continue
        ratio = f"{b[metric] / d[metric]:>12.2f}" if d[metric] else f"{'-':>12}"
        print(f"cache-{workload:<5} {metric:<13} {b[metric]:>12.3f} {d[metric]:>12.3f} {ratio}")
print(f"{'process':<11} {'peak RSS kB':<13} {b4d_hwm:>12} {dnsmasq_hwm:>12} {b4d_hwm / dnsmasq_hwm:>12.2f}")
print()
print("queries/s ratio > 1 favours b4d; CPU, latency and RSS ratios < 1 favour b4d")
print(f"load average before {load_before}, after {load_after}; "
      + ("dnsperf pinned to CPU 0, proxies to CPU 1" if pinned else "not pinned")
      + ("; receive work on the receiver's CPU (RPS)" if rps else ""))
print(f"raw dnsperf output and logs: {work}")
PY
