//! The LAN DNS proxy end to end: an IPv4-only LAN client asks b4d, b4d asks
//! unbound over IPv6, in three namespaces the tests create and remove:
//!
//! ```text
//!  client ns            router ns (b4d)                  upstream ns
//!  eth0 192.168.1.100 ─ eth1 192.168.1.1 | eth0 2001:db8:1::2 ─ eth0 2001:db8:1::53, ::54, ::55
//! ```

mod support;

use std::net::Ipv6Addr;
use std::time::Instant;

use support::*;

const UPSTREAM_A: &str = "2001:db8:1::53";
const UPSTREAM_B: &str = "2001:db8:1::54";
/// The fake (spoofing) upstream of the spoof test.
const UPSTREAM_FAKE: &str = "2001:db8:1::55";
const ROUTER_WAN: &str = "2001:db8:1::2";
const PROXY: &str = "@192.168.1.1";

struct Lab {
    dir: TestDir,
    client: Netns,
    router: Netns,
    upstream: Netns,
}

fn lab(test: &str) -> Lab {
    let dir = TestDir::new(test);
    let client = Netns::new("lan");
    let router = Netns::new("b4d");
    let upstream = Netns::new("isp");
    veth_pair(VethEnd::new(&client, "eth0"), VethEnd::new(&router, "eth1"));
    veth_pair(
        VethEnd::new(&router, "eth0"),
        VethEnd::new(&upstream, "eth0"),
    );
    client.add_addr("eth0", "192.168.1.100/24");
    router.add_addr("eth1", "192.168.1.1/24");
    router.add_addr_nodad("eth0", &format!("{ROUTER_WAN}/64"));
    for addr in [UPSTREAM_A, UPSTREAM_B, UPSTREAM_FAKE] {
        upstream.add_addr_nodad("eth0", &format!("{addr}/64"));
    }
    Lab {
        dir,
        client,
        router,
        upstream,
    }
}

impl Lab {
    fn unbound(&self, name: &str, addrs: &[&str]) -> Unbound {
        let zone = signed_test_zone(&self.dir, 3900);
        let addrs: Vec<Ipv6Addr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        Unbound::start(&self.upstream, &self.dir, name, &addrs, &zone)
    }

    /// b4d with DHCPv6 off, the given static upstreams and a static host
    /// `laptop` = 192.168.1.10.
    fn b4d(&self, upstreams: &[&str]) -> Process {
        let servers: String = upstreams
            .iter()
            .map(|s| format!("\tlist dns_server '{s}'\n"))
            .collect();
        self.b4d_with(
            "\toption dhcpv6 'off'\n\toption aftr '2001:db8:1::1'\n",
            &servers,
        )
    }

    fn b4d_with(&self, wan: &str, lan: &str) -> Process {
        let b4d = self.spawn_b4d(wan, lan);
        b4d.wait_for_line("proxy listening on 192.168.1.1:53", secs(10));
        b4d
    }

    /// b4d started, without waiting for its proxy to listen.
    fn spawn_b4d(&self, wan: &str, lan: &str) -> Process {
        self.spawn_b4d_with_tunnel(wan, "\toption enabled '0'\n", lan)
    }

    /// [`Lab::spawn_b4d`] with the `tunnel` section's options (this
    /// kernel has no ip6tnl: the AFTR is resolved, the tunnel never built).
    fn spawn_b4d_with_tunnel(&self, wan: &str, tunnel: &str, lan: &str) -> Process {
        let config = format!(
            "config globals 'globals'\n\toption log_level 'debug'\n\toption state_dir '{}'\n\n\
             config wan 'wan'\n\toption device 'eth0'\n\toption lease_file '{dhcpv6}'\n{wan}\n\
             config tunnel 'tunnel'\n{tunnel}\n\
             config lan 'lan'\n\toption device 'eth1'\n\toption ipaddr '192.168.1.1'\n\
             \toption lease_file '{leases}'\n{lan}\n\
             config host\n\toption mac '02:00:00:00:00:10'\n\toption ip '192.168.1.10'\n\toption name 'laptop'\n",
            self.dir.file("state").display(),
            leases = self.dir.file("b4d.leases").display(),
            dhcpv6 = self.dir.file("b4d.dhcpv6").display(),
        );
        let path = self.dir.write("b4d.uci", config);
        self.router.spawn(
            &self.dir,
            "b4d",
            env!("CARGO_BIN_EXE_b4d"),
            &["--foreground", "--config", &path.display().to_string()],
        )
    }

