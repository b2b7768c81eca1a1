//! What the client holds: leased addresses and prefixes with absolute
//! deadlines, and the configuration options the server gave.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::wire::{IaAddress, IaPrefix, INFINITY};

/// An absolute deadline derived from a lifetime; `None` is "infinity"
/// (RFC 8415 §7.7: 0xffffffff).
pub type Deadline = Option<Instant>;

/// Converts a lifetime in seconds received at `now` into a deadline.
pub fn deadline(now: Instant, seconds: u32) -> Deadline {
    if seconds == INFINITY {
        None
    } else {
        now.checked_add(Duration::from_secs(u64::from(seconds)))
    }
}

/// How long an address or prefix that left the lease (renumbering, or the
/// server sending valid 0) stays usable, deprecated, on the LAN and in what
/// b4d reports: what it had left, at most two hours (RFC 7084 L-13, RFC 9096
/// §3, the two hours of RFC 4862 §5.5.3 e), so hosts move to the new prefix
/// without losing running connections at once.
pub const RETIRED_VALID_AT_MOST: Duration = Duration::from_secs(2 * 3600);

/// The valid-lifetime end of something that left the lease at `now` with
/// `valid_until`; `None` when nothing of it is left.
pub fn retired_valid_until(valid_until: Deadline, now: Instant) -> Deadline {
    let cap = now + RETIRED_VALID_AT_MOST;
    let until = valid_until.map_or(cap, |t| t.min(cap));
    (until > now).then_some(until)
}

/// Seconds left until `deadline` at `now`; `None` for infinity.
pub fn remaining(deadline: Deadline, now: Instant) -> Option<u64> {
    deadline.map(|d| d.saturating_duration_since(now).as_secs())
}

fn fmt_lifetime(f: &mut fmt::Formatter<'_>, d: Deadline, now: Instant) -> fmt::Result {
    match remaining(d, now) {
        Some(s) => write!(f, "{s}s"),
        None => write!(f, "infinite"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedAddress {
    pub addr: Ipv6Addr,
    pub preferred_until: Deadline,
    pub valid_until: Deadline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedPrefix {
    pub prefix: Ipv6Addr,
    pub len: u8,
    pub preferred_until: Deadline,
    pub valid_until: Deadline,
}

impl LeasedAddress {
    pub fn from_wire(a: &IaAddress, now: Instant) -> Self {
        LeasedAddress {
            addr: a.addr,
            preferred_until: deadline(now, a.preferred),
            valid_until: deadline(now, a.valid),
        }
    }
}

impl DelegatedPrefix {
    pub fn from_wire(p: &IaPrefix, now: Instant) -> Self {
        DelegatedPrefix {
            prefix: p.prefix,
            len: p.len,
            preferred_until: deadline(now, p.preferred),
            valid_until: deadline(now, p.valid),
        }
    }
}

/// A displayable view of addresses or prefixes with their lifetimes at `now`.
pub struct WithLifetimes<'a, T>(pub &'a [T], pub Instant);

impl fmt::Display for WithLifetimes<'_, LeasedAddress> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{} (preferred ", a.addr)?;
            fmt_lifetime(f, a.preferred_until, self.1)?;
            write!(f, ", valid ")?;
            fmt_lifetime(f, a.valid_until, self.1)?;
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl fmt::Display for WithLifetimes<'_, DelegatedPrefix> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{}/{} (preferred ", p.prefix, p.len)?;
            fmt_lifetime(f, p.preferred_until, self.1)?;
            write!(f, ", valid ")?;
            fmt_lifetime(f, p.valid_until, self.1)?;
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// A binding with one server (RFC 8415 §4.2 "binding").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub server_id: Vec<u8>,
    pub server_addr: Ipv6Addr,
    /// When the last Reply that created or extended the binding arrived.
    pub updated: Instant,
    pub t1: Deadline,
    pub t2: Deadline,
    pub addresses: Vec<LeasedAddress>,
    pub prefixes: Vec<DelegatedPrefix>,
}

impl Lease {
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.prefixes.is_empty()
    }

    /// The earliest time at which some address or prefix stops being valid.
    pub fn next_expiry(&self) -> Deadline {
        self.addresses
            .iter()
            .filter_map(|a| a.valid_until)
            .chain(self.prefixes.iter().filter_map(|p| p.valid_until))
            .min()
    }

    /// The time at which every address and prefix has expired (the end of
    /// Rebind, RFC 8415 §18.2.5); `None` when something lives forever.
    pub fn last_expiry(&self) -> Deadline {
        let all: Vec<Deadline> = self
            .addresses
            .iter()
            .map(|a| a.valid_until)
            .chain(self.prefixes.iter().map(|p| p.valid_until))
            .collect();
        if all.iter().any(Option::is_none) {
            return None;
        }
        all.into_iter().flatten().max()
    }

    /// Drops everything whose valid lifetime has passed; true if anything went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.addresses.len() + self.prefixes.len();
        self.addresses
            .retain(|a| a.valid_until.is_none_or(|t| t > now));
        self.prefixes
            .retain(|p| p.valid_until.is_none_or(|t| t > now));
        before != self.addresses.len() + self.prefixes.len()
    }
}

/// Configuration options from the server (RFC 3646, RFC 6334).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    pub dns_servers: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    /// The AFTR's FQDN from option 64, lower case, no trailing dot.
    pub aftr_name: Option<String>,
}
