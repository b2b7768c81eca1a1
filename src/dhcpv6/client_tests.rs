//! Deterministic tests of the DHCPv6 client core: fake clock, fabricated
//! server messages, seeded randomness. No sockets, no sleeps.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IAPrefix, Message, OptionCode, Status, StatusCode,
    UnknownOption, IANA, IAPD,
};
use dhcproto::Decodable;
use proptest::prelude::*;

use super::client::{Action, Client, ClientConfig, Drop, Input, Mode};
use super::events::{Event, LossReason};
use super::persist::{self, BootClock};
use super::wire::{self, build_server_message, encode_dns_name};

const DUID: [u8; 10] = [0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x01];
const SERVER_A: [u8; 6] = [0, 2, 0, 0, 0x09, 0xa1];
const SERVER_B: [u8; 6] = [0, 2, 0, 0, 0x09, 0xb2];

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config(mode: Mode) -> ClientConfig {
    ClientConfig {
        mode,
        duid: DUID.to_vec(),
        iaid: 1,
        extra_oro: vec![],
        release_on_stop: true,
        rapid_commit: true,
        sol_max_rt: secs(3600),
    }
}

fn stateful() -> Mode {
    Mode::Stateful {
        request_address: true,
        request_prefix: true,
        prefix_hint: 56,
    }
}

/// A client on a fake clock, remembering what it sent and emitted.
struct Lab {
    client: Client,
    now: Instant,
    sent: Vec<(Instant, Message)>,
    events: Vec<Event>,
    stopped: bool,
}

impl Lab {
    fn new(mode: Mode) -> Self {
        Lab {
            client: Client::new(config(mode), 42),
            now: Instant::now(),
            sent: Vec::new(),
            events: Vec::new(),
            stopped: false,
        }
    }

    fn feed(&mut self, input: Input<'_>) {
        for action in self.client.handle(self.now, input) {
            match action {
                Action::Send { bytes } => {
                    let msg = Message::from_bytes(&bytes).expect("client sends valid DHCPv6");
                    self.sent.push((self.now, msg));
                }
                Action::Event(e) => self.events.push(e),
                Action::Stopped => self.stopped = true,
            }
        }
    }

    /// Jumps to the next timer and fires it.
    fn fire_next_timer(&mut self) {
        let at = self.client.poll_timeout().expect("a timer is armed");
        assert!(at >= self.now, "timers never go backwards");
        self.now = at;
        self.feed(Input::Timeout);
    }

    /// Fires timers until `until` (inclusive of timers at `until`).
    fn run_until(&mut self, until: Instant) {
        while let Some(at) = self.client.poll_timeout() {
            if at > until {
                break;
            }
            self.now = at;
            self.feed(Input::Timeout);
        }
        self.now = until;
    }

    /// Fires timers until a message is sent; returns it.
    fn next_sent(&mut self) -> Message {
        let before = self.sent.len();
        for _ in 0..100 {
            self.fire_next_timer();
            if self.sent.len() > before {
                return self.sent[before].1.clone();
            }
        }
        panic!("nothing sent");
    }

    fn last_sent(&self) -> &Message {
        &self.sent.last().expect("something sent").1
    }

    fn receive(&mut self, from: &str, bytes: &[u8]) {
        self.feed(Input::Received {
            from: addr(from),
            bytes,
        });
    }

    /// The Decline just sent, answered by server A.
    fn answer_decline(&mut self) {
        let decline = self.last_sent().clone();
        assert_eq!(u8::from(decline.msg_type()), wire::MSG_DECLINE);
        let reply = build_server_message(
            wire::MSG_REPLY,
            decline.xid(),
            vec![
                DhcpOption::ClientId(DUID.to_vec()),
                DhcpOption::ServerId(SERVER_A.to_vec()),
            ],
        );
        self.receive("fe80::a", &reply);
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Solicit → Advertise (pref 255) → Request → Reply: a bound client.
    fn bind(&mut self, reply: &ServerReply) {
        self.feed(Input::LinkUp);
        let solicit = self.next_sent();
        self.receive("fe80::a", &reply.advertise(solicit.xid(), &SERVER_A, 255));
        let request = self.last_sent().clone();
        assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
        self.receive("fe80::a", &reply.reply(request.xid(), &SERVER_A));
        assert_eq!(self.client.state_name(), "bound");
    }
}

fn option_codes(msg: &Message) -> Vec<u16> {
    msg.opts()
        .iter()
        .map(|o| u16::from(OptionCode::from(o)))
        .collect()
}

fn oro(msg: &Message) -> Vec<u16> {
    match msg.opts().get(OptionCode::ORO) {
        Some(DhcpOption::ORO(o)) => o.opts.iter().map(|c| u16::from(*c)).collect(),
        _ => vec![],
    }
}

fn server_id(msg: &Message) -> Option<Vec<u8>> {
    match msg.opts().get(OptionCode::ServerId) {
        Some(DhcpOption::ServerId(id)) => Some(id.clone()),
        _ => None,
    }
}

/// What a fabricated server hands out.
#[derive(Clone)]
struct ServerReply {
    address: Option<Ipv6Addr>,
    prefix: Option<(Ipv6Addr, u8)>,
    t1: u32,
    t2: u32,
    preferred: u32,
    valid: u32,
    dns: Vec<Ipv6Addr>,
    aftr: Option<Vec<u8>>,
    sol_max_rt: Option<u32>,
    ia_status: Option<Status>,
    /// The IA_PD's status when not `ia_status`.
    pd_status: Option<Status>,
    client_id: Option<Vec<u8>>,
    /// The prefix's (preferred, valid) when not the address's.
    prefix_lifetimes: Option<(u32, u32)>,
}

impl Default for ServerReply {
    fn default() -> Self {
        ServerReply {
            address: Some(addr("2001:db8:1::100")),
            prefix: Some((addr("2001:db8:100::"), 56)),
            t1: 1000,
            t2: 1600,
            preferred: 2000,
            valid: 3000,
            dns: vec![addr("2001:db8::53")],
            aftr: Some(encode_dns_name("aftr.example.net").unwrap()),
            sol_max_rt: None,
            ia_status: None,
            pd_status: None,
            client_id: Some(DUID.to_vec()),
            prefix_lifetimes: None,
        }
    }
}

impl ServerReply {
    fn options(&self, server: &[u8]) -> Vec<DhcpOption> {
        let mut opts = vec![DhcpOption::ServerId(server.to_vec())];
        if let Some(id) = &self.client_id {
            opts.push(DhcpOption::ClientId(id.clone()));
        }
        let status = self.ia_status.map(|s| {
            DhcpOption::StatusCode(StatusCode {
                status: s,
                msg: "test".into(),
            })
        });
        let mut na = DhcpOptions::new();
        if let Some(a) = self.address {
            na.insert(DhcpOption::IAAddr(IAAddr {
                addr: a,
                preferred_life: self.preferred,
                valid_life: self.valid,
                opts: DhcpOptions::new(),
            }));
        }
        if let Some(s) = &status {
            na.insert(s.clone());
        }
        opts.push(DhcpOption::IANA(IANA {
            id: 1,
            t1: self.t1,
            t2: self.t2,
            opts: na,
        }));
        let mut pd = DhcpOptions::new();
        if let Some((p, len)) = self.prefix {
            let (preferred, valid) = self
                .prefix_lifetimes
                .unwrap_or((self.preferred, self.valid));
            pd.insert(DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: preferred,
                valid_lifetime: valid,
                prefix_len: len,
                prefix_ip: p,
                opts: DhcpOptions::new(),
            }));
        }
        let pd_status = self.pd_status.map(|s| {
            DhcpOption::StatusCode(StatusCode {
                status: s,
                msg: "test".into(),
            })
        });
        if let Some(s) = pd_status.or(status) {
            pd.insert(s);
        }
        opts.push(DhcpOption::IAPD(IAPD {
            id: 1,
            t1: self.t1,
            t2: self.t2,
            opts: pd,
        }));
        if !self.dns.is_empty() {
            opts.push(DhcpOption::DomainNameServers(self.dns.clone()));
        }
        if let Some(aftr) = &self.aftr {
            opts.push(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::from(wire::OPT_AFTR_NAME),
                aftr.clone(),
            )));
        }
        if let Some(v) = self.sol_max_rt {
            opts.push(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::from(wire::OPT_SOL_MAX_RT),
                v.to_be_bytes().to_vec(),
            )));
        }
        opts
    }

    fn advertise(&self, xid: [u8; 3], server: &[u8], preference: u8) -> Vec<u8> {
        let mut opts = self.options(server);
        opts.push(DhcpOption::Preference(preference));
        build_server_message(wire::MSG_ADVERTISE, xid, opts)
    }

    fn reply(&self, xid: [u8; 3], server: &[u8]) -> Vec<u8> {
        build_server_message(wire::MSG_REPLY, xid, self.options(server))
    }

    /// A Reply to Solicit committing the binding (RFC 8415 §18.3.1).
    fn rapid_reply(&self, xid: [u8; 3], server: &[u8]) -> Vec<u8> {
        let mut opts = self.options(server);
        opts.push(DhcpOption::RapidCommit);
        build_server_message(wire::MSG_REPLY, xid, opts)
    }
}

