//! Proves the integration-test harness works: namespaces and processes are
//! created and cleaned up, and real kea-dhcp6 and dnsmasq servers answer a
//! DHCPv6 Solicit inside namespaces (alone and two on one switch).

mod support;

use support::probe::{self, SolicitProbe};
use support::*;

const AFTR_KEA: &str = "aftr.example.com";
const AFTR_DNSMASQ: &str = "aftr.example.net";

fn kea_full_config() -> Kea6Config {
    Kea6Config {
        pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
        dns_servers: vec!["2001:db8:1::53".parse().unwrap()],
        domain_search: vec!["example.com".into()],
        aftr_name: Some(AFTR_KEA.into()),
        sol_max_rt: Some(3600),
        preference: Some(200),
        ..Kea6Config::default()
    }
}

fn dnsmasq_full_config() -> Dnsmasq6Config {
    Dnsmasq6Config {
        lease_time: 120,
        dns_servers: vec!["2001:db8:2::53".parse().unwrap()],
        domain_search: vec!["example.net".into()],
        aftr_name: Some(AFTR_DNSMASQ.into()),
        sol_max_rt: Some(7200),
        ..Dnsmasq6Config::default()
    }
}

/// Client and server namespaces joined by a veth pair (`eth0` each side).
fn client_server() -> (Netns, Netns) {
    let client = Netns::new("cli");
    let server = Netns::new("srv");
    veth_pair(
        VethEnd::new(&client, "eth0").mac("02:00:00:00:0b:01"),
        VethEnd::new(&server, "eth0"),
    );
    (client, server)
}

#[test]
fn dns_wire_name_encoding() {
    assert_eq!(
        dns_wire_name_hex("aftr.example.net"),
        "04:61:66:74:72:07:65:78:61:6d:70:6c:65:03:6e:65:74:00"
    );
    assert_eq!(
        dns_wire_name("aftr.example.net."),
        dns_wire_name("aftr.example.net")
    );
    assert_eq!(dns_wire_name(""), vec![0]);
    assert_eq!(
        dnsmasq::dnsmasq_raw_option(64, &[]),
        "option6:64".to_string()
    );
    assert_eq!(dnsmasq::dnsmasq_raw_option(64, &[255]), "option6:64,255");
    assert_eq!(
        dnsmasq::dnsmasq_raw_option(64, &[1, 0xab]),
        "option6:64,01:ab"
    );
}

#[test]
fn namespace_and_process_lifecycle() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("namespace_and_process_lifecycle");
    let ns = Netns::new("life");
    assert!(std::path::Path::new(&format!("/run/netns/{}", ns.name())).exists());
    ns.sysctl("net.ipv6.conf.lo.disable_ipv6", "0");
    assert_eq!(ns.sysctl_get("net.ipv6.conf.lo.disable_ipv6"), "0");

    let script = "echo ready; trap 'echo got-hup' HUP; trap 'echo got-term; exit 3' TERM; \
                  while :; do sleep 0.05; done";
    let p = ns.spawn(&dir, "shell", "sh", &["-c", script]);
    p.wait_for_line("ready", secs(5));
    assert!(ns.pids().contains(&(p.pid() as i32)));
    for _ in 0..2 {
        p.signal(Signal::Hup);
        // The cursor makes each call wait for the *next* "got-hup".
        p.wait_for_line("got-hup", secs(5));
    }
    assert_eq!(p.lines_matching("got-hup").len(), 2);
    assert!(p.try_wait_for_line("got-hup", millis(200)).is_none());
    p.signal(Signal::Term);
    let status = p.wait_exit(secs(5));
    assert_eq!(status.code(), Some(3));
    let log = std::fs::read_to_string(dir.file("shell.stdout")).unwrap();
    assert!(log.contains("got-term"), "{log}");

    // A panic inside a test still removes its namespace and processes.
    let name = std::sync::Mutex::new(String::new());
    let pid = std::sync::Mutex::new(0u32);
    let result = std::panic::catch_unwind(|| {
        let inner = Netns::new("panic");
        *name.lock().unwrap() = inner.name().to_string();
        let sleeper = inner.spawn(&dir, "sleeper", "sleep", &["600"]);
        *pid.lock().unwrap() = sleeper.pid();
        panic!("deliberate panic to test cleanup");
    });
    assert!(result.is_err());
    let name = name.into_inner().unwrap();
    assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
    let pid = pid.into_inner().unwrap();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(state.is_empty(), "sleeper {pid} still there: {state}");
}

