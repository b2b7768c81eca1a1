//! b4d's LAN DHCPv4 server against real clients from Debian (busybox
//! `udhcpc`, ISC `dhclient`, `dhcpcd`) in network namespaces the tests
//! create and remove. Topology: a switch (bridge) with b4d's namespace
//! (eth0 = 192.168.1.1/24, the "LAN device") and one namespace per client.
//! Each client runs a small hook script that configures the address and
//! prints what it was given, so the tests read options from client output.

mod support;

use support::*;

const CLIENT_TOOLS: &[&str] = &["udhcpc", "dhclient", "dhcpcd"];

/// Root, the harness tools and the three DHCP clients (installed by
/// scripts/install-test-deps.sh); panics under CI rather than skipping.
fn ready() -> bool {
    if !require_root_and_tools() {
        return false;
    }
    let missing: Vec<_> = CLIENT_TOOLS
        .iter()
        .filter(|t| find_in_path(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("DHCPv4 clients missing: {missing:?}; run scripts/install-test-deps.sh");
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, refusing to skip)");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

/// The LAN: a switch with b4d's namespace on it.
struct Lan {
    dir: TestDir,
    switch: Switch,
    server: Netns,
    clients: Vec<Netns>,
}

impl Lan {
    fn new(test: &str) -> Lan {
        let mut lan = Lan::unplugged(test);
        lan.plug_server();
        lan
    }

    /// The LAN without b4d's `eth0` yet (as when br-lan comes up after b4d).
    fn unplugged(test: &str) -> Lan {
        Lan {
            dir: TestDir::new(test),
            switch: Switch::new("sw"),
            server: Netns::new("b4d"),
            clients: Vec::new(),
        }
    }

    /// Creates b4d's `eth0` (192.168.1.1/24) on the switch.
    fn plug_server(&mut self) {
        self.switch
            .attach(VethEnd::new(&self.server, "eth0").mac("02:00:00:00:01:01"));
        self.server.add_addr("eth0", "192.168.1.1/24");
    }

    /// A client namespace with `eth0` at `mac` on the switch; returns its index.
    fn add_client(&mut self, label: &str, mac: &str) -> usize {
        let ns = Netns::new(label);
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        self.switch.attach(VethEnd::new(&ns, "eth0").mac(mac));
        self.clients.push(ns);
        self.clients.len() - 1
    }

    /// Writes b4d's config: DHCPv6 off (the WAN is not under test), the
    /// given `lan` extras and `host` sections.
    fn config(&self, lan_extra: &str, hosts: &str) -> String {
        let text = format!(
            "config globals 'globals'\n\
             \toption log_level 'debug'\n\
             \toption state_dir '{state}'\n\n\
             config wan 'wan'\n\
             \toption device 'wan0'\n\
             \toption dhcpv6 'off'\n\
             \toption aftr '2001:db8::1'\n\n\
             config tunnel 'tunnel'\n\
             \toption enabled '0'\n\n\
             config lan 'lan'\n\
             \toption device 'eth0'\n\
             \toption ipaddr '192.168.1.1'\n\
             \toption netmask '255.255.255.0'\n\
             \toption dns_proxy '0'\n\
             \toption lease_file '{leases}'\n\
             \toption domain 'home.example'\n\
             {lan_extra}\n{hosts}",
            state = self.dir.file("state").display(),
            leases = self.dir.file("b4d.leases").display(),
        );
        self.dir.write("b4d.uci", text).display().to_string()
    }

    /// Like `config`, but with lan.ipaddr and lan.netmask unset (as
    /// shipped): b4d follows eth0's own address; the DNS proxy on or off.
    fn follow_config(&self, dns_proxy: bool) -> String {
        let fixed = std::fs::read_to_string(self.config("", "")).unwrap();
        let follow = fixed
            .replace("\toption ipaddr '192.168.1.1'\n", "")
            .replace("\toption netmask '255.255.255.0'\n", "")
            .replace(
                "option dns_proxy '0'",
                &format!("option dns_proxy '{}'", u8::from(dns_proxy)),
            );
        self.dir.write("follow.uci", follow).display().to_string()
    }

    /// Holds UDP port 53 of `address` (present on eth0 or not: IP_FREEBIND)
    /// until dropped, as a DNS server bound to every address would.
    fn hold_udp_53(&self, address: &str) -> Process {
        let holder = self.server.spawn(
            &self.dir,
            &format!("port-53-holder-{address}"),
            "python3",
            &[
                "-c",
                "import socket, sys, time\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND\n\
                 s.bind((sys.argv[1], 53))\n\
                 print('holding', flush=True)\n\
                 time.sleep(60)\n",
                address,
            ],
        );
        holder.wait_for_line("holding", secs(5));
        holder
    }

    /// Holds 0.0.0.0:67 as OpenWrt's dnsmasq does (SO_REUSEADDR and
    /// SO_REUSEPORT) until dropped or signalled.
    fn hold_port_67(&self) -> Process {
        let holder = self.server.spawn(
            &self.dir,
            "port67-holder",
            "python3",
            &[
                "-c",
                "import socket, time\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n\
                 s.bind(('0.0.0.0', 67))\n\
                 print('holding port 67', flush=True)\n\
                 time.sleep(600)\n",
            ],
        );
        holder.wait_for_line("holding port 67", secs(10));
        holder
    }

    fn start_b4d(&self, name: &str, config: &str) -> Process {
        let b4d = self.server.spawn(
            &self.dir,
            name,
            env!("CARGO_BIN_EXE_b4d"),
            &["--foreground", "--config", config],
        );
        b4d.wait_for_line("DHCPv4 server on eth0", secs(10));
        b4d
    }

    /// The lease file's lease lines, after the line naming the boot and the
    /// wall clock's offset (src/dhcpv4/leases.rs).
    fn leases_file(&self) -> String {
        let file = std::fs::read_to_string(self.dir.file("b4d.leases")).unwrap_or_default();
        match file.split_once('\n') {
            Some((first, rest)) => {
                assert!(first.starts_with("boot-id "), "{file}");
                rest.to_string()
            }
            None => file,
        }
    }

    /// Writes an executable hook script and returns its path.
    fn script(&self, name: &str, body: &str) -> String {
        let path = self.dir.write(name, format!("#!/bin/sh\n{body}"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// busybox udhcpc in the foreground, hostname `name`, asking for the
    /// domain search list and MTU too, not setting the broadcast flag (so
    /// b4d's unicast-to-hardware path is used). Its script prints
    /// `udhcpc-event <event> ip=... router=... dns=... ...`.
    fn udhcpc(&self, client: usize, log: &str, name: &str, extra: &[&str]) -> Process {
        let script = self.script(
            &format!("{log}.script"),
            "case \"$1\" in\n\
             bound|renew)\n\
             \tip addr flush dev \"$interface\"\n\
             \tip addr add \"$ip/$mask\" dev \"$interface\"\n\
             \techo \"udhcpc-event $1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain \
             search=$search broadcast=$broadcast lease=$lease serverid=$serverid mtu=$mtu\";;\n\
             deconfig) ip addr flush dev \"$interface\"; echo \"udhcpc-event deconfig\";;\n\
             *) echo \"udhcpc-event $1\";;\n\
             esac\n",
        );
        let mut args = vec![
            "-f",
            "-i",
            "eth0",
            "-s",
            &script,
            "-x",
            &format!("hostname:{name}"),
            "-O",
            "search",
            "-t",
            "20",
            "-T",
            "1",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.clients[client].spawn(&self.dir, log, "udhcpc", &args)
    }

    /// ISC dhclient in the foreground with its own lease file (so a second
    /// run starts in INIT-REBOOT) and a script that prints
    /// `dhclient-event <reason> ip=...`.
    fn dhclient(&self, client: usize, log: &str, extra: &[&str]) -> Process {
        let script = self.script(
            "dhclient.script",
            "case \"$reason\" in\n\
             BOUND|RENEW|REBIND|REBOOT)\n\
             \tip addr flush dev \"$interface\"\n\
             \tip addr add \"$new_ip_address/$new_subnet_mask\" dev \"$interface\";;\n\
             esac\n\
             echo \"dhclient-event $reason ip=$new_ip_address router=$new_routers \
             dns=$new_domain_name_servers domain=$new_domain_name host=$new_host_name\"\n",
        );
        let lease_file = self.dir.file("dhclient.leases").display().to_string();
        let pid_file = self.dir.file(&format!("{log}.pid")).display().to_string();
        let mut args = vec![
            "-d",
            "-v",
            "-4",
            "-lf",
            &lease_file,
            "-pf",
            &pid_file,
            "-sf",
            &script,
        ];
        args.extend_from_slice(extra);
        args.push("eth0");
        self.clients[client].spawn(&self.dir, log, "dhclient", &args)
    }

    /// dhcpcd in the foreground, IPv4 only, with ARP probing (so a conflict
    /// makes it DECLINE). Its run, pid and lease directories are made
    /// private (tmpfs in the mount namespace `ip netns exec` creates), so
    /// parallel tests do not see each other's dhcpcd.
    fn dhcpcd(&self, client: usize, log: &str) -> Process {
        let hook = self.script(
            "dhcpcd.hook",
            "echo \"dhcpcd-event $reason ip=$new_ip_address router=$new_routers\"\n\
             case \"$reason\" in\n\
             BOUND|RENEW|REBIND|REBOOT)\n\
             \tip addr flush dev \"$interface\"\n\
             \tip addr add \"$new_ip_address/$new_subnet_cidr\" dev \"$interface\";;\n\
             esac\n",
        );
        let conf = self
            .dir
            .write("dhcpcd.conf", "ipv4only\nnoipv4ll\nnohook resolv.conf\n");
        let command = format!(
            "for d in /run/dhcpcd /var/lib/dhcpcd /var/run/dhcpcd; do \
             [ -d $d ] && mount -t tmpfs none $d; done; \
             exec dhcpcd -B -d -4 -f {} -c {hook} eth0",
            conf.display()
        );
        let mut cmd = self.clients[client].command("sh");
        cmd.args(["-c", &command]);
        Process::spawn(&self.dir, log, cmd)
    }
}

/// The address b4d offers first to a client with `mac` that has no lease,
/// in the pool `192.168.1.100`..`last` (its place from a hash of the MAC,
/// `Pool::home`; the same on every start).
fn home(mac: &str, last: &str) -> String {
    let mut octets = [0u8; 6];
    for (o, hex) in octets.iter_mut().zip(mac.split(':')) {
        *o = u8::from_str_radix(hex, 16).unwrap();
    }
    b4d::dhcpv4::pool::Pool::new("192.168.1.100".parse().unwrap(), last.parse().unwrap())
        .home(octets)
        .unwrap()
        .to_string()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or("")
}

#[test]
fn udhcpc_gets_a_lease_with_the_right_options_renews_and_releases() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("udhcpc_gets_a_lease_with_the_right_options_renews_and_releases");
    let c = lan.add_client("tv", "02:00:00:00:02:01");
    let config = lan.config(
        "\toption dhcp_start '100'\n\toption dhcp_limit '50'\n\toption lease_time '1h'\n\
         \toption dhcp_mtu '1400'\n",
        "",
    );
    let b4d = lan.start_b4d("b4d", &config);
    let capture = Capture::start(
        &lan.server,
        &lan.dir,
        "lan",
        "eth0",
        "udp port 67 or udp port 68",
    );
    let client = lan.udhcpc(c, "udhcpc", "tv", &["-R", "-O", "mtu"]);
    let ip = home("02:00:00:00:02:01", "192.168.1.149");

    let bound = client.wait_for_line("udhcpc-event bound", secs(20));
    assert_eq!(field(&bound, "ip"), ip, "{bound}");
    assert_eq!(field(&bound, "mask"), "24");
    assert_eq!(field(&bound, "router"), "192.168.1.1");
    assert_eq!(field(&bound, "dns"), "192.168.1.1");
    assert_eq!(field(&bound, "domain"), "home.example");
    assert_eq!(field(&bound, "search"), "home.example");
    assert_eq!(field(&bound, "broadcast"), "192.168.1.255");
    assert_eq!(field(&bound, "lease"), "3600");
    assert_eq!(field(&bound, "serverid"), "192.168.1.1");
    assert_eq!(field(&bound, "mtu"), "1400");
    // udhcpc did not set the broadcast flag and has no address yet: the
    // OFFER went unicast to the offered address at its MAC (RFC 2131 §4.1),
    // which needs the ARP entry b4d installs first.
    let offer = capture.wait_for_packets("Offer", 1, secs(5));
    assert!(
        offer[0].text.contains(&format!("192.168.1.1.67 > {ip}.68")),
        "{}",
        offer[0].text
    );
    let leased = b4d.wait_for_line(
        &format!("DHCPv4: leased {ip} to 02:00:00:00:02:01 (tv)"),
        secs(2),
    );
    assert!(leased.contains("(selecting)"), "{leased}");
    assert!(
        lan.leases_file()
            .contains(&format!("02:00:00:00:02:01 {ip} tv")),
        "persisted: {}",
        lan.leases_file()
    );
    // The client is reachable at its address: the OFFER/ACK unicast worked
    // and the address is configured.
    lan.server
        .exec("busybox", &["ping", "-c", "1", "-W", "2", &ip]);

    // SIGUSR1 makes udhcpc renew now (a unicast REQUEST from ciaddr).
    client.signal(Signal::Usr1);
    let renewed = client.wait_for_line("udhcpc-event renew", secs(10));
    assert_eq!(field(&renewed, "ip"), ip);
    b4d.wait_for_line(
        &format!("renewed {ip} for 02:00:00:00:02:01 (tv) (renewing)"),
        secs(2),
    );

    // -R: release on exit.
    client.signal(Signal::Term);
    client.wait_exit(secs(5));
    b4d.wait_for_line(&format!("DHCPv4: 02:00:00:00:02:01 released {ip}"), secs(5));
    assert!(
        !lan.leases_file().contains(&ip),
        "a released lease leaves the file: {}",
        lan.leases_file()
    );
}

#[test]
fn dhclient_init_reboot_keeps_its_address_and_a_static_host_gets_its_own() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("dhclient_init_reboot_keeps_its_address_and_a_static_host_gets_its_own");
    let dynamic = lan.add_client("laptop", "02:00:00:00:03:01");
    let fixed = lan.add_client("printer", "02:00:00:00:03:02");
    let by_id = lan.add_client("console", "02:00:00:00:03:03");
    // The console is known by its client identifier only (its MAC differs
    // from the one configured, as after a network card swap).
    let config = lan.config(
        "\toption lease_time '1h'\n",
        "config host\n\toption mac '02:00:00:00:03:02'\n\toption ip '192.168.1.20'\n\toption name 'printer'\n\
         config host\n\toption mac '02:00:00:00:03:98'\n\toption ip '192.168.1.21'\n\
         \toption client_id '01:02:00:00:00:03:03'\n",
    );
    let b4d = lan.start_b4d("b4d", &config);

    let first = lan.dhclient(dynamic, "dhclient-1", &[]);
    let bound = first.wait_for_line("dhclient-event BOUND", secs(20));
    let address = field(&bound, "ip").to_string();
    assert_eq!(
        address,
        home("02:00:00:00:03:01", "192.168.1.249"),
        "{bound}"
    );
    assert_eq!(field(&bound, "router"), "192.168.1.1");
    assert_eq!(field(&bound, "dns"), "192.168.1.1");
    assert_eq!(field(&bound, "domain"), "home.example");
    // The client restarts: with its lease file it asks for the old address
    // (INIT-REBOOT, no server identifier) and gets it.
    let lease_file = lan.dir.file("dhclient.leases");
    poll_until(secs(5), || {
        std::fs::read_to_string(&lease_file)
            .ok()
            .filter(|t| t.contains(&format!("fixed-address {address}")))
    })
    .expect("dhclient wrote its lease");
    first.signal(Signal::Term);
    first.wait_exit(secs(5));
    let second = lan.dhclient(dynamic, "dhclient-2", &[]);
    let rebooted = second.wait_for_line("dhclient-event REBOOT", secs(20));
    assert_eq!(field(&rebooted, "ip"), address);
    assert!(
        !b4d.lines_matching("(init-reboot)").is_empty(),
        "b4d saw an INIT-REBOOT REQUEST"
    );

    // The static host gets its configured address and name (outside the pool).
    let printer = lan.udhcpc(fixed, "udhcpc-printer", "whatever", &[]);
    let bound = printer.wait_for_line("udhcpc-event bound", secs(20));
    assert_eq!(field(&bound, "ip"), "192.168.1.20", "{bound}");
    b4d.wait_for_line("DHCPv4: leased 192.168.1.20 to 02:00:00:00:03:02", secs(2));
    // udhcpc sends 01 + its MAC as client identifier (option 61).
    let console = lan.udhcpc(by_id, "udhcpc-console", "console", &[]);
    let bound = console.wait_for_line("udhcpc-event bound", secs(20));
    assert_eq!(field(&bound, "ip"), "192.168.1.21", "{bound}");
}

#[test]
fn pool_of_three_fourth_client_gets_nothing_and_the_log_says_why() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("pool_of_three_fourth_client_gets_nothing_and_the_log_says_why");
    let clients: Vec<usize> = (1..=4)
        .map(|n| lan.add_client(&format!("c{n}"), &format!("02:00:00:00:04:0{n}")))
        .collect();
    let config = lan.config("\toption dhcp_start '100'\n\toption dhcp_limit '3'\n", "");
    let b4d = lan.start_b4d("b4d", &config);

    let mut addresses = Vec::new();
    let mut running = Vec::new();
    for (n, &c) in clients[..3].iter().enumerate() {
        let client = lan.udhcpc(c, &format!("udhcpc-{n}"), &format!("host{n}"), &[]);
        let bound = client.wait_for_line("udhcpc-event bound", secs(20));
        addresses.push(field(&bound, "ip").to_string());
        running.push(client);
    }
    addresses.sort();
    assert_eq!(
        addresses,
        ["192.168.1.100", "192.168.1.101", "192.168.1.102"]
    );

    let fourth = lan.udhcpc(clients[3], "udhcpc-3", "host3", &[]);
    let why = b4d.wait_for_line("DHCPv4: pool exhausted", secs(10));
    assert!(
        why.contains("all 3 addresses 192.168.1.100-192.168.1.102")
            && why.contains("02:00:00:00:04:04"),
        "{why}"
    );
    // It keeps asking and keeps getting nothing; the log line is not repeated.
    std::thread::sleep(secs(4));
    assert!(fourth.lines_matching("udhcpc-event bound").is_empty());
    assert!(fourth.lines_matching("obtained").is_empty());
    assert_eq!(b4d.count_matching("pool exhausted"), 1);
    assert!(
        b4d.count_matching("offering") == 3,
        "no OFFER went to the fourth client"
    );
}

/// A device with a fixed address inside the pool (a NAS), known to the
/// router from its own traffic: its address is not handed out, also not to
/// a client that does not probe before use (busybox udhcpc does not, and
/// would bind it: two devices on one address).
#[test]
fn an_address_a_device_uses_without_a_lease_is_not_handed_out() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("an_address_a_device_uses_without_a_lease_is_not_handed_out");
    let c = lan.add_client("udhcpc", "02:00:00:00:07:01");
    let taken = home("02:00:00:00:07:01", "192.168.1.104");
    let nas = lan.add_client("nas", "02:00:00:00:07:99");
    lan.clients[nas].add_addr("eth0", &format!("{taken}/24"));
    let config = lan.config("\toption dhcp_start '100'\n\toption dhcp_limit '5'\n", "");
    let b4d = lan.start_b4d("b4d", &config);
    b4d.wait_for_line("DHCPv4: listening on", secs(20));
    // The NAS talks to its gateway, the router: the router's neighbour
    // table has it now (b4d reads it again a quarter second later).
    lan.clients[nas].exec("ping", &["-c", "1", "-W", "2", "192.168.1.1"]);
    std::thread::sleep(millis(1000));
    let client = lan.udhcpc(c, "udhcpc", "phone", &[]);
    let bound = client.wait_for_line("udhcpc-event bound", secs(20));
    assert_ne!(field(&bound, "ip"), taken, "{bound}");
}

#[test]
fn dhcpcd_declines_a_conflicting_address_which_is_then_quarantined() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("dhcpcd_declines_a_conflicting_address_which_is_then_quarantined");
    let c = lan.add_client("dhcpcd", "02:00:00:00:05:01");
    // A host squatting without a lease on the address the client is
    // offered first.
    let squatted = home("02:00:00:00:05:01", "192.168.1.104");
    let squatter = lan.add_client("squat", "02:00:00:00:05:99");
    lan.clients[squatter].add_addr("eth0", &format!("{squatted}/24"));
    let config = lan.config("\toption dhcp_start '100'\n\toption dhcp_limit '5'\n", "");
    let b4d = lan.start_b4d("b4d", &config);

    let client = lan.dhcpcd(c, "dhcpcd");
    // dhcpcd's ARP probe finds the squatter and declines it ...
    let declined = b4d.wait_for_line(&format!("declined {squatted}"), secs(30));
    assert!(declined.contains("quarantined"), "{declined}");
    // ... and, after the RFC 2131 §3.1 pause, is given another address.
    let bound = client.wait_for_line("dhcpcd-event BOUND", secs(40));
    let leased = field(&bound, "ip").to_string();
    assert_ne!(leased, squatted, "{bound}");
    assert!(
        !lan.leases_file().contains(&format!("{squatted} ")),
        "the declined address is not leased: {}",
        lan.leases_file()
    );
    // Another client does not get the quarantined address either.
    let other = lan.add_client("other", "02:00:00:00:05:02");
    let second = lan.udhcpc(other, "udhcpc", "other", &[]);
    let bound = second.wait_for_line("udhcpc-event bound", secs(20));
    let other_ip = field(&bound, "ip");
    assert!(other_ip != squatted && other_ip != leased, "{bound}");
}

#[test]
fn b4d_killed_and_restarted_every_client_keeps_its_address_on_renew() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("b4d_killed_and_restarted_every_client_keeps_its_address_on_renew");
    let a = lan.add_client("udhcpc", "02:00:00:00:06:01");
    let b = lan.add_client("dhclient", "02:00:00:00:06:02");
    let c = lan.add_client("dhcpcd", "02:00:00:00:06:03");
    // The shortest lease b4d allows (2 min): T1 comes after 60 s.
    let config = lan.config("\toption lease_time '120'\n", "");
    let b4d = lan.start_b4d("b4d", &config);

    let udhcpc = lan.udhcpc(a, "udhcpc", "a", &[]);
    let dhclient = lan.dhclient(b, "dhclient", &[]);
    let dhcpcd = lan.dhcpcd(c, "dhcpcd");
    let first = [
        field(&udhcpc.wait_for_line("udhcpc-event bound", secs(20)), "ip").to_string(),
        field(
            &dhclient.wait_for_line("dhclient-event BOUND", secs(20)),
            "ip",
        )
        .to_string(),
        field(&dhcpcd.wait_for_line("dhcpcd-event BOUND", secs(30)), "ip").to_string(),
    ];
    poll_until(secs(5), || {
        let file = lan.leases_file();
        first
            .iter()
            .all(|ip| file.contains(&format!(" {ip} ")))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("all three leases on disk: {}", lan.leases_file()));

    b4d.signal(Signal::Kill);
    b4d.wait_exit(secs(5));
    // A new client arriving now must not be given any of the three addresses.
    let again = lan.start_b4d("b4d-restarted", &config);
    assert_eq!(again.count_matching("3 of 3 leases restored"), 1);
    let newcomer = lan.add_client("newcomer", "02:00:00:00:06:04");
    let new = lan.udhcpc(newcomer, "udhcpc-new", "new", &[]);
    let new_ip = field(&new.wait_for_line("udhcpc-event bound", secs(20)), "ip").to_string();
    assert!(
        !first.contains(&new_ip),
        "{new_ip} was still leased: {first:?}"
    );

    // Each client renews at T1 (60 s after it was bound) and keeps its address.
    let renewed = [
        field(&udhcpc.wait_for_line("udhcpc-event renew", secs(90)), "ip").to_string(),
        field(
            &dhclient.wait_for_line("dhclient-event RENEW", secs(90)),
            "ip",
        )
        .to_string(),
        field(&dhcpcd.wait_for_line("dhcpcd-event RENEW", secs(90)), "ip").to_string(),
    ];
    assert_eq!(renewed, first);
    assert_eq!(again.count_matching("NAK"), 0);
}

#[test]
fn lan_device_appearing_after_start_is_served() {
    if !ready() {
        return;
    }
    let mut lan = Lan::unplugged("lan_device_appearing_after_start_is_served");
    let c = lan.add_client("late", "02:00:00:00:07:01");
    let config = lan.config("", "");
    let b4d = lan.start_b4d("b4d", &config);
    b4d.wait_for_line("waiting for LAN device eth0", secs(5));
    lan.plug_server();
    let client = lan.udhcpc(c, "udhcpc", "late", &[]);
    let bound = client.wait_for_line("udhcpc-event bound", secs(20));
    let ip = home("02:00:00:00:07:01", "192.168.1.249");
    assert_eq!(field(&bound, "ip"), ip, "{bound}");
    b4d.wait_for_line(&format!("DHCPv4: leased {ip}"), secs(2));
}

/// OpenWrt's netifd owns br-lan's address: when the user changes
/// network.lan.ipaddr (LuCI), netifd replaces the address under b4d. With
/// lan.ipaddr unset (the default) b4d follows the device: the DHCPv4 server
/// hands out the new subnet with the new router and DNS address, the old
/// leases leave the lease file, and the DNS proxy answers on the new
/// address; without any address both wait and say so.
#[test]
fn lan_address_changed_under_b4d_moves_dhcp_and_dns_with_it() {
    if !ready() || find_in_path("dig").is_none() {
        assert!(std::env::var_os("CI").is_none(), "dig missing under CI");
        return;
    }
    let mut lan = Lan::new("lan_address_changed_under_b4d_moves_dhcp_and_dns_with_it");
    let a = lan.add_client("a", "02:00:00:00:08:01");
    let config = lan.follow_config(true);
    let b4d = lan.start_b4d("b4d", &config);
    // What the DHCPv4 server and the DNS proxy say about one change, in
    // whichever order they say it.
    let said_since = |mark: usize, needle: &str| {
        if b4d.wait_for_line_after(mark, needle, secs(5)).is_none() {
            panic!("b4d did not say {needle:?}:\n{}", b4d.tail(30));
        }
    };
    said_since(0, "DHCPv4 server on eth0 (192.168.1.1/24)");
    said_since(0, "proxy listening on 192.168.1.1:53");
    let first = lan.udhcpc(a, "udhcpc-1", "a", &[]);
    let bound = first.wait_for_line("udhcpc-event bound", secs(20));
    let old_ip = field(&bound, "ip").to_string();
    assert!(old_ip.starts_with("192.168.1."), "{bound}");
    assert_eq!(field(&bound, "router"), "192.168.1.1", "{bound}");
    b4d.wait_for_line(&format!("DHCPv4: leased {old_ip}"), secs(2));
    drop(first);

    // netifd applying network.lan.ipaddr='10.0.0.1/16', while something
    // (a dnsmasq on all addresses) holds port 53 of the new address.
    let holder = lan.hold_udp_53("10.0.0.1");
    let mark = b4d.mark();
    lan.server
        .ip(&["addr", "del", "192.168.1.1/24", "dev", "eth0"]);
    lan.server.add_addr("eth0", "10.0.0.1/16");
    said_since(mark, "DHCPv4: serving 10.0.0.1/16 now (was 192.168.1.1/24)");
    said_since(mark, "cannot listen on 10.0.0.1:53");
    // Freed: taken on a retry, without another change.
    drop(holder);
    said_since(mark, "proxy listening on 10.0.0.1:53 now");
    // The old lease is kept aside (in the file, until it expires) for a
    // move back, but not served: the client asking for it is told no.
    assert!(
        lan.leases_file().contains(&old_ip),
        "the lease of the old subnet left the file:\n{}",
        lan.leases_file()
    );

    // The client asks for its old address (a DISCOVER naming it, as
    // udhcpc -r does): it gets one of the new subnet.
    let second = lan.udhcpc(a, "udhcpc-2", "a", &["-r", &old_ip]);
    let bound = second.wait_for_line("udhcpc-event bound", secs(20));
    let new_ip = field(&bound, "ip").to_string();
    assert!(new_ip.starts_with("10.0.0."), "{bound}");
    let last: u8 = new_ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        (100..=249).contains(&last),
        "outside dhcp_start/limit: {bound}"
    );
    assert_eq!(field(&bound, "mask"), "16", "{bound}");
    assert_eq!(field(&bound, "router"), "10.0.0.1", "{bound}");
    assert_eq!(field(&bound, "dns"), "10.0.0.1", "{bound}");
    assert_eq!(field(&bound, "serverid"), "10.0.0.1", "{bound}");

    // The proxy answers the client's name on the new address (local names
    // need no upstream) and nothing is left on the old one.
    let answer = lan.clients[a].exec_stdout(
        "dig",
        &[
            "@10.0.0.1",
            "+short",
            "+time=2",
            "+tries=1",
            "a.home.example",
            "A",
        ],
    );
    assert_eq!(answer.trim(), new_ip, "dig answered: {answer}");
    assert!(
        !lan.server.udp_listeners().contains("192.168.1.1:53"),
        "{}",
        lan.server.udp_listeners()
    );

    // No address at all (ifdown lan): both wait and say so; back: served.
    let mark = b4d.mark();
    lan.server.ip(&["addr", "flush", "dev", "eth0"]);
    said_since(mark, "LAN eth0 has no IPv4 address");
    said_since(mark, "proxy: waiting for an IPv4 address on eth0");
    let mark = b4d.mark();
    lan.server.add_addr("eth0", "10.0.0.1/16");
    said_since(mark, "LAN eth0: serving 10.0.0.1/16");
    drop(second);
    let third = lan.udhcpc(a, "udhcpc-3", "a", &["-r", &new_ip]);
    let bound = third.wait_for_line("udhcpc-event bound", secs(20));
    assert_eq!(field(&bound, "ip"), new_ip, "its lease stayed: {bound}");
    assert!(b4d.is_running());
}

