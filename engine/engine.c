/*
 * engine.c: opening an engine and its contexts (lsim.h, "The request engine").
 */
#include "engine/engine_internal.h"

#include "index/index_internal.h"
#include "esu/esu_attention.h"
#include "gsu/soft_score.h"
#include "gsu/soft_search.h"
#include "loaders/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANDIDATES_LIMIT 100000u
#define LONG_MAX_LIMIT 10000000u
#define SHORT_LEN_LIMIT 100000u

void lsim_settings_default(lsim_settings *s)
{
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->max_candidates = 1000;
    s->max_future = 366 * 86400;
    s->soft_search = LSIM_SOFT_EXACT;
    s->approx_fraction = 0.2f;
    s->uic = LSIM_UIC_AUTO;
}

int ctx_err(lsim_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* The checkpoint's sampling keys: what its training samples looked like. */
static int read_sampling(lsim_engine *e, const char *path, uint32_t *short_len, uint32_t *long_max, char *err,
                         size_t errlen)
{
    st_file *f;
    int rc = st_open(&f, path, err, errlen);
    if (rc) return rc;
    rc = model_spec_from_file(&e->spec, f, path, err, errlen);
    int64_t v;
    int got;
    if (!rc && (got = st_meta_i64(f, path, "lsim.short_len", 1, SHORT_LEN_LIMIT, &v, err, errlen)) < 0) rc = got;
    else if (!rc && got > 0) *short_len = (uint32_t)v;
    if (!rc && (got = st_meta_i64(f, path, "lsim.long_max", 1, LONG_MAX_LIMIT, &v, err, errlen)) < 0) rc = got;
    else if (!rc && got > 0) *long_max = (uint32_t)v;
    const char *lbs = rc ? NULL : st_meta(f, "lsim.long_before_short");
    e->long_before_short = lbs && !strcmp(lbs, "1");
    st_close(f);
    return rc;
}

static int resolve_settings(lsim_engine *e, const lsim_settings *s, uint32_t ck_short, uint32_t ck_long, char *err,
                            size_t errlen)
{
    e->set = *s;
    if (!s->max_candidates || s->max_candidates > MAX_CANDIDATES_LIMIT)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.max_candidates: %u, want 1..%u", s->max_candidates,
                       MAX_CANDIDATES_LIMIT);
    if (s->short_len > SHORT_LEN_LIMIT)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.short_len: %u, want 0..%u", s->short_len, SHORT_LEN_LIMIT);
    if (s->long_max > LONG_MAX_LIMIT)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.long_max: %u, want 0..%u", s->long_max, LONG_MAX_LIMIT);
    if (s->soft_search != LSIM_SOFT_EXACT && s->soft_search != LSIM_SOFT_FAISS && s->soft_search != LSIM_SOFT_APPROX)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.soft_search: %d, want LSIM_SOFT_EXACT, _FAISS or _APPROX",
                       s->soft_search);
    if (!(s->approx_fraction > 0 && s->approx_fraction <= 1))
        return err_set(err, errlen, LSIM_E_INVAL, "settings.approx_fraction: %g, want (0, 1]",
                       (double)s->approx_fraction);
    if (s->max_future < 0)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.max_future: %lld, want >= 0", (long long)s->max_future);
    if (s->uic != LSIM_UIC_AUTO && s->uic != LSIM_UIC_OFF && s->uic != LSIM_UIC_REQUIRE)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.uic: %d, want LSIM_UIC_AUTO, _OFF or _REQUIRE", s->uic);
    e->set.short_len = s->short_len ? s->short_len : ck_short;
    e->set.long_max = s->long_max ? s->long_max : ck_long;
    e->topk = e->spec.topk;
    switch (e->spec.kind) {
    case MODEL_SIM_HARD: e->long_kind = ENGINE_LONG_HARD, e->long_width = e->topk; break;
    case MODEL_SIM_SOFT:
        e->long_kind = ENGINE_LONG_SOFT, e->long_width = e->topk;
        e->gsu_w = soft_gsu_width(e->spec.gsu_d, e->spec.gsu_recency ? ESU_TIME_BUCKETS : 0);
        break;
    case MODEL_AVGPOOL_DIN: e->long_kind = ENGINE_LONG_AVGPOOL, e->long_width = e->set.long_max; break;
    case MODEL_MIMN: e->long_kind = ENGINE_LONG_ALL, e->long_width = 0; break;
    default: e->long_kind = ENGINE_LONG_NONE, e->long_width = 0; break;
    }
    if ((uint64_t)e->set.long_max * SOFT_SELECT_GROUP >= UINT32_MAX)
        return err_set(err, errlen, LSIM_E_INVAL, "settings.long_max: %u is too long", e->set.long_max);
    return 0;
}

