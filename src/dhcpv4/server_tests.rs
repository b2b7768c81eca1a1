//! The DHCPv4 core driven with fabricated packets and a fake clock: every
//! client state of RFC 2131 §4.3, pool exhaustion, expiry, quarantine,
//! floods and bad input. No sockets, no sleeps.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::leases::{ClientKey, Lease, TimeBase};
use super::server::*;
use super::wire::tests::build_request;
use super::wire::*;
use crate::lan4::Ipv4Subnet;

const T0: u64 = 1_700_000_000;

/// The lease file's time base in these tests: the wall clock is the
/// server's clock, so the file shows the core's expiries as they are.
fn file_base() -> TimeBase {
    TimeBase {
        boot_id: "test-boot".into(),
        wall_minus_boot: 0,
    }
}

/// The lease file's lease lines (after its time-base line).
fn lease_lines(s: &Server, now: u64) -> String {
    let file = s.lease_file_contents(now, &file_base());
    let (first, rest) = file.split_once('\n').expect("the time-base line");
    assert_eq!(first, "boot-id test-boot wall-minus-boot 0");
    rest.to_string()
}
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const NONE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, last)
}

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

fn config(pool_len: u8) -> ServerConfig {
    ServerConfig {
        lan: Ipv4Subnet::new(SERVER, 24).unwrap(),
        pool_first: ip(100),
        pool_last: ip(100 + pool_len - 1),
        lease_secs: 3600,
        domain: Some("home.example".into()),
        mtu: None,
        statics: vec![StaticLease {
            mac: mac(50),
            client_id: None,
            ip: ip(20),
            name: Some("printer".into()),
        }],
    }
}

fn server(pool_len: u8) -> Server {
    Server::new(config(pool_len), Vec::new(), T0)
}

/// A pool of 10 and one host entry (.21) matched by MAC 60 or by client
/// id 00:78 ("\0x").
fn server_with_id_matched_host() -> Server {
    Server::new(
        ServerConfig {
            statics: vec![StaticLease {
                mac: mac(60),
                client_id: Some(vec![0, b'x']),
                ip: ip(21),
                name: None,
            }],
            ..config(10)
        },
        Vec::new(),
        T0,
    )
}

/// Where client `m` is placed in a pool of `pool_len` from .100 when it
/// has no lease (a hash of its MAC, see `Pool::home`).
fn home(pool_len: u8, m: u8) -> Ipv4Addr {
    super::pool::Pool::new(ip(100), ip(100 + pool_len - 1))
        .home(mac(m))
        .unwrap()
}

/// A decoded reply, for assertions.
#[derive(Debug)]
struct Sent {
    to: Destination,
    message_type: u8,
    yiaddr: Ipv4Addr,
    options: Vec<(u8, Vec<u8>)>,
    len: usize,
}

impl Sent {
    fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    fn codes(&self) -> Vec<u8> {
        self.options.iter().map(|(c, _)| *c).collect()
    }
}

fn sent(actions: &[Action]) -> Vec<Sent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                bytes,
                needs_file,
            } => {
                assert_eq!(bytes[0], BOOTREPLY);
                let is_ack = bytes[240..243] == [53, 1, DHCPACK];
                let yiaddr = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
                assert_eq!(*needs_file, is_ack && !yiaddr.is_unspecified());
                assert_eq!(&bytes[236..240], &MAGIC_COOKIE);
                let mut options = Vec::new();
                let mut i = HEADER_LEN;
                while bytes[i] != OPT_END {
                    if bytes[i] == OPT_PAD {
                        i += 1;
                        continue;
                    }
                    let len = bytes[i + 1] as usize;
                    options.push((bytes[i], bytes[i + 2..i + 2 + len].to_vec()));
                    i += 2 + len;
                }
                Some(Sent {
                    to: *to,
                    message_type: options[0].1[0],
                    yiaddr: Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]),
                    options,
                    len: bytes.len(),
                })
            }
            _ => None,
        })
        .collect()
}

fn one(actions: &[Action]) -> Sent {
    let mut all = sent(actions);
    assert_eq!(all.len(), 1, "exactly one reply: {actions:?}");
    all.remove(0)
}

const PRL: &[u8] = &[1, 3, 6, 15, 28, 119, 26, 12];

fn discover(s: &mut Server, now: u64, m: u8) -> Vec<Action> {
    let bytes = build_request(DHCPDISCOVER, mac(m), NONE, &[(OPT_PARAMETER_LIST, PRL)]);
    s.handle(now, Input::Received { bytes: &bytes })
}

fn select(s: &mut Server, now: u64, m: u8, want: Ipv4Addr) -> Vec<Action> {
    let bytes = build_request(
        DHCPREQUEST,
        mac(m),
        NONE,
        &[
            (OPT_SERVER_ID, &SERVER.octets()),
            (OPT_REQUESTED_IP, &want.octets()),
            (OPT_HOSTNAME, format!("host{m}").as_bytes()),
            (OPT_PARAMETER_LIST, PRL),
        ],
    );
    s.handle(now, Input::Received { bytes: &bytes })
}

fn init_reboot(s: &mut Server, now: u64, m: u8, want: Ipv4Addr) -> Vec<Action> {
    let bytes = build_request(
        DHCPREQUEST,
        mac(m),
        NONE,
        &[(OPT_REQUESTED_IP, &want.octets())],
    );
    s.handle(now, Input::Received { bytes: &bytes })
}

fn renew(s: &mut Server, now: u64, m: u8, have: Ipv4Addr) -> Vec<Action> {
    let bytes = build_request(DHCPREQUEST, mac(m), have, &[]);
    s.handle(now, Input::Received { bytes: &bytes })
}

/// Client `m` declines `ip` (its ARP probe found it in use).
fn decline(s: &mut Server, now: u64, m: u8, ip: Ipv4Addr) -> Vec<Action> {
    let bytes = build_request(
        DHCPDECLINE,
        mac(m),
        NONE,
        &[
            (OPT_SERVER_ID, &SERVER.octets()),
            (OPT_REQUESTED_IP, &ip.octets()),
        ],
    );
    s.handle(now, Input::Received { bytes: &bytes })
}

/// DISCOVER + REQUEST; returns the address.
fn lease(s: &mut Server, now: u64, m: u8) -> Ipv4Addr {
    let offer = one(&discover(s, now, m));
    assert_eq!(offer.message_type, DHCPOFFER);
    let ack = one(&select(s, now, m, offer.yiaddr));
    assert_eq!(ack.message_type, DHCPACK);
    ack.yiaddr
}

