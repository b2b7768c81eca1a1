//! The shell scripts b4d ships, shellcheck-clean and run under busybox ash (the
//! shell OpenWrt runs them with) and dash: the procd init script
//! `files/etc/init.d/b4d`, through a stand-in for rc.common
//! (`tests/support/openwrt/rc.common`, the documented rc.common/procd.sh
//! behaviour, logging each procd call), and the netifd protocol handler
//! `files/lib/netifd/proto/b4.sh`, through a stand-in for netifd-proto.sh.
//! (`files/usr/libexec/b4d-hand-back`, which restarts services, runs on
//! tests/packages/check_ipk.py's stand-in live system, under ash and dash.)
//!
//! Not run here: procd itself (respawn, the netdev and reload triggers,
//! sending SIGHUP on reload) and netifd, which need an OpenWrt system.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{find_in_path, secs, Process, Signal, TestDir};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/files/etc/init.d/b4d");
const PROTO_HANDLER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/files/lib/netifd/proto/b4.sh");
const UCI_DEFAULTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/files/etc/uci-defaults/90-b4d-firewall"
);
const NETWORK_DEFAULTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/files/etc/uci-defaults/91-b4d-network"
);
const HAND_BACK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/files/usr/libexec/b4d-hand-back"
);
const UCI_STAND_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/openwrt/uci");
const NETIFD_PROTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/openwrt/netifd-proto.sh"
);
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
fn shipped_shell_scripts_are_shellcheck_clean() {
    let Some(shellcheck) = require("shellcheck") else {
        return;
    };
    for script in [
        SCRIPT,
        PROTO_HANDLER,
        UCI_DEFAULTS,
        NETWORK_DEFAULTS,
        HAND_BACK,
        UCI_STAND_IN,
    ] {
        let out = Command::new(&shellcheck).arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Stand-ins in `bin` for `tools` that only log how they were called to
/// $RC_LOG (and exit with $STUB_EXIT_<tool>, 0 by default).
fn stub_tools(bin: &Path, tools: &[&str]) {
    std::fs::create_dir_all(bin).unwrap();
    for tool in tools {
        let p = bin.join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\nIFS='|'; echo \"{tool}|$*\" >> \"$RC_LOG\"\nexit \"${{STUB_EXIT_{tool}:-0}}\"\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Runs `action` of the init script with `shell`; returns the procd calls and
/// commands it made, one per line.
fn run_action(dir: &TestDir, shell: &[&Path], uci: &str, action: &str) -> Vec<String> {
    let config = dir.write("b4d.uci", uci);
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg(RC_COMMON)
        .arg(SCRIPT)
        .arg(action)
        .env("B4D", env!("CARGO_BIN_EXE_b4d"))
        .env("UCI_FILE", &config);
    // `ip`, `nft` and `pidof` only record what they were asked to do;
    // `pidof` finds no b4d still running.
    cmd.env("STUB_EXIT_pidof", "1");
    run_logged(
        dir,
        cmd,
        &["ip", "nft", "pidof"],
        &format!("{action} with {shell:?}"),
    )
}

/// Runs `cmd` with stand-ins for `tools` first in PATH and $RC_LOG set;
/// checks it succeeded and returns the log's lines.
fn run_logged(dir: &TestDir, mut cmd: Command, tools: &[&str], what: &str) -> Vec<String> {
    let log = dir.file("run.log");
    let _ = std::fs::remove_file(&log);
    let bin = dir.path().join("bin");
    stub_tools(&bin, tools);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = cmd.env("RC_LOG", &log).env("PATH", path).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
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
        let declared = |procd: &str| {
            [
                format!("procd_open_service|b4d|{SCRIPT}"),
                "procd_open_instance".into(),
                "procd_set_param|command|/usr/sbin/b4d|run|--config|/etc/config/b4d".into(),
                "procd_set_param|respawn|3600|5|5".into(),
                "procd_set_param|netdev|eth1".into(),
                "procd_set_param|file|/etc/config/b4d".into(),
                "procd_set_param|reload_signal|HUP".into(),
                "procd_set_param|term_timeout|10".into(),
                "procd_set_param|stderr|1".into(),
                "procd_close_instance".into(),
                "procd_open_trigger".into(),
                "procd_add_reload_trigger|b4d".into(),
                "procd_close_trigger".into(),
                "procd_close_service".into(),
                format!("procd: {procd}"),
            ]
        };
        run_action(&dir, &shell, uci, "stop");
        let started = run_action(&dir, &shell, uci, "start");
        assert_eq!(started, declared("start"), "{shell:?}");
        // procd acts on a reload only if the instance changed: the same
        // file gets nothing, a changed one (`uci commit b4d`) SIGHUP.
        let unchanged = run_action(&dir, &shell, uci, "reload");
        assert_eq!(unchanged, declared("unchanged"), "{shell:?}");
        let edited = format!("{uci}\toption aftr 'aftr.example.net'\n");
        let reloaded = run_action(&dir, &shell, &edited, "reload");
        assert_eq!(reloaded, declared("signal HUP"), "{shell:?}");
        // Defaults apply when the file leaves the WAN device out.
        let calls = run_action(&dir, &shell, "", "start");
        assert!(
            calls.contains(&"procd_set_param|netdev|wan".to_string()),
            "{calls:?}"
        );
        // An anonymous section is read as b4d reads it.
        run_action(&dir, &shell, "", "stop");
        let calls = run_action(
            &dir,
            &shell,
            "config wan\n\toption device 'eth2'\n",
            "start",
        );
        assert!(
            calls.contains(&"procd_set_param|netdev|eth2".to_string()),
            "{calls:?}"
        );
    }
}

#[test]
fn stop_removes_the_tunnel_and_the_nft_table() {
    let dir = TestDir::new("init_stop");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        // Named or anonymous, as b4d reads it.
        for uci in [
            "config tunnel 'tunnel'\n\toption name 'dslite0'\n",
            "config tunnel\n\toption name 'dslite0'\n",
        ] {
            assert_eq!(
                run_action(&dir, &shell, uci, "stop"),
                [
                    "procd_kill|b4d",
                    // The cleanup waits until b4d has finished its own teardown.
                    "pidof|b4d",
                    "ip|link|del|dslite0",
                    "nft|delete|table|inet|b4"
                ],
                "{shell:?}"
            );
        }
    }
}

/// b4d with nothing to do (no DHCPv6, tunnel, LAN services or ubus), in
/// the foreground, and its config file's text.
fn idle_b4d(dir: &TestDir) -> (Process, String) {
    let text = format!(
        "config globals 'globals'\n\toption state_dir '{}'\n\toption ubus '0'\n\
         config wan 'wan'\n\toption dhcpv6 'off'\n\toption aftr '2001:db8::1'\n\
         config lan 'lan'\n\toption dns_proxy '0'\n\toption dhcp '0'\n",
        dir.path().display()
    );
    let config = dir.write("b4d.uci", &text);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_b4d"));
    cmd.args(["run", "--foreground", "--config"]).arg(&config);
    let b4d = Process::spawn(dir, "b4d", cmd);
    b4d.wait_for_line("ubus is off", secs(5));
    (b4d, text)
}

/// `uci commit b4d; reload_config` and then a stop (a reboot, `service
/// b4d stop`) while b4d restarts in place: it stops, rather than coming
/// back in its new image with the SIGTERM lost (procd would SIGKILL it 10 s
/// later, without its DHCPv6 Release).
#[test]
fn a_stop_during_a_reload_stops_b4d() {
    let dir = TestDir::new("stop_in_reload");
    let (b4d, text) = idle_b4d(&dir);
    dir.write("b4d.uci", format!("{text}\toption domain 'home.example'\n"));
    b4d.signal(Signal::Hup);
    b4d.wait_for_line("restarting in place", secs(5));
    b4d.signal(Signal::Term);
    let exited = b4d.try_wait_exit(secs(5));
    assert!(
        exited.is_some_and(|s| s.success()),
        "{exited:?}: {}",
        b4d.tail(10)
    );
}

/// procd's reload sends SIGHUP (`reload_signal`); b4d must survive it.
#[test]
fn b4d_survives_sighup() {
    let dir = TestDir::new("sighup");
    let (b4d, _) = idle_b4d(&dir);
    b4d.signal(Signal::Hup);
    b4d.wait_for_line("SIGHUP", secs(5));
    assert!(b4d.is_running(), "{}", b4d.tail(10));
    b4d.signal(Signal::Term);
    assert!(b4d.wait_exit(secs(10)).success(), "{}", b4d.tail(10));
}

/// Runs the protocol handler as netifd does (`b4.sh ARGS...` from the
/// handlers' folder, beside netifd-proto.sh), with `ubus` and `logger`
/// stand-ins, `ubus` exiting with `ubus_exit`; returns what was logged.
fn run_proto_handler(dir: &TestDir, shell: &[&Path], args: &[&str], ubus_exit: u8) -> Vec<String> {
    let root = dir.path().join("lib-netifd");
    let handlers = root.join("proto");
    std::fs::create_dir_all(&handlers).unwrap();
    std::fs::copy(NETIFD_PROTO, root.join("netifd-proto.sh")).unwrap();
    std::fs::copy(PROTO_HANDLER, handlers.join("b4.sh")).unwrap();
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg("./b4.sh")
        .args(args)
        .current_dir(&handlers)
        .env("STUB_EXIT_ubus", ubus_exit.to_string());
    run_logged(
        dir,
        cmd,
        &["ubus", "logger"],
        &format!("{args:?} with {shell:?}"),
    )
}

#[test]
fn the_proto_handler_has_no_task_and_only_tells_b4d_of_setup_and_teardown() {
    let dir = TestDir::new("proto_handler");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        assert_eq!(
            run_proto_handler(&dir, &shell, &["", "dump"], 0),
            ["dump|name=b4|no_device=0|no_proto_task=1|available=0|renew_handler=0"],
            "{shell:?}"
        );
        assert_eq!(
            run_proto_handler(&dir, &shell, &["b4", "setup", "wan6", "{}", "wan"], 0),
            [
                "setup|wan6|wan",
                r#"ubus|-t|5|call|b4|netifd_setup|{"interface":"wan6"}"#
            ],
            "{shell:?}"
        );
        // b4d not running yet: said in the log, and setup still succeeds (b4d
        // reports on its own once it has a lease).
        let log = run_proto_handler(&dir, &shell, &["b4", "setup", "wan6", "{}", "wan"], 1);
        assert_eq!(log.len(), 3, "{log:?}");
        assert!(
            log[2].starts_with("logger|-t|b4d|netifd: b4d is not answering yet"),
            "{log:?}"
        );
        // Teardown stops nothing; it tells b4d to stay quiet until the next
        // setup, and succeeds whether b4d answers or not.
        for ubus_exit in [0, 1] {
            assert_eq!(
                run_proto_handler(
                    &dir,
                    &shell,
                    &["b4", "teardown", "wan6", "{}", "wan"],
                    ubus_exit
                ),
                [
                    "teardown|wan6|wan",
                    r#"ubus|-t|2|call|b4|netifd_teardown|{"interface":"wan6"}"#
                ],
                "{shell:?}"
            );
        }
    }
}

/// Runs the uci-defaults `script` with `shell` on the configuration in
/// `state` (`uci show` lines); returns the uci and logger calls and the
/// configuration afterwards.
fn run_uci_defaults_script(
    dir: &TestDir,
    shell: &[&Path],
    script: &str,
    state: &Path,
) -> (Vec<String>, String) {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(UCI_STAND_IN, bin.join("uci")).unwrap();
    // b4d, as the scripts call it, on the test's /etc/config/b4d (b4d.uci).
    let b4d = bin.join("b4d");
    std::fs::write(
        &b4d,
        "#!/bin/sh\nexec \"$B4D\" \"$@\" --config \"$B4D_CONFIG\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&b4d, std::fs::Permissions::from_mode(0o755)).unwrap();
    if !dir.file("b4d.uci").exists() {
        dir.write("b4d.uci", "");
    }
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg(script)
        .env("UCI_STATE", state)
        .env("B4D", env!("CARGO_BIN_EXE_b4d"))
        .env("B4D_CONFIG", dir.file("b4d.uci"));
    let calls = run_logged(dir, cmd, &["logger"], &format!("{script} with {shell:?}"));
    (calls, std::fs::read_to_string(state).unwrap())
}

fn run_uci_defaults(dir: &TestDir, shell: &[&Path], state: &Path) -> (Vec<String>, String) {
    run_uci_defaults_script(dir, shell, UCI_DEFAULTS, state)
}

/// fw4 drops forwarded traffic to a device in no zone: the package gives
/// the tunnel one, without masquerading (RFC 6333: the AFTR NATs), once.
#[test]
fn uci_defaults_give_the_tunnel_a_firewall_zone_without_nat_once() {
    let dir = TestDir::new("uci_defaults");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        // The tunnel renamed in an anonymous section (b4d reads it).
        dir.write("b4d.uci", "config tunnel\n\toption name 'dslite0'\n");
        let state = dir.write(
            "uci.state",
            "firewall.lan=zone\nfirewall.lan.device='br-lan'\n",
        );
        let (calls, config) = run_uci_defaults(&dir, &shell, &state);
        for line in [
            "firewall.b4d_dslite='zone'",
            "firewall.b4d_dslite.name='dslite'",
            "firewall.b4d_dslite.device='dslite0'",
            "firewall.b4d_dslite.input='REJECT'",
            "firewall.b4d_dslite.forward='REJECT'",
            "firewall.b4d_dslite.masq='0'",
            "firewall.b4d_dslite.mtu_fix='0'",
            "firewall.b4d_lan_dslite='forwarding'",
            "firewall.b4d_lan_dslite.src='lan'",
            "firewall.b4d_lan_dslite.dest='dslite'",
        ] {
            assert!(
                config.lines().any(|l| l == line),
                "{line} missing:\n{config}"
            );
        }
        assert!(
            calls.contains(&"uci-commit|firewall".to_string()),
            "{calls:?}"
        );

        // Run again (an upgrade, a second first boot): nothing changes.
        let (calls, again) = run_uci_defaults(&dir, &shell, &state);
        assert_eq!(again, config, "{shell:?}");
        assert!(!calls.iter().any(|c| c.contains("batch")), "{calls:?}");

        // A tunnel the user already put in a zone (default name) is left alone.
        dir.write("b4d.uci", "");
        let state = dir.write(
            "uci.state",
            "firewall.wan=zone\nfirewall.wan.device='eth1' 'ds-b4'\n",
        );
        let (calls, config) = run_uci_defaults(&dir, &shell, &state);
        assert!(!calls.iter().any(|c| c.contains("batch")), "{calls:?}");
        assert!(!config.contains("b4d_dslite"), "{config}");

        // The LAN's zone renamed (an anonymous section, as OpenWrt writes
        // it), and a 'dslite' zone of the user's for something else.
        let state = dir.write(
            "uci.state",
            "firewall.@zone[0]=zone\nfirewall.@zone[0].name='home'\n\
             firewall.@zone[0].network='guest' 'lan'\n\
             firewall.@zone[1]=zone\nfirewall.@zone[1].name='dslite'\n\
             firewall.@zone[1].device='ip6tnl9'\n",
        );
        let (_, config) = run_uci_defaults(&dir, &shell, &state);
        for line in [
            "firewall.b4d_dslite.name='b4d_dslite'",
            "firewall.b4d_dslite.device='ds-b4'",
            "firewall.b4d_lan_dslite.src='home'",
            "firewall.b4d_lan_dslite.dest='b4d_dslite'",
        ] {
            assert!(
                config.lines().any(|l| l == line),
                "{line} missing ({shell:?}):\n{config}"
            );
        }
    }
}

/// b4d's shipped defaults from network config lines `network`: the uci
/// calls and logger lines, and b4d's options afterwards.
fn seed_from_network(
    dir: &TestDir,
    shell: &[&Path],
    b4d: &str,
    network: &str,
) -> (Vec<String>, Vec<String>) {
    let state = dir.write("uci.state", format!("{b4d}{network}"));
    let (calls, config) = run_uci_defaults_script(dir, shell, NETWORK_DEFAULTS, &state);
    let b4d_options = config
        .lines()
        .filter(|l| l.starts_with("b4d."))
        .map(str::to_string)
        .collect();
    (calls, b4d_options)
}

/// /etc/config/b4d as shipped: no LAN address (br-lan's is followed).
const SHIPPED: &str = "b4d.wan.device='wan'\nb4d.lan.device='br-lan'\n";
/// As older packages shipped it: the LAN address fixed at OpenWrt's default.
const SHIPPED_BEFORE: &str = "b4d.wan.device='wan'\nb4d.lan.device='br-lan'\n\
                              b4d.lan.ipaddr='192.168.1.1'\nb4d.lan.netmask='255.255.255.0'\n";

fn logged(calls: &[String]) -> Vec<&str> {
    calls
        .iter()
        .filter_map(|c| c.strip_prefix("logger|-t|b4d|uci-defaults: "))
        .collect()
}

/// A router whose WAN is eth1 (wan6 an alias of wan) gets a b4d on eth1;
/// its LAN address is left to be followed from br-lan, not copied; each
/// change is logged, and a second run (an upgrade) changes nothing.
#[test]
fn uci_defaults_fit_b4d_s_shipped_devices_to_the_network_config() {
    let dir = TestDir::new("uci_defaults_network");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        let network = "network.wan=interface\nnetwork.wan.device='eth1'\n\
                       network.wan.proto='dhcp'\n\
                       network.wan6=interface\nnetwork.wan6.device='@wan'\n\
                       network.wan6.proto='dhcpv6'\n\
                       network.lan=interface\nnetwork.lan.device='br-home'\n\
                       network.lan.ipaddr='192.168.8.1'\nnetwork.lan.netmask='255.255.255.0'\n";
        let (calls, b4d) = seed_from_network(&dir, &shell, SHIPPED, network);
        assert_eq!(
            b4d,
            ["b4d.wan.device='eth1'", "b4d.lan.device='br-home'"],
            "{shell:?}"
        );
        assert_eq!(
            logged(&calls),
            [
                "wan.device 'eth1' from /etc/config/network (was the shipped 'wan')",
                "lan.device 'br-home' from /etc/config/network (was the shipped 'br-lan')",
            ],
            "{shell:?}"
        );
        assert!(calls.contains(&"uci-commit|b4d".to_string()), "{calls:?}");

        // Again, on what the first run left: nothing to do.
        let state = dir.file("uci.state");
        let before = std::fs::read_to_string(&state).unwrap();
        let (calls, after) = run_uci_defaults_script(&dir, &shell, NETWORK_DEFAULTS, &state);
        assert_eq!(after, before, "{shell:?}");
        assert!(!calls.iter().any(|c| c.contains("batch")), "{calls:?}");
        assert!(logged(&calls).is_empty(), "{calls:?}");
    }
}

