//! A real kea-dhcp6 (ISC Kea 2.2) server running in a namespace.
//!
//! Useful log lines (kea message ids; the fixture's default log level
//! `KeaLogLevel::Debug(45)` shows all of them):
//!
//! | message id | severity | meaning |
//! | --- | --- | --- |
//! | `DHCP6_STARTED` | INFO | serving (sockets open) |
//! | `DHCP6_LEASE_ADVERT` / `DHCP6_PD_LEASE_ADVERT` | INFO | address / prefix offered in an Advertise |
//! | `DHCP6_LEASE_ALLOC` / `DHCP6_PD_LEASE_ALLOC` | INFO | lease granted in a Reply (also to Renew/Rebind) |
//! | `DHCP6_RELEASE_NA` / `DHCP6_RELEASE_PD` | INFO | address / prefix released properly |
//! | `DHCP6_RELEASE_NA_FAIL*` / `DHCP6_RELEASE_PD_FAIL*` | INFO/WARN | release refused (wrong DUID, IAID, unknown lease) |
//! | `DHCP6_DYNAMIC_RECONFIGURATION_SUCCESS` | INFO | SIGHUP reload done |
//! | `DHCP6_PACKET_RECEIVED` | DEBUG, debuglevel >= 45 | e.g. `SOLICIT (type 1) received from fe80::...` |
//! | `DHCP6_PACKET_SEND` | DEBUG, debuglevel >= 40 | e.g. `trying to send packet ADVERTISE (type 2) ...` |
//!
//! Every line has the client DUID and transaction id (`duid=[00:03:...],
//! tid=0x...`). At debuglevel 55 kea also dumps whole packets
//! (`DHCP6_QUERY_DATA`); that is verbose.
//!
//! Kea checks option data against its option definitions, so it cannot send
//! a *malformed* standard option (an AFTR-Name that is not a valid wire-format
//! name is rejected at config time): use dnsmasq's raw options for that.
//! Kea 2.2 re-reads its config file on SIGHUP ([`Kea6Server::reload`]).

use super::netns::ns_command;
use super::{json_escape, secs, Netns, Process, TestDir};
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// How much kea logs (logger `kea-dhcp6`, to stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeaLogLevel {
    /// `INFO`: start, lease allocation / release, reloads.
    Info,
    /// `DEBUG` with the given debuglevel (0..=99). 40 shows packets sent,
    /// 45 also packets received, 55 dumps packet contents.
    Debug(u8),
}

/// A kea-dhcp6 configuration, rendered to JSON by [`Kea6Config::to_json`].
///
/// Defaults: interface `eth0`, subnet `2001:db8:1::/64`, pool
/// `2001:db8:1::100-2001:db8:1::1ff`, no PD pool, no options, T1/T2 1000/2000
/// s, lifetimes 3000/4000 s, server id DUID-EN 2495 + `"0b4d0001"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Kea6Config {
    /// Interface kea listens on; the subnet is tied to it, so clients on the
    /// link get it without a relay and without a global server address.
    pub interface: String,
    /// The subnet, e.g. `"2001:db8:1::/64"`.
    pub subnet: String,
    /// Kea subnet id.
    pub subnet_id: u32,
    /// Address pool (`"first-last"` or a prefix). `None`: no IA_NA addresses.
    pub pool: Option<String>,
    /// Prefix delegation pool: (prefix, prefix length, delegated length),
    /// e.g. `("2001:db8:100::".into(), 40, 56)`.
    pub pd_pool: Option<(String, u8, u8)>,
    /// Option 23.
    pub dns_servers: Vec<Ipv6Addr>,
    /// Option 24.
    pub domain_search: Vec<String>,
    /// Option 64 (RFC 6334), sent even if not requested.
    pub aftr_name: Option<String>,
    /// Option 82 (SOL_MAX_RT), sent even if not requested.
    pub sol_max_rt: Option<u32>,
    /// Option 7 (Preference), sent even if not requested.
    pub preference: Option<u8>,
    /// Options kea has no definition for: (code, raw bytes), sent even if not
    /// requested. Kea refuses raw data for codes it knows (23, 24, 64, ...).
    pub raw_options: Vec<(u16, Vec<u8>)>,
    /// T1 (seconds).
    pub renew_timer: u32,
    /// T2 (seconds).
    pub rebind_timer: u32,
    pub preferred_lifetime: u32,
    pub valid_lifetime: u32,
    /// Answer a Solicit with Rapid Commit directly with a Reply.
    pub rapid_commit: bool,
    /// Identifier (hex) of the DUID-EN server id with enterprise 2495 (ISC).
    /// `None` lets kea generate a DUID-LLT (kept in the test dir).
    pub server_id_hex: Option<String>,
    pub log_level: KeaLogLevel,
}

