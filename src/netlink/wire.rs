//! rtnetlink wire format (RFC 3549; linux/netlink.h, linux/rtnetlink.h,
//! linux/if_link.h, linux/if_addr.h, linux/if_tunnel.h): encoding of the
//! few requests b4d sends and decoding of link, address and route messages.
//! Pure functions on bytes; decoding never panics and skips what it does
//! not know.
//!
//! Byte order: netlink headers, fixed message headers and integer
//! attributes are in host byte order (little-endian on mipsel/arm/x86,
//! big-endian on ath79 mips); addresses (IFA_ADDRESS, RTA_GATEWAY,
//! IFLA_IPTUN_LOCAL/REMOTE, ...) are the network-order octets of the address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// Message types (linux/netlink.h, linux/rtnetlink.h).
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_GETNEIGH: u16 = 30;

// nlmsg_flags.
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
/// NLM_F_ROOT | NLM_F_MATCH.
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

// Multicast groups (enum rtnetlink_groups), bound as 1 << (group - 1).
pub const RTNLGRP_LINK: u32 = 1;
/// Neighbour (ARP, NDP) table changes.
pub const RTNLGRP_NEIGH: u32 = 3;
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
pub const RTNLGRP_IPV6_ROUTE: u32 = 11;
/// RTM_NEWLINK for AF_INET6: among others when a Router Advertisement
/// changes the MTU it announces (Linux 5.16+, IFLA_INET6_RA_MTU), which
/// sets the device's IPv6 MTU without any RTNLGRP_LINK message.
pub const RTNLGRP_IPV6_IFINFO: u32 = 12;
/// RTM_NEWNETCONF: a device's IPv6 forwarding (and a few other knobs)
/// changed.
pub const RTNLGRP_IPV6_NETCONF: u32 = 25;

pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

// Interface flags (net/if.h).
pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

// Link attributes.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_AF_SPEC: u16 = 26;
// IFLA_AF_SPEC's AF_INET6 part (linux/if_link.h, linux/ipv6.h): the
// device's IPv6 settings as an array of s32 indexed by DEVCONF_*.
const AF_INET6_SPEC: u16 = 10;
const IFLA_INET6_CONF: u16 = 2;
const DEVCONF_MTU6: usize = 2;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
// ip6tnl's IFLA_INFO_DATA (linux/if_tunnel.h).
const IFLA_IPTUN_LINK: u16 = 1;
const IFLA_IPTUN_LOCAL: u16 = 2;
const IFLA_IPTUN_REMOTE: u16 = 3;
const IFLA_IPTUN_TTL: u16 = 4;
const IFLA_IPTUN_ENCAP_LIMIT: u16 = 6;
const IFLA_IPTUN_FLAGS: u16 = 8;
const IFLA_IPTUN_PROTO: u16 = 9;

// Address attributes and flags (linux/if_addr.h).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
/// Same bit as IFA_F_TEMPORARY (RFC 8981 temporary addresses).
pub const IFA_F_SECONDARY: u32 = 0x01;
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_OPTIMISTIC: u32 = 0x04;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_DEPRECATED: u32 = 0x20;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFA_F_PERMANENT: u32 = 0x80;
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;

// Route attributes and header values (linux/rtnetlink.h).
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RTPROT_STATIC: u8 = 4;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// In a delete: a route of any scope (what iproute2's `ip route del` sends).
const RT_SCOPE_NOWHERE: u8 = 255;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_UNREACHABLE: u8 = 7;

/// Attribute type bits that are flags, not part of the type.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);
/// NLA_F_NESTED.
const NLA_F_NESTED: u16 = 0x8000;

pub const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
/// struct ndmsg: family, 3 pad, ifindex, state (u16), flags, type.
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// NUD_* states of an entry whose link-layer address was confirmed or
/// seen: REACHABLE, STALE, DELAY, PROBE, PERMANENT (not INCOMPLETE, FAILED,
/// NOARP, NONE).
const NUD_KNOWN: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;
const RTMSG_LEN: usize = 12;

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header or than its length field says.
    Truncated,
    /// A length field smaller than the header it belongs to.
    BadLength,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "truncated netlink message",
            DecodeError::BadLength => "bad netlink length field",
        })
    }
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// struct nlmsghdr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

