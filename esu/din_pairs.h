/*
 * din_pairs.h: the DIN activation unit's per-pair MLP at inference, fused
 * (private; esu/din_unit.c's shared path calls it).
 *
 * For candidate i and history row j (sample i's pair j):
 *   a1 = sigmoid(p_j + q_(i, g_j) + Wz (e_j * e_a,i)[0 .. zw))     (h1)
 *   a2 = sigmoid(W2 a1 + b2)                                      (h2)
 *   s  = w3 . a2 + b3
 * The layers run back to back on two pairs at a time in registers (AVX2 +
 * FMA): no GEMM call, no packing, no pass over memory between layers. Only
 * for the default widths h1 = 80, h2 = 40 (din_pairs_fits); otherwise, on
 * CPUs without AVX2 and under nn_force_reference(1), din_unit.c keeps its
 * GEMM path, which is this kernel's reference (tests/test_din.c). The
 * sigmoid is models/vm_avx2.h's, the same as nn_sigmoid_forward's; the
 * products sum in another order than the GEMM's.
 */
#ifndef LSIM_DIN_PAIRS_H
#define LSIM_DIN_PAIRS_H

#include <stddef.h>
#include <stdint.h>

/* Whether the fused kernel runs for these widths on this CPU (and the reference is not forced). */
int din_pairs_fits(size_t h1, size_t h2, size_t zw);

/* The transposed weights the kernel reads. */
// wzt (zw, h1) from wz (h1, ld) columns 0 .. zw; w2t (h1, h2) from w2 (h2, h1)
void din_pairs_prepare(float *wzt, float *w2t, const float *wz, size_t ld, const float *w2, size_t zw, size_t h1,
                       size_t h2);

/* Scores of b candidates against s history rows. q row of pair (i, j):
 * q + (i * groups + grp[j]) h1 when grp, else q + i h1. z (s, zw) scratch. */
// sc (B, S); p (S, h1); q; es (S, E); ea (B, E); b2, w3 (h2)
void din_pairs_score(float *sc, const float *p, const float *q, const uint32_t *grp, size_t groups, const float *es,
                     const float *ea, size_t e, size_t zw, const float *wzt, const float *w2t, const float *b2,
                     const float *w3, float b3, size_t b, size_t s, float *z);

#endif
