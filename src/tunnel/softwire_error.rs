//! ICMPv6 errors about the softwire: a router on the way (or the AFTR's
//! host) saying that packets from the B4 to the AFTR cannot be delivered.
//!
//! Why b4d listens: the kernel's ip6tnl turns these errors into ICMPv4
//! errors for the LAN hosts and tells no one else, so an AFTR address that
//! went away (the ISP renumbered it, or withdrew the route) would only be
//! noticed when the DNS TTL ran out. b4d takes such an error as a reason to
//! use another address of the AFTR's answer at once and to ask DNS again
//! (rate-limited, see [`super::aftr::Input::AftrUnreachable`]).
//!
//! The parser is total: any bytes give `None` or an error it understood.

use std::io::{self, IoSliceMut};
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{
    recvmsg, setsockopt as sockopt_set, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

/// RFC 4443 §3.1.
const DESTINATION_UNREACHABLE: u8 = 1;
/// RFC 4443 §3.4, code 1: "unrecognized Next Header type encountered": the
/// address answers but does not decapsulate IPv4 (no AFTR there).
const PARAMETER_PROBLEM: u8 = 4;
const UNRECOGNIZED_NEXT_HEADER: u8 = 1;
/// RFC 2473 / RFC 6333: IPv4 carried in IPv6, next header 4.
const NEXT_HEADER_IPV4: u8 = 4;
/// RFC 8200 §4: the extension headers ip6tnl can put before the payload.
const HOP_BY_HOP: u8 = 0;
const FRAGMENT: u8 = 44;
const DESTINATION_OPTIONS: u8 = 60;
const ICMPV6_HEADER: usize = 8;
const IPV6_HEADER: usize = 40;
const IPV4_HEADER: usize = 20;

/// What an error says about the softwire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftwireError {
    /// The B4's address the failed packet came from.
    pub b4: Ipv6Addr,
    /// The AFTR address it was sent to.
    pub aftr: Ipv6Addr,
    /// In words, for the log: "no route", "address unreachable", ...
    pub reason: &'static str,
}

/// Reads one ICMPv6 message (from its type byte on, as a raw ICMPv6 socket
/// delivers it). `Some` only for an error that says the AFTR's address is
/// gone (no route, address unreachable, reject route) or does not
/// decapsulate (unrecognized next header), quoting an IPv4-in-IPv6 packet
/// down to its IPv4 header. Errors about the B4's own source
/// (administratively prohibited, source address failed policy, beyond the
/// source's scope) are not: another AFTR address would not help.
pub fn parse(message: &[u8]) -> Option<SoftwireError> {
    let (&kind, rest) = message.split_first()?;
    let &code = rest.first()?;
    let reason = match (kind, code) {
        (DESTINATION_UNREACHABLE, 0) => "no route to destination",
        (DESTINATION_UNREACHABLE, 3) => "address unreachable",
        (DESTINATION_UNREACHABLE, 6) => "reject route",
        (PARAMETER_PROBLEM, UNRECOGNIZED_NEXT_HEADER) => "no IPv4-in-IPv6 endpoint there",
        _ => return None,
    };
    let quoted = message.get(ICMPV6_HEADER..)?;
    let header = quoted.get(..IPV6_HEADER)?;
    if header[0] >> 4 != 6 {
        return None;
    }
    let inner = ipv4_payload_at(quoted)?;
    // RFC 4443 §2.4(c) quotes as much as fits in the minimum MTU, so a
    // real error always carries the inner IPv4 header.
    let ipv4 = quoted.get(inner..inner + IPV4_HEADER)?;
    if ipv4[0] >> 4 != 4 {
        return None;
    }
    let address = |at: usize| -> Option<Ipv6Addr> {
        let octets: [u8; 16] = header.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(octets))
    };
    Some(SoftwireError {
        b4: address(8)?,
        aftr: address(24)?,
        reason,
    })
}

/// Where the IPv4 packet starts in a quoted IPv6 packet: after the IPv6
/// header and the extension headers the kernel's ip6tnl may add, above all
/// the Destination Options header with the RFC 2473 §5.1 tunnel
/// encapsulation limit (`tunnel.encaplimit`), or a first fragment's header.
fn ipv4_payload_at(quoted: &[u8]) -> Option<usize> {
    let mut next_header = *quoted.get(6)?;
    let mut at = IPV6_HEADER;
    // A bound on the walk, far above the one or two headers seen here.
    for _ in 0..8 {
        match next_header {
            NEXT_HEADER_IPV4 => return Some(at),
            HOP_BY_HOP | DESTINATION_OPTIONS => {
                let extension = quoted.get(at..at + 2)?;
                next_header = extension[0];
                at += (usize::from(extension[1]) + 1) * 8;
            }
            FRAGMENT => {
                let fragment = quoted.get(at..at + 8)?;
                // Only a first fragment (offset 0) holds the IPv4 header.
                if u16::from_be_bytes([fragment[2], fragment[3]]) >> 3 != 0 {
                    return None;
                }
                next_header = fragment[0];
                at += 8;
            }
            _ => return None,
        }
    }
    None
}

