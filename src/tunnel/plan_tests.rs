//! The reconcile decisions, checked without a kernel.

use super::*;
use crate::config::InterfaceName;

const WAN: u32 = 2;
const TUN: u32 = 9;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn ia_na() -> Ipv6Addr {
    v6("2001:db8:1::100")
}

fn aftr() -> Ipv6Addr {
    v6("2001:db8:af::1")
}

fn config() -> Tunnel {
    Tunnel::default()
}

fn kernel_addr(addr: Ipv6Addr, prefix_len: u8) -> KernelAddress {
    KernelAddress {
        addr,
        prefix_len,
        tentative: false,
        dad_failed: false,
        deprecated: false,
        temporary: false,
        no_prefix_route: prefix_len == 128,
        valid: 4000,
        preferred: 3000,
    }
}

fn leased(addr: Ipv6Addr) -> WanAddress {
    WanAddress {
        addr,
        preferred: 3000,
        valid: 4000,
    }
}

fn known() -> Knowledge {
    Knowledge {
        leased: vec![leased(ia_na())],
        delegated: vec![Prefix {
            prefix: v6("2001:db8:100::"),
            len: 56,
            preferred: 3000,
            valid: 4000,
        }],
        aftr: Ok(aftr()),
        settling: false,
        install_wan_addresses: true,
    }
}

fn wan() -> WanDevice {
    WanDevice {
        index: WAN,
        up: true,
        mtu: 1500,
        addresses: vec![kernel_addr(v6("fe80::1"), 64), kernel_addr(ia_na(), 128)],
        ipv4: vec![],
    }
}

/// The tunnel exactly as `spec` wants it, as the kernel would report it.
fn built(spec: &TunnelSpec) -> TunnelDevice {
    TunnelDevice {
        index: TUN,
        kind: "ip6tnl".into(),
        proto: Some(PROTO_IPIP),
        local: Some(spec.local),
        remote: Some(spec.remote),
        link: Some(spec.link),
        encap_limit: Some(4),
        hop_limit: Some(spec.hop_limit),
        flags: spec.flags,
        mtu: spec.mtu,
        up: true,
        ipv4: vec![(spec.ipv4, B4_PREFIX_LEN)],
        default_routes: spec.default_route_metric.into_iter().collect(),
    }
}

fn observed(tunnel: Option<TunnelDevice>) -> Observed {
    Observed {
        wan: Some(wan()),
        tunnel,
        mss_clamp: Some(MssClamp {
            tunnel: "ds-b4".into(),
            mss: 1420,
        }),
    }
}

/// The clamp for the standard tunnel (ds-b4, MTU 1460).
fn load_clamp_1420() -> Op {
    Op::LoadMssClamp(MssClamp {
        tunnel: "ds-b4".into(),
        mss: 1420,
    })
}

fn run(config: &Tunnel, known: &Knowledge, observed: &Observed) -> Plan {
    plan(config, "wan", known, observed)
}

/// The desired spec in the standard situation.
fn spec() -> TunnelSpec {
    run(&config(), &known(), &observed(None)).verdict.unwrap()
}

#[test]
fn fresh_start_creates_the_tunnel_as_rfc_6333_wants_it() {
    let p = run(
        &config(),
        &known(),
        &Observed {
            mss_clamp: None,
            ..observed(None)
        },
    );
    let spec = p.verdict.clone().unwrap();
    // The clamp first: no SYN crosses the new tunnel unclamped.
    assert_eq!(
        p.ops,
        vec![load_clamp_1420(), Op::CreateTunnel(spec.clone())]
    );
    assert_eq!(spec.name, "ds-b4");
    assert_eq!(spec.local, ia_na());
    assert_eq!(spec.remote, aftr());
    assert_eq!(spec.link, WAN);
    assert_eq!(spec.mtu, 1460, "WAN 1500 - 40");
    assert_eq!(spec.encap_limit, None);
    assert_eq!(
        spec.flags,
        IP6_TNL_F_IGN_ENCAP_LIMIT | IP6_TNL_F_USE_ORIG_TCLASS
    );
    assert_eq!(spec.hop_limit, 64);
    assert_eq!(spec.ipv4, Ipv4Addr::new(192, 0, 0, 2));
    assert_eq!(spec.peer, Ipv4Addr::new(192, 0, 0, 1));
    assert_eq!(spec.default_route_metric, Some(0));
}

