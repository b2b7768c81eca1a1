//! The connection core driven with fabricated messages and a fake clock (no
//! sockets, no sleeps), and property tests of the codec on arbitrary bytes.
//! The byte-exact checks against OpenWrt's ubusd are in `tests/ubus_wire.rs`
//! and `tests/ubus_replay.rs`.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::connection::*;
use super::wire::*;

const CLIENT: u32 = 0xc17d_b92a;
const OBJ: u32 = 0x4488_dc95;
const TYPE: u32 = 0x8255_2723;
const CALLER: u32 = 0x6774_8656;

fn spec() -> ObjectSpec {
    ObjectSpec {
        name: "b4".into(),
        methods: vec![
            MethodSpec::new("status", &[]),
            MethodSpec::new("renew", &[("reason", BlobType::String)]),
        ],
    }
}

fn msg(t: MsgType, seq: u16, peer: u32, attrs: Vec<Attr>) -> Vec<u8> {
    Message::new(t, seq, peer, attrs).encode()
}

fn hello() -> Vec<u8> {
    msg(MsgType::Hello, 0, CLIENT, vec![])
}

fn registration_answer(seq: u16) -> Vec<u8> {
    let mut b = msg(
        MsgType::Data,
        seq,
        0,
        vec![Attr::ObjId(OBJ), Attr::ObjType(TYPE)],
    );
    b.extend(msg(MsgType::Status, seq, 0, vec![Attr::Status(0)]));
    b
}

fn invoke(seq: u16, object: u32, method: Option<&str>, data: Option<Table>) -> Vec<u8> {
    let mut attrs = vec![Attr::ObjId(object)];
    if let Some(m) = method {
        attrs.push(Attr::Method(m.into()));
    }
    attrs.push(Attr::User("root".into()));
    attrs.push(Attr::Group("root".into()));
    if let Some(d) = data {
        attrs.push(Attr::Data(d));
    }
    msg(MsgType::Invoke, seq, CALLER, attrs)
}

fn actions(c: &mut Connection) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

/// The messages in the Send actions, decoded.
fn sent(actions: &[Action]) -> Vec<Message> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::Send(bytes) = a {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let len = frame_len(rest).unwrap().unwrap();
                out.push(Message::decode(&rest[..len]).unwrap());
                rest = &rest[len..];
            }
        }
    }
    out
}

fn connect(c: &mut Connection, now: Instant) {
    c.handle_timeout(now);
    assert_eq!(actions(c), vec![Action::Connect]);
    c.handle_connected(now);
}

/// A connection with `b4` published at `t0`.
fn ready(t0: Instant) -> Connection {
    let mut c = Connection::new(vec![spec()], t0);
    connect(&mut c, t0);
    c.handle_bytes(t0, &hello());
    let _ = actions(&mut c);
    c.handle_bytes(t0, &registration_answer(1));
    let _ = actions(&mut c);
    assert!(c.is_ready());
    c
}

fn the_call(actions: &[Action]) -> Call {
    match actions {
        [Action::Call(call)] => call.clone(),
        other => panic!("expected one call, got {other:?}"),
    }
}

#[test]
fn the_first_connect_is_due_at_once() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    assert_eq!(c.poll_timeout(), Some(t0));
    c.handle_timeout(t0);
    assert_eq!(actions(&mut c), vec![Action::Connect]);
    assert_eq!(c.poll_timeout(), None, "no timer while the driver connects");
}

#[test]
fn hello_is_answered_with_add_object_and_the_ids_are_reported() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    connect(&mut c, t0);
    c.handle_bytes(t0, &hello());
    assert_eq!(c.client_id(), CLIENT);
    let out = sent(&actions(&mut c));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header, Header::new(MsgType::AddObject, 1, 0));
    let signature = Table::new()
        .with("status", Table::new())
        .with("renew", Table::new().with("reason", Value::Int32(3)));
    assert_eq!(
        out[0].attrs,
        vec![Attr::ObjPath("b4".into()), Attr::Signature(signature)]
    );
    // DATA and STATUS in one read, as ubusd often delivers them.
    c.handle_bytes(t0, &registration_answer(1));
    assert_eq!(
        actions(&mut c),
        vec![Action::Registered {
            object: 0,
            id: OBJ,
            type_id: TYPE
        }]
    );
    assert!(c.is_ready());
    assert_eq!(c.object_id(0), Some(OBJ));
    assert_eq!(c.counters().registrations, 1);
}

