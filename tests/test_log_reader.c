/*
 * test_log_reader.c: Criterion tests of loaders/log_reader (the three log
 * formats, every bad-line reason, CRLF, long lines, buffer boundaries, the
 * column-mapping syntax, and the shared real-data samples).
 *
 * Not a benchmark. Every bad-line case checks the exact reason text and that
 * the good line after it is still read, so that a bad line costs only itself.
 * The real samples are checked against independent parses done here with
 * stdio (fgets / strtok), not with the reader.
 */
#include "loaders/log_reader.h"
#include "lsim.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fixture: one scratch directory per test ---- */

static char *g_dir;

static void setup(void)
{
    g_dir = tu_tmpdir("log_reader");
    cr_assert(g_dir, "cannot create a scratch directory");
}

static void teardown(void)
{
    tu_rmrf(g_dir);
    free(g_dir);
    g_dir = NULL;
}

TestSuite(log_reader, .init = setup, .fini = teardown);

/* Writes `len` bytes to g_dir/name; the path goes to path[512]. */
static void put_file(char *path, const char *name, const char *text, size_t len)
{
    snprintf(path, 512, "%s/%s", g_dir, name);
    cr_assert_eq(tu_write_file(path, text, len), 0, "cannot write %s", path);
}

static void put_text(char *path, const char *name, const char *text)
{
    put_file(path, name, text, strlen(text));
}

/* ---- reading everything into outcomes ---- */

typedef struct outcome {
    int rc;
    char user[LSIM_MAX_ID_LEN + 1], item[LSIM_MAX_ID_LEN + 1];
    char cat[LSIM_MAX_ID_LEN + 1], type[LSIM_MAX_ID_LEN + 1];
    int64_t ts;
    uint64_t line;
    char msg[600];
} outcome;

static void copy_id(char *dst, const char *src, uint32_t len)
{
    cr_assert_leq(len, LSIM_MAX_ID_LEN);
    cr_assert_eq(strlen(src), len, "an id's length disagrees with its NUL");
    memcpy(dst, src, (size_t)len + 1);
}

static log_reader *open_ok(const char *path, const log_spec *spec)
{
    log_reader *r = NULL;
    char err[512] = "";
    int rc = log_reader_open(&r, path, spec, err, sizeof err);
    cr_assert_eq(rc, 0, "open %s: %d %s", path, rc, err);
    cr_assert(r);
    return r;
}

/* Reads path to EOF into out[0..max); returns the number of outcomes. */
static size_t read_all(const char *path, const log_spec *spec, outcome *out, size_t max)
{
    log_reader *r = open_ok(path, spec);
    size_t n = 0;
    for (;;) {
        log_event ev;
        int rc = log_reader_next(r, &ev);
        cr_assert_geq(rc, 0, "read error: %s", log_reader_errmsg(r));
        if (rc == LOG_READ_EOF) break;
        cr_assert_lt(n, max, "more outcomes than expected");
        outcome *o = &out[n++];
        memset(o, 0, sizeof *o);
        o->rc = rc;
        if (rc == LOG_READ_BAD) {
            snprintf(o->msg, sizeof o->msg, "%s", log_reader_errmsg(r));
            continue;
        }
        copy_id(o->user, ev.user, ev.user_len);
        copy_id(o->item, ev.item, ev.item_len);
        copy_id(o->cat, ev.cat, ev.cat_len);
        copy_id(o->type, ev.type, ev.type_len);
        o->ts = ev.ts;
        o->line = ev.line;
    }
    cr_assert_eq(log_reader_next(r, &(log_event){0}), LOG_READ_EOF, "EOF is not sticky");
    log_reader_close(r);
    return n;
}

static void expect_event(const outcome *o, const char *user, const char *item, const char *cat,
                         const char *type, int64_t ts, uint64_t line)
{
    cr_assert_eq(o->rc, LOG_READ_EVENT, "expected an event at line %" PRIu64 ", got: %s", line,
                 o->msg);
    cr_assert_str_eq(o->user, user);
    cr_assert_str_eq(o->item, item);
    cr_assert_str_eq(o->cat, cat);
    cr_assert_str_eq(o->type, type);
    cr_assert_eq(o->ts, ts, "ts %" PRId64 " != %" PRId64, o->ts, ts);
    cr_assert_eq(o->line, line, "line %" PRIu64 " != %" PRIu64, o->line, line);
}

/* A bad line's message must be exactly "PATH:LINE: reason". */
static void expect_bad(const outcome *o, const char *path, uint64_t line, const char *reason)
{
    char want[1200];
    snprintf(want, sizeof want, "%s:%" PRIu64 ": %s", path, line, reason);
    cr_assert_eq(o->rc, LOG_READ_BAD, "expected a bad line (%s), got an event", reason);
    cr_assert_str_eq(o->msg, want);
}

/*
 * The core bad-line check: a good line, the bad line (raw bytes, so NULs and
 * \r may be in it), another good line. Exactly three outcomes: event, bad with
 * `reason` at line 2, event at line 3.
 */
static void check_bad_between(const log_spec *spec, const char *good1, const char *bad_line,
                              size_t bad_len, const char *good2, const char *reason)
{
    size_t n1 = strlen(good1), n2 = strlen(good2);
    char *text = malloc(n1 + bad_len + n2 + 3);
    cr_assert(text);
    memcpy(text, good1, n1);
    text[n1] = '\n';
    memcpy(text + n1 + 1, bad_line, bad_len);
    text[n1 + 1 + bad_len] = '\n';
    memcpy(text + n1 + bad_len + 2, good2, n2);
    text[n1 + bad_len + n2 + 2] = '\n';
    char path[512];
    put_file(path, "log", text, n1 + bad_len + n2 + 3);
    free(text);
    outcome out[4];
    size_t n = read_all(path, spec, out, 4);
    cr_assert_eq(n, 3, "expected 3 outcomes, got %zu", n);
    cr_assert_eq(out[0].rc, LOG_READ_EVENT, "line 1: %s", out[0].msg);
    cr_assert_eq(out[0].line, 1);
    expect_bad(&out[1], path, 2, reason);
    cr_assert_eq(out[2].rc, LOG_READ_EVENT, "the line after a bad line was lost: %s", out[2].msg);
    cr_assert_eq(out[2].line, 3);
}

