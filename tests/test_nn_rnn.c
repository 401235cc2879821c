/*
 * test_nn_rnn.c: the recurrent kernels (models/nn_rnn.h): GRU, AUGRU, LSTM,
 * Bi-LSTM.
 *
 * What it checks:
 *   - golden: forward outputs, final states and every gradient against
 *     tests/golden/nn_rnn.safetensors (written by gen_nn_rnn.py from PyTorch,
 *     two cases per kernel, lengths 0, 1, T and between, unsorted), on the
 *     BLAS path and on the reference path. Tolerances, relative:
 *     |a - b| <= tol * max(1, |b|) with tol = FWD_TOL (1e-5) for outputs and
 *     final states, GRAD_TOL (1e-4) for gradients (observed worst about 2e-7
 *     and 2e-6). The first mismatches are printed. saved and scratch are filled with NaN first, so a kernel that
 *     reads what it did not write fails.
 *   - finite differences: each kernel on a tiny problem, every entry of every
 *     input, weight (and attention score): central differences of
 *     L = sum(out*dout) + sum(hfinal*dhfinal) [+ sum(cfinal*dcfinal)],
 *     step FD_EPS (1e-2), |fd - analytic| <= FD_TOL (5e-4) * max(1, |analytic|)
 *     (observed worst about 6e-5: float32 forward, double loss sum).
 *   - reference vs BLAS on a larger random problem (B=16 T=30 C=24 H=32):
 *     outputs and states within REF_TOL (1e-5), gradients within
 *     REF_GRAD_TOL (5e-5), relative (the sums run in a different order, so
 *     not bit-equal; observed worst about 4e-7 and 4e-6).
 *   - accumulation: backward twice gives twice the gradients, into buffers
 *     that start nonzero; NULL gradient pointers skip (the others unchanged);
 *     backward leaves saved untouched.
 *   - edges: B = 0, T = 0, all lengths 0 (zero outputs and states).
 * What it is not: a benchmark.
 */
#include "loaders/safetensors.h"
#include "models/nn.h"
#include "models/nn_rnn.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define REF_TOL 1e-5
#define REF_GRAD_TOL 5e-5
#define FD_EPS 1e-2
#define FD_TOL 5e-4
#define ACC_TOL 1e-6
#define MAX_PRINT 5

/* ---- a problem of one of the four kernels, and its results ---- */

typedef enum kind { K_GRU, K_AUGRU, K_LSTM, K_BILSTM } kind;
static const char *const kind_name[] = {"gru", "augru", "lstm", "bilstm"};

#define MAXW 4

typedef struct prob {
    kind k;
    size_t B, T, C, H;
    float *inp;      // (B, T, C)
    float *att;      // (B, T), AUGRU only
    uint32_t *len;   // (B)
    float *w[MAXW];  // GRU: w (3H, C), u (3H, H), b (3H); LSTM: w_ih, w_hh, b_ih, b_hh (x nd directions)
    float *dout;     // (B, T, H)
    float *dh;       // (nd, B, H)
    float *dc;       // (nd, B, H), LSTMs only
} prob;

typedef struct res {
    float *out;       // (B, T, H)
    float *hT, *cT;   // (nd, B, H)
    float *dinp;      // (B, T, C)
    float *datt;      // (B, T)
    float *dw[MAXW];  // like w
} res;

static int is_lstm(kind k)
{
    return k == K_LSTM || k == K_BILSTM;
}

static size_t ndir(kind k)
{
    return k == K_BILSTM ? 2 : 1;
}

static size_t nweights(kind k)
{
    return is_lstm(k) ? 4 : 3;
}

static size_t wsize(const prob *p, size_t i)
{
    size_t H = p->H, C = p->C, nd = ndir(p->k);
    if (!is_lstm(p->k)) {
        size_t s[3] = {3 * H * C, 3 * H * H, 3 * H};
        return s[i];
    }
    size_t s[4] = {nd * 4 * H * C, nd * 4 * H * H, nd * 4 * H, nd * 4 * H};
    return s[i];
}

static void res_alloc(res *r, const prob *p)
{
    size_t B = p->B, T = p->T, H = p->H, nd = ndir(p->k);
    memset(r, 0, sizeof *r);
    r->out = tu_floats(B * T * H);
    r->hT = tu_floats(nd * B * H);
    r->cT = tu_floats(nd * B * H);
    r->dinp = tu_floats(B * T * p->C);
    r->datt = tu_floats(B * T);
    for (size_t i = 0; i < nweights(p->k); i++) r->dw[i] = tu_floats(wsize(p, i));
}

