#!/usr/bin/env bash
# Builds every native plugin this machine can build, and packs the Unity package (UPM,
# com.stint.sdk) with them as target/com.stint.sdk-<version>.tgz (installable with Unity's "Add
# package from tarball", or "file:<path>.tgz" in Packages/manifest.json).
#
# Each plugin goes where bindings/unity/Plugins/ has its committed .meta (the import settings
# Unity needs):
#
#   Plugins/Linux/x86_64/libstint.so              cargo build --lib, on Linux x86_64
#   Plugins/Windows/x86_64/stint.dll              x86_64-pc-windows-gnu with mingw-w64 (as
#                                                 scripts/cross.sh builds it), or -msvc if built
#   Plugins/iOS/libstint.a                        aarch64-apple-ios, static (cargo rustc
#                                                 --crate-type staticlib: no Xcode needed)
#   Plugins/Android/libs/<abi>/libstint.so        arm64-v8a, armeabi-v7a, x86_64 with cargo-ndk,
#                                                 where an Android NDK is set up
#   Plugins/macOS/libstint.dylib                  aarch64 + x86_64-apple-darwin joined with lipo,
#                                                 on a Mac (the link needs Apple's SDK)
#
# A platform whose toolchain is absent is left out and named, with why; a library built
# elsewhere and copied into target/<triple>/<profile>/ is taken as it is. A toolchain that is
# present but fails to build fails the script.
#
# Usage: scripts/unity-package.sh [--profile release|debug] [--in-place] [--out DIR]
#   --profile P  the Cargo profile to build (default: release; the tests use debug, faster)
#   --in-place   also copy the plugins into bindings/unity/Plugins/ (for a "file:" checkout of
#                bindings/unity in a Unity project; they are git-ignored there)
#   --out DIR    where to write the .tgz (default: the cargo target directory)
# Environment:
#   STINT_UNITY_LINUX_LIBRARY   a Linux x86_64 libstint.so to use instead of building one
#   ANDROID_NDK_HOME            the NDK, for the Android plugins (with cargo-ndk installed)
#   CARGO_TARGET_DIR            honoured, as by cargo
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
package_source="$repo/bindings/unity"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
out_dir="$target_dir"
in_place=0
profile=release

while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?--profile needs release or debug}"; shift ;;
        --in-place) in_place=1 ;;
        --out) out_dir="${2:?--out needs a directory}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unity-package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$profile" in
    release) release=(--release) ;;
    debug) release=() ;;
    *) echo "unity-package.sh: --profile must be release or debug, not $profile" >&2; exit 2 ;;
esac

version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$package_source/package.json" | head -n 1)"
[ -n "$version" ] || { echo "unity-package.sh: no version in $package_source/package.json" >&2; exit 2; }

# mingw_env (the Windows cross build's settings) and need_target come from here.
# shellcheck source=cross.sh
source "$repo/scripts/cross.sh"

host="$(uname -s)-$(uname -m)"
has_target() { rustup target list --installed 2>/dev/null | grep -qx "$1"; }
cargo_here() { (cd "$repo" && cargo "$@"); }
built() { echo "$target_dir/$1/$profile/$2"; }

# Each platform: why it cannot be built here (empty when it can), then how it is built.
linux_absent() {
    [ -n "${STINT_UNITY_LINUX_LIBRARY:-}" ] && return 0
    [ "$host" = Linux-x86_64 ] || echo "this machine is $host, not Linux x86_64"
}
linux_build() {
    [ -n "${STINT_UNITY_LINUX_LIBRARY:-}" ] || cargo_here build --quiet --lib "${release[@]}"
}

windows_absent() {
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 ||
        { echo "mingw-w64 is missing (Debian: gcc-mingw-w64-x86-64; scripts/install-deps.sh)"; return 0; }
    has_target x86_64-pc-windows-gnu ||
        echo "the Rust target x86_64-pc-windows-gnu is missing (rustup target add x86_64-pc-windows-gnu)"
}
windows_build() {
    (mingw_env && cargo_here build --quiet --lib --target x86_64-pc-windows-gnu "${release[@]}")
}

ios_absent() {
    has_target aarch64-apple-ios ||
        echo "the Rust target aarch64-apple-ios is missing (rustup target add aarch64-apple-ios)"
}
ios_build() {
    # Only the static library: no Apple linker is involved, so this works without Xcode.
    cargo_here rustc --quiet --lib --crate-type staticlib --target aarch64-apple-ios "${release[@]}"
}

