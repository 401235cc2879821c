/*
 * bst.c: the BST model (see bst.h): tokens (the last L behaviors and the
 * target, each [embedding, time-gap embedding]), one transformer encoder
 * block (models/nn_attention.h), the right-aligned flattening, the head.
 *
 * Layout: tokens live in a padded (B, T, C) tensor, valid prefix n + 1
 * (behaviors then the target), as the encoder wants; only the flattening
 * moves them to their fixed slots. Padded rows of the encoder input are 0
 * and never read; padded slots of the head input are 0.
 */
#include "esu/bst.h"

#include "esu/esu_attention.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"
#include "models/nn_attention.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define N_ENC 12
static const char *const enc_names[N_ENC] = {
    "bst.encoder.self_attn.in_proj_weight", "bst.encoder.self_attn.in_proj_bias",
    "bst.encoder.self_attn.out_proj.weight", "bst.encoder.self_attn.out_proj.bias",
    "bst.encoder.linear1.weight",            "bst.encoder.linear1.bias",
    "bst.encoder.linear2.weight",            "bst.encoder.linear2.bias",
    "bst.encoder.norm1.weight",              "bst.encoder.norm1.bias",
    "bst.encoder.norm2.weight",              "bst.encoder.norm2.bias",
};

struct bst {
    bst_config cfg;
    size_t max_b;
    size_t e, p, c, l, t, f, m; /* E, P, C = E + P, L, T = L + 1, d_ffn, head input E + T C */
    model_state st;
    embed_layer emb;
    nn_encoder_weights enc;
    nn_encoder_grads genc;
    const float *pos;
    float *g_pos;
    mlp_head head;
    /* the last forward */
    size_t b;
    uint32_t *n_tok;              /* (B) n + 1 */
    uint32_t *tok_item, *tok_cat; /* (B, T) ids, target at n; 0 at padding */
    uint32_t *bucket;             /* (B, T) time-gap buckets */
    float *te;                    /* (B, T, E) token embeddings */
    float *x, *y;                 /* (B, T, C) encoder input, output */
    float *m_in;                  /* (B, E + T C) head input */
    float *enc_saved, *scratch;
    float *dlogit, *dm, *dy, *dx, *dte; /* training only */
};

void bst_config_default(bst_config *c, uint32_t n_items, uint32_t n_cats)
{
    memset(c, 0, sizeof *c);
    din_config_default(&c->base, n_items, n_cats);
    c->seq_len = 20;
    c->d_pos = 12;
    c->time_buckets = ESU_TIME_BUCKETS;
    c->heads = 8;
    c->d_ffn = 0;
}

param_set *bst_params(bst *m) { return &m->st.params; }
param_set *bst_grads(bst *m) { return &m->st.grads; }
param_set *bst_buffers(bst *m) { return &m->st.buffers; }
size_t bst_workspace_bytes(const bst *m) { return m->st.ws_bytes; }
const bst_config *bst_cfg(const bst *m) { return &m->cfg; }

static void carve(void *ctx, arena *a)
{
    bst *m = ctx;
    size_t B = m->max_b, T = m->t, E = m->e, C = m->c, BT = B * T;
    m->n_tok = ARENA_U32(a, B);
    m->tok_item = ARENA_U32(a, BT);
    m->tok_cat = ARENA_U32(a, BT);
    m->bucket = ARENA_U32(a, BT);
    m->te = ARENA_FLOATS(a, BT * E);
    m->x = ARENA_FLOATS(a, BT * C);
    m->y = ARENA_FLOATS(a, BT * C);
    m->m_in = ARENA_FLOATS(a, B * m->m);
    /* the encoder's forward writes saved whatever the mode, and takes no scratch */
    m->enc_saved = ARENA_FLOATS(a, nn_encoder_saved_floats(B, T, C, m->f, m->cfg.heads));
    m->scratch = ARENA_TRAIN_FLOATS(a, nn_encoder_scratch_floats(B, T, C, m->f, m->cfg.heads));
    m->dlogit = ARENA_TRAIN_FLOATS(a, B);
    m->dm = ARENA_TRAIN_FLOATS(a, B * m->m);
    m->dy = ARENA_TRAIN_FLOATS(a, BT * C);
    m->dx = ARENA_TRAIN_FLOATS(a, BT * C);
    m->dte = ARENA_TRAIN_FLOATS(a, BT * E);
    mlp_head_carve(&m->head, a, B);
}

