#!/usr/bin/python3
"""bench_models.py: the forward pass of each lsim model against the same model in
PyTorch, on the same inputs and thread count, in one run.

For each model (din, avgpool-din, sim-hard, sim-soft, sim-soft-time, dien, dsin;
--models picks some) and each thread count N:
  lsim     build/bench_models (bench/bench_models.c) builds one request (one user,
           B = 200 candidates, each carrying the same 50 short-term behaviors and
           the same long-term sequence: 50 behaviors for avgpool-din and sim-hard,
           1,000 behaviors searched down to the top 50 for sim-soft*; for dsin the
           50 behaviors have timestamps that cut them into sessions), times
           din_forward / sim_forward / dien_forward / dsin_forward in inference
           mode (median of --rounds after warm-up), times the parts of that forward
           (attention, GSU, MLP head, embeddings, the rest), counts their FLOPs,
           and times OpenBLAS cblas_sgemm in the same process. It writes the
           weights, the request and its logits to a safetensors file.
  PyTorch  a worker process (Debian's PyTorch, float32, eval mode, torch.no_grad(),
           torch.set_num_threads(N)) loads that file into the reference models of
           tests/golden (gen_din.DIN, gen_sim.SIM, gen_dien.DIEN, gen_dsin.DSIN, with
           their Head and Dice), checks its logits against lsim's (max |difference| over
           max |logit| <= 1e-4, or the script fails), and times the forward
           (median of --rounds after warm-up) in two forms:
             golden      the tests/golden forward code as written. For DIEN, gru_ref
                         keeps its mask in float64, which fails on float32 weights,
                         so a copy with the mask in the input's dtype is used.
             vectorized  the same function written for speed where the golden code
                         loops in Python: SIM's per-candidate top-K and time
                         buckets become batched torch.topk / comparisons; DIEN's
                         extractor is torch.nn.GRU (nn_rnn.h's exact conversion)
                         and its AUGRU projects the inputs in one GEMM. DSIN's
                         sessions are cut and gathered with tensor operations
                         instead of Python loops over samples and sessions (the
                         transformer block, Bi-LSTM and units as in the golden
                         code). DIN's golden code is already batched (no second
                         form).
           The speedup is against the faster of the two. The float64 golden forward
           is checked against lsim too (the numerical truth).
Both sides use the same OpenBLAS (PyTorch's BLAS here is the system libblas.so.3,
OpenBLAS pthreads), with OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = N and
OMP_WAIT_POLICY=PASSIVE unless set (spinning OpenMP threads starve OpenBLAS's on
2 cores). lsim and PyTorch alternate model by model, --runs times.
OPENBLAS_CORETYPE is left as the environment sets it, and reported.

It prints Markdown tables for docs/BENCHMARKS.md; --json writes every number.
Run from the repository root after ./test.sh or scripts/build.sh:

    bench/bench_models.py [--runs 3] [--rounds 30] [--threads 1,2] [--build build]
                          [--models din,dsin,...]

To add a model: a kind in bench/bench_models.c (model_new, parts_forward,
count_flops, write_file's metadata), then its name in KINDS below, a builder in
build() and a forward in torch_worker() from its reference class in tests/golden.
Until its C side exists, a model can be listed in PENDING: its rows then print as
a placeholder.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
KINDS = ["din", "avgpool-din", "sim-hard", "sim-soft", "sim-soft-time", "dien", "dsin"]
PENDING = {}  # models whose C side does not exist yet, name -> why: a placeholder row says so
TOL = 1e-4  # max |lsim - PyTorch| / max |PyTorch logit|
LABELS = {
    "din": "DIN", "avgpool-din": "avg-pooling long DIN (K=50)", "sim-hard": "SIM hard (K=50)",
    "sim-soft": "SIM soft (1,000 -> top 50)", "sim-soft-time": "SIM soft + time (1,000 -> top 50)",
    "dien": "DIEN", "dsin": "DSIN",
}


# ---------------------------------------------------------------- PyTorch worker

def torch_worker(a):
    import torch
    import torch.nn as nn

    torch.set_num_threads(a.threads)
    sys.path.insert(0, GOLDEN)
    import gen_dien  # noqa: E402  (imports gen_nn_rnn, which sets the default dtype to float64)
    import gen_din  # noqa: E402
    import gen_dsin  # noqa: E402
    import gen_sim  # noqa: E402
    import safetensors_io  # noqa: E402
    torch.set_default_dtype(torch.float32)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_sim  # noqa: E402  (the batched SIM forward, shared with bench_train.py)
    golden_gru_ref = gen_dien.gru_ref

    def gru_ref32(x, lens, W, U, b, att=None):
        """gen_nn_rnn.gru_ref with the mask in x's dtype (the original casts it to float64)."""
        B, T, _ = x.shape
        H = U.shape[1]
        h = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            m = (lens > t).to(x.dtype).unsqueeze(1)
            xp = x[:, t] @ W.T + b
            rp = h @ U.T
            u = torch.sigmoid(xp[:, :H] + rp[:, :H])
            r = torch.sigmoid(xp[:, H:2 * H] + rp[:, H:2 * H])
            hh = torch.tanh(xp[:, 2 * H:] + r * rp[:, 2 * H:])
            if att is not None:
                u = att[:, t:t + 1] * u
            hn = (1 - u) * h + u * hh
            outs.append(m * hn)
            h = m * hn + (1 - m) * h
        return torch.stack(outs, 1), h

    def meta_int(meta, k):
        return int(meta[k])

    def build(kind, meta):
        n_items, n_cats = meta_int(meta, "n_items"), meta_int(meta, "n_cats")
        d_item, d_cat = meta_int(meta, "d_item"), meta_int(meta, "d_cat")
        att = (meta_int(meta, "att_h1"), meta_int(meta, "att_h2"))
        mlp = (meta_int(meta, "mlp_h1"), meta_int(meta, "mlp_h2"))
        if kind in ("din", "avgpool-din"):
            return gen_din.DIN(n_items, n_cats, d_item, d_cat, att, mlp, att_softmax=bool(meta_int(meta, "att_softmax")),
                               long_avgpool=kind == "avgpool-din")
        if kind.startswith("sim-"):
            return gen_sim.SIM(n_items, n_cats, kind != "sim-hard", d_item, d_cat, att, mlp,
                               meta_int(meta, "heads"), meta_int(meta, "d_head"), meta_int(meta, "d_time"),
                               meta_int(meta, "gsu_d"), meta_int(meta, "topk"), alpha=0.0,
                               recency=meta.get("recency", "0") == "1")
        if kind == "dien":
            return gen_dien.DIEN(n_items, n_cats, d_item, d_cat, mlp)
        if kind == "dsin":
            if meta_int(meta, "session_gap") != gen_dsin.GAP:
                raise SystemExit(f"dsin: session_gap {meta['session_gap']}, gen_dsin.DSIN has {gen_dsin.GAP}")
            return gen_dsin.DSIN(n_items, n_cats, d_item, d_cat, meta_int(meta, "max_sessions"),
                                 meta_int(meta, "session_len"), meta_int(meta, "heads"), meta_int(meta, "d_ffn"),
                                 meta_int(meta, "d_lstm"), mlp, meta_int(meta, "min_session_len"))
        raise SystemExit(f"unknown model kind {kind}")

    def load_weights(model, t, path):
        p, buf = model.named_for_c()
        want = dict(p, **buf)
        have = {k for k in t if not k.startswith(("in.", "out."))}
        if set(want) != have:
            raise SystemExit(f"{path}: tensors differ from the PyTorch model's: only in the file "
                             f"{sorted(have - set(want))}, only in PyTorch {sorted(set(want) - have)}")
        with torch.no_grad():
            for k, v in want.items():
                parts = v if isinstance(v, tuple) else None  # DSIN's Bi-LSTM: (forward, reverse), stacked in the file
                shape = (len(parts),) + tuple(parts[0].shape) if parts else tuple(v.shape)
                if shape != tuple(t[k].shape):
                    raise SystemExit(f"{path}: {k}: shape {tuple(t[k].shape)}, PyTorch has {shape}")
                if parts:
                    for i, x in enumerate(parts):
                        x.copy_(t[k][i])
                else:
                    v.copy_(t[k])

    def dien_gru(m):
        """torch.nn.GRU equal to DIEN's extractor GRU (the conversion of models/nn_rnn.h, exact: no b_hn)."""
        e = m.gru_u.shape[1]
        g = nn.GRU(e, e, batch_first=True)
        W, U, b = m.gru_w.detach(), m.gru_u.detach(), m.gru_b.detach()
        with torch.no_grad():
            g.weight_ih_l0.copy_(torch.cat([W[e:2 * e], -W[:e], W[2 * e:]]))
            g.weight_hh_l0.copy_(torch.cat([U[e:2 * e], -U[:e], U[2 * e:]]))
            g.bias_ih_l0.copy_(torch.cat([b[e:2 * e], -b[:e], b[2 * e:]]))
            g.bias_hh_l0.zero_()
        return g.eval()

    def dien_fast(m, g, bt):
        """gen_dien.DIEN.forward at inference: nn.GRU extractor, AUGRU with one input GEMM."""
        ea = m.embed(bt["target_item"], bt["target_cat"])
        es = m.embed(bt["hist_item"], bt["hist_cat"])
        b, s, e = es.shape
        lens = bt["hist_len"]
        if int(lens.min()) < s:
            raise SystemExit("dien_fast: every history must be full (nn.GRU runs unpacked)")
        h, _ = g(es)
        sc = (h * (ea @ m.att_w.T)[:, None, :]).sum(-1)
        att = torch.softmax(sc, -1)
        xp = torch.addmm(m.aug_b, h.reshape(b * s, e), m.aug_w.T).view(b, s, 3 * e)
        hs = h.new_zeros(b, e)
        for t in range(s):
            rp = hs @ m.aug_u.T
            x = xp[:, t]
            u = att[:, t:t + 1] * torch.sigmoid(x[:, :e] + rp[:, :e])
            r = torch.sigmoid(x[:, e:2 * e] + rp[:, e:2 * e])
            hh = torch.tanh(x[:, 2 * e:] + r * rp[:, 2 * e:])
            hs = (1 - u) * hs + u * hh
        pool = es.sum(1)
        return m.head(torch.cat([ea, hs, pool, ea * pool], -1))

    def dsin_fast(m, bt):
        """gen_dsin.DSIN.forward at inference with the sessions cut and gathered by tensor operations."""
        K, T, H = m.K, m.T, m.H
        ea = m.embed(bt["target_item"], bt["target_cat"])
        B, e = ea.shape
        ts, lens = bt["hist_ts"], bt["hist_len"]
        S = ts.shape[1]
        ar = torch.arange(S)
        valid = ar[None, :] < lens[:, None]
        brk = torch.zeros(B, S, dtype=torch.bool)
        brk[:, 1:] = (ts[:, 1:] - ts[:, :-1]) > gen_dsin.GAP  # a new session (a negative gap is no gap)
        sid = torch.where(valid, (brk & valid).long().cumsum(1), torch.full_like(ts, S))  # session id, S at padding
        cnt = torch.zeros(B, S + 1, dtype=torch.long).scatter_add_(1, sid, torch.ones_like(sid))[:, :S]  # (B, ids)
        kept = cnt >= max(m.min_len, 1)
        newer = kept.flip(1).long().cumsum(1).flip(1) - kept.long()  # kept sessions after each id
        n_sess = kept.sum(1).clamp(max=K)
        start = cnt.cumsum(1) - cnt  # the sessions are contiguous: first position of each id
        sc = sid.clamp(max=S - 1)
        c_b, r_b = cnt.gather(1, sc), newer.gather(1, sc)
        from_end = c_b - 1 - (ar[None, :] - start.gather(1, sc))
        take = valid & kept.gather(1, sc) & (r_b < K) & (from_end < T)
        bi, ji = take.nonzero(as_tuple=True)
        slot = (n_sess[:, None] - 1 - r_b)[bi, ji]
        t = (c_b.clamp(max=T) - 1 - from_end)[bi, ji]
        x = torch.zeros(B, K, T, e)
        x[bi, slot, t] = m.embed(bt["hist_item"][bi, ji], bt["hist_cat"][bi, ji]) + m.be_k[slot, None] + \
            m.be_t[t, None] + m.be_c[None, :]
        slen = torch.zeros(B * K, dtype=torch.long).index_add_(0, bi * K + slot, torch.ones_like(bi))
        y = gen_dsin.encode(m.enc, x.view(B * K, T, e), slen)
        ik = (y.sum(1) / slen.clamp(min=1)[:, None]).view(B, K, e)
        hs = torch.zeros(B, K, H)
        keep = n_sess > 0
        if keep.any():
            pk = nn.utils.rnn.pack_padded_sequence(ik[keep], n_sess[keep], batch_first=True, enforce_sorted=False)
            o, _ = m.lstm(pk)
            o, _ = nn.utils.rnn.pad_packed_sequence(o, batch_first=True, total_length=K)
            hs = hs.index_add(0, keep.nonzero().squeeze(1), o[..., :H] + o[..., H:])
        u_i = m.unit(ik, ea @ m.att_i.T, n_sess)
        u_h = m.unit(hs, ea @ m.att_h.T, n_sess)
        return m.head(torch.cat([ea, u_i, u_h], -1))

    def timed(fn, rounds):
        with torch.no_grad():
            for _ in range(5):
                fn()
            ts = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1e3

    def as64(fn):
        """Runs fn with float64 as the default dtype (gen_nn_rnn.gru_ref makes its state with it)."""
        def run():
            torch.set_default_dtype(torch.float64)
            try:
                return fn()
            finally:
                torch.set_default_dtype(torch.float32)
        return run

    def rel_err(x, c):
        return float((x.double() - c.double()).abs().max() / c.double().abs().max())

    for path in a.files:
        t, meta = safetensors_io.load(path)
        kind = meta["kind"]
        model = build(kind, meta)
        load_weights(model, t, path)
        model.eval()
        bt = {k[3:]: v.long() for k, v in t.items() if k.startswith("in.")}
        c = t["out.logits"]
        m64 = copy.deepcopy(model).double().eval()
        if kind in ("din", "avgpool-din"):
            args = [bt["target_item"], bt["target_cat"], bt["hist_item"], bt["hist_cat"], bt["hist_len"],
                    bt.get("long_item"), bt.get("long_cat"), bt.get("long_len")]
            golden = lambda: model(*args)  # noqa: E731
            golden64 = as64(lambda: m64(*args))
            fast = None
        elif kind.startswith("sim-"):
            golden = lambda: model(bt, False)[0]  # noqa: E731
            golden64 = as64(lambda: m64(bt, False)[0])
            fast = lambda: torch_sim.sim_batched(model, bt)[0]  # noqa: E731
        elif kind == "dsin":
            golden = lambda: model(bt)[0]  # noqa: E731
            golden64 = as64(lambda: m64(bt)[0])
            fast = lambda: dsin_fast(model, bt)  # noqa: E731
        else:
            g = dien_gru(model)

            def golden():
                gen_dien.gru_ref = gru_ref32
                try:
                    return model(bt, False)[0]
                finally:
                    gen_dien.gru_ref = golden_gru_ref

            golden64 = as64(lambda: m64(bt, False)[0])
            fast = lambda: dien_fast(model, g, bt)  # noqa: E731
        with torch.no_grad():
            errs = {"golden64": rel_err(golden64(), c), "golden": rel_err(golden(), c)}
            if fast:
                errs["vectorized"] = rel_err(fast(), c)
        bad = {k: v for k, v in errs.items() if not v <= TOL}
        if bad:
            raise SystemExit(f"{path}: {kind}: PyTorch's logits differ from lsim's: {bad} "
                             f"(max |difference| / max |logit|; tolerance {TOL})")
        res = {"kind": kind, "threads": a.threads, "torch_threads": torch.get_num_threads(), "errors": errs,
               "golden_ms": timed(golden, a.rounds), "vectorized_ms": timed(fast, a.rounds) if fast else None,
               "torch": torch.__version__}
        print(json.dumps(res), flush=True)


