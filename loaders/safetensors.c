/*
 * safetensors.c: the safetensors reader and writer (see safetensors.h and
 * docs/CHECKPOINT_FORMAT.md).
 *
 * What it is: st_open maps a file read-only, checks lsim's checksum entry
 * when the header begins with it, walks its JSON header with the
 * strict scanner of json_scan.h along exactly this header's grammar,
 * validates every field, offset and size, and hands out pointers into the
 * mapping (or into aligned copies). st_writer collects tensors and metadata
 * in memory and writes one file atomically.
 * What it is not: a general JSON library (no floats, no booleans, no null, no
 * nesting beyond header -> tensor -> array of integers), nor a streaming
 * writer (a writer holds copies of all its tensors until freed).
 *
 * Invariants:
 *   - The parser reads only header bytes [8, 8 + N) of the mapping; every
 *     read is bounds-checked against the header's end. It does not recurse;
 *     the grammar's depth is 3 (header object, tensor object, integer array),
 *     so no nesting can exhaust a stack.
 *   - Decoded strings live in one arena of N + 1 bytes. A decoded string plus
 *     its NUL never exceeds its encoded form with both quotes (an escape
 *     decodes to fewer bytes than it takes), and strings do not overlap in the
 *     header, so the arena never overflows (json_string checks it anyway).
 *   - Nothing in an st_file is used before the whole header has been checked:
 *     st_open either returns a file whose every tensor is valid (dtype, shape,
 *     offsets tiling the data section exactly, data aligned to its dtype size)
 *     or fails and frees everything.
 *   - An st_file is read-only after st_open: any number of threads may read
 *     it concurrently.
 *   - Writer output is a function of its inputs only: header in insertion
 *     order ("__metadata__" first, as safetensors_io.py writes it), data laid
 *     out by decreasing dtype size (insertion order within a size), so every
 *     tensor is aligned in the file and can be used from the mapping in place.
 */
#include "loaders/safetensors.h"

#include "lsim.h"
#include "loaders/json_scan.h"
#include "loaders/utf8.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_QUOTE_MAX 120 /* bytes of a name quoted in a message */
#define ST_SHAPE_STR 256 /* room for "[d0, ..., d7]" of 20-digit dims */
#define ST_META_KEY "__metadata__"
/* The checksum entry (docs/CHECKPOINT_FORMAT.md, "Checksum"): the first
 * metadata entry, so the header's first bytes are ST_CRC_PREFIX, then 8
 * lower-case hex digits at file offset ST_CRC_AT, then '"'. */
#define ST_CRC_KEY "lsim.crc32c"
#define ST_CRC_PREFIX "{\"" ST_META_KEY "\":{\"" ST_CRC_KEY "\":\""
#define ST_CRC_AT (8 + sizeof ST_CRC_PREFIX - 1)
#define ST_CRC_DIGITS 8
/* A header whose first bytes differ from ST_CRC_PREFIX in at most this many
 * is an lsim checkpoint whose checksum entry was damaged. */
#define ST_CRC_NEAR 3

