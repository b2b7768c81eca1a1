//! The `b4` ubus object: `status`, `leases`, `renew`, `check`, `reload`,
//! `netifd_setup`, `netifd_teardown`, and the `b4.state` event.
//!
//! [`serve`] answers the calls the driver hands over, reading the shared
//! [`Status`] model, and sends `b4.state` whenever the overall state or its
//! reason changes. What a method needs from other subsystems comes in through
//! [`Backend`], so this module knows nothing about their internals.

use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use log::info;
use tokio::sync::{mpsc, watch};

use super::connection::{MethodSpec, ObjectSpec, Reply};
use super::driver::{UbusHandle, UbusRequest};
use super::wire::{BlobType, Status as UbusStatus, Table, Value};
use crate::check;
use crate::dhcpv4::LeaseInfo;
use crate::lan4::driver::LanSubnet;
use crate::status::Status;

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
            // Called by netifd's protocol handler (/lib/netifd/proto/b4.sh)
            // when it (re)starts or tears down the interface; not in LuCI's ACL.
            MethodSpec::new("netifd_setup", &[("interface", BlobType::String)]),
            MethodSpec::new("netifd_teardown", &[("interface", BlobType::String)]),
        ],
    }
}

/// What the methods act on besides the status model.
pub struct Backend {
    pub status: watch::Receiver<Status>,
    /// The DHCPv4 server's leases (`None` with the server off).
    pub leases: Option<watch::Receiver<Arc<Vec<LeaseInfo>>>>,
    /// The LAN subnet the DNS proxy listens on and its port, for `check`
    /// (`None`: off).
    pub dns_proxy: Option<(LanSubnet, u16)>,
    /// Asks the daemon to re-read its configuration (as SIGHUP does).
    pub reload: Box<dyn Fn() -> bool + Send>,
    /// Forces a DHCPv6 renew (and with it AFTR re-resolution); `reason` is for
    /// the log. Returns false when there is nothing to renew (DHCPv6 off).
    pub renew: Box<dyn Fn(&str) -> bool + Send>,
    /// netifd (re)started (`true`: report to it again) or tore down
    /// (`false`: report nothing until the next setup) interface `name` with
    /// proto 'b4'. Returns false when b4d does not report to netifd, or to
    /// another interface.
    pub netifd_proto: NetifdProto,
}

/// `(interface, set_up) -> reported to`: see [`Backend::netifd_proto`].
pub type NetifdProto = Box<dyn Fn(&str, bool) -> bool + Send>;

pub use super::status_table::status_table;

/// The `leases` reply: every DHCPv4 lease, static hosts included;
/// `expires` is the seconds left at `now` on the DHCPv4 server's clock
/// (CLOCK_BOOTTIME seconds; as odhcpd's `valid`: the LuCI page runs in a
/// browser whose clock is not the router's), 0 for static leases.
pub fn leases_table(leases: &[LeaseInfo], now: u64) -> Table {
    let list = leases
        .iter()
        .map(|l| {
            let mac = l
                .mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            let mut t = Table::new()
                .with("mac", mac)
                .with("ip", l.ip.to_string())
                .with("expires", l.expires.saturating_sub(now))
                .with("static", l.is_static);
            if let Some(name) = &l.hostname {
                t.push("hostname", name.as_str());
            }
            Value::from(t)
        })
        .collect();
    Table::new().with("leases", Value::Array(list))
}

/// The `check` reply: every check with `ok` true, false, or absent when it
/// was skipped, and a `detail` in words; `ok` at the top when none failed.
pub fn check_table(outcomes: &[check::Outcome]) -> Table {
    let list = outcomes
        .iter()
        .map(|o| {
            let mut t = Table::new().with("name", o.name);
            match o.ok {
                Some(ok) => t.push("ok", ok),
                None => t.push("skipped", true),
            }
            t.push("detail", o.detail.as_str());
            Value::from(t)
        })
        .collect();
    Table::new()
        .with("ok", outcomes.iter().all(|o| o.ok != Some(false)))
        .with("checks", Value::Array(list))
}

/// The last `b4.state` event, when b4d stops (SIGTERM): a listener (a
/// failover script) must not keep the last "up" while the tunnel goes.
pub fn stopping_event() -> Table {
    Table::new()
        .with("state", "stopping")
        .with("reason", "b4d stopping")
}

/// The `b4.state` event payload.
pub fn state_event(status: &Status) -> Table {
    Table::new()
        .with("state", status.state.as_str())
        .with("reason", status.reason.as_str())
}

