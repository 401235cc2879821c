/*
 * request_gen.c: see request_gen.h.
 *
 * The vocabulary's strings are read under the index's lock each time a
 * request is made (an append in this process could grow the vocabulary);
 * the pointers stay valid until the index is closed.
 */
#include "train/request_gen.h"

#include "index/index_internal.h"
#include "storage/error_detail.h"
#include "train/item_draw.h"

#include <stdlib.h>
#include <string.h>

struct request_gen {
    request_gen_config c;
    lsim_index *ix;
    lsim_index_reader *rd;
    uint32_t n_users, n_items;
    uint64_t *pop_cum;     /* (n_items) cumulative counts before from; NULL: uniform */
    uint32_t *taken;       /* (n_items) the request number that took the item (0: none) */
    uint32_t stamp;
    uint64_t window, left, want; /* requests in the window, not yet passed, still to pick */
    uint64_t rng;
    /* the current user */
    uint32_t user;         /* next user to read */
    ubt_event *ev;
    size_t ev_n, ev_cap, pos;
    /* the request handed out */
    uint32_t *ids;
    float *label;
    const char **item, **cat;
    size_t cap;
};

void request_gen_config_default(request_gen_config *c)
{
    memset(c, 0, sizeof *c);
    c->from = INT64_MIN;
    c->to = INT64_MAX;
    c->negatives = 299;
    c->neg = NEG_POPULARITY;
    c->seed = 1;
}

static int in_window(const request_gen *g, int64_t ts)
{
    return ts >= g->c.from && ts < g->c.to;
}

static int read_user(request_gen *g, uint32_t u, char *err, size_t errlen)
{
    int rc = index_user_events(g->rd, u, INT64_MAX, &g->ev, &g->ev_cap, &g->ev_n);
    if (rc) return err_set(err, errlen, rc, "reading user %u's events: %s", u, lsim_index_reader_errmsg(g->rd));
    return 0;
}

void request_gen_free(request_gen *g)
{
    if (!g) return;
    lsim_index_reader_free(g->rd);
    free(g->pop_cum);
    free(g->taken);
    free(g->ev);
    free(g->ids);
    free(g->label);
    free(g->item);
    free(g->cat);
    free(g);
}

int request_gen_open(request_gen **out, lsim_index *ix, const request_gen_config *c, char *err, size_t errlen)
{
    *out = NULL;
    if (c->from >= c->to) return err_set(err, errlen, LSIM_E_INVAL, "gen requests: the window [from, to) is empty");
    request_gen *g = calloc(1, sizeof *g);
    if (!g) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    g->c = *c;
    g->ix = ix;
    g->rng = c->seed ^ 0x9b05688c2b3e6c1fULL;
    int rc = lsim_index_reader_new(ix, &g->rd);
    if (rc) {
        free(g);
        return err_set(err, errlen, rc, "gen requests: cannot open an index reader");
    }
    pthread_rwlock_rdlock(&ix->lock);
    g->n_users = vocab_size(ix->voc[IX_USER]);
    g->n_items = vocab_size(ix->voc[IX_ITEM]);
    pthread_rwlock_unlock(&ix->lock);
    size_t cap = (size_t)c->negatives + 64;
    g->pop_cum = calloc((size_t)g->n_items + 1, sizeof *g->pop_cum);
    g->taken = calloc((size_t)g->n_items + 1, sizeof *g->taken);
    g->ids = malloc(cap * sizeof *g->ids);
    g->label = malloc(cap * sizeof *g->label);
    g->item = malloc(cap * sizeof *g->item);
    g->cat = malloc(cap * sizeof *g->cat);
    g->cap = cap;
    if (!g->pop_cum || !g->taken || !g->ids || !g->label || !g->item || !g->cat) {
        request_gen_free(g);
        return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    }
    /* one pass: counts before the window, requests in it (distinct times per user) */
    for (uint32_t u = 0; u < g->n_users; u++) {
        if ((rc = read_user(g, u, err, errlen))) {
            request_gen_free(g);
            return rc;
        }
        for (size_t i = 0; i < g->ev_n; i++) {
            const ubt_event *e = &g->ev[i];
            if (e->ts < c->from && e->item < g->n_items) g->pop_cum[e->item]++;
            if (in_window(g, e->ts) && (i == 0 || g->ev[i - 1].ts != e->ts || !in_window(g, g->ev[i - 1].ts)))
                g->window++;
        }
    }
    uint64_t acc = 0;
    for (uint32_t i = 0; i < g->n_items; i++) g->pop_cum[i] = acc += g->pop_cum[i];
    if (c->neg == NEG_UNIFORM || acc == 0) {
        free(g->pop_cum);
        g->pop_cum = NULL;
    }
    g->left = g->window;
    g->want = c->max_requests && c->max_requests < g->window ? c->max_requests : g->window;
    g->ev_n = g->pos = 0;
    *out = g;
    return 0;
}