int bst_new(bst **out, const bst_config *cfg, size_t max_b)
{
    *out = NULL;
    if (!cfg) return LSIM_E_INVAL;
    const din_config *c = &cfg->base;
    size_t E = (size_t)c->d_item + c->d_cat, P = cfg->d_pos, C = E + P, L = cfg->seq_len, T = L + 1;
    size_t F = cfg->d_ffn ? cfg->d_ffn : 4 * C;
    if (!max_b || !c->d_item || !c->d_cat || !c->mlp_h1 || !c->mlp_h2 || !P || !L || !cfg->time_buckets ||
        !cfg->heads || C % cfg->heads || L > 65536 || max_b > INT32_MAX / T || max_b * T > INT32_MAX / (C > F ? C : F) ||
        max_b * T > INT32_MAX / T / cfg->heads)
        return LSIM_E_INVAL;
    bst *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->e = E;
    m->p = P;
    m->c = C;
    m->l = L;
    m->t = T;
    m->f = F;
    m->m = E + T * C;
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    if (!rc) rc = param_list_add(&p, "bst.pos", 2, (const size_t[]){cfg->time_buckets, P});
    /* registration order matters to param_set_randomize: a bias follows its weight */
    const size_t enc_shape[N_ENC][2] = {{3 * C, C}, {3 * C, 0}, {C, C}, {C, 0}, {F, C}, {F, 0},
                                        {C, F},     {C, 0},     {C, 0}, {C, 0}, {C, 0}, {C, 0}};
    for (int i = 0; i < N_ENC && !rc; i++)
        rc = param_list_add(&p, enc_names[i], enc_shape[i][1] ? 2 : 1, enc_shape[i]);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", m->m, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        bst_free(m);
        return rc;
    }
    const param_set *ps = &m->st.params, *gs = &m->st.grads;
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, ps, gs);
    const float **pe[N_ENC] = {&m->enc.in_w, &m->enc.in_b, &m->enc.out_w, &m->enc.out_b, &m->enc.l1_w, &m->enc.l1_b,
                               &m->enc.l2_w, &m->enc.l2_b, &m->enc.n1_w,  &m->enc.n1_b,  &m->enc.n2_w, &m->enc.n2_b};
    float **ge[N_ENC] = {&m->genc.in_w, &m->genc.in_b, &m->genc.out_w, &m->genc.out_b, &m->genc.l1_w, &m->genc.l1_b,
                         &m->genc.l2_w, &m->genc.l2_b, &m->genc.n1_w,  &m->genc.n1_b,  &m->genc.n2_w, &m->genc.n2_b};
    for (int i = 0; i < N_ENC; i++) {
        *pe[i] = param_find(ps, enc_names[i]);
        *ge[i] = param_find(gs, enc_names[i]); /* NULL in a view (no gradients) */
    }
    m->pos = param_find(ps, "bst.pos");
    m->g_pos = param_find(gs, "bst.pos");
    mlp_head_bind(&m->head, "mlp", m->m, c->mlp_h1, c->mlp_h2, c->dice_momentum, ps, gs, &m->st.buffers);
    if ((rc = model_state_alloc_ws(&m->st, carve, m))) {
        bst_free(m);
        return rc;
    }
    bst_init(m, 1);
    *out = m;
    return 0;
}

void bst_free(bst *m)
{
    if (!m) return;
    model_state_free(&m->st);
    free(m);
}

static void fill(const float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) ((float *)p)[i] = v;
}

void bst_init(bst *m, uint64_t seed)
{
    if (m->st.params.block) { /* not a view of another model's parameters (never written) */
        size_t C = m->c;
        param_set_randomize(&m->st.params, seed);
        fill(m->enc.in_b, 3 * C, 0.0f);
        fill(m->enc.out_b, C, 0.0f);
        fill(m->enc.n1_w, C, 1.0f);
        fill(m->enc.n1_b, C, 0.0f);
        fill(m->enc.n2_w, C, 1.0f);
        fill(m->enc.n2_b, C, 0.0f);
    }
    mlp_head_reset_buffers(&m->head);
}

