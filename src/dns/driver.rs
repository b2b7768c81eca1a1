//! The tokio side of the DNS proxy: the LAN listeners (UDP and TCP on the LAN
//! IPv4 address only), one connected UDP socket per upstream attempt (the
//! kernel picks a random source port for each, RFC 5452 §9.2), one reused
//! TCP connection per upstream (queries pipelined, RFC 7766 §6.2.1.1), and
//! the timers. Everything it decides is decided by [`Proxy`].

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::mmsg;
use super::proxy::{AttemptId, QUERY_DEADLINE};
use super::{Action, Client, DropReason, Input, LocalHosts, Proxy, ProxyStatus, Transport};
use crate::lan4::driver::{LanState, LanSubnet};
use crate::lan4::Ipv4Subnet;

/// Concurrent TCP clients; more are closed at once.
pub const MAX_TCP_CLIENTS: usize = 32;
/// Concurrent TCP clients from one address: one host cannot take every slot.
pub const MAX_TCP_CLIENTS_PER_ADDRESS: usize = 8;
/// A TCP client must deliver each whole message, and take each answer,
/// within this (RFC 7766 §6.2.3).
pub const TCP_CLIENT_IDLE: Duration = Duration::from_secs(10);
/// An upstream TCP connection unused this long is closed.
pub const TCP_UPSTREAM_IDLE: Duration = Duration::from_secs(10);
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest message a TCP client may send. A query (a question and a few
/// records: EDNS, TSIG) is far smaller; a DNS UPDATE over this is refused.
/// Every client message waits in the 1024-slot event queue, where 64 KiB
/// frames could take 64 MiB.
const MAX_TCP_QUERY: usize = 4096;
/// Messages queued towards one TCP peer. A client connection reads no
/// query while this many answers are owed (RFC 7766 §6.2.1.1: pipelined
/// queries must not lose their answers), so its queue never overflows.
const TCP_QUEUE: usize = 32;
/// recvmmsg calls in a row before looking at the other event sources.
const UDP_BATCHES: usize = 4;
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
const BIND_RETRY: Duration = Duration::from_secs(5);

pub struct DriverConfig {
    /// The port to listen on (`lan.dns_port`), on the LAN address.
    pub port: u16,
    /// The LAN subnet: its address is listened on, followed when it moves;
    /// only clients inside it are answered, like OpenWrt's dnsmasq default
    /// `localservice` (the address alone does not stop a packet for it
    /// arriving on another interface).
    pub lan: LanSubnet,
    pub cache_size: usize,
    /// The WAN device: the zone of link-local upstream servers.
    pub wan_device: String,
    /// Seeds the ID generator.
    pub seed: u64,
    /// Called when an upstream that had stopped answering answers again (the
    /// tunnel then retries a failing AFTR lookup at once, instead of at the
    /// end of its backoff).
    pub on_upstream_recovered: Box<dyn Fn() + Send>,
}

enum Event {
    /// The socket of an attempt is readable, or (`true`) has an error pending.
    UdpReady(AttemptId, bool),
    TcpUpstreamReply(SocketAddr, Vec<u8>),
    /// The connection `conn` to the server ended; `true` if queries were
    /// still in its queue, never written, or written and not answered.
    TcpUpstreamDown(SocketAddr, u64, bool),
    TcpClientQuery {
        conn: u64,
        peer: SocketAddr,
        bytes: Vec<u8>,
    },
    TcpClientDrop(DropReason),
    TcpClientClosed(u64),
    Upstreams(Vec<Ipv6Addr>),
    Hosts(LocalHosts),
    /// The LAN subnet moved, or went (and why).
    Lan(LanState),
    Shutdown,
}

struct UdpAttempt {
    socket: Arc<UdpSocket>,
    waiter: AbortHandle,
}

struct Driver {
    proxy: Proxy,
    lan_udp: UdpSocket,
    events: mpsc::Sender<Event>,
    attempts: HashMap<AttemptId, UdpAttempt>,
    /// Per server: connection number and its queue.
    tcp_upstreams: HashMap<SocketAddr, (u64, mpsc::Sender<Vec<u8>>)>,
    /// Per connection: the client's address and its answer queue.
    tcp_clients: HashMap<u64, (IpAddr, mpsc::Sender<Vec<u8>>)>,
    next_conn: u64,
    /// UDP answers collected while handling one wake-up, sent together.
    answers: Vec<(SocketAddrV4, Vec<u8>)>,
    send_batch: mmsg::SendBatch,
    /// The core's actions for one client query (reused: nothing allocated
    /// per query on a cache hit).
    actions: Vec<Action>,
    /// The LAN subnet listened on: the clients answered.
    lan: Ipv4Subnet,
    /// Why the proxy does not serve the LAN as it should, if it does not.
    problem: Option<String>,
    /// A LAN subnet whose address could not be listened on yet: tried
    /// again with the status tick.
    pending_lan: Option<Ipv4Subnet>,
    /// The upstream servers as configured or learned.
    upstream_ips: Vec<Ipv6Addr>,
    /// The WAN device and its index, the zone of link-local upstreams
    /// (looked up again when sending to one fails: the device was
    /// recreated, a VLAN by a network restart).
    wan_device: String,
    wan_index: u32,
}

/// Binds to an address that may not exist yet (IP_FREEBIND): br-lan can come
/// up after b4d. SO_REUSEADDR only for TCP, where a restart needs it (the
/// last run's connections in TIME_WAIT); on UDP it would let b4d share the
/// port with a dnsmasq that sets it too, each getting some of the queries.
fn lan_socket(listen: SocketAddrV4, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, ty, Some(protocol))?;
    socket.set_reuse_address(ty == Type::STREAM)?;
    socket.set_freebind_v4(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(listen).into())?;
    Ok(socket)
}