/// An upgrade from a package that shipped lan.ipaddr 192.168.1.1/24, or
/// copied network.lan's address (plain, CIDR, the first of a list): the
/// copy goes, so that b4d follows br-lan when network.lan changes. This is
/// the router whose LAN was moved to 10.0.0.1/16 after b4d was installed
/// and that b4d kept serving 192.168.1.0/24.
#[test]
fn uci_defaults_drop_a_lan_address_an_older_package_left() {
    let dir = TestDir::new("uci_defaults_network_upgrade");
    let without_address = |b4d: &[String]| {
        !b4d.iter()
            .any(|l| l.starts_with("b4d.lan.ipaddr") || l.starts_with("b4d.lan.netmask"))
    };
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        let (calls, b4d) = seed_from_network(
            &dir,
            &shell,
            SHIPPED_BEFORE,
            "network.lan.device='br-lan'\nnetwork.lan.ipaddr='10.0.0.1/16'\n",
        );
        assert!(without_address(&b4d), "{shell:?}: {b4d:?}");
        assert_eq!(
            logged(&calls),
            [
                "lan.ipaddr '192.168.1.1' removed: b4d follows the LAN device's address \
              (network.lan.ipaddr)"
            ],
            "{shell:?}"
        );
        for (copied, network) in [
            (
                "b4d.lan.ipaddr='10.0.0.1'\nb4d.lan.netmask='255.255.0.0'\n",
                "network.lan.ipaddr='10.0.0.1/16'\n",
            ),
            (
                "b4d.lan.ipaddr='10.1.2.3'\nb4d.lan.netmask='255.255.240.0'\n",
                "network.lan.ipaddr='10.1.2.3/20' '192.168.5.1/24'\n",
            ),
            (
                "b4d.lan.ipaddr='192.168.8.1'\nb4d.lan.netmask='255.255.255.0'\n",
                "network.lan.ipaddr='192.168.8.1'\nnetwork.lan.netmask='255.255.255.0'\n",
            ),
        ] {
            let (_, b4d) = seed_from_network(&dir, &shell, &format!("{SHIPPED}{copied}"), network);
            assert!(without_address(&b4d), "{shell:?} {network}: {b4d:?}");
        }
        // A netmask alone, which b4d now refuses: removed too.
        let (calls, b4d) = seed_from_network(
            &dir,
            &shell,
            "b4d.lan.netmask='255.255.0.0'\n",
            "network.lan.ipaddr='10.0.0.1/16'\n",
        );
        assert!(without_address(&b4d), "{shell:?}: {b4d:?}");
        assert_eq!(
            logged(&calls),
            [
                "lan.netmask '255.255.0.0' without lan.ipaddr removed: b4d follows the LAN \
              device's address (network.lan.ipaddr)"
            ],
            "{shell:?}"
        );
    }
}

