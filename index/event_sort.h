/*
 * event_sort.h: ordering a batch of parsed events for the index writer (private).
 *
 * The writer needs each user's events together, in (timestamp, log order)
 * order, with each event's tie rank: its rank among the user's events of the
 * same timestamp, in log order. The batch arrives in log order; this sorts
 * it without losing that order: a stable counting sort by user (O(n)), then
 * a stable merge sort by timestamp of each user's run (skipped when the run
 * is already in time order, as in user-grouped, time-ordered logs).
 */
#ifndef LSIM_EVENT_SORT_H
#define LSIM_EVENT_SORT_H

#include <stddef.h>
#include <stdint.h>

/* One parsed event of a batch, dense ids. */
typedef struct batch_event {
    int64_t ts;
    uint32_t user, item, cat;
    uint8_t type;
} batch_event;

/* Sorts ev[0..n) stably by (user, ts). tmp must hold n events; starts must
 * hold n_users + 1 entries and receives each user's run [starts[u],
 * starts[u+1]). Every ev[i].user must be < n_users. */
void event_sort_by_user_ts(batch_event *ev, batch_event *tmp, size_t n, uint32_t n_users,
                           size_t *starts);

/* Stable merge sort of ev[0..n) by ts alone, using tmp[0..n). */
void event_sort_by_ts(batch_event *ev, batch_event *tmp, size_t n);

#endif
