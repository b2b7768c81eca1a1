//! The B4 on a real kernel (the kernel lab VM, see tests/support/vm.rs):
//! b4d builds the ip4ip6 softwire from its DHCPv6 address to an AFTR made
//! of the kernel's ip6tnl + nftables masquerade, and keeps it working
//! through changes.
//!
//! Topology (one namespace each):
//!
//! ```text
//!  host 192.168.1.100 ── lan0 [b4: b4d] wan0 ── eth0 [isp] eth1 ── server 198.51.100.10
//!                          192.168.1.1      2001:db8:1::1/64   198.51.100.1
//!                                           lo: 2001:db8:53::1 (DNS, dnsmasq)
//!                                               2001:db8:af::1 (AFTR, ip6tnl aftr0)
//!                                           kea-dhcp6 on eth0 (IA_NA, IA_PD, 23, 64)
//! ```
//! The B4's IPv6 default route stands in for the ISP's Router Advertisement.
//! Times printed as `measure:` lines are read by scripts/bench-tunnel.sh.

mod support;

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use support::aftr::{Aftr, AftrConfig};
use support::ubusd_replay::UbusdReplay;
use support::*;

const SERVER: &str = "198.51.100.10";
const AFTR1: &str = "2001:db8:af::1";
const AFTR2: &str = "2001:db8:af::2";
const AFTR3: &str = "2001:db8:af::3";
const DNS: &str = "2001:db8:53::1";
const FIRST_B4: &str = "2001:db8:1::100";
const SECOND_B4: &str = "2001:db8:1::200";

struct Lab {
    dir: TestDir,
    host: Netns,
    b4: Netns,
    isp: Netns,
    _server: Netns,
    kea: Kea6Server,
    kea_config: Kea6Config,
    dns: Process,
    aftr: Aftr,
    _web: Process,
    b4d: Option<Process>,
    config_path: String,
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn kea_config(pool_address: &str, aftr_name: &str) -> Kea6Config {
    Kea6Config {
        interface: "eth0".into(),
        pool: Some(format!("{pool_address}-{pool_address}")),
        pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
        dns_servers: vec![v6(DNS)],
        aftr_name: Some(aftr_name.into()),
        ..Kea6Config::default()
    }
}

impl Lab {
    fn new(test: &str, wan_mtu: u32) -> Lab {
        let dir = TestDir::new(test);
        let host = Netns::new("host");
        let b4 = Netns::new("b4");
        let isp = Netns::new("isp");
        let server = Netns::new("srv");
        veth_pair(VethEnd::new(&host, "eth0"), VethEnd::new(&b4, "lan0"));
        veth_pair(
            VethEnd::new(&b4, "wan0").mac("02:00:00:00:b4:01"),
            VethEnd::new(&isp, "eth0"),
        );
        veth_pair(VethEnd::new(&isp, "eth1"), VethEnd::new(&server, "eth0"));
        for (ns, dev) in [(&b4, "wan0"), (&isp, "eth0")] {
            ns.ip(&["link", "set", dev, "mtu", &wan_mtu.to_string()]);
        }

        host.add_addr("eth0", "192.168.1.100/24");
        host.ip(&["route", "add", "default", "via", "192.168.1.1"]);
        b4.add_addr("lan0", "192.168.1.1/24");
        b4.sysctl("net.ipv4.ip_forward", "1");
        isp.add_addr_nodad("eth0", "2001:db8:1::1/64");
        isp.add_addr_nodad("lo", &format!("{DNS}/128"));
        isp.add_addr_nodad("lo", &format!("{AFTR1}/128"));
        isp.add_addr("eth1", "198.51.100.1/24");
        server.add_addr("eth0", &format!("{SERVER}/24"));
        server.ip(&["route", "add", "default", "via", "198.51.100.1"]);
        let isp_ll = isp.wait_link_local_ready("eth0");
        b4.wait_link_local_ready("wan0");
        b4.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &isp_ll.to_string(),
            "dev",
            "wan0",
        ]);

