/*
 * din.c: the DIN model (see din.h): embeddings, the activation unit over the
 * short-term behaviors, optional average pooling of long-term behaviors,
 * and the head.
 */
#include "esu/din.h"

#include "esu/din_branch.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"
#include "models/seq_pack.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct din {
    din_config cfg;
    size_t max_b, max_s, max_k, long_rows;
    size_t e, m; /* behavior width, head input width */
    model_state st;
    embed_layer emb;
    din_branch branch;
    mlp_head head;
    /* activations */
    float *ea, *el, *lp, *bout, *m_in, *dea, *del, *dbout, *dm, *dlogit;
    uint32_t *loff, *l_item, *l_cat;
    size_t b, lr; /* the last forward */
};

void din_config_default(din_config *c, uint32_t n_items, uint32_t n_cats)
{
    memset(c, 0, sizeof *c);
    c->n_items = n_items;
    c->n_cats = n_cats;
    c->d_item = 18;
    c->d_cat = 18;
    c->att_h1 = 80;
    c->att_h2 = 40;
    c->mlp_h1 = 200;
    c->mlp_h2 = 80;
    c->dice_momentum = 0.01f;
}

param_set *din_params(din *m) { return &m->st.params; }
param_set *din_grads(din *m) { return &m->st.grads; }
param_set *din_buffers(din *m) { return &m->st.buffers; }
size_t din_workspace_bytes(const din *m) { return m->st.ws_bytes; }
const din_config *din_cfg(const din *m) { return &m->cfg; }

static void carve(void *ctx, arena *a)
{
    din *m = ctx;
    size_t B = m->max_b, L = m->long_rows, E = m->e;
    m->ea = ARENA_FLOATS(a, B * E);
    m->el = ARENA_FLOATS(a, L * E);
    m->lp = ARENA_FLOATS(a, B * E);
    m->bout = ARENA_FLOATS(a, B * 2 * E);
    m->dbout = ARENA_TRAIN_FLOATS(a, B * 2 * E);
    m->m_in = ARENA_FLOATS(a, B * m->m);
    m->dea = ARENA_TRAIN_FLOATS(a, B * E);
    m->del = ARENA_TRAIN_FLOATS(a, L * E);
    m->dm = ARENA_TRAIN_FLOATS(a, B * m->m);
    m->dlogit = ARENA_TRAIN_FLOATS(a, B);
    m->loff = ARENA_U32(a, B + 1);
    m->l_item = ARENA_U32(a, L);
    m->l_cat = ARENA_U32(a, L);
    din_branch_carve(&m->branch, a, B, m->max_s);
    mlp_head_carve(&m->head, a, B);
}

int din_new(din **out, const din_config *cfg, size_t max_b, size_t max_s, size_t max_k)
{
    return din_new_ex(out, cfg, max_b, max_s, max_k, 0);
}

int din_new_ex(din **out, const din_config *cfg, size_t max_b, size_t max_s, size_t max_k, size_t long_rows)
{
    *out = NULL;
    if (!cfg || !max_b || !cfg->d_item || !cfg->d_cat || !cfg->att_h1 || !cfg->att_h2 || !cfg->mlp_h1 ||
        !cfg->mlp_h2 || max_b * (max_s + 1) > UINT32_MAX || max_b * (max_k + 1) > UINT32_MAX)
        return LSIM_E_INVAL;
    din *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->max_s = max_s;
    m->max_k = cfg->long_avgpool ? max_k : 0;
    m->long_rows = !m->max_k ? 0 : long_rows ? long_rows : max_b * max_k;
    m->e = (size_t)cfg->d_item + cfg->d_cat;
    m->m = (cfg->long_avgpool ? 4 : 3) * m->e;
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, cfg->n_items, cfg->n_cats, cfg->d_item, cfg->d_cat);
    if (!rc) rc = din_branch_register(&p, m->e, cfg->att_h1, cfg->att_h2);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", m->m, cfg->mlp_h1, cfg->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        din_free(m);
        return rc ? rc : LSIM_E_NOMEM;
    }
    embed_bind(&m->emb, cfg->n_items, cfg->n_cats, cfg->d_item, cfg->d_cat, &m->st.params, &m->st.grads);
    din_branch_bind(&m->branch, m->e, cfg->att_h1, cfg->att_h2, cfg->att_softmax, &m->emb, &m->st.params,
                    &m->st.grads);
    mlp_head_bind(&m->head, "mlp", m->m, cfg->mlp_h1, cfg->mlp_h2, cfg->dice_momentum, &m->st.params, &m->st.grads,
                  &m->st.buffers);
    if ((rc = model_state_alloc_ws(&m->st, carve, m))) {
        din_free(m);
        return rc;
    }
    mlp_head_reset_buffers(&m->head);
    *out = m;
    return 0;
}

