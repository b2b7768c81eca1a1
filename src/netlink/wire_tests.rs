//! Golden bytes in host order (written out for both byte orders where it
//! matters most), decoding of kernel-shaped messages, round trips, and
//! arbitrary bytes. These run under qemu-mips too (scripts/cross.sh --test):
//! big-endian is where byte-order bugs show.

use super::*;
use proptest::prelude::*;

fn ne16(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn ne32(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// nlmsghdr with pid 0.
fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
    [ne32(len), ne16(kind), ne16(flags), ne32(seq), ne32(0)].concat()
}

/// An rtattr with its padding.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = [ne16(4 + value.len() as u16), ne16(kind), value.to_vec()].concat();
    out.resize(align4(out.len()), 0);
    out
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn get_link_golden_bytes_in_both_byte_orders() {
    let bytes = get_link("eth0").finish(7);
    #[rustfmt::skip]
    let little: &[u8] = &[
        44, 0, 0, 0,   18, 0,   5, 0,   7, 0, 0, 0,   0, 0, 0, 0, // nlmsghdr
        0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,     // ifinfomsg
        9, 0,   3, 0,   b'e', b't', b'h', b'0', 0, 0, 0, 0,        // IFLA_IFNAME
    ];
    #[rustfmt::skip]
    let big: &[u8] = &[
        0, 0, 0, 44,   0, 18,   0, 5,   0, 0, 0, 7,   0, 0, 0, 0,
        0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,
        0, 9,   0, 3,   b'e', b't', b'h', b'0', 0, 0, 0, 0,
    ];
    let expected = if cfg!(target_endian = "big") {
        big
    } else {
        little
    };
    assert_eq!(bytes, expected);
}

#[test]
fn set_link_up_and_mtu_golden_bytes() {
    let up = set_link_up(5).finish(1);
    let ifinfo_up = [vec![0, 0, 0, 0], ne32(5), ne32(IFF_UP), ne32(IFF_UP)].concat();
    assert_eq!(up, [header(32, RTM_SETLINK, 5, 1), ifinfo_up].concat());

    let mtu = set_link_mtu(5, 1452).finish(2);
    let ifinfo = [vec![0, 0, 0, 0], ne32(5), ne32(0), ne32(0)].concat();
    let expected = [
        header(40, RTM_SETLINK, 5, 2),
        ifinfo.clone(),
        attr(4, &ne32(1452)),
    ]
    .concat();
    assert_eq!(mtu, expected);

    let alias = set_link_alias(5, "b4d").finish(4);
    let expected = [
        header(40, RTM_SETLINK, 5, 4),
        ifinfo.clone(),
        attr(20, b"b4d\0"),
    ]
    .concat();
    assert_eq!(alias, expected);

    let delete = delete_link(5).finish(3);
    assert_eq!(delete, [header(32, RTM_DELLINK, 5, 3), ifinfo].concat());
}

fn tunnel_spec() -> Ip6TunnelSpec<'static> {
    Ip6TunnelSpec {
        name: "ds-b4",
        link: 2,
        local: v6("2001:db8::b4"),
        remote: v6("2001:db8:1::1"),
        hop_limit: 64,
        encap_limit: None,
        flags: 0x1,
        proto: 4,
    }
}

/// IFLA_LINKINFO for `tunnel_spec()` (with `encap` when given).
fn tunnel_link_info(encap: Option<u8>) -> Vec<u8> {
    let mut data = [
        attr(9, &[4]),                          // IFLA_IPTUN_PROTO ipip
        attr(2, &v6("2001:db8::b4").octets()),  // LOCAL, network order
        attr(3, &v6("2001:db8:1::1").octets()), // REMOTE
        attr(1, &ne32(2)),                      // LINK
        attr(4, &[64]),                         // TTL
        attr(8, &ne32(1)),                      // FLAGS, host order
    ]
    .concat();
    if let Some(limit) = encap {
        data.extend(attr(6, &[limit]));
    }
    let info = [
        attr(1, b"ip6tnl\0"),
        [ne16(4 + data.len() as u16), ne16(2 | 0x8000), data].concat(),
    ]
    .concat();
    [ne16(4 + info.len() as u16), ne16(18 | 0x8000), info].concat()
}

