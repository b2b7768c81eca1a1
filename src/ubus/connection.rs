//! The sans-I/O ubus client connection that serves objects.
//!
//! The driver tells it what happened ([`Connection::handle_connected`],
//! [`Connection::handle_bytes`], [`Connection::handle_closed`], ...) and the time;
//! it answers through [`Connection::poll_action`] ("connect now", "send these
//! bytes", "object registered as id X", "call arrived") and
//! [`Connection::poll_timeout`]. It never touches a socket or a clock, so every
//! exchange and every timer is tested with fabricated bytes and a fake clock.
//!
//! The protocol is the one in the ubus traces' README (recorded from ubusd at
//! openwrt/ubus 3cc98db): ubusd greets with HELLO (peer = our client id); each
//! object is added with ADD_OBJECT {OBJPATH, SIGNATURE} and answered with DATA
//! {OBJID, OBJTYPE} + STATUS 0; a call arrives as INVOKE {OBJID, METHOD, USER,
//! GROUP, DATA} with the caller's seq and client id, and is answered with zero or
//! one DATA {OBJID, DATA} and one STATUS {STATUS, OBJID} carrying the same seq and
//! peer. Events are INVOKE "send" to ubusd's built-in object 1. b4d also calls
//! other objects (netifd's `network.interface`), the way the ubus CLI does in
//! trace 02: LOOKUP {OBJPATH} answered by DATA {OBJPATH, OBJID, OBJTYPE,
//! SIGNATURE} + STATUS, then INVOKE {OBJID, METHOD, DATA} to peer = the object
//! id, answered by zero or one DATA and one STATUS with that seq. When ubusd goes
//! away every id is void: reconnect with backoff, and register again from scratch.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::wire::{
    frame_len, Attr, BlobType, Message, MsgType, Status, Table, Value, WireError, MAX_MSG_LEN,
};

/// ubusd's built-in event object (`UBUS_SYSTEM_OBJECT_EVENT`).
pub const EVENT_OBJECT: u32 = 1;

/// First reconnect delay. ucode's b4 test server retried every 250 ms; a real
/// ubusd restart (procd respawn) takes about that long.
pub const RECONNECT_MIN: Duration = Duration::from_millis(250);
/// Longest reconnect delay: on a system without ubusd this is how often b4d
/// looks for it.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// How long ubusd may take for HELLO and for answering ADD_OBJECT before the
/// connection is given up and retried (it answers in microseconds when alive).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the daemon may take to answer a call before the caller gets
/// STATUS 7 (the ubus CLI itself waits 30 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Calls waiting for the daemon at once; more are refused with STATUS 11 so a
/// flood of calls cannot grow memory.
pub const MAX_PENDING_CALLS: usize = 32;
/// Outgoing bytes kept while the driver has not written them (a stalled ubusd).
pub const MAX_QUEUED_ACTIONS: usize = 256;

/// A method and its declared arguments (`struct ubus_method` with its policy).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSpec {
    pub name: String,
    /// Declared arguments and their types; shown by `ubus -v list`, and checked
    /// on every call (a declared argument of another type is STATUS 2). Arguments
    /// not declared are passed on untouched: uhttpd adds `ubus_rpc_session` to
    /// every call that comes through rpcd.
    pub args: Vec<(String, BlobType)>,
}

impl MethodSpec {
    pub fn new(name: &str, args: &[(&str, BlobType)]) -> MethodSpec {
        MethodSpec {
            name: name.to_string(),
            args: args.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
        }
    }
}

/// An object to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    pub name: String,
    pub methods: Vec<MethodSpec>,
}

impl ObjectSpec {
    /// SIGNATURE: a table of method tables whose members are INT32 type ids.
    pub fn signature(&self) -> Table {
        let mut sig = Table::new();
        for m in &self.methods {
            let mut args = Table::new();
            for (name, kind) in &m.args {
                args.push(name, Value::Int32(*kind as i32));
            }
            sig.push(&m.name, args);
        }
        sig
    }
}

