#!/usr/bin/env bash
# Configures (once) and builds lsim in ./build (release, tests on).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
meson compile -C build >/dev/null