/// Port 53 of the LAN address still held when b4d starts (dnsmasq not
/// stopped yet), then netifd moves the LAN to another address, free: the
/// proxy listens there at once, not at its next try of the held one.
#[test]
fn a_lan_move_while_port_53_is_held_is_followed_at_once() {
    if !ready() {
        return;
    }
    let lan = Lan::new("a_lan_move_while_port_53_is_held_is_followed_at_once");
    let holder = lan.hold_udp_53("192.168.1.1");
    let b4d = lan.start_b4d("b4d", &lan.follow_config(true));
    // (Maybe said before start_b4d's own wait ended.)
    assert!(
        b4d.wait_for_line_after(0, "cannot listen on 192.168.1.1:53", secs(10))
            .is_some(),
        "{}",
        b4d.tail(20)
    );
    let mark = b4d.mark();
    lan.server
        .ip(&["addr", "del", "192.168.1.1/24", "dev", "eth0"]);
    lan.server.add_addr("eth0", "10.0.0.1/16");
    // The held address is tried again every 5 s; the change itself must
    // bring the listeners, well within that.
    assert!(
        b4d.wait_for_line_after(mark, "proxy listening on 10.0.0.1:53", secs(2))
            .is_some(),
        "the proxy did not follow the LAN at once:\n{}",
        b4d.tail(20)
    );
    assert!(lan.server.udp_listeners().contains("10.0.0.1:53"));
    drop(holder);
    assert!(b4d.is_running());
}

