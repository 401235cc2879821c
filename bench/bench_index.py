#!/usr/bin/env python3
"""bench_index.py: the behavior index against named alternatives, in one run.

On one `lsim gen log` file (default: 17,600 users, about 10.3M events) it measures:

  size    bytes_per_event of the index (data.mdb + lock.mdb), beside `zstd -3` of the
          same CSV, and its ratio to it;
  build   `lsim index build` wall time and peak RSS against
          `LC_ALL=C sort -t, -k1,1 -k5,5n` of the same file (the usual way to group
          a log by user), interleaved, median of --runs runs;
  search  hard search for the longest user (54,000 events): its 20 most frequent
          categories with K = 200 each, per request, against decoding the user's
          whole history and filtering it (bench/bench_hard_search.c), median of
          --runs runs of several hundred requests each.

It prints a Markdown table for docs/BENCHMARKS.md, and --json writes the numbers.
Only the standard library; run from the repository root after ./test.sh or
scripts/build.sh:

    bench/bench_index.py [--users 17600] [--runs 5] [--work DIR] [--build build]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd, env=None, stdout=subprocess.DEVNULL):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS in MB)."""
    full = ["/usr/bin/time", "-f", "%e %M"] + cmd
    t0 = time.monotonic()
    p = subprocess.run(full, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    last = p.stderr.strip().splitlines()[-1].split()
    return wall, int(last[1]) / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=17600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="bench-out/index")
    ap.add_argument("--build", default="build")
    ap.add_argument("--json", help="write the numbers here")
    a = ap.parse_args()

    lsim = os.path.join(a.build, "lsim")
    hs = os.path.join(a.build, "bench_hard_search")
    for b in (lsim, hs):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: build first (scripts/build.sh)")
    os.makedirs(a.work, exist_ok=True)
    log = os.path.join(a.work, "log.csv")
    idx = os.path.join(a.work, "idx")

    print(f"# gen log --users {a.users} --seed {a.seed}", file=sys.stderr)
    subprocess.run([lsim, "gen", "log", "--users", str(a.users), "--seed", str(a.seed), "--out", log], check=True)
    csv_bytes = os.path.getsize(log)
    with open(log, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))

    zst = log + ".zst"
    subprocess.run(["zstd", "-3", "-q", "-f", "-o", zst, log], check=True)
    zstd_bytes = os.path.getsize(zst)
    os.remove(zst)

    env = dict(os.environ, LC_ALL="C")
    sort_t, sort_rss, build_t, build_rss = [], [], [], []
    for r in range(a.runs):
        print(f"# run {r + 1}/{a.runs}: sort, build", file=sys.stderr)
        t, m = timed(["sort", "-t,", "-k1,1", "-k5,5n", log], env=env)
        sort_t.append(t)
        sort_rss.append(m)
        t, m = timed([lsim, "index", "build", "--index", idx, "--input", log, "--force"])
        build_t.append(t)
        build_rss.append(m)

    st = json.loads(subprocess.run([lsim, "index", "stats", "--index", idx, "--json"], check=True,
                                   capture_output=True, text=True).stdout)
    if st["events"] != lines:
        sys.exit(f"the index holds {st['events']} events, the log has {lines} lines")
    subprocess.run([lsim, "index", "verify", "--index", idx], check=True, stdout=subprocess.DEVNULL)

    searches = []
    for r in range(a.runs):
        out = subprocess.run([hs, idx, "1", "20", "200", "300"], check=True, capture_output=True, text=True).stdout
        searches.append(json.loads(out))
    med = lambda xs: statistics.median(xs)
    s_index = med([s["index_us"] for s in searches])
    s_flat = med([s["flat_decode_filter_us"] for s in searches])
    s_speed = med([s["speedup"] for s in searches])

    res = {
        "events": st["events"], "users": st["users"], "items": st["items"], "categories": st["categories"],
        "csv_bytes": csv_bytes, "index_bytes": st["bytes"], "bytes_per_event": st["bytes_per_event"],
        "zstd3_bytes": zstd_bytes, "zstd3_bytes_per_event": zstd_bytes / lines,
        "index_vs_zstd3": st["bytes"] / zstd_bytes,
        "build_s": med(build_t), "sort_s": med(sort_t), "build_vs_sort": med([b / s for b, s in zip(build_t, sort_t)]),
        "build_peak_rss_mb": max(build_rss), "sort_peak_rss_mb": max(sort_rss),
        "build_events_per_s": st["events"] / med(build_t),
        "search_user_events": searches[0]["user_events"], "search_categories": searches[0]["categories"],
        "search_k": searches[0]["k"], "search_events_returned": searches[0]["events_returned"],
        "search_index_us": s_index, "search_flat_us": s_flat, "search_speedup": s_speed,
        "runs": a.runs, "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)

    r = res
    print(f"""
| measure | lsim | alternative | ratio |
|---|---|---|---|
| index size, bytes per event ({r['events']:,} events) | {r['bytes_per_event']:.3f} | `zstd -3` of the CSV: {r['zstd3_bytes_per_event']:.3f} | {r['index_vs_zstd3']:.3f} |
| build time, s (median of {r['runs']}) | {r['build_s']:.2f} | `LC_ALL=C sort -t, -k1,1 -k5,5n`: {r['sort_s']:.2f} | {r['build_vs_sort']:.3f} |
| peak memory, MB | {r['build_peak_rss_mb']:.0f} | sort: {r['sort_peak_rss_mb']:.0f} | {r['build_peak_rss_mb'] / r['sort_peak_rss_mb']:.2f} |
| hard search, us per request ({r['search_categories']} categories x K={r['search_k']}, user of {r['search_user_events']:,} events) | {r['search_index_us']:.1f} | decode whole history + filter: {r['search_flat_us']:.1f} | {r['search_speedup']:.1f}x faster |

CSV: {r['csv_bytes']:,} bytes; index: {r['index_bytes']:,} bytes; {r['users']:,} users, {r['items']:,} items, {r['categories']:,} categories; build {r['build_events_per_s'] / 1e6:.2f} M events/s; {r['machine']}.""")


if __name__ == "__main__":
    main()