static void res_free(res *r)
{
    free(r->out);
    free(r->hT);
    free(r->cT);
    free(r->dinp);
    free(r->datt);
    for (size_t i = 0; i < MAXW; i++) free(r->dw[i]);
}

static size_t saved_floats(const prob *p)
{
    size_t B = p->B, T = p->T, C = p->C, H = p->H;
    switch (p->k) {
    case K_GRU: return nn_gru_saved_floats(B, T, C, H);
    case K_AUGRU: return nn_augru_saved_floats(B, T, C, H);
    case K_LSTM: return nn_lstm_saved_floats(B, T, C, H);
    default: return nn_bilstm_saved_floats(B, T, C, H);
    }
}

static size_t scratch_floats(const prob *p)
{
    size_t B = p->B, T = p->T, C = p->C, H = p->H;
    switch (p->k) {
    case K_GRU: return nn_gru_scratch_floats(B, T, C, H);
    case K_AUGRU: return nn_augru_scratch_floats(B, T, C, H);
    case K_LSTM: return nn_lstm_scratch_floats(B, T, C, H);
    default: return nn_bilstm_scratch_floats(B, T, C, H);
    }
}

static void forward(res *r, float *saved, float *scratch, const prob *p)
{
    size_t B = p->B, T = p->T, C = p->C, H = p->H;
    float *const *w = p->w;
    switch (p->k) {
    case K_GRU: nn_gru_forward(r->out, r->hT, saved, scratch, p->inp, p->len, w[0], w[1], w[2], B, T, C, H); break;
    case K_AUGRU:
        nn_augru_forward(r->out, r->hT, saved, scratch, p->inp, p->att, p->len, w[0], w[1], w[2], B, T, C, H);
        break;
    case K_LSTM:
        nn_lstm_forward(r->out, r->hT, r->cT, saved, scratch, p->inp, p->len, w[0], w[1], w[2], w[3], B, T, C, H);
        break;
    default:
        nn_bilstm_forward(r->out, r->hT, r->cT, saved, scratch, p->inp, p->len, w[0], w[1], w[2], w[3], B, T, C,
                          H);
    }
}

/* Gradients into r->d* (+=), each skipped when that pointer is NULL. */
static void backward(res *r, float *scratch, const float *saved, const prob *p)
{
    size_t B = p->B, T = p->T, C = p->C, H = p->H;
    float *const *w = p->w;
    float *const *dw = r->dw;
    switch (p->k) {
    case K_GRU:
        nn_gru_backward(r->dinp, dw[0], dw[1], dw[2], scratch, p->dout, p->dh, saved, p->inp, p->len, w[0], w[1], B,
                        T, C, H);
        break;
    case K_AUGRU:
        nn_augru_backward(r->dinp, r->datt, dw[0], dw[1], dw[2], scratch, p->dout, p->dh, saved, p->inp, p->att,
                          p->len, w[0], w[1], B, T, C, H);
        break;
    case K_LSTM:
        nn_lstm_backward(r->dinp, dw[0], dw[1], dw[2], dw[3], scratch, p->dout, p->dh, p->dc, saved, p->inp, p->len,
                         w[0], w[1], B, T, C, H);
        break;
    default:
        nn_bilstm_backward(r->dinp, dw[0], dw[1], dw[2], dw[3], scratch, p->dout, p->dh, p->dc, saved, p->inp,
                           p->len, w[0], w[1], B, T, C, H);
    }
}

static void nan_fill(float *x, size_t n)
{
    if (x)
        for (size_t i = 0; i < n; i++) x[i] = NAN;
}

/* Forward, then `nback` backward calls (gradients as r holds them: zeroed
 * by res_alloc, or whatever the caller put there). saved, scratch and the
 * forward outputs start as NaN (forward must write every entry). */
