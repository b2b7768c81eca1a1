#!/usr/bin/env python3
"""Validates the .ipk files scripts/build-ipk.sh wrote, the way opkg and
OpenWrt's ipkg-build see them: unpacks each one and checks every control
field and every file. Runs the install scripts too: in an image build
(IPKG_INSTROOT set) and, as root, on a stand-in live system (a private
mount namespace whose /etc/init.d holds recording stubs): install, removal
(with what it hands back), upgrade, and the SDK package's prerm.

Usage: tests/packages/check_ipk.py [DIST_DIR]   (default dist/)
Prints one line per check group and ends with 'N passed, N failed'.
"""

import gzip
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# OpenWrt package architecture -> (ELF class, data (1 LE, 2 BE), e_machine,
# ARM float ABI flag or None). A wrong mapping ships a binary that cannot run.
EM_MIPS, EM_ARM, EM_AARCH64, EM_X86_64 = 8, 40, 183, 62
EF_ARM_ABI_FLOAT_SOFT, EF_ARM_ABI_FLOAT_HARD = 0x200, 0x400
ARCHES = {
    "mips_24kc": (1, 2, EM_MIPS, None),
    "mipsel_24kc": (1, 1, EM_MIPS, None),
    "arm_cortex-a7_neon-vfpv4": (1, 1, EM_ARM, EF_ARM_ABI_FLOAT_HARD),
    "arm_cortex-a9": (1, 1, EM_ARM, EF_ARM_ABI_FLOAT_SOFT),
    "aarch64_cortex-a53": (2, 1, EM_AARCH64, None),
    "aarch64_generic": (2, 1, EM_AARCH64, None),
    "x86_64": (2, 1, EM_X86_64, None),
}
CONTROL_FIELDS = [
    "Package", "Version", "Depends", "Source", "SourceName", "License",
    "Section", "SourceDateEpoch", "Maintainer", "Architecture",
    "Installed-Size", "Description",
]
LUCI_FILES = [
    "www/luci-static/resources/view/b4d/status.js",
    "usr/share/luci/menu.d/luci-app-b4d.json",
    "usr/share/rpcd/acl.d/luci-app-b4d.json",
]

passed = 0
failed = 0


def skip(what):
    """A check that cannot run here: a failure under CI, where the
    project's scripts install what it needs."""
    if os.environ.get("CI"):
        check(False, f"{what}: missing under CI")
    else:
        print(f"  SKIP {what}")


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"  FAIL: {what}")


def cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        package = tomllib.load(f)["package"]
    return package["version"], package["license"]


def parse_control(text):
    """control as an ordered list of (field, value); continuation lines
    (leading space) are joined to the field before them."""
    fields = []
    for line in text.splitlines():
        if line.startswith(" ") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + "\n" + line[1:])
        else:
            name, _, value = line.partition(": ")
            fields.append((name, value))
    return fields


def read_member(tar, name):
    return tar.extractfile(tar.getmember(name)).read()


def elf_facts(data):
    """(class, data, e_machine, e_flags, has PT_INTERP) of an ELF image."""
    if data[:4] != b"\x7fELF":
        return None
    ei_class, ei_data = data[4], data[5]
    end = "<" if ei_data == 1 else ">"
    if ei_class == 1:
        e_machine, = struct.unpack_from(end + "H", data, 18)
        e_phoff, = struct.unpack_from(end + "I", data, 28)
        e_flags, = struct.unpack_from(end + "I", data, 36)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 42)
    else:
        e_machine, = struct.unpack_from(end + "H", data, 18)
        e_phoff, = struct.unpack_from(end + "Q", data, 32)
        e_flags, = struct.unpack_from(end + "I", data, 48)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 54)
    PT_INTERP = 3
    interp = any(
        struct.unpack_from(end + "I", data, e_phoff + i * e_phentsize)[0] == PT_INTERP
        for i in range(e_phnum)
    )
    return ei_class, ei_data, e_machine, e_flags, interp


def unpack(path):
    """The three parts of an ipk; checks the outer archive on the way."""
    with open(path, "rb") as f:
        raw = f.read()
    # OpenWrt's ipkg-build writes a gzip'd tar (not Debian's ar), which opkg
    # reads; member order as ipkg-build lists them.
    check(raw[:2] == b"\x1f\x8b", f"{path}: outer archive is gzip")
    outer = tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz")
    check(outer.getnames() == ["./debian-binary", "./data.tar.gz", "./control.tar.gz"],
          f"{path}: outer members {outer.getnames()}")
    check(all(m.uid == 0 and m.gid == 0 for m in outer.getmembers()),
          f"{path}: outer members owned by root")
    check(read_member(outer, "./debian-binary") == b"2.0\n", f"{path}: debian-binary is 2.0")
    control_gz = read_member(outer, "./control.tar.gz")
    data_gz = read_member(outer, "./data.tar.gz")
    control = tarfile.open(fileobj=io.BytesIO(control_gz), mode="r:gz")
    data = tarfile.open(fileobj=io.BytesIO(data_gz), mode="r:gz")
    return outer, control, data, gzip.decompress(data_gz)


