//! Native IPv6 for the LAN in standalone mode, on a real kernel (the kernel
//! lab VM, see tests/support/vm.rs): b4d puts the IA_NA address on the WAN
//! with the lease's lifetimes, carves br-lan's /64 out of the delegated
//! prefix, adds the unreachable route for the whole prefix, and moves all of
//! it when the ISP renumbers. An RA daemon started by the test (radvd,
//! `prefix ::/64`: whatever /64s br-lan has) gives a LAN host SLAAC
//! addresses, and the host reaches an IPv6 server behind the ISP natively.
//!
//! The topology is tests/support/dslite_lab.rs's [`Lab`], plus:
//! ```text
//!  lan6 host (SLAAC) ── br-lan [b4: b4d, radvd] wan0 ── eth0 [isp] eth1 ── server
//!                       <pd>::1/64                 2001:db8:1::1   2001:db8:5e::1   2001:db8:5e::10
//!                                                  route <pd> via 2001:db8:1::100 (the BNG's job)
//! ```

mod support;

use std::net::Ipv6Addr;

use support::dslite_lab::*;
use support::*;

const SERVER6: &str = "2001:db8:5e::10";
const WEB6_PORT: &str = "8086";

/// `valid_lft` and `preferred_lft` (seconds; `u64::MAX` for forever) of
/// `addr` in `ip -6 addr show` output.
fn lifetimes(show: &str, addr: &str) -> Option<(u64, u64)> {
    let mut lines = show.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with(&format!("inet6 {addr}/")) {
            let next = lines.next()?;
            let field = |name: &str| {
                let value = next.split(name).nth(1)?.split_whitespace().next()?;
                match value {
                    "forever" => Some(u64::MAX),
                    v => v.trim_end_matches("sec").parse().ok(),
                }
            };
            return Some((field("valid_lft ")?, field("preferred_lft ")?));
        }
    }
    None
}

/// The delegated prefix b4d logged after `mark`, e.g. "2001:db8:100::/56".
fn logged_prefix(lab: &Lab, mark: usize, starts: &str) -> String {
    let (_, line) = lab
        .b4d()
        .wait_for_line_after(
            mark,
            &format!("LAN IPv6: delegated prefix {starts}"),
            secs(30),
        )
        .unwrap_or_else(|| panic!("no delegated prefix logged:\n{}", lab.b4d().tail(40)));
    line.split("delegated prefix ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("prefix in the line")
        .to_string()
}

/// `<prefix>::1`: br-lan's address with ip6hint 0 and ip6ifaceid ::1.
fn bridge_address(prefix: &str) -> String {
    let base: Ipv6Addr = prefix.split('/').next().unwrap().parse().unwrap();
    Ipv6Addr::from(u128::from(base) | 1).to_string()
}

/// Waits until LAN host `index` has a SLAAC address (DAD done) inside the
/// /56 `prefix`; returns it.
fn wait_for_slaac(lab: &Lab, index: usize, prefix: &str) -> String {
    let net: Ipv6Addr = prefix.split('/').next().unwrap().parse().unwrap();
    let in_prefix = |a: &Ipv6Addr| u128::from(*a) >> 72 == u128::from(net) >> 72;
    let deadline = std::time::Instant::now() + secs(30);
    loop {
        let show = lab.lan_hosts[index]
            .ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]);
        let found = show
            .lines()
            .filter(|l| !l.contains("tentative") && !l.contains("deprecated"))
            .filter_map(|l| {
                l.split("inet6 ")
                    .nth(1)?
                    .split('/')
                    .next()?
                    .parse::<Ipv6Addr>()
                    .ok()
            })
            .find(in_prefix);
        if let Some(addr) = found {
            return addr.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no SLAAC address in {prefix} on the LAN host:\n{show}"
        );
        std::thread::sleep(millis(200));
    }
}

