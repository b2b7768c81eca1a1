//! The LAN side's few kernel operations, over b4d's own rtnetlink code
//! (src/netlink/), kept in one small file with a narrow API:
//! - [`Kernel::observe`]: the LAN device's index and IPv6 addresses, and
//!   b4d's unreachable routes;
//! - [`Kernel::apply`]: add/replace an address with lifetimes, delete an
//!   address, add an unreachable route, delete one.

use std::io;
use std::net::IpAddr;

use super::plan::{KernelAddress, KernelRoute, Net, Observed, Op, FOREVER, ROUTE_PROTOCOL};
use crate::netlink::wire::{AF_INET6, RTN_UNREACHABLE, RT_TABLE_MAIN};
use crate::netlink::{
    Address, Lifetimes, Netlink, NewAddress, Route, RouteKind, RouteSpec, Subscription,
    RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK,
};
use crate::tunnel::kernel::{Notifications, OpError};

pub struct Kernel {
    netlink: Netlink,
}

impl Kernel {
    /// Opens a request socket and a notification subscription for links,
    /// IPv6 addresses and IPv6 routes (someone deleting our address or
    /// route wakes the driver). Must run inside a tokio runtime.
    pub fn open() -> io::Result<(Kernel, Notifications)> {
        let netlink = Netlink::open()?;
        let notifications =
            Subscription::open(&[RTNLGRP_LINK, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE])?;
        Ok((Kernel { netlink }, notifications))
    }

    /// The LAN device's IPv6 addresses and b4d's unreachable routes.
    pub async fn observe(&self, lan: &str) -> io::Result<Observed> {
        let mut lan_ready = false;
        let lan = match self.netlink.link(lan).await? {
            Some(link) => {
                lan_ready = link.is_up_with_carrier();
                let addresses = self.netlink.addresses(AF_INET6, link.index).await?;
                Some((
                    link.index,
                    addresses.iter().filter_map(kernel_address).collect(),
                ))
            }
            None => None,
        };
        let routes = self.netlink.routes(AF_INET6).await?;
        Ok(Observed {
            lan,
            lan_ready,
            routes: routes.iter().filter_map(kernel_route).collect(),
        })
    }

    pub async fn apply(&self, op: &Op) -> Result<(), OpError> {
        self.execute(op).await.map_err(|error| OpError {
            op: op.to_string(),
            error,
        })
    }

    async fn execute(&self, op: &Op) -> io::Result<()> {
        match op {
            Op::SetAddress {
                index,
                addr,
                prefix_len,
                preferred,
                valid,
            } => {
                // Replaces an existing one (new lifetimes); the prefix route
                // stays, so the LAN /64 is on-link.
                self.netlink
                    .add_address(&NewAddress {
                        index: *index,
                        addr: IpAddr::V6(*addr),
                        prefix_len: *prefix_len,
                        flags: 0,
                        lifetimes: Some(Lifetimes {
                            preferred: *preferred,
                            valid: *valid,
                        }),
                    })
                    .await
            }
            Op::RemoveAddress {
                index,
                addr,
                prefix_len,
            } => {
                self.netlink
                    .delete_address(*index, IpAddr::V6(*addr), *prefix_len)
                    .await
            }
            Op::AddUnreachableRoute { dst } => {
                match self.netlink.add_route(&unreachable_route(*dst)).await {
                    // Already there (added by a b4d killed before it could
                    // see it): what the plan wanted.
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
                    other => other,
                }
            }
            Op::RemoveUnreachableRoute { dst } => {
                self.netlink.delete_route(&unreachable_route(*dst)).await
            }
        }
    }
}

fn unreachable_route(dst: Net) -> RouteSpec {
    RouteSpec {
        dst: IpAddr::V6(dst.addr),
        dst_len: dst.len,
        kind: RouteKind::Unreachable,
        oif: None,
        gateway: None,
        metric: 0,
        protocol: ROUTE_PROTOCOL,
    }
}

fn kernel_address(a: &Address) -> Option<KernelAddress> {
    let Some(IpAddr::V6(addr)) = a.addr() else {
        return None;
    };
    let lifetimes = a.lifetimes.unwrap_or(Lifetimes {
        preferred: FOREVER,
        valid: FOREVER,
    });
    Some(KernelAddress {
        addr,
        prefix_len: a.prefix_len,
        valid: lifetimes.valid,
        preferred: lifetimes.preferred,
    })
}

fn kernel_route(r: &Route) -> Option<KernelRoute> {
    let ours = r.kind == RTN_UNREACHABLE
        && r.protocol == ROUTE_PROTOCOL
        && r.table == u32::from(RT_TABLE_MAIN);
    match (ours, r.dst) {
        (true, Some(IpAddr::V6(dst))) => Some(KernelRoute {
            dst: Net::new(dst, r.dst_len),
        }),
        _ => None,
    }
}
