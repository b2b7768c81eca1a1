//! b4d: a DS-Lite B4 element (RFC 6333) for OpenWrt routers.
//!
//! Each subsystem lives in its own folder; `main.rs` only wires them together.

pub mod atomic_file;
pub mod boot_clock;
pub mod check;
pub mod cli;
pub mod config;
pub mod dhcpv4;
pub mod dhcpv6;
pub mod dns;
pub mod fixed;
pub mod lan4;
pub mod lan6;
pub mod logging;
pub mod ndisc;
pub mod netifd;
pub mod netlink;
pub mod status;
pub mod sysctl;
pub mod timer;
pub mod tunnel;
pub mod ubus;
