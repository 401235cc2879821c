/*
 * dsin.h: DSIN, the Deep Session Interest Network (Feng et al., IJCAI 2019,
 * arXiv 1905.06482) (private).
 *
 * The model, exactly (E = d_item + d_cat; K = max_sessions, T = session_len,
 * H = d_lstm; a behavior's embedding is [item row, category row] as in DIN):
 *   sessions: the sample's short-term behaviors 0 .. len-1 (time order, with
 *     hist_ts) are cut where the gap between consecutive behaviors is
 *     > session_gap seconds (1800: exactly 30 minutes stays in one session;
 *     equal timestamps too; a timestamp smaller than its predecessor counts
 *     as no gap). Sessions with fewer than min_session_len behaviors are
 *     dropped; of the rest the K most recent are kept, each truncated to its
 *     T most recent behaviors, and numbered k = 0 .. n_sess-1 in time order
 *     (k = 0 the oldest kept: with fewer than K sessions, the newest one's
 *     k is n_sess-1, not K-1).
 *     Without hist_ts (NULL) the whole sequence is one session.
 *   bias encoding: Q_k[t, c] = e(behavior t of session k)[c] + w_K[k] + w_T[t] + w_C[c]
 *     (t = 0 the oldest behavior kept in the session), at valid positions.
 *   session interest extractor: one transformer encoder block
 *     (models/nn_attention.h: multi-head self-attention with `heads` heads,
 *     residual + LayerNorm, ReLU FFN of width d_ffn, residual + LayerNorm,
 *     post-norm, no dropout), weights shared by all sessions, attending within
 *     a session only; I_k = mean over the session's behaviors of its output (E).
 *   session interest interacting: H_k = Bi-LSTM(I_0 .. I_{n_sess-1})[k], the
 *     forward and backward directions SUMMED (models/nn_rnn.h), hidden H.
 *   activation units toward the target e_a (masked softmax over k < n_sess;
 *     a sample without sessions gets U = 0):
 *     U^I = sum_k softmax_k(I_k . (W^I e_a)) I_k      W^I (E, E)   (E)
 *     U^H = sum_k softmax_k(H_k . (W^H e_a)) H_k      W^H (H, E)   (H)
 *   logit = head([e_a, U^I, U^H]) (models/mlp_head.h, input 2E + H; no user
 *     profile features: the batch carries none);  loss = mean BCE.
 * Choices the paper leaves open: sessions of 1 behavior are kept by default
 * (the official code keeps sessions of > 2 behaviors: min_session_len = 3);
 * d_ffn = 4E and H = E by default; the transformer is PyTorch's encoder
 * layer; the bias encoding starts at 0 (dsin_init). The official README
 * reports NaN losses with bias encoding (REFERENCES.md: guard the
 * training): here nothing divides by a zero count or takes a softmax over an
 * empty set; empty sessions and samples without sessions give exact zeros
 * (tested with samples of 0 behaviors and of only dropped sessions).
 *
 * Parameters (PyTorch state_dict style, shapes):
 *   emb.item (n_items + 1, d_item), emb.cat (n_cats + 1, d_cat)
 *   dsin.bias.k (K), dsin.bias.t (T), dsin.bias.c (E)        bias encoding w_K, w_T, w_C
 *   dsin.encoder.self_attn.in_proj_weight (3E, E), dsin.encoder.self_attn.in_proj_bias (3E),
 *   dsin.encoder.self_attn.out_proj.weight (E, E), dsin.encoder.self_attn.out_proj.bias (E),
 *   dsin.encoder.linear1.weight (d_ffn, E), dsin.encoder.linear1.bias (d_ffn),
 *   dsin.encoder.linear2.weight (E, d_ffn), dsin.encoder.linear2.bias (E),
 *   dsin.encoder.norm1.weight / .bias (E), dsin.encoder.norm2.weight / .bias (E)
 *     = an nn.TransformerEncoderLayer's state_dict under "dsin.encoder."
 *   dsin.lstm.w_ih (2, 4H, E), dsin.lstm.w_hh (2, 4H, H), dsin.lstm.b_ih (2, 4H), dsin.lstm.b_hh (2, 4H)
 *     = stack(weight_ih_l0, weight_ih_l0_reverse) etc. of nn.LSTM(E, H, bidirectional=True)
 *   dsin.att_i.w (E, E), dsin.att_h.w (H, E)
 *   mlp.* (the head, input 2E + H); buffers mlp.dice{1,2}.running_mean/running_var.
 *
 * Memory: dsin_new sizes every activation for (max_b, max_s) and allocates
 * once; forward and backward allocate nothing. One dsin per thread.
 */
