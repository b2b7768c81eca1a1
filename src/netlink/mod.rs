//! Watching a network device over rtnetlink: whether it is up, its MAC and
//! MTU, and whether its IPv6 link-local address has finished duplicate
//! address detection. Driven by kernel notifications, never by polling.

use std::io;
use std::net::{IpAddr, Ipv6Addr};

use futures_util::stream::StreamExt;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{new_connection, new_multicast_connection, Handle, MulticastGroup};

/// What the DHCPv6 client needs to know about its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    /// Administratively up and carrier present.
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// A link-local address that is neither tentative nor failed DAD.
    pub link_local: Option<Ipv6Addr>,
    /// Global IPv6 addresses whose DAD has finished.
    pub global: Vec<Ipv6Addr>,
}

impl LinkState {
    /// RFC 8415 §18.2.1 needs a usable link-local source address.
    pub fn ready_for_dhcpv6(&self) -> bool {
        self.up && self.link_local.is_some()
    }
}

/// An address message's flags: IFA_FLAGS when present (32 bits), else the
/// header's 8.
pub fn address_flags(msg: &AddressMessage) -> AddressFlags {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_truncate(u32::from(msg.header.flags.bits())))
}

/// The address an address message is about. IFA_LOCAL is the address
/// itself on point-to-point links, where IFA_ADDRESS is the peer.
pub fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(addr) => Some(*addr),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(addr) => Some(*addr),
            _ => None,
        })
    })
}

/// Builds a `LinkState` from a link message and the device's addresses.
pub fn link_state(link: &LinkMessage, addresses: &[AddressMessage]) -> LinkState {
    let flags = link.header.flags;
    let up = flags.contains(LinkFlags::Up)
        && (flags.contains(LinkFlags::LowerUp) || flags.contains(LinkFlags::Running));
    let mut state = LinkState {
        index: link.header.index,
        up,
        mac: None,
        mtu: None,
        link_local: None,
        global: Vec::new(),
    };
    for attr in &link.attributes {
        match attr {
            LinkAttribute::Address(bytes) => state.mac = bytes.as_slice().try_into().ok(),
            LinkAttribute::Mtu(mtu) => state.mtu = Some(*mtu),
            _ => {}
        }
    }
    for msg in addresses {
        if msg.header.index != link.header.index || msg.header.family != AddressFamily::Inet6 {
            continue;
        }
        let flags = address_flags(msg);
        if flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed) {
            continue;
        }
        let Some(IpAddr::V6(addr)) = address_of(msg) else {
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
    handle: Handle,
    notifications: futures_channel::mpsc::UnboundedReceiver<(
        rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
}

impl LinkWatch {
    /// Subscribes to link and IPv6 address notifications. Must be called
    /// inside a tokio runtime (the netlink connections are spawned on it).
    pub fn new(name: &str) -> io::Result<Self> {
        let (conn, handle, _) = new_connection()?;
        tokio::spawn(conn);
        let (events, _, notifications) =
            new_multicast_connection(&[MulticastGroup::Link, MulticastGroup::Ipv6Ifaddr])?;
        tokio::spawn(events);
        Ok(LinkWatch {
            name: name.to_string(),
            handle,
            notifications,
        })
    }

    /// The device's current state, `None` if it does not exist.
    pub async fn snapshot(&self) -> io::Result<Option<LinkState>> {
        let link = self
            .handle
            .link()
            .get()
            .match_name(self.name.clone())
            .execute()
            .try_next()
            .await;
        let link = match link {
            Ok(Some(link)) => link,
            Ok(None) => return Ok(None),
            // ENODEV: the device does not exist (yet).
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                return Ok(None)
            }
            Err(e) => {
                return Err(io::Error::other(format!(
                    "link dump for {}: {e}",
                    self.name
                )))
            }
        };
        let addresses: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.header.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| io::Error::other(format!("address dump for {}: {e}", self.name)))?;
        Ok(Some(link_state(&link, &addresses)))
    }

    /// Waits for the next link or address notification (for any device:
    /// the caller takes a fresh snapshot, which is cheap).
    pub async fn changed(&mut self) -> io::Result<()> {
        match self.notifications.next().await {
            Some(_) => Ok(()),
            None => Err(io::Error::other("netlink notification socket closed")),
        }
    }
}
