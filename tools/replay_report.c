/*
 * replay_report.c: see replay_report.h.
 */
#include "tools/replay_report.h"

#include "lsim.h"
#include "tools/cli_util.h"
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double replay_quantile(const double *sorted, size_t n, double q)
{
    double r = ceil(q * (double)n);
    size_t k = r < 1 ? 1 : (size_t)r;
    return sorted[(k > n ? n : k) - 1];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int replay_stats_compute(const request_set *rs, const replay_result *r, replay_stats *st)
{
    memset(st, 0, sizeof *st);
    size_t nr = request_set_size(rs), nc = request_set_candidates(rs);
    double *lat = malloc((nr ? nr : 1) * sizeof *lat);
    metric_row *rows = malloc((nc ? nc : 1) * sizeof *rows);
    if (!lat || !rows) {
        free(lat);
        free(rows);
        return LSIM_E_NOMEM;
    }
    size_t nl = 0, nm = 0, k = 0;
    double sum = 0;
    for (size_t i = 0; i < nr; i++) {
        request_view v;
        request_set_get(rs, i, &v);
        const float *s = r->scores + k;
        k += v.n;
        if (isnan(s[0])) { /* refused */
            st->errors++;
            continue;
        }
        lat[nl++] = r->latency_ms[i];
        sum += r->latency_ms[i];
        st->candidates += v.n;
        for (size_t j = 0; j < v.n; j++) {
            double p = s[j] < 1e-7f ? 1e-7 : s[j] > 1 - 1e-7f ? 1 - 1e-7 : s[j];
            rows[nm++] = (metric_row){s[j], log(p) - log1p(-p), v.user_no, v.label[j]};
        }
    }
    st->requests = nl;
    st->wall_s = r->wall_s;
    st->qps = r->wall_s > 0 ? (double)nl / r->wall_s : NAN;
    st->cands_per_s = r->wall_s > 0 ? (double)st->candidates / r->wall_s : NAN;
    st->auc = st->gauc = st->logloss = NAN;
    st->p50 = st->p90 = st->p99 = st->p999 = st->max = st->mean = NAN;
    if (nl) {
        qsort(lat, nl, sizeof *lat, cmp_double);
        st->p50 = replay_quantile(lat, nl, 0.5);
        st->p90 = replay_quantile(lat, nl, 0.9);
        st->p99 = replay_quantile(lat, nl, 0.99);
        st->p999 = replay_quantile(lat, nl, 0.999);
        st->max = lat[nl - 1];
        st->mean = sum / (double)nl;
        metrics m;
        metrics_compute(rows, nm, &m);
        st->auc = m.auc;
        st->gauc = m.gauc;
        st->logloss = m.logloss;
        st->positives = m.positives;
        st->gauc_users = m.gauc_users;
    }
    free(lat);
    free(rows);
    return 0;
}

static void num(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, ", \"%s\": %.10g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

void replay_json_model(FILE *f, const char *path, const char *name, const char *kind, const replay_stats *st,
                       const request_set *rs, const replay_result *r)
{
    fputs("{\"model\": ", f);
    cli_json_string(f, path);
    fputs(", \"name\": ", f);
    cli_json_string(f, name);
    fputs(", \"kind\": ", f);
    cli_json_string(f, kind);
    fprintf(f, ", \"requests\": %zu, \"candidates\": %zu, \"errors\": %zu", st->requests, st->candidates, st->errors);
    num(f, "wall_s", st->wall_s);
    num(f, "qps", st->qps);
    num(f, "candidates_per_s", st->cands_per_s);
    num(f, "p50_ms", st->p50);
    num(f, "p90_ms", st->p90);
    num(f, "p99_ms", st->p99);
    num(f, "p999_ms", st->p999);
    num(f, "max_ms", st->max);
    num(f, "mean_ms", st->mean);
    num(f, "auc", st->auc);
    num(f, "gauc", st->gauc);
    num(f, "logloss", st->logloss);
    fprintf(f, ", \"positives\": %zu, \"gauc_users\": %zu, \"latency_ms\": [", st->positives, st->gauc_users);
    for (size_t i = 0, k = 0; i < request_set_size(rs); i++) {
        request_view v;
        request_set_get(rs, i, &v);
        if (i) fputs(", ", f);
        if (isnan(r->scores[k])) fputs("null", f); /* refused */
        else fprintf(f, "%.6f", r->latency_ms[i]);
        k += v.n;
    }
    fputs("]}", f);
}
