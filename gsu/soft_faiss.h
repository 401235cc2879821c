/*
 * soft_faiss.h: one request's soft search through FAISS (private): the
 * user's GSU vectors in a FAISS IndexFlatIP (exact inner-product search,
 * through FAISS's C API), every candidate's query searched at once for a
 * shortlist of K + slack, then the shortlist ranked by gsu/soft_score.h's
 * exact scores and soft_gsu_topk's order (ties to the more recent).
 *
 * The result equals gsu/soft_select.h's brute force exactly: FAISS's scores
 * differ from the exact ones by at most eps (a bound from the vectors'
 * norms), so when the K-th exact score beats the shortlist's last FAISS
 * score by more than eps no row outside the shortlist can enter the top K;
 * otherwise (near-ties at the boundary, such as an item repeated more often
 * than the slack) that candidate is searched by brute force. `fallbacks`
 * counts those.
 *
 * FAISS allocates inside its search; this path is not allocation-free.
 */
#ifndef LSIM_SOFT_FAISS_H
#define LSIM_SOFT_FAISS_H

#include "gsu/soft_select.h"

#include <stddef.h>
#include <stdint.h>

typedef struct soft_faiss soft_faiss;

/* For sequences of up to max_n vectors of width d, batches of up to max_b
 * candidates, K = k. */
int soft_faiss_new(soft_faiss **out, size_t max_n, size_t d, size_t max_b, size_t k, char *err, size_t errlen);
void soft_faiss_free(soft_faiss *f);

/* As soft_select_topk (rows[b k ..], cnt[b]); brute is the fallback's
 * scratch (carved for max_n, d, k). Returns 0 or LSIM_E_SEARCH with FAISS's
 * message in err. */
int soft_faiss_topk(soft_faiss *f, soft_select *brute, const float *keys, size_t n, const float *queries, size_t nb,
                    uint32_t *rows, uint32_t *cnt, char *err, size_t errlen);

/* The pieces, for callers that rank the shortlist themselves
 * (gsu/soft_request.c): search all candidates for their shortlists of
 * min(n, K + slack); then, per candidate b, the shortlist (as u32 ids, valid
 * until the next call), the last shortlisted FAISS score, and the bound on
 * |FAISS score - exact score| for its query. */
int soft_faiss_search(soft_faiss *f, const float *keys, size_t n, const float *queries, size_t nb, char *err,
                      size_t errlen);
size_t soft_faiss_shortlist(soft_faiss *f, size_t b, const uint32_t **ids, float *last);
double soft_faiss_eps(const soft_faiss *f, const float *q);
void soft_faiss_count_fallback(soft_faiss *f);

/* Candidates that took the brute-force fallback since the handle was made. */
uint64_t soft_faiss_fallbacks(const soft_faiss *f);

#endif