static void run(res *r, const prob *p, int nback)
{
    float *saved = tu_nan_floats(saved_floats(p));
    float *scratch = tu_nan_floats(scratch_floats(p));
    size_t nbh = ndir(p->k) * p->B * p->H;
    nan_fill(r->out, p->B * p->T * p->H);
    nan_fill(r->hT, nbh);
    if (is_lstm(p->k)) nan_fill(r->cT, nbh);
    forward(r, saved, scratch, p);
    for (int i = 0; i < nback; i++) backward(r, scratch, saved, p);
    free(saved);
    free(scratch);
}

/* L = sum(out*dout) + sum(hT*dh) [+ sum(cT*dc)], in double */
static double loss(const prob *p)
{
    res r;
    res_alloc(&r, p);
    run(&r, p, 0);
    size_t nbth = p->B * p->T * p->H, nbh = ndir(p->k) * p->B * p->H;
    double l = 0;
    for (size_t i = 0; i < nbth; i++) l += (double)r.out[i] * p->dout[i];
    for (size_t i = 0; i < nbh; i++) l += (double)r.hT[i] * p->dh[i];
    if (is_lstm(p->k))
        for (size_t i = 0; i < nbh; i++) l += (double)r.cT[i] * p->dc[i];
    res_free(&r);
    return l;
}

/* ---- comparison ---- */

/* Counts entries with |a - b| > tol * max(1, |b|) and prints the first ones. */
static size_t mismatches(const char *what, const float *a, const float *b, size_t n, double tol)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), lim = tol * fmax(1.0, fabs((double)b[i]));
        if (d / lim * tol > worst) worst = d / lim * tol;
        if (!(d <= lim)) { /* NaN counts */
            if (bad < MAX_PRINT) fprintf(stderr, "%s[%zu]: got %.9g, want %.9g (|diff| %.3g)\n", what, i, a[i], b[i], d);
            bad++;
        }
    }
    if (bad) fprintf(stderr, "%s: %zu of %zu beyond %.1g (worst scaled error %.3g)\n", what, bad, n, tol, worst);
    return bad;
}

static void expect_close(const char *what, const float *a, const float *b, size_t n, double tol)
{
    size_t bad = mismatches(what, a, b, n, tol);
    cr_expect_eq(bad, 0, "%s: %zu mismatches (tolerance %g)", what, bad, tol);
}

/* Compares all outputs (and gradients when grads) of two results. */
static void expect_res_close(const char *tag, const res *a, const res *b, const prob *p, int grads, double ftol,
                             double gtol)
{
    char what[128];
    size_t B = p->B, T = p->T, H = p->H, nd = ndir(p->k);
    snprintf(what, sizeof what, "%s out", tag);
    expect_close(what, a->out, b->out, B * T * H, ftol);
    snprintf(what, sizeof what, "%s hfinal", tag);
    expect_close(what, a->hT, b->hT, nd * B * H, ftol);
    if (is_lstm(p->k)) {
        snprintf(what, sizeof what, "%s cfinal", tag);
        expect_close(what, a->cT, b->cT, nd * B * H, ftol);
    }
    if (!grads) return;
    snprintf(what, sizeof what, "%s dinp", tag);
    expect_close(what, a->dinp, b->dinp, B * T * p->C, gtol);
    if (p->k == K_AUGRU) {
        snprintf(what, sizeof what, "%s datt", tag);
        expect_close(what, a->datt, b->datt, B * T, gtol);
    }
    for (size_t i = 0; i < nweights(p->k); i++) {
        snprintf(what, sizeof what, "%s dw[%zu]", tag, i);
        expect_close(what, a->dw[i], b->dw[i], wsize(p, i), gtol);
    }
}

/* ---- random problems ---- */

static float urand(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(tu_rand(s) >> 11) * (1.0 / 9007199254740992.0));
}

static float *rand_buf(uint64_t *s, size_t n, float k)
{
    float *p = tu_floats(n);
    for (size_t i = 0; i < n; i++) p[i] = urand(s, -k, k);
    return p;
}

static void prob_random(prob *p, kind k, size_t B, size_t T, size_t C, size_t H, const uint32_t *len, uint64_t seed)
{
    uint64_t s = seed;
    size_t nd = ndir(k);
    memset(p, 0, sizeof *p);
    p->k = k;
    p->B = B, p->T = T, p->C = C, p->H = H;
    p->inp = rand_buf(&s, B * T * C, 1.5f);
    p->att = rand_buf(&s, B * T, 1.0f);
    for (size_t i = 0; i < B * T; i++) p->att[i] = 0.5f + 0.5f * p->att[i]; /* (0, 1) */
    p->len = calloc(B ? B : 1, sizeof *p->len);
    cr_assert(p->len);
    if (B) memcpy(p->len, len, B * sizeof *len);
    for (size_t i = 0; i < nweights(k); i++) p->w[i] = rand_buf(&s, wsize(p, i), 0.6f);
    p->dout = rand_buf(&s, B * T * H, 1.0f);
    p->dh = rand_buf(&s, nd * B * H, 1.0f);
    p->dc = rand_buf(&s, nd * B * H, 1.0f);
}

