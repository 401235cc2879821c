/*
 * soak.c: the request engine under sustained load while its index grows, as
 * a plain program (like engine_threads.c); `meson test --suite soak` (also in
 * the slow suite, never the default one). docs/RELIABILITY.md, "Load: the
 * soak test", records a run.
 *
 * Setup, through the lsim command as an operator would: `gen log` (long
 * histories: lengths up to 54,000), `index build`, `train` a small SIM model
 * (a few hundred steps), `gen requests` from the held-out day. Then, for the
 * run's duration:
 *   - N threads (each with its own lsim_ctx on one shared engine) score the
 *     requests in random order, each at `now` = the stream's clock, just after
 *     the newest event committed, so that every request reads what the
 *     appends added;
 *   - every few seconds a fresh batch of generated events, timed after every
 *     event in the index (existing users and items, a few new ones, and a
 *     probe user), is added by `lsim index append` in a child process;
 *   - the main thread samples /proc/self/status (VmRSS, RssAnon, RssFile) and
 *     mallinfo2 every few seconds and checks, through lsim_explain and a hard
 *     search, that the probe user's newest appended events are visible.
 * Latencies go to per-thread, per-minute histograms allocated up front, so
 * that the harness itself allocates nothing while it measures.
 *
 * Fails (exit 1) on: any lsim_score error (each printed with its message, the
 * first ones), a score not finite or outside [0, 1], a failed append, a
 * committed batch that a later request does not see, or RssAnon growing from
 * the end of the warm-up to the end of the run by more than the tolerance
 * (file-backed RSS is not judged: LMDB's map grows with the file). Exit 2 on
 * a usage error. Prints a table per minute on stdout; --json FILE writes the
 * report (tests/soak_report.py turns it into markdown).
 */
#include "loaders/request_log.h"
#include "lsim.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_THREADS 64
#define MAX_PRINTED_ERRORS 20
#define PROBE_USER "soak-probe"
#define PROBE_PER_BATCH 3
#define HIST_SUB 64                     /* histogram buckets per octave: about 1.5% resolution */
#define HIST_BUCKETS (HIST_SUB * 28)    /* microseconds up to 2^32 */
static const int64_t END_TS = 1512345600; /* `lsim gen log`'s default end: appends come after */

typedef struct config {
    double seconds, append_every, warmup, sample_every, tolerance_mb;
    int threads, users, requests, negatives, batch, new_items, new_users, train_steps, keep, leak;
    int64_t span; /* seconds of stream time one batch covers */
    const char *model, *json, *checkpoint;
} config;

/* One thread's counts for one minute. */
typedef struct minute_stat {
    uint64_t requests, errors, invalid, candidates;
    uint64_t max_us;
    uint32_t hist[HIST_BUCKETS];
} minute_stat;

typedef struct mem_sample {
    double t;
    uint64_t vmrss, anon, file, heap; /* bytes */
    uint64_t index_bytes, index_used, index_events;
    int64_t committed;
    double load1;
} mem_sample;

typedef struct soak soak;

typedef struct job {
    pthread_t t;
    soak *s;
    int id;
    lsim_candidate *cand;
    float *scores;
    minute_stat *min; /* [n_minutes] */
    atomic_ullong done;
} job;

struct soak {
    config cfg;
    char dir[512], idx[600], ckpt[600], reqs[600], batch[600], append_err[600];
    lsim_engine *e;
    lsim_index *ix; /* the engine's index handle, shared (lsim_index_open's registry) */
    request_set *rs;
    size_t n_req, max_n;
    /* the base log, for drawing batch events: popularity-weighted by drawing events */
    uint32_t *ev_user, *ev_item, *ev_cat;
    size_t n_ev;
    uint32_t probe_cat, probe_items[16];
    int n_probe_items;
    double t0; /* monotonic seconds at the start of the run */
    int n_minutes;
    atomic_int stop;
    atomic_llong committed; /* batches committed; the clock is END_TS + committed * span */
    atomic_int printed_errors;
    /* appender */
    pthread_t appender;
    uint64_t appends, append_fail, events_appended;
    double append_sum, append_max;
    int *appends_per_minute; /* [n_minutes] */
    char append_msg[512];
    /* monitor */
    mem_sample *samples;
    size_t n_samples, cap_samples;
    uint64_t vis_checks, vis_fail;
    char vis_msg[512];
    job jobs[MAX_THREADS];
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("soak: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static uint64_t rnd(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *lsim_bin(void)
{
    const char *b = getenv("LSIM_BIN");
    if (!b) die("LSIM_BIN is not set (meson test sets it; else point it at the lsim binary)");
    return b;
}

/* Runs `lsim args...` (args[0] is replaced by the binary), stdout and stderr
 * to `log` (appended); its exit status, 128 + signal if killed. */
static int run_lsim(char **args, const char *log)
{
    args[0] = (char *)lsim_bin();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, args[0], &fa, NULL, args, environ), st = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (rc) die("spawning %s: %s", args[0], strerror(rc));
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) fprintf(stderr, "  | %s", line);
    if (f) fclose(f);
}

static void setup_step(soak *s, const char *what, char **args)
{
    char log[700];
    snprintf(log, sizeof log, "%s/setup.log", s->dir);
    double t = mono();
    int rc = run_lsim(args, log);
    if (rc) {
        print_file(log);
        die("setup: %s failed (exit %d)", what, rc);
    }
    fprintf(stderr, "soak: setup: %s (%.1f s)\n", what, mono() - t);
}

/* ---- histograms: microseconds, HIST_SUB buckets per octave ---- */

