//! The reconcile decisions, without a kernel: from what b4d knows (config,
//! DHCPv6 lease, AFTR) and what the kernel has (WAN device, tunnel device,
//! their addresses and routes), compute what the B4 should look like and the
//! netlink operations that get it there. The driver observes, calls
//! [`plan`], applies the operations, and observes again until nothing is left
//! to do; so adopting a tunnel left by a killed b4d, following a WAN address
//! change and tearing down are all the same code path.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::config::{EncapLimit, Tunnel, TunnelSource};

/// RFC 6333 §5.3: the tunnel adds one IPv6 header.
pub const IPV6_HEADER: u32 = 40;
/// A Tunnel Encapsulation Limit option adds an 8-byte Destination Options
/// header (RFC 2473 §4.1.1).
pub const ENCAP_LIMIT_HEADER: u32 = 8;
/// IPv4 and TCP headers without options: MSS = MTU - 40.
pub const IPV4_TCP_HEADERS: u32 = 40;
/// RFC 8200 §5: no IPv6 link is smaller.
pub const IPV6_MIN_MTU: u32 = 1280;
/// Outer hop limit (RFC 6333 leaves it to the B4; 64 is the common default).
pub const HOP_LIMIT: u8 = 64;
/// IPPROTO_IPIP: the tunnel carries IPv4 (ip6tnl mode ipip6).
pub const PROTO_IPIP: u8 = 4;
/// ip6tnl flags (include/uapi/linux/ip6_tunnel.h).
pub const IP6_TNL_F_IGN_ENCAP_LIMIT: u32 = 0x1;
pub const IP6_TNL_F_USE_ORIG_TCLASS: u32 = 0x2;
/// The B4 address is 192.0.0.2/29 (RFC 6333 §5.7).
pub const B4_PREFIX_LEN: u8 = 29;
/// The interface ID b4d gives its address from the delegated prefix when
/// the tunnel's local end comes from there (`tunnel.source 'prefix'`).
pub const PREFIX_INTERFACE_ID: u128 = 0xb4;

/// An address b4d keeps on the WAN, with lifetimes in seconds
/// (`u32::MAX` = forever, as in the kernel's IFA_CACHEINFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WanAddress {
    pub addr: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
}

/// A delegated prefix with lifetimes in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub prefix: Ipv6Addr,
    pub len: u8,
    pub preferred: u32,
    pub valid: u32,
}

/// What b4d knows, outside the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knowledge {
    /// IA_NA addresses of the DHCPv6 lease, lifetimes remaining now.
    pub leased: Vec<WanAddress>,
    pub delegated: Vec<Prefix>,
    /// The AFTR to use, or why there is none.
    pub aftr: Result<Ipv6Addr, String>,
    /// Just started: DHCPv6 and the AFTR lookup have not answered yet, so
    /// missing knowledge is no reason to remove what a previous run left
    /// (after kill -9 the tunnel keeps carrying traffic and is adopted).
    pub settling: bool,
    /// b4d puts its WAN /128s into the kernel and removes them. False when
    /// netifd owns the WAN's addresses (`globals.ipv6_handoff 'netifd'`):
    /// the tunnel then waits for the address to appear and never touches it.
    pub install_wan_addresses: bool,
}

impl Default for Knowledge {
    fn default() -> Self {
        Knowledge {
            leased: Vec::new(),
            delegated: Vec::new(),
            aftr: Err("AFTR not resolved yet".into()),
            settling: false,
            install_wan_addresses: true,
        }
    }
}

/// An IPv6 address the kernel has on the WAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddress {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// DAD still running. Still good for the tunnel: building it during
    /// DAD saves the second DAD takes, and the kernel sends nothing from a
    /// tentative address, so traffic starts the moment DAD succeeds.
    pub tentative: bool,
    /// DAD failed: never usable.
    pub dad_failed: bool,
    pub deprecated: bool,
    /// RFC 8981 temporary (privacy) address.
    pub temporary: bool,
    /// IFA_F_NOPREFIXROUTE: how b4d installs its /128s, so together with the
    /// /128 it marks the addresses b4d may remove.
    pub no_prefix_route: bool,
    /// Remaining valid lifetime in seconds (`u32::MAX` = forever).
    pub valid: u32,
    pub preferred: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WanDevice {
    pub index: u32,
    pub up: bool,
    pub mtu: u32,
    pub addresses: Vec<KernelAddress>,
    /// Global IPv4 addresses: native IPv4 is present (RFC 7084 DLW-3).
    pub ipv4: Vec<Ipv4Addr>,
}