def check_common(path, control, data, data_raw, package, arch, version, license_):
    name = os.path.basename(path)
    fields = parse_control(read_member(control, "./control").decode())
    check([f for f, _ in fields] == CONTROL_FIELDS, f"{name}: control fields {[f for f, _ in fields]}")
    c = dict(fields)
    check(c.get("Package") == package, f"{name}: Package {c.get('Package')}")
    check(c.get("Version") == version, f"{name}: Version {c.get('Version')} != {version}")
    check(c.get("Architecture") == arch, f"{name}: Architecture {c.get('Architecture')}")
    check(name == f"{package}_{version}_{arch}.ipk", f"{name}: file name is Package_Version_Architecture.ipk")
    check(c.get("License") == license_, f"{name}: License {c.get('License')}")
    check(c.get("SourceName") == package, f"{name}: SourceName")
    check(re.fullmatch(r"[a-z0-9.+-]+", package) is not None, f"{name}: package name characters")
    check(c.get("Installed-Size") == str(len(data_raw)),
          f"{name}: Installed-Size {c.get('Installed-Size')} != data tar {len(data_raw)}")
    desc = c.get("Description", "").split("\n")
    check(len(desc) == 2 and desc[0] and desc[1], f"{name}: Description is a summary and one paragraph")
    epoch = int(c.get("SourceDateEpoch", "-1"))
    for tar in (control, data):
        for m in tar.getmembers():
            check(m.uid == 0 and m.gid == 0, f"{name}: {m.name} owned by root")
            check(m.mtime == epoch, f"{name}: {m.name} mtime is SourceDateEpoch")
    return c


def check_b4d(path, arch, version, license_):
    name = os.path.basename(path)
    _, control, data, data_raw = unpack(path)
    c = check_common(path, control, data, data_raw, "b4d", arch, version, license_)
    check(c.get("Section") == "net", f"{name}: Section")
    check(c.get("Depends") == "kmod-ip6-tunnel, nftables", f"{name}: Depends {c.get('Depends')}")
    check(sorted(control.getnames()) == [".", "./conffiles", "./control", "./postinst", "./prerm"],
          f"{name}: control members {control.getnames()}")
    check(read_member(control, "./conffiles") == b"/etc/config/b4d\n", f"{name}: conffiles")
    for script in ("./postinst", "./prerm"):
        check(control.getmember(script).mode & 0o777 == 0o755, f"{name}: {script} is 0755")
    files = {m.name: m for m in data.getmembers() if m.isfile()}
    check(sorted(files) == ["./etc/config/b4d", "./etc/init.d/b4d",
                            "./etc/uci-defaults/90-b4d-firewall",
                            "./etc/uci-defaults/91-b4d-network", "./lib/netifd/proto/b4.sh",
                            "./lib/upgrade/keep.d/b4d", "./usr/libexec/b4d-hand-back",
                            "./usr/sbin/b4d"],
          f"{name}: data files {sorted(files)}")
    check(all(m.isdir() or m.isfile() for m in data.getmembers()), f"{name}: only files and dirs")
    for rel, mode in (("etc/config/b4d", 0o600), ("etc/init.d/b4d", 0o755),
                      ("etc/uci-defaults/90-b4d-firewall", 0o644),
                      ("etc/uci-defaults/91-b4d-network", 0o644),
                      ("lib/netifd/proto/b4.sh", 0o755),
                      ("lib/upgrade/keep.d/b4d", 0o644),
                      ("usr/libexec/b4d-hand-back", 0o755)):
        check(files[f"./{rel}"].mode & 0o777 == mode, f"{name}: /{rel} mode")
        with open(os.path.join(ROOT, "files", rel), "rb") as f:
            check(read_member(data, f"./{rel}") == f.read(), f"{name}: /{rel} is files/{rel}")
    check(files["./usr/sbin/b4d"].mode & 0o777 == 0o755, f"{name}: /usr/sbin/b4d mode")
    # The SDK path installs the same files from files/.
    with open(os.path.join(ROOT, "openwrt-package/b4d/Makefile")) as f:
        makefile = f.read()
    for rel in files:
        if rel != "./usr/sbin/b4d":
            check(f"$(B4D_SOURCE_DIR)/files/{rel[2:]} $(1)/{rel[2:]}\n" in makefile,
                  f"openwrt-package/b4d/Makefile installs /{rel[2:]}")
    elf = elf_facts(read_member(data, "./usr/sbin/b4d"))
    want_class, want_data, want_machine, float_abi = ARCHES[arch]
    check(elf is not None, f"{name}: /usr/sbin/b4d is ELF")
    if elf:
        ei_class, ei_data, e_machine, e_flags, interp = elf
        check((ei_class, ei_data, e_machine) == (want_class, want_data, want_machine),
              f"{name}: ELF class/endianness/machine {elf[:3]} for {arch}")
        check(not interp, f"{name}: /usr/sbin/b4d is static (no PT_INTERP)")
        if float_abi is not None:
            check(e_flags & float_abi, f"{name}: ARM float ABI flags {e_flags:#x}")
    check_service_scripts(name, control, data)


