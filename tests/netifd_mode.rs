//! OpenWrt mode: b4d hands the WAN's DHCPv6 results to netifd with
//! `ubus call network.interface notify_proto`, as odhcp6c's protocol handler
//! does. The DHCPv6 server is a real kea-dhcp6 in a namespace; ubusd and
//! netifd are played by the replay peer over a real unix socket, which checks
//! every call b4d makes byte for byte: acquire, renew with a changed prefix
//! (the old one deprecated, not dropped), netifd restarting the interface,
//! netifd tearing it down (b4d quiet until the next setup), and the lease
//! lost.
//!
//! Not run here: netifd itself (Debian has none). What netifd does with the
//! message is read from its source (proto-shell.c, proto.c): see src/netifd/.

mod support;

use std::time::{Duration, Instant};

use b4d::ubus::wire::{Attr, Message, MsgType, Table, Value};
use support::ubus_peer::{self, CALLER, CLIENT_ID};
use support::ubusd_replay::UbusdReplay;
use support::*;

/// The id the fake ubusd gives netifd's `network.interface` object.
const NETIFD: u32 = 0x1b2c_3d4e;
/// ... and netifd's `network.interface.wan6`.
const NETIFD_WAN6: u32 = 0x1b2c_3d4f;
/// ubusd's event object (b4d's `b4.state` events go there).
const EVENT_OBJECT: u32 = 1;

/// Short lifetimes, so that losing the server loses the lease within the test.
fn isp(pd_pool: &str) -> Kea6Config {
    Kea6Config {
        pd_pool: Some((pd_pool.into(), 40, 56)),
        dns_servers: vec!["2001:db8::53".parse().unwrap()],
        domain_search: vec!["example.net".into()],
        renew_timer: 10,
        rebind_timer: 15,
        preferred_lifetime: 20,
        valid_lifetime: 30,
        ..Kea6Config::default()
    }
}

/// The CPE (b4d on `eth0`, MAC `mac`) and the ISP (kea serving `config`),
/// with b4d started and its ubus connection taken by the fake netifd.
struct Setup {
    _cpe: Netns,
    _isp: Netns,
    kea: Kea6Server,
    b4d: Process,
    netifd: FakeNetifd,
}

fn setup(dir: &TestDir, mac: &str, config: &Kea6Config) -> Setup {
    let cpe = Netns::new("cpe");
    let isp = Netns::new("isp");
    veth_pair(
        VethEnd::new(&cpe, "eth0").mac(mac),
        VethEnd::new(&isp, "eth0"),
    );
    let kea = Kea6Server::start(&isp, dir, "kea", config);
    kea.wait_ready();
    let b4d = cpe.spawn(
        dir,
        "b4d",
        env!("CARGO_BIN_EXE_b4d"),
        &["--foreground", "--config", &b4d_config(dir)],
    );
    let netifd = FakeNetifd::start(dir, wan6_status(false, true));
    Setup {
        _cpe: cpe,
        _isp: isp,
        kea,
        b4d,
        netifd,
    }
}

fn b4d_config(dir: &TestDir) -> String {
    let text = format!(
        "config globals 'globals'\n\
         \toption log_level 'debug'\n\
         \toption state_dir '{state}'\n\
         \toption ubus '1'\n\
         \toption ubus_socket '{socket}'\n\
         \toption ipv6_handoff 'netifd'\n\n\
         config wan 'wan'\n\
         \toption device 'eth0'\n\
         \toption netifd_interface 'wan6'\n\
         \toption lease_file '{dhcpv6}'\n\n\
         config tunnel 'tunnel'\n\
         \toption enabled '0'\n\n\
         config lan 'lan'\n\
         \toption dns_proxy '0'\n\
         \toption dhcp '0'\n",
        state = dir.path().display(),
        socket = dir.file("ubus.sock").display(),
        dhcpv6 = dir.file("b4d.dhcpv6").display(),
    );
    dir.write("b4d.uci", text).display().to_string()
}

/// What `ubus call network.interface.wan6 status` answers (the fields
/// netifd_handle_status puts first): at boot after the handler's setup
/// (pending), up, or down after `ifdown` (neither, autostart off).
fn wan6_status(up: bool, pending: bool) -> Table {
    Table::new()
        .with("up", up)
        .with("pending", pending)
        .with("available", true)
        .with("autostart", up || pending)
        .with("dynamic", false)
        .with("proto", "b4")
}

