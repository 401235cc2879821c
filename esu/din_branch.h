/*
 * din_branch.h: DIN's short-term branch: the activation unit over the
 * user's short-term behaviors (private). The DIN model is this branch (plus
 * optional average pooling of long-term behaviors) and the head; SIM takes
 * it as its default short-term branch.
 *
 * Output per sample: [v, e_a * v] (2E), v = sum_j w_j e_j (esu/din_unit.h).
 * Parameters: att.* (the activation unit). The behaviors are packed
 * (models/seq_pack.h) and embedded with the model's embedding layer.
 */
#ifndef LSIM_DIN_BRANCH_H
#define LSIM_DIN_BRANCH_H

#include "esu/din_unit.h"
#include "models/arena.h"
#include "models/batch.h"
#include "models/embed.h"

#include <stddef.h>
#include <stdint.h>

typedef struct din_branch {
    size_t e;
    embed_layer *emb;
    din_unit unit;
    /* the last forward */
    const float *ea;
    size_t b, r;
    float *es, *v, *des, *dv;
    uint32_t *off, *r_item, *r_cat;
    /* the shared path's distinct history rows: each row's (max_s), and an open-addressing table (hs slots) */
    uint32_t *hmap;
    uint32_t *slot;
    size_t hs;
} din_branch;

int din_branch_register(param_list *p, size_t e, size_t h1, size_t h2);
void din_branch_bind(din_branch *br, size_t e, size_t h1, size_t h2, int softmax, embed_layer *emb,
                     const param_set *p, const param_set *g);
void din_branch_carve(din_branch *br, arena *a, size_t max_b, size_t max_s);
static inline size_t din_branch_width(const din_branch *br)
{
    return 2 * br->e;
}

// out (B, 2E); ea (B, E) must stay until backward. At inference (train = 0),
// when every sample has the same history (one request's candidates), the
// history's distinct (item, category) pairs are embedded once each and the
// unit takes its shared path over them with their counts
// (din_unit_forward_shared); nn_force_reference(1) keeps the general path.
void din_branch_forward(din_branch *br, float *out, const float *ea, const model_batch *bt, int train);
// dea (B, E) +=; dout (B, 2E)
void din_branch_backward(din_branch *br, float *dea, const float *dout);

#endif