/* A non-NULL, maximally aligned address for 0-byte tensors. */
static const uint64_t st_empty_data;

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_F16] = {"F16", 2}, [ST_I64] = {"I64", 8},
    [ST_I32] = {"I32", 4}, [ST_I8] = {"I8", 1},   [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

const char *st_dtype_name(st_dtype t)
{
    return (unsigned)t < ST_NDTYPES ? st_dtypes[t].name : "?";
}

size_t st_dtype_size(st_dtype t)
{
    return (unsigned)t < ST_NDTYPES ? st_dtypes[t].size : 0;
}

static int dtype_lookup(const char *s, st_dtype *out)
{
    for (size_t i = 0; i < ST_NDTYPES; i++) {
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* numel of a shape; -1 if a product of its non-zero dims overflows uint64
 * (then no stride computed from it can be trusted, even when a 0 dim makes the
 * true product 0). */
static int shape_numel(size_t ndim, const uint64_t *shape, uint64_t *numel)
{
    uint64_t nz = 1;
    int zero = 0;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            zero = 1;
            continue;
        }
        if (nz > UINT64_MAX / shape[i]) return -1;
        nz *= shape[i];
    }
    *numel = zero ? 0 : nz;
    return 0;
}

static void fmt_shape(char *buf, size_t cap, size_t ndim, const uint64_t *shape)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* A printable rendering of a (valid UTF-8) name for messages: control bytes
 * as \xHH, cut at ST_QUOTE_MAX bytes on a character boundary. */
static const char *quote(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (n + 8 >= cap || n >= ST_QUOTE_MAX) {
            while (n > 0 && ((unsigned char)buf[n - 1] & 0xC0) == 0x80) n--; /* continuation bytes */
            if (n > 0 && ((unsigned char)buf[n - 1] & 0xC0) == 0xC0) n--;    /* their lead byte */
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        if (*p < 0x20 || *p == 0x7f) n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", *p);
        else buf[n++] = (char)*p;
    }
    buf[n] = 0;
    return buf;
}

/* ========================================================================= */
/* Reading                                                                   */

typedef struct st_kv {
    const char *key, *value;
} st_kv;

struct st_file {
    char *path;
    void *map;
    size_t map_size;
    char *arena;             /* decoded header strings */
    st_tensor *tensors;      /* header order */
    size_t n;
    const st_tensor **by_name; /* sorted by strcmp of name */
    st_kv *meta;             /* header order */
    size_t n_meta;
    const st_kv **meta_by_key;
    void *copies;            /* aligned copies of tensors misaligned in the mapping */
    int has_crc;             /* the file carries lsim's checksum entry, and it matched */
};

/* Where a tensor's bytes are, relative to the data section. */
typedef struct st_span {
    uint64_t begin, end;
    size_t idx;
} st_span;

/* Parser state: the scanner over the header bytes, and what it has read. */
typedef struct jp {
    json_scan s;
    char *arena;
    size_t arena_used, arena_cap;
    const char *path;
    const char *ctx; /* current tensor name, ST_META_KEY, or NULL at top level */
    char *err;
    size_t errlen;
    /* results */
    st_tensor *t;
    st_span *spans; /* spans[i] is t[i]'s until check_tiling sorts them */
    size_t n, cap, cap_spans;
    st_kv *meta;
    size_t n_meta, cap_meta;
    int seen_meta;
    uint64_t data_size;
} jp;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail_path(char *err, size_t errlen, const char *path, const char *fmt, ...);

static int fail_path(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(err, errlen, LSIM_E_FORMAT, "%s: %s", path, msg);
}

/* A file whose size disagrees with its header, or whose checksum fails:
 * LSIM_E_CORRUPT, and the message says so. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail_corrupt(char *err, size_t errlen, const char *path, const char *fmt, ...);

static int fail_corrupt(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt checkpoint: %s", path, msg);
}

/* The scanner's fail hook (json_fail_fn): a header syntax or schema error at
 * header byte `at` (0-based), in context. */
static int jp_report(void *user, size_t at, const char *msg)
{
    jp *j = user;
    char q[ST_QUOTE_MAX + 16];
    if (!j->ctx)
        return err_set(j->err, j->errlen, LSIM_E_FORMAT, "%s: header byte %zu: %s", j->path, at, msg);
    if (strcmp(j->ctx, ST_META_KEY) == 0)
        return err_set(j->err, j->errlen, LSIM_E_FORMAT, "%s: __metadata__: header byte %zu: %s", j->path, at,
                       msg);
    return err_set(j->err, j->errlen, LSIM_E_FORMAT, "%s: tensor %s: header byte %zu: %s", j->path,
                   quote(j->ctx, q, sizeof q), at, msg);
}

/* A schema error about the current tensor, without a byte position. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int jp_fail_tensor(jp *j, const char *fmt, ...);

static int jp_fail_tensor(jp *j, const char *fmt, ...)
{
    char msg[LSIM_ERRLEN], q[ST_QUOTE_MAX + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(j->err, j->errlen, LSIM_E_FORMAT, "%s: tensor %s: %s", j->path, quote(j->ctx, q, sizeof q),
                   msg);
}

/* ':' and the white space after it, so that a message about the value
 * points at the value. */
static int jp_colon(jp *j)
{
    if (json_expect(&j->s, ':', "':'")) return LSIM_E_FORMAT;
    json_peek(&j->s);
    return 0;
}

/* A JSON string, decoded into the arena, NUL-terminated. `what` names it
 * for messages. */
static int jp_string(jp *j, const char **out, const char *what)
{
    char f[32];
    size_t n;
    *out = NULL;
    if (json_peek(&j->s) != '"')
        return json_fail(&j->s, "expected %s (a string), found %s", what, json_found(&j->s, f, sizeof f));
    char *dst = j->arena + j->arena_used;
    if (json_string(&j->s, dst, j->arena_cap - j->arena_used, &n, NULL)) return LSIM_E_FORMAT;
    j->arena_used += n + 1;
    *out = dst;
    return 0;
}

/* '[' uint (',' uint)* ']' or '[]', at most max entries. */
static int jp_uint_array(jp *j, uint64_t *vals, size_t max, size_t *n, const char *what, const char *too_many)
{
    char f[32];
    json_scan *s = &j->s;
    *n = 0;
    if (!json_accept(s, '[')) return json_fail(s, "%s: expected an array, found %s", what, json_found(s, f, sizeof f));
    if (json_accept(s, ']')) return 0;
    for (;;) {
        json_peek(s); /* a message about the next number points at it */
        if (*n == max) return json_fail(s, "%s: %s", what, too_many);
        if (json_uint(s, &vals[*n], what)) return LSIM_E_FORMAT;
        (*n)++;
        if (json_accept(s, ',')) continue;
        if (json_accept(s, ']')) return 0;
        return json_fail(s, "%s: expected ',' or ']', found %s", what, json_found(s, f, sizeof f));
    }
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return -1;
        nc *= 2;
    }
    void *p = realloc(*arr, nc * elem);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static int jp_nomem(jp *j)
{
    return err_set(j->err, j->errlen, LSIM_E_NOMEM, "%s: out of memory reading the header", j->path);
}

/* "__metadata__": {"KEY": "VALUE", ...}; at the value. */
static int jp_metadata(jp *j)
{
    char f[32], q[ST_QUOTE_MAX + 16];
    json_scan *s = &j->s;
    j->ctx = ST_META_KEY;
    if (j->seen_meta) return json_fail(s, "a second __metadata__");
    j->seen_meta = 1;
    if (!json_accept(s, '{'))
        return json_fail(s, "__metadata__ is not an object (found %s)", json_found(s, f, sizeof f));
    if (!json_accept(s, '}')) {
        for (;;) {
            const char *key, *value;
            if (jp_string(j, &key, "a key") || jp_colon(j)) return LSIM_E_FORMAT;
            if (json_peek(s) != '"')
                return json_fail(s, "the value of %s is not a string (found %s)", quote(key, q, sizeof q),
                                 json_found(s, f, sizeof f));
            if (jp_string(j, &value, "a value")) return LSIM_E_FORMAT;
            if (grow((void **)&j->meta, &j->cap_meta, j->n_meta + 1, sizeof *j->meta)) return jp_nomem(j);
            j->meta[j->n_meta++] = (st_kv){key, value};
            if (json_accept(s, ',')) continue;
            if (json_expect(s, '}', "',' or '}'")) return LSIM_E_FORMAT;
            break;
        }
    }
    j->ctx = NULL;
    return 0;
}

/* The checks on one tensor that need only its own fields. */
static int jp_check_tensor(jp *j, st_tensor *t, const st_span *s)
{
    char sh[ST_SHAPE_STR];
    fmt_shape(sh, sizeof sh, t->ndim, t->shape);
    if (shape_numel(t->ndim, t->shape, &t->numel))
        return jp_fail_tensor(j, "shape %s overflows (its element count exceeds 2^64)", sh);
    size_t dsz = st_dtype_size(t->dtype);
    if (t->numel > UINT64_MAX / dsz || t->numel * dsz > SIZE_MAX)
        return jp_fail_tensor(j, "shape %s of %s overflows (its byte size exceeds 2^64)", sh, st_dtype_name(t->dtype));
    uint64_t nbytes = t->numel * dsz;
    if (s->begin > s->end)
        return jp_fail_tensor(j, "data_offsets [%" PRIu64 ", %" PRIu64 "]: begin is after end", s->begin, s->end);
    if (s->end > j->data_size) { /* the file is shorter than its header says: truncated */
        char q[ST_QUOTE_MAX + 16];
        return fail_corrupt(j->err, j->errlen, j->path,
                            "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the data section (%"
                            PRIu64 " bytes): truncated?",
                            quote(j->ctx, q, sizeof q), s->begin, s->end, j->data_size);
    }
    if (s->end - s->begin != nbytes)
        return jp_fail_tensor(j,
                              "shape %s of %s needs %" PRIu64 " bytes, but data_offsets [%" PRIu64 ", %" PRIu64
                              "] hold %" PRIu64,
                              sh, st_dtype_name(t->dtype), nbytes, s->begin, s->end, s->end - s->begin);
    t->nbytes = (size_t)nbytes;
    return 0;
}

/* "NAME": {"dtype": ..., "shape": [...], "data_offsets": [B, E]}; at the value. */
static int jp_tensor(jp *j, const char *name)
{
    char f[32], q[ST_QUOTE_MAX + 16];
    json_scan *s = &j->s;
    j->ctx = name;
    if (!json_accept(s, '{')) return json_fail(s, "expected an object, found %s", json_found(s, f, sizeof f));
    if (grow((void **)&j->t, &j->cap, j->n + 1, sizeof *j->t) ||
        grow((void **)&j->spans, &j->cap_spans, j->n + 1, sizeof *j->spans))
        return jp_nomem(j);
    st_tensor *t = &j->t[j->n];
    st_span *sp = &j->spans[j->n];
    memset(t, 0, sizeof *t);
    memset(sp, 0, sizeof *sp);
    t->name = name;
    sp->idx = j->n;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!json_accept(s, '}')) {
        for (;;) {
            const char *field;
            if (jp_string(j, &field, "a field name") || jp_colon(j)) return LSIM_E_FORMAT;
            if (strcmp(field, "dtype") == 0) {
                const char *dt;
                if (have_dtype) return json_fail(s, "a second \"dtype\"");
                have_dtype = 1;
                if (json_peek(s) != '"')
                    return json_fail(s, "dtype: expected a string, found %s", json_found(s, f, sizeof f));
                if (jp_string(j, &dt, "dtype")) return LSIM_E_FORMAT;
                if (dtype_lookup(dt, &t->dtype))
                    return jp_fail_tensor(j, "unknown dtype \"%s\" (lsim reads F32 F64 F16 I64 I32 I8 U8 BOOL)",
                                          quote(dt, q, sizeof q));
            } else if (strcmp(field, "shape") == 0) {
                if (have_shape) return json_fail(s, "a second \"shape\"");
                have_shape = 1;
                if (jp_uint_array(j, t->shape, ST_MAX_DIMS, &t->ndim, "shape", "more than 8 dimensions"))
                    return LSIM_E_FORMAT;
            } else if (strcmp(field, "data_offsets") == 0) {
                uint64_t off[2];
                size_t n;
                if (have_offsets) return json_fail(s, "a second \"data_offsets\"");
                have_offsets = 1;
                const unsigned char *at = s->p;
                if (jp_uint_array(j, off, 2, &n, "data_offsets", "expected [BEGIN, END], found more than 2 numbers"))
                    return LSIM_E_FORMAT;
                if (n != 2) {
                    s->p = at;
                    return json_fail(s, "data_offsets: expected [BEGIN, END], found %zu number%s", n,
                                     n == 1 ? "" : "s");
                }
                sp->begin = off[0];
                sp->end = off[1];
            } else {
                return jp_fail_tensor(j, "unknown field \"%s\" (expected dtype, shape, data_offsets)",
                                      quote(field, q, sizeof q));
            }
            if (json_accept(s, ',')) continue;
            if (json_expect(s, '}', "',' or '}'")) return LSIM_E_FORMAT;
            break;
        }
    }
    if (!have_dtype) return jp_fail_tensor(j, "missing \"dtype\"");
    if (!have_shape) return jp_fail_tensor(j, "missing \"shape\"");
    if (!have_offsets) return jp_fail_tensor(j, "missing \"data_offsets\"");
    int rc = jp_check_tensor(j, t, sp);
    if (rc) return rc;
    j->n++;
    j->ctx = NULL;
    return 0;
}

