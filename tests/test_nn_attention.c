/*
 * test_nn_attention.c: the transformer encoder block (models/nn_attention.h).
 *
 * What it checks:
 *   - golden: out, dinp and all twelve weight gradients against the "enc."
 *     case of tests/golden/dsin.safetensors (torch.nn.TransformerEncoderLayer
 *     in float64, lengths 5, 0, 3, 1, 5, 2 of T = 5; padded inputs and padded
 *     upstream gradients random), on the BLAS path and on the reference path.
 *     Tolerances as tu_compare_f32 applies them: FWD_TOL (1e-5) for out,
 *     GRAD_TOL (1e-4) for gradients, relative to each value with a floor at
 *     2% of the tensor's largest value. saved, scratch and out start as NaN,
 *     so a kernel that reads what it did not write fails.
 *   - padding is inert: NaN in the padded inputs and in the padded dout
 *     changes nothing (bit for bit); padded outputs are exactly 0; padded
 *     rows of dinp keep what they held.
 *   - accumulation: backward twice adds twice, into buffers that start
 *     nonzero (within ACC_TOL 1e-5: g + g and 2 g round differently); NULL
 *     gradient pointers (and g = NULL) are accepted and leave the other
 *     gradients unchanged; backward does not write into saved.
 *   - finite differences: a tiny block (N=3 T=4 C=4 NH=2 F=6, lengths 4, 0,
 *     2), every entry of the valid inputs and of every weight: central
 *     differences of L = sum(out * dout), the forward in float32 on the
 *     reference kernels and L summed in double, step FD_EPS (1e-2),
 *     |fd - analytic| <= FD_TOL (5e-4) * max(1, |analytic|) (observed worst
 *     about 1.9e-4). The FFN's ReLU has kinks: the test asserts that every
 *     pre-activation of the problem is at least 0.05 from 0 (0.074 for this
 *     seed), so a 1e-2 step would have to move one by 5x the step to cross.
 *   - reference vs BLAS on DSIN's default shape (N=64 T=10 C=36 NH=2
 *     F=144, random lengths incl. 0 and T): outputs and gradients within
 *     REF_TOL / REF_GRAD_TOL (5e-5, tu_compare_f32; the GEMMs sum in another
 *     order, observed worst about 1.5e-5).
 *   - edges: N = 0, T = 0, every length 0.
 */
#include "loaders/safetensors.h"
#include "models/nn.h"
#include "models/nn_attention.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define REF_TOL 5e-5
#define REF_GRAD_TOL 5e-5
#define FD_EPS 1e-2
#define FD_TOL 5e-4
#define ACC_TOL 1e-5

#define NW 12
static const char *const wname[NW] = {"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                      "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                                      "linear1.weight",            "linear1.bias",
                                      "linear2.weight",            "linear2.bias",
                                      "norm1.weight",              "norm1.bias",
                                      "norm2.weight",              "norm2.bias"};

/* a problem: dimensions, inputs, weights (in wname order), upstream gradient */
typedef struct prob {
    size_t N, T, C, F, NH;
    float *inp, *dout; /* (N, T, C) */
    uint32_t *len;     /* (N) */
    float *w[NW];
} prob;

/* results: out, dinp, gradients (wname order) */
typedef struct res {
    float *out, *dinp, *g[NW];
} res;

static size_t wsize(const prob *p, int i)
{
    size_t C = p->C, F = p->F;
    const size_t s[NW] = {3 * C * C, 3 * C, C * C, C, F * C, F, C * F, C, C, C, C, C};
    return s[i];
}

static nn_encoder_weights weights_of(const prob *p)
{
    nn_encoder_weights w = {p->w[0], p->w[1], p->w[2], p->w[3], p->w[4],  p->w[5],
                            p->w[6], p->w[7], p->w[8], p->w[9], p->w[10], p->w[11]};
    return w;
}

static nn_encoder_grads grads_of(const res *r)
{
    nn_encoder_grads g = {r->g[0], r->g[1], r->g[2], r->g[3], r->g[4],  r->g[5],
                          r->g[6], r->g[7], r->g[8], r->g[9], r->g[10], r->g[11]};
    return g;
}