fn listen(addr: SocketAddrV4) -> io::Result<(UdpSocket, TcpListener)> {
    let udp = lan_socket(addr, Type::DGRAM, Protocol::UDP)?;
    // Room for a burst of queries while the loop is busy.
    let _ = udp.set_recv_buffer_size(256 * 1024);
    let tcp = lan_socket(addr, Type::STREAM, Protocol::TCP)?;
    tcp.listen(64)?;
    Ok((
        UdpSocket::from_std(udp.into())?,
        TcpListener::from_std(tcp.into())?,
    ))
}

/// Runs until `shutdown` becomes true. `upstreams` is the IPv6 resolver
/// list (port 53), `hosts` the LAN names; both are followed live.
pub async fn run(
    config: DriverConfig,
    mut upstreams: watch::Receiver<Vec<Ipv6Addr>>,
    mut hosts: watch::Receiver<LocalHosts>,
    status: watch::Sender<ProxyStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut lan = config.lan;
    let Some((subnet, lan_udp, lan_tcp)) =
        first_listeners(&mut lan, config.port, &status, &mut shutdown).await
    else {
        return Ok(());
    };
    info!(
        "proxy listening on {} (UDP and TCP)",
        listen_address(subnet, config.port)
    );

    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let mut driver = Driver {
        proxy: Proxy::new(config.cache_size, config.seed, std::time::Instant::now()),
        lan_udp,
        events: events_tx,
        attempts: HashMap::new(),
        tcp_upstreams: HashMap::new(),
        tcp_clients: HashMap::new(),
        next_conn: 0,
        answers: Vec::with_capacity(mmsg::BATCH),
        send_batch: mmsg::SendBatch::default(),
        actions: Vec::new(),
        lan: subnet,
        problem: None,
        pending_lan: None,
        upstream_ips: Vec::new(),
        wan_device: config.wan_device,
        wan_index: 0,
    };
    let mut lan_tcp = lan_tcp;
    driver.set_upstreams(&upstreams.borrow_and_update());
    driver.proxy.set_local_hosts(&hosts.borrow_and_update());
    driver.publish(&status);
    // At low load every query is a turn of the loop below, so a turn polls
    // as little as it can: the settings arrive as events from a task of
    // their own (three watch futures would each take and release a lock on
    // every turn), the sockets are polled for readiness directly (their
    // readiness futures link into a waiter list under a lock), and the
    // status tick shares the core's timer.
    let side_events = tokio::spawn(side_events(
        shutdown,
        upstreams,
        hosts,
        lan,
        driver.events.clone(),
    ));
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let mut batch = mmsg::RecvBatch::default();
    let mut recoveries = 0;
    let mut next_status = Instant::now() + STATUS_INTERVAL;
    // One timer, moved when the core's next deadline moves.
    let timer = sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        let core_wake = driver.proxy.poll_timeout().map(Instant::from_std);
        let wake = core_wake.map_or(next_status, |at| at.min(next_status));
        if timer.deadline() != wake {
            timer.as_mut().reset(wake);
        }
        tokio::select! {
            Ok(()) = poll_fn(|cx| driver.lan_udp.poll_recv_ready(cx)) => {
                let fd = driver.lan_udp.as_raw_fd();
                // Batches until the socket is drained (try_io then clears
                // tokio's readiness: the next turn waits in epoll instead of
                // going round the select again for an empty recvmmsg), at
                // most UDP_BATCHES before the other event sources get a turn.
                // Each batch's answers go out before the next is read. (Taking
                // a batch with room to spare as the end saves that empty
                // recvmmsg at low load, but under load it trades the next
                // full batch for an epoll_wait and a turn: 2 % fewer capped
                // hits per second.)
                for _ in 0..UDP_BATCHES {
                    if driver.lan_udp.try_io(Interest::READABLE, || batch.recv(fd)).is_err() {
                        break;
                    }
                    let forward = driver.udp_queries(&batch);
                    if !forward.is_empty() {
                        driver.execute(forward).await;
                    }
                    driver.flush_answers().await;
                }
            }
            accepted = poll_fn(|cx| lan_tcp.poll_accept(cx)) => {
                if let Ok((stream, peer)) = accepted {
                    driver.accept_tcp(stream, peer);
                }
            }
            Some(event) = events_rx.recv() => match event {
                Event::Shutdown => break,
                Event::Upstreams(servers) => driver.set_upstreams(&servers),
                Event::Hosts(hosts) => driver.proxy.set_local_hosts(&hosts),
                Event::Lan(subnet) => {
                    if let Some(tcp) = driver.follow_lan(subnet, config.port) {
                        lan_tcp = tcp;
                    }
                    driver.publish(&status);
                }
                event => driver.event(event, &mut buf).await,
            },
            () = &mut timer => {
                if core_wake.is_some() {
                    let actions = driver.proxy.handle(std::time::Instant::now(), Input::Timeout);
                    driver.execute(actions).await;
                }
                let now = Instant::now();
                if now >= next_status {
                    if let Some(subnet) = driver.pending_lan {
                        if let Some(tcp) = driver.follow_lan(Ok(subnet), config.port) {
                            lan_tcp = tcp;
                        }
                    }
                    driver.publish(&status);
                    next_status = now + STATUS_INTERVAL;
                }
            }
        }
        driver.flush_answers().await;
        if driver.proxy.upstream_recoveries() != recoveries {
            recoveries = driver.proxy.upstream_recoveries();
            (config.on_upstream_recovered)();
        }
    }
    side_events.abort();
    for (_, attempt) in driver.attempts.drain() {
        attempt.waiter.abort();
    }
    driver.publish(&status);
    info!("proxy stopped");
    Ok(())
}

fn listen_address(lan: Ipv4Subnet, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(lan.address(), port)
}

/// Why the proxy is not listening where it should.
fn listen_problem(addr: SocketAddrV4, e: &io::Error) -> String {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => {
            " (another DNS server holds it: on OpenWrt dnsmasq; leave the LAN's \
             DNS to it with `uci set b4d.lan.dns_proxy=0`, or free the address \
             with `uci add_list dhcp.@dnsmasq[0].notinterface=lan`, which also \
             ends dnsmasq's DNS on the LAN's IPv6 addresses)"
        }
        _ => "",
    };
    format!("cannot listen on {addr}: {e}{hint}")
}

