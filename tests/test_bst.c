/*
 * test_bst.c: the C BST against the PyTorch BST of tests/golden/gen_bst.py
 * (time-gap buckets in Python, nn.TransformerEncoderLayer with a padding
 * mask, the right-aligned flattening, the head; float64 reference, float32
 * fixture).
 *
 * For each case of bst.safetensors ("b.": L = 4, C = 12, 3 heads, 6 buckets,
 * samples of 0, 1, L and more than L behaviors, gaps of 0 and beyond the last
 * bucket; "c.": L = 3, C = 16, 2 heads, d_ffn 0 = 4 C, 24 buckets): load the
 * weights and buffers, run a training forward on the same batch, logits and
 * loss within MF_TOL_FWD (1e-5), a backward with every parameter gradient
 * within MF_TOL_GRAD (1e-4), the running statistics after the step (1e-5) and
 * an inference-mode forward (1e-5); on the BLAS path and on the plain C
 * reference kernels (nn_force_reference). Tolerances as tu_compare_f32
 * applies them (relative, floored at 2% of the tensor's largest value). The
 * batch's hist rows beyond hist_len hold random ids and timestamps: they
 * must be ignored.
 * Also: config checks; a repeated step is bit-identical; no timestamps means
 * every bucket 0; a hist_len beyond S is clamped.
 */
#include "loaders/safetensors.h"
#include "lsim.h"
#include "esu/bst.h"
#include "models/nn.h"
#include "tests/model_fixture.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_case(const char *prefix, int reference)
{
    nn_force_reference(reference);
    st_file *f = mf_open("bst.safetensors");
    const int32_t *dims = mf_need(f, prefix, "dims")->data;
    const st_tensor *ei = mf_need(f, prefix, "emb.item"), *ec = mf_need(f, prefix, "emb.cat");
    bst_config cfg;
    bst_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1);
    /* d_item, d_cat, L, P, n_buckets, heads, d_ffn, mlp_h1, mlp_h2 */
    cfg.base.d_item = (uint32_t)dims[0];
    cfg.base.d_cat = (uint32_t)dims[1];
    cfg.seq_len = (uint32_t)dims[2];
    cfg.d_pos = (uint32_t)dims[3];
    cfg.time_buckets = (uint32_t)dims[4];
    cfg.heads = (uint32_t)dims[5];
    cfg.d_ffn = (uint32_t)dims[6];
    cfg.base.mlp_h1 = (uint32_t)dims[7];
    cfg.base.mlp_h2 = (uint32_t)dims[8];

    model_batch bt;
    mf_batch_mem mem;
    mf_batch(&bt, &mem, f, prefix);
    cr_assert(bt.hist_ts && bt.now);
    size_t B = bt.b;

    bst *m;
    cr_assert_eq(bst_new(&m, &cfg, B + 3), 0); /* larger than the batch: a batch may be smaller */
    param_set *p = bst_params(m), *g = bst_grads(m), *bufs = bst_buffers(m);
    mf_load(p, f, prefix, "");
    mf_load(bufs, f, prefix, "init.");
    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = bst_forward(m, &bt, logits, 1);
    bad += mf_compare("logits", logits, mf_need(f, prefix, "logits"), MF_TOL_FWD);
    bad += mf_compare("loss", &loss, mf_need(f, prefix, "loss"), MF_TOL_FWD);
    param_set_zero(g);
    bst_backward(m, &bt);
    bad += mf_check_step(g, bufs, f, prefix);
    bst_forward(m, &bt, logits, 0);
    bad += mf_compare("logits_eval", logits, mf_need(f, prefix, "logits_eval"), MF_TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(logits);
    bst_free(m);
    mf_batch_free(&mem);
    st_close(f);
    nn_force_reference(0);
}

Test(bst, matches_pytorch) { run_case("b.", 0); }
Test(bst, matches_pytorch_on_reference_kernels) { run_case("b.", 1); }
Test(bst, matches_pytorch_default_ffn) { run_case("c.", 0); }
Test(bst, matches_pytorch_default_ffn_reference) { run_case("c.", 1); }

enum { RB = 5, RS = 26 };

static void random_batch(model_batch *bt, uint32_t *ti, uint32_t *tc, uint32_t *hi, uint32_t *hc, uint32_t *hl,
                         int64_t *ts, int64_t *now, float *label)
{
    uint64_t s = 5;
    static const uint32_t lens[RB] = {0, 1, 26, 7, 20};
    for (size_t i = 0; i < RB; i++) {
        ti[i] = (uint32_t)(tu_rand(&s) % 55);
        tc[i] = (uint32_t)(tu_rand(&s) % 9);
        hl[i] = lens[i];
        label[i] = (float)(i % 2);
        now[i] = 1700000000;
    }
    for (size_t i = 0; i < RB * RS; i++) {
        hi[i] = (uint32_t)(tu_rand(&s) % 55);
        hc[i] = (uint32_t)(tu_rand(&s) % 9);
        ts[i] = 1600000000 + (int64_t)(i % RS) * 3000000 + (int64_t)(tu_rand(&s) % 4000);
    }
    *bt = (model_batch){.b = RB, .target_item = ti, .target_cat = tc, .s = RS, .hist_item = hi, .hist_cat = hc,
                        .hist_len = hl, .hist_ts = ts, .now = now, .label = label};
}

