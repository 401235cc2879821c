/*
 * bench_soft_search.c: soft search for one request, four ways, on a trained
 * SIM soft model's GSU vectors and a real 54,000-event user:
 *
 *   faiss-flat   FAISS IndexFlatIP through its C API: add the user's 54,000
 *                vectors, search all candidates at once, top K (the alternative
 *                named by the engine issue; what a team would reach for first);
 *                also over the distinct (item, category) pairs' vectors
 *   exact        gsu/soft_request.h SOFT_EXACT: the distinct pairs scored
 *                exactly as eval scores them, the top K behaviors recovered
 *   faiss        SOFT_FAISS: a FAISS shortlist of the pairs, exact ranking
 *   approx F     SOFT_APPROX: the pairs' categories probed by centroid until a
 *                share F of the pairs is scanned
 * The lsim modes' times include everything the request does after it has the
 * behaviors: grouping the sequence into pairs, approx's grouping by category
 * (keys transposed, centroids), the scores and the top K behaviors per
 * candidate. FAISS's search time excludes its add (the vectors handed over
 * ready). No time includes computing the vectors (the same function for all,
 * and lsim computes one per pair rather than one per behavior).
 * Checks: exact and faiss give the same top K as a brute-force ranking in
 * double precision (up to rows whose scores tie with the K-th to float
 * rounding); approx's recall@K against exact. One thread everywhere.
 *
 *   bench_soft_search --index DIR --model CKPT [--user U] [--candidates 200] [--runs 7]
 * prints one JSON object.
 */
#include "bench/bench_timing.h"
#include "esu/model.h"
#include "gsu/soft_approx.h"
#include "gsu/soft_faiss.h"
#include "gsu/soft_request.h"
#include "gsu/soft_score.h"
#include "gsu/soft_select.h"
#include "index/index_internal.h"
#include "lsim.h"

#include <cblas.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define die(m) bench_die("bench_soft_search", m)

void lsim_faiss_set_threads(int n);

/* top K rows of candidate b by double-precision scores (ties: the later row), ascending rows */
static void brute(const float *keys, size_t n, const float *q, size_t d, size_t k, uint32_t *out, double *kth,
                  double *sc)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)keys[i * d + j] * q[j];
        sc[i] = s;
    }
    /* a min-heap of (score, row) */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m < k) {
            size_t c = m++;
            out[c] = (uint32_t)i;
            while (c && (sc[out[(c - 1) / 2]] > sc[out[c]])) {
                uint32_t t = out[c];
                out[c] = out[(c - 1) / 2], out[(c - 1) / 2] = t, c = (c - 1) / 2;
            }
        } else if (sc[i] >= sc[out[0]]) {
            out[0] = (uint32_t)i;
            size_t c = 0;
            for (;;) {
                size_t l = 2 * c + 1, s = c;
                if (l < k && (sc[out[l]] < sc[out[s]] || (sc[out[l]] == sc[out[s]] && out[l] < out[s]))) s = l;
                if (l + 1 < k && (sc[out[l + 1]] < sc[out[s]] || (sc[out[l + 1]] == sc[out[s]] && out[l + 1] < out[s])))
                    s = l + 1;
                if (s == c) break;
                uint32_t t = out[c];
                out[c] = out[s], out[s] = t, c = s;
            }
        }
    }
    *kth = sc[out[0]];
    for (size_t i = 1; i < k; i++)
        if (sc[out[i]] < *kth) *kth = sc[out[i]];
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *ckpt = NULL, *user = "1";
    size_t nb = 200, runs = 7;
    static const struct option opts[] = {{"index", 1, 0, 'i'}, {"model", 1, 0, 'm'}, {"user", 1, 0, 'u'},
                                         {"candidates", 1, 0, 'c'}, {"runs", 1, 0, 'r'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'i') dir = optarg;
        else if (ch == 'm') ckpt = optarg;
        else if (ch == 'u') user = optarg;
        else if (ch == 'c') nb = (size_t)atol(optarg);
        else if (ch == 'r') runs = (size_t)atol(optarg);
        else die("usage: bench_soft_search --index DIR --model CKPT [--user U] [--candidates N] [--runs R]");
    }
    if (!dir || !ckpt || !nb || !runs || runs > 99) die("--index and --model are required");
    openblas_set_num_threads(1);
    lsim_faiss_set_threads(1);
    char err[512];
    lsim_index *ix;
    model *m;
    if (lsim_index_open(&ix, dir, err, sizeof err)) die(err);
    if (model_load(&m, ckpt, 1, 1, 1, err, sizeof err)) die(err);
    const model_spec *s = model_get_spec(m);
    if (s->kind != MODEL_SIM_SOFT) die("the checkpoint is not a sim-soft model");
    size_t E = (size_t)s->base.d_item + s->base.d_cat, D = s->gsu_d, K = s->topk;
    const param_set *ps = model_params(m);
    const float *ti = param_find(ps, "emb.item"), *tc = param_find(ps, "emb.cat");
    const float *wa = param_find(ps, "gsu.wa"), *wb = param_find(ps, "gsu.wb");
    lsim_index_reader *rd;
    if (lsim_index_reader_new(ix, &rd)) die("reader");
    uint32_t uid;
    if (vocab_find(ix->voc[IX_USER], user, strlen(user), &uid)) die("unknown user");
    ubt_event *ev = NULL;
    size_t cap = 0, n;
    if (index_user_events(rd, uid, INT64_MAX, &ev, &cap, &n)) die(lsim_index_reader_errmsg(rd));
    float *keys = malloc(n * D * sizeof(float)), *q = malloc(nb * D * sizeof(float)), *e = malloc(E * sizeof(float));
    uint32_t *cats = malloc(n * sizeof(uint32_t));
    uint32_t n_items = s->base.n_items, n_cats = s->base.n_cats;
