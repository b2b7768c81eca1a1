//! The LAN prefix decisions, checked without a kernel and with a fake clock.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const LAN: u32 = 5;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Net {
    let (addr, len) = s.split_once('/').unwrap();
    Net::new(v6(addr), len.parse().unwrap())
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn settings() -> Settings {
    Settings {
        assign: Some(64),
        hint: 0,
        iface_id: 1,
    }
}

/// A delegated prefix received at `t0` with these lifetimes (seconds).
fn pd(t0: Instant, prefix: &str, preferred: u32, valid: u32) -> DelegatedPrefix {
    let n = net(prefix);
    DelegatedPrefix {
        prefix: n.addr,
        len: n.len,
        preferred_until: crate::dhcpv6::lease::deadline(t0, preferred),
        valid_until: crate::dhcpv6::lease::deadline(t0, valid),
    }
}

fn lan(addresses: Vec<KernelAddress>) -> Observed {
    Observed {
        lan: Some((LAN, addresses)),
        lan_ready: true,
        routes: vec![],
    }
}

fn kaddr(addr: &str, prefix_len: u8, preferred: u32, valid: u32) -> KernelAddress {
    KernelAddress {
        addr: v6(addr),
        prefix_len,
        valid,
        preferred,
    }
}

fn set_addr(addr: &str, prefix_len: u8, preferred: u32, valid: u32) -> Op {
    Op::SetAddress {
        index: LAN,
        addr: v6(addr),
        prefix_len,
        preferred,
        valid,
    }
}

fn add_route(dst: &str) -> Op {
    Op::AddUnreachableRoute { dst: net(dst) }
}

/// The kernel after `ops` were applied to `observed`, at the same instant.
fn applied(mut observed: Observed, ops: &[Op]) -> Observed {
    for op in ops {
        match op {
            Op::SetAddress {
                addr,
                prefix_len,
                preferred,
                valid,
                ..
            } => {
                let addresses = &mut observed.lan.as_mut().unwrap().1;
                addresses.retain(|a| !(a.addr == *addr && a.prefix_len == *prefix_len));
                addresses.push(KernelAddress {
                    addr: *addr,
                    prefix_len: *prefix_len,
                    valid: *valid,
                    preferred: *preferred,
                });
            }
            Op::RemoveAddress {
                addr, prefix_len, ..
            } => {
                let addresses = &mut observed.lan.as_mut().unwrap().1;
                addresses.retain(|a| !(a.addr == *addr && a.prefix_len == *prefix_len));
            }
            Op::AddUnreachableRoute { dst } => {
                observed.routes.retain(|r| r.dst != *dst);
                observed.routes.push(KernelRoute { dst: *dst });
            }
            Op::RemoveUnreachableRoute { dst } => observed.routes.retain(|r| r.dst != *dst),
        }
    }
    observed
}

/// The kernel `n` seconds later: every lifetime counted down.
fn aged(mut observed: Observed, n: u32) -> Observed {
    let down = |s: &mut u32| {
        if *s != FOREVER {
            *s = s.saturating_sub(n);
        }
    };
    for a in &mut observed.lan.as_mut().unwrap().1 {
        down(&mut a.valid);
        down(&mut a.preferred);
    }
    observed
}

fn plan_at(core: &Lan6, now: Instant, observed: &Observed) -> Plan {
    core.plan(now, observed, false, "br-lan")
}

