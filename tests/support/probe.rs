//! A hand-built DHCPv6 Solicit, for checking a server without b4d.
//!
//! A small python3 script runs inside the client namespace (a Rust socket
//! would have to be opened from a thread that entered the namespace). It
//! binds `[::]:546` on the interface, so it cannot run while a DHCPv6 client
//! (b4d) holds that port in the same namespace.

use super::{parse_hex, Netns};
use std::net::Ipv6Addr;
use std::time::Duration;

const SCRIPT: &str = r#"
import os, socket, struct, sys, time
ifname, mode, secs, oro, pd, mac = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5] == "1", sys.argv[6]
idx = socket.if_nametoindex(ifname)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s.bind(("::", 546, 0, idx))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
def opt(code, data): return struct.pack("!HH", code, len(data)) + data
xid = os.urandom(3)
duid = struct.pack("!HH", 3, 1) + bytes.fromhex(mac.replace(":", ""))
codes = [int(c) for c in oro.split(",") if c]
msg = bytes([1]) + xid + opt(1, duid) + opt(8, b"\0\0") + opt(3, struct.pack("!III", 1, 0, 0))
if pd: msg += opt(25, struct.pack("!III", 2, 0, 0))
if codes: msg += opt(6, b"".join(struct.pack("!H", c) for c in codes))
s.sendto(msg, ("ff02::1:2", 547, 0, idx))
deadline = time.monotonic() + secs
while True:
    left = deadline - time.monotonic()
    if left <= 0: break
    s.settimeout(left)
    try: data, addr = s.recvfrom(65535)
    except socket.timeout: break
    if len(data) < 4 or data[1:4] != xid: continue
    print("REPLY", data[0], addr[0].split("%")[0])
    i = 4
    while i + 4 <= len(data):
        c, l = struct.unpack("!HH", data[i:i+4])
        print("OPT", c, data[i+4:i+4+l].hex() or "-")
        i += 4 + l
    print("END", flush=True)
    if mode == "first": break
"#;

/// What the probe sends.
#[derive(Debug, Clone)]
pub struct SolicitProbe {
    /// Codes in the Option Request option (none: no ORO).
    pub oro: Vec<u16>,
    /// Also ask for a prefix (IA_PD, IAID 2).
    pub ia_pd: bool,
    /// MAC for the client DUID-LL (any string of 6 hex bytes).
    pub mac: String,
    /// How long to listen.
    pub wait: Duration,
    /// `true`: collect every reply until `wait` is over (several servers);
    /// `false`: return after the first.
    pub all: bool,
}

impl Default for SolicitProbe {
    /// ORO 23, 24, 64, 82; IA_NA only; DUID-LL 02:00:00:00:0b:4d; first
    /// reply within 5 s.
    fn default() -> Self {
        SolicitProbe {
            oro: vec![23, 24, 64, 82],
            ia_pd: false,
            mac: "02:00:00:00:0b:4d".into(),
            wait: Duration::from_secs(5),
            all: false,
        }
    }
}

/// One server reply (normally an Advertise, type 2).
#[derive(Debug, Clone)]
pub struct ProbeReply {
    pub msg_type: u8,
    pub from: Ipv6Addr,
    /// Top-level options in order: (code, raw bytes).
    pub options: Vec<(u16, Vec<u8>)>,
}

impl ProbeReply {
    /// The first option `code`'s bytes.
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, b)| b.as_slice())
    }

    /// The Server Identifier (option 2).
    pub fn server_id(&self) -> Option<&[u8]> {
        self.option(2)
    }
}

/// Sends one Solicit from `dev` in `ns` to ff02::1:2 and returns the replies
/// (possibly none) with the matching transaction id. Waits for `dev`'s
/// link-local address to be ready first.
pub fn solicit(ns: &Netns, dev: &str, probe: &SolicitProbe) -> Vec<ProbeReply> {
    ns.wait_link_local_ready(dev);
    let oro: Vec<String> = probe.oro.iter().map(|c| c.to_string()).collect();
    let secs = format!("{:.3}", probe.wait.as_secs_f64());
    let out = ns.exec_stdout(
        "python3",
        &[
            "-c",
            SCRIPT,
            dev,
            if probe.all { "all" } else { "first" },
            &secs,
            &oro.join(","),
            if probe.ia_pd { "1" } else { "0" },
            &probe.mac,
        ],
    );
    parse_output(&out)
}

/// Sends a Solicit and returns the first reply; panics if none comes.
pub fn solicit_one(ns: &Netns, dev: &str, probe: &SolicitProbe) -> ProbeReply {
    solicit(ns, dev, probe)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no reply to a Solicit from {dev} in {}", ns.name()))
}

fn parse_output(out: &str) -> Vec<ProbeReply> {
    let mut replies = Vec::new();
    let mut current: Option<ProbeReply> = None;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["REPLY", t, from] => {
                current = Some(ProbeReply {
                    msg_type: t.parse().expect("message type"),
                    from: from.parse().expect("source address"),
                    options: Vec::new(),
                });
            }
            ["OPT", code, data] => {
                let bytes = if *data == "-" {
                    Vec::new()
                } else {
                    parse_hex(data)
                };
                if let Some(r) = current.as_mut() {
                    r.options.push((code.parse().expect("option code"), bytes));
                }
            }
            ["END"] => replies.extend(current.take()),
            _ => {}
        }
    }
    replies
}
