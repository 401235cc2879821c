#!/usr/bin/env python3
"""soft_picks_newest.py: how often SIM's search keeps the user's newest behavior in the
target's category, the one that says whether a session in that category is on.

For N logged events of the last day (the test positives' kind; a fixed random sample),
`lsim explain` lists the behaviors the model's GSU kept; this counts, against the log:
  - the behaviors of the target's category kept, and how many could have been
    (min(K, the category's behaviors among the last --long-max before the event));
  - the events whose newest earlier behavior of the target's category was kept.
Hard search keeps it always; soft search keeps what scores highest.

    bench/soft_picks_newest.py --log LOG.csv --index IDX --model CKPT [--lsim build/lsim] [--n 150]
"""
import argparse
import collections
import csv
import json
import random
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lsim", default="build/lsim")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--topk", type=int, default=50)
    ap.add_argument("--long-max", type=int, default=1000)
    a = ap.parse_args()
    rows = list(csv.reader(open(a.log)))
    end = max(int(r[4]) for r in rows)
    day0 = end - end % 86400 if end % 86400 else end - 86400
    hist = collections.defaultdict(list)
    for r in rows:
        hist[r[0]].append((int(r[4]), r[1], r[2]))
    test = [r for r in rows if int(r[4]) >= day0]
    random.seed(a.seed)
    n = kept_cat = possible = newest = 0
    for u, item, cat, _, ts in random.sample(test, min(a.n, len(test))):
        ts = int(ts)
        h = [x for x in hist[u] if x[0] < ts][-a.long_max:]
        same = [x for x in h if x[2] == cat]
        if not same:
            continue
        out = subprocess.run([a.lsim, "explain", "--index", a.index, "--model", a.model, "--user", u, "--now", str(ts),
                              "--item", item, "--json"], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"lsim explain: {out.stderr.strip()}")
        picked = json.loads(out.stdout)["behaviors"]
        sel = {(x["ts"], str(x["item"])) for x in picked}
        n += 1
        kept_cat += sum(1 for x in picked if str(x["category"]) == cat)
        possible += min(a.topk, len(same))
        newest += (same[-1][0], same[-1][1]) in sel
    print(f"{n} events with an earlier behavior of their category: kept {kept_cat} behaviors of the target's category "
          f"of {possible} possible; the newest of the category kept for {newest} of {n}")


if __name__ == "__main__":
    main()