#[test]
fn a_delegated_prefix_gives_the_bridge_its_64_and_the_prefix_an_unreachable_route() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    let notes = core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    assert_eq!(notes.len(), 1);
    let p = plan_at(&core, t0, &lan(vec![]));
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100::1", 64, 3000, 4000),
            add_route("2001:db8:100::/56"),
        ]
    );
    assert_eq!(p.skipped, vec![]);
    assert_eq!(
        p.assigned,
        vec![Assigned {
            delegated: net("2001:db8:100::/56"),
            lan: Some((net("2001:db8:100::/64"), v6("2001:db8:100::1"))),
            preferred: 3000,
            valid: 4000,
            withdrawn: false,
            route: true,
        }]
    );
    // Applied: nothing left to do, also 7 s later (the kernel counts down).
    let k = applied(lan(vec![]), &p.ops);
    assert_eq!(plan_at(&core, t0, &k).ops, vec![]);
    let mut later = k.clone();
    for a in &mut later.lan.as_mut().unwrap().1 {
        a.valid -= 7;
        a.preferred -= 7;
    }
    assert_eq!(plan_at(&core, t0 + secs(7), &later).ops, vec![]);
}

#[test]
fn a_renew_refreshes_the_address_lifetimes() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    // T1 later the server extends both lifetimes.
    let t1 = t0 + secs(1500);
    core.update_lease(t1, &[pd(t1, "2001:db8:100::/56", 3000, 4000)]);
    // The route has no lifetime in the kernel: it stays as it is.
    assert_eq!(
        plan_at(&core, t1, &aged(k, 1500)).ops,
        vec![set_addr("2001:db8:100::1", 64, 3000, 4000)]
    );
}

#[test]
fn ip6hint_and_ip6assign_pick_the_subnet_like_openwrt() {
    let cases = [
        // (assign, hint, delegated, bridge address/len)
        (64, 0x1f, "2001:db8:100::/56", "2001:db8:100:1f::1/64"),
        (64, 0xff, "2001:db8:100::/56", "2001:db8:100:ff::1/64"),
        (60, 0xa, "2001:db8:100::/56", "2001:db8:100:a0::1/60"),
        (64, 0, "2001:db8:100:40::/64", "2001:db8:100:40::1/64"),
        (48, 0, "2001:db8:100::/48", "2001:db8:100::1/48"),
        // Host bits in the delegated prefix are ignored.
        (64, 2, "2001:db8:100:ff::5/56", "2001:db8:100:2::1/64"),
    ];
    for (assign, hint, delegated, want) in cases {
        let s = Settings {
            assign: Some(assign),
            hint,
            iface_id: 1,
        };
        let subnet = carve(net(delegated), &s).unwrap().unwrap();
        let got = format!("{}/{}", lan_address(subnet, &s), subnet.len);
        assert_eq!(got, want, "assign {assign} hint {hint:x} from {delegated}");
    }
    let s = Settings {
        iface_id: 0xb4_0001,
        ..settings()
    };
    let subnet = carve(net("2001:db8:100::/56"), &s).unwrap().unwrap();
    assert_eq!(lan_address(subnet, &s), v6("2001:db8:100::b4:1"));
}

#[test]
fn a_shorter_prefix_than_hinted_is_still_carved_when_the_hint_fits() {
    // We asked for a /56 (wan.prefix_hint), the server gave a /60.
    let t0 = Instant::now();
    let mut core = Lan6::new(Settings {
        hint: 5,
        ..settings()
    });
    core.update_lease(t0, &[pd(t0, "2001:db8:100:10::/60", 3000, 4000)]);
    let p = plan_at(&core, t0, &lan(vec![]));
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100:15::1", 64, 3000, 4000),
            add_route("2001:db8:100:10::/60"),
        ]
    );
}

