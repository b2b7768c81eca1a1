//! The tokio task around [`Reporter`]: feeds it the DHCPv6 status, netifd's
//! setups and teardowns of the interface and the time, and makes the
//! `notify_proto` calls it asks for over b4d's ubus connection.

use crate::timer::sleep_until;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use log::{info, warn};
use tokio::sync::watch;

use super::report::{self, InterfaceState, NetifdStatus, Reporter};
use crate::dhcpv6::ClientStatus;
use crate::ubus::{Status, Table, UbusHandle};

/// How long b4d waits at shutdown for netifd to take "link-up": false.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// How long the start waits for netifd's status of the interface, asking
/// again every STATUS_RETRY while b4d's ubus connection is still being made.
const STATUS_WAIT: Duration = Duration::from_secs(3);
const STATUS_RETRY: Duration = Duration::from_millis(100);

type PendingCall = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

fn call(ubus: &UbusHandle, message: Table) -> PendingCall {
    let ubus = ubus.clone();
    Box::pin(async move {
        ubus.call(report::OBJECT, report::METHOD, message)
            .await
            .map(|_| ())
    })
}

/// netifd reads /lib/netifd/proto/ only when it starts (proto_shell_init in
/// its main()); neither `ifup` nor a reload looks again. A netifd running
/// since before b4d's package installed b4.sh knows no proto 'b4', whatever
/// /etc/config/network says: the interface gets proto "none" (error
/// INVALID_PROTO in `ifstatus`), its old client stops and netifd refuses
/// b4d's reports, so the WAN has no IPv6 and the tunnel no IPv4.
const RESTART_NETIFD: &str = "if /etc/config/network already says proto 'b4', netifd \
     was started before b4d's handler was installed (it loads handlers only at its \
     start): `service network restart` (a reboot does it too)";

/// What a failed call most likely means, for the log.
fn explain(interface: &str, status: Status) -> String {
    let hint = match status {
        Status::NotFound => format!(
            "netifd is not running, or has no interface '{interface}' \
             (configure it with proto 'b4')"
        ),
        Status::NotSupported => format!(
            "interface '{interface}' is not proto 'b4' in netifd (`ifstatus {interface}`: \
             proto 'none' with error INVALID_PROTO means netifd has no such handler); \
             {RESTART_NETIFD}"
        ),
        Status::PermissionDenied => format!("interface '{interface}' is being torn down"),
        Status::ConnectionFailed => "ubusd is not reachable".to_string(),
        _ => "netifd refused the update".to_string(),
    };
    format!("status {status}: {hint}")
}

/// The warning at b4d's start when netifd does not run the interface with
/// b4d's handler, or `None` when it does.
fn proto_warning(interface: &str, state: &InterfaceState) -> Option<String> {
    let proto = state.proto.as_deref().filter(|p| *p != report::PROTO)?;
    if state.unknown_proto {
        return Some(format!(
            "netifd: interface '{interface}' has no protocol (proto '{proto}', error \
             INVALID_PROTO): netifd knows no handler for the proto /etc/config/network \
             gives it, so nothing configures the WAN and b4d's reports are refused; \
             {RESTART_NETIFD}"
        ));
    }
    Some(format!(
        "netifd: interface '{interface}' is proto '{proto}', not '{b4}': its own client runs \
         on the WAN and b4d's reports are refused; hand it to b4d with `uci set \
         network.{interface}.proto={b4}; uci commit network; service network restart` (not \
         `ifup`: netifd loads protocol handlers only at its start); {RESTART_NETIFD}",
        b4 = report::PROTO
    ))
}

/// Asks netifd how the interface is as b4d starts, so that a b4d restarted
/// while it is down does not bring its prefix back (see
/// [`Reporter::handle_start_state`]), and says when it is not b4d's. No
/// answer (netifd or ubusd not there yet): report as usual.
async fn learn_start_state(ubus: &UbusHandle, interface: &str, reporter: &mut Reporter) {
    let path = report::interface_object(interface);
    let ask = async {
        loop {
            match ubus.call(&path, report::STATUS_METHOD, Table::new()).await {
                Err(Status::ConnectionFailed) => tokio::time::sleep(STATUS_RETRY).await,
                answered => return answered,
            }
        }
    };
    let Ok(Ok(Some(answer))) = tokio::time::timeout(STATUS_WAIT, ask).await else {
        return;
    };
    let Some(state) = InterfaceState::from_status(&answer) else {
        return;
    };
    if let Some(warning) = proto_warning(interface, &state) {
        warn!("{warning}");
    }
    reporter.handle_start_state(&state);
    if reporter.waits_for_setup() {
        info!("netifd: interface '{interface}' is down; reporting at its next setup (ifup)");
    }
}

