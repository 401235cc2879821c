#!/usr/bin/python3
"""gen_log_ref.py: an independent Python implementation of `lsim gen log` written from
docs/GENERATOR.md (bit-exact: IEEE doubles, the same PRNG and deterministic exp/log).
tests/test_gen_log.c's golden sizes and FNV-1a hashes come from its output; it must
agree byte for byte with `lsim gen log` for any parameters, e.g.

    tests/golden/gen_log_ref.py 40 3 10 2000 theme_size=8 cat_conc=1.0 > ref.csv
    lsim gen log --users 40 --seed 3 --min-len 10 --max-len 2000 --theme-size 8 \
        --cat-conc 1.0 --out c.csv && cmp ref.csv c.csv

usage: gen_log_ref.py users seed min_len max_len [key=value ...] > log.csv"""
import math, sys
M64 = (1 << 64) - 1
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)
LN2_HI = 6.93147180369123816490e-01; LN2_LO = 1.90821492927058770002e-10
ATANH = [1.0 / (2 * k + 1) for k in range(12)]
EXPC = [1.0] + [1.0 / math.factorial(n) for n in range(1, 19)]
def log_det(x):
    m, e = math.frexp(x)
    if m < 0.70710678118654752440: m *= 2.0; e -= 1
    s = (m - 1.0) / (m + 1.0); s2 = s * s; p = ATANH[11]
    for k in range(10, -1, -1): p = ATANH[k] + s2 * p
    return float(e) * LN2_HI + (float(e) * LN2_LO + 2.0 * s * p)
def exp_det(x):
    if x < -745.0: return 0.0
    t = x * 1.44269504088896340736; k = int(t - 0.5 if t < 0 else t + 0.5)
    r = (x - float(k) * LN2_HI) - float(k) * LN2_LO; p = EXPC[18]
    for n in range(17, -1, -1): p = EXPC[n] + r * p
    return math.ldexp(p, k)
class Rng:
    def __init__(self, seed, user, stream):
        x = mix64(mix64(mix64((seed + 0x9e3779b97f4a7c15) & M64) ^ user) ^ ((stream + 0x632be59bd9b4e019) & M64))
        self.s = []
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & M64; self.s.append(mix64(x))
    def next(self):
        s = self.s; rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64
        out = (rotl((s[1] * 5) & M64, 7) * 9) & M64; t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
        return out
    def u01(self): return float(self.next() >> 11) * 2.0 ** -53
    def u01_open0(self): return float((self.next() >> 11) + 1) * 2.0 ** -53
    def exp1(self): return -log_det(self.u01_open0())
    def below(self, n):
        v = int(self.u01() * float(n)); return v if v < n else n - 1
def search(cum, lo, n, x):  # smallest k < n with x < cum[lo + k], else n - 1
    for k in range(n):
        if x < cum[lo + k]: return k
    return n - 1
def feistel24(x, key):
    l, r = x >> 12, x & 0xfff
    for rnd in range(4):
        f = mix64((key + rnd * 0x9e3779b97f4a7c15 + r) & M64) & 0xfff
        l, r = r, l ^ f
    return (l << 12) | r
def scramble(i, key):
    y = feistel24(i, key)
    while y >= 4999999: y = feistel24(y, key)
    return y + 1

