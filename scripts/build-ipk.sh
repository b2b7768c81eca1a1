#!/usr/bin/env bash
# Builds opkg packages (.ipk) without the OpenWrt SDK, in the format OpenWrt's
# scripts/ipkg-build writes and opkg reads:
#   outer archive: gzip'd GNU tar holding ./debian-binary ("2.0"),
#                  ./data.tar.gz and ./control.tar.gz (in that order);
#   control.tar.gz: ./control, ./conffiles, ./postinst, ./prerm;
#   data.tar.gz:    the files as installed, owned by root (uid/gid 0).
# Reproducible: every mtime is SOURCE_DATE_EPOCH (default: the last commit).
#
# Packages:
#   b4d_<ver>_<arch>.ipk for each OpenWrt package architecture below, from
#     the stripped static musl binary scripts/cross.sh built for its Rust
#     target ($CARGO_TARGET_DIR/dist/<target>/b4d);
#   luci-app-b4d_<ver>_all.ipk with the LuCI view, menu and rpcd ACL from
#     files/ (only when those files exist).
#
# Usage: scripts/build-ipk.sh [OPENWRT_ARCH...]   (default: all of them)
# Env:   CARGO_TARGET_DIR (default target/cross, as scripts/cross.sh),
#        IPK_OUT (default dist/)
set -euo pipefail
cd "$(dirname "$0")/.."

# OpenWrt package architecture -> Rust target whose binary it gets.
# arm_cortex-a9 (bcm53xx) is soft-float: armv6 soft-float code runs there.
declare -A RUST_TARGET=(
    [mips_24kc]=mips-unknown-linux-musl
    [mipsel_24kc]=mipsel-unknown-linux-musl
    [arm_cortex-a7_neon-vfpv4]=armv7-unknown-linux-musleabihf
    [arm_cortex-a9]=arm-unknown-linux-musleabi
    [aarch64_cortex-a53]=aarch64-unknown-linux-musl
    [aarch64_generic]=aarch64-unknown-linux-musl
    [x86_64]=x86_64-unknown-linux-musl
)
ALL_ARCHES=(mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 arm_cortex-a9
    aarch64_cortex-a53 aarch64_generic x86_64)

TARGET_DIR="${CARGO_TARGET_DIR:-target/cross}"
OUT="${IPK_OUT:-dist}"
PKG_RELEASE=1
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)-${PKG_RELEASE}"
LICENSE="$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
MAINTAINER="b4d maintainers"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
fi
export SOURCE_DATE_EPOCH

say() { echo "build-ipk: $*"; }

# A reproducible gzip'd tar of "$@" (relative to the current directory).
# GNU format, numeric root ownership and sorted names, as ipkg-build.
tar_gz() {
    tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
        --mtime="@${SOURCE_DATE_EPOCH}" -cf - "$@" | gzip -n -9
}

# Packs $1 (a staging dir with data/ and CONTROL/) into $OUT.
# Fills in Installed-Size as ipkg-build does: the uncompressed data tar size.
pack() {
    local stage="$1" pkg arch file
    pkg="$(sed -n 's/^Package: //p' "$stage/CONTROL/control")"
    arch="$(sed -n 's/^Architecture: //p' "$stage/CONTROL/control")"
    (cd "$stage/data" && tar_gz .) >"$stage/data.tar.gz"
    local installed_size
    installed_size="$(gzip -dc "$stage/data.tar.gz" | wc -c)"
    sed -i "s/^Installed-Size: .*/Installed-Size: ${installed_size}/" "$stage/CONTROL/control"
    (cd "$stage/CONTROL" && tar_gz .) >"$stage/control.tar.gz"
    echo "2.0" >"$stage/debian-binary"
    file="$OUT/${pkg}_${VERSION}_${arch}.ipk"
    (cd "$stage" && tar_gz ./debian-binary ./data.tar.gz ./control.tar.gz) >"$file"
    say "$file ($(stat -c %s "$file") bytes, installed ${installed_size} bytes)"
}

# Writes the control file; $1 stage, $2 package, $3 arch, $4 depends,
# $5 section, $6 one-line description, $7 long description (one paragraph).
write_control() {
    mkdir -p "$1/CONTROL"
    cat >"$1/CONTROL/control" <<EOF
Package: $2
Version: ${VERSION}
Depends: $4
Source: openwrt-package/$2
SourceName: $2
License: ${LICENSE}
Section: $5
SourceDateEpoch: ${SOURCE_DATE_EPOCH}
Maintainer: ${MAINTAINER}
Architecture: $3
Installed-Size: 0
Description: $6
 $7
EOF
}

