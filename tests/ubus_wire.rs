//! Golden-vector tests of the ubus codec: every message recorded from OpenWrt's
//! ubusd (`../shared/ubus-traces/`: every scenario file and both proxies' raw
//! logs) decodes to what the recorder decoded, and encodes back to the very
//! same bytes.

mod support;

use b4d::ubus::wire::{frame_len, Attr, Message, Table, Value};
use serde_json::Value as Json;
use support::ubus_traces::{self, TraceMsg};

fn json_i64(j: &Json) -> i64 {
    j.as_i64().unwrap_or_else(|| panic!("not an integer: {j}"))
}

/// Compares a decoded blobmsg table/array body with the recorder's `typed` list.
fn check_typed(values: &[(String, Value)], typed: &Json, at: &str) {
    let typed = typed
        .as_array()
        .unwrap_or_else(|| panic!("{at}: typed not a list"));
    assert_eq!(values.len(), typed.len(), "{at}: member count");
    for ((name, value), t) in values.iter().zip(typed) {
        let at = format!("{at}.{name}");
        assert_eq!(name, t["name"].as_str().unwrap_or(""), "{at}: name");
        assert_eq!(
            value.blob_type() as i64,
            json_i64(&t["type_id"]),
            "{at}: blobmsg type"
        );
        let v = &t["value"];
        match value {
            Value::Table(inner) => check_typed(&inner.0, v, &at),
            Value::Array(items) => {
                let named: Vec<(String, Value)> =
                    items.iter().map(|i| (String::new(), i.clone())).collect();
                check_typed(&named, v, &at)
            }
            Value::String(s) => assert_eq!(Some(s.as_str()), v.as_str(), "{at}"),
            Value::Int64(n) => assert_eq!(*n, json_i64(v), "{at}"),
            Value::Int32(n) => assert_eq!(i64::from(*n), json_i64(v), "{at}"),
            Value::Int16(n) => assert_eq!(i64::from(*n), json_i64(v), "{at}"),
            Value::Bool(b) => assert_eq!(i64::from(*b), json_i64(v), "{at}"),
            Value::Double(d) => assert_eq!(Some(*d), v.as_f64(), "{at}"),
            Value::Null => assert!(v.is_null(), "{at}"),
        }
    }
}

/// Compares a decoded message with what the recorder wrote about it.
fn check_against_recorder(msg: &Message, rec: &TraceMsg, at: &str) {
    let j = &rec.json;
    assert_eq!(
        i64::from(msg.header.msg_type),
        json_i64(&j["type_id"]),
        "{at}: type"
    );
    assert_eq!(i64::from(msg.header.seq), json_i64(&j["seq"]), "{at}: seq");
    assert_eq!(
        i64::from(msg.header.peer),
        json_i64(&j["peer"]),
        "{at}: peer"
    );
    let attrs = j["attrs"].as_array().expect("attrs");
    assert_eq!(msg.attrs.len(), attrs.len(), "{at}: attribute count");
    for (attr, ja) in msg.attrs.iter().zip(attrs) {
        let at = format!("{at} {}", ja["name"]);
        assert_eq!(i64::from(attr.id()), json_i64(&ja["id"]), "{at}: id");
        let v = &ja["value"];
        match attr {
            Attr::Status(s) => assert_eq!(i64::from(*s), json_i64(v), "{at}"),
            Attr::ObjId(n) | Attr::ObjType(n) | Attr::Target(n) => {
                assert_eq!(i64::from(*n), json_i64(v), "{at}")
            }
            Attr::ObjPath(s) | Attr::Method(s) | Attr::User(s) | Attr::Group(s) => {
                assert_eq!(Some(s.as_str()), v.as_str(), "{at}")
            }
            Attr::Active(b) | Attr::NoReply(b) => assert_eq!(i64::from(*b), json_i64(v), "{at}"),
            Attr::Subscribers(ids) => {
                let want: Vec<i64> = v.as_array().expect("list").iter().map(json_i64).collect();
                let got: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
                assert_eq!(got, want, "{at}");
            }
            Attr::Data(t) | Attr::Signature(t) => {
                check_typed(&t.0, &ja["typed"], &at);
                // The JSON-ish Display is the recorder's compact JSON.
                assert_eq!(t.to_string(), serde_json::to_string(v).unwrap(), "{at}");
            }
            Attr::Raw { .. } => panic!("{at}: recorded attribute did not decode: {attr:?}"),
        }
    }
}

