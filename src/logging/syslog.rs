//! The syslog connection: an AF_UNIX datagram socket that survives the
//! syslog daemon restarting.
//!
//! States, driven by [`SyslogSink::submit`] with the time passed in:
//! - *connected*, nothing pending: a message is sent straight away. If the
//!   send says the peer is gone, reconnect at once and retry once (logd
//!   restarted and is already listening again: nothing is lost, no delay).
//! - *degraded* (no socket, or messages pending): the new message joins the
//!   [`Backlog`]. With a socket (logd was merely busy) delivery is retried on
//!   every call; without one, reconnecting is tried at most once per
//!   reconnect interval. After reconnecting, a "N log messages lost" notice
//!   goes first if the backlog overflowed, then the backlog in order.
//!
//! The socket is non-blocking: a busy logd (EAGAIN/ENOBUFS) means "queue and
//! try later", never "wait".

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::Level;

use super::backlog::{Backlog, DEFAULT_CAPACITY};
use super::format::{self, Stamp};

/// At most one reconnect attempt per interval while syslog is away.
pub const DEFAULT_RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// Why a datagram was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendError {
    /// Receiver queue full (EAGAIN, ENOBUFS): keep the socket, retry later.
    Busy,
    /// Peer gone (ECONNREFUSED, ENOTCONN, ENOENT, EPIPE, EBADF, ...):
    /// drop the socket and reconnect.
    Gone,
    /// This datagram can never be delivered (EMSGSIZE): drop and count it,
    /// rather than let it block the queue forever.
    Rejected,
}

impl SendError {
    fn classify(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => SendError::Busy,
            _ => match err.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => SendError::Busy,
                Some(libc::EMSGSIZE) => SendError::Rejected,
                _ => SendError::Gone,
            },
        }
    }
}

#[derive(Debug)]
pub struct SyslogSink {
    path: PathBuf,
    ident: String,
    pid: u32,
    sock: Option<UnixDatagram>,
    backlog: Backlog,
    reconnect_interval: Duration,
    last_attempt: Option<Instant>,
}

impl SyslogSink {
    /// Does not connect yet: the first message does.
    pub fn new(path: PathBuf, ident: &str, pid: u32) -> Self {
        SyslogSink {
            path,
            ident: ident.to_owned(),
            pid,
            sock: None,
            backlog: Backlog::new(DEFAULT_CAPACITY),
            reconnect_interval: DEFAULT_RECONNECT_INTERVAL,
            last_attempt: None,
        }
    }

    pub fn set_reconnect_interval(&mut self, interval: Duration) {
        self.reconnect_interval = interval;
    }

    pub fn set_backlog_capacity(&mut self, capacity: usize) {
        self.backlog.set_capacity(capacity);
    }

    /// Delivers `datagram` (already formatted) or queues it. `now` drives the
    /// reconnect rate limit; `stamp` dates the "messages lost" notice.
    pub fn submit(&mut self, now: Instant, stamp: &Stamp, datagram: String) {
        let healthy = self.sock.is_some() && self.backlog.is_empty() && self.backlog.dropped() == 0;
        // A connection that worked until now gets one immediate reconnect;
        // otherwise the rate limit decides. At most one attempt per call.
        let mut may_connect = healthy || self.reconnect_due(now);
        if !healthy {
            // Make room first, so a syslog that just came back does not
            // cost the oldest queued message.
            may_connect = self.drain(now, stamp, may_connect);
        }
        self.backlog.push(datagram);
        self.drain(now, stamp, may_connect);
    }

    /// Tries to deliver whatever is pending, ignoring the rate limit.
    pub fn flush(&mut self, now: Instant, stamp: &Stamp) {
        if !self.backlog.is_empty() || self.backlog.dropped() > 0 {
            self.drain(now, stamp, true);
        }
    }

    fn reconnect_due(&self, now: Instant) -> bool {
        self.last_attempt
            .is_none_or(|t| now.saturating_duration_since(t) >= self.reconnect_interval)
    }

    /// Sends the notice and backlog, reconnecting (at most once) only if
    /// `may_connect`. Returns whether a reconnect is still allowed.
    fn drain(&mut self, now: Instant, stamp: &Stamp, mut may_connect: bool) -> bool {
        loop {
            if self.sock.is_none() {
                if !may_connect {
                    return false;
                }
                may_connect = false;
                self.last_attempt = Some(now);
                self.sock = connect(&self.path);
                if self.sock.is_none() {
                    return false;
                }
            }
            match self.send_pending(stamp) {
                Ok(()) | Err(SendError::Busy) => return may_connect,
                // Loops to reconnect if this call has not done so yet.
                Err(SendError::Gone | SendError::Rejected) => self.sock = None,
            }
        }
    }

    /// The "lost" notice (if any), then the backlog, oldest first. A message
    /// syslog refuses outright is dropped and counted, not retried forever.
    fn send_pending(&mut self, stamp: &Stamp) -> Result<(), SendError> {
        let sock = self.sock.as_ref().ok_or(SendError::Gone)?;
        let dropped = self.backlog.dropped();
        if dropped > 0 {
            let notice = format::lost_notice(dropped);
            let notice =
                format::syslog_datagram(Level::Warn, stamp, &self.ident, self.pid, &notice);
            match send(sock, &notice) {
                Ok(()) | Err(SendError::Rejected) => self.backlog.clear_dropped(),
                Err(e) => return Err(e),
            }
        }
        while let Some(msg) = self.backlog.front() {
            match send(sock, msg) {
                Ok(()) => {}
                Err(SendError::Rejected) => self.backlog.add_dropped(1),
                Err(e) => return Err(e),
            }
            self.backlog.pop();
        }
        Ok(())
    }

