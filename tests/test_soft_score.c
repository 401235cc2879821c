/*
 * test_soft_score.c: gsu/soft_score.h: inference soft-search scores are the
 * same bits however the behaviors and candidates are batched, equal the
 * one-pair-at-a-time reference, and lie within rounding of a double sum.
 */
#include "gsu/soft_score.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float unit(uint64_t *s)
{
    return (float)((double)(tu_rand(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

enum { D = 32, N = 1237, NB = 13 };

static void fill(float *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) x[i] = unit(s);
}

/* whole request vs one candidate at a time vs an odd split of the behaviors */
static void check_batching(void)
{
    static float keys[N * D], q[NB * D], all[NB * N], one[N], part[NB * N];
    float *scratch = malloc(soft_score_scratch(N, D) * sizeof(float));
    uint64_t s = 5;
    fill(keys, N * D, &s);
    fill(q, NB * D, &s);
    memcpy(keys + 7 * D, keys + 3 * D, D * sizeof(float)); /* a repeated item: identical keys */
    soft_score_rows(all, keys, N, q, NB, D, scratch);
    cr_assert_eq(memcmp(all + 7, all + 3, sizeof(float)), 0, "identical keys, different scores");
    for (size_t b = 0; b < NB; b++) {
        soft_score_rows(one, keys, N, q + b * D, 1, D, scratch);
        cr_assert_eq(memcmp(one, all + b * N, N * sizeof(float)), 0, "candidate %zu alone differs", b);
    }
    size_t cut = 515; /* not a multiple of the block or the chunk */
    soft_score_rows(part, keys, cut, q, NB, D, scratch);
    for (size_t b = 0; b < NB; b++) {
        float rest[N];
        soft_score_rows(rest, keys + cut * D, N - cut, q + b * D, 1, D, scratch);
        cr_assert_eq(memcmp(part + b * cut, all + b * N, cut * sizeof(float)), 0);
        cr_assert_eq(memcmp(rest, all + b * N + cut, (N - cut) * sizeof(float)), 0);
    }
    for (size_t b = 0; b < NB; b++)
        for (size_t i = 0; i < N; i++) {
            double ref = 0;
            for (size_t j = 0; j < D; j++) ref += (double)keys[i * D + j] * q[b * D + j];
            cr_assert(fabs(all[b * N + i] - ref) <= 1e-5, "score (%zu, %zu): %g vs %g", b, i, all[b * N + i], ref);
        }
    free(scratch);
}

Test(soft_score, the_same_bits_however_batched)
{
    check_batching();
}

Test(soft_score, the_plain_path_equals_the_reference_and_is_batch_independent)
{
    soft_score_allow_simd(0);
    check_batching();
    static float keys[N * D], q[NB * D], a[NB * N], r[NB * N];
    float *scratch = malloc(soft_score_scratch(N, D) * sizeof(float));
    uint64_t s = 9;
    fill(keys, N * D, &s);
    fill(q, NB * D, &s);
    soft_score_rows(a, keys, N, q, NB, D, scratch);
    soft_score_rows_ref(r, keys, N, q, NB, D);
    cr_assert_eq(memcmp(a, r, sizeof a), 0, "the plain blocked path is not the reference's sums");
    soft_score_allow_simd(1);
    free(scratch);
}

Test(soft_score, vectors_split_item_and_category_parts)
{
    enum { E = 12, DI = 8, DD = 5 };
    float w[DD * E], e[E], out[DD], item[DD], cat[DD];
    uint64_t s = 3;
    fill(w, DD * E, &s);
    fill(e, E, &s);
    soft_score_vector(out, w, E, DI, e, DD);
    soft_score_part(item, w, E, 0, DI, e, DD);
    soft_score_part(cat, w, E, DI, E - DI, e + DI, DD);
    for (size_t j = 0; j < DD; j++) {
        double ref = 0;
        for (size_t c = 0; c < E; c++) ref += (double)w[j * E + c] * e[c];
        cr_assert_eq(out[j], item[j] + cat[j]);
        cr_assert(fabs(out[j] - ref) < 1e-5);
    }
}
