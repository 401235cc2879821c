/*
 * sim.c: the SIM model (see sim.h): embeddings shared by every part, the
 * DIN branch over short-term behaviors, the GSU (hard: given; soft: scored
 * here), the ESU over the selected behaviors, and the head.
 */
#include "esu/sim.h"

#include "esu/dien_branch.h"
#include "esu/din_branch.h"
#include "esu/dsin_branch.h"
#include "esu/esu_attention.h"
#include "esu/recency_input.h"
#include "gsu/soft_search.h"
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

struct sim {
    sim_config cfg;
    size_t max_b, max_s, max_k;
    size_t e, u, bw, rw, m; /* behavior, ESU output, branch output, recency input, head input widths */
    model_state st;
    embed_layer emb;
    din_branch din;
    dien_branch dien;
    dsin_branch dsin;
    esu_attention esu;
    recency_input rec;
    soft_gsu gsu;
    mlp_head head;
    /* activations */
    float *ea, *el, *bout, *ul, *m_in, *el_sel, *score;
    float *dea, *del, *del_sel, *dbout, *dul, *dm, *dlogit;
    uint32_t *loff, *sel_off, *sel, *sel_pos, *l_item, *l_cat;
    uint32_t *row0, *rcnt, *gfirst; /* (B) the ESU's rows of each sample; a group's first row */
    uint64_t *topk_scratch;
    int64_t *l_ts, *ts_sel;
    uint32_t *l_bucket; /* (L) each long row's time bucket (the soft GSU's recency bias) */
    size_t nt;          /* the soft GSU's recency-bias buckets (0: none) */
    size_t b, lr, nsel;
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
    c->branch = SIM_BRANCH_DIN;
    c->alpha_aux = 1.0f;
    dsin_config_default(&c->dsin, n_items, n_cats);
}

param_set *sim_params(sim *m) { return &m->st.params; }
param_set *sim_grads(sim *m) { return &m->st.grads; }
param_set *sim_buffers(sim *m) { return &m->st.buffers; }
size_t sim_workspace_bytes(const sim *m) { return m->st.ws_bytes; }

static void carve(void *ctx, arena *a)
{
    sim *m = ctx;
    size_t B = m->max_b, L = B * m->max_k, E = m->e;
    m->ea = ARENA_FLOATS(a, B * E);
    m->el = ARENA_FLOATS(a, L * E);
    m->el_sel = ARENA_FLOATS(a, L * E);
    m->score = ARENA_FLOATS(a, L);
    m->bout = ARENA_FLOATS(a, B * m->bw);
    m->ul = ARENA_FLOATS(a, B * m->u);
    m->m_in = ARENA_FLOATS(a, B * m->m);
    m->dea = ARENA_TRAIN_FLOATS(a, B * E);
    m->del = ARENA_TRAIN_FLOATS(a, L * E);
    m->del_sel = ARENA_TRAIN_FLOATS(a, L * E);
    m->dbout = ARENA_TRAIN_FLOATS(a, B * m->bw);
    m->dul = ARENA_TRAIN_FLOATS(a, B * m->u);
    m->dm = ARENA_TRAIN_FLOATS(a, B * m->m);
    m->dlogit = ARENA_TRAIN_FLOATS(a, B);
    m->loff = ARENA_U32(a, B + 1);
    m->sel_off = ARENA_U32(a, B + 1);
    m->sel = ARENA_U32(a, L);
    m->sel_pos = ARENA_U32(a, L);
    m->row0 = ARENA_U32(a, B);
    m->rcnt = ARENA_U32(a, B);
    m->gfirst = ARENA_U32(a, B);
    m->topk_scratch = (uint64_t *)arena_take(a, m->cfg.topk, sizeof(uint64_t));
    m->l_item = ARENA_U32(a, L);
    m->l_cat = ARENA_U32(a, L);
    m->l_ts = (int64_t *)arena_take(a, L, sizeof(int64_t));
    m->ts_sel = (int64_t *)arena_take(a, L, sizeof(int64_t));
    m->l_bucket = ARENA_U32(a, m->nt ? L : 0);
    switch (m->cfg.branch) {
    case SIM_BRANCH_DIN: din_branch_carve(&m->din, a, B, m->max_s); break;
    case SIM_BRANCH_DIEN: dien_branch_carve(&m->dien, a, B, m->max_s); break;
    case SIM_BRANCH_DSIN: dsin_branch_carve(&m->dsin, a, B); break;
    }
    esu_attention_carve(&m->esu, a, B, L);
    if (m->rw) recency_input_carve(&m->rec, a, B);
    if (m->cfg.gsu == SIM_GSU_SOFT) soft_gsu_carve(&m->gsu, a, B, L);
    mlp_head_carve(&m->head, a, B);
}

