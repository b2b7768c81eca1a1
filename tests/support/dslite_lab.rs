//! The DS-Lite lab (kernel lab VM only): one topology shared by
//! tests/tunnel.rs and tests/dslite_lab.rs.
//!
//! ```text
//!  host 192.168.1.10 ──┐
//!  LAN hosts (udhcpc) ─┤ br-lan [b4: b4d] wan0 ── line0 ⊂ eth0 [isp] eth1 ── server 198.51.100.10
//!                        192.168.1.1      (bridge) 2001:db8:1::1/64   198.51.100.1
//!                                         lo: 2001:db8:53::1 (DNS, dnsmasq:
//!                                                 AFTR AAAA, web.example.net A)
//!                                             2001:db8:af::1 (AFTR, ip6tnl aftr0)
//!                                         kea-dhcp6 on eth0 (IA_NA, IA_PD, 23, 64)
//! ```
//! radvd on the ISP's eth0 sends the Router Advertisement that gives the
//! B4 its IPv6 default route (once b4d has asked for it, see `Lab::build`).
//! `host` has a static address (the tunnel tests need no LAN services);
//! [`Lab::with_lan_services`] turns on b4d's DHCPv4 server and DNS proxy,
//! and [`Lab::add_lan_host`] plugs in hosts that get their lease by udhcpc.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::aftr::{Aftr, AftrConfig};
use super::*;

pub const SERVER: &str = "198.51.100.10";
/// An IPv4-only name: the ISP's DNS has an A record and no AAAA for it.
pub const WEB_NAME: &str = "web.example.net";
pub const AFTR1: &str = "2001:db8:af::1";
pub const AFTR2: &str = "2001:db8:af::2";
pub const AFTR3: &str = "2001:db8:af::3";
pub const DNS: &str = "2001:db8:53::1";
pub const FIRST_B4: &str = "2001:db8:1::100";
pub const SECOND_B4: &str = "2001:db8:1::200";
/// The WAN address of the second CPE ([`Lab::add_second_b4`]).
pub const SECOND_CPE: &str = "2001:db8:2::100";
pub const LAN_ADDR: &str = "192.168.1.1";
/// The ISP's end of the CPE's access line, a port of the ISP's `eth0`.
pub const ISP_PORT: &str = "line0";

pub struct Lab {
    pub dir: TestDir,
    /// The statically addressed LAN host.
    pub host: Netns,
    pub b4: Netns,
    pub isp: Netns,
    pub server: Netns,
    kea: Option<Kea6Server>,
    pub kea_config: Kea6Config,
    pub dns: Process,
    pub aftr: Aftr,
    pub web: Process,
    pub b4d: Option<Process>,
    pub config_path: String,
    /// The ISP router's Router Advertisements (radvd on eth0).
    pub isp_ra: Process,
    /// The multicast RAs the ISP's radvd sent (see
    /// [`radvd::wait_for_a_quiet_ra_window`]).
    pub isp_ras_sent: Process,
    /// LAN hosts added by [`Lab::add_lan_host`].
    pub lan_hosts: Vec<Netns>,
    lan_ports: usize,
    ubus_socket: String,
}

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub fn kea_config(pool_address: &str, aftr_name: &str) -> Kea6Config {
    Kea6Config {
        interface: "eth0".into(),
        pool: Some(format!("{pool_address}-{pool_address}")),
        pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
        dns_servers: vec![v6(DNS)],
        aftr_name: Some(aftr_name.into()),
        // The ISP allows the two-message exchange (RFC 8415 §18.3.1), as
        // BNG DHCPv6 servers commonly do; tests/dhcpv6_servers.rs covers
        // the four-message one.
        rapid_commit: true,
        ..Kea6Config::default()
    }
}

/// The ISP zone: the AFTR records given plus the IPv4-only web server.
fn zone(aftr_records: &str) -> String {
    format!("{aftr_records}{SERVER} {WEB_NAME}\n")
}

