//! The kernel lab from the test side: a test that needs kernel features the
//! build machine lacks (ip6tnl, nf_tables) re-runs itself inside the VM that
//! `scripts/vm.sh run` boots (Debian's kernel, the host's files read-only).
//!
//! ```ignore
//! #[test]
//! fn tunnel_something() {
//!     let Some(_lab) = vm::in_kernel_lab() else { return }; // host: ran in the VM
//!     // here: inside the VM as root; Netns, kea, tcpdump, nft, ip6tnl all work
//! }
//! ```
//!
//! On the host, [`in_kernel_lab`] boots one VM that runs only this test
//! (`<test binary> --exact <name> --include-ignored --nocapture
//! --test-threads=1`), shows its output, asserts that it passed *and* that
//! the test really ran (libtest printed `1 passed`), and returns `None`.
//! Inside the VM (`B4D_IN_VM=1`) it returns `Some` at once.
//!
//! The host's `<target>/test-output/` folder is shared read-write with the
//! VM, so the logs and pcaps a test writes there inside land on the host as
//! usual. The VM's own files (the guest kernel's console log, the exit code,
//! the command that ran) are kept in `<target>/test-output/<binary>/<name>.vm/`.
//!
//! One limit of 9p: a Unix domain socket bound in a shared folder (such as
//! the test's `TestDir` inside the VM) cannot be connected to (`ENXIO`, and
//! qemu logs "attempt to open special file"). Put sockets in a
//! [`LocalDir`] instead, which lives on the guest's own tmpfs.
//!
//! `scripts/vm.sh` lets at most `B4D_VM_SLOTS` (default 1) VMs run at once,
//! so kernel tests started in parallel threads queue for the VM instead of
//! slowing each other down. `B4D_VM_TEST_TIMEOUT` (seconds, default 600)
//! bounds one test's VM.

use super::{find_in_path, test_output_root};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Set (to `1`) by `scripts/vm.sh` inside the VM.
pub const IN_VM_ENV: &str = "B4D_IN_VM";

/// Default bound on one test's VM, boot included.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// Proof that the code runs inside the kernel lab VM (see [`in_kernel_lab`]).
#[derive(Debug)]
pub struct KernelLab {
    _private: (),
}

impl KernelLab {
    /// `uname -r` of the guest kernel (Debian's, e.g. `6.1.0-56-amd64`).
    pub fn kernel_release(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// `modprobe MODULE`, panicking with modprobe's output on failure.
    pub fn modprobe(&self, module: &str) {
        let out = Command::new("modprobe")
            .arg(module)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run modprobe: {e}"));
        assert!(
            out.status.success(),
            "modprobe {module} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether this process runs inside the kernel lab VM.
pub fn inside_vm() -> bool {
    std::env::var_os(IN_VM_ENV).is_some_and(|v| v == "1")
}

/// Inside the VM: `Some`. On the host: runs the current test in a VM, panics
/// if it failed there or did not run, and returns `None` (the caller
/// returns). The test is found from the current thread's name, which libtest
/// sets to the test's full path.
pub fn in_kernel_lab() -> Option<KernelLab> {
    if inside_vm() {
        return Some(KernelLab { _private: () });
    }
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(name) if name != "main" => name.to_string(),
        _ => panic!(
            "in_kernel_lab: cannot tell the test's name from thread {:?}; \
             call in_kernel_lab_named(\"module::test_name\") instead",
            thread.name()
        ),
    };
    in_kernel_lab_named(&name)
}

/// [`in_kernel_lab`] for a test named explicitly (its full path, as
/// `cargo test -- --exact` wants it).
pub fn in_kernel_lab_named(test_name: &str) -> Option<KernelLab> {
    if inside_vm() {
        return Some(KernelLab { _private: () });
    }
    if !vm_available() {
        return None;
    }
    run_test_in_vm(test_name);
    None
}

/// `scripts/vm.sh` in this repository.
pub fn vm_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/vm.sh")
}

/// Checks that a VM can be booted here: root (the guest reads the whole host
/// root over 9p) and qemu installed (`scripts/vm.sh setup`). Like
/// [`require_root_and_tools`](super::require_root_and_tools): panics when
/// `CI` is set, else prints a `SKIP` line and returns `false`.
pub fn vm_available() -> bool {
    let mut problems = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        problems.push("not running as root".to_string());
    }
    if find_in_path("qemu-system-x86_64").is_none() {
        problems.push("qemu-system-x86_64 not found".to_string());
    }
    if problems.is_empty() {
        return true;
    }
    let msg = format!(
        "kernel lab VM cannot run: {}; run scripts/vm.sh setup as root",
        problems.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, refusing to skip)");
    }
    let _ = writeln!(std::io::stderr(), "SKIP (kernel test NOT run): {msg}");
    false
}

