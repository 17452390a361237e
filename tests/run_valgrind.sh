#!/usr/bin/env bash
# Runs the C unit tests under valgrind memcheck (meson's test setup "valgrind"): any invalid
# access, use of uninitialized memory or leak (definite, indirect or possible) fails the test.
#   tests/run_valgrind.sh [meson test args...]
# Env: VALGRIND_BUILD (default build; a plain build, not a sanitized one: valgrind and ASan
# do not mix). Builds it first if needed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build="${VALGRIND_BUILD:-build}"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --werror || exit 1
fi
ninja -C "$build" || exit 1

# The valgrind options and what counts as an error are in tests/meson.build's test setup.
meson test -C "$build" --setup valgrind --suite unit --print-errorlogs --num-processes 2 "$@"