/// The device named like our tunnel, as the kernel has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelDevice {
    pub index: u32,
    /// IFLA_INFO_KIND, e.g. "ip6tnl".
    pub kind: String,
    pub proto: Option<u8>,
    pub local: Option<Ipv6Addr>,
    pub remote: Option<Ipv6Addr>,
    pub link: Option<u32>,
    pub encap_limit: Option<u8>,
    pub hop_limit: Option<u8>,
    pub flags: u32,
    pub mtu: u32,
    pub up: bool,
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    /// Metrics of the IPv4 default routes through the tunnel (main table).
    pub default_routes: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub wan: Option<WanDevice>,
    pub tunnel: Option<TunnelDevice>,
    /// The MSS clamping table as last loaded (driver memory: nftables is
    /// reloaded once after every start).
    pub mss_clamp: Option<MssClamp>,
}

/// TCP MSS clamping: SYNs through `tunnel` get at most `mss`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MssClamp {
    pub tunnel: String,
    /// Tunnel MTU - 40 (IPv4 and TCP headers without options).
    pub mss: u32,
}

/// The tunnel as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    pub name: String,
    pub link: u32,
    pub local: Ipv6Addr,
    pub remote: Ipv6Addr,
    pub mtu: u32,
    /// `None`: no Tunnel Encapsulation Limit option (IGN_ENCAP_LIMIT).
    pub encap_limit: Option<u8>,
    pub flags: u32,
    pub hop_limit: u8,
    pub ipv4: Ipv4Addr,
    pub peer: Ipv4Addr,
    pub default_route_metric: Option<u32>,
    pub mss_clamp: bool,
}

#[cfg(test)]
impl TunnelSpec {
    /// The default tunnel on a 1500 WAN, for tests of what reads one.
    pub fn example() -> TunnelSpec {
        TunnelSpec {
            name: "ds-b4".into(),
            link: 2,
            local: "2001:db8:1::100".parse().unwrap(),
            remote: "2001:db8:af::1".parse().unwrap(),
            mtu: 1460,
            encap_limit: None,
            flags: IP6_TNL_F_IGN_ENCAP_LIMIT | IP6_TNL_F_USE_ORIG_TCLASS,
            hop_limit: HOP_LIMIT,
            ipv4: Ipv4Addr::new(192, 0, 0, 2),
            peer: Ipv4Addr::new(192, 0, 0, 1),
            default_route_metric: Some(0),
            mss_clamp: true,
        }
    }
}

/// Why there is no tunnel now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    Disabled,
    WanMissing(String),
    WanDown(String),
    NativeIpv4(Ipv4Addr),
    NoLocalAddress(String),
    NoAftr(String),
    /// A device with our name that is not ours to manage.
    NameTaken(String),
    /// Just started; a tunnel from before is kept until DHCPv6 and DNS answer.
    Settling,
}

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Down::Disabled => f.write_str("tunnel disabled in the config (tunnel.enabled '0')"),
            Down::WanMissing(dev) => write!(f, "WAN device {dev} does not exist"),
            Down::WanDown(dev) => write!(f, "WAN device {dev} is down"),
            Down::NativeIpv4(addr) => write!(
                f,
                "native IPv4 {addr} on the WAN: B4 stands down (RFC 7084 DLW-3, tunnel.disable_on_native_ipv4)"
            ),
            Down::NoLocalAddress(why) => write!(f, "no WAN IPv6 address for the tunnel: {why}"),
            Down::NoAftr(why) => f.write_str(why),
            Down::NameTaken(why) => f.write_str(why),
            Down::Settling => f.write_str(
                "starting: keeping the tunnel found at start until DHCPv6 and the AFTR lookup answer",
            ),
        }
    }
}

