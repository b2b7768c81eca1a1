//! The DHCPv6 client (RFC 8415) as a sans-I/O state machine.
//!
//! The driver feeds it `(now, Input)` and executes the returned `Action`s;
//! `poll_timeout()` says when to call `handle(now, Input::Timeout)` next.
//! No sockets, no clocks, no global randomness: tests drive every timer and
//! retransmission deterministically.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::events::{Event, LossReason};
use super::lease::{deadline, DelegatedPrefix, Lease, LeasedAddress, NetworkInfo};
use super::persist::Saved;
use super::retransmit::{self as rtx, Next, Params, Retransmit};
use super::wire::{self, Outgoing, OutgoingIas, Received};

/// Stateful asks for IA_NA and/or IA_PD; stateless only for options
/// (RFC 8415 §6.1, Information-Request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Stateful {
        request_address: bool,
        request_prefix: bool,
        /// Prefix-length hint, 0 = none.
        prefix_hint: u8,
    },
    Stateless,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub mode: Mode,
    /// Our DUID (RFC 8415 §11), sent as Client Identifier.
    pub duid: Vec<u8>,
    /// IAID for both IA_NA and IA_PD; stable across restarts (§12.1).
    pub iaid: u32,
    /// Option codes requested on top of the ones b4d needs.
    pub extra_oro: Vec<u16>,
    pub release_on_stop: bool,
    /// Include Rapid Commit in Solicit and take a Reply to it as the
    /// binding (RFC 8415 §18.2.1).
    pub rapid_commit: bool,
    /// SOL_MAX_RT before any server overrides it (§21.24).
    pub sol_max_rt: Duration,
}

/// Input events for the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The client starts, once, before anything else: the random delay of
    /// its first message (§18.2.1, §18.2.6) runs from here, so that it
    /// overlaps the wait for the link instead of following it.
    Started,
    /// The WAN link is up and its link-local address is usable.
    LinkUp,
    LinkDown,
    Received {
        from: Ipv6Addr,
        bytes: &'a [u8],
    },
    Timeout,
    /// Renew (or re-ask for information) now, e.g. from `ubus call b4 renew`.
    ForceRenew,
    /// Duplicate address detection failed for a leased address (§18.2.8).
    DadFailed(Ipv6Addr),
    /// Clean shutdown: Release if configured, then `Action::Stopped`.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to All_DHCP_Relay_Agents_and_Servers (ff02::1:2) port 547.
    /// The client never unicasts: RFC 8415 §18.2 lets servers forbid it and
    /// multicast always works.
    Send {
        bytes: Vec<u8>,
    },
    Event(Event),
    /// Shutdown is complete: the driver may exit.
    Stopped,
}

/// Why a received message was dropped. Counted, and logged once each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Malformed,
    UnexpectedType,
    WrongTransaction,
    NoClientId,
    ClientIdMismatch,
    NoServerId,
    NothingOffered,
    UnauthenticatedReconfigure,
    InvalidAftrName,
    InvalidIa,
    ServerError,
    /// A malformed optional option (DNS servers, domains, SOL_MAX_RT...)
    /// left out of an otherwise usable message.
    InvalidOption,
}

const DROP_KINDS: usize = 12;

impl Drop {
    fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Drop::Malformed => "malformed",
            Drop::UnexpectedType => "unexpected-type",
            Drop::WrongTransaction => "wrong-transaction-id",
            Drop::NoClientId => "no-client-id",
            Drop::ClientIdMismatch => "client-id-mismatch",
            Drop::NoServerId => "no-server-id",
            Drop::NothingOffered => "nothing-offered",
            Drop::UnauthenticatedReconfigure => "unauthenticated-reconfigure",
            Drop::InvalidAftrName => "invalid-aftr-name",
            Drop::InvalidIa => "invalid-ia",
            Drop::ServerError => "server-error-status",
            Drop::InvalidOption => "invalid-option",
        }
    }

    pub const ALL: [Drop; DROP_KINDS] = [
        Drop::Malformed,
        Drop::UnexpectedType,
        Drop::WrongTransaction,
        Drop::NoClientId,
        Drop::ClientIdMismatch,
        Drop::NoServerId,
        Drop::NothingOffered,
        Drop::UnauthenticatedReconfigure,
        Drop::InvalidAftrName,
        Drop::InvalidIa,
        Drop::ServerError,
        Drop::InvalidOption,
    ];
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub accepted: u64,
    pub dropped: [u64; DROP_KINDS],
}

impl Counters {
    pub fn dropped(&self, reason: Drop) -> u64 {
        self.dropped[reason.index()]
    }
}

/// What the client knew before a change, to emit events for the difference.
type Snapshot = (Vec<LeasedAddress>, Vec<DelegatedPrefix>, NetworkInfo);

/// One server's offer from an Advertise (RFC 8415 §18.2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    server_id: Vec<u8>,
    server_addr: Ipv6Addr,
    preference: u8,
    addresses: Vec<Ipv6Addr>,
    prefixes: Vec<(Ipv6Addr, u8)>,
}

impl Offer {
    /// §18.2.9: highest preference first, then the offer with more of
    /// what we asked for; ties go to the earlier Advertise.
    fn rank(&self) -> (u8, u8) {
        let kinds = u8::from(!self.addresses.is_empty()) + u8::from(!self.prefixes.is_empty());
        (self.preference, kinds)
    }
}

/// What an exchange's retransmission timer asks for at a given time.
enum Step {
    NotDue,
    Resend,
    GiveUp,
}

/// One message exchange in progress.
#[derive(Debug, Clone, PartialEq)]
struct Exchange {
    xid: [u8; 3],
    rtx: Retransmit,
    next: Instant,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// No usable link; a lease, if any, keeps ageing.
    Idle,
    Soliciting {
        xid: [u8; 3],
        /// The random initial delay (§18.2.1) before the first Solicit.
        first_send: Option<Instant>,
        exchange: Option<Exchange>,
        /// The first RT has passed: take the next Advertise at once.
        collecting_done: bool,
        best: Option<Offer>,
    },
    Requesting {
        exchange: Exchange,
        offer: Offer,
    },
    Bound,
    Renewing {
        exchange: Exchange,
    },
    Rebinding {
        exchange: Exchange,
    },
    Declining {
        exchange: Exchange,
        addresses: Vec<Ipv6Addr>,
        server_id: Vec<u8>,
    },
    Releasing {
        exchange: Exchange,
        lease: Lease,
    },
    InfoRequesting {
        xid: [u8; 3],
        first_send: Option<Instant>,
        exchange: Option<Exchange>,
    },
    InfoBound {
        refresh_at: Instant,
    },
    Stopped,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Soliciting { .. } => "soliciting",
            State::Requesting { .. } => "requesting",
            State::Bound => "bound",
            State::Renewing { .. } => "renewing",
            State::Rebinding { .. } => "rebinding",
            State::Declining { .. } => "declining",
            State::Releasing { .. } => "releasing",
            State::InfoRequesting { .. } => "information-requesting",
            State::InfoBound { .. } => "informed",
            State::Stopped => "stopped",
        }
    }
}

/// A read-only snapshot for the status report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStatus {
    pub state: &'static str,
    /// The last thing that went wrong, in words.
    pub last_problem: Option<String>,
    pub lease: Option<Lease>,
    pub info: NetworkInfo,
    pub sol_max_rt: Duration,
    pub inf_max_rt: Duration,
    pub counters: Counters,
    /// The binding came from the lease file at start and no server has
    /// confirmed it yet.
    pub restored: bool,
}