android_ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
android_absent() {
    [ -n "$android_ndk" ] && [ -d "$android_ndk" ] ||
        { echo "no Android NDK (ANDROID_NDK_HOME is not set; linking libstint.so for Android needs the NDK, see docs/android.md)"; return 0; }
    cargo ndk --version >/dev/null 2>&1 ||
        { echo "cargo-ndk is missing (cargo install cargo-ndk)"; return 0; }
    local t
    for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android; do
        has_target "$t" || { echo "the Rust target $t is missing (rustup target add $t)"; return 0; }
    done
}
android_build() {
    (cd "$repo" && ANDROID_NDK_HOME="$android_ndk" \
        cargo ndk --platform 21 -t arm64-v8a -t armeabi-v7a -t x86_64 build --quiet --lib "${release[@]}")
}

macos_absent() {
    [ "$(uname -s)" = Darwin ] ||
        { echo "a macOS dylib is linked with Apple's linker and SDK (Xcode), which this $host machine lacks"; return 0; }
    has_target aarch64-apple-darwin && has_target x86_64-apple-darwin ||
        echo "the Rust targets aarch64-apple-darwin and x86_64-apple-darwin are needed (rustup target add ...)"
}
macos_build() {
    cargo_here build --quiet --lib --target aarch64-apple-darwin "${release[@]}"
    cargo_here build --quiet --lib --target x86_64-apple-darwin "${release[@]}"
}
# One universal dylib for Apple silicon and Intel Macs (Editor and players), from two built here
# or copied here.
macos_universal() {
    local arm intel universal lipo_tool
    arm="$(built aarch64-apple-darwin libstint.dylib)"
    intel="$(built x86_64-apple-darwin libstint.dylib)"
    universal="$(built universal-apple-darwin libstint.dylib)"
    if [ -f "$arm" ] && [ -f "$intel" ]; then
        lipo_tool="$(command -v lipo || command -v llvm-lipo || true)"
        [ -n "$lipo_tool" ] || { echo "unity-package.sh: lipo (or llvm-lipo) is missing to join the macOS dylibs" >&2; exit 1; }
        mkdir -p "$(dirname "$universal")"
        "$lipo_tool" -create "$arm" "$intel" -output "$universal"
    fi
    echo "$universal"
}

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

# place <plugin path under Plugins/> <why absent, or empty> <file>: the file goes in if it exists
# (built here, or copied from another machine's build).
place() {
    local destination="$1" absent="$2" file="$3"
    [ -f "$package_source/Plugins/$destination.meta" ] \
        || { echo "unity-package.sh: Plugins/$destination has no .meta in $package_source" >&2; exit 2; }
    if [ -f "$file" ]; then
        cp "$file" "$package/Plugins/$destination"
        included+=("Plugins/$destination  <-  ${file#"$repo"/}")
    elif [ -n "$absent" ]; then
        missing+=("Plugins/$destination: $absent")
    else
        echo "unity-package.sh: the build left no $file" >&2
        exit 1
    fi
}

# build <platform>: builds it if its toolchain is here; `why` says why not otherwise.
build() {
    why="$("$1"_absent)"
    if [ -z "$why" ]; then
        echo "== building the $1 plugin ($profile)"
        "$1"_build
    fi
}

build linux
if [ -n "${STINT_UNITY_LINUX_LIBRARY:-}" ]; then
    linux_library="$STINT_UNITY_LINUX_LIBRARY"
elif [ -z "$why" ]; then
    linux_library="$target_dir/$profile/libstint.so"
else
    linux_library="$(built x86_64-unknown-linux-gnu libstint.so)"
fi
place Linux/x86_64/libstint.so "$why" "$linux_library"
build windows
windows_dll="$(built x86_64-pc-windows-gnu stint.dll)"
[ -n "$why" ] && [ ! -f "$windows_dll" ] && windows_dll="$(built x86_64-pc-windows-msvc stint.dll)"
place Windows/x86_64/stint.dll "$why" "$windows_dll"
build ios
place iOS/libstint.a "$why" "$(built aarch64-apple-ios libstint.a)"
build android
place Android/libs/arm64-v8a/libstint.so "$why" "$(built aarch64-linux-android libstint.so)"
place Android/libs/armeabi-v7a/libstint.so "$why" "$(built armv7-linux-androideabi libstint.so)"
place Android/libs/x86_64/libstint.so "$why" "$(built x86_64-linux-android libstint.so)"
build macos
place macOS/libstint.dylib "$why" "$(macos_universal)"

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
    echo "absent (left out; their .meta files are in the package):"
    for line in "${missing[@]}"; do echo "  $line"; done
fi