    /// dig from the LAN client to b4d, bounded to one 5 s try.
    fn ask(&self, args: &[&str]) -> String {
        let mut all = vec![PROXY, "+time=5", "+tries=1"];
        all.extend_from_slice(args);
        dig_text(&self.client, &all)
    }
}

/// `dig +short`'s lines.
fn short(out: &str) -> Vec<String> {
    out.lines().map(str::to_string).collect()
}

#[test]
fn a_aaaa_unknown_types_and_local_names() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("a_aaaa_unknown_types_and_local_names");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let b4d = lab.b4d(&[UPSTREAM_A]);

    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test", "A"])),
        ["192.0.2.80"]
    );
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test", "AAAA"])),
        ["2001:db8::80"]
    );
    let odd = lab.ask(&["odd.example.test", "TYPE65280"]);
    assert!(
        odd.contains("\\# 4 DEADBEEF"),
        "unknown type passed through:\n{odd}"
    );
    // The second time from the cache: the same record.
    let again = lab.ask(&["+short", "odd.example.test", "TYPE65280"]);
    assert!(again.contains("\\# 4 DEADBEEF"), "{again}");
    let nx = lab.ask(&["nope.example.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");

    assert_eq!(short(&lab.ask(&["+short", "laptop.lan"])), ["192.168.1.10"]);
    assert_eq!(
        short(&lab.ask(&["+short", "-x", "192.168.1.10"])),
        ["laptop.lan."]
    );
    let unknown = lab.ask(&["printer.lan"]);
    assert!(unknown.contains("status: NXDOMAIN"), "{unknown}");
    b4d.wait_for_line("upstream servers 2001:db8:1::53", secs(1));
}

/// OpenWrt's dnsmasq (`nonwildcard`: bind-dynamic, SO_REUSEADDR on each
/// address) still serving the LAN address after b4d is installed: b4d does
/// not share the port, says once why and how to fix it, keeps running, and
/// takes the port once dnsmasq is gone.
#[test]
fn port_53_held_by_dnsmasq_is_waited_for_and_taken_once_free() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("port_53_held_by_dnsmasq_is_waited_for_and_taken_once_free");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let dnsmasq = lab.router.spawn(
        &lab.dir,
        "dnsmasq",
        "dnsmasq",
        &[
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--log-facility=-",
            "--no-resolv",
            "--no-hosts",
            "--bind-dynamic",
            "--interface=eth1",
            "--address=/www.example.test/198.51.100.99",
        ],
    );
    dnsmasq.wait_for_line("started", secs(10));
    let b4d = lab.spawn_b4d(
        "\toption dhcpv6 'off'\n\toption aftr '2001:db8:1::1'\n",
        &format!("\tlist dns_server '{UPSTREAM_A}'\n"),
    );
    let warning = b4d.wait_for_line("cannot listen on 192.168.1.1:53", secs(10));
    assert!(
        warning.contains("in use") && warning.contains("uci set b4d.lan.dns_proxy=0"),
        "{warning}"
    );
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test", "A"])),
        ["198.51.100.99"],
        "dnsmasq answers, alone"
    );
    assert!(b4d.is_running(), "b4d keeps running without port 53");

    dnsmasq.signal(Signal::Term);
    dnsmasq.wait_exit(secs(5));
    b4d.wait_for_line("proxy listening on 192.168.1.1:53", secs(10));
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test", "A"])),
        ["192.0.2.80"]
    );
    assert_eq!(b4d.count_matching("cannot listen on"), 1, "said once");
}