static void taobao_bad(const char *bad_line, const char *reason)
{
    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_TAOBAO);
    check_bad_between(&spec, "1,2,3,pv,100", bad_line, strlen(bad_line), "4,5,6,buy,200", reason);
}

/* ---- spec helpers ---- */

Test(log_reader, spec_defaults_and_format_names)
{
    log_spec s;
    log_spec_default(&s, LOG_FORMAT_TAOBAO);
    cr_assert_eq(s.format, LOG_FORMAT_TAOBAO);
    cr_assert_eq(s.delimiter, ',');
    cr_assert_eq(s.header, 0);
    cr_assert_eq(s.ts_min, LOG_TS_MIN_DEFAULT);
    cr_assert_eq(s.ts_max, LOG_TS_MAX_DEFAULT);
    cr_assert_null(s.item_info_path);
    log_spec_default(&s, LOG_FORMAT_CSV);
    cr_assert_eq(s.col_user, 1);
    cr_assert_eq(s.col_item, 2);
    cr_assert_eq(s.col_cat, 3);
    cr_assert_eq(s.col_type, 4);
    cr_assert_eq(s.col_ts, 5);

    log_format f;
    cr_assert_eq(log_format_parse("taobao", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_TAOBAO);
    cr_assert_eq(log_format_parse("amazon", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_AMAZON);
    cr_assert_eq(log_format_parse("csv", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_CSV);
    cr_assert_eq(log_format_parse("Taobao", &f), LSIM_E_INVAL);
    cr_assert_eq(log_format_parse("", &f), LSIM_E_INVAL);
    cr_assert_eq(log_format_parse("tsv", &f), LSIM_E_INVAL);
}

/* ---- Taobao ---- */

static log_spec taobao_spec(void)
{
    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_TAOBAO);
    return spec;
}

Test(log_reader, taobao_good_lines)
{
    char path[512];
    put_text(path, "log",
             "1,2268318,2520377,pv,1511544070\n"
             "1,2333346,2520771,buy,1511561733\n"
             "abc,x-y,c a t,cart,0\n"
             "7,8,9,fav,4102444799\n"
             "7,8,9,pv,0000000100\n");
    log_spec spec = taobao_spec();
    outcome out[8];
    cr_assert_eq(read_all(path, &spec, out, 8), 5);
    expect_event(&out[0], "1", "2268318", "2520377", "pv", 1511544070, 1);
    expect_event(&out[1], "1", "2333346", "2520771", "buy", 1511561733, 2);
    expect_event(&out[2], "abc", "x-y", "c a t", "cart", 0, 3);
    expect_event(&out[3], "7", "8", "9", "fav", 4102444799LL, 4);
    expect_event(&out[4], "7", "8", "9", "pv", 100, 5);
}

Test(log_reader, taobao_bad_field_count)
{
    taobao_bad("1,2,3,pv", "wrong field count: 4 fields, need 5");
    taobao_bad("1,2,3,pv,100,7", "wrong field count: 6 fields, need 5");
    taobao_bad("just some text", "wrong field count: 1 field, need 5");
    taobao_bad("1\t2\t3\tpv\t100", "wrong field count: 1 field, need 5");
    taobao_bad(",,,,,,,,,,", "wrong field count: 11 fields, need 5");
}

Test(log_reader, taobao_bad_empty_ids)
{
    taobao_bad(",2,3,pv,100", "empty user id");
    taobao_bad("1,,3,pv,100", "empty item id");
    taobao_bad("1,2,,pv,100", "empty category id");
    taobao_bad(",,,pv,x", "empty user id"); /* the first problem, in column order, is named */
}

static void fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

Test(log_reader, taobao_id_length_limit)
{
    char id[400], line[1000];
    fill(id, 'u', LSIM_MAX_ID_LEN + 1);
    snprintf(line, sizeof line, "%s,2,3,pv,100", id);
    taobao_bad(line, "user id longer than 255 bytes");
    fill(id, 'i', 300);
    snprintf(line, sizeof line, "1,%s,3,pv,100", id);
    taobao_bad(line, "item id longer than 255 bytes");
    fill(id, 'c', LSIM_MAX_ID_LEN + 1);
    snprintf(line, sizeof line, "1,2,%s,pv,100", id);
    taobao_bad(line, "category id longer than 255 bytes");

    /* Exactly LSIM_MAX_ID_LEN is fine, and comes back whole. */
    char u[300], i[300], c[300], path[512];
    fill(u, 'U', LSIM_MAX_ID_LEN);
    fill(i, 'I', LSIM_MAX_ID_LEN);
    fill(c, 'C', LSIM_MAX_ID_LEN);
    snprintf(line, sizeof line, "%s,%s,%s,cart,5\n", u, i, c);
    put_text(path, "max", line);
    log_spec spec = taobao_spec();
    outcome out[2];
    cr_assert_eq(read_all(path, &spec, out, 2), 1);
    expect_event(&out[0], u, i, c, "cart", 5, 1);
}

Test(log_reader, taobao_bad_nul_byte)
{
    log_spec spec = taobao_spec();
    static const char mid[] = "1,2\0,3,pv,100";
    check_bad_between(&spec, "1,2,3,pv,100", mid, sizeof mid - 1, "4,5,6,buy,200", "NUL byte in line");
    static const char first[] = "\0001,2,3,pv,100";
    check_bad_between(&spec, "1,2,3,pv,100", first, sizeof first - 1, "4,5,6,buy,200",
                      "NUL byte in line");
    static const char last[] = "1,2,3,pv,100\0";
    check_bad_between(&spec, "1,2,3,pv,100", last, sizeof last - 1, "4,5,6,buy,200",
                      "NUL byte in line");
    static const char only[] = "\0";
    check_bad_between(&spec, "1,2,3,pv,100", only, 1, "4,5,6,buy,200", "NUL byte in line");
}

Test(log_reader, taobao_bad_timestamp_text)
{
    taobao_bad("1,2,3,pv,12a", "non-numeric timestamp '12a'");
    taobao_bad("1,2,3,pv,", "non-numeric timestamp ''");
    taobao_bad("1,2,3,pv,-", "non-numeric timestamp '-'");
    taobao_bad("1,2,3,pv,+5", "non-numeric timestamp '+5'");
    taobao_bad("1,2,3,pv, 5", "non-numeric timestamp ' 5'");
    taobao_bad("1,2,3,pv,1.5e9", "non-numeric timestamp '1.5e9'");
    taobao_bad("1,2,3,pv,0x10", "non-numeric timestamp '0x10'");
    taobao_bad("1,2,3,pv,99999999999999999999x", "non-numeric timestamp '99999999999999999999x'");
    /* Long text is quoted up to 40 bytes, then "...". */
    taobao_bad("1,2,3,pv,abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij",
               "non-numeric timestamp 'abcdefghijabcdefghijabcdefghijabcdefghij...'");
}

Test(log_reader, taobao_bad_timestamp_range)
{
    taobao_bad("1,2,3,pv,-1", "timestamp -1 out of range [0, 4102444799]");
    taobao_bad("1,2,3,pv,4102444800", "timestamp 4102444800 out of range [0, 4102444799]");
    taobao_bad("1,2,3,pv,99999999999999999999",
               "timestamp 99999999999999999999 out of range [0, 4102444799]");
    taobao_bad("1,2,3,pv,-99999999999999999999",
               "timestamp -99999999999999999999 out of range [0, 4102444799]");
}

Test(log_reader, timestamp_range_is_the_specs)
{
    log_spec spec = taobao_spec();
    spec.ts_min = 100;
    spec.ts_max = 200;
    check_bad_between(&spec, "1,2,3,pv,100", "1,2,3,pv,99", 11, "4,5,6,buy,200",
                      "timestamp 99 out of range [100, 200]");
    check_bad_between(&spec, "1,2,3,pv,100", "1,2,3,pv,201", 12, "4,5,6,buy,200",
                      "timestamp 201 out of range [100, 200]");

    /* The whole int64_t range, at its very ends. */
    spec.ts_min = INT64_MIN;
    spec.ts_max = INT64_MAX;
    char path[512];
    put_text(path, "ends",
             "1,2,3,pv,-9223372036854775808\n"
             "1,2,3,pv,9223372036854775807\n"
             "1,2,3,pv,-0\n"
             "1,2,3,pv,9223372036854775808\n"
             "1,2,3,pv,-9223372036854775809\n"
             "1,2,3,pv,000000000000000000000000000000042\n");
    outcome out[8];
    cr_assert_eq(read_all(path, &spec, out, 8), 6);
    expect_event(&out[0], "1", "2", "3", "pv", INT64_MIN, 1);
    expect_event(&out[1], "1", "2", "3", "pv", INT64_MAX, 2);
    expect_event(&out[2], "1", "2", "3", "pv", 0, 3);
    expect_bad(&out[3], path, 4,
               "timestamp 9223372036854775808 out of range [-9223372036854775808, "
               "9223372036854775807]");
    expect_bad(&out[4], path, 5,
               "timestamp -9223372036854775809 out of range [-9223372036854775808, "
               "9223372036854775807]");
    expect_event(&out[5], "1", "2", "3", "pv", 42, 6);
}

Test(log_reader, taobao_bad_behavior_type)
{
    taobao_bad("1,2,3,click,100", "unknown behavior type 'click' (pv, buy, cart, fav)");
    taobao_bad("1,2,3,PV,100", "unknown behavior type 'PV' (pv, buy, cart, fav)");
    taobao_bad("1,2,3,,100", "unknown behavior type '' (pv, buy, cart, fav)");
    taobao_bad("1,2,3,pvx,100", "unknown behavior type 'pvx' (pv, buy, cart, fav)");
    taobao_bad("1,2,3,car,100", "unknown behavior type 'car' (pv, buy, cart, fav)");
}

Test(log_reader, empty_lines_are_bad_lines)
{
    taobao_bad("", "empty line");
    taobao_bad("\r", "empty line");

    char path[512];
    put_text(path, "blank", "\n\n1,2,3,pv,5\r\n\r\n");
    log_spec spec = taobao_spec();
    outcome out[8];
    cr_assert_eq(read_all(path, &spec, out, 8), 4);
    expect_bad(&out[0], path, 1, "empty line");
    expect_bad(&out[1], path, 2, "empty line");
    expect_event(&out[2], "1", "2", "3", "pv", 5, 3);
    expect_bad(&out[3], path, 4, "empty line");
}

Test(log_reader, empty_file)
{
    char path[512];
    put_text(path, "empty", "");
    log_spec spec = taobao_spec();
    outcome out[1];
    cr_assert_eq(read_all(path, &spec, out, 1), 0);
}

Test(log_reader, crlf_line_ends)
{
    char path[512];
    put_text(path, "crlf",
             "1,2,3,pv,100\r\n"
             "4,5,6,buy,200\n"
             "7,8\r,9,fav,300\r\n"  /* only a trailing \r is a line end */
             "1,2,3,pv,100\r\r\n"); /* and only one */
    log_spec spec = taobao_spec();
    outcome out[8];
    cr_assert_eq(read_all(path, &spec, out, 8), 4);
    expect_event(&out[0], "1", "2", "3", "pv", 100, 1);
    expect_event(&out[1], "4", "5", "6", "buy", 200, 2);
    expect_event(&out[2], "7", "8\r", "9", "fav", 300, 3);
    expect_bad(&out[3], path, 4, "non-numeric timestamp '100\r'");
}

Test(log_reader, last_line_without_newline)
{
    char path[512];
    log_spec spec = taobao_spec();
    outcome out[4];
    put_text(path, "a", "1,2,3,pv,100\n4,5,6,buy,200");
    cr_assert_eq(read_all(path, &spec, out, 4), 2);
    expect_event(&out[1], "4", "5", "6", "buy", 200, 2);
    put_text(path, "b", "4,5,6,buy,200\r");
    cr_assert_eq(read_all(path, &spec, out, 4), 1);
    expect_event(&out[0], "4", "5", "6", "buy", 200, 1);
    put_text(path, "c", "1,2,3,pv,100\n4,5,6,bad,200");
    cr_assert_eq(read_all(path, &spec, out, 4), 2);
    expect_bad(&out[1], path, 2, "unknown behavior type 'bad' (pv, buy, cart, fav)");
}

/* ---- Amazon ---- */

Test(log_reader, amazon_join_and_bad_item_info_lines_first)
{
    char items[512], reviews[512];
    put_text(items, "item-info",
             "i1\tBooks\r\n"
             "i2\tMusic\r\n"
             "no tab here\r\n"
             "i3\t\r\n"
             "i1\tNovels\r\n" /* a duplicate: the last line wins */
             "\r\n"
             "i4\tA\tB\r\n");
    put_text(reviews, "reviews-info",
             "u1\ti1\t5.0\t100\r\n"
             "u2\ti9\t4.0\t200\r\n"
             "u3\ti2\t\t300\r\n" /* the rating is not checked */
             "u4\ti3\t1.0\r\n"
             "u5\ti3\t1.0\tabc\r\n"
             "\ti2\t1.0\t5\r\n"
             "u6\ti3\t2.0\t400");
    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_AMAZON);
    spec.item_info_path = items;
    outcome out[16];
    cr_assert_eq(read_all(reviews, &spec, out, 16), 11);
    expect_bad(&out[0], items, 3, "wrong field count: 1 field, need 2");
    expect_bad(&out[1], items, 4, "empty category id");
    expect_bad(&out[2], items, 6, "empty line");
    expect_bad(&out[3], items, 7, "wrong field count: 3 fields, need 2");
    expect_event(&out[4], "u1", "i1", "Novels", "review", 100, 1);
    expect_event(&out[5], "u2", "i9", "unknown", "review", 200, 2);
    expect_event(&out[6], "u3", "i2", "Music", "review", 300, 3);
    expect_bad(&out[7], reviews, 4, "wrong field count: 3 fields, need 4");
    expect_bad(&out[8], reviews, 5, "non-numeric timestamp 'abc'");
    expect_bad(&out[9], reviews, 6, "empty user id");
    expect_event(&out[10], "u6", "i3", "unknown", "review", 400, 7);
}

Test(log_reader, amazon_item_info_ids_are_checked)
{
    char items[512], reviews[512], line[700], id[300];
    fill(id, 'x', LSIM_MAX_ID_LEN + 1);
    snprintf(line, sizeof line, "%s\tBooks\ni1\t%s\n\tBooks\ni2\tok\n", id, id);
    put_text(items, "item-info", line);
    put_text(reviews, "reviews-info", "u\ti2\t1\t1\n");
    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_AMAZON);
    spec.item_info_path = items;
    outcome out[8];
    cr_assert_eq(read_all(reviews, &spec, out, 8), 4);
    expect_bad(&out[0], items, 1, "item id longer than 255 bytes");
    expect_bad(&out[1], items, 2, "category id longer than 255 bytes");
    expect_bad(&out[2], items, 3, "empty item id");
    expect_event(&out[3], "u", "i2", "ok", "review", 1, 1);
}