static size_t hist_bucket(uint64_t us)
{
    if (us < HIST_SUB) return (size_t)us;
    if (us > UINT32_MAX) us = UINT32_MAX;
    int e = 63 - __builtin_clzll(us), shift = e - 6; /* HIST_SUB = 2^6 */
    return (size_t)(shift + 1) * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

static double hist_mid(size_t b) /* the bucket's middle, microseconds */
{
    if (b < HIST_SUB) return (double)b;
    size_t shift = b / HIST_SUB - 1, m = b % HIST_SUB + HIST_SUB;
    return ((double)(m << shift) + (double)((m + 1) << shift)) / 2;
}

/* The q-quantile (0 < q <= 1) of a histogram holding n values, microseconds, at most max_us. */
static double hist_quantile(const uint32_t *h, uint64_t n, double q, uint64_t max_us)
{
    if (!n) return 0;
    uint64_t want = (uint64_t)ceil(q * (double)n), seen = 0;
    if (want < 1) want = 1;
    for (size_t b = 0; b < HIST_BUCKETS; b++)
        if ((seen += h[b]) >= want) return fmin(hist_mid(b), (double)max_us);
    return (double)max_us;
}

/* ---- memory ---- */

static uint64_t status_kb(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void sample_memory(soak *s)
{
    if (s->n_samples == s->cap_samples) return;
    mem_sample *m = &s->samples[s->n_samples];
    memset(m, 0, sizeof *m);
    m->t = mono() - s->t0;
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = 0;
    m->vmrss = status_kb(buf, "VmRSS:") << 10;
    m->anon = status_kb(buf, "RssAnon:") << 10;
    m->file = status_kb(buf, "RssFile:") << 10;
    struct mallinfo2 mi = mallinfo2();
    m->heap = mi.uordblks + mi.hblkhd;
    lsim_index_stats st;
    if (lsim_index_stats_get(s->ix, &st) == 0)
        m->index_bytes = st.bytes, m->index_used = st.used_bytes, m->index_events = st.events;
    m->committed = atomic_load(&s->committed);
    double la[1];
    m->load1 = getloadavg(la, 1) == 1 ? la[0] : -1;
    s->n_samples++;
}

/* The first sample at or after time t (the last one if none). */
static const mem_sample *sample_at(const soak *s, double t)
{
    for (size_t i = 0; i < s->n_samples; i++)
        if (s->samples[i].t >= t) return &s->samples[i];
    return &s->samples[s->n_samples - 1];
}

/* ---- setup ---- */

/* Reads the base log: every event's user, item and category, to draw batch
 * events from (raw ids of `lsim gen log` are integers). */
static void read_log(soak *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16;
    s->ev_user = malloc(cap * 4), s->ev_item = malloc(cap * 4), s->ev_cat = malloc(cap * 4);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long u, it, c;
        if (sscanf(line, "%lu,%lu,%lu,", &u, &it, &c) != 3 || u > UINT32_MAX || it > UINT32_MAX || c > UINT32_MAX)
            die("%s: cannot read line %zu", path, s->n_ev + 1);
        if (s->n_ev == cap) {
            cap *= 2;
            s->ev_user = realloc(s->ev_user, cap * 4);
            s->ev_item = realloc(s->ev_item, cap * 4);
            s->ev_cat = realloc(s->ev_cat, cap * 4);
        }
        if (!s->ev_user || !s->ev_item || !s->ev_cat) die("out of memory");
        s->ev_user[s->n_ev] = (uint32_t)u, s->ev_item[s->n_ev] = (uint32_t)it, s->ev_cat[s->n_ev] = (uint32_t)c;
        s->n_ev++;
    }
    fclose(f);
    if (!s->n_ev) die("%s is empty", path);
    /* the probe user's category: the first event's; its items: distinct ones of that category */
    s->probe_cat = s->ev_cat[0];
    for (size_t i = 0; i < s->n_ev && s->n_probe_items < 16; i++) {
        if (s->ev_cat[i] != s->probe_cat) continue;
        int dup = 0;
        for (int k = 0; k < s->n_probe_items; k++) dup |= s->probe_items[k] == s->ev_item[i];
        if (!dup) s->probe_items[s->n_probe_items++] = s->ev_item[i];
    }
}

static void setup(soak *s)
{
    const config *c = &s->cfg;
    const char *base = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/lsim-soak-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(s->dir)) die("mkdtemp %s: %s", s->dir, strerror(errno));
    char log[600], users[32], steps[32], maxreq[32], neg[32];
    snprintf(log, sizeof log, "%s/log.csv", s->dir);
    snprintf(s->idx, sizeof s->idx, "%s/idx", s->dir);
    snprintf(s->reqs, sizeof s->reqs, "%s/requests.jsonl", s->dir);
    snprintf(s->batch, sizeof s->batch, "%s/batch.csv", s->dir);
    snprintf(s->append_err, sizeof s->append_err, "%s/append.log", s->dir);
    snprintf(users, sizeof users, "%d", c->users);
    snprintf(steps, sizeof steps, "%d", c->train_steps);
    snprintf(maxreq, sizeof maxreq, "%d", c->requests);
    snprintf(neg, sizeof neg, "%d", c->negatives);
    char *gen[] = {"", "gen", "log", "--users", users, "--out", log, NULL};
    setup_step(s, "lsim gen log", gen);
    char *build[] = {"", "index", "build", "--index", s->idx, "--input", log, NULL};
    setup_step(s, "lsim index build", build);
    if (c->checkpoint) {
        snprintf(s->ckpt, sizeof s->ckpt, "%s", c->checkpoint);
    } else {
        snprintf(s->ckpt, sizeof s->ckpt, "%s/model.safetensors", s->dir);
        char *train[] = {"", "train", "--index", s->idx, "--model", (char *)c->model, "--out", s->ckpt,
                         "--steps", steps, "--threads", "1", NULL};
        setup_step(s, "lsim train", train);
    }
    char *req[] = {"", "gen", "requests", "--index", s->idx, "--out", s->reqs, "--max-requests", maxreq,
                   "--negatives", neg, NULL};
    setup_step(s, "lsim gen requests", req);
    read_log(s, log);
    request_log_spec spec;
    request_log_spec_default(&spec);
    char err[600];
    if (request_log_read(&s->rs, s->reqs, &spec, err, sizeof err)) die("%s", err);
    s->n_req = request_set_size(s->rs);
    s->max_n = request_set_max_n(s->rs);
    if (!s->n_req) die("%s: no requests", s->reqs);
    if (lsim_engine_open(&s->e, s->idx, s->ckpt, NULL, err, sizeof err)) die("engine open: %s", err);
    if (lsim_index_open(&s->ix, s->idx, err, sizeof err)) die("index open: %s", err);
}

