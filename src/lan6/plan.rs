//! Native IPv6 for the LAN, decided without a kernel: from the delegated
//! prefixes of the DHCPv6 lease (with their lifetimes), the configuration and
//! what the kernel has on the LAN device, compute the LAN's IPv6 state and
//! the netlink operations that get there.
//!
//! For every delegated prefix b4d wants, all or nothing:
//! - the bridge address `<prefix + ip6hint>::ip6ifaceid/ip6assign` with the
//!   prefix's lifetimes (an RA daemon reading the bridge turns it into the
//!   LAN's prefix);
//! - an `unreachable` route for the whole delegated prefix, so that packets
//!   for its unassigned rest are dropped here instead of bouncing between
//!   the CE router and the ISP (RFC 7084 WPD-5); it lives as long as the
//!   prefix's valid lifetime (removed by b4d: see [`KernelRoute`]).
//!
//! A prefix that leaves the lease (renumbering) is not dropped: its LAN
//! address stays deprecated (preferred 0, valid at most two hours) so hosts
//! move to the new prefix without losing running connections at once
//! (RFC 4862 §5.5.3 e, RFC 7084 L-13, RFC 9096 §3). So does a LAN address a
//! previous run left that the new lease (or configuration) does not want,
//! for what the kernel has left of it; only a graceful stop removes at once.
//!
//! [`Lan6`] keeps the prefixes across lease changes; [`Lan6::plan`] is a pure
//! function of that memory, `now` and the observed kernel state, so adopting
//! what a killed b4d left, following a renew and tearing down are one path.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Instant;

use crate::config::Lan;
use crate::dhcpv6::lease::{
    remaining, retired_valid_until, Deadline, DelegatedPrefix, RETIRED_VALID_AT_MOST,
};
use crate::tunnel::plan::lifetime_differs;

/// The `rtm_protocol` b4d marks its routes with, so that it finds (and
/// adopts or removes) them and nobody else's. Not taken in
/// include/uapi/linux/rtnetlink.h or iproute2's rt_protos.
pub const ROUTE_PROTOCOL: u8 = 0xb4;

/// Lifetimes in seconds as the kernel takes them (`u32::MAX` = forever).
pub const FOREVER: u32 = u32::MAX;

/// An IPv6 network, its address masked to the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Net {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Net {
    pub fn new(addr: Ipv6Addr, len: u8) -> Net {
        let len = len.min(128);
        Net {
            addr: Ipv6Addr::from(u128::from(addr) & mask(len)),
            len,
        }
    }

    pub fn contains(&self, other: &Net) -> bool {
        other.len >= self.len && u128::from(other.addr) & mask(self.len) == u128::from(self.addr)
    }

    pub fn overlaps(&self, other: &Net) -> bool {
        self.contains(other) || other.contains(self)
    }

    pub fn contains_addr(&self, addr: Ipv6Addr) -> bool {
        self.contains(&Net::new(addr, 128))
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n.min(128))),
    }
}

/// The LAN options (OpenWrt's names, /etc/config/network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `ip6assign`: the LAN prefix length; `None` assigns nothing (the
    /// unreachable route still protects the delegated prefix).
    pub assign: Option<u8>,
    /// `ip6hint`: which subnet of that length.
    pub hint: u32,
    /// `ip6ifaceid`: the lower 64 bits of the bridge's address.
    pub iface_id: u64,
}

impl Settings {
    pub fn from_config(lan: &Lan) -> Settings {
        Settings {
            assign: lan.ip6assign,
            hint: lan.ip6hint,
            iface_id: lan.ip6ifaceid,
        }
    }

    /// Whether a kernel address on the LAN device looks like one b4d made:
    /// our interface id, not link-local, and a finite lifetime (a static
    /// address someone configured is permanent) or exactly the address b4d
    /// carves from one of its unreachable `routes` (a prefix delegated with
    /// infinite lifetimes gives a permanent address; the route, marked with
    /// b4d's protocol, survives restarts and names the prefix). Not any
    /// permanent address inside such a route: an admin's static one in
    /// another subnet of the delegated prefix (say 2001:db8:100:1::1 beside
    /// b4d's 2001:db8:100::1) stays theirs.
    pub fn is_ours(&self, a: &KernelAddress, routes: &[KernelRoute]) -> bool {
        let carved_from = |r: &KernelRoute| matches!(carve(r.dst, self), Ok(Some(subnet)) if lan_address(subnet, self) == a.addr);
        u128::from(a.addr) as u64 == self.iface_id
            && !a.addr.is_unicast_link_local()
            && (a.valid != FOREVER || routes.iter().any(carved_from))
    }
}

