//! The procd init script `files/etc/init.d/b4d`: shellcheck-clean, and run
//! through a stand-in for rc.common (`tests/support/openwrt/rc.common`, the
//! documented rc.common/procd.sh behaviour, logging each procd call) under
//! busybox ash, the shell OpenWrt runs it with, and under dash.
//!
//! Not run here: procd itself (respawn, the netdev and reload triggers,
//! sending SIGHUP on reload), which needs an OpenWrt system.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{find_in_path, secs, Process, Signal, TestDir};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/files/etc/init.d/b4d");
const RC_COMMON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/openwrt/rc.common"
);

/// A tool the test needs: its path, or `None` (after saying SKIP) outside CI.
fn require(tool: &str) -> Option<PathBuf> {
    if let Some(p) = find_in_path(tool) {
        return Some(p);
    }
    let msg = format!("`{tool}` not found; run scripts/install-test-deps.sh");
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, refusing to skip)");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
    None
}

#[test]
fn init_script_is_shellcheck_clean() {
    let Some(shellcheck) = require("shellcheck") else {
        return;
    };
    let out = Command::new(shellcheck).arg(SCRIPT).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs `action` of the init script with `shell`; returns the procd calls and
/// commands it made, one per line.
fn run_action(dir: &TestDir, shell: &[&Path], uci: &str, action: &str) -> Vec<String> {
    let log = dir.file(&format!("{action}.log"));
    let _ = std::fs::remove_file(&log);
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // `ip` and `nft` only record what they were asked to do.
    for tool in ["ip", "nft"] {
        let p = bin.join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\nIFS='|'; echo \"{tool}|$*\" >> \"$RC_LOG\"\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = dir.write("b4d.uci", uci);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .arg(RC_COMMON)
        .arg(SCRIPT)
        .arg(action)
        .env("RC_LOG", &log)
        .env("B4D", env!("CARGO_BIN_EXE_b4d"))
        .env("UCI_FILE", &config)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{action} with {shell:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn shells() -> Vec<Vec<PathBuf>> {
    let mut shells = Vec::new();
    if let Some(busybox) = require("busybox") {
        shells.push(vec![busybox, PathBuf::from("sh")]);
    }
    shells.push(vec![PathBuf::from("/bin/sh")]);
    shells
}

#[test]
fn start_registers_one_supervised_instance_with_reload_on_config_change() {
    let dir = TestDir::new("init_start");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        let uci = "config wan 'wan'\n\toption device 'eth1'\n";
        let want = [
            format!("procd_open_service|b4d|{SCRIPT}"),
            "procd_open_instance".into(),
            "procd_set_param|command|/usr/sbin/b4d|run|--config|/etc/config/b4d".into(),
            "procd_set_param|respawn|3600|5|5".into(),
            "procd_set_param|netdev|eth1".into(),
            "procd_set_param|reload_signal|HUP".into(),
            "procd_set_param|term_timeout|10".into(),
            "procd_close_instance".into(),
            "procd_open_trigger".into(),
            "procd_add_reload_trigger|b4d".into(),
            "procd_close_trigger".into(),
            "procd_close_service".into(),
        ];
        assert_eq!(run_action(&dir, &shell, uci, "start"), want, "{shell:?}");
        // reload re-declares the same instance: procd then only sends SIGHUP.
        assert_eq!(run_action(&dir, &shell, uci, "reload"), want, "{shell:?}");
        // Defaults apply when the file leaves the WAN device out.
        let calls = run_action(&dir, &shell, "", "start");
        assert!(
            calls.contains(&"procd_set_param|netdev|wan".to_string()),
            "{calls:?}"
        );
    }
}

#[test]
fn stop_removes_the_tunnel_and_the_nft_table() {
    let dir = TestDir::new("init_stop");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        let uci = "config tunnel 'tunnel'\n\toption name 'dslite0'\n";
        assert_eq!(
            run_action(&dir, &shell, uci, "stop"),
            [
                "procd_kill|b4d",
                "ip|link|del|dslite0",
                "nft|delete|table|inet|b4"
            ],
            "{shell:?}"
        );
    }
}

/// procd's reload sends SIGHUP (`reload_signal`); b4d must survive it.
#[test]
fn b4d_survives_sighup() {
    let dir = TestDir::new("sighup");
    let config = dir.write(
        "b4d.uci",
        format!(
            "config globals 'globals'\n\toption state_dir '{}'\n\toption ubus '0'\n\
             config wan 'wan'\n\toption dhcpv6 'off'\n\toption aftr '2001:db8::1'\n\
             config lan 'lan'\n\toption dns_proxy '0'\n\toption dhcp '0'\n",
            dir.path().display()
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_b4d"));
    cmd.args(["run", "--foreground", "--config"]).arg(&config);
    let b4d = Process::spawn(&dir, "b4d", cmd);
    b4d.wait_for_line("ubus is off", secs(5));
    b4d.signal(Signal::Hup);
    b4d.wait_for_line("SIGHUP", secs(5));
    assert!(b4d.is_running(), "{}", b4d.tail(10));
    b4d.signal(Signal::Term);
    assert!(b4d.wait_exit(secs(10)).success(), "{}", b4d.tail(10));
}