/// Reports to netifd's `interface` until `shutdown`, then says the link is
/// down (best effort: netifd keeps lifetimes of its own if b4d is killed).
/// `set_up` carries netifd's last word on the interface: true at each setup
/// (report again), false at a teardown (say nothing until the next setup).
pub async fn run(
    interface: String,
    ubus: UbusHandle,
    mut dhcpv6: watch::Receiver<ClientStatus>,
    mut set_up: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
    status: watch::Sender<NetifdStatus>,
) -> io::Result<()> {
    let mut reporter = Reporter::new(&interface);
    let mut pending: Option<PendingCall> = None;
    let mut dhcpv6_open = true;
    let mut set_up_open = true;
    // Log the first failure of a series, and the recovery.
    let mut failing = false;
    {
        let status = dhcpv6.borrow_and_update();
        reporter.handle_lease(Instant::now(), status.lease.as_ref(), &status.info);
    }
    info!("netifd: reporting the DHCPv6 results to interface '{interface}'");
    // A stop meanwhile is not kept waiting (the loop below sees it: the
    // clone's view of the watch is its own).
    let mut stopping = shutdown.clone();
    tokio::select! {
        () = learn_start_state(&ubus, &interface, &mut reporter) => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    status.send_replace(reporter.status());
    loop {
        let now = Instant::now();
        if pending.is_none() {
            if let Some(message) = reporter.poll_send(now) {
                pending = Some(call(&ubus, message));
            }
        }
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() || shutdown.has_changed().is_err() {
                    break;
                }
            }
            changed = dhcpv6.changed(), if dhcpv6_open => {
                if changed.is_err() {
                    dhcpv6_open = false;
                    continue;
                }
                let status = dhcpv6.borrow_and_update();
                reporter.handle_lease(Instant::now(), status.lease.as_ref(), &status.info);
            }
            changed = set_up.changed(), if set_up_open => {
                if changed.is_err() {
                    set_up_open = false;
                } else if *set_up.borrow_and_update() {
                    info!("netifd: interface '{interface}' (re)started, reporting again");
                    reporter.handle_resync();
                } else {
                    info!("netifd: interface '{interface}' torn down, reporting again at its next setup");
                    reporter.handle_teardown();
                    status.send_replace(reporter.status());
                }
            }
            result = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                pending = None;
                let now = Instant::now();
                reporter.handle_answer(now, result);
                status.send_replace(reporter.status());
                match result {
                    Ok(()) => {
                        let snapshot = reporter.snapshot(now);
                        info!(
                            "netifd: interface '{interface}' updated: {} address(es), {} prefix(es){}",
                            snapshot.addresses.len(),
                            snapshot.prefixes.len(),
                            if snapshot.is_down() { " (link down)" } else { "" }
                        );
                        failing = false;
                    }
                    Err(status) if !failing => {
                        warn!(
                            "netifd: cannot update interface '{interface}': {}; retrying",
                            explain(&interface, status)
                        );
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            _ = sleep_until(reporter.poll_timeout(Instant::now())) => {}
        }
    }
    // A call still out may be the one that brings the link up: its answer
    // decides whether there is anything to take down.
    if let Some(call) = pending.take() {
        if let Ok(result) = tokio::time::timeout(STOP_WAIT, call).await {
            reporter.handle_answer(Instant::now(), result);
        }
    }
    if reporter.reported_up() {
        let down = report::link_down_message(&interface);
        let said = tokio::time::timeout(STOP_WAIT, call(&ubus, down)).await;
        if !matches!(said, Ok(Ok(()))) {
            warn!("netifd: could not tell interface '{interface}' that b4d stops");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ubus::Value;

    fn status(proto: &str, errors: Vec<Value>) -> InterfaceState {
        let mut status = Table::new()
            .with("up", false)
            .with("pending", false)
            .with("proto", proto);
        if !errors.is_empty() {
            status.push("errors", errors);
        }
        InterfaceState::from_status(&status).unwrap()
    }

    fn error(subsystem: &str, code: &str) -> Value {
        Table::new()
            .with("subsystem", subsystem)
            .with("code", code)
            .into()
    }

    #[test]
    fn b4d_s_own_proto_gets_no_warning() {
        assert_eq!(proto_warning("wan6", &status("b4", vec![])), None);
    }

    /// netifd started before the package installed b4.sh: proto "none" and
    /// INVALID_PROTO, as proto_attach_interface sets them. Only restarting
    /// netifd helps, and the warning says so.
    #[test]
    fn a_handler_netifd_has_not_loaded_asks_for_a_netifd_restart() {
        let state = status("none", vec![error("proto", "INVALID_PROTO")]);
        assert!(state.unknown_proto);
        let warning = proto_warning("wan6", &state).unwrap();
        assert!(warning.contains("has no protocol"), "{warning}");
        assert!(warning.contains("`service network restart`"), "{warning}");
        assert!(!warning.contains("ifup wan6"), "{warning}");
        // Another subsystem's error is not this one.
        let state = status("none", vec![error("device", "INVALID_PROTO")]);
        assert!(!state.unknown_proto);
    }

    #[test]
    fn another_client_s_proto_names_the_change_and_the_netifd_restart() {
        let warning = proto_warning("wan6", &status("dhcpv6", vec![])).unwrap();
        assert!(warning.contains("is proto 'dhcpv6', not 'b4'"), "{warning}");
        assert!(
            warning.contains(
                "`uci set network.wan6.proto=b4; uci commit network; service network restart`"
            ),
            "{warning}"
        );
        assert!(
            warning.contains("already says proto 'b4', netifd was started before"),
            "{warning}"
        );
    }

    #[test]
    fn a_refused_report_names_the_netifd_restart() {
        let hint = explain("wan6", Status::NotSupported);
        assert!(hint.contains("INVALID_PROTO"), "{hint}");
        assert!(hint.contains("`service network restart`"), "{hint}");
    }
}