impl Lab {
    /// The lab with b4d's LAN services off (the tunnel alone).
    pub fn new(test: &str, wan_mtu: u32) -> Lab {
        Lab::build(test, wan_mtu, false)
    }

    /// The lab with b4d's DHCPv4 server and DNS proxy on `br-lan`.
    pub fn with_lan_services(test: &str) -> Lab {
        Lab::build(test, 1500, true)
    }

    fn build(test: &str, wan_mtu: u32, lan_services: bool) -> Lab {
        let dir = TestDir::new(test);
        let host = Netns::new("host");
        let b4 = Netns::new("b4");
        let isp = Netns::new("isp");
        let server = Netns::new("srv");
        // br-lan as on an OpenWrt router: LAN ports are bridge members.
        add_br_lan(&b4);
        veth_pair(
            VethEnd::new(&b4, "wan0").mac("02:00:00:00:b4:01"),
            VethEnd::new(&isp, ISP_PORT),
        );
        veth_pair(VethEnd::new(&isp, "eth1"), VethEnd::new(&server, "eth0"));
        // The ISP's side of the access line, `eth0`, is a bridge with the
        // line as one port and an always-up dummy as the other: like a BNG's
        // subscriber interface it stays up, with its addresses, its DHCPv6
        // server and its RA daemon, while the CPE's link goes down and up
        // (a veth would take the ISP's carrier down with the CPE's).
        isp.add_bridge("eth0", false);
        isp.ip(&["link", "add", "keepup0", "type", "dummy"]);
        for (ns, dev) in [(&b4, "wan0"), (&isp, ISP_PORT), (&isp, "keepup0")] {
            ns.ip(&["link", "set", dev, "mtu", &wan_mtu.to_string()]);
        }
        for port in [ISP_PORT, "keepup0"] {
            isp.ip(&["link", "set", port, "master", "eth0"]);
            isp.link_up(port);
        }
        isp.ip(&["link", "set", "eth0", "mtu", &wan_mtu.to_string()]);
        isp.link_up("eth0");
        b4.sysctl("net.ipv4.ip_forward", "1");
        isp.sysctl("net.ipv6.conf.eth0.accept_dad", "0");
        isp.add_addr_nodad("eth0", "2001:db8:1::1/64");
        isp.add_addr_nodad("lo", &format!("{DNS}/128"));
        isp.add_addr_nodad("lo", &format!("{AFTR1}/128"));
        isp.add_addr("eth1", "198.51.100.1/24");
        server.add_addr("eth0", &format!("{SERVER}/24"));
        server.ip(&["route", "add", "default", "via", "198.51.100.1"]);
        // radvd sends from the ISP's link-local address.
        isp.wait_link_local_ready("eth0");
        b4.wait_link_local_ready("wan0");
        // The CPE is a router (forwarding on, as OpenWrt sets it), so its
        // kernel ignores the ISP's RAs until b4d raises accept_ra; b4d then
        // solicits the RA that brings the WAN default route.
        b4.sysctl("net.ipv6.conf.all.forwarding", "1");
        isp.sysctl("net.ipv6.conf.all.forwarding", "1");
        let isp_ras_sent = radvd::capture_multicast_ras(&isp, &dir, "eth0");
        let isp_ra = radvd::start(&isp, &dir, "isp-radvd", &radvd::isp_config("eth0"));

        dir.write(
            "isp.hosts",
            zone(&format!(
                "{AFTR1} aftr.example.net\n{AFTR3} aftr2.example.net\n"
            )),
        );
        let dns = spawn_dns(&isp, &dir, "dns");

        let kea_config = kea_config(FIRST_B4, "aftr.example.net");
        let kea = Kea6Server::start(&isp, &dir, "kea", &kea_config);
        kea.wait_ready();

        let aftr = Aftr::start(
            &isp,
            &AftrConfig {
                aftr_addr: v6(AFTR1),
                b4_addr: v6(FIRST_B4),
                ..AftrConfig::default()
            },
        );
        // De-NATed replies go back into the softwire.
        isp.ip(&["route", "add", "192.168.1.0/24", "dev", "aftr0"]);
        let web = server.spawn(
            &dir,
            "web",
            "python3",
            &[
                "-u",
                "-m",
                "http.server",
                "8080",
                "--bind",
                SERVER,
                "--directory",
                "/",
            ],
        );
        web.wait_for_line("Serving HTTP", secs(20));

        let ubus_socket = ubus_socket(test);
        let services = if lan_services { "1" } else { "0" };
        // lan.ipaddr unset, as shipped: b4d follows br-lan's own address
        // (add_br_lan). The second B4 fixes it instead (lan.ipaddr).
        let config = format!(
            "config globals 'globals'\n\
             \toption log_level 'debug'\n\
             \toption ubus_socket '{ubus_socket}'\n\
             \toption state_dir '{state}'\n\n\
             config wan 'wan'\n\
             \toption device 'wan0'\n\
             \toption lease_file '{dhcpv6}'\n\n\
             config lan 'lan'\n\
             \toption device 'br-lan'\n\
             \toption dns_proxy '{services}'\n\
             \toption dhcp '{services}'\n\
             \toption lease_file '{leases}'\n",
            state = dir.file("state").display(),
            leases = dir.file("b4d.leases").display(),
            dhcpv6 = dir.file("b4d.dhcpv6").display(),
        );
        let config_path = dir.write("b4d.uci", config).display().to_string();
        let lab = Lab {
            dir,
            host,
            b4,
            isp,
            server,
            kea: Some(kea),
            kea_config,
            dns,
            aftr,
            web,
            b4d: None,
            config_path,
            isp_ra,
            isp_ras_sent,
            lan_hosts: Vec::new(),
            lan_ports: 1,
            ubus_socket,
        };
        plug_into_br_lan(&lab.b4, &lab.host, "lan0", "02:00:00:00:0a:0a");
        lab.host.add_addr("eth0", "192.168.1.10/24");
        lab.host.ip(&["route", "add", "default", "via", LAN_ADDR]);
        lab
    }