def run_script(script, env):
    return subprocess.run(["sh", script], env=env, capture_output=True, text=True)


def check_service_scripts(name, control, data):
    with tempfile.TemporaryDirectory() as tmp:
        for script in ("postinst", "prerm"):
            with open(os.path.join(tmp, script), "wb") as f:
                f.write(read_member(control, f"./{script}"))
        # The package's uci-defaults, for the live system's /etc/uci-defaults.
        os.makedirs(os.path.join(tmp, "uci-defaults"))
        for m in data.getmembers():
            if m.isfile() and m.name.startswith("./etc/uci-defaults/"):
                with open(os.path.join(tmp, "uci-defaults", os.path.basename(m.name)), "wb") as f:
                    f.write(read_member(data, m.name))
        # And the prerm's hand-back, for its /usr/libexec.
        with open(os.path.join(tmp, "b4d-hand-back"), "wb") as f:
            f.write(read_member(data, "./usr/libexec/b4d-hand-back"))
        os.chmod(os.path.join(tmp, "b4d-hand-back"), 0o755)
        # Image build: only the boot symlink, rc.common's START=60.
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        env = {"PATH": "/usr/bin:/bin", "IPKG_INSTROOT": root}
        r = run_script(os.path.join(tmp, "postinst"), env)
        check(r.returncode == 0, f"{name}: postinst in image build exits 0 ({r.stderr})")
        link = os.path.join(root, "etc/rc.d/S60b4d")
        check(os.path.islink(link) and os.readlink(link) == "../init.d/b4d",
              f"{name}: postinst in image build links /etc/rc.d/S60b4d")
        made = sorted(os.path.relpath(os.path.join(d, x), root)
                      for d, dirs, fs in os.walk(root) for x in dirs + fs)
        check(made == ["etc", "etc/rc.d", "etc/rc.d/S60b4d"], f"{name}: image build touched only rc.d: {made}")
        r = run_script(os.path.join(tmp, "prerm"), env)
        check(r.returncode == 0 and os.path.islink(link), f"{name}: prerm in image build does nothing")
        if os.geteuid() == 0 and shutil.which("unshare"):
            check_live_system(name, tmp)
        else:
            skip(f"{name}: live-system runs (needs root and unshare)")


# Stand-ins on the live system: /etc/init.d/b4d records its calls (and
# answers `enabled` from $STUB_ENABLED); /etc/init.d/firewall, network,
# dnsmasq and odhcpd, and `logger`, record theirs (a service named in
# $STUB_DISABLED is not `enabled`; one in $STUB_FAILING fails every call);
# `pidof` finds the programs named in $STUB_RUNNING; `uci` is
# tests/support/openwrt/uci on $UCI_STATE (its batch fails with
# $STUB_UCI_FAILS=1).
INIT_STUB = """#!/bin/sh
echo "$*" >> "$CALLS"
[ "$1" = enabled ] && [ "$STUB_ENABLED" != 1 ] && exit 1
exit 0
"""
RECORD_STUB = """#!/bin/sh
name="$(basename "$0")"
echo "$name $*" >> "$CALLS"
case " $STUB_FAILING " in *" $name "*) exit 1 ;; esac
[ "$1" = enabled ] || exit 0
case " $STUB_DISABLED " in *" $name "*) exit 1 ;; esac
exit 0
"""
UCI_WRAPPER = """#!/bin/sh
[ "$STUB_UCI_FAILS" = 1 ] && [ "$2" = batch ] && exit 1
exec "$(dirname "$0")/uci-stand-in" "$@"
"""
# /usr/sbin/b4d, which the uci-defaults ask for the tunnel's name (the
# package's binary is another architecture's): the shipped file's values.
B4D_STUB = """#!/bin/sh
[ "$1" = check-config ] && [ "$2" = --get ] || exit 1
case "$3" in
tunnel.name) echo ds-b4 ;;
*) exit 1 ;;
esac
"""
SERVICES = ("network", "dnsmasq", "odhcpd")
PIDOF_STUB = """#!/bin/sh
case " $STUB_RUNNING " in *" $1 "*) exit 0 ;; esac
exit 1
"""