/// The first listeners, on the LAN address once there is one; `None` if
/// shutdown came first. Port 53 may be taken (dnsmasq still running): the
/// rest of the B4 must not stop for that, so this waits and tries again.
async fn first_listeners(
    lan: &mut LanSubnet,
    port: u16,
    status: &watch::Sender<ProxyStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Ipv4Subnet, UdpSocket, TcpListener)> {
    let mut warned = false;
    loop {
        let state = lan.borrow_and_update().clone();
        let problem = match &state {
            Err(why) => why.clone(),
            Ok(subnet) => match listen(listen_address(*subnet, port)) {
                Ok((udp, tcp)) => return Some((*subnet, udp, tcp)),
                Err(e) => {
                    let problem = listen_problem(listen_address(*subnet, port), &e);
                    if !warned {
                        warn!("{problem}; trying again every {} s", BIND_RETRY.as_secs());
                        warned = true;
                    }
                    problem
                }
            },
        };
        status.send_replace(ProxyStatus {
            problem: Some(problem),
            ..ProxyStatus::default()
        });
        // A changed subnet is tried at once, also while the port is held
        // (netifd moving the LAN away from the address dnsmasq holds); a
        // closed channel (shutdown) waits for the shutdown itself.
        let retry = async {
            let changed = async {
                if lan.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            match state {
                Ok(_) => tokio::select! {
                    () = sleep(BIND_RETRY) => {}
                    () = changed => {}
                },
                Err(_) => changed.await,
            }
        };
        tokio::select! {
            _ = retry => {}
            _ = shutdown.wait_for(|stop| *stop) => return None,
        }
    }
}

/// Turns changes of the watched settings into events for the loop, until
/// shutdown.
async fn side_events(
    mut shutdown: watch::Receiver<bool>,
    mut upstreams: watch::Receiver<Vec<Ipv6Addr>>,
    mut hosts: watch::Receiver<LocalHosts>,
    mut lan: LanSubnet,
    events: mpsc::Sender<Event>,
) {
    let (mut upstreams_open, mut hosts_open, mut lan_open) = (true, true, true);
    loop {
        let event = tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_ok() && !*shutdown.borrow() {
                    continue;
                }
                Event::Shutdown
            }
            changed = upstreams.changed(), if upstreams_open => match changed {
                Ok(()) => Event::Upstreams(upstreams.borrow_and_update().clone()),
                // A static list: nobody will change it.
                Err(_) => {
                    upstreams_open = false;
                    continue;
                }
            },
            changed = hosts.changed(), if hosts_open => match changed {
                Ok(()) => Event::Hosts(hosts.borrow_and_update().clone()),
                Err(_) => {
                    hosts_open = false;
                    continue;
                }
            },
            changed = lan.changed(), if lan_open => match changed {
                Ok(()) => Event::Lan(lan.borrow_and_update().clone()),
                // Its driver ended (shutdown): the subnet stays.
                Err(_) => {
                    lan_open = false;
                    continue;
                }
            },
        };
        let last = matches!(event, Event::Shutdown);
        if events.send(event).await.is_err() || last {
            return;
        }
    }
}

impl Driver {
    /// Publishes the core's counters with the driver's problem.
    fn publish(&self, status: &watch::Sender<ProxyStatus>) {
        let mut now = self.proxy.status();
        now.problem.clone_from(&self.problem);
        status.send_replace(now);
    }

    /// Moves the listeners to a changed LAN address (returning the new TCP
    /// listener); the cache and queries in flight stay. Without an address,
    /// or while the new one cannot be had, the old listeners stay (they
    /// hear nothing meanwhile) and the problem is said, once; a failed
    /// address is tried again every status tick until it binds or the LAN
    /// changes again.
    fn follow_lan(&mut self, state: LanState, port: u16) -> Option<TcpListener> {
        self.pending_lan = None;
        let subnet = match state {
            Ok(subnet) => subnet,
            Err(why) => {
                debug!("proxy: {why}");
                self.problem = Some(why);
                return None;
            }
        };
        if subnet == self.lan {
            self.problem = None;
            return None;
        }
        if subnet.address() == self.lan.address() {
            // Only the prefix changed: the same sockets, other clients.
            info!(
                "proxy answering {} now (was {})",
                subnet.network_string(),
                self.lan.network_string()
            );
            self.lan = subnet;
            self.problem = None;
            return None;
        }
        // Another address binds beside the old one (no wildcard here), so
        // the old listeners serve until the new ones are there.
        let addr = listen_address(subnet, port);
        match listen(addr) {
            Ok((udp, tcp)) => {
                info!(
                    "proxy listening on {addr} now (UDP and TCP; was {})",
                    self.lan
                );
                self.lan_udp = udp;
                self.lan = subnet;
                self.problem = None;
                Some(tcp)
            }
            Err(e) => {
                let problem = listen_problem(addr, &e);
                if self.problem.as_ref() != Some(&problem) {
                    warn!("{problem}; trying again every second");
                }
                self.problem = Some(problem);
                self.pending_lan = Some(subnet);
                None
            }
        }
    }

    fn set_upstreams(&mut self, servers: &[Ipv6Addr]) {
        self.upstream_ips = servers.to_vec();
        self.wan_index = self.find_wan_index();
        if self.wan_index == 0 && servers.iter().any(Ipv6Addr::is_unicast_link_local) {
            // Said once: a failed send looks again, quietly.
            warn!(
                "link-local upstream servers unreachable until WAN {} is there",
                self.wan_device
            );
        }
        let addrs: Vec<SocketAddr> = servers
            .iter()
            .map(|ip| super::server_address(*ip, self.wan_index))
            .collect();
        if addrs.is_empty() {
            warn!("no upstream servers; queries get SERVFAIL until DHCPv6 provides some");
        } else {
            let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
            info!("upstream servers {}", list.join(","));
        }
        self.proxy.set_upstreams(&addrs);
    }