Test(log_reader, amazon_many_items)
{
    /* Enough items to grow the table and its arena several times. */
    enum { N = 20000 };
    char items[512], reviews[512];
    size_t cap = (size_t)N * 40, len = 0;
    char *text = malloc(cap);
    cr_assert(text);
    for (int i = 0; i < N; i++) len += (size_t)sprintf(text + len, "item%d\tcat%d\n", i, i % 97);
    put_file(items, "item-info", text, len);
    len = 0;
    for (int i = 0; i < N + 100; i++) len += (size_t)sprintf(text + len, "u\titem%d\t1\t%d\n", i, i);
    put_file(reviews, "reviews-info", text, len);
    free(text);

    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_AMAZON);
    spec.item_info_path = items;
    log_reader *r = open_ok(reviews, &spec);
    log_event ev;
    for (int i = 0; i < N + 100; i++) {
        cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EVENT, "%s", log_reader_errmsg(r));
        char want[32];
        if (i < N) snprintf(want, sizeof want, "cat%d", i % 97);
        else snprintf(want, sizeof want, "unknown");
        cr_assert_str_eq(ev.cat, want, "item%d", i);
        cr_assert_eq(ev.cat_len, strlen(want));
    }
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    log_reader_close(r);
}

/* ---- open failures ---- */