/// Splits a datagram into its messages: header and payload (without the
/// header). Stops at the first malformed message.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(Header, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let buf = self.rest;
        if buf.len() < NLMSG_HDRLEN {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let len = ne_u32(buf, 0) as usize;
        if len < NLMSG_HDRLEN {
            self.rest = &[];
            return Some(Err(DecodeError::BadLength));
        }
        if len > buf.len() {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let header = Header {
            kind: ne_u16(buf, 4),
            flags: ne_u16(buf, 6),
            seq: ne_u32(buf, 8),
            pid: ne_u32(buf, 12),
        };
        self.rest = &buf[align4(len).min(buf.len())..];
        Some(Ok((header, &buf[NLMSG_HDRLEN..len])))
    }
}

/// The errno of an NLMSG_ERROR payload (struct nlmsgerr: a negative errno,
/// 0 for an acknowledgement, then the request's header) or of an
/// NLMSG_DONE payload (a dump's final status). `None` when too short.
pub fn error_code(payload: &[u8]) -> Option<i32> {
    (payload.len() >= 4).then(|| ne_u32(payload, 0) as i32)
}

/// DEVCONF_MTU6 of an IFLA_AF_SPEC attribute, if it has an IPv6 part.
fn ipv6_mtu(af_spec: &[u8]) -> Option<u32> {
    let (_, inet6) = attributes(af_spec).find(|(family, _)| *family == AF_INET6_SPEC)?;
    let (_, conf) = attributes(inet6).find(|(kind, _)| *kind == IFLA_INET6_CONF)?;
    let at = DEVCONF_MTU6 * 4;
    conf.get(at..at + 4)
        .map(|_| ne_u32(conf, at))
        .filter(|&mtu| mtu > 0)
}

/// Route attributes (struct rtattr) of a payload, as (type, value) with
/// the flag bits removed from the type. Stops at the first malformed one:
/// what came before stays usable.
pub fn attributes(buf: &[u8]) -> Attributes<'_> {
    Attributes { rest: buf }
}

pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.rest;
        if buf.len() < 4 {
            return None;
        }
        let len = ne_u16(buf, 0) as usize;
        if len < 4 || len > buf.len() {
            self.rest = &[];
            return None;
        }
        self.rest = &buf[align4(len).min(buf.len())..];
        Some((ne_u16(buf, 2) & NLA_TYPE_MASK, &buf[4..len]))
    }
}

fn attr_u8(value: &[u8]) -> Option<u8> {
    value.first().copied()
}

fn attr_u32(value: &[u8]) -> Option<u32> {
    (value.len() >= 4).then(|| ne_u32(value, 0))
}

/// A NUL-terminated string attribute (lossy: names are ASCII).
pub(crate) fn attr_string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

fn attr_ipv6(value: &[u8]) -> Option<Ipv6Addr> {
    <[u8; 16]>::try_from(value).ok().map(Ipv6Addr::from)
}

/// An address attribute: 4 octets IPv4, 16 octets IPv6.
fn attr_ip(value: &[u8]) -> Option<IpAddr> {
    match value.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            value[0], value[1], value[2], value[3],
        ))),
        16 => attr_ipv6(value).map(IpAddr::V6),
        _ => None,
    }
}

/// ip6tnl parameters (IFLA_INFO_DATA of kind "ip6tnl").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ip6Tunnel {
    pub local: Option<Ipv6Addr>,
    pub remote: Option<Ipv6Addr>,
    /// The underlying device's index.
    pub link: Option<u32>,
    pub hop_limit: Option<u8>,
    pub encap_limit: Option<u8>,
    /// IP6_TNL_F_*; a dump also carries the kernel's capability bits.
    pub flags: Option<u32>,
    /// Inner protocol: IPPROTO_IPIP (4) for ipip6.
    pub proto: Option<u8>,
}

