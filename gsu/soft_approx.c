/*
 * soft_approx.c: see soft_approx.h.
 */
#include "gsu/soft_approx.h"

#include "gsu/soft_score.h"
#include "gsu/soft_search.h"

#include <math.h>
#include <string.h>

static size_t up64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

#define PIECES(X)                                                                                                   \
    X(slot, uint32_t, n_slots) X(gcat, uint32_t, n_slots) X(goff, uint32_t, n_slots + 1) X(perm, uint32_t, max_n)  \
    X(sids, uint32_t, max_n) X(cent, float, n_slots * d) X(ct, float, soft_score_t_floats(n_slots, d))              \
    X(cscore, float, n_slots) X(corder, uint32_t, n_slots) X(score, float, max_n)                                   \
    X(kt, float, soft_score_t_floats(max_n + SOFT_SCORE_BLOCK * n_slots, d)) X(gpad, uint32_t, n_slots + 1)          \
    X(heap, uint64_t, k)

size_t soft_approx_bytes(size_t max_n, size_t d, size_t k, size_t n_slots)
{
    size_t total = 64;
#define SIZE(name, type, count) total += up64((count) * sizeof(type));
    PIECES(SIZE)
#undef SIZE
    return total;
}

void soft_approx_carve(soft_approx *a, void *mem, size_t max_n, size_t d, size_t k, size_t n_slots, float fraction)
{
    char *p = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    a->max_n = max_n, a->d = d, a->k = k, a->n_slots = n_slots, a->fraction = fraction;
#define CARVE(name, type, count) a->name = (type *)p, p += up64((count) * sizeof(type));
    PIECES(CARVE)
#undef CARVE
    memset(a->slot, 0, n_slots * sizeof *a->slot);
}

/* Groups the rows by category (rows ascending within a group), their keys
 * transposed in that order, and each group's centroid. */
static void group(soft_approx *a, const float *keys, const uint32_t *cats, size_t n)
{
    size_t d = a->d, G = 0, last = a->n_slots - 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cats[i] < last ? cats[i] : (uint32_t)last;
        if (!a->slot[c]) {
            a->gcat[G] = c;
            a->goff[G + 1] = 0;
            a->slot[c] = (uint32_t)++G;
        }
        a->goff[a->slot[c]]++;
    }
    a->goff[0] = 0;
    for (size_t g = 0; g < G; g++) a->goff[g + 1] += a->goff[g];
    uint32_t *cur = a->corder; /* fill cursors (corder is free until the candidates) */
    for (size_t g = 0; g < G; g++) cur[g] = a->goff[g];
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cats[i] < last ? cats[i] : (uint32_t)last;
        a->perm[cur[a->slot[c] - 1]++] = (uint32_t)i;
    }
    for (size_t g = 0; g < G; g++) a->slot[a->gcat[g]] = 0;
    /* each group's keys transposed once, from a block boundary (the scan then scores them in place), and its
     * centroid */
    size_t pad = 0;
    for (size_t g = 0; g < G; g++) {
        size_t lo = a->goff[g], hi = a->goff[g + 1];
        a->gpad[g] = (uint32_t)pad;
        soft_score_transpose_rows(a->kt + pad * d, keys, a->perm + lo, hi - lo, d);
        pad += (hi - lo + SOFT_SCORE_BLOCK - 1) / SOFT_SCORE_BLOCK * SOFT_SCORE_BLOCK;
        float *c = a->cent + g * d;
        memset(c, 0, d * sizeof(float));
        for (size_t j = lo; j < hi; j++)
            for (size_t t = 0; t < d; t++) c[t] += keys[(size_t)a->perm[j] * d + t];
        for (size_t t = 0; t < d; t++) c[t] /= (float)(hi - lo);
    }
    soft_score_transpose(a->ct, a->cent, G, d);
    a->groups = G;
}

/* Restores the max-heap (by score s) of group indices o[0..n) below i. */
static void sift_best(uint32_t *o, size_t n, size_t i, const float *s)
{
    uint32_t x = o[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= n) break;
        if (l + 1 < n && s[o[l + 1]] > s[o[l]]) m = l + 1;
        if (s[o[m]] <= s[x]) break;
        o[i] = o[m];
        i = m;
    }
    o[i] = x;
}

uint64_t soft_approx_topk(soft_approx *a, const float *keys, const uint32_t *cats, size_t n, const float *queries,
                          size_t nb, uint32_t *rows, uint32_t *cnt)
{
    size_t k = a->k, d = a->d;
    if (n <= k) {
        for (size_t b = 0; b < nb; b++) {
            for (size_t i = 0; i < n; i++) rows[b * k + i] = (uint32_t)i;
            cnt[b] = (uint32_t)n;
        }
        return (uint64_t)n * nb;
    }
    soft_approx_prepare(a, keys, cats, n);
    uint64_t scanned = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint32_t *ids;
        const float *sc;
        size_t m = soft_approx_scan(a, queries + b * d, n, &ids, &sc);
        cnt[b] = (uint32_t)soft_gsu_topk_ids(rows + b * k, a->heap, sc, ids, m, k);
        scanned += m;
    }
    return scanned;
}

void soft_approx_prepare(soft_approx *a, const float *keys, const uint32_t *cats, size_t n)
{
    group(a, keys, cats, n);
}

size_t soft_approx_scan(soft_approx *a, const float *q, size_t n, const uint32_t **ids, const float **scores)
{
    size_t d = a->d, G = a->groups, budget = (size_t)ceil((double)a->fraction * (double)n), m = 0;
    if (budget < a->k) budget = a->k;
    soft_score_rows_t(a->cscore, a->ct, G, q, 1, d);
    /* a max-heap of the groups by centroid score, popped as they are probed: O(G) to build, O(log G) a probe
     * (few are probed; a user may have thousands of categories) */
    uint32_t *o = a->corder;
    for (size_t g = 0; g < G; g++) o[g] = (uint32_t)g;
    for (size_t i = G / 2; i-- > 0;) sift_best(o, G, i, a->cscore);
    for (size_t left = G; left && m < budget;) {
        uint32_t g = o[0];
        o[0] = o[--left];
        sift_best(o, left, 0, a->cscore);
        size_t lo = a->goff[g], len = a->goff[g + 1] - lo;
        soft_score_rows_t(a->score + m, a->kt + (size_t)a->gpad[g] * d, len, q, 1, d);
        memcpy(a->sids + m, a->perm + lo, len * sizeof *a->sids);
        m += len;
    }
    *ids = a->sids;
    *scores = a->score;
    return m;
}
