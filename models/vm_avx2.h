/*
 * vm_avx2.h: exp and sigmoid on 8 lanes (AVX2 + FMA), inline, for the
 * kernels that apply them to values in registers (private; models/nn_vmath.c,
 * esu/din_pairs.c). The same functions as models/nn_vmath.h's arrays, to the
 * bit: nn_vmath.c's AVX2 paths are built from these. Callers are functions
 * compiled with VM_AVX2 and chosen at run time (vm_avx2()).
 *
 *   exp(x)   x clamped to [EXP_LO, EXP_HI], x = k ln2 + r (Cody-Waite),
 *            Cephes' degree-6 polynomial for exp(r), 2^k in the exponent bits;
 *   sigmoid  1 / (1 + exp(-x)).
 */
#ifndef LSIM_VM_AVX2_H
#define LSIM_VM_AVX2_H

#define EXP_LO -87.0f /* exp(-87) is still normal */
#define EXP_HI 89.0f  /* 2^128 = inf from ~88.4, as expf from 88.72 */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EP0 1.9875691500e-4f
#define EP1 1.3981999507e-3f
#define EP2 8.3334519073e-3f
#define EP3 4.1665795894e-2f
#define EP4 1.6666665459e-1f
#define EP5 5.0000001201e-1f

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define VM_AVX2 __attribute__((target("avx2,fma")))

VM_AVX2 static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256i k = _mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)));
    __m256 kf = _mm256_cvtepi32_ps(k);
    __m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(EP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP5));
    p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

VM_AVX2 static inline __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
#endif

#endif
