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

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

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
const ICMPV6_HEADER: usize = 8;
const IPV6_HEADER: usize = 40;

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
/// delivers it). `Some` only for a destination unreachable or an
/// unrecognized-next-header error quoting an IPv4-in-IPv6 packet.
pub fn parse(message: &[u8]) -> Option<SoftwireError> {
    let (&kind, rest) = message.split_first()?;
    let &code = rest.first()?;
    let reason = match (kind, code) {
        (DESTINATION_UNREACHABLE, 0) => "no route to destination",
        (DESTINATION_UNREACHABLE, 1) => "administratively prohibited",
        (DESTINATION_UNREACHABLE, 3) => "address unreachable",
        (DESTINATION_UNREACHABLE, 5) => "source address failed policy",
        (DESTINATION_UNREACHABLE, 6) => "reject route",
        (DESTINATION_UNREACHABLE, _) => "destination unreachable",
        (PARAMETER_PROBLEM, UNRECOGNIZED_NEXT_HEADER) => "no IPv4-in-IPv6 endpoint there",
        _ => return None,
    };
    let quoted = message.get(ICMPV6_HEADER..ICMPV6_HEADER + IPV6_HEADER)?;
    if quoted[0] >> 4 != 6 || quoted[6] != NEXT_HEADER_IPV4 {
        return None;
    }
    let address = |at: usize| -> Option<Ipv6Addr> {
        let octets: [u8; 16] = quoted.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(octets))
    };
    Some(SoftwireError {
        b4: address(8)?,
        aftr: address(24)?,
        reason,
    })
}

/// A raw ICMPv6 socket that passes only the two error types [`parse`]
/// reads (RFC 3542 §3.2 filter). Not bound to the WAN device, which may
/// not exist yet or be recreated: [`parse`]'s addresses say whose it is.
pub struct ErrorWatch {
    socket: AsyncFd<Socket>,
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
        // SAFETY: the AsyncFd owns the socket, which stays open until it
        // is dropped with it.
        let socket = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(ErrorWatch { socket })
    }

    /// The next message that [`parse`] understands, with its sender.
    pub async fn next(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<(SoftwireError, Ipv6Addr)> {
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|s| s.get_ref().recv_from(buf)) {
                Ok(Ok((len, from))) => {
                    // SAFETY: recv_from initialised the first `len` bytes.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
                    let sender = match from.as_socket() {
                        Some(SocketAddr::V6(a)) => *a.ip(),
                        _ => Ipv6Addr::UNSPECIFIED,
                    };
                    if let Some(error) = parse(bytes) {
                        return Ok((error, sender));
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// RFC 3542 §3.2: ICMP6_FILTER at level IPPROTO_ICMPV6 (Linux value).
const ICMP6_FILTER: libc::c_int = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
    const AFTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaf, 0, 0, 0, 0, 1);

    /// An ICMPv6 error quoting the start of a packet from B4 to AFTR.
    fn error(kind: u8, code: u8, next_header: u8) -> Vec<u8> {
        let mut message = vec![kind, code, 0x12, 0x34, 0, 0, 0, 0];
        message.extend_from_slice(&[0x60, 0, 0, 0, 0, 28, next_header, 64]);
        message.extend_from_slice(&B4.octets());
        message.extend_from_slice(&AFTR.octets());
        // The quoted IPv4 packet's first bytes.
        message.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0]);
        message
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
