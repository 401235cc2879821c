/*
 * json_scan.c: see json_scan.h.
 */
#include "loaders/json_scan.h"

#include "lsim.h"
#include "loaders/utf8.h"
#include "storage/error_detail.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_scan_init(json_scan *j, const char *text, size_t len, const char *where, char *err, size_t errlen)
{
    j->start = j->p = (const unsigned char *)text;
    j->end = j->start + len;
    j->where = where;
    j->err = err;
    j->errlen = errlen;
    j->fail = NULL;
    j->user = NULL;
    j->end_name = "the end";
}

void json_scan_report(json_scan *j, json_fail_fn fail, void *user, const char *end_name)
{
    if (fail) j->fail = fail, j->user = user;
    if (end_name) j->end_name = end_name;
}

int json_fail(json_scan *j, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t at = (size_t)(j->p - j->start);
    if (j->fail) return j->fail(j->user, at, msg);
    return err_set(j->err, j->errlen, LSIM_E_FORMAT, "%s: byte %zu: %s", j->where, at + 1, msg);
}

/* A failure whose reason is labeled "what: reason", or not if what is NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail_in(json_scan *j, const char *what, const char *fmt, ...);

static int fail_in(json_scan *j, const char *what, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return what ? json_fail(j, "%s: %s", what, msg) : json_fail(j, "%s", msg);
}

static void ws(json_scan *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

const char *json_found(const json_scan *j, char *buf, size_t cap)
{
    if (j->p >= j->end) return j->end_name;
    unsigned c = *j->p;
    if (c >= 0x21 && c < 0x7f) snprintf(buf, cap, "'%c'", (char)c);
    else snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

int json_peek(json_scan *j)
{
    ws(j);
    return j->p < j->end ? *j->p : -1;
}

int json_expect(json_scan *j, char c, const char *what)
{
    char f[32];
    ws(j);
    if (j->p < j->end && *j->p == (unsigned char)c) {
        j->p++;
        return 0;
    }
    return json_fail(j, "expected %s, found %s", what, json_found(j, f, sizeof f));
}

int json_accept(json_scan *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == (unsigned char)c) {
        j->p++;
        return 1;
    }
    return 0;
}

int json_end(json_scan *j)
{
    char f[32];
    ws(j);
    if (j->p < j->end) return json_fail(j, "trailing %s after the value", json_found(j, f, sizeof f));
    return 0;
}

static int hex4(json_scan *j, uint32_t *out)
{
    *out = 0;
    if (j->end - j->p < 4) return json_fail(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = j->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return json_fail(j, "bad hex digit in a \\u escape");
    }
    j->p += 4;
    *out = v;
    return 0;
}

/* One \u escape (the position is at the backslash): its code point, pairs of
 * surrogates joined. */
static int unicode_escape(json_scan *j, uint32_t *out)
{
    const unsigned char *esc = j->p;
    uint32_t cp = 0, lo = 0;
    j->p += 2;
    if (hex4(j, &cp)) return LSIM_E_FORMAT;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        j->p = esc;
        return json_fail(j, "unpaired low surrogate \\u%04x", cp);
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') {
            j->p = esc;
            return json_fail(j, "unpaired high surrogate \\u%04x", cp);
        }
        j->p += 2;
        if (hex4(j, &lo)) return LSIM_E_FORMAT;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            j->p = esc;
            return json_fail(j, "unpaired high surrogate \\u%04x", cp);
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) {
        j->p = esc;
        return json_fail(j, "NUL (\\u0000) in a string");
    }
    *out = cp;
    return 0;
}

