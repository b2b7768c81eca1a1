//! Integration-test harness: network namespaces, links, processes and real
//! DHCPv6 servers (kea-dhcp6 2.2, dnsmasq 2.90) for testing b4d end to end.
//!
//! Use it from a test file with `mod support;` and `use support::*;`.
//!
//! Ground rules the harness enforces or relies on:
//!
//! * All traffic stays inside namespaces the test created itself. Nothing
//!   here touches the host's own interfaces or sends to outside addresses.
//! * Every namespace, process and capture is an RAII value: dropping it (also
//!   while unwinding from a panic) kills the processes and deletes the
//!   namespace. Namespaces left behind by a test binary that was SIGKILLed are
//!   reaped by the next test binary that creates a namespace.
//! * Tests run in parallel threads and several test binaries run at once, so
//!   every namespace gets a unique name (`b4t-<pid>-<counter>-<label>`).
//!   Interfaces *inside* a namespace can have fixed names (`eth0`, `br0`,
//!   ...) because each namespace has its own set.
//! * Per-test output (process logs, configs, pcaps) goes to
//!   `<target-dir>/test-output/<test-binary>/<test-name>/` and is kept after
//!   the run for debugging; it is emptied when the test starts again.
//!
//! Modules:
//!
//! * [`netns`]: [`Netns`], [`VethEnd`]/[`veth_pair`], [`Switch`] (an L2 bridge).
//! * [`process`]: [`Process`], a command running in a namespace with its
//!   output captured and searchable ([`Process::wait_for_line`]).
//! * [`kea`]: [`Kea6Config`] and [`Kea6Server`].
//! * [`dnsmasq`]: [`Dnsmasq6Config`], [`Dnsmasq6Server`], [`dns_wire_name_hex`].
//! * [`capture`]: [`Capture`], tcpdump writing a pcap, decoded with `-vv`.
//! * [`probe`]: [`probe::solicit`], a hand-built DHCPv6 Solicit sent by a
//!   tiny python script, for checking servers without b4d.
//! * [`vm`]: [`vm::in_kernel_lab`], which re-runs a test inside the kernel
//!   lab VM (`scripts/vm.sh`) for ip6tnl, nf_tables and other kernel parts.
//! * [`aftr`]: [`Aftr`], an AFTR made of a kernel ip6tnl and nftables
//!   masquerade (inside the VM only).
//!
//! A minimal test:
//!
//! ```ignore
//! mod support;
//! use support::*;
//!
//! #[test]
//! fn b4d_gets_aftr_from_kea() {
//!     if !require_root_and_tools() { return; }
//!     let dir = TestDir::new("b4d_gets_aftr_from_kea");
//!     let client = Netns::new("cli");
//!     let server = Netns::new("srv");
//!     veth_pair(VethEnd::new(&client, "eth0"), VethEnd::new(&server, "eth0"));
//!     let kea = Kea6Server::start(&server, &dir, "kea", &Kea6Config {
//!         aftr_name: Some("aftr.example.net".into()),
//!         ..Kea6Config::default()
//!     });
//!     kea.wait_ready();
//!     let mut cmd = client.command(env!("CARGO_BIN_EXE_b4d"));
//!     cmd.args(["--interface", "eth0"]);
//!     let b4d = Process::spawn(&dir, "b4d", cmd);
//!     b4d.wait_for_line("aftr.example.net", secs(20));
//! }
//! ```
// Each test binary uses only part of the harness.
#![allow(dead_code, unused_imports)]

pub mod aftr;
pub mod capture;
pub mod dnsmasq;
pub mod dslite_lab;
pub mod kea;
pub mod netns;
pub mod probe;
pub mod process;
pub mod radvd;
pub mod ubus_peer;
pub mod ubus_traces;
pub mod ubusd_replay;
pub mod unbound;
pub mod vm;

pub use aftr::{Aftr, AftrConfig};
pub use capture::Capture;
pub use dnsmasq::{dns_wire_name, dns_wire_name_hex, Dnsmasq6Config, Dnsmasq6Server};
pub use kea::{Kea6Config, Kea6Server, KeaLogLevel};
pub use netns::{veth_pair, wait_link_local_ready, Netns, Switch, VethEnd};
pub use process::{Process, Signal};
pub use unbound::{dig, dig_text, require_dns_tools, signed_test_zone, Unbound};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Shorthand for `Duration::from_secs`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Shorthand for `Duration::from_millis`.
pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// External programs the harness runs.
pub const REQUIRED_TOOLS: &[&str] = &[
    "ip",
    "ss",
    "sysctl",
    "kea-dhcp6",
    "dnsmasq",
    "tcpdump",
    "python3",
];

