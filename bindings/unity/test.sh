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

# The package as scripts/unity-package.sh builds and assembles it (debug builds, faster): every
# plugin this machine can build is in it (Linux x86_64 byte for byte, Windows x86_64, iOS arm64
# static), each of the right kind; every other is named as absent with why; every file and folder
# has its .meta, every committed .meta is there, and no two share a GUID (Unity would drop one).
echo "== building the plugins and assembling the Unity package"
rm -rf "$build/package-check"
STINT_UNITY_LINUX_LIBRARY="$library" "$repo/scripts/unity-package.sh" --profile debug --out "$build/package-check" >"$build/package-check.log" 2>&1 \
    || { cat "$build/package-check.log" >&2; echo "test.sh: scripts/unity-package.sh failed" >&2; exit 1; }
cat "$build/package-check.log"
archive="$(ls "$build/package-check"/com.stint.sdk-*.tgz)"
mkdir -p "$build/package-check/extracted"
tar -C "$build/package-check/extracted" -xzf "$archive"
unpacked="$build/package-check/extracted/package"
package_failures=0
package_fail() { echo "test.sh: package check: $*" >&2; package_failures=$((package_failures + 1)); }
cmp -s "$library" "$unpacked/Plugins/Linux/x86_64/libstint.so" || package_fail "Plugins/Linux/x86_64/libstint.so is not the library"
# This machine has the toolchains (scripts/install-deps.sh): these two must be in, with every
# function of the header.
functions="$(sed -n 's/^[a-zA-Z].*[ *]\(stint_[a-z_]*\)(.*/\1/p' "$repo/include/stint.h")"
[ "$(wc -l <<<"$functions")" -ge 15 ] || package_fail "found only these functions in include/stint.h: $functions"
dll="$unpacked/Plugins/Windows/x86_64/stint.dll"
if [ -f "$dll" ]; then
    x86_64-w64-mingw32-objdump -f "$dll" | grep >/dev/null 'file format pei-x86-64' || package_fail "stint.dll is not a PE x86-64 DLL"
    exports="$(x86_64-w64-mingw32-objdump -p "$dll")"
    for function in $functions; do
        grep >/dev/null "\] $function\$" <<<"$exports" || package_fail "stint.dll does not export $function"
    done
    # Unity loads the DLL alone: it may import only what every Windows has, no mingw runtime DLL.
    mingw_runtime="$(x86_64-w64-mingw32-objdump -p "$dll" | sed -n 's/^[[:space:]]*DLL Name: //p' | grep -iE 'libgcc|winpthread|libstdc' || true)"
    [ -z "$mingw_runtime" ] || package_fail "stint.dll imports mingw's runtime DLLs: $mingw_runtime"
else
    package_fail "Plugins/Windows/x86_64/stint.dll is missing (mingw-w64 and the x86_64-pc-windows-gnu target are installed by scripts/install-deps.sh)"
fi
ios="$unpacked/Plugins/iOS/libstint.a"
if [ -f "$ios" ]; then
    formats="$(llvm-readobj --file-headers "$ios" | sed -n 's/^Format: //p' | sort -u)"
    [ "$formats" = "Mach-O arm64" ] || package_fail "Plugins/iOS/libstint.a holds $formats, not only Mach-O arm64"
    # Debian's llvm-nm (LLVM 14) cannot read the bitcode of some std members and exits 1 for them;
    # it lists the Mach-O objects all the same.
    symbols="$(llvm-nm --defined-only "$ios" 2>/dev/null || true)"
    for function in $functions; do
        grep >/dev/null " T _$function\$" <<<"$symbols" || package_fail "Plugins/iOS/libstint.a does not define _$function"
    done
else
    package_fail "Plugins/iOS/libstint.a is missing (the aarch64-apple-ios target is installed by scripts/install-deps.sh)"
fi
while IFS= read -r -d '' entry; do
    relative="${entry#"$unpacked"/}"
    case "$relative" in *.meta) continue ;; esac
    [ -e "$entry.meta" ] || package_fail "$relative has no .meta"
done < <(find "$unpacked" -mindepth 1 -print0)
while IFS= read -r -d '' meta; do
    relative="${meta#"$here"/}"
    [ -f "$unpacked/$relative" ] || package_fail "$relative is missing from the package"
done < <(find "$here" -path "$build" -prune -o -name '*.meta' -print0)
duplicates="$(find "$unpacked" -name '*.meta' -exec sed -n 's/^guid: //p' {} + | sort | uniq -d)"
[ -z "$duplicates" ] || package_fail "GUIDs used twice: $duplicates"
# Every plugin .meta: a PluginImporter, with its file in the package or named as absent with why.
plugins=0
while IFS= read -r -d '' meta; do
    plugin="${meta%.meta}"
    relative="${plugin#"$unpacked"/}"
    grep -q '^PluginImporter:' "$meta" || continue
    plugins=$((plugins + 1))
    [ -f "$plugin" ] || grep -q "^  $relative: ." "$build/package-check.log" ||
        package_fail "$relative is neither in the package nor named as absent with a reason"
done < <(find "$unpacked/Plugins" -name '*.meta' -print0)
[ "$plugins" -eq 7 ] || package_fail "$plugins plugin .meta files, expected 7 (Linux, Windows, iOS, macOS, 3 Android ABIs)"
[ "$package_failures" -eq 0 ] || exit 1
echo "package: $(tar -tzf "$archive" | wc -l) entries; the plugins built here and every .meta in it, the absent ones named"

# The binding's cost benchmark, as a smoke run: it builds, every call returns Ok and records.
echo "== the C# binding benchmark (smoke: 20,000 calls per figure, debug library)"
STINT_BENCH_PROFILE=debug "$here/bench.sh" 20000

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
