/*
 * soft_select.c: see soft_select.h.
 */
#include "gsu/soft_select.h"

#include "gsu/soft_score.h"
#include "gsu/soft_search.h"

#include <string.h>

static size_t up64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

size_t soft_select_bytes(size_t max_n, size_t d, size_t k)
{
    size_t G = SOFT_SELECT_GROUP;
    return up64(G * max_n * sizeof(float)) + up64(soft_score_scratch(max_n, d) * sizeof(float)) +
           up64((G + 1) * sizeof(uint32_t)) * 2 + up64(G * k * sizeof(uint32_t)) + up64(k * sizeof(uint64_t)) + 64;
}

void soft_select_carve(soft_select *s, void *mem, size_t max_n, size_t d, size_t k)
{
    size_t G = SOFT_SELECT_GROUP;
    char *p = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    s->max_n = max_n;
    s->d = d;
    s->k = k;
    s->score = (float *)p, p += up64(G * max_n * sizeof(float));
    s->kt = (float *)p, p += up64(soft_score_scratch(max_n, d) * sizeof(float));
    s->off = (uint32_t *)p, p += up64((G + 1) * sizeof(uint32_t));
    s->goff = (uint32_t *)p, p += up64((G + 1) * sizeof(uint32_t));
    s->gsel = (uint32_t *)p, p += up64(G * k * sizeof(uint32_t));
    s->heap = (uint64_t *)p;
}

void soft_select_topk(soft_select *s, const float *keys, size_t n, const float *queries, size_t nb, uint32_t *rows,
                      uint32_t *cnt)
{
    size_t k = s->k, d = s->d;
    for (size_t g0 = 0; g0 < nb; g0 += SOFT_SELECT_GROUP) {
        size_t g = nb - g0 < SOFT_SELECT_GROUP ? nb - g0 : SOFT_SELECT_GROUP;
        soft_score_rows(s->score, keys, n, queries + g0 * d, g, d, s->kt);
        for (size_t b = 0; b <= g; b++) s->off[b] = (uint32_t)(b * n);
        soft_gsu_topk(s->goff, s->gsel, s->heap, s->score, s->off, g, k);
        for (size_t b = 0; b < g; b++) {
            size_t lo = s->goff[b], m = s->goff[b + 1] - lo;
            for (size_t i = 0; i < m; i++) rows[(g0 + b) * k + i] = s->gsel[lo + i] - s->off[b];
            cnt[g0 + b] = (uint32_t)m;
        }
    }
}
