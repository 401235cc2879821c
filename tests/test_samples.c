/*
 * test_samples.c: train/samples.c against a brute-force reading of the log.
 *
 * A random log (30 users and a heavy one, items of fixed categories, many
 * equal timestamps) is indexed; every batch of a pass is then checked
 * sample by sample against the reference (tests/ref_log.h), which knows
 * nothing of the index: the positives are exactly the log's events of the
 * split, each once; a sample's short-term history is the user's last S
 * events strictly before t (time, then log order); SIM hard's long-term
 * list is ref_search in the target's category; the full list is the last
 * long_max events; MIMN's whole history (LONG_ALL) is every event before t,
 * with or without long_before_short; nothing at or after t is ever visible. Also: negatives,
 * the per-user cap, determinism for a seed, and the item counts.
 */
#include "index/index_internal.h"
#include "index/index_write.h"
#include "lsim.h"
#include "tests/ref_log.h"
#include "tests/test_util.h"
#include "train/samples.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1500000000
#define SPAN 4000

static void write_log(const char *path, ref_log *ref, uint64_t *seed, size_t lines)
{
    static const char *const types[] = {"pv", "buy", "cart", "fav"};
    FILE *f = fopen(path, "w");
    cr_assert(f);
    for (size_t i = 0; i < lines; i++) {
        char u[16], it[16], c[16];
        int heavy = tu_rand(seed) % 4 == 0;
        snprintf(u, sizeof u, heavy ? "heavy" : "u%d", (int)(tu_rand(seed) % 30));
        int item = (int)(tu_rand(seed) % 120);
        snprintf(it, sizeof it, "i%d", item);
        snprintf(c, sizeof c, "c%d", item % 9);
        int64_t ts = T0 + (int64_t)(tu_rand(seed) % (heavy ? SPAN : SPAN / 8)) * (heavy ? 1 : 8);
        const char *t = types[tu_rand(seed) % 4];
        fprintf(f, "%s,%s,%s,%s,%lld\n", u, it, c, t, (long long)ts);
        ref_add(ref, u, it, c, t, ts);
    }
    fclose(f);
}

typedef struct fixture {
    char *dir, idx[512];
    ref_log ref;
    lsim_index *ix;
} fixture;

static void setup(fixture *fx, size_t lines)
{
    memset(fx, 0, sizeof *fx);
    uint64_t seed = 5;
    fx->dir = tu_tmpdir("samples");
    char log[512];
    snprintf(log, sizeof log, "%s/log.csv", fx->dir);
    snprintf(fx->idx, sizeof fx->idx, "%s/idx", fx->dir);
    write_log(log, &fx->ref, &seed, lines);
    ubt_write_opts o;
    ubt_write_result res;
    char err[512];
    const char *inputs[1] = {log};
    ubt_write_opts_default(&o);
    o.inputs = inputs;
    o.n_inputs = 1;
    cr_assert_eq(ubt_build(fx->idx, &o, &res, err, sizeof err), 0, "build: %s", err);
    cr_assert_eq(lsim_index_open(&fx->ix, fx->idx, err, sizeof err), 0, "open: %s", err);
}

static void teardown(fixture *fx)
{
    lsim_index_close(fx->ix);
    ref_free(&fx->ref);
    tu_rmrf(fx->dir);
}

static const char *item_str(lsim_index *ix, uint32_t id)
{
    return vocab_str(ix->voc[IX_ITEM], id);
}

static const char *cat_str(lsim_index *ix, uint32_t id)
{
    return vocab_str(ix->voc[IX_CAT], id);
}