#[test]
fn a_new_bare_tunnel_gets_up_address_route_and_mss_clamp() {
    let spec = spec();
    let bare = TunnelDevice {
        up: false,
        ipv4: vec![],
        default_routes: vec![],
        ..built(&spec)
    };
    let p = run(
        &config(),
        &known(),
        &Observed {
            mss_clamp: None,
            ..observed(Some(bare))
        },
    );
    assert_eq!(
        p.ops,
        vec![
            load_clamp_1420(),
            Op::SetTunnelUp { index: TUN },
            Op::AddTunnelAddress {
                index: TUN,
                addr: Ipv4Addr::new(192, 0, 0, 2),
                prefix_len: 29,
            },
            Op::AddDefaultRoute {
                index: TUN,
                gateway: Ipv4Addr::new(192, 0, 0, 1),
                metric: 0
            },
        ]
    );
}

#[test]
fn a_complete_tunnel_needs_nothing() {
    let p = run(&config(), &known(), &observed(Some(built(&spec()))));
    assert_eq!(p.ops, vec![]);
    assert!(p.verdict.is_ok());
}

#[test]
fn after_kill_9_the_tunnel_is_adopted_and_only_nftables_reloaded() {
    let o = Observed {
        mss_clamp: None,
        ..observed(Some(built(&spec())))
    };
    assert_eq!(run(&config(), &known(), &o).ops, vec![load_clamp_1420()]);
}

#[test]
fn a_leftover_tunnel_with_stale_endpoints_is_updated_in_place() {
    let old = TunnelDevice {
        local: Some(v6("2001:db8:1::99")),
        remote: Some(v6("2001:db8:af::99")),
        ..built(&spec())
    };
    let p = run(&config(), &known(), &observed(Some(old)));
    assert_eq!(
        p.ops,
        vec![Op::UpdateTunnel {
            index: TUN,
            spec: spec()
        }]
    );
}

