/*
 * dien.h: DIEN, the Deep Interest Evolution Network (Zhou et al., AAAI
 * 2019) (private).
 *
 * The model, exactly (E = d_item + d_cat; the GRUs' hidden width is E, so
 * that the auxiliary loss can take the paper's inner product):
 *   e_a (B, E); e_t (B, S, E) the short-term behaviors, t < len
 *   interest extractor: h_t = GRU(e_t)                       (models/nn_rnn.h, the paper's GRU)
 *   auxiliary loss with negatives, over t = 0 .. len - 2:
 *     L_aux = -mean_{b,t} [ log sigmoid(<h_t, e_{t+1}>) + log(1 - sigmoid(<h_t, e^_{t+1}>)) ]
 *     e^ = the embedding of the sampled negative beside behavior t+1
 *     (the mean is over the valid (b, t) pairs, as the official code does)
 *   attention: a_t = softmax_t(h_t . (W e_a)) over the valid steps      W (E, E)
 *   interest evolution: h'_T = AUGRU(h, a), the state after the last valid step
 *   pool = sum_{t < len} e_t
 *   logit = head([e_a, h'_T, pool, e_a * pool]);  loss = BCE + alpha_aux * L_aux (alpha_aux = 1)
 * Parameters: emb.*, dien.gru.{w (3E, E), u (3E, E), b (3E)}, dien.att.w (E, E; starts as I),
 * dien.augru.{w, u, b}, mlp.* (head, input 4E).
 */
#ifndef LSIM_DIEN_H
#define LSIM_DIEN_H

#include "esu/din.h"
#include "models/batch.h"
#include "models/params.h"

typedef struct dien_config {
    din_config base;  /* embeddings and head widths (att_* and long_avgpool unused) */
    float alpha_aux;  /* weight of the auxiliary loss (1) */
} dien_config;

void dien_config_default(dien_config *c, uint32_t n_items, uint32_t n_cats);

typedef struct dien dien;

int dien_new(dien **out, const dien_config *cfg, size_t max_b, size_t max_s);
void dien_free(dien *m);
param_set *dien_params(dien *m);
param_set *dien_grads(dien *m);
param_set *dien_buffers(dien *m);
/* The bytes of the workspace (every activation and scratch buffer, carved once). */
size_t dien_workspace_bytes(const dien *m);
void dien_init(dien *m, uint64_t seed);

/* logits (B); in training with labels (and negatives) returns BCE + alpha_aux * L_aux. */
float dien_forward(dien *m, const model_batch *batch, float *logits, int train);
void dien_backward(dien *m, const model_batch *batch);

#endif
