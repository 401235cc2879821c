/*
 * bench_hard_search.c: hard search against the obvious alternative, in one
 * run on one index.
 *
 * A request is SIM's hard-search GSU for one user: for each of C categories,
 * the K most recent events before `now`. Two ways to answer it:
 *   index   C calls of lsim_index_hard_search (the User Behavior Tree reads
 *           one chain per category, newest blocks first, and stops at K);
 *   flat    decode the user's whole history (every block), then filter it:
 *           one pass buckets events by the C categories, each bucket is
 *           ordered newest first and cut at K. This is what a store of
 *           per-user sequences (no category level) must do.
 * Both produce the same events (checked). Prints medians over R rounds.
 *
 * usage: bench_hard_search INDEX USER [C=20] [K=200] [ROUNDS=200]
 */
#include "bench/bench_timing.h"
#include "index/index_internal.h"
#include "lsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int newer_first(const void *a, const void *b)
{
    const ubt_event *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? 1 : -1;
    return (x->tie < y->tie) - (x->tie > y->tie);
}

typedef struct cat_count {
    uint32_t cat, n;
} cat_count;

static int by_count(const void *a, const void *b)
{
    const cat_count *x = a, *y = b;
    return (x->n < y->n) - (x->n > y->n);
}

/* Decodes every block of `user` into all[]; returns the count. */
static size_t decode_user(lsim_index_reader *rd, uint32_t user, ubt_event *all, size_t cap)
{
    uint8_t k0[UBT_KEY_LEN];
    ubt_key(k0, user, 0, 0);
    MDB_val k = {UBT_KEY_LEN, k0}, d;
    size_t n = 0;
    int rc = mdb_cursor_get(rd->cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && ubt_get_u32be(k.mv_data) == user) {
        uint32_t cat = ubt_get_u32be((const uint8_t *)k.mv_data + 4);
        size_t got = 0;
        if (block_decode_keyed(rd->codec, all + n, cap - n, &got, d.mv_data, d.mv_size, cat, k.mv_data, UBT_KEY_LEN)) {
            fprintf(stderr, "corrupt block\n");
            exit(1);
        }
        n += got;
        rc = mdb_cursor_get(rd->cur, &k, &d, MDB_NEXT);
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s INDEX USER [C=20] [K=200] [ROUNDS=200]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *user = argv[2];
    size_t C = argc > 3 ? strtoul(argv[3], NULL, 10) : 20, K = argc > 4 ? strtoul(argv[4], NULL, 10) : 200;
    int rounds = argc > 5 ? atoi(argv[5]) : 200;
    char err[512];
    lsim_index *ix;
    lsim_index_reader *rd;
    if (lsim_index_open(&ix, dir, err, sizeof err) || lsim_index_reader_new(ix, &rd)) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    uint32_t uid;
    if (vocab_find(ix->voc[IX_USER], user, strlen(user), &uid)) {
        fprintf(stderr, "user %s not in the index\n", user);
        return 1;
    }
    ubt_user_summary sum;
    if (index_user_summary(rd, user, strlen(user), &sum)) return 1;
    size_t cap = (size_t)sum.events + BLOCK_MAX_EVENTS;
    ubt_event *all = malloc(cap * sizeof *all);
    index_reader_begin(rd);
    size_t n_all = decode_user(rd, uid, all, cap);
    index_reader_end(rd);
    /* the user's C most frequent categories, "now" = just after the last event */
    uint32_t n_cats = (uint32_t)ix->counts.categories;
    cat_count *cc = calloc(n_cats, sizeof *cc);
    for (uint32_t c = 0; c < n_cats; c++) cc[c].cat = c;
    for (size_t i = 0; i < n_all; i++) cc[all[i].cat].n++;
    qsort(cc, n_cats, sizeof *cc, by_count);
    if (C > n_cats) C = n_cats;
    while (C > 0 && cc[C - 1].n == 0) C--;
    int64_t before = sum.last_ts + 1;
    const char **cat_names = malloc(C * sizeof *cat_names);
    for (size_t c = 0; c < C; c++) cat_names[c] = vocab_str(ix->voc[IX_CAT], cc[c].cat);

    lsim_event *out = malloc(K * sizeof *out);
    ubt_event **bucket = malloc(C * sizeof *bucket);
    size_t *bn = calloc(C, sizeof *bn), *idx_n = calloc(C, sizeof *idx_n);
    for (size_t c = 0; c < C; c++) bucket[c] = malloc(cc[c].n * sizeof **bucket + 1);
    uint32_t *slot = malloc(n_cats * sizeof *slot);
    memset(slot, 0xff, n_cats * sizeof *slot);
    for (size_t c = 0; c < C; c++) slot[cc[c].cat] = (uint32_t)c;
    double *t_index = malloc((size_t)rounds * sizeof(double)), *t_flat = malloc((size_t)rounds * sizeof(double));
    size_t total_index = 0, total_flat = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        total_index = 0;
        for (size_t c = 0; c < C; c++) {
            size_t n;
            if (lsim_index_hard_search(rd, user, strlen(user), cat_names[c], strlen(cat_names[c]), before, K, out, &n)) {
                fprintf(stderr, "search failed: %s\n", lsim_index_reader_errmsg(rd));
                return 1;
            }
            total_index += n;
            idx_n[c] = n;
        }
        double t1 = now_s();
        index_reader_begin(rd);
        size_t m = decode_user(rd, uid, all, cap);
        index_reader_end(rd);
        for (size_t c = 0; c < C; c++) bn[c] = 0;
        for (size_t i = 0; i < m; i++) {
            uint32_t s = slot[all[i].cat];
            if (s != UINT32_MAX && all[i].ts < before) bucket[s][bn[s]++] = all[i];
        }
        total_flat = 0;
        for (size_t c = 0; c < C; c++) {
            qsort(bucket[c], bn[c], sizeof(ubt_event), newer_first);
            total_flat += bn[c] < K ? bn[c] : K;
        }
        double t2 = now_s();
        t_index[r] = t1 - t0;
        t_flat[r] = t2 - t1;
    }
    if (total_index != total_flat) {
        fprintf(stderr, "the two methods disagree: %zu vs %zu events\n", total_index, total_flat);
        return 1;
    }
    qsort(t_index, (size_t)rounds, sizeof(double), cmp_double);
    qsort(t_flat, (size_t)rounds, sizeof(double), cmp_double);
    double mi = t_index[rounds / 2], mf = t_flat[rounds / 2];
    printf("{\"user\": \"%s\", \"user_events\": %zu, \"categories\": %zu, \"k\": %zu, \"events_returned\": %zu, "
           "\"rounds\": %d, \"index_us\": %.1f, \"flat_decode_filter_us\": %.1f, \"speedup\": %.2f}\n",
           user, n_all, C, K, total_index, rounds, mi * 1e6, mf * 1e6, mf / mi);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return 0;
}
