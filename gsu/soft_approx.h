/*
 * soft_approx.h: approximate soft search for one request (private): the
 * index already groups a user's behaviors by category, a ready-made
 * partition. Per request the rows (a request's distinct (item, category)
 * pairs, gsu/soft_dedup.h) are grouped by category, each category's keys
 * transposed once, and each category gets its centroid, the mean of its GSU
 * vectors. (Weighting the mean by the pairs' behaviors was tried: better on
 * one generated log, worse on another; not kept.) Per candidate
 * the categories are probed best centroid first until `fraction` of the rows
 * (and at least K) have been scored, exactly, and the top K of those is
 * kept, ranked as the exact search ranks them. Not exact: a behavior of a
 * category left unprobed is missed however well it scores.
 *
 * Within a category a GSU vector is W_b [e_item, e_cat] = kI(item) + kC(cat)
 * with kC the same for every behavior, so the centroid carries the
 * category's whole share of the score and the rest is the items' spread:
 * probing by centroid keeps most of the exact top K (recall measured by
 * bench/bench_soft_search.py and tests/test_soft_score.c). Allocation-free
 * after soft_approx_carve.
 */
#ifndef LSIM_SOFT_APPROX_H
#define LSIM_SOFT_APPROX_H

#include <stddef.h>
#include <stdint.h>

typedef struct soft_approx {
    size_t max_n, d, k, n_slots;
    float fraction;
    uint32_t *slot;     /* (n_slots) category id -> group + 1 (0: none), reset after each request */
    uint32_t *gcat;     /* (n_slots) the request's categories, in first-seen order */
    uint32_t *goff;     /* (n_slots + 1) group offsets into perm */
    uint32_t *perm;     /* (max_n) rows grouped by category, rows ascending within a group */
    uint32_t *sids;     /* (max_n) the rows scanned for one candidate */
    float *cent;        /* (n_slots, d) centroids */
    float *ct;          /* the centroids transposed (gsu/soft_score.h) */
    float *cscore;      /* (n_slots) one candidate's centroid scores */
    uint32_t *corder;   /* (n_slots) groups: a max-heap by centroid score while probing */
    float *score;       /* (max_n) scanned scores */
    float *kt;          /* the groups' keys transposed, each from a block boundary */
    uint32_t *gpad;     /* (n_slots + 1) each group's first row in kt */
    uint64_t *heap;     /* (k) */
    size_t groups;
} soft_approx;

/* Bytes for soft_approx_carve: sequences up to max_n, categories < n_slots - 1 (others share the last slot). */
size_t soft_approx_bytes(size_t max_n, size_t d, size_t k, size_t n_slots);
void soft_approx_carve(soft_approx *a, void *mem, size_t max_n, size_t d, size_t k, size_t n_slots, float fraction);

/* Groups keys (n, d) by cats (n) and computes the centroids. */
void soft_approx_prepare(soft_approx *a, const float *keys, const uint32_t *cats, size_t n);

/* For one query after prepare: scores the best groups until the budget is
 * reached; *ids and *scores (valid until the next call) get the rows
 * scanned and their exact scores. Returns their number. */
size_t soft_approx_scan(soft_approx *a, const float *q, size_t n, const uint32_t **ids, const float **scores);

/* keys (n, d) and cats (n) of the sequence, one behavior a row, queries
 * (nb, d): as soft_select_topk (rows[b k ..], cnt[b] = min(k, n)). Returns
 * the number of behaviors scored, summed over the candidates. */
uint64_t soft_approx_topk(soft_approx *a, const float *keys, const uint32_t *cats, size_t n, const float *queries,
                          size_t nb, uint32_t *rows, uint32_t *cnt);

#endif