static void prob_free(prob *p)
{
    free(p->inp);
    free(p->att);
    free(p->len);
    for (size_t i = 0; i < MAXW; i++) free(p->w[i]);
    free(p->dout);
    free(p->dh);
    free(p->dc);
}

/* ---- the fixture ---- */

static st_file *fixture;

static void open_fixture(void)
{
    const char *root = getenv("LSIM_SOURCE_ROOT");
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/tests/golden/nn_rnn.safetensors", root && *root ? root : ".");
    int rc = st_open(&fixture, path, err, sizeof err);
    cr_assert_eq(rc, 0, "cannot open the fixture %s: %s (run tests/golden/gen_nn_rnn.py)", path, err);
}

static void close_fixture(void)
{
    st_close(fixture);
    fixture = NULL;
}

/* A copy of F32 tensor "<kern>.<ci>.<name>" of the given shape. */
static float *fx_get(kind k, int ci, const char *name, size_t ndim, const uint64_t *shape)
{
    char full[128], err[512];
    const void *data;
    snprintf(full, sizeof full, "%s.%d.%s", kind_name[k], ci, name);
    int rc = st_get(fixture, full, ST_F32, ndim, shape, &data, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *p = tu_floats(n);
    memcpy(p, data, n * sizeof *p);
    return p;
}

static const char *const gru_wname[] = {"w", "u", "b"};
static const char *const lstm_wname[] = {"w_ih", "w_hh", "b_ih", "b_hh"};

/* Shape of weight i, with a leading direction axis for the Bi-LSTM. */
static size_t wshape(const prob *p, size_t i, uint64_t *sh)
{
    uint64_t H = p->H, C = p->C;
    size_t n = 0;
    if (p->k == K_BILSTM) sh[n++] = 2;
    if (!is_lstm(p->k)) {
        sh[n++] = 3 * H;
        if (i == 0) sh[n++] = C;
        if (i == 1) sh[n++] = H;
    } else {
        sh[n++] = 4 * H;
        if (i == 0) sh[n++] = C;
        if (i == 1) sh[n++] = H;
    }
    return n;
}

/* Loads case ci of kernel k: the problem into p, the expected results into want. */
static void fx_load(prob *p, res *want, kind k, int ci)
{
    char full[128], err[512];
    const void *data;
    memset(p, 0, sizeof *p);
    p->k = k;
    snprintf(full, sizeof full, "%s.%d.inp", kind_name[k], ci);
    const st_tensor *ti = st_find(fixture, full);
    cr_assert(ti && ti->ndim == 3, "fixture lacks %s", full);
    p->B = ti->shape[0], p->T = ti->shape[1], p->C = ti->shape[2];
    snprintf(full, sizeof full, "%s.%d.hfinal", kind_name[k], ci);
    const st_tensor *th = st_find(fixture, full);
    cr_assert(th && th->ndim >= 2, "fixture lacks %s", full);
    p->H = th->shape[th->ndim - 1];
    uint64_t B = p->B, T = p->T, C = p->C, H = p->H, nd = ndir(k);

    p->inp = fx_get(k, ci, "inp", 3, (uint64_t[]){B, T, C});
    snprintf(full, sizeof full, "%s.%d.len", kind_name[k], ci);
    cr_assert_eq(st_get(fixture, full, ST_I32, 1, (uint64_t[]){B}, &data, err, sizeof err), 0, "%s", err);
    p->len = calloc(B, sizeof *p->len);
    cr_assert(p->len);
    for (size_t b = 0; b < B; b++) {
        int32_t l = ((const int32_t *)data)[b];
        cr_assert(l >= 0 && (uint64_t)l <= T, "%s[%zu] = %d", full, b, l);
        p->len[b] = (uint32_t)l;
    }
    p->att = k == K_AUGRU ? fx_get(k, ci, "att", 2, (uint64_t[]){B, T}) : NULL;
    p->dout = fx_get(k, ci, "dout", 3, (uint64_t[]){B, T, H});
    uint64_t st[3] = {nd, B, H};
    size_t snd = k == K_BILSTM ? 3 : 2;
    const uint64_t *sts = k == K_BILSTM ? st : st + 1;
    p->dh = fx_get(k, ci, "dhfinal", snd, sts);
    p->dc = is_lstm(k) ? fx_get(k, ci, "dcfinal", snd, sts) : NULL;

    memset(want, 0, sizeof *want);
    want->out = fx_get(k, ci, "out", 3, (uint64_t[]){B, T, H});
    want->hT = fx_get(k, ci, "hfinal", snd, sts);
    want->cT = is_lstm(k) ? fx_get(k, ci, "cfinal", snd, sts) : NULL;
    want->dinp = fx_get(k, ci, "dinp", 3, (uint64_t[]){B, T, C});
    want->datt = k == K_AUGRU ? fx_get(k, ci, "datt", 2, (uint64_t[]){B, T}) : NULL;
    for (size_t i = 0; i < nweights(k); i++) {
        const char *wn = is_lstm(k) ? lstm_wname[i] : gru_wname[i];
        char dn[32];
        uint64_t sh[3];
        size_t n = wshape(p, i, sh);
        p->w[i] = fx_get(k, ci, wn, n, sh);
        snprintf(dn, sizeof dn, "d%s", wn);
        want->dw[i] = fx_get(k, ci, dn, n, sh);
    }
}

static void golden(kind k)
{
    open_fixture();
    for (int ci = 0; ci < 2; ci++) {
        prob p;
        res want;
        fx_load(&p, &want, k, ci);
        for (int ref = 0; ref <= 1; ref++) {
            char tag[64];
            snprintf(tag, sizeof tag, "%s.%d %s", kind_name[k], ci, ref ? "reference" : "blas");
            nn_force_reference(ref);
            res got;
            res_alloc(&got, &p);
            run(&got, &p, 1);
            expect_res_close(tag, &got, &want, &p, 1, FWD_TOL, GRAD_TOL);
            res_free(&got);
        }
        nn_force_reference(0);
        prob_free(&p);
        res_free(&want);
    }
    close_fixture();
}

Test(nn_rnn, golden_gru)
{
    golden(K_GRU);
}

Test(nn_rnn, golden_augru)
{
    golden(K_AUGRU);
}

Test(nn_rnn, golden_lstm)
{
    golden(K_LSTM);
}

Test(nn_rnn, golden_bilstm)
{
    golden(K_BILSTM);
}

/* ---- finite differences ---- */

static void fd_check_buf(const char *what, float *x, const float *grad, size_t n, prob *p, double *worst)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
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
            if (bad < MAX_PRINT) fprintf(stderr, "fd %s[%zu]: analytic %.7g, numeric %.7g\n", what, i, an, fd);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %zu of %zu finite differences beyond %g", what, bad, n, FD_TOL);
}

