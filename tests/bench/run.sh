#!/usr/bin/env bash
# Runs the twinfs benchmark suite (see docs/performance.md): builds twinfs (release) and the
# helpers, runs every benchmark side by side with its baseline, prints the table and writes
# the report. Exits non-zero only if a benchmark could not run; a missed target is reported.
#
#   tests/bench/run.sh [--quick] [--out FILE]
#
# --quick scales the counts down (CI); its report goes to BUILD/performance-quick.md unless
# --out is given, so docs/performance.md keeps the full run's numbers.
# Environment: TWINFS_BUILD (default build-bench, configured --buildtype=release if new).
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=()
out=""
while [ $# -gt 0 ]; do
  case $1 in
  --quick) quick=(--quick) ;;
  --out) out=$2; shift ;;
  *) echo "usage: tests/bench/run.sh [--quick] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
build=${TWINFS_BUILD:-build-bench}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" >/dev/null
buildtype=$(meson introspect --buildoptions "$build" |
  /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"][0])')

# The C helpers (minfs, consume, exit0, spawnloop) are built by ninja above, from tests/bench/meson.build.
helpers=$build/tests/bench
if [ -z "$out" ]; then
  if [ ${#quick[@]} -gt 0 ]; then out=$build/performance-quick.md; else out=docs/performance.md; fi
fi
exec /usr/bin/python3 tests/bench/bench.py --build "$build" --buildtype "$buildtype" \
  --helpers "$helpers" --out "$out" "${quick[@]}"
