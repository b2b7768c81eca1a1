//! Network namespaces and the links between them.

use super::{millis, poll_until, secs, Process, TestDir};
use std::net::Ipv6Addr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// Prefix of every namespace the harness creates.
pub const NETNS_PREFIX: &str = "b4t-";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Serialises `ip netns add/del` inside this process: the very first
/// `ip netns add` on a machine sets up the `/run/netns` mount, and several of
/// them racing on that is asking for trouble.
static NETNS_LOCK: Mutex<()> = Mutex::new(());
static REAP: Once = Once::new();

/// `ip netns exec NS_NAME program` as a `Command` (see [`Netns::command`]).
pub fn ns_command(ns_name: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns_name, program]);
    cmd
}

/// Runs `ip ARGS` (in the current namespace) and panics with its output on
/// failure.
pub(crate) fn ip(args: &[&str]) -> Output {
    run_checked(Command::new("ip").args(args))
}

/// Runs a command, panicking with stdout and stderr if it cannot start or
/// exits unsuccessfully.
pub(crate) fn run_checked(cmd: &mut Command) -> Output {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "command failed ({}): {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A network namespace, deleted on drop.
///
/// A new namespace has only `lo`, which is brought up. Dropping it SIGKILLs
/// every process still inside (as listed by `ip netns pids`) and then runs
/// `ip netns del`, which also destroys its veth ends (and so their peers).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `b4t-<pid>-<counter>-<label>`. Keep `label`
    /// short and made of `[a-z0-9]`.
    pub fn new(label: &str) -> Netns {
        assert!(
            label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "bad namespace label {label:?}"
        );
        REAP.call_once(reap_stale_namespaces);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{NETNS_PREFIX}{}-{n}-{label}", std::process::id());
        {
            let _g = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            ip(&["netns", "add", &name]);
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, as used by `ip netns exec` / `ip -n`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program` inside the namespace
    /// (`ip netns exec NAME program`). `ip netns exec` execs the program, so
    /// the child's pid is the program's pid and signals reach it directly.
    pub fn command(&self, program: &str) -> Command {
        ns_command(&self.name, program)
    }

    /// Runs `program args` inside the namespace and returns its output;
    /// panics with stdout/stderr if it fails.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        run_checked(self.command(program).args(args))
    }

    /// Like [`exec`](Self::exec) but returns the output whatever the exit
    /// status (it still panics if the program cannot be started).
    pub fn try_exec(&self, program: &str, args: &[&str]) -> Output {
        run(self.command(program).args(args))
    }

    /// [`exec`](Self::exec) returning stdout as a `String`.
    pub fn exec_stdout(&self, program: &str, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(program, args).stdout).into_owned()
    }

    /// Runs `ip -n NAME args` (faster than `exec("ip", ..)`), panicking on
    /// failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        String::from_utf8_lossy(&ip(&full).stdout).into_owned()
    }

    /// Spawns `program args` in the namespace as a [`Process`] whose output
    /// goes to `dir` under `log_name`. For environment variables or other
    /// settings, build the command with [`command`](Self::command) and use
    /// [`Process::spawn`].
    pub fn spawn(&self, dir: &TestDir, log_name: &str, program: &str, args: &[&str]) -> Process {
        let mut cmd = self.command(program);
        cmd.args(args);
        Process::spawn(dir, log_name, cmd)
    }

    /// A bridge that forwards at once (no STP, no forward delay), with
    /// multicast snooping on or off (off: every multicast reaches every
    /// port, as on an unmanaged switch). Left down.
    pub fn add_bridge(&self, name: &str, mcast_snooping: bool) {
        let snooping = if mcast_snooping { "1" } else { "0" };
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            snooping,
        ]);
    }

    /// Sets a sysctl inside the namespace, e.g.
    /// `ns.sysctl("net.ipv6.conf.eth0.accept_dad", "0")`. Per-interface keys
    /// need the interface to exist; `net.ipv6.conf.default.*` applies to
    /// interfaces created afterwards.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")]);
    }

    /// Reads a sysctl inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> String {
        self.exec_stdout("sysctl", &["-n", key]).trim().to_string()
    }

    /// `ip link set DEV up`.
    pub fn link_up(&self, dev: &str) {
        self.ip(&["link", "set", dev, "up"]);
    }

    /// `ip link set DEV down`.
    pub fn link_down(&self, dev: &str) {
        self.ip(&["link", "set", dev, "down"]);
    }

    /// `ip link set DEV address MAC`.
    pub fn set_mac(&self, dev: &str, mac: &str) {
        self.ip(&["link", "set", dev, "address", mac]);
    }

    /// `ip addr add CIDR dev DEV` (`2001:db8::1/64` or `192.0.2.1/24`).
    /// IPv6 addresses go through duplicate address detection; see
    /// [`add_addr_nodad`](Self::add_addr_nodad).
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
    }

    /// Adds an IPv6 address that is usable at once (`nodad`).
    pub fn add_addr_nodad(&self, dev: &str, cidr: &str) {
        self.ip(&["-6", "addr", "add", cidr, "dev", dev, "nodad"]);
    }

    /// `ip -6 addr show dev DEV` output.
    pub fn addrs6(&self, dev: &str) -> String {
        self.ip(&["-6", "addr", "show", "dev", dev])
    }

    /// The interface's MAC address, e.g. `"02:00:00:00:00:01"`.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-o", "link", "show", "dev", dev]);
        let mut words = out.split_whitespace();
        while let Some(w) = words.next() {
            if w == "link/ether" {
                if let Some(mac) = words.next() {
                    return mac.to_string();
                }
            }
        }
        panic!("no MAC on {dev} in {}: {out}", self.name)
    }

    /// The interface's link-local address if it has one that is usable (not
    /// tentative, not failed DAD).
    pub fn link_local(&self, dev: &str) -> Option<Ipv6Addr> {
        let out = self.ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"]);
        out.lines()
            .filter(|l| !l.contains("tentative") && !l.contains("dadfailed"))
            .find_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet6")?;
                let addr = words.next()?.split('/').next()?;
                addr.parse().ok()
            })
    }

    /// Waits (10 s at most, else panics) until `dev` has a link-local
    /// address that is no longer tentative, and returns it. Servers need
    /// this before they can bind and send; the DHCP fixtures call it.
    pub fn wait_link_local_ready(&self, dev: &str) -> Ipv6Addr {
        self.wait_link_local_ready_for(dev, secs(10))
    }

    /// [`wait_link_local_ready`](Self::wait_link_local_ready) with a timeout.
    pub fn wait_link_local_ready_for(&self, dev: &str, timeout: Duration) -> Ipv6Addr {
        poll_until(timeout, || self.link_local(dev)).unwrap_or_else(|| {
            panic!(
                "no ready link-local address on {dev} in {} after {timeout:?}:\n{}",
                self.name,
                self.addrs6(dev)
            )
        })
    }

    /// Pids of every process in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        namespace_pids(&self.name)
    }

    /// `ss -uln` output inside the namespace (the UDP sockets listening).
    pub fn udp_listeners(&self) -> String {
        self.exec_stdout("ss", &["-H", "-ulnp"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        destroy_namespace(&self.name);
    }
}

fn namespace_pids(name: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills everything in the namespace and deletes it. Never panics (it runs
/// in `Drop`, possibly during unwinding).
fn destroy_namespace(name: &str) {
    for _ in 0..50 {
        let pids = namespace_pids(name);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid we read from ip netns pids.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(millis(20));
    }
    let _g = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new("ip")
        .args(["netns", "del", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("warning: ip netns del {name} failed: {status:?}");
    }
}

/// Deletes `b4t-<pid>-...` namespaces whose creating process no longer
/// exists (left behind when a test binary was SIGKILLed).
fn reap_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        // This runs before this process creates its first namespace, so one
        // carrying our own pid is a leftover from an earlier process that
        // had the same pid.
        if pid == std::process::id() || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "note: reaping stale namespace {name}");
            destroy_namespace(&name);
        }
    }
}

/// Free-function form of [`Netns::wait_link_local_ready`]: waits (10 s) until
/// `dev` in `ns` has a non-tentative link-local address and returns it.
pub fn wait_link_local_ready(ns: &Netns, dev: &str) -> Ipv6Addr {
    ns.wait_link_local_ready(dev)
}

/// One end of a veth pair: the namespace, the interface name in it, and
/// optionally its MAC address. Built with [`VethEnd::new`].
#[derive(Debug, Clone)]
pub struct VethEnd<'a> {
    ns: &'a Netns,
    dev: String,
    mac: Option<String>,
    up: bool,
}

impl<'a> VethEnd<'a> {
    /// Interface `dev` in `ns`; brought up by [`veth_pair`].
    pub fn new(ns: &'a Netns, dev: &str) -> VethEnd<'a> {
        assert!(dev.len() <= 15, "interface name {dev:?} longer than 15");
        VethEnd {
            ns,
            dev: dev.to_string(),
            mac: None,
            up: true,
        }
    }

    /// Sets the MAC address (`"02:00:00:00:00:01"`).
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(mac.to_string());
        self
    }

    /// Leaves this end down (e.g. to set per-interface sysctls first; bring
    /// it up later with [`Netns::link_up`]).
    pub fn down(mut self) -> Self {
        self.up = false;
        self
    }
}

/// Creates a veth pair between two namespaces and brings both ends up
/// (unless [`VethEnd::down`]). The interfaces are created directly inside
/// their namespaces, so fixed names like `eth0` never clash between tests.
///
/// ```ignore
/// veth_pair(VethEnd::new(&client, "eth0").mac("02:00:00:00:00:01"),
///           VethEnd::new(&server, "eth0"));
/// ```
pub fn veth_pair(a: VethEnd<'_>, b: VethEnd<'_>) {
    ip(&[
        "link",
        "add",
        &a.dev,
        "netns",
        a.ns.name(),
        "type",
        "veth",
        "peer",
        "name",
        &b.dev,
        "netns",
        b.ns.name(),
    ]);
    for end in [&a, &b] {
        if let Some(mac) = &end.mac {
            end.ns.set_mac(&end.dev, mac);
        }
        if end.up {
            end.ns.link_up(&end.dev);
        }
    }
}

/// An Ethernet switch: a namespace holding bridge `br0`, to which other
/// namespaces are attached by veth pairs. Everything attached shares one L2
/// segment (e.g. a client and two DHCPv6 servers).
///
/// The bridge has STP and multicast snooping off, so ports forward at once
/// and multicast (ff02::1:2) reaches every port. Dropping the switch deletes
/// its namespace and with it every port (the members' ends disappear too).
#[derive(Debug)]
pub struct Switch {
    ns: Netns,
    ports: usize,
}

impl Switch {
    /// Creates the switch namespace and its bridge.
    pub fn new(label: &str) -> Switch {
        let ns = Netns::new(label);
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        ns.add_bridge("br0", false);
        ns.link_up("br0");
        Switch { ns, ports: 0 }
    }

    /// Connects `member` to the switch through a new veth pair; the member's
    /// end is configured as given (name, MAC, up/down), the switch's end is
    /// `pN`, enslaved to `br0` and up. Returns the switch port name.
    pub fn attach(&mut self, member: VethEnd<'_>) -> String {
        let port = format!("p{}", self.ports);
        self.ports += 1;
        veth_pair(member, VethEnd::new(&self.ns, &port));
        self.ns.ip(&["link", "set", &port, "master", "br0"]);
        port
    }

    /// The switch's namespace (for captures on `br0` or a port).
    pub fn ns(&self) -> &Netns {
        &self.ns
    }
}
