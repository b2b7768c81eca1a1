//! The recorded ubusd conversations in `../shared/ubus-traces/` (see its
//! README), loaded as golden vectors and as scripts for the replay peer.
//!
//! The folder is beside the project root, not in it: a test that needs it is
//! skipped when it is absent (a user's checkout), except when `CI` is set, where
//! its absence is a failure.

use std::path::PathBuf;

use serde_json::Value as Json;

/// One recorded message.
#[derive(Debug, Clone)]
pub struct TraceMsg {
    /// `#N` in the trace (0 for raw proxy logs).
    pub n: u64,
    /// Proxy connection name (`p1`, `n2`, ...).
    pub conn: String,
    /// Sent by the client to ubusd (else ubusd to the client).
    pub to_ubusd: bool,
    pub bytes: Vec<u8>,
    /// The decoded form the recorder wrote (`type_id`, `seq`, `peer`, `attrs`);
    /// `Json::Null` for raw proxy logs.
    pub json: Json,
}

impl TraceMsg {
    pub fn type_id(&self) -> u8 {
        self.bytes[1]
    }

    pub fn seq(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }
}

/// The traces folder, or `None` (after saying SKIP) when it is absent outside CI.
pub fn traces_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/ubus-traces"
    ));
    if dir.join("traces").is_dir() {
        return Some(dir);
    }
    let msg = format!("{} is absent", dir.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, refusing to skip)");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    None
}

fn parse_lines(path: &std::path::Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l}: {e}", path.display()))
        })
        .collect()
}

/// Every `traces/*.jsonl` file, sorted by name.
pub fn trace_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("traces"))
        .expect("traces folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

/// The messages of one `traces/*.jsonl` file, in recorded order.
pub fn load_file(path: &std::path::Path) -> Vec<TraceMsg> {
    parse_lines(path)
        .into_iter()
        .filter(|j| j["kind"] == "msg")
        .map(|j| TraceMsg {
            n: j["n"].as_u64().expect("n"),
            conn: j["conn"].as_str().expect("conn").to_string(),
            to_ubusd: j["dir"] == "client->ubusd",
            bytes: super::parse_hex(j["hex"].as_str().expect("hex")),
            json: j,
        })
        .collect()
}

/// The messages of the trace whose file name starts with `prefix` (`"01-"`).
pub fn load(dir: &std::path::Path, prefix: &str) -> Vec<TraceMsg> {
    let file = trace_files(dir)
        .into_iter()
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no trace {prefix}*"));
    load_file(&file)
}

/// Every message the proxies logged (`raw/proxy-*.jsonl`, `ev` = `data`).
pub fn raw_messages(dir: &std::path::Path) -> Vec<TraceMsg> {
    let mut out = Vec::new();
    for name in ["proxy-root.jsonl", "proxy-nobody.jsonl"] {
        for j in parse_lines(&dir.join("raw").join(name)) {
            if j["ev"] != "data" {
                continue;
            }
            out.push(TraceMsg {
                n: 0,
                conn: j["conn"].as_str().expect("conn").to_string(),
                to_ubusd: j["dir"] == "c2s",
                bytes: super::parse_hex(j["hex"].as_str().expect("hex")),
                json: Json::Null,
            });
        }
    }
    out
}

/// The messages of connection `conn`, in order.
pub fn of_conn<'a>(msgs: &'a [TraceMsg], conn: &str) -> Vec<&'a TraceMsg> {
    msgs.iter().filter(|m| m.conn == conn).collect()
}

/// The message `#n` of a trace.
pub fn nth(msgs: &[TraceMsg], n: u64) -> &TraceMsg {
    msgs.iter()
        .find(|m| m.n == n)
        .unwrap_or_else(|| panic!("no message #{n}"))
}
