/*
 * request_log.c: see request_log.h.
 *
 * Storage: one text arena (every id, NUL-terminated, addressed by offset so
 * the arena may grow), an array of requests and one of candidates with a
 * parallel array of labels. A request being read is appended in place and
 * rolled back (the arrays' lengths restored) if it turns out bad.
 */
#define _POSIX_C_SOURCE 200809L
#include "loaders/request_log.h"

#include "loaders/json_scan.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_CAT UINT32_MAX

typedef struct req_rec {
    uint64_t line;
    uint32_t id_off, user_off;
    uint32_t id_len, user_len;
    uint32_t user_no;
    int64_t time;
    size_t first, n;
} req_rec;

typedef struct cand_rec {
    uint32_t item_off, cat_off; /* cat_off NO_CAT: none */
    uint32_t item_len, cat_len;
} cand_rec;

struct request_set {
    char *text;
    size_t text_len, text_cap;
    req_rec *req;
    size_t n_req, cap_req;
    cand_rec *cand;
    float *label;
    size_t n_cand, cap_cand;
    size_t max_n;
    uint64_t bad;
    /* users numbered in order of first appearance: an open-addressing table of
     * (text offset + 1, number), 0 = empty; at most half full */
    uint32_t *uh_off, *uh_no;
    size_t uh_cap, n_users;
};

void request_log_spec_default(request_log_spec *s)
{
    memset(s, 0, sizeof *s);
    log_spec_default(&s->log, LOG_FORMAT_CSV);
    s->ts_min = 1;
    s->ts_max = LOG_TS_MAX_DEFAULT;
}

/* ---- the set's storage ---------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return LSIM_E_NOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Appends len bytes and a NUL; *off gets their offset. */
static int put_text(request_set *s, const char *b, size_t len, uint32_t *off)
{
    if (s->text_len + len + 1 > UINT32_MAX) return LSIM_E_LIMIT;
    if (grow((void **)&s->text, &s->text_cap, s->text_len + len + 1, 1)) return LSIM_E_NOMEM;
    memcpy(s->text + s->text_len, b, len);
    s->text[s->text_len + len] = 0;
    *off = (uint32_t)s->text_len;
    s->text_len += len + 1;
    return 0;
}

static int put_cand(request_set *s, const char *item, size_t item_len, const char *cat, size_t cat_len, int label)
{
    if (s->n_cand == s->cap_cand) { /* candidates and labels grow together */
        size_t c = s->cap_cand ? 2 * s->cap_cand : 4096;
        cand_rec *cr = realloc(s->cand, c * sizeof *cr);
        if (!cr) return LSIM_E_NOMEM;
        s->cand = cr;
        float *l = realloc(s->label, c * sizeof *l);
        if (!l) return LSIM_E_NOMEM;
        s->label = l;
        s->cap_cand = c;
    }
    cand_rec *c = &s->cand[s->n_cand];
    int rc = put_text(s, item, item_len, &c->item_off);
    c->item_len = (uint32_t)item_len;
    c->cat_off = NO_CAT;
    c->cat_len = 0;
    if (!rc && cat) {
        rc = put_text(s, cat, cat_len, &c->cat_off);
        c->cat_len = (uint32_t)cat_len;
    }
    if (rc) return rc;
    s->label[s->n_cand++] = (float)label;
    return 0;
}

/* Opens the next request; its candidates start at candidate `first`. */
static int begin_req(request_set *s, uint64_t line, const char *id, size_t id_len, const char *user,
                     size_t user_len, int64_t time, size_t first)
{
    if (grow((void **)&s->req, &s->cap_req, s->n_req + 1, sizeof *s->req)) return LSIM_E_NOMEM;
    req_rec *r = &s->req[s->n_req];
    r->line = line;
    r->time = time;
    r->first = first;
    r->n = 0;
    r->id_len = (uint32_t)id_len;
    r->user_len = (uint32_t)user_len;
    int rc = put_text(s, id, id_len, &r->id_off);
    if (!rc) rc = put_text(s, user, user_len, &r->user_off);
    return rc;
}

/* The state before a request, to roll it back. */
typedef struct mark {
    size_t text_len, n_cand;
} mark;

static mark mark_now(const request_set *s)
{
    mark m = {s->text_len, s->n_cand};
    return m;
}

