//! Keeping the DHCPv6 binding across a b4d restart (kill -9, crash, procd
//! respawn), the way `lan.lease_file` keeps the DHCPv4 leases: a small text
//! file in RAM (`wan.lease_file`, default /tmp/b4d.dhcpv6), rewritten
//! atomically whenever the binding or the network information changes and
//! removed when there is nothing left to keep.
//!
//! An `Instant` means nothing to another process, so lifetimes are stored as
//! seconds remaining at a reading of CLOCK_BOOTTIME, which keeps counting
//! across a restart (and through suspend) but starts again at boot; the
//! kernel's boot id says which boot the reading belongs to. A file from
//! another boot, for another DUID or another WAN device, or whose every
//! lifetime has passed is ignored; so is a malformed one (b4d then simply
//! starts fresh). The device matters even with the same DUID: a binding is
//! for one link (RFC 8415 §18.2.12), and `wan.device` changed between a
//! crash and the restart (an OpenWrt VLAN device keeps its parent's MAC, so
//! the DUID-LL stays) would otherwise be published, addresses and all, on a
//! link where it was never granted until the Rebind's answer. A file
//! without the line (written by an older b4d) is taken as this device's.
//!
//! ```text
//! b4d-dhcpv6 1
//! boot-id 6a1f0c7e-...          kernel boot id at the time of writing
//! saved-at-ms 123456789         CLOCK_BOOTTIME at the time of writing
//! client-id 00:03:00:01:02:...  our DUID, hex as in the log
//! wan wan                       the WAN device the binding was made on
//! sol-max-rt 3600
//! server-id 00:01:00:01:2a:...  the binding (absent without one)
//! server fe80::1
//! updated-ago 3                 seconds since the last Reply
//! t1 997                        seconds left, or "infinite"
//! t2 1597
//! address 2001:db8:1::100 2997 3997          preferred, valid left
//! prefix 2001:db8:100::/56 2997 3997
//! dns 2001:db8::53
//! domain example.net
//! aftr aftr.example.net
//! ```
//!
//! `serialize`, `parse` and `Stored::rebase` are pure (time and the clock
//! reading are parameters); `BootClock::read`, `load`, `save` do the I/O.

use std::fmt::{self, Write as _};
use std::io;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::duid;
use super::lease::{DelegatedPrefix, Lease, LeasedAddress, NetworkInfo};
pub use crate::boot_clock::BootClock;

/// The first line: format name and version.
pub const HEADER: &str = "b4d-dhcpv6 1";

/// A file larger than this is not ours (a real one is well under 2 KiB).
const MAX_FILE_LEN: usize = 64 * 1024;

/// What the client keeps: the binding, if any, and what the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub client_id: Vec<u8>,
    pub lease: Option<Lease>,
    pub info: NetworkInfo,
    /// SOL_MAX_RT as last set by a server (RFC 8415 §21.24).
    pub sol_max_rt: Duration,
}

impl Saved {
    /// Nothing worth a file: no binding and no information.
    pub fn is_empty(&self) -> bool {
        self.lease.as_ref().is_none_or(Lease::is_empty) && self.info == NetworkInfo::default()
    }
}

/// Seconds left at the time of writing; `None` is infinity.
type Left = Option<u64>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredLease {
    server_id: Vec<u8>,
    server_addr: Ipv6Addr,
    updated_ago: u64,
    t1: Left,
    t2: Left,
    addresses: Vec<(Ipv6Addr, Left, Left)>,
    prefixes: Vec<(Ipv6Addr, u8, Left, Left)>,
}

/// The file as read, lifetimes still relative to when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    boot_id: String,
    saved_at: Duration,
    client_id: Vec<u8>,
    wan_device: Option<String>,
    sol_max_rt: Option<Duration>,
    lease: Option<StoredLease>,
    info: NetworkInfo,
}

/// Why a file was not used. Each is one log line; b4d then starts fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    Malformed(String),
    OtherBoot,
    OtherClient,
    OtherDevice(String),
    Expired,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::Malformed(why) => write!(f, "malformed ({why})"),
            Ignored::OtherBoot => f.write_str("written before the last reboot"),
            Ignored::OtherClient => f.write_str("for another DUID"),
            Ignored::OtherDevice(device) => write!(f, "made on WAN device {device}"),
            Ignored::Expired => f.write_str("every lifetime has ended"),
        }
    }
}