/// Why a delegated prefix gives the LAN nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The prefix is longer than the LAN prefix to carve (a /64 or /72
    /// delegated with ip6assign 60, say).
    TooLong { prefix: Net, assign: u8 },
    /// ip6hint needs more subnet bits than the prefix leaves (a /60 has 16
    /// /64s; hint 10 fits, hint 1f does not; a /64 has only subnet 0).
    HintOutside { prefix: Net, assign: u8, hint: u32 },
    /// Overlaps a prefix listed before it in the same lease.
    Overlaps { prefix: Net, with: Net },
    /// The LAN device does not exist.
    NoLanDevice(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::TooLong { prefix, assign } => write!(
                f,
                "delegated prefix {prefix} is too long to carve a /{assign} from (lan.ip6assign {assign}): LAN prefix not assigned"
            ),
            Skip::HintOutside {
                prefix,
                assign,
                hint,
            } => {
                let bits = assign - prefix.len;
                write!(
                    f,
                    "lan.ip6hint {hint:x} does not fit the {bits} subnet bits a /{assign} leaves in {prefix} (largest hint {:x}): LAN prefix not assigned",
                    (1u64 << bits) - 1
                )
            }
            Skip::Overlaps { prefix, with } => write!(
                f,
                "delegated prefix {prefix} overlaps {with} from the same lease: ignored"
            ),
            Skip::NoLanDevice(dev) => {
                write!(f, "LAN device {dev} does not exist: LAN IPv6 waits for it")
            }
        }
    }
}

/// The LAN subnet carved from `prefix` (`None`: ip6assign 0).
pub fn carve(prefix: Net, settings: &Settings) -> Result<Option<Net>, Skip> {
    let Some(assign) = settings.assign else {
        return Ok(None);
    };
    if prefix.len > assign {
        return Err(Skip::TooLong { prefix, assign });
    }
    let bits = u32::from(assign - prefix.len);
    if bits < 32 && settings.hint >> bits != 0 {
        return Err(Skip::HintOutside {
            prefix,
            assign,
            hint: settings.hint,
        });
    }
    let subnet = u128::from(prefix.addr) | (u128::from(settings.hint) << (128 - u32::from(assign)));
    Ok(Some(Net::new(Ipv6Addr::from(subnet), assign)))
}

/// The bridge's address in a LAN subnet.
pub fn lan_address(subnet: Net, settings: &Settings) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(subnet.addr) | u128::from(settings.iface_id))
}

/// A delegated prefix b4d remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub prefix: Net,
    pub preferred_until: Deadline,
    pub valid_until: Deadline,
    /// Left the lease: deprecated until `valid_until`.
    pub withdrawn: bool,
}

/// An IPv6 address the kernel has on the LAN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddress {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// Remaining lifetimes in seconds (`FOREVER` = permanent).
    pub valid: u32,
    pub preferred: u32,
}

/// An `unreachable` route with b4d's protocol mark, as the kernel has it.
/// It has no lifetime: Linux ignores RTA_EXPIRES on reject routes (seen on
/// 6.1 and 6.18), so b4d removes it when the prefix's valid lifetime ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: Net,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The LAN device's index and IPv6 addresses; `None` if it is missing.
    pub lan: Option<(u32, Vec<KernelAddress>)>,
    /// The LAN device is up with carrier. Until then an address b4d adds is
    /// deleted by the kernel at once (addrconf_dad_begin kills a
    /// non-permanent address on a device not ready: a bridge with no port
    /// up, at boot without a LAN cable or before the Wi-Fi joins), and
    /// adding it again looped; it is added once the carrier is there.
    pub lan_ready: bool,
    /// b4d's unreachable routes (marked with [`ROUTE_PROTOCOL`]).
    pub routes: Vec<KernelRoute>,
}