#[test]
fn a_prefix_that_cannot_be_carved_gets_only_its_unreachable_route_and_says_why() {
    let t0 = Instant::now();
    let cases = [
        // A /60 has 16 /64s: hint 1f needs 5 bits.
        (
            0x1f,
            "2001:db8:100:10::/60",
            "does not fit the 4 subnet bits",
        ),
        // A /64 has only subnet 0.
        (1, "2001:db8:100:10::/64", "does not fit the 0 subnet bits"),
        // Longer than a /64: nothing to carve at all.
        (0, "2001:db8:100:10::/72", "too long to carve a /64"),
    ];
    for (hint, delegated, why) in cases {
        let mut core = Lan6::new(Settings { hint, ..settings() });
        core.update_lease(t0, &[pd(t0, delegated, 3000, 4000)]);
        let p = plan_at(&core, t0, &lan(vec![]));
        // No LAN address; the delegated prefix still gets its unreachable
        // route (RFC 7084 WPD-5: no loop to the ISP and back).
        assert_eq!(
            p.ops,
            vec![add_route(delegated)],
            "{delegated} hint {hint:x}"
        );
        assert!(p.assigned.iter().all(|a| a.lan.is_none()));
        assert_eq!(p.skipped.len(), 1);
        let reason = p.skipped[0].to_string();
        assert!(reason.contains(why), "{reason}");
        assert!(
            reason.contains(delegated.split('/').next().unwrap()),
            "{reason}"
        );
    }
}

#[test]
fn ip6assign_0_keeps_only_the_unreachable_route() {
    let t0 = Instant::now();
    let mut core = Lan6::new(Settings {
        assign: None,
        ..settings()
    });
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    assert_eq!(
        plan_at(&core, t0, &lan(vec![])).ops,
        vec![add_route("2001:db8:100::/56")]
    );
}

#[test]
fn renumbering_deprecates_the_old_prefix_for_at_most_two_hours() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 86_400, 172_800)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let t1 = t0 + secs(600);
    let notes = core.update_lease(t1, &[pd(t1, "2001:db8:200::/56", 3000, 9000)]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("2001:db8:100::/56 left the lease")),
        "{notes:?}"
    );
    let p = plan_at(&core, t1, &aged(k.clone(), 600));
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:200::1", 64, 3000, 9000),
            add_route("2001:db8:200::/56"),
            // RFC 4862 §5.5.3 e: deprecated, valid cut to two hours; its
            // route stays until then.
            set_addr("2001:db8:100::1", 64, 0, 7200),
        ]
    );
    assert!(p.assigned[1].withdrawn);
    // The next edge is the new prefix's preferred lifetime; the old one
    // goes at its (cut) valid lifetime.
    assert_eq!(core.poll_timeout(t1), Some(t1 + secs(3000)));
    let k = applied(k, &p.ops);
    let t2 = t1 + secs(7200);
    assert_eq!(core.expire(t2), vec![net("2001:db8:100::/56")]);
    // Whatever the kernel (which counted it down to 0 too) did not remove
    // itself by then goes.
    let p = plan_at(&core, t2, &aged(k, 7200));
    assert!(p.ops.contains(&Op::RemoveAddress {
        index: LAN,
        addr: v6("2001:db8:100::1"),
        prefix_len: 64
    }));
    assert!(p.ops.contains(&Op::RemoveUnreachableRoute {
        dst: net("2001:db8:100::/56")
    }));
}

#[test]
fn a_withdrawn_prefix_keeps_its_remaining_valid_lifetime_when_below_two_hours() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 1800, 3600)]);
    let t1 = t0 + secs(600);
    core.update_lease(t1, &[]);
    let p = plan_at(&core, t1, &lan(vec![]));
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100::1", 64, 0, 3000),
            add_route("2001:db8:100::/56"),
        ]
    );
    assert_eq!(core.poll_timeout(t1), Some(t0 + secs(3600)));
}