def run_live(tmp, script, env):
    """Runs `script` (shell, with postinst and prerm in $PKG_SCRIPTS) on a
    stand-in live system: a private mount namespace where /etc and /usr are
    overlays (writes stay in the namespace), /run a fresh tmpfs,
    /etc/init.d/b4d and the services' init scripts recording stubs (the
    host's own are never run), /usr/libexec/b4d-hand-back the package's and
    the stand-ins first in PATH; with ASH=1 /bin/sh is busybox's ash, as on
    OpenWrt. Returns (the process, the init scripts' calls, the uci state
    afterwards)."""
    bin_dir = os.path.join(tmp, "bin")
    os.makedirs(bin_dir, exist_ok=True)
    for tool, text in (("pidof", PIDOF_STUB), ("b4d-init", INIT_STUB), ("b4d", B4D_STUB),
                       ("firewall", RECORD_STUB), ("logger", RECORD_STUB),
                       ("uci", UCI_WRAPPER)) + tuple((s, RECORD_STUB) for s in SERVICES):
        with open(os.path.join(bin_dir, tool), "w") as f:
            f.write(text)
        os.chmod(os.path.join(bin_dir, tool), 0o755)
    shutil.copy(os.path.join(ROOT, "tests/support/openwrt/uci"), os.path.join(bin_dir, "uci-stand-in"))
    calls = os.path.join(tmp, "calls")
    uci_state = os.path.join(tmp, "uci.state")
    for f in (calls, uci_state):
        if os.path.exists(f):
            os.remove(f)
    with open(uci_state, "w") as f:
        f.write(env.pop("UCI", ""))
    ovl = os.path.join(tmp, "ovl")
    os.makedirs(ovl, exist_ok=True)
    setup = (
        f"mount -t tmpfs none {ovl} && mkdir {ovl}/upper {ovl}/work {ovl}/usr {ovl}/usr-work && "
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={ovl}/upper,workdir={ovl}/work /etc && "
        f"mount -t overlay overlay -o lowerdir=/usr,upperdir={ovl}/usr,workdir={ovl}/usr-work /usr && "
        "mount -t tmpfs none /run && "
        "mkdir -p /etc/init.d /usr/libexec && "
        f"cp {bin_dir}/b4d-init /etc/init.d/b4d && "
        f"cp {tmp}/b4d-hand-back /usr/libexec/b4d-hand-back && "
        + "".join(f"cp {bin_dir}/{s} /etc/init.d/{s} && " for s in SERVICES)
    )
    if env.pop("ASH", None):
        setup += f"mount --bind {shutil.which('busybox')} /bin/sh && "
    if env.pop("DEFAULTS", None):
        setup += (f"cp -r {tmp}/uci-defaults /etc/uci-defaults && "
                  f"cp {bin_dir}/firewall /etc/init.d/firewall && ")
    full_env = {
        "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
        "PKG_SCRIPTS": tmp, "CALLS": calls, "UCI_STATE": uci_state,
        "RC_LOG": os.path.join(tmp, "tools.log"),
    }
    full_env.update(env)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup + script],
                       env=full_env, capture_output=True, text=True)
    got = open(calls).read().splitlines() if os.path.exists(calls) else []
    return r, got, open(uci_state).read()


