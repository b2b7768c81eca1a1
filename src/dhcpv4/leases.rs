//! The lease store (records by address and by client, with an expiry index)
//! and its persistence: a text file, one lease per line, written atomically.
//!
//! File format: a first line naming the boot and the wall clock's offset
//! from CLOCK_BOOTTIME when written, then one line per active dynamic lease
//! (static hosts come from the configuration and are not stored):
//!
//! ```text
//! boot-id <kernel boot id> wall-minus-boot <seconds>
//! <expires unix seconds> <mac aa:bb:cc:dd:ee:ff> <ip> <hostname or *> <client-id hex or *>
//! ```
//!
//! Why the first line: the server runs on CLOCK_BOOTTIME seconds, because a
//! router without a battery-backed clock boots with a stale wall clock that
//! NTP then moves forward by days or years: on the wall clock every lease
//! granted before that would expire at once while its client still uses the
//! address, and the pool would hand it to another. The file keeps wall-clock
//! expiries (readable, and still meaningful after a reboot); within the same
//! boot the offset written with them turns them back exactly, whatever the
//! wall clock did in between. A file from another boot (or without the
//! line) is read with the current offset, and none of its leases lasts
//! longer than one granted now: either boot's wall clock may have been
//! years off (a lease file on flash read at a 1970 clock would otherwise
//! hold every address for decades).
//!
//! Writes go to `<file>.tmp`, are fsynced, then renamed over the file and the
//! directory fsynced, so a reader (or b4d after kill -9 or a power cut)
//! sees either the old or the new file, never a mix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::Ipv4Addr;

/// Shared with the DHCPv6 binding file (src/dhcpv6/persist.rs).
pub use crate::atomic_file::write_atomic;

/// Who a lease belongs to: the client identifier when the client sends one
/// (RFC 2131 §4.2: it then identifies the client), else the hardware address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    Id(Vec<u8>),
    Mac([u8; 6]),
}

impl ClientKey {
    pub fn new(client_id: Option<&[u8]>, mac: [u8; 6]) -> ClientKey {
        match client_id {
            Some(id) => ClientKey::Id(id.to_vec()),
            None => ClientKey::Mac(mac),
        }
    }

    pub fn client_id(&self) -> Option<&[u8]> {
        match self {
            ClientKey::Id(id) => Some(id),
            ClientKey::Mac(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub client: ClientKey,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    /// On the server's clock (CLOCK_BOOTTIME seconds; see the file format);
    /// a record whose time has passed is an expired lease kept so the client
    /// gets the same address back while nobody else needs it.
    pub expires: u64,
}

impl Lease {
    pub fn is_active(&self, now: u64) -> bool {
        self.expires > now
    }
}

/// Lease records, at most one per address and one per client.
#[derive(Debug, Default, Clone)]
pub struct LeaseStore {
    by_ip: BTreeMap<Ipv4Addr, Lease>,
    by_client: HashMap<ClientKey, Ipv4Addr>,
    /// (expires, ip) of every record, for the next expiry and for reclaiming
    /// the longest-expired address first.
    by_expiry: BTreeSet<(u64, Ipv4Addr)>,
}

impl LeaseStore {
    pub fn by_ip(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }

    pub fn by_client(&self, client: &ClientKey) -> Option<&Lease> {
        self.by_client.get(client).and_then(|ip| self.by_ip.get(ip))
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_ip.values()
    }

    /// Inserts or replaces; any other record of the same client or the same
    /// address goes. Returns the addresses whose record disappeared.
    pub fn insert(&mut self, lease: Lease) -> Option<Ipv4Addr> {
        let previous_ip = self
            .by_client
            .get(&lease.client)
            .copied()
            .filter(|&ip| ip != lease.ip);
        if let Some(ip) = previous_ip {
            self.remove(ip);
        }
        self.remove(lease.ip);
        self.by_client.insert(lease.client.clone(), lease.ip);
        self.by_expiry.insert((lease.expires, lease.ip));
        self.by_ip.insert(lease.ip, lease);
        previous_ip
    }

    pub fn remove(&mut self, ip: Ipv4Addr) -> Option<Lease> {
        let lease = self.by_ip.remove(&ip)?;
        self.by_client.remove(&lease.client);
        self.by_expiry.remove(&(lease.expires, ip));
        Some(lease)
    }

    /// Sets a record's expiry (renewal, or `now` for a release).
    pub fn set_expiry(&mut self, ip: Ipv4Addr, expires: u64) {
        if let Some(lease) = self.by_ip.get_mut(&ip) {
            self.by_expiry.remove(&(lease.expires, ip));
            lease.expires = expires;
            self.by_expiry.insert((expires, ip));
        }
    }

    /// The earliest expiry strictly after `now`.
    pub fn next_expiry_after(&self, now: u64) -> Option<u64> {
        self.by_expiry
            .range((now + 1, Ipv4Addr::UNSPECIFIED)..)
            .next()
            .map(|&(t, _)| t)
    }

    /// Whether some record expired in `(after, upto]`.
    pub fn any_expired_between(&self, after: u64, upto: u64) -> bool {
        self.by_expiry
            .range((after + 1, Ipv4Addr::UNSPECIFIED)..)
            .next()
            .is_some_and(|&(t, _)| t <= upto)
    }

    /// The address whose record expired longest ago, if any has expired;
    /// `eligible` filters (e.g. pool addresses only).
    pub fn oldest_expired(
        &self,
        now: u64,
        eligible: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        self.by_expiry
            .iter()
            .take_while(|&&(t, _)| t <= now)
            .map(|&(_, ip)| ip)
            .find(|&ip| eligible(ip))
    }

    pub fn active_count(&self, now: u64) -> usize {
        self.by_ip.values().filter(|l| l.is_active(now)).count()
    }
}

/// `aa:bb:cc:dd:ee:ff`, without allocating.
pub fn format_mac(mac: &[u8; 6]) -> impl std::fmt::Display + '_ {
    struct Mac<'a>(&'a [u8; 6]);
    impl std::fmt::Display for Mac<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let [a, b, c, d, e, g] = self.0;
            write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
        }
    }
    Mac(mac)
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.is_empty() || text.len() > 512 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// How the file's wall-clock times map to the server's clock: the wall
/// clock minus CLOCK_BOOTTIME, in seconds, during boot `boot_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBase {
    pub boot_id: String,
    pub wall_minus_boot: i64,
}