/// lan.ipaddr set (a fixed subnet) but the LAN device has another address
/// (network.lan changed behind b4d's back): b4d says so and leases nothing
/// (a lease there would name a router address the router is not on) until
/// the device has the configured address again.
#[test]
fn a_fixed_lan_address_the_device_lacks_is_not_served() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("a_fixed_lan_address_the_device_lacks_is_not_served");
    let c = lan.add_client("c1", "02:00:00:00:0a:01");
    let config = lan.config("", "");
    let b4d = lan.start_b4d("b4d", &config);
    lan.server
        .ip(&["addr", "del", "192.168.1.1/24", "dev", "eth0"]);
    lan.server.add_addr("eth0", "10.0.0.1/16");
    b4d.wait_for_line(
        "LAN eth0 has 10.0.0.1/16, not lan.ipaddr 192.168.1.1/24: DHCPv4 and the DNS proxy wait",
        secs(5),
    );
    let client = lan.udhcpc(c, "udhcpc", "c1", &[]);
    client.wait_for_line("broadcasting discover", secs(10));
    client.wait_for_line("broadcasting discover", secs(10));
    assert_eq!(b4d.count_matching("offering"), 0, "{}", b4d.tail(10));

    lan.server.add_addr("eth0", "192.168.1.1/24");
    let bound = client.wait_for_line("udhcpc-event bound", secs(20));
    assert_eq!(field(&bound, "router"), "192.168.1.1", "{bound}");
}