static void roll_back(request_set *s, mark m)
{
    s->text_len = m.text_len;
    s->n_cand = m.n_cand;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* The number of the user at text offset off (a new one if unseen). */
static int user_number(request_set *s, uint32_t off, uint32_t len, uint32_t *no)
{
    if (2 * (s->n_users + 1) > s->uh_cap) { /* grow and rehash */
        size_t cap = s->uh_cap ? 2 * s->uh_cap : 1024;
        uint32_t *o = calloc(cap, sizeof *o), *v = malloc(cap * sizeof *v);
        if (!o || !v) {
            free(o);
            free(v);
            return LSIM_E_NOMEM;
        }
        for (size_t i = 0; i < s->uh_cap; i++) {
            if (!s->uh_off[i]) continue;
            const char *u = s->text + s->uh_off[i] - 1;
            size_t k = hash_bytes(u, strlen(u)) & (cap - 1);
            while (o[k]) k = (k + 1) & (cap - 1);
            o[k] = s->uh_off[i];
            v[k] = s->uh_no[i];
        }
        free(s->uh_off);
        free(s->uh_no);
        s->uh_off = o;
        s->uh_no = v;
        s->uh_cap = cap;
    }
    const char *u = s->text + off;
    size_t k = hash_bytes(u, len) & (s->uh_cap - 1);
    for (; s->uh_off[k]; k = (k + 1) & (s->uh_cap - 1)) {
        const char *x = s->text + s->uh_off[k] - 1;
        if (strlen(x) == len && memcmp(x, u, len) == 0) {
            *no = s->uh_no[k];
            return 0;
        }
    }
    s->uh_off[k] = off + 1;
    s->uh_no[k] = *no = (uint32_t)s->n_users++;
    return 0;
}

static int end_req(request_set *s)
{
    req_rec *r = &s->req[s->n_req];
    if (user_number(s, r->user_off, r->user_len, &r->user_no)) return LSIM_E_NOMEM;
    s->n_req++;
    r->n = s->n_cand - r->first;
    if (r->n > s->max_n) s->max_n = r->n;
    return 0;
}

/* ---- bad requests ---------------------------------------------------------- */

typedef struct reader {
    request_set *s;
    const request_log_spec *spec;
    const char *name;
    char *err;
    size_t errlen;
} reader;

/* A bad request: counted and reported; strict: the error. msg is "FILE:LINE: reason". */
static int drop(reader *r, const char *msg)
{
    r->s->bad++;
    if (r->spec->on_bad) r->spec->on_bad(r->spec->ctx, msg);
    if (r->spec->strict) return err_set(r->err, r->errlen, LSIM_E_FORMAT, "%s", msg);
    return 0;
}

/* ---- JSON Lines ------------------------------------------------------------ */

/* Reads one line into *buf (without its newline). 1: a line; 0: end of file;
 * LSIM_E_LIMIT: longer than max (consumed to its end); LSIM_E_IO. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len, size_t max)
{
    size_t n = 0;
    int c, over = 0;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (over) continue;
        if (n + 1 >= *cap) {
            if (n + 1 > max) {
                over = 1;
                continue;
            }
            size_t nc = *cap ? *cap * 2 : 4096;
            char *b = realloc(*buf, nc);
            if (!b) return LSIM_E_NOMEM;
            *buf = b;
            *cap = nc;
        }
        (*buf)[n++] = (char)c;
    }
    if (ferror(f)) return LSIM_E_IO;
    if (c == EOF && n == 0 && !over) return 0;
    if (over) return LSIM_E_LIMIT;
    if (!*buf) { /* an empty first line: nothing was read, yet the line needs its NUL */
        if (!(*buf = malloc(4096))) return LSIM_E_NOMEM;
        *cap = 4096;
    }
    if (n && (*buf)[n - 1] == '\r') n--;
    (*buf)[n] = 0;
    *len = n;
    return 1;
}