/* The whole header: one object, then only whitespace. */
static int jp_header(jp *j)
{
    char f[32];
    json_scan *s = &j->s;
    /* The first byte itself: white space before the '{' is refused. */
    if (s->p >= s->end || *s->p != '{')
        return json_fail(s, "the header must begin with '{', found %s", json_found(s, f, sizeof f));
    s->p++;
    if (!json_accept(s, '}')) {
        for (;;) {
            const char *name;
            if (jp_string(j, &name, "a tensor name") || jp_colon(j)) return LSIM_E_FORMAT;
            int rc = strcmp(name, ST_META_KEY) == 0 ? jp_metadata(j) : jp_tensor(j, name);
            if (rc) return rc;
            if (json_accept(s, ',')) continue;
            if (json_expect(s, '}', "',' or '}'")) return LSIM_E_FORMAT;
            break;
        }
    }
    if (json_peek(s) >= 0)
        return json_fail(s, "%s after the header's closing '}' (only spaces may pad it)", json_found(s, f, sizeof f));
    return 0;
}

static int cmp_span(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

static int cmp_kv_key(const void *a, const void *b)
{
    const st_kv *x = *(const st_kv *const *)a, *y = *(const st_kv *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x > y) - (x < y);
}

/* Tensors tile [0, data_size) exactly, in the order of their offsets. */
static int check_tiling(jp *j)
{
    char q1[ST_QUOTE_MAX + 16], q2[ST_QUOTE_MAX + 16];
    st_span *s = j->spans;
    if (j->n) qsort(s, j->n, sizeof *s, cmp_span);
    uint64_t at = 0;
    for (size_t i = 0; i < j->n; i++) {
        const char *name = j->t[s[i].idx].name;
        if (s[i].begin > at) {
            if (i == 0)
                return fail_path(j->err, j->errlen, j->path,
                                 "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] leave a hole of %" PRIu64
                                 " bytes at the start of the data section",
                                 quote(name, q1, sizeof q1), s[i].begin, s[i].end, s[i].begin);
            return fail_path(j->err, j->errlen, j->path,
                             "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] leave a hole of %" PRIu64
                             " bytes after tensor %s (which ends at %" PRIu64 ")",
                             quote(name, q1, sizeof q1), s[i].begin, s[i].end, s[i].begin - at,
                             quote(j->t[s[i - 1].idx].name, q2, sizeof q2), at);
        }
        if (s[i].begin < at)
            return fail_path(j->err, j->errlen, j->path,
                             "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor %s [%" PRIu64
                             ", %" PRIu64 "]",
                             quote(name, q1, sizeof q1), s[i].begin, s[i].end,
                             quote(j->t[s[i - 1].idx].name, q2, sizeof q2), s[i - 1].begin, s[i - 1].end);
        at = s[i].end;
    }
    if (at != j->data_size)
        return fail_corrupt(j->err, j->errlen, j->path,
                            "the data section has %" PRIu64 " bytes but the tensors end at %" PRIu64 " (%" PRIu64
                            " trailing bytes)",
                            j->data_size, at, j->data_size - at);
    return 0;
}

void st_close(st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    free(f->arena);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f->meta_by_key);
    free(f->copies);
    free(f);
}

