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
    X(hkey, uint64_t, slots) X(hval, uint32_t, slots) X(hgen, uint32_t, slots) X(item, uint32_t, max_n)           \
    X(cat, uint32_t, max_n) X(off, uint32_t, max_n + 1) X(rows, uint32_t, max_n) X(tie, uint32_t, max_n)           \
    X(top, uint32_t, k) X(heap, uint64_t, k) X(bmax, float, k)

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
#define CARVE(name, type, count) s->name = (type *)p, p += up64((count) * sizeof(type));
    PIECES(CARVE)
#undef CARVE
    memset(s->hgen, 0, slots * sizeof *s->hgen);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

size_t soft_dedup_build(soft_dedup *s, const uint32_t *items, const uint32_t *cats, size_t n)
{
    if (++s->gen == 0) { /* wrapped: start the stamps over */
        memset(s->hgen, 0, s->slots * sizeof *s->hgen);
        s->gen = 1;
    }
    size_t u = 0, mask = s->slots - 1;
    uint32_t *id = s->tie; /* each row's distinct id, until the rows are grouped */
    for (size_t i = 0; i < n; i++) {
        uint64_t key = ((uint64_t)items[i] << 32 | cats[i]) + 1;
        size_t h = mix(key) & mask;
        while (s->hgen[h] == s->gen && s->hkey[h] != key) h = (h + 1) & mask;
        if (s->hgen[h] != s->gen) {
            s->hgen[h] = s->gen;
            s->hkey[h] = key;
            s->hval[h] = (uint32_t)u;
            s->item[u] = items[i];
            s->cat[u] = cats[i];
            s->off[u + 1] = 0;
            u++;
        }
        id[i] = s->hval[h];
        s->off[id[i] + 1]++;
    }
    s->off[0] = 0;
    for (size_t j = 0; j < u; j++) s->off[j + 1] += s->off[j];
    /* rows grouped by pair, ascending: fill from the back, group j's end
     * off[j + 1] serving as its cursor; it ends at group j's start, so the
     * offsets come out shifted by one place */
    for (size_t i = n; i-- > 0;) s->rows[--s->off[id[i] + 1]] = (uint32_t)i;
    for (size_t j = 0; j < u; j++) s->off[j] = s->off[j + 1];
    s->off[u] = (uint32_t)n;
    s->u = u;
    return u;
}

#define ID(j) (ids ? ids[j] : (uint32_t)(j))

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

/* The k-th largest maximum of the blocks of 16 of score[0..m) (m >= 16 k):
 * a min-heap of the k largest block maxima, its root. */
static float kth_block_max(soft_dedup *s, const float *score, size_t m, size_t k)
{
    float *h = s->bmax;
    size_t nb = m / 16, n = 0;
    for (size_t i = 0; i < nb; i++) {
        float x = score[i * 16];
        for (size_t t = 1; t < 16; t++) x = score[i * 16 + t] > x ? score[i * 16 + t] : x;
        if (n < k) { /* sift up */
            size_t c = n++;
            for (; c > 0 && h[(c - 1) / 2] > x; c = (c - 1) / 2) h[c] = h[(c - 1) / 2];
            h[c] = x;
        } else if (x > h[0]) { /* replace the root, sift down */
            size_t c = 0;
            for (;;) {
                size_t l = 2 * c + 1, mm = l;
                if (l >= k) break;
                if (l + 1 < k && h[l + 1] < h[l]) mm = l + 1;
                if (h[mm] >= x) break;
                h[c] = h[mm];
                c = mm;
            }
            h[c] = x;
        }
    }
    return h[0];
}

