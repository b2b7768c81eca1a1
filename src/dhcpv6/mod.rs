//! The WAN side: a DHCPv6 client (RFC 8415) that learns the address (IA_NA),
//! the delegated prefix (IA_PD), DNS servers, domains and the AFTR name
//! (RFC 6334 option 64).
//!
//! `client` is the sans-I/O state machine, `wire` the codec, `retransmit`
//! the RFC 8415 §15 timers, `duid` the persisted identity, `persist` the
//! binding kept across a restart and `driver` the tokio task that moves
//! bytes and time.

pub mod client;
pub mod driver;
pub mod duid;
pub mod events;
pub mod lease;
pub mod persist;
pub mod retransmit;
pub mod wire;

pub use client::{Action, Client, ClientConfig, ClientStatus, Input, Mode};
pub use events::{Event, LossReason};

#[cfg(test)]
mod client_tests;