#[test]
fn discover_gets_an_offer_with_the_requested_options_in_order() {
    let mut s = server(10);
    let offer = one(&discover(&mut s, T0, 1));
    assert_eq!(offer.message_type, DHCPOFFER);
    assert_eq!(offer.yiaddr, home(10, 1));
    // Required first (54, 51, 58, 59, 1), then the request list's order;
    // 26 (MTU not configured) and 12 (no static name) are left out.
    assert_eq!(offer.codes(), [53, 54, 51, 58, 59, 1, 3, 6, 15, 28, 119]);
    assert_eq!(offer.option(54), Some(&SERVER.octets()[..]));
    assert_eq!(offer.option(51), Some(&3600u32.to_be_bytes()[..]));
    assert_eq!(offer.option(58), Some(&1800u32.to_be_bytes()[..]));
    assert_eq!(offer.option(59), Some(&3150u32.to_be_bytes()[..]));
    assert_eq!(offer.option(1), Some(&[255, 255, 255, 0][..]));
    assert_eq!(offer.option(3), Some(&SERVER.octets()[..]));
    assert_eq!(offer.option(6), Some(&SERVER.octets()[..]));
    assert_eq!(offer.option(15), Some(&b"home.example"[..]));
    assert_eq!(offer.option(28), Some(&[192, 168, 1, 255][..]));
    assert_eq!(offer.option(119), Some(&b"\x04home\x07example\x00"[..]));
    assert!(offer.len >= MIN_BOOTP_LEN);
    // No broadcast flag, no address yet: unicast to the hardware address.
    assert_eq!(
        offer.to,
        Destination::UnicastToHardware {
            ip: home(10, 1),
            mac: mac(1)
        }
    );
    assert_eq!(s.status(T0).sent_offer, 1);
    assert_eq!(s.status(T0).pool_used, 1, "the offer holds the address");
}

#[test]
fn broadcast_flag_client_id_and_mtu() {
    let mut s = Server::new(
        ServerConfig {
            mtu: Some(1400),
            ..config(10)
        },
        Vec::new(),
        T0,
    );
    let mut bytes = build_request(
        DHCPDISCOVER,
        mac(1),
        NONE,
        &[
            (OPT_CLIENT_ID, &[1, 2, 0, 0, 0, 0, 1]),
            (OPT_PARAMETER_LIST, &[26]),
        ],
    );
    bytes[10] = 0x80;
    let offer = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_eq!(offer.to, Destination::Broadcast);
    // RFC 6842: the client identifier comes back.
    assert_eq!(offer.option(61), Some(&[1, 2, 0, 0, 0, 0, 1][..]));
    assert_eq!(offer.option(26), Some(&1400u16.to_be_bytes()[..]));
    assert_eq!(offer.option(3), None, "not requested");
}

#[test]
fn selecting_request_is_acked_after_the_lease_is_persisted() {
    let mut s = server(10);
    discover(&mut s, T0, 1);
    let actions = select(&mut s, T0, 1, ip(100));
    assert_eq!(
        actions[0],
        Action::Persist,
        "on disk before the ACK: {actions:?}"
    );
    assert_eq!(actions[1], Action::LeasesChanged);
    let ack = one(&actions);
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, ip(100)));
    let file = lease_lines(&s, T0);
    assert_eq!(
        file,
        format!("{} 02:00:00:00:00:01 192.168.1.100 host1 *\n", T0 + 3600)
    );
    let list = s.lease_list(T0);
    let dynamic: Vec<_> = list.iter().filter(|l| !l.is_static).collect();
    assert_eq!(dynamic.len(), 1);
    assert_eq!(dynamic[0].hostname.as_deref(), Some("host1"));
    assert_eq!(dynamic[0].expires, T0 + 3600);
    let printer = list.iter().find(|l| l.is_static).unwrap();
    assert_eq!((printer.ip, printer.expires), (ip(20), 0));
    assert_eq!(printer.hostname.as_deref(), Some("printer"));
}

#[test]
fn request_naming_another_server_frees_our_offer_without_reply() {
    let mut s = server(10);
    let offered = one(&discover(&mut s, T0, 1)).yiaddr;
    let bytes = build_request(
        DHCPREQUEST,
        mac(1),
        NONE,
        &[
            (OPT_SERVER_ID, &[192, 168, 1, 2]),
            (OPT_REQUESTED_IP, &offered.octets()),
        ],
    );
    assert!(s.handle(T0, Input::Received { bytes: &bytes }).is_empty());
    assert_eq!(s.status(T0).dropped.get("other-server"), Some(&1));
    assert_eq!(s.status(T0).pool_used, 0);
    // Client 61 has the same home: the freed address is its again.
    assert_eq!(home(10, 61), offered);
    assert_eq!(one(&discover(&mut s, T0, 61)).yiaddr, offered);
}

#[test]
fn selecting_an_address_offered_to_someone_else_is_naked() {
    let mut s = server(10);
    let offered = one(&discover(&mut s, T0, 1)).yiaddr;
    let nak = one(&select(&mut s, T0, 2, offered));
    assert_eq!(nak.message_type, DHCPNAK);
    assert_eq!(
        nak.to,
        Destination::Broadcast,
        "RFC 2131 §4.1: NAKs are broadcast"
    );
    assert_eq!(nak.yiaddr, NONE);
    assert_eq!(nak.option(56), Some(&b"in use by another client"[..]));
}

#[test]
fn an_offer_holds_its_address_for_the_hold_time_only() {
    let mut s = server(10);
    let offered = one(&discover(&mut s, T0, 1)).yiaddr;
    // Client 61's home is the same address: it gets the next one.
    assert_eq!(home(10, 61), offered);
    let held = T0 + OFFER_HOLD_SECS - 1;
    let next = Ipv4Addr::from(u32::from(offered) + 1);
    assert_eq!(one(&discover(&mut s, held, 61)).yiaddr, next);
    assert_eq!(one(&select(&mut s, held, 3, offered)).message_type, DHCPNAK);
    // Lapsed: another client may take it.
    let lapsed = T0 + OFFER_HOLD_SECS;
    assert_eq!(
        one(&select(&mut s, lapsed, 3, offered)).message_type,
        DHCPACK
    );
}

