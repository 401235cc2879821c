/*
 * test_train.c: training and evaluation end to end on a small generated log
 * (train/trainer.c, train/evaluate.c, train/regularize.c).
 *
 *   - every model kind trains (finite loss), writes a checkpoint that loads,
 *     and evaluates;
 *   - a resumed run (stopped at step E, resumed from its checkpoint) ends
 *     with exactly the weights of an uninterrupted run;
 *   - DIN learns: its test AUC beats 0.75 where a constant score gives 0.5,
 *     and the same seed gives the same weights;
 *   - the mini-batch aware regularizer against a hand-worked case;
 *   - bad checkpoints for eval and resume give errors naming the file.
 */
#include "esu/model.h"
#include "index/index_write.h"
#include "loaders/gen_log.h"
#include "loaders/gen_truth_file.h"
#include "lsim.h"
#include "storage/error_detail.h"
#include "tests/test_util.h"
#include "train/data_parallel.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/regularize.h"
#include "train/trainer.h"
#include "train/truth.h"

#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_dir, g_idx[512];
static lsim_index *g_ix;
static const int64_t END_TS = 1512345600;

static void setup(void)
{
    openblas_set_num_threads(1);
    g_dir = tu_tmpdir("train");
    char log[512], err[512];
    snprintf(log, sizeof log, "%s/log.csv", g_dir);
    snprintf(g_idx, sizeof g_idx, "%s/idx", g_dir);
    gen_log_params p;
    gen_log_params_default(&p);
    p.users = 150;
    p.min_len = 40;
    p.max_len = 600;
    p.days = 20;
    cr_assert_eq(tu_gen_index(&p, log, g_idx, err, sizeof err), 0, "%s", err);
    char truth[600];
    snprintf(truth, sizeof truth, "%s/truth.txt", g_dir);
    cr_assert_eq(gen_truth_file_write(truth, &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_index_open(&g_ix, g_idx, err, sizeof err), 0, "open: %s", err);
}

static void teardown(void)
{
    lsim_index_close(g_ix);
    tu_rmrf(g_dir);
}

static void config(train_config *c, model_kind kind, const char *out)
{
    train_config_default(c, kind);
    c->samples.test_from = END_TS - 3 * 86400;
    c->samples.batch = 64;
    c->samples.user_cap = 30;
    c->samples.short_len = 20;
    c->samples.long_max = 200;
    c->out = out;
}

static char *path(const char *name)
{
    static char buf[4][600];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

static metrics evaluate(const char *ckpt, const model_spec **spec_out)
{
    char err[LSIM_ERRLEN];
    model *m;
    sample_config sc;
    sample_config_default(&sc);
    sc.batch = 64;
    model_spec spec;
    st_file *f;
    cr_assert_eq(st_open(&f, ckpt, err, sizeof err), 0, "%s", err);
    cr_assert_eq(model_spec_from_file(&spec, f, ckpt, err, sizeof err), 0, "%s", err);
    st_close(f);
    cr_assert_eq(eval_samples_from_checkpoint(&sc, ckpt, &spec, err, sizeof err), 0, "%s", err);
    size_t K = sample_config_long_width(&sc);
    cr_assert_eq(model_load(&m, ckpt, sc.batch, sc.short_len, K, err, sizeof err), 0, "%s", err);
    metric_row *rows;
    size_t n;
    cr_assert_eq(eval_score(g_ix, m, &sc, NULL, &rows, NULL, &n, err, sizeof err), 0, "%s", err);
    cr_assert(n > 100, "%zu test samples", n);
    for (size_t i = 0; i < n; i++) cr_assert(isfinite(rows[i].logit), "sample %zu: logit %g", i, rows[i].logit);
    metrics mt;
    metrics_compute(rows, n, &mt);
    free(rows);
    model_free(m);
    (void)spec_out;
    return mt;
}

TestSuite(train, .init = setup, .fini = teardown);

Test(train, every_kind_trains_saves_loads_and_evaluates)
{
    static const struct { model_kind k; int time; } kinds[] = {
        {MODEL_DIN, 0}, {MODEL_AVGPOOL_DIN, 0}, {MODEL_DIEN, 0}, {MODEL_DSIN, 0}, {MODEL_SIM_HARD, 1},
        {MODEL_SIM_SOFT, 1}, {MODEL_SIM_SOFT, 0}, {MODEL_BST, 0}, {MODEL_MIMN, 0}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        train_config c;
        config(&c, kinds[i].k, path("kind.st"));
        c.time_info = kinds[i].time;
        c.max_steps = 6;
        char err[LSIM_ERRLEN];
        train_progress fin;
        cr_assert_eq(train_run(g_ix, &c, NULL, NULL, &fin, err, sizeof err), 0, "%s: %s", model_kind_name(kinds[i].k),
                     err);
        cr_expect_eq(fin.step, 6u);
        cr_expect(isfinite(fin.loss) && fin.loss > 0, "%s: loss %g", model_kind_name(kinds[i].k), fin.loss);
        metrics mt = evaluate(c.out, NULL);
        cr_expect(mt.auc > 0 && mt.auc < 1, "%s: auc %g", model_kind_name(kinds[i].k), mt.auc);
    }
}

static void load_params(const char *ckpt, param_set **ps, model **m)
{
    char err[LSIM_ERRLEN];
    cr_assert_eq(model_load(m, ckpt, 64, 20, 0, err, sizeof err), 0, "%s", err);
    *ps = model_params(*m);
}

Test(train, a_resumed_run_equals_an_uninterrupted_one)
{
    char err[LSIM_ERRLEN];
    train_config c;
    config(&c, MODEL_DIN, path("full.st"));
    c.epochs = 2;
    c.optim.decay = 0.01;
    train_progress full, part, res;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, &full, err, sizeof err), 0, "%s", err);
    cr_assert(full.step > 40, "%llu steps", (unsigned long long)full.step);
    c.out = path("part.st");
    c.max_steps = full.step / 2 + 3; /* inside the second epoch */
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, &part, err, sizeof err), 0, "%s", err);
    cr_assert_eq(part.step, c.max_steps);
    c.out = path("resumed.st");
    c.resume = path("part.st");
    c.max_steps = 0;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.step, full.step);
    param_set *a, *b;
    model *ma, *mb;
    load_params(path("full.st"), &a, &ma);
    load_params(path("resumed.st"), &b, &mb);
    cr_assert_eq(a->total, b->total);
    cr_expect_eq(memcmp(a->block, b->block, a->total * sizeof(float)), 0, "resumed weights differ");
    cr_expect_eq(memcmp(model_buffers(ma)->block, model_buffers(mb)->block, model_buffers(ma)->total * sizeof(float)),
                 0, "resumed Dice statistics differ");
    model_free(ma);
    model_free(mb);
    /* resuming with another sample stream is refused, naming the file and the key */
    train_config e;
    config(&e, MODEL_DIN, path("y.st"));
    e.samples.batch = 32;
    e.resume = path("part.st");
    cr_expect_eq(train_run(g_ix, &e, NULL, NULL, NULL, err, sizeof err), LSIM_E_FORMAT);
    cr_expect(strstr(err, "part.st") && strstr(err, "lsim.batch"), "message: %s", err);
    /* nothing before the split, nothing after it: errors, not empty results */
    config(&e, MODEL_DIN, path("z.st"));
    e.samples.test_from = 1000;
    cr_expect_eq(train_run(g_ix, &e, NULL, NULL, NULL, err, sizeof err), LSIM_E_NOTFOUND);
    cr_expect(strstr(err, "nothing to train on") != NULL, "message: %s", err);
    /* resuming with another kind is refused, naming the file */
    train_config d;
    config(&d, MODEL_DIEN, path("x.st"));
    d.resume = path("part.st");
    cr_expect_eq(train_run(g_ix, &d, NULL, NULL, NULL, err, sizeof err), LSIM_E_FORMAT);
    cr_expect(strstr(err, "part.st") != NULL, "message: %s", err);
}