#[test]
fn the_first_solicit_delay_runs_from_the_start_not_from_link_up() {
    let mut lab = Lab::new(stateful());
    let start = lab.now;
    lab.feed(Input::Started);
    // The link comes up later than SOL_MAX_DELAY (DSL sync, DAD): the
    // delay has passed meanwhile, and the Solicit goes at once.
    lab.now = start + secs(2);
    lab.feed(Input::LinkUp);
    assert_eq!(lab.client.poll_timeout(), Some(lab.now));
    let solicit = lab.next_sent();
    assert_eq!(u8::from(solicit.msg_type()), wire::MSG_SOLICIT);
    assert_eq!(lab.sent[0].0, start + secs(2));
    // After a flap the next first Solicit waits a delay of its own.
    lab.feed(Input::LinkDown);
    lab.now += secs(10);
    let up = lab.now;
    lab.feed(Input::LinkUp);
    lab.next_sent();
    let (at, _) = lab.sent.last().unwrap();
    assert!(*at > up && *at - up <= secs(1), "delayed {:?}", *at - up);
}

#[test]
fn a_link_already_up_at_the_start_still_waits_the_delay() {
    let mut lab = Lab::new(stateful());
    let start = lab.now;
    lab.feed(Input::Started);
    lab.feed(Input::LinkUp);
    assert!(lab.sent.is_empty());
    lab.next_sent();
    let (at, _) = lab.sent[0];
    assert!(
        at > start && at - start <= secs(1),
        "delayed {:?}",
        at - start
    );
}

#[test]
fn first_solicit_is_delayed_and_asks_for_everything() {
    let mut lab = Lab::new(stateful());
    let start = lab.now;
    lab.feed(Input::LinkUp);
    assert!(lab.sent.is_empty(), "§18.2.1: the first Solicit waits");
    let solicit = lab.next_sent();
    assert!(lab.now - start <= secs(1), "SOL_MAX_DELAY is 1 s");
    assert_eq!(u8::from(solicit.msg_type()), wire::MSG_SOLICIT);
    assert_eq!(oro(&solicit), vec![23, 24, 64, 82]);
    let codes = option_codes(&solicit);
    for code in [1, 3, 6, 8, 14, 25] {
        assert!(codes.contains(&code), "option {code} in Solicit: {codes:?}");
    }
    assert!(server_id(&solicit).is_none());
    match solicit.opts().get(OptionCode::IAPD) {
        Some(DhcpOption::IAPD(pd)) => match pd.opts.get(OptionCode::IAPrefix) {
            Some(DhcpOption::IAPrefix(p)) => assert_eq!(p.prefix_len, 56),
            other => panic!("no prefix hint: {other:?}"),
        },
        other => panic!("no IA_PD: {other:?}"),
    }
}

#[test]
fn a_rapid_commit_reply_to_solicit_binds_at_once_without_request() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    let solicited_at = lab.now;
    lab.receive(
        "fe80::a",
        &ServerReply::default().rapid_reply(solicit.xid(), &SERVER_A),
    );
    assert_eq!(lab.client.state_name(), "bound");
    assert_eq!(lab.now, solicited_at, "no Advertise collection (§18.2.1)");
    assert_eq!(lab.sent.len(), 1, "no Request after a rapid commit");
    let lease = lab.client.lease().expect("a lease");
    assert_eq!(lease.addresses[0].addr, addr("2001:db8:1::100"));
    assert_eq!(lease.prefixes[0].prefix, addr("2001:db8:100::"));
    assert!(lab
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::LeaseAcquired { .. })));
}

#[test]
fn a_reply_to_solicit_without_rapid_commit_is_no_binding() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    lab.receive(
        "fe80::a",
        &ServerReply::default().reply(solicit.xid(), &SERVER_A),
    );
    assert_eq!(lab.client.state_name(), "soliciting");
    assert!(lab.client.lease().is_none());
    assert_eq!(lab.client.counters().dropped(Drop::UnexpectedType), 1);
}

#[test]
fn with_rapid_commit_off_the_solicit_does_not_offer_it_and_a_rapid_reply_is_dropped() {
    let mut lab = Lab::new(stateful());
    lab.client = Client::new(
        ClientConfig {
            rapid_commit: false,
            ..config(stateful())
        },
        42,
    );
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    assert!(!option_codes(&solicit).contains(&14));
    lab.receive(
        "fe80::a",
        &ServerReply::default().rapid_reply(solicit.xid(), &SERVER_A),
    );
    assert_eq!(lab.client.state_name(), "soliciting");
}

#[test]
fn rapid_commit_is_offered_in_solicit_only() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    let request = lab.sent[1].1.clone();
    assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
    assert!(!option_codes(&request).contains(&14));
    lab.feed(Input::ForceRenew);
    assert!(!option_codes(lab.last_sent()).contains(&14));
}

#[test]
fn solicit_retransmits_doubling_up_to_sol_max_rt_with_one_xid() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    lab.next_sent();
    for _ in 0..15 {
        lab.next_sent();
    }
    let times: Vec<Instant> = lab.sent.iter().map(|(t, _)| *t).collect();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!(
        gaps[0] > 1.0 && gaps[0] <= 1.1,
        "first RT in (IRT, 1.1 IRT]: {gaps:?}"
    );
    for w in gaps.windows(2) {
        let (prev, rt) = (w[0], w[1]);
        let doubled = (rt >= prev * 1.9 - 1e-6) && rt <= prev * 2.1 + 1e-6;
        let capped = (3240.0..=3960.0).contains(&rt);
        assert!(doubled || capped, "RT {rt} after {prev}");
    }
    assert!(
        *gaps.last().unwrap() >= 3240.0,
        "reaches SOL_MAX_RT: {gaps:?}"
    );
    let xids: Vec<[u8; 3]> = lab.sent.iter().map(|(_, m)| m.xid()).collect();
    assert!(
        xids.windows(2).all(|w| w[0] == w[1]),
        "§15: retransmissions keep the xid"
    );
    // Elapsed Time grows (hundredths of a second since the first Solicit).
    let elapsed: Vec<u16> = lab
        .sent
        .iter()
        .map(|(_, m)| match m.opts().get(OptionCode::ElapsedTime) {
            Some(DhcpOption::ElapsedTime(e)) => *e,
            _ => panic!("no elapsed time"),
        })
        .collect();
    assert_eq!(elapsed[0], 0);
    assert!(elapsed.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(*elapsed.last().unwrap(), 0xffff);
}

