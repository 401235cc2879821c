/*
 * request.c: one request through the engine: check it, read the user's
 * behaviors in one snapshot, build the model's batch exactly as
 * train/samples.c builds a sample at time `now`, search (SIM), score.
 */
#include "engine/engine_internal.h"
#include "index/uic.h"

#include "esu/esu_attention.h"
#include "gsu/soft_score.h"
#include "index/index_internal.h"
#include "models/nn_vmath.h"

#include <math.h>
#include <string.h>
#include <time.h>

static int check_id(lsim_ctx *c, const char *s, size_t len, const char *what, size_t i, int indexed)
{
    const char *why = !s ? "is NULL" : !len ? "is empty" : len > LSIM_MAX_ID_LEN ? "is longer than 255 bytes"
                      : memchr(s, 0, len) ? "holds a NUL byte" : NULL;
    if (!why) return 0;
    if (indexed) return ctx_err(c, LSIM_E_INVAL, "candidate %zu: %s %s", i, what, why);
    return ctx_err(c, LSIM_E_INVAL, "%s %s", what, why);
}

static int check_request(lsim_ctx *c, const char *user, size_t user_len, int64_t now,
                         const lsim_candidate *cand, size_t n, const void *out)
{
    const lsim_engine *e = c->e;
    if (!cand) return ctx_err(c, LSIM_E_INVAL, "candidates is NULL");
    if (!out) return ctx_err(c, LSIM_E_INVAL, "the output array is NULL");
    if (!n) return ctx_err(c, LSIM_E_INVAL, "no candidates (n = 0)");
    if (n > e->set.max_candidates)
        return ctx_err(c, LSIM_E_INVAL, "%zu candidates: more than settings.max_candidates (%u)", n,
                       e->set.max_candidates);
    if (now <= 0) return ctx_err(c, LSIM_E_INVAL, "now: %lld is not a positive unix time in seconds", (long long)now);
    int64_t wall = (int64_t)time(NULL), base = e->last_event > wall ? e->last_event : wall;
    int64_t limit = base > INT64_MAX - e->set.max_future ? INT64_MAX : base + e->set.max_future;
    if (now > limit)
        return ctx_err(c, LSIM_E_INVAL, "now: %lld is later than %lld (the index's last event or the clock, plus "
                       "settings.max_future): milliseconds instead of seconds?", (long long)now, (long long)limit);
    int rc = check_id(c, user, user_len, "user", 0, 0);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = check_id(c, cand[i].item, cand[i].item_len, "item", i, 1);
        if (!rc && cand[i].category) rc = check_id(c, cand[i].category, cand[i].category_len, "category", i, 1);
    }
    return rc;
}

/* SIM hard: each distinct category among the candidates gets the user's
 * newest K events of it before now, read from its chain in the index (one
 * key range each, the User Behavior Tree's point); hslot[b] says which. */
static int read_hard_lists(lsim_ctx *c, int known, uint32_t uid, int64_t now, size_t n, uint32_t n_cats)
{
    size_t K = c->e->topk, mask = c->hsize - 1, slots = 0;
    if (++c->gen == 0) {
        memset(c->hgen, 0, c->hsize * sizeof *c->hgen);
        c->gen = 1;
    }
    for (size_t b = 0; b < n; b++) {
        uint32_t cat = c->t_cat[b];
        size_t h = (cat * 2654435761u) & mask;
        while (c->hgen[h] == c->gen && c->hkey[h] != cat) h = (h + 1) & mask;
        if (c->hgen[h] != c->gen) {
            c->hgen[h] = c->gen, c->hkey[h] = cat, c->hval[h] = (uint32_t)slots;
            size_t got = 0;
            if (known && cat < n_cats) {
                int rc = index_hard_search_dense(c->rd, uid, cat, now, K, c->hev + slots * K, &got);
                if (rc) return rc;
            }
            c->hcnt[slots++] = (uint32_t)got;
        }
        c->hslot[b] = c->hval[h];
    }
    return 0;
}

