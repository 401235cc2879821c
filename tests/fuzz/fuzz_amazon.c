/*
 * fuzz_amazon.c: libFuzzer target for the Amazon log reader
 * (loaders/log_reader.h, LOG_FORMAT_AMAZON), which reads two files: the
 * reviews (user \t item \t rating \t ts) and the item-info table (item \t
 * category) they are joined with. The first byte of the input picks which
 * one the rest of the input is (even: the reviews, odd: the item-info); the
 * other is a fixed slice of the shared sample data (/work/shared/data/amazon,
 * with a duplicate item whose last line wins and an item of another category).
 *
 * Checked against a plain reference reader written here from the format's
 * rules (log_reader.h): the reader's sequence of results must be exactly the
 * reference's: first one LOG_READ_BAD per bad item-info line (naming that
 * file and line), then per review line a LOG_READ_BAD naming the line, or
 * the event with its user, item, time, line and the category the item-info
 * table gives (its last good line for the item; "unknown" without one).
 * At the end, every byte of the reviews has been read.
 */
#include "fuzz_util.h"
#include "loaders/log_reader.h"

#include <errno.h>

/* The fixed files: slices of the sample data (CRLF line ends, as there). */
static const char FIXED_ITEM_INFO[] =
    "0000401048\tBooks\r\n"
    "0000913154\tBooks\r\n"
    "0000202010\tBooks\r\n"
    "0000000868\tBooks\r\n"
    "0000038504\tBooks\r\n"
    "0000477141\tBooks\r\n"
    "0000619574\tBooks\r\n"
    "0000230022\tBooks\r\n"
    "0000174076\tBooks\r\n"
    "0000000116\tBooks\r\n"
    "0000013714\tBooks\r\n"
    "000077135X\tBooks\r\n"
    "000047715X\tBooks\r\n"
    "0000401048\tNovels\r\n"
    "0000000000X\tMusic\r\n";
static const char FIXED_REVIEWS[] =
    "A1TADCM7YWPQ8M\t0000000868\t4.0\t1031702400\r\n"
    "A1KP12IVP6LAGL\t0000038504\t5.0\t1232755200\r\n"
    "AG7R3MMF8QLDT\t0000038504\t4.0\t1215820800\r\n"
    "A2SSZYR6P60UWF\t0000202010\t5.0\t1367625600\r\n"
    "A913X3CZ55YAA\t0000401048\t5.0\t1132963200\r\n"
    "A3S1YQA5N7DWGD\t0000913154\t5.0\t1389398400\r\n"
    "A916XU83L54V6\t0000913154\t5.0\t1357689600\r\n"
    "A3IKTM9D8RVWKU\t0000913154\t5.0\t1026259200\r\n"
    "AP25VUIFDC582\t0000913154\t5.0\t1219449600\r\n"
    "A22B03O2LPMJVU\t0000913154\t5.0\t876182400\r\n"
    "A2SLVVXPRB60JC\t0000913154\t5.0\t974592000\r\n"
    "A18F3K8ZJR2VD0\t0000913154\t5.0\t1266969600\r\n"
    "A28X5I7TL8BAOH\t0000913154\t5.0\t1319328000\r\n"
    "A2T2UFH5DAEY7Y\t0001019880\t5.0\t1156464000\r\n"
    "A37QNKUCOCBEAC\t0001019880\t5.0\t1326412800\r\n"
    "ANIMV3SPDD8SH\t0001042335\t5.0\t1130457600\r\n"
    "A18J1IH6920OXC\t0001047566\t4.0\t1404777600\r\n"
    "A1YF0SKMGV2BIL\t0001048236\t5.0\t1163116800\r\n"
    "A2M4YJ7ANBGYKD\t0001048775\t2.0\t1264550400\r\n"
    "A2OWKKWV917X9X\t0001048791\t5.0\t1402531200\r\n"
    "A2QTFB4KIJUXCQ\t0001048813\t5.0\t1370217600\r\n"
    "A271FVJ9NXP2NL\t0001053396\t4.0\t970272000\r\n"
    "A1N2D7LLBAY25B\t0001053655\t5.0\t1130716800\r\n"
    "A19BR472QNG2AU\t0001053655\t1.0\t1288656000\r\n"
    "A259F4J3QOBIUH\t0001053744\t5.0\t970272000\r\n"
    "A3JD7EO66IBTO\t0001055178\t3.0\t988070400\r\n"
    "A177RENQJIMMR9\t0001055178\t4.0\t950400000\r\n"
    "AI4MUD97FH6G2\t0001055178\t2.0\t1220400000\r\n"
    "ATWVC3WQOZSFS\t0001055178\t3.0\t1016064000\r\n"
    "ATHGHOUYJXDME\t0001055178\t3.0\t914803200\r\n"
    "A1CP960DFEHZ5H\t000100039X\t5.0\t1400198400\r\n"
    "A10000012B7CGYKOMPQ4L\t000100039X\t5.0\t1355616000\r\n"
    "A2S166WSCFIFP5\t000100039X\t5.0\t1071100800\r\n";

