/*
 * log_reader.c: streaming readers of behavior logs (see log_reader.h and
 * docs/LOG_FORMATS.md).
 *
 * What it is: a line splitter over read() into one large buffer, and three
 * small per-format line parsers that split fields in place and validate them.
 * What it is not: a CSV dialect engine (no quoting, no escapes), nor anything
 * that remembers past lines (no dedup, no dense ids).
 *
 * Invariants:
 *   - A line source's unread bytes are buf[pos..end), end < cap: one spare
 *     byte always remains so a last line without a newline can be
 *     NUL-terminated in place.
 *   - src->nul is the offset of the first NUL byte in buf[pos..end), or
 *     SIZE_MAX: NULs are searched once per read, not once per line.
 *   - The buffer has LR_BUF_PAD initialized bytes after cap, so field
 *     splitting may read a word past a line's end.
 *   - cap > LOG_MAX_LINE + 2, so after compaction an unfinished line that is
 *     not yet known to be too long always leaves room to read more.
 *   - No allocation per line: the steady state of log_reader_next allocates
 *     nothing. Memory is the buffer plus, for Amazon, the item-info table.
 *   - Every bad line is reported (LOG_READ_BAD); nothing is skipped silently.
 */
#include "loaders/log_reader.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LR_BUF_SIZE ((size_t)1 << 20)   /* read buffer; never grows (see invariants) */
#define LR_BUF_PAD 64                   /* zeroed slack after the buffer for word reads */
#define LR_MAX_COLUMNS 1024             /* highest column a CSV mapping may name */
#define LR_QUOTE_MAX 40                 /* bytes of a bad field quoted in a message */
#define LR_TAOBAO_FIELDS 5
#define LR_AMAZON_FIELDS 4
#define LR_ITEMINFO_FIELDS 2

_Static_assert(LR_BUF_SIZE > LOG_MAX_LINE + 2, "buffer must hold a longest line");

/* ------------------------------------------------------------------------- */
/* Line source: one file read in large chunks, cut into lines.               */

typedef struct line_src {
    int fd, owns_fd, eof;
    char *buf;
    size_t cap, pos, end;   /* unread bytes: buf[pos..end) */
    size_t nul;             /* offset of the first NUL byte in buf[pos..end), or SIZE_MAX */
    uint64_t line;          /* number of the last line returned (1-based) */
    uint64_t total_read;    /* bytes read() from fd so far */
    const char *name;       /* file name for messages */
} line_src;

/* src_next's verdicts on a line. */
enum { SRC_EOF = 0, SRC_LINE = 1, SRC_TOO_LONG = 2, SRC_NUL = 3 };

static int src_open(line_src *s, const char *path, const char *name, uint64_t *size,
                    char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->nul = SIZE_MAX;
    s->name = name;
    if (strcmp(path, "-") == 0) {
        s->fd = STDIN_FILENO;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) return err_set(err, errlen, LSIM_E_IO, "%s: %s", name, strerror(errno));
        s->owns_fd = 1;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) return err_set(err, errlen, LSIM_E_IO, "%s: %s", name, strerror(errno));
    if (S_ISDIR(st.st_mode)) return err_set(err, errlen, LSIM_E_IO, "%s: is a directory", name);
    if (size) *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
#ifdef POSIX_FADV_SEQUENTIAL
    if (S_ISREG(st.st_mode)) (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    s->cap = LR_BUF_SIZE;
    s->buf = calloc(1, s->cap + LR_BUF_PAD);
    if (!s->buf) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", name);
    return 0;
}

static void src_close(line_src *s)
{
    if (s->owns_fd && s->fd >= 0) close(s->fd);
    free(s->buf);
    s->buf = NULL;
    s->fd = -1;
}

static uint64_t src_consumed(const line_src *s)
{
    return s->total_read - (uint64_t)(s->end - s->pos);
}

/* Sets s->nul to the first NUL byte in buf[from..end), or SIZE_MAX. */
static void src_find_nul(line_src *s, size_t from)
{
    char *z = from < s->end ? memchr(s->buf + from, '\0', s->end - from) : NULL;
    s->nul = z ? (size_t)(z - s->buf) : SIZE_MAX;
}

/* Moves the unread bytes to the front and reads once more. Returns 0 (data or
 * EOF; s->eof set at EOF) or -errno. NUL bytes are searched for here, once
 * per chunk, so that lines need no test of their own. */
