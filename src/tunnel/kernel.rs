//! The kernel side of the tunnel over rtnetlink: observe the WAN and tunnel
//! devices into a [`plan::Observed`], apply one [`plan::Op`], and subscribe
//! to the notifications (links, addresses, IPv4 routes) that wake the
//! reconcile loop. Every error names the operation that failed.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::stream::StreamExt;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpTunnel, Ip6TunnelFlags, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::packet_route::{AddressFamily, IpProtocol};
use rtnetlink::{
    new_connection, new_multicast_connection, Handle, LinkIp6Tnl, LinkUnspec, MulticastGroup,
    RouteMessageBuilder,
};

use super::nft;
use super::plan::{KernelAddress, MssClamp, Observed, Op, TunnelDevice, TunnelSpec, WanDevice};
use crate::netlink::{address_flags, address_of};

/// The main routing table (RT_TABLE_MAIN).
const MAIN_TABLE: u8 = 254;

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

/// rtnetlink errors as io errors, so that EEXIST, EBUSY and EPERM read as
/// the errno they are ("File exists (os error 17)").
fn io_error(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

fn is_enodev(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(msg) if msg.raw_code() == -libc::ENODEV)
}

pub type Notifications = futures_channel::mpsc::UnboundedReceiver<(
    rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens a request connection and a notification subscription. Must be
    /// called inside a tokio runtime.
    pub fn open() -> io::Result<(Kernel, Notifications)> {
        let (conn, handle, _) = new_connection()?;
        tokio::spawn(conn);
        let (events, _, notifications) = new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv6Ifaddr,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv4Route,
        ])?;
        tokio::spawn(events);
        Ok((Kernel { handle }, notifications))
    }

    async fn link(&self, name: &str) -> io::Result<Option<LinkMessage>> {
        match self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await
        {
            Ok(link) => Ok(link),
            Err(e) if is_enodev(&e) => Ok(None),
            Err(e) => Err(io::Error::other(format!("link dump for {name}: {e}"))),
        }
    }

    async fn addresses(&self, index: u32) -> io::Result<Vec<AddressMessage>> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| io::Error::other(format!("address dump for ifindex {index}: {e}")))
    }

    async fn ipv4_default_routes(&self, oif: u32) -> io::Result<Vec<u32>> {
        let request = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(|e| io::Error::other(format!("IPv4 route dump: {e}")))?;
        Ok(routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0 && r.header.table == MAIN_TABLE)
            .filter(|r| {
                r.attributes
                    .iter()
                    .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == oif))
            })
            .map(|r| {
                r.attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Priority(p) => Some(*p),
                        _ => None,
                    })
                    .unwrap_or(0)
            })
            .collect())
    }

    /// What the kernel has now. `mss_clamp` is the driver's memory of the
    /// nftables table.
    pub async fn observe(
        &self,
        wan_name: &str,
        tunnel_name: &str,
        mss_clamp: Option<MssClamp>,
    ) -> io::Result<Observed> {
        let wan = match self.link(wan_name).await? {
            Some(link) => {
                let addresses = self.addresses(link.header.index).await?;
                Some(wan_device(&link, &addresses))
            }
            None => None,
        };
        let tunnel = match self.link(tunnel_name).await? {
            Some(link) => {
                let addresses = self.addresses(link.header.index).await?;
                let routes = self.ipv4_default_routes(link.header.index).await?;
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

    /// Applies one operation.
    pub async fn apply(&self, op: &Op) -> Result<(), OpError> {
        self.execute(op).await.map_err(|error| OpError {
            op: op.to_string(),
            error,
        })
    }

    async fn execute(&self, op: &Op) -> io::Result<()> {
        let handle = &self.handle;
        match op {
            Op::SetWanAddress { wan, address } => {
                let mut request = handle
                    .address()
                    .add(*wan, IpAddr::V6(address.addr), 128)
                    .replace();
                let message = request.message_mut();
                let mut lifetimes = CacheInfo::default();
                lifetimes.ifa_preferred = address.preferred;
                lifetimes.ifa_valid = address.valid;
                message
                    .attributes
                    .push(AddressAttribute::CacheInfo(lifetimes));
                // Optimistic DAD (RFC 4429): DAD still runs, but the
                // address can source tunnel traffic at once instead of a
                // second or two later; a kernel without
                // CONFIG_IPV6_OPTIMISTIC_DAD treats it as plain DAD.
                message.attributes.push(AddressAttribute::Flags(
                    AddressFlags::Noprefixroute | AddressFlags::Optimistic,
                ));
                request.execute().await.map_err(io_error)
            }
            Op::RemoveWanAddress {
                wan,
                addr,
                prefix_len,
            } => delete_address(handle, *wan, IpAddr::V6(*addr), *prefix_len).await,
            Op::CreateTunnel(spec) => handle
                .link()
                .add(tunnel_message(spec).mtu(spec.mtu).up().build())
                .execute()
                .await
                .map_err(io_error),
            Op::UpdateTunnel { index, spec } => {
                let mut message = tunnel_message(spec).index(*index).build();
                // With IFLA_IFNAME present, do_setlink renames the device
                // and refuses with EBUSY while it is up, even to the same
                // name, after changelink already applied the new endpoints.
                message
                    .attributes
                    .retain(|a| !matches!(a, LinkAttribute::IfName(_)));
                handle
                    .link()
                    .change(message)
                    .execute()
                    .await
                    .map_err(io_error)
            }
            Op::DeleteTunnel { index } => {
                handle.link().del(*index).execute().await.map_err(io_error)
            }
            Op::SetTunnelMtu { index, mtu } => handle
                .link()
                .set(LinkUnspec::new_with_index(*index).mtu(*mtu).build())
                .execute()
                .await
                .map_err(io_error),
            Op::SetTunnelUp { index } => handle
                .link()
                .set(LinkUnspec::new_with_index(*index).up().build())
                .execute()
                .await
                .map_err(io_error),
            Op::AddTunnelAddress {
                index,
                addr,
                prefix_len,
                ..
            } => handle
                .address()
                .add(*index, IpAddr::V4(*addr), *prefix_len)
                .replace()
                .execute()
                .await
                .map_err(io_error),
            Op::RemoveTunnelAddress {
                index,
                addr,
                prefix_len,
            } => delete_address(handle, *index, IpAddr::V4(*addr), *prefix_len).await,
            Op::AddDefaultRoute {
                index,
                gateway,
                metric,
            } => handle
                .route()
                .add(default_route(*index, Some(*gateway), *metric))
                .execute()
                .await
                .map_err(io_error),
            Op::RemoveDefaultRoute { index, metric } => handle
                .route()
                .del(default_route(*index, None, *metric))
                .execute()
                .await
                .map_err(io_error),
            Op::LoadMssClamp(clamp) => {
                let clamp = clamp.clone();
                blocking(move || nft::load(&clamp.tunnel, clamp.mss)).await
            }
            Op::RemoveMssClamp => blocking(nft::remove).await,
        }
    }
}

/// `nft` is a short-lived child process; keep the runtime free meanwhile.
async fn blocking(f: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

async fn delete_address(
    handle: &Handle,
    index: u32,
    addr: IpAddr,
    prefix_len: u8,
) -> io::Result<()> {
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = prefix_len;
    message.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.attributes.push(AddressAttribute::Address(addr));
    if addr.is_ipv4() {
        message.attributes.push(AddressAttribute::Local(addr));
    }
    handle
        .address()
        .del(message)
        .execute()
        .await
        .map_err(io_error)
}

fn default_route(index: u32, gateway: Option<Ipv4Addr>, metric: u32) -> RouteMessage {
    let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
        .output_interface(index)
        .priority(metric)
        .protocol(RouteProtocol::Static);
    if let Some(gateway) = gateway {
        builder = builder.gateway(gateway);
    }
    builder.build()
}

/// The ip6tnl attributes of `spec` (`ip link add NAME type ip6tnl mode
/// ipip6 local L remote R dev WAN ttl 64 tclass inherit encaplimit none`).
fn tunnel_message(spec: &TunnelSpec) -> rtnetlink::LinkMessageBuilder<LinkIp6Tnl> {
    let mut builder = LinkIp6Tnl::new(&spec.name)
        .mode(IpProtocol::Ipip)
        .local(spec.local)
        .remote(spec.remote)
        .dev(spec.link)
        .ttl(spec.hop_limit)
        .set_flag(
            Ip6TunnelFlags::IgnEncapLimit,
            spec.flags & super::plan::IP6_TNL_F_IGN_ENCAP_LIMIT != 0,
        )
        .set_flag(
            Ip6TunnelFlags::UseOrigTclass,
            spec.flags & super::plan::IP6_TNL_F_USE_ORIG_TCLASS != 0,
        );
    if let Some(limit) = spec.encap_limit {
        builder = builder.encap_limit(limit);
    }
    builder
}

fn kernel_address(msg: &AddressMessage, addr: Ipv6Addr) -> KernelAddress {
    let flags = address_flags(msg);
    let (valid, preferred) = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::CacheInfo(c) => Some((c.ifa_valid, c.ifa_preferred)),
            _ => None,
        })
        .unwrap_or((u32::MAX, u32::MAX));
    KernelAddress {
        addr,
        prefix_len: msg.header.prefix_len,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
        deprecated: flags.contains(AddressFlags::Deprecated),
        // IFA_F_TEMPORARY shares its bit with IFA_F_SECONDARY.
        temporary: msg.header.flags.contains(AddressHeaderFlags::Secondary),
        no_prefix_route: flags.contains(AddressFlags::Noprefixroute),
        valid,
        preferred,
    }
}

fn is_global_ipv4(addr: Ipv4Addr) -> bool {
    !addr.is_loopback() && !addr.is_link_local() && !addr.is_unspecified()
}

fn link_mtu(link: &LinkMessage) -> u32 {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(mtu) => Some(*mtu),
            _ => None,
        })
        .unwrap_or(0)
}

