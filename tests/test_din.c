/*
 * test_din.c: the C DIN against the PyTorch DIN of tests/golden/gen_din.py.
 *
 * For each case of din.safetensors: load the weights and buffers, run a
 * training forward on the same batch (logits and loss within 1e-5 relative),
 * a backward (every parameter gradient within 1e-4 relative), compare the
 * running statistics after the step and an inference-mode forward; then the
 * same on the plain C reference kernels (nn_force_reference), which must
 * agree with the BLAS path. Tolerances as tu_compare_f32 applies them
 * (relative to each value, floored at 2% of the tensor's scale and 1e-6:
 * gradients that are zero in exact arithmetic, like the last bias before a
 * softmax, come out as float32 noise near 1e-10 in both implementations).
 */
#include "loaders/safetensors.h"
#include "lsim.h"
#include "esu/din.h"
#include "models/nn.h"
#include "models/nn_vmath.h"
#include "tests/model_fixture.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>






static void run_case(const char *prefix, int att_softmax, int long_avgpool, int reference)
{
    nn_force_reference(reference);
    st_file *f = mf_open("din.safetensors");
    const st_tensor *ei = mf_need(f, prefix, "emb.item"), *ec = mf_need(f, prefix, "emb.cat");
    const st_tensor *a1 = mf_need(f, prefix, "att.fc1.weight"), *a2 = mf_need(f, prefix, "att.fc2.weight");
    const st_tensor *m1 = mf_need(f, prefix, "mlp.fc1.weight"), *m2 = mf_need(f, prefix, "mlp.fc2.weight");
    din_config cfg;
    din_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1);
    cfg.d_item = (uint32_t)ei->shape[1];
    cfg.d_cat = (uint32_t)ec->shape[1];
    cfg.att_h1 = (uint32_t)a1->shape[0];
    cfg.att_h2 = (uint32_t)a2->shape[0];
    cfg.mlp_h1 = (uint32_t)m1->shape[0];
    cfg.mlp_h2 = (uint32_t)m2->shape[0];
    cfg.att_softmax = att_softmax;
    cfg.long_avgpool = long_avgpool;

    model_batch bt;
    mf_batch_mem mem;
    mf_batch(&bt, &mem, f, prefix);
    size_t B = bt.b;

    din *m;
    cr_assert_eq(din_new(&m, &cfg, B, bt.s, bt.k), 0);
    param_set *p = din_params(m), *g = din_grads(m), *bufs = din_buffers(m);
    mf_load(p, f, prefix, "");
    mf_load(bufs, f, prefix, "init.");

    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = din_forward(m, &bt, logits, 1);
    bad += mf_compare("logits", logits, mf_need(f, prefix, "logits"), MF_TOL_FWD);
    bad += mf_compare("loss", &loss, mf_need(f, prefix, "loss"), MF_TOL_FWD);
    param_set_zero(g);
    din_backward(m, &bt);
    bad += mf_check_step(g, bufs, f, prefix);
    din_forward(m, &bt, logits, 0);
    bad += mf_compare("logits_eval", logits, mf_need(f, prefix, "logits_eval"), MF_TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);

    free(logits);
    din_free(m);
    mf_batch_free(&mem);
    st_close(f);
    nn_force_reference(0);
}

Test(din, paper_form_matches_pytorch)
{
    run_case("a.", 0, 0, 0);
}

Test(din, paper_form_matches_pytorch_on_reference_kernels)
{
    run_case("a.", 0, 0, 1);
}

Test(din, softmax_and_long_avgpool_match_pytorch)
{
    run_case("b.", 1, 1, 0);
}

Test(din, softmax_and_long_avgpool_match_pytorch_on_reference_kernels)
{
    run_case("b.", 1, 1, 1);
}

/* One request: every candidate has the same history. At inference the
 * activation unit then takes its shared path (fc1 split by column blocks,
 * each distinct behavior of the history embedded and scored once, with its
 * count); it must score as the general path does, which
 * nn_force_reference(1) selects. */
static void shared_history_case(int att_softmax, uint32_t hist_cats)
{
    din_config cfg;
    din_config_default(&cfg, 100, 12);
    cfg.att_softmax = att_softmax;
    const size_t B = 37, S = 23;
    din *m;
    cr_assert_eq(din_new(&m, &cfg, B, S, 0), 0);
    din_init(m, 3);
    /* embeddings of order 1, so that every term of the split matters */
    param_set *p = din_params(m);
    uint64_t seed = 9;
    for (size_t i = 0; i < p->n; i++)
        if (strncmp(p->specs[i].name, "emb.", 4) == 0)
            for (size_t j = 0; j < p->numel[i]; j++)
                p->ptr[i][j] = (float)((double)(tu_rand(&seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    uint32_t ti[37], tc[37], hi[37 * 23], hc[37 * 23], hl[37];
    for (size_t b = 0; b < B; b++) {
        ti[b] = (uint32_t)(tu_rand(&seed) % 110); /* some out of vocabulary */
        tc[b] = (uint32_t)(tu_rand(&seed) % 13);
        hl[b] = 19;
        for (size_t j = 0; j < S; j++) {
            hi[b * S + j] = b == 0 || j >= 19 ? (uint32_t)(tu_rand(&seed) % 100) : hi[j];
            hc[b * S + j] = b == 0 || j >= 19 ? (uint32_t)(tu_rand(&seed) % hist_cats) : hc[j];
            if (b == 0 && j % 4 == 3) /* repeated behaviors: the shared path scores each once, with its count */
                hi[j] = hi[j - 2 - j % 3], hc[j] = hc[j - 2 - j % 3];
        }
    }
    model_batch bt = {.b = B, .target_item = ti, .target_cat = tc, .s = S, .hist_item = hi, .hist_cat = hc,
                      .hist_len = hl};
    float fast[37], ref[37];
    din_forward(m, &bt, fast, 0);
    nn_force_reference(1);
    din_forward(m, &bt, ref, 0);
    nn_force_reference(0);
    /* the same sums in another order (three partial products instead of one of 4E terms): 1e-4 */
    cr_assert_eq(tu_compare_f32("shared-history logits", fast, ref, B, 1e-4), 0,
                 "the shared-history path (softmax %d, %u categories) differs from the general path", att_softmax,
                 hist_cats);
    /* without AVX2 the shared path scores its pairs through GEMM tiles, not the fused kernel */
    float tiles[37];
    vm_allow_avx2(0);
    din_forward(m, &bt, tiles, 0);
    vm_allow_avx2(1);
    cr_assert_eq(tu_compare_f32("shared-history logits (GEMM tiles)", tiles, ref, B, 1e-4), 0,
                 "the shared-history path's tiles (softmax %d, %u categories) differ from the general path",
                 att_softmax, hist_cats);
    din_free(m);
}

Test(din, shared_history_path_equals_the_general_path)
{
    shared_history_case(0, 12); /* more categories than DIN_UNIT_GROUPS: W4 whole per pair */
    shared_history_case(1, 12);
    shared_history_case(0, 3); /* a few: the category term per (category, candidate) */
    shared_history_case(1, 3);
}
