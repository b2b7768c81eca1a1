//! Replays the ubusd side of recorded conversations (`../shared/ubus-traces/`)
//! to b4d's ubus driver over a real unix socket, and checks that it answers
//! exactly as the recorded server did, byte for byte: registration, calls with
//! and without arguments, error statuses, events, a refused registration, a
//! call through uhttpd/rpcd, and ubusd restarting.
//!
//! The object published is the recorded one (the ucode `b4` server's
//! signature); the method handlers answer what the recorded server answered,
//! so what is under test is everything between the socket and the handlers.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use b4d::ubus::connection::{ObjectSpec, Reply};
use b4d::ubus::driver::{self, Published, UbusHandle};
use b4d::ubus::wire::{Attr, BlobType, Message, MsgType, Status, Table, Value};
use b4d::ubus::MethodSpec;
use support::ubus_traces::{self, nth, of_conn, TraceMsg};
use support::ubusd_replay::UbusdReplay;
use support::TestDir;
use tokio::sync::{mpsc, watch};

/// The argument uhttpd adds to every call; replies do not depend on it.
const SESSION: &str = "ubus_rpc_session";

fn decode(m: &TraceMsg) -> Message {
    Message::decode(&m.bytes).expect("recorded message decodes")
}

/// Arguments as a lookup key, without the session id.
fn key(method: &str, args: &Table) -> String {
    let args = Table(
        args.0
            .iter()
            .filter(|(n, _)| n != SESSION)
            .cloned()
            .collect(),
    );
    format!("{method} {args}")
}

/// What the recorded server answered to each call it saw: for every INVOKE
/// that reached `conn`, its DATA (if any) and STATUS, keyed by method and
/// arguments.
fn recorded_answers(msgs: &[TraceMsg], conn: &str) -> Vec<(String, Reply)> {
    let server = of_conn(msgs, conn);
    let mut out = Vec::new();
    for (i, m) in server.iter().enumerate() {
        if m.to_ubusd || m.type_id() != MsgType::Invoke as u8 {
            continue;
        }
        let invoke = decode(m);
        let (Some(method), Some(args)) = (invoke.method(), invoke.data()) else {
            continue;
        };
        let mut reply = Reply::error(Status::UnknownError);
        for r in server[i + 1..]
            .iter()
            .filter(|r| r.to_ubusd && r.seq() == m.seq())
        {
            let r = decode(r);
            match r.header.kind() {
                Some(MsgType::Data) => reply.data = r.data().cloned(),
                Some(MsgType::Status) => {
                    reply.status = Status::from_code(r.status().expect("status"));
                    break;
                }
                _ => {}
            }
        }
        out.push((key(method, args), reply));
    }
    out
}

/// The driver and a handler that answers from `answers`, on their own thread.
struct ServerUnderTest {
    events: UbusHandle,
    shutdown: watch::Sender<bool>,
    /// Every call the handler got: method and arguments.
    calls: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerUnderTest {
    fn start(socket: &Path, spec: ObjectSpec, answers: Vec<(String, Reply)>) -> ServerUnderTest {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (events, events_rx) = driver::channels();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let socket = socket.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (tx, mut rx) = mpsc::channel::<driver::UbusRequest>(8);
                tokio::spawn(async move {
                    while let Some(req) = rx.recv().await {
                        seen.lock()
                            .unwrap()
                            .push(format!("{} {}", req.method, req.args));
                        let k = key(&req.method, &req.args);
                        let reply = answers
                            .iter()
                            .find(|(a, _)| *a == k)
                            .map(|(_, r)| r.clone())
                            .unwrap_or_else(|| panic!("no recorded answer for {k}"));
                        let _ = req.reply.send(reply);
                    }
                });
                let published = vec![Published { spec, requests: tx }];
                driver::run(socket, published, events_rx, shutdown_rx)
                    .await
                    .expect("driver");
            });
        });
        ServerUnderTest {
            events,
            shutdown,
            calls,
            thread: Some(thread),
        }
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The ucode test server's object: status, leases, renew(reason: string).
fn recorded_b4() -> ObjectSpec {
    ObjectSpec {
        name: "b4".into(),
        methods: vec![
            MethodSpec::new("status", &[]),
            MethodSpec::new("leases", &[]),
            MethodSpec::new("renew", &[("reason", BlobType::String)]),
        ],
    }
}

