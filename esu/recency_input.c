/*
 * recency_input.c: see recency_input.h.
 */
#include "esu/recency_input.h"

#include "esu/esu_attention.h"

#include <string.h>

int recency_input_register(param_list *p, size_t d, size_t n_buckets)
{
    size_t shape[2] = {n_buckets, d};
    return param_list_add(p, "esu.recency", 2, shape);
}

void recency_input_bind(recency_input *r, size_t d, size_t n_buckets, const param_set *p, const param_set *g)
{
    r->d = d;
    r->n_buckets = n_buckets;
    r->emb = param_find(p, "esu.recency");
    r->gemb = g ? param_find(g, "esu.recency") : NULL;
}

void recency_input_carve(recency_input *r, arena *a, size_t max_b)
{
    r->bucket = ARENA_U32(a, max_b);
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
            memset(o, 0, D * sizeof(float));
            continue;
        }
        r->bucket[b] = esu_time_bucket(bt->now[b] - bt->hist_ts[b * S + n - 1], r->n_buckets);
        memcpy(o, r->emb + (size_t)r->bucket[b] * D, D * sizeof(float));
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
    }
}