/// A link message (RTM_NEWLINK): struct ifinfomsg and the attributes b4d
/// reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    /// IFF_* flags.
    pub flags: u32,
    pub name: Option<String>,
    /// Link-layer address (IFLA_ADDRESS).
    pub mac: Option<Vec<u8>>,
    pub mtu: Option<u32>,
    /// The device's IPv6 MTU (net.ipv6.conf.DEV.mtu): the link MTU, or
    /// less when a Router Advertisement's MTU option or an admin says so.
    pub ipv6_mtu: Option<u32>,
    /// IFLA_INFO_KIND ("ip6tnl", "veth", ...).
    pub kind: Option<String>,
    /// IFLA_INFO_DATA when the kind is ip6tnl.
    pub ip6tnl: Option<Ip6Tunnel>,
    /// IFLA_IFALIAS (`ip link set DEV alias TEXT`).
    pub alias: Option<String>,
}

impl Link {
    pub fn decode(payload: &[u8]) -> Result<Link, DecodeError> {
        if payload.len() < IFINFOMSG_LEN {
            return Err(DecodeError::Truncated);
        }
        let mut link = Link {
            index: ne_u32(payload, 4),
            flags: ne_u32(payload, 8),
            ..Link::default()
        };
        for (kind, value) in attributes(&payload[IFINFOMSG_LEN..]) {
            match kind {
                IFLA_ADDRESS => link.mac = Some(value.to_vec()),
                IFLA_IFNAME => link.name = Some(attr_string(value)),
                IFLA_MTU => link.mtu = attr_u32(value),
                IFLA_LINKINFO => link.decode_link_info(value),
                IFLA_AF_SPEC => link.ipv6_mtu = ipv6_mtu(value),
                IFLA_IFALIAS => link.alias = Some(attr_string(value)),
                _ => {}
            }
        }
        Ok(link)
    }

    fn decode_link_info(&mut self, info: &[u8]) {
        let mut data = None;
        for (kind, value) in attributes(info) {
            match kind {
                IFLA_INFO_KIND => self.kind = Some(attr_string(value)),
                IFLA_INFO_DATA => data = Some(value),
                _ => {}
            }
        }
        // IFLA_INFO_DATA's layout depends on the kind.
        if let (Some("ip6tnl"), Some(data)) = (self.kind.as_deref(), data) {
            let mut tunnel = Ip6Tunnel::default();
            for (kind, value) in attributes(data) {
                match kind {
                    IFLA_IPTUN_LINK => tunnel.link = attr_u32(value),
                    IFLA_IPTUN_LOCAL => tunnel.local = attr_ipv6(value),
                    IFLA_IPTUN_REMOTE => tunnel.remote = attr_ipv6(value),
                    IFLA_IPTUN_TTL => tunnel.hop_limit = attr_u8(value),
                    IFLA_IPTUN_ENCAP_LIMIT => tunnel.encap_limit = attr_u8(value),
                    IFLA_IPTUN_FLAGS => tunnel.flags = attr_u32(value),
                    IFLA_IPTUN_PROTO => tunnel.proto = attr_u8(value),
                    _ => {}
                }
            }
            self.ip6tnl = Some(tunnel);
        }
    }

    /// Administratively up and carrier present.
    pub fn is_up_with_carrier(&self) -> bool {
        self.flags & IFF_UP != 0 && self.flags & (IFF_LOWER_UP | IFF_RUNNING) != 0
    }
}

/// IFA_CACHEINFO lifetimes in seconds (u32::MAX: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub preferred: u32,
    pub valid: u32,
}