#[test]
fn large_answers_over_udp_and_tc_then_tcp() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("large_answers_over_udp_and_tc_then_tcp");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let _b4d = lab.b4d(&[UPSTREAM_A]);

    // 3900 bytes of TXT in one UDP answer with EDNS 4096 (RFC 5625 §4.4.3).
    let udp = lab.ask(&["+bufsize=4096", "+ignore", "big.example.test", "TXT"]);
    assert!(!udp.contains("Truncated"), "{udp}");
    assert!(udp.contains("status: NOERROR"), "{udp}");
    let size: usize = udp
        .lines()
        .find_map(|l| l.split("MSG SIZE  rcvd: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("message size line");
    assert!(size > 3900 && size <= 4096, "answer size {size}");
    assert!(udp.contains("IN\tTXT"), "{udp}");

    // Without EDNS the 512-byte limit applies: TC, then dig retries over TCP,
    // which b4d forwards over TCP.
    let tc = lab.ask(&["+noedns", "big.example.test", "TXT"]);
    assert!(tc.contains("Truncated, retrying in TCP mode"), "{tc}");
    assert!(tc.contains("IN\tTXT"), "full answer over TCP:\n{tc}");
    let tcp = lab.ask(&["+tcp", "www.example.test", "A"]);
    assert!(tcp.contains("192.0.2.80"), "{tcp}");
}

/// A query as raw bytes: ID 0x4b4d, RD, `name`, OPT 4096 with DO.
fn raw_dnssec_query(name: &str, qtype: u16) -> String {
    let mut q = vec![0x4b, 0x4d, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    q.extend(dns_wire_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
    hex(&q)
}

const RAW_QUERY_PY: &str = r#"import socket,sys
h,p,q=sys.argv[1],int(sys.argv[2]),bytes.fromhex(sys.argv[3])
s=socket.socket(socket.AF_INET6 if ':' in h else socket.AF_INET,socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q,(h,p))
print(s.recv(65535).hex())
"#;

#[test]
fn dnssec_answers_are_byte_identical_to_direct_ones() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("dnssec_answers_are_byte_identical_to_direct_ones");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let _b4d = lab.b4d(&[UPSTREAM_A]);
    let script = lab
        .dir
        .write("raw_query.py", RAW_QUERY_PY)
        .display()
        .to_string();

    let signed = lab.ask(&["+dnssec", "www.example.test", "A"]);
    assert!(signed.contains("RRSIG\tA 13 3 300"), "{signed}");
    for (name, qtype) in [("www.example.test", 28u16), ("nope.example.test", 1)] {
        let query = raw_dnssec_query(name, qtype);
        let direct = lab
            .router
            .exec_stdout("python3", &[&script, UPSTREAM_A, "53", &query]);
        let proxied = lab
            .client
            .exec_stdout("python3", &[&script, "192.168.1.1", "53", &query]);
        assert_eq!(
            proxied, direct,
            "{name}: b4d's answer is the upstream's, byte for byte"
        );
        assert!(
            direct.contains("002e0001"),
            "an answer with RRSIGs: {direct}"
        );
    }
}

#[test]
fn failover_then_servfail_in_bounded_time() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("failover_then_servfail_in_bounded_time");
    let unbound_a = lab.unbound("unbound-a", &[UPSTREAM_A]);
    let unbound_b = lab.unbound("unbound-b", &[UPSTREAM_B]);
    let b4d = lab.b4d(&[UPSTREAM_A, UPSTREAM_B]);
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test"])),
        ["192.0.2.80"]
    );

    unbound_a.stop();
    // Not from the cache (a name not asked before), so A must be skipped.
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test", "AAAA"])),
        ["2001:db8::80"]
    );
    assert!(unbound_b.process().count_matching("www.example.test. AAAA") >= 1);

    unbound_b.stop();
    let started = Instant::now();
    let out = lab.ask(&["ns.example.test", "AAAA"]);
    let took = started.elapsed();
    assert!(out.contains("status: SERVFAIL"), "{out}");
    // Bounded, not fast: the proxy gives up after its 3 s budget; the bound
    // here only has to tell "gives up" from "never answers" (dig waits 5 s).
    assert!(took < secs(5), "SERVFAIL after {took:?}");
    // Stopped servers answer with ICMP port unreachable: failover at once.
    assert!(b4d.count_matching("unreachable") >= 2, "{}", b4d.tail(20));
}