/// One change to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add or replace (lifetimes) an address, with its on-link prefix route.
    SetAddress {
        index: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
        preferred: u32,
        valid: u32,
    },
    RemoveAddress {
        index: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    },
    /// Add (or replace) an `unreachable` route.
    AddUnreachableRoute {
        dst: Net,
    },
    RemoveUnreachableRoute {
        dst: Net,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |s: &u32| match *s {
            FOREVER => "forever".to_string(),
            s => format!("{s}s"),
        };
        match self {
            Op::SetAddress {
                addr,
                prefix_len,
                preferred,
                valid,
                ..
            } => write!(
                f,
                "set LAN address {addr}/{prefix_len} (preferred {}, valid {})",
                secs(preferred),
                secs(valid)
            ),
            Op::RemoveAddress {
                addr, prefix_len, ..
            } => write!(f, "remove LAN address {addr}/{prefix_len}"),
            Op::AddUnreachableRoute { dst } => write!(f, "add unreachable route {dst}"),
            Op::RemoveUnreachableRoute { dst } => write!(f, "remove unreachable route {dst}"),
        }
    }
}

/// One delegated prefix as the LAN gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub delegated: Net,
    /// The bridge's subnet and address (`None`: ip6assign 0).
    pub lan: Option<(Net, Ipv6Addr)>,
    /// Seconds, `FOREVER` for infinity; preferred 0 when deprecated.
    pub preferred: u32,
    pub valid: u32,
    /// Left the lease (renumbering), kept until `valid` runs out.
    pub withdrawn: bool,
    /// The unreachable route is left out: an active prefix covers it.
    pub route: bool,
}

/// The outcome of one planning round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// What the LAN has (or will have after `ops`).
    pub assigned: Vec<Assigned>,
    /// Prefixes that give the LAN nothing, and why.
    pub skipped: Vec<Skip>,
}

/// Seconds left until `deadline` for the kernel (`FOREVER` for infinity).
fn seconds(deadline: Deadline, now: Instant) -> u32 {
    remaining(deadline, now).map_or(FOREVER, |s| s.min(u64::from(FOREVER - 1)) as u32)
}

/// At least a second left: the kernel takes lifetimes in whole seconds and
/// refuses an address with valid lifetime 0 (EINVAL).
fn alive(deadline: Deadline, now: Instant) -> bool {
    deadline.is_none_or(|t| t.saturating_duration_since(now).as_secs() > 0)
}

/// The LAN's IPv6 prefixes across lease changes.
#[derive(Debug, Clone)]
pub struct Lan6 {
    settings: Settings,
    /// Lease order first (the first of overlapping prefixes wins), then
    /// withdrawn ones.
    tracked: Vec<Tracked>,
}