/// An address message (RTM_NEWADDR): struct ifaddrmsg and its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub family: u8,
    pub prefix_len: u8,
    /// The header's 8 flag bits (IFA_F_SECONDARY/TEMPORARY live only here).
    pub header_flags: u8,
    /// IFA_FLAGS (32 bits) when present, else the header's flags.
    pub flags: u32,
    pub scope: u8,
    pub index: u32,
    pub address: Option<IpAddr>,
    pub local: Option<IpAddr>,
    pub lifetimes: Option<Lifetimes>,
}

impl Address {
    pub fn decode(payload: &[u8]) -> Result<Address, DecodeError> {
        if payload.len() < IFADDRMSG_LEN {
            return Err(DecodeError::Truncated);
        }
        let mut address = Address {
            family: payload[0],
            prefix_len: payload[1],
            header_flags: payload[2],
            flags: u32::from(payload[2]),
            scope: payload[3],
            index: ne_u32(payload, 4),
            ..Address::default()
        };
        for (kind, value) in attributes(&payload[IFADDRMSG_LEN..]) {
            match kind {
                IFA_ADDRESS => address.address = attr_ip(value),
                IFA_LOCAL => address.local = attr_ip(value),
                IFA_FLAGS => address.flags = attr_u32(value).unwrap_or(address.flags),
                IFA_CACHEINFO if value.len() >= 8 => {
                    address.lifetimes = Some(Lifetimes {
                        preferred: ne_u32(value, 0),
                        valid: ne_u32(value, 4),
                    })
                }
                _ => {}
            }
        }
        Ok(address)
    }

    /// The address the message is about: IFA_LOCAL is the address itself
    /// on point-to-point links, where IFA_ADDRESS is the peer.
    pub fn addr(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }
}

/// A route message (RTM_NEWROUTE): struct rtmsg and its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub family: u8,
    pub dst_len: u8,
    /// RTA_TABLE when present (tables above 255), else the header's.
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    /// RTN_* (unicast, unreachable, ...).
    pub kind: u8,
    pub dst: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// The metric (RTA_PRIORITY); absent means 0.
    pub priority: Option<u32>,
}

impl Route {
    pub fn decode(payload: &[u8]) -> Result<Route, DecodeError> {
        if payload.len() < RTMSG_LEN {
            return Err(DecodeError::Truncated);
        }
        let mut route = Route {
            family: payload[0],
            dst_len: payload[1],
            table: u32::from(payload[4]),
            protocol: payload[5],
            scope: payload[6],
            kind: payload[7],
            ..Route::default()
        };
        for (kind, value) in attributes(&payload[RTMSG_LEN..]) {
            match kind {
                RTA_DST => route.dst = attr_ip(value),
                RTA_GATEWAY => route.gateway = attr_ip(value),
                RTA_OIF => route.oif = attr_u32(value),
                RTA_PRIORITY => route.priority = attr_u32(value),
                RTA_TABLE => route.table = attr_u32(value).unwrap_or(route.table),
                _ => {}
            }
        }
        Ok(route)
    }
}

/// Builds one request: header, fixed part, attributes. `finish` fills in
/// the length and sequence number.
pub struct Request {
    buf: Vec<u8>,
    /// Start offsets of the nested attributes still open.
    open: Vec<usize>,
}

impl Request {
    pub fn new(kind: u16, flags: u16) -> Request {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by finish
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid 0: the kernel fills it in
        Request {
            buf,
            open: Vec::new(),
        }
    }

