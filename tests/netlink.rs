//! b4d's own rtnetlink (src/netlink/) against the host kernel, inside a
//! namespace the test creates: every request of the API, read back both
//! with `ip` and with b4d's own dumps, the kernel's errors as errno, and a
//! notification arriving. ip6tnl itself needs the kernel lab (tests/tunnel.rs);
//! a veth pair stands in for the devices here.

mod support;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsRawFd;

use b4d::netlink::wire::{
    AF_INET, AF_INET6, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFF_UP, RTN_UNREACHABLE, RTPROT_STATIC,
    RT_TABLE_MAIN,
};
use b4d::netlink::{
    Lifetimes, Netlink, NewAddress, RouteKind, RouteSpec, Subscription, RTNLGRP_IPV6_IFADDR,
    RTNLGRP_LINK,
};
use support::*;

/// Runs `body` on a thread that has entered `ns` (setns applies to the
/// calling thread only), on a tokio runtime of its own there.
fn in_namespace<F, Fut>(ns: &Netns, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a valid namespace descriptor; affects this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(body());
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn veth(ns: &Netns) -> u32 {
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.link_up("v1");
    let index = ns.exec_stdout("cat", &["/sys/class/net/v0/ifindex"]);
    index.trim().parse().unwrap()
}

/// The unreachable /56 both tests add and remove (RFC 7084 WPD-5).
fn unreachable_56() -> RouteSpec {
    RouteSpec {
        dst: "2001:db8:5500::".parse().unwrap(),
        dst_len: 56,
        kind: RouteKind::Unreachable,
        oif: None,
        gateway: None,
        metric: 2_147_483_647,
        protocol: RTPROT_STATIC,
    }
}

#[test]
fn links_addresses_and_routes_through_our_own_netlink() {
    if !require_root_and_tools() {
        return;
    }
    let ns = Netns::new("netlink");
    let index = veth(&ns);
    in_namespace(&ns, move || async move {
        let netlink = Netlink::open().unwrap();
        let link = netlink.link("v0").await.unwrap().expect("v0 exists");
        assert_eq!(link.index, index);
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert_eq!(link.mac.as_ref().map(Vec::len), Some(6));
        assert_eq!(link.flags & IFF_UP, 0);
        assert_eq!(netlink.link("nothere").await.unwrap(), None);

        netlink.set_link_up(index).await.unwrap();
        netlink.set_link_mtu(index, 1400).await.unwrap();
        let link = netlink.link("v0").await.unwrap().unwrap();
        assert_ne!(link.flags & IFF_UP, 0);
        assert_eq!(link.mtu, Some(1400));

        // An address with lifetimes and flags (what lan6 sets on br-lan).
        let addr: Ipv6Addr = "2001:db8:5500::1".parse().unwrap();
        let mut new = NewAddress {
            index,
            addr: IpAddr::V6(addr),
            prefix_len: 64,
            flags: IFA_F_NOPREFIXROUTE | IFA_F_NODAD,
            lifetimes: Some(Lifetimes {
                preferred: 100,
                valid: 200,
            }),
        };
        netlink.add_address(&new).await.unwrap();
        // Replacing updates the lifetimes.
        new.lifetimes = Some(Lifetimes {
            preferred: 1000,
            valid: 2000,
        });
        netlink.add_address(&new).await.unwrap();
        let ours: Vec<_> = netlink
            .addresses(AF_INET6, index)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.addr() == Some(IpAddr::V6(addr)))
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(ours[0].prefix_len, 64);
        assert_ne!(ours[0].flags & IFA_F_NOPREFIXROUTE, 0);
        let lifetimes = ours[0].lifetimes.unwrap();
        assert!(
            lifetimes.valid > 1000 && lifetimes.valid <= 2000,
            "{lifetimes:?}"
        );
        assert!(lifetimes.preferred > 100 && lifetimes.preferred <= 1000);

        // An unreachable route (RFC 7084 WPD-5) and its errors.
        let unreachable = unreachable_56();
        netlink.add_route(&unreachable).await.unwrap();
        let again = netlink.add_route(&unreachable).await.unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EEXIST), "{again}");
        let routes = netlink.routes(AF_INET6).await.unwrap();
        assert!(
            routes.iter().any(|r| r.kind == RTN_UNREACHABLE
                && r.dst_len == 56
                && r.dst == Some(unreachable.dst)
                && r.table == u32::from(RT_TABLE_MAIN)
                && r.priority == Some(2_147_483_647)),
            "{routes:?}"
        );

        // IPv4 on the device and a default route through a gateway.
        let v4 = NewAddress {
            index,
            addr: "192.0.0.2".parse().unwrap(),
            prefix_len: 29,
            flags: 0,
            lifetimes: None,
        };
        netlink.add_address(&v4).await.unwrap();
        let default = RouteSpec {
            dst: "0.0.0.0".parse().unwrap(),
            dst_len: 0,
            kind: RouteKind::Unicast,
            oif: Some(index),
            gateway: Some("192.0.0.1".parse().unwrap()),
            metric: 10,
            protocol: RTPROT_STATIC,
        };
        netlink.add_route(&default).await.unwrap();
        let routes = netlink.routes(AF_INET).await.unwrap();
        assert!(
            routes.iter().any(|r| r.dst_len == 0
                && r.oif == Some(index)
                && r.priority == Some(10)
                && r.gateway == default.gateway),
            "{routes:?}"
        );
    });

    let routes6 = ns.ip(&["-6", "route", "show"]);
    assert!(
        routes6.contains("unreachable 2001:db8:5500::/56") && routes6.contains("metric 2147483647"),
        "{routes6}"
    );
    let addrs = ns.ip(&["addr", "show", "dev", "v0"]);
    assert!(addrs.contains("mtu 1400"), "{addrs}");
    assert!(addrs.contains("inet 192.0.0.2/29 brd 192.0.0.7"), "{addrs}");
    assert!(addrs.contains("2001:db8:5500::1/64"), "{addrs}");
    assert!(addrs.contains("noprefixroute"), "{addrs}");
    let routes4 = ns.ip(&["route", "show"]);
    assert!(
        routes4.contains("default via 192.0.0.1 dev v0 proto static metric 10"),
        "{routes4}"
    );

    // Everything removed again through the API.
    in_namespace(&ns, move || async move {
        let netlink = Netlink::open().unwrap();
        let unreachable = unreachable_56();
        netlink.delete_route(&unreachable).await.unwrap();
        let default = RouteSpec {
            dst: "0.0.0.0".parse().unwrap(),
            dst_len: 0,
            kind: RouteKind::Unicast,
            oif: Some(index),
            gateway: None,
            metric: 10,
            protocol: RTPROT_STATIC,
        };
        netlink.delete_route(&default).await.unwrap();
        netlink
            .delete_address(index, "192.0.0.2".parse().unwrap(), 29)
            .await
            .unwrap();
        netlink
            .delete_address(index, "2001:db8:5500::1".parse().unwrap(), 64)
            .await
            .unwrap();
        let gone = netlink
            .delete_address(index, "2001:db8:5500::1".parse().unwrap(), 64)
            .await
            .unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{gone}");
        netlink.delete_link(index).await.unwrap();
        assert_eq!(netlink.link("v0").await.unwrap(), None);
        let gone = netlink.delete_link(index).await.unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENODEV), "{gone}");
    });
    assert!(!ns.ip(&["-6", "route", "show"]).contains("unreachable"));
    assert!(!ns.ip(&["route", "show"]).contains("default"));
}

#[test]
fn a_change_wakes_the_subscription() {
    if !require_root_and_tools() {
        return;
    }
    let ns = Netns::new("nlwatch");
    let index = veth(&ns);
    in_namespace(&ns, move || async move {
        let mut subscription = Subscription::open(&[RTNLGRP_LINK, RTNLGRP_IPV6_IFADDR]).unwrap();
        let netlink = Netlink::open().unwrap();
        netlink.set_link_up(index).await.unwrap();
        // A bound, not a timing assertion: the notification is already
        // queued when set_link_up returns; the bound only keeps a broken
        // subscription from hanging the test.
        tokio::time::timeout(std::time::Duration::from_secs(10), subscription.changed())
            .await
            .expect("no notification")
            .unwrap();
    });
}