fn answer(backend: &Backend, request: &UbusRequest, now: Instant) -> Reply {
    match request.method.as_str() {
        "status" => Reply::ok(status_table(
            &backend.status.borrow(),
            now,
            SystemTime::now(),
        )),
        "leases" => Reply::ok(leases_table(
            backend
                .leases
                .as_ref()
                .map(|l| l.borrow().clone())
                .as_deref()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            crate::dhcpv4::clock_now(),
        )),
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
        // `check` is answered by `serve` (it takes seconds).
        "reload" if (backend.reload)() => {
            info!("ubus: reload requested");
            Reply::ok(Table::new().with("reloading", true))
        }
        "reload" => Reply::error(UbusStatus::UnknownError),
        "netifd_setup" | "netifd_teardown" => {
            let interface = request
                .args
                .get("interface")
                .and_then(Value::as_str)
                .unwrap_or("");
            if (backend.netifd_proto)(interface, request.method == "netifd_setup") {
                Reply::ok(Table::new().with("interface", interface))
            } else {
                info!(
                    "ubus: netifd called {} for interface '{interface}' with proto 'b4', \
                     but b4d does not report to it (globals.ipv6_handoff, wan.netifd_interface)",
                    request.method
                );
                Reply::error(UbusStatus::NotSupported)
            }
        }
        _ => Reply::error(UbusStatus::MethodNotFound),
    }
}