static char g_fixed_items[64], g_fixed_reviews[64], g_input[64];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_amazon: %s\n", what);
    abort();
}

static void write_file(char *path, const char *tag, const void *data, size_t size)
{
    snprintf(path, 64, "/tmp/lsim_fuzz_amazon_%s_XXXXXX", tag);
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp");
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, (const char *)data + off, size - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        off += (size_t)w;
    }
    close(fd);
}

static void cleanup(void)
{
    unlink(g_fixed_items);
    unlink(g_fixed_reviews);
    if (g_input[0]) unlink(g_input);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    write_file(g_fixed_items, "items", FIXED_ITEM_INFO, sizeof FIXED_ITEM_INFO - 1);
    write_file(g_fixed_reviews, "reviews", FIXED_REVIEWS, sizeof FIXED_REVIEWS - 1);
    atexit(cleanup);
    return 0;
}

/* ---- the reference reader ---- */

typedef struct span {
    const char *p;
    size_t len;
} span;

/* The next line of text[*at..n): its bytes without the newline and a final \r; 0 at the end.
 * *bad: a line the rules refuse whatever its fields (longer than LOG_MAX_LINE, empty, a NUL byte). */
static int next_line(const char *text, size_t n, size_t *at, span *line, int *bad)
{
    if (*at >= n) return 0;
    const char *p = text + *at, *nl = memchr(p, '\n', n - *at);
    size_t len = nl ? (size_t)(nl - p) : n - *at;
    *at += nl ? len + 1 : len;
    int nul = memchr(p, 0, len) != NULL;
    if (len && p[len - 1] == '\r') len--;
    *line = (span){p, len};
    *bad = len > LOG_MAX_LINE || len == 0 || nul;
    return 1;
}

/* Splits at tabs into exactly `want` fields; 0 when the count differs. */
static int split(span line, span *f, size_t want)
{
    size_t k = 0;
    const char *p = line.p, *end = line.p + line.len;
    for (;;) {
        const char *t = memchr(p, '\t', (size_t)(end - p));
        if (k == want) return 0;
        f[k++] = (span){p, t ? (size_t)(t - p) : (size_t)(end - p)};
        if (!t) break;
        p = t + 1;
    }
    return k == want;
}

static int id_ok(span s)
{
    return s.len > 0 && s.len <= LSIM_MAX_ID_LEN;
}

/* A timestamp by the rules: an optional '-', then digits, within [LOG_TS_MIN_DEFAULT, LOG_TS_MAX_DEFAULT]. */
static int ts_ok(span s, int64_t *ts)
{
    size_t i = s.len && s.p[0] == '-';
    int neg = (int)i;
    if (i == s.len) return 0;
    for (size_t j = i; j < s.len; j++)
        if (s.p[j] < '0' || s.p[j] > '9') return 0;
    while (i < s.len - 1 && s.p[i] == '0') i++;
    if (s.len - i > 10) return 0;
    uint64_t v = 0;
    for (; i < s.len; i++) v = v * 10 + (uint64_t)(s.p[i] - '0');
    if (neg && v) return 0;
    if ((int64_t)v < LOG_TS_MIN_DEFAULT || (int64_t)v > LOG_TS_MAX_DEFAULT) return 0;
    *ts = (int64_t)v;
    return 1;
}

typedef struct table {
    span item[4096], cat[4096];
    size_t n;
} table;

/* The item-info table's good lines; bad_lines[] gets the others' numbers. */
static void ref_table(const char *text, size_t n, table *t, uint64_t *bad_lines, size_t *n_bad)
{
    size_t at = 0;
    uint64_t no = 0;
    span line, f[2];
    int bad;
    t->n = 0;
    *n_bad = 0;
    while (next_line(text, n, &at, &line, &bad)) {
        no++;
        if (bad || !split(line, f, 2) || !id_ok(f[0]) || !id_ok(f[1])) {
            bad_lines[(*n_bad)++] = no;
            continue;
        }
        if (t->n == 4096) die("the reference table is full");
        t->item[t->n] = f[0], t->cat[t->n] = f[1], t->n++;
    }
}

