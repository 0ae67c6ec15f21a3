#!/usr/bin/env bash
# Runs a Windows x86_64 program under Wine: Cargo's runner for x86_64-pc-windows-gnu
# (CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER, set by scripts/cross.sh) and the C examples' runner.
#
#   scripts/wine/run.sh PROGRAM.exe [ARGS...]
#
# A private Wine prefix under target/ (STINT_WINEPREFIX), made quietly on first use. Wine 8 lacks
# ProcessPrng (bcryptprimitives.dll), which Rust's std imports: the test-only shim that
# scripts/cross.sh builds (target/wine-shim/bcryptprimitives.dll, from bcryptprimitives.c) is
# copied beside PROGRAM, where Windows looks for a DLL first. Never shipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || { echo "wine/run.sh: $wine is missing (Debian package wine64)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: wine/run.sh PROGRAM.exe [ARGS...]" >&2; exit 2; }

export WINEPREFIX=${STINT_WINEPREFIX:-$target_dir/wine-prefix}
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono or Gecko installer dialogs (nothing here needs .NET or HTML).
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}

ready=$WINEPREFIX/.stint-ready
if [ ! -f "$ready" ]; then
    mkdir -p "$(dirname "$WINEPREFIX")"
    # Two runs at once (tests in parallel) must not both make the prefix.
    (
        flock 9
        if [ ! -f "$ready" ]; then
            "$wine" wineboot --init >"$target_dir/wine-prefix.log" 2>&1 ||
                { echo "wine/run.sh: wineboot failed, see $target_dir/wine-prefix.log" >&2; exit 1; }
            touch "$ready"
        fi
    ) 9>"$target_dir/wine-prefix.lock"
fi

shim=$target_dir/wine-shim/bcryptprimitives.dll
[ -f "$shim" ] || { echo "wine/run.sh: $shim is missing: scripts/cross.sh windows builds it" >&2; exit 1; }
beside=$(dirname "$1")/bcryptprimitives.dll
if [ ! -f "$beside" ] || ! cmp -s "$shim" "$beside"; then
    cp "$shim" "$beside"
fi

exec "$wine" "$@"
