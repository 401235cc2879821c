/*
 * trainer.c: see trainer.h.
 */
#include "train/trainer.h"

#include "storage/error_detail.h"
#include "train/data_parallel.h"
#include "train/regularize.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void train_config_default(train_config *c, model_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    sample_config_default(&c->samples);
    optim_config_default(&c->optim, OPTIM_ADAM);
    c->epochs = 1;
    c->lambda = 0.01f;
    c->seed = 1;
    c->threads = 1;
    c->recency = MODEL_RECENCY_DEFAULT;
    c->util_reg = -1.0f;
    c->alpha_aux = -1.0f;
}

void train_samples_for(sample_config *s, const model_spec *spec)
{
    s->dien_negatives = spec->kind == MODEL_DIEN ||
                        ((spec->kind == MODEL_SIM_HARD || spec->kind == MODEL_SIM_SOFT) &&
                         spec->short_branch == SIM_BRANCH_DIEN);
    switch (spec->kind) {
    case MODEL_AVGPOOL_DIN:
    case MODEL_SIM_SOFT: s->long_mode = LONG_FULL; break;
    case MODEL_SIM_HARD:
        s->long_mode = LONG_HARD;
        s->long_k = spec->topk;
        break;
    case MODEL_MIMN: s->long_mode = LONG_ALL; break;
    default: s->long_mode = LONG_NONE; break;
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* What a checkpoint says about how it was trained (metadata). */
typedef struct meta_kv {
    char key[32], val[48];
} meta_kv;

enum { N_META = 19 };

static void put(meta_kv *kv, size_t *n, const char *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    snprintf(kv[*n].key, sizeof kv[*n].key, "%s", k);
    vsnprintf(kv[*n].val, sizeof kv[*n].val, fmt, ap);
    va_end(ap);
    (*n)++;
}

static int add_optim(st_writer *w, void *ud)
{
    return optim_state_save((const optim *)ud, w);
}

/* The keys that fix the sample stream: a resumed run must have the same. */
static size_t stream_meta(const train_config *c, meta_kv *kv)
{
    size_t n = 0;
    const sample_config *s = &c->samples;
    put(kv, &n, "lsim.sample_seed", "%" PRIu64, s->seed);
    put(kv, &n, "lsim.test_from", "%" PRId64, s->test_from);
    if (s->train_from != INT64_MIN) put(kv, &n, "lsim.train_from", "%" PRId64, s->train_from);
    put(kv, &n, "lsim.negatives", "%u", s->negatives);
    put(kv, &n, "lsim.neg_sampling", "%s", s->neg == NEG_UNIFORM ? "uniform" : "popularity");
    put(kv, &n, "lsim.short_len", "%u", s->short_len);
    put(kv, &n, "lsim.long_max", "%u", s->long_max);
    put(kv, &n, "lsim.user_cap", "%u", s->user_cap);
    put(kv, &n, "lsim.batch", "%u", s->batch);
    if (s->long_before_short) put(kv, &n, "lsim.long_before_short", "1");
    return n;
}

static int save(model *m, const optim *o, const train_config *c, uint64_t step, char *err, size_t errlen)
{
    meta_kv kv[N_META];
    size_t n = stream_meta(c, kv);
    put(kv, &n, "lsim.train_step", "%" PRIu64, step);
    put(kv, &n, "lsim.train_seed", "%" PRIu64, c->seed);
    put(kv, &n, "lsim.epochs", "%u", c->epochs);
    put(kv, &n, "lsim.lambda", "%.9g", (double)c->lambda);
    put(kv, &n, "lsim.lr", "%.9g", c->optim.lr);
    put(kv, &n, "lsim.lr_decay", "%.9g", c->optim.decay);
    put(kv, &n, "lsim.embedding_update", "%s", c->dense_embeddings ? "dense" : "lazy");
    const char *extra[2 * N_META + 1];
    for (size_t i = 0; i < n; i++) {
        extra[2 * i] = kv[i].key;
        extra[2 * i + 1] = kv[i].val;
    }
    extra[2 * n] = NULL;
    return model_save_ex(m, c->out, extra, add_optim, (void *)o, err, errlen);
}

/* The rows of a batch that the regularizer sees: targets, then each
 * sample's valid history, long-term list, DIEN negatives and (MIMN) the last
 * `tail` behaviors of its whole history: the ones backward reaches (bptt);
 * MIMN's batches carry a short-term history it does not read: not listed. */
typedef struct id_lists {
    const uint32_t **ids;
    size_t *n, count;
} id_lists;

static void batch_lists(id_lists *l, const model_batch *bt, int item, size_t tail)
{
    l->count = 0;
    l->ids[l->count] = item ? bt->target_item : bt->target_cat;
    l->n[l->count++] = bt->b;
    for (size_t b = 0; b < bt->b; b++) {
        l->ids[l->count] = (item ? bt->hist_item : bt->hist_cat) + b * bt->s;
        l->n[l->count++] = bt->all_len ? 0 : bt->hist_len[b] < bt->s ? bt->hist_len[b] : bt->s; /* MIMN reads not */
        if (bt->long_len) {
            l->ids[l->count] = (item ? bt->long_item : bt->long_cat) + b * bt->k;
            l->n[l->count++] = bt->long_len[b] < bt->k ? bt->long_len[b] : bt->k;
        }
        if (bt->hist_neg_item) {
            l->ids[l->count] = (item ? bt->hist_neg_item : bt->hist_neg_cat) + b * bt->s;
            l->n[l->count++] = bt->hist_len[b] < bt->s ? bt->hist_len[b] : bt->s;
        }
        if (bt->all_len) {
            size_t n = bt->all_len[b], w = n < tail ? n : tail;
            l->ids[l->count] = (item ? bt->all_item : bt->all_cat) + bt->all_off[b] + n - w;
            l->n[l->count++] = w;
        }
    }
}

/* The resume checkpoint's step, after checking that it was written by a run
 * with the same sample stream (stream_meta). */
/* The distinct rows (ids past the vocabulary: the OOV row `vocab`) of the
 * lists, into out; mark (vocab + 1, zeroed) is left zeroed. */
static size_t collect_rows(const id_lists *l, uint32_t vocab, uint8_t *mark, uint32_t *out)
{
    size_t n = 0;
    for (size_t k = 0; k < l->count; k++)
        for (size_t i = 0; i < l->n[k]; i++) {
            uint32_t r = l->ids[k][i] < vocab ? l->ids[k][i] : vocab;
            if (!mark[r]) {
                mark[r] = 1;
                out[n++] = r;
            }
        }
    for (size_t i = 0; i < n; i++) mark[out[i]] = 0;
    return n;
}

static size_t tensor_index(const param_set *ps, const char *name)
{
    for (size_t t = 0; t < ps->n; t++)
        if (!strcmp(ps->specs[t].name, name)) return t;
    return ps->n;
}

static int resume_step(const st_file *f, const char *path, const train_config *c, uint64_t *step, char *err,
                       size_t errlen)
{
    int64_t st = 0;
    int rc = st_meta_i64(f, path, "lsim.train_step", 0, INT64_MAX, &st, err, errlen);
    if (rc == 0)
        rc = err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata lsim.train_step: missing (not a checkpoint written by "
                                                 "lsim train)", path);
    rc = rc < 0 ? rc : 0;
    *step = (uint64_t)st;
    meta_kv kv[N_META];
    size_t n = rc ? 0 : stream_meta(c, kv);
    for (size_t i = 0; i < n && !rc; i++) {
        const char *have = st_meta(f, kv[i].key);
        if (!have || strcmp(have, kv[i].val))
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata %s is %.40s, this run has %s: resuming replays the "
                         "sample stream, which needs the same", path, kv[i].key, have ? have : "absent", kv[i].val);
    }
    return rc;
}

/* The model the options ask for, for a vocabulary. */
static void spec_for(model_spec *spec, const train_config *c, uint32_t n_items, uint32_t n_cats)
{
    model_spec_default(spec, c->kind, n_items, n_cats);
    model_spec_time_info(spec, c->time_info, c->recency);
    if (c->gsu_sum) spec->gsu_softmax = 0;
    if (c->mem_slots) spec->mem_slots = c->mem_slots;
    if (c->d_ctrl) spec->d_ctrl = c->d_ctrl;
    if (c->miu_k) spec->miu_k = c->miu_k;
    if (c->bptt) spec->bptt = c->bptt;
    if (c->util_reg >= 0) spec->util_reg = c->util_reg;
    if (c->alpha_aux >= 0) spec->alpha_aux = c->alpha_aux;
}

int train_run(lsim_index *ix, const train_config *c, train_progress_fn fn, void *ud, train_progress *final,
              char *err, size_t errlen)
{
    sample_config sc = c->samples;
    sc.split = SAMPLES_TRAIN;
    model_spec spec;
    spec_for(&spec, c, 1, 1);
    train_samples_for(&sc, &spec);
    sample_source *src = NULL;
    model *m = NULL;
    optim o;
    memset(&o, 0, sizeof o);
    id_lists li = {0}, lc = {0}; /* the batch's item and category ids, for the sparse rows and the regularizer */
    mbar_table ti = {0}, tc = {0};
    uint32_t *cat_counts = NULL;
    dp_group *dp = NULL;
    uint32_t *rows_item = NULL, *rows_cat = NULL;
    sparse_rows sparse[2];
    int rc = sample_source_open(&src, ix, &sc, err, errlen);
    if (rc) return rc;
    size_t K = sample_config_long_width(&sc);
    uint64_t skip = 0;
    if (!sample_source_positives(src)) {
        sample_source_free(src);
        const char *window = sc.train_from != INT64_MIN ? " in the training window" : "";
        return err_set(err, errlen, LSIM_E_NOTFOUND,
                       "the index has no events before the split (test_from %" PRId64 ")%s: nothing to train on",
                       sc.test_from, window);
    }
    st_file *rf = NULL; /* the checkpoint resumed from: its step and sampling, then its optimizer state */
    if (c->resume) {
        if (!(rc = st_open(&rf, c->resume, err, errlen)) && !(rc = resume_step(rf, c->resume, c, &skip, err, errlen)) &&
            !(rc = model_load(&m, c->resume, sc.batch, sc.short_len, K, err, errlen)) &&
            model_get_spec(m)->kind != c->kind)
            rc = err_set(err, errlen, LSIM_E_FORMAT, "%s: a %s checkpoint; resuming needs a %s one", c->resume,
                         model_kind_name(model_get_spec(m)->kind), model_kind_name(c->kind));
    } else {
        spec.base.n_items = sample_source_items(src);
        spec.base.n_cats = sample_source_cats(src);
        spec_for(&spec, c, spec.base.n_items, spec.base.n_cats);
        if ((rc = model_new(&m, &spec, sc.batch, sc.short_len, K)))
            err_set(err, errlen, rc, "cannot build a %s model: %s", model_kind_name(c->kind), lsim_strerror(rc));
        else model_init(m, c->seed);
    }
    if (!rc && (rc = optim_init(&o, &c->optim, model_params(m))))
        err_set(err, errlen, rc, "out of memory (optimizer state)");
    if (!rc && rf) rc = optim_state_load(&o, rf, c->resume, err, errlen);
    st_close(rf);
    if (!rc && (rc = dp_new(&dp, m, c->threads ? c->threads : 1, sc.batch, sc.short_len, K)))
        err_set(err, errlen, rc, "cannot build %u model replicas: %s", c->threads, lsim_strerror(rc));
    const model_spec *ms = rc ? NULL : model_get_spec(m);
    size_t max_lists = 1 + 4 * (size_t)sc.batch, tail = ms && ms->kind == MODEL_MIMN ? ms->bptt : 0;
    if (!rc) {
        uint32_t ni = ms->base.n_items, nc = ms->base.n_cats;
        li.ids = malloc(max_lists * sizeof *li.ids);
        li.n = malloc(max_lists * sizeof *li.n);
        lc.ids = malloc(max_lists * sizeof *lc.ids);
        lc.n = malloc(max_lists * sizeof *lc.n);
        cat_counts = calloc((size_t)nc + 1, sizeof *cat_counts);
        ti.mark = calloc((size_t)ni + 1, 1);
        tc.mark = calloc((size_t)nc + 1, 1);
        size_t max_ids = (size_t)sc.batch * (1 + 2 * (size_t)sc.short_len + K + tail);
        rows_item = malloc((max_ids < ni + 1 ? max_ids : ni + 1) * sizeof *rows_item);
        rows_cat = malloc((max_ids < nc + 1 ? max_ids : nc + 1) * sizeof *rows_cat);
        if (!li.ids || !li.n || !lc.ids || !lc.n || !cat_counts || !ti.mark || !tc.mark || !rows_item || !rows_cat)
            rc = err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    }
    if (!rc) {
        /* counts over the index's vocabulary; a checkpoint's smaller vocabulary maps the rest to OOV */
        const uint32_t *ic = sample_source_item_counts(src), *icat = sample_source_item_cats(src);
        uint32_t ni = ms->base.n_items < sample_source_items(src) ? ms->base.n_items : sample_source_items(src);
        for (uint32_t i = 0; i < sample_source_items(src); i++)
            if (icat[i] < ms->base.n_cats) cat_counts[icat[i]] += ic[i];
        ti = (mbar_table){param_find(model_grads(m), "emb.item"), param_find(model_params(m), "emb.item"),
                          ms->base.d_item, ni, ic, ti.mark};
        tc = (mbar_table){param_find(model_grads(m), "emb.cat"), param_find(model_params(m), "emb.cat"),
                          ms->base.d_cat, ms->base.n_cats, cat_counts, tc.mark};
    }
    size_t t_item = rc ? 0 : tensor_index(model_params(m), "emb.item");
    size_t t_cat = rc ? 0 : tensor_index(model_params(m), "emb.cat");
    train_progress p = {0};
    p.total_samples = sample_source_positives(src) * (1 + (uint64_t)sc.negatives) * c->epochs;
    double t0 = now_s(), loss_acc = 0;
    uint64_t loss_n = 0, trained = 0; /* samples trained in this run (a resume replays the rest) */
    for (uint32_t ep = 0; !rc && ep < c->epochs && !(c->max_steps && p.step >= c->max_steps); ep++) {
        if (ep) sample_source_rewind(src);
        p.epoch = ep;
        for (;;) {
            if (c->max_steps && p.step >= c->max_steps) break;
            model_batch bt;
            if ((rc = sample_source_next(src, &bt, NULL, err, errlen)) || !bt.b) break;
            p.samples += bt.b;
            if (p.step < skip) { /* resuming: replay the stream up to the checkpoint */
                p.step++;
                continue;
            }
            batch_lists(&li, &bt, 1, tail);
            batch_lists(&lc, &bt, 0, tail);
            size_t ns = 0;
            if (!c->dense_embeddings) { /* the embedding rows this batch uses: the only ones updated */
                size_t nri = collect_rows(&li, ms->base.n_items, ti.mark, rows_item);
                size_t nrc = collect_rows(&lc, ms->base.n_cats, tc.mark, rows_cat);
                sparse[ns++] = (sparse_rows){t_item, rows_item, nri};
                sparse[ns++] = (sparse_rows){t_cat, rows_cat, nrc};
            }
            float loss = dp_step(dp, &bt, sparse, ns);
            trained += bt.b;
            if (c->lambda > 0) {
                mbar_add_lists(&ti, li.ids, li.n, li.count, c->lambda);
                mbar_add_lists(&tc, lc.ids, lc.n, lc.count, c->lambda);
            }
            optim_step_sparse(&o, model_params(m), model_grads(m), sparse, ns);
            dp_finish(dp, sparse, ns);
            p.step++;
            loss_acc = loss_n < 100 ? loss_acc + loss : loss_acc * 0.99 + loss;
            loss_n++;
            p.loss = loss_n < 100 ? loss_acc / (double)loss_n : loss_acc / 100.0;
            p.seconds = now_s() - t0;
            p.samples_per_s = p.seconds > 0 ? (double)trained / p.seconds : 0;
            if (fn) fn(&p, ud);
            if (c->every && p.step % c->every == 0 && (rc = save(m, &o, c, p.step, err, errlen))) break;
        }
    }
    if (!rc) rc = save(m, &o, c, p.step, err, errlen);
    if (final) *final = p;
    free(li.ids);
    free(li.n);
    free(lc.ids);
    free(lc.n);
    free(cat_counts);
    free(rows_item);
    free(rows_cat);
    free(ti.mark);
    free(tc.mark);
    optim_free(&o);
    dp_free(dp);
    model_free(m);
    sample_source_free(src);
    return rc;
}
