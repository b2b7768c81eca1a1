//! The LAN's IPv4 subnet: the router's address on the LAN device and its
//! prefix, which the DHCPv4 server hands out from and the DNS proxy listens
//! on.
//!
//! Either fixed by `lan.ipaddr`/`lan.netmask`, or (those unset, the
//! default) followed from the LAN device as the kernel has it: on OpenWrt
//! netifd owns br-lan's address (`network.lan.ipaddr`), and a user who
//! changes it in LuCI expects DHCP and DNS to move with it, as dnsmasq's and
//! odhcpd's do (both take the subnet from the interface).
//!
//! - here: [`Ipv4Subnet`] and the pure choice of the followed address;
//! - `driver`: the task that follows the device over netlink.

pub mod driver;

use std::fmt;
use std::net::Ipv4Addr;

/// The router's address and the prefix length of its subnet
/// ("192.168.1.1/24"): the address is never the network or broadcast
/// address of a subnet that has room for hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Subnet {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Subnet {
    /// `None` when the subnet has no room for a host besides the router
    /// (longer than /30) or the address is its network or broadcast address.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Subnet> {
        let subnet = Ipv4Subnet {
            address,
            prefix_len,
        };
        let valid =
            prefix_len <= 30 && address != subnet.network() && address != subnet.broadcast();
        valid.then_some(subnet)
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn netmask(&self) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        Ipv4Addr::from(mask)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & u32::from(self.netmask()))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !u32::from(self.netmask()))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & u32::from(self.netmask()) == u32::from(self.network())
    }

    /// The largest host offset from the network address: the pool must end
    /// below the broadcast address.
    pub fn max_host_offset(&self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix_len))).saturating_sub(2)
    }

    /// The DHCP pool OpenWrt's `start`/`limit` describe (offsets from the
    /// network address; both ends inclusive), cut at the broadcast address
    /// as OpenWrt's ipcalc.sh does for dnsmasq; `None` when not one address
    /// of it is inside the subnet.
    pub fn offset_pool(&self, start: u32, limit: u32) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let max = self.max_host_offset();
        let first = u64::from(start);
        if limit == 0 || first == 0 || first > max {
            return None;
        }
        let last = (first + u64::from(limit) - 1).min(max);
        let net = u64::from(u32::from(self.network()));
        // Inside the 32-bit subnet by the bounds above.
        let at = |offset: u64| Ipv4Addr::from((net + offset) as u32);
        Some((at(first), at(last)))
    }

    /// "192.168.1.0/24", for messages.
    pub fn network_string(&self) -> String {
        format!("{}/{}", self.network(), self.prefix_len)
    }
}

/// "192.168.1.1/24".
impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Which of the LAN device's primary addresses (with their prefix
/// lengths) b4d serves: the one it serves now while the device still has it
/// (adding a second address must not move every client), else the first
/// with room for a pool. `None` when the device has no usable one.
pub fn followed_subnet(
    addresses: &[(Ipv4Addr, u8)],
    current: Option<Ipv4Subnet>,
) -> Option<Ipv4Subnet> {
    let mut usable = addresses
        .iter()
        .filter(|(ip, _)| !ip.is_loopback() && !ip.is_link_local())
        .filter_map(|&(ip, prefix_len)| Ipv4Subnet::new(ip, prefix_len));
    let first = usable.next();
    current
        .filter(|c| first == Some(*c) || usable.any(|s| s == *c))
        .or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Ipv4Subnet {
        let (ip, len) = s.split_once('/').unwrap();
        Ipv4Subnet::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
    }

    fn v4(s: &str) -> (Ipv4Addr, u8) {
        let (ip, len) = s.split_once('/').unwrap();
        (ip.parse().unwrap(), len.parse().unwrap())
    }

    #[test]
    fn subnet_arithmetic() {
        let s = subnet("10.1.2.3/20");
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(s.network(), Ipv4Addr::new(10, 1, 0, 0));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 1, 15, 255));
        assert!(s.contains(Ipv4Addr::new(10, 1, 15, 1)));
        assert!(!s.contains(Ipv4Addr::new(10, 1, 16, 1)));
        assert_eq!(s.to_string(), "10.1.2.3/20");
        assert_eq!(s.network_string(), "10.1.0.0/20");
        assert_eq!(subnet("10.0.0.1/0").netmask(), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn network_and_broadcast_addresses_are_not_a_router_address() {
        assert!(Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 0), 24).is_none());
        assert!(Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 255), 24).is_none());
        assert!(Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 1), 33).is_none());
        // No room for a client.
        assert!(Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 1), 31).is_none());
        assert!(Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 1), 32).is_none());
        assert!(Ipv4Subnet::new(Ipv4Addr::new(192, 168, 1, 1), 30).is_some());
    }

    #[test]
    fn offset_pool_follows_openwrt_start_and_limit() {
        let lan = subnet("192.168.1.1/24");
        let pool = |start, limit| lan.offset_pool(start, limit);
        let ip = |last: u8| Ipv4Addr::new(192, 168, 1, last);
        assert_eq!(pool(100, 150), Some((ip(100), ip(249))));
        // Cut below the broadcast address, as ipcalc.sh cuts dnsmasq's range.
        assert_eq!(pool(100, 250), Some((ip(100), ip(254))));
        assert_eq!(pool(254, 1), Some((ip(254), ip(254))));
        assert_eq!(pool(255, 1), None);
        assert_eq!(pool(0, 10), None);
        assert_eq!(pool(10, 0), None);
        let wide = subnet("10.0.0.1/16");
        assert_eq!(
            wide.offset_pool(100, 150),
            Some((Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 249)))
        );
        assert_eq!(
            wide.offset_pool(u32::MAX, u32::MAX),
            None,
            "no overflow at the top of the offsets"
        );
        assert_eq!(
            subnet("10.0.0.1/8").offset_pool(1, u32::MAX),
            Some((Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 255, 255, 254)))
        );
    }

    #[test]
    fn followed_subnet_is_the_first_usable_address_of_the_device() {
        let addresses = [
            v4("169.254.1.1/16"),
            v4("192.168.8.1/24"),
            v4("172.16.0.1/16"),
        ];
        assert_eq!(
            followed_subnet(&addresses, None),
            Some(subnet("192.168.8.1/24"))
        );
        assert_eq!(followed_subnet(&[], None), None);
    }

    #[test]
    fn followed_subnet_stays_while_the_device_keeps_it() {
        let addresses = [v4("192.168.8.1/24"), v4("172.16.0.1/16")];
        let serving = Some(subnet("172.16.0.1/16"));
        assert_eq!(followed_subnet(&addresses, serving), serving);
        // Gone (the user changed network.lan.ipaddr): the new one.
        assert_eq!(
            followed_subnet(&addresses[..1], serving),
            Some(subnet("192.168.8.1/24"))
        );
        // Its prefix changed: the address as the kernel has it now.
        assert_eq!(
            followed_subnet(&[v4("172.16.0.1/12")], serving),
            Some(subnet("172.16.0.1/12"))
        );
    }

    #[test]
    fn addresses_without_room_for_a_pool_are_not_followed() {
        let addresses = [v4("10.0.0.1/31"), v4("10.0.0.9/32"), v4("127.0.0.1/8")];
        assert_eq!(followed_subnet(&addresses, None), None);
    }
}