/// From LAN host `index`, source `source`: ping the server, then fetch
/// from its web server. Returns the HTTP status line or what failed.
fn reach_server(lab: &Lab, index: usize, source: &str) -> Result<String, String> {
    let host = &lab.lan_hosts[index];
    let ping = host.try_exec("ping", &["-6", "-c", "1", "-W", "2", "-I", source, SERVER6]);
    if !ping.status.success() {
        return Err(format!(
            "ping6 from {source}: {}",
            String::from_utf8_lossy(&ping.stdout)
        ));
    }
    http_fetch_in(
        host,
        &format!(
            "import http.client as h\n\
             c = h.HTTPConnection('{SERVER6}', {WEB6_PORT}, timeout=3, source_address=('{source}', 0))\n\
             c.request('GET', '/')\n\
             r = c.getresponse()\n\
             print(r.status, len(r.read()))"
        ),
    )
}

fn wait_to_reach_server(lab: &Lab, index: usize, source: &str) {
    let deadline = std::time::Instant::now() + secs(20);
    loop {
        match reach_server(lab, index, source) {
            Ok(_) => return,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("LAN host cannot reach {SERVER6} from {source}: {e}")
            }
            Err(_) => std::thread::sleep(millis(200)),
        }
    }
}

/// The ISP's edge routes the delegated prefix to the CPE's WAN address.
fn route_prefix_to_cpe(lab: &Lab, prefix: &str) {
    lab.isp.ip(&[
        "-6", "route", "replace", prefix, "via", FIRST_B4, "dev", "eth0",
    ]);
}

