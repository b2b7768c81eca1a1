#!/usr/bin/env bash
# The kernel lab: runs one command inside a throwaway qemu VM that boots
# Debian's own kernel, for the tests that need kernel features the build
# machine lacks (ip6tnl, nf_tables; its kernel has no loadable modules).
#
# The guest has no disk of its own: it mounts the HOST's / read-only over 9p
# with a tmpfs overlay on top, so every host-installed tool (ip, nft, kea,
# dnsmasq, tcpdump) and every host-built test binary runs in it unchanged,
# and writes stay inside the VM. Folders given with --share are mounted
# read-write at the same path, so files written there land on the host.
#
#   scripts/vm.sh setup
#       Installs qemu, cpio, kmod, nftables (apt), downloads the kernel
#       package that linux-image-amd64 depends on and busybox-static
#       (apt-get download + dpkg-deb -x: busybox-static is never installed,
#       so it cannot clash with a host that has the `busybox` package),
#       runs depmod and builds the initramfs. Idempotent; a second run only
#       checks (well under a second).
#   scripts/vm.sh run [--share DIR]... [--timeout SECS] [--results DIR]
#                     [--env NAME[=VALUE]]... [--interactive] -- COMMAND [ARGS...]
#       Boots the VM, runs COMMAND as root in the same working directory,
#       streams its stdout/stderr to ours and exits with its exit code.
#       124: the VM timed out; 125: the VM failed (no exit code came back).
#   scripts/vm.sh shell [--share DIR]...
#       An interactive bash in the VM, for poking at the kernel by hand
#       (exit or Ctrl-d powers it off). `run --interactive` does the same for
#       any command: it gets the VM's console as its terminal.
#   scripts/vm.sh openwrt [options] IMAGE
#       Boots a real OpenWrt x86-64 image (see `scripts/vm.sh openwrt --help`).
#
# Environment:
#   B4D_VM_CACHE    cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/b4d-vm)
#   B4D_VM_ACCEL    qemu accelerator (default tcg: /dev/kvm on the build
#                   machines is a nested hypervisor that hangs stock kernels)
#   B4D_VM_SLOTS    how many VMs may run at once (default 1; the others wait)
#   B4D_VM_MEM      guest memory in MiB (default 1024)
#   B4D_VM_SMP      guest CPUs (default 2)
#   B4D_VM_VERBOSE  1: boot without `quiet` and copy the guest's kernel
#                   console to our stderr (it is always in the results
#                   folder's console.log)
#   B4D_VM_KERNEL_ARGS extra kernel command-line arguments (they come last,
#                   so they override ours), e.g. dyndbg=... or log_buf_len=...
#   B4D_VM_KERNEL_PKG  kernel package to use instead of linux-image-amd64's
#                   dependency (e.g. linux-image-6.1.0-26-amd64)
# Inside the guest B4D_IN_VM=1 is set, and RUST_*, PROPTEST_*, CARGO_*, CI,
# TERM, NO_COLOR and B4D_* are passed through from the host.
set -euo pipefail

PROG="vm.sh"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${B4D_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/b4d-vm}"
# Modules the initramfs loads before it can mount anything: virtio PCI
# transport, 9p over virtio, overlayfs, virtio serial ports (the command's
# stdout/stderr) and the virtio RNG (so nothing in the guest waits for
# entropy). Their dependencies are found with modprobe --show-depends.
INITRAMFS_MODULES=(virtio_pci 9pnet_virtio 9p overlay virtio_console virtio_rng)
APT_PACKAGES=(qemu-system-x86 cpio kmod nftables iproute2 gzip util-linux)
# Version of the initramfs layout below; bump it when /init changes shape
# (the init text itself is hashed too, so this is belt and braces).
INITRAMFS_LAYOUT=1

say() { echo "$PROG: $*" >&2; }
die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# Single-quotes a string for sh/bash (also busybox ash).
shquote() {
    local s=${1//\'/\'\\\'\'}
    printf "'%s'" "$s"
}

# Prints a command line that can be pasted into a shell.
print_command() {
    local a out=()
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=("$a"); else out+=("$(shquote "$a")"); fi
    done
    echo "${out[*]}"
}

need_root() {
    [ "$(id -u)" = 0 ] || die "$1 needs root (run as root or with sudo)"
}

# --- setup -------------------------------------------------------------------

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

APT_UPDATED=""
apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        APT_UPDATED=1
    fi
}

