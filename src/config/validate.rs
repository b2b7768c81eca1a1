//! UCI sections -> typed [`Config`], collecting every error on the way.
//!
//! Two passes: each option is parsed on its own (falling back to the default so that the
//! remaining checks still run), then cross-option rules are checked, but only between
//! options that parsed, so one typo does not produce a cascade of follow-on errors.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::uci::{self, Section, Value};
use super::value::{
    parse_abs_file, parse_abs_path, parse_aftr, parse_bool, parse_dns_server, parse_domain,
    parse_duration, parse_hostname, parse_ipv4, parse_netmask, parse_uint, parse_unicast_ipv4,
};
use super::{
    Config, ConfigError, ConfigErrors, DhcpV6Mode, EncapLimit, Globals, Ipv6Handoff, Lan, LogLevel,
    MacAddr, Reason, StaticHost, Tunnel, TunnelSource, Wan, SOFTWIRE_NETWORK,
};
use crate::lan4::Ipv4Subnet;

pub(super) const SECTION_TYPES: &[&str] = &["globals", "wan", "tunnel", "lan", "host"];

pub(super) const GLOBALS_OPTIONS: &[&str] = &[
    "log_level",
    "state_dir",
    "ubus",
    "ubus_socket",
    "ipv6_handoff",
];
pub(super) const WAN_OPTIONS: &[&str] = &[
    "device",
    "dhcpv6",
    "request_address",
    "request_prefix",
    "prefix_hint",
    "request_option",
    "aftr",
    "release_on_stop",
    "rapid_commit",
    "duid",
    "reconfigure",
    "solicit_max_rt",
    "netifd_interface",
    "lease_file",
];
pub(super) const TUNNEL_OPTIONS: &[&str] = &[
    "enabled",
    "name",
    "mtu",
    "source",
    "ipv4_address",
    "peer",
    "default_route",
    "metric",
    "mss_clamp",
    "encaplimit",
    "disable_on_native_ipv4",
];
pub(super) const LAN_OPTIONS: &[&str] = &[
    "device",
    "ipaddr",
    "netmask",
    "dns_proxy",
    "dns_port",
    "dns_cache_size",
    "dns_server",
    "dhcp",
    "dhcp_start",
    "dhcp_limit",
    "lease_time",
    "lease_file",
    "domain",
    "dhcp_mtu",
    "ip6assign",
    "ip6hint",
    "ip6ifaceid",
];
pub(super) const HOST_OPTIONS: &[&str] = &["mac", "ip", "name", "client_id"];

/// Options that hold a list. Every other option takes exactly one value.
pub(super) const LIST_OPTIONS: &[&str] = &["request_option", "dns_server"];

struct Errors<'f> {
    file: &'f str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn push(
        &mut self,
        line: Option<usize>,
        section: Option<&str>,
        option: Option<&str>,
        reason: Reason,
    ) {
        self.list.push(ConfigError {
            file: self.file.to_string(),
            line,
            section: section.map(str::to_string),
            option: option.map(str::to_string),
            reason,
        });
    }
}

/// How a list option was given; mixing the two is an error because libuci's result
/// depends on their order.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Option,
    List,
}

/// The options of one section, checked against the section's schema.
struct Opts<'a> {
    label: String,
    line: usize,
    single: HashMap<&'a str, (&'a str, usize)>,
    items: HashMap<&'a str, Vec<(&'a str, usize)>>,
    /// First line of every known option set (an empty value unsets).
    lines: HashMap<&'a str, usize>,
    /// Options whose value was rejected; cross-option checks skip them.
    failed: HashSet<&'static str>,
}

