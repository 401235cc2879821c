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
    X(slot, uint32_t, n_slots) X(gcat, uint32_t, max_n) X(goff, uint32_t, max_n + 1) X(perm, uint32_t, max_n)       \
    X(sids, uint32_t, max_n) X(pk, float, max_n * d) X(cent, float, max_n * d) X(cscore, float, max_n)              \
    X(corder, uint32_t, max_n) X(score, float, max_n)                                                               \
    X(kt, float, soft_score_t_floats(max_n + 8 * n_slots, d))                                                       \
    X(gpad, uint32_t, max_n + 1) X(heap, uint64_t, k)

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
 * in that order, and each group's centroid. */
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
    for (size_t j = 0; j < n; j++) memcpy(a->pk + j * d, keys + (size_t)a->perm[j] * d, d * sizeof(float));
    /* each group's keys transposed once, from a block boundary (the scan then scores them in place) */
    size_t pad = 0;
    for (size_t g = 0; g < G; g++) {
        size_t lo = a->goff[g], len = a->goff[g + 1] - lo;
        a->gpad[g] = (uint32_t)pad;
        soft_score_transpose(a->kt + pad * d, a->pk + lo * d, len, d);
        pad += (len + SOFT_SCORE_BLOCK - 1) / SOFT_SCORE_BLOCK * SOFT_SCORE_BLOCK;
    }
    for (size_t g = 0; g < G; g++) {
        float *ct = a->cent + g * d;
        size_t lo = a->goff[g], hi = a->goff[g + 1];
        memset(ct, 0, d * sizeof(float));
        for (size_t j = lo; j < hi; j++)
            for (size_t t = 0; t < d; t++) ct[t] += a->pk[j * d + t];
        for (size_t t = 0; t < d; t++) ct[t] /= (float)(hi - lo);
    }
    a->groups = G;
}

/* Restores the min-heap (by score s) of group indices o[0..n) below i. */
static void sift_groups(uint32_t *o, size_t n, size_t i, const float *s)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && s[o[l]] < s[o[m]]) m = l;
        if (l + 1 < n && s[o[l + 1]] < s[o[m]]) m = l + 1;
        if (m == i) return;
        uint32_t t = o[i];
        o[i] = o[m], o[m] = t, i = m;
    }
}

/* corder[0..G) by cscore, best first: an in-place heapsort (no allocation).
 * A min-heap, so that popping the root to the end leaves the best first. */
static void order_groups(soft_approx *a)
{
    size_t G = a->groups;
    uint32_t *o = a->corder;
    for (size_t g = 0; g < G; g++) o[g] = (uint32_t)g;
    for (size_t i = G / 2; i-- > 0;) sift_groups(o, G, i, a->cscore);
    for (size_t end = G; end > 1; end--) {
        uint32_t t = o[0];
        o[0] = o[end - 1], o[end - 1] = t;
        sift_groups(o, end - 1, 0, a->cscore);
    }
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
    size_t d = a->d, budget = (size_t)ceil((double)a->fraction * (double)n), m = 0;
    if (budget < a->k) budget = a->k;
    for (size_t g = 0; g < a->groups; g++) {
        const float *ct = a->cent + g * d;
        float s = 0;
        for (size_t t = 0; t < d; t++) s += ct[t] * q[t];
        a->cscore[g] = s;
    }
    order_groups(a);
    for (size_t j = 0; j < a->groups && m < budget; j++) {
        size_t g = a->corder[j], lo = a->goff[g], len = a->goff[g + 1] - lo;
        soft_score_rows_t(a->score + m, a->kt + (size_t)a->gpad[g] * d, len, q, 1, d);
        memcpy(a->sids + m, a->perm + lo, len * sizeof *a->sids);
        m += len;
    }
    *ids = a->sids;
    *scores = a->score;
    return m;
}
