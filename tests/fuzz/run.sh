#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for SECONDS (default 60).
# Exits non-zero if a target crashes, leaks or times out; the reproducer is kept under
# build-fuzz/fuzz-artifacts/. The seed corpora in tests/fuzz/corpus/ are read, not written:
# new inputs go to a scratch directory.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../.."
build="${FUZZ_BUILD:-build-fuzz}"

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dintegration=false
fi
ninja -C "$build" tests/fuzz/fuzz_record tests/fuzz/fuzz_event_schema mount/fuzz_options

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

status=0
for path in tests/fuzz/fuzz_record tests/fuzz/fuzz_event_schema mount/fuzz_options; do
  target=$(basename "$path")
  echo "== $target for ${seconds}s"
  mkdir -p "$scratch/$target"
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/$path" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
      "$scratch/$target" "tests/fuzz/corpus/$target" 2>"$scratch/$target.log"; then
    tail -n 60 "$scratch/$target.log"
    echo "== $target: FAILED (artifacts in $artifacts)"
    status=1
  else
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' \
      "$scratch/$target.log" || true
    echo "== $target: ok"
  fi
done
exit $status
