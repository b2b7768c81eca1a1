//! Config-level tests: every validation rule, error collection and the render round trip.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const FILE: &str = "/etc/config/b4d";

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, FILE)
}

fn parse_ok(text: &str) -> Config {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}\nfor:\n{text}"),
    }
}

/// What the package's scripts ask (`b4d check-config --get`): the value b4d
/// runs with, whatever the section's name, defaults filled in.
#[test]
fn effective_values_are_found_in_named_and_anonymous_sections_alike() {
    let anonymous = parse_ok("config tunnel\n\toption name 'dslite0'\nconfig wan 'uplink'\n");
    assert_eq!(
        anonymous.effective_value("tunnel.name").as_deref(),
        Some("dslite0")
    );
    assert_eq!(
        anonymous.effective_value("wan.device").as_deref(),
        Some("wan")
    );
    assert_eq!(anonymous.effective_value("lan.dhcp").as_deref(), Some("1"));
    let lists = parse_ok(
        "config lan 'lan'\n\toption dhcp '0'\n\tlist dns_server '2001:db8::1'\n\
         \tlist dns_server '2001:db8::2'\n",
    );
    assert_eq!(lists.effective_value("lan.dhcp").as_deref(), Some("0"));
    assert_eq!(
        lists.effective_value("lan.dns_server").as_deref(),
        Some("2001:db8::1 2001:db8::2")
    );
    assert_eq!(lists.effective_value("lan.ipaddr").as_deref(), Some(""));
    assert_eq!(lists.effective_value("lan.nonsense"), None);
    assert_eq!(lists.effective_value("tunnel"), None);
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:?}\nfor:\n{text}"),
        Err(e) => e.0,
    }
}

/// Asserts that `text` fails with exactly one error whose message starts with the
/// location prefix and contains `why`.
#[track_caller]
fn assert_one_error(text: &str, line: usize, section: &str, option: &str, why: &str) {
    let errs = errors(text);
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        errs.len(),
        1,
        "expected one error, got {shown:#?}\nfor:\n{text}"
    );
    let msg = &shown[0];
    let prefix = format!("{FILE}:{line}: option '{option}' in section '{section}': ");
    assert!(
        msg.starts_with(&prefix),
        "{msg:?} should start with {prefix:?}"
    );
    assert!(msg.contains(why), "{msg:?} should contain {why:?}");
}

#[test]
fn empty_file_is_all_defaults() {
    assert_eq!(parse_ok(""), Config::default());
    assert_eq!(parse_ok("# nothing here\n\n"), Config::default());
    assert_eq!(
        parse_ok("config globals 'globals'\nconfig wan 'wan'\nconfig tunnel\nconfig lan\n"),
        Config::default()
    );
}

#[test]
fn defaults_match_the_documented_table() {
    let c = Config::default();
    assert_eq!(c.globals.log_level, LogLevel::Info);
    assert_eq!(c.globals.state_dir, PathBuf::from("/etc/b4d"));
    assert!(c.globals.ubus);
    assert_eq!(
        c.globals.ubus_socket,
        PathBuf::from("/var/run/ubus/ubus.sock")
    );
    assert_eq!(c.wan.device.as_str(), "wan");
    assert_eq!(c.wan.dhcpv6, DhcpV6Mode::Stateful);
    assert!(c.wan.request_address && c.wan.request_prefix && c.wan.release_on_stop);
    assert!(!c.wan.reconfigure);
    assert_eq!(c.wan.prefix_hint, Some(56));
    assert_eq!(c.wan.solicit_max_rt, Duration::from_secs(3600));
    assert!(c.wan.request_option.is_empty());
    assert_eq!(c.tunnel.name.as_str(), "ds-b4");
    assert_eq!(c.tunnel.mtu, None);
    assert_eq!(c.tunnel.encaplimit, EncapLimit::Disabled);
    assert_eq!(c.tunnel.ipv4_address, Ipv4Addr::new(192, 0, 0, 2));
    assert_eq!(c.tunnel.peer, Ipv4Addr::new(192, 0, 0, 1));
    assert_eq!(c.lan.device.as_str(), "br-lan");
    assert_eq!(c.lan.address, None, "the LAN device's address is followed");
    assert_eq!((c.lan.dhcp_start, c.lan.dhcp_limit), (100, 150));
    assert_eq!(c.lan.lease_time, Duration::from_secs(43_200));
    assert_eq!(
        log::LevelFilter::from(c.globals.log_level),
        log::LevelFilter::Info
    );
    // The built-in interface names bypass the parser; make sure they would pass it.
    for name in [&c.wan.device, &c.tunnel.name, &c.lan.device] {
        assert_eq!(name.as_str().parse::<InterfaceName>().as_ref(), Ok(name));
    }
}

