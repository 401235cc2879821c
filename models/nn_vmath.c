/*
 * nn_vmath.c: see nn_vmath.h.
 */
#include "models/nn_vmath.h"

#include "models/nn.h"
#include "models/vm_avx2.h"

#include <math.h>

float vm_sigmoid_ref(float x)
{
    /* exp(-x) overflows to inf for x < -88, giving exactly 0: no NaN */
    return 1.0f / (1.0f + expf(-x));
}

float vm_tanh_ref(float x)
{
    return tanhf(x);
}

/* Constants of tanh (exp's are in models/vm_avx2.h). */
#define TP0 -5.70498872745e-3f /* tanh: x + x^3 P(x^2) on |x| < 0.625 */
#define TP1 2.06390887954e-2f
#define TP2 -5.37397155531e-2f
#define TP3 1.33314422036e-1f
#define TP4 -3.33332819422e-1f
#define TANH_SMALL 0.625f

float vm_exp_ref(float x)
{
    return expf(fminf(fmaxf(x, EXP_LO), EXP_HI));
}

#if defined(__x86_64__) || defined(__i386__)
#define VM_X86 1
#include <immintrin.h>

/* ---- SSE2, 4 lanes: the baseline of x86-64 ---- */

static inline __m128 exp4(__m128 x)
{
    x = _mm_min_ps(_mm_max_ps(x, _mm_set1_ps(EXP_LO)), _mm_set1_ps(EXP_HI));
    __m128i k = _mm_cvtps_epi32(_mm_mul_ps(x, _mm_set1_ps(LOG2E))); /* round to nearest (MXCSR default) */
    __m128 kf = _mm_cvtepi32_ps(k);
    __m128 r = _mm_sub_ps(x, _mm_mul_ps(kf, _mm_set1_ps(LN2_HI)));
    r = _mm_sub_ps(r, _mm_mul_ps(kf, _mm_set1_ps(LN2_LO)));
    __m128 p = _mm_set1_ps(EP0);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(EP1));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(EP2));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(EP3));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(EP4));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(EP5));
    p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
    __m128i e = _mm_slli_epi32(_mm_add_epi32(k, _mm_set1_epi32(127)), 23);
    return _mm_mul_ps(p, _mm_castsi128_ps(e));
}

static inline __m128 sigmoid4(__m128 x)
{
    const __m128 one = _mm_set1_ps(1.0f);
    return _mm_div_ps(one, _mm_add_ps(one, exp4(_mm_sub_ps(_mm_setzero_ps(), x))));
}

static inline __m128 tanh4(__m128 x)
{
    const __m128 sign = _mm_set1_ps(-0.0f), one = _mm_set1_ps(1.0f);
    __m128 a = _mm_andnot_ps(sign, x);
    __m128 z = _mm_mul_ps(x, x);
    __m128 p = _mm_set1_ps(TP0);
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(TP1));
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(TP2));
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(TP3));
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(TP4));
    __m128 small = _mm_add_ps(x, _mm_mul_ps(_mm_mul_ps(p, z), x));
    __m128 big = _mm_sub_ps(one, _mm_div_ps(_mm_set1_ps(2.0f), _mm_add_ps(exp4(_mm_add_ps(a, a)), one)));
    big = _mm_or_ps(big, _mm_and_ps(sign, x));
    __m128 is_small = _mm_cmplt_ps(a, _mm_set1_ps(TANH_SMALL));
    return _mm_or_ps(_mm_and_ps(is_small, small), _mm_andnot_ps(is_small, big));
}

/* ---- AVX2 + FMA, 8 lanes, compiled for those only and chosen at run time ---- */

/* An elementwise function over an array: 8 lanes, then 4, then one at a time. */
#define VM_AVX2_ARRAY(name, f8, f4, ref)                                     \
    VM_AVX2 static void name(float *out, const float *inp, size_t n)         \
    {                                                                        \
        size_t i = 0;                                                        \
        for (; i + 8 <= n; i += 8)                                           \
            _mm256_storeu_ps(out + i, f8(_mm256_loadu_ps(inp + i)));         \
        for (; i + 4 <= n; i += 4)                                           \
            _mm_storeu_ps(out + i, f4(_mm_loadu_ps(inp + i)));               \
        for (; i < n; i++)                                                   \
            out[i] = ref(inp[i]);                                            \
    }

VM_AVX2_ARRAY(sigmoid_avx2, sigmoid8, sigmoid4, vm_sigmoid_ref)
VM_AVX2_ARRAY(exp_avx2, exp8, exp4, vm_exp_ref)

VM_AVX2 static void tanh_avx2(float *out, const float *inp, size_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256 a = _mm256_andnot_ps(sign, x);
        __m256 z = _mm256_mul_ps(x, x);
        __m256 p = _mm256_set1_ps(TP0);
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TP1));
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TP2));
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TP3));
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TP4));
        __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
        __m256 e2 = _mm256_add_ps(exp8(_mm256_add_ps(a, a)), one);
        __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), e2));
        big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
        __m256 is_small = _mm256_cmp_ps(a, _mm256_set1_ps(TANH_SMALL), _CMP_LT_OQ);
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(big, small, is_small));
    }
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(out + i, tanh4(_mm_loadu_ps(inp + i)));
    for (; i < n; i++)
        out[i] = vm_tanh_ref(inp[i]);
}

static int avx2_allowed = 1;

void vm_allow_avx2(int on)
{
    avx2_allowed = on != 0;
}

static int have_avx2(void)
{
    /* reads what libgcc's constructor found: a load and a test */
    return avx2_allowed && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
void vm_allow_avx2(int on)
{
    (void)on;
}
#endif

int vm_avx2(void)
{
#ifdef VM_X86
    return have_avx2();
#else
    return 0;
#endif
}

/* An array function: AVX2 when allowed, else SSE2 four at a time, else (and
 * under nn_force_reference) the libm form. */
#ifdef VM_X86
#define VM_ARRAY_FN(name, avx2, four, ref)                                   \
    void name(float *out, const float *inp, size_t n)                        \
    {                                                                        \
        size_t i = 0;                                                        \
        if (!nn_reference_forced()) {                                        \
            if (have_avx2()) {                                               \
                avx2(out, inp, n);                                           \
                return;                                                      \
            }                                                                \
            for (; i + 4 <= n; i += 4)                                       \
                _mm_storeu_ps(out + i, four(_mm_loadu_ps(inp + i)));         \
        }                                                                    \
        for (; i < n; i++)                                                   \
            out[i] = ref(inp[i]);                                            \
    }
#else
#define VM_ARRAY_FN(name, avx2, four, ref)                                   \
    void name(float *out, const float *inp, size_t n)                        \
    {                                                                        \
        for (size_t i = 0; i < n; i++)                                       \
            out[i] = ref(inp[i]);                                            \
    }
#endif

VM_ARRAY_FN(vm_exp, exp_avx2, exp4, vm_exp_ref)
VM_ARRAY_FN(vm_sigmoid, sigmoid_avx2, sigmoid4, vm_sigmoid_ref)
VM_ARRAY_FN(vm_tanh, tanh_avx2, tanh4, vm_tanh_ref)
