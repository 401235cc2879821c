/*
 * test_dsin.c: the C DSIN against the PyTorch DSIN of tests/golden/gen_dsin.py
 * (sessions cut in Python, nn.TransformerEncoderLayer, nn.LSTM bidirectional,
 * two activation units, the head; float64 reference, float32 fixture).
 *
 * For each case of dsin.safetensors ("d.": sessions of 1 kept, K = 3, T = 4,
 * 2 heads, H != E; "m.": the official filter min_session_len = 3, K = 2,
 * T = 3, 4 heads, d_ffn and d_lstm left 0 = their defaults): load the weights
 * and buffers, run a training forward on the same batch and check the
 * sessions (count, lengths, positions) against Python's, logits and loss
 * within MF_TOL_FWD (1e-5), a backward with every parameter gradient within
 * MF_TOL_GRAD (1e-4), the running statistics after the step (1e-5) and an
 * inference-mode forward (1e-5); on the BLAS path and on the plain C
 * reference kernels (nn_force_reference). Tolerances as tu_compare_f32
 * applies them: relative to each value, floored at 2% of the tensor's
 * largest value (and 1e-6). The batch's hist rows beyond hist_len hold
 * random ids and timestamps: they must be ignored.
 * Also: the model's config checks; that a second forward/backward on the
 * same batch gives the same results (no state leaks between calls); session
 * division at the edges (no timestamps, int64 extremes, decreasing times,
 * hist_len > S).
 */
#include "loaders/safetensors.h"
#include "lsim.h"
#include "esu/dsin.h"
#include "models/nn.h"
#include "tests/model_fixture.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>






/* The sessions of every sample against the fixture's (B, K, T) positions, -1 at padding. */
static int check_sessions(const dsin *m, const st_tensor *lay, size_t B)
{
    size_t K = lay->shape[1], T = lay->shape[2];
    const int32_t *w = lay->data;
    int bad = 0;
    for (size_t b = 0; b < B; b++) {
        const uint32_t *len, *pos;
        size_t n = dsin_sessions(m, b, &len, &pos), want_n = 0;
        while (want_n < K && w[(b * K + want_n) * T] >= 0) want_n++;
        if (n != want_n) {
            fprintf(stderr, "sample %zu: %zu sessions, PyTorch %zu\n", b, n, want_n);
            bad++;
            continue;
        }
        for (size_t k = 0; k < K; k++) {
            size_t want_l = 0;
            while (want_l < T && w[(b * K + k) * T + want_l] >= 0) want_l++;
            if (len[k] != want_l) {
                fprintf(stderr, "sample %zu session %zu: length %u, PyTorch %zu\n", b, k, len[k], want_l);
                bad++;
                continue;
            }
            for (size_t t = 0; t < want_l; t++)
                if (pos[k * T + t] != (uint32_t)w[(b * K + k) * T + t]) {
                    fprintf(stderr, "sample %zu session %zu step %zu: position %u, PyTorch %d\n", b, k, t,
                            pos[k * T + t], w[(b * K + k) * T + t]);
                    bad++;
                }
        }
    }
    return bad;
}

static void run_case(const char *prefix, int reference)
{
    nn_force_reference(reference);
    st_file *f = mf_open("dsin.safetensors");
    const int32_t *dims = mf_need(f, prefix, "dims")->data;
    const st_tensor *ei = mf_need(f, prefix, "emb.item"), *ec = mf_need(f, prefix, "emb.cat");
    dsin_config cfg;
    dsin_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1);
    /* d_item, d_cat, K, T, heads, d_ffn, d_lstm, mlp_h1, mlp_h2, min_session_len */
    cfg.base.d_item = (uint32_t)dims[0];
    cfg.base.d_cat = (uint32_t)dims[1];
    cfg.max_sessions = (uint32_t)dims[2];
    cfg.session_len = (uint32_t)dims[3];
    cfg.heads = (uint32_t)dims[4];
    cfg.d_ffn = (uint32_t)dims[5];
    cfg.d_lstm = (uint32_t)dims[6];
    cfg.base.mlp_h1 = (uint32_t)dims[7];
    cfg.base.mlp_h2 = (uint32_t)dims[8];
    cfg.min_session_len = (uint32_t)dims[9];

    model_batch bt;
    mf_batch_mem mem;
    mf_batch(&bt, &mem, f, prefix);
    size_t B = bt.b;

    dsin *m;
    cr_assert_eq(dsin_new(&m, &cfg, B + 3, bt.s + 2), 0); /* larger than the batch: a batch may be smaller */
    param_set *p = dsin_params(m), *g = dsin_grads(m), *bufs = dsin_buffers(m);
    mf_load(p, f, prefix, "");
    mf_load(bufs, f, prefix, "init.");
    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = dsin_forward(m, &bt, logits, 1);
    bad += check_sessions(m, mf_need(f, prefix, "sessions"), B);
    bad += mf_compare("logits", logits, mf_need(f, prefix, "logits"), MF_TOL_FWD);
    bad += mf_compare("loss", &loss, mf_need(f, prefix, "loss"), MF_TOL_FWD);
    param_set_zero(g);
    dsin_backward(m, &bt);
    bad += mf_check_step(g, bufs, f, prefix);
    dsin_forward(m, &bt, logits, 0);
    bad += mf_compare("logits_eval", logits, mf_need(f, prefix, "logits_eval"), MF_TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(logits);
    dsin_free(m);
    mf_batch_free(&mem);
    st_close(f);
    nn_force_reference(0);
}