def check_live_system(name, tmp):
    # opkg install, then opkg remove (PKG_UPGRADE=0 for both, as opkg-lede
    # sets it): enable + restart, then stop + disable.
    r, calls, _ = run_live(tmp, "sh $PKG_SCRIPTS/postinst && sh $PKG_SCRIPTS/prerm",
                           {"PKG_UPGRADE": "0"})
    check(r.returncode == 0, f"{name}: install and removal exit 0 ({r.stderr})")
    check(calls == ["enable", "restart", "stop", "disable"],
          f"{name}: install and removal call the init script with {calls}")
    check(r.stdout == "", f"{name}: install without netifd says nothing: {r.stdout!r}")
    # The package's uci-defaults run once, before b4d starts, and are
    # deleted: the tunnel's firewall zone (then a firewall reload) and b4d's
    # shipped WAN/LAN defaults fitted to the network config: the WAN device
    # copied, the LAN address an older package left removed (b4d follows
    # br-lan's own).
    network = ("network.wan6.device='eth1'\nnetwork.lan.ipaddr='10.0.0.1/16'\n"
               "b4d.lan.ipaddr='192.168.1.1'\n")
    check_left = "; ls /etc/uci-defaults >&2"
    r, calls, uci = run_live(tmp, "sh $PKG_SCRIPTS/postinst" + check_left,
                             {"PKG_UPGRADE": "0", "DEFAULTS": "1", "UCI": network})
    check(r.returncode == 0 and r.stderr == "", f"{name}: uci-defaults left {r.stderr!r}")
    check(calls[:1] == ["firewall reload"] and calls[-2:] == ["enable", "restart"],
          f"{name}: firewall reloaded, then b4d (re)started: {calls}")
    for line in ("firewall.b4d_dslite='zone'", "b4d.wan.device='eth1'"):
        check(line in uci.splitlines(), f"{name}: postinst's uci-defaults set {line}: {uci}")
    check(not any(l.startswith("b4d.lan.ipaddr") for l in uci.splitlines()),
          f"{name}: postinst's uci-defaults removed the old lan.ipaddr: {uci}")
    check(sum(c.startswith("logger -t b4d uci-defaults:") for c in calls) == 2,
          f"{name}: the WAN device and the removed LAN address logged: {calls}")
    # netifd running: it loads b4.sh only when it restarts, and an install
    # says how to hand the interface over, once; quiet when b4d does not
    # report to netifd and on an upgrade.
    for uci, upgrade, want in (
        ("network.wan6.proto='dhcpv6'\n", "0",
         "uci set network.wan6.proto='b4'; uci commit network; service network restart"),
        ("b4d.wan.netifd_interface='wan6b'\n", "0",
         "uci set network.wan6b.proto='b4'; uci commit network; service network restart"),
        ("network.wan6.proto='b4'\n", "0", "for wan6's proto 'b4': service network restart"),
        ("b4d.globals.ipv6_handoff='standalone'\n", "0", None),
        ("network.wan6.proto='dhcpv6'\n", "1", None),
    ):
        r, _, _ = run_live(tmp, "sh $PKG_SCRIPTS/postinst",
                           {"PKG_UPGRADE": upgrade, "STUB_RUNNING": "netifd", "UCI": uci})
        lines = r.stdout.splitlines()
        if want is None:
            check(r.returncode == 0 and lines == [],
                  f"{name}: postinst with {uci.strip()}, PKG_UPGRADE={upgrade} is quiet: {lines}")
        else:
            check(r.returncode == 0 and len(lines) == 1 and want in lines[0],
                  f"{name}: postinst with {uci.strip()} says {want!r}: {lines} ({r.stderr})")
    # opkg upgrade: the old prerm and the new postinst with PKG_UPGRADE=1.
    # The user's enabled state stays; b4d runs again if it ran or is enabled.
    upgrade = "sh $PKG_SCRIPTS/prerm upgrade 0.1.0-2 && sh $PKG_SCRIPTS/postinst configure"
    for enabled, running, want in (
        ("1", "b4d", ["stop", "restart"]),
        ("0", "", ["stop", "enabled"]),
        ("0", "b4d", ["stop", "restart"]),
        ("1", "", ["stop", "enabled", "restart"]),
    ):
        r, calls, _ = run_live(tmp, upgrade, {"PKG_UPGRADE": "1", "STUB_ENABLED": enabled,
                                              "STUB_RUNNING": running})
        what = f"upgrade with b4d {'enabled' if enabled == '1' else 'disabled'}, " \
               f"{'running' if running else 'stopped'}"
        check(r.returncode == 0, f"{name}: {what} exits 0 ({r.stderr})")
        check(calls == want, f"{name}: {what}: init script calls {calls} != {want}")
    # An upgrade from a package whose prerm disabled b4d and left no mark:
    # as an install.
    r, calls, _ = run_live(tmp, "sh $PKG_SCRIPTS/postinst configure",
                           {"PKG_UPGRADE": "1", "STUB_ENABLED": "0"})
    check(r.returncode == 0 and calls == ["enable", "restart"],
          f"{name}: upgrade from an older prerm enables and restarts: {calls} ({r.stderr})")
    check_hand_back(name, tmp)


