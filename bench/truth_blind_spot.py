#!/usr/bin/python3
"""truth_blind_spot.py: how much of the truth's AUC comes from knowing "this request is
inside a session of another category", which no lsim model sees (the short-term branch
has no time; the ESU's time buckets cover only the behaviors it attends to).

On a log of `lsim gen log` with the default behavior model (docs/GENERATOR.md), it
scores the last day's events (positives) and one popularity-drawn item each (negatives)
twice with the truth's formula:
  truth-like  as the generator's truth: inside a session (the last event less than
              30 minutes before), a candidate of another category has probability 0;
  blind       the same, but such a candidate is scored as at a session start
              (keep probability 0.2 instead of 1 for the last category).
and prints both AUCs. Approximations, so the absolute AUCs differ slightly from `lsim
eval --truth`: the catalog popularity is replaced by the log's counts before the last
day, and theme_conc 5, item_conc 20, carry 0.3 over 1 day are the defaults.

    bench/truth_blind_spot.py LOG.csv
"""
import sys, random, math, collections

path = sys.argv[1]
ev = collections.defaultdict(list)
for line in open(path):
    u, i, c, t, ts = line.split(','); ev[int(u)].append((int(ts), int(i), int(c)))
last = max(e[-1][0] for e in ev.values()); split = last - last % 86400
pop = collections.Counter(); catof = {}
for u, es in ev.items():
    for ts, i, c in es:
        catof[i] = c
        if ts < split: pop[i] += 1
items = list(pop); w = [pop[i] for i in items]; tot = sum(w)
# the catalog's popularity pi and q are approximated by the counts before the split
catpop = collections.Counter()
for i, n in pop.items(): catpop[catof[i]] += n
A, BETA, H, TAU = 5.0, 20.0, 0.3, 86400.0
def prob(hist, ts, i, lite):
    c = catof.get(i)
    if c is None: return 1e-12
    runs = collections.Counter(); nr = 0; nc = 0; ni = 0
    for k, (t, it, cc) in enumerate(hist):
        if k == 0 or hist[k-1][2] != cc: runs[cc] += 1; nr += 1
        nc += cc == c; ni += it == i
    urn = (A * catpop[c] / tot + runs[c]) / (A + nr)
    lt, _, lc = hist[-1]
    if ts - lt <= 1800:
        keep = 1.0
        if lite and lc != c: keep = 0.2  # the model cannot tell "in session, another category" from a session start
    else: keep = H * math.exp(-(ts - lt) / TAU)
    pc = keep * (lc == c) + (1 - keep) * urn
    q = pop[i] / catpop[c] if catpop[c] else 1e-9
    return pc * (BETA * q + ni) / (BETA + nc)
random.seed(1)
rows = []
for u, es in ev.items():
    for k, (ts, i, c) in enumerate(es):
        if ts < split or k == 0 or es[k-1][0] == ts: continue
        hist = [e for e in es[:k]]
        neg = random.choices(items, w)[0]
        for it, lab in ((i, 1), (neg, 0)):
            qn = pop[it] / tot if pop[it] else 1e-9
            rows.append((lab, prob(hist, ts, it, False) / qn, prob(hist, ts, it, True) / qn, ts - es[k-1][0] <= 1800))
def auc(rows, col):
    s = sorted(rows, key=lambda r: r[col]); npos = sum(r[0] for r in rows); nneg = len(rows) - npos
    negs = 0; acc = 0  # negatives ranked below each positive
    for r in s:
        if r[0]: acc += negs
        else: negs += 1
    return acc / (npos * nneg)
print("samples", len(rows), "in-session share of positives", sum(r[3] for r in rows if r[0]) / sum(r[0] for r in rows))
print("truth-like AUC %.4f, blind AUC %.4f, difference %.4f" % (auc(rows, 1), auc(rows, 2), auc(rows, 1) - auc(rows, 2)))
