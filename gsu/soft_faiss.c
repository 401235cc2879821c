/*
 * soft_faiss.c: see soft_faiss.h.
 */
#include "gsu/soft_faiss.h"

#include "gsu/soft_score.h"
#include "gsu/soft_search.h"
#include "lsim.h"
#include "storage/error_detail.h"

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SLACK 16 /* shortlist = K + SLACK */

/* gsu/faiss_c_api.cpp: the calling thread's OpenMP team size for FAISS. */
void lsim_faiss_set_threads(int n);

struct soft_faiss {
    FaissIndexFlatIP *ix;
    size_t max_n, d, max_b, k, kk;
    float *dist;     /* (max_b, kk) */
    idx_t *lab;      /* (max_b, kk) */
    uint32_t *short_rows; /* (kk) one candidate's shortlist, ascending */
    float *gk, *gs;  /* (kk, d) its keys, (kk) their exact scores */
    uint32_t off[2], *gsel, gof[2];
    uint64_t *heap;
    uint64_t fallbacks;
    size_t kk_last;   /* the last search's shortlist length */
    double kmax, gamma; /* the last search's largest key norm; gamma_d */
};

int soft_faiss_new(soft_faiss **out, size_t max_n, size_t d, size_t max_b, size_t k, char *err, size_t errlen)
{
    *out = NULL;
    if (!max_n || !d || !max_b || !k) return err_set(err, errlen, LSIM_E_INVAL, "soft_faiss_new: zero size");
    soft_faiss *f = calloc(1, sizeof *f);
    if (!f) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    f->max_n = max_n, f->d = d, f->max_b = max_b, f->k = k, f->kk = k + SLACK;
    f->dist = malloc(max_b * f->kk * sizeof *f->dist);
    f->lab = malloc(max_b * f->kk * sizeof *f->lab);
    f->short_rows = malloc(f->kk * sizeof *f->short_rows);
    f->gk = malloc(f->kk * d * sizeof *f->gk);
    f->gs = malloc(f->kk * sizeof *f->gs);
    f->gsel = malloc(f->kk * sizeof *f->gsel);
    f->heap = malloc(f->kk * sizeof *f->heap);
    int rc = 0;
    if (!f->dist || !f->lab || !f->short_rows || !f->gk || !f->gs || !f->gsel || !f->heap)
        rc = err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    else if (faiss_IndexFlatIP_new_with(&f->ix, (idx_t)d))
        rc = err_set(err, errlen, LSIM_E_SEARCH, "FAISS IndexFlatIP(%zu): %s", d,
                     faiss_get_last_error() ? faiss_get_last_error() : "failed");
    if (rc) {
        soft_faiss_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void soft_faiss_free(soft_faiss *f)
{
    if (!f) return;
    if (f->ix) faiss_Index_free(f->ix);
    free(f->dist);
    free(f->lab);
    free(f->short_rows);
    free(f->gk);
    free(f->gs);
    free(f->gsel);
    free(f->heap);
    free(f);
}

uint64_t soft_faiss_fallbacks(const soft_faiss *f)
{
    return f->fallbacks;
}

void soft_faiss_count_fallback(soft_faiss *f)
{
    f->fallbacks++;
}

static double norm(const float *x, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) s += (double)x[j] * x[j];
    return sqrt(s);
}

static int search_err(char *err, size_t errlen, const char *what)
{
    const char *m = faiss_get_last_error();
    return err_set(err, errlen, LSIM_E_SEARCH, "FAISS %s: %s", what, m ? m : "failed");
}

int soft_faiss_search(soft_faiss *f, const float *keys, size_t n, const float *queries, size_t nb, char *err,
                      size_t errlen)
{
    size_t d = f->d;
    lsim_faiss_set_threads(1);
    if (faiss_Index_reset(f->ix)) return search_err(err, errlen, "reset");
    if (faiss_Index_add(f->ix, (idx_t)n, keys)) return search_err(err, errlen, "add");
    f->kk_last = n < f->kk ? n : f->kk;
    if (faiss_Index_search(f->ix, (idx_t)nb, queries, (idx_t)f->kk_last, f->dist, f->lab))
        return search_err(err, errlen, "search");
    f->kmax = 0;
    for (size_t i = 0; i < n; i++) {
        double v = norm(keys + i * d, d);
        if (v > f->kmax) f->kmax = v;
    }
    double u = FLT_EPSILON / 2;
    f->gamma = (double)d * u / (1 - (double)d * u);
    return 0;
}

size_t soft_faiss_shortlist(soft_faiss *f, size_t b, const uint32_t **ids, float *last)
{
    size_t kk = f->kk_last;
    for (size_t j = 0; j < kk; j++) f->short_rows[j] = (uint32_t)f->lab[b * kk + j];
    *ids = f->short_rows;
    *last = f->dist[b * kk + kk - 1];
    return kk;
}

double soft_faiss_eps(const soft_faiss *f, const float *q)
{
    /* |a.b computed - a.b| <= gamma_d |a| |b| for either summation order: two of them apart by at most twice that */
    return 2 * f->gamma * norm(q, f->d) * f->kmax;
}

int soft_faiss_topk(soft_faiss *f, soft_select *brute, const float *keys, size_t n, const float *queries, size_t nb,
                    uint32_t *rows, uint32_t *cnt, char *err, size_t errlen)
{
    size_t k = f->k, d = f->d;
    if (n <= k) { /* everything is the top K */
        for (size_t b = 0; b < nb; b++) {
            for (size_t i = 0; i < n; i++) rows[b * k + i] = (uint32_t)i;
            cnt[b] = (uint32_t)n;
        }
        return 0;
    }
    lsim_faiss_set_threads(1);
    if (faiss_Index_reset(f->ix)) return search_err(err, errlen, "reset");
    if (faiss_Index_add(f->ix, (idx_t)n, keys)) return search_err(err, errlen, "add");
    size_t kk = n < f->kk ? n : f->kk;
    if (faiss_Index_search(f->ix, (idx_t)nb, queries, (idx_t)kk, f->dist, f->lab))
        return search_err(err, errlen, "search");
    double kmax = 0;
    for (size_t i = 0; i < n; i++) {
        double v = norm(keys + i * d, d);
        if (v > kmax) kmax = v;
    }
    /* |a.b computed - a.b| <= gamma_d |a| |b| for either summation order: two of them apart by at most twice that */
    double u = FLT_EPSILON / 2, gamma = (double)d * u / (1 - (double)d * u);
    for (size_t b = 0; b < nb; b++) {
        const float *q = queries + b * d;
        const idx_t *lab = f->lab + b * kk;
        size_t m = 0;
        /* the shortlist in row order (ties then go to the later row, as brute force) */
        for (size_t j = 0; j < kk; j++) {
            uint32_t r = (uint32_t)lab[j];
            size_t i = m++;
            for (; i > 0 && f->short_rows[i - 1] > r; i--) f->short_rows[i] = f->short_rows[i - 1];
            f->short_rows[i] = r;
        }
        for (size_t i = 0; i < m; i++) memcpy(f->gk + i * d, keys + (size_t)f->short_rows[i] * d, d * sizeof(float));
        soft_score_rows(f->gs, f->gk, m, q, 1, d, brute->kt);
        f->off[0] = 0, f->off[1] = (uint32_t)m;
        size_t got = soft_gsu_topk(f->gof, f->gsel, f->heap, f->gs, f->off, 1, k);
        float kth = INFINITY;
        for (size_t i = 0; i < got; i++) {
            if (f->gs[f->gsel[i]] < kth) kth = f->gs[f->gsel[i]];
            rows[b * k + i] = f->short_rows[f->gsel[i]];
        }
        cnt[b] = (uint32_t)got;
        double eps = 2 * gamma * norm(q, d) * kmax;
        if (!((double)kth > (double)f->dist[b * kk + kk - 1] + eps)) { /* a row outside might belong: brute force */
            soft_select_topk(brute, keys, n, q, 1, rows + b * k, cnt + b);
            f->fallbacks++;
        }
    }
    return 0;
}
