#!/usr/bin/env bash
# Builds lsim with AddressSanitizer + UndefinedBehaviorSanitizer and runs the default
# test suite, then with ThreadSanitizer and runs the engine's threading test
# (tests/engine_threads.c; criterion's runner does not work under TSan).
#   tests/run_sanitizers.sh [asan|tsan]    (default: both)
# Build directories: build-asan, build-tsan. Any sanitizer report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-both}
if [ "$what" = both ] || [ "$what" = asan ]; then
  [ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined \
    -Dbuildtype=debugoptimized >/dev/null
  meson compile -C build-asan >/dev/null
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite default --print-errorlogs --num-processes 2 -t 4
fi
if [ "$what" = both ] || [ "$what" = tsan ]; then
  [ -f build-tsan/build.ninja ] || meson setup build-tsan -Db_sanitize=thread -Dbuildtype=debugoptimized >/dev/null
  meson compile -C build-tsan >/dev/null
  TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --suite threads --print-errorlogs -t 6
fi
