//! Packet captures with tcpdump inside a namespace.

use super::{millis, secs, Netns, Process, TestDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The BPF filter for DHCPv6 traffic.
pub const DHCPV6_FILTER: &str = "udp port 546 or udp port 547";

/// One decoded packet from [`Capture::packets`].
#[derive(Debug, Clone)]
pub struct Packet {
    /// Capture time, seconds since the Unix epoch (`tcpdump -tt`).
    pub time: f64,
    /// tcpdump's `-n -vv` text for the packet (continuation lines joined
    /// with a space). DHCPv6 packets read like
    /// `... fe80::1.546 > ff02::1:2.547: [...] dhcp6 solicit (xid=... (client-ID ...) ...)`,
    /// message types as `dhcp6 solicit|advertise|request|reply|renew|rebind|release|decline|reconfigure|inf-req`.
    pub text: String,
}

/// `tcpdump -w <dir>/<name>.pcap -U --immediate-mode` on one interface of a
/// namespace. It is running (listening) when [`start`](Capture::start)
/// returns; dropping it stops tcpdump, and the pcap stays in the test dir.
#[derive(Debug)]
pub struct Capture {
    process: Process,
    pcap: PathBuf,
}

impl Capture {
    /// Starts capturing on `iface` in `ns` with the BPF `filter`.
    pub fn start(ns: &Netns, dir: &TestDir, name: &str, iface: &str, filter: &str) -> Capture {
        let pcap = dir.file(&format!("{name}.pcap"));
        let mut cmd = ns.command("tcpdump");
        cmd.args([
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
        ])
        .arg(&pcap)
        .arg(filter);
        let process = Process::spawn(dir, name, cmd);
        process.wait_for_line("listening on", secs(10));
        Capture { process, pcap }
    }

    /// Starts capturing DHCPv6 ([`DHCPV6_FILTER`]) on `iface`.
    pub fn dhcpv6(ns: &Netns, dir: &TestDir, name: &str, iface: &str) -> Capture {
        Capture::start(ns, dir, name, iface, DHCPV6_FILTER)
    }

    /// Stops tcpdump (SIGTERM, which flushes the file). Reading works
    /// without stopping too, since every packet is written at once.
    pub fn stop(&self) {
        self.process.stop(secs(5));
    }

    /// The pcap file.
    pub fn pcap_path(&self) -> &Path {
        &self.pcap
    }

    /// `tcpdump -r FILE -n -tt -vv` output lines (nothing is sent: it only
    /// reads the file).
    pub fn read_text(&self) -> Vec<String> {
        read_pcap_text(&self.pcap, &["-n", "-tt", "-vv"])
    }

    /// The packets captured so far, one per entry.
    pub fn packets(&self) -> Vec<Packet> {
        let mut packets: Vec<Packet> = Vec::new();
        for line in self.read_text() {
            let first = line.split_whitespace().next().unwrap_or("");
            match first.parse::<f64>() {
                Ok(time) if first.contains('.') => packets.push(Packet { time, text: line }),
                _ => {
                    if let Some(last) = packets.last_mut() {
                        last.text.push(' ');
                        last.text.push_str(line.trim());
                    }
                }
            }
        }
        packets
    }

    /// Packets whose text contains `needle` (e.g. `"dhcp6 solicit"`).
    pub fn matching(&self, needle: &str) -> Vec<Packet> {
        self.packets()
            .into_iter()
            .filter(|p| p.text.contains(needle))
            .collect()
    }

    /// Waits until at least `count` packets contain `needle`; returns them.
    /// Panics (listing what was captured) after `timeout`.
    pub fn wait_for_packets(&self, needle: &str, count: usize, timeout: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.matching(needle);
            if found.len() >= count {
                return found;
            }
            if Instant::now() >= deadline {
                let all: Vec<String> = self.packets().into_iter().map(|p| p.text).collect();
                panic!(
                    "capture {}: {} of {count} packets with {needle:?} after {timeout:?}; captured:\n{}",
                    self.pcap.display(),
                    found.len(),
                    all.join("\n")
                );
            }
            std::thread::sleep(millis(100));
        }
    }
}

/// Runs `tcpdump -r PCAP ARGS` and returns its stdout lines. A file still
/// being written may end in a partial record; tcpdump then complains on
/// stderr, which is ignored.
pub fn read_pcap_text(pcap: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(pcap)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tcpdump -r: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