#[test]
fn kea_answers_solicit_with_aftr_name() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("kea_answers_solicit_with_aftr_name");
    let (client, server) = client_server();
    let mut kea = Kea6Server::start(&server, &dir, "kea", &kea_full_config());
    kea.wait_ready();
    let sockets = server.udp_listeners();
    assert!(
        sockets.contains(":547") && sockets.contains("kea-dhcp6"),
        "kea not listening on 547:\n{sockets}"
    );
    assert_eq!(kea.process().lines_matching("DHCP6_STARTED").len(), 1);

    client.wait_link_local_ready("eth0");
    let cap = Capture::dhcpv6(&client, &dir, "client-eth0", "eth0");
    let reply = probe::solicit_one(
        &client,
        "eth0",
        &SolicitProbe {
            ia_pd: true,
            ..SolicitProbe::default()
        },
    );
    assert_eq!(reply.msg_type, 2, "expected an Advertise: {reply:?}");
    assert_eq!(reply.option(64), Some(dns_wire_name(AFTR_KEA).as_slice()));
    assert_eq!(reply.option(82), Some(&3600u32.to_be_bytes()[..]));
    assert_eq!(reply.option(7), Some(&[200u8][..]));
    assert_eq!(
        reply.server_id(),
        Some(&parse_hex("0002000009bf0b4d0001")[..])
    );
    let ia_pd = reply.option(25).expect("IA_PD in the Advertise");
    // IA_PD: IAID, T1, T2, then IA Prefix option 26 with prefix length 56.
    assert_eq!(&ia_pd[12..14], &[0, 26]);
    assert_eq!(ia_pd[24], 56);
    kea.process()
        .wait_for_line("DHCP6_PACKET_RECEIVED", secs(5));
    kea.process()
        .wait_for_line("DHCP6_PD_LEASE_ADVERT", secs(5));

    cap.wait_for_packets("dhcp6 advertise", 1, secs(5));
    let sol = cap.matching("dhcp6 solicit");
    assert_eq!(sol.len(), 1);
    let adv = cap.matching("dhcp6 advertise");
    assert!(
        adv[0].text.contains("(AFTR-Name aftr.example.com)"),
        "{adv:?}"
    );
    assert!(adv[0].time >= sol[0].time);

    // SIGHUP reload with another AFTR name.
    let mut changed = kea_full_config();
    changed.aftr_name = Some("other.example.com".into());
    kea.reload(&changed);
    let reply = probe::solicit_one(&client, "eth0", &SolicitProbe::default());
    assert_eq!(
        reply.option(64),
        Some(dns_wire_name("other.example.com").as_slice())
    );
    drop(cap);
    let status = kea.stop();
    assert!(status.success() || status.code().is_none(), "{status:?}");
}