pub struct Client {
    config: ClientConfig,
    state: State,
    lease: Option<Lease>,
    info: NetworkInfo,
    rng: StdRng,
    sol_max_rt: Duration,
    inf_max_rt: Duration,
    counters: Counters,
    /// Bit per `Drop` kind already logged, so a flood logs once.
    logged_drops: u32,
    last_problem: Option<String>,
    /// See `ClientStatus::restored`.
    restored: bool,
    /// When the first Solicit or Information-Request may go, drawn at
    /// `Input::Started`; used by the first link-up only.
    first_message_not_before: Option<Instant>,
    /// Requests in a row answered with nothing granted: each new Solicit
    /// waits twice as long (up to SOL_MAX_RT), so a server that offers and
    /// then refuses is not asked in a tight loop. Reset once bound.
    refused_requests: u32,
    actions: Vec<Action>,
}

/// ORO codes every request carries: DNS (23), domains (24), AFTR-Name (64)
/// and, as RFC 8415 §21.24 requires, SOL_MAX_RT (82).
const BASE_ORO: [u16; 4] = [
    wire::OPT_DNS_SERVERS,
    wire::OPT_DOMAIN_LIST,
    wire::OPT_AFTR_NAME,
    wire::OPT_SOL_MAX_RT,
];

impl Exchange {
    /// Advances the retransmission timer if it is due at `now`.
    fn step(&mut self, now: Instant, rng: &mut StdRng) -> Step {
        if now < self.next {
            return Step::NotDue;
        }
        match self.rtx.on_timeout(now, rng) {
            Next::Transmit { next } => {
                self.next = next;
                Step::Resend
            }
            Next::GiveUp => Step::GiveUp,
        }
    }
}

impl Client {
    pub fn new(config: ClientConfig, seed: u64) -> Self {
        let sol_max_rt = config.sol_max_rt;
        Client {
            config,
            state: State::Idle,
            lease: None,
            info: NetworkInfo::default(),
            rng: StdRng::seed_from_u64(seed),
            sol_max_rt,
            inf_max_rt: rtx::INF_MAX_RT_DEFAULT,
            counters: Counters::default(),
            logged_drops: 0,
            last_problem: None,
            restored: false,
            first_message_not_before: None,
            refused_requests: 0,
            actions: Vec::new(),
        }
    }

