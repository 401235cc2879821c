/*
 * test_mimn.c: the C MIMN against the PyTorch MIMN of tests/golden/gen_mimn.py
 * (nn.GRUCell controller and MIU, cosine addressing, the rebalanced write, the
 * utilization regularizer, truncated BPTT by detaching the state; float64
 * reference, float32 fixture), and the state fold's contract (esu/mimn.h).
 *
 * For each case of mimn.safetensors ("a.": E = 8, H = 6, m = 3, k = 1, bptt 4,
 * histories of 0, 1, 3, 4, 7 and 12 behaviors; "b.": E = 8, H = 8, m = 4, k = 2,
 * bptt 3): load the weights and buffers, run a training forward on the same
 * batch, logits and loss (BCE + the regularizer) within MF_TOL_FWD (1e-5), a
 * backward with every parameter gradient within MF_TOL_GRAD (1e-4) (the histories
 * longer than bptt check that the gradient stops where PyTorch's does), the
 * running statistics after the step (1e-5), an inference forward (1e-5), and each
 * sample's state after its whole history folded by mimn_state_fold (1e-5); on
 * the BLAS path and on the plain C reference kernels (nn_force_reference).
 * Tolerances as tu_compare_f32 applies them (relative, floored at 2% of the
 * tensor's largest value). The flat history arrays hold unused ids between the
 * samples: they must be ignored.
 * The fold's contract, bit for bit: a forward from states folded by
 * mimn_state_fold equals the forward from the histories (per sample, shared by
 * every candidate, in training and in inference mode), and folding in two pieces
 * equals folding at once; samples sharing one copy of a history score as if each
 * had its own. Also: a repeated step is bit-identical; config checks.
 */
#include "esu/mimn.h"
#include "loaders/safetensors.h"
#include "lsim.h"
#include "models/nn.h"
#include "tests/model_fixture.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_batch {
    model_batch bt;
    uint32_t *ti, *tc, *ai, *ac, *al;
    size_t *off;
} fx_batch;

static void fx_load(fx_batch *x, const st_file *f, const char *prefix)
{
    memset(x, 0, sizeof *x);
    size_t b, n;
    x->ti = mf_ids(f, prefix, "target_item", &b);
    x->tc = mf_ids(f, prefix, "target_cat", NULL);
    x->ai = mf_ids(f, prefix, "all_item", &n);
    x->ac = mf_ids(f, prefix, "all_cat", NULL);
    x->al = mf_ids(f, prefix, "all_len", NULL);
    const st_tensor *t = mf_need(f, prefix, "all_off");
    cr_assert_eq(t->dtype, ST_I64);
    x->off = malloc(b * sizeof *x->off);
    for (size_t i = 0; i < b; i++) x->off[i] = (size_t)((const int64_t *)t->data)[i];
    t = mf_need(f, prefix, "label");
    x->bt = (model_batch){.b = b, .target_item = x->ti, .target_cat = x->tc, .all_item = x->ai, .all_cat = x->ac,
                          .all_off = x->off, .all_len = x->al, .label = t->data};
}

static void fx_free(fx_batch *x)
{
    free(x->ti);
    free(x->tc);
    free(x->ai);
    free(x->ac);
    free(x->al);
    free(x->off);
}

