#!/usr/bin/env bash
# Runs the pytest integration suite against twinfs built with ASan+UBSan (clang).
#   tests/run_asan.sh [pytest args...]      (default: the whole tests/integration directory)
# Env: ASAN_BUILD (default build-asan; configured here if missing). Exits non-zero if pytest
# fails or if any sanitizer report was written, even by a twinfs whose exit status nobody
# looked at (a daemon, a mount a test stopped with fusermount3): every report goes to a file
# under a fresh directory (log_path), and that directory must be empty at the end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build="${ASAN_BUILD:-build-asan}"

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dintegration=false || exit 1
fi
ninja -C "$build" mount/twinfs dispatch/twinfs-dispatch || exit 1

reports="$(mktemp -d /tmp/twinfs-asan.XXXXXX)"
# The reports directory goes when it is empty, also if this script is interrupted.
trap 'rmdir "$reports" 2>/dev/null' EXIT
# exitcode: a report also fails the process, so a foreground twinfs's status shows it.
# Memory: the tests that bound twinfs's RSS (with 1000 pending events, or for a 1 GiB T2 read)
# must measure twinfs, not ASan: a 4 MiB quarantine (default 256; freed memory is still held
# back long enough to catch a use-after-free), short allocation stacks, and free pages
# returned to the kernel. The window test peaks at about 65-70 MiB this way (14 MiB
# unsanitized) and allows 96 MiB when TWINFS_SANITIZED is set.
export ASAN_OPTIONS="log_path=$reports/asan:exitcode=86:detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:quarantine_size_mb=4:thread_local_quarantine_size_kb=64:malloc_context_size=5:allocator_release_to_os_interval_ms=50"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1:exitcode=87"
export LSAN_OPTIONS="log_path=$reports/lsan"
TWINFS_BUILD="$(cd "$build" && pwd)" || exit 1
export TWINFS_BUILD
export TWINFS_SOURCE="$PWD"
export TWINFS_SANITIZED=1

if [ "$#" -eq 0 ]; then
  set -- tests/integration
fi
/usr/bin/python3 -m pytest -q -rs --tb=short -p no:cacheprovider --basetemp="$TWINFS_BUILD/pytest-asan" "$@"
status=$?

shopt -s nullglob
found=("$reports"/*)
if [ "${#found[@]}" -gt 0 ]; then
  echo "== sanitizer reports (${#found[@]}) in $reports:"
  for f in "${found[@]}"; do
    echo "-- $f"
    head -n 60 "$f"
  done
  status=1
else
  rm -rf "$reports"
  echo "== no sanitizer report"
fi
exit $status