uint64_t request_gen_window(const request_gen *g)
{
    return g->window;
}

static int grow_to(request_gen *g, size_t need)
{
    if (need <= g->cap) return 0;
    size_t cap = 2 * need;
    uint32_t *ids = realloc(g->ids, cap * sizeof *ids);
    if (ids) g->ids = ids;
    float *l = realloc(g->label, cap * sizeof *l);
    if (l) g->label = l;
    const char **it = realloc(g->item, cap * sizeof *it);
    if (it) g->item = it;
    const char **ct = realloc(g->cat, cap * sizeof *ct);
    if (ct) g->cat = ct;
    if (!ids || !l || !it || !ct) return LSIM_E_NOMEM;
    g->cap = cap;
    return 0;
}

/* The next (user, time) of the window, whether picked or not: its events are
 * ev[*lo, *hi). 0 at the end. */
static int next_time(request_gen *g, size_t *lo, size_t *hi, char *err, size_t errlen)
{
    for (;;) {
        while (g->pos < g->ev_n && !in_window(g, g->ev[g->pos].ts)) g->pos++;
        if (g->pos < g->ev_n) {
            size_t a = g->pos, b = a + 1;
            while (b < g->ev_n && g->ev[b].ts == g->ev[a].ts) b++;
            g->pos = b;
            *lo = a;
            *hi = b;
            return 1;
        }
        if (g->user >= g->n_users) return 0;
        int rc = read_user(g, g->user++, err, errlen);
        if (rc) return rc;
        g->pos = 0;
    }
}

int request_gen_next(request_gen *g, gen_request *r, char *err, size_t errlen)
{
    size_t lo = 0, hi = 0;
    for (;;) {
        if (!g->want) return 0;
        int got = next_time(g, &lo, &hi, err, errlen);
        if (got <= 0) return got;
        /* selection sampling: pick with probability want / left */
        uint64_t left = g->left--;
        if (tr_rnd_below(&g->rng, left) < g->want) break;
    }
    g->want--;
    if (++g->stamp == 0) { /* wrapped: clear the marks */
        memset(g->taken, 0, ((size_t)g->n_items + 1) * sizeof *g->taken);
        g->stamp = 1;
    }
    size_t n = 0;
    if (grow_to(g, hi - lo + g->c.negatives)) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    for (size_t i = lo; i < hi; i++) { /* the positives: the distinct items taken at this time */
        uint32_t it = g->ev[i].item;
        if (it >= g->n_items || g->taken[it] == g->stamp) continue;
        g->taken[it] = g->stamp;
        g->ids[n] = it;
        g->label[n++] = 1.0f;
    }
    size_t pos = n, attempts = 0, max_attempts = 64 * (size_t)g->c.negatives + 1024;
    while (n < pos + g->c.negatives && attempts++ < max_attempts && g->n_items) {
        uint32_t it = tr_draw_item(g->pop_cum, g->n_items, &g->rng);
        if (g->taken[it] == g->stamp) continue;
        g->taken[it] = g->stamp;
        g->ids[n] = it;
        g->label[n++] = 0.0f;
    }
    for (size_t i = n; i > 1; i--) { /* shuffle the candidates */
        size_t j = (size_t)tr_rnd_below(&g->rng, i);
        uint32_t t = g->ids[i - 1];
        float l = g->label[i - 1];
        g->ids[i - 1] = g->ids[j];
        g->label[i - 1] = g->label[j];
        g->ids[j] = t;
        g->label[j] = l;
    }
    lsim_index *ix = g->ix;
    pthread_rwlock_rdlock(&ix->lock);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = vocab_cat(ix->voc[IX_ITEM], g->ids[i]);
        g->item[i] = vocab_str(ix->voc[IX_ITEM], g->ids[i]);
        g->cat[i] = c == VOCAB_NO_CAT ? NULL : vocab_str(ix->voc[IX_CAT], c);
    }
    r->user = vocab_str(ix->voc[IX_USER], g->user - 1);
    pthread_rwlock_unlock(&ix->lock);
    r->time = g->ev[lo].ts;
    r->n = n;
    r->positives = pos;
    r->item = g->item;
    r->cat = g->cat;
    r->label = g->label;
    return 1;
}
