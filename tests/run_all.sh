#!/usr/bin/env bash
# Installs, builds (warnings are errors) and runs every test: the C unit tests and pytest
# (through meson test: one test per C unit and per pytest module, in the suites unit,
# integration, reliability and security), the static checks, the unit tests and pytest again
# under ASan+UBSan (tests/run_asan.sh), the unit tests under valgrind memcheck
# (tests/run_valgrind.sh) and each libFuzzer target for FUZZ_SECONDS (default 30;
# tests/fuzz/run.sh).
# Prints one closing line "tests: N passed, N failed" and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bash tests/install_deps.sh || exit 1

failed=0
passed=0
count_meson() { # counts the results of one meson test run from its JSON log
  local log=$1/meson-logs/testlog.json p f
  [ -f "$log" ] || return 0
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR)"' "$log" || true)
  passed=$((passed + p)); failed=$((failed + f))
}
step() { # runs a step; a failing step counts as one failure
  echo "== $*"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "== FAILED: $*"; fi
}

meson setup build --werror --wipe >/dev/null 2>&1 || meson setup build --werror || exit 1
ninja -C build || exit 1
meson test -C build --print-errorlogs --num-processes 2
count_meson build

step bash tests/static_checks.sh

# Sanitizers: the unit tests under ASan+UBSan, then pytest (tests/run_asan.sh).
CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dintegration=false --wipe >/dev/null 2>&1 ||
  CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dintegration=false || exit 1
ninja -C build-asan || exit 1
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --suite unit --print-errorlogs --num-processes 2
count_meson build-asan

# pytest against twinfs built with ASan+UBSan; any sanitizer report fails the step.
step env ASAN_BUILD=build-asan bash tests/run_asan.sh

# valgrind memcheck on the plain build's unit tests (meson test --setup valgrind): any leak
# or bad access fails.
step env VALGRIND_BUILD=build bash tests/run_valgrind.sh

# Each fuzz target for a bounded time, from the seed corpora; a crash fails the step.
step bash tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"

# The benchmark suite, scaled down: it measures and reports (build/performance-quick.md) and
# fails only if a benchmark could not run; speed targets are judged in docs/performance.md.
step env TWINFS_BUILD=build bash tests/bench/run.sh --quick --out build/performance-quick.md

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