#[test]
fn init_reboot_cases() {
    let mut s = server(10);
    let have = lease(&mut s, T0, 1);
    // Its own address: ACK.
    assert_eq!(
        one(&init_reboot(&mut s, T0 + 10, 1, have)).message_type,
        DHCPACK
    );
    // Another address while holding one: NAK so it comes back to its own.
    assert_eq!(
        one(&init_reboot(&mut s, T0 + 10, 1, ip(105))).message_type,
        DHCPNAK
    );
    // Another network (moved from a different LAN), outside the pool, a
    // static address, someone else's lease: NAK.
    assert_eq!(
        one(&init_reboot(&mut s, T0, 2, Ipv4Addr::new(10, 0, 0, 5))).message_type,
        DHCPNAK
    );
    assert_eq!(
        one(&init_reboot(&mut s, T0, 2, ip(200))).message_type,
        DHCPNAK
    );
    assert_eq!(
        one(&init_reboot(&mut s, T0, 2, ip(20))).message_type,
        DHCPNAK
    );
    assert_eq!(one(&init_reboot(&mut s, T0, 2, have)).message_type, DHCPNAK);
    // A client we have no record of, asking for a free pool address (lost
    // lease file): authoritative, so ACK.
    let ack = one(&init_reboot(&mut s, T0, 3, ip(107)));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, ip(107)));
    assert_eq!(s.status(T0).sent_nak, 5);
}

#[test]
fn renewing_and_rebinding_extend_the_lease_and_answer_to_ciaddr() {
    let mut s = server(10);
    let have = lease(&mut s, T0, 1);
    let actions = renew(&mut s, T0 + 1800, 1, have);
    let ack = one(&actions);
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, have));
    assert_eq!(ack.to, Destination::Unicast(have));
    assert!(
        actions.contains(&Action::Persist),
        "the new expiry is saved"
    );
    assert!(
        actions.contains(&Action::LeasesChanged),
        "the published expiry moves too"
    );
    assert!(lease_lines(&s, T0).starts_with(&(T0 + 1800 + 3600).to_string()));
    // Someone renewing an address that is another client's: NAK.
    assert_eq!(
        one(&renew(&mut s, T0 + 1800, 2, have)).message_type,
        DHCPNAK
    );
    // After b4d lost its leases (kill -9 before the file existed, say) a
    // renewing client keeps its free address.
    let mut fresh = server(10);
    let ack = one(&renew(&mut fresh, T0, 1, have));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, have));
    // A renewal that carries our server identifier (against RFC 2131
    // §4.3.2, as some embedded clients do) is still one.
    let bytes = build_request(
        DHCPREQUEST,
        mac(1),
        have,
        &[(OPT_SERVER_ID, &SERVER.octets())],
    );
    let ack = one(&s.handle(T0 + 2000, Input::Received { bytes: &bytes }));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, have));
    assert!(lease_lines(&s, T0).starts_with(&(T0 + 2000 + 3600).to_string()));
}

#[test]
fn release_expires_the_lease_but_remembers_the_client() {
    let mut s = server(10);
    let have = lease(&mut s, T0, 1);
    lease(&mut s, T0, 2);
    let bytes = build_request(
        DHCPRELEASE,
        mac(1),
        have,
        &[(OPT_SERVER_ID, &SERVER.octets())],
    );
    let actions = s.handle(T0 + 5, Input::Received { bytes: &bytes });
    assert_eq!(actions, [Action::Persist, Action::LeasesChanged]);
    assert!(!lease_lines(&s, T0 + 5).contains("192.168.1.100"));
    assert_eq!(s.status(T0 + 5).active_leases, 1);
    // A release by someone else changes nothing.
    let bytes = build_request(DHCPRELEASE, mac(3), ip(101), &[]);
    assert!(s
        .handle(T0 + 5, Input::Received { bytes: &bytes })
        .is_empty());
    assert_eq!(s.status(T0).dropped.get("no-such-lease"), Some(&1));
    // The client comes back and gets its old address.
    assert_eq!(one(&discover(&mut s, T0 + 100, 1)).yiaddr, have);
}

#[test]
fn decline_quarantines_the_address() {
    let mut s = server(3);
    let have = lease(&mut s, T0, 1);
    // Only the holder can decline.
    assert!(decline(&mut s, T0, 2, have).is_empty());
    assert_eq!(s.status(T0).quarantined, 0);
    let actions = decline(&mut s, T0 + 1, 1, have);
    assert_eq!(actions, [Action::Persist, Action::LeasesChanged]);
    assert_eq!(s.status(T0 + 1).quarantined, 1);
    // Neither the decliner nor anyone else (client 2's home is the same
    // address) is offered it.
    assert_eq!(home(3, 2), have);
    let first = one(&discover(&mut s, T0 + 12, 1)).yiaddr;
    let second = one(&discover(&mut s, T0 + 12, 2)).yiaddr;
    assert!(first != have && second != have && first != second);
    // With the pool full, a third client takes over a live offer (offers
    // are not leases) but still not the quarantined address.
    let third = one(&discover(&mut s, T0 + 12, 3)).yiaddr;
    assert!([first, second].contains(&third), "{third}");
    assert_eq!(
        one(&init_reboot(&mut s, T0 + 12, 3, have)).option(56),
        Some(&b"declined recently, quarantined"[..])
    );
    // After the quarantine it can be handed out again.
    let later = T0 + 1 + DECLINE_QUARANTINE_SECS;
    assert_eq!(
        one(&init_reboot(&mut s, later, 4, have)).message_type,
        DHCPACK
    );
}

#[test]
fn inform_gets_configuration_but_no_lease() {
    let mut s = server(10);
    let bytes = build_request(DHCPINFORM, mac(9), ip(30), &[(OPT_PARAMETER_LIST, &[3, 6])]);
    let actions = s.handle(T0, Input::Received { bytes: &bytes });
    let ack = one(&actions);
    assert_eq!(ack.message_type, DHCPACK);
    assert_eq!(ack.to, Destination::Unicast(ip(30)));
    assert_eq!(ack.yiaddr, NONE);
    // RFC 2131 §4.3.5: no lease time.
    assert_eq!(ack.codes(), [53, 54, 1, 3, 6]);
    assert_eq!(actions.len(), 1, "no lease, nothing persisted");
}

#[test]
fn static_host_gets_its_address_and_name_and_nobody_else_does() {
    let mut s = server(10);
    let offer = one(&discover(&mut s, T0, 50));
    assert_eq!(offer.yiaddr, ip(20));
    assert_eq!(offer.option(12), Some(&b"printer"[..]));
    assert_eq!(one(&select(&mut s, T0, 50, ip(20))).message_type, DHCPACK);
    // Asking for a pool address instead: NAK, its address is the static one.
    assert_eq!(
        one(&init_reboot(&mut s, T0, 50, ip(100))).message_type,
        DHCPNAK
    );
    assert_eq!(one(&select(&mut s, T0, 3, ip(20))).message_type, DHCPNAK);
    // A static lease matched by client identifier, whatever the MAC.
    let mut by_id = server_with_id_matched_host();
    let bytes = build_request(DHCPDISCOVER, mac(61), NONE, &[(OPT_CLIENT_ID, &[0, b'x'])]);
    assert_eq!(
        one(&by_id.handle(T0, Input::Received { bytes: &bytes })).yiaddr,
        ip(21)
    );
}