# ---------------------------------------------------------------- the run

def run_c(driver, kind, path, rounds, b, env):
    p = subprocess.run([driver, kind, path, str(rounds), str(b)], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{driver} {kind} failed ({p.returncode}):\n{p.stderr}")
    r = json.loads(p.stdout)
    if r["parts_max_abs_diff"] > 1e-5:
        sys.exit(f"{kind}: the decomposed forward differs from the model's by {r['parts_max_abs_diff']}")
    return r


def run_torch(files, threads, rounds, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(threads), "--rounds", str(rounds)]
    p = subprocess.run(cmd + files, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"PyTorch worker failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return {r["kind"]: r for r in map(json.loads, p.stdout.strip().splitlines())}


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="alternations of lsim and PyTorch (default 3)")
    ap.add_argument("--rounds", type=int, default=30, help="timed forwards per measurement (default 30)")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    ap.add_argument("--b", type=int, default=200, help="candidates per request (default 200)")
    ap.add_argument("--models", default=",".join(KINDS + list(PENDING)),
                    help="models to run, comma-separated (default all: %(default)s)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="bench-out/models")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        torch_worker(a)
        return

    driver = os.path.join(a.build, "bench_models")
    if not os.access(driver, os.X_OK):
        sys.exit(f"{driver} is missing: build first (scripts/build.sh)")
    os.makedirs(a.work, exist_ok=True)
    threads = [int(x) for x in a.threads.split(",")]
    wanted = [x.strip() for x in a.models.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in KINDS and x not in PENDING]
    if unknown or not wanted:
        sys.exit(f"--models: unknown {unknown} (known: {', '.join(KINDS + list(PENDING))})")
    kinds = [k for k in KINDS if k in wanted]
    pending = {k: why for k, why in PENDING.items() if k in wanted}
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    c_res = {(k, n): [] for k in kinds for n in threads}
    t_res = {(k, n): [] for k in kinds for n in threads}
    # OpenMP threads that spin while OpenBLAS's own threads work starve them on a
    # 2-core machine (PyTorch's 2-thread forward was up to 20x slower); lsim does
    # not use OpenMP, so this only keeps the alternative out of that pathology.
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    for run in range(a.runs):
        for n in threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n), OMP_WAIT_POLICY=wait_policy)
            for k in kinds:  # lsim then PyTorch on each model, so that both see the same load
                print(f"# run {run + 1}/{a.runs}, {n} thread(s): {k}", file=sys.stderr)
                path = os.path.join(a.work, f"{k}.safetensors")
                c_res[(k, n)].append(run_c(driver, k, path, a.rounds, a.b, env))
                t_res[(k, n)].append(run_torch([path], n, a.rounds, env)[k])

    summary = {"runs": a.runs, "rounds": a.rounds, "b": a.b, "openblas_coretype": coretype,
               "omp_wait_policy": wait_policy, "models": kinds, "date": time.strftime("%Y-%m-%d"),
               "machine": f"{os.uname().machine}, {os.cpu_count()} cpus", "results": []}
    for n in threads:
        for k in kinds:
            cs, ts = c_res[(k, n)], t_res[(k, n)]
            best = [min(x for x in (t["golden_ms"], t["vectorized_ms"]) if x is not None) for t in ts]
            pm = {p: med([c["part_ms"][p] for c in cs]) for p in cs[0]["part_ms"]}
            pf = cs[0]["part_flops"]
            r = {
                "kind": k, "threads": n, "lsim_ms": med([c["forward_ms"] for c in cs]),
                "torch_golden_ms": med([t["golden_ms"] for t in ts]),
                "torch_vectorized_ms": med([t["vectorized_ms"] for t in ts]) if ts[0]["vectorized_ms"] else None,
                "speedup": med([b / c["forward_ms"] for b, c in zip(best, cs)]),
                "flops": cs[0]["flops"], "part_flops": pf, "part_ms": pm,
                "gflops": med([c["gflops"] for c in cs]),
                "att_gflops": med([c["part_gflops"]["attention"] for c in cs]),
                "gsu_gflops": med([c["part_gflops"]["gsu"] for c in cs]),
                "mlp_gflops": med([c["part_gflops"]["mlp"] for c in cs]),
                "sgemm_shape": cs[0]["sgemm"]["attention_shape"],
                "sgemm_gflops": med([c["sgemm"]["attention_gflops"] for c in cs]),
                "sgemm_head_shape": cs[0]["sgemm"]["head_shape"],
                "sgemm_head_gflops": med([c["sgemm"]["head_gflops"] for c in cs]),
                "sgemm_square_gflops": med([c["sgemm"]["square_gflops"] for c in cs]),
                "errors": {e: max(t["errors"][e] for t in ts) for e in ts[0]["errors"]},
                "blas_core": cs[0]["blas_core"], "blas_threads": cs[0]["blas_threads"],
                "torch_threads": ts[0]["torch_threads"], "torch": ts[0]["torch"],
            }
            if "sub_ms" in cs[0]:  # DSIN: the pieces of the attention part, and its sessions
                r["sub_ms"] = {p: med([c["sub_ms"][p] for c in cs]) for p in cs[0]["sub_ms"]}
                r["sub_flops"] = cs[0]["sub_flops"]
                r["dsin_sessions"] = cs[0]["dsin_sessions"]
            r["att_frac"] = r["att_gflops"] / r["sgemm_gflops"]
            r["mlp_frac"] = r["mlp_gflops"] / r["sgemm_gflops"]
            summary["results"].append(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)

    res = summary["results"]
    if not res:  # only placeholders selected
        for k, why in pending.items():
            print(f"| {LABELS[k]} | {why} | | | | | |")
        return
    r0 = res[0]
    ct = f"`OPENBLAS_CORETYPE={coretype}` (as the environment sets it)" if coretype else \
        "`OPENBLAS_CORETYPE` unset in this environment"
    print(f"\nOpenBLAS core: {r0['blas_core']}; {ct}. PyTorch {r0['torch']}, float32. "
          f"OMP_WAIT_POLICY={wait_policy}. B = {a.b} candidates per request; medians of {a.rounds} forwards, "
          f"then of {a.runs} runs (the speedup: median of the per-run ratios).")
    for n in threads:
        print(f"\n{n} thread{'s' if n > 1 else ''} (OPENBLAS_NUM_THREADS={n}, torch.set_num_threads({n})):\n")
        print("| model | lsim ms/request | PyTorch ms/request: golden code / vectorized | speedup | "
              "lsim GFLOP/s: total / attention / MLP | sgemm GFLOP/s | attention / MLP, fraction of sgemm |")
        print("|---|---|---|---|---|---|---|")
        for r in res:
            if r["threads"] != n:
                continue
            vec = f"{r['torch_vectorized_ms']:.2f}" if r["torch_vectorized_ms"] else "—"
            print(f"| {LABELS[r['kind']]} | {r['lsim_ms']:.2f} | {r['torch_golden_ms']:.2f} / {vec} | "
                  f"{r['speedup']:.2f}x | {r['gflops']:.1f} / {r['att_gflops']:.1f} / {r['mlp_gflops']:.1f} | "
                  f"{r['sgemm_gflops']:.1f} | {r['att_frac']:.2f} / {r['mlp_frac']:.2f} |")
        for k, why in pending.items():
            print(f"| {LABELS[k]} | {why} | | | | | |")
    print("\nWhere lsim's time goes (ms per request, median; MFLOP per request in parentheses):\n")
    print("| model | threads | embeddings | attention | GSU | MLP head | rest | GFLOP/s: GSU | sgemm: head shape, 1024^3 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in res:
        pm, pf = r["part_ms"], r["part_flops"]
        cell = lambda p: f"{pm[p]:.2f} ({pf[p] / 1e6:.1f})"  # noqa: E731
        gsu = f"{r['gsu_gflops']:.1f}" if pf["gsu"] else "—"
        print(f"| {LABELS[r['kind']]} | {r['threads']} | {pm['embed']:.2f} | {cell('attention')} | "
              f"{cell('gsu') if pf['gsu'] else '—'} | {cell('mlp')} | {pm['other']:.2f} | {gsu} | "
              f"{r['sgemm_head_gflops']:.1f}, {r['sgemm_square_gflops']:.1f} |")
    for r in res:
        if "sub_ms" in r:
            sm, sf, ss = r["sub_ms"], r["sub_flops"], r["dsin_sessions"]
            print(f"\n{LABELS[r['kind']]}, {r['threads']} thread{'s' if r['threads'] > 1 else ''}, its attention part "
                  f"(ms per request, median; MFLOP in parentheses): "
                  + ", ".join(f"{p} {sm[p]:.2f} ({sf[p] / 1e6:.1f})" for p in sm)
                  + f". Sessions of the history: {ss['all']}; kept (K, T cut): {ss['kept']}; "
                  f"{ss['rows']} session rows per request.")
    worst = {}
    for r in res:
        for e, v in r["errors"].items():
            worst[e] = max(worst.get(e, 0.0), v)
    shapes = sorted({tuple(r["sgemm_shape"]) for r in res})
    print("\nLogits: max |lsim - PyTorch| / max |logit| over all models: "
          + ", ".join(f"{e} {v:.1e}" for e, v in worst.items()) + f" (tolerance {TOL:g}).")
    print("sgemm shapes (M, N, K of out = A W^T, as nn_linear_forward calls it): "
          + ", ".join(f"{s[0]}x{s[1]}x{s[2]}" for s in shapes) + ".")


if __name__ == "__main__":
    main()
