//! dnsmasq 2.90 as a DHCPv6-only server in a namespace.
//!
//! What to know about dnsmasq as a DHCPv6 server:
//!
//! * It serves a `--dhcp-range` only on an interface that has an address in
//!   the range's prefix, so the fixture adds [`Dnsmasq6Config::server_address`]
//!   (default `2001:db8:2::1/64`) to the interface if it is missing.
//! * The minimum lease time is 120 s (shorter ones are raised to 120; the
//!   fixture refuses them so a test does not silently get 120). T1 is half
//!   the lease time and T2 7/8 of it (60 s / 105 s for 120 s).
//! * No prefix delegation (IA_PD is answered with NoPrefixAvail).
//! * It only sends the options the client asks for in its Option Request
//!   option (ORO), and always sends Preference 0, which cannot be changed
//!   (raw option 7 produces garbage).
//! * Options live in a `--dhcp-optsfile`, which dnsmasq re-reads on SIGHUP
//!   ([`Dnsmasq6Server::reload_options`]); the range, lease time and
//!   interface need a restart.
//! * Raw bytes are sent verbatim only for option codes dnsmasq does not know
//!   (64 AFTR-Name, 82 SOL_MAX_RT, private codes...): for 23, 24 and the
//!   other codes in `dnsmasq --help dhcp6` it parses the value as addresses
//!   or names. That is enough for malformed-AFTR-Name tests.
//! * Useful log lines (`--log-dhcp`): `DHCPSOLICIT(eth0) <duid>`,
//!   `DHCPADVERTISE(eth0) <addr> <duid>`, `DHCPREQUEST`, `DHCPREPLY`,
//!   `DHCPRENEW`, `DHCPREBIND`, `DHCPRELEASE(eth0) <duid>`, `requested
//!   options: 23:dns-server, ...`, `sent size: 18 option: 64 ...`.

use super::{secs, Netns, Process, Signal, TestDir};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Option codes that dnsmasq types itself (see `dnsmasq --help dhcp6`) or
/// builds itself: raw bytes for them would not reach the wire verbatim.
pub const DNSMASQ_INTERPRETED_OPTIONS: &[u16] = &[
    1, 2, 3, 4, 5, 7, 8, 13, 14, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 41, 42, 56, 59, 60,
];

