#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 machine, then runs
# every check and test: formatting, lints, unit tests (with the property
# tests that feed arbitrary bytes to every parser), and the integration tests
# against real DHCPv6 servers in network namespaces, some of them inside the
# kernel lab VM (scripts/vm.sh). Needs root (namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh
# The kernel lab (qemu + Debian's kernel) for the tests that need ip6tnl and
# nf_tables, which this machine's kernel lacks; fast when already set up.
./scripts/vm.sh setup

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# Property tests: bounded run of arbitrary inputs against every parser.
export PROPTEST_CASES="${PROPTEST_CASES:-5000}"
echo "== cargo test (unit, property and namespace integration tests)"
cargo test --all-targets -- --test-threads="${TEST_THREADS:-4}"

# Cross builds for the six router targets, the unit tests under qemu-user
# (mips big-endian, aarch64), the .ipk packages and their validation, and
# the size budget. After the native tests: those need the CPU first.
# CROSS=0 skips this part (a quick local run).
if [ "${CROSS:-1}" != 0 ]; then
    echo "== cross builds, qemu-user unit tests, packages, size budget"
    ./scripts/install-cross-deps.sh
    ./scripts/cross.sh --test
    ./scripts/build-ipk.sh
    python3 tests/packages/check_ipk.py
    ./scripts/size-report.sh
fi