        let hosts = dir.write(
            "aftr.hosts",
            format!("{AFTR1} aftr.example.net\n{AFTR3} aftr2.example.net\n"),
        );
        let dns = isp.spawn(
            &dir,
            "dns",
            "dnsmasq",
            &[
                "-k",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--port=53",
                &format!("--listen-address={DNS}"),
                "--bind-interfaces",
                &format!("--addn-hosts={}", hosts.display()),
                "--local-ttl=5",
                // Names of the zone not in the hosts file: NXDOMAIN.
                "--local=/example.net/",
                "--log-queries",
                "--log-facility=-",
                "--user=root",
                "--pid-file=",
            ],
        );
        dns.wait_for_line("started, version", secs(10));

        let kea_config = kea_config(FIRST_B4, "aftr.example.net");
        let kea = Kea6Server::start(&isp, &dir, "kea", &kea_config);
        kea.wait_ready();

        let aftr = Aftr::start(
            &isp,
            &AftrConfig {
                aftr_addr: v6(AFTR1),
                b4_addr: v6(FIRST_B4),
                ..AftrConfig::default()
            },
        );
        // De-NATed replies go back into the softwire.
        isp.ip(&["route", "add", "192.168.1.0/24", "dev", "aftr0"]);
        let web = server.spawn(
            &dir,
            "web",
            "python3",
            &[
                "-u",
                "-m",
                "http.server",
                "8080",
                "--bind",
                SERVER,
                "--directory",
                "/",
            ],
        );
        web.wait_for_line("Serving HTTP", secs(20));

        let state = dir.file("state");
        let config = format!(
            "config globals 'globals'\n\
             \toption log_level 'debug'\n\
             \toption ubus_socket '{}'\n\
             \toption state_dir '{}'\n\n\
             config wan 'wan'\n\
             \toption device 'wan0'\n\n\
             config lan 'lan'\n\
             \toption device 'lan0'\n\
             \toption ipaddr '192.168.1.1'\n\
             \toption dns_proxy '0'\n\
             \toption dhcp '0'\n",
            ubus_socket(test),
            state.display()
        );
        let config_path = dir.write("b4d.uci", config).display().to_string();
        Lab {
            dir,
            host,
            b4,
            isp,
            _server: server,
            kea,
            kea_config,
            dns,
            aftr,
            _web: web,
            b4d: None,
            config_path,
        }
    }

    fn start_b4d(&mut self, name: &str) {
        let process = self.b4.spawn(
            &self.dir,
            name,
            env!("CARGO_BIN_EXE_b4d"),
            &["--foreground", "--config", &self.config_path],
        );
        self.b4d = Some(process);
    }

    fn b4d(&self) -> &Process {
        self.b4d.as_ref().expect("b4d started")
    }

    fn ping(&self, extra: &[&str]) -> bool {
        let mut args = vec!["-c", "1", "-W", "1"];
        args.extend_from_slice(extra);
        args.push(SERVER);
        self.host.try_exec("ping", &args).status.success()
    }

    /// Pings until one answer comes back; how long that took.
    fn wait_for_ipv4(&self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.ping(&[]) {
                return Some(start.elapsed());
            }
            std::thread::sleep(millis(50));
        }
        None
    }

    fn http_fetch(&self) -> String {
        let out = self.host.try_exec(
            "python3",
            &[
                "-c",
                &format!(
                    "import urllib.request as u; r = u.urlopen('http://{SERVER}:8080/', timeout=10); print(r.status, len(r.read()))"
                ),
            ],
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn tunnel_details(&self) -> String {
        String::from_utf8_lossy(
            &self
                .b4
                .try_exec("ip", &["-d", "link", "show", "ds-b4"])
                .stdout,
        )
        .into_owned()
    }

    fn tunnel_index(&self) -> Option<String> {
        let out = self.b4.try_exec("ip", &["-o", "link", "show", "ds-b4"]);
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .split(':')
                .next()
                .unwrap_or("")
                .to_string()
        })
    }

    /// Re-points the AFTR name in the DNS zone and makes dnsmasq reread it.
    fn set_aaaa(&self, records: &str) {
        self.dir.write("aftr.hosts", records);
        self.dns.signal(Signal::Hup);
    }

    /// Moves the AFTR's endpoint to `addr` (the old one stops answering).
    fn move_aftr(&self, from: &str, to: &str) {
        self.isp.add_addr_nodad("lo", &format!("{to}/128"));
        self.isp
            .ip(&["link", "change", "aftr0", "type", "ip6tnl", "local", to]);
        self.isp
            .ip(&["addr", "del", &format!("{from}/128"), "dev", "lo"]);
    }
}

