//! The `status` reply: the status model rendered as one blobmsg table, with
//! a section per subsystem (`wan`, `dhcpv6`, `aftr`, `tunnel`). Durations are
//! whole seconds from now; lifetimes that never end are the string
//! "infinite"; times of day are Unix seconds.

use std::net::Ipv6Addr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::wire::{Table, Value};
use crate::dhcpv4::server::ServerStatus;
use crate::dhcpv6::client::Drop;
use crate::dhcpv6::lease::Deadline;
use crate::dhcpv6::ClientStatus;
use crate::dns::ProxyStatus;
use crate::lan6::plan::FOREVER;
use crate::lan6::Lan6Status;
use crate::netifd::NetifdStatus;
use crate::status::{Stamped, Status};
use crate::tunnel::aftr::AftrStatus;
use crate::tunnel::driver::TunnelStatus;

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `now` and `wall` are the same moment on the two clocks.
fn stamped(s: &Stamped, now: Instant, wall: SystemTime) -> Table {
    let ago = now.saturating_duration_since(s.at).as_secs() as i64;
    Table::new()
        .with("time", unix_seconds(wall) - ago)
        .with("text", s.text.as_str())
}

fn seconds_until(deadline: Deadline, now: Instant) -> Value {
    match deadline {
        Some(d) => Value::from(d.saturating_duration_since(now).as_secs()),
        None => Value::from("infinite"),
    }
}

fn ago(t: Instant, now: Instant) -> Value {
    Value::from(now.saturating_duration_since(t).as_secs())
}

fn addresses(list: &[Ipv6Addr]) -> Value {
    Value::Array(list.iter().map(|a| Value::from(a.to_string())).collect())
}

fn dhcpv6_table(c: &ClientStatus, now: Instant) -> Table {
    let mut t = Table::new().with("state", c.state);
    if let Some(problem) = &c.last_problem {
        t.push("last_problem", problem.as_str());
    }
    if let Some(lease) = &c.lease {
        t.push("server", lease.server_addr.to_string());
        // From the lease file after a restart, not yet confirmed by a Reply.
        if c.restored {
            t.push("restored", true);
        }
        t.push("updated", ago(lease.updated, now));
        t.push("t1", seconds_until(lease.t1, now));
        t.push("t2", seconds_until(lease.t2, now));
        let addrs = lease
            .addresses
            .iter()
            .map(|a| {
                Value::from(
                    Table::new()
                        .with("address", a.addr.to_string())
                        .with("preferred", seconds_until(a.preferred_until, now))
                        .with("valid", seconds_until(a.valid_until, now)),
                )
            })
            .collect();
        t.push("addresses", Value::Array(addrs));
        let prefixes = lease
            .prefixes
            .iter()
            .map(|p| {
                Value::from(
                    Table::new()
                        .with("prefix", format!("{}/{}", p.prefix, p.len))
                        .with("preferred", seconds_until(p.preferred_until, now))
                        .with("valid", seconds_until(p.valid_until, now)),
                )
            })
            .collect();
        t.push("prefixes", Value::Array(prefixes));
    }
    t.push("dns_servers", addresses(&c.info.dns_servers));
    t.push(
        "domains",
        Value::Array(
            c.info
                .domains
                .iter()
                .map(|d| Value::from(d.as_str()))
                .collect(),
        ),
    );
    if let Some(name) = &c.info.aftr_name {
        t.push("aftr_name", name.as_str());
    }
    let mut dropped = Table::new();
    for reason in Drop::ALL {
        let n = c.counters.dropped(reason);
        if n > 0 {
            dropped.push(reason.name(), n);
        }
    }
    t.push(
        "counters",
        Table::new()
            .with("sent", c.counters.sent)
            .with("received", c.counters.received)
            .with("accepted", c.counters.accepted)
            .with("dropped", dropped),
    );
    t
}

fn aftr_table(a: &AftrStatus, now: Instant) -> Table {
    let mut t = Table::new();
    if let Some(name) = &a.name {
        t.push("name", name.as_str());
    }
    t.push("addresses", addresses(&a.addresses));
    if let Some(selected) = a.selected {
        t.push("selected", selected.to_string());
    }
    if let Some(server) = a.server {
        t.push("resolved_by", server.to_string());
    }
    if let Some(at) = a.resolved_at {
        t.push("resolved_ago", ago(at, now));
    }
    if let Some(ttl) = a.ttl {
        t.push("ttl", ttl);
    }
    t.push("stale", a.stale);
    if let Some(problem) = &a.problem {
        t.push("problem", problem.as_str());
    }
    if let Some(next) = a.next_attempt {
        t.push(
            "next_lookup_in",
            Value::from(next.saturating_duration_since(now).as_secs()),
        );
    }
    t.push("failures", a.failures);
    t
}

