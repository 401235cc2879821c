/*
 * nn_small.c: see nn_small.h. The AVX2 paths keep their sums in registers
 * across a row (nt: four dot products at once, reduced together; tn: a
 * 40-column block of two output rows over all of w's rows) and read the
 * ragged last 8 columns through a lane mask, so any K works.
 */
#include "models/nn_small.h"

#include "models/nn.h"
#include "models/nn_vmath.h"

#include <stdint.h>
#include <string.h>

/* out (M, N) = a (M, K) times b, whose entry (j, d) is b[j bj + d bd]: nt and nn in one loop */
static void small_ref(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t bj, size_t bd,
                      size_t m, size_t n, size_t k)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float s = 0;
            for (size_t d = 0; d < k; d++) s += a[i * lda + d] * b[j * bj + d * bd];
            out[i * ldo + j] = s;
        }
}

static void small_nt_ref(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t m,
                         size_t n, size_t k)
{
    small_ref(out, ldo, a, lda, b, ldb, 1, m, n, k);
}

static void small_tn_acc_ref(float *out, size_t ldo, const float *w, const float *a, size_t lda, size_t m, size_t n,
                             size_t k)
{
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < n; j++) {
            float c = w[r * n + j];
            for (size_t d = 0; d < k; d++) out[j * ldo + d] += c * a[r * lda + d];
        }
}

static void small_nn_ref(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t m,
                         size_t n, size_t k)
{
    small_ref(out, ldo, a, lda, b, 1, ldb, m, n, k);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define SMALL_X86 1

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* the first `lanes` lanes (0..8) */
AVX2 static inline __m256i lane_mask(size_t lanes)
{
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - lanes));
}

/* lanes still inside a row of k columns at column c (0..8) */
static inline size_t lanes_left(size_t k, size_t c)
{
    return c >= k ? 0 : k - c >= 8 ? 8 : k - c;
}

AVX2 static void small_nt_avx2(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb,
                               size_t m, size_t n, size_t k)
{
    size_t k8 = k & ~(size_t)7;
    __m256i mk = lane_mask(k - k8);
    for (size_t i = 0; i < m; i++) {
        const float *x = a + i * lda;
        float *o = out + i * ldo;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            const float *b0 = b + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t d = 0; d < k8; d += 8) {
                __m256 xv = _mm256_loadu_ps(x + d);
                s0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(b0 + d), s0);
                s1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(b1 + d), s1);
                s2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(b2 + d), s2);
                s3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(b3 + d), s3);
            }
            if (k8 < k) {
                __m256 xv = _mm256_maskload_ps(x + k8, mk);
                s0 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(b0 + k8, mk), s0);
                s1 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(b1 + k8, mk), s1);
                s2 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(b2 + k8, mk), s2);
                s3 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(b3 + k8, mk), s3);
            }
            /* lanes of t: [s0, s1, s2, s3] over columns 0..3, then 4..7 */
            __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
            _mm_storeu_ps(o + j, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
        }
        for (; j < n; j++) {
            const float *b0 = b + j * ldb;
            __m256 s0 = _mm256_setzero_ps();
            for (size_t d = 0; d < k8; d += 8)
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + d), _mm256_loadu_ps(b0 + d), s0);
            if (k8 < k) s0 = _mm256_fmadd_ps(_mm256_maskload_ps(x + k8, mk), _mm256_maskload_ps(b0 + k8, mk), s0);
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
            h = _mm_hadd_ps(h, h);
            o[j] = _mm_cvtss_f32(_mm_hadd_ps(h, h));
        }
    }
}

/* lanes (0..8) of a row from p: a plain load when whole */
AVX2 static inline __m256 load_lanes(const float *p, size_t lanes, __m256i mask)
{
    return lanes == 8 ? _mm256_loadu_ps(p) : lanes ? _mm256_maskload_ps(p, mask) : _mm256_setzero_ps();
}

