//! The one reconcile loop of the B4. It wakes on kernel notifications (links,
//! addresses, IPv4 routes), on DHCPv6 changes, on the AFTR resolver's timers
//! and lookups, and on requests; then it observes the kernel, plans, and
//! applies the plan until the kernel matches. Nothing here polls.

use crate::fixed::Fixed;
use crate::timer::{sleep_until, Retry};
use std::io;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use log::{info, warn};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::aftr::{self, AftrResolver, AftrSource, AftrStatus, LookupResult};
use super::kernel::{self, Kernel};
use super::lookup;
use super::nft;
use super::nft_watch::{TableWatch, NFPROTO_INET};
use super::plan::{self, Down, Knowledge, MssClamp, Observed, Prefix, TunnelSpec, WanAddress};
use super::softwire_error::{is_local_address, ErrorWatch, Received};
use crate::config::Tunnel;
use crate::dhcpv6::lease::{remaining, Deadline};
use crate::dhcpv6::ClientStatus;

/// After a start, how long b4d waits at most for DHCPv6 and the AFTR lookup
/// before it removes a tunnel found at start that it cannot confirm.
const STARTUP_GRACE: Duration = Duration::from_secs(30);
/// Observe-plan-apply rounds per wake-up: creating the tunnel takes two
/// (the device, then what goes on it); more means something fights us.
const MAX_ROUNDS: usize = 4;

/// Requests from the rest of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-resolve the AFTR now (ubus `renew`, SIGUSR1).
    Refresh,
    /// A DNS server the LAN proxy uses answers again after it had stopped:
    /// a failing AFTR lookup is retried at once.
    DnsRecovered,
}

/// The tunnel as the status report shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelStatus {
    /// "up" or "down".
    pub state: &'static str,
    /// Down on purpose: disabled in the config, or native IPv4 present.
    pub standing_down: bool,
    /// Why it is down, in words.
    pub reason: Option<String>,
    pub spec: Option<TunnelSpec>,
    pub since: Option<Instant>,
    pub aftr: AftrStatus,
    /// The last kernel operation that failed, with the error.
    pub last_error: Option<String>,
}

pub struct Settings {
    pub tunnel: Tunnel,
    pub wan: String,
    pub aftr: AftrSource,
    /// DNS servers for the AFTR name when DHCPv6 gives none (`lan.dns_server`).
    pub fallback_servers: Vec<Ipv6Addr>,
    /// See `Knowledge::install_wan_addresses`.
    pub install_wan_addresses: bool,
}

fn seconds(deadline: Deadline, now: Instant) -> u32 {
    remaining(deadline, now).map_or(u32::MAX, |s| s.min(u64::from(u32::MAX - 1)) as u32)
}

/// The lease in the plan's terms, lifetimes counted from `now`.
fn lease_knowledge(status: &ClientStatus, now: Instant) -> (Vec<WanAddress>, Vec<Prefix>) {
    let Some(lease) = &status.lease else {
        return (Vec::new(), Vec::new());
    };
    let leased = lease
        .addresses
        .iter()
        .map(|a| WanAddress {
            addr: a.addr,
            preferred: seconds(a.preferred_until, now),
            valid: seconds(a.valid_until, now),
        })
        .filter(|a| a.valid > 0)
        .collect();
    let delegated = lease
        .prefixes
        .iter()
        .map(|p| Prefix {
            prefix: p.prefix,
            len: p.len,
            preferred: seconds(p.preferred_until, now),
            valid: seconds(p.valid_until, now),
        })
        .filter(|p| p.valid > 0)
        .collect();
    (leased, delegated)
}