impl<'a> Opts<'a> {
    fn collect(
        section: &'a Section,
        label: String,
        known: &'static [&'static str],
        errs: &mut Errors,
    ) -> Self {
        let mut opts = Opts {
            label,
            line: section.line,
            single: HashMap::new(),
            items: HashMap::new(),
            lines: HashMap::new(),
            failed: HashSet::new(),
        };
        let mut forms: HashMap<&str, Form> = HashMap::new();
        // libuci's uci_set with an empty value deletes the option (a list
        // too): every line of a name up to its last empty one is unset.
        let mut unset_upto: HashMap<&str, usize> = HashMap::new();
        for (at, entry) in section.options.iter().enumerate() {
            if entry.value == Value::Single(String::new()) {
                unset_upto.insert(entry.name.as_str(), at);
            }
        }
        for (at, entry) in section.options.iter().enumerate() {
            let name = entry.name.as_str();
            let line = entry.line;
            let mut error = |reason| errs.push(Some(line), Some(&opts.label), Some(name), reason);
            if !known.contains(&name) {
                error(Reason::UnknownOption { known });
                continue;
            }
            if unset_upto.get(name).is_some_and(|&last| at <= last) {
                continue;
            }
            let first_line = opts.lines.get(name).copied();
            let is_list = LIST_OPTIONS.contains(&name);
            match (&entry.value, is_list) {
                (Value::List(_), false) => {
                    error(Reason::NotAList);
                    continue;
                }
                (Value::Single(v), false) => {
                    if let Some(first_line) = first_line {
                        error(Reason::DuplicateOption { first_line });
                        continue;
                    }
                    opts.single.insert(name, (v.as_str(), line));
                }
                (value, true) => {
                    let form = match value {
                        Value::Single(_) => Form::Option,
                        Value::List(_) => Form::List,
                    };
                    if let (Some(first_line), Some(&prev)) = (first_line, forms.get(name)) {
                        if prev != form {
                            error(Reason::MixedOptionAndList { first_line });
                            continue;
                        }
                        if form == Form::Option {
                            error(Reason::DuplicateOption { first_line });
                            continue;
                        }
                    }
                    forms.insert(name, form);
                    let items = opts.items.entry(name).or_default();
                    match value {
                        // `option x 'a b'` for a list option: whitespace-separated items,
                        // as netifd's uci_blob and the shell's `for v in $x` read it.
                        Value::Single(v) => {
                            items.extend(v.split_whitespace().map(|item| (item, line)))
                        }
                        Value::List(v) => items.push((v.as_str(), line)),
                    }
                }
            }
            opts.lines.entry(name).or_insert(line);
        }
        opts
    }

    fn is_set(&self, name: &str) -> bool {
        self.lines.contains_key(name)
    }

    fn ok(&self, name: &str) -> bool {
        !self.failed.contains(name)
    }

    /// The parsed value of a single-valued option; `None` if absent (or
    /// emptied, libuci's "unset") or invalid, the last one reported.
    fn get<T>(
        &mut self,
        errs: &mut Errors,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, Reason>,
    ) -> Option<T> {
        let (value, line) = *self.single.get(name)?;
        match parse(value) {
            Ok(v) => Some(v),
            Err(reason) => {
                errs.push(Some(line), Some(&self.label), Some(name), reason);
                self.failed.insert(name);
                None
            }
        }
    }

    /// The parsed items of a list option, each invalid item reported at its own line.
    fn list<T>(
        &mut self,
        errs: &mut Errors,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, Reason>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for &(item, line) in self.items.get(name).map(Vec::as_slice).unwrap_or(&[]) {
            match parse(item) {
                Ok(v) => out.push(v),
                Err(reason) => {
                    errs.push(Some(line), Some(&self.label), Some(name), reason);
                    self.failed.insert(name);
                }
            }
        }
        out
    }

    /// Reports that a required option is missing or empty.
    fn require<T>(&self, errs: &mut Errors, name: &'static str, value: Option<T>) -> Option<T> {
        if value.is_none() && self.ok(name) {
            let line = self.lines.get(name).copied().unwrap_or(self.line);
            errs.push(Some(line), Some(&self.label), Some(name), Reason::Required);
        }
        value
    }
}

/// Where to report a rule that involves several options: at the first of `anchors`
/// that is present in the file (a rule between defaults never fails, so one is).
fn report_cross(
    errs: &mut Errors,
    option: &str,
    anchors: &[(Option<&Opts>, &str)],
    reason: Reason,
) {
    let at = anchors.iter().find_map(|(opts, name)| {
        let opts = (*opts)?;
        opts.lines
            .get(name)
            .map(|&line| (line, opts.label.as_str()))
    });
    match at {
        Some((line, label)) => errs.push(Some(line), Some(label), Some(option), reason),
        None => errs.push(None, None, Some(option), reason),
    }
}

