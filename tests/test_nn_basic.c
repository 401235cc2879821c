/*
 * test_nn_basic.c: the basic kernels of models/nn.h (models/nn_basic.c).
 *
 * What it checks:
 *   1. every kernel, forward and backward, against PyTorch's results in
 *      tests/golden/nn_basic.safetensors (written by gen_nn_basic.py; found
 *      as $LSIM_SOURCE_ROOT/tests/golden/..., default "."), on both the
 *      BLAS and the reference path. Tolerances, per element, relative with
 *      a floor of 1: |got - want| <= TOL * max(1, |want|), TOL = FWD_TOL
 *      (1e-5) for outputs and saved statistics, GRAD_TOL (1e-4) for
 *      gradients. The first mismatches are printed (index, got, want);
 *   2. every gradient against central differences of the scalar loss
 *      L = sum(out * dout), accumulated in double, on random inputs
 *      (step FD_H; tolerance FD_TOL, again relative with a floor of 1);
 *   3. linear's BLAS path against its reference on random shapes, edge
 *      sizes included (1, odd, a few hundred), tolerance LIN_TOL relative to
 *      the sum of the magnitudes of the products that make each entry;
 *   4. backward accumulates: a second call adds the same gradient again,
 *      and NULL gradient pointers are skipped;
 *   and the switches (nn_force_reference, LSIM_NN_REFERENCE read once).
 * LSIM_TEST_VERBOSE=1 logs the worst error of every comparison.
 * What it is not: a benchmark; the fixture is small and the test is fast.
 */
#include "loaders/safetensors.h"
#include "lsim.h"
#include "models/nn.h"
#include "models/nn_vmath.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5   /* outputs vs PyTorch, relative, floor 1 */
#define GRAD_TOL 1e-4  /* gradients vs PyTorch, relative, floor 1 */
#define FD_H 1e-3f     /* central-difference step */
#define FD_TOL 2e-3    /* finite differences vs analytic gradients, relative, floor 1 */
#define LIN_TOL 1e-5   /* BLAS vs reference, relative to sum |products|, floor 1 */
#define ACC_TOL 1e-6   /* second backward call == twice the first, relative, floor 1 */
#define SHOW 6         /* mismatches printed per comparison */

/* ---- comparison ---- */

/* Counts entries with |got - want| > tol * max(floor_i, |want|) (floor_i = 1,
 * or scale[i] when scale is given) and prints the first SHOW of them. */
static size_t mismatches(const char *what, const float *got, const float *want, const double *scale, size_t n,
                         double tol)
{
    size_t bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], w = want[i];
        double ref = fabs(w) > 1.0 ? fabs(w) : 1.0;
        if (scale != NULL && scale[i] > ref)
            ref = scale[i];
        const double err = fabs(g - w) / ref;
        if (err > worst || isnan(err))
            worst = isnan(err) ? INFINITY : err;
        if (!(err <= tol)) {
            if (bad < SHOW)
                cr_log_error("%s[%zu]: got %.9g want %.9g (rel err %.3g > %.1g)", what, i, g, w, err, tol);
            bad++;
        }
    }
    if (bad > 0)
        cr_log_error("%s: %zu of %zu entries off (worst rel err %.3g, tol %.1g)", what, bad, n, worst, tol);
    else if (getenv("LSIM_TEST_VERBOSE") != NULL)
        cr_log_info("%s: %zu entries, worst rel err %.3g (tol %.1g)", what, n, worst, tol);
    return bad;
}

#define EXPECT_CLOSE(what, got, want, n, tol) cr_expect_eq(mismatches((what), (got), (want), NULL, (n), (tol)), 0)

/* ---- random inputs ---- */

static float urand(uint64_t *s, float lo, float hi) /* uniform in [lo, hi) */
{
    return lo + (hi - lo) * (float)((double)(tu_rand(s) >> 11) * 0x1.0p-53);
}

static float *rand_buf(uint64_t *s, size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = urand(s, lo, hi);
    return p;
}

/* Random values in +-[margin, hi): away from the kinks of relu / prelu. */
static float *rand_away(uint64_t *s, size_t n, float margin, float hi)
{
    float *p = rand_buf(s, n, margin, hi);
    for (size_t i = 0; i < n; i++)
        if (tu_rand(s) & 1)
            p[i] = -p[i];
    return p;
}

static float *zeros(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    cr_assert_not_null(p);
    return p;
}

