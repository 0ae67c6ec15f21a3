#!/usr/bin/env bash
# The platforms other than Linux x86_64 (docs/platforms.md has what runs where, and how long):
#
#   scripts/cross.sh linux-aarch64   # unit, C ABI and durability tests under qemu-user
#   scripts/cross.sh windows         # unit, C ABI, delivery, kill tests and the C examples, Wine
#   scripts/cross.sh android         # the library built for aarch64, armv7 and x86_64 (no NDK)
#   scripts/cross.sh apple           # the library checked for iOS, the iOS simulator and macOS
#   scripts/cross.sh                 # all four
#
# Each part fails the command if it fails, and a missing tool fails it with a message (never a
# quiet skip). scripts/install-deps.sh installs the Debian packages and rustup targets. Knob:
# STINT_KILL_RESTART_ROUNDS (tests/kill_restart.rs, default 6) and STINT_KILL_TRIALS (the kill
# storm of tests/durability.rs under qemu, default 25 here).
#
# Sourced (scripts/unity-package.sh does), it only defines its functions, for example mingw_env.
set -euo pipefail
cross_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$cross_repo/target}"
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac

fail() {
  echo "cross.sh: $*" >&2
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing (Debian package $2; scripts/install-deps.sh installs it)"; }
need_file() { [ -e "$1" ] || fail "$1 is missing (Debian package $2; scripts/install-deps.sh installs it)"; }
need_target() {
  rustup target list --installed | grep -qx "$1" ||
    fail "the Rust target $1 is missing (rustup target add $1; scripts/install-deps.sh adds it)"
}
timed() {
  local name="$1" start=$SECONDS
  shift
  "$@"
  echo "cross.sh: $name passed in $((SECONDS - start)) s"
}

# ---- Linux aarch64 under qemu-user ------------------------------------------------------------
# The tests that spawn children (the directory lock, the kill tests) exec the aarch64 test binary
# itself, so the kernel must hand aarch64 ELF files to qemu: binfmt_misc with qemu-user-binfmt's
# entry. QEMU_LD_PREFIX gives every qemu (the runner's and the children's) the aarch64 libraries.
linux_aarch64() {
  need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
  need qemu-aarch64 qemu-user
  need_file /usr/aarch64-linux-gnu/include/stdio.h libc6-dev-arm64-cross
  need_file /usr/lib/binfmt.d/qemu-aarch64.conf qemu-user-binfmt
  need_target aarch64-unknown-linux-gnu
  local binfmt=/proc/sys/fs/binfmt_misc
  if [ ! -e "$binfmt/qemu-aarch64" ]; then
    if [ ! -e "$binfmt/register" ]; then
      mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null ||
        fail "binfmt_misc is not mounted and cannot be (needs root): the tests that spawn children need it"
    fi
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register" 2>/dev/null ||
      fail "cannot register qemu-aarch64 with binfmt_misc (needs root)"
  fi
  grep -qx enabled "$binfmt/qemu-aarch64" || fail "binfmt_misc's qemu-aarch64 entry is disabled"

  export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  STINT_KILL_TRIALS="${STINT_KILL_TRIALS:-25}" \
    cargo test --target aarch64-unknown-linux-gnu \
    --lib --test c_api --test durability --test journal_corruption --test kill_restart
}

# ---- Windows x86_64 under Wine ------------------------------------------------------------------
# Cargo runs the test executables through scripts/wine/run.sh (a private prefix under target/,
# and the test-only ProcessPrng shim beside each executable). The C examples are built with mingw
# against the import library and run under Wine too; quickstart delivers to the collector running
# on the Linux side of the same loopback.
# What cargo needs to build for x86_64-pc-windows-gnu with mingw-w64 (also the Unity package's).
mingw_env() {
  need x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
  need x86_64-w64-mingw32-ar binutils-mingw-w64-x86-64
  need_target x86_64-pc-windows-gnu
  export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
  export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
  export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
}

windows_env() {
  mingw_env
  need_file /usr/lib/wine/wine64 wine64
  need_file /usr/lib/wine/wineserver64 wine64
  export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PWD/scripts/wine/run.sh"
  export STINT_WINEPREFIX="$target_dir/wine-prefix"
  # The shim: built from source at test time, into target/ only.
  mkdir -p "$target_dir/wine-shim"
  x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -o "$target_dir/wine-shim/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c -ladvapi32
}

wine_stop() {
  WINEPREFIX="$STINT_WINEPREFIX" /usr/lib/wine/wineserver64 -k 2>/dev/null || true
}

windows_rust_tests() {
  cargo test --target x86_64-pc-windows-gnu \
    --lib --test c_api --test delivery --test kill_restart
}

windows_c_examples() {
  local lib_dir="$target_dir/x86_64-pc-windows-gnu/debug" out="$target_dir/wine-examples"
  cargo build -q --lib --target x86_64-pc-windows-gnu
  [ -f "$lib_dir/stint.dll" ] && [ -f "$lib_dir/libstint.dll.a" ] ||
    fail "cargo build did not leave stint.dll and libstint.dll.a in $lib_dir"
  rm -rf "$out" && mkdir -p "$out"
  cp "$lib_dir/stint.dll" "$out/"
  local cflags=(-std=c99 -O1 -Wall -Wextra -Werror -Iinclude -include scripts/wine/posix_compat.h)
  local program
  for program in header_c_check quickstart multithreaded; do
    # -static: the C runtime's and winpthreads' own code in the .exe; stint.dll stays a DLL.
    x86_64-w64-mingw32-gcc "${cflags[@]}" -pthread -o "$out/$program.exe" "examples/$program.c" \
      "$lib_dir/libstint.dll.a" -static
  done
  # Wine's Z: is the Unix root; forward slashes are separators on Windows too (and the examples
  # put the path into JSON unescaped).
  local run=scripts/wine/run.sh data="Z:$out/data"
  "$run" "$out/header_c_check.exe"
  "$run" "$out/quickstart.exe" "$data-quickstart"
  [ -n "$(ls -A "$out/data-quickstart")" ] || fail "quickstart under Wine left nothing in its directory"
  "$run" "$out/multithreaded.exe" "$data-multithreaded-4" 4 2000
  "$run" "$out/multithreaded.exe" "$data-multithreaded-8" 8 500

  # quickstart delivering to a collector (a Linux process) across loopback.
  cargo build -q -p stint-collector --bin stint-collector
  local log="$out/collector.log" collector_pid url=""
  "$target_dir/debug/stint-collector" --port 0 --db :memory: >"$log" 2>&1 &
  collector_pid=$!
  for _ in $(seq 100); do
    url=$(sed -n 's/^stint-collector listening on //p' "$log")
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    kill "$collector_pid" 2>/dev/null || true
    fail "the collector did not start: $(cat "$log")"
  fi
  local status=0
  "$run" "$out/quickstart.exe" "$data-quickstart-delivered" "$url" || status=$?
  sleep 0.5 # the collector logs each upload every 250 ms
  kill "$collector_pid" 2>/dev/null || true
  wait "$collector_pid" 2>/dev/null || true
  [ "$status" -eq 0 ] || fail "quickstart with a collector under Wine failed ($status)"
  grep -q "POST /api/v3/data -> 200" "$log" || fail "the collector received nothing: $(cat "$log")"
  echo "quickstart under Wine delivered to $url:"
  grep "POST /api/v3/data" "$log"
}

windows() {
  windows_env
  trap wine_stop EXIT
  timed "windows: Rust unit, C ABI, delivery and kill tests" windows_rust_tests
  timed "windows: C examples" windows_c_examples
  wine_stop
  trap - EXIT
}

# ---- Android: built without the NDK -------------------------------------------------------------
# ring (rustls's crypto) compiles C for the target: Debian's clang with the Android target and a
# glibc of the same architecture for its few headers. The result is the static library, every
# object compiled for the target; linking libstint.so needs the NDK (docs/android.md, "Building").
android() {
  need clang clang
  need llvm-ar llvm
  local t include
  for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android; do
    need_target "$t"
  done
  for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android; do
    local clang_target
    case "$t" in
      aarch64-linux-android)
        clang_target=aarch64-linux-android21 include=(-isystem /usr/aarch64-linux-gnu/include)
        need_file /usr/aarch64-linux-gnu/include/stdio.h libc6-dev-arm64-cross ;;
      armv7-linux-androideabi)
        # armel (soft-float ABI headers), as Android's armeabi-v7a passes floats in core registers
        clang_target=armv7a-linux-androideabi21 include=(-isystem /usr/arm-linux-gnueabi/include)
        need_file /usr/arm-linux-gnueabi/include/stdio.h libc6-dev-armel-cross ;;
      x86_64-linux-android)
        clang_target=x86_64-linux-android21
        include=(-isystem /usr/include/x86_64-linux-gnu -isystem /usr/include)
        need_file /usr/include/x86_64-linux-gnu/bits/types.h libc6-dev ;;
    esac
    local var="${t//-/_}"
    export "CC_$var=clang" "AR_$var=llvm-ar" "CFLAGS_$var=--target=$clang_target ${include[*]}"
    # The cdylib needs a linker for the target (the NDK); the staticlib needs none.
    timed "android $t (staticlib)" cargo rustc -q --lib --target "$t" --crate-type staticlib
  done
}

# ---- Apple: checked -----------------------------------------------------------------------------
# scripts/apple-cargo.sh picks the toolchain (nightly with std built from source for the iOS
# simulator when rustup has no std for it); scripts/xcframework.sh builds the same targets.
apple() {
  # shellcheck source=scripts/apple-cargo.sh
  . scripts/apple-cargo.sh
  local t
  for t in aarch64-apple-ios aarch64-apple-ios-sim aarch64-apple-darwin x86_64-apple-darwin; do
    timed "apple $t (check)" apple_cargo "$t" check -q --lib
  done
}

# Sourced: the functions only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

cd "$cross_repo"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(linux-aarch64 windows android apple)
for part in "${parts[@]}"; do
  case "$part" in
    linux-aarch64) timed "linux-aarch64" linux_aarch64 ;;
    windows) timed "windows" windows ;;
    android) timed "android" android ;;
    apple) timed "apple" apple ;;
    *) fail "unknown part $part (linux-aarch64, windows, android, apple)" ;;
  esac
done
