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
 *
 * With the category part (`cat`), a second embedding follows r:
 *
 *   delta_c = now - ts(newest short-term behavior in the target's category)
 *   r_c = rec_cat(esu_time_bucket(delta_c)), or rec_cat[n_buckets] when the
 *         short-term window holds none of that category (0 without history)
 *
 * r and r_c together say whether the user's newest behavior is in the
 * target's category, which soft search's top K, chosen by similarity, may
 * leave out and hard search never does. Parameter: esu.recency_cat
 * (n_buckets + 1, d_time).
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
    int cat; /* the category part r_c follows r */
    const float *emb, *emb_cat;
    float *gemb, *gemb_cat;
    uint32_t *bucket;     /* (B) the last forward's buckets; UINT32_MAX for a sample without history */
    uint32_t *bucket_cat; /* (B) the category part's (n_buckets: none of the category), with cat */
    size_t b;
} recency_input;

int recency_input_register(param_list *p, size_t d, size_t n_buckets, int cat);
void recency_input_bind(recency_input *r, size_t d, size_t n_buckets, int cat, const param_set *p,
                        const param_set *g);
void recency_input_carve(recency_input *r, arena *a, size_t max_b);

/* The width written: d, or 2 d with the category part. */
size_t recency_input_width(const recency_input *r);

// out (B, ld) rows of width >= recency_input_width, those columns written; the batch's hist_len, hist_ts (B, S),
// now (B), and with cat hist_cat (B, S) and target_cat (B)
void recency_input_forward(recency_input *r, float *out, size_t ld, const model_batch *bt);
// dout (B, ld): adds its first recency_input_width columns into the rows of the tables' gradients
void recency_input_backward(recency_input *r, const float *dout, size_t ld);

#endif