static void res_alloc(res *r, const prob *p)
{
    size_t n = p->N * p->T * p->C;
    r->out = tu_floats(n);
    r->dinp = tu_floats(n);
    for (int i = 0; i < NW; i++) r->g[i] = tu_floats(wsize(p, i));
}

static void res_free(res *r)
{
    free(r->out);
    free(r->dinp);
    for (int i = 0; i < NW; i++) free(r->g[i]);
}

static void prob_free(prob *p)
{
    free(p->inp);
    free(p->dout);
    free(p->len);
    for (int i = 0; i < NW; i++) free(p->w[i]);
}

static size_t saved_n(const prob *p)
{
    return nn_encoder_saved_floats(p->N, p->T, p->C, p->F, p->NH);
}

static size_t scratch_n(const prob *p)
{
    return nn_encoder_scratch_floats(p->N, p->T, p->C, p->F, p->NH);
}

/* Forward (out NaN first) then nback backward calls into r's gradients.
 * saved/scratch: NaN-filled here unless the caller passes its own. */
static void run(res *r, const prob *p, int nback, float *saved_in)
{
    float *saved = saved_in ? saved_in : tu_nan_floats(saved_n(p));
    float *scratch = tu_nan_floats(scratch_n(p));
    nn_encoder_weights w = weights_of(p);
    nn_encoder_grads g = grads_of(r);
    for (size_t i = 0; i < p->N * p->T * p->C; i++) r->out[i] = NAN;
    nn_encoder_forward(r->out, saved, scratch, p->inp, p->len, &w, p->N, p->T, p->C, p->F, p->NH);
    for (int i = 0; i < nback; i++)
        nn_encoder_backward(r->dinp, &g, scratch, p->dout, saved, p->len, &w, p->N, p->T, p->C, p->F, p->NH);
    if (!saved_in) free(saved);
    free(scratch);
}

/* L = sum over valid rows of out * dout, in double */
static double loss(const prob *p)
{
    res r;
    res_alloc(&r, p);
    run(&r, p, 0, NULL);
    double l = 0;
    for (size_t n = 0; n < p->N; n++)
        for (size_t i = 0; i < p->len[n] * p->C; i++)
            l += (double)r.out[n * p->T * p->C + i] * p->dout[n * p->T * p->C + i];
    res_free(&r);
    return l;
}

static int expect_res(const char *tag, const res *got, const res *want, const prob *p, double ftol, double gtol)
{
    char what[160];
    size_t n = p->N * p->T * p->C;
    int bad = 0;
    snprintf(what, sizeof what, "%s out", tag);
    bad += tu_compare_f32(what, got->out, want->out, n, ftol);
    snprintf(what, sizeof what, "%s dinp", tag);
    bad += tu_compare_f32(what, got->dinp, want->dinp, n, gtol);
    for (int i = 0; i < NW; i++) {
        snprintf(what, sizeof what, "%s grad.%s", tag, wname[i]);
        bad += tu_compare_f32(what, got->g[i], want->g[i], wsize(p, i), gtol);
    }
    cr_expect_eq(bad, 0, "%s: %d values differ", tag, bad);
    return bad;
}

/* ---- random problems ---- */

static float urand(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(tu_rand(s) >> 11) * (1.0 / 9007199254740992.0));
}

static float *rand_buf(uint64_t *s, size_t n, float lo, float hi)
{
    float *p = tu_floats(n);
    for (size_t i = 0; i < n; i++) p[i] = urand(s, lo, hi);
    return p;
}

static void prob_random(prob *p, size_t N, size_t T, size_t C, size_t F, size_t NH, const uint32_t *len,
                        uint64_t seed)
{
    uint64_t s = seed;
    memset(p, 0, sizeof *p);
    p->N = N, p->T = T, p->C = C, p->F = F, p->NH = NH;
    p->inp = rand_buf(&s, N * T * C, -1.5f, 1.5f);
    p->dout = rand_buf(&s, N * T * C, -1.0f, 1.0f);
    p->len = calloc(N ? N : 1, sizeof *p->len);
    cr_assert(p->len);
    if (N) memcpy(p->len, len, N * sizeof *len);
    /* matrices uniform in +-sqrt(3 / fan_in) (unit-variance outputs, as an
     * initialized layer gives), vectors in +-0.3 */
    for (int i = 0; i < NW; i++) {
        float k = i % 2 == 0 && i < 8 ? sqrtf(3.0f / (float)(i == 6 ? F : C)) : 0.3f;
        p->w[i] = rand_buf(&s, wsize(p, i), -k, k);
    }
    for (size_t c = 0; c < C; c++) { /* LayerNorm scales around 1 */
        p->w[8][c] += 1.0f;
        p->w[10][c] += 1.0f;
    }
}

