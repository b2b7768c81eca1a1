//! What b4d tells netifd about the WAN's DHCPv6 results, decided without I/O.
//!
//! The [`Reporter`] is fed the DHCPv6 lease and the time, and answers with the
//! `notify_proto` message to send (at most one in flight), when to try again,
//! and when a lifetime edge needs a new message. The driver around it only
//! makes the ubus call and reports the outcome.
//!
//! The message is the one `proto_send_update` of netifd-proto.sh builds (what
//! odhcp6c's dhcpv6.sh sends): `action` 0, `link-up`, `keep`, `ip6addr` tables
//! {ipaddr, mask, preferred, valid}, `ip6prefix` strings
//! "prefix/len,preferred,valid", `dns`, `dns_search`, and `interface`, in that
//! order, with the ubus CLI's blobmsg types (INT32 numbers, INT8 booleans,
//! `mask` a string). netifd (proto-shell.c, proto.c) reads them by name;
//! `keep` false means "this is the whole set": whatever an earlier message
//! carried and this one does not is removed by netifd.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::dhcpv6::lease::{
    retired_valid_until, DelegatedPrefix, Lease, LeasedAddress, NetworkInfo,
};
use crate::ubus::{Status, Table, Value};

/// netifd's object for interface calls; the interface is named in the message
/// (`_proto_notify` in netifd-proto.sh does the same).
pub const OBJECT: &str = "network.interface";
pub const METHOD: &str = "notify_proto";
/// `ubus call network.interface.<name> status`: asked once at b4d's start.
pub const STATUS_METHOD: &str = "status";
/// The protocol handler files/lib/netifd/proto/b4.sh adds.
pub const PROTO: &str = "b4";

/// netifd's own object for one interface (netifd's interface_add_ubus).
pub fn interface_object(interface: &str) -> String {
    format!("{OBJECT}.{interface}")
}

/// What netifd's `status` of the interface says that matters to b4d
/// (netifd_handle_status in netifd's ubus.c).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceState {
    /// IFS_UP.
    pub up: bool,
    /// IFS_SETUP: the handler's setup ran and netifd waits for a report.
    pub pending: bool,
    /// The interface's protocol handler: "b4", or "dhcpv6" while odhcp6c
    /// still has the WAN; "none" when netifd has no handler for the proto
    /// the config names (proto.c: proto_attach_interface).
    pub proto: Option<String>,
    /// netifd has no handler for the configured proto: its status then lists
    /// the error {subsystem "proto", code "INVALID_PROTO"}.
    pub unknown_proto: bool,
}

impl InterfaceState {
    /// `None` for an answer that is not netifd's status (no "up" flag): it
    /// says nothing about the interface.
    pub fn from_status(status: &Table) -> Option<InterfaceState> {
        let flag = |name| match status.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        };
        Some(InterfaceState {
            up: flag("up")?,
            pending: flag("pending").unwrap_or(false),
            proto: status
                .get("proto")
                .and_then(Value::as_str)
                .map(str::to_string),
            unknown_proto: has_error(status, "proto", "INVALID_PROTO"),
        })
    }
}

/// Whether netifd's status lists the error `subsystem`/`code` (its "errors"
/// array of {subsystem, code, data} tables, netifd_add_interface_errors).
fn has_error(status: &Table, subsystem: &str, code: &str) -> bool {
    let Some(Value::Array(errors)) = status.get("errors") else {
        return false;
    };
    errors.iter().any(|error| match error {
        Value::Table(error) => {
            error.get("subsystem").and_then(Value::as_str) == Some(subsystem)
                && error.get("code").and_then(Value::as_str) == Some(code)
        }
        _ => false,
    })
}

/// First retry after a failed call; doubles up to [`RETRY_MAX`]. netifd
/// answers in milliseconds when it is there; a failure means it is not (yet),
/// or is restarting.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// What netifd should have, with absolute deadlines (the message carries them
/// as seconds left at the time it is built).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub addresses: Vec<LeasedAddress>,
    pub prefixes: Vec<DelegatedPrefix>,
    pub dns: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
}