#[test]
fn bytes_split_anywhere_give_the_same_result() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    connect(&mut c, t0);
    let mut stream = hello();
    stream.extend(registration_answer(1));
    stream.extend(invoke(2, OBJ, Some("status"), Some(Table::new())));
    for b in &stream {
        c.handle_bytes(t0, std::slice::from_ref(b));
    }
    let acts = actions(&mut c);
    assert!(matches!(acts.last(), Some(Action::Call(call)) if call.method == "status"));
}

#[test]
fn a_call_is_handed_over_and_the_reply_is_data_then_status_with_seq_and_peer_copied() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let args = Table::new().with("reason", "test");
    c.handle_bytes(t0, &invoke(7, OBJ, Some("renew"), Some(args.clone())));
    let call = the_call(&actions(&mut c));
    assert_eq!(call.method, "renew");
    assert_eq!(call.args, args);
    assert_eq!(call.peer, CALLER);
    assert_eq!(call.user.as_deref(), Some("root"));
    let data = Table::new().with("renewed", true);
    c.reply(call.id, Reply::ok(data.clone()));
    let out = sent(&actions(&mut c));
    assert_eq!(
        out,
        vec![
            Message::new(
                MsgType::Data,
                7,
                CALLER,
                vec![Attr::ObjId(OBJ), Attr::Data(data)]
            ),
            Message::new(
                MsgType::Status,
                7,
                CALLER,
                vec![Attr::Status(0), Attr::ObjId(OBJ)]
            ),
        ]
    );
    // A second reply to the same call is not sent.
    c.reply(call.id, Reply::error(Status::UnknownError));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.counters().stale_replies, 1);
}

#[test]
fn an_error_reply_is_a_status_alone_and_data_with_an_error_is_both() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    c.handle_bytes(t0, &invoke(2, OBJ, Some("renew"), Some(Table::new())));
    let call = the_call(&actions(&mut c));
    c.reply(call.id, Reply::error(Status::InvalidArgument));
    let out = sent(&actions(&mut c));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status(), Some(2));

    c.handle_bytes(t0, &invoke(3, OBJ, Some("renew"), Some(Table::new())));
    let call = the_call(&actions(&mut c));
    c.reply(
        call.id,
        Reply {
            data: Some(Table::new().with("retry_in", 5)),
            status: Status::Timeout,
        },
    );
    let out = sent(&actions(&mut c));
    assert_eq!(out[0].header.msg_type, MsgType::Data as u8);
    assert_eq!(out[1].status(), Some(7));
}

#[test]
fn bad_calls_are_answered_by_the_core_with_libubus_statuses() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let cases: Vec<(Vec<u8>, Status)> = vec![
        (
            invoke(2, OBJ, Some("nosuch"), Some(Table::new())),
            Status::MethodNotFound,
        ),
        (
            invoke(3, OBJ, None, Some(Table::new())),
            Status::MethodNotFound,
        ),
        (
            invoke(4, 0xdead_beef, Some("status"), Some(Table::new())),
            Status::NotFound,
        ),
        (
            invoke(5, OBJ, Some("status"), None),
            Status::InvalidArgument,
        ),
        (
            invoke(6, OBJ, Some("renew"), Some(Table::new().with("reason", 5))),
            Status::InvalidArgument,
        ),
    ];
    for (bytes, status) in cases {
        c.handle_bytes(t0, &bytes);
        let acts = actions(&mut c);
        let out = sent(&acts);
        assert_eq!(out.len(), 1, "{acts:?}");
        assert_eq!(
            out[0].status(),
            Some(status.code()),
            "{}",
            out[0].header.seq
        );
        assert_eq!(
            out[0].header.seq,
            Message::decode(&bytes).unwrap().header.seq
        );
        assert_eq!(out[0].header.peer, CALLER);
    }
    let n = c.counters();
    assert_eq!(
        (n.unknown_method, n.unknown_object, n.invalid_argument),
        (2, 1, 2)
    );
}