#[test]
fn pool_exhaustion_sends_nothing_and_counts() {
    let mut s = server(3);
    for m in 1..=3 {
        lease(&mut s, T0, m);
    }
    assert!(discover(&mut s, T0, 4).is_empty());
    assert!(discover(&mut s, T0 + 1, 4).is_empty());
    let status = s.status(T0 + 1);
    assert_eq!(status.pool_exhausted, 2);
    assert_eq!(status.dropped.get("pool-exhausted"), Some(&2));
    assert_eq!((status.pool_size, status.pool_used), (3, 3));
}

#[test]
fn expired_leases_are_reported_by_the_timer_and_reclaimed() {
    let mut s = server(2);
    lease(&mut s, T0, 1);
    lease(&mut s, T0 + 100, 2);
    assert_eq!(s.poll_timeout(), Some(T0 + 3600));
    assert!(s.handle(T0 + 3599, Input::Timeout).is_empty());
    let actions = s.handle(T0 + 3600, Input::Timeout);
    assert_eq!(actions, [Action::Persist, Action::LeasesChanged]);
    assert_eq!(s.poll_timeout(), Some(T0 + 3700));
    assert_eq!(
        s.lease_list(T0 + 3600)
            .iter()
            .filter(|l| !l.is_static)
            .count(),
        1
    );
    // A new client takes the expired address (the pool is otherwise full).
    assert_eq!(one(&discover(&mut s, T0 + 3601, 3)).yiaddr, ip(100));
    // That offer was never taken up; once it has lapsed, the first client,
    // back later, gets the address again.
    assert_eq!(one(&discover(&mut s, T0 + 3800, 1)).yiaddr, ip(100));
}

#[test]
fn restored_leases_are_kept_unless_they_no_longer_fit() {
    let stored = |ip: Ipv4Addr, m: u8, expires: u64| Lease {
        client: ClientKey::Mac(mac(m)),
        mac: mac(m),
        ip,
        hostname: None,
        expires,
    };
    let restored = vec![
        stored(ip(101), 1, T0 + 50),
        stored(ip(150), 2, T0 + 50),  // outside the pool now: parked
        stored(ip(20), 3, T0 + 50),   // a host entry's address now: kept (see below)
        stored(ip(102), 4, T0 - 1),   // expired
        stored(ip(103), 1, T0 + 10),  // older duplicate of client 1
        stored(ip(104), 5, u64::MAX), // damaged: no lease lasts that long
    ];
    let mut s = Server::new(config(10), restored, T0);
    assert_eq!(s.status(T0).active_leases, 2);
    // Served or parked (for a configuration that serves them again).
    let file = lease_lines(&s, T0);
    assert_eq!(file.lines().count(), 3, "{file}");
    assert!(file.contains(" 192.168.1.20 "), "{file}");
    assert!(!file.contains(" 192.168.1.102 ") && !file.contains(" 192.168.1.103 "));
    assert!(!file.contains(" 192.168.1.104 "), "{file}");
    assert_eq!(one(&renew(&mut s, T0, 1, ip(101))).message_type, DHCPACK);
    assert_eq!(one(&renew(&mut s, T0, 2, ip(150))).message_type, DHCPNAK);
    assert_eq!(one(&discover(&mut s, T0, 9)).yiaddr, ip(100));
    assert_eq!(s.lease_list(T0).iter().filter(|l| !l.is_static).count(), 2);
}

/// A device with a fixed address inside the pool (a NAS at the address a
/// newcomer would get), seen in the router's neighbour table under its own
/// MAC: that address is not offered, nor granted to a client coming back
/// to it after a while (INIT-REBOOT); a client's own entry is no obstacle.
#[test]
fn addresses_the_neighbour_table_shows_in_use_by_another_device_are_not_offered() {
    let mut s = server(10);
    let newcomer_home = home(10, 1);
    let nas = [2, 0, 0, 0, 0, 77];
    s.handle(T0, Input::Neighbors(&[(newcomer_home, nas)]));
    let offer = one(&discover(&mut s, T0, 1));
    assert_eq!(offer.message_type, DHCPOFFER);
    assert_ne!(offer.yiaddr, newcomer_home);
    // Nor when the client asks for it (option 50), as after a router reboot.
    let bytes = build_request(
        DHCPDISCOVER,
        mac(2),
        NONE,
        &[(OPT_REQUESTED_IP, &newcomer_home.octets())],
    );
    let offer = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_ne!(offer.yiaddr, newcomer_home);
    let nak = one(&init_reboot(&mut s, T0, 3, newcomer_home));
    assert_eq!(nak.message_type, DHCPNAK);
    // The entry is the client's own: its address.
    s.handle(T0, Input::Neighbors(&[(newcomer_home, mac(4))]));
    let ack = one(&init_reboot(&mut s, T0, 4, newcomer_home));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, newcomer_home));
    // Behind OpenWrt's relayd (or an extender) the table shows another MAC
    // than the client's chaddr for the client's own leased address: the
    // lease decides, the client keeps its address.
    s.handle(
        T0,
        Input::Neighbors(&[(newcomer_home, [2, 0, 0, 0, 0, 0xee])]),
    );
    let ack = one(&init_reboot(&mut s, T0 + 5, 4, newcomer_home));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, newcomer_home));
    assert_eq!(one(&discover(&mut s, T0 + 5, 4)).yiaddr, newcomer_home);
}

/// Entries of devices long gone stay in Linux's neighbour table: when only
/// such addresses are free, they are offered rather than none.
#[test]
fn a_pool_the_neighbour_table_covers_entirely_still_serves() {
    let mut s = server(2);
    let gone = [2, 0, 0, 0, 0, 0x99];
    s.handle(T0, Input::Neighbors(&[(ip(100), gone), (ip(101), gone)]));
    assert_eq!(one(&discover(&mut s, T0, 1)).message_type, DHCPOFFER);
}