/// CPU time (user + system, clock ticks) the process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: state is field 3, utime 14.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The LAN without an address while another server holds port 67 (just
/// after installing, dnsmasq still serving): b4d waits for both without
/// busy-looping (the port retry must not fire on every turn while there is
/// nothing to retry on), and serves once both are back.
#[test]
fn no_lan_address_while_port_67_is_held_is_waited_for_idly() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("no_lan_address_while_port_67_is_held_is_waited_for_idly");
    let c = lan.add_client("c1", "02:00:00:00:09:01");
    let holder = lan.hold_port_67();
    let config = lan.follow_config(false);
    let b4d = lan.start_b4d("b4d", &config);
    b4d.wait_for_line("DHCPv4: cannot serve on eth0", secs(10));
    lan.server.ip(&["addr", "flush", "dev", "eth0"]);
    b4d.wait_for_line("LAN eth0 has no IPv4 address", secs(5));
    // Past the 5 s port retry that was pending when the address went.
    let before = cpu_ticks(b4d.pid());
    std::thread::sleep(secs(7));
    let used = cpu_ticks(b4d.pid()) - before;
    assert!(
        used < 100,
        "b4d used {used} ticks of CPU in 7 s while waiting"
    );

    lan.server.add_addr("eth0", "192.168.1.1/24");
    holder.signal(Signal::Term);
    holder.wait_exit(secs(5));
    b4d.wait_for_line("DHCPv4: port 67 on eth0 is ours now; serving", secs(10));
    let client = lan.udhcpc(c, "udhcpc", "c1", &[]);
    client.wait_for_line("udhcpc-event bound", secs(20));
}

