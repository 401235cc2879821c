#!/usr/bin/python3
"""bench_replay.py: `lsim replay` of 10,000 requests with 2 threads, checked from outside.

  1. the engine benches' data (bench_common.request_data: the 800-user log, its index,
     SIM hard, DIN and BST checkpoints (--models) of 200 training steps); with mimn among
     the models, `lsim index uic` writes its User Interest Center into the index, so that
     MIMN's replay reads the users' states (the other models do not read it);
  2. `lsim gen requests` over the last --days days (10,000 requests of 300 candidates);
  3. `lsim replay --threads 2 --json` for each checkpoint, timed from outside: replay
     writes one line to stderr as its measured run starts ("measuring") and one as it
     ends ("measured"); this script stamps each line with its own clock as it
     arrives, and requests / (the time between them) is an independent count to hold
     lsim's reported QPS against (the issue: within 10%);
  4. the reported p50 / p90 / p99 / p99.9 / max recomputed (nearest rank) from the
     per-request latencies the JSON holds;
  5. `lsim eval --requests` on the same requests: its AUC against replay's.
Prints a markdown table; --json OUT writes the numbers.

    bench/bench_replay.py [--build build] [--work bench-out/request] [--requests 10000]
                          [--threads 2] [--runs 3] [--models sim-hard,din,bst] [--json OUT]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import request_data, run, tools  # noqa: E402

END = 1512345600


def timed_replay(lsim, idx, ckpt, req, threads, out):
    """Runs one replay; the seconds between its "measuring" and "measured" lines, by this clock."""
    p = subprocess.Popen([lsim, "replay", "--index", idx, "--model", ckpt, "--requests", req, "--threads",
                          str(threads), "--warmup", "100", "--json", out], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    t = {}
    for line in p.stderr:
        for mark in ("measuring", "measured"):
            if line.rstrip().endswith(": " + mark):
                t[mark] = time.monotonic()
    if p.wait() != 0 or len(t) != 2:
        sys.exit(f"lsim replay failed or printed no measuring/measured lines (exit {p.returncode})")
    return t["measured"] - t["measuring"]


def nearest_rank(xs, q):
    xs = sorted(xs)
    k = max(1, math.ceil(q * len(xs)))
    return xs[min(k, len(xs)) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/request")
    ap.add_argument("--users", type=int, default=800)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", default="sim-hard,din,bst", help="model kinds, comma-separated")
    ap.add_argument("--json")
    a = ap.parse_args()
    (lsim,) = tools(a.build, "lsim")
    idx, ckpts = request_data(lsim, a.work, a.users, a.models.split(","))
    if "mimn" in ckpts:
        run([lsim, "index", "uic", "--index", idx, "--uic", ckpts["mimn"]])
    req = os.path.join(a.work, "replay_requests.jsonl")
    run([lsim, "gen", "requests", "--index", idx, "--from", str(END - a.days * 86400),
         "--max-requests", str(a.requests), "--out", req])
    rows = []
    for kind, ckpt in ckpts.items():
        out = os.path.join(a.work, f"replay_{kind}.json")
        walls, qps, checks, per_run = [], [], [], []
        for _ in range(a.runs):
            walls.append(timed_replay(lsim, idx, ckpt, req, a.threads, out))
            with open(out) as f:
                d = json.load(f)
            m = d["models"][0]
            per_run.append(m)
            n = m["requests"]
            outside = n / walls[-1]
            qps.append((m["qps"], outside))
            lat = [x for x in m["latency_ms"] if x is not None]
            worst = max(abs(m[k] - nearest_rank(lat, q)) for k, q in
                        (("p50_ms", .5), ("p90_ms", .9), ("p99_ms", .99), ("p999_ms", .999), ("max_ms", 1.0)))
            checks.append(worst)
        ev = json.loads(run([lsim, "eval", "--index", idx, "--model", ckpt, "--requests", req, "--json"]))
        i = sorted(range(len(qps)), key=lambda k: qps[k][0])[len(qps) // 2]  # the median run by lsim's QPS
        m = per_run[i]
        rows.append({"kind": kind, "requests": n, "candidates": m["candidates"], "threads": a.threads,
                     "qps_lsim": qps[i][0], "qps_outside": qps[i][1], "ratio": qps[i][0] / qps[i][1],
                     "p50_ms": m["p50_ms"], "p99_ms": m["p99_ms"], "p999_ms": m["p999_ms"],
                     "percentile_check_max_abs_ms": max(checks), "auc_replay": m["auc"], "auc_eval": ev["auc"],
                     "gauc_replay": m["gauc"], "gauc_eval": ev["gauc"], "errors": m["errors"],
                     "wall_s_lsim": m["wall_s"], "wall_s_outside": walls[i]})
    print(f"Replay: {rows[0]['requests']} requests ({rows[0]['candidates']} candidates), {a.threads} threads, "
          f"closed loop; median of {a.runs} runs; {time.strftime('%Y-%m-%d')}.\n")
    print("| model | QPS (lsim) | QPS (outside: requests / time between its start and end lines) | lsim / outside | p50 ms | "
          "p99 ms | p99.9 ms | percentiles vs JSON latencies (max abs diff, ms) | AUC replay | AUC eval --requests "
          "| errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['qps_lsim']:.1f} | {r['qps_outside']:.1f} | {r['ratio']:.3f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['percentile_check_max_abs_ms']:.1e} | "
              f"{r['auc_replay']:.6f} | {r['auc_eval']:.6f} | {r['errors']} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
