/*
 * truth.h: the true click probability of test samples drawn from a log that
 * `lsim gen log` wrote (private).
 *
 * The generator knows p(item | user's state before t) (gen_truth_prob); a
 * test sample is the logged event (label 1) or one of N items drawn from the
 * negative distribution n(i) (label 0) at the same user and time
 * (train/samples.h), so the Bayes-optimal probability that a sample with
 * item i is the positive is
 *     P(y = 1 | i) = p(i | state) / (p(i | state) + N n(i)),
 * n(i) = count(i) / total (popularity: the items' events before test_from)
 * or 1 / n_items (uniform). Ranking samples by it gives the best AUC any
 * model can reach on them in expectation. evaluate.c applies the formula;
 * this module gives p(i | state) for the index's dense ids.
 */
#ifndef LSIM_TRUTH_H
#define LSIM_TRUTH_H

#include "lsim.h"

#include <stddef.h>
#include <stdint.h>

typedef struct truth_ctx truth_ctx;

/* Reads the truth file (loaders/gen_truth_file.h) and prepares the replay.
 * The index must have been built from that log: raw user and item ids are
 * the generator's decimal ids. */
int truth_open(truth_ctx **out, lsim_index *ix, const char *path, char *err, size_t errlen);
void truth_free(truth_ctx *t);

/* p(item | the state of user before t), dense index ids. An id that is not
 * one of the generator's is LSIM_E_FORMAT with a message in err. */
int truth_prob(truth_ctx *t, uint32_t user, uint32_t item, int64_t ts, double *p, char *err, size_t errlen);

#endif