static int io_fail(char *err, size_t errlen, const char *path, const char *what)
{
    return err_set(err, errlen, LSIM_E_IO, "%s: %s: %s", path, what, strerror(errno));
}

/* Unique names and keys, and the sorted indexes st_find and st_meta search. */
static int st_index(st_file *f, char *err, size_t errlen)
{
    char q[ST_QUOTE_MAX + 16];
    if (f->n) {
        f->by_name = malloc(f->n * sizeof *f->by_name);
        if (!f->by_name) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", f->path);
        for (size_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
        qsort(f->by_name, f->n, sizeof *f->by_name, cmp_tensor_name);
        for (size_t i = 1; i < f->n; i++)
            if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
                return fail_path(err, errlen, f->path, "duplicate tensor name %s",
                                 quote(f->by_name[i]->name, q, sizeof q));
    }
    if (f->n_meta) {
        f->meta_by_key = malloc(f->n_meta * sizeof *f->meta_by_key);
        if (!f->meta_by_key) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", f->path);
        for (size_t i = 0; i < f->n_meta; i++) f->meta_by_key[i] = &f->meta[i];
        qsort(f->meta_by_key, f->n_meta, sizeof *f->meta_by_key, cmp_kv_key);
        for (size_t i = 1; i < f->n_meta; i++)
            if (strcmp(f->meta_by_key[i - 1]->key, f->meta_by_key[i]->key) == 0)
                return fail_path(err, errlen, f->path, "__metadata__: duplicate key %s",
                                 quote(f->meta_by_key[i]->key, q, sizeof q));
    }
    return 0;
}

#define ST_COPY_ALIGN 8 /* the largest dtype size */

/* Sets every tensor's data pointer: into the mapping where it is aligned to
 * its dtype size there, else into one block of aligned copies. Checks BOOL
 * values are 0 or 1. spans[0..f->n) are the tensors' offsets (any order). */
static int st_place(st_file *f, const st_span *spans, const unsigned char *data, char *err, size_t errlen)
{
    char q[ST_QUOTE_MAX + 16];
    size_t copy_bytes = 0;
    for (size_t k = 0; k < f->n; k++) {
        st_tensor *t = &f->tensors[spans[k].idx];
        const unsigned char *p = data + spans[k].begin;
        if (t->dtype == ST_BOOL) {
            for (size_t i = 0; i < t->nbytes; i++)
                if (p[i] > 1)
                    return fail_path(err, errlen, f->path, "tensor %s: BOOL element %zu is %u, not 0 or 1",
                                     quote(t->name, q, sizeof q), i, p[i]);
        }
        if (t->nbytes && (uintptr_t)p % st_dtype_size(t->dtype)) {
            size_t r = (t->nbytes + ST_COPY_ALIGN - 1) / ST_COPY_ALIGN * ST_COPY_ALIGN;
            if (r < t->nbytes || copy_bytes > SIZE_MAX - r)
                return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", f->path);
            copy_bytes += r;
        }
    }
    unsigned char *c = NULL;
    if (copy_bytes) {
        c = f->copies = malloc(copy_bytes); /* malloc aligns to max_align_t >= ST_COPY_ALIGN */
        if (!c) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory (%zu bytes of aligned copies)",
                               f->path, copy_bytes);
    }
    for (size_t k = 0; k < f->n; k++) {
        st_tensor *t = &f->tensors[spans[k].idx];
        const unsigned char *p = data + spans[k].begin;
        if (!t->nbytes) {
            t->data = &st_empty_data;
        } else if ((uintptr_t)p % st_dtype_size(t->dtype)) {
            memcpy(c, p, t->nbytes);
            t->data = c;
            c += (t->nbytes + ST_COPY_ALIGN - 1) / ST_COPY_ALIGN * ST_COPY_ALIGN;
        } else {
            t->data = p;
        }
    }
    return 0;
}