/* ---- the fixture ---- */

static void fixture_load(prob *p, res *want, st_file **fp)
{
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char path[4096], err[512], name[128];
    snprintf(path, sizeof path, "%s/tests/golden/dsin.safetensors", root && *root ? root : ".");
    cr_assert_eq(st_open(fp, path, err, sizeof err), 0, "%s (run tests/golden/gen_dsin.py)", err);
    const st_file *f = *fp;
    const st_tensor *d = st_find(f, "enc.dims");
    cr_assert(d && d->dtype == ST_I32 && d->numel == 5, "fixture lacks enc.dims");
    const int32_t *dims = d->data;
    memset(p, 0, sizeof *p);
    p->N = (size_t)dims[0], p->T = (size_t)dims[1], p->C = (size_t)dims[2], p->F = (size_t)dims[3];
    p->NH = (size_t)dims[4];
    size_t n = p->N * p->T * p->C;
    const void *data;
    uint64_t sh3[3] = {p->N, p->T, p->C};
#define GET(dst, nm, nd, shape, cnt)                                                                  \
    do {                                                                                              \
        cr_assert_eq(st_get(f, nm, ST_F32, nd, shape, &data, err, sizeof err), 0, "%s", err);        \
        dst = tu_floats(cnt);                                                                            \
        memcpy(dst, data, (cnt) * sizeof(float));                                                     \
    } while (0)
    GET(p->inp, "enc.inp", 3, sh3, n);
    GET(p->dout, "enc.dout", 3, sh3, n);
    GET(want->out, "enc.out", 3, sh3, n);
    GET(want->dinp, "enc.dinp", 3, sh3, n);
    for (int i = 0; i < NW; i++) {
        const st_tensor *t;
        snprintf(name, sizeof name, "enc.%s", wname[i]);
        t = st_find(f, name);
        cr_assert(t && t->numel == wsize(p, i), "fixture: %s", name);
        GET(p->w[i], name, t->ndim, t->shape, wsize(p, i));
        snprintf(name, sizeof name, "enc.grad.%s", wname[i]);
        t = st_find(f, name);
        cr_assert(t && t->numel == wsize(p, i), "fixture: %s", name);
        GET(want->g[i], name, t->ndim, t->shape, wsize(p, i));
    }
#undef GET
    cr_assert_eq(st_get(f, "enc.len", ST_I32, 1, (uint64_t[]){p->N}, &data, err, sizeof err), 0, "%s", err);
    p->len = calloc(p->N, sizeof *p->len);
    for (size_t i = 0; i < p->N; i++) p->len[i] = (uint32_t)((const int32_t *)data)[i];
}

Test(nn_attention, golden)
{
    prob p;
    res want;
    st_file *f;
    fixture_load(&p, &want, &f);
    for (int ref = 0; ref <= 1; ref++) {
        nn_force_reference(ref);
        res got;
        res_alloc(&got, &p);
        run(&got, &p, 1, NULL);
        expect_res(ref ? "enc reference" : "enc blas", &got, &want, &p, FWD_TOL, GRAD_TOL);
        res_free(&got);
    }
    nn_force_reference(0);
    res_free(&want);
    prob_free(&p);
    st_close(f);
}

/* ---- padding ---- */

