//! The tokio task around the DHCPv4 server core: owns UDP port 67 on the LAN
//! device, the lease file and the clock, feeds the core and executes what it
//! returns. No protocol decisions are made here.

use crate::atomic_file::RETRY_AFTER_FAILURE as PERSIST_RETRY;
use crate::timer::{sleep_until, PortWait};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, SockaddrIn};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::clock_now;
use super::leases::{self, format_mac, TimeBase};
use super::server::{self, Action, Destination, Input, Server, ServerConfig, ServerStatus};
use super::LeaseInfo;
use crate::boot_clock::BootClock;
use crate::lan4::driver::LanSubnet;
use crate::lan4::Ipv4Subnet;
use crate::netlink::wire::AF_INET;
use crate::netlink::{LinkWatch, Netlink, Subscription, RTNLGRP_NEIGH};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// Datagrams handled before the actions of the batch are executed: one
/// lease-file write and one publication serve them all under load.
const MAX_BATCH: usize = 64;
/// Status snapshots are published at most this often (computing one walks
/// the lease table).
const STATUS_INTERVAL: Duration = Duration::from_millis(200);

/// The neighbour table is read again this long after the kernel reports a
/// change (a busy LAN changes it all the time: one read per burst).
const NEIGHBOR_REREAD: Duration = Duration::from_millis(250);

/// How often port 67 is tried again while another server holds it.
const OPEN_RETRY: Duration = Duration::from_secs(5);

/// Channels the driver publishes on.
pub struct Outputs {
    pub leases: watch::Sender<Arc<Vec<LeaseInfo>>>,
    pub status: watch::Sender<ServerStatus>,
}

/// The receiving ends, for the DNS proxy (host names) and ubus (`leases`,
/// status).
pub struct Subscriptions {
    pub leases: watch::Receiver<Arc<Vec<LeaseInfo>>>,
    pub status: watch::Receiver<ServerStatus>,
}

/// How the wall clock maps to the server's right now.
fn time_base(boot_id: &str) -> TimeBase {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    TimeBase {
        boot_id: boot_id.to_string(),
        wall_minus_boot: wall as i64 - clock_now() as i64,
    }
}

/// UDP 0.0.0.0:67 bound to the LAN device (so only its clients are served
/// and broadcasts leave through it), allowed to broadcast, with IP_PKTINFO
/// for the arrival interface.
///
/// No SO_REUSEADDR: OpenWrt's dnsmasq sets it (and SO_REUSEPORT) on its
/// wildcard port-67 socket, so with it both would bind, both would get
/// every broadcast, and two authoritative servers with the same server
/// identifier would ACK and NAK the same REQUESTs. Without it the bind
/// fails (EADDRINUSE) while another DHCP server serves the LAN.
fn open_socket(device: &str) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_broadcast(true)?;
    socket
        .bind_device(Some(device.as_bytes()))
        .map_err(|e| io::Error::new(e.kind(), format!("SO_BINDTODEVICE {device}: {e}")))?;
    socket::setsockopt(&socket, socket::sockopt::Ipv4PacketInfo, &true)?;
    socket.set_nonblocking(true)?;
    let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT);
    socket
        .bind(&SocketAddr::V4(addr).into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind 0.0.0.0:{SERVER_PORT}: {e}")))?;
    UdpSocket::from_std(socket.into())
}

/// One datagram and the interface it arrived on.
fn recv_with_ifindex(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u32>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
    let msg = socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let ifindex = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::Ipv4PacketInfo(info) => u32::try_from(info.ipi_ifindex).ok(),
        _ => None,
    });
    Ok((msg.bytes, ifindex))
}

