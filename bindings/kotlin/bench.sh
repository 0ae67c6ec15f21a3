#!/usr/bin/env bash
# The Kotlin binding's own cost on the desktop JVM (issue 18): the median per call of
# logCustomEvent with and without properties, and of openSession, against the release libstint.
# Prints a table for docs/performance.md; a benchmark, it never judges the figures.
#
# Usage: bindings/kotlin/bench.sh [calls]    500000 calls per figure by default;
#        bindings/kotlin/bench.sh --smoke    20000 calls: checks that the bench runs (test command)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
calls=500000
case "${1:-}" in
    --smoke) calls=20000 ;;
    '') ;;
    *[!0-9]*) echo "usage: bench.sh [calls | --smoke]" >&2; exit 2 ;;
    *) calls="$1" ;;
esac
kotlin_need

echo "== building the release libstint"
(cd "$ROOT" && cargo build --release --lib --quiet)
kotlin_build_binding
rm -rf "$BUILD/bench-classes"
kotlin_compile -cp "$JNA:$STINT_JAR" -d "$BUILD/bench-classes" "$KOTLIN_DIR/src/bench/kotlin"

echo "== running ($calls calls per figure)"
java -Dstint.library.path="$ROOT/target/release/libstint.so" \
    -cp "$BUILD/bench-classes:$STINT_JAR:$JNA:$STDLIB" io.stint.bench.BindingBench "$calls"