/// Sends hand-made datagrams to 192.168.1.1:67 from a host on the LAN:
/// a truncated one, a wrong magic cookie, an option length running past the
/// end, then `flood` DISCOVERs from random MACs.
const BAD_INPUT_SENDER: &str = r#"
import os, socket, struct, sys
flood = int(sys.argv[1])
def message(mac, cookie=b"\x63\x82\x53\x63", options=b"\x35\x01\x01\xff"):
    header = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, 0x1234, 0, 0, bytes(4), bytes(4), bytes(4), bytes(4))
    return header + mac + bytes(10) + bytes(192) + cookie + options
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to = ("192.168.1.1", 67)
s.sendto(b"\x01\x01\x06", to)
s.sendto(message(b"\x02\x00\x00\x00\x09\x01", cookie=b"\x00\x00\x00\x00"), to)
s.sendto(message(b"\x02\x00\x00\x00\x09\x02", options=b"\x35\x01\x01\x0c\xff" + b"x" * 10), to)
for _ in range(flood):
    s.sendto(message(b"\x06" + os.urandom(5)), to)
print("sent", flood + 3)
"#;

#[test]
fn malformed_packets_and_a_discover_flood_are_counted_and_real_clients_still_served() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new(
        "malformed_packets_and_a_discover_flood_are_counted_and_real_clients_still_served",
    );
    let attacker = lan.add_client("bad", "02:00:00:00:09:99");
    lan.clients[attacker].add_addr("eth0", "192.168.1.50/24");
    let real = lan.add_client("real", "02:00:00:00:09:01");
    let config = lan.config("\toption dhcp_start '100'\n\toption dhcp_limit '20'\n", "");
    let b4d = lan.start_b4d("b4d", &config);

    let script = lan.dir.write("bad_input.py", BAD_INPUT_SENDER);
    let out = lan.clients[attacker].exec_stdout("python3", &[script.to_str().unwrap(), "5000"]);
    assert!(out.contains("sent 5003"), "{out}");
    b4d.wait_for_line("dropped a message (too-short)", secs(5));
    b4d.wait_for_line("dropped a message (bad-magic-cookie)", secs(5));
    b4d.wait_for_line("dropped a message (truncated-option)", secs(5));
    assert_eq!(
        b4d.count_matching("further ones are only counted"),
        3,
        "each reason logged once"
    );

    // The flood only ever held offers (at most the 20 pool addresses) and
    // a real client still gets a lease.
    let client = lan.udhcpc(real, "udhcpc", "real", &[]);
    let bound = client.wait_for_line("udhcpc-event bound", secs(20));
    let ip = field(&bound, "ip").to_string();
    assert!(b4d.is_running());
    let file = lan.leases_file();
    assert_eq!(file.lines().count(), 1, "offers are not leases: {file}");
    assert!(
        file.contains(&format!("02:00:00:00:09:01 {ip} real")),
        "{file}"
    );
}