#ifndef LSIM_DSIN_H
#define LSIM_DSIN_H

#include "esu/din.h"
#include "models/batch.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dsin_config {
    din_config base;          /* embeddings, head widths, Dice momentum (att_*, att_softmax, long_avgpool unused) */
    uint32_t max_sessions;    /* K: the most recent sessions kept (5) */
    uint32_t session_len;     /* T: the most recent behaviors kept per session (10) */
    uint32_t min_session_len; /* sessions with fewer behaviors are dropped (1; official code 3); 0 counts as 1 */
    int64_t session_gap;      /* seconds; a larger gap between two behaviors starts a session (1800) */
    uint32_t heads;           /* self-attention heads; must divide E (2: 36 = 2 x 18 at the default widths) */
    uint32_t d_ffn;           /* transformer FFN width (0: 4 E) */
    uint32_t d_lstm;          /* Bi-LSTM hidden width H (0: E) */
} dsin_config;

void dsin_config_default(dsin_config *c, uint32_t n_items, uint32_t n_cats);

typedef struct dsin dsin;

/* max_b, max_s: the largest batch->b and batch->s (the workspace depends on
 * max_b only: sessions are gathered into (K, T) per sample). LSIM_E_INVAL
 * for zero sizes or widths, heads not dividing E, a negative session_gap,
 * or sizes whose products would overflow; LSIM_E_NOMEM. */
int dsin_new(dsin **out, const dsin_config *cfg, size_t max_b, size_t max_s);
void dsin_free(dsin *m);
param_set *dsin_params(dsin *m);
param_set *dsin_grads(dsin *m);
param_set *dsin_buffers(dsin *m);
/* The bytes of the workspace (every activation and scratch buffer, carved once). */
size_t dsin_workspace_bytes(const dsin *m);
const dsin_config *dsin_cfg(const dsin *m);

/* Random initialization, deterministic for a seed: param_set_randomize's
 * rules, then PyTorch's for the rest: LayerNorm weights 1 and biases 0, the
 * attention biases 0, the LSTM uniform in +-1/sqrt(H); bias encoding 0;
 * running variances 1, means 0. */
void dsin_init(dsin *m, uint64_t seed);

/* Forward: logits (B). batch: target_*, hist_item, hist_cat, hist_len,
 * hist_ts (B, S), label (or NULL); b <= max_b, s <= max_s. train = 1 uses
 * batch statistics in the head's Dice, updates the running ones, and keeps
 * what backward needs. Returns the mean BCE when labels are set, else 0. */
float dsin_forward(dsin *m, const model_batch *batch, float *logits, int train);

/* Backward of the last training forward: adds d(loss)/d(param) into the
 * gradients (zero them first with param_set_zero(dsin_grads(m))). */
void dsin_backward(dsin *m, const model_batch *batch);

/* After a forward: sample b's sessions. Returns n_sess; *len (K) the
 * sessions' lengths (0 beyond n_sess); *pos (K, T) the position in the
 * batch's hist row of behavior t of session k (valid for t < len[k]).
 * Valid until the next forward. */
size_t dsin_sessions(const dsin *m, size_t b, const uint32_t **len, const uint32_t **pos);

#endif