/// Packet and byte counters of a device, read from sysfs at call time.
fn link_counters(device: &str) -> Option<Table> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/class/net/{device}/statistics/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(
        Table::new()
            .with("rx_packets", read("rx_packets")?)
            .with("rx_bytes", read("rx_bytes")?)
            .with("tx_packets", read("tx_packets")?)
            .with("tx_bytes", read("tx_bytes")?)
            .with("tx_errors", read("tx_errors")?),
    )
}

fn tunnel_table(t: &TunnelStatus, now: Instant) -> Table {
    let mut table = Table::new().with("state", t.state);
    if let Some(reason) = &t.reason {
        table.push("reason", reason.as_str());
    }
    if let Some(since) = t.since {
        table.push("since", ago(since, now));
    }
    if let Some(spec) = &t.spec {
        table.push("name", spec.name.as_str());
        table.push("local", spec.local.to_string());
        table.push("remote", spec.remote.to_string());
        table.push("mtu", spec.mtu);
        table.push(
            "encaplimit",
            spec.encap_limit
                .map_or(Value::from("none"), |l| Value::from(u32::from(l))),
        );
        table.push("hop_limit", u32::from(spec.hop_limit));
        table.push("ipv4_address", format!("{}/29", spec.ipv4));
        table.push("peer", spec.peer.to_string());
        if let Some(metric) = spec.default_route_metric {
            table.push("default_route_metric", metric);
        }
        table.push("mss_clamp", spec.mss_clamp);
        if let Some(counters) = link_counters(&spec.name) {
            table.push("counters", counters);
        }
    }
    if let Some(error) = &t.last_error {
        table.push("last_error", error.as_str());
    }
    table
}

fn dns_table(d: &ProxyStatus) -> Table {
    let upstreams = d
        .upstreams
        .iter()
        .map(|u| {
            let mut t = Table::new()
                .with("server", u.addr.to_string())
                .with("queries", u.queries)
                .with("answers", u.answers)
                .with("failures", u.failures);
            if let Some(rtt) = u.srtt_ms {
                t.push("rtt_ms", Value::Double(rtt));
            }
            Value::from(t)
        })
        .collect();
    let mut dropped = Table::new();
    for (name, n) in d.drops.named() {
        if n > 0 {
            dropped.push(name, n);
        }
    }
    let mut t = Table::new()
        .with("queries", d.queries_udp + d.queries_tcp)
        .with("queries_tcp", d.queries_tcp)
        .with("cache_hits", d.cache_hits)
        .with("cache_misses", d.cache_misses)
        .with("local_answers", d.local_answers)
        .with("upstream_timeouts", d.upstream_timeouts)
        .with("upstream_failures", d.upstream_failures)
        .with("servfail_sent", d.servfail_sent)
        .with("cache_entries", d.cache_entries as u64)
        .with("upstreams", Value::Array(upstreams))
        .with("dropped", dropped);
    if let Some(problem) = &d.problem {
        t.push("problem", problem.as_str());
    }
    t
}

fn dhcpv4_table(d: &ServerStatus) -> Table {
    let mut dropped = Table::new();
    for (name, n) in &d.dropped {
        dropped.push(name, *n);
    }
    let mut t = Table::new()
        .with("active_leases", d.active_leases)
        .with("pool_size", d.pool_size)
        .with("pool_used", d.pool_used)
        .with("quarantined", d.quarantined)
        .with("pool_exhausted", d.pool_exhausted)
        .with("discover", d.received.discover)
        .with("request", d.received.request)
        .with("offers", d.sent_offer)
        .with("acks", d.sent_ack)
        .with("naks", d.sent_nak)
        .with("dropped", dropped);
    if let Some(subnet) = d.subnet {
        t.push("subnet", subnet.to_string());
    }
    if let Some(problem) = &d.problem {
        t.push("problem", problem.as_str());
    }
    t
}