static span ref_category(const table *t, span item)
{
    for (size_t i = t->n; i-- > 0;)
        if (t->item[i].len == item.len && !memcmp(t->item[i].p, item.p, item.len)) return t->cat[i];
    return (span){"unknown", 7};
}

/* ---- the comparison ---- */

static void expect_bad(log_reader *r, const char *path, uint64_t line)
{
    log_event ev;
    int rc = log_reader_next(r, &ev);
    char want[96];
    snprintf(want, sizeof want, "%s:%llu: ", path, (unsigned long long)line);
    if (rc != LOG_READ_BAD || strncmp(log_reader_errmsg(r), want, strlen(want))) {
        fprintf(stderr, "want a bad line %s, got %d (%s)\n", want, rc, rc == LOG_READ_BAD ? log_reader_errmsg(r) : "");
        abort();
    }
}

static void expect_str(const char *what, const char *got, uint32_t got_len, span want)
{
    if (!got || got_len != want.len || strlen(got) != got_len || memcmp(got, want.p, want.len)) {
        fprintf(stderr, "%s: got '%s' (%u bytes), want '%.*s' (%zu bytes)\n", what, got ? got : "(null)", got_len,
                (int)want.len, want.p, want.len);
        abort();
    }
}

static void compare(const char *reviews_path, const char *reviews, size_t reviews_len, const char *items_path,
                    const char *items, size_t items_len)
{
    static table t;
    static uint64_t bad_items[1 << 16];
    size_t n_bad;
    ref_table(items, items_len, &t, bad_items, &n_bad);
    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_AMAZON);
    spec.item_info_path = items_path;
    log_reader *r = NULL;
    char err[512];
    int rc = log_reader_open(&r, reviews_path, &spec, err, sizeof err);
    fuzz_check_rc(rc, "log_reader_open");
    if (rc) {
        fprintf(stderr, "log_reader_open: %s\n", err);
        abort(); /* two readable files: the open succeeds whatever they hold */
    }
    for (size_t i = 0; i < n_bad; i++) expect_bad(r, items_path, bad_items[i]);
    size_t at = 0;
    uint64_t no = 0;
    span line, f[4];
    int bad;
    log_event ev;
    while (next_line(reviews, reviews_len, &at, &line, &bad)) {
        no++;
        int64_t ts = 0;
        if (bad || !split(line, f, 4) || !id_ok(f[0]) || !id_ok(f[1]) || !ts_ok(f[3], &ts)) {
            expect_bad(r, reviews_path, no);
            continue;
        }
        rc = log_reader_next(r, &ev);
        if (rc != LOG_READ_EVENT) {
            fprintf(stderr, "line %llu: want an event, got %d (%s)\n", (unsigned long long)no, rc,
                    log_reader_errmsg(r));
            abort();
        }
        expect_str("user", ev.user, ev.user_len, f[0]);
        expect_str("item", ev.item, ev.item_len, f[1]);
        expect_str("category", ev.cat, ev.cat_len, ref_category(&t, f[1]));
        expect_str("type", ev.type, ev.type_len, (span){"review", 6});
        if (ev.ts != ts || ev.line != no || ev.request || ev.label != -1) die("an event's time, line or extras");
    }
    if ((rc = log_reader_next(r, &ev)) != LOG_READ_EOF) {
        fprintf(stderr, "want the end, got %d (%s)\n", rc, log_reader_errmsg(r));
        abort();
    }
    if (log_reader_bytes_read(r) != reviews_len || log_reader_bytes_total(r) != reviews_len)
        die("not every byte of the reviews was read");
    log_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536) return 0; /* the reference's tables are sized for this */
    int items = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    write_file(g_input, items ? "fuzzed_items" : "fuzzed_reviews", text, n);
    if (items) compare(g_fixed_reviews, FIXED_REVIEWS, sizeof FIXED_REVIEWS - 1, g_input, text, n);
    else compare(g_input, text, n, g_fixed_items, FIXED_ITEM_INFO, sizeof FIXED_ITEM_INFO - 1);
    unlink(g_input);
    g_input[0] = 0;
    return 0;
}