#[test]
fn lan_gets_native_ipv6_from_the_delegated_prefix_and_follows_renumbering() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let mut lab = Lab::new("lan6", 1500);
    // A router forwards IPv6; b4d must then raise the WAN's accept_ra to 2.
    lab.b4.sysctl("net.ipv6.conf.all.forwarding", "1");
    assert_eq!(lab.b4.sysctl_get("net.ipv6.conf.wan0.accept_ra"), "1");
    // An IPv6 server behind the ISP.
    lab.isp.sysctl("net.ipv6.conf.all.forwarding", "1");
    lab.isp.add_addr_nodad("eth1", "2001:db8:5e::1/64");
    lab.server.add_addr_nodad("eth0", &format!("{SERVER6}/64"));
    lab.server
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:5e::1"]);
    let web6 = lab.server.spawn(
        &lab.dir,
        "web6",
        "python3",
        &[
            "-u",
            "-m",
            "http.server",
            WEB6_PORT,
            "--bind",
            SERVER6,
            "--directory",
            "/",
        ],
    );
    web6.wait_for_line("Serving HTTP", secs(20));
    let host = lab.add_ipv6_lan_host("lan6host");

    lab.start_b4d("b4d");
    lab.b4d()
        .wait_for_line("IPv6 hand-off: standalone", secs(10));
    let first = logged_prefix(&lab, 0, "2001:db8:1");
    assert!(first.ends_with("/56"), "{first}");
    lab.b4d().wait_for_line(
        &format!("LAN IPv6: add unreachable route {first}"),
        secs(10),
    );
    route_prefix_to_cpe(&lab, &first);
    measure(
        "LAN prefix after the lease (lease-acquired to unreachable route added)",
        between(
            lab.b4d(),
            "event: lease-acquired",
            "LAN IPv6: add unreachable route",
        ),
    );

    // The WAN has the leased address with kea's lifetimes (3000 s / 4000 s).
    let wan = lab.b4.ip(&["-6", "addr", "show", "dev", "wan0"]);
    let (valid, preferred) = lifetimes(&wan, FIRST_B4).unwrap_or_else(|| panic!("{wan}"));
    assert!((3900..=4000).contains(&valid), "valid {valid}:\n{wan}");
    assert!(
        (2900..=3000).contains(&preferred),
        "preferred {preferred}:\n{wan}"
    );
    assert_eq!(lab.b4.sysctl_get("net.ipv6.conf.wan0.accept_ra"), "2");
    lab.b4d()
        .wait_for_line_after(0, "accept_ra set to 2", secs(5))
        .expect("the accept_ra change is logged");

    // br-lan has its /64 from the prefix, with the prefix's lifetimes.
    let first_lan = bridge_address(&first);
    let br = lab.b4.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    assert!(br.contains(&format!("inet6 {first_lan}/64")), "{br}");
    let (valid, preferred) = lifetimes(&br, &first_lan).unwrap();
    assert!((3900..=4000).contains(&valid), "valid {valid}:\n{br}");
    assert!(
        (2900..=3000).contains(&preferred),
        "preferred {preferred}:\n{br}"
    );
    let routes = lab.b4.ip(&["-6", "route", "show", "type", "unreachable"]);
    assert!(
        routes.contains(&format!("unreachable {first}")) && routes.contains("proto 180"),
        "{routes}"
    );

    // radvd announces br-lan's /64s; the LAN host takes a SLAAC address
    // and reaches the server natively (the softwire is ipip6: IPv4 only).
    let radvd = radvd::start(
        &lab.b4,
        &lab.dir,
        "radvd",
        "interface br-lan {\n\
         \tAdvSendAdvert on;\n\
         \tMinRtrAdvInterval 3;\n\
         \tMaxRtrAdvInterval 4;\n\
         \tprefix ::/64 { AdvOnLink on; AdvAutonomous on; };\n\
         };\n",
    );
    let first_host = wait_for_slaac(&lab, host, &first);
    wait_to_reach_server(&lab, host, &first_host);
    web6.wait_for_line(&format!("{first_host} - - "), secs(5));

    // The ISP renumbers the delegated prefix; the B4 renews (SIGUSR1 stands
    // in for T1) and gets the new one.
    let mut config = lab.kea_config.clone();
    config.pd_pool = Some(("2001:db8:200::".into(), 40, 56));
    lab.kea().reload(&config);
    let mark = lab.b4d().mark();
    let renumbered = std::time::Instant::now();
    lab.b4d().signal(Signal::Usr1);
    let second = logged_prefix(&lab, mark, "2001:db8:2");
    lab.b4d().wait_for_line_after(
        mark,
        &format!("LAN IPv6: delegated prefix {first} left the lease"),
        secs(10),
    );
    lab.b4d().wait_for_line_after(
        mark,
        &format!("LAN IPv6: add unreachable route {second}"),
        secs(10),
    );
    route_prefix_to_cpe(&lab, &second);
    measure(
        "renumbering inside b4d (new prefix logged to its LAN address set)",
        between_after(
            lab.b4d(),
            mark,
            &format!("LAN IPv6: delegated prefix {second}"),
            &format!("LAN IPv6: set LAN address {}", bridge_address(&second)),
        ),
    );

    // New /64 on br-lan; the old one deprecated (preferred 0), not dropped.
    let second_lan = bridge_address(&second);
    let br = lab.b4.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    let (_, preferred) = lifetimes(&br, &second_lan).unwrap_or_else(|| panic!("{br}"));
    assert!(preferred > 2900, "{br}");
    let (valid, preferred) = lifetimes(&br, &first_lan).unwrap_or_else(|| panic!("{br}"));
    assert_eq!(preferred, 0, "old LAN prefix not deprecated:\n{br}");
    assert!(valid > 0 && valid <= 7200, "{br}");
    let routes = lab.b4.ip(&["-6", "route", "show", "type", "unreachable"]);
    assert!(
        routes.contains(&format!("unreachable {second}")),
        "{routes}"
    );

    // radvd reads ::/64 prefixes at (re)load; odhcpd follows netlink itself.
    radvd.signal(Signal::Hup);
    let second_host = wait_for_slaac(&lab, host, &second);
    wait_to_reach_server(&lab, host, &second_host);
    measure(
        "renumbering (SIGUSR1 to the LAN host's fetch from its new address)",
        renumbered.elapsed(),
    );
    web6.wait_for_line(&format!("{second_host} - - "), secs(5));

    // A graceful stop takes b4d's LAN state with it.
    lab.b4d().signal(Signal::Term);
    lab.b4d().wait_exit(secs(10));
    let br = lab.b4.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    assert!(
        !br.contains(&first_lan) && !br.contains(&second_lan),
        "{br}"
    );
    let routes = lab.b4.ip(&["-6", "route", "show", "type", "unreachable"]);
    assert!(!routes.contains("proto 180"), "{routes}");
}