/* The requests' users' history lengths before `before`: mean and max. */
static void history_lengths(soak *s, int64_t before, double *mean, uint64_t *max)
{
    size_t users = request_set_users(s->rs), cap = 1u << 18, sum = 0, counted = 0;
    unsigned char *seen = calloc(users, 1);
    lsim_event *ev = malloc(cap * sizeof *ev);
    lsim_index_reader *rd;
    if (!seen || !ev || lsim_index_reader_new(s->ix, &rd)) die("out of memory");
    *max = 0;
    for (size_t i = 0; i < s->n_req; i++) {
        request_view v;
        request_set_get(s->rs, i, &v);
        if (seen[v.user_no]) continue;
        seen[v.user_no] = 1;
        size_t n;
        if (lsim_index_hard_search(rd, v.user, v.user_len, NULL, 0, before, cap, ev, &n))
            die("hard search: %s", lsim_index_reader_errmsg(rd));
        sum += n, counted++;
        if (n > *max) *max = n;
    }
    *mean = counted ? (double)sum / (double)counted : 0;
    lsim_index_reader_free(rd);
    free(ev);
    free(seen);
}

/* ---- the scoring threads ---- */

static int64_t clock_now(soak *s)
{
    return END_TS + atomic_load(&s->committed) * s->cfg.span;
}

static void *worker(void *arg)
{
    job *j = arg;
    soak *s = j->s;
    lsim_ctx *c;
    if (lsim_ctx_new(s->e, &c)) {
        fprintf(stderr, "soak: thread %d: lsim_ctx_new failed\n", j->id);
        j->min[0].errors++;
        return NULL;
    }
    uint64_t rng = 0x50a4u + (uint64_t)j->id * 7919;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        size_t i = (size_t)(rnd(&rng) % s->n_req);
        request_view v;
        request_set_get(s->rs, i, &v);
        request_set_fill(s->rs, i, j->cand);
        int64_t now = clock_now(s);
        double t = mono();
        int rc = lsim_score(c, v.user, v.user_len, now, j->cand, v.n, j->scores);
        double t1 = mono();
        int m = (int)((t - s->t0) / 60);
        minute_stat *ms = &j->min[m < s->n_minutes ? m : s->n_minutes - 1];
        uint64_t us = (uint64_t)((t1 - t) * 1e6);
        ms->requests++;
        ms->candidates += v.n;
        ms->hist[hist_bucket(us)]++;
        if (us > ms->max_us) ms->max_us = us;
        atomic_fetch_add_explicit(&j->done, 1, memory_order_relaxed);
        if (s->cfg.leak) { /* --leak: a leak on purpose, to check that the memory criterion catches one */
            char *lost = malloc((size_t)s->cfg.leak);
            if (lost) memset(lost, 1, (size_t)s->cfg.leak);
        }
        if (rc) {
            ms->errors++;
            if (atomic_fetch_add(&s->printed_errors, 1) < MAX_PRINTED_ERRORS)
                fprintf(stderr, "soak: ERROR thread %d, request %s (user %s, %zu candidates, now %" PRId64
                        "): %s: %s\n", j->id, v.id, v.user, v.n, now, lsim_strerror(rc), lsim_ctx_errmsg(c));
            continue;
        }
        for (size_t k = 0; k < v.n; k++) {
            float p = j->scores[k];
            if (isfinite(p) && p >= 0 && p <= 1) continue;
            ms->invalid++;
            if (atomic_fetch_add(&s->printed_errors, 1) < MAX_PRINTED_ERRORS)
                fprintf(stderr, "soak: INVALID SCORE thread %d, request %s (user %s), candidate %zu: %g\n", j->id,
                        v.id, v.user, k, (double)p);
        }
    }
    lsim_ctx_free(c);
    return NULL;
}

/* ---- the appender ---- */

static const char *event_type(uint64_t r)
{
    unsigned x = (unsigned)(r % 1000);
    return x < 890 ? "pv" : x < 945 ? "cart" : x < 975 ? "fav" : "buy";
}

/* Batch k (1, 2, ...): events timed in [END_TS + (k-1) span, END_TS + k span):
 * existing users (half of them the requests' users) and items drawn as the
 * base log's events, new_items new items and new_users new users, and the
 * probe user's PROBE_PER_BATCH events at the batch's last seconds. */
