#!/usr/bin/env bash
# Every test of the project: Rust (unit, C ABI integration, delivery, kills, collector and its
# dashboard in headless Chromium), the C examples, and the Kotlin and C# bindings in their
# runtimes. Installs missing Debian packages first (needs root on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "Rust tests (unit, C ABI, delivery, durability, collector, header drift)"
cargo test --workspace

step "quickstart (the README's main job)"
cargo run -q --example quickstart

step "C and C++ hosts"
examples/test.sh

step "Kotlin binding (JVM)"
bindings/kotlin/test.sh

step "Unity binding (Mono)"
bindings/unity/test.sh

step "release size"
scripts/check-size.sh

printf '\nall tests passed\n'
