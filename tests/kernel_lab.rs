//! Proves the kernel lab: `scripts/vm.sh` boots Debian's kernel in qemu and
//! runs host-built test binaries there (support::vm), where the kernel
//! features the build machine lacks work: an ip6tnl in ipip6 mode carries
//! IPv4 between namespaces (to an AFTR made of a kernel tunnel and
//! nftables masquerade), kea-dhcp6, dnsmasq and tcpdump run, and nft loads
//! b4d's MSS clamping table. Also checks vm.sh's own contract (exit code,
//! separate stdout/stderr, shares, timeout) and the OpenWrt image handling.
//!
//! The tests marked "(VM)" each boot one VM (about 10 s to boot under
//! software emulation); the others run on the host.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::probe::{self, SolicitProbe};
use support::*;

const B4_WAN: &str = "2001:db8:1::2";
const B4_WAN_RENUMBERED: &str = "2001:db8:1::3";
const AFTR_WAN: &str = "2001:db8:1::1";
const AFTR_OUTSIDE: &str = "198.51.100.1";
const SERVER: &str = "198.51.100.10";

/// The MSS clamping table from shared/kernel-facts.md, as b4d will load it.
const MSS_CLAMP_TABLE: &str = "table inet b4 { chain mssfix { type filter hook forward priority mangle; oifname \"ds-b4\" tcp flags syn tcp option maxseg size set rt mtu; iifname \"ds-b4\" tcp flags syn tcp option maxseg size set rt mtu; }; }";