#[test]
fn undeclared_arguments_such_as_the_rpcd_session_are_passed_through() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let args = Table::new()
        .with("ubus_rpc_session", "0123456789abcdef0123456789abcdef")
        .with("reason", "luci");
    c.handle_bytes(t0, &invoke(2, OBJ, Some("renew"), Some(args.clone())));
    assert_eq!(the_call(&actions(&mut c)).args, args);
}

#[test]
fn an_unanswered_call_times_out_with_status_7_exactly_at_its_deadline() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let t1 = t0 + Duration::from_secs(3);
    c.handle_bytes(t1, &invoke(2, OBJ, Some("status"), Some(Table::new())));
    let call = the_call(&actions(&mut c));
    assert_eq!(c.poll_timeout(), Some(t1 + CALL_TIMEOUT));
    c.handle_timeout(t1 + CALL_TIMEOUT - Duration::from_millis(1));
    assert!(actions(&mut c).is_empty());
    c.handle_timeout(t1 + CALL_TIMEOUT);
    let out = sent(&actions(&mut c));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status(), Some(Status::Timeout.code()));
    assert_eq!(c.poll_timeout(), None);
    // The daemon's late answer goes nowhere.
    c.reply(call.id, Reply::ok(Table::new()));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.counters().timed_out, 1);
    assert_eq!(c.counters().stale_replies, 1);
}

#[test]
fn calls_beyond_the_pending_limit_are_refused_at_once() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    for seq in 0..MAX_PENDING_CALLS as u16 {
        c.handle_bytes(
            t0,
            &invoke(seq + 10, OBJ, Some("status"), Some(Table::new())),
        );
        the_call(&actions(&mut c));
    }
    c.handle_bytes(t0, &invoke(1000, OBJ, Some("status"), Some(Table::new())));
    let out = sent(&actions(&mut c));
    assert_eq!(out[0].status(), Some(Status::NoMemory.code()));
    assert_eq!(c.counters().overloaded, 1);
}

#[test]
fn a_silent_ubusd_is_given_up_after_the_handshake_timeout() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    connect(&mut c, t0);
    assert_eq!(c.poll_timeout(), Some(t0 + HANDSHAKE_TIMEOUT));
    c.handle_timeout(t0 + HANDSHAKE_TIMEOUT);
    assert_eq!(
        actions(&mut c),
        vec![Action::Disconnect(Disconnect::HandshakeTimeout)]
    );
    // The driver reports the close; the retry is not pushed back further.
    c.handle_closed(t0 + HANDSHAKE_TIMEOUT);
    assert_eq!(
        c.poll_timeout(),
        Some(t0 + HANDSHAKE_TIMEOUT + RECONNECT_MIN)
    );

    // Same when HELLO came but ADD_OBJECT is never answered.
    let t1 = t0 + Duration::from_secs(60);
    connect(&mut c, t1);
    c.handle_bytes(t1, &hello());
    let _ = actions(&mut c);
    assert_eq!(c.poll_timeout(), Some(t1 + HANDSHAKE_TIMEOUT));
    c.handle_timeout(t1 + HANDSHAKE_TIMEOUT);
    assert_eq!(
        actions(&mut c),
        vec![Action::Disconnect(Disconnect::HandshakeTimeout)]
    );
}

