//! The DHCPv4 server (RFC 2131) as a sans-I/O state machine.
//!
//! The driver feeds it `(now, Input)` with `now` in Unix seconds (leases are
//! persisted in wall-clock time, as dnsmasq does) and executes the returned
//! [`Action`]s; `poll_timeout()` says when the next lease expires. Actions
//! come in the order they must happen: `Persist` precedes the `Send` of the
//! DHCPACK that depends on it, so an acknowledged lease is on disk first.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use log::{debug, info, warn};

use super::leases::{self, format_mac, ClientKey, Lease, LeaseStore, TimeBase};
use super::pool::Pool;
use super::wire::{self, Reply, ReplyOption, Request, WireError};
use super::LeaseInfo;
use crate::lan4::Ipv4Subnet;

/// How long an offered address stays reserved for the client it was
/// offered to (RFC 2131 §4.3.1 lets the server decide; clients answer an
/// OFFER within seconds).
pub const OFFER_HOLD_SECS: u64 = 30;
/// RFC 2131 §4.3.3: a declined address must not be handed out again for a
/// while; 10 minutes as in dnsmasq.
pub const DECLINE_QUARANTINE_SECS: u64 = 600;
/// Per-MAC rate limit: at most this many messages per second are answered.
/// A well-behaved client sends about one per second while it is starting.
pub const MAX_MESSAGES_PER_MAC_PER_SEC: u16 = 8;
/// Bound of the rate-limit table (MACs seen in the current second).
pub const RATE_TABLE_MAX: usize = 4096;
/// Bound of the leases kept aside from another subnet (see `parked`).
pub const MAX_PARKED: usize = 4096;

/// A static lease from a `host` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticLease {
    pub mac: [u8; 6],
    /// When set, a client sending this client identifier gets the address
    /// whatever its MAC.
    pub client_id: Option<Vec<u8>>,
    pub ip: Ipv4Addr,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The LAN subnet; its address is the server identifier, router and
    /// DNS server (the b4d DNS proxy).
    pub lan: Ipv4Subnet,
    pub pool_first: Ipv4Addr,
    pub pool_last: Ipv4Addr,
    pub lease_secs: u32,
    /// Option 15 and 119; `None` sends neither.
    pub domain: Option<String>,
    /// Option 26, only when configured.
    pub mtu: Option<u16>,
    pub statics: Vec<StaticLease>,
}

impl ServerConfig {
    fn server_ip(&self) -> Ipv4Addr {
        self.lan.address()
    }
}

/// What the driver gives the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// A datagram received on UDP port 67 of the LAN device.
    Received { bytes: &'a [u8] },
    /// `poll_timeout()` has passed.
    Timeout,
    /// The LAN device's neighbour table now: each IPv4 address the kernel
    /// has a MAC for (reachable, stale, probing or permanent entries). A
    /// pool address there under another device's MAC, with no lease record,
    /// is in use (a NAS or printer given a fixed address inside the pool)
    /// and is not offered while others are free: dnsmasq pings an address before
    /// offering it for the same reason; the table answers without a wait,
    /// and for devices whose firewall drops pings.
    Neighbors(&'a [(Ipv4Addr, [u8; 6])]),
}

/// Where a reply goes (RFC 2131 §4.1, "a server ... sends").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:68.
    Broadcast,
    /// The client has a working address (ciaddr): ip:68.
    Unicast(Ipv4Addr),
    /// The client has no address yet and did not ask for broadcast: unicast
    /// to `ip` at `mac`, which needs an ARP entry the client cannot answer
    /// for (RFC 2131 §4.1, fourth paragraph).
    UnicastToHardware { ip: Ipv4Addr, mac: [u8; 6] },
    /// A relay agent on the LAN subnet (giaddr): ip:67. Load generators
    /// such as perfdhcp act as one.
    Relay(Ipv4Addr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: Destination,
        bytes: Vec<u8>,
        /// A DHCPACK of a lease (not one to INFORM): it may go out only
        /// once the lease file holds the lease.
        needs_file: bool,
    },
    /// Write the lease file now ([`Server::write_lease_file`]).
    Persist,
    /// The lease list changed: publish [`Server::lease_list`].
    LeasesChanged,
}

/// Why a message got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    Malformed(WireError),
    /// More than [`MAX_MESSAGES_PER_MAC_PER_SEC`] from one MAC.
    RateLimited,
    /// Came through a relay (giaddr set) from another subnet: b4d serves
    /// only its own LAN.
    Relayed,
    /// A server-only message type (OFFER, ACK, NAK) or an unknown one.
    UnexpectedType,
    /// A REQUEST or DECLINE naming no address.
    NoAddress,
    /// The client chose another server (RFC 2131 §4.3.2, SELECTING).
    OtherServer,
    /// RELEASE or DECLINE for a lease this client does not hold.
    NoSuchLease,
    /// No free address for a DISCOVER.
    PoolExhausted,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed(e) => e.name(),
            DropReason::RateLimited => "rate-limited",
            DropReason::Relayed => "relayed",
            DropReason::UnexpectedType => "unexpected-type",
            DropReason::NoAddress => "no-address",
            DropReason::OtherServer => "other-server",
            DropReason::NoSuchLease => "no-such-lease",
            DropReason::PoolExhausted => "pool-exhausted",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters and pool figures, for ubus and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStatus {
    pub received: MessageCounters,
    pub sent_offer: u64,
    pub sent_ack: u64,
    pub sent_nak: u64,
    /// Per reason, by [`DropReason::name`].
    pub dropped: BTreeMap<&'static str, u64>,
    /// DISCOVERs that found no free address.
    pub pool_exhausted: u64,
    /// Live offers taken back to serve a newer DISCOVER when the pool was full.
    pub offers_evicted: u64,
    pub pool_size: u32,
    /// Pool addresses actively leased, offered (offer not yet expired) or
    /// quarantined.
    pub pool_used: u32,
    pub active_leases: u32,
    pub quarantined: u32,
    /// Lines of the lease file that could not be read at start.
    pub bad_lease_file_lines: u64,
    /// The LAN subnet served: the server's address and prefix.
    pub subnet: Option<Ipv4Subnet>,
    /// Why the server is not serving (port 67 held by another server); set
    /// by the driver, the core knows nothing of sockets.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCounters {
    pub discover: u64,
    pub request: u64,
    pub decline: u64,
    pub release: u64,
    pub inform: u64,
}