const SILENT_PY: &str = r#"import socket,sys
s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind((sys.argv[1],53))
print('ready',flush=True)
while True:
    s.recvfrom(4096)
    print('query',flush=True)
"#;

#[test]
fn a_silent_upstream_times_out_and_the_next_one_answers() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("a_silent_upstream_times_out_and_the_next_one_answers");
    let script = lab.dir.write("silent.py", SILENT_PY).display().to_string();
    let silent = lab
        .upstream
        .spawn(&lab.dir, "silent", "python3", &[&script, UPSTREAM_FAKE]);
    silent.wait_for_line("ready", secs(5));
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    // The silent one first in the list, so it is tried first.
    let b4d = lab.b4d(&[UPSTREAM_FAKE, UPSTREAM_A]);
    let started = Instant::now();
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test"])),
        ["192.0.2.80"]
    );
    let took = started.elapsed();
    // Answered within dig's own first try (5 s): the proxy failed over.
    assert!(took < secs(5), "answered after {took:?}");
    b4d.wait_for_line("no answer from [2001:db8:1::55]:53 in time", secs(5));
    // Now the answering server is the faster one and is asked first: the
    // silent one does not even see the next query.
    let asked_silent = silent.count_matching("query");
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test", "AAAA"])),
        ["2001:db8::80"]
    );
    assert_eq!(
        silent.count_matching("query"),
        asked_silent,
        "the silent server was asked first again"
    );
}

const SPOOFER_PY: &str = r#"import socket,struct,sys,time
a=sys.argv[1]
s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind((a,53))
o=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); o.bind((a,5353))
print('ready',flush=True)
while True:
    q,src=s.recvfrom(4096)
    i=12
    while q[i]!=0: i+=q[i]+1
    qs=q[12:i+5]
    qid=struct.unpack('>H',q[:2])[0]
    ans=lambda x,ip: struct.pack('>HHHHHH',x,0x8180,1,1,0,0)+qs+bytes([0xc0,12,0,1,0,1,0,0,0,60,0,4])+bytes(ip)
    s.sendto(ans(qid^0x5555,[6,6,6,6]),src)
    o.sendto(ans(qid,[6,6,6,7]),src)
    print('spoofed',src,flush=True)
    time.sleep(0.1)
    s.sendto(ans(qid,[192,0,2,1]),src)
"#;

#[test]
fn spoofed_answers_are_ignored() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("spoofed_answers_are_ignored");
    let script = lab
        .dir
        .write("spoofer.py", SPOOFER_PY)
        .display()
        .to_string();
    let spoofer = lab
        .upstream
        .spawn(&lab.dir, "spoofer", "python3", &[&script, UPSTREAM_FAKE]);
    spoofer.wait_for_line("ready", secs(5));
    let b4d = lab.b4d(&[UPSTREAM_FAKE]);

    // The wrong-ID answer comes first, the wrong-port one second: only the
    // genuine one, 100 ms later, may reach the client.
    assert_eq!(
        short(&lab.ask(&["+short", "spoof.example", "A"])),
        ["192.0.2.1"]
    );
    spoofer.wait_for_line("spoofed", secs(1));
    b4d.wait_for_line("reply with the wrong ID", secs(2));
    assert_eq!(
        short(&lab.ask(&["+short", "other.example", "A"])),
        ["192.0.2.1"]
    );
}