static void run_case(const char *prefix, int reference)
{
    nn_force_reference(reference);
    st_file *f = mf_open("mimn.safetensors");
    const int32_t *dims = mf_need(f, prefix, "dims")->data;
    const st_tensor *ei = mf_need(f, prefix, "emb.item"), *ec = mf_need(f, prefix, "emb.cat");
    mimn_config cfg;
    mimn_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1);
    /* d_item, d_cat, H, m, k, bptt, mlp_h1, mlp_h2 */
    cfg.base.d_item = (uint32_t)dims[0];
    cfg.base.d_cat = (uint32_t)dims[1];
    cfg.d_ctrl = (uint32_t)dims[2];
    cfg.mem_slots = (uint32_t)dims[3];
    cfg.miu_k = (uint32_t)dims[4];
    cfg.bptt = (uint32_t)dims[5];
    cfg.base.mlp_h1 = (uint32_t)dims[6];
    cfg.base.mlp_h2 = (uint32_t)dims[7];
    cfg.util_reg = ((const float *)mf_need(f, prefix, "util_reg")->data)[0];

    fx_batch x;
    fx_load(&x, f, prefix);
    size_t B = x.bt.b;
    mimn *m;
    cr_assert_eq(mimn_new(&m, &cfg, B + 3), 0); /* larger than the batch: a batch may be smaller */
    param_set *p = mimn_params(m), *g = mimn_grads(m), *bufs = mimn_buffers(m);
    mf_load(p, f, prefix, "");
    mf_load(bufs, f, prefix, "init.");
    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = mimn_forward(m, &x.bt, logits, 1);
    bad += mf_compare("logits", logits, mf_need(f, prefix, "logits"), MF_TOL_FWD);
    bad += mf_compare("loss", &loss, mf_need(f, prefix, "loss"), MF_TOL_FWD);
    param_set_zero(g);
    mimn_backward(m, &x.bt);
    bad += mf_check_step(g, bufs, f, prefix);
    mimn_forward(m, &x.bt, logits, 0);
    bad += mf_compare("logits_eval", logits, mf_need(f, prefix, "logits_eval"), MF_TOL_FWD);
    /* each sample's state after its whole history, folded by the API */
    size_t SF = mimn_state_floats(&cfg);
    float *states = malloc(B * SF * sizeof *states), *scr = malloc(mimn_fold_scratch_floats(&cfg) * sizeof *scr);
    for (size_t b = 0; b < B; b++) {
        mimn_state_init(m, states + b * SF);
        mimn_state_fold(m, states + b * SF, x.ai + x.off[b], x.ac + x.off[b], x.al[b], scr);
    }
    const st_tensor *want = mf_need(f, prefix, "state");
    cr_assert_eq(want->numel, B * SF, "state layout: %zu floats per sample", SF);
    bad += mf_compare("state", states, want, MF_TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(states);
    free(scr);
    free(logits);
    mimn_free(m);
    fx_free(&x);
    st_close(f);
    nn_force_reference(0);
}

Test(mimn, matches_pytorch) { run_case("a.", 0); }
Test(mimn, matches_pytorch_on_reference_kernels) { run_case("a.", 1); }
Test(mimn, matches_pytorch_two_miu_slots) { run_case("b.", 0); }
Test(mimn, matches_pytorch_two_miu_slots_reference) { run_case("b.", 1); }

/* ---- the fold's contract, on a default-width model ---- */

enum { RB = 6, RN = 700 };
static const uint32_t rlens[RB] = {0, 1, 29, 30, 250, 700}; /* around and beyond bptt (30) */

typedef struct rnd {
    uint32_t ti[RB], tc[RB], item[RB * RN], cat[RB * RN], len[RB];
    size_t off[RB];
    float label[RB];
    model_batch bt;
} rnd;

static void random_batch(rnd *r, int same_user)
{
    uint64_t s = 9;
    for (size_t i = 0; i < RB * RN; i++) {
        r->item[i] = (uint32_t)(tu_rand(&s) % 60); /* some past the vocabulary of 50 */
        r->cat[i] = (uint32_t)(tu_rand(&s) % 9);
    }
    for (size_t b = 0; b < RB; b++) {
        r->ti[b] = (uint32_t)(tu_rand(&s) % 55);
        r->tc[b] = (uint32_t)(tu_rand(&s) % 9);
        r->len[b] = same_user ? 400 : rlens[b];
        r->off[b] = same_user ? 0 : b * RN;
        r->label[b] = (float)(b % 2);
    }
    r->bt = (model_batch){.b = RB, .target_item = r->ti, .target_cat = r->tc, .all_item = r->item,
                          .all_cat = r->cat, .all_off = r->off, .all_len = r->len, .label = r->label};
}

static mimn *small_model(uint64_t seed)
{
    mimn_config cfg;
    mimn_config_default(&cfg, 50, 7);
    cfg.base.mlp_h1 = 16;
    cfg.base.mlp_h2 = 8;
    mimn *m;
    cr_assert_eq(mimn_new(&m, &cfg, RB), 0);
    mimn_init(m, seed);
    return m;
}

/* Forward from states folded by mimn_state_fold == forward from the histories, bit for bit:
 * per sample, in inference and in training mode (the training forward folds the
 * prefix and keeps the window: the same bits). */
