/*
 * cmd_replay.c: `lsim replay`: logged requests through the embedded API,
 * one checkpoint after another; latency, throughput and ranking quality as
 * a table, JSON and pictures. The running is replay_run.c, the numbers
 * replay_report.c, the pictures svg_plot.c.
 */
#include "esu/model.h"
#include "index/index_internal.h"
#include "loaders/request_log.h"
#include "storage/error_detail.h"
#include "tools/cli_util.h"
#include "tools/commands.h"
#include "tools/replay_report.h"
#include "tools/replay_run.h"
#include "tools/svg_plot.h"
#include "train/evaluate.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "usage: lsim replay --index DIR --model CKPT[,CKPT...] --requests FILE [options]\n"
    "Replays a request log (`lsim gen requests`, docs/FORMATS.md) through lsim_score, the\n"
    "embedded API, for each checkpoint in turn, and reports per model: requests/s,\n"
    "candidates/s, latency p50/p90/p99/p99.9/max (ms), AUC, GAUC and logloss of the\n"
    "scores against the logged labels.\n"
    "  --index DIR        the behavior index the requests read\n"
    "  --model LIST       checkpoints, comma-separated\n"
    "  --requests FILE    the request log\n"
    "  --threads N        threads scoring at once, each with its own context (default 1)\n"
    "  --warmup N         requests scored before the measurement, not counted (default 100)\n"
    "  --rate QPS         open loop: a request is due every 1/QPS s whatever the engine does,\n"
    "                     and its latency counts from when it was due (default: closed loop,\n"
    "                     each thread sends the next request when the last one returns)\n"
    "  --soft-search M    SIM soft's search: exact (default), faiss or approx\n"
    "  --uic M            MIMN's user states: auto (default: from the index's User Interest Center\n"
    "                     when it holds this checkpoint's, else folded from every event per\n"
    "                     request), off (always folded) or require (refuse without one)\n"
    "  --json OUT         everything as JSON, with each request's latency (docs/FORMATS.md)\n"
    "  --plot DIR         pictures (SVG): latency_cdf.svg, quality.svg, latency_vs_history.svg\n" CLI_REQUEST_OPTS_HELP;

typedef struct model_run {
    const char *path;
    char name[128], kind[32];
    replay_stats st;
    replay_result res;
} model_run;

typedef struct progress_ctx {
    cli_progress pr;
    const char *name;
} progress_ctx;

/* One line each at the measured run's start and end, as they happen: an outside
 * observer (bench/bench_replay.py) times the run by its own clock between them. */
static void on_measuring(void *ctx, int begin)
{
    progress_ctx *p = ctx;
    cli_progress_done(&p->pr);
    fprintf(stderr, "lsim replay: %s: %s\n", p->name, begin ? "measuring" : "measured");
    fflush(stderr);
}

static void on_progress(void *ctx, size_t done, size_t total)
{
    progress_ctx *p = ctx;
    cli_progress_line(&p->pr, "lsim replay: %s: %zu / %zu requests", p->name, done, total);
}