int sim_new(sim **out, const sim_config *cfg, size_t max_b, size_t max_s, size_t max_k)
{
    *out = NULL;
    const din_config *c = &cfg->base;
    if (!max_b || !c->d_item || !c->d_cat || !cfg->heads || !cfg->d_head || !cfg->topk ||
        (cfg->gsu == SIM_GSU_SOFT && !cfg->gsu_d) || (cfg->recency && !cfg->d_time) ||
        (cfg->gsu_recency && (cfg->gsu != SIM_GSU_SOFT || !cfg->d_time)) || (cfg->recency_cat && !cfg->recency) ||
        max_b * (max_s + 1) > UINT32_MAX || max_b * (max_k + 1) > UINT32_MAX)
        return LSIM_E_INVAL;
    sim *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->max_s = max_s;
    m->max_k = max_k;
    m->e = (size_t)c->d_item + c->d_cat;
    m->u = (size_t)cfg->heads * (m->e + cfg->d_time);
    const dsin_config *dc = &cfg->dsin;
    size_t E = m->e, dsin_h = dc->d_lstm ? dc->d_lstm : E, dsin_f = dc->d_ffn ? dc->d_ffn : 4 * E;
    if (cfg->branch == SIM_BRANCH_DSIN &&
        (!dc->max_sessions || !dc->session_len || !dc->heads || E % dc->heads || dc->session_gap < 0)) {
        free(m);
        return LSIM_E_INVAL;
    }
    m->bw = cfg->branch == SIM_BRANCH_DIN ? 2 * E : cfg->branch == SIM_BRANCH_DIEN ? 3 * E : E + dsin_h;
    m->rw = cfg->recency ? cfg->d_time * (cfg->recency_cat ? 2 : 1) : 0;
    m->nt = cfg->gsu_recency ? ESU_TIME_BUCKETS : 0;
    m->m = E + m->bw + m->u + m->rw;
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    if (!rc) {
        switch (cfg->branch) {
        case SIM_BRANCH_DIN: rc = din_branch_register(&p, E, c->att_h1, c->att_h2); break;
        case SIM_BRANCH_DIEN: rc = dien_branch_register(&p, E); break;
        case SIM_BRANCH_DSIN:
            rc = dsin_branch_register(&p, E, dc->max_sessions, dc->session_len, dsin_h, dsin_f);
            break;
        }
    }
    if (!rc) rc = esu_attention_register(&p, m->e, cfg->d_time, cfg->heads, cfg->d_head, ESU_TIME_BUCKETS);
    if (!rc && m->rw) rc = recency_input_register(&p, cfg->d_time, ESU_TIME_BUCKETS, (int)cfg->recency_cat);
    if (!rc && cfg->gsu == SIM_GSU_SOFT) rc = soft_gsu_register(&p, &b, m->e, cfg->gsu_d, c->mlp_h1, c->mlp_h2, m->nt);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", m->m, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        sim_free(m);
        return rc;
    }
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, &m->st.params, &m->st.grads);
    switch (cfg->branch) {
    case SIM_BRANCH_DIN:
        din_branch_bind(&m->din, E, c->att_h1, c->att_h2, c->att_softmax, &m->emb, &m->st.params, &m->st.grads);
        break;
    case SIM_BRANCH_DIEN: dien_branch_bind(&m->dien, E, cfg->alpha_aux, &m->emb, &m->st.params, &m->st.grads); break;
    case SIM_BRANCH_DSIN:
        dsin_branch_bind(&m->dsin, E, dc->max_sessions, dc->session_len, dsin_h, dsin_f, dc->heads,
                         dc->min_session_len, dc->session_gap, &m->emb, &m->st.params, &m->st.grads);
        break;
    }
    esu_attention_bind(&m->esu, m->e, cfg->d_time, cfg->heads, cfg->d_head, ESU_TIME_BUCKETS, &m->st.params,
                       &m->st.grads);
    if (m->rw) recency_input_bind(&m->rec, cfg->d_time, ESU_TIME_BUCKETS, (int)cfg->recency_cat, &m->st.params,
                                &m->st.grads);
    if (cfg->gsu == SIM_GSU_SOFT)
        soft_gsu_bind(&m->gsu, m->e, c->d_item, cfg->gsu_d, c->mlp_h1, c->mlp_h2, m->nt, c->dice_momentum,
                      (int)cfg->gsu_softmax, &m->st.params, &m->st.grads, &m->st.buffers);
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
    if (m->st.params.block) { /* not a view of another model's parameters */
        param_set_randomize(&m->st.params, seed);
        if (m->cfg.branch == SIM_BRANCH_DSIN) dsin_branch_init(&m->dsin, seed);
        if (m->cfg.branch == SIM_BRANCH_DIEN) dien_branch_init(&m->dien);
        if (m->cfg.gsu == SIM_GSU_SOFT) {
            /* W_b = W_a: r_i = e_i' W' W e_a, E[W' W] proportional to I, so the search starts as a similarity of
             * the shared embeddings (the same item, then the same category rank first) and learns from there */
            float *wa = param_find(&m->st.params, "gsu.wa"), *wb = param_find(&m->st.params, "gsu.wb");
            memcpy(wb, wa, (size_t)m->cfg.gsu_d * m->e * sizeof *wb);
            if (m->nt) /* the recency bias starts at 0: the similarity alone */
                memset(param_find(&m->st.params, "gsu.time_bias"), 0, m->nt * sizeof(float));
        }
    }
    mlp_head_reset_buffers(&m->head);
    if (m->cfg.gsu == SIM_GSU_SOFT) mlp_head_reset_buffers(&m->gsu.aux);
}

