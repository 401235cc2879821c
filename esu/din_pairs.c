/*
 * din_pairs.c: see din_pairs.h.
 *
 * Register plan (16 ymm): fc1 in two halves of 40 outputs, each 2 pairs x 5
 * vectors of sums, two broadcasts of z and one weight vector in flight; fc2
 * the same (2 pairs x 5 vectors = the 40 outputs). a1 of the two pairs goes
 * through a 640-byte buffer on the stack (L1).
 */
#include "esu/din_pairs.h"

#include "models/nn.h"
#include "models/nn_vmath.h"
#include "models/vm_avx2.h"

enum { H1 = 80, H2 = 40, V = 5 /* vectors of 8 per half of fc1, and in fc2 */ };

void din_pairs_prepare(float *wzt, float *w2t, const float *wz, size_t ld, const float *w2, size_t zw, size_t h1,
                       size_t h2)
{
    for (size_t o = 0; o < h1; o++)
        for (size_t k = 0; k < zw; k++) wzt[k * h1 + o] = wz[o * ld + k];
    for (size_t o = 0; o < h2; o++)
        for (size_t k = 0; k < h1; k++) w2t[k * h2 + o] = w2[o * h1 + k];
}

#if defined(__x86_64__) || defined(__i386__)
#define PAIRS_X86 1

/* fc1 for two pairs, outputs h0 .. h0 + 40: sums from (p + q) rows, then sigmoid, into a1 rows */
VM_AVX2 static inline void fc1_half(float *a1a, float *a1b, const float *pa, const float *qa, const float *pb,
                                    const float *qb, const float *za, const float *zb, const float *wzt, size_t zw,
                                    size_t h0)
{
    __m256 x[V], y[V];
    for (int v = 0; v < V; v++) {
        x[v] = _mm256_add_ps(_mm256_loadu_ps(pa + h0 + 8 * v), _mm256_loadu_ps(qa + h0 + 8 * v));
        y[v] = _mm256_add_ps(_mm256_loadu_ps(pb + h0 + 8 * v), _mm256_loadu_ps(qb + h0 + 8 * v));
    }
    for (size_t k = 0; k < zw; k++) {
        __m256 ca = _mm256_broadcast_ss(za + k), cb = _mm256_broadcast_ss(zb + k);
        const float *w = wzt + k * H1 + h0;
        for (int v = 0; v < V; v++) {
            __m256 wv = _mm256_loadu_ps(w + 8 * v);
            __asm__("" : "+x"(wv)); /* one load for both pairs, not a memory operand in each FMA */
            x[v] = _mm256_fmadd_ps(wv, ca, x[v]);
            y[v] = _mm256_fmadd_ps(wv, cb, y[v]);
        }
    }
    for (int v = 0; v < V; v++) {
        _mm256_storeu_ps(a1a + h0 + 8 * v, sigmoid8(x[v]));
        _mm256_storeu_ps(a1b + h0 + 8 * v, sigmoid8(y[v]));
    }
}

VM_AVX2 static inline float hsum8(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* fc2, sigmoid and fc3 for two pairs' a1 rows */
VM_AVX2 static inline void fc23(float *sa, float *sb, const float *a1a, const float *a1b, const float *w2t,
                                const float *b2, const float *w3, float b3)
{
    __m256 x[V], y[V];
    for (int v = 0; v < V; v++) x[v] = y[v] = _mm256_loadu_ps(b2 + 8 * v);
    for (size_t k = 0; k < H1; k++) {
        __m256 ca = _mm256_broadcast_ss(a1a + k), cb = _mm256_broadcast_ss(a1b + k);
        const float *w = w2t + k * H2;
        for (int v = 0; v < V; v++) {
            __m256 wv = _mm256_loadu_ps(w + 8 * v);
            __asm__("" : "+x"(wv)); /* one load for both pairs, not a memory operand in each FMA */
            x[v] = _mm256_fmadd_ps(wv, ca, x[v]);
            y[v] = _mm256_fmadd_ps(wv, cb, y[v]);
        }
    }
    __m256 ta = _mm256_setzero_ps(), tb = ta;
    for (int v = 0; v < V; v++) {
        __m256 wv = _mm256_loadu_ps(w3 + 8 * v);
        ta = _mm256_fmadd_ps(sigmoid8(x[v]), wv, ta);
        tb = _mm256_fmadd_ps(sigmoid8(y[v]), wv, tb);
    }
    *sa = hsum8(ta) + b3;
    *sb = hsum8(tb) + b3;
}

VM_AVX2 static void score_avx2(float *sc, const float *p, const float *q, const uint32_t *grp, size_t groups,
                               const float *es, const float *ea, size_t e, size_t zw, const float *wzt,
                               const float *w2t, const float *b2, const float *w3, float b3, size_t b, size_t s,
                               float *z)
{
    float a1[2][H1];
    for (size_t i = 0; i < b; i++) {
        const float *eai = ea + i * e;
        for (size_t j = 0; j < s; j++)
            for (size_t d = 0; d < zw; d++) z[j * zw + d] = es[j * e + d] * eai[d];
        for (size_t j = 0; j < s; j += 2) {
            size_t k = j + 1 < s ? j + 1 : j; /* an odd last row runs beside itself */
            const float *qa = q + (grp ? i * groups + grp[j] : i) * H1, *qb = q + (grp ? i * groups + grp[k] : i) * H1;
            for (size_t h0 = 0; h0 < H1; h0 += 8 * V)
                fc1_half(a1[0], a1[1], p + j * H1, qa, p + k * H1, qb, z + j * zw, z + k * zw, wzt, zw, h0);
            float sa, sb;
            fc23(&sa, &sb, a1[0], a1[1], w2t, b2, w3, b3);
            sc[i * s + j] = sa;
            sc[i * s + k] = sb;
        }
    }
}
#endif

int din_pairs_fits(size_t h1, size_t h2, size_t zw)
{
#ifdef PAIRS_X86
    return h1 == H1 && h2 == H2 && zw > 0 && !nn_reference_forced() && vm_avx2();
#else
    (void)h1, (void)h2, (void)zw;
    return 0;
#endif
}

void din_pairs_score(float *sc, const float *p, const float *q, const uint32_t *grp, size_t groups, const float *es,
                     const float *ea, size_t e, size_t zw, const float *wzt, const float *w2t, const float *b2,
                     const float *w3, float b3, size_t b, size_t s, float *z)
{
#ifdef PAIRS_X86
    score_avx2(sc, p, q, grp, groups, es, ea, e, zw, wzt, w2t, b2, w3, b3, b, s, z);
#else
    (void)sc, (void)p, (void)q, (void)grp, (void)groups, (void)es, (void)ea, (void)e, (void)zw, (void)wzt;
    (void)w2t, (void)b2, (void)w3, (void)b3, (void)b, (void)s, (void)z;
#endif
}