    /// struct ifinfomsg.
    pub fn ifinfomsg(mut self, index: u32, flags: u32, change: u32) -> Request {
        self.buf.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]); // family, pad, type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    /// struct ifaddrmsg.
    pub fn ifaddrmsg(mut self, family: u8, prefix_len: u8, flags: u8, index: u32) -> Request {
        self.buf
            .extend_from_slice(&[family, prefix_len, flags, RT_SCOPE_UNIVERSE]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    /// struct rtmsg (source length, TOS and flags 0).
    pub fn rtmsg(mut self, route: &RouteHeader) -> Request {
        self.buf.extend_from_slice(&[
            route.family,
            route.dst_len,
            0,
            0,
            route.table,
            route.protocol,
            route.scope,
            route.kind,
        ]);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self
    }

    pub fn attr(mut self, kind: u16, value: &[u8]) -> Request {
        let len = 4 + value.len();
        // A netlink attribute's length is 16 bits; b4d's are all short.
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn attr_u8(self, kind: u16, value: u8) -> Request {
        self.attr(kind, &[value])
    }

    pub fn attr_u32(self, kind: u16, value: u32) -> Request {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(self, kind: u16, value: &str) -> Request {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes)
    }

    pub fn attr_ip(self, kind: u16, addr: IpAddr) -> Request {
        match addr {
            IpAddr::V4(a) => self.attr(kind, &a.octets()),
            IpAddr::V6(a) => self.attr(kind, &a.octets()),
        }
    }

    /// Opens a nested attribute; close it with `end_nested`.
    pub fn nested(mut self, kind: u16) -> Request {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end_nested(mut self) -> Request {
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The datagram to send.
    pub fn finish(mut self, seq: u32) -> Vec<u8> {
        while !self.open.is_empty() {
            self = self.end_nested();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// The fixed part of a route request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteHeader {
    pub family: u8,
    pub dst_len: u8,
    pub table: u8,
    pub protocol: u8,
    pub scope: u8,
    pub kind: u8,
}

// ---- The requests b4d sends ----

/// RTM_GETLINK for one device by name (not a dump: ENODEV if missing).
pub fn get_link(name: &str) -> Request {
    Request::new(RTM_GETLINK, NLM_F_ACK)
        .ifinfomsg(0, 0, 0)
        .attr_str(IFLA_IFNAME, name)
}

/// RTM_GETLINK dump of every device.
pub fn dump_links() -> Request {
    Request::new(RTM_GETLINK, NLM_F_DUMP).ifinfomsg(0, 0, 0)
}

/// RTM_GETADDR dump of all addresses of `family` (AF_UNSPEC: both).
pub fn dump_addresses(family: u8) -> Request {
    Request::new(RTM_GETADDR, NLM_F_DUMP).ifaddrmsg(family, 0, 0, 0)
}

/// RTM_GETNEIGH dump of the neighbour entries of `family`.
pub fn dump_neighbors(family: u8) -> Request {
    let mut request = Request::new(RTM_GETNEIGH, NLM_F_DUMP);
    request.buf.extend_from_slice(&[family, 0, 0, 0]);
    request.buf.extend_from_slice(&[0; NDMSG_LEN - 4]);
    request
}

/// One neighbour entry with a known link-layer address (see [`NUD_KNOWN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    pub index: u32,
    pub addr: IpAddr,
    pub lladdr: [u8; 6],
}

impl Neighbor {
    /// `None` for entries without a known Ethernet address.
    pub fn decode(payload: &[u8]) -> Option<Neighbor> {
        if payload.len() < NDMSG_LEN {
            return None;
        }
        let state = u16::from_ne_bytes([payload[8], payload[9]]);
        if state & NUD_KNOWN == 0 {
            return None;
        }
        let (mut addr, mut lladdr) = (None, None);
        for (kind, value) in attributes(&payload[NDMSG_LEN..]) {
            match kind {
                NDA_DST => addr = attr_ip(value),
                NDA_LLADDR => lladdr = value.try_into().ok(),
                _ => {}
            }
        }
        Some(Neighbor {
            index: ne_u32(payload, 4),
            addr: addr?,
            lladdr: lladdr?,
        })
    }
}

/// RTM_GETROUTE dump of all routes of `family`.
pub fn dump_routes(family: u8) -> Request {
    Request::new(RTM_GETROUTE, NLM_F_DUMP).rtmsg(&RouteHeader {
        family,
        dst_len: 0,
        table: 0,
        protocol: 0,
        scope: 0,
        kind: 0,
    })
}

/// What an ip6tnl device should be: `ip link add NAME type ip6tnl mode
/// ipip6 local L remote R dev LINK ttl T [encaplimit E]`, flags as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip6TunnelSpec<'a> {
    pub name: &'a str,
    pub link: u32,
    pub local: Ipv6Addr,
    pub remote: Ipv6Addr,
    pub hop_limit: u8,
    pub encap_limit: Option<u8>,
    pub flags: u32,
    pub proto: u8,
}

fn ip6tnl_link_info(request: Request, spec: &Ip6TunnelSpec<'_>) -> Request {
    let mut request = request
        .nested(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "ip6tnl")
        .nested(IFLA_INFO_DATA)
        .attr_u8(IFLA_IPTUN_PROTO, spec.proto)
        .attr_ip(IFLA_IPTUN_LOCAL, IpAddr::V6(spec.local))
        .attr_ip(IFLA_IPTUN_REMOTE, IpAddr::V6(spec.remote))
        .attr_u32(IFLA_IPTUN_LINK, spec.link)
        .attr_u8(IFLA_IPTUN_TTL, spec.hop_limit)
        .attr_u32(IFLA_IPTUN_FLAGS, spec.flags);
    if let Some(limit) = spec.encap_limit {
        request = request.attr_u8(IFLA_IPTUN_ENCAP_LIMIT, limit);
    }
    request.end_nested().end_nested()
}

/// RTM_NEWLINK creating an ip6tnl device, up, with `mtu`.
pub fn create_ip6tnl(spec: &Ip6TunnelSpec<'_>, mtu: u32) -> Request {
    let request = Request::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        .ifinfomsg(0, IFF_UP, IFF_UP)
        .attr_str(IFLA_IFNAME, spec.name)
        .attr_u32(IFLA_MTU, mtu);
    ip6tnl_link_info(request, spec)
}

/// RTM_NEWLINK changing an existing ip6tnl device's parameters. Without
/// IFLA_IFNAME: with it, do_setlink renames the device and refuses with
/// EBUSY while it is up, even to the same name, after changelink already
/// applied the new endpoints.
pub fn change_ip6tnl(index: u32, spec: &Ip6TunnelSpec<'_>) -> Request {
    ip6tnl_link_info(
        Request::new(RTM_NEWLINK, NLM_F_ACK).ifinfomsg(index, 0, 0),
        spec,
    )
}

/// RTM_DELLINK.
pub fn delete_link(index: u32) -> Request {
    Request::new(RTM_DELLINK, NLM_F_ACK).ifinfomsg(index, 0, 0)
}

/// RTM_SETLINK setting the MTU.
pub fn set_link_mtu(index: u32, mtu: u32) -> Request {
    Request::new(RTM_SETLINK, NLM_F_ACK)
        .ifinfomsg(index, 0, 0)
        .attr_u32(IFLA_MTU, mtu)
}

/// RTM_SETLINK setting the alias (not part of RTM_NEWLINK's create:
/// rtnl_create_link ignores IFLA_IFALIAS).
pub fn set_link_alias(index: u32, alias: &str) -> Request {
    Request::new(RTM_SETLINK, NLM_F_ACK)
        .ifinfomsg(index, 0, 0)
        .attr_str(IFLA_IFALIAS, alias)
}

/// RTM_SETLINK setting IFF_UP.
pub fn set_link_up(index: u32) -> Request {
    Request::new(RTM_SETLINK, NLM_F_ACK).ifinfomsg(index, IFF_UP, IFF_UP)
}

/// An address to add (or replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAddress {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IFA_F_* (IFA_F_NOPREFIXROUTE, IFA_F_OPTIMISTIC, IFA_F_NODAD, ...).
    pub flags: u32,
    /// IFA_CACHEINFO; `None`: forever.
    pub lifetimes: Option<Lifetimes>,
}

/// The IPv4 broadcast address of addr/prefix_len, as `ip addr add ... brd +`
/// would set it; none for /31 and /32 (RFC 3021).
fn ipv4_broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    (prefix_len < 31).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix_len)))
}

