//! Batched UDP I/O on the LAN socket: recvmmsg(2) and sendmmsg(2) move up to
//! [`BATCH`] datagrams per system call, which is most of the per-query cost
//! of a cache hit. IPv4 only (the LAN listener is IPv4, RFC 6333 §5.5).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Room per received datagram; a larger query is reported as truncated.
pub const SLOT: usize = 4096;

/// Receive buffers for one batch.
pub struct RecvBatch {
    storage: Box<[u8]>,
    received: Vec<(usize, SocketAddr, bool)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            storage: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            received: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// Reads up to BATCH datagrams without blocking (WouldBlock when none).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.received.clear();
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_in; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, ((iov, name), header)) in iovecs
            .iter_mut()
            .zip(names.iter_mut())
            .zip(headers.iter_mut())
            .enumerate()
        {
            iov.iov_base = self.storage[i * SLOT..].as_mut_ptr().cast();
            iov.iov_len = SLOT;
            header.msg_hdr.msg_name = (name as *mut libc::sockaddr_in).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live iovec (into `storage`, SLOT
        // bytes each) and a live sockaddr_in of the size given; all outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                // glibc declares the flags c_int, musl c_uint.
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (header, name) in headers.iter().zip(&names).take(n as usize) {
            let from = SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
                u16::from_be(name.sin_port),
            );
            let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let len = (header.msg_len as usize).min(SLOT);
            self.received.push((len, SocketAddr::V4(from), truncated));
        }
        Ok(n as usize)
    }

    /// The datagrams of the last `recv`: bytes, sender, and whether it was
    /// longer than SLOT.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr, bool)> + '_ {
        self.received
            .iter()
            .enumerate()
            .map(|(i, &(len, from, truncated))| {
                (&self.storage[i * SLOT..i * SLOT + len], from, truncated)
            })
    }
}

/// Sends `messages` with as few sendmmsg calls as possible; returns how
/// many were sent before the socket would block.
pub fn send(fd: RawFd, messages: &[(SocketAddrV4, Vec<u8>)]) -> io::Result<usize> {
    let mut sent = 0;
    for chunk in messages.chunks(BATCH) {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_in; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let count = chunk.len();
        for (i, (to, bytes)) in chunk.iter().enumerate() {
            names[i].sin_family = libc::AF_INET as libc::sa_family_t;
            names[i].sin_port = to.port().to_be();
            names[i].sin_addr.s_addr = u32::from(*to.ip()).to_be();
            iovecs[i].iov_base = bytes.as_ptr() as *mut libc::c_void;
            iovecs[i].iov_len = bytes.len();
        }
        for i in 0..count {
            headers[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
            headers[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `count` headers point at live sockaddr_in values
        // and iovecs over the messages' bytes (only read by the kernel).
        let n = unsafe {
            libc::sendmmsg(
                fd,
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT as _, // c_int on glibc, c_uint on musl
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if sent > 0 { Ok(sent) } else { Err(e) };
        }
        sent += n as usize;
        if (n as usize) < count {
            break;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// Over loopback only: batches of at most BATCH, senders and bytes kept,
    /// an oversized datagram flagged.
    #[test]
    fn batches_over_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx_addr = match rx.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let messages: Vec<(SocketAddrV4, Vec<u8>)> = (0..40u8)
            .map(|i| (rx_addr, vec![i; usize::from(i) + 1]))
            .collect();
        assert_eq!(send(tx.as_raw_fd(), &messages).unwrap(), 40);
        tx.send_to(&vec![7u8; SLOT + 1], rx_addr).unwrap();

        let mut batch = RecvBatch::default();
        let mut seen = Vec::new();
        loop {
            match batch.recv(rx.as_raw_fd()) {
                Ok(n) => {
                    assert!(n <= BATCH);
                    for (bytes, from, truncated) in batch.iter() {
                        assert_eq!(from, tx.local_addr().unwrap());
                        seen.push((bytes.to_vec(), truncated));
                    }
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    break;
                }
            }
        }
        assert_eq!(seen.len(), 41);
        for (i, (bytes, truncated)) in seen.iter().take(40).enumerate() {
            assert_eq!(bytes, &vec![i as u8; i + 1]);
            assert!(!truncated);
        }
        assert!(seen[40].1, "the oversized datagram is flagged");
    }
}