/* Forward outputs start as NaN: a kernel that leaves an entry unwritten fails. */
static float *nans(size_t n)
{
    float *p = zeros(n);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static float *copy_of(const float *src, size_t n)
{
    float *p = zeros(n);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* ==== 1. against PyTorch ==== */

static st_file *fx;

static void fixture_open(void)
{
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/tests/golden/nn_basic.safetensors", root && *root ? root : ".");
    int rc = st_open(&fx, path, err, sizeof err);
    cr_assert_eq(rc, 0, "cannot open the fixture %s (%s); run tests/golden/gen_nn_basic.py", path, err);
}

static void fixture_close(void)
{
    st_close(fx);
    fx = NULL;
}

TestSuite(nn_fixture, .init = fixture_open, .fini = fixture_close);

/* The F32 tensor `name`, checked by st_get to have exactly the shape
 * (d0, d1, d2) with trailing zeros dropped: (n, 0, 0) is 1-D [n]. Fails the
 * test otherwise. */
static const float *fx_get(const char *name, size_t d0, size_t d1, size_t d2)
{
    uint64_t shape[3] = {d0, d1, d2};
    size_t ndim = d0 == 0 ? 0 : d1 == 0 ? 1 : d2 == 0 ? 2 : 3;
    const void *data = NULL;
    char err[512];
    int rc = st_get(fx, name, ST_F32, ndim, shape, &data, err, sizeof err);
    cr_assert_eq(rc, 0, "fixture: %s", err);
    return data;
}

/* Dimension `d` of tensor `name`. */
static size_t fx_dim(const char *name, size_t d)
{
    const st_tensor *t = st_find(fx, name);
    cr_assert_not_null(t, "fixture: no tensor %s", name);
    cr_assert_gt(t->ndim, d, "fixture: %s has %zu dims", name, t->ndim);
    return (size_t)t->shape[d];
}

static float fx_scalar(const char *name)
{
    return fx_get(name, 1, 0, 0)[0];
}

/* An I64 tensor of n entries in [0, 2^32) as uint32 (caller frees). */
static uint32_t *fx_ids(const char *name, size_t n)
{
    uint64_t shape[1] = {n};
    const void *data = NULL;
    char err[512];
    cr_assert_eq(st_get(fx, name, ST_I64, 1, shape, &data, err, sizeof err), 0, "fixture: %s", err);
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    cr_assert_not_null(ids);
    for (size_t i = 0; i < n; i++) {
        const int64_t v = ((const int64_t *)data)[i];
        cr_assert(v >= 0 && v <= (int64_t)UINT32_MAX, "fixture: %s[%zu] = %lld", name, i, (long long)v);
        ids[i] = (uint32_t)v;
    }
    return ids;
}

static void fixture_linear(const char *cs, int ref)
{
    char nm[64], what[96];
#define NM(x) (snprintf(nm, sizeof nm, "%s.%s", cs, x), nm)
#define WHAT(x) (snprintf(what, sizeof what, "%s.%s (%s)", cs, x, ref ? "reference" : "blas"), what)
    const size_t n = fx_dim(NM("inp"), 0), c = fx_dim(NM("inp"), 1), oc = fx_dim(NM("w"), 0);
    const float *inp = fx_get(NM("inp"), n, c, 0), *w = fx_get(NM("w"), oc, c, 0);
    const int has_b = st_find(fx, NM("b")) != NULL;
    const float *b = has_b ? fx_get(NM("b"), oc, 0, 0) : NULL;
    const float *dout = fx_get(NM("dout"), n, oc, 0);
    float *out = nans(n * oc), *dinp = zeros(n * c), *dw = zeros(oc * c), *db = zeros(oc);
    nn_force_reference(ref);
    nn_linear_forward(out, inp, w, b, n, c, oc);
    EXPECT_CLOSE(WHAT("out"), out, fx_get(NM("out"), n, oc, 0), n * oc, FWD_TOL);
    nn_linear_backward(dinp, dw, has_b ? db : NULL, dout, inp, w, n, c, oc);
    EXPECT_CLOSE(WHAT("dinp"), dinp, fx_get(NM("dinp"), n, c, 0), n * c, GRAD_TOL);
    EXPECT_CLOSE(WHAT("dw"), dw, fx_get(NM("dw"), oc, c, 0), oc * c, GRAD_TOL);
    if (has_b)
        EXPECT_CLOSE(WHAT("db"), db, fx_get(NM("db"), oc, 0, 0), oc, GRAD_TOL);
    nn_force_reference(0);
    free(out), free(dinp), free(dw), free(db);
#undef NM
#undef WHAT
}

Test(nn_fixture, linear)
{
    static const char *const cases[] = {"lin", "lin_n1", "lin_nb"};
    for (size_t i = 0; i < 3; i++)
        for (int ref = 0; ref < 2; ref++)
            fixture_linear(cases[i], ref);
}

Test(nn_fixture, embedding)
{
    const size_t n = fx_dim("emb.ids", 0), vocab = fx_dim("emb.table", 0) - 1, c = fx_dim("emb.table", 1);
    uint32_t *ids = fx_ids("emb.ids", n);
    size_t oov = 0, rep = 0;
    for (size_t i = 0; i < n; i++) {
        oov += ids[i] >= vocab;
        for (size_t j = 0; j < i; j++)
            rep += ids[j] == ids[i];
    }
    cr_assert(oov >= 2 && rep >= 2, "the fixture should hold OOV and repeated ids");
    float *out = nans(n * c), *dtable = zeros((vocab + 1) * c);
    nn_embedding_forward(out, ids, fx_get("emb.table", vocab + 1, c, 0), n, vocab, c);
    EXPECT_CLOSE("emb.out", out, fx_get("emb.out", n, c, 0), n * c, FWD_TOL);
    nn_embedding_backward(dtable, fx_get("emb.dout", n, c, 0), ids, n, vocab, c);
    EXPECT_CLOSE("emb.dtable", dtable, fx_get("emb.dtable", vocab + 1, c, 0), (vocab + 1) * c, GRAD_TOL);
    free(ids), free(out), free(dtable);
}

Test(nn_fixture, sigmoid_tanh_relu)
{
    static const char *const names[] = {"sigmoid", "tanh", "relu"};
    for (int k = 0; k < 3; k++) {
        char a[64], b[64], cc[64], d[64];
        snprintf(a, sizeof a, "%s.inp", names[k]);
        snprintf(b, sizeof b, "%s.out", names[k]);
        snprintf(cc, sizeof cc, "%s.dout", names[k]);
        snprintf(d, sizeof d, "%s.dinp", names[k]);
        const size_t n = fx_dim(a, 0);
        const float *inp = fx_get(a, n, 0, 0), *dout = fx_get(cc, n, 0, 0);
        float *out = nans(n), *dinp = zeros(n);
        if (k == 0) {
            nn_sigmoid_forward(out, inp, n);
            nn_sigmoid_backward(dinp, dout, out, n);
        } else if (k == 1) {
            nn_tanh_forward(out, inp, n);
            nn_tanh_backward(dinp, dout, out, n);
        } else {
            nn_relu_forward(out, inp, n);
            nn_relu_backward(dinp, dout, inp, n);
        }
        EXPECT_CLOSE(b, out, fx_get(b, n, 0, 0), n, FWD_TOL);
        EXPECT_CLOSE(d, dinp, fx_get(d, n, 0, 0), n, GRAD_TOL);
        free(out), free(dinp);
    }
}

Test(nn_fixture, prelu)
{
    const size_t n = fx_dim("prelu.inp", 0), c = fx_dim("prelu.inp", 1);
    const float *inp = fx_get("prelu.inp", n, c, 0), *alpha = fx_get("prelu.alpha", c, 0, 0);
    float *out = nans(n * c), *dinp = zeros(n * c), *dalpha = zeros(c);
    nn_prelu_forward(out, inp, alpha, n, c);
    EXPECT_CLOSE("prelu.out", out, fx_get("prelu.out", n, c, 0), n * c, FWD_TOL);
    nn_prelu_backward(dinp, dalpha, fx_get("prelu.dout", n, c, 0), inp, alpha, n, c);
    EXPECT_CLOSE("prelu.dinp", dinp, fx_get("prelu.dinp", n, c, 0), n * c, GRAD_TOL);
    EXPECT_CLOSE("prelu.dalpha", dalpha, fx_get("prelu.dalpha", c, 0, 0), c, GRAD_TOL);
    free(out), free(dinp), free(dalpha);
}

static void fixture_dice(const char *cs)
{
    char nm[64], nw[64]; /* two buffers: one expression may name two tensors */
#define NM(x) (snprintf(nm, sizeof nm, "%s.%s", cs, x), nm)
#define NW(x) (snprintf(nw, sizeof nw, "%s.%s", cs, x), nw)
    const size_t n = fx_dim(NM("inp"), 0), c = fx_dim(NM("inp"), 1), ni = fx_dim(NM("inf_inp"), 0);
    const float *inp = fx_get(NM("inp"), n, c, 0), *alpha = fx_get(NM("alpha"), c, 0, 0);
    const float m = fx_scalar(NM("momentum"));
    float *out = nans(n * c), *mean = nans(c), *var = nans(c), *dinp = zeros(n * c), *dalpha = zeros(c);
    float *rm = copy_of(fx_get(NM("run_mean0"), c, 0, 0), c), *rv = copy_of(fx_get(NM("run_var0"), c, 0, 0), c);

    nn_dice_forward(out, mean, var, rm, rv, inp, alpha, m, 1, n, c);
    EXPECT_CLOSE(NM("out"), out, fx_get(NW("out"), n, c, 0), n * c, FWD_TOL);
    EXPECT_CLOSE(NM("mean"), mean, fx_get(NW("mean"), c, 0, 0), c, FWD_TOL);
    EXPECT_CLOSE(NM("var"), var, fx_get(NW("var"), c, 0, 0), c, FWD_TOL);
    EXPECT_CLOSE(NM("run_mean1"), rm, fx_get(NW("run_mean1"), c, 0, 0), c, FWD_TOL);
    EXPECT_CLOSE(NM("run_var1"), rv, fx_get(NW("run_var1"), c, 0, 0), c, FWD_TOL);

    nn_dice_backward(dinp, dalpha, fx_get(NM("dout"), n, c, 0), inp, alpha, mean, var, n, c);
    EXPECT_CLOSE(NM("dinp"), dinp, fx_get(NW("dinp"), n, c, 0), n * c, GRAD_TOL);
    EXPECT_CLOSE(NM("dalpha"), dalpha, fx_get(NW("dalpha"), c, 0, 0), c, GRAD_TOL);

    /* inference on the fixture's running statistics: mean / var are ignored
     * (NULL here) and the running statistics do not move */
    float *irm = copy_of(fx_get(NM("run_mean1"), c, 0, 0), c), *irv = copy_of(fx_get(NM("run_var1"), c, 0, 0), c);
    float *iout = nans(ni * c);
    nn_dice_forward(iout, NULL, NULL, irm, irv, fx_get(NM("inf_inp"), ni, c, 0), alpha, m, 0, ni, c);
    EXPECT_CLOSE(NM("inf_out"), iout, fx_get(NW("inf_out"), ni, c, 0), ni * c, FWD_TOL);
    cr_expect_eq(memcmp(irm, fx_get(NW("run_mean1"), c, 0, 0), c * sizeof *irm), 0, "inference moved run_mean");
    cr_expect_eq(memcmp(irv, fx_get(NW("run_var1"), c, 0, 0), c * sizeof *irv), 0, "inference moved run_var");
    free(out), free(mean), free(var), free(dinp), free(dalpha), free(rm), free(rv), free(irm), free(irv);
    free(iout);
#undef NM
#undef NW
}

Test(nn_fixture, dice)
{
    fixture_dice("dice");   /* C = 70: more than one channel block */
    fixture_dice("dice_m"); /* N = 33, C = 3, another momentum */
}

Test(nn_fixture, softmax_masked)
{
    const size_t r = fx_dim("softmax.inp", 0), t = fx_dim("softmax.inp", 1);
    uint32_t *len = fx_ids("softmax.len", r);
    const float *inp = fx_get("softmax.inp", r, t, 0);
    float *out = nans(r * t), *dinp = zeros(r * t);
    nn_softmax_masked_forward(out, inp, len, r, t);
    EXPECT_CLOSE("softmax.out", out, fx_get("softmax.out", r, t, 0), r * t, FWD_TOL);
    nn_softmax_masked_backward(dinp, fx_get("softmax.dout", r, t, 0), out, len, r, t);
    EXPECT_CLOSE("softmax.dinp", dinp, fx_get("softmax.dinp", r, t, 0), r * t, GRAD_TOL);
    int seen0 = 0, seen1 = 0, seenfull = 0;
    for (size_t i = 0; i < r; i++) {
        seen0 |= len[i] == 0, seen1 |= len[i] == 1, seenfull |= len[i] == t;
        for (size_t k = len[i]; k < t; k++) {
            cr_expect(out[i * t + k] == 0.0f, "padding out[%zu][%zu] = %g", i, k, out[i * t + k]);
            cr_expect(dinp[i * t + k] == 0.0f, "padding dinp[%zu][%zu] = %g", i, k, dinp[i * t + k]);
        }
        for (size_t k = 0; k < t; k++)
            cr_expect(isfinite(out[i * t + k]) && isfinite(dinp[i * t + k]), "row %zu not finite", i);
    }
    cr_assert(seen0 && seen1 && seenfull, "the fixture should hold rows of len 0, 1 and full");
    free(len), free(out), free(dinp);
}

Test(nn_fixture, layernorm)
{
    const size_t n = fx_dim("layernorm.inp", 0), c = fx_dim("layernorm.inp", 1);
    const float *inp = fx_get("layernorm.inp", n, c, 0), *gamma = fx_get("layernorm.gamma", c, 0, 0);
    const float eps = fx_scalar("layernorm.eps");
    float *out = nans(n * c), *mean = nans(n), *rstd = nans(n);
    float *dinp = zeros(n * c), *dgamma = zeros(c), *dbeta = zeros(c);
    nn_layernorm_forward(out, mean, rstd, inp, gamma, fx_get("layernorm.beta", c, 0, 0), eps, n, c);
    EXPECT_CLOSE("layernorm.out", out, fx_get("layernorm.out", n, c, 0), n * c, FWD_TOL);
    EXPECT_CLOSE("layernorm.mean", mean, fx_get("layernorm.mean", n, 0, 0), n, FWD_TOL);
    EXPECT_CLOSE("layernorm.rstd", rstd, fx_get("layernorm.rstd", n, 0, 0), n, FWD_TOL);
    nn_layernorm_backward(dinp, dgamma, dbeta, fx_get("layernorm.dout", n, c, 0), inp, gamma, mean, rstd, n, c);
    EXPECT_CLOSE("layernorm.dinp", dinp, fx_get("layernorm.dinp", n, c, 0), n * c, GRAD_TOL);
    EXPECT_CLOSE("layernorm.dgamma", dgamma, fx_get("layernorm.dgamma", c, 0, 0), c, GRAD_TOL);
    EXPECT_CLOSE("layernorm.dbeta", dbeta, fx_get("layernorm.dbeta", c, 0, 0), c, GRAD_TOL);
    free(out), free(mean), free(rstd), free(dinp), free(dgamma), free(dbeta);
}

Test(nn_fixture, bce_logits)
{
    const size_t n = fx_dim("bce.logits", 0);
    const float *x = fx_get("bce.logits", n, 0, 0), *y = fx_get("bce.labels", n, 0, 0);
    float loss = nn_bce_logits_forward(x, y, n);
    cr_expect(isfinite(loss));
    EXPECT_CLOSE("bce.loss", &loss, fx_get("bce.loss", 1, 0, 0), 1, FWD_TOL);
    float *d = zeros(n);
    nn_bce_logits_backward(d, x, y, fx_scalar("bce.scale"), n);
    EXPECT_CLOSE("bce.dlogits", d, fx_get("bce.dlogits", n, 0, 0), n, GRAD_TOL);
    free(d);
}

/* ==== 2. finite differences ====
 * Each kernel gets a loss callback L = sum(out * dout) (double) over its
 * current inputs; fd_check perturbs one float at a time by +-FD_H. */

typedef double (*loss_fn)(void *ctx);

static void fd_check(const char *what, float *x, size_t n, const float *grad, loss_fn loss, void *ctx)
{
    float *fd = zeros(n);
    for (size_t i = 0; i < n; i++) {
        const float save = x[i];
        const float xp = save + FD_H, xm = save - FD_H;
        x[i] = xp;
        const double lp = loss(ctx);
        x[i] = xm;
        const double lm = loss(ctx);
        x[i] = save;
        fd[i] = (float)((lp - lm) / ((double)xp - (double)xm));
    }
    /* grad is the analytic value, fd the estimate: compare fd against grad */
    cr_expect_eq(mismatches(what, fd, grad, NULL, n, FD_TOL), 0);
    free(fd);
}

typedef struct lin_ctx {
    float *inp, *w, *b, *out;
    const float *dout;
    size_t n, c, oc;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *k = p;
    nn_linear_forward(k->out, k->inp, k->w, k->b, k->n, k->c, k->oc);
    return dot_d(k->out, k->dout, k->n * k->oc);
}

Test(nn_fd, linear)
{
    uint64_t s = 101;
    for (int ref = 0; ref < 2; ref++) {
        nn_force_reference(ref);
        const size_t n = 5, c = 7, oc = 4;
        lin_ctx k = {rand_buf(&s, n * c, -1, 1), rand_buf(&s, oc * c, -1, 1), rand_buf(&s, oc, -1, 1),
                     zeros(n * oc), rand_buf(&s, n * oc, -1, 1), n, c, oc};
        float *dinp = zeros(n * c), *dw = zeros(oc * c), *db = zeros(oc);
        nn_linear_backward(dinp, dw, db, k.dout, k.inp, k.w, n, c, oc);
        fd_check("fd linear dinp", k.inp, n * c, dinp, lin_loss, &k);
        fd_check("fd linear dw", k.w, oc * c, dw, lin_loss, &k);
        fd_check("fd linear db", k.b, oc, db, lin_loss, &k);
        free(k.inp), free(k.w), free(k.b), free(k.out), free((void *)k.dout), free(dinp), free(dw), free(db);
    }
    nn_force_reference(0);
}

typedef struct emb_ctx {
    float *table, *out;
    const float *dout;
    const uint32_t *ids;
    size_t n, vocab, c;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *k = p;
    nn_embedding_forward(k->out, k->ids, k->table, k->n, k->vocab, k->c);
    return dot_d(k->out, k->dout, k->n * k->c);
}

Test(nn_fd, embedding)
{
    uint64_t s = 102;
    const uint32_t ids[] = {0, 4, 4, 7, 8, 9, 2, 4, UINT32_MAX, 0};
    const size_t n = sizeof ids / sizeof ids[0], vocab = 8, c = 3;
    emb_ctx k = {rand_buf(&s, (vocab + 1) * c, -1, 1), zeros(n * c), rand_buf(&s, n * c, -1, 1), ids, n, vocab, c};
    float *dt = zeros((vocab + 1) * c);
    nn_embedding_backward(dt, k.dout, ids, n, vocab, c);
    fd_check("fd embedding dtable", k.table, (vocab + 1) * c, dt, emb_loss, &k);
    free(k.table), free(k.out), free((void *)k.dout), free(dt);
}

typedef struct ew_ctx {
    float *inp, *alpha, *out;
    const float *dout;
    size_t n, c;
    int kind; /* 0 sigmoid, 1 tanh, 2 relu, 3 prelu */
} ew_ctx;

static double ew_loss(void *p)
{
    ew_ctx *k = p;
    const size_t m = k->n * k->c;
    switch (k->kind) {
    case 0: nn_sigmoid_forward(k->out, k->inp, m); break;
    case 1: nn_tanh_forward(k->out, k->inp, m); break;
    case 2: nn_relu_forward(k->out, k->inp, m); break;
    default: nn_prelu_forward(k->out, k->inp, k->alpha, k->n, k->c); break;
    }
    return dot_d(k->out, k->dout, m);
}

Test(nn_fd, activations)
{
    static const char *const names[] = {"fd sigmoid dinp", "fd tanh dinp", "fd relu dinp", "fd prelu dinp"};
    uint64_t s = 103;
    const size_t n = 6, c = 5, m = n * c;
    for (int kind = 0; kind < 4; kind++) {
        ew_ctx k = {rand_away(&s, m, 0.01f, 3.0f), rand_buf(&s, c, -0.2f, 0.5f), zeros(m), rand_buf(&s, m, -1, 1),
                    n, c, kind};
        float *dinp = zeros(m), *dalpha = zeros(c);
        ew_loss(&k);
        switch (kind) {
        case 0: nn_sigmoid_backward(dinp, k.dout, k.out, m); break;
        case 1: nn_tanh_backward(dinp, k.dout, k.out, m); break;
        case 2: nn_relu_backward(dinp, k.dout, k.inp, m); break;
        default: nn_prelu_backward(dinp, dalpha, k.dout, k.inp, k.alpha, n, c); break;
        }
        fd_check(names[kind], k.inp, m, dinp, ew_loss, &k);
        if (kind == 3)
            fd_check("fd prelu dalpha", k.alpha, c, dalpha, ew_loss, &k);
        free(k.inp), free(k.alpha), free(k.out), free((void *)k.dout), free(dinp), free(dalpha);
    }
}

typedef struct dice_ctx {
    float *inp, *alpha, *out, *mean, *var, *rm, *rv;
    const float *dout;
    size_t n, c;
} dice_ctx;

static double dice_loss(void *p)
{
    dice_ctx *k = p;
    nn_dice_forward(k->out, k->mean, k->var, k->rm, k->rv, k->inp, k->alpha, 0.1f, 1, k->n, k->c);
    return dot_d(k->out, k->dout, k->n * k->c);
}

Test(nn_fd, dice)
{
    uint64_t s = 104;
    /* c = 67 crosses the 64-channel block of the implementation */
    const size_t shapes[][2] = {{9, 4}, {4, 67}};
    for (size_t t = 0; t < 2; t++) {
        const size_t n = shapes[t][0], c = shapes[t][1];
        dice_ctx k = {rand_buf(&s, n * c, -2, 2), rand_buf(&s, c, -0.2f, 0.5f), zeros(n * c), zeros(c), zeros(c),
                      zeros(c), zeros(c), rand_buf(&s, n * c, -1, 1), n, c};
        for (size_t i = 0; i < c; i++)
            k.rv[i] = 1.0f;
        float *dinp = zeros(n * c), *dalpha = zeros(c);
        dice_loss(&k);
        nn_dice_backward(dinp, dalpha, k.dout, k.inp, k.alpha, k.mean, k.var, n, c);
        fd_check("fd dice dinp", k.inp, n * c, dinp, dice_loss, &k);
        fd_check("fd dice dalpha", k.alpha, c, dalpha, dice_loss, &k);
        free(k.inp), free(k.alpha), free(k.out), free(k.mean), free(k.var), free(k.rm), free(k.rv);
        free((void *)k.dout), free(dinp), free(dalpha);
    }
}

typedef struct sm_ctx {
    float *inp, *out;
    const float *dout;
    const uint32_t *len;
    size_t r, t;
} sm_ctx;

static double sm_loss(void *p)
{
    sm_ctx *k = p;
    nn_softmax_masked_forward(k->out, k->inp, k->len, k->r, k->t);
    return dot_d(k->out, k->dout, k->r * k->t);
}

Test(nn_fd, softmax_masked)
{
    uint64_t s = 105;
    const uint32_t len[] = {0, 1, 7, 3, 5};
    const size_t r = 5, t = 7;
    sm_ctx k = {rand_buf(&s, r * t, -3, 3), zeros(r * t), rand_buf(&s, r * t, -1, 1), len, r, t};
    float *dinp = zeros(r * t);
    sm_loss(&k);
    nn_softmax_masked_backward(dinp, k.dout, k.out, len, r, t);
    fd_check("fd softmax dinp", k.inp, r * t, dinp, sm_loss, &k);
    free(k.inp), free(k.out), free((void *)k.dout), free(dinp);
}

typedef struct ln_ctx {
    float *inp, *gamma, *beta, *out, *mean, *rstd;
    const float *dout;
    size_t n, c;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *k = p;
    nn_layernorm_forward(k->out, k->mean, k->rstd, k->inp, k->gamma, k->beta, 1e-5f, k->n, k->c);
    return dot_d(k->out, k->dout, k->n * k->c);
}

Test(nn_fd, layernorm)
{
    uint64_t s = 106;
    const size_t n = 4, c = 9;
    ln_ctx k = {rand_buf(&s, n * c, -2, 3), rand_buf(&s, c, 0.5f, 1.5f), rand_buf(&s, c, -0.5f, 0.5f),
                zeros(n * c), zeros(n), zeros(n), rand_buf(&s, n * c, -1, 1), n, c};
    float *dinp = zeros(n * c), *dgamma = zeros(c), *dbeta = zeros(c);
    ln_loss(&k);
    nn_layernorm_backward(dinp, dgamma, dbeta, k.dout, k.inp, k.gamma, k.mean, k.rstd, n, c);
    fd_check("fd layernorm dinp", k.inp, n * c, dinp, ln_loss, &k);
    fd_check("fd layernorm dgamma", k.gamma, c, dgamma, ln_loss, &k);
    fd_check("fd layernorm dbeta", k.beta, c, dbeta, ln_loss, &k);
    free(k.inp), free(k.gamma), free(k.beta), free(k.out), free(k.mean), free(k.rstd), free((void *)k.dout);
    free(dinp), free(dgamma), free(dbeta);
}

typedef struct bce_ctx {
    float *x;
    const float *y;
    float scale;
    size_t n;
} bce_ctx;

static double bce_loss(void *p)
{
    bce_ctx *k = p;
    return (double)k->scale * nn_bce_logits_forward(k->x, k->y, k->n);
}

Test(nn_fd, bce_logits)
{
    uint64_t s = 107;
    const size_t n = 8;
    bce_ctx k = {rand_buf(&s, n, -4, 4), rand_buf(&s, n, 0, 1), 2.5f, n};
    float *d = zeros(n);
    nn_bce_logits_backward(d, k.x, k.y, k.scale, n);
    fd_check("fd bce dlogits", k.x, n, d, bce_loss, &k);
    free(k.x), free((void *)k.y), free(d);
}

/* ==== 3. linear: BLAS path vs reference ==== */

/* Forward and backward (into the same random prefill) on both paths; the
 * tolerance scales with sum |products| of each entry (the rounding error of
 * a sum grows with the magnitude of its terms, not of its result). */
static void blas_vs_ref(uint64_t *s, size_t n, size_t c, size_t oc, int with_b)
{
    float *inp = rand_buf(s, n * c, -1, 1), *w = rand_buf(s, oc * c, -1, 1);
    float *b = with_b ? rand_buf(s, oc, -1, 1) : NULL, *dout = rand_buf(s, n * oc, -1, 1);
    float *o[2], *dx[2], *dw[2], *db[2];
    float *px = rand_buf(s, n * c, -1, 1), *pw = rand_buf(s, oc * c, -1, 1), *pb = rand_buf(s, oc, -1, 1);
    for (int ref = 0; ref < 2; ref++) {
        nn_force_reference(ref);
        o[ref] = zeros(n * oc), dx[ref] = copy_of(px, n * c), dw[ref] = copy_of(pw, oc * c);
        db[ref] = copy_of(pb, oc);
        nn_linear_forward(o[ref], inp, w, b, n, c, oc);
        nn_linear_backward(dx[ref], dw[ref], db[ref], dout, inp, w, n, c, oc);
    }
    nn_force_reference(0);
    /* magnitudes, in double */
    double *so = calloc(n * oc, sizeof *so), *sx = calloc(n * c, sizeof *sx), *sw = calloc(oc * c, sizeof *sw);
    double *sb = calloc(oc, sizeof *sb);
    cr_assert(so && sx && sw && sb);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < oc; j++) {
            const double g = fabs(dout[i * oc + j]);
            double acc = b ? fabs(b[j]) : 0.0;
            for (size_t k = 0; k < c; k++) {
                const double xv = fabs(inp[i * c + k]), wv = fabs(w[j * c + k]);
                acc += xv * wv;
                sx[i * c + k] += g * wv;
                sw[j * c + k] += g * xv;
            }
            so[i * oc + j] = acc;
            sb[j] += g;
        }
    for (size_t i = 0; i < n * c; i++)
        sx[i] += fabs(px[i]);
    for (size_t i = 0; i < oc * c; i++)
        sw[i] += fabs(pw[i]);
    for (size_t i = 0; i < oc; i++)
        sb[i] += fabs(pb[i]);
    char what[128];
    snprintf(what, sizeof what, "blas vs ref out (N %zu C %zu OC %zu%s)", n, c, oc, b ? "" : ", no bias");
    cr_expect_eq(mismatches(what, o[0], o[1], so, n * oc, LIN_TOL), 0);
    snprintf(what, sizeof what, "blas vs ref dinp (N %zu C %zu OC %zu)", n, c, oc);
    cr_expect_eq(mismatches(what, dx[0], dx[1], sx, n * c, LIN_TOL), 0);
    snprintf(what, sizeof what, "blas vs ref dw (N %zu C %zu OC %zu)", n, c, oc);
    cr_expect_eq(mismatches(what, dw[0], dw[1], sw, oc * c, LIN_TOL), 0);
    snprintf(what, sizeof what, "blas vs ref db (N %zu C %zu OC %zu)", n, c, oc);
    cr_expect_eq(mismatches(what, db[0], db[1], sb, oc, LIN_TOL), 0);
    for (int r = 0; r < 2; r++)
        free(o[r]), free(dx[r]), free(dw[r]), free(db[r]);
    free(inp), free(w), free(b), free(dout), free(px), free(pw), free(pb), free(so), free(sx), free(sw), free(sb);
}

Test(nn_linear, blas_vs_reference)
{
    uint64_t s = 201;
    static const size_t fixed[][3] = {
        {1, 1, 1}, {1, 7, 3}, {3, 1, 5}, {5, 3, 1}, {1, 1000, 1}, {1000, 1, 1}, {1, 1, 1000},
        {2, 2, 2}, {17, 33, 9}, {64, 64, 64}, {65, 63, 129}, {200, 144, 200}, {257, 513, 129},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        blas_vs_ref(&s, fixed[i][0], fixed[i][1], fixed[i][2], (int)(i & 1));
    for (int t = 0; t < 20; t++) {
        const size_t n = 1 + tu_rand(&s) % 150, c = 1 + tu_rand(&s) % 300, oc = 1 + tu_rand(&s) % 150;
        blas_vs_ref(&s, n, c, oc, t % 3 != 0);
    }
}

/* Zero-sized dimensions write nothing beyond their (empty) outputs; C = 0
 * gives out = b and no weight gradient. */
Test(nn_linear, empty_dims)
{
    for (int ref = 0; ref < 2; ref++) {
        nn_force_reference(ref);
        float b[3] = {1, 2, 3}, out[6] = {-1, -1, -1, -1, -1, -1}, dout[6] = {1, 1, 1, 1, 1, 1}, db[3] = {0};
        float dummy[1] = {0}; /* never read: C = 0 */
        nn_linear_forward(out, dummy, dummy, b, 2, 0, 3);
        for (int i = 0; i < 6; i++)
            cr_expect_eq(out[i], b[i % 3]);
        nn_linear_backward(NULL, NULL, db, dout, dummy, dummy, 2, 0, 3);
        for (int i = 0; i < 3; i++)
            cr_expect_eq(db[i], 2.0f);
        float untouched = 7.0f;
        nn_linear_forward(&untouched, dummy, dummy, NULL, 0, 5, 3);
        nn_linear_backward(&untouched, &untouched, &untouched, dummy, dummy, dummy, 4, 5, 0);
        cr_expect_eq(untouched, 7.0f);
    }
    nn_force_reference(0);
}

/* ==== 4. backward accumulates; NULL gradients are skipped ==== */

/* g2 (after two calls into zeroed g) must be 2 * g1 (after one). */
static void expect_doubled(const char *what, const float *g1, const float *g2, size_t n)
{
    float *want = zeros(n);
    for (size_t i = 0; i < n; i++)
        want[i] = 2.0f * g1[i];
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= g1[i] != 0.0f;
    cr_expect(any, "%s: the gradient is all zero, the check proves nothing", what);
    cr_expect_eq(mismatches(what, g2, want, NULL, n, ACC_TOL), 0);
    free(want);
}

/* Runs `call` once into zeroed A (and B), once more into zeroed C (and D)
 * twice, and compares. */
#define TWICE(what, n, a, b, call_a, call_b)                                                                       \
    do {                                                                                                           \
        call_a;                                                                                                    \
        call_b;                                                                                                    \
        call_b;                                                                                                    \
        expect_doubled(what, a, b, n);                                                                             \
    } while (0)

Test(nn_accumulate, every_backward)
{
    uint64_t s = 301;
    const size_t n = 13, c = 70, oc = 11, m = n * c, vocab = 5;
    float *x = rand_buf(&s, m, -2, 2), *w = rand_buf(&s, oc * c, -1, 1), *g = rand_buf(&s, m, -1, 1);
    float *gl = rand_buf(&s, n * oc, -1, 1), *alpha = rand_buf(&s, c, -0.2f, 0.5f), *y = zeros(m);
    float *a1 = zeros(m), *a2 = zeros(m), *b1 = zeros(oc * c), *b2 = zeros(oc * c);
    float *c1 = zeros(oc > c ? oc : c), *c2 = zeros(oc > c ? oc : c);
    float *mean = zeros(m), *var = zeros(m), *rm = zeros(c), *rv = zeros(c);
    uint32_t ids[13];
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint32_t)(tu_rand(&s) % (vocab + 3));
    uint32_t len[13];
    for (size_t i = 0; i < n; i++)
        len[i] = (uint32_t)(i % 4 == 0 ? 0 : tu_rand(&s) % (c + 1));
    const size_t mc = oc > c ? oc : c;
#define RESET()                                                                                                    \
    (memset(a1, 0, m * sizeof *a1), memset(a2, 0, m * sizeof *a2), memset(b1, 0, oc * c * sizeof *b1),            \
     memset(b2, 0, oc * c * sizeof *b2), memset(c1, 0, mc * sizeof *c1), memset(c2, 0, mc * sizeof *c2))
    for (int ref = 0; ref < 2; ref++) {
        nn_force_reference(ref);
        RESET();
        TWICE("linear dinp twice", m, a1, a2, nn_linear_backward(a1, b1, c1, gl, x, w, n, c, oc),
              nn_linear_backward(a2, b2, c2, gl, x, w, n, c, oc));
        expect_doubled("linear dw twice", b1, b2, oc * c);
        expect_doubled("linear db twice", c1, c2, oc);
        /* NULL gradients: each alone gives the same as all together */
        float *only = zeros(m > oc * c ? m : oc * c);
        nn_linear_backward(NULL, only, NULL, gl, x, w, n, c, oc);
        cr_expect_eq(mismatches("linear dw alone", only, b1, NULL, oc * c, ACC_TOL), 0);
        memset(only, 0, oc * c * sizeof *only);
        nn_linear_backward(only, NULL, NULL, gl, x, w, n, c, oc);
        cr_expect_eq(mismatches("linear dinp alone", only, a1, NULL, m, ACC_TOL), 0);
        memset(only, 0, m * sizeof *only);
        nn_linear_backward(NULL, NULL, only, gl, x, w, n, c, oc);
        cr_expect_eq(mismatches("linear db alone", only, c1, NULL, oc, ACC_TOL), 0);
        free(only);
    }
    nn_force_reference(0);

    RESET();
    TWICE("embedding twice", (vocab + 1) * c, b1, b2, nn_embedding_backward(b1, g, ids, n, vocab, c),
          nn_embedding_backward(b2, g, ids, n, vocab, c));
    nn_sigmoid_forward(y, x, m);
    RESET();
    TWICE("sigmoid twice", m, a1, a2, nn_sigmoid_backward(a1, g, y, m), nn_sigmoid_backward(a2, g, y, m));
    nn_tanh_forward(y, x, m);
    RESET();
    TWICE("tanh twice", m, a1, a2, nn_tanh_backward(a1, g, y, m), nn_tanh_backward(a2, g, y, m));
    RESET();
    TWICE("relu twice", m, a1, a2, nn_relu_backward(a1, g, x, m), nn_relu_backward(a2, g, x, m));
    RESET();
    TWICE("prelu dinp twice", m, a1, a2, nn_prelu_backward(a1, c1, g, x, alpha, n, c),
          nn_prelu_backward(a2, c2, g, x, alpha, n, c));
    expect_doubled("prelu dalpha twice", c1, c2, c);
    RESET();
    nn_prelu_backward(NULL, c2, g, x, alpha, n, c);
    nn_prelu_backward(a2, NULL, g, x, alpha, n, c);
    nn_prelu_backward(a1, c1, g, x, alpha, n, c);
    cr_expect_eq(mismatches("prelu NULL dinp", c2, c1, NULL, c, 0.0), 0);
    cr_expect_eq(mismatches("prelu NULL dalpha", a2, a1, NULL, m, 0.0), 0);

    nn_dice_forward(y, mean, var, rm, rv, x, alpha, 0.1f, 1, n, c);
    RESET();
    TWICE("dice dinp twice", m, a1, a2, nn_dice_backward(a1, c1, g, x, alpha, mean, var, n, c),
          nn_dice_backward(a2, c2, g, x, alpha, mean, var, n, c));
    expect_doubled("dice dalpha twice", c1, c2, c);
    RESET();
    nn_dice_backward(NULL, c2, g, x, alpha, mean, var, n, c);
    nn_dice_backward(a2, NULL, g, x, alpha, mean, var, n, c);
    nn_dice_backward(a1, c1, g, x, alpha, mean, var, n, c);
    cr_expect_eq(mismatches("dice NULL dinp", c2, c1, NULL, c, 0.0), 0);
    cr_expect_eq(mismatches("dice NULL dalpha", a2, a1, NULL, m, 0.0), 0);

    nn_softmax_masked_forward(y, x, len, n, c);
    RESET();
    TWICE("softmax twice", m, a1, a2, nn_softmax_masked_backward(a1, g, y, len, n, c),
          nn_softmax_masked_backward(a2, g, y, len, n, c));

    float *beta = rand_buf(&s, c, -1, 1);
    nn_layernorm_forward(y, mean, var, x, alpha, beta, 1e-5f, n, c); /* var holds rstd */
    RESET();
    TWICE("layernorm dinp twice", m, a1, a2,
          nn_layernorm_backward(a1, b1, c1, g, x, alpha, mean, var, n, c),
          nn_layernorm_backward(a2, b2, c2, g, x, alpha, mean, var, n, c));
    expect_doubled("layernorm dgamma twice", b1, b2, c);
    expect_doubled("layernorm dbeta twice", c1, c2, c);

    float lab[13];
    for (size_t i = 0; i < n; i++)
        lab[i] = (float)(i & 1);
    RESET();
    TWICE("bce twice", n, a1, a2, nn_bce_logits_backward(a1, x, lab, 1.5f, n),
          nn_bce_logits_backward(a2, x, lab, 1.5f, n));
#undef RESET
    free(x), free(w), free(g), free(gl), free(alpha), free(y), free(a1), free(a2), free(b1), free(b2), free(c1);
    free(c2), free(mean), free(var), free(rm), free(rv), free(beta);
}

/* ==== edge cases beyond the fixture ==== */

Test(nn_edges, softmax_extremes)
{
    /* huge logits, equal logits, len beyond nothing: finite, sums to 1 */
    const float inp[3 * 4] = {1e30f, -1e30f, 88.0f, 89.0f, 5, 5, 5, 5, -1e4f, -1e4f, 0, 0};
    const uint32_t len[3] = {4, 3, 2};
    float out[12];
    nn_softmax_masked_forward(out, inp, len, 3, 4);
    for (int r = 0; r < 3; r++) {
        double sum = 0.0;
        for (int k = 0; k < 4; k++) {
            cr_expect(isfinite(out[r * 4 + k]));
            sum += out[r * 4 + k];
        }
        cr_expect(fabs(sum - 1.0) < 1e-6, "row %d sums to %.9g", r, sum);
    }
    cr_expect_eq(out[0], 1.0f);
    cr_expect(fabsf(out[4] - 1.0f / 3.0f) < 1e-7f && out[7] == 0.0f);
    cr_expect(fabsf(out[8] - 0.5f) < 1e-7f && out[10] == 0.0f);
}

Test(nn_edges, bce_and_sigmoid_extremes)
{
    const float x[4] = {-1e4f, 1e4f, -88.5f, 200.0f}, y[4] = {0, 1, 0, 1};
    cr_expect(nn_bce_logits_forward(x, y, 4) < 1e-30f, "confident right answers cost (about) 0");
    const float y2[4] = {1, 0, 1, 0};
    const float l = nn_bce_logits_forward(x, y2, 4);
    cr_expect(fabs(l - (1e4 + 1e4 + 88.5 + 200.0) / 4.0) < 1e-2, "loss %.9g", l);
    float s[4], d[4] = {0};
    nn_sigmoid_forward(s, x, 4);
    cr_expect(s[0] == 0.0f && s[1] == 1.0f && isfinite(s[2]) && s[3] == 1.0f);
    nn_bce_logits_backward(d, x, y2, 1.0f, 4);
    cr_expect(fabsf(d[0] + 0.25f) < 1e-7f && fabsf(d[1] - 0.25f) < 1e-7f, "%g %g", d[0], d[1]);
}

/* ==== the switches ==== */

Test(nn_switch, force_reference)
{
    cr_expect_eq(nn_reference_forced(), 0);
    nn_force_reference(5);
    cr_expect_eq(nn_reference_forced(), 1);
    nn_force_reference(0);
    cr_expect_eq(nn_reference_forced(), 0);
}

Test(nn_switch, env_read_once)
{
    /* each Criterion test runs in its own process: the "once" state is fresh */
    setenv("LSIM_NN_REFERENCE", "1", 1);
    nn_init_from_env();
    cr_expect_eq(nn_reference_forced(), 1);
    setenv("LSIM_NN_REFERENCE", "0", 1);
    nn_init_from_env();
    cr_expect_eq(nn_reference_forced(), 1, "the environment is read only once");
    nn_force_reference(0);
    cr_expect_eq(nn_reference_forced(), 0, "nn_force_reference overrides it");
    unsetenv("LSIM_NN_REFERENCE");
}

/* The fast activations (models/nn_vmath.c) against the libm forms over the
 * whole useful range, every alignment and tail length, on each vector path
 * (AVX2 where the CPU has it, then SSE2): within 5e-7 relative (4 float
 * ulps), or 1e-30 absolute where the value underflows. */
static double worst_fast_error(void (*f)(float *, const float *, size_t), float lo, float hi)
{
    enum { N = 200003 };
    float *x = tu_floats(N), *fast = tu_floats(N), *ref = tu_floats(N);
    for (size_t i = 0; i < N; i++) x[i] = lo + (hi - lo) * (float)i / (float)(N - 1);
    f(fast + 1, x + 1, N - 1); /* an unaligned start and a ragged tail */
    f(fast, x, 1);
    nn_force_reference(1);
    f(ref, x, N);
    nn_force_reference(0);
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        double d = fabs((double)fast[i] - ref[i]);
        if (d > 1e-30) worst = fmax(worst, d / fabs((double)ref[i]));
    }
    free(x);
    free(fast);
    free(ref);
    return worst;
}

