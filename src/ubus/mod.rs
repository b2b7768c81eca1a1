//! ubus: b4d's native ubus client, which publishes the `b4` object and sends
//! `b4.state` events.
//!
//! Why it is written here: no published crate can serve an object. The `ubus`
//! crate is a client only (it calls objects, it cannot publish one), and
//! `ubus-rs` can register an object but cannot reply to calls. Linking libubus
//! through C bindings would pull libubox and a C build into a Rust-only package.
//! The protocol itself is small (a header, blob attributes, six message types),
//! and `../shared/ubus-traces/` holds byte-exact recordings of OpenWrt's ubusd to
//! test against.
//!
//! - [`wire`]: message header, blob/blobmsg codec and the [`wire::Value`] model;
//!   total functions on bytes.
//! - [`connection`]: the sans-I/O client core (HELLO, ADD_OBJECT, INVOKE →
//!   DATA + STATUS, events, reconnect with re-registration).
//! - [`driver`]: the tokio task owning the unix socket.
//! - [`b4`]: the `b4` object: its methods, and how the daemon's status becomes a
//!   blobmsg table.

pub mod b4;
pub mod connection;
pub mod driver;
pub mod status_table;
pub mod wire;

#[cfg(test)]
mod tests;

pub use connection::{Call, CallId, MethodSpec, ObjectSpec, Reply};
pub use driver::{UbusHandle, UbusRequest, DEFAULT_SOCKET};
pub use wire::{BlobType, Status, Table, Value};