/// RTM_NEWADDR with NLM_F_REPLACE: adds the address or updates its
/// lifetimes and flags.
pub fn add_address(address: &NewAddress) -> Request {
    let family = if address.addr.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    let mut request = Request::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
        // The header carries the low 8 flag bits, IFA_FLAGS all 32.
        .ifaddrmsg(
            family,
            address.prefix_len,
            address.flags as u8,
            address.index,
        )
        .attr_ip(IFA_ADDRESS, address.addr);
    if let IpAddr::V4(v4) = address.addr {
        request = request.attr_ip(IFA_LOCAL, address.addr);
        if let Some(brd) = ipv4_broadcast(v4, address.prefix_len) {
            request = request.attr_ip(IFA_BROADCAST, IpAddr::V4(brd));
        }
    }
    if address.flags != 0 {
        request = request.attr_u32(IFA_FLAGS, address.flags);
    }
    if let Some(lifetimes) = address.lifetimes {
        let mut cache_info = [0u8; 16]; // cstamp and tstamp: kernel's
        cache_info[0..4].copy_from_slice(&lifetimes.preferred.to_ne_bytes());
        cache_info[4..8].copy_from_slice(&lifetimes.valid.to_ne_bytes());
        request = request.attr(IFA_CACHEINFO, &cache_info);
    }
    request
}

