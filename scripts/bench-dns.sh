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
# Prints queries/s, CPU seconds per 100k answered queries, latency
# percentiles (from dnsperf -v) and peak RSS (VmHWM) of each, with
# b4d/dnsmasq ratios. Everything runs in namespaces this script creates and
# deletes; no traffic leaves them.
#
# Capped runs (the headline figures): on a router the proxy's CPU (one slow
# core) is the limit, never the LAN clients. Unthrottled on this machine,
# dnsperf itself tops out near the proxies' speed, so the q/s ratio would
# measure the load generator. So each proxy also runs with the same CPU
# budget, a cgroup CPU quota of CAP % of one core, pinned to the CPU that
# dnsperf is not on: its q/s is then its own capacity. The report shows
# dnsperf's own CPU use for every run (it must stay well below 100 % for a
# run to measure the proxy) and how often the proxy hit its quota.
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
#        in a VM the inter-processor interrupts cost more than they save),
#        CAP (25: % of one core each proxy gets in the capped runs; 0 skips
#        them), CAP_PERIOD_US (100000: the quota's period, the kernel's
#        default; with shorter ones a proxy waiting for dnsperf's next
#        queries leaves part of a period's quota unused, so it is no longer
#        its CPU that limits it: see "throttled %"),
#        CAP_MISS_NAMES (30000 new names per round for the capped cache-miss run),
#        CAP_NICE (-10: the niceness of the proxy and dnsperf in capped runs),
#        IPQ (1 if valgrind is installed: user-space instructions per query
#        of each proxy, counted by callgrind; 0 skips it)
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
CAP=${CAP:-25}
CAP_PERIOD_US=${CAP_PERIOD_US:-100000}
CAP_MISS_NAMES=${CAP_MISS_NAMES:-30000}
IPQ=${IPQ:-1}
if [ "$IPQ" = 1 ] && ! command -v valgrind >/dev/null; then
    echo "bench-dns: valgrind missing: no instructions-per-query figures (apt-get install valgrind)" >&2
    IPQ=0
fi
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
CGROUPS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "$CLI" "$RTR" "$UP"; do ip netns del "$ns" 2>/dev/null || true; done
    # Empty once the proxies have exited.
    for group in "${CGROUPS[@]}"; do rmdir "$group" 2>/dev/null || true; done
}
trap cleanup EXIT