    /// Takes over a binding kept from before a restart (persist.rs) and
    /// announces it exactly as if it had just been acquired, so everything
    /// that follows DHCPv6 state has it before any packet goes out. The
    /// server is asked to confirm it at link-up: a client holding a binding
    /// Rebinds (`on_link_up`, RFC 8415 §18.2.12). Only a fresh client in
    /// `Idle` takes one; what the configuration no longer asks for (IA_NA,
    /// IA_PD, or a binding at all in stateless mode) is left out.
    pub fn restore(&mut self, now: Instant, saved: Saved) -> Vec<Action> {
        if !matches!(self.state, State::Idle)
            || self.lease.is_some()
            || saved.client_id != self.config.duid
        {
            return Vec::new();
        }
        let (want_na, want_pd) = self.wanted_ias();
        let lease = saved
            .lease
            .map(|mut lease| {
                if !want_na {
                    lease.addresses.clear();
                }
                if !want_pd {
                    lease.prefixes.clear();
                }
                lease.expire(now);
                lease
            })
            .filter(|lease| !lease.is_empty());
        let before = self.snapshot();
        if let Some(v) = Some(saved.sol_max_rt.as_secs())
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| rtx::MAX_RT_RANGE.contains(v))
        {
            self.sol_max_rt = Duration::from_secs(u64::from(v));
        }
        self.info = saved.info;
        if let Some(lease) = lease {
            let server = lease.server_addr;
            self.lease = Some(lease);
            self.restored = true;
            self.actions
                .push(Action::Event(Event::LeaseAcquired { server }));
        }
        self.emit_changes(&before);
        std::mem::take(&mut self.actions)
    }

    /// What is worth keeping across a restart (persist.rs), as of now.
    pub fn saved(&self) -> Saved {
        Saved {
            client_id: self.config.duid.clone(),
            lease: self.lease.clone(),
            info: self.info.clone(),
            sol_max_rt: self.sol_max_rt,
        }
    }

    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    pub fn info(&self) -> &NetworkInfo {
        &self.info
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn status(&self) -> ClientStatus {
        ClientStatus {
            state: self.state.name(),
            last_problem: self.last_problem.clone(),
            lease: self.lease.clone(),
            info: self.info.clone(),
            sol_max_rt: self.sol_max_rt,
            inf_max_rt: self.inf_max_rt,
            counters: self.counters.clone(),
            restored: self.restored && self.lease.is_some(),
        }
    }

    /// When the driver must call `handle(now, Input::Timeout)` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let exchange_timer = match &self.state {
            State::Idle | State::Stopped | State::Bound => None,
            State::Soliciting {
                first_send,
                exchange,
                ..
            }
            | State::InfoRequesting {
                first_send,
                exchange,
                ..
            } => first_send.or(exchange.as_ref().map(|e| e.next)),
            State::Requesting { exchange, .. }
            | State::Renewing { exchange }
            | State::Rebinding { exchange }
            | State::Declining { exchange, .. }
            | State::Releasing { exchange, .. } => Some(exchange.next),
            State::InfoBound { refresh_at } => Some(*refresh_at),
        };
        let lease_timer = match (&self.state, &self.lease) {
            (State::Releasing { .. } | State::Stopped, _) | (_, None) => None,
            (state, Some(lease)) => {
                let renew_at = match state {
                    State::Bound => lease.t1,
                    State::Renewing { .. } => lease.t2,
                    _ => None,
                };
                [renew_at, lease.next_expiry()].into_iter().flatten().min()
            }
        };
        [exchange_timer, lease_timer].into_iter().flatten().min()
    }

    /// Feeds one input; returns the actions to execute, in order.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Action> {
        match input {
            Input::Started => self.on_started(now),
            Input::LinkUp => self.on_link_up(now),
            Input::LinkDown => self.on_link_down(),
            Input::Received { from, bytes } => self.on_packet(now, from, bytes),
            Input::Timeout => self.on_timeout(now),
            Input::ForceRenew => self.on_force_renew(now),
            Input::DadFailed(addr) => self.on_dad_failed(now, addr),
            Input::Shutdown => self.on_shutdown(now),
        }
        std::mem::take(&mut self.actions)
    }

    /// Starts a message exchange at `now` with a fresh transaction ID.
    fn new_exchange(&mut self, params: Params, now: Instant) -> Exchange {
        let xid = self.new_xid();
        let (rtx, next) = Retransmit::start(params, now, &mut self.rng);
        Exchange { xid, rtx, next }
    }

    // ----- transitions -------------------------------------------------

    fn on_started(&mut self, now: Instant) {
        if matches!(self.state, State::Idle) && self.first_message_not_before.is_none() {
            let max = match self.config.mode {
                Mode::Stateful { .. } => rtx::SOL_MAX_DELAY,
                Mode::Stateless => rtx::INF_MAX_DELAY,
            };
            self.first_message_not_before = Some(now + self.random_delay(max));
        }
    }

    fn on_link_up(&mut self, now: Instant) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        // Only the first link-up after the start: a later one (a flap) is
        // a new start of the exchange and draws its own delay.
        let not_before = self.first_message_not_before.take();
        match (&self.config.mode, &self.lease) {
            // §18.2.12: after a link change a client with delegated prefixes
            // MUST Rebind; we do the same for addresses (Confirm would not
            // cover the prefixes anyway).
            (Mode::Stateful { .. }, Some(_)) => self.start_rebind(now),
            (Mode::Stateful { .. }, None) => self.start_solicit_after(now, not_before),
            (Mode::Stateless, _) => self.start_information_request_after(now, not_before),
        }
    }

    fn on_link_down(&mut self) {
        if matches!(self.state, State::Releasing { .. } | State::Stopped) {
            return;
        }
        // The lease stays: it is valid until its lifetimes end, and the
        // link may come back before that (RFC 8415 §18.2.12).
        self.state = State::Idle;
    }

    fn on_force_renew(&mut self, now: Instant) {
        match self.state {
            State::Bound | State::Renewing { .. } => self.start_renew(now),
            State::Soliciting { .. } => self.start_solicit_now(now),
            State::InfoBound { .. } | State::InfoRequesting { .. } => {
                self.start_information_request_now(now)
            }
            _ => {}
        }
    }

    fn on_shutdown(&mut self, now: Instant) {
        if matches!(self.state, State::Releasing { .. } | State::Stopped) {
            return;
        }
        let before = self.snapshot();
        let lease = self.lease.take().filter(|l| !l.is_empty());
        // Without a usable link (cable out, or the driver could not have
        // port 546) no Release can go: the binding is kept (in the file too,
        // nothing announced) and the next start Rebinds it, rather than
        // forgotten here while the server still holds it.
        let can_release = !matches!(self.state, State::Idle);
        match lease {
            Some(lease) if self.config.release_on_stop && can_release => {
                self.lose_lease(LossReason::Released, &before);
                let exchange = self.new_exchange(
                    Params {
                        irt: rtx::REL_TIMEOUT,
                        mrt: Duration::ZERO,
                        mrc: rtx::REL_MAX_RC,
                        mrd: None,
                        first_rand_positive: false,
                    },
                    now,
                );
                self.state = State::Releasing { exchange, lease };
                self.transmit(now);
            }
            _ => {
                self.state = State::Stopped;
                self.actions.push(Action::Stopped);
            }
        }
    }

    fn on_dad_failed(&mut self, now: Instant, addr: Ipv6Addr) {
        if !self
            .lease
            .as_ref()
            .is_some_and(|l| l.addresses.iter().any(|a| a.addr == addr))
        {
            return;
        }
        if matches!(self.state, State::Releasing { .. } | State::Stopped) {
            return;
        }
        let before = self.snapshot();
        let Some(lease) = &mut self.lease else { return };
        lease.addresses.retain(|a| a.addr != addr);
        let server_id = lease.server_id.clone();
        let nothing_left = lease.is_empty();
        if !matches!(self.state, State::Bound) {
            // With the link down, or amid an exchange (the Rebind after a
            // flap, when the kernel runs DAD again): that goes on, or starts
            // at the link's return, as it would have; the address is just
            // no longer used. A Reply giving it again brings it back, and
            // its next DAD failure is declined from Bound.
            warn!("DHCPv6: duplicate address detection failed for {addr}; no longer used");
            if nothing_left {
                self.lose_lease(LossReason::Declined, &before);
                if !matches!(self.state, State::Idle) {
                    self.start_solicit(now);
                }
            } else {
                self.emit_changes(&before);
            }
            return;
        }
        warn!("DHCPv6: duplicate address detection failed for {addr}, declining it");
        self.emit_changes(&before);
        let exchange = self.new_exchange(
            Params {
                irt: rtx::DEC_TIMEOUT,
                mrt: Duration::ZERO,
                mrc: rtx::DEC_MAX_RC,
                mrd: None,
                first_rand_positive: false,
            },
            now,
        );
        self.state = State::Declining {
            exchange,
            addresses: vec![addr],
            server_id,
        };
        self.transmit(now);
    }

    fn on_timeout(&mut self, now: Instant) {
        self.expire_lease(now);
        match &mut self.state {
            State::Soliciting {
                xid,
                first_send,
                exchange,
                collecting_done,
                best,
            } => {
                let params = solicit_params(self.sol_max_rt);
                if begin_if_due(first_send, exchange, *xid, params, now, &mut self.rng) {
                    return self.transmit(now);
                }
                let Some(ex) = exchange else { return };
                if now < ex.next {
                    return;
                }
                if let Some(offer) = best.take() {
                    // End of the first RT with an offer in hand (§18.2.1).
                    return self.start_request(now, offer);
                }
                *collecting_done = true;
                if let Step::Resend = ex.step(now, &mut self.rng) {
                    self.transmit(now);
                }
            }
            State::InfoRequesting {
                xid,
                first_send,
                exchange,
            } => {
                let params = info_params(self.inf_max_rt);
                if begin_if_due(first_send, exchange, *xid, params, now, &mut self.rng) {
                    return self.transmit(now);
                }
                // MRC and MRD are unlimited: it never gives up.
                if let Some(Step::Resend) = exchange.as_mut().map(|e| e.step(now, &mut self.rng)) {
                    self.transmit(now);
                }
            }
            State::InfoBound { refresh_at } => {
                if now >= *refresh_at {
                    self.start_information_request_now(now);
                }
            }
            State::Bound => {
                if self
                    .lease
                    .as_ref()
                    .and_then(|l| l.t1)
                    .is_some_and(|t1| now >= t1)
                {
                    self.start_renew(now);
                }
            }
            State::Renewing { exchange } => {
                if self
                    .lease
                    .as_ref()
                    .and_then(|l| l.t2)
                    .is_some_and(|t2| now >= t2)
                {
                    info!("DHCPv6: no Reply to Renew before T2, rebinding");
                    self.last_problem = Some("no Reply to Renew before T2".into());
                    return self.start_rebind(now);
                }
                match exchange.step(now, &mut self.rng) {
                    Step::Resend => self.transmit(now),
                    // MRD is T2: the lease's T2 timer takes over.
                    Step::GiveUp => exchange.next = far_future(now),
                    Step::NotDue => {}
                }
            }
            State::Requesting { exchange, .. } => match exchange.step(now, &mut self.rng) {
                Step::Resend => self.transmit(now),
                Step::GiveUp => {
                    // §18.2.2: REQ_MAX_RC reached, start over.
                    warn!("DHCPv6: no Reply to Request, soliciting again");
                    self.last_problem = Some("no Reply to Request".into());
                    self.start_solicit(now);
                }
                Step::NotDue => {}
            },
            State::Rebinding { exchange } => match exchange.step(now, &mut self.rng) {
                Step::Resend => self.transmit(now),
                // MRD is the end of the last lifetime, where expire_lease
                // ends the binding. Infinite leases never get here.
                Step::GiveUp => exchange.next = far_future(now),
                Step::NotDue => {}
            },
            State::Declining { exchange, .. } => match exchange.step(now, &mut self.rng) {
                Step::Resend => self.transmit(now),
                Step::GiveUp => self.after_decline(now),
                Step::NotDue => {}
            },
            State::Releasing { exchange, .. } => match exchange.step(now, &mut self.rng) {
                Step::Resend => self.transmit(now),
                Step::GiveUp => {
                    info!("DHCPv6: no Reply to Release, stopping anyway");
                    self.state = State::Stopped;
                    self.actions.push(Action::Stopped);
                }
                Step::NotDue => {}
            },
            State::Idle | State::Stopped => {}
        }
    }

    fn expire_lease(&mut self, now: Instant) {
        if matches!(self.state, State::Releasing { .. } | State::Stopped) {
            return;
        }
        let before = self.snapshot();
        let Some(lease) = &mut self.lease else { return };
        if !lease.expire(now) {
            return;
        }
        let empty = lease.is_empty();
        if empty {
            warn!("DHCPv6: lease expired without a Reply from any server");
            self.last_problem = Some("lease expired: no server answered Renew or Rebind".into());
            self.lose_lease(LossReason::Expired, &before);
            if !matches!(self.state, State::Idle) {
                self.start_solicit(now);
            }
        } else {
            self.emit_changes(&before);
        }
    }

    /// Drops the lease and everything learnt with it, with events for what
    /// changed since `before`.
    fn lose_lease(&mut self, reason: LossReason, before: &Snapshot) {
        self.lease = None;
        self.restored = false;
        self.info = NetworkInfo::default();
        self.actions
            .push(Action::Event(Event::LeaseLost { reason }));
        self.emit_changes(before);
    }

    /// Starts soliciting after the random initial delay of §18.2.1
    /// (0..SOL_MAX_DELAY).
    fn start_solicit(&mut self, now: Instant) {
        self.start_solicit_after(now, None);
    }

    /// The same with the delay drawn earlier, at `not_before` (see
    /// `Input::Started`), if there is one.
    fn start_solicit_after(&mut self, now: Instant, not_before: Option<Instant>) {
        let first_send = match not_before {
            Some(at) => at.max(now),
            None => now + self.random_delay(rtx::SOL_MAX_DELAY),
        };
        self.state = State::Soliciting {
            xid: self.new_xid(),
            first_send: Some(first_send),
            exchange: None,
            collecting_done: false,
            best: None,
        };
    }

    fn start_solicit_now(&mut self, now: Instant) {
        self.state = State::Soliciting {
            xid: self.new_xid(),
            first_send: Some(now),
            exchange: None,
            collecting_done: false,
            best: None,
        };
        self.on_timeout(now);
    }

    /// §18.2.6: Information-Request after 0..INF_MAX_DELAY, or at
    /// `not_before` (see `Input::Started`).
    fn start_information_request_after(&mut self, now: Instant, not_before: Option<Instant>) {
        let first_send = match not_before {
            Some(at) => at.max(now),
            None => now + self.random_delay(rtx::INF_MAX_DELAY),
        };
        self.state = State::InfoRequesting {
            xid: self.new_xid(),
            first_send: Some(first_send),
            exchange: None,
        };
    }

    fn start_information_request_now(&mut self, now: Instant) {
        self.state = State::InfoRequesting {
            xid: self.new_xid(),
            first_send: Some(now),
            exchange: None,
        };
        self.on_timeout(now);
    }

    fn start_request(&mut self, now: Instant, offer: Offer) {
        info!(
            "DHCPv6: requesting from {} (preference {})",
            offer.server_addr, offer.preference
        );
        let exchange = self.new_exchange(
            Params {
                irt: rtx::REQ_TIMEOUT,
                mrt: rtx::REQ_MAX_RT,
                mrc: rtx::REQ_MAX_RC,
                mrd: None,
                first_rand_positive: false,
            },
            now,
        );
        self.state = State::Requesting { exchange, offer };
        self.transmit(now);
    }

    fn start_renew(&mut self, now: Instant) {
        let Some(lease) = &self.lease else { return };
        // §18.2.4: MRD is the time remaining until T2.
        let mrd = lease.t2.map(|t2| t2.saturating_duration_since(now));
        let exchange = self.new_exchange(
            Params {
                irt: rtx::REN_TIMEOUT,
                mrt: rtx::REN_MAX_RT,
                mrc: 0,
                mrd,
                first_rand_positive: false,
            },
            now,
        );
        self.state = State::Renewing { exchange };
        self.transmit(now);
    }

    fn start_rebind(&mut self, now: Instant) {
        let Some(lease) = &self.lease else { return };
        // §18.2.5: MRD is the time until all valid lifetimes end.
        let mrd = lease
            .last_expiry()
            .map(|t| t.saturating_duration_since(now));
        let exchange = self.new_exchange(
            Params {
                irt: rtx::REB_TIMEOUT,
                mrt: rtx::REB_MAX_RT,
                mrc: 0,
                mrd,
                first_rand_positive: false,
            },
            now,
        );
        self.state = State::Rebinding { exchange };
        self.transmit(now);
    }

    fn after_decline(&mut self, now: Instant) {
        let wants_address = matches!(
            self.config.mode,
            Mode::Stateful {
                request_address: true,
                ..
            }
        );
        match &self.lease {
            // Still holding a prefix: ask for a replacement address now
            // (the Renew carries the emptied IA_NA, RFC 7550 §4.2) rather
            // than at T1, which may be hours away.
            Some(lease) if !lease.is_empty() && wants_address && lease.addresses.is_empty() => {
                self.start_renew(now)
            }
            Some(lease) if !lease.is_empty() => self.state = State::Bound,
            Some(_) => {
                // Nothing left: the lease ends here, with what it told us
                // (AFTR name, DNS servers).
                let before = self.snapshot();
                self.lose_lease(LossReason::Declined, &before);
                self.start_solicit(now);
            }
            None => self.start_solicit(now),
        }
    }

    // ----- receiving -----------------------------------------------------

    fn drop_message(&mut self, reason: Drop, detail: &str) {
        self.counters.dropped[reason.index()] += 1;
        let bit = 1u32 << reason.index();
        if self.logged_drops & bit == 0 {
            self.logged_drops |= bit;
            warn!(
                "DHCPv6: dropped a message ({}): {detail}; further ones are only counted",
                reason.name()
            );
        } else {
            debug!("DHCPv6: dropped a message ({}): {detail}", reason.name());
        }
    }

    fn current_xid(&self) -> Option<[u8; 3]> {
        match &self.state {
            State::Soliciting { xid, .. } | State::InfoRequesting { xid, .. } => Some(*xid),
            State::Requesting { exchange, .. }
            | State::Renewing { exchange }
            | State::Rebinding { exchange }
            | State::Declining { exchange, .. }
            | State::Releasing { exchange, .. } => Some(exchange.xid),
            _ => None,
        }
    }

    fn on_packet(&mut self, now: Instant, from: Ipv6Addr, bytes: &[u8]) {
        self.counters.received += 1;
        let msg = match wire::parse(bytes) {
            Ok(msg) => msg,
            Err(e) => return self.drop_message(Drop::Malformed, &format!("from {from}: {e}")),
        };
        match msg.msg_type {
            wire::MSG_ADVERTISE | wire::MSG_REPLY => {}
            wire::MSG_RECONFIGURE => {
                // §18.2.11 and §20.4: a Reconfigure must be authenticated
                // with the reconfigure key; b4d does not negotiate one, so
                // every Reconfigure is refused.
                return self.drop_message(
                    Drop::UnauthenticatedReconfigure,
                    &format!("Reconfigure from {from} without a negotiated reconfigure key"),
                );
            }
            other => {
                return self.drop_message(
                    Drop::UnexpectedType,
                    &format!("message type {other} from {from}"),
                )
            }
        }
        if self.current_xid() != Some(msg.xid) {
            return self.drop_message(
                Drop::WrongTransaction,
                &format!(
                    "transaction id {:02x?} from {from} matches no exchange",
                    msg.xid
                ),
            );
        }
        // §16.3, §16.10: Advertise and Reply must carry our Client ID.
        match &msg.client_id {
            None => {
                return self.drop_message(Drop::NoClientId, &format!("from {from}: no Client ID"))
            }
            Some(id) if *id != self.config.duid => {
                return self.drop_message(
                    Drop::ClientIdMismatch,
                    &format!("from {from}: Client ID is not ours"),
                )
            }
            Some(_) => {}
        }
        let Some(server_id) = msg.server_id.clone() else {
            return self.drop_message(Drop::NoServerId, &format!("from {from}: no Server ID"));
        };
        for e in &msg.ignored {
            // The rest of the message is used; what the option would have
            // set stays as it was.
            self.drop_message(Drop::InvalidOption, &format!("from {from}, ignored: {e}"));
        }
        if let Some(Err(e)) = &msg.aftr_name {
            // The rest of the message is fine; the old AFTR name stays.
            self.drop_message(
                Drop::InvalidAftrName,
                &format!("AFTR-Name (option 64) from {from} ignored: {e}"),
            );
        }
        match (&self.state, msg.msg_type) {
            (State::Soliciting { .. }, wire::MSG_ADVERTISE) => {
                self.on_advertise(now, from, server_id, &msg)
            }
            // §18.2.1, §18.2.10: we offered Rapid Commit and the server
            // committed the binding in its Reply to the Solicit. A Reply to
            // a Solicit without Rapid Commit is not one (dropped below).
            (State::Soliciting { .. }, wire::MSG_REPLY)
                if self.config.rapid_commit && msg.rapid_commit =>
            {
                // A server with nothing for us commits nothing (kea answers
                // NoAddrsAvail in a rapid Reply): another server's offer may
                // be in hand or on its way.
                let (addresses, prefixes) = self.wanted_offer(&msg);
                if addresses.is_empty() && prefixes.is_empty() {
                    self.apply_max_rt(&msg);
                    return self.ignore_empty_offer(from, &msg, "Rapid-commit Reply");
                }
                info!("DHCPv6: rapid commit from {from}");
                self.on_binding_reply(now, from, server_id, &msg)
            }
            (State::Requesting { .. }, wire::MSG_REPLY)
            | (State::Renewing { .. }, wire::MSG_REPLY)
            | (State::Rebinding { .. }, wire::MSG_REPLY) => {
                self.on_binding_reply(now, from, server_id, &msg)
            }
            (State::InfoRequesting { .. }, wire::MSG_REPLY) => {
                self.on_information_reply(now, from, &msg)
            }
            (State::Declining { .. }, wire::MSG_REPLY) => {
                self.counters.accepted += 1;
                self.after_decline(now);
            }
            (State::Releasing { .. }, wire::MSG_REPLY) => {
                // §18.2.10.2: any Reply ends the Release exchange.
                self.counters.accepted += 1;
                info!("DHCPv6: server {from} confirmed the Release");
                self.state = State::Stopped;
                self.actions.push(Action::Stopped);
            }
            _ => self.drop_message(
                Drop::UnexpectedType,
                &format!(
                    "message type {} from {from} in state {}",
                    msg.msg_type,
                    self.state.name()
                ),
            ),
        }
    }

    /// Applies SOL_MAX_RT / INF_MAX_RT from any Advertise or Reply, even one
    /// with an error status (§18.2.9, §18.2.10).
    fn apply_max_rt(&mut self, msg: &Received) {
        if let Some(v) = msg.sol_max_rt.filter(|v| rtx::MAX_RT_RANGE.contains(v)) {
            let new = Duration::from_secs(u64::from(v));
            if new != self.sol_max_rt {
                info!("DHCPv6: server set SOL_MAX_RT to {v}s");
                self.sol_max_rt = new;
            }
            if let State::Soliciting {
                exchange: Some(ex), ..
            } = &mut self.state
            {
                ex.rtx.set_mrt(new);
            }
        }
        if let Some(v) = msg.inf_max_rt.filter(|v| rtx::MAX_RT_RANGE.contains(v)) {
            let new = Duration::from_secs(u64::from(v));
            self.inf_max_rt = new;
            if let State::InfoRequesting {
                exchange: Some(ex), ..
            } = &mut self.state
            {
                ex.rtx.set_mrt(new);
            }
        }
    }

    /// The addresses and prefixes of `msg` that this client asked for.
    fn wanted_offer(&self, msg: &Received) -> (Vec<Ipv6Addr>, Vec<(Ipv6Addr, u8)>) {
        let (addresses, prefixes) = usable_leases(msg);
        let (want_na, want_pd) = self.wanted_ias();
        let addresses: Vec<Ipv6Addr> = if want_na {
            addresses.iter().map(|a| a.addr).collect()
        } else {
            Vec::new()
        };
        let prefixes: Vec<(Ipv6Addr, u8)> = if want_pd {
            prefixes.iter().map(|p| (p.prefix, p.len)).collect()
        } else {
            Vec::new()
        };
        (addresses, prefixes)
    }

    /// A server's answer to the Solicit that offers nothing wanted (its
    /// pool is empty, or it has nothing for this subscriber): ignored, so
    /// the collection goes on and another server's offer is taken (§18.2.9
    /// for an Advertise; §18.2.10.1 "try another server" for a Reply).
    fn ignore_empty_offer(&mut self, from: Ipv6Addr, msg: &Received, what: &str) {
        let why = status_words(msg);
        self.last_problem = Some(format!("server {from} offers no address or prefix: {why}"));
        self.drop_message(
            Drop::NothingOffered,
            &format!("{what} from {from} offers no address or prefix ({why})"),
        );
    }

    fn on_advertise(&mut self, now: Instant, from: Ipv6Addr, server_id: Vec<u8>, msg: &Received) {
        self.apply_max_rt(msg);
        let (addresses, prefixes) = self.wanted_offer(msg);
        if addresses.is_empty() && prefixes.is_empty() {
            return self.ignore_empty_offer(from, msg, "Advertise");
        }
        self.counters.accepted += 1;
        let offer = Offer {
            server_id,
            server_addr: from,
            preference: msg.preference,
            addresses,
            prefixes,
        };
        debug!(
            "DHCPv6: Advertise from {from}, preference {}",
            offer.preference
        );
        let State::Soliciting {
            collecting_done,
            best,
            ..
        } = &mut self.state
        else {
            return;
        };
        // §18.2.1: preference 255, or any Advertise after the first RT,
        // is taken at once.
        if offer.preference == 255 || *collecting_done {
            return self.start_request(now, offer);
        }
        if best.as_ref().is_none_or(|b| offer.rank() > b.rank()) {
            *best = Some(offer);
        }
    }

    fn wanted_ias(&self) -> (bool, bool) {
        match self.config.mode {
            Mode::Stateful {
                request_address,
                request_prefix,
                ..
            } => (request_address, request_prefix),
            Mode::Stateless => (false, false),
        }
    }

    fn on_binding_reply(
        &mut self,
        now: Instant,
        from: Ipv6Addr,
        server_id: Vec<u8>,
        msg: &Received,
    ) {
        self.apply_max_rt(msg);
        let status = msg.status_code();
        if status == wire::STATUS_NOT_ON_LINK {
            // §18.2.10.1: our addresses are wrong for this link.
            warn!("DHCPv6: server {from} says NotOnLink, soliciting again");
            self.counters.accepted += 1;
            self.last_problem = Some(format!("server {from} said NotOnLink"));
            if self.lease.is_some() {
                let before = self.snapshot();
                self.lose_lease(LossReason::NotOnLink, &before);
            }
            return self.start_solicit(now);
        }
        if status != wire::STATUS_SUCCESS {
            // UnspecFail, UseMulticast (we always multicast) and others:
            // §18.2.10 lets the client retransmit; keep the exchange going.
            let why = status_words(msg);
            self.last_problem = Some(format!("server {from} answered {why}"));
            return self.drop_message(Drop::ServerError, &format!("Reply from {from}: {why}"));
        }
        let renewing = matches!(self.state, State::Renewing { .. } | State::Rebinding { .. });
        // §18.2.10.1: NoBinding for an IA in a Reply to Renew/Rebind means
        // the server lost our binding: Request it again.
        let no_binding = msg
            .ia_na
            .iter()
            .map(|ia| ia.status)
            .chain(msg.ia_pd.iter().map(|ia| ia.status))
            .any(|s| s == Some(wire::STATUS_NO_BINDING));
        if renewing && no_binding {
            self.counters.accepted += 1;
            // "The client continues to use other bindings for which the
            // server did not return an error": what the Reply renews runs on
            // with its new lifetimes, and its options apply, while the rest
            // is requested again (if that Request goes unanswered, the
            // renewed part must not expire at its old lifetime).
            let before = self.snapshot();
            let (addresses, prefixes) = usable_leases(msg);
            if let Some(lease) = self.lease.as_mut() {
                lease.update(now, &addresses, &prefixes);
                if let Some((t1, t2)) = renewal_times(msg) {
                    lease.t1 = deadline(now, t1);
                    lease.t2 = deadline(now, t2);
                }
            }
            self.apply_info(msg);
            self.emit_changes(&before);
            let lease = self.lease.as_ref();
            let offer = Offer {
                server_id,
                server_addr: from,
                preference: 0,
                addresses: lease
                    .map(|l| l.addresses.iter().map(|a| a.addr).collect())
                    .unwrap_or_default(),
                prefixes: lease
                    .map(|l| l.prefixes.iter().map(|p| (p.prefix, p.len)).collect())
                    .unwrap_or_default(),
            };
            info!("DHCPv6: server {from} has no binding for us, requesting again");
            return self.start_request(now, offer);
        }

        let (addresses, prefixes) = usable_leases(msg);
        let grants_anything =
            addresses.iter().any(|a| a.valid > 0) || prefixes.iter().any(|p| p.valid > 0);
        if !renewing && !grants_anything {
            let why = status_words(msg);
            self.last_problem = Some(format!("server {from} granted nothing: {why}"));
            self.drop_message(
                Drop::NothingOffered,
                &format!("Reply to Request from {from} grants nothing ({why})"),
            );
            // The Request re-asked for a binding the server had lost
            // (NoBinding): what we held is gone with it.
            if self.lease.is_some() {
                let before = self.snapshot();
                self.lose_lease(LossReason::Refused, &before);
            }
            // Solicit again, after SOL_TIMEOUT doubled per refusal in a
            // row (the Solicit's own backoff, §15, would start over).
            let backoff = rtx::SOL_TIMEOUT
                .saturating_mul(1 << self.refused_requests.min(16))
                .min(self.sol_max_rt);
            self.refused_requests = self.refused_requests.saturating_add(1);
            let at = now + backoff + self.random_delay(rtx::SOL_MAX_DELAY);
            return self.start_solicit_after(now, Some(at));
        }
        let Some((t1, t2)) = renewal_times(msg) else {
            if renewing && self.withdraw(now, &addresses, &prefixes) {
                // The rest of the binding (if any) is renewed on: this
                // exchange goes on.
                self.counters.accepted += 1;
                self.last_problem = Some(format!(
                    "server {from} withdrew what it could not renew ({})",
                    status_words(msg)
                ));
                if self.lease.is_none() {
                    return self.start_solicit(now);
                }
                return;
            }
            self.last_problem = Some(format!("server {from} sent no usable IA"));
            return self.drop_message(
                Drop::InvalidIa,
                &format!("Reply from {from}: every IA has T1 > T2 or no lifetimes"),
            );
        };
        self.counters.accepted += 1;
        let before = self.snapshot();
        let had_lease = self.lease.is_some();
        let mut lease = self.lease.take().unwrap_or_else(|| Lease {
            server_id: server_id.clone(),
            server_addr: from,
            updated: now,
            t1: None,
            t2: None,
            addresses: Vec::new(),
            prefixes: Vec::new(),
        });
        // §18.2.10.1: an IA we hold that a Reply to Renew or Rebind leaves
        // out (a server that does not handle that IA type) is asked for
        // again, rate-limited, not only at the other IA's T1, which may come
        // after its lifetimes end.
        let unrenewed_ia = renewing
            && ((!lease.addresses.is_empty() && msg.ia_na.is_empty())
                || (!lease.prefixes.is_empty() && msg.ia_pd.is_empty()));
        lease.server_id = server_id;
        lease.server_addr = from;
        lease.updated = now;
        if !renewing {
            // §18.2.10.1: a Reply to a Request is the whole binding. After
            // NoBinding the Request asked for what we held; an IA the
            // server now refuses (NoAddrsAvail, NoPrefixAvail) has nothing,
            // and its old address or prefix must not stay published.
            lease.addresses.clear();
            lease.prefixes.clear();
        }
        lease.update(now, &addresses, &prefixes);
        lease.t1 = deadline(now, t1);
        lease.t2 = deadline(now, t2);
        if unrenewed_ia {
            let again = now + rtx::REN_MAX_RT;
            lease.t1 = Some(lease.t1.map_or(again, |t1| t1.min(again)));
        }
        self.apply_info(msg);
        if lease.is_empty() {
            self.last_problem = Some(format!("server {from} withdrew every address and prefix"));
            self.lose_lease(LossReason::Expired, &before);
            return self.start_solicit(now);
        }
        self.lease = Some(lease);
        self.restored = false;
        self.last_problem = None;
        self.state = State::Bound;
        self.refused_requests = 0;
        let event = if had_lease {
            Event::LeaseRenewed { server: from }
        } else {
            Event::LeaseAcquired { server: from }
        };
        self.actions.push(Action::Event(event));
        self.emit_changes(&before);
    }

    /// Applies what a Reply to Renew or Rebind withdrew (valid lifetime 0)
    /// although it renews nothing: the rest of the binding runs on as it
    /// was; with nothing left it is lost. Whether anything went.
    fn withdraw(
        &mut self,
        now: Instant,
        addresses: &[wire::IaAddress],
        prefixes: &[wire::IaPrefix],
    ) -> bool {
        let before = self.snapshot();
        let Some(lease) = self.lease.as_mut() else {
            return false;
        };
        // Only withdrawals (valid 0) come here: what they name goes.
        let held = lease.addresses.len() + lease.prefixes.len();
        lease.update(now, addresses, prefixes);
        let changed = lease.addresses.len() + lease.prefixes.len() != held;
        if changed && self.lease.as_ref().is_some_and(Lease::is_empty) {
            self.lose_lease(LossReason::Expired, &before);
        } else if changed {
            self.emit_changes(&before);
        }
        changed
    }

    fn on_information_reply(&mut self, now: Instant, from: Ipv6Addr, msg: &Received) {
        self.apply_max_rt(msg);
        if msg.status_code() != wire::STATUS_SUCCESS {
            let why = status_words(msg);
            self.last_problem = Some(format!("server {from} answered {why}"));
            return self.drop_message(Drop::ServerError, &format!("Reply from {from}: {why}"));
        }
        self.counters.accepted += 1;
        let before = self.snapshot();
        self.apply_info(msg);
        // §21.23: default 86400 s, never below 600 s.
        let refresh = msg
            .information_refresh
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(rtx::IRT_DEFAULT)
            .max(rtx::IRT_MINIMUM);
        self.state = State::InfoBound {
            refresh_at: now + refresh,
        };
        self.last_problem = None;
        self.actions
            .push(Action::Event(Event::InformationReceived { server: from }));
        self.emit_changes(&before);
    }

    fn apply_info(&mut self, msg: &Received) {
        // A malformed list (left out, counted) keeps the previous one.
        if !msg.ignored_option(wire::OPT_DNS_SERVERS) {
            self.info.dns_servers = msg.dns_servers.clone().unwrap_or_default();
        }
        if !msg.ignored_option(wire::OPT_DOMAIN_LIST) {
            self.info.domains = msg.domains.clone().unwrap_or_default();
        }
        match &msg.aftr_name {
            None => self.info.aftr_name = None,
            Some(Ok(name)) => self.info.aftr_name = Some(name.clone()),
            // Malformed: counted already; the previous name stays.
            Some(Err(_)) => {}
        }
    }

    // ----- events ---------------------------------------------------------

    fn snapshot(&self) -> Snapshot {
        let (a, p) = self
            .lease
            .as_ref()
            .map(|l| (l.addresses.clone(), l.prefixes.clone()))
            .unwrap_or_default();
        (a, p, self.info.clone())
    }

    /// Emits one event per thing that changed since `before`. Addresses and
    /// prefixes compare by identity only: a mere lifetime extension is part
    /// of `LeaseRenewed`, not a change.
    fn emit_changes(&mut self, before: &Snapshot) {
        let (addrs, prefixes, info) = self.snapshot();
        let ids_a = |v: &[LeasedAddress]| v.iter().map(|a| a.addr).collect::<Vec<_>>();
        let ids_p = |v: &[DelegatedPrefix]| v.iter().map(|p| (p.prefix, p.len)).collect::<Vec<_>>();
        if ids_a(&before.0) != ids_a(&addrs) {
            self.actions
                .push(Action::Event(Event::AddressesChanged(addrs)));
        }
        if ids_p(&before.1) != ids_p(&prefixes) {
            self.actions
                .push(Action::Event(Event::PrefixesChanged(prefixes)));
        }
        if before.2.dns_servers != info.dns_servers {
            self.actions
                .push(Action::Event(Event::DnsServersChanged(info.dns_servers)));
        }
        if before.2.domains != info.domains {
            self.actions
                .push(Action::Event(Event::DomainsChanged(info.domains)));
        }
        if before.2.aftr_name != info.aftr_name {
            self.actions
                .push(Action::Event(Event::AftrNameChanged(info.aftr_name)));
        }
    }

    // ----- sending ----------------------------------------------------------

    fn new_xid(&mut self) -> [u8; 3] {
        let n: u32 = self.rng.random();
        let b = n.to_be_bytes();
        [b[1], b[2], b[3]]
    }

    fn random_delay(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.rng.random_range(0..=max.as_micros() as u64))
    }

    fn oro(&self, information_request: bool) -> Vec<u16> {
        let mut oro = BASE_ORO.to_vec();
        if information_request {
            // §21.23 and §21.25: refresh time and INF_MAX_RT.
            oro.push(wire::OPT_INFORMATION_REFRESH_TIME);
            oro.push(wire::OPT_INF_MAX_RT);
        }
        for code in &self.config.extra_oro {
            if !oro.contains(code) {
                oro.push(*code);
            }
        }
        oro
    }

    /// The IAs to send for the kinds we want, holding `addresses` and
    /// `prefixes` (empty: ask for any, with the prefix-length hint).
    fn outgoing_ias(&self, addresses: Vec<Ipv6Addr>, prefixes: Vec<(Ipv6Addr, u8)>) -> OutgoingIas {
        let (want_na, want_pd) = self.wanted_ias();
        let prefix_hint = match self.config.mode {
            Mode::Stateful { prefix_hint, .. } => prefix_hint,
            Mode::Stateless => 0,
        };
        OutgoingIas {
            ia_na: want_na.then_some(addresses),
            ia_pd: want_pd.then_some(prefixes),
            prefix_hint,
        }
    }

    /// The IAs of a Solicit, Renew or Rebind: what we hold, plus an empty IA
    /// for each kind we want but do not hold (RFC 7550 §4.2).
    fn held_ias(&self) -> OutgoingIas {
        let lease = self.lease.as_ref();
        self.outgoing_ias(
            lease
                .map(|l| l.addresses.iter().map(|a| a.addr).collect())
                .unwrap_or_default(),
            lease
                .map(|l| l.prefixes.iter().map(|p| (p.prefix, p.len)).collect())
                .unwrap_or_default(),
        )
    }

    /// Encodes and emits the current exchange's message.
    fn transmit(&mut self, now: Instant) {
        let duid = self.config.duid.clone();
        let (msg_type, server_id, ias, oro, exchange) = match &self.state {
            State::Soliciting {
                exchange: Some(ex), ..
            } => (
                wire::MSG_SOLICIT,
                None,
                self.held_ias(),
                self.oro(false),
                ex,
            ),
            State::Requesting { exchange, offer } => (
                wire::MSG_REQUEST,
                Some(offer.server_id.clone()),
                self.outgoing_ias(offer.addresses.clone(), offer.prefixes.clone()),
                self.oro(false),
                exchange,
            ),
            State::Renewing { exchange } => (
                wire::MSG_RENEW,
                self.lease.as_ref().map(|l| l.server_id.clone()),
                self.held_ias(),
                self.oro(false),
                exchange,
            ),
            State::Rebinding { exchange } => (
                wire::MSG_REBIND,
                None,
                self.held_ias(),
                self.oro(false),
                exchange,
            ),
            State::Declining {
                exchange,
                addresses,
                server_id,
            } => (
                wire::MSG_DECLINE,
                Some(server_id.clone()),
                OutgoingIas {
                    ia_na: Some(addresses.clone()),
                    ia_pd: None,
                    prefix_hint: 0,
                },
                Vec::new(),
                exchange,
            ),
            State::Releasing { exchange, lease } => (
                wire::MSG_RELEASE,
                Some(lease.server_id.clone()),
                OutgoingIas {
                    ia_na: (!lease.addresses.is_empty())
                        .then(|| lease.addresses.iter().map(|a| a.addr).collect()),
                    ia_pd: (!lease.prefixes.is_empty())
                        .then(|| lease.prefixes.iter().map(|p| (p.prefix, p.len)).collect()),
                    prefix_hint: 0,
                },
                Vec::new(),
                exchange,
            ),
            State::InfoRequesting {
                exchange: Some(ex), ..
            } => (
                wire::MSG_INFORMATION_REQUEST,
                None,
                OutgoingIas::default(),
                self.oro(true),
                ex,
            ),
            _ => return,
        };
        let bytes = wire::encode(&Outgoing {
            msg_type,
            xid: exchange.xid,
            client_id: &duid,
            server_id: server_id.as_deref(),
            elapsed_centis: exchange.rtx.elapsed_centis(now),
            oro: &oro,
            ias,
            iaid: self.config.iaid,
            rapid_commit: msg_type == wire::MSG_SOLICIT && self.config.rapid_commit,
        });
        self.counters.sent += 1;
        self.actions.push(Action::Send { bytes });
    }
}