#[test]
fn sol_max_rt_from_an_advertise_without_addresses_caps_retransmission() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    let refusal = ServerReply {
        address: None,
        prefix: None,
        ia_status: Some(Status::NoAddrsAvail),
        sol_max_rt: Some(60),
        ..Default::default()
    };
    lab.receive("fe80::a", &refusal.advertise(solicit.xid(), &SERVER_A, 0));
    assert_eq!(
        lab.client.state_name(),
        "soliciting",
        "nothing offered: keep soliciting"
    );
    assert_eq!(lab.client.counters().dropped(Drop::NothingOffered), 1);
    assert!(lab
        .client
        .status()
        .last_problem
        .unwrap()
        .contains("NoAddrsAvail"));
    for _ in 0..12 {
        lab.next_sent();
    }
    let gaps: Vec<f64> = lab
        .sent
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64())
        .collect();
    assert!(
        gaps.iter().all(|g| *g <= 66.0 + 1e-6),
        "capped at 60 s ± 10%: {gaps:?}"
    );
    assert!(gaps.last().unwrap() >= &54.0);
    assert_eq!(lab.client.status().sol_max_rt, secs(60));
}

#[test]
fn sol_max_rt_out_of_range_is_ignored() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    let offer = ServerReply {
        sol_max_rt: Some(5),
        ..Default::default()
    };
    lab.receive("fe80::a", &offer.advertise(solicit.xid(), &SERVER_A, 0));
    assert_eq!(
        lab.client.status().sol_max_rt,
        secs(3600),
        "§21.24: < 60 ignored"
    );
}

#[test]
fn best_advertise_of_the_first_rt_wins() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    let offer = ServerReply::default();
    lab.receive("fe80::a", &offer.advertise(solicit.xid(), &SERVER_A, 10));
    lab.receive("fe80::b", &offer.advertise(solicit.xid(), &SERVER_B, 20));
    assert_eq!(
        lab.client.state_name(),
        "soliciting",
        "collect for the first RT"
    );
    let request = lab.next_sent();
    assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
    assert_eq!(server_id(&request).unwrap(), SERVER_B.to_vec());
    assert_ne!(request.xid(), solicit.xid(), "a new exchange, a new xid");
    assert_eq!(oro(&request), vec![23, 24, 64, 82]);
}

/// Two servers: one with rapid commit but nothing for this subscriber
/// (kea's rapid Reply with NoAddrsAvail), one with an offer. Whichever
/// comes first, the offer is taken: the empty Reply is ignored like an
/// empty Advertise, not a reason to start soliciting over.
#[test]
fn an_empty_rapid_commit_reply_does_not_discard_another_servers_offer() {
    let nothing = ServerReply {
        address: None,
        prefix: None,
        ia_status: Some(Status::NoAddrsAvail),
        ..Default::default()
    };
    for empty_first in [false, true] {
        let mut lab = Lab::new(stateful());
        lab.feed(Input::LinkUp);
        let solicit = lab.next_sent();
        let offer = ServerReply::default().advertise(solicit.xid(), &SERVER_B, 10);
        let empty = nothing.rapid_reply(solicit.xid(), &SERVER_A);
        if empty_first {
            lab.receive("fe80::a", &empty);
            lab.receive("fe80::b", &offer);
        } else {
            lab.receive("fe80::b", &offer);
            lab.receive("fe80::a", &empty);
        }
        assert_eq!(lab.client.counters().dropped(Drop::NothingOffered), 1);
        let request = lab.next_sent();
        assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
        assert_eq!(server_id(&request).unwrap(), SERVER_B.to_vec());
        assert!(
            lab.now - lab.sent[0].0 <= secs(2),
            "requested within the first RT, not after a new Solicit"
        );
    }
}

#[test]
fn preference_255_is_taken_at_once() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    lab.receive(
        "fe80::a",
        &ServerReply::default().advertise(solicit.xid(), &SERVER_A, 255),
    );
    assert_eq!(lab.client.state_name(), "requesting");
    assert_eq!(u8::from(lab.last_sent().msg_type()), wire::MSG_REQUEST);
}

#[test]
fn advertise_after_first_rt_is_taken_at_once() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    lab.next_sent();
    let second = lab.next_sent();
    lab.receive(
        "fe80::a",
        &ServerReply::default().advertise(second.xid(), &SERVER_A, 0),
    );
    assert_eq!(lab.client.state_name(), "requesting");
}

#[test]
fn reply_binds_and_reports_everything() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    let events = lab.take_events();
    let shown: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "lease-acquired server=fe80::a",
            "addresses-changed 2001:db8:1::100",
            "prefixes-changed 2001:db8:100::/56",
            "dns-servers-changed 2001:db8::53",
            "aftr-name-changed aftr.example.net",
        ]
    );
    let lease = lab.client.lease().unwrap();
    assert_eq!(lease.t1, Some(lab.now + secs(1000)));
    assert_eq!(lease.t2, Some(lab.now + secs(1600)));
    assert_eq!(lease.addresses[0].valid_until, Some(lab.now + secs(3000)));
    assert_eq!(lab.client.poll_timeout(), Some(lab.now + secs(1000)));
}

#[test]
fn renew_at_t1_carries_a_changed_aftr_name_through() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    let bound_at = lab.now;
    let renew = lab.next_sent();
    assert_eq!(lab.now, bound_at + secs(1000), "Renew at T1");
    assert_eq!(u8::from(renew.msg_type()), wire::MSG_RENEW);
    assert_eq!(
        server_id(&renew).unwrap(),
        SERVER_A.to_vec(),
        "Renew names the server"
    );
    let changed = ServerReply {
        aftr: Some(encode_dns_name("aftr2.example.net").unwrap()),
        ..Default::default()
    };
    lab.receive("fe80::a", &changed.reply(renew.xid(), &SERVER_A));
    let events: Vec<String> = lab.take_events().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        events,
        vec![
            "lease-renewed server=fe80::a",
            "aftr-name-changed aftr2.example.net"
        ]
    );
    assert_eq!(
        lab.client.info().aftr_name.as_deref(),
        Some("aftr2.example.net")
    );
}

/// A client of `mode` bound with `granted`, whose first Renew (at T1) got
/// `answer`; events up to the Renew taken.
fn renew_answered(mode: Mode, granted: &ServerReply, answer: &ServerReply) -> Lab {
    let mut lab = Lab::new(mode);
    lab.bind(granted);
    lab.take_events();
    let renew = lab.next_sent();
    lab.receive("fe80::a", &answer.reply(renew.xid(), &SERVER_A));
    lab
}

#[test]
fn renew_reply_without_option_64_withdraws_the_aftr() {
    let without = ServerReply {
        aftr: None,
        ..Default::default()
    };
    let mut lab = renew_answered(stateful(), &ServerReply::default(), &without);
    assert!(lab.take_events().contains(&Event::AftrNameChanged(None)));
}