    /// The cable between the CPE's WAN port and the ISP is pulled (`out`)
    /// or plugged back: the CPE sees its carrier go and come back; its
    /// addresses and routes stay, as they do when a real cable or ONT goes.
    pub fn wan_cable_out(&self, out: bool) {
        if out {
            self.isp.link_down(ISP_PORT);
        } else {
            self.isp.link_up(ISP_PORT);
        }
    }

    /// Takes the AFTR's softwire down (`up == false`) or back up with its
    /// return route.
    pub fn set_aftr_up(&self, up: bool) {
        if up {
            self.isp.link_up("aftr0");
            self.isp
                .ip(&["route", "replace", "192.168.1.0/24", "dev", "aftr0"]);
        } else {
            self.isp.link_down("aftr0");
        }
    }

    /// Connections that come into the ISP on `iif` get their replies, once
    /// de-NATed to the LAN range, routed by `route` (`ip route` words, e.g.
    /// `dev aftr1`) instead of the main table's route into the first
    /// softwire: a conntrack mark (`mark`) set on their first packet, and a
    /// routing table of their own selected by it.
    pub fn route_isp_replies_back(&self, iif: &str, mark: u32, route: &[&str]) {
        let mut nft = self.isp.command("nft");
        nft.args(["-f", "-"]);
        super::aftr::nft_load(
            &mut nft,
            &format!(
                "table ip replies_{iif} {{\n\
                 \tchain pre {{\n\
                 \t\ttype filter hook prerouting priority mangle; policy accept;\n\
                 \t\tiifname \"{iif}\" ct state new ct mark set {mark}\n\
                 \t\tct mark {mark} meta mark set {mark}\n\
                 \t}}\n\
                 }}\n"
            ),
        );
        let (mark, table) = (mark.to_string(), (100 + mark).to_string());
        self.isp
            .ip(&["rule", "add", "fwmark", &mark, "table", &table]);
        let mut add = vec!["route", "add", "192.168.1.0/24"];
        add.extend_from_slice(route);
        add.extend_from_slice(&["table", &table]);
        self.isp.ip(&add);
    }