/* The string at the position; out may be NULL (skip). */
static int string_at(json_scan *j, unsigned char *out, size_t cap, size_t *len, const char *what)
{
    char f[32];
    ws(j);
    if (j->p >= j->end || *j->p != '"')
        return fail_in(j, what, "expected a string, found %s", json_found(j, f, sizeof f));
    const unsigned char *open = j->p++;
    size_t n = 0;
    for (;;) {
        if (j->p >= j->end) {
            j->p = open;
            return fail_in(j, what, "unterminated string");
        }
        unsigned char tmp[4];
        size_t k;
        unsigned c = *j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) return fail_in(j, what, "control byte 0x%02x in a string (must be escaped)", c);
        if (c == '\\') {
            if (j->end - j->p < 2) return fail_in(j, what, "truncated escape");
            unsigned e = j->p[1];
            switch (e) {
            case '"': case '\\': case '/': tmp[0] = (unsigned char)e; k = 1; break;
            case 'b': tmp[0] = '\b'; k = 1; break;
            case 'f': tmp[0] = '\f'; k = 1; break;
            case 'n': tmp[0] = '\n'; k = 1; break;
            case 'r': tmp[0] = '\r'; k = 1; break;
            case 't': tmp[0] = '\t'; k = 1; break;
            case 'u': {
                uint32_t cp = 0;
                if (unicode_escape(j, &cp)) return LSIM_E_FORMAT;
                k = utf8_put(tmp, cp);
                goto put;
            }
            default:
                if (e >= 0x21 && e < 0x7f) return fail_in(j, what, "bad escape \\%c", (char)e);
                return fail_in(j, what, "bad escape (byte 0x%02x after a backslash)", e);
            }
            j->p += 2;
        } else {
            k = utf8_next(j->p, j->end, NULL);
            if (!k) return fail_in(j, what, "invalid UTF-8 in a string");
            memcpy(tmp, j->p, k);
            j->p += k;
        }
    put:
        if (out) {
            if (n + k + 1 > cap) {
                j->p = open;
                return fail_in(j, what, "longer than %zu bytes", cap - 1);
            }
            memcpy(out + n, tmp, k);
        }
        n += k;
    }
    if (out) out[n] = 0;
    if (len) *len = n;
    return 0;
}

int json_string(json_scan *j, char *out, size_t cap, size_t *len, const char *what)
{
    return string_at(j, (unsigned char *)out, cap, len, what);
}

/* The extent of a JSON number at the position: [j->p, *stop); 1 if it is an
 * integer (no fraction, no exponent). Fails on a malformed number. */
