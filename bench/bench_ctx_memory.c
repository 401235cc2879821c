/*
 * bench_ctx_memory.c: what one scoring context (lsim_ctx_new) costs, per
 * model kind: its model's workspace in bytes, and the process's RssAnon
 * growth per context. docs/BENCHMARKS.md, "Memory per scoring context",
 * records a run.
 *
 *   bench_ctx_memory [--candidates 1000,200] [--contexts 2] [--kinds din,avgpool-din,...]
 *
 * Setup, in a temporary folder: a generated log (60 users, up to 3,000
 * events each), its index, and for each model kind a checkpoint of the
 * kind's default spec (random weights) with lsim train's default sampling
 * keys (lsim.short_len 50, lsim.long_max 1000): the engine then opens with
 * its default settings but max_candidates. Each (kind, max_candidates) runs
 * in a child process of its own (this program again, --child), so that one
 * configuration's freed memory does not count in the next one's RssAnon:
 *   engine open; RssAnon; `contexts` x lsim_ctx_new, RssAnon; one request
 *   of max_candidates candidates (distinct catalog items, the heaviest
 *   user) in each context, RssAnon; then, for the comparison, the
 *   workspace the same model would have in the training layout (with every
 *   backward buffer): model_new_ex with the context's sizes.
 * Columns (MiB = 2^20 bytes):
 *   ws      the context's model workspace (model_memory_get)
 *   ws_train the training layout's workspace at the same sizes (what a
 *           context carried before forward-only models)
 *   new     RssAnon growth per lsim_ctx_new (the workspace is zeroed when
 *           carved, so it is resident at once)
 *   scored  RssAnon growth per context after one request in each (adds the
 *           index reader's buffers, the user's events, OpenBLAS's buffers)
 * Exit 1 on any failure.
 */
#include "bench/bench_timing.h"
#include "engine/engine_internal.h"
#include "index/index_internal.h"
#include "index/index_write.h"
#include "loaders/gen_log.h"
#include "lsim.h"

#include <cblas.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define die(m) bench_die("bench_ctx_memory", m)
#define MAX_CONTEXTS 16
static const double MIB = 1048576.0;

/* RssAnon of this process, bytes. */
static double rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kb = atof(line + 8);
    if (f) fclose(f);
    if (kb < 0) die("no RssAnon in /proc/self/status");
    return kb * 1024.0;
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *f)
{
    (void)s, (void)flag, (void)f;
    return remove(p);
}

/* The log, the index, one checkpoint per kind. */
static void setup(const char *dir, const char *kinds)
{
    char log[600], idx[600], err[LSIM_ERRLEN];
    snprintf(log, sizeof log, "%s/log.csv", dir);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    gen_log_params p;
    gen_log_params_default(&p);
    p.users = 60;
    p.min_len = 40;
    p.max_len = 3000;
    p.days = 30;
    FILE *f = fopen(log, "w");
    if (!f) die("cannot write the log");
    gen_log_summary sum;
    if (gen_log_write(f, &p, &sum, err, sizeof err)) die(err);
    if (fclose(f)) die("writing the log failed");
    ubt_write_opts o;
    ubt_write_result res;
    const char *inputs[1] = {log};
    ubt_write_opts_default(&o);
    o.inputs = inputs;
    o.n_inputs = 1;
    if (ubt_build(idx, &o, &res, err, sizeof err)) die(err);
    lsim_index *ix;
    if (lsim_index_open(&ix, idx, err, sizeof err)) die(err);
    lsim_index_stats st;
    if (lsim_index_stats_get(ix, &st)) die("index stats");
    lsim_index_close(ix);
    char list[256];
    snprintf(list, sizeof list, "%s", kinds);
    for (char *k = strtok(list, ","); k; k = strtok(NULL, ",")) {
        model_kind kind;
        if (model_kind_parse(k, &kind)) die("unknown model kind");
        model_spec spec;
        model_spec_default(&spec, kind, (uint32_t)st.items, (uint32_t)st.categories);
        model *m;
        if (model_new(&m, &spec, 1, 50, kind == MODEL_AVGPOOL_DIN ? 1000 : spec.topk)) die("model_new");
        model_init(m, 7);
        char path[700];
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, k);
        const char *extra[] = {"lsim.short_len", "50", "lsim.long_max", "1000", NULL};
        if (model_save(m, path, extra, err, sizeof err)) die(err);
        model_free(m);
    }
}