size_t sim_selected(const sim *m, size_t b, const uint32_t **rows)
{
    *rows = m->sel_pos + m->sel_off[b];
    return m->sel_off[b + 1] - m->sel_off[b];
}

void sim_attention(const sim *m, size_t b, float *w)
{
    size_t q = m->esu.heads, n = m->sel_off[b + 1] - m->sel_off[b];
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (size_t h = 0; h < q; h++) s += m->esu.att[(m->row0[b] + i) * q + h];
        w[i] = s / (float)q;
    }
}

/* SIM hard at serving (bt->long_group): each group's list embedded once, its
 * newest topk; sample b attends over rows row0[b] .. row0[b] + rcnt[b] - 1,
 * its group's. Returns 0, doing nothing, for a group id out of range. */
static int long_rows_grouped(sim *m, const model_batch *bt)
{
    size_t B = bt->b, K = bt->k, T = m->cfg.topk, r = 0, n = 0;
    for (size_t b = 0; b < B; b++)
        if (bt->long_group[b] >= B) return 0;
    memset(m->gfirst, 0xff, B * sizeof *m->gfirst);
    for (size_t b = 0; b < B; b++) {
        uint32_t g = bt->long_group[b];
        size_t len = bt->long_len[b] < K ? bt->long_len[b] : K, from = len > T ? len - T : 0;
        if (m->gfirst[g] == UINT32_MAX) {
            m->gfirst[g] = (uint32_t)r;
            for (size_t j = from; j < len; j++, r++) {
                m->l_item[r] = bt->long_item[b * K + j];
                m->l_cat[r] = bt->long_cat[b * K + j];
                m->l_ts[r] = bt->long_ts[b * K + j];
            }
        }
        m->row0[b] = m->gfirst[g];
        m->rcnt[b] = (uint32_t)(len - from);
        m->sel_off[b] = (uint32_t)n;
        for (size_t j = from; j < len; j++) m->sel_pos[n++] = (uint32_t)j;
    }
    m->sel_off[B] = (uint32_t)n;
    m->nsel = n;
    m->lr = r;
    embed_forward(&m->emb, m->el, m->l_item, m->l_cat, r);
    return 1;
}

