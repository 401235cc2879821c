/*
 * engine_threads.c: the request engine under concurrency, as a plain
 * program (criterion's runner does not work under ThreadSanitizer); run by
 * `meson test` in the default suite and, built with -Db_sanitize=thread, by
 * tests/run_sanitizers.sh.
 *
 * On a small generated index, for SIM hard, SIM soft and DIN checkpoints
 * (random weights): every request is scored once by one thread; then 1, 2
 * and 4 threads, each with its own context, score them all again, several
 * times over, and every score must equal the one-thread score to the bit.
 * Last, an `lsim index append` runs in another process while 2 threads
 * score: no request fails, each sees the old index or the new one whole.
 * Exit status 0 when all of that holds; the first failure is printed.
 */
#include "esu/model.h"
#include "index/index_write.h"
#include "loaders/gen_log.h"
#include "lsim.h"

#include <cblas.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

enum { USERS = 40, CANDS = 60, ROUNDS = 3 };
static const int64_t END_TS = 1512345600;

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "engine_threads: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static const char *lsim_bin(void)
{
    const char *b = getenv("LSIM_BIN");
    if (!b) fail("LSIM_BIN is not set (meson test sets it)", NULL);
    return b;
}

/* Runs `lsim args...` with stderr to /dev/null; its exit status. */
static int run_lsim(char *const *args)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, lsim_bin(), &fa, NULL, args, environ), status = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (rc) fail("spawning lsim", NULL);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

typedef struct shared {
    lsim_engine *e;
    lsim_candidate cand[CANDS];
    float want[USERS][CANDS], after[USERS][CANDS];
    volatile int appending; /* 1: accept old or new scores */
} shared;

typedef struct job {
    pthread_t t;
    shared *s;
    int id;
    long requests, errors, wrong, old, new_;
} job;

static void user_name(char *b, size_t n, int u)
{
    snprintf(b, n, "%d", u + 1);
}

static void *worker(void *arg)
{
    job *j = arg;
    shared *s = j->s;
    lsim_ctx *c;
    if (lsim_ctx_new(s->e, &c)) {
        j->errors++;
        return NULL;
    }
    float got[CANDS];
    for (int r = 0; r < ROUNDS * USERS; r++) {
        int u = (r + j->id * 7) % USERS;
        char user[16];
        user_name(user, sizeof user, u);
        j->requests++;
        if (lsim_score(c, user, strlen(user), END_TS + 86400, s->cand, CANDS, got)) {
            j->errors++;
            fprintf(stderr, "engine_threads: thread %d: %s\n", j->id, lsim_ctx_errmsg(c));
            continue;
        }
        int is_old = !memcmp(got, s->want[u], sizeof got);
        int is_new = s->appending && !memcmp(got, s->after[u], sizeof got);
        if (!is_old && !is_new) j->wrong++;
        j->old += is_old, j->new_ += is_new && !is_old;
    }
    lsim_ctx_free(c);
    return NULL;
}

static void one_thread(shared *s, float out[USERS][CANDS])
{
    lsim_ctx *c;
    if (lsim_ctx_new(s->e, &c)) fail("lsim_ctx_new", NULL);
    for (int u = 0; u < USERS; u++) {
        char user[16];
        user_name(user, sizeof user, u);
        if (lsim_score(c, user, strlen(user), END_TS + 86400, s->cand, CANDS, out[u]))
            fail("one-thread score", lsim_ctx_errmsg(c));
    }
    lsim_ctx_free(c);
}

static void run_threads(shared *s, int n, const char *what)
{
    job jobs[8] = {0};
    for (int i = 0; i < n; i++) {
        jobs[i].s = s, jobs[i].id = i;
        if (pthread_create(&jobs[i].t, NULL, worker, &jobs[i])) fail("pthread_create", NULL);
    }
    long errors = 0, wrong = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(jobs[i].t, NULL);
        errors += jobs[i].errors, wrong += jobs[i].wrong;
    }
    if (errors || wrong) {
        char d[200];
        snprintf(d, sizeof d, "%d threads: %ld errors, %ld wrong scores", n, errors, wrong);
        fail(what, d);
    }
}

static const char *checkpoint(const char *dir, model_kind kind, uint32_t n_items, uint32_t n_cats)
{
    static char path[4][600];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s.safetensors", dir, model_kind_name(kind));
    model_spec spec;
    model_spec_default(&spec, kind, n_items, n_cats);
    model *m;
    char err[512];
    if (model_new(&m, &spec, 1, 50, 50)) fail("model_new", model_kind_name(kind));
    model_init(m, 11);
    const char *extra[] = {"lsim.short_len", "20", "lsim.long_max", "400", NULL};
    if (model_save(m, p, extra, err, sizeof err)) fail("model_save", err);
    model_free(m);
    return p;
}

