#!/usr/bin/env bash
# The XCFramework of libstint for Apple apps, assembled on Linux without Xcode:
#
#   scripts/xcframework.sh                        # writes target/apple/Stint.xcframework and
#                                                 # its zip, checks them, prints the checksum
#   scripts/xcframework.sh --release X.Y.Z        # the same, then points Package.swift's binary
#                                                 # target at release X.Y.Z's zip (docs/ios.md)
#
# Slices (each a static libstint.a, Headers/stint.h and Headers/module.modulemap, module CStint):
#   ios-arm64             aarch64-apple-ios
#   ios-arm64-simulator   aarch64-apple-ios-sim (nightly -Zbuild-std when rustup has no std)
#   macos-arm64_x86_64    aarch64-apple-darwin + x86_64-apple-darwin, joined by llvm-lipo
# Info.plist lists them as `xcodebuild -create-xcframework` does. The checks: the layout, each
# slice's architectures (llvm-lipo -info), platform (the objects' LC_BUILD_VERSION, llvm-objdump),
# the C API's symbols, no embedded bitcode, and the zip's checksum, computed by `swift package
# compute-checksum` in the Swift chroot of scripts/swift.sh and equal to sha256sum's. The release step (upload the zip,
# update Package.swift's url and checksum) is in docs/ios.md. Nothing here has run on a Mac.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/apple-cargo.sh
. scripts/apple-cargo.sh

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The minimum OS versions of Package.swift's `platforms`.
export IPHONEOS_DEPLOYMENT_TARGET=13.0 MACOSX_DEPLOYMENT_TARGET=10.15
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
out="$target_dir/apple"
framework="$out/Stint.xcframework"
zip_file="$out/Stint.xcframework.zip"

fail() {
  echo "xcframework.sh: $*" >&2
  exit 1
}
command -v llvm-objdump >/dev/null || fail "llvm-objdump is missing (Debian package llvm; scripts/install-deps.sh installs it)"
command -v llvm-objcopy >/dev/null || fail "llvm-objcopy is missing (Debian package llvm)"
# llvm-lipo has no unversioned name in Debian 12's llvm package: the one beside llvm-objdump.
lipo=$(dirname "$(readlink -f "$(command -v llvm-objdump)")")/llvm-lipo
[ -x "$lipo" ] || fail "llvm-lipo is missing beside llvm-objdump ($lipo; Debian package llvm)"
command -v zip >/dev/null || fail "zip is missing (Debian package zip; scripts/install-deps.sh installs it)"

# A static library for each target: no Apple linker needed (the staticlib is not linked).
staticlib() {
  apple_cargo "$1" rustc -q --release --lib --crate-type staticlib >&2
  echo "$target_dir/$1/release/libstint.a"
}