#[derive(Debug, Clone)]
struct Offer {
    client: ClientKey,
    expires: u64,
}

struct RateWindow {
    second: u64,
    count: u16,
}

/// What a REQUEST asks for, by client state (RFC 2131 §4.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Selecting,
    InitReboot,
    /// RENEWING (unicast) or REBINDING (broadcast): handled alike.
    Extending,
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::Selecting => "selecting",
            RequestKind::InitReboot => "init-reboot",
            RequestKind::Extending => "renewing",
        })
    }
}

pub struct Server {
    config: ServerConfig,
    pool: Pool,
    leases: LeaseStore,
    /// Active leases the configuration no longer serves (the LAN moved: a
    /// followed address or its mask changed, the pool or a host entry
    /// changed; or a restart with another configuration): not served,
    /// listed or counted, but kept in the lease file until they expire, so
    /// that a move back (LuCI's apply rolled back after 90 s) restores them
    /// rather than handing their addresses to newcomers while clients
    /// still use them. None is in the pool served now, or a host entry's or
    /// the router's address. The newest [`MAX_PARKED`].
    parked: Vec<Lease>,
    offers: BTreeMap<Ipv4Addr, Offer>,
    offer_by_client: HashMap<ClientKey, Ipv4Addr>,
    quarantine: BTreeMap<Ipv4Addr, u64>,
    /// Pool addresses in the neighbour table, with the MAC there
    /// ([`Input::Neighbors`]), sorted by address.
    neighbors: Vec<(Ipv4Addr, [u8; 6])>,
    rate: HashMap<[u8; 6], RateWindow>,
    status: ServerStatus,
    /// Set while the pool is full, so exhaustion is logged once per episode.
    exhausted_logged: bool,
    /// Expiries up to this time have been reported.
    expiries_reported_upto: u64,
}

impl Server {
    /// A server holding `restored` leases (from the lease file). Leases
    /// outside the pool (and not on a host entry's address) are parked,
    /// expired ones and the router's own address dropped; for duplicates the
    /// later expiry wins.
    pub fn new(config: ServerConfig, mut restored: Vec<Lease>, now: u64) -> Server {
        let pool = Pool::new(config.pool_first, config.pool_last);
        let mut server = Server {
            status: ServerStatus {
                pool_size: pool.len(),
                subnet: Some(config.lan),
                ..ServerStatus::default()
            },
            pool,
            config,
            leases: LeaseStore::default(),
            parked: Vec::new(),
            offers: BTreeMap::new(),
            offer_by_client: HashMap::new(),
            quarantine: BTreeMap::new(),
            neighbors: Vec::new(),
            rate: HashMap::new(),
            exhausted_logged: false,
            expiries_reported_upto: now,
        };
        for ip in server.config.statics.iter().map(|s| s.ip) {
            server.pool.set_occupied(ip, true);
        }
        let own = server.config.server_ip();
        server.pool.set_occupied(own, true);
        restored.sort_by_key(|l| l.expires);
        for lease in restored {
            // No lease lasts longer than 2^32 s (RFC 2131 §3.3): a later
            // expiry is a damaged or hand-edited file.
            let sane = lease.is_active(now) && lease.expires - now <= u64::from(u32::MAX);
            if !sane {
                continue;
            }
            if lease.ip == own {
                continue;
            }
            // A lease on a host entry's address is kept too: either the
            // entry's own device holds it (its name stays in the LAN's DNS
            // across the restart), or another device still uses it (the
            // entry was added, or its MAC changed, while that lease ran).
            // The record is what keeps the entry's device on a pool address
            // meanwhile (`static_held_by_another`) instead of a second
            // device on the same address; the holder gets a DHCPNAK at its
            // next renewal and moves to the pool.
            if server.pool.contains(lease.ip) || server.is_static_ip(lease.ip) {
                let ip = lease.ip;
                if let Some(gone) = server.leases.insert(lease) {
                    server.refresh(gone);
                }
                server.refresh(ip);
            } else {
                // Outside what is served now (another subnet, a pool that
                // moved with a wider mask or shrank): never handed out from
                // this pool, so kept for a move back.
                server.parked.push(lease);
            }
        }
        // Sorted by expiry: the ones that last longest stay.
        let excess = server.parked.len().saturating_sub(MAX_PARKED);
        server.parked.drain(..excess);
        server
    }

