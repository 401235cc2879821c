/*
 * dsin_branch.c: see dsin_branch.h and esu/dsin.h.
 *
 * Layout: sessions live in a padded (B, K, T, E) tensor (row b * K + k of
 * the (B K, T, E) encoder batch), session lengths sess_len (B K), sessions
 * per sample n_sess (B). A sample's sessions fill slots 0 .. n_sess-1 in
 * time order, so the Bi-LSTM's valid prefix is exactly its sessions. The
 * encoder packs the valid behaviors itself (models/nn_attention.h) and the
 * Bi-LSTM keeps padded sessions inert (models/nn_rnn.h): padding costs
 * little and never reaches a result or a gradient. Padded rows of the
 * encoder input and of the pooled interests are kept at 0.
 */
#include "esu/dsin_branch.h"

#include "lsim.h"
#include "models/nn.h"
#include "models/nn_rnn.h"

#include <math.h>
#include <string.h>

#define N_ENC 12
static const char *const enc_names[N_ENC] = {
    "dsin.encoder.self_attn.in_proj_weight", "dsin.encoder.self_attn.in_proj_bias",
    "dsin.encoder.self_attn.out_proj.weight", "dsin.encoder.self_attn.out_proj.bias",
    "dsin.encoder.linear1.weight",            "dsin.encoder.linear1.bias",
    "dsin.encoder.linear2.weight",            "dsin.encoder.linear2.bias",
    "dsin.encoder.norm1.weight",              "dsin.encoder.norm1.bias",
    "dsin.encoder.norm2.weight",              "dsin.encoder.norm2.bias",
};

#define N_OWN 9
static const char *const own_names[N_OWN] = {"dsin.bias.k",    "dsin.bias.t",    "dsin.bias.c",
                                             "dsin.lstm.w_ih", "dsin.lstm.w_hh", "dsin.lstm.b_ih",
                                             "dsin.lstm.b_hh", "dsin.att_i.w",   "dsin.att_h.w"};

int dsin_branch_register(param_list *p, size_t e, size_t k, size_t t, size_t h, size_t f)
{
    size_t E = e, F = f, H = h;
    /* registration order matters to param_set_randomize: a bias follows its weight */
    const size_t enc_shape[N_ENC][2] = {{3 * E, E}, {3 * E, 0}, {E, E}, {E, 0}, {F, E}, {F, 0},
                                        {E, F},     {E, 0},     {E, 0}, {E, 0}, {E, 0}, {E, 0}};
    const size_t own_shape[N_OWN][3] = {{k, 0, 0},        {t, 0, 0},     {E, 0, 0},
                                        {2, 4 * H, E},    {2, 4 * H, H},    {2, 4 * H, 0},
                                        {2, 4 * H, 0},    {E, E, 0},        {H, E, 0}};
    const size_t own_ndim[N_OWN] = {1, 1, 1, 3, 3, 2, 2, 2, 2};
    int rc = 0;
    for (int i = 0; i < N_OWN && !rc; i++) rc = param_list_add(p, own_names[i], own_ndim[i], own_shape[i]);
    for (int i = 0; i < N_ENC && !rc; i++)
        rc = param_list_add(p, enc_names[i], enc_shape[i][1] ? 2 : 1, enc_shape[i]);
    return rc;
}

