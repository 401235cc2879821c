/*
 * soft_score.c: see soft_score.h.
 */
#include "gsu/soft_score.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

enum { BL = SOFT_SCORE_BLOCK, CHUNK = 512 /* behaviors per pass over the queries: 64 KB of keys at D = 32 */ };

static int simd_allowed = 1;

void soft_score_allow_simd(int on)
{
    simd_allowed = on;
}

/* One part's sum, in column order: the one definition every vector uses. */
static float part_dot(const float *wr, const float *x, size_t cols)
{
    float s = 0.0f;
    for (size_t c = 0; c < cols; c++) s += wr[c] * x[c];
    return s;
}

void soft_score_part(float *out, const float *w, size_t ld, size_t col0, size_t cols, const float *x, size_t d)
{
    for (size_t j = 0; j < d; j++) out[j] = part_dot(w + j * ld + col0, x, cols);
}

void soft_score_vector(float *out, const float *w, size_t e, size_t d_item, const float *emb, size_t d)
{
    for (size_t j = 0; j < d; j++)
        out[j] = part_dot(w + j * e, emb, d_item) + part_dot(w + j * e + d_item, emb + d_item, e - d_item);
}

size_t soft_score_scratch(size_t n, size_t d)
{
    size_t blocks = (n < CHUNK ? n : CHUNK) / BL + 1;
    return blocks * BL * d;
}

void soft_score_rows_ref(float *score, const float *keys, size_t n, const float *queries, size_t nb, size_t d)
{
    for (size_t b = 0; b < nb; b++) {
        const float *q = queries + b * d;
        for (size_t i = 0; i < n; i++) {
            const float *k = keys + i * d;
            float s = 0.0f;
            for (size_t j = 0; j < d; j++) s += k[j] * q[j];
            score[b * n + i] = s;
        }
    }
}

/* kt (blocks, d, BL): the keys of rows [i0, i0 + m) (of rows[i0 ..] when rows is not NULL) transposed by block,
 * zero-padded. Moves floats, no arithmetic: the SIMD variant below gives the same bytes. */
static void transpose_plain(float *kt, const float *keys, const uint32_t *rows, size_t i0, size_t m, size_t d)
{
    size_t blocks = (m + BL - 1) / BL;
    for (size_t bk = 0; bk < blocks; bk++) {
        float *t = kt + bk * d * BL;
        for (size_t l = 0; l < BL; l++) {
            size_t i = bk * BL + l;
            if (i < m) {
                const float *k = keys + (rows ? rows[i0 + i] : i0 + i) * d;
                for (size_t j = 0; j < d; j++) t[j * BL + l] = k[j];
            } else {
                for (size_t j = 0; j < d; j++) t[j * BL + l] = 0.0f;
            }
        }
    }
}

#if HAVE_X86
#define AVX2 __attribute__((target("avx2,fma")))

static int have_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* The same with d a multiple of 8: 8 rows x 8 dimensions at a time, an 8x8 transpose in registers. */
AVX2 static void transpose_avx2(float *kt, const float *keys, const uint32_t *rows, size_t i0, size_t m, size_t d)
{
    static const float zero[64] = {0};
    size_t blocks = (m + BL - 1) / BL;
    for (size_t bk = 0; bk < blocks; bk++) {
        float *t = kt + bk * d * BL;
        const float *src[BL];
        for (size_t l = 0; l < BL; l++) {
            size_t i = bk * BL + l;
            src[l] = i < m ? keys + (rows ? rows[i0 + i] : i0 + i) * d : NULL;
        }
        for (size_t j0 = 0; j0 < d; j0 += 8) {
            __m256 r[8];
            for (size_t l = 0; l < BL; l++) r[l] = _mm256_loadu_ps(src[l] ? src[l] + j0 : zero);
            __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
            __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
            __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
            __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
            __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xee);
            __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xee);
            __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xee);
            __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xee);
            float *o = t + j0 * BL;
            _mm256_storeu_ps(o + 0 * BL, _mm256_permute2f128_ps(b0, b4, 0x20));
            _mm256_storeu_ps(o + 1 * BL, _mm256_permute2f128_ps(b1, b5, 0x20));
            _mm256_storeu_ps(o + 2 * BL, _mm256_permute2f128_ps(b2, b6, 0x20));
            _mm256_storeu_ps(o + 3 * BL, _mm256_permute2f128_ps(b3, b7, 0x20));
            _mm256_storeu_ps(o + 4 * BL, _mm256_permute2f128_ps(b0, b4, 0x31));
            _mm256_storeu_ps(o + 5 * BL, _mm256_permute2f128_ps(b1, b5, 0x31));
            _mm256_storeu_ps(o + 6 * BL, _mm256_permute2f128_ps(b2, b6, 0x31));
            _mm256_storeu_ps(o + 7 * BL, _mm256_permute2f128_ps(b3, b7, 0x31));
        }
    }
}
#endif