    /// A second CPE on its own WAN link to the ISP (`eth2`,
    /// 2001:db8:2::/64) with the SAME LAN range: its b4d runs without
    /// DHCPv6 (a static /64 on its WAN as the tunnel source, the AFTR's
    /// address configured), and the AFTR gets a second softwire `aftr1` to
    /// it. Both B4s' de-NATed IPv4 replies are told apart by the softwire
    /// they came in on: a conntrack mark selects the return softwire, as an
    /// AFTR keys its NAT on the B4's IPv6 address (RFC 6333 §6.6).
    /// The second CPE's LAN host is `lan_hosts[index]` (index returned).
    pub fn add_second_b4(&mut self) -> (Netns, usize, Process) {
        let b4 = Netns::new("b4b");
        add_br_lan(&b4);
        b4.sysctl("net.ipv4.ip_forward", "1");
        veth_pair(
            VethEnd::new(&b4, "wan0").mac("02:00:00:00:b4:02"),
            VethEnd::new(&self.isp, "eth2"),
        );
        self.isp.add_addr_nodad("eth2", "2001:db8:2::1/64");
        b4.add_addr_nodad("wan0", &format!("{SECOND_CPE}/64"));
        b4.ip(&["-6", "route", "add", "default", "via", "2001:db8:2::1"]);
        let _second_softwire = Aftr::start(
            &self.isp,
            &AftrConfig {
                tunnel_dev: "aftr1".into(),
                aftr_addr: v6(AFTR1),
                b4_addr: v6(SECOND_CPE),
                ..AftrConfig::default()
            },
        );
        self.route_isp_replies_back("aftr1", 2, &["dev", "aftr1"]);

        let index = self.lan_hosts.len();
        let host = Netns::new("lanhostb");
        host.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        plug_into_br_lan(&b4, &host, "lan0", "02:00:00:00:0c:01");
        self.lan_hosts.push(host);

        let config = format!(
            "config globals 'globals'\n\
             \toption log_level 'debug'\n\
             \toption ubus '0'\n\
             \toption state_dir '{state}'\n\n\
             config wan 'wan'\n\
             \toption device 'wan0'\n\
             \toption dhcpv6 'off'\n\
             \toption aftr '{AFTR1}'\n\n\
             config tunnel 'tunnel'\n\
             \toption source 'slaac'\n\n\
             config lan 'lan'\n\
             \toption device 'br-lan'\n\
             \toption ipaddr '{LAN_ADDR}'\n\
             \tlist dns_server '{DNS}'\n\
             \toption lease_file '{leases}'\n",
            state = self.dir.file("state-b").display(),
            leases = self.dir.file("b4d-b.leases").display(),
        );
        let path = self.dir.write("b4d-b.uci", config).display().to_string();
        let b4d = b4.spawn(
            &self.dir,
            "b4d-b",
            env!("CARGO_BIN_EXE_b4d"),
            &["--foreground", "--config", &path],
        );
        (b4, index, b4d)
    }

    /// The ISP's DHCPv6 server.
    pub fn kea(&mut self) -> &mut Kea6Server {
        self.kea.as_mut().expect("kea runs")
    }

    /// Stops the ISP's DHCPv6 server and starts a new one with `config`
    /// (same lease file: a restart, not a new server).
    pub fn restart_kea(&mut self, config: &Kea6Config, log: &str) {
        if let Some(kea) = self.kea.take() {
            kea.stop();
        }
        let kea = Kea6Server::start(&self.isp, &self.dir, log, config);
        kea.wait_ready();
        self.kea = Some(kea);
        self.kea_config = config.clone();
    }

    /// Stops the ISP's DNS server (until [`Lab::start_dns`]).
    pub fn stop_dns(&self) {
        self.dns.signal(Signal::Kill);
        self.dns.wait_exit(secs(5));
    }