struct Loop {
    settings: Settings,
    kernel: Kernel,
    resolver: AftrResolver,
    lookup: Option<JoinHandle<(u64, LookupResult)>>,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    mss_clamp: Option<MssClamp>,
    /// The last error loading or removing the clamp, logged once.
    mss_clamp_error: Option<String>,
    /// The verdict last logged, so that only changes are logged.
    last_verdict: Option<Result<TunnelSpec, Down>>,
    retry: Retry,
    status: watch::Sender<TunnelStatus>,
    own_addresses: Vec<Ipv6Addr>,
    /// The WAN device's index as last observed.
    wan_index: Option<u32>,
    /// Set at start: see `Knowledge::settling`.
    settling_until: Option<Instant>,
    /// Where DAD failures of leased addresses go (the DHCPv6 client).
    dhcpv6_control: Option<mpsc::Sender<crate::dhcpv6::driver::Control>>,
    /// Leased addresses whose DAD failure was reported already; never
    /// installed again.
    declined: Vec<Ipv6Addr>,
    /// Leased addresses last seen in DAD.
    tentative_seen: Vec<Ipv6Addr>,
}

impl Loop {
    /// Feeds the resolver from the latest DHCPv6 state.
    fn absorb_dhcpv6(&mut self, now: Instant) {
        let (name, servers) = match &self.dhcpv6 {
            Some(rx) => {
                let status = rx.borrow();
                (
                    status.info.aftr_name.clone(),
                    status.info.dns_servers.clone(),
                )
            }
            None => (None, Vec::new()),
        };
        let servers = if servers.is_empty() {
            self.settings.fallback_servers.clone()
        } else {
            servers
        };
        self.resolver.handle(now, aftr::Input::Servers(servers));
        self.resolver.handle(now, aftr::Input::DhcpName(name));
    }

    fn knowledge(&self, now: Instant) -> Knowledge {
        let (mut leased, delegated) = match &self.dhcpv6 {
            Some(rx) => lease_knowledge(&rx.borrow(), now),
            None => (Vec::new(), Vec::new()),
        };
        leased.retain(|a| !self.declined.contains(&a.addr));
        let aftr = self.resolver.selected().ok_or_else(|| {
            self.resolver
                .status()
                .problem
                .clone()
                .unwrap_or_else(|| "AFTR not resolved yet".into())
        });
        Knowledge {
            leased,
            delegated,
            aftr,
            settling: self.settling_until.is_some_and(|t| now < t),
            install_wan_addresses: self.settings.install_wan_addresses,
        }
    }

    /// Ends the startup grace once DHCPv6 has a lease (or is off) and the
    /// AFTR lookup has answered either way.
    fn check_settled(&mut self) {
        if self.settling_until.is_none() {
            return;
        }
        let lease = match &self.dhcpv6 {
            Some(rx) => rx.borrow().lease.is_some(),
            None => true,
        };
        let aftr = self.resolver.status();
        let answered =
            aftr.selected.is_some() || aftr.failures > 0 || (lease && aftr.name.is_none());
        if lease && answered {
            self.settling_until = None;
        }
    }

