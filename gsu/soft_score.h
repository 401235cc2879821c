/*
 * soft_score.h: soft search at inference, reproducible to the bit (private).
 *
 * Serving scores one request's candidates against the user's whole sequence
 * at once; `lsim eval` scores each sample against its own sequence. A GEMM's
 * rounding depends on how its work is blocked, so the two would give the same
 * relevance score in different last bits, and at a near-tie pick different
 * behaviors. Here every score is one fixed sequence of float operations:
 *
 *   key_i   = kI(item_i) + kC(cat_i)   kI = W_b[:, :d_item] e_item,  kC = W_b[:, d_item:] e_cat    (D)
 *   query_b = qI(item_b) + qC(cat_b)   the same split of W_a e_a                                    (D)
 *   r_ib    = (...((key_i[0] query_b[0]) + key_i[1] query_b[1]) + ...) + key_i[D-1] query_b[D-1]
 *
 * each part (kI, kC, ...) a dot product summed in column order. The same
 * (behavior, candidate) pair gets the same score whoever asks, and the top K
 * (gsu/soft_search.h, ties to the more recent) are the same behaviors. The
 * arithmetic is chosen once per process (AVX2+FMA when the CPU has it, else
 * plain C), so scores are reproducible on one machine; across machines they
 * agree to float rounding. Equal to soft_gsu_forward's scores up to rounding.
 */
#ifndef LSIM_SOFT_SCORE_H
#define LSIM_SOFT_SCORE_H

#include <stddef.h>
#include <stdint.h>

/* Rows of scores are computed in blocks of this many behaviors. */
#define SOFT_SCORE_BLOCK 8

/* out (D) = w[:, col0 .. col0 + cols) x, w (D, ld) row-major: each output
 * summed over the columns in order. */
void soft_score_part(float *out, const float *w, size_t ld, size_t col0, size_t cols, const float *x, size_t d);

/* The key (or query) of one behavior (or target) embedded as e = [e_item
 * (d_item), e_cat (E - d_item)] under w (D, E): part(item) + part(cat),
 * each part exactly soft_score_part's, so a caller may tabulate the parts
 * per item and per category and add them: the same bits. */
void soft_score_vector(float *out, const float *w, size_t e, size_t d_item, const float *emb, size_t d);

/* The scratch soft_score_rows needs for n behaviors (floats). */
size_t soft_score_scratch(size_t n, size_t d);

/* score[b n + i] = r_ib for b < nb candidates (queries (nb, D)) and i < n
 * behaviors (keys (n, D)). scratch: soft_score_scratch(n, d) floats. */
void soft_score_rows(float *score, const float *keys, size_t n, const float *queries, size_t nb, size_t d,
                     float *scratch);

/* The same with the keys transposed once (soft_score_transpose into
 * soft_score_t_floats(n, d) floats), for scoring many candidate groups
 * against one sequence: the same bits as soft_score_rows. */
size_t soft_score_t_floats(size_t n, size_t d);
void soft_score_transpose(float *kt, const float *keys, size_t n, size_t d);
/* The same of the keys of rows[0..n), gathered: kt holds keys[rows[i]] as row i. */
void soft_score_transpose_rows(float *kt, const float *keys, const uint32_t *rows, size_t n, size_t d);
void soft_score_rows_t(float *score, const float *kt, size_t n, const float *queries, size_t nb, size_t d);

/* The reference: the same sums, one pair at a time, in plain C. Equal to
 * soft_score_rows to the bit when the CPU lacks AVX2+FMA or when
 * soft_score_allow_simd(0) was called (tests). */
void soft_score_rows_ref(float *score, const float *keys, size_t n, const float *queries, size_t nb, size_t d);

/* Tests: soft_score_allow_simd(0) makes every call take the plain path. */
void soft_score_allow_simd(int on);

#endif