/// Unix sockets cannot live on the VM's 9p share: the fake ubusd listens
/// in the guest's /tmp.
fn ubus_socket(test: &str) -> String {
    format!("/tmp/b4t-{}-{test}-ubus.sock", std::process::id())
}

fn measure(what: &str, took: Duration) {
    println!("measure: {what} {:.3} s", took.as_secs_f64());
}

/// Time between the first log line containing `from` and the first line
/// after it containing `to`, both at or after line `mark`.
fn between_after(b4d: &Process, mark: usize, from: &str, to: &str) -> Duration {
    let lines = b4d.lines();
    let find = |start: usize, needle: &str| {
        (start..lines.len())
            .find(|&i| lines[i].text.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the b4d log after line {start}"))
    };
    let first = find(mark, from);
    let second = find(first, to);
    lines[second].at.saturating_duration_since(lines[first].at)
}

fn between(b4d: &Process, from: &str, to: &str) -> Duration {
    between_after(b4d, 0, from, to)
}

#[test]
fn b4_carries_ipv4_through_the_softwire_and_adopts_it_after_kill_9() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("b4_carries_ipv4", 1500);
    let capture = Capture::start(&lab.isp, &lab.dir, "wan", "eth0", "ip6 proto 4");
    let lan_capture = Capture::start(&lab.host, &lab.dir, "lan", "eth0", "tcp port 8080");
    lab.start_b4d("b4d");
    let b4d = lab.b4d();
    b4d.wait_for_line("tunnel up: ds-b4", secs(30));
    measure(
        "bring-up (DHCPv6 lease to tunnel and default route)",
        between(b4d, "event: lease-acquired", "tunnel up: ds-b4"),
    );
    let took = lab
        .wait_for_ipv4(secs(10))
        .expect("IPv4 through the tunnel");
    measure("first ping after tunnel up", took);

    // The softwire as RFC 6333 wants it.
    let details = lab.tunnel_details();
    for needle in [
        "ip6tnl ipip6 remote 2001:db8:af::1 local 2001:db8:1::100",
        "encaplimit none",
        "hoplimit 64",
        "tclass inherit",
        "mtu 1460",
    ] {
        assert!(
            details.contains(needle),
            "{needle:?} missing in:\n{details}"
        );
    }
    let addr = lab.b4.ip(&["-4", "addr", "show", "dev", "ds-b4"]);
    assert!(addr.contains("inet 192.0.0.2/29"), "{addr}");
    let routes = lab.b4.ip(&["-4", "route", "show", "default"]);
    assert!(
        routes.contains("default via 192.0.0.1 dev ds-b4"),
        "{routes}"
    );
    let wan = lab.b4.ip(&["-6", "addr", "show", "dev", "wan0"]);
    assert!(wan.contains("inet6 2001:db8:1::100/128"), "{wan}");
    // The B4 never NATs (RFC 7084 DLW-2): the only nftables table is ours,
    // without a nat chain.
    let ruleset = lab.b4.exec_stdout("nft", &["list", "ruleset"]);
    assert!(
        ruleset.contains("table inet b4") && !ruleset.contains("nat"),
        "{ruleset}"
    );

    // TCP through the tunnel, SYN MSS clamped to 1460 - 40.
    let fetched = lab.http_fetch();
    assert!(fetched.starts_with("200 "), "HTTP fetch: {fetched}");
    // Traffic class copied from the inner header (RFC 6333 §7.1).
    assert!(lab.ping(&["-Q", "0xb8"]));
    // A full-size DF-clear IPv4 packet on a 1500 WAN.
    assert!(lab.ping(&["-M", "dont", "-s", "1472"]));
    std::thread::sleep(millis(500));
    capture.stop();
    let packets: Vec<String> = capture.packets().into_iter().map(|p| p.text).collect();
    let all = packets.join("\n");
    let syn = packets
        .iter()
        .find(|p| p.contains("> 198.51.100.10.8080: Flags [S]"))
        .unwrap_or_else(|| panic!("no SYN in the tunnel:\n{all}"));
    assert!(syn.contains("mss 1420"), "SYN not clamped: {syn}");
    // The server's SYN-ACK comes out of the tunnel clamped as well.
    lan_capture.stop();
    let syn_ack = lan_capture.wait_for_packets("Flags [S.]", 1, secs(5));
    assert!(
        syn_ack[0].text.contains("mss 1420"),
        "SYN-ACK not clamped: {}",
        syn_ack[0].text
    );
    let tclass = packets
        .iter()
        .find(|p| p.contains("tos 0xb8") && p.contains("ICMP echo request"))
        .unwrap_or_else(|| panic!("no TOS 0xb8 ping in the tunnel:\n{all}"));
    assert!(
        tclass.contains("class 0xb8"),
        "outer traffic class not copied: {tclass}"
    );
    // What the kernel does with 1500 bytes into a 1460 tunnel: it fragments
    // the inner IPv4 packet, then encapsulates each fragment (RFC 6333 §5.3
    // asks for the opposite; see README "MTU").
    let big: Vec<&String> = packets
        .iter()
        .filter(|p| {
            p.contains("ICMP echo request")
                && p.contains("> 198.51.100.10")
                && p.contains("length 1480")
        })
        .collect();
    let fragments = packets
        .iter()
        .filter(|p| p.contains("ip-proto-1") || p.contains("offset 1440"))
        .count();
    println!(
        "large packet on a 1500 WAN: {} IPv6 packets, inner IPv4 fragments seen: {fragments}\n{}",
        big.len(),
        all
    );
    assert!(fragments >= 1, "expected an inner IPv4 fragment:\n{all}");
    assert!(
        !all.contains("frag ("),
        "the kernel never adds an IPv6 Fragment header here:\n{all}"
    );

    // kill -9: the tunnel stays and carries traffic; a new b4d adopts it.
    let index = lab.tunnel_index().expect("tunnel exists");
    lab.b4d().signal(Signal::Kill);
    lab.b4d().wait_exit(secs(5));
    assert!(lab.ping(&[]), "IPv4 keeps working while b4d is down");
    let started = Instant::now();
    lab.start_b4d("b4d-restarted");
    let b4d = lab.b4d();
    b4d.wait_for_line("tunnel up: ds-b4", secs(30));
    measure(
        "restart after kill -9 to tunnel confirmed",
        started.elapsed(),
    );
    assert_eq!(
        lab.tunnel_index(),
        Some(index),
        "the tunnel was recreated, not adopted"
    );
    assert_eq!(b4d.count_matching("create ip6tnl"), 0, "{}", b4d.tail(40));
    assert_eq!(
        b4d.count_matching("delete the tunnel"),
        0,
        "{}",
        b4d.tail(40)
    );
    assert!(lab.ping(&[]));

    // SIGTERM removes everything b4d made.
    b4d.signal(Signal::Term);
    assert!(b4d.wait_exit(secs(10)).success());
    assert_eq!(lab.tunnel_index(), None, "tunnel left behind");
    assert!(
        !lab.b4
            .try_exec("nft", &["list", "table", "inet", "b4"])
            .status
            .success(),
        "nft table left behind"
    );
    let wan = lab.b4.ip(&["-6", "addr", "show", "dev", "wan0"]);
    assert!(
        !wan.contains("2001:db8:1::100"),
        "WAN address left behind: {wan}"
    );
    assert!(!lab.ping(&[]));
}

