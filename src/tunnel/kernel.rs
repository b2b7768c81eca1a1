//! The kernel side of the tunnel over rtnetlink: observe the WAN and tunnel
//! devices into a [`plan::Observed`], apply one [`plan::Op`], and subscribe
//! to the notifications (links, IPv6 link info, addresses, IPv4 routes) that wake the
//! reconcile loop. Every error names the operation that failed.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::nft;
use super::plan::{KernelAddress, MssClamp, Observed, Op, TunnelDevice, TunnelSpec, WanDevice};
use crate::netlink::wire::{
    AF_INET, AF_UNSPEC, IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_NOPREFIXROUTE, IFA_F_OPTIMISTIC,
    IFA_F_SECONDARY, IFA_F_TENTATIVE, IFF_UP, RTPROT_STATIC, RT_TABLE_MAIN,
};
use crate::netlink::{
    Address, Ip6TunnelSpec, Lifetimes, Link, Netlink, NewAddress, RouteKind, RouteSpec,
    Subscription, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_IFINFO, RTNLGRP_LINK,
};

/// An operation that failed, with the kernel's reason.
#[derive(Debug)]
pub struct OpError {
    pub op: String,
    pub error: io::Error,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.error)
    }
}

pub type Notifications = Subscription;

/// The alias b4d gives the tunnels it creates. A run adopts the tunnel of
/// its configured name; one left by a killed b4d under another name (the
/// configuration changed before the restart) is found by this mark and
/// removed, with the IPv4 default route through it. Netifd's own dslite
/// tunnels, or anyone else's, carry no such mark and are left alone.
pub const OWNER_ALIAS: &str = "b4d";

pub struct Kernel {
    netlink: Netlink,
}

impl Kernel {
    /// Opens a request socket and a notification subscription. Must be
    /// called inside a tokio runtime.
    pub fn open() -> io::Result<(Kernel, Notifications)> {
        let netlink = Netlink::open()?;
        let notifications = Subscription::open(&[
            RTNLGRP_LINK,
            // The WAN's IPv6 MTU set by an RA's MTU option: the tunnel MTU
            // and MSS clamp follow it at once.
            RTNLGRP_IPV6_IFINFO,
            RTNLGRP_IPV6_IFADDR,
            RTNLGRP_IPV4_IFADDR,
            RTNLGRP_IPV4_ROUTE,
        ])?;
        Ok((Kernel { netlink }, notifications))
    }

    async fn ipv4_default_routes(&self, oif: u32) -> io::Result<Vec<u32>> {
        let routes = self.netlink.routes(AF_INET).await?;
        Ok(routes
            .iter()
            .filter(|r| r.dst_len == 0 && r.table == u32::from(RT_TABLE_MAIN))
            .filter(|r| r.oif == Some(oif))
            .map(|r| r.priority.unwrap_or(0))
            .collect())
    }

    /// EEXIST from adding the tunnel's default route: the kernel keeps one
    /// IPv4 default route per metric, and another device's (an LTE or PPPoE
    /// uplink, a forgotten `proto dslite` interface) has this one. Says
    /// which, and what to do, instead of a bare "File exists".
    async fn default_route_clash(&self, error: io::Error, tunnel: u32, metric: u32) -> io::Error {
        let routes = self.netlink.routes(AF_INET).await.unwrap_or_default();
        let other = routes.iter().find(|r| {
            r.dst_len == 0
                && r.table == u32::from(RT_TABLE_MAIN)
                && r.priority.unwrap_or(0) == metric
                && r.oif != Some(tunnel)
        });
        let Some(other) = other else {
            return error;
        };
        let device = other.oif.map_or_else(|| "?".into(), device_name);
        let via = other
            .gateway
            .map(|g| format!(" via {g}"))
            .unwrap_or_default();
        io::Error::new(
            error.kind(),
            format!(
                "{error}: the IPv4 default route{via} dev {device} has metric {metric} too; \
                 set tunnel.metric to one no other default route uses"
            ),
        )
    }

    /// What the kernel has now. `mss_clamp` is the driver's memory of the
    /// nftables table.
    pub async fn observe(
        &self,
        wan_name: &str,
        tunnel_name: &str,
        mss_clamp: Option<MssClamp>,
    ) -> io::Result<Observed> {
        let wan = match self.netlink.link(wan_name).await? {
            Some(link) => {
                let addresses = self.netlink.addresses(AF_UNSPEC, link.index).await?;
                Some(wan_device(&link, &addresses))
            }
            None => None,
        };
        let tunnel = match self.netlink.link(tunnel_name).await? {
            Some(link) => {
                let addresses = self.netlink.addresses(AF_INET, link.index).await?;
                let routes = self.ipv4_default_routes(link.index).await?;
                Some(tunnel_device(&link, &addresses, routes))
            }
            None => None,
        };
        Ok(Observed {
            wan,
            tunnel,
            mss_clamp,
        })
    }

