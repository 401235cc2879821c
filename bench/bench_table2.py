#!/usr/bin/python3
"""bench_table2.py: the comparison of SIM's Table 2 on data whose ideal answer is
known: every model trained with lsim on one generated log, evaluated on its last day,
beside the Bayes-optimal AUC.

  1. `lsim gen log --users U --seed 1 --truth truth.txt` (docs/GENERATOR.md) and
     `lsim index build`;
  2. for each model and each seed: `lsim train --model M [--time-info] --seed S`
     (the split: the start of the last day), then
     `lsim eval --json --truth truth.txt` (the same test samples for every model and
     seed: eval's sampling seed is fixed);
  3. a table: AUC and GAUC, mean and standard deviation over the seeds, the training
     time, and the Bayes-optimal AUC / GAUC of the same test samples.
Models: DIN, avg-pooling long DIN, MIMN, SIM hard, SIM soft, SIM soft + time info (SIM's
Table 2), plus SIM hard + time info, DIEN, DSIN and BST.

    bench/bench_table2.py [--users 800] [--seeds 1,2,3] [--epochs 6] [--models ...]
                          [--build build] [--work bench-out/table2] [--json OUT] [--gen OPTS]
Extra `lsim train` options can follow `--`.

Six epochs by default: at two, DIEN and SIM soft's learned search were still far from
where they settle, and DIEN's row depended mostly on the seed (docs/BENCHMARKS.md,
"Ranking quality").
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import run  # noqa: E402

MODELS = [("din", "DIN", []), ("avgpool-din", "avg-pooling long DIN", []), ("sim-hard", "SIM hard", []),
          ("sim-hard-time", "SIM hard + time info", ["--time-info"]),
          ("sim-soft", "SIM soft", []), ("sim-soft-time", "SIM soft + time info", ["--time-info"]),
          ("dien", "DIEN", []), ("dsin", "DSIN", []), ("bst", "BST", []), ("mimn", "MIMN", [])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=800)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(m[0] for m in MODELS))
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/table2")
    ap.add_argument("--json")
    ap.add_argument("--gen", default="", help="more `lsim gen log` options, one string (e.g. '--min-len 400')")
    ap.add_argument("extra", nargs="*", help="more lsim train options (after --)")
    a = ap.parse_args()
    lsim = os.path.join(a.build, "lsim")
    if not os.access(lsim, os.X_OK):
        sys.exit(f"{lsim} is missing: build first (scripts/build.sh)")
    os.makedirs(a.work, exist_ok=True)
    log, idx, truth = (os.path.join(a.work, x) for x in ("log.csv", "idx", "truth.txt"))
    run([lsim, "gen", "log", "--users", str(a.users), "--seed", "1", "--out", log, "--truth", truth] + a.gen.split())
    run([lsim, "index", "build", "--index", idx, "--input", log, "--force"])
    seeds = [int(s) for s in a.seeds.split(",")]
    wanted = a.models.split(",")
    results, t_start = [], time.time()
    for key, label, opts in MODELS:
        if key not in wanted:
            continue
        kind = key[:-5] if key.endswith("-time") else key
        runs = []
        for s in seeds:
            ckpt = os.path.join(a.work, f"{key}.s{s}.safetensors")
            print(f"# {label}, seed {s}", file=sys.stderr)
            t0 = time.time()
            tr = json.loads(run([lsim, "train", "--index", idx, "--model", kind, "--out", ckpt, "--seed", str(s),
                                 "--epochs", str(a.epochs), "--threads", str(a.threads), "--json"] + opts + a.extra))
            secs = time.time() - t0
            ev = json.loads(run([lsim, "eval", "--index", idx, "--model", ckpt, "--truth", truth, "--json"]))
            runs.append({"seed": s, "train_s": secs, "samples_per_s": tr["samples_per_s"], **ev})
        results.append({"model": key, "label": label, "runs": runs})

    def ms(xs):
        return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)

    first = results[0]["runs"][0]
    print(f"\n{a.users} users, last day as test ({first['samples']} test samples, {first['positives']} positive), "
          f"{a.epochs} epochs, seeds {a.seeds}, {a.threads} threads; total {time.time() - t_start:.0f} s; "
          f"{time.strftime('%Y-%m-%d')}.\n")
    print("| model | AUC (mean ± std) | GAUC (mean ± std) | logloss | train s (mean) |")
    print("|---|---|---|---|---|")
    for r in results:
        auc, gauc = ms([x["auc"] for x in r["runs"]]), ms([x["gauc"] for x in r["runs"]])
        ll = statistics.mean(x["logloss"] for x in r["runs"])
        tr = statistics.mean(x["train_s"] for x in r["runs"])
        r.update({"auc_mean": auc[0], "auc_std": auc[1], "gauc_mean": gauc[0], "gauc_std": gauc[1]})
        print(f"| {r['label']} | {auc[0]:.4f} ± {auc[1]:.4f} | {gauc[0]:.4f} ± {gauc[1]:.4f} | {ll:.4f} | {tr:.0f} |")
    t = first["truth"]
    print(f"| Bayes-optimal (the generator's truth) | {t['auc']:.4f} | {t['gauc']:.4f} | {t['logloss']:.4f} | — |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"users": a.users, "epochs": a.epochs, "seeds": seeds, "truth": t, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