/* Candidates with the same (item, category) get the same score: the model
 * scores each distinct pair once. Compacts t_item / t_cat to the distinct
 * pairs, first seen first, sets cmap[i] to candidate i's; returns how many. */
static size_t distinct_candidates(lsim_ctx *c, size_t n)
{
    size_t mask = c->dsize - 1, u = 0;
    memset(c->dslot, 0, c->dsize * sizeof *c->dslot);
    for (size_t i = 0; i < n; i++) {
        uint32_t it = c->t_item[i], ct = c->t_cat[i], k;
        size_t h = ((it * 2654435761u) ^ (ct * 40503u)) & mask;
        while ((k = c->dslot[h]) && (c->t_item[k - 1] != it || c->t_cat[k - 1] != ct)) h = (h + 1) & mask;
        if (!k) { /* u <= i: the compaction never overwrites a candidate not yet read */
            c->t_item[u] = it, c->t_cat[u] = ct;
            k = c->dslot[h] = (uint32_t)++u;
        }
        c->cmap[i] = k - 1;
    }
    return u;
}

/* Dense ids of the user and the candidates (unknown: past the vocabulary,
 * the model's out-of-vocabulary row), then the user's events before now:
 * one snapshot. *known = 0 for an unknown user. *n_distinct: the distinct
 * candidates (distinct_candidates), the model's samples. */
static int read_request(lsim_ctx *c, const char *user, size_t user_len, int64_t now, const lsim_candidate *cand,
                        size_t n, size_t *n_ev, size_t *n_distinct)
{
    lsim_index *ix = c->e->ix;
    *n_ev = 0;
    int rc = index_reader_begin(c->rd);
    if (rc) return ctx_err(c, rc, "%s", lsim_index_reader_errmsg(c->rd));
    pthread_rwlock_rdlock(&ix->lock);
    uint32_t uid, n_cats = vocab_size(ix->voc[IX_CAT]);
    int known = vocab_find(ix->voc[IX_USER], user, user_len, &uid) == 0;
    index_candidate_ids(ix, cand, n, c->t_item, c->t_cat);
    pthread_rwlock_unlock(&ix->lock);
    n = *n_distinct = distinct_candidates(c, n);
    for (size_t i = 0; i < n; i++) c->now[i] = now; /* the model's samples: the distinct candidates */
    c->state_ready = 0;
    c->uic_folded = 0;
    if (c->e->uic) { /* MIMN's state: the UIC's, or (replaced since the open) folded from every event */
        if (!known) {
            mimn_state_init(model_mimn(c->m), c->mstate);
            c->state_ready = 1;
        } else {
            rc = index_uic_state(c->rd, &c->um.model, uid, now, c->mstate, &c->ev, &c->ev_cap, &c->uic_ids,
                                 &c->uic_ids_cap, &c->uic_folded);
            c->state_ready = rc == 0;
            if (rc == LSIM_E_NOTFOUND) rc = index_user_events_in(c->rd, uid, now, &c->ev, &c->ev_cap, n_ev);
        }
    } else if (known && c->ev_need == SIZE_MAX) {
        rc = index_user_events_in(c->rd, uid, now, &c->ev, &c->ev_cap, n_ev);
    } else if (known) { /* the newest ev_need, oldest first */
        rc = index_recent_dense(c->rd, uid, now, c->ev_need, c->ev, n_ev);
    }
    c->lev = c->ev; /* after the read: it may have moved the buffer */
    if (!rc && c->hev) rc = read_hard_lists(c, known, uid, now, n, n_cats);
    if (rc) rc = ctx_err(c, rc, "%s", lsim_index_reader_errmsg(c->rd));
    index_reader_end(c->rd);
    return rc;
}

static void embed_row(float *out, const float *ti, const float *tc, const model_spec *s, uint32_t item, uint32_t cat)
{
    uint32_t it = item < s->base.n_items ? item : s->base.n_items, ct = cat < s->base.n_cats ? cat : s->base.n_cats;
    memcpy(out, ti + (size_t)it * s->base.d_item, s->base.d_item * sizeof(float));
    memcpy(out + s->base.d_item, tc + (size_t)ct * s->base.d_cat, s->base.d_cat * sizeof(float));
}