/* One candidate object; j is at its '{'. */
static int json_candidate(json_scan *j, request_set *s, size_t k)
{
    char item[LSIM_MAX_ID_LEN + 1], cat[LSIM_MAX_ID_LEN + 1], key[32], what[64];
    size_t item_len = 0, cat_len = 0, klen;
    int64_t label = -1;
    int has_item = 0, has_cat = 0;
    if (json_expect(j, '{', "a candidate object")) return LSIM_E_FORMAT;
    if (!json_accept(j, '}'))
        for (;;) {
            if (json_string(j, key, sizeof key, &klen, "a candidate's key")) return LSIM_E_FORMAT;
            if (json_expect(j, ':', "':'")) return LSIM_E_FORMAT;
            if (strcmp(key, "item") == 0) {
                snprintf(what, sizeof what, "candidates[%zu].item", k);
                if (has_item) return json_fail(j, "%s given twice", what);
                if (json_id(j, item, sizeof item, &item_len, what)) return LSIM_E_FORMAT;
                has_item = 1;
            } else if (strcmp(key, "category") == 0) {
                snprintf(what, sizeof what, "candidates[%zu].category", k);
                if (has_cat) return json_fail(j, "%s given twice", what);
                if (json_id(j, cat, sizeof cat, &cat_len, what)) return LSIM_E_FORMAT;
                has_cat = 1;
            } else if (strcmp(key, "label") == 0) {
                snprintf(what, sizeof what, "candidates[%zu].label", k);
                if (label >= 0) return json_fail(j, "%s given twice", what);
                if (json_int(j, 0, 1, &label, what)) return LSIM_E_FORMAT;
            } else if (json_skip(j)) {
                return LSIM_E_FORMAT;
            }
            if (json_accept(j, ',')) continue;
            if (json_expect(j, '}', "',' or '}'")) return LSIM_E_FORMAT;
            break;
        }
    if (!has_item) return json_fail(j, "candidates[%zu]: no \"item\"", k);
    if (label < 0) return json_fail(j, "candidates[%zu]: no \"label\"", k);
    int rc = put_cand(s, item, item_len, has_cat ? cat : NULL, cat_len, (int)label);
    return rc ? json_fail(j, "out of memory") : 0;
}

/* One request line. 0 and the request appended, or LSIM_E_FORMAT (message in j's err). */
static int json_request(json_scan *j, reader *r, uint64_t line)
{
    request_set *s = r->s;
    const request_log_spec *sp = r->spec;
    char id[LSIM_MAX_ID_LEN + 1], user[LSIM_MAX_ID_LEN + 1], key[32];
    size_t id_len = 0, user_len = 0, klen;
    int64_t time = 0;
    int has_id = 0, has_user = 0, has_time = 0, has_cands = 0;
    size_t n = 0;
    if (json_expect(j, '{', "a request object")) return LSIM_E_FORMAT;
    /* the candidates may come before the other keys: they are stored, and the request opened, at the end */
    size_t first = s->n_cand;
    if (!json_accept(j, '}'))
        for (;;) {
            if (json_string(j, key, sizeof key, &klen, "a request's key")) return LSIM_E_FORMAT;
            if (json_expect(j, ':', "':'")) return LSIM_E_FORMAT;
            if (strcmp(key, "id") == 0) {
                if (has_id) return json_fail(j, "\"id\" given twice");
                if (json_id(j, id, sizeof id, &id_len, "id")) return LSIM_E_FORMAT;
                has_id = 1;
            } else if (strcmp(key, "user") == 0) {
                if (has_user) return json_fail(j, "\"user\" given twice");
                if (json_id(j, user, sizeof user, &user_len, "user")) return LSIM_E_FORMAT;
                has_user = 1;
            } else if (strcmp(key, "time") == 0) {
                if (has_time) return json_fail(j, "\"time\" given twice");
                if (json_int(j, sp->ts_min, sp->ts_max, &time, "time")) return LSIM_E_FORMAT;
                has_time = 1;
            } else if (strcmp(key, "candidates") == 0) {
                if (has_cands) return json_fail(j, "\"candidates\" given twice");
                has_cands = 1;
                if (json_expect(j, '[', "the candidates' array")) return LSIM_E_FORMAT;
                if (!json_accept(j, ']'))
                    for (;;) {
                        if (sp->max_candidates && n == sp->max_candidates)
                            return json_fail(j, "more than %zu candidates", sp->max_candidates);
                        if (json_candidate(j, s, n)) return LSIM_E_FORMAT;
                        n++;
                        if (json_accept(j, ',')) continue;
                        if (json_expect(j, ']', "',' or ']'")) return LSIM_E_FORMAT;
                        break;
                    }
            } else if (json_skip(j)) {
                return LSIM_E_FORMAT;
            }
            if (json_accept(j, ',')) continue;
            if (json_expect(j, '}', "',' or '}'")) return LSIM_E_FORMAT;
            break;
        }
    if (json_end(j)) return LSIM_E_FORMAT;
    if (!has_id) return json_fail(j, "no \"id\"");
    if (!has_user) return json_fail(j, "no \"user\"");
    if (!has_time) return json_fail(j, "no \"time\"");
    if (!has_cands || n == 0) return json_fail(j, "no candidates");
    if (begin_req(s, line, id, id_len, user, user_len, time, first)) return json_fail(j, "out of memory");
    return end_req(s) ? json_fail(j, "out of memory") : 0;
}

