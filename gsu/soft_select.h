/*
 * soft_select.h: soft search for one request (private): every candidate's
 * top K of the user's sequence by inner product of the GSU vectors, with
 * the scores of gsu/soft_score.h and the ranking of soft_gsu_topk (ties to
 * the more recent), so that the behaviors picked are those the model's own
 * search picks for the same sample in `lsim eval`.
 *
 * The candidates are scored SOFT_SELECT_GROUP at a time against the whole
 * sequence, so the scratch is SOFT_SELECT_GROUP x n scores, not candidates x n.
 */
#ifndef LSIM_SOFT_SELECT_H
#define LSIM_SOFT_SELECT_H

#include <stddef.h>
#include <stdint.h>

#define SOFT_SELECT_GROUP 32

typedef struct soft_select {
    size_t max_n, d, k;
    float *score;   /* (GROUP, max_n) */
    float *kt;      /* soft_score_scratch(max_n, d) */
    uint32_t *off;  /* (GROUP + 1) */
    uint32_t *gsel, *goff; /* (GROUP k), (GROUP + 1) */
    uint64_t *heap; /* (k) */
} soft_select;

/* The bytes soft_select_carve takes from mem (64-byte aligned pieces). */
size_t soft_select_bytes(size_t max_n, size_t d, size_t k);
void soft_select_carve(soft_select *s, void *mem, size_t max_n, size_t d, size_t k);

/* keys (n, d) the sequence's GSU vectors (n <= max_n, n < 2^32 / GROUP),
 * queries (nb, d) the candidates'. For candidate b, rows[b k .. b k + cnt[b])
 * get the picked rows in increasing order (time order), cnt[b] = min(k, n). */
void soft_select_topk(soft_select *s, const float *keys, size_t n, const float *queries, size_t nb, uint32_t *rows,
                      uint32_t *cnt);

#endif