static uint64_t write_batch(soak *s, int64_t k, uint64_t *rng)
{
    const config *c = &s->cfg;
    FILE *f = fopen(s->batch, "w");
    if (!f) die("%s: %s", s->batch, strerror(errno));
    int64_t t0 = END_TS + (k - 1) * c->span, w = c->span - PROBE_PER_BATCH;
    uint64_t n = 0;
    for (int i = 0; i < c->batch; i++, n++) {
        size_t e = (size_t)(rnd(rng) % s->n_ev), e2 = (size_t)(rnd(rng) % s->n_ev);
        int64_t ts = t0 + (int64_t)(rnd(rng) % (uint64_t)w);
        char user[40];
        if (i < c->new_users * 5) { /* each new user: 5 events */
            snprintf(user, sizeof user, "new-user-%" PRId64 "-%d", k, i / 5);
        } else if (rnd(rng) & 1) {
            request_view v;
            request_set_get(s->rs, (size_t)(rnd(rng) % s->n_req), &v);
            snprintf(user, sizeof user, "%s", v.user);
        } else {
            snprintf(user, sizeof user, "%" PRIu32, s->ev_user[e]);
        }
        if (i >= c->batch - c->new_items)
            fprintf(f, "%s,new-item-%" PRId64 "-%d,%" PRIu32 ",%s,%" PRId64 "\n", user, k, c->batch - i,
                    s->ev_cat[e2], event_type(rnd(rng)), ts);
        else
            fprintf(f, "%s,%" PRIu32 ",%" PRIu32 ",%s,%" PRId64 "\n", user, s->ev_item[e2], s->ev_cat[e2],
                    event_type(rnd(rng)), ts);
    }
    for (int i = 0; i < PROBE_PER_BATCH; i++, n++)
        fprintf(f, PROBE_USER ",%" PRIu32 ",%" PRIu32 ",pv,%" PRId64 "\n",
                s->probe_items[(size_t)(k * PROBE_PER_BATCH + i) % (size_t)s->n_probe_items], s->probe_cat,
                t0 + c->span - PROBE_PER_BATCH + i);
    if (fclose(f)) die("%s: write failed", s->batch);
    return n;
}

static void *appender(void *arg)
{
    soak *s = arg;
    uint64_t rng = 0xa99e7du;
    for (int64_t k = 1;; k++) {
        while (!atomic_load(&s->stop) && mono() - s->t0 < (double)k * s->cfg.append_every) sleep_s(0.05);
        if (atomic_load(&s->stop)) break;
        uint64_t n = write_batch(s, k, &rng);
        char *args[] = {"", "index", "append", "--index", s->idx, "--input", s->batch, NULL};
        unlink(s->append_err);
        double t = mono();
        int rc = run_lsim(args, s->append_err);
        double dt = mono() - t;
        if (rc) {
            s->append_fail++;
            FILE *f = fopen(s->append_err, "r");
            char line[400] = "";
            if (f && !fgets(line, sizeof line, f)) line[0] = 0;
            if (f) fclose(f);
            line[strcspn(line, "\n")] = 0;
            snprintf(s->append_msg, sizeof s->append_msg, "append %" PRId64 ": exit %d: %s", k, rc, line);
            fprintf(stderr, "soak: ERROR %s\n", s->append_msg);
            atomic_store(&s->stop, 1);
            break;
        }
        s->appends++, s->events_appended += n, s->append_sum += dt;
        if (dt > s->append_max) s->append_max = dt;
        int m = (int)((t - s->t0) / 60);
        s->appends_per_minute[m < s->n_minutes ? m : s->n_minutes - 1]++;
        atomic_store(&s->committed, k); /* the batch is committed: requests from now on must see it */
    }
    return NULL;
}

/* ---- visibility: a committed batch is seen by the next request ---- */

typedef struct probe {
    lsim_ctx *c;
    lsim_index_reader *rd;
    lsim_explained ex[64];
    lsim_event ev[4096];
} probe;

static void check_visible(soak *s, probe *p)
{
    int64_t k = atomic_load(&s->committed), now = END_TS + k * s->cfg.span;
    char item[16];
    snprintf(item, sizeof item, "%" PRIu32, s->probe_items[0]);
    char cat[16];
    snprintf(cat, sizeof cat, "%" PRIu32, s->probe_cat);
    lsim_candidate cand = {item, strlen(item), cat, strlen(cat)};
    float score;
    size_t n = 0, hist = 0;
    s->vis_checks++;
    int rc = lsim_explain(p->c, PROBE_USER, strlen(PROBE_USER), now, &cand, &score, p->ex, 64, &n);
    if (!rc) rc = lsim_index_hard_search(p->rd, PROBE_USER, strlen(PROBE_USER), NULL, 0, now, 4096, p->ev, &hist);
    int64_t newest = n ? p->ex[n - 1].event.ts : 0, want = END_TS + k * s->cfg.span - 1;
    uint64_t want_hist = (uint64_t)k * PROBE_PER_BATCH;
    if (rc || (k > 0 && newest < want) || (hist < want_hist && want_hist <= 4096)) {
        s->vis_fail++;
        snprintf(s->vis_msg, sizeof s->vis_msg,
                 "after %" PRId64 " batches: %s; explain's newest event %" PRId64 " (want >= %" PRId64
                 "), probe history %zu (want >= %" PRIu64 ")",
                 k, rc ? lsim_ctx_errmsg(p->c) : "no error", newest, want, hist, want_hist);
        fprintf(stderr, "soak: ERROR visibility %s\n", s->vis_msg);
    }
}

/* ---- the report ---- */

typedef struct minute_row {
    double secs;
    uint64_t requests, errors, invalid, candidates, max_us;
    double p50, p90, p99; /* ms */
    int appends;
    const mem_sample *mem;
} minute_row;

