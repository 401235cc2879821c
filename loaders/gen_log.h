/*
 * gen_log.h: the synthetic behavior-log generator behind `lsim gen log` (private).
 *
 * Writes a Taobao-format CSV (user,item,category,type,timestamp) whose shape
 * is that of real e-commerce logs, from an explicit generative model that
 * docs/GENERATOR.md writes down: Zipf item popularity, items in categories,
 * heavy-tailed sequence lengths up to max_len, sessions separated by more
 * than 30 minutes, long-lived category interests that come back after long
 * gaps, and short-term drift. The same params (seed included) give the same
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
    uint32_t items;       /* catalog size; 0 = derived from users (see the docs) */
    uint32_t categories;  /* 0 = derived from items */
    uint32_t min_len;     /* shortest sequence */
    uint32_t max_len;     /* longest sequence; user 1 always has exactly max_len events */
    double len_alpha;     /* Pareto tail exponent of sequence lengths */
    uint32_t days;        /* span of the log, ending at end_ts */
    int64_t end_ts;       /* unix seconds of the log's end (exclusive) */
} gen_log_params;

/* Defaults: seed 1, 1000 users, min_len 20, max_len 54000, alpha 1.2,
 * 180 days ending 2017-12-04 00:00:00 UTC (the Tianchi file's end). */
void gen_log_params_default(gen_log_params *p);

/* Summary of what was written. */
typedef struct gen_log_summary {
    uint64_t events, users, items_used, categories_used;
    uint32_t longest;
} gen_log_summary;

/* Writes the log to `out`. Returns 0, LSIM_E_INVAL for bad params (message
 * in err), LSIM_E_IO on a write error, LSIM_E_NOMEM. */
int gen_log_write(FILE *out, const gen_log_params *p, gen_log_summary *summary, char *err,
                  size_t errlen);

/* Expected number of events per user under p (for sizing a log). */
double gen_log_expected_len(const gen_log_params *p);

#endif