/// Where the DNS proxy listens now (the LAN address may have moved), or
/// why the LAN has no address; `None` when the proxy is off.
fn dns_proxy_address(backend: &Backend) -> Option<Result<(Ipv4Addr, u16), String>> {
    let (lan, port) = backend.dns_proxy.as_ref()?;
    let address = lan
        .borrow()
        .as_ref()
        .map(|subnet| subnet.address())
        .map_err(Clone::clone);
    Some(address.map(|a| (a, *port)))
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
            // Shutdown first: no state event may follow the last one,
            // "stopping", which main publishes once shutdown is set.
            biased;
            _ = shutdown.changed() => {
                if *shutdown.borrow() || shutdown.has_changed().is_err() {
                    return Ok(());
                }
            }
            request = requests.recv() => match request {
                Some(request) if request.method == "check" => {
                    // The probes wait for answers: run them aside so other
                    // calls are answered meanwhile.
                    let targets = check::Targets::from_status(&backend.status.borrow(), dns_proxy_address(&backend));
                    tokio::spawn(async move {
                        let reply = match tokio::task::spawn_blocking(move || check::run(&targets)).await {
                            Ok(outcomes) => Reply::ok(check_table(&outcomes)),
                            Err(_) => Reply::error(UbusStatus::UnknownError),
                        };
                        let _ = request.reply.send(reply);
                    });
                }
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::status::Stamped;
    use crate::status::State;
    use crate::ubus::driver::channels;
    use std::time::UNIX_EPOCH;
    use tokio::sync::oneshot;

    fn backend(
        status: watch::Receiver<Status>,
        renew_works: bool,
    ) -> (Backend, Arc<Mutex<Vec<String>>>) {
        let renewed = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&renewed);
        let backend = Backend {
            status,
            leases: None,
            dns_proxy: None,
            reload: Box::new(|| true),
            netifd_proto: Box::new(|name, _| name == "wan6"),
            renew: Box::new(move |reason| {
                log.lock().unwrap().push(reason.to_string());
                renew_works
            }),
        };
        (backend, renewed)
    }

    fn request(method: &str, args: Table) -> (UbusRequest, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let req = UbusRequest {
            method: method.into(),
            args,
            user: Some("root".into()),
            reply: tx,
        };
        (req, rx)
    }

    #[test]
    fn status_is_one_table_with_state_reason_times_and_version() {
        let t0 = Instant::now();
        let mut status = Status::new(t0);
        status.wan_device = "wan".into();
        status.set_state(
            t0 + Duration::from_secs(10),
            State::Down,
            "AFTR unreachable",
        );
        // Stamped 10 s after the start, before NTP stepped the wall clock
        // (by a year): the reply says when on the clock as it is now.
        status.last_error = Some(Stamped {
            at: t0 + Duration::from_secs(10),
            text: "AFTR unreachable".into(),
        });
        let wall_now = UNIX_EPOCH + Duration::from_secs(1_700_000_032);
        let table = status_table(&status, t0 + Duration::from_secs(42), wall_now);
        assert_eq!(
            table.to_string(),
            format!(
                r#"{{"state":"down","reason":"AFTR unreachable","state_since":32,"uptime":42,"version":"{}","last_error":{{"time":1700000000,"text":"AFTR unreachable"}},"wan":{{"device":"wan"}}}}"#,
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn netifd_setup_and_teardown_are_accepted_only_for_the_interface_b4d_reports_to() {
        let (_tx, rx) = watch::channel(Status::new(Instant::now()));
        let (b, _) = backend(rx, true);
        let now = Instant::now();
        let (req, _) = request("netifd_setup", Table::new().with("interface", "wan6"));
        assert_eq!(
            answer(&b, &req, now),
            Reply::ok(Table::new().with("interface", "wan6"))
        );
        let (req, _) = request("netifd_setup", Table::new().with("interface", "wan"));
        assert_eq!(
            answer(&b, &req, now),
            Reply::error(UbusStatus::NotSupported)
        );
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&calls);
        let b = Backend {
            netifd_proto: Box::new(move |name, up| {
                log.lock().unwrap().push((name.to_string(), up));
                true
            }),
            ..b
        };
        for method in ["netifd_teardown", "netifd_setup"] {
            let (req, _) = request(method, Table::new().with("interface", "wan6"));
            assert_eq!(
                answer(&b, &req, now),
                Reply::ok(Table::new().with("interface", "wan6"))
            );
        }
        assert_eq!(
            *calls.lock().unwrap(),
            [("wan6".to_string(), false), ("wan6".to_string(), true)]
        );
    }

    #[test]
    fn renew_passes_the_reason_on_and_says_so_or_is_not_supported() {
        let (_tx, rx) = watch::channel(Status::new(Instant::now()));
        let (b, renewed) = backend(rx.clone(), true);
        let now = Instant::now();
        let (req, _) = request("renew", Table::new().with("reason", "luci"));
        assert_eq!(
            answer(&b, &req, now),
            Reply::ok(Table::new().with("renewed", true).with("reason", "luci"))
        );
        let (req, _) = request("renew", Table::new().with("reason", ""));
        assert!(answer(&b, &req, now).status == UbusStatus::Ok);
        assert_eq!(*renewed.lock().unwrap(), ["luci", "ubus call"]);

        let (off, _) = backend(rx, false);
        let (req, _) = request("renew", Table::new());
        assert_eq!(
            answer(&off, &req, now),
            Reply::error(UbusStatus::NotSupported)
        );
    }

    #[test]
    fn serve_answers_calls_and_sends_b4_state_on_each_change_only() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t0 = Instant::now();
            let (status_tx, status_rx) = watch::channel(Status::new(t0));
            let (handle, mut ends) = channels();
            let (requests_tx, requests_rx) = mpsc::channel(4);
            let (shutdown_tx, shutdown_rx) = watch::channel(false);
            let (b, _) = backend(status_rx, true);
            let task = tokio::spawn(serve(requests_rx, handle, b, shutdown_rx));

            let (req, reply) = request("status", Table::new());
            requests_tx.send(req).await.unwrap();
            let reply = reply.await.unwrap();
            assert_eq!(
                reply.data.unwrap().get("state"),
                Some(&Value::from("starting"))
            );

            status_tx.send_if_modified(|s| s.set_state(t0, State::Up, "tunnel up"));
            let (name, data) = ends.events.recv().await.unwrap();
            assert_eq!(name, STATE_EVENT);
            assert_eq!(data.to_string(), r#"{"state":"up","reason":"tunnel up"}"#);

            // A change elsewhere in the model is not a state change.
            status_tx.send_modify(|s| {
                s.last_event = Some(Stamped {
                    at: Instant::now(),
                    text: "lease renewed".into(),
                })
            });
            status_tx.send_if_modified(|s| s.set_state(t0, State::Down, "AFTR unreachable"));
            let (_, data) = ends.events.recv().await.unwrap();
            assert_eq!(
                data.to_string(),
                r#"{"state":"down","reason":"AFTR unreachable"}"#
            );

            shutdown_tx.send_replace(true);
            task.await.unwrap().unwrap();
            assert!(ends.events.try_recv().is_err(), "no other event");
        });
    }

    #[test]
    fn leases_lists_mac_ip_expiry_and_hostname() {
        let leases = [
            LeaseInfo {
                mac: [2, 0, 0, 0, 0, 0x0a],
                ip: "192.168.1.100".parse().unwrap(),
                hostname: Some("tv".into()),
                expires: 1_700_000_000,
                is_static: false,
            },
            LeaseInfo {
                mac: [2, 0, 0, 0, 0, 0x0b],
                ip: "192.168.1.10".parse().unwrap(),
                hostname: None,
                expires: 0,
                is_static: true,
            },
        ];
        assert_eq!(
            leases_table(&leases, 1_699_999_000).to_string(),
            r#"{"leases":[{"mac":"02:00:00:00:00:0a","ip":"192.168.1.100","expires":1000,"static":false,"hostname":"tv"},{"mac":"02:00:00:00:00:0b","ip":"192.168.1.10","expires":0,"static":true}]}"#
        );
    }
}