static int src_fill(line_src *s)
{
    size_t left = s->end - s->pos;
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, left);
        if (s->nul != SIZE_MAX) s->nul -= s->pos;
        s->pos = 0;
        s->end = left;
    }
    for (;;) {
        ssize_t r = read(s->fd, s->buf + s->end, s->cap - 1 - s->end);
        if (r > 0) {
            size_t old_end = s->end;
            s->end += (size_t)r;
            s->total_read += (uint64_t)r;
            if (s->nul == SIZE_MAX) src_find_nul(s, old_end);
            return 0;
        }
        if (r == 0) {
            s->eof = 1;
            return 0;
        }
        if (errno != EINTR) return -errno;
    }
}

/* Drops the rest of a too-long line, through its newline or EOF. */
static int src_skip_line(line_src *s)
{
    for (;;) {
        char *nl = memchr(s->buf + s->pos, '\n', s->end - s->pos);
        if (nl) {
            s->pos = (size_t)(nl - s->buf) + 1;
            if (s->nul < s->pos) src_find_nul(s, s->pos);
            return 0;
        }
        s->pos = s->end;
        s->nul = SIZE_MAX;
        if (s->eof) return 0;
        int rc = src_fill(s);
        if (rc < 0) return rc;
    }
}

/* Returns SRC_LINE with *line (NUL-terminated in place, a trailing \r
 * stripped) and *len; SRC_NUL, the same for a line that holds a NUL byte;
 * SRC_TOO_LONG (the line was skipped); SRC_EOF; or -errno on a read error. */
static int src_next(line_src *s, char **line, size_t *len)
{
    size_t scanned = 0; /* bytes of the unfinished line already searched */
    for (;;) {
        char *start = s->buf + s->pos;
        size_t avail = s->end - s->pos;
        char *nl = memchr(start + scanned, '\n', avail - scanned);
        size_t n;
        if (nl) {
            n = (size_t)(nl - start);
        } else if (avail > LOG_MAX_LINE + 1) {
            s->line++;
            int rc = src_skip_line(s);
            return rc < 0 ? rc : SRC_TOO_LONG;
        } else if (s->eof) {
            if (avail == 0) return SRC_EOF;
            n = avail;
        } else {
            scanned = avail;
            int rc = src_fill(s);
            if (rc < 0) return rc;
            continue;
        }
        s->line++;
        s->pos += nl ? n + 1 : n;
        int verdict = SRC_LINE;
        if (s->nul < s->pos) { /* the NUL is in this line (s->nul >= its start) */
            verdict = SRC_NUL;
            src_find_nul(s, s->pos);
        }
        if (n > 0 && start[n - 1] == '\r') n--;
        if (n > LOG_MAX_LINE) return SRC_TOO_LONG;
        start[n] = '\0';
        *line = start;
        *len = n;
        return verdict;
    }
}

/* ------------------------------------------------------------------------- */
/* Fields.                                                                   */

typedef struct field {
    char *p;
    size_t len;
} field;

/* Bit j set where p[j] == delim, for j < m <= 64. May read up to 7 bytes
 * past p + m (line sources pad their buffer for it). On little-endian
 * machines eight bytes are tested at once (an exact zero-byte test on
 * w ^ delim, its 0x80 bits gathered into 8 mask bits by one multiply);
 * elsewhere byte by byte. */
static uint64_t delim_mask(const char *p, size_t m, char delim)
{
    uint64_t mask = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
    const uint64_t pat = 0x0101010101010101ULL * (unsigned char)delim;
    for (size_t k = 0; k < m; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        uint64_t x = w ^ pat;
        uint64_t z = ~(((x & lo7) + lo7) | x) & ~lo7; /* 0x80 in each byte that was delim */
        mask |= (((z >> 7) * 0x0102040810204080ULL) >> 56) << k;
    }
    if (m < 64) mask &= ((uint64_t)1 << m) - 1;
#else
    for (size_t j = 0; j < m; j++) mask |= (uint64_t)(p[j] == delim) << j;
#endif
    return mask;
}

static unsigned lowest_bit(uint64_t x) /* x != 0 */
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctzll(x);
#else
    unsigned i = 0;
    while (!(x & 1)) x >>= 1, i++;
    return i;
#endif
}

