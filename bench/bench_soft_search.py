#!/usr/bin/python3
"""bench_soft_search.py: SIM's soft search for one request, lsim's three modes against
FAISS IndexFlatIP over the same vectors, in the same run.

  1. the data of bench_request.py (`lsim gen log --users U`, user 1 with 54,000
     behaviors; `lsim index build`; a short `lsim train --model sim-soft`), made if missing;
  2. bench_soft_search (C) `--runs` times: user 1's GSU vectors from the trained model,
     200 candidates (half from the user's history, half from the catalog), K = 50,
     one thread; FAISS IndexFlatIP (add + search, through FAISS's C API) against
     lsim exact, lsim through FAISS, and lsim approximate at several fractions;
  3. the medians of the runs, with the exactness checks (exact against a brute-force
     double-precision ranking) and the approximate modes' recall@50.

    bench/bench_soft_search.py [--build build] [--work bench-out/request] [--runs 5]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import request_data, run, tools  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/request")
    ap.add_argument("--users", type=int, default=800)
    ap.add_argument("--runs", type=int, default=5, help="runs of the C bench (each times 7 calls per mode)")
    ap.add_argument("--gen", default="", help="more `lsim gen log` options, one string (e.g. '--item-conc 1000': "
                    "users who keep finding new items); use a --work of its own")
    a = ap.parse_args()
    lsim, drv = tools(a.build, "lsim", "bench_soft_search")
    idx, ckpts = request_data(lsim, a.work, a.users, ("sim-soft",), a.gen)
    ckpt = ckpts["sim-soft"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    runs = [json.loads(run([drv, "--index", idx, "--model", ckpt, "--runs", "7"], env=env)) for _ in range(a.runs)]
    r0 = runs[0]
    med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
    flat = med(lambda r: r["faiss_flat_search_ms"])
    print(f"\nSoft search for one request: user {r0['user']} ({r0['behaviors']} behaviors, {r0['distinct_pairs']} "
          f"distinct (item, category) pairs), {r0['candidates']} candidates, K = {r0['k']}, d = {r0['d']}, 1 thread; "
          f"median of {a.runs} runs of 7 calls; {time.strftime('%Y-%m-%d')}.\n")
    print("| method | ms | FAISS IndexFlatIP time / this | recall@50 | share scored | exact? |")
    print("|---|---|---|---|---|---|")
    add_search = med(lambda r: r["faiss_flat_add_search_ms"])
    print(f"| FAISS IndexFlatIP, all {r0['behaviors']} vectors (search; add + search {add_search:.2f}) "
          f"| {flat:.2f} | 1.00x | 1 | 1 | yes |")
    pairs_ms = med(lambda r: r["faiss_flat_pairs_ms"])
    print(f"| FAISS IndexFlatIP over the distinct pairs (add + search; no behavior expansion) | "
          f"{pairs_ms:.2f} | {flat / pairs_ms:.2f}x | — | — | — |")
    for i, m in enumerate(r0["modes"]):
        ms = med(lambda r: r["modes"][i]["ms"])
        name = {"exact": "lsim exact (default)", "faiss": "lsim through FAISS (shortlist, exact ranking)",
                "approx": f"lsim approximate, fraction {m['fraction']:.2f}"}[m["mode"]]
        exact = ("yes: equal to brute force in every candidate" if m["mode"] == "exact" and
                 all(r["modes"][i]["differs_from_brute_force"] == 0 for r in runs)
                 else "yes (fallbacks: %d)" % m["fallbacks"] if m["mode"] == "faiss" and m["recall"] == 1
                 else "no" if m["mode"] == "approx" else "NO")
        print(f"| {name} | {ms:.2f} | {flat / ms:.2f}x | {m['recall']:.3f} | {m['scanned_share']:.3f} | {exact} |")


if __name__ == "__main__":
    main()
