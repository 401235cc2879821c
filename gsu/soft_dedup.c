/*
 * soft_dedup.c: see soft_dedup.h.
 */
#include "gsu/soft_dedup.h"

#include "gsu/soft_search.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string.h>

static size_t up64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

static size_t slots_for(size_t max_n)
{
    size_t s = 64;
    while (s < 2 * max_n) s *= 2;
    return s;
}

#define PIECES(X)                                                                                                  \
    X(slot, soft_dedup_slot, slots) X(item, uint32_t, max_n) X(cat, uint32_t, max_n) X(cnt, uint32_t, max_n)     \
    X(tag, uint8_t, max_n)                                                                                        \
    X(last, uint32_t, max_n) X(prev, uint32_t, max_n) X(tie, uint32_t, max_n) X(top, uint32_t, k + 1)             \
    X(above, uint32_t, k + 1) X(rbuf, uint32_t, 2 * k) X(heap, uint64_t, k + 1) X(mat, uint32_t, max_n)         \
    X(pool, uint32_t, max_n) X(heads, uint32_t *, 2 * (k + 1)) X(headv, int64_t, k + 1)

size_t soft_dedup_bytes(size_t max_n, size_t k)
{
    size_t slots = slots_for(max_n), total = 64;
#define SIZE(name, type, count) total += up64((count) * sizeof(type));
    PIECES(SIZE)
#undef SIZE
    return total;
}

void soft_dedup_carve(soft_dedup *s, void *mem, size_t max_n, size_t k)
{
    size_t slots = slots_for(max_n);
    char *p = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    s->max_n = max_n, s->slots = slots, s->k = k, s->gen = 0, s->u = 0;
    for (s->shift = 64; (size_t)1 << (64 - s->shift) < slots;) s->shift--;
#define CARVE(name, type, count) s->name = (type *)p, p += up64((count) * sizeof(type));
    PIECES(CARVE)
#undef CARVE
    memset(s->slot, 0, slots * sizeof *s->slot);
}

/* Fibonacci hashing: the top bits of the pair (the tag mixed into the
 * category's top bits) times 2^64 / phi. */
static uint32_t slot_of(const soft_dedup *s, uint32_t item, uint32_t cat, uint32_t tag)
{
    return (uint32_t)(((uint64_t)item << 32 | (cat ^ tag << 24)) * 0x9e3779b97f4a7c15ULL >> s->shift);
}

enum { AHEAD = 16 /* rows hashed and prefetched ahead of the probe: the table is larger than L1 */ };

size_t soft_dedup_build(soft_dedup *s, const uint32_t *items, const uint32_t *cats, const uint8_t *tags, size_t n)
{
    if (++s->gen == 1u << 24) { /* wrapped: start the stamps over */
        memset(s->slot, 0, s->slots * sizeof *s->slot);
        s->gen = 1;
    }
    size_t u = 0, mask = s->slots - 1;
    uint32_t gen = s->gen;
    uint32_t *home = s->tie; /* each row's home slot */
    for (size_t i = 0; i < n; i++) home[i] = slot_of(s, items[i], cats[i], tags ? tags[i] : 0);
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n) __builtin_prefetch(&s->slot[home[i + AHEAD]]);
        uint32_t it = items[i], ct = cats[i], tg = tags ? tags[i] : 0, stamp = gen << 8 | tg;
        size_t h = home[i];
        soft_dedup_slot *e = &s->slot[h];
        while (e->stamp >> 8 == gen && (e->item != it || e->cat != ct || e->stamp != stamp))
            h = (h + 1) & mask, e = &s->slot[h];
        if (e->stamp >> 8 != gen) {
            *e = (soft_dedup_slot){.item = it, .cat = ct, .stamp = stamp, .id = (uint32_t)u};
            s->item[u] = it;
            s->cat[u] = ct;
            s->tag[u] = (uint8_t)tg;
            s->cnt[u] = 0;
            s->last[u] = SOFT_DEDUP_NONE;
            s->mat[u] = SOFT_DEDUP_NONE;
            u++;
        }
        uint32_t p = e->id;
        s->prev[i] = s->last[p];
        s->last[p] = (uint32_t)i;
        s->cnt[p]++;
    }
    s->u = u;
    s->pool_n = 0;
    return u;
}

#define ID(j) (ids ? ids[j] : (uint32_t)(j))
#define CNT(p) (s->cnt[p])
#define EACH_ROW(r, p) for (uint32_t r = s->last[p]; r != SOFT_DEDUP_NONE; r = s->prev[r])

/* Whether any of x[0..16) is >= floor (NaN-free scores). */
static int any_at_least(const float *x, float floor)
{
#if defined(__SSE2__)
    __m128 f = _mm_set1_ps(floor);
    __m128 a = _mm_or_ps(_mm_cmpge_ps(_mm_loadu_ps(x), f), _mm_cmpge_ps(_mm_loadu_ps(x + 4), f));
    __m128 b = _mm_or_ps(_mm_cmpge_ps(_mm_loadu_ps(x + 8), f), _mm_cmpge_ps(_mm_loadu_ps(x + 12), f));
    return _mm_movemask_ps(_mm_or_ps(a, b)) != 0;
#else
    for (size_t t = 0; t < 16; t++)
        if (x[t] >= floor) return 1;
    return 0;
#endif
}

/* The rows of pairs p[0..np) (np <= k + 1) merged newest first, at most lim of them, into dst; returns how many.
 * Each pair's newest min(cnt, k) rows are walked from its chain into pool the first time a candidate of the request
 * needs them (the pairs that reach the top K recur across candidates), the pairs' chains side by side: each step
 * of a chain is a load that may miss the cache, and the chains' misses overlap. */
