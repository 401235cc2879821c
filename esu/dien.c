/*
 * dien.c: the DIEN model (see dien.h): GRU interest extractor with its
 * auxiliary loss, target attention, AUGRU interest evolution, the head.
 *
 * Sequences stay padded (B, S, .) here: the recurrent kernels take padded
 * batches with lengths and keep every padded step inert (models/nn_rnn.h).
 */
#include "esu/dien.h"

#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"
#include "models/nn_rnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dien {
    dien_config cfg;
    size_t max_b, max_s, e;
    model_state st;
    embed_layer emb;
    mlp_head head;
    const float *gru_w, *gru_u, *gru_b, *att_w, *aug_w, *aug_u, *aug_b;
    float *g_gru_w, *g_gru_u, *g_gru_b, *g_att_w, *g_aug_w, *g_aug_u, *g_aug_b;
    /* activations */
    float *ea, *es, *en, *h, *q, *sc, *att, *hfin, *pool, *m_in;
    float *gru_saved, *aug_saved, *scratch;
    float *dea, *des, *den, *dh, *dq, *dsc, *datt, *dhfin, *dpool, *dm, *dlogit;
    uint32_t *len; /* (B) clamped lengths */
    size_t b, s, n_aux;
    int aux; /* the last forward computed the auxiliary loss */
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

static void carve(void *ctx, arena *a)
{
    dien *m = ctx;
    size_t B = m->max_b, S = m->max_s, E = m->e, BS = B * S;
    size_t sv = nn_gru_saved_floats(B, S, E, E), sa = nn_augru_saved_floats(B, S, E, E);
    size_t sc1 = nn_gru_scratch_floats(B, S, E, E), sc2 = nn_augru_scratch_floats(B, S, E, E);
    m->ea = ARENA_FLOATS(a, B * E);
    m->es = ARENA_FLOATS(a, BS * E);
    m->en = ARENA_FLOATS(a, BS * E);
    m->h = ARENA_FLOATS(a, BS * E);
    m->q = ARENA_FLOATS(a, B * E);
    m->sc = ARENA_FLOATS(a, BS);
    m->att = ARENA_FLOATS(a, BS);
    m->hfin = ARENA_FLOATS(a, B * E);
    m->pool = ARENA_FLOATS(a, B * E);
    m->m_in = ARENA_FLOATS(a, B * 4 * E);
    m->gru_saved = ARENA_FLOATS(a, sv);
    m->aug_saved = ARENA_FLOATS(a, sa);
    m->scratch = ARENA_FLOATS(a, sc1 > sc2 ? sc1 : sc2);
    m->dea = ARENA_FLOATS(a, B * E);
    m->des = ARENA_FLOATS(a, BS * E);
    m->den = ARENA_FLOATS(a, BS * E);
    m->dh = ARENA_FLOATS(a, BS * E);
    m->dq = ARENA_FLOATS(a, B * E);
    m->dsc = ARENA_FLOATS(a, BS);
    m->datt = ARENA_FLOATS(a, BS);
    m->dhfin = ARENA_FLOATS(a, B * E);
    m->dpool = ARENA_FLOATS(a, B * E);
    m->dm = ARENA_FLOATS(a, B * 4 * E);
    m->dlogit = ARENA_FLOATS(a, B);
    m->len = ARENA_U32(a, B);
    mlp_head_carve(&m->head, a, B);
}

static int register_rnn(param_list *p, const char *name, size_t e)
{
    char n[PARAM_NAME_MAX];
    size_t w[2] = {3 * e, e}, b = 3 * e;
    snprintf(n, sizeof n, "%s.w", name);
    int rc = param_list_add(p, n, 2, w);
    snprintf(n, sizeof n, "%s.u", name);
    if (!rc) rc = param_list_add(p, n, 2, w);
    snprintf(n, sizeof n, "%s.b", name);
    if (!rc) rc = param_list_add(p, n, 1, &b);
    return rc;
}

