//! Deterministic tests of the DNS proxy: a fake clock, seeded IDs, messages
//! built by hand, and property tests feeding arbitrary bytes to every parser
//! and to the core.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::cache::{Cache, CacheKey};
use super::proxy::{AttemptId, MAX_IN_FLIGHT_PER_CLIENT, QUERY_DEADLINE};
use super::wire::{self, Header, Malformed, TYPE_AAAA};
use super::*;

const TYPE_TXT: u16 = 16;

fn name(text: &str) -> Vec<u8> {
    wire::name_to_wire(text).unwrap()
}

/// A query for `qname`/`qtype`; `edns` = Some(dnssec_ok) adds an OPT with 4096.
fn query(id: u16, qname: &str, qtype: u16, edns: Option<bool>) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    m.extend_from_slice(&name(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some(dnssec_ok) = edns {
        m.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0]);
        m.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
    }
    m
}

struct Rr {
    rtype: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

fn rr(rtype: u16, ttl: u32, rdata: &[u8]) -> Rr {
    Rr {
        rtype,
        ttl,
        rdata: rdata.to_vec(),
    }
}

/// The answer an upstream would give to `q`: same ID and question,
/// `answers` owned by the question name (compressed), `authority` likewise.
fn reply(q: &[u8], rcode: u8, answers: &[Rr], authority: &[Rr]) -> Vec<u8> {
    let (_, qend) = wire::read_question(q).unwrap();
    let mut m = q[..qend].to_vec();
    m[2] |= 0x80; // QR
    m[3] = (m[3] & 0xf0) | 0x80 | rcode; // RA + rcode
    m[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    m[8..10].copy_from_slice(&(authority.len() as u16).to_be_bytes());
    m[10..12].copy_from_slice(&0u16.to_be_bytes());
    for r in answers.iter().chain(authority) {
        m.extend_from_slice(&[0xc0, 12]);
        m.extend_from_slice(&r.rtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&r.ttl.to_be_bytes());
        m.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&r.rdata);
    }
    m
}

fn soa(ttl: u32, minimum: u32) -> Rr {
    let mut rdata = name("ns.example.net");
    rdata.extend(name("admin.example.net"));
    for v in [1u32, 7200, 3600, 1209600, minimum] {
        rdata.extend_from_slice(&v.to_be_bytes());
    }
    Rr {
        rtype: wire::TYPE_SOA,
        ttl,
        rdata,
    }
}

fn server(n: u8) -> SocketAddr {
    SocketAddr::new(format!("2001:db8::{n}").parse().unwrap(), 53)
}

fn client(port: u16) -> Client {
    Client::Udp(SocketAddr::from((Ipv4Addr::new(192, 168, 1, 100), port)))
}

struct Harness {
    proxy: Proxy,
    now: Instant,
}

impl Harness {
    fn new(servers: &[SocketAddr]) -> Harness {
        let now = Instant::now();
        let mut proxy = Proxy::new(100, 7, now);
        proxy.set_upstreams(servers);
        Harness { proxy, now }
    }
    fn ask(&mut self, c: Client, q: &[u8]) -> Vec<Action> {
        self.proxy.handle(
            self.now,
            Input::ClientQuery {
                client: c,
                bytes: q,
            },
        )
    }
    fn reply(&mut self, attempt: AttemptId, from: SocketAddr, bytes: &[u8]) -> Vec<Action> {
        self.proxy.handle(
            self.now,
            Input::UdpReply {
                attempt,
                from,
                bytes,
            },
        )
    }
    fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.proxy.handle(self.now, Input::Timeout)
    }
}

