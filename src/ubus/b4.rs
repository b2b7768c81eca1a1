//! The `b4` ubus object: `status`, `leases`, `renew`, `check`, `reload`, and the
//! `b4.state` event.
//!
//! [`serve`] answers the calls the driver hands over, reading the shared
//! [`Status`] model, and sends `b4.state` whenever the overall state or its
//! reason changes. What a method needs from other subsystems comes in through
//! [`Backend`], so this module knows nothing about their internals.

use std::io;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::info;
use tokio::sync::{mpsc, watch};

use super::connection::{MethodSpec, ObjectSpec, Reply};
use super::driver::{UbusHandle, UbusRequest};
use super::wire::{BlobType, Status as UbusStatus, Table, Value};
use crate::status::{Stamped, Status};

pub const OBJECT_NAME: &str = "b4";
pub const STATE_EVENT: &str = "b4.state";

/// The object's methods and their declared arguments (`ubus -v list b4`).
/// No method declares `ubus_rpc_session`; calls through rpcd carry it anyway
/// and it is ignored.
pub fn object() -> ObjectSpec {
    ObjectSpec {
        name: OBJECT_NAME.to_string(),
        methods: vec![
            MethodSpec::new("status", &[]),
            MethodSpec::new("leases", &[]),
            MethodSpec::new("renew", &[("reason", BlobType::String)]),
            MethodSpec::new("check", &[]),
            MethodSpec::new("reload", &[]),
        ],
    }
}

/// What the methods act on besides the status model.
pub struct Backend {
    pub status: watch::Receiver<Status>,
    /// Forces a DHCPv6 renew (and with it AFTR re-resolution); `reason` is for
    /// the log. Returns false when there is nothing to renew (DHCPv6 off).
    pub renew: Box<dyn Fn(&str) -> bool + Send>,
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn stamped(s: &Stamped) -> Table {
    Table::new()
        .with("time", unix_seconds(s.at))
        .with("text", s.text.as_str())
}

/// The `status` reply. Durations are whole seconds.
pub fn status_table(status: &Status, now: Instant) -> Table {
    let mut t = Table::new()
        .with("state", status.state.as_str())
        .with("reason", status.reason.as_str())
        .with(
            "state_since",
            now.saturating_duration_since(status.since).as_secs(),
        )
        .with(
            "uptime",
            now.saturating_duration_since(status.started).as_secs(),
        )
        .with("version", status.version);
    if let Some(e) = &status.last_event {
        t.push("last_event", stamped(e));
    }
    if let Some(e) = &status.last_error {
        t.push("last_error", stamped(e));
    }
    t
}

/// The `b4.state` event payload.
pub fn state_event(status: &Status) -> Table {
    Table::new()
        .with("state", status.state.as_str())
        .with("reason", status.reason.as_str())
}

fn answer(backend: &Backend, request: &UbusRequest, now: Instant) -> Reply {
    match request.method.as_str() {
        "status" => Reply::ok(status_table(&backend.status.borrow(), now)),
        // The DHCPv4 server is not there yet: no leases.
        "leases" => Reply::ok(Table::new().with("leases", Value::Array(Vec::new()))),
        "renew" => {
            let reason = request
                .args
                .get("reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .unwrap_or("ubus call");
            if (backend.renew)(reason) {
                info!("ubus: renew requested ({reason})");
                Reply::ok(Table::new().with("renewed", true).with("reason", reason))
            } else {
                Reply::error(UbusStatus::NotSupported)
            }
        }
        // Diagnostics and reload come with the subsystems they exercise.
        "check" | "reload" => Reply::error(UbusStatus::NotSupported),
        _ => Reply::error(UbusStatus::MethodNotFound),
    }
}

/// Answers calls until `shutdown` or until the driver is gone; sends
/// `b4.state` on every change of state or reason.
pub async fn serve(
    mut requests: mpsc::Receiver<UbusRequest>,
    events: UbusHandle,
    mut backend: Backend,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut last = state_event(&backend.status.borrow_and_update());
    let mut status_open = true;
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() || shutdown.has_changed().is_err() {
                    return Ok(());
                }
            }
            request = requests.recv() => match request {
                Some(request) => {
                    let reply = answer(&backend, &request, Instant::now());
                    let _ = request.reply.send(reply);
                }
                None => return Ok(()),
            },
            changed = backend.status.changed(), if status_open => {
                if changed.is_err() {
                    status_open = false;
                    continue;
                }
                let now = state_event(&backend.status.borrow_and_update());
                if now != last {
                    events.publish_event(STATE_EVENT, now.clone());
                    last = now;
                }
            }
        }
    }
}
