/*
 * mimn.c: the MIMN model (see mimn.h): the memory cell folded over a
 * sample's whole history, truncated BPTT over its last bptt behaviors, the
 * target's read head, the head.
 *
 * One step function (step_fwd) is the only code that advances a state: the
 * fold (mimn_state_fold), the forward's prefix and the forward's window all
 * call it, so a state is the same bits whichever way it was reached. It works
 * on one sample at a time with small matrix-vector kernels (models/nn_small.h,
 * which compute each row the same way whatever the batch), writing what the
 * step computed into a record: the fold reuses one record, the training
 * window keeps (max_b, bptt) of them for backward.
 *
 * Record of one step (offsets in struct rec_layout): the controller's input
 * [x, r], its previous state, its gates [rg, z, n] (after activation) and
 * W_h h + b_h, its new state, the raw head parameters p, the two keys, the
 * strengths, erase and add vectors, the memory before the write and its
 * slots' squared norms, the keys' squared norms, the cosines, the weights,
 * the rebalancing (gh, P, wt), the MIU's chosen slots and, per chosen slot,
 * its GRU's input, previous state, gates and W_h S + b_h.
 *
 * Backward walks a sample's window newest first, one step at a time (each
 * step needs the next one's state gradient), with the weight matrices
 * transposed once per backward so that every per-step product is a
 * matrix-vector product of the forward's kind. The steps' gate gradients
 * (controller, output layer, MIU) are kept, and the weight gradients are one
 * GEMM per sample over the window (rows of the records as the inputs), not a
 * rank-1 update per step.
 */
#include "esu/mimn.h"

#include "lsim.h"
#include "models/arena.h"
#include "models/embed.h"
#include "models/mlp_head.h"
#include "models/model_state.h"
#include "models/nn.h"
#include "models/nn_small.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SHARP 2.0f /* the official code's sharp_value: beta = SHARP (1 + softplus(.)) */

typedef struct rec_layout {
    size_t cin, hp, gi, gh, hn, p, k, beta, ea, mp, nm, nk, ck, cm, w, gh_, pm, wt, sel, miu, miu_each, total;
} rec_layout;

struct mimn {
    mimn_config cfg;
    size_t max_b;
    size_t e, h, ms, k, np, sf, mi, bptt; /* E, H, m, miu_k, 4E + 2, state floats, head input 3E + H */
    rec_layout ro;
    model_state st;
    embed_layer emb;
    mlp_head head;
    const float *c_wih, *c_bih, *c_whh, *c_bhh, *o_w, *o_b, *key, *rb_w, *rb_b, *u_wih, *u_bih, *u_whh, *u_bhh;
    const float *q_w, *q_b;
    float *gc_wih, *gc_bih, *gc_whh, *gc_bhh, *go_w, *go_b, *gkey, *grb_w, *grb_b, *gu_wih, *gu_bih, *gu_whh,
        *gu_bhh, *gq_w, *gq_b;
    /* workspace */
    float *kc;      /* (m E + m): K = tanh(key_m), then |K(i)|^2 + eps */
    float *fold_rc; /* one record: the forward's prefix folds */
    float *fstate;  /* (B, state) each sample's state after its history */
    uint32_t *win;  /* (B) each sample's window W */
    float *rec;     /* (B, bptt, record) training only */
    /* the readout: q (B, E + 1), k (B, E), beta (B), cK, cM, w (B, m) each, |k|^2 + eps (B), |M(i)|^2 + eps (B, m) */
    float *qa, *ka, *ba, *cka, *cma, *wa, *nka, *nma;
    float *m_in;    /* (B, 3E + H) head input */
    float *ureg;    /* (B) each sample's utilization variance */
    size_t b;
    /* one step's kept gate gradients: [dgi_c, dgh_c (3H each), dp (4E + 2), per MIU slot dgi, dgh (3E each)] */
    size_t gs;
    /* training only */
    /* transposed weights: (2E, 3H), (H, 3H), (H, 4E + 2), (2E, 3E), (E, 3E) */
    float *wt_cih, *wt_chh, *wt_o, *wt_uih, *wt_uhh;
    float *gstep; /* (bptt, gs) one sample's window of gate gradients */
    float *dlogit, *dm, *dst, *dkh, *dx, *dwc, *dcin, *dtmp, *dtmp2, *dwt, *dww, *dwr, *da_, *dea, *dq, *dqa;
};

static const char *const names[] = {
    "mimn.controller.weight_ih", "mimn.controller.bias_ih", "mimn.controller.weight_hh", "mimn.controller.bias_hh",
    "mimn.o2p.weight",           "mimn.o2p.bias",           "mimn.key_m",                "mimn.rebalance.weight",
    "mimn.rebalance.bias",       "mimn.miu.weight_ih",      "mimn.miu.bias_ih",          "mimn.miu.weight_hh",
    "mimn.miu.bias_hh",          "mimn.query.weight",       "mimn.query.bias",
};
#define N_NAMES (sizeof names / sizeof names[0])

void mimn_config_default(mimn_config *c, uint32_t n_items, uint32_t n_cats)
{
    memset(c, 0, sizeof *c);
    din_config_default(&c->base, n_items, n_cats);
    c->mem_slots = 4;
    c->d_ctrl = c->base.d_item + c->base.d_cat;
    c->miu_k = 1;
    c->bptt = 30;
    c->util_reg = 0.1f;
}

