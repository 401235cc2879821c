/*
 * test_engine.c: the request engine (include/lsim.h, engine/).
 *
 *   - lsim_score gives, for every test sample of `lsim eval`, the probability
 *     eval computes (to 1e-6), for every model kind: the engine builds the
 *     same inputs from the index (short-term window, hard-search list, soft
 *     search, avg-pooled sequence, MIMN's state folded over the whole history)
 *     as the sample builder, in requests that
 *     mix each sample with 40 other candidates;
 *   - lsim_explain lists the behaviors SIM's search picked, with attention
 *     summing to 1, and its score is lsim_score's;
 *   - unknown users and items score through the no-history and
 *     out-of-vocabulary paths;
 *   - bad requests and bad settings are refused with LSIM_E_INVAL and a
 *     detail naming the field.
 */
#include "engine/engine_internal.h"
#include "esu/model.h"
#include "index/index_internal.h"
#include "engine/uic_mimn.h"
#include "index/index_write.h"
#include "loaders/gen_log.h"
#include "lsim.h"
#include "models/nn.h"
#include "tests/test_util.h"
#include "train/evaluate.h"
#include "train/trainer.h"

#include <cblas.h>
#include <dlfcn.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *g_dir, g_idx[512];
static lsim_index *g_ix;
static const int64_t END_TS = 1512345600;

static void setup(void)
{
    openblas_set_num_threads(1);
    g_dir = tu_tmpdir("engine");
    char log[512], err[512];
    snprintf(log, sizeof log, "%s/log.csv", g_dir);
    snprintf(g_idx, sizeof g_idx, "%s/idx", g_dir);
    gen_log_params p;
    gen_log_params_default(&p);
    p.users = 80;
    p.min_len = 40;
    p.max_len = 1500;
    p.days = 20;
    cr_assert_eq(tu_gen_index(&p, log, g_idx, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_index_open(&g_ix, g_idx, err, sizeof err), 0, "open: %s", err);
}

static void teardown(void)
{
    lsim_index_close(g_ix);
    tu_rmrf(g_dir);
}

TestSuite(engine, .init = setup, .fini = teardown);

/* A few training steps: a checkpoint with non-trivial weights and lsim train's metadata. */
static const char *train_seeded(model_kind kind, int time_info, int long_before_short, const char *name,
                               uint64_t seed);

static const char *train(model_kind kind, int time_info, int long_before_short, const char *name)
{
    return train_seeded(kind, time_info, long_before_short, name, 0);
}

/* A few training steps of kind at lr (0: the default) with the recency additions `recency`. seed 0: the
 * trainer's default */
static const char *train_with(model_kind kind, int time_info, int long_before_short, const char *name,
                              uint64_t seed, unsigned recency, float lr)
{
    static char out[8][600];
    static int k;
    char *path = out[k++ % 8];
    snprintf(path, sizeof out[0], "%s/%s", g_dir, name);
    train_config c;
    train_config_default(&c, kind);
    c.time_info = time_info;
    c.recency = recency;
    c.samples.test_from = END_TS - 3 * 86400;
    c.samples.batch = 64;
    c.samples.user_cap = 30;
    c.samples.short_len = 20;
    c.samples.long_max = 300;
    c.samples.long_before_short = long_before_short;
    c.samples.negatives = 2;
    c.max_steps = 6;
    if (seed) c.seed = seed;
    if (lr > 0) c.optim.lr = lr;
    c.out = path;
    char err[LSIM_ERRLEN];
    train_progress fin;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, &fin, err, sizeof err), 0, "%s: %s", name, err);
    return path;
}

static const char *train_seeded(model_kind kind, int time_info, int long_before_short, const char *name,
                               uint64_t seed)
{
    return train_with(kind, time_info, long_before_short, name, seed, MODEL_RECENCY_DEFAULT, 0);
}

/* SIM soft + time with the search's recency bias, at a learning rate that moves the bias far enough from 0
 * in six steps to change which behaviors the search keeps. */
static const char *train_gsu_recency(const char *name)
{
    return train_with(MODEL_SIM_SOFT, 1, 0, name, 0, MODEL_RECENCY_ALL, 0.1f);
}

static lsim_candidate cand_of(uint32_t item, uint32_t cat)
{
    lsim_index *ix = g_ix;
    lsim_candidate c = {0};
    c.item = vocab_str(ix->voc[IX_ITEM], item);
    c.item_len = strlen(c.item);
    c.category = vocab_str(ix->voc[IX_CAT], cat);
    c.category_len = strlen(c.category);
    return c;
}

