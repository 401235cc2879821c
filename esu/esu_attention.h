/*
 * esu_attention.h: SIM's Exact Search Unit: multi-head target attention over
 * the K behaviors the GSU selected, with the time from each behavior to the
 * request embedded and concatenated (SIM paper, section 3.2) (private).
 *
 *   delta_j = now - ts_j (seconds; >= 1 since every behavior is before now)
 *   bucket_j = min(n_buckets - 1, floor(log2(1 + delta_j / 60)))   (minutes, log scale)
 *   z_j = [e_j, time_emb(bucket_j)]        (Z = E + d_time), or z_j = e_j without time info
 *   per head i = 1..q:  s_ij = (W_b,i z_j) . (W_a,i e_a),  att_i = softmax_j(s_ij) over the sample's behaviors,
 *                       head_i = sum_j att_ij z_j                                             (Z)
 *   U_lt = [head_1, ..., head_q]                                                              (q Z)
 * As in the paper there are no biases and no 1/sqrt(d) scaling. A sample
 * with no behaviors gets U_lt = 0. The bucketing is lsim's (the paper does
 * not give one): 24 buckets cover one minute to about 30 years.
 * Parameters: esu.wa (q d_head, E), esu.wb (q d_head, Z), esu.time_emb
 * (n_buckets, d_time) when d_time > 0.
 */
#ifndef LSIM_ESU_ATTENTION_H
#define LSIM_ESU_ATTENTION_H

#include "models/arena.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

#define ESU_TIME_BUCKETS 24

typedef struct esu_attention {
    size_t e, d_time, z, heads, d_head, n_buckets;
    const float *wa, *wb, *temb;
    float *gwa, *gwb, *gtemb;
    /* the last forward */
    const float *ea, *el;
    const uint32_t *off;
    size_t b, r;
    uint32_t *bucket; /* (R) */
    float *zz, *q, *k, *att, *datt, *dq, *dk, *dz;
    float *qz; /* (B, q, Z) the inference path's folded queries */
    float *tw; /* (n_buckets, q) its per-bucket time scores, then weights */
    float *hs; /* (2, q) its per-head softmax max and sum */
} esu_attention;

/* The time bucket of a behavior `delta` seconds before the request. */
uint32_t esu_time_bucket(int64_t delta, size_t n_buckets);

int esu_attention_register(param_list *p, size_t e, size_t d_time, size_t heads, size_t d_head, size_t n_buckets);
void esu_attention_bind(esu_attention *u, size_t e, size_t d_time, size_t heads, size_t d_head, size_t n_buckets,
                        const param_set *p, const param_set *g);
void esu_attention_carve(esu_attention *u, arena *a, size_t max_b, size_t max_rows);
static inline size_t esu_attention_width(const esu_attention *u)
{
    return u->heads * u->z;
}

// out (B, q Z); ea (B, E); el (R, E) packed behaviors; ts (R) their times; now (B); off (B + 1)
void esu_attention_forward(esu_attention *u, float *out, const float *ea, const float *el, const int64_t *ts,
                           const int64_t *now, const uint32_t *off, size_t b);
/* The same output at inference, when no backward follows. A score
 * s_ij = (W_b,i z_j) . (W_a,i e_a) is z_j . (W_b,i^T W_a,i e_a): each
 * sample's query is folded through W_b once (q_ij = W_b,i^T W_a,i e_a, Z
 * wide), and no behavior is projected. A (behavior, head) pair then costs
 * Z multiply-adds instead of d_head (Z + 1), and z_j is never copied.
 * Equal to esu_attention_forward up to float rounding (tests/test_esu.c);
 * that is its reference, which the callers take under nn_force_reference(1)
 * (its own small products then run their plain C paths). Fills att
 * as the forward does (the explain call reads it); leaves nothing for
 * esu_attention_backward. */
// Sample i attends over rows row0[i] .. row0[i] + cnt[i] - 1 of el, which samples may share
// (one copy of a list several candidates have); att gets each row's weights from the last
// sample that read it.
// out (B, q Z); ea (B, E); el (R, E) behaviors; ts (R) their times; now (B); row0, cnt (B)
void esu_attention_forward_infer(esu_attention *u, float *out, const float *ea, const float *el, const int64_t *ts,
                                 const int64_t *now, const uint32_t *row0, const uint32_t *cnt, size_t b);
// dea (B, E) +=, del (R, E) +=; dout (B, q Z)
void esu_attention_backward(esu_attention *u, float *dea, float *del, const float *dout);

#endif
