//! The b4d binary and ubus: without ubusd it keeps running and retries quietly;
//! when a ubusd appears it publishes `b4` with its methods and answers calls
//! (here the ubusd side is the replay peer, speaking the recorded protocol).

mod support;

use std::time::Duration;

use b4d::ubus::wire::{Attr, Message, MsgType, Table, Value};
use support::ubus_peer::{invoke, CLIENT_ID, OBJ};
use support::ubusd_replay::UbusdReplay;
use support::{secs, Process, Signal, TestDir};

/// b4d with nothing that needs the network: DHCPv6 off (a manual AFTR), ubus on.
fn start_b4d(dir: &TestDir, ubus: bool) -> Process {
    let socket = dir.file("ubus.sock");
    let config = dir.write(
        "b4d.uci",
        format!(
            "config globals 'globals'\n\toption state_dir '{}'\n\toption ubus '{}'\n\
             \toption ubus_socket '{}'\n\
             config wan 'wan'\n\toption dhcpv6 'off'\n\toption aftr '2001:db8::1'\n\
             config lan 'lan'\n\toption dns_proxy '0'\n\toption lease_file '{}/b4d.leases'\n",
            dir.path().display(),
            u8::from(ubus),
            socket.display(),
            dir.path().display()
        ),
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_b4d"));
    cmd.args(["run", "--foreground", "--config"]).arg(&config);
    Process::spawn(dir, "b4d", cmd)
}

#[test]
fn b4d_waits_quietly_for_ubusd_then_publishes_b4_and_answers_calls() {
    let dir = TestDir::new("waits_then_publishes");
    let b4d = start_b4d(&dir, true);
    b4d.wait_for_line("ubus: cannot connect to", secs(5));
    // Several retries happen in 2.5 s (0.25, 0.5, 1 s backoff), one line says so.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        b4d.is_running(),
        "b4d exited without ubusd:\n{}",
        b4d.tail(20)
    );
    assert_eq!(b4d.count_matching("ubus: cannot connect to"), 1);

    // ubusd appears.
    let mut peer = UbusdReplay::listen(&dir.file("ubus.sock"));
    peer.accept(secs(10));
    peer.send(&Message::new(MsgType::Hello, 0, CLIENT_ID, vec![]).encode());
    let add = Message::decode(&peer.read_message(secs(5)).expect("ADD_OBJECT")).unwrap();
    assert_eq!(
        add.header,
        Message::new(MsgType::AddObject, 1, 0, vec![]).header
    );
    let [Attr::ObjPath(path), Attr::Signature(signature)] = &add.attrs[..] else {
        panic!("ADD_OBJECT attributes: {:?}", add.attrs);
    };
    assert_eq!(path, "b4");
    assert_eq!(
        signature.to_string(),
        r#"{"status":{},"leases":{},"renew":{"reason":3},"check":{},"reload":{},"netifd_setup":{"interface":3},"netifd_teardown":{"interface":3}}"#
    );
    let mut answer = Message::new(
        MsgType::Data,
        1,
        0,
        vec![Attr::ObjId(OBJ), Attr::ObjType(0x8255_2723)],
    )
    .encode();
    answer.extend(Message::new(MsgType::Status, 1, 0, vec![Attr::Status(0)]).encode());
    peer.send(&answer);
    b4d.wait_for_line("ubus: object b4 registered as id 0x4488dc95", secs(5));

    // `status`, called through rpcd (with the session argument LuCI's calls carry).
    let args = Table::new().with("ubus_rpc_session", "0123456789abcdef0123456789abcdef");
    let replies = invoke(&mut peer, 2, "status", args);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[1].status(), Some(0));
    let status = replies[0].data().expect("status data");
    // No device called `wan` on this machine: down, and the reason says so.
    assert_eq!(status.get("state"), Some(&Value::from("down")));
    assert_eq!(
        status.get("reason"),
        Some(&Value::from("WAN device wan does not exist"))
    );
    assert!(
        status.get("tunnel").is_some() && status.get("aftr").is_some(),
        "{status}"
    );
    assert_eq!(
        status.get("version"),
        Some(&Value::from(env!("CARGO_PKG_VERSION")))
    );
    assert!(
        matches!(status.get("uptime"), Some(Value::Int32(s)) if (2..60).contains(s)),
        "{status}"
    );

    // `leases`: a table with a list (empty until the DHCPv4 server exists).
    let replies = invoke(&mut peer, 3, "leases", Table::new());
    assert_eq!(replies[0].data().unwrap().to_string(), r#"{"leases":[]}"#);
    // `renew` with DHCPv6 off still re-resolves the AFTR (here a configured
    // address, so there is nothing to look up, but the request is taken).
    let replies = invoke(&mut peer, 4, "renew", Table::new());
    assert_eq!(replies.last().unwrap().status(), Some(0), "renew");
    // `check` without a WAN: every check skipped, with the reason.
    let replies = invoke(&mut peer, 5, "check", Table::new());
    let checks = replies[0].data().expect("check data").to_string();
    assert!(
        checks.contains(
            r#""name":"aftr_reachable","skipped":true,"detail":"WAN device wan does not exist""#
        ),
        "{checks}"
    );
    // `reload` re-reads the file; unchanged, nothing restarts.
    let replies = invoke(&mut peer, 6, "reload", Table::new());
    assert_eq!(replies.last().unwrap().status(), Some(0));
    b4d.wait_for_line("reload: configuration unchanged", secs(5));
    // Unknown method: 3, as libubus answers.
    let replies = invoke(&mut peer, 7, "nosuch", Table::new());
    assert_eq!(replies[0].status(), Some(3));

    // ubusd goes away: b4d stays up and comes back to the new one.
    peer.kill();
    b4d.wait_for_line("ubus: connection to ubusd lost", secs(5));
    peer.start();
    peer.accept(secs(10));
    peer.send(&Message::new(MsgType::Hello, 0, CLIENT_ID + 1, vec![]).encode());
    let again = Message::decode(&peer.read_message(secs(5)).expect("ADD_OBJECT")).unwrap();
    assert_eq!(again, add, "re-registration is the same request");

    b4d.signal(Signal::Term);
    assert!(b4d.wait_exit(secs(10)).success(), "{}", b4d.tail(20));
}

#[test]
fn with_ubus_off_b4d_never_connects() {
    let dir = TestDir::new("ubus_off");
    let b4d = start_b4d(&dir, false);
    b4d.wait_for_line("ubus is off", secs(5));
    let peer_socket = dir.file("ubus.sock");
    let mut peer = UbusdReplay::listen(&peer_socket);
    std::thread::sleep(Duration::from_millis(500));
    peer.expect_no_client();
    b4d.signal(Signal::Term);
    assert!(b4d.wait_exit(secs(10)).success(), "{}", b4d.tail(20));
}
