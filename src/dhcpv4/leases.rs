//! The lease store (records by address and by client, with an expiry index)
//! and its persistence: a text file, one lease per line, written atomically.
//!
//! File format, one line per active dynamic lease (static hosts come from
//! the configuration and are not stored):
//!
//! ```text
//! <expires unix seconds> <mac aa:bb:cc:dd:ee:ff> <ip> <hostname or *> <client-id hex or *>
//! ```
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
    /// Unix seconds; a record whose time has passed is an expired lease kept
    /// so the client gets the same address back while nobody else needs it.
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

/// Writes the file's text for every active lease at `now`.
pub fn write_leases<'a>(
    out: &mut impl io::Write,
    leases: impl Iterator<Item = &'a Lease>,
    now: u64,
) -> io::Result<()> {
    for lease in leases.filter(|l| l.is_active(now)) {
        write!(
            out,
            "{} {} {} {} ",
            lease.expires,
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
pub fn serialize<'a>(leases: impl Iterator<Item = &'a Lease>, now: u64) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; the text is ASCII but for host names,
    // which are checked labels.
    let _ = write_leases(&mut out, leases, now);
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the file. Returns the leases and how many lines were unusable.
/// Host names are re-checked with `valid_hostname` so a hand-edited file
/// cannot smuggle odd names into DNS.
pub fn parse(text: &str, valid_hostname: impl Fn(&str) -> bool) -> (Vec<Lease>, usize) {
    let mut leases = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(line, &valid_hostname) {
            Some(lease) => leases.push(lease),
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

    #[test]
    fn file_round_trip_keeps_active_leases_only() {
        let mut with_id = lease(102, 3, 1000);
        with_id.client = ClientKey::Id(vec![1, 2, 0, 0, 0, 0, 3]);
        with_id.hostname = Some("printer".into());
        let leases = [lease(100, 1, 1000), lease(101, 2, 10), with_id.clone()];
        let text = serialize(leases.iter(), 500);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("1000 02:00:00:00:00:03 192.168.1.102 printer 01020000000003\n"));
        let (back, bad) = parse(&text, |_| true);
        assert_eq!(bad, 0);
        assert_eq!(back, vec![leases[0].clone(), with_id]);
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let text = "garbage\n1 02:00:00:00:00:01 192.168.1.5 * *\n\
                    1 02:00:00:00:00:1 192.168.1.5 * *\n1 02:00:00:00:00:01 192.168.1.5 bad.name *\n\
                    1 02:00:00:00:00:01 192.168.1.5 * 0\n";
        let (leases, bad) = parse(text, |n| !n.contains('.'));
        assert_eq!(leases.len(), 1);
        assert_eq!(bad, 4);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text, |_| true);
        }

        #[test]
        fn parse_never_panics_on_near_valid_lines(
            expires in any::<u64>(), mac in "[0-9a-f:]{0,20}", ip in "[0-9.]{0,16}", id in "[0-9a-fx*]{0,9}"
        ) {
            let _ = parse(&format!("{expires} {mac} {ip} * {id}"), |_| true);
        }
    }
}
