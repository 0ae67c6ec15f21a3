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

# The package as scripts/unity-package.sh assembles it, with this Linux library: the plugin is in
# it byte for byte, every file and folder has its .meta, every committed .meta is there, and no
# two share a GUID (Unity would drop one).
echo "== assembling the Unity package"
rm -rf "$build/package-check"
STINT_UNITY_LINUX_LIBRARY="$library" "$repo/scripts/unity-package.sh" --out "$build/package-check" >"$build/package-check.log" \
    || { cat "$build/package-check.log" >&2; echo "test.sh: scripts/unity-package.sh failed" >&2; exit 1; }
archive="$(ls "$build/package-check"/com.stint.sdk-*.tgz)"
mkdir -p "$build/package-check/extracted"
tar -C "$build/package-check/extracted" -xzf "$archive"
unpacked="$build/package-check/extracted/package"
package_failures=0
package_fail() { echo "test.sh: package check: $*" >&2; package_failures=$((package_failures + 1)); }
cmp -s "$library" "$unpacked/Plugins/Linux/x86_64/libstint.so" || package_fail "Plugins/Linux/x86_64/libstint.so is not the library"
grep -q "Plugins/Windows/x86_64/stint.dll" "$build/package-check.log" || package_fail "the log names neither the included nor the missing Windows plugin"
while IFS= read -r -d '' entry; do
    relative="${entry#"$unpacked"/}"
    case "$relative" in *.meta) continue ;; esac
    [ -f "$entry.meta" ] || package_fail "$relative has no .meta"
done < <(find "$unpacked" -mindepth 1 -print0)
while IFS= read -r -d '' meta; do
    relative="${meta#"$here"/}"
    [ -f "$unpacked/$relative" ] || package_fail "$relative is missing from the package"
done < <(find "$here" -path "$build" -prune -o -name '*.meta' -print0)
duplicates="$(find "$unpacked" -name '*.meta' -exec sed -n 's/^guid: //p' {} + | sort | uniq -d)"
[ -z "$duplicates" ] || package_fail "GUIDs used twice: $duplicates"
for plugin in Windows/x86_64/stint.dll Linux/x86_64/libstint.so Android/libs/arm64-v8a/libstint.so \
    Android/libs/armeabi-v7a/libstint.so Android/libs/x86_64/libstint.so iOS/libstint.a macOS/libstint.dylib; do
    grep -q '^PluginImporter:' "$unpacked/Plugins/$plugin.meta" 2>/dev/null || package_fail "Plugins/$plugin.meta is not a PluginImporter"
done
[ "$package_failures" -eq 0 ] || exit 1
echo "package: $(tar -tzf "$archive" | wc -l) entries, the Linux plugin and every .meta in it"

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
"$collector_bin" --port 0 --test-controls >"$collector_log" 2>&1 &
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
