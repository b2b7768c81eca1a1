//! Keeps the one status model current: follows the DHCPv6 client's and the
//! tunnel's own status channels and the DHCPv6 event stream, and derives the
//! overall state with its reason in words.

use std::time::Instant;

use tokio::sync::{broadcast, watch};

use super::{Stamped, State, Status};
use crate::dhcpv4::server::ServerStatus;
use crate::dhcpv6::{ClientStatus, Event};
use crate::dns::ProxyStatus;
use crate::lan6::Lan6Status;
use crate::netifd::NetifdStatus;
use crate::tunnel::driver::TunnelStatus;

/// The overall state and its reason, from the subsystems' own status.
pub fn overall(dhcpv6: Option<&ClientStatus>, tunnel: Option<&TunnelStatus>) -> (State, String) {
    let Some(tunnel) = tunnel else {
        return (
            State::Disabled,
            "tunnel disabled in the config (tunnel.enabled '0')".into(),
        );
    };
    if tunnel.state == "up" {
        if let Some(spec) = &tunnel.spec {
            let name = tunnel
                .aftr
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            return (
                State::Up,
                format!(
                    "IPv4 through {} to AFTR {}{name}, local {}, MTU {}",
                    spec.name, spec.remote, spec.local, spec.mtu
                ),
            );
        }
    }
    let reason = tunnel.reason.clone().unwrap_or_else(|| "starting".into());
    if tunnel.standing_down {
        return (State::Disabled, reason);
    }
    match dhcpv6 {
        Some(client) if client.lease.is_none() => {
            let mut why = format!("no DHCPv6 lease yet (DHCPv6 {})", client.state);
            if let Some(problem) = &client.last_problem {
                why.push_str(&format!("; last problem: {problem}"));
            }
            (State::WaitingForWan, why)
        }
        _ if tunnel.state.is_empty() => (State::Starting, "starting".into()),
        _ => (State::Down, reason),
    }
}

/// Applies the latest DHCPv6 and tunnel status; returns whether anything
/// changed. Problems that appear are remembered as the last error.
pub fn absorb(
    status: &mut Status,
    now: Instant,
    dhcpv6: Option<ClientStatus>,
    tunnel: Option<TunnelStatus>,
) -> bool {
    let mut changed = false;
    let new_error = |old: Option<&String>, new: Option<&String>| match new {
        Some(e) if old != Some(e) => Some(e.clone()),
        _ => None,
    };
    let dhcp_error = new_error(
        status.dhcpv6.as_ref().and_then(|d| d.last_problem.as_ref()),
        dhcpv6.as_ref().and_then(|d| d.last_problem.as_ref()),
    );
    let tunnel_error = new_error(
        status.tunnel.as_ref().and_then(|t| t.last_error.as_ref()),
        tunnel.as_ref().and_then(|t| t.last_error.as_ref()),
    );
    // Before the first lease "no AFTR name" is the normal start, not an error.
    let leased = dhcpv6.as_ref().is_none_or(|d| d.lease.is_some());
    let aftr_error = new_error(
        status.tunnel.as_ref().and_then(|t| t.aftr.problem.as_ref()),
        tunnel.as_ref().and_then(|t| t.aftr.problem.as_ref()),
    )
    .filter(|_| leased);
    for text in [dhcp_error, tunnel_error, aftr_error].into_iter().flatten() {
        status.last_error = Some(Stamped { at: now, text });
        changed = true;
    }
    if status.dhcpv6 != dhcpv6 {
        status.dhcpv6 = dhcpv6;
        changed = true;
    }
    if status.tunnel != tunnel {
        status.tunnel = tunnel;
        changed = true;
    }
    let (state, reason) = overall(status.dhcpv6.as_ref(), status.tunnel.as_ref());
    status.set_state(now, state, reason) || changed
}