/// An object spec read back from a recorded ADD_OBJECT.
fn spec_from(add_object: &TraceMsg) -> ObjectSpec {
    let m = decode(add_object);
    let name = m
        .attrs
        .iter()
        .find_map(|a| match a {
            Attr::ObjPath(p) => Some(p.clone()),
            _ => None,
        })
        .expect("OBJPATH");
    let signature = m
        .attrs
        .iter()
        .find_map(|a| match a {
            Attr::Signature(s) => Some(s.clone()),
            _ => None,
        })
        .expect("SIGNATURE");
    let type_of = |v: &Value| match v {
        Value::Int32(3) => BlobType::String,
        Value::Int32(5) => BlobType::Int32,
        Value::Int32(7) => BlobType::Int8,
        other => panic!("argument type {other}"),
    };
    ObjectSpec {
        name,
        methods: signature
            .iter()
            .map(|(method, args)| {
                let Value::Table(args) = args else {
                    panic!("method {method} is not a table")
                };
                MethodSpec {
                    name: method.to_string(),
                    args: args
                        .iter()
                        .map(|(n, t)| (n.to_string(), type_of(t)))
                        .collect(),
                }
            })
            .collect(),
    }
}

/// Plays one recorded message: sends what ubusd sent, checks what the server sent.
fn play(peer: &mut UbusdReplay, m: &TraceMsg, trace: &str) {
    if m.to_ubusd {
        peer.expect(&m.bytes, &format!("{trace} #{} ({})", m.n, m.conn));
    } else {
        peer.send(&m.bytes);
    }
}

