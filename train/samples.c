/*
 * samples.c: see samples.h.
 */
#include "train/samples.h"

#include "index/index_internal.h"
#include "train/item_draw.h"
#include "storage/error_detail.h"

#include <stdlib.h>
#include <string.h>

struct sample_source {
    sample_config c;
    lsim_index *ix;
    lsim_index_reader *rd;
    uint32_t n_users, n_items, n_cats;
    uint32_t *item_cat;    /* (n_items) */
    uint32_t *item_count;  /* (n_items) events before test_from */
    uint64_t *pop_cum;     /* (n_items) cumulative counts; NULL: uniform */
    uint64_t positives;    /* per pass */
    uint64_t rng;          /* order, caps, negatives */
    uint64_t rng_aux;      /* DIEN's history negatives: a stream of their own, so that
                              the samples are the same whether they are drawn or not */
    uint32_t *order;       /* (n_users) this pass's user order */
    size_t next_user;
    size_t next_given;     /* given mode: the next sample of c.given */
    /* the window: its users' events, back to back */
    ubt_event *ev;
    size_t ev_n, ev_cap;
    ubt_event *one;        /* one user's events as read */
    size_t one_cap;
    struct win_user { size_t off, n; uint32_t user; } *wu;
    size_t wu_n;
    uint32_t *pick;        /* scratch: a user's eligible positions */
    size_t pick_cap;
    struct sample_ref { uint32_t slot, pos, item, cat; int64_t t; float label; } *smp;
    size_t smp_n, smp_cap, smp_next;
    /* the batch handed out */
    uint32_t *target_item, *target_cat, *hist_item, *hist_cat, *hist_len, *hist_neg_item, *hist_neg_cat;
    uint32_t *long_item, *long_cat, *long_len, *users;
    int64_t *hist_ts, *long_ts, *now;
    float *label;
    size_t long_width;
    /* LONG_ALL: the batch's whole histories, back to back */
    uint32_t *all_item, *all_cat, *all_len;
    size_t *all_off, all_n, all_cap;
    uint64_t win_gen;                    /* windows loaded: with (slot, pos) names a history */
    struct { uint64_t gen; uint32_t slot, pos; } all_last; /* the batch's last copied history (sample b > 0) */
};

void sample_config_default(sample_config *c)
{
    memset(c, 0, sizeof *c);
    c->split = SAMPLES_TRAIN;
    c->train_from = INT64_MIN;
    c->batch = 256;
    c->short_len = 50;
    c->long_mode = LONG_NONE;
    c->long_k = 50;
    c->long_max = 1000;
    c->negatives = 1;
    c->neg = NEG_POPULARITY;
    c->user_cap = 200;
    c->window_users = 512;
    c->seed = 1;
}

size_t sample_config_long_width(const sample_config *c)
{
    return c->long_mode == LONG_HARD ? c->long_k : c->long_mode == LONG_FULL ? c->long_max : 0;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return tr_rnd_below(s, n);
}

static uint32_t draw_item(sample_source *s, uint64_t *rng)
{
    return tr_draw_item(s->pop_cum, s->n_items, rng);
}

static int in_split(const sample_source *s, int64_t ts)
{
    return s->c.split == SAMPLES_TRAIN ? ts < s->c.test_from && ts >= s->c.train_from : ts >= s->c.test_from;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * size);
    if (!q) return LSIM_E_NOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int read_user(sample_source *s, uint32_t user, size_t *n, char *err, size_t errlen)
{
    int rc = index_user_events(s->rd, user, INT64_MAX, &s->one, &s->one_cap, n);
    if (rc) return err_set(err, errlen, rc, "reading user %u's events: %s", user, lsim_index_reader_errmsg(s->rd));
    return 0;
}

