/*
 * recency_input.c: see recency_input.h.
 */
#include "esu/recency_input.h"

#include "esu/esu_attention.h"

#include <string.h>

int recency_input_register(param_list *p, size_t d, size_t n_buckets, int cat)
{
    size_t shape[2] = {n_buckets, d}, shape_cat[2] = {n_buckets + 1, d};
    int rc = param_list_add(p, "esu.recency", 2, shape);
    if (!rc && cat) rc = param_list_add(p, "esu.recency_cat", 2, shape_cat);
    return rc;
}

void recency_input_bind(recency_input *r, size_t d, size_t n_buckets, int cat, const param_set *p,
                        const param_set *g)
{
    r->d = d;
    r->n_buckets = n_buckets;
    r->cat = cat;
    r->emb = param_find(p, "esu.recency");
    r->gemb = g ? param_find(g, "esu.recency") : NULL;
    r->emb_cat = cat ? param_find(p, "esu.recency_cat") : NULL;
    r->gemb_cat = cat && g ? param_find(g, "esu.recency_cat") : NULL;
}

void recency_input_carve(recency_input *r, arena *a, size_t max_b)
{
    r->bucket = ARENA_U32(a, max_b);
    r->bucket_cat = ARENA_U32(a, r->cat ? max_b : 0);
}

size_t recency_input_width(const recency_input *r)
{
    return r->cat ? 2 * r->d : r->d;
}

void recency_input_forward(recency_input *r, float *out, size_t ld, const model_batch *bt)
{
    size_t B = bt->b, S = bt->s, D = r->d;
    r->b = B;
    for (size_t b = 0; b < B; b++) {
        size_t n = bt->hist_len[b] < S ? bt->hist_len[b] : S;
        float *o = out + b * ld;
        if (!n || !bt->hist_ts) {
            r->bucket[b] = UINT32_MAX;
            memset(o, 0, recency_input_width(r) * sizeof(float));
            continue;
        }
        r->bucket[b] = esu_time_bucket(bt->now[b] - bt->hist_ts[b * S + n - 1], r->n_buckets);
        memcpy(o, r->emb + (size_t)r->bucket[b] * D, D * sizeof(float));
        if (!r->cat) continue;
        size_t j = n; /* the newest behavior of the target's category, if the window holds one */
        while (j > 0 && bt->hist_cat[b * S + j - 1] != bt->target_cat[b]) j--;
        r->bucket_cat[b] = j ? esu_time_bucket(bt->now[b] - bt->hist_ts[b * S + j - 1], r->n_buckets)
                             : (uint32_t)r->n_buckets;
        memcpy(o + D, r->emb_cat + (size_t)r->bucket_cat[b] * D, D * sizeof(float));
    }
}

void recency_input_backward(recency_input *r, const float *dout, size_t ld)
{
    size_t D = r->d;
    for (size_t b = 0; b < r->b; b++) {
        if (r->bucket[b] == UINT32_MAX) continue;
        float *g = r->gemb + (size_t)r->bucket[b] * D;
        const float *d = dout + b * ld;
        for (size_t k = 0; k < D; k++) g[k] += d[k];
        if (!r->cat) continue;
        g = r->gemb_cat + (size_t)r->bucket_cat[b] * D;
        for (size_t k = 0; k < D; k++) g[k] += d[D + k];
    }
}