def main():
    users, seed, min_len, max_len = (int(x) for x in sys.argv[1:5])
    P = dict(items=0, categories=0, alpha=1.1, days=180, end_ts=1512345600, theme_size=1, theme_conc=5.0,
             cat_conc=2.0, item_conc=20.0, sess_stay=1.0, sess_mean=6.0, carry=0.3, carry_days=1.0)
    for kv in sys.argv[5:]:
        k, v = kv.split('='); P[k] = float(v) if isinstance(P[k], float) else int(v)
    items, cats = P['items'], P['categories']
    if items == 0: items = min(4999999, max(1000, 20 * users, 5 * cats))
    if cats == 0: cats = min(items, max(200, items // 440))
    # catalog
    base = min(5, items // cats); rest = items - base * cats
    wsum = sum(1.0 / math.sqrt(float(c + 1)) for c in range(cats))
    cat_first = [0]; cat_cum = []; wcum = 0.0; prev = 0; pcum = 0.0
    for c in range(cats):
        wcum += 1.0 / math.sqrt(float(c + 1))
        cum = rest if c + 1 == cats else int(math.floor(float(rest) * wcum / wsum))
        cum = min(max(cum, prev), rest)
        cat_first.append(cat_first[-1] + base + cum - prev); prev = cum
        pcum += 1.0 / float(c + 1); cat_cum.append(pcum)
    max_n = max(cat_first[c + 1] - cat_first[c] for c in range(cats))
    rank_cum = []; h = 0.0
    for k in range(max_n):
        h += exp_det(-1.1 * log_det(float(k + 1))); rank_cum.append(h)
    cat_raw = [scramble(c, 0xbb67ae8584caa73b) for c in range(cats)]
    span = P['days'] * 86400; t0 = P['end_ts'] - span
    max_sess = min((span - 1) // 1801 + 1, max_len)
    out = sys.stdout
    for user in range(1, users + 1):
        r = Rng(seed, user, 0)
        t = r.exp1() / P['alpha']; L = max_len
        if user != 1 and t < 700.0:
            x = math.floor(float(min_len) * exp_det(t))
            if x < float(max_len): L = int(x)
        s_cap = max(1, span // 7200); mean = max(float(L) / float(s_cap), P['sess_mean'])
        sizes = []; left = L
        if mean <= 1.0:
            while left > 0:
                sz = 1 if len(sizes) + 1 < max_sess else left; sizes.append(sz); left -= sz
        log_cont = log_det(1.0 - 1.0 / mean) if mean > 1.0 else -1.0
        while left > 0:
            sz = left
            if len(sizes) + 1 < max_sess:
                k = math.floor(log_det(r.u01_open0()) / log_cont)
                if k + 1.0 < float(left): sz = int(k) + 1
            sizes.append(sz); left -= sz
        gmean = min(float(span) / (2.0 * float(L)), 90.0)
        gaps = []; busy = 0
        for sz in sizes:
            gaps.append(0)
            for _ in range(1, sz):
                z = r.u01(); x = r.exp1() * gmean; g = 0
                if z >= 0.03: g = 1799 if x >= 1799 else int(x)
                gaps.append(g); busy += g
        need = (len(sizes) - 1) * 1801
        while busy + need > span - 1:
            gaps = [g // 2 for g in gaps]; busy = sum(gaps)
        free = span - 1 - busy - need
        starts = sorted(r.below(free + 1) for _ in sizes)
        before = 0; e = 0
        for s in range(len(sizes)):
            starts[s] += before + s * 1801
            before += sum(gaps[e:e + sizes[s]]); e += sizes[s]
        # categories: session stay, carry-over, reinforced urns (theme, then category)
        G = min(P['theme_size'], cats); A = P['theme_conc']; B = P['cat_conc']
        draw_cat = lambda: search(cat_cum, 0, cats, r.u01() * cat_cum[cats - 1])
        ev_cat = []; run_cat = []; ccnt = [0] * cats; tcnt = {}; prev_end = 0; e = 0
        for s, sz in enumerate(sizes):
            ts = starts[s]
            for j in range(sz):
                ts += gaps[e]
                if j > 0: keep = P['sess_stay']
                elif e > 0: keep = P['carry'] * exp_det(-float(ts - prev_end) / (P['carry_days'] * 86400.0))
                else: keep = 0.0
                if e > 0 and r.u01() < keep: c = ev_cat[-1]
                else:
                    n = len(run_cat)  # the urns count runs (maximal stretches of one category)
                    if n == 0 or r.u01() * (A + float(n)) < A: t = draw_cat() // G
                    else: t = run_cat[r.below(n)] // G
                    nt = tcnt.get(t, 0)
                    if nt == 0 or r.u01() * (B + float(nt)) < B:
                        lo = t * G; hi = min(lo + G, cats); base = cat_cum[lo - 1] if lo else 0.0
                        x = base + r.u01() * (cat_cum[hi - 1] - base); c = lo + search(cat_cum, lo, hi - lo, x)
                    else:
                        x = r.below(nt); c = t * G
                        while x >= ccnt[c]: x -= ccnt[c]; c += 1
                if e == 0 or ev_cat[-1] != c:
                    run_cat.append(c); ccnt[c] += 1; tcnt[c // G] = tcnt.get(c // G, 0) + 1
                ev_cat.append(c); e += 1
            prev_end = ts
        # items
        r = Rng(seed, user, 1); pool = {}; e = 0
        for s, sz in enumerate(sizes):
            ts = t0 + starts[s]
            for j in range(sz):
                ts += gaps[e]; c = ev_cat[e]; e += 1
                pl = pool.setdefault(c, []); n = len(pl)
                if n > 0 and r.u01() * (P['item_conc'] + float(n)) >= P['item_conc']: it = pl[r.below(n)]
                else:
                    first = cat_first[c]; m = cat_first[c + 1] - first
                    it = first + search(rank_cum, 0, m, r.u01() * rank_cum[m - 1])
                pl.append(it)
                z = r.u01(); ty = 'pv' if z < 0.89 else 'cart' if z < 0.89 + 0.055 else 'fav' if z < 0.89 + 0.055 + 0.03 else 'buy'
                out.write(f"{user},{scramble(it, 0x6a09e667f3bcc908)},{cat_raw[c]},{ty},{ts}\n")
main()