fn left(deadline: Option<Instant>, now: Instant) -> Left {
    deadline.map(|d| d.saturating_duration_since(now).as_secs())
}

fn write_left(out: &mut String, l: Left) {
    match l {
        Some(s) => {
            let _ = write!(out, " {s}");
        }
        None => out.push_str(" infinite"),
    }
}

/// A name fit for one whitespace-separated field (domain names from the
/// wire are ASCII, but a label could hold an escaped space).
fn is_field(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
}

/// The file's text for `saved`, made on WAN device `wan`, at `now`, the
/// clock reading `clock`.
pub fn serialize(saved: &Saved, wan: &str, now: Instant, clock: &BootClock) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    let _ = writeln!(out, "boot-id {}", clock.boot_id);
    let _ = writeln!(out, "saved-at-ms {}", clock.since_boot.as_millis());
    let _ = writeln!(out, "client-id {}", duid::to_hex(&saved.client_id));
    let _ = writeln!(out, "wan {wan}");
    let _ = writeln!(out, "sol-max-rt {}", saved.sol_max_rt.as_secs());
    if let Some(lease) = &saved.lease {
        let _ = writeln!(out, "server-id {}", duid::to_hex(&lease.server_id));
        let _ = writeln!(out, "server {}", lease.server_addr);
        let updated_ago = now.saturating_duration_since(lease.updated).as_secs();
        let _ = writeln!(out, "updated-ago {updated_ago}");
        out.push_str("t1");
        write_left(&mut out, left(lease.t1, now));
        out.push_str("\nt2");
        write_left(&mut out, left(lease.t2, now));
        out.push('\n');
        for a in &lease.addresses {
            let _ = write!(out, "address {}", a.addr);
            write_left(&mut out, left(a.preferred_until, now));
            write_left(&mut out, left(a.valid_until, now));
            out.push('\n');
        }
        for p in &lease.prefixes {
            let _ = write!(out, "prefix {}/{}", p.prefix, p.len);
            write_left(&mut out, left(p.preferred_until, now));
            write_left(&mut out, left(p.valid_until, now));
            out.push('\n');
        }
    }
    for server in &saved.info.dns_servers {
        let _ = writeln!(out, "dns {server}");
    }
    for domain in saved.info.domains.iter().filter(|d| is_field(d)) {
        let _ = writeln!(out, "domain {domain}");
    }
    if let Some(aftr) = saved.info.aftr_name.as_deref().filter(|n| is_field(n)) {
        let _ = writeln!(out, "aftr {aftr}");
    }
    out
}

/// A lifetime came as 32 bits, 0xffffffff being infinity (RFC 8415
/// §7.7): a larger finite one is a damaged file, and near Instant's end
/// it would overflow the timer wheel.
fn parse_left(text: &str) -> Option<Left> {
    match text {
        "infinite" => Some(None),
        s => s
            .parse()
            .ok()
            .filter(|&left| left < u64::from(u32::MAX))
            .map(Some),
    }
}

