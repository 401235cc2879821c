/*
 * esu_attention.c: see esu_attention.h.
 */
#include "esu/esu_attention.h"

#include "lsim.h"
#include "models/nn.h"
#include "models/nn_small.h"
#include "models/nn_vmath.h"

#include <math.h>
#include <string.h>

uint32_t esu_time_bucket(int64_t delta, size_t n_buckets)
{
    if (delta < 0) delta = 0;
    uint64_t minutes = (uint64_t)delta / 60 + 1;
    uint32_t b = 0;
    while (minutes > 1) { /* floor(log2(minutes)) */
        minutes >>= 1;
        b++;
    }
    return b < n_buckets ? b : (uint32_t)n_buckets - 1;
}

int esu_attention_register(param_list *p, size_t e, size_t d_time, size_t heads, size_t d_head, size_t n_buckets)
{
    size_t wa[2] = {heads * d_head, e}, wb[2] = {heads * d_head, e + d_time}, te[2] = {n_buckets, d_time};
    int rc = param_list_add(p, "esu.wa", 2, wa);
    if (!rc) rc = param_list_add(p, "esu.wb", 2, wb);
    if (!rc && d_time) rc = param_list_add(p, "esu.time_emb", 2, te);
    return rc;
}

void esu_attention_bind(esu_attention *u, size_t e, size_t d_time, size_t heads, size_t d_head, size_t n_buckets,
                        const param_set *p, const param_set *g)
{
    u->e = e;
    u->d_time = d_time;
    u->z = e + d_time;
    u->heads = heads;
    u->d_head = d_head;
    u->n_buckets = n_buckets;
    u->wa = param_find(p, "esu.wa");
    u->wb = param_find(p, "esu.wb");
    u->temb = d_time ? param_find(p, "esu.time_emb") : NULL;
    u->gwa = g ? param_find(g, "esu.wa") : NULL;
    u->gwb = g ? param_find(g, "esu.wb") : NULL;
    u->gtemb = g && d_time ? param_find(g, "esu.time_emb") : NULL;
}

void esu_attention_carve(esu_attention *u, arena *a, size_t max_b, size_t max_rows)
{
    size_t H = u->heads * u->d_head, R = max_rows;
    u->bucket = ARENA_U32(a, R);
    u->zz = ARENA_FLOATS(a, R * u->z);
    u->q = ARENA_FLOATS(a, max_b * H);
    u->k = ARENA_FLOATS(a, R * H);
    u->att = ARENA_FLOATS(a, R * u->heads);
    u->datt = ARENA_TRAIN_FLOATS(a, R * u->heads);
    u->dq = ARENA_TRAIN_FLOATS(a, max_b * H);
    u->dk = ARENA_TRAIN_FLOATS(a, R * H);
    u->dz = ARENA_TRAIN_FLOATS(a, R * u->z);
    u->qz = ARENA_FLOATS(a, max_b * u->heads * u->z);
    u->tw = ARENA_FLOATS(a, u->n_buckets * u->heads);
    u->hs = ARENA_FLOATS(a, 2 * u->heads);
}

void esu_attention_forward(esu_attention *u, float *out, const float *ea, const float *el, const int64_t *ts,
                           const int64_t *now, const uint32_t *off, size_t b)
{
    size_t E = u->e, Z = u->z, Q = u->heads, D = u->d_head, H = Q * D, R = off[b];
    u->ea = ea;
    u->el = el;
    u->off = off;
    u->b = b;
    u->r = R;
    for (size_t i = 0; i < b; i++)
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            float *z = u->zz + r * Z;
            memcpy(z, el + r * E, E * sizeof(float));
            if (u->d_time) {
                u->bucket[r] = esu_time_bucket(now[i] - ts[r], u->n_buckets);
                memcpy(z + E, u->temb + (size_t)u->bucket[r] * u->d_time, u->d_time * sizeof(float));
            }
        }
    nn_linear_forward(u->q, ea, u->wa, NULL, b, E, H);
    nn_linear_forward(u->k, u->zz, u->wb, NULL, R, Z, H);
    for (size_t i = 0; i < b; i++) {
        size_t lo = off[i], hi = off[i + 1];
        float *o = out + i * Q * Z;
        memset(o, 0, Q * Z * sizeof(float));
        for (size_t h = 0; h < Q; h++) {
            const float *q = u->q + i * H + h * D;
            float mx = -INFINITY;
            for (size_t r = lo; r < hi; r++) {
                float s = nn_dot(u->k + r * H + h * D, q, D);
                u->att[r * Q + h] = s;
                if (s > mx) mx = s;
            }
            float sum = 0;
            for (size_t r = lo; r < hi; r++) {
                float e = expf(u->att[r * Q + h] - mx);
                u->att[r * Q + h] = e;
                sum += e;
            }
            float *oh = o + h * Z;
            for (size_t r = lo; r < hi; r++) {
                float a = u->att[r * Q + h] /= sum;
                const float *z = u->zz + r * Z;
                for (size_t d = 0; d < Z; d++) oh[d] += a * z[d];
            }
        }
    }
}