#[test]
fn full_example_parses_into_typed_values() {
    let c = parse_ok(
        "config globals 'globals'\n\
         \toption log_level 'debug'\n\
         \toption state_dir '/overlay/b4d'\n\
         config wan 'wan'\n\
         \toption device 'eth1'\n\
         \toption dhcpv6 'stateless'\n\
         \toption prefix_hint '0'\n\
         \tlist request_option '24'\n\
         \tlist request_option '17'\n\
         \toption aftr 'aftr.example.net'\n\
         \toption duid '00:03:00:01:02:00:5e:00:53:01'\n\
         \toption reconfigure 'yes'\n\
         \toption solicit_max_rt '2h'\n\
         config tunnel 'tunnel'\n\
         \toption mtu '1460'\n\
         \toption source 'slaac'\n\
         \toption ipv4_address '192.0.0.6'\n\
         \toption metric '4294967295'\n\
         \toption encaplimit '4'\n\
         config lan 'lan'\n\
         \toption ipaddr '10.0.0.1'\n\
         \toption netmask '255.255.0.0'\n\
         \toption dns_server '2001:db8::53 2001:db8::54'\n\
         \toption dhcp_start '1000'\n\
         \toption dhcp_limit '2000'\n\
         \toption lease_time '1d'\n\
         \toption domain 'home.arpa'\n\
         \toption dhcp_mtu '1400'\n\
         config host\n\
         \toption mac '00:11:22:33:44:55'\n\
         \toption ip '10.0.5.5'\n\
         \toption name 'printer'\n\
         \toption client_id '01:00:11:22:33:44:55'\n",
    );
    assert_eq!(c.globals.log_level, LogLevel::Debug);
    assert_eq!(c.wan.dhcpv6, DhcpV6Mode::Stateless);
    assert_eq!(c.wan.prefix_hint, None);
    assert_eq!(c.wan.request_option, vec![24, 17]);
    assert_eq!(
        c.wan.aftr,
        Some(AftrOverride::Name("aftr.example.net".into()))
    );
    assert_eq!(c.wan.duid.as_ref().map(Duid::duid_type), Some(3));
    assert!(c.wan.reconfigure);
    assert_eq!(c.wan.solicit_max_rt, Duration::from_secs(7200));
    assert_eq!(c.tunnel.mtu, Some(1460));
    assert_eq!(c.tunnel.source, TunnelSource::Slaac);
    assert_eq!(c.tunnel.metric, u32::MAX);
    assert_eq!(c.tunnel.encaplimit, EncapLimit::Limit(4));
    assert_eq!(
        c.lan.dns_server,
        vec![
            "2001:db8::53".parse::<Ipv6Addr>().unwrap(),
            "2001:db8::54".parse().unwrap()
        ]
    );
    let lan = c.lan.address.unwrap();
    assert_eq!(lan.to_string(), "10.0.0.1/16");
    assert_eq!(
        lan.offset_pool(c.lan.dhcp_start, c.lan.dhcp_limit),
        Some((Ipv4Addr::new(10, 0, 3, 232), Ipv4Addr::new(10, 0, 11, 183)))
    );
    assert_eq!(c.hosts.len(), 1);
    assert_eq!(c.hosts[0].mac.to_string(), "00:11:22:33:44:55");
    assert_eq!(c.hosts[0].name.as_deref(), Some("printer"));
    assert_eq!(
        c.hosts[0]
            .client_id
            .as_ref()
            .map(|id| id.as_bytes().to_vec()),
        Some(vec![1, 0, 0x11, 0x22, 0x33, 0x44, 0x55])
    );
    assert_eq!(c.lan.dhcp_mtu, Some(1400));
}

#[test]
fn a_reload_tears_down_only_what_the_new_process_cannot_adopt() {
    let base = parse_ok("config lan 'lan'\n\toption dhcp_limit '50'\n");
    let with = |extra: &str| {
        parse_ok(&format!(
            "config lan 'lan'\n\toption dhcp_limit '50'\n{extra}"
        ))
    };
    let none = ReloadTeardown::default();
    // DHCPv4, DNS, logging: both kept.
    let dhcp = parse_ok("config lan 'lan'\n\toption dhcp_limit '60'\n");
    assert_eq!(base.reload_teardown(&dhcp, false, None), none);
    let tunnel_off = with("config tunnel 'tunnel'\n\toption enabled '0'\n");
    assert_eq!(
        base.reload_teardown(&tunnel_off, false, None),
        ReloadTeardown {
            tunnel: true,
            lan6: false,
            dhcpv6: false
        }
    );
    let renamed = with("config tunnel 'tunnel'\n\toption name 'dslite'\n");
    assert!(base.reload_teardown(&renamed, false, None).tunnel);
    let other_iface_id = with("\toption ip6ifaceid '::2'\n");
    assert_eq!(
        base.reload_teardown(&other_iface_id, false, None),
        ReloadTeardown {
            tunnel: false,
            lan6: true,
            dhcpv6: false
        }
    );
    // Hand-off 'auto' is netifd where netifd exists: standalone -> netifd.
    let netifd = with("config globals 'globals'\n\toption ipv6_handoff 'standalone'\n");
    assert_eq!(
        base.reload_teardown(&netifd, false, None),
        none,
        "auto is standalone here"
    );
    assert_eq!(
        base.reload_teardown(&netifd, true, None),
        ReloadTeardown {
            tunnel: true,
            lan6: true,
            dhcpv6: false
        }
    );
    // The binding cannot be taken over: another DUID (an ISP that wants
    // its own router's), a prefix no longer asked for. Released first.
    for change in [
        "config wan 'wan'\n\toption duid '00030001020000000001'\n",
        "config wan 'wan'\n\toption request_prefix '0'\n",
        "config wan 'wan'\n\toption lease_file '/etc/b4d.dhcpv6'\n",
    ] {
        let new = with(change);
        assert_eq!(
            base.reload_teardown(&new, false, None),
            ReloadTeardown {
                tunnel: false,
                lan6: false,
                dhcpv6: true
            },
            "{change}"
        );
    }
    // The DUID in use pinned in wan.duid (copied to keep it) is none.
    let pinned = with("config wan 'wan'\n\toption duid '00030001020000000001'\n");
    let in_use = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
    assert!(!base.reload_teardown(&pinned, false, Some(&in_use)).dhcpv6);
    // Asking for more keeps it (the Rebind asks for the rest).
    let more = with("config wan 'wan'\n\toption request_prefix '1'\n\toption prefix_hint '48'\n");
    assert!(!base.reload_teardown(&more, false, None).dhcpv6);
}

