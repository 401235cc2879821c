/*
 * regularize.c: see regularize.h.
 */
#include "train/regularize.h"

static void mark_and_add(mbar_table *t, const uint32_t *ids, size_t n, float lambda)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = ids[i] < t->vocab ? ids[i] : t->vocab;
        if (t->mark[r]) continue;
        t->mark[r] = 1;
        uint32_t c = r < t->vocab ? t->counts[r] : 1;
        float k = lambda / (float)(c ? c : 1);
        float *g = t->grad + (size_t)r * t->dim;
        const float *w = t->table + (size_t)r * t->dim;
        for (size_t d = 0; d < t->dim; d++) g[d] += k * w[d];
    }
}

static void unmark(mbar_table *t, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) t->mark[ids[i] < t->vocab ? ids[i] : t->vocab] = 0;
}

void mbar_add_lists(mbar_table *t, const uint32_t *const *ids, const size_t *n, size_t lists, float lambda)
{
    if (lambda == 0.0f) return;
    for (size_t l = 0; l < lists; l++) mark_and_add(t, ids[l], n[l], lambda);
    for (size_t l = 0; l < lists; l++) unmark(t, ids[l], n[l]);
}

void mbar_add(mbar_table *t, const uint32_t *ids, size_t n, float lambda)
{
    mbar_add_lists(t, &ids, &n, 1, lambda);
}