/// What the user set in /etc/config/b4d is never touched.
#[test]
fn uci_defaults_leave_options_the_user_changed() {
    let dir = TestDir::new("uci_defaults_network_user");
    for shell in shells() {
        let shell: Vec<&Path> = shell.iter().map(PathBuf::as_path).collect();
        let user = "b4d.wan.device='eth0.2'\nb4d.lan.device='br-lan'\n\
                    b4d.lan.ipaddr='172.16.0.1'\nb4d.lan.netmask='255.255.0.0'\n";
        let (calls, b4d) = seed_from_network(
            &dir,
            &shell,
            user,
            "network.wan6.device='eth1'\nnetwork.lan.device='br-lan'\n\
             network.lan.ipaddr='10.0.0.1/8'\n",
        );
        let want: Vec<String> = user.lines().map(str::to_string).collect();
        assert_eq!(b4d, want, "{shell:?}");
        assert!(!calls.iter().any(|c| c.contains("batch")), "{calls:?}");
        // The shipped 192.168.1.1 with a mask of the user's: a choice, kept.
        let user = "b4d.lan.ipaddr='192.168.1.1'\nb4d.lan.netmask='255.255.0.0'\n";
        let (_, b4d) = seed_from_network(&dir, &shell, user, "network.lan.ipaddr='10.0.0.1/8'\n");
        assert_eq!(
            b4d,
            [
                "b4d.lan.ipaddr='192.168.1.1'",
                "b4d.lan.netmask='255.255.0.0'"
            ]
        );
    }
}