fn ok(opts: Option<&Opts>, names: &[&str]) -> bool {
    opts.is_none_or(|o| names.iter().all(|n| o.ok(n)))
}

pub(super) fn config_from_text(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let mut errs = Errors {
        file,
        list: Vec::new(),
    };
    let (doc, syntax) = uci::parse_recovering(text);
    for e in syntax {
        errs.push(Some(e.line), None, None, Reason::Syntax(e.reason));
    }

    let mut per_type_count: HashMap<&str, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut singletons: HashMap<&str, (&Section, String)> = HashMap::new();
    let mut hosts = Vec::new();
    for section in &doc.sections {
        let kind = section.section_type.as_str();
        let index = per_type_count.entry(kind).or_insert(0);
        // UCI's own notation for anonymous sections.
        let label = match &section.name {
            Some(n) => n.clone(),
            None => format!("@{kind}[{index}]"),
        };
        *index += 1;
        let mut error = |reason| errs.push(Some(section.line), Some(&label), None, reason);
        if let Some(name) = &section.name {
            match names.get(name.as_str()) {
                Some(&first_line) => error(Reason::DuplicateSectionName { first_line }),
                None => {
                    names.insert(name, section.line);
                }
            }
        }
        match kind {
            "globals" | "wan" | "tunnel" | "lan" => {
                if let Some((first, _)) = singletons.get(kind) {
                    error(Reason::DuplicateSection {
                        first_line: first.line,
                    });
                } else {
                    singletons.insert(kind, (section, label));
                }
            }
            "host" => hosts.push((section, label)),
            _ => error(Reason::UnknownSectionType {
                got: kind.to_string(),
                known: SECTION_TYPES,
            }),
        }
    }
    let mut opts_for = |kind: &str, known: &'static [&'static str], errs: &mut Errors| {
        singletons
            .remove(kind)
            .map(|(section, label)| Opts::collect(section, label, known, errs))
    };
    let mut g = opts_for("globals", GLOBALS_OPTIONS, &mut errs);
    let mut w = opts_for("wan", WAN_OPTIONS, &mut errs);
    let mut t = opts_for("tunnel", TUNNEL_OPTIONS, &mut errs);
    let mut l = opts_for("lan", LAN_OPTIONS, &mut errs);

    let globals = g
        .as_mut()
        .map_or_else(Globals::default, |o| globals(o, &mut errs));
    let wan = w.as_mut().map_or_else(Wan::default, |o| wan(o, &mut errs));
    let tunnel = t
        .as_mut()
        .map_or_else(Tunnel::default, |o| tunnel(o, &mut errs));
    let lan = l.as_mut().map_or_else(Lan::default, |o| lan(o, &mut errs));
    let (w, t, l) = (w.as_ref(), t.as_ref(), l.as_ref());

    check_wan(&wan, w, &mut errs);
    check_tunnel(&tunnel, t, &wan, w, &mut errs);
    let fixed_subnet = check_lan(&lan, l, &mut errs);
    check_interfaces(&wan, w, &tunnel, t, &lan, l, &mut errs);
    if wan.lease_file == lan.lease_file && ok(w, &["lease_file"]) && ok(l, &["lease_file"]) {
        // Report on whichever was written in the file (both default apart).
        let (opts, other) = if l.is_some_and(|o| o.is_set("lease_file")) {
            (l, "wan.lease_file")
        } else {
            (w, "lan.lease_file")
        };
        report_cross(
            &mut errs,
            "lease_file",
            &[(opts, "lease_file")],
            Reason::FileClash {
                path: wan.lease_file.display().to_string(),
                other,
            },
        );
    }
    let hosts = static_hosts(&hosts, fixed_subnet, &mut errs);

    if errs.list.is_empty() {
        Ok(Config {
            globals,
            wan,
            tunnel,
            lan,
            hosts,
        })
    } else {
        // File order reads best; whole-file errors (no line) first.
        errs.list.sort_by_key(|e| e.line);
        Err(ConfigErrors(errs.list))
    }
}