/* Each request's history: the user's events before its time (0 for an unknown user). */
static int history_lengths(const char *dir, const request_set *rs, double *out, char *err, size_t errlen)
{
    lsim_index *ix;
    int rc = lsim_index_open(&ix, dir, err, errlen);
    if (rc) return rc;
    lsim_index_reader *rd = NULL;
    ubt_event *ev = NULL;
    size_t cap = 0, n = 0;
    uint32_t cached = UINT32_MAX;
    if ((rc = lsim_index_reader_new(ix, &rd))) err_set(err, errlen, rc, "%s: cannot open a reader", dir);
    for (size_t i = 0; !rc && i < request_set_size(rs); i++) {
        request_view v;
        request_set_get(rs, i, &v);
        uint32_t uid;
        pthread_rwlock_rdlock(&ix->lock);
        int known = vocab_find(ix->voc[IX_USER], v.user, v.user_len, &uid) == 0;
        pthread_rwlock_unlock(&ix->lock);
        if (!known) {
            out[i] = 0;
            continue;
        }
        if (uid != cached) {
            if ((rc = index_user_events(rd, uid, INT64_MAX, &ev, &cap, &n))) {
                err_set(err, errlen, rc, "%s: %s", dir, lsim_index_reader_errmsg(rd));
                break;
            }
            cached = uid;
        }
        out[i] = (double)ubt_events_before(ev, n, v.time);
    }
    free(ev);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int write_plots(const char *dir, model_run *mr, size_t nm, const request_set *rs, const double *hist,
                       const char *mode)
{
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "lsim replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    size_t nr = request_set_size(rs);
    char path[4096], err[LSIM_ERRLEN], title[256];
    int rc = 0;
    /* 1. the latency CDF, one line per model */
    svg_series *s = calloc(nm, sizeof *s);
    double *xs = malloc(nm * (nr ? nr : 1) * sizeof *xs), *yall = malloc(nm * (nr ? nr : 1) * sizeof *yall);
    if (!s || !xs || !yall) rc = -1;
    for (size_t k = 0; !rc && k < nm; k++) {
        double *x = xs + k * nr, *ys = yall + k * nr;
        size_t m = 0;
        for (size_t i = 0; i < nr; i++)
            if (isfinite(mr[k].res.latency_ms[i])) x[m++] = mr[k].res.latency_ms[i];
        qsort(x, m, sizeof *x, cmp_double);
        for (size_t i = 0; i < m; i++) ys[i] = 100.0 * (double)(i + 1) / (double)m;
        s[k] = (svg_series){mr[k].name, x, ys, m};
    }
    snprintf(title, sizeof title, "Request latency, cumulative (%zu requests, %s)", nr, mode);
    snprintf(path, sizeof path, "%s/latency_cdf.svg", dir);
    if (!rc && svg_xy_chart(path, title, "latency per request (ms, log scale)", "requests at or below (%)", 1, 0, s,
                            nm, SVG_LINES, err, sizeof err)) {
        fprintf(stderr, "lsim replay: %s\n", err);
        rc = -1;
    }
    /* 2. AUC and GAUC per model */
    const char **groups = calloc(nm, sizeof *groups);
    double *vals = malloc(2 * nm * sizeof *vals), lo = 1, hi = 0;
    if (!groups || !vals) rc = -1;
    for (size_t k = 0; !rc && k < nm; k++) {
        groups[k] = mr[k].name;
        vals[2 * k] = mr[k].st.auc;
        vals[2 * k + 1] = mr[k].st.gauc;
        for (int j = 0; j < 2; j++)
            if (isfinite(vals[2 * k + j])) lo = fmin(lo, vals[2 * k + j]), hi = fmax(hi, vals[2 * k + j]);
    }
    if (!rc) {
        double base = lo <= hi ? fmax(0, floor((lo - 0.05) * 20) / 20) : 0; /* a 0.05 step below the lowest */
        const char *bars[2] = {"AUC", "GAUC"};
        snprintf(title, sizeof title, "Ranking quality on the replayed requests (y axis from %.2f)", base);
        snprintf(path, sizeof path, "%s/quality.svg", dir);
        if (svg_bar_chart(path, title, "AUC / GAUC (1 = perfect ranking)", groups, nm, bars, 2, vals, base, 1.0, err,
                          sizeof err)) {
            fprintf(stderr, "lsim replay: %s\n", err);
            rc = -1;
        }
    }
    /* 3. latency against the user's history length */
    for (size_t k = 0; !rc && k < nm; k++) s[k] = (svg_series){mr[k].name, hist, mr[k].res.latency_ms, nr};
    snprintf(title, sizeof title, "Latency against the user's history (%s)", mode);
    snprintf(path, sizeof path, "%s/latency_vs_history.svg", dir);
    if (!rc && svg_xy_chart(path, title, "behaviors before the request (log scale; 0 not shown)",
                            "latency per request (ms, log scale)", 1, 1, s, nm, SVG_POINTS, err, sizeof err)) {
        fprintf(stderr, "lsim replay: %s\n", err);
        rc = -1;
    }
    free(s);
    free(xs);
    free(yall);
    free(groups);
    free(vals);
    return rc;
}

static void model_name(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

int cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, 0, 'i'},     {"model", required_argument, 0, 'm'},
        {"requests", required_argument, 0, 'R'},  {"threads", required_argument, 0, 't'},
        {"warmup", required_argument, 0, 'w'},    {"rate", required_argument, 0, 'r'},
        {"soft-search", required_argument, 0, 'S'}, {"json", required_argument, 0, 'J'},
        {"plot", required_argument, 0, 'P'},      {"format", required_argument, 0, 'F'},
        {"columns", required_argument, 0, 'C'},   {"delimiter", required_argument, 0, 'D'},
        {"header", no_argument, 0, 'H'},          {"strict", no_argument, 0, 's'},
        {"uic", required_argument, 0, 'U'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    const char *dir = NULL, *models = NULL, *json = NULL, *plot = NULL;
    cli_request_opts ro = {0};
    replay_opts o = {.threads = 1, .warmup = 100};
    lsim_settings set;
    lsim_settings_default(&set);
    int64_t v;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': dir = optarg; break;
        case 'm': models = optarg; break;
        case 'R': ro.path = optarg; break;
        case 't': if (cli_parse_i64("--threads", optarg, 1, 1024, &v)) return EXIT_USAGE; o.threads = (int)v; break;
        case 'w': if (cli_parse_i64("--warmup", optarg, 0, INT64_MAX, &v)) return EXIT_USAGE; o.warmup = (size_t)v; break;
        case 'r': if (cli_parse_double("--rate", optarg, 1e-6, 1e9, &o.rate)) return EXIT_USAGE; break;
        case 'S':
            if (!strcmp(optarg, "exact")) set.soft_search = LSIM_SOFT_EXACT;
            else if (!strcmp(optarg, "faiss")) set.soft_search = LSIM_SOFT_FAISS;
            else if (!strcmp(optarg, "approx")) set.soft_search = LSIM_SOFT_APPROX;
            else return cli_usage_error("replay", "--soft-search wants exact, faiss or approx");
            break;
        case 'U':
            if (!strcmp(optarg, "auto")) set.uic = LSIM_UIC_AUTO;
            else if (!strcmp(optarg, "off")) set.uic = LSIM_UIC_OFF;
            else if (!strcmp(optarg, "require")) set.uic = LSIM_UIC_REQUIRE;
            else return cli_usage_error("replay", "--uic wants auto, off or require");
            break;
        case 'J': json = optarg; break;
        case 'P': plot = optarg; break;
        case 'F': ro.format = optarg; break;
        case 'C': ro.columns = optarg; break;
        case 'D': ro.delimiter = optarg; break;
        case 'H': ro.header = 1; break;
        case 's': ro.strict = 1; break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return cli_usage_error("replay", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("replay", "unexpected argument '%s'", argv[optind]);
    if (!dir || !models || !ro.path) return cli_usage_error("replay", "--index DIR, --model CKPT and --requests FILE are required");
    request_set *rs = NULL;
    int usage, rc = cli_load_requests("replay", &ro, 0, &rs, &usage);
    if (rc) return usage ? EXIT_USAGE : EXIT_FAIL;
    size_t nr = request_set_size(rs), nm = 1;
    set.max_candidates = (uint32_t)request_set_max_n(rs);
    for (const char *p = models; *p; p++) nm += *p == ',';
    char *list = strdup(models);
    model_run *mr = calloc(nm, sizeof *mr);
    double *hist = malloc((nr ? nr : 1) * sizeof *hist);
    char err[LSIM_ERRLEN];
    if (!list || !mr || !hist) {
        fprintf(stderr, "lsim replay: out of memory\n");
        rc = LSIM_E_NOMEM;
    }
    size_t k = 0;
    for (char *save = NULL, *tok = list ? strtok_r(list, ",", &save) : NULL; tok && k < nm;
         tok = strtok_r(NULL, ",", &save))
        mr[k++].path = tok;
    nm = k;
    if (!rc && !nm) rc = cli_usage_error("replay", "--model: no checkpoint given");
    if (!rc && (rc = history_lengths(dir, rs, hist, err, sizeof err))) fprintf(stderr, "lsim replay: %s\n", err);
    char mode[96];
    if (o.rate > 0) snprintf(mode, sizeof mode, "open loop at %g requests/s, %d threads", o.rate, o.threads);
    else snprintf(mode, sizeof mode, "closed loop, %d thread%s", o.threads, o.threads > 1 ? "s" : "");
    if (!rc)
        fprintf(stderr, "lsim replay: %zu requests (%zu candidates, %zu users) from %s; %s; %zu warm-up requests\n", nr,
                request_set_candidates(rs), request_set_users(rs), ro.path, mode, o.warmup < nr ? o.warmup : nr);
    for (k = 0; !rc && k < nm; k++) {
        model_run *m = &mr[k];
        model_name(m->path, m->name, sizeof m->name);
        sample_config sc;
        sample_config_default(&sc);
        model_spec spec;
        if ((rc = eval_samples_from_checkpoint(&sc, m->path, &spec, err, sizeof err))) {
            fprintf(stderr, "lsim replay: %s\n", err);
            break;
        }
        lsim_engine *e;
        if ((rc = lsim_engine_open(&e, dir, m->path, &set, err, sizeof err))) {
            fprintf(stderr, "lsim replay: %s\n", err);
            break;
        }
        snprintf(m->kind, sizeof m->kind, "%s%s%s", model_kind_name(spec.kind),
                 (spec.kind == MODEL_SIM_HARD || spec.kind == MODEL_SIM_SOFT) && spec.d_time ? "+time" : "",
                 lsim_engine_uses_uic(e) ? "+uic" : "");
        progress_ctx pc = {.name = m->name};
        cli_progress_init(&pc.pr);
        o.progress = on_progress;
        o.measuring = on_measuring;
        o.ctx = &pc;
        rc = replay_run(e, rs, &o, &m->res, err, sizeof err);
        cli_progress_done(&pc.pr);
        lsim_engine_close(e);
        if (rc) {
            fprintf(stderr, "lsim replay: %s: %s\n", m->path, err);
            break;
        }
        if ((rc = replay_stats_compute(rs, &m->res, &m->st))) {
            fprintf(stderr, "lsim replay: out of memory\n");
            break;
        }
        if (m->res.errors)
            fprintf(stderr, "lsim replay: %s: %zu requests refused; the first: %s\n", m->name, m->res.errors,
                    m->res.first_error);
    }
    if (!rc) {
        printf("%-16s %-14s %9s %10s %8s %8s %8s %9s %8s %7s %7s %8s %6s\n", "model", "kind", "req/s", "cand/s",
               "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "AUC", "GAUC", "logloss", "errors");
        for (k = 0; k < nm; k++) {
            const replay_stats *s = &mr[k].st;
            printf("%-16s %-14s %9.1f %10.0f %8.3f %8.3f %8.3f %9.3f %8.3f %7.4f %7.4f %8.4f %6zu\n", mr[k].name,
                   mr[k].kind, s->qps, s->cands_per_s, s->p50, s->p90, s->p99, s->p999, s->max, s->auc, s->gauc,
                   s->logloss, s->errors);
        }
        printf("(%zu requests, %s; AUC over all candidates, GAUC by user)\n", nr, mode);
    }
    if (!rc && json) {
        FILE *f = strcmp(json, "-") ? fopen(json, "w") : stdout;
        if (!f) {
            fprintf(stderr, "lsim replay: %s: %s\n", json, strerror(errno));
            rc = LSIM_E_IO;
        } else {
            fputs("{\"requests_file\": ", f);
            cli_json_string(f, ro.path);
            fprintf(f, ", \"requests\": %zu, \"candidates\": %zu, \"users\": %zu, \"threads\": %d, \"mode\": \"%s\", "
                       "\"rate\": %g, \"warmup\": %zu, \"history_len\": [",
                    nr, request_set_candidates(rs), request_set_users(rs), o.threads, o.rate > 0 ? "open" : "closed",
                    o.rate, o.warmup < nr ? o.warmup : nr);
            for (size_t i = 0; i < nr; i++) fprintf(f, i ? ", %.0f" : "%.0f", hist[i]);
            fputs("], \"models\": [", f);
            for (k = 0; k < nm; k++) {
                if (k) fputs(", ", f);
                replay_json_model(f, mr[k].path, mr[k].name, mr[k].kind, &mr[k].st, rs, &mr[k].res);
            }
            fputs("]}\n", f);
            int bad = f == stdout ? fflush(f) != 0 : fclose(f) != 0;
            if (bad) {
                fprintf(stderr, "lsim replay: %s: write failed\n", json);
                rc = LSIM_E_IO;
            }
        }
    }
    if (!rc && plot) {
        if (write_plots(plot, mr, nm, rs, hist, mode)) rc = LSIM_E_IO;
        else fprintf(stderr, "lsim replay: pictures in %s/: latency_cdf.svg, quality.svg, latency_vs_history.svg\n",
                     plot);
    }
    for (k = 0; mr && k < nm; k++) replay_result_free(&mr[k].res);
    free(mr);
    free(list);
    free(hist);
    request_set_free(rs);
    return rc == EXIT_USAGE ? EXIT_USAGE : rc ? EXIT_FAIL : EXIT_OK;
}
