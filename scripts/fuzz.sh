#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for a while (libFuzzer, nightly toolchain).
#
#   scripts/fuzz.sh                 # every target, 20 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh options properties   # chosen targets, 5 min each
#
# The corpus grows in fuzz/corpus/<target> (not committed; seeded from fuzz/seeds/<target>).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(options properties journal_recovery journal_open stored_datapoint)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

# Builds into fuzz/target, out of the main build's way.
cargo +nightly fuzz build

summary=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
  fi
  echo "==== fuzzing $target for ${seconds}s"
  log="$(mktemp)"
  # -rss_limit_mb: libFuzzer's own guard; -max_len: room for 64 KB options and 50 KB properties.
  if ! cargo +nightly fuzz run "$target" "$corpus" -- \
      -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz.sh: $target FAILED; see fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')"
  summary+=("$target: $runs inputs in ${seconds}s, coverage $cov edges, corpus $(ls "$corpus" | wc -l) files, 0 crashes")
  echo "${summary[-1]}"
  rm -f "$log"
done
echo
printf '%s\n' "${summary[@]}"
