//! The tokio task around the DHCPv6 client core: owns the UDP socket on
//! port 546 and the link watch, feeds the core with time and packets, and
//! executes what it returns. No protocol decisions are made here.

use crate::atomic_file::RETRY_AFTER_FAILURE as PERSIST_RETRY;
use crate::timer::{sleep_until, PortWait};
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, watch};

use super::client::{Action, Client, ClientConfig, ClientStatus, Input};
use super::duid;
use super::events::Event;
use super::lease::{remaining, WithLifetimes};
use super::persist::{self, BootClock};
use crate::ndisc;
use crate::netlink::{LinkState, LinkWatch};
use crate::sysctl::{AcceptRa, Ipv6Conf, OptimisticDad, IPV6_CONF};

/// RFC 8415 §7.1: All_DHCP_Relay_Agents_and_Servers.
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
pub const CLIENT_PORT: u16 = 546;
pub const SERVER_PORT: u16 = 547;

/// How long a shutdown waits for the Reply to Release before exiting anyway:
/// procd's default stop timeout is 5 s.
const RELEASE_WAIT: Duration = Duration::from_secs(3);

/// How often port 546 is tried again while another client holds it.
const OPEN_RETRY: Duration = Duration::from_secs(5);

/// Requests from the rest of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Renew,
    /// Duplicate address detection failed for a leased address: Decline it
    /// (RFC 8415 §18.2.8). Reported by whoever installs the address.
    DadFailed(Ipv6Addr),
}

/// Channels the driver publishes on.
pub struct Outputs {
    pub events: broadcast::Sender<Event>,
    pub status: watch::Sender<ClientStatus>,
}

/// Opens the client socket: UDP [::]:546 bound to the WAN device, multicast
/// out of that device only, hop limit 1 (servers are on-link or behind a
/// relay on the link). No SO_REUSEADDR: odhcp6c sets it, and two clients
/// sharing the port on one device would each get the other's Replies (one
/// of them all of them), with the same DUID-LL fighting over one binding.
/// Failing to bind is how b4d sees that another client runs on the WAN.
fn open_socket(device: &str, ifindex: u32) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(true)?;
    socket
        .bind_device(Some(device.as_bytes()))
        .map_err(|e| io::Error::new(e.kind(), format!("SO_BINDTODEVICE {device}: {e}")))?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.set_multicast_loop_v6(false)?;
    socket.set_multicast_hops_v6(1)?;
    socket.set_nonblocking(true)?;
    let addr = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, CLIENT_PORT, 0, 0);
    socket
        .bind(&SocketAddr::V6(addr).into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind [::]:{CLIENT_PORT}: {e}")))?;
    UdpSocket::from_std(socket.into())
}

fn log_action_event(event: &Event, client: &Client) {
    info!("event: {event}");
    // A restored binding has had its own line ("restored DHCPv6 lease").
    if matches!(
        event,
        Event::LeaseAcquired { .. } | Event::LeaseRenewed { .. }
    ) && !client.status().restored
    {
        if let Some(lease) = client.lease() {
            let now = Instant::now();
            let t = |d: Option<Instant>| match d {
                Some(d) => format!("{}s", d.saturating_duration_since(now).as_secs()),
                None => "infinite".into(),
            };
            info!(
                "DHCPv6 lease from {}: addresses [{}] prefixes [{}] T1 {} T2 {}",
                lease.server_addr,
                WithLifetimes(&lease.addresses, now),
                WithLifetimes(&lease.prefixes, now),
                t(lease.t1),
                t(lease.t2),
            );
        }
    }
}

/// RFC 4429 on the WAN: after a link flap its link-local address, and any
/// address b4d adds, can be used at once (see
/// [`Ipv6Conf::enable_optimistic_dad`]). Called when the device appears.
fn use_optimistic_dad(device: &str) {
    match Ipv6Conf::new(Path::new(IPV6_CONF), device).enable_optimistic_dad() {
        OptimisticDad::TurnedOn => info!(
            "WAN {device}: optimistic DAD on, optimistic addresses used as sources (RFC 4429)"
        ),
        OptimisticDad::AlreadyOn => {}
        OptimisticDad::Unsupported => info!(
            "WAN {device}: kernel without optimistic DAD; new WAN addresses are usable after DAD (~1 s)"
        ),
        OptimisticDad::Failed(e) => warn!("WAN {device}: cannot turn on optimistic DAD: {e}"),
    }
}