# One slice: $1 identifier, then the static libraries to join. Without embedded bitcode: the
# prebuilt std of rustup's Apple targets carries it (__LLVM,__bitcode), which Xcode 14 deprecated
# and the App Store refuses, and which Debian's LLVM 14 tools cannot read (newer LLVM wrote it).
slice() {
  local id=$1 dir="$framework/$1" lib thin=()
  shift
  mkdir -p "$dir/Headers"
  for lib in "$@"; do
    thin+=("$out/tmp/$id-${#thin[@]}.a")
    llvm-objcopy --remove-section=__LLVM,__bitcode --remove-section=__LLVM,__cmdline \
      "$lib" "${thin[-1]}"
  done
  if [ ${#thin[@]} -eq 1 ]; then
    mv "${thin[0]}" "$dir/libstint.a"
  else
    "$lipo" -create "${thin[@]}" -output "$dir/libstint.a"
    rm -f "${thin[@]}"
  fi
  cp include/stint.h "$dir/Headers/stint.h"
  # Linked by whoever imports CStint (Xcode without SwiftPM too): what libstint.a needs.
  cat >"$dir/Headers/module.modulemap" <<'EOF'
module CStint {
    header "stint.h"
    link framework "Security"
    link framework "CoreFoundation"
    link "iconv"
    export *
}
EOF
}

# An AvailableLibraries entry: identifier, platform, variant ("" if none), architectures…
plist_library() {
  local id=$1 platform=$2 variant=$3
  shift 3
  printf '\t\t<dict>\n'
  printf '\t\t\t<key>BinaryPath</key>\n\t\t\t<string>libstint.a</string>\n'
  printf '\t\t\t<key>HeadersPath</key>\n\t\t\t<string>Headers</string>\n'
  printf '\t\t\t<key>LibraryIdentifier</key>\n\t\t\t<string>%s</string>\n' "$id"
  printf '\t\t\t<key>LibraryPath</key>\n\t\t\t<string>libstint.a</string>\n'
  printf '\t\t\t<key>SupportedArchitectures</key>\n\t\t\t<array>\n'
  printf '\t\t\t\t<string>%s</string>\n' "$@"
  printf '\t\t\t</array>\n'
  printf '\t\t\t<key>SupportedPlatform</key>\n\t\t\t<string>%s</string>\n' "$platform"
  [ -z "$variant" ] ||
    printf '\t\t\t<key>SupportedPlatformVariant</key>\n\t\t\t<string>%s</string>\n' "$variant"
  printf '\t\t</dict>\n'
}

write_plist() {
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
    printf '<plist version="1.0">\n<dict>\n\t<key>AvailableLibraries</key>\n\t<array>\n'
    plist_library ios-arm64 ios "" arm64
    plist_library ios-arm64-simulator ios simulator arm64
    plist_library macos-arm64_x86_64 macos "" arm64 x86_64
    printf '\t</array>\n\t<key>CFBundlePackageType</key>\n\t<string>XFWK</string>\n'
    printf '\t<key>XCFrameworkFormatVersion</key>\n\t<string>1.0</string>\n</dict>\n</plist>\n'
  } >"$framework/Info.plist"
}

# The architectures of a slice's objects (every architecture of a universal file), sorted,
# space-separated. (`llvm-lipo -info` crashes on a thin archive; it reads universal ones.)
architectures() {
  llvm-objdump --macho --private-headers --arch=all "$1" |
    awk '$1 ~ /^MH_MAGIC/ { print tolower($2) }' | sort -u | xargs
}

# The platforms (LC_BUILD_VERSION, or the older LC_VERSION_MIN_*) of a slice's objects, as
# llvm-objdump names them: macos, ios, iossimulator. A slice's objects must all agree.
platforms() {
  llvm-objdump --macho --private-headers --arch=all "$1" |
    awk '/cmd LC_BUILD_VERSION/ { b = 1 } b && $1 == "platform" { print $2; b = 0 }
         /cmd LC_VERSION_MIN_MACOSX/ { print "macos" } /cmd LC_VERSION_MIN_IPHONEOS/ { print "ios" }' |
    sort -u | xargs
}

check_slice() {
  local id=$1 want_arches=$2 want_platform=$3 dir="$framework/$1"
  local f
  for f in libstint.a Headers/stint.h Headers/module.modulemap; do
    [ -s "$dir/$f" ] || fail "$id: $f is missing"
  done
  cmp -s "$dir/Headers/stint.h" include/stint.h || fail "$id: Headers/stint.h differs from include/stint.h"
  grep -q '^module CStint ' "$dir/Headers/module.modulemap" || fail "$id: the module is not CStint"
  grep -q "<string>$id</string>" "$framework/Info.plist" || fail "$id is not in Info.plist"
  local arches platform
  arches=$(architectures "$dir/libstint.a")
  [ "$arches" = "$want_arches" ] || fail "$id: architectures '$arches', expected '$want_arches'"
  if [[ $want_arches == *" "* ]]; then
    # What Xcode reads first: the universal header.
    arches=$("$lipo" -archs "$dir/libstint.a" | tr ' ' '\n' | sort | xargs)
    [ "$arches" = "$want_arches" ] || fail "$id: llvm-lipo -archs says '$arches', expected '$want_arches'"
  fi
  platform=$(platforms "$dir/libstint.a")
  [ "$platform" = "$want_platform" ] || fail "$id: object platforms '$platform', expected '$want_platform'"
  ! grep -q __bitcode <<<"$(llvm-objdump --section-headers --arch=all "$dir/libstint.a")" ||
    fail "$id: libstint.a still carries embedded bitcode"
  # The C API is in the archive: an exported function from each group of the header.
  local symbols arch
  for arch in $want_arches; do
    symbols=$(llvm-objdump --syms --arch="$arch" "$dir/libstint.a")
    for f in _stint_initialize _stint_open_session _stint_set_tracking_enabled _stint_version; do
      grep -qE "F __TEXT,__text ${f}\$" <<<"$symbols" || fail "$id: $f is not defined for $arch"
    done
  done
  echo "xcframework.sh: $id: $arches, platform $platform, $(du -k "$dir/libstint.a" | cut -f1) KB"
}

release=""
case "${1:-}" in
  "") ;;
  --release)
    release="${2:-}"
    [[ $release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--release takes a version X.Y.Z, got '$release'" ;;
  *) fail "unknown argument $1 (none, or --release X.Y.Z)" ;;
esac

start=$SECONDS
rm -rf "$framework" "$zip_file" "$out/tmp"
mkdir -p "$framework" "$out/tmp"
# Assigned first: a failed build inside "$(…)" as an argument would go unnoticed.
ios=$(staticlib aarch64-apple-ios)
simulator=$(staticlib aarch64-apple-ios-sim)
macos_arm64=$(staticlib aarch64-apple-darwin)
macos_x86_64=$(staticlib x86_64-apple-darwin)
slice ios-arm64 "$ios"
slice ios-arm64-simulator "$simulator"
slice macos-arm64_x86_64 "$macos_arm64" "$macos_x86_64"
write_plist
rmdir "$out/tmp"
echo "xcframework.sh: built in $((SECONDS - start)) s"

check_slice ios-arm64 arm64 ios
check_slice ios-arm64-simulator arm64 iossimulator
check_slice macos-arm64_x86_64 "arm64 x86_64" macos
[ "$(find "$framework" -mindepth 1 -maxdepth 1 | wc -l)" -eq 4 ] ||
  fail "unexpected entries in $framework: $(ls "$framework")"
grep -q '<key>XCFrameworkFormatVersion</key>' "$framework/Info.plist" || fail "Info.plist has no format version"

# The zip SwiftPM downloads: the XCFramework at its root; fixed times and order, so the same
# libraries give the same checksum.
find "$framework" -exec touch -h -d @0 {} +
(cd "$out" && find Stint.xcframework | LC_ALL=C sort | TZ=UTC zip -q -X -@ "$zip_file")
grep -q " Stint.xcframework/Info.plist$" <<<"$(unzip -l "$zip_file")" || fail "the zip has no Stint.xcframework/Info.plist"

[[ $zip_file == "$PWD"/* ]] || fail "the target directory must be inside the checkout (the Swift chroot sees only the checkout)"
sha=$(sha256sum "$zip_file" | cut -d' ' -f1)
checksum=$(scripts/swift.sh run swift package compute-checksum "${zip_file#"$PWD"/}" | tail -n1)
[ "$checksum" = "$sha" ] || fail "swift package compute-checksum says '$checksum', sha256sum $sha"

# SwiftPM's own reading of the zip, as an app's package would: a binary target CStint over it.
# Resolving extracts it; planning the build parses Info.plist; on Linux no slice fits, so the
# import of CStint fails, and that is all that may fail.
check="$out/spm-check"
rm -rf "$check" && mkdir -p "$check/Sources/Use"
cp "$zip_file" "$check/"
cat >"$check/Package.swift" <<'EOF'
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "spm-check", targets: [
    .binaryTarget(name: "CStint", path: "Stint.xcframework.zip"),
    .target(name: "Use", dependencies: ["CStint"]),
])
EOF
echo 'import CStint' >"$check/Sources/Use/Use.swift"
spm_log=$(scripts/swift.sh run sh -c 'cd "$1" && swift package resolve && swift build' sh \
  "${check#"$PWD"/}" 2>&1 || true)
[ -f "$check/.build/artifacts/spm-check/CStint/Stint.xcframework/Info.plist" ] ||
  fail "SwiftPM did not extract the zip as CStint's artifact: $spm_log"
# The compiler's errors are the expected ones (and the command that ran it failing).
errors=$(grep 'error:' <<<"$spm_log" | grep -v "no such module 'CStint'\|command failed with exit code" || true)
[ -z "$errors" ] && grep -q "no such module 'CStint'" <<<"$spm_log" ||
  fail "SwiftPM did not take the XCFramework: $spm_log"
echo "xcframework.sh: SwiftPM extracts the zip and reads its Info.plist"
rm -rf "$check"

echo "xcframework.sh: $zip_file ($(du -k "$zip_file" | cut -f1) KB)"
echo "checksum: $checksum"

if [ -n "$release" ]; then
  grep -q '^    url: "https://github.com/.*/Stint.xcframework.zip",$' Package.swift &&
    grep -q '^    checksum: "[0-9a-f]\{64\}")$' Package.swift ||
    fail "Package.swift has no binary target url/checksum lines to update"
  sed -i -E "s#^(    url: \"https://github.com/.*/releases/download/)[^/]+(/Stint.xcframework.zip\",)\$#\1$release\2#;
    s#^(    checksum: \")[0-9a-f]{64}(\"\))\$#\1$checksum\2#" Package.swift
  echo "xcframework.sh: Package.swift now points at release $release:"
  grep -E '^    (url|checksum):' Package.swift
fi
