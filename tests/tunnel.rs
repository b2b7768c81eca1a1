//! The B4 on a real kernel (the kernel lab VM, see tests/support/vm.rs):
//! b4d builds the ip4ip6 softwire from its DHCPv6 address to an AFTR made
//! of the kernel's ip6tnl + nftables masquerade, and keeps it working
//! through changes.
//!
//! The topology is tests/support/dslite_lab.rs's [`Lab`] with b4d's LAN
//! services off.
//! Times printed as `measure:` lines are read by scripts/bench-tunnel.sh.

mod support;

use std::time::{Duration, Instant};

use support::dslite_lab::*;
use support::ubusd_replay::UbusdReplay;
use support::*;

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

    // A default route through the tunnel that b4d did not add (proto boot,
    // scope link, as `ip route add` makes it): replaced by b4d's own.
    lab.b4
        .ip(&["route", "add", "default", "dev", "ds-b4", "metric", "50"]);
    let deadline = Instant::now() + secs(10);
    while lab
        .b4
        .ip(&["-4", "route", "show", "default"])
        .contains("metric 50")
    {
        assert!(
            Instant::now() < deadline,
            "the foreign route stayed:\n{}",
            lab.b4d().tail(20)
        );
        std::thread::sleep(millis(100));
    }
    let routes = lab.b4.ip(&["-4", "route", "show", "default"]);
    assert!(routes.contains("via 192.0.0.1 dev ds-b4"), "{routes}");
    assert!(lab.ping(&[]));

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
        lab.tunnel_index().as_ref(),
        Some(&index),
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

    // Killed again, and restarted while the ISP's DNS is down (a reload
    // re-executes b4d too): the adopted tunnel stays on its remote instead
    // of going down for the outage.
    lab.stop_dns();
    lab.b4d().signal(Signal::Kill);
    lab.b4d().wait_exit(secs(5));
    lab.start_b4d("b4d-restarted-without-dns");
    let b4d = lab.b4d();
    let kept = b4d.wait_for_line("no DNS server answered", secs(30));
    assert!(kept.contains("keeping the last good address"), "{kept}");
    b4d.wait_for_line("tunnel up: ds-b4", secs(10));
    assert_eq!(lab.tunnel_index(), Some(index), "{}", b4d.tail(40));
    assert_eq!(
        b4d.count_matching("delete the tunnel"),
        0,
        "{}",
        b4d.tail(40)
    );
    assert!(lab.ping(&[]), "IPv4 through the kept tunnel");

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

    // The ISP's routers announce an MTU of 1500 after all, while b4d runs:
    // the RA's MTU option sets the WAN's IPv6 MTU, which no link event
    // reports (only IPv6 link info, RTNLGRP_IPV6_IFINFO): what leaves the
    // WAN is 1500 at most, so the tunnel goes to 1460 at once and 1500-byte
    // IPv4 packets without DF still arrive (fragmented, not dropped).
    // The AFTR's record has a 5 s TTL, and each refresh re-reads the WAN
    // too: start right after one (asked, then answered within the half
    // second), so that the next cannot be what notices.
    let mark = lab.b4d().mark();
    lab.b4d()
        .wait_for_line_after(mark, "AFTR: resolving", secs(10))
        .expect("a TTL refresh of the AFTR");
    std::thread::sleep(millis(500));
    let before_ra = lab.b4d().mark();
    lab.isp_ra.stop(secs(5));
    // radvd sets its own interface's IPv6 MTU to the one it announces, so
    // the AFTR's packets to the CPE are 1500 at most now too: its tunnel
    // goes to 1460 as an ISP's would (else it drops the 1500-byte replies).
    lab.isp.ip(&["link", "set", "aftr0", "mtu", "1460"]);
    lab.isp_ra = radvd::start(
        &lab.isp,
        &lab.dir,
        "isp-radvd-mtu-1500",
        &radvd::isp_config_announcing_mtu("eth0", 1500),
    );
    let (changed, _) = lab
        .b4d()
        .wait_for_line_after(before_ra, "set tunnel MTU 1460", secs(20))
        .expect("the tunnel MTU follows the RA's");
    let next_lookup = lab
        .b4d()
        .wait_for_line_after(before_ra, "AFTR: resolving", Duration::ZERO);
    assert!(
        next_lookup.is_none_or(|(at, _)| at > changed),
        "noticed only at the AFTR's next refresh, not from the kernel's notification"
    );
    assert!(
        lab.tunnel_details().contains("mtu 1460"),
        "{}",
        lab.tunnel_details()
    );
    lab.wait_for_ipv4(secs(10))
        .expect("IPv4 through the tunnel");
    assert!(lab.ping(&["-M", "dont", "-s", "1472"]));
    let mss = lab.b4.exec_stdout("nft", &["list", "table", "inet", "b4"]);
    assert!(mss.contains("maxseg size set 1420"), "{mss}");
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
    lab.kea().reload(&config);
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

    // 2. The ISP renumbers the AFTR: the AAAA record changes (TTL 5 s) and
    //    the old address goes away at once. The ISP's router answers the
    //    next tunnel packet with "no route"; b4d asks DNS again then,
    //    without waiting for the TTL.
    let mark = lab.b4d().mark();
    lab.set_aaaa(&format!(
        "{AFTR2} aftr.example.net\n{AFTR3} aftr2.example.net\n"
    ));
    // The ISP changed DNS first (dnsmasq rereads its hosts file on SIGHUP).
    let deadline = Instant::now() + secs(10);
    while !dig_text(
        &lab.isp,
        &[&format!("@{DNS}"), "+short", "aftr.example.net", "AAAA"],
    )
    .contains(AFTR2)
    {
        assert!(
            Instant::now() < deadline,
            "the ISP's DNS never served {AFTR2}"
        );
        std::thread::sleep(millis(50));
    }
    // Timed from the old address's removal, the last of move_aftr's steps.
    lab.move_aftr(AFTR1, AFTR2);
    let t0 = Instant::now();
    lab.wait_for_ipv4(secs(30))
        .expect("IPv4 after the AAAA change");
    measure(
        "AFTR renumbered (record changed, TTL 5 s; old address withdrawn to IPv4 working)",
        t0.elapsed(),
    );
    let noticed = lab
        .b4d()
        .wait_for_line_after(mark, &format!("AFTR {AFTR1} unreachable"), secs(5))
        .unwrap_or_else(|| panic!("no ICMPv6 error noticed:\n{}", lab.b4d().tail(40)));
    println!("{}", noticed.1);
    measure(
        "AFTR renumbered inside b4d (ICMPv6 error to tunnel moved)",
        between_after(
            lab.b4d(),
            mark,
            &format!("AFTR {AFTR1} unreachable"),
            "tunnel up: ds-b4",
        ),
    );
    assert!(lab.tunnel_details().contains(&format!("remote {AFTR2}")));

    // 3. DHCPv6 option 64 names another AFTR.
    config.aftr_name = Some("aftr2.example.net".into());
    lab.kea().reload(&config);
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
fn a_failing_nft_leaves_the_tunnel_up_without_the_mss_clamp() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    // An OpenWrt with the iptables firewall has no nft at all.
    let mut lab = Lab::new("no_nft", 1500);
    lab.start_b4d_with_env("b4d", &["B4D_NFT=/nonexistent/nft"], &["--foreground"]);
    let b4d = lab.b4d();
    b4d.wait_for_line("MSS clamping not changed", secs(30));
    b4d.wait_for_line("tunnel up: ds-b4", secs(30));
    lab.wait_for_ipv4(secs(10))
        .expect("IPv4 through the tunnel without the clamp");
    // Tried again at later reconciles (a WAN flap takes the tunnel down
    // and builds it again), logged once.
    let mark = b4d.mark();
    lab.b4.link_down("wan0");
    b4d.wait_for_line_after(mark, "tunnel down: WAN device wan0 is down", secs(10))
        .expect("the tunnel down with the WAN");
    let mark = b4d.mark();
    lab.b4.link_up("wan0");
    b4d.wait_for_line_after(mark, "tunnel up: ds-b4", secs(30))
        .expect("the tunnel back after a WAN flap");
    lab.wait_for_ipv4(secs(20)).expect("IPv4 after a WAN flap");
    assert_eq!(
        b4d.count_matching("MSS clamping not changed"),
        1,
        "{}",
        b4d.tail(40)
    );
}