/// The WAN's IPv6 default route comes from the ISP's Router Advertisement
/// (DHCPv6 carries no routes): when the link comes up, make sure the
/// kernel takes RAs (see [`keep_accepting_ras`]) and solicit one at once
/// (see [`crate::ndisc`]) instead of waiting for the kernel's own
/// solicitation after DAD.
///
/// Not delayed by the random 0-1 s of RFC 4861 §6.3.7, which spreads hosts
/// that all come up at the same moment on one link. A CPE's WAN is its own
/// line, whose carrier comes up on that line's schedule (DSL or PON sync),
/// the solicitation is one small message, and a router answers many at once
/// with one rate-limited multicast RA. What must be spread after a power
/// cut, the DHCPv6 Solicit, still is (RFC 8415 §18.2.1).
fn solicit_wan_router(device: &str, ifindex: u32, link_local: Option<Ipv6Addr>) {
    keep_accepting_ras(device);
    send_router_solicitation(device, ifindex, link_local);
}

fn send_router_solicitation(device: &str, ifindex: u32, link_local: Option<Ipv6Addr>) {
    match ndisc::solicit_routers(device, ifindex, link_local) {
        Ok(from) => debug!("WAN {device}: Router Solicitation sent ({from:?} source)"),
        Err(e) => warn!("WAN {device}: cannot send a Router Solicitation: {e}"),
    }
}

/// See [`Ipv6Conf::keep_accepting_ras`]; true when accept_ra was raised,
/// i.e. RAs were being ignored until now.
fn keep_accepting_ras(device: &str) -> bool {
    match Ipv6Conf::new(Path::new(IPV6_CONF), device).keep_accepting_ras() {
        AcceptRa::Raised => {
            info!("WAN {device} forwards IPv6, so accept_ra set to 2 to keep the RA default route");
            true
        }
        AcceptRa::Unchanged => false,
        AcceptRa::Failed(e) => {
            warn!("WAN {device}: cannot check accept_ra: {e}");
            false
        }
    }
}

/// The binding file (persist.rs): restored from at start, rewritten after
/// every change the core announces, removed when nothing is left.
struct Persistence {
    path: PathBuf,
    /// The WAN device, written into the file: a binding is for one link.
    device: String,
    /// This boot's id and clock; `None` when they cannot be read, and then
    /// nothing is kept (a restart just asks the server again).
    clock: Option<BootClock>,
    /// Whether the last write failed (logged once per failure streak).
    failing: bool,
    /// When to try a failed write again.
    retry_at: Option<tokio::time::Instant>,
}

impl Persistence {
    fn new(path: PathBuf, device: &str) -> Persistence {
        let clock = BootClock::read()
            .inspect_err(|e| {
                warn!(
                    "DHCPv6: cannot read the boot clock ({e}); the binding is not kept across a restart"
                )
            })
            .ok();
        Persistence {
            path,
            device: device.to_string(),
            clock,
            failing: false,
            retry_at: None,
        }
    }

    /// Hands a still-valid binding from the file to the fresh `client`;
    /// returns the actions announcing it. A missing, foreign, expired or
    /// malformed file is one line in the log and a fresh start.
    fn restore(&self, client: &mut Client) -> Vec<Action> {
        let Some(clock) = self.clock.as_ref().and_then(|c| c.now().ok()) else {
            return Vec::new();
        };
        let now = Instant::now();
        let file = self.path.display();
        let saved = match persist::load(
            &self.path,
            now,
            &clock,
            &client.saved().client_id,
            &self.device,
        ) {
            Ok(Some(saved)) => saved,
            Ok(None) => return Vec::new(),
            Err(why) => {
                info!("DHCPv6 lease file {file} ignored: {why}");
                return Vec::new();
            }
        };
        let actions = client.restore(now, saved);
        let info = client.info();
        let aftr = info.aftr_name.as_deref().unwrap_or("none");
        match client.lease() {
            Some(lease) => {
                let list = |items: Vec<String>, none: &str| match items.is_empty() {
                    true => none.to_string(),
                    false => items.join(","),
                };
                let valid = match remaining(lease.last_expiry(), now) {
                    Some(s) => format!("{s} s"),
                    None => "infinite".into(),
                };
                info!(
                    "restored DHCPv6 lease from {file}: {}, {}, AFTR {aftr}, valid {valid}",
                    list(
                        lease.addresses.iter().map(|a| a.addr.to_string()).collect(),
                        "no address"
                    ),
                    list(
                        (lease.prefixes.iter())
                            .map(|p| format!("{}/{}", p.prefix, p.len))
                            .collect(),
                        "no prefix"
                    ),
                );
            }
            None if !actions.is_empty() => {
                info!("restored DHCPv6 information from {file}: AFTR {aftr}")
            }
            None => {}
        }
        actions
    }