/// Checks that the tests can run: root (for namespaces) and every tool in
/// [`REQUIRED_TOOLS`] on `PATH`.
///
/// Returns `true` when everything is there. Otherwise, when the `CI`
/// environment variable is set, it panics (CI must never silently skip);
/// without `CI` it prints a `SKIP` line and returns `false`, and the test
/// should return early. `scripts/install-test-deps.sh` installs the tools.
pub fn require_root_and_tools() -> bool {
    let mut problems = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        problems.push("not running as root (needed for network namespaces)".to_string());
    }
    for tool in REQUIRED_TOOLS {
        if find_in_path(tool).is_none() {
            problems.push(format!("tool `{tool}` not found on PATH"));
        }
    }
    if problems.is_empty() {
        return true;
    }
    let msg = format!(
        "integration test prerequisites missing: {}; run scripts/install-test-deps.sh as root",
        problems.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, refusing to skip)");
    }
    // Written to the real stderr: libtest hides eprintln! of passing tests.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    false
}

/// Looks a program up on `PATH` (also `/usr/sbin` and `/sbin`, where
/// `kea-dhcp6`, `dnsmasq` and `ip` live but which a non-root PATH may lack).
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A per-test output folder, `<target-dir>/test-output/<test-binary>/<name>/`.
///
/// It is emptied when created and kept after the test, so logs, generated
/// server configs, lease files and pcaps can be inspected after a failure.
/// The test binary's name is part of the path because several test binaries
/// run at once and could use the same test name. If the same test binary
/// runs twice at once (two `cargo test` on one machine), the second one
/// finds the folder locked and uses `<name>-<pid>/` instead.
#[derive(Debug, Clone)]
pub struct TestDir {
    path: PathBuf,
    /// Holds an exclusive `flock` on `.<name>.lock` beside the folder while
    /// any clone is alive.
    _lock: std::sync::Arc<std::fs::File>,
}

impl TestDir {
    /// Creates (or empties) the folder for the test called `name`.
    pub fn new(name: &str) -> TestDir {
        assert!(
            !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
            "bad test dir name {name:?}"
        );
        let parent = test_output_root().join(env!("CARGO_CRATE_NAME"));
        std::fs::create_dir_all(&parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        let (path, lock) = match try_lock(&parent.join(format!(".{name}.lock"))) {
            Some(lock) => (parent.join(name), lock),
            None => {
                let alt = format!("{name}-{}", std::process::id());
                let lock = try_lock(&parent.join(format!(".{alt}.lock")))
                    .unwrap_or_else(|| panic!("test dir {alt} is locked"));
                eprintln!("note: test dir {name} is in use by another run, using {alt}");
                (parent.join(alt), lock)
            }
        };
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot empty {}: {e}", path.display()));
        }
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TestDir {
            path,
            _lock: std::sync::Arc::new(lock),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder (the file is not created).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to a file in the folder and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.file(name);
        std::fs::write(&p, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

/// Opens `path` and takes an exclusive, non-blocking `flock` on it.
fn try_lock(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(file)
}

/// `<target-dir>/test-output`. Cargo sets `CARGO_TARGET_TMPDIR` to
/// `<target-dir>/tmp` for integration tests, which also honours a custom
/// `CARGO_TARGET_DIR`.
pub(crate) fn test_output_root() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
        .join("test-output")
}

/// Polls `f` every 50 ms until it returns `Some`, or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(millis(50));
    }
}

/// Escapes a string for inclusion in a JSON string literal (without quotes).
pub(crate) fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Lower-case hex of `bytes` without separators (`"0a0b"`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (separators `:`, `-` and spaces are ignored) into bytes.
pub fn parse_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !matches!(c, b':' | b'-' | b' '))
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    digits
        .chunks(2)
        .map(|pair| {
            let txt = std::str::from_utf8(pair).expect("hex is ascii");
            u8::from_str_radix(txt, 16).unwrap_or_else(|_| panic!("bad hex {s:?}"))
        })
        .collect()
}
