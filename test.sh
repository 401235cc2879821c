#!/usr/bin/env bash
# The test command: install what is missing, build, run the default test suite.
#   ./test.sh            default suite (fast; what CI runs)
#   ./test.sh slow       the slow suite as well
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
suites=(--suite default)
[ "${1:-}" = slow ] && suites=(--suite default --suite slow)
meson test -C build "${suites[@]}" --print-errorlogs --num-processes 2