int main(void)
{
    openblas_set_num_threads(1);
    char dir[] = "/tmp/lsim-engine-threads-XXXXXX", log[600], idx[600], add[600], err[512];
    if (!mkdtemp(dir)) fail("mkdtemp", NULL);
    snprintf(log, sizeof log, "%s/log.csv", dir);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(add, sizeof add, "%s/new.csv", dir);
    gen_log_params p;
    gen_log_params_default(&p);
    p.users = USERS;
    p.min_len = 40;
    p.max_len = 2000;
    p.days = 20;
    FILE *f = fopen(log, "w");
    gen_log_summary sum;
    if (!f || gen_log_write(f, &p, &sum, err, sizeof err)) fail("gen log", err);
    fclose(f);
    ubt_write_opts o;
    ubt_write_result res;
    const char *inputs[1] = {log};
    ubt_write_opts_default(&o);
    o.inputs = inputs;
    o.n_inputs = 1;
    o.mapsize = 1ULL << 30; /* a small map: ThreadSanitizer cannot map the default terabyte */
    if (ubt_build(idx, &o, &res, err, sizeof err)) fail("index build", err);
    lsim_index *ix;
    lsim_index_stats st;
    if (lsim_index_open(&ix, idx, err, sizeof err) || lsim_index_stats_get(ix, &st)) fail("index open", err);
    lsim_index_close(ix);
    static shared s;
    static char names[CANDS][24];
    for (int i = 0; i < CANDS; i++) { /* raw ids of the generated catalog are scrambled: take them from the log */
        snprintf(names[i], sizeof names[i], "%d", i);
        s.cand[i] = (lsim_candidate){names[i], strlen(names[i]), NULL, 0};
    }
    f = fopen(log, "r");
    char line[256];
    for (int i = 0; i < CANDS && fgets(line, sizeof line, f);) {
        char *a = strchr(line, ','), *b = a ? strchr(a + 1, ',') : NULL;
        if (!a || !b) continue;
        *b = 0;
        snprintf(names[i], sizeof names[i], "%s", a + 1);
        s.cand[i].item_len = strlen(names[i]);
        for (int t = 0; t < 37 && fgets(line, sizeof line, f); t++) {} /* spread over the log */
        i++;
    }
    fclose(f);
    model_kind kinds[] = {MODEL_SIM_HARD, MODEL_SIM_SOFT, MODEL_DIN};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *ck = checkpoint(dir, kinds[k], (uint32_t)st.items, (uint32_t)st.categories);
        if (lsim_engine_open(&s.e, idx, ck, NULL, err, sizeof err)) fail("engine open", err);
        one_thread(&s, s.want);
        for (int n = 1; n <= 4; n *= 2) run_threads(&s, n, model_kind_name(kinds[k]));
        lsim_engine_close(s.e);
    }
    /* an append in another process while 2 threads score (SIM hard) */
    f = fopen(add, "w");
    for (int u = 1; u <= USERS; u++)
        for (int i = 0; i < 30; i++) fprintf(f, "%d,%s,%d,pv,%lld\n", u, names[(u + i) % CANDS], 1 + i % 4,
                                             (long long)(END_TS + u * 60 + i * 300));
    fclose(f);
    const char *ck = checkpoint(dir, MODEL_SIM_HARD, (uint32_t)st.items, (uint32_t)st.categories);
    if (lsim_engine_open(&s.e, idx, ck, NULL, err, sizeof err)) fail("engine open", err);
    one_thread(&s, s.want);
    char copy[700], cmd[1600];
    snprintf(copy, sizeof copy, "%s/copy", dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", idx, copy);
    if (system(cmd)) fail("cp", NULL);
    char *const args[] = {(char *)lsim_bin(), "index", "append", "--map-size", "1", "--index", copy, "--input", add,
                          NULL};
    if (run_lsim(args)) fail("append to the copy", NULL);
    lsim_engine *after;
    if (lsim_engine_open(&after, copy, ck, NULL, err, sizeof err)) fail("engine open (copy)", err);
    lsim_engine *keep = s.e;
    s.e = after;
    one_thread(&s, s.after);
    lsim_engine_close(after);
    s.e = keep;
    s.appending = 1;
    char *const argv[] = {(char *)lsim_bin(), "index", "append", "--map-size", "1", "--index", idx, "--input", add,
                          NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    if (posix_spawn(&pid, lsim_bin(), &fa, NULL, argv, environ)) fail("spawn lsim index append", NULL);
    posix_spawn_file_actions_destroy(&fa);
    run_threads(&s, 2, "scoring during an append");
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) fail("lsim index append failed", NULL);
    s.appending = 0;
    memcpy(s.want, s.after, sizeof s.want); /* afterwards: only the new scores */
    run_threads(&s, 2, "scoring after the append");
    lsim_engine_close(s.e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fail("rm", NULL);
    printf("engine_threads: ok (SIM hard, SIM soft, DIN at 1, 2, 4 threads; an append while 2 threads scored)\n");
    return 0;
}
