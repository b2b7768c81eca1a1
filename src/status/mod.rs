//! The one status model: what state the B4 is in and why.
//!
//! A plain struct that the subsystems update (through a
//! `tokio::sync::watch::Sender<Status>`, with `send_modify`) and that ubus, the
//! logs and the CLI read, so there is one truth. It starts small (overall state,
//! reason, uptime, version, last event and error); each subsystem adds its own
//! section as a field here (`dhcpv6`, `aftr`, `tunnel`, `dns`, `dhcpv4`) when it
//! has something to report, and `ubus::b4` renders it.

pub mod collect;

use std::fmt;
use std::time::Instant;

use crate::dhcpv4::server::ServerStatus;
use crate::dhcpv6::ClientStatus;
use crate::dns::ProxyStatus;
use crate::lan6::Lan6Status;
use crate::netifd::NetifdStatus;
use crate::tunnel::driver::TunnelStatus;

/// The B4's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Just started, nothing known yet.
    Starting,
    /// Waiting for the WAN: link, DHCPv6 lease, AFTR name.
    WaitingForWan,
    /// Tunnel up: IPv4 works through the AFTR.
    Up,
    /// Something needed is missing or failed; the reason says what.
    Down,
    /// Stood down on purpose (tunnel disabled, native IPv4 present).
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::WaitingForWan => "waiting-for-wan",
            State::Up => "up",
            State::Down => "down",
            State::Disabled => "disabled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened, with when: monotonic, turned into Unix seconds
/// when a reply is written. Stamped with the wall clock, something that
/// happened before NTP stepped a router's clock (no battery-backed clock:
/// it boots at its newest file's time) would keep a time hours or months off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub at: Instant,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub version: &'static str,
    /// When the daemon started, for uptime.
    pub started: Instant,
    pub state: State,
    /// Why the state is what it is, in words a support desk can act on
    /// ("AFTR name aftr.example.net has no AAAA (NXDOMAIN), retry in 8 s").
    pub reason: String,
    /// When `state` last changed.
    pub since: Instant,
    pub last_event: Option<Stamped>,
    pub last_error: Option<Stamped>,
    pub wan_device: String,
    /// `None` with DHCPv6 off.
    pub dhcpv6: Option<ClientStatus>,
    /// `None` with the tunnel disabled.
    pub tunnel: Option<TunnelStatus>,
    /// LAN DNS proxy counters (`None`: proxy off).
    pub dns: Option<ProxyStatus>,
    /// LAN DHCPv4 server counters (`None`: server off).
    pub dhcpv4: Option<ServerStatus>,
    /// Native IPv6 on the LAN (`None`: not in standalone mode).
    pub ipv6_lan: Option<Lan6Status>,
    /// Reporting to netifd (`None`: not in netifd mode).
    pub netifd: Option<NetifdStatus>,
}

impl Status {
    pub fn new(now: Instant) -> Status {
        Status {
            version: env!("CARGO_PKG_VERSION"),
            started: now,
            state: State::Starting,
            reason: "starting".to_string(),
            since: now,
            last_event: None,
            last_error: None,
            wan_device: String::new(),
            dhcpv6: None,
            tunnel: None,
            dns: None,
            dhcpv4: None,
            ipv6_lan: None,
            netifd: None,
        }
    }

    /// Changes the overall state; returns whether anything changed (for
    /// `watch::Sender::send_if_modified`).
    pub fn set_state(&mut self, now: Instant, state: State, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        if self.state == state && self.reason == reason {
            return false;
        }
        if self.state != state {
            self.since = now;
        }
        self.state = state;
        self.reason = reason;
        true
    }
}
