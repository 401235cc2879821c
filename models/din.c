/*
 * din.c: DIN forward and backward (see din.h for the model, exactly).
 *
 * History rows are packed: only the valid positions of each sample are
 * embedded and scored, sample b's rows being [off[b], off[b+1]). So padding
 * costs nothing and can never leak into a result or a gradient.
 *
 * Every activation lives in one workspace sized at din_new for the largest
 * batch; forward and backward allocate nothing.
 */
#include "models/din.h"

#include "lsim.h"
#include "models/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Activations and their gradients, carved from one block. */
typedef struct din_ws {
    float *ea, *es, *x, *a1, *a2, *sc, *w, *v, *el, *lp, *m_in, *z1, *d1, *z2, *d2, *logit;
    float *mean1, *var1, *mean2, *var2;
    float *dea, *des, *dx, *da1, *da2, *dp1, *dp2, *dsc, *dw, *dv, *del, *dlp, *dm, *dz1, *dd1, *dz2, *dd2, *dlogit;
    uint32_t *off, *loff;       /* (B + 1) row offsets of history / long rows */
    uint32_t *r_item, *r_cat;   /* (B * S) ids of the packed history rows */
    uint32_t *l_item, *l_cat;   /* (B * K) ids of the packed long rows */
} din_ws;

