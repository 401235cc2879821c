/*
 * evaluate.c: see evaluate.h.
 */
#include "train/evaluate.h"

#include "index/index_internal.h"
#include "loaders/request_log.h"
#include "models/nn_vmath.h"

#include "storage/error_detail.h"
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int eval_samples_from_checkpoint(sample_config *sc, const char *path, model_spec *spec, char *err, size_t errlen)
{
    st_file *f;
    int rc = st_open(&f, path, err, errlen);
    if (rc) return rc;
    if ((rc = model_spec_from_file(spec, f, path, err, errlen))) {
        st_close(f);
        return rc;
    }
    int64_t v = 0;
    struct { const char *key; int64_t lo, hi; uint32_t *dst; } u32s[] = {
        {"lsim.negatives", 0, 1000, &sc->negatives},     {"lsim.short_len", 1, 100000, &sc->short_len},
        {"lsim.long_max", 1, 10000000, &sc->long_max},   {"lsim.user_cap", 0, UINT32_MAX, &sc->user_cap},
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0] && rc >= 0; i++)
        if ((rc = st_meta_i64(f, path, u32s[i].key, u32s[i].lo, u32s[i].hi, &v, err, errlen)) > 0)
            *u32s[i].dst = (uint32_t)v;
    if (rc >= 0 && (rc = st_meta_i64(f, path, "lsim.test_from", INT64_MIN, INT64_MAX, &v, err, errlen)) > 0)
        sc->test_from = v;
    const char *lbs = st_meta(f, "lsim.long_before_short");
    if (rc >= 0 && lbs) sc->long_before_short = !strcmp(lbs, "1");
    const char *ns = st_meta(f, "lsim.neg_sampling");
    if (rc >= 0 && ns) {
        if (!strcmp(ns, "uniform")) sc->neg = NEG_UNIFORM;
        else if (!strcmp(ns, "popularity")) sc->neg = NEG_POPULARITY;
        else rc = err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata lsim.neg_sampling: want uniform or popularity, "
                                                      "found '%.40s'", path, ns);
    }
    st_close(f);
    if (rc < 0) return rc;
    sc->split = SAMPLES_TEST;
    train_samples_for(sc, spec);
    return 0;
}

int eval_score(lsim_index *ix, model *m, const sample_config *sc, truth_ctx *truth, metric_row **rows,
               metric_row **truth_rows, size_t *n, char *err, size_t errlen)
{
    *rows = NULL;
    if (truth_rows) *truth_rows = NULL;
    *n = 0;
    sample_source *src;
    int rc = sample_source_open(&src, ix, sc, err, errlen);
    if (rc) return rc;
    size_t cap = sc->given ? sc->n_given : sample_source_positives(src) * (1 + (size_t)sc->negatives), got = 0;
    if (!cap) {
        sample_source_free(src);
        return sc->given ? err_set(err, errlen, LSIM_E_NOTFOUND, "no samples to evaluate")
                         : err_set(err, errlen, LSIM_E_NOTFOUND, "the index has no events at or after the split "
                                   "(test_from %lld): nothing to evaluate", (long long)sc->test_from);
    }
    metric_row *r = m ? malloc((cap ? cap : 1) * sizeof *r) : NULL;
    metric_row *tr = truth ? malloc((cap ? cap : 1) * sizeof *tr) : NULL;
    float *logits = malloc(sc->batch * sizeof *logits);
    if ((m && !r) || (truth && !tr) || !logits) rc = err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    /* the negative distribution n(i), for the truth's posterior */
    const uint32_t *counts = sample_source_item_counts(src);
    uint32_t n_items = sample_source_items(src);
    double total = 0;
    for (uint32_t i = 0; i < n_items; i++) total += counts[i];
    int uniform = sc->neg == NEG_UNIFORM || total == 0;
    while (!rc) {
        model_batch bt;
        const uint32_t *users;
        if ((rc = sample_source_next(src, &bt, &users, err, errlen)) || !bt.b) break;
        if (got + bt.b > cap) { /* cannot happen: the pass yields what the count said */
            rc = err_set(err, errlen, LSIM_E_LIMIT, "eval: more samples than counted");
            break;
        }
        if (m) {
            model_batch in = bt;
            in.label = NULL; /* inference: no loss */
            model_forward(m, &in, logits, 0);
            for (size_t b = 0; b < bt.b; b++) r[got + b] = (metric_row){logits[b], logits[b], users[b], bt.label[b]};
        }
        for (size_t b = 0; truth && b < bt.b && !rc; b++) {
            double p, neg = uniform ? 1.0 / n_items : counts[bt.target_item[b]] / total;
            if ((rc = truth_prob(truth, users[b], bt.target_item[b], bt.now[b], &p, err, errlen))) break;
            double den = p + (double)sc->negatives * neg, post = den > 0 ? p / den : 0.5;
            double pc = post < 1e-15 ? 1e-15 : post > 1 - 1e-15 ? 1 - 1e-15 : post;
            tr[got + b] = (metric_row){post, log(pc / (1 - pc)), users[b], bt.label[b]};
        }
        got += bt.b;
    }
    free(logits);
    sample_source_free(src);
    if (rc) {
        free(r);
        free(tr);
        return rc;
    }
    *rows = r;
    if (truth_rows) *truth_rows = tr;
    else free(tr);
    *n = got;
    return 0;
}

int eval_requests(lsim_index *ix, model *m, const sample_config *sc, const request_set *rs, metric_row **rows,
                  size_t *n, char *err, size_t errlen)
{
    *rows = NULL;
    *n = 0;
    size_t total = request_set_candidates(rs), nr = request_set_size(rs), mx = request_set_max_n(rs);
    sample_given *g = malloc((total ? total : 1) * sizeof *g);
    lsim_candidate *cand = malloc((mx ? mx : 1) * sizeof *cand);
    uint32_t *items = malloc((mx ? mx : 1) * sizeof *items), *cats = malloc((mx ? mx : 1) * sizeof *cats);
    uint32_t *user_no = malloc((total ? total : 1) * sizeof *user_no);
    int rc = g && cand && items && cats && user_no ? 0 : err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < nr && !rc; i++) {
        request_view v;
        request_set_get(rs, i, &v);
        request_set_fill(rs, i, cand);
        uint32_t uid;
        pthread_rwlock_rdlock(&ix->lock);
        if (vocab_find(ix->voc[IX_USER], v.user, v.user_len, &uid)) uid = SAMPLE_NO_USER;
        index_candidate_ids(ix, cand, v.n, items, cats);
        pthread_rwlock_unlock(&ix->lock);
        for (size_t j = 0; j < v.n; j++, k++) {
            g[k] = (sample_given){uid, items[j], cats[j], v.time, v.label[j]};
            user_no[k] = v.user_no;
        }
    }
    if (!rc) {
        sample_config c = *sc;
        c.given = g;
        c.n_given = total;
        rc = eval_score(ix, m, &c, NULL, rows, NULL, n, err, errlen);
    }
    if (!rc && *n != total) rc = err_set(err, errlen, LSIM_E_LIMIT, "eval: %zu rows for %zu candidates", *n, total);
    /* ranked by the probability lsim_score returns (float: its ties are the engine's ties) */
    for (size_t i = 0; !rc && i < *n; i++) {
        (*rows)[i].user = user_no[i];
        (*rows)[i].score = vm_sigmoid_ref((float)(*rows)[i].logit);
    }
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    free(g);
    free(cand);
    free(items);
    free(cats);
    free(user_no);
    return rc;
}