#[test]
fn nothing_answers_on_the_wan_side() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("nothing_answers_on_the_wan_side");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let b4d = lab.b4d(&[UPSTREAM_A]);
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test"])),
        ["192.0.2.80"]
    );

    let wan = format!("@{ROUTER_WAN}");
    for transport in ["+notcp", "+tcp"] {
        let out = dig_text(
            &lab.upstream,
            &[&wan, transport, "+time=1", "+tries=1", "www.example.test"],
        );
        assert!(
            !out.contains("192.0.2.80") && !out.contains("status:"),
            "{transport} answered on the WAN:\n{out}"
        );
    }
    // A source outside the LAN subnet reaching the LAN address (as a packet
    // from the tunnel could) is not answered either.
    lab.router.sysctl("net.ipv4.conf.all.rp_filter", "0");
    lab.router.sysctl("net.ipv4.conf.eth1.rp_filter", "0");
    lab.client.add_addr("eth0", "10.9.9.9/32");
    let outside = dig_text(
        &lab.client,
        &[
            PROXY,
            "-b",
            "10.9.9.9",
            "+time=1",
            "+tries=1",
            "www.example.test",
        ],
    );
    assert!(!outside.contains("192.0.2.80"), "{outside}");
    b4d.wait_for_line("client not on the LAN subnet", secs(2));
    let udp = lab.router.exec_stdout("ss", &["-H", "-uln"]);
    let tcp = lab.router.exec_stdout("ss", &["-H", "-tln"]);
    for line in udp
        .lines()
        .chain(tcp.lines())
        .filter(|l| l.contains(":53 "))
    {
        assert!(
            line.contains("192.168.1.1:53"),
            "listening beyond the LAN address: {line}"
        );
    }
}

const BAD_TCP_PY: &str = r#"import socket,sys,time
def conn():
    c=socket.create_connection(('192.168.1.1',53),timeout=15); return c
idle=conn()
zero=conn(); zero.sendall(b'\x00\x00')
print('zero-length:', zero.recv(10)==b'', flush=True)
q=b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x04test\x00\x00\x01\x00\x01'
big=conn()
try:
    big.sendall(b'\xff\xff'+b'\x00'*65535+len(q).to_bytes(2,'big')+q); r=big.recv(65535)
except OSError:
    r=b''
print('64k frame refused:', r==b'', flush=True)
short=conn(); short.sendall(b'\x00\x05\x01\x02\x03\x04\x05')
for i in range(300):
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.sendto(bytes([i%256])*(i%40),('192.168.1.1',53)); u.close()
t=time.time(); r=idle.recv(10); print('idle closed after', round(time.time()-t), r==b'', flush=True)
"#;

#[test]
fn bad_input_is_dropped_and_the_proxy_keeps_answering() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("bad_input_is_dropped_and_the_proxy_keeps_answering");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let b4d = lab.b4d(&[UPSTREAM_A]);
    let script = lab
        .dir
        .write("bad_tcp.py", BAD_TCP_PY)
        .display()
        .to_string();
    let bad = lab
        .client
        .spawn(&lab.dir, "bad-client", "python3", &[&script]);
    bad.wait_for_line("zero-length: True", secs(5));
    // No query needs more than 4 KiB: a 64 KiB frame closes the connection.
    bad.wait_for_line("64k frame refused: True", secs(5));
    // Meanwhile the proxy keeps serving.
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test"])),
        ["192.0.2.80"]
    );
    let idle = bad.wait_for_line("idle closed after", secs(20));
    assert!(idle.ends_with("True"), "{idle}");
    b4d.wait_for_line("dropped a packet: TCP frame of length 0", secs(1));
    b4d.wait_for_line(
        "dropped a packet: TCP frame of length 0 or over 4 KiB",
        secs(1),
    );
    b4d.wait_for_line("dropped a packet: malformed query", secs(1));
    b4d.wait_for_line("dropped a packet: idle TCP client", secs(1));
    assert!(b4d.is_running());
    assert_eq!(
        short(&lab.ask(&["+short", "+tcp", "www.example.test"])),
        ["192.0.2.80"]
    );
}