/* Stores `lanes` lanes of x at p: whole, or through a buffer (a masked store is slow on some CPUs) */
AVX2 static inline void store_lanes(float *p, size_t lanes, __m256 x)
{
    if (lanes == 8) {
        _mm256_storeu_ps(p, x);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, x);
    for (size_t i = 0; i < lanes; i++) p[i] = t[i];
}

/* Output rows j and j + 1 (or j alone when one), 40 columns from c: row j += sum_r w(r, j) a[r, :],
 * w(r, j) = w[r wr + j wj]; ten sums in registers, one load of each row of a for both. */
AVX2 static inline void tn_block(float *out, size_t ldo, const float *w, size_t wr, size_t wj, const float *a,
                                 size_t lda, size_t m, size_t k, size_t j, size_t c, int two)
{
    __m256i mk[5];
    size_t ln[5];
    for (int v = 0; v < 5; v++) ln[v] = lanes_left(k, c + 8 * (size_t)v), mk[v] = lane_mask(ln[v]);
    float *o0 = out + j * ldo + c, *o1 = two ? o0 + ldo : o0;
    __m256 s[5], t[5];
    for (int v = 0; v < 5; v++) {
        s[v] = load_lanes(o0 + 8 * v, ln[v], mk[v]);
        t[v] = load_lanes(o1 + 8 * v, ln[v], mk[v]);
    }
    for (size_t r = 0; r < m; r++) {
        const float *ar = a + r * lda + c;
        __m256 w0 = _mm256_broadcast_ss(w + r * wr + j * wj), w1 = _mm256_broadcast_ss(w + r * wr + (j + two) * wj);
        for (int v = 0; v < 5; v++) { /* masked: a branch per vector here costs more */
            __m256 x = _mm256_maskload_ps(ar + 8 * v, mk[v]);
            s[v] = _mm256_fmadd_ps(w0, x, s[v]);
            t[v] = _mm256_fmadd_ps(w1, x, t[v]);
        }
    }
    for (int v = 0; v < 5; v++) {
        if (two) store_lanes(o1 + 8 * v, ln[v], t[v]);
        store_lanes(o0 + 8 * v, ln[v], s[v]);
    }
}

AVX2 static void small_tn_acc_avx2(float *out, size_t ldo, const float *w, const float *a, size_t lda, size_t m,
                                   size_t n, size_t k)
{
    for (size_t c = 0; c < k; c += 40)
        for (size_t j = 0; j < n; j += 2) tn_block(out, ldo, w, n, 1, a, lda, m, k, j, c, j + 1 < n);
}

/* nn: row i of out = sum_r a[i, r] b[r, :], tn_block with w(r, i) = a[i lda + r] */
AVX2 static void small_nn_avx2(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb,
                               size_t m, size_t n, size_t k)
{
    for (size_t i = 0; i < m; i++) memset(out + i * ldo, 0, n * sizeof(float));
    for (size_t c = 0; c < n; c += 40)
        for (size_t i = 0; i < m; i += 2) tn_block(out, ldo, a, 1, lda, b, ldb, k, n, i, c, i + 1 < m);
}
#endif

/* The AVX2 path, unless the CPU lacks it or the reference is forced. */
#ifdef SMALL_X86
#define FAST (!nn_reference_forced() && vm_avx2())
#else
#define FAST 0
#define small_nt_avx2 small_nt_ref
#define small_tn_acc_avx2 small_tn_acc_ref
#define small_nn_avx2 small_nn_ref
#endif

void nn_small_nt(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t m, size_t n,
                 size_t k)
{
    (FAST ? small_nt_avx2 : small_nt_ref)(out, ldo, a, lda, b, ldb, m, n, k);
}

void nn_small_tn_acc(float *out, size_t ldo, const float *w, const float *a, size_t lda, size_t m, size_t n,
                     size_t k)
{
    (FAST ? small_tn_acc_avx2 : small_tn_acc_ref)(out, ldo, w, a, lda, m, n, k);
}

void nn_small_nn(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, size_t m, size_t n,
                 size_t k)
{
    (FAST ? small_nn_avx2 : small_nn_ref)(out, ldo, a, lda, b, ldb, m, n, k);
}