static size_t bit_count(uint64_t x)
{
#if defined(__GNUC__)
    return (size_t)__builtin_popcountll(x);
#else
    size_t c = 0;
    for (; x; x &= x - 1) c++;
    return c;
#endif
}

/* Splits line[0..len) at `delim` into at most `want` fields, NUL-terminating
 * each in place (line[len] is already NUL). Returns the total number of
 * fields; those past `want` are counted, not split.
 *
 * Delimiters are found 64 bytes at a time as a bit mask: fields are short
 * and of random length, so a branch per byte that meets a delimiter, or a
 * memchr call per field, costs a misprediction each, which dominated the
 * profile; the bit loop's trip count is the same on every line of a log. */
static size_t split_fields(char *line, size_t len, char delim, field *f, size_t want)
{
    size_t n = 0, total = 0, start = 0;
    for (size_t base = 0; base < len; base += 64) {
        size_t m = len - base < 64 ? len - base : 64;
        uint64_t mask = delim_mask(line + base, m, delim);
        for (; mask && n < want; mask &= mask - 1, n++, total++) {
            size_t stop = base + lowest_bit(mask);
            f[n].p = line + start;
            f[n].len = stop - start;
            line[stop] = '\0';
            start = stop + 1;
        }
        if (mask) total += bit_count(mask);
    }
    if (n < want) {
        f[n].p = line + start;
        f[n].len = len - start;
    }
    return total + 1;
}

/* Parses an optional '-' and one or more decimal digits into a signed 64-bit
 * value. Returns 0, 1 (not a number) or 2 (digits, but outside int64_t). */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len) return 1;
    uint64_t v = 0;
    int overflow = 0;
    if (len - i <= 18) { /* 18 digits cannot overflow: the common, fast case */
        for (; i < len; i++) {
            unsigned d = (unsigned)(unsigned char)s[i] - '0';
            if (d > 9) return 1;
            v = v * 10 + d;
        }
    } else {
        const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (; i < len; i++) {
            unsigned d = (unsigned)(unsigned char)s[i] - '0';
            if (d > 9) return 1;
            if (v > (limit - d) / 10) overflow = 1;
            else v = v * 10 + d;
        }
    }
    if (overflow) return 2;
    if (!neg) *out = (int64_t)v;
    else *out = v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
    return 0;
}

/* The bytes of a field as a message may quote them: at most LR_QUOTE_MAX. */
static int quote_len(size_t len)
{
    return (int)(len > LR_QUOTE_MAX ? LR_QUOTE_MAX : len);
}

static const char *quote_tail(size_t len)
{
    return len > LR_QUOTE_MAX ? "..." : "";
}

/* ------------------------------------------------------------------------- */
/* Item-info table (Amazon): open addressing, linear probing; records live in
 * one arena as [item_len][cat_len] item \0 cat \0.                           */

typedef struct item_slot {
    uint64_t hash;
    size_t off; /* offset + 1 into the arena; 0 = empty */
} item_slot;

typedef struct item_table {
    item_slot *slots;
    size_t mask, used;
    char *arena;
    size_t arena_len, arena_cap;
} item_table;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static void item_table_free(item_table *t)
{
    free(t->slots);
    free(t->arena);
    memset(t, 0, sizeof *t);
}

