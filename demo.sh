#!/usr/bin/env bash
# The demo: install what is missing, build, then on a built-in default:
# generate a Taobao-shaped log, build the behavior index, train DIN, SIM hard
# and SIM soft + time info on everything before the last day, evaluate them on
# the last day beside the Bayes-optimal AUC (the shape of SIM's Table 2), turn
# the last day into ranking requests and replay them through the engine
# (latency, throughput, AUC, pictures).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
out=${LSIM_DEMO_DIR:-demo-out}
users=${LSIM_DEMO_USERS:-2000}
requests=${LSIM_DEMO_REQUESTS:-2000}
mkdir -p "$out"
lsim=build/lsim
start=$(date +%s)
echo "== gen log: $users users"
$lsim gen log --users "$users" --seed 1 --out "$out/log.csv" --truth "$out/truth.txt"
echo "== index build"
$lsim index build --index "$out/index" --input "$out/log.csv" --force
$lsim index stats --index "$out/index"
# a number from lsim's --json output: field $2 of file $1 (the first one; "truth."
# prefix: the one inside the "truth" object)
jf() {
    local text
    text=$(cat "$1")
    if [[ $2 == truth.* ]]; then text=${text#*\"truth\": }; fi
    grep -o "\"${2#truth.}\": [-0-9.eE]*" <<<"$text" | head -1 | cut -d' ' -f2
}
names=(din sim-hard sim-soft-time)
labels=("DIN" "SIM hard" "SIM soft + time info")
opts=("din" "sim-hard" "sim-soft --time-info")
for i in 0 1 2; do
    echo "== train ${labels[$i]}"
    # shellcheck disable=SC2086
    $lsim train --index "$out/index" --model ${opts[$i]} --out "$out/${names[$i]}.safetensors"
    $lsim eval --index "$out/index" --model "$out/${names[$i]}.safetensors" --truth "$out/truth.txt" --json \
        > "$out/${names[$i]}.eval.json"
done
echo
echo "== Ranking quality on the last day (lsim eval; the shape of SIM's Table 2)"
printf '%-24s %8s %8s\n' model AUC GAUC
for i in 0 1 2; do
    f="$out/${names[$i]}.eval.json"
    printf '%-24s %8.4f %8.4f\n' "${labels[$i]}" "$(jf "$f" auc)" "$(jf "$f" gauc)"
done
printf '%-24s %8.4f %8.4f   (the generator knows each sample'"'"'s true click probability)\n' "Bayes-optimal" \
    "$(jf "$out/din.eval.json" truth.auc)" "$(jf "$out/din.eval.json" truth.gauc)"
echo
echo "== gen requests: $requests requests of the last day, 300 candidates each"
$lsim gen requests --index "$out/index" --max-requests "$requests" --out "$out/requests.jsonl"
echo "== replay through the engine (lsim.h), 2 threads"
$lsim replay --index "$out/index" --requests "$out/requests.jsonl" --threads 2 \
    --model "$out/din.safetensors,$out/sim-hard.safetensors,$out/sim-soft-time.safetensors" \
    --json "$out/replay.json" --plot "$out/pictures"
echo
echo "== done in $(( $(date +%s) - start )) s: files in $out/, pictures in $out/pictures/ (open the .svg files in a browser)"
