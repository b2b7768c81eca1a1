//! Scenario tests through [`Logger`], with real AF_UNIX sockets standing in
//! for logd: bind a listener, stop it, start it again, and check what arrives.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Record};

use super::format::MAX_DATAGRAM;
use super::{Logger, Sink, Target};

// ---- helpers shared with `syslog::tests` ----

/// A private directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("b4d-log-{}-{}-{}", std::process::id(), tag, n));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Where the fake syslogd listens.
    pub fn socket(&self) -> PathBuf {
        self.0.join("log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake syslogd: a datagram socket bound at `path`.
pub fn listen(path: &Path) -> UnixDatagram {
    let rx = UnixDatagram::bind(path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    rx
}

/// The next datagram, as text; fails the test after the read timeout.
pub fn recv(rx: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = rx.recv(&mut buf).expect("expected a syslog datagram");
    String::from_utf8(buf[..n].to_vec()).expect("datagram is not UTF-8")
}

/// True if nothing is waiting on `rx` right now.
pub fn silent(rx: &UnixDatagram) -> bool {
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let nothing = rx.recv(&mut buf).is_err();
    rx.set_nonblocking(false).unwrap();
    nothing
}

// ---- helpers for this file ----

const IDENT: &str = "b4d-test";

fn syslog_logger(path: PathBuf) -> Logger {
    Logger::new(Target::Syslog { socket: path }, LevelFilter::Trace, IDENT)
}

fn emit(logger: &Logger, level: Level, text: &str) {
    logger.log(
        &Record::builder()
            .args(format_args!("{text}"))
            .level(level)
            .target("b4d::test")
            .build(),
    );
}

fn with_sink<T>(logger: &Logger, f: impl FnOnce(&super::SyslogSink) -> T) -> T {
    match &logger.sink {
        Sink::Syslog(sink) => f(&super::lock(sink)),
        Sink::Stderr => panic!("not a syslog logger"),
    }
}

/// Splits `<PRI>Mmm dd hh:mm:ss ident[pid]: text` and checks its shape.
fn parse(datagram: &str) -> (u8, String) {
    let rest = datagram.strip_prefix('<').expect("no PRI");
    let (pri, rest) = rest.split_once('>').expect("unterminated PRI");
    let (stamp, rest) = rest.split_at(15);
    let b = stamp.as_bytes();
    let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    assert!(months.contains(&stamp[..3]), "month in {stamp:?}");
    assert!(b[3] == b' ' && (b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit());
    assert!(
        b[6] == b' ' && b[9] == b':' && b[12] == b':',
        "time in {stamp:?}"
    );
    let prefix = format!(" {}[{}]: ", IDENT, std::process::id());
    let text = rest.strip_prefix(&prefix).expect("ident[pid] prefix");
    (pri.parse().expect("numeric PRI"), text.to_owned())
}

fn text_of(datagram: &str) -> String {
    parse(datagram).1
}

/// Reads everything `logger` has sent or still holds, like a logd that keeps
/// up: a burst larger than the socket's receive queue (net.unix.max_dgram_qlen)
/// meets EAGAIN and waits in the backlog, so flush again after each read.
fn receive_all(logger: &Logger, rx: &UnixDatagram) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    rx.set_nonblocking(true).unwrap();
    for _ in 0..10_000 {
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        if with_sink(logger, |s| (s.pending(), s.dropped())) == (0, 0) {
            break;
        }
        logger.flush();
    }
    while let Ok(n) = rx.recv(&mut buf) {
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    rx.set_nonblocking(false).unwrap();
    got
}

// ---- scenarios ----

#[test]
fn syslog_gets_rfc3164_datagram_with_daemon_facility_per_level() {
    let dir = TempDir::new("levels");
    let rx = listen(&dir.socket());
    let logger = syslog_logger(dir.socket());

    for (level, pri) in [
        (Level::Error, 27),
        (Level::Warn, 28),
        (Level::Info, 30),
        (Level::Debug, 31),
        (Level::Trace, 31),
    ] {
        emit(&logger, level, &format!("{level} message"));
        assert_eq!(parse(&recv(&rx)), (pri, format!("{level} message")));
    }
}

#[test]
fn messages_below_the_level_are_not_sent() {
    let dir = TempDir::new("filter");
    let rx = listen(&dir.socket());
    let logger = Logger::new(
        Target::Syslog {
            socket: dir.socket(),
        },
        LevelFilter::Info,
        IDENT,
    );
    emit(&logger, Level::Debug, "chatty");
    assert!(silent(&rx));
    emit(&logger, Level::Info, "useful");
    assert_eq!(text_of(&recv(&rx)), "useful");
}

#[test]
fn syslog_restart_queues_messages_then_delivers_them_in_order() {
    let dir = TempDir::new("restart");
    let interval = Duration::from_millis(300);
    let logger = syslog_logger(dir.socket()).with_reconnect_interval(interval);

    // syslogd running.
    let rx = listen(&dir.socket());
    emit(&logger, Level::Info, "before");
    assert_eq!(text_of(&recv(&rx)), "before");

    // syslogd stopped: socket closed, file removed.
    drop(rx);
    std::fs::remove_file(dir.socket()).unwrap();
    let started = Instant::now();
    for text in ["down 1", "down 2", "down 3"] {
        emit(&logger, Level::Warn, text);
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "logging blocked"
    );
    assert_eq!(with_sink(&logger, |s| (s.pending(), s.dropped())), (3, 0));

    // syslogd restarted; the first call is still inside the rate-limit
    // window, so it only queues.
    let rx = listen(&dir.socket());
    emit(&logger, Level::Info, "too early");
    assert!(silent(&rx));

    // After the window, the next call reconnects and delivers everything.
    thread::sleep(interval + Duration::from_millis(50));
    emit(&logger, Level::Info, "back");
    for text in ["down 1", "down 2", "down 3", "too early", "back"] {
        assert_eq!(text_of(&recv(&rx)), text);
    }
    assert!(silent(&rx));
    assert_eq!(with_sink(&logger, |s| s.pending()), 0);
}

#[test]
fn overflow_is_reported_before_the_surviving_backlog() {
    let dir = TempDir::new("overflow");
    let logger = syslog_logger(dir.socket()).with_reconnect_interval(Duration::ZERO);

    // No syslogd: the default 128-message backlog keeps the newest.
    for i in 0..130 {
        emit(&logger, Level::Info, &format!("m{i}"));
    }
    assert_eq!(with_sink(&logger, |s| (s.pending(), s.dropped())), (128, 2));

    let rx = listen(&dir.socket());
    emit(&logger, Level::Info, "new");
    let got = receive_all(&logger, &rx);
    assert_eq!(
        parse(&got[0]),
        (
            28,
            "2 log messages lost while syslog was unavailable".into()
        )
    );
    let texts: Vec<_> = got[1..].iter().map(|d| text_of(d)).collect();
    let mut want: Vec<_> = (2..130).map(|i| format!("m{i}")).collect();
    want.push("new".into());
    assert_eq!(texts, want);
}

#[test]
fn small_backlog_capacity_and_explicit_flush() {
    let dir = TempDir::new("flush");
    let logger = syslog_logger(dir.socket())
        .with_backlog_capacity(2)
        .with_reconnect_interval(Duration::from_secs(3600));
    for text in ["a", "b", "c"] {
        emit(&logger, Level::Error, text);
    }
    // The hour-long rate limit would hold these back; `flush` does not wait.
    let rx = listen(&dir.socket());
    logger.flush();
    assert_eq!(
        text_of(&recv(&rx)),
        "1 log messages lost while syslog was unavailable"
    );
    assert_eq!(text_of(&recv(&rx)), "b");
    assert_eq!(text_of(&recv(&rx)), "c");
    assert!(silent(&rx));
}

#[test]
fn long_messages_are_truncated_at_a_utf8_boundary() {
    let dir = TempDir::new("long");
    let rx = listen(&dir.socket());
    let logger = syslog_logger(dir.socket());

    let long = "é".repeat(1500); // 3000 bytes
    emit(&logger, Level::Info, &long);
    let got = recv(&rx); // `recv` already checked it is valid UTF-8
    assert!(got.len() <= MAX_DATAGRAM);
    assert!(got.len() >= MAX_DATAGRAM - 1, "cut more than one char");
    let text = text_of(&got);
    assert!(!text.is_empty() && text.chars().all(|c| c == 'é'));
}

#[test]
fn multi_line_messages_arrive_as_one_line() {
    let dir = TempDir::new("newline");
    let rx = listen(&dir.socket());
    let logger = syslog_logger(dir.socket());

    emit(
        &logger,
        Level::Error,
        "lease failed:\ncaused by: timeout\r\n",
    );
    assert_eq!(text_of(&recv(&rx)), "lease failed: caused by: timeout");
}

#[test]
fn socket_that_never_exists_neither_panics_nor_blocks() {
    let missing = PathBuf::from("/nonexistent-b4d-test-dir/log");
    let started = Instant::now();
    for interval in [Duration::ZERO, Duration::from_secs(1)] {
        let logger = syslog_logger(missing.clone()).with_reconnect_interval(interval);
        for i in 0..500 {
            emit(&logger, Level::Info, &format!("into the void {i}"));
        }
        logger.flush();
        assert_eq!(
            with_sink(&logger, |s| (s.pending(), s.dropped())),
            (128, 372)
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "logging blocked"
    );
}

#[test]
fn concurrent_loggers_lose_nothing_and_keep_per_thread_order() {
    const THREADS: usize = 4;
    const EACH: usize = 50;
    let dir = TempDir::new("threads");
    let rx = listen(&dir.socket());
    let logger = Arc::new(
        syslog_logger(dir.socket())
            .with_backlog_capacity(THREADS * EACH)
            .with_reconnect_interval(Duration::ZERO),
    );

    let reader = thread::spawn(move || {
        (0..THREADS * EACH)
            .map(|_| text_of(&recv(&rx)))
            .collect::<Vec<_>>()
    });
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let logger = Arc::clone(&logger);
            thread::spawn(move || {
                for i in 0..EACH {
                    emit(&logger, Level::Info, &format!("t{t} {i}"));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // Whatever hit a full receive queue is still pending; push it out.
    for _ in 0..10_000 {
        if with_sink(&logger, |s| s.pending()) == 0 {
            break;
        }
        logger.flush();
        thread::yield_now();
    }
    let got = reader.join().unwrap();
    for t in 0..THREADS {
        let mine: Vec<_> = got
            .iter()
            .filter(|m| m.starts_with(&format!("t{t} ")))
            .cloned()
            .collect();
        let want: Vec<_> = (0..EACH).map(|i| format!("t{t} {i}")).collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn stderr_target_writes_without_panicking() {
    let logger = Logger::new(Target::Stderr, LevelFilter::Debug, "b4d");
    assert_eq!(logger.level(), LevelFilter::Debug);
    emit(&logger, Level::Warn, "to stderr\nsecond line");
    emit(&logger, Level::Trace, "filtered out");
    logger.flush();
}

#[test]
fn a_failing_display_impl_does_not_panic_the_logger() {
    struct Broken;
    impl std::fmt::Display for Broken {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            Err(std::fmt::Error)
        }
    }
    let dir = TempDir::new("broken");
    let rx = listen(&dir.socket());
    let logger = syslog_logger(dir.socket());
    logger.log(
        &Record::builder()
            .args(format_args!("before {}", Broken))
            .level(Level::Info)
            .build(),
    );
    assert_eq!(text_of(&recv(&rx)), "before ");
}