static void fd_kernel(kind k)
{
    /* unsorted lengths with 0, 1, T */
    static const uint32_t len[4] = {4, 0, 2, 1};
    prob p;
    prob_random(&p, k, 4, 4, 3, 3, len, 77 + (uint64_t)k);
    res r;
    res_alloc(&r, &p);
    nn_force_reference(1); /* the reference path sums in a fixed order: less noise */
    run(&r, &p, 1);
    double worst = 0;
    char what[64];
    snprintf(what, sizeof what, "%s inp", kind_name[k]);
    fd_check_buf(what, p.inp, r.dinp, p.B * p.T * p.C, &p, &worst);
    if (k == K_AUGRU) {
        snprintf(what, sizeof what, "%s att", kind_name[k]);
        fd_check_buf(what, p.att, r.datt, p.B * p.T, &p, &worst);
    }
    for (size_t i = 0; i < nweights(k); i++) {
        snprintf(what, sizeof what, "%s w[%zu]", kind_name[k], i);
        fd_check_buf(what, p.w[i], r.dw[i], wsize(&p, i), &p, &worst);
    }
    nn_force_reference(0);
    fprintf(stderr, "fd %s: worst scaled error %.3g (tolerance %g, step %g)\n", kind_name[k], worst, FD_TOL, FD_EPS);
    res_free(&r);
    prob_free(&p);
}

