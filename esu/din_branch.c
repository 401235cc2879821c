/*
 * din_branch.c: see din_branch.h.
 */
#include "esu/din_branch.h"

#include "models/nn.h"
#include "models/seq_pack.h"

#include <string.h>

int din_branch_register(param_list *p, size_t e, size_t h1, size_t h2)
{
    return din_unit_register(p, "att", e, h1, h2);
}

void din_branch_bind(din_branch *br, size_t e, size_t h1, size_t h2, int softmax, embed_layer *emb,
                     const param_set *p, const param_set *g)
{
    br->e = e;
    br->emb = emb;
    din_unit_bind(&br->unit, "att", e, h1, h2, softmax, p, g);
    br->unit.split = emb->d_item; /* the shared path's category term (din_unit.h) */
}

void din_branch_carve(din_branch *br, arena *a, size_t max_b, size_t max_s)
{
    size_t B = max_b, R = max_b * max_s, E = br->e;
    br->es = ARENA_FLOATS(a, R * E);
    br->v = ARENA_FLOATS(a, B * E);
    br->des = ARENA_TRAIN_FLOATS(a, R * E);
    br->dv = ARENA_TRAIN_FLOATS(a, B * E);
    br->off = ARENA_U32(a, B + 1);
    br->r_item = ARENA_U32(a, R);
    br->r_cat = ARENA_U32(a, R);
    for (br->hs = 16; br->hs < 2 * max_s; br->hs *= 2) {}
    br->hmap = ARENA_U32(a, max_s);
    br->slot = ARENA_U32(a, br->hs);
    din_unit_carve(&br->unit, a, B, R, max_s); /* the shared path: one history of max_s */
}

/* The distinct (item, category) pairs among a history's s rows, in the order
 * first seen, into r_item / r_cat, and each row's distinct pair in hmap; returns how many. */
static size_t history_distinct(din_branch *br, const uint32_t *item, const uint32_t *cat, size_t s)
{
    size_t mask = br->hs - 1, n = 0;
    memset(br->slot, 0, br->hs * sizeof *br->slot);
    for (size_t j = 0; j < s; j++) {
        size_t h = ((item[j] * 2654435761u) ^ (cat[j] * 40503u)) & mask;
        uint32_t k;
        while ((k = br->slot[h]) && (br->r_item[k - 1] != item[j] || br->r_cat[k - 1] != cat[j])) h = (h + 1) & mask;
        if (!k) {
            br->r_item[n] = item[j], br->r_cat[n] = cat[j];
            k = br->slot[h] = (uint32_t)++n;
        }
        br->hmap[j] = k - 1;
    }
    return n;
}

void din_branch_forward(din_branch *br, float *out, const float *ea, const model_batch *bt, int train)
{
    size_t B = bt->b, E = br->e;
    br->ea = ea;
    br->b = B;
    if (!train && B > 1 && !nn_reference_forced() && batch_shared_history(bt)) {
        /* one request: embed each distinct behavior of the history once, split fc1 (din_unit_forward_shared) */
        size_t s = bt->hist_len[0] < bt->s ? bt->hist_len[0] : bt->s;
        size_t n = history_distinct(br, bt->hist_item, bt->hist_cat, s);
        embed_forward(br->emb, br->es, br->r_item, br->r_cat, n);
        din_unit_forward_shared(&br->unit, br->v, ea, br->es, n, br->hmap, s, B);
        br->r = 0;
    } else {
        br->r = seq_pack(br->off, br->r_item, br->r_cat, bt->hist_item, bt->hist_cat, bt->hist_len, B, bt->s);
        embed_forward(br->emb, br->es, br->r_item, br->r_cat, br->r);
        din_unit_forward(&br->unit, br->v, ea, br->es, br->off, B);
    }
    for (size_t b = 0; b < B; b++)
        for (size_t d = 0; d < E; d++) {
            out[b * 2 * E + d] = br->v[b * E + d];
            out[b * 2 * E + E + d] = ea[b * E + d] * br->v[b * E + d];
        }
}

void din_branch_backward(din_branch *br, float *dea, const float *dout)
{
    size_t B = br->b, E = br->e;
    for (size_t b = 0; b < B; b++)
        for (size_t d = 0; d < E; d++) {
            const float *o = dout + b * 2 * E;
            br->dv[b * E + d] = o[d] + o[E + d] * br->ea[b * E + d];
            dea[b * E + d] += o[E + d] * br->v[b * E + d];
        }
    memset(br->des, 0, br->r * E * sizeof(float));
    din_unit_backward(&br->unit, dea, br->des, br->dv);
    embed_backward(br->emb, br->des, br->r_item, br->r_cat, br->r);
}
