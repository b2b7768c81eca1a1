//! Talking to b4d's `b4` object as ubusd would, over the replay peer's unix
//! socket: register the object, then call its methods and read the replies.

use std::time::Duration;

use super::secs;
use super::ubusd_replay::UbusdReplay;
use b4d::ubus::wire::{Attr, Message, MsgType, Table};

/// The ids this fake ubusd hands out.
pub const CLIENT_ID: u32 = 0x1234_5678;
pub const OBJ: u32 = 0x4488_dc95;
pub const CALLER: u32 = 0x6774_8656;

/// Accepts b4d's connection, says HELLO, and accepts its ADD_OBJECT (which
/// is returned for inspection).
pub fn register(peer: &mut UbusdReplay, client_id: u32) -> Message {
    peer.accept(secs(10));
    peer.send(&Message::new(MsgType::Hello, 0, client_id, vec![]).encode());
    let add = Message::decode(&peer.read_message(secs(5)).expect("ADD_OBJECT")).unwrap();
    let mut answer = Message::new(
        MsgType::Data,
        add.header.seq,
        0,
        vec![Attr::ObjId(OBJ), Attr::ObjType(0x8255_2723)],
    )
    .encode();
    answer.extend(Message::new(MsgType::Status, add.header.seq, 0, vec![Attr::Status(0)]).encode());
    peer.send(&answer);
    add
}

/// The INVOKE ubusd sends b4d for a call of `b4`'s `method` by root.
pub fn invoke_message(seq: u16, method: &str, args: Table) -> Vec<u8> {
    Message::new(
        MsgType::Invoke,
        seq,
        CALLER,
        vec![
            Attr::ObjId(OBJ),
            Attr::Method(method.into()),
            Attr::User("root".into()),
            Attr::Group("root".into()),
            Attr::Data(args),
        ],
    )
    .encode()
}

/// Calls `method` on `b4` as root and returns every reply up to the STATUS.
pub fn invoke(peer: &mut UbusdReplay, seq: u16, method: &str, args: Table) -> Vec<Message> {
    invoke_within(peer, seq, method, args, Duration::from_secs(5))
}

pub fn invoke_within(
    peer: &mut UbusdReplay,
    seq: u16,
    method: &str,
    args: Table,
    timeout: Duration,
) -> Vec<Message> {
    peer.send(&invoke_message(seq, method, args));
    let mut replies = Vec::new();
    loop {
        let bytes = peer
            .read_message(timeout)
            .unwrap_or_else(|| panic!("{method}: no reply"));
        let m = Message::decode(&bytes).expect("reply decodes");
        // b4d's own `b4.state` events (INVOKE "send" on ubusd's object)
        // may come in between; they are not replies.
        if m.header.kind() == Some(MsgType::Invoke) {
            continue;
        }
        assert_eq!((m.header.seq, m.header.peer), (seq, CALLER), "{method}");
        assert_eq!(m.obj_id(), Some(OBJ), "{method}");
        let done = m.header.kind() == Some(MsgType::Status);
        replies.push(m);
        if done {
            return replies;
        }
    }
}

/// The data table of a successful call.
pub fn call(peer: &mut UbusdReplay, seq: u16, method: &str, timeout: Duration) -> Table {
    let replies = invoke_within(peer, seq, method, Table::new(), timeout);
    assert_eq!(
        replies.last().and_then(|m| m.status()),
        Some(0),
        "{method}: {replies:?}"
    );
    replies[0].data().expect("data").clone()
}
