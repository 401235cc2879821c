/*
 * ref_log.h: the tests' brute-force reference of a behavior log: every event
 * as written, in log order, and hard search by a full scan. The index and
 * the CLI are checked against it.
 */
#ifndef LSIM_TEST_REF_LOG_H
#define LSIM_TEST_REF_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_event {
    char user[64], item[64], cat[64], type[16];
    int64_t ts;
    size_t line; /* order in the log (over all inputs) */
} ref_event;

typedef struct ref_log {
    ref_event *ev;
    size_t n, cap;
} ref_log;

/* Appends one event; a field longer than the reference holds fails the test. */
void ref_add(ref_log *r, const char *u, const char *i, const char *c, const char *t, int64_t ts);
void ref_free(ref_log *r);

/* qsort comparators over (const ref_event *): by time, ties by log order. */
int ref_newest_first(const void *a, const void *b);
int ref_oldest_first(const void *a, const void *b);

/* Hard search: user's events (of cat, or all when cat is NULL) with
 * ts < before, newest first, at most k; out holds k pointers. */
size_t ref_search(const ref_log *r, const char *user, const char *cat, int64_t before, size_t k,
                  const ref_event **out);

#endif
