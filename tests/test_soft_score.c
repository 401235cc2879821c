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

/* every count of blocks (the one-candidate path takes 8, 4, 2 and 1 at a time; four candidates, 2 and 1) */
Test(soft_score, one_candidate_and_four_agree_at_every_length)
{
    enum { LN = 12 * 8 + 5 };
    static float keys[LN * D], q[4 * D], kt[LN * D + 8 * D], four[4 * LN], one[LN];
    uint64_t s = 17;
    fill(keys, LN * D, &s);
    fill(q, D, &s);
    for (size_t b = 1; b < 4; b++) memcpy(q + b * D, q, D * sizeof(float));
    for (size_t n = 1; n <= LN; n++) {
        soft_score_transpose(kt, keys, n, D);
        soft_score_rows_t(four, kt, n, q, 4, D);
        soft_score_rows_t(one, kt, n, q, 1, D);
        for (size_t b = 0; b < 4; b++) cr_assert_eq(memcmp(one, four + b * n, n * sizeof(float)), 0, "n %zu", n);
    }
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

/* ---- one request's top K: brute force, FAISS, approximate ---- */
#include "gsu/soft_approx.h"
#include "gsu/soft_faiss.h"
#include "gsu/soft_select.h"

enum { RN = 3000, RB = 40, RK = 50, RC = 60 };

/* keys = a category part + an item part, items repeated (identical keys: exact ties) */
static void request_case(float *keys, uint32_t *cats, float *q, float cat_scale, uint64_t seed, uint32_t items)
{
    static float cpart[RC * D], ipart[400 * D];
    uint64_t s = seed;
    fill(cpart, RC * D, &s);
    fill(ipart, 400 * D, &s);
    for (size_t i = 0; i < RN; i++) {
        uint32_t it = (uint32_t)(tu_rand(&s) % items), c = it % RC;
        cats[i] = c;
        for (size_t j = 0; j < D; j++) keys[i * D + j] = cat_scale * cpart[c * D + j] + ipart[it * D + j];
    }
    fill(q, RB * D, &s);
}

static void *carve_select(soft_select *ss)
{
    void *mem = malloc(soft_select_bytes(RN, D, RK));
    soft_select_carve(ss, mem, RN, D, RK);
    return mem;
}

/* the brute-force reference of the reference: every score, the rank keys sorted */
static void brute(const float *keys, const float *q, uint32_t *out)
{
    static float sc[RN];
    soft_score_rows_ref(sc, keys, RN, q, 1, D);
    uint8_t taken[RN] = {0};
    for (size_t t = 0; t < RK; t++) {
        size_t best = RN;
        for (size_t i = 0; i < RN; i++)
            if (!taken[i] && (best == RN || sc[i] > sc[best] || (sc[i] == sc[best] && i > best))) best = i;
        taken[best] = 1;
    }
    size_t m = 0;
    for (size_t i = 0; i < RN; i++)
        if (taken[i]) out[m++] = (uint32_t)i;
}

static void faiss_case(uint32_t items, int want_fallbacks)
{
    soft_score_allow_simd(0); /* the plain path, so that the plain ranking above sees the same scores */
    static float keys[RN * D], q[RB * D];
    static uint32_t cats[RN], a[RB * RK], f[RB * RK], want[RK], ca[RB], cf[RB];
    request_case(keys, cats, q, 1.0f, 21, items);
    soft_select ss;
    void *mem = carve_select(&ss);
    soft_select_topk(&ss, keys, RN, q, RB, a, ca);
    soft_faiss *sf;
    char err[256];
    cr_assert_eq(soft_faiss_new(&sf, RN, D, RB, RK, err, sizeof err), 0, "%s", err);
    cr_assert_eq(soft_faiss_topk(sf, &ss, keys, RN, q, RB, f, cf, err, sizeof err), 0, "%s", err);
    for (size_t b = 0; b < RB; b++) {
        brute(keys, q + b * D, want);
        cr_assert_eq(ca[b], RK);
        cr_assert_eq(cf[b], RK);
        cr_assert_eq(memcmp(a + b * RK, want, sizeof want), 0, "brute force differs for candidate %zu", b);
        cr_assert_eq(memcmp(f + b * RK, want, sizeof want), 0, "FAISS differs for candidate %zu", b);
    }
    if (want_fallbacks) cr_assert(soft_faiss_fallbacks(sf) > 0, "no fallback");
    else cr_assert_eq(soft_faiss_fallbacks(sf), 0, "%llu fallbacks", (unsigned long long)soft_faiss_fallbacks(sf));
    soft_faiss_free(sf);
    free(mem);
    soft_score_allow_simd(1);
}

Test(soft_score, request_top_k_brute_force_and_faiss_agree_with_a_plain_ranking)
{
    faiss_case(400, 0); /* items repeated ~8 times: FAISS's shortlist holds every tie */
    faiss_case(20, 1);  /* ~150 copies each: ties beyond the shortlist, the fallback keeps it exact */
}

static double approx_recall(float fraction, float cat_scale, uint64_t *scanned)
{
    static float keys[RN * D], q[RB * D];
    static uint32_t cats[RN], a[RB * RK], x[RB * RK], ca[RB], cx[RB];
    request_case(keys, cats, q, cat_scale, 33, 400);
    soft_select ss;
    void *mem = carve_select(&ss);
    soft_select_topk(&ss, keys, RN, q, RB, x, cx);
    soft_approx sa;
    void *am = malloc(soft_approx_bytes(RN, D, RK, RC + 1));
    soft_approx_carve(&sa, am, RN, D, RK, RC + 1, fraction);
    *scanned = soft_approx_topk(&sa, keys, cats, RN, q, RB, a, ca);
    size_t hit = 0;
    for (size_t b = 0; b < RB; b++) {
        cr_assert_eq(ca[b], RK);
        for (size_t i = 0; i < RK; i++) {
            if (i) cr_assert(a[b * RK + i] > a[b * RK + i - 1], "not in row order");
            for (size_t j = 0; j < RK; j++) hit += a[b * RK + i] == x[b * RK + j];
        }
    }
    free(am);
    free(mem);
    return (double)hit / (RB * RK);
}

Test(soft_score, approximate_search_scanning_everything_is_exact)
{
    uint64_t scanned;
    cr_assert_eq(approx_recall(1.0f, 1.0f, &scanned), 1.0);
    cr_assert_eq(scanned, (uint64_t)RN * RB);
}

Test(soft_score, approximate_search_keeps_the_top_k_where_categories_dominate)
{
    uint64_t scanned;
    /* category parts 4x the items': the best categories hold the top K */
    double r = approx_recall(0.1f, 4.0f, &scanned);
    cr_assert(r >= 0.95, "recall %.3f", r);
    cr_assert(scanned <= (uint64_t)(0.1 * RN + 2 * RN / RC + 1) * RB, "scanned %llu", (unsigned long long)scanned);
    /* and a real loss where they do not: the test can fail */
    double weak = approx_recall(0.05f, 0.0f, &scanned);
    cr_assert(weak < 0.9, "recall %.3f with no category structure", weak);
}

/* ---- distinct pairs: the top K behaviors from the pairs' scores ---- */
#include "gsu/soft_dedup.h"
#include "gsu/soft_search.h"

static void *dedup_new(soft_dedup *dd, size_t n, size_t k)
{
    void *mem = malloc(soft_dedup_bytes(n, k));
    soft_dedup_carve(dd, mem, n, k);
    return mem;
}

/* The build's stamp (24 bits beside the tag) wraps: the table is cleared, and no slot of an earlier build is
 * taken for this one's, with or without tags. */
Test(soft_score, the_dedup_stamp_wraps_cleanly)
{
    static const uint32_t items[6] = {5, 5, 7, 5, 9, 7}, cats[6] = {1, 1, 2, 1, 3, 2};
    static const uint8_t tags[6] = {0, 4, 0, 0, 4, 1};
    soft_dedup dd;
    void *mem = dedup_new(&dd, 6, 2);
    /* each round builds twice; the stamps after each round's builds */
    static const uint32_t stamps[4][2] = {{1, 2}, {3, 4}, {(1u << 24) - 1, 1}, {2, 3}};
    for (int round = 0; round < 4; round++) {
        if (round == 2) dd.gen = (1u << 24) - 2; /* the next build takes the last stamp, the one after wraps */
        cr_assert_eq(soft_dedup_build(&dd, items, cats, tags, 6), 5, "round %d: (item, cat, tag) triples", round);
        cr_assert_eq(dd.gen, stamps[round][0]);
        cr_assert_eq(soft_dedup_build(&dd, items, cats, NULL, 6), 3, "round %d: (item, cat) pairs", round);
        cr_assert_eq(dd.gen, stamps[round][1]);
        cr_assert(dd.item[0] == 5 && dd.cnt[0] == 3 && dd.item[1] == 7 && dd.cnt[1] == 2 && dd.cnt[2] == 1);
    }
    free(mem);
}

Test(soft_score, distinct_pairs_give_the_row_ranking_exactly)
{
    enum { PN = 2000, PK = 50 };
    static uint32_t items[PN], cats[PN], want[PK], got[PK], off[2], sel_off[2];
    static uint8_t tags[PN], seen_key[(PN * 7 + 3) * 5 * 24];
    static float row_score[PN], pair_score[PN];
    static uint64_t heap[PK];
    soft_dedup dd;
    void *mem = dedup_new(&dd, PN, PK);
    uint64_t s = 8;
    for (int trial = 0; trial < 90; trial++) {
        /* some trials with tags (the recency bias's time buckets): the distinct unit is then the triple */
        int tagged = trial % 5 == 1;
        /* a third with few pairs (many rows each), a third with many (the floor skipping 16 at a time), a third
         * mixed */
        size_t n = trial >= 60 ? PN : 1 + (size_t)(tu_rand(&s) % PN);
        size_t pairs = trial >= 60 ? 1000 + (size_t)(tu_rand(&s) % 1000)
                                   : 1 + (size_t)(tu_rand(&s) % (trial % 3 ? 40 : 900));
        for (size_t i = 0; i < n; i++) {
            uint32_t p = (uint32_t)(tu_rand(&s) % pairs);
            items[i] = p * 7 + 3, cats[i] = p % 5, tags[i] = (uint8_t)(tu_rand(&s) % 3 * 11);
        }
        size_t u = soft_dedup_build(&dd, items, cats, tagged ? tags : NULL, n), distinct = 0;
        memset(seen_key, 0, sizeof seen_key); /* the brute-force count of distinct pairs (or triples) */
        for (size_t i = 0; i < n; i++) {
            size_t key = ((size_t)items[i] * 5 + cats[i]) * 24 + (tagged ? tags[i] : 0);
            distinct += !seen_key[key];
            seen_key[key] = 1;
        }
        cr_assert_eq(u, distinct, "trial %d: %zu distinct units, want %zu", trial, u, distinct);
        for (size_t j = 0; j < u; j++) /* few distinct values: ties between different pairs too */
            pair_score[j] = (float)(int)(tu_rand(&s) % (trial % 2 ? 4 : 1000)) - (trial % 4 == 0 ? 0.0f : 2.0f);
        if (trial == 5) pair_score[0] = -0.0f;
        size_t seen = 0;
        for (size_t j = 0; j < u; j++) {
            uint32_t c = 0;
            for (uint32_t r = dd.last[j], after = UINT32_MAX; r != SOFT_DEDUP_NONE; after = r, r = dd.prev[r], c++) {
                cr_assert(r < after && items[r] == dd.item[j] && cats[r] == dd.cat[j] &&
                          (tagged ? tags[r] == dd.tag[j] : dd.tag[j] == 0));
                row_score[r] = pair_score[j];
            }
            cr_assert_eq(c, dd.cnt[j]);
            seen += c;
        }
        cr_assert_eq(seen, n);
        off[0] = 0, off[1] = (uint32_t)n;
        size_t nw = soft_gsu_topk(sel_off, want, heap, row_score, off, 1, PK);
        size_t ng = soft_dedup_expand(&dd, pair_score, NULL, u, got, NULL);
        cr_assert_eq(ng, nw, "trial %d: %zu vs %zu", trial, ng, nw);
        cr_assert_eq(memcmp(got, want, nw * sizeof *got), 0, "trial %d (n %zu, %zu pairs): other rows", trial, n, u);
    }
    free(mem);
}

/* ---- the gathering transpose; the expansion over a shortlist; one request's modes against brute force ---- */
#include "gsu/soft_request.h"

Test(soft_score, a_gathered_transpose_scores_as_the_gathered_rows)
{
    enum { GN = 301 };
    static float keys[N * D], q[D], packed[GN * D], want[GN], got[GN];
    static uint32_t rows[GN];
    float *kt = malloc(soft_score_t_floats(GN, D) * sizeof(float)), *scratch = malloc(soft_score_scratch(GN, D) * 4);
    uint64_t s = 12;
    fill(keys, N * D, &s);
    fill(q, D, &s);
    for (size_t i = 0; i < GN; i++) {
        rows[i] = (uint32_t)(tu_rand(&s) % N);
        memcpy(packed + i * D, keys + (size_t)rows[i] * D, D * sizeof(float));
    }
    soft_score_rows(want, packed, GN, q, 1, D, scratch);
    soft_score_transpose_rows(kt, keys, rows, GN, D);
    soft_score_rows_t(got, kt, GN, q, 1, D);
    cr_assert_eq(memcmp(got, want, sizeof want), 0);
    size_t tf = soft_score_t_floats(GN, D); /* the SIMD transpose moves the same bytes as the plain one */
    float *plain = malloc(tf * sizeof(float));
    soft_score_allow_simd(0);
    soft_score_transpose_rows(plain, keys, rows, GN, D);
    soft_score_allow_simd(1);
    cr_assert_eq(memcmp(plain, kt, tf * sizeof(float)), 0);
    free(plain);
    free(kt);
    free(scratch);
}

/* the k best rows among those whose pair is in ids[0..m), by (score, row), ascending rows */
static size_t brute_rows(uint32_t *out, const uint32_t *items, const uint32_t *cats, size_t n, const soft_dedup *dd,
                         const float *pair_score, const uint32_t *ids, size_t m, size_t k)
{
    static uint8_t taken[4096];
    static float sc[4096];
    static uint8_t in[4096];
    memset(taken, 0, n), memset(in, 0, n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++)
            if (dd->item[ids[j]] == items[i] && dd->cat[ids[j]] == cats[i]) in[i] = 1, sc[i] = pair_score[j];
    size_t c = 0;
    for (; c < k; c++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (in[i] && !taken[i] && (best == n || sc[i] > sc[best] || (sc[i] == sc[best] && i > best))) best = i;
        if (best == n) break;
        taken[best] = 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (taken[i]) out[o++] = (uint32_t)i;
    return c;
}

Test(soft_score, the_expansion_over_a_shortlist_in_any_order_ranks_as_brute_force)
{
    enum { SN = 3000, SK = 40 };
    static uint32_t items[SN], cats[SN], ids[SN], want[SK], got[SK];
    static float score[SN];
    soft_dedup dd;
    void *mem = dedup_new(&dd, SN, SK);
    uint64_t s = 31;
    for (int trial = 0; trial < 60; trial++) {
        size_t n = 1 + (size_t)(tu_rand(&s) % SN), pairs = 1 + (size_t)(tu_rand(&s) % (trial % 2 ? 30 : 1500));
        for (size_t i = 0; i < n; i++) {
            uint32_t p = (uint32_t)(tu_rand(&s) % pairs);
            items[i] = p, cats[i] = p % 3;
        }
        size_t u = soft_dedup_build(&dd, items, cats, NULL, n), m = 0;
        for (size_t j = 0; j < u; j++) /* a random shortlist, in a random order */
            if (tu_rand(&s) % 3) ids[m++] = (uint32_t)j;
        for (size_t j = m; j > 1; j--) {
            size_t t = (size_t)(tu_rand(&s) % j);
            uint32_t x = ids[j - 1];
            ids[j - 1] = ids[t], ids[t] = x;
        }
        for (size_t j = 0; j < m; j++) score[j] = (float)(int)(tu_rand(&s) % (trial % 3 ? 5 : 500));
        size_t nw = brute_rows(want, items, cats, n, &dd, score, ids, m, SK);
        float kth;
        size_t ng = soft_dedup_expand(&dd, score, ids, m, got, &kth);
        cr_assert_eq(ng, nw, "trial %d: %zu vs %zu rows", trial, ng, nw);
        cr_assert_eq(memcmp(got, want, nw * sizeof *got), 0, "trial %d (n %zu, %zu of %zu pairs): other rows",
                     trial, n, m, u);
        if (nw == SK) { /* the K-th row's score */
            float lo = INFINITY;
            for (size_t i = 0; i < nw; i++)
                for (size_t j = 0; j < m; j++)
                    if (dd.item[ids[j]] == items[got[i]] && dd.cat[ids[j]] == cats[got[i]] && score[j] < lo)
                        lo = score[j];
            cr_assert_eq(kth, lo, "trial %d", trial);
        }
    }
    free(mem);
}

/* A user-like request: items repeated by a power law (a few pairs hold most behaviors), the category part of the
 * vectors cat_scale times the items'. Each mode's top K against a brute-force ranking of the behaviors. */
enum { QN = 4000, QB = 24, QK = 50, QC = 40, QI = 700 };

static double request_recall(soft_mode mode, float fraction, float cat_scale, int *exact_rows)
{
    static float cpart[QC * D], ipart[QI * D], keys[QN * D], rowkeys[QN * D], q[QB * D], sc[QN];
    static uint32_t items[QN], cats[QN], want[QB * QK], got[QB * QK], cnt[QB], off[2], sel_off[2];
    static uint64_t heap[QK];
    uint64_t s = 77;
    fill(cpart, QC * D, &s);
    fill(ipart, QI * D, &s);
    fill(q, QB * D, &s);
    for (size_t i = 0; i < QN; i++) {
        double x = (double)(tu_rand(&s) >> 11) / 9007199254740992.0;
        uint32_t it = (uint32_t)(QI * x * x * x); /* low ids far more often */
        items[i] = it, cats[i] = it % QC;
        for (size_t j = 0; j < D; j++) rowkeys[i * D + j] = cat_scale * cpart[cats[i] * D + j] + ipart[it * D + j];
    }
    soft_request r;
    char err[256];
    void *mem = malloc(soft_request_bytes(mode, QN, D, QK, QC + 2));
    cr_assert_eq(soft_request_init(&r, mem, mode, QN, D, QK, QB, QC + 2, fraction, err, sizeof err), 0, "%s", err);
    size_t u = soft_dedup_build(&r.dd, items, cats, NULL, QN);
    for (size_t j = 0; j < u; j++)
        for (size_t t = 0; t < D; t++)
            keys[j * D + t] = cat_scale * cpart[r.dd.cat[j] * D + t] + ipart[r.dd.item[j] * D + t];
    cr_assert_eq(soft_request_topk(&r, keys, q, QB, got, cnt, err, sizeof err), 0, "%s", err);
    float *scratch = malloc(soft_score_scratch(QN, D) * sizeof(float));
    size_t hit = 0;
    *exact_rows = 1;
    for (size_t b = 0; b < QB; b++) {
        soft_score_rows(sc, rowkeys, QN, q + b * D, 1, D, scratch);
        off[0] = 0, off[1] = QN;
        soft_gsu_topk(sel_off, want + b * QK, heap, sc, off, 1, QK);
        cr_assert_eq(cnt[b], QK);
        for (size_t i = 0; i < QK; i++) {
            if (i) cr_assert(got[b * QK + i] > got[b * QK + i - 1], "not in row order");
            for (size_t j = 0; j < QK; j++) hit += got[b * QK + i] == want[b * QK + j];
        }
        *exact_rows &= !memcmp(got + b * QK, want + b * QK, QK * sizeof *got);
    }
    soft_request_destroy(&r);
    free(scratch);
    free(mem);
    return (double)hit / (QB * QK);
}

Test(soft_score, a_request_exact_is_brute_force_and_approximate_keeps_its_recall)
{
    int same;
    cr_assert_eq(request_recall(SOFT_EXACT, 1.0f, 4.0f, &same), 1.0);
    cr_assert(same, "exact: other rows than brute force");
    cr_assert_eq(request_recall(SOFT_APPROX, 1.0f, 1.0f, &same), 1.0); /* every category probed: exact */
    cr_assert(same);
    double r = request_recall(SOFT_APPROX, 0.1f, 4.0f, &same);
    cr_assert(r >= 0.95, "recall %.3f at fraction 0.1 where categories dominate", r);
    double weak = request_recall(SOFT_APPROX, 0.05f, 0.0f, &same); /* no category structure: a real loss */
    cr_assert(weak < 0.9, "recall %.3f with no category structure", weak);
}