static void minute_rows(soak *s, minute_row *rows, double run_secs)
{
    static uint32_t h[HIST_BUCKETS];
    for (int m = 0; m < s->n_minutes; m++) {
        minute_row *r = &rows[m];
        memset(r, 0, sizeof *r);
        memset(h, 0, sizeof h);
        for (int t = 0; t < s->cfg.threads; t++) {
            const minute_stat *ms = &s->jobs[t].min[m];
            r->requests += ms->requests, r->errors += ms->errors, r->invalid += ms->invalid;
            r->candidates += ms->candidates;
            if (ms->max_us > r->max_us) r->max_us = ms->max_us;
            for (size_t b = 0; b < HIST_BUCKETS; b++) h[b] += ms->hist[b];
        }
        r->p50 = hist_quantile(h, r->requests, 0.50, r->max_us) / 1e3;
        r->p90 = hist_quantile(h, r->requests, 0.90, r->max_us) / 1e3;
        r->p99 = hist_quantile(h, r->requests, 0.99, r->max_us) / 1e3;
        r->secs = fmin(60, run_secs - 60.0 * m);
        r->appends = s->appends_per_minute[m];
        const mem_sample *last = &s->samples[0]; /* the minute's last sample; the last minute's: the run's end */
        for (size_t i = 0; i < s->n_samples; i++)
            if (s->samples[i].t <= 60.0 * (m + 1) || m == s->n_minutes - 1) last = &s->samples[i];
        r->mem = last;
    }
}

static void json_string(FILE *f, const char *str)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static double mib(uint64_t b)
{
    return (double)b / (1 << 20);
}

