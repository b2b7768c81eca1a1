//! DNS fixtures: unbound (1.17, Debian) serving a zone authoritatively over
//! IPv6 in a namespace, a DNSSEC-signed test zone made with ldns at test
//! time, and `dig` (bind9-dnsutils) as the client.
//!
//! Unbound's `auth-zone` answers from the zone file with RRSIGs when asked
//! with DO (RFC 4035 §3.1.1). Names outside the zone would be resolved from
//! the root; the upstream namespace has no route anywhere, so those fail
//! (SERVFAIL) without a packet leaving it.

use super::{find_in_path, poll_until, require_root_and_tools, secs, Netns, Process, TestDir};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Programs the DNS tests need besides [`super::REQUIRED_TOOLS`].
pub const DNS_TOOLS: &[&str] = &["unbound", "dig", "ldns-keygen", "ldns-signzone", "python3"];

/// [`require_root_and_tools`] plus [`DNS_TOOLS`], with the same rule: panic
/// under CI, print SKIP otherwise.
pub fn require_dns_tools() -> bool {
    if !require_root_and_tools() {
        return false;
    }
    let missing: Vec<&str> = DNS_TOOLS
        .iter()
        .copied()
        .filter(|t| find_in_path(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "DNS test tools missing: {}; run scripts/install-test-deps.sh as root",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, refusing to skip)");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

/// The test zone `example.test.`: www (A, AAAA), big (a TXT of `big_txt`
/// bytes of text), odd (TYPE65280, RFC 3597 syntax), signed with ECDSA
/// P-256 (algorithm 13) by `ldns-signzone`. Returns the signed file's path.
pub fn signed_test_zone(dir: &TestDir, big_txt: usize) -> PathBuf {
    let mut big = String::new();
    let mut left = big_txt;
    while left > 0 {
        let n = left.min(255);
        big.push_str(&format!(" \"{}\"", "x".repeat(n)));
        left -= n;
    }
    let zone = format!(
        "$ORIGIN example.test.\n$TTL 300\n\
         @ IN SOA ns.example.test. admin.example.test. 1 7200 3600 1209600 60\n\
         @ IN NS ns\n\
         ns IN AAAA 2001:db8:1::53\n\
         www IN A 192.0.2.80\n\
         www IN AAAA 2001:db8::80\n\
         big IN TXT{big}\n\
         odd IN TYPE65280 \\# 4 deadbeef\n"
    );
    let zone_file = dir.write("example.test.zone", zone);
    let keygen = std::process::Command::new("ldns-keygen")
        .current_dir(dir.path())
        .args(["-a", "ECDSAP256SHA256", "-k", "example.test"])
        .output()
        .expect("ldns-keygen runs");
    assert!(keygen.status.success(), "ldns-keygen: {keygen:?}");
    let key = String::from_utf8_lossy(&keygen.stdout).trim().to_string();
    let sign = std::process::Command::new("ldns-signzone")
        .current_dir(dir.path())
        .arg(&zone_file)
        .arg(&key)
        .output()
        .expect("ldns-signzone runs");
    assert!(sign.status.success(), "ldns-signzone: {sign:?}");
    dir.file("example.test.zone.signed")
}

/// An unbound serving `zone` (the signed test zone) on `addrs`, port 53.
pub struct Unbound {
    process: Process,
    /// As unbound and dig write them: a link-local one with its zone.
    addrs: Vec<String>,
}

impl Unbound {
    pub fn start(
        ns: &Netns,
        dir: &TestDir,
        name: &str,
        addrs: &[Ipv6Addr],
        zone: &Path,
    ) -> Unbound {
        let addrs: Vec<String> = addrs.iter().map(Ipv6Addr::to_string).collect();
        Unbound::start_on(ns, dir, name, &addrs, zone)
    }

    /// As [`Unbound::start`], on addresses written out, so that a
    /// link-local one can carry its zone (`fe80::53%eth0`).
    pub fn start_on(
        ns: &Netns,
        dir: &TestDir,
        name: &str,
        addrs: &[String],
        zone: &Path,
    ) -> Unbound {
        let interfaces: String = addrs
            .iter()
            .map(|a| format!("  interface: {a}\n"))
            .collect();
        let config = format!(
            "server:\n{interfaces}  port: 53\n  do-ip4: no\n  do-daemonize: no\n  use-syslog: no\n\
             \x20 logfile: \"\"\n  log-queries: yes\n  verbosity: 1\n  username: \"\"\n  chroot: \"\"\n\
             \x20 pidfile: \"\"\n  directory: \"{dir}\"\n  access-control: ::/0 allow\n\
             \x20 module-config: \"iterator\"\n  edns-buffer-size: 4096\n  max-udp-size: 4096\n\
             \x20 minimal-responses: yes\n  local-zone: \"test.\" nodefault\n\
             auth-zone:\n  name: \"example.test.\"\n  zonefile: \"{zone}\"\n  for-downstream: yes\n  for-upstream: no\n\
             remote-control:\n  control-enable: no\n",
            dir = dir.path().display(),
            zone = zone.display()
        );
        let conf = dir.write(&format!("{name}.conf"), config);
        let process = ns.spawn(
            dir,
            name,
            "unbound",
            &["-d", "-c", &conf.display().to_string()],
        );
        let unbound = Unbound {
            process,
            addrs: addrs.to_vec(),
        };
        unbound.wait_ready(ns);
        unbound
    }

    /// Waits until every address answers a query for the zone's SOA.
    fn wait_ready(&self, ns: &Netns) {
        for addr in &self.addrs {
            let server = format!("@{addr}");
            let ready = poll_until(secs(10), || {
                let out = ns.try_exec(
                    "dig",
                    &[
                        &server,
                        "+short",
                        "+time=1",
                        "+tries=1",
                        "example.test",
                        "SOA",
                    ],
                );
                String::from_utf8_lossy(&out.stdout)
                    .contains("ns.example.test")
                    .then_some(())
            });
            assert!(
                ready.is_some(),
                "unbound on {addr} not answering\n{}",
                self.process.tail(30)
            );
        }
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Stops it (SIGTERM, then SIGKILL).
    pub fn stop(&self) {
        self.process.stop(secs(3));
    }
}

/// Runs `dig` in `ns` with `args` (add `+time`/`+tries` to bound it).
pub fn dig(ns: &Netns, args: &[&str]) -> Output {
    ns.try_exec("dig", args)
}

/// [`dig`]'s stdout.
pub fn dig_text(ns: &Netns, args: &[&str]) -> String {
    String::from_utf8_lossy(&dig(ns, args).stdout).into_owned()
}
