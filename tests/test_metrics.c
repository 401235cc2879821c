/*
 * test_metrics.c: train/metrics.c against hand-worked cases and a
 * brute-force count of every (positive, negative) pair.
 */
#include "tests/test_util.h"
#include "train/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static double brute_auc(const metric_row *r, size_t n, int by_user, uint32_t user)
{
    double num = 0, pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (by_user && (r[i].user != user || r[j].user != user)) continue;
            if (!(r[i].label > 0.5f && r[j].label < 0.5f)) continue;
            pairs++;
            num += r[i].score > r[j].score ? 1.0 : r[i].score == r[j].score ? 0.5 : 0.0;
        }
    return pairs ? num / pairs : NAN;
}

Test(metrics, hand_worked_cases)
{
    /* scikit-learn's roc_auc_score example: 0.75 */
    metric_row a[4] = {{0.1, 0.1, 1, 0}, {0.4, 0.4, 1, 0}, {0.35, 0.35, 1, 1}, {0.8, 0.8, 1, 1}};
    metrics m;
    metrics_compute(a, 4, &m);
    cr_expect_float_eq(m.auc, 0.75, 1e-12);
    cr_expect_float_eq(m.gauc, 0.75, 1e-12);
    /* ties count one half: all equal scores give 0.5 */
    metric_row t[3] = {{2, 2, 0, 1}, {2, 2, 0, 0}, {2, 2, 0, 0}};
    metrics_compute(t, 3, &m);
    cr_expect_float_eq(m.auc, 0.5, 1e-12);
    /* logloss: -log(sigmoid(z)) for y = 1, -log(1 - sigmoid(z)) for y = 0 */
    metric_row l[2] = {{0, 0.0, 0, 1}, {0, 2.0, 0, 0}};
    metrics_compute(l, 2, &m);
    double want = (log(2.0) + (2.0 + log1p(exp(-2.0)))) / 2;
    cr_expect_float_eq(m.logloss, want, 1e-12);
    /* a saturated logit costs a finite amount */
    metric_row s[2] = {{0, -1000.0, 0, 1}, {0, 1000.0, 0, 0}};
    metrics_compute(s, 2, &m);
    cr_expect_float_eq(m.logloss, 1000.0, 1e-9);
    /* GAUC: user 1 (4 samples, AUC 1), user 2 (2 samples, AUC 0), user 3
     * (only positives: left out): (4 * 1 + 2 * 0) / 6 */
    metric_row g[8] = {{0.9, 0, 1, 1}, {0.8, 0, 1, 1}, {0.1, 0, 1, 0}, {0.2, 0, 1, 0},
                       {0.1, 0, 2, 1}, {0.5, 0, 2, 0}, {0.3, 0, 3, 1}, {0.4, 0, 3, 1}};
    metrics_compute(g, 8, &m);
    cr_expect_float_eq(m.gauc, 4.0 / 6.0, 1e-12);
    cr_expect_eq(m.gauc_users, 2u);
    cr_expect_eq(m.gauc_samples, 6u);
    cr_expect_eq(m.samples, 8u);
    cr_expect_eq(m.positives, 5u);
    /* undefined: no negatives */
    metric_row o[2] = {{1, 1, 0, 1}, {2, 2, 0, 1}};
    metrics_compute(o, 2, &m);
    cr_expect(isnan(m.auc) && isnan(m.gauc));
    metrics_compute(o, 0, &m);
    cr_expect(isnan(m.auc) && isnan(m.logloss) && m.samples == 0);
}

Test(metrics, auc_and_gauc_equal_a_pairwise_count)
{
    uint64_t st = 42;
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + tu_rand(&st) % 400, users = 1 + tu_rand(&st) % 12;
        metric_row *r = malloc(n * sizeof *r), *copy = malloc(n * sizeof *r);
        for (size_t i = 0; i < n; i++) {
            r[i].score = (double)(tu_rand(&st) % 15) / 7.0; /* many ties */
            r[i].logit = r[i].score;
            r[i].user = (uint32_t)(tu_rand(&st) % users);
            r[i].label = tu_rand(&st) % 3 == 0 ? 1.0f : 0.0f;
        }
        for (size_t i = 0; i < n; i++) copy[i] = r[i];
        double want = brute_auc(r, n, 0, 0), wsum = 0, acc = 0;
        for (uint32_t u = 0; u < users; u++) {
            double a = brute_auc(r, n, 1, u);
            size_t cnt = 0;
            for (size_t i = 0; i < n; i++) cnt += r[i].user == u;
            if (!isnan(a)) {
                acc += a * (double)cnt;
                wsum += (double)cnt;
            }
        }
        metrics m;
        metrics_compute(copy, n, &m);
        if (isnan(want)) cr_expect(isnan(m.auc), "round %d", round);
        else cr_expect_float_eq(m.auc, want, 1e-12, "round %d: auc %.15g, pairwise %.15g", round, m.auc, want);
        if (wsum == 0) cr_expect(isnan(m.gauc), "round %d", round);
        else cr_expect_float_eq(m.gauc, acc / wsum, 1e-12, "round %d: gauc %.15g, pairwise %.15g", round, m.gauc,
                                acc / wsum);
        free(r);
        free(copy);
    }
}