/// Under procd nobody reads a daemon's stderr at boot: a broken config
/// must reach logd, one record per error (a datagram holds ~1 KiB, and an
/// unknown option's error lists every known one).
#[test]
fn a_bad_config_at_start_is_reported_to_syslog_one_record_per_error() {
    use std::os::unix::net::UnixDatagram;
    let dir = TestDir::new("bad_config_syslog");
    let socket = dir.file("log.sock");
    let logd = UnixDatagram::bind(&socket).unwrap();
    logd.set_read_timeout(Some(secs(5))).unwrap();
    let config = dir.write(
        "b4d.uci",
        "config lan 'lan'\n\toption leasetime '12h'\n\toption start '100'\n\toption limit '150'\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_b4d"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--syslog-socket")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!out.status.success(), "b4d started with a broken config");
    let mut records = Vec::new();
    let mut buf = [0u8; 2048];
    logd.set_nonblocking(true).unwrap();
    while let Ok(n) = logd.recv(&mut buf) {
        records.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(
        records[0].contains("is invalid, not starting: 3 error(s)"),
        "{records:#?}"
    );
    for option in ["'leasetime'", "'start'", "'limit'"] {
        let with = records.iter().filter(|r| r.contains(option)).count();
        assert_eq!(with, 1, "{option} in its own record: {records:#?}");
    }
    // Still on stderr too, for someone running it by hand.
    assert!(String::from_utf8_lossy(&out.stderr).contains("'leasetime'"));
}
