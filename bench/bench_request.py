#!/usr/bin/python3
"""bench_request.py: one request end to end, lsim_score against the PyTorch
reference model computing the same scores, and lsim's throughput over threads.

  1. `lsim gen log --users U` (user 1 has 54,000 behaviors), `lsim index build`, and
     short `lsim train` runs for SIM hard and SIM soft (each with its DIN short-term
     branch; the weights only need to be the trained kind, not good);
  2. for each model: bench_request (C, the public API) times `runs` calls of
     lsim_score for user 1 with 200 candidates, searching all 54,000 behaviors
     (--long-max 54000), and dumps the request and lsim's scores;
  3. the PyTorch reference (tests/golden/gen_sim.SIM's layers with the checkpoint's
     weights) computes the same request from the dump: the short-term DIN branch over
     the last 50 behaviors, the GSU over all 54,000 (hard: each candidate's newest K
     of its category, from the sequence sorted once by category and time; soft: top K
     of the inner products), the ESU, the head; the
     scores must agree within 1e-4; the same number of timed calls, the same thread
     count (1), the median of `--runs` alternations;
  4. threads: bench_request's N = 1, 2, 4 threads, each with its own context,
     scoring requests of 100 users for a few seconds; QPS, and every score checked
     against the one-thread score of the same request.

    bench/bench_request.py [--build build] [--work bench-out/request] [--users 800]
                           [--calls 50] [--runs 3] [--json OUT]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import request_data, run, tools  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-4
NOW = 1512345600  # the generated log's end: every behavior is before it


def torch_worker(a):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
    import gen_esu  # noqa: E402
    import gen_sim  # noqa: E402
    import safetensors_io  # noqa: E402
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    t, meta = safetensors_io.load(a.model)
    mi = {k[5:]: int(float(v)) for k, v in meta.items()
          if k.startswith("lsim.") and v.lstrip("-").replace(".", "").isdigit()}
    soft = meta["lsim.model"] == "sim-soft"
    m = gen_sim.SIM(mi["n_items"], mi["n_cats"], soft, mi["d_item"], mi["d_cat"], (mi["att_h1"], mi["att_h2"]),
                    (mi["mlp_h1"], mi["mlp_h2"]), mi["heads"], mi["d_head"], mi["d_time"], mi["gsu_d"], mi["topk"],
                    alpha=0.0, recency=mi.get("recency", 0) == 1)
    p, buf = m.named_for_c()
    with torch.no_grad():
        for k, v in dict(p, **buf).items():
            v.copy_(t[k])
    m.eval()
    with open(a.dump) as f:
        n, b, now = (int(x) for x in f.readline().split())
        seq = [tuple(int(x) for x in f.readline().split()) for _ in range(n)]
        cand = [f.readline().split() for _ in range(b)]
    s_item = torch.tensor([x[0] for x in seq])
    s_cat = torch.tensor([x[1] for x in seq])
    s_ts = torch.tensor([x[2] for x in seq], dtype=torch.int64)
    c_item = torch.tensor([int(x[0]) for x in cand])
    c_cat = torch.tensor([int(x[1]) for x in cand])
    want = torch.tensor([float(x[2]) for x in cand], dtype=torch.float64)
    S, K = mi.get("short_len", 50), m.topk

    def forward():
        with torch.no_grad():
            ea = m.embed(c_item, c_cat)                                         # (B, E)
            es = m.embed(s_item[-S:], s_cat[-S:])                               # (S, E)
            B, E = ea.shape
            sl = es.shape[0]
            esx, eax = es[None].expand(B, sl, E), ea[:, None, :].expand(B, sl, E)
            sc = m.att3(torch.sigmoid(m.att2(torch.sigmoid(m.att1(torch.cat([esx, eax, esx - eax, esx * eax], -1))))))
            v = (sc.squeeze(-1)[:, :, None] * esx).sum(1)
            el = m.embed(s_item, s_cat)                                         # (N, E)
            N = el.shape[0]
            if soft:
                r = (ea @ m.gsu_wa.T) @ (el @ m.gsu_wb.T).T                      # (B, N)
                idx = torch.topk(r, min(K, N), dim=1).indices.sort(1).values
                lens = torch.full((B,), idx.shape[1])
            else:  # each candidate's newest K of its category: the sequence sorted by (category, time) once
                order = torch.argsort(s_cat * N + torch.arange(N))
                cats_sorted = s_cat[order]
                end = torch.searchsorted(cats_sorted, c_cat, right=True)
                lens = (end - torch.searchsorted(cats_sorted, c_cat)).clamp(max=K)
                pos = ((end - lens)[:, None] + torch.arange(K)[None, :]).clamp(max=N - 1)
                idx = order[pos]
            el_sel = el[idx]                                                    # (B, K, E)
            minutes = (now - s_ts[idx]).clamp(min=0) // 60 + 1
            buckets = torch.zeros_like(minutes)
            for j in range(1, gen_esu.N_BUCKETS):
                buckets += minutes >= (1 << j)
            u = gen_esu.esu(ea, el_sel, lens, buckets, m.esu_wa, m.esu_wb, m.time_emb, m.heads, m.d_head)
            parts = [ea, v, ea * v, u]
            if m.recency is not None:  # the time since the newest behavior, the same for every candidate
                parts.append(m.recency[gen_esu.bucket(now - s_ts[-1])].expand(B, -1))
            return torch.sigmoid(m.head(torch.cat(parts, -1)))

    got = forward().double()
    err = (got - want).abs().max().item()
    for _ in range(3):
        forward()
    times = []
    for _ in range(a.calls):
        t0 = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t0)
    times.sort()
    pct = lambda q: 1e3 * times[int((len(times) - 1) * q)]  # noqa: E731
    print(json.dumps({"max_abs_err": err, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "mean_ms":
                      1e3 * sum(times) / len(times)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/request")
    ap.add_argument("--users", type=int, default=800)
    ap.add_argument("--calls", type=int, default=50, help="timed calls per measurement")
    ap.add_argument("--runs", type=int, default=3, help="alternations of lsim and PyTorch")
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--dump", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return torch_worker(a)
    lsim, drv = tools(a.build, "lsim", "bench_request")
    idx, ckpts = request_data(lsim, a.work, a.users, ("sim-hard", "sim-soft"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    results = {}
    for kind, ckpt in ckpts.items():
        dump = os.path.join(a.work, kind + ".request.txt")
        c_runs, t_runs = [], []
        for r in range(a.runs):
            c_runs.append(json.loads(run([drv, "--index", idx, "--model", ckpt, "--user", "1", "--now", str(NOW),
                                          "--long-max", "54000", "--runs", str(a.calls), "--dump", dump], env=env)))
            t_runs.append(json.loads(run(["/usr/bin/python3", os.path.abspath(__file__), "--worker", "--model", ckpt,
                                          "--dump", dump, "--calls", str(a.calls)], env=env)))
        th = json.loads(run([drv, "--index", idx, "--model", ckpt, "--user", "1", "--now", str(NOW),
                             "--runs", "5", "--threads", a.threads, "--seconds", str(a.seconds), "--users", "100"],
                            env=env))["threads"]
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        results[kind] = {
            "behaviors": c_runs[0]["behaviors"], "candidates": c_runs[0]["candidates"],
            "lsim_p50_ms": med(c_runs, "p50_ms"), "lsim_p99_ms": med(c_runs, "p99_ms"),
            "torch_p50_ms": med(t_runs, "p50_ms"), "torch_p99_ms": med(t_runs, "p99_ms"),
            "max_abs_err": max(x["max_abs_err"] for x in t_runs), "threads": th}
        results[kind]["speedup_p50"] = results[kind]["torch_p50_ms"] / results[kind]["lsim_p50_ms"]
    print(f"\nOne request: user 1 ({results['sim-hard']['behaviors']} behaviors, all searched), "
          f"{results['sim-hard']['candidates']} candidates, 1 thread, median of {a.runs} runs of {a.calls} calls; "
          f"{time.strftime('%Y-%m-%d')}.\n")
    print("| model | lsim p50 ms | lsim p99 ms | PyTorch p50 ms | PyTorch p99 ms | speedup (p50) "
          "| max abs score diff |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for kind, r in results.items():
        ok &= r["max_abs_err"] <= TOL
        print(f"| {kind} (DIN branch) | {r['lsim_p50_ms']:.2f} | {r['lsim_p99_ms']:.2f} | {r['torch_p50_ms']:.2f} | "
              f"{r['torch_p99_ms']:.2f} | {r['speedup_p50']:.1f}x | {r['max_abs_err']:.1e} |")
    print(f"\nThroughput: requests of 100 users (200 candidates each) for {a.seconds:.0f} s per thread count; "
          "every score checked against the one-thread score of the same request.\n")
    print("| model | threads | QPS | vs 1 thread | wrong scores | errors |")
    print("|---|---|---|---|---|---|")
    for kind, r in results.items():
        q1 = r["threads"][0]["qps"]
        for t in r["threads"]:
            ok &= t["wrong_scores"] == 0 and t["errors"] == 0
            print(f"| {kind} | {t['threads']} | {t['qps']:.0f} | {t['qps'] / q1:.2f}x | {t['wrong_scores']} | "
                  f"{t['errors']} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if not ok:
        sys.exit("FAILED: scores differ from PyTorch beyond 1e-4, or a thread got a wrong score or an error")


if __name__ == "__main__":
    main()
