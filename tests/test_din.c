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
