/*
 * sim.c: the SIM model (see sim.h): embeddings shared by every part, the
 * DIN branch over short-term behaviors, the GSU (hard: given; soft: scored
 * here), the ESU over the selected behaviors, and the head.
 */
#include "esu/sim.h"

#include "esu/din_unit.h"
#include "esu/esu_attention.h"
#include "gsu/soft_search.h"
#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"
#include "models/seq_pack.h"

#include <stdlib.h>
#include <string.h>

struct sim {
    sim_config cfg;
    size_t max_b, max_s, max_k;
    size_t e, u, m; /* behavior width, ESU output width, head input width */
    model_state st;
    embed_layer emb;
    din_unit unit;
    esu_attention esu;
    soft_gsu gsu;
    mlp_head head;
    /* activations */
    float *ea, *es, *el, *v, *ul, *m_in, *el_sel, *score;
    float *dea, *des, *del, *del_sel, *dv, *dul, *dm, *dlogit;
    uint32_t *off, *loff, *sel_off, *sel, *sel_pos, *topk_scratch, *r_item, *r_cat, *l_item, *l_cat;
    int64_t *l_ts, *ts_sel;
    size_t b, r, lr, nsel;
    int trained_gsu; /* the last forward ran the auxiliary head */
};

void sim_config_default(sim_config *c, uint32_t n_items, uint32_t n_cats, sim_gsu_mode gsu, int time_info)
{
    memset(c, 0, sizeof *c);
    din_config_default(&c->base, n_items, n_cats);
    c->gsu = gsu;
    c->topk = 50;
    c->heads = 4;
    c->d_head = 16;
    c->d_time = time_info ? 8 : 0;
    c->gsu_d = 32;
    c->alpha = gsu == SIM_GSU_SOFT ? 1.0f : 0.0f;
}

param_set *sim_params(sim *m) { return &m->st.params; }
param_set *sim_grads(sim *m) { return &m->st.grads; }
param_set *sim_buffers(sim *m) { return &m->st.buffers; }

static void carve(void *ctx, arena *a)
{
    sim *m = ctx;
    size_t B = m->max_b, R = B * m->max_s, L = B * m->max_k, E = m->e;
    m->ea = ARENA_FLOATS(a, B * E);
    m->es = ARENA_FLOATS(a, R * E);
    m->el = ARENA_FLOATS(a, L * E);
    m->el_sel = ARENA_FLOATS(a, L * E);
    m->score = ARENA_FLOATS(a, L);
    m->v = ARENA_FLOATS(a, B * E);
    m->ul = ARENA_FLOATS(a, B * m->u);
    m->m_in = ARENA_FLOATS(a, B * m->m);
    m->dea = ARENA_FLOATS(a, B * E);
    m->des = ARENA_FLOATS(a, R * E);
    m->del = ARENA_FLOATS(a, L * E);
    m->del_sel = ARENA_FLOATS(a, L * E);
    m->dv = ARENA_FLOATS(a, B * E);
    m->dul = ARENA_FLOATS(a, B * m->u);
    m->dm = ARENA_FLOATS(a, B * m->m);
    m->dlogit = ARENA_FLOATS(a, B);
    m->off = ARENA_U32(a, B + 1);
    m->loff = ARENA_U32(a, B + 1);
    m->sel_off = ARENA_U32(a, B + 1);
    m->sel = ARENA_U32(a, L);
    m->sel_pos = ARENA_U32(a, L);
    m->topk_scratch = ARENA_U32(a, m->cfg.topk);
    m->r_item = ARENA_U32(a, R);
    m->r_cat = ARENA_U32(a, R);
    m->l_item = ARENA_U32(a, L);
    m->l_cat = ARENA_U32(a, L);
    m->l_ts = (int64_t *)arena_take(a, L, sizeof(int64_t));
    m->ts_sel = (int64_t *)arena_take(a, L, sizeof(int64_t));
    din_unit_carve(&m->unit, a, R);
    esu_attention_carve(&m->esu, a, B, L);
    if (m->cfg.gsu == SIM_GSU_SOFT) soft_gsu_carve(&m->gsu, a, B, L);
    mlp_head_carve(&m->head, a, B);
}