/* SIM soft: each candidate's top K of the long list [l0, p), as the model's search picks them. With the
 * recency bias the vectors are [key, bias[bucket]] and [query, 1] (gsu/soft_search.h), and the distinct
 * units are (item, category, bucket). */
static int soft_search(lsim_ctx *c, size_t n, size_t l0, size_t p, int64_t now)
{
    const lsim_engine *e = c->e;
    const model_spec *s = &e->spec;
    const param_set *ps = model_params(c->m);
    const float *ti = param_find(ps, "emb.item"), *tc = param_find(ps, "emb.cat");
    const float *wa = param_find(ps, "gsu.wa"), *wb = param_find(ps, "gsu.wb"), *tb = e->time_bias;
    size_t E = (size_t)s->base.d_item + s->base.d_cat, D = s->gsu_d, W = e->gsu_w, K = e->topk, m = p - l0;
    uint32_t NI = s->base.n_items, NC = s->base.n_cats;
    for (size_t b = 0; b < n; b++) {
        float *q = c->queries + b * W;
        if (tb) q[D] = 1.0f;
        if (e->qi) { /* the tabulated parts: the same sums (gsu/soft_score.h) */
            const float *a = e->qi + (size_t)(c->t_item[b] < NI ? c->t_item[b] : NI) * D;
            const float *z = e->qc + (size_t)(c->t_cat[b] < NC ? c->t_cat[b] : NC) * D;
            for (size_t j = 0; j < D; j++) q[j] = a[j] + z[j];
            continue;
        }
        embed_row(c->ea, ti, tc, s, c->t_item[b], c->t_cat[b]);
        soft_score_vector(q, wa, E, s->base.d_item, c->ea, D);
    }
    for (size_t i = 0; i < m; i++) {
        const ubt_event *x = &c->ev[l0 + i];
        c->litems[i] = x->item, c->lcats[i] = x->cat;
        if (tb) c->ltags[i] = (uint8_t)esu_time_bucket(now - x->ts, ESU_TIME_BUCKETS);
    }
    size_t u = soft_dedup_build(&c->sr.dd, c->litems, c->lcats, tb ? c->ltags : NULL, m);
    for (size_t j = 0; j < u; j++) { /* one GSU vector per distinct (item, category[, bucket]) */
        uint32_t it = c->sr.dd.item[j], ct = c->sr.dd.cat[j];
        float *k = c->keys + j * W;
        if (tb) k[D] = tb[c->sr.dd.tag[j]];
        if (e->ki) {
            const float *a = e->ki + (size_t)(it < NI ? it : NI) * D, *z = e->kc + (size_t)(ct < NC ? ct : NC) * D;
            for (size_t t = 0; t < D; t++) k[t] = a[t] + z[t];
            continue;
        }
        embed_row(c->ea, ti, tc, s, it, ct);
        soft_score_vector(k, wb, E, s->base.d_item, c->ea, D);
    }
    int rc = soft_request_topk(&c->sr, c->keys, c->queries, n, c->sel, c->sel_cnt, c->errmsg, sizeof c->errmsg);
    if (rc) return rc;
    for (size_t b = 0; b < n; b++) {
        size_t cnt = c->sel_cnt[b];
        for (size_t j = 0; j < cnt; j++) {
            const ubt_event *x = &c->ev[l0 + c->sel[b * K + j]];
            c->l_src[b * K + j] = (uint32_t)(l0 + c->sel[b * K + j]);
            c->l_item[b * K + j] = x->item;
            c->l_cat[b * K + j] = x->cat;
            c->l_ts[b * K + j] = x->ts;
        }
        for (size_t j = cnt; j < K; j++) c->l_item[b * K + j] = c->l_cat[b * K + j] = 0, c->l_ts[b * K + j] = 0;
        c->l_len[b] = (uint32_t)cnt;
    }
    return 0;
}

/* The batch for n candidates over the user's events ev[0..p): the short-term
 * window and the long-term list, as train/samples.c's fill_one. */
