/*
 * replay_report.h: what `lsim replay` reports for one checkpoint: latency
 * percentiles, throughput and ranking quality (tools only).
 *
 * Percentiles are nearest-rank over the requests scored (refused ones left
 * out): the q-quantile of n sorted latencies is the ceil(q n)-th smallest,
 * so anyone can recompute them from the per-request latencies that --json
 * writes. QPS = requests / wall time of the measured run. Quality: AUC over
 * every candidate of the scored requests, GAUC grouped by the requests'
 * users (train/metrics.h), logloss of the probabilities (clamped to
 * [1e-7, 1 - 1e-7]).
 */
#ifndef LSIM_REPLAY_REPORT_H
#define LSIM_REPLAY_REPORT_H

#include "loaders/request_log.h"
#include "tools/replay_run.h"

#include <stddef.h>
#include <stdio.h>

typedef struct replay_stats {
    size_t requests, candidates, errors; /* scored requests and their candidates; refused requests */
    double wall_s, qps, cands_per_s;
    double p50, p90, p99, p999, max, mean; /* ms */
    double auc, gauc, logloss;
    size_t positives, gauc_users;
} replay_stats;

/* The nearest-rank q-quantile of sorted[0..n), n > 0. */
double replay_quantile(const double *sorted, size_t n, double q);

/* 0, or LSIM_E_NOMEM. */
int replay_stats_compute(const request_set *rs, const replay_result *r, replay_stats *st);

/* One model's object of the --json output (docs/FORMATS.md, "Replay output"). */
void replay_json_model(FILE *f, const char *path, const char *name, const char *kind, const replay_stats *st,
                       const request_set *rs, const replay_result *r);

#endif