impl Default for Kea6Config {
    fn default() -> Self {
        Kea6Config {
            interface: "eth0".into(),
            subnet: "2001:db8:1::/64".into(),
            subnet_id: 1,
            pool: Some("2001:db8:1::100-2001:db8:1::1ff".into()),
            pd_pool: None,
            dns_servers: Vec::new(),
            domain_search: Vec::new(),
            aftr_name: None,
            sol_max_rt: None,
            preference: None,
            raw_options: Vec::new(),
            renew_timer: 1000,
            rebind_timer: 2000,
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            rapid_commit: false,
            server_id_hex: Some("0b4d0001".into()),
            log_level: KeaLogLevel::Debug(45),
        }
    }
}

impl Kea6Config {
    /// Renders the `{"Dhcp6": ...}` document. `lease_file` and `data_dir`
    /// (where kea keeps a generated server id) must be writable.
    pub fn to_json(&self, lease_file: &std::path::Path, data_dir: &std::path::Path) -> String {
        let q = |s: &str| format!("\"{}\"", json_escape(s));
        let mut options: Vec<String> = Vec::new();
        let opt = |name: &str, data: &str, always: bool| {
            format!(
                "{{ \"name\": {}, \"data\": {}, \"always-send\": {always} }}",
                q(name),
                q(data)
            )
        };
        if !self.dns_servers.is_empty() {
            let list: Vec<String> = self.dns_servers.iter().map(|a| a.to_string()).collect();
            options.push(opt("dns-servers", &list.join(", "), false));
        }
        if !self.domain_search.is_empty() {
            options.push(opt("domain-search", &self.domain_search.join(", "), false));
        }
        if let Some(aftr) = &self.aftr_name {
            options.push(opt("aftr-name", aftr, true));
        }
        if let Some(rt) = self.sol_max_rt {
            options.push(opt("solmax-rt", &rt.to_string(), true));
        }
        if let Some(pref) = self.preference {
            options.push(opt("preference", &pref.to_string(), true));
        }
        for (code, bytes) in &self.raw_options {
            options.push(format!(
                "{{ \"code\": {code}, \"space\": \"dhcp6\", \"csv-format\": false, \"data\": {}, \"always-send\": true }}",
                q(&super::hex(bytes))
            ));
        }

        let mut subnet = String::new();
        let _ = write!(
            subnet,
            "{{ \"id\": {}, \"subnet\": {}, \"interface\": {}, \"rapid-commit\": {}",
            self.subnet_id,
            q(&self.subnet),
            q(&self.interface),
            self.rapid_commit
        );
        match &self.pool {
            Some(pool) => {
                let _ = write!(subnet, ", \"pools\": [ {{ \"pool\": {} }} ]", q(pool));
            }
            None => subnet.push_str(", \"pools\": [ ]"),
        }
        if let Some((prefix, len, delegated)) = &self.pd_pool {
            let _ = write!(
                subnet,
                ", \"pd-pools\": [ {{ \"prefix\": {}, \"prefix-len\": {len}, \"delegated-len\": {delegated} }} ]",
                q(prefix)
            );
        }
        subnet.push_str(" }");

        let server_id = match &self.server_id_hex {
            Some(id) => format!(
                "  \"server-id\": {{ \"type\": \"EN\", \"enterprise-id\": 2495, \"identifier\": {}, \"persist\": false }},\n",
                q(id)
            ),
            None => String::new(),
        };
        let (severity, debuglevel) = match self.log_level {
            KeaLogLevel::Info => ("INFO", 0),
            KeaLogLevel::Debug(level) => ("DEBUG", level.min(99)),
        };

        format!(
            r#"{{
"Dhcp6": {{
  "interfaces-config": {{ "interfaces": [ {iface} ] }},
  "data-directory": {data_dir},
  "lease-database": {{ "type": "memfile", "persist": true, "name": {lease_file}, "lfc-interval": 0 }},
{server_id}  "renew-timer": {t1},
  "rebind-timer": {t2},
  "preferred-lifetime": {pl},
  "valid-lifetime": {vl},
  "option-data": [
    {options}
  ],
  "subnet6": [
    {subnet}
  ],
  "loggers": [ {{
    "name": "kea-dhcp6",
    "output_options": [ {{ "output": "stdout", "flush": true }} ],
    "severity": "{severity}",
    "debuglevel": {debuglevel}
  }} ]
}}
}}
"#,
            iface = q(&self.interface),
            data_dir = q(&data_dir.to_string_lossy()),
            lease_file = q(&lease_file.to_string_lossy()),
            t1 = self.renew_timer,
            t2 = self.rebind_timer,
            pl = self.preferred_lifetime,
            vl = self.valid_lifetime,
            options = options.join(",\n    "),
        )
    }
}

/// A running `kea-dhcp6 -c <dir>/<name>.json` inside a namespace.
///
/// Files in the [`TestDir`]: `<name>.json` (config), `<name>-leases6.csv`
/// (memfile leases), `<name>.log/.stdout/.stderr` (kea logs to stdout),
/// `<name>.kea-dhcp6.pid` and kea's logger lock file. Dropping it stops kea.
#[derive(Debug)]
pub struct Kea6Server {
    process: Process,
    config_path: PathBuf,
    lease_file: PathBuf,
    data_dir: PathBuf,
    dir: TestDir,
    config: Kea6Config,
    ns_name: String,
}

