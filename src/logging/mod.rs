//! Logging to syslog (logd) or stderr: a small `log::Log` backend.
//!
//! Why not the `syslog` crate: it connects once and never reconnects, so after
//! OpenWrt's logd (or any syslogd) restarts, every later message is silently
//! lost (Geal/rust-syslog issue #21; it also passes ENOBUFS up, #79). This
//! backend reconnects when a send fails, keeps a bounded backlog while syslog
//! is away, and reports how many messages it had to drop.
//!
//! - `format`: pure RFC 3164 / stderr formatting (time passed in);
//! - `backlog`: the bounded queue;
//! - `syslog`: the socket and its reconnect logic (time passed in);
//! - here: [`Target`], [`Logger`], [`init`], and the wall clock.
//!
//! The logger never panics, never blocks for long (non-blocking socket) and
//! never logs itself. Messages are formatted before the lock is taken, so a
//! `Display` impl that logs cannot deadlock.

mod backlog;
mod format;
mod syslog;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use format::Stamp;
use syslog::SyslogSink;

pub use backlog::DEFAULT_CAPACITY as DEFAULT_BACKLOG_CAPACITY;
pub use syslog::DEFAULT_RECONNECT_INTERVAL;

/// How soon the daemon retries delivering waiting messages (see
/// [`waiting_for_syslog`]): logd back after a restart sees them within this.
pub const SYSLOG_RETRY: Duration = Duration::from_millis(250);

/// Whether messages wait for syslog (logd away or busy).
static WAITING: AtomicBool = AtomicBool::new(false);
/// Woken when messages start waiting, so the daemon's loop schedules a retry
/// without waking up periodically while syslog is fine.
static STARTED_WAITING: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// True while messages wait for syslog; the daemon then calls
/// `log::logger().flush()` every [`SYSLOG_RETRY`]: without it they would
/// wait for b4d's next message, which may be minutes away.
pub fn waiting_for_syslog() -> bool {
    WAITING.load(Ordering::Relaxed)
}

/// Resolves when messages start waiting for syslog.
pub async fn syslog_started_waiting() {
    STARTED_WAITING.notified().await
}

fn note_waiting(sink: &SyslogSink) {
    let waiting = sink.is_waiting();
    if WAITING.swap(waiting, Ordering::Relaxed) != waiting && waiting {
        STARTED_WAITING.notify_one();
    }
}

/// The syslog socket on OpenWrt (logd) and most Linux systems.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// Where log messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `b4d[<pid>] <LEVEL> <module>: message` lines on stderr (procd/journald
    /// add timestamps).
    Stderr,
    /// RFC 3164 datagrams, facility daemon, to a local AF_UNIX socket.
    Syslog { socket: PathBuf },
}

impl Target {
    /// Syslog at [`DEFAULT_SYSLOG_SOCKET`].
    pub fn syslog() -> Self {
        Target::Syslog {
            socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET),
        }
    }
}

#[derive(Debug)]
enum Sink {
    Stderr,
    Syslog(Mutex<SyslogSink>),
}

/// The `log::Log` backend. [`init`] installs one globally; tests build their
/// own and call [`Log::log`] on it directly.
#[derive(Debug)]
pub struct Logger {
    level: LevelFilter,
    ident: String,
    pid: u32,
    sink: Sink,
}

impl Logger {
    /// Does not touch the syslog socket yet: the first message connects.
    pub fn new(target: Target, level: LevelFilter, ident: &str) -> Self {
        let pid = std::process::id();
        let ident = format::single_line(ident).into_owned();
        let sink = match target {
            Target::Stderr => Sink::Stderr,
            Target::Syslog { socket } => {
                Sink::Syslog(Mutex::new(SyslogSink::new(socket, &ident, pid)))
            }
        };
        Logger {
            level,
            ident,
            pid,
            sink,
        }
    }

    /// Minimum time between reconnect attempts while syslog is unavailable
    /// (default [`DEFAULT_RECONNECT_INTERVAL`]; tests use zero). A connection
    /// that breaks is always retried once immediately, regardless.
    pub fn with_reconnect_interval(mut self, interval: Duration) -> Self {
        if let Sink::Syslog(sink) = &mut self.sink {
            lock(sink).set_reconnect_interval(interval);
        }
        self
    }

    /// How many messages to keep while syslog is unavailable
    /// (default [`DEFAULT_BACKLOG_CAPACITY`]; at least 1).
    pub fn with_backlog_capacity(mut self, capacity: usize) -> Self {
        if let Sink::Syslog(sink) = &mut self.sink {
            lock(sink).set_backlog_capacity(capacity);
        }
        self
    }

    pub fn level(&self) -> LevelFilter {
        self.level
    }

    /// Installs this logger as the process-wide `log` backend and sets the
    /// global maximum level. Fails if a logger is already installed.
    pub fn install(self) -> Result<(), SetLoggerError> {
        let level = self.level;
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(())
    }
}

/// Installs the global logger: `init(Target::syslog(), LevelFilter::Info, "b4d")`.
pub fn init(target: Target, level: LevelFilter, ident: &str) -> Result<(), SetLoggerError> {
    Logger::new(target, level, ident).install()
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Formatted before any lock. `fmt::write` reports a failing Display
        // impl as an error instead of panicking like `to_string` would.
        let mut text = String::new();
        let _ = text.write_fmt(*record.args());
        match &self.sink {
            Sink::Stderr => {
                let line = format::stderr_line(
                    &self.ident,
                    self.pid,
                    record.level(),
                    record.target(),
                    &text,
                );
                // Nowhere to report a failed write to stderr.
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::Syslog(sink) => {
                let stamp = local_stamp();
                let datagram =
                    format::syslog_datagram(record.level(), &stamp, &self.ident, self.pid, &text);
                let mut sink = lock(sink);
                sink.submit(Instant::now(), &stamp, datagram);
                note_waiting(&sink);
            }
        }
    }

    /// Delivers any backlog now if syslog is back (ignores the rate limit).
    fn flush(&self) {
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().lock().flush();
            }
            Sink::Syslog(sink) => {
                let mut sink = lock(sink);
                sink.flush(Instant::now(), &local_stamp());
                note_waiting(&sink);
            }
        }
    }
}

/// The state stays consistent even if a thread panicked while holding the
/// lock (nothing in `SyslogSink` can panic half-way), so poisoning is ignored.
fn lock(sink: &Mutex<SyslogSink>) -> std::sync::MutexGuard<'_, SyslogSink> {
    sink.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Local wall-clock time for the RFC 3164 header. `localtime_r` honours TZ
/// (OpenWrt sets it from /etc/TZ); on failure "Jan  1 00:00:00" is used.
fn local_stamp() -> Stamp {
    // SAFETY: `time` with a null pointer only returns the time.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: `libc::tm` is plain integers plus a nullable pointer; all-zero
    // is a valid value, and `localtime_r` writes only into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call;
    // `localtime_r` is the thread-safe variant.
    let res = unsafe { libc::localtime_r(&now, &mut tm) };
    if res.is_null() {
        // SAFETY: as above.
        tm = unsafe { std::mem::zeroed() };
    }
    Stamp::from_tm(&tm)
}
