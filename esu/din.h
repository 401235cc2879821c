/*
 * din.h: DIN, the Deep Interest Network (Zhou et al., KDD 2018), and the
 * "avg-pooling long DIN" baseline of the SIM paper (private).
 *
 * The model, exactly (E = d_item + d_cat; a behavior's embedding is the
 * concatenation of its item's and its category's rows):
 *   e_a  = [item_emb(target_item), cat_emb(target_cat)]                 (B, E)
 *   e_j  = [item_emb(hist_item_j), cat_emb(hist_cat_j)], j < len        (B, S, E)
 *   activation unit: x_j = [e_j, e_a, e_j - e_a, e_j * e_a]             (4E)
 *     s_j = fc3(sigmoid(fc2(sigmoid(fc1(x_j)))))   fc1 4E->att_h1, fc2 ->att_h2, fc3 ->1
 *     w_j = s_j (the paper: no softmax), or masked softmax_j(s_j) with att_softmax
 *   v_U  = sum_{j < len} w_j e_j                                         (B, E)
 *   long (avg-pooling long DIN only): l = mean_{j < long_len} e^long_j, 0 if empty
 *   m    = [e_a, v_U, e_a * v_U (, l)]                                   (B, 3E or 4E)
 *   logit = fc(dice2(fc(dice1(fc(m)))))          widths mlp_h1, mlp_h2, 1
 *   loss = mean BCE(logit, label)
 * The attention MLP's sigmoid units and the e_a * v_U feature follow the
 * official DIN code; the head's Dice follows the paper (nn.h: batch
 * statistics in training, running statistics at inference).
 * Parameters (PyTorch state_dict names, shapes):
 *   emb.item (n_items + 1, d_item), emb.cat (n_cats + 1, d_cat) (last row: out of vocabulary)
 *   att.fc1.weight (att_h1, 4E), att.fc1.bias, att.fc2.weight (att_h2, att_h1), att.fc2.bias,
 *   att.fc3.weight (1, att_h2), att.fc3.bias (1)
 *   mlp.fc1.weight (mlp_h1, M), mlp.fc1.bias, mlp.dice1.alpha (mlp_h1),
 *   mlp.fc2.weight (mlp_h2, mlp_h1), mlp.fc2.bias, mlp.dice2.alpha (mlp_h2),
 *   mlp.fc3.weight (1, mlp_h2), mlp.fc3.bias (1)
 * Buffers: mlp.dice1.running_mean/running_var (mlp_h1), mlp.dice2.running_mean/running_var (mlp_h2).
 *
 * Built from components: models/embed.h (embeddings), esu/din_branch.h (the
 * activation unit over the short-term behaviors), models/mlp_head.h (the head).
 *
 * Memory: din_new sizes every activation for (max_b, max_s, max_k) and
 * allocates once; forward and backward allocate nothing. One din per
 * thread (forward writes activations into the model).
 */
#ifndef LSIM_DIN_H
#define LSIM_DIN_H

#include "models/batch.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct din_config {
    uint32_t n_items, n_cats;   /* vocabulary sizes (tables hold one more row) */
    uint32_t d_item, d_cat;     /* embedding widths: 18, 18 (DIEN's official setting) */
    uint32_t att_h1, att_h2;    /* 80, 40 */
    uint32_t mlp_h1, mlp_h2;    /* 200, 80 */
    int att_softmax;            /* 0: paper form (default); 1: masked softmax (official code) */
    float dice_momentum;        /* 0.01: running = 0.99 running + 0.01 batch */
    int long_avgpool;           /* 1: avg-pooling long DIN */
} din_config;

void din_config_default(din_config *c, uint32_t n_items, uint32_t n_cats);

typedef struct din din;

int din_new(din **out, const din_config *cfg, size_t max_b, size_t max_s, size_t max_k);
/* The same with room for long_rows long-term rows in all (avg-pooling DIN;
 * 0 = max_b * max_k). long_rows = max_k serves batches whose long sequence
 * is shared (model_batch.long_shared) without a copy per sample. */
int din_new_ex(din **out, const din_config *cfg, size_t max_b, size_t max_s, size_t max_k, size_t long_rows);
void din_free(din *m);

param_set *din_params(din *m);
param_set *din_grads(din *m);
param_set *din_buffers(din *m);
/* The bytes of the workspace (every activation and scratch buffer, carved once). */
size_t din_workspace_bytes(const din *m);
const din_config *din_cfg(const din *m);

/* Random initialization (uniform +-1/sqrt(fan_in) for linear layers, N(0, 0.01)
 * for embeddings, alpha 0.25, running var 1), deterministic for a seed. */
void din_init(din *m, uint64_t seed);

/* Forward: logits (B). train = 1 uses batch statistics in Dice and updates
 * the running ones, and keeps what backward needs. Returns the mean BCE
 * loss when batch->label is set (else 0). batch->b <= max_b etc. */
float din_forward(din *m, const model_batch *batch, float *logits, int train);

/* Backward of the last training forward: adds d(loss)/d(param) into the
 * gradients (zero them first with param_set_zero(din_grads(m))). */
void din_backward(din *m, const model_batch *batch);

#endif