Test(train, din_learns_and_is_deterministic)
{
    char err[LSIM_ERRLEN];
    train_config c;
    config(&c, MODEL_DIN, path("din1.st"));
    c.epochs = 3;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    metrics mt = evaluate(c.out, NULL);
    cr_expect(mt.auc > 0.75, "DIN test AUC %.4f", mt.auc);
    cr_expect(mt.gauc > 0.6, "DIN test GAUC %.4f", mt.gauc);
    cr_expect(mt.logloss < log(2.0), "DIN test logloss %.4f (a constant 0.5 gives %.4f)", mt.logloss, log(2.0));
    c.out = path("din2.st");
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    param_set *a, *b;
    model *ma, *mb;
    load_params(path("din1.st"), &a, &ma);
    load_params(path("din2.st"), &b, &mb);
    cr_expect_eq(memcmp(a->block, b->block, a->total * sizeof(float)), 0, "the same seed gave other weights");
    model_free(ma);
    model_free(mb);
    /* every embedding row every step, as torch.optim.Adam: learns too */
    c.out = path("din3.st");
    c.dense_embeddings = 1;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    metrics md = evaluate(c.out, NULL);
    cr_expect(md.auc > 0.75, "DIN, dense embedding updates: test AUC %.4f", md.auc);
}