struct din {
    din_config cfg;
    size_t max_b, max_s, max_k;
    size_t e, m;                /* behavior width, MLP input width */
    param_set params, grads, buffers;
    /* parameter views */
    float *emb_item, *emb_cat, *att_w1, *att_b1, *att_w2, *att_b2, *att_w3, *att_b3;
    float *mlp_w1, *mlp_b1, *alpha1, *mlp_w2, *mlp_b2, *alpha2, *mlp_w3, *mlp_b3;
    float *run_mean1, *run_var1, *run_mean2, *run_var2;
    din_ws ws;
    void *ws_block;
    size_t last_b, last_r, last_lr; /* shapes of the last forward */
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

param_set *din_params(din *m) { return &m->params; }
param_set *din_grads(din *m) { return &m->grads; }
param_set *din_buffers(din *m) { return &m->buffers; }
const din_config *din_cfg(const din *m) { return &m->cfg; }

static int add2(param_list *l, const char *name, size_t a, size_t b)
{
    size_t s[2] = {a, b};
    return param_list_add(l, name, 2, s);
}

static int add1(param_list *l, const char *name, size_t a)
{
    return param_list_add(l, name, 1, &a);
}

static int build_specs(const din_config *c, size_t e, size_t m, param_list *p, param_list *buf)
{
    int rc = 0;
    rc |= add2(p, "emb.item", (size_t)c->n_items + 1, c->d_item);
    rc |= add2(p, "emb.cat", (size_t)c->n_cats + 1, c->d_cat);
    rc |= add2(p, "att.fc1.weight", c->att_h1, 4 * e);
    rc |= add1(p, "att.fc1.bias", c->att_h1);
    rc |= add2(p, "att.fc2.weight", c->att_h2, c->att_h1);
    rc |= add1(p, "att.fc2.bias", c->att_h2);
    rc |= add2(p, "att.fc3.weight", 1, c->att_h2);
    rc |= add1(p, "att.fc3.bias", 1);
    rc |= add2(p, "mlp.fc1.weight", c->mlp_h1, m);
    rc |= add1(p, "mlp.fc1.bias", c->mlp_h1);
    rc |= add1(p, "mlp.dice1.alpha", c->mlp_h1);
    rc |= add2(p, "mlp.fc2.weight", c->mlp_h2, c->mlp_h1);
    rc |= add1(p, "mlp.fc2.bias", c->mlp_h2);
    rc |= add1(p, "mlp.dice2.alpha", c->mlp_h2);
    rc |= add2(p, "mlp.fc3.weight", 1, c->mlp_h2);
    rc |= add1(p, "mlp.fc3.bias", 1);
    rc |= add1(buf, "mlp.dice1.running_mean", c->mlp_h1);
    rc |= add1(buf, "mlp.dice1.running_var", c->mlp_h1);
    rc |= add1(buf, "mlp.dice2.running_mean", c->mlp_h2);
    rc |= add1(buf, "mlp.dice2.running_var", c->mlp_h2);
    return rc ? LSIM_E_NOMEM : 0;
}

static void bind_views(din *m)
{
    param_set *p = &m->params, *b = &m->buffers;
    m->emb_item = param_find(p, "emb.item");
    m->emb_cat = param_find(p, "emb.cat");
    m->att_w1 = param_find(p, "att.fc1.weight");
    m->att_b1 = param_find(p, "att.fc1.bias");
    m->att_w2 = param_find(p, "att.fc2.weight");
    m->att_b2 = param_find(p, "att.fc2.bias");
    m->att_w3 = param_find(p, "att.fc3.weight");
    m->att_b3 = param_find(p, "att.fc3.bias");
    m->mlp_w1 = param_find(p, "mlp.fc1.weight");
    m->mlp_b1 = param_find(p, "mlp.fc1.bias");
    m->alpha1 = param_find(p, "mlp.dice1.alpha");
    m->mlp_w2 = param_find(p, "mlp.fc2.weight");
    m->mlp_b2 = param_find(p, "mlp.fc2.bias");
    m->alpha2 = param_find(p, "mlp.dice2.alpha");
    m->mlp_w3 = param_find(p, "mlp.fc3.weight");
    m->mlp_b3 = param_find(p, "mlp.fc3.bias");
    m->run_mean1 = param_find(b, "mlp.dice1.running_mean");
    m->run_var1 = param_find(b, "mlp.dice1.running_var");
    m->run_mean2 = param_find(b, "mlp.dice2.running_mean");
    m->run_var2 = param_find(b, "mlp.dice2.running_var");
}

/* Carves the workspace: pass 1 (base NULL) measures, pass 2 points. */
static size_t carve(din *m, char *base)
{
    const din_config *c = &m->cfg;
    size_t B = m->max_b, R = m->max_b * m->max_s, L = m->max_b * m->max_k, E = m->e, M = m->m;
    size_t off = 0;
    din_ws *w = &m->ws;
#define TAKE(ptr, count, type)                                                   \
    do {                                                                         \
        size_t n_ = (count);                                                     \
        if (base) (ptr) = (type *)(base + off);                                  \
        off += ((n_ ? n_ : 1) * sizeof(type) + 63) & ~(size_t)63;                \
    } while (0)
    TAKE(w->ea, B * E, float);
    TAKE(w->es, R * E, float);
    TAKE(w->x, R * 4 * E, float);
    TAKE(w->a1, R * c->att_h1, float);
    TAKE(w->a2, R * c->att_h2, float);
    TAKE(w->sc, R, float);
    TAKE(w->w, R, float);
    TAKE(w->v, B * E, float);
    TAKE(w->el, L * E, float);
    TAKE(w->lp, B * E, float);
    TAKE(w->m_in, B * M, float);
    TAKE(w->z1, B * c->mlp_h1, float);
    TAKE(w->d1, B * c->mlp_h1, float);
    TAKE(w->z2, B * c->mlp_h2, float);
    TAKE(w->d2, B * c->mlp_h2, float);
    TAKE(w->logit, B, float);
    TAKE(w->mean1, c->mlp_h1, float);
    TAKE(w->var1, c->mlp_h1, float);
    TAKE(w->mean2, c->mlp_h2, float);
    TAKE(w->var2, c->mlp_h2, float);
    TAKE(w->dea, B * E, float);
    TAKE(w->des, R * E, float);
    TAKE(w->dx, R * 4 * E, float);
    TAKE(w->da1, R * c->att_h1, float);
    TAKE(w->da2, R * c->att_h2, float);
    TAKE(w->dp1, R * c->att_h1, float);
    TAKE(w->dp2, R * c->att_h2, float);
    TAKE(w->dsc, R, float);
    TAKE(w->dw, R, float);
    TAKE(w->dv, B * E, float);
    TAKE(w->del, L * E, float);
    TAKE(w->dlp, B * E, float);
    TAKE(w->dm, B * M, float);
    TAKE(w->dz1, B * c->mlp_h1, float);
    TAKE(w->dd1, B * c->mlp_h1, float);
    TAKE(w->dz2, B * c->mlp_h2, float);
    TAKE(w->dd2, B * c->mlp_h2, float);
    TAKE(w->dlogit, B, float);
    TAKE(w->off, B + 1, uint32_t);
    TAKE(w->loff, B + 1, uint32_t);
    TAKE(w->r_item, R, uint32_t);
    TAKE(w->r_cat, R, uint32_t);
    TAKE(w->l_item, L, uint32_t);
    TAKE(w->l_cat, L, uint32_t);
#undef TAKE
    return off;
}

int din_new(din **out, const din_config *cfg, size_t max_b, size_t max_s, size_t max_k)
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
    m->e = (size_t)cfg->d_item + cfg->d_cat;
    m->m = (cfg->long_avgpool ? 4 : 3) * m->e;
    param_list p = {0}, b = {0};
    int rc = build_specs(cfg, m->e, m->m, &p, &b);
    if (!rc) rc = param_set_init(&m->params, p.specs, p.n);
    if (!rc) rc = param_set_init(&m->grads, p.specs, p.n);
    if (!rc) rc = param_set_init(&m->buffers, b.specs, b.n);
    param_list_free(&p);
    param_list_free(&b);
    if (!rc) {
        size_t bytes = carve(m, NULL);
        m->ws_block = aligned_alloc(64, bytes);
        if (!m->ws_block) rc = LSIM_E_NOMEM;
        else {
            memset(m->ws_block, 0, bytes);
            carve(m, m->ws_block);
        }
    }
    if (rc) {
        din_free(m);
        return rc;
    }
    bind_views(m);
    for (uint32_t i = 0; i < cfg->mlp_h1; i++) m->run_var1[i] = 1.0f;
    for (uint32_t i = 0; i < cfg->mlp_h2; i++) m->run_var2[i] = 1.0f;
    *out = m;
    return 0;
}