/// The WAN as the plan sees it.
pub fn wan_device(link: &LinkMessage, addresses: &[AddressMessage]) -> WanDevice {
    let flags = link.header.flags;
    let mut wan = WanDevice {
        index: link.header.index,
        up: flags.contains(LinkFlags::Up)
            && (flags.contains(LinkFlags::LowerUp) || flags.contains(LinkFlags::Running)),
        mtu: link_mtu(link),
        ..WanDevice::default()
    };
    for msg in addresses
        .iter()
        .filter(|m| m.header.index == link.header.index)
    {
        match address_of(msg) {
            Some(IpAddr::V6(addr)) => wan.addresses.push(kernel_address(msg, addr)),
            Some(IpAddr::V4(addr)) if is_global_ipv4(addr) => wan.ipv4.push(addr),
            _ => {}
        }
    }
    wan
}

/// The device named like the tunnel, as the plan sees it.
pub fn tunnel_device(
    link: &LinkMessage,
    addresses: &[AddressMessage],
    default_routes: Vec<u32>,
) -> TunnelDevice {
    let mut tunnel = TunnelDevice {
        index: link.header.index,
        mtu: link_mtu(link),
        up: link.header.flags.contains(LinkFlags::Up),
        default_routes,
        ..TunnelDevice::default()
    };
    for attr in &link.attributes {
        let LinkAttribute::LinkInfo(infos) = attr else {
            continue;
        };
        for info in infos {
            match info {
                LinkInfo::Kind(kind) => tunnel.kind = kind.to_string(),
                LinkInfo::Data(InfoData::IpTunnel(params)) => {
                    for p in params {
                        match p {
                            InfoIpTunnel::Local(IpAddr::V6(a)) => tunnel.local = Some(*a),
                            InfoIpTunnel::Remote(IpAddr::V6(a)) => tunnel.remote = Some(*a),
                            InfoIpTunnel::Link(i) => tunnel.link = Some(*i),
                            InfoIpTunnel::Ttl(t) => tunnel.hop_limit = Some(*t),
                            InfoIpTunnel::EncapLimit(l) => tunnel.encap_limit = Some(*l),
                            // The kernel adds its capability bits (IP6_TNL_F_CAP_XMIT,
                            // CAP_RCV, ... from 0x10000) to the dump; only the
                            // configurable ones below them count.
                            InfoIpTunnel::Ipv6Flags(f) => tunnel.flags = f.bits() & 0xffff,
                            InfoIpTunnel::Protocol(proto) => tunnel.proto = Some(u8::from(*proto)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for msg in addresses
        .iter()
        .filter(|m| m.header.index == link.header.index)
    {
        if let Some(IpAddr::V4(addr)) = address_of(msg) {
            tunnel.ipv4.push((addr, msg.header.prefix_len));
        }
    }
    tunnel
}

/// Waits for the next notification of any kind; the caller observes anew.
pub async fn changed(notifications: &mut Notifications) -> io::Result<()> {
    match notifications.next().await {
        Some(_) => Ok(()),
        None => Err(io::Error::other("netlink notification socket closed")),
    }
}
