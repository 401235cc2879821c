#!/usr/bin/python3
"""bench_mimn_uic.py: MIMN's request cost with and without the User Interest Center, at
1,000 and at 54,000 events per user (issue: MIMN's cost independent of sequence length).

For each length L:
  1. `lsim gen log --min-len L --max-len L` (every user exactly L events over 180 days),
     `lsim index build`, a MIMN checkpoint (`lsim train --steps 5`: trained weights, not
     good ones; the cost does not depend on them), then `lsim index uic` (timed: what
     writing the states costs) and `lsim index stats` (bytes per user: tree and UIC);
  2. `lsim gen requests` over the log's last day (100 candidates each) and, from it, the
     same requests at a time after every event ("live": what serving sees, each state
     read as stored);
  3. `lsim replay` (1 thread, closed loop) of each request set with `--uic off` (every
     event before the request folded per request: the cost grows with L) and
     `--uic require` (the stored state, plus the few events after its snapshot for a
     logged request in the past). Scores are the same bits either way (tests/test_engine.c);
     AUC is printed as a check.
Each replay runs --runs times; the table gives the medians.

    bench/bench_mimn_uic.py [--build build] [--work bench-out/mimn_uic] [--runs 3]
                            [--requests 200] [--lengths 1000,54000]
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import run, tools  # noqa: E402

END_TS = 1512345600


def users_for(length):
    """About 200,000 events per log, at least 4 users."""
    return max(4, 200000 // length)


def prepare(lsim, work, length, n_req):
    d = os.path.join(work, f"L{length}")
    os.makedirs(d, exist_ok=True)
    log, idx, ckpt = (os.path.join(d, x) for x in ("log.csv", "idx", "mimn.safetensors"))
    req, live = os.path.join(d, "requests.jsonl"), os.path.join(d, "requests_live.jsonl")
    if not os.path.exists(os.path.join(idx, "data.mdb")):
        run([lsim, "gen", "log", "--users", str(users_for(length)), "--min-len", str(length), "--max-len",
             str(length), "--seed", "1", "--out", log])
        run([lsim, "index", "build", "--index", idx, "--input", log, "--force"])
    if not os.path.exists(ckpt):
        run([lsim, "train", "--index", idx, "--model", "mimn", "--out", ckpt, "--steps", "5", "--batch", "64",
             "--threads", "2", "--test-from", str(END_TS - 86400)])
    uic = json.loads(run([lsim, "index", "uic", "--index", idx, "--uic", ckpt, "--json"]))
    stats = json.loads(run([lsim, "index", "stats", "--index", idx, "--json"]))
    if not os.path.exists(req):
        run([lsim, "gen", "requests", "--index", idx, "--out", req, "--negatives", "99", "--max-requests",
             str(n_req), "--from", str(END_TS - 86400)])
        with open(req) as f, open(live, "w") as g:
            for line in f:
                r = json.loads(line)
                r["time"] = END_TS + 60
                g.write(json.dumps(r) + "\n")
    return idx, ckpt, req, live, uic, stats


def replay(lsim, idx, ckpt, req, mode, runs):
    p50, p99, qps, auc = [], [], [], None
    for _ in range(runs):
        out = os.path.join(os.path.dirname(req), "replay.json")
        run([lsim, "replay", "--index", idx, "--model", ckpt, "--requests", req, "--uic", mode, "--warmup", "20",
             "--json", out])
        with open(out) as f:
            m = json.load(f)["models"][0]
        p50.append(m["p50_ms"])
        p99.append(m["p99_ms"])
        qps.append(m["qps"])
        auc = m["auc"]
    return statistics.median(p50), statistics.median(p99), statistics.median(qps), auc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/mimn_uic")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--lengths", default="1000,54000")
    a = ap.parse_args()
    (lsim,) = tools(a.build, "lsim")
    rows, sizes = [], []
    for length in (int(x) for x in a.lengths.split(",")):
        idx, ckpt, req, live, uic, st = prepare(lsim, a.work, length, a.requests)
        u = st["uic"]
        sizes.append((length, st["users"], st["tree_bytes_per_user"], u["bytes_per_user"], u["state_bytes"],
                      u["records"], uic["seconds"]))
        for label, path in (("logged (in the last day)", req), ("live (after every event)", live)):
            for mode in ("off", "require"):
                print(f"# L={length} {label} --uic {mode}", file=sys.stderr)
                rows.append((length, label, mode) + replay(lsim, idx, ckpt, path, mode, a.runs))
    print(f"\nMIMN per request, 100 candidates, 1 thread, closed loop; medians of {a.runs} runs\n")
    print("| events per user | requests | state from | p50 ms | p99 ms | requests/s | AUC |")
    print("|---|---|---|---|---|---|---|")
    for length, label, mode, p50, p99, qps, auc in rows:
        src = "folded per request" if mode == "off" else "User Interest Center"
        print(f"| {length:,} | {label} | {src} | {p50:.3f} | {p99:.3f} | {qps:.1f} | {auc:.4f} |")
    print("\n| events per user | users | tree bytes per user | UIC bytes per user | state bytes | UIC records "
          "| `lsim index uic` s |")
    print("|---|---|---|---|---|---|---|")
    for length, users, tree, ub, sb, recs, secs in sizes:
        print(f"| {length:,} | {users} | {tree:,.0f} | {ub:,.0f} | {sb} | {recs} | {secs:.2f} |")
    by = {(r[0], r[1], r[2]): r for r in rows}
    for label in ("logged (in the last day)", "live (after every event)"):
        ls = sorted({r[0] for r in rows})
        if len(ls) >= 2:
            lo, hi = ls[0], ls[-1]
            f_ratio = by[(hi, label, "off")][3] / by[(lo, label, "off")][3]
            u_ratio = by[(hi, label, "require")][3] / by[(lo, label, "require")][3]
            print(f"\n{label}: p50 at {hi:,} / p50 at {lo:,} events: folded {f_ratio:.1f}x, "
                  f"User Interest Center {u_ratio:.2f}x")


if __name__ == "__main__":
    main()