/// A CPE namespace (`wan0`, a `br-lan` bridge) facing an ISP namespace with
/// kea (IA_NA 2001:db8:1::100.., IA_PD /56s from 2001:db8:100::/40), and a
/// b4d config for it (`tunnel`: the tunnel section). No kernel lab: the
/// host kernel has no ip6tnl, everything else runs on it.
fn host_setup(
    test: &str,
    globals_extra: &str,
    tunnel: &str,
) -> (TestDir, Netns, Netns, Kea6Server, String) {
    let dir = TestDir::new(test);
    let cpe = Netns::new("cpe");
    let isp = Netns::new("isp");
    veth_pair(
        VethEnd::new(&cpe, "wan0").mac("02:00:00:00:b4:01"),
        VethEnd::new(&isp, "eth0"),
    );
    cpe.ip(&["link", "add", "br-lan", "type", "bridge"]);
    cpe.link_up("br-lan");
    let kea = Kea6Server::start(
        &isp,
        &dir,
        "kea",
        &Kea6Config {
            pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
            ..Kea6Config::default()
        },
    );
    kea.wait_ready();
    let config = format!(
        "config globals 'globals'\n\
         \toption log_level 'debug'\n\
         \toption ubus '0'\n\
         \toption state_dir '{state}'\n{globals_extra}\n\
         config wan 'wan'\n\
         \toption device 'wan0'\n\
         \toption aftr '2001:db8:af::1'\n\
         \toption lease_file '{dhcpv6}'\n\n\
         {tunnel}\
         config lan 'lan'\n\
         \toption device 'br-lan'\n\
         \toption dns_proxy '0'\n\
         \toption dhcp '0'\n\
         \toption lease_file '{leases}'\n",
        state = dir.file("state").display(),
        leases = dir.file("b4d.leases").display(),
        dhcpv6 = dir.file("b4d.dhcpv6").display(),
    );
    let config = dir.write("b4d.uci", config).display().to_string();
    (dir, cpe, isp, kea, config)
}

fn start_b4d(cpe: &Netns, dir: &TestDir, name: &str, config: &str) -> Process {
    cpe.spawn(
        dir,
        name,
        env!("CARGO_BIN_EXE_b4d"),
        &["--foreground", "--config", config],
    )
}