    /// The WAN's index if a link-local upstream needs it, else 0.
    fn find_wan_index(&self) -> u32 {
        if !self
            .upstream_ips
            .iter()
            .any(Ipv6Addr::is_unicast_link_local)
        {
            return 0;
        }
        nix::net::if_::if_nametoindex(self.wan_device.as_str()).unwrap_or(0)
    }

    /// Sending to a link-local server failed: if the WAN device was
    /// recreated since, its servers are asked through the new one.
    fn follow_wan_index(&mut self, server: SocketAddr) {
        let SocketAddr::V6(server) = server else {
            return;
        };
        if server.ip().is_unicast_link_local() && self.find_wan_index() != self.wan_index {
            self.set_upstreams(&self.upstream_ips.clone());
        }
    }

    /// The queries of one received batch. Answers to UDP clients (every
    /// action of a cache hit) are collected here, synchronously; the rest
    /// (upstream queries) is returned, for `execute`.
    fn udp_queries(&mut self, batch: &mmsg::RecvBatch) -> Vec<Action> {
        // One clock read per batch: the datagrams arrived together, and the
        // cache ages TTLs in whole seconds.
        let now = std::time::Instant::now();
        let mut actions = std::mem::take(&mut self.actions);
        for (bytes, from, truncated) in batch.iter() {
            if truncated {
                self.proxy.record_drop(DropReason::MalformedQuery);
            } else if !self.is_lan(from) {
                self.proxy.record_drop(DropReason::NotFromLan);
            } else {
                let query = Input::ClientQuery {
                    client: Client::Udp(from),
                    bytes,
                };
                self.proxy.handle_into(now, query, &mut actions);
            }
        }
        let mut other = Vec::new();
        for action in actions.drain(..) {
            match action {
                // The listener is IPv4, so every UDP client is.
                Action::ToClient {
                    client: Client::Udp(SocketAddr::V4(addr)),
                    bytes,
                } => self.answers.push((addr, bytes)),
                action => other.push(action),
            }
        }
        self.actions = actions;
        other
    }

    async fn client_query(&mut self, now: std::time::Instant, client: Client, bytes: &[u8]) {
        let mut actions = std::mem::take(&mut self.actions);
        let dropped_before = self.proxy.dropped();
        self.proxy
            .handle_into(now, Input::ClientQuery { client, bytes }, &mut actions);
        // A TCP query dropped (malformed, a duplicate, a flood) gets no
        // answer: its connection is told so (an empty message, not
        // written), or the room it holds for that answer would never come
        // back (see `client_connection`).
        if let Client::Tcp { conn, .. } = client {
            if self.proxy.dropped() != dropped_before {
                if let Some((_, tx)) = self.tcp_clients.get(&conn) {
                    let _ = tx.try_send(Vec::new());
                }
            }
        }
        self.execute(actions.drain(..)).await;
        self.actions = actions;
    }

    async fn event(&mut self, event: Event, buf: &mut [u8]) {
        let now = std::time::Instant::now;
        match event {
            Event::UdpReady(attempt, error) => self.read_attempt(attempt, error, buf).await,
            Event::TcpUpstreamReply(server, bytes) => {
                let actions = self.proxy.handle(
                    now(),
                    Input::TcpReply {
                        server,
                        bytes: &bytes,
                    },
                );
                self.execute(actions).await;
            }
            Event::TcpUpstreamDown(server, conn, unsent) => {
                // The current connection's end: the core sends its queries
                // again (on a new one) or fails them over. An older one's
                // (closed while idle) concerns nothing in flight, unless
                // queries were queued on it, or written and not answered,
                // as it closed (a new connection was made current in
                // between): then the core sends the server's queries again
                // too (on the current connection; a duplicate answer is
                // dropped), instead of waiting for their timeout.
                let current = self.tcp_upstreams.get(&server).map(|(c, _)| *c);
                if current == Some(conn) {
                    self.tcp_upstreams.remove(&server);
                }
                if current == Some(conn) || unsent {
                    let actions = self.proxy.handle(now(), Input::TcpDown { server });
                    self.execute(actions).await;
                }
            }
            Event::TcpClientQuery { conn, peer, bytes } => {
                self.client_query(now(), Client::Tcp { conn, peer }, &bytes)
                    .await;
            }
            Event::TcpClientDrop(reason) => self.proxy.record_drop(reason),
            Event::TcpClientClosed(conn) => {
                self.tcp_clients.remove(&conn);
            }
            // Handled by the loop itself.
            Event::Upstreams(_) | Event::Hosts(_) | Event::Lan(_) | Event::Shutdown => {}
        }
    }