#[test]
fn dhcp_mtu_and_client_id_are_checked() {
    let errs = errors(
        "config lan 'lan'\n\toption dhcp_mtu '100'\n         config host\n\toption mac '02:00:00:00:00:01'\n\toption ip '192.168.1.5'\n\
         \toption client_id '01'\n",
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].to_string().contains("576..=9000"), "{}", errs[0]);
    assert!(
        errs[1].to_string().contains("2..=255 octets"),
        "{}",
        errs[1]
    );
}

#[test]
fn message_format_matches_the_documented_example() {
    let text = "\n\n\n\n\n\n\n\n\n\nconfig wan 'wan'\n\toption prefix_hint 'abc'\n";
    let errs = errors(text);
    assert_eq!(
        errs[0].to_string(),
        "/etc/config/b4d:12: option 'prefix_hint' in section 'wan': must be an integer 0..=128, got 'abc'"
    );
    assert_eq!(errs[0].line, Some(12));
    assert_eq!(errs[0].section.as_deref(), Some("wan"));
    assert_eq!(errs[0].option.as_deref(), Some("prefix_hint"));
}

#[test]
fn empty_value_means_unset_as_in_libuci() {
    let c = parse_ok(
        "config wan\n\toption prefix_hint ''\n\toption aftr ''\nconfig tunnel\n\toption mtu ''\n",
    );
    assert_eq!(c, Config::default());
}

/// `b4d check-config` prints every option, the unset ones as `''`: a user
/// who fills in some and leaves the rest gets what libuci reads, where an
/// empty value unsets (uci_set deletes), also one set on an earlier line.
#[test]
fn an_empty_value_unsets_for_the_checks_between_options_too() {
    let c = parse_ok(
        "config lan 'lan'\n\toption ipaddr '10.0.0.1'\n\toption netmask ''\n\
         \toption dns_server ''\n\tlist dns_server '2001:db8::53'\n",
    );
    assert_eq!(
        c.lan.address.map(|a| a.to_string()),
        Some("10.0.0.1/24".into())
    );
    assert_eq!(
        c.lan.dns_server,
        ["2001:db8::53".parse::<Ipv6Addr>().unwrap()]
    );
    // An empty address with a netmask is a netmask without an address.
    let errs = errors("config lan 'lan'\n\toption ipaddr ''\n\toption netmask '255.255.0.0'\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].option.as_deref(), Some("netmask"));
    // A later empty line unsets what an earlier one set.
    let c = parse_ok("config wan 'wan'\n\toption aftr 'aftr.example.net'\n\toption aftr ''\n");
    assert_eq!(c.wan.aftr, None);
}

#[test]
fn every_single_value_rule_rejects_a_bad_value() {
    // (section type, option, bad value, expected reason fragment)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "globals",
            "log_level",
            "verbose",
            "one of error, warn, info, debug, trace",
        ),
        ("globals", "state_dir", "etc/b4d", "an absolute path"),
        ("globals", "ubus", "maybe", "a boolean"),
        (
            "globals",
            "ubus_socket",
            "ubus.sock",
            "an absolute file path",
        ),
        ("wan", "device", "eth0/1", "a Linux interface name"),
        (
            "wan",
            "device",
            "a-very-long-name0",
            "a Linux interface name",
        ),
        ("wan", "dhcpv6", "auto", "one of stateful, stateless, off"),
        ("wan", "request_address", "2", "a boolean"),
        ("wan", "request_prefix", "maybe", "a boolean"),
        ("wan", "prefix_hint", "129", "an integer 0..=128"),
        ("wan", "aftr", "fe80::1", "must not be a link-local address"),
        ("wan", "aftr", "::", "must not be the unspecified address"),
        ("wan", "aftr", "::1", "must not be the loopback address"),
        ("wan", "aftr", "ff05::1", "must not be a multicast address"),
        (
            "wan",
            "aftr",
            "::ffff:192.0.2.1",
            "must not be an IPv4-mapped address",
        ),
        ("wan", "aftr", "192.0.2.1", "must not be an IPv4 address"),
        (
            "wan",
            "aftr",
            "2001:db8::zz",
            "an IPv6 address or a fully qualified domain name",
        ),
        ("wan", "aftr", "aftr", "needs at least 2 labels"),
        (
            "wan",
            "aftr",
            "aftr-.example.net",
            "starts or ends with a hyphen",
        ),
        (
            "wan",
            "aftr",
            "aftr_1.example.net",
            "character '_' not allowed",
        ),
        ("wan", "release_on_stop", "yes please", "a boolean"),
        ("wan", "duid", "00:03", "a hex DUID of 3..=130 octets"),
        ("wan", "duid", "xyz", "a hex DUID"),
        ("wan", "reconfigure", "-1", "a boolean"),
        (
            "wan",
            "solicit_max_rt",
            "59",
            "a duration 60..=86400 seconds",
        ),
        (
            "wan",
            "solicit_max_rt",
            "2d",
            "a duration 60..=86400 seconds",
        ),
        ("tunnel", "enabled", "enable", "a boolean"),
        ("tunnel", "name", "ds b4", "a Linux interface name"),
        ("tunnel", "name", "ds*b4", "a Linux interface name"),
        ("tunnel", "mtu", "1231", "an integer 1232..=1500"),
        ("tunnel", "mtu", "1501", "an integer 1232..=1500"),
        (
            "tunnel",
            "source",
            "dhcp",
            "one of auto, ia_na, slaac, prefix",
        ),
        (
            "tunnel",
            "ipv4_address",
            "192.0.0.8",
            "in 192.0.0.0/29 other than",
        ),
        (
            "tunnel",
            "ipv4_address",
            "192.0.0.0",
            "in 192.0.0.0/29 other than",
        ),
        (
            "tunnel",
            "ipv4_address",
            "192.0.0.7",
            "in 192.0.0.0/29 other than",
        ),
        (
            "tunnel",
            "peer",
            "10.0.0.1",
            "an IPv4 address in 192.0.0.0/29",
        ),
        ("tunnel", "default_route", "x", "a boolean"),
        (
            "tunnel",
            "metric",
            "4294967296",
            "an integer 0..=4294967295",
        ),
        ("tunnel", "mss_clamp", "x", "a boolean"),
        (
            "tunnel",
            "encaplimit",
            "256",
            "'none' or an integer 0..=255",
        ),
        ("tunnel", "disable_on_native_ipv4", "x", "a boolean"),
        ("lan", "device", "br:lan", "a Linux interface name"),
        ("lan", "ipaddr", "192.168.1.256", "an IPv4 address"),
        (
            "lan",
            "ipaddr",
            "127.0.0.1",
            "must not be a zero-network, loopback",
        ),
        (
            "lan",
            "netmask",
            "255.0.255.0",
            "a contiguous dotted netmask",
        ),
        ("lan", "dns_proxy", "x", "a boolean"),
        ("lan", "dns_port", "0", "an integer 1..=65535"),
        ("lan", "dns_port", "65536", "an integer 1..=65535"),
        ("lan", "dns_cache_size", "1000001", "an integer 0..=1000000"),
        ("lan", "dhcp", "x", "a boolean"),
        ("lan", "dhcp_start", "0", "an integer 1..=4294967295"),
        ("lan", "dhcp_limit", "0", "an integer 1..=4294967295"),
        (
            "lan",
            "lease_time",
            "119",
            "a duration 120..=4294967294 seconds",
        ),
        (
            "lan",
            "lease_time",
            "12y",
            "a duration 120..=4294967294 seconds",
        ),
        ("lan", "lease_file", "b4d.leases", "an absolute file path"),
        ("lan", "lease_file", "/tmp/", "an absolute file path"),
        ("wan", "lease_file", "b4d.dhcpv6", "an absolute file path"),
        ("lan", "domain", "my_lan", "a DNS domain"),
        (
            "globals",
            "ipv6_handoff",
            "odhcpd",
            "one of auto, standalone, netifd, off",
        ),
        ("wan", "netifd_interface", "wan 6", "a Linux interface name"),
        (
            "lan",
            "ip6assign",
            "47",
            "0 (no LAN prefix) or an integer 48..=64",
        ),
        (
            "lan",
            "ip6assign",
            "65",
            "0 (no LAN prefix) or an integer 48..=64",
        ),
        (
            "lan",
            "ip6assign",
            "1",
            "0 (no LAN prefix) or an integer 48..=64",
        ),
        ("lan", "ip6hint", "xyz", "a hex subnet id"),
        ("lan", "ip6hint", "100000000", "a hex subnet id"),
        (
            "lan",
            "ip6ifaceid",
            "2001:db8::1",
            "an interface id like ::1",
        ),
        ("lan", "ip6ifaceid", "::", "an interface id like ::1"),
        ("lan", "ip6ifaceid", "eui64", "an interface id like ::1"),
    ];
    for (kind, option, value, why) in cases {
        let text = format!("# b4d\nconfig {kind} 's'\n\toption {option} '{value}'\n");
        assert_one_error(&text, 3, "s", option, why);
        let msg = errors(&text)[0].to_string();
        assert!(msg.contains(&format!("got '{value}'")), "{msg}");
    }
}