install_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    need_root "installing ${missing[*]}"
    apt_update_once
    say "apt-get install ${missing[*]}"
    # Lock::Timeout: other test set-ups may be running apt at the same time.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# The kernel package linux-image-amd64 depends on (e.g.
# linux-image-6.1.0-56-amd64), or B4D_VM_KERNEL_PKG.
kernel_package() {
    if [ -n "${B4D_VM_KERNEL_PKG:-}" ]; then
        echo "$B4D_VM_KERNEL_PKG"
        return
    fi
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        apt_update_once
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    fi
    [ -n "$pkg" ] || die "cannot find the kernel package linux-image-amd64 depends on"
    echo "$pkg"
}

# Downloads package $1 and unpacks it into folder $2 (replacing it).
fetch_and_unpack() {
    local pkg=$1 dest=$2 dl
    dl=$(mktemp -d "$CACHE/download.XXXXXX")
    # apt drops privileges to _apt for downloads; let it write the folder.
    chmod 0777 "$dl"
    say "apt-get download $pkg"
    if ! (cd "$dl" && apt-get download -q "$pkg" >/dev/null 2>"$dl/apt.err"); then
        apt_update_once
        (cd "$dl" && apt-get download -q "$pkg" >/dev/null 2>"$dl/apt.err") ||
            die "apt-get download $pkg failed: $(cat "$dl/apt.err")"
    fi
    rm -rf "$dest.new"
    dpkg-deb -x "$dl"/*.deb "$dest.new"
    rm -rf "$dest" "$dl"
    mv "$dest.new" "$dest"
}

# Prints the /init of the initramfs. It runs under busybox-static with only
# the initramfs: loads the modules, mounts the host's / read-only over 9p
# with a tmpfs overlay on top, mounts the results folder, the shares and the
# module tree into it, then switch_roots to the guest-side script vm.sh
# wrote into the results folder for this run.
initramfs_init() {
    cat <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /lower /rw /newroot /results
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
log() { echo "b4d-vm init: $*" >/dev/console; }
fail() {
    log "FAILED: $*"
    echo o >/proc/sysrq-trigger
    sleep 60
}
while read -r m; do
    insmod "/lib/modules/$m" || fail "insmod $m"
done </lib/modules/order
# 9p tags appear when the virtio devices are probed; allow a moment.
mount9p() {
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,$3" "$1" "$2" 2>/dev/null && return 0
        sleep 0.5
    done
    fail "mount 9p $1 on $2"
}
mount9p results /results rw
. /results/vm.env
mount9p hostroot /lower ro,cache=loose
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
    fail "overlay"
for d in proc sys dev; do mount --move "/$d" "/newroot/$d" || fail "move /$d"; done
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
# A fresh /run: the host's holds its pid files and namespace mounts.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "tmpfs /run"
mkdir -p /newroot/run/b4d-vm /newroot/run/lock
mount --move /results /newroot/run/b4d-vm || fail "move results"
mkdir -p /newroot/lib/modules
mount --bind "/newroot$B4D_VM_MODULES" /newroot/lib/modules || fail "bind modules"
i=0
while [ "$i" -lt "$B4D_VM_SHARES" ]; do
    eval "dir=\$B4D_VM_SHARE_$i"
    mkdir -p "/newroot$dir"
    mount9p "share$i" "/newroot$dir" rw
    i=$((i + 1))
done
exec switch_root /newroot /bin/sh /run/b4d-vm/guest.sh
fail "switch_root"
EOF
}

# Prints the guest-side script (PID 1 after switch_root, run by the host's
# /bin/sh): loopback up, find the virtio ports, run the command, record its
# exit code, power off.
guest_script() {
    cat <<'EOF'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
R=/run/b4d-vm
log() { echo "b4d-vm guest: $*" >/dev/console; }
/usr/bin/hostname b4d-vm 2>/dev/null || echo b4d-vm >/proc/sys/kernel/hostname
/bin/ip link set lo up
OUT=/dev/null
ERR=/dev/null
for p in /sys/class/virtio-ports/*; do
    case "$(cat "$p/name" 2>/dev/null)" in
    b4d.stdout) OUT="/dev/${p##*/}" ;;
    b4d.stderr) ERR="/dev/${p##*/}" ;;
    esac
