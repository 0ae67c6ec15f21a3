#!/usr/bin/env bash
# Every test of the project: Rust (unit, C ABI integration, delivery, kills, hostile input,
# storage and network faults, collector and its dashboard in headless Chromium), the C examples,
# the Kotlin, C# and Swift bindings in their runtimes, the XCFramework, the size target, a short
# fuzz run and the sanitizers. Installs missing Debian packages first (needs root on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "structure: file sizes, OS branches in platform/, tests that wait on events (issue 20)"
scripts/check-structure.sh

step "Rust tests (unit, C ABI, delivery, durability, collector, header drift)"
cargo test --workspace

step "collector on PostgreSQL: a throwaway cluster of its own (initdb, own port, stopped at exit)"
scripts/collector-postgres.sh cargo test -p stint-collector --test postgres

step "quickstart (the README's main job)"
cargo run -q --example quickstart

step "C and C++ hosts: scripts/install.sh, pkg-config, a CMake project with find_package(Stint)"
examples/test.sh

step "Kotlin binding (JVM)"
bindings/kotlin/test.sh

step "Unity binding (Mono): the package with its Linux, Windows and iOS plugins, the bench smoke, the tests"
bindings/unity/test.sh

step "Swift package (Swift 6 mode, warnings as errors, XCTests; Debian 13 chroot, made if missing)"
scripts/swift.sh test

step "release size"
# Issue 20's target: the stripped library stays within 1.30 MB. Issue 13's 1.0 MB target is not
# met yet (what stands in the way: docs/performance.md); `scripts/check-size.sh` alone checks it.
scripts/check-size.sh 1300000

step "Android AAR and POM (no NDK here: --no-native), the Kotlin binding's bench (a smoke run)"
bindings/kotlin/aar-test.sh
bindings/kotlin/bench.sh --smoke

step "fuzzing: a short run of each target (long runs: see docs/reliability.md)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz.sh

step "sanitizers: concurrency and kill storms under ASan and TSan"
scripts/sanitizers.sh

step "Linux aarch64 under qemu-user: unit, C ABI and durability tests"
scripts/cross.sh linux-aarch64

step "Windows x86_64 under Wine: unit, C ABI, delivery and kill tests, the C examples"
scripts/cross.sh windows

step "Android aarch64, armv7, x86_64: the library built (no NDK here: no .so link)"
scripts/cross.sh android

step "Apple: the XCFramework (iOS, iOS simulator, macOS arm64 + x86_64) built and checked"
scripts/xcframework.sh

printf '\nall tests passed\n'
