#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, from Debian's packages, if anything is missing.
set -euo pipefail

packages=(kotlin default-jdk-headless libjna-java junit4 mono-mcs mono-runtime chromium cmake pkg-config util-linux)
# scripts/collector-postgres.sh: the collector's PostgreSQL tests run their own cluster
packages+=(postgresql)
# scripts/cross.sh: Windows under Wine, Linux aarch64 under qemu-user, Android's C (ring) via clang
packages+=(gcc-mingw-w64-x86-64 wine64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  qemu-user-binfmt libc6-dev-armel-cross libc6-dev clang llvm)
# scripts/swift.sh: the Debian 13 chroot with Swift; scripts/xcframework.sh: the zip
packages+=(debootstrap zip unzip)
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }
need kotlinc kotlin
# javac for the android.* test stubs, jar and javap for the AAR (scripts/android-aar.sh)
need javac default-jdk-headless
need_file /usr/share/java/jna.jar libjna-java
need_file /usr/share/java/junit4.jar junit4
need mcs mono-mcs
need mono mono-runtime
need chromium chromium
need cmake cmake
need pkg-config pkg-config
need flock util-linux
need x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
need_file /usr/lib/wine/wine64 wine64
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need_file /usr/aarch64-linux-gnu/include/stdio.h libc6-dev-arm64-cross
need qemu-aarch64 qemu-user
need_file /usr/lib/binfmt.d/qemu-aarch64.conf qemu-user-binfmt
need_file /usr/arm-linux-gnueabi/include/stdio.h libc6-dev-armel-cross
need_file /usr/include/x86_64-linux-gnu/bits/types.h libc6-dev
need clang clang
need llvm-ar llvm
need debootstrap debootstrap
need zip zip
need unzip unzip
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)

# Rust targets of scripts/cross.sh (rustup needs no root). Rust's std for aarch64-apple-ios-sim may
# be missing from the distribution server (a 404 here): then nightly's rust-src, and cross.sh
# checks that target with -Zbuild-std.
targets=(x86_64-pc-windows-gnu aarch64-unknown-linux-gnu aarch64-linux-android
  armv7-linux-androideabi x86_64-linux-android aarch64-apple-ios aarch64-apple-darwin
  x86_64-apple-darwin)
installed=$(rustup target list --installed)
missing_targets=()
for target in "${targets[@]}"; do
  grep -qx "$target" <<<"$installed" || missing_targets+=("$target")
done
if [ ${#missing_targets[@]} -gt 0 ]; then
  echo "adding Rust targets: ${missing_targets[*]}"
  rustup target add "${missing_targets[@]}"
fi
if ! grep -qx aarch64-apple-ios-sim <<<"$installed" &&
  ! rustup target add aarch64-apple-ios-sim >/dev/null 2>&1; then
  echo "no rustup std for aarch64-apple-ios-sim: adding nightly's rust-src to build it"
  rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: run   sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