#[test]
fn create_ip6tnl_golden_bytes() {
    let bytes = create_ip6tnl(&tunnel_spec(), 1452).finish(9);
    let body = [
        [vec![0, 0, 0, 0], ne32(0), ne32(IFF_UP), ne32(IFF_UP)].concat(),
        attr(3, b"ds-b4\0"),
        attr(4, &ne32(1452)),
        tunnel_link_info(None),
    ]
    .concat();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let expected = [header(16 + body.len() as u32, RTM_NEWLINK, flags, 9), body].concat();
    assert_eq!(bytes, expected);
}

#[test]
fn change_ip6tnl_has_no_name_and_keeps_encap_limit() {
    let spec = Ip6TunnelSpec {
        encap_limit: Some(4),
        ..tunnel_spec()
    };
    let bytes = change_ip6tnl(6, &spec).finish(10);
    let body = [
        [vec![0, 0, 0, 0], ne32(6), ne32(0), ne32(0)].concat(),
        tunnel_link_info(Some(4)),
    ]
    .concat();
    let expected = [
        header(
            16 + body.len() as u32,
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            10,
        ),
        body,
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn add_ipv6_address_golden_bytes() {
    let bytes = add_address(&NewAddress {
        index: 2,
        addr: "2001:db8::b4".parse().unwrap(),
        prefix_len: 128,
        flags: IFA_F_NOPREFIXROUTE | IFA_F_OPTIMISTIC,
        lifetimes: Some(Lifetimes {
            preferred: 3600,
            valid: 7200,
        }),
    })
    .finish(11);
    let body = [
        vec![AF_INET6, 128, IFA_F_OPTIMISTIC as u8, 0],
        ne32(2),
        attr(1, &v6("2001:db8::b4").octets()),
        attr(8, &ne32(0x204)),
        attr(6, &[ne32(3600), ne32(7200), ne32(0), ne32(0)].concat()),
    ]
    .concat();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    assert_eq!(
        bytes,
        [header(16 + body.len() as u32, RTM_NEWADDR, flags, 11), body].concat()
    );
}

#[test]
fn ipv4_address_has_local_and_broadcast() {
    let bytes = add_address(&NewAddress {
        index: 6,
        addr: "192.0.0.2".parse().unwrap(),
        prefix_len: 29,
        flags: 0,
        lifetimes: None,
    })
    .finish(1);
    let body = [
        vec![AF_INET, 29, 0, 0],
        ne32(6),
        attr(1, &[192, 0, 0, 2]),
        attr(2, &[192, 0, 0, 2]),
        attr(4, &[192, 0, 0, 7]),
    ]
    .concat();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    assert_eq!(
        bytes,
        [header(16 + body.len() as u32, RTM_NEWADDR, flags, 1), body].concat()
    );

    let delete = delete_address(6, "192.0.0.2".parse().unwrap(), 29).finish(2);
    let body = [
        vec![AF_INET, 29, 0, 0],
        ne32(6),
        attr(1, &[192, 0, 0, 2]),
        attr(2, &[192, 0, 0, 2]),
    ]
    .concat();
    assert_eq!(
        delete,
        [
            header(
                16 + body.len() as u32,
                RTM_DELADDR,
                NLM_F_REQUEST | NLM_F_ACK,
                2
            ),
            body
        ]
        .concat()
    );
}

#[test]
fn route_golden_bytes() {
    let default = add_route(&RouteSpec {
        dst: "0.0.0.0".parse().unwrap(),
        dst_len: 0,
        kind: RouteKind::Unicast,
        oif: Some(6),
        gateway: Some("192.0.0.1".parse().unwrap()),
        metric: 10,
        protocol: RTPROT_STATIC,
    })
    .finish(3);
    let body = [
        vec![AF_INET, 0, 0, 0, 254, 4, 0, 1],
        ne32(0),
        attr(4, &ne32(6)),
        attr(5, &[192, 0, 0, 1]),
        attr(6, &ne32(10)),
    ]
    .concat();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    assert_eq!(
        default,
        [header(16 + body.len() as u32, RTM_NEWROUTE, flags, 3), body].concat()
    );

    let unreachable = delete_route(&RouteSpec {
        dst: "2001:db8:5500::".parse().unwrap(),
        dst_len: 56,
        kind: RouteKind::Unreachable,
        oif: None,
        gateway: None,
        metric: 2_147_483_647,
        protocol: RTPROT_STATIC,
    })
    .finish(4);
    let body = [
        vec![AF_INET6, 56, 0, 0, 254, 4, 255, 7],
        ne32(0),
        attr(1, &v6("2001:db8:5500::").octets()),
        attr(6, &ne32(2_147_483_647)),
    ]
    .concat();
    assert_eq!(
        unreachable,
        [
            header(
                16 + body.len() as u32,
                RTM_DELROUTE,
                NLM_F_REQUEST | NLM_F_ACK,
                4
            ),
            body
        ]
        .concat()
    );
}

#[test]
fn dump_requests() {
    assert_eq!(
        dump_addresses(AF_INET6).finish(5),
        [
            header(24, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 5),
            vec![AF_INET6, 0, 0, 0],
            ne32(0)
        ]
        .concat()
    );
    assert_eq!(
        dump_links().finish(4),
        [
            header(32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 4),
            vec![AF_UNSPEC, 0, 0, 0],
            ne32(0),
            ne32(0),
            ne32(0)
        ]
        .concat()
    );
    assert_eq!(
        dump_routes(AF_INET).finish(6),
        [
            header(28, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 6),
            vec![AF_INET, 0, 0, 0, 0, 0, 0, 0],
            ne32(0)
        ]
        .concat()
    );
}

/// A link dump entry shaped like the kernel's for an ip6tnl device: stats
/// and other attributes b4d skips, capability bits in IFLA_IPTUN_FLAGS,
/// attributes of an unknown type.
fn kernel_tunnel_link() -> Vec<u8> {
    let payload = [
        vec![AF_UNSPEC, 0],
        ne16(769), // ARPHRD_TUNNEL6
        ne32(6),
        ne32(IFF_UP | IFF_RUNNING | IFF_LOWER_UP),
        ne32(0),
        attr(3, b"ds-b4\0"),
        attr(4, &ne32(1452)),
        attr(20, b"b4d\0"), // IFLA_IFALIAS
        attr(7, &[0; 36]),  // IFLA_STATS, skipped
        attr(999, &[1, 2, 3]),
        attr(
            1,
            &[
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb4,
            ],
        ),
        {
            let data = [
                attr(1, &ne32(2)),
                attr(2, &v6("2001:db8::b4").octets()),
                attr(3, &v6("2001:db8:1::1").octets()),
                attr(4, &[64]),
                attr(6, &[0]),
                attr(7, &ne32(0)),
                attr(8, &ne32(0x3_0001)),
                attr(9, &[4]),
            ]
            .concat();
            let info = [
                attr(1, b"ip6tnl\0"),
                [ne16(4 + data.len() as u16), ne16(2 | 0x8000), data].concat(),
            ]
            .concat();
            [ne16(4 + info.len() as u16), ne16(18 | 0x8000), info].concat()
        },
    ]
    .concat();
    [
        header(16 + payload.len() as u32, RTM_NEWLINK, NLM_F_MULTI, 1),
        payload,
    ]
    .concat()
}

/// A WAN link of 1540 bytes (baby jumbo) whose IPv6 MTU an RA set to 1500:
/// the IPv6 part of IFLA_AF_SPEC, after an IPv4 part, holds it.
#[test]
fn decodes_the_ipv6_mtu_of_a_link() {
    let nested = |kind: u16, value: Vec<u8>| {
        [ne16(4 + value.len() as u16), ne16(kind | 0x8000), value].concat()
    };
    let mut conf = [0u32; 40];
    (conf[0], conf[1], conf[2]) = (1, 64, 1500);
    let conf: Vec<u8> = conf.iter().flat_map(|v| ne32(*v)).collect();
    let af_spec = [
        nested(2, attr(1, &[0; 16])),
        nested(10, [attr(1, &ne32(0x8000_0000)), attr(2, &conf)].concat()),
    ]
    .concat();
    let link_without_af_spec = [
        vec![AF_UNSPEC, 0],
        ne16(1),
        ne32(2),
        ne32(IFF_UP | IFF_RUNNING | IFF_LOWER_UP),
        ne32(0),
        attr(4, &ne32(1540)),
    ]
    .concat();
    let payload = [link_without_af_spec.clone(), nested(26, af_spec)].concat();
    let link = Link::decode(&payload).unwrap();
    assert_eq!((link.mtu, link.ipv6_mtu), (Some(1540), Some(1500)));
    assert_eq!(crate::tunnel::kernel::wan_device(&link, &[]).mtu, 1500);
    // No IPv6 part (IPv6 off on the device): the link MTU.
    let link = Link::decode(&link_without_af_spec).unwrap();
    assert_eq!(link.ipv6_mtu, None);
    assert_eq!(crate::tunnel::kernel::wan_device(&link, &[]).mtu, 1540);
}

#[test]
fn decodes_a_kernel_tunnel_link() {
    let datagram = kernel_tunnel_link();
    let mut messages = messages(&datagram);
    let (header, payload) = messages.next().unwrap().unwrap();
    assert!(messages.next().is_none());
    assert_eq!(header.kind, RTM_NEWLINK);
    let link = Link::decode(payload).unwrap();
    assert_eq!(link.index, 6);
    assert!(link.is_up_with_carrier());
    assert_eq!(link.name.as_deref(), Some("ds-b4"));
    assert_eq!(link.mtu, Some(1452));
    assert_eq!(link.kind.as_deref(), Some("ip6tnl"));
    assert_eq!(link.alias.as_deref(), Some("b4d"));
    assert_eq!(
        link.ip6tnl,
        Some(Ip6Tunnel {
            local: Some(v6("2001:db8::b4")),
            remote: Some(v6("2001:db8:1::1")),
            link: Some(2),
            hop_limit: Some(64),
            encap_limit: Some(0),
            flags: Some(0x3_0001),
            proto: Some(4),
        })
    );
}

#[test]
fn decodes_addresses_with_and_without_ifa_flags() {
    let with_flags = [
        vec![AF_INET6, 64, 0x80, 0],
        ne32(2),
        attr(1, &v6("2001:db8::1").octets()),
        attr(6, &[ne32(100), ne32(200), ne32(5), ne32(6)].concat()),
        attr(8, &ne32(IFA_F_NOPREFIXROUTE | IFA_F_TENTATIVE)),
    ]
    .concat();
    let address = Address::decode(&with_flags).unwrap();
    assert_eq!(address.flags, 0x240);
    assert_eq!(address.header_flags, 0x80);
    assert_eq!(address.index, 2);
    assert_eq!(address.addr(), Some("2001:db8::1".parse().unwrap()));
    assert_eq!(
        address.lifetimes,
        Some(Lifetimes {
            preferred: 100,
            valid: 200
        })
    );

    // Point-to-point IPv4: IFA_LOCAL is ours, IFA_ADDRESS the peer.
    let p2p = [
        vec![AF_INET, 32, IFA_F_SECONDARY as u8, 0],
        ne32(9),
        attr(1, &[10, 0, 0, 1]),
        attr(2, &[10, 0, 0, 2]),
    ]
    .concat();
    let address = Address::decode(&p2p).unwrap();
    assert_eq!(address.flags, IFA_F_SECONDARY);
    assert_eq!(address.addr(), Some("10.0.0.2".parse().unwrap()));
    assert_eq!(address.lifetimes, None);
}

#[test]
fn decodes_a_route_with_a_large_table() {
    let payload = [
        vec![AF_INET, 0, 0, 0, 252, 4, 0, 1],
        ne32(0),
        attr(15, &ne32(1000)),
        attr(4, &ne32(6)),
        attr(6, &ne32(20)),
        attr(5, &[192, 0, 0, 1]),
    ]
    .concat();
    let route = Route::decode(&payload).unwrap();
    assert_eq!(route.table, 1000);
    assert_eq!(route.oif, Some(6));
    assert_eq!(route.priority, Some(20));
    assert_eq!(route.gateway, Some("192.0.0.1".parse().unwrap()));
    assert_eq!(route.dst, None);
}

#[test]
fn splits_a_datagram_and_reads_error_codes() {
    let ack = [header(36, NLMSG_ERROR, 0, 4), ne32(0), header(16, 0, 0, 4)].concat();
    let busy = [
        header(36, NLMSG_ERROR, 0, 5),
        ne32((-libc::EBUSY) as u32),
        header(16, 0, 0, 5),
    ]
    .concat();
    let done = [header(20, NLMSG_DONE, NLM_F_MULTI, 6), ne32(0)].concat();
    let datagram = [ack, busy, done].concat();
    let parsed: Vec<_> = messages(&datagram).map(Result::unwrap).collect();
    assert_eq!(parsed.len(), 3);
    assert_eq!(error_code(parsed[0].1), Some(0));
    assert_eq!(
        (parsed[1].0.seq, error_code(parsed[1].1)),
        (5, Some(-libc::EBUSY))
    );
    assert_eq!(parsed[2].0.kind, NLMSG_DONE);
}

#[test]
fn malformed_lengths_end_the_walk() {
    let mut datagram = kernel_tunnel_link();
    datagram.truncate(datagram.len() - 1);
    assert_eq!(
        messages(&datagram).next(),
        Some(Err(DecodeError::Truncated))
    );
    let short = header(8, RTM_NEWLINK, 0, 1);
    assert_eq!(messages(&short).next(), Some(Err(DecodeError::BadLength)));
    // An attribute claiming more than is there ends the attributes, the
    // ones before it stay.
    let attrs = [attr(3, b"x\0"), ne16(200), ne16(4)].concat();
    assert_eq!(attributes(&attrs).count(), 1);
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into())),
    ]
}