/// Native IPv6 on the LAN: each delegated prefix with the LAN prefix and
/// bridge address carved from it, lifetimes counted down to `now`.
fn ipv6_lan_table(l: &Lan6Status, now: Instant) -> Table {
    let elapsed =
        l.at.map_or(0, |at| now.saturating_duration_since(at).as_secs());
    let left = |s: u32| match s {
        FOREVER => Value::from("infinite"),
        s => Value::from(u64::from(s).saturating_sub(elapsed)),
    };
    let prefixes = l
        .prefixes
        .iter()
        .map(|a| {
            let mut p = Table::new().with("delegated", a.delegated.to_string());
            if let Some((subnet, addr)) = a.lan {
                p.push("lan_prefix", subnet.to_string());
                p.push("address", addr.to_string());
            }
            p.push("preferred", left(a.preferred));
            p.push("valid", left(a.valid));
            p.push("deprecated", a.withdrawn || a.preferred == 0);
            Value::Table(p)
        })
        .collect();
    let mut t = Table::new()
        .with("state", l.state)
        .with("prefixes", Value::Array(prefixes));
    if let Some(reason) = &l.reason {
        t.push("reason", reason.as_str());
    }
    t
}

/// Reporting to netifd: the interface, whether netifd has it up with b4d's
/// addresses, the last failure in words, and the call counts.
fn netifd_table(n: &NetifdStatus) -> Table {
    let mut t = Table::new()
        .with("interface", n.interface.as_str())
        .with("reported_up", n.reported_up)
        .with("updates", n.counters.sent)
        .with("failed_calls", n.counters.failed);
    if let Some(error) = &n.last_error {
        t.push("last_error", error.as_str());
    }
    t
}