void din_free(din *m)
{
    if (!m) return;
    param_set_free(&m->params);
    param_set_free(&m->grads);
    param_set_free(&m->buffers);
    free(m->ws_block);
    free(m);
}

/* splitmix64 -> uniform in [-1, 1) */
static float rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

void din_init(din *m, uint64_t seed)
{
    param_set *p = &m->params;
    for (size_t i = 0; i < p->n; i++) {
        const param_spec *s = &p->specs[i];
        float *t = p->ptr[i];
        size_t n = p->numel[i];
        if (strncmp(s->name, "emb.", 4) == 0)
            for (size_t j = 0; j < n; j++) t[j] = 0.01f * rnd(&seed) * 1.7320508f; /* std 0.01 */
        else if (strstr(s->name, ".alpha"))
            for (size_t j = 0; j < n; j++) t[j] = 0.25f;
        else {
            size_t fan_in = s->ndim == 2 ? s->shape[1] : (i > 0 ? p->specs[i - 1].shape[1] : 1);
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t j = 0; j < n; j++) t[j] = bound * rnd(&seed);
        }
    }
}

/* out (N, E) = [item_emb(item), cat_emb(cat)] */
static void embed(const din *m, float *out, const uint32_t *item, const uint32_t *cat, size_t n)
{
    const din_config *c = &m->cfg;
    size_t E = m->e;
    for (size_t i = 0; i < n; i++) {
        uint32_t it = item[i] < c->n_items ? item[i] : c->n_items;
        uint32_t ct = cat[i] < c->n_cats ? cat[i] : c->n_cats;
        memcpy(out + i * E, m->emb_item + (size_t)it * c->d_item, c->d_item * sizeof(float));
        memcpy(out + i * E + c->d_item, m->emb_cat + (size_t)ct * c->d_cat, c->d_cat * sizeof(float));
    }
}