fn parse_prefix(text: &str) -> Option<(Ipv6Addr, u8)> {
    let (addr, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (1..=128).contains(&len).then_some(())?;
    Some((addr.parse().ok()?, len))
}

/// Parses the file. Any line that is not understood rejects the whole file:
/// a half-understood binding is worse than none.
pub fn parse(text: &str) -> Result<Stored, Ignored> {
    let bad = |n: usize, why: &str| Ignored::Malformed(format!("line {n}: {why}"));
    if text.len() > MAX_FILE_LEN {
        return Err(Ignored::Malformed(format!("{} bytes", text.len())));
    }
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    if lines.next().map(|(_, l)| l) != Some(HEADER) {
        return Err(bad(1, &format!("not '{HEADER}'")));
    }
    let (mut boot_id, mut saved_at, mut client_id, mut sol_max_rt) = (None, None, None, None);
    let mut wan_device = None;
    let (mut server_id, mut server_addr, mut updated_ago, mut t1, mut t2) =
        (None, None, None, None, None);
    let (mut addresses, mut prefixes) = (Vec::new(), Vec::new());
    let mut info = NetworkInfo::default();
    for (n, line) in lines.filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let value = |i: usize| {
            fields
                .get(i)
                .copied()
                .ok_or_else(|| bad(n, "too few fields"))
        };
        let number = |i: usize| -> Result<u64, Ignored> {
            value(i)?.parse().map_err(|_| bad(n, "not a number"))
        };
        let lifetime = |i: usize| parse_left(value(i)?).ok_or_else(|| bad(n, "bad lifetime"));
        let addr = |i: usize| -> Result<Ipv6Addr, Ignored> {
            value(i)?.parse().map_err(|_| bad(n, "not an IPv6 address"))
        };
        let hex = |i: usize| duid::from_hex(value(i)?).ok_or_else(|| bad(n, "bad hex"));
        let expected = match fields[0] {
            "boot-id" => {
                boot_id = Some(value(1)?.to_string());
                2
            }
            "saved-at-ms" => {
                saved_at = Some(Duration::from_millis(number(1)?));
                2
            }
            "client-id" => {
                client_id = Some(hex(1)?);
                2
            }
            "wan" => {
                wan_device = Some(value(1)?.to_string());
                2
            }
            "sol-max-rt" => {
                sol_max_rt = Some(Duration::from_secs(number(1)?));
                2
            }
            "server-id" => {
                server_id = Some(hex(1)?);
                2
            }
            "server" => {
                server_addr = Some(addr(1)?);
                2
            }
            "updated-ago" => {
                updated_ago = Some(number(1)?);
                2
            }
            "t1" => {
                t1 = Some(lifetime(1)?);
                2
            }
            "t2" => {
                t2 = Some(lifetime(1)?);
                2
            }
            "address" => {
                addresses.push((addr(1)?, lifetime(2)?, lifetime(3)?));
                4
            }
            "prefix" => {
                let (prefix, len) = parse_prefix(value(1)?).ok_or_else(|| bad(n, "bad prefix"))?;
                prefixes.push((prefix, len, lifetime(2)?, lifetime(3)?));
                4
            }
            "dns" => {
                info.dns_servers.push(addr(1)?);
                2
            }
            "domain" => {
                info.domains.push(value(1)?.to_string());
                2
            }
            "aftr" => {
                info.aftr_name = Some(value(1)?.to_string());
                2
            }
            other => return Err(bad(n, &format!("unknown keyword '{other}'"))),
        };
        if fields.len() != expected {
            return Err(bad(n, "wrong number of fields"));
        }
    }
    let missing = |what: &str| Ignored::Malformed(format!("no {what}"));
    let lease = match server_id {
        None if server_addr.is_none() && addresses.is_empty() && prefixes.is_empty() => None,
        None => return Err(missing("server-id")),
        Some(server_id) => Some(StoredLease {
            server_id,
            server_addr: server_addr.ok_or_else(|| missing("server"))?,
            updated_ago: updated_ago.unwrap_or(0),
            t1: t1.ok_or_else(|| missing("t1"))?,
            t2: t2.ok_or_else(|| missing("t2"))?,
            addresses,
            prefixes,
        }),
    };
    Ok(Stored {
        boot_id: boot_id.ok_or_else(|| missing("boot-id"))?,
        saved_at: saved_at.ok_or_else(|| missing("saved-at-ms"))?,
        client_id: client_id.ok_or_else(|| missing("client-id"))?,
        wan_device,
        sol_max_rt,
        lease,
        info,
    })
}

