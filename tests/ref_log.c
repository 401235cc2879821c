/*
 * ref_log.c: the tests' brute-force reference of a behavior log.
 */
#include "tests/ref_log.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void put(char *dst, size_t cap, const char *src, const char *field)
{
    size_t n = strlen(src);
    cr_assert_lt(n, cap, "ref_log: %s \"%s\" is longer than the reference holds (%zu bytes)", field, src, cap - 1);
    memcpy(dst, src, n + 1);
}

void ref_add(ref_log *r, const char *u, const char *i, const char *c, const char *t, int64_t ts)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
        cr_assert(r->ev, "ref_log: out of memory");
    }
    ref_event *e = &r->ev[r->n];
    put(e->user, sizeof e->user, u, "user");
    put(e->item, sizeof e->item, i, "item");
    put(e->cat, sizeof e->cat, c, "category");
    put(e->type, sizeof e->type, t, "type");
    e->ts = ts;
    e->line = r->n;
    r->n++;
}

void ref_free(ref_log *r)
{
    free(r->ev);
    *r = (ref_log){0};
}

int ref_newest_first(const void *a, const void *b)
{
    const ref_event *x = *(const ref_event *const *)a, *y = *(const ref_event *const *)b;
    if (x->ts != y->ts) return x->ts < y->ts ? 1 : -1;
    return x->line < y->line ? 1 : -1;
}

int ref_oldest_first(const void *a, const void *b)
{
    return ref_newest_first(b, a);
}

size_t ref_search(const ref_log *r, const char *user, const char *cat, int64_t before, size_t k,
                  const ref_event **out)
{
    const ref_event **all = malloc((r->n + 1) * sizeof *all);
    cr_assert(all, "ref_log: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++) {
        const ref_event *e = &r->ev[i];
        if (!strcmp(e->user, user) && (!cat || !strcmp(e->cat, cat)) && e->ts < before) all[m++] = e;
    }
    qsort(all, m, sizeof *all, ref_newest_first);
    size_t n = m < k ? m : k;
    memcpy(out, all, n * sizeof *all);
    free(all);
    return n;
}
