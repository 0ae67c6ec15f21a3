#!/usr/bin/env bash
# Builds the Kotlin binding and its JUnit tests with kotlinc (no Gradle, no network), then runs
# them on the JVM against the real libstint and a loopback stint-collector.
#
# Needs: a JDK (17 here) and Debian's `kotlin libjna-java junit4` (junit4 brings hamcrest).
# The binding compiles against test-only android.* stubs (src/androidStubs, see lib.sh).
# Usage: bindings/kotlin/test.sh [io.stint.SomeTest[#method] ...]   (default: every test class)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
JUNIT="$JAVA_LIBS/junit4.jar"
HAMCREST="$JAVA_LIBS/hamcrest-core.jar"
[ -f "$HAMCREST" ] || HAMCREST="$JAVA_LIBS/hamcrest.jar"
kotlin_need
for jar in "$JUNIT" "$HAMCREST"; do
    [ -f "$jar" ] || { echo "test.sh: $jar is missing (apt-get install -y junit4)" >&2; exit 1; }
done

echo "== building libstint and stint-collector"
(cd "$ROOT" && cargo build --quiet && cargo build --quiet -p stint-collector)
LIBRARY="$ROOT/target/debug/libstint.so"
COLLECTOR="$ROOT/target/debug/stint-collector"

kotlin_build_binding
echo "== compiling the tests"
rm -rf "$BUILD/test-classes"
# The friend path lets the tests see the binding's `internal` members.
kotlin_compile -Xfriend-paths="$STINT_JAR" -cp "$JNA:$STUBS:$JUNIT:$HAMCREST:$STINT_JAR" -d "$BUILD/test-classes" "$HERE/src/test/kotlin"

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/stint-kotlin-test.XXXXXX")"
COLLECTOR_LOG="$RUN_DIR/collector.log"
COLLECTOR_PID=
stop_collector() {
    if [ -n "$COLLECTOR_PID" ]; then
        kill "$COLLECTOR_PID" 2>/dev/null || true
        wait "$COLLECTOR_PID" 2>/dev/null || true
    fi
    rm -rf "$RUN_DIR"
}
trap stop_collector EXIT

echo "== starting the collector"
"$COLLECTOR" --port 0 --test-controls >"$COLLECTOR_LOG" 2>&1 &
COLLECTOR_PID=$!
COLLECTOR_URL=
for _ in $(seq 1 300); do
    COLLECTOR_URL="$(sed -n 's/^stint-collector listening on \(http[^ ]*\).*/\1/p' "$COLLECTOR_LOG" | head -n 1)"
    [ -n "$COLLECTOR_URL" ] && break
    kill -0 "$COLLECTOR_PID" 2>/dev/null || { cat "$COLLECTOR_LOG" >&2; echo "test.sh: the collector died" >&2; exit 1; }
    sleep 0.1
done
[ -n "$COLLECTOR_URL" ] || { cat "$COLLECTOR_LOG" >&2; echo "test.sh: the collector printed no URL" >&2; exit 1; }
echo "collector: $COLLECTOR_URL"

echo "== running the tests"
status=0
java -Djava.io.tmpdir="$RUN_DIR" -Dstint.library.path="$LIBRARY" -Dstint.collector.url="$COLLECTOR_URL" \
    -cp "$BUILD/test-classes:$STINT_JAR:$STUBS:$JNA:$JUNIT:$HAMCREST:$STDLIB" \
    io.stint.RunTests "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "-- collector log (last 40 lines)"
    tail -n 40 "$COLLECTOR_LOG" || true
fi
exit $status