#[test]
fn host_lan_prefix_follows_a_renew_survives_kill_9_is_deprecated_when_dropped_and_goes_at_stop() {
    if !require_root_and_tools() {
        return;
    }
    // The tunnel is on: its WAN address code installs the IA_NA (the host
    // kernel has no ip6tnl, so the tunnel itself never comes up).
    let (dir, cpe, _isp, mut kea, config) = host_setup(
        "host_lan_prefix",
        "\toption ipv6_handoff 'standalone'\n",
        "",
    );
    let b4d = start_b4d(&cpe, &dir, "b4d", &config);
    let line = b4d.wait_for_line("LAN IPv6: delegated prefix 2001:db8:1", secs(20));
    let prefix = line
        .split("delegated prefix ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    b4d.wait_for_line(
        &format!("LAN IPv6: add unreachable route {prefix}"),
        secs(5),
    );
    let lan_addr = bridge_address(&prefix);
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    let (valid, preferred) = lifetimes(&br, &lan_addr).unwrap_or_else(|| panic!("{br}"));
    assert!(
        (3900..=4000).contains(&valid) && (2900..=3000).contains(&preferred),
        "{br}"
    );
    let routes = cpe.ip(&["-6", "route", "show", "type", "unreachable"]);
    assert!(
        routes.contains(&format!("unreachable {prefix}")),
        "{routes}"
    );
    // Someone removes the LAN address and the route: b4d puts them back
    // (woken by the netlink notifications).
    let mark = b4d.mark();
    cpe.ip(&[
        "-6",
        "addr",
        "del",
        &format!("{lan_addr}/64"),
        "dev",
        "br-lan",
    ]);
    cpe.ip(&["-6", "route", "del", "unreachable", &prefix, "proto", "180"]);
    b4d.wait_for_line_after(
        mark,
        &format!("LAN IPv6: add unreachable route {prefix}"),
        secs(10),
    )
    .unwrap_or_else(|| panic!("route not restored:\n{}", b4d.tail(20)));
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    assert!(br.contains(&format!("inet6 {lan_addr}/64")), "{br}");

    // A renew with longer lifetimes refreshes the WAN address and the LAN
    // prefix (SIGUSR1 stands in for T1).
    let longer = Kea6Config {
        pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
        preferred_lifetime: 5000,
        valid_lifetime: 6000,
        ..Kea6Config::default()
    };
    kea.reload(&longer);
    let mark = b4d.mark();
    b4d.signal(Signal::Usr1);
    b4d.wait_for_line_after(mark, "LAN IPv6: set LAN address", secs(20))
        .unwrap_or_else(|| panic!("no refresh:\n{}", b4d.tail(30)));
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    let (valid, preferred) = lifetimes(&br, &lan_addr).unwrap();
    assert!(
        (5900..=6000).contains(&valid) && (4900..=5000).contains(&preferred),
        "{br}"
    );
    let wan = cpe.ip(&["-6", "addr", "show", "dev", "wan0"]);
    let wan_addr = wan
        .lines()
        .find_map(|l| l.trim().strip_prefix("inet6 2001:db8:1::"))
        .map(|rest| format!("2001:db8:1::{}", rest.split('/').next().unwrap()))
        .unwrap_or_else(|| panic!("no IA_NA on the WAN: {wan}"));
    let (valid, preferred) = lifetimes(&wan, &wan_addr).unwrap();
    assert!(
        (5900..=6000).contains(&valid) && (4900..=5000).contains(&preferred),
        "{wan}"
    );

    // kill -9: the LAN keeps its prefix; the next b4d adopts it.
    b4d.signal(Signal::Kill);
    b4d.wait_exit(secs(5));
    let again = start_b4d(&cpe, &dir, "b4d-again", &config);
    again.wait_for_line("LAN IPv6: delegated prefix", secs(20));
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    assert!(br.contains(&format!("inet6 {lan_addr}/64")), "{br}");
    assert_eq!(
        again.count_matching("remove LAN address"),
        0,
        "{}",
        again.tail(20)
    );
    assert_eq!(
        cpe.ip(&["-6", "route", "show", "type", "unreachable"])
            .matches(&prefix)
            .count(),
        1
    );

    // kill -9 again, and the next b4d runs with another ip6hint (a changed
    // configuration is a restart): the old LAN /64 is not removed but
    // deprecated for what it had left (at most 2 h), so that hosts hear it
    // is going (RFC 7084 L-13); the delegated prefix's route stays.
    again.signal(Signal::Kill);
    again.wait_exit(secs(5));
    let hinted = std::fs::read_to_string(&config).unwrap() + "\toption ip6hint '1'\n";
    let hinted = dir.write("b4d-hint1.uci", hinted).display().to_string();
    let third = start_b4d(&cpe, &dir, "b4d-hint1", &hinted);
    third.wait_for_line(
        &format!("LAN IPv6: set LAN address {lan_addr}/64 (preferred 0s, valid "),
        secs(40),
    );
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    let (valid, preferred) = lifetimes(&br, &lan_addr).unwrap_or_else(|| panic!("{br}"));
    assert!(preferred == 0 && (5000..=6000).contains(&valid), "{br}");
    let base: Ipv6Addr = prefix.split('/').next().unwrap().parse().unwrap();
    let hinted_addr = Ipv6Addr::from(u128::from(base) | 1 << 64 | 1).to_string();
    assert!(br.contains(&format!("inet6 {hinted_addr}/64")), "{br}");
    assert_eq!(
        third.count_matching("remove LAN address"),
        0,
        "{}",
        third.tail(20)
    );
    assert_eq!(
        cpe.ip(&["-6", "route", "show", "type", "unreachable"])
            .matches(&prefix)
            .count(),
        1
    );

    // SIGTERM: what b4d put on the LAN goes, the deprecated address too.
    third.signal(Signal::Term);
    assert!(third.wait_exit(secs(10)).success());
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan"]);
    assert!(
        !br.contains(&lan_addr) && !br.contains(&hinted_addr),
        "{br}"
    );
    let routes = cpe.ip(&["-6", "route", "show", "type", "unreachable"]);
    assert!(!routes.contains(&prefix), "{routes}");
}

