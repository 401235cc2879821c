/*
 * dien.c: the DIEN model (see dien.h): the target's embedding, DIEN's
 * short-term branch (esu/dien_branch.h) and the head.
 */
#include "esu/dien.h"

#include "esu/dien_branch.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct dien {
    dien_config cfg;
    size_t max_b, max_s, e;
    model_state st;
    embed_layer emb;
    dien_branch branch;
    mlp_head head;
    /* activations */
    float *ea, *bout, *m_in, *dea, *dbout, *dm, *dlogit;
    size_t b;
};

void dien_config_default(dien_config *c, uint32_t n_items, uint32_t n_cats)
{
    memset(c, 0, sizeof *c);
    din_config_default(&c->base, n_items, n_cats);
    c->alpha_aux = 1.0f;
}

param_set *dien_params(dien *m) { return &m->st.params; }
param_set *dien_grads(dien *m) { return &m->st.grads; }
param_set *dien_buffers(dien *m) { return &m->st.buffers; }
size_t dien_workspace_bytes(const dien *m) { return m->st.ws_bytes; }

static void carve(void *ctx, arena *a)
{
    dien *m = ctx;
    size_t B = m->max_b, E = m->e;
    m->ea = ARENA_FLOATS(a, B * E);
    m->bout = ARENA_FLOATS(a, B * 3 * E);
    m->m_in = ARENA_FLOATS(a, B * 4 * E);
    m->dea = ARENA_TRAIN_FLOATS(a, B * E);
    m->dbout = ARENA_TRAIN_FLOATS(a, B * 3 * E);
    m->dm = ARENA_TRAIN_FLOATS(a, B * 4 * E);
    m->dlogit = ARENA_TRAIN_FLOATS(a, B);
    dien_branch_carve(&m->branch, a, m->max_b, m->max_s);
    mlp_head_carve(&m->head, a, B);
}

int dien_new(dien **out, const dien_config *cfg, size_t max_b, size_t max_s)
{
    *out = NULL;
    const din_config *c = &cfg->base;
    if (!max_b || !max_s || !c->d_item || !c->d_cat || !c->mlp_h1 || !c->mlp_h2 || max_b * max_s > INT32_MAX)
        return LSIM_E_INVAL;
    dien *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->max_s = max_s;
    m->e = (size_t)c->d_item + c->d_cat;
    size_t E = m->e;
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    if (!rc) rc = dien_branch_register(&p, E);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", 4 * E, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        dien_free(m);
        return rc;
    }
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, &m->st.params, &m->st.grads);
    dien_branch_bind(&m->branch, E, cfg->alpha_aux, &m->emb, &m->st.params, &m->st.grads);
    mlp_head_bind(&m->head, "mlp", 4 * E, c->mlp_h1, c->mlp_h2, c->dice_momentum, &m->st.params, &m->st.grads,
                  &m->st.buffers);
    if ((rc = model_state_alloc_ws(&m->st, carve, m))) {
        dien_free(m);
        return rc;
    }
    dien_init(m, 1);
    *out = m;
    return 0;
}

void dien_free(dien *m)
{
    if (!m) return;
    model_state_free(&m->st);
    free(m);
}

void dien_init(dien *m, uint64_t seed)
{
    if (m->st.params.block) { /* not a view of another's */
        param_set_randomize(&m->st.params, seed);
        dien_branch_init(&m->branch);
    }
    mlp_head_reset_buffers(&m->head);
}

float dien_forward(dien *m, const model_batch *bt, float *logits, int train)
{
    if (m->st.forward_only) train = 0; /* no training buffers: always an inference forward */
    size_t B = bt->b, E = m->e;
    m->b = B;
    embed_forward(&m->emb, m->ea, bt->target_item, bt->target_cat, B);
    float aux = dien_branch_forward(&m->branch, m->bout, m->ea, bt, train);
    for (size_t b = 0; b < B; b++) { /* the head's input: [e_a, branch output] */
        memcpy(m->m_in + b * 4 * E, m->ea + b * E, E * sizeof(float));
        memcpy(m->m_in + b * 4 * E + E, m->bout + b * 3 * E, 3 * E * sizeof(float));
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    if (!bt->label) return 0.0f;
    return nn_bce_logits_forward(m->head.logit, bt->label, B) + aux;
}

void dien_backward(dien *m, const model_batch *bt)
{
    assert(!m->st.forward_only); /* no gradients, no backward buffers */
    if (m->st.forward_only) return;
    size_t B = m->b, E = m->e;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * 4 * E * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    for (size_t b = 0; b < B; b++) {
        memcpy(m->dea + b * E, m->dm + b * 4 * E, E * sizeof(float));
        memcpy(m->dbout + b * 3 * E, m->dm + b * 4 * E + E, 3 * E * sizeof(float));
    }
    dien_branch_backward(&m->branch, m->dea, m->dbout, bt);
    embed_backward(&m->emb, m->dea, bt->target_item, bt->target_cat, B);
}