/* Fills n_tok, tok_item, tok_cat, bucket for the batch. */
static void make_tokens(bst *m, const model_batch *bt)
{
    size_t B = bt->b, S = bt->s, T = m->t, L = m->l, nb = m->cfg.time_buckets;
    for (size_t b = 0; b < B; b++) {
        size_t len = bt->hist_len[b] < S ? bt->hist_len[b] : S, n = len < L ? len : L, first = len - n;
        uint32_t *ti = m->tok_item + b * T, *tc = m->tok_cat + b * T, *bk = m->bucket + b * T;
        for (size_t t = 0; t < n; t++) {
            size_t i = b * S + first + t;
            ti[t] = bt->hist_item[i];
            tc[t] = bt->hist_cat[i];
            bk[t] = bt->hist_ts && bt->now ? esu_time_bucket(bt->now[b] - bt->hist_ts[i], nb) : 0;
        }
        ti[n] = bt->target_item[b];
        tc[n] = bt->target_cat[b];
        bk[n] = 0; /* the target's gap to the request is 0 */
        for (size_t t = n + 1; t < T; t++) ti[t] = tc[t] = bk[t] = 0;
        m->n_tok[b] = (uint32_t)(n + 1);
    }
}

float bst_forward(bst *m, const model_batch *bt, float *logits, int train)
{
    if (m->st.forward_only) train = 0; /* no training buffers: always an inference forward */
    size_t B = bt->b, T = m->t, L = m->l, E = m->e, P = m->p, C = m->c, M = m->m;
    m->b = B;
    make_tokens(m, bt);
    embed_forward(&m->emb, m->te, m->tok_item, m->tok_cat, B * T);
    for (size_t b = 0; b < B; b++) {
        size_t nt = m->n_tok[b];
        for (size_t t = 0; t < T; t++) {
            float *x = m->x + (b * T + t) * C;
            if (t >= nt) {
                memset(x, 0, C * sizeof *x);
                continue;
            }
            memcpy(x, m->te + (b * T + t) * E, E * sizeof *x);
            memcpy(x + E, m->pos + (size_t)m->bucket[b * T + t] * P, P * sizeof *x);
        }
    }
    nn_encoder_forward(m->y, m->enc_saved, NULL, m->x, m->n_tok, &m->enc, B, T, C, m->f, m->cfg.heads);
    for (size_t b = 0; b < B; b++) { /* [e_a, right-aligned slots] */
        size_t nt = m->n_tok[b], lead = L + 1 - nt;
        float *mi = m->m_in + b * M;
        memcpy(mi, m->te + (b * T + nt - 1) * E, E * sizeof *mi); /* the target token's embedding is e_a */
        memset(mi + E, 0, lead * C * sizeof *mi);
        memcpy(mi + E + lead * C, m->y + b * T * C, nt * C * sizeof *mi);
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    return bt->label ? nn_bce_logits_forward(m->head.logit, bt->label, B) : 0.0f;
}

void bst_backward(bst *m, const model_batch *bt)
{
    assert(!m->st.forward_only); /* no gradients, no backward buffers */
    if (m->st.forward_only) return;
    size_t B = m->b, T = m->t, L = m->l, E = m->e, P = m->p, C = m->c, M = m->m;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * M * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    for (size_t b = 0; b < B; b++) { /* un-flatten; dy at padded rows is never read */
        size_t nt = m->n_tok[b], lead = L + 1 - nt;
        memcpy(m->dy + b * T * C, m->dm + b * M + E + lead * C, nt * C * sizeof(float));
    }
    memset(m->dx, 0, B * T * C * sizeof(float));
    nn_encoder_backward(m->dx, &m->genc, m->scratch, m->dy, m->enc_saved, m->n_tok, &m->enc, B, T, C, m->f,
                        m->cfg.heads);
    for (size_t b = 0; b < B; b++) {
        size_t nt = m->n_tok[b];
        for (size_t t = 0; t < nt; t++) {
            const float *dx = m->dx + (b * T + t) * C;
            float *dte = m->dte + (b * T + t) * E, *gp = m->g_pos + (size_t)m->bucket[b * T + t] * P;
            memcpy(dte, dx, E * sizeof *dte);
            for (size_t d = 0; d < P; d++) gp[d] += dx[E + d];
        }
        float *dta = m->dte + (b * T + nt - 1) * E; /* the target: also the head's e_a */
        const float *dea = m->dm + b * M;
        for (size_t d = 0; d < E; d++) dta[d] += dea[d];
        embed_backward(&m->emb, m->dte + b * T * E, m->tok_item + b * T, m->tok_cat + b * T, nt);
    }
}