Test(dsin, matches_pytorch)
{
    run_case("d.", 0);
}

Test(dsin, matches_pytorch_on_reference_kernels)
{
    run_case("d.", 1);
}

Test(dsin, matches_pytorch_official_session_filter)
{
    run_case("m.", 0);
}

Test(dsin, matches_pytorch_official_session_filter_reference)
{
    run_case("m.", 1);
}

/* A second training step on the same batch with the running statistics
 * restored gives bit-identical logits and gradients: the model keeps no state
 * between calls besides what it documents. */
Test(dsin, repeatable)
{
    enum { B = 6, S = 12 };
    dsin_config cfg;
    dsin_config_default(&cfg, 50, 7);
    cfg.base.mlp_h1 = 16;
    cfg.base.mlp_h2 = 8;
    dsin *m;
    cr_assert_eq(dsin_new(&m, &cfg, B, S), 0);
    dsin_init(m, 3);
    uint32_t ti[B], tc[B], hi[B * S], hc[B * S], hl[B] = {0, 1, 12, 7, 12, 3};
    int64_t ts[B * S];
    float label[B] = {1, 0, 1, 0, 1, 1};
    uint64_t s = 5;
    for (size_t i = 0; i < B; i++) ti[i] = (uint32_t)(tu_rand(&s) % 55), tc[i] = (uint32_t)(tu_rand(&s) % 9);
    for (size_t i = 0; i < B * S; i++) {
        hi[i] = (uint32_t)(tu_rand(&s) % 55);
        hc[i] = (uint32_t)(tu_rand(&s) % 9);
        ts[i] = (i % S == 0 ? 1600000000 : ts[i - 1]) + (int64_t)(tu_rand(&s) % 4000);
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl, .hist_ts = ts, .label = label};
    param_set *g = dsin_grads(m), *bufs = dsin_buffers(m);
    float *keep_buf = malloc(bufs->total * sizeof(float)), *g1 = malloc(g->total * sizeof(float));
    memcpy(keep_buf, bufs->block, bufs->total * sizeof(float));
    float l1[B], l2[B];
    float loss1 = dsin_forward(m, &bt, l1, 1);
    param_set_zero(g);
    dsin_backward(m, &bt);
    memcpy(g1, g->block, g->total * sizeof(float));
    memcpy(bufs->block, keep_buf, bufs->total * sizeof(float));
    float loss2 = dsin_forward(m, &bt, l2, 1);
    param_set_zero(g);
    dsin_backward(m, &bt);
    cr_expect_eq(loss1, loss2);
    cr_expect_eq(memcmp(l1, l2, sizeof l1), 0, "logits differ on a repeated step");
    cr_expect_eq(memcmp(g1, g->block, g->total * sizeof(float)), 0, "gradients differ on a repeated step");
    for (size_t i = 0; i < g->total; i++) cr_assert(isfinite(g->block[i]), "gradient %zu not finite", i);
    free(keep_buf);
    free(g1);
    dsin_free(m);
}

/* Session division at the edges: no timestamps (one session), timestamps
 * at the ends of int64 (no overflow), decreasing timestamps (no gap), a
 * hist_len beyond S (clamped). */
