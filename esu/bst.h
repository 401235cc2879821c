/*
 * bst.h: BST, the Behavior Sequence Transformer (Chen et al., DLP-KDD 2019,
 * arXiv 1905.06874) (private).
 *
 * The model, exactly (E = d_item + d_cat; P = d_pos; C = E + P the
 * transformer's width; L = seq_len; T = L + 1 tokens):
 *   tokens: the sample's last n = min(hist_len, S, L) short-term behaviors in
 *     time order (hist positions hist_len - n .. hist_len - 1), then the
 *     target item: n + 1 tokens, t = 0 .. n (the target is token n).
 *   token t = [e(item_t, cat_t), w_pos[bucket_t]]    (C)
 *     e: the item row and the category row, as in DIN (models/embed.h);
 *     bucket_t = esu_time_bucket(now - ts_t, time_buckets) (esu/esu_attention.h:
 *     floor(log2(1 + minutes)), capped), the paper's "position" pos(v_i) =
 *     t(v_t) - t(v_i); the target's gap is 0, so its bucket is 0. Without
 *     hist_ts or now (NULL) every bucket is 0.
 *   transformer: one encoder block over the n + 1 tokens (models/nn_attention.h:
 *     PyTorch's nn.TransformerEncoderLayer, `heads` heads dividing C, ReLU
 *     FFN of width d_ffn, post-norm, no dropout), y (T, C), padding masked.
 *   flattening, right-aligned: slot j = L - n + t of a (T, C) block holds
 *     y_t (t = 0 .. n), so slot L is always the target's output and slot
 *     L - 1 the newest behavior's; slots 0 .. L - n - 1 are 0.
 *   logit = head([e_a, slots flattened]) (models/mlp_head.h, input E + T C);
 *     loss = mean BCE.
 * Choices where the paper is vague or differs from what lsim reuses:
 *   - the position embedding is CONCATENATED to the item/category embedding
 *     (the paper's Fig. 1 concatenates every feature's embedding), of its own
 *     width P (12 by default: C = 48 takes the paper's 8 heads, of 6 units;
 *     the paper does not give its widths), over the time-gap buckets of SIM's ESU (the paper says
 *     only "t(v_t) - t(v_i)", not how it is discretized);
 *   - the FFN is ReLU (PyTorch's layer), not the paper's LeakyReLU; the
 *     head is lsim's fc-Dice-fc-Dice-fc (200-80-1 by default), not the
 *     paper's LeakyReLU 1024-512-256; no "other features" (user profile,
 *     context, cross features): the batch carries none;
 *   - the transformer's outputs are all kept (the paper "concatenates"
 *     them) and padded to a fixed slot per recency, see above;
 *   - d_ffn = 4 C by default.
 * A sample with no behaviors still has one token (the target): nothing is
 * ever attended over an empty set.
 *
 * Parameters (PyTorch state_dict style, shapes):
 *   emb.item (n_items + 1, d_item), emb.cat (n_cats + 1, d_cat)
 *   bst.pos (time_buckets, P)                       the time-gap embedding
 *   bst.encoder.self_attn.in_proj_weight (3C, C), ... bst.encoder.norm2.bias (C)
 *     = an nn.TransformerEncoderLayer(C, heads, d_ffn)'s state_dict under "bst.encoder."
 *   mlp.* (the head, input E + T C); buffers mlp.dice{1,2}.running_mean/running_var.
 *
 * Memory: bst_new sizes every activation for max_b and allocates once;
 * forward and backward allocate nothing. An inference forward is the
 * training forward without keeping anything for backward (the target is a
 * token, so nothing is shared between one request's candidates). One bst
 * per thread.
 */
#ifndef LSIM_BST_H
#define LSIM_BST_H

#include "esu/din.h"
#include "models/batch.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bst_config {
    din_config base;       /* embeddings, head widths, Dice momentum (att_*, att_softmax, long_avgpool unused) */
    uint32_t seq_len;      /* L: the most recent behaviors kept (20, the paper's) */
    uint32_t d_pos;        /* P: width of the time-gap embedding (12) */
    uint32_t time_buckets; /* rows of the time-gap embedding (ESU_TIME_BUCKETS, 24) */
    uint32_t heads;        /* self-attention heads; must divide C = E + P (8, the paper's: 48 = 8 x 6 at the defaults) */
    uint32_t d_ffn;        /* transformer FFN width (0: 4 C) */
} bst_config;

void bst_config_default(bst_config *c, uint32_t n_items, uint32_t n_cats);

typedef struct bst bst;

/* max_b: the largest batch->b (the workspace does not depend on S: only L
 * behaviors are read). LSIM_E_INVAL for zero sizes or widths, heads not
 * dividing C, or sizes whose products would overflow; LSIM_E_NOMEM. */
int bst_new(bst **out, const bst_config *cfg, size_t max_b);
void bst_free(bst *m);
param_set *bst_params(bst *m);
param_set *bst_grads(bst *m);
param_set *bst_buffers(bst *m);
size_t bst_workspace_bytes(const bst *m);
const bst_config *bst_cfg(const bst *m);

/* Random initialization, deterministic for a seed: param_set_randomize's
 * rules, then PyTorch's for the encoder (LayerNorm weights 1 and biases 0,
 * attention biases 0); running variances 1, means 0. */
void bst_init(bst *m, uint64_t seed);

/* Forward: logits (B). batch: target_*, hist_item, hist_cat, hist_len,
 * hist_ts and now (either may be NULL: buckets 0), label (or NULL);
 * b <= max_b. train = 1 uses batch statistics in the head's Dice, updates
 * the running ones, and keeps what backward needs. Returns the mean BCE
 * when labels are set, else 0. */
float bst_forward(bst *m, const model_batch *batch, float *logits, int train);

/* Backward of the last training forward: adds d(loss)/d(param) into the
 * gradients (zero them first with param_set_zero(bst_grads(m))). */
void bst_backward(bst *m, const model_batch *batch);

#endif