static int item_table_grow(item_table *t)
{
    size_t ncap = t->slots ? (t->mask + 1) * 2 : 1024;
    item_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return LSIM_E_NOMEM;
    if (t->slots) {
        for (size_t i = 0; i <= t->mask; i++) {
            if (!t->slots[i].off) continue;
            size_t j = (size_t)t->slots[i].hash & (ncap - 1);
            while (ns[j].off) j = (j + 1) & (ncap - 1);
            ns[j] = t->slots[i];
        }
    }
    free(t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

static const unsigned char *item_rec(const item_table *t, size_t off)
{
    return (const unsigned char *)t->arena + off - 1;
}

/* The slot of `item`, or the empty slot where it would go. */
static item_slot *item_table_find(const item_table *t, const char *item, size_t len, uint64_t h)
{
    size_t j = (size_t)h & t->mask;
    for (;;) {
        item_slot *s = &t->slots[j];
        if (!s->off) return s;
        if (s->hash == h) {
            const unsigned char *rec = item_rec(t, s->off);
            if (rec[0] == len && memcmp(rec + 2, item, len) == 0) return s;
        }
        j = (j + 1) & t->mask;
    }
}

/* Adds or replaces (the last line wins) item -> cat. Both are <= 255 bytes. */
static int item_table_put(item_table *t, const field *item, const field *cat)
{
    if ((t->used + 1) * 2 > (t->slots ? t->mask + 1 : 0)) {
        int rc = item_table_grow(t);
        if (rc) return rc;
    }
    size_t need = 2 + item->len + 1 + cat->len + 1;
    if (t->arena_len + need > t->arena_cap) {
        size_t ncap = t->arena_cap ? t->arena_cap * 2 : 65536;
        while (ncap < t->arena_len + need) ncap *= 2;
        char *na = realloc(t->arena, ncap);
        if (!na) return LSIM_E_NOMEM;
        t->arena = na;
        t->arena_cap = ncap;
    }
    unsigned char *rec = (unsigned char *)t->arena + t->arena_len;
    rec[0] = (unsigned char)item->len;
    rec[1] = (unsigned char)cat->len;
    memcpy(rec + 2, item->p, item->len + 1);
    memcpy(rec + 3 + item->len, cat->p, cat->len + 1);
    uint64_t h = hash_bytes(item->p, item->len);
    item_slot *s = item_table_find(t, item->p, item->len, h);
    if (!s->off) t->used++;
    s->hash = h;
    s->off = t->arena_len + 1;
    t->arena_len += need;
    return 0;
}

/* The category of `item`, or NULL. */
static const char *item_table_get(const item_table *t, const char *item, size_t len,
                                  uint32_t *cat_len)
{
    if (!t->slots) return NULL;
    item_slot *s = item_table_find(t, item, len, hash_bytes(item, len));
    if (!s->off) return NULL;
    const unsigned char *rec = item_rec(t, s->off);
    *cat_len = rec[1];
    return (const char *)rec + 3 + rec[0];
}

/* ------------------------------------------------------------------------- */
/* The reader.                                                               */

struct log_reader {
    log_spec spec;
    line_src src;            /* the log */
    const line_src *cur;     /* the source whose line bad() names: src, or item-info at open */
    char *name;              /* the log's name in messages ("<stdin>" for "-") */
    uint64_t bytes_total;
    int status;              /* 0, or the sticky negative error after a read error */
    size_t want;             /* fields to split per line */
    item_table items;        /* Amazon */
    char *pending;           /* Amazon: item-info bad-line messages, NUL-separated */
    size_t pending_len, pending_pos, pending_cap;
    field f[LR_MAX_COLUMNS];
    char msg[LSIM_ERRLEN];
};

void log_spec_default(log_spec *spec, log_format format)
{
    memset(spec, 0, sizeof *spec);
    spec->format = format;
    spec->delimiter = ','; /* used by LOG_FORMAT_CSV only */
    spec->header = 0;
    spec->col_user = 1;
    spec->col_item = 2;
    if (format == LOG_FORMAT_AMAZON) {
        spec->col_ts = 4;
    } else {
        spec->col_cat = 3;
        spec->col_type = 4;
        spec->col_ts = 5;
    }
    spec->item_info_path = NULL;
    spec->ts_min = LOG_TS_MIN_DEFAULT;
    spec->ts_max = LOG_TS_MAX_DEFAULT;
}

int log_format_parse(const char *name, log_format *out)
{
    if (!name || !out) return LSIM_E_INVAL;
    if (strcmp(name, "taobao") == 0) *out = LOG_FORMAT_TAOBAO;
    else if (strcmp(name, "amazon") == 0) *out = LOG_FORMAT_AMAZON;
    else if (strcmp(name, "csv") == 0) *out = LOG_FORMAT_CSV;
    else return LSIM_E_INVAL;
    return 0;
}

/* ---- column mapping ---- */

static const char *skip_blank(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return p;
}

static const char *trim_blank_end(const char *p, const char *end)
{
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    return end;
}

#define LR_KEYS 7 /* user, item, category, type, ts, request, label */

/* Index into the columns (user, item, category, type, ts, request, label), or -1. */
static int column_key(const char *k, size_t n)
{
    static const struct { const char *name; int idx; } keys[] = {
        {"user", 0}, {"item", 1}, {"category", 2}, {"cat", 2},
        {"type", 3}, {"ts", 4}, {"timestamp", 4}, {"request", 5}, {"label", 6},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i].name) == n && memcmp(keys[i].name, k, n) == 0) return keys[i].idx;
    return -1;
}