Test(train, eval_with_no_test_samples_is_an_error)
{
    char err[LSIM_ERRLEN];
    sample_config sc;
    sample_config_default(&sc);
    sc.test_from = END_TS + 86400;
    sc.split = SAMPLES_TEST;
    model *m;
    model_spec spec;
    model_spec_default(&spec, MODEL_DIN, 10, 10);
    cr_assert_eq(model_new(&m, &spec, sc.batch, sc.short_len, 0), 0);
    metric_row *rows;
    size_t n;
    cr_expect_eq(eval_score(g_ix, m, &sc, NULL, &rows, NULL, &n, err, sizeof err), LSIM_E_NOTFOUND);
    cr_expect(strstr(err, "nothing to evaluate") != NULL, "message: %s", err);
    model_free(m);
}

Test(train, eval_refuses_what_is_not_a_training_checkpoint)
{
    char err[LSIM_ERRLEN], *bad = path("bad.st");
    cr_assert_eq(tu_write_file(bad, "not a checkpoint", 16), 0);
    sample_config sc;
    sample_config_default(&sc);
    model_spec spec;
    model_spec_default(&spec, MODEL_DIN, 10, 10);
    int rc = eval_samples_from_checkpoint(&sc, bad, &spec, err, sizeof err);
    cr_expect(rc < 0 && strstr(err, "bad.st"), "rc %d: %s", rc, err);
}

Test(regularize, hand_worked)
{
    /* a table of 3 items + OOV, dim 2; counts 4, 1, 0 */
    float table[8] = {1, 2, 3, 4, 5, 6, 7, 8}, grad[8] = {0};
    uint32_t counts[3] = {4, 1, 0};
    uint8_t mark[4] = {0};
    mbar_table t = {grad, table, 2, 3, counts, mark};
    uint32_t a[4] = {0, 0, 2, 9}, b[2] = {9, 0}; /* 9: out of vocabulary */
    const uint32_t *lists[2] = {a, b};
    size_t n[2] = {4, 2};
    mbar_add_lists(&t, lists, n, 2, 0.5f);
    /* row 0: 0.5 / 4 * (1, 2); row 1 untouched; row 2: count 0 -> 1: 0.5 * (5, 6); OOV: 0.5 * (7, 8) */
    float want[8] = {0.125f, 0.25f, 0, 0, 2.5f, 3.0f, 3.5f, 4.0f};
    for (int i = 0; i < 8; i++)
        cr_expect_float_eq(grad[i], want[i], 1e-7, "grad[%d] = %g, want %g", i, grad[i], want[i]);
    for (int i = 0; i < 4; i++) cr_expect_eq(mark[i], 0, "mark %d left set", i);
}

/* The truth's AUC is the best any model reaches on the same samples: above
 * the trained DIN's, and high (the generator's within-session structure
 * makes most negatives impossible). Its rows are the same samples, labels
 * included. */