    /// Messages wait: no socket, a backlog, or a "lost" notice to send.
    pub fn is_waiting(&self) -> bool {
        !self.backlog.is_empty() || self.backlog.dropped() > 0
    }

    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.backlog.len()
    }

    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.backlog.dropped()
    }

    #[cfg(test)]
    pub fn is_connected(&self) -> bool {
        self.sock.is_some()
    }
}

/// A fresh non-blocking socket connected to `path`, or `None` if syslog is
/// not there (ENOENT, ECONNREFUSED, ...).
fn connect(path: &Path) -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.set_nonblocking(true).ok()?;
    sock.connect(path).ok()?;
    Some(sock)
}

fn send(sock: &UnixDatagram, msg: &str) -> Result<(), SendError> {
    // A datagram is sent whole or not at all.
    sock.send(msg.as_bytes())
        .map(drop)
        .map_err(|e| SendError::classify(&e))
}

#[cfg(test)]
mod tests {
    //! Real sockets, fabricated `Instant`s: the rate limit is tested without
    //! sleeping.
    use super::*;
    use crate::logging::tests::{listen, recv, silent, TempDir};

    const STAMP: Stamp = Stamp {
        month: 0,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    fn line(text: &str) -> String {
        format::syslog_datagram(Level::Info, &STAMP, "t", 1, text)
    }

    #[test]
    fn classifies_errnos() {
        let c = |errno| SendError::classify(&io::Error::from_raw_os_error(errno));
        assert_eq!(c(libc::EAGAIN), SendError::Busy);
        assert_eq!(c(libc::ENOBUFS), SendError::Busy);
        for errno in [
            libc::ECONNREFUSED,
            libc::ENOTCONN,
            libc::ENOENT,
            libc::EPIPE,
            libc::EBADF,
        ] {
            assert_eq!(c(errno), SendError::Gone, "errno {errno}");
        }
        assert_eq!(c(libc::EMSGSIZE), SendError::Rejected);
    }

    #[test]
    fn reconnect_is_rate_limited_by_the_clock_passed_in() {
        let dir = TempDir::new("ratelimit");
        let t0 = Instant::now();
        let mut sink = SyslogSink::new(dir.socket(), "t", 1);

        // Syslog absent: first call tries and fails, the next ones wait.
        sink.submit(t0, &STAMP, line("a"));
        sink.submit(t0 + Duration::from_millis(500), &STAMP, line("b"));
        assert!(!sink.is_connected());

        // Syslog appears, but the interval since the last attempt has not
        // passed yet: still queued.
        let rx = listen(&dir.socket());
        sink.submit(t0 + Duration::from_millis(999), &STAMP, line("c"));
        assert!(silent(&rx));
        assert_eq!(sink.pending(), 3);

        // One second after the failed attempt: everything, in order.
        sink.submit(t0 + Duration::from_secs(1), &STAMP, line("d"));
        for text in ["a", "b", "c", "d"] {
            assert_eq!(recv(&rx), line(text));
        }
        assert_eq!(sink.pending(), 0);
        assert!(sink.is_connected());
    }

    #[test]
    fn waiting_lasts_from_the_first_undelivered_message_to_the_flush_that_delivers_it() {
        let dir = TempDir::new("waiting");
        let t0 = Instant::now();
        let mut sink = SyslogSink::new(dir.socket(), "t", 1);
        assert!(!sink.is_waiting());
        sink.submit(t0, &STAMP, line("a"));
        assert!(sink.is_waiting(), "syslog absent: the message waits");
        let rx = listen(&dir.socket());
        // No new message: the daemon's retry flush delivers it.
        sink.flush(t0 + Duration::from_millis(10), &STAMP);
        assert_eq!(recv(&rx), line("a"));
        assert!(!sink.is_waiting());
    }

    #[test]
    fn restart_of_a_connected_syslog_is_bridged_without_waiting() {
        let dir = TempDir::new("bridge");
        let t0 = Instant::now();
        let mut sink = SyslogSink::new(dir.socket(), "t", 1);
        let rx = listen(&dir.socket());
        sink.submit(t0, &STAMP, line("before"));
        assert_eq!(recv(&rx), line("before"));

        // logd restarts between two messages: the old socket is dead, the
        // path is bound again. Same instant, so no rate-limit help.
        drop(rx);
        std::fs::remove_file(dir.socket()).unwrap();
        let rx = listen(&dir.socket());
        sink.submit(t0, &STAMP, line("after"));
        assert_eq!(recv(&rx), line("after"));
        assert_eq!(sink.pending(), 0);
    }

    #[test]
    fn busy_syslog_keeps_socket_and_order() {
        let dir = TempDir::new("busy");
        let t0 = Instant::now();
        let mut sink = SyslogSink::new(dir.socket(), "t", 1);
        let rx = listen(&dir.socket());

        // Nobody reads: the receive queue fills up (net.unix.max_dgram_qlen)
        // and sends fail with EAGAIN.
        let mut sent = Vec::new();
        while sink.pending() == 0 && sent.len() < 10_000 {
            let msg = line(&format!("m{}", sent.len()));
            sent.push(msg.clone());
            sink.submit(t0, &STAMP, msg);
        }
        assert!(sink.pending() > 0, "receive queue never filled");
        assert!(sink.is_connected(), "busy must not drop the connection");

        // logd catches up; each new call pushes out more of the backlog.
        let mut got = Vec::new();
        rx.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        for _ in 0..1000 {
            while let Ok(n) = rx.recv(&mut buf) {
                got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
            if sink.pending() == 0 {
                break;
            }
            let msg = line(&format!("m{}", sent.len()));
            sent.push(msg.clone());
            sink.submit(t0, &STAMP, msg);
        }
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        assert_eq!(got, sent);
        assert_eq!(sink.dropped(), 0);
    }
}