# A stock OpenWrt's configuration, where the hand-back must leave it
# (lists as `uci show` prints them).
STOCK = {
    "network.wan6": "interface", "network.wan6.device": "'@wan'",
    "network.wan6.proto": "'dhcpv6'",
    "dhcp.lan": "dhcp", "dhcp.lan.interface": "'lan'", "dhcp.lan.dhcpv4": "'server'",
    "dhcp.lan.dhcpv6": "'server'", "dhcp.@dnsmasq[0]": "dnsmasq",
    "b4d.lan": "lan", "b4d.lan.dhcp": "'1'", "b4d.lan.dns_proxy": "'1'",
}
# The README's hand-over to b4d: uci changes and what the removal says.
WAN6 = ({"network.wan6.proto": "'b4'"}, "network.wan6.proto 'b4' -> 'dhcpv6'")
DHCPV4 = ({"dhcp.lan.dhcpv4": "'disabled'"}, "dhcp.lan.dhcpv4 'disabled' -> 'server'")
DNS_LIST = ({"dhcp.@dnsmasq[0].notinterface": "'lan'"},
            "dhcp.@dnsmasq[0].notinterface: 'lan' removed")
DNS_SERVICE = ({"dhcp.lan.dns_service": "'0'"}, "dhcp.lan.dns_service '0' removed")
RESTART_DHCP = ["dnsmasq enabled", "dnsmasq restart", "odhcpd enabled", "odhcpd restart"]


def uci_text(config):
    return "".join(f"{k}={v}\n" for k, v in config.items())


def check_hand_back(name, tmp):
    """opkg remove undoes the README's hand-over to b4d, only what points at
    b4d, after b4d stopped; it says each change on stdout and in the log,
    reloads netifd and restarts dnsmasq and odhcpd where needed. Under dash
    and, where busybox is installed, ash."""
    shells = ["dash"] + (["ash"] if shutil.which("busybox") else [])
    if len(shells) == 1:
        skip(f"{name}: the hand-back under ash (no busybox)")
    removal = "sh $PKG_SCRIPTS/prerm remove"
    # (what, hand-over changes, extra config (the user's), env, the config
    # the removal leaves (STOCK + extra unless given), what it says, the
    # calls after stop + disable (logger lines left out)).
    cases = [
        ("nothing handed over", [], {}, {}, None, [], []),
        ("wan6 only", [WAN6], {}, {}, None, [WAN6[1]], ["network reload"]),
        ("DNS left to dnsmasq", [WAN6, DHCPV4], {"b4d.lan.dns_proxy": "'0'"}, {},
         None, [WAN6[1], DHCPV4[1]], ["network reload"] + RESTART_DHCP),
        ("DNS to b4d's proxy, a second proto 'b4' interface, another notinterface",
         [WAN6, DHCPV4, DNS_LIST, DNS_SERVICE],
         {"network.wan6b": "interface", "network.wan6b.proto": "'b4'",
          "dhcp.@dnsmasq[0].notinterface": "'wan' 'lan' 'guest'"}, {},
         {"network.wan6b.proto": "'dhcpv6'", "dhcp.@dnsmasq[0].notinterface": "'wan' 'guest'"},
         [WAN6[1], "network.wan6b.proto 'b4' -> 'dhcpv6'", DHCPV4[1], DNS_LIST[1],
          DNS_SERVICE[1]],
         ["network reload"] + RESTART_DHCP),
        ("b4d's DHCPv4 server and DNS proxy off: dnsmasq's settings are the user's",
         [WAN6, DHCPV4, DNS_LIST, DNS_SERVICE],
         {"b4d.lan.dhcp": "'0'", "b4d.lan.dns_proxy": "'Off'"}, {},
         {**DHCPV4[0], **DNS_LIST[0], **DNS_SERVICE[0]}, [WAN6[1]], ["network reload"]),
        ("netifd not running, odhcpd disabled", [WAN6, DHCPV4], {},
         {"STUB_RUNNING": "", "STUB_DISABLED": "odhcpd"}, None, [WAN6[1], DHCPV4[1]],
         ["dnsmasq enabled", "dnsmasq restart", "odhcpd enabled"]),
        ("restarts failing", [WAN6, DHCPV4], {}, {"STUB_FAILING": "network dnsmasq"},
         None, [WAN6[1], DHCPV4[1]], ["network reload", "dnsmasq enabled", "odhcpd enabled",
                                      "odhcpd restart"]),
    ]
    for shell in shells:
        for what, handed, extra, env, left, says, after in cases:
            before = dict(STOCK)
            for changes, _ in handed:
                before.update(changes)
            before.update(extra)
            want = {**STOCK, **extra, **(left or {})}
            r, calls, uci = run_live(tmp, removal, {
                "PKG_UPGRADE": "0", "STUB_RUNNING": "netifd", "UCI": uci_text(before),
                **({"ASH": "1"} if shell == "ash" else {}), **env})
            what = f"{name}: removal under {shell}, {what}"
            check(r.returncode == 0, f"{what}: exits 0 ({r.stderr})")
            check(sorted(uci.splitlines()) == sorted(uci_text(want).splitlines()),
                  f"{what}: leaves\n{uci}instead of\n{uci_text(want)}")
            lines = r.stdout.splitlines()
            check(len(lines) == len(says) and
                  all(line.startswith(f"b4d: {s} (") for line, s in zip(lines, says)),
                  f"{what}: says {lines}, not {says}")
            logged = [c for c in calls if c.startswith("logger ")]
            check([c.replace("logger -t b4d ", "b4d: ", 1) for c in logged] == lines,
                  f"{what}: logs {logged}")
            # b4d stopped first: the changes come after, netifd reloads
            # once the network config is in, dnsmasq once dhcp's is.
            order = [c for c in calls if not c.startswith("logger ")]
            check(order == ["stop", "disable"] + after, f"{what}: calls {order}")
            check(not says or calls.index(logged[0]) > calls.index("disable"),
                  f"{what}: changed before b4d stopped: {calls}")
    # Nothing changes in an upgrade (PKG_UPGRADE=1), with everything handed
    # over; nor when uci fails, which the removal survives and reports.
    handed_over = {**STOCK}
    for changes, _ in (WAN6, DHCPV4, DNS_LIST, DNS_SERVICE):
        handed_over.update(changes)
    r, calls, uci = run_live(tmp, "sh $PKG_SCRIPTS/prerm upgrade 0.1.0-2 && "
                             "sh $PKG_SCRIPTS/postinst configure",
                             {"PKG_UPGRADE": "1", "STUB_RUNNING": "netifd b4d",
                              "UCI": uci_text(handed_over)})
    check(r.returncode == 0 and calls == ["stop", "restart"] and r.stdout == "" and
          sorted(uci.splitlines()) == sorted(uci_text(handed_over).splitlines()),
          f"{name}: an upgrade hands nothing back: {calls} {r.stdout!r}\n{uci}")
    r, calls, uci = run_live(tmp, removal, {"PKG_UPGRADE": "0", "STUB_RUNNING": "netifd",
                                            "STUB_UCI_FAILS": "1",
                                            "UCI": uci_text(handed_over)})
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and calls[:2] == ["stop", "disable"] and
          [c for c in calls if not c.startswith("logger ")] == ["stop", "disable"] and
          len(lines) == 2 and all("uci could not change" in line for line in lines) and
          "set network.wan6.proto='dhcpv6'" in lines[0],
          f"{name}: a removal where uci fails exits 0 and says what is left: "
          f"{calls} {lines} ({r.stderr})")
    check_image_build_prerm(f"{name}: prerm", tmp, "prerm", handed_over)
    check_sdk_prerm(name, tmp, handed_over)
    check_sdk_postinst(name, tmp)


