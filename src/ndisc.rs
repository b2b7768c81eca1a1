//! One Router Solicitation (RFC 4861 §6.3.7) on the WAN when its link comes
//! up, so the ISP's Router Advertisement, and with it the IPv6 default
//! route the tunnel and the DNS upstreams need, arrives at once.
//!
//! Why b4d sends it: Linux sends its own first solicitation only when the
//! link-local address has finished DAD (about a second after link-up), and
//! a router (forwarding on) whose accept_ra was 1 when the link came up
//! sends none at all. odhcp6c, which b4d replaces on OpenWrt, solicits at
//! start and at every carrier-up for the same reason. The kernel still
//! processes the Advertisement (b4d keeps accept_ra at 2, see
//! [`crate::sysctl::Ipv6Conf::keep_accepting_ras`]) and keeps soliciting on
//! its own schedule (RFC 7559 backoff) if this one goes unanswered.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};

use crate::check::icmp::checksum;

/// RFC 4291 §2.7.1: all routers on the link.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// RFC 4861 §4.1: type 133, code 0, checksum (the kernel fills it in for
/// ICMPv6 raw sockets, RFC 3542 §3.1), 4 reserved bytes. No source
/// link-layer address option: the source may be an optimistic link-local
/// address, and RFC 4429 §3.2 forbids the option then; the router resolves
/// the address with Neighbor Discovery instead.
pub const ROUTER_SOLICITATION: [u8; 8] = [133, 0, 0, 0, 0, 0, 0, 0];

/// RFC 4861 §6.1.1: routers drop solicitations whose hop limit is not 255.
const ND_HOP_LIMIT: u32 = 255;

/// RFC 8200 §3 / RFC 4443 §2.3: the ICMPv6 next-header value.
const NEXT_HEADER_ICMPV6: u8 = 58;

/// Which source address the solicitation went out with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolicitedFrom {
    /// The device's usable link-local address (an optimistic one too, RFC
    /// 4429 §3.3): the router answers to it.
    LinkLocal,
    /// The unspecified address, because the link-local one is still in DAD
    /// (on a router Linux never makes it optimistic). RFC 4861 §6.3.7
    /// allows this; the router answers to all nodes (§6.2.6). Not the
    /// optimistic global address b4d may already have put back: Linux does
    /// not deliver a unicast answer to that one while a router's
    /// link-local address is in DAD (seen with Debian's 6.1: the RA was
    /// answered with "no route").
    Unspecified,
}

/// Sends one Router Solicitation out of `device` (index `ifindex`) to
/// all-routers, from `link_local` when the device has a usable one.
pub fn solicit_routers(
    device: &str,
    ifindex: u32,
    link_local: Option<Ipv6Addr>,
) -> io::Result<SolicitedFrom> {
    let Some(source) = link_local else {
        send_from_unspecified(ifindex)?;
        return Ok(SolicitedFrom::Unspecified);
    };
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(device.as_bytes()))?;
    socket.bind(&SocketAddr::V6(SocketAddrV6::new(source, 0, 0, ifindex)).into())?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.set_multicast_hops_v6(ND_HOP_LIMIT)?;
    socket.set_multicast_loop_v6(false)?;
    let to = SocketAddr::V6(SocketAddrV6::new(ALL_ROUTERS, 0, 0, ifindex));
    socket.send_to(&ROUTER_SOLICITATION, &to.into())?;
    Ok(SolicitedFrom::LinkLocal)
}

/// RFC 2464 §7: the Ethernet address IPv6 multicast to ff02::2 goes to.
const ALL_ROUTERS_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 2];

/// The kernel's IPv6 stack sends nothing from `::` on its own (source
/// selection wants an address, even for a packet that carries its own
/// header), so this one goes out as a whole IPv6 packet on a packet socket
/// (SOCK_DGRAM: the kernel adds the link-layer header, none on PPP).
fn send_from_unspecified(ifindex: u32) -> io::Result<()> {
    let protocol = (libc::ETH_P_IPV6 as u16).to_be();
    // Protocol 0: a send-only socket, so the kernel hands it no copy of
    // the frames it receives meanwhile; the address names the protocol.
    let socket = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol;
    address.sll_ifindex = ifindex as i32;
    address.sll_halen = ALL_ROUTERS_MAC.len() as u8;
    address.sll_addr[..ALL_ROUTERS_MAC.len()].copy_from_slice(&ALL_ROUTERS_MAC);
    let packet = unspecified_source_solicitation();
    // SAFETY: `address` is a valid sockaddr_ll of the length given, and
    // `packet` outlives the call.
    let sent = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&address as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The whole packet for [`SolicitedFrom::Unspecified`]: IPv6 header from
/// `::` to all-routers, hop limit 255, and the solicitation with its
/// checksum over the RFC 8200 §8.1 pseudo-header.
pub fn unspecified_source_solicitation() -> [u8; 48] {
    let source = Ipv6Addr::UNSPECIFIED.octets();
    let destination = ALL_ROUTERS.octets();
    let length = ROUTER_SOLICITATION.len() as u16;
    let mut packet = [0u8; 48];
    packet[0] = 0x60; // version 6, traffic class and flow label 0
    packet[4..6].copy_from_slice(&length.to_be_bytes());
    packet[6] = NEXT_HEADER_ICMPV6;
    packet[7] = ND_HOP_LIMIT as u8;
    packet[8..24].copy_from_slice(&source);
    packet[24..40].copy_from_slice(&destination);
    packet[40..].copy_from_slice(&ROUTER_SOLICITATION);
    let mut pseudo = Vec::with_capacity(40 + ROUTER_SOLICITATION.len());
    pseudo.extend_from_slice(&source);
    pseudo.extend_from_slice(&destination);
    pseudo.extend_from_slice(&u32::from(length).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    pseudo.extend_from_slice(&ROUTER_SOLICITATION);
    packet[42..44].copy_from_slice(&checksum(&pseudo).to_be_bytes());
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solicitation_is_a_bare_rfc_4861_router_solicitation() {
        // Type 133, code 0, no options (RFC 4429 §3.2: no SLLAO from an
        // optimistic source), 8 bytes in all.
        assert_eq!(ROUTER_SOLICITATION[0], 133);
        assert_eq!(ROUTER_SOLICITATION[1], 0);
        assert_eq!(ROUTER_SOLICITATION.len(), 8);
        assert!(ALL_ROUTERS.is_multicast());
        assert_eq!(ALL_ROUTERS.segments()[0], 0xff02, "link-local scope");
    }

    #[test]
    fn the_unspecified_source_packet_is_a_valid_ipv6_router_solicitation() {
        let packet = unspecified_source_solicitation();
        assert_eq!(packet[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([packet[4], packet[5]]), 8);
        assert_eq!(packet[6], 58, "ICMPv6");
        assert_eq!(packet[7], 255, "RFC 4861 §6.1.1 hop limit");
        assert_eq!(&packet[8..24], &[0u8; 16], "from ::");
        assert_eq!(&packet[24..40], &ALL_ROUTERS.octets());
        assert_eq!(packet[40], 133);
        // A receiver sums pseudo-header and message with the checksum in
        // place and gets 0 (RFC 1071).
        let mut pseudo = packet[8..40].to_vec();
        pseudo.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 58]);
        pseudo.extend_from_slice(&packet[40..]);
        assert_eq!(checksum(&pseudo), 0);
        assert_ne!(&packet[42..44], &[0, 0]);
    }
}