Test(mimn, fold_equals_forward)
{
    mimn *m = small_model(3);
    const mimn_config *cfg = mimn_cfg(m);
    static rnd r;
    random_batch(&r, 0);
    size_t SF = mimn_state_floats(cfg);
    cr_expect_eq(SF, 364u, "the default state: H + E + 2 m E + m");
    float *states = malloc(RB * SF * sizeof *states), *scr = malloc(mimn_fold_scratch_floats(cfg) * sizeof *scr);
    for (size_t b = 0; b < RB; b++) {
        mimn_state_init(m, states + b * SF);
        mimn_state_fold(m, states + b * SF, r.item + r.off[b], r.cat + r.off[b], r.len[b], scr);
    }
    param_set *bufs = mimn_buffers(m);
    float *keep = malloc(bufs->total * sizeof(float));
    memcpy(keep, bufs->block, bufs->total * sizeof(float));
    for (int train = 0; train < 2; train++) {
        float a[RB], b[RB];
        model_batch from_state = r.bt;
        from_state.all_item = from_state.all_cat = NULL;
        from_state.all_off = NULL;
        from_state.all_len = NULL;
        from_state.mimn_state = states;
        float la = mimn_forward(m, &r.bt, a, train);
        memcpy(bufs->block, keep, bufs->total * sizeof(float));
        float lb = mimn_forward(m, &from_state, b, train);
        memcpy(bufs->block, keep, bufs->total * sizeof(float));
        cr_expect_eq(memcmp(a, b, sizeof a), 0, "train %d: logits from folded states differ from the history's", train);
        cr_expect_eq(la, lb, "train %d: loss", train);
        for (size_t i = 0; i < RB; i++) cr_expect(isfinite(a[i]));
    }
    free(keep);
    free(states);
    free(scr);
    mimn_free(m);
}

/* One request: every candidate shares one folded state (state_shared) == each folds the
 * same history itself. */
Test(mimn, shared_state_equals_per_sample_history)
{
    mimn *m = small_model(4);
    const mimn_config *cfg = mimn_cfg(m);
    static rnd r;
    random_batch(&r, 1);
    size_t SF = mimn_state_floats(cfg);
    float *state = malloc(SF * sizeof *state), *scr = malloc(mimn_fold_scratch_floats(cfg) * sizeof *scr);
    mimn_state_init(m, state);
    mimn_state_fold(m, state, r.item, r.cat, 400, scr);
    float a[RB], b[RB];
    mimn_forward(m, &r.bt, a, 0);
    model_batch sh = {.b = RB, .target_item = r.ti, .target_cat = r.tc, .mimn_state = state, .state_shared = 1};
    mimn_forward(m, &sh, b, 0);
    cr_expect_eq(memcmp(a, b, sizeof a), 0, "a shared state gives other logits than the histories");
    free(state);
    free(scr);
    mimn_free(m);
}

/* At inference, samples that share one copy of a history (the same offset and length, as a request's
 * candidates in the sample builder) take the previous sample's state: the logits of each folding its
 * own copy, bit for bit. */
Test(mimn, shared_copy_equals_own_copies)
{
    mimn *m = small_model(7);
    static rnd r;
    random_batch(&r, 0);
    for (size_t b = 1; b < RB; b++) memcpy(r.item + b * RN, r.item, 300 * sizeof *r.item), /* 6 copies of one */
        memcpy(r.cat + b * RN, r.cat, 300 * sizeof *r.cat);
    size_t own[RB], one[RB] = {0, 0, 0, 0, 0, 0};
    uint32_t len[RB] = {300, 300, 300, 300, 300, 300};
    for (size_t b = 0; b < RB; b++) own[b] = b * RN;
    float a[RB], c[RB];
    model_batch bt = r.bt;
    bt.all_len = len;
    bt.all_off = own;
    mimn_forward(m, &bt, a, 0);
    bt.all_off = one;
    mimn_forward(m, &bt, c, 0);
    cr_expect_eq(memcmp(a, c, sizeof a), 0, "a shared copy gives other logits than own copies");
    mimn_free(m);
}

/* Folding a prefix, then the rest == folding at once, bit for bit, at any split;
 * folding nothing leaves the state as it is. */
