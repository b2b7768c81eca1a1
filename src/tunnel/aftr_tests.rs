//! Deterministic tests of AFTR resolution: time is passed in, the seed fixed.

use super::*;
use std::time::{Duration, Instant};

const DNS1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x53, 0, 0, 0, 1);
const DNS2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x53, 0, 0, 0, 2);
const AFTR1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaf, 0, 0, 0, 0, 1);
const AFTR2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xaf, 0, 0, 0, 0, 2);
const OWN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);

fn resolver_with_name(now: Instant) -> (AftrResolver, Lookup) {
    let mut r = AftrResolver::new(AftrSource::Dhcpv6, 7);
    assert_eq!(r.poll_lookup(), None, "nothing to resolve without a name");
    r.handle(now, Input::Servers(vec![DNS1, DNS2]));
    r.handle(now, Input::DhcpName(Some("aftr.example.net".into())));
    let lookup = r
        .poll_lookup()
        .expect("a lookup once name and servers are known");
    assert_eq!(lookup.name, "aftr.example.net");
    assert_eq!(lookup.servers, vec![DNS1, DNS2]);
    (r, lookup)
}

fn answer(addresses: &[Ipv6Addr], ttl: u32) -> LookupResult {
    LookupResult::Addresses {
        addresses: addresses.to_vec(),
        ttl,
        server: DNS1,
    }
}

fn failed() -> LookupResult {
    LookupResult::AllServersFailed {
        detail: "2001:db8:0:53::1: timeout".into(),
    }
}

/// The driver reports `lookup` done with `result` at `at`.
fn complete(r: &mut AftrResolver, at: Instant, lookup: &Lookup, result: LookupResult) {
    r.handle(
        at,
        Input::Completed {
            id: lookup.id,
            result,
        },
    );
}

/// Runs timeouts until the next lookup comes out; returns when it did.
fn next_lookup(r: &mut AftrResolver) -> (Instant, Lookup) {
    let at = r.poll_timeout().expect("a timer is armed");
    r.handle(at, Input::Timeout);
    (at, r.poll_lookup().expect("the timer started a lookup"))
}

#[test]
fn all_addresses_kept_first_selected() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1, AFTR2], 3600));
    let s = r.status();
    assert_eq!(s.addresses, vec![AFTR1, AFTR2]);
    assert_eq!(s.selected, Some(AFTR1));
    assert_eq!(s.ttl, Some(3600));
    assert_eq!(s.problem, None);
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(3600)));
}

#[test]
fn ttl_expiry_re_resolves_and_a_changed_set_moves_the_tunnel() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 30));
    let (t1, again) = next_lookup(&mut r);
    assert_eq!(t1, t0 + Duration::from_secs(30));
    // Same name asked again; the old address stays in use meanwhile.
    assert_eq!(again.name, "aftr.example.net");
    assert_eq!(r.selected(), Some(AFTR1));
    complete(&mut r, t1, &again, answer(&[AFTR2], 30));
    assert_eq!(r.selected(), Some(AFTR2));
}

#[test]
fn re_resolution_keeps_the_address_in_use_when_still_listed() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR2, AFTR1], 30));
    assert_eq!(r.selected(), Some(AFTR2));
    let (t1, again) = next_lookup(&mut r);
    // Round-robin DNS reorders the set: the tunnel must not move.
    complete(&mut r, t1, &again, answer(&[AFTR1, AFTR2], 30));
    assert_eq!(r.selected(), Some(AFTR2));
}

#[test]
fn tiny_ttl_is_clamped_so_a_zero_ttl_cannot_hammer_the_server() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 0));
    assert_eq!(r.poll_timeout(), Some(t0 + MIN_REFRESH));
}

