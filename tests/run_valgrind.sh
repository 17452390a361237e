#!/usr/bin/env bash
# Runs the C unit tests under valgrind memcheck: any invalid access, use of uninitialized
# memory or leak (definite, indirect or possible) fails the test.
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

# Still-reachable blocks are what libraries keep until exit (curl's and OpenSSL's globals):
# not leaks. A "possible" leak is a pointer into the middle of a block nobody frees: counted.
wrapper="valgrind --quiet --error-exitcode=99 --leak-check=full"
wrapper+=" --show-leak-kinds=definite,indirect,possible"
wrapper+=" --errors-for-leak-kinds=definite,indirect,possible"
wrapper+=" --track-origins=yes --trace-children=no --num-callers=30"

meson test -C "$build" --suite unit --print-errorlogs --num-processes 2 \
  --timeout-multiplier 10 --wrapper "$wrapper" "$@"
