/*
 * request_log.h: reading logged ranking requests for replay (private).
 *
 * A request is one user's candidates at one time, each with its label (1:
 * the user took it, 0: not), as a ranking stage saw them. Two formats
 * (docs/FORMATS.md, "Request logs"):
 *
 *   JSON Lines (the default, what `lsim gen requests` writes), one request a line:
 *     {"id": "r1", "user": "17", "time": 1512259200,
 *      "candidates": [{"item": "3", "category": "9", "label": 1}, {"item": "5", "label": 0}]}
 *     ids are strings or non-negative integers; "category" is optional (absent:
 *     the index's); keys may come in any order; unknown keys are ignored.
 *   Delimited (LOG_FORMAT_CSV with a column mapping, as `lsim index build`),
 *     one candidate a row, with the columns request and label besides user,
 *     item, ts and the optional category; a request's rows are contiguous and
 *     agree on user and time.
 *
 * Bad input: a malformed line (or, delimited, a malformed row) drops its
 * whole request, which is counted and reported through on_bad as
 * "FILE:LINE: reason" (the line, the field, the reason); with strict set,
 * reading stops at the first with LSIM_E_FORMAT. Nothing else is lost.
 *
 * The requests are held in memory, compactly (about 20 bytes per candidate
 * plus the ids' bytes), so that a replay can run them many times from many
 * threads. A request_set is read-only after request_log_read: any number of
 * threads may read it at once.
 */
#ifndef LSIM_REQUEST_LOG_H
#define LSIM_REQUEST_LOG_H

#include "loaders/log_reader.h"
#include "lsim.h"

#include <stddef.h>
#include <stdint.h>

#define REQUEST_MAX_LINE (16u << 20) /* longest JSON line, bytes */

typedef struct request_log_spec {
    int delimited;          /* 0: JSON Lines; 1: `log` below (format LOG_FORMAT_CSV) */
    log_spec log;           /* delimited: needs col_request and col_label */
    size_t max_candidates;  /* a request with more is bad (0: no limit) */
    int strict;             /* stop at the first bad request */
    int64_t ts_min, ts_max; /* valid request times, inclusive (JSON; delimited uses log's) */
    void (*on_bad)(void *ctx, const char *msg); /* each dropped request (may be NULL) */
    void *ctx;
} request_log_spec;

/* JSON Lines, no candidate limit, not strict, times in [1, 4102444799]. */
void request_log_spec_default(request_log_spec *s);

typedef struct request_set request_set;

/* One request, pointing into the set (valid until request_set_free). */
typedef struct request_view {
    const char *id, *user; /* NUL-terminated */
    size_t id_len, user_len;
    uint32_t user_no;      /* the user's number: 0, 1, ... in order of first appearance */
    int64_t time;
    size_t n;              /* candidates */
    const float *label;    /* (n) 0 or 1 */
    uint64_t line;         /* first line of the request in its file */
} request_view;

/* Reads `path` ("-": stdin). Returns 0 (*out set; bad requests counted), or
 * LSIM_E_IO / LSIM_E_NOMEM / LSIM_E_INVAL (a bad spec) / LSIM_E_FORMAT (strict)
 * with "FILE[:LINE]: reason" in err, *out NULL. */
int request_log_read(request_set **out, const char *path, const request_log_spec *spec, char *err, size_t errlen);
void request_set_free(request_set *s);

size_t request_set_size(const request_set *s);
uint64_t request_set_bad(const request_set *s);      /* requests dropped as bad */
size_t request_set_candidates(const request_set *s); /* over all requests */
size_t request_set_max_n(const request_set *s);      /* the largest request */
size_t request_set_users(const request_set *s);      /* distinct users */

void request_set_get(const request_set *s, size_t i, request_view *v);
/* Request i's candidates as lsim_score takes them: out has room for v.n. */
void request_set_fill(const request_set *s, size_t i, lsim_candidate *out);

#endif