#[test]
fn reconnects_back_off_doubling_up_to_the_cap_and_reset_after_success() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..10 {
        c.handle_timeout(now);
        assert_eq!(actions(&mut c), vec![Action::Connect]);
        c.handle_connect_failed(now);
        let next = c.poll_timeout().unwrap();
        delays.push(next - now);
        now = next;
    }
    let ms: Vec<u128> = delays.iter().map(|d| d.as_millis()).collect();
    assert_eq!(
        ms,
        [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    );
    // Early timer calls do nothing.
    c.handle_timeout(now - Duration::from_millis(1));
    assert!(actions(&mut c).is_empty());
    connect(&mut c, now);
    c.handle_bytes(now, &hello());
    c.handle_bytes(now, &registration_answer(1));
    let _ = actions(&mut c);
    c.handle_closed(now);
    assert_eq!(c.poll_timeout(), Some(now + RECONNECT_MIN));
}

#[test]
fn after_ubusd_restarts_everything_is_registered_again_and_old_calls_are_void() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let _ = c.publish_event("b4.state", Table::new());
    let _ = actions(&mut c);
    c.handle_bytes(t0, &invoke(9, OBJ, Some("status"), Some(Table::new())));
    let old_call = the_call(&actions(&mut c));

    let t1 = t0 + Duration::from_secs(1);
    c.handle_closed(t1);
    assert!(!c.is_ready());
    assert_eq!(c.object_id(0), None);
    assert_eq!(c.poll_timeout(), Some(t1 + RECONNECT_MIN));
    connect(&mut c, t1 + RECONNECT_MIN);
    c.handle_bytes(t1, &msg(MsgType::Hello, 0, 0x1234_5678, vec![]));
    let out = sent(&actions(&mut c));
    // A new connection numbers its requests from 1 again, as libubus does.
    assert_eq!(out[0].header, Header::new(MsgType::AddObject, 1, 0));
    let mut answer = msg(
        MsgType::Data,
        1,
        0,
        vec![Attr::ObjId(77), Attr::ObjType(78)],
    );
    answer.extend(msg(MsgType::Status, 1, 0, vec![Attr::Status(0)]));
    c.handle_bytes(t1, &answer);
    assert_eq!(
        actions(&mut c),
        vec![Action::Registered {
            object: 0,
            id: 77,
            type_id: 78
        }]
    );
    assert_eq!(c.counters().registrations, 2);
    c.reply(old_call.id, Reply::ok(Table::new()));
    assert!(
        actions(&mut c).is_empty(),
        "a reply to a call of the old connection"
    );
    // Calls to the old id now get NOT_FOUND; to the new one they work.
    c.handle_bytes(t1, &invoke(2, OBJ, Some("status"), Some(Table::new())));
    assert_eq!(sent(&actions(&mut c))[0].status(), Some(4));
    c.handle_bytes(t1, &invoke(3, 77, Some("status"), Some(Table::new())));
    the_call(&actions(&mut c));
}

#[test]
fn a_refused_registration_is_retried_with_backoff() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    connect(&mut c, t0);
    c.handle_bytes(t0, &hello());
    let _ = actions(&mut c);
    c.handle_bytes(t0, &msg(MsgType::Status, 1, 0, vec![Attr::Status(2)]));
    assert_eq!(
        actions(&mut c),
        vec![
            Action::RegistrationFailed {
                object: 0,
                status: Status::InvalidArgument
            },
            Action::Disconnect(Disconnect::Refused),
        ]
    );
    c.handle_closed(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + RECONNECT_MIN));
}

#[test]
fn events_go_to_the_event_object_and_are_dropped_while_disconnected() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    assert!(!c.publish_event("b4.state", Table::new()));
    assert_eq!(c.counters().events_dropped, 1);

    let mut c = ready(t0);
    let data = Table::new().with("state", "up");
    assert!(c.publish_event("b4.state", data.clone()));
    let out = sent(&actions(&mut c));
    assert_eq!(
        out,
        vec![Message::new(
            MsgType::Invoke,
            2,
            EVENT_OBJECT,
            vec![
                Attr::ObjId(EVENT_OBJECT),
                Attr::Method("send".into()),
                Attr::Data(Table::new().with("id", "b4.state").with("data", data)),
            ]
        )]
    );
    c.handle_bytes(
        t0,
        &msg(MsgType::Status, 2, EVENT_OBJECT, vec![Attr::Status(0)]),
    );
    assert!(c.publish_event("ubus.forbidden", Table::new()));
    let _ = actions(&mut c);
    c.handle_bytes(
        t0,
        &msg(MsgType::Status, 3, EVENT_OBJECT, vec![Attr::Status(6)]),
    );
    assert_eq!(c.counters().events_refused, 1);
    assert_eq!(c.counters().unexpected, 0);
}