/// ubusd with netifd behind it, as far as b4d can tell.
struct FakeNetifd {
    peer: UbusdReplay,
    next_seq: u16,
    /// `notify_proto` calls answered so far.
    notifies: usize,
    /// What netifd says of wan6 when asked.
    wan6_status: Table,
}

impl FakeNetifd {
    /// Accepts b4d's connection and its `b4` object.
    fn start(dir: &TestDir, wan6_status: Table) -> FakeNetifd {
        let mut peer = UbusdReplay::listen(&dir.file("ubus.sock"));
        ubus_peer::register(&mut peer, CLIENT_ID);
        FakeNetifd {
            peer,
            next_seq: 100,
            notifies: 0,
            wan6_status,
        }
    }

    /// Answers what b4d sends; returns the first message `stop` picks (after
    /// answering it), or `None` after `timeout`.
    fn serve_until(
        &mut self,
        timeout: Duration,
        mut stop: impl FnMut(&Message) -> bool,
    ) -> Option<(Message, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let bytes = self.peer.read_message(left)?;
            let m = Message::decode(&bytes).expect("b4d's message decodes");
            let (seq, peer) = (m.header.seq, m.header.peer);
            match m.header.kind() {
                Some(MsgType::Lookup) => {
                    let (path, id, method) = match &m.attrs[..] {
                        [Attr::ObjPath(p)] if p == "network.interface" => {
                            (p, NETIFD, "notify_proto")
                        }
                        [Attr::ObjPath(p)] if p == "network.interface.wan6" => {
                            (p, NETIFD_WAN6, "status")
                        }
                        other => {
                            panic!("b4d looks up netifd's objects and nothing else: {other:?}")
                        }
                    };
                    let signature = Table::new().with(method, Table::new());
                    let mut answer = Message::new(
                        MsgType::Data,
                        seq,
                        0,
                        vec![
                            Attr::ObjPath(path.clone()),
                            Attr::ObjId(id),
                            Attr::ObjType(0x5eed_0001),
                            Attr::Signature(signature),
                        ],
                    )
                    .encode();
                    answer.extend(
                        Message::new(MsgType::Status, seq, 0, vec![Attr::Status(0)]).encode(),
                    );
                    self.peer.send(&answer);
                }
                Some(MsgType::Invoke) if peer == NETIFD => {
                    self.notifies += 1;
                    // netifd answers a notify with STATUS 0 only.
                    self.peer.send(
                        &Message::new(
                            MsgType::Status,
                            seq,
                            NETIFD,
                            vec![Attr::Status(0), Attr::ObjId(NETIFD)],
                        )
                        .encode(),
                    );
                }
                Some(MsgType::Invoke) if peer == NETIFD_WAN6 => {
                    assert!(
                        m.attrs.contains(&Attr::Method("status".into())),
                        "only status is asked of wan6: {m:?}"
                    );
                    let mut answer = Message::new(
                        MsgType::Data,
                        seq,
                        NETIFD_WAN6,
                        vec![
                            Attr::ObjId(NETIFD_WAN6),
                            Attr::Data(self.wan6_status.clone()),
                        ],
                    )
                    .encode();
                    answer.extend(
                        Message::new(
                            MsgType::Status,
                            seq,
                            NETIFD_WAN6,
                            vec![Attr::Status(0), Attr::ObjId(NETIFD_WAN6)],
                        )
                        .encode(),
                    );
                    self.peer.send(&answer);
                }
                Some(MsgType::Invoke) if peer == EVENT_OBJECT => {
                    self.peer.send(
                        &Message::new(MsgType::Status, seq, EVENT_OBJECT, vec![Attr::Status(0)])
                            .encode(),
                    );
                }
                _ => {}
            }
            if stop(&m) {
                return Some((m, bytes));
            }
        }
    }

    /// The next `notify_proto` b4d sends (answered with STATUS 0).
    fn next_notify(&mut self, timeout: Duration) -> (Table, Vec<u8>) {
        let (m, bytes) = self
            .serve_until(timeout, |m| {
                m.header.kind() == Some(MsgType::Invoke) && m.header.peer == NETIFD
            })
            .expect("a notify_proto from b4d");
        let Some(data) = m.data().cloned() else {
            panic!("notify_proto without DATA: {m:?}")
        };
        // The whole message is exactly INVOKE {OBJID, METHOD, DATA} to
        // netifd's object, as the ubus CLI sends it (trace 02).
        let want = Message::new(
            MsgType::Invoke,
            m.header.seq,
            NETIFD,
            vec![
                Attr::ObjId(NETIFD),
                Attr::Method("notify_proto".into()),
                Attr::Data(data.clone()),
            ],
        );
        assert_eq!(hex(&want.encode()), hex(&bytes), "notify_proto bytes");
        (data, bytes)
    }

    /// `ubus call b4 METHOD ARGS` as netifd's handler script makes it; the
    /// STATUS it got.
    fn call_b4(&mut self, method: &str, args: Table) -> i32 {
        self.call_b4_data(method, args).0
    }

    /// `ubus call b4 METHOD ARGS`: the STATUS and the DATA (if any).
    fn call_b4_data(&mut self, method: &str, args: Table) -> (i32, Option<Table>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.peer
            .send(&ubus_peer::invoke_message(seq, method, args));
        let mut data = None;
        let (status, _) = self
            .serve_until(secs(5), |m| {
                let ours = (m.header.seq, m.header.peer) == (seq, CALLER);
                if ours && m.header.kind() == Some(MsgType::Data) {
                    data = m.data().cloned();
                }
                ours && m.header.kind() == Some(MsgType::Status)
            })
            .unwrap_or_else(|| panic!("{method}: no STATUS"));
        (status.status().expect("STATUS attribute"), data)
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().expect("a string").to_string())
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int32(n)) => i64::from(*n),
        other => panic!("not an INT32: {other:?}"),
    }
}

