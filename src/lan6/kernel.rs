//! The LAN side's few kernel operations over rtnetlink, kept in one small
//! file with a narrow API so that it can move to another netlink codec
//! without touching the plan:
//! - [`Kernel::observe`]: the LAN device's index and IPv6 addresses, and
//!   b4d's unreachable routes;
//! - [`Kernel::apply`]: add/replace an address with lifetimes, delete an
//!   address, add/replace an unreachable route with an expiry, delete one.

use std::io;
use std::net::{IpAddr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, CacheInfo};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{
    new_connection, new_multicast_connection, Handle, MulticastGroup, RouteMessageBuilder,
};

use super::plan::{KernelAddress, KernelRoute, Net, Observed, Op, FOREVER, ROUTE_PROTOCOL};
use crate::netlink::address_of;
use crate::tunnel::kernel::{Notifications, OpError};

const MAIN_TABLE: u8 = 254;
/// The kernel reports a route's remaining lifetime in clock ticks of
/// USER_HZ, which is 100 on every Linux architecture.
const USER_HZ: u32 = 100;

fn io_error(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens a request connection and a notification socket for links,
    /// IPv6 addresses and IPv6 routes (someone deleting our address or
    /// route wakes the driver). Must run inside a tokio runtime.
    pub fn open() -> io::Result<(Kernel, Notifications)> {
        let (conn, handle, _) = new_connection()?;
        tokio::spawn(conn);
        let (events, _, notifications) = new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv6Ifaddr,
            MulticastGroup::Ipv6Route,
        ])?;
        tokio::spawn(events);
        Ok((Kernel { handle }, notifications))
    }

    /// The LAN device's IPv6 addresses and b4d's unreachable routes.
    pub async fn observe(&self, lan: &str) -> io::Result<Observed> {
        let link = self
            .handle
            .link()
            .get()
            .match_name(lan.to_string())
            .execute()
            .try_next()
            .await;
        let index = match link {
            Ok(Some(link)) => Some(link.header.index),
            Ok(None) => None,
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => None,
            Err(e) => return Err(io::Error::other(format!("link dump for {lan}: {e}"))),
        };
        let lan = match index {
            Some(index) => {
                let messages: Vec<AddressMessage> = self
                    .handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .execute()
                    .try_collect()
                    .await
                    .map_err(|e| io::Error::other(format!("address dump for {lan}: {e}")))?;
                Some((index, messages.iter().filter_map(kernel_address).collect()))
            }
            None => None,
        };
        let request = RouteMessageBuilder::<Ipv6Addr>::new().build();
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(|e| io::Error::other(format!("IPv6 route dump: {e}")))?;
        Ok(Observed {
            lan,
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
        let handle = &self.handle;
        match op {
            Op::SetAddress {
                index,
                addr,
                prefix_len,
                preferred,
                valid,
            } => {
                let mut request = handle
                    .address()
                    .add(*index, IpAddr::V6(*addr), *prefix_len)
                    .replace();
                let mut lifetimes = CacheInfo::default();
                lifetimes.ifa_preferred = *preferred;
                lifetimes.ifa_valid = *valid;
                request
                    .message_mut()
                    .attributes
                    .push(AddressAttribute::CacheInfo(lifetimes));
                request.execute().await.map_err(io_error)
            }
            Op::RemoveAddress {
                index,
                addr,
                prefix_len,
            } => {
                let mut message = AddressMessage::default();
                message.header.index = *index;
                message.header.prefix_len = *prefix_len;
                message.header.family = AddressFamily::Inet6;
                message
                    .attributes
                    .push(AddressAttribute::Address(IpAddr::V6(*addr)));
                handle
                    .address()
                    .del(message)
                    .execute()
                    .await
                    .map_err(io_error)
            }
            Op::SetUnreachableRoute { dst, expires } => {
                let mut builder = unreachable_route(*dst);
                if *expires != FOREVER {
                    builder = builder.expires(*expires);
                }
                handle
                    .route()
                    .add(builder.build())
                    .replace()
                    .execute()
                    .await
                    .map_err(io_error)
            }
            Op::RemoveUnreachableRoute { dst } => handle
                .route()
                .del(unreachable_route(*dst).build())
                .execute()
                .await
                .map_err(io_error),
        }
    }
}

fn unreachable_route(dst: Net) -> RouteMessageBuilder<Ipv6Addr> {
    RouteMessageBuilder::<Ipv6Addr>::new()
        .destination_prefix(dst.addr, dst.len)
        .kind(RouteType::Unreachable)
        .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
}

fn kernel_address(msg: &AddressMessage) -> Option<KernelAddress> {
    if msg.header.family != AddressFamily::Inet6 {
        return None;
    }
    let Some(IpAddr::V6(addr)) = address_of(msg) else {
        return None;
    };
    let (valid, preferred) = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::CacheInfo(c) => Some((c.ifa_valid, c.ifa_preferred)),
            _ => None,
        })
        .unwrap_or((FOREVER, FOREVER));
    Some(KernelAddress {
        addr,
        prefix_len: msg.header.prefix_len,
        valid,
        preferred,
    })
}

fn kernel_route(msg: &RouteMessage) -> Option<KernelRoute> {
    let h = &msg.header;
    let ours = h.kind == RouteType::Unreachable
        && h.protocol == RouteProtocol::Other(ROUTE_PROTOCOL)
        && h.table == MAIN_TABLE;
    if !ours {
        return None;
    }
    let dst = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet6(addr)) => Some(*addr),
        _ => None,
    })?;
    // rta_expires is 0 for a route without RTF_EXPIRES.
    let expires = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::CacheInfo(c) if c.expires != 0 => Some(c.expires / USER_HZ),
            _ => None,
        })
        .unwrap_or(FOREVER);
    Some(KernelRoute {
        dst: Net::new(dst, h.destination_prefix_length),
        expires,
    })
}