static const char *const column_names[LR_KEYS] = {"user", "item", "category", "type", "ts", "request", "label"};

/* Parses one "key=N" item of a mapping into cols[]. */
static int parse_column_item(int cols[LR_KEYS], const char *p, const char *end, char *err,
                             size_t errlen)
{
    p = skip_blank(p, end);
    end = trim_blank_end(p, end);
    int n = (int)(end - p);
    if (p == end) return err_set(err, errlen, LSIM_E_INVAL, "empty item in column mapping");
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq) return err_set(err, errlen, LSIM_E_INVAL, "'%.*s': expected key=column", n, p);
    const char *kend = trim_blank_end(p, eq);
    int key = column_key(p, (size_t)(kend - p));
    if (key < 0)
        return err_set(err, errlen, LSIM_E_INVAL,
                       "unknown column key '%.*s' (keys: user, item, category, type, ts, request, label)",
                       (int)(kend - p), p);
    if (cols[key])
        return err_set(err, errlen, LSIM_E_INVAL, "column key '%s' given twice", column_names[key]);
    const char *v = skip_blank(eq + 1, end);
    long col = 0;
    if (v == end) col = -1;
    for (const char *q = v; q < end && col >= 0; q++) {
        if (*q < '0' || *q > '9' || col > LR_MAX_COLUMNS) col = -1;
        else col = col * 10 + (*q - '0');
    }
    if (col < 1 || col > LR_MAX_COLUMNS)
        return err_set(err, errlen, LSIM_E_INVAL, "'%.*s': column must be a number in 1..%d", n, p,
                       LR_MAX_COLUMNS);
    for (int i = 0; i < LR_KEYS; i++)
        if (cols[i] == col)
            return err_set(err, errlen, LSIM_E_INVAL, "column %ld mapped to both %s and %s", col,
                           column_names[i], column_names[key]);
    cols[key] = (int)col;
    return 0;
}

int log_spec_parse_columns(log_spec *spec, const char *mapping, char *err, size_t errlen)
{
    if (!spec || !mapping) return err_set(err, errlen, LSIM_E_INVAL, "no column mapping");
    int cols[LR_KEYS] = {0};
    const char *p = mapping, *end = mapping + strlen(mapping);
    if (skip_blank(p, end) == end) return err_set(err, errlen, LSIM_E_INVAL, "empty column mapping");
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *iend = comma ? comma : end;
        int rc = parse_column_item(cols, p, iend, err, errlen);
        if (rc) return rc;
        p = iend + 1;
    }
    static const int required[3] = {0, 1, 4};
    for (int i = 0; i < 3; i++)
        if (!cols[required[i]])
            return err_set(err, errlen, LSIM_E_INVAL, "column mapping lacks '%s' (user, item and ts are required)",
                           column_names[required[i]]);
    spec->col_user = cols[0];
    spec->col_item = cols[1];
    spec->col_cat = cols[2];
    spec->col_type = cols[3];
    spec->col_ts = cols[4];
    spec->col_request = cols[5];
    spec->col_label = cols[6];
    return 0;
}

/* ---- messages ---- */

/* Writes "FILE:LINE: reason" for the line just read from r->cur. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int bad(log_reader *r, const char *fmt, ...);

static int bad(log_reader *r, const char *fmt, ...)
{
    int k = snprintf(r->msg, sizeof r->msg, "%s:%llu: ", r->cur->name,
                     (unsigned long long)r->cur->line);
    if (k >= 0 && (size_t)k < sizeof r->msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg + k, sizeof r->msg - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return LOG_READ_BAD;
}

/* ---- validation shared by the formats ---- */

static int check_id(log_reader *r, const field *f, const char *what)
{
    if (f->len == 0) return bad(r, "empty %s id", what);
    if (f->len > LSIM_MAX_ID_LEN) return bad(r, "%s id longer than %d bytes", what, LSIM_MAX_ID_LEN);
    return 0;
}