Test(train, the_truth_bounds_a_trained_model)
{
    char err[LSIM_ERRLEN];
    train_config c;
    config(&c, MODEL_DIN, path("dint.st"));
    c.epochs = 2;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    truth_ctx *t;
    cr_assert_eq(truth_open(&t, g_ix, path("truth.txt"), err, sizeof err), 0, "%s", err);
    sample_config sc;
    sample_config_default(&sc);
    sc.batch = 64;
    model_spec spec;
    model_spec_default(&spec, MODEL_DIN, 1, 1);
    cr_assert_eq(eval_samples_from_checkpoint(&sc, c.out, &spec, err, sizeof err), 0, "%s", err);
    model *m;
    cr_assert_eq(model_load(&m, c.out, sc.batch, sc.short_len, 0, err, sizeof err), 0, "%s", err);
    metric_row *rows, *trows;
    size_t n;
    cr_assert_eq(eval_score(g_ix, m, &sc, t, &rows, &trows, &n, err, sizeof err), 0, "%s", err);
    for (size_t i = 0; i < n; i++) {
        cr_assert(rows[i].user == trows[i].user && rows[i].label == trows[i].label, "row %zu differs", i);
        cr_assert(trows[i].score >= 0 && trows[i].score <= 1, "row %zu: truth %g", i, trows[i].score);
    }
    metrics mm, tm;
    metrics_compute(rows, n, &mm);
    metrics_compute(trows, n, &tm);
    cr_expect(tm.auc > mm.auc && tm.auc > 0.9, "truth AUC %.4f, DIN %.4f", tm.auc, mm.auc);
    cr_expect(tm.logloss < mm.logloss, "truth logloss %.4f, DIN %.4f", tm.logloss, mm.logloss);
    free(rows);
    free(trows);
    model_free(m);
    truth_free(t);
}

