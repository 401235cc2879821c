/*
 * json_dom.c: see json_dom.h.
 */
#include "tests/json_dom.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

typedef struct jparser {
    const char *p, *end;
    int depth;
} jparser;

void jfree(jval *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof *v);
}

static void jws(jparser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int jparse_string(jparser *ps, char **out)
{
    if (ps->p >= ps->end || *ps->p != '"') return -1;
    ps->p++;
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    while (ps->p < ps->end && *ps->p != '"') {
        if (n + 8 > cap) s = realloc(s, cap *= 2);
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) goto bad;
        if (c != '\\') {
            s[n++] = (char)c;
            continue;
        }
        if (ps->p >= ps->end) goto bad;
        c = (unsigned char)*ps->p++;
        switch (c) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            if (ps->end - ps->p < 4) goto bad;
            unsigned u = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval(ps->p[i]);
                if (h < 0) goto bad;
                u = u * 16 + (unsigned)h;
            }
            ps->p += 4;
            if (u == 0 || (u >= 0xD800 && u <= 0xDFFF)) goto bad; /* no NUL, no surrogates in lsim output */
            if (u < 0x80) s[n++] = (char)u;
            else if (u < 0x800) {
                s[n++] = (char)(0xC0 | (u >> 6));
                s[n++] = (char)(0x80 | (u & 0x3F));
            } else {
                s[n++] = (char)(0xE0 | (u >> 12));
                s[n++] = (char)(0x80 | ((u >> 6) & 0x3F));
                s[n++] = (char)(0x80 | (u & 0x3F));
            }
            break;
        }
        default: goto bad;
        }
    }
    if (ps->p >= ps->end) goto bad;
    ps->p++;
    s[n] = 0;
    *out = s;
    return 0;
bad:
    free(s);
    return -1;
}

static int jparse_value(jparser *ps, jval *v);

static int jparse_number(jparser *ps, jval *v)
{
    const char *s = ps->p, *q = s;
    int is_int = 1;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end || *q < '0' || *q > '9') return -1;
    if (*q == '0') q++;
    else
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    if (q < ps->end && *q == '.') {
        is_int = 0;
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') return -1;
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        is_int = 0;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') return -1;
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    v->kind = J_NUM;
    v->str = malloc((size_t)(q - s) + 1);
    memcpy(v->str, s, (size_t)(q - s));
    v->str[q - s] = 0;
    v->is_int = is_int;
    v->d = strtod(v->str, NULL);
    if (is_int) v->i = strtoll(v->str, NULL, 10);
    ps->p = q;
    return 0;
}

static int jparse_container(jparser *ps, jval *v, int obj)
{
    char close = obj ? '}' : ']';
    ps->p++;
    v->kind = obj ? J_OBJ : J_ARR;
    size_t cap = 0;
    jws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = realloc(v->items, cap * sizeof *v->items);
            if (obj) v->keys = realloc(v->keys, cap * sizeof *v->keys);
        }
        jws(ps);
        char *key = NULL;
        if (obj) {
            if (jparse_string(ps, &key)) return -1;
            for (size_t i = 0; i < v->n; i++)
                if (!strcmp(v->keys[i], key)) {
                    free(key);
                    return -1; /* a duplicate key */
                }
            jws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                return -1;
            }
            ps->p++;
        }
        memset(&v->items[v->n], 0, sizeof *v->items);
        if (obj) v->keys[v->n] = key;
        v->n++;
        if (jparse_value(ps, &v->items[v->n - 1])) return -1;
        jws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        return -1;
    }
}

static int jparse_value(jparser *ps, jval *v)
{
    if (++ps->depth > 64) return -1;
    jws(ps);
    int rc = -1;
    if (ps->p >= ps->end) rc = -1;
    else if (*ps->p == '{') rc = jparse_container(ps, v, 1);
    else if (*ps->p == '[') rc = jparse_container(ps, v, 0);
    else if (*ps->p == '"') {
        v->kind = J_STR;
        rc = jparse_string(ps, &v->str);
    } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) {
        v->kind = J_NULL;
        ps->p += 4;
        rc = 0;
    } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "true", 4)) {
        v->kind = J_BOOL;
        v->b = 1;
        ps->p += 4;
        rc = 0;
    } else if (ps->end - ps->p >= 5 && !memcmp(ps->p, "false", 5)) {
        v->kind = J_BOOL;
        ps->p += 5;
        rc = 0;
    } else
        rc = jparse_number(ps, v);
    ps->depth--;
    return rc;
}

/* Parses a whole document (surrounding whitespace allowed); 0 or -1. */
int jparse(const char *text, jval *v)
{
    memset(v, 0, sizeof *v);
    jparser ps = {text, text + strlen(text), 0};
    if (jparse_value(&ps, v)) {
        jfree(v);
        return -1;
    }
    jws(&ps);
    if (ps.p != ps.end) {
        jfree(v);
        return -1;
    }
    return 0;
}

const jval *jget(const jval *o, const char *key)
{
    if (!o || o->kind != J_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

const char *jstr(const jval *o, const char *key)
{
    const jval *v = jget(o, key);
    cr_assert(v && v->kind == J_STR, "key '%s' missing or not a string", key);
    return v->str;
}

long long jint(const jval *o, const char *key)
{
    const jval *v = jget(o, key);
    cr_assert(v && v->kind == J_NUM && v->is_int, "key '%s' missing or not an integer", key);
    return v->i;
}


double jnum(const jval *o, const char *key)
{
    const jval *v = jget(o, key);
    cr_assert(v && v->kind == J_NUM, "key '%s' missing or not a number", key);
    return v->is_int ? (double)v->i : v->d;
}