/// Another IPv4 default route at the tunnel's metric (an LTE uplink): the
/// kernel keeps one per metric and refuses b4d's. b4d names the route in
/// the way and the option to set, and once `tunnel.metric` is another
/// (uci commit + reload) adds its own.
#[test]
fn a_default_route_at_the_tunnels_metric_is_named_and_another_metric_fixes_it() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("metric_clash", 1500);
    lab.b4.ip(&["link", "add", "lte0", "type", "dummy"]);
    lab.b4.link_up("lte0");
    lab.b4.add_addr("lte0", "10.9.9.2/24");
    lab.b4
        .ip(&["route", "add", "default", "via", "10.9.9.1", "dev", "lte0"]);
    lab.start_b4d("b4d");
    lab.b4d().wait_for_line(
        "the IPv4 default route via 10.9.9.1 dev lte0 has metric 0 too; set tunnel.metric",
        secs(30),
    );
    let config = std::fs::read_to_string(&lab.config_path).unwrap();
    let moved = format!("{config}\nconfig tunnel 'tunnel'\n\toption metric '10'\n");
    std::fs::write(&lab.config_path, moved).unwrap();
    let mark = lab.b4d().mark();
    lab.b4d().signal(Signal::Hup);
    lab.b4d()
        .wait_for_line_after(mark, "tunnel up: ds-b4", secs(30))
        .expect("the tunnel up with its own metric");
    let routes = lab.b4.ip(&["-4", "route", "show", "default"]);
    let tunnel_route = routes
        .lines()
        .find(|l| l.contains("via 192.0.0.1 dev ds-b4"));
    assert!(
        tunnel_route.is_some_and(|l| l.ends_with("metric 10") || l.contains("metric 10 "))
            && routes.contains("dev lte0"),
        "{routes}"
    );
}