/* Every eval sample through lsim_score, each in a request with 40 more candidates around it. */
static void engine_equals_eval_with(const char *ckpt, const lsim_settings *set)
{
    char err[LSIM_ERRLEN];
    sample_config sc;
    sample_config_default(&sc);
    sc.batch = 64;
    model_spec spec;
    cr_assert_eq(eval_samples_from_checkpoint(&sc, ckpt, &spec, err, sizeof err), 0, "%s", err);
    sc.user_cap = 12; /* enough samples, a quick test */
    model *m;
    cr_assert_eq(model_load(&m, ckpt, sc.batch, sc.short_len, sample_config_long_width(&sc), err, sizeof err), 0,
                 "%s", err);
    sample_source *src;
    cr_assert_eq(sample_source_open(&src, g_ix, &sc, err, sizeof err), 0, "%s", err);
    lsim_engine *e;
    cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, set, err, sizeof err), 0, "%s", err);
    lsim_ctx *cx;
    cr_assert_eq(lsim_ctx_new(e, &cx), 0);
    uint64_t rng = 77;
    uint32_t n_items = vocab_size(g_ix->voc[IX_ITEM]);
    size_t checked = 0;
    double worst = 0;
    for (;;) {
        model_batch bt;
        const uint32_t *users;
        cr_assert_eq(sample_source_next(src, &bt, &users, err, sizeof err), 0, "%s", err);
        if (!bt.b) break;
        float logits[64];
        model_batch in = bt;
        in.label = NULL;
        model_forward(m, &in, logits, 0);
        for (size_t b = 0; b < bt.b; b++) {
            lsim_candidate cand[41];
            size_t at = (size_t)(tu_rand(&rng) % 41);
            for (size_t j = 0; j < 41; j++) {
                uint32_t it = (uint32_t)(tu_rand(&rng) % n_items);
                cand[j] = j == at ? cand_of(bt.target_item[b], bt.target_cat[b])
                                  : cand_of(it, vocab_cat(g_ix->voc[IX_ITEM], it));
            }
            const char *u = vocab_str(g_ix->voc[IX_USER], users[b]);
            float scores[41];
            int rc = lsim_score(cx, u, strlen(u), bt.now[b], cand, 41, scores);
            cr_assert_eq(rc, 0, "%s", lsim_ctx_errmsg(cx));
            double want = 1.0 / (1.0 + exp(-(double)logits[b])), d = fabs(scores[at] - want);
            if (d > worst) worst = d;
            cr_assert(d <= 1e-6, "%s (%s): user %s at %lld, item %s: engine %.9f, eval %.9f", ckpt,
                      model_kind_name(spec.kind), u, (long long)bt.now[b], cand[at].item, scores[at], want);
            checked++;
        }
    }
    cr_assert(checked >= 300, "only %zu samples", checked);
    lsim_ctx_free(cx);
    lsim_engine_close(e);
    sample_source_free(src);
    model_free(m);
}

static void engine_equals_eval(const char *ckpt)
{
    engine_equals_eval_with(ckpt, NULL);
}

Test(engine, din_scores_equal_eval) { engine_equals_eval(train(MODEL_DIN, 0, 0, "din")); }
Test(engine, avgpool_din_scores_equal_eval) { engine_equals_eval(train(MODEL_AVGPOOL_DIN, 0, 0, "avg")); }
Test(engine, dien_scores_equal_eval) { engine_equals_eval(train(MODEL_DIEN, 0, 0, "dien")); }
Test(engine, dsin_scores_equal_eval) { engine_equals_eval(train(MODEL_DSIN, 0, 0, "dsin")); }
Test(engine, bst_scores_equal_eval) { engine_equals_eval(train(MODEL_BST, 0, 0, "bst")); }
/* MIMN: eval folds each sample's whole history in the model; the engine folds the user's events
 * before now in pieces (mimn_state_fold) and every candidate reads the one state */
Test(engine, mimn_scores_equal_eval) { engine_equals_eval(train(MODEL_MIMN, 0, 0, "mimn")); }
Test(engine, sim_hard_scores_equal_eval) { engine_equals_eval(train(MODEL_SIM_HARD, 0, 0, "hard")); }
Test(engine, sim_hard_time_long_before_short_scores_equal_eval)
{
    engine_equals_eval(train(MODEL_SIM_HARD, 1, 1, "hardlbs"));
}
Test(engine, sim_soft_scores_equal_eval) { engine_equals_eval(train(MODEL_SIM_SOFT, 0, 0, "soft")); }
Test(engine, sim_soft_time_scores_equal_eval) { engine_equals_eval(train(MODEL_SIM_SOFT, 1, 0, "softtime")); }

/* FAISS's shortlist then exact ranking: the same behaviors, so eval's scores too */
Test(engine, sim_soft_through_faiss_scores_equal_eval)
{
    lsim_settings s;
    lsim_settings_default(&s);
    s.soft_search = LSIM_SOFT_FAISS;
    engine_equals_eval_with(train(MODEL_SIM_SOFT, 1, 0, "softfaiss"), &s);
}

/* The approximate search probing every category scores every pair: the exact behaviors, so eval's scores */
Test(engine, sim_soft_approximate_probing_everything_scores_equal_eval)
{
    lsim_settings s;
    lsim_settings_default(&s);
    s.soft_search = LSIM_SOFT_APPROX;
    s.approx_fraction = 1.0f;
    engine_equals_eval_with(train(MODEL_SIM_SOFT, 1, 0, "softapprox"), &s);
}

/* The search's recency bias (key [W_b e, bias[bucket]], query [W_a e_a, 1], pairs deduplicated by
 * (item, category, bucket)): every mode picks the model's behaviors */
Test(engine, sim_soft_with_the_recency_bias_scores_equal_eval)
{
    const char *ck = train_gsu_recency("softgsu");
    lsim_settings s;
    lsim_settings_default(&s);
    engine_equals_eval_with(ck, &s);
    s.soft_search = LSIM_SOFT_FAISS;
    engine_equals_eval_with(ck, &s);
    s.soft_search = LSIM_SOFT_APPROX;
    s.approx_fraction = 1.0f;
    engine_equals_eval_with(ck, &s);
}

/* ---- allocation counting: the steady state allocates nothing ---- */
/* Sanitizers bring their own allocator: the counting one is left out there (COUNTING 0). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNTING 0
#else
#define COUNTING 1
#endif
static volatile int g_counting;
static volatile size_t g_allocs;
static void *g_where[4]; /* where the first allocations were called from */
#if COUNTING
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t s);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t a, size_t n);

void *malloc(size_t n)
{
    if (g_counting && g_allocs < 4) g_where[g_allocs] = __builtin_return_address(0);
    if (g_counting) g_allocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t s)
{
    if (g_counting && g_allocs < 4) g_where[g_allocs] = __builtin_return_address(0);
    if (g_counting) g_allocs++;
    return __libc_calloc(n, s);
}