/// One change to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add or replace (lifetimes) a /128 on the WAN, no prefix route.
    SetWanAddress {
        wan: u32,
        address: WanAddress,
    },
    RemoveWanAddress {
        wan: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    },
    CreateTunnel(TunnelSpec),
    UpdateTunnel {
        index: u32,
        spec: TunnelSpec,
    },
    DeleteTunnel {
        index: u32,
    },
    SetTunnelMtu {
        index: u32,
        mtu: u32,
    },
    SetTunnelUp {
        index: u32,
    },
    AddTunnelAddress {
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
    },
    RemoveTunnelAddress {
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
    },
    AddDefaultRoute {
        index: u32,
        gateway: Ipv4Addr,
        metric: u32,
    },
    RemoveDefaultRoute {
        index: u32,
        metric: u32,
    },
    LoadMssClamp(MssClamp),
    RemoveMssClamp,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::SetWanAddress { wan, address } => write!(
                f,
                "set WAN address {}/128 (preferred {}s, valid {}s) on ifindex {wan}",
                address.addr, address.preferred, address.valid
            ),
            Op::RemoveWanAddress {
                wan,
                addr,
                prefix_len,
            } => {
                write!(
                    f,
                    "remove WAN address {addr}/{prefix_len} from ifindex {wan}"
                )
            }
            Op::CreateTunnel(s) => write!(
                f,
                "create ip6tnl {} local {} remote {} mtu {}",
                s.name, s.local, s.remote, s.mtu
            ),
            Op::UpdateTunnel { spec: s, .. } => write!(
                f,
                "update ip6tnl {} local {} remote {}",
                s.name, s.local, s.remote
            ),
            Op::DeleteTunnel { index } => write!(f, "delete the tunnel (ifindex {index})"),
            Op::SetTunnelMtu { mtu, .. } => write!(f, "set tunnel MTU {mtu}"),
            Op::SetTunnelUp { .. } => f.write_str("set tunnel up"),
            Op::AddTunnelAddress {
                addr, prefix_len, ..
            } => {
                write!(f, "add {addr}/{prefix_len} on the tunnel")
            }
            Op::RemoveTunnelAddress {
                addr, prefix_len, ..
            } => {
                write!(f, "remove {addr}/{prefix_len} from the tunnel")
            }
            Op::AddDefaultRoute {
                gateway, metric, ..
            } => {
                write!(f, "add IPv4 default route via {gateway} metric {metric}")
            }
            Op::RemoveDefaultRoute { metric, .. } => {
                write!(f, "remove IPv4 default route metric {metric}")
            }
            Op::LoadMssClamp(c) => {
                write!(f, "load nftables MSS clamping to {} on {}", c.mss, c.tunnel)
            }
            Op::RemoveMssClamp => f.write_str("remove nftables MSS clamping"),
        }
    }
}

/// The outcome of one planning round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// `Ok` with the tunnel that is (or will be after `ops`) in place.
    pub verdict: Result<TunnelSpec, Down>,
}

/// The tunnel MTU: configured, else WAN MTU minus the encapsulation
/// (RFC 6333 §5.3). Not raised to 1280: the tunnel's MTU is the inner IPv4
/// one, and on a WAN of 1280-1319 a larger one lets DF-clear IPv4 packets
/// through unfragmented that ip6tnl then drops (it never fragments the outer
/// packet). A WAN MTU under the IPv6 minimum (unknown: 0) counts as 1280.
pub fn tunnel_mtu(config: &Tunnel, wan_mtu: u32) -> u32 {
    if let Some(mtu) = config.mtu {
        return u32::from(mtu);
    }
    let overhead = match config.encaplimit {
        EncapLimit::Disabled => IPV6_HEADER,
        EncapLimit::Limit(_) => IPV6_HEADER + ENCAP_LIMIT_HEADER,
    };
    wan_mtu.max(IPV6_MIN_MTU) - overhead
}

/// The address b4d takes from a delegated prefix for the tunnel's local end:
/// interface id ::b4 in the prefix's last /64. Not its first: that is the
/// subnet the LAN gets (netifd's ip6assign hands out subnets first-fit from
/// 0, and b4d's own `lan.ip6hint` defaults to 0), where odhcpd's stateful
/// DHCPv6 (12-bit host ids) could give a LAN host the same address.
pub fn prefix_address(prefix: &Prefix) -> Ipv6Addr {
    let len = u32::from(prefix.len.min(128));
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    let last_subnet = if len < 64 {
        (u128::MAX >> len) & !u128::from(u64::MAX)
    } else {
        0
    };
    Ipv6Addr::from((u128::from(prefix.prefix) & mask) | last_subnet | PREFIX_INTERFACE_ID)
}