#[test]
fn host_netifd_mode_leaves_wan_addresses_and_the_lan_to_netifd() {
    if !require_root_and_tools() {
        return;
    }
    // The tunnel is on (it would install the IA_NA /128 in standalone mode;
    // the host kernel has no ip6tnl, so it never comes up either way).
    let (dir, cpe, _isp, _kea, config) =
        host_setup("host_netifd_mode", "\toption ipv6_handoff 'netifd'\n", "");
    let b4d = start_b4d(&cpe, &dir, "b4d", &config);
    b4d.wait_for_line("IPv6 hand-off: netifd", secs(10));
    b4d.wait_for_line("event: lease-acquired", secs(20));
    b4d.wait_for_line("IA_NA address not on the WAN yet", secs(10));
    let wan = cpe.ip(&["-6", "addr", "show", "dev", "wan0", "scope", "global"]);
    assert!(!wan.contains("inet6"), "b4d installed a WAN address: {wan}");
    let br = cpe.ip(&["-6", "addr", "show", "dev", "br-lan", "scope", "global"]);
    assert!(!br.contains("inet6"), "b4d configured the LAN: {br}");
    assert_eq!(b4d.count_matching("LAN IPv6"), 0);
}

/// The WAN's IPv6 default route comes from the ISP's Router Advertisement,
/// which b4d solicits as soon as the WAN link is usable. The CPE forwards
/// IPv6 (a router; OpenWrt turns forwarding on everywhere), so its kernel
/// takes RAs only once b4d has raised accept_ra to 2, and here the kernel
/// sends no solicitation of its own (router_solicitations 0): the Router
/// Solicitation on the wire is b4d's.
fn wan_default_route_comes_from_the_ra_b4d_solicits(test: &str, handoff: &str) {
    let (dir, cpe, isp, _kea, config) =
        host_setup(test, &format!("\toption ipv6_handoff '{handoff}'\n"), "");
    cpe.sysctl("net.ipv6.conf.all.forwarding", "1");
    cpe.sysctl("net.ipv6.conf.wan0.router_solicitations", "0");
    assert_eq!(cpe.sysctl_get("net.ipv6.conf.wan0.accept_ra"), "1");
    isp.sysctl("net.ipv6.conf.all.forwarding", "1");
    let isp_ll = isp.wait_link_local_ready("eth0");
    cpe.wait_link_local_ready("wan0");
    let solicitations = Capture::start(&isp, &dir, "rs", "eth0", "icmp6 and ip6[40] == 133");
    let _ra = radvd::start(&isp, &dir, "isp-radvd", &radvd::isp_config("eth0"));
    let no_route = cpe.ip(&["-6", "route", "show", "default"]);
    assert!(
        no_route.is_empty(),
        "a default route before b4d: {no_route}"
    );

    let b4d = start_b4d(&cpe, &dir, "b4d", &config);
    b4d.wait_for_line("accept_ra set to 2 to keep the RA default route", secs(10));
    let deadline = std::time::Instant::now() + secs(10);
    let route = loop {
        let route = cpe.ip(&["-6", "route", "show", "default", "dev", "wan0"]);
        if route.contains("proto ra") || std::time::Instant::now() > deadline {
            break route;
        }
        std::thread::sleep(millis(50));
    };
    assert!(
        route.contains(&format!("via {isp_ll}")) && route.contains("proto ra"),
        "no RA default route on the WAN: {route:?}"
    );
    assert_eq!(cpe.sysctl_get("net.ipv6.conf.wan0.accept_ra"), "2");
    let sent = solicitations.wait_for_packets("router solicitation", 1, secs(5));
    assert!(sent[0].text.contains("fe80::"), "{}", sent[0].text);

    // ifdown/ifup: the kernel drops the route, and the new link-local
    // address is in DAD (Linux never makes a router's optimistic). b4d
    // solicits at carrier-up all the same, from the unspecified address
    // (RFC 4861 §6.3.7). The answer to that goes to all nodes, which a
    // router may rate-limit (§6.2.6; radvd: 3 s after its last one), so
    // only the solicitation is checked here.
    cpe.link_down("wan0");
    b4d.wait_for_line("WAN wan0 is down", secs(5));
    cpe.link_up("wan0");
    let sent = solicitations.wait_for_packets("router solicitation", 2, secs(5));
    assert!(
        sent[1].text.contains(":: > ff02::2") && sent[1].text.contains("sum ok"),
        "the solicitation after ifup: {}",
        sent[1].text
    );
}