#[test]
fn list_items_are_checked_one_by_one_at_their_lines() {
    assert_one_error(
        "config wan\n\tlist request_option '7'\n\tlist request_option '0'\n",
        3,
        "@wan[0]",
        "request_option",
        "must be an integer 1..=65535 (a DHCPv6 option code), got '0'",
    );
    assert_one_error(
        "config wan\n\tlist request_option '65536'\n",
        2,
        "@wan[0]",
        "request_option",
        "got '65536'",
    );
    assert_one_error(
        "config lan\n\tlist dns_server '2001:db8::1'\n\tlist dns_server '192.0.2.53'\n",
        3,
        "@lan[0]",
        "dns_server",
        "must be an IPv6 address, got '192.0.2.53'",
    );
    assert_one_error(
        "config lan\n\toption dns_server '2001:db8::1 ff02::1'\n",
        2,
        "@lan[0]",
        "dns_server",
        "must not be the unspecified or a multicast address, got 'ff02::1'",
    );
}

#[test]
fn cross_option_rules() {
    assert_one_error(
        "config wan\n\toption dhcpv6 'off'\n",
        2,
        "@wan[0]",
        "aftr",
        "must be set when dhcpv6 is 'off'",
    );
    assert_one_error(
        "config wan\n\toption request_address 0\n\toption request_prefix 0\n",
        2,
        "@wan[0]",
        "dhcpv6",
        "'stateful' needs request_address or request_prefix",
    );
    assert_one_error(
        "config wan\n\toption dhcpv6 stateless\nconfig tunnel\n\toption source ia_na\n",
        4,
        "@tunnel[0]",
        "source",
        "'ia_na' needs wan dhcpv6 'stateful' with request_address enabled",
    );
    assert_one_error(
        "config wan\n\toption request_prefix 0\nconfig tunnel\n\toption source prefix\n",
        4,
        "@tunnel[0]",
        "source",
        "'prefix' needs wan dhcpv6 'stateful' with request_prefix enabled",
    );
    assert_one_error(
        "config tunnel\n\toption peer '192.0.0.2'\n",
        2,
        "@tunnel[0]",
        "ipv4_address",
        "must differ from the tunnel peer 192.0.0.2",
    );
    assert_one_error(
        "config lan 'lan'\n\toption ipaddr '192.168.1.0'\n",
        2,
        "lan",
        "ipaddr",
        "must not be the network or broadcast address of 192.168.1.0/24, got '192.168.1.0'",
    );
    assert_one_error(
        "config lan 'lan'\n\toption ipaddr '10.1.1.1'\n\toption netmask '255.255.255.254'\n",
        2,
        "lan",
        "ipaddr",
        "must not be the network or broadcast address of 10.1.1.0/31",
    );
    // A pool that runs past the subnet is cut below its broadcast address,
    // as OpenWrt's ipcalc.sh cuts dnsmasq's: the shipped start 100 and
    // limit 150 on a /25 serve .100-.126 (said at run time).
    let c = parse_ok(
        "config lan 'lan'\n\toption ipaddr '192.168.1.1'\n\toption netmask '255.255.255.128'\n",
    );
    let lan = c.lan.address.unwrap();
    assert_eq!(
        lan.offset_pool(c.lan.dhcp_start, c.lan.dhcp_limit),
        Some((
            Ipv4Addr::new(192, 168, 1, 100),
            Ipv4Addr::new(192, 168, 1, 126)
        ))
    );
    // One that starts past it has no address at all.
    assert_one_error(
        "config lan 'lan'\n\toption ipaddr '192.168.1.1'\n\toption netmask '255.255.255.128'\n\
         \toption dhcp_start '127'\n",
        4,
        "lan",
        "dhcp_start",
        "DHCP pool start 127 is not inside 192.168.1.0/25: the highest usable offset is 126",
    );
    // The largest pool that fits: offsets 1..=254.
    parse_ok(
        "config lan\n\toption ipaddr '192.168.1.1'\n\toption dhcp_start 1\n\toption dhcp_limit 254\n",
    );
    // A followed subnet is judged when it is known, at run time.
    parse_ok("config lan\n\toption dhcp_start 100\n\toption dhcp_limit 1000\n");
    assert_one_error(
        "config lan 'lan'\n\toption netmask '255.255.0.0'\n",
        2,
        "lan",
        "netmask",
        "needs lan.ipaddr: without it b4d follows the LAN device's address",
    );
    assert_one_error(
        "config tunnel\n\toption name 'br-lan'\n",
        2,
        "@tunnel[0]",
        "name",
        "interface 'br-lan' is already used as lan.device",
    );
    assert_one_error(
        "config lan\n\toption lease_file '/tmp/b4d.dhcpv6'\n",
        2,
        "@lan[0]",
        "lease_file",
        "file '/tmp/b4d.dhcpv6' is already used as wan.lease_file",
    );
    assert_one_error(
        "config wan\n\toption device 'eth0'\nconfig lan\n\toption device 'eth0'\n",
        4,
        "@lan[0]",
        "device",
        "interface 'eth0' is already used as wan.device",
    );
}

