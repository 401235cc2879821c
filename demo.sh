#!/usr/bin/env bash
# The demo: install what is missing, build, then on a built-in default:
# generate a Taobao-shaped log, build the behavior index, show its stats, and run
# hard searches for the longest user.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
out=${LSIM_DEMO_DIR:-demo-out}
users=${LSIM_DEMO_USERS:-2000}
mkdir -p "$out"
lsim=build/lsim
echo "== gen log: $users users"
$lsim gen log --users "$users" --seed 1 --out "$out/log.csv"
echo "== index build"
$lsim index build --index "$out/index" --input "$out/log.csv" --force
echo "== index stats"
$lsim index stats --index "$out/index"
echo "== index verify"
$lsim index verify --index "$out/index"
echo "== hard search: user 1 (the longest sequence), 5 most recent events of their latest category"
cat=$($lsim query --index "$out/index" --user 1 -k 1 | cut -f3)
$lsim query --index "$out/index" --user 1 --cat "$cat" -k 5
echo "== files are in $out/"