static int build_batch(lsim_ctx *c, size_t n, size_t p, model_batch *bt)
{
    const lsim_engine *e = c->e;
    const ubt_event *ev = c->ev;
    size_t S = e->set.short_len, K = e->long_width;
    size_t h0 = p > S ? p - S : 0, hl = p - h0;
    for (size_t b = 0; b < n; b++) {
        c->h_len[b] = (uint32_t)hl;
        for (size_t j = 0; j < S; j++) {
            size_t o = b * S + j;
            if (j < hl) c->h_item[o] = ev[h0 + j].item, c->h_cat[o] = ev[h0 + j].cat, c->h_ts[o] = ev[h0 + j].ts;
            else c->h_item[o] = c->h_cat[o] = 0, c->h_ts[o] = 0;
        }
    }
    size_t lp = e->long_before_short ? h0 : p; /* the long-term list ends here */
    *bt = (model_batch){.b = n, .target_item = c->t_item, .target_cat = c->t_cat, .s = S, .hist_item = c->h_item,
                        .hist_cat = c->h_cat, .hist_len = c->h_len, .hist_ts = c->h_ts, .now = c->now,
                        .hist_shared = 1};
    if (e->long_kind == ENGINE_LONG_NONE) return 0;
    if (e->long_kind == ENGINE_LONG_ALL && c->state_ready) { /* MIMN's state from the UIC */
        bt->mimn_state = c->mstate;
        bt->state_shared = 1;
        return 0;
    }
    if (e->long_kind == ENGINE_LONG_ALL) { /* MIMN: fold the whole history once; every candidate reads it */
        const mimn *mm = model_mimn(c->m);
        mimn_state_init(mm, c->mstate);
        for (size_t j0 = 0; j0 < p; j0 += ENGINE_FOLD_CHUNK) { /* in pieces: the same bits as at once */
            size_t cnt = p - j0 < ENGINE_FOLD_CHUNK ? p - j0 : ENGINE_FOLD_CHUNK;
            for (size_t j = 0; j < cnt; j++) c->fitem[j] = ev[j0 + j].item, c->fcat[j] = ev[j0 + j].cat;
            mimn_state_fold(mm, c->mstate, c->fitem, c->fcat, cnt, c->mscratch);
        }
        bt->mimn_state = c->mstate;
        bt->state_shared = 1;
        return 0;
    }
    bt->k = K;
    bt->long_item = c->l_item;
    bt->long_cat = c->l_cat;
    bt->long_ts = c->l_ts;
    bt->long_len = c->l_len;
    if (e->long_kind == ENGINE_LONG_HARD && c->hev) { /* read per category: newest first, put oldest first */
        c->lev = c->hev;
        bt->long_group = c->hslot; /* one list per category slot */
        for (size_t b = 0; b < n; b++) {
            size_t slot = c->hslot[b], m = c->hcnt[slot], k = 0;
            for (; k < m; k++) {
                size_t src = slot * K + (m - 1 - k);
                const ubt_event *x = &c->hev[src];
                c->l_src[b * K + k] = (uint32_t)src;
                c->l_item[b * K + k] = x->item, c->l_cat[b * K + k] = x->cat, c->l_ts[b * K + k] = x->ts;
            }
            for (; k < K; k++) c->l_item[b * K + k] = c->l_cat[b * K + k] = 0, c->l_ts[b * K + k] = 0;
            c->l_len[b] = (uint32_t)m;
        }
    } else if (e->long_kind == ENGINE_LONG_HARD) { /* the newest K before the window end in the candidate's category */
        for (size_t b = 0; b < n; b++) {
            uint32_t cat = c->t_cat[b];
            size_t i = lp, m = 0;
            while (i > 0 && m < K)
                if (ev[--i].cat == cat) m++;
            size_t k = 0;
            for (size_t j = i; j < lp && k < m; j++)
                if (ev[j].cat == cat) {
                    c->l_src[b * K + k] = (uint32_t)j;
                    c->l_item[b * K + k] = ev[j].item;
                    c->l_cat[b * K + k] = ev[j].cat;
                    c->l_ts[b * K + k] = ev[j].ts;
                    k++;
                }
            for (; k < K; k++) c->l_item[b * K + k] = c->l_cat[b * K + k] = 0, c->l_ts[b * K + k] = 0;
            c->l_len[b] = (uint32_t)m;
        }
    } else {
        size_t L = e->set.long_max, l0 = lp > L ? lp - L : 0;
        if (e->long_kind == ENGINE_LONG_SOFT) {
            int rc = soft_search(c, n, l0, lp, c->now[0]);
            if (rc) return rc;
            bt->long_selected = 1;
        } else { /* avg-pooling: one shared sequence */
            for (size_t j = 0; j < lp - l0; j++)
                c->l_item[j] = ev[l0 + j].item, c->l_cat[j] = ev[l0 + j].cat, c->l_ts[j] = ev[l0 + j].ts;
            for (size_t b = 0; b < n; b++) c->l_len[b] = (uint32_t)(lp - l0);
            bt->k = lp - l0 ? lp - l0 : 1;
            bt->long_shared = 1;
        }
    }
    return 0;
}