#[test]
fn garbage_is_counted_and_an_impossible_length_drops_the_connection() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    // Version 1: libubus drops it.
    let mut v1 = invoke(2, OBJ, Some("status"), Some(Table::new()));
    v1[0] = 1;
    c.handle_bytes(t0, &v1);
    // A NOTIFY about subscribers: nothing to do.
    c.handle_bytes(
        t0,
        &msg(
            MsgType::Notify,
            1,
            0,
            vec![Attr::ObjId(OBJ), Attr::Active(true)],
        ),
    );
    // A reply to nothing.
    c.handle_bytes(t0, &msg(MsgType::Status, 99, 0, vec![Attr::Status(0)]));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.counters().bad_version, 1);
    assert_eq!(c.counters().unexpected, 1);
    // Container length 3 (< its own header): cannot resynchronise.
    c.handle_bytes(t0, &[0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(
        actions(&mut c),
        vec![Action::Disconnect(Disconnect::Framing(
            WireError::BadLength
        ))]
    );
    assert!(!c.is_ready());
    // More bytes on the dead connection are ignored.
    c.handle_bytes(t0, &hello());
    assert!(actions(&mut c).is_empty());
}

#[test]
fn a_driver_that_stops_writing_causes_a_reconnect_not_unbounded_memory() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    for _ in 0..MAX_QUEUED_ACTIONS + 1 {
        c.publish_event("b4.state", Table::new());
    }
    let acts = actions(&mut c);
    assert!(acts.len() <= MAX_QUEUED_ACTIONS + 1, "{}", acts.len());
    c.handle_bytes(t0, &invoke(2, OBJ, Some("status"), Some(Table::new())));
    for _ in 0..MAX_QUEUED_ACTIONS + 1 {
        c.handle_bytes(t0, &invoke(2, 0xdead, Some("status"), Some(Table::new())));
    }
    let acts = actions(&mut c);
    assert_eq!(acts, vec![Action::Disconnect(Disconnect::Backlog)]);
    c.handle_closed(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + RECONNECT_MIN));
}