/// "prefix/len,preferred,valid" split up.
fn prefix_parts(s: &str) -> (String, i64, i64) {
    let parts: Vec<&str> = s.split(',').collect();
    assert_eq!(parts.len(), 3, "{s}");
    (
        parts[0].to_string(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
    )
}

/// At most 3 s below `full` (time passes between kea's Reply and the call).
fn close_below(got: i64, full: i64, what: &str) {
    assert!((full - 3..=full).contains(&got), "{what}: {got} for {full}");
}

#[test]
fn acquire_renumbering_resync_and_loss_reach_netifd_as_notify_proto_calls() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("netifd_mode");
    let mut config = isp("2001:db8:100::");
    // Every part bound: what a pattern leaves out is dropped at once.
    let Setup {
        _cpe,
        _isp,
        mut kea,
        b4d,
        mut netifd,
    } = setup(&dir, "02:00:00:00:b4:09", &config);

    // 1. Acquire: one update with everything, in proto_send_update's order.
    let (first, _) = netifd.next_notify(secs(30));
    let names: Vec<&str> = first.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "action",
            "link-up",
            "keep",
            "ip6addr",
            "ip6prefix",
            "dns",
            "dns_search",
            "interface"
        ]
    );
    assert_eq!(first.get("action"), Some(&Value::Int32(0)));
    assert_eq!(first.get("link-up"), Some(&Value::Bool(true)));
    assert_eq!(first.get("keep"), Some(&Value::Bool(false)));
    let Some(Value::Array(addresses)) = first.get("ip6addr") else {
        panic!("ip6addr: {first}")
    };
    let [Value::Table(address)] = &addresses[..] else {
        panic!("one address: {first}")
    };
    let leased = address.get("ipaddr").and_then(Value::as_str).unwrap();
    assert!(
        leased.starts_with("2001:db8:1::1"),
        "from kea's pool: {leased}"
    );
    assert!(kea.leases().contains(leased), "kea leased {leased}");
    assert_eq!(address.get("mask"), Some(&Value::String("128".into())));
    close_below(int(address.get("preferred")), 20, "address preferred");
    close_below(int(address.get("valid")), 30, "address valid");
    let prefixes = strings(first.get("ip6prefix"));
    assert_eq!(prefixes.len(), 1, "{prefixes:?}");
    let (old_prefix, preferred, valid) = prefix_parts(&prefixes[0]);
    assert!(
        old_prefix.starts_with("2001:db8:1") && old_prefix.ends_with("/56"),
        "{old_prefix}"
    );
    close_below(preferred, 20, "prefix preferred");
    close_below(valid, 30, "prefix valid");
    assert_eq!(strings(first.get("dns")), ["2001:db8::53"]);
    assert_eq!(strings(first.get("dns_search")), ["example.net"]);
    assert_eq!(first.get("interface"), Some(&Value::String("wan6".into())));

    // `ubus call b4 status` says so (once the reporter has the answer).
    let deadline = Instant::now() + secs(2);
    let section = loop {
        let (ok, status) = netifd.call_b4_data("status", Table::new());
        assert_eq!(ok, 0);
        let status = status.expect("status data");
        let Some(Value::Table(section)) = status.get("netifd") else {
            panic!("no netifd section: {status}")
        };
        if section.get("reported_up") == Some(&Value::Bool(true)) || Instant::now() > deadline {
            break section.clone();
        }
        std::thread::sleep(millis(50));
    };
    assert_eq!(
        section.get("interface"),
        Some(&Value::String("wan6".into()))
    );
    assert_eq!(section.get("reported_up"), Some(&Value::Bool(true)));
    assert_eq!(section.get("updates"), Some(&Value::Int32(1)));

    // 2. netifd restarts wan6: its handler's setup asks b4d to report again,
    //    and the same state comes back at once.
    assert_eq!(
        netifd.call_b4("netifd_setup", Table::new().with("interface", "wan6")),
        0
    );
    let (again, _) = netifd.next_notify(secs(5));
    assert_eq!(strings(again.get("ip6prefix")).len(), 1);
    assert_eq!(
        netifd.call_b4("netifd_setup", Table::new().with("interface", "lan")),
        8,
        "another interface is not b4d's"
    );

    // 2b. ifdown wan6 (or carrier loss): the handler's teardown tells b4d,
    //     which then says nothing, a renew included, until the next setup
    //     (netifd takes a notify_proto while the interface is down and would
    //     hand the delegated prefix to the LAN again).
    let wan6 = || Table::new().with("interface", "wan6");
    assert_eq!(netifd.call_b4("netifd_teardown", wan6()), 0);
    b4d.wait_for_line("torn down", secs(5));
    // Whatever b4d sent before it took the teardown in comes before this
    // answer.
    netifd.call_b4("status", Table::new());
    let before = netifd.notifies;
    b4d.signal(Signal::Usr1);
    b4d.wait_for_line("lease-renewed", secs(5));
    let (_, status) = netifd.call_b4_data("status", Table::new());
    let status = status.expect("status data");
    let Some(Value::Table(section)) = status.get("netifd") else {
        panic!("no netifd section: {status}")
    };
    assert_eq!(section.get("reported_up"), Some(&Value::Bool(false)));
    assert_eq!(
        netifd.notifies, before,
        "nothing reported while wan6 is down"
    );
    assert_eq!(netifd.call_b4("netifd_setup", wan6()), 0);
    let (again, _) = netifd.next_notify(secs(5));
    assert_eq!(again.get("link-up"), Some(&Value::Bool(true)));

    // 3. The ISP renumbers the delegated prefix; the renew (SIGUSR1 stands in
    //    for T1) brings the new one, and the old one stays, deprecated.
    //    (Renews every 10 s send updates too; the one wanted has two prefixes.)
    config = isp("2001:db8:200::");
    kea.reload(&config);
    let renew = Instant::now();
    b4d.signal(Signal::Usr1);
    let renumbered = loop {
        let (update, _) = netifd.next_notify(secs(15));
        if strings(update.get("ip6prefix")).len() > 1 {
            break update;
        }
    };
    // Includes the Renew/Reply exchange with kea.
    println!(
        "measure: renumbering, renew to netifd notified of the new prefix {:.3} s",
        renew.elapsed().as_secs_f64()
    );
    let prefixes = strings(renumbered.get("ip6prefix"));
    assert_eq!(prefixes.len(), 2, "new and deprecated old: {prefixes:?}");
    let (new_prefix, preferred, valid) = prefix_parts(&prefixes[0]);
    assert!(new_prefix.starts_with("2001:db8:2"), "{new_prefix}");
    close_below(preferred, 20, "new prefix preferred");
    close_below(valid, 30, "new prefix valid");
    let (deprecated, preferred, valid) = prefix_parts(&prefixes[1]);
    assert_eq!(deprecated, old_prefix);
    assert_eq!(preferred, 0, "the old prefix is deprecated");
    assert!(
        (1..=30).contains(&valid),
        "and valid for what it had left: {valid}"
    );

    // 4. The server goes away: Renew, Rebind, and at the end of the valid
    //    lifetime the lease is lost: "link-up": false, byte for byte what
    //    `proto_init_update "*" 0; proto_send_update` sends.
    drop(kea);
    let (down, bytes) = netifd
        .serve_until(secs(45), |m| {
            m.header.peer == NETIFD
                && m.data().and_then(|d| d.get("link-up")) == Some(&Value::Bool(false))
        })
        .map(|(m, b)| (m.data().cloned().unwrap(), b))
        .expect("link down after the lease expired");
    let want = Table::new()
        .with("action", Value::Int32(0))
        .with("link-up", Value::Bool(false))
        .with("keep", Value::Bool(false))
        .with("interface", "wan6");
    assert_eq!(down, want);
    assert_eq!(
        bytes.len(),
        8 + 116,
        "the hand-checked size (src/netifd/report.rs)"
    );
    b4d.wait_for_line("lease-lost", secs(1));
}