/// `reload` (procd's SIGHUP, or ubus `reload`): a broken file keeps the
/// running configuration; a changed one restarts b4d in place (same pid),
/// and the client keeps its lease and gets the new options on renew.
#[test]
fn reload_keeps_leases_and_applies_a_changed_config() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("reload_keeps_leases_and_applies_a_changed_config");
    let a = lan.add_client("udhcpc", "02:00:00:00:07:01");
    let config = lan.config("", "");
    let b4d = lan.start_b4d("b4d", &config);
    let udhcpc = lan.udhcpc(a, "udhcpc", "a", &[]);
    let bound = udhcpc.wait_for_line("udhcpc-event bound", secs(20));
    let ip = field(&bound, "ip").to_string();

    // A typo: b4d says what is wrong and keeps running as it was.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("option dhcp_limit", "option dhcp_limmit")
            .replace("option dns_proxy '0'", "option dns_proxy 'maybe'"),
    )
    .unwrap();
    b4d.signal(Signal::Hup);
    let invalid = b4d.wait_for_line("is invalid, keeping the running configuration", secs(5));
    // Each error its own log record (a syslog datagram holds ~1 KiB).
    b4d.wait_for_line("option 'dns_proxy' in section 'lan'", secs(5));
    assert!(b4d.is_running(), "{invalid}");

    // A real change: the domain. Same pid, leases restored, new option.
    std::fs::write(&config, good.replace("home.example", "lan.example")).unwrap();
    b4d.signal(Signal::Hup);
    b4d.wait_for_line("configuration changed, restarting in place", secs(5));
    b4d.wait_for_line("1 of 1 leases restored", secs(10));
    assert!(b4d.is_running());
    assert_eq!(b4d.count_matching("starting on WAN"), 2, "{}", b4d.tail(20));
    udhcpc.signal(Signal::Usr1);
    let renewed = udhcpc.wait_for_line("udhcpc-event renew", secs(20));
    assert_eq!(field(&renewed, "ip"), ip, "{renewed}");
    assert!(
        renewed.contains("lan.example"),
        "new domain not sent: {renewed}"
    );
}