/// RTM_DELADDR.
pub fn delete_address(index: u32, addr: IpAddr, prefix_len: u8) -> Request {
    let family = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut request = Request::new(RTM_DELADDR, NLM_F_ACK)
        .ifaddrmsg(family, prefix_len, 0, index)
        .attr_ip(IFA_ADDRESS, addr);
    if addr.is_ipv4() {
        request = request.attr_ip(IFA_LOCAL, addr);
    }
    request
}

/// A route to add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination prefix; its family is the route's.
    pub dst: IpAddr,
    pub dst_len: u8,
    pub kind: RouteKind,
    /// Output device (unicast routes).
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    /// RTPROT_*: who made the route ([`RTPROT_STATIC`] for an administrator's
    /// routes; b4d's LAN prefix routes carry a number of their own so they
    /// are found again after a restart). In a delete, 0 matches any.
    pub protocol: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    /// RTN_UNREACHABLE: packets are refused with ICMP unreachable
    /// (RFC 7084 WPD-5 for delegated prefixes not assigned to a link).
    Unreachable,
}

fn route_request(kind: u16, flags: u16, route: &RouteSpec) -> Request {
    let family = if route.dst.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    let mut request = Request::new(kind, flags).rtmsg(&RouteHeader {
        family,
        dst_len: route.dst_len,
        table: RT_TABLE_MAIN,
        protocol: route.protocol,
        // The kernel matches a delete on the scope too (fib_table_delete):
        // a route someone added with another scope must go as well.
        scope: if kind == RTM_DELROUTE {
            RT_SCOPE_NOWHERE
        } else {
            RT_SCOPE_UNIVERSE
        },
        kind: match route.kind {
            RouteKind::Unicast => RTN_UNICAST,
            RouteKind::Unreachable => RTN_UNREACHABLE,
        },
    });
    if route.dst_len > 0 {
        request = request.attr_ip(RTA_DST, route.dst);
    }
    if let Some(oif) = route.oif {
        request = request.attr_u32(RTA_OIF, oif);
    }
    if let Some(gateway) = route.gateway {
        request = request.attr_ip(RTA_GATEWAY, gateway);
    }
    request.attr_u32(RTA_PRIORITY, route.metric)
}

/// RTM_NEWROUTE (fails with EEXIST if the route is there).
pub fn add_route(route: &RouteSpec) -> Request {
    route_request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, route)
}

/// RTM_DELROUTE.
pub fn delete_route(route: &RouteSpec) -> Request {
    route_request(RTM_DELROUTE, NLM_F_ACK, route)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