static int read_json(reader *r, FILE *f)
{
    char *buf = NULL, msg[LSIM_ERRLEN], where[300];
    size_t cap = 0, len = 0;
    uint64_t line = 0;
    int rc = 0;
    for (;;) {
        int got = read_line(f, &buf, &cap, &len, REQUEST_MAX_LINE);
        if (got == 0) break;
        line++;
        if (got == LSIM_E_NOMEM || got == LSIM_E_IO) {
            rc = err_set(r->err, r->errlen, got, "%s:%llu: %s", r->name, (unsigned long long)line,
                         got == LSIM_E_IO ? strerror(errno) : "out of memory");
            break;
        }
        if (got == LSIM_E_LIMIT) {
            snprintf(msg, sizeof msg, "%s:%llu: line longer than %u bytes", r->name, (unsigned long long)line,
                     REQUEST_MAX_LINE);
            if ((rc = drop(r, msg))) break;
            continue;
        }
        if (len == 0) continue; /* blank lines separate nothing and hold nothing */
        if (memchr(buf, 0, len)) {
            snprintf(msg, sizeof msg, "%s:%llu: NUL byte in line", r->name, (unsigned long long)line);
            if ((rc = drop(r, msg))) break;
            continue;
        }
        snprintf(where, sizeof where, "%s:%llu", r->name, (unsigned long long)line);
        json_scan j;
        json_scan_init(&j, buf, len, where, msg, sizeof msg);
        mark m = mark_now(r->s);
        if (json_request(&j, r, line)) {
            roll_back(r->s, m);
            if ((rc = drop(r, msg))) break;
        }
    }
    free(buf);
    return rc;
}

/* ---- delimited ---------------------------------------------------------------- */

