/*
 * test_engine.c: the request engine (include/lsim.h, engine/).
 *
 *   - lsim_score gives, for every test sample of `lsim eval`, the probability
 *     eval computes (to 1e-6), for every model kind: the engine builds the
 *     same inputs from the index (short-term window, hard-search list, soft
 *     search, avg-pooled sequence) as the sample builder, in requests that
 *     mix each sample with 40 other candidates;
 *   - lsim_explain lists the behaviors SIM's search picked, with attention
 *     summing to 1, and its score is lsim_score's;
 *   - unknown users and items score through the no-history and
 *     out-of-vocabulary paths;
 *   - bad requests and bad settings are refused with LSIM_E_INVAL and a
 *     detail naming the field.
 */
#include "esu/model.h"
#include "index/index_internal.h"
#include "index/index_write.h"
#include "loaders/gen_log.h"
#include "lsim.h"
#include "tests/test_util.h"
#include "train/evaluate.h"
#include "train/trainer.h"

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
    FILE *f = fopen(log, "w");
    cr_assert(f);
    gen_log_summary sum;
    cr_assert_eq(gen_log_write(f, &p, &sum, err, sizeof err), 0, "%s", err);
    fclose(f);
    ubt_write_opts o;
    ubt_write_result res;
    const char *inputs[1] = {log};
    ubt_write_opts_default(&o);
    o.inputs = inputs;
    o.n_inputs = 1;
    cr_assert_eq(ubt_build(g_idx, &o, &res, err, sizeof err), 0, "build: %s", err);
    cr_assert_eq(lsim_index_open(&g_ix, g_idx, err, sizeof err), 0, "open: %s", err);
}

static void teardown(void)
{
    lsim_index_close(g_ix);
    tu_rmrf(g_dir);
}

TestSuite(engine, .init = setup, .fini = teardown);

/* A few training steps: a checkpoint with non-trivial weights and lsim train's metadata. */
static const char *train(model_kind kind, int time_info, int long_before_short, const char *name)
{
    static char out[8][600];
    static int k;
    char *path = out[k++ % 8];
    snprintf(path, sizeof out[0], "%s/%s", g_dir, name);
    train_config c;
    train_config_default(&c, kind);
    c.time_info = time_info;
    c.samples.test_from = END_TS - 3 * 86400;
    c.samples.batch = 64;
    c.samples.user_cap = 30;
    c.samples.short_len = 20;
    c.samples.long_max = 300;
    c.samples.long_before_short = long_before_short;
    c.samples.negatives = 2;
    c.max_steps = 6;
    c.out = path;
    char err[LSIM_ERRLEN];
    train_progress fin;
    cr_assert_eq(train_run(g_ix, &c, NULL, NULL, &fin, err, sizeof err), 0, "%s: %s", name, err);
    return path;
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
static void engine_equals_eval(const char *ckpt)
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
    cr_assert_eq(lsim_engine_open(&e, g_idx, ckpt, NULL, err, sizeof err), 0, "%s", err);
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

Test(engine, din_scores_equal_eval) { engine_equals_eval(train(MODEL_DIN, 0, 0, "din")); }
Test(engine, avgpool_din_scores_equal_eval) { engine_equals_eval(train(MODEL_AVGPOOL_DIN, 0, 0, "avg")); }
Test(engine, dien_scores_equal_eval) { engine_equals_eval(train(MODEL_DIEN, 0, 0, "dien")); }
Test(engine, dsin_scores_equal_eval) { engine_equals_eval(train(MODEL_DSIN, 0, 0, "dsin")); }
Test(engine, sim_hard_scores_equal_eval) { engine_equals_eval(train(MODEL_SIM_HARD, 0, 0, "hard")); }
Test(engine, sim_hard_time_long_before_short_scores_equal_eval)
{
    engine_equals_eval(train(MODEL_SIM_HARD, 1, 1, "hardlbs"));
}
Test(engine, sim_soft_scores_equal_eval) { engine_equals_eval(train(MODEL_SIM_SOFT, 0, 0, "soft")); }
Test(engine, sim_soft_time_scores_equal_eval) { engine_equals_eval(train(MODEL_SIM_SOFT, 1, 0, "softtime")); }
