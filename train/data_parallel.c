/*
 * data_parallel.c: see data_parallel.h.
 */
#include "train/data_parallel.h"

#include "lsim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct replica {
    model *m;
    float *logits;
    model_batch part;
    float loss;
    pthread_t th;
} replica;

struct dp_group {
    size_t n;
    replica *r; /* r[0].m is the primary (not owned) */
};

model_batch batch_slice(const model_batch *bt, size_t b0, size_t n)
{
    model_batch s = *bt;
    size_t S = bt->s, K = bt->k;
    s.b = n;
    s.target_item = bt->target_item + b0;
    s.target_cat = bt->target_cat + b0;
    s.hist_item = bt->hist_item + b0 * S;
    s.hist_cat = bt->hist_cat + b0 * S;
    s.hist_len = bt->hist_len + b0;
    if (bt->hist_ts) s.hist_ts = bt->hist_ts + b0 * S;
    if (bt->hist_neg_item) s.hist_neg_item = bt->hist_neg_item + b0 * S;
    if (bt->hist_neg_cat) s.hist_neg_cat = bt->hist_neg_cat + b0 * S;
    if (bt->long_item) s.long_item = bt->long_item + b0 * K;
    if (bt->long_cat) s.long_cat = bt->long_cat + b0 * K;
    if (bt->long_ts) s.long_ts = bt->long_ts + b0 * K;
    if (bt->long_len) s.long_len = bt->long_len + b0;
    if (bt->now) s.now = bt->now + b0;
    if (bt->label) s.label = bt->label + b0;
    return s;
}

int dp_new(dp_group **out, model *primary, size_t threads, size_t max_b, size_t max_s, size_t max_k)
{
    *out = NULL;
    dp_group *g = calloc(1, sizeof *g);
    if (!g || !(g->r = calloc(threads ? threads : 1, sizeof *g->r))) {
        free(g);
        return LSIM_E_NOMEM;
    }
    g->n = threads ? threads : 1;
    size_t part = (max_b + g->n - 1) / g->n;
    g->r[0].m = primary;
    int rc = 0;
    for (size_t i = 0; i < g->n && !rc; i++) {
        if (i && (rc = model_new(&g->r[i].m, model_get_spec(primary), part, max_s, max_k))) break;
        if (!(g->r[i].logits = malloc(max_b * sizeof(float)))) rc = LSIM_E_NOMEM;
    }
    if (rc) {
        dp_free(g);
        return rc;
    }
    dp_sync(g);
    *out = g;
    return 0;
}

void dp_free(dp_group *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        if (i) model_free(g->r[i].m);
        free(g->r[i].logits);
    }
    free(g->r);
    free(g);
}

void dp_sync(dp_group *g)
{
    const param_set *p = model_params(g->r[0].m), *b = model_buffers(g->r[0].m);
    for (size_t i = 1; i < g->n; i++) {
        memcpy(model_params(g->r[i].m)->block, p->block, p->total * sizeof(float));
        memcpy(model_buffers(g->r[i].m)->block, b->block, b->total * sizeof(float));
    }
}

static void run_part(replica *r)
{
    param_set_zero(model_grads(r->m));
    r->loss = r->part.b ? model_forward(r->m, &r->part, r->logits, 1) : 0.0f;
    if (r->part.b) model_backward(r->m, &r->part);
}

static void *worker(void *arg)
{
    run_part(arg);
    return NULL;
}

/* dst = w0 dst + sum over replicas i >= 1 of w_i src_i, on whole blocks */
static void combine(float *dst, float *const *src, const double *w, size_t parts, size_t n)
{
    const float w0 = (float)w[0];
    for (size_t k = 0; k < n; k++) {
        float acc = w0 * dst[k];
        for (size_t i = 1; i < parts; i++) acc += (float)w[i] * src[i][k];
        dst[k] = acc;
    }
}

float dp_step(dp_group *g, const model_batch *bt)
{
    size_t T = g->n < bt->b ? g->n : bt->b;
    if (T <= 1) {
        g->r[0].part = *bt;
        run_part(&g->r[0]);
        return g->r[0].loss;
    }
    double w[64];
    float *gsrc[64], *bsrc[64];
    if (T > 64) T = 64;
    for (size_t i = 0; i < T; i++) {
        size_t b0 = bt->b * i / T, b1 = bt->b * (i + 1) / T;
        g->r[i].part = batch_slice(bt, b0, b1 - b0);
        w[i] = (double)(b1 - b0) / (double)bt->b;
    }
    int started[64] = {0};
    for (size_t i = 1; i < T; i++) started[i] = pthread_create(&g->r[i].th, NULL, worker, &g->r[i]) == 0;
    run_part(&g->r[0]);
    for (size_t i = 1; i < T; i++) {
        if (started[i]) pthread_join(g->r[i].th, NULL);
        else run_part(&g->r[i]); /* no thread to be had: do it here */
    }
    float loss = 0;
    for (size_t i = 0; i < T; i++) {
        loss += (float)w[i] * g->r[i].loss;
        gsrc[i] = model_grads(g->r[i].m)->block;
        bsrc[i] = model_buffers(g->r[i].m)->block;
    }
    combine(model_grads(g->r[0].m)->block, gsrc, w, T, model_grads(g->r[0].m)->total);
    combine(model_buffers(g->r[0].m)->block, bsrc, w, T, model_buffers(g->r[0].m)->total);
    return loss;
}