static int same(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* Rows are grouped by request id; a request is the run of contiguous rows with
 * one id. A bad row's request cannot be known, so it drops the request being
 * read and, unless the next row continues that one, the next request too (the
 * bad row may have been its first): both are reported. */
static int read_delimited(reader *r, log_reader *lr)
{
    request_set *s = r->s;
    char msg[LSIM_ERRLEN];
    int open = 0, poisoned = 0, after_bad = 0;
    char cur[LSIM_MAX_ID_LEN + 1];
    size_t cur_len = 0;
    mark m = mark_now(s);
    log_event ev;
    int rc;
    for (;;) {
        int got = log_reader_next(lr, &ev);
        if (got < 0) return err_set(r->err, r->errlen, got, "%s", log_reader_errmsg(lr));
        if (got == LOG_READ_BAD) {
            if ((rc = drop(r, log_reader_errmsg(lr)))) return rc;
            if (open && !poisoned) {
                roll_back(s, m);
                poisoned = 1;
                snprintf(msg, sizeof msg, "%s:%llu: request %s dropped: a bad row follows its rows", r->name,
                         (unsigned long long)s->req[s->n_req].line, cur);
                if ((rc = drop(r, msg))) return rc;
            }
            after_bad = 1;
            continue;
        }
        int next = got == LOG_READ_EOF || !open || !same(ev.request, ev.request_len, cur, cur_len);
        if (next && open && !poisoned && end_req(s))
            return err_set(r->err, r->errlen, LSIM_E_NOMEM, "%s: out of memory", r->name);
        if (got == LOG_READ_EOF) break;
        if (!next) {
            after_bad = 0; /* the bad row was one of this request's, which is dropped already */
            if (poisoned) continue;
        } else {
            open = 1;
            poisoned = after_bad;
            after_bad = 0;
            memcpy(cur, ev.request, ev.request_len);
            cur[ev.request_len] = 0;
            cur_len = ev.request_len;
            if (poisoned) {
                snprintf(msg, sizeof msg, "%s:%llu: request %s dropped: the bad row before it may be its first",
                         r->name, (unsigned long long)ev.line, cur);
                if ((rc = drop(r, msg))) return rc;
                continue;
            }
            m = mark_now(s);
            if (begin_req(s, ev.line, ev.request, ev.request_len, ev.user, ev.user_len, ev.ts, s->n_cand))
                return err_set(r->err, r->errlen, LSIM_E_NOMEM, "%s: out of memory", r->name);
        }
        const req_rec *q = &s->req[s->n_req];
        const char *why = NULL;
        if (!same(ev.user, ev.user_len, s->text + q->user_off, q->user_len))
            why = "user differs from the request's first row";
        else if (ev.ts != q->time)
            why = "ts differs from the request's first row";
        else if (r->spec->max_candidates && s->n_cand - q->first == r->spec->max_candidates)
            why = "more candidates than the limit";
        if (why) {
            snprintf(msg, sizeof msg, "%s:%llu: request %s dropped: %s", r->name, (unsigned long long)ev.line, cur,
                     why);
            roll_back(s, m);
            poisoned = 1;
            if ((rc = drop(r, msg))) return rc;
            continue;
        }
        if (put_cand(s, ev.item, ev.item_len, r->spec->log.col_cat ? ev.cat : NULL, ev.cat_len, ev.label))
            return err_set(r->err, r->errlen, LSIM_E_NOMEM, "%s: out of memory", r->name);
    }
    return 0;
}

/* ---- the set ------------------------------------------------------------------- */

int request_log_read(request_set **out, const char *path, const request_log_spec *spec, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!out || !path || !spec) return err_set(err, errlen, LSIM_E_INVAL, "request_log_read: missing argument");
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    if (spec->delimited && (spec->log.format != LOG_FORMAT_CSV || !spec->log.col_request || !spec->log.col_label))
        return err_set(err, errlen, LSIM_E_INVAL,
                       "%s: a delimited request log needs a column mapping with request and label", name);
    if (!spec->delimited && spec->ts_min > spec->ts_max)
        return err_set(err, errlen, LSIM_E_INVAL, "%s: the time range is empty", name);
    request_set *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", name);
    reader r = {s, spec, name, err, errlen};
    int rc;
    if (spec->delimited) {
        log_reader *lr;
        rc = log_reader_open(&lr, path, &spec->log, err, errlen);
        if (!rc) {
            rc = read_delimited(&r, lr);
            log_reader_close(lr);
        }
    } else {
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
        if (!f) {
            rc = err_set(err, errlen, LSIM_E_IO, "%s: %s", name, strerror(errno));
        } else {
            rc = read_json(&r, f);
            if (f != stdin) fclose(f);
        }
    }
    if (rc) {
        request_set_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void request_set_free(request_set *s)
{
    if (!s) return;
    free(s->text);
    free(s->req);
    free(s->cand);
    free(s->label);
    free(s->uh_off);
    free(s->uh_no);
    free(s);
}

size_t request_set_size(const request_set *s)
{
    return s->n_req;
}

uint64_t request_set_bad(const request_set *s)
{
    return s->bad;
}

size_t request_set_candidates(const request_set *s)
{
    return s->n_cand;
}

size_t request_set_users(const request_set *s)
{
    return s->n_users;
}

size_t request_set_max_n(const request_set *s)
{
    return s->max_n;
}

void request_set_get(const request_set *s, size_t i, request_view *v)
{
    const req_rec *q = &s->req[i];
    v->id = s->text + q->id_off;
    v->id_len = q->id_len;
    v->user = s->text + q->user_off;
    v->user_len = q->user_len;
    v->user_no = q->user_no;
    v->time = q->time;
    v->n = q->n;
    v->label = s->label + q->first;
    v->line = q->line;
}

void request_set_fill(const request_set *s, size_t i, lsim_candidate *out)
{
    const req_rec *q = &s->req[i];
    for (size_t k = 0; k < q->n; k++) {
        const cand_rec *c = &s->cand[q->first + k];
        out[k].item = s->text + c->item_off;
        out[k].item_len = c->item_len;
        out[k].category = c->cat_off == NO_CAT ? NULL : s->text + c->cat_off;
        out[k].category_len = c->cat_len;
    }
}