impl Stored {
    /// Turns the stored lifetimes into deadlines from `now`, the clock
    /// reading `clock` (taken at `now`). What has already ended is dropped;
    /// a binding with nothing left, another boot's file or another DUID's
    /// or WAN device's binding is refused.
    pub fn rebase(
        self,
        now: Instant,
        clock: &BootClock,
        duid: &[u8],
        wan: &str,
    ) -> Result<Saved, Ignored> {
        if self.boot_id != clock.boot_id {
            return Err(Ignored::OtherBoot);
        }
        // Within one boot CLOCK_BOOTTIME never goes back; a file from the
        // future is from somewhere else.
        let Some(elapsed) = clock.since_boot.checked_sub(self.saved_at) else {
            return Err(Ignored::OtherBoot);
        };
        if self.client_id != duid {
            return Err(Ignored::OtherClient);
        }
        if let Some(device) = self.wan_device.filter(|d| d != wan) {
            return Err(Ignored::OtherDevice(device));
        }
        // `None` (infinity) stays; a lifetime that has run out becomes `now`;
        // one beyond what an Instant holds is infinity, as in lease::deadline.
        let deadline = |l: Left| {
            l.and_then(|s| now.checked_add(Duration::from_secs(s).saturating_sub(elapsed)))
        };
        let lease = match self.lease {
            None => None,
            Some(stored) => {
                let mut lease = Lease {
                    server_id: stored.server_id,
                    server_addr: stored.server_addr,
                    updated: elapsed
                        .checked_add(Duration::from_secs(stored.updated_ago))
                        .and_then(|ago| now.checked_sub(ago))
                        .unwrap_or(now),
                    t1: deadline(stored.t1),
                    t2: deadline(stored.t2),
                    addresses: (stored.addresses.into_iter())
                        .map(|(addr, preferred, valid)| LeasedAddress {
                            addr,
                            preferred_until: deadline(preferred),
                            valid_until: deadline(valid),
                        })
                        .collect(),
                    prefixes: (stored.prefixes.into_iter())
                        .map(|(prefix, len, preferred, valid)| DelegatedPrefix {
                            prefix,
                            len,
                            preferred_until: deadline(preferred),
                            valid_until: deadline(valid),
                        })
                        .collect(),
                };
                lease.expire(now);
                if lease.is_empty() {
                    return Err(Ignored::Expired);
                }
                Some(lease)
            }
        };
        Ok(Saved {
            client_id: self.client_id,
            lease,
            info: self.info,
            sol_max_rt: self.sol_max_rt.unwrap_or_default(),
        })
    }
}

// ----- I/O -------------------------------------------------------------------

/// Reads and rebases the file at `path` for the client `duid` on WAN device
/// `wan`; `Ok(None)` when there is none.
pub fn load(
    path: &Path,
    now: Instant,
    clock: &BootClock,
    duid: &[u8],
    wan: &str,
) -> Result<Option<Saved>, Ignored> {
    let text = match std::fs::read(path) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| Ignored::Malformed("not UTF-8 text".into()))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Ignored::Malformed(format!("unreadable: {e}"))),
    };
    parse(&text)?.rebase(now, clock, duid, wan).map(Some)
}

