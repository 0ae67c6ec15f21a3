#!/usr/bin/env bash
# Checks the size target of issue 5: the stripped release libstint.so (x86_64) is at most
# 2.0 MB (2,000,000 bytes). Builds the release library (the profile strips; a copy is stripped
# again in case it does not), prints the size, exits 1 if it is over the limit.
# Usage: scripts/check-size.sh [max_bytes]     (from anywhere in the repository)
set -euo pipefail

cd "$(dirname "$0")/.."
max_bytes="${1:-2000000}"

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
