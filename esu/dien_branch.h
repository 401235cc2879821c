/*
 * dien_branch.h: DIEN's short-term branch: GRU interest extractor with its
 * auxiliary loss, attention toward the target, AUGRU interest evolution
 * (private). The equations: esu/dien.h. The DIEN model is this branch plus
 * the head; SIM can take it as its short-term branch.
 *
 * Output per sample: [h'_T, pool, e_a * pool] (3E), pool = sum of the
 * behaviors' embeddings. Parameters: dien.gru.{w, u, b}, dien.att.w,
 * dien.augru.{w, u, b}. The behaviors are embedded with the model's
 * embedding layer (shared).
 */
#ifndef LSIM_DIEN_BRANCH_H
#define LSIM_DIEN_BRANCH_H

#include "models/arena.h"
#include "models/batch.h"
#include "models/embed.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dien_branch {
    size_t e;
    float alpha_aux;
    embed_layer *emb;
    const float *gru_w, *gru_u, *gru_b, *att_w, *aug_w, *aug_u, *aug_b;
    float *g_gru_w, *g_gru_u, *g_gru_b, *g_att_w, *g_aug_w, *g_aug_u, *g_aug_b;
    /* the last forward */
    const float *ea;
    size_t b, s, n_aux;
    int aux;
    float *es, *en, *h, *q, *sc, *att, *hfin, *pool;
    float *gru_saved, *aug_saved, *scratch;
    float *des, *den, *dh, *dq, *dsc, *datt, *dhfin, *dpool;
    uint32_t *len;
} dien_branch;

int dien_branch_register(param_list *p, size_t e);
void dien_branch_bind(dien_branch *br, size_t e, float alpha_aux, embed_layer *emb, const param_set *p,
                      const param_set *g);
void dien_branch_carve(dien_branch *br, arena *a, size_t max_b, size_t max_s);
/* After the parameters are randomized: the attention's W starts as the identity, so that
 * a_t = softmax_t(<h_t, e_a>) starts as the auxiliary loss's own score (h_t is trained to
 * predict the next behavior's embedding) instead of a random bilinear form, whose sign
 * some seeds never recovered from (docs/MODELS.md, DIEN). */
void dien_branch_init(dien_branch *br);
static inline size_t dien_branch_width(const dien_branch *br)
{
    return 3 * br->e;
}

/* out (B, 3E); ea (B, E) must stay until backward. In training with
 * negatives in the batch, returns alpha_aux * L_aux (else 0). At inference,
 * when every sample has the same history (one request's candidates), the
 * extractor GRU runs once; nn_force_reference(1) keeps the general path. */
float dien_branch_forward(dien_branch *br, float *out, const float *ea, const model_batch *bt, int train);
/* dea (B, E) +=; dout (B, 3E); the behaviors' embedding gradients go to the embedding layer. */
void dien_branch_backward(dien_branch *br, float *dea, const float *dout, const model_batch *bt);

#endif