Test(log_reader, open_failures)
{
    log_reader *r = (log_reader *)1;
    char err[512], path[512], missing[600];
    log_spec spec = taobao_spec();
    snprintf(missing, sizeof missing, "%s/no-such-file", g_dir);

    cr_assert_eq(log_reader_open(&r, missing, &spec, err, sizeof err), LSIM_E_IO);
    cr_assert_null(r);
    cr_assert(strncmp(err, missing, strlen(missing)) == 0, "err: %s", err);

    r = (log_reader *)1;
    cr_assert_eq(log_reader_open(&r, g_dir, &spec, err, sizeof err), LSIM_E_IO);
    cr_assert_null(r);
    cr_assert(strstr(err, "is a directory"), "err: %s", err);

    put_text(path, "log", "1,2,3,pv,1\n");
    spec.ts_min = 10;
    spec.ts_max = 9;
    cr_assert_eq(log_reader_open(&r, path, &spec, err, sizeof err), LSIM_E_INVAL);
    cr_assert_null(r);

    log_spec_default(&spec, LOG_FORMAT_AMAZON);
    cr_assert_eq(log_reader_open(&r, path, &spec, err, sizeof err), LSIM_E_INVAL);
    cr_assert(strstr(err, "item-info"), "err: %s", err);
    spec.item_info_path = missing;
    cr_assert_eq(log_reader_open(&r, path, &spec, err, sizeof err), LSIM_E_IO);
    cr_assert_null(r);
    cr_assert(strncmp(err, missing, strlen(missing)) == 0, "err: %s", err);

    log_spec_default(&spec, LOG_FORMAT_CSV);
    spec.delimiter = '\n';
    cr_assert_eq(log_reader_open(&r, path, &spec, err, sizeof err), LSIM_E_INVAL);
    log_spec_default(&spec, LOG_FORMAT_CSV);
    spec.col_user = 0;
    cr_assert_eq(log_reader_open(&r, path, &spec, err, sizeof err), LSIM_E_INVAL);
    cr_assert_null(r);
    cr_assert_eq(log_reader_open(NULL, path, &spec, err, sizeof err), LSIM_E_INVAL);
    log_reader_close(NULL);
}