/// Whether `addr` has the interface id [`prefix_address`] gives.
fn has_prefix_interface_id(addr: Ipv6Addr) -> bool {
    u128::from(addr) & u128::from(u64::MAX) == PREFIX_INTERFACE_ID
}

/// Whether the tunnel can use `a` as its local end. A deprecated address
/// (preferred lifetime over, still valid: a server that missed the renewal,
/// or renumbering) can: RFC 4862 §5.5.4 keeps it usable where nothing
/// better exists, and ip6tnl refuses only a tentative one. The choice
/// takes it only when no preferred one fits (see `local_address`).
fn usable(a: &KernelAddress) -> bool {
    !a.dad_failed && !a.addr.is_unicast_link_local()
}

/// The delegated prefix the tunnel's prefix address comes from: the first
/// still preferred, else the first. A renumbering ISP keeps the old prefix
/// in its Replies with preferred lifetime 0 beside the new one.
fn tunnel_prefix(known: &Knowledge) -> Option<&Prefix> {
    (known.delegated.iter().find(|p| p.preferred > 0)).or(known.delegated.first())
}

/// A SLAAC address: a /64 the kernel formed from an RA, not a privacy one.
fn is_slaac(a: &KernelAddress) -> bool {
    a.prefix_len == 64 && !a.temporary && !a.addr.is_unicast_link_local()
}

/// The WAN /128s b4d wants: every IA_NA address (unless netifd installs
/// them), and the prefix address when that is the tunnel's source. The
/// prefix address is b4d's in netifd mode too: netifd is told the prefix
/// for the LAN and puts no address of it on the WAN, so with an ISP that
/// delegates a prefix and gives no IA_NA (nor SLAAC) the tunnel would wait
/// for it forever.
fn wanted_wan_addresses(config: &Tunnel, known: &Knowledge, wan: &WanDevice) -> Vec<WanAddress> {
    let mut wanted = if known.install_wan_addresses {
        known.leased.clone()
    } else {
        Vec::new()
    };
    let slaac_present = wan.addresses.iter().any(is_slaac);
    let from_prefix = match config.source {
        TunnelSource::Prefix => true,
        // The fallback of the rule: only when neither IA_NA nor SLAAC gives
        // an address (an IA_NA not installed yet counts: it is coming).
        TunnelSource::Auto if known.install_wan_addresses => {
            known.leased.is_empty() && !slaac_present
        }
        // In netifd mode an IA_NA comes when netifd installs it: until
        // then a prefix address the tunnel already uses stays (make
        // before break; at a start with an IA_NA none is made).
        TunnelSource::Auto => {
            !slaac_present
                && (known.leased.is_empty()
                    || (!leased_on_wan(known, wan) && prefix_address_on_wan(known, wan)))
        }
        TunnelSource::IaNa | TunnelSource::Slaac => false,
    };
    if from_prefix && config.enabled {
        if let Some(p) = tunnel_prefix(known) {
            wanted.push(WanAddress {
                addr: prefix_address(p),
                preferred: p.preferred,
                valid: p.valid,
            });
        }
    }
    wanted
}

/// Whether a leased address is on the WAN and preferred: the prefix
/// address is given up for it only then (see `wanted_wan_addresses`).
fn leased_on_wan(known: &Knowledge, wan: &WanDevice) -> bool {
    wan.addresses
        .iter()
        .any(|a| usable(a) && !a.deprecated && known.leased.iter().any(|l| l.addr == a.addr))
}

fn prefix_address_on_wan(known: &Knowledge, wan: &WanDevice) -> bool {
    tunnel_prefix(known)
        .map(prefix_address)
        .is_some_and(|p| wan.addresses.iter().any(|a| a.addr == p && usable(a)))
}

