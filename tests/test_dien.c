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
#include "models/nn.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4

static st_file *open_fixture(void)
{
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/tests/golden/dien.safetensors", root ? root : ".");
    st_file *f = NULL;
    cr_assert_eq(st_open(&f, path, err, sizeof err), 0, "%s", err);
    return f;
}

static const st_tensor *need(const st_file *f, const char *prefix, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const st_tensor *t = st_find(f, full);
    cr_assert(t, "fixture has no tensor %s", full);
    return t;
}

/* int32 fixture ids -> uint32 */
static uint32_t *ids(const st_file *f, const char *prefix, const char *name, size_t *n)
{
    const st_tensor *t = need(f, prefix, name);
    cr_assert_eq(t->dtype, ST_I32);
    uint32_t *v = malloc(t->numel * sizeof *v + 1);
    const int32_t *src = t->data;
    for (size_t i = 0; i < t->numel; i++) v[i] = (uint32_t)src[i];
    if (n) *n = t->numel;
    return v;
}

static int compare(const char *what, const float *got, const st_tensor *want, double tol)
{
    cr_assert_eq(want->dtype, ST_F32, "%s: fixture dtype", what);
    return tu_compare_f32(what, got, want->data, want->numel, tol);
}

static void run_case(const char *prefix, int reference)
{
    nn_force_reference(reference);
    st_file *f = open_fixture();
    const int32_t *dims = need(f, prefix, "dims")->data;
    const st_tensor *ei = need(f, prefix, "emb.item"), *ec = need(f, prefix, "emb.cat");
    dien_config cfg;
    dien_config_default(&cfg, (uint32_t)ei->shape[0] - 1, (uint32_t)ec->shape[0] - 1);
    cfg.base.d_item = (uint32_t)dims[0];
    cfg.base.d_cat = (uint32_t)dims[1];
    cfg.base.mlp_h1 = (uint32_t)dims[2];
    cfg.base.mlp_h2 = (uint32_t)dims[3];

    size_t B, BS, BK;
    model_batch bt = {0};
    uint32_t *ti = ids(f, prefix, "target_item", &B), *tc = ids(f, prefix, "target_cat", NULL);
    uint32_t *hi = ids(f, prefix, "hist_item", &BS), *hc = ids(f, prefix, "hist_cat", NULL);
    uint32_t *hl = ids(f, prefix, "hist_len", NULL);
    uint32_t *li = ids(f, prefix, "hist_neg_item", &BK), *lc = ids(f, prefix, "hist_neg_cat", NULL);
    uint32_t *ll = NULL;
    bt.b = B;
    bt.target_item = ti;
    bt.target_cat = tc;
    bt.s = BS / B;
    bt.hist_item = hi;
    bt.hist_cat = hc;
    bt.hist_len = hl;
    bt.hist_neg_item = li;
    bt.hist_neg_cat = lc;
    (void)BK;
    bt.label = need(f, prefix, "label")->data;

    dien *m;
    cr_assert_eq(dien_new(&m, &cfg, B, bt.s), 0);
    param_set *p = dien_params(m), *g = dien_grads(m), *bufs = dien_buffers(m);
    for (size_t i = 0; i < p->n; i++) {
        const st_tensor *t = need(f, prefix, p->specs[i].name);
        cr_assert(t->dtype == ST_F32 && t->numel == p->numel[i], "dtype or shape of %s", p->specs[i].name);
        memcpy(p->ptr[i], t->data, t->nbytes);
    }
    for (size_t i = 0; i < bufs->n; i++) {
        char name[128];
        snprintf(name, sizeof name, "init.%s", bufs->specs[i].name);
        const st_tensor *t = need(f, prefix, name);
        cr_assert(t->dtype == ST_F32 && t->numel == bufs->numel[i], "dtype or shape of %s", name);
        memcpy(bufs->ptr[i], t->data, t->nbytes);
    }
    int bad = 0;
    float *logits = malloc(B * sizeof *logits);
    float loss = dien_forward(m, &bt, logits, 1);
    bad += compare("logits", logits, need(f, prefix, "logits"), TOL_FWD);
    bad += compare("loss", &loss, need(f, prefix, "loss"), TOL_FWD);
    param_set_zero(g);
    dien_backward(m, &bt);
    for (size_t i = 0; i < g->n; i++) {
        char name[128];
        snprintf(name, sizeof name, "grad.%s", g->specs[i].name);
        bad += compare(name, g->ptr[i], need(f, prefix, name), TOL_GRAD);
    }
    for (size_t i = 0; i < bufs->n; i++) {
        char name[128];
        snprintf(name, sizeof name, "after.%s", bufs->specs[i].name);
        bad += compare(name, bufs->ptr[i], need(f, prefix, name), TOL_FWD);
    }
    dien_forward(m, &bt, logits, 0);
    bad += compare("logits_eval", logits, need(f, prefix, "logits_eval"), TOL_FWD);
    cr_assert_eq(bad, 0, "case %s (%s kernels): %d values differ from PyTorch", prefix,
                 reference ? "reference" : "BLAS", bad);
    free(logits);
    dien_free(m);
    free(ti);
    free(tc);
    free(hi);
    free(hc);
    free(hl);
    free(li);
    free(lc);
    free(ll);
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