#[test]
fn cross_rules_do_not_pile_onto_a_bad_value() {
    // ipv4_address is invalid; no extra "same as peer" error about the default.
    let errs = errors("config tunnel\n\toption ipv4_address 'x'\n\toption peer '192.0.0.2'\n");
    assert_eq!(errs.len(), 1, "{}", ConfigErrors(errs.clone()));
    // A broken lan netmask does not make every host "outside the subnet".
    let errs = errors(
        "config lan\n\toption ipaddr 192.168.1.1\n\toption netmask 'x'\n\
         config host\n\toption mac 02:00:00:00:00:01\n\toption ip 10.9.9.9\n",
    );
    assert_eq!(errs.len(), 1, "{}", ConfigErrors(errs.clone()));
}

#[test]
fn host_rules() {
    let host = |body: &str| format!("config host 'h'\n{body}");
    // Two lines of a fixed LAN subnet, which hosts are judged against.
    let fixed_lan_host =
        |body: &str| format!("config lan\n\toption ipaddr '192.168.1.1'\n{}", host(body));
    assert_one_error(
        &host("\toption ip '192.168.1.10'\n"),
        1,
        "h",
        "mac",
        "is required",
    );
    // Emptied is unset (libuci): reported as missing, at the section.
    assert_one_error(
        &host("\toption mac ''\n\toption ip '192.168.1.10'\n"),
        1,
        "h",
        "mac",
        "is required",
    );
    assert_one_error(
        &host("\toption mac '00:11:22:33:44:55'\n"),
        1,
        "h",
        "ip",
        "is required",
    );
    assert_one_error(
        &host("\toption mac '00-11-22-33-44-55'\n\toption ip '192.168.1.10'\n"),
        2,
        "h",
        "mac",
        "must be a MAC address xx:xx:xx:xx:xx:xx",
    );
    assert_one_error(
        &host("\toption mac '01:00:5e:00:00:01'\n\toption ip '192.168.1.10'\n"),
        2,
        "h",
        "mac",
        "must not be a multicast MAC address",
    );
    assert_one_error(
        &fixed_lan_host("\toption mac '00:11:22:33:44:55'\n\toption ip '10.0.0.10'\n"),
        5,
        "h",
        "ip",
        "must be inside the LAN subnet 192.168.1.0/24, got '10.0.0.10'",
    );
    assert_one_error(
        &fixed_lan_host("\toption mac '00:11:22:33:44:55'\n\toption ip '192.168.1.255'\n"),
        5,
        "h",
        "ip",
        "must not be the network or broadcast address",
    );
    assert_one_error(
        &fixed_lan_host("\toption mac '00:11:22:33:44:55'\n\toption ip '192.168.1.1'\n"),
        5,
        "h",
        "ip",
        "must differ from the router's own LAN address",
    );
    // A followed subnet is not known yet: the server leaves out at run time
    // what does not fit it.
    parse_ok(&host(
        "\toption mac '00:11:22:33:44:55'\n\toption ip '10.0.0.10'\n",
    ));
    assert_one_error(
        &host(
            "\toption mac '00:11:22:33:44:55'\n\toption ip '192.168.1.10'\n\toption name 'a.b'\n",
        ),
        4,
        "h",
        "name",
        "must be a host name",
    );
    assert_one_error(
        "config host\n\toption mac '00:11:22:33:44:55'\n\toption ip '192.168.1.10'\n\
         config host\n\toption mac '00:11:22:33:44:55'\n\toption ip '192.168.1.11'\n",
        5,
        "@host[1]",
        "mac",
        "mac '00:11:22:33:44:55' is already used by the host at line 2",
    );
    assert_one_error(
        "config host\n\toption mac '00:11:22:33:44:55'\n\toption ip '192.168.1.10'\n\
         config host\n\toption mac '00:11:22:33:44:56'\n\toption ip '192.168.1.10'\n",
        6,
        "@host[1]",
        "ip",
        "ip '192.168.1.10' is already used by the host at line 3",
    );
    // Hosts follow a non-default LAN subnet wherever the lan section is.
    let c = parse_ok(
        "config host\n\toption mac '02:00:00:00:00:01'\n\toption ip '10.0.0.10'\n\
         config lan\n\toption ipaddr '10.0.0.1'\n",
    );
    assert_eq!(c.hosts[0].ip, Ipv4Addr::new(10, 0, 0, 10));
}

