//! The B4 itself (RFC 6333 §5): the ip4ip6 softwire from the WAN address to
//! the AFTR, 192.0.0.2/29 on it, the IPv4 default route through it, its MTU
//! and TCP MSS clamping.
//!
//! - `aftr` / `aftr_query`: which AFTR (sans-I/O resolution core, DNS wire);
//! - `plan`: what the kernel should have and the operations to get there
//!   (pure, unit-tested without a kernel);
//! - `kernel`: observing and changing links, addresses and routes over
//!   rtnetlink; `nft`: the MSS clamping table; `nft_watch`: noticing that
//!   another program deleted it;
//! - `softwire_error`: ICMPv6 errors saying the AFTR address is not
//!   reachable (parser and socket);
//! - `driver`: the one reconcile loop, woken by netlink notifications,
//!   DHCPv6 changes, softwire errors and the resolver's timers, never by
//!   polling.

pub mod aftr;
pub mod aftr_query;
pub mod driver;
pub mod kernel;
pub mod lookup;
pub mod nft;
pub mod nft_watch;
pub mod plan;
pub mod softwire_error;