/// A tmpfs of its own for a test, unmounted when dropped.
struct SmallTmpfs(std::path::PathBuf);

impl SmallTmpfs {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallTmpfs {
        std::fs::create_dir_all(&path).unwrap();
        let options = format!("size={size}");
        let target = path.display().to_string();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs", &target])
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {target}");
        SmallTmpfs(path)
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// /tmp full (a firmware image uploaded through LuCI): the lease file
/// cannot be written. No DHCPACK goes out for a lease not on file (after a
/// restart its address would be given to another client); the server says
/// why, and the client is acknowledged once the file can be written.
#[test]
fn no_dhcpack_goes_out_while_the_lease_file_system_is_full() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("no_dhcpack_goes_out_while_the_lease_file_system_is_full");
    let a = lan.add_client("udhcpc", "02:00:00:00:08:01");
    let small = SmallTmpfs::mount(lan.dir.file("tmp"), "64k");
    let filler = small.0.join("firmware.bin");
    let mut written = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut written, &[0u8; 4096]).is_ok() {}
    drop(written);
    let leases = small.0.join("b4d.leases");
    let config = lan.config("", "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        &lan.dir.file("b4d.leases").display().to_string(),
        &leases.display().to_string(),
    );
    std::fs::write(&config, text).unwrap();
    let b4d = lan.start_b4d("b4d", &config);
    let udhcpc = lan.udhcpc(a, "udhcpc", "a", &[]);
    b4d.wait_for_line("no DHCPACK goes out until it can be written", secs(20));
    std::thread::sleep(secs(2));
    assert_eq!(
        udhcpc.count_matching("udhcpc-event bound"),
        0,
        "{}",
        udhcpc.tail(10)
    );
    std::fs::remove_file(&filler).unwrap();
    let bound = udhcpc.wait_for_line("udhcpc-event bound", secs(30));
    b4d.wait_for_line("written again", secs(5));
    let ip = field(&bound, "ip");
    let file = std::fs::read_to_string(&leases).unwrap();
    assert!(file.contains(&format!(" {ip} ")), "{ip} not in\n{file}");
}