Test(truth_file, round_trip_and_errors)
{
    char *dir = tu_tmpdir("truth"), f[600], err[LSIM_ERRLEN];
    snprintf(f, sizeof f, "%s/t.txt", dir);
    gen_log_params p, q;
    gen_log_params_default(&p);
    p.seed = 77;
    p.users = 321;
    p.len_alpha = 1.37;
    p.theme_size = 3;
    p.theme_conc = 0.1;
    p.cat_conc = 7.25;
    p.item_conc = 1.0 / 3.0;
    p.sess_stay = 0.6;
    p.sess_mean = 4.5;
    p.carry = 0.3;
    p.carry_days = 2.5;
    cr_assert_eq(gen_truth_file_write(f, &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gen_truth_file_read(f, &q, err, sizeof err), 0, "%s", err);
    gen_log_derive(&p);
    cr_expect(q.seed == 77 && q.users == 321 && q.len_alpha == 1.37 && q.items == p.items &&
              q.categories == p.categories && q.end_ts == p.end_ts && q.days == p.days);
    cr_expect(q.theme_size == 3 && q.theme_conc == 0.1 && q.cat_conc == 7.25 && q.item_conc == 1.0 / 3.0 &&
              q.sess_stay == 0.6 && q.sess_mean == 4.5 && q.carry == 0.3 && q.carry_days == 2.5);
    static const struct { const char *text, *want; } bad[] = {
        {"format=lsim-gen-truth-3\nseed=1\n", "no users="},
        {"format=other\n", "format 'other'"},
        {"format=lsim-gen-truth-1\n", "want lsim-gen-truth-3"}, /* the model before the urns */
        {"format=lsim-gen-truth-2\n", "want lsim-gen-truth-3"}, /* urns that counted events, not runs */
        {"format=lsim-gen-truth-3\nseed=1\nseed=2\n", ":3: seed given twice"},
        {"format=lsim-gen-truth-3\nusers=-4\n", ":2: users: want an integer"},
        {"format=lsim-gen-truth-3\ncolour=blue\n", ":2: unknown key 'colour'"},
        {"format=lsim-gen-truth-3\nsess_stay=x\n", ":2: sess_stay: not a number"},
        {"just text\n", ":1: want key=value"},
        {"format=lsim-gen-truth-3\nseed=1\nusers=0\nitems=0\ncategories=0\nmin_len=1\nmax_len=5\nalpha=1\n"
         "days=1\nend_ts=100000\ntheme_size=1\ntheme_conc=5\ncat_conc=2\nitem_conc=20\nsess_stay=1\n"
         "sess_mean=6\ncarry=0.3\ncarry_days=1\n", "users"},
        {"format=lsim-gen-truth-3\nseed=1\nusers=3\nitems=0\ncategories=0\nmin_len=1\nmax_len=5\nalpha=1\n"
         "days=1\nend_ts=100000\ntheme_size=1\ntheme_conc=5\ncat_conc=2\nitem_conc=20\nsess_stay=1.5\n"
         "sess_mean=6\ncarry=0.3\ncarry_days=1\n", "sess_stay"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(tu_write_file(f, bad[i].text, strlen(bad[i].text)), 0);
        int rc = gen_truth_file_read(f, &q, err, sizeof err);
        cr_expect(rc == LSIM_E_FORMAT && strstr(err, f) && strstr(err, bad[i].want), "case %zu: rc %d: %s", i, rc,
                  err);
    }
    tu_rmrf(dir);
}

/* Data-parallel steps: the batch split in two replicas (threads) gives the
 * gradients, loss and Dice statistics of the two halves run one after the
 * other on the primary from the same state, combined half and half. The
 * halves here are copied out by hand (not batch_slice). Then a 2-thread
 * training run learns and is deterministic. */
static uint32_t *copy_u32(const uint32_t *p, size_t n)
{
    uint32_t *q = malloc(n * sizeof *q + 4);
    memcpy(q, p, n * sizeof *q);
    return q;
}

static int64_t *copy_i64(const int64_t *p, size_t n)
{
    int64_t *q = malloc(n * sizeof *q + 8);
    memcpy(q, p, n * sizeof *q);
    return q;
}

Test(train, data_parallel_equals_the_halves_run_in_turn)
{
    char err[LSIM_ERRLEN];
    sample_config sc;
    sample_config_default(&sc);
    sc.batch = 64;
    sc.short_len = 20;
    sc.test_from = END_TS - 3 * 86400;
    sc.long_mode = LONG_HARD;
    sample_source *src;
    cr_assert_eq(sample_source_open(&src, g_ix, &sc, err, sizeof err), 0, "%s", err);
    model_batch bt;
    cr_assert_eq(sample_source_next(src, &bt, NULL, err, sizeof err), 0);
    cr_assert_eq(bt.b, 64u);
    model_spec spec;
    model_spec_default(&spec, MODEL_SIM_HARD, sample_source_items(src), sample_source_cats(src));
    model *a, *ref;
    cr_assert_eq(model_new(&a, &spec, 64, 20, sc.long_k), 0);
    cr_assert_eq(model_new(&ref, &spec, 64, 20, sc.long_k), 0);
    model_init(a, 5);
    model_init(ref, 5);
    dp_group *dp;
    cr_assert_eq(dp_new(&dp, a, 2, 64, 20, sc.long_k), 0);
    float loss = dp_step(dp, &bt, NULL, 0);
    /* by hand: half 0 then half 1 on ref, grads and buffers saved after each */
    const param_set *g = model_grads(ref), *bu = model_buffers(ref);
    float *gsum = calloc(g->total, sizeof *gsum), *bsum = calloc(bu->total, sizeof *bsum);
    float *b0 = malloc(bu->total * sizeof *b0), lsum = 0, logits[64];
    memcpy(b0, bu->block, bu->total * sizeof *b0);
    for (size_t h = 0; h < 2; h++) {
        size_t o = 32 * h, S = bt.s, K = bt.k;
        model_batch x = bt;
        x.b = 32;
        uint32_t *ti = copy_u32(bt.target_item + o, 32), *tc = copy_u32(bt.target_cat + o, 32),
                 *hi = copy_u32(bt.hist_item + o * S, 32 * S), *hc = copy_u32(bt.hist_cat + o * S, 32 * S),
                 *hl = copy_u32(bt.hist_len + o, 32), *li = copy_u32(bt.long_item + o * K, 32 * K),
                 *lc = copy_u32(bt.long_cat + o * K, 32 * K), *ll = copy_u32(bt.long_len + o, 32);
        int64_t *hts = copy_i64(bt.hist_ts + o * S, 32 * S), *lts = copy_i64(bt.long_ts + o * K, 32 * K),
                *now = copy_i64(bt.now + o, 32);
        float lab[32];
        memcpy(lab, bt.label + o, sizeof lab);
        x.target_item = ti, x.target_cat = tc, x.hist_item = hi, x.hist_cat = hc, x.hist_len = hl, x.hist_ts = hts;
        x.long_item = li, x.long_cat = lc, x.long_len = ll, x.long_ts = lts, x.now = now, x.label = lab;
        memcpy(model_buffers(ref)->block, b0, bu->total * sizeof *b0);
        param_set_zero(model_grads(ref));
        lsum += 0.5f * model_forward(ref, &x, logits, 1);
        model_backward(ref, &x);
        for (size_t k = 0; k < g->total; k++) gsum[k] += 0.5f * g->block[k];
        for (size_t k = 0; k < bu->total; k++) bsum[k] += 0.5f * bu->block[k];
        void *ptrs[] = {ti, tc, hi, hc, hl, li, lc, ll, hts, lts, now};
        for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++) free(ptrs[k]);
    }
    cr_expect_float_eq(loss, lsum, 1e-6 * fabsf(lsum) + 1e-7, "loss %g, by hand %g", loss, lsum);
    cr_expect_eq(tu_compare_f32("data-parallel gradients", model_grads(a)->block, gsum, g->total, 1e-5), 0);
    cr_expect_eq(tu_compare_f32("data-parallel Dice statistics", model_buffers(a)->block, bsum, bu->total, 1e-5), 0);
    /* sparse mode: the embedding tables handled by the rows the batch uses give
     * the same gradients (the other rows' are zero either way) */
    model *c;
    cr_assert_eq(model_new(&c, &spec, 64, 20, sc.long_k), 0);
    model_init(c, 5);
    dp_group *dq;
    cr_assert_eq(dp_new(&dq, c, 2, 64, 20, sc.long_k), 0);
    uint32_t ni = spec.base.n_items, nc = spec.base.n_cats;
    uint8_t *mi = calloc(ni + 1, 1), *mc = calloc(nc + 1, 1);
    uint32_t *ri = malloc((ni + 1) * 4), *rc_ = malloc((nc + 1) * 4), nri = 0, nrc = 0;
#define ADD(id, cat) \
    do { \
        uint32_t r1 = (id) < ni ? (id) : ni, r2 = (cat) < nc ? (cat) : nc; \
        if (!mi[r1]) mi[r1] = 1, ri[nri++] = r1; \
        if (!mc[r2]) mc[r2] = 1, rc_[nrc++] = r2; \
    } while (0)
    for (size_t b = 0; b < bt.b; b++) {
        ADD(bt.target_item[b], bt.target_cat[b]);
        for (size_t j = 0; j < bt.hist_len[b] && j < bt.s; j++)
            ADD(bt.hist_item[b * bt.s + j], bt.hist_cat[b * bt.s + j]);
        for (size_t j = 0; j < bt.long_len[b] && j < bt.k; j++)
            ADD(bt.long_item[b * bt.k + j], bt.long_cat[b * bt.k + j]);
    }
#undef ADD
    size_t ti = 0, tc = 0;
    while (strcmp(model_params(c)->specs[ti].name, "emb.item")) ti++;
    while (strcmp(model_params(c)->specs[tc].name, "emb.cat")) tc++;
    sparse_rows sr[2] = {{ti, ri, nri}, {tc, rc_, nrc}};
    float loss2 = dp_step(dq, &bt, sr, 2);
    cr_expect_eq(loss2, loss, "sparse mode: loss %g, dense %g", loss2, loss);
    cr_expect_eq(memcmp(model_grads(c)->block, model_grads(a)->block, g->total * sizeof(float)), 0,
                 "sparse mode: other gradients");
    dp_finish(dq, sr, 2);
    for (size_t k = 0; k < model_grads(c)->numel[ti]; k++)
        cr_assert_eq(model_grads(c)->ptr[ti][k], 0.0f, "dp_finish left a gradient row of emb.item");
    free(mi);
    free(mc);
    free(ri);
    free(rc_);
    dp_free(dq);
    model_free(c);
    free(gsum);
    free(bsum);
    free(b0);
    dp_free(dp);
    model_free(a);
    model_free(ref);
    sample_source_free(src);
}

Test(train, two_threads_learn_and_are_deterministic)
{
    char err[LSIM_ERRLEN];
    train_config c;
    config(&c, MODEL_DIN, path("t2a.st"));
    c.epochs = 3;
    c.threads = 2;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    metrics mt = evaluate(c.out, NULL);
    cr_expect(mt.auc > 0.75, "DIN, 2 threads: test AUC %.4f", mt.auc);
    c.out = path("t2b.st");
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    param_set *a, *b;
    model *ma, *mb;
    load_params(path("t2a.st"), &a, &ma);
    load_params(path("t2b.st"), &b, &mb);
    cr_expect_eq(memcmp(a->block, b->block, a->total * sizeof(float)), 0, "2 threads, same seed: other weights");
    model_free(ma);
    model_free(mb);
}
