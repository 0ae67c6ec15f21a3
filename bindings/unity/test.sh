#!/usr/bin/env bash
# Runs the C# binding's tests under Mono against the real libstint and the loopback collector.
#   bindings/unity/test.sh [name-part ...] [!name-part ...]   (all tests by default)
# Needs: cargo, mcs and mono (Debian: apt-get install -y mono-mcs mono-runtime), flock (util-linux).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$here/build"

for tool in cargo mcs mono flock; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (Debian: apt-get install -y mono-mcs mono-runtime)" >&2; exit 2; }
done

# The library and the collector (cargo does nothing when they are up to date).
(cd "$repo" && cargo build --quiet && cargo build --quiet -p stint-collector)
library="$repo/target/debug/libstint.so"
collector_bin="$repo/target/debug/stint-collector"
[ -f "$library" ] || { echo "test.sh: $library missing after cargo build" >&2; exit 2; }

mkdir -p "$build"
mcs -nologo -debug -warnaserror -target:exe -out:"$build/StintTests.exe" \
    -r:System.dll -r:System.Core.dll \
    "$here"/Runtime/*.cs "$here"/Tests/*.cs

# The code behind Unity's defines compiles too, against compile-only stand-ins for the few
# UnityEngine/UnityEditor members it uses.
mcs -nologo -warnaserror -target:library -out:"$build/UnityStubs.dll" "$here"/Tests/UnityStubs/*.cs
for defines in "UNITY_5_3_OR_NEWER;UNITY_EDITOR" "UNITY_5_3_OR_NEWER;UNITY_IOS" "UNITY_5_3_OR_NEWER;UNITY_ANDROID"; do
    mcs -nologo -warnaserror -target:library -define:"$defines" -r:"$build/UnityStubs.dll" \
        -out:"$build/Stint.UnityCheck.dll" "$here"/Runtime/*.cs
done

# The collector on a free port; stopped however this script ends.
collector_log="$build/collector.log"
collector_pid=""
tests_pid=""
cleanup() {
    if [ -n "$tests_pid" ]; then
        kill "$tests_pid" 2>/dev/null || true
        wait "$tests_pid" 2>/dev/null || true
    fi
    if [ -n "$collector_pid" ]; then
        kill "$collector_pid" 2>/dev/null || true
        wait "$collector_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$collector_bin" --port 0 >"$collector_log" 2>&1 &
collector_pid=$!
url=""
for _ in $(seq 1 300); do
    url="$(sed -n 's/^stint-collector listening on \(http:[^ ]*\).*/\1/p' "$collector_log" | head -n 1)"
    [ -n "$url" ] && break
    kill -0 "$collector_pid" 2>/dev/null || { echo "test.sh: the collector exited:" >&2; cat "$collector_log" >&2; exit 2; }
    sleep 0.1
done
[ -n "$url" ] || { echo "test.sh: the collector did not print its URL within 30 s" >&2; cat "$collector_log" >&2; exit 2; }

# mono resolves [DllImport("stint")] to libstint.so on LD_LIBRARY_PATH. The runner prints
# "N passed, M failed" last and exits non-zero on any failure.
# It runs in build/, where a crashing Mono leaves its mono_crash.*.json reports.
(cd "$build" && STINT_COLLECTOR_URL="$url" STINT_REPO_ROOT="$repo" \
    LD_LIBRARY_PATH="$repo/target/debug${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    exec timeout 1800 mono --debug "$build/StintTests.exe" "$@") &
tests_pid=$!
status=0
wait "$tests_pid" || status=$?
tests_pid=""
exit "$status"