#[test]
fn baby_jumbo_wan_gives_a_full_1500_tunnel_without_fragments() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("baby_jumbo", 1540);
    let capture = Capture::start(&lab.isp, &lab.dir, "wan", "eth0", "ip6 proto 4");
    let mut ubusd = UbusdReplay::listen(std::path::Path::new(&ubus_socket("baby_jumbo")));
    lab.start_b4d("b4d");
    ubus_peer::register(&mut ubusd, ubus_peer::CLIENT_ID);
    lab.b4d().wait_for_line("tunnel up: ds-b4", secs(30));
    assert!(
        lab.tunnel_details().contains("mtu 1500"),
        "{}",
        lab.tunnel_details()
    );
    lab.wait_for_ipv4(secs(10))
        .expect("IPv4 through the tunnel");
    assert!(lab.ping(&["-M", "dont", "-s", "1472"]));
    assert!(
        lab.ping(&["-M", "do", "-s", "1472"]),
        "DF-set 1500 passes too"
    );
    std::thread::sleep(millis(500));
    capture.stop();
    let all: Vec<String> = capture.packets().into_iter().map(|p| p.text).collect();
    let whole = all
        .iter()
        .filter(|p| p.contains("ICMP echo request") && p.contains("length 1480"))
        .count();
    assert!(
        whole >= 2,
        "two whole 1500-byte packets expected:\n{}",
        all.join("\n")
    );
    assert!(
        !all.iter().any(|p| p.contains("offset 1")),
        "fragments:\n{}",
        all.join("\n")
    );
    let mss = lab.b4.exec_stdout("nft", &["list", "table", "inet", "b4"]);
    assert!(mss.contains("maxseg size set 1460"), "{mss}");

    // What `ubus call b4 status` and `ubus call b4 check` say on a real
    // kernel with the tunnel up.
    let status = ubus_peer::call(&mut ubusd, 2, "status", secs(5)).to_string();
    println!("ubus call b4 status: {status}");
    for needle in [
        r#""state":"up""#,
        r#""aftr":{"name":"aftr.example.net","addresses":["2001:db8:af::1"],"selected":"2001:db8:af::1""#,
        r#""remote":"2001:db8:af::1","mtu":1500,"encaplimit":"none""#,
        r#""wan":{"device":"wan0","address":"2001:db8:1::100"}"#,
    ] {
        assert!(status.contains(needle), "{needle} not in {status}");
    }
    let check = ubus_peer::call(&mut ubusd, 3, "check", secs(15)).to_string();
    println!("ubus call b4 check: {check}");
    for needle in [
        r#""ok":true,"checks":[{"name":"aftr_reachable","ok":true"#,
        r#"{"name":"tunnel_full_size","ok":true,"detail":"a 1500-byte IPv4 packet (DF) crossed ds-b4 to 192.0.0.1"#,
        r#"{"name":"dns_proxy","skipped":true"#,
    ] {
        assert!(check.contains(needle), "{needle} not in {check}");
    }
}

