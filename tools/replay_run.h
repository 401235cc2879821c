/*
 * replay_run.h: running a request log through the public API for one
 * checkpoint, timed (tools only; `lsim replay`).
 *
 * Closed loop (rate 0): `threads` threads, each with its own context, take
 * the next request as soon as they finish one; a request's latency is the
 * duration of its lsim_score call. Open loop (rate > 0): request i is due
 * at start + i / rate whatever happened before; a thread waits until the
 * next request is due and its latency is counted from when it was due, so a
 * backlog (the engine slower than the rate) shows as latency instead of
 * being hidden (no coordinated omission). Before either, `warmup` requests
 * (the first ones of the log) are scored and not counted.
 *
 * Scores are written per candidate in the log's order; a request that
 * lsim_score refuses is counted, its first message kept, and its scores
 * left NaN (the metrics leave it out).
 */
#ifndef LSIM_REPLAY_RUN_H
#define LSIM_REPLAY_RUN_H

#include "loaders/request_log.h"
#include "lsim.h"

#include <stddef.h>
#include <stdint.h>

typedef struct replay_opts {
    int threads;          /* >= 1 */
    size_t warmup;        /* requests scored before the measurement */
    double rate;          /* requests per second (open loop); 0: closed loop */
    void (*progress)(void *ctx, size_t done, size_t total); /* from thread 0, about 10 times a second; may be NULL */
    void (*measuring)(void *ctx, int begin); /* right before (1) and after (0) the measured run; may be NULL */
    void *ctx;
} replay_opts;

typedef struct replay_result {
    double wall_s;        /* first request started to last finished (open loop: first due) */
    double *latency_ms;   /* (requests) each request's latency */
    float *scores;        /* (candidates) in the log's order; NaN for a refused request */
    size_t errors;        /* requests lsim_score refused */
    char first_error[512];
} replay_result;

/* Runs rs through engine e. res's arrays are allocated here (free with
 * replay_result_free). Returns 0, or LSIM_E_NOMEM / LSIM_E_INVAL (bad opts)
 * / a context's creation error, with err set. */
int replay_run(lsim_engine *e, const request_set *rs, const replay_opts *o, replay_result *res, char *err,
               size_t errlen);
void replay_result_free(replay_result *res);

#endif
