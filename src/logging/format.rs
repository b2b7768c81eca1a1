//! Pure formatting: syslog datagrams (RFC 3164) and stderr lines.
//!
//! No clocks and no sockets here: the caller passes the wall-clock [`Stamp`],
//! so every function is total and unit-testable.

use std::borrow::Cow;
use std::fmt::Write as _;

use log::Level;

/// RFC 3164 §4.1: "The total length of the packet MUST be 1024 bytes or less."
/// OpenWrt's logd reads at most 1024 bytes per datagram, too.
pub const MAX_DATAGRAM: usize = 1024;

/// RFC 3164 §4.1.1 facility code 3, "system daemons".
const FACILITY_DAEMON: u8 = 3;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Local wall-clock time as RFC 3164 §4.1.2 wants it (no year, no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// 0 = January .. 11 = December (as in `struct tm`).
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl Stamp {
    /// Converts a `struct tm` from `localtime_r`, clamping anything odd
    /// (a leap second, a broken libc) instead of panicking.
    pub fn from_tm(tm: &libc::tm) -> Self {
        let clamp =
            |v: libc::c_int, lo: u8, hi: u8| -> u8 { u8::try_from(v).unwrap_or(lo).clamp(lo, hi) };
        Stamp {
            month: clamp(tm.tm_mon, 0, 11),
            day: clamp(tm.tm_mday, 1, 31),
            hour: clamp(tm.tm_hour, 0, 23),
            minute: clamp(tm.tm_min, 0, 59),
            second: clamp(tm.tm_sec, 0, 60),
        }
    }
}

/// Syslog severity for a log level (RFC 3164 §4.1.1, table 2).
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// PRI value: facility * 8 + severity (RFC 3164 §4.1.1).
pub fn pri(level: Level) -> u8 {
    FACILITY_DAEMON * 8 + severity(level)
}

/// Makes `text` a single line: logd shows one line per datagram, and a NUL
/// would cut the message short in C code. A trailing newline is dropped,
/// CR LF becomes one space, every other control character (tab excepted)
/// becomes a space. Borrows when there is nothing to replace.
pub fn single_line(text: &str) -> Cow<'_, str> {
    let text = text.trim_end_matches(['\n', '\r']);
    let is_bad = |c: char| c.is_control() && c != '\t';
    if !text.contains(is_bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue; // the '\n' that follows becomes the space
        }
        out.push(if is_bad(c) { ' ' } else { c });
    }
    Cow::Owned(out)
}

/// Shortens `s` to at most `max` bytes without splitting a UTF-8 sequence.
pub fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    // Terminates: index 0 is always a char boundary.
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

/// One RFC 3164 datagram: `<PRI>Mmm dd hh:mm:ss ident[pid]: message`,
/// on one line, at most [`MAX_DATAGRAM`] bytes.
pub fn syslog_datagram(level: Level, stamp: &Stamp, ident: &str, pid: u32, text: &str) -> String {
    let month = MONTHS.get(usize::from(stamp.month)).unwrap_or(&"Jan");
    let text = single_line(text);
    let mut out = String::with_capacity(32 + ident.len() + text.len());
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "<{}>{} {:>2} {:02}:{:02}:{:02} {}[{}]: {}",
        pri(level),
        month,
        stamp.day,
        stamp.hour,
        stamp.minute,
        stamp.second,
        ident,
        pid,
        text
    );
    truncate_utf8(&mut out, MAX_DATAGRAM);
    out
}

/// Drops the crate name from a log target: `b4d::dhcpv6::driver` becomes
/// `dhcpv6::driver`, which still says which subsystem spoke. Targets of
/// other crates are kept whole.
pub fn short_target(target: &str) -> &str {
    target
        .strip_prefix(env!("CARGO_CRATE_NAME"))
        .and_then(|rest| rest.strip_prefix("::"))
        .unwrap_or(target)
}