#[test]
fn failures_back_off_exponentially_with_jitter_up_to_the_cap() {
    let t0 = Instant::now();
    let (mut r, mut lookup) = resolver_with_name(t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..14 {
        complete(&mut r, now, &lookup, failed());
        assert_eq!(r.selected(), None);
        let (at, next) = next_lookup(&mut r);
        delays.push((at - now).as_secs_f64());
        now = at;
        lookup = next;
    }
    // 1, 2, 4, ... seconds, each within ±20%, capped at MAX_BACKOFF.
    for (i, delay) in delays.iter().enumerate() {
        let base = (1u64 << i.min(16)).min(MAX_BACKOFF.as_secs()) as f64;
        assert!(
            *delay >= base * 0.8 - 1e-9 && *delay <= base * 1.2 + 1e-9,
            "retry {i}: {delay}s not within 20% of {base}s ({delays:?})"
        );
    }
    // An hour of failures makes a handful of attempts, not a flap loop.
    let within_an_hour = delays
        .iter()
        .scan(0.0, |sum, d| {
            *sum += d;
            Some(*sum)
        })
        .take_while(|sum| *sum <= 3600.0)
        .count();
    assert!(within_an_hour <= 20, "{within_an_hour} attempts in an hour");
    assert!(r
        .status()
        .problem
        .as_deref()
        .unwrap()
        .contains("no DNS server answered"));
    assert_eq!(r.status().failures, 14);
}

#[test]
fn jitter_differs_between_seeds() {
    let first_retry = |seed| {
        let t0 = Instant::now();
        let mut r = AftrResolver::new(AftrSource::ConfiguredName("aftr.example.net".into()), seed);
        r.handle(t0, Input::Servers(vec![DNS1]));
        let lookup = r.poll_lookup().unwrap();
        complete(&mut r, t0, &lookup, failed());
        r.poll_timeout().unwrap() - t0
    };
    assert_ne!(first_retry(1), first_retry(2));
}

#[test]
fn transient_failure_after_success_serves_stale_until_the_limit() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 60));
    let (t1, again) = next_lookup(&mut r);
    complete(&mut r, t1, &again, failed());
    assert_eq!(r.selected(), Some(AFTR1), "a DNS outage keeps the tunnel");
    assert!(r.status().stale);
    assert!(r.status().problem.is_some());
    // Keep failing until the stale limit passes.
    let mut now = t1;
    while r.selected().is_some() {
        let at = r.poll_timeout().unwrap();
        r.handle(at, Input::Timeout);
        now = at;
        if let Some(l) = r.poll_lookup() {
            complete(&mut r, now, &l, failed());
        }
    }
    assert!(now >= t1 + STALE_LIMIT);
    assert!(now <= t1 + STALE_LIMIT + MAX_BACKOFF.mul_f64(1.2));
}

/// b4d restarted (a reload, or procd after a crash) while DNS is down: the
/// tunnel the earlier run left is kept on its remote, as that run would
/// have kept it, until DNS answers; an answer of this run replaces it, an
/// authoritative "no" withdraws it, and a tunnel seen after a first answer
/// is this run's own.
#[test]
fn an_adopted_tunnels_remote_is_kept_through_a_dns_outage_at_start() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    r.handle(t0, Input::Adopted(AFTR2));
    assert_eq!(r.selected(), None, "not before the lookup ends");
    complete(&mut r, t0, &lookup, failed());
    assert_eq!(r.selected(), Some(AFTR2));
    assert!(r.status().stale && r.status().problem.is_some());
    let (t1, again) = next_lookup(&mut r);
    complete(&mut r, t1, &again, answer(&[AFTR1], 60));
    assert_eq!(r.selected(), Some(AFTR1));

    let (mut r, lookup) = resolver_with_name(t0);
    r.handle(t0, Input::Adopted(AFTR2));
    complete(
        &mut r,
        t0,
        &lookup,
        LookupResult::NoSuchName { server: DNS1 },
    );
    assert_eq!(r.selected(), None, "an authoritative no");

    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, failed());
    r.handle(t0, Input::Adopted(AFTR2));
    let (t1, again) = next_lookup(&mut r);
    complete(&mut r, t1, &again, failed());
    assert_eq!(r.selected(), None, "only before this run's first answer");

    // Option 64 names another AFTR before DNS answered: not its address.
    let (mut r, _) = resolver_with_name(t0);
    r.handle(t0, Input::Adopted(AFTR2));
    r.handle(t0, Input::DhcpName(Some("aftr2.example.net".into())));
    let renamed = r.poll_lookup().expect("the new name is looked up");
    complete(&mut r, t0, &renamed, failed());
    assert_eq!(r.selected(), None);
}