    /// Reads every datagram waiting on an attempt's socket; with `error`,
    /// first looks at the pending socket error.
    async fn read_attempt(&mut self, attempt: AttemptId, error: bool, buf: &mut [u8]) {
        if error {
            let Some(socket) = self.attempts.get(&attempt).map(|a| Arc::clone(&a.socket)) else {
                return;
            };
            // An ICMP error on a connected socket (RFC 1122 §4.1.3.3): the
            // server is not there, fail over now rather than at the timeout.
            match socket.take_error() {
                Ok(Some(e))
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
                    ) =>
                {
                    let input = Input::UdpFailed { attempt };
                    let actions = self.proxy.handle(std::time::Instant::now(), input);
                    self.execute(actions).await;
                    return;
                }
                Ok(Some(e)) => debug!("attempt {attempt}: {e}"),
                Ok(None) | Err(_) => {}
            }
        }
        loop {
            let Some(socket) = self.attempts.get(&attempt).map(|a| Arc::clone(&a.socket)) else {
                return;
            };
            match socket.try_recv_from(buf) {
                Ok((n, from)) => {
                    let input = Input::UdpReply {
                        attempt,
                        from,
                        bytes: &buf[..n],
                    };
                    let actions = self.proxy.handle(std::time::Instant::now(), input);
                    self.execute(actions).await;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // After an error, tokio keeps the ERROR readiness set:
                    // wait for data only, or the waiter would spin.
                    let waiter = self.spawn_waiter(attempt, socket, !error);
                    if let Some(a) = self.attempts.get_mut(&attempt) {
                        a.waiter = waiter;
                    }
                    return;
                }
                Err(e) => debug!("attempt {attempt}: {e}"),
            }
        }
    }

    fn spawn_waiter(
        &self,
        attempt: AttemptId,
        socket: Arc<UdpSocket>,
        errors: bool,
    ) -> AbortHandle {
        let events = self.events.clone();
        // ERROR too: an ICMP unreachable sets only EPOLLERR.
        let interest = if errors {
            Interest::READABLE | Interest::ERROR
        } else {
            Interest::READABLE
        };
        tokio::spawn(async move {
            if let Ok(ready) = socket.ready(interest).await {
                let _ = events
                    .send(Event::UdpReady(attempt, ready.is_error()))
                    .await;
            }
        })
        .abort_handle()
    }

    /// Sends the collected UDP answers, batched; what the socket does not
    /// take at once is sent one by one as it drains.
    async fn flush_answers(&mut self) {
        if self.answers.is_empty() {
            return;
        }
        let mut answers = std::mem::take(&mut self.answers);
        let sent = self
            .send_batch
            .send(self.lan_udp.as_raw_fd(), &answers)
            .unwrap_or(0);
        for (addr, bytes) in &answers[sent..] {
            if let Err(e) = self.lan_udp.send_to(bytes, *addr).await {
                debug!("cannot answer {addr}: {e}");
            }
        }
        for (_, bytes) in answers.drain(..) {
            self.proxy.recycle(bytes);
        }
        self.answers = answers;
    }

    async fn execute(&mut self, actions: impl IntoIterator<Item = Action>) {
        for action in actions {
            match action {
                Action::ToClient {
                    client: Client::Udp(addr),
                    bytes,
                } => {
                    // The listener is IPv4, so every UDP client is.
                    if let SocketAddr::V4(addr) = addr {
                        self.answers.push((addr, bytes));
                    }
                }
                Action::ToClient {
                    client: Client::Tcp { conn, .. },
                    bytes,
                } => {
                    if let Some((_, tx)) = self.tcp_clients.get(&conn) {
                        let _ = tx.try_send(bytes);
                    }
                }
                Action::ToUpstream {
                    attempt,
                    server,
                    transport: Transport::Udp,
                    bytes,
                } => {
                    if let Err(e) = self.send_udp_attempt(attempt, server, &bytes).await {
                        debug!("cannot send to {server}: {e}");
                        self.follow_wan_index(server);
                        let input = Input::UdpFailed { attempt };
                        let actions = self.proxy.handle(std::time::Instant::now(), input);
                        Box::pin(self.execute(actions)).await;
                    }
                }
                Action::ToUpstream {
                    server,
                    transport: Transport::Tcp,
                    bytes,
                    ..
                } => self.send_tcp_upstream(server, bytes),
                Action::CloseAttempt { attempt } => {
                    if let Some(a) = self.attempts.remove(&attempt) {
                        a.waiter.abort();
                    }
                }
            }
        }
    }

    /// A fresh socket per attempt: a kernel-chosen ephemeral port (random on
    /// Linux), connected so that the kernel already drops datagrams from any
    /// other address or port; the core checks again.
    async fn send_udp_attempt(
        &mut self,
        attempt: AttemptId,
        server: SocketAddr,
        bytes: &[u8],
    ) -> io::Result<()> {
        let socket = UdpSocket::bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)).await?;
        socket.connect(server).await?;
        socket.send(bytes).await?;
        let socket = Arc::new(socket);
        let waiter = self.spawn_waiter(attempt, Arc::clone(&socket), true);
        self.attempts.insert(attempt, UdpAttempt { socket, waiter });
        Ok(())
    }

    fn send_tcp_upstream(&mut self, server: SocketAddr, bytes: Vec<u8>) {
        let tx = match self.tcp_upstreams.get(&server) {
            Some((_, tx)) if !tx.is_closed() => tx.clone(),
            _ => {
                self.next_conn += 1;
                let conn = self.next_conn;
                let (tx, rx) = mpsc::channel(TCP_QUEUE);
                tokio::spawn(upstream_connection(server, conn, rx, self.events.clone()));
                self.tcp_upstreams.insert(server, (conn, tx.clone()));
                tx
            }
        };
        // A full queue loses the message; the attempt times out and fails over.
        let _ = tx.try_send(bytes);
    }

    fn is_lan(&self, client: SocketAddr) -> bool {
        matches!(client, SocketAddr::V4(c) if self.lan.contains(*c.ip()))
    }

    fn accept_tcp(&mut self, stream: TcpStream, peer: SocketAddr) {
        if !self.is_lan(peer) {
            self.proxy.record_drop(DropReason::NotFromLan);
            return;
        }
        let from_peer = self.tcp_clients.values().filter(|(ip, _)| *ip == peer.ip());
        if self.tcp_clients.len() >= MAX_TCP_CLIENTS
            || from_peer.count() >= MAX_TCP_CLIENTS_PER_ADDRESS
        {
            self.proxy.record_drop(DropReason::TcpConnectionLimit);
            return;
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        self.tcp_clients.insert(conn, (peer.ip(), tx));
        let timers = (TCP_CLIENT_IDLE, QUERY_DEADLINE);
        let events = self.events.clone();
        tokio::spawn(client_connection(conn, peer, stream, rx, events, timers));
    }
}

/// Reads one length-prefixed message (RFC 1035 §4.2.2); `Ok(None)` at a
/// clean end of stream; `InvalidData` for a message longer than `max`.
async fn read_frame(read: &mut OwnedReadHalf, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match read.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes(len));
    if len > max {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let mut message = vec![0u8; len];
    read.read_exact(&mut message).await?;
    Ok(Some(message))
}