done
if [ -e "$R/interactive" ]; then
    # `vm.sh shell`: the command gets the virtio console (a real tty, so
    # line editing and Ctrl-C work) as its controlling terminal.
    log "running command on /dev/hvc0"
    setsid -c /bin/bash "$R/command.sh" </dev/hvc0 >/dev/hvc0 2>&1
    rc=$?
else
    log "running command (stdout $OUT, stderr $ERR)"
    /bin/bash "$R/command.sh" </dev/null >"$OUT" 2>"$ERR"
    rc=$?
fi
log "command exited with $rc"
echo "$rc" >"$R/exit-code.tmp" && mv "$R/exit-code.tmp" "$R/exit-code"
sync
echo o >/proc/sysrq-trigger
# PID 1 must not exit (that panics) while the power-off runs; the 9p root
# may already be gone, so no external program (sleep) from here on.
while :; do :; done
EOF
}

kernel_dir() { echo "$CACHE/kernel"; }

setup_ready() {
    local k
    k=$(kernel_dir)
    [ -f "$k/ready" ] && [ -f "$(initramfs_path)" ] &&
        command -v qemu-system-x86_64 >/dev/null 2>&1 &&
        { [ -z "${B4D_VM_KERNEL_PKG:-}" ] || [ "$(cut -d' ' -f1 "$k/ready")" = "$B4D_VM_KERNEL_PKG" ]; }
}

# The initramfs is named after a hash of what goes into it, so checkouts
# with different versions of this script (several worktrees, one cache) each
# boot their own and never rebuild each other's.
initramfs_path() {
    echo "$CACHE/initramfs-$(initramfs_stamp | cut -c1-16).cpio.gz"
}

initramfs_stamp() {
    {
        echo "layout $INITRAMFS_LAYOUT"
        echo "modules ${INITRAMFS_MODULES[*]}"
        cat "$(kernel_dir)/ready" 2>/dev/null
        initramfs_init
    } | sha256sum | cut -d' ' -f1
}

do_setup() {
    local started=$SECONDS
    mkdir -p "$CACHE"
    exec {setup_lock}>"$CACHE/.setup.lock"
    flock "$setup_lock"
    install_packages
    local kdir kver
    kdir=$(kernel_dir)
    if [ -f "$kdir/ready" ] && [ -n "${B4D_VM_KERNEL_PKG:-}" ] &&
        [ "$(cut -d' ' -f1 "$kdir/ready")" != "$B4D_VM_KERNEL_PKG" ]; then
        rm -f "$kdir/ready"
    fi
    if [ ! -f "$kdir/ready" ]; then
        need_root "downloading the kernel"
        local pkg
        pkg=$(kernel_package)
        fetch_and_unpack "$pkg" "$kdir"
        kver=$(ls "$kdir/lib/modules")
        [ -n "$kver" ] && [ -f "$kdir/boot/vmlinuz-$kver" ] ||
            die "$pkg has no kernel image for $kver"
        say "depmod -b $kdir $kver"
        depmod -b "$kdir" "$kver"
        printf '%s %s\n' "$pkg" "$kver" >"$kdir/ready"
    fi
    kver=$(cut -d' ' -f2 "$kdir/ready")
    if [ ! -x "$CACHE/busybox/bin/busybox" ]; then
        fetch_and_unpack busybox-static "$CACHE/busybox"
    fi
    local initramfs
    initramfs=$(initramfs_path)
    if [ ! -f "$initramfs" ]; then
        say "building the initramfs for $kver"
        local build
        build=$(mktemp -d "$CACHE/initramfs.XXXXXX")
        mkdir -p "$build/bin" "$build/lib/modules"
        cp "$CACHE/busybox/bin/busybox" "$build/bin/busybox"
        initramfs_init >"$build/init"
        chmod 0755 "$build/init"
        local m ko seen=" "
        for m in "${INITRAMFS_MODULES[@]}"; do
            while read -r kind ko _; do
                # Built-in modules show as "builtin NAME": nothing to load.
                [ "$kind" = insmod ] || continue
                case "$seen" in *" $ko "*) continue ;; esac
                seen="$seen$ko "
                cp "$ko" "$build/lib/modules/"
                basename "$ko" >>"$build/lib/modules/order"
            done < <(modprobe -d "$kdir" -S "$kver" --show-depends "$m")
        done
        (cd "$build" && find . -print0 | cpio --null -o -H newc --quiet) |
            gzip -6 >"$initramfs.new"
        mv "$initramfs.new" "$initramfs"
        rm -rf "$build"
    fi
    say "ready: kernel $kver, cache $CACHE ($((SECONDS - started)) s)"
    # Close the lock, or the qemu started next would inherit and hold it.
    exec {setup_lock}>&-
}

