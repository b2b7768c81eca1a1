//! rtnetlink for b4d: a small codec and socket of its own instead of the
//! rtnetlink crate family (about 490 KiB of a mips binary for the dozen
//! messages b4d sends).
//!
//! - [`wire`]: pure encoding of requests and decoding of link, address and
//!   route messages (golden-byte tests in both byte orders, fuzzed);
//! - [`socket`]: the NETLINK_ROUTE sockets on tokio;
//! - here: [`Netlink`], the requests as async functions, [`Subscription`]
//!   for notifications, and [`LinkWatch`], one device followed by name.
//!
//! # API
//! ```text
//! Netlink::open() -> io::Result<Netlink>                 (inside a tokio runtime)
//!   .link(name)            -> Option<Link>               RTM_GETLINK by name; None on ENODEV
//!   .addresses(family, index) -> Vec<Address>            RTM_GETADDR dump, of one device
//!   .routes(family)        -> Vec<Route>                 RTM_GETROUTE dump (all tables)
//!   .create_ip6tnl(&Ip6TunnelSpec, mtu)                  ip link add ... type ip6tnl, up
//!   .change_ip6tnl(index, &Ip6TunnelSpec)                changelink (no IFLA_IFNAME: EBUSY)
//!   .delete_link(index) / .set_link_mtu(index, mtu) / .set_link_up(index)
//!   .add_address(&NewAddress)                            replace: flags, IFA_CACHEINFO lifetimes
//!   .delete_address(index, addr, prefix_len)
//!   .add_route(&RouteSpec) / .delete_route(&RouteSpec)   unicast or unreachable, main table
//! Subscription::open(&[RTNLGRP_LINK, ...]) -> .changed().await   (bursts coalesced; overrun = change)
//! LinkWatch::new(name) -> .snapshot().await -> Option<LinkState>, .changed().await
//!   (link, IPv4 and IPv6 addresses, IPv6 forwarding)
//! ```
//! Requests fail with the kernel's errno as an `io::Error` ("File exists
//! (os error 17)"); callers add the operation's name.

pub mod socket;
pub mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use socket::Subscription;
pub use wire::{
    Address, Ip6Tunnel, Ip6TunnelSpec, Lifetimes, Link, Neighbor, NewAddress, Route, RouteKind,
    RouteSpec, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_IFINFO,
    RTNLGRP_IPV6_NETCONF, RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK, RTNLGRP_NEIGH,
};

use socket::RequestSocket;
use wire::{
    AF_INET, AF_INET6, AF_UNSPEC, IFA_F_DADFAILED, IFA_F_OPTIMISTIC, IFA_F_SECONDARY,
    IFA_F_TENTATIVE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE,
};

/// The request side of rtnetlink.
pub struct Netlink {
    socket: RequestSocket,
}

impl Netlink {
    /// Opens the request socket. Must be called inside a tokio runtime.
    pub fn open() -> io::Result<Netlink> {
        Ok(Netlink {
            socket: RequestSocket::open()?,
        })
    }

