/*
 * recency_input.h: the time since the user's newest behavior, embedded, as an
 * input of SIM's head (lsim's addition to the time info; private).
 *
 *   delta = now - ts(newest short-term behavior)        (seconds)
 *   r = rec_emb(esu_time_bucket(delta))                 (d_time), or 0 without history
 *
 * The ESU's time embedding (esu_attention.h) tells how long ago each behavior
 * it attends to happened; it cannot tell whether the user is active right now
 * in another category, which is what a session is: with r beside U_lt the
 * head can tell "in a session, elsewhere" from "idle". The buckets are the
 * ESU's. Parameter: esu.recency (n_buckets, d_time).
 */
#ifndef LSIM_RECENCY_INPUT_H
#define LSIM_RECENCY_INPUT_H

#include "models/arena.h"
#include "models/batch.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct recency_input {
    size_t d, n_buckets;
    const float *emb;
    float *gemb;
    uint32_t *bucket; /* (B) the last forward's buckets; UINT32_MAX for a sample without history */
    size_t b;
} recency_input;

int recency_input_register(param_list *p, size_t d, size_t n_buckets);
void recency_input_bind(recency_input *r, size_t d, size_t n_buckets, const param_set *p, const param_set *g);
void recency_input_carve(recency_input *r, arena *a, size_t max_b);

// out (B, ld) rows of width >= d, the first d columns written; the batch's hist_len, hist_ts (B, S), now (B)
void recency_input_forward(recency_input *r, float *out, size_t ld, const model_batch *bt);
// dout (B, ld): adds its first d columns into the rows of esu.recency's gradient
void recency_input_backward(recency_input *r, const float *dout, size_t ld);

#endif