#[test]
fn a_clamp_table_deleted_by_another_program_is_loaded_again() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("clamp_deleted", 1500);
    lab.start_b4d("b4d");
    let b4d = lab.b4d();
    b4d.wait_for_line("tunnel up: ds-b4", secs(30));
    let table_there = || {
        lab.b4
            .try_exec("nft", &["list", "table", "inet", "b4"])
            .status
            .success()
    };
    let wait_for_table = |what: &str| {
        let start = Instant::now();
        while !table_there() {
            assert!(
                start.elapsed() < secs(10),
                "{what}: no table inet b4\n{}",
                b4d.tail(20)
            );
            std::thread::sleep(millis(100));
        }
    };
    wait_for_table("at start");
    // A user's delete, then a script's flush of the whole ruleset.
    for (n, command) in [
        ["delete", "table", "inet", "b4"].as_slice(),
        ["flush", "ruleset"].as_slice(),
    ]
    .into_iter()
    .enumerate()
    {
        let mark = b4d.mark();
        lab.b4.exec_stdout("nft", command);
        b4d.wait_for_line_after(mark, "was deleted by another program", secs(10))
            .unwrap_or_else(|| panic!("{command:?} not noticed:\n{}", b4d.tail(20)));
        wait_for_table(&format!("after nft {command:?}"));
        // b4d's own reload (a delete and a create in one transaction) does
        // not count as a deletion: no reload loop.
        std::thread::sleep(secs(3));
        assert_eq!(
            b4d.count_matching("load nftables MSS clamping"),
            n + 2,
            "{}",
            b4d.tail(30)
        );
    }
}

#[test]
fn unresolvable_aftr_backs_off_and_never_builds_a_tunnel() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("aftr_nxdomain", 1500);
    let config = kea_config(FIRST_B4, "missing.example.net");
    lab.kea().reload(&config);
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
    lab.kea().reload(&config);
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
    let leases = lab.kea().leases();
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

/// No tunnel `name`, no IPv4 default route, no clamp table in the B4.
fn assert_nothing_left(lab: &Lab, name: &str) {
    let links = lab.b4.ip(&["link", "show"]);
    assert!(!links.contains(name), "the tunnel stayed: {links}");
    let routes = lab.b4.ip(&["-4", "route", "show", "default"]);
    assert!(routes.is_empty(), "a default route stayed: {routes}");
    let tables = lab.b4.exec_stdout("nft", &["list", "tables"]);
    assert!(
        !tables.contains("inet b4"),
        "the clamp table stayed: {tables}"
    );
}

