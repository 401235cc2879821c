/*
 * dien_branch.c: see dien_branch.h and esu/dien.h. Sequences stay padded
 * (B, S, .): the recurrent kernels take padded batches with lengths and keep
 * every padded step inert (models/nn_rnn.h).
 */
#include "esu/dien_branch.h"

#include "lsim.h"
#include "models/nn.h"
#include "models/nn_rnn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const names[7] = {"dien.gru.w", "dien.gru.u", "dien.gru.b", "dien.att.w",
                                     "dien.augru.w", "dien.augru.u", "dien.augru.b"};

int dien_branch_register(param_list *p, size_t e)
{
    size_t w[2] = {3 * e, e}, att[2] = {e, e}, b = 3 * e;
    int rc = 0;
    for (int i = 0; i < 7 && !rc; i++) {
        if (i == 3) rc = param_list_add(p, names[i], 2, att);
        else if (i % 4 == 2) rc = param_list_add(p, names[i], 1, &b); /* the biases: 2 and 6 */
        else rc = param_list_add(p, names[i], 2, w);
    }
    return rc;
}

void dien_branch_bind(dien_branch *br, size_t e, float alpha_aux, embed_layer *emb, const param_set *p,
                      const param_set *g)
{
    br->e = e;
    br->alpha_aux = alpha_aux;
    br->emb = emb;
    const float **pv[7] = {&br->gru_w, &br->gru_u, &br->gru_b, &br->att_w, &br->aug_w, &br->aug_u, &br->aug_b};
    float **gv[7] = {&br->g_gru_w, &br->g_gru_u, &br->g_gru_b, &br->g_att_w, &br->g_aug_w, &br->g_aug_u, &br->g_aug_b};
    for (int i = 0; i < 7; i++) {
        *pv[i] = param_find(p, names[i]);
        *gv[i] = g ? param_find(g, names[i]) : NULL;
    }
}

void dien_branch_carve(dien_branch *br, arena *a, size_t max_b, size_t max_s)
{
    size_t B = max_b, S = max_s, E = br->e, BS = B * S;
    size_t sc1 = nn_gru_scratch_floats(B, S, E, E), sc2 = nn_augru_scratch_floats(B, S, E, E);
    if (a->forward_only) /* the backward's scratch is (B, S, .); the forward's a few rows */
        sc1 = nn_gru_forward_scratch_floats(B, S, E, E), sc2 = nn_augru_forward_scratch_floats(B, S, E, E);
    br->es = ARENA_FLOATS(a, BS * E);
    br->en = ARENA_TRAIN_FLOATS(a, BS * E);
    br->h = ARENA_FLOATS(a, BS * E);
    br->q = ARENA_FLOATS(a, B * E);
    br->sc = ARENA_FLOATS(a, BS);
    br->att = ARENA_FLOATS(a, BS);
    br->hfin = ARENA_FLOATS(a, B * E);
    br->pool = ARENA_FLOATS(a, B * E);
    br->gru_saved = ARENA_FLOATS(a, nn_gru_saved_floats(B, S, E, E));
    br->aug_saved = ARENA_FLOATS(a, nn_augru_saved_floats(B, S, E, E));
    br->scratch = ARENA_FLOATS(a, sc1 > sc2 ? sc1 : sc2);
    br->des = ARENA_TRAIN_FLOATS(a, BS * E);
    br->den = ARENA_TRAIN_FLOATS(a, BS * E);
    br->dh = ARENA_TRAIN_FLOATS(a, BS * E);
    br->dq = ARENA_TRAIN_FLOATS(a, B * E);
    br->dsc = ARENA_TRAIN_FLOATS(a, BS);
    br->datt = ARENA_TRAIN_FLOATS(a, BS);
    br->dhfin = ARENA_TRAIN_FLOATS(a, B * E);
    br->dpool = ARENA_TRAIN_FLOATS(a, B * E);
    br->len = ARENA_U32(a, B);
}