/// A timer that never fires in practice, for exchanges whose end is
/// decided by a lease timer instead.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86400 * 365)
}

/// Starts a Solicit or Information-Request exchange when its initial random
/// delay (§18.2.1, §18.2.6) has passed; true if it did.
fn begin_if_due(
    first_send: &mut Option<Instant>,
    exchange: &mut Option<Exchange>,
    xid: [u8; 3],
    params: Params,
    now: Instant,
    rng: &mut StdRng,
) -> bool {
    if !first_send.is_some_and(|t| now >= t) {
        return false;
    }
    *first_send = None;
    let (rtx, next) = Retransmit::start(params, now, rng);
    *exchange = Some(Exchange { xid, rtx, next });
    true
}

fn solicit_params(sol_max_rt: Duration) -> Params {
    Params {
        irt: rtx::SOL_TIMEOUT,
        mrt: sol_max_rt,
        mrc: 0,
        mrd: None,
        first_rand_positive: true,
    }
}

fn info_params(inf_max_rt: Duration) -> Params {
    Params {
        irt: rtx::INF_TIMEOUT,
        mrt: inf_max_rt,
        mrc: 0,
        mrd: None,
        first_rand_positive: false,
    }
}

/// The status of a message in words, top-level first, then the IAs'.
fn status_words(msg: &Received) -> String {
    if let Some((code, text)) = &msg.status {
        return format!("status {} ({text})", status_name(*code));
    }
    let ia_statuses: Vec<&str> = msg
        .ia_na
        .iter()
        .map(|ia| ia.status)
        .chain(msg.ia_pd.iter().map(|ia| ia.status))
        .flatten()
        .map(status_name)
        .collect();
    if ia_statuses.is_empty() {
        "no IA in the message".to_string()
    } else {
        format!("IA status {}", ia_statuses.join(", "))
    }
}