void *realloc(void *p, size_t n)
{
    if (g_counting && g_allocs < 4) g_where[g_allocs] = __builtin_return_address(0);
    if (g_counting) g_allocs++;
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t a, size_t n)
{
    if (g_counting && g_allocs < 4) g_where[g_allocs] = __builtin_return_address(0);
    if (g_counting) g_allocs++;
    return __libc_memalign(a, n);
}
#endif

static lsim_candidate raw(const char *item, const char *cat)
{
    return (lsim_candidate){item, strlen(item), cat, cat ? strlen(cat) : 0};
}

static void open_engine(const char *ckpt, const lsim_settings *s, lsim_engine **e, lsim_ctx **c)
{
    char err[LSIM_ERRLEN];
    cr_assert_eq(lsim_engine_open(e, g_idx, ckpt, s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_ctx_new(*e, c), 0);
}

/* A user's i-th event (raw strings), for requests about real behaviors. */
static void user_event(const char *user, size_t i, char *item, char *cat, int64_t *ts)
{
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(g_ix, &rd), 0);
    lsim_event ev[2000];
    size_t n;
    cr_assert_eq(lsim_index_hard_search(rd, user, strlen(user), NULL, 0, INT64_MAX, 2000, ev, &n), 0);
    cr_assert(i < n);
    strcpy(item, ev[n - 1 - i].item);
    strcpy(cat, ev[n - 1 - i].category);
    *ts = ev[n - 1 - i].ts;
    lsim_index_reader_free(rd);
}

