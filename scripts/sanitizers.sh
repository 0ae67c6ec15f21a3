#!/usr/bin/env bash
# Runs the concurrency storm (tests/concurrency.rs) and the kill storm (tests/durability.rs)
# under AddressSanitizer and ThreadSanitizer, with the nightly toolchain and a standard library
# rebuilt with the same sanitizer (-Zbuild-std; needs the rust-src component).
#
#   scripts/sanitizers.sh            # both
#   scripts/sanitizers.sh address    # or: thread
#
# Builds go to target/asan and target/tsan, out of the main build's way. Shorter runs than the
# regular suite by default (sanitizers slow everything 2-15x): STINT_KILL_TRIALS=20,
# STINT_STORM_SECONDS=5; set them to run longer.
set -euo pipefail
cd "$(dirname "$0")/.."

target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
export STINT_KILL_TRIALS="${STINT_KILL_TRIALS:-20}"
export STINT_STORM_SECONDS="${STINT_STORM_SECONDS:-5}"
tests=(--test concurrency --test durability)

build_std=(-Zbuild-std)
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup component add rust-src --toolchain nightly >/dev/null 2>&1 || true
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  # Without rust-src the standard library is not instrumented: ASan still checks our code's
  # memory accesses; TSan then reports races inside std's own synchronisation (false positives).
  echo "sanitizers.sh: rust-src is not installed; running without -Zbuild-std" >&2
  build_std=()
fi

run() {
  local sanitizer="$1" dir="$2"
  shift 2
  echo "==== ${sanitizer}Sanitizer: concurrency storm (${STINT_STORM_SECONDS}s) and kill storm (${STINT_KILL_TRIALS} trials)"
  RUSTFLAGS="-Zsanitizer=$sanitizer -Cdebug-assertions=on" \
  RUSTDOCFLAGS="-Zsanitizer=$sanitizer" \
  CARGO_TARGET_DIR="target/$dir" \
    cargo +nightly test "${build_std[@]}" --target "$target" "${tests[@]}" -- --nocapture "$@"
}

which="${1:-all}"
if [ "$which" = all ] || [ "$which" = address ]; then
  # Leak checking stays on: a leak report fails the run.
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1" \
    run address asan
fi
if [ "$which" = all ] || [ "$which" = thread ]; then
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp" \
    run thread tsan
fi
echo "sanitizers.sh: clean"