param_set *mimn_params(mimn *m) { return &m->st.params; }
param_set *mimn_grads(mimn *m) { return &m->st.grads; }
param_set *mimn_buffers(mimn *m) { return &m->st.buffers; }
size_t mimn_workspace_bytes(const mimn *m) { return m->st.ws_bytes; }
const mimn_config *mimn_cfg(const mimn *m) { return &m->cfg; }

size_t mimn_state_floats(const mimn_config *c)
{
    size_t E = (size_t)c->base.d_item + c->base.d_cat, m = c->mem_slots;
    return c->d_ctrl + E + 2 * m * E + m;
}

static size_t layout(rec_layout *o, const mimn_config *c)
{
    size_t E = (size_t)c->base.d_item + c->base.d_cat, H = c->d_ctrl, m = c->mem_slots, n = 0;
#define AT(field, count) (o->field = n, n += (count))
    AT(cin, 2 * E);
    AT(hp, H);
    AT(gi, 3 * H);
    AT(gh, 3 * H);
    AT(hn, H);
    AT(p, 4 * E + 2);
    AT(k, 2 * E);
    AT(beta, 2);
    AT(ea, 2 * E);
    AT(mp, m * E);
    AT(nm, m);
    AT(nk, 2);
    AT(ck, 2 * m);
    AT(cm, 2 * m);
    AT(w, 2 * m);
    AT(gh_, m);
    AT(pm, m * m);
    AT(wt, m);
    AT(sel, c->miu_k);
    o->miu_each = 9 * E; /* [M'(i), x] (2E), S(i) (E), gates (3E), W_h S + b_h (3E) */
    AT(miu, c->miu_k * o->miu_each);
#undef AT
    o->total = n;
    return n;
}

size_t mimn_fold_scratch_floats(const mimn_config *c)
{
    rec_layout o;
    size_t E = (size_t)c->base.d_item + c->base.d_cat, m = c->mem_slots;
    return m * E + m + layout(&o, c);
}

void mimn_state_init(const mimn *m, float *state)
{
    memset(state, 0, m->sf * sizeof *state);
}

/* ---- small kernels (one sample) ---- */

// out (R) = w (R, C) x (C) + b (R) (b may be NULL)
static void matvec(float *out, const float *w, const float *x, const float *b, size_t r, size_t c)
{
    nn_small_nt(out, r, x, c, w, c, 1, r, c);
    if (b)
        for (size_t i = 0; i < r; i++) out[i] += b[i];
}

// out (C) += w (R, C)^T y (R): the once-per-sample products (the readout's)
static void matvec_t_acc(float *out, const float *w, const float *y, size_t r, size_t c)
{
    for (size_t i = 0; i < r; i++) {
        const float *wi = w + i * c;
        float yi = y[i];
        for (size_t d = 0; d < c; d++) out[d] += yi * wi[d];
    }
}

// out (C) += wt (C, R) y (R), wt the transpose of a (R, C) weight; tmp (C)
static void matvec_tt_acc(float *out, float *tmp, const float *wt, const float *y, size_t r, size_t c)
{
    matvec(tmp, wt, y, NULL, c, r);
    for (size_t d = 0; d < c; d++) out[d] += tmp[d];
}

// g (R, C) += y (R) x (C)^T; gb (R) += y; either may be NULL
static void outer_acc(float *g, float *gb, const float *y, const float *x, size_t r, size_t c)
{
    for (size_t i = 0; g && i < r; i++) {
        float *gi = g + i * c, yi = y[i];
        for (size_t d = 0; d < c; d++) gi[d] += yi * x[d];
    }
    if (gb)
        for (size_t i = 0; i < r; i++) gb[i] += y[i];
}

/* g (M, N) += a^T b over k rows: a's rows (M) at stride lda, b's (N) at stride ldb; gb (M) += column
 * sums of a (either may be NULL). OpenBLAS, or plain loops when nn_reference_forced(). */
static void gemm_tn_acc(float *g, float *gb, const float *a, size_t lda, const float *b, size_t ldb, size_t m,
                        size_t n, size_t k)
{
    if (!k) return;
    if (g && !nn_reference_forced())
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                    1.0f, g, (int)n);
    else if (g)
        for (size_t t = 0; t < k; t++) outer_acc(g, NULL, a + t * lda, b + t * ldb, m, n);
    for (size_t t = 0; gb && t < k; t++)
        for (size_t i = 0; i < m; i++) gb[i] += a[t * lda + i];
}

// out (C, R) = w (R, C)^T
static void transpose(float *out, const float *w, size_t r, size_t c)
{
    for (size_t i = 0; i < r; i++)
        for (size_t d = 0; d < c; d++) out[d * r + i] = w[i * c + d];
}

static float softplus(float x)
{
    return x > 20.0f ? x : log1pf(expf(x)); /* PyTorch's threshold */
}

