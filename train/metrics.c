/*
 * metrics.c: see metrics.h.
 */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>

static int by_score(const void *a, const void *b)
{
    double x = ((const metric_row *)a)->score, y = ((const metric_row *)b)->score;
    return (x > y) - (x < y);
}

static int by_user_score(const void *a, const void *b)
{
    const metric_row *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    return (x->score > y->score) - (x->score < y->score);
}

double metrics_auc_sorted(const metric_row *rows, size_t n)
{
    /* pairs (positive, negative) with the positive above, plus half the tied
     * pairs, walking groups of equal score upward */
    double above = 0, neg_below = 0, pos = 0, neg = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double gp = 0, gn = 0;
        for (; j < n && rows[j].score == rows[i].score; j++) {
            if (rows[j].label > 0.5f) gp++;
            else gn++;
        }
        above += gp * neg_below + 0.5 * gp * gn;
        neg_below += gn;
        pos += gp;
        neg += gn;
        i = j;
    }
    return pos > 0 && neg > 0 ? above / (pos * neg) : NAN;
}

void metrics_compute(metric_row *rows, size_t n, metrics *out)
{
    double loss = 0;
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        double z = rows[i].logit, y = rows[i].label;
        loss += log1p(exp(-fabs(z))) + fmax(z, 0.0) - y * z;
        npos += rows[i].label > 0.5f;
    }
    out->samples = n;
    out->positives = npos;
    out->logloss = n ? loss / (double)n : NAN;

    qsort(rows, n, sizeof *rows, by_user_score);
    double wsum = 0, acc = 0;
    size_t users = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rows[j].user == rows[i].user) j++;
        double a = metrics_auc_sorted(rows + i, j - i);
        if (!isnan(a)) {
            acc += a * (double)(j - i);
            wsum += (double)(j - i);
            users++;
        }
        i = j;
    }
    out->gauc = users ? acc / wsum : NAN;
    out->gauc_users = users;
    out->gauc_samples = (size_t)wsum;

    qsort(rows, n, sizeof *rows, by_score);
    out->auc = metrics_auc_sorted(rows, n);
}
