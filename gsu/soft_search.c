/*
 * soft_search.c: see soft_search.h.
 */
#include "gsu/soft_search.h"

#include "gsu/soft_score.h"

#include "lsim.h"
#include "models/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int soft_gsu_register(param_list *p, param_list *buf, size_t e, size_t d, size_t h1, size_t h2, size_t nt)
{
    size_t w[2] = {d, e};
    int rc = param_list_add(p, "gsu.wa", 2, w);
    if (!rc) rc = param_list_add(p, "gsu.wb", 2, w);
    if (!rc && nt) rc = param_list_add(p, "gsu.time_bias", 1, &nt);
    if (!rc) rc = mlp_head_register(p, buf, "gsu.mlp", 2 * e, h1, h2);
    return rc;
}

size_t soft_gsu_width(size_t d, size_t nt)
{
    return d + (nt ? 1 : 0);
}

void soft_gsu_bind(soft_gsu *g, size_t e, size_t d_item, size_t d, size_t h1, size_t h2, size_t nt, float momentum,
                   int softmax, const param_set *p, const param_set *gr, const param_set *buf)
{
    g->e = e;
    g->nt = nt;
    g->tb = nt ? param_find(p, "gsu.time_bias") : NULL;
    g->gtb = nt && gr ? param_find(gr, "gsu.time_bias") : NULL;
    g->softmax = softmax;
    g->d = d;
    g->d_item = d_item;
    g->wa = param_find(p, "gsu.wa");
    g->wb = param_find(p, "gsu.wb");
    g->gwa = gr ? param_find(gr, "gsu.wa") : NULL;
    g->gwb = gr ? param_find(gr, "gsu.wb") : NULL;
    mlp_head_bind(&g->aux, "gsu.mlp", 2 * e, h1, h2, momentum, p, gr, buf);
}

void soft_gsu_carve(soft_gsu *g, arena *a, size_t max_b, size_t max_rows)
{
    size_t E = g->e, D = g->d, W = soft_gsu_width(D, g->nt); /* q, k: inference vectors too */
    g->q = ARENA_FLOATS(a, max_b * W);
    g->k = ARENA_FLOATS(a, max_rows * W);
    g->kt = ARENA_FLOATS(a, soft_score_scratch(max_rows, W));
    g->score = ARENA_FLOATS(a, max_rows);
    g->w = ARENA_TRAIN_FLOATS(a, max_rows);
    g->ur = ARENA_TRAIN_FLOATS(a, max_b * E);
    g->aux_in = ARENA_TRAIN_FLOATS(a, max_b * 2 * E);
    g->aux_logit = ARENA_TRAIN_FLOATS(a, max_b);
    g->dlogit = ARENA_TRAIN_FLOATS(a, max_b);
    g->daux_in = ARENA_TRAIN_FLOATS(a, max_b * 2 * E);
    g->dscore = ARENA_TRAIN_FLOATS(a, max_rows);
    g->dq = ARENA_TRAIN_FLOATS(a, max_b * D);
    g->dk = ARENA_TRAIN_FLOATS(a, max_rows * D);
    if (!a->forward_only) mlp_head_carve(&g->aux, a, max_b); /* only the training forward runs the auxiliary head */
}

float soft_gsu_forward(soft_gsu *g, float *score, const float *ea, const float *el, const uint32_t *off, size_t b,
                       const uint32_t *bucket, const float *label, int train)
{
    size_t E = g->e, D = g->d, R = off[b];
    g->ea = ea;
    g->el = el;
    g->off = off;
    g->bucket = bucket;
    g->b = b;
    g->r = R;
    nn_linear_forward(g->q, ea, g->wa, NULL, b, E, D);
    nn_linear_forward(g->k, el, g->wb, NULL, R, E, D);
    for (size_t i = 0; i < b; i++) {
        const float *q = g->q + i * D;
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *k = g->k + r * D;
            float s = 0;
            for (size_t d = 0; d < D; d++) s += k[d] * q[d];
            g->score[r] = g->tb ? s + g->tb[bucket[r]] : s;
        }
    }
    if (score) memcpy(score, g->score, R * sizeof(float));
    if (!label) return 0.0f; /* serving: U_r only feeds the auxiliary (training) head */
    for (size_t i = 0; i < b; i++) { /* the pooling weights w: r, or softmax(r) over the sample's rows */
        size_t r0 = off[i], r1 = off[i + 1];
        if (!g->softmax || r0 == r1) {
            memcpy(g->w + r0, g->score + r0, (r1 - r0) * sizeof(float));
            continue;
        }
        float mx = g->score[r0], sum = 0;
        for (size_t r = r0; r < r1; r++) mx = g->score[r] > mx ? g->score[r] : mx;
        for (size_t r = r0; r < r1; r++) sum += g->w[r] = expf(g->score[r] - mx);
        for (size_t r = r0; r < r1; r++) g->w[r] /= sum;
    }
    for (size_t i = 0; i < b; i++) {
        float *ur = g->ur + i * E;
        memset(ur, 0, E * sizeof(float));
        for (size_t r = off[i]; r < off[i + 1]; r++)
            for (size_t d = 0; d < E; d++) ur[d] += g->w[r] * el[r * E + d];
    }
    for (size_t i = 0; i < b; i++) {
        memcpy(g->aux_in + i * 2 * E, g->ur + i * E, E * sizeof(float));
        memcpy(g->aux_in + i * 2 * E + E, ea + i * E, E * sizeof(float));
    }
    mlp_head_forward(&g->aux, g->aux_logit, g->aux_in, b, train);
    return nn_bce_logits_forward(g->aux_logit, label, b);
}