# The CPU quota for the capped runs: cgroup v1's cpu controller
# (cpu.cfs_quota_us per cpu.cfs_period_us) or v2's cpu.max, whichever this
# machine has writable. Each proxy gets its own group with the same quota.
CG_VERSION=none
if [ "$CAP" != 0 ]; then
    if [ "$(nproc)" -lt 2 ]; then
        echo "bench-dns: one CPU: the capped runs need dnsperf and the proxy on different CPUs; skipped" >&2
        CAP=0
    elif [ -w /sys/fs/cgroup/cpu/cgroup.procs ] && [ -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        CG_VERSION=v1
        CG_ROOT=/sys/fs/cgroup/cpu
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers &&
        { grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
            echo +cpu 2>/dev/null >/sys/fs/cgroup/cgroup.subtree_control; }; then
        CG_VERSION=v2
        CG_ROOT=/sys/fs/cgroup
    else
        echo "bench-dns: no writable cgroup CPU controller (v1 /sys/fs/cgroup/cpu/cpu.cfs_quota_us," \
            "v2 /sys/fs/cgroup/cpu.max): capped runs skipped; the unthrottled figures" \
            "may measure dnsperf rather than the proxies (see its CPU %)" >&2
        CAP=0
    fi
fi
CAP_QUOTA_US=$((CAP * CAP_PERIOD_US / 100))

# cg_join PROXY PID: PID into the proxy's own group, unthrottled for now.
cg_join() {
    local group=$CG_ROOT/b4bench-$$-$1
    mkdir "$group"
    CGROUPS+=("$group")
    if [ "$CG_VERSION" = v1 ]; then
        echo "$CAP_PERIOD_US" >"$group/cpu.cfs_period_us"
    fi
    echo "$2" >"$group/cgroup.procs"
}

# cg_quota PROXY on|off
cg_quota() {
    local group=$CG_ROOT/b4bench-$$-$1
    if [ "$CG_VERSION" = v1 ]; then
        if [ "$2" = on ]; then echo "$CAP_QUOTA_US"; else echo -1; fi >"$group/cpu.cfs_quota_us"
    else
        if [ "$2" = on ]; then echo "$CAP_QUOTA_US $CAP_PERIOD_US"; else echo "max $CAP_PERIOD_US"; fi >"$group/cpu.max"
    fi
}

# cg_throttled PROXY: quota periods so far, and how many ran out of quota.
cg_throttled() {
    awk '$1 == "nr_periods" { p = $2 } $1 == "nr_throttled" { t = $2 } END { print p + 0, t + 0 }' \
        "$CG_ROOT/b4bench-$$-$1/cpu.stat"
}

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

[ "$CAP" != 0 ] || CAP_MISS_NAMES=0
# The instruction counts use the first 2 x IPQ_MISS of round 1's capped names.
IPQ_HIT_PASSES=5
IPQ_MISS=2000
if [ "$IPQ" = 1 ] && [ "$CAP_MISS_NAMES" -lt $((2 * IPQ_MISS)) ]; then CAP_MISS_NAMES=$((2 * IPQ_MISS)); fi
echo "== upstream: unbound with $ROUNDS x ($MISS_NAMES + $LAT_NAMES + $CAP_MISS_NAMES) + $HIT_NAMES names"
python3 - "$WORK" "$MISS_NAMES" "$HIT_NAMES" "$LAT_NAMES" "$ROUNDS" "$CAP_MISS_NAMES" <<'PY'
import sys
work, miss, hit, lat, rounds, capmiss = (sys.argv[1], *map(int, sys.argv[2:7]))
# Round r uses names m<r>-<i> (cache-miss), l<r>-<i> (latency) and c<r>-<i>
# (capped cache-miss); h<i> is the cache-hit set. Every name has its own
# address.
with open(f"{work}/bench.zone", "w") as z:
    z.write("$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns admin 1 7200 3600 1209600 300\n@ NS ns\nns AAAA 2001:db8:1::53\n")
    for r in range(1, rounds + 1):
        for prefix, count, net in (("m", miss, 18), ("l", lat, 20), ("c", capmiss, 21)):
            for i in range(count):
                z.write(f"{prefix}{r}-{i} A 198.{net}.{i // 256 % 256}.{i % 256}\n")
            with open(f"{work}/{prefix}{r}.txt", "w") as f:
                f.writelines(f"{prefix}{r}-{i}.bench.test A\n" for i in range(count))
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
PIDS+=("$B4D_PID")
ip netns exec "$RTR" "${SERVER_CPU[@]}" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
    --server=2001:db8:1::53 --listen-address=192.168.1.2 --bind-interfaces \
    --cache-size="$CACHE" --pid-file="$WORK/dnsmasq.pid" --user=root --log-facility="$WORK/dnsmasq.syslog" \
    >"$WORK/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!
PIDS+=("$DNSMASQ_PID")

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

if [ "$CAP" != 0 ]; then
    cg_join b4d "$B4D_PID"
    cg_join dnsmasq "$DNSMASQ_PID"
fi
declare -A PID_OF=([b4d]=$B4D_PID [dnsmasq]=$DNSMASQ_PID)
declare -A ADDR_OF=([b4d]=192.168.1.1 [dnsmasq]=192.168.1.2)

# capped PROXY on|off: the quota, and the proxy (all its threads) on CPU 1
# while dnsperf runs on CPU 0, both at nice -10 (CAP_NICE) so that other
# work on the machine (a VM, builds) cannot take the proxy's quota or
# dnsperf's core away from them; off restores where and how it ran before.
CAP_NICE=${CAP_NICE:--10}
capped() {
    cg_quota "$1" "$2"
    local cpus=0-$(($(nproc) - 1)) nice=0 task
    if [ "$2" = on ] || [ "$PIN" = 1 ]; then cpus=1; fi
    if [ "$2" = on ]; then nice=$CAP_NICE; fi
    taskset -a -p -c "$cpus" "${PID_OF[$1]}" >/dev/null
    # Niceness is per thread.
    for task in /proc/"${PID_OF[$1]}"/task/*; do
        renice -n "$nice" -p "${task##*/}" >/dev/null
    done
    CAPPED=$([ "$2" = on ] && echo 1 || echo 0)
}
CAPPED=0

# cpu PID: user+system CPU seconds so far (clock ticks in /proc, but
# scaled from the scheduler's nanosecond runtime).
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / t }' "/proc/$1/stat"; }