async fn changed<T>(rx: &mut Option<watch::Receiver<T>>) {
    match rx {
        Some(r) => {
            if r.changed().await.is_err() {
                *rx = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// The subsystems' own status channels (`None`: that subsystem is off).
pub struct Sources {
    pub dhcpv6: Option<watch::Receiver<ClientStatus>>,
    pub tunnel: Option<watch::Receiver<TunnelStatus>>,
    pub dns: Option<watch::Receiver<ProxyStatus>>,
    pub dhcpv4: Option<watch::Receiver<ServerStatus>>,
    pub lan6: Option<watch::Receiver<Lan6Status>>,
    pub netifd: Option<watch::Receiver<NetifdStatus>>,
}

/// Runs until shutdown.
pub async fn run(
    status: watch::Sender<Status>,
    sources: Sources,
    mut events: broadcast::Receiver<Event>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let Sources {
        mut dhcpv6,
        mut tunnel,
        mut dns,
        mut dhcpv4,
        mut lan6,
        mut netifd,
    } = sources;
    let mut events_open = true;
    loop {
        let snapshot_d = dhcpv6.as_ref().map(|r| r.borrow().clone());
        let snapshot_t = tunnel.as_ref().map(|r| r.borrow().clone());
        let counters_dns = dns.as_ref().map(|r| r.borrow().clone());
        let counters_dhcpv4 = dhcpv4.as_ref().map(|r| r.borrow().clone());
        let snapshot_l = lan6.as_ref().map(|r| r.borrow().clone());
        let snapshot_n = netifd.as_ref().map(|r| r.borrow().clone());
        status.send_if_modified(|s| {
            // Counters change all the time: they are read on demand, never a
            // reason to notify.
            s.dns = counters_dns;
            s.dhcpv4 = counters_dhcpv4;
            let lan6_changed = s.ipv6_lan != snapshot_l || s.netifd != snapshot_n;
            s.ipv6_lan = snapshot_l;
            s.netifd = snapshot_n;
            absorb(s, Instant::now(), snapshot_d, snapshot_t) || lan6_changed
        });
        tokio::select! {
            _ = changed(&mut dhcpv6) => {}
            _ = changed(&mut tunnel) => {}
            _ = changed(&mut dns) => {}
            _ = changed(&mut dhcpv4) => {}
            _ = changed(&mut lan6) => {}
            _ = changed(&mut netifd) => {}
            event = events.recv(), if events_open => match event {
                Ok(event) => status.send_modify(|s| {
                    s.last_event = Some(Stamped { at: Instant::now(), text: event.to_string() });
                }),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                // Its sender gone, recv would return at once forever.
                Err(broadcast::error::RecvError::Closed) => events_open = false,
            },
            result = shutdown.changed() => {
                if result.is_err() || *shutdown.borrow() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::plan::TunnelSpec;

    fn up() -> TunnelStatus {
        TunnelStatus {
            state: "up",
            spec: Some(TunnelSpec::example()),
            ..TunnelStatus::default()
        }
    }

    #[test]
    fn up_names_aftr_local_and_mtu() {
        let (state, reason) = overall(Some(&ClientStatus::default()), Some(&up()));
        assert_eq!(state, State::Up);
        assert!(
            reason.contains("2001:db8:af::1") && reason.contains("MTU 1460"),
            "{reason}"
        );
    }

    #[test]
    fn no_lease_is_waiting_for_the_wan_with_the_dhcpv6_problem() {
        let tunnel = TunnelStatus {
            state: "down",
            reason: Some("AFTR not resolved yet".into()),
            ..TunnelStatus::default()
        };
        let client = ClientStatus {
            state: "soliciting",
            last_problem: Some("no Advertise".into()),
            ..ClientStatus::default()
        };
        let (state, reason) = overall(Some(&client), Some(&tunnel));
        assert_eq!(state, State::WaitingForWan);
        assert!(
            reason.contains("soliciting") && reason.contains("no Advertise"),
            "{reason}"
        );
    }

    #[test]
    fn standing_down_is_disabled_and_tunnel_off_too() {
        let tunnel = TunnelStatus {
            state: "down",
            standing_down: true,
            reason: Some("native IPv4".into()),
            ..TunnelStatus::default()
        };
        assert_eq!(overall(None, Some(&tunnel)).0, State::Disabled);
        assert_eq!(overall(None, None).0, State::Disabled);
    }

    #[test]
    fn new_problems_become_the_last_error_once() {
        let t0 = Instant::now();
        let mut status = Status::new(t0);
        let failing = TunnelStatus {
            state: "down",
            last_error: Some("add route: File exists".into()),
            ..TunnelStatus::default()
        };
        assert!(absorb(&mut status, t0, None, Some(failing.clone())));
        assert_eq!(
            status.last_error.as_ref().unwrap().text,
            "add route: File exists"
        );
        assert!(!absorb(&mut status, t0, None, Some(failing)));
    }
}