/// A dual-boot PC (or a PXE ROM, then its OS) sends a client identifier in
/// one system and none in the other: one machine, one lease, one address.
#[test]
fn a_machine_with_and_without_a_client_id_keeps_one_lease() {
    let mut s = server(10);
    let first = lease(&mut s, T0, 1);
    let with_id = |message_type: u8, extra: &[(u8, &[u8])]| {
        let mut options = vec![(OPT_CLIENT_ID, &[1, 2, 0, 0, 0, 0, 1][..])];
        options.extend_from_slice(extra);
        build_request(message_type, mac(1), NONE, &options)
    };
    let bytes = with_id(DHCPDISCOVER, &[]);
    let offer = one(&s.handle(T0 + 10, Input::Received { bytes: &bytes }));
    assert_eq!(offer.yiaddr, first);
    let bytes = with_id(
        DHCPREQUEST,
        &[
            (OPT_SERVER_ID, &SERVER.octets()),
            (OPT_REQUESTED_IP, &first.octets()),
        ],
    );
    let ack = one(&s.handle(T0 + 10, Input::Received { bytes: &bytes }));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, first));
    // And back to the system without one.
    assert_eq!(lease(&mut s, T0 + 20, 1), first);
    let leases: Vec<_> = s
        .lease_list(T0 + 20)
        .iter()
        .filter(|l| !l.is_static)
        .cloned()
        .collect();
    assert_eq!(leases.len(), 1, "{leases:?}");
}

/// A host entry added (or its MAC changed) while another device holds a
/// lease on its address: after the restart that applies it, the entry's
/// device is served from the pool until the holder, NAKed at its renewal,
/// has moved; only then does the entry's device get its address. Never two
/// devices on one address.
#[test]
fn a_host_entry_on_a_leased_address_waits_for_the_holder_to_move() {
    let phone = Lease {
        client: ClientKey::Mac(mac(3)),
        mac: mac(3),
        ip: ip(20),
        hostname: Some("phone".into()),
        expires: T0 + 3000,
    };
    let mut s = Server::new(config(10), vec![phone], T0);
    let listed = s.lease_list(T0);
    let printer = listed.iter().find(|l| l.is_static).unwrap();
    assert_eq!(printer.hostname.as_deref(), Some("printer"));
    assert!(
        listed
            .iter()
            .any(|l| !l.is_static && l.ip == ip(20) && l.mac == mac(3)),
        "{listed:?}"
    );
    // The printer (host entry: MAC 50, .20) is not given the phone's address.
    let offer = one(&discover(&mut s, T0, 50));
    assert_eq!(offer.message_type, DHCPOFFER);
    assert_ne!(offer.yiaddr, ip(20));
    let printer_pool_ip = lease(&mut s, T0, 50);
    assert_ne!(printer_pool_ip, ip(20));
    // The phone's renewal is refused; it starts over and gets a pool address.
    assert_eq!(
        one(&renew(&mut s, T0 + 10, 3, ip(20))).message_type,
        DHCPNAK
    );
    let phone_now = lease(&mut s, T0 + 10, 3);
    assert!(phone_now != ip(20) && phone_now != printer_pool_ip);
    // Now the printer is sent to its own address at its next renewal.
    let renewed = one(&renew(&mut s, T0 + 20, 50, printer_pool_ip));
    assert_eq!(renewed.message_type, DHCPNAK);
    assert_eq!(lease(&mut s, T0 + 20, 50), ip(20));
}

#[test]
fn a_moved_subnet_keeps_counters_and_the_leases_that_fit() {
    let mut s = server(10);
    let kept = lease(&mut s, T0, 1);
    let second = lease(&mut s, T0, 2);
    assert_eq!(one(&discover(&mut s, T0, 3)).message_type, DHCPOFFER);
    // A larger pool on the same network: both leases stay, the offer ends.
    let larger = ServerConfig {
        pool_last: ip(149),
        ..config(10)
    };
    assert_eq!(
        s.reconfigure(larger, T0 + 1),
        vec![Action::Persist, Action::LeasesChanged]
    );
    let status = s.status(T0 + 1).clone();
    assert_eq!((status.pool_size, status.active_leases), (50, 2));
    assert_eq!(status.received.discover, 3, "counters carry on");
    assert_eq!(one(&renew(&mut s, T0 + 2, 1, kept)).message_type, DHCPACK);
    // A wider mask (network.lan.netmask /16): the pool's offsets now count
    // from 192.168.0.0 (as ServerConfig::from_config places it), so both
    // leases are outside it: parked, not lost, and back with the /24.
    let wider = ServerConfig {
        lan: Ipv4Subnet::new(SERVER, 16).unwrap(),
        pool_first: Ipv4Addr::new(192, 168, 0, 100),
        pool_last: Ipv4Addr::new(192, 168, 0, 249),
        ..config(10)
    };
    s.reconfigure(wider, T0 + 2);
    assert_eq!(s.status(T0 + 2).active_leases, 0);
    assert_eq!(lease_lines(&s, T0 + 2).lines().count(), 2);
    s.reconfigure(config(10), T0 + 2);
    assert_eq!(s.status(T0 + 2).active_leases, 2);
    // Another network (network.lan.ipaddr changed): every lease goes, and
    // the clients asking for their old addresses are told no.
    let moved = ServerConfig {
        lan: Ipv4Subnet::new(Ipv4Addr::new(10, 0, 0, 1), 16).unwrap(),
        pool_first: Ipv4Addr::new(10, 0, 0, 100),
        pool_last: Ipv4Addr::new(10, 0, 0, 249),
        statics: Vec::new(),
        ..config(10)
    };
    s.reconfigure(moved.clone(), T0 + 3);
    assert_eq!(s.status(T0 + 3).active_leases, 0);
    assert_eq!(
        s.status(T0 + 3).subnet.map(|s| s.to_string()).as_deref(),
        Some("10.0.0.1/16")
    );
    assert_eq!(lease_lines(&s, T0 + 3).lines().count(), 2);
    assert!(s.lease_list(T0 + 3).is_empty());
    let nak = one(&init_reboot(&mut s, T0 + 4, 2, second));
    assert_eq!(nak.message_type, DHCPNAK);
    let offer = one(&discover(&mut s, T0 + 5, 2));
    assert_eq!(offer.option(OPT_ROUTER), Some(&[10, 0, 0, 1][..]));
    let [a, b, c, last] = offer.yiaddr.octets();
    assert!([a, b, c] == [10, 0, 0] && (100..250).contains(&last));
    // (The helper's SELECTING request names the old server: INIT-REBOOT.)
    let moved_lease = one(&init_reboot(&mut s, T0 + 5, 2, offer.yiaddr)).yiaddr;

    // Back (LuCI rolled the change back): the parked leases are served
    // again, client 2's new one is parked in turn.
    s.reconfigure(config(10), T0 + 6);
    assert_eq!(s.status(T0 + 6).active_leases, 2);
    assert_eq!(one(&renew(&mut s, T0 + 7, 1, kept)).message_type, DHCPACK);
    assert_eq!(lease_lines(&s, T0 + 7).lines().count(), 3);
    // A restart on the new subnet reads them the same way.
    let file = s.lease_file_contents(T0 + 7, &file_base());
    let (restored, bad) = super::leases::parse(&file, &file_base(), u64::MAX, |_| true);
    assert_eq!((restored.len(), bad), (3, 0));
    let mut again = Server::new(moved, restored, T0 + 8);
    assert_eq!(again.status(T0 + 8).active_leases, 1);
    assert_eq!(lease_lines(&again, T0 + 8).lines().count(), 3);
    assert_eq!(
        one(&renew(&mut again, T0 + 9, 2, moved_lease)).message_type,
        DHCPACK
    );
    // Parked leases leave the file when they expire.
    assert_eq!(lease_lines(&again, T0 + 3600 + 10).lines().count(), 0);
}