impl Snapshot {
    /// No address and no prefix: the interface has nothing to be up with.
    pub fn is_down(&self) -> bool {
        self.addresses.is_empty() && self.prefixes.is_empty()
    }
}

/// Outcome counts, for the status report and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub failed: u64,
}

/// What `ubus call b4 status` shows of the reporting (section `netifd`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetifdStatus {
    pub interface: String,
    /// netifd has the link up with b4d's addresses and prefixes.
    pub reported_up: bool,
    /// Why the last call failed, until one succeeds.
    pub last_error: Option<String>,
    pub counters: Counters,
}

#[derive(Debug)]
pub struct Reporter {
    interface: String,
    /// The lease as last fed, for noticing what left it.
    lease_addresses: Vec<LeasedAddress>,
    lease_prefixes: Vec<DelegatedPrefix>,
    info: NetworkInfo,
    /// Addresses and prefixes that left the lease, deprecated until they expire.
    retiring_addresses: Vec<LeasedAddress>,
    retiring_prefixes: Vec<DelegatedPrefix>,
    /// What netifd acknowledged last; `None` before the first success (or
    /// after a resync request, when netifd may have forgotten everything).
    acknowledged: Option<Snapshot>,
    in_flight: Option<Snapshot>,
    /// netifd restarted or tore down the interface while the call was out:
    /// its answer says nothing about what netifd has now.
    in_flight_stale: bool,
    /// netifd tore the interface down (`ifdown`, carrier lost): nothing is
    /// sent until its next setup, since netifd takes a notify_proto also
    /// while the interface is down and would hand the delegated prefix to
    /// the LAN again.
    suspended: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: Option<Status>,
    counters: Counters,
}