/// One stderr line, newline included: `b4d[<pid>] <LEVEL> <target>: message`.
/// No timestamp: procd and journald add their own.
pub fn stderr_line(ident: &str, pid: u32, level: Level, target: &str, text: &str) -> String {
    format!(
        "{}[{}] {} {}: {}\n",
        ident,
        pid,
        level,
        short_target(target),
        single_line(text)
    )
}

/// The notice sent ahead of the backlog when messages had to be dropped.
pub fn lost_notice(dropped: u64) -> String {
    format!("{dropped} log messages lost while syslog was unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAMP: Stamp = Stamp {
        month: 1,
        day: 5,
        hour: 7,
        minute: 3,
        second: 9,
    };

    #[test]
    fn pri_is_daemon_facility_plus_severity() {
        assert_eq!(pri(Level::Error), 27);
        assert_eq!(pri(Level::Warn), 28);
        assert_eq!(pri(Level::Info), 30);
        assert_eq!(pri(Level::Debug), 31);
        assert_eq!(pri(Level::Trace), 31);
    }

    #[test]
    fn datagram_has_rfc3164_header_with_space_padded_day() {
        let d = syslog_datagram(Level::Info, &STAMP, "b4d", 42, "tunnel up");
        assert_eq!(d, "<30>Feb  5 07:03:09 b4d[42]: tunnel up");
        let two_digit_day = Stamp { day: 17, ..STAMP };
        let d = syslog_datagram(Level::Error, &two_digit_day, "b4d", 1, "x");
        assert_eq!(d, "<27>Feb 17 07:03:09 b4d[1]: x");
    }

    #[test]
    fn odd_tm_values_are_clamped() {
        // SAFETY: `libc::tm` is plain integers (and a nullable pointer on
        // some targets); all-zero is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_mon = 12;
        tm.tm_mday = -3;
        tm.tm_sec = 61;
        let s = Stamp::from_tm(&tm);
        assert_eq!((s.month, s.day, s.second), (11, 1, 60));
    }

    #[test]
    fn newlines_become_spaces_and_trailing_newline_goes() {
        assert_eq!(single_line("a\nb\r\nc\rd\n"), "a b c d");
        assert_eq!(single_line("nul\0here\ttab"), "nul here\ttab");
        assert!(matches!(single_line("clean"), Cow::Borrowed("clean")));
    }

    #[test]
    fn truncation_respects_utf8() {
        let mut s = "aé".to_string(); // 'é' is two bytes: 1..3
        truncate_utf8(&mut s, 2);
        assert_eq!(s, "a");
        let mut s = "abc".to_string();
        truncate_utf8(&mut s, 10);
        assert_eq!(s, "abc");
    }

    #[test]
    fn stderr_line_is_terse() {
        let l = stderr_line("b4d", 7, Level::Warn, "b4d::dhcpv6::driver", "no reply\n");
        assert_eq!(l, "b4d[7] WARN dhcpv6::driver: no reply\n");
        let l = stderr_line("b4d", 7, Level::Info, "b4d", "hi");
        assert_eq!(l, "b4d[7] INFO b4d: hi\n");
        let l = stderr_line("b4d", 7, Level::Info, "b4dx::y", "hi");
        assert_eq!(l, "b4d[7] INFO b4dx::y: hi\n");
    }

    proptest! {
        #[test]
        fn datagram_is_one_bounded_line(text in ".{0,1200}", ident in "[a-z]{0,40}") {
            let d = syslog_datagram(Level::Debug, &STAMP, &ident, u32::MAX, &text);
            prop_assert!(d.len() <= MAX_DATAGRAM);
            prop_assert!(!d.contains(['\n', '\r', '\0']));
            prop_assert!(d.starts_with("<31>Feb  5 07:03:09 "));
        }

        #[test]
        fn truncation_keeps_the_longest_valid_prefix(s in ".{0,300}", max in 0usize..400) {
            let mut t = s.clone();
            truncate_utf8(&mut t, max);
            prop_assert!(t.len() <= max);
            prop_assert!(s.starts_with(&t));
            // At most one partial character (<= 3 bytes) was cut beyond `max`.
            prop_assert!(t.len() == s.len() || t.len() + 3 >= max);
        }
    }
}