static int run(lsim_ctx *c, const char *user, size_t user_len, int64_t now, const lsim_candidate *cand, size_t n,
               const void *out)
{
    if (!c) return LSIM_E_INVAL;
    c->errmsg[0] = 0;
    int rc = check_request(c, user, user_len, now, cand, n, out);
    size_t n_ev = 0, nd = 0;
    if (!rc) rc = read_request(c, user, user_len, now, cand, n, &n_ev, &nd);
    if (rc) return rc;
    model_batch bt;
    if ((rc = build_batch(c, nd, n_ev, &bt))) return rc;
    model_forward(c->m, &bt, c->logits, 0);
    return 0;
}

int lsim_score(lsim_ctx *c, const char *user, size_t user_len, int64_t now, const lsim_candidate *candidates,
               size_t n, float *scores)
{
    int rc = run(c, user, user_len, now, candidates, n, scores);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) scores[i] = vm_sigmoid_ref(c->logits[c->cmap[i]]); /* as eval_requests */
    return 0;
}

int lsim_explain(lsim_ctx *c, const char *user, size_t user_len, int64_t now, const lsim_candidate *candidate,
                 float *score, lsim_explained *out, size_t cap, size_t *n)
{
    if (!c) return LSIM_E_INVAL;
    if (!n || !score || (cap && !out)) return ctx_err(c, LSIM_E_INVAL, "score, out (when cap > 0) or n is NULL");
    *n = 0;
    const sim *sm = model_sim(c->m);
    if (!sm)
        return ctx_err(c, LSIM_E_INVAL, "explain: a %s model has no GSU (only sim-hard and sim-soft do)",
                       model_kind_name(c->e->spec.kind));
    int rc = run(c, user, user_len, now, candidate, 1, score);
    if (rc) return rc;
    *score = vm_sigmoid_ref(c->logits[0]);
    const uint32_t *rows;
    size_t m = sim_selected(sm, 0, &rows);
    sim_attention(sm, 0, c->att);
    lsim_index *ix = c->e->ix;
    int bad = 0;
    pthread_rwlock_rdlock(&ix->lock);
    for (size_t i = 0; i < m && i < cap; i++) {
        const ubt_event *x = &c->lev[c->l_src[rows[i]]];
        if (x->item >= vocab_size(ix->voc[IX_ITEM]) || x->cat >= vocab_size(ix->voc[IX_CAT]) ||
            x->type >= vocab_size(ix->voc[IX_TYPE])) {
            bad = 1;
            break;
        }
        out[i].event = (lsim_event){vocab_str(ix->voc[IX_ITEM], x->item), vocab_str(ix->voc[IX_CAT], x->cat),
                                    vocab_str(ix->voc[IX_TYPE], x->type), x->ts};
        out[i].weight = c->att[i];
    }
    pthread_rwlock_unlock(&ix->lock);
    if (bad)
        return ctx_err(c, LSIM_E_CORRUPT, "%s: corrupt: an event block names an id outside the vocabulary",
                       c->e->ix->dir);
    *n = m;
    return 0;
}