static void bind(dien *m)
{
    param_set *p = &m->st.params, *g = &m->st.grads;
    static const char *const names[7] = {"dien.gru.w", "dien.gru.u", "dien.gru.b", "dien.att.w",
                                         "dien.augru.w", "dien.augru.u", "dien.augru.b"};
    const float **pv[7] = {&m->gru_w, &m->gru_u, &m->gru_b, &m->att_w, &m->aug_w, &m->aug_u, &m->aug_b};
    float **gv[7] = {&m->g_gru_w, &m->g_gru_u, &m->g_gru_b, &m->g_att_w, &m->g_aug_w, &m->g_aug_u, &m->g_aug_b};
    for (int i = 0; i < 7; i++) {
        *pv[i] = param_find(p, names[i]);
        *gv[i] = param_find(g, names[i]);
    }
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
    size_t E = m->e, att[2] = {E, E};
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    if (!rc) rc = register_rnn(&p, "dien.gru", E);
    if (!rc) rc = param_list_add(&p, "dien.att.w", 2, att);
    if (!rc) rc = register_rnn(&p, "dien.augru", E);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", 4 * E, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        dien_free(m);
        return rc;
    }
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, &m->st.params, &m->st.grads);
    bind(m);
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
    param_set_randomize(&m->st.params, seed);
    mlp_head_reset_buffers(&m->head);
}

static float sigmoidf_(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* log(sigmoid(x)), stable */
static float log_sigmoid(float x)
{
    return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x));
}

static float dot(const float *a, const float *b, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

float dien_forward(dien *m, const model_batch *bt, float *logits, int train)
{
    size_t B = bt->b, S = bt->s, E = m->e;
    m->b = B;
    m->s = S;
    for (size_t b = 0; b < B; b++) m->len[b] = bt->hist_len[b] < S ? bt->hist_len[b] : (uint32_t)S;
    embed_forward(&m->emb, m->ea, bt->target_item, bt->target_cat, B);
    embed_forward(&m->emb, m->es, bt->hist_item, bt->hist_cat, B * S);
    nn_gru_forward(m->h, NULL, m->gru_saved, m->scratch, m->es, m->len, m->gru_w, m->gru_u, m->gru_b, B, S, E, E);
    /* attention toward the target */
    nn_linear_forward(m->q, m->ea, m->att_w, NULL, B, E, E);
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < m->len[b]; t++) m->sc[b * S + t] = dot(m->h + (b * S + t) * E, m->q + b * E, E);
    nn_softmax_masked_forward(m->att, m->sc, m->len, B, S);
    nn_augru_forward(NULL, m->hfin, m->aug_saved, m->scratch, m->h, m->att, m->len, m->aug_w, m->aug_u, m->aug_b, B,
                     S, E, E);
    for (size_t b = 0; b < B; b++) {
        float *pool = m->pool + b * E, *mi = m->m_in + b * 4 * E;
        const float *ea = m->ea + b * E;
        memset(pool, 0, E * sizeof(float));
        for (size_t t = 0; t < m->len[b]; t++)
            for (size_t d = 0; d < E; d++) pool[d] += m->es[(b * S + t) * E + d];
        for (size_t d = 0; d < E; d++) {
            mi[d] = ea[d];
            mi[E + d] = m->hfin[b * E + d];
            mi[2 * E + d] = pool[d];
            mi[3 * E + d] = ea[d] * pool[d];
        }
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    if (!bt->label) return 0.0f;
    float loss = nn_bce_logits_forward(m->head.logit, bt->label, B);
    /* the auxiliary loss: each step's interest state against the next behavior and a negative */
    m->aux = train && bt->hist_neg_item && bt->hist_neg_cat && m->cfg.alpha_aux != 0.0f;
    m->n_aux = 0;
    if (m->aux) {
        embed_forward(&m->emb, m->en, bt->hist_neg_item, bt->hist_neg_cat, B * S);
        double sum = 0;
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t + 1 < m->len[b]; t++) {
                const float *h = m->h + (b * S + t) * E;
                sum += log_sigmoid(dot(h, m->es + (b * S + t + 1) * E, E)) +
                       log_sigmoid(-dot(h, m->en + (b * S + t + 1) * E, E));
                m->n_aux++;
            }
        if (m->n_aux) loss += m->cfg.alpha_aux * (float)(-sum / (double)m->n_aux);
    }
    return loss;
}