#define EMB(item, cat)                                                                                             \
    do {                                                                                                           \
        uint32_t it_ = (item) < n_items ? (item) : n_items, ct_ = (cat) < n_cats ? (cat) : n_cats;                 \
        memcpy(e, ti + (size_t)it_ * s->base.d_item, s->base.d_item * sizeof(float));                              \
        memcpy(e + s->base.d_item, tc + (size_t)ct_ * s->base.d_cat, s->base.d_cat * sizeof(float));               \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        EMB(ev[i].item, ev[i].cat);
        soft_score_vector(keys + i * D, wb, E, s->base.d_item, e, D);
        cats[i] = ev[i].cat;
    }
    /* candidates: half items of the user's own history, half from the catalog at random */
    uint64_t st = 42;
    for (size_t b = 0; b < nb; b++) {
        uint32_t it = b % 2 ? ev[splitmix(&st) % n].item : (uint32_t)(splitmix(&st) % n_items);
        EMB(it, vocab_cat(ix->voc[IX_ITEM], it));
        soft_score_vector(q + b * D, wa, E, s->base.d_item, e, D);
    }
    /* brute force */
    uint32_t *want = malloc(nb * K * sizeof(uint32_t)), *got = malloc(nb * K * sizeof(uint32_t));
    uint32_t *cnt = malloc(nb * sizeof(uint32_t));
    double *kth = malloc(nb * sizeof(double)), *sc = malloc(n * sizeof(double));
    for (size_t b = 0; b < nb; b++) {
        brute(keys, n, q + b * D, D, K, want + b * K, &kth[b], sc);
        uint32_t *w = want + b * K; /* ascending rows */
        for (size_t i = 1; i < K; i++)
            for (size_t j = i; j > 0 && w[j - 1] > w[j]; j--) {
                uint32_t t = w[j];
                w[j] = w[j - 1], w[j - 1] = t;
            }
    }
    /* the distinct pairs and their vectors */
    soft_dedup dd;
    void *ddm = malloc(soft_dedup_bytes(n, K));
    soft_dedup_carve(&dd, ddm, n, K);
    uint32_t *items = malloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++) items[i] = ev[i].item;
    size_t u = soft_dedup_build(&dd, items, cats, NULL, n);
    float *pk = malloc(u * D * sizeof(float));
    for (size_t j = 0; j < u; j++) {
        EMB(dd.item[j], dd.cat[j]);
        soft_score_vector(pk + j * D, wb, E, s->base.d_item, e, D);
    }
    FaissIndexFlatIP *flat;
    if (faiss_IndexFlatIP_new_with(&flat, (idx_t)D)) die("faiss");
    float *fd = malloc(nb * K * sizeof(float));
    idx_t *fl = malloc(nb * K * sizeof(idx_t));
    double t_flat[99], t_flat_search[99], t_flat_pairs[99];
    for (size_t r = 0; r < runs; r++) {
        double t0 = now_s();
        faiss_Index_reset(flat);
        faiss_Index_add(flat, (idx_t)n, keys);
        double t1 = now_s();
        faiss_Index_search(flat, (idx_t)nb, q, (idx_t)K, fd, fl);
        double t2 = now_s();
        t_flat[r] = t2 - t0, t_flat_search[r] = t2 - t1;
        t0 = now_s();
        faiss_Index_reset(flat);
        faiss_Index_add(flat, (idx_t)u, pk);
        faiss_Index_search(flat, (idx_t)nb, q, (idx_t)K, fd, fl);
        t_flat_pairs[r] = now_s() - t0;
    }
    printf("{\"user\": \"%s\", \"behaviors\": %zu, \"distinct_pairs\": %zu, \"candidates\": %zu, \"k\": %zu, "
           "\"d\": %zu, \"runs\": %zu,\n", user, n, u, nb, K, D, runs);
    double flat_ms = 1e3 * median(t_flat_search, runs);
    printf(" \"faiss_flat_add_search_ms\": %.3f, \"faiss_flat_search_ms\": %.3f, \"faiss_flat_pairs_ms\": %.3f,\n",
           1e3 * median(t_flat, runs), flat_ms, 1e3 * median(t_flat_pairs, runs));
    uint32_t *exact_rows = malloc(nb * K * sizeof(uint32_t)), *ecnt = malloc(nb * sizeof(uint32_t));
    const char *names[] = {"exact", "faiss", "approx"};
    const float fr[] = {0.0f, 0.0f, 0.01f, 0.02f, 0.05f, 0.1f, 0.2f};
    printf(" \"modes\": [");
    for (size_t v = 0; v < sizeof fr / sizeof fr[0]; v++) {
        soft_mode mode = v == 0 ? SOFT_EXACT : v == 1 ? SOFT_FAISS : SOFT_APPROX;
        size_t slots = (size_t)n_cats + 2;
        void *mem = malloc(soft_request_bytes(mode, n, D, K, slots));
        soft_request sr;
        if (soft_request_init(&sr, mem, mode, n, D, K, nb, slots, v >= 2 ? fr[v] : 1.0f, err, sizeof err)) die(err);
        double t[99];
        for (size_t r = 0; r < runs; r++) {
            double t0 = now_s();
            soft_dedup_build(&sr.dd, items, cats, NULL, n);
            if (soft_request_topk(&sr, pk, q, nb, got, cnt, err, sizeof err)) die(err);
            t[r] = now_s() - t0;
        }
        if (v == 0) memcpy(exact_rows, got, nb * K * sizeof *got), memcpy(ecnt, cnt, nb * sizeof *cnt);
        size_t hit = 0, tot = 0, differ = 0, differ_tie = 0;
        for (size_t b = 0; b < nb; b++) {
            for (size_t i = 0; i < cnt[b]; i++)
                for (size_t j = 0; j < ecnt[b]; j++) hit += got[b * K + i] == exact_rows[b * K + j];
            tot += ecnt[b];
            if (v == 0 && memcmp(got + b * K, want + b * K, K * sizeof *got)) {
                /* differs from the double-precision ranking: only ties within rounding of the K-th allowed */
                int near = 1;
                for (size_t i = 0; i < K && near; i++) {
                    int in = 0;
                    for (size_t t2 = 0; t2 < K; t2++) in |= want[b * K + t2] == got[b * K + i];
                    if (in) continue;
                    double val = 0;
                    for (size_t j = 0; j < D; j++) val += (double)keys[got[b * K + i] * D + j] * q[b * D + j];
                    if (fabs(val - kth[b]) > 1e-5 * (fabs(kth[b]) + 1e-3)) near = 0;
                }
                if (near) differ_tie++;
                else differ++;
            }
        }
        double ms = 1e3 * median(t, runs);
        printf("%s\n  {\"mode\": \"%s\", \"fraction\": %.2f, \"ms\": %.3f, \"vs_faiss_flat\": %.2f, \"recall\": %.4f, "
               "\"scanned_share\": %.4f", v ? "," : "", names[mode], v >= 2 ? (double)fr[v] : 1.0, ms, flat_ms / ms,
               (double)hit / (double)tot, (double)sr.scanned / ((double)u * nb * runs));
        if (v == 0) printf(", \"differs_from_brute_force\": %zu, \"differs_only_by_ties\": %zu", differ, differ_tie);
        if (mode == SOFT_FAISS) printf(", \"fallbacks\": %llu", (unsigned long long)(sr.fallbacks / runs));
        printf("}");
        soft_request_destroy(&sr);
        free(mem);
    }
    printf("]}\n");
    faiss_Index_free(flat);
    lsim_index_reader_free(rd);
    model_free(m);
    lsim_index_close(ix);
    return 0;
}