#[test]
fn zero_lifetimes_deprecate_or_remove() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    // Preferred 0: deprecated, still routed.
    let t1 = t0 + secs(100);
    core.update_lease(t1, &[pd(t1, "2001:db8:100::/56", 0, 4000)]);
    let k = aged(k, 100);
    let p = plan_at(&core, t1, &k);
    assert_eq!(p.ops, vec![set_addr("2001:db8:100::1", 64, 0, 4000)]);
    assert!(p.assigned[0].route);
    let k = applied(k, &p.ops);
    // Valid 0: the server took it back. As when it leaves the lease, the
    // LAN prefix stays deprecated for what was left (RFC 7084 L-13 b).
    let notes = core.update_lease(t1, &[pd(t1, "2001:db8:100::/56", 0, 0)]);
    assert!(notes[0].contains("left the lease"), "{notes:?}");
    assert_eq!(plan_at(&core, t1, &k).ops, vec![]);
    assert!(core.tracked()[0].withdrawn);
    // It goes at the end of that valid lifetime (if the kernel, which
    // counted it down to 0 too, has not dropped it already).
    let end = t1 + secs(4000);
    assert_eq!(core.poll_timeout(t1), Some(end));
    assert_eq!(core.expire(end), vec![net("2001:db8:100::/56")]);
    assert_eq!(
        plan_at(&core, end, &aged(k, 4000)).ops,
        vec![
            Op::RemoveAddress {
                index: LAN,
                addr: v6("2001:db8:100::1"),
                prefix_len: 64
            },
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:100::/56")
            },
        ]
    );
    // A prefix first seen with valid 0 is nothing at all.
    let mut core = Lan6::new(settings());
    assert_eq!(
        core.update_lease(t1, &[pd(t1, "2001:db8:300::/56", 0, 0)]),
        Vec::<String>::new()
    );
    assert_eq!(plan_at(&core, t1, &lan(vec![])).ops, vec![]);
    assert_eq!(core.poll_timeout(t1), None);
}

#[test]
fn renumbered_into_a_containing_prefix_the_shared_lan_subnet_gets_the_new_lifetimes() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/60", 3000, 4000)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let t1 = t0 + secs(60);
    core.update_lease(t1, &[pd(t1, "2001:db8:100::/56", 5000, 6000)]);
    let p = plan_at(&core, t1, &k);
    // Same /64 from both: one address, the new prefix's lifetimes; the old
    // /60 route is covered by the new /56 one.
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100::1", 64, 5000, 6000),
            add_route("2001:db8:100::/56"),
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:100::/60")
            },
        ]
    );
    assert_eq!(p.assigned.len(), 1);
}

#[test]
fn renumbered_into_a_containing_prefix_a_different_lan_subnet_stays_deprecated() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100:50::/60", 3000, 4000)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let t1 = t0 + secs(60);
    core.update_lease(t1, &[pd(t1, "2001:db8:100::/56", 5000, 6000)]);
    let p = plan_at(&core, t1, &k);
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100::1", 64, 5000, 6000),
            add_route("2001:db8:100::/56"),
            set_addr("2001:db8:100:50::1", 64, 0, 3940),
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:100:50::/60")
            },
        ]
    );
    assert!(!p.assigned[1].route);
}

#[test]
fn renumbered_into_a_contained_prefix_the_shared_subnet_moves_and_the_old_route_goes() {
    let t0 = Instant::now();
    let mut core = Lan6::new(Settings {
        hint: 0x1,
        ..settings()
    });
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let t1 = t0 + secs(60);
    core.update_lease(t1, &[pd(t1, "2001:db8:100::/60", 5000, 6000)]);
    let p = plan_at(&core, t1, &k);
    // The same /64 (hint 1 is in both): new lifetimes; the old /56 route
    // belonged to the old prefix only, the ISP routes just the /60 now.
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100:1::1", 64, 5000, 6000),
            add_route("2001:db8:100::/60"),
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:100::/56")
            },
        ]
    );
}