    /// Writes synchronously: the file lives on tmpfs and is small.
    fn write(&mut self, client: &Client) {
        let Some(clock) = self.clock.as_ref().and_then(|c| c.now().ok()) else {
            return;
        };
        match persist::save(
            &self.path,
            &client.saved(),
            &self.device,
            Instant::now(),
            &clock,
        ) {
            Ok(()) => {
                self.retry_at = None;
                if std::mem::take(&mut self.failing) {
                    info!("DHCPv6: lease file {} written again", self.path.display());
                }
            }
            Err(e) => {
                // The binding in the file is stale now (a renumbering not
                // in it): a restart must start afresh, not publish it.
                // Unlinking works on a full tmpfs.
                let _ = std::fs::remove_file(&self.path);
                self.retry_at = Some(tokio::time::Instant::now() + PERSIST_RETRY);
                if !std::mem::replace(&mut self.failing, true) {
                    warn!(
                        "DHCPv6: cannot write lease file {}: {e}; removed it (a restart \
                         starts afresh), trying again every {} s",
                        self.path.display(),
                        PERSIST_RETRY.as_secs()
                    );
                }
            }
        }
    }
}

/// Runs the client on `device` until `shutdown` has been handled: a Release first, when configured. A watch rather than
/// a message: a full control queue cannot lose it.
/// A binding kept in `lease_file` from before a restart is published first.
/// `config.duid` is left to [`duid::obtain_for_device`] with
/// `duid_source`: the configured DUID and where one is kept.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    device: String,
    config: ClientConfig,
    duid_source: (Option<Vec<u8>>, PathBuf),
    seed: u64,
    lease_file: PathBuf,
    mut control: mpsc::Receiver<Control>,
    mut shutdown: watch::Receiver<bool>,
    outputs: Outputs,
) -> io::Result<()> {
    let (configured, duid_path) = duid_source;
    let Some((duid, warning)) =
        duid::obtain_for_device(configured.as_deref(), &duid_path, &device, &mut shutdown).await
    else {
        return Ok(());
    };
    if let Some(warning) = warning {
        warn!("{warning}");
    }
    info!("DHCPv6 DUID {}", duid::to_hex(&duid));
    let mut client = Client::new(ClientConfig { duid, ..config }, seed);
    client.handle(Instant::now(), Input::Started);
    let mut persistence = Persistence::new(lease_file, &device);
    // Before anything else (even the link): the DNS proxy, the tunnel and
    // the LAN get the restored binding at once.
    let restored = persistence.restore(&mut client);
    execute(
        restored,
        &mut client,
        None,
        &outputs,
        None,
        &mut persistence,
    )
    .await;
    let mut link = LinkWatch::new(&device)?;
    let mut socket: Option<(u32, UdpSocket)> = None;
    // While port 546 cannot be had: when to try again, and why (shown as
    // the status's last problem, the core knows nothing of it).
    let mut port_wait = PortWait::new(OPEN_RETRY);
    let mut port_problem: Option<String> = None;
    // The device (ifindex) the core was last told is up, if it was.
    let mut ready_on: Option<u32> = None;
    // The device index while its link is up with carrier.
    let mut carrier: Option<u32> = None;
    let mut shutdown_deadline: Option<tokio::time::Instant> = None;
    let mut buf = vec![0u8; 65536];
    let mut announced_wait = false;
    let mut control_open = true;

    let mut state: Option<LinkState> = link.snapshot().await?;
    // What the core returned for the last input, executed below together
    // with whatever the link state adds.
    let mut actions = Vec::new();
    loop {
        // Follow the link: (re)open the socket when the device appears or is
        // recreated, and tell the core when DHCPv6 becomes (im)possible.
        let now = Instant::now();
        match &state {
            Some(s)
                if socket.as_ref().is_none_or(|(idx, _)| *idx != s.index)
                    && port_wait.due(tokio::time::Instant::now()) =>
            {
                match open_socket(&device, s.index) {
                    Ok(opened) => {
                        socket = Some((s.index, opened));
                        if port_wait.opened() {
                            info!("DHCPv6: port {CLIENT_PORT} on {device} is ours now");
                            port_problem = None;
                            publish_status(&outputs, &client, None);
                        }
                        use_optimistic_dad(&device);
                    }
                    Err(e) => {
                        socket = None;
                        let problem = port_trouble(&device, &e);
                        if port_wait.failed(tokio::time::Instant::now()) {
                            warn!(
                                "DHCPv6: {problem}; trying again every {} s",
                                OPEN_RETRY.as_secs()
                            );
                        }
                        publish_status(&outputs, &client, Some(&problem));
                        port_problem = Some(problem);
                    }
                }
            }
            None if !announced_wait => {
                info!("waiting for WAN device {device} to appear");
                announced_wait = true;
            }
            _ => {}
        }
        if state.is_none() {
            // Nothing to retry on until the device is back.
            port_wait.idle();
        }
        // Carrier up (start, cable back, ifup): ask for the RA now, before
        // the link-local address has finished DAD.
        let with_carrier = state.as_ref().filter(|s| s.up);
        if let Some(s) = with_carrier.filter(|_| shutdown_deadline.is_none()) {
            if carrier != Some(s.index) {
                solicit_wan_router(&device, s.index, s.link_local);
            } else if keep_accepting_ras(&device) {
                // Forwarding was turned on after the link came up (a
                // sysctl or firewall script later in the boot): the kernel
                // has been ignoring RAs since, and the default route would
                // expire with the router lifetime. The netconf notification
                // of that change woke this loop; ask for an RA now.
                send_router_solicitation(&device, s.index, s.link_local);
            }
        }
        carrier = with_carrier.map(|s| s.index);
        // Without the socket nothing can be sent or heard: the core waits
        // as it does for the link.
        let now_ready = socket.is_some() && state.as_ref().is_some_and(LinkState::ready_for_dhcpv6);
        let up_on = now_ready.then(|| state.as_ref().map(|s| s.index)).flatten();
        if shutdown_deadline.is_none() {
            let change = link_change(ready_on, up_on);
            match change {
                LinkChange::Up => info!(
                    "WAN {device} is up with link-local {}",
                    state
                        .as_ref()
                        .and_then(|s| s.link_local)
                        .unwrap_or(Ipv6Addr::UNSPECIFIED)
                ),
                LinkChange::Down => {
                    info!("WAN {device} is down or has no usable link-local address")
                }
                LinkChange::Recreated => {
                    info!("WAN {device} was created again (ifindex {up_on:?})")
                }
                LinkChange::None => {}
            }
            for input in change.inputs() {
                actions.extend(client.handle(now, input));
            }
            ready_on = up_on;
        }
        if execute(
            std::mem::take(&mut actions),
            &mut client,
            socket.as_ref().map(|s| &s.1),
            &outputs,
            port_problem.as_deref(),
            &mut persistence,
        )
        .await
        {
            return Ok(());
        }

        let timer = client.poll_timeout().map(tokio::time::Instant::from_std);
        let recv = async {
            match &socket {
                Some((_, s)) => s.recv_from(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        actions = tokio::select! {
            _ = sleep_until(timer) => client.handle(Instant::now(), Input::Timeout),
            received = recv => match received {
                Ok((len, SocketAddr::V6(from))) => {
                    client.handle(Instant::now(), Input::Received { from: *from.ip(), bytes: &buf[..len] })
                }
                Ok(_) => Vec::new(),
                Err(e) => {
                    warn!("DHCPv6 receive on {device}: {e}");
                    Vec::new()
                }
            },
            _ = sleep_until(port_wait.at()) => Vec::new(),
            _ = sleep_until(persistence.retry_at) => {
                persistence.write(&client);
                Vec::new()
            }
            changed = link.changed() => {
                changed?;
                state = link.snapshot().await?;
                Vec::new()
            }
            request = control.recv(), if control_open => match request {
                Some(Control::Renew) => client.handle(Instant::now(), Input::ForceRenew),
                Some(Control::DadFailed(addr)) => client.handle(Instant::now(), Input::DadFailed(addr)),
                // Nobody sends any more: stop asking (recv would return
                // None at once, every turn).
                None => {
                    control_open = false;
                    Vec::new()
                }
            },
            // The guard wait_for returns must not live across the other
            // branches' awaits.
            () = async { drop(shutdown.wait_for(|stop| *stop).await) }, if shutdown_deadline.is_none() => {
                shutdown_deadline = Some(tokio::time::Instant::now() + RELEASE_WAIT);
                client.handle(Instant::now(), Input::Shutdown)
            }
            _ = sleep_until(shutdown_deadline) => {
                info!("no Reply to Release within {}s, exiting anyway", RELEASE_WAIT.as_secs());
                return Ok(());
            }
        };
    }
}

/// Executes the core's actions; true once the core says it has stopped.
/// Whatever the core announces (an event) changed the binding or the
/// information, so the lease file is rewritten then.
async fn execute(
    actions: Vec<Action>,
    client: &mut Client,
    socket: Option<&UdpSocket>,
    outputs: &Outputs,
    port_problem: Option<&str>,
    persistence: &mut Persistence,
) -> bool {
    let mut stopped = false;
    let any = !actions.is_empty();
    if actions.iter().any(|a| matches!(a, Action::Event(_))) {
        persistence.write(client);
    }
    for action in actions {
        match action {
            Action::Send { bytes } => {
                let Some(socket) = socket else { continue };
                let to = SocketAddrV6::new(ALL_DHCP_SERVERS, SERVER_PORT, 0, 0);
                match socket.send_to(&bytes, to).await {
                    Ok(_) => debug!(
                        "DHCPv6 sent message type {} ({} bytes)",
                        bytes[0],
                        bytes.len()
                    ),
                    // The retransmission timer will try again.
                    Err(e) => warn!("DHCPv6 send to {ALL_DHCP_SERVERS}: {e}"),
                }
            }
            Action::Event(event) => {
                log_action_event(&event, client);
                // No subscriber is fine: nobody needs this one.
                let _ = outputs.events.send(event);
            }
            Action::Stopped => stopped = true,
        }
    }
    if any {
        publish_status(outputs, client, port_problem);
    }
    stopped
}

/// The core's status, with the driver's own trouble (the port held by
/// another client) as the last problem while it lasts.
fn publish_status(outputs: &Outputs, client: &Client, port_problem: Option<&str>) {
    let mut status = client.status();
    if let Some(problem) = port_problem {
        status.last_problem = Some(problem.to_string());
    }
    outputs.status.send_replace(status);
}

/// Why port 546 could not be had, in words, with the fix when it is the
/// usual case: odhcp6c still running on the WAN because netifd's wan6
/// interface is still `proto 'dhcpv6'`.
fn port_trouble(device: &str, e: &io::Error) -> String {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => {
            " (another DHCPv6 client runs on it: on OpenWrt odhcp6c, for an \
             interface with proto 'dhcpv6'; hand it to b4d with `uci set \
             network.wan6.proto=b4; uci commit network; service network restart`: \
             netifd loads b4d's protocol handler only when it starts)"
        }
        _ => "",
    };
    format!("cannot use UDP port {CLIENT_PORT} on {device}: {e}{hint}")
}

/// What the core must hear of the WAN, from the device it last heard was
/// up (`was`) and the one that is up now (`now`; `None`: down, or no
/// usable link-local address or socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkChange {
    None,
    Up,
    Down,
    /// Up on a new device of the same name: deleted and created again
    /// between two looks (a VLAN netifd recreates, its link-local usable at
    /// once). A link change all the same (RFC 8415 §18.2.12: Rebind).
    Recreated,
}

fn link_change(was: Option<u32>, now: Option<u32>) -> LinkChange {
    match (was, now) {
        (None, None) => LinkChange::None,
        (None, Some(_)) => LinkChange::Up,
        (Some(_), None) => LinkChange::Down,
        (Some(a), Some(b)) if a != b => LinkChange::Recreated,
        (Some(_), Some(_)) => LinkChange::None,
    }
}

impl LinkChange {
    fn inputs(self) -> Vec<Input<'static>> {
        match self {
            LinkChange::None => vec![],
            LinkChange::Up => vec![Input::LinkUp],
            LinkChange::Down => vec![Input::LinkDown],
            LinkChange::Recreated => vec![Input::LinkDown, Input::LinkUp],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_created_again_is_a_link_change() {
        assert_eq!(link_change(None, None), LinkChange::None);
        assert_eq!(link_change(None, Some(3)), LinkChange::Up);
        assert_eq!(link_change(Some(3), Some(3)), LinkChange::None);
        assert_eq!(link_change(Some(3), None), LinkChange::Down);
        assert_eq!(link_change(Some(3), Some(7)), LinkChange::Recreated);
        assert!(matches!(
            LinkChange::Recreated.inputs()[..],
            [Input::LinkDown, Input::LinkUp]
        ));
    }
}