# run NAME PROXY FILE ARGS... : dnsperf against PROXY, its output into
# $WORK/NAME.out; the proxy's CPU seconds during the run into NAME.cpu;
# dnsperf's own user, system and elapsed seconds into NAME.client (was the
# load generator the limit?); the load average at the start into
# NAME.load; in a capped run, the quota periods before and after and how
# many of them throttled the proxy into NAME.throttle.
run() {
    local name=$1 proxy=$2 file=$3
    shift 3
    local pid=${PID_OF[$proxy]} client_cpu=("${CLIENT_CPU[@]}") before
    if [ "$CAPPED" = 1 ]; then
        client_cpu=(nice -n "$CAP_NICE" taskset -c 0)
        cg_throttled "$proxy" >"$WORK/$name.throttle"
    fi
    cut -d' ' -f1-3 /proc/loadavg >"$WORK/$name.load"
    before=$(cpu "$pid")
    local TIMEFORMAT='%3U %3S %3R'
    { time ip netns exec "$CLI" "${client_cpu[@]}" dnsperf -s "${ADDR_OF[$proxy]}" -d "$file" \
        -q "$OUTSTANDING" -t 5 "$@" >"$WORK/$name.out" 2>&1; } 2>"$WORK/$name.client"
    awk -v a="$(cpu "$pid")" -v b="$before" 'BEGIN { printf "%.3f\n", a - b }' >"$WORK/$name.cpu"
    if [ "$CAPPED" = 1 ]; then
        cg_throttled "$proxy" >>"$WORK/$name.throttle"
    fi
}

# Throughput runs go as fast as dnsperf can; latency runs (dnsperf -v, which
# slows dnsperf itself) at a fixed LATENCY_QPS so they measure the proxy,
# not a queue; they run unthrottled only.
# Each workload runs ROUNDS times, b4d and dnsmasq alternating, so that a
# burst of load from elsewhere on the machine hits both; the report takes
# medians (throughput, CPU) and pools the latency samples.
echo "== warming the cache-hit names"
run warm-b4d b4d "$WORK/hit.txt" -n 1
run warm-dnsmasq dnsmasq "$WORK/hit.txt" -n 1
for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS: cache-miss ($MISS_NAMES new names each), cache-hit (${DURATION}s), latency runs at $LATENCY_QPS q/s" \
        "$([ "$CAP" = 0 ] || echo "; capped at $CAP % of CPU 1: cache-hit (${DURATION}s), cache-miss (up to $CAP_MISS_NAMES new names, ${DURATION}s)")"
    for proxy in b4d dnsmasq; do
        run "miss-$proxy-$round" "$proxy" "$WORK/m$round.txt" -n 1
        run "misslat-$proxy-$round" "$proxy" "$WORK/l$round.txt" -n 1 -v -Q "$LATENCY_QPS"
        run "hit-$proxy-$round" "$proxy" "$WORK/hit.txt" -l "$DURATION"
        run "hitlat-$proxy-$round" "$proxy" "$WORK/hit.txt" -l "$DURATION" -v -Q "$LATENCY_QPS"
        if [ "$CAP" != 0 ]; then
            capped "$proxy" on
            # The hit names are still cached from the runs just before.
            run "hitcap-$proxy-$round" "$proxy" "$WORK/hit.txt" -l "$DURATION"
            run "misscap-$proxy-$round" "$proxy" "$WORK/c$round.txt" -n 1 -l "$DURATION"
            capped "$proxy" off
        fi
    done
done