#[test]
fn authoritative_no_withdraws_at_once() {
    for result in [
        LookupResult::NoSuchName { server: DNS1 },
        LookupResult::NoAddresses { server: DNS2 },
    ] {
        let t0 = Instant::now();
        let (mut r, lookup) = resolver_with_name(t0);
        complete(&mut r, t0, &lookup, answer(&[AFTR1], 60));
        let (t1, again) = next_lookup(&mut r);
        complete(&mut r, t1, &again, result.clone());
        assert_eq!(r.selected(), None, "{result:?}");
        assert!(r.poll_timeout().is_some(), "retry scheduled");
    }
}

#[test]
fn unusable_answers_are_rejected_with_the_reason() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    r.handle(t0, Input::OwnAddresses(vec![OWN]));
    let bad: Vec<Ipv6Addr> = [
        "::",
        "::1",
        "fe80::1",
        "ff02::1",
        "::ffff:192.0.2.1",
        "2001:db8:1::100",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    complete(&mut r, t0, &lookup, answer(&bad, 60));
    assert_eq!(r.selected(), None);
    let problem = r.status().problem.clone().unwrap();
    for word in [
        "unspecified",
        "loopback",
        "link-local",
        "multicast",
        "IPv4-mapped",
        "our own address",
    ] {
        assert!(problem.contains(word), "{problem}");
    }
    assert!(r.poll_timeout().is_some());
}

#[test]
fn unusable_records_are_skipped_when_a_usable_one_exists() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(
        &mut r,
        t0,
        &lookup,
        answer(&["fe80::1".parse().unwrap(), AFTR2], 60),
    );
    assert_eq!(r.status().addresses, vec![AFTR2]);
}

#[test]
fn a_new_name_asks_at_once_and_keeps_the_old_address_until_answered() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 3600));
    r.handle(t0, Input::DhcpName(Some("aftr2.example.net".into())));
    assert_eq!(r.selected(), Some(AFTR1), "make before break");
    let lookup = r.poll_lookup().unwrap();
    assert_eq!(lookup.name, "aftr2.example.net");
    complete(&mut r, t0, &lookup, answer(&[AFTR2], 3600));
    assert_eq!(r.selected(), Some(AFTR2));
}

#[test]
fn a_late_answer_for_the_old_name_is_ignored() {
    let t0 = Instant::now();
    let (mut r, old) = resolver_with_name(t0);
    r.handle(t0, Input::DhcpName(Some("aftr2.example.net".into())));
    let new = r.poll_lookup().unwrap();
    complete(&mut r, t0, &old, answer(&[AFTR1], 60));
    assert_eq!(r.selected(), None);
    complete(&mut r, t0, &new, answer(&[AFTR2], 60));
    assert_eq!(r.selected(), Some(AFTR2));
}

#[test]
fn option_64_gone_withdraws_the_aftr() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 3600));
    r.handle(t0, Input::DhcpName(None));
    assert_eq!(r.selected(), None);
    assert!(r.status().problem.as_deref().unwrap().contains("option 64"));
    assert_eq!(r.poll_timeout(), None, "nothing to retry without a name");
}

#[test]
fn no_servers_waits_for_dhcpv6_instead_of_retrying() {
    let t0 = Instant::now();
    let mut r = AftrResolver::new(AftrSource::Dhcpv6, 1);
    r.handle(t0, Input::DhcpName(Some("aftr.example.net".into())));
    assert_eq!(r.poll_lookup(), None);
    assert_eq!(r.poll_timeout(), None);
    assert!(r
        .status()
        .problem
        .as_deref()
        .unwrap()
        .contains("no DNS servers"));
    r.handle(t0, Input::Servers(vec![DNS1]));
    assert!(r.poll_lookup().is_some());
}

#[test]
fn new_servers_retry_at_once_while_failing() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, failed());
    assert_eq!(r.poll_lookup(), None);
    r.handle(t0, Input::Servers(vec![DNS2]));
    let lookup = r.poll_lookup().expect("asked the new server at once");
    assert_eq!(lookup.servers, vec![DNS2]);
}

#[test]
fn refresh_asks_now_and_resets_the_backoff() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, failed());
    r.handle(t0, Input::Refresh);
    assert!(r.poll_lookup().is_some());
    assert_eq!(r.status().failures, 0);
}

