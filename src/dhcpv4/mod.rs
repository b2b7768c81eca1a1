//! The LAN DHCPv4 server (RFC 2131/2132): addresses for the IPv4-only
//! devices behind the B4 (RFC 6333 appendix: the CPE hands out RFC 1918
//! addresses on its LAN).
//!
//! - `wire`: codec (decode requests, encode replies to the client's size)
//! - `pool`: the dynamic range and its occupancy bitmap
//! - `leases`: lease records and the lease file (atomic writes)
//! - `server`: the sans-I/O core, `handle(now, input) -> Vec<Action>`
//! - `driver`: the tokio task owning UDP port 67 on the LAN device

pub mod driver;
pub mod leases;
pub mod pool;
pub mod server;
pub mod wire;

#[cfg(test)]
mod server_tests;

use std::net::Ipv4Addr;

pub use server::{Server, ServerConfig, ServerStatus, StaticLease};

use crate::config::{host_address_problem, Config};
use crate::lan4::Ipv4Subnet;

/// The server's clock: CLOCK_BOOTTIME seconds, which NTP does not move (see
/// leases.rs for why not the wall clock). Lease expiries, the driver's
/// timers and what ubus shows as time left are all on it.
pub fn clock_now() -> u64 {
    crate::boot_clock::boottime().map_or(0, |d| d.as_secs())
}

/// One lease as the rest of b4d sees it: the DNS proxy answers A/PTR for
/// `hostname`, ubus `leases` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    /// On the server's clock (CLOCK_BOOTTIME seconds, see leases.rs);
    /// 0 = static (no expiry).
    pub expires: u64,
    pub is_static: bool,
}

/// The names the DNS proxy answers for the LAN: the configured hosts'
/// names, then the names clients gave with their leases, where a name
/// already taken (compared as DNS does, RFC 4343) keeps its first address:
/// a phone calling itself `printer` must not move `printer.lan` away from
/// the printer the admin named. Between two leases with the same name the
/// newest (latest expiry: granted or renewed last) has it, as in dnsmasq: a
/// laptop undocked from its wired port keeps its name on Wi-Fi instead of
/// the wired lease it no longer renews. A configured host outside the LAN `subnet`
/// (a followed subnet moved away from it) is left out, as the DHCPv4
/// server leaves it out: its name must not hide the device's new lease.
pub fn local_names(
    static_hosts: &[(String, Ipv4Addr)],
    leases: &[LeaseInfo],
    subnet: Option<Ipv4Subnet>,
) -> Vec<(String, Ipv4Addr)> {
    let mut names: Vec<(String, Ipv4Addr)> = Vec::with_capacity(static_hosts.len() + leases.len());
    let configured = static_hosts
        .iter()
        .filter(|(_, ip)| subnet.is_none_or(|lan| host_address_problem(lan, *ip).is_none()))
        .cloned();
    let mut by_age: Vec<&LeaseInfo> = leases.iter().collect();
    by_age.sort_by_key(|l| (!l.is_static, std::cmp::Reverse(l.expires)));
    let leased = by_age
        .into_iter()
        .filter_map(|l| Some((l.hostname.clone()?, l.ip)));
    for (name, ip) in configured.chain(leased) {
        if !names
            .iter()
            .any(|(taken, _)| taken.eq_ignore_ascii_case(&name))
        {
            names.push((name, ip));
        }
    }
    names
}

