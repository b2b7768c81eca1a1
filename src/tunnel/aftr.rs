//! Which AFTR the tunnel points at: the sans-I/O core of AFTR resolution.
//!
//! The name comes from DHCPv6 option 64 (RFC 6334) unless the config names
//! the AFTR itself (an address, or a name that replaces option 64). The core
//! asks its driver for lookups ([`Lookup`]), learns their outcome, keeps
//! every usable AAAA record, re-resolves when the TTL runs out, and backs off
//! exponentially with jitter after failures: today's OpenWrt chain instead
//! tears the tunnel down and retries every ~3 s forever.
//!
//! Failures are of two kinds. An authoritative "no" (NXDOMAIN, no AAAA, only
//! unusable addresses) withdraws the AFTR at once. A transient one (every
//! server timed out or answered SERVFAIL) keeps the last good addresses for
//! up to [`STALE_LIMIT`] (serve-stale, RFC 8767 §5), so a DNS outage does not
//! take IPv4 down with it.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Re-resolve no sooner than this after an answer, whatever its TTL.
pub const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Re-resolve at least this often, whatever the TTL.
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// First retry after a failure; doubles per failure up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long last good addresses stay in use while every server fails.
pub const STALE_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// An AFTR address the network reported unreachable is avoided this long
/// when another one of the answer can be used.
pub const UNREACHABLE_MEMORY: Duration = Duration::from_secs(60);
/// DNS is asked again because of unreachability at most this often (errors
/// come per packet; a spoofed stream of them costs a query per interval).
pub const UNREACHABLE_REASK: Duration = MIN_REFRESH;

/// Where the AFTR comes from, fixed by the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AftrSource {
    /// DHCPv6 option 64.
    Dhcpv6,
    /// `wan.aftr` is a name: resolve it instead of option 64.
    ConfiguredName(String),
    /// `wan.aftr` is an address: nothing to resolve.
    ConfiguredAddress(Ipv6Addr),
}

/// A lookup the driver must run: AAAA for `name` against `servers`, in
/// order, reporting back with `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub id: u64,
    pub name: String,
    pub servers: Vec<Ipv6Addr>,
}

/// How a lookup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupResult {
    Addresses {
        addresses: Vec<Ipv6Addr>,
        ttl: u32,
        server: Ipv6Addr,
    },
    /// NXDOMAIN.
    NoSuchName { server: Ipv6Addr },
    /// NOERROR without AAAA.
    NoAddresses { server: Ipv6Addr },
    /// No server gave a usable answer (timeouts, SERVFAIL, REFUSED, ...).
    AllServersFailed { detail: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Option 64 as of the latest DHCPv6 Reply (`None`: absent or lease gone).
    DhcpName(Option<String>),
    /// DNS servers to ask (DHCPv6 option 23, or the configured ones).
    Servers(Vec<Ipv6Addr>),
    /// The B4's own IPv6 addresses: an AFTR answer naming one is unusable.
    OwnAddresses(Vec<Ipv6Addr>),
    Completed {
        id: u64,
        result: LookupResult,
    },
    /// Re-resolve now (ubus `renew`, SIGUSR1), resetting the backoff.
    Refresh,
    /// The LAN DNS proxy saw a resolver answer again after it had stopped
    /// answering: if lookups are failing, try now rather than at the end of
    /// the backoff (the backoff itself stays, should this one fail too).
    DnsRecovered,
    /// An ICMPv6 error said packets from the B4 to this AFTR address are
    /// not delivered (see `super::softwire_error`). If it is the address in
    /// use: another address of the answer is used at once, and DNS is asked
    /// again (the ISP may have renumbered the AFTR before the TTL ran out).
    AftrUnreachable(Ipv6Addr),
    /// At start, the kernel holds a tunnel an earlier run left (a reload
    /// re-executes b4d; procd restarts it after a crash) to this address:
    /// that run's last answer. Until a lookup of this run answers, it is
    /// what a DNS outage keeps in use (serve-stale across the restart).
    Adopted(Ipv6Addr),
    Timeout,
}