fn status_name(code: u16) -> &'static str {
    match code {
        0 => "Success",
        1 => "UnspecFail",
        2 => "NoAddrsAvail",
        3 => "NoBinding",
        4 => "NotOnLink",
        5 => "UseMulticast",
        6 => "NoPrefixAvail",
        _ => "other",
    }
}

/// Addresses and prefixes from the IAs a client may use: IAs with a
/// failure status or with T1 > T2 > 0 are skipped (§21.4, §21.21), leases
/// with preferred > valid are skipped (§21.6, §21.22). What such an IA
/// withdraws (valid lifetime 0) is kept all the same: Kea, unable to
/// extend a prefix, sends it with lifetimes 0 under NoPrefixAvail, and a
/// withdrawn prefix must leave the LAN now, not when its old lifetime ends.
fn usable_leases(msg: &Received) -> (Vec<wire::IaAddress>, Vec<wire::IaPrefix>) {
    let ok_ia = |t1: u32, t2: u32, status: Option<u16>| {
        status.is_none_or(|s| s == wire::STATUS_SUCCESS) && !(t1 > 0 && t2 > 0 && t1 > t2)
    };
    let addresses = (msg.ia_na.iter())
        .flat_map(|ia| {
            let ok = ok_ia(ia.t1, ia.t2, ia.status);
            ia.leases.iter().filter(move |a| ok || a.valid == 0)
        })
        .filter(|a| a.preferred <= a.valid)
        .cloned()
        .collect();
    let prefixes = (msg.ia_pd.iter())
        .flat_map(|ia| {
            let ok = ok_ia(ia.t1, ia.t2, ia.status);
            ia.leases.iter().filter(move |p| ok || p.valid == 0)
        })
        .filter(|p| p.preferred <= p.valid && p.len > 0)
        .cloned()
        .collect();
    (addresses, prefixes)
}

