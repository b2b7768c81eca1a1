//! Native IPv6 for the LAN in standalone mode (`globals.ipv6_handoff
//! 'standalone'`): the delegated prefix's /64 on the LAN bridge and the
//! unreachable route for the rest of it, following the DHCPv6 lease through
//! renews and renumbering. Announcing the prefix to LAN hosts is left to an
//! RA daemon (radvd, odhcpd) that reads the bridge's addresses.
//!
//! - `plan`: the pure decisions (sans-I/O), unit-tested and fuzzed;
//! - `kernel`: the few rtnetlink operations it needs;
//! - `driver`: the tokio task that feeds the plan and applies it.

pub mod driver;
pub mod kernel;
pub mod plan;

pub use driver::Lan6Status;