/* The reference events of user u with ts < t, oldest first (time, then log order). */
static size_t ref_before(const ref_log *ref, const char *u, int64_t t, const ref_event **out)
{
    size_t n = 0;
    for (size_t i = 0; i < ref->n; i++)
        if (!strcmp(ref->ev[i].user, u) && ref->ev[i].ts < t) out[n++] = &ref->ev[i];
    /* out holds pointers; sort them by (ts, line) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && (out[j - 1]->ts > out[j]->ts ||
                                     (out[j - 1]->ts == out[j]->ts && out[j - 1]->line > out[j]->line)); j--) {
            const ref_event *x = out[j];
            out[j] = out[j - 1];
            out[j - 1] = x;
        }
    return n;
}

/* Runs a whole pass, checking every sample; returns the positives seen.
 * seen[i] counts how often reference event i was a positive. */
static size_t check_pass(fixture *fx, const sample_config *c, size_t *seen)
{
    char err[512];
    sample_source *s;
    cr_assert_eq(sample_source_open(&s, fx->ix, c, err, sizeof err), 0, "%s", err);
    const ref_event **before = malloc(fx->ref.n * sizeof *before), **hard = malloc(fx->ref.n * sizeof *hard);
    size_t positives = 0, negatives = 0;
    for (;;) {
        model_batch bt;
        const uint32_t *users;
        cr_assert_eq(sample_source_next(s, &bt, &users, err, sizeof err), 0, "%s", err);
        if (!bt.b) break;
        cr_assert(bt.b <= c->batch);
        for (size_t b = 0; b < bt.b; b++) {
            const char *u = vocab_str(fx->ix->voc[IX_USER], users[b]);
            int64_t t = bt.now[b];
            cr_assert(c->split == SAMPLES_TRAIN ? t < c->test_from && t >= c->train_from : t >= c->test_from,
                      "sample out of its split");
            size_t nb = ref_before(&fx->ref, u, t, before);
            /* short-term: the last S before t */
            size_t S = c->short_len, h0 = nb > S ? nb - S : 0;
            cr_assert_eq(bt.hist_len[b], nb - h0, "user %s t %lld: history of %u, want %zu", u, (long long)t,
                         bt.hist_len[b], nb - h0);
            for (size_t j = 0; j < nb - h0; j++) {
                const ref_event *e = before[h0 + j];
                cr_assert(bt.hist_ts[b * S + j] == e->ts && bt.hist_ts[b * S + j] < t &&
                              !strcmp(item_str(fx->ix, bt.hist_item[b * S + j]), e->item) &&
                              !strcmp(cat_str(fx->ix, bt.hist_cat[b * S + j]), e->cat),
                          "user %s t %lld: history %zu is %s at %lld, want %s at %lld", u, (long long)t, j,
                          item_str(fx->ix, bt.hist_item[b * S + j]), (long long)bt.hist_ts[b * S + j], e->item,
                          (long long)e->ts);
            }
            const char *tcat = cat_str(fx->ix, bt.target_cat[b]);
            /* the long-term list comes from before[0 .. nl): everything before t, or
             * with long_before_short what precedes the short-term window */
            size_t nl = c->long_before_short ? h0 : nb;
            if (c->long_mode == LONG_HARD) {
                size_t m = 0; /* newest first: the category's events, kept if among before[0 .. nl) */
                {
                    size_t mm = ref_search(&fx->ref, u, tcat, c->long_before_short ? INT64_MAX : t, fx->ref.n, hard);
                    size_t keep = 0;
                    for (size_t j = 0; j < mm; j++) { /* in the first nl of `before` (by time, then line) */
                        int in = 0;
                        for (size_t q = 0; q < nl && !in; q++) in = before[q] == hard[j];
                        if (in && keep < c->long_k) hard[keep++] = hard[j];
                    }
                    m = keep;
                }
                cr_assert_eq(bt.long_len[b], m, "user %s t %lld cat %s: hard search of %u, want %zu", u,
                             (long long)t, tcat, bt.long_len[b], m);
                for (size_t j = 0; j < m; j++) {
                    const ref_event *e = hard[m - 1 - j];
                    size_t o = b * bt.k + j;
                    cr_assert(bt.long_ts[o] == e->ts && !strcmp(item_str(fx->ix, bt.long_item[o]), e->item) &&
                                  !strcmp(cat_str(fx->ix, bt.long_cat[o]), e->cat),
                              "user %s t %lld: hard-search event %zu differs", u, (long long)t, j);
                }
            } else if (c->long_mode == LONG_ALL) { /* every event before t, whatever long_before_short says */
                cr_assert_eq(bt.all_len[b], nb, "user %s t %lld: whole history of %u, want %zu", u, (long long)t,
                             bt.all_len[b], nb);
                for (size_t j = 0; j < nb; j++) {
                    size_t o = bt.all_off[b] + j;
                    cr_assert(!strcmp(item_str(fx->ix, bt.all_item[o]), before[j]->item) &&
                                  !strcmp(cat_str(fx->ix, bt.all_cat[o]), before[j]->cat),
                              "user %s t %lld: whole-history event %zu differs", u, (long long)t, j);
                }
            } else if (c->long_mode == LONG_FULL) {
                size_t l0 = nl > c->long_max ? nl - c->long_max : 0;
                cr_assert_eq(bt.long_len[b], nl - l0);
                for (size_t j = 0; j < nl - l0; j++) {
                    size_t o = b * bt.k + j;
                    cr_assert(bt.long_ts[o] == before[l0 + j]->ts &&
                                  !strcmp(item_str(fx->ix, bt.long_item[o]), before[l0 + j]->item),
                              "user %s t %lld: long event %zu differs", u, (long long)t, j);
                }
            }
            if (bt.label[b] > 0.5f) {
                /* a positive is one of the log's events: (user, item, cat, t), not yet used */
                size_t i = 0;
                for (; i < fx->ref.n; i++) {
                    const ref_event *e = &fx->ref.ev[i];
                    if (e->ts == t && !seen[i] && !strcmp(e->user, u) &&
                        !strcmp(e->item, item_str(fx->ix, bt.target_item[b])) && !strcmp(e->cat, tcat))
                        break;
                }
                cr_assert(i < fx->ref.n, "positive (%s, %s, %lld) is not an unused log event", u,
                          item_str(fx->ix, bt.target_item[b]), (long long)t);
                seen[i]++;
                positives++;
            } else {
                cr_assert_eq(bt.target_cat[b], vocab_cat(fx->ix->voc[IX_ITEM], bt.target_item[b]));
                negatives++;
            }
            if (c->dien_negatives)
                for (size_t j = 0; j < bt.hist_len[b]; j++)
                    cr_assert_eq(bt.hist_neg_cat[b * S + j],
                                 vocab_cat(fx->ix->voc[IX_ITEM], bt.hist_neg_item[b * S + j]));
        }
    }
    cr_assert_eq(negatives, positives * c->negatives, "%zu negatives for %zu positives", negatives, positives);
    cr_assert_eq(sample_source_positives(s), positives);
    free(before);
    free(hard);
    sample_source_free(s);
    return positives;
}

Test(samples, every_sample_equals_the_brute_force)
{
    fixture fx;
    setup(&fx, 3000);
    int64_t split = T0 + SPAN * 3 / 4;
    for (int mode = 0; mode < 8; mode++)
        for (int sp = 0; sp < 2; sp++) {
            sample_config c;
            sample_config_default(&c);
            c.split = sp ? SAMPLES_TEST : SAMPLES_TRAIN;
            c.test_from = split;
            c.batch = 37;
            c.short_len = 12;
            c.long_mode = (long_mode)(mode % 3);
            if (mode == 3) c.train_from = split - SPAN / 3; /* a training window: only its positives */
            c.long_before_short = mode >= 4 && mode != 6;     /* modes 4, 5: hard, full lists before the window */
            if (mode >= 4) c.long_mode = mode == 4 ? LONG_HARD : mode == 5 ? LONG_FULL : LONG_ALL; /* 6, 7: MIMN's */
            c.long_k = 7;
            c.long_max = 40;
            c.negatives = 2;
            c.user_cap = 0;
            c.window_users = 4;
            c.dien_negatives = mode == 1;
            c.neg = mode == 2 ? NEG_UNIFORM : NEG_POPULARITY;
            size_t *seen = calloc(fx.ref.n, sizeof *seen), want = 0;
            size_t got = check_pass(&fx, &c, seen);
            for (size_t i = 0; i < fx.ref.n; i++) {
                int in = sp ? fx.ref.ev[i].ts >= split : fx.ref.ev[i].ts < split && fx.ref.ev[i].ts >= c.train_from;
                want += (size_t)in;
                cr_assert_eq(seen[i], (size_t)in, "log line %zu: a positive %zu times, want %d", i + 1, seen[i], in);
            }
            cr_assert_eq(got, want);
            free(seen);
        }
    teardown(&fx);
}

Test(samples, cap_determinism_and_counts)
{
    fixture fx;
    setup(&fx, 2000);
    int64_t split = T0 + SPAN / 2;
    sample_config c;
    sample_config_default(&c);
    c.test_from = split;
    c.batch = 16;
    c.user_cap = 3;
    c.long_mode = LONG_HARD;
    size_t *seen = calloc(fx.ref.n, sizeof *seen);
    check_pass(&fx, &c, seen);
    /* at most 3 positives per user */
    for (size_t i = 0; i < fx.ref.n; i++) {
        size_t per_user = 0;
        for (size_t j = 0; j < fx.ref.n; j++) per_user += seen[j] && !strcmp(fx.ref.ev[j].user, fx.ref.ev[i].user);
        cr_assert(per_user <= 3, "user %s: %zu positives", fx.ref.ev[i].user, per_user);
    }
    free(seen);
    /* the same seed: the same batches; another seed: another order */
    char err[512];
    sample_source *a, *b, *d;
    cr_assert_eq(sample_source_open(&a, fx.ix, &c, err, sizeof err), 0);
    cr_assert_eq(sample_source_open(&b, fx.ix, &c, err, sizeof err), 0);
    c.seed = 99;
    cr_assert_eq(sample_source_open(&d, fx.ix, &c, err, sizeof err), 0);
    int differs = 0;
    for (;;) {
        model_batch x, y, z;
        cr_assert_eq(sample_source_next(a, &x, NULL, err, sizeof err), 0);
        cr_assert_eq(sample_source_next(b, &y, NULL, err, sizeof err), 0);
        cr_assert_eq(sample_source_next(d, &z, NULL, err, sizeof err), 0);
        cr_assert_eq(x.b, y.b);
        if (!x.b) break;
        cr_assert(!memcmp(x.target_item, y.target_item, x.b * 4) && !memcmp(x.now, y.now, x.b * 8) &&
                  !memcmp(x.hist_item, y.hist_item, x.b * x.s * 4) && !memcmp(x.label, y.label, x.b * 4));
        differs |= z.b != x.b || memcmp(x.target_item, z.target_item, x.b * 4) != 0;
    }
    cr_expect(differs, "another seed gave the same samples");
    /* item counts: events before the split, per item */
    const uint32_t *cnt = sample_source_item_counts(a);
    for (uint32_t it = 0; it < sample_source_items(a); it++) {
        uint32_t want = 0;
        for (size_t i = 0; i < fx.ref.n; i++)
            want += fx.ref.ev[i].ts < split && !strcmp(fx.ref.ev[i].item, item_str(fx.ix, it));
        cr_assert_eq(cnt[it], want, "item %s: count %u, want %u", item_str(fx.ix, it), cnt[it], want);
    }
    sample_source_free(a);
    sample_source_free(b);
    sample_source_free(d);
    teardown(&fx);
}