# OpenWrt's default_prerm (lib/functions.sh), as opkg runs it for a package
# built by the SDK: the package's own prerm (prerm-pkg) in a subshell first,
# then its init script disabled (not on an upgrade) and stopped.
DEFAULT_PRERM = """#!/bin/sh
( . "$PKG_SCRIPTS/prerm-pkg" )
[ "$PKG_UPGRADE" = 1 ] || /etc/init.d/b4d disable
/etc/init.d/b4d stop
"""


def sdk_script(tmp, script):
    """Writes the SDK Makefile's Package/b4d/<script> to <tmp>/<script>-pkg,
    as OpenWrt's build would ($$ to $); false if it has none."""
    with open(os.path.join(ROOT, "openwrt-package/b4d/Makefile")) as f:
        makefile = f.read()
    body = re.search(rf"^define Package/b4d/{script}\n(.*?)^endef$", makefile, re.M | re.S)
    check(body is not None, f"openwrt-package/b4d/Makefile defines Package/b4d/{script}")
    if body is None:
        return False
    with open(os.path.join(tmp, f"{script}-pkg"), "w") as f:
        f.write(body.group(1).replace("$$", "$"))
    return True


def check_sdk_prerm(name, tmp, handed_over):
    """The SDK path (openwrt-package/b4d/Makefile): its prerm stops b4d
    before the hand-back, which default_prerm would do only afterwards."""
    if not sdk_script(tmp, "prerm"):
        return
    with open(os.path.join(tmp, "default_prerm"), "w") as f:
        f.write(DEFAULT_PRERM)
    for upgrade, want, want_calls in (
        ("0", STOCK, ["stop", "network reload"] + RESTART_DHCP + ["disable", "stop"]),
        ("1", handed_over, ["stop"]),
    ):
        r, calls, uci = run_live(tmp, "sh $PKG_SCRIPTS/default_prerm",
                                 {"PKG_UPGRADE": upgrade, "STUB_RUNNING": "netifd",
                                  "UCI": uci_text(handed_over)})
        what = f"{name}: the SDK package's {'upgrade' if upgrade == '1' else 'removal'}"
        check(r.returncode == 0 and
              sorted(uci.splitlines()) == sorted(uci_text(want).splitlines()),
              f"{what} leaves\n{uci}({r.stderr})")
        order = [c for c in calls if not c.startswith("logger ")]
        check(order == want_calls, f"{what}: calls {order}")
        check(upgrade == "1" or calls.index("stop") < calls.index(
            next(c for c in calls if c.startswith("logger "))),
            f"{what}: hands back before b4d stopped: {calls}")
    check_image_build_prerm(f"{name}: the SDK package's prerm", tmp, "prerm-pkg", handed_over)