#[test]
fn display_is_compact_json() {
    let t = Table::new()
        .with("s", "a\"b\\\n")
        .with("n", Value::int(-5))
        .with("big", Value::int(1 << 40))
        .with("ok", true)
        .with("list", Value::Array(vec![Value::Null, Value::Double(1.5)]))
        .with("t", Table::new());
    assert_eq!(
        t.to_string(),
        r#"{"s":"a\"b\\\n","n":-5,"big":1099511627776,"ok":true,"list":[null,1.5],"t":{}}"#
    );
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<String>().prop_map(|s| Value::String(s.replace('\0', ""))),
        any::<i64>().prop_map(Value::Int64),
        any::<i32>().prop_map(Value::Int32),
        any::<i16>().prop_map(Value::Int16),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |d| !d.is_nan())
            .prop_map(Value::Double),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,8}", inner), 0..4)
                .prop_map(|members| Value::Table(Table(members))),
        ]
    })
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics_and_what_decodes_re_encodes_stably(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        let _ = frame_len(&bytes);
        let _ = Table::decode_body(&bytes);
        if let Ok(msg) = Message::decode(&bytes) {
            let again = Message::decode(&msg.encode()).expect("own encoding decodes");
            prop_assert_eq!(again, msg);
        }
    }

    #[test]
    fn decoding_mutated_messages_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
    ) {
        let mut bytes = Message::new(
            MsgType::Invoke, 2, CALLER,
            vec![Attr::ObjId(OBJ), Attr::Method("status".into()),
                 Attr::Data(Table::new().with("a", Table::new().with("b", Value::Array(vec![1.into()]))))],
        ).encode();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn any_table_survives_the_wire(members in prop::collection::vec(("[a-z_]{0,12}", value_strategy()), 0..6)) {
        let table = Table(members);
        prop_assert_eq!(Table::decode_body(&table.encode_body()), Ok(table));
    }

    #[test]
    fn the_connection_takes_arbitrary_bytes_in_every_phase(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        phase in 0u8..3,
    ) {
        let t0 = Instant::now();
        let mut c = match phase {
            0 => {
                let mut c = Connection::new(vec![spec()], t0);
                connect(&mut c, t0);
                c
            }
            1 => {
                let mut c = Connection::new(vec![spec()], t0);
                connect(&mut c, t0);
                c.handle_bytes(t0, &hello());
                c
            }
            _ => ready(t0),
        };
        for chunk in chunks {
            c.handle_bytes(t0, &chunk);
            while let Some(a) = c.poll_action() {
                if let Action::Call(call) = a {
                    c.reply(call.id, Reply::ok(Table::new()));
                }
            }
        }
        c.handle_timeout(t0 + CALL_TIMEOUT);
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_without_recursion_trouble() {
    // 10 000 nested arrays: a naive recursive decoder would blow the stack.
    let depth = 10_000usize;
    let mut body = Vec::new();
    for i in 0..depth {
        let remaining = (depth - i) * 8;
        body.extend_from_slice(&(0x8100_0000u32 | remaining as u32).to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    assert_eq!(Table::decode_body(&body), Err(WireError::TooDeep));
}

#[test]
fn replies_and_events_too_big_for_one_message_are_not_sent() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let huge = Table::new().with("blob", "x".repeat(MAX_MSG_LEN));
    c.handle_bytes(t0, &invoke(2, OBJ, Some("status"), Some(Table::new())));
    let call = the_call(&actions(&mut c));
    c.reply(call.id, Reply::ok(huge.clone()));
    let out = sent(&actions(&mut c));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status(), Some(Status::UnknownError.code()));
    assert!(!c.publish_event("b4.state", huge));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.counters().oversized, 2);
}

// Calls to other objects (b4d as a caller, like `ubus call`).

const NETIFD: u32 = 0x1b2c_3d4e;

fn lookup_answer(seq: u16, path: &str, object: u32) -> Vec<u8> {
    let mut b = msg(
        MsgType::Data,
        seq,
        0,
        vec![
            Attr::ObjPath(path.into()),
            Attr::ObjId(object),
            Attr::ObjType(TYPE),
            Attr::Signature(Table::new()),
        ],
    );
    b.extend(msg(MsgType::Status, seq, 0, vec![Attr::Status(0)]));
    b
}

fn answered(actions: &[Action]) -> Vec<(OutgoingId, CallResult)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Answered { id, result } => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_call_to_another_object_is_lookup_then_invoke_to_its_id_and_returns_its_data() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let args = Table::new().with("action", 0).with("interface", "wan6");
    let id = c.call(t0, "network.interface", "notify_proto", args.clone());
    let acts = actions(&mut c);
    assert_eq!(
        sent(&acts),
        vec![Message::new(
            MsgType::Lookup,
            2,
            0,
            vec![Attr::ObjPath("network.interface".into())]
        )]
    );
    c.handle_bytes(t0, &lookup_answer(2, "network.interface", NETIFD));
    let acts = actions(&mut c);
    assert_eq!(
        sent(&acts),
        vec![Message::new(
            MsgType::Invoke,
            3,
            NETIFD,
            vec![
                Attr::ObjId(NETIFD),
                Attr::Method("notify_proto".into()),
                Attr::Data(args)
            ]
        )]
    );
    let reply = Table::new().with("ok", true);
    let mut answer = msg(
        MsgType::Data,
        3,
        NETIFD,
        vec![Attr::ObjId(NETIFD), Attr::Data(reply.clone())],
    );
    answer.extend(msg(
        MsgType::Status,
        3,
        NETIFD,
        vec![Attr::Status(0), Attr::ObjId(NETIFD)],
    ));
    c.handle_bytes(t0, &answer);
    assert_eq!(answered(&actions(&mut c)), vec![(id, Ok(Some(reply)))]);
    assert_eq!(c.poll_timeout(), None, "nothing left to wait for");
}