/* Every other case: each sample's long list packed (or, one request's shared
 * sequence, embedded once), the GSU's choice (soft) or the newest topk, and
 * the chosen rows for the ESU (*el_sel, *ts_sel; row0 / rcnt set). Returns the
 * soft GSU's auxiliary loss (training). */
static float long_rows_selected(sim *m, const model_batch *bt, int train, int search, const float **el_sel,
                                const int64_t **ts_sel)
{
    const sim_config *cfg = &m->cfg;
    size_t B = bt->b, E = m->e;
    float aux = 0;
    /* one request (inference, every sample with sample 0's long sequence): embed and
     * score the sequence once; sample b's rows are then the virtual rows b N .. b N + N - 1 */
    int shared = !train && B > 1 && !bt->long_selected && !nn_reference_forced() && batch_shared_long(bt);
    for (size_t b = 1; shared && m->nt && search && b < B; b++) /* the recency bias: one request time */
        shared = bt->now[b] == bt->now[0];
    size_t n0 = shared ? (bt->long_len[0] < bt->k ? bt->long_len[0] : bt->k) : 0;
    if (shared) {
        embed_forward(&m->emb, m->el, bt->long_item, bt->long_cat, n0);
        memcpy(m->l_ts, bt->long_ts, n0 * sizeof *m->l_ts);
        for (size_t b = 0; b <= B; b++) m->loff[b] = (uint32_t)(b * n0);
        m->lr = 0;
    } else { /* the long sequence, packed, with its times */
        m->lr = seq_pack(m->loff, m->l_item, m->l_cat, bt->long_item, bt->long_cat, bt->long_len, B, bt->k);
        for (size_t b = 0; b < B; b++)
            for (size_t r = m->loff[b]; r < m->loff[b + 1]; r++)
                m->l_ts[r] = bt->long_ts[b * bt->k + (r - m->loff[b])];
        embed_forward(&m->emb, m->el, m->l_item, m->l_cat, m->lr);
    }
    if (search && m->nt) { /* the recency bias's buckets: each row's age at its sample's time */
        for (size_t r = 0; shared && r < n0; r++)
            m->l_bucket[r] = esu_time_bucket(bt->now[0] - m->l_ts[r], ESU_TIME_BUCKETS);
        for (size_t b = 0; !shared && b < B; b++)
            for (size_t r = m->loff[b]; r < m->loff[b + 1]; r++)
                m->l_bucket[r] = esu_time_bucket(bt->now[b] - m->l_ts[r], ESU_TIME_BUCKETS);
    }
    if (search && shared) {
        soft_gsu_score_shared(&m->gsu, m->score, m->ea, m->el, n0, B, m->l_bucket);
        m->nsel = soft_gsu_topk(m->sel_off, m->sel, m->topk_scratch, m->score, m->loff, B, cfg->topk);
    } else if (search && !train) {
        soft_gsu_score_infer(&m->gsu, m->score, m->ea, m->el, m->loff, B, m->l_bucket);
        m->nsel = soft_gsu_topk(m->sel_off, m->sel, m->topk_scratch, m->score, m->loff, B, cfg->topk);
    } else if (search) {
        const float *label = bt->label;
        aux = soft_gsu_forward(&m->gsu, m->score, m->ea, m->el, m->loff, B, m->l_bucket, label, train);
        m->trained_gsu = label != NULL;
        m->nsel = soft_gsu_topk(m->sel_off, m->sel, m->topk_scratch, m->score, m->loff, B, cfg->topk);
    } else {
        /* the index (hard) or the engine (long_selected) already chose: keep the newest topk of each sample */
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
    /* the selected rows, in a block of their own; at inference, when every row is kept (the
     * index or the engine chose them: never more than topk), the long rows are that block */
    int all_kept = !train && !shared && m->nsel == m->lr;
    for (size_t b = 0; b < B; b++)
        for (size_t i = m->sel_off[b]; i < m->sel_off[b + 1]; i++) {
            uint32_t r = m->sel[i], src = shared ? r - m->loff[b] : r; /* shared: one copy of the rows */
            m->sel_pos[i] = r - m->loff[b];
            if (all_kept) continue;
            memcpy(m->el_sel + i * E, m->el + (size_t)src * E, E * sizeof(float));
            m->ts_sel[i] = m->l_ts[src];
        }
    for (size_t b = 0; b < B; b++) m->row0[b] = m->sel_off[b], m->rcnt[b] = m->sel_off[b + 1] - m->sel_off[b];
    *el_sel = all_kept ? m->el : m->el_sel;
    *ts_sel = all_kept ? m->l_ts : m->ts_sel;
    return aux;
}

float sim_forward(sim *m, const model_batch *bt, float *logits, int train)
{
    if (m->st.forward_only) train = 0; /* no training buffers: always an inference forward */
    const sim_config *cfg = &m->cfg;
    size_t B = bt->b, E = m->e, M = m->m;
    m->b = B;
    embed_forward(&m->emb, m->ea, bt->target_item, bt->target_cat, B);
    /* the short-term branch */
    float branch_aux = 0;
    switch (cfg->branch) {
    case SIM_BRANCH_DIN: din_branch_forward(&m->din, m->bout, m->ea, bt, train); break;
    case SIM_BRANCH_DIEN: branch_aux = dien_branch_forward(&m->dien, m->bout, m->ea, bt, train); break;
    case SIM_BRANCH_DSIN: dsin_branch_forward(&m->dsin, m->bout, m->ea, bt, train); break;
    }
    float aux_loss = 0;
    m->trained_gsu = 0;
    int search = cfg->gsu == SIM_GSU_SOFT && !bt->long_selected; /* else the lists are the choice */
    int infer = !train && !nn_reference_forced(); /* else the training forward, the reference */
    const float *el_sel = m->el;
    const int64_t *ts_sel = m->l_ts;
    if (!(infer && !search && bt->long_group && long_rows_grouped(m, bt)))
        aux_loss = long_rows_selected(m, bt, train, search, &el_sel, &ts_sel);
    if (infer) esu_attention_forward_infer(&m->esu, m->ul, m->ea, el_sel, ts_sel, bt->now, m->row0, m->rcnt, B);
    else esu_attention_forward(&m->esu, m->ul, m->ea, el_sel, ts_sel, bt->now, m->sel_off, B);
    for (size_t b = 0; b < B; b++) { /* the head's input: [e_a, branch output, U_lt, recency] */
        float *mi = m->m_in + b * M;
        memcpy(mi, m->ea + b * E, E * sizeof(float));
        memcpy(mi + E, m->bout + b * m->bw, m->bw * sizeof(float));
        memcpy(mi + E + m->bw, m->ul + b * m->u, m->u * sizeof(float));
    }
    if (m->rw) recency_input_forward(&m->rec, m->m_in + E + m->bw + m->u, M, bt);
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    if (!bt->label) return 0.0f;
    return nn_bce_logits_forward(m->head.logit, bt->label, B) + cfg->alpha * aux_loss + branch_aux;
}

void sim_backward(sim *m, const model_batch *bt)
{
    assert(!m->st.forward_only); /* no gradients, no backward buffers */
    if (m->st.forward_only) return;
    const sim_config *cfg = &m->cfg;
    size_t B = m->b, E = m->e, M = m->m;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * M * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    if (m->rw) recency_input_backward(&m->rec, m->dm + E + m->bw + m->u, M);
    for (size_t b = 0; b < B; b++) { /* split d[e_a, branch output, U_lt, recency] */
        const float *dmi = m->dm + b * M;
        memcpy(m->dea + b * E, dmi, E * sizeof(float));
        memcpy(m->dbout + b * m->bw, dmi + E, m->bw * sizeof(float));
        memcpy(m->dul + b * m->u, dmi + E + m->bw, m->u * sizeof(float));
    }
    /* ESU over the selected rows; their gradients go back to the long rows they came from */
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
    switch (cfg->branch) {
    case SIM_BRANCH_DIN: din_branch_backward(&m->din, m->dea, m->dbout); break;
    case SIM_BRANCH_DIEN: dien_branch_backward(&m->dien, m->dea, m->dbout, bt); break;
    case SIM_BRANCH_DSIN: dsin_branch_backward(&m->dsin, m->dea, m->dbout, bt); break;
    }
    embed_backward(&m->emb, m->dea, bt->target_item, bt->target_cat, B);
    embed_backward(&m->emb, m->del, m->l_item, m->l_cat, m->lr);
}