int main(int argc, char **argv)
{
    static soak S;
    soak *s = &S;
    config *c = &s->cfg;
    *c = (config){.seconds = 600, .append_every = 3, .warmup = -1, .sample_every = 2, .tolerance_mb = 4,
                  .threads = 4, .users = 1000, .requests = 2000, .negatives = 299, .batch = 1000, .new_items = 2,
                  .new_users = 1, .train_steps = 200, .span = 300, .model = "sim-hard"};
    const char *env;
    if ((env = getenv("LSIM_SOAK_SECONDS"))) c->seconds = atof(env);
    if ((env = getenv("LSIM_SOAK_THREADS"))) c->threads = atoi(env);
    if ((env = getenv("LSIM_SOAK_APPEND_EVERY"))) c->append_every = atof(env);
    if ((env = getenv("LSIM_SOAK_JSON"))) c->json = env;
    static const struct option opts[] = {
        {"seconds", required_argument, 0, 's'},  {"threads", required_argument, 0, 't'},
        {"append-every", required_argument, 0, 'a'}, {"batch", required_argument, 0, 'b'},
        {"warmup", required_argument, 0, 'w'},   {"sample-every", required_argument, 0, 'S'},
        {"tolerance-mb", required_argument, 0, 'T'}, {"users", required_argument, 0, 'u'},
        {"requests", required_argument, 0, 'r'}, {"negatives", required_argument, 0, 'n'},
        {"model", required_argument, 0, 'm'},    {"checkpoint", required_argument, 0, 'c'},
        {"train-steps", required_argument, 0, 'x'}, {"json", required_argument, 0, 'j'},
        {"keep", no_argument, 0, 'k'},           {"leak", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    static const char help[] =
        "usage: soak [options]   (LSIM_BIN: the lsim binary; meson test sets it)\n"
        "  --seconds S        run time (default 600; env LSIM_SOAK_SECONDS)\n"
        "  --threads N        scoring threads (default 4; env LSIM_SOAK_THREADS)\n"
        "  --append-every S   an `lsim index append` every S seconds (default 3; env LSIM_SOAK_APPEND_EVERY)\n"
        "  --batch N          events per append (default 1000)\n"
        "  --warmup S         memory growth is judged from S seconds on (default 60, at most a quarter of the run)\n"
        "  --sample-every S   memory sampling period (default 2)\n"
        "  --tolerance-mb M   RssAnon growth allowed after the warm-up (default 4)\n"
        "  --users N          users of the generated log (default 1000; lengths 100..54000)\n"
        "  --requests N       requests drawn by `lsim gen requests` (default 2000)\n"
        "  --negatives N      label-0 candidates per request (default 299: 300 candidates)\n"
        "  --model KIND       model trained for the run: sim-hard (default) or sim-soft\n"
        "  --train-steps N    its training steps (default 200)\n"
        "  --checkpoint FILE  use this checkpoint instead of training one\n"
        "  --json FILE        write the report as JSON (env LSIM_SOAK_JSON)\n"
        "  --keep             keep the scratch directory\n"
        "  --leak BYTES       leak this much per request (to check that the test fails on a leak)\n";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': c->seconds = atof(optarg); break;
        case 't': c->threads = atoi(optarg); break;
        case 'a': c->append_every = atof(optarg); break;
        case 'b': c->batch = atoi(optarg); break;
        case 'w': c->warmup = atof(optarg); break;
        case 'S': c->sample_every = atof(optarg); break;
        case 'T': c->tolerance_mb = atof(optarg); break;
        case 'u': c->users = atoi(optarg); break;
        case 'r': c->requests = atoi(optarg); break;
        case 'n': c->negatives = atoi(optarg); break;
        case 'm': c->model = optarg; break;
        case 'c': c->checkpoint = optarg; break;
        case 'x': c->train_steps = atoi(optarg); break;
        case 'j': c->json = optarg; break;
        case 'k': c->keep = 1; break;
        case 'L': c->leak = atoi(optarg); break;
        case 'h': fputs(help, stdout); return 0;
        default: fputs(help, stderr); return 2;
        }
    }
    if (c->warmup < 0) c->warmup = fmin(60, c->seconds / 4);
    if (optind < argc || !(c->seconds > 0) || c->threads < 1 || c->threads > MAX_THREADS ||
        !(c->append_every > 0) || c->batch < c->new_users * 5 + c->new_items || !(c->sample_every > 0) ||
        c->warmup < 0 || c->warmup >= c->seconds || c->users < 10 || c->requests < 1 || c->negatives < 0 ||
        c->train_steps < 1 || !(c->tolerance_mb >= 0) || c->leak < 0) {
        fputs("soak: bad options\n", stderr);
        fputs(help, stderr);
        return 2;
    }
    openblas_set_num_threads(1);
    setup(s);

    s->n_minutes = (int)ceil(c->seconds / 60);
    s->cap_samples = (size_t)(c->seconds / c->sample_every) + 16;
    s->samples = calloc(s->cap_samples, sizeof *s->samples);
    s->appends_per_minute = calloc((size_t)s->n_minutes, sizeof *s->appends_per_minute);
    for (int t = 0; t < c->threads; t++) {
        job *j = &s->jobs[t];
        j->s = s, j->id = t;
        j->cand = malloc(s->max_n * sizeof *j->cand);
        j->scores = malloc(s->max_n * sizeof *j->scores);
        j->min = calloc((size_t)s->n_minutes, sizeof *j->min);
        if (!j->cand || !j->scores || !j->min) die("out of memory");
        for (int m = 0; m < s->n_minutes; m++) memset(&j->min[m], 0, sizeof j->min[m]); /* touch it now */
    }
    static probe pr;
    if (!s->samples || !s->appends_per_minute || lsim_ctx_new(s->e, &pr.c) || lsim_index_reader_new(s->ix, &pr.rd))
        die("out of memory");
    double hist_mean0, hist_mean1;
    uint64_t hist_max0, hist_max1;
    history_lengths(s, END_TS, &hist_mean0, &hist_max0);
    lsim_index_stats st0, st1;
    if (lsim_index_stats_get(s->ix, &st0)) die("index stats");
    double load0[3] = {0}, load1[3] = {0};
    getloadavg(load0, 3);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(stderr,
            "soak: %.0f s, %d threads, %s, %zu requests (up to %zu candidates) over %zu users; "
            "an append of %d events every %.1f s; load %.2f on %ld cores\n",
            c->seconds, c->threads, c->model, s->n_req, s->max_n, request_set_users(s->rs), c->batch + PROBE_PER_BATCH,
            c->append_every, load0[0], nproc);

    s->t0 = mono();
    sample_memory(s);
    for (int t = 0; t < c->threads; t++)
        if (pthread_create(&s->jobs[t].t, NULL, worker, &s->jobs[t])) die("pthread_create");
    if (pthread_create(&s->appender, NULL, appender, s)) die("pthread_create");
    double next_sample = c->sample_every;
    int printed_minute = 0;
    while (!atomic_load(&s->stop)) {
        double t = mono() - s->t0;
        if (t >= c->seconds) break;
        if (t < next_sample) {
            sleep_s(fmin(next_sample - t, 0.2));
            continue;
        }
        next_sample += c->sample_every;
        sample_memory(s);
        check_visible(s, &pr);
        if ((int)(t / 60) > printed_minute) {
            printed_minute = (int)(t / 60);
            uint64_t done = 0;
            for (int k = 0; k < c->threads; k++) done += atomic_load_explicit(&s->jobs[k].done, memory_order_relaxed);
            const mem_sample *m = &s->samples[s->n_samples - 1];
            fprintf(stderr, "soak: %4.0f s: %" PRIu64 " requests, %" PRId64 " appends, RssAnon %.1f MiB, RssFile %.1f"
                    " MiB, heap %.1f MiB, index %.1f MiB, load %.2f\n", t, done, m->committed, mib(m->anon),
                    mib(m->file), mib(m->heap), mib(m->index_bytes), m->load1);
        }
    }
    sample_memory(s); /* the end of the run, threads still scoring */
    check_visible(s, &pr);
    double run_secs = fmin(mono() - s->t0, c->seconds);
    atomic_store(&s->stop, 1);
    for (int t = 0; t < c->threads; t++) pthread_join(s->jobs[t].t, NULL);
    pthread_join(s->appender, NULL);
    getloadavg(load1, 3);
    check_visible(s, &pr); /* after the last append */
    int64_t end_now = clock_now(s);
    history_lengths(s, end_now, &hist_mean1, &hist_max1);
    if (lsim_index_stats_get(s->ix, &st1)) die("index stats");

    /* ---- judge and report ---- */
    minute_row *rows = calloc((size_t)s->n_minutes, sizeof *rows);
    if (!rows) die("out of memory");
    minute_rows(s, rows, run_secs);
    uint64_t req = 0, errors = 0, invalid = 0, cands = 0;
    for (int m = 0; m < s->n_minutes; m++)
        req += rows[m].requests, errors += rows[m].errors, invalid += rows[m].invalid, cands += rows[m].candidates;
    const mem_sample *warm = sample_at(s, c->warmup), *end = &s->samples[s->n_samples - 1];
    uint64_t peak_anon = 0;
    for (size_t i = 0; i < s->n_samples; i++)
        if (s->samples[i].t >= c->warmup && s->samples[i].anon > peak_anon) peak_anon = s->samples[i].anon;
    double growth = (double)end->anon - (double)warm->anon, tol = c->tolerance_mb * (1 << 20);
    double heap_growth = (double)end->heap - (double)warm->heap;
    char failures[8][400];
    int nf = 0;
#define FAILED(...) snprintf(failures[nf++], sizeof failures[0], __VA_ARGS__)
    if (errors) FAILED("%" PRIu64 " scoring errors", errors);
    if (invalid) FAILED("%" PRIu64 " scores not finite or outside [0, 1]", invalid);
    if (s->append_fail) FAILED("an append failed: %.300s", s->append_msg);
    if (s->vis_fail) FAILED("%" PRIu64 " visibility failures: %.300s", s->vis_fail, s->vis_msg);
    if (growth > tol)
        FAILED("RssAnon grew %.2f MiB after the warm-up (tolerance %.2f MiB)", growth / (1 << 20), c->tolerance_mb);
    if (!s->appends) FAILED("no append ran");
    if (!req) FAILED("no request was scored");
#undef FAILED

    printf("soak: %.0f s, %d threads, %s, %zu requests of up to %zu candidates over %zu users; "
           "an append of %d events every %.1f s; %ld cores\n",
           run_secs, c->threads, c->model, s->n_req, s->max_n, request_set_users(s->rs), c->batch + PROBE_PER_BATCH,
           c->append_every, nproc);
    printf("%6s %9s %7s %6s %7s %7s %7s %8s %7s %8s %8s %9s %6s\n", "minute", "requests", "req/s", "errors", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "appends", "anon MiB", "file MiB", "index MiB", "load1");
    for (int m = 0; m < s->n_minutes; m++) {
        const minute_row *r = &rows[m];
        printf("%6d %9" PRIu64 " %7.1f %6" PRIu64 " %7.2f %7.2f %7.2f %8.2f %7d %8.1f %8.1f %9.1f %6.2f\n", m + 1,
               r->requests, r->secs > 0 ? (double)r->requests / r->secs : 0, r->errors + r->invalid, r->p50, r->p90,
               r->p99, (double)r->max_us / 1e3, r->appends, mib(r->mem->anon), mib(r->mem->file),
               mib(r->mem->index_bytes), r->mem->load1);
    }
    printf("requests: %" PRIu64 " (%" PRIu64 " candidates scored), %.1f/s; errors %" PRIu64 ", invalid scores %"
           PRIu64 "\n", req, cands, (double)req / run_secs, errors, invalid);
    printf("memory (MiB)       %10s %10s %10s\n", "start", "warm-up", "end");
    printf("  VmRSS            %10.1f %10.1f %10.1f\n", mib(s->samples[0].vmrss), mib(warm->vmrss), mib(end->vmrss));
    printf("  RssAnon          %10.1f %10.1f %10.1f   growth %+.2f MiB after %.0f s (tolerance %.2f): %s\n",
           mib(s->samples[0].anon), mib(warm->anon), mib(end->anon), growth / (1 << 20), warm->t, c->tolerance_mb,
           growth > tol ? "FAIL" : "ok");
    printf("  RssFile          %10.1f %10.1f %10.1f\n", mib(s->samples[0].file), mib(warm->file), mib(end->file));
    printf("  heap in use      %10.1f %10.1f %10.1f   growth %+.2f MiB\n", mib(s->samples[0].heap), mib(warm->heap),
           mib(end->heap), heap_growth / (1 << 20));
    printf("index: events %" PRIu64 " -> %" PRIu64 " (+%" PRIu64 " in %" PRIu64 " appends, %.2f s mean, %.2f s max);"
           " file %.1f -> %.1f MiB, pages in use %.1f -> %.1f MiB\n",
           st0.events, st1.events, s->events_appended, s->appends, s->appends ? s->append_sum / (double)s->appends : 0,
           s->append_max, mib(st0.bytes), mib(st1.bytes), mib(st0.used_bytes), mib(st1.used_bytes));
    printf("visibility: %" PRIu64 " checks, %" PRIu64 " failures; requests' users' history: mean %.0f, max %" PRIu64
           " events -> mean %.0f, max %" PRIu64 "\n", s->vis_checks, s->vis_fail, hist_mean0, hist_max0, hist_mean1,
           hist_max1);
    printf("load average: start %.2f %.2f %.2f, end %.2f %.2f %.2f\n", load0[0], load0[1], load0[2], load1[0],
           load1[1], load1[2]);
    for (int i = 0; i < nf; i++) printf("FAIL: %s\n", failures[i]);
    printf("soak: %s\n", nf ? "FAIL" : "ok");

    if (c->json) {
        FILE *f = fopen(c->json, "w");
        if (!f) die("%s: %s", c->json, strerror(errno));
        fprintf(f, "{\n  \"ok\": %s,\n  \"failures\": [", nf ? "false" : "true");
        for (int i = 0; i < nf; i++) {
            fputs(i ? ", " : "", f);
            json_string(f, failures[i]);
        }
        fprintf(f, "],\n  \"config\": {\"seconds\": %.1f, \"threads\": %d, \"append_every\": %.2f, \"batch\": %d, "
                   "\"new_items\": %d, \"new_users\": %d, \"warmup\": %.1f, \"sample_every\": %.2f, "
                   "\"tolerance_mb\": %.2f, \"users\": %d, \"requests\": %zu, \"max_candidates\": %zu, "
                   "\"request_users\": %zu, \"model\": \"%s\", \"cores\": %ld},\n",
                c->seconds, c->threads, c->append_every, c->batch + PROBE_PER_BATCH, c->new_items, c->new_users,
                c->warmup, c->sample_every, c->tolerance_mb, c->users, s->n_req, s->max_n, request_set_users(s->rs),
                c->model, nproc);
        fprintf(f, "  \"totals\": {\"run_seconds\": %.2f, \"requests\": %" PRIu64 ", \"candidates\": %" PRIu64
                   ", \"errors\": %" PRIu64 ", \"invalid_scores\": %" PRIu64 ", \"appends\": %" PRIu64
                   ", \"append_failures\": %" PRIu64 ", \"events_appended\": %" PRIu64 ", \"append_seconds_mean\": "
                   "%.3f, \"append_seconds_max\": %.3f, \"visibility_checks\": %" PRIu64 ", \"visibility_failures\": %"
                   PRIu64 "},\n",
                run_secs, req, cands, errors, invalid, s->appends, s->append_fail, s->events_appended,
                s->appends ? s->append_sum / (double)s->appends : 0, s->append_max, s->vis_checks, s->vis_fail);
        fprintf(f, "  \"minutes\": [\n");
        for (int m = 0; m < s->n_minutes; m++) {
            const minute_row *r = &rows[m];
            fprintf(f, "    {\"minute\": %d, \"seconds\": %.1f, \"requests\": %" PRIu64 ", \"errors\": %" PRIu64
                       ", \"invalid_scores\": %" PRIu64 ", \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
                       "\"max_ms\": %.3f, \"appends\": %d, \"rss_anon\": %" PRIu64 ", \"rss_file\": %" PRIu64
                       ", \"vmrss\": %" PRIu64 ", \"heap\": %" PRIu64 ", \"index_bytes\": %" PRIu64
                       ", \"index_events\": %" PRIu64 ", \"load1\": %.2f}%s\n",
                    m + 1, r->secs, r->requests, r->errors, r->invalid, r->p50, r->p90, r->p99, (double)r->max_us / 1e3,
                    r->appends, r->mem->anon, r->mem->file, r->mem->vmrss, r->mem->heap, r->mem->index_bytes,
                    r->mem->index_events, r->mem->load1, m + 1 < s->n_minutes ? "," : "");
        }
        fprintf(f, "  ],\n  \"memory\": {\"warmup_t\": %.1f, \"end_t\": %.1f, \"rss_anon_growth\": %.0f, "
                   "\"tolerance\": %.0f, \"peak_rss_anon_after_warmup\": %" PRIu64 ", \"heap_growth\": %.0f,\n",
                warm->t, end->t, growth, tol, peak_anon, heap_growth);
        const mem_sample *pts[3] = {&s->samples[0], warm, end};
        const char *names[3] = {"start", "warmup", "end"};
        for (int i = 0; i < 3; i++)
            fprintf(f, "    \"%s\": {\"vmrss\": %" PRIu64 ", \"rss_anon\": %" PRIu64 ", \"rss_file\": %" PRIu64
                       ", \"heap\": %" PRIu64 "},\n",
                    names[i], pts[i]->vmrss, pts[i]->anon, pts[i]->file, pts[i]->heap);
        fprintf(f, "    \"samples\": [\n");
        for (size_t i = 0; i < s->n_samples; i++) {
            const mem_sample *m = &s->samples[i];
            fprintf(f, "      [%.1f, %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRId64
                       ", %.2f]%s\n",
                    m->t, m->vmrss, m->anon, m->file, m->heap, m->index_bytes, m->committed, m->load1,
                    i + 1 < s->n_samples ? "," : "");
        }
        fprintf(f, "    ],\n    \"sample_columns\": [\"t\", \"vmrss\", \"rss_anon\", \"rss_file\", \"heap\", "
                   "\"index_bytes\", \"appends\", \"load1\"]\n  },\n");
        fprintf(f, "  \"index\": {\"events_start\": %" PRIu64 ", \"events_end\": %" PRIu64 ", \"bytes_start\": %" PRIu64
                   ", \"bytes_end\": %" PRIu64 ", \"used_start\": %" PRIu64 ", \"used_end\": %" PRIu64
                   ", \"users_start\": %" PRIu64 ", \"users_end\": %" PRIu64 ", \"items_start\": %" PRIu64
                   ", \"items_end\": %" PRIu64 "},\n",
                st0.events, st1.events, st0.bytes, st1.bytes, st0.used_bytes, st1.used_bytes, st0.users, st1.users,
                st0.items, st1.items);
        fprintf(f, "  \"history\": {\"mean_start\": %.1f, \"max_start\": %" PRIu64 ", \"mean_end\": %.1f, "
                   "\"max_end\": %" PRIu64 "},\n", hist_mean0, hist_max0, hist_mean1, hist_max1);
        fprintf(f, "  \"load\": {\"start\": [%.2f, %.2f, %.2f], \"end\": [%.2f, %.2f, %.2f]}\n}\n", load0[0], load0[1],
                load0[2], load1[0], load1[1], load1[2]);
        if (fclose(f)) die("%s: write failed", c->json);
    }

    lsim_ctx_free(pr.c);
    lsim_index_reader_free(pr.rd);
    for (int t = 0; t < c->threads; t++) free(s->jobs[t].cand), free(s->jobs[t].scores), free(s->jobs[t].min);
    lsim_index_close(s->ix);
    lsim_engine_close(s->e);
    request_set_free(s->rs);
    free(s->ev_user), free(s->ev_item), free(s->ev_cat), free(s->samples), free(s->appends_per_minute), free(rows);
    if (!c->keep) {
        if (nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS)) fprintf(stderr, "soak: could not remove %s\n", s->dir);
    } else {
        fprintf(stderr, "soak: kept %s\n", s->dir);
    }
    return nf ? 1 : 0;
}