impl Reporter {
    pub fn new(interface: &str) -> Reporter {
        Reporter {
            interface: interface.to_string(),
            lease_addresses: Vec::new(),
            lease_prefixes: Vec::new(),
            info: NetworkInfo::default(),
            retiring_addresses: Vec::new(),
            retiring_prefixes: Vec::new(),
            acknowledged: None,
            in_flight: None,
            in_flight_stale: false,
            // At boot netifd runs the setup before b4d is there to hear it.
            suspended: false,
            retry_at: None,
            backoff: RETRY_MIN,
            last_error: None,
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn status(&self) -> NetifdStatus {
        NetifdStatus {
            interface: self.interface.clone(),
            reported_up: self.reported_up(),
            last_error: self.last_error.map(|s| s.to_string()),
            counters: self.counters,
        }
    }

    /// Whether netifd last acknowledged the link as up (with addresses or
    /// prefixes), so that stopping b4d must take it down.
    pub fn reported_up(&self) -> bool {
        self.acknowledged.as_ref().is_some_and(|s| !s.is_down())
    }

    /// The status of the last failed call, until one succeeds.
    pub fn last_error(&self) -> Option<Status> {
        self.last_error
    }

    /// The DHCPv6 binding (or its absence) and the network information.
    pub fn handle_lease(&mut self, now: Instant, lease: Option<&Lease>, info: &NetworkInfo) {
        let (addresses, prefixes) = match lease {
            Some(l) => (l.addresses.clone(), l.prefixes.clone()),
            None => (Vec::new(), Vec::new()),
        };
        if lease.is_some() {
            retire(
                now,
                &self.lease_addresses,
                &addresses,
                &mut self.retiring_addresses,
                |a| a.addr,
            );
            retire(
                now,
                &self.lease_prefixes,
                &prefixes,
                &mut self.retiring_prefixes,
                |p| (p.prefix, p.len),
            );
        } else {
            // No binding at all (expired, or the server said so): nothing of it
            // may be used any more (RFC 8415 §18.2.10.1), deprecated or not.
            self.retiring_addresses.clear();
            self.retiring_prefixes.clear();
        }
        self.lease_addresses = addresses;
        self.lease_prefixes = prefixes;
        self.info = info.clone();
    }

    /// netifd's state of the interface when b4d starts while netifd keeps
    /// running (crash respawn, reload, restart): one neither up nor being set
    /// up is down (`ifdown`, not started yet, or tearing down), and netifd
    /// would take a report then too (see `suspended`), so b4d waits for the
    /// handler's setup as after a teardown. Up, or pending (the setup ran
    /// before b4d could hear it): report as usual.
    pub fn handle_start_state(&mut self, state: &InterfaceState) {
        if !state.up && !state.pending {
            self.forget(true);
        }
    }

    /// Whether b4d waits for netifd's next setup before reporting.
    pub fn waits_for_setup(&self) -> bool {
        self.suspended
    }

    /// netifd (re)started the interface (`proto_b4_setup`): it has forgotten
    /// what it was told, so tell it again.
    pub fn handle_resync(&mut self) {
        self.forget(false);
    }

    /// netifd tore the interface down (`proto_b4_teardown`): it forgets
    /// what it was told; say nothing until the next setup.
    pub fn handle_teardown(&mut self) {
        self.forget(true);
    }

    fn forget(&mut self, suspended: bool) {
        self.suspended = suspended;
        self.acknowledged = None;
        self.in_flight_stale = self.in_flight.is_some();
        self.retry_at = None;
        self.backoff = RETRY_MIN;
    }

    /// The outcome of the call started by the last [`Reporter::poll_send`].
    pub fn handle_answer(&mut self, now: Instant, result: Result<(), Status>) {
        let Some(sent) = self.in_flight.take() else {
            return;
        };
        if std::mem::take(&mut self.in_flight_stale) {
            // Sent again at once, whatever this answer was.
            match result {
                Ok(()) => self.counters.sent += 1,
                Err(_) => self.counters.failed += 1,
            }
            return;
        }
        match result {
            Ok(()) => {
                self.counters.sent += 1;
                self.acknowledged = Some(sent);
                self.retry_at = None;
                self.backoff = RETRY_MIN;
                self.last_error = None;
            }
            Err(status) => {
                self.counters.failed += 1;
                self.last_error = Some(status);
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(RETRY_MAX);
            }
        }
    }

    /// What netifd should have at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let alive = |until: Option<Instant>| until.is_none_or(|t| t > now);
        let mut addresses: Vec<LeasedAddress> = self
            .lease_addresses
            .iter()
            .filter(|a| alive(a.valid_until))
            .cloned()
            .collect();
        let mut prefixes: Vec<DelegatedPrefix> = self
            .lease_prefixes
            .iter()
            .filter(|p| alive(p.valid_until))
            .cloned()
            .collect();
        if !addresses.is_empty() || !prefixes.is_empty() {
            addresses.extend(
                self.retiring_addresses
                    .iter()
                    .filter(|a| alive(a.valid_until))
                    .cloned(),
            );
            prefixes.extend(
                self.retiring_prefixes
                    .iter()
                    .filter(|p| alive(p.valid_until))
                    .cloned(),
            );
        }
        let down = addresses.is_empty() && prefixes.is_empty();
        Snapshot {
            addresses,
            prefixes,
            dns: if down {
                Vec::new()
            } else {
                self.info.dns_servers.clone()
            },
            domains: if down {
                Vec::new()
            } else {
                self.info.domains.clone()
            },
        }
    }

    /// The message to send now, if any: when what netifd should have differs
    /// from what it acknowledged, nothing is in flight and no retry is pending.
    /// Before the first success a "down" state is not sent: netifd starts the
    /// interface without addresses anyway.
    pub fn poll_send(&mut self, now: Instant) -> Option<Table> {
        if self.suspended || self.in_flight.is_some() || self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        self.retry_at = None;
        let wanted = self.snapshot(now);
        let unchanged = match &self.acknowledged {
            Some(acked) => *acked == wanted,
            None => wanted.is_down(),
        };
        if unchanged {
            return None;
        }
        let message = notify_message(&self.interface, &wanted, now);
        self.in_flight = Some(wanted);
        Some(message)
    }

    /// When after `now` [`Reporter::poll_send`] may have something new without
    /// any input: a retry, or a lifetime edge (an address or prefix expiring).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let expiries = self
            .lease_addresses
            .iter()
            .chain(&self.retiring_addresses)
            .filter_map(|a| a.valid_until)
            .chain(
                self.lease_prefixes
                    .iter()
                    .chain(&self.retiring_prefixes)
                    .filter_map(|p| p.valid_until),
            );
        let retry = if self.in_flight.is_none() {
            self.retry_at
        } else {
            None
        };
        expiries.chain(retry).filter(|&t| t > now).min()
    }
}