Test(nn_attention, padding_is_inert)
{
    static const uint32_t len[5] = {6, 0, 3, 1, 9 /* > T counts as T */};
    prob p;
    prob_random(&p, 5, 6, 8, 10, 2, len, 21);
    size_t N = p.N, T = p.T, C = p.C, n = N * T * C;
    res a, b;
    res_alloc(&a, &p);
    res_alloc(&b, &p);
    run(&a, &p, 1, NULL);
    /* padded rows: out exactly 0 */
    for (size_t s = 0; s < N; s++)
        for (size_t t = p.len[s] < T ? p.len[s] : T; t < T; t++)
            for (size_t c = 0; c < C; c++)
                cr_expect_eq(a.out[(s * T + t) * C + c], 0.0f, "out[%zu, %zu, %zu] padded but nonzero", s, t, c);
    /* NaN in padded inputs and padded dout; padded dinp prefilled with 7 */
    for (size_t s = 0; s < N; s++)
        for (size_t t = p.len[s] < T ? p.len[s] : T; t < T; t++)
            for (size_t c = 0; c < C; c++) {
                size_t i = (s * T + t) * C + c;
                p.inp[i] = NAN;
                p.dout[i] = NAN;
                b.dinp[i] = 7.0f;
            }
    run(&b, &p, 1, NULL);
    cr_expect_eq(memcmp(a.out, b.out, n * sizeof(float)), 0, "padded inputs changed out");
    for (int i = 0; i < NW; i++)
        cr_expect_eq(memcmp(a.g[i], b.g[i], wsize(&p, i) * sizeof(float)), 0, "padding reached grad.%s", wname[i]);
    for (size_t s = 0; s < N; s++)
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++) {
                size_t i = (s * T + t) * C + c;
                if (t < (p.len[s] < T ? p.len[s] : T))
                    cr_expect_eq(a.dinp[i], b.dinp[i], "dinp[%zu, %zu, %zu] changed by padding", s, t, c);
                else
                    cr_expect_eq(b.dinp[i], 7.0f, "padded dinp[%zu, %zu, %zu] written", s, t, c);
            }
    res_free(&a);
    res_free(&b);
    prob_free(&p);
}

/* ---- accumulation, NULL gradients ---- */

Test(nn_attention, accumulates_and_skips_null)
{
    static const uint32_t len[4] = {5, 2, 0, 5};
    prob p;
    prob_random(&p, 4, 5, 6, 7, 3, len, 33);
    size_t n = p.N * p.T * p.C;
    res one, two, want;
    res_alloc(&one, &p);
    res_alloc(&two, &p);
    res_alloc(&want, &p);
    run(&one, &p, 1, NULL);
    for (size_t i = 0; i < n; i++) two.dinp[i] = 0.25f;
    for (int j = 0; j < NW; j++)
        for (size_t i = 0; i < wsize(&p, j); i++) two.g[j][i] = 0.25f;
    float *saved = tu_nan_floats(saved_n(&p));
    run(&two, &p, 0, saved);
    float *copy = tu_floats(saved_n(&p));
    memcpy(copy, saved, saved_n(&p) * sizeof *copy);
    float *scratch = tu_nan_floats(scratch_n(&p));
    nn_encoder_weights w = weights_of(&p);
    nn_encoder_grads g = grads_of(&two);
    for (int k = 0; k < 2; k++)
        nn_encoder_backward(two.dinp, &g, scratch, p.dout, saved, p.len, &w, p.N, p.T, p.C, p.F, p.NH);
    /* saved holds NaN in its unused tail: compare bytes */
    cr_expect_eq(memcmp(copy, saved, saved_n(&p) * sizeof *copy), 0, "backward wrote into saved");
    memcpy(want.out, one.out, n * sizeof(float));
    for (size_t i = 0; i < n; i++) want.dinp[i] = 0.25f + 2 * one.dinp[i];
    for (int j = 0; j < NW; j++)
        for (size_t i = 0; i < wsize(&p, j); i++) want.g[j][i] = 0.25f + 2 * one.g[j][i];
    expect_res("twice", &two, &want, &p, ACC_TOL, ACC_TOL);

    /* each gradient alone (the others NULL) equals the full run's */
    for (int only = 0; only <= NW; only++) {
        res r;
        res_alloc(&r, &p);
        nn_encoder_grads go = {0};
        float **slot[NW] = {&go.in_w, &go.in_b, &go.out_w, &go.out_b, &go.l1_w, &go.l1_b,
                            &go.l2_w, &go.l2_b, &go.n1_w,  &go.n1_b,  &go.n2_w, &go.n2_b};
        if (only < NW) *slot[only] = r.g[only];
        nn_encoder_backward(only == NW ? r.dinp : NULL, only == NW ? NULL : &go, scratch, p.dout, saved, p.len, &w,
                            p.N, p.T, p.C, p.F, p.NH);
        if (only < NW)
            cr_expect_eq(memcmp(r.g[only], one.g[only], wsize(&p, only) * sizeof(float)), 0, "grad.%s alone",
                         wname[only]);
        else
            cr_expect_eq(memcmp(r.dinp, one.dinp, n * sizeof(float)), 0, "dinp alone (g = NULL)");
        res_free(&r);
    }
    free(copy);
    free(saved);
    free(scratch);
    res_free(&one);
    res_free(&two);
    res_free(&want);
    prob_free(&p);
}