int sim_new(sim **out, const sim_config *cfg, size_t max_b, size_t max_s, size_t max_k)
{
    *out = NULL;
    const din_config *c = &cfg->base;
    if (!max_b || !c->d_item || !c->d_cat || !cfg->heads || !cfg->d_head || !cfg->topk ||
        (cfg->gsu == SIM_GSU_SOFT && !cfg->gsu_d) || max_b * (max_s + 1) > UINT32_MAX ||
        max_b * (max_k + 1) > UINT32_MAX)
        return LSIM_E_INVAL;
    sim *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->max_s = max_s;
    m->max_k = max_k;
    m->e = (size_t)c->d_item + c->d_cat;
    m->u = (size_t)cfg->heads * (m->e + cfg->d_time);
    m->m = 3 * m->e + m->u;
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    if (!rc) rc = din_unit_register(&p, "att", m->e, c->att_h1, c->att_h2);
    if (!rc) rc = esu_attention_register(&p, m->e, cfg->d_time, cfg->heads, cfg->d_head, ESU_TIME_BUCKETS);
    if (!rc && cfg->gsu == SIM_GSU_SOFT) rc = soft_gsu_register(&p, &b, m->e, cfg->gsu_d, c->mlp_h1, c->mlp_h2);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", m->m, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        sim_free(m);
        return rc;
    }
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, &m->st.params, &m->st.grads);
    din_unit_bind(&m->unit, "att", m->e, c->att_h1, c->att_h2, c->att_softmax, &m->st.params, &m->st.grads);
    esu_attention_bind(&m->esu, m->e, cfg->d_time, cfg->heads, cfg->d_head, ESU_TIME_BUCKETS, &m->st.params, &m->st.grads);
    if (cfg->gsu == SIM_GSU_SOFT)
        soft_gsu_bind(&m->gsu, m->e, cfg->gsu_d, c->mlp_h1, c->mlp_h2, c->dice_momentum, &m->st.params, &m->st.grads,
                      &m->st.buffers);
    mlp_head_bind(&m->head, "mlp", m->m, c->mlp_h1, c->mlp_h2, c->dice_momentum, &m->st.params, &m->st.grads,
                  &m->st.buffers);
    if ((rc = model_state_alloc_ws(&m->st, carve, m))) {
        sim_free(m);
        return rc;
    }
    sim_init(m, 1);
    *out = m;
    return 0;
}

void sim_free(sim *m)
{
    if (!m) return;
    model_state_free(&m->st);
    free(m);
}

void sim_init(sim *m, uint64_t seed)
{
    param_set_randomize(&m->st.params, seed);
    mlp_head_reset_buffers(&m->head);
    if (m->cfg.gsu == SIM_GSU_SOFT) mlp_head_reset_buffers(&m->gsu.aux);
}

size_t sim_selected(const sim *m, size_t b, const uint32_t **rows)
{
    *rows = m->sel_pos + m->sel_off[b];
    return m->sel_off[b + 1] - m->sel_off[b];
}