/// Another DHCP server on the LAN's port 67 (OpenWrt's dnsmasq, still
/// serving `dhcp.lan`, binds 0.0.0.0:67 with SO_REUSEADDR and SO_REUSEPORT):
/// b4d must not share the port (both would answer every broadcast with the
/// same server identifier), says once what is wrong and how to fix it,
/// keeps running, and serves once the port is free.
#[test]
fn port_67_held_by_another_server_is_waited_for_not_shared() {
    if !ready() {
        return;
    }
    let mut lan = Lan::new("port_67_held_by_another_server_is_waited_for_not_shared");
    let c = lan.add_client("c1", "02:00:00:00:06:01");
    let holder = lan.hold_port_67();
    let config = lan.config("", "");
    let b4d = lan.start_b4d("b4d", &config);
    let warning = b4d.wait_for_line("DHCPv4: cannot serve on eth0", secs(10));
    assert!(
        warning.contains("in use") && warning.contains("uci set dhcp.lan.dhcpv4=disabled"),
        "{warning}"
    );
    let client = lan.udhcpc(c, "udhcpc", "late", &[]);
    client.wait_for_line("broadcasting discover", secs(10));
    assert!(b4d.is_running(), "b4d keeps running without port 67");
    assert!(client.lines_matching("udhcpc-event bound").is_empty());
    assert_eq!(b4d.count_matching("offering"), 0);

    holder.signal(Signal::Term);
    holder.wait_exit(secs(5));
    b4d.wait_for_line("DHCPv4: port 67 on eth0 is ours now; serving", secs(10));
    client.wait_for_line("udhcpc-event bound", secs(20));
    assert_eq!(b4d.count_matching("cannot serve on eth0"), 1, "said once");
}
