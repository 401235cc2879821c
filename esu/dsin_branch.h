/*
 * dsin_branch.h: DSIN's short-term branch: sessions, bias encoding, the
 * transformer block per session, average pooling, Bi-LSTM, the two
 * activation units (private). The equations and choices: esu/dsin.h. The
 * DSIN model is this branch plus the head; SIM can take it as its
 * short-term branch.
 *
 * Output per sample: [U^I, U^H] (E + H). Parameters: dsin.bias.*,
 * dsin.lstm.*, dsin.att_i.w, dsin.att_h.w, dsin.encoder.* (esu/dsin.h).
 * The behaviors are embedded with the model's embedding layer (shared).
 */
#ifndef LSIM_DSIN_BRANCH_H
#define LSIM_DSIN_BRANCH_H

#include "models/arena.h"
#include "models/batch.h"
#include "models/embed.h"
#include "models/nn_attention.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dsin_branch {
    size_t e, k, t, h, f, nh;      /* E, K, T, H, d_ffn, heads */
    size_t min_len;                /* shortest session kept (>= 1) */
    int64_t gap;                   /* seconds that start a session */
    embed_layer *emb;
    nn_encoder_weights enc;
    nn_encoder_grads genc;
    const float *be_k, *be_t, *be_c, *w_ih, *w_hh, *b_ih, *b_hh, *att_i, *att_h;
    float *g_be_k, *g_be_t, *g_be_c, *g_w_ih, *g_w_hh, *g_b_ih, *g_b_hh, *g_att_i, *g_att_h;
    /* sessions of the last forward */
    uint32_t *n_sess;              /* (B) */
    uint32_t *sess_len;            /* (B, K) */
    uint32_t *sess_pos;            /* (B, K, T) position in the hist row */
    uint32_t *sess_item, *sess_cat; /* (B, K, T) their ids (0 at padding) */
    /* activations of the last forward */
    const float *ea;               /* (B, E), the caller's */
    float *x, *y;                  /* (B K, T, E) encoder input (embeddings + bias encoding), output */
    float *ik, *hk;                /* (B, K, E) I_k, (B, K, H) H_k */
    float *qi, *qh;                /* (B, E) W^I e_a, (B, H) W^H e_a */
    float *si, *ai, *sh, *ah;      /* (B, K) scores and weights */
    float *enc_saved, *lstm_saved, *scratch;
    float *dik, *dhk, *dai, *dsi, *dah, *dsh, *dqi, *dqh, *dy, *dx;
    size_t b;
} dsin_branch;

int dsin_branch_register(param_list *p, size_t e, size_t k, size_t t, size_t h, size_t f);
void dsin_branch_bind(dsin_branch *br, size_t e, size_t k, size_t t, size_t h, size_t f, size_t heads,
                      size_t min_len, int64_t gap, embed_layer *emb, const param_set *p, const param_set *g);
void dsin_branch_carve(dsin_branch *br, arena *a, size_t max_b);
/* PyTorch's starting values where param_set_randomize's rules differ
 * (LayerNorm 1 / 0, attention biases 0, LSTM +-1/sqrt(H), bias encoding 0). */
void dsin_branch_init(dsin_branch *br, uint64_t seed);
static inline size_t dsin_branch_width(const dsin_branch *br)
{
    return br->e + br->h;
}

// out (B, E + H) = [U^I, U^H]; ea (B, E) must stay until backward. At
// inference, when every sample has the same history (one request's
// candidates), sessions, transformer and Bi-LSTM run once; nn_force_reference(1)
// keeps the general path.
void dsin_branch_forward(dsin_branch *br, float *out, const float *ea, const model_batch *bt, int train);
// dea (B, E) +=; dout (B, E + H)
void dsin_branch_backward(dsin_branch *br, float *dea, const float *dout, const model_batch *bt);

/* The sessions of sample b in the last forward (see dsin_sessions). */
size_t dsin_branch_sessions(const dsin_branch *br, size_t b, const uint32_t **len, const uint32_t **pos);

#endif