#[test]
fn a_missing_object_or_a_refused_call_ends_the_call_with_that_status() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let missing = c.call(t0, "network.interface", "notify_proto", Table::new());
    let _ = actions(&mut c);
    // Trace 03c: an unknown path is STATUS 4 without DATA, and no INVOKE follows.
    c.handle_bytes(t0, &msg(MsgType::Status, 2, 0, vec![Attr::Status(4)]));
    let acts = actions(&mut c);
    assert!(sent(&acts).is_empty());
    assert_eq!(answered(&acts), vec![(missing, Err(Status::NotFound))]);

    let refused = c.call(t0, "network.interface", "notify_proto", Table::new());
    let _ = actions(&mut c);
    c.handle_bytes(t0, &lookup_answer(3, "network.interface", NETIFD));
    let _ = actions(&mut c);
    // netifd answers 6 when the interface is being torn down.
    c.handle_bytes(
        t0,
        &msg(
            MsgType::Status,
            4,
            NETIFD,
            vec![Attr::Status(6), Attr::ObjId(NETIFD)],
        ),
    );
    assert_eq!(
        answered(&actions(&mut c)),
        vec![(refused, Err(Status::PermissionDenied))]
    );
}

#[test]
fn answers_from_the_wrong_peer_or_seq_are_not_taken_for_ours() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let id = c.call(t0, "network.interface", "notify_proto", Table::new());
    let _ = actions(&mut c);
    c.handle_bytes(t0, &lookup_answer(2, "network.interface", NETIFD));
    let _ = actions(&mut c);
    // A STATUS with our seq from another peer, and one with another seq.
    c.handle_bytes(t0, &msg(MsgType::Status, 3, CALLER, vec![Attr::Status(0)]));
    c.handle_bytes(t0, &msg(MsgType::Status, 9, NETIFD, vec![Attr::Status(0)]));
    assert!(answered(&actions(&mut c)).is_empty());
    assert_eq!(c.counters().unexpected, 2);
    c.handle_bytes(t0, &msg(MsgType::Status, 3, NETIFD, vec![Attr::Status(0)]));
    assert_eq!(answered(&actions(&mut c)), vec![(id, Ok(None))]);
}

#[test]
fn a_call_without_ubusd_fails_at_once_and_one_in_flight_fails_when_ubusd_goes() {
    let t0 = Instant::now();
    let mut c = Connection::new(vec![spec()], t0);
    let early = c.call(t0, "network.interface", "notify_proto", Table::new());
    assert_eq!(
        answered(&actions(&mut c)),
        vec![(early, Err(Status::ConnectionFailed))]
    );

    let mut c = ready(t0);
    let in_flight = c.call(t0, "network.interface", "notify_proto", Table::new());
    let _ = actions(&mut c);
    c.handle_closed(t0);
    assert_eq!(
        answered(&actions(&mut c)),
        vec![(in_flight, Err(Status::ConnectionFailed))]
    );
}

#[test]
fn an_unanswered_outgoing_call_times_out_at_its_deadline() {
    let t0 = Instant::now();
    let mut c = ready(t0);
    let id = c.call(t0, "network.interface", "notify_proto", Table::new());
    let _ = actions(&mut c);
    assert_eq!(c.poll_timeout(), Some(t0 + CALL_TIMEOUT));
    c.handle_timeout(t0 + CALL_TIMEOUT - Duration::from_millis(1));
    assert!(answered(&actions(&mut c)).is_empty());
    c.handle_timeout(t0 + CALL_TIMEOUT);
    assert_eq!(answered(&actions(&mut c)), vec![(id, Err(Status::Timeout))]);
    // A late answer is someone else's business now.
    c.handle_bytes(t0, &lookup_answer(2, "network.interface", NETIFD));
    assert!(sent(&actions(&mut c)).is_empty());
}