    /// Starts the ISP's DNS server again, logging to `log`.
    /// Starts the ISP's DNS server again; returns when it said it serves,
    /// as a [`monotonic_now`] reading of that moment (its own start-up,
    /// about a second in the emulated VM, is not part of what it returns).
    pub fn start_dns(&mut self, log: &str) -> f64 {
        self.dns = spawn_dns(&self.isp, &self.dir, log);
        let started = self
            .dns
            .lines()
            .into_iter()
            .find(|l| l.text.contains("started, version"))
            .expect("spawn_dns waited for it");
        monotonic_now() - started.at.elapsed().as_secs_f64()
    }

    /// A new LAN host (no address yet: run [`Lab::udhcpc`]); its index.
    pub fn add_lan_host(&mut self, label: &str) -> usize {
        self.plug_lan_host(label, false)
    }

    /// A new LAN host with IPv6 on (SLAAC from whatever RA daemon runs on
    /// br-lan); its index.
    pub fn add_ipv6_lan_host(&mut self, label: &str) -> usize {
        self.plug_lan_host(label, true)
    }

    fn plug_lan_host(&mut self, label: &str, ipv6: bool) -> usize {
        let ns = Netns::new(label);
        if !ipv6 {
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        }
        let mac = format!("02:00:00:00:0b:{:02x}", self.lan_hosts.len() + 1);
        let port = format!("lan{}", self.lan_ports);
        self.lan_ports += 1;
        plug_into_br_lan(&self.b4, &ns, &port, &mac);
        self.lan_hosts.push(ns);
        self.lan_hosts.len() - 1
    }

    /// busybox udhcpc on LAN host `index`, in the foreground. Its script
    /// configures the address and default route and prints
    /// `udhcpc-event <event> ip=... router=... dns=... lease=...`.
    pub fn udhcpc(&self, index: usize, log: &str) -> Process {
        let script = self.dir.write(
            &format!("{log}.script"),
            "#!/bin/sh\n\
             case \"$1\" in\n\
             bound|renew)\n\
             \tip addr flush dev \"$interface\"\n\
             \tip addr add \"$ip/$mask\" dev \"$interface\"\n\
             \tip route replace default via \"$router\"\n\
             \techo \"udhcpc-event $1 ip=$ip mask=$mask router=$router dns=$dns lease=$lease\";;\n\
             deconfig) ip addr flush dev \"$interface\"; echo \"udhcpc-event deconfig\";;\n\
             *) echo \"udhcpc-event $1\";;\n\
             esac\n",
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = script.display().to_string();
        self.lan_hosts[index].spawn(
            &self.dir,
            log,
            "udhcpc",
            &["-f", "-i", "eth0", "-s", &script, "-t", "20", "-T", "1"],
        )
    }

    /// Resolves `name` (A) on LAN host `index` through the DNS server at
    /// `server`; the answer's addresses, or dig's complaint.
    pub fn resolve(&self, index: usize, server: &str, name: &str) -> String {
        let out = self.lan_hosts[index].try_exec(
            "dig",
            &[
                &format!("@{server}"),
                "+short",
                "+time=1",
                "+tries=1",
                name,
                "A",
            ],
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }

    /// On LAN host `index`: resolve [`WEB_NAME`] through the B4's DNS
    /// proxy, then fetch `http://web.example.net:8080/` from the address.
    /// `Ok("200 <bytes>")` or what went wrong.
    pub fn fetch_web_by_name(&self, index: usize) -> Result<String, String> {
        let answer = self.resolve(index, LAN_ADDR, WEB_NAME);
        let addr = answer.lines().next().unwrap_or("").trim().to_string();
        if addr.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(format!("{WEB_NAME} did not resolve: {answer:?}"));
        }
        http_fetch_in(
            &self.lan_hosts[index],
            &format!(
                "import urllib.request as u\n\
                 q = u.Request('http://{addr}:8080/', headers={{'Host': '{WEB_NAME}:8080'}})\n\
                 r = u.urlopen(q, timeout=2)\n\
                 print(r.status, len(r.read()))"
            ),
        )
    }

    /// Retries [`Lab::fetch_web_by_name`] until it works; how long that took.
    pub fn wait_for_web(&self, index: usize, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            match self.fetch_web_by_name(index) {
                Ok(_) => return Ok(start.elapsed()),
                Err(e) if start.elapsed() >= timeout => return Err(e),
                Err(_) => std::thread::sleep(millis(50)),
            }
        }
    }