# --- run ---------------------------------------------------------------------

# Holds one of B4D_VM_SLOTS lock files for as long as this script (and the
# qemu it starts, which inherits the descriptor) runs: with 2 host cores and
# software emulation, more VMs at once only make every one of them slower.
acquire_slot() {
    local slots=${B4D_VM_SLOTS:-1} i fd waited=""
    mkdir -p "$CACHE/slots"
    while :; do
        for ((i = 0; i < slots; i++)); do
            exec {fd}>"$CACHE/slots/$i"
            if flock -n "$fd"; then
                [ -z "$waited" ] || say "got VM slot $i after $((SECONDS - waited)) s"
                return 0
            fi
            exec {fd}>&-
        done
        if [ -z "$waited" ]; then
            say "all $slots VM slot(s) busy, waiting"
            waited=$SECONDS
        fi
        sleep 0.5
    done
}

# Whether environment variable $1 is passed to the guest.
passed_through() {
    case "$1" in
    RUST_* | PROPTEST_* | CARGO_* | B4D_* | CI | TERM | NO_COLOR) return 0 ;;
    *) return 1 ;;
    esac
}

do_run() {
    local shares=() envs=() timeout=900 results="" keep="" interactive=""
    while [ $# -gt 0 ]; do
        case "$1" in
        --share)
            [ $# -ge 2 ] || die "--share needs a folder"
            [ -d "$2" ] || die "--share $2: not a folder"
            shares+=("$(cd "$2" && pwd -P)")
            shift 2
            ;;
        --timeout)
            [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] ||
                die "--timeout needs a number of seconds"
            timeout=$2
            shift 2
            ;;
        --results)
            [ $# -ge 2 ] || die "--results needs a folder"
            results=$2
            keep=1
            shift 2
            ;;
        --env)
            [ $# -ge 2 ] || die "--env needs NAME or NAME=VALUE"
            envs+=("$2")
            shift 2
            ;;
        --interactive)
            interactive=1
            shift
            ;;
        --)
            shift
            break
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "run: unknown option $1 (the command goes after --)" ;;
        esac
    done
    [ $# -gt 0 ] || die "run: no command (usage: $PROG run [options] -- COMMAND [ARGS...])"
    [ "${B4D_IN_VM:-}" != 1 ] || die "already inside the kernel lab VM (B4D_IN_VM=1)"

    setup_ready || do_setup
    local kdir kver
    kdir=$(kernel_dir)
    kver=$(cut -d' ' -f2 "$kdir/ready")

    if [ -n "$results" ]; then
        # Emptied for this run, so only if it is new, empty or an earlier
        # run's results folder (never someone's files).
        if [ -d "$results" ] && [ -n "$(ls -A "$results")" ] && [ ! -f "$results/vm.env" ]; then
            die "--results $results: not empty and not an earlier results folder, refusing to empty it"
        fi
        rm -rf "$results"
        mkdir -p "$results"
        results=$(cd "$results" && pwd -P)
    else
        results=$(mktemp -d "${TMPDIR:-/tmp}/b4d-vm.XXXXXX")
    fi
    # A temporary results folder goes away after a success; after a failure
    # it stays for its console.log (the message below names it).
    RUN_RESULTS=$results
    RUN_KEEP=$keep
    trap 'rc=$?; [ -n "$RUN_KEEP" ] || [ "$rc" != 0 ] || rm -rf "$RUN_RESULTS"' EXIT

    # What the initramfs needs: the module tree's path on the host (visible
    # in the guest through the host root) and the shares.
    {
        echo "B4D_VM_MODULES=$(shquote "$kdir/lib/modules")"
        echo "B4D_VM_SHARES=${#shares[@]}"
        local i
        for i in "${!shares[@]}"; do
            echo "B4D_VM_SHARE_$i=$(shquote "${shares[$i]}")"
        done
    } >"$results/vm.env"
    guest_script >"$results/guest.sh"
    # The command, run by bash in the guest: same folder, a clean
    # environment with the selected variables.
    {
        echo "cd -- $(shquote "$PWD") || exit 126"
        echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        echo "export HOME=/root USER=root LOGNAME=root"
        local name
        while IFS= read -r name; do
            passed_through "$name" || continue
            echo "export $name=$(shquote "${!name}")"
        done < <(compgen -e)
        local e
        for e in "${envs[@]+"${envs[@]}"}"; do
            name=${e%%=*}
            [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env $e: bad variable name"
            if [[ "$e" == *=* ]]; then
                echo "export $name=$(shquote "${e#*=}")"
            elif [ -n "${!name+x}" ]; then
                echo "export $name=$(shquote "${!name}")"
            fi
        done
        echo "export B4D_IN_VM=1"
        printf 'exec'
        local a
        for a in "$@"; do printf ' %s' "$(shquote "$a")"; done
        echo
    } >"$results/command.sh"

    local accel=${B4D_VM_ACCEL:-tcg}
    local serial="file,id=console,path=$results/console.log"
    # quiet: the serial port is slow under emulation, and only warnings
    # matter unless someone is looking.
    local cmdline="console=ttyS0 quiet panic=-1 rdinit=/init"
    if [ "${B4D_VM_VERBOSE:-}" = 1 ]; then
        serial="file,id=console,path=/proc/self/fd/2,append=on,logfile=$results/console.log"
        cmdline="console=ttyS0 printk.time=1 panic=-1 rdinit=/init"
    fi
    cmdline="$cmdline${B4D_VM_KERNEL_ARGS:+ $B4D_VM_KERNEL_ARGS}"
    # shellcheck disable=SC2054 # the commas are qemu's, inside one option
    local qemu=(
        qemu-system-x86_64 -accel "$accel" -M pc -smp "${B4D_VM_SMP:-2}" -m "${B4D_VM_MEM:-1024}"
        -nodefaults -no-user-config -display none -no-reboot -nic none
        -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$(initramfs_path)"
        -append "$cmdline"
        -chardev "$serial" -serial chardev:console
        -device virtio-rng-pci
        -virtfs "local,path=/,mount_tag=hostroot,readonly=on,security_model=none,multidevs=remap,id=hostroot"
        -virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap,id=results"
        -device virtio-serial-pci
    )
    if [ -n "$interactive" ]; then
        touch "$results/interactive"
        qemu+=(-chardev "stdio,id=term,signal=off" -device "virtconsole,chardev=term")
    else
        qemu+=(
            -chardev "file,id=stdout,path=/proc/self/fd/1,append=on"
            -device "virtserialport,chardev=stdout,name=b4d.stdout"
            -chardev "file,id=stderr,path=/proc/self/fd/2,append=on"
            -device "virtserialport,chardev=stderr,name=b4d.stderr"
        )
    fi
    local i
    for i in "${!shares[@]}"; do
        qemu+=(-virtfs "local,path=${shares[$i]},mount_tag=share$i,security_model=none,multidevs=remap,id=share$i")
    done

    # Ctrl-C or a TERM for this script stops the VM too (qemu may sit in
    # its own process group under timeout, where the terminal's signal does
    # not reach it).
    INTERRUPTED=""
    QEMU_PIDFILE="$results/qemu.pid"
    trap 'INTERRUPTED=1; if [ -s "$QEMU_PIDFILE" ]; then kill -TERM "$(cat "$QEMU_PIDFILE")" 2>/dev/null; else exit 130; fi' INT TERM HUP
    qemu+=(-pidfile "$QEMU_PIDFILE")

    acquire_slot
    local started=$SECONDS rc=0
    set +e
    if [ -n "$interactive" ]; then
        timeout --foreground --kill-after=5 "$timeout" "${qemu[@]}"
        rc=$?
    else
        # qemu re-opens its stdout and stderr by path for the command's
        # output (/proc/self/fd/N). On a regular file that would be a second
        # file description with its own offset, overwriting what others
        # write there; through pipes both streams stay in order. In the
        # background, because bash runs traps only between commands or
        # during `wait`.
        {
            timeout --kill-after=5 "$timeout" "${qemu[@]}" </dev/null 2> >(cat >&2)
            echo $? >"$results/qemu.rc"
        } | cat &
        local pipeline=$!
        # wait returns early (> 128) when the trap ran; wait again for the end.
        until wait "$pipeline"; do
            kill -0 "$pipeline" 2>/dev/null || break
        done
        rc=$(cat "$results/qemu.rc" 2>/dev/null || echo 125)
    fi
    set -e
    if [ -n "$INTERRUPTED" ]; then
        say "interrupted: VM stopped (command: $*)"
        [ -n "$keep" ] || rm -rf "$results"
        exit 130
    fi
    local took=$((SECONDS - started))
    if [ -f "$results/exit-code" ]; then
        rc=$(cat "$results/exit-code")
        [ "$rc" = 0 ] || say "command exited with $rc in the VM ($took s; console: $results/console.log)"
        exit "$rc"
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        say "VM TIMED OUT after $timeout s (command: $*)"
        rc=124
    else
        say "VM FAILED: qemu exited with $rc and the guest reported no exit code (command: $*)"
        rc=125
    fi
    say "last lines of the guest console ($results/console.log):"
    tail -n 30 "$results/console.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    exit "$rc"
}

# --- openwrt -----------------------------------------------------------------

openwrt_usage() {
    cat <<'EOF'
scripts/vm.sh openwrt [--share DIR] [--ssh-port PORT] [--wan-tap IFACE]
                      [--mem MIB] [--fresh] [--dry-run] IMAGE

Boots a real OpenWrt x86-64 image (openwrt-*-x86-64-generic-ext4-combined.img.gz
or an already decompressed .img) with qemu, its serial console on this
terminal (quit with Ctrl-a x).

  IMAGE           the image; a .gz is decompressed once into the cache
                  ($B4D_VM_CACHE/openwrt/), and that copy is the VM's disk, so
                  changes persist across boots (--fresh starts over)
  --share DIR     a 9p share, tag "b4d" (default: target/ of this repo if it
                  exists), e.g. to copy in a b4d built for x86_64 musl. In
                  OpenWrt: opkg install kmod-9pnet kmod-fs-9p, then
                  mount -t 9p -o trans=virtio b4d /mnt
  --ssh-port PORT host port forwarded to the LAN address 192.168.1.1:22
                  (default 2222, bound to 127.0.0.1 only):
                    ssh -p 2222 root@127.0.0.1
                    scp -O -P 2222 target/x86_64-unknown-linux-musl/release/b4d root@127.0.0.1:/tmp/
  --wan-tap IFACE eth1 (OpenWrt's "wan") on an existing tap interface, e.g.
                  one moved into an "ISP" namespace running kea-dhcp6 with
                  option 64 and an AFTR; without it eth1 is an isolated
                  user-mode network with no route out
  --mem MIB       guest memory (default 256)
  --fresh         decompress the image again (drops changes made in the VM)
  --dry-run       prepare the disk, print the qemu command, do not boot

eth0 (OpenWrt's "lan", 192.168.1.1/24) is qemu user networking restricted to
the host: only the forwarded SSH port reaches it, and the guest cannot reach
anything outside. The accelerator is B4D_VM_ACCEL (default tcg).
EOF
}

do_openwrt() {
    local share="" ssh_port=2222 wan_tap="" mem=256 fresh="" dry="" image=""
    [ -d "$REPO/target" ] && share="$REPO/target"
    while [ $# -gt 0 ]; do
        case "$1" in
        --share)
            [ $# -ge 2 ] && [ -d "$2" ] || die "--share needs an existing folder"
            share=$(cd "$2" && pwd -P)
            shift 2
            ;;
        --ssh-port)
            [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] ||
                die "--ssh-port needs a port number"
            ssh_port=$2
            shift 2
            ;;
        --wan-tap)
            [ $# -ge 2 ] && [ -n "$2" ] || die "--wan-tap needs an interface name"
            wan_tap=$2
            shift 2
            ;;
        --mem)
            [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] || die "--mem needs MiB"
            mem=$2
            shift 2
            ;;
        --fresh)
            fresh=1
            shift
            ;;
        --dry-run)
            dry=1
            shift
            ;;
        -h | --help)
            openwrt_usage
            exit 0
            ;;
        -*) die "openwrt: unknown option $1 (see $PROG openwrt --help)" ;;
        *)
            [ -z "$image" ] || die "openwrt: one image only ($image, $1)"
            image=$1
            shift
            ;;
        esac
    done
    [ -n "$image" ] || die "openwrt: no image given (see $PROG openwrt --help)"
    [ -f "$image" ] || die "openwrt: $image: no such file"

    local disk
    case "$image" in
    *.gz)
        mkdir -p "$CACHE/openwrt"
        local base
        base=$(basename "$image" .gz)
        disk="$CACHE/openwrt/$base"
        if [ -n "$fresh" ] || [ ! -f "$disk" ] || [ "$image" -nt "$disk" ]; then
            say "decompressing $image to $disk"
            # OpenWrt pads its images after the gzip stream; gzip then warns
            # "trailing garbage ignored" and exits with 2. Only 1 is an error.
            local rc=0
            gzip -dc "$image" >"$disk.new" 2>"$disk.err" || rc=$?
            if [ "$rc" = 1 ] || [ ! -s "$disk.new" ]; then
                rm -f "$disk.new"
                die "cannot decompress $image: $(cat "$disk.err")"
            fi
            rm -f "$disk.err"
            mv "$disk.new" "$disk"
        fi
        ;;
    *) disk=$(realpath "$image") ;;
    esac

    local wan
    if [ -n "$wan_tap" ]; then
        wan="tap,id=wan,ifname=$wan_tap,script=no,downscript=no"
    else
        wan="user,id=wan,restrict=on,ipv6=on"
    fi
    # shellcheck disable=SC2054 # the commas are qemu's, inside one option
    local qemu=(
        qemu-system-x86_64 -accel "${B4D_VM_ACCEL:-tcg}" -M pc -smp 2 -m "$mem"
        -nographic -no-user-config
        -drive "file=$disk,format=raw,if=virtio"
        -netdev "user,id=lan,restrict=on,net=192.168.1.0/24,host=192.168.1.2,hostfwd=tcp:127.0.0.1:$ssh_port-192.168.1.1:22"
        -device virtio-net-pci,netdev=lan
        -netdev "$wan"
        -device virtio-net-pci,netdev=wan
    )
    [ -z "$share" ] || qemu+=(-virtfs "local,path=$share,mount_tag=b4d,security_model=none,multidevs=remap,id=b4d")
    if [ -n "$dry" ]; then
        print_command "${qemu[@]}"
        return 0
    fi
    command -v qemu-system-x86_64 >/dev/null 2>&1 || install_packages
    say "booting $disk (console below; Ctrl-a x quits); ssh -p $ssh_port root@127.0.0.1"
    exec "${qemu[@]}"
}

# --- main --------------------------------------------------------------------

[ $# -gt 0 ] || {
    usage
    exit 2
}
cmd=$1
shift
case "$cmd" in
setup)
    [ $# -eq 0 ] || die "setup takes no arguments"
    do_setup
    ;;
run) do_run "$@" ;;
shell) do_run --interactive --timeout "${B4D_VM_SHELL_TIMEOUT:-86400}" "$@" -- /bin/bash -i ;;
openwrt) do_openwrt "$@" ;;
-h | --help | help) usage ;;
*) die "unknown command $cmd (setup, run, shell, openwrt; --help)" ;;
esac