void dsin_branch_bind(dsin_branch *br, size_t e, size_t k, size_t t, size_t h, size_t f, size_t heads,
                      size_t min_len, int64_t gap, embed_layer *emb, const param_set *p, const param_set *g)
{
    dsin_branch *m = br;
    m->e = e;
    m->k = k;
    m->t = t;
    m->h = h;
    m->f = f;
    m->nh = heads;
    m->min_len = min_len ? min_len : 1;
    m->gap = gap;
    m->emb = emb;
    const float **pe[N_ENC] = {&m->enc.in_w, &m->enc.in_b, &m->enc.out_w, &m->enc.out_b, &m->enc.l1_w, &m->enc.l1_b,
                               &m->enc.l2_w, &m->enc.l2_b, &m->enc.n1_w,  &m->enc.n1_b,  &m->enc.n2_w, &m->enc.n2_b};
    float **ge[N_ENC] = {&m->genc.in_w, &m->genc.in_b, &m->genc.out_w, &m->genc.out_b, &m->genc.l1_w, &m->genc.l1_b,
                         &m->genc.l2_w, &m->genc.l2_b, &m->genc.n1_w,  &m->genc.n1_b,  &m->genc.n2_w, &m->genc.n2_b};
    const float **po[N_OWN] = {&m->be_k, &m->be_t, &m->be_c, &m->w_ih, &m->w_hh,
                               &m->b_ih, &m->b_hh, &m->att_i, &m->att_h};
    float **go[N_OWN] = {&m->g_be_k, &m->g_be_t, &m->g_be_c, &m->g_w_ih, &m->g_w_hh,
                         &m->g_b_ih, &m->g_b_hh, &m->g_att_i, &m->g_att_h};
    for (int i = 0; i < N_ENC; i++) {
        *pe[i] = param_find(p, enc_names[i]);
        *ge[i] = g ? param_find(g, enc_names[i]) : NULL;
    }
    for (int i = 0; i < N_OWN; i++) {
        *po[i] = param_find(p, own_names[i]);
        *go[i] = g ? param_find(g, own_names[i]) : NULL;
    }
}

void dsin_branch_carve(dsin_branch *br, arena *a, size_t max_b)
{
    dsin_branch *m = br;
    size_t B = max_b, K = m->k, T = m->t, E = m->e, H = m->h, BK = B * K, BKT = BK * T;
    size_t se = nn_encoder_scratch_floats(BK, T, E, m->f, m->nh), sl = nn_bilstm_scratch_floats(B, K, E, H);
    if (a->forward_only) /* the encoder's forward takes no scratch; the Bi-LSTM's a few rows */
        se = 0, sl = nn_bilstm_forward_scratch_floats(B, K, E, H);
    m->n_sess = ARENA_U32(a, B);
    m->sess_len = ARENA_U32(a, BK);
    m->sess_pos = ARENA_U32(a, BKT);
    m->sess_item = ARENA_U32(a, BKT);
    m->sess_cat = ARENA_U32(a, BKT);
    m->x = ARENA_FLOATS(a, BKT * E);
    m->y = ARENA_FLOATS(a, BKT * E);
    m->ik = ARENA_FLOATS(a, BK * E);
    m->hk = ARENA_FLOATS(a, BK * H);
    m->qi = ARENA_FLOATS(a, B * E);
    m->qh = ARENA_FLOATS(a, B * H);
    m->si = ARENA_FLOATS(a, BK);
    m->ai = ARENA_FLOATS(a, BK);
    m->sh = ARENA_FLOATS(a, BK);
    m->ah = ARENA_FLOATS(a, BK);
    m->enc_saved = ARENA_FLOATS(a, nn_encoder_saved_floats(BK, T, E, m->f, m->nh));
    m->lstm_saved = ARENA_FLOATS(a, nn_bilstm_saved_floats(B, K, E, H));
    m->scratch = ARENA_FLOATS(a, se > sl ? se : sl);
    m->dik = ARENA_TRAIN_FLOATS(a, BK * E);
    m->dhk = ARENA_TRAIN_FLOATS(a, BK * H);
    m->dai = ARENA_TRAIN_FLOATS(a, BK);
    m->dsi = ARENA_TRAIN_FLOATS(a, BK);
    m->dah = ARENA_TRAIN_FLOATS(a, BK);
    m->dsh = ARENA_TRAIN_FLOATS(a, BK);
    m->dqi = ARENA_TRAIN_FLOATS(a, B * E);
    m->dqh = ARENA_TRAIN_FLOATS(a, B * H);
    m->dy = ARENA_TRAIN_FLOATS(a, BKT * E);
    m->dx = ARENA_TRAIN_FLOATS(a, BKT * E);
}