/* ---- CSV and column mappings ---- */

static void mapping_ok(const char *m, int u, int i, int c, int t, int ts)
{
    log_spec s;
    log_spec_default(&s, LOG_FORMAT_CSV);
    char err[256] = "";
    cr_assert_eq(log_spec_parse_columns(&s, m, err, sizeof err), 0, "'%s': %s", m, err);
    cr_assert_eq(s.col_user, u, "'%s'", m);
    cr_assert_eq(s.col_item, i, "'%s'", m);
    cr_assert_eq(s.col_cat, c, "'%s'", m);
    cr_assert_eq(s.col_type, t, "'%s'", m);
    cr_assert_eq(s.col_ts, ts, "'%s'", m);
}

static void mapping_bad(const char *m, const char *reason)
{
    log_spec s, before;
    log_spec_default(&s, LOG_FORMAT_CSV);
    before = s;
    char err[256] = "";
    cr_assert_eq(log_spec_parse_columns(&s, m, err, sizeof err), LSIM_E_INVAL, "'%s' parsed", m);
    cr_assert(strstr(err, reason), "'%s': got '%s', want '%s'", m, err, reason);
    cr_assert(memcmp(&s, &before, sizeof s) == 0, "'%s': a failed parse changed the spec", m);
}

Test(log_reader, column_mapping_good)
{
    mapping_ok("user=1,item=2,category=3,ts=5,type=4", 1, 2, 3, 4, 5);
    mapping_ok("ts=1,user=3,item=2", 3, 2, 0, 0, 1);
    mapping_ok(" user = 1 , item=2,\ttimestamp=7 ,cat=4", 1, 2, 4, 0, 7);
    mapping_ok("user=10,item=01,ts=1024", 10, 1, 0, 0, 1024);
}

Test(log_reader, column_mapping_bad)
{
    mapping_bad("", "empty column mapping");
    mapping_bad("   ", "empty column mapping");
    mapping_bad("user=1,item=2", "column mapping lacks 'ts'");
    mapping_bad("item=2,ts=3", "column mapping lacks 'user'");
    mapping_bad("user=1,ts=3", "column mapping lacks 'item'");
    mapping_bad("user=1,item=2,ts=3,color=4", "unknown column key 'color'");
    mapping_bad("user=0,item=2,ts=3", "'user=0': column must be a number in 1..1024");
    mapping_bad("user=1,item=2,ts=1025", "'ts=1025': column must be a number in 1..1024");
    mapping_bad("user=x,item=2,ts=3", "'user=x': column must be a number in 1..1024");
    mapping_bad("user=-1,item=2,ts=3", "column must be a number");
    mapping_bad("user=,item=2,ts=3", "column must be a number");
    mapping_bad("user=99999999999999999999,item=2,ts=3", "column must be a number");
    mapping_bad("user=1,item=1,ts=3", "column 1 mapped to both user and item");
    mapping_bad("user=1,user=2,item=3,ts=4", "column key 'user' given twice");
    mapping_bad("user=1,item=2,ts=3,", "empty item in column mapping");
    mapping_bad("user=1,,item=2,ts=3", "empty item in column mapping");
    mapping_bad("user1,item=2,ts=3", "'user1': expected key=column");
}

static log_spec csv_spec(const char *mapping, char delim, int header)
{
    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_CSV);
    char err[256];
    cr_assert_eq(log_spec_parse_columns(&spec, mapping, err, sizeof err), 0, "%s", err);
    spec.delimiter = delim;
    spec.header = header;
    return spec;
}

Test(log_reader, csv_header_tab_and_extra_columns)
{
    char path[512];
    put_text(path, "log",
             "time\titem\tuser\textra\n"
             "100\ti1\tu1\tx\n"
             "200\ti2\tu2\n"
             "300\ti3\n"
             "400\ti4\tu4\ta\tb\tc\r\n");
    log_spec spec = csv_spec("ts=1,user=3,item=2", '\t', 1);
    outcome out[8];
    cr_assert_eq(read_all(path, &spec, out, 8), 4);
    expect_event(&out[0], "u1", "i1", "unknown", "event", 100, 2);
    expect_event(&out[1], "u2", "i2", "unknown", "event", 200, 3);
    expect_bad(&out[2], path, 4, "wrong field count: 2 fields, need at least 3");
    expect_event(&out[3], "u4", "i4", "unknown", "event", 400, 5);

    /* Without --header the header line is data, and bad. */
    spec.header = 0;
    cr_assert_eq(read_all(path, &spec, out, 8), 5);
    expect_bad(&out[0], path, 1, "non-numeric timestamp 'time'");

    /* A header line is skipped whatever it holds, even nothing. */
    put_text(path, "blank-header", "\n100\ti1\tu1\n");
    spec.header = 1;
    cr_assert_eq(read_all(path, &spec, out, 8), 1);
    expect_event(&out[0], "u1", "i1", "unknown", "event", 100, 2);
}