#[test]
fn host_wan_default_route_from_the_solicited_ra_standalone() {
    if !require_root_and_tools() {
        return;
    }
    wan_default_route_comes_from_the_ra_b4d_solicits("host_wan_ra_standalone", "standalone");
}

/// On OpenWrt b4d replaces odhcp6c on wan6, and odhcp6c was what handled
/// the RA there: without this the WAN had no default route at all.
#[test]
fn host_wan_default_route_from_the_solicited_ra_netifd_mode() {
    if !require_root_and_tools() {
        return;
    }
    wan_default_route_comes_from_the_ra_b4d_solicits("host_wan_ra_netifd", "netifd");
}

/// Forwarding turned on after b4d has brought the WAN up (a sysctl or
/// firewall script later in the boot, an admin): the kernel then drops the
/// RA default routes of every device whose accept_ra is not 2
/// (rt6_purge_dflt_routers) and ignores RAs from then on. b4d hears the
/// netconf notification, raises accept_ra to 2 and solicits an RA, so the
/// route comes back; before, the WAN stayed without one until its next
/// carrier change.
#[test]
fn host_forwarding_turned_on_later_gets_the_ra_default_route_back() {
    if !require_root_and_tools() {
        return;
    }
    let (dir, cpe, isp, _kea, config) = host_setup("host_forwarding_later", "", "");
    cpe.sysctl("net.ipv6.conf.all.forwarding", "0");
    cpe.sysctl("net.ipv6.conf.wan0.router_solicitations", "0");
    isp.sysctl("net.ipv6.conf.all.forwarding", "1");
    let isp_ll = isp.wait_link_local_ready("eth0");
    cpe.wait_link_local_ready("wan0");
    let solicitations = Capture::start(&isp, &dir, "rs", "eth0", "icmp6 and ip6[40] == 133");
    let _ra = radvd::start(&isp, &dir, "isp-radvd", &radvd::isp_config("eth0"));
    let b4d = start_b4d(&cpe, &dir, "b4d", &config);
    let ra_route = |what: &str| {
        let deadline = std::time::Instant::now() + secs(20);
        loop {
            let route = cpe.ip(&["-6", "route", "show", "default", "dev", "wan0"]);
            if route.contains("proto ra") {
                assert!(route.contains(&format!("via {isp_ll}")), "{what}: {route}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: no RA default route on the WAN\nb4d:\n{}",
                b4d.tail(30)
            );
            std::thread::sleep(millis(50));
        }
    };
    ra_route("a host's WAN");
    solicitations.wait_for_packets("router solicitation", 1, secs(5));
    assert_eq!(cpe.sysctl_get("net.ipv6.conf.wan0.accept_ra"), "1");
    assert_eq!(b4d.count_matching("accept_ra set to 2"), 0);

    cpe.sysctl("net.ipv6.conf.all.forwarding", "1");
    b4d.wait_for_line("accept_ra set to 2 to keep the RA default route", secs(5));
    assert_eq!(cpe.sysctl_get("net.ipv6.conf.wan0.accept_ra"), "2");
    let sent = solicitations.wait_for_packets("router solicitation", 2, secs(5));
    assert!(sent[1].text.contains("fe80::"), "{}", sent[1].text);
    ra_route("after forwarding was turned on");
}
