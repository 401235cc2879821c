/*
 * bench_request.c: one request's latency through the public API
 * (lsim_score), the request dumped for the PyTorch reference, and the
 * throughput of N threads scoring concurrently (bench/bench_request.py
 * drives it).
 *
 *   bench_request --index DIR --model CKPT --user U --now TS [--candidates 200]
 *                 [--long-max N] [--runs 200] [--dump FILE]
 *                 [--threads 1,2,4 --seconds S --users N]
 * prints one JSON object:
 *   latency: per-request times of `runs` calls (after 5 warm-up calls), p50/p90/p99/max ms;
 *   dump: the request in dense ids (the user's behaviors before TS, oldest first, the
 *     candidates) and lsim's scores, for the reference to recompute;
 *   threads: for each N, requests/s of N threads, each with its own context, scoring
 *     requests of the first `users` users at TS for S seconds, and whether every score
 *     equalled the one-thread score of the same request, bit for bit.
 */
#include "bench/bench_timing.h"
#include "engine/engine_internal.h"
#include "index/index_internal.h"
#include "lsim.h"

#include <cblas.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define die(m) bench_die("bench_request", m)

typedef struct request {
    char user[32];
    lsim_candidate *cand;
    size_t n;
    float *want; /* one-thread scores */
} request;

static lsim_engine *g_e;
static request *g_req;
static size_t g_nreq;
static int64_t g_now;
static double g_seconds;

