#!/usr/bin/env bash
# Installs what scripts/cross.sh, scripts/build-ipk.sh and
# scripts/size-report.sh need (Debian 12), idempotently:
#   zig (the ziglang package from PyPI; the C compiler and linker for musl),
#   cargo-zigbuild and cargo-bloat (crates.io, versions pinned),
#   the rustup components rust-src (-Z build-std) and llvm-tools (llvm-strip),
#   the rustup targets with a prebuilt std (x86_64 and aarch64 musl; used by
#   tools that do not build std), and qemu-user-static (runs the mips and
#   aarch64 unit tests).
# Usage: scripts/install-cross-deps.sh   (as root)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1
CARGO_BLOAT_VERSION=0.12.1

say() { echo "install-cross-deps: $*"; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
installed qemu-user-static || missing+=(qemu-user-static)
if ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$(python3 -m ziglang version 2>/dev/null)" = "$ZIGLANG_VERSION" ]; then
    say "zig $ZIGLANG_VERSION already installed"
else
    say "pip install ziglang==$ZIGLANG_VERSION"
    # Debian's own python3 refuses system-wide pip installs (PEP 668); this
    # one package only adds python3 -m ziglang.
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q "ziglang==$ZIGLANG_VERSION"
fi

cargo_tool() {
    local crate="$1" version="$2"
    if cargo install --list | grep -q "^$crate v$version:"; then
        say "$crate $version already installed"
    else
        say "cargo install $crate $version"
        cargo install --locked "$crate@$version"
    fi
}
cargo_tool cargo-zigbuild "$CARGO_ZIGBUILD_VERSION"
cargo_tool cargo-bloat "$CARGO_BLOAT_VERSION"

installed_components="$(rustup component list --installed)"
for comp in rust-src llvm-tools; do
    if grep -q "^$comp" <<<"$installed_components"; then
        say "rustup component $comp already installed"
    else
        say "rustup component add $comp"
        rustup component add "$comp"
    fi
done
installed_targets="$(rustup target list --installed)"
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    if grep -qx "$target" <<<"$installed_targets"; then
        say "rustup target $target already installed"
    else
        say "rustup target add $target"
        rustup target add "$target"
    fi
done

for tool in qemu-mips-static qemu-aarch64-static cargo-zigbuild cargo-bloat; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-cross-deps: $tool still missing after install" >&2
        exit 1
    fi
done
say "zig $(python3 -m ziglang version), $(cargo-zigbuild --version), $(cargo bloat --version)"