#[test]
fn replies_fit_the_clients_maximum_message_size() {
    let long_domain = format!(
        "{}.{}.{}.example",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60)
    );
    let mut s = Server::new(
        ServerConfig {
            domain: Some(long_domain),
            ..config(10)
        },
        Vec::new(),
        T0,
    );
    let ask = |max: u16| {
        build_request(
            DHCPDISCOVER,
            mac(1),
            NONE,
            &[
                (OPT_PARAMETER_LIST, &[15, 119, 3]),
                (OPT_MAX_MESSAGE_SIZE, &max.to_be_bytes()),
            ],
        )
    };
    let small = one(&s.handle(T0, Input::Received { bytes: &ask(576) }));
    assert!(small.len <= 576 - 28);
    assert_eq!(
        small.codes(),
        [53, 54, 51, 58, 59, 1, 15, 3],
        "119 did not fit"
    );
    let large = one(&s.handle(T0, Input::Received { bytes: &ask(1500) }));
    assert_eq!(large.codes(), [53, 54, 51, 58, 59, 1, 15, 119, 3]);
    // A silly small maximum is raised to the 576 every client must take.
    let tiny = one(&s.handle(T0, Input::Received { bytes: &ask(100) }));
    assert_eq!(tiny.len, small.len);
}

#[test]
fn one_mac_is_rate_limited() {
    let mut s = server(10);
    let answered = (0..20)
        .filter(|_| !discover(&mut s, T0, 1).is_empty())
        .count();
    assert_eq!(answered, usize::from(MAX_MESSAGES_PER_MAC_PER_SEC));
    assert_eq!(s.status(T0).dropped.get("rate-limited"), Some(&12));
    assert!(!discover(&mut s, T0 + 1, 1).is_empty(), "next second");
}

#[test]
fn discover_flood_from_random_macs_keeps_state_bounded_and_real_clients_served() {
    let mut s = server(10);
    let real = lease(&mut s, T0, 1);
    for n in 0..20_000u32 {
        let m = n.to_be_bytes();
        let bytes = build_request(DHCPDISCOVER, [6, 0, m[0], m[1], m[2], m[3]], NONE, &[]);
        s.handle(T0 + u64::from(n / 1000), Input::Received { bytes: &bytes });
    }
    let status = s.status(T0 + 20).clone();
    assert!(status.pool_used <= 10);
    assert!(status.offers_evicted > 19_000, "{status:?}");
    // The real client's lease is untouched and a newcomer still gets an offer.
    assert_eq!(one(&renew(&mut s, T0 + 20, 1, real)).message_type, DHCPACK);
    let offer = one(&discover(&mut s, T0 + 20, 2));
    assert_eq!(
        one(&select(&mut s, T0 + 20, 2, offer.yiaddr)).message_type,
        DHCPACK
    );
}

#[test]
fn malformed_and_unexpected_messages_are_counted_per_reason() {
    let mut s = server(10);
    let good = build_request(DHCPDISCOVER, mac(1), NONE, &[]);
    let mut wrong_cookie = good.clone();
    wrong_cookie[239] = 0;
    let offer_from_a_client = build_request(DHCPOFFER, mac(1), NONE, &[]);
    // A relay on another subnet; one on the LAN is served (see below).
    let mut relayed = good.clone();
    relayed[24..28].copy_from_slice(&[10, 0, 0, 1]);
    let no_address = build_request(DHCPREQUEST, mac(1), NONE, &[]);
    for bytes in [
        &good[..100],
        &wrong_cookie,
        &offer_from_a_client,
        &relayed,
        &no_address,
    ] {
        assert!(s.handle(T0, Input::Received { bytes }).is_empty());
    }
    let dropped = &s.status(T0).dropped;
    for reason in [
        "too-short",
        "bad-magic-cookie",
        "unexpected-type",
        "relayed",
        "no-address",
    ] {
        assert_eq!(dropped.get(reason), Some(&1), "{reason}: {dropped:?}");
    }
}

#[test]
fn a_relay_on_the_lan_subnet_is_answered_at_port_67() {
    let mut s = server(10);
    let mut bytes = build_request(DHCPDISCOVER, mac(1), NONE, &[]);
    bytes[24..28].copy_from_slice(&ip(2).octets());
    let offer = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_eq!(offer.to, Destination::Relay(ip(2)));
    let mut bytes = build_request(
        DHCPREQUEST,
        mac(1),
        NONE,
        &[(OPT_REQUESTED_IP, &ip(150).octets())],
    );
    bytes[24..28].copy_from_slice(&ip(2).octets());
    let nak = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_eq!(
        (nak.message_type, nak.to),
        (DHCPNAK, Destination::Relay(ip(2)))
    );
}