#[test]
fn upstreams_learned_over_dhcpv6_are_followed() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("upstreams_learned_over_dhcpv6_are_followed");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let isp = Kea6Config {
        dns_servers: vec![UPSTREAM_A.parse().unwrap()],
        ..Kea6Config::default()
    };
    let kea = Kea6Server::start(&lab.upstream, &lab.dir, "kea", &isp);
    kea.wait_ready();
    let b4d = lab.b4d_with("\toption dhcpv6 'stateless'\n", "");
    b4d.wait_for_line("event: dns-servers-changed 2001:db8:1::53", secs(20));
    b4d.wait_for_line("upstream servers 2001:db8:1::53", secs(2));
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test"])),
        ["192.0.2.80"]
    );
}

/// A cascaded OpenWrt's odhcpd names its own link-local address in option
/// 23 when its LAN has no other: the proxy and the AFTR lookup ask it
/// through the WAN (a link-local address means nothing without its link).
#[test]
fn link_local_upstreams_learned_over_dhcpv6_are_asked_through_the_wan() {
    if !require_dns_tools() {
        return;
    }
    let lab = lab("link_local_upstreams_learned_over_dhcpv6_are_asked_through_the_wan");
    // Kea binds the kernel's own link-local address: once it is ready.
    lab.upstream.wait_link_local_ready("eth0");
    lab.upstream.add_addr_nodad("eth0", "fe80::53/64");
    lab.router.wait_link_local_ready("eth0");
    let zone = signed_test_zone(&lab.dir, 3900);
    let listen = ["fe80::53%eth0".to_string()];
    let _unbound = Unbound::start_on(&lab.upstream, &lab.dir, "unbound", &listen, &zone);
    let isp = Kea6Config {
        dns_servers: vec!["fe80::53".parse().unwrap()],
        aftr_name: Some("ns.example.test".into()),
        ..Kea6Config::default()
    };
    let kea = Kea6Server::start(&lab.upstream, &lab.dir, "kea", &isp);
    kea.wait_ready();
    let b4d = lab.spawn_b4d_with_tunnel(
        "\toption dhcpv6 'stateless'\n",
        "\toption enabled '1'\n",
        "",
    );
    b4d.wait_for_line("proxy listening on 192.168.1.1:53", secs(10));
    b4d.wait_for_line("upstream servers fe80::53", secs(20));
    assert_eq!(
        short(&lab.ask(&["+short", "www.example.test"])),
        ["192.0.2.80"]
    );
    b4d.wait_for_line("AFTR: ns.example.test is [2001:db8:1::53]", secs(10));
}

#[test]
fn dhcpv4_clients_are_found_by_name() {
    if !require_dns_tools() || find_in_path("udhcpc").is_none() {
        assert!(std::env::var_os("CI").is_none(), "udhcpc missing under CI");
        return;
    }
    let lab = lab("dhcpv4_clients_are_found_by_name");
    let _unbound = lab.unbound("unbound", &[UPSTREAM_A]);
    let b4d = lab.b4d(&[UPSTREAM_A]);
    let script = lab.dir.write(
        "udhcpc.script",
        "#!/bin/sh\necho \"udhcpc-event $1 ip=$ip\"\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = script.display().to_string();
    let udhcpc = lab.client.spawn(
        &lab.dir,
        "udhcpc",
        "udhcpc",
        &[
            "-f",
            "-i",
            "eth0",
            "-s",
            &script,
            "-x",
            "hostname:phone",
            "-t",
            "20",
            "-T",
            "1",
        ],
    );
    let bound = udhcpc.wait_for_line("udhcpc-event bound", secs(20));
    let ip = bound
        .split("ip=")
        .nth(1)
        .expect("an address")
        .trim()
        .to_string();
    let found = poll_until(secs(5), || {
        let answer = short(&lab.ask(&["+short", "phone.lan"]));
        (answer == [ip.clone()]).then_some(())
    });
    assert!(found.is_some(), "phone.lan → {ip}\n{}", b4d.tail(20));
    assert_eq!(short(&lab.ask(&["+short", "-x", &ip])), ["phone.lan."]);
}