/// Why there is no AFTR address to use, in words for status and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoName,
    NoServers {
        name: String,
    },
    NoSuchName {
        name: String,
        server: Ipv6Addr,
    },
    NoAddresses {
        name: String,
        server: Ipv6Addr,
    },
    OnlyUnusable {
        name: String,
        rejected: Vec<(Ipv6Addr, &'static str)>,
    },
    AllServersFailed {
        name: String,
        detail: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoName => {
                f.write_str("no AFTR name (DHCPv6 option 64 absent, none configured)")
            }
            Problem::NoServers { name } => {
                write!(
                    f,
                    "AFTR name {name}: no DNS servers to ask (DHCPv6 option 23 absent)"
                )
            }
            Problem::NoSuchName { name, server } => {
                write!(
                    f,
                    "AFTR name {name} does not exist (NXDOMAIN from {server})"
                )
            }
            Problem::NoAddresses { name, server } => {
                write!(
                    f,
                    "AFTR name {name} has no AAAA record (answer from {server})"
                )
            }
            Problem::OnlyUnusable { name, rejected } => {
                write!(f, "AFTR name {name} resolves only to unusable addresses:")?;
                for (addr, why) in rejected {
                    write!(f, " {addr} ({why})")?;
                }
                Ok(())
            }
            Problem::AllServersFailed { name, detail } => {
                write!(f, "AFTR name {name}: no DNS server answered ({detail})")
            }
        }
    }
}

/// What the rest of b4d (tunnel, status) sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AftrStatus {
    /// The name being resolved; `None` with a configured address.
    pub name: Option<String>,
    /// Every usable address of the latest answer, in the server's order.
    pub addresses: Vec<Ipv6Addr>,
    /// The address the tunnel uses.
    pub selected: Option<Ipv6Addr>,
    pub resolved_at: Option<Instant>,
    pub ttl: Option<u32>,
    /// The DNS server that gave the answer in use.
    pub server: Option<Ipv6Addr>,
    /// The addresses in use are from an earlier answer: resolution is failing.
    pub stale: bool,
    pub problem: Option<String>,
    pub next_attempt: Option<Instant>,
    /// Failed lookups in a row.
    pub failures: u32,
}

pub struct AftrResolver {
    source: AftrSource,
    dhcp_name: Option<String>,
    servers: Vec<Ipv6Addr>,
    own: Vec<Ipv6Addr>,
    status: AftrStatus,
    /// The lookup the driver is running, if any.
    in_flight: Option<u64>,
    /// When that lookup was asked for.
    asked_at: Option<Instant>,
    next_id: u64,
    /// A lookup to hand to the driver.
    pending: Option<Lookup>,
    /// When the next lookup is due (refresh or retry).
    due: Option<Instant>,
    /// When stale addresses must be given up.
    stale_until: Option<Instant>,
    /// The name changed: the old name's address stays in use until the
    /// first lookup of the new one ends (make before break), then goes
    /// whatever that lookup says.
    replacing: bool,
    /// Addresses reported unreachable, and when (see [`UNREACHABLE_MEMORY`]).
    unreachable: Vec<(Ipv6Addr, Instant)>,
    /// When DNS was last asked again because of that.
    unreachable_asked_at: Option<Instant>,
    /// The adopted tunnel's remote, until the first lookup ends.
    adopted: Option<Ipv6Addr>,
    rng: StdRng,
}

/// Why an address cannot be a tunnel endpoint, if it cannot.
pub fn unusable(addr: Ipv6Addr, own: &[Ipv6Addr]) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("unspecified")
    } else if addr.is_loopback() {
        Some("loopback")
    } else if addr.is_unicast_link_local() {
        Some("link-local")
    } else if addr.is_multicast() {
        Some("multicast")
    } else if addr.to_ipv4_mapped().is_some() {
        Some("IPv4-mapped")
    } else if own.contains(&addr) {
        Some("our own address")
    } else {
        None
    }
}

impl AftrResolver {
    pub fn new(source: AftrSource, seed: u64) -> Self {
        let mut resolver = AftrResolver {
            source,
            dhcp_name: None,
            servers: Vec::new(),
            own: Vec::new(),
            status: AftrStatus::default(),
            in_flight: None,
            asked_at: None,
            next_id: 1,
            pending: None,
            due: None,
            stale_until: None,
            replacing: false,
            unreachable: Vec::new(),
            unreachable_asked_at: None,
            adopted: None,
            rng: StdRng::seed_from_u64(seed),
        };
        resolver.restart(false);
        resolver
    }

    pub fn status(&self) -> &AftrStatus {
        &self.status
    }

    /// The AFTR address to use now.
    pub fn selected(&self) -> Option<Ipv6Addr> {
        self.status.selected
    }

    /// A lookup the driver should start (at most one runs at a time).
    pub fn poll_lookup(&mut self) -> Option<Lookup> {
        self.pending.take()
    }

    /// The lookup the driver runs now, if any.
    pub fn in_flight(&self) -> Option<u64> {
        self.in_flight
    }

    /// Whether a lookup waits for [`Self::poll_lookup`].
    pub fn lookup_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// When the core wants `Input::Timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.due, self.stale_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn name(&self) -> Option<String> {
        match &self.source {
            AftrSource::Dhcpv6 => self.dhcp_name.clone(),
            AftrSource::ConfiguredName(name) => Some(name.clone()),
            AftrSource::ConfiguredAddress(_) => None,
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        let in_flight_before = self.in_flight;
        self.handle_input(now, input);
        if self.in_flight.is_some() && self.in_flight != in_flight_before {
            self.asked_at = Some(now);
        }
    }

    fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::DhcpName(name) => {
                if name != self.dhcp_name {
                    let renamed = name.is_some() && self.dhcp_name.is_some();
                    self.dhcp_name = name;
                    if self.source == AftrSource::Dhcpv6 {
                        self.restart(renamed);
                    }
                }
            }
            Input::Servers(servers) => {
                if servers != self.servers {
                    self.servers = servers;
                    // New servers deserve a try at once if we are failing
                    // (or have never asked); a working answer stays until
                    // its TTL. Without a lookup running or scheduled, one
                    // was due (a TTL refresh, a new option 64 name) while
                    // there were no servers to ask: ask now, or the name
                    // would never be looked up again.
                    let unscheduled = self.due.is_none() && self.in_flight.is_none();
                    if self.status.selected.is_none() || self.status.stale || unscheduled {
                        self.status.failures = 0;
                        self.ask();
                    }
                }
            }
            Input::OwnAddresses(own) => {
                self.own = own;
                if let Some(selected) = self.status.selected {
                    if self.own.contains(&selected) {
                        self.ask();
                    }
                }
            }
            Input::Completed { id, result } => {
                if self.in_flight == Some(id) {
                    self.in_flight = None;
                    self.complete(now, result);
                }
            }
            Input::Refresh => {
                self.status.failures = 0;
                self.ask();
            }
            // A lookup asked for before the server came back may wait for
            // its whole timeout (its query met a dead server); one asked
            // for since will get the answer: not a second one then.
            Input::DnsRecovered => {
                let asked_since = self.in_flight.is_some() && self.asked_at == Some(now);
                if self.status.failures > 0 && !asked_since {
                    self.ask();
                }
            }
            Input::AftrUnreachable(addr) => {
                if self.status.selected != Some(addr)
                    || matches!(self.source, AftrSource::ConfiguredAddress(_))
                {
                    return;
                }
                self.unreachable
                    .retain(|(_, at)| now < *at + UNREACHABLE_MEMORY);
                // Remembered from the latest report: an address that keeps
                // failing stays avoided.
                match self.unreachable.iter_mut().find(|(a, _)| *a == addr) {
                    Some((_, at)) => *at = now,
                    None => self.unreachable.push((addr, now)),
                }
                if let Some(other) = self.reachable(now, &self.status.addresses) {
                    self.status.selected = Some(other);
                }
                let asked_lately = self
                    .unreachable_asked_at
                    .is_some_and(|t| now < t + UNREACHABLE_REASK);
                // Without servers there is no one to ask, and asking would
                // drop the refresh timer of the address in use (see ask).
                if !asked_lately && self.in_flight.is_none() && !self.servers.is_empty() {
                    self.unreachable_asked_at = Some(now);
                    self.ask();
                }
            }
            Input::Adopted(addr) => {
                let answered = self.status.resolved_at.is_some() || self.status.failures > 0;
                if !answered && !matches!(self.source, AftrSource::ConfiguredAddress(_)) {
                    self.adopted = Some(addr);
                }
            }
            Input::Timeout => {
                if self.stale_until.is_some_and(|t| now >= t) {
                    self.stale_until = None;
                    self.status.addresses.clear();
                    self.status.selected = None;
                    self.status.stale = false;
                }
                if self.due.is_some_and(|t| now >= t) {
                    self.due = None;
                    self.ask();
                }
            }
        }
    }

    /// The name (or the source) changed: ask anew. With `keep_current`
    /// the address in use stays until that lookup ends.
    fn restart(&mut self, keep_current: bool) {
        let previous = std::mem::take(&mut self.status);
        self.status.name = self.name();
        self.replacing = keep_current && previous.selected.is_some();
        // Another name than the one this run started with: the adopted
        // tunnel's remote was not its answer. (A name changed in the
        // config across a reload cannot be told apart: its remote serves
        // until DNS answers.)
        if keep_current {
            self.adopted = None;
        }
        if self.replacing {
            self.status.addresses = previous.addresses;
            self.status.selected = previous.selected;
        }
        self.stale_until = None;
        self.in_flight = None;
        self.pending = None;
        self.due = None;
        if let AftrSource::ConfiguredAddress(addr) = self.source {
            self.status.addresses = vec![addr];
            self.status.selected = Some(addr);
            return;
        }
        self.ask();
    }

    /// Starts a lookup now, if there is anything to look up.
    fn ask(&mut self) {
        if matches!(self.source, AftrSource::ConfiguredAddress(_)) {
            return;
        }
        let Some(name) = self.name() else {
            self.status.problem = Some(Problem::NoName.to_string());
            self.status.addresses.clear();
            self.status.selected = None;
            self.due = None;
            return;
        };
        if self.servers.is_empty() {
            // Not a failure to back off from: the servers arrive with the
            // next DHCPv6 Reply, which wakes us up.
            self.status.problem = Some(Problem::NoServers { name }.to_string());
            self.due = None;
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight = Some(id);
        self.due = None;
        self.status.next_attempt = None;
        self.pending = Some(Lookup {
            id,
            name,
            servers: self.servers.clone(),
        });
    }

    fn complete(&mut self, now: Instant, result: LookupResult) {
        let name = self.name().unwrap_or_default();
        let replacing = std::mem::take(&mut self.replacing);
        let adopted = self.adopted.take();
        let problem = match result {
            LookupResult::Addresses {
                addresses,
                ttl,
                server,
            } => {
                let mut usable = Vec::new();
                let mut rejected = Vec::new();
                for addr in addresses {
                    match unusable(addr, &self.own) {
                        None if !usable.contains(&addr) => usable.push(addr),
                        None => {}
                        Some(why) => rejected.push((addr, why)),
                    }
                }
                if usable.is_empty() {
                    Problem::OnlyUnusable { name, rejected }
                } else {
                    // Stay on the address in use while the answer still has
                    // it (re-resolving must not move the tunnel needlessly)
                    // and the network has not said it is unreachable.
                    let current = self
                        .status
                        .selected
                        .filter(|c| !replacing && usable.contains(c));
                    let selected = match current {
                        Some(c) if !self.recently_unreachable(now, c) => c,
                        _ => self
                            .reachable(now, &usable)
                            .or(current)
                            .unwrap_or(usable[0]),
                    };
                    let refresh =
                        Duration::from_secs(u64::from(ttl)).clamp(MIN_REFRESH, MAX_REFRESH);
                    self.status.addresses = usable;
                    self.status.selected = Some(selected);
                    self.status.resolved_at = Some(now);
                    self.status.ttl = Some(ttl);
                    self.status.server = Some(server);
                    self.status.stale = false;
                    self.status.problem = None;
                    self.status.failures = 0;
                    self.status.next_attempt = Some(now + refresh);
                    self.stale_until = None;
                    self.due = Some(now + refresh);
                    return;
                }
            }
            LookupResult::NoSuchName { server } => Problem::NoSuchName { name, server },
            LookupResult::NoAddresses { server } => Problem::NoAddresses { name, server },
            LookupResult::AllServersFailed { detail } => {
                let transient = Problem::AllServersFailed { name, detail };
                if let Some(addr) = adopted.filter(|_| self.status.selected.is_none()) {
                    self.status.addresses = vec![addr];
                    self.status.selected = Some(addr);
                }
                if self.status.selected.is_some() && !replacing {
                    // Keep the last good answer (RFC 8767 serve-stale).
                    if !self.status.stale {
                        self.status.stale = true;
                        self.stale_until = Some(now + STALE_LIMIT);
                    }
                    self.fail(now, transient);
                    return;
                }
                transient
            }
        };
        // An authoritative "no": the AFTR is withdrawn now.
        self.status.addresses.clear();
        self.status.selected = None;
        self.status.stale = false;
        self.stale_until = None;
        self.fail(now, problem);
    }

    fn recently_unreachable(&self, now: Instant, addr: Ipv6Addr) -> bool {
        self.unreachable
            .iter()
            .any(|(a, at)| *a == addr && now < *at + UNREACHABLE_MEMORY)
    }

    /// The first of `addresses` not reported unreachable lately.
    fn reachable(&self, now: Instant, addresses: &[Ipv6Addr]) -> Option<Ipv6Addr> {
        addresses
            .iter()
            .copied()
            .find(|a| !self.recently_unreachable(now, *a))
    }

    /// Records a failure and schedules the retry: INITIAL_BACKOFF doubling
    /// to MAX_BACKOFF, each delay randomized by ±20% so that a fleet of CPEs
    /// that lost DNS together does not retry together.
    fn fail(&mut self, now: Instant, problem: Problem) {
        self.status.failures = self.status.failures.saturating_add(1);
        let exponent = (self.status.failures - 1).min(16);
        let base = INITIAL_BACKOFF
            .saturating_mul(1 << exponent)
            .min(MAX_BACKOFF);
        let factor = self.rng.random_range(0.8..1.2);
        let delay = base.mul_f64(factor);
        self.status.problem = Some(problem.to_string());
        self.status.next_attempt = Some(now + delay);
        self.due = Some(now + delay);
    }
}

#[cfg(test)]
#[path = "aftr_tests.rs"]
mod tests;