static void steady_state_case(const char *ckpt, const lsim_settings *set)
{
    if (!COUNTING) cr_skip_test("a sanitizer's allocator is in place: nothing to count");
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(ckpt, set, &e, &c);
    char item[300], cat[300];
    int64_t ts;
    user_event("1", 1200, item, cat, &ts); /* user 1 has the longest sequence */
    lsim_candidate cand[50];
    for (size_t i = 0; i < 50; i++) cand[i] = raw(i % 2 ? item : "no-such-item", i % 3 ? cat : NULL);
    float s[50];
    cr_assert_eq(lsim_score(c, "1", 1, END_TS, cand, 50, s), 0, "%s", lsim_ctx_errmsg(c)); /* warm-up: the longest */
    g_allocs = 0;
    g_counting = 1;
    int rc = 0;
    for (int r = 0; r < 20 && !rc; r++) rc = lsim_score(c, r % 2 ? "1" : "7", 1, END_TS - r * 3600, cand, 50 - r, s);
    g_counting = 0;
    cr_assert_eq(rc, 0, "%s", lsim_ctx_errmsg(c));
    Dl_info di = {0};
    if (g_allocs) dladdr(g_where[0], &di);
    cr_assert_eq(g_allocs, 0, "%s: %zu allocations in 20 requests after warm-up, the first called from %s (%s)", ckpt,
                 g_allocs, di.dli_sname ? di.dli_sname : "?", di.dli_fname ? di.dli_fname : "?");
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

Test(engine, steady_state_allocates_nothing)
{
    const char *soft = train(MODEL_SIM_SOFT, 1, 0, "alloc-soft");
    steady_state_case(soft, NULL);
    lsim_settings approx;
    lsim_settings_default(&approx);
    approx.soft_search = LSIM_SOFT_APPROX;
    steady_state_case(soft, &approx);
    steady_state_case(train(MODEL_SIM_HARD, 1, 0, "alloc-hard"), NULL);
    steady_state_case(train(MODEL_DIN, 0, 0, "alloc-din"), NULL);
}

Test(engine, unknown_users_and_items_take_the_no_history_and_oov_paths)
{
    const char *ckpt = train(MODEL_SIM_HARD, 1, 0, "unknown");
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(ckpt, NULL, &e, &c);
    char item[300], cat[300];
    int64_t first;
    user_event("5", 0, item, cat, &first);
    lsim_candidate cand[3] = {raw(item, cat), raw("never-seen", cat), raw("never-seen-2", "no-such-cat")};
    float a[3], b[3];
    /* an unknown user is a user with no behavior before now: user 5 at its first event */
    cr_assert_eq(lsim_score(c, "no-such-user", 12, first, cand, 3, a), 0, "%s", lsim_ctx_errmsg(c));
    cr_assert_eq(lsim_score(c, "5", 1, first, cand, 3, b), 0, "%s", lsim_ctx_errmsg(c));
    for (int i = 0; i < 3; i++) {
        cr_assert(a[i] > 0 && a[i] < 1 && isfinite(a[i]));
        cr_assert_float_eq(a[i], b[i], 1e-7, "candidate %d: unknown user %g, no-history user %g", i, a[i], b[i]);
    }
    /* two unknown items of the same category share the out-of-vocabulary row */
    lsim_candidate two[2] = {raw("oov-a", cat), raw("oov-b", cat)};
    cr_assert_eq(lsim_score(c, "5", 1, END_TS, two, 2, a), 0);
    cr_assert_eq(a[0], a[1]);
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

/* Candidates with the same (item, category) are scored once (engine/request.c):
 * every repeat gets its first occurrence's score, bit for bit, and the distinct
 * candidates scored alone get the same scores to float rounding (the batch differs). */
Test(engine, repeated_candidates_score_as_their_first_occurrence)
{
    const char *ckpt = train(MODEL_SIM_HARD, 1, 0, "repeats");
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(ckpt, NULL, &e, &c);
    char item[8][300], cat[8][300];
    int64_t ts;
    lsim_candidate uniq[8], rep[40];
    for (size_t i = 0; i < 8; i++) {
        user_event("1", 37 * i, item[i], cat[i], &ts);
        uniq[i] = raw(item[i], i % 2 ? cat[i] : NULL); /* the category given, or looked up */
    }
    for (size_t i = 0; i < 40; i++) rep[i] = uniq[(i * 5) % 8];
    float a[8], b[40];
    cr_assert_eq(lsim_score(c, "1", 1, END_TS, uniq, 8, a), 0, "%s", lsim_ctx_errmsg(c));
    cr_assert_eq(lsim_score(c, "1", 1, END_TS, rep, 40, b), 0, "%s", lsim_ctx_errmsg(c));
    for (size_t i = 0; i < 40; i++) {
        size_t first = i % 8; /* (i * 5) % 8 repeats with period 8 */
        cr_assert_eq(b[i], b[first], "candidate %zu: %.9g, its first occurrence %.9g", i, b[i], b[first]);
        cr_assert_float_eq(b[i], a[(i * 5) % 8], 1e-6, "candidate %zu: %.9g, scored alone %.9g", i, b[i],
                           a[(i * 5) % 8]);
    }
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

Test(engine, explain_lists_the_hard_search_and_its_attention)
{
    const char *ckpt = train(MODEL_SIM_HARD, 1, 0, "explain");
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(ckpt, NULL, &e, &c);
    char item[300], cat[300];
    int64_t ts;
    user_event("1", 900, item, cat, &ts);
    lsim_candidate cand = raw(item, cat);
    lsim_explained ex[64];
    size_t n;
    float score, s1;
    cr_assert_eq(lsim_explain(c, "1", 1, ts, &cand, &score, ex, 64, &n), 0, "%s", lsim_ctx_errmsg(c));
    cr_assert_eq(lsim_score(c, "1", 1, ts, &cand, 1, &s1), 0);
    cr_assert_eq(score, s1);
    /* the picks are the index's hard search (newest first there, oldest first here) */
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(g_ix, &rd), 0);
    lsim_event want[64];
    size_t m;
    cr_assert_eq(lsim_index_hard_search(rd, "1", 1, cat, strlen(cat), ts, 50, want, &m), 0);
    cr_assert(m > 5, "too few events in the category (%zu)", m);
    cr_assert_eq(n, m);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const lsim_event *w = &want[m - 1 - i];
        cr_assert_str_eq(ex[i].event.item, w->item);
        cr_assert_str_eq(ex[i].event.category, w->category);
        cr_assert_str_eq(ex[i].event.type, w->type);
        cr_assert_eq(ex[i].event.ts, w->ts);
        cr_assert(ex[i].weight >= 0);
        sum += ex[i].weight;
    }
    cr_assert(fabs(sum - 1) < 1e-5, "attention sums to %g", sum);
    lsim_index_reader_free(rd);
    lsim_ctx_free(c);
    lsim_engine_close(e);
    /* a model without a GSU has nothing to explain */
    open_engine(train(MODEL_DIN, 0, 0, "explain-din"), NULL, &e, &c);
    cr_assert_eq(lsim_explain(c, "1", 1, ts, &cand, &score, ex, 64, &n), LSIM_E_INVAL);
    cr_assert(strstr(lsim_ctx_errmsg(c), "din"), "%s", lsim_ctx_errmsg(c));
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

static void expect_inval(lsim_ctx *c, int rc, const char *needle)
{
    cr_assert_eq(rc, LSIM_E_INVAL, "rc %d for a request that wants '%s'", rc, needle);
    cr_assert(strstr(lsim_ctx_errmsg(c), needle), "detail '%s' does not name '%s'", lsim_ctx_errmsg(c), needle);
}

Test(engine, bad_requests_are_refused_with_the_field_named)
{
    lsim_settings set;
    lsim_settings_default(&set);
    set.max_candidates = 4;
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(train(MODEL_SIM_SOFT, 0, 0, "bad"), &set, &e, &c);
    lsim_candidate ok[5] = {raw("1", NULL), raw("2", NULL), raw("3", NULL), raw("4", NULL), raw("5", NULL)};
    float s[5] = {-1, -1, -1, -1, -1};
    static char big[10240];
    memset(big, 'x', sizeof big);
    cr_assert_eq(lsim_score(NULL, "1", 1, END_TS, ok, 1, s), LSIM_E_INVAL);
    expect_inval(c, lsim_score(c, "1", 1, END_TS, NULL, 1, s), "candidates");
    expect_inval(c, lsim_score(c, "1", 1, END_TS, ok, 1, NULL), "output");
    expect_inval(c, lsim_score(c, "1", 1, END_TS, ok, 0, s), "n = 0");
    expect_inval(c, lsim_score(c, "1", 1, END_TS, ok, 5, s), "max_candidates");
    expect_inval(c, lsim_score(c, "1", 1, 0, ok, 1, s), "now");
    expect_inval(c, lsim_score(c, "1", 1, -7, ok, 1, s), "now");
    expect_inval(c, lsim_score(c, "1", 1, END_TS * 1000, ok, 1, s), "milliseconds");
    expect_inval(c, lsim_score(c, NULL, 1, END_TS, ok, 1, s), "user is NULL");
    expect_inval(c, lsim_score(c, "", 0, END_TS, ok, 1, s), "user is empty");
    expect_inval(c, lsim_score(c, "1\0002", 3, END_TS, ok, 1, s), "user holds a NUL");
    expect_inval(c, lsim_score(c, big, sizeof big, END_TS, ok, 1, s), "user is longer");
    lsim_candidate bad[3] = {raw("1", NULL), raw("2", NULL), {"a\0b", 3, NULL, 0}};
    expect_inval(c, lsim_score(c, "1", 1, END_TS, bad, 3, s), "candidate 2: item holds a NUL");
    bad[2] = (lsim_candidate){big, sizeof big, NULL, 0};
    expect_inval(c, lsim_score(c, "1", 1, END_TS, bad, 3, s), "candidate 2: item is longer");
    bad[1] = (lsim_candidate){"2", 1, big, 300};
    expect_inval(c, lsim_score(c, "1", 1, END_TS, bad, 3, s), "candidate 1: category is longer");
    bad[1] = (lsim_candidate){NULL, 0, NULL, 0};
    expect_inval(c, lsim_score(c, "1", 1, END_TS, bad, 3, s), "candidate 1: item is NULL");
    for (int i = 0; i < 5; i++) cr_assert_eq(s[i], -1, "a refused request wrote scores");
    /* and the context still works */
    cr_assert_eq(lsim_score(c, "1", 1, END_TS, ok, 4, s), 0, "%s", lsim_ctx_errmsg(c));
    cr_assert_str_eq(lsim_ctx_errmsg(c), "");
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

Test(engine, bad_settings_and_files_are_refused_by_name)
{
    const char *ckpt = train(MODEL_DIN, 0, 0, "settings");
    char err[LSIM_ERRLEN];
    lsim_engine *e = (lsim_engine *)1;
    lsim_settings set;
    lsim_settings_default(&set);
    set.max_candidates = 0;
    cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, &set, err, sizeof err), LSIM_E_INVAL);
    cr_assert_null(e);
    cr_assert(strstr(err, "max_candidates"), "%s", err);
    lsim_settings_default(&set);
    set.max_future = -1;
    cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, &set, err, sizeof err), LSIM_E_INVAL);
    cr_assert(strstr(err, "max_future"), "%s", err);
    lsim_settings_default(&set);
    set.soft_search = 3;
    cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, &set, err, sizeof err), LSIM_E_INVAL);
    cr_assert(strstr(err, "soft_search"), "%s", err);
    const float fractions[] = {0.0f, -0.5f, 1.5f, NAN};
    for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++) {
        lsim_settings_default(&set);
        set.soft_search = LSIM_SOFT_APPROX;
        set.approx_fraction = fractions[i];
        cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, &set, err, sizeof err), LSIM_E_INVAL, "%g", fractions[i]);
        cr_assert_null(e);
        cr_assert(strstr(err, "approx_fraction"), "%s", err);
    }
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such.safetensors", g_dir);
    cr_assert_neq(lsim_engine_open(&e, g_idx, missing, NULL, err, sizeof err), 0);
    cr_assert(strstr(err, "no-such.safetensors"), "%s", err);
    snprintf(missing, sizeof missing, "%s/no-such-index", g_dir);
    cr_assert_neq(lsim_engine_open(&e, missing, ckpt, NULL, err, sizeof err), 0);
    cr_assert(strstr(err, "no-such-index"), "%s", err);
    cr_assert_eq(lsim_engine_open(&e, NULL, ckpt, NULL, err, sizeof err), LSIM_E_INVAL);
    cr_assert_eq(lsim_engine_open(NULL, g_idx, ckpt, NULL, err, sizeof err), LSIM_E_INVAL);
    cr_assert_eq(lsim_ctx_new(NULL, NULL), LSIM_E_INVAL);
    lsim_engine_close(NULL);
    lsim_ctx_free(NULL);
    cr_assert_str_eq(lsim_ctx_errmsg(NULL), "");
}