/* One configuration, in this process: prints "kind n ws ws_train new scored" (bytes). */
static int child(const char *dir, const char *kind, unsigned n, int contexts)
{
    openblas_set_num_threads(1);
    char idx[600], ckpt[700], err[LSIM_ERRLEN];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(ckpt, sizeof ckpt, "%s/%s.safetensors", dir, kind);
    lsim_settings set;
    lsim_settings_default(&set);
    set.max_candidates = n;
    lsim_engine *e;
    if (lsim_engine_open(&e, idx, ckpt, &set, err, sizeof err)) die(err);
    lsim_ctx *c[MAX_CONTEXTS];
    double r0 = rss_anon();
    for (int i = 0; i < contexts; i++)
        if (lsim_ctx_new(e, &c[i])) die("lsim_ctx_new");
    double r1 = rss_anon();
    /* one request in each: n distinct items, the user with the most events (gen log's user 1) */
    lsim_index *ix = e->ix;
    uint32_t n_items = vocab_size(ix->voc[IX_ITEM]);
    lsim_candidate *cand = calloc(n, sizeof *cand);
    float *scores = malloc(n * sizeof *scores);
    if (!cand || !scores) die("out of memory");
    for (unsigned b = 0; b < n; b++) {
        const char *s = vocab_str(ix->voc[IX_ITEM], (uint32_t)((uint64_t)b * 7919 % n_items));
        cand[b] = (lsim_candidate){s, strlen(s), NULL, 0};
    }
    for (int i = 0; i < contexts; i++)
        if (lsim_score(c[i], "1", 1, e->last_event + 1, cand, n, scores)) die(lsim_ctx_errmsg(c[i]));
    double r2 = rss_anon();
    model_memory mm;
    model_memory_get(c[0]->m, &mm);
    /* the alternative: the training layout at the context's sizes */
    model *full;
    unsigned flags = e->long_kind == ENGINE_LONG_AVGPOOL ? MODEL_LONG_SHARED : 0;
    if (model_new_ex(&full, &e->spec, n, e->set.short_len, e->long_width ? e->long_width : 1, flags))
        die("model_new_ex");
    model_memory fm;
    model_memory_get(full, &fm);
    model_free(full);
    printf("%s %u %zu %zu %.0f %.0f\n", kind, n, mm.workspace, fm.workspace, (r1 - r0) / contexts,
           (r2 - r0) / contexts);
    for (int i = 0; i < contexts; i++) lsim_ctx_free(c[i]);
    free(cand);
    free(scores);
    lsim_engine_close(e);
    return 0;
}

int main(int argc, char **argv)
{
    const char *kinds = "din,avgpool-din,dien,dsin,sim-hard,sim-soft", *cands = "1000,200";
    int contexts = 2;
    if (argc == 6 && !strcmp(argv[1], "--child"))
        return child(argv[2], argv[3], (unsigned)atoi(argv[4]), atoi(argv[5]));
    static const struct option opts[] = {
        {"candidates", 1, 0, 'c'}, {"contexts", 1, 0, 'n'}, {"kinds", 1, 0, 'k'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c': cands = optarg; break;
        case 'n': contexts = atoi(optarg); break;
        case 'k': kinds = optarg; break;
        case 'h':
            printf("usage: bench_ctx_memory [--candidates 1000,200] [--contexts 2] [--kinds din,avgpool-din,...]\n");
            return 0;
        default: return 2;
        }
    }
    if (contexts < 1 || contexts > MAX_CONTEXTS || strlen(kinds) > 200 || strlen(cands) > 200) {
        fprintf(stderr, "bench_ctx_memory: --contexts 1..%d, short --kinds and --candidates lists\n", MAX_CONTEXTS);
        return 2;
    }
    char dir[] = "/tmp/lsim-ctxmem-XXXXXX", self[4096];
    if (!mkdtemp(dir)) die("mkdtemp");
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) die("readlink /proc/self/exe");
    self[sl] = 0;
    setup(dir, kinds);
    printf("%-12s %6s %10s %10s %8s %10s %10s\n", "model", "cands", "ws MiB", "ws_train", "saved", "new MiB",
           "scored MiB");
    int failed = 0;
    char klist[256], clist[256];
    snprintf(klist, sizeof klist, "%s", kinds);
    for (char *ks = NULL, *k = strtok_r(klist, ",", &ks); k; k = strtok_r(NULL, ",", &ks)) {
        snprintf(clist, sizeof clist, "%s", cands);
        for (char *cs = NULL, *c = strtok_r(clist, ",", &cs); c; c = strtok_r(NULL, ",", &cs)) {
            char cmd[8192], line[512];
            snprintf(cmd, sizeof cmd, "'%s' --child '%s' '%s' %d %d", self, dir, k, atoi(c), contexts);
            FILE *p = popen(cmd, "r");
            char name[64];
            unsigned n;
            size_t ws, wt;
            double rn, rs;
            if (!p || !fgets(line, sizeof line, p) ||
                sscanf(line, "%63s %u %zu %zu %lf %lf", name, &n, &ws, &wt, &rn, &rs) != 6) {
                fprintf(stderr, "bench_ctx_memory: %s at %s candidates failed\n", k, c);
                failed = 1;
            } else {
                printf("%-12s %6u %10.1f %10.1f %7.0f%% %10.1f %10.1f\n", name, n, ws / MIB, wt / MIB,
                       wt ? 100.0 * (1.0 - (double)ws / (double)wt) : 0.0, rn / MIB, rs / MIB);
            }
            if (p && pclose(p)) failed = 1;
            fflush(stdout);
        }
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
