//! NETLINK_ROUTE sockets on tokio: a request socket (one request at a time,
//! answered by an acknowledgement, one reply or a dump, matched by sequence
//! number) and a notification socket subscribed to multicast groups.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::sync::Mutex;

use super::wire::{self, Header, Request, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN};

/// Big enough for one datagram of a dump: the kernel fills at most
/// max(NLMSG_GOODSIZE, the reader's buffer) — about a page — per datagram.
const RECV_BUFFER: usize = 32 * 1024;

/// Notifications taken in one go by [`Subscription::changed`].
const MAX_DRAIN: usize = 256;

/// A NETLINK_ROUTE socket bound to `groups` (a bit mask of
/// 1 << (RTNLGRP_* - 1)), non-blocking, registered with tokio.
fn open(groups: u32) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain socket(2); the descriptor is owned right below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain old data; all zeros is valid.
    let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    // SAFETY: addr is a valid sockaddr_nl of the given size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the AsyncFd owns the descriptor, which stays open until it
    // is dropped.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// One datagram into `buf`, from the kernel only (port id 0): another
/// process could otherwise unicast forged replies or notifications to our
/// port. Returns the length; a datagram larger than `buf` is an error.
fn recv_from_kernel(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: as in `open`.
    let mut from: libc::sockaddr_nl = unsafe { mem::zeroed() };
    let mut from_len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: buf and from are valid for writes of the lengths given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut from as *mut libc::sockaddr_nl).cast(),
            &mut from_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n > buf.len() {
        return Err(io::Error::other(format!(
            "netlink datagram of {n} bytes truncated to {}",
            buf.len()
        )));
    }
    Ok((from.nl_pid == 0).then_some(n))
}

/// What a request is answered with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// NLMSG_ERROR with 0 (NLM_F_ACK), possibly after one reply.
    Ack,
    /// NLM_F_MULTI messages up to NLMSG_DONE.
    Dump,
}

struct RequestState {
    seq: u32,
    buf: Vec<u8>,
}

/// The request socket. Requests run one at a time (the lock); a request
/// whose future was dropped halfway leaves replies behind that the next
/// one skips by their sequence number.
pub struct RequestSocket {
    fd: AsyncFd<OwnedFd>,
    state: Mutex<RequestState>,
}

impl RequestSocket {
    pub fn open() -> io::Result<RequestSocket> {
        Ok(RequestSocket {
            fd: open(0)?,
            state: Mutex::new(RequestState {
                seq: 0,
                buf: vec![0; RECV_BUFFER],
            }),
        })
    }

    /// Sends a request with NLM_F_ACK and returns the replies before the
    /// acknowledgement (RTM_GETLINK by name: the link); the kernel's
    /// error as an io::Error with its errno.
    pub async fn acked(&self, request: Request) -> io::Result<Vec<(Header, Vec<u8>)>> {
        self.transact(request, Answer::Ack).await
    }

    /// Sends a dump request and returns all its messages.
    pub async fn dump(&self, request: Request) -> io::Result<Vec<(Header, Vec<u8>)>> {
        self.transact(request, Answer::Dump).await
    }

    async fn transact(
        &self,
        request: Request,
        answer: Answer,
    ) -> io::Result<Vec<(Header, Vec<u8>)>> {
        let mut state = self.state.lock().await;
        state.seq = state.seq.wrapping_add(1);
        let seq = state.seq;
        let datagram = request.finish(seq);
        self.send(&datagram).await?;
        let mut replies = Vec::new();
        loop {
            let len = self.recv(&mut state.buf).await?;
            for message in wire::messages(&state.buf[..len]) {
                let (header, payload) = message
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if header.seq != seq {
                    continue; // left over from an abandoned request
                }
                match header.kind {
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    NLMSG_ERROR | NLMSG_DONE => {
                        let code = wire::error_code(payload).unwrap_or(0);
                        if code < 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        // An ACK ends an Ack request, DONE a dump.
                        let ends = (header.kind == NLMSG_ERROR) == (answer == Answer::Ack);
                        if ends {
                            return Ok(replies);
                        }
                    }
                    _ => replies.push((header, payload.to_vec())),
                }
            }
        }
    }

    async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            let sent = guard.try_io(|fd| {
                // SAFETY: datagram is valid for reads of its length. An
                // unconnected netlink socket sends to the kernel.
                let n = unsafe {
                    libc::send(fd.as_raw_fd(), datagram.as_ptr().cast(), datagram.len(), 0)
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match sent {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_from_kernel(fd.get_ref(), buf)) {
                Ok(Ok(Some(len))) => return Ok(len),
                Ok(Ok(None)) => continue, // not from the kernel
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// A socket subscribed to rtnetlink multicast groups. The contents of the
/// notifications do not matter to b4d: any of them means "look again".
pub struct Subscription {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl Subscription {
    /// Subscribes to RTNLGRP_* `groups`.
    pub fn open(groups: &[u32]) -> io::Result<Subscription> {
        let mask = groups.iter().fold(0u32, |mask, g| mask | 1 << (g - 1));
        Ok(Subscription {
            fd: open(mask)?,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Waits for at least one notification, then takes all that are queued
    /// (a burst, e.g. the ones our own changes cause, is one wake-up).
    /// ENOBUFS — the kernel dropped notifications because the socket buffer
    /// overran — also counts as a change: the caller re-reads the state,
    /// which is the resynchronisation netlink(7) asks for.
    pub async fn changed(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_from_kernel(fd.get_ref(), &mut self.buf)) {
                Ok(Ok(Some(_))) => break,
                Ok(Ok(None)) | Err(_) => continue,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => break,
                Ok(Err(e)) => return Err(e),
            }
        }
        self.drain();
        Ok(())
    }

    /// Reads whatever is queued without waiting (e.g. what piled up while
    /// the caller backed off); at most
    /// [`MAX_DRAIN`] datagrams, so that a flood cannot keep the task here
    /// (what is left wakes the next `changed` at once).
    pub fn drain(&mut self) {
        for _ in 0..MAX_DRAIN {
            match recv_from_kernel(self.fd.get_ref(), &mut self.buf) {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                // EAGAIN (empty) or anything else: the next `changed`
                // waits on readiness and sees any lasting error.
                Err(_) => break,
            }
        }
        // The readiness tokio cached is stale now; `changed` re-arms it
        // through try_io's WouldBlock on the next wait.
    }
}
