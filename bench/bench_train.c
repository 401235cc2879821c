/*
 * bench_train.c: training speed of one model on a fixed list of batches
 * drawn from an index, timed, and the same batches and initial weights
 * written out for the PyTorch side; the driver of bench/bench_train.py.
 *
 * usage: bench_train KIND INDEX OUT STEPS [BATCH=256] [ROUNDS=3] [time]
 *   KIND   din, avgpool-din, dien, dsin, sim-hard, sim-soft, bst ("time": SIM's time info); not mimn
 *   It draws STEPS training batches from INDEX exactly as `lsim train` does
 *   (train/samples.h, the split at the start of the last day), initializes
 *   the model (seed 1), and times STEPS steps of what `lsim train` does per
 *   step (training forward and backward split across T model replicas, one
 *   thread each, T = OPENBLAS_NUM_THREADS, as `lsim train --threads T` does
 *   (train/data_parallel.h); Adam with lr 1e-3 over every parameter, the
 *   embedding tables included, as torch.optim.Adam does: `lsim train
 *   --dense-embeddings`), ROUNDS times from
 *   the same initial state; the samples/s is the median. The mini-batch
 *   aware regularization is off (lambda 0) so that both sides compute the
 *   same thing. It writes OUT (safetensors): the initial parameters and
 *   buffers under the model's names (the checkpoint layout), the batches
 *   ("b<k>.target_item" ..., I32 ids, I64 times, F32 labels) and the loss of
 *   every step of the first round ("out.loss", F32 [STEPS]); and prints one
 *   JSON object on stdout.
 *   Threads: T replicas, each calling OpenBLAS single-threaded.
 */
#include "bench/bench_timing.h"
#include "esu/model.h"
#include "index/index_internal.h"
#include "lsim.h"
#include "train/data_parallel.h"
#include "train/optim.h"
#include "train/samples.h"
#include "train/trainer.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stored {
    size_t b, s, k;
    uint32_t *target_item, *target_cat, *hist_item, *hist_cat, *hist_len, *neg_item, *neg_cat, *long_item, *long_cat,
        *long_len;
    int64_t *hist_ts, *long_ts, *now;
    float *label;
} stored;

static void *dup(const void *p, size_t bytes)
{
    void *q = malloc(bytes ? bytes : 1);
    if (!q) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (p) memcpy(q, p, bytes);
    else memset(q, 0, bytes);
    return q;
}

static void keep(stored *d, const model_batch *bt)
{
    size_t B = bt->b, S = bt->s, K = bt->k;
    d->b = B, d->s = S, d->k = K;
    d->target_item = dup(bt->target_item, B * 4);
    d->target_cat = dup(bt->target_cat, B * 4);
    d->hist_item = dup(bt->hist_item, B * S * 4);
    d->hist_cat = dup(bt->hist_cat, B * S * 4);
    d->hist_len = dup(bt->hist_len, B * 4);
    d->hist_ts = dup(bt->hist_ts, B * S * 8);
    d->neg_item = bt->hist_neg_item ? dup(bt->hist_neg_item, B * S * 4) : NULL;
    d->neg_cat = bt->hist_neg_cat ? dup(bt->hist_neg_cat, B * S * 4) : NULL;
    d->long_item = K ? dup(bt->long_item, B * K * 4) : NULL;
    d->long_cat = K ? dup(bt->long_cat, B * K * 4) : NULL;
    d->long_ts = K ? dup(bt->long_ts, B * K * 8) : NULL;
    d->long_len = K ? dup(bt->long_len, B * 4) : NULL;
    d->now = dup(bt->now, B * 8);
    d->label = dup(bt->label, B * 4);
}

static model_batch view(const stored *d)
{
    model_batch bt = {0};
    bt.b = d->b, bt.s = d->s, bt.k = d->k;
    bt.target_item = d->target_item, bt.target_cat = d->target_cat;
    bt.hist_item = d->hist_item, bt.hist_cat = d->hist_cat, bt.hist_len = d->hist_len, bt.hist_ts = d->hist_ts;
    bt.hist_neg_item = d->neg_item, bt.hist_neg_cat = d->neg_cat;
    bt.long_item = d->long_item, bt.long_cat = d->long_cat, bt.long_ts = d->long_ts, bt.long_len = d->long_len;
    bt.now = d->now, bt.label = d->label;
    return bt;
}