/// A raw ICMPv6 socket that passes only the two error types [`parse`]
/// reads (RFC 3542 §3.2 filter), with the interface each arrived on
/// (IPV6_PKTINFO). Not bound to the WAN device, which may not exist yet or
/// be recreated: the caller checks the arrival interface.
pub struct ErrorWatch {
    socket: AsyncFd<Socket>,
}

/// One error [`ErrorWatch::next`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub error: SoftwireError,
    /// The router (or host) that sent it.
    pub sender: Ipv6Addr,
    /// The interface it came in on: errors that LAN hosts make up come in
    /// on the LAN. (The kernel's own, for a neighbour on the WAN that
    /// stopped answering, are reported as the WAN's: they are told apart by
    /// their sender, one of our addresses.)
    pub ifindex: Option<u32>,
}

impl Received {
    /// Whether it came from the ISP's side: in on the WAN device (index
    /// `wan_index`), from an address that `is_ours` says is not this
    /// router's.
    pub fn from_the_isp(&self, wan_index: Option<u32>, is_ours: impl Fn(Ipv6Addr) -> bool) -> bool {
        self.ifindex.is_some() && self.ifindex == wan_index && !is_ours(self.sender)
    }
}

/// Whether `addr` is one of this router's addresses, on any device: only
/// then can a socket be bound to it. Errors are few (the kernel rate-limits
/// them), so the test socket per error costs nothing that matters.
pub fn is_local_address(addr: Ipv6Addr) -> bool {
    addr.is_loopback()
        || addr.is_unspecified()
        || std::net::UdpSocket::bind(std::net::SocketAddrV6::new(addr, 0, 0, 0)).is_ok()
}

impl ErrorWatch {
    pub fn open() -> io::Result<ErrorWatch> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        socket.set_nonblocking(true)?;
        // Linux's filter: a set bit blocks the type.
        let mut filter = [u32::MAX; 8];
        for kind in [DESTINATION_UNREACHABLE, PARAMETER_PROBLEM] {
            filter[usize::from(kind >> 5)] &= !(1u32 << (kind & 31));
        }
        // SAFETY: `filter` is the 32-byte struct icmp6_filter the option
        // takes, alive for the call.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_ICMPV6,
                ICMP6_FILTER,
                filter.as_ptr().cast(),
                std::mem::size_of_val(&filter) as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        sockopt_set(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        // SAFETY: the AsyncFd owns the socket, which stays open until it
        // is dropped with it.
        let socket = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(ErrorWatch { socket })
    }

    /// The next message that [`parse`] understands.
    pub async fn next(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|s| recv_with_ifindex(s.get_ref().as_raw_fd(), buf)) {
                Ok(Ok((len, sender, ifindex))) => {
                    if let Some(error) = parse(&buf[..len]) {
                        return Ok(Received {
                            error,
                            sender,
                            ifindex,
                        });
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// One ICMPv6 message, its sender and the interface it arrived on.
fn recv_with_ifindex(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Ipv6Addr, Option<u32>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo);
    let msg = recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let ifindex = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::Ipv6PacketInfo(info) => Some(info.ipi6_ifindex),
        _ => None,
    });
    let sender = msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip());
    Ok((msg.bytes, sender, ifindex))
}