/// The DNS wire format (RFC 1035 3.1) of `name`: length-prefixed labels and
/// a final zero byte. A trailing dot is allowed; `""` or `"."` is the root.
pub fn dns_wire_name(name: &str) -> Vec<u8> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut out = Vec::new();
    if !name.is_empty() {
        for label in name.split('.') {
            assert!(
                !label.is_empty() && label.len() <= 63,
                "bad DNS label {label:?} in {name:?}"
            );
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    out
}

/// [`dns_wire_name`] as colon-separated hex, the form dnsmasq takes for raw
/// option data: `dns_wire_name_hex("aftr.example.net")` is
/// `"04:61:66:74:72:07:65:78:61:6d:70:6c:65:03:6e:65:74:00"`.
pub fn dns_wire_name_hex(name: &str) -> String {
    colon_hex(&dns_wire_name(name))
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One `--dhcp-option` line (without the leading `--dhcp-option=`) that makes
/// dnsmasq send exactly `bytes` as option `code`. dnsmasq reads one
/// colon-less token as text or a number, so: no bytes → `option6:CODE`, one
/// byte → its decimal value, more → colon-separated hex.
pub fn dnsmasq_raw_option(code: u16, bytes: &[u8]) -> String {
    assert!(
        !DNSMASQ_INTERPRETED_OPTIONS.contains(&code),
        "dnsmasq interprets option {code} itself; raw bytes only go out verbatim for \
         codes it does not know (64, 82, 65000, ...)"
    );
    match bytes {
        [] => format!("option6:{code}"),
        [b] => format!("option6:{code},{b}"),
        _ => format!("option6:{code},{}", colon_hex(bytes)),
    }
}

/// A dnsmasq DHCPv6 configuration. Defaults: interface `eth0`, server address
/// `2001:db8:2::1/64`, range `2001:db8:2::100`-`2001:db8:2::1ff`/64, lease
/// 3600 s, no options, server DUID-EN 2495 + `0b4d0002`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dnsmasq6Config {
    pub interface: String,
    /// Added (nodad) to the interface if missing; dnsmasq needs an address in
    /// the range's prefix. `None`: the test sets it up itself.
    pub server_address: Option<String>,
    pub range_start: Ipv6Addr,
    pub range_end: Ipv6Addr,
    pub prefix_len: u8,
    /// Valid and preferred lifetime, seconds, at least 120.
    pub lease_time: u32,
    /// Option 23.
    pub dns_servers: Vec<Ipv6Addr>,
    /// Option 24.
    pub domain_search: Vec<String>,
    /// Option 64, given to dnsmasq as raw wire-format bytes.
    pub aftr_name: Option<String>,
    /// Option 82 (4 bytes).
    pub sol_max_rt: Option<u32>,
    /// Options as raw bytes: (code, bytes), see [`dnsmasq_raw_option`].
    /// May repeat a code, e.g. to send option 64 twice.
    pub raw_options: Vec<(u16, Vec<u8>)>,
    /// Extra lines for the options file, verbatim.
    pub extra_option_lines: Vec<String>,
    /// Server DUID (DUID-EN): (enterprise number, identifier hex). `None`:
    /// dnsmasq makes a DUID-LLT from the interface MAC.
    pub server_duid: Option<(u32, String)>,
    /// `--dhcp-rapid-commit`.
    pub rapid_commit: bool,
    /// Further command-line arguments.
    pub extra_args: Vec<String>,
}

impl Default for Dnsmasq6Config {
    fn default() -> Self {
        Dnsmasq6Config {
            interface: "eth0".into(),
            server_address: Some("2001:db8:2::1/64".into()),
            range_start: "2001:db8:2::100".parse().expect("addr"),
            range_end: "2001:db8:2::1ff".parse().expect("addr"),
            prefix_len: 64,
            lease_time: 3600,
            dns_servers: Vec::new(),
            domain_search: Vec::new(),
            aftr_name: None,
            sol_max_rt: None,
            raw_options: Vec::new(),
            extra_option_lines: Vec::new(),
            server_duid: Some((2495, "0b4d0002".into())),
            rapid_commit: false,
            extra_args: Vec::new(),
        }
    }
}

impl Dnsmasq6Config {
    /// The `--dhcp-optsfile` contents (one `--dhcp-option` value per line).
    pub fn options_file(&self) -> String {
        let mut lines = Vec::new();
        if !self.dns_servers.is_empty() {
            let list: Vec<String> = self.dns_servers.iter().map(|a| format!("[{a}]")).collect();
            lines.push(format!("option6:dns-server,{}", list.join(",")));
        }
        if !self.domain_search.is_empty() {
            lines.push(format!(
                "option6:domain-search,{}",
                self.domain_search.join(",")
            ));
        }
        if let Some(aftr) = &self.aftr_name {
            lines.push(dnsmasq_raw_option(64, &dns_wire_name(aftr)));
        }
        if let Some(rt) = self.sol_max_rt {
            lines.push(dnsmasq_raw_option(82, &rt.to_be_bytes()));
        }
        for (code, bytes) in &self.raw_options {
            lines.push(dnsmasq_raw_option(*code, bytes));
        }
        lines.extend(self.extra_option_lines.iter().cloned());
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    /// The command-line arguments (everything but the options file).
    pub fn args(
        &self,
        lease_file: &std::path::Path,
        pid_file: &std::path::Path,
        opts_file: &std::path::Path,
    ) -> Vec<String> {
        assert!(
            self.lease_time >= 120,
            "dnsmasq's minimum lease time is 120 s (asked for {})",
            self.lease_time
        );
        let mut args = vec![
            "--no-daemon".to_string(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            "--log-dhcp".into(),
            "--log-facility=-".into(),
            format!("--dhcp-leasefile={}", lease_file.display()),
            format!("--pid-file={}", pid_file.display()),
            format!("--interface={}", self.interface),
            "--bind-interfaces".into(),
            format!(
                "--dhcp-range={},{},{},{}",
                self.range_start, self.range_end, self.prefix_len, self.lease_time
            ),
            format!("--dhcp-optsfile={}", opts_file.display()),
        ];
        if let Some((enterprise, id)) = &self.server_duid {
            let id = colon_hex(&super::parse_hex(id));
            args.push(format!("--dhcp-duid={enterprise},{id}"));
        }
        if self.rapid_commit {
            args.push("--dhcp-rapid-commit".into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A running `dnsmasq` serving DHCPv6 (DNS off) inside a namespace.
///
/// Files in the [`TestDir`]: `<name>.opts` (options file), `<name>.leases`,
/// `<name>.log/.stdout/.stderr` (dnsmasq logs to stderr). Dropping it stops
/// dnsmasq.
#[derive(Debug)]
pub struct Dnsmasq6Server {
    process: Process,
    opts_file: PathBuf,
    lease_file: PathBuf,
    config: Dnsmasq6Config,
}

impl Dnsmasq6Server {
    /// Waits for the interface's link-local address, adds the server address
    /// if needed and starts dnsmasq. Call [`wait_ready`](Self::wait_ready)
    /// before sending to it.
    pub fn start(ns: &Netns, dir: &TestDir, name: &str, config: &Dnsmasq6Config) -> Dnsmasq6Server {
        ns.wait_link_local_ready(&config.interface);
        if let Some(addr) = &config.server_address {
            let bare = addr.split('/').next().unwrap_or(addr);
            let present = ns
                .addrs6(&config.interface)
                .split_whitespace()
                .any(|w| w.split('/').next() == Some(bare));
            if !present {
                ns.add_addr_nodad(&config.interface, addr);
            }
        }
        let opts_file = dir.write(&format!("{name}.opts"), config.options_file());
        let lease_file = dir.file(&format!("{name}.leases"));
        let pid_file = dir.file(&format!("{name}.pid"));
        let mut cmd = ns.command("dnsmasq");
        cmd.args(config.args(&lease_file, &pid_file, &opts_file));
        let process = Process::spawn(dir, name, cmd);
        Dnsmasq6Server {
            process,
            opts_file,
            lease_file,
            config: config.clone(),
        }
    }

    /// Waits (10 s) until dnsmasq has read its options file (its last
    /// start-up step, after binding the DHCPv6 socket) and panics if it
    /// complained about the configuration.
    pub fn wait_ready(&self) {
        let needle = format!("read {}", self.opts_file.display());
        self.process.wait_for_line(&needle, secs(10));
        self.check_no_complaints(0, self.process.cursor());
    }

    /// Writes the options of `config` to the options file, sends SIGHUP and
    /// waits until dnsmasq has re-read it. Only options can change this way:
    /// it panics if anything else in `config` differs from the running one.
    pub fn reload_options(&mut self, config: &Dnsmasq6Config) {
        let mut same_rest = config.clone();
        same_rest.dns_servers = self.config.dns_servers.clone();
        same_rest.domain_search = self.config.domain_search.clone();
        same_rest.aftr_name = self.config.aftr_name.clone();
        same_rest.sol_max_rt = self.config.sol_max_rt;
        same_rest.raw_options = self.config.raw_options.clone();
        same_rest.extra_option_lines = self.config.extra_option_lines.clone();
        assert_eq!(
            same_rest, self.config,
            "reload_options can only change options; restart dnsmasq for the rest"
        );
        std::fs::write(&self.opts_file, config.options_file()).expect("write options file");
        let mark = self.process.mark();
        self.process.signal(Signal::Hup);
        let needle = format!("read {}", self.opts_file.display());
        let (idx, _) = self
            .process
            .wait_for_line_after(mark, &needle, secs(10))
            .unwrap_or_else(|| {
                panic!("dnsmasq did not re-read options\n{}", self.process.tail(30))
            });
        self.process.set_cursor(idx + 1);
        self.check_no_complaints(mark, idx + 1);
        self.config = config.clone();
    }

    /// Stops dnsmasq (SIGTERM, SIGKILL after 5 s) and returns its exit
    /// status.
    pub fn stop(self) -> ExitStatus {
        self.process.stop(Duration::from_secs(5))
    }

    /// The dnsmasq process, for [`Process::wait_for_line`] on its log.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The config currently in effect.
    pub fn config(&self) -> &Dnsmasq6Config {
        &self.config
    }

    /// The lease file.
    pub fn lease_file(&self) -> &std::path::Path {
        &self.lease_file
    }

    /// The options file.
    pub fn options_file(&self) -> &std::path::Path {
        &self.opts_file
    }

    /// Panics if lines `from..to` of the log contain a configuration
    /// complaint (`bad dhcp-option at line 3 of ...` and the like).
    fn check_no_complaints(&self, from: usize, to: usize) {
        let bad: Vec<String> = self
            .process
            .lines()
            .into_iter()
            .take(to)
            .skip(from)
            .map(|l| l.text)
            .filter(|t| {
                t.contains("bad ")
                    || t.contains("error")
                    || t.contains("failed")
                    || t.contains("unknown")
            })
            .collect();
        assert!(bad.is_empty(), "dnsmasq complained: {bad:#?}");
    }
}
