//! Batched UDP I/O on the LAN socket: recvmmsg(2) and sendmmsg(2) move up to
//! [`BATCH`] datagrams per system call, which is most of the per-query cost
//! of a cache hit. IPv4 only (the LAN listener is IPv4, RFC 6333 §5.5).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Room per received datagram; a larger query is reported as truncated.
pub const SLOT: usize = 4096;

const NAME_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

/// The C structures one recvmmsg/sendmmsg call reads: BATCH headers, each
/// pointing at its own address and iovec. Linked once, when allocated, not
/// per call: zeroing and linking 32 of each (3 KiB) cost more than the
/// proxy's own work for a one-datagram batch, the usual size at low load.
/// Reached only through the raw pointer of its heap allocation, so the
/// links stay valid wherever the owner moves.
struct Headers {
    names: [libc::sockaddr_in; BATCH],
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
}

struct LinkedHeaders(NonNull<Headers>);

impl LinkedHeaders {
    fn new() -> LinkedHeaders {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let boxed: Box<Headers> = Box::new(unsafe { std::mem::zeroed() });
        let h = Box::into_raw(boxed);
        // SAFETY: `h` is a fresh, exclusively owned allocation; the links
        // point inside it.
        unsafe {
            for i in 0..BATCH {
                let header = &mut (*h).headers[i].msg_hdr;
                header.msg_name = std::ptr::addr_of_mut!((*h).names[i]).cast();
                header.msg_namelen = NAME_LEN;
                header.msg_iov = std::ptr::addr_of_mut!((*h).iovecs[i]);
                header.msg_iovlen = 1;
            }
            LinkedHeaders(NonNull::new_unchecked(h))
        }
    }

    fn get(&mut self) -> &mut Headers {
        // SAFETY: owned by self (Box::into_raw above), freed only in drop.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for LinkedHeaders {
    fn drop(&mut self) {
        // SAFETY: allocated by Box::into_raw in new, dropped once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: the pointers only point into memory the value owns (the headers
// allocation, RecvBatch's storage); nothing is shared with another value.
unsafe impl Send for LinkedHeaders {}

/// Receive buffers for one batch.
pub struct RecvBatch {
    /// Declared before `storage`: its iovecs point into it.
    headers: LinkedHeaders,
    storage: Box<[u8]>,
    received: Vec<(usize, SocketAddr, bool)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        let mut storage = vec![0u8; BATCH * SLOT].into_boxed_slice();
        let mut headers = LinkedHeaders::new();
        let base = storage.as_mut_ptr();
        for (i, iov) in headers.get().iovecs.iter_mut().enumerate() {
            // SAFETY: i * SLOT + SLOT <= storage.len().
            iov.iov_base = unsafe { base.add(i * SLOT) }.cast();
            iov.iov_len = SLOT;
        }
        RecvBatch {
            headers,
            storage,
            received: Vec::with_capacity(BATCH),
        }
    }
}

// SAFETY: see LinkedHeaders; the storage the iovecs point at is owned here
// (a boxed slice: it never moves).
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Reads up to BATCH datagrams without blocking (WouldBlock when none).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // The kernel set the address length of the ones it filled last time.
        let filled = self.received.len();
        self.received.clear();
        let h = self.headers.get();
        for header in &mut h.headers[..filled] {
            header.msg_hdr.msg_namelen = NAME_LEN;
        }
        // SAFETY: every header points at a live iovec (into `storage`, SLOT
        // bytes each) and a live sockaddr_in of the size given; all outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                h.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                // glibc declares the flags c_int, musl c_uint.
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (header, name) in h.headers.iter().zip(&h.names).take(n as usize) {
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

/// Headers for sending answers, linked once like RecvBatch's.
pub struct SendBatch {
    headers: LinkedHeaders,
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            headers: LinkedHeaders::new(),
        }
    }
}

impl SendBatch {
    /// Sends `messages` with as few sendmmsg calls as possible; returns how
    /// many were sent before the socket would block.
    pub fn send(&mut self, fd: RawFd, messages: &[(SocketAddrV4, Vec<u8>)]) -> io::Result<usize> {
        let h = self.headers.get();
        let mut sent = 0;
        for chunk in messages.chunks(BATCH) {
            let count = chunk.len();
            for ((to, bytes), (name, iov)) in
                chunk.iter().zip(h.names.iter_mut().zip(&mut h.iovecs))
            {
                name.sin_family = libc::AF_INET as libc::sa_family_t;
                name.sin_port = to.port().to_be();
                name.sin_addr.s_addr = u32::from(*to.ip()).to_be();
                iov.iov_base = bytes.as_ptr() as *mut libc::c_void;
                iov.iov_len = bytes.len();
            }
            // SAFETY: the first `count` headers point at live sockaddr_in
            // values and iovecs over the messages' bytes (only read by the kernel).
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    h.headers.as_mut_ptr(),
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
        assert_eq!(
            SendBatch::default()
                .send(tx.as_raw_fd(), &messages)
                .unwrap(),
            40
        );
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