/// Moves what was in `before` and is not in `after` to `retiring` (preferred
/// now, valid for at most
/// [`RETIRED_VALID_AT_MOST`](crate::dhcpv6::lease::RETIRED_VALID_AT_MOST) more), and takes back out of
/// `retiring` whatever the lease carries again.
fn retire<T, K: PartialEq>(
    now: Instant,
    before: &[T],
    after: &[T],
    retiring: &mut Vec<T>,
    key: impl Fn(&T) -> K,
) where
    T: Clone + Lifetimes,
{
    retiring.retain(|r| !after.iter().any(|a| key(a) == key(r)));
    for gone in before
        .iter()
        .filter(|b| !after.iter().any(|a| key(a) == key(b)))
    {
        if retiring.iter().any(|r| key(r) == key(gone)) {
            continue;
        }
        if let Some(valid_until) = retired_valid_until(gone.valid_until(), now) {
            retiring.push(gone.deprecated(now, Some(valid_until)));
        }
    }
}

/// The lifetimes of a leased address or delegated prefix.
trait Lifetimes {
    fn valid_until(&self) -> Option<Instant>;
    fn deprecated(&self, now: Instant, valid_until: Option<Instant>) -> Self;
}

impl Lifetimes for LeasedAddress {
    fn valid_until(&self) -> Option<Instant> {
        self.valid_until
    }
    fn deprecated(&self, now: Instant, valid_until: Option<Instant>) -> Self {
        LeasedAddress {
            preferred_until: Some(now),
            valid_until,
            ..self.clone()
        }
    }
}

impl Lifetimes for DelegatedPrefix {
    fn valid_until(&self) -> Option<Instant> {
        self.valid_until
    }
    fn deprecated(&self, now: Instant, valid_until: Option<Instant>) -> Self {
        DelegatedPrefix {
            preferred_until: Some(now),
            valid_until,
            ..self.clone()
        }
    }
}

/// Seconds left until `until` at `now`, as netifd reads them: u32, where
/// 0xffffffff is infinite (proto.c: parse_address_item, parse_prefix_option).
fn seconds_left(until: Option<Instant>, now: Instant) -> u32 {
    match until {
        None => u32::MAX,
        Some(t) => {
            let secs = t.saturating_duration_since(now).as_secs();
            u32::try_from(secs)
                .unwrap_or(u32::MAX - 1)
                .min(u32::MAX - 1)
        }
    }
}

/// A lifetime as INT32 on the wire: netifd's policy says INT32 and reads it
/// with blobmsg_get_u32, so 0xffffffff travels as the INT32 -1 (the ubus CLI
/// would make it an INT64, which netifd's policy then ignores).
fn lifetime(until: Option<Instant>, now: Instant) -> Value {
    Value::Int32(seconds_left(until, now) as i32)
}

/// `notify_proto` for `snapshot` at `now` (see the module comment); a snapshot
/// without addresses and prefixes is "link-up": false, which netifd takes as
/// the connection lost (IFPEV_LINK_LOST) and removes what it had.
pub fn notify_message(interface: &str, snapshot: &Snapshot, now: Instant) -> Table {
    if snapshot.is_down() {
        return link_down_message(interface);
    }
    let mut msg = Table::new()
        .with("action", 0)
        .with("link-up", true)
        .with("keep", false);
    if !snapshot.addresses.is_empty() {
        let addresses = snapshot
            .addresses
            .iter()
            .map(|a| {
                Value::Table(
                    Table::new()
                        .with("ipaddr", a.addr.to_string())
                        .with("mask", "128")
                        .with("preferred", lifetime(a.preferred_until, now))
                        .with("valid", lifetime(a.valid_until, now)),
                )
            })
            .collect::<Vec<_>>();
        msg.push("ip6addr", addresses);
    }
    if !snapshot.prefixes.is_empty() {
        let prefixes = snapshot
            .prefixes
            .iter()
            .map(|p| {
                Value::String(format!(
                    "{}/{},{},{}",
                    p.prefix,
                    p.len,
                    seconds_left(p.preferred_until, now),
                    seconds_left(p.valid_until, now)
                ))
            })
            .collect::<Vec<_>>();
        msg.push("ip6prefix", prefixes);
    }
    push_strings(&mut msg, "dns", snapshot.dns.iter().map(|d| d.to_string()));
    push_strings(&mut msg, "dns_search", snapshot.domains.iter().cloned());
    msg.push("interface", interface);
    msg
}