/* A checkpoint with NaN or infinity in a tensor (a diverged run) is refused:
 * serving it would rank by garbage, and soft search's ranking assumes
 * ordered scores. */
static int check_finite(const param_set *ps, const char *path, char *err, size_t errlen)
{
    for (size_t t = 0; t < ps->n; t++)
        for (size_t i = 0; i < ps->numel[t]; i++)
            if (!isfinite(ps->ptr[t][i]))
                return err_set(err, errlen, LSIM_E_CORRUPT, "%s: tensor %s: element %zu is %s", path,
                               ps->specs[t].name, i, isnan(ps->ptr[t][i]) ? "NaN" : "infinite");
    return 0;
}

/* MIMN: whether the index's User Interest Center holds this checkpoint's states. */
static int match_uic(lsim_engine *e, const char *checkpoint, char *err, size_t errlen)
{
    int rc = uic_checkpoint_id(checkpoint, &e->ckpt_id, err, errlen);
    if (rc) return rc;
    const char *base = strrchr(checkpoint, '/');
    snprintf(e->ckpt_name, sizeof e->ckpt_name, "%s", base ? base + 1 : checkpoint);
    mimn_config mc;
    model_spec_mimn(&mc, &e->spec);
    const lsim_index *ix = e->ix;
    e->uic = ix->has_uic && ix->uic.model_id == e->ckpt_id && ix->uic.state_floats == mimn_state_floats(&mc);
    if (!e->uic && e->set.uic == LSIM_UIC_REQUIRE) {
        if (ix->has_uic)
            return err_set(err, errlen, LSIM_E_INVAL,
                           "%s: its User Interest Center holds the states of %s, not of %s: `lsim index uic --index "
                           "%s --uic %s`",
                           ix->dir, ix->uic.name, checkpoint, ix->dir, checkpoint);
        return err_set(err, errlen, LSIM_E_INVAL,
                       "%s: no User Interest Center (settings.uic is LSIM_UIC_REQUIRE): `lsim index uic --index %s "
                       "--uic %s`",
                       ix->dir, ix->dir, checkpoint);
    }
    return 0;
}

int lsim_engine_uses_uic(const lsim_engine *e)
{
    return e && e->uic;
}

/* The GSU vectors' parts per item and per category, if they fit in 512 MB;
 * the recency bias. */
static int tabulate_gsu(lsim_engine *e)
{
    const model_spec *s = &e->spec;
    if (s->gsu_recency) e->time_bias = param_find(model_params(e->master), "gsu.time_bias");
    size_t D = s->gsu_d, E = (size_t)s->base.d_item + s->base.d_cat, di = s->base.d_item, dc = s->base.d_cat;
    size_t ni = (size_t)s->base.n_items + 1, nc = (size_t)s->base.n_cats + 1;
    if ((ni + nc) * D * 2 * sizeof(float) > ((size_t)512 << 20)) return 0;
    const param_set *ps = model_params(e->master);
    const float *ti = param_find(ps, "emb.item"), *tc = param_find(ps, "emb.cat");
    const float *wa = param_find(ps, "gsu.wa"), *wb = param_find(ps, "gsu.wb");
    e->ki = malloc(ni * D * sizeof(float));
    e->qi = malloc(ni * D * sizeof(float));
    e->kc = malloc(nc * D * sizeof(float));
    e->qc = malloc(nc * D * sizeof(float));
    if (!e->ki || !e->qi || !e->kc || !e->qc) return LSIM_E_NOMEM;
    for (size_t i = 0; i < ni; i++) {
        soft_score_part(e->ki + i * D, wb, E, 0, di, ti + i * di, D);
        soft_score_part(e->qi + i * D, wa, E, 0, di, ti + i * di, D);
    }
    for (size_t c = 0; c < nc; c++) {
        soft_score_part(e->kc + c * D, wb, E, di, dc, tc + c * dc, D);
        soft_score_part(e->qc + c * D, wa, E, di, dc, tc + c * dc, D);
    }
    return 0;
}