async fn write_frame(write: &mut OwnedWriteHalf, message: &[u8]) -> io::Result<()> {
    let Ok(len) = u16::try_from(message.len()) else {
        return Ok(());
    };
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    write.write_all(&frame).await
}

/// One TCP client: frames in, answers out. The reader ends on EOF, an
/// error, a 0-length frame or `idle` without a whole message; after a clean
/// EOF the writer stays for the answers still owed, at most `linger` (the
/// query deadline), and closes at once when none is (glibc and musl open a
/// connection per query when they fall back to TCP: a slot must not stay
/// taken for seconds after each). A write that takes longer than `idle`
/// (a client that stopped reading) closes the connection too.
async fn client_connection(
    conn: u64,
    peer: SocketAddr,
    stream: TcpStream,
    mut replies: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<Event>,
    (idle, linger_for): (Duration, Duration),
) {
    let (mut read, mut write) = stream.into_split();
    let reader_events = events.clone();
    // One per answer the connection may owe: taken per query read, given
    // back per answer written.
    let room = Arc::new(Semaphore::new(TCP_QUEUE));
    let reader_room = room.clone();
    // Ends with `Some(queries read)` at a clean end of stream (answers still
    // owed are written), `None` when the client misbehaved (closed at once).
    let mut reader = tokio::spawn(async move {
        let mut asked = 0;
        loop {
            // Answers that never come (queries the proxy dropped) must not
            // hold the connection forever: the idle time bounds the wait.
            let permit = timeout(idle, reader_room.acquire()).await;
            let Ok(Ok(permit)) = permit else {
                let _ = reader_events
                    .send(Event::TcpClientDrop(DropReason::TcpIdle))
                    .await;
                return None;
            };
            permit.forget();
            let frame = match timeout(idle, read_frame(&mut read, MAX_TCP_QUERY)).await {
                Err(_) => {
                    let _ = reader_events
                        .send(Event::TcpClientDrop(DropReason::TcpIdle))
                        .await;
                    return None;
                }
                Ok(Ok(Some(frame))) if !frame.is_empty() => frame,
                Ok(Ok(None)) => return Some(asked),
                Ok(Err(e)) if e.kind() != io::ErrorKind::InvalidData => return None,
                // 0 bytes, or more than a query takes.
                Ok(_) => {
                    let _ = reader_events
                        .send(Event::TcpClientDrop(DropReason::BadTcpFrame))
                        .await;
                    return None;
                }
            };
            asked += 1;
            let query = Event::TcpClientQuery {
                conn,
                peer,
                bytes: frame,
            };
            if reader_events.send(query).await.is_err() {
                return None;
            }
        }
    });
    // Answers written; once the reader is done, the queries it read.
    let (mut answered, mut asked) = (0, None);
    let mut linger_until = Instant::now();
    while asked.is_none_or(|asked| answered < asked) {
        tokio::select! {
            reply = replies.recv() => match reply {
                // Empty: a query the proxy dropped, nothing to write.
                Some(reply) if reply.is_empty() => {
                    answered += 1;
                    room.add_permits(1);
                }
                Some(reply) => match timeout(idle, write_frame(&mut write, &reply)).await {
                    Ok(Ok(())) => {
                        answered += 1;
                        room.add_permits(1);
                    }
                    _ => break,
                },
                None => break,
            },
            clean = &mut reader, if asked.is_none() => match clean {
                Ok(Some(n)) => {
                    asked = Some(n);
                    linger_until = Instant::now() + linger_for;
                }
                _ => break,
            },
            () = sleep_until(linger_until), if asked.is_some() => break,
        }
    }
    reader.abort();
    let _ = events.send(Event::TcpClientClosed(conn)).await;
}