/* ---- an append while requests run: each request sees the old index or the new one, whole ---- */
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

enum { AU = 12, AB = 30 }; /* users, candidates per request */

static void append_scores(const char *dir, const char *ckpt, const lsim_candidate *cand, float out[AU][AB])
{
    lsim_engine *e;
    lsim_ctx *c;
    char err[LSIM_ERRLEN];
    cr_assert_eq(lsim_engine_open(&e, dir, ckpt, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_ctx_new(e, &c), 0);
    for (int u = 0; u < AU; u++) {
        char user[16];
        snprintf(user, sizeof user, "%d", u + 1);
        cr_assert_eq(lsim_score(c, user, strlen(user), END_TS + 86400, cand, AB, out[u]), 0, "%s",
                     lsim_ctx_errmsg(c));
    }
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

Test(engine, an_append_is_seen_whole_or_not_at_all)
{
    const char *ckpt = train(MODEL_SIM_HARD, 1, 0, "append");
    /* the new log: 40 events for each of the first AU users in the 12 hours after the old log, new items too */
    char log[700], copy[700], cmd[2000];
    snprintf(log, sizeof log, "%s/new.csv", g_dir);
    FILE *f = fopen(log, "w");
    cr_assert(f);
    uint64_t s = 3;
    for (int u = 1; u <= AU; u++)
        for (int i = 0; i < 40; i++)
            fprintf(f, "%d,%llu,%llu,pv,%lld\n", u,
                    (unsigned long long)(i % 3 ? 9000000 + tu_rand(&s) % 50 : (uint64_t)(1 + i)),
                    (unsigned long long)(1 + tu_rand(&s) % 3), (long long)(END_TS + u * 100 + i * 600));
    fclose(f);
    lsim_candidate cand[AB];
    static char names[AB][16];
    for (int i = 0; i < AB; i++) {
        snprintf(names[i], sizeof names[i], "%d", i % 2 ? 9000000 + i : 1 + i * 7);
        cand[i] = raw(names[i], NULL);
    }
    static float before[AU][AB], after[AU][AB], got[AB];
    append_scores(g_idx, ckpt, cand, before);
    /* the state after the append, from a copy appended first */
    snprintf(copy, sizeof copy, "%s/copy", g_dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", g_idx, copy);
    cr_assert_eq(system(cmd), 0);
    const char *args[] = {"index", "append", "--index", copy, "--input", log, NULL};
    char *out = NULL, *errs = NULL;
    cr_assert_eq(tu_run_lsim(args, &out, &errs), 0, "append: %s", errs);
    free(out), free(errs);
    append_scores(copy, ckpt, cand, after);
    int differ = 0;
    for (int u = 0; u < AU; u++) differ += memcmp(before[u], after[u], sizeof before[u]) != 0;
    cr_assert(differ >= AU / 2, "the append changes too few users' scores (%d)", differ);
    /* now the same append on the live index while a reader scores */
    lsim_engine *e;
    lsim_ctx *c;
    char err[LSIM_ERRLEN];
    cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_ctx_new(e, &c), 0);
    char *const argv[] = {(char *)tu_lsim_bin(), "index", "append", "--index", g_idx, "--input", log, NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    cr_assert_eq(posix_spawn(&pid, tu_lsim_bin(), &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0, done = 0, seen_old = 0, seen_new = 0;
    for (long r = 0; !done || r % AU; r++) {
        int u = (int)(r % AU);
        char user[16];
        snprintf(user, sizeof user, "%d", u + 1);
        int rc = lsim_score(c, user, strlen(user), END_TS + 86400, cand, AB, got);
        cr_assert_eq(rc, 0, "request %ld failed during the append: %s", r, lsim_ctx_errmsg(c));
        int is_old = !memcmp(got, before[u], sizeof got), is_new = !memcmp(got, after[u], sizeof got);
        cr_assert(is_old || is_new, "request %ld (user %d) saw neither the old index nor the new one", r, u + 1);
        seen_old += is_old && !is_new, seen_new += is_new && !is_old;
        if (!done && waitpid(pid, &status, WNOHANG) == pid) done = 1;
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the append failed");
    /* after it, every request sees the new index */
    for (int u = 0; u < AU; u++) {
        char user[16];
        snprintf(user, sizeof user, "%d", u + 1);
        cr_assert_eq(lsim_score(c, user, strlen(user), END_TS + 86400, cand, AB, got), 0);
        cr_assert_eq(memcmp(got, after[u], sizeof got), 0, "user %d: not the new scores after the append", u + 1);
    }
    cr_assert(seen_old > 0, "no request ran before the append committed: the test saw no overlap");
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

/* Review findings, kept as tests. */
Test(engine, explain_on_a_long_before_short_model_and_a_longer_user)
{
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(train(MODEL_SIM_HARD, 1, 1, "explain-lbs"), NULL, &e, &c);
    const char *users[] = {"7", "1"}; /* the second the longest: the event buffer grows between the calls */
    for (int i = 0; i < 2; i++) {
        char item[300], cat[300];
        int64_t ts;
        user_event(users[i], 30, item, cat, &ts);
        lsim_candidate cand = raw(item, cat);
        lsim_explained ex[64];
        size_t n;
        float score;
        cr_assert_eq(lsim_explain(c, users[i], 1, END_TS, &cand, &score, ex, 64, &n), 0, "%s", lsim_ctx_errmsg(c));
        double sum = 0;
        for (size_t j = 0; j < n; j++) {
            cr_assert_str_eq(ex[j].event.category, cat);
            cr_assert(ex[j].event.ts < END_TS);
            sum += ex[j].weight;
        }
        cr_assert(n == 0 || fabs(sum - 1) < 1e-5, "user %s: attention sums to %g", users[i], sum);
    }
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

/* A context's model is forward-only (model_new_sharing): its workspace has no training buffers. Full requests
 * (max_candidates of them) must score the same through the reference kernels, which take the general paths at
 * full size (the shared-history and grouped paths skipped), and a backward must be refused. */
static void forward_only_case(const char *ckpt)
{
    enum { N = 48 };
    lsim_settings set;
    lsim_settings_default(&set);
    set.max_candidates = N;
    lsim_engine *e;
    lsim_ctx *c;
    open_engine(ckpt, &set, &e, &c);
    model_memory mm, fm;
    model_memory_get(c->m, &mm);
    cr_assert(model_forward_only(c->m));
    cr_assert_eq(mm.grads, 0);
    model *full;
    unsigned flags = e->long_kind == ENGINE_LONG_AVGPOOL ? MODEL_LONG_SHARED : 0;
    cr_assert_eq(model_new_ex(&full, &e->spec, N, e->set.short_len, e->long_width ? e->long_width : 1, flags), 0);
    model_memory_get(full, &fm);
    cr_assert(!model_forward_only(full));
    cr_assert(mm.workspace < fm.workspace * 3 / 4, "%s: forward-only workspace %zu, training layout's %zu", ckpt,
              mm.workspace, fm.workspace);
    model_free(full);
    /* candidates: the user's own items (mixed categories), then all of one category (one shared long list) */
    lsim_candidate cand[2][N];
    static char item[N][300], cat[N][300];
    int64_t ts;
    for (size_t i = 0; i < N; i++) {
        user_event("1", 40 + 7 * i, item[i], cat[i], &ts);
        cand[0][i] = raw(i % 5 ? item[i] : "no-such-item", i % 3 ? cat[i] : NULL);
        cand[1][i] = raw(i % 4 ? item[i] : "no-such-item", cat[0]);
    }
    for (int r = 0; r < 2; r++) {
        float fast[N], ref[N];
        cr_assert_eq(lsim_score(c, "1", 1, END_TS, cand[r], N, fast), 0, "%s", lsim_ctx_errmsg(c));
        nn_force_reference(1);
        int rc = lsim_score(c, "1", 1, END_TS, cand[r], N, ref);
        nn_force_reference(0);
        cr_assert_eq(rc, 0, "%s", lsim_ctx_errmsg(c));
        char what[700];
        snprintf(what, sizeof what, "%s request %d: fast vs reference", ckpt, r);
        cr_assert_eq(tu_compare_f32(what, fast, ref, N, 1e-4), 0);
    }
    uint32_t zero = 0;
    float label = 1;
    model_batch bt = {.b = 1, .target_item = &zero, .target_cat = &zero, .label = &label};
    cr_assert_eq(model_backward(c->m, &bt), LSIM_E_INVAL);
    lsim_ctx_free(c);
    lsim_engine_close(e);
}

Test(engine, contexts_are_forward_only_and_run_the_reference_paths)
{
    forward_only_case(train(MODEL_DIN, 0, 0, "fwd-din"));
    forward_only_case(train(MODEL_AVGPOOL_DIN, 0, 0, "fwd-avg"));
    forward_only_case(train(MODEL_DIEN, 0, 0, "fwd-dien"));
    forward_only_case(train(MODEL_DSIN, 0, 0, "fwd-dsin"));
    forward_only_case(train(MODEL_BST, 0, 0, "fwd-bst"));
    forward_only_case(train(MODEL_MIMN, 0, 0, "fwd-mimn"));
    forward_only_case(train(MODEL_SIM_HARD, 1, 0, "fwd-hard"));
    forward_only_case(train(MODEL_SIM_HARD, 1, 1, "fwd-hardlbs")); /* no per-category reads: no groups */
    forward_only_case(train(MODEL_SIM_SOFT, 1, 0, "fwd-soft"));
}

Test(engine, a_huge_k_returns_what_the_user_has)
{
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(g_ix, &rd), 0);
    static lsim_event ev[2000];
    size_t n, all;
    cr_assert_eq(lsim_index_hard_search(rd, "5", 1, NULL, 0, INT64_MAX, 2000, ev, &all), 0);
    /* out must hold k entries by the contract; the search writes only what exists, so a huge k with room for
     * the user's events is a fair test of the bounds */
    cr_assert_eq(lsim_index_hard_search(rd, "5", 1, NULL, 0, INT64_MAX, SIZE_MAX / 2, ev, &n), 0,
                 "%s", lsim_index_reader_errmsg(rd));
    cr_assert_eq(n, all);
    cr_assert_eq(lsim_index_hard_search(rd, "5", 1, ev[0].category, strlen(ev[0].category), INT64_MAX,
                                        (size_t)1 << 61, ev, &n), 0, "%s", lsim_index_reader_errmsg(rd));
    cr_assert(n >= 1 && n <= all);
    lsim_index_reader_free(rd);
}

Test(engine, a_checkpoint_with_nan_is_refused)
{
    lsim_index_stats st;
    cr_assert_eq(lsim_index_stats_get(g_ix, &st), 0);
    model_spec spec;
    model_spec_default(&spec, MODEL_SIM_SOFT, (uint32_t)st.items, (uint32_t)st.categories);
    model *m;
    cr_assert_eq(model_new(&m, &spec, 1, 20, 50), 0);
    model_init(m, 3);
    float *w = param_find(model_params(m), "gsu.wb");
    cr_assert(w);
    w[5] = NAN;
    char path[700], err[LSIM_ERRLEN];
    snprintf(path, sizeof path, "%s/nan.safetensors", g_dir);
    cr_assert_eq(model_save(m, path, NULL, err, sizeof err), 0, "%s", err);
    model_free(m);
    lsim_engine *e;
    cr_assert_eq(lsim_engine_open(&e, g_idx, path, NULL, err, sizeof err), LSIM_E_CORRUPT);
    cr_assert(strstr(err, "gsu.wb") && strstr(err, "NaN"), "%s", err);
}

/* A reader that meets an append loads only what changed: the strings it handed out stay, new ids appear,
 * and the string storage grows by the new strings, not by a second copy of the vocabulary. */
Test(engine, an_append_refreshes_the_vocabulary_incrementally)
{
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(g_ix, &rd), 0);
    lsim_event ev[4];
    size_t n;
    cr_assert_eq(lsim_index_hard_search(rd, "3", 1, NULL, 0, INT64_MAX, 1, ev, &n), 0);
    cr_assert_eq(n, 1);
    const char *old_item = ev[0].item;
    char keep[300];
    snprintf(keep, sizeof keep, "%s", old_item);
    size_t before = vocab_string_bytes(g_ix->voc[IX_ITEM]);
    char log[700];
    snprintf(log, sizeof log, "%s/more.csv", g_dir);
    FILE *f = fopen(log, "w");
    cr_assert(f);
    for (int i = 0; i < 10; i++) fprintf(f, "3,new-item-%d,77,pv,%lld\n", i, (long long)(END_TS + 100 + i));
    fclose(f);
    const char *args[] = {"index", "append", "--index", g_idx, "--input", log, NULL};
    char *out = NULL, *errs = NULL;
    cr_assert_eq(tu_run_lsim(args, &out, &errs), 0, "%s", errs);
    free(out), free(errs);
    cr_assert_eq(lsim_index_hard_search(rd, "3", 1, NULL, 0, INT64_MAX, 1, ev, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ev[0].item, "new-item-9");
    cr_assert_str_eq(old_item, keep, "a string handed out before the append changed");
    size_t after = vocab_string_bytes(g_ix->voc[IX_ITEM]);
    cr_assert(after - before < 8192, "string storage grew by %zu bytes for 10 new ids (it was %zu)", after - before,
              before);
    lsim_index_reader_free(rd);
}

/* MIMN with a User Interest Center: the scores read from the stored states equal, bit for bit, those of folding
 * every event per request (LSIM_UIC_OFF), for times inside the history (a snapshot plus the events after it) and
 * after it (the head), before and after an append that brings the states up to date; a checkpoint the UIC was
 * not written for gets no UIC (and LSIM_UIC_REQUIRE refuses it). */
static void copy_index(const char *from, const char *to)
{
    char a[1100], b[1100];
    cr_assert_eq(mkdir(to, 0755), 0);
    snprintf(a, sizeof a, "%s/data.mdb", from);
    snprintf(b, sizeof b, "%s/data.mdb", to);
    cr_assert_eq(tu_copy_file(a, b), 0, "cannot copy %s to %s", a, b);
}

static void uic_scores_equal_fold(lsim_engine *with, lsim_engine *without, uint64_t *rng, int n_req)
{
    lsim_ctx *a, *b;
    cr_assert_eq(lsim_ctx_new(with, &a), 0);
    cr_assert_eq(lsim_ctx_new(without, &b), 0);
    uint32_t n_users = vocab_size(g_ix->voc[IX_USER]), n_items = vocab_size(g_ix->voc[IX_ITEM]);
    for (int q = 0; q < n_req; q++) {
        const char *u = vocab_str(g_ix->voc[IX_USER], (uint32_t)(tu_rand(rng) % n_users));
        int64_t now = q % 4 == 0 ? END_TS + 3600 : END_TS - (int64_t)(tu_rand(rng) % (20 * 86400));
        lsim_candidate cand[16];
        for (size_t j = 0; j < 16; j++) {
            uint32_t it = (uint32_t)(tu_rand(rng) % n_items);
            cand[j] = cand_of(it, vocab_cat(g_ix->voc[IX_ITEM], it));
        }
        float sa[16], sb[16];
        cr_assert_eq(lsim_score(a, u, strlen(u), now, cand, 16, sa), 0, "%s", lsim_ctx_errmsg(a));
        cr_assert_eq(lsim_score(b, u, strlen(u), now, cand, 16, sb), 0, "%s", lsim_ctx_errmsg(b));
        cr_assert(memcmp(sa, sb, sizeof sa) == 0, "user %s at %lld: %.9g from the UIC, %.9g folded", u,
                  (long long)now, sa[0], sb[0]);
    }
    lsim_ctx_free(a);
    lsim_ctx_free(b);
}

Test(engine, mimn_uic_scores_equal_fold)
{
    const char *ckpt = train(MODEL_MIMN, 0, 0, "mimn-uic");
    char idx[600], err[LSIM_ERRLEN];
    snprintf(idx, sizeof idx, "%s/uic-idx", g_dir);
    copy_index(g_idx, idx);
    uic_mimn um;
    model *m;
    cr_assert_eq(uic_mimn_open(&um, &m, ckpt, err, sizeof err), 0, "%s", err);
    ubt_write_opts o;
    ubt_write_result res;
    ubt_write_opts_default(&o);
    o.uic = &um.model;
    o.uic_every = 64; /* snapshots inside most users' histories */
    cr_assert_eq(ubt_uic_rebuild(idx, &o, &res, err, sizeof err), 0, "%s", err);
    cr_assert_gt(res.uic_records, res.uic_users);
    lsim_settings on, off, req;
    lsim_settings_default(&on);
    off = req = on;
    off.uic = LSIM_UIC_OFF;
    req.uic = LSIM_UIC_REQUIRE;
    lsim_engine *with, *without, *other;
    cr_assert_eq(lsim_engine_open(&with, idx, ckpt, &req, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_engine_open(&without, idx, ckpt, &off, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_engine_uses_uic(with), 1);
    cr_assert_eq(lsim_engine_uses_uic(without), 0);
    uint64_t rng = 5;
    uic_scores_equal_fold(with, without, &rng, 400);
    /* an append of later events, the states brought up to date; the open engines see it */
    char log[600];
    snprintf(log, sizeof log, "%s/uic-more.csv", g_dir);
    FILE *f = fopen(log, "w");
    cr_assert(f);
    uint32_t n_items = vocab_size(g_ix->voc[IX_ITEM]);
    for (int i = 0; i < 300; i++) {
        uint32_t u = (uint32_t)(tu_rand(&rng) % vocab_size(g_ix->voc[IX_USER])),
                 it = (uint32_t)(tu_rand(&rng) % n_items);
        fprintf(f, "%s,%s,%s,pv,%lld\n", vocab_str(g_ix->voc[IX_USER], u), vocab_str(g_ix->voc[IX_ITEM], it),
                vocab_str(g_ix->voc[IX_CAT], vocab_cat(g_ix->voc[IX_ITEM], it)),
                (long long)(END_TS + (int64_t)(tu_rand(&rng) % 3000)));
    }
    fclose(f);
    const char *in[1] = {log};
    o.inputs = in;
    o.n_inputs = 1;
    o.uic_every = 0;
    cr_assert_eq(ubt_append(idx, &o, &res, err, sizeof err), 0, "%s", err);
    cr_assert_gt(res.uic_users, 50);
    uic_scores_equal_fold(with, without, &rng, 200);
    lsim_engine_close(with);
    lsim_engine_close(without);
    /* another checkpoint: the UIC is not its own */
    const char *ckpt2 = train_seeded(MODEL_MIMN, 0, 0, "mimn-uic2", 2);
    cr_assert_eq(lsim_engine_open(&other, idx, ckpt2, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_engine_uses_uic(other), 0);
    lsim_engine_close(other);
    cr_assert_eq(lsim_engine_open(&other, idx, ckpt2, &req, err, sizeof err), LSIM_E_INVAL);
    cr_assert(strstr(err, "User Interest Center") && strstr(err, "lsim index uic"), "%s", err);
    uic_mimn_close(&um, m);
}