/// The folder for the VM's own files of test `name`: a sibling of the test's
/// [`TestDir`](super::TestDir) (which the test empties when it starts inside
/// the VM).
pub fn vm_results_dir(test_name: &str) -> PathBuf {
    test_output_root()
        .join(env!("CARGO_CRATE_NAME"))
        .join(format!("{}.vm", test_name.replace("::", "__")))
}

fn timeout_secs() -> u64 {
    std::env::var("B4D_VM_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
}

/// Boots a VM running only `test_name` of this test binary; panics unless
/// it passed there.
fn run_test_in_vm(test_name: &str) {
    let shared = test_output_root();
    std::fs::create_dir_all(&shared)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", shared.display()));
    let results = vm_results_dir(test_name);
    let exe = std::env::current_exe().expect("path of the test binary");

    let mut cmd = Command::new(vm_script());
    cmd.arg("run")
        .arg("--share")
        .arg(&shared)
        .arg("--results")
        .arg(&results)
        .arg("--timeout")
        .arg(timeout_secs().to_string())
        .arg("--")
        .arg(&exe)
        .args([
            "--exact",
            test_name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!("[vm] {test_name}: booting the kernel lab ({cmd:?})");
    let started = std::time::Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", vm_script().display()));

    // Both streams are echoed as they come (libtest shows them on failure,
    // or live with --nocapture) and kept for the checks below.
    let transcript = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("piped")) as Box<dyn Read + Send>,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, stream)| {
        let transcript = Arc::clone(&transcript);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if i == 0 {
                    println!("[vm] {line}");
                } else {
                    eprintln!("[vm] {line}");
                }
                let mut t = transcript.lock().unwrap_or_else(|e| e.into_inner());
                t.push_str(&line);
                t.push('\n');
            }
        })
    })
    .collect();
    let status = child.wait().expect("wait for scripts/vm.sh");
    for reader in readers {
        let _ = reader.join();
    }
    let transcript = transcript.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let _ = std::fs::write(results.join("output.log"), &transcript);
    println!(
        "[vm] {test_name}: VM finished in {:.1} s with {status}",
        started.elapsed().as_secs_f64()
    );
    let console = results.join("console.log");
    assert!(
        status.success(),
        "{test_name} failed inside the kernel lab VM ({status}); guest console: {}, output: {}",
        console.display(),
        results.join("output.log").display()
    );
    assert!(
        inner_run_passed_one_test(&transcript),
        "{test_name} did not run inside the VM (no \"1 passed\" from libtest): \
         is the name exact? output: {}",
        results.join("output.log").display()
    );
}

/// Whether libtest's summary says exactly one test ran and passed.
fn inner_run_passed_one_test(output: &str) -> bool {
    output
        .lines()
        .any(|l| l.starts_with("test result: ok. 1 passed;"))
}

/// A folder for files the 9p share cannot hold (Unix domain sockets): under
/// `/run/b4d-local/` inside the VM (tmpfs), under the system temp folder on
/// the host. Created empty, removed on drop.
#[derive(Debug)]
pub struct LocalDir {
    path: PathBuf,
}

impl LocalDir {
    /// A new folder for `name` (e.g. the test's name).
    pub fn new(name: &str) -> LocalDir {
        assert!(
            !name.is_empty() && !name.contains('/'),
            "bad local dir name {name:?}"
        );
        let base = if inside_vm() {
            PathBuf::from("/run/b4d-local")
        } else {
            std::env::temp_dir().join("b4d-local")
        };
        let path = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        LocalDir { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder (nothing is created).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for LocalDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
