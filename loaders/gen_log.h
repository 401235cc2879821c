/*
 * gen_log.h: the synthetic behavior-log generator behind `lsim gen log` (private).
 *
 * Writes a Taobao-format CSV (user,item,category,type,timestamp) whose shape
 * is that of real e-commerce logs, from an explicit generative model that
 * docs/GENERATOR.md writes down: Zipf item popularity, items in categories,
 * heavy-tailed sequence lengths up to max_len, sessions separated by more
 * than 30 minutes that tend to keep one category, and long-lived category
 * and item preferences that reinforce themselves (reinforced urns over the
 * user's own history, so that the next item's distribution is a function of
 * the history and the time alone). The same params (seed included) give the same
 * bytes, on any machine.
 *
 * Output order: user by user (user ids 1..users), each user's events in
 * time order, as the Tianchi file is laid out.
 */
#ifndef LSIM_GEN_LOG_H
#define LSIM_GEN_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef struct gen_log_params {
    uint64_t seed;
    uint32_t users;       /* number of users */
    uint32_t items;       /* catalog size, <= 4,999,999; 0 = derived:
                             min(4999999, max(1000, 20 * users, 5 * categories)) */
    uint32_t categories;  /* <= items; 0 = derived: min(items, max(200, items / 440)) */
    uint32_t min_len;     /* shortest sequence, >= 1 */
    uint32_t max_len;     /* longest sequence, <= 10,000,000; user 1 always has exactly
                             max_len events */
    double len_alpha;     /* Pareto tail exponent of sequence lengths, finite, > 0 */
    uint32_t days;        /* span of the log, ending at end_ts, >= 1 */
    int64_t end_ts;       /* unix seconds of the log's end (exclusive); the window
                             [end_ts - days*86400, end_ts) must lie in [0, 4102444800] */
    /* The behavior model (docs/GENERATOR.md, "The generative process"): */
    uint32_t theme_size;  /* G: categories per theme (contiguous popularity ranks), >= 1; 1 = no themes */
    double theme_conc;    /* a: concentration of a user's theme urn, in (0, 1e9] */
    double cat_conc;      /* b: concentration of the category-within-theme urn, in (0, 1e9]
                             (no effect when theme_size is 1) */
    double item_conc;     /* beta: concentration of the item-within-category urn, in (0, 1e9] */
    double sess_stay;     /* s: a session's later event keeps the previous event's category, in [0, 1] */
    double sess_mean;     /* mean session size (at least; heavy users get longer ones), in [1, 1e6] */
    double carry;         /* h: a session's first event keeps the previous event's category with
                             probability h exp(-gap / carry_days); in [0, 1] */
    double carry_days;    /* tau of the carry-over, in days; in (0, 1e6] */
} gen_log_params;

/* Defaults: seed 1, 1000 users, items and categories derived, min_len 100,
 * max_len 54000, alpha 1.1 (mean length about 570: a 10M-event log is about
 * 17,600 users), 180 days ending 2017-12-04 00:00:00 UTC (the Tianchi file's
 * end); theme_size 1, theme_conc 5, cat_conc 2, item_conc 20, sess_stay 1,
 * sess_mean 6, carry 0.3, carry_days 1. */
void gen_log_params_default(gen_log_params *p);

/* Summary of what was written. */
typedef struct gen_log_summary {
    uint64_t events, users, items_used, categories_used;
    uint32_t longest;
} gen_log_summary;

/* Writes the log to `out` (through a 1 MiB buffer, then fflush(out)); does
 * not close it. Memory: the catalog (about 4 bytes per item) plus one
 * user's workspace (about 14 bytes per event of max_len), never the whole log.
 * Returns 0, LSIM_E_INVAL for bad params (message in err, naming the field),
 * LSIM_E_IO on a write error (what was written before stays written),
 * LSIM_E_NOMEM. summary may be NULL; it is filled only on success. */
int gen_log_write(FILE *out, const gen_log_params *p, gen_log_summary *summary, char *err,
                  size_t errlen);

/* Expected number of events per user under p (for sizing a log): the mean
 * of min(max_len, floor(min_len * U^(-1/alpha))), i.e.
 * sum_{k=1..max_len} min(1, (min_len/k)^alpha). User 1's pinned max_len is
 * not included. Returns 0 if min_len, max_len or len_alpha is invalid. */
double gen_log_expected_len(const gen_log_params *p);

/* items and categories as derived from the other fields (docs/GENERATOR.md) */
void gen_log_derive(gen_log_params *p);
/* 0, or LSIM_E_INVAL with a message naming the bad field */
int gen_log_check(const gen_log_params *p, char *err, size_t errlen);

/* ---- the truth: what the generator knows ----
 * p(item | the state of user `user` just before time ts) under the
 * generative model (docs/GENERATOR.md, "The next-item distribution"): the
 * user is replayed from (seed, user), its state taken before its first event
 * at or after ts, and the formula evaluated for the item (a raw id). An item
 * not in the catalog has probability 0. LSIM_E_NOTFOUND: no such user, or
 * no event of the user at or after ts. One handle per thread; the last
 * user's replay is kept, so queries grouped by user are cheap. */
typedef struct gen_truth gen_truth;
int gen_truth_new(gen_truth **out, const gen_log_params *p, char *err, size_t errlen);
void gen_truth_free(gen_truth *t);
int gen_truth_prob(gen_truth *t, uint32_t user, int64_t ts, uint32_t item_raw, double *prob);
/* The catalog's raw item ids (all items, used or not). */
size_t gen_truth_catalog(const gen_truth *t, const uint32_t **item_raw);

#endif
