#!/bin/sh
# run_fuzzers.sh [SECONDS]: builds the libFuzzer targets of tests/fuzz/ with
# clang (ASan + UBSan, leak checking on) into build-fuzz/, then runs each for
# SECONDS (default 60) on a copy of its committed seed corpus
# (tests/fuzz/corpus/<target>/), so that runs never grow the repository.
# Prints per target: executions, execs/s, crashes. Crash inputs are kept in
# build-fuzz/crashes/<target>/. Exits 1 if any target crashed.
# Not part of the default build or of CI. Needs clang with libFuzzer.
# Env: FUZZ_TARGETS="fuzz_a fuzz_b" to run a subset.
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build-fuzz"
lib="$out/lib"
mkdir -p "$out"

# The library, built by meson with clang, the sanitizers and libFuzzer's
# coverage instrumentation (-fsanitize=fuzzer-no-link: the fuzzer sees which
# library code an input reaches, not only the target's own file; the fuzzer
# runtime itself comes with the targets' -fsanitize=fuzzer). The stamp marks
# a library configured this way (an older build-fuzz/lib is set up again).
if [ ! -f "$lib/build.ninja" ] || [ ! -f "$lib/.fuzz-coverage" ]; then
    rm -rf "$lib"
    CC=clang CXX=clang++ meson setup "$lib" "$root" -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized -Dc_args=-fsanitize=fuzzer-no-link -Dcpp_args=-fsanitize=fuzzer-no-link \
        >"$out/meson-setup.log" 2>&1 || { cat "$out/meson-setup.log"; exit 1; }
    touch "$lib/.fuzz-coverage"
fi
ninja -C "$lib" liblsim_core.a >"$out/ninja.log" 2>&1 || { cat "$out/ninja.log"; exit 1; }

# -fsanitize-link-c++-runtime: the library's C++ part (the FAISS wrapper) needs UBSan's C++ runtime (vptr checks).
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
-fsanitize-link-c++-runtime -I$root -I$root/include"
libs="$lib/liblsim_core.a $(pkg-config --libs lmdb libzstd openblas) -lfaiss -fopenmp -pthread -lm -lstdc++"
targets=${FUZZ_TARGETS:-$(cd "$root/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')}
for t in $targets; do
    # shellcheck disable=SC2086
    clang $cflags -o "$out/$t" "$root/tests/fuzz/$t.c" -Wl,--start-group $libs -Wl,--end-group
done

status=0
printf '%-20s %8s %12s %10s %8s\n' target seconds executions execs/s crashes
for t in $targets; do
    work="$out/corpus/$t"
    rm -rf "$work"
    rm -rf "$out/crashes/$t"
    mkdir -p "$work" "$out/crashes/$t"
    if [ -d "$root/tests/fuzz/corpus/$t" ]; then cp "$root/tests/fuzz/corpus/$t"/* "$work"/ 2>/dev/null || true; fi
    log="$out/$t.log"
    rc=0
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$out/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/crashes/$t/" "$work" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(find "$out/crashes/$t" -type f | wc -l)
    [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
    printf '%-20s %8s %12s %10s %8s\n' "$t" "$secs" "${execs:-?}" "${speed:-?}" "$crashes"
    if [ "$crashes" -ne 0 ]; then
        status=1
        echo "  $t: see $log and $out/crashes/$t/" >&2
    fi
done
exit $status