void din_free(din *m)
{
    if (!m) return;
    model_state_free(&m->st);
    free(m);
}

void din_init(din *m, uint64_t seed)
{
    if (m->st.params.block) param_set_randomize(&m->st.params, seed); /* not a view of another's */
    mlp_head_reset_buffers(&m->head);
}

float din_forward(din *m, const model_batch *bt, float *logits, int train)
{
    if (m->st.forward_only) train = 0; /* no training buffers: always an inference forward */
    const din_config *c = &m->cfg;
    size_t B = bt->b, E = m->e, M = m->m;
    m->b = B;
    embed_forward(&m->emb, m->ea, bt->target_item, bt->target_cat, B);
    din_branch_forward(&m->branch, m->bout, m->ea, bt, train);
    if (c->long_avgpool) {
        size_t nb = bt->long_shared ? 1 : B; /* shared: pool sample 0's sequence, copy it to the rest */
        m->lr = seq_pack(m->loff, m->l_item, m->l_cat, bt->long_item, bt->long_cat, bt->long_len, nb, bt->k);
        embed_forward(&m->emb, m->el, m->l_item, m->l_cat, m->lr);
        for (size_t b = 0; b < nb; b++) {
            float *lp = m->lp + b * E;
            size_t lo = m->loff[b], hi = m->loff[b + 1];
            memset(lp, 0, E * sizeof(float));
            for (size_t r = lo; r < hi; r++)
                for (size_t d = 0; d < E; d++) lp[d] += m->el[r * E + d];
            if (hi > lo)
                for (size_t d = 0; d < E; d++) lp[d] /= (float)(hi - lo);
        }
        for (size_t b = nb; b < B; b++) memcpy(m->lp + b * E, m->lp, E * sizeof(float));
    }
    for (size_t b = 0; b < B; b++) { /* the head's input: [e_a, v, e_a * v (, l)] */
        float *mi = m->m_in + b * M;
        memcpy(mi, m->ea + b * E, E * sizeof(float));
        memcpy(mi + E, m->bout + b * 2 * E, 2 * E * sizeof(float));
        if (c->long_avgpool) memcpy(mi + 3 * E, m->lp + b * E, E * sizeof(float));
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    return bt->label ? nn_bce_logits_forward(m->head.logit, bt->label, B) : 0.0f;
}

void din_backward(din *m, const model_batch *bt)
{
    assert(!m->st.forward_only); /* no gradients, no backward buffers */
    if (m->st.forward_only) return;
    const din_config *c = &m->cfg;
    size_t B = m->b, E = m->e, M = m->m;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * M * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    /* m = [e_a, v, e_a * v (, l)] */
    for (size_t b = 0; b < B; b++) memcpy(m->dea + b * E, m->dm + b * M, E * sizeof(float));
    if (c->long_avgpool) {
        for (size_t b = 0; b < B; b++) {
            size_t lo = m->loff[b], hi = m->loff[b + 1];
            const float *dl = m->dm + b * M + 3 * E;
            for (size_t r = lo; r < hi; r++)
                for (size_t d = 0; d < E; d++) m->del[r * E + d] = dl[d] / (float)(hi - lo);
        }
        embed_backward(&m->emb, m->del, m->l_item, m->l_cat, m->lr);
    }
    for (size_t b = 0; b < B; b++) memcpy(m->dbout + b * 2 * E, m->dm + b * M + E, 2 * E * sizeof(float));
    din_branch_backward(&m->branch, m->dea, m->dbout);
    embed_backward(&m->emb, m->dea, bt->target_item, bt->target_cat, B);
}