/* ---- finite differences ---- */

static void fd_buf(const char *what, float *x, const float *grad, size_t n, const uint8_t *skip, prob *p,
                   double *worst)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        float x0 = x[i];
        x[i] = x0 + (float)FD_EPS;
        double lp = loss(p);
        x[i] = x0 - (float)FD_EPS;
        double lm = loss(p);
        x[i] = x0;
        double fd = (lp - lm) / (2 * FD_EPS), an = grad[i];
        double err = fabs(fd - an) / fmax(1.0, fabs(an));
        if (err > *worst) *worst = err;
        if (!(err <= FD_TOL)) {
            if (bad < 5) fprintf(stderr, "fd %s[%zu]: analytic %.7g, numeric %.7g\n", what, i, an, fd);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %zu of %zu finite differences beyond %g", what, bad, n, FD_TOL);
}

/* Smallest |pre-activation| of the FFN over the valid rows, recomputed in
 * double from the block's definition (not from the kernel's saved buffers):
 * y1 = LN1(x + out_proj(attention(x))), pre = linear1(y1). Small problems
 * only (C <= 64, T <= 16). */
static double ffn_margin(const prob *p)
{
    cr_assert(p->C <= 64 && p->T <= 16);
    size_t C = p->C, T = p->T, F = p->F, D = C / p->NH;
    double margin = INFINITY;
    for (size_t n = 0; n < p->N; n++) {
        size_t L = p->len[n] < T ? p->len[n] : T;
        for (size_t i = 0; i < L; i++) {
            double ctx[64] = {0}, r1[64], y1[64];
            const float *xi = p->inp + (n * T + i) * C;
            for (size_t hd = 0; hd < p->NH; hd++) {
                double sc[16], mx = -INFINITY, sum = 0;
                for (size_t j = 0; j < L; j++) {
                    const float *xj = p->inp + (n * T + j) * C;
                    double s = 0;
                    for (size_t e = 0; e < D; e++) {
                        double q = p->w[1][hd * D + e], k = p->w[1][C + hd * D + e];
                        for (size_t c = 0; c < C; c++) {
                            q += (double)p->w[0][(hd * D + e) * C + c] * xi[c];
                            k += (double)p->w[0][(C + hd * D + e) * C + c] * xj[c];
                        }
                        s += q * k;
                    }
                    sc[j] = s / sqrt((double)D);
                    mx = fmax(mx, sc[j]);
                }
                for (size_t j = 0; j < L; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (size_t j = 0; j < L; j++) {
                    const float *xj = p->inp + (n * T + j) * C;
                    for (size_t e = 0; e < D; e++) {
                        double v = p->w[1][2 * C + hd * D + e];
                        for (size_t c = 0; c < C; c++) v += (double)p->w[0][(2 * C + hd * D + e) * C + c] * xj[c];
                        ctx[hd * D + e] += sc[j] / sum * v;
                    }
                }
            }
            double mean = 0, var = 0;
            for (size_t o = 0; o < C; o++) {
                double a = p->w[3][o];
                for (size_t c = 0; c < C; c++) a += (double)p->w[2][o * C + c] * ctx[c];
                r1[o] = xi[o] + a;
                mean += r1[o] / (double)C;
            }
            for (size_t o = 0; o < C; o++) var += (r1[o] - mean) * (r1[o] - mean) / (double)C;
            for (size_t o = 0; o < C; o++)
                y1[o] = (r1[o] - mean) / sqrt(var + NN_ENCODER_LN_EPS) * p->w[8][o] + p->w[9][o];
            for (size_t f = 0; f < F; f++) {
                double h = p->w[5][f];
                for (size_t c = 0; c < C; c++) h += (double)p->w[4][f * C + c] * y1[c];
                margin = fmin(margin, fabs(h));
            }
        }
    }
    return margin;
}

Test(nn_attention, finite_differences)
{
    static const uint32_t len[3] = {4, 0, 2};
    prob p;
    prob_random(&p, 3, 4, 4, 6, 2, len, 4242);
    double margin = ffn_margin(&p);
    /* away from the ReLU kinks by 5x the step (a new seed changes this) */
    cr_assert(margin > 0.05, "FFN pre-activation %.3g is near the ReLU kink: pick another seed", margin);
    nn_force_reference(1); /* a fixed summation order: less noise */
    res r;
    res_alloc(&r, &p);
    run(&r, &p, 1, NULL);
    double worst = 0;
    uint8_t *skip = calloc(p.N * p.T * p.C, 1);
    for (size_t n = 0; n < p.N; n++)
        for (size_t t = p.len[n]; t < p.T; t++) memset(skip + (n * p.T + t) * p.C, 1, p.C);
    fd_buf("inp", p.inp, r.dinp, p.N * p.T * p.C, skip, &p, &worst);
    for (int i = 0; i < NW; i++) fd_buf(wname[i], p.w[i], r.g[i], wsize(&p, i), NULL, &p, &worst);
    nn_force_reference(0);
    fprintf(stderr, "fd encoder: worst scaled error %.3g (tolerance %g, step %g, ReLU margin %.3g)\n", worst, FD_TOL,
            FD_EPS, margin);
    free(skip);
    res_free(&r);
    prob_free(&p);
}

/* ---- reference vs BLAS ---- */

Test(nn_attention, reference_matches_blas)
{
    enum { N = 64 };
    uint32_t len[N];
    uint64_t s = 99;
    for (size_t i = 0; i < N; i++) len[i] = (uint32_t)(tu_rand(&s) % 11);
    len[0] = 0, len[1] = 10, len[2] = 1;
    prob p;
    prob_random(&p, N, 10, 36, 144, 2, len, 1234);
    res blas, ref;
    res_alloc(&blas, &p);
    res_alloc(&ref, &p);
    nn_force_reference(0);
    run(&blas, &p, 1, NULL);
    nn_force_reference(1);
    run(&ref, &p, 1, NULL);
    nn_force_reference(0);
    expect_res("ref vs blas", &blas, &ref, &p, REF_TOL, REF_GRAD_TOL);
    res_free(&blas);
    res_free(&ref);
    prob_free(&p);
}

/* ---- edges ---- */

Test(nn_attention, empty_shapes)
{
    static const uint32_t zeros[3] = {0, 0, 0};
    /* N = 0, T = 0: nothing touched */
    for (int c = 0; c < 2; c++) {
        prob p;
        prob_random(&p, c ? 3 : 0, c ? 0 : 4, 4, 5, 2, zeros, 7);
        res r;
        res_alloc(&r, &p);
        run(&r, &p, 1, NULL);
        for (int j = 0; j < NW; j++)
            for (size_t i = 0; i < wsize(&p, j); i++) cr_expect_eq(r.g[j][i], 0.0f);
        res_free(&r);
        prob_free(&p);
    }
    /* every sequence empty: out 0, no gradient */
    prob p;
    prob_random(&p, 3, 4, 4, 5, 2, zeros, 8);
    res r;
    res_alloc(&r, &p);
    run(&r, &p, 1, NULL);
    for (size_t i = 0; i < p.N * p.T * p.C; i++) {
        cr_expect_eq(r.out[i], 0.0f);
        cr_expect_eq(r.dinp[i], 0.0f);
    }
    for (int j = 0; j < NW; j++)
        for (size_t i = 0; i < wsize(&p, j); i++) cr_expect_eq(r.g[j][i], 0.0f);
    res_free(&r);
    prob_free(&p);
}
