#!/usr/bin/env bash
# Static checks on the C sources and shell scripts: clang-format drift, cppcheck, clang-tidy
# (on the compile database of ./build), shellcheck. Exits non-zero on any finding.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
status=0
mapfile -t c_files < <(git ls-files '*.c' '*.h' 2>/dev/null || find core fs mount tests docs -name '*.[ch]')
mapfile -t sh_files < <(git ls-files '*.sh' .ci/run 'docs/examples/handlers/*' 2>/dev/null)

echo "clang-format: ${#c_files[@]} files"
if ! clang-format --dry-run --Werror "${c_files[@]}"; then
  echo "clang-format: drift (fix with: clang-format -i \$(git ls-files '*.[ch]'))"; status=1
fi

echo "cppcheck"
if ! cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
  --inline-suppr --suppress=missingIncludeSystem --std=c11 -D_GNU_SOURCE -I core -I core/include \
  "${c_files[@]}"; then
  status=1
fi

echo "clang-tidy"
if [ -f build/compile_commands.json ]; then
  mapfile -t tidy_files < <(printf '%s\n' "${c_files[@]}" | grep -E '^(core|fs|mount|dispatch)/.*\.c$')
  if [ "${#tidy_files[@]}" -gt 0 ] &&
    ! clang-tidy --quiet -p build --warnings-as-errors='*' "${tidy_files[@]}" 2>/dev/null; then
    status=1
  fi
else
  echo "clang-tidy: no build/compile_commands.json; build first"; status=1
fi

echo "shellcheck: ${#sh_files[@]} files"
if [ "${#sh_files[@]}" -gt 0 ] && ! shellcheck "${sh_files[@]}"; then
  status=1
fi
exit $status
