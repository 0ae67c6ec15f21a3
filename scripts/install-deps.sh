#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, from Debian's packages, if anything is missing.
set -euo pipefail

packages=(kotlin libjna-java junit4 mono-mcs mono-runtime chromium cmake pkg-config util-linux)
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }
need kotlinc kotlin
need_file /usr/share/java/jna.jar libjna-java
need_file /usr/share/java/junit4.jar junit4
need mcs mono-mcs
need mono mono-runtime
need chromium chromium
need cmake cmake
need pkg-config pkg-config
need flock util-linux

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