/// T1 and T2 for the whole binding: the earliest over the usable IAs
/// (§18.2.4). When a server leaves them to the client (0), use 0.5 and 0.8
/// of the shortest preferred lifetime (§21.4); the same when its T2 is at
/// or past the shortest valid lifetime (T1 = T2 = infinity on finite
/// lifetimes, a misconfigured server): the binding would expire before the
/// client even rebinds, and be lost at every valid lifetime, tunnel and LAN
/// prefix with it. `None` if no IA is usable.
fn renewal_times(msg: &Received) -> Option<(u32, u32)> {
    // Lifetimes gathered into one shape first: one copy of the rules below
    // for both IA types (this runs once per Reply).
    let na = (msg.ia_na.iter()).map(|ia| {
        (
            ia.t1,
            ia.t2,
            ia.status,
            ia.leases.iter().map(|a| (a.preferred, a.valid)).collect(),
        )
    });
    let pd = (msg.ia_pd.iter()).map(|ia| {
        (
            ia.t1,
            ia.t2,
            ia.status,
            ia.leases.iter().map(|p| (p.preferred, p.valid)).collect(),
        )
    });
    na.chain(pd)
        .filter_map(
            |(t1, t2, status, lifetimes): (u32, u32, Option<u16>, Vec<(u32, u32)>)| {
                ia_renewal_times(t1, t2, status, &lifetimes)
            },
        )
        .reduce(|(a1, a2), (b1, b2)| (a1.min(b1), a2.min(b2)))
}