static void embed_backward(din *m, const float *dout, const uint32_t *item, const uint32_t *cat, size_t n)
{
    const din_config *c = &m->cfg;
    size_t E = m->e;
    float *gi = param_find(&m->grads, "emb.item"), *gc = param_find(&m->grads, "emb.cat");
    for (size_t i = 0; i < n; i++) {
        uint32_t it = item[i] < c->n_items ? item[i] : c->n_items;
        uint32_t ct = cat[i] < c->n_cats ? cat[i] : c->n_cats;
        float *ri = gi + (size_t)it * c->d_item, *rc = gc + (size_t)ct * c->d_cat;
        for (size_t d = 0; d < c->d_item; d++) ri[d] += dout[i * E + d];
        for (size_t d = 0; d < c->d_cat; d++) rc[d] += dout[i * E + c->d_item + d];
    }
}

/* Packs the valid positions of a padded (B, T) sequence: off (B + 1), ids (rows). */
static size_t pack_rows(uint32_t *off, uint32_t *r_item, uint32_t *r_cat, const uint32_t *item, const uint32_t *cat,
                        const uint32_t *len, size_t b, size_t t)
{
    size_t r = 0;
    for (size_t i = 0; i < b; i++) {
        off[i] = (uint32_t)r;
        size_t n = len[i] < t ? len[i] : t;
        memcpy(r_item + r, item + i * t, n * sizeof *item);
        memcpy(r_cat + r, cat + i * t, n * sizeof *cat);
        r += n;
    }
    off[b] = (uint32_t)r;
    return r;
}

float din_forward(din *m, const model_batch *bt, float *logits, int train)
{
    const din_config *c = &m->cfg;
    din_ws *w = &m->ws;
    size_t B = bt->b, E = m->e, M = m->m;
    size_t R = pack_rows(w->off, w->r_item, w->r_cat, bt->hist_item, bt->hist_cat, bt->hist_len, B, bt->s);
    size_t LR = 0;
    if (c->long_avgpool)
        LR = pack_rows(w->loff, w->l_item, w->l_cat, bt->long_item, bt->long_cat, bt->long_len, B, bt->k);
    m->last_b = B;
    m->last_r = R;
    m->last_lr = LR;

    embed(m, w->ea, bt->target_item, bt->target_cat, B);
    embed(m, w->es, w->r_item, w->r_cat, R);
    /* activation unit over every valid (sample, position) */
    for (size_t b = 0; b < B; b++) {
        const float *ea = w->ea + b * E;
        for (size_t r = w->off[b]; r < w->off[b + 1]; r++) {
            const float *ej = w->es + r * E;
            float *x = w->x + r * 4 * E;
            for (size_t d = 0; d < E; d++) {
                x[d] = ej[d];
                x[E + d] = ea[d];
                x[2 * E + d] = ej[d] - ea[d];
                x[3 * E + d] = ej[d] * ea[d];
            }
        }
    }
    nn_linear_forward(w->a1, w->x, m->att_w1, m->att_b1, R, 4 * E, c->att_h1);
    nn_sigmoid_forward(w->a1, w->a1, R * c->att_h1);
    nn_linear_forward(w->a2, w->a1, m->att_w2, m->att_b2, R, c->att_h1, c->att_h2);
    nn_sigmoid_forward(w->a2, w->a2, R * c->att_h2);
    nn_linear_forward(w->sc, w->a2, m->att_w3, m->att_b3, R, c->att_h2, 1);
    for (size_t b = 0; b < B; b++) {
        size_t lo = w->off[b], hi = w->off[b + 1];
        if (!c->att_softmax) {
            memcpy(w->w + lo, w->sc + lo, (hi - lo) * sizeof(float));
        } else if (hi > lo) {
            uint32_t n = (uint32_t)(hi - lo);
            nn_softmax_masked_forward(w->w + lo, w->sc + lo, &n, 1, n);
        }
        float *v = w->v + b * E;
        memset(v, 0, E * sizeof(float));
        for (size_t r = lo; r < hi; r++)
            for (size_t d = 0; d < E; d++) v[d] += w->w[r] * w->es[r * E + d];
    }
    if (c->long_avgpool) {
        embed(m, w->el, w->l_item, w->l_cat, LR);
        for (size_t b = 0; b < B; b++) {
            float *lp = w->lp + b * E;
            memset(lp, 0, E * sizeof(float));
            size_t lo = w->loff[b], hi = w->loff[b + 1];
            for (size_t r = lo; r < hi; r++)
                for (size_t d = 0; d < E; d++) lp[d] += w->el[r * E + d];
            if (hi > lo)
                for (size_t d = 0; d < E; d++) lp[d] /= (float)(hi - lo);
        }
    }
    for (size_t b = 0; b < B; b++) {
        float *mi = w->m_in + b * M;
        const float *ea = w->ea + b * E, *v = w->v + b * E;
        for (size_t d = 0; d < E; d++) {
            mi[d] = ea[d];
            mi[E + d] = v[d];
            mi[2 * E + d] = ea[d] * v[d];
        }
        if (c->long_avgpool) memcpy(mi + 3 * E, w->lp + b * E, E * sizeof(float));
    }
    nn_linear_forward(w->z1, w->m_in, m->mlp_w1, m->mlp_b1, B, M, c->mlp_h1);
    nn_dice_forward(w->d1, w->mean1, w->var1, m->run_mean1, m->run_var1, w->z1, m->alpha1, c->dice_momentum, train, B,
                    c->mlp_h1);
    nn_linear_forward(w->z2, w->d1, m->mlp_w2, m->mlp_b2, B, c->mlp_h1, c->mlp_h2);
    nn_dice_forward(w->d2, w->mean2, w->var2, m->run_mean2, m->run_var2, w->z2, m->alpha2, c->dice_momentum, train, B,
                    c->mlp_h2);
    nn_linear_forward(w->logit, w->d2, m->mlp_w3, m->mlp_b3, B, c->mlp_h2, 1);
    if (logits) memcpy(logits, w->logit, B * sizeof(float));
    return bt->label ? nn_bce_logits_forward(w->logit, bt->label, B) : 0.0f;
}