#[test]
fn a_dns_server_answering_again_cuts_a_failing_backoff_short() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, failed());
    let (t1, again) = next_lookup(&mut r);
    complete(&mut r, t1, &again, failed());
    let backoff_end = r.poll_timeout().expect("a retry is scheduled");
    assert!(backoff_end > t1 + Duration::from_secs(1));
    // The LAN proxy's resolver answers again half a second later.
    let t2 = t1 + Duration::from_millis(500);
    r.handle(t2, Input::DnsRecovered);
    let now = r
        .poll_lookup()
        .expect("asked at once, not at the backoff's end");
    assert_eq!(now.name, "aftr.example.net");
    assert_eq!(r.status().failures, 2, "the backoff is not reset");
    // While that lookup is out, another hint at once does not start a
    // second one.
    r.handle(t2, Input::DnsRecovered);
    assert_eq!(r.poll_lookup(), None);
    complete(&mut r, t2, &now, answer(&[AFTR1], 300));
    // Working lookups are left alone.
    r.handle(t2, Input::DnsRecovered);
    assert_eq!(r.poll_lookup(), None);
}

#[test]
fn dns_recovery_asks_again_when_the_lookup_out_was_sent_to_the_dead_server() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, failed());
    let t1 = r.poll_timeout().expect("a retry is scheduled");
    r.handle(t1, Input::Timeout);
    let stuck = r.poll_lookup().expect("the retry");
    // Its query met the server while it was down and waits for its
    // timeout; the server answers the LAN proxy again meanwhile.
    let t2 = t1 + Duration::from_millis(300);
    r.handle(t2, Input::DnsRecovered);
    let fresh = r.poll_lookup().expect("asked again at once");
    assert_ne!(fresh.id, stuck.id);
    // The stale lookup's late result is ignored; the fresh one counts.
    complete(&mut r, t2, &stuck, failed());
    assert_eq!(r.selected(), None);
    complete(&mut r, t2, &fresh, answer(&[AFTR1], 300));
    assert_eq!(r.selected(), Some(AFTR1));
}

#[test]
fn configured_name_ignores_option_64() {
    let t0 = Instant::now();
    let mut r = AftrResolver::new(AftrSource::ConfiguredName("mine.example.net".into()), 1);
    r.handle(t0, Input::Servers(vec![DNS1]));
    r.handle(t0, Input::DhcpName(Some("isp.example.net".into())));
    assert_eq!(r.poll_lookup().unwrap().name, "mine.example.net");
    assert_eq!(r.poll_lookup(), None);
}

#[test]
fn configured_address_needs_no_dns() {
    let t0 = Instant::now();
    let mut r = AftrResolver::new(AftrSource::ConfiguredAddress(AFTR1), 1);
    r.handle(t0, Input::DhcpName(Some("isp.example.net".into())));
    r.handle(t0, Input::Servers(vec![DNS1]));
    r.handle(t0, Input::Refresh);
    assert_eq!(r.selected(), Some(AFTR1));
    assert_eq!(r.poll_lookup(), None);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_new_name_that_fails_drops_the_old_address_even_when_transient() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 3600));
    r.handle(t0, Input::DhcpName(Some("aftr2.example.net".into())));
    let lookup = r.poll_lookup().unwrap();
    complete(&mut r, t0, &lookup, failed());
    assert_eq!(
        r.selected(),
        None,
        "the old name's AFTR is not served stale"
    );
    assert!(!r.status().stale);
}

#[test]
fn a_new_name_may_resolve_to_the_same_address() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1, AFTR2], 3600));
    r.handle(t0, Input::DhcpName(Some("aftr2.example.net".into())));
    let lookup = r.poll_lookup().unwrap();
    complete(&mut r, t0, &lookup, answer(&[AFTR2, AFTR1], 3600));
    assert_eq!(r.selected(), Some(AFTR2), "the new name's first address");
}

#[test]
fn an_unreachable_aftr_with_a_renumbered_record_moves_before_the_ttl() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 3600));
    // The ISP renumbered the AFTR: the first error asks DNS at once.
    let t1 = t0 + Duration::from_secs(60);
    r.handle(t1, Input::AftrUnreachable(AFTR1));
    assert!(r.lookup_pending());
    let again = r.poll_lookup().expect("asked again at once");
    assert_eq!(r.selected(), Some(AFTR1), "nothing better to use meanwhile");
    complete(&mut r, t1, &again, answer(&[AFTR2], 3600));
    assert_eq!(r.selected(), Some(AFTR2));
}