/// [`renewal_times`] of one IA; `None` if it is not usable.
pub(super) fn ia_renewal_times(
    t1: u32,
    t2: u32,
    status: Option<u16>,
    lifetimes: &[(u32, u32)],
) -> Option<(u32, u32)> {
    if status.is_some_and(|s| s != wire::STATUS_SUCCESS) || (t1 > 0 && t2 > 0 && t1 > t2) {
        return None;
    }
    let preferred = renewal_basis(lifetimes)?;
    let own = if preferred == wire::INFINITY {
        (wire::INFINITY, wire::INFINITY)
    } else {
        (preferred / 2, (preferred as u64 * 4 / 5) as u32)
    };
    // What is still preferred must be renewed before it expires; a
    // deprecated entry being renumbered away (preferred 0) may expire.
    let shortest_valid = (lifetimes.iter())
        .filter(|&&(preferred, valid)| preferred > 0 && valid > 0)
        .map(|&(_, valid)| valid)
        .min();
    let past_lifetime = shortest_valid.is_some_and(|v| v != wire::INFINITY && t2 >= v);
    let (t1, t2) = if t1 == 0 || t2 == 0 {
        own
    } else if past_lifetime {
        // Capped, never later than the server asked.
        (t1.min(own.0), t2.min(own.1))
    } else {
        (t1, t2)
    };
    // A zero T1 would renew in a tight loop; one second is the floor.
    Some((t1.max(1), t2.max(1)))
}