    /// The device called `name`, `None` if there is none.
    pub async fn link(&self, name: &str) -> io::Result<Option<Link>> {
        match self.socket.acked(wire::get_link(name)).await {
            Ok(replies) => Ok(replies
                .iter()
                .filter(|(header, _)| header.kind == RTM_NEWLINK)
                .find_map(|(_, payload)| Link::decode(payload).ok())),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("link dump for {name}: {e}"),
            )),
        }
    }

    /// Every device.
    pub async fn links(&self) -> io::Result<Vec<Link>> {
        let replies = (self.socket.dump(wire::dump_links()).await)
            .map_err(|e| io::Error::new(e.kind(), format!("link dump: {e}")))?;
        Ok(replies
            .iter()
            .filter(|(header, _)| header.kind == RTM_NEWLINK)
            .filter_map(|(_, payload)| Link::decode(payload).ok())
            .collect())
    }

    /// The addresses of `family` (AF_UNSPEC: all) on device `index`.
    pub async fn addresses(&self, family: u8, index: u32) -> io::Result<Vec<Address>> {
        let replies = self
            .socket
            .dump(wire::dump_addresses(family))
            .await
            .map_err(|e| {
                io::Error::new(e.kind(), format!("address dump for ifindex {index}: {e}"))
            })?;
        Ok(replies
            .iter()
            .filter(|(header, _)| header.kind == RTM_NEWADDR)
            .filter_map(|(_, payload)| Address::decode(payload).ok())
            .filter(|a| a.index == index)
            .collect())
    }

    /// The neighbour entries of device `index` with a known link-layer
    /// address, of `family`.
    pub async fn neighbors(&self, family: u8, index: u32) -> io::Result<Vec<Neighbor>> {
        let replies = (self.socket.dump(wire::dump_neighbors(family)).await)
            .map_err(|e| io::Error::new(e.kind(), format!("neighbour dump: {e}")))?;
        Ok(replies
            .iter()
            .filter(|(header, _)| header.kind == wire::RTM_NEWNEIGH)
            .filter_map(|(_, payload)| Neighbor::decode(payload))
            .filter(|n| n.index == index)
            .collect())
    }

    /// All routes of `family` (AF_INET, AF_INET6), every table.
    pub async fn routes(&self, family: u8) -> io::Result<Vec<Route>> {
        let replies = self
            .socket
            .dump(wire::dump_routes(family))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("route dump: {e}")))?;
        Ok(replies
            .iter()
            .filter(|(header, _)| header.kind == RTM_NEWROUTE)
            .filter_map(|(_, payload)| Route::decode(payload).ok())
            .collect())
    }

    async fn request(&self, request: wire::Request) -> io::Result<()> {
        self.socket.acked(request).await.map(drop)
    }

    pub async fn create_ip6tnl(&self, spec: &Ip6TunnelSpec<'_>, mtu: u32) -> io::Result<()> {
        self.request(wire::create_ip6tnl(spec, mtu)).await
    }

    pub async fn change_ip6tnl(&self, index: u32, spec: &Ip6TunnelSpec<'_>) -> io::Result<()> {
        self.request(wire::change_ip6tnl(index, spec)).await
    }

    pub async fn delete_link(&self, index: u32) -> io::Result<()> {
        self.request(wire::delete_link(index)).await
    }

    pub async fn set_link_mtu(&self, index: u32, mtu: u32) -> io::Result<()> {
        self.request(wire::set_link_mtu(index, mtu)).await
    }

    pub async fn set_link_alias(&self, index: u32, alias: &str) -> io::Result<()> {
        self.request(wire::set_link_alias(index, alias)).await
    }

    pub async fn set_link_up(&self, index: u32) -> io::Result<()> {
        self.request(wire::set_link_up(index)).await
    }

    /// Adds the address, or updates flags and lifetimes of one that exists.
    pub async fn add_address(&self, address: &NewAddress) -> io::Result<()> {
        self.request(wire::add_address(address)).await
    }

    pub async fn delete_address(&self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        self.request(wire::delete_address(index, addr, prefix_len))
            .await
    }

    /// Adds a route to the main table (EEXIST if it is there).
    pub async fn add_route(&self, route: &RouteSpec) -> io::Result<()> {
        self.request(wire::add_route(route)).await
    }

    pub async fn delete_route(&self, route: &RouteSpec) -> io::Result<()> {
        self.request(wire::delete_route(route)).await
    }
}

/// What the DHCPv6 client needs to know about its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    /// Administratively up and carrier present.
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// A link-local address that is usable: DAD done, or optimistic (RFC 4429).
    pub link_local: Option<Ipv6Addr>,
    /// Global IPv6 addresses whose DAD has finished or that are optimistic.
    pub global: Vec<Ipv6Addr>,
    /// Primary IPv4 addresses and their prefix lengths (a secondary one is
    /// an alias inside a primary's subnet), for the LAN side.
    pub ipv4: Vec<(Ipv4Addr, u8)>,
}

impl LinkState {
    /// RFC 8415 §18.2.1 needs a usable link-local source address.
    pub fn ready_for_dhcpv6(&self) -> bool {
        self.up && self.link_local.is_some()
    }
}

/// Builds a `LinkState` from a link message and the device's addresses.
pub fn link_state(link: &Link, addresses: &[Address]) -> LinkState {
    let mut state = LinkState {
        index: link.index,
        up: link.is_up_with_carrier(),
        mac: link.mac.as_deref().and_then(|m| m.try_into().ok()),
        mtu: link.mtu,
        link_local: None,
        global: Vec::new(),
        ipv4: Vec::new(),
    };
    for address in addresses {
        if address.index != link.index {
            continue;
        }
        if let (AF_INET, Some(IpAddr::V4(addr))) = (address.family, address.addr()) {
            if u32::from(address.header_flags) & IFA_F_SECONDARY == 0 {
                state.ipv4.push((addr, address.prefix_len));
            }
            continue;
        }
        if address.family != AF_INET6 {
            continue;
        }
        // RFC 4429 §3.3: an optimistic address may source packets while its
        // DAD runs; a merely tentative one may not.
        let tentative = address.flags & IFA_F_TENTATIVE != 0;
        let optimistic = address.flags & IFA_F_OPTIMISTIC != 0;
        if address.flags & IFA_F_DADFAILED != 0 || (tentative && !optimistic) {
            continue;
        }
        let Some(IpAddr::V6(addr)) = address.addr() else {
            continue;
        };
        if addr.is_unicast_link_local() {
            state.link_local.get_or_insert(addr);
        } else if !addr.is_loopback() && !addr.is_multicast() {
            state.global.push(addr);
        }
    }
    state
}