static int number_extent(json_scan *j, const unsigned char **stop, int *integer, const char *what)
{
    char f[32];
    const unsigned char *q = j->p;
    if (q < j->end && *q == '-') q++;
    if (q >= j->end || *q < '0' || *q > '9')
        return fail_in(j, what, "expected a number, found %s", json_found(j, f, sizeof f));
    if (*q == '0' && q + 1 < j->end && q[1] >= '0' && q[1] <= '9')
        return fail_in(j, what, "number with a leading zero");
    while (q < j->end && *q >= '0' && *q <= '9') q++;
    *integer = 1;
    if (q < j->end && *q == '.') {
        *integer = 0;
        q++;
        if (q >= j->end || *q < '0' || *q > '9') return fail_in(j, what, "no digit after the decimal point");
        while (q < j->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        *integer = 0;
        q++;
        if (q < j->end && (*q == '+' || *q == '-')) q++;
        if (q >= j->end || *q < '0' || *q > '9') return fail_in(j, what, "no digit in the exponent");
        while (q < j->end && *q >= '0' && *q <= '9') q++;
    }
    *stop = q;
    return 0;
}

int json_id(json_scan *j, char *out, size_t cap, size_t *len, const char *what)
{
    ws(j);
    if (j->p < j->end && *j->p == '"') {
        const unsigned char *at = j->p;
        if (string_at(j, (unsigned char *)out, cap, len, what)) return LSIM_E_FORMAT;
        if (*len == 0) {
            j->p = at;
            return fail_in(j, what, "empty id");
        }
        return 0;
    }
    const unsigned char *stop;
    int integer;
    if (j->p < j->end && *j->p == '-') return fail_in(j, what, "a negative number is not an id");
    if (number_extent(j, &stop, &integer, what)) return LSIM_E_FORMAT;
    if (!integer) return fail_in(j, what, "an id is a string or an integer, not a fraction");
    size_t n = (size_t)(stop - j->p);
    if (n + 1 > cap) return fail_in(j, what, "longer than %zu bytes", cap - 1);
    memcpy(out, j->p, n);
    out[n] = 0;
    *len = n;
    j->p = stop;
    return 0;
}

/* The decimal digits [q, stop) as a number in [0, lim]; -1 if above lim. */
static int decimal(const unsigned char *q, const unsigned char *stop, uint64_t lim, uint64_t *out)
{
    uint64_t v = 0;
    for (; q < stop; q++) {
        unsigned d = *q - '0';
        if (v > (lim - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int json_int(json_scan *j, int64_t lo, int64_t hi, int64_t *out, const char *what)
{
    ws(j);
    const unsigned char *stop, *at = j->p;
    int integer;
    if (number_extent(j, &stop, &integer, what)) return LSIM_E_FORMAT;
    if (!integer) return fail_in(j, what, "not an integer");
    int neg = *j->p == '-';
    uint64_t v, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (decimal(j->p + neg, stop, lim, &v)) return fail_in(j, what, "number does not fit 64 bits");
    int64_t x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (x < lo || x > hi) {
        j->p = at;
        return fail_in(j, what, "%lld is outside [%lld, %lld]", (long long)x, (long long)lo, (long long)hi);
    }
    j->p = stop;
    *out = x;
    return 0;
}

/* Not number_extent: a fraction or an exponent fails as "not an integer" at
 * its first byte, whatever follows it. */
int json_uint(json_scan *j, uint64_t *out, const char *what)
{
    char f[32];
    ws(j);
    if (j->p < j->end && *j->p == '-') return fail_in(j, what, "negative number");
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return fail_in(j, what, "expected a non-negative integer, found %s", json_found(j, f, sizeof f));
    if (*j->p == '0' && j->end - j->p > 1 && j->p[1] >= '0' && j->p[1] <= '9')
        return fail_in(j, what, "number with a leading zero");
    const unsigned char *stop = j->p;
    while (stop < j->end && *stop >= '0' && *stop <= '9') stop++;
    uint64_t v;
    if (decimal(j->p, stop, UINT64_MAX, &v)) return fail_in(j, what, "number does not fit 64 bits");
    j->p = stop;
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) return fail_in(j, what, "not an integer");
    *out = v;
    return 0;
}

int json_number(json_scan *j, double *out, const char *what)
{
    ws(j);
    const unsigned char *stop;
    int integer;
    if (number_extent(j, &stop, &integer, what)) return LSIM_E_FORMAT;
    char buf[64];
    size_t n = (size_t)(stop - j->p);
    if (n >= sizeof buf) return fail_in(j, what, "number longer than %zu characters", sizeof buf - 1);
    memcpy(buf, j->p, n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return fail_in(j, what, "number out of range");
    j->p = stop;
    *out = v;
    return 0;
}

static int literal(json_scan *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
        char f[32];
        return json_fail(j, "expected a value, found %s", json_found(j, f, sizeof f));
    }
    j->p += n;
    return 0;
}

static int skip_at(json_scan *j, int depth)
{
    char f[32];
    int c = json_peek(j);
    if (c == '"') return string_at(j, NULL, 0, NULL, "string");
    if (c == '-' || (c >= '0' && c <= '9')) {
        const unsigned char *stop;
        int integer;
        if (number_extent(j, &stop, &integer, "number")) return LSIM_E_FORMAT;
        j->p = stop;
        return 0;
    }
    if (c == 't') return literal(j, "true");
    if (c == 'f') return literal(j, "false");
    if (c == 'n') return literal(j, "null");
    if (c != '[' && c != '{') return json_fail(j, "expected a value, found %s", json_found(j, f, sizeof f));
    if (depth >= JSON_MAX_DEPTH) return json_fail(j, "nested deeper than %d", JSON_MAX_DEPTH);
    char close = c == '[' ? ']' : '}';
    j->p++;
    if (json_accept(j, close)) return 0;
    for (;;) {
        if (close == '}') {
            if (string_at(j, NULL, 0, NULL, "key") || json_expect(j, ':', "':'")) return LSIM_E_FORMAT;
        }
        if (skip_at(j, depth + 1)) return LSIM_E_FORMAT;
        if (json_accept(j, ',')) continue;
        if (json_accept(j, close)) return 0;
        return json_fail(j, "expected ',' or '%c', found %s", close, json_found(j, f, sizeof f));
    }
}

int json_skip(json_scan *j)
{
    return skip_at(j, 0);
}