fn one_of<'a, T: Copy>(
    choices: &'a [(&'a str, T)],
    expected: &'static str,
) -> impl Fn(&str) -> Result<T, Reason> + 'a {
    move |s| {
        choices
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, v)| v)
            .ok_or_else(|| Reason::Invalid {
                expected,
                got: s.to_string(),
                detail: None,
            })
    }
}

fn bool_opt(o: &mut Opts, errs: &mut Errors, name: &'static str, default: bool) -> bool {
    o.get(errs, name, parse_bool).unwrap_or(default)
}

fn globals(o: &mut Opts, errs: &mut Errors) -> Globals {
    let d = Globals::default();
    let levels = [
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];
    let handoffs = [
        ("auto", Ipv6Handoff::Auto),
        ("standalone", Ipv6Handoff::Standalone),
        ("netifd", Ipv6Handoff::Netifd),
        ("off", Ipv6Handoff::Off),
    ];
    Globals {
        log_level: o
            .get(
                errs,
                "log_level",
                one_of(&levels, "one of error, warn, info, debug, trace"),
            )
            .unwrap_or(d.log_level),
        state_dir: o
            .get(errs, "state_dir", parse_abs_path)
            .unwrap_or(d.state_dir),
        ubus: bool_opt(o, errs, "ubus", d.ubus),
        ubus_socket: o
            .get(errs, "ubus_socket", parse_abs_file)
            .unwrap_or(d.ubus_socket),
        ipv6_handoff: o
            .get(
                errs,
                "ipv6_handoff",
                one_of(&handoffs, "one of auto, standalone, netifd, off"),
            )
            .unwrap_or(d.ipv6_handoff),
    }
}

fn wan(o: &mut Opts, errs: &mut Errors) -> Wan {
    let d = Wan::default();
    let modes = [
        ("stateful", DhcpV6Mode::Stateful),
        ("stateless", DhcpV6Mode::Stateless),
        ("off", DhcpV6Mode::Off),
    ];
    Wan {
        device: o.get(errs, "device", str::parse).unwrap_or(d.device),
        dhcpv6: o
            .get(
                errs,
                "dhcpv6",
                one_of(&modes, "one of stateful, stateless, off"),
            )
            .unwrap_or(d.dhcpv6),
        request_address: bool_opt(o, errs, "request_address", d.request_address),
        request_prefix: bool_opt(o, errs, "request_prefix", d.request_prefix),
        prefix_hint: o
            .get(errs, "prefix_hint", |s| {
                parse_uint(s, 0, 128, "an integer 0..=128")
            })
            .map_or(d.prefix_hint, |n| (n != 0).then_some(n as u8)),
        request_option: o.list(errs, "request_option", |s| {
            parse_uint(s, 1, 65_535, "an integer 1..=65535 (a DHCPv6 option code)")
                .map(|n| n as u16)
        }),
        aftr: o.get(errs, "aftr", parse_aftr).or(d.aftr),
        release_on_stop: bool_opt(o, errs, "release_on_stop", d.release_on_stop),
        rapid_commit: bool_opt(o, errs, "rapid_commit", d.rapid_commit),
        duid: o.get(errs, "duid", str::parse).or(d.duid),
        reconfigure: bool_opt(o, errs, "reconfigure", d.reconfigure),
        // RFC 8415 §21.24: SOL_MAX_RT values outside 60..=86400 must be ignored.
        solicit_max_rt: o
            .get(errs, "solicit_max_rt", |s| {
                parse_duration(
                    s,
                    60,
                    86_400,
                    "a duration 60..=86400 seconds (suffix s/m/h/d/w allowed)",
                )
            })
            .unwrap_or(d.solicit_max_rt),
        netifd_interface: o
            .get(errs, "netifd_interface", str::parse)
            .unwrap_or(d.netifd_interface),
        lease_file: o
            .get(errs, "lease_file", parse_abs_file)
            .unwrap_or(d.lease_file),
    }
}

