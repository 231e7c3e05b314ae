#!/usr/bin/env bash
# Runs every test in the normal build and again in the ASan+UBSan build, and
# checks formatting. Exits non-zero on any failure.
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}
status=0

echo "== tests (build: $build)"
(cd "$build" && ctest --output-on-failure -j2 --timeout 300) || status=1

echo "== tests under ASan+UBSan (build: $asan)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# nng 1.5.2 leaks at close (see the file): suppressed by library.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")/.." && pwd)/tests/lsan.supp:print_suppressions=0}
(cd "$asan" && ctest --output-on-failure -j2 --timeout 300) || status=1

if command -v clang-format >/dev/null 2>&1; then
  echo "== clang-format"
  bad=$(git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run -Werror 2>&1 | grep -c 'error:' || true)
  if [ "$bad" != "0" ]; then
    echo "clang-format: $bad places differ (run: make format)"
    status=1
  fi
fi
[ $status -eq 0 ] && echo "all tests passed" || echo "SOME TESTS FAILED"
exit $status