static void transpose_chunk(float *kt, const float *keys, const uint32_t *rows, size_t i0, size_t m, size_t d)
{
#if HAVE_X86
    if (simd_allowed && BL == 8 && d % 8 == 0 && have_avx2()) {
        transpose_avx2(kt, keys, rows, i0, m, d);
        return;
    }
#endif
    transpose_plain(kt, keys, rows, i0, m, d);
}

/* The plain path, blocked the same way: each lane is the reference's sum.
 * Scores rows i0 .. i0 + m of a row stride n from their transposed blocks kt. */
static void chunk_plain(float *score, size_t n, size_t i0, size_t m, const float *kt, const float *queries,
                        size_t nb, size_t d)
{
    size_t blocks = (m + BL - 1) / BL;
    {
        for (size_t b = 0; b < nb; b++) {
            const float *q = queries + b * d;
            for (size_t bk = 0; bk < blocks; bk++) {
                const float *t = kt + bk * d * BL;
                float acc[BL] = {0};
                for (size_t j = 0; j < d; j++)
                    for (size_t l = 0; l < BL; l++) acc[l] += t[j * BL + l] * q[j];
                size_t lim = m - bk * BL < BL ? m - bk * BL : BL;
                memcpy(score + b * n + i0 + bk * BL, acc, lim * sizeof(float));
            }
        }
    }
}

#if HAVE_X86
/* One query against nbk (<= 8, a constant where inlined) blocks from block bk of m rows: out[bk BL ..]. */
AVX2 static inline __attribute__((always_inline)) void one_query_blocks(float *out, size_t bk, size_t m,
                                                                      const float *kt, const float *q, size_t d,
                                                                      size_t nbk)
{
    const float *t = kt + bk * d * BL;
    __m256 a[8];
    for (size_t c = 0; c < nbk; c++) a[c] = _mm256_setzero_ps();
    for (size_t j = 0; j < d; j++) {
        __m256 x = _mm256_broadcast_ss(q + j);
        for (size_t c = 0; c < nbk; c++) a[c] = _mm256_fmadd_ps(_mm256_loadu_ps(t + (c * d + j) * BL), x, a[c]);
    }
    size_t lim = m - bk * BL;
    if (lim >= nbk * BL) {
        for (size_t c = 0; c < nbk; c++) _mm256_storeu_ps(out + (bk + c) * BL, a[c]);
    } else {
        float tmp[8 * BL];
        for (size_t c = 0; c < nbk; c++) _mm256_storeu_ps(tmp + c * BL, a[c]);
        memcpy(out + bk * BL, tmp, lim * sizeof(float));
    }
}

/* Four candidates at a time against each block of 8 behaviors: per lane one
 * fused multiply-add per dimension, in dimension order, however the
 * candidates are grouped. */
