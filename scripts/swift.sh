#!/usr/bin/env bash
# The Swift package (Package.swift at the repository root) built and tested on this Linux machine:
#
#   scripts/swift.sh setup            # only make sure the Swift chroot exists
#   scripts/swift.sh test             # libstint built, then `swift build` (warnings as errors)
#                                     # and `swift test` of the root package, Swift 6 mode
#   scripts/swift.sh run CMD ARGS…    # any command in the chroot, in the checkout (at /src)
#
# Debian 12 has no Swift; Debian 13 (trixie) has swiftlang 6.0.3, so it runs in a trixie chroot
# kept at a fixed path ($STINT_SWIFT_CHROOT, default /var/cache/stint/swift-trixie, ~3.2 GB) and
# created when missing: debootstrap (about 1 min) and the packages (about 1 min). A run that died
# half-way leaves only a temporary directory, removed by the next setup; the chroot appears under
# its name once complete. Needs root (chroot, mounts) and debootstrap (scripts/install-deps.sh).
#
# Each command runs in a private mount namespace (unshare): /proc and the checkout, bind-mounted at
# /src, are mounted there only, so parallel runs from different checkouts do not see each other's
# mounts, and the mounts vanish with the process however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

chroot_dir="${STINT_SWIFT_CHROOT:-/var/cache/stint/swift-trixie}"
# Written last into a complete chroot, holding its package list (its own files are absolute
# symlinks, so testing them from outside the chroot would follow them into this machine's /usr).
ready_marker=.stint-swift-ready
# unzip: SwiftPM extracts binary targets with it (scripts/xcframework.sh checks the zip that way).
swift_packages=(swiftlang libc6-dev libstdc++-14-dev libgcc-14-dev binutils pkg-config unzip)

fail() {
  echo "swift.sh: $*" >&2
  exit 1
}

# The Debian mirror this machine's apt already uses (deb822 or one-line sources).
debian_mirror() {
  local file mirror=""
  for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
    [ -f "$file" ] || continue
    mirror=$(sed -n -E 's|^URIs:[[:space:]]*(\S+/debian)/?$|\1|p; s|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?(\S+/debian)/?[[:space:]].*|\2|p' \
      "$file" | head -n1)
    [ -n "$mirror" ] && break
  done
  [ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt/sources.list.d/ or /etc/apt/sources.list"
  echo "$mirror"
}

# Installs (or completes) the packages in the chroot at $1.
install_packages() {
  unshare --mount --propagation private -- bash -euo pipefail -c '
    mount -t proc proc "$1/proc"
    chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${@:2}"
    chroot "$1" apt-get clean
  ' bash "$1" "${swift_packages[@]}"
}

create_chroot() {
  [ "$(id -u)" -eq 0 ] || fail "creating the Swift chroot at $chroot_dir needs root"
  command -v debootstrap >/dev/null 2>&1 ||
    fail "debootstrap is missing (Debian package debootstrap; scripts/install-deps.sh installs it)"
  local mirror tmp="$chroot_dir.partial"
  mirror=$(debian_mirror)
  # What a dead run of an older version left: possibly mounts, then the files.
  if [ -d "$tmp" ]; then
    echo "swift.sh: removing the unfinished $tmp of an earlier run"
    local m
    for m in $(awk -v p="$tmp/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r); do
      umount -l "$m" || true
    done
    rm -rf --one-file-system "$tmp"
  fi
  mkdir -p "$(dirname "$chroot_dir")"
  echo "swift.sh: creating the Swift chroot (debootstrap trixie from $mirror, then swiftlang)"
  # In a private mount namespace too: whatever debootstrap mounts goes when it ends, however.
  unshare --mount --propagation private -- debootstrap --variant=minbase trixie "$tmp" "$mirror" \
    >"$tmp.log" 2>&1 || fail "debootstrap failed: $(tail -n 20 "$tmp.log")"
  install_packages "$tmp" >>"$tmp.log" 2>&1 ||
    fail "installing Swift in the chroot failed: $(tail -n 20 "$tmp.log")"
  mkdir -p "$tmp/src"
  unshare --mount --propagation private -- sh -c 'mount -t proc proc "$1/proc" && chroot "$1" swift --version' \
    sh "$tmp" >>"$tmp.log" 2>&1 || fail "swift does not run in the new chroot: $(tail -n 20 "$tmp.log")"
  rm -f "$tmp.log"
  echo "${swift_packages[*]}" >"$tmp/$ready_marker"
  # An unmarked directory under the name is what an older, broken setup left.
  [ ! -e "$chroot_dir" ] || rm -rf --one-file-system "$chroot_dir"
  mv "$tmp" "$chroot_dir"
  echo "swift.sh: the Swift chroot is ready at $chroot_dir"
}

ensure_chroot() {
  mkdir -p "$(dirname "$chroot_dir")"
  # One creator at a time; whoever waited finds it complete.
  exec {lock}>"$chroot_dir.lock"
  flock "$lock"
  if [ ! -e "$chroot_dir/$ready_marker" ]; then
    create_chroot
  elif [ "$(cat "$chroot_dir/$ready_marker")" != "${swift_packages[*]}" ]; then
    # Made by an older version of this script: add what the list has gained.
    echo "swift.sh: adding packages to the Swift chroot: ${swift_packages[*]}"
    install_packages "$chroot_dir" >/dev/null || fail "installing ${swift_packages[*]} in $chroot_dir failed"
    echo "${swift_packages[*]}" >"$chroot_dir/$ready_marker"
  fi
  flock -u "$lock"
}

# Runs "$@" in the chroot, in the checkout (bind-mounted at /src), with /proc mounted: swift's
# binaries find their libraries through $ORIGIN, which needs /proc.
in_chroot() {
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root=$1 src=$2
    shift 2
    mount -t proc proc "$root/proc"
    mount --bind "$src" "$root/src"
    exec chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
      PKG_CONFIG_PATH=/src/target/swift/prefix/lib/pkgconfig sh -c '\''cd /src && exec "$@"'\'' sh "$@"
  ' bash "$chroot_dir" "$PWD" "$@"
}

# The root package against the freshly built libstint, as a Linux user builds it: SwiftPM finds
# the library through stint.pc (written in the chroot, so its paths are the chroot's /src), the
# tests load it through an rpath. SwiftPM's scratch directory is under target/.
swift_test() {
  # The chroot sees the checkout only, so the library is built into the checkout's target/.
  CARGO_TARGET_DIR="$PWD/target" cargo build --release --lib
  in_chroot bash scripts/install.sh --no-build --prefix /src/target/swift/prefix >/dev/null
  local lib=/src/target/swift/prefix/lib scratch=/src/target/swift
  local flags=(--scratch-path "$scratch" -Xswiftc -warnings-as-errors -Xlinker -rpath -Xlinker "$lib")
  in_chroot swift build "${flags[@]}" --build-tests
  in_chroot swift test "${flags[@]}" --skip-build
}

command="${1:-test}"
if [ $# -gt 0 ]; then shift; fi
ensure_chroot
case "$command" in
  setup) ;;
  test) swift_test ;;
  run) in_chroot "$@" ;;
  *) fail "unknown command $command (setup, test, run)" ;;
esac