/// Kea, unable to extend a prefix, answers the Renew with the prefix at
/// lifetimes 0 under NoPrefixAvail: the prefix leaves at once (not when its
/// old lifetime ends), the address renewed beside it stays.
#[test]
fn a_prefix_withdrawn_under_a_failure_status_goes_at_once() {
    let withdrawn = ServerReply {
        pd_status: Some(Status::NoPrefixAvail),
        prefix_lifetimes: Some((0, 0)),
        ..Default::default()
    };
    let mut lab = renew_answered(stateful(), &ServerReply::default(), &withdrawn);
    assert!(lab.take_events().contains(&Event::PrefixesChanged(vec![])));
    let lease = lab.client.lease().unwrap();
    assert!(lease.prefixes.is_empty());
    assert_eq!(lease.addresses.len(), 1);
    assert_eq!(lab.client.state_name(), "bound");

    // Prefix only: nothing is left, so the binding is lost and the client
    // solicits again (for a new prefix) instead of renewing a dead one.
    let prefix_only = Mode::Stateful {
        request_address: false,
        request_prefix: true,
        prefix_hint: 56,
    };
    let granted = ServerReply {
        address: None,
        ..Default::default()
    };
    let withdrawn = ServerReply {
        address: None,
        ..withdrawn
    };
    let mut lab = renew_answered(prefix_only, &granted, &withdrawn);
    let events = lab.take_events();
    assert!(
        events.contains(&Event::PrefixesChanged(vec![])),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::LeaseLost { .. })),
        "{events:?}"
    );
    assert_eq!(lab.client.state_name(), "soliciting");
}

/// A server whose T1/T2 lie past the valid lifetime (or are infinite on a
/// finite lease) would have the binding expire unrenewed, and lost at
/// every lifetime: the client renews at its own 0.5 of the preferred.
#[test]
fn t1_and_t2_past_the_valid_lifetime_are_replaced_by_the_clients_own() {
    for (t1, t2) in [(3600, 5760), (u32::MAX, u32::MAX)] {
        let mut lab = Lab::new(stateful());
        lab.bind(&ServerReply {
            t1,
            t2,
            preferred: 1500,
            valid: 1800,
            ..Default::default()
        });
        let bound_at = lab.now;
        lab.take_events();
        let renew = lab.next_sent();
        assert_eq!(u8::from(renew.msg_type()), wire::MSG_RENEW, "T1 {t1}");
        assert_eq!(lab.now, bound_at + secs(750), "T1 {t1}");
        assert!(lab.take_events().is_empty());
    }
}

/// NoBinding for one IA: that one is requested again, but what the same
/// Reply renewed runs on with its new lifetimes and options (§18.2.10.1),
/// also if the Request then goes unanswered.
/// The cap of T1/T2 at the lifetimes never renews later than the server
/// asked, and a deprecated prefix being renumbered away (preferred 0) does
/// not count: it may expire.
#[test]
fn the_t1_t2_cap_is_never_later_than_the_server_asked() {
    use super::client::ia_renewal_times;
    // Renumbering: new prefix 3000/4000, old one 0/600; the server's 1000/2000 stand.
    assert_eq!(
        ia_renewal_times(1000, 2000, None, &[(3000, 4000), (0, 600)]),
        Some((1000, 2000))
    );
    // T2 past the valid lifetime: capped at the client's own, T1 kept.
    assert_eq!(
        ia_renewal_times(600, 1900, None, &[(1500, 1800)]),
        Some((600, 1200))
    );
    assert_eq!(
        ia_renewal_times(0, 0, None, &[(1500, 1800)]),
        Some((750, 1200))
    );
}

#[test]
fn no_binding_for_one_ia_keeps_what_the_reply_renewed() {
    let reply = ServerReply {
        ia_status: Some(Status::NoBinding),
        pd_status: Some(Status::Success),
        prefix_lifetimes: Some((8000, 9000)),
        aftr: Some(encode_dns_name("aftr2.example.net").unwrap()),
        ..Default::default()
    };
    let mut lab = renew_answered(stateful(), &ServerReply::default(), &reply);
    let renewed_at = lab.now;
    assert_eq!(lab.client.state_name(), "requesting");
    let prefix = &lab.client.lease().unwrap().prefixes[0];
    assert_eq!(prefix.valid_until, Some(renewed_at + secs(9000)));
    assert_eq!(
        lab.client.info().aftr_name.as_deref(),
        Some("aftr2.example.net")
    );
    assert!(lab
        .take_events()
        .contains(&Event::AftrNameChanged(Some("aftr2.example.net".into()))));
}

#[test]
fn no_renew_reply_rebinds_at_t2_to_any_server() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    let bound_at = lab.now;
    lab.take_events();
    // Renew retransmissions until T2: 10 s, 20 s, 40 s... none answered.
    let mut rebind = None;
    for _ in 0..30 {
        let msg = lab.next_sent();
        if u8::from(msg.msg_type()) == wire::MSG_REBIND {
            rebind = Some(msg);
            break;
        }
        assert_eq!(u8::from(msg.msg_type()), wire::MSG_RENEW);
    }
    let rebind = rebind.expect("Rebind after T2");
    assert_eq!(lab.now, bound_at + secs(1600), "Rebind exactly at T2");
    assert!(
        server_id(&rebind).is_none(),
        "§18.2.5: Rebind names no server"
    );
    lab.receive(
        "fe80::b",
        &ServerReply::default().reply(rebind.xid(), &SERVER_B),
    );
    assert_eq!(lab.client.state_name(), "bound");
    assert_eq!(lab.client.lease().unwrap().server_id, SERVER_B.to_vec());
    assert_eq!(
        lab.take_events(),
        vec![Event::LeaseRenewed {
            server: addr("fe80::b")
        }]
    );
    // The next Renew goes to the new server.
    let renew = lab.next_sent();
    assert_eq!(server_id(&renew).unwrap(), SERVER_B.to_vec());
}

#[test]
fn silence_until_valid_lifetime_loses_the_lease_and_solicits_again() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    let bound_at = lab.now;
    lab.take_events();
    lab.run_until(bound_at + secs(3000));
    let events = lab.take_events();
    assert_eq!(
        events[0],
        Event::LeaseLost {
            reason: LossReason::Expired
        }
    );
    assert!(events.contains(&Event::AddressesChanged(vec![])));
    assert!(events.contains(&Event::PrefixesChanged(vec![])));
    assert!(events.contains(&Event::AftrNameChanged(None)));
    assert!(lab.client.lease().is_none());
    assert_eq!(lab.client.state_name(), "soliciting");
    let solicit = lab.next_sent();
    assert_eq!(u8::from(solicit.msg_type()), wire::MSG_SOLICIT);
}

#[test]
fn request_gives_up_after_req_max_rc_and_solicits_again() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    lab.receive(
        "fe80::a",
        &ServerReply::default().advertise(solicit.xid(), &SERVER_A, 255),
    );
    while lab.client.state_name() == "requesting" {
        lab.fire_next_timer();
    }
    let requests = lab
        .sent
        .iter()
        .filter(|(_, m)| u8::from(m.msg_type()) == wire::MSG_REQUEST)
        .count();
    assert_eq!(requests, 10, "REQ_MAX_RC");
    assert_eq!(lab.client.state_name(), "soliciting");
}