#[test]
fn overlapping_prefixes_in_one_lease_the_first_wins_whole() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(
        t0,
        &[
            pd(t0, "2001:db8:100::/56", 3000, 4000),
            pd(t0, "2001:db8:100:80::/57", 3000, 4000),
            pd(t0, "2001:db8:300::/56", 3000, 4000),
        ],
    );
    let p = plan_at(&core, t0, &lan(vec![]));
    assert_eq!(
        p.ops,
        vec![
            set_addr("2001:db8:100::1", 64, 3000, 4000),
            add_route("2001:db8:100::/56"),
            set_addr("2001:db8:300::1", 64, 3000, 4000),
            add_route("2001:db8:300::/56"),
        ]
    );
    assert_eq!(
        p.skipped,
        vec![Skip::Overlaps {
            prefix: net("2001:db8:100:80::/57"),
            with: net("2001:db8:100::/56")
        }]
    );
    assert!(p.skipped[0].to_string().contains("overlaps"));
}

#[test]
fn a_withdrawn_prefix_that_comes_back_is_active_again() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    core.update_lease(t0, &[]);
    assert!(core.tracked()[0].withdrawn);
    let notes = core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    assert!(notes[0].contains("back in the lease"), "{notes:?}");
    assert_eq!(
        plan_at(&core, t0, &lan(vec![])).ops,
        vec![
            set_addr("2001:db8:100::1", 64, 3000, 4000),
            add_route("2001:db8:100::/56"),
        ]
    );
}

#[test]
fn after_a_restart_leftovers_are_kept_while_settling_then_adopted_or_deprecated() {
    let t0 = Instant::now();
    let core = Lan6::new(settings());
    let mut k = lan(vec![
        kaddr("2001:db8:100::1", 64, 2900, 3900),
        kaddr("2001:db8:900::1", 64, 2900, 3900),
    ]);
    k.routes = vec![
        KernelRoute {
            dst: net("2001:db8:100::/56"),
        },
        KernelRoute {
            dst: net("2001:db8:900::/56"),
        },
    ];
    assert_eq!(core.plan(t0, &k, true, "br-lan").ops, vec![]);
    // DHCPv6 answers with the same prefix: adopted. The other left the
    // lease while b4d was away: not removed at once (hosts would never hear
    // that it is going, RFC 7084 L-13, RFC 8978) but deprecated for what the
    // kernel has left of it, at most two hours, as a renumbering while b4d
    // runs; its route stays as long as the address.
    let mut core = core;
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 2900, 3900)]);
    let p = core.plan(t0, &k, false, "br-lan");
    assert_eq!(p.ops, vec![set_addr("2001:db8:900::1", 64, 0, 3900)]);
    let k = applied(k, &p.ops);
    assert_eq!(core.plan(t0, &k, false, "br-lan").ops, vec![]);
    // The kernel drops it when its valid lifetime ends; then the route goes.
    let mut k = aged(k, 3800);
    k.lan
        .as_mut()
        .unwrap()
        .1
        .retain(|a| a.addr != v6("2001:db8:900::1"));
    assert_eq!(
        core.plan(t0 + secs(3800), &k, false, "br-lan").ops,
        vec![Op::RemoveUnreachableRoute {
            dst: net("2001:db8:900::/56")
        }]
    );
    // SIGTERM still removes everything at once.
    let mut k = lan(vec![kaddr("2001:db8:900::1", 64, 2900, 3900)]);
    k.routes = vec![KernelRoute {
        dst: net("2001:db8:900::/56"),
    }];
    assert_eq!(stop(core.settings(), &k).len(), 2);
}

#[test]
fn a_leftover_with_more_than_two_hours_or_none_left_is_capped_or_removed() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let mut k = lan(vec![
        kaddr("2001:db8:100::1", 64, 3000, 4000),
        kaddr("2001:db8:900::1", 64, 86_400, 172_800),
        kaddr("2001:db8:a00::1", 64, 0, 0),
    ]);
    k.routes = [
        "2001:db8:100::/56",
        "2001:db8:900::/56",
        "2001:db8:a00::/56",
    ]
    .map(|n| KernelRoute { dst: net(n) })
    .to_vec();
    assert_eq!(
        plan_at(&core, t0, &k).ops,
        vec![
            set_addr("2001:db8:900::1", 64, 0, 7200),
            // Valid 0 cannot be set (EINVAL); the kernel is dropping it.
            Op::RemoveAddress {
                index: LAN,
                addr: v6("2001:db8:a00::1"),
                prefix_len: 64
            },
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:a00::/56")
            },
        ]
    );
}