/// Asserts exactly one section-level error (no option) at `line`.
#[track_caller]
fn assert_section_error(text: &str, line: usize, section: &str, why: &str) {
    let errs = errors(text);
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 1, "{shown:#?}");
    let prefix = format!("{FILE}:{line}: section '{section}': ");
    assert!(
        shown[0].starts_with(&prefix),
        "{:?} vs {prefix:?}",
        shown[0]
    );
    assert!(
        shown[0].contains(why),
        "{:?} should contain {why:?}",
        shown[0]
    );
}

#[test]
fn structure_rules() {
    assert_section_error(
        "config wan\nconfig dhcp 'lan'\n\toption start 100\n",
        2,
        "lan",
        "unknown section type 'dhcp' (known: globals, wan, tunnel, lan, host)",
    );
    assert_one_error(
        "config wan 'wan'\n\toption ifname 'eth1'\n",
        2,
        "wan",
        "ifname",
        "unknown option (known: device, dhcpv6,",
    );
    assert_section_error(
        "config wan 'wan'\nconfig wan 'wan6'\n",
        2,
        "wan6",
        "may appear only once (first at line 1)",
    );
    assert_section_error(
        "config tunnel\n\nconfig tunnel\n\toption mtu 'bad, but not looked at'\n",
        3,
        "@tunnel[1]",
        "may appear only once (first at line 1)",
    );
    // libuci would merge two sections named 'x'; make that visible.
    let errs = errors("config wan 'x'\nconfig lan 'x'\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "/etc/config/b4d:2: section 'x': section name already used at line 1"
    );
    assert_one_error(
        "config wan\n\toption device a\n\toption device b\n",
        3,
        "@wan[0]",
        "device",
        "set more than once (first at line 2)",
    );
    assert_one_error(
        "config wan\n\tlist device a\n",
        2,
        "@wan[0]",
        "device",
        "takes a single value; use 'option', not 'list'",
    );
    assert_one_error(
        "config wan\n\tlist request_option 17\n\toption request_option 21\n",
        3,
        "@wan[0]",
        "request_option",
        "given both as 'option' and as 'list' (other at line 2)",
    );
    assert_one_error(
        "config lan\n\toption dns_server '2001:db8::1'\n\toption dns_server '2001:db8::2'\n",
        3,
        "@lan[0]",
        "dns_server",
        "set more than once",
    );
}

#[test]
fn syntax_errors_carry_file_and_line() {
    let errs = errors("config wan\n\toption device 'eth1\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "/etc/config/b4d:2: unterminated ' quote (opened here, still open at end of file)"
    );
    assert!(matches!(errs[0].reason, Reason::Syntax(_)));
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = "config globals\n\
                \toption log_level 'loud'\n\
                config wan 'wan'\n\
                \toption prefix_hint 'abc'\n\
                \toption bogus '1'\n\
                \toption 'bad name' 1\n\
                config tunnel\n\
                \toption mtu '9000'\n\
                config frobnicator\n\
                config host\n\
                \toption ip '192.168.1.10'\n";
    let errs = errors(text);
    let summary: Vec<(Option<usize>, Option<&str>)> =
        errs.iter().map(|e| (e.line, e.option.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (Some(2), Some("log_level")),
            (Some(4), Some("prefix_hint")),
            (Some(5), Some("bogus")),
            (Some(6), None),
            (Some(8), Some("mtu")),
            (Some(9), None),
            (Some(10), Some("mac")),
        ]
    );
    let all = ConfigErrors(errs).to_string();
    assert_eq!(all.lines().count(), 7);
    assert!(all.lines().all(|l| l.starts_with("/etc/config/b4d:")));
}