AVX2 static void chunk_avx2(float *score, size_t n, size_t i0, size_t m, const float *kt, const float *queries,
                            size_t nb, size_t d)
{
    size_t blocks = (m + BL - 1) / BL;
    {
        size_t b = 0;
        for (; b + 4 <= nb; b += 4) {
            const float *q0 = queries + b * d, *q1 = q0 + d, *q2 = q1 + d, *q3 = q2 + d;
            size_t bk = 0;
            for (; bk + 2 <= m / BL; bk += 2) { /* two full blocks: each query broadcast serves both */
                const float *t = kt + bk * d * BL, *u = t + d * BL;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
                for (size_t j = 0; j < d; j++) {
                    __m256 k = _mm256_loadu_ps(t + j * BL), l = _mm256_loadu_ps(u + j * BL);
                    __m256 x = _mm256_broadcast_ss(q0 + j);
                    a0 = _mm256_fmadd_ps(k, x, a0);
                    c0 = _mm256_fmadd_ps(l, x, c0);
                    x = _mm256_broadcast_ss(q1 + j);
                    a1 = _mm256_fmadd_ps(k, x, a1);
                    c1 = _mm256_fmadd_ps(l, x, c1);
                    x = _mm256_broadcast_ss(q2 + j);
                    a2 = _mm256_fmadd_ps(k, x, a2);
                    c2 = _mm256_fmadd_ps(l, x, c2);
                    x = _mm256_broadcast_ss(q3 + j);
                    a3 = _mm256_fmadd_ps(k, x, a3);
                    c3 = _mm256_fmadd_ps(l, x, c3);
                }
                float *o = score + b * n + i0 + bk * BL;
                _mm256_storeu_ps(o, a0), _mm256_storeu_ps(o + BL, c0);
                _mm256_storeu_ps(o + n, a1), _mm256_storeu_ps(o + n + BL, c1);
                _mm256_storeu_ps(o + 2 * n, a2), _mm256_storeu_ps(o + 2 * n + BL, c2);
                _mm256_storeu_ps(o + 3 * n, a3), _mm256_storeu_ps(o + 3 * n + BL, c3);
            }
            for (; bk < blocks; bk++) {
                const float *t = kt + bk * d * BL;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (size_t j = 0; j < d; j++) {
                    __m256 k = _mm256_loadu_ps(t + j * BL);
                    a0 = _mm256_fmadd_ps(k, _mm256_broadcast_ss(q0 + j), a0);
                    a1 = _mm256_fmadd_ps(k, _mm256_broadcast_ss(q1 + j), a1);
                    a2 = _mm256_fmadd_ps(k, _mm256_broadcast_ss(q2 + j), a2);
                    a3 = _mm256_fmadd_ps(k, _mm256_broadcast_ss(q3 + j), a3);
                }
                size_t lim = m - bk * BL < BL ? m - bk * BL : BL, o = i0 + bk * BL;
                if (lim == BL) {
                    _mm256_storeu_ps(score + b * n + o, a0);
                    _mm256_storeu_ps(score + (b + 1) * n + o, a1);
                    _mm256_storeu_ps(score + (b + 2) * n + o, a2);
                    _mm256_storeu_ps(score + (b + 3) * n + o, a3);
                } else {
                    float tmp[4][BL];
                    _mm256_storeu_ps(tmp[0], a0);
                    _mm256_storeu_ps(tmp[1], a1);
                    _mm256_storeu_ps(tmp[2], a2);
                    _mm256_storeu_ps(tmp[3], a3);
                    for (size_t r = 0; r < 4; r++) memcpy(score + (b + r) * n + o, tmp[r], lim * sizeof(float));
                }
            }
        }
        for (; b < nb; b++) { /* one candidate: up to eight blocks at once, eight independent chains of FMAs */
            const float *q = queries + b * d;
            size_t bk = 0;
            for (; bk + 8 <= blocks; bk += 8) one_query_blocks(score + b * n + i0, bk, m, kt, q, d, 8);
            if (bk + 4 <= blocks) one_query_blocks(score + b * n + i0, bk, m, kt, q, d, 4), bk += 4;
            if (bk + 2 <= blocks) one_query_blocks(score + b * n + i0, bk, m, kt, q, d, 2), bk += 2;
            if (bk < blocks) one_query_blocks(score + b * n + i0, bk, m, kt, q, d, 1);
        }
    }
}

#endif

static void chunk(float *score, size_t n, size_t i0, size_t m, const float *kt, const float *queries, size_t nb,
                  size_t d)
{
#if HAVE_X86
    if (simd_allowed && have_avx2()) {
        chunk_avx2(score, n, i0, m, kt, queries, nb, d);
        return;
    }
#endif
    chunk_plain(score, n, i0, m, kt, queries, nb, d);
}

void soft_score_rows(float *score, const float *keys, size_t n, const float *queries, size_t nb, size_t d,
                     float *scratch)
{
    if (!n || !nb) return;
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        transpose_chunk(scratch, keys, NULL, i0, m, d);
        chunk(score, n, i0, m, scratch, queries, nb, d);
    }
}

size_t soft_score_t_floats(size_t n, size_t d)
{
    return ((n + BL - 1) / BL) * BL * d;
}

void soft_score_transpose(float *kt, const float *keys, size_t n, size_t d)
{
    transpose_chunk(kt, keys, NULL, 0, n, d);
}

void soft_score_transpose_rows(float *kt, const float *keys, const uint32_t *rows, size_t n, size_t d)
{
    transpose_chunk(kt, keys, rows, 0, n, d);
}

void soft_score_rows_t(float *score, const float *kt, size_t n, const float *queries, size_t nb, size_t d)
{
    if (!n || !nb) return;
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        chunk(score, n, i0, m, kt + i0 * d, queries, nb, d);
    }
}