#[test]
fn aftr_change_updates_the_remote() {
    let mut k = known();
    k.aftr = Ok(v6("2001:db8:af::2"));
    let p = run(&config(), &k, &observed(Some(built(&spec()))));
    match &p.ops[..] {
        [Op::UpdateTunnel { index: TUN, spec }] => assert_eq!(spec.remote, v6("2001:db8:af::2")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wan_address_change_installs_the_new_one_removes_the_old_and_moves_the_local_end() {
    let mut k = known();
    let new = v6("2001:db8:1::200");
    k.leased = vec![leased(new)];
    // Step 1: the new IA_NA is not on the WAN yet.
    let p = run(&config(), &k, &observed(Some(built(&spec()))));
    assert!(p.ops.contains(&Op::SetWanAddress {
        wan: WAN,
        address: leased(new)
    }));
    assert!(p.ops.contains(&Op::RemoveWanAddress {
        wan: WAN,
        addr: ia_na(),
        prefix_len: 128
    }));
    // The tunnel moves in the same round, after the address is installed
    // (make before break: no teardown).
    let set = p
        .ops
        .iter()
        .position(|op| matches!(op, Op::SetWanAddress { .. }));
    let moved = p
        .ops
        .iter()
        .position(|op| matches!(op, Op::UpdateTunnel { spec, .. } if spec.local == new));
    assert!(set < moved && moved.is_some(), "{:?}", p.ops);
    assert!(!p.ops.contains(&Op::DeleteTunnel { index: TUN }));
    // Step 2: installed.
    let mut o = observed(Some(built(&spec())));
    o.wan.as_mut().unwrap().addresses = vec![kernel_addr(new, 128)];
    let p = run(&config(), &k, &o);
    match &p.ops[..] {
        [Op::UpdateTunnel { spec, .. }] => assert_eq!(spec.local, new),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_ia_na_that_failed_dad_is_not_used() {
    let mut o = observed(None);
    o.wan.as_mut().unwrap().addresses[1].dad_failed = true;
    let why = run(&config(), &known(), &o)
        .verdict
        .unwrap_err()
        .to_string();
    assert!(why.contains("IA_NA address not on the WAN yet"), "{why}");
}

#[test]
fn dad_failed_address_is_not_used() {
    let mut o = Observed {
        mss_clamp: None,
        ..observed(None)
    };
    o.wan.as_mut().unwrap().addresses[1].dad_failed = true;
    let p = run(&config(), &known(), &o);
    assert!(matches!(p.verdict, Err(Down::NoLocalAddress(_))));
    assert_eq!(
        p.ops,
        vec![load_clamp_1420()],
        "no tunnel; only the clamp, which needs no local address"
    );
}

/// The lease's preferred lifetime ran out (the server missed Renew and
/// Rebind so far), the address is still valid: the kernel marks it
/// deprecated, and the tunnel stays on it: nothing better exists.
#[test]
fn a_deprecated_local_address_keeps_the_tunnel_when_nothing_better_exists() {
    let mut k = known();
    k.leased[0].preferred = 0;
    let mut o = observed(Some(built(&spec())));
    let wan = o.wan.as_mut().unwrap();
    wan.addresses[1].deprecated = true;
    wan.addresses[1].preferred = 0;
    let p = run(&config(), &k, &o);
    assert_eq!(p.verdict.unwrap().local, ia_na());
    assert!(
        !p.ops.contains(&Op::DeleteTunnel { index: TUN }),
        "{:?}",
        p.ops
    );
    // A preferred one, once there, is taken instead.
    let fresh = v6("2001:db8:1::200");
    k.leased.push(leased(fresh));
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .push(kernel_addr(fresh, 128));
    assert_eq!(run(&config(), &k, &o).verdict.unwrap().local, fresh);
}

/// An ISP delegating a prefix only renumbers: its Reply keeps the old
/// prefix with preferred lifetime 0 beside the new one. The tunnel moves
/// to the new prefix's address instead of going down with the old one.
#[test]
fn a_renumbered_prefix_moves_the_tunnel_to_the_new_one() {
    let c = Tunnel {
        source: TunnelSource::Prefix,
        ..config()
    };
    let old_b4 = v6("2001:db8:100:ff::b4");
    let new_b4 = v6("2001:db8:200:ff::b4");
    let mut k = known();
    k.delegated[0].preferred = 0;
    k.delegated.push(Prefix {
        prefix: v6("2001:db8:200::"),
        len: 56,
        preferred: 3000,
        valid: 4000,
    });
    let before = run(&c, &known(), &observed(None)).verdict.unwrap();
    assert_eq!(before.local, old_b4);
    let mut o = observed(Some(built(&before)));
    let mut old = kernel_addr(old_b4, 128);
    (old.deprecated, old.preferred) = (true, 0);
    o.wan.as_mut().unwrap().addresses.push(old);
    let p = run(&c, &k, &o);
    assert!(
        p.ops.contains(&Op::SetWanAddress {
            wan: WAN,
            address: WanAddress {
                addr: new_b4,
                preferred: 3000,
                valid: 4000
            }
        }),
        "{:?}",
        p.ops
    );
    assert!(
        p.ops
            .iter()
            .any(|op| matches!(op, Op::UpdateTunnel { spec, .. } if spec.local == new_b4)),
        "{:?}",
        p.ops
    );
    assert!(!p.ops.contains(&Op::DeleteTunnel { index: TUN }));
}

#[test]
fn tunnel_is_built_while_dad_runs() {
    let mut o = observed(None);
    o.wan.as_mut().unwrap().addresses[1].tentative = true;
    let p = run(&config(), &known(), &o);
    assert_eq!(p.verdict.unwrap().local, ia_na());
}

#[test]
fn renew_refreshes_lifetimes_but_drift_does_not() {
    let mut o = observed(Some(built(&spec())));
    // 7 s passed since the kernel was told: drift.
    o.wan.as_mut().unwrap().addresses[1].valid = 3993;
    o.wan.as_mut().unwrap().addresses[1].preferred = 2993;
    assert_eq!(run(&config(), &known(), &o).ops, vec![]);
    // A renew gave fresh lifetimes.
    o.wan.as_mut().unwrap().addresses[1].valid = 1000;
    assert_eq!(
        run(&config(), &known(), &o).ops,
        vec![Op::SetWanAddress {
            wan: WAN,
            address: leased(ia_na())
        }]
    );
}

#[test]
fn the_wan_address_is_put_back_only_once_the_link_is_up() {
    // ifdown took the leased address with it; while the link is down it is
    // not added again (Linux would run its DAD again, not optimistically,
    // when the link comes up), and it is added as soon as the link is up.
    let mut o = observed(Some(built(&spec())));
    let wan = o.wan.as_mut().unwrap();
    wan.addresses.retain(|a| a.addr != ia_na());
    wan.up = false;
    let p = run(&config(), &known(), &o);
    assert!(
        !p.ops
            .iter()
            .any(|op| matches!(op, Op::SetWanAddress { .. })),
        "{:?}",
        p.ops
    );
    o.wan.as_mut().unwrap().up = true;
    let p = run(&config(), &known(), &o);
    assert!(p.ops.contains(&Op::SetWanAddress {
        wan: WAN,
        address: leased(ia_na())
    }));
}

#[test]
fn foreign_wan_addresses_are_never_removed() {
    let mut o = observed(Some(built(&spec())));
    let addresses = &mut o.wan.as_mut().unwrap().addresses;
    addresses.push(kernel_addr(v6("2001:db8:5::1"), 64)); // SLAAC
    addresses.push(KernelAddress {
        no_prefix_route: false,
        ..kernel_addr(v6("2001:db8:6::1"), 128)
    }); // static
    assert_eq!(run(&config(), &known(), &o).ops, vec![]);
}

#[test]
fn aftr_withdrawn_tears_down_the_tunnel_and_keeps_the_clamp_for_its_return() {
    let mut k = known();
    k.aftr = Err("no AFTR name (DHCPv6 option 64 absent, none configured)".into());
    let p = run(&config(), &k, &observed(Some(built(&spec()))));
    assert_eq!(p.ops, vec![Op::DeleteTunnel { index: TUN }]);
    assert!(p.verdict.unwrap_err().to_string().contains("option 64"));
}

#[test]
fn lease_lost_removes_the_address_and_the_tunnel() {
    let k = Knowledge {
        leased: vec![],
        delegated: vec![],
        ..known()
    };
    let p = run(&config(), &k, &observed(Some(built(&spec()))));
    assert_eq!(
        p.ops,
        vec![
            Op::RemoveWanAddress {
                wan: WAN,
                addr: ia_na(),
                prefix_len: 128
            },
            Op::DeleteTunnel { index: TUN },
        ]
    );
}

#[test]
fn native_ipv4_makes_the_b4_stand_down_unless_configured_otherwise() {
    let mut o = observed(Some(built(&spec())));
    o.wan.as_mut().unwrap().ipv4 = vec![Ipv4Addr::new(198, 51, 100, 7)];
    let p = run(&config(), &known(), &o);
    assert_eq!(
        p.verdict,
        Err(Down::NativeIpv4(Ipv4Addr::new(198, 51, 100, 7)))
    );
    assert_eq!(p.ops, vec![Op::DeleteTunnel { index: TUN }]);
    let keep = Tunnel {
        disable_on_native_ipv4: false,
        ..config()
    };
    assert_eq!(run(&keep, &known(), &o).ops, vec![]);
}

#[test]
fn wan_down_or_missing_tears_down() {
    let mut o = observed(Some(built(&spec())));
    o.wan.as_mut().unwrap().up = false;
    let p = run(&config(), &known(), &o);
    assert_eq!(p.verdict, Err(Down::WanDown("wan".into())));
    assert!(p.ops.contains(&Op::DeleteTunnel { index: TUN }));
    let o = Observed {
        wan: None,
        ..observed(Some(built(&spec())))
    };
    let p = run(&config(), &known(), &o);
    assert_eq!(p.verdict, Err(Down::WanMissing("wan".into())));
    assert!(p.ops.contains(&Op::DeleteTunnel { index: TUN }));
}

#[test]
fn a_device_with_our_name_that_is_not_ip6tnl_is_left_alone() {
    let other = TunnelDevice {
        kind: "dummy".into(),
        ..built(&spec())
    };
    let p = run(&config(), &known(), &observed(Some(other)));
    assert!(p.ops.is_empty());
    let why = p.verdict.unwrap_err().to_string();
    assert!(why.contains("ds-b4") && why.contains("dummy"), "{why}");
}

#[test]
fn disabled_removes_what_exists() {
    let off = Tunnel {
        enabled: false,
        ..config()
    };
    let p = run(&off, &known(), &observed(Some(built(&spec()))));
    assert_eq!(p.verdict, Err(Down::Disabled));
    assert_eq!(
        p.ops,
        vec![Op::RemoveMssClamp, Op::DeleteTunnel { index: TUN }]
    );
}

#[test]
fn mtu_rules() {
    let with_wan_mtu = |config: &Tunnel, mtu| {
        let mut o = observed(None);
        o.wan.as_mut().unwrap().mtu = mtu;
        run(config, &known(), &o).verdict.unwrap().mtu
    };
    assert_eq!(with_wan_mtu(&config(), 1500), 1460);
    assert_eq!(
        with_wan_mtu(&config(), 1540),
        1500,
        "baby-jumbo WAN gives a full 1500"
    );
    assert_eq!(
        with_wan_mtu(&config(), 1280),
        1240,
        "a minimum-MTU WAN: every tunnelled packet fits it"
    );
    assert_eq!(with_wan_mtu(&config(), 1300), 1260);
    assert_eq!(with_wan_mtu(&config(), 0), 1240, "unknown: the minimum");
    let limited = Tunnel {
        encaplimit: EncapLimit::Limit(4),
        ..config()
    };
    assert_eq!(
        with_wan_mtu(&limited, 1500),
        1452,
        "the encapsulation limit option costs 8"
    );
    let fixed = Tunnel {
        mtu: Some(1400),
        ..config()
    };
    assert_eq!(with_wan_mtu(&fixed, 1500), 1400);
}

#[test]
fn wan_mtu_change_is_followed() {
    let mut o = observed(Some(built(&spec())));
    o.wan.as_mut().unwrap().mtu = 1540;
    assert_eq!(
        run(&config(), &known(), &o).ops,
        vec![
            Op::LoadMssClamp(MssClamp {
                tunnel: "ds-b4".into(),
                mss: 1460
            }),
            Op::SetTunnelMtu {
                index: TUN,
                mtu: 1500
            },
        ]
    );
}

#[test]
fn encap_limit_when_configured() {
    let limited = Tunnel {
        encaplimit: EncapLimit::Limit(4),
        ..config()
    };
    let s = run(&limited, &known(), &observed(None)).verdict.unwrap();
    assert_eq!(s.encap_limit, Some(4));
    assert_eq!(s.flags, IP6_TNL_F_USE_ORIG_TCLASS);
}

#[test]
fn default_route_metric_and_switch() {
    let t = built(&spec());
    let metric_10 = Tunnel {
        metric: 10,
        ..config()
    };
    assert_eq!(
        run(&metric_10, &known(), &observed(Some(t.clone()))).ops,
        vec![
            Op::RemoveDefaultRoute {
                index: TUN,
                metric: 0
            },
            Op::AddDefaultRoute {
                index: TUN,
                gateway: Ipv4Addr::new(192, 0, 0, 1),
                metric: 10
            }
        ]
    );
    let no_route = Tunnel {
        default_route: false,
        ..config()
    };
    assert_eq!(
        run(&no_route, &known(), &observed(Some(t))).ops,
        vec![Op::RemoveDefaultRoute {
            index: TUN,
            metric: 0
        }]
    );
}

#[test]
fn foreign_ipv4_addresses_on_the_tunnel_are_replaced() {
    let mut t = built(&spec());
    t.ipv4 = vec![(Ipv4Addr::new(192, 0, 0, 3), 29)];
    let p = run(&config(), &known(), &observed(Some(t)));
    assert_eq!(
        p.ops[0],
        Op::RemoveTunnelAddress {
            index: TUN,
            addr: Ipv4Addr::new(192, 0, 0, 3),
            prefix_len: 29
        }
    );
    assert!(matches!(p.ops[1], Op::AddTunnelAddress { .. }));
}

#[test]
fn mss_clamp_off_removes_the_table() {
    let off = Tunnel {
        mss_clamp: false,
        ..config()
    };
    let s = run(&off, &known(), &observed(None)).verdict.unwrap();
    assert_eq!(
        run(&off, &known(), &observed(Some(built(&s)))).ops,
        vec![Op::RemoveMssClamp]
    );
}

#[test]
fn renamed_tunnel_reloads_the_clamp_for_the_new_name() {
    let renamed = Tunnel {
        name: "dslite0".parse::<InterfaceName>().unwrap(),
        ..config()
    };
    let s = run(&renamed, &known(), &observed(None)).verdict.unwrap();
    assert_eq!(
        run(&renamed, &known(), &observed(Some(built(&s)))).ops,
        vec![Op::LoadMssClamp(MssClamp {
            tunnel: "dslite0".into(),
            mss: 1420
        })]
    );
}

#[test]
fn source_slaac() {
    let slaac = v6("2001:db8:5::5");
    let mut o = observed(None);
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .push(kernel_addr(slaac, 64));
    o.wan.as_mut().unwrap().addresses.push(KernelAddress {
        temporary: true,
        ..kernel_addr(v6("2001:db8:5::77"), 64)
    });
    let c = Tunnel {
        source: TunnelSource::Slaac,
        ..config()
    };
    assert_eq!(run(&c, &known(), &o).verdict.unwrap().local, slaac);
    // Auto without a lease falls back to SLAAC.
    let k = Knowledge {
        leased: vec![],
        ..known()
    };
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .retain(|a| a.prefix_len != 128);
    assert_eq!(run(&config(), &k, &o).verdict.unwrap().local, slaac);
}

#[test]
fn source_prefix_installs_prefix_b4_and_uses_it() {
    let c = Tunnel {
        source: TunnelSource::Prefix,
        ..config()
    };
    let want = v6("2001:db8:100:ff::b4");
    let p = run(&c, &known(), &observed(None));
    assert!(p.ops.contains(&Op::SetWanAddress {
        wan: WAN,
        address: WanAddress {
            addr: want,
            preferred: 3000,
            valid: 4000
        }
    }));
    assert_eq!(
        p.verdict.unwrap().local,
        want,
        "used in the round that installs it"
    );
    let mut o = observed(None);
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .push(kernel_addr(want, 128));
    assert_eq!(run(&c, &known(), &o).verdict.unwrap().local, want);
}

#[test]
fn auto_falls_back_to_the_prefix_without_ia_na_or_slaac() {
    let k = Knowledge {
        leased: vec![],
        ..known()
    };
    let mut o = observed(None);
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .retain(|a| a.prefix_len != 128);
    let p = run(&config(), &k, &o);
    assert!(p.ops.iter().any(|op| matches!(op, Op::SetWanAddress { address, .. } if address.addr == v6("2001:db8:100:ff::b4"))));
    let k = Knowledge {
        leased: vec![],
        delegated: vec![],
        ..known()
    };
    let why = run(&config(), &k, &o).verdict.unwrap_err().to_string();
    assert!(
        why.contains("no IA_NA address, no SLAAC address and no delegated prefix"),
        "{why}"
    );
}

#[test]
fn prefix_address_masks_host_bits() {
    let p = Prefix {
        prefix: v6("2001:db8:100:ff::1"),
        len: 56,
        preferred: 0,
        valid: 0,
    };
    assert_eq!(prefix_address(&p), v6("2001:db8:100:ff::b4"));
    // The last /64 of a /48, a /64 itself.
    let p48 = Prefix {
        prefix: v6("2001:db8:100::"),
        len: 48,
        ..p
    };
    assert_eq!(prefix_address(&p48), v6("2001:db8:100:ffff::b4"));
    let p64 = Prefix {
        prefix: v6("2001:db8:100:7::5"),
        len: 64,
        ..p
    };
    assert_eq!(prefix_address(&p64), v6("2001:db8:100:7::b4"));
}

#[test]
fn stop_removes_everything_b4d_made_and_nothing_else() {
    let mut o = observed(Some(built(&spec())));
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .push(kernel_addr(v6("2001:db8:5::1"), 64));
    assert_eq!(
        stop(&o, true),
        vec![
            Op::DeleteTunnel { index: TUN },
            Op::RemoveMssClamp,
            Op::RemoveWanAddress {
                wan: WAN,
                addr: ia_na(),
                prefix_len: 128
            }
        ]
    );
}

#[test]
fn restart_keeps_the_old_tunnel_and_addresses_until_dhcpv6_and_dns_answer() {
    let settling = Knowledge {
        leased: vec![],
        delegated: vec![],
        aftr: Err("AFTR not resolved yet".into()),
        settling: true,
        install_wan_addresses: true,
    };
    let o = observed(Some(built(&spec())));
    let p = run(&config(), &settling, &o);
    assert_eq!(p.ops, vec![]);
    assert_eq!(p.verdict, Err(Down::Settling));
    // Settled with the same answers: adopted as is.
    assert_eq!(run(&config(), &known(), &o).ops, vec![]);
    // Settled without a lease: now it goes.
    let settled = Knowledge {
        settling: false,
        ..settling
    };
    assert!(run(&config(), &settled, &o)
        .ops
        .contains(&Op::DeleteTunnel { index: TUN }));
}

/// netifd mode: netifd owns the WAN's addresses.
fn netifd_known() -> Knowledge {
    Knowledge {
        install_wan_addresses: false,
        ..known()
    }
}

/// No tunnel yet, and the WAN without the leased address (netifd has not
/// put it there).
fn observed_without_ia_na() -> Observed {
    let mut o = observed(None);
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .retain(|a| a.addr != ia_na());
    o
}

#[test]
fn netifd_mode_waits_for_the_leased_address_instead_of_installing_it() {
    let mut o = observed_without_ia_na();
    let p = run(&config(), &netifd_known(), &o);
    assert_eq!(
        p.ops,
        vec![],
        "nothing installed, no tunnel without a local end"
    );
    assert_eq!(
        p.verdict,
        Err(Down::NoLocalAddress(
            "IA_NA address not on the WAN yet".into()
        ))
    );
    // netifd put it there (with its own flags: a /64 with prefix route).
    o.wan.as_mut().unwrap().addresses.push(KernelAddress {
        no_prefix_route: false,
        ..kernel_addr(ia_na(), 64)
    });
    let p = run(&config(), &netifd_known(), &o);
    assert_eq!(p.verdict.clone().unwrap().local, ia_na());
    assert!(p
        .ops
        .iter()
        .all(|op| !matches!(op, Op::SetWanAddress { .. } | Op::RemoveWanAddress { .. })));
}

/// netifd mode with an ISP that delegates only a prefix (no IA_NA, no
/// SLAAC): netifd puts no address of it on the WAN, so b4d installs its
/// prefix address itself (only that one), builds the tunnel from it, and
/// takes it away at stop.
#[test]
fn netifd_mode_installs_the_prefix_address_when_there_is_no_ia_na() {
    let mut o = observed_without_ia_na();
    let prefix_only = Knowledge {
        leased: vec![],
        ..netifd_known()
    };
    let b4 = prefix_address(&prefix_only.delegated[0]);
    assert_eq!(b4, v6("2001:db8:100:ff::b4"));
    let p = run(&config(), &prefix_only, &o);
    let installed: Vec<Ipv6Addr> = p
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::SetWanAddress { address, .. } => Some(address.addr),
            Op::RemoveWanAddress { .. } => panic!("nothing removed: {op:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(installed, vec![b4]);
    assert_eq!(p.verdict.unwrap().local, b4);

    // It is on the WAN now; the prefix moves: the old one goes.
    o.wan.as_mut().unwrap().addresses.push(kernel_addr(b4, 128));
    let moved = Knowledge {
        delegated: vec![Prefix {
            prefix: v6("2001:db8:200::"),
            ..prefix_only.delegated[0]
        }],
        ..prefix_only.clone()
    };
    let ops = run(&config(), &moved, &o).ops;
    assert!(ops.contains(&Op::RemoveWanAddress {
        wan: WAN,
        addr: b4,
        prefix_len: 128
    }));
    // At stop it goes with the tunnel.
    assert!(stop(&o, false).contains(&Op::RemoveWanAddress {
        wan: WAN,
        addr: b4,
        prefix_len: 128
    }));
}

/// netifd mode, the tunnel on the prefix address, and the ISP adds an
/// IA_NA: the prefix address and the tunnel stay until netifd has put the
/// IA_NA on the WAN (make before break), then the tunnel moves to it and the
/// prefix address goes. With the IA_NA in the first lease no prefix address
/// is made at all.
#[test]
fn netifd_mode_keeps_the_prefix_address_until_the_ia_na_is_on_the_wan() {
    let mut o = observed_without_ia_na();
    let b4 = prefix_address(&known().delegated[0]);
    o.wan.as_mut().unwrap().addresses.push(kernel_addr(b4, 128));
    let p = run(&config(), &netifd_known(), &o);
    assert_eq!(p.verdict.unwrap().local, b4, "still on the prefix address");
    assert!(
        p.ops
            .iter()
            .all(|op| !matches!(op, Op::RemoveWanAddress { .. })),
        "{:?}",
        p.ops
    );
    // netifd installs the IA_NA: the tunnel moves, the prefix address goes.
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .push(kernel_addr(ia_na(), 128));
    let p = run(&config(), &netifd_known(), &o);
    assert_eq!(p.verdict.unwrap().local, ia_na());
    assert!(p.ops.contains(&Op::RemoveWanAddress {
        wan: WAN,
        addr: b4,
        prefix_len: 128
    }));
    // A start with an IA_NA: nothing made from the prefix while netifd has
    // not installed it.
    let p = run(&config(), &netifd_known(), &observed_without_ia_na());
    assert_eq!(p.ops, vec![]);
}

#[test]
fn netifd_mode_never_refreshes_or_removes_wan_addresses() {
    let mut o = observed(Some(built(&spec())));
    // Stale lifetimes and a /128 that looks like one of b4d's, not leased.
    o.wan.as_mut().unwrap().addresses[1].valid = 10;
    o.wan
        .as_mut()
        .unwrap()
        .addresses
        .push(kernel_addr(v6("2001:db8:1::200"), 128));
    assert_eq!(run(&config(), &netifd_known(), &o).ops, vec![]);
    // The same kernel in standalone mode: refresh and removal.
    assert_eq!(run(&config(), &known(), &o).ops.len(), 2);
    // At stop only the tunnel goes.
    assert_eq!(
        stop(&o, false),
        vec![Op::DeleteTunnel { index: TUN }, Op::RemoveMssClamp]
    );
}