    /// Starts the lookup the resolver wants, if any.
    fn start_lookup(&mut self) {
        if let Some(request) = self.resolver.poll_lookup() {
            if let Some(old) = self.lookup.take() {
                old.abort();
            }
            info!(
                "AFTR: resolving {} (AAAA) via {}",
                request.name,
                request
                    .servers
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let wan_index = self.wan_index.unwrap_or(0);
            self.lookup = Some(tokio::spawn(async move {
                (request.id, lookup::run(&request, wan_index).await)
            }));
        }
    }

    fn lookup_done(&mut self, now: Instant, id: u64, result: LookupResult) {
        self.lookup = None;
        let before = self.resolver.status().clone();
        self.resolver
            .handle(now, aftr::Input::Completed { id, result });
        let after = self.resolver.status();
        if after.addresses != before.addresses || after.problem != before.problem {
            match (&after.problem, after.selected) {
                (None, Some(selected)) => info!(
                    "AFTR: {} is [{}] (TTL {}s), using {selected}",
                    after.name.as_deref().unwrap_or("?"),
                    after
                        .addresses
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    after.ttl.unwrap_or(0)
                ),
                (Some(problem), _) => warn!(
                    "AFTR: {problem}; retry in {}s{}",
                    Fixed::of_duration(
                        after
                            .next_attempt
                            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
                        1,
                        1
                    ),
                    if after.stale {
                        " (keeping the last good address)"
                    } else {
                        ""
                    }
                ),
                _ => {}
            }
        }
    }

    async fn observe(&self) -> io::Result<Observed> {
        self.kernel
            .observe(
                &self.settings.wan,
                self.settings.tunnel.name.as_str(),
                self.mss_clamp.clone(),
            )
            .await
    }

    /// Observe, plan, apply until the kernel matches (or MAX_ROUNDS).
    async fn reconcile(&mut self, now: Instant) {
        let mut error = None;
        let mut verdict = None;
        for _ in 0..MAX_ROUNDS {
            let observed = match self.observe().await {
                Ok(observed) => observed,
                Err(e) => {
                    error = Some(format!("observe: {e}"));
                    break;
                }
            };
            self.note_own_addresses(now, &observed);
            self.note_adopted_tunnel(now, &observed);
            self.report_dad_failures(now, &observed);
            let plan = plan::plan(
                &self.settings.tunnel,
                &self.settings.wan,
                &self.knowledge(now),
                &observed,
            );
            verdict = Some(plan.verdict.clone());
            if plan.ops.is_empty() {
                error = None;
                break;
            }
            if let Err(e) = self.apply(&plan.ops).await {
                error = Some(e);
                break;
            }
            self.note_new_wan_addresses(&plan.ops, &observed);
        }
        self.settle(now, verdict, error);
    }

    /// While settling at start: a tunnel of ours already in the kernel was
    /// left by an earlier run; its remote is that run's AFTR answer, kept
    /// should this run's first lookup find DNS down (see `Input::Adopted`).
    fn note_adopted_tunnel(&mut self, now: Instant, observed: &Observed) {
        if self.settling_until.is_none() {
            return;
        }
        let remote = (observed.tunnel.as_ref())
            .filter(|t| t.kind == "ip6tnl")
            .and_then(|t| t.remote);
        if let Some(remote) = remote {
            self.resolver.handle(now, aftr::Input::Adopted(remote));
        }
    }

    /// An address b4d has just added is in DAD from then on. Noted before
    /// the kernel shows it: with optimistic DAD a duplicate can be found and
    /// the address deleted before the next observation sees it tentative.
    fn note_new_wan_addresses(&mut self, ops: &[plan::Op], observed: &Observed) {
        let present = |addr: Ipv6Addr| {
            observed
                .wan
                .as_ref()
                .is_some_and(|w| w.addresses.iter().any(|a| a.addr == addr))
        };
        for op in ops {
            if let plan::Op::SetWanAddress { address, .. } = op {
                if !present(address.addr) && !self.tentative_seen.contains(&address.addr) {
                    self.tentative_seen.push(address.addr);
                }
            }
        }
    }

    /// A leased address whose DAD failed is someone else's: the DHCPv6
    /// client declines it (once) and asks for another. The kernel marks a
    /// permanent address dadfailed but *deletes* one with lifetimes, as b4d
    /// installs them; so an address that vanished while in DAD (seen
    /// tentative, or just added by b4d) is a failure too. Not while the
    /// WAN is down: setting a device down deletes its addresses.
    fn report_dad_failures(&mut self, now: Instant, observed: &Observed) {
        let Some(wan) = &observed.wan else {
            return;
        };
        if !wan.up {
            self.tentative_seen.clear();
            return;
        }
        for leased in self.knowledge(now).leased {
            let present = wan.addresses.iter().find(|a| a.addr == leased.addr);
            let failed = match present {
                Some(a) if a.dad_failed => true,
                Some(a) if a.tentative => {
                    if !self.tentative_seen.contains(&a.addr) {
                        self.tentative_seen.push(a.addr);
                    }
                    false
                }
                Some(a) => {
                    self.tentative_seen.retain(|t| *t != a.addr);
                    false
                }
                None => self.tentative_seen.contains(&leased.addr),
            };
            if failed && !self.declined.contains(&leased.addr) {
                warn!(
                    "WAN address {} failed duplicate address detection: declining it",
                    leased.addr
                );
                if let Some(control) = &self.dhcpv6_control {
                    let _ =
                        control.try_send(crate::dhcpv6::driver::Control::DadFailed(leased.addr));
                }
                self.declined.push(leased.addr);
                self.tentative_seen.retain(|t| *t != leased.addr);
            }
        }
    }

    /// An ICMPv6 error about packets from one of our addresses to the AFTR
    /// in use: the resolver moves on (see [`aftr::Input::AftrUnreachable`]).
    /// Only errors that came in from the ISP's side count (see
    /// [`Received::ifindex`]); the kernel's own, sent from one of our
    /// addresses, never do.
    fn softwire_error(&mut self, now: Instant, received: Received) {
        let Received {
            error,
            sender: from,
            ..
        } = received;
        if self.resolver.selected() != Some(error.aftr) || !self.own_addresses.contains(&error.b4) {
            return;
        }
        // Last: the locality test opens a socket.
        let is_ours = |a: Ipv6Addr| self.own_addresses.contains(&a) || is_local_address(a);
        if !received.from_the_isp(self.wan_index, is_ours) {
            return;
        }
        self.resolver
            .handle(now, aftr::Input::AftrUnreachable(error.aftr));
        let now_selected = self.resolver.selected();
        if now_selected != Some(error.aftr) || self.resolver.lookup_pending() {
            info!(
                "AFTR {} unreachable ({} from {from}): {}",
                error.aftr,
                error.reason,
                match now_selected {
                    Some(other) if other != error.aftr =>
                        format!("using {other}, asking DNS again"),
                    _ => "asking DNS again".to_string(),
                }
            );
        }
    }

    fn note_own_addresses(&mut self, now: Instant, observed: &Observed) {
        self.wan_index = observed.wan.as_ref().map(|w| w.index);
        let own: Vec<Ipv6Addr> = observed
            .wan
            .iter()
            .flat_map(|w| w.addresses.iter().map(|a| a.addr))
            .collect();
        if own != self.own_addresses {
            self.own_addresses = own.clone();
            self.resolver.handle(now, aftr::Input::OwnAddresses(own));
        }
    }

    /// Applies operations in order; stops at the first failure, except
    /// for the MSS clamp's: without it IPv4 through the tunnel still works
    /// (TCP then relies on path MTU discovery, RFC 1191), so an `nft` that
    /// is missing or fails (an OpenWrt with the iptables firewall, a kernel
    /// without nf_tables) must not keep the tunnel down. It is logged when
    /// its error changes and tried again at the next reconcile.
    async fn apply(&mut self, ops: &[plan::Op]) -> Result<(), String> {
        for op in ops {
            log::debug!("tunnel: {op}");
            let result = self.kernel.apply(op).await;
            match (op, result) {
                (plan::Op::LoadMssClamp(clamp), Ok(())) => {
                    self.mss_clamp = Some(clamp.clone());
                    self.mss_clamp_error = None;
                }
                (plan::Op::RemoveMssClamp, Ok(())) => self.mss_clamp = None,
                (plan::Op::LoadMssClamp(_) | plan::Op::RemoveMssClamp, Err(e)) => {
                    let e = e.to_string();
                    if self.mss_clamp_error.as_ref() != Some(&e) {
                        warn!(
                            "tunnel: MSS clamping not changed ({e}); the tunnel goes on without it"
                        );
                        self.mss_clamp_error = Some(e);
                    }
                }
                (_, result) => result.map_err(|e| e.to_string())?,
            }
        }
        Ok(())
    }

    /// Records the outcome of a reconcile: logs changes, publishes status,
    /// schedules a retry after failures.
    fn settle(
        &mut self,
        now: Instant,
        verdict: Option<Result<TunnelSpec, Down>>,
        error: Option<String>,
    ) {
        self.retry.settle(now, error.as_deref(), "tunnel");
        if let Some(verdict) = verdict {
            if self.last_verdict.as_ref() != Some(&verdict) && error.is_none() {
                match &verdict {
                    Ok(spec) => info!(
                        "tunnel up: {} local {} remote {} mtu {} ({}/29, default route metric {})",
                        spec.name,
                        spec.local,
                        spec.remote,
                        spec.mtu,
                        spec.ipv4,
                        spec.default_route_metric
                            .map_or("none".into(), |m| m.to_string())
                    ),
                    Err(why) => info!("tunnel down: {why}"),
                }
                self.last_verdict = Some(verdict.clone());
            }
            self.status.send_modify(|s| {
                let up = verdict.is_ok() && error.is_none();
                if s.state != if up { "up" } else { "down" } {
                    s.since = Some(now);
                }
                s.state = if up { "up" } else { "down" };
                s.reason = match (&verdict, &error) {
                    (Err(down), _) => Some(down.to_string()),
                    (Ok(_), Some(e)) => Some(format!("cannot build the tunnel: {e}")),
                    (Ok(_), None) => None,
                };
                s.standing_down = matches!(verdict, Err(Down::Disabled) | Err(Down::NativeIpv4(_)));
                // The tunnel b4d wants, also while building it fails.
                s.spec = verdict.as_ref().ok().cloned();
            });
        }
        let aftr = self.resolver.status().clone();
        self.status.send_modify(|s| {
            s.aftr = aftr;
            if let Some(e) = &error {
                s.last_error = Some(e.clone());
            }
        });
    }

    /// SIGTERM: remove what b4d made.
    async fn stop(&mut self) {
        match self.observe().await {
            Ok(observed) => {
                for op in plan::stop(&observed, self.settings.install_wan_addresses) {
                    if let Err(e) = self.kernel.apply(&op).await {
                        warn!("tunnel: at stop: {e}");
                    }
                }
                info!("tunnel removed");
            }
            Err(e) => warn!("tunnel: at stop: observe: {e}"),
        }
    }
}

/// With the tunnel disabled: removes a tunnel a killed b4d left (see
/// [`kernel::OWNER_ALIAS`]) and its MSS clamp table. Never fails b4d.
pub async fn remove_leftovers() -> io::Result<()> {
    let removed = match crate::netlink::Netlink::open() {
        Ok(netlink) => kernel::remove_leftovers(&netlink, None).await,
        Err(e) => Err(e),
    };
    say_leftovers_removed(removed);
    Ok(())
}

fn say_leftovers_removed(result: io::Result<Vec<String>>) {
    match result {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => info!(
            "tunnel: removed {}, left by an earlier run under another configuration",
            removed.join(", ")
        ),
        Err(e) => warn!("tunnel: looking for tunnels an earlier run left: {e}"),
    }
}

pub async fn run(
    settings: Settings,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    dhcpv6_control: Option<mpsc::Sender<crate::dhcpv6::driver::Control>>,
    mut control: mpsc::Receiver<Control>,
    mut shutdown: watch::Receiver<bool>,
    status: watch::Sender<TunnelStatus>,
    seed: u64,
) -> io::Result<()> {
    let (kernel, mut notifications) = Kernel::open()?;
    let resolver = AftrResolver::new(settings.aftr.clone(), seed);
    let mut this = Loop {
        settings,
        kernel,
        resolver,
        lookup: None,
        dhcpv6,
        mss_clamp: None,
        mss_clamp_error: None,
        last_verdict: None,
        retry: Retry::default(),
        status,
        own_addresses: Vec::new(),
        wan_index: None,
        settling_until: Some(Instant::now() + STARTUP_GRACE),
        dhcpv6_control,
        declined: Vec::new(),
        tentative_seen: Vec::new(),
    };
    let keep = this.settings.tunnel.name.to_string();
    say_leftovers_removed(this.kernel.remove_leftovers(Some(&keep)).await);
    this.absorb_dhcpv6(Instant::now());
    let mut errors = match ErrorWatch::open() {
        Ok(watch) => Some(watch),
        Err(e) => {
            warn!("tunnel: cannot watch ICMPv6 errors (an AFTR that goes away is noticed at its DNS TTL): {e}");
            None
        }
    };
    let mut table_watch = match TableWatch::open() {
        Ok(watch) => Some(watch),
        Err(e) => {
            warn!("tunnel: cannot watch nftables (a deleted MSS clamp table is loaded again only at the next change): {e}");
            None
        }
    };
    let mut error_buf = vec![0u8; 1280];
    let mut table_buf = vec![0u8; 16384];
    loop {
        let now = Instant::now();
        // `knowledge` reads the DHCPv6 status live; feed the resolver from
        // the same snapshot even when another wake-up (a netlink
        // notification, e.g. lan6 adding br-lan's address) comes first.
        // Otherwise the startup grace could end on a lease whose AFTR name
        // the resolver has not seen yet, and an adopted tunnel is torn down.
        this.absorb_dhcpv6(now);
        this.start_lookup();
        this.check_settled();
        this.reconcile(now).await;
        this.start_lookup();
        let wake = this.resolver.poll_timeout();
        tokio::select! {
            changed = kernel::changed(&mut notifications) => {
                // A burst (our own operations cause several) is one wake-up.
                changed?;
            }
            changed = async {
                match this.dhcpv6.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_err() {
                    // The DHCPv6 client ended (shutdown in progress).
                    this.dhcpv6 = None;
                }
                this.absorb_dhcpv6(Instant::now());
            }
            done = async { this.lookup.as_mut().expect("guarded").await }, if this.lookup.is_some() => {
                match done {
                    Ok((id, result)) => this.lookup_done(Instant::now(), id, result),
                    // A failed lookup, or the resolver would wait for its
                    // answer for ever: no further lookup, no retry.
                    Err(e) => match this.resolver.in_flight() {
                        Some(id) => {
                            let detail = format!("the lookup task failed: {e}");
                            this.lookup_done(Instant::now(), id, LookupResult::AllServersFailed { detail });
                        }
                        None => this.lookup = None,
                    },
                }
            }
            error = async {
                match &errors {
                    Some(watch) => watch.next(&mut error_buf).await,
                    None => std::future::pending().await,
                }
            } => match error {
                Ok(received) => this.softwire_error(Instant::now(), received),
                Err(e) => {
                    warn!("tunnel: ICMPv6 error watch failed, AFTR errors are no longer followed: {e}");
                    errors = None;
                }
            },
            deleted = async {
                match &table_watch {
                    Some(watch) => watch.deleted(NFPROTO_INET, nft::TABLE, &mut table_buf).await,
                    None => std::future::pending().await,
                }
            } => match deleted {
                Ok(()) if this.mss_clamp.is_some() => {
                    info!("tunnel: nftables table inet {} was deleted by another program; loading the MSS clamp again", nft::TABLE);
                    this.mss_clamp = None;
                }
                Ok(()) => {}
                Err(e) => {
                    warn!("tunnel: nftables watch failed, a deleted MSS clamp table is no longer noticed: {e}");
                    table_watch = None;
                }
            },
            _ = sleep_until(wake) => this.resolver.handle(Instant::now(), aftr::Input::Timeout),
            _ = sleep_until(this.retry.at()) => {}
            _ = sleep_until(this.settling_until) => this.settling_until = None,
            Some(request) = control.recv() => match request {
                Control::Refresh => this.resolver.handle(Instant::now(), aftr::Input::Refresh),
                Control::DnsRecovered => {
                    this.resolver.handle(Instant::now(), aftr::Input::DnsRecovered)
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow_and_update() {
                    this.stop().await;
                    return Ok(());
                }
            }
        }
    }
}