# Instructions per query, user space only (callgrind counts the
# instructions a process executes itself, not the kernel's work for its
# system calls): a fresh proxy under callgrind answers N and then 2N
# queries (two processes; the difference cancels start-up and warm-up), at
# a low rate so that the slowed-down proxy keeps up. b4d on 192.168.1.3,
# dnsmasq on 192.168.1.4, outside the timed runs.
# ipq PROXY WORKLOAD SIZE: the proxy's total instructions into
# $WORK/ipq-PROXY-WORKLOAD-SIZE.
ipq() {
    local proxy=$1 workload=$2 size=$3 addr pid
    local out=$WORK/ipq-$proxy-$workload-$size
    local callgrind=(valgrind --tool=callgrind --callgrind-out-file="$out.callgrind")
    if [ "$proxy" = b4d ]; then
        addr=192.168.1.3
        sed -e "s/'192.168.1.1'/'$addr'/" -e "s|'$WORK/state'|'$WORK/state-ipq'|" "$WORK/b4d.uci" >"$WORK/b4d-ipq.uci"
        ip netns exec "$RTR" "${callgrind[@]}" "$B4D" --foreground --config "$WORK/b4d-ipq.uci" >"$out.log" 2>&1 &
    else
        addr=192.168.1.4
        ip netns exec "$RTR" "${callgrind[@]}" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
            --server=2001:db8:1::53 --listen-address=$addr --bind-interfaces --cache-size="$CACHE" \
            --pid-file="$WORK/dnsmasq-ipq.pid" --user=root --log-facility="$WORK/dnsmasq-ipq.syslog" >"$out.log" 2>&1 &
    fi
    pid=$!
    PIDS+=("$pid")
    wait_answer "$addr"
    if [ "$workload" = hit ]; then
        ip netns exec "$CLI" dnsperf -s "$addr" -d "$WORK/hit.txt" -n 1 -Q 500 >/dev/null 2>&1
        ip netns exec "$CLI" dnsperf -s "$addr" -d "$WORK/hit.txt" -n "$size" -Q 2000 >"$out.out" 2>&1
    else
        head -n "$size" "$WORK/c1.txt" >"$out.names"
        ip netns exec "$CLI" dnsperf -s "$addr" -d "$out.names" -n 1 -Q 500 >"$out.out" 2>&1
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^(summary|totals):/ { print $2; exit }' "$out.callgrind" >"$out"
}
if [ "$IPQ" = 1 ]; then
    echo "== instructions per query (callgrind, user space only)"
    ip -n "$RTR" addr add 192.168.1.3/24 dev eth1
    ip -n "$RTR" addr add 192.168.1.4/24 dev eth1
    for proxy in b4d dnsmasq; do
        ipq "$proxy" hit "$IPQ_HIT_PASSES"
        ipq "$proxy" hit $((2 * IPQ_HIT_PASSES))
        ipq "$proxy" miss "$IPQ_MISS"
        ipq "$proxy" miss $((2 * IPQ_MISS))
    done
fi

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
B4D_HWM=$(hwm "$B4D_PID")
DNSMASQ_HWM=$(hwm "$DNSMASQ_PID")

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$WORK" "$B4D_HWM" "$DNSMASQ_HWM" "$ROUNDS" "$LOAD_BEFORE" "$LOAD_AFTER" "$PIN" "$RPS" \
    "$CAP" "$CAP_QUOTA_US" "$CAP_PERIOD_US" "$CG_VERSION" "$IPQ" "$IPQ_HIT_PASSES" "$IPQ_MISS" "$HIT_NAMES" <<'PY'
import re, statistics, sys
work, b4d_hwm, dnsmasq_hwm, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
load_before, load_after, pinned, rps = sys.argv[5], sys.argv[6], sys.argv[7] == "1", sys.argv[8] == "1"
cap, quota_us, period_us, cg_version = int(sys.argv[9]), sys.argv[10], sys.argv[11], sys.argv[12]
ipq, ipq_hit_passes, ipq_miss, hit_names = sys.argv[13] == "1", *map(int, sys.argv[14:17])

def read(name, ext):
    return open(f"{work}/{name}.{ext}").read()