impl TimeBase {
    pub fn to_wall(&self, boot_secs: u64) -> u64 {
        let wall = i64::try_from(boot_secs).unwrap_or(i64::MAX);
        wall.saturating_add(self.wall_minus_boot).max(0) as u64
    }

    pub fn to_boot(&self, wall_secs: u64) -> u64 {
        let wall = i64::try_from(wall_secs).unwrap_or(i64::MAX);
        wall.saturating_sub(self.wall_minus_boot).max(0) as u64
    }

    fn line(&self) -> String {
        format!(
            "boot-id {} wall-minus-boot {}",
            self.boot_id, self.wall_minus_boot
        )
    }

    fn parse_line(line: &str) -> Option<TimeBase> {
        let mut fields = line.split_ascii_whitespace();
        let (Some("boot-id"), Some(id), Some("wall-minus-boot"), Some(offset), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return None;
        };
        Some(TimeBase {
            boot_id: id.to_string(),
            wall_minus_boot: offset.parse().ok()?,
        })
    }
}

/// Writes the file's text for every active lease at `now` (the server's
/// clock), with expiries on the wall clock as `base` maps them.
pub fn write_leases<'a>(
    out: &mut impl io::Write,
    leases: impl Iterator<Item = &'a Lease>,
    now: u64,
    base: &TimeBase,
) -> io::Result<()> {
    writeln!(out, "{}", base.line())?;
    for lease in leases.filter(|l| l.is_active(now)) {
        write!(
            out,
            "{} {} {} {} ",
            base.to_wall(lease.expires),
            format_mac(&lease.mac),
            lease.ip,
            lease.hostname.as_deref().unwrap_or("*"),
        )?;
        match lease.client.client_id() {
            Some(id) => id.iter().try_for_each(|b| write!(out, "{b:02x}"))?,
            None => out.write_all(b"*")?,
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The file's text, as a string (tests, small tools).
pub fn serialize<'a>(leases: impl Iterator<Item = &'a Lease>, now: u64, base: &TimeBase) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; the text is ASCII but for host names,
    // which are checked labels.
    let _ = write_leases(&mut out, leases, now, base);
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the file, with expiries on the server's clock: through the
/// file's own time base when it is from boot `current.boot_id`, else
/// through `current` and at most `latest_expiry` (now plus the lease
/// time). Returns the leases and how many lines were unusable.
/// Host names are re-checked with `valid_hostname` so a hand-edited file
/// cannot smuggle odd names into DNS.
pub fn parse(
    text: &str,
    current: &TimeBase,
    latest_expiry: u64,
    valid_hostname: impl Fn(&str) -> bool,
) -> (Vec<Lease>, usize) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    let written = lines.peek().and_then(|first| TimeBase::parse_line(first));
    if written.is_some() {
        lines.next();
    }
    let this_boot = written.filter(|w| w.boot_id == current.boot_id);
    let latest_expiry = if this_boot.is_some() {
        u64::MAX
    } else {
        latest_expiry
    };
    let base = this_boot.unwrap_or_else(|| current.clone());
    let mut leases = Vec::new();
    let mut bad = 0;
    for line in lines {
        match parse_line(line, &valid_hostname) {
            Some(mut lease) => {
                lease.expires = base.to_boot(lease.expires).min(latest_expiry);
                leases.push(lease);
            }
            None => bad += 1,
        }
    }
    (leases, bad)
}

fn parse_line(line: &str, valid_hostname: &impl Fn(&str) -> bool) -> Option<Lease> {
    let mut fields = line.split_ascii_whitespace();
    let expires = fields.next()?.parse().ok()?;
    let mac = parse_mac(fields.next()?)?;
    let ip = fields.next()?.parse().ok()?;
    let hostname = match fields.next()? {
        "*" => None,
        name if valid_hostname(name) => Some(name.to_string()),
        _ => return None,
    };
    let client = match fields.next()? {
        "*" => ClientKey::Mac(mac),
        hex => ClientKey::Id(parse_hex(hex)?),
    };
    fields.next().is_none().then_some(Lease {
        client,
        mac,
        ip,
        hostname,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(last: u8, mac_last: u8, expires: u64) -> Lease {
        Lease {
            client: ClientKey::Mac([2, 0, 0, 0, 0, mac_last]),
            mac: [2, 0, 0, 0, 0, mac_last],
            ip: Ipv4Addr::new(192, 168, 1, last),
            hostname: None,
            expires,
        }
    }

    #[test]
    fn one_record_per_client_and_per_address() {
        let mut store = LeaseStore::default();
        store.insert(lease(100, 1, 50));
        // The same client moving: its old record goes.
        assert_eq!(
            store.insert(lease(101, 1, 60)),
            Some(Ipv4Addr::new(192, 168, 1, 100))
        );
        assert!(store.by_ip(Ipv4Addr::new(192, 168, 1, 100)).is_none());
        // Another client taking the address: the first client loses it.
        store.insert(lease(101, 2, 70));
        assert_eq!(store.len(), 1);
        assert!(store
            .by_client(&ClientKey::Mac([2, 0, 0, 0, 0, 1]))
            .is_none());
        assert_eq!(store.next_expiry_after(0), Some(70));
        store.set_expiry(Ipv4Addr::new(192, 168, 1, 101), 5);
        assert_eq!(store.next_expiry_after(5), None);
        assert!(store.any_expired_between(0, 5));
        assert!(!store.any_expired_between(5, 100));
        assert_eq!(
            store.oldest_expired(10, |_| true),
            Some(Ipv4Addr::new(192, 168, 1, 101))
        );
    }

    /// Boot `id` with the wall clock `wall_minus_boot` seconds ahead.
    fn base(id: &str, wall_minus_boot: i64) -> TimeBase {
        TimeBase {
            boot_id: id.into(),
            wall_minus_boot,
        }
    }

    #[test]
    fn file_round_trip_keeps_active_leases_only() {
        let mut with_id = lease(102, 3, 1000);
        with_id.client = ClientKey::Id(vec![1, 2, 0, 0, 0, 0, 3]);
        with_id.hostname = Some("printer".into());
        let leases = [lease(100, 1, 1000), lease(101, 2, 10), with_id.clone()];
        let boot = base("boot-a", 1_700_000_000);
        let text = serialize(leases.iter(), 500, &boot);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("boot-id boot-a wall-minus-boot 1700000000")
        );
        assert_eq!(lines.count(), 2, "{text}");
        assert!(
            text.contains("1700001000 02:00:00:00:00:03 192.168.1.102 printer 01020000000003\n")
        );
        let (back, bad) = parse(&text, &boot, 0, |_| true);
        assert_eq!(bad, 0);
        assert_eq!(back, vec![leases[0].clone(), with_id]);
    }

    /// A router boots with its wall clock years behind; NTP moves it on
    /// after the leases were granted and written; b4d restarts. The leases
    /// keep their expiries on the server's clock: the file's own offset,
    /// not the moved wall clock, turns them back.
    #[test]
    fn a_wall_clock_jump_within_the_boot_changes_no_expiry() {
        let granted = [lease(100, 1, 43_260), lease(101, 2, 43_300)];
        let before_ntp = base("boot-a", 1_500_000_000);
        let text = serialize(granted.iter(), 60, &before_ntp);
        let after_ntp = base("boot-a", 1_600_000_000);
        let (back, bad) = parse(&text, &after_ntp, 0, |_| true);
        assert_eq!(bad, 0);
        assert_eq!(back, granted);
        // And backwards a day.
        let (back, _) = parse(&text, &base("boot-a", 1_499_913_600), 0, |_| true);
        assert_eq!(back, granted);
    }

    /// A file from another boot (a lease file on flash) or from before the
    /// first line existed is read on the wall clock as it is now.
    #[test]
    fn a_file_from_another_boot_or_without_a_time_base_uses_the_wall_clock_now() {
        let granted = [lease(100, 1, 43_260)];
        let text = serialize(granted.iter(), 60, &base("boot-a", 1_500_000_000));
        // Rebooted 100 s of wall time later, now 30 s into the new boot,
        // where a 12 h lease granted now would last until FRESH.
        let now = base("boot-b", 1_500_000_070);
        const FRESH: u64 = 30 + 43_200;
        let (back, _) = parse(&text, &now, FRESH, |_| true);
        assert_eq!(back[0].expires, 43_260 - 70);
        let old = "1500043260 02:00:00:00:00:01 192.168.1.100 * *\n";
        let (back, bad) = parse(old, &now, FRESH, |_| true);
        assert_eq!((back[0].expires, bad), (43_260 - 70, 0));
        // Long expired on the wall clock: expired at once, no underflow.
        let (back, _) = parse(
            "5 02:00:00:00:00:01 192.168.1.100 * *\n",
            &now,
            FRESH,
            |_| true,
        );
        assert_eq!(back[0].expires, 0);
    }

    /// A lease file on flash, written at a right clock, read after a reboot
    /// at a wall clock 50 years behind (no battery-backed clock, NTP not
    /// yet heard): its leases would look 50 years long and hold every
    /// address until the next restart. None outlasts a fresh lease.
    #[test]
    fn a_file_from_another_boot_has_no_lease_longer_than_a_fresh_one() {
        let granted = [lease(100, 1, 43_260), lease(101, 2, 600)];
        let text = serialize(granted.iter(), 60, &base("boot-a", 1_700_000_000));
        let in_1970 = base("boot-b", 0);
        let (back, _) = parse(&text, &in_1970, 30 + 43_200, |_| true);
        let expiries: Vec<_> = back.iter().map(|l| l.expires).collect();
        assert_eq!(expiries, [43_230, 43_230]);
        // The same boot's file is exact whatever the bound.
        let (back, _) = parse(&text, &base("boot-a", 0), 30, |_| true);
        assert_eq!(back, granted);
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let text = "garbage\n1 02:00:00:00:00:01 192.168.1.5 * *\n\
                    1 02:00:00:00:00:1 192.168.1.5 * *\n1 02:00:00:00:00:01 192.168.1.5 bad.name *\n\
                    1 02:00:00:00:00:01 192.168.1.5 * 0\n";
        let (leases, bad) = parse(text, &base("b", 0), u64::MAX, |n| !n.contains('.'));
        assert_eq!(leases.len(), 1);
        assert_eq!(bad, 4);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,300}", offset in any::<i64>()) {
            let _ = parse(&text, &base("b", offset), u64::MAX, |_| true);
        }

        #[test]
        fn parse_never_panics_on_near_valid_lines(
            expires in any::<u64>(), mac in "[0-9a-f:]{0,20}", ip in "[0-9.]{0,16}", id in "[0-9a-fx*]{0,9}",
            written in any::<i64>(), offset in any::<i64>()
        ) {
            let text = format!("boot-id b wall-minus-boot {written}\n{expires} {mac} {ip} * {id}");
            let _ = parse(&text, &base("b", offset), u64::MAX, |_| true);
        }

        #[test]
        fn times_survive_the_round_trip(expires in 1u64..u32::MAX as u64 * 4, offset in -1_000_000i64..4_000_000_000) {
            let b = base("b", offset);
            let mut l = lease(100, 1, 0);
            l.expires = expires;
            let (back, _) = parse(&serialize([l.clone()].iter(), 0, &b), &b, 0, |_| true);
            prop_assert_eq!(back, vec![l]);
        }
    }
}