    /// Serves a changed subnet or pool (the LAN device's address moved):
    /// as a restart with the new configuration would, it serves the leases
    /// that fit and parks the rest (their clients get a DHCPNAK when they
    /// next ask, RFC 2131 §4.3.2, and start over); offers and quarantine
    /// end with the old pool. Counters carry on.
    pub fn reconfigure(&mut self, config: ServerConfig, now: u64) -> Vec<Action> {
        let leases = (self.leases.iter().cloned())
            .chain(self.parked.drain(..))
            .collect();
        let counters = std::mem::take(&mut self.status);
        let rate = std::mem::take(&mut self.rate);
        let neighbors = std::mem::take(&mut self.neighbors);
        *self = Server::new(config, leases, now);
        self.handle(now, Input::Neighbors(&neighbors));
        self.status = ServerStatus {
            pool_size: self.status.pool_size,
            subnet: self.status.subnet,
            ..counters
        };
        self.rate = rate;
        vec![Action::Persist, Action::LeasesChanged]
    }

    /// How many leases are parked (see `parked`).
    pub fn parked_leases(&self) -> usize {
        self.parked.len()
    }

    /// Counters and current pool figures.
    pub fn status(&mut self, now: u64) -> &ServerStatus {
        self.update_figures(now);
        &self.status
    }

    /// Recorded at start by the driver.
    pub fn count_bad_lease_file_lines(&mut self, n: usize) {
        self.status.bad_lease_file_lines += n as u64;
    }