#[test]
fn no_binding_in_renew_reply_requests_again() {
    let (lab, request) = lab_requesting_after_no_binding();
    assert_eq!(lab.client.state_name(), "requesting");
    match request.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(na)) => assert!(na.opts.get(OptionCode::IAAddr).is_some()),
        other => panic!("{other:?}"),
    }
}

/// Bound, then the server loses the binding: the Renew's Reply says
/// NoBinding and the client sends a Request for what it held.
fn lab_requesting_after_no_binding() -> (Lab, Message) {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    let renew = lab.next_sent();
    let lost = ServerReply {
        address: None,
        prefix: None,
        ia_status: Some(Status::NoBinding),
        ..Default::default()
    };
    lab.receive("fe80::a", &lost.reply(renew.xid(), &SERVER_A));
    let request = lab.last_sent().clone();
    assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
    (lab, request)
}

#[test]
fn after_no_binding_a_prefix_the_server_no_longer_gives_is_dropped() {
    let (mut lab, request) = lab_requesting_after_no_binding();
    let address_only = ServerReply {
        prefix: None,
        ..Default::default()
    };
    lab.receive("fe80::a", &address_only.reply(request.xid(), &SERVER_A));
    let lease = lab.client.lease().expect("the address is granted");
    assert_eq!(lease.addresses.len(), 1);
    assert!(
        lease.prefixes.is_empty(),
        "§18.2.10.1: the Reply to the Request is the whole binding: {:?}",
        lease.prefixes
    );
    assert!(lab
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::PrefixesChanged(p) if p.is_empty())));
}

#[test]
fn after_no_binding_a_request_granted_nothing_loses_the_lease() {
    let (mut lab, request) = lab_requesting_after_no_binding();
    let nothing = ServerReply {
        address: None,
        prefix: None,
        ia_status: Some(Status::NoAddrsAvail),
        ..Default::default()
    };
    lab.take_events();
    lab.receive("fe80::a", &nothing.reply(request.xid(), &SERVER_A));
    assert!(lab.client.lease().is_none());
    assert!(lab.take_events().contains(&Event::LeaseLost {
        reason: LossReason::Refused
    }));
    assert_eq!(lab.client.state_name(), "soliciting");
}

#[test]
fn a_server_that_offers_and_then_refuses_is_asked_ever_less_often() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let refusal = ServerReply {
        address: None,
        prefix: None,
        ia_status: Some(Status::NoAddrsAvail),
        ..Default::default()
    };
    let mut solicits = Vec::new();
    for _ in 0..6 {
        let solicit = lab.next_sent();
        assert_eq!(u8::from(solicit.msg_type()), wire::MSG_SOLICIT);
        solicits.push(lab.now);
        lab.receive(
            "fe80::a",
            &ServerReply::default().advertise(solicit.xid(), &SERVER_A, 255),
        );
        let request = lab.last_sent().clone();
        assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
        lab.receive("fe80::a", &refusal.reply(request.xid(), &SERVER_A));
        assert_eq!(lab.client.state_name(), "soliciting");
    }
    // 1, 2, 4, 8, 16 s (each plus up to 1 s of random delay).
    for (n, pair) in solicits.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let backoff = secs(1 << n);
        assert!(
            gap >= backoff && gap <= backoff + secs(1),
            "refusal {n}: {gap:?}"
        );
    }
    // A server that grants at last binds as usual.
    let solicit = lab.next_sent();
    lab.receive(
        "fe80::a",
        &ServerReply::default().advertise(solicit.xid(), &SERVER_A, 255),
    );
    let request = lab.last_sent().clone();
    lab.receive(
        "fe80::a",
        &ServerReply::default().reply(request.xid(), &SERVER_A),
    );
    assert_eq!(lab.client.state_name(), "bound");
}

#[test]
fn zero_t1_t2_use_half_and_eight_tenths_of_preferred() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply {
        t1: 0,
        t2: 0,
        ..Default::default()
    });
    let lease = lab.client.lease().unwrap();
    assert_eq!(lease.t1, Some(lab.now + secs(1000)));
    assert_eq!(lease.t2, Some(lab.now + secs(1600)));
}

/// A server that leaves T1/T2 to the client and lists a deprecated prefix
/// (preferred 0, renumbering) next to a live address: the renewal times
/// come from what is still preferred, not from the 0 (a Renew every second
/// for as long as the server lists the old prefix); all deprecated: from
/// the valid lifetime.
#[test]
fn zero_t1_t2_with_a_deprecated_lease_do_not_renew_every_second() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply {
        t1: 0,
        t2: 0,
        prefix_lifetimes: Some((0, 3000)),
        ..Default::default()
    });
    let lease = lab.client.lease().unwrap();
    assert_eq!(lease.t1, Some(lab.now + secs(1000)));
    assert_eq!(lease.t2, Some(lab.now + secs(1600)));

    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply {
        t1: 0,
        t2: 0,
        preferred: 0,
        valid: 3000,
        ..Default::default()
    });
    let lease = lab.client.lease().unwrap();
    assert_eq!(lease.t1, Some(lab.now + secs(1500)));
    assert_eq!(lease.t2, Some(lab.now + secs(2400)));
}

#[test]
fn infinite_lifetimes_never_renew() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply {
        t1: u32::MAX,
        t2: u32::MAX,
        preferred: u32::MAX,
        valid: u32::MAX,
        ..Default::default()
    });
    assert_eq!(lab.client.poll_timeout(), None);
}

#[test]
fn ia_with_t1_above_t2_is_discarded() {
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    let broken = ServerReply {
        t1: 100,
        t2: 50,
        ..Default::default()
    };
    lab.receive("fe80::a", &broken.advertise(solicit.xid(), &SERVER_A, 255));
    assert_eq!(lab.client.state_name(), "soliciting", "§21.4: IA discarded");
}

#[test]
fn bad_messages_are_counted_and_change_nothing() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    let renew = lab.next_sent();
    let xid = renew.xid();
    let before = lab.client.status();

    lab.receive("fe80::a", &[7, 1, 2]);
    lab.receive("fe80::a", &[7, 0, 0, 1, 0, 3, 0, 200]);
    lab.receive(
        "fe80::a",
        &ServerReply::default().reply([xid[0] ^ 1, xid[1], xid[2]], &SERVER_A),
    );
    lab.receive(
        "fe80::a",
        &ServerReply {
            client_id: None,
            ..Default::default()
        }
        .reply(xid, &SERVER_A),
    );
    lab.receive(
        "fe80::a",
        &ServerReply {
            client_id: Some(vec![0, 3, 0, 1, 9, 9, 9, 9, 9, 9]),
            ..Default::default()
        }
        .reply(xid, &SERVER_A),
    );
    lab.receive(
        "fe80::a",
        &build_server_message(
            wire::MSG_REPLY,
            xid,
            vec![DhcpOption::ClientId(DUID.to_vec())],
        ),
    );
    lab.receive(
        "fe80::a",
        &build_server_message(wire::MSG_RECONFIGURE, xid, vec![]),
    );
    lab.receive(
        "fe80::a",
        &build_server_message(wire::MSG_SOLICIT, xid, vec![]),
    );

    let after = lab.client.status();
    assert_eq!(after.state, "renewing");
    assert_eq!(after.lease, before.lease);
    assert_eq!(after.info, before.info);
    let c = lab.client.counters();
    assert_eq!(c.dropped(Drop::Malformed), 2);
    assert_eq!(c.dropped(Drop::WrongTransaction), 1);
    assert_eq!(c.dropped(Drop::NoClientId), 1);
    assert_eq!(c.dropped(Drop::ClientIdMismatch), 1);
    assert_eq!(c.dropped(Drop::NoServerId), 1);
    assert_eq!(c.dropped(Drop::UnauthenticatedReconfigure), 1);
    assert_eq!(c.dropped(Drop::UnexpectedType), 1);
    assert!(lab.events.is_empty());
}

