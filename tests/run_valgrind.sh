#!/usr/bin/env bash
# Runs the command line end to end under valgrind memcheck, on a small generated log:
# gen log, index build, index append, index verify, query, train (DIN and SIM soft +
# time, a few steps), eval, gen requests, eval --requests, score, explain, replay (2
# threads, with pictures). Every step must exit 0 with no memcheck error and no
# definitely or indirectly lost byte (--errors-for-leak-kinds=definite,indirect).
#   tests/run_valgrind.sh [BUILD_DIR]     (default: build; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
lsim=$build/lsim
[ -x "$lsim" ] || { echo "run_valgrind: $lsim missing: build first (scripts/build.sh)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "run_valgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
vg() {
    echo "== lsim $*"
    valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect "$lsim" "$@" > "$dir/out.txt" 2> "$dir/err.txt" || {
        rc=$?
        cat "$dir/err.txt" >&2
        echo "run_valgrind: lsim $* failed (exit $rc)" >&2
        exit 1
    }
}
end=1512345600
"$lsim" gen log --users 30 --min-len 20 --max-len 600 --days 10 --end-ts $end --out "$dir/all.csv" 2>/dev/null
awk -F, -v t=$((end - 86400)) '$5 < t' "$dir/all.csv" > "$dir/old.csv"
awk -F, -v t=$((end - 86400)) '$5 >= t' "$dir/all.csv" > "$dir/new.csv"
vg gen log --users 5 --min-len 10 --max-len 50 --out "$dir/small.csv"
vg index build --index "$dir/idx" --input "$dir/old.csv" --map-size 1
vg index append --index "$dir/idx" --input "$dir/new.csv" --map-size 1
vg index verify --index "$dir/idx"
vg index stats --index "$dir/idx"
vg query --index "$dir/idx" --user 1 -k 5
vg train --index "$dir/idx" --model din --out "$dir/din.st" --steps 3 --batch 32 --threads 2
vg train --index "$dir/idx" --model sim-soft --time-info --out "$dir/sim.st" --steps 3 --batch 32 --threads 1
vg eval --index "$dir/idx" --model "$dir/sim.st" --json
vg gen requests --index "$dir/idx" --negatives 9 --max-requests 20 --out "$dir/req.jsonl"
vg eval --index "$dir/idx" --model "$dir/din.st" --requests "$dir/req.jsonl" --json
item=$(head -n 1 "$dir/all.csv" | cut -d, -f2) # head reads the file: no SIGPIPE under pipefail
vg score --index "$dir/idx" --model "$dir/sim.st" --user 1 --now $end --items "$item,nosuchitem" --json
vg explain --index "$dir/idx" --model "$dir/sim.st" --user 1 --now $end --item "$item"
vg replay --index "$dir/idx" --model "$dir/din.st,$dir/sim.st" --requests "$dir/req.jsonl" --threads 2 \
    --warmup 2 --json "$dir/replay.json" --plot "$dir/pics"
echo "run_valgrind: every step clean"
