/*
 * dsin.c: the DSIN model (see dsin.h): the target's embedding, DSIN's
 * short-term branch (esu/dsin_branch.h: sessions, bias encoding, the
 * transformer block, the Bi-LSTM, two activation units) and the head.
 */
#include "esu/dsin.h"

#include "esu/dsin_branch.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"

#include <math.h>
#include <stdio.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct dsin {
    dsin_config cfg;
    size_t max_b, max_s;
    size_t e, h, m; /* E, H, head input width 2E + H */
    model_state st;
    embed_layer emb;
    dsin_branch branch;
    mlp_head head;
    float *ea, *bout, *m_in, *dlogit, *dm, *dea, *dbout;
    size_t b;
};

void dsin_config_default(dsin_config *c, uint32_t n_items, uint32_t n_cats)
{
    memset(c, 0, sizeof *c);
    din_config_default(&c->base, n_items, n_cats);
    c->max_sessions = 5;
    c->session_len = 10;
    c->min_session_len = 1;
    c->session_gap = 1800;
    c->heads = 2;
    c->d_ffn = 0;
    c->d_lstm = 0;
}

param_set *dsin_params(dsin *m) { return &m->st.params; }
param_set *dsin_grads(dsin *m) { return &m->st.grads; }
param_set *dsin_buffers(dsin *m) { return &m->st.buffers; }
size_t dsin_workspace_bytes(const dsin *m) { return m->st.ws_bytes; }
const dsin_config *dsin_cfg(const dsin *m) { return &m->cfg; }

static void carve(void *ctx, arena *a)
{
    dsin *m = ctx;
    size_t B = m->max_b, E = m->e, W = E + m->h;
    m->ea = ARENA_FLOATS(a, B * E);
    m->bout = ARENA_FLOATS(a, B * W);
    m->m_in = ARENA_FLOATS(a, B * m->m);
    m->dlogit = ARENA_TRAIN_FLOATS(a, B);
    m->dm = ARENA_TRAIN_FLOATS(a, B * m->m);
    m->dea = ARENA_TRAIN_FLOATS(a, B * E);
    m->dbout = ARENA_TRAIN_FLOATS(a, B * W);
    dsin_branch_carve(&m->branch, a, B);
    mlp_head_carve(&m->head, a, B);
}

int dsin_new(dsin **out, const dsin_config *cfg, size_t max_b, size_t max_s)
{
    *out = NULL;
    if (!cfg) return LSIM_E_INVAL;
    const din_config *c = &cfg->base;
    size_t E = (size_t)c->d_item + c->d_cat, K = cfg->max_sessions, T = cfg->session_len;
    size_t H = cfg->d_lstm ? cfg->d_lstm : E, F = cfg->d_ffn ? cfg->d_ffn : 4 * E;
    if (!max_b || !max_s || !c->d_item || !c->d_cat || !c->mlp_h1 || !c->mlp_h2 || !K || !T || !cfg->heads ||
        E % cfg->heads || cfg->session_gap < 0 || max_b * max_s > INT32_MAX || max_b > INT32_MAX / K ||
        max_b * K > INT32_MAX / T)
        return LSIM_E_INVAL;
    dsin *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->max_s = max_s;
    m->e = E;
    m->h = H;
    m->m = 2 * E + H;
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    if (!rc) rc = dsin_branch_register(&p, E, K, T, H, F);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", m->m, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        dsin_free(m);
        return rc;
    }
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, &m->st.params, &m->st.grads);
    dsin_branch_bind(&m->branch, E, K, T, H, F, cfg->heads, cfg->min_session_len, cfg->session_gap, &m->emb,
                     &m->st.params, &m->st.grads);
    mlp_head_bind(&m->head, "mlp", m->m, c->mlp_h1, c->mlp_h2, c->dice_momentum, &m->st.params, &m->st.grads,
                  &m->st.buffers);
    if ((rc = model_state_alloc_ws(&m->st, carve, m))) {
        dsin_free(m);
        return rc;
    }
    dsin_init(m, 1);
    *out = m;
    return 0;
}

void dsin_free(dsin *m)
{
    if (!m) return;
    model_state_free(&m->st);
    free(m);
}

void dsin_init(dsin *m, uint64_t seed)
{
    if (!m->st.params.block) { /* a view of another model's parameters: never written */
        mlp_head_reset_buffers(&m->head);
        return;
    }
    param_set_randomize(&m->st.params, seed);
    dsin_branch_init(&m->branch, seed);
    mlp_head_reset_buffers(&m->head);
}

size_t dsin_sessions(const dsin *m, size_t b, const uint32_t **len, const uint32_t **pos)
{
    return dsin_branch_sessions(&m->branch, b, len, pos);
}

float dsin_forward(dsin *m, const model_batch *bt, float *logits, int train)
{
    if (m->st.forward_only) train = 0; /* no training buffers: always an inference forward */
    size_t B = bt->b, E = m->e, W = E + m->h, M = m->m;
    m->b = B;
    embed_forward(&m->emb, m->ea, bt->target_item, bt->target_cat, B);
    dsin_branch_forward(&m->branch, m->bout, m->ea, bt, train);
    for (size_t b = 0; b < B; b++) { /* the head's input: [e_a, U^I, U^H] */
        memcpy(m->m_in + b * M, m->ea + b * E, E * sizeof(float));
        memcpy(m->m_in + b * M + E, m->bout + b * W, W * sizeof(float));
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    return bt->label ? nn_bce_logits_forward(m->head.logit, bt->label, B) : 0.0f;
}

void dsin_backward(dsin *m, const model_batch *bt)
{
    assert(!m->st.forward_only); /* no gradients, no backward buffers */
    if (m->st.forward_only) return;
    size_t B = m->b, E = m->e, W = E + m->h, M = m->m;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * M * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    for (size_t b = 0; b < B; b++) {
        memcpy(m->dea + b * E, m->dm + b * M, E * sizeof(float));
        memcpy(m->dbout + b * W, m->dm + b * M + E, W * sizeof(float));
    }
    dsin_branch_backward(&m->branch, m->dea, m->dbout, bt);
    embed_backward(&m->emb, m->dea, bt->target_item, bt->target_cat, B);
}