void dien_branch_init(dien_branch *br)
{
    float *w = (float *)br->att_w; /* the branch's own parameter block, bound above */
    size_t E = br->e;
    memset(w, 0, E * E * sizeof *w);
    for (size_t i = 0; i < E; i++) w[i * E + i] = 1.0f;
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

float dien_branch_forward(dien_branch *br, float *out, const float *ea, const model_batch *bt, int train)
{
    size_t B = bt->b, S = bt->s, E = br->e;
    br->ea = ea;
    br->b = B;
    br->s = S;
    for (size_t b = 0; b < B; b++) br->len[b] = bt->hist_len[b] < S ? bt->hist_len[b] : (uint32_t)S;
    if (!train && B > 1 && !nn_reference_forced() && batch_shared_history(bt)) {
        /* one request: the interest extractor does not depend on the candidate, run it once */
        embed_forward(br->emb, br->es, bt->hist_item, bt->hist_cat, S);
        nn_gru_forward(br->h, NULL, br->gru_saved, br->scratch, br->es, br->len, br->gru_w, br->gru_u, br->gru_b, 1, S,
                       E, E);
        for (size_t b = 1; b < B; b++) {
            memcpy(br->es + b * S * E, br->es, S * E * sizeof(float));
            memcpy(br->h + b * S * E, br->h, S * E * sizeof(float));
        }
    } else {
        embed_forward(br->emb, br->es, bt->hist_item, bt->hist_cat, B * S);
        nn_gru_forward(br->h, NULL, br->gru_saved, br->scratch, br->es, br->len, br->gru_w, br->gru_u, br->gru_b, B, S,
                       E, E);
    }
    /* attention toward the target */
    nn_linear_forward(br->q, ea, br->att_w, NULL, B, E, E);
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < br->len[b]; t++) br->sc[b * S + t] = dot(br->h + (b * S + t) * E, br->q + b * E, E);
    nn_softmax_masked_forward(br->att, br->sc, br->len, B, S);
    nn_augru_forward(NULL, br->hfin, br->aug_saved, br->scratch, br->h, br->att, br->len, br->aug_w, br->aug_u,
                     br->aug_b, B, S, E, E);
    for (size_t b = 0; b < B; b++) {
        float *pool = br->pool + b * E, *o = out + b * 3 * E;
        const float *a = ea + b * E;
        memset(pool, 0, E * sizeof(float));
        for (size_t t = 0; t < br->len[b]; t++)
            for (size_t d = 0; d < E; d++) pool[d] += br->es[(b * S + t) * E + d];
        for (size_t d = 0; d < E; d++) {
            o[d] = br->hfin[b * E + d];
            o[E + d] = pool[d];
            o[2 * E + d] = a[d] * pool[d];
        }
    }
    /* the auxiliary loss: each step's interest state against the next behavior and a negative */
    br->aux = train && bt->hist_neg_item && bt->hist_neg_cat && br->alpha_aux != 0.0f;
    br->n_aux = 0;
    if (!br->aux) return 0.0f;
    embed_forward(br->emb, br->en, bt->hist_neg_item, bt->hist_neg_cat, B * S);
    double sum = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t + 1 < br->len[b]; t++) {
            const float *h = br->h + (b * S + t) * E;
            sum += log_sigmoid(dot(h, br->es + (b * S + t + 1) * E, E)) +
                   log_sigmoid(-dot(h, br->en + (b * S + t + 1) * E, E));
            br->n_aux++;
        }
    return br->n_aux ? br->alpha_aux * (float)(-sum / (double)br->n_aux) : 0.0f;
}

void dien_branch_backward(dien_branch *br, float *dea, const float *dout, const model_batch *bt)
{
    size_t B = br->b, S = br->s, E = br->e;
    memset(br->des, 0, B * S * E * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        const float *o = dout + b * 3 * E, *a = br->ea + b * E, *pool = br->pool + b * E;
        float *da = dea + b * E, *dpool = br->dpool + b * E;
        for (size_t d = 0; d < E; d++) {
            da[d] += o[2 * E + d] * pool[d];
            br->dhfin[b * E + d] = o[d];
            dpool[d] = o[E + d] + o[2 * E + d] * a[d];
        }
        for (size_t t = 0; t < br->len[b]; t++)
            for (size_t d = 0; d < E; d++) br->des[(b * S + t) * E + d] += dpool[d];
    }
    /* AUGRU: gradients for its input h and the attention */
    memset(br->dh, 0, B * S * E * sizeof(float));
    memset(br->datt, 0, B * S * sizeof(float));
    nn_augru_backward(br->dh, br->datt, br->g_aug_w, br->g_aug_u, br->g_aug_b, br->scratch, NULL, br->dhfin,
                      br->aug_saved, br->h, br->att, br->len, br->aug_w, br->aug_u, B, S, E, E);
    memset(br->dsc, 0, B * S * sizeof(float));
    nn_softmax_masked_backward(br->dsc, br->datt, br->att, br->len, B, S);
    memset(br->dq, 0, B * E * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        const float *q = br->q + b * E;
        float *dq = br->dq + b * E;
        for (size_t t = 0; t < br->len[b]; t++) {
            float ds = br->dsc[b * S + t];
            const float *h = br->h + (b * S + t) * E;
            float *dh = br->dh + (b * S + t) * E;
            for (size_t d = 0; d < E; d++) {
                dh[d] += ds * q[d];
                dq[d] += ds * h[d];
            }
        }
    }
    nn_linear_backward(dea, br->g_att_w, NULL, br->dq, br->ea, br->att_w, B, E, E);
    if (br->aux && br->n_aux) {
        memset(br->den, 0, B * S * E * sizeof(float));
        float scale = br->alpha_aux / (float)br->n_aux;
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t + 1 < br->len[b]; t++) {
                const float *h = br->h + (b * S + t) * E, *ep = br->es + (b * S + t + 1) * E,
                            *en = br->en + (b * S + t + 1) * E;
                float *dh = br->dh + (b * S + t) * E, *dep = br->des + (b * S + t + 1) * E,
                      *den = br->den + (b * S + t + 1) * E;
                float gp = scale * (sigmoidf_(dot(h, ep, E)) - 1.0f); /* d(-log sigmoid(x)) */
                float gn = scale * sigmoidf_(dot(h, en, E));          /* d(-log(1 - sigmoid(x))) */
                for (size_t d = 0; d < E; d++) {
                    dh[d] += gp * ep[d] + gn * en[d];
                    dep[d] += gp * h[d];
                    den[d] += gn * h[d];
                }
            }
        embed_backward(br->emb, br->den, bt->hist_neg_item, bt->hist_neg_cat, B * S);
    }
    /* the extractor GRU */
    nn_gru_backward(br->des, br->g_gru_w, br->g_gru_u, br->g_gru_b, br->scratch, br->dh, NULL, br->gru_saved, br->es,
                    br->len, br->gru_w, br->gru_u, B, S, E, E);
    embed_backward(br->emb, br->des, bt->hist_item, bt->hist_cat, B * S);
}