    /// [`remove_leftovers`] on this kernel.
    pub async fn remove_leftovers(&self, keep: Option<&str>) -> io::Result<Vec<String>> {
        remove_leftovers(&self.netlink, keep).await
    }

    /// Applies one operation.
    pub async fn apply(&self, op: &Op) -> Result<(), OpError> {
        self.execute(op).await.map_err(|error| OpError {
            op: op.to_string(),
            error,
        })
    }

    async fn execute(&self, op: &Op) -> io::Result<()> {
        let netlink = &self.netlink;
        match op {
            Op::SetWanAddress { wan, address } => {
                netlink
                    .add_address(&NewAddress {
                        index: *wan,
                        addr: IpAddr::V6(address.addr),
                        prefix_len: 128,
                        // Optimistic DAD (RFC 4429): DAD still runs, but the
                        // address can source tunnel traffic at once instead of a
                        // second or two later; a kernel without
                        // CONFIG_IPV6_OPTIMISTIC_DAD treats it as plain DAD.
                        flags: IFA_F_NOPREFIXROUTE | IFA_F_OPTIMISTIC,
                        lifetimes: Some(Lifetimes {
                            preferred: address.preferred,
                            valid: address.valid,
                        }),
                    })
                    .await
            }
            Op::RemoveWanAddress {
                wan,
                addr,
                prefix_len,
            } => {
                netlink
                    .delete_address(*wan, IpAddr::V6(*addr), *prefix_len)
                    .await
            }
            Op::CreateTunnel(spec) => {
                netlink.create_ip6tnl(&ip6tnl(spec), spec.mtu).await?;
                match netlink.link(&spec.name).await? {
                    Some(link) => netlink.set_link_alias(link.index, OWNER_ALIAS).await,
                    None => Ok(()),
                }
            }
            Op::UpdateTunnel { index, spec } => netlink.change_ip6tnl(*index, &ip6tnl(spec)).await,
            Op::DeleteTunnel { index } => netlink.delete_link(*index).await,
            Op::SetTunnelMtu { index, mtu } => netlink.set_link_mtu(*index, *mtu).await,
            Op::SetTunnelUp { index } => netlink.set_link_up(*index).await,
            Op::AddTunnelAddress {
                index,
                addr,
                prefix_len,
                ..
            } => {
                netlink
                    .add_address(&NewAddress {
                        index: *index,
                        addr: IpAddr::V4(*addr),
                        prefix_len: *prefix_len,
                        flags: 0,
                        lifetimes: None,
                    })
                    .await
            }
            Op::RemoveTunnelAddress {
                index,
                addr,
                prefix_len,
            } => {
                netlink
                    .delete_address(*index, IpAddr::V4(*addr), *prefix_len)
                    .await
            }
            Op::AddDefaultRoute {
                index,
                gateway,
                metric,
            } => {
                let added = netlink
                    .add_route(&default_route(*index, Some(*gateway), *metric))
                    .await;
                match added {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        Err(self.default_route_clash(e, *index, *metric).await)
                    }
                    other => other,
                }
            }
            // Whoever made it (`ip route add default dev ds-b4 metric 50`
            // says proto boot): the kernel matches a delete on the protocol.
            Op::RemoveDefaultRoute { index, metric } => {
                let route = RouteSpec {
                    protocol: 0,
                    ..default_route(*index, None, *metric)
                };
                netlink.delete_route(&route).await
            }
            Op::LoadMssClamp(clamp) => {
                let clamp = clamp.clone();
                blocking(move || nft::load(&clamp.tunnel, clamp.mss)).await
            }
            Op::RemoveMssClamp => blocking(nft::remove).await,
        }
    }
}

/// The name of device `index` (if_indextoname), or the index in words.
fn device_name(index: u32) -> String {
    let mut name = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `name` holds IF_NAMESIZE bytes, as if_indextoname requires;
    // on success it wrote a NUL-terminated name there.
    let found = unsafe { !libc::if_indextoname(index, name.as_mut_ptr().cast()).is_null() };
    let len = name.iter().position(|&b| b == 0).unwrap_or(0);
    match (found, std::str::from_utf8(&name[..len])) {
        (true, Ok(text)) => text.to_string(),
        _ => format!("ifindex {index}"),
    }
}

/// Deletes the tunnels marked [`OWNER_ALIAS`] but for the one called
/// `keep` (`None`: the tunnel is disabled), their routes with them, and
/// with the tunnel disabled the MSS clamp table; returns their names. The
/// tunnel called `keep`, adopted, gets the mark if it lacks it (made by a
/// b4d from before the mark).
pub async fn remove_leftovers(netlink: &Netlink, keep: Option<&str>) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for link in netlink.links().await? {
        if link.kind.as_deref() != Some("ip6tnl") {
            continue;
        }
        let marked = link.alias.as_deref() == Some(OWNER_ALIAS);
        let name = link.name.unwrap_or_default();
        if Some(name.as_str()) == keep {
            if !marked {
                netlink.set_link_alias(link.index, OWNER_ALIAS).await?;
            }
        } else if marked {
            netlink.delete_link(link.index).await?;
            removed.push(name);
        }
    }
    if keep.is_none() && !removed.is_empty() {
        blocking(nft::remove).await?;
    }
    Ok(removed)
}

