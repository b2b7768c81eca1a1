//! The DNS proxy core (RFC 5625): sans-I/O. The driver feeds it client
//! queries, upstream replies and timeouts with the current time; it answers
//! from local names or the cache, or forwards the client's bytes with a
//! fresh random ID, and says what to send where.
//!
//! Spoofing resilience (RFC 5452 §9.1): every upstream attempt has its own
//! random 16-bit ID and (in the driver) its own socket on a kernel-chosen
//! random port; a reply is accepted only from the server's address and
//! port, with that ID and the same question (§9.1 items 1–4); anything else
//! is counted and dropped, and the attempt keeps waiting.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use log::{debug, info};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::cache::{Cache, CacheKey, KeyRef, MAX_CACHED_MESSAGE};
use super::local::{LocalAnswer, LocalHosts, LocalNames};
use super::upstream::Upstreams;
use super::wire::{self, Edns, Header, Question};
use super::{DropReason, ProxyStatus, UpstreamStatus};

/// A client gets SERVFAIL at the latest this long after asking, before a
/// typical stub (5 s, RFC 1536 era default) gives up.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(3);
/// Upstream attempts per client query (over all servers, retries included).
pub const MAX_ATTEMPTS: usize = 6;
/// Queries waiting for upstreams, all clients together: bounds memory and,
/// with [`MAX_LIVE_ATTEMPTS`], the sockets open (800 stays below the usual
/// 1024-descriptor limit). dnsmasq's default is 150.
pub const MAX_IN_FLIGHT: usize = 400;
/// Upstream attempts of one query kept listening at once: a late answer to
/// the previous attempt still counts, older ones are closed.
pub const MAX_LIVE_ATTEMPTS: usize = 2;
/// Queries waiting for upstreams from one client address: a flood from one
/// host cannot take all the slots.
pub const MAX_IN_FLIGHT_PER_CLIENT: u32 = 128;
/// Sent answers kept for reuse ([`Proxy::recycle`]): more than the driver
/// sends at once (a received batch of 32), so a run of cache hits allocates
/// nothing; only buffers up to SPARE_CAPACITY bytes, so they hold at most
/// 32 KiB, memory that a burst of hits had allocated anyway.
const SPARE_BUFFERS: usize = 64;
const SPARE_CAPACITY: usize = 512;

pub type AttemptId = u64;

/// Who asked, and how to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    Udp(SocketAddr),
    /// `conn` names the driver's connection.
    Tcp {
        conn: u64,
        peer: SocketAddr,
    },
}

impl Client {
    fn ip(&self) -> IpAddr {
        match self {
            Client::Udp(a) | Client::Tcp { peer: a, .. } => a.ip(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug)]
pub enum Input<'a> {
    ClientQuery {
        client: Client,
        bytes: &'a [u8],
    },
    /// A datagram on the socket of `attempt`.
    UdpReply {
        attempt: AttemptId,
        from: SocketAddr,
        bytes: &'a [u8],
    },
    /// A message on the TCP connection to `server`.
    TcpReply {
        server: SocketAddr,
        bytes: &'a [u8],
    },
    /// The attempt's datagram could not be sent, or the kernel reported the
    /// server unreachable on its socket (ICMP on a connected socket).
    UdpFailed {
        attempt: AttemptId,
    },
    /// The TCP connection to `server` failed or closed.
    TcpDown {
        server: SocketAddr,
    },
    /// `poll_timeout()` has passed.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    ToClient {
        client: Client,
        bytes: Vec<u8>,
    },
    /// Open a socket for `attempt` (UDP) or use the connection to `server`
    /// (TCP, framed per RFC 1035 §4.2.2) and send `bytes`.
    ToUpstream {
        attempt: AttemptId,
        server: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
    },
    /// The UDP socket of `attempt` is no longer needed.
    CloseAttempt {
        attempt: AttemptId,
    },
}

struct Query {
    client: Client,
    client_id: u16,
    message: Vec<u8>,
    question: Question,
    question_end: usize,
    edns: Option<Edns>,
    /// `None` for opcodes other than QUERY: never cached.
    key: Option<CacheKey>,
    transport: Transport,
    candidates: Vec<SocketAddr>,
    tried: usize,
    attempts: Vec<AttemptId>,
    deadline: Instant,
    next_try: Instant,
    /// The last SERVFAIL/REFUSED from an upstream, forwarded if all fail.
    last_failure: Option<Vec<u8>>,
}