static void shuffle_u32(uint64_t *rng, uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rnd_below(rng, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void sample_source_rewind(sample_source *s)
{
    for (uint32_t u = 0; u < s->n_users; u++) s->order[u] = u;
    shuffle_u32(&s->rng, s->order, s->n_users);
    s->next_user = 0;
    s->next_given = 0;
    s->smp_n = s->smp_next = 0;
}

int sample_source_open(sample_source **out, lsim_index *ix, const sample_config *c, char *err, size_t errlen)
{
    *out = NULL;
    if (!c->batch || !c->short_len || (c->long_mode == LONG_HARD && !c->long_k) ||
        (c->long_mode == LONG_FULL && !c->long_max) || !c->window_users)
        return err_set(err, errlen, LSIM_E_INVAL, "samples: batch, short_len, long_k / long_max and window_users "
                                                  "must be positive");
    sample_source *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    s->c = *c;
    s->ix = ix;
    s->rng = c->seed ^ 0x5851f42d4c957f2dULL;
    s->rng_aux = c->seed ^ 0x2545f4914f6cdd1dULL;
    int rc = lsim_index_reader_new(ix, &s->rd);
    if (rc) {
        free(s);
        return err_set(err, errlen, rc, "samples: cannot open an index reader");
    }
    pthread_rwlock_rdlock(&ix->lock);
    s->n_users = vocab_size(ix->voc[IX_USER]);
    s->n_items = vocab_size(ix->voc[IX_ITEM]);
    s->n_cats = vocab_size(ix->voc[IX_CAT]);
    s->item_cat = malloc(((size_t)s->n_items + 1) * sizeof *s->item_cat);
    if (s->item_cat)
        for (uint32_t i = 0; i < s->n_items; i++) s->item_cat[i] = vocab_cat(ix->voc[IX_ITEM], i);
    pthread_rwlock_unlock(&ix->lock);
    s->item_count = calloc((size_t)s->n_items + 1, sizeof *s->item_count);
    s->order = malloc(((size_t)s->n_users + 1) * sizeof *s->order);
    s->wu = malloc(c->window_users * sizeof *s->wu);
    size_t B = c->batch, S = c->short_len;
    s->long_width = sample_config_long_width(c);
    size_t L = s->long_width ? s->long_width : 1;
    s->target_item = malloc(B * sizeof(uint32_t));
    s->target_cat = malloc(B * sizeof(uint32_t));
    s->users = malloc(B * sizeof(uint32_t));
    s->hist_len = malloc(B * sizeof(uint32_t));
    s->long_len = malloc(B * sizeof(uint32_t));
    s->now = malloc(B * sizeof(int64_t));
    s->label = malloc(B * sizeof(float));
    s->hist_item = calloc(B * S, sizeof(uint32_t));
    s->hist_cat = calloc(B * S, sizeof(uint32_t));
    s->hist_neg_item = calloc(B * S, sizeof(uint32_t));
    s->hist_neg_cat = calloc(B * S, sizeof(uint32_t));
    s->hist_ts = calloc(B * S, sizeof(int64_t));
    s->long_item = calloc(B * L, sizeof(uint32_t));
    s->long_cat = calloc(B * L, sizeof(uint32_t));
    s->long_ts = calloc(B * L, sizeof(int64_t));
    s->all_off = calloc(B, sizeof *s->all_off);
    s->all_len = calloc(B, sizeof *s->all_len);
    if (!s->item_cat || !s->item_count || !s->order || !s->wu || !s->target_item || !s->target_cat || !s->users ||
        !s->hist_len || !s->long_len || !s->now || !s->label || !s->hist_item || !s->hist_cat || !s->hist_neg_item ||
        !s->hist_neg_cat || !s->hist_ts || !s->long_item || !s->long_cat || !s->long_ts || !s->all_off || !s->all_len) {
        sample_source_free(s);
        return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    }
    /* one pass: item counts before test_from, positives per pass */
    for (uint32_t u = 0; u < s->n_users; u++) {
        size_t n;
        if ((rc = read_user(s, u, &n, err, errlen))) {
            sample_source_free(s);
            return rc;
        }
        uint64_t elig = 0;
        for (size_t i = 0; i < n; i++) {
            const ubt_event *e = &s->one[i];
            if (e->ts < c->test_from && e->item < s->n_items) s->item_count[e->item]++;
            elig += in_split(s, e->ts);
        }
        s->positives += c->user_cap && elig > c->user_cap ? c->user_cap : elig;
    }
    if (c->given) s->positives = c->n_given; /* "positives" here: the samples of a pass */
    if (c->neg == NEG_POPULARITY && s->n_items) {
        s->pop_cum = malloc((size_t)s->n_items * sizeof *s->pop_cum);
        if (!s->pop_cum) {
            sample_source_free(s);
            return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
        }
        uint64_t acc = 0;
        for (uint32_t i = 0; i < s->n_items; i++) s->pop_cum[i] = acc += s->item_count[i];
        if (!acc) { /* nothing before test_from: uniform */
            free(s->pop_cum);
            s->pop_cum = NULL;
        }
    }
    sample_source_rewind(s);
    *out = s;
    return 0;
}

void sample_source_free(sample_source *s)
{
    if (!s) return;
    lsim_index_reader_free(s->rd);
    void *ptrs[] = {s->item_cat, s->item_count, s->pop_cum, s->order, s->ev, s->one, s->wu, s->pick, s->smp,
                    s->target_item, s->target_cat, s->hist_item, s->hist_cat, s->hist_len, s->hist_neg_item,
                    s->hist_neg_cat, s->long_item, s->long_cat, s->long_len, s->users, s->hist_ts, s->long_ts,
                    s->now, s->label, s->all_item, s->all_cat, s->all_off, s->all_len};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
    free(s);
}

/* The count of events strictly before t (the first position with ts >= t). */
static uint32_t before_count(const ubt_event *e, size_t n, int64_t t)
{
    return (uint32_t)ubt_events_before(e, n, t);
}

/* Given mode: the next window_users runs of one user's given samples, in order. */
static int load_given(sample_source *s, char *err, size_t errlen)
{
    const sample_config *c = &s->c;
    s->win_gen++;
    s->ev_n = s->wu_n = s->smp_n = s->smp_next = 0;
    while (s->wu_n < c->window_users && s->next_given < c->n_given) {
        uint32_t u = c->given[s->next_given].user;
        size_t n = 0;
        if (u != SAMPLE_NO_USER) {
            if (u >= s->n_users) return err_set(err, errlen, LSIM_E_INVAL, "samples: user %u is not in the index", u);
            int rc = read_user(s, u, &n, err, errlen);
            if (rc) return rc;
        }
        if (grow((void **)&s->ev, &s->ev_cap, s->ev_n + n, sizeof *s->ev))
            return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
        const ubt_event *e = s->ev + s->ev_n;
        if (n) memcpy(s->ev + s->ev_n, s->one, n * sizeof *e);
        uint32_t slot = (uint32_t)s->wu_n;
        s->wu[s->wu_n++] = (struct win_user){s->ev_n, n, u};
        for (; s->next_given < c->n_given && c->given[s->next_given].user == u; s->next_given++) {
            const sample_given *g = &c->given[s->next_given];
            if (grow((void **)&s->smp, &s->smp_cap, s->smp_n + 1, sizeof *s->smp))
                return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
            s->smp[s->smp_n++] = (struct sample_ref){slot, before_count(e, n, g->t), g->item, g->cat, g->t, g->label};
        }
        s->ev_n += n;
    }
    return 0;
}

/* Reads the next window of users and lists their samples, shuffled. 0 with
 * smp_n == 0 when no user is left. */
static int load_window(sample_source *s, char *err, size_t errlen)
{
    if (s->c.given) return load_given(s, err, errlen);
    s->win_gen++;
    s->ev_n = s->wu_n = s->smp_n = s->smp_next = 0;
    const sample_config *c = &s->c;
    while (s->smp_n == 0 && s->next_user < s->n_users) {
        s->ev_n = s->wu_n = 0;
        while (s->wu_n < c->window_users && s->next_user < s->n_users) {
            uint32_t u = s->order[s->next_user++];
            size_t n;
            int rc = read_user(s, u, &n, err, errlen);
            if (rc) return rc;
            if (grow((void **)&s->ev, &s->ev_cap, s->ev_n + n, sizeof *s->ev) ||
                grow((void **)&s->pick, &s->pick_cap, n, sizeof *s->pick))
                return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
            ubt_event *e = s->ev + s->ev_n;
            memcpy(e, s->one, n * sizeof *e);
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (in_split(s, e[i].ts)) s->pick[m++] = (uint32_t)i;
            if (!m) continue;
            size_t take = c->user_cap && m > c->user_cap ? c->user_cap : m;
            if (take < m) /* a uniform subset: the first `take` of a partial Fisher-Yates */
                for (size_t i = 0; i < take; i++) {
                    size_t j = i + (size_t)rnd_below(&s->rng, m - i);
                    uint32_t t = s->pick[i];
                    s->pick[i] = s->pick[j];
                    s->pick[j] = t;
                }
            size_t per = 1 + (size_t)c->negatives;
            if (grow((void **)&s->smp, &s->smp_cap, s->smp_n + take * per, sizeof *s->smp))
                return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
            uint32_t slot = (uint32_t)s->wu_n;
            s->wu[s->wu_n++] = (struct win_user){s->ev_n, n, u};
            for (size_t i = 0; i < take; i++) {
                const ubt_event *pe = &e[s->pick[i]];
                uint32_t pos = before_count(e, n, pe->ts);
                s->smp[s->smp_n++] = (struct sample_ref){slot, pos, pe->item, pe->cat, pe->ts, 1.0f};
                for (size_t k = 0; k < c->negatives; k++) {
                    uint32_t it = draw_item(s, &s->rng);
                    s->smp[s->smp_n++] = (struct sample_ref){slot, pos, it, s->item_cat[it], pe->ts, 0.0f};
                }
            }
            s->ev_n += n;
        }
    }
    for (size_t i = s->smp_n; i > 1; i--) { /* shuffle the window's samples */
        size_t j = (size_t)rnd_below(&s->rng, i);
        struct sample_ref t = s->smp[i - 1];
        s->smp[i - 1] = s->smp[j];
        s->smp[j] = t;
    }
    return 0;
}

/* LONG_ALL: room for `more` ids past all_n in all_item and all_cat. */
static int grow_all(sample_source *s, size_t more)
{
    size_t need = s->all_n + more, cap = s->all_cap;
    if (need <= cap) return 0;
    size_t n = cap ? cap : 4096;
    while (n < need) n *= 2;
    uint32_t *a = realloc(s->all_item, n * sizeof *a);
    if (!a) return LSIM_E_NOMEM;
    s->all_item = a;
    uint32_t *c = realloc(s->all_cat, n * sizeof *c);
    if (!c) return LSIM_E_NOMEM;
    s->all_cat = c;
    s->all_cap = n;
    return 0;
}

static int fill_one(sample_source *s, size_t b, const struct sample_ref *r)
{
    const sample_config *c = &s->c;
    const struct win_user *w = &s->wu[r->slot];
    const ubt_event *e = s->ev + w->off;
    size_t S = c->short_len, p = r->pos;
    s->target_item[b] = r->item;
    s->target_cat[b] = r->cat;
    s->users[b] = w->user;
    s->now[b] = r->t;
    s->label[b] = r->label;
    size_t h0 = p > S ? p - S : 0, hl = p - h0;
    s->hist_len[b] = (uint32_t)hl;
    for (size_t j = 0; j < S; j++) {
        size_t o = b * S + j;
        if (j < hl) {
            const ubt_event *x = &e[h0 + j];
            s->hist_item[o] = x->item;
            s->hist_cat[o] = x->cat;
            s->hist_ts[o] = x->ts;
            if (c->dien_negatives) {
                uint32_t it = draw_item(s, &s->rng_aux);
                if (it == x->item) it = draw_item(s, &s->rng_aux);
                s->hist_neg_item[o] = it;
                s->hist_neg_cat[o] = s->item_cat[it];
            }
        } else {
            s->hist_item[o] = s->hist_cat[o] = s->hist_neg_item[o] = s->hist_neg_cat[o] = 0;
            s->hist_ts[o] = 0;
        }
    }
    if (c->long_mode == LONG_ALL) { /* every event before t, whatever long_before_short says */
        if (b > 0 && s->all_last.gen == s->win_gen && s->all_last.slot == r->slot && s->all_last.pos == p) {
            s->all_off[b] = s->all_off[b - 1]; /* the previous sample's history: one copy (a request's candidates) */
        } else {
            if (grow_all(s, p)) return LSIM_E_NOMEM;
            s->all_off[b] = s->all_n;
            for (size_t j = 0; j < p; j++) s->all_item[s->all_n + j] = e[j].item, s->all_cat[s->all_n + j] = e[j].cat;
            s->all_n += p;
            s->all_last.gen = s->win_gen, s->all_last.slot = r->slot, s->all_last.pos = (uint32_t)p;
        }
        s->all_len[b] = (uint32_t)p;
    }
    size_t L = s->long_width, n = 0;
    if (c->long_before_short) p = h0; /* the long-term list ends where the short-term window starts */
    if (c->long_mode == LONG_HARD) {
        /* the newest long_k before t in the target's category, stored oldest first */
        size_t i = p;
        while (i > 0 && n < L)
            if (e[--i].cat == r->cat) n++;
        size_t k = 0;
        for (size_t j = i; j < p && k < n; j++)
            if (e[j].cat == r->cat) {
                s->long_item[b * L + k] = e[j].item;
                s->long_cat[b * L + k] = e[j].cat;
                s->long_ts[b * L + k] = e[j].ts;
                k++;
            }
    } else if (c->long_mode == LONG_FULL) {
        size_t l0 = p > L ? p - L : 0;
        n = p - l0;
        for (size_t j = 0; j < n; j++) {
            s->long_item[b * L + j] = e[l0 + j].item;
            s->long_cat[b * L + j] = e[l0 + j].cat;
            s->long_ts[b * L + j] = e[l0 + j].ts;
        }
    }
    if (L) {
        s->long_len[b] = (uint32_t)n;
        for (size_t j = n; j < L; j++) {
            s->long_item[b * L + j] = s->long_cat[b * L + j] = 0;
            s->long_ts[b * L + j] = 0;
        }
    }
    return 0;
}

int sample_source_next(sample_source *s, model_batch *bt, const uint32_t **users, char *err, size_t errlen)
{
    memset(bt, 0, sizeof *bt);
    size_t b = 0;
    s->all_n = 0;
    while (b < s->c.batch) {
        if (s->smp_next == s->smp_n) {
            int rc = load_window(s, err, errlen);
            if (rc) return rc;
            if (!s->smp_n) break;
        }
        /* rows are copies: a batch may span two windows */
        while (b < s->c.batch && s->smp_next < s->smp_n)
            if (fill_one(s, b++, &s->smp[s->smp_next++])) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    }
    bt->b = b;
    bt->target_item = s->target_item;
    bt->target_cat = s->target_cat;
    bt->s = s->c.short_len;
    bt->hist_item = s->hist_item;
    bt->hist_cat = s->hist_cat;
    bt->hist_len = s->hist_len;
    bt->hist_ts = s->hist_ts;
    bt->hist_neg_item = s->c.dien_negatives ? s->hist_neg_item : NULL;
    bt->hist_neg_cat = s->c.dien_negatives ? s->hist_neg_cat : NULL;
    bt->k = s->long_width;
    bt->long_item = s->long_width ? s->long_item : NULL;
    bt->long_cat = s->long_width ? s->long_cat : NULL;
    bt->long_ts = s->long_width ? s->long_ts : NULL;
    bt->long_len = s->long_width ? s->long_len : NULL;
    bt->now = s->now;
    bt->label = s->label;
    if (s->c.long_mode == LONG_ALL) {
        bt->all_item = s->all_item;
        bt->all_cat = s->all_cat;
        bt->all_off = s->all_off;
        bt->all_len = s->all_len;
    }
    if (users) *users = s->users;
    return 0;
}

uint32_t sample_source_items(const sample_source *s)
{
    return s->n_items;
}

uint32_t sample_source_cats(const sample_source *s)
{
    return s->n_cats;
}

const uint32_t *sample_source_item_counts(const sample_source *s)
{
    return s->item_count;
}

uint64_t sample_source_positives(const sample_source *s)
{
    return s->positives;
}

const uint32_t *sample_source_item_cats(const sample_source *s)
{
    return s->item_cat;
}
