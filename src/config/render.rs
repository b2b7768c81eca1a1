//! [`Config`] -> UCI text listing every option, defaults included.
//!
//! Unset optional values are written as `''`, which libuci (and our parser) read as "not
//! set", followed by a comment saying what unset means, so the output is both complete
//! and parses back to the same `Config`.

use std::fmt::Display;
use std::fmt::Write as _;

use super::uci::quote;
use super::value::{render_bool, render_duration};
use super::Config;

struct Out(String);

impl Out {
    fn section(&mut self, kind: &str, name: Option<&str>) {
        self.0.push_str("\nconfig ");
        self.0.push_str(kind);
        if let Some(name) = name {
            self.0.push(' ');
            self.0.push_str(&quote(name));
        }
        self.0.push('\n');
    }

    fn option(&mut self, name: &str, value: impl Display) {
        let _ = writeln!(self.0, "\toption {name} {}", quote(&value.to_string()));
    }

    fn flag(&mut self, name: &str, value: bool) {
        self.option(name, render_bool(value));
    }

    /// An optional value: the value, or `''` and what leaving it unset means.
    fn optional<T: Display>(&mut self, name: &str, value: Option<T>, unset_means: &str) {
        match value {
            Some(v) => self.option(name, v),
            None => {
                let _ = writeln!(self.0, "\toption {name} ''\t# unset: {unset_means}");
            }
        }
    }

    fn list<T: Display>(&mut self, name: &str, items: &[T], empty_means: &str) {
        if items.is_empty() {
            let _ = writeln!(self.0, "\toption {name} ''\t# empty: {empty_means}");
        }
        for item in items {
            let _ = writeln!(self.0, "\tlist {name} {}", quote(&item.to_string()));
        }
    }
}

pub(super) fn render(c: &Config) -> String {
    let mut out = Out(String::from(
        "# b4d effective configuration: every option, defaults filled in.\n\
         # As in libuci, an empty value ('') means the option is not set.\n",
    ));

    let g = &c.globals;
    out.section("globals", Some("globals"));
    out.option("log_level", g.log_level);
    out.option("state_dir", g.state_dir.display());
    out.flag("ubus", g.ubus);
    out.option("ubus_socket", g.ubus_socket.display());
    out.option("ipv6_handoff", g.ipv6_handoff);

    let w = &c.wan;
    out.section("wan", Some("wan"));
    out.option("device", &w.device);
    out.option("dhcpv6", w.dhcpv6);
    out.flag("request_address", w.request_address);
    out.flag("request_prefix", w.request_prefix);
    out.option("prefix_hint", w.prefix_hint.unwrap_or(0));
    out.list(
        "request_option",
        &w.request_option,
        "only the always-requested options 23 24 64 82 83",
    );
    out.optional(
        "aftr",
        w.aftr.as_ref(),
        "learned from DHCPv6 option 64 (RFC 6334)",
    );
    out.flag("release_on_stop", w.release_on_stop);
    out.flag("rapid_commit", w.rapid_commit);
    out.optional(
        "duid",
        w.duid.as_ref(),
        "generated once and kept in state_dir",
    );
    out.flag("reconfigure", w.reconfigure);
    out.option("solicit_max_rt", render_duration(w.solicit_max_rt));
    out.option("netifd_interface", &w.netifd_interface);
    out.option("lease_file", w.lease_file.display());

    let t = &c.tunnel;
    out.section("tunnel", Some("tunnel"));
    out.flag("enabled", t.enabled);
    out.option("name", &t.name);
    out.optional("mtu", t.mtu, "WAN MTU - 40");
    out.option("source", t.source);
    out.option("ipv4_address", t.ipv4_address);
    out.option("peer", t.peer);
    out.flag("default_route", t.default_route);
    out.option("metric", t.metric);
    out.flag("mss_clamp", t.mss_clamp);
    out.option("encaplimit", t.encaplimit);
    out.flag("disable_on_native_ipv4", t.disable_on_native_ipv4);

    let l = &c.lan;
    out.section("lan", Some("lan"));
    out.option("device", &l.device);
    out.optional(
        "ipaddr",
        l.address.map(|s| s.address()),
        "the LAN device's own address, followed",
    );
    out.optional(
        "netmask",
        l.address.map(|s| s.netmask()),
        "the LAN device's own prefix",
    );
    out.flag("dns_proxy", l.dns_proxy);
    out.option("dns_port", l.dns_port);
    out.option("dns_cache_size", l.dns_cache_size);
    out.list(
        "dns_server",
        &l.dns_server,
        "use the servers learned over DHCPv6",
    );
    out.flag("dhcp", l.dhcp);
    out.option("dhcp_start", l.dhcp_start);
    out.option("dhcp_limit", l.dhcp_limit);
    out.option("lease_time", render_duration(l.lease_time));
    out.option("lease_file", l.lease_file.display());
    out.option("domain", &l.domain);
    out.optional("dhcp_mtu", l.dhcp_mtu, "no DHCPv4 option 26");
    out.option("ip6assign", l.ip6assign.unwrap_or(0));
    out.option("ip6hint", format_args!("{:x}", l.ip6hint));
    out.option(
        "ip6ifaceid",
        std::net::Ipv6Addr::from(u128::from(l.ip6ifaceid)),
    );

    for h in &c.hosts {
        out.section("host", None);
        out.option("mac", h.mac);
        out.option("ip", h.ip);
        out.optional("name", h.name.as_deref(), "no host name");
        out.optional("client_id", h.client_id.as_ref(), "match by MAC only");
    }
    out.0
}