Test(nn_rnn, fd_gru)
{
    fd_kernel(K_GRU);
}

Test(nn_rnn, fd_augru)
{
    fd_kernel(K_AUGRU);
}

Test(nn_rnn, fd_lstm)
{
    fd_kernel(K_LSTM);
}

Test(nn_rnn, fd_bilstm)
{
    fd_kernel(K_BILSTM);
}

/* ---- reference vs BLAS ---- */

Test(nn_rnn, reference_vs_blas)
{
    static const uint32_t len[16] = {30, 29, 1, 0, 17, 30, 5, 12, 30, 2, 0, 23, 8, 30, 19, 3};
    for (int k = K_GRU; k <= K_BILSTM; k++) {
        prob p;
        prob_random(&p, (kind)k, 16, 30, 24, 32, len, 1000 + (uint64_t)k);
        res a, b;
        res_alloc(&a, &p);
        res_alloc(&b, &p);
        nn_force_reference(0);
        run(&a, &p, 1);
        nn_force_reference(1);
        run(&b, &p, 1);
        nn_force_reference(0);
        char tag[64];
        snprintf(tag, sizeof tag, "%s blas vs reference", kind_name[k]);
        expect_res_close(tag, &a, &b, &p, 1, REF_TOL, REF_GRAD_TOL);
        res_free(&a);
        res_free(&b);
        prob_free(&p);
    }
}

/* ---- accumulation, NULL gradients, saved untouched ---- */

