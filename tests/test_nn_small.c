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

Test(nn_small, nt_tn_and_nn_match_reference)
{
    static const size_t shapes[][3] = {{50, 4, 36}, {1, 1, 1}, {7, 5, 8}, {3, 9, 31}, {13, 4, 33}, {0, 4, 36},
                                       {5, 3, 64}, {2, 7, 70}, {24, 4, 8}, {9, 1, 100}};
    uint64_t seed = 11;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        size_t m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], lda = k + 3, ldb = k + 5, ldo = n + 2;
        float *a = tu_floats(m * lda + 1), *b = tu_floats(n * ldb + 1), *w = tu_floats(m * n + 1);
        for (size_t i = 0; i < m * lda; i++) a[i] = uniform(&seed);
        for (size_t i = 0; i < n * ldb; i++) b[i] = uniform(&seed);
        for (size_t i = 0; i < m * n; i++) w[i] = uniform(&seed);
        /* nt: out (m, n) stride ldo; the gaps between rows must stay untouched */
        float *fast = tu_floats(m * ldo + 1), *ref = tu_floats(m * ldo + 1);
        double *mag = calloc(m * ldo + 1, sizeof *mag);
        for (size_t i = 0; i < m * ldo; i++) fast[i] = ref[i] = 7.0f;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                for (size_t d = 0; d < k; d++) mag[i * ldo + j] += fabs((double)a[i * lda + d] * b[j * ldb + d]);
        nn_small_nt(fast, ldo, a, lda, b, ldb, m, n, k);
        nn_force_reference(1);
        nn_small_nt(ref, ldo, a, lda, b, ldb, m, n, k);
        nn_force_reference(0);
        cr_expect_eq(close_to("nt", fast, ref, mag, m * ldo), 0, "nt, m %zu n %zu k %zu", m, n, k);
        free(fast);
        free(ref);
        free(mag);
        /* tn_acc: out (n, k) stride ldo2 += w^T a, onto values already there */
        size_t ldo2 = k + 4;
        fast = tu_floats(n * ldo2 + 1), ref = tu_floats(n * ldo2 + 1);
        mag = calloc(n * ldo2 + 1, sizeof *mag);
        for (size_t i = 0; i < n * ldo2; i++) fast[i] = ref[i] = uniform(&seed), mag[i] = fabs((double)fast[i]);
        for (size_t r = 0; r < m; r++)
            for (size_t j = 0; j < n; j++)
                for (size_t d = 0; d < k; d++) mag[j * ldo2 + d] += fabs((double)w[r * n + j] * a[r * lda + d]);
        nn_small_tn_acc(fast, ldo2, w, a, lda, m, n, k);
        nn_force_reference(1);
        nn_small_tn_acc(ref, ldo2, w, a, lda, m, n, k);
        nn_force_reference(0);
        cr_expect_eq(close_to("tn_acc", fast, ref, mag, n * ldo2), 0, "tn_acc, m %zu n %zu k %zu", m, n, k);
        free(fast);
        free(ref);
        free(mag);
        /* nn: out (m, k) stride ldo2 = w (m, n) @ b (n, k; stride ldb) */
        fast = tu_floats(m * ldo2 + 1), ref = tu_floats(m * ldo2 + 1);
        mag = calloc(m * ldo2 + 1, sizeof *mag);
        for (size_t i = 0; i < m * ldo2; i++) fast[i] = ref[i] = 7.0f;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < k; j++)
                for (size_t r = 0; r < n; r++) mag[i * ldo2 + j] += fabs((double)w[i * n + r] * b[r * ldb + j]);
        nn_small_nn(fast, ldo2, w, n, b, ldb, m, k, n);
        nn_force_reference(1);
        nn_small_nn(ref, ldo2, w, n, b, ldb, m, k, n);
        nn_force_reference(0);
        cr_expect_eq(close_to("nn", fast, ref, mag, m * ldo2), 0, "nn, m %zu n %zu k %zu", m, n, k);
        free(fast);
        free(ref);
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