# Install-time scripts. In an image build (ImageBuilder, SDK rootfs)
# IPKG_INSTROOT is the image root: there only the boot symlink is made
# (what rc.common's `enable` does), nothing runs or stops on the build host.
# On a live system an install enables and (re)starts b4d and a removal stops
# and disables it. An upgrade (opkg-lede sets PKG_UPGRADE=1 for the old
# package's prerm and the new one's postinst, as OpenWrt's default_prerm and
# default_postinst read it) keeps the user's choice: no disable, no enable;
# the old prerm notes in UPGRADE_MARK whether b4d was running, and the new
# postinst starts it again if it was, or if it is enabled. An upgrade from
# a package whose prerm left no mark (it disabled b4d) is an install.
# A removal also hands back what b4d took over (HAND_BACK, after b4d has
# stopped): wan6 to dhcpv6, DHCPv4 and DNS on the LAN to dnsmasq.
UPGRADE_MARK=/var/run/b4d.upgrade
HAND_BACK=/usr/libexec/b4d-hand-back
write_service_scripts() {
    local control="$1/CONTROL" start
    start="$(sed -n 's/^START=\([0-9]*\)$/\1/p' files/etc/init.d/b4d)"
    cat >"$control/postinst" <<EOF
#!/bin/sh
[ "\${IPKG_NO_SCRIPT}" = "1" ] && exit 0
if [ -n "\${IPKG_INSTROOT}" ]; then
	mkdir -p "\${IPKG_INSTROOT}/etc/rc.d"
	ln -sf ../init.d/b4d "\${IPKG_INSTROOT}/etc/rc.d/S${start}b4d"
	exit 0
fi
for defaults in 90-b4d-firewall 91-b4d-network; do
	[ -f "/etc/uci-defaults/\$defaults" ] || continue
	( . "/etc/uci-defaults/\$defaults" ) && rm -f "/etc/uci-defaults/\$defaults"
	if [ "\$defaults" = 90-b4d-firewall ] && [ -x /etc/init.d/firewall ]; then
		/etc/init.d/firewall reload
	fi
done
if [ "\${PKG_UPGRADE}" = "1" ] && [ -f ${UPGRADE_MARK} ]; then
	read -r was < ${UPGRADE_MARK}
	rm -f ${UPGRADE_MARK}
	if [ "\$was" = running ] || /etc/init.d/b4d enabled; then
		/etc/init.d/b4d restart
	fi
	exit 0
fi
/etc/init.d/b4d enable
/etc/init.d/b4d restart
[ "\${PKG_UPGRADE}" = "1" ] && exit 0
# netifd loads its protocol handlers only when it starts: a running netifd
# knows proto 'b4' (b4.sh, just installed) only after a restart.
pidof netifd >/dev/null 2>&1 || exit 0
case "\$(uci -q get b4d.globals.ipv6_handoff)" in "" | auto | netifd) ;; *) exit 0 ;; esac
interface="\$(uci -q get b4d.wan.netifd_interface)"
[ -n "\$interface" ] || interface=wan6
if [ "\$(uci -q get "network.\$interface.proto")" = b4 ]; then
	echo "b4d: netifd loads protocol handlers only at its start; for \$interface's proto 'b4': service network restart"
else
	echo "b4d: to hand \$interface to b4d: uci set network.\$interface.proto='b4'; uci commit network; service network restart (not ifup: netifd loads protocol handlers only at its start)"
fi
exit 0
EOF
    cat >"$control/prerm" <<EOF
#!/bin/sh
[ -n "\${IPKG_INSTROOT}" ] && exit 0
if [ "\${PKG_UPGRADE}" = "1" ]; then
	if pidof b4d >/dev/null 2>&1; then
		echo running > ${UPGRADE_MARK}
	else
		echo stopped > ${UPGRADE_MARK}
	fi
	/etc/init.d/b4d stop
	exit 0
fi
/etc/init.d/b4d stop
/etc/init.d/b4d disable
# A removal: b4d is gone (its ports free), its files not yet; hand back
# what it took over and would leave broken.
[ ! -x ${HAND_BACK} ] || ${HAND_BACK}
exit 0
EOF
    chmod 0755 "$control/postinst" "$control/prerm"
}