/* The inference vectors (width W): [W e, beta[bucket]] for keys (bucket
 * given), [W e, 1] for queries (bucket NULL); W e alone without the bias. */
static void infer_vectors(const soft_gsu *g, float *out, const float *w, const float *emb, const uint32_t *bucket,
                          size_t n)
{
    size_t W = soft_gsu_width(g->d, g->nt);
    for (size_t i = 0; i < n; i++) {
        soft_score_vector(out + i * W, w, g->e, g->d_item, emb + i * g->e, g->d);
        if (g->nt) out[i * W + g->d] = bucket ? g->tb[bucket[i]] : 1.0f;
    }
}

void soft_gsu_score_infer(soft_gsu *g, float *score, const float *ea, const float *el, const uint32_t *off, size_t b,
                          const uint32_t *bucket)
{
    size_t W = soft_gsu_width(g->d, g->nt), R = off[b];
    g->r = 0; /* no backward after this path */
    infer_vectors(g, g->q, g->wa, ea, NULL, b);
    infer_vectors(g, g->k, g->wb, el, bucket, R);
    for (size_t i = 0; i < b; i++)
        soft_score_rows(score + off[i], g->k + (size_t)off[i] * W, off[i + 1] - off[i], g->q + i * W, 1, W, g->kt);
}

void soft_gsu_score_shared(soft_gsu *g, float *score, const float *ea, const float *el, size_t n, size_t b,
                           const uint32_t *bucket)
{
    size_t W = soft_gsu_width(g->d, g->nt);
    g->r = 0;
    infer_vectors(g, g->q, g->wa, ea, NULL, b);
    infer_vectors(g, g->k, g->wb, el, bucket, n);
    soft_score_rows(score, g->k, n, g->q, b, W, g->kt);
}

void soft_gsu_backward(soft_gsu *g, float *dea, float *del, const float *label, float alpha)
{
    size_t E = g->e, D = g->d, R = g->r, b = g->b;
    const uint32_t *off = g->off;
    memset(g->dlogit, 0, b * sizeof(float));
    nn_bce_logits_backward(g->dlogit, g->aux_logit, label, alpha, b);
    memset(g->daux_in, 0, b * 2 * E * sizeof(float));
    mlp_head_backward(&g->aux, g->daux_in, g->dlogit);
    memset(g->dq, 0, b * D * sizeof(float));
    memset(g->dk, 0, R * D * sizeof(float));
    for (size_t i = 0; i < b; i++) {
        const float *dur = g->daux_in + i * 2 * E, *q = g->q + i * D;
        float *da = dea + i * E, *dq = g->dq + i * D;
        for (size_t d = 0; d < E; d++) da[d] += dur[E + d];
        /* dw_r = dU_r . e_r; the paper's ds_r = dw_r, softmax's ds_r = w_r (dw_r - sum_j w_j dw_j) */
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *e = g->el + r * E;
            float *de = del + r * E, dw = 0;
            for (size_t d = 0; d < E; d++) {
                dw += dur[d] * e[d];
                de[d] += g->w[r] * dur[d];
            }
            g->dscore[r] = dw;
        }
        if (g->softmax) {
            float dot = 0;
            for (size_t r = off[i]; r < off[i + 1]; r++) dot += g->w[r] * g->dscore[r];
            for (size_t r = off[i]; r < off[i + 1]; r++) g->dscore[r] = g->w[r] * (g->dscore[r] - dot);
        }
        for (size_t r = off[i]; r < off[i + 1]; r++) {
            const float *k = g->k + r * D;
            float *dk = g->dk + r * D, ds = g->dscore[r];
            if (g->gtb) g->gtb[g->bucket[r]] += ds;
            for (size_t d = 0; d < D; d++) {
                dk[d] += ds * q[d];
                dq[d] += ds * k[d];
            }
        }
    }
    nn_linear_backward(dea, g->gwa, NULL, g->dq, g->ea, g->wa, b, E, D);
    nn_linear_backward(del, g->gwb, NULL, g->dk, g->el, g->wb, R, E, D);
}