impl Kea6Server {
    /// Waits for the interface's link-local address, checks the config with
    /// `kea-dhcp6 -t` (panicking with kea's complaint if it is invalid) and
    /// starts kea. Call [`wait_ready`](Self::wait_ready) before sending to it.
    pub fn start(ns: &Netns, dir: &TestDir, name: &str, config: &Kea6Config) -> Kea6Server {
        ns.wait_link_local_ready(&config.interface);
        let config_path = dir.file(&format!("{name}.json"));
        let lease_file = dir.file(&format!("{name}-leases6.csv"));
        let data_dir = dir.path().to_path_buf();
        std::fs::write(&config_path, config.to_json(&lease_file, &data_dir))
            .expect("write kea config");
        check_config(ns.name(), dir, &config_path);

        let mut cmd = ns.command("kea-dhcp6");
        cmd.arg("-c").arg(&config_path);
        set_kea_env(&mut cmd, dir);
        let process = Process::spawn(dir, name, cmd);
        Kea6Server {
            process,
            config_path,
            lease_file,
            data_dir,
            dir: dir.clone(),
            config: config.clone(),
            ns_name: ns.name().to_string(),
        }
    }

    /// Waits (10 s) until kea logs `DHCP6_STARTED` and has its UDP port 547
    /// socket open; panics otherwise.
    pub fn wait_ready(&self) {
        self.process.wait_for_line("DHCP6_STARTED", secs(10));
        let pid = format!("pid={},", self.process.pid());
        let ok = super::poll_until(secs(5), || {
            let out = ns_command(&self.ns_name, "ss")
                .args(["-H", "-ulnp"])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines()
                .any(|l| l.contains(":547 ") && l.contains(&pid))
                .then_some(())
        });
        assert!(
            ok.is_some(),
            "kea started but has no UDP 547 socket\n{}",
            self.process.tail(30)
        );
        let failures = self.process.lines_matching("OPEN_SOCKET_FAIL");
        assert!(failures.is_empty(), "kea socket errors: {failures:#?}");
    }

    /// Rewrites the config file, checks it with `kea-dhcp6 -t`, sends SIGHUP
    /// and waits (10 s) for `DHCP6_DYNAMIC_RECONFIGURATION_SUCCESS`; panics
    /// if kea reports a failure. Leases survive (memfile is re-read).
    pub fn reload(&mut self, config: &Kea6Config) {
        std::fs::write(
            &self.config_path,
            config.to_json(&self.lease_file, &self.data_dir),
        )
        .expect("write kea config");
        check_config(&self.ns_name, &self.dir, &self.config_path);
        let mark = self.process.mark();
        self.process.signal(super::Signal::Hup);
        let (idx, line) = self
            .process
            .wait_for_line_after(mark, "DHCP6_DYNAMIC_RECONFIGURATION_", secs(10))
            .unwrap_or_else(|| panic!("kea did not reload\n{}", self.process.tail(30)));
        // The "initiate" line is `DHCP6_DYNAMIC_RECONFIGURATION initiate...`
        // (no underscore), so this is the outcome: _SUCCESS or _FAIL.
        assert!(
            line.contains("DHCP6_DYNAMIC_RECONFIGURATION_SUCCESS"),
            "kea reload failed: {line}\n{}",
            self.process.tail(30)
        );
        self.process.set_cursor(idx + 1);
        self.config = config.clone();
    }

    /// Stops kea (SIGTERM, SIGKILL after 5 s) and returns its exit status.
    pub fn stop(self) -> ExitStatus {
        self.process.stop(Duration::from_secs(5))
    }

    /// The kea process, for [`Process::wait_for_line`] on its log.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The config currently loaded.
    pub fn config(&self) -> &Kea6Config {
        &self.config
    }

    /// The memfile lease database (CSV).
    pub fn lease_file(&self) -> &std::path::Path {
        &self.lease_file
    }

    /// Current contents of the lease file.
    pub fn leases(&self) -> String {
        std::fs::read_to_string(&self.lease_file).unwrap_or_default()
    }
}

fn set_kea_env(cmd: &mut std::process::Command, dir: &TestDir) {
    cmd.env("KEA_PIDFILE_DIR", dir.path())
        .env("KEA_LOCKFILE_DIR", dir.path());
}

/// `kea-dhcp6 -t FILE` inside the namespace (kea checks that the interfaces
/// exist, so it must run there).
fn check_config(ns_name: &str, dir: &TestDir, path: &std::path::Path) {
    let mut cmd = ns_command(ns_name, "kea-dhcp6");
    cmd.arg("-t").arg(path);
    set_kea_env(&mut cmd, dir);
    let out = cmd.output().expect("run kea-dhcp6 -t");
    if !out.status.success() {
        panic!(
            "kea-dhcp6 -t rejects {}:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