/// The tunnel's local address by the rule `tunnel.source` names:
/// auto = IA_NA, else SLAAC, else the delegated prefix.
/// `installing` are the WAN addresses this round adds before it touches the
/// tunnel: a renumbered IA_NA moves the tunnel in the same round instead of
/// tearing it down until the next one (make before break).
fn local_address(
    config: &Tunnel,
    known: &Knowledge,
    wan: &WanDevice,
    installing: &[WanAddress],
) -> Result<Ipv6Addr, String> {
    let pending_ia_na = !known.leased.is_empty();
    // By the rule, among preferred addresses; failing that, among
    // deprecated ones too: keeping IPv4 up on a still valid address beats
    // tearing the tunnel down.
    let choose = |deprecated_too: bool| {
        let fits = |a: &KernelAddress| usable(a) && (deprecated_too || !a.deprecated);
        let on_wan = |addr: Ipv6Addr| match wan.addresses.iter().find(|a| a.addr == addr) {
            Some(present) => fits(present),
            None => installing
                .iter()
                .any(|w| w.addr == addr && (deprecated_too || w.preferred > 0)),
        };
        let ia_na = || known.leased.iter().map(|a| a.addr).find(|a| on_wan(*a));
        let slaac = || {
            (wan.addresses.iter())
                .find(|a| is_slaac(a) && fits(a))
                .map(|a| a.addr)
        };
        let prefix = || {
            tunnel_prefix(known)
                .map(prefix_address)
                .filter(|a| on_wan(*a))
        };
        match config.source {
            TunnelSource::IaNa => ia_na(),
            TunnelSource::Slaac => slaac(),
            TunnelSource::Prefix => prefix(),
            // netifd mode: the prefix address while the IA_NA is not there
            // yet (it is wanted only if the tunnel already used it).
            TunnelSource::Auto if pending_ia_na && !known.install_wan_addresses => {
                ia_na().or_else(prefix)
            }
            TunnelSource::Auto if pending_ia_na => ia_na(),
            TunnelSource::Auto => slaac().or_else(prefix),
        }
    };
    let found = choose(false).or_else(|| choose(true));
    found.ok_or_else(|| match config.source {
        TunnelSource::IaNa if pending_ia_na => "IA_NA address not on the WAN yet".into(),
        TunnelSource::IaNa => "no IA_NA address in the DHCPv6 lease (tunnel.source 'ia_na')".into(),
        TunnelSource::Slaac => "no SLAAC address on the WAN (tunnel.source 'slaac')".into(),
        TunnelSource::Prefix if known.delegated.is_empty() => {
            "no delegated prefix (tunnel.source 'prefix')".into()
        }
        TunnelSource::Prefix => "prefix address not on the WAN yet".into(),
        TunnelSource::Auto if pending_ia_na => "IA_NA address not on the WAN yet".into(),
        TunnelSource::Auto => "no IA_NA address, no SLAAC address and no delegated prefix".into(),
    })
}

/// Decides what the B4 should look like.
fn verdict(
    config: &Tunnel,
    wan_name: &str,
    known: &Knowledge,
    observed: &Observed,
) -> Result<TunnelSpec, Down> {
    if !config.enabled {
        return Err(Down::Disabled);
    }
    if let Some(t) = &observed.tunnel {
        if t.kind != "ip6tnl" {
            return Err(Down::NameTaken(format!(
                "device {} exists and is a {} device, not an ip6tnl: b4d leaves it alone (set tunnel.name)",
                config.name,
                if t.kind.is_empty() { "plain" } else { &t.kind }
            )));
        }
    }
    let wan = observed
        .wan
        .as_ref()
        .ok_or_else(|| Down::WanMissing(wan_name.into()))?;
    if !wan.up {
        return Err(Down::WanDown(wan_name.into()));
    }
    if config.disable_on_native_ipv4 {
        if let Some(v4) = wan.ipv4.first() {
            return Err(Down::NativeIpv4(*v4));
        }
    }
    let remote = known.aftr.clone().map_err(Down::NoAftr)?;
    let installing = wanted_wan_addresses(config, known, wan);
    let local = local_address(config, known, wan, &installing).map_err(Down::NoLocalAddress)?;
    let (encap_limit, mut flags) = match config.encaplimit {
        EncapLimit::Disabled => (None, IP6_TNL_F_IGN_ENCAP_LIMIT),
        EncapLimit::Limit(n) => (Some(n), 0),
    };
    // RFC 6333 §7.1: the traffic class is copied from the inner header.
    flags |= IP6_TNL_F_USE_ORIG_TCLASS;
    Ok(TunnelSpec {
        name: config.name.to_string(),
        link: wan.index,
        local,
        remote,
        mtu: tunnel_mtu(config, wan.mtu),
        encap_limit,
        flags,
        hop_limit: HOP_LIMIT,
        ipv4: config.ipv4_address,
        peer: config.peer,
        default_route_metric: config.default_route.then_some(config.metric),
        mss_clamp: config.mss_clamp,
    })
}