/// The interface lost its connection (lease gone, or b4d stopping): what
/// `proto_init_update "*" 0; proto_send_update` sends.
pub fn link_down_message(interface: &str) -> Table {
    Table::new()
        .with("action", 0)
        .with("link-up", false)
        .with("keep", false)
        .with("interface", interface)
}

fn push_strings(msg: &mut Table, name: &str, items: impl Iterator<Item = String>) {
    let items: Vec<Value> = items.map(Value::String).collect();
    if !items.is_empty() {
        msg.push(name, items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn addr(s: &str, now: Instant, preferred: u64, valid: u64) -> LeasedAddress {
        LeasedAddress {
            addr: s.parse().unwrap(),
            preferred_until: Some(now + S * preferred as u32),
            valid_until: Some(now + S * valid as u32),
        }
    }

    fn prefix(s: &str, len: u8, now: Instant, preferred: u64, valid: u64) -> DelegatedPrefix {
        DelegatedPrefix {
            prefix: s.parse().unwrap(),
            len,
            preferred_until: Some(now + S * preferred as u32),
            valid_until: Some(now + S * valid as u32),
        }
    }

    fn lease(now: Instant, addresses: Vec<LeasedAddress>, prefixes: Vec<DelegatedPrefix>) -> Lease {
        Lease {
            server_id: vec![0, 1],
            server_addr: "fe80::1".parse().unwrap(),
            updated: now,
            t1: None,
            t2: None,
            addresses,
            prefixes,
        }
    }

    fn info() -> NetworkInfo {
        NetworkInfo {
            dns_servers: vec!["2001:db8::53".parse().unwrap()],
            domains: vec!["example.net".into()],
            aftr_name: Some("aftr.example.net".into()),
        }
    }

    fn strings(v: Option<&Value>) -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().expect("string").to_string())
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn an_acquired_lease_is_one_update_in_proto_send_update_order_and_types() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        assert_eq!(r.poll_send(t0), None, "nothing to say without a lease");
        let l = lease(
            t0,
            vec![addr("2001:db8:1::2", t0, 3600, 7200)],
            vec![prefix("2001:db8:100::", 56, t0, 1800, 3600)],
        );
        r.handle_lease(t0, Some(&l), &info());
        let msg = r.poll_send(t0).expect("an update");
        let ip6addr = Table::new()
            .with("ipaddr", "2001:db8:1::2")
            .with("mask", "128")
            .with("preferred", Value::Int32(3600))
            .with("valid", Value::Int32(7200));
        let want = Table::new()
            .with("action", Value::Int32(0))
            .with("link-up", Value::Bool(true))
            .with("keep", Value::Bool(false))
            .with("ip6addr", vec![Value::Table(ip6addr)])
            .with(
                "ip6prefix",
                vec![Value::from("2001:db8:100::/56,1800,3600")],
            )
            .with("dns", vec![Value::from("2001:db8::53")])
            .with("dns_search", vec![Value::from("example.net")])
            .with("interface", "wan6");
        assert_eq!(msg, want);
        assert_eq!(r.poll_send(t0), None, "one call at a time");
        r.handle_answer(t0, Ok(()));
        assert_eq!(r.poll_send(t0 + S), None, "netifd has it");
        assert_eq!(r.counters(), Counters { sent: 1, failed: 0 });
    }

    /// The whole INVOKE for "link down", written out by hand from the blob
    /// rules in the ubus traces' README (not with this codec): blobmsg
    /// header word (extended bit, type, length), name length, name, NUL,
    /// padding to 4, value, padding to 4.
    #[test]
    fn link_down_is_byte_for_byte_the_invoke_the_ubus_cli_would_send() {
        use crate::ubus::wire::{Attr, Message, MsgType};
        const NETIFD: u32 = 0x1b2c_3d4e;
        let golden = "\
            00 05 00 05 1b 2c 3d 4e 00 00 00 74 \
            03 00 00 08 1b 2c 3d 4e \
            04 00 00 11 6e 6f 74 69 66 79 5f 70 72 6f 74 6f 00 00 00 00 \
            07 00 00 54 \
            85 00 00 14 00 06 61 63 74 69 6f 6e 00 00 00 00 00 00 00 00 \
            87 00 00 11 00 07 6c 69 6e 6b 2d 75 70 00 00 00 00 00 00 00 \
            87 00 00 0d 00 04 6b 65 65 70 00 00 00 00 00 00 \
            83 00 00 15 00 09 69 6e 74 65 72 66 61 63 65 00 77 61 6e 36 00 00 00 00";
        let golden: Vec<u8> = golden
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        let invoke = Message::new(
            MsgType::Invoke,
            5,
            NETIFD,
            vec![
                Attr::ObjId(NETIFD),
                Attr::Method(METHOD.into()),
                Attr::Data(link_down_message("wan6")),
            ],
        );
        assert_eq!(invoke.encode(), golden);
    }

    #[test]
    fn a_renew_with_new_lifetimes_is_sent_and_an_unchanged_status_is_not() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let l = lease(t0, vec![addr("2001:db8:1::2", t0, 3600, 7200)], vec![]);
        r.handle_lease(t0, Some(&l), &info());
        assert!(r.poll_send(t0).is_some());
        r.handle_answer(t0, Ok(()));
        // The same lease again (the DHCPv6 status changed for other reasons).
        r.handle_lease(t0 + S * 10, Some(&l), &info());
        assert_eq!(r.poll_send(t0 + S * 10), None);
        // Renewed at T1: lifetimes start over.
        let t1 = t0 + S * 1800;
        let renewed = lease(t1, vec![addr("2001:db8:1::2", t1, 3600, 7200)], vec![]);
        r.handle_lease(t1, Some(&renewed), &info());
        let msg = r.poll_send(t1).expect("renewed lifetimes reach netifd");
        let Some(Value::Array(a)) = msg.get("ip6addr") else {
            panic!("{msg}")
        };
        let Value::Table(a) = &a[0] else { panic!() };
        assert_eq!(a.get("valid"), Some(&Value::Int32(7200)));
    }

    #[test]
    fn renumbering_sends_the_new_prefix_and_keeps_the_old_one_deprecated_until_it_expires() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let old = lease(
            t0,
            vec![],
            vec![prefix("2001:db8:100::", 56, t0, 1800, 3600)],
        );
        r.handle_lease(t0, Some(&old), &info());
        r.poll_send(t0).unwrap();
        r.handle_answer(t0, Ok(()));

        let t1 = t0 + S * 600;
        let new = lease(
            t1,
            vec![],
            vec![prefix("2001:db8:200::", 56, t1, 1800, 3600)],
        );
        r.handle_lease(t1, Some(&new), &info());
        let msg = r.poll_send(t1).expect("renumbering reaches netifd at once");
        assert_eq!(
            strings(msg.get("ip6prefix")),
            vec![
                "2001:db8:200::/56,1800,3600".to_string(),
                // Deprecated, valid for what it had left (3000 s < 2 h).
                "2001:db8:100::/56,0,3000".to_string(),
            ]
        );
        r.handle_answer(t1, Ok(()));
        // The old prefix's expiry is the next thing to report.
        assert_eq!(r.poll_timeout(t1), Some(t0 + S * 3600));
        let t2 = t0 + S * 3600;
        let msg = r.poll_send(t2).expect("the expired prefix is withdrawn");
        assert_eq!(
            strings(msg.get("ip6prefix")),
            // Its own preferred lifetime has run out by now too.
            vec!["2001:db8:200::/56,0,600".to_string()]
        );
    }

    #[test]
    fn a_retired_prefix_stays_at_most_two_hours_and_comes_back_if_the_lease_has_it_again() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let a = || prefix("2001:db8:100::", 56, t0, 86400, 172800);
        let b = prefix("2001:db8:200::", 56, t0, 86400, 172800);
        r.handle_lease(t0, Some(&lease(t0, vec![], vec![a()])), &info());
        r.handle_lease(t0, Some(&lease(t0, vec![], vec![b.clone()])), &info());
        let msg = r.poll_send(t0).unwrap();
        assert_eq!(
            strings(msg.get("ip6prefix"))[1],
            "2001:db8:100::/56,0,7200",
            "capped at RETIRED_VALID_AT_MOST"
        );
        r.handle_answer(t0, Ok(()));
        r.handle_lease(t0, Some(&lease(t0, vec![], vec![b, a()])), &info());
        let msg = r.poll_send(t0).unwrap();
        assert_eq!(
            strings(msg.get("ip6prefix")),
            vec![
                "2001:db8:200::/56,86400,172800".to_string(),
                "2001:db8:100::/56,86400,172800".to_string()
            ],
            "back in the lease: preferred again, not listed twice"
        );
    }

    #[test]
    fn losing_the_lease_says_link_down_once_and_a_new_lease_brings_it_up() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let l = lease(t0, vec![addr("2001:db8:1::2", t0, 3600, 7200)], vec![]);
        r.handle_lease(t0, Some(&l), &info());
        r.poll_send(t0).unwrap();
        r.handle_answer(t0, Ok(()));
        r.handle_lease(t0 + S, None, &NetworkInfo::default());
        assert_eq!(r.poll_send(t0 + S), Some(link_down_message("wan6")));
        r.handle_answer(t0 + S, Ok(()));
        assert_eq!(r.poll_send(t0 + S * 2), None);
        r.handle_lease(t0 + S * 3, Some(&l), &info());
        let msg = r.poll_send(t0 + S * 3).unwrap();
        assert_eq!(msg.get("link-up"), Some(&Value::Bool(true)));
    }

    #[test]
    fn failures_are_retried_with_doubling_backoff_and_success_resets_it() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let l = lease(t0, vec![addr("2001:db8:1::2", t0, 86400, 86400)], vec![]);
        r.handle_lease(t0, Some(&l), &info());
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..7 {
            assert!(r.poll_send(now).is_some());
            r.handle_answer(now, Err(Status::NotFound));
            let next = r.poll_timeout(now).unwrap();
            assert_eq!(r.poll_send(next - Duration::from_millis(1)), None);
            gaps.push((next - now).as_secs());
            now = next;
        }
        assert_eq!(gaps, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(r.last_error(), Some(Status::NotFound));
        assert!(r.poll_send(now).is_some());
        r.handle_answer(now, Ok(()));
        assert_eq!(r.last_error(), None);
        assert_eq!(r.counters(), Counters { sent: 1, failed: 7 });
        // A later failure starts again at the shortest delay.
        r.handle_resync();
        r.poll_send(now).unwrap();
        r.handle_answer(now, Err(Status::Timeout));
        assert_eq!(r.poll_timeout(now), Some(now + RETRY_MIN));
    }

    #[test]
    fn a_resync_sends_the_same_state_again_and_changes_during_a_call_follow_it() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let l = lease(t0, vec![addr("2001:db8:1::2", t0, 3600, 7200)], vec![]);
        r.handle_lease(t0, Some(&l), &info());
        let first = r.poll_send(t0).unwrap();
        r.handle_answer(t0, Ok(()));
        r.handle_resync();
        assert_eq!(r.poll_send(t0), Some(first), "netifd restarted wan6");
        // While that call is out, the lease changes: sent after the answer.
        let l2 = lease(t0, vec![addr("2001:db8:1::3", t0, 3600, 7200)], vec![]);
        r.handle_lease(t0, Some(&l2), &info());
        assert_eq!(r.poll_send(t0), None);
        r.handle_answer(t0, Ok(()));
        assert!(r.poll_send(t0).is_some());
    }

    #[test]
    fn a_resync_while_a_call_is_out_is_not_lost_when_that_call_succeeds() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let l = lease(t0, vec![addr("2001:db8:1::2", t0, 3600, 7200)], vec![]);
        r.handle_lease(t0, Some(&l), &info());
        assert!(r.poll_send(t0).is_some());
        // netifd restarts wan6 before the call's answer arrives: what the
        // call delivered went with the old interface state.
        r.handle_resync();
        r.handle_answer(t0, Ok(()));
        assert!(!r.reported_up());
        assert!(r.poll_send(t0).is_some(), "sent again after the resync");
    }

    #[test]
    fn after_a_teardown_nothing_is_sent_until_the_next_setup() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let l = lease(
            t0,
            vec![],
            vec![prefix("2001:db8:100::", 56, t0, 1800, 3600)],
        );
        r.handle_lease(t0, Some(&l), &info());
        r.poll_send(t0).unwrap();
        r.handle_answer(t0, Ok(()));
        // ifdown wan6: netifd drops what it had.
        r.handle_teardown();
        assert!(!r.reported_up(), "nothing to take down at stop");
        // A renew while wan6 is down would put the prefix back on the LAN.
        let t1 = t0 + S * 900;
        let renewed = lease(
            t1,
            vec![],
            vec![prefix("2001:db8:100::", 56, t1, 1800, 3600)],
        );
        r.handle_lease(t1, Some(&renewed), &info());
        assert_eq!(r.poll_send(t1), None);
        // ifup wan6: the current state, at once.
        r.handle_resync();
        let msg = r.poll_send(t1).expect("reported again");
        assert_eq!(
            strings(msg.get("ip6prefix")),
            vec!["2001:db8:100::/56,1800,3600".to_string()]
        );
        // A call out when the teardown comes does not count as reported.
        r.handle_teardown();
        r.handle_answer(t1, Ok(()));
        assert!(!r.reported_up());
        assert_eq!(r.poll_send(t1), None);
    }

    #[test]
    fn started_while_the_interface_is_down_b4d_waits_for_its_setup() {
        let t0 = Instant::now();
        let status = |up: bool, pending: bool| {
            Table::new()
                .with("up", up)
                .with("pending", pending)
                .with("available", true)
                .with("autostart", !up && !pending)
                .with("proto", "b4")
        };
        let l = lease(t0, vec![addr("2001:db8:1::2", t0, 3600, 7200)], vec![]);
        for (up, pending, reports) in [
            (true, false, true),
            (false, true, true),
            (false, false, false),
        ] {
            let state = InterfaceState::from_status(&status(up, pending)).unwrap();
            assert_eq!(state.proto.as_deref(), Some(PROTO));
            let mut r = Reporter::new("wan6");
            r.handle_start_state(&state);
            r.handle_lease(t0, Some(&l), &info());
            assert_eq!(
                r.poll_send(t0).is_some(),
                reports,
                "up {up} pending {pending}"
            );
            assert_eq!(r.waits_for_setup(), !reports);
            if !reports {
                // ifup wan6: the handler's setup, and the lease at once.
                r.handle_resync();
                assert!(r.poll_send(t0).is_some());
            }
        }
        assert_eq!(
            InterfaceState::from_status(&Table::new().with("pending", false)),
            None,
            "not netifd's status: it says nothing"
        );
    }

    #[test]
    fn infinite_lifetimes_are_all_ones_as_netifd_reads_them() {
        let t0 = Instant::now();
        let mut r = Reporter::new("wan6");
        let forever = LeasedAddress {
            addr: "2001:db8:1::2".parse().unwrap(),
            preferred_until: None,
            valid_until: None,
        };
        let p = DelegatedPrefix {
            prefix: "2001:db8:100::".parse().unwrap(),
            len: 56,
            preferred_until: None,
            valid_until: None,
        };
        r.handle_lease(t0, Some(&lease(t0, vec![forever], vec![p])), &info());
        let msg = r.poll_send(t0).unwrap();
        let Some(Value::Array(a)) = msg.get("ip6addr") else {
            panic!()
        };
        let Value::Table(a) = &a[0] else { panic!() };
        assert_eq!(a.get("valid"), Some(&Value::Int32(-1)));
        assert_eq!(
            strings(msg.get("ip6prefix")),
            vec!["2001:db8:100::/56,4294967295,4294967295".to_string()]
        );
        assert_eq!(r.poll_timeout(t0), None, "nothing ever expires");
    }
}