/// `ping -c 2` from `ns`; panics with ping's output if no reply came.
fn ping(ns: &Netns, addr: &str) {
    let out = ns.try_exec("ping", &["-n", "-c", "2", "-i", "0.3", "-W", "5", addr]);
    assert!(
        out.status.success(),
        "ping {addr} from {} failed:\n{}{}",
        ns.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (VM) b4 --[wan: IPv6 only]-- aftr --[eth1: IPv4 only]-- server. The B4's
/// ip6tnl (mode ipip6, 192.0.0.2/29, default route) reaches 192.0.0.1 and,
/// through the AFTR's NAT, the IPv4-only server; on the wire the IPv4 is
/// inside IPv6 with next header 4. Then the B4 is renumbered and the AFTR
/// re-pointed ([`Aftr::set_b4`]), and traffic flows again.
#[test]
fn ip6tnl_ipip6_carries_ipv4_through_the_aftr() {
    let Some(lab) = vm::in_kernel_lab() else {
        return;
    };
    assert!(require_root_and_tools());
    lab.modprobe("ip6_tunnel");
    let modules = std::fs::read_to_string("/proc/modules").expect("/proc/modules");
    assert!(
        modules.lines().any(|l| l.starts_with("ip6_tunnel ")),
        "ip6_tunnel not loaded (kernel {})",
        lab.kernel_release()
    );

    let dir = TestDir::new("ip6tnl_ipip6_carries_ipv4_through_the_aftr");
    let b4 = Netns::new("b4");
    let aftr_ns = Netns::new("aftr");
    let server = Netns::new("srv");
    veth_pair(VethEnd::new(&b4, "wan"), VethEnd::new(&aftr_ns, "eth0"));
    veth_pair(
        VethEnd::new(&aftr_ns, "eth1"),
        VethEnd::new(&server, "eth0"),
    );
    b4.add_addr_nodad("wan", &format!("{B4_WAN}/64"));
    aftr_ns.add_addr_nodad("eth0", &format!("{AFTR_WAN}/64"));
    aftr_ns.add_addr("eth1", &format!("{AFTR_OUTSIDE}/24"));
    // The server has no route to 192.0.0.0/29: replies reach the B4 only
    // because the AFTR masquerades.
    server.add_addr("eth0", &format!("{SERVER}/24"));

    let mut aftr = Aftr::start(
        &aftr_ns,
        &AftrConfig {
            aftr_addr: AFTR_WAN.parse().unwrap(),
            b4_addr: B4_WAN.parse().unwrap(),
            ..AftrConfig::default()
        },
    );
    assert!(aftr.nat_table().contains("masquerade"));

    // The B4 side by hand (b4d's tunnel subsystem does this for real).
    b4.ip(&[
        "link",
        "add",
        "ds-b4",
        "type",
        "ip6tnl",
        "mode",
        "ipip6",
        "local",
        B4_WAN,
        "remote",
        AFTR_WAN,
        "encaplimit",
        "none",
    ]);
    b4.add_addr("ds-b4", "192.0.0.2/29");
    b4.link_up("ds-b4");
    b4.ip(&["route", "add", "default", "dev", "ds-b4"]);

    // BPF "ip6 proto 4": IPv6 whose next header is 4 (IPv4).
    let wan = Capture::start(&b4, &dir, "b4-wan", "wan", "ip6 proto 4");
    let outside = Capture::start(&server, &dir, "server-eth0", "eth0", "icmp");

    ping(&b4, "192.0.0.1");
    ping(&b4, SERVER);

    let request = format!("192.0.0.2 > {SERVER}: ICMP echo request");
    let encapsulated = wan.wait_for_packets(&request, 2, secs(10));
    for p in &encapsulated {
        assert!(
            p.text.contains(&format!("{B4_WAN} > {AFTR_WAN}"))
                && p.text.contains("next-header IPIP (4)"),
            "not IPv4-in-IPv6 from the B4 to the AFTR: {}",
            p.text
        );
    }
    wan.wait_for_packets(
        &format!("{SERVER} > 192.0.0.2: ICMP echo reply"),
        2,
        secs(10),
    );
    // Outside, the server only ever sees the AFTR's address.
    outside.wait_for_packets(
        &format!("{AFTR_OUTSIDE} > {SERVER}: ICMP echo request"),
        2,
        secs(10),
    );
    assert!(
        outside.matching("192.0.0.2").is_empty(),
        "B4 address leaked past the NAT"
    );

    // Renumbering: the B4 moves to a new WAN address, the AFTR follows.
    b4.add_addr_nodad("wan", &format!("{B4_WAN_RENUMBERED}/64"));
    b4.ip(&[
        "link",
        "change",
        "ds-b4",
        "type",
        "ip6tnl",
        "local",
        B4_WAN_RENUMBERED,
    ]);
    aftr.set_b4(B4_WAN_RENUMBERED.parse().unwrap());
    assert!(
        aftr.tunnel_details()
            .contains(&format!("remote {B4_WAN_RENUMBERED}")),
        "{}",
        aftr.tunnel_details()
    );
    ping(&b4, SERVER);
    wan.wait_for_packets(&format!("{B4_WAN_RENUMBERED} > {AFTR_WAN}"), 2, secs(10));
    aftr.stop();
    assert!(!aftr_ns.ip(&["link", "show"]).contains("aftr0"));
}

/// (VM) kea-dhcp6 and dnsmasq start in namespaces inside the VM and answer
/// a Solicit with the AFTR name (option 64), seen by tcpdump.
#[test]
fn kea_dnsmasq_and_tcpdump_work_in_the_vm() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    assert!(require_root_and_tools());
    let dir = TestDir::new("kea_dnsmasq_and_tcpdump_work_in_the_vm");

    let kea_client = Netns::new("kcli");
    let kea_server = Netns::new("ksrv");
    veth_pair(
        VethEnd::new(&kea_client, "eth0"),
        VethEnd::new(&kea_server, "eth0"),
    );
    let kea = Kea6Server::start(
        &kea_server,
        &dir,
        "kea",
        &Kea6Config {
            aftr_name: Some("aftr.kea.example".into()),
            ..Kea6Config::default()
        },
    );
    kea.wait_ready();

    let dm_client = Netns::new("dcli");
    let dm_server = Netns::new("dsrv");
    veth_pair(
        VethEnd::new(&dm_client, "eth0"),
        VethEnd::new(&dm_server, "eth0"),
    );
    let dnsmasq = Dnsmasq6Server::start(
        &dm_server,
        &dir,
        "dnsmasq",
        &Dnsmasq6Config {
            aftr_name: Some("aftr.dnsmasq.example".into()),
            ..Dnsmasq6Config::default()
        },
    );
    dnsmasq.wait_ready();

    kea_client.wait_link_local_ready("eth0");
    let cap = Capture::dhcpv6(&kea_client, &dir, "kea-client-eth0", "eth0");
    let from_kea = probe::solicit_one(&kea_client, "eth0", &SolicitProbe::default());
    assert_eq!(
        from_kea.option(64),
        Some(dns_wire_name("aftr.kea.example").as_slice())
    );
    cap.wait_for_packets("dhcp6 advertise", 1, secs(10));

    let from_dnsmasq = probe::solicit_one(&dm_client, "eth0", &SolicitProbe::default());
    assert_eq!(
        from_dnsmasq.option(64),
        Some(dns_wire_name("aftr.dnsmasq.example").as_slice())
    );
}

/// (VM) nft loads b4d's MSS clamping table (shared/kernel-facts.md) into a
/// namespace, lists it back, and deletes it.
#[test]
fn nft_loads_the_mss_clamp_table() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    assert!(require_root_and_tools());
    let ns = Netns::new("nft");
    aftr::nft_load(ns.command("nft").args(["-f", "-"]), MSS_CLAMP_TABLE);
    let listed = ns.exec_stdout("nft", &["list", "table", "inet", "b4"]);
    assert!(
        listed.contains("type filter hook forward priority mangle")
            && listed.matches("tcp option maxseg size set rt mtu").count() == 2
            && listed.contains("oifname \"ds-b4\"")
            && listed.contains("iifname \"ds-b4\""),
        "unexpected table:\n{listed}"
    );
    ns.exec("nft", &["delete", "table", "inet", "b4"]);
    assert!(!ns.exec_stdout("nft", &["list", "tables"]).contains("b4"));
}