#[test]
fn malformed_aftr_name_keeps_the_previous_one() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    for bad in [vec![4, b'a', b'f', b't', b'r', 0xc0, 0x0c], {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(59);
            v.extend([b'x'; 59]);
        }
        v.push(0);
        v
    }] {
        let renew = lab.next_sent();
        let reply = ServerReply {
            aftr: Some(bad),
            ..Default::default()
        };
        lab.receive("fe80::a", &reply.reply(renew.xid(), &SERVER_A));
        assert_eq!(lab.client.state_name(), "bound", "the lease itself is fine");
        assert_eq!(
            lab.client.info().aftr_name.as_deref(),
            Some("aftr.example.net")
        );
    }
    assert_eq!(lab.client.counters().dropped(Drop::InvalidAftrName), 2);
    assert!(!lab
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::AftrNameChanged(_))));
}

/// A server's malformed DNS server list (length not a multiple of 16) or
/// domain list (compressed, RFC 8415 §10 forbids it) costs that option
/// only: the binding is taken and the previous list stays.
#[test]
fn malformed_dns_options_are_left_out_not_the_message() {
    let with_bad_options = |mut message: Vec<u8>| {
        message.extend([0, 23, 0, 10]);
        message.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1]);
        message.extend([0, 24, 0, 10, 7]);
        message.extend(b"example");
        message.extend([0xc0, 0x0c]);
        message
    };
    let mut lab = Lab::new(stateful());
    lab.feed(Input::LinkUp);
    let solicit = lab.next_sent();
    let advertise = ServerReply::default().advertise(solicit.xid(), &SERVER_A, 255);
    lab.receive("fe80::a", &with_bad_options(advertise));
    let request = lab.next_sent();
    assert_eq!(u8::from(request.msg_type()), wire::MSG_REQUEST);
    let reply = ServerReply::default().reply(request.xid(), &SERVER_A);
    lab.receive("fe80::a", &reply);
    assert_eq!(lab.client.state_name(), "bound");
    lab.take_events();

    let renew = lab.next_sent();
    let reply = ServerReply {
        dns: vec![addr("2001:db8::99")],
        ..Default::default()
    }
    .reply(renew.xid(), &SERVER_A);
    lab.receive("fe80::a", &with_bad_options(reply));
    assert_eq!(lab.client.state_name(), "bound");
    assert_eq!(lab.client.info().dns_servers, [addr("2001:db8::53")]);
    assert_eq!(lab.client.counters().dropped(Drop::InvalidOption), 4);
    assert_eq!(lab.client.counters().dropped(Drop::Malformed), 0);
    assert!(!lab
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::DnsServersChanged(_))));
}

#[test]
fn shutdown_releases_and_waits_for_the_reply() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    lab.feed(Input::Shutdown);
    let release = lab.last_sent().clone();
    assert_eq!(u8::from(release.msg_type()), wire::MSG_RELEASE);
    assert_eq!(server_id(&release).unwrap(), SERVER_A.to_vec());
    assert!(oro(&release).is_empty());
    assert!(lab.events.contains(&Event::LeaseLost {
        reason: LossReason::Released
    }));
    assert!(lab.events.contains(&Event::AddressesChanged(vec![])));
    assert!(lab.events.contains(&Event::PrefixesChanged(vec![])));
    assert!(lab.events.contains(&Event::AftrNameChanged(None)));
    assert!(!lab.stopped);
    lab.receive(
        "fe80::a",
        &build_server_message(
            wire::MSG_REPLY,
            release.xid(),
            vec![
                DhcpOption::ClientId(DUID.to_vec()),
                DhcpOption::ServerId(SERVER_A.to_vec()),
            ],
        ),
    );
    assert!(lab.stopped);
}

#[test]
fn release_gives_up_after_rel_max_rc() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.feed(Input::Shutdown);
    while !lab.stopped {
        lab.fire_next_timer();
    }
    let releases = lab
        .sent
        .iter()
        .filter(|(_, m)| u8::from(m.msg_type()) == wire::MSG_RELEASE)
        .count();
    assert_eq!(releases, 4, "REL_MAX_RC");
}

/// Stopping while the link is down (cable out, or port 546 held by
/// another client): no Release can go, so the binding is neither announced
/// lost nor waited on; it stays in the file for the next start's Rebind.
#[test]
fn shutdown_without_a_link_keeps_the_binding_and_stops_at_once() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.feed(Input::LinkDown);
    lab.take_events();
    let sent = lab.sent.len();
    lab.feed(Input::Shutdown);
    assert!(lab.stopped, "at once");
    assert_eq!(lab.sent.len(), sent, "no Release without a link");
    assert!(
        lab.take_events().is_empty(),
        "the binding is not announced lost"
    );
}

#[test]
fn shutdown_without_release_stops_at_once() {
    let mut cfg = config(stateful());
    cfg.release_on_stop = false;
    let mut client = Client::new(cfg, 1);
    let actions = client.handle(Instant::now(), Input::Shutdown);
    assert_eq!(actions, vec![Action::Stopped]);
}

#[test]
fn stateless_mode_uses_information_request_and_refreshes() {
    let mut lab = Lab::new(Mode::Stateless);
    lab.feed(Input::LinkUp);
    let inf = lab.next_sent();
    assert_eq!(u8::from(inf.msg_type()), wire::MSG_INFORMATION_REQUEST);
    assert_eq!(oro(&inf), vec![23, 24, 64, 82, 32, 83]);
    assert!(inf.opts().get(OptionCode::IANA).is_none());
    let mut opts = vec![
        DhcpOption::ClientId(DUID.to_vec()),
        DhcpOption::ServerId(SERVER_A.to_vec()),
        DhcpOption::DomainNameServers(vec![addr("2001:db8::53")]),
        DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(wire::OPT_AFTR_NAME),
            encode_dns_name("aftr.example.net").unwrap(),
        )),
    ];
    // Below the 600 s minimum of §21.23.
    opts.push(DhcpOption::InformationRefreshTime(30));
    lab.receive(
        "fe80::a",
        &build_server_message(wire::MSG_REPLY, inf.xid(), opts),
    );
    assert_eq!(lab.client.state_name(), "informed");
    assert_eq!(
        lab.client.info().aftr_name.as_deref(),
        Some("aftr.example.net")
    );
    let replied = lab.now;
    let again = lab.next_sent();
    assert_eq!(lab.now, replied + secs(600));
    assert_eq!(u8::from(again.msg_type()), wire::MSG_INFORMATION_REQUEST);
}

#[test]
fn link_flap_with_a_lease_rebinds() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.feed(Input::LinkDown);
    assert_eq!(lab.client.state_name(), "idle");
    assert!(
        lab.client.lease().is_some(),
        "the lease survives a link flap"
    );
    lab.now += secs(5);
    lab.feed(Input::LinkUp);
    assert_eq!(u8::from(lab.last_sent().msg_type()), wire::MSG_REBIND);
}