/// RFC 2131 §4.1: a reply to a client without an address, which did not
/// ask for broadcast, goes to `yiaddr` at its hardware address. The client
/// cannot answer ARP for an address it does not have yet, so the entry is
/// put in the neighbour table first (SIOCSARP, as dnsmasq does).
fn add_arp_entry(fd: RawFd, device: &str, ip: Ipv4Addr, mac: [u8; 6]) -> io::Result<()> {
    /// <net/if_arp.h>: the entry is complete (has a hardware address).
    const ATF_COM: libc::c_int = 0x02;
    // SAFETY: arpreq is plain data; all-zero is a valid value.
    let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
    let pa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes on Linux).
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&pa as *const libc::sockaddr_in).cast::<u8>(),
            (&mut req.arp_pa as *mut libc::sockaddr).cast::<u8>(),
            std::mem::size_of::<libc::sockaddr_in>(),
        );
    }
    req.arp_ha.sa_family = libc::ARPHRD_ETHER;
    for (dst, src) in req.arp_ha.sa_data.iter_mut().zip(mac) {
        *dst = src as libc::c_char;
    }
    req.arp_flags = ATF_COM;
    for (dst, src) in req.arp_dev.iter_mut().zip(device.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCSARP reads one arpreq, which lives for the call.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCSARP as _, &req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Loads the lease file; a missing file is an empty one. A damaged byte
/// (not UTF-8) spoils its line only, counted as unusable like any other.
fn load_leases(path: &Path, base: &TimeBase, latest_expiry: u64) -> (Vec<leases::Lease>, usize) {
    match std::fs::read(path) {
        Ok(bytes) => leases::parse(
            &String::from_utf8_lossy(&bytes),
            base,
            latest_expiry,
            server::valid_hostname,
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), 0),
        Err(e) => {
            warn!(
                "DHCPv4: cannot read lease file {}: {e}; starting without leases",
                path.display()
            );
            (Vec::new(), 0)
        }
    }
}

struct Persistence {
    path: PathBuf,
    /// This boot's id, written with the times (see leases.rs).
    boot_id: String,
    /// Why the last write failed, i.e. the file is stale (logged once per
    /// failure streak, shown as the server's problem).
    failing: Option<String>,
}

impl Persistence {
    /// Writes synchronously: the file lives on tmpfs on OpenWrt, and the
    /// DHCPACK waiting on it must not go out before it is written. Returns
    /// whether those DHCPACKs may go out: not while the file system is full
    /// (a firmware image uploaded to /tmp: a lease granted but not on file
    /// would go to another client after a restart; the clients ask again,
    /// and are answered once the file is written). Any other failure (a
    /// read-only file system, a file put where b4d may not write) lasts:
    /// serving on, leases in memory only, beats no DHCP at all.
    fn write(&mut self, server: &Server, now: u64) -> bool {
        let base = time_base(&self.boot_id);
        match leases::write_atomic(&self.path, |out| server.write_lease_file(out, now, &base)) {
            Ok(()) => {
                if self.failing.take().is_some() {
                    info!("DHCPv4: lease file {} written again", self.path.display());
                }
                true
            }
            Err(e) => {
                let full = matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT));
                let why = format!("cannot write lease file {}: {e}", self.path.display());
                if self.failing.is_none() {
                    let meanwhile = if full {
                        "no DHCPACK goes out until it can be written"
                    } else {
                        "leases are kept in memory only"
                    };
                    warn!(
                        "DHCPv4: {why}; {meanwhile}; trying again every {} s",
                        PERSIST_RETRY.as_secs()
                    );
                }
                self.failing = Some(why);
                !full
            }
        }
    }
}

/// What the driver serves with.
pub struct Settings {
    /// The LAN device (`lan.device`).
    pub device: String,
    /// The server's configuration on a LAN subnet, and what of the
    /// configuration does not fit it ([`ServerConfig::from_config`]).
    pub config_for: Box<dyn Fn(Ipv4Subnet) -> (ServerConfig, Vec<String>) + Send>,
    pub lease_file: PathBuf,
}

/// The driver's reasons for not serving, most basic first.
#[derive(Default)]
struct Trouble {
    /// No LAN subnet to serve: the device has no IPv4 address (an `ifdown
    /// lan`), or not the configured one.
    address: Option<String>,
    /// Port 67 is held by another server.
    port: Option<String>,
    /// The pool has no address inside the (followed) subnet.
    pool: Option<String>,
    /// The lease file cannot be written: answers are withheld.
    lease_file: Option<String>,
}