void din_backward(din *m, const model_batch *bt)
{
    const din_config *c = &m->cfg;
    din_ws *w = &m->ws;
    size_t B = m->last_b, R = m->last_r, LR = m->last_lr, E = m->e, M = m->m;
    param_set *g = &m->grads;
#define G(name) param_find(g, name)
    memset(w->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(w->dlogit, w->logit, bt->label, 1.0f, B);
    /* head */
    memset(w->dd2, 0, B * c->mlp_h2 * sizeof(float));
    nn_linear_backward(w->dd2, G("mlp.fc3.weight"), G("mlp.fc3.bias"), w->dlogit, w->d2, m->mlp_w3, B, c->mlp_h2, 1);
    memset(w->dz2, 0, B * c->mlp_h2 * sizeof(float));
    nn_dice_backward(w->dz2, G("mlp.dice2.alpha"), w->dd2, w->z2, m->alpha2, w->mean2, w->var2, B, c->mlp_h2);
    memset(w->dd1, 0, B * c->mlp_h1 * sizeof(float));
    nn_linear_backward(w->dd1, G("mlp.fc2.weight"), G("mlp.fc2.bias"), w->dz2, w->d1, m->mlp_w2, B, c->mlp_h1,
                       c->mlp_h2);
    memset(w->dz1, 0, B * c->mlp_h1 * sizeof(float));
    nn_dice_backward(w->dz1, G("mlp.dice1.alpha"), w->dd1, w->z1, m->alpha1, w->mean1, w->var1, B, c->mlp_h1);
    memset(w->dm, 0, B * M * sizeof(float));
    nn_linear_backward(w->dm, G("mlp.fc1.weight"), G("mlp.fc1.bias"), w->dz1, w->m_in, m->mlp_w1, B, M, c->mlp_h1);
    /* m = [e_a, v, e_a * v (, l)] */
    for (size_t b = 0; b < B; b++) {
        const float *dmi = w->dm + b * M, *ea = w->ea + b * E, *v = w->v + b * E;
        float *dea = w->dea + b * E, *dv = w->dv + b * E;
        for (size_t d = 0; d < E; d++) {
            dea[d] = dmi[d] + dmi[2 * E + d] * v[d];
            dv[d] = dmi[E + d] + dmi[2 * E + d] * ea[d];
        }
        if (c->long_avgpool) memcpy(w->dlp + b * E, dmi + 3 * E, E * sizeof(float));
    }
    /* v = sum_j w_j e_j */
    for (size_t b = 0; b < B; b++) {
        const float *dv = w->dv + b * E;
        for (size_t r = w->off[b]; r < w->off[b + 1]; r++) {
            const float *ej = w->es + r * E;
            float *dej = w->des + r * E, s = 0;
            for (size_t d = 0; d < E; d++) {
                s += dv[d] * ej[d];
                dej[d] = w->w[r] * dv[d];
            }
            w->dw[r] = s;
        }
    }
    /* scores */
    for (size_t b = 0; b < B; b++) {
        size_t lo = w->off[b], hi = w->off[b + 1];
        if (!c->att_softmax) {
            memcpy(w->dsc + lo, w->dw + lo, (hi - lo) * sizeof(float));
        } else if (hi > lo) {
            uint32_t n = (uint32_t)(hi - lo);
            memset(w->dsc + lo, 0, n * sizeof(float));
            nn_softmax_masked_backward(w->dsc + lo, w->dw + lo, w->w + lo, &n, 1, n);
        }
    }
    memset(w->da2, 0, R * c->att_h2 * sizeof(float));
    nn_linear_backward(w->da2, G("att.fc3.weight"), G("att.fc3.bias"), w->dsc, w->a2, m->att_w3, R, c->att_h2, 1);
    memset(w->dp2, 0, R * c->att_h2 * sizeof(float));
    nn_sigmoid_backward(w->dp2, w->da2, w->a2, R * c->att_h2);
    memset(w->da1, 0, R * c->att_h1 * sizeof(float));
    nn_linear_backward(w->da1, G("att.fc2.weight"), G("att.fc2.bias"), w->dp2, w->a1, m->att_w2, R, c->att_h1,
                       c->att_h2);
    memset(w->dp1, 0, R * c->att_h1 * sizeof(float));
    nn_sigmoid_backward(w->dp1, w->da1, w->a1, R * c->att_h1);
    memset(w->dx, 0, R * 4 * E * sizeof(float));
    nn_linear_backward(w->dx, G("att.fc1.weight"), G("att.fc1.bias"), w->dp1, w->x, m->att_w1, R, 4 * E, c->att_h1);
    /* x = [e_j, e_a, e_j - e_a, e_j * e_a] */
    for (size_t b = 0; b < B; b++) {
        const float *ea = w->ea + b * E;
        float *dea = w->dea + b * E;
        for (size_t r = w->off[b]; r < w->off[b + 1]; r++) {
            const float *dx = w->dx + r * 4 * E, *ej = w->es + r * E;
            float *dej = w->des + r * E;
            for (size_t d = 0; d < E; d++) {
                dej[d] += dx[d] + dx[2 * E + d] + dx[3 * E + d] * ea[d];
                dea[d] += dx[E + d] - dx[2 * E + d] + dx[3 * E + d] * ej[d];
            }
        }
    }
    embed_backward(m, w->dea, bt->target_item, bt->target_cat, B);
    embed_backward(m, w->des, w->r_item, w->r_cat, R);
    if (c->long_avgpool) {
        for (size_t b = 0; b < B; b++) {
            size_t lo = w->loff[b], hi = w->loff[b + 1];
            for (size_t r = lo; r < hi; r++)
                for (size_t d = 0; d < E; d++) w->del[r * E + d] = w->dlp[b * E + d] / (float)(hi - lo);
        }
        embed_backward(m, w->del, w->l_item, w->l_cat, LR);
    }
#undef G
}