/// `nft` is a short-lived child process; keep the runtime free meanwhile.
async fn blocking(f: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

fn default_route(index: u32, gateway: Option<Ipv4Addr>, metric: u32) -> RouteSpec {
    RouteSpec {
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst_len: 0,
        kind: RouteKind::Unicast,
        oif: Some(index),
        gateway: gateway.map(IpAddr::V4),
        metric,
        protocol: RTPROT_STATIC,
    }
}

/// The ip6tnl attributes of `spec` (`ip link add NAME type ip6tnl mode
/// ipip6 local L remote R dev WAN ttl 64 tclass inherit encaplimit none`).
fn ip6tnl(spec: &TunnelSpec) -> Ip6TunnelSpec<'_> {
    Ip6TunnelSpec {
        name: &spec.name,
        link: spec.link,
        local: spec.local,
        remote: spec.remote,
        hop_limit: spec.hop_limit,
        encap_limit: spec.encap_limit,
        flags: spec.flags,
        proto: super::plan::PROTO_IPIP,
    }
}

fn kernel_address(address: &Address, addr: Ipv6Addr) -> KernelAddress {
    let lifetimes = address.lifetimes.unwrap_or(Lifetimes {
        preferred: u32::MAX,
        valid: u32::MAX,
    });
    KernelAddress {
        addr,
        prefix_len: address.prefix_len,
        tentative: address.flags & IFA_F_TENTATIVE != 0,
        dad_failed: address.flags & IFA_F_DADFAILED != 0,
        deprecated: address.flags & IFA_F_DEPRECATED != 0,
        // IFA_F_TEMPORARY shares its bit with IFA_F_SECONDARY.
        temporary: u32::from(address.header_flags) & IFA_F_SECONDARY != 0,
        no_prefix_route: address.flags & IFA_F_NOPREFIXROUTE != 0,
        valid: lifetimes.valid,
        preferred: lifetimes.preferred,
    }
}

fn is_global_ipv4(addr: Ipv4Addr) -> bool {
    !addr.is_loopback() && !addr.is_link_local() && !addr.is_unspecified()
}

/// The WAN as the plan sees it.
pub fn wan_device(link: &Link, addresses: &[Address]) -> WanDevice {
    let mut wan = WanDevice {
        index: link.index,
        up: link.is_up_with_carrier(),
        // What IPv6 packets out of the WAN may carry: the link MTU, or the
        // smaller one an RA's MTU option set (a "baby jumbo" link the ISP
        // announces at 1500); the tunnel and the MSS clamp follow it.
        mtu: match (link.mtu, link.ipv6_mtu) {
            (Some(link_mtu), Some(ipv6_mtu)) => link_mtu.min(ipv6_mtu),
            (link_mtu, _) => link_mtu.unwrap_or(0),
        },
        ..WanDevice::default()
    };
    for address in addresses.iter().filter(|a| a.index == link.index) {
        match address.addr() {
            Some(IpAddr::V6(addr)) => wan.addresses.push(kernel_address(address, addr)),
            Some(IpAddr::V4(addr)) if is_global_ipv4(addr) => wan.ipv4.push(addr),
            _ => {}
        }
    }
    wan
}

/// The device named like the tunnel, as the plan sees it.
pub fn tunnel_device(link: &Link, addresses: &[Address], default_routes: Vec<u32>) -> TunnelDevice {
    let mut tunnel = TunnelDevice {
        index: link.index,
        mtu: link.mtu.unwrap_or(0),
        up: link.flags & IFF_UP != 0,
        default_routes,
        kind: link.kind.clone().unwrap_or_default(),
        ..TunnelDevice::default()
    };
    if let Some(params) = &link.ip6tnl {
        tunnel.local = params.local;
        tunnel.remote = params.remote;
        tunnel.link = params.link;
        tunnel.hop_limit = params.hop_limit;
        tunnel.encap_limit = params.encap_limit;
        tunnel.proto = params.proto;
        // The kernel adds its capability bits (IP6_TNL_F_CAP_XMIT,
        // CAP_RCV, ... from 0x10000) to the dump; only the
        // configurable ones below them count.
        tunnel.flags = params.flags.unwrap_or(0) & 0xffff;
    }
    for address in addresses.iter().filter(|a| a.index == link.index) {
        if let Some(IpAddr::V4(addr)) = address.addr() {
            tunnel.ipv4.push((addr, address.prefix_len));
        }
    }
    tunnel
}

/// Waits for the next notification of any kind (a burst counts once); the
/// caller observes anew.
pub async fn changed(notifications: &mut Notifications) -> io::Result<()> {
    notifications.changed().await
}