#[test]
fn addresses_b4d_did_not_make_are_never_touched() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let mut k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let foreign = [
        kaddr("fe80::1", 64, FOREVER, FOREVER),
        kaddr("fd00::1", 64, FOREVER, FOREVER), // static ULA, permanent
        kaddr("2001:db8:5::2", 64, 100, 200),   // another interface id
    ];
    k.lan.as_mut().unwrap().1.extend(foreign);
    assert_eq!(plan_at(&core, t0, &k).ops, vec![]);
    let stop_ops = stop(core.settings(), &k);
    assert_eq!(
        stop_ops,
        vec![
            Op::RemoveAddress {
                index: LAN,
                addr: v6("2001:db8:100::1"),
                prefix_len: 64
            },
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:100::/56")
            },
        ]
    );
}

/// A bridge without carrier (no LAN port up yet): the kernel would delete
/// an address added now, so it waits for the carrier; the unreachable
/// route for the delegated prefix does not. An address already there gets
/// its new lifetimes all the same.
#[test]
fn the_lan_address_waits_for_the_lan_carrier() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let down = Observed {
        lan_ready: false,
        ..lan(vec![])
    };
    assert_eq!(
        plan_at(&core, t0, &down).ops,
        vec![Op::AddUnreachableRoute {
            dst: net("2001:db8:100::/56")
        }]
    );
    let up = plan_at(&core, t0, &lan(vec![])).ops;
    assert!(
        up.iter().any(|op| matches!(op, Op::SetAddress { .. })),
        "{up:?}"
    );
    let present = Observed {
        lan_ready: false,
        ..lan(vec![kaddr("2001:db8:100::1", 64, 10, 20)])
    };
    let refreshed = plan_at(&core, t0, &present).ops;
    assert!(
        refreshed
            .iter()
            .any(|op| matches!(op, Op::SetAddress { .. })),
        "{refreshed:?}"
    );
}

/// Without the LAN device, no LAN address; the unreachable route for the
/// delegated prefix all the same (RFC 7084 WPD-5: no loop to the ISP).
#[test]
fn without_the_lan_device_only_the_unreachable_route_is_configured() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let stale = Observed {
        routes: vec![KernelRoute {
            dst: net("2001:db8:200::/56"),
        }],
        ..Observed::default()
    };
    let p = plan_at(&core, t0, &stale);
    assert_eq!(
        p.ops,
        vec![
            Op::AddUnreachableRoute {
                dst: net("2001:db8:100::/56")
            },
            Op::RemoveUnreachableRoute {
                dst: net("2001:db8:200::/56")
            }
        ]
    );
    assert_eq!(p.skipped, vec![Skip::NoLanDevice("br-lan".into())]);
    assert_eq!(
        core.plan(t0, &Observed::default(), false, "br-lan")
            .assigned,
        vec![]
    );
}

