#!/usr/bin/python3
"""bench_train.py: training speed of lsim against the PyTorch reference models,
training the same model on the same samples at the same batch size and thread
count, in one run.

For each model (din, avgpool-din, sim-hard, sim-soft, sim-soft-time; --models
picks some) and each thread count N:
  lsim     build/bench_train (bench/bench_train.c) draws --steps training batches
           of --batch samples from the index exactly as `lsim train` does, and
           times --steps steps of what `lsim train` does per step (training
           forward, backward, Adam lr 1e-3), --rounds times from the same initial
           weights (median samples/s). The mini-batch aware regularization is off on
           both sides. It writes the initial weights, the batches and its per-step
           losses to a safetensors file.
  PyTorch  a worker process (Debian's PyTorch, float32, train mode,
           torch.set_num_threads(N)) loads that file into the reference models of
           tests/golden (gen_din.DIN, gen_sim.SIM with its Head and Dice), and
           trains them on the same batches with torch.optim.Adam(lr=1e-3):
           zero_grad, forward, BCE (plus alpha L_GSU for soft search), backward,
           step; median samples/s over --rounds. SIM's forward is written batched
           (its golden forward loops over the samples in Python for the top-K and
           the time buckets): the same computation, vectorized, as bench_models.py
           does for inference. The first step's loss must equal lsim's (relative
           difference <= 1e-4), or the script fails: the two train the same thing.
Both sides use the same OpenBLAS, OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = N,
OMP_WAIT_POLICY=PASSIVE unless set. lsim and PyTorch alternate model by model,
--runs times; the ratio is the median of the per-run ratios.

The index: --index DIR, or by default a fresh `lsim gen log --users 2000 --seed 1`
indexed under --work.

    bench/bench_train.py [--runs 3] [--steps 40] [--batch 256] [--threads 1,2]
                         [--models din,sim-soft-time] [--build build] [--index DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
KINDS = ["din", "avgpool-din", "sim-hard", "sim-soft", "sim-soft-time"]
LABELS = {"din": "DIN", "avgpool-din": "avg-pooling long DIN", "sim-hard": "SIM hard",
          "sim-soft": "SIM soft", "sim-soft-time": "SIM soft + time"}
TOL = 1e-4


def torch_worker(a):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    sys.path.insert(0, GOLDEN)
    import gen_din  # noqa: E402
    import gen_sim  # noqa: E402
    import safetensors_io  # noqa: E402
    torch.set_default_dtype(torch.float32)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_sim  # noqa: E402  (the batched SIM forward, shared with bench_models.py)

    t, meta = safetensors_io.load(a.files[0])
    meta = {k[5:]: v for k, v in meta.items() if k.startswith("lsim.")}
    kind = meta["model"]
    mi = lambda k: int(meta[k])  # noqa: E731
    att, mlp = (mi("att_h1"), mi("att_h2")), (mi("mlp_h1"), mi("mlp_h2"))
    steps = t["out.loss"].shape[0]
    batches = []
    for k in range(steps):
        b = {}
        for name in ("target_item", "target_cat", "hist_item", "hist_cat", "hist_len", "long_item", "long_cat",
                     "long_len", "long_ts", "now", "label"):
            key = f"b{k}.{name}"
            if key in t:
                v = t[key]
                b[name] = v.long() if v.dtype in (torch.int32, torch.int64) else v
        batches.append(b)

    def build():
        if kind in ("din", "avgpool-din"):
            m = gen_din.DIN(mi("n_items"), mi("n_cats"), mi("d_item"), mi("d_cat"), att, mlp,
                            att_softmax=bool(mi("att_softmax")), momentum=float(meta["dice_momentum"]),
                            long_avgpool=kind == "avgpool-din")
        else:
            m = gen_sim.SIM(mi("n_items"), mi("n_cats"), kind == "sim-soft", mi("d_item"), mi("d_cat"), att, mlp,
                            mi("heads"), mi("d_head"), mi("d_time"), mi("gsu_d"), mi("topk"),
                            float(meta["alpha"]), momentum=float(meta["dice_momentum"]),
                            recency=meta.get("recency", "0") == "1", gsu_softmax=meta.get("gsu_softmax", "0") == "1")
        p, buf = m.named_for_c()
        with torch.no_grad():
            for k, v in dict(p, **buf).items():
                if tuple(v.shape) != tuple(t[k].shape):
                    raise SystemExit(f"{k}: shape {tuple(t[k].shape)} in the file, {tuple(v.shape)} in PyTorch")
                v.copy_(t[k])
        return m.train()

    def loss_of(m, bt):
        if kind in ("din", "avgpool-din"):
            logit = m(bt["target_item"], bt["target_cat"], bt["hist_item"], bt["hist_cat"], bt["hist_len"],
                      bt.get("long_item"), bt.get("long_cat"), bt.get("long_len"))
            return F.binary_cross_entropy_with_logits(logit, bt["label"])
        logit, aux = torch_sim.sim_batched(m, bt, aux=True)
        return F.binary_cross_entropy_with_logits(logit, bt["label"]) + m.alpha * aux

    rates, first = [], None
    samples = sum(int(b["label"].shape[0]) for b in batches)
    for r in range(a.rounds + 1):  # the first round warms up
        m = build()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        for k, bt in enumerate(batches):
            opt.zero_grad()
            loss = loss_of(m, bt)
            loss.backward()
            opt.step()
            if r == 0 and k == 0:
                first = float(loss)
        if r:
            rates.append(samples / (time.perf_counter() - t0))
    want = float(t["out.loss"][0])
    if abs(first - want) > TOL * abs(want):
        raise SystemExit(f"{kind}: the first step's loss is {first} in PyTorch, {want} in lsim")
    print(json.dumps({"kind": kind, "samples_per_s": statistics.median(rates), "first_loss": first}))


def run_c(driver, kind, index, path, a, env):
    k = "sim-soft" if kind == "sim-soft-time" else kind
    cmd = [driver, k, index, path, str(a.steps), str(a.batch), str(a.rounds)] + (["time"] if kind.endswith("time") else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def run_torch(path, n, a, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(n), "--rounds", str(a.rounds), path]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"PyTorch worker failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes over the batches per measurement")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="din,sim-soft-time")
    ap.add_argument("--build", default="build")
    ap.add_argument("--index")
    ap.add_argument("--work", default="bench-out/train")
    ap.add_argument("--json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        torch_worker(a)
        return
    driver, lsim = os.path.join(a.build, "bench_train"), os.path.join(a.build, "lsim")
    for x in (driver, lsim):
        if not os.access(x, os.X_OK):
            sys.exit(f"{x} is missing: build first (scripts/build.sh)")
    kinds = [k for k in a.models.split(",") if k]
    if any(k not in KINDS for k in kinds):
        sys.exit(f"--models: known are {', '.join(KINDS)}")
    os.makedirs(a.work, exist_ok=True)
    index = a.index
    if not index:
        index = os.path.join(a.work, "idx")
        log = os.path.join(a.work, "log.csv")
        subprocess.run([lsim, "gen", "log", "--users", "2000", "--seed", "1", "--out", log], check=True,
                       capture_output=True)
        subprocess.run([lsim, "index", "build", "--index", index, "--input", log, "--force"], check=True,
                       capture_output=True)
    threads = [int(x) for x in a.threads.split(",")]
    wait = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    res = {(k, n): [] for k in kinds for n in threads}
    for run in range(a.runs):
        for n in threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n), OMP_WAIT_POLICY=wait)
            for k in kinds:
                print(f"# run {run + 1}/{a.runs}, {n} thread(s): {k}", file=sys.stderr)
                path = os.path.join(a.work, f"{k}.safetensors")
                c = run_c(driver, k, index, path, a, env)
                t = run_torch(path, n, a, env)
                res[(k, n)].append((c, t))
    rows = []
    print(f"\nBatch {a.batch}, {a.steps} steps per pass, medians of {a.rounds} passes, then of {a.runs} runs "
          f"(the speedup: median of the per-run ratios); OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}; {time.strftime('%Y-%m-%d')}.\n")
    print("| model | threads | lsim samples/s | PyTorch samples/s | speedup |")
    print("|---|---|---|---|---|")
    for n in threads:
        for k in kinds:
            rs = res[(k, n)]
            c = statistics.median(x[0]["samples_per_s"] for x in rs)
            t = statistics.median(x[1]["samples_per_s"] for x in rs)
            sp = statistics.median(x[0]["samples_per_s"] / x[1]["samples_per_s"] for x in rs)
            rows.append({"kind": k, "threads": n, "lsim": c, "torch": t, "speedup": sp})
            print(f"| {LABELS[k]} | {n} | {c:.0f} | {t:.0f} | {sp:.2f}x |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "steps": a.steps, "batch": a.batch, "runs": a.runs}, f, indent=1)


if __name__ == "__main__":
    main()