#[test]
fn lease_expires_while_the_link_is_down() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.feed(Input::LinkDown);
    lab.take_events();
    lab.run_until(lab.now + secs(3001));
    assert!(lab.client.lease().is_none());
    assert!(lab.take_events().contains(&Event::LeaseLost {
        reason: LossReason::Expired
    }));
    assert_eq!(lab.client.state_name(), "idle");
    lab.feed(Input::LinkUp);
    assert_eq!(lab.client.state_name(), "soliciting");
}

#[test]
fn dad_failure_declines_the_address() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    lab.feed(Input::DadFailed(addr("2001:db8:1::100")));
    assert!(lab.take_events().contains(&Event::AddressesChanged(vec![])));
    lab.answer_decline();
    // The prefix is still held, and a replacement address is asked for at
    // once with the IA_NA in a Renew.
    assert!(lab.client.lease().is_some_and(|l| !l.prefixes.is_empty()));
    assert_eq!(lab.client.state_name(), "renewing");
    let renew = lab.last_sent().clone();
    assert_eq!(u8::from(renew.msg_type()), wire::MSG_RENEW);
    assert!(renew
        .opts()
        .iter()
        .any(|o| matches!(o, DhcpOption::IANA(_))));
}

/// A DAD failure while the link is down or a Rebind runs (the kernel runs
/// DAD again after a flap) does not hijack the client: the address is no
/// longer used, and the Rebind of RFC 8415 §18.2.12 still happens.
#[test]
fn dad_failure_with_the_link_down_or_mid_rebind_keeps_the_rebind() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    lab.feed(Input::LinkDown);
    lab.feed(Input::DadFailed(addr("2001:db8:1::100")));
    assert!(lab.take_events().contains(&Event::AddressesChanged(vec![])));
    assert_eq!(lab.client.state_name(), "idle");
    lab.feed(Input::LinkUp);
    assert_eq!(lab.client.state_name(), "rebinding");
    // Mid-Rebind: the Rebind goes on.
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.feed(Input::LinkDown);
    lab.feed(Input::LinkUp);
    assert_eq!(lab.client.state_name(), "rebinding");
    lab.feed(Input::DadFailed(addr("2001:db8:1::100")));
    assert_eq!(lab.client.state_name(), "rebinding");
    assert!(lab.client.lease().is_some_and(|l| l.addresses.is_empty()));
}

/// The only thing held, an address, declined: the lease ends with what it
/// told (AFTR name, DNS servers), as any lost lease does, and the client
/// solicits again.
#[test]
fn declining_the_only_address_ends_the_lease() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply {
        prefix: None,
        ..Default::default()
    });
    lab.take_events();
    lab.feed(Input::DadFailed(addr("2001:db8:1::100")));
    lab.answer_decline();
    let events = lab.take_events();
    assert!(
        events.contains(&Event::LeaseLost {
            reason: LossReason::Declined
        }),
        "{events:?}"
    );
    assert!(events.contains(&Event::AftrNameChanged(None)), "{events:?}");
    assert!(lab.client.lease().is_none());
    assert!(lab.client.info().dns_servers.is_empty());
    assert_eq!(lab.client.state_name(), "soliciting");
}

#[test]
fn force_renew_renews_now() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.feed(Input::ForceRenew);
    assert_eq!(u8::from(lab.last_sent().msg_type()), wire::MSG_RENEW);
}

#[test]
fn zero_valid_lifetime_in_renew_reply_withdraws_that_address() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    lab.take_events();
    let renew = lab.next_sent();
    let reply = ServerReply {
        address: Some(addr("2001:db8:1::100")),
        preferred: 0,
        valid: 0,
        prefix: None,
        ..Default::default()
    };
    lab.receive("fe80::a", &reply.reply(renew.xid(), &SERVER_A));
    let lease = lab.client.lease().unwrap();
    assert!(lease.addresses.is_empty());
    assert_eq!(
        lease.prefixes.len(),
        1,
        "the prefix keeps its old lifetimes"
    );
}

/// A Reply to Renew that leaves out the IA_PD we hold (§18.2.10.1: a
/// server that does not handle it) while the IA_NA gets a T1 later than the
/// prefix's valid lifetime: the prefix is asked for again (rate-limited,
/// REN_MAX_RT) before it runs out, not after.
#[test]
fn a_held_ia_left_out_of_a_renew_reply_is_asked_for_again_in_time() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply::default());
    let renew = lab.next_sent();
    let renewed_at = lab.now;
    let address_only = ServerReply {
        prefix: None,
        t1: 5000,
        t2: 8000,
        preferred: 10000,
        valid: 10000,
        ..Default::default()
    };
    let mut reply = address_only.reply(renew.xid(), &SERVER_A);
    // Leave the IA_PD out altogether (the helper sends an empty one).
    let message = Message::from_bytes(&reply).unwrap();
    let mut opts = DhcpOptions::new();
    for opt in message.opts().iter() {
        if !matches!(opt, DhcpOption::IAPD(_)) {
            opts.insert(opt.clone());
        }
    }
    reply = build_server_message(wire::MSG_REPLY, renew.xid(), opts.iter().cloned().collect());
    lab.receive("fe80::a", &reply);
    assert_eq!(lab.client.state_name(), "bound");
    let prefix_valid_until = lab.client.lease().unwrap().prefixes[0].valid_until.unwrap();
    let again = lab.next_sent();
    assert_eq!(u8::from(again.msg_type()), wire::MSG_RENEW);
    assert!(again.opts().get(OptionCode::IAPD).is_some());
    assert!(
        lab.now <= renewed_at + secs(600),
        "rate-limited, not at T1 (5000 s)"
    );
    assert!(lab.now < prefix_valid_until);
}

#[test]
fn address_only_server_is_accepted_when_prefix_is_also_wanted() {
    let mut lab = Lab::new(stateful());
    lab.bind(&ServerReply {
        prefix: None,
        ..Default::default()
    });
    let lease = lab.client.lease().unwrap();
    assert_eq!(lease.addresses.len(), 1);
    assert!(lease.prefixes.is_empty());
    // RFC 7550 §4.2: the Renew asks for the prefix again with an empty IA_PD.
    let renew = lab.next_sent();
    assert!(renew.opts().get(OptionCode::IAPD).is_some());
}

// ----- restart: a binding restored from the lease file (persist.rs) ------------

fn boot_clock(ms: u64) -> BootClock {
    BootClock {
        boot_id: "6a1f0c7e-1111-2222-3333-444455556666".into(),
        since_boot: Duration::from_millis(ms),
    }
}

/// A client bound by `reply`, killed, and a new one (its own Instant base,
/// 30 s later by the boot clock) given what the first one had written.
fn restarted(mode: Mode, reply: &ServerReply) -> (Lab, Vec<Event>) {
    let mut first = Lab::new(stateful());
    first.bind(reply);
    let text = persist::serialize(
        &first.client.saved(),
        "wan",
        first.now,
        &boot_clock(100_000),
    );
    let mut lab = Lab::new(mode);
    lab.now = first.now + secs(86_400);
    let saved = persist::parse(&text)
        .unwrap()
        .rebase(lab.now, &boot_clock(130_000), &DUID, "wan")
        .unwrap();
    let actions = lab.client.restore(lab.now, saved);
    let events = actions
        .into_iter()
        .map(|a| match a {
            Action::Event(e) => e,
            other => panic!("restore only announces: {other:?}"),
        })
        .collect();
    (lab, events)
}

