//! ICMP echo probes on raw sockets (b4d runs as root, as OpenWrt daemons
//! do; ping sockets would need net.ipv4.ping_group_range).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const IPV4_HEADER: usize = 20;
const ICMP_HEADER: usize = 8;

/// RFC 1071 Internet checksum.
pub(crate) fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(kind: u8, id: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend((0..payload_len).map(|i| (i % 251) as u8));
    packet
}

/// The echo reply a probe waits for.
struct Expected {
    from: IpAddr,
    reply_type: u8,
    id: u16,
    seq: u16,
    /// IPv4 raw sockets deliver the IP header before the ICMP message,
    /// IPv6 ones do not.
    ipv4_header: bool,
}

/// Receives until the expected echo reply arrives, or `timeout` after `sent`.
fn wait_reply(
    socket: &Socket,
    want: &Expected,
    sent: Instant,
    timeout: Duration,
) -> io::Result<Duration> {
    let Expected {
        from,
        reply_type,
        id,
        seq,
        ipv4_header,
    } = *want;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    loop {
        let left = timeout.saturating_sub(sent.elapsed());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no reply within the timeout",
            ));
        }
        socket.set_read_timeout(Some(left))?;
        let (n, source) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no reply within the timeout",
                ))
            }
            Err(e) => return Err(e),
        };
        // SAFETY: recv_from initialised the first n bytes.
        let bytes: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        if source.as_socket().map(|s| s.ip()) != Some(from) {
            continue;
        }
        let offset = if ipv4_header {
            usize::from(bytes.first().copied().unwrap_or(0x45) & 0x0f) * 4
        } else {
            0
        };
        let Some(icmp) = bytes.get(offset..offset + ICMP_HEADER) else {
            continue;
        };
        if icmp[0] == reply_type
            && u16::from_be_bytes([icmp[4], icmp[5]]) == id
            && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
        {
            return Ok(sent.elapsed());
        }
    }
}

/// One ICMPv6 echo from `from` to `to`; the round-trip time.
pub fn echo_v6(from: Ipv6Addr, to: Ipv6Addr, timeout: Duration) -> io::Result<Duration> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind(&SocketAddr::new(IpAddr::V6(from), 0).into())?;
    let id: u16 = rand::random();
    // The kernel fills in the ICMPv6 checksum (RFC 3542 §3.1).
    let packet = echo_request(ICMPV6_ECHO_REQUEST, id, 1, 56);
    let sent = Instant::now();
    socket.send_to(&packet, &SocketAddr::new(IpAddr::V6(to), 0).into())?;
    let want = Expected {
        from: IpAddr::V6(to),
        reply_type: ICMPV6_ECHO_REPLY,
        id,
        seq: 1,
        ipv4_header: false,
    };
    wait_reply(&socket, &want, sent, timeout)
}

/// One IPv4 echo of exactly `size` bytes with DF set, out of `device` to
/// `to`: proves that a full-size packet crosses the tunnel unfragmented.
pub fn echo_v4_full_size(
    device: &str,
    to: Ipv4Addr,
    size: usize,
    timeout: Duration,
) -> io::Result<Duration> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    socket.bind_device(Some(device.as_bytes()))?;
    // DF on every packet, and EMSGSIZE instead of local fragmentation.
    let pmtudisc_do: libc::c_int = libc::IP_PMTUDISC_DO;
    // SAFETY: a valid socket and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&pmtudisc_do as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let id: u16 = rand::random();
    let payload = size.saturating_sub(IPV4_HEADER + ICMP_HEADER);
    let mut packet = echo_request(ICMP_ECHO_REQUEST, id, 1, payload);
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    let sent = Instant::now();
    socket.send_to(&packet, &SocketAddr::new(IpAddr::V4(to), 0).into())?;
    let want = Expected {
        from: IpAddr::V4(to),
        reply_type: ICMP_ECHO_REPLY,
        id,
        seq: 1,
        ipv4_header: true,
    };
    wait_reply(&socket, &want, sent, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request_verifies_to_zero() {
        let mut packet = echo_request(ICMP_ECHO_REQUEST, 0x1234, 1, 33);
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum(&packet), 0);
    }
}