Test(log_reader, csv_mapped_category_and_type)
{
    log_spec spec = csv_spec("user=2,item=3,category=4,type=1,ts=5", '|', 0);
    check_bad_between(&spec, "click|u|i|c|1", "click|u|i||1", 12, "view|u|i|c|2",
                      "empty category id");
    check_bad_between(&spec, "click|u|i|c|1", "|u|i|c|1", 8, "view|u|i|c|2", "empty type id");
    check_bad_between(&spec, "click|u|i|c|1", "click|u|i|c|1,5", 15, "view|u|i|c|2",
                      "non-numeric timestamp '1,5'");
    check_bad_between(&spec, "click|u|i|c|1", "click,u,i,c,1", 13, "view|u|i|c|2",
                      "wrong field count: 1 field, need at least 5");
    char line[400], t[300];
    fill(t, 't', LSIM_MAX_ID_LEN + 1);
    snprintf(line, sizeof line, "%s|u|i|c|1", t);
    check_bad_between(&spec, "click|u|i|c|1", line, strlen(line), "view|u|i|c|2",
                      "type id longer than 255 bytes");

    char path[512];
    put_text(path, "log", "click|u|i|c|1\nview|u2|i2|c2|2\n");
    outcome out[4];
    cr_assert_eq(read_all(path, &spec, out, 4), 2);
    expect_event(&out[0], "u", "i", "c", "click", 1, 1);
    expect_event(&out[1], "u2", "i2", "c2", "view", 2, 2);
}

/* ---- long lines ---- */

/* A CSV line "u<k>,i,<ts>,xxxx..." of exactly `len` bytes (len >= 32). */
static size_t long_line(char *dst, size_t len, int k, int ts)
{
    int head = sprintf(dst, "u%d,i,%d,", k, ts);
    memset(dst + head, 'x', len - (size_t)head);
    return len;
}

Test(log_reader, line_length_limit)
{
    char *text = malloc(6 * (LOG_MAX_LINE + 100));
    cr_assert(text);
    size_t n = 0;
    n += long_line(text + n, LOG_MAX_LINE, 1, 1);
    text[n++] = '\n';
    n += long_line(text + n, LOG_MAX_LINE + 1, 2, 2);
    text[n++] = '\n';
    n += long_line(text + n, LOG_MAX_LINE, 3, 3); /* the \r of a CRLF does not count */
    text[n++] = '\r';
    text[n++] = '\n';
    n += long_line(text + n, LOG_MAX_LINE + 1, 4, 4);
    text[n++] = '\r';
    text[n++] = '\n';
    n += (size_t)sprintf(text + n, "u5,i,5\n");
    n += long_line(text + n, LOG_MAX_LINE + 1, 6, 6); /* too long, and no newline */
    char path[512];
    put_file(path, "log", text, n);
    free(text);

    log_spec spec = csv_spec("user=1,item=2,ts=3", ',', 0);
    outcome out[8];
    cr_assert_eq(read_all(path, &spec, out, 8), 6);
    expect_event(&out[0], "u1", "i", "unknown", "event", 1, 1);
    expect_bad(&out[1], path, 2, "line longer than 65536 bytes");
    expect_event(&out[2], "u3", "i", "unknown", "event", 3, 3);
    expect_bad(&out[3], path, 4, "line longer than 65536 bytes");
    expect_event(&out[4], "u5", "i", "unknown", "event", 5, 5);
    expect_bad(&out[5], path, 6, "line longer than 65536 bytes");

    /* Taobao says the same. */
    char *big = malloc(LOG_MAX_LINE + 100);
    cr_assert(big);
    size_t m = (size_t)sprintf(big, "1,2,3,pv,");
    memset(big + m, '7', LOG_MAX_LINE + 1 - m);
    big[LOG_MAX_LINE + 1] = '\0';
    taobao_bad(big, "line longer than 65536 bytes");
    free(big);
}

/* Long lines, good and too long (one far larger than the read buffer),
 * placed so that many of them straddle the buffer's refills. */
Test(log_reader, long_lines_across_buffer_refills)
{
    enum { ROUNDS = 40, HUGE = 3 << 20 };
    size_t cap = (size_t)ROUNDS * (2 * LOG_MAX_LINE + 300) + HUGE + 100;
    char *text = malloc(cap);
    cr_assert(text);
    size_t n = 0;
    for (int k = 0; k < ROUNDS; k++) {
        n += long_line(text + n, LOG_MAX_LINE - (size_t)k * 7, 3 * k, k);
        text[n++] = '\n';
        n += long_line(text + n, LOG_MAX_LINE + 1 + (size_t)k * 13, 3 * k + 1, k);
        text[n++] = '\n';
        n += (size_t)sprintf(text + n, "u%d,i,%d\r\n", 3 * k + 2, k);
        if (k == ROUNDS / 2) {
            n += long_line(text + n, HUGE, -1, 0);
            text[n++] = '\n';
        }
    }
    char path[512];
    put_file(path, "log", text, n);
    free(text);

    log_spec spec = csv_spec("user=1,item=2,ts=3", ',', 0);
    log_reader *r = open_ok(path, &spec);
    cr_assert_eq(log_reader_bytes_total(r), n);
    uint64_t line = 0;
    for (int k = 0; k < ROUNDS; k++) {
        log_event ev;
        char u[32];
        cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EVENT, "round %d: %s", k, log_reader_errmsg(r));
        snprintf(u, sizeof u, "u%d", 3 * k);
        cr_assert_str_eq(ev.user, u);
        cr_assert_eq(ev.line, ++line);
        cr_assert_eq(ev.ts, k);
        cr_assert_eq(log_reader_next(r, &ev), LOG_READ_BAD);
        char want[600];
        snprintf(want, sizeof want, "%s:%" PRIu64 ": line longer than 65536 bytes", path, ++line);
        cr_assert_str_eq(log_reader_errmsg(r), want);
        cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EVENT, "round %d: %s", k, log_reader_errmsg(r));
        snprintf(u, sizeof u, "u%d", 3 * k + 2);
        cr_assert_str_eq(ev.user, u);
        cr_assert_str_eq(ev.item, "i");
        cr_assert_eq(ev.line, ++line);
        if (k == ROUNDS / 2) {
            cr_assert_eq(log_reader_next(r, &ev), LOG_READ_BAD);
            ++line;
        }
    }
    log_event ev;
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    cr_assert_eq(log_reader_bytes_read(r), n);
    log_reader_close(r);
}