Test(nn_rnn, accumulates_and_skips_null)
{
    static const uint32_t len[5] = {6, 0, 3, 1, 6};
    for (int k = K_GRU; k <= K_BILSTM; k++) {
        prob p;
        prob_random(&p, (kind)k, 5, 6, 4, 5, len, 500 + (uint64_t)k);
        size_t nw = nweights((kind)k);
        char tag[64];

        /* once, from zero */
        res one;
        res_alloc(&one, &p);
        run(&one, &p, 1);

        /* twice, from a nonzero start: start + 2 * once */
        res two;
        res_alloc(&two, &p);
        size_t ninp = p.B * p.T * p.C, natt = p.B * p.T;
        for (size_t i = 0; i < ninp; i++) two.dinp[i] = 0.25f;
        for (size_t i = 0; i < natt; i++) two.datt[i] = 0.25f;
        for (size_t j = 0; j < nw; j++)
            for (size_t i = 0; i < wsize(&p, j); i++) two.dw[j][i] = 0.25f;
        float *saved = tu_nan_floats(saved_floats(&p)), *scratch = tu_nan_floats(scratch_floats(&p));
        forward(&two, saved, scratch, &p);
        size_t ns = saved_floats(&p);
        float *copy = tu_floats(ns);
        memcpy(copy, saved, ns * sizeof *copy);
        backward(&two, scratch, saved, &p);
        backward(&two, scratch, saved, &p);
        cr_expect_eq(memcmp(copy, saved, ns * sizeof *copy), 0, "%s: backward wrote into saved", kind_name[k]);

        res want;
        res_alloc(&want, &p);
        for (size_t i = 0; i < ninp; i++) want.dinp[i] = 0.25f + 2 * one.dinp[i];
        for (size_t i = 0; i < natt; i++) want.datt[i] = 0.25f + 2 * one.datt[i];
        for (size_t j = 0; j < nw; j++)
            for (size_t i = 0; i < wsize(&p, j); i++) want.dw[j][i] = 0.25f + 2 * one.dw[j][i];
        memcpy(want.out, one.out, p.B * p.T * p.H * sizeof *want.out);
        memcpy(want.hT, one.hT, ndir(p.k) * p.B * p.H * sizeof *want.hT);
        memcpy(want.cT, one.cT, ndir(p.k) * p.B * p.H * sizeof *want.cT);
        snprintf(tag, sizeof tag, "%s twice", kind_name[k]);
        expect_res_close(tag, &two, &want, &p, 1, ACC_TOL, ACC_TOL);

        /* each gradient alone (the others NULL) equals the full run's */
        for (size_t only = 0; only < nw + 2; only++) {
            res r;
            res_alloc(&r, &p);
            float *keep_dinp = r.dinp, *keep_datt = r.datt, *keep_dw[MAXW];
            memcpy(keep_dw, r.dw, sizeof keep_dw);
            r.dinp = only == nw ? keep_dinp : NULL;
            r.datt = only == nw + 1 ? keep_datt : NULL;
            for (size_t j = 0; j < nw; j++) r.dw[j] = only == j ? keep_dw[j] : NULL;
            forward(&r, saved, scratch, &p);
            backward(&r, scratch, saved, &p);
            snprintf(tag, sizeof tag, "%s only %zu", kind_name[k], only);
            if (only < nw) expect_close(tag, keep_dw[only], one.dw[only], wsize(&p, only), 0);
            if (only == nw) expect_close(tag, keep_dinp, one.dinp, ninp, 0);
            if (only == nw + 1 && k == K_AUGRU) expect_close(tag, keep_datt, one.datt, natt, 0);
            r.dinp = keep_dinp, r.datt = keep_datt;
            memcpy(r.dw, keep_dw, sizeof keep_dw);
            res_free(&r);
        }

        /* outputs and final states not wanted: NULL is accepted, gradients the same */
        {
            res r;
            res_alloc(&r, &p);
            float *o = r.out, *h = r.hT, *c = r.cT;
            r.out = r.hT = r.cT = NULL;
            forward(&r, saved, scratch, &p);
            backward(&r, scratch, saved, &p);
            r.out = o, r.hT = h, r.cT = c;
            snprintf(tag, sizeof tag, "%s NULL outputs", kind_name[k]);
            expect_close(tag, r.dinp, one.dinp, ninp, 0);
            res_free(&r);
        }

        /* no upstream gradient at all: every gradient stays 0 */
        {
            res r;
            res_alloc(&r, &p);
            prob q = p;
            q.dout = q.dh = q.dc = NULL;
            forward(&r, saved, scratch, &q);
            backward(&r, scratch, saved, &q);
            float *zero = tu_floats(ninp);
            snprintf(tag, sizeof tag, "%s no upstream", kind_name[k]);
            expect_close(tag, r.dinp, zero, ninp, 0);
            free(zero);
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
}

/* ---- edges ---- */

Test(nn_rnn, empty_shapes)
{
    static const uint32_t zeros[3] = {0, 0, 0};
    for (int k = K_GRU; k <= K_BILSTM; k++) {
        /* B = 0 and T = 0: nothing to do, nothing touched out of bounds */
        for (int c = 0; c < 2; c++) {
            prob p;
            prob_random(&p, (kind)k, c ? 3 : 0, c ? 0 : 5, 4, 3, zeros, 9);
            res r;
            res_alloc(&r, &p);
            run(&r, &p, 1);
            for (size_t i = 0; i < ndir(p.k) * p.B * p.H; i++) {
                cr_expect_eq(r.hT[i], 0.0f, "%s: hfinal with T = 0", kind_name[k]);
                if (is_lstm(p.k)) cr_expect_eq(r.cT[i], 0.0f, "%s: cfinal with T = 0", kind_name[k]);
            }
            for (size_t j = 0; j < nweights(p.k); j++)
                for (size_t i = 0; i < wsize(&p, j); i++) cr_expect_eq(r.dw[j][i], 0.0f);
            res_free(&r);
            prob_free(&p);
        }
        /* every sequence empty: outputs and states 0, gradients 0 */
        prob p;
        prob_random(&p, (kind)k, 3, 5, 4, 3, zeros, 10);
        res r;
        res_alloc(&r, &p);
        run(&r, &p, 1);
        for (size_t i = 0; i < p.B * p.T * p.H; i++) cr_expect_eq(r.out[i], 0.0f, "%s: out", kind_name[k]);
        for (size_t i = 0; i < ndir(p.k) * p.B * p.H; i++) cr_expect_eq(r.hT[i], 0.0f, "%s: hfinal", kind_name[k]);
        for (size_t i = 0; i < p.B * p.T * p.C; i++) cr_expect_eq(r.dinp[i], 0.0f, "%s: dinp", kind_name[k]);
        for (size_t j = 0; j < nweights(p.k); j++)
            for (size_t i = 0; i < wsize(&p, j); i++) cr_expect_eq(r.dw[j][i], 0.0f, "%s: dw", kind_name[k]);
        res_free(&r);
        prob_free(&p);
    }
}