#[test]
fn stopping_b4d_takes_the_interface_down_before_the_connection_closes() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("netifd_mode_stop");
    let Setup {
        _cpe,
        _isp,
        kea: _kea,
        b4d,
        mut netifd,
    } = setup(&dir, "02:00:00:00:b4:0a", &isp("2001:db8:100::"));
    let (up, _) = netifd.next_notify(secs(30));
    assert_eq!(up.get("link-up"), Some(&Value::Bool(true)));

    b4d.signal(Signal::Term);
    let (down, _) = netifd
        .serve_until(secs(5), |m| {
            m.header.peer == NETIFD
                && m.data().and_then(|d| d.get("link-up")) == Some(&Value::Bool(false))
        })
        .expect("link down at stop");
    assert_eq!(
        down.data().and_then(|d| d.get("interface")),
        Some(&Value::String("wan6".into()))
    );
    assert!(b4d.wait_exit(secs(10)).success(), "clean exit");
}

/// b4d restarted (crash respawn, reload) while wan6 is down (`ifdown wan6`):
/// netifd would take a report then too and hand the delegated prefix to the
/// LAN behind an interface it shows as down. b4d asks netifd how wan6 is,
/// reports nothing while it is down, and everything at the next setup.
#[test]
fn b4d_started_while_wan6_is_down_reports_at_the_next_setup() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("netifd_mode_started_down");
    let cpe = Netns::new("cpe");
    let isp_ns = Netns::new("isp");
    veth_pair(
        VethEnd::new(&cpe, "eth0").mac("02:00:00:00:b4:0b"),
        VethEnd::new(&isp_ns, "eth0"),
    );
    let kea = Kea6Server::start(&isp_ns, &dir, "kea", &isp("2001:db8:100::"));
    kea.wait_ready();
    let b4d = cpe.spawn(
        &dir,
        "b4d",
        env!("CARGO_BIN_EXE_b4d"),
        &["--foreground", "--config", &b4d_config(&dir)],
    );
    let mut netifd = FakeNetifd::start(&dir, wan6_status(false, false));
    // Serve ubus until b4d has its lease, and a while after.
    let deadline = Instant::now() + secs(30);
    while b4d.count_matching("event: lease-acquired") == 0 && Instant::now() < deadline {
        netifd.serve_until(secs(1), |_| false);
    }
    b4d.wait_for_line("event: lease-acquired", secs(1));
    netifd.serve_until(secs(3), |_| false);
    assert_eq!(netifd.notifies, 0, "nothing reported while wan6 is down");
    assert_eq!(
        b4d.count_matching("netifd: interface 'wan6' is down; reporting at its next setup"),
        1
    );

    // ifup wan6: the handler's setup, and the lease at once.
    assert_eq!(
        netifd.call_b4("netifd_setup", Table::new().with("interface", "wan6")),
        0
    );
    let (up, _) = netifd.next_notify(secs(5));
    assert_eq!(up.get("link-up"), Some(&Value::Bool(true)));
    assert_eq!(strings(up.get("ip6prefix")).len(), 1, "{up}");
}
