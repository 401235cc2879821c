/*
 * json_scan.h: a strict, allocation-free scanner for one JSON text held in
 * memory (private). The readers of lsim's JSON inputs (request logs) walk
 * their schema with it; it knows no schema itself.
 *
 * Strict means RFC 8259: no comments, no trailing commas, no leading zeros,
 * no NaN or Infinity, strings in UTF-8 with only the standard escapes. Two
 * rules are lsim's: a string may not hold NUL (\u0000: ids are C strings
 * elsewhere), and nesting is limited to JSON_MAX_DEPTH when skipping.
 *
 * Errors: every function returns 0 or LSIM_E_FORMAT, and on failure writes
 * "WHERE: byte N: reason" to the scanner's err (WHERE is the caller's label,
 * e.g. "requests.jsonl:12"; N is 1-based within the text). The scanner is
 * then left where the error was found. A caller with its own message shape
 * (safetensors: "PATH: tensor 'x': header byte N: reason", N 0-based) sets a
 * fail hook with json_scan_report. The `what` label of a reader prefixes its
 * reasons ("what: reason"); it may be NULL (then the reason stands alone).
 */
#ifndef LSIM_JSON_SCAN_H
#define LSIM_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

/* Writes the message of a failure at byte `offset` (0-based within the
 * text) for `reason`; returns the code json_fail returns (LSIM_E_FORMAT). */
typedef int (*json_fail_fn)(void *user, size_t offset, const char *reason);

typedef struct json_scan {
    const unsigned char *start, *p, *end;
    const char *where;
    char *err;
    size_t errlen;
    json_fail_fn fail;    /* NULL: the default "WHERE: byte N: reason" into err */
    void *user;           /* fail's first argument */
    const char *end_name; /* the end of the text in "found ..." messages */
} json_scan;

void json_scan_init(json_scan *j, const char *text, size_t len, const char *where, char *err, size_t errlen);
/* Optional, after json_scan_init: failures go to fail(user, ...) (which
 * writes the message wherever it likes) instead of into err, and "found ..."
 * messages call the end of the text end_name instead of "the end" (each
 * argument NULL keeps the default). */
void json_scan_report(json_scan *j, json_fail_fn fail, void *user, const char *end_name);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int json_fail(json_scan *j, const char *fmt, ...);

/* What is at the position (white space not skipped), for "expected X, found
 * Y" messages: "'c'" for a printable byte, "byte 0xHH" for another, or the
 * end's name. Returns buf or a constant string. */
const char *json_found(const json_scan *j, char *buf, size_t cap);

/* Skips white space; returns the next byte (not consumed), or -1 at the end. */
int json_peek(json_scan *j);
/* Consumes c (after white space) or fails with "expected WHAT, found ...". */
int json_expect(json_scan *j, char c, const char *what);
/* Consumes c (after white space) if it is next: 1, else 0. */
int json_accept(json_scan *j, char c);
/* 0 if only white space is left, else a failure ("trailing ..."). */
int json_end(json_scan *j);

/* A string, decoded into out (cap bytes; the result is NUL-terminated, so at
 * most cap - 1 bytes), its length in *len. Fails on a value that is not a
 * string, a string longer than cap - 1 bytes, a NUL, bad UTF-8, a bad escape. */
int json_string(json_scan *j, char *out, size_t cap, size_t *len, const char *what);
/* An id: a string (as json_string, and not empty) or a non-negative integer
 * written in decimal (its digits are the id: 42 and "42" are the same id). */
int json_id(json_scan *j, char *out, size_t cap, size_t *len, const char *what);
/* An integer in [lo, hi] written without fraction or exponent. */
int json_int(json_scan *j, int64_t lo, int64_t hi, int64_t *out, const char *what);
/* A non-negative integer that fits 64 bits, written without sign, fraction
 * or exponent (the reasons: "negative number", "expected a non-negative
 * integer, found ...", "number with a leading zero", "number does not fit 64
 * bits", "not an integer" at the '.', 'e' or 'E'). */
int json_uint(json_scan *j, uint64_t *out, const char *what);
/* Any number (the full JSON grammar), as a double; fails if not finite. */
int json_number(json_scan *j, double *out, const char *what);
/* Skips one value of any kind, nesting at most JSON_MAX_DEPTH deep. */
int json_skip(json_scan *j);

#endif
