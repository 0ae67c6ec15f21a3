#!/usr/bin/env bash
# Assembles the Unity package (UPM, com.stint.sdk) with the native plugins that were built, and
# packs it as target/com.stint.sdk-<version>.tgz (installable with Unity's "Add package from
# tarball", or "file:<path>.tgz" in Packages/manifest.json).
#
# Each native plugin goes where bindings/unity/Plugins/ has its committed .meta (the import
# settings Unity needs), taken from target/<triple>/release/:
#
#   Plugins/Linux/x86_64/libstint.so                 built here (cargo build --release) on Linux x86_64
#   Plugins/Windows/x86_64/stint.dll                 x86_64-pc-windows-gnu (or -msvc), if built
#   Plugins/Android/libs/arm64-v8a/libstint.so       aarch64-linux-android, if built (cargo ndk)
#   Plugins/Android/libs/armeabi-v7a/libstint.so     armv7-linux-androideabi, if built
#   Plugins/Android/libs/x86_64/libstint.so          x86_64-linux-android, if built
#   Plugins/iOS/libstint.a                           aarch64-apple-ios, if built (on a Mac)
#   Plugins/macOS/libstint.dylib                     universal-apple-darwin, or aarch64-apple-darwin
#                                                    + x86_64-apple-darwin joined with lipo
#
# A plugin that was not built is left out and named, with how to build it (docs/unity.md).
#
# Usage: scripts/unity-package.sh [--in-place] [--out DIR]
#   --in-place   also copy the plugins into bindings/unity/Plugins/ (for a "file:" checkout of
#                bindings/unity in a Unity project; they are git-ignored there)
#   --out DIR    where to write the .tgz (default: the cargo target directory)
# Environment:
#   STINT_UNITY_LINUX_LIBRARY   a Linux x86_64 libstint.so to use instead of building the release
#                               one (the tests pass their debug build)
#   CARGO_TARGET_DIR            honoured, as by cargo
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
package_source="$repo/bindings/unity"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
out_dir="$target_dir"
in_place=0

while [ $# -gt 0 ]; do
    case "$1" in
        --in-place) in_place=1 ;;
        --out) out_dir="${2:?--out needs a directory}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unity-package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$package_source/package.json" | head -n 1)"
[ -n "$version" ] || { echo "unity-package.sh: no version in $package_source/package.json" >&2; exit 2; }

# ---- The Linux x86_64 library: always (built here unless given) ----
linux_library="${STINT_UNITY_LINUX_LIBRARY:-}"
if [ -z "$linux_library" ]; then
    if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
        echo "== building the Linux x86_64 library (cargo build --release --lib)"
        (cd "$repo" && cargo build --release --lib --quiet)
        linux_library="$target_dir/release/libstint.so"
    else
        linux_library="$target_dir/x86_64-unknown-linux-gnu/release/libstint.so"
    fi
fi

stage="$(mktemp -d "${TMPDIR:-/tmp}/stint-unity-package.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
package="$stage/package"
mkdir -p "$package"

# The package as it is in the repository, without build output and without plugin binaries an
# earlier --in-place run left (this run decides which plugins go in).
tar -C "$package_source" \
    --exclude=./build --exclude='mono_crash.*' \
    --exclude='./Plugins/*.so' --exclude='./Plugins/*.dll' --exclude='./Plugins/*.a' \
    --exclude='./Plugins/*.dylib' --exclude='./Plugins/*.bundle' \
    -cf - . | tar -C "$package" -xf -
# (GNU tar's --exclude patterns match across "/", so ./Plugins/*.so covers every subfolder.)

included=()
missing=()

# place <plugin path under Plugins/> <how to build it> <candidate file>...: the first candidate
# that exists goes in.
place() {
    local destination="$1" how="$2"
    shift 2
    [ -f "$package_source/Plugins/$destination.meta" ] \
        || { echo "unity-package.sh: Plugins/$destination has no .meta in $package_source" >&2; exit 2; }
    local candidate
    for candidate in "$@"; do
        if [ -f "$candidate" ]; then
            cp "$candidate" "$package/Plugins/$destination"
            included+=("Plugins/$destination  <-  ${candidate#$repo/}")
            return 0
        fi
    done
    missing+=("Plugins/$destination  (build: $how)")
}

place Linux/x86_64/libstint.so "cargo build --release on Linux x86_64" "$linux_library"
place Windows/x86_64/stint.dll "cargo build --release --target x86_64-pc-windows-gnu (mingw-w64)" \
    "$target_dir/x86_64-pc-windows-gnu/release/stint.dll" \
    "$target_dir/x86_64-pc-windows-msvc/release/stint.dll"
place Android/libs/arm64-v8a/libstint.so "cargo ndk --platform 21 -t arm64-v8a build --release" \
    "$target_dir/aarch64-linux-android/release/libstint.so"
place Android/libs/armeabi-v7a/libstint.so "cargo ndk --platform 21 -t armeabi-v7a build --release" \
    "$target_dir/armv7-linux-androideabi/release/libstint.so"
place Android/libs/x86_64/libstint.so "cargo ndk --platform 21 -t x86_64 build --release" \
    "$target_dir/x86_64-linux-android/release/libstint.so"
place iOS/libstint.a "cargo build --release --target aarch64-apple-ios (on a Mac)" \
    "$target_dir/aarch64-apple-ios/release/libstint.a"

# macOS: one universal dylib for Apple silicon and Intel Macs (Editor and players).
mac_arm="$target_dir/aarch64-apple-darwin/release/libstint.dylib"
mac_intel="$target_dir/x86_64-apple-darwin/release/libstint.dylib"
mac_universal="$target_dir/universal-apple-darwin/release/libstint.dylib"
if [ ! -f "$mac_universal" ] && [ -f "$mac_arm" ] && [ -f "$mac_intel" ]; then
    lipo_tool="$(command -v lipo || command -v llvm-lipo || true)"
    if [ -n "$lipo_tool" ]; then
        mkdir -p "$(dirname "$mac_universal")"
        "$lipo_tool" -create "$mac_arm" "$mac_intel" -output "$mac_universal"
    fi
fi
place macOS/libstint.dylib \
    "cargo build --release --target aarch64-apple-darwin and --target x86_64-apple-darwin on a Mac; this script joins them with lipo" \
    "$mac_universal"

if [ "$in_place" = 1 ]; then
    for destination in Linux/x86_64/libstint.so Windows/x86_64/stint.dll \
        Android/libs/arm64-v8a/libstint.so Android/libs/armeabi-v7a/libstint.so \
        Android/libs/x86_64/libstint.so iOS/libstint.a macOS/libstint.dylib; do
        rm -f "$package_source/Plugins/$destination"
        if [ -f "$package/Plugins/$destination" ]; then
            cp "$package/Plugins/$destination" "$package_source/Plugins/$destination"
        fi
    done
fi

mkdir -p "$out_dir"
archive="$(cd "$out_dir" && pwd)/com.stint.sdk-$version.tgz"
# Reproducible: sorted, no owners, one fixed time.
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime='UTC 2000-01-01' \
    -cf - package | gzip -n >"$archive"

echo "== com.stint.sdk $version: $archive"
echo "included:"
for line in "${included[@]}"; do echo "  $line"; done
if [ ${#missing[@]} -gt 0 ]; then
    echo "missing (left out; their .meta files are in the package):"
    for line in "${missing[@]}"; do echo "  $line"; done
fi