#[test]
fn wan_address_aftr_record_and_option_64_changes_each_reconverge() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("reconverge", 1500);
    lab.start_b4d("b4d");
    lab.b4d().wait_for_line("tunnel up: ds-b4", secs(30));
    lab.wait_for_ipv4(secs(10))
        .expect("IPv4 through the tunnel");

    // 1. The ISP renumbers the WAN: the pool moves, the B4 renews (SIGUSR1
    //    stands in for T1), gets the new address, and the AFTR follows.
    let mut config = kea_config(SECOND_B4, "aftr.example.net");
    lab.kea.reload(&config);
    let mark = lab.b4d().mark();
    let t0 = Instant::now();
    lab.b4d().signal(Signal::Usr1);
    lab.b4d()
        .wait_for_line_after(mark, &format!("addresses-changed {SECOND_B4}"), secs(15))
        .unwrap_or_else(|| panic!("no new address:\n{}", lab.b4d().tail(40)));
    lab.aftr.set_b4(v6(SECOND_B4));
    let took = lab.wait_for_ipv4(secs(15)).expect("IPv4 after renumbering");
    measure("WAN address change (renew to IPv4 working)", t0.elapsed());
    measure(
        "WAN address change inside b4d (DHCPv6 Reply to tunnel moved)",
        between_after(lab.b4d(), mark, "addresses-changed", "tunnel up: ds-b4"),
    );
    let _ = took;
    assert!(lab.tunnel_details().contains(&format!("local {SECOND_B4}")));
    let wan = lab.b4.ip(&["-6", "addr", "show", "dev", "wan0"]);
    assert!(!wan.contains(FIRST_B4), "old address not removed: {wan}");

    // 2. The AFTR's AAAA record changes (TTL 5 s): b4d notices at TTL expiry.
    let t0 = Instant::now();
    lab.move_aftr(AFTR1, AFTR2);
    lab.set_aaaa(&format!(
        "{AFTR2} aftr.example.net\n{AFTR3} aftr2.example.net\n"
    ));
    lab.wait_for_ipv4(secs(30))
        .expect("IPv4 after the AAAA change");
    measure(
        "AFTR AAAA change (record changed to IPv4 working, TTL 5 s)",
        t0.elapsed(),
    );
    assert!(lab.tunnel_details().contains(&format!("remote {AFTR2}")));

    // 3. DHCPv6 option 64 names another AFTR.
    config.aftr_name = Some("aftr2.example.net".into());
    lab.kea.reload(&config);
    lab.move_aftr(AFTR2, AFTR3);
    let mark = lab.b4d().mark();
    let t0 = Instant::now();
    lab.b4d().signal(Signal::Usr1);
    lab.b4d()
        .wait_for_line_after(mark, "aftr-name-changed aftr2.example.net", secs(15))
        .unwrap_or_else(|| panic!("no new AFTR name:\n{}", lab.b4d().tail(40)));
    lab.wait_for_ipv4(secs(15))
        .expect("IPv4 after the option 64 change");
    measure("option 64 change (renew to IPv4 working)", t0.elapsed());
    measure(
        "option 64 change inside b4d (DHCPv6 Reply to tunnel moved)",
        between_after(lab.b4d(), mark, "aftr-name-changed", "tunnel up: ds-b4"),
    );
    assert!(lab.tunnel_details().contains(&format!("remote {AFTR3}")));
    // Re-convergence never tore the tunnel down and rebuilt it.
    assert_eq!(
        lab.b4d().count_matching("create ip6tnl"),
        1,
        "{}",
        lab.b4d().tail(60)
    );
}