/// The one upstream send in `actions`.
fn sent(actions: &[Action]) -> (AttemptId, SocketAddr, Vec<u8>) {
    let sends: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::ToUpstream {
                attempt,
                server,
                bytes,
                ..
            } => Some((*attempt, *server, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 1, "one upstream send in {actions:?}");
    sends.into_iter().next().unwrap()
}

fn answered(actions: &[Action]) -> Option<(Client, Vec<u8>)> {
    actions.iter().find_map(|a| match a {
        Action::ToClient { client, bytes } => Some((*client, bytes.clone())),
        _ => None,
    })
}

fn id_of(m: &[u8]) -> u16 {
    Header::read(m).unwrap().id
}

fn rcode_of(m: &[u8]) -> u8 {
    Header::read(m).unwrap().rcode()
}

// ---- wire ----

#[test]
fn names_follow_pointers_backwards_only() {
    let mut m = query(1, "www.example.net", 1, None);
    // A second name: "a" + pointer to "example.net" at offset 12+4.
    let at = m.len();
    m.extend_from_slice(&[1, b'a', 0xc0, 16]);
    let (n, end) = wire::read_name(&m, at).unwrap();
    assert_eq!(n, name("a.example.net"));
    assert_eq!(end, at + 4);
    // A pointer to itself, and one pointing forwards: loops are impossible.
    let mut looped = m.clone();
    let here = looped.len();
    looped.extend_from_slice(&[0xc0, here as u8]);
    assert_eq!(wire::read_name(&looped, here), Err(Malformed::PointerLoop));
    let mut forward = m[..12].to_vec();
    forward.extend_from_slice(&[0xc0, 14, 0]);
    assert_eq!(wire::read_name(&forward, 12), Err(Malformed::PointerLoop));
}

#[test]
fn names_are_lower_cased_and_bounded() {
    let mut m = query(1, "WwW.ExAmple.NET", 1, None);
    assert_eq!(
        wire::read_question(&m).unwrap().0.name,
        name("www.example.net")
    );
    m.truncate(14);
    assert_eq!(wire::read_question(&m), Err(Malformed::Truncated));
    let mut long = query(1, "a", 1, None)[..12].to_vec();
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.push(0);
    assert_eq!(wire::read_name(&long, 12), Err(Malformed::NameTooLong));
    // Exactly 255 octets (RFC 1035 §2.3.4) is still a name.
    let mut max = query(1, "a", 1, None)[..12].to_vec();
    for _ in 0..3 {
        max.push(63);
        max.extend_from_slice(&[b'x'; 63]);
    }
    max.push(61);
    max.extend_from_slice(&[b'y'; 61]);
    max.push(0);
    assert_eq!(max.len() - 12, 255);
    assert_eq!(wire::read_name(&max, 12).unwrap().0.len(), 255);
    assert_eq!(wire::read_question(&[0; 11]), Err(Malformed::ShortHeader));
}

#[test]
fn scan_finds_ttls_edns_and_the_negative_ttl() {
    let q = query(9, "example.net", 1, Some(true));
    let layout = wire::scan(&q).unwrap();
    assert_eq!(
        layout.edns,
        Some(wire::Edns {
            udp_size: 4096,
            dnssec_ok: true
        })
    );
    assert!(layout.ttl_offsets.is_empty(), "the OPT TTL is not a TTL");
    let r = reply(
        &q,
        0,
        &[rr(1, 300, &[192, 0, 2, 1]), rr(1, 60, &[192, 0, 2, 2])],
        &[],
    );
    let layout = wire::scan(&r).unwrap();
    assert_eq!(layout.ttl_offsets.len(), 2);
    assert_eq!(layout.min_ttl, Some(60));
    let nx = reply(&q, 3, &[], &[soa(3600, 900)]);
    assert_eq!(wire::scan(&nx).unwrap().negative_ttl, Some(900));
}

/// A negative answer reached through a CNAME lives no longer than the
/// CNAME nor than its negative TTL (min(SOA TTL, MINIMUM), RFC 2308 §5):
/// a name that gains an AAAA, or a repointed CNAME, is seen in time.
#[test]
fn negative_answers_after_a_cname_keep_the_shortest_lifetime() {
    let q = query(9, "www.example.net", TYPE_AAAA, None);
    let target = [6, b't', b'a', b'r', b'g', b'e', b't', 0];
    let ttl_of = |msg: &[u8]| {
        let header = Header::read(msg).unwrap();
        super::cache::cacheable_ttl(&header, &wire::scan(msg).unwrap())
    };
    // NODATA after a day-long CNAME, SOA TTL 3600 with MINIMUM 60.
    let nodata = reply(&q, 0, &[rr(5, 86400, &target)], &[soa(3600, 60)]);
    assert_eq!(ttl_of(&nodata), Some(60));
    // NXDOMAIN after a 5 s CNAME, negative TTL 900.
    let nxdomain = reply(&q, 3, &[rr(5, 5, &target)], &[soa(3600, 900)]);
    assert_eq!(ttl_of(&nxdomain), Some(5));
    // Plain ones as before.
    assert_eq!(ttl_of(&reply(&q, 3, &[], &[soa(3600, 900)])), Some(900));
    assert_eq!(
        ttl_of(&reply(&q, 0, &[rr(28, 300, &[0; 16])], &[])),
        Some(300)
    );
}

#[test]
fn ttls_age_in_place() {
    let q = query(9, "example.net", 1, None);
    let mut r = reply(&q, 0, &[rr(1, 300, &[192, 0, 2, 1])], &[]);
    let offsets = wire::scan(&r).unwrap().ttl_offsets;
    wire::age_ttls(&mut r, offsets.iter().copied(), 100);
    assert_eq!(wire::scan(&r).unwrap().min_ttl, Some(200));
    wire::age_ttls(&mut r, offsets.iter().copied(), 1000);
    assert_eq!(wire::scan(&r).unwrap().min_ttl, Some(0));
}

// ---- forwarding and matching ----

#[test]
fn forwards_the_client_bytes_with_only_the_id_changed() {
    let mut h = Harness::new(&[server(1)]);
    // Unknown type, EDNS with DO, CD set: all must pass through untouched.
    let mut q = query(0x1234, "example.net", 65280, Some(true));
    q[3] |= 0x10;
    let (attempt, to, up) = sent(&h.ask(client(5000), &q));
    assert_eq!(to, server(1));
    assert_ne!(
        id_of(&up),
        0x1234,
        "a fresh ID (this seed does not collide)"
    );
    assert_eq!(up[2..], q[2..]);
    let r = reply(&up, 0, &[rr(65280, 60, b"opaque")], &[]);
    let (c, back) = answered(&h.reply(attempt, server(1), &r)).unwrap();
    assert_eq!(c, client(5000));
    assert_eq!(id_of(&back), 0x1234);
    assert_eq!(back[2..], r[2..]);
    assert_eq!(h.proxy.poll_timeout(), None, "no timer left behind");
}

#[test]
fn upstream_ids_are_random() {
    let mut h = Harness::new(&[server(1)]);
    let ids: std::collections::HashSet<u16> = (0..200)
        .map(|i| {
            let c = Client::Udp(SocketAddr::from(([192, 168, 1, i as u8], 6000)));
            id_of(&sent(&h.ask(c, &query(1, "example.net", 1, None))).2)
        })
        .collect();
    assert!(ids.len() > 190, "IDs repeat too often: {}", ids.len());
}

#[test]
fn spoofed_replies_are_counted_and_ignored() {
    let mut h = Harness::new(&[server(1)]);
    let q = query(7, "example.net", 1, None);
    let (attempt, _, up) = sent(&h.ask(client(5000), &q));
    let good = reply(&up, 0, &[rr(1, 60, &[192, 0, 2, 1])], &[]);
    let mut wrong_id = good.clone();
    wire::set_id(&mut wrong_id, id_of(&up).wrapping_add(1));
    assert!(h.reply(attempt, server(1), &wrong_id).is_empty());
    let wrong_port = SocketAddr::new(server(1).ip(), 5353);
    assert!(h.reply(attempt, wrong_port, &good).is_empty());
    assert!(h.reply(attempt, server(2), &good).is_empty());
    let other_question = reply(
        &{
            let mut o = query(0, "example.org", 1, None);
            wire::set_id(&mut o, id_of(&up));
            o
        },
        0,
        &[rr(1, 60, &[6, 6, 6, 6])],
        &[],
    );
    assert!(h.reply(attempt, server(1), &other_question).is_empty());
    let mut as_query = good.clone();
    as_query[2] &= 0x7f;
    assert!(h.reply(attempt, server(1), &as_query).is_empty());
    assert!(h.reply(attempt + 1000, server(1), &good).is_empty());
    let drops = h.proxy.status().drops;
    assert_eq!(
        (
            drops.wrong_id,
            drops.wrong_source,
            drops.wrong_question,
            drops.malformed_reply,
            drops.unsolicited
        ),
        (1, 2, 1, 1, 1)
    );
    // The genuine answer still gets through.
    let (_, back) = answered(&h.reply(attempt, server(1), &good)).unwrap();
    assert_eq!(back[2..], good[2..]);
    // And once answered, nothing more is accepted for it.
    assert!(h.reply(attempt, server(1), &good).is_empty());
}

#[test]
fn a_question_differing_only_in_case_matches() {
    let mut h = Harness::new(&[server(1)]);
    let (attempt, _, up) = sent(&h.ask(client(5000), &query(7, "Example.NET", 1, None)));
    let mut r = reply(&up, 0, &[], &[]);
    r[13..20].copy_from_slice(b"EXAMPLE");
    assert!(answered(&h.reply(attempt, server(1), &r)).is_some());
}

#[test]
fn timeout_fails_over_and_all_down_gives_servfail_within_the_deadline() {
    let mut h = Harness::new(&[server(1), server(2)]);
    let q = query(7, "example.net", 1, Some(false));
    let (first, to1, _) = sent(&h.ask(client(5000), &q));
    assert_eq!(to1, server(1));
    let deadline = h.proxy.poll_timeout().unwrap();
    let (_, to2, _) = sent(&h.advance(deadline - h.now));
    assert_eq!(to2, server(2));
    // The third attempt closes the first: at most two listen at once.
    let wake = h.proxy.poll_timeout().unwrap();
    let actions = h.advance(wake - h.now);
    assert!(actions.contains(&Action::CloseAttempt { attempt: first }));
    let (_, to3, _) = sent(&actions);
    assert_eq!(to3, server(1));
    let mut servfail = None;
    let mut open = 2;
    for _ in 0..20 {
        let wake = h.proxy.poll_timeout().unwrap();
        let actions = h.advance(wake - h.now);
        let closed = actions
            .iter()
            .filter(|a| matches!(a, Action::CloseAttempt { .. }))
            .count();
        let started = actions
            .iter()
            .filter(|a| matches!(a, Action::ToUpstream { .. }))
            .count();
        open = open + started - closed;
        assert!(open <= proxy::MAX_LIVE_ATTEMPTS);
        if let Some((_, bytes)) = answered(&actions) {
            assert_eq!(open, 0, "every socket closed with the answer");
            servfail = Some(bytes);
            break;
        }
    }
    let servfail = servfail.expect("SERVFAIL in the end");
    assert_eq!(rcode_of(&servfail), wire::RCODE_SERVFAIL);
    assert_eq!(id_of(&servfail), 7);
    assert!(wire::scan(&servfail).unwrap().edns.is_some(), "OPT echoed");
    assert!(
        h.now - (deadline - Duration::from_millis(250))
            <= QUERY_DEADLINE + Duration::from_millis(1)
    );
    assert_eq!(h.proxy.poll_timeout(), None, "nothing left in flight");
    let status = h.proxy.status();
    assert_eq!(status.servfail_sent, 1);
    assert!(status.upstream_timeouts >= 2);
}

#[test]
fn a_late_answer_from_the_first_server_still_counts() {
    let mut h = Harness::new(&[server(1), server(2)]);
    let (first, _, up1) = sent(&h.ask(client(5000), &query(7, "example.net", 1, None)));
    let wake = h.proxy.poll_timeout().unwrap();
    sent(&h.advance(wake - h.now));
    let r = reply(&up1, 0, &[rr(1, 60, &[192, 0, 2, 1])], &[]);
    assert!(answered(&h.reply(first, server(1), &r)).is_some());
}

#[test]
fn servfail_fails_over_at_once_and_the_last_one_is_forwarded() {
    let mut h = Harness::new(&[server(1), server(2)]);
    let (a1, _, up1) = sent(&h.ask(client(5000), &query(7, "example.net", 1, None)));
    let actions = h.reply(a1, server(1), &reply(&up1, 2, &[], &[]));
    assert!(actions.contains(&Action::CloseAttempt { attempt: a1 }));
    let (a2, to, up2) = sent(&actions);
    assert_eq!(to, server(2));
    let refused = reply(&up2, 5, &[], &[]);
    let (_, back) = answered(&h.reply(a2, server(2), &refused)).unwrap();
    assert_eq!(back[2..], refused[2..]);
    assert_eq!(h.proxy.status().upstream_failures, 2);
}

/// A REFUSED from the second server does not end the query while the
/// first, slower one may still answer: its answer reaches the client.
#[test]
fn a_refusal_waits_for_a_slower_server_still_asked() {
    let mut h = Harness::new(&[server(1), server(2)]);
    let (a1, _, up1) = sent(&h.ask(client(5000), &query(7, "example.net", 1, None)));
    let wake = h.proxy.poll_timeout().unwrap();
    let (a2, to, up2) = sent(&h.advance(wake - h.now));
    assert_eq!(to, server(2));
    let refused = h.reply(a2, server(2), &reply(&up2, 5, &[], &[]));
    assert_eq!(answered(&refused), None, "{refused:?}");
    let r = reply(&up1, 0, &[rr(1, 60, &[192, 0, 2, 1])], &[]);
    let (_, back) = answered(&h.reply(a1, server(1), &r)).unwrap();
    assert_eq!(rcode_of(&back), 0);
}

#[test]
fn the_fastest_server_is_preferred() {
    let mut h = Harness::new(&[server(1), server(2)]);
    // Server 1 is slow (200 ms), server 2 fast (5 ms).
    let (a, _, up) = sent(&h.ask(client(1), &query(1, "a.example", 1, None)));
    h.now += Duration::from_millis(200);
    h.reply(a, server(1), &reply(&up, 0, &[], &[]));
    let q = query(2, "b.example", 1, None);
    let (a, to, up) = sent(&h.ask(client(2), &q));
    assert_eq!(to, server(2), "unmeasured (50 ms guess) before slow");
    h.now += Duration::from_millis(5);
    h.reply(a, server(2), &reply(&up, 0, &[], &[]));
    for i in 0..20 {
        let (a, to, up) = sent(&h.ask(client(3), &query(i, &format!("c{i}.example"), 1, None)));
        assert_eq!(to, server(2));
        h.now += Duration::from_millis(5);
        h.reply(a, server(2), &reply(&up, 0, &[], &[]));
    }
    let status = h.proxy.status();
    assert!(status.upstreams[1].srtt_ms.unwrap() < 6.0);
}

#[test]
fn no_upstreams_means_servfail_at_once() {
    let mut h = Harness::new(&[]);
    let (_, back) = answered(&h.ask(client(1), &query(3, "example.net", 1, None))).unwrap();
    assert_eq!(rcode_of(&back), wire::RCODE_SERVFAIL);
}

#[test]
fn tcp_queries_go_over_tcp_and_match_on_server_and_id() {
    let mut h = Harness::new(&[server(1)]);
    let tcp_client = Client::Tcp {
        conn: 4,
        peer: SocketAddr::from((Ipv4Addr::new(192, 168, 1, 9), 40000)),
    };
    let q = query(11, "big.example", TYPE_TXT, None);
    let actions = h.ask(tcp_client, &q);
    assert!(matches!(
        actions[0],
        Action::ToUpstream {
            transport: Transport::Tcp,
            ..
        }
    ));
    let (_, _, up) = sent(&actions);
    let big = reply(&up, 0, &[rr(TYPE_TXT, 60, &[b'x'; 3000])], &[]);
    let unsolicited = h.proxy.handle(
        h.now,
        Input::TcpReply {
            server: server(2),
            bytes: &big,
        },
    );
    assert!(unsolicited.is_empty());
    let (c, back) = answered(&h.proxy.handle(
        h.now,
        Input::TcpReply {
            server: server(1),
            bytes: &big,
        },
    ))
    .unwrap();
    assert_eq!(c, tcp_client);
    assert_eq!(back.len(), big.len(), "no 512-byte limit over TCP");
}

/// A lost TCP connection (RFC 7766 §6.2.1): every query it carried is sent
/// once more to the same server, on a new connection, and the loss counts
/// as one failure; when that connection is lost too, they fail over.
#[test]
fn tcp_connection_loss_resends_once_then_fails_over() {
    let mut h = Harness::new(&[server(1), server(2)]);
    let tcp_client = |port| Client::Tcp {
        conn: u64::from(port),
        peer: SocketAddr::from(([192, 168, 1, 9], port)),
    };
    // Server 1 answers at once: the fastest, asked first.
    let (a, _, up) = sent(&h.ask(client(1), &query(10, "c.example", 1, None)));
    h.reply(a, server(1), &reply(&up, 0, &[], &[]));
    let (a1, _, q1) = sent(&h.ask(tcp_client(1), &query(11, "a.example", 1, None)));
    let (a2, _, q2) = sent(&h.ask(tcp_client(2), &query(12, "b.example", 1, None)));
    let resent = h.proxy.handle(h.now, Input::TcpDown { server: server(1) });
    let expected: Vec<Action> = [(a1, q1), (a2, q2)]
        .into_iter()
        .map(|(attempt, bytes)| Action::ToUpstream {
            attempt,
            server: server(1),
            transport: Transport::Tcp,
            bytes,
        })
        .collect();
    assert_eq!(resent.len(), 2);
    assert!(expected.iter().all(|e| resent.contains(e)), "{resent:?}");
    let status = h.proxy.status();
    assert_eq!(status.upstream_failures, 1);
    assert_eq!(status.upstreams[0].failures, 1);
    let failed_over = h.proxy.handle(h.now, Input::TcpDown { server: server(1) });
    let to: Vec<_> = failed_over
        .iter()
        .filter_map(|a| match a {
            Action::ToUpstream { server, .. } => Some(*server),
            _ => None,
        })
        .collect();
    assert_eq!(to, [server(2), server(2)]);
    assert_eq!(h.proxy.status().upstream_failures, 2);
}

#[test]
fn an_oversized_udp_answer_becomes_tc() {
    let mut h = Harness::new(&[server(1)]);
    let q = query(5, "big.example", TYPE_TXT, None);
    let (a, _, up) = sent(&h.ask(client(1), &q));
    // A server ignoring the 512-byte limit of a client without EDNS.
    let big = reply(&up, 0, &[rr(TYPE_TXT, 60, &[b'x'; 1000])], &[]);
    let (_, back) = answered(&h.reply(a, server(1), &big)).unwrap();
    let header = Header::read(&back).unwrap();
    assert!(header.truncated());
    assert!(back.len() <= 512);
}

#[test]
fn truncated_answers_reach_the_client_and_are_not_cached() {
    let mut h = Harness::new(&[server(1)]);
    let q = query(5, "big.example", TYPE_TXT, None);
    let (a, _, up) = sent(&h.ask(client(1), &q));
    let mut tc = reply(&up, 0, &[], &[]);
    tc[2] |= 0x02;
    let (_, back) = answered(&h.reply(a, server(1), &tc)).unwrap();
    assert!(Header::read(&back).unwrap().truncated());
    sent(&h.ask(client(1), &q)); // asked upstream again
}

// ---- cache ----

fn cached_round(h: &mut Harness, q: &[u8], answers: &[Rr], authority: &[Rr], rcode: u8) -> Vec<u8> {
    let (a, _, up) = sent(&h.ask(client(1), q));
    let r = reply(&up, rcode, answers, authority);
    answered(&h.reply(a, server(1), &r)).unwrap();
    r
}

#[test]
fn cache_serves_the_same_bytes_with_new_id_and_aged_ttls() {
    let mut h = Harness::new(&[server(1)]);
    let q = query(1, "example.net", 1, Some(true));
    let r = cached_round(&mut h, &q, &[rr(1, 300, &[192, 0, 2, 1])], &[], 0);
    h.now += Duration::from_secs(100);
    let (_, hit) =
        answered(&h.ask(client(2), &query(0x4242, "EXAMPLE.net", 1, Some(true)))).unwrap();
    assert_eq!(id_of(&hit), 0x4242);
    let mut expect = r.clone();
    wire::set_id(&mut expect, 0x4242);
    let offsets = wire::scan(&r).unwrap().ttl_offsets;
    wire::age_ttls(&mut expect, offsets.iter().copied(), 100);
    assert_eq!(hit, expect);
    assert_eq!(h.proxy.status().cache_hits, 1);
    // Expired after 300 s: asked again.
    h.now += Duration::from_secs(200);
    sent(&h.ask(client(2), &q));
}

/// A hit written into a recycled buffer (the bytes of an earlier, longer
/// answer) is exactly the cached answer: nothing of the old one remains.
/// A hit carries the question as this client asked it, case included
/// (forwarders that randomise case, "0x20", check it), not as the first
/// asker wrote it.
#[test]
fn a_cache_hit_echoes_the_question_in_the_askers_case() {
    let mut h = Harness::new(&[server(1)]);
    let mut first = query(1, "example.net", 1, None);
    first[13..20].copy_from_slice(b"Example");
    cached_round(&mut h, &first, &[rr(1, 300, &[192, 0, 2, 1])], &[], 0);
    let mut second = query(2, "example.net", 1, None);
    second[13..20].copy_from_slice(b"eXaMpLe");
    let (_, hit) = answered(&h.ask(client(2), &second)).unwrap();
    let (_, question_end) = wire::read_question(&second).unwrap();
    assert_eq!(hit[12..question_end], second[12..question_end]);
}

#[test]
fn a_hit_in_a_recycled_buffer_is_the_cached_answer_only() {
    let mut h = Harness::new(&[server(1)]);
    let short = query(1, "a.example", 1, None);
    let long = query(2, "a-much-longer-name.example", 16, None);
    let r_short = cached_round(&mut h, &short, &[rr(1, 300, &[192, 0, 2, 1])], &[], 0);
    cached_round(&mut h, &long, &[rr(16, 300, &[200; 180])], &[], 0);
    let (_, old) = answered(&h.ask(client(2), &long)).unwrap();
    assert!(old.len() > r_short.len());
    h.proxy.recycle(old);
    let (_, hit) = answered(&h.ask(client(2), &query(7, "a.example", 1, None))).unwrap();
    let mut expect = r_short;
    wire::set_id(&mut expect, 7);
    assert_eq!(hit, expect);
    assert_eq!(h.proxy.status().cache_hits, 2);
}

#[test]
fn dnssec_variants_do_not_mix() {
    let mut h = Harness::new(&[server(1)]);
    cached_round(
        &mut h,
        &query(1, "example.net", 1, Some(false)),
        &[rr(1, 300, &[1, 2, 3, 4])],
        &[],
        0,
    );
    // DO set: a different answer (with RRSIGs) is needed.
    sent(&h.ask(client(1), &query(2, "example.net", 1, Some(true))));
    // CD set: likewise.
    let mut cd = query(3, "example.net", 1, Some(false));
    cd[3] |= 0x10;
    sent(&h.ask(client(1), &cd));
    // Without EDNS at all: likewise.
    sent(&h.ask(client(1), &query(4, "example.net", 1, None)));
    // The same variant: from the cache.
    assert!(answered(&h.ask(client(1), &query(5, "example.net", 1, Some(false)))).is_some());
}

#[test]
fn negative_answers_are_cached_for_the_soa_minimum() {
    let mut h = Harness::new(&[server(1)]);
    let q = query(1, "nx.example.net", 1, None);
    cached_round(&mut h, &q, &[], &[soa(3600, 60)], wire::RCODE_NXDOMAIN);
    h.now += Duration::from_secs(59);
    let (_, hit) = answered(&h.ask(client(1), &q)).unwrap();
    assert_eq!(rcode_of(&hit), wire::RCODE_NXDOMAIN);
    h.now += Duration::from_secs(1);
    sent(&h.ask(client(1), &q));
    // NODATA without an SOA is not cached (RFC 2308 §5).
    let q = query(1, "nodata.example.net", TYPE_AAAA, None);
    cached_round(&mut h, &q, &[], &[], 0);
    sent(&h.ask(client(1), &q));
    // SERVFAIL is not cached.
    let q = query(1, "broken.example.net", 1, None);
    let (a, _, up) = sent(&h.ask(client(1), &q));
    answered(&h.reply(a, server(1), &reply(&up, 2, &[], &[]))).unwrap();
    sent(&h.ask(client(1), &q));
}

#[test]
fn cache_size_zero_disables_it() {
    let mut proxy = Proxy::new(0, 1, Instant::now());
    proxy.set_upstreams(&[server(1)]);
    let mut h = Harness {
        proxy,
        now: Instant::now(),
    };
    let q = query(1, "example.net", 1, None);
    cached_round(&mut h, &q, &[rr(1, 300, &[1, 2, 3, 4])], &[], 0);
    sent(&h.ask(client(1), &q));
}

#[test]
fn cache_is_bounded_in_entries_and_bytes() {
    let now = Instant::now();
    let mut cache = Cache::new(10, now);
    for i in 0..100 {
        let q = query(1, &format!("n{i}.example"), 1, None);
        let r = reply(&q, 0, &[rr(1, 300, &[b'x'; 900])], &[]);
        let (question, _) = wire::read_question(&q).unwrap();
        let key = CacheKey::new(&question, &Header::read(&q).unwrap(), None);
        cache.insert(key.as_ref(), &r, &wire::scan(&r).unwrap(), now);
        assert!(cache.len() <= 10);
        assert!(cache.bytes() <= 10 * 1024);
    }
    assert!(!cache.is_empty());
}

// ---- local names, limits ----

fn with_hosts() -> Harness {
    let mut h = Harness::new(&[server(1)]);
    h.proxy.set_local_hosts(&LocalHosts {
        domain: "lan".into(),
        hosts: vec![
            ("laptop".into(), Ipv4Addr::new(192, 168, 1, 10)),
            ("bad name!".into(), Ipv4Addr::new(192, 168, 1, 11)),
        ],
    });
    h
}

#[test]
fn local_hosts_get_a_and_ptr_answers() {
    let mut h = with_hosts();
    for qname in ["laptop.lan", "LAPTOP.lan", "laptop"] {
        let (_, back) = answered(&h.ask(client(1), &query(1, qname, wire::TYPE_A, None))).unwrap();
        assert_eq!(rcode_of(&back), 0);
        assert_eq!(Header::read(&back).unwrap().ancount, 1);
        assert_eq!(back[back.len() - 4..], [192, 168, 1, 10]);
    }
    let (_, back) = answered(&h.ask(
        client(1),
        &query(1, "10.1.168.192.in-addr.arpa", wire::TYPE_PTR, Some(false)),
    ))
    .unwrap();
    let ptr = name("laptop.lan");
    assert!(back.windows(ptr.len()).any(|w| w == ptr.as_slice()));
    assert!(wire::scan(&back).unwrap().edns.is_some());
    let (_, back) = answered(&h.ask(client(1), &query(1, "laptop.lan", TYPE_AAAA, None))).unwrap();
    assert_eq!(
        (rcode_of(&back), Header::read(&back).unwrap().ancount),
        (0, 0)
    );
    for nx in ["printer.lan", "11.1.168.192.in-addr.arpa"] {
        let (_, back) = answered(&h.ask(client(1), &query(1, nx, wire::TYPE_PTR, None))).unwrap();
        assert_eq!(rcode_of(&back), wire::RCODE_NXDOMAIN, "{nx}");
    }
    // Public reverse names and other domains go upstream.
    sent(&h.ask(
        client(1),
        &query(1, "1.2.0.192.in-addr.arpa.example", wire::TYPE_PTR, None),
    ));
    sent(&h.ask(
        client(1),
        &query(2, "8.8.8.8.in-addr.arpa", wire::TYPE_PTR, None),
    ));
    assert_eq!(h.proxy.status().upstream_queries, 2);
}

/// Plain names as OpenWrt's dnsmasq (`domainneeded`) treats them: an
/// address query for one no LAN host has is answered NXDOMAIN here, never
/// asked upstream; a host's plain name answers A, and no data for its
/// other types but those of a zone (a device called "dev": the TLD's DS
/// and SOA go upstream); localhost is 127.0.0.1 (RFC 6761).
#[test]
fn plain_names_stay_local_for_addresses_only() {
    let mut h = with_hosts();
    for (qname, qtype) in [("wpad", wire::TYPE_A), ("printer", TYPE_AAAA)] {
        let (_, back) = answered(&h.ask(client(1), &query(1, qname, qtype, None))).unwrap();
        assert_eq!(rcode_of(&back), wire::RCODE_NXDOMAIN, "{qname}");
    }
    const TYPE_HTTPS: u16 = 65;
    for qtype in [TYPE_AAAA, TYPE_HTTPS] {
        let (_, back) = answered(&h.ask(client(1), &query(1, "laptop", qtype, None))).unwrap();
        assert_eq!(
            (rcode_of(&back), Header::read(&back).unwrap().ancount),
            (0, 0)
        );
    }
    let (_, back) =
        answered(&h.ask(client(1), &query(1, "localhost", wire::TYPE_A, None))).unwrap();
    assert_eq!(back[back.len() - 4..], [127, 0, 0, 1]);
    // Names below localhost too, and AAAA is ::1 (RFC 6761 §6.3).
    let (_, back) =
        answered(&h.ask(client(1), &query(1, "app.localhost", wire::TYPE_A, None))).unwrap();
    assert_eq!(back[back.len() - 4..], [127, 0, 0, 1]);
    let (_, back) = answered(&h.ask(client(1), &query(1, "localhost", TYPE_AAAA, None))).unwrap();
    assert_eq!(back[back.len() - 16..], Ipv6Addr::LOCALHOST.octets());
    // Reverse names of shared, loopback, link-local and "this network"
    // addresses never leave either (RFC 6303, RFC 7793).
    for reverse in [
        "1.0.64.100.in-addr.arpa",
        "1.0.0.127.in-addr.arpa",
        "1.1.254.169.in-addr.arpa",
        "1.0.0.0.in-addr.arpa",
    ] {
        let (_, back) =
            answered(&h.ask(client(1), &query(1, reverse, wire::TYPE_PTR, None))).unwrap();
        assert_eq!(rcode_of(&back), wire::RCODE_NXDOMAIN, "{reverse}");
    }
    assert_eq!(h.proxy.status().upstream_queries, 0);
    // A public one, and a name merely ending in "localhost", go out.
    sent(&h.ask(
        client(1),
        &query(2, "1.0.128.100.in-addr.arpa", wire::TYPE_PTR, None),
    ));
    sent(&h.ask(client(1), &query(3, "notlocalhost", wire::TYPE_SOA, None)));
    assert_eq!(h.proxy.status().upstream_queries, 2);
    h.proxy.set_local_hosts(&LocalHosts {
        domain: "lan".into(),
        hosts: vec![("dev".into(), Ipv4Addr::new(192, 168, 1, 20))],
    });
    sent(&h.ask(client(1), &query(1, "dev", wire::TYPE_DS, Some(true))));
    // Other types of plain names no host has (a TLD's SOA) are the DNS's.
    sent(&h.ask(client(1), &query(4, "com", wire::TYPE_SOA, None)));
    assert_eq!(h.proxy.status().upstream_queries, 4);
}

/// A LAN host called ESP_1A2B3C (ESP8266 firmware) answers by its name, as
/// with dnsmasq.
#[test]
fn host_names_with_underscores_answer_locally() {
    let mut h = with_hosts();
    h.proxy.set_local_hosts(&LocalHosts {
        domain: "lan".into(),
        hosts: vec![("ESP_1A2B3C".into(), Ipv4Addr::new(192, 168, 1, 30))],
    });
    for name in ["esp_1a2b3c.lan", "ESP_1A2B3C"] {
        let (_, back) = answered(&h.ask(client(1), &query(1, name, wire::TYPE_A, None))).unwrap();
        assert_eq!(back[back.len() - 4..], [192, 168, 1, 30], "{name}");
    }
}

#[test]
fn one_client_cannot_take_every_slot() {
    let mut h = Harness::new(&[server(1)]);
    for i in 0..MAX_IN_FLIGHT_PER_CLIENT {
        sent(&h.ask(
            client(1),
            &query(i as u16, &format!("n{i}.example"), 1, None),
        ));
    }
    assert!(h
        .ask(client(1), &query(9999, "more.example", 1, None))
        .is_empty());
    let other = Client::Udp(SocketAddr::from(([192, 168, 1, 101], 1)));
    sent(&h.ask(other, &query(1, "more.example", 1, None)));
    // A retransmission of a query in flight is not forwarded twice.
    assert!(h.ask(other, &query(1, "more.example", 1, None)).is_empty());
    let drops = h.proxy.status().drops;
    assert_eq!((drops.client_flood, drops.duplicate), (1, 1));
}

#[test]
fn bad_queries_are_counted_and_dropped() {
    let mut h = Harness::new(&[server(1)]);
    assert!(h.ask(client(1), &[0; 5]).is_empty());
    let mut response = query(1, "example", 1, None);
    response[2] |= 0x80;
    assert!(h.ask(client(1), &response).is_empty());
    let mut two_questions = query(1, "example", 1, None);
    two_questions[5] = 2;
    assert!(h.ask(client(1), &two_questions).is_empty());
    let drops = h.proxy.status().drops;
    assert_eq!((drops.malformed_query, drops.not_a_query), (2, 1));
}

// ---- arbitrary bytes ----

fn arbitrary_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        // Mutations of a valid reply reach deeper than random bytes.
        (proptest::collection::vec((0usize..200, any::<u8>()), 1..8)).prop_map(|edits| {
            let q = query(1, "www.example.net", 1, Some(true));
            let mut r = reply(
                &q,
                0,
                &[rr(1, 300, &[1, 2, 3, 4]), rr(46, 60, &[9; 40])],
                &[soa(60, 30)],
            );
            for (at, b) in edits {
                let len = r.len();
                r[at % len] = b;
            }
            r
        }),
    ]
}