fn softwire_host(
    last_octet_ok: fn(u8) -> bool,
    expected: &'static str,
) -> impl Fn(&str) -> Result<Ipv4Addr, Reason> {
    move |s| {
        let bad = || Reason::Invalid {
            expected,
            got: s.to_string(),
            detail: None,
        };
        let a = parse_ipv4(s).map_err(|_| bad())?;
        let in_net = u32::from(a) & !0b111 == u32::from(SOFTWIRE_NETWORK);
        if in_net && last_octet_ok(a.octets()[3]) {
            Ok(a)
        } else {
            Err(bad())
        }
    }
}

fn tunnel(o: &mut Opts, errs: &mut Errors) -> Tunnel {
    let d = Tunnel::default();
    let sources = [
        ("auto", TunnelSource::Auto),
        ("ia_na", TunnelSource::IaNa),
        ("slaac", TunnelSource::Slaac),
        ("prefix", TunnelSource::Prefix),
    ];
    Tunnel {
        enabled: bool_opt(o, errs, "enabled", d.enabled),
        name: o.get(errs, "name", str::parse).unwrap_or(d.name),
        mtu: o
            .get(errs, "mtu", |s| parse_uint(s, 1232, 1500, "an integer 1232..=1500"))
            .map(|n| n as u16)
            .or(d.mtu),
        source: o
            .get(errs, "source", one_of(&sources, "one of auto, ia_na, slaac, prefix"))
            .unwrap_or(d.source),
        // RFC 6333 §5.7: the B4 takes an address of 192.0.0.0/29 other than the AFTR's;
        // .0 and .7 are the network and broadcast addresses of that /29.
        ipv4_address: o
            .get(
                errs,
                "ipv4_address",
                softwire_host(
                    |n| n != 0 && n != 7,
                    "an IPv4 address in 192.0.0.0/29 other than 192.0.0.0 and 192.0.0.7 (RFC 6333 §5.7)",
                ),
            )
            .unwrap_or(d.ipv4_address),
        peer: o
            .get(
                errs,
                "peer",
                softwire_host(|_| true, "an IPv4 address in 192.0.0.0/29 (RFC 6333 §5.7)"),
            )
            .unwrap_or(d.peer),
        default_route: bool_opt(o, errs, "default_route", d.default_route),
        metric: o
            .get(errs, "metric", |s| {
                parse_uint(s, 0, u64::from(u32::MAX), "an integer 0..=4294967295")
            })
            .map_or(d.metric, |n| n as u32),
        mss_clamp: bool_opt(o, errs, "mss_clamp", d.mss_clamp),
        encaplimit: o
            .get(errs, "encaplimit", |s| {
                if s == "none" {
                    Ok(EncapLimit::Disabled)
                } else {
                    parse_uint(s, 0, 255, "'none' or an integer 0..=255")
                        .map(|n| EncapLimit::Limit(n as u8))
                }
            })
            .unwrap_or(d.encaplimit),
        disable_on_native_ipv4: bool_opt(o, errs, "disable_on_native_ipv4", d.disable_on_native_ipv4),
    }
}