/// Lifetimes drift by the seconds between observations; only a real change
/// (a renew) re-installs the address.
const LIFETIME_SLACK: u32 = 10;

/// Whether a kernel lifetime (seconds, `u32::MAX` = forever) is off from the
/// wanted one by more than the drift between observations. Shared with the
/// LAN prefix plan (src/lan6).
pub fn lifetime_differs(kernel: u32, wanted: u32) -> bool {
    if kernel == u32::MAX || wanted == u32::MAX {
        return kernel != wanted;
    }
    kernel.abs_diff(wanted) > LIFETIME_SLACK
}

fn plan_wan(config: &Tunnel, known: &Knowledge, wan: &WanDevice, ops: &mut Vec<Op>) {
    // Not while the WAN is down or without carrier: Linux stops DAD for an
    // address added to a device that is not ready (one with a lifetime is
    // deleted at once, so it was re-added in a loop) and runs it again, not
    // optimistically, when the link comes up. Added once the link is up,
    // its DAD starts then, optimistic where the kernel allows it.
    if !wan.up {
        return;
    }
    let wanted = wanted_wan_addresses(config, known, wan);
    for w in &wanted {
        let present = wan.addresses.iter().find(|a| a.addr == w.addr);
        let stale = match present {
            None => true,
            Some(a) => {
                lifetime_differs(a.valid, w.valid) || lifetime_differs(a.preferred, w.preferred)
            }
        };
        if stale {
            ops.push(Op::SetWanAddress {
                wan: wan.index,
                address: *w,
            });
        }
    }
    // Ours: a /128 without prefix route that b4d no longer wants (the lease
    // ended, the prefix moved); in netifd mode only a prefix address, never
    // a leased one (netifd's). Addresses of anyone else are never touched.
    if known.settling {
        return;
    }
    let ours = |a: &KernelAddress| {
        a.prefix_len == 128
            && a.no_prefix_route
            && (known.install_wan_addresses
                || (has_prefix_interface_id(a.addr)
                    && !known.leased.iter().any(|l| l.addr == a.addr)))
    };
    for a in &wan.addresses {
        if ours(a) && !wanted.iter().any(|w| w.addr == a.addr) {
            ops.push(Op::RemoveWanAddress {
                wan: wan.index,
                addr: a.addr,
                prefix_len: a.prefix_len,
            });
        }
    }
}

fn plan_tunnel(spec: &TunnelSpec, tunnel: Option<&TunnelDevice>, ops: &mut Vec<Op>) {
    let Some(t) = tunnel else {
        ops.push(Op::CreateTunnel(spec.clone()));
        return;
    };
    let index = t.index;
    let mismatched = t.proto != Some(PROTO_IPIP)
        || t.local != Some(spec.local)
        || t.remote != Some(spec.remote)
        || t.link != Some(spec.link)
        || t.hop_limit != Some(spec.hop_limit)
        || t.flags != spec.flags
        || (spec.encap_limit.is_some() && t.encap_limit != spec.encap_limit);
    if mismatched {
        ops.push(Op::UpdateTunnel {
            index,
            spec: spec.clone(),
        });
    }
    if t.mtu != spec.mtu {
        ops.push(Op::SetTunnelMtu {
            index,
            mtu: spec.mtu,
        });
    }
    if !t.up {
        ops.push(Op::SetTunnelUp { index });
    }
    let wanted = (spec.ipv4, B4_PREFIX_LEN);
    for &(addr, prefix_len) in &t.ipv4 {
        if (addr, prefix_len) != wanted {
            ops.push(Op::RemoveTunnelAddress {
                index,
                addr,
                prefix_len,
            });
        }
    }
    if !t.ipv4.contains(&wanted) {
        ops.push(Op::AddTunnelAddress {
            index,
            addr: spec.ipv4,
            prefix_len: B4_PREFIX_LEN,
        });
    }
    for &metric in &t.default_routes {
        if Some(metric) != spec.default_route_metric {
            ops.push(Op::RemoveDefaultRoute { index, metric });
        }
    }
    if let Some(metric) = spec.default_route_metric {
        if !t.default_routes.contains(&metric) {
            ops.push(Op::AddDefaultRoute {
                index,
                gateway: spec.peer,
                metric,
            });
        }
    }
}

