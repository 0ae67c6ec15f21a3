#!/usr/bin/env bash
# Checks the size target of issue 13: the stripped release libstint.so (Linux x86_64, TLS
# included) is at most 1.0 MB (1,000,000 bytes). Builds the release library (the profile
# strips; a copy is stripped again in case it does not), prints the size, exits 1 if it is over
# the limit.
# Usage: scripts/check-size.sh [max_bytes]     (from anywhere in the repository)
#        scripts/check-size.sh android          the Android arm64 (rustls) library: needs the
#                                               NDK's linker (CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER
#                                               and CC_aarch64_linux_android); prints its size only
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "${1:-}" = "android" ]; then
    target=aarch64-linux-android
    if [ -z "${CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER:-}" ]; then
        echo "check-size: android: no NDK linker (CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER):" \
            "a cdylib cannot be linked without the NDK, and ring's C needs its clang and sysroot" >&2
        exit 2
    fi
    cargo build --release --lib --quiet --target "$target"
    library="${CARGO_TARGET_DIR:-target}/$target/release/libstint.so"
    stripped="$(mktemp)"
    trap 'rm -f "$stripped"' EXIT
    llvm-strip --strip-all -o "$stripped" "$library" 2>/dev/null || cp "$library" "$stripped"
    printf 'libstint.so (%s, rustls, stripped): %s bytes\n' "$target" "$(stat -c %s "$stripped")"
    exit 0
fi

max_bytes="${1:-1000000}"

cargo build --release --lib --quiet

target_dir="${CARGO_TARGET_DIR:-target}"
library="$target_dir/release/libstint.so"
if [ ! -f "$library" ]; then
    echo "check-size: $library not found after cargo build --release" >&2
    exit 2
fi

stripped="$(mktemp)"
trap 'rm -f "$stripped"' EXIT
if command -v strip >/dev/null 2>&1; then
    strip --strip-all -o "$stripped" "$library"
else
    echo "check-size: strip not found; measuring the library as built" >&2
    cp "$library" "$stripped"
fi

bytes="$(stat -c %s "$stripped")"
arch="$(uname -m)"
printf 'libstint.so (%s, stripped): %s bytes (%s MB); limit %s bytes\n' \
    "$arch" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1e6 }')" "$max_bytes"
if [ "$bytes" -gt "$max_bytes" ]; then
    echo "check-size: FAIL: $((bytes - max_bytes)) bytes over the limit" >&2
    exit 1
fi
echo "check-size: OK"