fn lan(o: &mut Opts, errs: &mut Errors) -> Lan {
    let d = Lan::default();
    Lan {
        device: o.get(errs, "device", str::parse).unwrap_or(d.device),
        address: lan_address(o, errs),
        dns_proxy: bool_opt(o, errs, "dns_proxy", d.dns_proxy),
        dns_port: o
            .get(errs, "dns_port", |s| {
                parse_uint(s, 1, 65_535, "an integer 1..=65535")
            })
            .map_or(d.dns_port, |n| n as u16),
        dns_cache_size: o
            .get(errs, "dns_cache_size", |s| {
                parse_uint(s, 0, 1_000_000, "an integer 0..=1000000")
            })
            .map_or(d.dns_cache_size, |n| n as u32),
        dns_server: o.list(errs, "dns_server", parse_dns_server),
        dhcp: bool_opt(o, errs, "dhcp", d.dhcp),
        dhcp_start: o
            .get(errs, "dhcp_start", |s| {
                parse_uint(s, 1, u64::from(u32::MAX), "an integer 1..=4294967295")
            })
            .map_or(d.dhcp_start, |n| n as u32),
        dhcp_limit: o
            .get(errs, "dhcp_limit", |s| {
                parse_uint(s, 1, u64::from(u32::MAX), "an integer 1..=4294967295")
            })
            .map_or(d.dhcp_limit, |n| n as u32),
        // 120 s is dnsmasq's minimum lease; the DHCPv4 lease time is 32 bits with
        // all-ones meaning "infinite" (RFC 2132 §9.2), so finite leases end one below.
        lease_time: o
            .get(errs, "lease_time", |s| {
                parse_duration(
                    s,
                    120,
                    u64::from(u32::MAX - 1),
                    "a duration 120..=4294967294 seconds (suffix s/m/h/d/w allowed)",
                )
            })
            .unwrap_or(d.lease_time),
        lease_file: o
            .get(errs, "lease_file", parse_abs_file)
            .unwrap_or(d.lease_file),
        domain: o.get(errs, "domain", parse_domain).unwrap_or(d.domain),
        // RFC 791: every host takes 576-octet datagrams; jumbo frames end at 9000.
        dhcp_mtu: o
            .get(errs, "dhcp_mtu", |s| {
                parse_uint(s, 576, 9000, "an integer 576..=9000")
            })
            .map(|n| n as u16)
            .or(d.dhcp_mtu),
        // OpenWrt's ip6assign: a LAN gets at most a /64 (SLAAC, RFC 4862 §5.5.3
        // needs 64-bit interface ids) and at least a /48.
        ip6assign: o
            .get(errs, "ip6assign", parse_ip6assign)
            .map_or(d.ip6assign, |n| (n != 0).then_some(n)),
        ip6hint: o.get(errs, "ip6hint", parse_ip6hint).unwrap_or(d.ip6hint),
        ip6ifaceid: o
            .get(errs, "ip6ifaceid", parse_ip6ifaceid)
            .unwrap_or(d.ip6ifaceid),
    }
}

fn parse_ip6assign(s: &str) -> Result<u8, Reason> {
    const EXPECTED: &str = "0 (no LAN prefix) or an integer 48..=64";
    match parse_uint(s, 0, 64, EXPECTED)? {
        n @ (0 | 48..=64) => Ok(n as u8),
        _ => Err(Reason::Invalid {
            expected: EXPECTED,
            got: s.to_string(),
            detail: None,
        }),
    }
}

/// Hex like OpenWrt's ip6hint (`option ip6hint 'a'` is subnet 10).
fn parse_ip6hint(s: &str) -> Result<u32, Reason> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    match u32::from_str_radix(hex, 16) {
        Ok(n) if !hex.starts_with('+') => Ok(n),
        _ => Err(Reason::Invalid {
            expected: "a hex subnet id 0..=ffffffff",
            got: s.to_string(),
            detail: None,
        }),
    }
}

/// An interface id written as an IPv6 address whose upper 64 bits are zero.
fn parse_ip6ifaceid(s: &str) -> Result<u64, Reason> {
    let bad = || Reason::Invalid {
        expected: "an interface id like ::1 (an IPv6 address with the upper 64 bits zero, not ::)",
        got: s.to_string(),
        detail: None,
    };
    let addr: std::net::Ipv6Addr = s.parse().map_err(|_| bad())?;
    let bits = u128::from(addr);
    if bits >> 64 != 0 || bits == 0 {
        return Err(bad());
    }
    Ok(bits as u64)
}

fn check_wan(wan: &Wan, w: Option<&Opts>, errs: &mut Errors) {
    if !ok(w, &["dhcpv6", "aftr"]) {
        return;
    }
    match wan.dhcpv6 {
        DhcpV6Mode::Off if wan.aftr.is_none() => {
            report_cross(
                errs,
                "aftr",
                &[(w, "aftr"), (w, "dhcpv6")],
                Reason::AftrRequired,
            );
        }
        DhcpV6Mode::Stateful
            if !wan.request_address
                && !wan.request_prefix
                && ok(w, &["request_address", "request_prefix"]) =>
        {
            report_cross(
                errs,
                "dhcpv6",
                &[(w, "dhcpv6"), (w, "request_address"), (w, "request_prefix")],
                Reason::NothingToRequest,
            );
        }
        _ => {}
    }
}