#[test]
fn unresolvable_aftr_backs_off_and_never_builds_a_tunnel() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("aftr_nxdomain", 1500);
    let config = kea_config(FIRST_B4, "missing.example.net");
    lab.kea.reload(&config);
    lab.kea_config = config;
    lab.start_b4d("b4d");
    let b4d = lab.b4d();
    b4d.wait_for_line(
        "AFTR name missing.example.net does not exist (NXDOMAIN",
        secs(30),
    );
    std::thread::sleep(secs(20));
    let attempts = b4d.count_matching("AFTR: resolving missing.example.net");
    println!("lookups in the first ~20 s: {attempts}");
    // Backoff 1, 2, 4, 8 s (±20%): about 5 attempts, where a 3 s flap loop
    // would have made 7 and torn the tunnel down each time.
    assert!(
        (3..=6).contains(&attempts),
        "{attempts} lookups:\n{}",
        b4d.tail(40)
    );
    assert_eq!(b4d.count_matching("create ip6tnl"), 0);
    assert!(lab.tunnel_index().is_none());
    // Fixing the record fixes the B4 on the next retry, without a restart.
    lab.set_aaaa(&format!("{AFTR1} missing.example.net\n"));
    b4d.wait_for_line("tunnel up: ds-b4", secs(40));
    lab.wait_for_ipv4(secs(10))
        .expect("IPv4 once the name resolves");
}

#[test]
fn a_leased_address_that_fails_dad_is_declined_and_replaced() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("dad_failure", 1500);
    // Someone on the link already uses the first address of the pool.
    lab.isp.add_addr_nodad("eth0", &format!("{FIRST_B4}/128"));
    let mut config = kea_config(FIRST_B4, "aftr.example.net");
    config.pool = Some(format!("{FIRST_B4}-2001:db8:1::101"));
    lab.kea.reload(&config);
    lab.aftr.set_b4(v6("2001:db8:1::101"));
    lab.start_b4d("b4d");
    let b4d = lab.b4d();
    b4d.wait_for_line(
        &format!("WAN address {FIRST_B4} failed duplicate address detection: declining it"),
        secs(30),
    );
    b4d.wait_for_line("addresses-changed 2001:db8:1::101", secs(30));
    b4d.wait_for_line("tunnel up: ds-b4 local 2001:db8:1::101", secs(30));
    lab.wait_for_ipv4(secs(15))
        .expect("IPv4 with the replacement address");
    let leases = lab.kea.leases();
    assert!(
        leases.contains(FIRST_B4),
        "kea recorded the decline:\n{leases}"
    );
    let wan = lab.b4.ip(&["-6", "addr", "show", "dev", "wan0"]);
    assert!(
        !wan.contains(&format!("{FIRST_B4}/128")),
        "declined address left on the WAN: {wan}"
    );
}
