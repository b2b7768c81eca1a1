//! LAN DNS proxy (RFC 5625; RFC 6333 §5.5): IPv4 clients on the LAN ask b4d,
//! b4d asks the IPv6 resolvers learned over DHCPv6 (or configured).
//!
//! - [`wire`]: the few parts of DNS messages the proxy reads, on raw bytes.
//! - [`cache`]: raw answers with aged TTLs, RFC 2308 negative caching.
//! - [`upstream`]: RTT estimates, fastest-first selection, failover timing.
//! - [`local`]: A/PTR answers for LAN hosts ([`LocalHosts`]).
//! - [`proxy`]: the sans-I/O core.
//! - [`driver`]: tokio sockets around the core (`mmsg`: batched LAN UDP I/O).

pub mod cache;
pub mod driver;
pub mod local;
mod mmsg;
pub mod proxy;
pub mod query;
pub mod upstream;
pub mod wire;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

pub use local::LocalHosts;
pub use proxy::{Action, Client, Input, Proxy, Transport};

/// Where to ask the DNS server `ip` (port 53). A link-local server (a
/// cascaded OpenWrt's odhcpd names its own fe80:: address in DHCPv6
/// option 23 when its LAN has no other) is reachable only through the
/// link it was learned on, the WAN `wan_index` (RFC 4007 §6): without the
/// zone, sending to it fails.
pub fn server_address(ip: Ipv6Addr, wan_index: u32) -> SocketAddr {
    let zone = if ip.is_unicast_link_local() {
        wan_index
    } else {
        0
    };
    SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, zone))
}

/// Why a packet was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A client query that cannot be read (short header, bad name, QDCOUNT ≠ 1).
    MalformedQuery,
    /// A client sent a response (QR set).
    NotAQuery,
    /// The same client, ID and transport is already waiting (a retransmission).
    Duplicate,
    /// One client has too many queries waiting.
    ClientFlood,
    /// All query slots are taken.
    TooManyInFlight,
    /// An upstream reply that cannot be read.
    MalformedReply,
    /// A reply nobody waits for (late, or unsolicited).
    Unsolicited,
    /// A reply from another address or port than the one asked (RFC 5452 §9.1).
    WrongSource,
    /// A reply with another ID than the one sent (RFC 5452 §9.1).
    WrongId,
    /// A reply for another question (RFC 5452 §9.1).
    WrongQuestion,
    /// A TCP frame of length 0, or a client's over 4 KiB.
    BadTcpFrame,
    /// A TCP connection refused: the limit is reached.
    TcpConnectionLimit,
    /// A TCP client sent nothing for too long.
    TcpIdle,
    /// A client outside the LAN subnet.
    NotFromLan,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::MalformedQuery => "malformed query",
            DropReason::NotAQuery => "a response sent as a query",
            DropReason::Duplicate => "duplicate of a query in flight",
            DropReason::ClientFlood => "too many queries in flight from one client",
            DropReason::TooManyInFlight => "too many queries in flight",
            DropReason::MalformedReply => "malformed upstream reply",
            DropReason::Unsolicited => "reply to no outstanding query",
            DropReason::WrongSource => "reply from the wrong address or port",
            DropReason::WrongId => "reply with the wrong ID",
            DropReason::WrongQuestion => "reply to another question",
            DropReason::BadTcpFrame => "TCP frame of length 0 or over 4 KiB",
            DropReason::TcpConnectionLimit => "TCP connection over the limit",
            DropReason::TcpIdle => "idle TCP client",
            DropReason::NotFromLan => "client not on the LAN subnet",
        })
    }
}

/// Per-reason drop counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops {
    pub malformed_query: u64,
    pub not_a_query: u64,
    pub duplicate: u64,
    pub client_flood: u64,
    pub too_many_in_flight: u64,
    pub malformed_reply: u64,
    pub unsolicited: u64,
    pub wrong_source: u64,
    pub wrong_id: u64,
    pub wrong_question: u64,
    pub bad_tcp_frame: u64,
    pub tcp_connection_limit: u64,
    pub tcp_idle: u64,
    pub not_from_lan: u64,
}

impl Drops {
    /// Every packet dropped so far, whatever the reason.
    pub fn total(&self) -> u64 {
        self.named().iter().map(|(_, n)| n).sum()
    }

    /// Every counter with its name, for status reports.
    pub fn named(&self) -> [(&'static str, u64); 14] {
        [
            ("malformed_query", self.malformed_query),
            ("not_a_query", self.not_a_query),
            ("duplicate", self.duplicate),
            ("client_flood", self.client_flood),
            ("too_many_in_flight", self.too_many_in_flight),
            ("malformed_reply", self.malformed_reply),
            ("unsolicited", self.unsolicited),
            ("wrong_source", self.wrong_source),
            ("wrong_id", self.wrong_id),
            ("wrong_question", self.wrong_question),
            ("bad_tcp_frame", self.bad_tcp_frame),
            ("tcp_connection_limit", self.tcp_connection_limit),
            ("tcp_idle", self.tcp_idle),
            ("not_from_lan", self.not_from_lan),
        ]
    }

    /// Counts one drop; returns the new count for that reason.
    pub fn count(&mut self, reason: DropReason) -> u64 {
        let n = match reason {
            DropReason::MalformedQuery => &mut self.malformed_query,
            DropReason::NotAQuery => &mut self.not_a_query,
            DropReason::Duplicate => &mut self.duplicate,
            DropReason::ClientFlood => &mut self.client_flood,
            DropReason::TooManyInFlight => &mut self.too_many_in_flight,
            DropReason::MalformedReply => &mut self.malformed_reply,
            DropReason::Unsolicited => &mut self.unsolicited,
            DropReason::WrongSource => &mut self.wrong_source,
            DropReason::WrongId => &mut self.wrong_id,
            DropReason::WrongQuestion => &mut self.wrong_question,
            DropReason::BadTcpFrame => &mut self.bad_tcp_frame,
            DropReason::TcpConnectionLimit => &mut self.tcp_connection_limit,
            DropReason::TcpIdle => &mut self.tcp_idle,
            DropReason::NotFromLan => &mut self.not_from_lan,
        };
        *n += 1;
        *n
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamStatus {
    pub addr: SocketAddr,
    /// Smoothed RTT; `None` until the server has answered once.
    pub srtt_ms: Option<f64>,
    pub queries: u64,
    pub answers: u64,
    /// Timeouts not counted: SERVFAIL, REFUSED, TCP connection failures.
    pub failures: u64,
}

/// What the proxy has done so far, for ubus and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyStatus {
    pub queries_udp: u64,
    pub queries_tcp: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub local_answers: u64,
    pub upstream_queries: u64,
    pub upstream_answers: u64,
    pub upstream_timeouts: u64,
    pub upstream_failures: u64,
    pub servfail_sent: u64,
    /// SERVFAIL because no upstream server is known.
    pub no_upstream: u64,
    pub truncated_sent: u64,
    pub cache_entries: usize,
    pub cache_bytes: usize,
    pub in_flight: usize,
    pub upstreams: Vec<UpstreamStatus>,
    pub drops: Drops,
    /// Why the proxy is not serving (its port held by another server).
    pub problem: Option<String>,
}