#[test]
fn an_unreachable_aftr_fails_over_to_the_answers_next_address_at_once() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1, AFTR2], 3600));
    r.handle(t0, Input::AftrUnreachable(AFTR1));
    assert_eq!(r.selected(), Some(AFTR2), "before DNS answers");
    // DNS still lists both: the reported one stays avoided for a while...
    let again = r.poll_lookup().expect("asked again");
    complete(&mut r, t0, &again, answer(&[AFTR1, AFTR2], 3600));
    assert_eq!(r.selected(), Some(AFTR2));
    // ...and when the other fails too, a minute on, the first is tried again.
    let t1 = t0 + UNREACHABLE_MEMORY + Duration::from_secs(1);
    r.handle(t1, Input::AftrUnreachable(AFTR2));
    assert_eq!(r.selected(), Some(AFTR1));
}

#[test]
fn errors_for_another_address_or_in_a_stream_ask_dns_at_most_every_interval() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 3600));
    // Not the address in use: nothing happens.
    r.handle(t0, Input::AftrUnreachable(AFTR2));
    assert!(!r.lookup_pending());
    r.handle(t0, Input::AftrUnreachable(AFTR1));
    let again = r.poll_lookup().expect("asked again");
    complete(&mut r, t0, &again, answer(&[AFTR1], 3600));
    // The record did not change: further errors (one per packet) ask
    // again only once the interval has passed.
    for ms in [100, 1000, 4900] {
        r.handle(
            t0 + Duration::from_millis(ms),
            Input::AftrUnreachable(AFTR1),
        );
        assert!(!r.lookup_pending(), "asked again after {ms} ms");
    }
    r.handle(t0 + UNREACHABLE_REASK, Input::AftrUnreachable(AFTR1));
    assert!(r.lookup_pending());
    assert_eq!(r.selected(), Some(AFTR1), "the only address stays in use");
}

#[test]
fn an_unreachable_report_without_dns_servers_keeps_the_refresh_timer() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 3600));
    let refresh = r.poll_timeout();
    assert!(refresh.is_some(), "the TTL's refresh is scheduled");
    // A DHCPv6 Reply without option 23, then an error about the AFTR.
    r.handle(t0, Input::Servers(vec![]));
    r.handle(t0, Input::AftrUnreachable(AFTR1));
    assert!(!r.lookup_pending(), "no one to ask");
    assert_eq!(r.poll_timeout(), refresh, "the refresh is still due");
    assert_eq!(r.selected(), Some(AFTR1));
}

/// A refresh (TTL) or a new name due while a DHCPv6 Reply left the DNS
/// servers out is asked as soon as servers are back: the AFTR keeps being
/// followed, not frozen at its last address.
#[test]
fn a_lookup_due_without_dns_servers_is_asked_when_they_are_back() {
    let t0 = Instant::now();
    let (mut r, lookup) = resolver_with_name(t0);
    complete(&mut r, t0, &lookup, answer(&[AFTR1], 60));
    r.handle(t0, Input::Servers(vec![]));
    let t1 = t0 + Duration::from_secs(60);
    r.handle(t1, Input::Timeout);
    assert!(!r.lookup_pending(), "no one to ask");
    assert_eq!(r.selected(), Some(AFTR1), "the address in use stays");
    r.handle(t1, Input::Servers(vec![DNS1]));
    let refresh = r.poll_lookup().expect("the refresh is asked now");
    complete(&mut r, t1, &refresh, answer(&[AFTR2], 60));
    assert_eq!(r.selected(), Some(AFTR2));
    assert!(r.poll_timeout().is_some(), "and the next one scheduled");

    // A new option 64 name while there are no servers: the old address
    // serves until the new name is answered, asked once servers are back.
    r.handle(t1, Input::Servers(vec![]));
    r.handle(t1, Input::DhcpName(Some("aftr2.example.net".into())));
    assert_eq!(r.selected(), Some(AFTR2));
    r.handle(t1, Input::Servers(vec![DNS1]));
    let renamed = r.poll_lookup().expect("the new name is asked");
    assert_eq!(renamed.name, "aftr2.example.net");
}

#[test]
fn a_configured_aftr_address_ignores_unreachable_reports() {
    let t0 = Instant::now();
    let mut r = AftrResolver::new(AftrSource::ConfiguredAddress(AFTR1), 7);
    r.handle(t0, Input::AftrUnreachable(AFTR1));
    assert_eq!(r.selected(), Some(AFTR1));
    assert!(!r.lookup_pending());
}