struct Attempt {
    query: u64,
    server: SocketAddr,
    id: u16,
    sent: Instant,
    transport: Transport,
    /// Sent again on a new TCP connection after the first one closed.
    resent: bool,
}

/// What [`Proxy::answer_locally`] did.
enum Served {
    /// Answered, or dropped.
    Yes,
    /// To be forwarded.
    No {
        question: Question,
        question_end: usize,
        edns: Option<Edns>,
        /// `None` for opcodes other than QUERY: never cached.
        key: Option<CacheKey>,
        /// Where the query's COOKIE options are removed before forwarding.
        opt_rdlen_at: Option<usize>,
    },
}

pub struct Proxy {
    rng: StdRng,
    cache: Cache,
    upstreams: Upstreams,
    local: LocalNames,
    queries: HashMap<u64, Query>,
    attempts: HashMap<AttemptId, Attempt>,
    tcp_attempts: HashMap<(SocketAddr, u16), AttemptId>,
    /// Queries in flight by client, ID and question: retransmissions are not forwarded twice.
    by_client: HashMap<(Client, u16, Question), u64>,
    per_client: HashMap<IpAddr, u32>,
    /// One entry per query waiting for an answer: its next-try deadline.
    timers: BTreeSet<(Instant, u64)>,
    next_handle: u64,
    status: ProxyStatus,
    /// Buffers of sent answers, for the next cache hits.
    spare: Vec<Vec<u8>>,
    /// The question name and cache key of the query being handled.
    key_buf: Vec<u8>,
}

impl Proxy {
    pub fn new(cache_size: usize, seed: u64, now: Instant) -> Proxy {
        Proxy {
            rng: StdRng::seed_from_u64(seed),
            cache: Cache::new(cache_size, now),
            upstreams: Upstreams::default(),
            local: LocalNames::default(),
            queries: HashMap::new(),
            attempts: HashMap::new(),
            tcp_attempts: HashMap::new(),
            by_client: HashMap::new(),
            per_client: HashMap::new(),
            timers: BTreeSet::new(),
            next_handle: 0,
            status: ProxyStatus::default(),
            spare: Vec::new(),
            key_buf: Vec::with_capacity(wire::MAX_NAME_LEN + 8),
        }
    }

    /// How many times an upstream that had stopped answering answered again.
    pub fn upstream_recoveries(&self) -> u64 {
        self.upstreams.recoveries()
    }

    pub fn set_upstreams(&mut self, servers: &[SocketAddr]) {
        self.upstreams.set(servers);
    }

    pub fn set_local_hosts(&mut self, hosts: &LocalHosts) {
        self.local = LocalNames::new(hosts);
    }

    /// When `handle(now, Input::Timeout)` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Counters and upstream estimates.
    /// How many packets were dropped so far (see [`Drops`]).
    pub fn dropped(&self) -> u64 {
        self.status.drops.total()
    }

