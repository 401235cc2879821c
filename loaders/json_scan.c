/*
 * json_scan.c: see json_scan.h.
 */
#include "loaders/json_scan.h"

#include "lsim.h"
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
}

int json_fail(json_scan *j, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(j->err, j->errlen, LSIM_E_FORMAT, "%s: byte %zu: %s", j->where, (size_t)(j->p - j->start) + 1,
                   msg);
}

static void ws(json_scan *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* What is at the position, for "expected X, found Y" messages. */
static const char *found(const json_scan *j, char *buf, size_t cap)
{
    if (j->p >= j->end) return "the end";
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
    return json_fail(j, "expected %s, found %s", what, found(j, f, sizeof f));
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
    if (j->p < j->end) return json_fail(j, "trailing %s after the value", found(j, f, sizeof f));
    return 0;
}

/* Bytes of the UTF-8 sequence at p (1..4), or 0 if it is not valid UTF-8
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = *p;
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static size_t utf8_put(unsigned char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (unsigned char)(0xC0 | (cp >> 6));
        d[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (unsigned char)(0xE0 | (cp >> 12));
        d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (unsigned char)(0xF0 | (cp >> 18));
    d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
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
        return json_fail(j, "%s: expected a string, found %s", what, found(j, f, sizeof f));
    const unsigned char *open = j->p++;
    size_t n = 0;
    for (;;) {
        if (j->p >= j->end) {
            j->p = open;
            return json_fail(j, "%s: unterminated string", what);
        }
        unsigned char tmp[4];
        size_t k;
        unsigned c = *j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) return json_fail(j, "%s: control byte 0x%02x in a string (must be escaped)", what, c);
        if (c == '\\') {
            if (j->end - j->p < 2) return json_fail(j, "%s: truncated escape", what);
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
                if (e >= 0x21 && e < 0x7f) return json_fail(j, "%s: bad escape \\%c", what, (char)e);
                return json_fail(j, "%s: bad escape (byte 0x%02x after a backslash)", what, e);
            }
            j->p += 2;
        } else {
            k = utf8_len(j->p, j->end);
            if (!k) return json_fail(j, "%s: invalid UTF-8 in a string", what);
            memcpy(tmp, j->p, k);
            j->p += k;
        }
    put:
        if (out) {
            if (n + k + 1 > cap) {
                j->p = open;
                return json_fail(j, "%s: longer than %zu bytes", what, cap - 1);
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
        return json_fail(j, "%s: expected a number, found %s", what, found(j, f, sizeof f));
    if (*q == '0' && q + 1 < j->end && q[1] >= '0' && q[1] <= '9')
        return json_fail(j, "%s: number with a leading zero", what);
    while (q < j->end && *q >= '0' && *q <= '9') q++;
    *integer = 1;
    if (q < j->end && *q == '.') {
        *integer = 0;
        q++;
        if (q >= j->end || *q < '0' || *q > '9') return json_fail(j, "%s: no digit after the decimal point", what);
        while (q < j->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        *integer = 0;
        q++;
        if (q < j->end && (*q == '+' || *q == '-')) q++;
        if (q >= j->end || *q < '0' || *q > '9') return json_fail(j, "%s: no digit in the exponent", what);
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
            return json_fail(j, "%s: empty id", what);
        }
        return 0;
    }
    const unsigned char *stop;
    int integer;
    if (j->p < j->end && *j->p == '-') return json_fail(j, "%s: a negative number is not an id", what);
    if (number_extent(j, &stop, &integer, what)) return LSIM_E_FORMAT;
    if (!integer) return json_fail(j, "%s: an id is a string or an integer, not a fraction", what);
    size_t n = (size_t)(stop - j->p);
    if (n + 1 > cap) return json_fail(j, "%s: longer than %zu bytes", what, cap - 1);
    memcpy(out, j->p, n);
    out[n] = 0;
    *len = n;
    j->p = stop;
    return 0;
}

int json_int(json_scan *j, int64_t lo, int64_t hi, int64_t *out, const char *what)
{
    ws(j);
    const unsigned char *stop, *at = j->p;
    int integer;
    if (number_extent(j, &stop, &integer, what)) return LSIM_E_FORMAT;
    if (!integer) return json_fail(j, "%s: not an integer", what);
    int neg = *j->p == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (const unsigned char *q = j->p + neg; q < stop; q++) {
        unsigned d = *q - '0';
        if (v > (lim - d) / 10) return json_fail(j, "%s: number does not fit 64 bits", what);
        v = v * 10 + d;
    }
    int64_t x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (x < lo || x > hi) {
        j->p = at;
        return json_fail(j, "%s: %lld is outside [%lld, %lld]", what, (long long)x, (long long)lo, (long long)hi);
    }
    j->p = stop;
    *out = x;
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
    if (n >= sizeof buf) return json_fail(j, "%s: number longer than %zu characters", what, sizeof buf - 1);
    memcpy(buf, j->p, n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return json_fail(j, "%s: number out of range", what);
    j->p = stop;
    *out = v;
    return 0;
}

static int literal(json_scan *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
        char f[32];
        return json_fail(j, "expected a value, found %s", found(j, f, sizeof f));
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
    if (c != '[' && c != '{') return json_fail(j, "expected a value, found %s", found(j, f, sizeof f));
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
        return json_fail(j, "expected ',' or '%c', found %s", close, found(j, f, sizeof f));
    }
}

int json_skip(json_scan *j)
{
    return skip_at(j, 0);
}
