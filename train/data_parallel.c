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
    const sparse_rows *rows; /* this step's sparse tensors and rows (NULL, 0: dense) */
    size_t nrows;
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
    s.long_group = NULL; /* group ids are the whole batch's */
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
    if (bt->all_off) s.all_off = bt->all_off + b0; /* all_item / all_cat: flat, offsets absolute */
    if (bt->all_len) s.all_len = bt->all_len + b0;
    /* mimn_state: serving only, never split (a shared state would need no slicing) */
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

static const sparse_rows *sparse_of(size_t t, const sparse_rows *rows, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (rows[j].tensor == t) return &rows[j];
    return NULL;
}

/* Calls fn(offset, count) for every range of a param_set's block that a step
 * covers: whole tensors, and only the listed rows of the sparse ones. */
typedef void (*range_fn)(void *ud, size_t off, size_t n);

static void for_ranges(const param_set *ps, const sparse_rows *rows, size_t nrows, range_fn fn, void *ud)
{
    for (size_t t = 0; t < ps->n; t++) {
        size_t i0 = (size_t)(ps->ptr[t] - ps->block);
        const sparse_rows *sr = sparse_of(t, rows, nrows);
        if (!sr) {
            fn(ud, i0, ps->numel[t]);
            continue;
        }
        size_t w = ps->specs[t].shape[1];
        for (size_t j = 0; j < sr->n; j++) fn(ud, i0 + (size_t)sr->rows[j] * w, w);
    }
}

typedef struct copy_ctx {
    float *dst;
    const float *src;
} copy_ctx;

static void copy_range(void *ud, size_t off, size_t n)
{
    copy_ctx *c = ud;
    memcpy(c->dst + off, c->src + off, n * sizeof(float));
}

void dp_finish(dp_group *g, const sparse_rows *rows, size_t nrows)
{
    const param_set *p = model_params(g->r[0].m), *b = model_buffers(g->r[0].m);
    for (size_t i = 1; i < g->n; i++) {
        copy_ctx c = {model_params(g->r[i].m)->block, p->block};
        for_ranges(p, rows, nrows, copy_range, &c);
        memcpy(model_buffers(g->r[i].m)->block, b->block, b->total * sizeof(float));
    }
    /* the sparse tensors' gradients are zero between steps: clear the rows used */
    for (size_t i = 0; i < g->n && nrows; i++) {
        param_set *gr = model_grads(g->r[i].m);
        for (size_t j = 0; j < nrows; j++) {
            size_t t = rows[j].tensor, w = gr->specs[t].shape[1];
            float *base = gr->ptr[t];
            for (size_t k = 0; k < rows[j].n; k++) memset(base + (size_t)rows[j].rows[k] * w, 0, w * sizeof(float));
        }
    }
}

void dp_sync(dp_group *g)
{
    dp_finish(g, NULL, 0);
}

/* Gradients to zero before a part's backward: all of them in dense mode; in
 * sparse mode the dense tensors only (the sparse ones are zero already). */
static void zero_grads(replica *r)
{
    param_set *gr = model_grads(r->m);
    if (!r->nrows) {
        param_set_zero(gr);
        return;
    }
    for (size_t t = 0; t < gr->n; t++)
        if (!sparse_of(t, r->rows, r->nrows)) memset(gr->ptr[t], 0, gr->numel[t] * sizeof(float));
}

static void run_part(replica *r)
{
    zero_grads(r);
    r->loss = r->part.b ? model_forward(r->m, &r->part, r->logits, 1) : 0.0f;
    if (r->part.b) model_backward(r->m, &r->part);
}

static void *worker(void *arg)
{
    run_part(arg);
    return NULL;
}

typedef struct combine_ctx {
    float *dst;
    float *const *src;
    const double *w;
    size_t parts;
} combine_ctx;

/* dst = w0 dst + sum over replicas i >= 1 of w_i src_i on [off, off + n) */
static void combine_range(void *ud, size_t off, size_t n)
{
    const combine_ctx *c = ud;
    const float w0 = (float)c->w[0];
    for (size_t k = off; k < off + n; k++) {
        float acc = w0 * c->dst[k];
        for (size_t i = 1; i < c->parts; i++) acc += (float)c->w[i] * c->src[i][k];
        c->dst[k] = acc;
    }
}

float dp_step(dp_group *g, const model_batch *bt, const sparse_rows *rows, size_t nrows)
{
    size_t T = g->n < bt->b ? g->n : bt->b;
    for (size_t i = 0; i < g->n; i++) {
        g->r[i].rows = rows;
        g->r[i].nrows = nrows;
    }
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
    combine_ctx cg = {model_grads(g->r[0].m)->block, gsrc, w, T};
    for_ranges(model_grads(g->r[0].m), rows, nrows, combine_range, &cg);
    combine_ctx cb = {model_buffers(g->r[0].m)->block, bsrc, w, T};
    combine_range(&cb, 0, model_buffers(g->r[0].m)->total);
    return loss;
}