    pub fn ubus_socket(&self) -> &str {
        &self.ubus_socket
    }

    /// Starts b4d logging to stderr (the process log).
    pub fn start_b4d(&mut self, name: &str) {
        self.start_b4d_with(name, &["--foreground"]);
    }

    /// Starts b4d with extra command-line arguments.
    pub fn start_b4d_with(&mut self, name: &str, extra: &[&str]) {
        self.start_b4d_with_env(name, &[], extra);
    }

    /// Starts b4d with `NAME=VALUE` environment settings (through env(1))
    /// and extra command-line arguments.
    pub fn start_b4d_with_env(&mut self, name: &str, env: &[&str], extra: &[&str]) {
        let mut args = env.to_vec();
        args.extend_from_slice(&[
            env!("CARGO_BIN_EXE_b4d"),
            "--config",
            self.config_path.as_str(),
        ]);
        args.extend_from_slice(extra);
        let process = self.b4.spawn(&self.dir, name, "env", &args);
        self.b4d = Some(process);
    }

    pub fn b4d(&self) -> &Process {
        self.b4d.as_ref().expect("b4d started")
    }

    pub fn ping(&self, extra: &[&str]) -> bool {
        let mut args = vec!["-c", "1", "-W", "1"];
        args.extend_from_slice(extra);
        args.push(SERVER);
        self.host.try_exec("ping", &args).status.success()
    }

    /// Pings until one answer comes back; how long that took.
    pub fn wait_for_ipv4(&self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.ping(&[]) {
                return Some(start.elapsed());
            }
            std::thread::sleep(millis(50));
        }
        None
    }

    pub fn http_fetch(&self) -> String {
        let out = self.host.try_exec(
            "python3",
            &[
                "-c",
                &format!(
                    "import urllib.request as u; r = u.urlopen('http://{SERVER}:8080/', timeout=10); print(r.status, len(r.read()))"
                ),
            ],
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn tunnel_details(&self) -> String {
        String::from_utf8_lossy(
            &self
                .b4
                .try_exec("ip", &["-d", "link", "show", "ds-b4"])
                .stdout,
        )
        .into_owned()
    }

    pub fn tunnel_index(&self) -> Option<String> {
        let out = self.b4.try_exec("ip", &["-o", "link", "show", "ds-b4"]);
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .split(':')
                .next()
                .unwrap_or("")
                .to_string()
        })
    }

    /// Re-points the AFTR names in the DNS zone (the web server's record
    /// stays) and makes dnsmasq reread it.
    pub fn set_aaaa(&self, records: &str) {
        self.dir.write("isp.hosts", zone(records));
        self.dns.signal(Signal::Hup);
    }

    /// Moves the AFTR's endpoint to `addr` (the old one stops answering).
    pub fn move_aftr(&self, from: &str, to: &str) {
        self.isp.add_addr_nodad("lo", &format!("{to}/128"));
        self.isp
            .ip(&["link", "change", "aftr0", "type", "ip6tnl", "local", to]);
        self.isp
            .ip(&["addr", "del", &format!("{from}/128"), "dev", "lo"]);
    }
}

/// Connects `ns`'s `eth0` (MAC `mac`) to `br-lan` in `b4` as port `port`.
fn plug_into_br_lan(b4: &Netns, ns: &Netns, port: &str, mac: &str) {
    veth_pair(VethEnd::new(ns, "eth0").mac(mac), VethEnd::new(b4, port));
    b4.ip(&["link", "set", port, "master", "br-lan"]);
}

