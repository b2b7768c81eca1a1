//! The tokio task around the LAN prefix plan. It wakes on DHCPv6 status
//! changes, on netlink notifications (someone removed our address or route:
//! it goes back), at the plan's next lifetime edge and on retries; then it
//! observes the kernel, plans and applies until the kernel matches. No
//! decisions are made here.

use crate::timer::{sleep_until, Retry};
use std::io;
use std::time::{Duration, Instant};

use log::{info, warn};
use tokio::sync::watch;

use super::kernel::Kernel;
use super::plan::{self, Assigned, Lan6, Skip};
use crate::dhcpv6::ClientStatus;
use crate::tunnel::kernel::changed;

/// After a start, how long b4d keeps what a previous run left on the LAN
/// while DHCPv6 has not answered (kill -9, restart: adopted, not flapped).
const STARTUP_GRACE: Duration = Duration::from_secs(30);
/// Observe-plan-apply rounds per wake-up; more means something fights us.
const MAX_ROUNDS: usize = 4;

pub struct Settings {
    pub lan: String,
    pub plan: plan::Settings,
}

/// The `ipv6_lan` section of the status model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lan6Status {
    /// "assigned" (a LAN prefix is in place), "deprecated" (only withdrawn
    /// ones are left), "none", or "error".
    pub state: &'static str,
    /// What the LAN has, lifetimes in seconds as of `at`.
    pub prefixes: Vec<Assigned>,
    pub at: Option<Instant>,
    /// Why a delegated prefix gives the LAN nothing, or the last kernel
    /// error, in words.
    pub reason: Option<String>,
}

struct Loop {
    settings: Settings,
    kernel: Kernel,
    core: Lan6,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    settling_until: Option<Instant>,
    retry: Retry,
    last_skipped: Vec<Skip>,
    status: watch::Sender<Lan6Status>,
}

impl Loop {
    fn absorb_dhcpv6(&mut self, now: Instant) {
        let Some(rx) = &mut self.dhcpv6 else {
            return;
        };
        let prefixes = {
            let status = rx.borrow_and_update();
            if status.lease.is_some() {
                self.settling_until = None;
            }
            status
                .lease
                .as_ref()
                .map(|l| l.prefixes.clone())
                .unwrap_or_default()
        };
        for note in self.core.update_lease(now, &prefixes) {
            info!("LAN IPv6: {note}");
        }
    }

    async fn reconcile(&mut self, now: Instant) {
        for gone in self.core.expire(now) {
            info!("LAN IPv6: prefix {gone} reached the end of its valid lifetime");
        }
        let settling = self.settling_until.is_some_and(|t| now < t);
        let mut error = None;
        let mut last: Option<plan::Plan> = None;
        for round in 0..MAX_ROUNDS {
            let observed = match self.kernel.observe(&self.settings.lan).await {
                Ok(o) => o,
                Err(e) => {
                    error = Some(format!("observe: {e}"));
                    break;
                }
            };
            let plan = self.core.plan(now, &observed, settling, &self.settings.lan);
            let ops = plan.ops.clone();
            last = Some(plan);
            if ops.is_empty() {
                break;
            }
            if round + 1 == MAX_ROUNDS {
                // Applied and gone again: back off instead of fighting
                // (our own changes would wake us forever).
                error = Some(format!("the kernel does not keep: {}", ops[0]));
                break;
            }
            if let Some(e) = self.apply(&ops).await {
                error = Some(e);
                break;
            }
        }
        self.settle(now, last, error);
    }

    async fn apply(&self, ops: &[plan::Op]) -> Option<String> {
        for op in ops {
            info!("LAN IPv6: {op}");
            if let Err(e) = self.kernel.apply(op).await {
                return Some(e.to_string());
            }
        }
        None
    }

    fn settle(&mut self, now: Instant, plan: Option<plan::Plan>, error: Option<String>) {
        self.retry.settle(now, error.as_deref(), "LAN IPv6");
        let plan = plan.unwrap_or_default();
        if plan.skipped != self.last_skipped {
            for skip in plan
                .skipped
                .iter()
                .filter(|s| !self.last_skipped.contains(s))
            {
                warn!("LAN IPv6: {skip}");
            }
            self.last_skipped = plan.skipped.clone();
        }
        let state = if error.is_some() {
            "error"
        } else if plan.assigned.iter().any(|a| !a.withdrawn) {
            "assigned"
        } else if plan.assigned.is_empty() {
            "none"
        } else {
            "deprecated"
        };
        let reason = error.or_else(|| plan.skipped.first().map(ToString::to_string));
        self.status.send_if_modified(|s| {
            let new = Lan6Status {
                state,
                prefixes: plan.assigned,
                at: Some(now),
                reason,
            };
            let changed =
                (s.state, &s.prefixes, &s.reason) != (new.state, &new.prefixes, &new.reason);
            *s = new;
            changed
        });
    }

    /// Graceful stop: remove what b4d put on the LAN.
    async fn stop(&self) {
        match self.kernel.observe(&self.settings.lan).await {
            Ok(observed) => {
                let ops = plan::stop(self.core.settings(), &observed);
                for op in &ops {
                    if let Err(e) = self.kernel.apply(op).await {
                        warn!("LAN IPv6: at stop: {e}");
                    }
                }
                if !ops.is_empty() {
                    info!("LAN IPv6: prefixes removed");
                }
            }
            Err(e) => warn!("LAN IPv6: at stop: observe: {e}"),
        }
    }
}

/// Runs until `shutdown`, then removes what it installed.
pub async fn run(
    settings: Settings,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    mut shutdown: watch::Receiver<bool>,
    status: watch::Sender<Lan6Status>,
) -> io::Result<()> {
    let (kernel, mut notifications) = Kernel::open()?;
    let mut this = Loop {
        core: Lan6::new(settings.plan),
        settings,
        kernel,
        dhcpv6,
        settling_until: Some(Instant::now() + STARTUP_GRACE),
        retry: Retry::default(),
        last_skipped: Vec::new(),
        status,
    };
    this.absorb_dhcpv6(Instant::now());
    loop {
        let now = Instant::now();
        this.reconcile(now).await;
        let edge = this.core.poll_timeout(Instant::now());
        tokio::select! {
            // A burst (our own operations cause several) is one wake-up.
            result = changed(&mut notifications), if this.retry.at().is_none() => result?,
            result = async {
                match this.dhcpv6.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if result.is_err() {
                    // The DHCPv6 client ended (shutdown in progress).
                    this.dhcpv6 = None;
                } else {
                    this.absorb_dhcpv6(Instant::now());
                }
            }
            _ = sleep_until(edge) => {}
            _ = sleep_until(this.retry.at()) => notifications.drain(),
            _ = sleep_until(this.settling_until) => this.settling_until = None,
            result = shutdown.changed() => {
                if result.is_err() || *shutdown.borrow_and_update() {
                    this.stop().await;
                    return Ok(());
                }
            }
        }
    }
}