#[test]
fn ipv6_lan_options_parse_like_openwrts() {
    let c = Config::default();
    assert_eq!(c.globals.ipv6_handoff, Ipv6Handoff::Auto);
    assert_eq!(c.wan.netifd_interface.as_str(), "wan6");
    assert_eq!(
        (c.lan.ip6assign, c.lan.ip6hint, c.lan.ip6ifaceid),
        (Some(64), 0, 1)
    );
    let c = parse_ok(
        "config globals\n\toption ipv6_handoff standalone\n         config wan\n\toption netifd_interface wan6_b4\n         config lan\n\toption ip6assign 60\n\toption ip6hint 'a'\n\toption ip6ifaceid '::b4:1'\n",
    );
    assert_eq!(c.globals.ipv6_handoff, Ipv6Handoff::Standalone);
    assert_eq!(c.wan.netifd_interface.as_str(), "wan6_b4");
    assert_eq!(c.lan.ip6assign, Some(60));
    assert_eq!(c.lan.ip6hint, 10);
    assert_eq!(c.lan.ip6ifaceid, 0xb4_0001);
    assert_eq!(
        parse_ok("config lan\n\toption ip6assign 0\n").lan.ip6assign,
        None
    );
    assert_eq!(
        parse_ok("config lan\n\toption ip6hint 0x1f\n").lan.ip6hint,
        0x1f
    );
    assert_eq!(parse_ok(&c.render_uci()), c);
}

#[test]
fn ipv6_handoff_auto_follows_netifd_presence() {
    let with = |handoff: &str| {
        parse_ok(&format!(
            "config globals\n\toption ipv6_handoff {handoff}\n"
        ))
    };
    let cases = [
        ("auto", true, HandoffMode::Netifd),
        ("auto", false, HandoffMode::Standalone),
        ("standalone", true, HandoffMode::Standalone),
        ("standalone", false, HandoffMode::Standalone),
        ("netifd", false, HandoffMode::Netifd),
        ("netifd", true, HandoffMode::Netifd),
        ("off", true, HandoffMode::Off),
        ("off", false, HandoffMode::Off),
    ];
    for (handoff, netifd_present, mode) in cases {
        assert_eq!(
            with(handoff).ipv6_handoff_mode(netifd_present),
            mode,
            "{handoff}, netifd present: {netifd_present}"
        );
    }
}

#[test]
fn render_round_trips_defaults() {
    let c = Config::default();
    let text = c.render_uci();
    assert_eq!(parse_ok(&text), c);
    // Every option of every singleton appears.
    for name in validate::WAN_OPTIONS
        .iter()
        .chain(validate::GLOBALS_OPTIONS)
        .chain(validate::TUNNEL_OPTIONS)
        .chain(validate::LAN_OPTIONS)
    {
        assert!(
            text.contains(&format!("\toption {name} "))
                || text.contains(&format!("\tlist {name} ")),
            "{name} missing from\n{text}"
        );
    }
}

#[test]
fn render_round_trips_a_non_default_config() {
    let text = "config globals\n\toption log_level trace\n\toption state_dir \"/data/it's here\"\n\
                config wan\n\toption dhcpv6 off\n\toption aftr 2001:db8::1\n\toption prefix_hint 0\n\
                \tlist request_option 17\n\tlist request_option 23\n\toption duid 0003000102005e005301\n\
                \toption solicit_max_rt 61\n\toption reconfigure on\n\
                config tunnel\n\toption enabled 0\n\toption mtu 1400\n\toption encaplimit 0\n\
                \toption ipv4_address 192.0.0.1\n\toption peer 192.0.0.6\n\toption metric 10\n\
                config lan\n\toption ipaddr 172.16.0.254\n\toption netmask 255.255.240.0\n\
                \tlist dns_server ::1\n\toption lease_time 3599\n\toption dns_cache_size 0\n\
                config host\n\toption mac 02:00:00:00:00:01\n\toption ip 172.16.0.2\n\
                config host\n\toption mac 02:00:00:00:00:02\n\toption ip 172.16.0.3\n\toption name tv\n";
    let c = parse_ok(text);
    assert_ne!(c, Config::default());
    let rendered = c.render_uci();
    assert_eq!(parse_ok(&rendered), c, "rendered:\n{rendered}");
    assert_eq!(parse_ok(&rendered).render_uci(), rendered);
}

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("b4d-config-test-{}-{tag}", std::process::id()))
}

#[test]
fn load_reads_files_and_reports_io_and_encoding_problems() {
    let good = temp_path("good");
    std::fs::write(&good, "config wan\n\toption device 'eth1'\n").unwrap();
    let c = Config::load(&good);
    std::fs::remove_file(&good).unwrap();
    assert_eq!(c.unwrap().wan.device.as_str(), "eth1");

    let missing = Path::new("/nonexistent/b4d");
    let errs = Config::load(missing).unwrap_err();
    assert!(matches!(errs.0[0].reason, Reason::Io(_)));
    assert!(errs
        .to_string()
        .starts_with("/nonexistent/b4d: cannot read: "));

    let latin1 = temp_path("latin1");
    std::fs::write(&latin1, b"config wan\n# caf\xe9\n").unwrap();
    let errs = Config::load(&latin1).unwrap_err();
    std::fs::remove_file(&latin1).unwrap();
    assert_eq!(errs.0[0].line, Some(2));
    assert_eq!(errs.0[0].reason, Reason::NotUtf8);
}