/// Follows one device by name through kernel link and address notifications.
pub struct LinkWatch {
    name: String,
    netlink: Netlink,
    notifications: Subscription,
}

impl LinkWatch {
    /// Subscribes to link, address and IPv6 netconf (forwarding)
    /// notifications. Must be called inside a tokio runtime.
    pub fn new(name: &str) -> io::Result<Self> {
        Ok(LinkWatch {
            name: name.to_string(),
            netlink: Netlink::open()?,
            notifications: Subscription::open(&[
                RTNLGRP_LINK,
                RTNLGRP_IPV4_IFADDR,
                RTNLGRP_IPV6_IFADDR,
                RTNLGRP_IPV6_NETCONF,
            ])?,
        })
    }

    /// The device's current state, `None` if it does not exist.
    pub async fn snapshot(&self) -> io::Result<Option<LinkState>> {
        let Some(link) = self.netlink.link(&self.name).await? else {
            return Ok(None);
        };
        let addresses = self
            .netlink
            .addresses(AF_UNSPEC, link.index)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{e} ({})", self.name)))?;
        Ok(Some(link_state(&link, &addresses)))
    }

    /// Waits for the next link, address or forwarding notification (for any device:
    /// the caller takes a fresh snapshot, which is cheap).
    pub async fn changed(&mut self) -> io::Result<()> {
        self.notifications.changed().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(flags: u32) -> Link {
        Link {
            index: 3,
            flags,
            mac: Some(vec![2, 0, 0, 0, 0, 1]),
            mtu: Some(1500),
            ..Link::default()
        }
    }

    fn v6(addr: &str, flags: u32) -> Address {
        Address {
            family: AF_INET6,
            prefix_len: 64,
            flags,
            index: 3,
            address: Some(addr.parse().unwrap()),
            ..Address::default()
        }
    }

    #[test]
    fn link_state_takes_only_addresses_past_dad() {
        let addresses = [
            v6("fe80::1", IFA_F_TENTATIVE),
            v6("fe80::2", 0),
            v6("2001:db8::1", IFA_F_DADFAILED),
            v6("2001:db8::2", wire::IFA_F_NOPREFIXROUTE),
            Address {
                index: 4,
                ..v6("2001:db8::3", 0)
            },
        ];
        let state = link_state(&link(wire::IFF_UP | wire::IFF_LOWER_UP), &addresses);
        assert!(state.up);
        assert_eq!(state.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(state.mtu, Some(1500));
        assert_eq!(state.link_local, Some("fe80::2".parse().unwrap()));
        assert_eq!(
            state.global,
            vec!["2001:db8::2".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(state.ready_for_dhcpv6());
    }

    #[test]
    fn an_optimistic_link_local_is_usable_at_once() {
        let optimistic = IFA_F_TENTATIVE | IFA_F_OPTIMISTIC;
        let state = link_state(
            &link(wire::IFF_UP | wire::IFF_LOWER_UP),
            &[v6("fe80::1", optimistic), v6("2001:db8::1", optimistic)],
        );
        assert_eq!(state.link_local, Some("fe80::1".parse().unwrap()));
        assert_eq!(
            state.global,
            vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(state.ready_for_dhcpv6());
    }

    #[test]
    fn link_state_lists_primary_ipv4_addresses_only() {
        let v4 = |addr: &str, prefix_len, header_flags: u32, index| {
            let ip: Ipv4Addr = addr.parse().unwrap();
            Address {
                family: AF_INET,
                prefix_len,
                header_flags: header_flags as u8,
                flags: header_flags,
                index,
                address: Some(ip.into()),
                local: Some(ip.into()),
                ..Address::default()
            }
        };
        let addresses = [
            v4("192.168.8.1", 24, 0, 3),
            v4("192.168.8.2", 24, IFA_F_SECONDARY, 3),
            v4("10.0.0.1", 16, 0, 4),
            v4("172.16.0.1", 12, 0, 3),
        ];
        let state = link_state(&link(wire::IFF_UP | wire::IFF_LOWER_UP), &addresses);
        assert_eq!(
            state.ipv4,
            [
                (Ipv4Addr::new(192, 168, 8, 1), 24),
                (Ipv4Addr::new(172, 16, 0, 1), 12)
            ]
        );
        assert!(state.global.is_empty() && state.link_local.is_none());
    }

    #[test]
    fn link_without_carrier_is_not_up() {
        let state = link_state(&link(wire::IFF_UP), &[v6("fe80::2", 0)]);
        assert!(!state.up);
        assert!(!state.ready_for_dhcpv6());
    }
}
