/*
 * soft_request.h: SIM soft search for one request (private): every
 * candidate's top K behaviors of the user's sequence, by one of three modes
 * (lsim.h's lsim_soft_search):
 *
 *   exact   every distinct (item, category) pair of the sequence scored
 *           (gsu/soft_dedup.h), the top K behaviors recovered exactly;
 *   faiss   a FAISS IndexFlatIP shortlist of the pairs (gsu/soft_faiss.h),
 *           ranked exactly, with a brute-force fallback when the shortlist's
 *           boundary is within rounding of the K-th score: the same top K;
 *   approx  the pairs grouped by category, probed best centroid first
 *           (gsu/soft_approx.h), the top K of those scanned.
 *
 * exact and faiss pick, to the bit, the behaviors the model's own search
 * picks for the same sample (esu/sim.c at inference), so lsim_score equals
 * lsim eval. Usage per request: soft_dedup_build(&r->dd, items, cats, n),
 * the caller computes the GSU vector of each of the r->dd.u pairs, then
 * soft_request_topk.
 */
#ifndef LSIM_SOFT_REQUEST_H
#define LSIM_SOFT_REQUEST_H

#include "gsu/soft_approx.h"
#include "gsu/soft_dedup.h"
#include "gsu/soft_faiss.h"
#include "gsu/soft_select.h"

#include <stddef.h>
#include <stdint.h>

typedef enum soft_mode { SOFT_EXACT = 0, SOFT_FAISS = 1, SOFT_APPROX = 2 } soft_mode;

typedef struct soft_request {
    soft_mode mode;
    size_t max_n, d, k;
    soft_dedup dd;
    soft_select ss;     /* the exact scores' scratch */
    soft_approx sa;
    soft_faiss *sf;
    float *gk;          /* (k + 16, d) a shortlist's vectors */
    float *kt;          /* the pairs' vectors transposed once (exact) */
    uint64_t fallbacks; /* faiss: candidates searched by brute force */
    uint64_t scanned;   /* pairs scored, summed over candidates */
} soft_request;

/* Bytes soft_request_init carves from mem. n_slots: categories (approx). */
size_t soft_request_bytes(soft_mode mode, size_t max_n, size_t d, size_t k, size_t n_slots);
int soft_request_init(soft_request *r, void *mem, soft_mode mode, size_t max_n, size_t d, size_t k, size_t max_b,
                      size_t n_slots, float fraction, char *err, size_t errlen);
/* Frees what init allocated beside mem (FAISS's index). */
void soft_request_destroy(soft_request *r);

/* keys (dd.u, d) the pairs' GSU vectors, queries (nb, d): rows[b k ..
 * b k + cnt[b]) get candidate b's behaviors (indices into the sequence given
 * to soft_dedup_build), ascending. LSIM_E_SEARCH from FAISS. */
int soft_request_topk(soft_request *r, const float *keys, const float *queries, size_t nb, uint32_t *rows,
                      uint32_t *cnt, char *err, size_t errlen);

#endif