static int hex_digit(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The CRC-32C of the file with its checksum digits read as '0's. */
static uint32_t st_file_crc(const unsigned char *m, size_t n)
{
    uint32_t crc = crc32c(0, m, ST_CRC_AT);
    crc = crc32c(crc, "00000000", ST_CRC_DIGITS);
    return crc32c(crc, m + ST_CRC_AT + ST_CRC_DIGITS, n - ST_CRC_AT - ST_CRC_DIGITS);
}

/* lsim's checksum entry, before anything else is read: sets f->has_crc when
 * the header begins with it and the file's bytes match it. LSIM_E_CORRUPT
 * when they do not, or when the header begins with a damaged copy of it (at
 * most ST_CRC_NEAR bytes differ, or the digits are not 8 lower-case hex
 * digits and '"'). A file without it (PyTorch's) is left to the parser. */
static int st_check_crc(st_file *f, char *err, size_t errlen)
{
    const unsigned char *m = f->map;
    size_t n = f->map_size, plen = sizeof ST_CRC_PREFIX - 1;
    if (n < ST_CRC_AT + ST_CRC_DIGITS + 1) return 0; /* too short to hold it: the size checks refuse it */
    size_t diff = 0;
    for (size_t i = 0; i < plen; i++) diff += m[8 + i] != (unsigned char)ST_CRC_PREFIX[i];
    if (diff > ST_CRC_NEAR) return 0;
    if (diff)
        return fail_corrupt(err, errlen, f->path, "its checksum entry (%s, the header's first bytes) is damaged",
                            ST_CRC_KEY);
    uint32_t want = 0;
    for (size_t i = 0; i < ST_CRC_DIGITS; i++) {
        int d = hex_digit(m[ST_CRC_AT + i]);
        if (d < 0) return fail_corrupt(err, errlen, f->path, "its checksum %s is not 8 hex digits", ST_CRC_KEY);
        want = want << 4 | (uint32_t)d;
    }
    if (m[ST_CRC_AT + ST_CRC_DIGITS] != '"')
        return fail_corrupt(err, errlen, f->path, "its checksum %s is not 8 hex digits", ST_CRC_KEY);
    uint32_t got = st_file_crc(m, n);
    if (got != want)
        return fail_corrupt(err, errlen, f->path,
                            "CRC-32C mismatch (%s says %08x, the file's %zu bytes give %08x): changed or truncated",
                            ST_CRC_KEY, want, n, got);
    f->has_crc = 1;
    return 0;
}

/* Drops the checksum entry from the metadata (it is the file's, not a
 * model's); a second one, or one that is not the first entry (so never
 * checked), is refused. */
static int st_take_crc(st_file *f, char *err, size_t errlen)
{
    if (f->has_crc) { /* the parser read it first */
        memmove(f->meta, f->meta + 1, (f->n_meta - 1) * sizeof *f->meta);
        f->n_meta--;
    }
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, ST_CRC_KEY) == 0)
            return fail_path(err, errlen, f->path,
                             "__metadata__: %s %s: it must be the first entry of __metadata__, at the start of the "
                             "header, where lsim checks it",
                             f->has_crc ? "a second" : "an unchecked", ST_CRC_KEY);
    return 0;
}

