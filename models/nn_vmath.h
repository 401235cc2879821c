/*
 * nn_vmath.h: exp, sigmoid and tanh over arrays, vectorized (private).
 *
 * The activations dominate the models' time after the GEMMs (a DIN request
 * evaluates 1.2 million sigmoids), and glibc's expf / tanhf are scalar. These
 * compute the same functions 8 (AVX2 + FMA) or 4 (SSE2) at a time:
 *   exp(x)   x = k ln2 + r (Cody-Waite), Cephes' degree-6 polynomial for
 *            exp(r) on |r| <= ln2 / 2, 2^k built in the exponent bits;
 *   sigmoid  1 / (1 + exp(-x));
 *   tanh     Cephes' tanhf: x + x^3 P(x^2) for |x| < 0.625, otherwise
 *            sign(x) (1 - 2 / (exp(2|x|) + 1)).
 * Within 5e-7 relative of the libm forms (tests/test_nn_basic.c), and
 * exactly 0 / +-1 where those saturate. NaN inputs are not propagated (the
 * argument of exp is clamped); the models never produce them.
 * The AVX2 path is chosen at run time (__builtin_cpu_supports), so the build
 * needs no -mavx2. With nn_force_reference(1) both take the libm form, which
 * is also the path on CPUs without SSE2.
 * out may equal inp (in place); otherwise they must not overlap.
 */
#ifndef LSIM_NN_VMATH_H
#define LSIM_NN_VMATH_H

#include <stddef.h>

// out, inp (N)
void vm_sigmoid(float *out, const float *inp, size_t n);
void vm_exp(float *out, const float *inp, size_t n); /* exp of x clamped to [-87, 89] */
void vm_tanh(float *out, const float *inp, size_t n);

/* Tests: vm_allow_avx2(0) makes the SSE2 path run on an AVX2 machine. A
 * process-wide switch like nn_force_reference: set it before threads run. */
void vm_allow_avx2(int on);
/* whether the AVX2 + FMA paths run: the CPU has them and vm_allow_avx2 did not
 * turn them off (for other files' kernels, models/nn_small.c) */
int vm_avx2(void);

/* the scalar forms the vector ones are tested against */
float vm_sigmoid_ref(float x);
float vm_exp_ref(float x);
float vm_tanh_ref(float x);

#endif
