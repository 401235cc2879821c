/*
 * soft_search.h: SIM's soft-search General Search Unit, the learned side
 * (private): relevance scores, top-K selection, and the auxiliary CTR head
 * that trains them (SIM paper, section 3.1).
 *
 *   r_i = (W_b e_i) . (W_a e_a) [+ beta[bucket_i]]    every long-term behavior i
 *   top-K: the K behaviors of highest r (ties: the more recent first),
 *          handed to the ESU in time order; no gradient flows through the choice
 *   auxiliary task: U_r = sum_i r_i e_i (the paper's), or with softmax pooling
 *          U_r = sum_i softmax_i(r) e_i (lsim's default); logit_gsu = head([U_r, e_a]);
 *          Loss_GSU = BCE(logit_gsu, label); total loss = alpha Loss_GSU + beta Loss_ESU
 * Why softmax pooling: the paper's sum lets the head use r with either sign,
 * so nothing makes "high r" mean "relevant", and top-K then keeps whatever r
 * ranks highest: on lsim's generated logs a GSU trained so picked 10% of its
 * K from the target's category where 87% were there to pick. Softmax weights
 * rise with r, so the head can only attend through high r: the behaviors the
 * auxiliary task attends to are the ones top-K keeps.
 * Parameters: gsu.wa (d, E), gsu.wb (d, E), and the auxiliary head under
 * "gsu.mlp" (models/mlp_head.h, input 2E). sim_init starts W_b equal to W_a
 * (random): r_i = e_i' W' W e_a with E[W' W] proportional to I, so the search
 * starts as a similarity of the shared embeddings, the same item and then the
 * same category first, instead of a random bilinear form; on the generated
 * logs SIM soft + time info gained about 0.01 AUC (docs/BENCHMARKS.md).
 * Recency bias (lsim's addition, with time info; parameter gsu.time_bias
 * (n_buckets)): beta[bucket_i], bucket_i = the ESU's time bucket of the
 * behavior's age at the request (esu/esu_attention.h), joins r_i, so the search
 * can learn to prefer recent behaviors; it starts at 0 (the similarity alone).
 * Without it the top K of a category with more than K behaviors is chosen by
 * item similarity alone, and the newest behavior, which tells whether a session
 * in the target's category is on, is often left out. At inference the bias is
 * one more column of the vectors: key [W_b e_i, beta[bucket_i]], query
 * [W_a e_a, 1] (width soft_gsu_width), so the scores, FAISS's included, stay
 * inner products, and soft_score's sums give fl(q.k + beta) to the bit.
 * Serving (issue on the engine) precomputes W_b e_i per item and runs the
 * maximum-inner-product search through FAISS; the scores are the same.
 */
#ifndef LSIM_SOFT_SEARCH_H
#define LSIM_SOFT_SEARCH_H

#include "models/arena.h"
#include "models/mlp_head.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct soft_gsu {
    size_t e, d, d_item; /* d_item: the item part of e (the rest is the category's) */
    size_t nt;           /* time buckets of the recency bias; 0: none */
    int softmax;         /* U_r pools with softmax(r), else with r (the paper's) */
    const float *wa, *wb, *tb;
    float *gwa, *gwb, *gtb;
    mlp_head aux;
    /* the last forward */
    const float *ea, *el;
    const uint32_t *off, *bucket;
    size_t b, r;
    float *kt; /* gsu/soft_score.h's scratch */
    float *q, *k, *score, *w, *ur, *aux_in, *aux_logit, *dlogit, *daux_in, *dscore, *dq, *dk;
} soft_gsu;

/* nt: time buckets of the recency bias (0: none). */
int soft_gsu_register(param_list *p, param_list *buf, size_t e, size_t d, size_t h1, size_t h2, size_t nt);
void soft_gsu_bind(soft_gsu *g, size_t e, size_t d_item, size_t d, size_t h1, size_t h2, size_t nt, float momentum,
                   int softmax, const param_set *p, const param_set *gr, const param_set *buf);
void soft_gsu_carve(soft_gsu *g, arena *a, size_t max_b, size_t max_rows);

/* The width of the inference vectors: d, plus the recency bias's column. */
size_t soft_gsu_width(size_t d, size_t nt);

/* Scores the packed behaviors el (R, E) of each sample against its target
 * ea (B, E): score (R). bucket (R): each row's time bucket (read only with
 * the recency bias; the array must outlive the backward). With labels, also
 * runs the auxiliary head and returns Loss_GSU (else 0). */
float soft_gsu_forward(soft_gsu *g, float *score, const float *ea, const float *el, const uint32_t *off, size_t b,
                       const uint32_t *bucket, const float *label, int train);
/* Inference scores (no backward follows), through gsu/soft_score.h so that
 * a behavior's score does not depend on how the samples are batched:
 *   soft_gsu_score_infer   each sample b against its own packed rows
 *                          el[off[b] .. off[b + 1]) (lsim eval): score (R);
 *   soft_gsu_score_shared  all B samples against the same sequence el (N, E),
 *                          as one request's candidates (lsim_score): score
 *                          (B, N) row-major, sample b's rows at b N .. b N + N - 1.
 * bucket: each row's time bucket, (R) or (N) (read only with the recency bias;
 * shared: every sample at the same request time).
 * The same (behavior, target) pair gets the same bits from both; equal to
 * soft_gsu_forward's scores up to float rounding. */
void soft_gsu_score_infer(soft_gsu *g, float *score, const float *ea, const float *el, const uint32_t *off, size_t b,
                          const uint32_t *bucket);
void soft_gsu_score_shared(soft_gsu *g, float *score, const float *ea, const float *el, size_t n, size_t b,
                           const uint32_t *bucket);

/* Backward of alpha * Loss_GSU: dea (B, E) +=, del (R, E) +=. */
void soft_gsu_backward(soft_gsu *g, float *dea, float *del, const float *label, float alpha);

/* For each sample, its k best rows by score (ties: the later row, the more
 * recent behavior), written in row (time) order into rows[], with sel_off
 * (B + 1) the offsets. Returns the number of rows selected. scratch holds
 * k entries. Rows are numbered below 2^32. Thread-safe; O(rows log k). */
size_t soft_gsu_topk(uint32_t *sel_off, uint32_t *rows, uint64_t *scratch, const float *score, const uint32_t *off,
                     size_t b, size_t k);

/* A row's rank as one integer: higher is a higher score, or an equal score
 * and a higher row. Scores are never NaN; -0 ranks as +0. */
uint64_t soft_rank_key(float score, uint32_t row);

/* Restores the min-heap of rank keys h[0..n) (the lowest at the root) below i. */
void soft_heap_sift(uint64_t *h, size_t n, size_t i);

/* Sorts a[0..n) ascending without allocating. */
void soft_sort_u32(uint32_t *a, size_t n);

/* The same ranking over m (score, id) pairs given in any order: the ids of
 * the k best (ties: the higher id) into out, ascending; returns min(k, m).
 * scratch holds k entries. */
size_t soft_gsu_topk_ids(uint32_t *out, uint64_t *scratch, const float *score, const uint32_t *ids, size_t m,
                         size_t k);

#endif
