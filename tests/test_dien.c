/*
 * test_dien.c: the C DIEN against the PyTorch DIEN of tests/golden/gen_dien.py
 * (GRU extractor, auxiliary loss with negatives, attention, AUGRU, head).
 *
 * For each case of din.safetensors: load the weights and buffers, run a
 * training forward on the same batch (logits and loss within 1e-5 relative),
 * a backward (every parameter gradient within 1e-4 relative), compare the
 * running statistics after the step and an inference-mode forward; then the
 * same on the plain C reference kernels (nn_force_reference), which must
 * agree with the BLAS path. Tolerances as tu_compare_f32 applies them
 * (relative to each value, floored at 1% of the tensor's scale and 1e-6:
 * gradients that are zero in exact arithmetic, like the last bias before a
 * softmax, come out as float32 noise near 1e-10 in both implementations).
 */
#include "loaders/safetensors.h"
#include "lsim.h"
#include "esu/dien.h"
#include "esu/sim.h"
#include "models/params.h"
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
    st_file *f = mf_open("dien.safetensors");
    const int32_t *dims = mf_need(f, prefix, "dims")->data;
    const st_tensor *ei = mf_need(f, prefix, "emb.item"), *ec = mf_need(f, prefix, "emb.cat");
    dien_config cfg;
    dien_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1);
    cfg.base.d_item = (uint32_t)dims[0];
    cfg.base.d_cat = (uint32_t)dims[1];
    cfg.base.mlp_h1 = (uint32_t)dims[2];
    cfg.base.mlp_h2 = (uint32_t)dims[3];

    model_batch bt;
    mf_batch_mem mem;
    mf_batch(&bt, &mem, f, prefix);
    size_t B = bt.b;

    dien *m;
    cr_assert_eq(dien_new(&m, &cfg, B, bt.s), 0);
    param_set *p = dien_params(m), *g = dien_grads(m), *bufs = dien_buffers(m);
    mf_load(p, f, prefix, "");
    mf_load(bufs, f, prefix, "init.");
    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = dien_forward(m, &bt, logits, 1);
    bad += mf_compare("logits", logits, mf_need(f, prefix, "logits"), MF_TOL_FWD);
    bad += mf_compare("loss", &loss, mf_need(f, prefix, "loss"), MF_TOL_FWD);
    param_set_zero(g);
    dien_backward(m, &bt);
    bad += mf_check_step(g, bufs, f, prefix);
    dien_forward(m, &bt, logits, 0);
    bad += mf_compare("logits_eval", logits, mf_need(f, prefix, "logits_eval"), MF_TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(logits);
    dien_free(m);
    mf_batch_free(&mem);
    st_close(f);
    nn_force_reference(0);
}

Test(dien, matches_pytorch)
{
    run_case("d.", 0);
}

Test(dien, matches_pytorch_on_reference_kernels)
{
    run_case("d.", 1);
}

/* One request: every candidate has the same history, so at inference the
 * extractor GRU runs once; scores must equal the general path's
 * (nn_force_reference(1)). */
Test(dien, shared_history_path_equals_the_general_path)
{
    dien_config cfg;
    dien_config_default(&cfg, 80, 9);
    cfg.base.d_item = 6;
    cfg.base.d_cat = 4;
    const size_t B = 21, S = 15;
    dien *m;
    cr_assert_eq(dien_new(&m, &cfg, B, S), 0);
    dien_init(m, 5);
    param_set *p = dien_params(m);
    uint64_t seed = 23;
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = 0; j < p->numel[i]; j++)
            p->ptr[i][j] = (float)((double)(tu_rand(&seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 0.5f;
    static uint32_t ti[21], tc[21], hi[21 * 15], hc[21 * 15], hl[21];
    for (size_t b = 0; b < B; b++) {
        ti[b] = (uint32_t)(tu_rand(&seed) % 85);
        tc[b] = (uint32_t)(tu_rand(&seed) % 10);
        hl[b] = 13;
        for (size_t j = 0; j < S; j++) {
            hi[b * S + j] = b ? hi[j] : (uint32_t)(tu_rand(&seed) % 80);
            hc[b * S + j] = b ? hc[j] : (uint32_t)(tu_rand(&seed) % 9);
        }
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl};
    float fast[21], ref[21];
    dien_forward(m, &bt, fast, 0);
    nn_force_reference(1);
    dien_forward(m, &bt, ref, 0);
    nn_force_reference(0);
    cr_assert_eq(tu_compare_f32("shared-history logits", fast, ref, B, 1e-4), 0,
                 "the shared-history path differs from the general path");
    dien_free(m);
}

/* The attention's W starts as the identity (esu/dien_branch.h), in DIEN and in SIM's DIEN
 * branch, for every seed; the other weights stay random. */
static void check_identity(const param_set *p, size_t E, uint64_t seed, const char *what)
{
    const float *w = param_find(p, "dien.att.w"), *gw = param_find(p, "dien.gru.w");
    cr_assert(w && gw);
    for (size_t i = 0; i < E; i++)
        for (size_t j = 0; j < E; j++)
            cr_assert_eq(w[i * E + j], i == j ? 1.0f : 0.0f, "%s, seed %llu: att.w[%zu][%zu] = %g", what,
                         (unsigned long long)seed, i, j, (double)w[i * E + j]);
    size_t nonzero = 0;
    for (size_t i = 0; i < 3 * E * E; i++) nonzero += gw[i] != 0.0f;
    cr_assert_gt(nonzero, 3 * E * E / 2, "%s, seed %llu: the GRU's weights are not random", what,
                 (unsigned long long)seed);
}

Test(dien, init_starts_the_attention_at_the_identity)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        dien_config cfg;
        dien_config_default(&cfg, 50, 7);
        cfg.base.d_item = 6;
        cfg.base.d_cat = 4;
        dien *m;
        cr_assert_eq(dien_new(&m, &cfg, 4, 5), 0);
        dien_init(m, seed);
        check_identity(dien_params(m), 10, seed, "DIEN");
        dien_free(m);

        sim_config sc;
        sim_config_default(&sc, 50, 7, SIM_GSU_HARD, 0);
        sc.branch = SIM_BRANCH_DIEN;
        sim *s;
        cr_assert_eq(sim_new(&s, &sc, 4, 5, 3), 0);
        sim_init(s, seed);
        check_identity(sim_params(s), sc.base.d_item + sc.base.d_cat, seed, "SIM's DIEN branch");
        sim_free(s);
    }
}