/// Plays every message of connection `conn` (the recorded server) in `msgs`.
fn replay(peer: &mut UbusdReplay, msgs: &[TraceMsg], trace: &str, conn: &str) {
    for m in of_conn(msgs, conn) {
        play(peer, m, trace);
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_recorded_b4_server_conversation_replays_byte_exact_including_a_ubusd_restart() {
    let Some(dir) = ubus_traces::traces_dir() else {
        return;
    };
    let test_dir = TestDir::new("b4_conversation");
    let socket = test_dir.file("ubus.sock");
    let t = |p: &str| ubus_traces::load(&dir, p);
    let (t01, t02, t03a, t03b, t03d, t03e, t03f, t03g, t03h) = (
        t("01-"),
        t("02-"),
        t("03a-"),
        t("03b-"),
        t("03d-"),
        t("03e-"),
        t("03f-"),
        t("03g-"),
        t("03h-"),
    );
    let (t05, t06, t07, t09, t10) = (t("05-"), t("06-"), t("07-"), t("09-"), t("10-"));
    let mut answers = Vec::new();
    for trace in [&t02, &t03a, &t03d, &t03e, &t03h, &t06] {
        let conn = if std::ptr::eq(trace, &t06) {
            "p27"
        } else {
            "p1"
        };
        answers.extend(recorded_answers(trace, conn));
    }

    let mut peer = UbusdReplay::listen(&socket);
    let server = ServerUnderTest::start(&socket, recorded_b4(), answers);
    peer.accept(WAIT);

    // 01: HELLO → ADD_OBJECT with the signature → DATA {OBJID, OBJTYPE} + STATUS 0.
    replay(&mut peer, &t01, "01", "p1");
    // 02: `ubus call b4 status`: DATA with string, int32, int64, bool, array, table.
    replay(&mut peer, &t02, "02", "p1");
    // 03a: a call with arguments.
    replay(&mut peer, &t03a, "03a", "p1");
    // 03b: unknown method: STATUS 3 from the client library itself.
    replay(&mut peer, &t03b, "03b", "p1");
    // 03d: the handler's error status, without DATA.
    replay(&mut peer, &t03d, "03d", "p1");
    // 03e: DATA and then an error status.
    replay(&mut peer, &t03e, "03e", "p1");
    // 03f: a declared argument of the wrong type: STATUS 2.
    replay(&mut peer, &t03f, "03f", "p1");
    // 03h: an array of tables.
    replay(&mut peer, &t03h, "03h", "p1");
    // 09: INVOKE forwarded without DATA: STATUS 2 (as libubus).
    replay(&mut peer, &t09, "09", "p1");
    // 10: a call from uid nobody (USER/GROUP nobody/nogroup).
    replay(&mut peer, &t10, "10", "p1");

    // 03g: the ucode server refused the undeclared `ubus_rpc_session` with
    // STATUS 2; b4d must not (uhttpd adds it to every call): the call reaches
    // the handler and is answered like 02's status call.
    let invoke = nth(&t03g, 6);
    peer.send(&invoke.bytes);
    let mut want_data = nth(&t02, 7).bytes.clone();
    let mut want_status = nth(&t02, 9).bytes.clone();
    for want in [&mut want_data, &mut want_status] {
        want[2..8].copy_from_slice(&invoke.bytes[2..8]);
    }
    peer.expect(&want_data, "03g DATA");
    peer.expect(&want_status, "03g STATUS");
    assert!(server
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.contains("\"ubus_rpc_session\":\"0123456789abcdef0123456789abcdef\"")));

    // 07: a subscriber comes and goes (NOTIFY ACTIVE 1 / 0): nothing to answer.
    peer.send(&nth(&t07, 9).bytes);
    peer.send(&nth(&t07, 16).bytes);
    peer.expect_silence(Duration::from_millis(200), "07 NOTIFY ACTIVE");

    // 05: the server sends event b4.state (INVOKE "send" to object 1, seq 2).
    let event = decode(nth(&t05, 15));
    let data = event.data().unwrap().get("data").unwrap().clone();
    let Value::Table(data) = data else {
        panic!("event data")
    };
    assert!(server.events.publish_event("b4.state", data));
    replay(&mut peer, &t05, "05", "p1");

    // 06: ubusd is killed; connecting fails for a while; a new ubusd starts.
    // The server reconnects, publishes again (seq from 1, new ids) and a call
    // to the new id works.
    peer.kill();
    std::thread::sleep(Duration::from_millis(600));
    peer.start();
    peer.accept(WAIT);
    replay(&mut peer, &t06, "06", "p27");
}

/// The recorded server's object registered with a replayed ubusd (trace
/// 01), for the tests that go on from there; `None` without the traces.
fn registered(test: &str) -> Option<(TestDir, UbusdReplay, ServerUnderTest, Vec<TraceMsg>)> {
    let dir = ubus_traces::traces_dir()?;
    let test_dir = TestDir::new(test);
    let socket = test_dir.file("ubus.sock");
    let t01 = ubus_traces::load(&dir, "01-");
    let mut peer = UbusdReplay::listen(&socket);
    let server = ServerUnderTest::start(&socket, recorded_b4(), Vec::new());
    peer.accept(WAIT);
    replay(&mut peer, &t01, "01", "p1");
    Some((test_dir, peer, server, t01))
}

/// ubusd stops reading (hung, stopped) while b4d has more to write than the
/// socket holds: b4d gives up on the connection after its write timeout
/// and connects again, instead of hanging in the write with every call,
/// event and its own shutdown behind it.
#[test]
fn a_ubusd_that_stops_reading_is_left_and_connected_to_again() {
    let Some((_dir, mut peer, server, t01)) = registered("stalled_ubusd") else {
        return;
    };
    // Never read again: 64 events of 60 kB fill any socket buffer. The
    // handle's queue refuses events while the driver is stuck in a write.
    let big = Table::new().with("text", "x".repeat(60_000));
    let mut published = 0;
    let deadline = std::time::Instant::now() + WAIT + driver::WRITE_TIMEOUT;
    while published < 64 && std::time::Instant::now() < deadline {
        if server.events.publish_event("b4.big", big.clone()) {
            published += 1;
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let reconnected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        peer.accept(WAIT + driver::WRITE_TIMEOUT)
    }));
    if reconnected.is_err() {
        // Its thread is stuck in the write: joining it would hang the test.
        std::mem::forget(server);
        panic!("b4d stayed on a ubusd that reads nothing");
    }
    replay(&mut peer, &t01, "01 again", "p1");
}

/// An event queued as b4d stops (its last `b4.state`, "stopping") still
/// reaches ubusd: the driver writes what is queued before it ends.
#[test]
fn an_event_queued_at_shutdown_still_goes_out() {
    let Some((_dir, mut peer, server, _)) = registered("event_at_shutdown") else {
        return;
    };
    // Time for the driver to read the registration's answer: an event
    // before it is dropped (not connected yet), not the case here.
    peer.expect_silence(Duration::from_millis(500), "after registering");
    let stopping = b4d::ubus::b4::stopping_event();
    assert!(server.events.publish_event("b4.state", stopping.clone()));
    server.shutdown.send_replace(true);
    let sent = peer.read_message(WAIT).expect("the event before the end");
    let sent = Message::decode(&sent).expect("a message");
    assert_eq!(sent.header.kind(), Some(MsgType::Invoke));
    let data = sent.data().and_then(|d| d.get("data")).cloned();
    assert_eq!(data, Some(Value::Table(stopping)));
    peer.expect_eof("after the last event");
}