/// Values that each option accepts (plus, in the generator, a few that it does not).
fn sample_values(section: &str, option: &str) -> &'static [&'static str] {
    const BOOLS: &[&str] = &["0", "1", "yes", "off", "true", "disabled"];
    match (section, option) {
        (_, "log_level") => &["error", "warn", "info", "debug", "trace"],
        (_, "state_dir") => &["/etc/b4d", "/overlay/b4d", "/a b/it's"],
        (_, "ubus_socket") => &["/var/run/ubus/ubus.sock", "/tmp/u.sock"],
        ("wan", "device") => &["wan", "eth1", "eth0.2"],
        ("lan", "device") => &["br-lan", "eth0", "lan1"],
        (_, "dhcpv6") => &["stateful", "stateless", "off"],
        (_, "prefix_hint") => &["0", "48", "56", "64", "128"],
        (_, "request_option") => &["17", "21", "23", "65535"],
        (_, "aftr") => &["2001:db8::1", "aftr.example.net", "aftr.example.net."],
        (_, "duid") => &["00:03:00:01:02:00:5e:00:53:01", "000301"],
        (_, "solicit_max_rt") => &["60", "3600", "1h", "1d", "86400"],
        (_, "name") if section == "tunnel" => &["ds-b4", "dslite0"],
        (_, "name") => &["printer", "tv"],
        (_, "mtu") => &["1280", "1452", "1500"],
        (_, "source") => &["auto", "slaac", "ia_na", "prefix"],
        (_, "ipv4_address") => &["192.0.0.2", "192.0.0.3", "192.0.0.6"],
        (_, "peer") => &["192.0.0.1", "192.0.0.4"],
        (_, "metric") => &["0", "10", "4294967295"],
        (_, "encaplimit") => &["none", "0", "4", "255"],
        (_, "ipaddr") => &["192.168.1.1", "10.0.0.1", "172.16.5.4"],
        (_, "netmask") => &["255.255.255.0", "255.255.0.0", "255.0.0.0"],
        (_, "dns_port") => &["53", "5353"],
        (_, "dns_cache_size") => &["0", "1000", "1000000"],
        (_, "dns_server") => &["2001:db8::53", "::1"],
        (_, "dhcp_start") => &["1", "100"],
        (_, "dhcp_limit") => &["1", "150"],
        (_, "lease_time") => &["120", "12h", "1w"],
        ("lan", "lease_file") => &["/tmp/b4d.leases", "/tmp/x"],
        ("wan", "lease_file") => &["/tmp/b4d.dhcpv6", "/tmp/y"],
        (_, "domain") => &["lan", "home.arpa"],
        (_, "mac") => &[
            "00:11:22:33:44:55",
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
        ],
        (_, "ip") => &["192.168.1.10", "192.168.1.11", "10.0.0.10"],
        _ => BOOLS,
    }
}

/// UCI files built from the schema: mostly valid options with valid values, sometimes
/// an unknown section or option, a bad value or a `list` where `option` belongs, so
/// that both the success path (and its round trip) and the error paths get exercised.
fn uci_like_config() -> impl Strategy<Value = String> {
    let stmt = (any::<u16>(), any::<u16>(), any::<u8>());
    let block = (
        any::<u8>(),
        any::<bool>(),
        prop::collection::vec(stmt, 0..4),
    );
    prop::collection::vec(block, 1..5).prop_map(|blocks| {
        let types = ["globals", "wan", "tunnel", "lan", "host", "host", "bogus"];
        let mut text = String::new();
        for (t, named, stmts) in blocks {
            let kind = types[usize::from(t) % types.len()];
            let name = if named {
                format!(" '{kind}_n'")
            } else {
                String::new()
            };
            text.push_str(&format!("config {kind}{name}\n"));
            let known: &[&str] = match kind {
                "globals" => validate::GLOBALS_OPTIONS,
                "wan" => validate::WAN_OPTIONS,
                "tunnel" => validate::TUNNEL_OPTIONS,
                "lan" => validate::LAN_OPTIONS,
                _ => validate::HOST_OPTIONS,
            };
            for (o, v, noise) in stmts {
                let option = if noise == 0 {
                    "bogus"
                } else {
                    known[usize::from(o) % known.len()]
                };
                let pool = sample_values(kind, option);
                let value = match noise {
                    1 => "x",
                    2 => "",
                    _ => pool[usize::from(v) % pool.len()],
                };
                let list = validate::LIST_OPTIONS.contains(&option) != (noise == 3);
                let keyword = if list { "list" } else { "option" };
                text.push_str(&format!("\t{keyword} {option} {}\n", uci::quote(value)));
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = Config::parse(&s, FILE);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Config::parse(&String::from_utf8_lossy(&bytes), FILE);
    }

    /// Whatever validates renders to text that validates to the same config; whatever
    /// fails names a line for every error.
    #[test]
    fn valid_configs_round_trip_and_errors_have_lines(text in uci_like_config()) {
        match Config::parse(&text, FILE) {
            Ok(c) => {
                let again = Config::parse(&c.render_uci(), FILE);
                prop_assert_eq!(again.as_ref(), Ok(&c), "text:\n{}", text);
            }
            Err(errs) => {
                prop_assert!(!errs.is_empty());
                for e in &errs {
                    prop_assert!(e.line.is_some(), "{}", e);
                }
            }
        }
    }
}