/* ---- a long generated log, read back field by field ---- */

typedef struct gen_line {
    char user[LSIM_MAX_ID_LEN + 1], item[LSIM_MAX_ID_LEN + 1], cat[LSIM_MAX_ID_LEN + 1];
    const char *type;
    int64_t ts;
    int bad, crlf;
} gen_line;

static void gen_id(char *dst, uint64_t *rng)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_ .";
    uint64_t x = tu_rand(rng);
    size_t len = x % 1000 == 0 ? LSIM_MAX_ID_LEN : 1 + (size_t)(x >> 10) % 14;
    for (size_t i = 0; i < len; i++) dst[i] = alphabet[tu_rand(rng) % (sizeof alphabet - 1)];
    dst[len] = '\0';
}

static void gen_next(gen_line *g, uint64_t *rng, uint64_t lineno)
{
    static const char *const types[4] = {"pv", "buy", "cart", "fav"};
    g->bad = lineno % 997 == 0;
    gen_id(g->user, rng);
    gen_id(g->item, rng);
    gen_id(g->cat, rng);
    g->type = types[tu_rand(rng) % 4];
    g->ts = (int64_t)(tu_rand(rng) % ((uint64_t)LOG_TS_MAX_DEFAULT + 1));
    g->crlf = tu_rand(rng) % 4 == 0;
}

Test(log_reader, long_generated_log_reads_back_exactly)
{
    enum { LINES = 200000 };
    char path[512];
    snprintf(path, sizeof path, "%s/long.csv", g_dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    uint64_t rng = 12345;
    gen_line g;
    for (uint64_t i = 1; i <= LINES; i++) {
        gen_next(&g, &rng, i);
        if (g.bad) fprintf(f, "%s,%s,%s,%s%s", g.user, g.item, g.cat, g.type, g.crlf ? "\r\n" : "\n");
        else fprintf(f, "%s,%s,%s,%s,%" PRId64 "%s", g.user, g.item, g.cat, g.type, g.ts,
                     g.crlf ? "\r\n" : "\n");
    }
    long size = ftell(f);
    cr_assert_eq(fclose(f), 0);

    log_spec spec = taobao_spec();
    log_reader *r = open_ok(path, &spec);
    cr_assert_eq(log_reader_bytes_total(r), (uint64_t)size);
    rng = 12345;
    uint64_t events = 0, bads = 0, last_progress = 0;
    for (uint64_t i = 1; i <= LINES; i++) {
        gen_next(&g, &rng, i);
        log_event ev;
        int rc = log_reader_next(r, &ev);
        if (g.bad) {
            cr_assert_eq(rc, LOG_READ_BAD, "line %" PRIu64, i);
            char want[600];
            snprintf(want, sizeof want, "%s:%" PRIu64 ": wrong field count: 4 fields, need 5", path, i);
            cr_assert_str_eq(log_reader_errmsg(r), want);
            bads++;
        } else {
            cr_assert_eq(rc, LOG_READ_EVENT, "line %" PRIu64 ": %s", i, log_reader_errmsg(r));
            cr_assert_str_eq(ev.user, g.user, "line %" PRIu64, i);
            cr_assert_str_eq(ev.item, g.item, "line %" PRIu64, i);
            cr_assert_str_eq(ev.cat, g.cat, "line %" PRIu64, i);
            cr_assert_str_eq(ev.type, g.type, "line %" PRIu64, i);
            cr_assert_eq(ev.user_len, strlen(g.user));
            cr_assert_eq(ev.item_len, strlen(g.item));
            cr_assert_eq(ev.cat_len, strlen(g.cat));
            cr_assert_eq(ev.type_len, strlen(g.type));
            cr_assert_eq(ev.ts, g.ts, "line %" PRIu64, i);
            cr_assert_eq(ev.line, i);
            events++;
        }
        uint64_t progress = log_reader_bytes_read(r);
        cr_assert_geq(progress, last_progress);
        last_progress = progress;
    }
    log_event ev;
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    cr_assert_eq(log_reader_bytes_read(r), (uint64_t)size);
    cr_assert_eq(events + bads, LINES);
    cr_assert_eq(bads, LINES / 997);
    log_reader_close(r);
}

/* ---- standard input: a file, and a pipe written in small pieces ---- */

Test(log_reader, stdin_file)
{
    char path[512];
    put_text(path, "log", "1,2,3,pv,100\n1,2,3,xx,100\n");
    FILE *f = freopen(path, "rb", stdin);
    cr_assert(f);
    log_spec spec = taobao_spec();
    log_reader *r = open_ok("-", &spec);
    cr_assert_eq(log_reader_bytes_total(r), 26);
    log_event ev;
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EVENT);
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_BAD);
    cr_assert_str_eq(log_reader_errmsg(r), "<stdin>:2: unknown behavior type 'xx' (pv, buy, cart, fav)");
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    log_reader_close(r);
}