impl Lan6 {
    pub fn new(settings: Settings) -> Lan6 {
        Lan6 {
            settings,
            tracked: Vec::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn tracked(&self) -> &[Tracked] {
        &self.tracked
    }

    /// Takes the lease's delegated prefixes (empty when there is no lease).
    /// Returns what changed, in words, for the log.
    pub fn update_lease(&mut self, now: Instant, prefixes: &[DelegatedPrefix]) -> Vec<String> {
        let mut notes = Vec::new();
        let mut next: Vec<Tracked> = Vec::new();
        for p in prefixes {
            let prefix = Net::new(p.prefix, p.len);
            if next.iter().any(|t| t.prefix == prefix) {
                continue;
            }
            let known = self.tracked.iter().find(|t| t.prefix == prefix);
            if !alive(p.valid_until, now) {
                // Valid lifetime 0: the server takes the prefix back
                // (RFC 8415 §18.3.4); handled below like a prefix that left.
                continue;
            }
            match known {
                None => notes.push(format!(
                    "delegated prefix {prefix} (preferred {}s, valid {}s)",
                    seconds(p.preferred_until, now),
                    seconds(p.valid_until, now)
                )),
                Some(t) if t.withdrawn => {
                    notes.push(format!("delegated prefix {prefix} is back in the lease"))
                }
                Some(_) => {}
            }
            next.push(Tracked {
                prefix,
                preferred_until: p.preferred_until,
                valid_until: p.valid_until,
                withdrawn: false,
            });
        }
        for t in &self.tracked {
            if next.iter().any(|n| n.prefix == t.prefix) {
                continue;
            }
            if t.withdrawn {
                next.push(t.clone());
                continue;
            }
            // Deprecated now, valid for what was left, also when the server
            // sent valid 0 (see RETIRED_VALID_AT_MOST).
            let Some(valid_until) =
                retired_valid_until(t.valid_until, now).filter(|&until| alive(Some(until), now))
            else {
                continue;
            };
            notes.push(format!(
                "delegated prefix {} left the lease: LAN prefix deprecated, removed in {}s",
                t.prefix,
                seconds(Some(valid_until), now)
            ));
            next.push(Tracked {
                prefix: t.prefix,
                preferred_until: Some(now),
                valid_until: Some(valid_until),
                withdrawn: true,
            });
        }
        self.tracked = next;
        notes
    }

    /// Forgets prefixes whose valid lifetime has passed; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Net> {
        let (gone, kept) = std::mem::take(&mut self.tracked)
            .into_iter()
            .partition(|t| !alive(t.valid_until, now));
        self.tracked = kept;
        gone.into_iter().map(|t: Tracked| t.prefix).collect()
    }

    /// When the next lifetime edge comes (a prefix turns deprecated or
    /// invalid): the driver re-plans then.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.tracked
            .iter()
            .flat_map(|t| [t.preferred_until, t.valid_until])
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// What the LAN should have now.
    pub fn assigned(&self, now: Instant) -> (Vec<Assigned>, Vec<Skip>) {
        let mut assigned: Vec<Assigned> = Vec::new();
        let mut skipped = Vec::new();
        for t in self.tracked.iter().filter(|t| alive(t.valid_until, now)) {
            let lan = match carve(t.prefix, &self.settings) {
                Ok(subnet) => subnet.map(|s| (s, lan_address(s, &self.settings))),
                Err(skip) => {
                    if !t.withdrawn {
                        skipped.push(skip);
                    }
                    // The LAN gets none of it, but the prefix is still
                    // routed here: its unreachable route stays (RFC 7084
                    // WPD-5; else packets to it loop between B4 and ISP),
                    // as with ip6assign 0.
                    None
                }
            };
            let mut route = true;
            if !t.withdrawn {
                if let Some(other) = assigned.iter().find(|a| a.delegated.overlaps(&t.prefix)) {
                    skipped.push(Skip::Overlaps {
                        prefix: t.prefix,
                        with: other.delegated,
                    });
                    continue;
                }
            } else {
                // Renumbered into an overlapping prefix: the new one owns
                // the same LAN subnet if they share it, and its route covers
                // the old prefix if it contains it.
                let same_lan =
                    |a: &Assigned| lan.is_some() && a.lan.map(|l| l.0) == lan.map(|l| l.0);
                if assigned.iter().any(same_lan) {
                    continue;
                }
                route = !assigned
                    .iter()
                    .any(|a| !a.withdrawn && a.route && a.delegated.contains(&t.prefix));
            }
            let valid = seconds(t.valid_until, now);
            // RFC 8415 §21.22: preferred never exceeds valid (a server that
            // says otherwise gets the valid lifetime for both).
            let preferred = match t.withdrawn {
                true => 0,
                false => seconds(t.preferred_until, now).min(valid),
            };
            assigned.push(Assigned {
                delegated: t.prefix,
                lan,
                preferred,
                valid,
                withdrawn: t.withdrawn,
                route,
            });
        }
        (assigned, skipped)
    }

    /// One reconcile round. `settling`: just started and DHCPv6 has not
    /// answered yet, so what a previous run left is kept, not removed.
    pub fn plan(&self, now: Instant, observed: &Observed, settling: bool, lan_name: &str) -> Plan {
        let (assigned, mut skipped) = self.assigned(now);
        let mut ops = Vec::new();
        let Some((index, addresses)) = &observed.lan else {
            // No LAN address without its device; the unreachable route for
            // the delegated prefix all the same (RFC 7084 WPD-5): without
            // it, packets the ISP routes to the prefix follow the default
            // route back to the ISP, and loop until their hop limit ends.
            if !assigned.is_empty() {
                skipped.push(Skip::NoLanDevice(lan_name.to_string()));
            }
            for a in assigned.iter().filter(|a| a.route) {
                if !observed.routes.iter().any(|r| r.dst == a.delegated) {
                    ops.push(Op::AddUnreachableRoute { dst: a.delegated });
                }
            }
            // And the routes of prefixes gone from the lease meanwhile.
            if !settling {
                ops.extend(leftovers(
                    &self.settings,
                    0,
                    &[],
                    &observed.routes,
                    &assigned,
                    false,
                ));
            }
            return Plan {
                ops,
                assigned: Vec::new(),
                skipped,
            };
        };
        for a in &assigned {
            if let Some((subnet, addr)) = a.lan {
                let present = addresses
                    .iter()
                    .find(|k| k.addr == addr && k.prefix_len == subnet.len);
                let stale = present.is_none_or(|k| {
                    lifetime_differs(k.valid, a.valid) || lifetime_differs(k.preferred, a.preferred)
                });
                // New lifetimes on a present address are fine either way.
                if stale && (present.is_some() || observed.lan_ready) {
                    ops.push(Op::SetAddress {
                        index: *index,
                        addr,
                        prefix_len: subnet.len,
                        preferred: a.preferred,
                        valid: a.valid,
                    });
                }
            }
            if a.route && !observed.routes.iter().any(|r| r.dst == a.delegated) {
                ops.push(Op::AddUnreachableRoute { dst: a.delegated });
            }
        }
        if !settling {
            ops.extend(leftovers(
                &self.settings,
                *index,
                addresses,
                &observed.routes,
                &assigned,
                false,
            ));
        }
        Plan {
            ops,
            assigned,
            skipped,
        }
    }
}

/// b4d's addresses and routes in the kernel that `assigned` does not want.
/// Unless `stopping`, such an address (left by a previous run, or outliving
/// what b4d remembers by a rounding) is deprecated rather than removed:
/// preferred 0, valid what the kernel has left, at most two hours, its route
/// kept until the kernel drops it, as for a prefix that leaves the lease
/// (RFC 7084 L-13, RFC 8978 §3: an RA daemon advertising the bridge's
/// prefixes then tells the hosts the prefix is going).
fn leftovers(
    settings: &Settings,
    index: u32,
    addresses: &[KernelAddress],
    routes: &[KernelRoute],
    assigned: &[Assigned],
    stopping: bool,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut deprecated = Vec::new();
    for k in addresses.iter().filter(|k| settings.is_ours(k, routes)) {
        let wanted = assigned.iter().any(|a| {
            a.lan
                .is_some_and(|(s, addr)| addr == k.addr && s.len == k.prefix_len)
        });
        if wanted {
            continue;
        }
        let valid = k.valid.min(RETIRED_VALID_AT_MOST.as_secs() as u32);
        // Valid 0: the kernel is about to drop it (and refuses to set it).
        if stopping || valid == 0 {
            ops.push(Op::RemoveAddress {
                index,
                addr: k.addr,
                prefix_len: k.prefix_len,
            });
            continue;
        }
        deprecated.push(k.addr);
        if k.preferred != 0 || k.valid != valid {
            ops.push(Op::SetAddress {
                index,
                addr: k.addr,
                prefix_len: k.prefix_len,
                preferred: 0,
                valid,
            });
        }
    }
    for r in routes {
        let wanted = assigned.iter().any(|a| a.route && a.delegated == r.dst)
            || deprecated.iter().any(|&addr| r.dst.contains_addr(addr));
        if !wanted {
            ops.push(Op::RemoveUnreachableRoute { dst: r.dst });
        }
    }
    ops
}

/// Everything b4d made on the LAN side, for a graceful stop.
pub fn stop(settings: &Settings, observed: &Observed) -> Vec<Op> {
    let (index, addresses) = match &observed.lan {
        Some((index, addresses)) => (*index, addresses.as_slice()),
        None => (0, &[][..]),
    };
    leftovers(settings, index, addresses, &observed.routes, &[], true)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