/* Validates and indexes the header of the mapped f; f->map is set. */
static int st_parse(st_file *f, char *err, size_t errlen)
{
    const unsigned char *m = f->map;
    const char *path = f->path;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | m[i];
    if (hlen == 0) return fail_path(err, errlen, path, "header length is 0 (a header is at least \"{}\")");
    if (hlen > ST_MAX_HEADER)
        return fail_path(err, errlen, path, "header length %" PRIu64 " exceeds the limit of %u bytes", hlen,
                         (unsigned)ST_MAX_HEADER);
    if (hlen > f->map_size - 8)
        return fail_corrupt(err, errlen, path,
                            "header length %" PRIu64 " runs past the end of the file (%zu bytes): truncated?", hlen,
                            f->map_size);

    jp j;
    memset(&j, 0, sizeof j);
    json_scan_init(&j.s, (const char *)m + 8, (size_t)hlen, path, err, errlen);
    json_scan_report(&j.s, jp_report, &j, "the end of the header");
    j.path = path;
    j.err = err;
    j.errlen = errlen;
    j.data_size = (uint64_t)(f->map_size - 8 - hlen);
    j.arena_cap = (size_t)hlen + 1;
    j.arena = f->arena = malloc(j.arena_cap);
    if (!j.arena) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", path);

    int rc = jp_header(&j);
    if (!rc) rc = check_tiling(&j); /* sorts j.spans by offset */
    f->tensors = j.t;
    f->n = j.n;
    f->meta = j.meta;
    f->n_meta = j.n_meta;
    if (!rc) rc = st_take_crc(f, err, errlen);
    if (!rc) rc = st_index(f, err, errlen);
    if (!rc) rc = st_place(f, j.spans, m + 8 + hlen, err, errlen);
    free(j.spans);
    return rc;
}

int st_open(st_file **out, const char *path, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!out || !path) return err_set(err, errlen, LSIM_E_INVAL, "st_open: NULL argument");
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = io_fail(err, errlen, path, "open");
        st_close(f);
        return rc;
    }
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0) rc = io_fail(err, errlen, path, "fstat");
    else if (!S_ISREG(sb.st_mode)) rc = err_set(err, errlen, LSIM_E_IO, "%s: not a regular file", path);
    else if (sb.st_size < 8)
        rc = fail_corrupt(err, errlen, path, "file is %lld bytes, shorter than the 8-byte header length: truncated?",
                          (long long)sb.st_size);
    else if ((uint64_t)sb.st_size > SIZE_MAX)
        rc = fail_path(err, errlen, path, "file is too large to map (%lld bytes)", (long long)sb.st_size);
    if (!rc) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) rc = io_fail(err, errlen, path, "mmap");
        else f->map = m, f->map_size = (size_t)sb.st_size;
    }
    close(fd);
    if (!rc) rc = st_check_crc(f, err, errlen);
    if (!rc) rc = st_parse(f, err, errlen);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

size_t st_count(const st_file *f)
{
    return f ? f->n : 0;
}

const st_tensor *st_at(const st_file *f, size_t i)
{
    return f && i < f->n ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int st_get(const st_file *f, const char *name, st_dtype dtype, size_t ndim, const uint64_t *shape,
           const void **data, char *err, size_t errlen)
{
    char q[ST_QUOTE_MAX + 16], want[ST_SHAPE_STR], have[ST_SHAPE_STR];
    if (data) *data = NULL;
    if (!f || !name || !data || ndim > ST_MAX_DIMS || (ndim && !shape) || (unsigned)dtype >= ST_NDTYPES)
        return err_set(err, errlen, LSIM_E_INVAL, "st_get: bad argument");
    const st_tensor *t = st_find(f, name);
    if (!t) return err_set(err, errlen, LSIM_E_NOTFOUND, "%s: no tensor %s", f->path, quote(name, q, sizeof q));
    int same = t->dtype == dtype && t->ndim == ndim;
    for (size_t i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        fmt_shape(want, sizeof want, ndim, shape);
        fmt_shape(have, sizeof have, t->ndim, t->shape);
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: tensor %s: expected %s %s, found %s %s", f->path,
                       quote(name, q, sizeof q), st_dtype_name(dtype), want, st_dtype_name(t->dtype), have);
    }
    *data = t->data;
    return 0;
}