Test(log_reader, stdin_pipe_in_small_writes)
{
    enum { LINES = 30000 };
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        char buf[64];
        for (int i = 1; i <= LINES; i++) {
            int len = sprintf(buf, "%d,%d,%d,fav,%d\n", i, i * 7, i % 13, i);
            /* lines cut in two writes, so reads end mid-line */
            if (write(fds[1], buf, 3) != 3 || write(fds[1], buf + 3, (size_t)len - 3) != len - 3)
                _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    cr_assert_neq(dup2(fds[0], STDIN_FILENO), -1);
    close(fds[0]);
    log_spec spec = taobao_spec();
    log_reader *r = open_ok("-", &spec);
    cr_assert_eq(log_reader_bytes_total(r), 0, "a pipe has no known size");
    log_event ev;
    for (int i = 1; i <= LINES; i++) {
        cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EVENT, "%s", log_reader_errmsg(r));
        cr_assert_eq(ev.ts, i);
        cr_assert_eq(strtol(ev.item, NULL, 10), i * 7);
    }
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    log_reader_close(r);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- the shared real samples ---- */

Test(log_reader, taobao_real_sample)
{
    char *path = tu_shared_data("taobao/UserBehavior_sample.csv");
    if (!path) {
        teardown(); /* Criterion skips .fini after a skip */
        cr_skip_test("shared data taobao/UserBehavior_sample.csv is absent");
    }

    /* The independent parse: stdio and strtok. */
    FILE *f = fopen(path, "r");
    cr_assert(f);
    log_spec spec = taobao_spec();
    log_reader *r = open_ok(path, &spec);
    char buf[512];
    uint64_t lineno = 0;
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        buf[strcspn(buf, "\r\n")] = '\0';
        char *save = NULL;
        const char *user = strtok_r(buf, ",", &save);
        const char *item = strtok_r(NULL, ",", &save);
        const char *cat = strtok_r(NULL, ",", &save);
        const char *type = strtok_r(NULL, ",", &save);
        const char *ts = strtok_r(NULL, ",", &save);
        cr_assert(user && item && cat && type && ts, "the sample's line %" PRIu64 " is odd", lineno);
        log_event ev;
        int rc = log_reader_next(r, &ev);
        cr_assert_eq(rc, LOG_READ_EVENT, "line %" PRIu64 ": %s", lineno, log_reader_errmsg(r));
        cr_assert_str_eq(ev.user, user);
        cr_assert_str_eq(ev.item, item);
        cr_assert_str_eq(ev.cat, cat);
        cr_assert_str_eq(ev.type, type);
        cr_assert_eq(ev.ts, strtoll(ts, NULL, 10), "line %" PRIu64, lineno);
        cr_assert_eq(ev.line, lineno);
        if (ev.ts < min_ts) min_ts = ev.ts;
        if (ev.ts > max_ts) max_ts = ev.ts;
    }
    fclose(f);
    log_event ev;
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    cr_assert_eq(lineno, 5000);
    /* It holds timestamps outside the dataset's nominal window (2017-11-25 ..
     * 2017-12-03); they are inside the default range and are all read. */
    cr_assert_lt(min_ts, 1511539200);
    cr_assert_eq(log_reader_bytes_read(r), log_reader_bytes_total(r));
    log_reader_close(r);
    free(path);
}

/* Strips the line end of an fgets buffer and splits it at tabs. */
static size_t split_tabs(char *buf, char **fields, size_t max)
{
    buf[strcspn(buf, "\r\n")] = '\0';
    size_t n = 0;
    for (char *p = buf; n < max;) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

Test(log_reader, amazon_real_sample)
{
    char *items = tu_shared_data("amazon/item-info_sample");
    char *reviews = tu_shared_data("amazon/reviews-info_sample");
    if (!items || !reviews) {
        free(items);
        free(reviews);
        teardown(); /* Criterion skips .fini after a skip */
        cr_skip_test("shared data amazon/*_sample is absent");
    }

    /* The independent join: the item-info lines in an array, searched linearly. */
    enum { MAX_ITEMS = 1000 };
    static char item_ids[MAX_ITEMS][64], item_cats[MAX_ITEMS][256];
    size_t n_items = 0;
    char buf[1024];
    char *fields[8];
    FILE *f = fopen(items, "r");
    cr_assert(f);
    while (fgets(buf, sizeof buf, f)) {
        cr_assert_eq(split_tabs(buf, fields, 8), 2);
        cr_assert_lt(n_items, MAX_ITEMS);
        cr_assert_lt(strlen(fields[0]), sizeof item_ids[0]);
        cr_assert_lt(strlen(fields[1]), sizeof item_cats[0]);
        memcpy(item_ids[n_items], fields[0], strlen(fields[0]) + 1);
        memcpy(item_cats[n_items], fields[1], strlen(fields[1]) + 1);
        n_items++;
    }
    fclose(f);

    log_spec spec;
    log_spec_default(&spec, LOG_FORMAT_AMAZON);
    spec.item_info_path = items;
    log_reader *r = open_ok(reviews, &spec);
    f = fopen(reviews, "r");
    cr_assert(f);
    size_t n_reviews = 0, absent = 0, unknown = 0;
    while (fgets(buf, sizeof buf, f)) {
        cr_assert_eq(split_tabs(buf, fields, 8), 4);
        const char *want_cat = NULL;
        for (size_t i = 0; i < n_items; i++) /* the last line wins */
            if (strcmp(item_ids[i], fields[1]) == 0) want_cat = item_cats[i];
        if (!want_cat) absent++;
        log_event ev;
        int rc = log_reader_next(r, &ev);
        cr_assert_eq(rc, LOG_READ_EVENT, "%s", log_reader_errmsg(r));
        n_reviews++;
        cr_assert_str_eq(ev.user, fields[0]);
        cr_assert_str_eq(ev.item, fields[1]);
        cr_assert_str_eq(ev.cat, want_cat ? want_cat : "unknown");
        cr_assert_str_eq(ev.type, "review");
        cr_assert_eq(ev.ts, strtoll(fields[3], NULL, 10));
        cr_assert_eq(ev.line, n_reviews);
        if (strcmp(ev.cat, "unknown") == 0) unknown++;
    }
    fclose(f);
    log_event ev;
    cr_assert_eq(log_reader_next(r, &ev), LOG_READ_EOF);
    log_reader_close(r);
    cr_assert_eq(n_reviews, 1000);
    cr_assert_eq(unknown, absent);
    cr_assert_eq(absent, 154, "the sample's README says 154 reviews name absent items");
    free(items);
    free(reviews);
}