/* A second training step on the same batch with the running statistics
 * restored gives bit-identical logits and gradients. */
Test(bst, repeatable)
{
    bst_config cfg;
    bst_config_default(&cfg, 50, 7);
    cfg.base.mlp_h1 = 16;
    cfg.base.mlp_h2 = 8;
    bst *m;
    cr_assert_eq(bst_new(&m, &cfg, RB), 0);
    bst_init(m, 3);
    uint32_t ti[RB], tc[RB], hi[RB * RS], hc[RB * RS], hl[RB];
    int64_t ts[RB * RS], now[RB];
    float label[RB];
    model_batch bt;
    random_batch(&bt, ti, tc, hi, hc, hl, ts, now, label);
    param_set *g = bst_grads(m), *bufs = bst_buffers(m);
    float *keep_buf = malloc(bufs->total * sizeof(float)), *g1 = malloc(g->total * sizeof(float));
    memcpy(keep_buf, bufs->block, bufs->total * sizeof(float));
    float l1[RB], l2[RB];
    float loss1 = bst_forward(m, &bt, l1, 1);
    param_set_zero(g);
    bst_backward(m, &bt);
    memcpy(g1, g->block, g->total * sizeof(float));
    memcpy(bufs->block, keep_buf, bufs->total * sizeof(float));
    float loss2 = bst_forward(m, &bt, l2, 1);
    param_set_zero(g);
    bst_backward(m, &bt);
    cr_expect_eq(loss1, loss2);
    cr_expect_eq(memcmp(l1, l2, sizeof l1), 0, "logits differ on a repeated step");
    cr_expect_eq(memcmp(g1, g->block, g->total * sizeof(float)), 0, "gradients differ on a repeated step");
    for (size_t i = 0; i < g->total; i++) cr_assert(isfinite(g->block[i]), "gradient %zu not finite", i);
    free(keep_buf);
    free(g1);
    bst_free(m);
}

/* Without timestamps (or without now) every bucket is 0: the same logits as
 * timestamps equal to now; a hist_len beyond S reads the last L of S. */
Test(bst, time_and_length_edges)
{
    bst_config cfg;
    bst_config_default(&cfg, 50, 7);
    cfg.base.mlp_h1 = 16;
    cfg.base.mlp_h2 = 8;
    bst *m;
    cr_assert_eq(bst_new(&m, &cfg, RB), 0);
    bst_init(m, 4);
    uint32_t ti[RB], tc[RB], hi[RB * RS], hc[RB * RS], hl[RB];
    int64_t ts[RB * RS], now[RB];
    float label[RB], a[RB], b[RB], c[RB];
    model_batch bt;
    random_batch(&bt, ti, tc, hi, hc, hl, ts, now, label);
    bt.hist_ts = NULL;
    bst_forward(m, &bt, a, 0);
    bt.hist_ts = ts;
    bt.now = NULL;
    bst_forward(m, &bt, b, 0);
    for (size_t i = 0; i < RB * RS; i++) ts[i] = now[0];
    bt.now = now;
    bst_forward(m, &bt, c, 0);
    cr_expect_eq(memcmp(a, b, sizeof a), 0, "no hist_ts != no now");
    cr_expect_eq(memcmp(a, c, sizeof a), 0, "no timestamps != gaps of 0");
    hl[2] = 1000; /* beyond S = 26: the same as 26 */
    bst_forward(m, &bt, b, 0);
    cr_expect_eq(memcmp(c, b, sizeof c), 0, "hist_len beyond S not clamped");
    for (size_t i = 0; i < RB; i++) cr_expect(isfinite(a[i]));
    bst_free(m);
}

Test(bst, config_checks)
{
    bst_config cfg;
    bst *m = (bst *)1;
    bst_config_default(&cfg, 10, 3);
    cr_expect_eq(cfg.seq_len, 20);
    cr_expect_eq(cfg.heads, 8);
    cr_expect_eq((cfg.base.d_item + cfg.base.d_cat + cfg.d_pos) % cfg.heads, 0);
    cr_expect_eq(bst_new(&m, &cfg, 4), 0);
    bst_free(m);
    bst_config c2 = cfg;
    c2.heads = 5; /* 48 % 5 != 0 */
    cr_expect_eq(bst_new(&m, &c2, 4), LSIM_E_INVAL);
    cr_expect_null(m);
    c2 = cfg;
    c2.seq_len = 0;
    cr_expect_eq(bst_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.d_pos = 0;
    cr_expect_eq(bst_new(&m, &c2, 4), LSIM_E_INVAL);
    c2 = cfg;
    c2.time_buckets = 0;
    cr_expect_eq(bst_new(&m, &c2, 4), LSIM_E_INVAL);
    cr_expect_eq(bst_new(&m, &cfg, 0), LSIM_E_INVAL);
    bst_free(NULL);
}