/* splitmix64 -> uniform in [-1, 1) */
static float uniform_pm1(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static void fill(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

void dsin_branch_init(dsin_branch *br, uint64_t seed)
{
    dsin_branch *m = br;
    size_t E = m->e, H = m->h;
    fill((float *)m->be_k, m->k, 0.0f);
    fill((float *)m->be_t, m->t, 0.0f);
    fill((float *)m->be_c, E, 0.0f);
    fill((float *)m->enc.in_b, 3 * E, 0.0f);
    fill((float *)m->enc.out_b, E, 0.0f);
    fill((float *)m->enc.n1_w, E, 1.0f);
    fill((float *)m->enc.n1_b, E, 0.0f);
    fill((float *)m->enc.n2_w, E, 1.0f);
    fill((float *)m->enc.n2_b, E, 0.0f);
    uint64_t s = seed ^ 0x5d51a7c0ffee1234ull;
    const float bound = 1.0f / sqrtf((float)H);
    float *lstm[4] = {(float *)m->w_ih, (float *)m->w_hh, (float *)m->b_ih, (float *)m->b_hh};
    size_t n[4] = {2 * 4 * H * E, 2 * 4 * H * H, 2 * 4 * H, 2 * 4 * H};
    for (int i = 0; i < 4; i++)
        for (size_t j = 0; j < n[i]; j++) lstm[i][j] = bound * uniform_pm1(&s);
}

/* ---- sessions ---- */

/* Whether behavior i (> 0) starts a session: more than gap seconds after i - 1. */
static int starts_session(const int64_t *ts, size_t i, int64_t gap)
{
    return ts && ts[i] > ts[i - 1] && (uint64_t)ts[i] - (uint64_t)ts[i - 1] > (uint64_t)gap;
}

/* Fills n_sess, sess_len, sess_pos, sess_item, sess_cat for the batch. */
static void split_sessions(dsin_branch *m, const model_batch *bt)
{
    size_t B = bt->b, S = bt->s, K = m->k, T = m->t;
    size_t min_len = m->min_len;
    for (size_t b = 0; b < B; b++) {
        size_t L = bt->hist_len[b] < S ? bt->hist_len[b] : S;
        const int64_t *ts = bt->hist_ts ? bt->hist_ts + b * S : NULL;
        uint32_t *len = m->sess_len + b * K, *pos = m->sess_pos + b * K * T;
        /* from the newest behavior back: sessions fill slots K-1, K-2, ... */
        size_t found = 0, end = L;
        while (end > 0 && found < K) {
            size_t start = end - 1;
            while (start > 0 && !starts_session(ts, start, m->gap)) start--;
            if (end - start >= min_len) {
                size_t slot = K - 1 - found, n = end - start < T ? end - start : T;
                for (size_t t = 0; t < n; t++) pos[slot * T + t] = (uint32_t)(end - n + t);
                len[slot] = (uint32_t)n;
                found++;
            }
            end = start;
        }
        /* ... then move to slots 0 .. found-1, time order kept */
        if (found < K) {
            memmove(pos, pos + (K - found) * T, found * T * sizeof *pos);
            memmove(len, len + (K - found), found * sizeof *len);
            for (size_t k = found; k < K; k++) len[k] = 0;
        }
        m->n_sess[b] = (uint32_t)found;
        for (size_t k = 0; k < K; k++)
            for (size_t t = 0; t < T; t++) {
                size_t i = (b * K + k) * T + t;
                if (t < len[k]) {
                    m->sess_item[i] = bt->hist_item[b * S + pos[k * T + t]];
                    m->sess_cat[i] = bt->hist_cat[b * S + pos[k * T + t]];
                } else {
                    pos[k * T + t] = 0;
                    m->sess_item[i] = m->sess_cat[i] = 0;
                }
            }
    }
}

size_t dsin_branch_sessions(const dsin_branch *m, size_t b, const uint32_t **len, const uint32_t **pos)
{
    if (len) *len = m->sess_len + b * m->k;
    if (pos) *pos = m->sess_pos + b * m->k * m->t;
    return m->n_sess[b];
}

/* ---- forward / backward ---- */

static float dot(const float *a, const float *b, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Activation unit: u (B, W), row stride ld, = sum_{k < n} softmax_k(v_k . q) v_k; v (B, K, W), q (B, W) */
static void unit_forward(float *u, size_t ld, float *sc, float *att, const float *v, const float *q, const uint32_t *n,
                         size_t B, size_t K, size_t W)
{
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < n[b]; k++) sc[b * K + k] = dot(v + (b * K + k) * W, q + b * W, W);
    nn_softmax_masked_forward(att, sc, n, B, K);
    for (size_t b = 0; b < B; b++) {
        float *ub = u + b * ld;
        memset(ub, 0, W * sizeof *ub);
        for (size_t k = 0; k < n[b]; k++) {
            const float a = att[b * K + k], *vk = v + (b * K + k) * W;
            for (size_t d = 0; d < W; d++) ub[d] += a * vk[d];
        }
    }
}

/* Its backward: dv (B, K, W) +=, dq (B, W) = (overwritten); du (B, W) with row stride ld */
static void unit_backward(float *dv, float *dq, float *datt, float *dsc, const float *du, size_t ld, const float *att,
                          const float *v, const float *q, const uint32_t *n, size_t B, size_t K, size_t W)
{
    memset(dsc, 0, B * K * sizeof *dsc);
    for (size_t b = 0; b < B; b++) {
        const float *g = du + b * ld;
        for (size_t k = 0; k < n[b]; k++) {
            const float a = att[b * K + k], *vk = v + (b * K + k) * W;
            float *dvk = dv + (b * K + k) * W;
            datt[b * K + k] = dot(g, vk, W);
            for (size_t d = 0; d < W; d++) dvk[d] += a * g[d];
        }
    }
    nn_softmax_masked_backward(dsc, datt, att, n, B, K);
    memset(dq, 0, B * W * sizeof *dq);
    for (size_t b = 0; b < B; b++) {
        const float *qb = q + b * W;
        float *dqb = dq + b * W;
        for (size_t k = 0; k < n[b]; k++) {
            const float ds = dsc[b * K + k], *vk = v + (b * K + k) * W;
            float *dvk = dv + (b * K + k) * W;
            for (size_t d = 0; d < W; d++) {
                dvk[d] += ds * qb[d];
                dqb[d] += ds * vk[d];
            }
        }
    }
}

void dsin_branch_forward(dsin_branch *m, float *out, const float *ea, const model_batch *bt, int train)
{
    size_t B = bt->b, K = m->k, T = m->t, E = m->e, H = m->h;
    m->b = B;
    m->ea = ea;
    split_sessions(m, bt);
    /* one request (inference, one history for every candidate): sessions, the
     * transformer and the Bi-LSTM do not depend on the candidate: run them for
     * sample 0 and copy; only the activation units see each candidate */
    int shared = !train && B > 1 && !nn_reference_forced() && batch_shared_history(bt);
    size_t BR = shared ? 1 : B, BK = BR * K;
    /* session behaviors + bias encoding; padded rows 0 */
    for (size_t bk = 0; bk < BK; bk++) {
        size_t L = m->sess_len[bk], k = bk % K;
        float *x = m->x + bk * T * E;
        embed_forward(m->emb, x, m->sess_item + bk * T, m->sess_cat + bk * T, L);
        for (size_t t = 0; t < L; t++) {
            const float kt = m->be_k[k] + m->be_t[t];
            for (size_t c = 0; c < E; c++) x[t * E + c] += kt + m->be_c[c];
        }
        memset(x + L * E, 0, (T - L) * E * sizeof *x);
    }
    /* session interest extractor, then average pooling */
    nn_encoder_forward(m->y, m->enc_saved, m->scratch, m->x, m->sess_len, &m->enc, BK, T, E, m->f, m->nh);
    for (size_t bk = 0; bk < BK; bk++) {
        size_t L = m->sess_len[bk];
        float *ik = m->ik + bk * E;
        memset(ik, 0, E * sizeof *ik);
        for (size_t t = 0; t < L; t++)
            for (size_t c = 0; c < E; c++) ik[c] += m->y[(bk * T + t) * E + c];
        if (L)
            for (size_t c = 0; c < E; c++) ik[c] /= (float)L;
    }
    /* session interest interacting */
    nn_bilstm_forward(m->hk, NULL, NULL, m->lstm_saved, m->scratch, m->ik, m->n_sess, m->w_ih, m->w_hh, m->b_ih,
                      m->b_hh, BR, K, E, H);
    for (size_t b = BR; b < B; b++) {
        memcpy(m->ik + b * K * E, m->ik, K * E * sizeof(float));
        memcpy(m->hk + b * K * H, m->hk, K * H * sizeof(float));
    }
    /* activation units toward the target: out = [U^I, U^H], written with row stride E + H */
    nn_linear_forward(m->qi, ea, m->att_i, NULL, B, E, E);
    nn_linear_forward(m->qh, ea, m->att_h, NULL, B, E, H);
    unit_forward(out, E + H, m->si, m->ai, m->ik, m->qi, m->n_sess, B, K, E);
    unit_forward(out + E, E + H, m->sh, m->ah, m->hk, m->qh, m->n_sess, B, K, H);
}

void dsin_branch_backward(dsin_branch *m, float *dea, const float *dout, const model_batch *bt)
{
    (void)bt; /* the sessions of the forward hold all that is needed */
    size_t B = m->b, K = m->k, T = m->t, E = m->e, H = m->h, BK = B * K;
    memset(m->dik, 0, BK * E * sizeof(float));
    memset(m->dhk, 0, BK * H * sizeof(float));
    unit_backward(m->dik, m->dqi, m->dai, m->dsi, dout, E + H, m->ai, m->ik, m->qi, m->n_sess, B, K, E);
    unit_backward(m->dhk, m->dqh, m->dah, m->dsh, dout + E, E + H, m->ah, m->hk, m->qh, m->n_sess, B, K, H);
    nn_linear_backward(dea, m->g_att_i, NULL, m->dqi, m->ea, m->att_i, B, E, E);
    nn_linear_backward(dea, m->g_att_h, NULL, m->dqh, m->ea, m->att_h, B, E, H);
    /* Bi-LSTM, then the average pooling */
    nn_bilstm_backward(m->dik, m->g_w_ih, m->g_w_hh, m->g_b_ih, m->g_b_hh, m->scratch, m->dhk, NULL, NULL,
                       m->lstm_saved, m->ik, m->n_sess, m->w_ih, m->w_hh, B, K, E, H);
    for (size_t bk = 0; bk < BK; bk++) {
        size_t L = m->sess_len[bk];
        const float *dik = m->dik + bk * E;
        for (size_t t = 0; t < L; t++)
            for (size_t c = 0; c < E; c++) m->dy[(bk * T + t) * E + c] = dik[c] / (float)L;
    }
    /* the encoder (dy at padded rows is never read), then bias encoding and embeddings */
    memset(m->dx, 0, BK * T * E * sizeof(float));
    nn_encoder_backward(m->dx, &m->genc, m->scratch, m->dy, m->enc_saved, m->sess_len, &m->enc, BK, T, E, m->f,
                        m->nh);
    for (size_t bk = 0; bk < BK; bk++) {
        size_t L = m->sess_len[bk], k = bk % K;
        const float *dx = m->dx + bk * T * E;
        double sk = 0.0;
        for (size_t t = 0; t < L; t++) {
            double st = 0.0;
            for (size_t c = 0; c < E; c++) {
                st += dx[t * E + c];
                m->g_be_c[c] += dx[t * E + c];
            }
            m->g_be_t[t] += (float)st;
            sk += st;
        }
        m->g_be_k[k] += (float)sk;
        embed_backward(m->emb, dx, m->sess_item + bk * T, m->sess_cat + bk * T, L);
    }
}
