/*
 * test_nn_small.c: the small-matrix kernels of models/nn_small.h (a b^T,
 * w^T a, a b) and vm_exp (models/nn_vmath.h): each fast path against its
 * plain C reference (nn_force_reference(1)).
 *
 * Shapes cover every tail the AVX2 paths handle apart: K below, at and past
 * a multiple of 8 and of 32, N not a multiple of 4, row strides wider than
 * K (a column block of a wider matrix), M = 0. Tolerance: the two sum in
 * different orders, so an entry may differ by a few float roundings of the
 * sum of its products' magnitudes: 1e-6 of that sum (tu_compare_f32 is
 * relative to the entry, which a cancelling sum makes small).
 */
#include "models/nn.h"
#include "models/nn_small.h"
#include "models/nn_vmath.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float uniform(uint64_t *s)
{
    return (float)((double)(tu_rand(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* |got - want| <= 1e-6 * mag for every entry; mag (N) the magnitude sums */
static int close_to(const char *what, const float *got, const float *want, const double *mag, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= 1e-6 * mag[i] + 1e-30)) {
            if (bad++ < 5) cr_log_error("%s[%zu]: got %.9g want %.9g (magnitude %g)", what, i, got[i], want[i], mag[i]);
        }
    return bad;
}

/* One case's operands: a (m, k; lda), b (n, k; ldb) for nt, or b's first rows as (n, k) for nn; w (m, n). */
typedef struct operands {
    const float *a, *b, *w;
    size_t m, n, k, lda, ldb;
} operands;

static void run_nt(float *out, size_t ldo, const operands *x)
{
    nn_small_nt(out, ldo, x->a, x->lda, x->b, x->ldb, x->m, x->n, x->k);
}

static void run_tn(float *out, size_t ldo, const operands *x)
{
    nn_small_tn_acc(out, ldo, x->w, x->a, x->lda, x->m, x->n, x->k);
}

static void run_nn(float *out, size_t ldo, const operands *x)
{
    nn_small_nn(out, ldo, x->w, x->n, x->b, x->ldb, x->m, x->k, x->n);
}

/* Runs a kernel on copies of init (rows x ldo) on the fast path and on the reference; compares within
 * 1e-6 of mag, the magnitudes each entry sums. */
static void check(const char *what, void (*run)(float *, size_t, const operands *), const operands *x,
                  const float *init, const double *mag, size_t rows, size_t ldo)
{
    size_t n = rows * ldo;
    float *fast = tu_floats(n + 1), *ref = tu_floats(n + 1);
    memcpy(fast, init, n * sizeof *fast);
    memcpy(ref, init, n * sizeof *ref);
    run(fast, ldo, x);
    nn_force_reference(1);
    run(ref, ldo, x);
    nn_force_reference(0);
    cr_expect_eq(close_to(what, fast, ref, mag, n), 0, "%s, m %zu n %zu k %zu", what, x->m, x->n, x->k);
    free(fast);
    free(ref);
}

Test(nn_small, nt_tn_and_nn_match_reference)
{
    static const size_t shapes[][3] = {{50, 4, 36}, {1, 1, 1}, {7, 5, 8}, {3, 9, 31}, {13, 4, 33}, {0, 4, 36},
                                       {5, 3, 64}, {2, 7, 70}, {24, 4, 8}, {9, 1, 100}};
    uint64_t seed = 11;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        size_t m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], lda = k + 3, ldb = k + 5;
        float *a = tu_floats(m * lda + 1), *b = tu_floats(n * ldb + 1), *w = tu_floats(m * n + 1);
        for (size_t i = 0; i < m * lda; i++) a[i] = uniform(&seed);
        for (size_t i = 0; i < n * ldb; i++) b[i] = uniform(&seed);
        for (size_t i = 0; i < m * n; i++) w[i] = uniform(&seed);
        operands x = {a, b, w, m, n, k, lda, ldb};
        size_t ld = (n > k ? n : k) + 4, rows = m > n ? m : n; /* outputs: stride ld, gaps left alone */
        float *init = tu_floats(rows * ld + 1);
        double *mag = calloc(rows * ld + 1, sizeof *mag);
        /* nt: out (m, n) = a b^T, over 7s that the gaps must keep */
        for (size_t i = 0; i < rows * ld; i++) init[i] = 7.0f, mag[i] = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                for (size_t d = 0; d < k; d++) mag[i * ld + j] += fabs((double)a[i * lda + d] * b[j * ldb + d]);
        check("nt", run_nt, &x, init, mag, m, ld);
        /* tn_acc: out (n, k) += w^T a, onto values already there */
        for (size_t i = 0; i < rows * ld; i++) init[i] = uniform(&seed), mag[i] = fabs((double)init[i]);
        for (size_t r = 0; r < m; r++)
            for (size_t j = 0; j < n; j++)
                for (size_t d = 0; d < k; d++) mag[j * ld + d] += fabs((double)w[r * n + j] * a[r * lda + d]);
        check("tn_acc", run_tn, &x, init, mag, n, ld);
        /* nn: out (m, k) = w (m, n) b (n, k) */
        for (size_t i = 0; i < rows * ld; i++) init[i] = 7.0f, mag[i] = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < k; j++)
                for (size_t r = 0; r < n; r++) mag[i * ld + j] += fabs((double)w[i * n + r] * b[r * ldb + j]);
        check("nn", run_nn, &x, init, mag, m, ld);
        free(init);
        free(mag);
        free(a);
        free(b);
        free(w);
    }
}

/* vm_exp against expf where it is finite (below 88), each vector path: within 5e-7
 * relative, as the other activations (tests/test_nn_basic.c) */
Test(nn_small, exp_matches_reference)
{
    enum { N = 100003 };
    float *x = tu_floats(N), *fast = tu_floats(N), *ref = tu_floats(N);
    for (size_t i = 0; i < N; i++) x[i] = -100.0f + 188.0f * (float)i / (float)(N - 1); /* up to 88: finite */
    for (int avx2 = 1; avx2 >= 0; avx2--) {
        vm_allow_avx2(avx2);
        vm_exp(fast + 1, x + 1, N - 1);
        vm_exp(fast, x, 1);
        nn_force_reference(1);
        vm_exp(ref, x, N);
        nn_force_reference(0);
        double worst = 0;
        for (size_t i = 0; i < N; i++) worst = fmax(worst, fabs((double)fast[i] - ref[i]) / ref[i]);
        cr_expect(worst < 5e-7, "vm_exp (avx2 allowed %d): worst relative error %g", avx2, worst);
    }
    vm_allow_avx2(1);
    free(x);
    free(fast);
    free(ref);
}