size_t soft_dedup_expand(soft_dedup *s, const float *score, const uint32_t *ids, size_t m, uint32_t *out,
                         float *kth)
{
    size_t k = s->k, total = 0, n = 0;
    if (kth) *kth = -INFINITY;
    if (!ids) total = s->off[m] - s->off[0];
    else
        for (size_t j = 0; j < m; j++) total += s->off[ids[j] + 1] - s->off[ids[j]];
    if (total <= k) { /* every behavior of the m pairs */
        for (size_t j = 0; j < m; j++)
            for (uint32_t r = s->off[ID(j)]; r < s->off[ID(j) + 1]; r++) out[n++] = s->rows[r];
        soft_sort_u32(out, n);
        return n;
    }
    /* the k best pairs, best first (the K-th behavior's pair is among them: each pair has a behavior) */
    uint64_t *h = s->heap;
    size_t np = 0;
    /* a floor no pair of the k best is below: the heap's lowest score once full, and from the start,
     * when every pair is eligible, the k-th largest of the maxima of blocks of 16 (k blocks hold a
     * pair at least that high) */
    float floor = ids || m < 16 * k ? -INFINITY : kth_block_max(s, score, m, k);
    for (size_t j = 0; j < m; j++) {
        if (!ids && j + 16 <= m && !any_at_least(score + j, floor)) { /* 16 below the floor */
            j += 15;
            continue;
        }
        if (score[ID(j)] < floor) continue;
        uint64_t key = soft_rank_key(score[ID(j)], ID(j));
        if (np < k) {
            size_t c = np++;
            for (; c > 0 && h[(c - 1) / 2] > key; c = (c - 1) / 2) h[c] = h[(c - 1) / 2];
            h[c] = key;
        } else if (key > h[0]) {
            size_t c = 0;
            for (;;) {
                size_t l = 2 * c + 1, mm = l;
                if (l >= k) break;
                if (l + 1 < k && h[l + 1] < h[l]) mm = l + 1;
                if (h[mm] >= key) break;
                h[c] = h[mm];
                c = mm;
            }
            h[c] = key;
        }
        if (np == k && score[(uint32_t)h[0]] > floor) floor = score[(uint32_t)h[0]];
    }
    for (size_t end = np; end > 1; end--) { /* heapsort the min-heap in place: best first */
        uint64_t x = h[end - 1];
        h[end - 1] = h[0];
        size_t c = 0, lim = end - 1;
        for (;;) {
            size_t l = 2 * c + 1, mm = l;
            if (l >= lim) break;
            if (l + 1 < lim && h[l + 1] < h[l]) mm = l + 1;
            if (h[mm] >= x) break;
            h[c] = h[mm];
            c = mm;
        }
        h[c] = x;
    }
    /* s*: the score of the pair holding the K-th behavior */
    size_t cum = 0, at = 0;
    for (; at < np; at++) {
        uint32_t p = (uint32_t)h[at];
        cum += s->off[p + 1] - s->off[p];
        if (cum >= k) break;
    }
    float star = score[(uint32_t)h[at]];
    if (kth) *kth = star;
    /* every behavior scoring above s*: the pairs ranked before the first at s* */
    for (size_t i = 0; i < np; i++) {
        uint32_t p = (uint32_t)h[i];
        if (!(score[p] > star)) break;
        for (uint32_t r = s->off[p]; r < s->off[p + 1]; r++) out[n++] = s->rows[r];
    }
    /* those scoring exactly s* (any eligible pair, in the k best or not): the most recent fill the rest. A
     * pair left out of the heap scored below the heap's final lowest score, or equal to it: when s* is
     * above that, the tied pairs are all in the heap */
    size_t nt = 0;
    if (np < k || star > score[(uint32_t)h[np - 1]]) {
        for (size_t i = 0; i < np; i++)
            if (score[(uint32_t)h[i]] == star) s->top[nt++] = (uint32_t)h[i];
    } else {
        for (size_t j = 0; j < m; j++)
            if (score[ID(j)] == star) s->top[nt < k ? nt : k - 1] = ID(j), nt++;
    }
    if (nt > k) { /* more tied pairs than fit in top[]: collect their behaviors directly */
        size_t nr = 0;
        for (size_t j = 0; j < m; j++)
            if (score[ID(j)] == star)
                for (uint32_t r = s->off[ID(j)]; r < s->off[ID(j) + 1]; r++) s->tie[nr++] = s->rows[r];
        soft_sort_u32(s->tie, nr);
        while (n < k && nr) out[n++] = s->tie[--nr];
    } else { /* merge the tied pairs' row lists from their ends, the latest row first */
        uint32_t *end = s->tie; /* each tied pair's remaining end */
        for (size_t t = 0; t < nt; t++) end[t] = s->off[s->top[t] + 1];
        while (n < k) {
            size_t best = nt;
            for (size_t t = 0; t < nt; t++)
                if (end[t] > s->off[s->top[t]] &&
                    (best == nt || s->rows[end[t] - 1] > s->rows[end[best] - 1]))
                    best = t;
            if (best == nt) break; /* no tied row left (cannot happen with finite scores) */
            out[n++] = s->rows[--end[best]];
        }
    }
    soft_sort_u32(out, n);
    return n;
}