    /// When `handle(_, Input::Timeout)` is next due: the next lease expiry.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.leases.next_expiry_after(self.expiries_reported_upto)
    }

    pub fn handle(&mut self, now: u64, input: Input<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Received { bytes } => self.receive(now, bytes, &mut actions),
            Input::Timeout => {}
            Input::Neighbors(table) => {
                self.neighbors.clear();
                (self.neighbors).extend(table.iter().filter(|(ip, _)| self.pool.contains(*ip)));
                self.neighbors.sort_unstable_by_key(|&(ip, _)| ip);
            }
        }
        // Expired leases leave the published list (and the file).
        if self
            .leases
            .any_expired_between(self.expiries_reported_upto, now)
        {
            debug!("DHCPv4: leases expired");
            push_once(&mut actions, Action::Persist);
            push_once(&mut actions, Action::LeasesChanged);
        }
        self.expiries_reported_upto = self.expiries_reported_upto.max(now);
        // Persist first: an ACK must never be sent for a lease not on disk.
        actions.sort_by_key(|a| match a {
            Action::Persist => 0,
            Action::LeasesChanged => 1,
            Action::Send { .. } => 2,
        });
        actions
    }

    /// What the lease file holds now, its times mapped by `base`.
    pub fn lease_file_contents(&self, now: u64, base: &TimeBase) -> String {
        leases::serialize(self.leases.iter().chain(&self.parked), now, base)
    }

    /// Streams the lease file's text into `out`, its times mapped by `base`.
    pub fn write_lease_file(
        &self,
        out: &mut impl std::io::Write,
        now: u64,
        base: &TimeBase,
    ) -> std::io::Result<()> {
        leases::write_leases(out, self.leases.iter().chain(&self.parked), now, base)
    }

    /// Active dynamic leases plus every static host (with the name it was
    /// configured with or, failing that, the one its client sent).
    pub fn lease_list(&self, now: u64) -> Arc<Vec<LeaseInfo>> {
        let mut list: Vec<LeaseInfo> = self
            .config
            .statics
            .iter()
            .map(|s| LeaseInfo {
                mac: s.mac,
                ip: s.ip,
                hostname: s.name.clone().or_else(|| {
                    (self.leases.by_ip(s.ip))
                        .filter(|l| self.is_own_static(l))
                        .and_then(|l| l.hostname.clone())
                }),
                expires: 0,
                is_static: true,
            })
            .collect();
        list.extend(
            self.leases
                .iter()
                .filter(|l| l.is_active(now) && !self.is_own_static(l))
                .map(|l| LeaseInfo {
                    mac: l.mac,
                    ip: l.ip,
                    hostname: l.hostname.clone(),
                    expires: l.expires,
                    is_static: false,
                }),
        );
        Arc::new(list)
    }

    /// Counts a dropped message; the first of each kind that points at a
    /// misbehaving or misconfigured sender is logged, later ones only counted.
    fn drop_message(&mut self, reason: DropReason) {
        let count = self.status.dropped.entry(reason.name()).or_default();
        *count += 1;
        let worth_a_line = matches!(
            reason,
            DropReason::Malformed(_) | DropReason::RateLimited | DropReason::Relayed
        );
        if *count == 1 && worth_a_line {
            info!("DHCPv4: dropped a message ({reason}); further ones are only counted");
        }
    }

    fn receive(&mut self, now: u64, bytes: &[u8], actions: &mut Vec<Action>) {
        let request = match wire::decode(bytes) {
            Ok(r) => r,
            Err(e) => return self.drop_message(DropReason::Malformed(e)),
        };
        if !self.within_rate(now, request.chaddr) {
            return self.drop_message(DropReason::RateLimited);
        }
        if !request.giaddr.is_unspecified() && !self.config.lan.contains(request.giaddr) {
            return self.drop_message(DropReason::Relayed);
        }
        let outcome = match request.message_type {
            wire::DHCPDISCOVER => {
                self.status.received.discover += 1;
                self.discover(now, &request)
            }
            wire::DHCPREQUEST => {
                self.status.received.request += 1;
                self.request(now, &request, actions)
            }
            wire::DHCPDECLINE => {
                self.status.received.decline += 1;
                self.decline(now, &request, actions)
            }
            wire::DHCPRELEASE => {
                self.status.received.release += 1;
                self.release(now, &request, actions)
            }
            wire::DHCPINFORM => {
                self.status.received.inform += 1;
                Ok(Some(self.reply(
                    &request,
                    wire::DHCPACK,
                    request.ciaddr,
                    None,
                )))
            }
            _ => Err(DropReason::UnexpectedType),
        };
        match outcome {
            Ok(Some((to, reply))) => {
                match reply.message_type {
                    wire::DHCPOFFER => self.status.sent_offer += 1,
                    wire::DHCPACK => self.status.sent_ack += 1,
                    _ => self.status.sent_nak += 1,
                }
                let limit = request
                    .max_message_size
                    .map_or(wire::MIN_MAX_MESSAGE, |m| usize::from(m).saturating_sub(28));
                let limit = match self.config.mtu {
                    Some(mtu) => limit.min(usize::from(mtu).saturating_sub(28)),
                    None => limit,
                };
                actions.push(Action::Send {
                    to,
                    bytes: reply.encode(limit),
                    needs_file: reply.message_type == wire::DHCPACK
                        && !reply.yiaddr.is_unspecified(),
                });
            }
            Ok(None) => {}
            Err(reason) => self.drop_message(reason),
        }
    }

    /// Per-MAC token window; the table is bounded, and when a flood of
    /// random MACs fills it, it is simply started afresh (each of those
    /// MACs sends once, so forgetting them loses nothing).
    fn within_rate(&mut self, now: u64, mac: [u8; 6]) -> bool {
        if self.rate.len() >= RATE_TABLE_MAX && !self.rate.contains_key(&mac) {
            self.rate.retain(|_, w| w.second == now);
            if self.rate.len() >= RATE_TABLE_MAX {
                self.rate.clear();
            }
        }
        let window = self.rate.entry(mac).or_insert(RateWindow {
            second: now,
            count: 0,
        });
        if window.second != now {
            *window = RateWindow {
                second: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
        window.count <= MAX_MESSAGES_PER_MAC_PER_SEC
    }

    fn static_for(&self, client: &ClientKey, mac: [u8; 6]) -> Option<&StaticLease> {
        let by_id = client.client_id().and_then(|id| {
            self.config
                .statics
                .iter()
                .find(|s| s.client_id.as_deref() == Some(id))
        });
        by_id.or_else(|| self.config.statics.iter().find(|s| s.mac == mac))
    }

    /// The client's static lease, unless another device holds its address
    /// now or it was declined recently. A host entry with both a client id
    /// and a MAC can match two devices, and the second must not get the
    /// first one's address; a declined one is in use by some other machine
    /// (RFC 2131 §4.3.3: not available). Either way the client is served
    /// from the pool instead, as dnsmasq does.
    fn usable_static_for(
        &self,
        now: u64,
        client: &ClientKey,
        mac: [u8; 6],
    ) -> Option<&StaticLease> {
        self.static_for(client, mac).filter(|s| {
            !self.is_quarantined(s.ip, now) && !self.static_held_by_another(s, client, now)
        })
    }

    /// Whether a device other than `client` holds host entry `s`'s address.
    /// An entry matched by MAC alone is the machine's whatever client id it
    /// sends: a dual-boot PC, or a PXE ROM then its OS, sends one in one
    /// system and none in the other, and its lease of the other system is
    /// its own.
    fn static_held_by_another(&self, s: &StaticLease, client: &ClientKey, now: u64) -> bool {
        (self.leases.by_ip(s.ip)).is_some_and(|l| {
            l.is_active(now) && &l.client != client && (s.client_id.is_some() || l.mac != s.mac)
        })
    }

    /// Whether the neighbour table has `ip` at another device than `mac`,
    /// for an address no lease record (active or expired) is about: the
    /// leases decide for theirs. The MAC behind an address can differ from
    /// its client's chaddr (OpenWrt's relayd and Wi-Fi extenders answer
    /// ARP with their own), and such a client must keep its address.
    fn used_by_another(&self, ip: Ipv4Addr, mac: [u8; 6]) -> bool {
        if self.leases.by_ip(ip).is_some() {
            return false;
        }
        (self.neighbors.binary_search_by_key(&ip, |&(ip, _)| ip))
            .is_ok_and(|i| self.neighbors[i].1 != mac)
    }

    /// Whether someone other than `client` holds an active lease on `ip`.
    fn leased_to_another(&self, ip: Ipv4Addr, client: &ClientKey, now: u64) -> bool {
        (self.leases.by_ip(ip)).is_some_and(|l| &l.client != client && l.is_active(now))
    }

    /// Whether `lease` is a host entry's device on that entry's address
    /// (listed as the entry), not another device still holding it.
    fn is_own_static(&self, lease: &Lease) -> bool {
        self.static_for(&lease.client, lease.mac)
            .is_some_and(|s| s.ip == lease.ip)
    }

    fn is_static_ip(&self, ip: Ipv4Addr) -> bool {
        self.config.statics.iter().any(|s| s.ip == ip)
    }

    fn is_quarantined(&self, ip: Ipv4Addr, now: u64) -> bool {
        self.quarantine.get(&ip).is_some_and(|&until| until > now)
    }

    /// Recomputes an address's occupancy bit from the tables.
    fn refresh(&mut self, ip: Ipv4Addr) {
        let occupied = self.leases.by_ip(ip).is_some()
            || self.offers.contains_key(&ip)
            || self.quarantine.contains_key(&ip)
            || self.is_static_ip(ip)
            || ip == self.config.server_ip();
        self.pool.set_occupied(ip, occupied);
    }

    fn remove_offer(&mut self, ip: Ipv4Addr) {
        if let Some(offer) = self.offers.remove(&ip) {
            self.offer_by_client.remove(&offer.client);
            self.refresh(ip);
        }
    }

    fn remove_offer_of(&mut self, client: &ClientKey) {
        if let Some(ip) = self.offer_by_client.get(client).copied() {
            self.remove_offer(ip);
        }
    }

    /// Whether `ip` may be given to `client` now: in the pool, not static,
    /// not quarantined, not actively leased or live-offered to anyone else.
    fn available_for(&self, ip: Ipv4Addr, client: &ClientKey, now: u64) -> bool {
        self.pool.contains(ip)
            && ip != self.config.server_ip()
            && !self.is_static_ip(ip)
            && !self.is_quarantined(ip, now)
            && !self.leased_to_another(ip, client, now)
            && self
                .offers
                .get(&ip)
                .is_none_or(|o| &o.client == client || o.expires <= now)
    }

    /// RFC 2131 §4.3.1 address choice for a DISCOVER: the client's static
    /// address, its current or previous address, its offer, the address it
    /// asks for, a never-used one, then reclaimed ones.
    fn choose_address(
        &mut self,
        now: u64,
        client: &ClientKey,
        request: &Request,
    ) -> Option<Ipv4Addr> {
        if let Some(s) = self.usable_static_for(now, client, request.chaddr) {
            return Some(s.ip);
        }
        let candidates = [
            self.leases.by_client(client).map(|l| l.ip),
            self.offer_by_client.get(client).copied(),
            request.requested_ip,
        ];
        let mac = request.chaddr;
        if let Some(ip) = candidates
            .into_iter()
            .flatten()
            .find(|&ip| self.available_for(ip, client, now) && !self.used_by_another(ip, mac))
        {
            return Some(ip);
        }
        if let Some(ip) = (self.pool).free_for_avoiding(mac, |ip| self.used_by_another(ip, mac)) {
            return Some(ip);
        }
        // Only addresses the table shows in use are free: its entries of
        // devices long gone stay (Linux keeps them below gc_thresh1), so
        // they are the first choice now, before taking anything back.
        if let Some(ip) = self.pool.free_for(mac) {
            return Some(ip);
        }
        self.reclaim(now)
    }

    /// Frees one pool address when none is unused: an expired offer or
    /// quarantine, the longest-expired lease record, or finally the oldest
    /// live offer (offers are not leases: a DISCOVER flood must not lock real
    /// clients out).
    fn reclaim(&mut self, now: u64) -> Option<Ipv4Addr> {
        if let Some(ip) = self
            .offers
            .iter()
            .find(|(_, o)| o.expires <= now)
            .map(|(ip, _)| *ip)
        {
            self.remove_offer(ip);
            return Some(ip);
        }
        if let Some(ip) = self
            .quarantine
            .iter()
            .find(|(&ip, &t)| t <= now && !self.is_static_ip(ip))
            .map(|(ip, _)| *ip)
        {
            self.quarantine.remove(&ip);
            self.refresh(ip);
            return Some(ip);
        }
        // Only pool addresses: a static host's expired record keeps its
        // address (and learned name) for that host.
        if let Some(ip) = self.leases.oldest_expired(now, |ip| {
            !self.offers.contains_key(&ip) && !self.is_static_ip(ip)
        }) {
            self.leases.remove(ip);
            self.refresh(ip);
            return Some(ip);
        }
        let oldest_offer = self
            .offers
            .iter()
            .min_by_key(|(_, o)| o.expires)
            .map(|(ip, _)| *ip)?;
        self.status.offers_evicted += 1;
        self.remove_offer(oldest_offer);
        Some(oldest_offer)
    }

    /// One machine, two systems: a dual-boot PC, or a PXE ROM and then its
    /// OS, sends a client identifier in one and none in the other. Its
    /// active lease under the other key is its own (dnsmasq too matches by
    /// hardware address when either side has no identifier): it moves to
    /// this key, so the machine keeps its address and name instead of
    /// holding two leases. Two identifiers that differ stay two clients
    /// (RFC 2131 §4.2).
    fn adopt_lease_of_the_same_machine(&mut self, now: u64, client: &ClientKey, mac: [u8; 6]) {
        // An expired or released record of this key gives way too.
        if self
            .leases
            .by_client(client)
            .is_some_and(|l| l.is_active(now))
        {
            return;
        }
        let other = match client {
            ClientKey::Id(_) => self.leases.by_client(&ClientKey::Mac(mac)),
            ClientKey::Mac(_) => {
                (self.leases.iter()).find(|l| l.mac == mac && matches!(l.client, ClientKey::Id(_)))
            }
        };
        if let Some(lease) = other.filter(|l| l.is_active(now)) {
            let lease = Lease {
                client: client.clone(),
                ..lease.clone()
            };
            self.leases.insert(lease);
        }
    }

    fn discover(&mut self, now: u64, request: &Request) -> Outcome {
        let client = ClientKey::new(request.client_id.as_deref(), request.chaddr);
        self.adopt_lease_of_the_same_machine(now, &client, request.chaddr);
        let Some(ip) = self.choose_address(now, &client, request) else {
            self.status.pool_exhausted += 1;
            if !self.exhausted_logged {
                self.exhausted_logged = true;
                warn!(
                    "DHCPv4: pool exhausted: all {} addresses {}-{} are leased, offered or \
                     quarantined; no offer to {} (further ones are only counted)",
                    self.pool.len(),
                    self.pool.first(),
                    self.pool.last(),
                    format_mac(&request.chaddr)
                );
            }
            return Err(DropReason::PoolExhausted);
        };
        self.exhausted_logged = false;
        if !self.is_static_ip(ip) {
            self.remove_offer_of(&client);
            self.remove_offer(ip);
            self.offers.insert(
                ip,
                Offer {
                    client: client.clone(),
                    expires: now + OFFER_HOLD_SECS,
                },
            );
            self.offer_by_client.insert(client, ip);
            self.refresh(ip);
        }
        debug!("DHCPv4: offering {ip} to {}", format_mac(&request.chaddr));
        let lease_secs = self.config.lease_secs;
        Ok(Some(self.reply(
            request,
            wire::DHCPOFFER,
            ip,
            Some(lease_secs),
        )))
    }

    fn request(&mut self, now: u64, request: &Request, actions: &mut Vec<Action>) -> Outcome {
        let client = ClientKey::new(request.client_id.as_deref(), request.chaddr);
        self.adopt_lease_of_the_same_machine(now, &client, request.chaddr);
        let (kind, ip) = match (request.server_id, request.requested_ip) {
            (Some(id), _) if id != self.config.server_ip() => {
                // The client took another server's offer: ours is free again.
                self.remove_offer_of(&client);
                return Err(DropReason::OtherServer);
            }
            (Some(_), Some(ip)) => (RequestKind::Selecting, ip),
            // RFC 2131 §4.3.2 forbids the server identifier in a renewal,
            // but some embedded clients send it; with ciaddr and no
            // requested address it can only be one (dnsmasq serves it too).
            (Some(_), None) if !request.ciaddr.is_unspecified() => {
                (RequestKind::Extending, request.ciaddr)
            }
            (None, Some(ip)) if request.ciaddr.is_unspecified() => (RequestKind::InitReboot, ip),
            (None, _) if !request.ciaddr.is_unspecified() => {
                (RequestKind::Extending, request.ciaddr)
            }
            _ => return Err(DropReason::NoAddress),
        };
        match self.check_request(now, &client, request, kind, ip) {
            Ok(()) => {
                self.commit(now, client, request, ip, kind, actions);
                let lease_secs = self.config.lease_secs;
                Ok(Some(self.reply(
                    request,
                    wire::DHCPACK,
                    ip,
                    Some(lease_secs),
                )))
            }
            Err(why) => {
                info!(
                    "DHCPv4: NAK to {} ({kind}) for {ip}: {why}",
                    format_mac(&request.chaddr)
                );
                Ok(Some(self.nak(request, why)))
            }
        }
    }

    /// RFC 2131 §4.3.2. b4d is authoritative for the LAN (as OpenWrt runs
    /// dnsmasq with `--dhcp-authoritative`): a request for a free pool
    /// address by a client we have no record of (after a lost lease file) is
    /// granted, so clients keep their addresses.
    fn check_request(
        &self,
        now: u64,
        client: &ClientKey,
        request: &Request,
        kind: RequestKind,
        ip: Ipv4Addr,
    ) -> Result<(), &'static str> {
        if !self.config.lan.contains(ip) {
            return Err("not on this network");
        }
        if let Some(s) = self.usable_static_for(now, client, request.chaddr) {
            return if s.ip == ip {
                Ok(())
            } else {
                Err("the client has a different static address")
            };
        }
        if self.is_static_ip(ip) {
            return Err(if self.is_quarantined(ip, now) {
                "declined recently, quarantined"
            } else {
                "reserved for another host"
            });
        }
        if !self.pool.contains(ip) {
            return Err("outside the pool");
        }
        if kind == RequestKind::InitReboot {
            if let Some(own) = self.leases.by_client(client) {
                if own.ip != ip && own.is_active(now) {
                    return Err("the client holds a different lease");
                }
            }
            // Back after a while (a phone off for the night) to an address
            // another device has meanwhile: start over (the lease file
            // lives in RAM, so after a router reboot nothing else tells).
            if self.used_by_another(ip, request.chaddr) {
                return Err("in use by another device (neighbour table)");
            }
        }
        if self.available_for(ip, client, now) {
            Ok(())
        } else if self.is_quarantined(ip, now) {
            Err("declined recently, quarantined")
        } else {
            Err("in use by another client")
        }
    }

    fn commit(
        &mut self,
        now: u64,
        client: ClientKey,
        request: &Request,
        ip: Ipv4Addr,
        kind: RequestKind,
        actions: &mut Vec<Action>,
    ) {
        let hostname = client_hostname(request).or_else(|| {
            self.leases
                .by_ip(ip)
                .filter(|l| l.client == client)
                .and_then(|l| l.hostname.clone())
        });
        let renewal = self
            .leases
            .by_ip(ip)
            .is_some_and(|l| l.client == client && l.is_active(now) && l.hostname == hostname);
        self.remove_offer_of(&client);
        self.remove_offer(ip);
        // Granted (the quarantine was over, or a client renews what it
        // held): a record left behind would let `reclaim` hand the address
        // to someone else while this client uses it.
        self.quarantine.remove(&ip);
        let lease = Lease {
            client,
            mac: request.chaddr,
            ip,
            hostname,
            expires: now + u64::from(self.config.lease_secs),
        };
        let mac = format_mac(&request.chaddr).to_string();
        let name = lease.hostname.clone().unwrap_or_else(|| "*".into());
        if let Some(gone) = self.leases.insert(lease) {
            self.refresh(gone);
        }
        self.refresh(ip);
        if renewal {
            debug!("DHCPv4: renewed {ip} for {mac} ({name}) ({kind})");
        } else {
            info!(
                "DHCPv4: leased {ip} to {mac} ({name}) for {}s ({kind})",
                self.config.lease_secs
            );
        }
        // A renewal moves the expiry that `ubus call b4 leases` shows.
        push_once(actions, Action::LeasesChanged);
        // The file stores expiry times, so a renewal changes it too.
        push_once(actions, Action::Persist);
    }

    fn decline(&mut self, now: u64, request: &Request, actions: &mut Vec<Action>) -> Outcome {
        if request
            .server_id
            .is_some_and(|id| id != self.config.server_ip())
        {
            return Err(DropReason::OtherServer);
        }
        let ip = request.requested_ip.ok_or(DropReason::NoAddress)?;
        let client = ClientKey::new(request.client_id.as_deref(), request.chaddr);
        // Only the holder may decline, or one client could quarantine the
        // whole pool.
        let holds = self.leases.by_ip(ip).is_some_and(|l| l.client == client)
            || self.offers.get(&ip).is_some_and(|o| o.client == client);
        if !holds {
            return Err(DropReason::NoSuchLease);
        }
        warn!(
            "DHCPv4: {} declined {ip} (another host uses it); quarantined for {}s",
            format_mac(&request.chaddr),
            DECLINE_QUARANTINE_SECS
        );
        self.leases.remove(ip);
        self.remove_offer(ip);
        // A host entry's address too: its host is served from the pool
        // meanwhile, instead of a DISCOVER/DECLINE loop on the same address.
        self.quarantine.insert(ip, now + DECLINE_QUARANTINE_SECS);
        self.refresh(ip);
        push_once(actions, Action::Persist);
        push_once(actions, Action::LeasesChanged);
        Ok(None)
    }

    fn release(&mut self, now: u64, request: &Request, actions: &mut Vec<Action>) -> Outcome {
        let client = ClientKey::new(request.client_id.as_deref(), request.chaddr);
        let ip = request.ciaddr;
        match self.leases.by_ip(ip) {
            Some(l) if l.client == client && l.is_active(now) => {}
            _ => return Err(DropReason::NoSuchLease),
        }
        info!("DHCPv4: {} released {ip}", format_mac(&request.chaddr));
        // The record stays, expired, so the client gets the same address back
        // while nobody else needs it.
        self.leases.set_expiry(ip, now);
        push_once(actions, Action::Persist);
        push_once(actions, Action::LeasesChanged);
        Ok(None)
    }

    fn nak(&self, request: &Request, why: &str) -> (Destination, Reply) {
        let mut options = vec![
            required(
                wire::OPT_SERVER_ID,
                self.config.server_ip().octets().to_vec(),
            ),
            optional(wire::OPT_MESSAGE, why.as_bytes().to_vec()),
        ];
        if let Some(id) = &request.client_id {
            options.push(required(wire::OPT_CLIENT_ID, id.clone()));
        }
        // RFC 2131 §4.1: with giaddr zero a NAK is always broadcast; through
        // a relay it goes to the relay with the broadcast bit set.
        let (to, flags) = if request.giaddr.is_unspecified() {
            (Destination::Broadcast, request.flags)
        } else {
            (
                Destination::Relay(request.giaddr),
                request.flags | wire::FLAG_BROADCAST,
            )
        };
        (
            to,
            Reply {
                message_type: wire::DHCPNAK,
                xid: request.xid,
                flags,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                giaddr: request.giaddr,
                chaddr: request.chaddr,
                options,
            },
        )
    }

    /// An OFFER or ACK (`lease_secs` given) or an ACK to INFORM (`None`,
    /// RFC 2131 §4.3.5: no lease time, yiaddr zero).
    fn reply(
        &self,
        request: &Request,
        message_type: u8,
        ip: Ipv4Addr,
        lease_secs: Option<u32>,
    ) -> (Destination, Reply) {
        let c = &self.config;
        let mut options = vec![required(
            wire::OPT_SERVER_ID,
            c.server_ip().octets().to_vec(),
        )];
        if let Some(secs) = lease_secs {
            // RFC 2131 §4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
            options.push(required(wire::OPT_LEASE_TIME, secs.to_be_bytes().to_vec()));
            options.push(required(
                wire::OPT_RENEWAL_TIME,
                (secs / 2).to_be_bytes().to_vec(),
            ));
            options.push(required(
                wire::OPT_REBINDING_TIME,
                (secs / 8 * 7).to_be_bytes().to_vec(),
            ));
        }
        options.push(required(
            wire::OPT_SUBNET_MASK,
            c.lan.netmask().octets().to_vec(),
        ));
        if let Some(id) = &request.client_id {
            // RFC 6842: echo the client identifier.
            options.push(required(wire::OPT_CLIENT_ID, id.clone()));
        }
        // Without a parameter request list, send what every IPv4 host needs.
        let default_list = [
            wire::OPT_ROUTER,
            wire::OPT_DNS,
            wire::OPT_DOMAIN_NAME,
            wire::OPT_BROADCAST,
        ];
        let wanted = request.parameter_list.as_deref().unwrap_or(&default_list);
        let static_name = self
            .static_for(
                &ClientKey::new(request.client_id.as_deref(), request.chaddr),
                request.chaddr,
            )
            .filter(|s| s.ip == ip)
            .and_then(|s| s.name.clone());
        let mut seen = [false; 256];
        for &code in wanted {
            if std::mem::replace(&mut seen[usize::from(code)], true) {
                continue;
            }
            let value = match code {
                wire::OPT_ROUTER | wire::OPT_DNS => Some(c.server_ip().octets().to_vec()),
                wire::OPT_BROADCAST => Some(c.lan.broadcast().octets().to_vec()),
                wire::OPT_DOMAIN_NAME => c.domain.as_ref().map(|d| d.as_bytes().to_vec()),
                wire::OPT_DOMAIN_SEARCH => c.domain.as_deref().map(wire::dns_wire_name),
                wire::OPT_INTERFACE_MTU => c.mtu.map(|m| m.to_be_bytes().to_vec()),
                wire::OPT_HOSTNAME => static_name.as_ref().map(|n| n.as_bytes().to_vec()),
                _ => None,
            };
            if let Some(value) = value {
                options.push(optional(code, value));
            }
        }
        let to = if !request.giaddr.is_unspecified() {
            Destination::Relay(request.giaddr)
        } else if !request.ciaddr.is_unspecified() {
            Destination::Unicast(request.ciaddr)
        } else if request.broadcast_flag() || ip.is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::UnicastToHardware {
                ip,
                mac: request.chaddr,
            }
        };
        (
            to,
            Reply {
                message_type,
                xid: request.xid,
                flags: request.flags,
                ciaddr: request.ciaddr,
                yiaddr: if lease_secs.is_some() {
                    ip
                } else {
                    Ipv4Addr::UNSPECIFIED
                },
                giaddr: request.giaddr,
                chaddr: request.chaddr,
                options,
            },
        )
    }

    fn update_figures(&mut self, now: u64) {
        // O(records): only computed when the status is asked for (once per
        // batch of packets in the driver), not per message.
        let pool = &self.pool;
        let leased = self
            .leases
            .iter()
            .filter(|l| l.is_active(now) && pool.contains(l.ip) && !self.is_static_ip(l.ip))
            .count();
        let offered = self.offers.values().filter(|o| o.expires > now).count();
        // A declined host entry's address is quarantined but not the pool's.
        let quarantined_in_pool = (self.quarantine.iter())
            .filter(|&(&ip, &t)| t > now && !self.is_static_ip(ip))
            .count();
        self.status.pool_used = (leased + offered + quarantined_in_pool) as u32;
        self.status.active_leases = self.leases.active_count(now) as u32;
        self.status.quarantined = self.quarantine.values().filter(|&&t| t > now).count() as u32;
    }
}

