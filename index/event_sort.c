/*
 * event_sort.c: see event_sort.h.
 */
#include "index/event_sort.h"

#include <string.h>

static void merge_runs(batch_event *dst, const batch_event *a, size_t na, const batch_event *b,
                       size_t nb)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) dst[k++] = (b[j].ts < a[i].ts) ? b[j++] : a[i++]; /* ties: a first */
    while (i < na) dst[k++] = a[i++];
    while (j < nb) dst[k++] = b[j++];
}

/* Bottom-up stable merge sort; the result ends in ev. */
void event_sort_by_ts(batch_event *ev, batch_event *tmp, size_t n)
{
    size_t i = 1;
    while (i < n && ev[i - 1].ts <= ev[i].ts) i++;
    if (i >= n) return; /* already ordered: the common case */
    batch_event *src = ev, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            merge_runs(dst + lo, src + lo, mid - lo, src + mid, hi - mid);
        }
        batch_event *t = src;
        src = dst;
        dst = t;
    }
    if (src != ev) memcpy(ev, src, n * sizeof *ev);
}

void event_sort_by_user_ts(batch_event *ev, batch_event *tmp, size_t n, uint32_t n_users,
                           size_t *starts)
{
    memset(starts, 0, ((size_t)n_users + 1) * sizeof *starts);
    for (size_t i = 0; i < n; i++) starts[ev[i].user + 1]++;
    for (uint32_t u = 0; u < n_users; u++) starts[u + 1] += starts[u];
    /* scatter into tmp using a running cursor per user, kept in starts[u] */
    for (size_t i = 0; i < n; i++) tmp[starts[ev[i].user]++] = ev[i];
    /* starts[u] now holds the end of user u's run; shift back to starts */
    memmove(starts + 1, starts, (size_t)n_users * sizeof *starts);
    starts[0] = 0;
    memcpy(ev, tmp, n * sizeof *ev);
    for (uint32_t u = 0; u < n_users; u++) {
        size_t lo = starts[u], hi = starts[u + 1];
        if (hi - lo > 1) event_sort_by_ts(ev + lo, tmp + lo, hi - lo);
    }
}