fn check_tunnel(tunnel: &Tunnel, t: Option<&Opts>, wan: &Wan, w: Option<&Opts>, errs: &mut Errors) {
    if ok(t, &["ipv4_address", "peer"]) && tunnel.ipv4_address == tunnel.peer {
        report_cross(
            errs,
            "ipv4_address",
            &[(t, "ipv4_address"), (t, "peer")],
            Reason::SameAsPeer { peer: tunnel.peer },
        );
    }
    if !ok(t, &["source"]) || !ok(w, &["dhcpv6", "request_address", "request_prefix"]) {
        return;
    }
    let stateful = wan.dhcpv6 == DhcpV6Mode::Stateful;
    let needs = match tunnel.source {
        TunnelSource::IaNa if !(stateful && wan.request_address) => {
            Some("wan dhcpv6 'stateful' with request_address enabled")
        }
        TunnelSource::Prefix if !(stateful && wan.request_prefix) => {
            Some("wan dhcpv6 'stateful' with request_prefix enabled")
        }
        _ => None,
    };
    if let Some(needs) = needs {
        report_cross(
            errs,
            "source",
            &[(t, "source")],
            Reason::SourceUnavailable {
                source: tunnel.source,
                needs,
            },
        );
    }
}

/// OpenWrt's default LAN mask, when `ipaddr` comes without one.
const DEFAULT_NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);

/// `ipaddr` with `netmask` (default /24) as a subnet; neither set: `None`,
/// the LAN device's address is followed. A `netmask` alone is an error: it
/// would say nothing about a followed address, which has its own prefix.
fn lan_address(o: &mut Opts, errs: &mut Errors) -> Option<Ipv4Subnet> {
    let ipaddr = o.get(errs, "ipaddr", parse_unicast_ipv4);
    let netmask = o.get(errs, "netmask", parse_netmask);
    if !o.is_set("ipaddr") {
        if o.is_set("netmask") && o.ok("netmask") {
            let line = o.lines.get("netmask").copied();
            errs.push(
                line,
                Some(&o.label),
                Some("netmask"),
                Reason::NetmaskWithoutIpaddr,
            );
        }
        return None;
    }
    let netmask = match o.is_set("netmask") {
        true => netmask?,
        false => DEFAULT_NETMASK,
    };
    let ipaddr = ipaddr?;
    let prefix_len = u32::from(netmask).leading_ones() as u8;
    let subnet = Ipv4Subnet::new(ipaddr, prefix_len);
    if subnet.is_none() {
        let mask = u32::from(netmask);
        let network = Ipv4Addr::from(u32::from(ipaddr) & mask);
        report_cross(
            errs,
            "ipaddr",
            &[(Some(o), "ipaddr"), (Some(o), "netmask")],
            Reason::NetworkOrBroadcast {
                subnet: format!("{network}/{prefix_len}"),
                got: ipaddr,
            },
        );
    }
    subnet
}

/// Returns the LAN subnet when it is fixed and usable for judging host
/// addresses (a followed one is judged at run time).
fn check_lan(lan: &Lan, l: Option<&Opts>, errs: &mut Errors) -> Option<Ipv4Subnet> {
    let subnet = lan.address?;
    if ok(l, &["dhcp_start"]) {
        // OpenWrt: the pool is network + start .. network + start + limit - 1,
        // cut below the broadcast address (ipcalc.sh, for dnsmasq; so is
        // b4d's, with a warning: the shipped 100 + 150 on a /25 works). A
        // start past the subnet leaves no pool at all.
        let max_offset = subnet.max_host_offset();
        if u64::from(lan.dhcp_start) > max_offset {
            report_cross(
                errs,
                "dhcp_start",
                &[(l, "dhcp_start"), (l, "netmask")],
                Reason::PoolOutsideSubnet {
                    subnet: subnet.network_string(),
                    start: lan.dhcp_start,
                    max_offset,
                },
            );
        }
    }
    Some(subnet)
}