/// The reused TCP connection to one upstream: queries from `queries` are
/// written as they come (pipelined), answers read back in any order.
async fn upstream_connection(
    server: SocketAddr,
    conn: u64,
    mut queries: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<Event>,
) {
    let mut unanswered = false;
    match timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(server)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            let (mut read, mut write) = stream.into_split();
            let reader_events = events.clone();
            let replies = Arc::new(AtomicUsize::new(0));
            let replies_read = Arc::clone(&replies);
            let mut reader = tokio::spawn(async move {
                while let Ok(Some(frame)) = read_frame(&mut read, usize::from(u16::MAX)).await {
                    replies_read.fetch_add(1, Ordering::Relaxed);
                    let reply = Event::TcpUpstreamReply(server, frame);
                    if reader_events.send(reply).await.is_err() {
                        break;
                    }
                }
            });
            let mut written = 0usize;
            loop {
                tokio::select! {
                    query = queries.recv() => match query {
                        Some(query) => {
                            // Counted before the write: a query half
                            // written is one the server may never answer.
                            written += 1;
                            if write_frame(&mut write, &query).await.is_err() { break }
                        }
                        None => break,
                    },
                    _ = &mut reader => break,
                    _ = sleep(TCP_UPSTREAM_IDLE) => break,
                }
            }
            reader.abort();
            // Written and not answered: the core must send them again even
            // if another connection to the server is current by now.
            unanswered = written > replies.load(Ordering::Relaxed);
        }
        Ok(Err(e)) => debug!("TCP to {server}: {e}"),
        Err(_) => debug!("TCP to {server}: connect timed out"),
    }
    let unsent = unanswered || !queries.is_empty();
    queries.close();
    let _ = events
        .send(Event::TcpUpstreamDown(server, conn, unsent))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Guards against a hang only: no test here measures time.
    const HANG: Duration = Duration::from_secs(60);
    const LONG: Duration = Duration::from_secs(3600);

    /// A connected pair on loopback, the client bound to `client_ip`: b4d's
    /// side and the client's.
    async fn tcp_pair(client_ip: Ipv4Addr, server: SocketAddr) -> (TcpStream, TcpStream) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(client_ip.into(), 0)).unwrap();
        let listener = TcpListener::bind(server).await.unwrap();
        let client = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        (listener.accept().await.unwrap().0, client)
    }

    /// `client_connection` on b4d's side; the answer queue and the events.
    async fn serve(
        timers: (Duration, Duration),
    ) -> (TcpStream, mpsc::Sender<Vec<u8>>, mpsc::Receiver<Event>) {
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (ours, client) = tcp_pair(Ipv4Addr::LOCALHOST, local).await;
        let _ = socket2::SockRef::from(&ours).set_send_buffer_size(4096);
        let (answers, rx) = mpsc::channel(TCP_QUEUE);
        let (events_tx, events) = mpsc::channel(64);
        let peer = client.local_addr().unwrap();
        tokio::spawn(client_connection(1, peer, ours, rx, events_tx, timers));
        (client, answers, events)
    }

    async fn next_query(events: &mut mpsc::Receiver<Event>) -> Vec<u8> {
        loop {
            if let Some(Event::TcpClientQuery { bytes, .. }) = events.recv().await {
                return bytes;
            }
        }
    }

    async fn until_closed(events: &mut mpsc::Receiver<Event>) {
        while !matches!(events.recv().await, Some(Event::TcpClientClosed(1)) | None) {}
    }

    async fn read_frame_from(client: &mut TcpStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        client.read_exact(&mut len).await.ok()?;
        let mut frame = vec![0; usize::from(u16::from_be_bytes(len))];
        client.read_exact(&mut frame).await.ok()?;
        Some(frame)
    }

    /// A client that hangs up with every answer taken frees its slot at
    /// once, not after the query deadline (here an hour).
    #[tokio::test]
    async fn a_tcp_client_that_hangs_up_with_nothing_owed_is_closed_at_once() {
        timeout(HANG, async {
            let (mut client, answers, mut events) = serve((LONG, LONG)).await;
            client.write_all(b"\x00\x03abc").await.unwrap();
            assert_eq!(next_query(&mut events).await, b"abc");
            answers.send(b"answer".to_vec()).await.unwrap();
            assert_eq!(read_frame_from(&mut client).await.unwrap(), b"answer");
            client.shutdown().await.unwrap();
            until_closed(&mut events).await;
            assert_eq!(read_frame_from(&mut client).await, None);
        })
        .await
        .unwrap();
    }

    /// A client that hangs up before its answer still gets it.
    #[tokio::test]
    async fn an_answer_owed_after_the_client_hung_up_is_written() {
        timeout(HANG, async {
            let (mut client, answers, mut events) = serve((LONG, LONG)).await;
            client.write_all(b"\x00\x03abc").await.unwrap();
            client.shutdown().await.unwrap();
            next_query(&mut events).await;
            answers.send(b"answer".to_vec()).await.unwrap();
            assert_eq!(read_frame_from(&mut client).await.unwrap(), b"answer");
            until_closed(&mut events).await;
        })
        .await
        .unwrap();
    }

    /// A client that stops reading (a zero window) cannot hold its slot:
    /// the write gives up after the idle time.
    #[tokio::test]
    async fn a_tcp_client_that_stops_reading_is_closed() {
        timeout(HANG, async {
            let idle = Duration::from_millis(100);
            let (mut client, answers, mut events) = serve((idle, LONG)).await;
            // Small buffers (no autotuning), so the answers below fill them.
            let _ = socket2::SockRef::from(&client).set_recv_buffer_size(4096);
            client.write_all(b"\x00\x03abc").await.unwrap();
            next_query(&mut events).await;
            for _ in 0..64 {
                if answers.send(vec![0; 60_000]).await.is_err() {
                    break;
                }
            }
            until_closed(&mut events).await;
        })
        .await
        .unwrap();
    }

    /// A client pipelining more queries than the answer queue holds, all
    /// answered at once (cache hits, local names), as the driver answers:
    /// `try_send` in the same turn. Every answer arrives (RFC 7766
    /// §6.2.1.1): the connection reads no further query while the queue
    /// could overflow.
    #[tokio::test]
    async fn pipelined_tcp_queries_beyond_the_queue_all_get_their_answers() {
        timeout(HANG, async {
            let (mut client, answers, mut events) = serve((LONG, LONG)).await;
            let burst: Vec<u8> = (0..3 * TCP_QUEUE as u8).flat_map(|i| [0, 1, i]).collect();
            client.write_all(&burst).await.unwrap();
            // The connection reads what it may before the first answer.
            sleep(Duration::from_millis(100)).await;
            for i in 0..3 * TCP_QUEUE as u8 {
                let query = next_query(&mut events).await;
                assert_eq!(query, [i]);
                answers.try_send(query).expect("room for every answer owed");
            }
            for i in 0..3 * TCP_QUEUE as u8 {
                assert_eq!(read_frame_from(&mut client).await.unwrap(), [i]);
            }
        })
        .await
        .unwrap();
    }

    /// Queries the proxy dropped (told to the connection as empty
    /// messages) give their room back without a frame written: a long-lived
    /// connection keeps being read after any number of them.
    #[tokio::test]
    async fn dropped_tcp_queries_give_their_room_back() {
        timeout(HANG, async {
            let (mut client, answers, mut events) = serve((LONG, LONG)).await;
            for _ in 0..3 * TCP_QUEUE {
                client.write_all(b"\x00\x01x").await.unwrap();
                next_query(&mut events).await;
                answers.try_send(Vec::new()).unwrap();
            }
            client.write_all(b"\x00\x03abc").await.unwrap();
            assert_eq!(next_query(&mut events).await, b"abc");
            answers.send(b"answer".to_vec()).await.unwrap();
            assert_eq!(read_frame_from(&mut client).await.unwrap(), b"answer");
        })
        .await
        .unwrap();
    }

    /// The driver tells a TCP connection of a query the proxy dropped.
    #[tokio::test]
    async fn the_driver_reports_a_dropped_tcp_query_to_its_connection() {
        let (mut driver, _events) = test_driver().await;
        let (tx, mut rx) = mpsc::channel(TCP_QUEUE);
        driver
            .tcp_clients
            .insert(1, (Ipv4Addr::LOCALHOST.into(), tx));
        let client = Client::Tcp {
            conn: 1,
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 4000)),
        };
        let now = std::time::Instant::now();
        driver.client_query(now, client, b"abc").await;
        assert_eq!(rx.try_recv().unwrap(), Vec::<u8>::new());
        // Answered (SERVFAIL: no upstreams): the answer, nothing else.
        let query =
            b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x07example\x00\x00\x01\x00\x01";
        driver.client_query(now, client, query).await;
        assert!(!rx.try_recv().unwrap().is_empty());
        assert!(rx.try_recv().is_err());
    }

    /// A frame longer than any query is refused before it is read.
    #[tokio::test]
    async fn a_tcp_client_frame_over_4_kib_is_refused() {
        timeout(HANG, async {
            let (mut client, _answers, mut events) = serve((LONG, LONG)).await;
            client.write_all(b"\x00\x03abc").await.unwrap();
            assert_eq!(next_query(&mut events).await, b"abc");
            let len = (MAX_TCP_QUERY as u16 + 1).to_be_bytes();
            client.write_all(&len).await.unwrap();
            assert!(matches!(
                events.recv().await,
                Some(Event::TcpClientDrop(DropReason::BadTcpFrame))
            ));
            until_closed(&mut events).await;
        })
        .await
        .unwrap();
    }

    /// A driver for loopback clients, and its event queue.
    async fn test_driver() -> (Driver, mpsc::Receiver<Event>) {
        let (events, events_rx) = mpsc::channel(1024);
        let driver = Driver {
            proxy: Proxy::new(0, 1, std::time::Instant::now()),
            lan_udp: UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap(),
            events,
            attempts: HashMap::new(),
            tcp_upstreams: HashMap::new(),
            tcp_clients: HashMap::new(),
            next_conn: 0,
            answers: Vec::new(),
            send_batch: mmsg::SendBatch::default(),
            actions: Vec::new(),
            lan: Ipv4Subnet::new(Ipv4Addr::new(127, 0, 0, 1), 8).unwrap(),
            problem: None,
            pending_lan: None,
            upstream_ips: Vec::new(),
            wan_device: "wan".into(),
            wan_index: 0,
        };
        (driver, events_rx)
    }

    /// A query queued on an upstream connection as it ends is sent again
    /// on the connection that replaced it, instead of being lost until its
    /// timeout.
    #[tokio::test]
    async fn a_query_queued_on_an_ended_upstream_connection_is_sent_again() {
        let closed = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .unwrap();
        sent_again_after_the_connection_ends(closed).await;
    }

    /// The same for a query written on it that the server closed the
    /// connection on without answering.
    #[tokio::test]
    async fn a_query_written_on_an_upstream_connection_that_ends_unanswered_is_sent_again() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let server = listener.local_addr().unwrap();
        let closer = std::thread::spawn(move || {
            use std::io::Read;
            let (mut stream, _) = listener.accept().unwrap();
            let mut length = [0u8; 2];
            stream.read_exact(&mut length).unwrap();
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut query).unwrap();
        });
        sent_again_after_the_connection_ends(server).await;
        closer.join().unwrap();
    }

    /// A query for `server` goes to a connection (number 1) that ends,
    /// while connection 2 is current: it must be sent again on 2.
    async fn sent_again_after_the_connection_ends(closed: SocketAddr) {
        let (mut driver, _events) = test_driver().await;
        driver.proxy.set_upstreams(&[closed]);
        // A? a.example (a plain name would be answered locally).
        let query =
            b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x07example\x00\x00\x01\x00\x01";
        let client = Client::Tcp {
            conn: 9,
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
        };
        let now = std::time::Instant::now();
        let sent = driver.proxy.handle(
            now,
            Input::ClientQuery {
                client,
                bytes: query,
            },
        );
        let Some(Action::ToUpstream {
            bytes: forwarded, ..
        }) = sent.first()
        else {
            panic!("not forwarded: {sent:?}");
        };
        // The connection it went to ends with it still queued, while a
        // newer one is in use.
        let (queue, queued) = mpsc::channel(4);
        queue.send(forwarded.clone()).await.unwrap();
        let (events, mut events_rx) = mpsc::channel(4);
        timeout(HANG, upstream_connection(closed, 1, queued, events))
            .await
            .unwrap();
        let Some(down @ Event::TcpUpstreamDown(_, 1, true)) = events_rx.recv().await else {
            panic!("no TcpUpstreamDown with queries left unanswered");
        };
        let (current, mut on_current) = mpsc::channel(4);
        driver.tcp_upstreams.insert(closed, (2, current));
        driver.event(down, &mut []).await;
        assert_eq!(&on_current.try_recv().unwrap(), forwarded);
    }

    /// One address gets MAX_TCP_CLIENTS_PER_ADDRESS connections; the next
    /// is refused and counted, another address is still served.
    #[tokio::test]
    async fn one_address_cannot_take_every_tcp_slot() {
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (mut driver, _events) = test_driver().await;
        let mut clients = Vec::new();
        for ip in [[127, 0, 0, 1]; MAX_TCP_CLIENTS_PER_ADDRESS + 1]
            .into_iter()
            .chain([[127, 0, 0, 2]])
        {
            let (ours, client) = tcp_pair(ip.into(), local).await;
            driver.accept_tcp(ours, client.local_addr().unwrap());
            clients.push(client);
        }
        assert_eq!(driver.tcp_clients.len(), MAX_TCP_CLIENTS_PER_ADDRESS + 1);
        assert_eq!(driver.proxy.status().drops.tcp_connection_limit, 1);
    }
}