#[test]
fn dnsmasq_answers_solicit_with_raw_aftr_name() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("dnsmasq_answers_solicit_with_raw_aftr_name");
    let (client, server) = client_server();
    let mut dm = Dnsmasq6Server::start(&server, &dir, "dnsmasq", &dnsmasq_full_config());
    dm.wait_ready();
    let sockets = server.udp_listeners();
    assert!(
        sockets.contains(":547") && sockets.contains("dnsmasq"),
        "dnsmasq not listening on 547:\n{sockets}"
    );
    assert_eq!(dm.process().lines_matching("started, version").len(), 1);

    client.wait_link_local_ready("eth0");
    let cap = Capture::dhcpv6(&client, &dir, "client-eth0", "eth0");
    let reply = probe::solicit_one(&client, "eth0", &SolicitProbe::default());
    assert_eq!(reply.msg_type, 2, "expected an Advertise: {reply:?}");
    // Exactly the bytes given to dnsmasq as option 64.
    assert_eq!(
        hex(reply.option(64).expect("option 64")),
        dns_wire_name_hex(AFTR_DNSMASQ).replace(':', "")
    );
    assert_eq!(reply.option(82), Some(&7200u32.to_be_bytes()[..]));
    assert_eq!(
        reply.option(23),
        Some(
            &"2001:db8:2::53"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()[..]
        )
    );
    assert_eq!(
        reply.server_id(),
        Some(&parse_hex("0002000009bf0b4d0002")[..])
    );
    dm.process().wait_for_line("DHCPADVERTISE(eth0)", secs(5));

    cap.wait_for_packets("dhcp6 advertise", 1, secs(5));
    let adv = cap.matching("dhcp6 advertise");
    assert!(
        adv[0].text.contains("(AFTR-Name aftr.example.net)"),
        "{adv:?}"
    );
    // And on the wire, byte for byte (tcpdump -x dumps the packet in hex).
    let dump: String = capture::read_pcap_text(cap.pcap_path(), &["-n", "-x"])
        .iter()
        .filter(|l| l.trim_start().starts_with("0x"))
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let wanted = format!("0040{:04x}{}", 18, hex(&dns_wire_name(AFTR_DNSMASQ)));
    assert!(
        dump.contains(&wanted),
        "option 64 bytes {wanted} not on the wire"
    );

    // SIGHUP re-reads the options file: now send a malformed option 64.
    let mut changed = dnsmasq_full_config();
    changed.aftr_name = None;
    changed.raw_options = vec![(64, vec![0x04, b'a'])];
    dm.reload_options(&changed);
    let reply = probe::solicit_one(&client, "eth0", &SolicitProbe::default());
    assert_eq!(reply.option(64), Some(&[0x04, b'a'][..]));
    drop(cap);
    dm.stop();
}

#[test]
fn two_servers_on_one_switch() {
    if !require_root_and_tools() {
        return;
    }
    let dir = TestDir::new("two_servers_on_one_switch");
    let client = Netns::new("cli");
    let server_a = Netns::new("srva");
    let server_b = Netns::new("srvb");
    let mut switch = Switch::new("sw");
    switch.attach(VethEnd::new(&client, "eth0"));
    switch.attach(VethEnd::new(&server_a, "eth0"));
    switch.attach(VethEnd::new(&server_b, "eth0"));

    // Also covers a kea-generated server id (DUID-LLT kept in the test dir)
    // and INFO logging.
    let kea_config = Kea6Config {
        server_id_hex: None,
        log_level: KeaLogLevel::Info,
        ..kea_full_config()
    };
    let kea = Kea6Server::start(&server_a, &dir, "kea", &kea_config);
    let dm = Dnsmasq6Server::start(&server_b, &dir, "dnsmasq", &dnsmasq_full_config());
    kea.wait_ready();
    dm.wait_ready();

    wait_link_local_ready(&client, "eth0");
    let replies = probe::solicit(
        &client,
        "eth0",
        &SolicitProbe {
            all: true,
            wait: secs(3),
            ..SolicitProbe::default()
        },
    );
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert!(replies.iter().all(|r| r.msg_type == 2));
    let mut aftrs: Vec<Vec<u8>> = replies
        .iter()
        .map(|r| r.option(64).expect("option 64").to_vec())
        .collect();
    aftrs.sort();
    let mut expected = vec![dns_wire_name(AFTR_KEA), dns_wire_name(AFTR_DNSMASQ)];
    expected.sort();
    assert_eq!(aftrs, expected);
    assert_ne!(replies[0].server_id(), replies[1].server_id());
    assert_ne!(replies[0].from, replies[1].from);
}