static float sigm(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

// w (N) = softmax(s (N)), in place allowed
static void softmax_n(float *w, const float *s, size_t n)
{
    float mx = s[0], sum = 0.0f;
    for (size_t i = 1; i < n; i++) mx = s[i] > mx ? s[i] : mx;
    for (size_t i = 0; i < n; i++) sum += w[i] = expf(s[i] - mx);
    for (size_t i = 0; i < n; i++) w[i] /= sum;
}

/* K = tanh(key_m) (m, E) and its rows' |K(i)|^2 + eps (m), into kc. */
static void prep_consts(const mimn *mm, float *kc)
{
    size_t E = mm->e, m = mm->ms;
    nn_tanh_forward(kc, mm->key, m * E);
    for (size_t i = 0; i < m; i++) kc[m * E + i] = nn_dot(kc + i * E, kc + i * E, E) + MIMN_COS_EPS;
}

/* One head's addressing: key k (E), strength beta, against K and the memory mv
 * (m, E) with squared norms nK, nM; writes |k|^2 + eps, cK, cM (m) and w (m). */
static void address(float *nk, float *ck, float *cm, float *w, const float *k, float beta, const float *kc,
                    const float *mv, const float *nm, size_t m, size_t E)
{
    const float *nK = kc + m * E;
    float n = nn_dot(k, k, E) + MIMN_COS_EPS;
    *nk = n;
    for (size_t i = 0; i < m; i++) {
        ck[i] = nn_dot(k, kc + i * E, E) / sqrtf(n * nK[i]);
        cm[i] = nn_dot(k, mv + i * E, E) / sqrtf(n * nm[i]);
        w[i] = beta * 0.5f * (ck[i] + cm[i]);
    }
    softmax_n(w, w, m);
}

/* PyTorch's nn.GRUCell: hn (H) from inp (C) and hp (H); gi (3H) gets the gates
 * [rg, z, n] after activation, gh (3H) W_hh hp + b_hh. hn may not alias hp. */
static void gru_cell(float *hn, float *gi, float *gh, const float *inp, const float *hp, const float *wih,
                     const float *bih, const float *whh, const float *bhh, size_t c, size_t H)
{
    matvec(gi, wih, inp, bih, 3 * H, c);
    matvec(gh, whh, hp, bhh, 3 * H, H);
    for (size_t j = 0; j < 2 * H; j++) gi[j] += gh[j];
    nn_sigmoid_forward(gi, gi, 2 * H);
    for (size_t j = 0; j < H; j++) gi[2 * H + j] += gi[j] * gh[2 * H + j];
    nn_tanh_forward(gi + 2 * H, gi + 2 * H, H);
    for (size_t j = 0; j < H; j++) hn[j] = (1.0f - gi[H + j]) * gi[2 * H + j] + gi[H + j] * hp[j];
}

/* Backward of gru_cell: dinp (C) = , dhp (H) = , from dhn (H); dgi, dgh (3H each) = the gates'
 * pre-activation gradients (the weight gradients are dgi^T inp and dgh^T hp, taken later).
 * wiht (C, 3H), whht (H, 3H): the weights transposed; tmp (max(C, H)). dhp may not alias dhn. */
static void gru_cell_bwd(float *dinp, float *dhp, float *dgi, float *dgh, const float *dhn, const float *hp,
                         const float *gi, const float *gh, const float *wiht, const float *whht, float *tmp, size_t c,
                         size_t H)
{
    for (size_t j = 0; j < H; j++) {
        float rg = gi[j], z = gi[H + j], n = gi[2 * H + j];
        float dn = dhn[j] * (1.0f - z), dz = dhn[j] * (hp[j] - n);
        float dnp = dn * (1.0f - n * n), drg = dnp * gh[2 * H + j];
        float drp = drg * rg * (1.0f - rg), dzp = dz * z * (1.0f - z);
        dgi[j] = dgh[j] = drp;
        dgi[H + j] = dgh[H + j] = dzp;
        dgi[2 * H + j] = dnp;
        dgh[2 * H + j] = dnp * rg;
        dhp[j] = dhn[j] * z;
    }
    matvec(dinp, wiht, dgi, NULL, c, 3 * H);
    matvec_tt_acc(dhp, tmp, whht, dgh, 3 * H, H);
}

/* Backward of address() and of the key's tanh and the strength's softplus:
 * from dw (m), dkraw (E) = , *dqb = ; dmv (m, E) += ; dkh (m, E) += (K's gradient). */
static void address_bwd(float *dkraw, float *dqb, float *dmv, float *dkh, const float *dw, const float *k, float beta,
                        float qb, float nk, const float *ck, const float *cm, const float *w, const float *kc,
                        const float *mv, const float *nm, size_t m, size_t E)
{
    const float *nK = kc + m * E;
    float sum = 0.0f, dbeta = 0.0f;
    for (size_t i = 0; i < m; i++) sum += dw[i] * w[i];
    memset(dkraw, 0, E * sizeof *dkraw);
    for (size_t i = 0; i < m; i++) {
        float ds = w[i] * (dw[i] - sum);
        dbeta += ds * 0.5f * (ck[i] + cm[i]);
        float dc = ds * beta * 0.5f, rk = dc / sqrtf(nk * nK[i]), rm = dc / sqrtf(nk * nm[i]);
        float ak = dc * (ck[i] + cm[i]) / nk, bk = dc * ck[i] / nK[i], bm = dc * cm[i] / nm[i];
        const float *ki = kc + i * E, *mi = mv + i * E;
        float *gki = dkh + i * E, *gmi = dmv + i * E;
        for (size_t d = 0; d < E; d++) {
            dkraw[d] += rk * ki[d] + rm * mi[d] - ak * k[d];
            gki[d] += rk * k[d] - bk * ki[d];
            gmi[d] += rm * k[d] - bm * mi[d];
        }
    }
    for (size_t d = 0; d < E; d++) dkraw[d] *= 1.0f - k[d] * k[d];
    *dqb = SHARP * dbeta * sigm(qb);
}

/* ---- the step ---- */

/* Advances st by one behavior whose embedding x is already at rc + cin;
 * fills the record rc. */
static void step_fwd(const mimn *mm, const float *kc, float *st, float *rc)
{
    const rec_layout *o = &mm->ro;
    size_t E = mm->e, H = mm->h, m = mm->ms;
    float *h = st, *r = h + H, *M = r + E, *S = M + m * E, *g = S + m * E;
    float *cin = rc + o->cin, *gi = rc + o->gi, *gh = rc + o->gh, *hn = rc + o->hn, *p = rc + o->p;
    float *k = rc + o->k, *beta = rc + o->beta, *ea = rc + o->ea, *mp = rc + o->mp, *nm = rc + o->nm;
    float *w = rc + o->w, *ghat = rc + o->gh_, *pm = rc + o->pm, *wt = rc + o->wt, *sel = rc + o->sel;
    memcpy(cin + E, r, E * sizeof *r);
    memcpy(rc + o->hp, h, H * sizeof *h);
    gru_cell(hn, gi, gh, cin, h, mm->c_wih, mm->c_bih, mm->c_whh, mm->c_bhh, 2 * E, H);
    matvec(p, mm->o_w, hn, mm->o_b, 4 * E + 2, H);
    nn_tanh_forward(k, p, E);
    nn_tanh_forward(k + E, p + E + 1, E);
    beta[0] = SHARP * (1.0f + softplus(p[E]));
    beta[1] = SHARP * (1.0f + softplus(p[2 * E + 1]));
    memcpy(mp, M, m * E * sizeof *M);
    for (size_t i = 0; i < m; i++) nm[i] = nn_dot(M + i * E, M + i * E, E) + MIMN_COS_EPS;
    for (size_t hd = 0; hd < 2; hd++)
        address(rc + o->nk + hd, rc + o->ck + hd * m, rc + o->cm + hd * m, w + hd * m, k + hd * E, beta[hd], kc, mp,
                nm, m, E);
    /* read (the memory before the write) */
    memset(r, 0, E * sizeof *r);
    for (size_t i = 0; i < m; i++)
        for (size_t d = 0; d < E; d++) r[d] += w[i] * mp[i * E + d];
    /* rebalance */
    float gs = 0.0f;
    for (size_t i = 0; i < m; i++) gs += g[i];
    float den = gs > 1.0f ? gs : 1.0f;
    for (size_t i = 0; i < m; i++) ghat[i] = g[i] / den;
    matvec(pm, mm->rb_w, ghat, mm->rb_b, m * m, m);
    for (size_t i = 0; i < m; i++) softmax_n(pm + i * m, pm + i * m, m);
    const float *ww = w + m;
    for (size_t j = 0; j < m; j++) {
        float s = 0.0f;
        for (size_t i = 0; i < m; i++) s += ww[i] * pm[i * m + j];
        wt[j] = s;
    }
    /* write */
    float *e = ea, *a = ea + E;
    nn_sigmoid_forward(e, p + 2 * E + 2, E);
    nn_tanh_forward(a, p + 3 * E + 2, E);
    for (size_t i = 0; i < m; i++) {
        float *mi = M + i * E;
        for (size_t d = 0; d < E; d++) mi[d] = mi[d] * (1.0f - wt[i] * e[d]) + wt[i] * a[d];
        g[i] += wt[i];
    }
    /* MIU: the top miu_k slots by read weight */
    uint64_t taken = 0;
    for (size_t j = 0; j < mm->k; j++) {
        size_t best = m;
        for (size_t i = 0; i < m; i++)
            if (!(taken >> i & 1) && (best == m || w[i] > w[best])) best = i;
        taken |= (uint64_t)1 << best;
        sel[j] = (float)best;
        float *u = rc + o->miu + j * o->miu_each, *cs = u, *sp = u + 2 * E, *ugi = u + 3 * E, *ugh = u + 6 * E;
        memcpy(cs, M + best * E, E * sizeof *cs);
        memcpy(cs + E, cin, E * sizeof *cs);
        memcpy(sp, S + best * E, E * sizeof *sp);
        gru_cell(S + best * E, ugi, ugh, cs, sp, mm->u_wih, mm->u_bih, mm->u_whh, mm->u_bhh, 2 * E, E);
    }
    memcpy(h, hn, H * sizeof *h);
}

/* Backward of one step: dst (state) holds d(loss)/d(the state after the step)
 * and gets d(loss)/d(the state before it) (g's entry untouched: g enters no
 * gradient path but the regularizer's constant dwc (m), added to d wt); dx (E)
 * gets d(loss)/dx; the rebalancing's gradients and dkh (m, E) +=; gsl (gs)
 * gets the step's gate gradients (the controller's, the output layer's dp,
 * the MIU's), whose products with the step's inputs are the weight gradients
 * (mimn_backward takes them for the whole window at once). */
static void step_bwd(mimn *mm, const float *kc, const float *rc, float *dst, const float *dwc, float *dx, float *gsl)
{
    const rec_layout *o = &mm->ro;
    size_t E = mm->e, H = mm->h, m = mm->ms;
    float *dh = dst, *dr = dh + H, *dM = dr + E, *dS = dM + m * E;
    const float *p = rc + o->p, *k = rc + o->k, *beta = rc + o->beta;
    const float *e = rc + o->ea, *a = e + E, *mp = rc + o->mp, *nm = rc + o->nm, *w = rc + o->w;
    const float *pm = rc + o->pm, *wt = rc + o->wt, *ghat = rc + o->gh_;
    float *dp = gsl + 6 * H;
    /* MIU */
    for (size_t j = 0; j < mm->k; j++) {
        size_t i = (size_t)rc[o->sel + j];
        const float *u = rc + o->miu + j * o->miu_each;
        float *ug = dp + 4 * E + 2 + j * 6 * E;
        memcpy(mm->dtmp, dS + i * E, E * sizeof(float));
        gru_cell_bwd(mm->dcin, dS + i * E, ug, ug + 3 * E, mm->dtmp, u + 2 * E, u + 3 * E, u + 6 * E, mm->wt_uih,
                     mm->wt_uhh, mm->dtmp2, 2 * E, E);
        for (size_t d = 0; d < E; d++) dx[d] += mm->dcin[E + d]; /* [M'(i), x]: M' stopped */
    }
    /* write */
    float *de = dp + 2 * E + 2, *da = dp + 3 * E + 2, *dwt = mm->dwt;
    memset(de, 0, 2 * E * sizeof *de);
    for (size_t i = 0; i < m; i++) {
        float *gm = dM + i * E, s = dwc ? dwc[i] : 0.0f;
        const float *mi = mp + i * E;
        for (size_t d = 0; d < E; d++) {
            s += gm[d] * (a[d] - mi[d] * e[d]);
            de[d] -= gm[d] * mi[d] * wt[i];
            da[d] += gm[d] * wt[i];
            gm[d] *= 1.0f - wt[i] * e[d];
        }
        dwt[i] = s;
    }
    for (size_t d = 0; d < E; d++) {
        de[d] *= e[d] * (1.0f - e[d]);
        da[d] *= 1.0f - a[d] * a[d];
    }
    /* rebalance: wt = w_w P, P = row softmax(A), A = W_g gh + b_g */
    const float *ww = w + m;
    float *dww = mm->dww, *dA = mm->da_;
    for (size_t i = 0; i < m; i++) {
        float s = 0.0f, dw_ = 0.0f;
        for (size_t j = 0; j < m; j++) {
            dw_ += dwt[j] * pm[i * m + j];
            s += ww[i] * dwt[j] * pm[i * m + j];
        }
        dww[i] = dw_;
        for (size_t j = 0; j < m; j++) dA[i * m + j] = pm[i * m + j] * (ww[i] * dwt[j] - s);
    }
    outer_acc(mm->grb_w, mm->grb_b, dA, ghat, m * m, m);
    /* read: r' = sum_i w_r(i) M(i) */
    float *dwr = mm->dwr;
    for (size_t i = 0; i < m; i++) {
        dwr[i] = nn_dot(dr, mp + i * E, E);
        for (size_t d = 0; d < E; d++) dM[i * E + d] += w[i] * dr[d];
    }
    /* heads */
    address_bwd(dp, dp + E, dM, mm->dkh, dwr, k, beta[0], p[E], rc[o->nk], rc + o->ck, rc + o->cm, w, kc, mp, nm, m,
                E);
    address_bwd(dp + E + 1, dp + 2 * E + 1, dM, mm->dkh, dww, k + E, beta[1], p[2 * E + 1], rc[o->nk + 1],
                rc + o->ck + m, rc + o->cm + m, w + m, kc, mp, nm, m, E);
    /* o2p, then the controller */
    matvec_tt_acc(dh, mm->dtmp2, mm->wt_o, dp, 4 * E + 2, H);
    memcpy(mm->dtmp, dh, H * sizeof(float));
    gru_cell_bwd(mm->dcin, dh, gsl, gsl + 3 * H, mm->dtmp, rc + o->hp, rc + o->gi, rc + o->gh, mm->wt_cih, mm->wt_chh,
                 mm->dtmp2, 2 * E, H);
    for (size_t d = 0; d < E; d++) dx[d] += mm->dcin[d];
    memcpy(dr, mm->dcin + E, E * sizeof(float));
}

/* Folds n behaviors into st with the record rc (kc: prep_consts'). */
static void fold(const mimn *mm, const float *kc, float *st, const uint32_t *item, const uint32_t *cat, size_t n,
                 float *rc)
{
    for (size_t t = 0; t < n; t++) {
        embed_forward(&mm->emb, rc + mm->ro.cin, item + t, cat + t, 1);
        step_fwd(mm, kc, st, rc);
    }
}

void mimn_state_fold(const mimn *m, float *state, const uint32_t *item, const uint32_t *cat, size_t n,
                     float *scratch)
{
    if (!n) return;
    prep_consts(m, scratch);
    fold(m, scratch, state, item, cat, n, scratch + m->ms * m->e + m->ms);
}

/* ---- the model ---- */

static void carve(void *ctx, arena *a)
{
    mimn *m = ctx;
    size_t B = m->max_b, E = m->e, H = m->h, ms = m->ms, R = m->ro.total;
    m->kc = ARENA_FLOATS(a, ms * E + ms);
    m->fold_rc = ARENA_FLOATS(a, R);
    m->fstate = ARENA_FLOATS(a, B * m->sf);
    m->win = ARENA_U32(a, B);
    m->rec = ARENA_TRAIN_FLOATS(a, B * m->bptt * R);
    m->qa = ARENA_FLOATS(a, B * (E + 1));
    m->ka = ARENA_FLOATS(a, B * E);
    m->ba = ARENA_FLOATS(a, B);
    m->cka = ARENA_FLOATS(a, B * ms);
    m->cma = ARENA_FLOATS(a, B * ms);
    m->wa = ARENA_FLOATS(a, B * ms);
    m->nka = ARENA_FLOATS(a, B);
    m->nma = ARENA_FLOATS(a, B * ms);
    m->m_in = ARENA_FLOATS(a, B * m->mi);
    m->ureg = ARENA_FLOATS(a, B);
    m->dlogit = ARENA_TRAIN_FLOATS(a, B);
    m->dm = ARENA_TRAIN_FLOATS(a, B * m->mi);
    m->dst = ARENA_TRAIN_FLOATS(a, m->sf);
    m->dkh = ARENA_TRAIN_FLOATS(a, ms * E);
    m->dx = ARENA_TRAIN_FLOATS(a, E);
    m->dwc = ARENA_TRAIN_FLOATS(a, ms);
    m->wt_cih = ARENA_TRAIN_FLOATS(a, 3 * H * 2 * E);
    m->wt_chh = ARENA_TRAIN_FLOATS(a, 3 * H * H);
    m->wt_o = ARENA_TRAIN_FLOATS(a, m->np * H);
    m->wt_uih = ARENA_TRAIN_FLOATS(a, 3 * E * 2 * E);
    m->wt_uhh = ARENA_TRAIN_FLOATS(a, 3 * E * E);
    m->gstep = ARENA_TRAIN_FLOATS(a, m->bptt * m->gs);
    m->dcin = ARENA_TRAIN_FLOATS(a, 2 * E);
    m->dtmp = ARENA_TRAIN_FLOATS(a, H > E ? H : E);
    m->dtmp2 = ARENA_TRAIN_FLOATS(a, 2 * E > H ? 2 * E : H);
    m->dwt = ARENA_TRAIN_FLOATS(a, ms);
    m->dww = ARENA_TRAIN_FLOATS(a, ms);
    m->dwr = ARENA_TRAIN_FLOATS(a, ms);
    m->da_ = ARENA_TRAIN_FLOATS(a, ms * ms);
    m->dea = ARENA_TRAIN_FLOATS(a, E);
    m->dq = ARENA_TRAIN_FLOATS(a, E + 1);
    m->dqa = ARENA_TRAIN_FLOATS(a, ms);
    mlp_head_carve(&m->head, a, B);
}

int mimn_new(mimn **out, const mimn_config *cfg, size_t max_b)
{
    *out = NULL;
    if (!cfg) return LSIM_E_INVAL;
    const din_config *c = &cfg->base;
    size_t E = (size_t)c->d_item + c->d_cat, H = cfg->d_ctrl, ms = cfg->mem_slots;
    if (!max_b || !c->d_item || !c->d_cat || !c->mlp_h1 || !c->mlp_h2 || !H || !ms || ms > 64 || !cfg->miu_k ||
        cfg->miu_k > ms || !cfg->bptt || cfg->bptt > 100000 || E > 65536 || H > 65536 || max_b > ((size_t)1 << 24) ||
        !(cfg->util_reg >= 0 && cfg->util_reg <= 1e6f))
        return LSIM_E_INVAL;
    mimn *m = calloc(1, sizeof *m);
    if (!m) return LSIM_E_NOMEM;
    m->cfg = *cfg;
    m->max_b = max_b;
    m->e = E;
    m->h = H;
    m->ms = ms;
    m->k = cfg->miu_k;
    m->np = 4 * E + 2;
    m->sf = mimn_state_floats(cfg);
    m->mi = 3 * E + H;
    m->bptt = cfg->bptt;
    m->gs = 6 * H + m->np + m->k * 6 * E;
    size_t R = layout(&m->ro, cfg);
    if (max_b * m->bptt > SIZE_MAX / sizeof(float) / R / 2) {
        free(m);
        return LSIM_E_INVAL;
    }
    param_list p = {0}, b = {0};
    int rc = embed_register(&p, c->n_items, c->n_cats, c->d_item, c->d_cat);
    /* registration order matters to param_set_randomize: a bias follows its weight */
    const size_t shp[N_NAMES][2] = {{3 * H, 2 * E}, {3 * H, 0}, {3 * H, H},     {3 * H, 0}, {m->np, H},
                                    {m->np, 0},     {ms, E},    {ms * ms, ms},  {ms * ms, 0}, {3 * E, 2 * E},
                                    {3 * E, 0},     {3 * E, E}, {3 * E, 0},     {E + 1, E},   {E + 1, 0}};
    for (size_t i = 0; i < N_NAMES && !rc; i++) rc = param_list_add(&p, names[i], shp[i][1] ? 2 : 1, shp[i]);
    if (!rc) rc = mlp_head_register(&p, &b, "mlp", m->mi, c->mlp_h1, c->mlp_h2);
    rc = model_state_init(&m->st, &p, &b, rc);
    if (rc) {
        mimn_free(m);
        return rc;
    }
    const param_set *ps = &m->st.params, *gs = &m->st.grads;
    embed_bind(&m->emb, c->n_items, c->n_cats, c->d_item, c->d_cat, ps, gs);
    const float **pv[N_NAMES] = {&m->c_wih, &m->c_bih, &m->c_whh, &m->c_bhh, &m->o_w,   &m->o_b,   &m->key, &m->rb_w,
                                 &m->rb_b,  &m->u_wih, &m->u_bih, &m->u_whh, &m->u_bhh, &m->q_w,   &m->q_b};
    float **gv[N_NAMES] = {&m->gc_wih, &m->gc_bih, &m->gc_whh, &m->gc_bhh, &m->go_w,   &m->go_b, &m->gkey, &m->grb_w,
                           &m->grb_b,  &m->gu_wih, &m->gu_bih, &m->gu_whh, &m->gu_bhh, &m->gq_w, &m->gq_b};
    for (size_t i = 0; i < N_NAMES; i++) {
        *pv[i] = param_find(ps, names[i]);
        *gv[i] = param_find(gs, names[i]); /* NULL in a view (no gradients) */
    }
    mlp_head_bind(&m->head, "mlp", m->mi, c->mlp_h1, c->mlp_h2, c->dice_momentum, ps, gs, &m->st.buffers);
    if ((rc = model_state_alloc_ws(&m->st, carve, m))) {
        mimn_free(m);
        return rc;
    }
    mimn_init(m, 1);
    *out = m;
    return 0;
}

void mimn_free(mimn *m)
{
    if (!m) return;
    model_state_free(&m->st);
    free(m);
}

void mimn_init(mimn *m, uint64_t seed)
{
    if (m->st.params.block) { /* not a view of another model's parameters (never written) */
        param_set_randomize(&m->st.params, seed);
        float *b = (float *)m->rb_b;
        for (size_t i = 0; i < m->ms; i++)
            for (size_t j = 0; j < m->ms; j++) b[i * m->ms + j] = i == j ? 3.0f : 0.0f;
    }
    mlp_head_reset_buffers(&m->head);
}

/* The target's read of sample b's state st: fills the readout's saved values and
 * the head input row. */
static void readout(mimn *m, size_t b, const float *st, uint32_t item, uint32_t cat)
{
    size_t E = m->e, H = m->h, ms = m->ms;
    const float *h = st, *M = h + H + E, *S = M + ms * E;
    float *mi = m->m_in + b * m->mi, *q = m->qa + b * (E + 1), *k = m->ka + b * E, *w = m->wa + b * ms;
    float *nm = m->nma + b * ms;
    embed_forward(&m->emb, mi, &item, &cat, 1);
    matvec(q, m->q_w, mi, m->q_b, E + 1, E);
    nn_tanh_forward(k, q, E);
    m->ba[b] = SHARP * (1.0f + softplus(q[E]));
    for (size_t i = 0; i < ms; i++) nm[i] = nn_dot(M + i * E, M + i * E, E) + MIMN_COS_EPS;
    address(m->nka + b, m->cka + b * ms, m->cma + b * ms, w, k, m->ba[b], m->kc, M, nm, ms, E);
    float *rm = mi + E, *rs = mi + 2 * E;
    memset(rm, 0, 2 * E * sizeof *rm);
    for (size_t i = 0; i < ms; i++)
        for (size_t d = 0; d < E; d++) {
            rm[d] += w[i] * M[i * E + d];
            rs[d] += w[i] * S[i * E + d];
        }
    memcpy(mi + 3 * E, h, H * sizeof *h);
}

/* The utilization variance of a state's g, and (dwc non-NULL) its gradient scaled by `scale`. */
static float util_var(const float *g, size_t ms, float scale, float *dwc)
{
    float s = 0.0f, mean = 0.0f, var = 0.0f;
    for (size_t i = 0; i < ms; i++) s += g[i];
    float den = s > 1.0f ? s : 1.0f;
    for (size_t i = 0; i < ms; i++) mean += g[i] / den;
    mean /= (float)ms;
    for (size_t i = 0; i < ms; i++) {
        float d = g[i] / den - mean;
        var += d * d;
        if (dwc) dwc[i] = scale * 2.0f / (float)ms * d / den;
    }
    return var / (float)ms;
}

float mimn_forward(mimn *m, const model_batch *bt, float *logits, int train)
{
    if (m->st.forward_only) train = 0; /* no training buffers: always an inference forward */
    size_t B = bt->b, SF = m->sf, R = m->ro.total;
    m->b = B;
    prep_consts(m, m->kc);
    for (size_t b = 0; b < B; b++) {
        float *st = m->fstate + b * SF;
        m->win[b] = 0;
        if (bt->mimn_state) {
            memcpy(st, bt->mimn_state + (bt->state_shared ? 0 : b * SF), SF * sizeof *st);
        } else if (!train && b && bt->all_len && bt->all_off[b] == bt->all_off[b - 1] &&
                   bt->all_len[b] == bt->all_len[b - 1]) {
            memcpy(st, st - SF, SF * sizeof *st); /* one copy of one history (model_batch.h): its fold's bits */
        } else {
            memset(st, 0, SF * sizeof *st);
            size_t n = bt->all_len ? bt->all_len[b] : 0, w = train ? (n < m->bptt ? n : m->bptt) : 0;
            const uint32_t *it = n ? bt->all_item + bt->all_off[b] : NULL;
            const uint32_t *ct = n ? bt->all_cat + bt->all_off[b] : NULL;
            fold(m, m->kc, st, it, ct, n - w, m->fold_rc);
            for (size_t t = 0; t < w; t++) {
                float *rc = m->rec + (b * m->bptt + t) * R;
                embed_forward(&m->emb, rc + m->ro.cin, it + n - w + t, ct + n - w + t, 1);
                step_fwd(m, m->kc, st, rc);
            }
            m->win[b] = (uint32_t)w;
        }
        readout(m, b, st, bt->target_item[b], bt->target_cat[b]);
    }
    mlp_head_forward(&m->head, logits, m->m_in, B, train);
    if (!bt->label) return 0.0f;
    float loss = nn_bce_logits_forward(m->head.logit, bt->label, B);
    if (m->cfg.util_reg > 0) {
        double reg = 0;
        for (size_t b = 0; b < B; b++) reg += m->ureg[b] = util_var(m->fstate + b * SF + SF - m->ms, m->ms, 0, NULL);
        loss += m->cfg.util_reg * (float)(reg / (double)B);
    }
    return loss;
}

void mimn_backward(mimn *m, const model_batch *bt)
{
    assert(!m->st.forward_only); /* no gradients, no backward buffers */
    if (m->st.forward_only) return;
    size_t B = m->b, E = m->e, H = m->h, ms = m->ms, SF = m->sf, R = m->ro.total, MI = m->mi;
    memset(m->dlogit, 0, B * sizeof(float));
    nn_bce_logits_backward(m->dlogit, m->head.logit, bt->label, 1.0f, B);
    memset(m->dm, 0, B * MI * sizeof(float));
    mlp_head_backward(&m->head, m->dm, m->dlogit);
    memset(m->dkh, 0, ms * E * sizeof(float));
    transpose(m->wt_cih, m->c_wih, 3 * H, 2 * E);
    transpose(m->wt_chh, m->c_whh, 3 * H, H);
    transpose(m->wt_o, m->o_w, m->np, H);
    transpose(m->wt_uih, m->u_wih, 3 * E, 2 * E);
    transpose(m->wt_uhh, m->u_whh, 3 * E, E);
    const rec_layout *o = &m->ro;
    size_t GS = m->gs, P = m->np;
    for (size_t b = 0; b < B; b++) {
        const float *st = m->fstate + b * SF, *M = st + H + E, *S = M + ms * E, *dmi = m->dm + b * MI;
        const float *mi = m->m_in + b * MI, *w = m->wa + b * ms;
        float *dst = m->dst, *dM = dst + H + E, *dS = dM + ms * E, *dea = m->dea;
        memset(dst, 0, SF * sizeof *dst);
        memcpy(dst, dmi + 3 * E, H * sizeof *dst);
        memcpy(dea, dmi, E * sizeof *dea);
        /* the target's read */
        const float *drm = dmi + E, *drs = dmi + 2 * E;
        for (size_t i = 0; i < ms; i++) {
            m->dqa[i] = nn_dot(drm, M + i * E, E) + nn_dot(drs, S + i * E, E);
            for (size_t d = 0; d < E; d++) {
                dM[i * E + d] += w[i] * drm[d];
                dS[i * E + d] += w[i] * drs[d];
            }
        }
        const float *q = m->qa + b * (E + 1);
        address_bwd(m->dq, m->dq + E, dM, m->dkh, m->dqa, m->ka + b * E, m->ba[b], q[E], m->nka[b], m->cka + b * ms,
                    m->cma + b * ms, w, m->kc, M, m->nma + b * ms, ms, E);
        matvec_t_acc(dea, m->q_w, m->dq, E + 1, E);
        outer_acc(m->gq_w, m->gq_b, m->dq, mi, E + 1, E);
        embed_backward(&m->emb, dea, bt->target_item + b, bt->target_cat + b, 1);
        /* the window, newest first */
        size_t wn = m->win[b];
        if (!wn) continue;
        const float *dwc = NULL;
        if (m->cfg.util_reg > 0) {
            util_var(st + SF - ms, ms, m->cfg.util_reg / (float)B, m->dwc);
            dwc = m->dwc;
        }
        size_t n = bt->all_len[b];
        const uint32_t *it = bt->all_item + bt->all_off[b] + n - wn, *ct = bt->all_cat + bt->all_off[b] + n - wn;
        const float *rb = m->rec + b * m->bptt * R;
        for (size_t t = wn; t-- > 0;) {
            memset(m->dx, 0, E * sizeof(float));
            step_bwd(m, m->kc, rb + t * R, dst, dwc, m->dx, m->gstep + t * GS);
            embed_backward(&m->emb, m->dx, it + t, ct + t, 1);
        }
        /* the window's weight gradients: gate gradients (steps, .) against the records' inputs (steps, .) */
        const float *gsb = m->gstep;
        gemm_tn_acc(m->gc_wih, m->gc_bih, gsb, GS, rb + o->cin, R, 3 * H, 2 * E, wn);
        gemm_tn_acc(m->gc_whh, m->gc_bhh, gsb + 3 * H, GS, rb + o->hp, R, 3 * H, H, wn);
        gemm_tn_acc(m->go_w, m->go_b, gsb + 6 * H, GS, rb + o->hn, R, P, H, wn);
        for (size_t j = 0; j < m->k; j++) {
            const float *ug = gsb + 6 * H + P + j * 6 * E, *u = rb + o->miu + j * o->miu_each;
            gemm_tn_acc(m->gu_wih, m->gu_bih, ug, GS, u, R, 3 * E, 2 * E, wn);
            gemm_tn_acc(m->gu_whh, m->gu_bhh, ug + 3 * E, GS, u + 2 * E, R, 3 * E, E, wn);
        }
    }
    for (size_t i = 0; i < ms * E; i++) m->gkey[i] += m->dkh[i] * (1.0f - m->kc[i] * m->kc[i]);
}