def check_sdk_postinst(name, tmp):
    """The SDK path's postinst: an older default_postinst runs it before the
    uci-defaults, so it runs the firewall one still there itself (then
    deletes it) and reloads fw4, which then loads the tunnel's zone."""
    if not sdk_script(tmp, "postinst"):
        return
    r, calls, uci = run_live(tmp, "sh $PKG_SCRIPTS/postinst-pkg; ls /etc/uci-defaults >&2",
                             {"PKG_UPGRADE": "0", "DEFAULTS": "1"})
    check(r.returncode == 0 and "90-b4d-firewall" not in r.stderr and
          "firewall.b4d_dslite='zone'" in uci.splitlines() and calls == ["firewall reload"],
          f"{name}: the SDK package's postinst runs 90-b4d-firewall, deletes it, "
          f"reloads fw4: {calls} {r.stderr!r}\n{uci}")
    r, calls, _ = run_live(tmp, "sh $PKG_SCRIPTS/postinst-pkg",
                           {"PKG_UPGRADE": "0", "DEFAULTS": "1",
                            "IPKG_INSTROOT": os.path.join(tmp, "root")})
    check(r.returncode == 0 and calls == [],
          f"{name}: the SDK package's postinst does nothing in an image build: {calls}")


def check_image_build_prerm(what, tmp, script, handed_over):
    """In an image build ($IPKG_INSTROOT set) the prerm `script` hands
    nothing back, even on a build host that looks like a live router."""
    r, calls, uci = run_live(tmp, f"sh $PKG_SCRIPTS/{script}",
                             {"IPKG_INSTROOT": os.path.join(tmp, "root"),
                              "STUB_RUNNING": "netifd", "UCI": uci_text(handed_over)})
    check(r.returncode == 0 and calls == [] and r.stdout == "" and
          sorted(uci.splitlines()) == sorted(uci_text(handed_over).splitlines()),
          f"{what} in an image build: {calls} {r.stdout!r}\n{uci}")


def check_luci(path, version, license_):
    name = os.path.basename(path)
    _, control, data, data_raw = unpack(path)
    c = check_common(path, control, data, data_raw, "luci-app-b4d", "all", version, license_)
    check(c.get("Depends") == "luci-base, b4d", f"{name}: Depends {c.get('Depends')}")
    check(c.get("Section") == "luci", f"{name}: Section")
    files = sorted(m.name[2:] for m in data.getmembers() if m.isfile())
    present = sorted(f for f in LUCI_FILES if os.path.isfile(os.path.join(ROOT, "files", f)))
    check(files == present, f"{name}: data files {files} != {present}")
    for rel in present:
        with open(os.path.join(ROOT, "files", rel), "rb") as f:
            check(read_member(data, f"./{rel}") == f.read(), f"{name}: /{rel} is files/{rel}")
        check(data.getmember(f"./{rel}").mode & 0o777 == 0o644, f"{name}: /{rel} mode 0644")


def main():
    dist = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "dist")
    version, license_ = cargo_version()
    version = f"{version}-1"
    for arch in ARCHES:
        path = os.path.join(dist, f"b4d_{version}_{arch}.ipk")
        before = failed
        check(os.path.isfile(path), f"{path} exists")
        if os.path.isfile(path):
            check_b4d(path, arch, version, license_)
        print(f"{os.path.basename(path)}: {'ok' if failed == before else 'FAILED'}")
    if any(os.path.isfile(os.path.join(ROOT, "files", f)) for f in LUCI_FILES):
        path = os.path.join(dist, f"luci-app-b4d_{version}_all.ipk")
        before = failed
        check(os.path.isfile(path), f"{path} exists")
        if os.path.isfile(path):
            check_luci(path, version, license_)
        print(f"{os.path.basename(path)}: {'ok' if failed == before else 'FAILED'}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
