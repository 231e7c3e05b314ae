#!/usr/bin/env bash
# fuzz.sh: the nightly / manual fuzz step (STYLE.md 23: a libFuzzer target per
# decoder). Builds every tests/fuzz/fuzz_*.c with clang, libFuzzer and
# ASan+UBSan in a build dir of its own, then runs each target for SECONDS
# seconds on a corpus kept in BUILD/corpus/NAME (it grows from run to run;
# valid seed inputs from tests/fuzz/seeds.c are added every run), printing
# one line per target: runs, coverage, crashes (0/1). Exits 1 if any target
# crashed, leaked, hit UB, failed an oracle (abort) or timed out; the
# reproducer is left in BUILD/artifacts/NAME/ (keep it as
# tests/fuzz/repro/NAME-<what> once understood). Reproducers kept in
# tests/fuzz/repro/ are run first, as regressions, and fail the run until
# fixed. Exit 2: bad usage, no clang, build failure.
#
# Not part of `make test` or CI (CI has no clang, and this takes minutes):
# run it nightly or by hand before touching a decoder.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS   per target, default 30 (env FUZZ_SECONDS also works)
#   TARGET    e.g. fuzz_msg; default every tests/fuzz/fuzz_*.c
# Env: FUZZ_BUILD (default build-fuzz), FUZZ_CC (default clang),
#      FUZZ_ARGS (extra libFuzzer flags, e.g. "-max_len=8192").
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
seconds=${1:-${FUZZ_SECONDS:-30}}
shift $(($# > 0 ? 1 : 0))
build=${FUZZ_BUILD:-build-fuzz}
cc=${FUZZ_CC:-clang}

if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz.sh: $cc not found (libFuzzer needs clang)" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in tests/fuzz/fuzz_*.c; do
    targets+=("$(basename "$src" .c)")
  done
fi

# -Werror off: a clang-only warning elsewhere must not stop the nightly fuzz.
echo "== build ($build, ${targets[*]})"
mkdir -p "$build"
if ! cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCADRE_FUZZ=ON \
      -DCADRE_SANITIZE=ON -DCADRE_WERROR=OFF -DCADRE_BENCH=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "fuzz.sh: configure failed" >&2
  exit 2
fi
if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" fuzz_seeds \
      >"$build/build.log" 2>&1; then
  tail -n 40 "$build/build.log" >&2
  echo "fuzz.sh: build failed (log: $build/build.log)" >&2
  exit 2
fi

# Leaks, UB and aborts all end the run with a reproducer.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Valid inputs to start from (tests/fuzz/seeds.c), rewritten every run.
if ! "$build/tests/fuzz_seeds" "$build/seeds"; then
  echo "fuzz.sh: fuzz_seeds failed: a seed no longer decodes" >&2
  exit 2
fi

status=0
echo "== fuzz (${seconds}s per target)"
for t in "${targets[@]}"; do
  bin="$build/tests/$t"
  corpus="$build/corpus/$t"
  arts="$build/artifacts/$t"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$arts" "$(dirname "$log")"
  crashes=0
  stamp="$arts/.start"
  touch "$stamp"

  # Kept reproducers first: each must now pass.
  repros=(tests/fuzz/repro/"$t"-*)
  if [ -e "${repros[0]}" ]; then
    if ! "$bin" -runs=1 "${repros[@]}" >"$build/logs/$t.repro.log" 2>&1; then
      echo "$t: a kept reproducer in tests/fuzz/repro/ still fails" \
           "(log: $build/logs/$t.repro.log)"
      crashes=1
    fi
  fi

  seeds=()
  [ -d "$build/seeds/$t" ] && seeds=("$build/seeds/$t")
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 \
    -rss_limit_mb=2048 -artifact_prefix="$arts/" ${FUZZ_ARGS:-} \
    "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  new=$(find "$arts" -type f -newer "$stamp" ! -name .start)
  if [ $rc -ne 0 ] || [ -n "$new" ]; then
    crashes=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  files=$(find "$corpus" -type f | wc -l)
  secs=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  printf '%-20s runs=%-10s %-22s corpus=%-6s time=%ss crashes=%d\n' \
    "$t" "${runs:-?}" "${cov:-cov: ?}" "$files" "${secs:-$seconds}" "$crashes"
  if [ $crashes -ne 0 ]; then
    status=1
    for a in $new; do
      echo "    reproducer: $a  (rerun: $bin $a)"
    done
    echo "    log: $log"
  fi
done
[ $status -eq 0 ] && echo "fuzz: no crashes" || echo "FUZZ FOUND CRASHES"
exit $status