typedef struct file_ctx {
    const stored *st;
    size_t steps;
    const float *loss;
} file_ctx;

static int add_u32(st_writer *w, const char *name, const uint32_t *v, size_t n0, size_t n1)
{
    uint64_t sh[2] = {n0, n1};
    return st_writer_add(w, name, ST_I32, n1 ? 2 : 1, sh, v);
}

static int add_batches(st_writer *w, void *ud)
{
    const file_ctx *c = ud;
    int rc = 0;
    char name[64];
    for (size_t k = 0; k < c->steps && !rc; k++) {
        const stored *d = &c->st[k];
        uint64_t sh2[2] = {d->b, d->s}, shk[2] = {d->b, d->k}, sh1[1] = {d->b};
#define NAME(x) (snprintf(name, sizeof name, "b%zu.%s", k, x), name)
        rc = rc || add_u32(w, NAME("target_item"), d->target_item, d->b, 0);
        rc = rc || add_u32(w, NAME("target_cat"), d->target_cat, d->b, 0);
        rc = rc || add_u32(w, NAME("hist_item"), d->hist_item, d->b, d->s);
        rc = rc || add_u32(w, NAME("hist_cat"), d->hist_cat, d->b, d->s);
        rc = rc || add_u32(w, NAME("hist_len"), d->hist_len, d->b, 0);
        rc = rc || st_writer_add(w, NAME("hist_ts"), ST_I64, 2, sh2, d->hist_ts);
        if (d->neg_item) {
            rc = rc || add_u32(w, NAME("hist_neg_item"), d->neg_item, d->b, d->s);
            rc = rc || add_u32(w, NAME("hist_neg_cat"), d->neg_cat, d->b, d->s);
        }
        if (d->k) {
            rc = rc || add_u32(w, NAME("long_item"), d->long_item, d->b, d->k);
            rc = rc || add_u32(w, NAME("long_cat"), d->long_cat, d->b, d->k);
            rc = rc || st_writer_add(w, NAME("long_ts"), ST_I64, 2, shk, d->long_ts);
            rc = rc || add_u32(w, NAME("long_len"), d->long_len, d->b, 0);
        }
        rc = rc || st_writer_add(w, NAME("now"), ST_I64, 1, sh1, d->now);
        rc = rc || st_writer_add(w, NAME("label"), ST_F32, 1, sh1, d->label);
#undef NAME
    }
    uint64_t sl[1] = {c->steps};
    return rc ? rc : st_writer_add(w, "out.loss", ST_F32, 1, sl, c->loss);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s KIND INDEX OUT STEPS [BATCH=256] [ROUNDS=3] [time]\n", argv[0]);
        return 2;
    }
    model_kind kind;
    if (model_kind_parse(argv[1], &kind)) {
        fprintf(stderr, "unknown kind %s\n", argv[1]);
        return 2;
    }
    if (kind == MODEL_MIMN) { /* its batches carry whole histories (model_batch.all_*), which this driver keeps not */
        fprintf(stderr, "bench_train: mimn is not supported (`lsim train --json` reports its samples/s)\n");
        return 2;
    }
    size_t steps = strtoul(argv[4], NULL, 10), rounds = argc > 6 ? strtoul(argv[6], NULL, 10) : 3;
    uint32_t batch = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 256;
    int time_info = argc > 7 && !strcmp(argv[7], "time");
    if (!steps || !rounds || !batch) return 2;
    char err[LSIM_ERRLEN];
    lsim_index *ix;
    if (lsim_index_open(&ix, argv[2], err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    lsim_index_reader *rd;
    int64_t first, last;
    if (lsim_index_reader_new(ix, &rd) || index_time_range(rd, &first, &last) || last == INT64_MIN) {
        fprintf(stderr, "%s: cannot read the time range\n", argv[2]);
        return 1;
    }
    lsim_index_reader_free(rd);
    train_config tc;
    train_config_default(&tc, kind);
    tc.samples.batch = batch;
    tc.samples.test_from = last / 86400 * 86400;
    model_spec spec;
    model_spec_default(&spec, kind, 1, 1);
    model_spec_time_info(&spec, time_info, MODEL_RECENCY_ALL);
    train_samples_for(&tc.samples, &spec);
    sample_source *src;
    if (sample_source_open(&src, ix, &tc.samples, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    model_spec_default(&spec, kind, sample_source_items(src), sample_source_cats(src));
    model_spec_time_info(&spec, time_info, MODEL_RECENCY_ALL);
    stored *st = calloc(steps, sizeof *st);
    size_t got = 0, samples = 0;
    while (got < steps) {
        model_batch bt;
        if (sample_source_next(src, &bt, NULL, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (!bt.b) break;
        if (bt.b < batch) continue; /* a short last batch: keep the shapes equal */
        keep(&st[got++], &bt);
        samples += bt.b;
    }
    if (got < steps) {
        fprintf(stderr, "only %zu full batches in the index\n", got);
        return 1;
    }
    size_t K = sample_config_long_width(&tc.samples);
    model *m;
    if (model_new(&m, &spec, batch, tc.samples.short_len, K)) {
        fprintf(stderr, "cannot build the model\n");
        return 1;
    }
    param_set init_p, init_b;
    param_set_init(&init_p, model_params(m)->specs, model_params(m)->n);
    param_set_init(&init_b, model_buffers(m)->specs, model_buffers(m)->n);
    model_init(m, 1);
    memcpy(init_p.block, model_params(m)->block, init_p.total * sizeof(float));
    memcpy(init_b.block, model_buffers(m)->block, init_b.total * sizeof(float));
    const char *tenv = getenv("OPENBLAS_NUM_THREADS");
    size_t T = tenv && atoi(tenv) > 0 ? (size_t)atoi(tenv) : 1;
    openblas_set_num_threads(1);
    dp_group *dp;
    if (dp_new(&dp, m, T, batch, tc.samples.short_len, K)) {
        fprintf(stderr, "cannot build the replicas\n");
        return 1;
    }
    float *loss = calloc(steps, sizeof *loss);
    double *sps = calloc(rounds, sizeof *sps);
    for (size_t r = 0; r < rounds; r++) {
        memcpy(model_params(m)->block, init_p.block, init_p.total * sizeof(float));
        memcpy(model_buffers(m)->block, init_b.block, init_b.total * sizeof(float));
        dp_sync(dp);
        optim o;
        optim_config oc;
        optim_config_default(&oc, OPTIM_ADAM);
        optim_init(&o, &oc, model_params(m));
        double t0 = now_s();
        for (size_t k = 0; k < steps; k++) {
            model_batch bt = view(&st[k]);
            float l = dp_step(dp, &bt, NULL, 0); /* dense, as torch.optim.Adam */
            optim_step(&o, model_params(m), model_grads(m));
            dp_sync(dp);
            if (r == 0) loss[k] = l;
        }
        sps[r] = (double)samples / (now_s() - t0);
        optim_free(&o);
    }
    /* the file: initial weights, batches, losses */
    memcpy(model_params(m)->block, init_p.block, init_p.total * sizeof(float));
    memcpy(model_buffers(m)->block, init_b.block, init_b.total * sizeof(float));
    file_ctx fc = {st, steps, loss};
    if (model_save_ex(m, argv[3], NULL, add_batches, &fc, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("{\"kind\": \"%s\", \"time_info\": %d, \"steps\": %zu, \"batch\": %u, \"samples\": %zu, "
           "\"threads\": %zu, \"samples_per_s\": %.1f, \"first_loss\": %.6f, \"last_loss\": %.6f}\n",
           argv[1], time_info, steps, batch, samples, T, median(sps, rounds), loss[0],
           loss[steps - 1]);
    return 0;
}