static int check_ts(log_reader *r, const field *f, int64_t *ts)
{
    int rc = parse_i64(f->p, f->len, ts);
    if (rc == 1)
        return bad(r, "non-numeric timestamp '%.*s%s'", quote_len(f->len), f->p, quote_tail(f->len));
    if (rc == 2 || *ts < r->spec.ts_min || *ts > r->spec.ts_max)
        return bad(r, "timestamp %.*s%s out of range [%lld, %lld]", quote_len(f->len), f->p,
                   quote_tail(f->len), (long long)r->spec.ts_min, (long long)r->spec.ts_max);
    return 0;
}

static int check_field_count(log_reader *r, size_t n, size_t need, int at_least)
{
    if (at_least ? n >= need : n == need) return 0;
    return bad(r, "wrong field count: %zu field%s, need %s%zu", n, n == 1 ? "" : "s",
               at_least ? "at least " : "", need);
}

static int taobao_type_ok(const field *f)
{
    switch (f->len) {
    case 2: return memcmp(f->p, "pv", 2) == 0;
    case 3: return memcmp(f->p, "buy", 3) == 0 || memcmp(f->p, "fav", 3) == 0;
    case 4: return memcmp(f->p, "cart", 4) == 0;
    default: return 0;
    }
}

static void set_str(const char **p, uint32_t *len, const field *f)
{
    *p = f->p;
    *len = (uint32_t)f->len;
}

/* ---- per-format line parsers: return LOG_READ_EVENT or LOG_READ_BAD ---- */

static int parse_taobao(log_reader *r, char *line, size_t len, log_event *ev)
{
    field *f = r->f;
    size_t n = split_fields(line, len, ',', f, LR_TAOBAO_FIELDS);
    if (check_field_count(r, n, LR_TAOBAO_FIELDS, 0)) return LOG_READ_BAD;
    if (check_id(r, &f[0], "user") || check_id(r, &f[1], "item") || check_id(r, &f[2], "category"))
        return LOG_READ_BAD;
    if (!taobao_type_ok(&f[3]))
        return bad(r, "unknown behavior type '%.*s%s' (pv, buy, cart, fav)", quote_len(f[3].len),
                   f[3].p, quote_tail(f[3].len));
    int64_t ts;
    if (check_ts(r, &f[4], &ts)) return LOG_READ_BAD;
    ev->ts = ts;
    ev->line = r->src.line;
    set_str(&ev->user, &ev->user_len, &f[0]);
    set_str(&ev->item, &ev->item_len, &f[1]);
    set_str(&ev->cat, &ev->cat_len, &f[2]);
    set_str(&ev->type, &ev->type_len, &f[3]);
    return LOG_READ_EVENT;
}

static int parse_amazon(log_reader *r, char *line, size_t len, log_event *ev)
{
    field *f = r->f;
    size_t n = split_fields(line, len, '\t', f, LR_AMAZON_FIELDS);
    if (check_field_count(r, n, LR_AMAZON_FIELDS, 0)) return LOG_READ_BAD;
    if (check_id(r, &f[0], "user") || check_id(r, &f[1], "item")) return LOG_READ_BAD;
    int64_t ts;
    if (check_ts(r, &f[3], &ts)) return LOG_READ_BAD;
    ev->ts = ts;
    ev->line = r->src.line;
    set_str(&ev->user, &ev->user_len, &f[0]);
    set_str(&ev->item, &ev->item_len, &f[1]);
    ev->cat = item_table_get(&r->items, f[1].p, f[1].len, &ev->cat_len);
    if (!ev->cat) {
        ev->cat = "unknown";
        ev->cat_len = 7;
    }
    ev->type = "review";
    ev->type_len = 6;
    return LOG_READ_EVENT;
}