impl Trouble {
    fn problem(&self) -> Option<&str> {
        (self.address.as_ref())
            .or(self.port.as_ref())
            .or(self.lease_file.as_ref())
            .or(self.pool.as_ref())
            .map(String::as_str)
    }
}

/// A pool without one address of `subnet` serves nobody new: said in the
/// status, not only in the log.
fn pool_problem(config: &ServerConfig, subnet: Ipv4Subnet) -> Option<String> {
    (config.pool_last < config.pool_first).then(|| {
        format!(
            "no dynamic addresses: lan.dhcp_start is past the end of {}",
            subnet.network_string()
        )
    })
}

/// Waits for the first LAN subnet; `None` if shutdown came first.
async fn first_subnet(
    lan: &mut LanSubnet,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Ipv4Subnet> {
    tokio::select! {
        state = lan.wait_for(Result::is_ok) => state.ok().and_then(|s| s.clone().ok()),
        _ = shutdown.wait_for(|stop| *stop) => None,
    }
}

/// Runs the server on the LAN device until `shutdown` turns true, on the
/// subnet `lan` says (followed when it changes). The lease file is written
/// whenever the core asks (before the DHCPACK that needs it); on the way
/// out it is flushed again only if the last write failed.
pub async fn run(
    settings: Settings,
    mut lan: LanSubnet,
    mut shutdown: watch::Receiver<bool>,
    outputs: Outputs,
) -> io::Result<()> {
    let Settings {
        device,
        config_for,
        lease_file,
    } = settings;
    if let Err(why) = &*lan.borrow() {
        outputs.status.send_replace(ServerStatus {
            problem: Some(why.clone()),
            ..ServerStatus::default()
        });
    }
    let Some(mut subnet) = first_subnet(&mut lan, &mut shutdown).await else {
        return Ok(());
    };
    // Without a boot id (no /proc) a file is always read with the current
    // offset, as one from another boot: an id no file can hold.
    let boot_id = BootClock::read().map_or_else(
        |_| format!("unknown-{}-{}", std::process::id(), clock_now()),
        |c| c.boot_id,
    );
    let now = clock_now();
    let (config, misfits) = config_for(subnet);
    say_misfits(&misfits);
    let latest_expiry = now + u64::from(config.lease_secs);
    let (restored, bad_lines) = load_leases(&lease_file, &time_base(&boot_id), latest_expiry);
    let restored_count = restored.len();
    let mut trouble = Trouble {
        pool: pool_problem(&config, subnet),
        ..Trouble::default()
    };
    let pool = (config.pool_first, config.pool_last);
    let statics = config.statics.len();
    let lease_secs = config.lease_secs;
    let mut server = Server::new(config, restored, now);
    server.count_bad_lease_file_lines(bad_lines);
    if bad_lines > 0 {
        warn!(
            "DHCPv4: {bad_lines} unreadable lines in {} ignored",
            lease_file.display()
        );
    }
    let mut persistence = Persistence {
        path: lease_file,
        boot_id,
        failing: None,
    };
    let kept = server.status(now).active_leases;
    let parked = server.parked_leases();
    info!(
        "DHCPv4 server on {device} ({subnet}): pool {}-{}, lease {lease_secs}s, \
         {statics} static hosts, {kept} of {restored_count} leases restored from {} \
         ({parked} kept aside: not of this subnet or pool)",
        pool.0,
        pool.1,
        persistence.path.display()
    );
    // Leases dropped on load (expired, duplicates, unreadable) leave the
    // file now; an unchanged file is left alone.
    if kept as usize + parked != restored_count || bad_lines > 0 {
        persistence.write(&server, now);
    }
    outputs.leases.send_replace(server.lease_list(now));
    publish_status(&outputs, &mut server, now, &trouble);

    // The socket follows the device: br-lan is recreated when OpenWrt
    // restarts its network, and a socket bound to the old one hears nothing.
    let mut link = LinkWatch::new(&device)?;
    let mut socket: Option<(u32, UdpSocket)> = None;
    let mut device_state = link.snapshot().await?;
    let mut buf = vec![0u8; 65536];
    let mut status_due: Option<tokio::time::Instant> = None;
    let mut persist_retry: Option<tokio::time::Instant> = None;
    let mut announced_missing = false;
    // While port 67 cannot be had: when to try again, said once per streak.
    let mut port_wait = PortWait::new(OPEN_RETRY);
    let mut lan_open = true;
    // The LAN's neighbour table tells which pool addresses devices without
    // a lease use (Input::Neighbors): read at start, again after changes.
    let neighbor_table = Netlink::open()?;
    let mut neighbor_changes = Subscription::open(&[RTNLGRP_NEIGH])?;
    let mut neighbors_due = Some(tokio::time::Instant::now());
    loop {
        match &device_state {
            _ if trouble.address.is_some() => socket = None,
            Some(s)
                if socket.as_ref().is_none_or(|(index, _)| *index != s.index)
                    && port_wait.due(tokio::time::Instant::now()) =>
            {
                // The old device's socket goes first: it holds the port.
                socket = None;
                announced_missing = false;
                match open_socket(&device) {
                    Ok(opened) => {
                        socket = Some((s.index, opened));
                        if port_wait.opened() {
                            info!("DHCPv4: port {SERVER_PORT} on {device} is ours now; serving");
                            trouble.port = None;
                            publish_status(&outputs, &mut server, clock_now(), &trouble);
                        }
                        debug!("DHCPv4: listening on {device} (index {})", s.index);
                    }
                    Err(e) => {
                        let hint = match e.kind() {
                            io::ErrorKind::AddrInUse => {
                                // Not `ignore`: odhcpd reads it too and would stop
                                // serving IPv6 on the LAN; `dhcpv4` only stops
                                // dnsmasq's DHCPv4 range (dnsmasq.init).
                                " (another DHCP server is running: on OpenWrt turn off \
                                 dnsmasq's for the LAN with `uci set dhcp.lan.dhcpv4=disabled; \
                                 uci commit dhcp; service dnsmasq restart`)"
                            }
                            _ => "",
                        };
                        let problem = format!("cannot serve on {device}: {e}{hint}");
                        if port_wait.failed(tokio::time::Instant::now()) {
                            warn!(
                                "DHCPv4: {problem}; trying again every {} s",
                                OPEN_RETRY.as_secs()
                            );
                        }
                        trouble.port = Some(problem);
                        publish_status(&outputs, &mut server, clock_now(), &trouble);
                    }
                }
            }
            None if !announced_missing => {
                socket = None;
                announced_missing = true;
                info!("DHCPv4: waiting for LAN device {device} to appear");
            }
            _ => {}
        }
        if device_state.is_none() || trouble.address.is_some() {
            // Nothing to retry on until the device (or its address) is
            // back; a retry time left to pass would wake every turn.
            port_wait.idle();
        }
        let timer = server.poll_timeout().map(|at| {
            // Capped: a far-off deadline would overflow an Instant; waking
            // once a day to look again costs nothing.
            let wait = at.saturating_sub(clock_now()).min(86_400);
            tokio::time::Instant::now() + Duration::from_secs(wait)
        });
        let readable = async {
            match &socket {
                Some((index, s)) => s.readable().await.map(|()| (*index, s)),
                None => std::future::pending().await,
            }
        };
        let mut actions = Vec::new();
        tokio::select! {
            // The borrow guard wait_for returns must not live across the
            // other branches' awaits (it is not Send).
            _ = async { drop(shutdown.wait_for(|stop| *stop).await) } => {
                // Every change was written when it happened; only a write
                // that failed is retried.
                let now = clock_now();
                if persistence.failing.is_some() {
                    persistence.write(&server, now);
                }
                info!("DHCPv4 server stopped; {} leases saved", server.status(now).active_leases);
                return Ok(());
            }
            changed = link.changed() => {
                changed?;
                let index = device_state.as_ref().map(|s| s.index);
                device_state = link.snapshot().await?;
                if device_state.as_ref().map(|s| s.index) != index {
                    neighbors_due = Some(tokio::time::Instant::now());
                }
            }
            changed = neighbor_changes.changed() => {
                changed?;
                neighbors_due.get_or_insert_with(|| tokio::time::Instant::now() + NEIGHBOR_REREAD);
            }
            _ = sleep_until(neighbors_due) => {
                neighbors_due = None;
                let index = device_state.as_ref().map_or(0, |s| s.index);
                match neighbor_table.neighbors(AF_INET, index).await {
                    Ok(entries) => {
                        let table: Vec<_> = (entries.iter())
                            .filter_map(|n| match n.addr {
                                IpAddr::V4(ip) => Some((ip, n.lladdr)),
                                IpAddr::V6(_) => None,
                            })
                            .collect();
                        // Its actions too: handle() reports lease expiries.
                        actions = server.handle(clock_now(), Input::Neighbors(&table));
                    }
                    Err(e) => debug!("DHCPv4: {e}"),
                }
            }
            changed = lan.changed(), if lan_open => {
                let Ok(()) = changed else {
                    // Its driver ended (shutdown): the subnet stays.
                    lan_open = false;
                    continue;
                };
                let now = clock_now();
                match lan.borrow_and_update().clone() {
                    Err(why) => trouble.address = Some(why),
                    Ok(new) => {
                        trouble.address = None;
                        if new != subnet {
                            let (config, misfits) = config_for(new);
                            say_misfits(&misfits);
                            trouble.pool = pool_problem(&config, new);
                            let pool = (config.pool_first, config.pool_last);
                            let before = server.status(now).active_leases;
                            actions = server.reconfigure(config, now);
                            info!(
                                "DHCPv4: serving {new} now (was {subnet}): pool {}-{}, \
                                 {} of {before} leases fit it",
                                pool.0,
                                pool.1,
                                server.status(now).active_leases
                            );
                            subnet = new;
                        }
                    }
                }
                publish_status(&outputs, &mut server, now, &trouble);
            }
            _ = sleep_until(timer) => {
                actions = server.handle(clock_now(), Input::Timeout);
            }
            _ = sleep_until(port_wait.at()) => {}
            _ = sleep_until(status_due) => {
                status_due = None;
                publish_status(&outputs, &mut server, clock_now(), &trouble);
            }
            _ = sleep_until(persist_retry) => {
                let now = clock_now();
                // Until it works, whatever the failure (a read-only file
                // system serves on meanwhile, but is retried all the same).
                persistence.write(&server, now);
                persist_retry = (persistence.failing.is_some())
                    .then(|| tokio::time::Instant::now() + PERSIST_RETRY);
                trouble.lease_file = persistence.failing.clone();
                publish_status(&outputs, &mut server, now, &trouble);
            }
            ready = readable => {
                let (index, s) = ready?;
                let fd = s.as_raw_fd();
                for _ in 0..MAX_BATCH {
                    match s.try_io(Interest::READABLE, || recv_with_ifindex(fd, &mut buf)) {
                        Ok((len, arrived_on)) => {
                            // SO_BINDTODEVICE already filters; this guards
                            // against a device replaced under us.
                            if arrived_on.is_some_and(|i| i != index) {
                                continue;
                            }
                            let now = clock_now();
                            for action in server.handle(now, Input::Received { bytes: &buf[..len] }) {
                                if !actions.contains(&action) || matches!(action, Action::Send { .. }) {
                                    actions.push(action);
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            warn!("DHCPv4 receive on {device}: {e}");
                            break;
                        }
                    }
                }
            }
        }
        if actions.is_empty() {
            continue;
        }
        let now = clock_now();
        // The core orders each message's actions; across a batch, do every
        // write and publication before any send.
        if actions.contains(&Action::Persist) {
            if !persistence.write(&server, now) {
                // The core's rule: no DHCPACK for a lease not on file. The
                // client asks again; its lease, kept in memory, is then
                // acknowledged once the file could be written.
                actions.retain(|a| {
                    !matches!(
                        a,
                        Action::Send {
                            needs_file: true,
                            ..
                        }
                    )
                });
            }
            if persistence.failing.is_some() {
                persist_retry.get_or_insert_with(|| tokio::time::Instant::now() + PERSIST_RETRY);
            }
        }
        trouble.lease_file = persistence.failing.clone();
        if actions.contains(&Action::LeasesChanged) {
            outputs.leases.send_replace(server.lease_list(now));
        }
        if let Some((_, s)) = &socket {
            for action in actions {
                if let Action::Send { to, bytes, .. } = action {
                    send(s, &device, to, &bytes).await;
                }
            }
        }
        status_due.get_or_insert_with(|| tokio::time::Instant::now() + STATUS_INTERVAL);
    }
}

fn say_misfits(misfits: &[String]) {
    for misfit in misfits {
        warn!("DHCPv4: {misfit}");
    }
}

/// The core's status, with the driver's own trouble as the problem while
/// it lasts; without a LAN address no subnet is served.
fn publish_status(outputs: &Outputs, server: &mut Server, now: u64, trouble: &Trouble) {
    let mut status = server.status(now).clone();
    status.problem = trouble.problem().map(str::to_string);
    if trouble.address.is_some() {
        status.subnet = None;
    }
    outputs.status.send_replace(status);
}

async fn send(socket: &UdpSocket, device: &str, to: Destination, bytes: &[u8]) {
    let fd = socket.as_raw_fd();
    let (ip, port) = match to {
        Destination::Broadcast => (Ipv4Addr::BROADCAST, CLIENT_PORT),
        Destination::Unicast(ip) => (ip, CLIENT_PORT),
        Destination::Relay(ip) => (ip, SERVER_PORT),
        Destination::UnicastToHardware { ip, mac } => {
            if let Err(e) = add_arp_entry(fd, device, ip, mac) {
                // Without the entry the unicast would wait on ARP the
                // client cannot answer: broadcast instead.
                debug!(
                    "DHCPv4: SIOCSARP {ip} {} on {device}: {e}; broadcasting",
                    format_mac(&mac)
                );
                (Ipv4Addr::BROADCAST, CLIENT_PORT)
            } else {
                (ip, CLIENT_PORT)
            }
        }
    };
    if let Err(e) = socket.send_to(bytes, SocketAddrV4::new(ip, port)).await {
        warn!("DHCPv4 send to {ip} on {device}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte that is not UTF-8 (a damaged sector, a hand edit) in one
    /// host name: that line is unusable, every other lease is kept.
    #[test]
    fn a_damaged_byte_in_the_lease_file_spoils_its_line_only() {
        let base = TimeBase {
            boot_id: "boot".into(),
            wall_minus_boot: 0,
        };
        let lease = |last: u8, name: &str| leases::Lease {
            client: leases::ClientKey::Mac([2, 0, 0, 0, 0, last]),
            mac: [2, 0, 0, 0, 0, last],
            ip: Ipv4Addr::new(192, 168, 1, last),
            hostname: Some(name.into()),
            expires: 1000,
        };
        let all = [lease(100, "tv"), lease(101, "phone"), lease(102, "laptop")];
        let text = leases::serialize(all.iter(), 10, &base);
        let mut bytes = text.into_bytes();
        let at = bytes.windows(5).position(|w| w == b"phone").unwrap();
        bytes[at + 1] = 0xff;
        let path = std::env::temp_dir().join(format!("b4d-leases-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let (restored, bad) = load_leases(&path, &base, u64::MAX);
        std::fs::remove_file(&path).unwrap();
        let names: Vec<_> = restored.iter().filter_map(|l| l.hostname.clone()).collect();
        assert_eq!(
            (names, bad),
            (vec!["tv".to_string(), "laptop".to_string()], 1)
        );
    }
}