type Outcome = Result<Option<(Destination, Reply)>, DropReason>;

fn required(code: u8, value: Vec<u8>) -> ReplyOption {
    ReplyOption {
        code,
        value,
        required: true,
    }
}

fn optional(code: u8, value: Vec<u8>) -> ReplyOption {
    ReplyOption {
        code,
        value,
        required: false,
    }
}

fn push_once(actions: &mut Vec<Action>, action: Action) {
    if !actions.contains(&action) {
        actions.push(action);
    }
}

/// A host name label (RFC 1123 §2.1): letters, digits and inner hyphens,
/// 1..=63 octets; and underscores but first, which DNS carries (RFC 2181 §11)
/// and dnsmasq accepts: ESP8266 firmware calls itself `ESP_1A2B3C`, and
/// such a device had its `.lan` name before b4d replaced dnsmasq.
pub fn valid_hostname(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_'])
        && !name.ends_with('-')
        && !RESERVED_NAMES.iter().any(|r| name.eq_ignore_ascii_case(r))
}

/// Names no LAN client may claim (OpenWrt's dnsmasq ignores them too,
/// dhcpbogushostname.conf): a client called `wpad` would become the web
/// proxy of every LAN host that auto-detects one (CERT VU#598349), and
/// `localhost` would point the loopback name at a LAN device.
const RESERVED_NAMES: [&str; 2] = ["localhost", "wpad"];

/// The client's name from option 81 (its first label) or option 12, if it
/// is a valid host name label; anything else is ignored rather than put into
/// DNS.
fn client_hostname(request: &Request) -> Option<String> {
    let from_fqdn = request
        .fqdn
        .as_deref()
        .and_then(|f| f.split('.').next())
        .map(str::to_string);
    let from_option_12 = request
        .hostname
        .as_deref()
        // Some clients (Windows among them, dnsmasq notes) end the name
        // with a NUL, which is not part of it.
        .and_then(|h| std::str::from_utf8(h.strip_suffix(&[0]).unwrap_or(h)).ok())
        .map(|h| h.split('.').next().unwrap_or(h).to_string());
    from_fqdn
        .into_iter()
        .chain(from_option_12)
        .find(|n| valid_hostname(n))
}