Test(dsin, session_edges)
{
    enum { B = 3, S = 6 };
    dsin_config cfg;
    dsin_config_default(&cfg, 20, 4);
    cfg.base.d_item = cfg.base.d_cat = 4;
    cfg.base.mlp_h1 = 8;
    cfg.base.mlp_h2 = 4;
    cfg.session_len = 4;
    dsin *m;
    cr_assert_eq(dsin_new(&m, &cfg, B, S), 0);
    uint32_t ti[B] = {1, 2, 3}, tc[B] = {0, 1, 2}, hi[B * S], hc[B * S], hl[B] = {3, 4, 9};
    for (size_t i = 0; i < B * S; i++) hi[i] = (uint32_t)i % 20, hc[i] = (uint32_t)i % 4;
    int64_t ts[B * S] = {INT64_MIN, INT64_MAX, INT64_MAX, 0, 0, 0, 1000, 500, 0, 5000, 0, 0,
                         7, 7, 7, 7, 7, 7};
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl, .hist_ts = NULL, .label = NULL};
    float logits[B], logits_same_ts[B];
    const uint32_t *len, *pos;
    /* without timestamps: one session, the last T = 4 behaviors */
    dsin_forward(m, &bt, logits, 0);
    static const uint32_t want_len0[B] = {3, 4, 4}, want_first0[B] = {0, 0, 2};
    for (size_t b = 0; b < B; b++) {
        cr_expect_eq(dsin_sessions(m, b, &len, &pos), 1, "sample %zu: sessions without timestamps", b);
        cr_expect_eq(len[0], want_len0[b], "sample %zu: length", b);
        for (size_t t = 0; t < len[0]; t++) cr_expect_eq(pos[t], want_first0[b] + t, "sample %zu: position", b);
        for (size_t k = 1; k < cfg.max_sessions; k++) cr_expect_eq(len[k], 0);
    }
    /* equal timestamps everywhere: the same sessions, the same logits */
    int64_t same[B * S];
    for (size_t i = 0; i < B * S; i++) same[i] = 42;
    bt.hist_ts = same;
    dsin_forward(m, &bt, logits_same_ts, 0);
    cr_expect_eq(memcmp(logits, logits_same_ts, sizeof logits), 0, "no timestamps != equal timestamps");
    /* the edge timestamps */
    bt.hist_ts = ts;
    dsin_forward(m, &bt, logits, 0);
    cr_expect_eq(dsin_sessions(m, 0, &len, &pos), 2, "INT64_MIN -> INT64_MAX is a gap");
    cr_expect(len[0] == 1 && len[1] == 2 && pos[0] == 0 && pos[4] == 1 && pos[5] == 2);
    cr_expect_eq(dsin_sessions(m, 1, &len, &pos), 2, "decreasing timestamps are no gap");
    cr_expect(len[0] == 3 && len[1] == 1 && pos[0] == 0 && pos[2] == 2 && pos[4] == 3);
    cr_expect_eq(dsin_sessions(m, 2, &len, &pos), 1, "hist_len beyond S");
    cr_expect(len[0] == 4 && pos[0] == 2 && pos[3] == 5);
    for (size_t b = 0; b < B; b++) cr_expect(isfinite(logits[b]));
    dsin_free(m);
}

Test(dsin, config_checks)
{
    dsin_config cfg;
    dsin *m = (dsin *)1;
    dsin_config_default(&cfg, 10, 3);
    cr_expect_eq(cfg.max_sessions, 5);
    cr_expect_eq(cfg.session_len, 10);
    cr_expect_eq(cfg.min_session_len, 1);
    cr_expect_eq(cfg.session_gap, 1800);
    cr_expect_eq((cfg.base.d_item + cfg.base.d_cat) % cfg.heads, 0);
    cr_expect_eq(dsin_new(&m, &cfg, 4, 8), 0);
    dsin_free(m);
    dsin_config c2 = cfg;
    c2.heads = 5; /* 36 % 5 != 0 */
    cr_expect_eq(dsin_new(&m, &c2, 4, 8), LSIM_E_INVAL);
    cr_expect_null(m);
    c2 = cfg;
    c2.max_sessions = 0;
    cr_expect_eq(dsin_new(&m, &c2, 4, 8), LSIM_E_INVAL);
    c2 = cfg;
    c2.session_gap = -1;
    cr_expect_eq(dsin_new(&m, &c2, 4, 8), LSIM_E_INVAL);
    cr_expect_eq(dsin_new(&m, &cfg, 0, 8), LSIM_E_INVAL);
    dsin_free(NULL);
}

/* One request: every candidate has the same history, so at inference the
 * sessions, the transformer and the Bi-LSTM run once; scores must equal the
 * general path's (nn_force_reference(1)). */
Test(dsin, shared_history_path_equals_the_general_path)
{
    dsin_config cfg;
    dsin_config_default(&cfg, 60, 7);
    cfg.base.d_item = 6;
    cfg.base.d_cat = 6;
    cfg.base.mlp_h1 = 16;
    cfg.base.mlp_h2 = 8;
    const size_t B = 19, S = 24;
    dsin *m;
    cr_assert_eq(dsin_new(&m, &cfg, B, S), 0);
    dsin_init(m, 6);
    param_set *p = dsin_params(m);
    uint64_t seed = 29;
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = 0; j < p->numel[i]; j++)
            p->ptr[i][j] += (float)((double)(tu_rand(&seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 0.3f;
    static uint32_t ti[19], tc[19], hi[19 * 24], hc[19 * 24], hl[19];
    static int64_t ts[19 * 24];
    for (size_t b = 0; b < B; b++) {
        ti[b] = (uint32_t)(tu_rand(&seed) % 65);
        tc[b] = (uint32_t)(tu_rand(&seed) % 8);
        hl[b] = 22;
        for (size_t j = 0; j < S; j++) {
            hi[b * S + j] = b ? hi[j] : (uint32_t)(tu_rand(&seed) % 60);
            hc[b * S + j] = b ? hc[j] : (uint32_t)(tu_rand(&seed) % 7);
            ts[b * S + j] = b ? ts[j] : 1500000000 + (int64_t)j * 700 + (j % 5 == 0 ? (int64_t)j * 4000 : 0);
        }
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl, .hist_ts = ts};
    float fast[19], ref[19];
    dsin_forward(m, &bt, fast, 0);
    nn_force_reference(1);
    dsin_forward(m, &bt, ref, 0);
    nn_force_reference(0);
    cr_assert_eq(tu_compare_f32("shared-history logits", fast, ref, B, 1e-4), 0,
                 "the shared-history path differs from the general path");
    dsin_free(m);
}