#[test]
fn client_hostnames_are_checked() {
    assert!(valid_hostname("tv-1"));
    assert!(!valid_hostname("-tv") && !valid_hostname("tv.lan") && !valid_hostname(""));
    assert!(!valid_hostname(&"a".repeat(64)) && !valid_hostname("_tv"));
    assert!(valid_hostname("ESP_1A2B3C"));
    assert!(!valid_hostname("wpad") && !valid_hostname("WPAD") && !valid_hostname("localhost"));
    let mut s = server(10);
    let req = |name: &[u8], fqdn: Option<&[u8]>| {
        let mut options: Vec<(u8, &[u8])> = vec![
            (OPT_REQUESTED_IP, &[192, 168, 1, 100]),
            (OPT_HOSTNAME, name),
        ];
        if let Some(f) = fqdn {
            options.push((OPT_CLIENT_FQDN, f));
        }
        build_request(DHCPREQUEST, mac(1), NONE, &options)
    };
    // The name the pool lease (of client 1) got from a REQUEST naming it so.
    let mut named = |name: &[u8], fqdn: Option<&[u8]>| {
        s.handle(
            T0,
            Input::Received {
                bytes: &req(name, fqdn),
            },
        );
        (s.lease_list(T0).iter())
            .find(|l| !l.is_static)
            .unwrap()
            .hostname
            .clone()
    };
    assert_eq!(named(b"bad name!", None), None);
    assert_eq!(
        named(b"x", Some(b"\x00\x00\x00laptop.home")).as_deref(),
        Some("laptop")
    );
    // A name ended with a NUL (some Windows versions) is the name before it.
    assert_eq!(named(b"tablet\0", None).as_deref(), Some("tablet"));
}

/// One client message built from a few arbitrary choices: the interesting
/// space (types, few MACs, addresses around the pool) rather than noise.
fn arbitrary_message() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=9,
        0u8..6,
        prop::option::of(95u8..110),
        prop::option::of(95u8..110),
        prop::option::of(prop_oneof![
            Just(SERVER),
            Just(Ipv4Addr::new(192, 168, 1, 2))
        ]),
        any::<bool>(),
    )
        .prop_map(|(t, m, requested, ciaddr, server_id, client_id)| {
            let requested = requested.map(|r| ip(r).octets());
            let server_id = server_id.map(|s| s.octets());
            let mut options: Vec<(u8, &[u8])> = Vec::new();
            if let Some(r) = &requested {
                options.push((OPT_REQUESTED_IP, r));
            }
            if let Some(s) = &server_id {
                options.push((OPT_SERVER_ID, s));
            }
            let id = [1, m];
            if client_id {
                options.push((OPT_CLIENT_ID, &id));
            }
            build_request(t, mac(m), ciaddr.map_or(NONE, ip), &options)
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut s = server(5);
        let _ = s.handle(T0, Input::Received { bytes: &bytes });
    }

    #[test]
    fn arbitrary_exchanges_keep_the_invariants(
        steps in prop::collection::vec((arbitrary_message(), 0u64..400, 0u8..12), 1..40)
    ) {
        // The LAN moves now and then (a followed br-lan): a shifted pool,
        // another subnet, and back; leases get parked and restored.
        let shifted = ServerConfig {
            pool_first: ip(103),
            pool_last: ip(107),
            ..config(5)
        };
        let elsewhere = ServerConfig {
            lan: Ipv4Subnet::new(Ipv4Addr::new(10, 0, 0, 1), 8).unwrap(),
            pool_first: Ipv4Addr::new(10, 0, 0, 100),
            pool_last: Ipv4Addr::new(10, 0, 0, 104),
            statics: Vec::new(),
            ..config(5)
        };
        let configs = [config(5), shifted, elsewhere];
        let mut current = 0;
        let mut s = server(5);
        let mut now = T0;
        for (bytes, dt, move_to) in &steps {
            now += dt;
            if let Some(next) = configs.get(usize::from(*move_to)) {
                s.reconfigure(next.clone(), now);
                current = usize::from(*move_to);
            }
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle(now, Input::Timeout);
            }
            for reply in sent(&s.handle(now, Input::Received { bytes })) {
                if reply.message_type != DHCPNAK && !reply.yiaddr.is_unspecified() {
                    // Only the current pool's or static addresses are ever
                    // handed out.
                    let c = &configs[current];
                    let ip = reply.yiaddr;
                    prop_assert!(
                        (c.pool_first..=c.pool_last).contains(&ip)
                            || c.statics.iter().any(|h| h.ip == ip),
                        "{reply:?}"
                    );
                }
            }
            let file = s.lease_file_contents(now, &file_base());
            let (parsed, bad) = super::leases::parse(&file, &file_base(), u64::MAX, valid_hostname);
            prop_assert_eq!(bad, 0);
            // One active lease per address and per client.
            let mut ips: Vec<_> = parsed.iter().map(|l| l.ip).collect();
            ips.sort();
            ips.dedup();
            prop_assert_eq!(ips.len(), parsed.len());
            let status = s.status(now);
            prop_assert!(status.pool_used <= status.pool_size);
        }
    }
}

#[test]
fn a_client_cannot_take_a_configured_hosts_name() {
    let lease = |name: &str, last: u8| super::LeaseInfo {
        mac: [2, 0, 0, 0, 0, last],
        ip: ip(last),
        hostname: Some(name.into()),
        expires: 1,
        is_static: false,
    };
    let statics = [("printer".to_string(), ip(20))];
    let leases = [lease("Printer", 101), lease("tv", 102), lease("TV", 103)];
    let names = super::local_names(&statics, &leases, None);
    assert_eq!(
        names,
        [("printer".to_string(), ip(20)), ("tv".to_string(), ip(102))]
    );
    // The LAN moved away from the configured address (a followed subnet):
    // the printer's own lease names it now.
    let moved = crate::lan4::Ipv4Subnet::new(Ipv4Addr::new(10, 0, 0, 1), 8);
    let names = super::local_names(&statics, &leases, moved);
    assert_eq!(
        names,
        [
            ("Printer".to_string(), ip(101)),
            ("tv".to_string(), ip(102))
        ]
    );
}

/// A laptop undocked from its wired port keeps its name on Wi-Fi: the name
/// goes with the lease granted or renewed last, not the lower address.
#[test]
fn a_name_on_two_leases_is_the_newest_ones() {
    let lease = |last: u8, expires: u64| super::LeaseInfo {
        mac: [2, 0, 0, 0, 0, last],
        ip: ip(last),
        hostname: Some("thinkpad".into()),
        expires,
        is_static: false,
    };
    let wired = lease(118, T0 + 600);
    let wifi = lease(203, T0 + 3600);
    for leases in [[wired.clone(), wifi.clone()], [wifi, wired]] {
        let names = super::local_names(&[], &leases, None);
        assert_eq!(names, [("thinkpad".to_string(), ip(203))]);
    }
}