/// The whole `status` reply; `wall` is the wall clock at `now`.
pub fn status_table(status: &Status, now: Instant, wall: SystemTime) -> Table {
    let mut t = Table::new()
        .with("state", status.state.as_str())
        .with("reason", status.reason.as_str())
        .with(
            "state_since",
            now.saturating_duration_since(status.since).as_secs(),
        )
        .with(
            "uptime",
            now.saturating_duration_since(status.started).as_secs(),
        )
        .with("version", status.version);
    if let Some(e) = &status.last_event {
        t.push("last_event", stamped(e, now, wall));
    }
    if let Some(e) = &status.last_error {
        t.push("last_error", stamped(e, now, wall));
    }
    let mut wan = Table::new().with("device", status.wan_device.as_str());
    if let Some(spec) = status.tunnel.as_ref().and_then(|t| t.spec.as_ref()) {
        wan.push("address", spec.local.to_string());
    }
    t.push("wan", wan);
    if let Some(c) = &status.dhcpv6 {
        t.push("dhcpv6", dhcpv6_table(c, now));
    }
    if let Some(tunnel) = &status.tunnel {
        t.push("aftr", aftr_table(&tunnel.aftr, now));
        t.push("tunnel", tunnel_table(tunnel, now));
    }
    if let Some(dns) = &status.dns {
        t.push("dns", dns_table(dns));
    }
    if let Some(dhcpv4) = &status.dhcpv4 {
        t.push("dhcpv4", dhcpv4_table(dhcpv4));
    }
    if let Some(lan6) = &status.ipv6_lan {
        t.push("ipv6_lan", ipv6_lan_table(lan6, now));
    }
    if let Some(netifd) = &status.netifd {
        t.push("netifd", netifd_table(netifd));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcpv6::lease::{Lease, LeasedAddress, NetworkInfo};
    use crate::tunnel::plan::TunnelSpec;
    use std::time::Duration;

    #[test]
    fn status_has_a_section_per_subsystem_with_what_support_desks_ask_for() {
        let now = Instant::now();
        let mut status = Status::new(now);
        status.wan_device = "wan".into();
        status.dhcpv6 = Some(ClientStatus {
            state: "bound",
            lease: Some(Lease {
                server_id: vec![1],
                server_addr: "fe80::1".parse().unwrap(),
                updated: now,
                t1: Some(now + Duration::from_secs(1000)),
                t2: None,
                addresses: vec![LeasedAddress {
                    addr: "2001:db8:1::100".parse().unwrap(),
                    preferred_until: Some(now + Duration::from_secs(3000)),
                    valid_until: None,
                }],
                prefixes: vec![],
            }),
            info: NetworkInfo {
                dns_servers: vec!["2001:db8::53".parse().unwrap()],
                domains: vec!["example.net".into()],
                aftr_name: Some("aftr.example.net".into()),
            },
            ..ClientStatus::default()
        });
        let mut tunnel = TunnelStatus {
            state: "up",
            spec: Some(TunnelSpec {
                name: "b4test-none".into(),
                ..TunnelSpec::example()
            }),
            ..TunnelStatus::default()
        };
        tunnel.aftr.name = Some("aftr.example.net".into());
        tunnel.aftr.addresses = vec![
            "2001:db8:af::1".parse().unwrap(),
            "2001:db8:af::2".parse().unwrap(),
        ];
        tunnel.aftr.selected = Some("2001:db8:af::1".parse().unwrap());
        tunnel.aftr.ttl = Some(300);
        status.tunnel = Some(tunnel);
        let text = status_table(&status, now, SystemTime::now()).to_string();
        for needle in [
            r#""wan":{"device":"wan","address":"2001:db8:1::100"}"#,
            r#""addresses":[{"address":"2001:db8:1::100","preferred":3000,"valid":"infinite"}]"#,
            r#""t1":1000,"t2":"infinite""#,
            r#""dns_servers":["2001:db8::53"],"domains":["example.net"],"aftr_name":"aftr.example.net""#,
            r#""aftr":{"name":"aftr.example.net","addresses":["2001:db8:af::1","2001:db8:af::2"],"selected":"2001:db8:af::1","ttl":300"#,
            r#""remote":"2001:db8:af::1","mtu":1460,"encaplimit":"none","hop_limit":64,"ipv4_address":"192.0.0.2/29""#,
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }

    #[test]
    fn ipv6_lan_lists_each_prefix_with_lifetimes_counted_down() {
        use crate::lan6::plan::{Assigned, Net};
        let at = Instant::now();
        let mut status = Status::new(at);
        let delegated = Net::new("2001:db8:100::".parse().unwrap(), 56);
        let lan = Net::new("2001:db8:100::".parse().unwrap(), 64);
        status.ipv6_lan = Some(Lan6Status {
            state: "assigned",
            prefixes: vec![
                Assigned {
                    delegated,
                    lan: Some((lan, "2001:db8:100::1".parse().unwrap())),
                    preferred: 3000,
                    valid: FOREVER,
                    withdrawn: false,
                    route: true,
                },
                Assigned {
                    delegated: Net::new("2001:db8:200::".parse().unwrap(), 56),
                    lan: None,
                    preferred: 0,
                    valid: 7200,
                    withdrawn: true,
                    route: true,
                },
            ],
            at: Some(at),
            reason: None,
        });
        let text =
            status_table(&status, at + Duration::from_secs(10), SystemTime::now()).to_string();
        let needle = r#""ipv6_lan":{"state":"assigned","prefixes":[{"delegated":"2001:db8:100::/56","lan_prefix":"2001:db8:100::/64","address":"2001:db8:100::1","preferred":2990,"valid":"infinite","deprecated":false},{"delegated":"2001:db8:200::/56","preferred":0,"valid":7190,"deprecated":true}]}"#;
        assert!(text.contains(needle), "{needle} not in {text}");
    }

    #[test]
    fn a_lan_service_kept_off_its_port_shows_why() {
        let now = Instant::now();
        let mut status = Status::new(now);
        status.dns = Some(ProxyStatus::default());
        status.dhcpv4 = Some(ServerStatus::default());
        let text = status_table(&status, now, SystemTime::now()).to_string();
        assert!(!text.contains("problem"), "{text}");

        let held = "cannot serve on br-lan: Address in use";
        status.dns = Some(ProxyStatus {
            problem: Some(held.replace("serve on br-lan", "listen on 192.168.1.1:53")),
            ..ProxyStatus::default()
        });
        status.dhcpv4 = Some(ServerStatus {
            problem: Some(held.into()),
            subnet: crate::lan4::Ipv4Subnet::new(std::net::Ipv4Addr::new(10, 0, 0, 1), 16),
            ..ServerStatus::default()
        });
        let text = status_table(&status, now, SystemTime::now()).to_string();
        for needle in [
            r#""dropped":{},"problem":"cannot listen on 192.168.1.1:53: Address in use"}"#,
            r#""naks":0,"dropped":{},"subnet":"10.0.0.1/16","problem":"cannot serve on br-lan: Address in use"}"#,
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }
}