fn check_round_trip(rec: &TraceMsg, at: &str) -> Message {
    assert_eq!(
        frame_len(&rec.bytes),
        Ok(Some(rec.bytes.len())),
        "{at}: frame length"
    );
    let msg = Message::decode(&rec.bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(
        support::hex(&msg.encode()),
        support::hex(&rec.bytes),
        "{at}: re-encoding differs"
    );
    msg
}

#[test]
fn every_recorded_message_decodes_as_recorded_and_reencodes_byte_exact() {
    let Some(dir) = ubus_traces::traces_dir() else {
        return;
    };
    let mut count = 0;
    for file in ubus_traces::trace_files(&dir) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for rec in ubus_traces::load_file(&file) {
            let at = format!("{name} #{}", rec.n);
            let msg = check_round_trip(&rec, &at);
            check_against_recorder(&msg, &rec, &at);
            count += 1;
        }
    }
    // 558 messages in the 21 scenario files (README: 01 … 99).
    assert!(count >= 558, "only {count} messages found");
}

#[test]
fn every_message_in_the_raw_proxy_logs_round_trips() {
    let Some(dir) = ubus_traces::traces_dir() else {
        return;
    };
    let raw = ubus_traces::raw_messages(&dir);
    assert!(raw.len() >= 288, "only {} raw messages", raw.len());
    for (i, rec) in raw.iter().enumerate() {
        check_round_trip(rec, &format!("raw {} {i}", rec.conn));
    }
}

/// DATA and STATUS often arrive in one read: a connection's whole stream,
/// cut into arbitrary pieces, frames back into exactly the recorded messages.
#[test]
fn a_recorded_stream_frames_back_into_its_messages_whatever_the_reads() {
    let Some(dir) = ubus_traces::traces_dir() else {
        return;
    };
    let msgs = ubus_traces::load(&dir, "99-");
    let server_in: Vec<&TraceMsg> = ubus_traces::of_conn(&msgs, "p1")
        .into_iter()
        .filter(|m| !m.to_ubusd)
        .collect();
    let stream: Vec<u8> = server_in.iter().flat_map(|m| m.bytes.clone()).collect();
    for piece in [1usize, 3, 7, 12, 13, 4096] {
        let mut buf = Vec::new();
        let mut framed = Vec::new();
        for chunk in stream.chunks(piece) {
            buf.extend_from_slice(chunk);
            while let Ok(Some(len)) = frame_len(&buf) {
                if buf.len() < len {
                    break;
                }
                framed.push(buf.drain(..len).collect::<Vec<u8>>());
            }
        }
        assert!(buf.is_empty(), "piece {piece}: {} bytes left", buf.len());
        let want: Vec<&Vec<u8>> = server_in.iter().map(|m| &m.bytes).collect();
        assert_eq!(framed.iter().collect::<Vec<_>>(), want, "piece {piece}");
    }
}

/// The README's hand-decoded examples from trace 02, built with the encoder.
#[test]
fn readme_examples_encode_exactly() {
    let cases: [(&str, Value, &str); 4] = [
        ("state", "up".into(), "8300000f0005737461746500757000 00"),
        (
            "rx_bytes",
            Value::int(12_345_678_901),
            "84000018000872785f6279746573000000000002dfdc1c35",
        ),
        ("ok", true.into(), "8700000d0002 6f6b 00 000000 01 000000"),
        (
            "addresses",
            Value::Array(vec!["2001:db8:ffff::1".into()]),
            "8100002c000961646472657373657300 83000019000000003230 30313a6462383a666666663a3a3100 000000",
        ),
    ];
    for (name, value, hex) in cases {
        let table = Table::new().with(name, value);
        let want = support::parse_hex(hex);
        assert_eq!(
            support::hex(&table.encode_body()),
            support::hex(&want),
            "{name}"
        );
        assert_eq!(Table::decode_body(&want).unwrap(), table, "{name}");
    }
}