/// dnsmasq as the ISP's DNS server on [`DNS`], serving `isp.hosts`.
fn spawn_dns(isp: &Netns, dir: &TestDir, log: &str) -> Process {
    let hosts = dir.file("isp.hosts");
    let dns = isp.spawn(
        dir,
        log,
        "dnsmasq",
        &[
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=53",
            &format!("--listen-address={DNS}"),
            "--bind-interfaces",
            &format!("--addn-hosts={}", hosts.display()),
            "--local-ttl=5",
            // Names of the zone not in the hosts file: NXDOMAIN.
            "--local=/example.net/",
            "--log-queries",
            "--log-facility=-",
            "--user=root",
            "--pid-file=",
        ],
    );
    dns.wait_for_line("started, version", secs(10));
    dns
}

/// Unix sockets cannot live on the VM's 9p share: the fake ubusd listens
/// in the guest's /tmp.
pub fn ubus_socket(test: &str) -> String {
    format!("/tmp/b4t-{}-{test}-ubus.sock", std::process::id())
}

/// A `measure:` line, read by the bench scripts.
pub fn measure(what: &str, took: Duration) {
    println!("measure: {what} {:.3} s", took.as_secs_f64());
}

/// Runs the python3 `script` in `ns`; it prints "<status> <bytes>" of an
/// HTTP fetch. `Ok` with that line for a 200, else what went wrong.
pub fn http_fetch_in(ns: &Netns, script: &str) -> Result<String, String> {
    let out = ns.try_exec("python3", &["-c", script]);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && text.starts_with("200 ") {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// What the prober runs on a LAN host: every `interval` s, resolve the name
/// through the B4's DNS proxy (its own UDP query, 0.5 s timeout), then GET
/// the page over TCP (0.5 s timeouts), and print `probe ok T` or
/// `probe fail T why`, T being CLOCK_MONOTONIC seconds when the round ended.
const PROBER: &str = r#"
import os, socket, struct, sys, time
dns, name, port, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
def skip_name(m, i):
    while True:
        n = m[i]
        if n >= 0xc0: return i + 2
        if n == 0: return i + 1
        i += n + 1
def resolve():
    qid = os.urandom(2)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(qid + struct.pack("!HHHHH", 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1), (dns, 53))
    while True:
        m = s.recv(4096)
        if m[:2] == qid: break
    s.close()
    flags, qd, an = struct.unpack("!HHH", m[2:8])
    if flags & 0xf: raise Exception("rcode %d" % (flags & 0xf))
    i = 12
    for _ in range(qd): i = skip_name(m, i) + 4
    for _ in range(an):
        i = skip_name(m, i)
        t, c, ttl, l = struct.unpack("!HHIH", m[i:i+10])
        i += 10
        if t == 1 and l == 4: return socket.inet_ntoa(m[i:i+4])
        i += l
    raise Exception("no A record")
def fetch(addr):
    s = socket.create_connection((addr, port), timeout=0.5)
    s.sendall(("GET / HTTP/1.0\r\nHost: %s:%d\r\n\r\n" % (name, port)).encode())
    data = b""
    while True:
        b = s.recv(4096)
        if not b: break
        data += b
    s.close()
    if not data.startswith(b"HTTP/1.0 200") and not data.startswith(b"HTTP/1.1 200"):
        raise Exception("HTTP %r" % data[:20])
while True:
    try:
        fetch(resolve())
        print("probe ok %.3f" % time.monotonic(), flush=True)
    except Exception as e:
        print("probe fail %.3f %s %s" % (time.monotonic(), type(e).__name__, e), flush=True)
    time.sleep(interval)
"#;

/// CLOCK_MONOTONIC in seconds: the clock the prober stamps its rounds with.
pub fn monotonic_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A LAN host that keeps fetching the web page by name every 50 ms
/// ([`PROBER`]): recovery times read from its rounds have ~0.1 s resolution
/// and no program start-up in them (starting dig and python3 for each try
/// costs over 2 s on the emulated CPU).
pub struct Prober(Process);

/// One prober round: when it ended and whether it worked.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    pub at: f64,
    pub ok: bool,
}

impl Prober {
    /// Every round so far, in order.
    pub fn rounds(&self) -> Vec<Round> {
        self.0
            .lines()
            .iter()
            .filter_map(|l| {
                let mut words = l.text.split_whitespace();
                if words.next() != Some("probe") {
                    return None;
                }
                let ok = words.next()? == "ok";
                let at = words.next()?.parse().ok()?;
                Some(Round { at, ok })
            })
            .collect()
    }

    /// Seconds from `since` (a [`monotonic_now`] reading) to the end of the
    /// first successful round after it; waits up to `timeout`.
    pub fn recovery_after(&self, since: f64, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.rounds().iter().find(|r| r.ok && r.at >= since) {
                return Some(r.at - since);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(millis(20));
        }
    }

    /// The longest time without a successful round between `from` and `to`
    /// (both [`monotonic_now`] readings): the outage a user saw.
    pub fn longest_outage(&self, from: f64, to: f64) -> f64 {
        let mut last_ok = from;
        let mut longest = 0.0f64;
        for r in self
            .rounds()
            .iter()
            .filter(|r| r.ok && r.at >= from && r.at <= to)
        {
            longest = longest.max(r.at - last_ok);
            last_ok = r.at;
        }
        longest.max(to - last_ok)
    }

    /// The median time between consecutive successful rounds among the last
    /// `n` rounds: one round plus the pause, with nothing broken.
    pub fn median_period(&self, n: usize) -> Option<f64> {
        let rounds = self.rounds();
        let recent = &rounds[rounds.len().saturating_sub(n)..];
        let mut gaps: Vec<f64> = recent
            .windows(2)
            .filter(|w| w[0].ok && w[1].ok)
            .map(|w| w[1].at - w[0].at)
            .collect();
        gaps.sort_by(f64::total_cmp);
        gaps.get(gaps.len() / 2).copied()
    }

    /// The prober's output lines, with when the harness read them.
    pub fn lines(&self) -> Vec<process::Line> {
        self.0.lines()
    }

    /// The prober's own output, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        self.0.tail(n)
    }
}