/// (VM) A Unix domain socket works in a [`vm::LocalDir`] (the guest's tmpfs),
/// where tests inside the VM put the sockets a 9p share cannot hold.
#[test]
fn unix_sockets_work_in_a_local_dir_in_the_vm() {
    let Some(_lab) = vm::in_kernel_lab() else {
        return;
    };
    let local = vm::LocalDir::new("unix_sockets_work_in_a_local_dir_in_the_vm");
    assert!(local.path().starts_with("/run/b4d-local"));
    let path = local.file("probe.sock");
    let server = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    let client = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    client
        .send_to(b"ping", &path)
        .expect("send to the bound socket");
    let mut buf = [0u8; 8];
    let n = server.recv(&mut buf).expect("recv");
    assert_eq!(&buf[..n], b"ping");
    let dir = local.path().to_path_buf();
    drop(local);
    assert!(!dir.exists());
}

// --- vm.sh itself, driven from the host ---------------------------------------

fn vm_sh(args: &[&str]) -> Command {
    let mut cmd = Command::new(vm::vm_script());
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// (VM, started from the host) `vm.sh run`: the command's exit code comes
/// back, stdout and stderr stay separate, it runs as root in the same
/// folder with B4D_IN_VM=1 and passed-through variables, a --share is
/// writable and the write lands on the host, the host's / is not.
#[test]
fn vm_run_returns_exit_code_streams_and_shares() {
    if vm::inside_vm() || !vm::vm_available() {
        return;
    }
    let dir = TestDir::new("vm_run_returns_exit_code_streams_and_shares");
    let share = dir.path().to_str().expect("utf-8 path").to_string();
    // Kept (the command fails on purpose), so inside the test's folder.
    let results = dir.file("vm").to_str().expect("utf-8 path").to_string();
    let script = format!(
        "echo to-stdout; echo to-stderr >&2; echo \"in_vm=$B4D_IN_VM uid=$(id -u) pwd=$PWD \
         pass=$B4D_LAB_PROBE kernel=$(uname -r)\"; echo written-in-vm > {share}/from-guest; \
         touch /b4d-lab-root-write && echo root-overlay-writable; exit 7"
    );
    let out = run_output(
        vm_sh(&[
            "run",
            "--share",
            &share,
            "--results",
            &results,
            "--timeout",
            "300",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("B4D_LAB_PROBE", "passed through"),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("to-stdout") && !stdout.contains("to-stderr"),
        "{stdout}"
    );
    assert!(
        stderr.contains("to-stderr") && !stderr.contains("to-stdout"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "in_vm=1 uid=0 pwd={} pass=passed through kernel=",
            env!("CARGO_MANIFEST_DIR")
        )),
        "{stdout}"
    );
    // The guest kernel is Debian's, not the host's.
    let host_kernel = text(&run_output(Command::new("uname").arg("-r")).stdout);
    assert!(!stdout.contains(&format!("kernel={}", host_kernel.trim())));
    assert!(stdout.contains("root-overlay-writable"));
    assert!(
        !Path::new("/b4d-lab-root-write").exists(),
        "guest wrote the host's /"
    );
    assert_eq!(
        std::fs::read_to_string(dir.file("from-guest")).expect("file written in the VM"),
        "written-in-vm\n"
    );
    // Kernel messages stay out of the command's output.
    assert!(!stdout.contains("Linux version") && !stderr.contains("Linux version"));
}

/// (VM, started from the host) a command that outlives --timeout ends the
/// VM with exit code 124 and a clear message.
#[test]
fn vm_run_times_out() {
    if vm::inside_vm() || !vm::vm_available() {
        return;
    }
    let dir = TestDir::new("vm_run_times_out");
    let results = dir.file("vm");
    let out = run_output(&mut vm_sh(&[
        "run",
        "--results",
        results.to_str().unwrap(),
        "--timeout",
        "3",
        "--",
        "sleep",
        "600",
    ]));
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("VM TIMED OUT after 3 s"));
}

/// (host) Bad `vm.sh run` arguments are refused with a message, before
/// anything boots.
#[test]
fn vm_run_rejects_bad_arguments() {
    for (args, complaint) in [
        (&["run"][..], "no command"),
        (&["run", "--"][..], "no command"),
        (
            &["run", "--timeout", "soon", "--", "true"][..],
            "--timeout needs",
        ),
        (
            &["run", "--share", "/nonexistent-b4d", "--", "true"][..],
            "not a folder",
        ),
        (
            &["run", "--bogus", "--", "true"][..],
            "unknown option --bogus",
        ),
        (&["frobnicate"][..], "unknown command frobnicate"),
        (
            &["run", "--results", env!("CARGO_MANIFEST_DIR"), "--", "true"][..],
            "refusing to empty it",
        ),
    ] {
        let out = run_output(&mut vm_sh(args));
        assert!(!out.status.success(), "vm.sh {args:?} succeeded");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(complaint) || text(&out.stdout).contains(complaint),
            "vm.sh {args:?}: expected {complaint:?} in:\n{stderr}"
        );
    }
    let out = run_output(vm_sh(&["run", "--", "true"]).env("B4D_IN_VM", "1"));
    assert!(text(&out.stderr).contains("already inside the kernel lab VM"));
}

