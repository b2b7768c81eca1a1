#!/usr/bin/env bash
# Prints, per target, the stripped b4d binary size and the .ipk size, the
# biggest contributors (cargo-bloat, by crate) of the targets listed under
# [bloat] in size-budget.toml, and fails when a size is past its budget
# there. Run after scripts/cross.sh and scripts/build-ipk.sh; it compiles
# nothing (cargo-bloat finds the cross.sh build fresh, symbols and all).
#
# Usage: scripts/size-report.sh   Env: CARGO_TARGET_DIR, IPK_OUT as cross.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cross}"
OUT="${IPK_OUT:-dist}"
BUDGET="size-budget.toml"

# size-budget.toml as "section key value" lines.
budget_lines() {
    python3 - "$BUDGET" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    budget = tomllib.load(f)
for section, table in budget.items():
    for key, value in table.items():
        print(section, key, value)
EOF
}

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

failed=0
printf '%-42s %12s %12s %8s  %s\n' "binary (stripped)" bytes budget used ""
while read -r section key limit; do
    [ "$section" = binary ] || continue
    bin="$CARGO_TARGET_DIR/dist/$key/b4d"
    if [ ! -f "$bin" ]; then
        echo "size-report: $bin missing (run scripts/cross.sh $key)" >&2
        failed=1
        continue
    fi
    size=$(stat -c %s "$bin")
    verdict=ok
    if [ "$size" -gt "$limit" ]; then
        verdict="OVER BUDGET"
        failed=1
    fi
    printf '%-42s %12s %12s %7s%%  %s (%s)\n' "$key" "$size" "$limit" \
        "$((size * 100 / limit))" "$verdict" "$(kib "$size")"
done < <(budget_lines)

echo
printf '%-42s %12s %12s %8s  %s\n' "package (.ipk)" bytes budget used ""
while read -r section key limit; do
    [ "$section" = ipk ] || continue
    shopt -s nullglob
    files=("$OUT"/b4d_*_"$key".ipk "$OUT"/"$key"_*.ipk)
    shopt -u nullglob
    if [ "${#files[@]}" -eq 0 ] && [ "$key" = luci-app-b4d ] && [ ! -d files/www ]; then
        printf '%-42s %12s\n' "$key" "not built (no LuCI files in files/)"
        continue
    fi
    if [ "${#files[@]}" -eq 0 ]; then
        echo "size-report: no .ipk for $key in $OUT (run scripts/build-ipk.sh)" >&2
        failed=1
        continue
    fi
    for f in "${files[@]}"; do
        size=$(stat -c %s "$f")
        verdict=ok
        if [ "$size" -gt "$limit" ]; then
            verdict="OVER BUDGET"
            failed=1
        fi
        printf '%-42s %12s %12s %7s%%  %s (%s)\n' "$(basename "$f")" "$size" "$limit" \
            "$((size * 100 / limit))" "$verdict" "$(kib "$size")"
    done
done < <(budget_lines)

# Goals are where the size should get to; reported, not enforced.
echo
while read -r section key goal; do
    [ "$section" = goal ] || continue
    bin="$CARGO_TARGET_DIR/dist/$key/b4d"
    [ -f "$bin" ] || continue
    size=$(stat -c %s "$bin")
    if [ "$size" -le "$goal" ]; then
        echo "goal $key <= $(kib "$goal"): met ($(kib "$size"))"
    else
        echo "goal $key <= $(kib "$goal"): not yet, $(kib $((size - goal))) over"
    fi
done < <(budget_lines)

# cargo-bloat must see exactly the cross.sh build: same flags, and zig's
# linker wrapper as cargo-zigbuild set it (the linker is part of cargo's
# fingerprint; with another one cargo would rebuild and fail to link).
source_cross_flags() {
    # shellcheck source=/dev/null
    eval "$(sed -n '/^target_link_flags()/,/^}/p; /^size_flags()/p; /^env_name()/p' scripts/cross.sh)"
}
source_cross_flags
export RUSTC_BOOTSTRAP=1 CARGO_PROFILE_RELEASE_STRIP=false
while read -r section key top; do
    [ "$section" = bloat ] || continue
    t="$(env_name "$key")"
    wrapper="$(find "${XDG_CACHE_HOME:-$HOME/.cache}/cargo-zigbuild" -name "zigcc-$key-*.sh" 2>/dev/null | head -n1)"
    if [ -z "$wrapper" ]; then
        echo "size-report: no cargo-zigbuild linker wrapper for $key (run scripts/cross.sh $key)" >&2
        failed=1
        continue
    fi
    echo
    echo "== biggest contributors, $key (cargo-bloat, .text by crate)"
    env "CARGO_TARGET_${t}_RUSTFLAGS=$(target_link_flags "$key") $(size_flags)" \
        "CARGO_TARGET_${t}_LINKER=$wrapper" \
        cargo bloat --locked --release --bin b4d --target "$key" \
        -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size \
        --crates -n "$top" 2>&1 | grep -v '^ *\(Finished\|Analyzing\|Compiling\)' || failed=1
done < <(budget_lines)

if [ "$failed" != 0 ]; then
    echo "size-report: FAILED (see above; budgets in $BUDGET)" >&2
    exit 1
fi
echo
echo "size-report: all sizes within $BUDGET"
