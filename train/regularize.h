/*
 * regularize.h: DIN's mini-batch aware regularization of the embedding
 * tables (private).
 *
 * DIN (Zhou et al. 2018, eq. 4-5): L2 on an embedding row only where the
 * mini-batch uses it, scaled by how often the feature occurs, so that
 * frequent rows are regularized less per batch and rows a batch does not
 * touch cost nothing:
 *   grad_j += lambda * w_j / n_j     for every row j the batch uses (once per batch),
 * n_j the feature's number of occurrences in the training data (at least 1).
 * Here n_j is the item's (or category's) number of events before the split;
 * the out-of-vocabulary row counts 1.
 */
#ifndef LSIM_REGULARIZE_H
#define LSIM_REGULARIZE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mbar_table {
    float *grad;            /* (vocab + 1, dim) */
    const float *table;     /* (vocab + 1, dim) */
    size_t dim;
    uint32_t vocab;         /* rows vocab (ids >= vocab) is the OOV row */
    const uint32_t *counts; /* (vocab) occurrences */
    uint8_t *mark;          /* (vocab + 1) zeroed scratch; left zeroed */
} mbar_table;

/* Adds the term for the rows used by ids[0..n) (each row once). */
void mbar_add(mbar_table *t, const uint32_t *ids, size_t n, float lambda);

/* The same over several id lists: the lists a batch uses (targets, histories,
 * long-term lists, negatives), each row still once. */
void mbar_add_lists(mbar_table *t, const uint32_t *const *ids, const size_t *n, size_t lists, float lambda);

#endif
