/*
 * request_gen.h: ranking requests made from an index's held-out window, for
 * `lsim gen requests` and replay (private).
 *
 * A request is a (user, time) at which the user has events in [from, to):
 * its candidates are the items of those events (label 1: what the user took)
 * and `negatives` other items (label 0), distinct, drawn by popularity (each
 * item's event count before `from`; items never seen before `from` are not
 * drawn) or uniformly from the item vocabulary, never one of the request's
 * positives; the candidates are shuffled. A ranking stage scores a few
 * hundred candidates of which the user takes one: the default is 299
 * negatives. With max_requests, a uniform random subset of that many
 * requests (selection sampling: the order is kept). Requests come user by
 * user (dense order), each user's in time order. Deterministic for a seed.
 *
 * Nothing of the window is used to build the candidates but the positives'
 * items: popularity counts stop at `from`.
 */
#ifndef LSIM_REQUEST_GEN_H
#define LSIM_REQUEST_GEN_H

#include "lsim.h"
#include "train/samples.h"

#include <stddef.h>
#include <stdint.h>

typedef struct request_gen_config {
    int64_t from, to;      /* the window [from, to) */
    uint32_t negatives;    /* per request (default 299) */
    neg_mode neg;          /* default NEG_POPULARITY */
    uint64_t max_requests; /* 0: every request of the window */
    uint64_t seed;         /* default 1 */
} request_gen_config;

void request_gen_config_default(request_gen_config *c);

typedef struct request_gen request_gen;

/* One pass over the index: popularity counts and the number of requests. */
int request_gen_open(request_gen **out, lsim_index *ix, const request_gen_config *c, char *err, size_t errlen);
void request_gen_free(request_gen *g);
/* Requests in the window (before max_requests applies). */
uint64_t request_gen_window(const request_gen *g);

/* A generated request; pointers valid until the next call. cat[i] is NULL
 * for an item without a category. */
typedef struct gen_request {
    const char *user;
    int64_t time;
    size_t n, positives;
    const char *const *item;
    const char *const *cat;
    const float *label;
} gen_request;

/* 1 and *r filled, 0 after the last request, or a negative LSIM_E_* with err. */
int request_gen_next(request_gen *g, gen_request *r, char *err, size_t errlen);

#endif
