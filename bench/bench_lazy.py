#!/usr/bin/python3
"""bench_lazy.py: lsim train's samples/s with lazy embedding updates (the default:
only the rows a batch uses move) against --dense-embeddings (every row every step,
as torch.optim.Adam does), on the same index, alternating, in one run.

The index: `lsim gen log --users U --seed 1` (default 17,600 users: 10.3M events,
297,569 items), built under --work. Each measurement is `lsim train --model M
--steps N --threads T --json`; the ratio is the median of the per-run ratios.

    bench/bench_lazy.py [--users 17600] [--runs 3] [--steps 150] [--threads 1,2]
                        [--models din,sim-soft] [--build build] [--work bench-out/lazy]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=17600)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="din,sim-soft")
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/lazy")
    a = ap.parse_args()
    lsim = os.path.join(a.build, "lsim")
    if not os.access(lsim, os.X_OK):
        sys.exit(f"{lsim} is missing: build first (scripts/build.sh)")
    os.makedirs(a.work, exist_ok=True)
    log, idx, out = (os.path.join(a.work, x) for x in ("log.csv", "idx", "m.safetensors"))
    run([lsim, "gen", "log", "--users", str(a.users), "--seed", "1", "--out", log])
    run([lsim, "index", "build", "--index", idx, "--input", log, "--force"])
    stats = json.loads(run([lsim, "index", "stats", "--index", idx, "--json"]))
    res = {}
    for r in range(a.runs):
        for t in a.threads.split(","):
            for m in a.models.split(","):
                for dense in (0, 1):
                    print(f"# run {r + 1}/{a.runs}: {m}, {t} thread(s), {'dense' if dense else 'lazy'}", file=sys.stderr)
                    cmd = [lsim, "train", "--index", idx, "--model", m, "--out", out, "--steps", str(a.steps),
                           "--threads", t, "--json"] + (["--dense-embeddings"] if dense else [])
                    res.setdefault((m, t), {0: [], 1: []})[dense].append(json.loads(run(cmd))["samples_per_s"])
    print(f"\n{stats.get('events')} events, {stats.get('items')} items; {a.steps} steps of 256 per measurement, "
          f"{a.runs} runs; {time.strftime('%Y-%m-%d')}.\n")
    print("| model | threads | lazy samples/s | dense samples/s | lazy / dense |")
    print("|---|---|---|---|---|")
    for (m, t), d in res.items():
        ratio = statistics.median(x / y for x, y in zip(d[0], d[1]))
        print(f"| {m} | {t} | {statistics.median(d[0]):.0f} | {statistics.median(d[1]):.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