/// The lifetime T1/T2 are derived from when the server leaves them to the
/// client: the shortest preferred lifetime of what is still preferred. A
/// deprecated address or prefix (preferred 0, as a server lists one during
/// renumbering) would make it 0 and the client renew every second for as
/// long as the server lists it (§14.2 asks for rate limiting); if all are
/// deprecated, the shortest valid lifetime. An IA of only withdrawn ones
/// (valid 0) still counts (its Reply must be applied), as 0. `None` for an
/// IA without any.
fn renewal_basis(lifetimes: &[(u32, u32)]) -> Option<u32> {
    let live = lifetimes.iter().filter(|&&(_, valid)| valid > 0);
    live.clone()
        .map(|&(preferred, _)| preferred)
        .filter(|&preferred| preferred > 0)
        .min()
        .or_else(|| live.map(|&(_, valid)| valid).min())
        .or_else(|| lifetimes.iter().map(|&(preferred, _)| preferred).min())
}

impl Lease {
    /// Takes in the addresses and prefixes of a Reply: new lifetimes for
    /// what is held, new ones added, the withdrawn (valid 0) gone
    /// (§18.2.10.1).
    fn update(&mut self, now: Instant, addresses: &[wire::IaAddress], prefixes: &[wire::IaPrefix]) {
        merge(
            &mut self.addresses,
            addresses.iter().map(|a| LeasedAddress::from_wire(a, now)),
            |a| a.addr,
        );
        merge(
            &mut self.prefixes,
            prefixes.iter().map(|p| DelegatedPrefix::from_wire(p, now)),
            |p| (p.prefix, p.len),
        );
        self.expire(now);
    }
}

/// Updates `held` with `fresh`: known entries are replaced, new ones added,
/// entries the server did not mention keep their old lifetimes (§18.2.10.1).
fn merge<T, K: PartialEq>(
    held: &mut Vec<T>,
    fresh: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
) {
    for item in fresh {
        match held.iter_mut().find(|h| key(h) == key(&item)) {
            Some(slot) => *slot = item,
            None => held.push(item),
        }
    }
}