    pub fn status(&self) -> ProxyStatus {
        let mut status = self.status.clone();
        status.cache_entries = self.cache.len();
        status.cache_bytes = self.cache.bytes();
        status.in_flight = self.queries.len();
        status.upstreams = self
            .upstreams
            .list()
            .iter()
            .map(|u| UpstreamStatus {
                addr: u.addr,
                srtt_ms: u.measured.then_some(u.srtt.as_secs_f64() * 1000.0),
                queries: u.queries,
                answers: u.answers,
                failures: u.failures,
            })
            .collect();
        status
    }

    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_into(now, input, &mut out);
        out
    }

    /// [`Proxy::handle`], appending to `out`: the driver reuses one vector
    /// for every client query.
    pub fn handle_into(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) {
        match input {
            Input::ClientQuery { client, bytes } => self.on_query(now, client, bytes, out),
            Input::UdpReply {
                attempt,
                from,
                bytes,
            } => self.on_udp_reply(now, attempt, from, bytes, out),
            Input::TcpReply { server, bytes } => self.on_tcp_reply(now, server, bytes, out),
            Input::UdpFailed { attempt } => self.attempt_failed(now, attempt, true, out),
            Input::TcpDown { server } => self.on_tcp_down(now, server, out),
            Input::Timeout => self.on_timeout(now, out),
        }
    }

    /// Takes back the bytes of an answer the driver has sent: the next
    /// cache hit writes into them instead of allocating. At most
    /// [`SPARE_BUFFERS`] small ones are kept.
    pub fn recycle(&mut self, mut answer: Vec<u8>) {
        let capacity = answer.capacity();
        if self.spare.len() < SPARE_BUFFERS && capacity > 0 && capacity <= SPARE_CAPACITY {
            answer.clear();
            self.spare.push(answer);
        }
    }

    /// Counts a dropped packet (also for the driver's own drops).
    pub fn record_drop(&mut self, reason: DropReason) {
        if self.status.drops.count(reason) == 1 {
            info!("dropped a packet: {reason} (further ones are only counted)");
        } else {
            debug!("dropped a packet: {reason}");
        }
    }

    fn on_query(&mut self, now: Instant, client: Client, bytes: &[u8], out: &mut Vec<Action>) {
        match client {
            Client::Udp(_) => self.status.queries_udp += 1,
            Client::Tcp { .. } => self.status.queries_tcp += 1,
        }
        let Ok(header) = Header::read(bytes) else {
            return self.record_drop(DropReason::MalformedQuery);
        };
        if header.is_response() {
            return self.record_drop(DropReason::NotAQuery);
        }
        // The name goes into a reused buffer and the cache key is built
        // after it in place: a hit allocates nothing.
        let mut key_buf = std::mem::take(&mut self.key_buf);
        let served = self.answer_locally(now, client, &header, bytes, &mut key_buf, out);
        self.key_buf = key_buf;
        let Served::No {
            question,
            question_end,
            edns,
            key,
            opt_rdlen_at,
        } = served
        else {
            return;
        };
        if self
            .by_client
            .contains_key(&(client, header.id, question.clone()))
        {
            return self.record_drop(DropReason::Duplicate);
        }
        if self.queries.len() >= MAX_IN_FLIGHT {
            return self.record_drop(DropReason::TooManyInFlight);
        }
        let in_flight_from_client = self.per_client.get(&client.ip()).copied().unwrap_or(0);
        if in_flight_from_client >= MAX_IN_FLIGHT_PER_CLIENT {
            return self.record_drop(DropReason::ClientFlood);
        }
        if self.upstreams.is_empty() {
            self.status.servfail_sent += 1;
            self.status.no_upstream += 1;
            let response = wire::error_response(bytes, question_end, wire::RCODE_SERVFAIL, edns);
            out.push(Action::ToClient {
                client,
                bytes: response,
            });
            return;
        }
        *self.per_client.entry(client.ip()).or_default() += 1;
        let mut message = bytes.to_vec();
        // DNS cookies are per hop (RFC 7873 §1: between a client and the
        // server it talks to; the server cookie is bound to b4d's WAN
        // address), not end-to-end, so a proxy that passes through what it
        // can (RFC 5625 §4) still does not forward them. Forwarded, the
        // upstream's reply would carry this client's cookie, the cache would
        // serve it to others, and c-ares (>= 1.33) drops a reply whose
        // client cookie is not its own, or without one from a server that
        // sent cookies before. Without it no upstream answer has a cookie
        // (RFC 7873 §5.2.1) and every answer, cached or b4d's own, is alike.
        if let Some(at) = opt_rdlen_at {
            wire::remove_cookies(&mut message, at);
        }
        let handle = self.next_handle();
        self.by_client
            .insert((client, header.id, question.clone()), handle);
        self.queries.insert(
            handle,
            Query {
                client,
                client_id: header.id,
                message,
                question,
                question_end,
                edns,
                key,
                transport: match client {
                    Client::Udp(_) => Transport::Udp,
                    Client::Tcp { .. } => Transport::Tcp,
                },
                candidates: self.upstreams.by_speed(),
                tried: 0,
                attempts: Vec::new(),
                deadline: now + QUERY_DEADLINE,
                next_try: now,
                last_failure: None,
            },
        );
        self.start_attempt(now, handle, out);
    }

    /// Answers `bytes` from the local names or the cache if it can; else
    /// hands back what forwarding it needs.
    fn answer_locally(
        &mut self,
        now: Instant,
        client: Client,
        header: &Header,
        bytes: &[u8],
        key_buf: &mut Vec<u8>,
        out: &mut Vec<Action>,
    ) -> Served {
        let (Ok((question, question_end)), Ok(layout)) =
            (wire::read_question_into(bytes, key_buf), wire::scan(bytes))
        else {
            self.record_drop(DropReason::MalformedQuery);
            return Served::Yes;
        };
        let (edns, opt_rdlen_at) = (layout.edns, layout.opt_rdlen_at);
        if header.opcode() != 0 {
            return Served::No {
                question: question.to_owned(),
                question_end,
                edns,
                key: None,
                opt_rdlen_at,
            };
        }
        if let Some(answer) = self.local.lookup(question) {
            self.status.local_answers += 1;
            let response = local_response(bytes, question_end, answer, edns);
            out.push(Action::ToClient {
                client,
                bytes: response,
            });
            return Served::Yes;
        }
        let max_size = match client {
            Client::Udp(_) => wire::max_udp_response(edns),
            Client::Tcp { .. } => usize::from(u16::MAX),
        };
        let (qtype, qclass) = (question.qtype, question.qclass);
        let key = KeyRef::append(key_buf, qtype, qclass, header, edns);
        let mut cached = self.spare.pop().unwrap_or_default();
        if self.cache.get(key, now, header.id, &mut cached) && cached.len() <= max_size {
            // The question as this client wrote it, not as the first asker
            // did: a forwarder that randomises the case of its names (the
            // "0x20" spoofing defence) drops an answer that differs. The
            // cached question is written out in full, as is the query's
            // when it has the key's length.
            let name_end = question_end - 4;
            if name_end - wire::HEADER_LEN == key.name().len() {
                if let Some(name) = cached.get_mut(wire::HEADER_LEN..name_end) {
                    name.copy_from_slice(&bytes[wire::HEADER_LEN..name_end]);
                }
            }
            self.status.cache_hits += 1;
            out.push(Action::ToClient {
                client,
                bytes: cached,
            });
            return Served::Yes;
        }
        self.recycle(cached);
        self.status.cache_misses += 1;
        let question = Question {
            name: key.name().to_vec(),
            qtype,
            qclass,
        };
        Served::No {
            question,
            question_end,
            edns,
            key: Some(key.to_owned()),
            opt_rdlen_at,
        }
    }

    fn next_handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle
    }

    /// Sends the query to the next candidate, or ends it with SERVFAIL when
    /// the attempts or the time are used up.
    fn start_attempt(&mut self, now: Instant, handle: u64, out: &mut Vec<Action>) {
        let Some(query) = self.queries.get(&handle) else {
            return;
        };
        if query.tried >= MAX_ATTEMPTS || now >= query.deadline || query.candidates.is_empty() {
            return self.fail(handle, out);
        }
        let server = query.candidates[query.tried % query.candidates.len()];
        let transport = query.transport;
        let id = loop {
            let id: u16 = self.rng.random();
            if transport == Transport::Udp || !self.tcp_attempts.contains_key(&(server, id)) {
                break id;
            }
        };
        if let Some(&oldest) = query.attempts.first() {
            if query.attempts.len() >= MAX_LIVE_ATTEMPTS {
                self.forget_attempt(oldest, out);
            }
        }
        let attempt = self.next_handle();
        let timeout = self.upstreams.attempt_timeout(server);
        self.upstreams.sent(server);
        self.status.upstream_queries += 1;
        let Some(query) = self.queries.get_mut(&handle) else {
            return;
        };
        query.tried += 1;
        query.attempts.push(attempt);
        self.timers.remove(&(query.next_try, handle));
        query.next_try = (now + timeout).min(query.deadline);
        self.timers.insert((query.next_try, handle));
        let mut bytes = query.message.clone();
        wire::set_id(&mut bytes, id);
        self.attempts.insert(
            attempt,
            Attempt {
                query: handle,
                server,
                id,
                sent: now,
                transport,
                resent: false,
            },
        );
        if transport == Transport::Tcp {
            self.tcp_attempts.insert((server, id), attempt);
        }
        out.push(Action::ToUpstream {
            attempt,
            server,
            transport,
            bytes,
        });
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some(&(at, handle)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(query) = self.queries.get(&handle) else {
                continue;
            };
            if let Some(last) = query.attempts.last().and_then(|a| self.attempts.get(a)) {
                let server = last.server;
                self.upstreams.failed(server, true);
                self.status.upstream_timeouts += 1;
                debug!("no answer from {server} in time");
            }
            self.start_attempt(now, handle, out);
        }
    }

    fn on_udp_reply(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        from: SocketAddr,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Some(a) = self.attempts.get(&attempt) else {
            return self.record_drop(DropReason::Unsolicited);
        };
        if from != a.server {
            return self.record_drop(DropReason::WrongSource);
        }
        let Ok(header) = Header::read(bytes) else {
            return self.record_drop(DropReason::MalformedReply);
        };
        if header.id != a.id {
            return self.record_drop(DropReason::WrongId);
        }
        self.on_reply(now, attempt, header, bytes, out);
    }

    fn on_tcp_reply(
        &mut self,
        now: Instant,
        server: SocketAddr,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Ok(header) = Header::read(bytes) else {
            return self.record_drop(DropReason::MalformedReply);
        };
        let Some(&attempt) = self.tcp_attempts.get(&(server, header.id)) else {
            return self.record_drop(DropReason::Unsolicited);
        };
        self.on_reply(now, attempt, header, bytes, out);
    }

    /// A reply with the right source and ID: check the rest, then answer or fail over.
    fn on_reply(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        header: Header,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) {
        if !header.is_response() {
            return self.record_drop(DropReason::MalformedReply);
        }
        let Some(a) = self.attempts.get(&attempt) else {
            return;
        };
        let (handle, server, sent) = (a.query, a.server, a.sent);
        let Some(query) = self.queries.get(&handle) else {
            return;
        };
        match wire::read_question(bytes) {
            // Only with the name written out in full, as it was asked: the
            // cache takes the name from the message's bytes. A pointer
            // stands for a suffix of 1 or at least 3 bytes, so one always
            // changes the length.
            Ok((question, end)) if question == query.question => {
                if end != wire::HEADER_LEN + question.name.len() + 4 {
                    return self.record_drop(DropReason::MalformedReply);
                }
            }
            Ok(_) => return self.record_drop(DropReason::WrongQuestion),
            Err(_) => return self.record_drop(DropReason::MalformedReply),
        }
        if matches!(header.rcode(), wire::RCODE_SERVFAIL | wire::RCODE_REFUSED) {
            // Fail over at once (RFC 5625 §4 wants the proxy to behave like a
            // resolver; a stub would try the next server).
            if let Some(query) = self.queries.get_mut(&handle) {
                query.last_failure = Some(bytes.to_vec());
            }
            return self.attempt_failed(now, attempt, false, out);
        }
        self.upstreams
            .answered(server, now.saturating_duration_since(sent));
        // A message we cannot walk is still forwarded (RFC 5625 §4: be
        // transparent), just not cached.
        let layout = wire::scan(bytes).ok();
        if let (Some(key), Some(layout)) = (&query.key, &layout) {
            if bytes.len() <= MAX_CACHED_MESSAGE {
                self.cache.insert(key.as_ref(), bytes, layout, now);
            }
        }
        self.status.upstream_answers += 1;
        let mut response = bytes.to_vec();
        wire::set_id(&mut response, query.client_id);
        self.finish(handle, response, out);
    }

    /// The TCP connection to `server` is gone: a client SHOULD retry the
    /// queries it had not answered (RFC 7766 §6.2.1; servers close idle or
    /// busy connections), so each is sent once more (the driver opens a new
    /// connection), and fails over if that connection goes too. One lost
    /// connection is one failure of the server, however many queries it
    /// carried.
    fn on_tcp_down(&mut self, now: Instant, server: SocketAddr, out: &mut Vec<Action>) {
        let lost: Vec<AttemptId> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.transport == Transport::Tcp && a.server == server)
            .map(|(id, _)| *id)
            .collect();
        if lost.is_empty() {
            return;
        }
        self.upstreams.failed(server, true);
        self.status.upstream_failures += 1;
        for attempt in lost {
            let Some(a) = self.attempts.get_mut(&attempt) else {
                continue;
            };
            let message = self.queries.get(&a.query).map(|q| &q.message);
            match message {
                Some(message) if !a.resent => {
                    a.resent = true;
                    a.sent = now;
                    let mut bytes = message.clone();
                    wire::set_id(&mut bytes, a.id);
                    out.push(Action::ToUpstream {
                        attempt,
                        server,
                        transport: Transport::Tcp,
                        bytes,
                    });
                }
                _ => self.fail_over(now, attempt, out),
            }
        }
    }

    /// An attempt that has failed (SERVFAIL or REFUSED, or, `unreachable`,
    /// no way to get an answer): the next server now instead of at the
    /// timeout, or SERVFAIL when every server has failed and no other
    /// attempt is still waiting (a slower server may yet answer).
    fn attempt_failed(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        unreachable: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(server) = self.attempts.get(&attempt).map(|a| a.server) else {
            return;
        };
        if unreachable {
            debug!("upstream {server} unreachable");
        }
        // An unreachable server counts as a timeout; an answered SERVFAIL
        // or REFUSED does not (see Upstreams).
        self.upstreams.failed(server, unreachable);
        self.status.upstream_failures += 1;
        self.fail_over(now, attempt, out);
    }

    /// [`Proxy::attempt_failed`] with the failure already counted.
    fn fail_over(&mut self, now: Instant, attempt: AttemptId, out: &mut Vec<Action>) {
        let Some(handle) = self.attempts.get(&attempt).map(|a| a.query) else {
            return;
        };
        self.forget_attempt(attempt, out);
        let Some(query) = self.queries.get(&handle) else {
            return;
        };
        if query.tried < query.candidates.len() {
            self.start_attempt(now, handle, out);
        } else if query.attempts.is_empty() {
            self.fail(handle, out);
        }
    }

    fn forget_attempt(&mut self, attempt: AttemptId, out: &mut Vec<Action>) {
        let Some(a) = self.attempts.remove(&attempt) else {
            return;
        };
        match a.transport {
            Transport::Udp => out.push(Action::CloseAttempt { attempt }),
            Transport::Tcp => {
                self.tcp_attempts.remove(&(a.server, a.id));
            }
        }
        if let Some(query) = self.queries.get_mut(&a.query) {
            query.attempts.retain(|x| *x != attempt);
        }
    }

    /// SERVFAIL to the client: the last upstream's own SERVFAIL/REFUSED if
    /// there was one, else b4d's.
    fn fail(&mut self, handle: u64, out: &mut Vec<Action>) {
        let Some(query) = self.queries.get_mut(&handle) else {
            return;
        };
        self.status.servfail_sent += 1;
        let response = match query.last_failure.take() {
            Some(mut reply) => {
                wire::set_id(&mut reply, query.client_id);
                reply
            }
            None => wire::error_response(
                &query.message,
                query.question_end,
                wire::RCODE_SERVFAIL,
                query.edns,
            ),
        };
        self.finish(handle, response, out);
    }

    fn finish(&mut self, handle: u64, response: Vec<u8>, out: &mut Vec<Action>) {
        let Some(query) = self.queries.remove(&handle) else {
            return;
        };
        self.timers.remove(&(query.next_try, handle));
        for attempt in &query.attempts {
            if let Some(a) = self.attempts.remove(attempt) {
                match a.transport {
                    Transport::Udp => out.push(Action::CloseAttempt { attempt: *attempt }),
                    Transport::Tcp => {
                        self.tcp_attempts.remove(&(a.server, a.id));
                    }
                }
            }
        }
        self.by_client
            .remove(&(query.client, query.client_id, query.question.clone()));
        if let Some(n) = self.per_client.get_mut(&query.client.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&query.client.ip());
            }
        }
        let response = match query.client {
            // The upstream saw the client's own EDNS size, so this only
            // happens with a server that ignores it: TC tells the client to
            // use TCP (RFC 6891 §7).
            Client::Udp(_) if response.len() > wire::max_udp_response(query.edns) => {
                self.status.truncated_sent += 1;
                wire::truncated_response(&query.message, query.question_end, query.edns)
            }
            _ => response,
        };
        out.push(Action::ToClient {
            client: query.client,
            bytes: response,
        });
    }
}

fn local_response(
    query: &[u8],
    question_end: usize,
    answer: LocalAnswer,
    edns: Option<Edns>,
) -> Vec<u8> {
    let (rcode, answers) = match answer {
        LocalAnswer::Address(IpAddr::V4(addr)) => (
            wire::RCODE_NOERROR,
            vec![(wire::TYPE_A, addr.octets().to_vec())],
        ),
        LocalAnswer::Address(IpAddr::V6(addr)) => (
            wire::RCODE_NOERROR,
            vec![(wire::TYPE_AAAA, addr.octets().to_vec())],
        ),
        LocalAnswer::Name(name) => (wire::RCODE_NOERROR, vec![(wire::TYPE_PTR, name)]),
        LocalAnswer::NoData => (wire::RCODE_NOERROR, Vec::new()),
        LocalAnswer::NxDomain => (wire::RCODE_NXDOMAIN, Vec::new()),
    };
    wire::local_response(query, question_end, rcode, &answers, edns)
}