typedef struct worker {
    pthread_t t;
    size_t id;
    uint64_t done, wrong, failed;
    double elapsed;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    lsim_ctx *c;
    if (lsim_ctx_new(g_e, &c)) {
        w->failed++;
        return NULL;
    }
    float *s = malloc(1000 * sizeof *s);
    double t0 = now_s();
    size_t i = w->id * 7919 % g_nreq; /* threads start at different requests */
    while (now_s() - t0 < g_seconds) {
        request *r = &g_req[i++ % g_nreq];
        if (lsim_score(c, r->user, strlen(r->user), g_now, r->cand, r->n, s)) w->failed++;
        else if (memcmp(s, r->want, r->n * sizeof *s)) w->wrong++;
        w->done++;
    }
    w->elapsed = now_s() - t0;
    free(s);
    lsim_ctx_free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *ckpt = NULL, *user = "1", *dump = NULL, *threads = NULL;
    int64_t now = 0;
    size_t nb = 200, runs = 200, users = 100;
    long long long_max = 0;
    double seconds = 5;
    static const struct option opts[] = {
        {"index", 1, 0, 'i'},   {"model", 1, 0, 'm'},  {"user", 1, 0, 'u'},    {"now", 1, 0, 'n'},
        {"candidates", 1, 0, 'c'}, {"runs", 1, 0, 'r'}, {"dump", 1, 0, 'd'},  {"threads", 1, 0, 't'},
        {"seconds", 1, 0, 's'}, {"users", 1, 0, 'U'},  {"long-max", 1, 0, 'L'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': dir = optarg; break;
        case 'm': ckpt = optarg; break;
        case 'u': user = optarg; break;
        case 'n': now = atoll(optarg); break;
        case 'c': nb = (size_t)atol(optarg); break;
        case 'r': runs = (size_t)atol(optarg); break;
        case 'd': dump = optarg; break;
        case 't': threads = optarg; break;
        case 's': seconds = atof(optarg); break;
        case 'U': users = (size_t)atol(optarg); break;
        case 'L': long_max = atoll(optarg); break;
        default: die("bad option");
        }
    }
    if (!dir || !ckpt || now <= 0 || !nb || nb > 1000 || !runs) die("--index, --model and --now are required");
    openblas_set_num_threads(1);
    char err[512];
    lsim_settings set;
    lsim_settings_default(&set);
    set.long_max = (uint32_t)long_max;
    if (lsim_engine_open(&g_e, dir, ckpt, &set, err, sizeof err)) die(err);
    lsim_ctx *c;
    if (lsim_ctx_new(g_e, &c)) die("ctx");
    lsim_index *ix = g_e->ix;
    uint32_t n_items = vocab_size(ix->voc[IX_ITEM]), uid;
    if (vocab_find(ix->voc[IX_USER], user, strlen(user), &uid)) die("unknown user");
    ubt_event *ev = NULL;
    size_t cap = 0, n_ev;
    if (index_user_events(c->rd, uid, now, &ev, &cap, &n_ev)) die("reading the user");
    /* candidates: half from the user's own history, half from the catalog, all distinct (a
     * ranking stage does not ask twice for one item; the engine scores a repeat once) */
    uint64_t st = 7;
    lsim_candidate *cand = calloc(nb, sizeof *cand);
    uint32_t *cid = calloc(nb, sizeof *cid);
    for (size_t b = 0; b < nb; b++) {
        for (int tries = 0;; tries++) {
            int own = b % 2 && n_ev && tries < 1000; /* a history too small to give enough distinct items */
            cid[b] = own ? ev[splitmix(&st) % n_ev].item : (uint32_t)(splitmix(&st) % n_items);
            size_t j = 0;
            while (j < b && cid[j] != cid[b]) j++;
            if (j == b) break;
            if (tries > 100000) die("not enough distinct items for the candidates");
        }
        const char *s = vocab_str(ix->voc[IX_ITEM], cid[b]);
        cand[b] = (lsim_candidate){s, strlen(s), NULL, 0};
    }
    float *scores = malloc(nb * sizeof *scores);
    double *lat = malloc(runs * sizeof *lat);
    for (int w = 0; w < 5; w++)
        if (lsim_score(c, user, strlen(user), now, cand, nb, scores)) die(lsim_ctx_errmsg(c));
    for (size_t r = 0; r < runs; r++) {
        double t0 = now_s();
        if (lsim_score(c, user, strlen(user), now, cand, nb, scores)) die(lsim_ctx_errmsg(c));
        lat[r] = now_s() - t0;
    }
    double mean = 0;
    for (size_t r = 0; r < runs; r++) mean += lat[r] / (double)runs;
    qsort(lat, runs, sizeof *lat, cmp_double);
#define PCT(p) (1e3 * lat[(size_t)((double)(runs - 1) * (p))])
    printf("{\"user\": \"%s\", \"behaviors\": %zu, \"long_max\": %u, \"candidates\": %zu, \"runs\": %zu,\n", user, n_ev,
           g_e->set.long_max, nb, runs);
    printf(" \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f", PCT(0.5),
           PCT(0.9), PCT(0.99), 1e3 * lat[runs - 1], 1e3 * mean);
    if (dump) {
        FILE *f = fopen(dump, "w");
        if (!f) die("cannot write the dump");
        const model_spec *sp = &g_e->spec;
        fprintf(f, "%zu %zu %" PRId64 "\n", n_ev, nb, now);
        for (size_t i = 0; i < n_ev; i++)
            fprintf(f, "%u %u %" PRId64 "\n", ev[i].item < sp->base.n_items ? ev[i].item : sp->base.n_items,
                    ev[i].cat < sp->base.n_cats ? ev[i].cat : sp->base.n_cats, ev[i].ts);
        for (size_t b = 0; b < nb; b++) {
            uint32_t ct = vocab_cat(ix->voc[IX_ITEM], cid[b]);
            fprintf(f, "%u %u %.9g\n", cid[b] < sp->base.n_items ? cid[b] : sp->base.n_items,
                    ct < sp->base.n_cats ? ct : sp->base.n_cats, scores[b]);
        }
        fclose(f);
    }
    if (threads) {
        /* requests of the first `users` users, one-thread scores first */
        g_nreq = users < vocab_size(ix->voc[IX_USER]) ? users : vocab_size(ix->voc[IX_USER]);
        g_req = calloc(g_nreq, sizeof *g_req);
        g_now = now;
        for (size_t i = 0; i < g_nreq; i++) {
            request *r = &g_req[i];
            snprintf(r->user, sizeof r->user, "%s", vocab_str(ix->voc[IX_USER], (uint32_t)i));
            r->n = nb;
            r->cand = cand;
            r->want = malloc(nb * sizeof *r->want);
            if (lsim_score(c, r->user, strlen(r->user), now, cand, nb, r->want)) die(lsim_ctx_errmsg(c));
        }
        g_seconds = seconds;
        printf(",\n \"threads\": [");
        char *list = strdup(threads);
        int first = 1;
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            int nt = atoi(tok);
            if (nt < 1 || nt > 64) die("--threads: 1..64");
            worker *w = calloc((size_t)nt, sizeof *w);
            double t0 = now_s();
            for (int i = 0; i < nt; i++) w[i].id = (size_t)i, pthread_create(&w[i].t, NULL, work, &w[i]);
            uint64_t done = 0, wrong = 0, failed = 0;
            for (int i = 0; i < nt; i++) {
                pthread_join(w[i].t, NULL);
                done += w[i].done, wrong += w[i].wrong, failed += w[i].failed;
            }
            double wall = now_s() - t0;
            printf("%s\n  {\"threads\": %d, \"requests\": %" PRIu64 ", \"seconds\": %.3f, \"qps\": %.1f, "
                   "\"wrong_scores\": %" PRIu64 ", \"errors\": %" PRIu64 "}",
                   first ? "" : ",", nt, done, wall, (double)done / wall, wrong, failed);
            first = 0;
            free(w);
        }
        free(list);
        printf("]");
    }
    printf("}\n");
    lsim_ctx_free(c);
    lsim_engine_close(g_e);
    return 0;
}