#[test]
fn the_next_wake_up_is_the_earliest_lifetime_edge() {
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    assert_eq!(core.poll_timeout(t0), None);
    core.update_lease(
        t0,
        &[
            pd(t0, "2001:db8:100::/56", 3000, 4000),
            pd(t0, "2001:db8:200::/56", 2000, 5000),
        ],
    );
    assert_eq!(core.poll_timeout(t0), Some(t0 + secs(2000)));
    assert_eq!(core.poll_timeout(t0 + secs(2000)), Some(t0 + secs(3000)));
    assert_eq!(core.poll_timeout(t0 + secs(3000)), Some(t0 + secs(4000)));
    assert_eq!(core.poll_timeout(t0 + secs(4000)), Some(t0 + secs(5000)));
    assert_eq!(core.poll_timeout(t0 + secs(5000)), None);
    // After the preferred edge the kernel's address is deprecated by the
    // kernel itself; the plan agrees (preferred 0) and changes nothing.
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let t = t0 + secs(2000);
    let mut aged = k.clone();
    for a in &mut aged.lan.as_mut().unwrap().1 {
        a.valid -= 2000;
        a.preferred = a.preferred.saturating_sub(2000);
    }
    assert_eq!(plan_at(&core, t, &aged).ops, vec![]);
    // Infinite lifetimes never wake.
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", u32::MAX, u32::MAX)]);
    assert_eq!(core.poll_timeout(t0), None);
    assert_eq!(
        plan_at(&core, t0, &lan(vec![])).ops,
        vec![
            set_addr("2001:db8:100::1", 64, FOREVER, FOREVER),
            add_route("2001:db8:100::/56"),
        ]
    );
}

#[test]
fn nets_mask_and_contain() {
    assert_eq!(net("2001:db8::ff/56").addr, v6("2001:db8::"));
    assert!(net("2001:db8::/56").contains(&net("2001:db8:0:ff::/64")));
    assert!(!net("2001:db8::/56").contains(&net("2001:db8:0:100::/64")));
    assert!(net("::/0").contains(&net("2001:db8::/32")));
    assert!(net("2001:db8::/64").overlaps(&net("2001:db8::/48")));
    assert!(net("2001:db8::/56").contains_addr(v6("2001:db8::1")));
}

fn arb_prefix() -> impl Strategy<Value = (u128, u8, u32, u32)> {
    // Mostly inside one /40 so that overlaps and renumbering happen.
    (
        prop_oneof![
            any::<u128>(),
            (0u128..1 << 24).prop_map(|n| (0x2001_0db8u128 << 96) | (n << 64))
        ],
        0u8..=128,
        prop_oneof![Just(0u32), Just(u32::MAX), 0u32..10_000],
        prop_oneof![Just(0u32), Just(u32::MAX), 0u32..20_000],
    )
}

proptest! {
    /// Arbitrary lease sequences never make the plan panic, and every
    /// address or route it installs lies inside a prefix that was delegated.
    #[test]
    fn plans_stay_inside_delegated_prefixes(
        leases in proptest::collection::vec(proptest::collection::vec(arb_prefix(), 0..4), 1..5),
        assign in prop_oneof![Just(None), (48u8..=64).prop_map(Some)],
        hint in prop_oneof![Just(0u32), any::<u32>(), 0u32..300],
        iface_id in 1u64..,
        steps in proptest::collection::vec(0u64..10_000, 5),
    ) {
        let settings = Settings { assign, hint, iface_id };
        let mut core = Lan6::new(settings);
        let mut now = Instant::now();
        let mut kernel = lan(vec![]);
        let mut delegated: Vec<Net> = Vec::new();
        for (i, lease) in leases.iter().enumerate() {
            now += secs(steps[i % steps.len()]);
            let prefixes: Vec<DelegatedPrefix> = lease
                .iter()
                .map(|&(bits, len, preferred, valid)| DelegatedPrefix {
                    prefix: Ipv6Addr::from(bits),
                    len,
                    preferred_until: crate::dhcpv6::lease::deadline(now, preferred),
                    valid_until: crate::dhcpv6::lease::deadline(now, valid),
                })
                .collect();
            delegated.extend(prefixes.iter().map(|p| Net::new(p.prefix, p.len)));
            core.update_lease(now, &prefixes);
            core.expire(now);
            let p = core.plan(now, &kernel, false, "br-lan");
            for op in &p.ops {
                match op {
                    Op::SetAddress { addr, prefix_len, preferred, valid, .. } => {
                        prop_assert!(delegated.iter().any(|d| d.contains_addr(*addr)), "{op}");
                        prop_assert!(Some(*prefix_len) == assign);
                        prop_assert!(preferred <= valid || *valid == FOREVER, "{op}");
                        prop_assert_eq!(u128::from(*addr) as u64, iface_id);
                    }
                    Op::AddUnreachableRoute { dst } => {
                        prop_assert!(delegated.contains(dst), "{op}");
                    }
                    Op::RemoveAddress { .. } | Op::RemoveUnreachableRoute { .. } => {}
                }
            }
            kernel = applied(kernel, &p.ops);
            // Applied, the plan is satisfied.
            prop_assert_eq!(core.plan(now, &kernel, false, "br-lan").ops, vec![]);
            if let Some(edge) = core.poll_timeout(now) {
                prop_assert!(edge > now);
            }
        }
    }
}