/// The MSS clamp depends only on the tunnel's name and MTU, so it is loaded
/// as soon as the WAN is known, before the AFTR answers and off the
/// bring-up path, and it stays while the tunnel is down or rebuilt: its
/// rules match the tunnel by name, and nothing matches while it is absent.
/// Rebuilds then cost no `nft` run, and a rebuilt tunnel never carries a
/// SYN unclamped. `enabled '0'`, `mss_clamp '0'` and stop remove it.
fn plan_mss_clamp(config: &Tunnel, wan: &WanDevice, loaded: Option<&MssClamp>, ops: &mut Vec<Op>) {
    let wanted = (config.enabled && config.mss_clamp).then(|| MssClamp {
        tunnel: config.name.to_string(),
        mss: tunnel_mtu(config, wan.mtu).saturating_sub(IPV4_TCP_HEADERS),
    });
    match (wanted, loaded) {
        (Some(wanted), Some(loaded)) if wanted == *loaded => {}
        (Some(wanted), _) => ops.push(Op::LoadMssClamp(wanted)),
        (None, Some(_)) => ops.push(Op::RemoveMssClamp),
        (None, None) => {}
    }
}

/// One reconcile round: the verdict, and the operations that make the
/// kernel match it.
pub fn plan(config: &Tunnel, wan_name: &str, known: &Knowledge, observed: &Observed) -> Plan {
    let mut ops = Vec::new();
    if let Some(wan) = &observed.wan {
        plan_wan(config, known, wan, &mut ops);
        plan_mss_clamp(config, wan, observed.mss_clamp.as_ref(), &mut ops);
    }
    let verdict = verdict(config, wan_name, known, observed);
    let waiting = matches!(verdict, Err(Down::NoAftr(_) | Down::NoLocalAddress(_)));
    if known.settling && waiting && observed.tunnel.is_some() {
        return Plan {
            ops,
            verdict: Err(Down::Settling),
        };
    }
    match &verdict {
        Ok(spec) => plan_tunnel(spec, observed.tunnel.as_ref(), &mut ops),
        Err(Down::NameTaken(_)) => {}
        Err(_) => ops.extend(teardown(observed)),
    }
    Plan { ops, verdict }
}

/// What removes the B4 from the kernel whenever it must stand down.
/// Deleting the device takes its addresses and routes with it; the MSS
/// clamp stays (see [`plan_mss_clamp`]).
pub fn teardown(observed: &Observed) -> Vec<Op> {
    let mut ops = Vec::new();
    if let Some(t) = &observed.tunnel {
        if t.kind == "ip6tnl" {
            ops.push(Op::DeleteTunnel { index: t.index });
        }
    }
    ops
}

/// Everything b4d made, for SIGTERM: the tunnel, the nftables table, and
/// its /128s on the WAN (unless `install_wan_addresses` is off: then they
/// are netifd's).
pub fn stop(observed: &Observed, install_wan_addresses: bool) -> Vec<Op> {
    let mut ops = teardown(observed);
    if observed.mss_clamp.is_some() {
        ops.push(Op::RemoveMssClamp);
    }
    if let Some(wan) = &observed.wan {
        plan_wan(
            &Tunnel {
                enabled: false,
                ..Tunnel::default()
            },
            &Knowledge {
                install_wan_addresses,
                ..Knowledge::default()
            },
            wan,
            &mut ops,
        );
    }
    ops
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