void dien_backward(dien *m, const model_batch *bt)
{
    size_t B = m->b, S = m->s, E = m->e;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * 4 * E * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    memset(m->des, 0, B * S * E * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        const float *dmi = m->dm + b * 4 * E, *ea = m->ea + b * E, *pool = m->pool + b * E;
        float *dea = m->dea + b * E, *dpool = m->dpool + b * E;
        for (size_t d = 0; d < E; d++) {
            dea[d] = dmi[d] + dmi[3 * E + d] * pool[d];
            m->dhfin[b * E + d] = dmi[E + d];
            dpool[d] = dmi[2 * E + d] + dmi[3 * E + d] * ea[d];
        }
        for (size_t t = 0; t < m->len[b]; t++)
            for (size_t d = 0; d < E; d++) m->des[(b * S + t) * E + d] += dpool[d];
    }
    /* AUGRU: gradients for its input h and the attention */
    memset(m->dh, 0, B * S * E * sizeof(float));
    memset(m->datt, 0, B * S * sizeof(float));
    nn_augru_backward(m->dh, m->datt, m->g_aug_w, m->g_aug_u, m->g_aug_b, m->scratch, NULL, m->dhfin, m->aug_saved,
                      m->h, m->att, m->len, m->aug_w, m->aug_u, B, S, E, E);
    memset(m->dsc, 0, B * S * sizeof(float));
    nn_softmax_masked_backward(m->dsc, m->datt, m->att, m->len, B, S);
    memset(m->dq, 0, B * E * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        const float *q = m->q + b * E;
        float *dq = m->dq + b * E;
        for (size_t t = 0; t < m->len[b]; t++) {
            float ds = m->dsc[b * S + t];
            const float *h = m->h + (b * S + t) * E;
            float *dh = m->dh + (b * S + t) * E;
            for (size_t d = 0; d < E; d++) {
                dh[d] += ds * q[d];
                dq[d] += ds * h[d];
            }
        }
    }
    nn_linear_backward(m->dea, m->g_att_w, NULL, m->dq, m->ea, m->att_w, B, E, E);
    /* the auxiliary loss */
    if (m->aux && m->n_aux) {
        memset(m->den, 0, B * S * E * sizeof(float));
        float scale = m->cfg.alpha_aux / (float)m->n_aux;
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t + 1 < m->len[b]; t++) {
                const float *h = m->h + (b * S + t) * E, *ep = m->es + (b * S + t + 1) * E,
                            *en = m->en + (b * S + t + 1) * E;
                float *dh = m->dh + (b * S + t) * E, *dep = m->des + (b * S + t + 1) * E,
                      *den = m->den + (b * S + t + 1) * E;
                float gp = scale * (sigmoidf_(dot(h, ep, E)) - 1.0f); /* d(-log sigmoid(x)) */
                float gn = scale * sigmoidf_(dot(h, en, E));          /* d(-log(1 - sigmoid(x))) */
                for (size_t d = 0; d < E; d++) {
                    dh[d] += gp * ep[d] + gn * en[d];
                    dep[d] += gp * h[d];
                    den[d] += gn * h[d];
                }
            }
        embed_backward(&m->emb, m->den, bt->hist_neg_item, bt->hist_neg_cat, B * S);
    }
    /* the extractor GRU */
    nn_gru_backward(m->des, m->g_gru_w, m->g_gru_u, m->g_gru_b, m->scratch, m->dh, NULL, m->gru_saved, m->es, m->len,
                    m->gru_w, m->gru_u, B, S, E, E);
    embed_backward(&m->emb, m->dea, bt->target_item, bt->target_cat, B);
    embed_backward(&m->emb, m->des, bt->hist_item, bt->hist_cat, B * S);
}