/* A row's rank as one integer: the score's bits made to order as unsigned
 * (negative floats flipped, -0 made +0 first) above the row number, so that
 * a higher key is a higher score or an equal score and a later row (the
 * more recent behavior). Scores are never NaN. */
uint64_t soft_rank_key(float score, uint32_t row)
{
    float s = score + 0.0f; /* -0 -> +0: they compare equal */
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    u ^= (0u - (u >> 31)) | 0x80000000u; /* negative: all bits flipped; else the sign bit set; no branch */
    return (uint64_t)u << 32 | row;
}

void soft_heap_sift(uint64_t *h, size_t n, size_t i)
{
    uint64_t x = h[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= n) break;
        if (l + 1 < n && h[l + 1] < h[l]) m = l + 1;
        if (h[m] >= x) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

static void sift_u32(uint32_t *a, size_t n, size_t i)
{
    uint32_t x = a[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= n) break;
        if (l + 1 < n && a[l + 1] > a[l]) m = l + 1;
        if (a[m] <= x) break;
        a[i] = a[m];
        i = m;
    }
    a[i] = x;
}

void soft_sort_u32(uint32_t *a, size_t n)
{
    if (n > 64) { /* heapsort: qsort may allocate */
        for (size_t i = n / 2; i-- > 0;) sift_u32(a, n, i);
        for (size_t end = n; end > 1; end--) {
            uint32_t t = a[0];
            a[0] = a[end - 1], a[end - 1] = t;
            sift_u32(a, end - 1, 0);
        }
        return;
    }
    uint32_t *r = a;
    for (size_t i = 1; i < n; i++) {
        uint32_t x = r[i];
        size_t j = i;
        for (; j > 0 && r[j - 1] > x; j--) r[j] = r[j - 1];
        r[j] = x;
    }
}

size_t soft_gsu_topk_ids(uint32_t *out, uint64_t *scratch, const float *score, const uint32_t *ids, size_t m,
                         size_t k)
{
    if (m <= k) {
        memcpy(out, ids, m * sizeof *out);
        soft_sort_u32(out, m);
        return m;
    }
    for (size_t j = 0; j < k; j++) scratch[j] = soft_rank_key(score[j], ids[j]);
    for (size_t j = k / 2; j-- > 0;) soft_heap_sift(scratch, k, j);
    for (size_t r = k; r < m; r++) {
        uint64_t key = soft_rank_key(score[r], ids[r]);
        if (key > scratch[0]) {
            scratch[0] = key;
            soft_heap_sift(scratch, k, 0);
        }
    }
    for (size_t j = 0; j < k; j++) out[j] = (uint32_t)scratch[j];
    soft_sort_u32(out, k);
    return k;
}

size_t soft_gsu_topk(uint32_t *sel_off, uint32_t *rows, uint64_t *scratch, const float *score, const uint32_t *off,
                     size_t b, size_t k)
{
    size_t n = 0;
    for (size_t i = 0; i < b; i++) {
        sel_off[i] = (uint32_t)n;
        size_t lo = off[i], hi = off[i + 1];
        if (hi - lo <= k) {
            for (size_t r = lo; r < hi; r++) rows[n++] = (uint32_t)r;
            continue;
        }
        /* a min-heap of the k best keys seen so far: O(m log k), a new row
         * costing one compare against the root unless it enters */
        for (size_t j = 0; j < k; j++) scratch[j] = soft_rank_key(score[lo + j], (uint32_t)(lo + j));
        for (size_t j = k / 2; j-- > 0;) soft_heap_sift(scratch, k, j);
        for (size_t r = lo + k; r < hi; r++) {
            uint64_t key = soft_rank_key(score[r], (uint32_t)r);
            if (key > scratch[0]) {
                scratch[0] = key;
                soft_heap_sift(scratch, k, 0);
            }
        }
        for (size_t j = 0; j < k; j++) rows[n + j] = (uint32_t)scratch[j];
        soft_sort_u32(rows + n, k);
        n += k;
    }
    sel_off[b] = (uint32_t)n;
    return n;
}