Test(mimn, fold_in_pieces)
{
    mimn *m = small_model(5);
    const mimn_config *cfg = mimn_cfg(m);
    static rnd r;
    random_batch(&r, 0);
    size_t SF = mimn_state_floats(cfg), n = 699;
    const uint32_t *it = r.item + 4 * RN, *ct = r.cat + 4 * RN;
    float *once = malloc(SF * sizeof *once), *two = malloc(SF * sizeof *two);
    float *scr = malloc(mimn_fold_scratch_floats(cfg) * sizeof *scr);
    mimn_state_init(m, once);
    mimn_state_fold(m, once, it, ct, n, scr);
    int nonzero = 0;
    for (size_t i = 0; i < SF; i++) nonzero += once[i] != 0.0f;
    cr_expect_gt(nonzero, (int)SF / 2, "the folded state is mostly zero");
    static const size_t cuts[] = {0, 1, 29, 30, 350, 698, 699};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        mimn_state_init(m, two);
        mimn_state_fold(m, two, it, ct, cuts[c], scr);
        mimn_state_fold(m, two, it + cuts[c], ct + cuts[c], n - cuts[c], scr);
        cr_expect_eq(memcmp(once, two, SF * sizeof *two), 0, "split at %zu differs", cuts[c]);
    }
    memcpy(two, once, SF * sizeof *two);
    mimn_state_fold(m, two, it, ct, 0, scr);
    cr_expect_eq(memcmp(once, two, SF * sizeof *two), 0, "an empty fold changed the state");
    free(once);
    free(two);
    free(scr);
    mimn_free(m);
}

/* A second training step on the same batch with the running statistics restored gives
 * bit-identical logits and gradients; gradients finite, and some reach the controller
 * (the window) and the MIU. */
Test(mimn, repeatable)
{
    mimn *m = small_model(6);
    static rnd r;
    random_batch(&r, 0);
    param_set *g = mimn_grads(m), *bufs = mimn_buffers(m);
    float *keep_buf = malloc(bufs->total * sizeof(float)), *g1 = malloc(g->total * sizeof(float));
    memcpy(keep_buf, bufs->block, bufs->total * sizeof(float));
    float l1[RB], l2[RB];
    float loss1 = mimn_forward(m, &r.bt, l1, 1);
    param_set_zero(g);
    mimn_backward(m, &r.bt);
    memcpy(g1, g->block, g->total * sizeof(float));
    memcpy(bufs->block, keep_buf, bufs->total * sizeof(float));
    float loss2 = mimn_forward(m, &r.bt, l2, 1);
    param_set_zero(g);
    mimn_backward(m, &r.bt);
    cr_expect_eq(loss1, loss2);
    cr_expect_eq(memcmp(l1, l2, sizeof l1), 0, "logits differ on a repeated step");
    cr_expect_eq(memcmp(g1, g->block, g->total * sizeof(float)), 0, "gradients differ on a repeated step");
    for (size_t i = 0; i < g->total; i++) cr_assert(isfinite(g->block[i]), "gradient %zu not finite", i);
    static const char *const reached[] = {"mimn.controller.weight_ih", "mimn.miu.weight_hh", "mimn.rebalance.weight",
                                          "mimn.key_m", "mimn.query.weight"};
    for (size_t t = 0; t < sizeof reached / sizeof reached[0]; t++) {
        const float *x = param_find(g, reached[t]);
        double s = 0;
        size_t i = 0;
        for (; i < g->n && strcmp(g->specs[i].name, reached[t]); i++) {}
        for (size_t j = 0; j < g->numel[i]; j++) s += fabs(x[j]);
        cr_expect_gt(s, 0.0, "no gradient reaches %s", reached[t]);
    }
    free(keep_buf);
    free(g1);
    mimn_free(m);
}

Test(mimn, config_checks)
{
    mimn_config cfg;
    mimn *m = (mimn *)1;
    mimn_config_default(&cfg, 10, 3);
    cr_expect_eq(cfg.mem_slots, 4);
    cr_expect_eq(cfg.d_ctrl, 36);
    cr_expect_eq(cfg.miu_k, 1);
    cr_expect_eq(cfg.bptt, 30);
    cr_expect_eq(mimn_state_floats(&cfg), 364u);
    cr_expect_eq(mimn_new(&m, &cfg, 4), 0);
    mimn_free(m);
    mimn_config c2 = cfg;
    c2.miu_k = 5; /* > m */
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    cr_expect_null(m);
    c2 = cfg;
    c2.miu_k = 0;
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.mem_slots = 0;
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.mem_slots = 65;
    c2.miu_k = 1;
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.bptt = 0;
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.d_ctrl = 0;
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.util_reg = -1.0f;
    cr_expect_eq(mimn_new(&m, &c2, 4), LSIM_E_INVAL);
    cr_expect_eq(mimn_new(&m, &cfg, 0), LSIM_E_INVAL);
    mimn_free(NULL);
}
