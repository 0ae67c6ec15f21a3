#!/usr/bin/env bash
# Builds the Kotlin binding and its JUnit tests with kotlinc (no Gradle, no network), then runs
# them on the JVM against the real libstint and a loopback stint-collector.
#
# Needs: a JDK (17 here) and Debian's `kotlin libjna-java junit4` (junit4 brings hamcrest).
# Usage: bindings/kotlin/test.sh [io.stint.SomeTest[#method] ...]   (default: every test class)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"
JAVA_LIBS=/usr/share/java
JNA="$JAVA_LIBS/jna.jar"
JUNIT="$JAVA_LIBS/junit4.jar"
HAMCREST="$JAVA_LIBS/hamcrest-core.jar"
[ -f "$HAMCREST" ] || HAMCREST="$JAVA_LIBS/hamcrest.jar"

for tool in kotlinc java cargo flock; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing (apt-get install -y kotlin libjna-java junit4)" >&2; exit 1; }
done
for jar in "$JNA" "$JUNIT" "$HAMCREST"; do
    [ -f "$jar" ] || { echo "test.sh: $jar is missing (apt-get install -y libjna-java junit4)" >&2; exit 1; }
done
# kotlinc's own runtime, for running the compiled code.
KOTLIN_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v kotlinc)")")")"
STDLIB="$KOTLIN_HOME/lib/kotlin-stdlib.jar"
[ -f "$STDLIB" ] || STDLIB="$JAVA_LIBS/kotlin-stdlib.jar"
[ -f "$STDLIB" ] || { echo "test.sh: cannot find kotlin-stdlib.jar" >&2; exit 1; }

echo "== building libstint and stint-collector"
(cd "$ROOT" && cargo build --quiet && cargo build --quiet -p stint-collector)
LIBRARY="$ROOT/target/debug/libstint.so"
COLLECTOR="$ROOT/target/debug/stint-collector"

echo "== compiling the binding and its tests (kotlinc $(kotlinc -version 2>&1 | grep -o 'kotlinc-jvm [^ ]*' || true))"
mkdir -p "$BUILD"
# One run at a time in this tree: a concurrent run would rebuild the same classes under us.
exec 9>"$BUILD/.lock"
flock 9
rm -rf "$BUILD/stint.jar" "$BUILD/test-classes"
# kotlinc (1.3 on Debian) warns about JVM flags that JDK 13+ deprecated; that noise is dropped.
compile() {
    local status=0
    kotlinc -jvm-target 1.8 "$@" 2>"$BUILD/kotlinc.log" || status=$?
    grep -v -e 'Options -Xverify:none and -noverify were deprecated' "$BUILD/kotlinc.log" >&2 || true
    return $status
}
compile -cp "$JNA" -d "$BUILD/stint.jar" "$HERE/src/main/kotlin"
compile -cp "$JNA:$JUNIT:$HAMCREST:$BUILD/stint.jar" -d "$BUILD/test-classes" "$HERE/src/test/kotlin"

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
    -cp "$BUILD/test-classes:$BUILD/stint.jar:$JNA:$JUNIT:$HAMCREST:$STDLIB" \
    io.stint.RunTests "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "-- collector log (last 40 lines)"
    tail -n 40 "$COLLECTOR_LOG" || true
fi
exit $status
