#!/usr/bin/python3
"""bench_mimn_bptt.py: MIMN's truncated-BPTT window against its cost: the same log,
the same test samples, MIMN trained with each --bptt, its AUC and training speed.

  1. `lsim gen log --users U --seed 1 --truth truth.txt` and `lsim index build`;
  2. for each window W: `lsim train --model mimn --bptt W --seed S --epochs E`, then
     `lsim eval --truth truth.txt` (the last day; the same test samples for every W);
  3. a table: AUC, GAUC, logloss, samples/s and training seconds per W.

    bench/bench_mimn_bptt.py [--users 300] [--bptt 10,30,100,300] [--epochs 1] [--seed 1]
                             [--threads 2] [--build build] [--work bench-out/mimn-bptt] [--json OUT]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import run, tools  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--bptt", default="10,30,100,300")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/mimn-bptt")
    ap.add_argument("--json")
    a = ap.parse_args()
    (lsim,) = tools(a.build, "lsim")
    os.makedirs(a.work, exist_ok=True)
    log, idx, truth = (os.path.join(a.work, x) for x in ("log.csv", "idx", "truth.txt"))
    run([lsim, "gen", "log", "--users", str(a.users), "--seed", "1", "--out", log, "--truth", truth])
    run([lsim, "index", "build", "--index", idx, "--input", log, "--force"])
    rows = []
    for w in (int(x) for x in a.bptt.split(",")):
        ckpt = os.path.join(a.work, f"mimn.bptt{w}.safetensors")
        print(f"# bptt {w}", file=sys.stderr)
        t0 = time.time()
        tr = json.loads(run([lsim, "train", "--index", idx, "--model", "mimn", "--bptt", str(w), "--out", ckpt,
                             "--seed", str(a.seed), "--epochs", str(a.epochs), "--threads", str(a.threads), "--json"]))
        secs = time.time() - t0
        ev = json.loads(run([lsim, "eval", "--index", idx, "--model", ckpt, "--truth", truth, "--json"]))
        rows.append({"bptt": w, "train_s": secs, "samples_per_s": tr["samples_per_s"], **ev})
    first = rows[0]
    print(f"\n{a.users} users, last day as test ({first['samples']} test samples), {a.epochs} epoch(s), seed "
          f"{a.seed}, {a.threads} threads; {time.strftime('%Y-%m-%d')}.\n")
    print("| bptt | AUC | GAUC | logloss | samples/s | train s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['bptt']} | {r['auc']:.4f} | {r['gauc']:.4f} | {r['logloss']:.4f} | {r['samples_per_s']:.0f} | "
              f"{r['train_s']:.0f} |")
    t = first["truth"]
    print(f"| Bayes-optimal | {t['auc']:.4f} | {t['gauc']:.4f} | {t['logloss']:.4f} | | |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"users": a.users, "epochs": a.epochs, "seed": a.seed, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