const char *st_meta(const st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    size_t lo = 0, hi = f->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->meta_by_key[mid]->key, key);
        if (c == 0) return f->meta_by_key[mid]->value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int st_meta_i64(const st_file *f, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out,
                char *err, size_t errlen)
{
    const char *v = st_meta(f, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || (*v != '-' && (*v < '0' || *v > '9')) || x < lo || x > hi)
        return err_set(err, errlen, LSIM_E_FORMAT, "%s: metadata %s: want an integer in [%lld, %lld], found '%.40s'",
                       path, key, (long long)lo, (long long)hi, v);
    *out = x;
    return 1;
}

size_t st_meta_count(const st_file *f)
{
    return f ? f->n_meta : 0;
}

void st_meta_at(const st_file *f, size_t i, const char **key, const char **value)
{
    const st_kv *kv = f && i < f->n_meta ? &f->meta[i] : NULL;
    if (key) *key = kv ? kv->key : NULL;
    if (value) *value = kv ? kv->value : NULL;
}

/* ========================================================================= */
/* Writing                                                                   */

typedef struct st_wtensor {
    char *name;
    st_dtype dtype;
    size_t ndim;
    uint64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    unsigned char *data;
    uint64_t begin; /* set by st_writer_write's layout */
} st_wtensor;

typedef struct st_wmeta {
    char *key, *value;
} st_wmeta;

struct st_writer {
    st_wtensor *t;
    size_t n, cap;
    st_wmeta *meta;
    size_t n_meta, cap_meta;
};

int st_writer_new(st_writer **out)
{
    if (!out) return LSIM_E_INVAL;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : LSIM_E_NOMEM;
}

void st_writer_free(st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
}

/* Names are unique among tensors; a linear scan (checkpoints hold hundreds of
 * tensors, not millions). */
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, size_t ndim, const uint64_t *shape,
                  const void *data)
{
    uint64_t numel;
    if (!w || !name || (unsigned)dtype >= ST_NDTYPES || ndim > ST_MAX_DIMS || (ndim && !shape)) return LSIM_E_INVAL;
    if (strcmp(name, ST_META_KEY) == 0 || !utf8_valid(name)) return LSIM_E_INVAL;
    if (shape_numel(ndim, shape, &numel)) return LSIM_E_INVAL;
    size_t dsz = st_dtype_size(dtype);
    if (numel > SIZE_MAX / dsz) return LSIM_E_INVAL;
    size_t nbytes = (size_t)numel * dsz;
    if (nbytes && !data) return LSIM_E_INVAL;
    if (dtype == ST_BOOL)
        for (size_t i = 0; i < nbytes; i++)
            if (((const unsigned char *)data)[i] > 1) return LSIM_E_INVAL;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return LSIM_E_INVAL;
    if (grow((void **)&w->t, &w->cap, w->n + 1, sizeof *w->t)) return LSIM_E_NOMEM;
    st_wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return LSIM_E_NOMEM;
    }
    if (nbytes) memcpy(t->data, data, nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (size_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

int st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value || !utf8_valid(key) || !utf8_valid(value)) return LSIM_E_INVAL;
    if (strcmp(key, ST_CRC_KEY) == 0) return LSIM_E_INVAL; /* the writer's own */
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) return LSIM_E_INVAL;
    if (grow((void **)&w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta)) return LSIM_E_NOMEM;
    st_wmeta *m = &w->meta[w->n_meta];
    m->key = strdup(key);
    m->value = strdup(value);
    if (!m->key || !m->value) {
        free(m->key);
        free(m->value);
        return LSIM_E_NOMEM;
    }
    w->n_meta++;
    return 0;
}

/* A growing byte buffer; `oom` sticks once an allocation fails. */
typedef struct st_buf {
    char *p;
    size_t n, cap;
    int oom;
} st_buf;