Test(nn_fast, activations_match_reference)
{
    for (int avx2 = 1; avx2 >= 0; avx2--) {
        vm_allow_avx2(avx2);
        double ws = worst_fast_error(nn_sigmoid_forward, -100.0f, 100.0f);
        double wt = worst_fast_error(nn_tanh_forward, -30.0f, 30.0f);
        double wt0 = worst_fast_error(nn_tanh_forward, -1.0f, 1.0f); /* the polynomial and the switch at 0.625 */
        cr_expect(ws < 5e-7, "fast sigmoid (avx2 allowed %d): worst relative error %g", avx2, ws);
        cr_expect(wt < 5e-7 && wt0 < 5e-7, "fast tanh (avx2 allowed %d): worst relative error %g, %g on [-1, 1]",
                  avx2, wt, wt0);
    }
    vm_allow_avx2(1);
    /* saturation: exactly 0 / 1 / -1 where libm saturates */
    float x[8] = {-200, -120, 120, 200, 0, -0.0f, 1e-30f, -1e-30f}, y[8];
    nn_sigmoid_forward(y, x, 8);
    cr_expect(y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 1 && y[4] == 0.5f, "sigmoid saturation");
    nn_tanh_forward(y, x, 8);
    cr_expect(y[0] == -1 && y[1] == -1 && y[2] == 1 && y[3] == 1 && y[4] == 0 && y[6] == 1e-30f && y[7] == -1e-30f,
              "tanh saturation and tiny values: %g %g %g %g %g %g %g", y[0], y[1], y[2], y[3], y[4], y[6], y[7]);
}