static int parse_csv(log_reader *r, char *line, size_t len, log_event *ev)
{
    const log_spec *s = &r->spec;
    field *f = r->f;
    size_t n = split_fields(line, len, s->delimiter, f, r->want);
    if (check_field_count(r, n, r->want, 1)) return LOG_READ_BAD;
    if (check_id(r, &f[s->col_user - 1], "user") || check_id(r, &f[s->col_item - 1], "item"))
        return LOG_READ_BAD;
    if (s->col_cat && check_id(r, &f[s->col_cat - 1], "category")) return LOG_READ_BAD;
    if (s->col_type && check_id(r, &f[s->col_type - 1], "type")) return LOG_READ_BAD;
    if (s->col_request && check_id(r, &f[s->col_request - 1], "request")) return LOG_READ_BAD;
    if (s->col_label) {
        const field *l = &f[s->col_label - 1];
        if (l->len != 1 || (l->p[0] != '0' && l->p[0] != '1'))
            return bad(r, "label: want 0 or 1, got '%.*s'", l->len > 20 ? 20 : (int)l->len, l->p);
        ev->label = l->p[0] - '0';
    }
    int64_t ts;
    if (check_ts(r, &f[s->col_ts - 1], &ts)) return LOG_READ_BAD;
    ev->ts = ts;
    ev->line = r->src.line;
    set_str(&ev->user, &ev->user_len, &f[s->col_user - 1]);
    set_str(&ev->item, &ev->item_len, &f[s->col_item - 1]);
    if (s->col_cat) {
        set_str(&ev->cat, &ev->cat_len, &f[s->col_cat - 1]);
    } else {
        ev->cat = "unknown";
        ev->cat_len = 7;
    }
    if (s->col_type) {
        set_str(&ev->type, &ev->type_len, &f[s->col_type - 1]);
    } else {
        ev->type = "event";
        ev->type_len = 5;
    }
    if (s->col_request) set_str(&ev->request, &ev->request_len, &f[s->col_request - 1]);
    return LOG_READ_EVENT;
}

/* Checks common to every line: the source's verdict (too long, NUL byte)
 * and emptiness.
 * Returns 0 (go on and parse) or LOG_READ_BAD. */
static int check_line(log_reader *r, int got, size_t len)
{
    if (got == SRC_TOO_LONG) return bad(r, "line longer than %d bytes", LOG_MAX_LINE);
    if (len == 0) return bad(r, "empty line");
    if (got == SRC_NUL) return bad(r, "NUL byte in line");
    return 0;
}

/* ---- Amazon item-info, read at open ---- */

static int pending_add(log_reader *r)
{
    size_t n = strlen(r->msg) + 1;
    if (r->pending_len + n > r->pending_cap) {
        size_t ncap = r->pending_cap ? r->pending_cap * 2 : 4096;
        while (ncap < r->pending_len + n) ncap *= 2;
        char *np = realloc(r->pending, ncap);
        if (!np) return LSIM_E_NOMEM;
        r->pending = np;
        r->pending_cap = ncap;
    }
    memcpy(r->pending + r->pending_len, r->msg, n);
    r->pending_len += n;
    return 0;
}

/* Parses one item-info line into the table; a bad line goes to `pending`. */
static int iteminfo_line(log_reader *r, int got, char *line, size_t len)
{
    if (check_line(r, got, len)) return pending_add(r);
    field *f = r->f;
    size_t n = split_fields(line, len, '\t', f, LR_ITEMINFO_FIELDS);
    if (check_field_count(r, n, LR_ITEMINFO_FIELDS, 0) || check_id(r, &f[0], "item") ||
        check_id(r, &f[1], "category"))
        return pending_add(r);
    return item_table_put(&r->items, &f[0], &f[1]);
}

/* Reads the whole item-info file into r->items; its bad lines' messages
 * (which name it) wait in r->pending. */
static int iteminfo_load(log_reader *r, char *err, size_t errlen)
{
    const char *path = r->spec.item_info_path;
    line_src src;
    int rc = src_open(&src, path, path, NULL, err, errlen);
    r->cur = &src;
    while (rc == 0) {
        char *line = NULL;
        size_t len = 0;
        int got = src_next(&src, &line, &len);
        if (got == SRC_EOF) break;
        if (got < 0) {
            rc = err_set(err, errlen, LSIM_E_IO, "%s: read error: %s", path, strerror(-got));
            break;
        }
        rc = iteminfo_line(r, got, line, len);
        if (rc) err_set(err, errlen, rc, "%s: %s", path, lsim_strerror(rc));
    }
    src_close(&src);
    r->cur = &r->src;
    r->msg[0] = '\0';
    return rc;
}

/* ---- open / next / close ---- */