/// RFC 3542 §3.2: ICMP6_FILTER at level IPPROTO_ICMPV6 (Linux value).
const ICMP6_FILTER: libc::c_int = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
    const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaf, 0, 0, 0, 0, 1);

    /// The quoted IPv4 header of a packet from a LAN host.
    const IPV4: [u8; 20] = [
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 192, 168, 1, 100, 198, 51, 100, 10,
    ];

    /// An ICMPv6 error quoting a packet from B4 to AFTR: IPv6 header,
    /// `extensions` (already chained to IPv4), the IPv4 header.
    fn error_with(kind: u8, code: u8, next_header: u8, extensions: &[u8]) -> Vec<u8> {
        let mut message = vec![kind, code, 0x12, 0x34, 0, 0, 0, 0];
        message.extend_from_slice(&[0x60, 0, 0, 0, 0, 28, next_header, 64]);
        message.extend_from_slice(&B4.octets());
        message.extend_from_slice(&AFTR.octets());
        message.extend_from_slice(extensions);
        message.extend_from_slice(&IPV4);
        message
    }

    fn error(kind: u8, code: u8, next_header: u8) -> Vec<u8> {
        error_with(kind, code, next_header, &[])
    }

    #[test]
    fn the_encapsulation_limit_option_ip6tnl_adds_is_skipped() {
        // RFC 2473 §5.1: Destination Options header, next header IPv4,
        // length 0 (8 bytes): the tunnel encapsulation limit option (type 4,
        // length 1, limit 4) and a PadN of one byte.
        let destination_options = [4, 0, 4, 1, 4, 1, 1, 0];
        let quoted = error_with(1, 3, 60, &destination_options);
        assert_eq!(parse(&quoted).unwrap().aftr, AFTR);
        // A first fragment (offset 0) holds the IPv4 header; a later one not.
        let first_fragment = [4, 0, 0, 1, 0, 0, 0, 7];
        assert_eq!(
            parse(&error_with(1, 0, 44, &first_fragment)).unwrap().b4,
            B4
        );
        let later_fragment = [4, 0, 0x05, 0x01, 0, 0, 0, 7];
        assert_eq!(parse(&error_with(1, 0, 44, &later_fragment)), None);
        // Options that claim more than was quoted.
        let too_long = [4, 200, 4, 1, 4, 1, 1, 0];
        assert_eq!(parse(&error_with(1, 3, 60, &too_long)), None);
    }

    #[test]
    fn only_errors_in_from_the_isp_count() {
        const WAN: u32 = 3;
        let router: Ipv6Addr = "fe80::1".parse().unwrap();
        let received = |sender: Ipv6Addr, ifindex: Option<u32>| Received {
            error: parse(&error(1, 3, 4)).unwrap(),
            sender,
            ifindex,
        };
        let ours = |a: Ipv6Addr| a == B4;
        assert!(received(router, Some(WAN)).from_the_isp(Some(WAN), ours));
        // The kernel's own "address unreachable" (the ISP's router stopped
        // answering neighbour discovery) comes from our address.
        assert!(!received(B4, Some(WAN)).from_the_isp(Some(WAN), ours));
        // Made up by a LAN host.
        assert!(!received(router, Some(2)).from_the_isp(Some(WAN), ours));
        // No arrival interface, or no WAN device known.
        assert!(!received(router, None).from_the_isp(Some(WAN), ours));
        assert!(!received(router, Some(WAN)).from_the_isp(None, ours));
    }

    #[test]
    fn loopback_is_ours_and_a_documentation_address_is_not() {
        assert!(is_local_address(Ipv6Addr::LOCALHOST));
        assert!(!is_local_address(AFTR));
    }

    #[test]
    fn errors_about_the_b4s_own_source_are_not_about_the_aftr() {
        // Administratively prohibited, beyond the source's scope, source
        // address failed policy, and codes this parser does not know.
        for code in [1, 2, 5, 7, 200] {
            assert_eq!(parse(&error(1, code, 4)), None, "code {code}");
        }
        // The quote must reach the IPv4 header.
        let short = error(1, 0, 4);
        assert_eq!(parse(&short[..short.len() - 1]), None);
    }

    #[test]
    fn a_no_route_error_about_the_softwire_names_b4_and_aftr() {
        assert_eq!(
            parse(&error(1, 0, 4)),
            Some(SoftwireError {
                b4: B4,
                aftr: AFTR,
                reason: "no route to destination"
            })
        );
        assert_eq!(
            parse(&error(1, 3, 4)).unwrap().reason,
            "address unreachable"
        );
        assert_eq!(
            parse(&error(4, 1, 4)).unwrap().reason,
            "no IPv4-in-IPv6 endpoint there"
        );
    }

    #[test]
    fn errors_about_other_traffic_or_other_messages_are_not_the_softwires() {
        // Quoting a TCP-over-IPv6 packet: not the tunnel's.
        assert_eq!(parse(&error(1, 0, 6)), None);
        // Packet too big (2), time exceeded (3), other parameter problems,
        // echo replies: the kernel's business.
        assert_eq!(parse(&error(2, 0, 4)), None);
        assert_eq!(parse(&error(3, 0, 4)), None);
        assert_eq!(parse(&error(4, 0, 4)), None);
        assert_eq!(parse(&error(129, 0, 4)), None);
        // Truncated before the quoted destination.
        assert_eq!(parse(&error(1, 0, 4)[..40]), None);
        assert_eq!(parse(&[]), None);
        // Not IPv6 inside.
        let mut not_v6 = error(1, 0, 4);
        not_v6[8] = 0x45;
        assert_eq!(parse(&not_v6), None);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse(&bytes);
        }
    }
}