build_b4d() {
    local arch="$1" target="${RUST_TARGET[$1]}" stage bin
    bin="$TARGET_DIR/dist/$target/b4d"
    if [ ! -f "$bin" ]; then
        echo "build-ipk: $bin missing; run scripts/cross.sh $target first" >&2
        exit 1
    fi
    stage="$WORK/b4d-$arch"
    mkdir -p "$stage/data/usr/sbin" "$stage/data/etc/init.d" "$stage/data/etc/config"
    install -m 0755 "$bin" "$stage/data/usr/sbin/b4d"
    install -m 0755 files/etc/init.d/b4d "$stage/data/etc/init.d/b4d"
    install -m 0600 files/etc/config/b4d "$stage/data/etc/config/b4d"
    # netifd's protocol handler 'b4' (OpenWrt mode, src/netifd/).
    install -D -m 0755 files/lib/netifd/proto/b4.sh "$stage/data/lib/netifd/proto/b4.sh"
    # A firewall zone for the tunnel (fw4 drops traffic to a device in none),
    # run once by OpenWrt at first boot, or by postinst on a live system.
    install -D -m 0644 files/etc/uci-defaults/90-b4d-firewall \
        "$stage/data/etc/uci-defaults/90-b4d-firewall"
    # b4d's shipped WAN/LAN defaults fitted to the network config, once.
    install -D -m 0644 files/etc/uci-defaults/91-b4d-network \
        "$stage/data/etc/uci-defaults/91-b4d-network"
    # Run by prerm on a removal: undoes the hand-over to b4d.
    install -D -m 0755 files/usr/libexec/b4d-hand-back "$stage/data/usr/libexec/b4d-hand-back"
    # sysupgrade keeps state_dir (the DHCPv6 DUID) with the settings.
    install -D -m 0644 files/lib/upgrade/keep.d/b4d "$stage/data/lib/upgrade/keep.d/b4d"
    # The ip6tnl kernel module carries the tunnel; nft loads the MSS clamp.
    write_control "$stage" b4d "$arch" "kmod-ip6-tunnel, nftables" net \
        "DS-Lite B4 element (RFC 6333)" \
        "DHCPv6 client (AFTR name, option 64), ip4ip6 tunnel to the AFTR, LAN DNS proxy and DHCPv4 server, ubus status; one static binary."
    # /etc/config/b4d survives upgrades (opkg keeps a changed conffile).
    echo /etc/config/b4d >"$stage/CONTROL/conffiles"
    write_service_scripts "$stage"
    pack "$stage"
}

LUCI_FILES=(www/luci-static/resources/view/b4d/status.js
    usr/share/luci/menu.d/luci-app-b4d.json
    usr/share/rpcd/acl.d/luci-app-b4d.json)

build_luci() {
    local stage="$WORK/luci-app-b4d" f present=0
    for f in "${LUCI_FILES[@]}"; do
        if [ -f "files/$f" ]; then
            install -D -m 0644 "files/$f" "$stage/data/$f"
            present=1
        fi
    done
    if [ "$present" = 0 ]; then
        say "no LuCI files under files/, skipping luci-app-b4d"
        return
    fi
    write_control "$stage" luci-app-b4d all "luci-base, b4d" luci \
        "LuCI status page for b4d (DS-Lite)" \
        "Status > DS-Lite: B4 state with its reason, AFTR, tunnel, DHCPv6 and DHCPv4 leases, read over ubus."
    # rpcd reads ACLs at start; the LuCI menu and index are cached.
    cat >"$stage/CONTROL/postinst" <<'EOF'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
rm -f /tmp/luci-indexcache /tmp/luci-indexcache.*
rm -rf /tmp/luci-modulecache/
/etc/init.d/rpcd reload
exit 0
EOF
    chmod 0755 "$stage/CONTROL/postinst"
    pack "$stage"
}

arches=("$@")
[ "${#arches[@]}" -gt 0 ] || arches=("${ALL_ARCHES[@]}")
for a in "${arches[@]}"; do
    if [ -z "${RUST_TARGET[$a]:-}" ]; then
        echo "build-ipk: unknown OpenWrt architecture $a (known: ${ALL_ARCHES[*]})" >&2
        exit 1
    fi
done

mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for a in "${arches[@]}"; do
    build_b4d "$a"
done
build_luci