/// The name reader as it was, a label at a time, byte by byte: the
/// reference for the run-at-a-time one.
fn read_name_bytewise(msg: &[u8], pos: usize) -> Result<(Vec<u8>, usize), Malformed> {
    let mut name = Vec::new();
    let (mut at, mut end, mut hops) = (pos, None, 0);
    loop {
        let len = *msg.get(at).ok_or(Malformed::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                let label = msg
                    .get(at + 1..at + 1 + len as usize)
                    .ok_or(Malformed::Truncated)?;
                if name.len() + 1 + label.len() > 255 {
                    return Err(Malformed::NameTooLong);
                }
                name.push(len);
                name.extend(label.iter().map(u8::to_ascii_lowercase));
                at += 1 + len as usize;
                if len == 0 {
                    return Ok((name, end.unwrap_or(at)));
                }
            }
            0xc0 => {
                let b = msg.get(at..at + 2).ok_or(Malformed::Truncated)?;
                let target = usize::from(u16::from_be_bytes([b[0], b[1]]) & 0x3fff);
                hops += 1;
                if target >= at || hops > 128 {
                    return Err(Malformed::PointerLoop);
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(Malformed::BadLabelType),
        }
    }
}

proptest! {
    /// Same names, same ends, same errors as the byte-wise reader, for
    /// arbitrary bytes and for names built from random labels (mixed case,
    /// non-ASCII bytes, pointers).
    #[test]
    fn names_read_like_the_bytewise_reference(
        bytes in arbitrary_message(),
        labels in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..70), 0..8),
    ) {
        for at in 0..bytes.len().min(40) {
            prop_assert_eq!(wire::read_name(&bytes, at), read_name_bytewise(&bytes, at));
        }
        let mut msg = vec![0u8; 12];
        for label in &labels {
            msg.push(label.len() as u8);
            msg.extend_from_slice(label);
        }
        msg.extend_from_slice(&[0xc0, 12]);
        let second = msg.len();
        msg.extend_from_slice(&[3, b'W', b'w', 0xc1, 0xc0, 12]);
        for at in [12, second] {
            prop_assert_eq!(wire::read_name(&msg, at), read_name_bytewise(&msg, at));
        }
    }

    #[test]
    fn parsers_never_panic(bytes in arbitrary_message()) {
        let _ = Header::read(&bytes);
        let _ = wire::read_question(&bytes);
        for at in [0, 12, 20, bytes.len().saturating_sub(2)] {
            let _ = wire::read_name(&bytes, at);
        }
        if let Ok(layout) = wire::scan(&bytes) {
            let mut copy = bytes.clone();
            wire::age_ttls(&mut copy, layout.ttl_offsets.iter().copied(), 7);
            prop_assert_eq!(copy.len(), bytes.len());
            if let Some(at) = layout.opt_rdlen_at {
                // What is left still walks, with the same records.
                wire::remove_cookies(&mut copy, at);
                let after = wire::scan(&copy);
                prop_assert_eq!(after.map(|l| l.ttl_offsets.len()), Ok(layout.ttl_offsets.len()));
            }
        }
        let names = local::LocalNames::new(&LocalHosts { domain: "lan".into(), hosts: vec![] });
        if let Ok((q, end)) = wire::read_question(&bytes) {
            let _ = names.lookup(q.as_ref());
            let _ = wire::error_response(&bytes, end, 2, None);
        }
    }

    #[test]
    fn the_core_survives_arbitrary_client_and_upstream_bytes(
        client_bytes in arbitrary_message(),
        upstream_bytes in arbitrary_message(),
    ) {
        let mut h = with_hosts();
        h.ask(client(1), &client_bytes);
        let actions = h.ask(client(2), &query(3, "www.example.net", 1, Some(true)));
        let (attempt, _, up) = sent(&actions);
        let mut spoof = upstream_bytes.clone();
        if spoof.len() >= 2 {
            // Give it the right ID so the deeper checks run.
            wire::set_id(&mut spoof, id_of(&up));
        }
        h.reply(attempt, server(1), &upstream_bytes);
        h.reply(attempt, server(1), &spoof);
        h.proxy.handle(h.now, Input::TcpReply { server: server(1), bytes: &spoof });
        h.advance(QUERY_DEADLINE);
        prop_assert_eq!(h.proxy.status().in_flight, 0);
    }
}