#[test]
fn a_refused_registration_is_retried_and_then_succeeds() {
    let Some(dir) = ubus_traces::traces_dir() else {
        return;
    };
    let test_dir = TestDir::new("refused_registration");
    let socket = test_dir.file("ubus.sock");
    // 08: a second client publishing `b4` {status} gets STATUS 2 (name taken).
    let t08 = ubus_traces::load(&dir, "08-");
    let spec = spec_from(nth(&t08, 2));
    let mut peer = UbusdReplay::listen(&socket);
    let _server = ServerUnderTest::start(&socket, spec, Vec::new());
    peer.accept(WAIT);
    replay(&mut peer, &t08, "08", "p17");
    peer.expect_eof("after STATUS 2");
    // It comes back (after the first backoff step) and registers from scratch.
    peer.accept(WAIT);
    for n in [1, 2] {
        play(&mut peer, nth(&t08, n), "08 again");
    }
}

#[test]
fn a_call_through_uhttpd_and_rpcd_with_its_session_argument_replays_byte_exact() {
    let Some(dir) = ubus_traces::traces_dir() else {
        return;
    };
    let test_dir = TestDir::new("uhttpd_call");
    let socket = test_dir.file("ubus.sock");
    // The `demo` object of trace 11 (registered in the full session log):
    // status(verbose: bool, ubus_rpc_session: string), called by uhttpd via
    // rpcd's session check with the session id injected.
    let full = ubus_traces::load(&dir, "99-");
    let spec = spec_from(nth(&full, 206));
    let answers = recorded_answers(&full, "p21");
    let mut peer = UbusdReplay::listen(&socket);
    let _server = ServerUnderTest::start(&socket, spec, answers);
    peer.accept(WAIT);
    replay(&mut peer, &full, "99", "p21");
}

/// b4d's ubus driver with no object of its own, calling `b4 status` from a
/// thread of its own; the result comes back on the returned channel.
fn call_from_b4d(
    socket: &Path,
    path: &'static str,
    method: &'static str,
) -> (
    std::sync::mpsc::Receiver<b4d::ubus::connection::CallResult>,
    watch::Sender<bool>,
    JoinHandle<()>,
) {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    let socket = socket.to_path_buf();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let (handle, ends) = driver::channels();
            tokio::spawn(async move {
                // The first attempts may find the connection not up yet (10).
                loop {
                    match handle.call(path, method, Table::new()).await {
                        Err(Status::ConnectionFailed) => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        result => {
                            let _ = result_tx.send(result);
                            break;
                        }
                    }
                }
            });
            driver::run(socket, Vec::new(), ends, shutdown_rx)
                .await
                .expect("driver");
        });
    });
    (result_rx, shutdown, thread)
}

/// Replays connection `conn` of trace `prefix` (a CLI's `ubus call`) with
/// b4d's driver as the caller of `path`.`method`; returns the call's result.
fn replay_call(
    prefix: &str,
    conn: &str,
    path: &'static str,
    method: &'static str,
) -> Option<(b4d::ubus::connection::CallResult, Vec<TraceMsg>)> {
    let dir = ubus_traces::traces_dir()?;
    let test_dir = TestDir::new(&format!("b4d_calls_{path}"));
    let socket = test_dir.file("ubus.sock");
    let trace = ubus_traces::load(&dir, prefix);
    let mut peer = UbusdReplay::listen(&socket);
    let (result, shutdown, thread) = call_from_b4d(&socket, path, method);
    peer.accept(WAIT);
    replay(&mut peer, &trace, prefix, conn);
    let result = result.recv_timeout(WAIT).expect("call result");
    peer.expect_silence(Duration::from_millis(300), "nothing after the call");
    shutdown.send_replace(true);
    thread.join().expect("driver thread");
    Some((result, trace))
}

#[test]
fn b4d_calls_another_object_byte_for_byte_as_the_ubus_cli_does() {
    // 02, the CLI's connection: HELLO → LOOKUP "b4" → DATA + STATUS → INVOKE
    // "status" to the object id → DATA + STATUS.
    let Some((result, t02)) = replay_call("02-", "p2", "b4", "status") else {
        return;
    };
    assert_eq!(result, Ok(decode(nth(&t02, 8)).data().cloned()));
}

#[test]
fn a_call_to_an_object_that_does_not_exist_ends_with_status_4_and_no_invoke() {
    // 03c: `ubus call nosuch status`: LOOKUP answered by STATUS 4 alone.
    let Some((result, _)) = replay_call("03c-", "p5", "nosuch", "status") else {
        return;
    };
    assert_eq!(result, Err(Status::NotFound));
}