static void buf_put(st_buf *b, const char *s, size_t len)
{
    if (b->oom) return;
    if (len > SIZE_MAX - b->n - 1 || grow((void **)&b->p, &b->cap, b->n + len + 1, 1)) {
        b->oom = 1;
        return;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

static void buf_str(st_buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_u64(st_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    buf_put(b, tmp, (size_t)n);
}

/* A JSON string as Python's json.dumps (ensure_ascii) writes it: the header
 * is pure ASCII; \" \\ \b \f \n \r \t, every other byte outside ' '..'~' as
 * \uXXXX (lowercase hex), characters above U+FFFF as surrogate pairs.
 * s is valid UTF-8 (the writer checked it). */
static void buf_json_string(st_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    char tmp[16];
    buf_put(b, "\"", 1);
    while (p < end) {
        unsigned c = *p;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) {
            buf_str(b, esc);
            p++;
            continue;
        }
        if (c >= 0x20 && c < 0x7f) {
            buf_put(b, (const char *)p, 1);
            p++;
            continue;
        }
        uint32_t cp = c;
        size_t n = utf8_next(p, end, &cp); /* >= 1: s is valid */
        p += n ? n : 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800u | (cp >> 10), 0xDC00u | (cp & 0x3FFu));
        } else {
            snprintf(tmp, sizeof tmp, "\\u%04x", cp);
        }
        buf_str(b, tmp);
    }
    buf_put(b, "\"", 1);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_fail(char *err, size_t errlen, const char *path, const char *what)
{
    int code = (errno == ENOSPC || errno == EDQUOT) ? LSIM_E_FULL : LSIM_E_IO;
    return err_set(err, errlen, code, "%s: %s: %s", path, what, strerror(errno));
}

/* fsync of the directory holding path, so the rename itself is durable.
 * Filesystems that cannot fsync a directory (EINVAL) are let be. */
static int sync_parent(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = strdup(".");
    else if (slash == path) dir = strdup("/");
    else dir = strndup(path, (size_t)(slash - path));
    if (!dir) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0) rc = io_fail(err, errlen, dir, "open (to fsync the directory)");
    else if (fsync(fd) != 0 && errno != EINVAL) rc = io_fail(err, errlen, dir, "fsync");
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

int st_writer_write(st_writer *w, const char *path, char *err, size_t errlen)
{
    if (!w || !path) return err_set(err, errlen, LSIM_E_INVAL, "st_writer_write: NULL argument");

    /* Layout: by decreasing dtype size, insertion order within a size. Every
     * size is a multiple of its dtype size, so every begin is aligned. */
    uint64_t at = 0;
    for (size_t sz = 8; sz >= 1; sz /= 2)
        for (size_t i = 0; i < w->n; i++)
            if (st_dtype_size(w->t[i].dtype) == sz) {
                w->t[i].begin = at;
                at += w->t[i].nbytes;
            }

    /* The 8-byte length, then the header, padded with spaces to a multiple of 8. */
    st_buf b = {0};
    buf_put(&b, "\0\0\0\0\0\0\0\0", 8);
    buf_str(&b, ST_CRC_PREFIX "00000000\""); /* the checksum entry first; its digits are filled in below */
    for (size_t i = 0; i < w->n_meta; i++) {
        buf_put(&b, ",", 1);
        buf_json_string(&b, w->meta[i].key);
        buf_put(&b, ":", 1);
        buf_json_string(&b, w->meta[i].value);
    }
    buf_put(&b, "}", 1);
    for (size_t i = 0; i < w->n; i++) {
        const st_wtensor *t = &w->t[i];
        buf_put(&b, ",", 1);
        buf_json_string(&b, t->name);
        buf_str(&b, ":{\"dtype\":");
        buf_json_string(&b, st_dtype_name(t->dtype));
        buf_str(&b, ",\"shape\":[");
        for (size_t d = 0; d < t->ndim; d++) {
            if (d) buf_put(&b, ",", 1);
            buf_u64(&b, t->shape[d]);
        }
        buf_str(&b, "],\"data_offsets\":[");
        buf_u64(&b, t->begin);
        buf_put(&b, ",", 1);
        buf_u64(&b, t->begin + t->nbytes);
        buf_str(&b, "]}");
    }
    buf_put(&b, "}", 1);
    while (!b.oom && b.n % 8) buf_put(&b, " ", 1);
    if (b.oom) {
        free(b.p);
        return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory building the header", path);
    }
    uint64_t hlen = b.n - 8;
    if (hlen > ST_MAX_HEADER) {
        free(b.p);
        return err_set(err, errlen, LSIM_E_LIMIT, "%s: header of %" PRIu64 " bytes exceeds the limit of %u", path,
                       hlen, (unsigned)ST_MAX_HEADER);
    }
    for (int i = 0; i < 8; i++) b.p[i] = (char)(hlen >> (8 * i));
    /* the CRC-32C of the whole file as written, with the digits as '0's (st_file_crc) */
    uint32_t crc = crc32c(0, b.p, b.n);
    for (size_t sz = 8; sz >= 1; sz /= 2)
        for (size_t i = 0; i < w->n; i++)
            if (st_dtype_size(w->t[i].dtype) == sz) crc = crc32c(crc, w->t[i].data, w->t[i].nbytes);
    char digits[ST_CRC_DIGITS + 1];
    snprintf(digits, sizeof digits, "%08x", crc);
    memcpy(b.p + ST_CRC_AT, digits, ST_CRC_DIGITS);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        free(b.p);
        return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, plen + 32, "%s.tmp-%ld", path, (long)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = write_fail(err, errlen, tmp, "open");
    } else {
        if (write_all(fd, b.p, b.n)) rc = write_fail(err, errlen, tmp, "write");
        for (size_t sz = 8; !rc && sz >= 1; sz /= 2)
            for (size_t i = 0; !rc && i < w->n; i++)
                if (st_dtype_size(w->t[i].dtype) == sz && write_all(fd, w->t[i].data, w->t[i].nbytes))
                    rc = write_fail(err, errlen, tmp, "write");
        if (!rc && fsync(fd) != 0) rc = write_fail(err, errlen, tmp, "fsync");
        if (close(fd) != 0 && !rc) rc = write_fail(err, errlen, tmp, "close");
        if (!rc && rename(tmp, path) != 0) rc = write_fail(err, errlen, path, "rename");
        if (rc) unlink(tmp);
        else rc = sync_parent(path, err, errlen);
    }
    free(tmp);
    free(b.p);
    return rc;
}