/// Identifies one call across the driver and the daemon's handler. Includes the
/// connection generation, so a reply that comes after ubusd restarted is
/// recognised as stale and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId {
    generation: u64,
    seq: u16,
    peer: u32,
    object: u32,
}

/// A method call for the daemon to answer with [`Connection::reply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub id: CallId,
    /// Index into the objects given to [`Connection::new`].
    pub object: usize,
    pub method: String,
    pub args: Table,
    /// Caller's ubus client id.
    pub peer: u32,
    /// The caller's user and group names (ubusd takes them from SO_PEERCRED).
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Identifies a call b4d makes to another object ([`Connection::call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutgoingId(u64);

/// How a call to another object ended: the DATA it answered (if any) with
/// STATUS 0, or the failing status (4 when no such object exists, 10 when ubusd
/// is not connected or went away meanwhile, 7 after [`CALL_TIMEOUT`]).
pub type CallResult = Result<Option<Table>, Status>;

/// What the daemon answers to a call: optional data, then a status. Both at once
/// is legal (trace 03e: DATA then STATUS 7, the CLI prints the data and fails).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub data: Option<Table>,
    pub status: Status,
}

impl Reply {
    pub fn ok(data: Table) -> Reply {
        Reply {
            data: Some(data),
            status: Status::Ok,
        }
    }

    pub fn error(status: Status) -> Reply {
        Reply { data: None, status }
    }
}

impl From<Result<Table, Status>> for Reply {
    fn from(r: Result<Table, Status>) -> Reply {
        match r {
            Ok(t) => Reply::ok(t),
            Err(s) => Reply::error(s),
        }
    }
}

/// What the driver must do (or may log).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open the socket and report with `handle_connected` / `handle_connect_failed`.
    Connect,
    /// Write these bytes (one or more whole messages).
    Send(Vec<u8>),
    /// Close the socket, then report `handle_closed` (which schedules the
    /// reconnect unless the core already did).
    Disconnect(Disconnect),
    /// An object is published (after every (re)connect).
    Registered {
        object: usize,
        id: u32,
        type_id: u32,
    },
    /// ubusd refused an object (another client owns the name, or the ACL denies
    /// publishing); the whole connection is retried with backoff.
    RegistrationFailed { object: usize, status: Status },
    /// A call for the daemon.
    Call(Call),
    /// A call b4d made to another object ended.
    Answered { id: OutgoingId, result: CallResult },
}

/// Why the core gave up a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// A length field that can never be valid: the stream cannot be resynchronised.
    Framing(WireError),
    /// No HELLO or no answer to ADD_OBJECT within [`HANDSHAKE_TIMEOUT`].
    HandshakeTimeout,
    /// ubusd refused to register an object.
    Refused,
    /// The driver fell too far behind writing.
    Backlog,
}

/// Per-reason counts of what was dropped or refused; never reset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages that did not decode (per [`WireError`] kind, summed).
    pub malformed: u64,
    /// Messages with a header version other than 0 (libubus drops them too).
    pub bad_version: u64,
    /// Messages of a type this client does not handle, or replies to nothing.
    pub unexpected: u64,
    /// INVOKEs for an object that is not ours (answered STATUS 4).
    pub unknown_object: u64,
    /// INVOKEs naming no method we have (answered STATUS 3).
    pub unknown_method: u64,
    /// INVOKEs without usable DATA or with a declared argument of the wrong type
    /// (answered STATUS 2).
    pub invalid_argument: u64,
    /// Calls refused because [`MAX_PENDING_CALLS`] were in progress.
    pub overloaded: u64,
    /// Calls the daemon did not answer within [`CALL_TIMEOUT`].
    pub timed_out: u64,
    /// Replies from the daemon for calls that were already answered or void.
    pub stale_replies: u64,
    /// Events not sent because ubusd was not connected.
    pub events_dropped: u64,
    /// Events ubusd answered with a non-zero status.
    pub events_refused: u64,
    /// Replies or events too big for one ubus message (ubusd would drop the
    /// connection); a reply becomes STATUS 9, an event is not sent.
    pub oversized: u64,
    /// Successful registrations (1 after the first connect; +1 per ubusd restart).
    pub registrations: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No socket; connect at `retry_at`.
    Idle { retry_at: Instant },
    /// The driver was told to connect and has not answered yet.
    Connecting,
    /// Connected, waiting for HELLO.
    AwaitHello { deadline: Instant },
    /// ADD_OBJECT sent for `objects[index]`, waiting for DATA + STATUS.
    Registering {
        index: usize,
        seq: u16,
        deadline: Instant,
    },
    /// Every object published.
    Ready,
}

#[derive(Debug, Clone)]
struct PendingCall {
    id: CallId,
    deadline: Instant,
}

/// A call to another object, from LOOKUP to the INVOKE's STATUS.
#[derive(Debug, Clone)]
struct OutgoingCall {
    id: OutgoingId,
    /// The seq of the message whose answer is awaited.
    seq: u16,
    stage: Stage,
    method: String,
    args: Table,
    deadline: Instant,
}

#[derive(Debug, Clone)]
enum Stage {
    /// LOOKUP sent; the object id once its DATA arrived.
    Lookup { object: Option<u32> },
    /// INVOKE sent to `object`; its DATA once it arrived.
    Invoke { object: u32, data: Option<Table> },
}

/// One ubus client connection, across reconnects.
#[derive(Debug)]
pub struct Connection {
    objects: Vec<ObjectSpec>,
    /// (id, type id) of each object on the current connection.
    registered: Vec<Option<(u32, u32)>>,
    phase: Phase,
    /// Bumped on every new socket; void ids and calls of older ones.
    generation: u64,
    /// libubus numbers requests per connection from 1.
    next_seq: u16,
    client_id: u32,
    rx: Vec<u8>,
    actions: VecDeque<Action>,
    pending: Vec<PendingCall>,
    /// seqs of event sends awaiting their STATUS.
    events_in_flight: VecDeque<u16>,
    outgoing: Vec<OutgoingCall>,
    next_outgoing: u64,
    backoff: Duration,
    counters: Counters,
}

impl Connection {
    /// A connection that will publish `objects`; the first connect is due at `now`.
    pub fn new(objects: Vec<ObjectSpec>, now: Instant) -> Connection {
        let registered = vec![None; objects.len()];
        Connection {
            objects,
            registered,
            phase: Phase::Idle { retry_at: now },
            generation: 0,
            next_seq: 1,
            client_id: 0,
            rx: Vec::new(),
            actions: VecDeque::new(),
            pending: Vec::new(),
            events_in_flight: VecDeque::new(),
            outgoing: Vec::new(),
            next_outgoing: 0,
            backoff: RECONNECT_MIN,
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether every object is published.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Our client id from the current HELLO (0 before one).
    pub fn client_id(&self) -> u32 {
        self.client_id
    }

    /// The current id of `objects[index]`, if registered.
    pub fn object_id(&self, index: usize) -> Option<u32> {
        self.registered
            .get(index)
            .copied()
            .flatten()
            .map(|(id, _)| id)
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Connection::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Idle { retry_at } => Some(retry_at),
            Phase::AwaitHello { deadline } | Phase::Registering { deadline, .. } => Some(deadline),
            Phase::Connecting | Phase::Ready => None,
        };
        let call = self
            .pending
            .iter()
            .map(|p| p.deadline)
            .chain(self.outgoing.iter().map(|o| o.deadline))
            .min();
        match (phase, call) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs whatever timers are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Idle { retry_at } if now >= retry_at => {
                self.phase = Phase::Connecting;
                self.actions.push_back(Action::Connect);
            }
            Phase::AwaitHello { deadline } | Phase::Registering { deadline, .. }
                if now >= deadline =>
            {
                self.give_up(now, Disconnect::HandshakeTimeout);
            }
            _ => {}
        }
        let (expired, alive): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|p| now >= p.deadline);
        self.pending = alive;
        for call in expired {
            self.counters.timed_out += 1;
            self.send_status(call.id, Status::Timeout);
        }
        let (expired, alive): (Vec<_>, Vec<_>) =
            self.outgoing.drain(..).partition(|o| now >= o.deadline);
        self.outgoing = alive;
        for call in expired {
            self.answer(call.id, Err(Status::Timeout));
        }
    }

    /// The socket is open.
    pub fn handle_connected(&mut self, now: Instant) {
        self.generation += 1;
        self.next_seq = 1;
        self.client_id = 0;
        self.rx.clear();
        self.registered.iter_mut().for_each(|r| *r = None);
        self.pending.clear();
        self.events_in_flight.clear();
        self.fail_outgoing();
        self.phase = Phase::AwaitHello {
            deadline: now + HANDSHAKE_TIMEOUT,
        };
    }

    /// The socket could not be opened (no ubusd yet): retry later.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        self.schedule_retry(now);
    }

    /// EOF or a read/write error: ubusd is gone and every id with it.
    pub fn handle_closed(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Idle { .. }) {
            self.schedule_retry(now);
        }
    }

    /// Bytes read from the socket; any split of the stream is fine.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if !self.connected() {
            return;
        }
        self.rx.extend_from_slice(bytes);
        loop {
            let len = match frame_len(&self.rx) {
                Ok(Some(len)) if self.rx.len() >= len => len,
                Ok(_) => return,
                Err(e) => {
                    self.counters.malformed += 1;
                    self.give_up(now, Disconnect::Framing(e));
                    return;
                }
            };
            let frame: Vec<u8> = self.rx.drain(..len).collect();
            match Message::decode(&frame) {
                Ok(msg) => self.handle_message(now, msg),
                Err(_) => self.counters.malformed += 1,
            }
            if !self.connected() {
                return;
            }
        }
    }

    /// The daemon's answer to a call.
    pub fn reply(&mut self, id: CallId, reply: Reply) {
        let Some(pos) = self.pending.iter().position(|p| p.id == id) else {
            self.counters.stale_replies += 1;
            return;
        };
        self.pending.swap_remove(pos);
        let mut status = reply.status;
        let mut bytes = Vec::new();
        if let Some(data) = reply.data {
            bytes = Message::new(
                MsgType::Data,
                id.seq,
                id.peer,
                vec![Attr::ObjId(id.object), Attr::Data(data)],
            )
            .encode();
            if bytes.len() > MAX_MSG_LEN {
                self.counters.oversized += 1;
                bytes.clear();
                status = Status::UnknownError;
            }
        }
        bytes.extend(self.status_bytes(id, status));
        self.send(bytes);
    }

    /// Sends event `name` with `data` to every listener (`ubus listen`), as
    /// `ubus send` / ucode `conn.event` do. Returns false (and counts it) when
    /// ubusd is not connected: the listeners are gone with it, so there is no
    /// one to queue it for.
    pub fn publish_event(&mut self, name: &str, data: Table) -> bool {
        if self.phase != Phase::Ready || self.actions.len() >= MAX_QUEUED_ACTIONS {
            self.counters.events_dropped += 1;
            return false;
        }
        let body = Table::new().with("id", name).with("data", data);
        let msg = Message::new(
            MsgType::Invoke,
            0,
            EVENT_OBJECT,
            vec![
                Attr::ObjId(EVENT_OBJECT),
                Attr::Method("send".into()),
                Attr::Data(body),
            ],
        );
        let mut bytes = msg.encode();
        if bytes.len() > MAX_MSG_LEN {
            self.counters.oversized += 1;
            return false;
        }
        let seq = self.take_seq();
        bytes[2..4].copy_from_slice(&seq.to_be_bytes());
        // Bounded: ubusd answers each send at once; a ubusd that stops reading
        // is noticed by the driver's write timeout (driver::WRITE_TIMEOUT).
        if self.events_in_flight.len() >= MAX_PENDING_CALLS {
            self.events_in_flight.pop_front();
        }
        self.events_in_flight.push_back(seq);
        self.send(bytes);
        true
    }

    /// Calls `method` of the object at `path` with `args`, as `ubus call` does.
    /// The outcome comes back as [`Action::Answered`] with the returned id; when
    /// ubusd is not connected (or b4d's own objects are not published yet) that
    /// is at once STATUS 10, for the caller to retry later.
    pub fn call(&mut self, now: Instant, path: &str, method: &str, args: Table) -> OutgoingId {
        let id = OutgoingId(self.next_outgoing);
        self.next_outgoing += 1;
        if self.phase != Phase::Ready || self.outgoing.len() >= MAX_PENDING_CALLS {
            self.answer(id, Err(Status::ConnectionFailed));
            return id;
        }
        let seq = self.take_seq();
        let lookup = Message::new(MsgType::Lookup, seq, 0, vec![Attr::ObjPath(path.into())]);
        self.outgoing.push(OutgoingCall {
            id,
            seq,
            stage: Stage::Lookup { object: None },
            method: method.to_string(),
            args,
            deadline: now + CALL_TIMEOUT,
        });
        self.send(lookup.encode());
        id
    }

    /// Whether `msg` answers one of our calls to other objects; handles it if so.
    fn handle_answer(&mut self, msg: &Message) -> bool {
        let Some(pos) = self.outgoing.iter().position(|o| o.seq == msg.header.seq) else {
            return false;
        };
        match (msg.header.kind(), &mut self.outgoing[pos].stage) {
            // LOOKUP answers come from ubusd itself (peer 0).
            (Some(MsgType::Data), Stage::Lookup { object }) if msg.header.peer == 0 => {
                *object = msg.obj_id();
            }
            (Some(MsgType::Data), Stage::Invoke { object, data }) if msg.header.peer == *object => {
                *data = msg.data().cloned();
            }
            (Some(MsgType::Status), Stage::Lookup { object }) if msg.header.peer == 0 => {
                let status = Status::from_code(msg.status().unwrap_or(Status::UnknownError.code()));
                match (status, *object) {
                    (Status::Ok, Some(object)) => self.invoke(pos, object),
                    (Status::Ok, None) => self.finish(pos, Err(Status::NotFound)),
                    (status, _) => self.finish(pos, Err(status)),
                }
            }
            (Some(MsgType::Status), Stage::Invoke { object, data })
                if msg.header.peer == *object =>
            {
                let data = data.take();
                let result =
                    match Status::from_code(msg.status().unwrap_or(Status::UnknownError.code())) {
                        Status::Ok => Ok(data),
                        status => Err(status),
                    };
                self.finish(pos, result);
            }
            _ => return false,
        }
        true
    }

    /// The object was found: INVOKE it, addressed to it as the CLI does.
    fn invoke(&mut self, pos: usize, object: u32) {
        let seq = self.take_seq();
        let call = &mut self.outgoing[pos];
        call.seq = seq;
        call.stage = Stage::Invoke { object, data: None };
        let msg = Message::new(
            MsgType::Invoke,
            seq,
            object,
            vec![
                Attr::ObjId(object),
                Attr::Method(call.method.clone()),
                Attr::Data(std::mem::take(&mut call.args)),
            ],
        );
        let bytes = msg.encode();
        if bytes.len() > MAX_MSG_LEN {
            self.counters.oversized += 1;
            self.finish(pos, Err(Status::InvalidArgument));
            return;
        }
        self.send(bytes);
    }

    fn finish(&mut self, pos: usize, result: CallResult) {
        let call = self.outgoing.swap_remove(pos);
        self.answer(call.id, result);
    }

    fn answer(&mut self, id: OutgoingId, result: CallResult) {
        self.actions.push_back(Action::Answered { id, result });
    }

    /// The connection is gone, and with it every object id and seq.
    fn fail_outgoing(&mut self) {
        for call in std::mem::take(&mut self.outgoing) {
            self.answer(call.id, Err(Status::ConnectionFailed));
        }
    }

    fn connected(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitHello { .. } | Phase::Registering { .. } | Phase::Ready
        )
    }

    fn take_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn send(&mut self, bytes: Vec<u8>) {
        if self.actions.len() >= MAX_QUEUED_ACTIONS {
            // The driver is not keeping up (ubusd not reading): start over
            // rather than queue without bound.
            self.give_up_at_next_poll();
            return;
        }
        self.actions.push_back(Action::Send(bytes));
    }

    fn give_up_at_next_poll(&mut self) {
        // Outcomes already decided still reach their callers.
        self.actions
            .retain(|a| matches!(a, Action::Answered { .. }));
        self.actions
            .push_back(Action::Disconnect(Disconnect::Backlog));
        // Not connected any more; the driver's handle_closed schedules the retry.
        self.phase = Phase::Connecting;
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.phase = Phase::Idle {
            retry_at: now + self.backoff,
        };
        self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
        // Bytes meant for the old connection must not reach the next one.
        self.actions.retain(|a| !matches!(a, Action::Send(_)));
        self.rx.clear();
        self.pending.clear();
        self.events_in_flight.clear();
        self.fail_outgoing();
        self.registered.iter_mut().for_each(|r| *r = None);
    }

    fn give_up(&mut self, now: Instant, why: Disconnect) {
        self.actions.push_back(Action::Disconnect(why));
        self.schedule_retry(now);
    }

    fn status_bytes(&self, id: CallId, status: Status) -> Vec<u8> {
        Message::new(
            MsgType::Status,
            id.seq,
            id.peer,
            vec![Attr::Status(status.code()), Attr::ObjId(id.object)],
        )
        .encode()
    }

    fn send_status(&mut self, id: CallId, status: Status) {
        let bytes = self.status_bytes(id, status);
        self.send(bytes);
    }

    fn register_next(&mut self, now: Instant, index: usize) {
        if index >= self.objects.len() {
            self.phase = Phase::Ready;
            self.backoff = RECONNECT_MIN;
            self.counters.registrations += 1;
            return;
        }
        let seq = self.take_seq();
        let object = &self.objects[index];
        // Always with SIGNATURE: ubusd hides objects without a type from LOOKUP.
        let msg = Message::new(
            MsgType::AddObject,
            seq,
            0,
            vec![
                Attr::ObjPath(object.name.clone()),
                Attr::Signature(object.signature()),
            ],
        );
        self.phase = Phase::Registering {
            index,
            seq,
            deadline: now + HANDSHAKE_TIMEOUT,
        };
        self.send(msg.encode());
    }

    fn handle_message(&mut self, now: Instant, msg: Message) {
        if msg.header.version != 0 {
            self.counters.bad_version += 1;
            return;
        }
        if self.phase == Phase::Ready && self.handle_answer(&msg) {
            return;
        }
        match (self.phase, msg.header.kind()) {
            (Phase::AwaitHello { .. }, Some(MsgType::Hello)) => {
                self.client_id = msg.header.peer;
                self.register_next(now, 0);
            }
            (Phase::Registering { index, seq, .. }, Some(MsgType::Data))
                if msg.header.seq == seq =>
            {
                match (msg.obj_id(), msg.obj_type()) {
                    (Some(id), Some(type_id)) => self.registered[index] = Some((id, type_id)),
                    _ => self.counters.unexpected += 1,
                }
            }
            (Phase::Registering { index, seq, .. }, Some(MsgType::Status))
                if msg.header.seq == seq =>
            {
                let status = Status::from_code(msg.status().unwrap_or(Status::UnknownError.code()));
                match (status, self.registered[index]) {
                    (Status::Ok, Some((id, type_id))) => {
                        self.actions.push_back(Action::Registered {
                            object: index,
                            id,
                            type_id,
                        });
                        self.register_next(now, index + 1);
                    }
                    (status, _) => {
                        let status = if status == Status::Ok {
                            Status::NoData
                        } else {
                            status
                        };
                        self.actions.push_back(Action::RegistrationFailed {
                            object: index,
                            status,
                        });
                        self.give_up(now, Disconnect::Refused);
                    }
                }
            }
            (Phase::Ready, Some(MsgType::Invoke)) => self.handle_invoke(now, msg),
            (Phase::Ready, Some(MsgType::Status)) if msg.header.peer == EVENT_OBJECT => {
                match self
                    .events_in_flight
                    .iter()
                    .position(|&s| s == msg.header.seq)
                {
                    Some(pos) => {
                        self.events_in_flight.remove(pos);
                        if msg.status() != Some(0) {
                            self.counters.events_refused += 1;
                        }
                    }
                    None => self.counters.unexpected += 1,
                }
            }
            // Subscription state (ACTIVE) and unsubscribe notices: b4d sends
            // events to listeners, not notifications to subscribers, so there is
            // nothing to track.
            (Phase::Ready, Some(MsgType::Notify | MsgType::Unsubscribe)) => {}
            _ => self.counters.unexpected += 1,
        }
    }

    fn handle_invoke(&mut self, now: Instant, msg: Message) {
        let Some(object_id) = msg.obj_id() else {
            // No OBJID: ubusd drops a reply without one, so there is no one to answer.
            self.counters.unexpected += 1;
            return;
        };
        let id = CallId {
            generation: self.generation,
            seq: msg.header.seq,
            peer: msg.header.peer,
            object: object_id,
        };
        let Some(index) = self
            .registered
            .iter()
            .position(|r| matches!(r, Some((o, _)) if *o == object_id))
        else {
            self.counters.unknown_object += 1;
            self.send_status(id, Status::NotFound);
            return;
        };
        let spec = &self.objects[index];
        let Some(method) = msg
            .method()
            .and_then(|m| spec.methods.iter().find(|s| s.name == m))
        else {
            // libubus answers an unknown (or missing) method with 3 (trace 03b).
            self.counters.unknown_method += 1;
            self.send_status(id, Status::MethodNotFound);
            return;
        };
        // libubus answers an INVOKE without (valid) DATA with 2 (trace 09).
        let Some(args) = msg.data() else {
            self.counters.invalid_argument += 1;
            self.send_status(id, Status::InvalidArgument);
            return;
        };
        let wrong_type = method.args.iter().any(|(name, kind)| {
            args.iter()
                .any(|(n, v)| n == name && v.blob_type() != *kind && !int_fits(v, *kind))
        });
        if wrong_type {
            self.counters.invalid_argument += 1;
            self.send_status(id, Status::InvalidArgument);
            return;
        }
        if self.pending.len() >= MAX_PENDING_CALLS {
            self.counters.overloaded += 1;
            self.send_status(id, Status::NoMemory);
            return;
        }
        // Calls that repeat (seq, peer) of one still pending would be answered
        // twice with the same id; ubusd never does that, drop the older.
        self.pending.retain(|p| p.id != id);
        self.pending.push(PendingCall {
            id,
            deadline: now + CALL_TIMEOUT,
        });
        let call = Call {
            id,
            object: index,
            method: method.name.clone(),
            args: args.clone(),
            peer: msg.header.peer,
            user: msg.user().map(str::to_string),
            group: msg.group().map(str::to_string),
        };
        self.actions.push_back(Action::Call(call));
    }
}

/// JSON→blobmsg converters pick INT32 or INT64 by magnitude (trace README), so a
/// caller's INT64 for an INT32 argument, or the reverse, is the same integer.
fn int_fits(v: &Value, kind: BlobType) -> bool {
    matches!(
        (v, kind),
        (Value::Int32(_) | Value::Int16(_), BlobType::Int64)
            | (Value::Int64(_) | Value::Int16(_), BlobType::Int32)
    )
}
