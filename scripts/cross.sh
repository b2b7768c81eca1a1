#!/usr/bin/env bash
# Cross-builds b4d for the router CPUs, statically linked against musl, with
# cargo-zigbuild (zig as the C compiler and linker; no docker needed):
#   mips-unknown-linux-musl          ath79 etc.      (big-endian MIPS32r2)
#   mipsel-unknown-linux-musl        ramips          (little-endian MIPS32r2)
#   armv7-unknown-linux-musleabihf   arm_cortex-a7_neon-vfpv4, -a15, -a9_vfpv3
#   arm-unknown-linux-musleabi       arm_cortex-a9 (bcm53xx, soft-float)
#   aarch64-unknown-linux-musl       aarch64_cortex-a53, aarch64_generic
#   x86_64-unknown-linux-musl        x86_64
# Stripped binaries land in $CARGO_TARGET_DIR/dist/<target>/b4d (default
# CARGO_TARGET_DIR=target/cross, shared by all targets so the host-side build
# scripts and proc macros compile once). cargo itself leaves the symbols in
# ($CARGO_TARGET_DIR/<target>/release/b4d) so that scripts/size-report.sh can
# run cargo-bloat on the very same build without compiling it again.
#
# std: every target builds its own std (-Z build-std, through RUSTC_BOOTSTRAP
# on the stable toolchain, from the rust-src component): for mips, mipsel,
# armv7 and arm there is no prebuilt musl std to download, and for all of them
# std compiled with the release profile and `optimize_for_size` is smaller.
# Panics abort at once without formatting a message
# (-C panic=immediate-abort): the panic machinery and its strings are about
# 60 KiB of a 1 MiB binary. b4d never panics on input (tests prove that);
# a panic is a bug, and procd respawns the daemon. Nothing unwinds, so no
# unwind tables either (-C force-unwind-tables=no).
# -Z location-detail=none: no file/line/column strings for #[track_caller]
# locations, which nothing prints after an immediate abort (2 KiB on mips).
#
# With --test, the pure-logic unit tests (`cargo test --lib`: protocol cores,
# wire encoders and decoders, config) also run under qemu-user for the given
# targets that have an emulator (mips: big-endian, where byte-order bugs
# show; aarch64). netlink is not among them: qemu 7.2 mis-translates newer
# netlink link attributes on big-endian hosts; those tests run natively and
# in the kernel-lab VM.
#
# Usage: scripts/cross.sh [--test] [TARGET...]   (default: all six targets)
# Needs: scripts/install-cross-deps.sh (zig, cargo-zigbuild, rust-src,
#        rustup targets, qemu-user-static).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(mips-unknown-linux-musl mipsel-unknown-linux-musl
    armv7-unknown-linux-musleabihf arm-unknown-linux-musleabi
    aarch64-unknown-linux-musl x86_64-unknown-linux-musl)

run_tests=0
targets=()
for arg in "$@"; do
    case "$arg" in
    --test) run_tests=1 ;;
    -*)
        echo "usage: $0 [--test] [TARGET...]" >&2
        exit 2
        ;;
    *) targets+=("$arg") ;;
    esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${ALL_TARGETS[@]}")

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cross}"
# -Z build-std on the stable toolchain.
export RUSTC_BOOTSTRAP=1
# Symbols stay in for cargo-bloat; llvm-strip (rustup's llvm-tools) below.
export CARGO_PROFILE_RELEASE_STRIP=false
LLVM_BIN="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
# zig is installed as a Python package (pip install ziglang); cargo-zigbuild
# finds it through `python3 -m ziglang` when no `zig` is on PATH.

say() { echo "cross: $*"; }

# The upper-case, underscore form cargo uses in CARGO_TARGET_<T>_* variables.
env_name() { echo "$1" | tr 'a-z.-' 'A-Z__'; }