/// A host entry with a client id and a MAC matches two devices when each
/// carries one of them: the second gets a pool address, never the first
/// one's static address.
#[test]
fn a_static_address_is_never_acked_to_two_clients() {
    let mut s = server_with_id_matched_host();
    // The MAC's device takes the address first.
    assert_eq!(one(&select(&mut s, T0, 60, ip(21))).message_type, DHCPACK);
    // Another device with the entry's client id.
    let with_id = |kind: u8, options: &[(u8, &[u8])]| {
        let mut all: Vec<(u8, &[u8])> = vec![(OPT_CLIENT_ID, &[0, b'x'])];
        all.extend_from_slice(options);
        build_request(kind, mac(61), NONE, &all)
    };
    let requested = ip(21).octets();
    let bytes = with_id(
        DHCPREQUEST,
        &[
            (OPT_SERVER_ID, &SERVER.octets()),
            (OPT_REQUESTED_IP, &requested),
        ],
    );
    let answer = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_eq!(answer.message_type, DHCPNAK);
    let bytes = with_id(DHCPDISCOVER, &[]);
    let offer = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_eq!(offer.yiaddr, home(10, 61), "a pool address");
    let offered = offer.yiaddr.octets();
    let bytes = with_id(
        DHCPREQUEST,
        &[
            (OPT_SERVER_ID, &SERVER.octets()),
            (OPT_REQUESTED_IP, &offered),
        ],
    );
    let ack = one(&s.handle(T0, Input::Received { bytes: &bytes }));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, home(10, 61)));
    let holders: Vec<_> = s.lease_list(T0).iter().map(|l| (l.ip, l.mac)).collect();
    assert!(holders.contains(&(ip(21), mac(60))), "{holders:?}");
}

/// A host entry matched by MAC alone (the usual one) keeps its address for
/// the machine whether or not it sends a client id: a dual-boot PC, or a
/// PXE ROM then its OS (dhclient sends none, Windows and udhcpc send one).
#[test]
fn a_mac_matched_host_keeps_its_address_with_and_without_a_client_id() {
    let mut s = server(10);
    assert_eq!(lease(&mut s, T0, 50), ip(20), "no client id");
    let client_id = [&[1u8][..], &mac(50)].concat();
    let reboot = build_request(
        DHCPREQUEST,
        mac(50),
        NONE,
        &[
            (OPT_REQUESTED_IP, &ip(20).octets()),
            (OPT_CLIENT_ID, &client_id),
        ],
    );
    let ack = one(&s.handle(T0 + 60, Input::Received { bytes: &reboot }));
    assert_eq!((ack.message_type, ack.yiaddr), (DHCPACK, ip(20)));
    // And back to the system without one.
    assert_eq!(one(&discover(&mut s, T0 + 120, 50)).yiaddr, ip(20));
    assert_eq!(
        one(&select(&mut s, T0 + 120, 50, ip(20))).message_type,
        DHCPACK
    );
    let holders: Vec<_> = s.lease_list(T0 + 120).iter().map(|l| l.ip).collect();
    assert_eq!(
        holders.iter().filter(|&&a| a == ip(20)).count(),
        1,
        "{holders:?}"
    );
}

/// A host entry's address declined (another machine uses it, RFC 2131
/// §4.3.3): the host is served from the pool until the quarantine ends,
/// not offered the same address again and again, and the address is never
/// reclaimed for anyone else.
#[test]
fn a_declined_host_address_is_quarantined_and_the_host_served_from_the_pool() {
    let mut s = server(2);
    let stranger = lease(&mut s, T0, 1);
    assert_eq!(lease(&mut s, T0, 50), ip(20));
    decline(&mut s, T0 + 1, 50, ip(20));
    let status = s.status(T0 + 1);
    assert_eq!((status.quarantined, status.pool_used), (1, 1));
    let offer = one(&discover(&mut s, T0 + 12, 50));
    assert!(
        offer.yiaddr != ip(20) && offer.yiaddr != stranger,
        "{offer:?}"
    );
    assert_eq!(
        one(&select(&mut s, T0 + 12, 50, offer.yiaddr)).message_type,
        DHCPACK
    );
    assert_eq!(
        one(&init_reboot(&mut s, T0 + 13, 50, ip(20))).option(56),
        Some(&b"declined recently, quarantined"[..])
    );
    // The pool is full: a newcomer after the quarantine gets nothing, not
    // the host's address.
    let later = T0 + 1 + DECLINE_QUARANTINE_SECS;
    assert!(sent(&discover(&mut s, later, 3)).is_empty());
    // The host gets its own address back.
    assert_eq!(one(&discover(&mut s, later, 50)).yiaddr, ip(20));
}

/// A client renewing an address after its quarantine ended (it used it
/// all along: a lost lease file) holds it: a full pool does not reclaim it
/// for a newcomer from the stale quarantine record.
#[test]
fn an_address_granted_after_its_quarantine_is_not_reclaimed_for_another() {
    let mut s = server(2);
    let x = lease(&mut s, T0, 1);
    decline(&mut s, T0, 1, x);
    assert_ne!(lease(&mut s, T0 + 1, 2), x);
    let after = T0 + 1 + DECLINE_QUARANTINE_SECS;
    assert_eq!(one(&renew(&mut s, after, 3, x)).message_type, DHCPACK);
    assert!(
        sent(&discover(&mut s, after + 1, 4))
            .iter()
            .all(|o| o.yiaddr != x),
        "offered an address in use"
    );
    assert_eq!(one(&renew(&mut s, after + 2, 3, x)).message_type, DHCPACK);
}

/// With the pool full, an expired record of a static host is not
/// reclaimed for a stranger: the address stays the host's.
#[test]
fn a_full_pool_does_not_reclaim_a_static_hosts_address() {
    let mut s = server(2);
    assert_eq!(lease(&mut s, T0, 50), ip(20));
    lease(&mut s, T0 + 10, 1);
    lease(&mut s, T0 + 10, 2);
    // The printer's lease ran out; the pool's are still active.
    let later = T0 + 3605;
    s.handle(later, Input::Timeout);
    assert!(discover(&mut s, later, 7).is_empty(), "nothing to offer");
    assert_eq!(s.status(later).pool_exhausted, 1);
    assert_eq!(one(&discover(&mut s, later, 50)).yiaddr, ip(20));
}

/// The lease file lives in RAM: after a router reboot the server starts
/// empty while the LAN's devices keep their addresses. A newcomer is not
/// offered the address a silent device still holds (its home differs), and
/// the device itself gets its address back when it asks again.
#[test]
fn after_a_lost_lease_file_clients_land_where_they_were() {
    let mut before = server(10);
    let held = lease(&mut before, T0, 1);
    let mut after = server(10);
    assert_ne!(home(10, 2), held);
    assert_eq!(one(&discover(&mut after, T0 + 60, 2)).yiaddr, home(10, 2));
    assert_eq!(one(&discover(&mut after, T0 + 60, 1)).yiaddr, held);
}