#[test]
fn a_preferred_lifetime_above_the_valid_one_is_cut_to_it() {
    // RFC 8415 §21.22 makes the client drop such a prefix; should one get
    // through, the kernel still never sees preferred > valid.
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", u32::MAX, 100)]);
    assert_eq!(
        plan_at(&core, t0, &lan(vec![])).ops[0],
        set_addr("2001:db8:100::1", 64, 100, 100)
    );
}

#[test]
fn an_address_from_a_prefix_with_infinite_lifetimes_is_still_ours() {
    // Static or business delegations can be infinite: the LAN address is
    // then permanent in the kernel, and only b4d's unreachable route for the
    // prefix tells it apart from one configured by hand.
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", FOREVER, FOREVER)]);
    let k = applied(lan(vec![]), &plan_at(&core, t0, &lan(vec![])).ops);
    let remove = Op::RemoveAddress {
        index: LAN,
        addr: v6("2001:db8:100::1"),
        prefix_len: 64,
    };
    assert!(stop(core.settings(), &k).contains(&remove));
    // A restart with another prefix does not leave it behind either: it is
    // deprecated, valid two hours (instead of forever).
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:200::/56", 3000, 4000)]);
    assert!(plan_at(&core, t0, &k)
        .ops
        .contains(&set_addr("2001:db8:100::1", 64, 0, 7200)));
    // A permanent one in another subnet of b4d's prefix, with b4d's
    // interface id, is someone else's (an admin's static address).
    let mut with_static = k.clone();
    let addresses = &mut with_static.lan.as_mut().unwrap().1;
    addresses.push(KernelAddress {
        addr: v6("2001:db8:100:1::1"),
        ..addresses[0]
    });
    let ops = stop(core.settings(), &with_static);
    assert!(ops.contains(&remove), "{ops:?}");
    assert!(
        !ops.iter().any(
            |op| matches!(op, Op::RemoveAddress { addr, .. } if *addr == v6("2001:db8:100:1::1"))
        ),
        "{ops:?}"
    );
    // A permanent one outside b4d's routes stays someone else's.
    let mut k = k;
    k.routes.clear();
    assert_eq!(stop(core.settings(), &k), vec![]);
}

#[test]
fn under_a_second_of_valid_lifetime_left_is_expired() {
    // The kernel takes whole seconds and refuses valid 0 (EINVAL), which
    // would stop the rest of the batch.
    let t0 = Instant::now();
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    let almost = t0 + secs(3999) + Duration::from_millis(500);
    let p = plan_at(&core, almost, &lan(vec![]));
    assert_eq!(p.ops, vec![]);
    assert_eq!(p.assigned, vec![]);
    assert_eq!(core.expire(almost), vec![net("2001:db8:100::/56")]);
    // Also when it leaves the lease with that little left.
    let mut core = Lan6::new(settings());
    core.update_lease(t0, &[pd(t0, "2001:db8:100::/56", 3000, 4000)]);
    assert_eq!(core.update_lease(almost, &[]), Vec::<String>::new());
    assert_eq!(core.tracked(), &[]);
    assert_eq!(plan_at(&core, almost, &lan(vec![])).ops, vec![]);
}
