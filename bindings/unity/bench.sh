#!/usr/bin/env bash
# The C# binding's own cost under Mono (docs/performance.md, "The bindings' own cost"):
#   bindings/unity/bench.sh [calls]          500,000 calls per figure by default, release library
#   STINT_BENCH_PROFILE=debug bindings/unity/bench.sh 20000    the smoke run of bindings/unity/test.sh
# Prints a Markdown table; exits non-zero if a call fails or records the wrong count.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$here/build"
profile="${STINT_BENCH_PROFILE:-release}"
for tool in cargo mcs mono; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool not found (Debian: apt-get install -y mono-mcs mono-runtime)" >&2; exit 2; }
done
case "$profile" in
    release) (cd "$repo" && cargo build --quiet --release --lib) ;;
    debug) (cd "$repo" && cargo build --quiet --lib) ;;
    *) echo "bench.sh: STINT_BENCH_PROFILE must be release or debug" >&2; exit 2 ;;
esac
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac

mkdir -p "$build"
mcs -nologo -optimize+ -warnaserror -target:exe -out:"$build/StintBench.exe" \
    -r:System.dll -r:System.Core.dll "$here"/Runtime/*.cs "$here"/Tests/Bench/*.cs
cd "$build"
[ "$profile" = release ] || echo "(the $profile library: a smoke run, its figures are not the binding's cost)"
LD_LIBRARY_PATH="$target_dir/$profile${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    exec mono --optimize=all "$build/StintBench.exe" "$@"
