#!/usr/bin/env bash
# The structure rules of issue 20, kept from drifting back:
# - no file in src/ has more than 700 lines before its tests (its first `#[cfg(test)]`);
# - every OS branch of the storage layer is in src/platform/: src/storage names no target_os,
#   and MADV_POPULATE_WRITE is defined once;
# - tests/ synchronise on events, not on time: at most 12 `sleep(` calls.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
fail() { echo "check-structure: $*" >&2; failed=1; }

while IFS= read -r file; do
  before=$(awk '/^#\[cfg\(test\)\]/ { print NR - 1; found = 1; exit } END { if (!found) print NR }' "$file")
  if [ "$before" -gt 700 ]; then
    fail "$file: $before lines before its tests (at most 700)"
  fi
done < <(find src -name '*.rs' | sort)

if grep -rn 'target_os' src/storage; then
  fail "src/storage names target_os: OS branches belong in src/platform/"
fi

definitions=$(grep -rn 'const MADV_POPULATE_WRITE' src | wc -l)
[ "$definitions" -eq 1 ] || fail "MADV_POPULATE_WRITE is defined $definitions times (once, in src/platform/)"

sleeps=$(grep -rn 'sleep(' tests | wc -l)
[ "$sleeps" -le 12 ] || fail "$sleeps sleep( calls in tests/ (at most 12: wait for an event instead)"

[ "$failed" -eq 0 ] || exit 1
echo "check-structure: ok (largest file before its tests: $(for f in $(find src -name '*.rs'); do awk '/^#\[cfg\(test\)\]/ { print NR - 1; found = 1; exit } END { if (!found) print NR }' "$f"; done | sort -n | tail -1) lines; $sleeps sleep( calls in tests/)"