# Linker flags per target.
#  mips/mipsel: +crt-static makes a static, non-PIE executable; without it
#   rustc asks for a static-PIE that zig links with text relocations, which
#   segfaults at start. link-self-contained=no: zig brings musl's crt objects
#   and libc itself; rustc's copies would be linked twice.
#  arm/armv7: link-self-contained=no for the same reason.
#  mips/mipsel, relocation-model=static: a static executable needs no
#   position-independent code, and MIPS PIC (abicalls: every call and global
#   through the GOT via $gp/$t9) costs 200 KiB of the binary.
target_link_flags() {
    case "$1" in
    mips-* | mipsel-*) echo "-C target-feature=+crt-static -C link-self-contained=no -C relocation-model=static" ;;
    arm-* | armv7-*) echo "-C link-self-contained=no" ;;
    *) echo "" ;;
    esac
}

# qemu-user emulator for running a target's test binaries, if any.
target_runner() {
    case "$1" in
    mips-*) echo qemu-mips-static ;;
    aarch64-*) echo qemu-aarch64-static ;;
    *) echo "" ;;
    esac
}

# Emulator (or nothing, natively) to start a release binary once.
smoke_runner() {
    case "$1" in
    mips-*) echo qemu-mips-static ;;
    mipsel-*) echo qemu-mipsel-static ;;
    arm-* | armv7-*) echo qemu-arm-static ;;
    aarch64-*) echo qemu-aarch64-static ;;
    x86_64-*) echo env ;;
    esac
}

# Release flags for size, shared by cross.sh and size-report.sh (cargo-bloat
# must see the same flags to reuse the build).
size_flags() { echo "-Z unstable-options -C panic=immediate-abort -C force-unwind-tables=no -Z location-detail=none"; }

build() {
    local target="$1" t
    t="$(env_name "$target")"
    export "CARGO_TARGET_${t}_RUSTFLAGS=$(target_link_flags "$target") $(size_flags)"
    say "build $target"
    local start=$SECONDS
    cargo zigbuild --locked --release --bin b4d --target "$target" \
        -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
    local out="$CARGO_TARGET_DIR/dist/$target/b4d"
    mkdir -p "$(dirname "$out")"
    # .pdr (MIPS procedure descriptors) is only for debuggers.
    "$LLVM_BIN/llvm-strip" --strip-all --remove-section=.pdr --remove-section=.comment \
        -o "$out" "$CARGO_TARGET_DIR/$target/release/b4d"
    say "built $target in $((SECONDS - start)) s: $out $(stat -c %s "$out") bytes"
    # The stripped release binary starts and parses the shipped config.
    local runner
    runner="$(smoke_runner "$target")"
    "$runner" "$out" --version
    "$runner" "$out" check-config --config files/etc/config/b4d >/dev/null
}

test_under_qemu() {
    local target="$1" t runner
    runner="$(target_runner "$target")"
    if [ -z "$runner" ]; then
        say "no qemu-user runner for $target, tests not run there"
        return
    fi
    t="$(env_name "$target")"
    # Tests unwind (#[should_panic], the harness reports a panic per test):
    # debug std with the default panic strategy, in its own target dir so
    # the release build's std is not rebuilt.
    export "CARGO_TARGET_${t}_RUSTFLAGS=$(target_link_flags "$target")"
    export "CARGO_TARGET_${t}_RUNNER=$runner"
    # Emulated: fewer property-test cases than the native run.
    export PROPTEST_CASES="${CROSS_PROPTEST_CASES:-500}"
    say "test $target under $runner"
    local start=$SECONDS
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR/test" cargo-zigbuild test --locked --lib \
        --target "$target" -Z build-std -- --test-threads=2
    say "tested $target in $((SECONDS - start)) s"
}

for target in "${targets[@]}"; do
    build "$target"
done
if [ "$run_tests" = 1 ]; then
    for target in "${targets[@]}"; do
        test_under_qemu "$target"
    done
fi