static int check_spec(const log_spec *s, const char *name, char *err, size_t errlen)
{
    if (s->ts_min > s->ts_max)
        return err_set(err, errlen, LSIM_E_INVAL, "%s: timestamp range [%lld, %lld] is empty", name,
                       (long long)s->ts_min, (long long)s->ts_max);
    if (s->format == LOG_FORMAT_AMAZON && !s->item_info_path)
        return err_set(err, errlen, LSIM_E_INVAL, "%s: the amazon format needs an item-info file", name);
    if (s->format != LOG_FORMAT_CSV) return 0;
    if (s->delimiter == '\0' || s->delimiter == '\n' || s->delimiter == '\r')
        return err_set(err, errlen, LSIM_E_INVAL, "%s: bad delimiter", name);
    const int cols[LR_KEYS] = {s->col_user, s->col_item, s->col_cat, s->col_type, s->col_ts, s->col_request,
                               s->col_label};
    for (int i = 0; i < LR_KEYS; i++) {
        int required = i == 0 || i == 1 || i == 4;
        if (cols[i] < (required ? 1 : 0) || cols[i] > LR_MAX_COLUMNS)
            return err_set(err, errlen, LSIM_E_INVAL, "%s: bad column for %s: %d", name,
                           column_names[i], cols[i]);
    }
    return 0;
}

static size_t max_column(const log_spec *s)
{
    int m = s->col_user;
    const int cols[LR_KEYS - 1] = {s->col_item, s->col_cat, s->col_type, s->col_ts, s->col_request, s->col_label};
    for (int i = 0; i < LR_KEYS - 1; i++)
        if (cols[i] > m) m = cols[i];
    return (size_t)m;
}

int log_reader_open(log_reader **out, const char *path, const log_spec *spec, char *err,
                    size_t errlen)
{
    if (out) *out = NULL;
    if (!out || !path || !spec) return err_set(err, errlen, LSIM_E_INVAL, "log_reader_open: missing argument");
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    int rc = check_spec(spec, name, err, errlen);
    if (rc) return rc;
    log_reader *r = calloc(1, sizeof *r);
    if (!r) return err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", name);
    r->spec = *spec;
    r->src.fd = -1;
    r->cur = &r->src;
    r->want = spec->format == LOG_FORMAT_CSV ? max_column(spec) : 0;
    r->name = strdup(name);
    if (!r->name) rc = err_set(err, errlen, LSIM_E_NOMEM, "%s: out of memory", name);
    if (!rc) rc = src_open(&r->src, path, r->name, &r->bytes_total, err, errlen);
    if (!rc && spec->format == LOG_FORMAT_AMAZON) rc = iteminfo_load(r, err, errlen);
    r->spec.item_info_path = NULL; /* the caller's string: not kept past open */
    if (rc) {
        log_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void log_reader_close(log_reader *r)
{
    if (!r) return;
    src_close(&r->src);
    item_table_free(&r->items);
    free(r->pending);
    free(r->name);
    free(r);
}

static int next_pending(log_reader *r)
{
    const char *m = r->pending + r->pending_pos;
    size_t n = strlen(m);
    memcpy(r->msg, m, n + 1);
    r->pending_pos += n + 1;
    return LOG_READ_BAD;
}

int log_reader_next(log_reader *r, log_event *ev)
{
    if (!r || !ev) return LSIM_E_INVAL;
    if (r->status) return r->status;
    if (r->pending_pos < r->pending_len) return next_pending(r);
    for (;;) {
        char *line = NULL;
        size_t len = 0;
        int got = src_next(&r->src, &line, &len);
        if (got == SRC_EOF) return LOG_READ_EOF;
        if (got < 0) {
            snprintf(r->msg, sizeof r->msg, "%s:%llu: read error: %s", r->name,
                     (unsigned long long)r->src.line + 1, strerror(-got));
            return r->status = LSIM_E_IO;
        }
        if (r->spec.format == LOG_FORMAT_CSV && r->spec.header && r->src.line == 1) continue;
        if (check_line(r, got, len)) return LOG_READ_BAD;
        ev->request = NULL;
        ev->request_len = 0;
        ev->label = -1;
        switch (r->spec.format) {
        case LOG_FORMAT_TAOBAO: return parse_taobao(r, line, len, ev);
        case LOG_FORMAT_AMAZON: return parse_amazon(r, line, len, ev);
        default: return parse_csv(r, line, len, ev);
        }
    }
}

const char *log_reader_errmsg(const log_reader *r)
{
    return r ? r->msg : "";
}

uint64_t log_reader_bytes_read(const log_reader *r)
{
    return r ? src_consumed(&r->src) : 0;
}

uint64_t log_reader_bytes_total(const log_reader *r)
{
    return r ? r->bytes_total : 0;
}