/// The payload of the one message in `datagram`.
fn payload_of(datagram: &[u8]) -> Vec<u8> {
    let mut all = messages(datagram);
    let (_, payload) = all.next().unwrap().unwrap();
    assert!(all.next().is_none());
    payload.to_vec()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for (_, payload) in messages(&bytes).flatten() {
            let _ = Link::decode(payload);
            let _ = Address::decode(payload);
            let _ = Route::decode(payload);
            let _ = error_code(payload);
        }
        let _ = Link::decode(&bytes);
        let _ = Address::decode(&bytes);
        let _ = Route::decode(&bytes);
    }

    #[test]
    fn addresses_round_trip(
        index in any::<u32>(),
        addr in arb_ip(),
        prefix_len in 0u8..=128,
        flags in any::<u32>(),
        lifetimes in proptest::option::of((any::<u32>(), any::<u32>())),
        seq in any::<u32>(),
    ) {
        let lifetimes = lifetimes.map(|(preferred, valid)| Lifetimes { preferred, valid });
        let datagram = add_address(&NewAddress { index, addr, prefix_len, flags, lifetimes })
            .finish(seq);
        prop_assert_eq!(messages(&datagram).next().unwrap().unwrap().0.seq, seq);
        let decoded = Address::decode(&payload_of(&datagram)).unwrap();
        prop_assert_eq!(decoded.index, index);
        prop_assert_eq!(decoded.prefix_len, prefix_len);
        prop_assert_eq!(decoded.addr(), Some(addr));
        prop_assert_eq!(decoded.flags, flags);
        prop_assert_eq!(decoded.lifetimes, lifetimes);
    }

    #[test]
    fn routes_round_trip(
        dst in arb_ip(),
        dst_len in 0u8..=32,
        unreachable in any::<bool>(),
        oif in proptest::option::of(any::<u32>()),
        gateway in proptest::option::of(arb_ip()),
        metric in any::<u32>(),
    ) {
        let kind = if unreachable { RouteKind::Unreachable } else { RouteKind::Unicast };
        let spec = RouteSpec { dst, dst_len, kind, oif, gateway, metric, protocol: RTPROT_STATIC };
        let decoded = Route::decode(&payload_of(&add_route(&spec).finish(1))).unwrap();
        prop_assert_eq!(decoded.dst_len, dst_len);
        prop_assert_eq!(decoded.dst, (dst_len > 0).then_some(dst));
        prop_assert_eq!(decoded.kind, if unreachable { RTN_UNREACHABLE } else { RTN_UNICAST });
        prop_assert_eq!(decoded.table, u32::from(RT_TABLE_MAIN));
        prop_assert_eq!(decoded.oif, oif);
        prop_assert_eq!(decoded.gateway, gateway);
        prop_assert_eq!(decoded.priority, Some(metric));
    }

    #[test]
    fn tunnels_round_trip(
        name in "[a-z0-9-]{1,15}",
        link in any::<u32>(),
        local in any::<[u8; 16]>(),
        remote in any::<[u8; 16]>(),
        hop_limit in any::<u8>(),
        encap_limit in proptest::option::of(any::<u8>()),
        flags in any::<u32>(),
        mtu in any::<u32>(),
    ) {
        let spec = Ip6TunnelSpec {
            name: &name,
            link,
            local: local.into(),
            remote: remote.into(),
            hop_limit,
            encap_limit,
            flags,
            proto: 4,
        };
        let decoded = Link::decode(&payload_of(&create_ip6tnl(&spec, mtu).finish(1))).unwrap();
        prop_assert_eq!(decoded.name.as_deref(), Some(name.as_str()));
        prop_assert_eq!(decoded.mtu, Some(mtu));
        prop_assert_eq!(decoded.flags, IFF_UP);
        prop_assert_eq!(decoded.ip6tnl, Some(Ip6Tunnel {
            local: Some(local.into()),
            remote: Some(remote.into()),
            link: Some(link),
            hop_limit: Some(hop_limit),
            encap_limit,
            flags: Some(flags),
            proto: Some(4),
        }));
    }
}