impl Lab {
    /// Starts a [`Prober`] on LAN host `index` (before it has an address is
    /// fine: its rounds fail until the host is up).
    pub fn start_prober(&self, index: usize) -> Prober {
        let log = format!("prober{index}");
        Prober(self.lan_hosts[index].spawn(
            &self.dir,
            &log,
            "python3",
            &["-u", "-c", PROBER, LAN_ADDR, WEB_NAME, "8080", "0.05"],
        ))
    }
}

/// Time between the first log line containing `from` and the first line
/// after it containing `to`, both at or after line `mark`. Waits up to 10 s
/// for the lines: traffic may flow before b4d has logged the round that
/// made it flow.
pub fn between_after(b4d: &Process, mark: usize, from: &str, to: &str) -> Duration {
    let (first, _) = b4d
        .wait_for_line_after(mark, from, secs(10))
        .unwrap_or_else(|| panic!("no {from:?} in the b4d log after line {mark}"));
    let (second, _) = b4d
        .wait_for_line_after(first, to, secs(10))
        .unwrap_or_else(|| panic!("no {to:?} in the b4d log after line {first}"));
    let lines = b4d.lines();
    lines[second].at.saturating_duration_since(lines[first].at)
}

pub fn between(b4d: &Process, from: &str, to: &str) -> Duration {
    between_after(b4d, 0, from, to)
}

/// br-lan as on an OpenWrt router (LAN ports are bridge members), up, with
/// the router's LAN address.
fn add_br_lan(b4: &Netns) {
    b4.add_bridge("br-lan", true);
    b4.link_up("br-lan");
    b4.add_addr("br-lan", &format!("{LAN_ADDR}/24"));
}