impl ServerConfig {
    /// The server's view of the `lan` section and the `host` sections, on
    /// the LAN subnet `lan` (fixed by `lan.ipaddr` or followed from the
    /// device); with what of the configuration does not fit that subnet, to
    /// be said (for a fixed subnet the configuration check already refused
    /// what leaves nothing, a pool or host outside it; a pool cut at the
    /// broadcast address is said here; a followed subnet can change under
    /// it).
    pub fn from_config(config: &Config, lan: Ipv4Subnet) -> (ServerConfig, Vec<String>) {
        let settings = &config.lan;
        let mut misfits = Vec::new();
        let (pool_first, pool_last) = lan
            .offset_pool(settings.dhcp_start, settings.dhcp_limit)
            .inspect(|(_, last)| {
                let wanted = u64::from(settings.dhcp_start) + u64::from(settings.dhcp_limit) - 1;
                if wanted > lan.max_host_offset() {
                    misfits.push(format!(
                        "the pool (lan.dhcp_start {} + lan.dhcp_limit {}) ends at {last}, \
                         the last address of {} below its broadcast address",
                        settings.dhcp_start,
                        settings.dhcp_limit,
                        lan.network_string()
                    ));
                }
            })
            .unwrap_or_else(|| {
                misfits.push(format!(
                    "no dynamic addresses: lan.dhcp_start {} is not inside {}",
                    settings.dhcp_start,
                    lan.network_string()
                ));
                // `last < first`: the empty pool.
                (Ipv4Addr::from(1), Ipv4Addr::UNSPECIFIED)
            });
        let statics = config
            .hosts
            .iter()
            .filter(|h| match host_address_problem(lan, h.ip) {
                Some(reason) => {
                    misfits.push(format!("static host {} left out: ip {reason}", h.mac));
                    false
                }
                None => true,
            })
            .map(|h| StaticLease {
                mac: h.mac.0,
                client_id: h.client_id.as_ref().map(|c| c.as_bytes().to_vec()),
                ip: h.ip,
                name: h.name.clone(),
            })
            .collect();
        let config = ServerConfig {
            lan,
            pool_first,
            pool_last,
            lease_secs: u32::try_from(settings.lease_time.as_secs()).unwrap_or(u32::MAX - 1),
            domain: Some(settings.domain.clone()).filter(|d| !d.is_empty()),
            mtu: settings.dhcp_mtu,
            statics,
        };
        (config, misfits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MacAddr, StaticHost};

    fn subnet(s: &str) -> Ipv4Subnet {
        let (ip, len) = s.split_once('/').unwrap();
        Ipv4Subnet::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
    }

    fn host(ip: &str) -> StaticHost {
        StaticHost {
            mac: "02:00:00:00:00:01".parse::<MacAddr>().unwrap(),
            ip: ip.parse().unwrap(),
            name: None,
            client_id: None,
        }
    }

    #[test]
    fn a_followed_subnet_gets_the_configured_offsets() {
        let config = Config {
            hosts: vec![host("10.0.5.5")],
            ..Config::default()
        };
        let (server, misfits) = ServerConfig::from_config(&config, subnet("10.0.0.1/16"));
        assert_eq!(server.lan, subnet("10.0.0.1/16"));
        assert_eq!(
            (server.pool_first, server.pool_last),
            (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 249))
        );
        assert_eq!(server.statics.len(), 1);
        assert!(misfits.is_empty(), "{misfits:?}");
    }

    #[test]
    fn what_does_not_fit_a_followed_subnet_is_cut_and_said() {
        let config = Config {
            hosts: vec![host("10.0.5.5"), host("192.168.8.20")],
            ..Config::default()
        };
        // 192.168.8.1/25: offsets 100..=249 run past .126.
        let (server, misfits) = ServerConfig::from_config(&config, subnet("192.168.8.1/25"));
        assert_eq!(
            (server.pool_first, server.pool_last),
            (
                Ipv4Addr::new(192, 168, 8, 100),
                Ipv4Addr::new(192, 168, 8, 126)
            )
        );
        assert_eq!(server.statics.len(), 1);
        assert_eq!(server.statics[0].ip, Ipv4Addr::new(192, 168, 8, 20));
        assert_eq!(misfits.len(), 2, "{misfits:?}");
        assert!(misfits[0].contains("ends at 192.168.8.126"), "{misfits:?}");
        assert!(misfits[1].contains("10.0.5.5"), "{misfits:?}");
        // A /28 has no offset 100 at all.
        let (server, misfits) = ServerConfig::from_config(&config, subnet("192.168.8.1/28"));
        assert!(server.pool_last < server.pool_first, "the empty pool");
        assert!(misfits[0].contains("no dynamic addresses"), "{misfits:?}");
    }
}