/// A reload (SIGHUP with a changed file) restarts b4d in place and the new
/// process adopts the tunnel it finds by its configured name. One that
/// turns the tunnel off, or renames it, could not be adopted: the old
/// tunnel, its default route and the clamp table would stay, still
/// carrying the LAN's IPv4 with nobody managing them. b4d takes the tunnel
/// down before such a reload; a rename then comes up under the new name.
/// The same after kill -9 and a changed file: nothing tore the tunnel
/// down, so the next start finds it by the alias b4d gave it.
#[test]
fn a_reload_or_a_kill_9_that_renames_or_disables_the_tunnel_leaves_no_old_tunnel() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("reload_tunnel", 1500);
    lab.start_b4d("b4d");
    lab.b4d().wait_for_line("tunnel up: ds-b4", secs(30));
    lab.wait_for_ipv4(secs(10)).expect("IPv4 through ds-b4");
    let config = std::fs::read_to_string(&lab.config_path).unwrap();
    assert!(!config.contains("config tunnel"), "{config}");

    let renamed = format!("{config}\nconfig tunnel 'tunnel'\n\toption name 'dslite'\n");
    std::fs::write(&lab.config_path, &renamed).unwrap();
    let mark = lab.b4d().mark();
    lab.b4d().signal(Signal::Hup);
    lab.b4d()
        .wait_for_line_after(mark, "tunnel up: dslite", secs(30))
        .expect("the tunnel under its new name");
    let links = lab.b4.ip(&["link", "show"]);
    assert!(!links.contains("ds-b4"), "the old tunnel stayed: {links}");
    lab.wait_for_ipv4(secs(10)).expect("IPv4 through dslite");

    let disabled = format!("{config}\nconfig tunnel 'tunnel'\n\toption enabled '0'\n");
    std::fs::write(&lab.config_path, &disabled).unwrap();
    let mark = lab.b4d().mark();
    lab.b4d().signal(Signal::Hup);
    lab.b4d()
        .wait_for_line_after(mark, "tunnel disabled", secs(30))
        .expect("the restarted b4d without a tunnel");
    assert_nothing_left(&lab, "dslite");
    assert!(lab.b4d().is_running());

    // Back to ds-b4, then kill -9 and a rename before the next start.
    std::fs::write(&lab.config_path, &config).unwrap();
    let mark = lab.b4d().mark();
    lab.b4d().signal(Signal::Hup);
    lab.b4d()
        .wait_for_line_after(mark, "tunnel up: ds-b4", secs(30))
        .expect("the tunnel on again");
    // A tunnel from a b4d from before the mark is marked when adopted.
    lab.b4.ip(&["link", "set", "dev", "ds-b4", "alias", ""]);
    lab.b4d().signal(Signal::Kill);
    lab.b4d().wait_exit(secs(5));
    lab.start_b4d("b4d-adopting-unmarked");
    lab.b4d().wait_for_line("tunnel up: ds-b4", secs(30));
    let link = lab.b4.ip(&["link", "show", "dev", "ds-b4"]);
    assert!(link.contains("alias b4d"), "{link}");
    lab.b4d().signal(Signal::Kill);
    lab.b4d().wait_exit(secs(5));
    std::fs::write(&lab.config_path, &renamed).unwrap();
    lab.start_b4d("b4d-renamed-after-kill");
    lab.b4d().wait_for_line("tunnel: removed ds-b4", secs(30));
    lab.b4d().wait_for_line("tunnel up: dslite", secs(30));
    let links = lab.b4.ip(&["link", "show"]);
    assert!(!links.contains("ds-b4"), "the old tunnel stayed: {links}");
    lab.wait_for_ipv4(secs(10)).expect("IPv4 through dslite");

    // kill -9 and the tunnel disabled before the next start.
    lab.b4d().signal(Signal::Kill);
    lab.b4d().wait_exit(secs(5));
    std::fs::write(&lab.config_path, &disabled).unwrap();
    lab.start_b4d("b4d-disabled-after-kill");
    lab.b4d().wait_for_line("tunnel: removed dslite", secs(30));
    assert_nothing_left(&lab, "dslite");
}