#[test]
fn an_unreachable_server_is_skipped_at_once_and_all_unreachable_is_servfail() {
    let mut h = Harness::new(&[server(1), server(2)]);
    let (a1, _, _) = sent(&h.ask(client(1), &query(8, "example.net", 1, None)));
    let actions = h.proxy.handle(h.now, Input::UdpFailed { attempt: a1 });
    assert!(actions.contains(&Action::CloseAttempt { attempt: a1 }));
    let (a2, to, _) = sent(&actions);
    assert_eq!(to, server(2));
    let (_, back) = answered(&h.proxy.handle(h.now, Input::UdpFailed { attempt: a2 })).unwrap();
    assert_eq!(rcode_of(&back), wire::RCODE_SERVFAIL);
    assert_eq!(h.proxy.status().in_flight, 0);
}

#[test]
fn a_cached_answer_too_large_for_a_udp_client_is_not_served_from_the_cache() {
    let mut h = Harness::new(&[server(1)]);
    let tcp_client = Client::Tcp {
        conn: 1,
        peer: SocketAddr::from(([192, 168, 1, 9], 1)),
    };
    let q = query(1, "big.example", TYPE_TXT, None);
    let (_, _, up) = sent(&h.ask(tcp_client, &q));
    let big = reply(&up, 0, &[rr(TYPE_TXT, 300, &[b'x'; 600])], &[]);
    answered(&h.proxy.handle(
        h.now,
        Input::TcpReply {
            server: server(1),
            bytes: &big,
        },
    ))
    .unwrap();
    // Over TCP: from the cache.
    assert!(answered(&h.ask(tcp_client, &query(2, "big.example", TYPE_TXT, None))).is_some());
    // Over UDP without EDNS (512 bytes): asked upstream, whose answer decides.
    sent(&h.ask(client(1), &q));
}

