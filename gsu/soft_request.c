/*
 * soft_request.c: see soft_request.h.
 */
#include "gsu/soft_request.h"

#include "gsu/soft_score.h"
#include "lsim.h"

#include <string.h>

#define FAISS_SLACK 16

static size_t up64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

size_t soft_request_bytes(soft_mode mode, size_t max_n, size_t d, size_t k, size_t n_slots)
{
    size_t b = up64(soft_dedup_bytes(max_n, k)) + up64(soft_select_bytes(max_n, d, k)) +
               up64((k + FAISS_SLACK) * d * sizeof(float)) + up64(soft_score_t_floats(max_n, d) * sizeof(float));
    if (mode == SOFT_APPROX) b += up64(soft_approx_bytes(max_n, d, k, n_slots));
    return b + 64;
}

int soft_request_init(soft_request *r, void *mem, soft_mode mode, size_t max_n, size_t d, size_t k, size_t max_b,
                      size_t n_slots, float fraction, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->mode = mode, r->max_n = max_n, r->d = d, r->k = k;
    char *p = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    soft_dedup_carve(&r->dd, p, max_n, k);
    p += up64(soft_dedup_bytes(max_n, k));
    soft_select_carve(&r->ss, p, max_n, d, k);
    p += up64(soft_select_bytes(max_n, d, k));
    r->gk = (float *)p, p += up64((k + FAISS_SLACK) * d * sizeof(float));
    r->kt = (float *)p, p += up64(soft_score_t_floats(max_n, d) * sizeof(float));
    if (mode == SOFT_APPROX) soft_approx_carve(&r->sa, p, max_n, d, k, n_slots, fraction);
    if (mode == SOFT_FAISS) return soft_faiss_new(&r->sf, max_n, d, max_b, k, err, errlen);
    return 0;
}

void soft_request_destroy(soft_request *r)
{
    soft_faiss_free(r->sf);
    r->sf = NULL;
}

/* One candidate, every pair scored. */
static size_t exact_one(soft_request *r, const float *keys, const float *q, uint32_t *rows)
{
    size_t u = r->dd.u;
    soft_score_rows(r->ss.score, keys, u, q, 1, r->d, r->ss.kt);
    r->scanned += u;
    return soft_dedup_expand(&r->dd, r->ss.score, NULL, u, rows, NULL);
}

int soft_request_topk(soft_request *r, const float *keys, const float *queries, size_t nb, uint32_t *rows,
                      uint32_t *cnt, char *err, size_t errlen)
{
    size_t u = r->dd.u, d = r->d, k = r->k;
    if (r->mode == SOFT_EXACT || u <= 1) {
        soft_score_transpose(r->kt, keys, u, d);
        for (size_t g0 = 0; g0 < nb; g0 += SOFT_SELECT_GROUP) {
            size_t g = nb - g0 < SOFT_SELECT_GROUP ? nb - g0 : SOFT_SELECT_GROUP;
            soft_score_rows_t(r->ss.score, r->kt, u, queries + g0 * d, g, d);
            for (size_t b = 0; b < g; b++)
                cnt[g0 + b] = (uint32_t)soft_dedup_expand(&r->dd, r->ss.score + b * u, NULL, u, rows + (g0 + b) * k,
                                                          NULL);
        }
        r->scanned += (uint64_t)u * nb;
        return 0;
    }
    if (r->mode == SOFT_APPROX) {
        soft_approx_prepare(&r->sa, keys, r->dd.cat, u);
        for (size_t b = 0; b < nb; b++) {
            const uint32_t *ids;
            const float *sc;
            size_t m = soft_approx_scan(&r->sa, queries + b * d, u, &ids, &sc);
            cnt[b] = (uint32_t)soft_dedup_expand(&r->dd, sc, ids, m, rows + b * k, NULL);
            r->scanned += m;
        }
        return 0;
    }
    int rc = soft_faiss_search(r->sf, keys, u, queries, nb, err, errlen);
    if (rc) return rc;
    for (size_t b = 0; b < nb; b++) {
        const float *q = queries + b * d;
        const uint32_t *ids;
        float last, kth;
        size_t m = soft_faiss_shortlist(r->sf, b, &ids, &last);
        for (size_t j = 0; j < m; j++) memcpy(r->gk + j * d, keys + (size_t)ids[j] * d, d * sizeof(float));
        soft_score_rows(r->ss.score, r->gk, m, q, 1, d, r->ss.kt);
        r->scanned += m;
        cnt[b] = (uint32_t)soft_dedup_expand(&r->dd, r->ss.score, ids, m, rows + b * k, &kth);
        /* pairs outside the shortlist score at most last + eps exactly: the K-th must beat that */
        if (m < u && !((double)kth > (double)last + soft_faiss_eps(r->sf, q))) {
            cnt[b] = (uint32_t)exact_one(r, keys, q, rows + b * k);
            r->fallbacks++;
            soft_faiss_count_fallback(r->sf);
        }
    }
    return 0;
}
