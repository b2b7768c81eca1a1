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

use crate::config::Config;

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
/// the printer the admin named.
pub fn local_names(
    static_hosts: &[(String, Ipv4Addr)],
    leases: &[LeaseInfo],
) -> Vec<(String, Ipv4Addr)> {
    let mut names: Vec<(String, Ipv4Addr)> = Vec::with_capacity(static_hosts.len() + leases.len());
    let leased = leases
        .iter()
        .filter_map(|l| Some((l.hostname.clone()?, l.ip)));
    for (name, ip) in static_hosts.iter().cloned().chain(leased) {
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
    /// The server's view of the `lan` section and the `host` sections.
    pub fn from_config(config: &Config) -> ServerConfig {
        let lan = &config.lan;
        let (pool_first, pool_last) = lan.dhcp_pool();
        ServerConfig {
            server_ip: lan.ipaddr,
            netmask: lan.netmask,
            pool_first,
            pool_last,
            lease_secs: u32::try_from(lan.lease_time.as_secs()).unwrap_or(u32::MAX - 1),
            domain: Some(lan.domain.clone()).filter(|d| !d.is_empty()),
            mtu: lan.dhcp_mtu,
            statics: config
                .hosts
                .iter()
                .map(|h| StaticLease {
                    mac: h.mac.0,
                    client_id: h.client_id.as_ref().map(|c| c.as_bytes().to_vec()),
                    ip: h.ip,
                    name: h.name.clone(),
                })
                .collect(),
        }
    }
}