int lsim_engine_open(lsim_engine **out, const char *index_dir, const char *checkpoint, const lsim_settings *s,
                     char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out) return err_set(err, errlen, LSIM_E_INVAL, "lsim_engine_open: out is NULL");
    *out = NULL;
    if (!index_dir || !checkpoint)
        return err_set(err, errlen, LSIM_E_INVAL, "lsim_engine_open: %s is NULL",
                       index_dir ? "checkpoint" : "index_dir");
    lsim_settings def;
    lsim_settings_default(&def);
    lsim_engine *e = calloc(1, sizeof *e);
    if (!e) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    uint32_t ck_short = 50, ck_long = 54000;
    int rc = read_sampling(e, checkpoint, &ck_short, &ck_long, err, errlen);
    if (!rc) rc = resolve_settings(e, s ? s : &def, ck_short, ck_long, err, errlen);
    if (!rc) rc = lsim_index_open(&e->ix, index_dir, err, errlen);
    if (!rc) {
        unsigned flags = e->long_kind == ENGINE_LONG_AVGPOOL ? MODEL_LONG_SHARED : 0;
        rc = model_load_ex(&e->master, checkpoint, 1, e->set.short_len, e->long_width ? e->long_width : 1, flags, err,
                           errlen);
    }
    if (!rc) rc = check_finite(model_params(e->master), checkpoint, err, errlen);
    if (!rc) rc = check_finite(model_buffers(e->master), checkpoint, err, errlen);
    if (!rc && e->long_kind == ENGINE_LONG_SOFT && (rc = tabulate_gsu(e)))
        err_set(err, errlen, rc, "out of memory for the GSU tables");
    if (!rc && e->long_kind == ENGINE_LONG_ALL && e->set.uic != LSIM_UIC_OFF) rc = match_uic(e, checkpoint, err, errlen);
    if (!rc) { /* the index's last event: with the clock, it bounds a request's `now` */
        lsim_index_reader *rd = NULL;
        int64_t first = 0, last = 0;
        rc = lsim_index_reader_new(e->ix, &rd);
        if (!rc && (rc = index_time_range(rd, &first, &last)))
            err_set(err, errlen, rc, "%s: %s", index_dir, lsim_index_reader_errmsg(rd));
        else if (rc)
            err_set(err, errlen, rc, "%s: cannot open a reader", index_dir);
        lsim_index_reader_free(rd);
        e->last_event = last;
    }
    if (rc) {
        lsim_engine_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

void lsim_engine_close(lsim_engine *e)
{
    if (!e) return;
    free(e->ki);
    free(e->kc);
    free(e->qi);
    free(e->qc);
    model_free(e->master);
    lsim_index_close(e->ix);
    free(e);
}

static size_t up64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

static size_t hash_size(size_t b)
{
    size_t s = 16;
    while (s < 2 * b) s *= 2;
    return s;
}

/* Carves the context's arrays from one allocation (mem NULL: only counts). */
static size_t carve(lsim_ctx *c, char *mem)
{
    const lsim_engine *e = c->e;
    size_t B = e->set.max_candidates, S = e->set.short_len, K = e->long_width;
    size_t long_rows = e->long_kind == ENGINE_LONG_AVGPOOL ? K : B * K, off = 0;
    size_t E = (size_t)e->spec.base.d_item + e->spec.base.d_cat, W = e->gsu_w, N = e->set.long_max;
    int soft = e->long_kind == ENGINE_LONG_SOFT;
#define TAKE(ptr, count)                                                   \
    do {                                                                   \
        if (mem) (ptr) = (void *)(mem + off);                              \
        off += up64((size_t)(count) * sizeof *(ptr));                      \
    } while (0)
    TAKE(c->t_item, B);
    TAKE(c->t_cat, B);
    TAKE(c->now, B);
    TAKE(c->logits, B);
    TAKE(c->h_item, B * S);
    TAKE(c->h_cat, B * S);
    TAKE(c->h_ts, B * S);
    TAKE(c->h_len, B);
    TAKE(c->l_item, long_rows ? long_rows : 1);
    TAKE(c->l_cat, long_rows ? long_rows : 1);
    TAKE(c->l_ts, long_rows ? long_rows : 1);
    TAKE(c->l_len, B);
    TAKE(c->l_src, long_rows ? long_rows : 1);
    if (e->long_kind == ENGINE_LONG_HARD && !e->long_before_short) {
        TAKE(c->hev, B * K);
        TAKE(c->hcnt, B);
        TAKE(c->hslot, B);
        TAKE(c->hkey, hash_size(B));
        TAKE(c->hval, hash_size(B));
        TAKE(c->hgen, hash_size(B));
        c->hsize = hash_size(B);
    }
    TAKE(c->cmap, B);
    TAKE(c->dslot, hash_size(B));
    c->dsize = hash_size(B);
    TAKE(c->att, K ? K : 1);
    if (e->long_kind == ENGINE_LONG_ALL) {
        mimn_config mc;
        model_spec_mimn(&mc, &e->spec);
        TAKE(c->mstate, mimn_state_floats(&mc));
        TAKE(c->mscratch, mimn_fold_scratch_floats(&mc));
        TAKE(c->fitem, ENGINE_FOLD_CHUNK);
        TAKE(c->fcat, ENGINE_FOLD_CHUNK);
    }
    if (soft) {
        TAKE(c->ea, E);
        TAKE(c->keys, N * W);
        TAKE(c->queries, B * W);
        TAKE(c->sel, B * K);
        TAKE(c->sel_cnt, B);
        TAKE(c->litems, N);
        TAKE(c->lcats, N);
        TAKE(c->ltags, N);
        if (mem) c->sr_mem = mem + off;
        off += up64(soft_request_bytes((soft_mode)e->set.soft_search, N, W, K, (size_t)e->spec.base.n_cats + 2));
    }
#undef TAKE
    return off;
}

/* How many of the user's newest events a request needs: the short-term
 * window, and the long-term list's window when it is not read per category. */
static size_t events_needed(const lsim_engine *e)
{
    size_t S = e->set.short_len, L = e->set.long_max;
    switch (e->long_kind) {
    case ENGINE_LONG_NONE: return S;
    case ENGINE_LONG_HARD: return e->long_before_short ? SIZE_MAX : S; /* per category otherwise */
    case ENGINE_LONG_ALL: return e->uic ? 0 : SIZE_MAX; /* the UIC: read with the state, the few events after it */
    default: return e->long_before_short ? S + L : (S > L ? S : L);
    }
}

int lsim_ctx_new(lsim_engine *e, lsim_ctx **out)
{
    if (!out) return LSIM_E_INVAL;
    *out = NULL;
    if (!e) return LSIM_E_INVAL;
    lsim_ctx *c = calloc(1, sizeof *c);
    if (!c) return LSIM_E_NOMEM;
    c->e = e;
    size_t bytes = carve(c, NULL);
    int rc = (c->mem = aligned_alloc(64, up64(bytes))) ? 0 : LSIM_E_NOMEM;
    if (!rc) {
        carve(c, c->mem);
        if (c->hgen) memset(c->hgen, 0, c->hsize * sizeof *c->hgen);
        c->ev_need = events_needed(e);
        if (c->ev_need != SIZE_MAX) {
            c->ev_cap = c->ev_need ? c->ev_need : 1;
            if (!(c->ev = malloc(c->ev_cap * sizeof *c->ev))) rc = LSIM_E_NOMEM;
        }
    }
    if (!rc) rc = lsim_index_reader_new(e->ix, &c->rd);
    if (!rc) {
        unsigned flags = e->long_kind == ENGINE_LONG_AVGPOOL ? MODEL_LONG_SHARED : 0;
        rc = model_new_sharing(&c->m, e->master, e->set.max_candidates, e->set.short_len,
                               e->long_width ? e->long_width : 1, flags);
    }
    if (!rc && e->uic) rc = uic_mimn_init(&c->um, c->m, e->ckpt_id, e->ckpt_name, c->mscratch);
    if (!rc && e->long_kind == ENGINE_LONG_SOFT)
        rc = soft_request_init(&c->sr, c->sr_mem, (soft_mode)e->set.soft_search, e->set.long_max, e->gsu_w,
                               e->topk, e->set.max_candidates, (size_t)e->spec.base.n_cats + 2,
                               e->set.approx_fraction, c->errmsg, sizeof c->errmsg);

    if (rc) {
        lsim_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void lsim_ctx_free(lsim_ctx *c)
{
    if (!c) return;
    uic_mimn_free(&c->um);
    free(c->uic_ids);
    model_free(c->m);
    soft_request_destroy(&c->sr);
    lsim_index_reader_free(c->rd);
    free(c->ev);
    free(c->mem);
    free(c);
}

const char *lsim_ctx_errmsg(const lsim_ctx *c)
{
    return c ? c->errmsg : "";
}
