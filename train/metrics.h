/*
 * metrics.h: ranking quality of scored samples: AUC, GAUC and logloss
 * (private).
 *
 *   AUC      the probability that a random positive scores above a random
 *            negative, ties counting one half (the Mann-Whitney statistic);
 *   GAUC     DIN's group AUC: the per-user AUC averaged with weights equal to
 *            the user's number of samples (impressions), over the users that
 *            have both a positive and a negative sample (the others have no
 *            AUC and are left out, as DIN does);
 *   logloss  the mean binary cross-entropy of the labels under sigmoid(logit),
 *            computed from the logit (log1p(exp(-|z|)) + max(z, 0) - y z), so a
 *            saturated logit costs a finite amount.
 * Scores only need to order the samples: logits or probabilities alike.
 * Labels are 0 or 1.
 */
#ifndef LSIM_METRICS_H
#define LSIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metric_row {
    double score;  /* the ranking score (a logit, a probability) */
    double logit;  /* for logloss; may equal score */
    uint32_t user; /* the group of GAUC */
    float label;   /* 0 or 1 */
} metric_row;

typedef struct metrics {
    double auc, gauc, logloss; /* NaN when undefined (no positive or no negative; no user with both) */
    size_t samples, positives;
    size_t gauc_users;   /* users counted in GAUC */
    size_t gauc_samples; /* their samples (the weight of the average) */
} metrics;

/* Computes all three over rows[0..n). Reorders rows (sorts them by user,
 * then score). Allocates nothing; O(n log n). */
void metrics_compute(metric_row *rows, size_t n, metrics *out);

/* The AUC of rows[0..n) sorted by score ascending; NaN without both classes. */
double metrics_auc_sorted(const metric_row *rows, size_t n);

#endif