void esu_attention_forward_infer(esu_attention *u, float *out, const float *ea, const float *el, const int64_t *ts,
                                 const int64_t *now, const uint32_t *row0, const uint32_t *cnt, size_t b)
{
    size_t E = u->e, DT = u->d_time, Z = u->z, Q = u->heads, D = u->d_head, H = Q * D;
    u->ea = ea;
    u->el = el;
    u->b = b;
    u->r = 0; /* nothing kept for a backward */
    nn_linear_forward(u->q, ea, u->wa, NULL, b, E, H);
    /* qz (B, q, Z): row (i, h) = sum_d q[i, h D + d] W_b[h D + d, :], per head q_h (B, D) W_b,h (D, Z) */
    for (size_t h = 0; h < Q; h++) nn_small_nn(u->qz + h * Z, Q * Z, u->q + h * D, H, u->wb + h * D * Z, Z, b, Z, D);
    size_t NB = u->n_buckets;
    for (size_t i = 0; i < b; i++) {
        size_t lo = row0[i], n = cnt[i];
        const float *qi = u->qz + i * Q * Z, *er = el + lo * E;
        float *s = u->att + lo * Q, *o = out + i * Q * Z; /* s (n, q): the sample's scores, then weights */
        nn_small_nt(s, Q, er, E, qi, Z, n, Q, E);
        if (DT) { /* the time part: tw (n_buckets, q) = time_emb . each head's query */
            nn_small_nt(u->tw, Q, u->temb, DT, qi + E, Z, NB, Q, DT);
            for (size_t r = 0; r < n; r++) {
                uint32_t bk = u->bucket[lo + r] = esu_time_bucket(now[i] - ts[lo + r], NB);
                for (size_t h = 0; h < Q; h++) s[r * Q + h] += u->tw[bk * Q + h];
            }
        }
        float *mx = u->hs, *sum = u->hs + Q; /* softmax over the sample's rows, every head at once */
        for (size_t h = 0; h < Q; h++) mx[h] = -INFINITY, sum[h] = 0;
        for (size_t r = 0; r < n; r++)
            for (size_t h = 0; h < Q; h++) mx[h] = s[r * Q + h] > mx[h] ? s[r * Q + h] : mx[h];
        for (size_t r = 0; r < n; r++)
            for (size_t h = 0; h < Q; h++) s[r * Q + h] -= mx[h];
        vm_exp(s, s, n * Q);
        for (size_t r = 0; r < n; r++)
            for (size_t h = 0; h < Q; h++) sum[h] += s[r * Q + h];
        for (size_t r = 0; r < n; r++)
            for (size_t h = 0; h < Q; h++) s[r * Q + h] /= sum[h];
        memset(o, 0, Q * Z * sizeof(float)); /* head h = sum_j att_hj z_j: the behaviors, then the times */
        nn_small_tn_acc(o, Z, s, er, E, n, Q, E);
        if (DT) {
            memset(u->tw, 0, NB * Q * sizeof(float));
            for (size_t r = 0; r < n; r++)
                for (size_t h = 0; h < Q; h++) u->tw[u->bucket[lo + r] * Q + h] += s[r * Q + h];
            for (size_t h = 0; h < Q; h++)
                for (size_t bk = 0; bk < NB; bk++) {
                    float w = u->tw[bk * Q + h];
                    const float *t = u->temb + bk * DT;
                    for (size_t d = 0; d < DT && w != 0.0f; d++) o[h * Z + E + d] += w * t[d];
                }
        }
    }
}

void esu_attention_backward(esu_attention *u, float *dea, float *del, const float *dout)
{
    size_t E = u->e, Z = u->z, Q = u->heads, D = u->d_head, H = Q * D, R = u->r, b = u->b;
    const uint32_t *off = u->off;
    memset(u->dz, 0, R * Z * sizeof(float));
    memset(u->dq, 0, b * H * sizeof(float));
    memset(u->dk, 0, R * H * sizeof(float));
    for (size_t i = 0; i < b; i++) {
        size_t lo = off[i], hi = off[i + 1];
        for (size_t h = 0; h < Q; h++) {
            const float *doh = dout + i * Q * Z + h * Z;
            float dot = 0;
            for (size_t r = lo; r < hi; r++) {
                const float *z = u->zz + r * Z;
                float *dz = u->dz + r * Z, a = u->att[r * Q + h], s = 0;
                for (size_t d = 0; d < Z; d++) {
                    s += doh[d] * z[d];
                    dz[d] += a * doh[d];
                }
                u->datt[r * Q + h] = s;
                dot += a * s;
            }
            const float *q = u->q + i * H + h * D;
            float *dq = u->dq + i * H + h * D;
            for (size_t r = lo; r < hi; r++) {
                float ds = u->att[r * Q + h] * (u->datt[r * Q + h] - dot);
                const float *k = u->k + r * H + h * D;
                float *dk = u->dk + r * H + h * D;
                for (size_t d = 0; d < D; d++) {
                    dk[d] += ds * q[d];
                    dq[d] += ds * k[d];
                }
            }
        }
    }
    nn_linear_backward(dea, u->gwa, NULL, u->dq, u->ea, u->wa, b, E, H);
    nn_linear_backward(u->dz, u->gwb, NULL, u->dk, u->zz, u->wb, R, Z, H);
    for (size_t r = 0; r < R; r++) {
        const float *dz = u->dz + r * Z;
        float *d = del + r * E;
        for (size_t k = 0; k < E; k++) d[k] += dz[k];
        if (u->d_time) {
            float *g = u->gtemb + (size_t)u->bucket[r] * u->d_time;
            for (size_t k = 0; k < u->d_time; k++) g[k] += dz[E + k];
        }
    }
}