#[test]
fn local_names_follow_updates() {
    let mut h = with_hosts();
    h.proxy.set_local_hosts(&LocalHosts {
        domain: "home".into(),
        hosts: vec![("tv".into(), Ipv4Addr::new(192, 168, 1, 20))],
    });
    let (_, back) = answered(&h.ask(client(1), &query(1, "tv.home", wire::TYPE_A, None))).unwrap();
    assert_eq!(back[back.len() - 4..], [192, 168, 1, 20]);
    // The old domain is no longer local: forwarded.
    sent(&h.ask(client(1), &query(2, "laptop.lan", wire::TYPE_A, None)));
}
/// A query for the root name.
fn root_query(id: u16, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A reply whose question name is a compression pointer (here to the 0 of
/// QDCOUNT's high byte: the root, as asked) is dropped as malformed: the
/// cache reads the question name from the message's bytes, and took the
/// pointer for the name (its index then lost track of entries, filled up
/// and hung the proxy).
#[test]
fn a_reply_with_a_compressed_question_is_dropped() {
    let mut h = Harness::new(&[server(1)]);
    let q = root_query(1, TYPE_TXT);
    let (a, _, up) = sent(&h.ask(client(1), &q));
    let mut r = up[..12].to_vec();
    r[2] |= 0x80;
    r[6..8].copy_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&[0xc0, 4, 0, 16, 0, 1]);
    r.extend_from_slice(&[0, 0, 16, 0, 1, 0, 0, 1, 0x2c, 0, 2, 1, b'x']);
    assert_eq!(answered(&h.reply(a, server(1), &r)), None);
    assert_eq!(h.proxy.status().drops.malformed_reply, 1);
    // The same answer with the question written out is taken and cached.
    let mut full = up[..up.len()].to_vec();
    full[2..12].copy_from_slice(&r[2..12]);
    full.extend_from_slice(&r[18..]);
    assert!(answered(&h.reply(a, server(1), &full)).is_some());
    assert_eq!(h.proxy.status().cache_entries, 1);
}

// ---- EDNS options ----

/// A query whose OPT record holds `options` (code, data) in that order.
fn query_with_options(id: u16, qname: &str, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = query(id, qname, 1, Some(false));
    let rdata: Vec<u8> = options
        .iter()
        .flat_map(|(code, data)| {
            let head = [code.to_be_bytes(), (data.len() as u16).to_be_bytes()];
            head.concat().into_iter().chain(data.iter().copied())
        })
        .collect();
    let rdlen_at = m.len() - 2;
    m[rdlen_at..].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    m
}

const OPTION_NSID: u16 = 3;
const OPTION_COOKIE: u16 = 10;

/// DNS cookies are per hop (RFC 7873): the forwarded query keeps every
/// byte but the COOKIE option, so upstream answers carry none and a cache
/// hit never hands one client another's cookie.
#[test]
fn cookies_are_not_forwarded_and_a_cached_answer_has_none() {
    let mut h = Harness::new(&[server(1)]);
    let (a_cookie, b_cookie) = (*b"AAAAAAAA", *b"BBBBBBBB");
    let other: &[u8] = b"\x01\x02";
    let qa = query_with_options(
        1,
        "example.net",
        &[
            (OPTION_NSID, b""),
            (OPTION_COOKIE, &a_cookie),
            (65001, other),
        ],
    );
    let (a, _, up) = sent(&h.ask(client(1), &qa));
    let without = query_with_options(1, "example.net", &[(OPTION_NSID, b""), (65001, other)]);
    assert_eq!(up[2..], without[2..], "only the cookie is removed");
    let r = reply(&up, 0, &[rr(1, 300, &[192, 0, 2, 1])], &[]);
    answered(&h.reply(a, server(1), &r)).unwrap();
    let qb = query_with_options(2, "example.net", &[(OPTION_COOKIE, &b_cookie)]);
    let (_, hit) = answered(&h.ask(client(2), &qb)).expect("a cache hit");
    for cookie in [a_cookie, b_cookie] {
        assert!(!hit.windows(8).any(|w| w == cookie), "{hit:?}");
    }
}

/// Every COOKIE option goes, wherever it sits; an option that overruns the
/// record stops the walk and leaves the rest as it was.
#[test]
fn remove_cookies_keeps_every_other_byte() {
    let cookie: &[u8] = b"CCCCCCCC";
    let strip = |options: &[(u16, &[u8])]| {
        let mut m = query_with_options(1, "a.example", options);
        let at = wire::scan(&m).unwrap().opt_rdlen_at.unwrap();
        wire::remove_cookies(&mut m, at);
        m
    };
    let kept: &[(u16, &[u8])] = &[(OPTION_NSID, b""), (8, b"\x00\x01\x18\x00\xc0\x00\x02")];
    let with = [
        (OPTION_COOKIE, cookie),
        kept[0],
        (OPTION_COOKIE, cookie),
        kept[1],
        (OPTION_COOKIE, cookie),
    ];
    assert_eq!(strip(&with), query_with_options(1, "a.example", kept));
    let mut overrun = query_with_options(1, "a.example", &[(OPTION_COOKIE, cookie)]);
    let len = overrun.len();
    overrun[len - 9] = 9; // the option claims one byte more than the record has
    let mut stripped = overrun.clone();
    wire::remove_cookies(&mut stripped, len - 14);
    assert_eq!(stripped, overrun);
}

/// A signed query (TSIG, RFC 8945) is forwarded exactly as it came: an
/// edited message would no longer verify.
#[test]
fn a_signed_query_keeps_its_cookie() {
    let mut h = Harness::new(&[server(1)]);
    let mut q = query_with_options(1, "example.net", &[(OPTION_COOKIE, b"AAAAAAAA")]);
    q[11] = 2;
    // A TSIG record (owner "k", class ANY, empty RDATA for brevity).
    q.extend_from_slice(&[1, b'k', 0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]);
    let (_, _, up) = sent(&h.ask(client(1), &q));
    assert_eq!(up[2..], q[2..]);
}
