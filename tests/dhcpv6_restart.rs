//! The DHCPv6 binding survives a b4d kill -9 (wan.lease_file): the restarted
//! b4d publishes it before any packet goes out, while the ISP's server is
//! down, and Rebinds it when the server is back (RFC 8415 §18.2.12). In three
//! namespaces the test creates and removes:
//!
//! ```text
//!  lan ns               router ns (b4d)                  isp ns
//!  eth0 192.168.1.100 ─ eth1 192.168.1.1 | eth0 2001:db8:1::2 ─ eth0 kea-dhcp6, unbound 2001:db8:1::53
//! ```

mod support;

use std::net::Ipv6Addr;

use support::ubus_peer::{self, CLIENT_ID};
use support::ubusd_replay::UbusdReplay;
use support::*;

const UPSTREAM: &str = "2001:db8:1::53";

/// The text after `marker` in a log line.
fn after<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split(marker).nth(1).unwrap_or("").trim()
}

/// `ubus call b4 status`, as JSON text.
fn status(ubusd: &mut UbusdReplay, seq: u16) -> String {
    ubus_peer::call(ubusd, seq, "status", secs(5)).to_string()
}

#[test]
fn kill_9_keeps_the_dhcpv6_binding() {
    if !require_root_and_tools() || !require_dns_tools() {
        return;
    }
    let dir = TestDir::new("kill_9_keeps_binding");
    let lan = Netns::new("lan");
    let router = Netns::new("b4d");
    let isp = Netns::new("isp");
    veth_pair(VethEnd::new(&lan, "eth0"), VethEnd::new(&router, "eth1"));
    veth_pair(
        VethEnd::new(&router, "eth0").mac("02:00:00:00:b4:07"),
        VethEnd::new(&isp, "eth0"),
    );
    lan.add_addr("eth0", "192.168.1.100/24");
    router.add_addr("eth1", "192.168.1.1/24");
    // The tunnel (which would install the leased address) needs ip6tnl,
    // which this kernel lacks: a static WAN address reaches the resolver.
    router.add_addr_nodad("eth0", "2001:db8:1::2/64");
    isp.add_addr_nodad("eth0", &format!("{UPSTREAM}/64"));
    let upstream: Ipv6Addr = UPSTREAM.parse().unwrap();
    let _unbound = Unbound::start(
        &isp,
        &dir,
        "unbound",
        &[upstream],
        &signed_test_zone(&dir, 3900),
    );
    let isp_config = Kea6Config {
        pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
        dns_servers: vec![upstream],
        domain_search: vec!["example.net".into()],
        aftr_name: Some("aftr.example.net".into()),
        ..Kea6Config::default()
    };
    let kea = Kea6Server::start(&isp, &dir, "kea", &isp_config);
    kea.wait_ready();
    let lease_file = dir.file("b4d.dhcpv6");
    let socket = dir.file("ubus.sock");
    let config = dir.write(
        "b4d.uci",
        format!(
            "config globals 'globals'\n\toption log_level 'debug'\n\toption state_dir '{state}'\n\
             \toption ubus_socket '{socket}'\n\toption ipv6_handoff 'off'\n\n\
             config wan 'wan'\n\toption device 'eth0'\n\toption lease_file '{lease_file}'\n\n\
             config tunnel 'tunnel'\n\toption enabled '0'\n\n\
             config lan 'lan'\n\toption device 'eth1'\n\toption ipaddr '192.168.1.1'\n\
             \toption dhcp '0'\n",
            state = dir.file("state").display(),
            socket = socket.display(),
            lease_file = lease_file.display(),
        ),
    );
    let start_b4d = |name: &str| {
        router.spawn(
            &dir,
            name,
            env!("CARGO_BIN_EXE_b4d"),
            &["--foreground", "--config", &config.display().to_string()],
        )
    };
    let ask = || {
        dig_text(
            &lan,
            &[
                "@192.168.1.1",
                "+time=5",
                "+tries=1",
                "+short",
                "www.example.test",
            ],
        )
    };

    // Bound, the proxy forwarding to the DHCPv6 resolver, the file written.
    let mut ubusd = UbusdReplay::listen(&socket);
    let b4d = start_b4d("b4d");
    ubus_peer::register(&mut ubusd, CLIENT_ID);
    b4d.wait_for_line("event: lease-acquired", secs(20));
    let address = after(
        &b4d.wait_for_line("event: addresses-changed 2001:db8:1::", secs(2)),
        "addresses-changed",
    )
    .to_string();
    let prefix = after(
        &b4d.wait_for_line("event: prefixes-changed 2001:db8:1", secs(2)),
        "prefixes-changed",
    )
    .to_string();
    b4d.wait_for_line("upstream servers 2001:db8:1::53", secs(5));
    assert_eq!(ask().trim(), "192.0.2.80");
    let file = std::fs::read_to_string(&lease_file).expect("the lease file is written");
    assert!(
        file.contains(&format!("\naddress {address} "))
            && file.contains(&format!("\nprefix {prefix} ")),
        "{file}"
    );

    // kill -9 (no Release), the ISP's server goes away, b4d comes back.
    b4d.signal(Signal::Kill);
    b4d.wait_exit(secs(5));
    kea.stop();
    ubusd.kill();
    ubusd.start();
    let again = start_b4d("b4d-restarted");
    ubus_peer::register(&mut ubusd, CLIENT_ID);
    let restored = again.wait_for_line("restored DHCPv6 lease from", secs(10));
    assert!(
        restored.contains(&format!(
            ": {address}, {prefix}, AFTR aftr.example.net, valid "
        )),
        "{restored}"
    );
    again.wait_for_line("upstream servers 2001:db8:1::53", secs(5));
    // Published before any DHCPv6 packet went out.
    let lines = again.lines();
    let position = |needle: &str| lines.iter().position(|l| l.text.contains(needle));
    let published =
        position("event: dns-servers-changed 2001:db8:1::53").expect("DNS servers published");
    if let Some(first_sent) = position("DHCPv6 sent message type") {
        assert!(published < first_sent, "{}", again.tail(40));
    }
    let shown = status(&mut ubusd, 2);
    for needle in [
        r#""restored":true"#.to_string(),
        format!(r#""addresses":[{{"address":"{address}""#),
        format!(r#""prefixes":[{{"prefix":"{prefix}""#),
        r#""dns_servers":["2001:db8:1::53"],"domains":["example.net"],"aftr_name":"aftr.example.net""#
            .to_string(),
        r#""upstreams":[{"server":"[2001:db8:1::53]:53""#.to_string(),
    ] {
        assert!(shown.contains(&needle), "{needle} not in {shown}");
    }
    // The LAN resolves through the proxy while the DHCPv6 server is down.
    assert_eq!(ask().trim(), "192.0.2.80");

    // The server is back (with its lease database): the Rebind that b4d
    // keeps sending is answered with the same binding.
    let kea = Kea6Server::start(&isp, &dir, "kea", &isp_config);
    kea.wait_ready();
    again.wait_for_line("event: lease-renewed", secs(40));
    kea.process().wait_for_line("REBIND", secs(1));
    assert!(
        kea.process().lines_matching("SOLICIT").is_empty(),
        "no new Solicit"
    );
    assert_eq!(
        again.count_matching("event: addresses-changed"),
        1,
        "{}",
        again.tail(40)
    );
    assert_eq!(again.count_matching("event: prefixes-changed"), 1);
    assert!(again.lines_matching("lease-lost").is_empty());
    let shown = status(&mut ubusd, 3);
    assert!(!shown.contains("restored"), "{shown}");
    assert!(
        shown.contains(&format!(r#""addresses":[{{"address":"{address}""#)),
        "{shown}"
    );

    // The file cannot be written (tmpfs full): the binding it holds may
    // be stale by the next change, so it goes (a crash then starts afresh
    // rather than publish it), and it is written again once it can be.
    let mut tmp = lease_file.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mark = again.mark();
    again.signal(Signal::Usr1);
    again
        .wait_for_line_after(mark, "cannot write lease file", secs(20))
        .expect("the renewal's write fails");
    assert!(!lease_file.exists(), "a binding that may be stale stayed");
    std::fs::remove_dir(&tmp).unwrap();
    again
        .wait_for_line_after(mark, "written again", secs(5))
        .expect("written again once it can be");
    assert!(lease_file.exists());

    // A clean stop releases the binding, and the file goes with it.
    again.signal(Signal::Term);
    again.wait_exit(secs(5));
    assert!(!lease_file.exists(), "released: nothing to keep");
}