static size_t merge_newest(soft_dedup *s, uint32_t *dst, const uint32_t *p, size_t np, size_t lim)
{
    uint32_t **at = s->heads, **end = at + np;
    uint32_t *walk = s->tie; /* (np) each chain's cursor, SOFT_DEDUP_NONE once done */
    size_t active = 0, k = s->k;
    for (size_t t = 0; t < np; t++) {
        size_t len = s->cnt[p[t]] < k ? s->cnt[p[t]] : k;
        walk[t] = SOFT_DEDUP_NONE;
        if (s->mat[p[t]] == SOFT_DEDUP_NONE) {
            s->mat[p[t]] = (uint32_t)s->pool_n;
            s->pool_n += len;
            walk[t] = s->last[p[t]];
            active++;
        }
        at[t] = s->pool + s->mat[p[t]];
        end[t] = at[t] + len;
    }
    for (size_t step = 0; active; step++)
        for (size_t t = 0; t < np; t++) {
            if (walk[t] == SOFT_DEDUP_NONE) continue;
            at[t][step] = walk[t];
            walk[t] = at[t] + step + 1 < end[t] ? s->prev[walk[t]] : SOFT_DEDUP_NONE;
            active -= walk[t] == SOFT_DEDUP_NONE;
        }
    size_t n = 0;
    if (np == 0) return 0;
    if (np == 1) { /* one list: as it is */
        for (; n < lim && at[0] < end[0]; n++) dst[n] = *at[0]++;
        return n;
    }
    int64_t *head = s->headv; /* each list's next row, -1 once done: the scan below reads no pointer */
    for (size_t t = 0; t < np; t++) head[t] = at[t] < end[t] ? (int64_t)*at[t] : -1;
    while (n < lim) {
        size_t best = 0;
        for (size_t t = 1; t < np; t++) best = head[t] > head[best] ? t : best;
        if (head[best] < 0) break;
        dst[n++] = (uint32_t)head[best];
        head[best] = ++at[best] < end[best] ? (int64_t)*at[best] : -1;
    }
    return n;
}

size_t soft_dedup_expand(soft_dedup *s, const float *score, const uint32_t *ids, size_t m, uint32_t *out,
                         float *kth)
{
    size_t k = s->k, np = 0, sum = 0;
    if (kth) *kth = -INFINITY;
    if (!k) return 0;
    /* A min-heap of pairs (rank key: score, then position j) weighted by their behaviors: the fewest best pairs
     * holding at least k behaviors. A pair enters when it ranks above the root; the root leaves while the others
     * still hold k. Once they hold k, the root's score is a floor: no pair below it can reach the top K. */
    uint64_t *h = s->heap;
    float floor = -INFINITY, outmax = -INFINITY; /* outmax: the best score of a pair left out at or above floor */
    for (size_t j = 0; j < m; j++) {
        if (j + 16 <= m && !any_at_least(score + j, floor)) { /* 16 below the floor */
            j += 15;
            continue;
        }
        if (score[j] < floor) continue;
        uint64_t key = soft_rank_key(score[j], (uint32_t)j);
        if (sum >= k && key < h[0]) {
            outmax = score[j] > outmax ? score[j] : outmax;
            continue;
        }
        size_t c = np++; /* sift up */
        for (; c > 0 && h[(c - 1) / 2] > key; c = (c - 1) / 2) h[c] = h[(c - 1) / 2];
        h[c] = key;
        sum += CNT(ID(j));
        for (;;) {
            uint32_t r = (uint32_t)h[0];
            if (sum - CNT(ID(r)) < k) break;
            outmax = score[r] > outmax ? score[r] : outmax;
            sum -= CNT(ID(r));
            h[0] = h[--np];
            soft_heap_sift(h, np, 0);
        }
        if (sum >= k) floor = score[(uint32_t)h[0]];
    }
    /* s*: the score of the K-th behavior, the root's (with fewer than k behaviors, none is left out: -inf). Every
     * behavior scoring above s* is in the heap's pairs; of those scoring s*, the most recent fill the rest: when
     * no pair left out scored s*, the tied pairs are the heap's, else any of the m */
    float star = sum < k ? -INFINITY : score[(uint32_t)h[0]];
    if (kth) *kth = star;
    size_t na = 0, nt = 0;
    for (size_t i = 0; i < np; i++) {
        uint32_t j = (uint32_t)h[i];
        if (score[j] > star) s->above[na++] = ID(j);
        else s->top[nt++] = ID(j);
    }
    if (sum >= k && outmax == star) {
        nt = 0;
        for (size_t j = 0; j < m; j++)
            if (score[j] == star) s->top[nt < k ? nt : k] = ID(j), nt++;
    }
    uint32_t *ra = s->rbuf, *rt = s->rbuf + k; /* the rows above s*, then the tied rows taken: newest first */
    size_t nra = merge_newest(s, ra, s->above, na, k), nrt = 0;
    if (nt > k) { /* more tied pairs than fit in top[]: collect their behaviors directly */
        size_t nr = 0;
        for (size_t j = 0; j < m; j++)
            if (score[j] == star) EACH_ROW(r, ID(j)) s->tie[nr++] = r;
        soft_sort_u32(s->tie, nr);
        while (nra + nrt < k && nr) rt[nrt++] = s->tie[--nr];
    } else {
        nrt = merge_newest(s, rt, s->top, nt, k - nra);
    }
    /* both lists newest first: merged from the back of out, oldest first */
    size_t n = nra + nrt, i = 0, t = 0;
    for (size_t o = n; o-- > 0;) out[o] = t == nrt || (i < nra && ra[i] > rt[t]) ? ra[i++] : rt[t++];
    return n;
}
