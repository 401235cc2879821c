/*
 * replay_run.c: see replay_run.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "tools/replay_run.h"

#include "storage/error_detail.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct shared {
    lsim_engine *e;
    const request_set *rs;
    const replay_opts *o;
    replay_result *res;
    const size_t *first;     /* (requests) each request's first candidate */
    size_t lo, hi;           /* the requests of this phase */
    int timed;
    struct timespec start;   /* open loop: when request lo is due */
    atomic_size_t next;
    atomic_size_t done;
    atomic_size_t errors;
    pthread_mutex_t lock;    /* first_error */
} shared;

typedef struct worker {
    shared *sh;
    int id;
    lsim_ctx *ctx;
    lsim_candidate *cand;
    float *scores;
    double t_first, t_last;  /* seconds after sh->start: this worker's first start and last end */
} worker;

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + 1e-9 * (double)(b->tv_nsec - a->tv_nsec);
}

static void add_seconds(struct timespec *t, double s)
{
    double whole = floor(s);
    t->tv_sec += (time_t)whole;
    t->tv_nsec += (long)((s - whole) * 1e9);
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static void *work(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    const replay_opts *o = sh->o;
    struct timespec last_progress = sh->start;
    w->t_first = INFINITY;
    w->t_last = 0;
    for (;;) {
        size_t i = atomic_fetch_add(&sh->next, 1) + sh->lo;
        if (i >= sh->hi) break;
        request_view v;
        request_set_get(sh->rs, i, &v);
        request_set_fill(sh->rs, i, w->cand);
        struct timespec due = sh->start, t0, t1;
        if (sh->timed && o->rate > 0) { /* open loop: wait until due */
            add_seconds(&due, (double)(i - sh->lo) / o->rate);
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = lsim_score(w->ctx, v.user, v.user_len, v.time, w->cand, v.n, w->scores);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (!sh->timed) {
            atomic_fetch_add(&sh->done, 1);
            continue;
        }
        float *out = sh->res->scores + sh->first[i];
        if (rc) {
            for (size_t k = 0; k < v.n; k++) out[k] = NAN;
            if (atomic_fetch_add(&sh->errors, 1) == 0) {
                pthread_mutex_lock(&sh->lock);
                snprintf(sh->res->first_error, sizeof sh->res->first_error, "request %s (line %llu): %s", v.id,
                         (unsigned long long)v.line, lsim_ctx_errmsg(w->ctx));
                pthread_mutex_unlock(&sh->lock);
            }
        } else {
            memcpy(out, w->scores, v.n * sizeof *out);
        }
        /* open loop: from when it was due (a backlog is latency); closed: the call */
        const struct timespec *from = o->rate > 0 ? &due : &t0;
        sh->res->latency_ms[i] = 1e3 * since(from, &t1);
        double s0 = since(&sh->start, o->rate > 0 ? &due : &t0), s1 = since(&sh->start, &t1);
        if (s0 < w->t_first) w->t_first = s0;
        if (s1 > w->t_last) w->t_last = s1;
        size_t d = atomic_fetch_add(&sh->done, 1) + 1;
        if (w->id == 0 && o->progress && since(&last_progress, &t1) > 0.1) {
            last_progress = t1;
            o->progress(o->ctx, d, sh->hi - sh->lo);
        }
    }
    return NULL;
}

/* Runs requests [lo, hi) on the workers. */
static int phase(shared *sh, worker *w, int threads, size_t lo, size_t hi, int timed, char *err, size_t errlen)
{
    sh->lo = lo;
    sh->hi = hi;
    sh->timed = timed;
    atomic_store(&sh->next, 0);
    atomic_store(&sh->done, 0);
    clock_gettime(CLOCK_MONOTONIC, &sh->start);
    if (timed && sh->o->rate > 0) add_seconds(&sh->start, 0.01); /* let every thread get ready */
    pthread_t *tid = malloc((size_t)threads * sizeof *tid);
    if (!tid) return err_set(err, errlen, LSIM_E_NOMEM, "replay: out of memory");
    int started = 0, rc = 0;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, work, &w[started])) {
            rc = err_set(err, errlen, LSIM_E_NOMEM, "replay: cannot start thread %d", started);
            break;
        }
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    free(tid);
    return rc;
}

int replay_run(lsim_engine *e, const request_set *rs, const replay_opts *o, replay_result *res, char *err,
               size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (o->threads < 1 || o->threads > 1024 || !(o->rate >= 0) || !isfinite(o->rate))
        return err_set(err, errlen, LSIM_E_INVAL, "replay: threads must be in [1, 1024] and the rate >= 0");
    size_t nr = request_set_size(rs), nc = request_set_candidates(rs), mx = request_set_max_n(rs);
    res->latency_ms = malloc((nr ? nr : 1) * sizeof *res->latency_ms);
    res->scores = malloc((nc ? nc : 1) * sizeof *res->scores);
    size_t *first = malloc((nr ? nr : 1) * sizeof *first);
    worker *w = calloc((size_t)o->threads, sizeof *w);
    shared sh = {.e = e, .rs = rs, .o = o, .res = res, .first = first};
    int rc = res->latency_ms && res->scores && first && w ? 0 : err_set(err, errlen, LSIM_E_NOMEM, "replay: out of memory");
    for (size_t i = 0, k = 0; !rc && i < nr; i++) {
        request_view v;
        request_set_get(rs, i, &v);
        first[i] = k;
        k += v.n;
    }
    for (int t = 0; !rc && t < o->threads; t++) {
        w[t] = (worker){.sh = &sh, .id = t};
        w[t].cand = malloc((mx ? mx : 1) * sizeof *w[t].cand);
        w[t].scores = malloc((mx ? mx : 1) * sizeof *w[t].scores);
        if (!w[t].cand || !w[t].scores) rc = err_set(err, errlen, LSIM_E_NOMEM, "replay: out of memory");
        else if ((rc = lsim_ctx_new(e, &w[t].ctx))) err_set(err, errlen, rc, "replay: cannot make a context");
    }
    pthread_mutex_init(&sh.lock, NULL);
    atomic_init(&sh.errors, 0);
    size_t warm = o->warmup < nr ? o->warmup : nr;
    if (!rc && warm) rc = phase(&sh, w, o->threads, 0, warm, 0, err, errlen);
    if (!rc && o->measuring) o->measuring(o->ctx, 1);
    if (!rc) rc = phase(&sh, w, o->threads, 0, nr, 1, err, errlen);
    if (!rc && o->measuring) o->measuring(o->ctx, 0);
    if (!rc) {
        double a = INFINITY, b = 0;
        for (int t = 0; t < o->threads; t++) {
            if (w[t].t_first < a) a = w[t].t_first;
            if (w[t].t_last > b) b = w[t].t_last;
        }
        res->wall_s = b > a ? b - a : 0;
        res->errors = atomic_load(&sh.errors);
    }
    pthread_mutex_destroy(&sh.lock);
    for (int t = 0; w && t < o->threads; t++) {
        lsim_ctx_free(w[t].ctx);
        free(w[t].cand);
        free(w[t].scores);
    }
    free(w);
    free(first);
    if (rc) replay_result_free(res);
    return rc;
}

void replay_result_free(replay_result *res)
{
    free(res->latency_ms);
    free(res->scores);
    res->latency_ms = NULL;
    res->scores = NULL;
}