fn held_ias(msg: &Message) -> (Vec<Ipv6Addr>, Vec<(Ipv6Addr, u8)>) {
    let mut addresses = Vec::new();
    let mut prefixes = Vec::new();
    for opt in msg.opts().iter() {
        match opt {
            DhcpOption::IANA(na) => addresses.extend(na.opts.iter().filter_map(|o| match o {
                DhcpOption::IAAddr(a) => Some(a.addr),
                _ => None,
            })),
            DhcpOption::IAPD(pd) => prefixes.extend(pd.opts.iter().filter_map(|o| match o {
                DhcpOption::IAPrefix(p) => Some((p.prefix_ip, p.prefix_len)),
                _ => None,
            })),
            _ => {}
        }
    }
    (addresses, prefixes)
}

#[test]
fn a_restored_binding_is_announced_at_once_and_rebound_at_link_up() {
    let (mut lab, events) = restarted(stateful(), &ServerReply::default());
    let shown: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "lease-acquired server=fe80::a",
            "addresses-changed 2001:db8:1::100",
            "prefixes-changed 2001:db8:100::/56",
            "dns-servers-changed 2001:db8::53",
            "aftr-name-changed aftr.example.net",
        ]
    );
    let status = lab.client.status();
    assert!(status.restored);
    assert_eq!(status.state, "idle");
    // Lifetimes went on counting while b4d was down: 30 s of 3000.
    let lease = status.lease.unwrap();
    assert_eq!(lease.addresses[0].valid_until, Some(lab.now + secs(2970)));
    assert_eq!(lease.t1, Some(lab.now + secs(970)));
    assert!(
        lab.sent.is_empty(),
        "nothing goes out before the link is up"
    );

    // §18.2.12: at link-up a client with a binding Rebinds, naming no
    // server, with what it holds.
    lab.feed(Input::LinkUp);
    let rebind = lab.last_sent().clone();
    assert_eq!(u8::from(rebind.msg_type()), wire::MSG_REBIND);
    assert!(server_id(&rebind).is_none());
    assert_eq!(
        held_ias(&rebind),
        (
            vec![addr("2001:db8:1::100")],
            vec![(addr("2001:db8:100::"), 56)]
        )
    );
    lab.now += secs(1);
    lab.receive(
        "fe80::a",
        &ServerReply::default().reply(rebind.xid(), &SERVER_A),
    );
    assert_eq!(lab.client.state_name(), "bound");
    assert_eq!(
        lab.take_events(),
        vec![Event::LeaseRenewed {
            server: addr("fe80::a")
        }],
        "the same binding: nothing changed"
    );
    let status = lab.client.status();
    assert!(!status.restored, "confirmed by a Reply");
    assert_eq!(
        status.lease.unwrap().addresses[0].valid_until,
        Some(lab.now + secs(3000))
    );
}

#[test]
fn a_rebind_reply_that_changes_the_restored_binding_is_taken_as_usual() {
    let (mut lab, _) = restarted(stateful(), &ServerReply::default());
    lab.feed(Input::LinkUp);
    let rebind = lab.last_sent().clone();
    // Another server (the ISP renumbered): new address, the old one
    // withdrawn with valid lifetime 0 (§18.2.10.1), a new AFTR.
    let mut withdraw = ServerReply {
        valid: 0,
        preferred: 0,
        prefix: None,
        ..ServerReply::default()
    };
    withdraw.aftr = Some(encode_dns_name("aftr2.example.net").unwrap());
    let mut options = withdraw.options(&SERVER_B);
    options.push(DhcpOption::IANA(IANA {
        id: 1,
        t1: 1000,
        t2: 1600,
        opts: DhcpOptions::from_iter([DhcpOption::IAAddr(IAAddr {
            addr: addr("2001:db8:2::200"),
            preferred_life: 2000,
            valid_life: 3000,
            opts: DhcpOptions::new(),
        })]),
    }));
    lab.receive(
        "fe80::b",
        &build_server_message(wire::MSG_REPLY, rebind.xid(), options),
    );
    let shown: Vec<String> = lab.take_events().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "lease-renewed server=fe80::b",
            "addresses-changed 2001:db8:2::200",
            "aftr-name-changed aftr2.example.net",
        ]
    );
    let lease = lab.client.lease().unwrap();
    assert_eq!(lease.server_id, SERVER_B.to_vec());
    // The server did not mention the prefix: it keeps its restored lifetimes.
    assert_eq!(lease.prefixes.len(), 1);
}

#[test]
fn no_reply_to_the_restored_rebind_loses_it_when_the_lifetimes_end() {
    let (mut lab, _) = restarted(stateful(), &ServerReply::default());
    lab.feed(Input::LinkUp);
    let restored_at = lab.now;
    lab.take_events();
    lab.run_until(restored_at + secs(2969));
    assert!(lab.client.lease().is_some());
    assert!(lab
        .sent
        .iter()
        .all(|(_, m)| u8::from(m.msg_type()) == wire::MSG_REBIND));
    lab.run_until(restored_at + secs(2970));
    assert_eq!(
        lab.take_events()[0],
        Event::LeaseLost {
            reason: LossReason::Expired
        }
    );
    assert!(!lab.client.status().restored);
    assert_eq!(lab.client.state_name(), "soliciting");
}

#[test]
fn restore_keeps_only_what_the_configuration_asks_for() {
    // Stateless now: the information stays, the binding does not.
    let (lab, events) = restarted(Mode::Stateless, &ServerReply::default());
    assert!(lab.client.lease().is_none());
    assert_eq!(
        lab.client.info().aftr_name.as_deref(),
        Some("aftr.example.net")
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::LeaseAcquired { .. })));
    // Prefix only: the address is left out and the Rebind asks for no IA_NA.
    let prefix_only = Mode::Stateful {
        request_address: false,
        request_prefix: true,
        prefix_hint: 56,
    };
    let (mut lab, _) = restarted(prefix_only, &ServerReply::default());
    assert!(lab.client.lease().unwrap().addresses.is_empty());
    lab.feed(Input::LinkUp);
    assert_eq!(
        held_ias(lab.last_sent()),
        (vec![], vec![(addr("2001:db8:100::"), 56)])
    );
}

#[test]
fn restore_is_refused_for_another_duid_or_a_running_client() {
    let mut first = Lab::new(stateful());
    first.bind(&ServerReply::default());
    let mut saved = first.client.saved();
    // A running client keeps what it has.
    assert!(first.client.restore(first.now, saved.clone()).is_empty());
    saved.client_id = vec![0, 3, 0, 1, 9, 9, 9, 9, 9, 9];
    let mut lab = Lab::new(stateful());
    assert!(lab.client.restore(lab.now, saved).is_empty());
    assert!(lab.client.lease().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_change_a_bound_client(
        bytes in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        let mut lab = Lab::new(stateful());
        lab.bind(&ServerReply::default());
        let before = lab.client.status();
        // The bound client has no exchange, so nothing may be accepted.
        lab.receive("fe80::a", &bytes);
        prop_assert_eq!(lab.client.status().lease, before.lease);
        prop_assert_eq!(lab.client.state_name(), "bound");
    }

    #[test]
    fn arbitrary_bytes_with_the_right_xid_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        msg_type in 0u8..16,
    ) {
        let mut lab = Lab::new(stateful());
        lab.feed(Input::LinkUp);
        let solicit = lab.next_sent();
        let mut bytes = vec![msg_type];
        bytes.extend(solicit.xid());
        bytes.extend(tail);
        lab.receive("fe80::a", &bytes);
        let _ = lab.client.poll_timeout();
    }

    #[test]
    fn wire_parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = wire::parse(&bytes);
        let _ = wire::decode_aftr_name(&bytes);
    }
}