/// Writes `saved` (made on WAN device `wan`) to `path` atomically, or
/// removes the file when there is nothing to keep.
pub fn save(
    path: &Path,
    saved: &Saved,
    wan: &str,
    now: Instant,
    clock: &BootClock,
) -> io::Result<()> {
    if saved.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let text = serialize(saved, wan, now, clock);
    crate::atomic_file::write_atomic(path, |out| io::Write::write_all(out, text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0xb4, 1];
    const WAN: &str = "wan";

    fn clock(ms: u64) -> BootClock {
        BootClock {
            boot_id: "6a1f0c7e-1111-2222-3333-444455556666".into(),
            since_boot: Duration::from_millis(ms),
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn saved(now: Instant) -> Saved {
        Saved {
            client_id: DUID.to_vec(),
            lease: Some(Lease {
                server_id: vec![0, 1, 0, 1, 0xaa, 0xbb],
                server_addr: "fe80::1".parse().unwrap(),
                updated: now - s(3),
                t1: Some(now + s(997)),
                t2: Some(now + s(1597)),
                addresses: vec![LeasedAddress {
                    addr: "2001:db8:1::100".parse().unwrap(),
                    preferred_until: Some(now + s(2997)),
                    valid_until: Some(now + s(3997)),
                }],
                prefixes: vec![
                    DelegatedPrefix {
                        prefix: "2001:db8:100::".parse().unwrap(),
                        len: 56,
                        preferred_until: Some(now + s(2997)),
                        valid_until: Some(now + s(3997)),
                    },
                    DelegatedPrefix {
                        prefix: "2001:db8:200::".parse().unwrap(),
                        len: 60,
                        preferred_until: Some(now + s(100)),
                        valid_until: None,
                    },
                ],
            }),
            info: NetworkInfo {
                dns_servers: vec![
                    "2001:db8::53".parse().unwrap(),
                    "2001:db8::54".parse().unwrap(),
                ],
                domains: vec!["example.net".into()],
                aftr_name: Some("aftr.example.net".into()),
            },
            sol_max_rt: s(600),
        }
    }

    #[test]
    fn round_trip_in_the_same_instant() {
        let now = Instant::now();
        let text = serialize(&saved(now), WAN, now, &clock(5_000_000));
        assert!(
            text.starts_with("b4d-dhcpv6 1\nboot-id 6a1f0c7e-"),
            "{text}"
        );
        assert!(
            text.contains("\naddress 2001:db8:1::100 2997 3997\n"),
            "{text}"
        );
        assert!(
            text.contains("\nprefix 2001:db8:200::/60 100 infinite\n"),
            "{text}"
        );
        assert!(text.contains("\naftr aftr.example.net\n"), "{text}");
        let back = parse(&text)
            .unwrap()
            .rebase(now, &clock(5_000_000), &DUID, WAN)
            .unwrap();
        assert_eq!(back, saved(now));
    }

    #[test]
    fn lifetimes_are_rebased_onto_the_new_process_clock() {
        let before = Instant::now();
        let text = serialize(&saved(before), WAN, before, &clock(5_000_000));
        // The new process starts 1000 s later (by the boot clock); its
        // Instant is unrelated to the old one.
        let now = before + s(123_456);
        let back = parse(&text)
            .unwrap()
            .rebase(now, &clock(6_000_000), &DUID, WAN)
            .unwrap();
        let lease = back.lease.unwrap();
        assert_eq!(lease.updated, now - s(1003));
        // T1 (997 s) has passed: due now; T2 has 597 s left.
        assert_eq!(lease.t1, Some(now));
        assert_eq!(lease.t2, Some(now + s(597)));
        assert_eq!(lease.addresses[0].preferred_until, Some(now + s(1997)));
        assert_eq!(lease.addresses[0].valid_until, Some(now + s(2997)));
        // The /60's preferred lifetime ended; its infinite valid one did not.
        assert_eq!(lease.prefixes[1].preferred_until, Some(now));
        assert_eq!(lease.prefixes[1].valid_until, None);
        assert_eq!(back.info, saved(before).info);
        assert_eq!(back.sol_max_rt, s(600));
    }

    #[test]
    fn what_has_ended_is_dropped_and_a_fully_expired_binding_refused() {
        let before = Instant::now();
        let mut finite = saved(before);
        finite.lease.as_mut().unwrap().prefixes.pop();
        let text = serialize(&finite, WAN, before, &clock(0));
        let now = before + s(10);
        let later = |ms| parse(&text).unwrap().rebase(now, &clock(ms), &DUID, WAN);
        // 3997 s later the address and the /56 are gone: nothing left.
        assert_eq!(later(3_997_000), Err(Ignored::Expired));
        assert!(later(3_996_000).unwrap().lease.is_some());
    }

    #[test]
    fn another_boot_duid_or_wan_device_is_refused() {
        let now = Instant::now();
        let text = serialize(&saved(now), WAN, now, &clock(5_000_000));
        let stored = || parse(&text).unwrap();
        let mut other_boot = clock(6_000_000);
        other_boot.boot_id = "ffffffff-1111-2222-3333-444455556666".into();
        assert_eq!(
            stored().rebase(now, &other_boot, &DUID, WAN),
            Err(Ignored::OtherBoot)
        );
        // The clock restarted (a reboot with the same id is not possible,
        // but a file from the future is not ours either).
        assert_eq!(
            stored().rebase(now, &clock(1_000), &DUID, WAN),
            Err(Ignored::OtherBoot)
        );
        assert_eq!(
            stored().rebase(now, &clock(5_000_000), &[0, 3, 0, 1, 9, 9, 9, 9, 9, 9], WAN),
            Err(Ignored::OtherClient)
        );
        assert_eq!(
            stored().rebase(now, &clock(5_000_000), &DUID, "eth0.2"),
            Err(Ignored::OtherDevice(WAN.into()))
        );
        // An older b4d's file names no device: taken as this one's.
        let without_device = text.replace("\nwan wan\n", "\n");
        assert_ne!(without_device, text);
        let restored =
            parse(&without_device)
                .unwrap()
                .rebase(now, &clock(5_000_000), &DUID, "eth0.2");
        assert_eq!(restored, Ok(saved(now)));
    }

    #[test]
    fn information_only_round_trips_and_an_empty_state_is_no_file() {
        let now = Instant::now();
        let mut info_only = saved(now);
        info_only.lease = None;
        let text = serialize(&info_only, WAN, now, &clock(1));
        assert!(!text.contains("server"), "{text}");
        let back = parse(&text)
            .unwrap()
            .rebase(now, &clock(2), &DUID, WAN)
            .unwrap();
        assert_eq!(back, info_only);
        info_only.info = NetworkInfo::default();
        assert!(info_only.is_empty());
    }

    #[test]
    fn malformed_files_say_why() {
        let now = Instant::now();
        let good = serialize(&saved(now), WAN, now, &clock(1));
        let cases = [
            ("", "line 1"),
            ("b4d-leases 1\n", "line 1"),
            ("b4d-dhcpv6 1\nboot-id x\nsaved-at-ms 1\n", "no client-id"),
            (&good.replace("t1 997", "t1 soon"), "bad lifetime"),
            (&good.replace("t1 997", "t1 4294967295"), "bad lifetime"),
            (
                &good.replace("t1 997", "t1 18446744073709551614"),
                "bad lifetime",
            ),
            (&good.replace("/56", "/0"), "bad prefix"),
            (
                &good.replace("dns 2001:db8::53", "dns 2001:db8::53 x"),
                "wrong number",
            ),
            (&good.replace("aftr ", "aftrname "), "unknown keyword"),
            (
                &good.replace("server-id 00:01:00:01:aa:bb", "server-id zz"),
                "bad hex",
            ),
            (&good.replace("server fe80::1\n", ""), "no server"),
        ];
        for (text, why) in cases {
            match parse(text) {
                Err(Ignored::Malformed(m)) => assert!(m.contains(why), "{m} for {text:?}"),
                other => panic!("{other:?} for {text:?}"),
            }
        }
    }

    #[test]
    fn save_writes_then_removes_and_load_reads_back() {
        let dir = std::env::temp_dir().join(format!("b4d-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b4d.dhcpv6");
        let now = Instant::now();
        assert_eq!(load(&path, now, &clock(1), &DUID, WAN), Ok(None));
        save(&path, &saved(now), WAN, now, &clock(1)).unwrap();
        assert_eq!(
            load(&path, now, &clock(1), &DUID, WAN),
            Ok(Some(saved(now)))
        );
        let mut empty = saved(now);
        empty.lease = None;
        empty.info = NetworkInfo::default();
        save(&path, &empty, WAN, now, &clock(1)).unwrap();
        assert!(!path.exists());
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            load(&path, now, &clock(1), &DUID, WAN),
            Err(Ignored::Malformed(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_boot_clock_reads() {
        let first = BootClock::read().unwrap();
        let second = first.now().unwrap();
        assert!(second.since_boot >= first.since_boot);
        assert_eq!(first.boot_id.len(), 36, "{}", first.boot_id);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,400}") {
            let _ = parse(&text).map(|s| s.rebase(Instant::now(), &clock(1), &DUID, WAN));
        }

        #[test]
        fn parse_never_panics_on_near_valid_lines(
            keyword in "(address|prefix|t1|t2|dns|server|server-id|saved-at-ms|updated-ago)",
            a in "[0-9a-f:/.]{0,24}", b in "[0-9a-z]{0,12}", c in "[0-9]{0,22}"
        ) {
            let text = format!(
                "b4d-dhcpv6 1\nboot-id x\nsaved-at-ms 1\nclient-id 00:03:01\n{keyword} {a} {b} {c}\n"
            );
            let _ = parse(&text).map(|s| s.rebase(Instant::now(), &clock(u64::MAX / 2), &[0, 3, 1], WAN));
        }
    }
}