float sim_forward(sim *m, const model_batch *bt, float *logits, int train)
{
    const sim_config *cfg = &m->cfg;
    size_t B = bt->b, E = m->e, M = m->m;
    m->b = B;
    m->r = seq_pack(m->off, m->r_item, m->r_cat, bt->hist_item, bt->hist_cat, bt->hist_len, B, bt->s);
    embed_forward(&m->emb, m->ea, bt->target_item, bt->target_cat, B);
    embed_forward(&m->emb, m->es, m->r_item, m->r_cat, m->r);
    din_unit_forward(&m->unit, m->v, m->ea, m->es, m->off, B);
    /* the long sequence, packed, with its times */
    m->lr = seq_pack(m->loff, m->l_item, m->l_cat, bt->long_item, bt->long_cat, bt->long_len, B, bt->k);
    for (size_t b = 0; b < B; b++)
        for (size_t r = m->loff[b]; r < m->loff[b + 1]; r++) m->l_ts[r] = bt->long_ts[b * bt->k + (r - m->loff[b])];
    embed_forward(&m->emb, m->el, m->l_item, m->l_cat, m->lr);
    float aux_loss = 0;
    m->trained_gsu = 0;
    if (cfg->gsu == SIM_GSU_SOFT) {
        const float *label = train ? bt->label : NULL;
        aux_loss = soft_gsu_forward(&m->gsu, m->score, m->ea, m->el, m->loff, B, label, train);
        m->trained_gsu = label != NULL;
        m->nsel = soft_gsu_topk(m->sel_off, m->sel, m->topk_scratch, m->score, m->loff, B, cfg->topk);
    } else {
        /* the index already chose: keep the newest topk of each sample */
        size_t n = 0;
        for (size_t b = 0; b < B; b++) {
            m->sel_off[b] = (uint32_t)n;
            size_t lo = m->loff[b], hi = m->loff[b + 1];
            if (hi - lo > cfg->topk) lo = hi - cfg->topk;
            for (size_t r = lo; r < hi; r++) m->sel[n++] = (uint32_t)r;
        }
        m->sel_off[B] = (uint32_t)n;
        m->nsel = n;
    }
    for (size_t b = 0; b < B; b++)
        for (size_t i = m->sel_off[b]; i < m->sel_off[b + 1]; i++) {
            uint32_t r = m->sel[i];
            m->sel_pos[i] = r - m->loff[b];
            memcpy(m->el_sel + i * E, m->el + (size_t)r * E, E * sizeof(float));
            m->ts_sel[i] = m->l_ts[r];
        }
    esu_attention_forward(&m->esu, m->ul, m->ea, m->el_sel, m->ts_sel, bt->now, m->sel_off, B);
    for (size_t b = 0; b < B; b++) {
        float *mi = m->m_in + b * M;
        const float *ea = m->ea + b * E, *v = m->v + b * E;
        for (size_t d = 0; d < E; d++) {
            mi[d] = ea[d];
            mi[E + d] = v[d];
            mi[2 * E + d] = ea[d] * v[d];
        }
        memcpy(mi + 3 * E, m->ul + b * m->u, m->u * sizeof(float));
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    if (!bt->label) return 0.0f;
    return nn_bce_logits_forward(m->head.logit, bt->label, B) + cfg->alpha * aux_loss;
}

void sim_backward(sim *m, const model_batch *bt)
{
    const sim_config *cfg = &m->cfg;
    size_t B = m->b, E = m->e, M = m->m;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * M * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    for (size_t b = 0; b < B; b++) {
        const float *dmi = m->dm + b * M, *ea = m->ea + b * E, *v = m->v + b * E;
        float *dea = m->dea + b * E, *dv = m->dv + b * E;
        for (size_t d = 0; d < E; d++) {
            dea[d] = dmi[d] + dmi[2 * E + d] * v[d];
            dv[d] = dmi[E + d] + dmi[2 * E + d] * ea[d];
        }
    }
    /* ESU over the selected rows (its upstream gradient: the last u columns of dm);
     * their gradients go back to the long rows they came from */
    for (size_t b = 0; b < B; b++) memcpy(m->dul + b * m->u, m->dm + b * M + 3 * E, m->u * sizeof(float));
    memset(m->del_sel, 0, m->nsel * E * sizeof(float));
    esu_attention_backward(&m->esu, m->dea, m->del_sel, m->dul);
    memset(m->del, 0, m->lr * E * sizeof(float));
    for (size_t i = 0; i < m->nsel; i++) {
        float *d = m->del + (size_t)m->sel[i] * E;
        const float *s = m->del_sel + i * E;
        for (size_t k = 0; k < E; k++) d[k] += s[k];
    }
    if (cfg->gsu == SIM_GSU_SOFT && m->trained_gsu && cfg->alpha != 0.0f)
        soft_gsu_backward(&m->gsu, m->dea, m->del, bt->label, cfg->alpha);
    memset(m->des, 0, m->r * E * sizeof(float));
    din_unit_backward(&m->unit, m->dea, m->des, m->dv);
    embed_backward(&m->emb, m->dea, bt->target_item, bt->target_cat, B);
    embed_backward(&m->emb, m->des, m->r_item, m->r_cat, m->r);
    embed_backward(&m->emb, m->del, m->l_item, m->l_cat, m->lr);
}