fn check_interfaces(
    wan: &Wan,
    w: Option<&Opts>,
    tunnel: &Tunnel,
    t: Option<&Opts>,
    lan: &Lan,
    l: Option<&Opts>,
    errs: &mut Errors,
) {
    let roles = [
        (&wan.device, w, "device", "wan.device"),
        (&tunnel.name, t, "name", "tunnel.name"),
        (&lan.device, l, "device", "lan.device"),
    ];
    for (i, (name_a, opts_a, opt_a, role_a)) in roles.iter().enumerate() {
        for (name_b, opts_b, opt_b, role_b) in &roles[i + 1..] {
            if name_a != name_b || !ok(*opts_a, &[opt_a]) || !ok(*opts_b, &[opt_b]) {
                continue;
            }
            // Report on whichever was written in the file, naming the other role.
            let (opts, opt, other) = if opts_b.is_some_and(|o| o.is_set(opt_b)) {
                (*opts_b, *opt_b, *role_a)
            } else {
                (*opts_a, *opt_a, *role_b)
            };
            report_cross(
                errs,
                opt,
                &[(opts, opt)],
                Reason::InterfaceClash {
                    name: name_a.to_string(),
                    other,
                },
            );
        }
    }
}

fn static_hosts(
    sections: &[(&Section, String)],
    lan: Option<Ipv4Subnet>,
    errs: &mut Errors,
) -> Vec<StaticHost> {
    let mut hosts = Vec::new();
    let mut macs = HashMap::new();
    let mut ips = HashMap::new();
    for (section, label) in sections {
        let mut o = Opts::collect(section, label.clone(), HOST_OPTIONS, errs);
        let mac: Option<MacAddr> = o.get(errs, "mac", str::parse);
        let mac = o.require(errs, "mac", mac);
        let ip = o.get(errs, "ip", parse_ipv4);
        let ip = o.require(errs, "ip", ip);
        let name = o.get(errs, "name", parse_hostname);
        let client_id = o.get(errs, "client_id", str::parse);
        let line_of = |name: &str| o.lines.get(name).copied().unwrap_or(o.line);

        let mut valid = true;
        if let Some(ip) = ip {
            if let Some(reason) = lan.and_then(|lan| host_address_problem(lan, ip)) {
                errs.push(Some(line_of("ip")), Some(label), Some("ip"), reason);
                valid = false;
            }
            if let Some(&first_line) = ips.get(&ip) {
                let reason = Reason::DuplicateHost {
                    field: "ip",
                    value: ip.to_string(),
                    first_line,
                };
                errs.push(Some(line_of("ip")), Some(label), Some("ip"), reason);
                valid = false;
            } else {
                ips.insert(ip, line_of("ip"));
            }
        }
        if let Some(mac) = mac {
            if let Some(&first_line) = macs.get(&mac) {
                let reason = Reason::DuplicateHost {
                    field: "mac",
                    value: mac.to_string(),
                    first_line,
                };
                errs.push(Some(line_of("mac")), Some(label), Some("mac"), reason);
                valid = false;
            } else {
                macs.insert(mac, line_of("mac"));
            }
        }
        if let (Some(mac), Some(ip), true) = (mac, ip, valid && o.ok("name") && o.ok("client_id")) {
            hosts.push(StaticHost {
                mac,
                ip,
                name,
                client_id,
            });
        }
    }
    hosts
}

/// Why a static host cannot have `ip` on the LAN `lan`, if it cannot. Also
/// asked at run time of a followed subnet.
pub fn host_address_problem(lan: Ipv4Subnet, ip: Ipv4Addr) -> Option<Reason> {
    if !lan.contains(ip) {
        Some(Reason::NotInSubnet {
            subnet: lan.network_string(),
            got: ip,
        })
    } else if ip == lan.network() || ip == lan.broadcast() {
        Some(Reason::NetworkOrBroadcast {
            subnet: lan.network_string(),
            got: ip,
        })
    } else if ip == lan.address() {
        Some(Reason::RouterAddress { got: ip })
    } else {
        None
    }
}