def dnsperf(name):
    text = read(name, "out")
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", text).group(1))
    completed = int(re.search(r"Queries completed:\s+(\d+)", text).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", text).group(1))
    lat = [float(l.split()[-1]) for l in text.splitlines()
           if l.startswith("> ") and l.split()[1] == "NOERROR"]
    user, system, elapsed = map(float, read(name, "client").split())
    return {"qps": qps, "completed": completed, "lost": lost, "lat": lat,
            "cpu": float(read(name, "cpu")),
            "client cpu %": 100 * (user + system) / elapsed,
            "load": float(read(name, "load").split()[0])}

def throttled(name):
    (p0, t0), (p1, t1) = (map(int, l.split()) for l in read(name, "throttle").splitlines())
    return 100 * (t1 - t0) / max(p1 - p0, 1)

def stats(workload, proxy, latency):
    runs = [dnsperf(f"{workload}-{proxy}-{r}") for r in range(1, rounds + 1)]
    lat = []
    lost = sum(run["lost"] for run in runs)
    if latency:
        lat_runs = [dnsperf(f"{latency}-{proxy}-{r}") for r in range(1, rounds + 1)]
        lat = sorted(sample for run in lat_runs for sample in run["lat"])
        lost += sum(run["lost"] for run in lat_runs)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")
    row = {"queries/s": statistics.median(run["qps"] for run in runs),
           # Independent of how busy the machine is: what a router's core
           # would spend (b4d/dnsmasq ratio = capacity ratio when the
           # proxy's CPU is the limit).
           "CPU s/100k q": statistics.median(run["cpu"] * 1e5 / max(run["completed"], 1) for run in runs),
           "dnsperf CPU %": max(run["client cpu %"] for run in runs)}
    if latency:
        row.update({"p50 ms": pct(50), "p90 ms": pct(90), "p99 ms": pct(99), "p99.9 ms": pct(99.9)})
    if workload.endswith("cap"):
        row["throttled %"] = statistics.median(throttled(f"{workload}-{proxy}-{r}") for r in range(1, rounds + 1))
    row["lost"] = lost
    row["q/s per round"] = [run["qps"] for run in runs]
    row["load per round"] = [run["load"] for run in runs]
    return row

def table(title, workloads):
    print(title)
    print(f"{'workload':<11} {'metric':<15} {'b4d':>13} {'dnsmasq':>13} {'b4d/dnsmasq':>12}")
    for label, workload, latency in workloads:
        b, d = stats(workload, "b4d", latency), stats(workload, "dnsmasq", latency)
        for metric in b:
            if isinstance(b[metric], list):
                fmt = "{:.0f}" if metric.startswith("q/s") else "{:.1f}"
                show = lambda xs: " ".join(fmt.format(x) for x in xs)
                print(f"{'':<11} {metric:<15} {show(b[metric]):>13} {show(d[metric]):>13}")
                continue
            ratio = f"{b[metric] / d[metric]:>12.2f}" if d[metric] and metric not in ("dnsperf CPU %", "throttled %") else f"{'':>12}"
            print(f"{label:<11} {metric:<15} {b[metric]:>13.3f} {d[metric]:>13.3f} {ratio}")
    print()

print()
if cap:
    table(f"== capped (headline): each proxy limited to {cap} % of one core (cgroup {cg_version} quota "
          f"{quota_us} us per {period_us} us) on CPU 1, dnsperf on CPU 0, both at raised priority",
          [("cache-hit", "hitcap", None), ("cache-miss", "misscap", None)])
else:
    print("== capped runs skipped (CAP=0 or no writable cgroup CPU controller)\n")
table("== unthrottled: as fast as dnsperf goes; the load generator may be the limit (see dnsperf CPU %)"
      + (", dnsperf pinned to CPU 0, proxies to CPU 1" if pinned else ", not pinned"),
      [("cache-miss", "miss", "misslat"), ("cache-hit", "hit", "hitlat")])
print(f"{'process':<11} {'peak RSS kB':<15} {b4d_hwm:>13} {dnsmasq_hwm:>13} {b4d_hwm / dnsmasq_hwm:>12.2f}")
if ipq:
    # (2N run - N run) / N queries: start-up and warm-up cancel out.
    def per_query(proxy, workload, size, queries):
        count = lambda n: int(open(f"{work}/ipq-{proxy}-{workload}-{n}").read())
        return (count(2 * size) - count(size)) / queries
    for label, workload, size, queries in (("cache-hit", "hit", ipq_hit_passes, ipq_hit_passes * hit_names),
                                           ("cache-miss", "miss", ipq_miss, ipq_miss)):
        b, d = per_query("b4d", workload, size, queries), per_query("dnsmasq", workload, size, queries)
        print(f"{label:<11} {'user instr/q':<15} {b:>13.0f} {d:>13.0f} {b / d:>12.2f}")
print()
print("queries/s ratio > 1 favours b4d; CPU, latency and RSS ratios < 1 favour b4d.")
print("CPU s/100k q: the proxy's user+system CPU per 100 000 answered queries; with veth the")
print("kernel's receive work for a datagram runs on the sender, so each proxy's figure includes")
print("dnsperf's receive of its answers and excludes its own receive of the queries (the same for both).")
print("dnsperf CPU %: the highest of the rounds, of one core; near 100 % the run measured dnsperf.")
if cap:
    print("throttled %: quota periods in which the proxy used up its quota (near 100 %: its CPU was the limit).")
print("load per round: 1-minute load average when the run started.")
if ipq:
    print("user instr/q: instructions the proxy itself executes per query (callgrind; system calls' kernel work not included).")
print(f"load average before {load_before}, after {load_after}"
      + ("; receive work on the receiver's CPU (RPS)" if rps else ""))
print(f"raw dnsperf output and logs: {work}")
PY