/// (host) `vm.sh openwrt --dry-run`: a gzip'd image with OpenWrt's trailing
/// padding is decompressed into the cache once, and the qemu command boots
/// it from virtio with the LAN's SSH port forwarded and a 9p share.
#[test]
fn openwrt_image_is_prepared_for_qemu() {
    let dir = TestDir::new("openwrt_image_is_prepared_for_qemu");
    let cache = dir.file("cache");
    let disk_bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let raw = dir.write(
        "openwrt-23.05.5-x86-64-generic-ext4-combined.img",
        &disk_bytes,
    );
    let gz = dir.file("openwrt-23.05.5-x86-64-generic-ext4-combined.img.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c '{}' > '{}' && head -c 512 /dev/zero >> '{}'",
            raw.display(),
            gz.display(),
            gz.display()
        ))
        .status()
        .expect("gzip");
    assert!(status.success());

    let openwrt = |args: &[&str]| {
        run_output(
            vm_sh(&[&["openwrt"][..], args].concat())
                .env("B4D_VM_CACHE", &cache)
                .env("B4D_VM_ACCEL", "tcg"),
        )
    };
    let share = dir.path().to_str().unwrap();
    let gz_arg = gz.to_str().unwrap();
    let out = openwrt(&["--dry-run", "--ssh-port", "2299", "--share", share, gz_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let disk = cache.join("openwrt/openwrt-23.05.5-x86-64-generic-ext4-combined.img");
    assert_eq!(std::fs::read(&disk).expect("decompressed disk"), disk_bytes);
    let qemu = text(&out.stdout);
    for part in [
        "qemu-system-x86_64 -accel tcg -M pc",
        &format!("file={},format=raw,if=virtio", disk.display()),
        "hostfwd=tcp:127.0.0.1:2299-192.168.1.1:22",
        "restrict=on",
        &format!("local,path={share},mount_tag=b4d"),
    ] {
        assert!(qemu.contains(part), "{part:?} missing from:\n{qemu}");
    }

    // Already decompressed: kept (changes made in the VM persist)...
    std::fs::write(&disk, b"changed in the VM").unwrap();
    assert!(openwrt(&["--dry-run", gz_arg]).status.success());
    assert_eq!(std::fs::read(&disk).unwrap(), b"changed in the VM");
    // ...until --fresh.
    assert!(openwrt(&["--dry-run", "--fresh", gz_arg]).status.success());
    assert_eq!(std::fs::read(&disk).unwrap(), disk_bytes);
    // A raw image is used in place, a wan tap is passed on.
    let out = openwrt(&["--dry-run", "--wan-tap", "tap-isp", raw.to_str().unwrap()]);
    assert!(text(&out.stdout).contains(&format!("file={},format=raw", raw.display())));
    assert!(text(&out.stdout).contains("tap,id=wan,ifname=tap-isp,script=no"));

    // Bad input.
    let not_gzip = dir.write("broken.img.gz", b"this is not gzip");
    for (args, complaint) in [
        (vec![], "no image given"),
        (vec!["/nonexistent/openwrt.img.gz"], "no such file"),
        (vec![not_gzip.to_str().unwrap()], "cannot decompress"),
        (vec!["--ssh-port", "http", gz_arg], "--ssh-port needs"),
        (vec!["--bogus", gz_arg], "unknown option --bogus"),
        (vec![gz_arg, gz_arg], "one image only"),
    ] {
        let out = openwrt(&[&["--dry-run"][..], &args].concat());
        assert!(!out.status.success(), "openwrt {args:?} succeeded");
        assert!(
            text(&out.stderr).contains(complaint),
            "openwrt {args:?}: expected {complaint:?} in {}",
            text(&out.stderr)
        );
    }
}

// --- support::vm's guarantees ----------------------------------------------------

/// Only ever run by [`lab_fails_tests_that_failed_or_did_not_run_in_the_vm`], inside the VM
/// (`--include-ignored`); anywhere else it passes trivially.
#[test]
#[ignore = "run inside the VM by lab_fails_tests_that_failed_or_did_not_run_in_the_vm"]
fn fails_deliberately_inside_the_vm() {
    assert!(!vm::inside_vm(), "deliberate failure inside the VM");
}

/// (VM, started from the host) A test that fails inside the VM fails on the
/// host too, and one that did not run at all (wrong name: libtest runs
/// nothing and exits 0) is not taken for a pass.
#[test]
fn lab_fails_tests_that_failed_or_did_not_run_in_the_vm() {
    if vm::inside_vm() || !vm::vm_available() {
        return;
    }
    let failure = |name: &'static str| -> String {
        let result = std::panic::catch_unwind(|| vm::in_kernel_lab_named(name));
        let payload = result.expect_err("the host side should have panicked");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let failed = failure("fails_deliberately_inside_the_vm");
    assert!(
        failed.contains("failed inside the kernel lab VM"),
        "{failed}"
    );
    let output = std::fs::read_to_string(
        vm::vm_results_dir("fails_deliberately_inside_the_vm").join("output.log"),
    )
    .expect("output.log of the inner run");
    assert!(
        output.contains("deliberate failure inside the VM"),
        "{output}"
    );

    let not_run = failure("no_such_test_in_this_binary");
    assert!(not_run.contains("did not run inside the VM"), "{not_run}");
}

/// (VM, started from the host) A guest that never gets to run the command
/// (here: the kernel finds no init and panics) ends with exit code 125 and
/// the end of the guest's console in the message.
#[test]
fn vm_run_reports_a_vm_that_did_not_boot() {
    if vm::inside_vm() || !vm::vm_available() {
        return;
    }
    let dir = TestDir::new("vm_run_reports_a_vm_that_did_not_boot");
    let results = dir.file("vm");
    let out = run_output(
        vm_sh(&[
            "run",
            "--results",
            results.to_str().unwrap(),
            "--timeout",
            "120",
            "--",
            "true",
        ])
        .env(
            "B4D_VM_KERNEL_ARGS",
            "rdinit=/no-such-init init=/no-such-init",
        ),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("VM FAILED"), "{stderr}");
    assert!(stderr.contains("Kernel panic"), "{stderr}");
}
