/*
 * nn_small.h: products of small matrices, the per-sample work of the
 * inference paths (private).
 *
 * A GEMM library pays a call and a packing pass per product; these shapes
 * (one sample's 50 behaviors against its 4 heads' queries) are done before
 * that pays off, and are done 200 times a request. Each kernel has an AVX2 +
 * FMA path chosen at run time (models/nn_vmath.h's vm_avx2) and a plain C
 * reference that nn_force_reference(1) selects; the two sum in different
 * orders, so they agree to float rounding (tests/test_nn_small.c).
 * Conventions as models/nn.h: outputs first, row-major, size_t sizes; a row
 * stride (ld*) follows each matrix that may be a column block of a wider one.
 */
#ifndef LSIM_NN_SMALL_H
#define LSIM_NN_SMALL_H

#include <stddef.h>

/* out = a @ b^T */
// out (M, N) with row stride ldo; a (M, K) stride lda; b (N, K) stride ldb
void nn_small_nt(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t m, size_t n,
                 size_t k);

/* out += w^T @ a: row j of out gains sum_r w[r, j] a[r, :] */
// out (N, K) stride ldo; w (M, N); a (M, K) stride lda
void nn_small_tn_acc(float *out, size_t ldo, const float *w, const float *a, size_t lda, size_t m, size_t n,
                     size_t k);

/* out = a @ b */
// out (M, N) stride ldo; a (M, K) stride lda; b (K, N) stride ldb
void nn_small_nn(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t m, size_t n,
                 size_t k);

#endif
