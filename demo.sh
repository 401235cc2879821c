#!/usr/bin/env bash
# The demo: install what is missing, build, then on a built-in default:
# generate a Taobao-shaped log, build the behavior index, show its stats, run
# hard searches for the longest user, train DIN, SIM hard and SIM soft + time info
# on everything before the last day, and evaluate them on the last day beside
# the Bayes-optimal AUC.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
out=${LSIM_DEMO_DIR:-demo-out}
users=${LSIM_DEMO_USERS:-2000}
mkdir -p "$out"
lsim=build/lsim
echo "== gen log: $users users"
$lsim gen log --users "$users" --seed 1 --out "$out/log.csv" --truth "$out/truth.txt"
echo "== index build"
$lsim index build --index "$out/index" --input "$out/log.csv" --force
echo "== index stats"
$lsim index stats --index "$out/index"
echo "== index verify"
$lsim index verify --index "$out/index"
echo "== hard search: user 1 (the longest sequence), 5 most recent events of their latest category"
cat=$($lsim query --index "$out/index" --user 1 -k 1 | cut -f3)
$lsim query --index "$out/index" --user 1 --cat "$cat" -k 5
for m in din sim-hard "sim-soft --time-info"; do
    name=$(echo "$m" | tr -d ' -' | sed 's/timeinfo/-time/')
    echo "== train $m"
    # shellcheck disable=SC2086
    $lsim train --index "$out/index" --model $m --out "$out/$name.safetensors"
    echo "== eval $m (the last day; Bayes-optimal: the generator's truth)"
    $lsim eval --index "$out/index" --model "$out/$name.safetensors" --truth "$out/truth.txt"
done
echo "== files are in $out/"
