/*
 * test_request_log.c: the JSON scanner (loaders/json_scan.h), the UTF-8
 * helpers under it (loaders/utf8.h) and the request log reader
 * (loaders/request_log.h), against hand-written inputs whose expected values
 * are written out here.
 */
#include "loaders/json_scan.h"
#include "loaders/request_log.h"
#include "loaders/utf8.h"
#include "storage/error_detail.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- json_scan ---- */

static int scan_string(const char *text, char *out, size_t cap, size_t *len, char *err)
{
    json_scan j;
    json_scan_init(&j, text, strlen(text), "t", err, LSIM_ERRLEN);
    int rc = json_string(&j, out, cap, len, "s");
    return rc ? rc : json_end(&j);
}

Test(json_scan, strings_decode)
{
    char out[64], err[LSIM_ERRLEN];
    size_t n;
    cr_assert_eq(scan_string("\"a\\\"b\\\\c\\/d\\n\\t\"", out, sizeof out, &n, err), 0, "%s", err);
    cr_expect_str_eq(out, "a\"b\\c/d\n\t");
    cr_expect_eq(n, 9);
    /* U+00E9 as an escape and raw; U+1F600 as a surrogate pair (F0 9F 98 80) */
    cr_assert_eq(scan_string("\"\\u00e9\xc3\xa9\\ud83d\\ude00\"", out, sizeof out, &n, err), 0, "%s", err);
    cr_expect_eq(n, 8);
    cr_expect(memcmp(out, "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80", 8) == 0);
}

Test(json_scan, strings_refused)
{
    static const struct { const char *text, *why; } bad[] = {
        {"\"abc", "unterminated"},
        {"\"a\\u0000b\"", "NUL"},
        {"\"\\ud83d\"", "unpaired high surrogate"},
        {"\"\\ude00\"", "unpaired low surrogate"},
        {"\"\\x41\"", "bad escape \\x"},
        {"\"\\u12g4\"", "bad hex digit"},
        {"\"\xc3\x28\"", "invalid UTF-8"},
        {"\"\xed\xa0\x80\"", "invalid UTF-8"}, /* an encoded surrogate */
        {"\"\xc0\xaf\"", "invalid UTF-8"},     /* overlong */
        {"\"a\tb\"", "control byte 0x09"},
        {"\"0123456789\"", "longer than 7 bytes"},
        {"42", "expected a string"},
        {"\"a\" x", "trailing 'x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[8], err[LSIM_ERRLEN] = "";
        size_t n;
        cr_expect_eq(scan_string(bad[i].text, out, sizeof out, &n, err), LSIM_E_FORMAT, "%s accepted", bad[i].text);
        cr_expect(strstr(err, bad[i].why) != NULL, "%s: message '%s' lacks '%s'", bad[i].text, err, bad[i].why);
        cr_expect(strncmp(err, "t: byte ", 8) == 0, "message '%s' does not say where", err);
    }
}

Test(json_scan, numbers)
{
    char err[LSIM_ERRLEN];
    json_scan j;
    int64_t v;
    const char *t = "[0, -12, 9223372036854775807, -9223372036854775808]";
    json_scan_init(&j, t, strlen(t), "t", err, sizeof err);
    cr_assert_eq(json_expect(&j, '[', "["), 0);
    const int64_t want[4] = {0, -12, INT64_MAX, INT64_MIN};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(json_int(&j, INT64_MIN, INT64_MAX, &v, "v"), 0, "%s", err);
        cr_expect_eq(v, want[k]);
        json_accept(&j, ',');
    }
    static const struct { const char *text, *why; } bad[] = {
        {"01", "leading zero"}, {"1.5", "not an integer"}, {"1e3", "not an integer"},
        {"9223372036854775808", "does not fit"}, {"-", "expected a number"}, {"1.", "no digit after"},
        {"1e", "no digit in the exponent"}, {"7", "outside [0, 5]"}, {"NaN", "expected a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_scan_init(&j, bad[i].text, strlen(bad[i].text), "t", err, sizeof err);
        cr_expect_eq(json_int(&j, 0, 5, &v, "v"), LSIM_E_FORMAT, "%s accepted", bad[i].text);
        cr_expect(strstr(err, bad[i].why) != NULL, "%s: '%s' lacks '%s'", bad[i].text, err, bad[i].why);
    }
    double d;
    json_scan_init(&j, "-2.5e-1", 7, "t", err, sizeof err);
    cr_assert_eq(json_number(&j, &d, "d"), 0, "%s", err);
    cr_expect_eq(d, -0.25);
    json_scan_init(&j, "1e999", 5, "t", err, sizeof err);
    cr_expect_eq(json_number(&j, &d, "d"), LSIM_E_FORMAT);
}

Test(json_scan, ids_and_skip)
{
    char err[LSIM_ERRLEN], out[16];
    size_t n;
    json_scan j;
    const char *t = "[42, \"x7\", \"\", -3, 1.5, {\"a\": [1, true, null, {\"b\": \"c\"}]}, false]";
    json_scan_init(&j, t, strlen(t), "t", err, sizeof err);
    cr_assert_eq(json_expect(&j, '[', "["), 0);
    cr_assert_eq(json_id(&j, out, sizeof out, &n, "id"), 0, "%s", err);
    cr_expect_str_eq(out, "42");
    json_accept(&j, ',');
    cr_assert_eq(json_id(&j, out, sizeof out, &n, "id"), 0, "%s", err);
    cr_expect_str_eq(out, "x7");
    json_accept(&j, ',');
    cr_expect_eq(json_id(&j, out, sizeof out, &n, "id"), LSIM_E_FORMAT);
    cr_expect(strstr(err, "empty id") != NULL, "%s", err);
    j.p += 2; /* past "" */
    json_accept(&j, ',');
    cr_expect_eq(json_id(&j, out, sizeof out, &n, "id"), LSIM_E_FORMAT);
    cr_expect(strstr(err, "negative") != NULL, "%s", err);
    j.p += 2;
    json_accept(&j, ',');
    cr_expect_eq(json_id(&j, out, sizeof out, &n, "id"), LSIM_E_FORMAT);
    cr_expect(strstr(err, "not a fraction") != NULL, "%s", err);
    j.p += 3;
    json_accept(&j, ',');
    cr_assert_eq(json_skip(&j), 0, "%s", err);
    cr_assert(json_accept(&j, ','));
    cr_assert_eq(json_skip(&j), 0, "%s", err);
    cr_assert_eq(json_expect(&j, ']', "]"), 0);
    cr_expect_eq(json_end(&j), 0);

    char deep[2 * JSON_MAX_DEPTH + 8];
    memset(deep, '[', JSON_MAX_DEPTH + 1);
    memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    json_scan_init(&j, deep, 2 * JSON_MAX_DEPTH + 2, "t", err, sizeof err);
    cr_expect_eq(json_skip(&j), LSIM_E_FORMAT);
    cr_expect(strstr(err, "nested deeper") != NULL, "%s", err);
    static const char *const bad[] = {"[1,]", "{\"a\" 1}", "{\"a\":1,}", "tru", "[1 2]", "{1: 2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_scan_init(&j, bad[i], strlen(bad[i]), "t", err, sizeof err);
        cr_expect_eq(json_skip(&j), LSIM_E_FORMAT, "%s accepted", bad[i]);
    }
}

/* Each text is one number: accepted with its value (why NULL), or refused
 * with the whole message, whose byte points at the offending character. */
Test(json_scan, unsigned_integers)
{
    static const struct { const char *text; uint64_t want; const char *why; } cases[] = {
        {"0", 0, NULL},
        {" 7 ", 7, NULL},
        {"18446744073709551615", UINT64_MAX, NULL},
        {"-1", 0, "t: byte 1: u: negative number"},
        {"  \"1\"", 0, "t: byte 3: u: expected a non-negative integer, found '\"'"},
        {"", 0, "t: byte 1: u: expected a non-negative integer, found the end"},
        {"01", 0, "t: byte 1: u: number with a leading zero"},
        {"18446744073709551616", 0, "t: byte 1: u: number does not fit 64 bits"},
        {"12.5", 0, "t: byte 3: u: not an integer"},
        {"12e2", 0, "t: byte 3: u: not an integer"},
        {"1E2", 0, "t: byte 2: u: not an integer"},
        {"1.", 0, "t: byte 2: u: not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[LSIM_ERRLEN] = "";
        json_scan j;
        uint64_t v = 42;
        json_scan_init(&j, cases[i].text, strlen(cases[i].text), "t", err, sizeof err);
        int rc = json_uint(&j, &v, "u");
        if (!cases[i].why) {
            cr_expect(rc == 0 && json_end(&j) == 0, "%s: %s", cases[i].text, err);
            cr_expect_eq(v, cases[i].want, "%s: %" PRIu64, cases[i].text, v);
        } else {
            cr_expect_eq(rc, LSIM_E_FORMAT, "%s accepted", cases[i].text);
            cr_expect_str_eq(err, cases[i].why, "%s", cases[i].text);
            cr_expect_eq(v, 42, "%s: *out written on failure", cases[i].text);
        }
    }
}

typedef struct report_log {
    size_t calls, offset;
    char reason[LSIM_ERRLEN];
} report_log;

static int report_to_log(void *user, size_t offset, const char *reason)
{
    report_log *r = user;
    r->calls++;
    r->offset = offset;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    return LSIM_E_FORMAT;
}

/* A fail hook and an end name replace the default message; a NULL label
 * leaves the reason alone. */
Test(json_scan, report_hook)
{
    char err[LSIM_ERRLEN] = "untouched", out[16], f[32];
    report_log r = {0};
    json_scan j;
    size_t n;
    json_scan_init(&j, "{\"a\\q\"}", 7, "t", err, sizeof err);
    json_scan_report(&j, report_to_log, &r, NULL);
    cr_assert_eq(json_expect(&j, '{', "'{'"), 0);
    cr_expect_eq(json_string(&j, out, sizeof out, &n, NULL), LSIM_E_FORMAT);
    cr_expect_eq(r.calls, 1);
    cr_expect_eq(r.offset, 3, "0-based offset of the backslash");
    cr_expect_str_eq(r.reason, "bad escape \\q");
    cr_expect_str_eq(err, "untouched");

    json_scan_init(&j, " [1", 3, "t", err, sizeof err);
    json_scan_report(&j, report_to_log, &r, "the end of the header");
    cr_expect_eq(json_found(&j, f, sizeof f), f);
    cr_expect_str_eq(f, "byte 0x20");
    cr_assert_eq(json_expect(&j, '[', "'['"), 0);
    cr_expect_str_eq(json_found(&j, f, sizeof f), "'1'");
    cr_assert_eq(json_int(&j, 0, 9, &(int64_t){0}, "v"), 0);
    cr_expect_eq(json_expect(&j, ']', "']'"), LSIM_E_FORMAT);
    cr_expect_eq(r.calls, 2);
    cr_expect_eq(r.offset, 3);
    cr_expect_str_eq(r.reason, "expected ']', found the end of the header");

    /* NULL arguments keep the defaults */
    json_scan_init(&j, "x", 1, "t", err, sizeof err);
    json_scan_report(&j, NULL, NULL, NULL);
    cr_expect_eq(json_string(&j, out, sizeof out, &n, NULL), LSIM_E_FORMAT);
    cr_expect_str_eq(err, "t: byte 1: expected a string, found 'x'");
    j.p++;
    cr_expect_eq(json_expect(&j, ',', "','"), LSIM_E_FORMAT);
    cr_expect_str_eq(err, "t: byte 2: expected ',', found the end");
}

/* ---- utf8 ---- */

Test(utf8, decode_encode_validate)
{
    static const struct { const char *bytes; size_t n; uint32_t cp; } good[] = {
        {"A", 1, 0x41}, {"\x7f", 1, 0x7f}, {"\xc2\x80", 2, 0x80}, {"\xc3\xa9", 2, 0xe9},
        {"\xe0\xa0\x80", 3, 0x800}, {"\xed\x9f\xbf", 3, 0xd7ff}, {"\xee\x80\x80", 3, 0xe000},
        {"\xef\xbf\xbf", 3, 0xffff}, {"\xf0\x90\x80\x80", 4, 0x10000}, {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const unsigned char *p = (const unsigned char *)good[i].bytes;
        uint32_t cp = 0;
        unsigned char enc[4];
        cr_expect_eq(utf8_next(p, p + good[i].n, &cp), good[i].n, "case %zu", i);
        cr_expect_eq(cp, good[i].cp, "case %zu: U+%04x", i, cp);
        cr_expect_eq(utf8_next(p, p + good[i].n, NULL), good[i].n);
        cr_expect_eq(utf8_put(enc, good[i].cp), good[i].n, "case %zu", i);
        cr_expect(memcmp(enc, p, good[i].n) == 0, "case %zu: encoding", i);
        if (good[i].n > 1) cr_expect_eq(utf8_next(p, p + good[i].n - 1, &cp), 0, "case %zu: cut short", i);
    }
    static const char *const bad[] = {
        "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xc3\x28", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
        "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const unsigned char *p = (const unsigned char *)bad[i];
        cr_expect_eq(utf8_next(p, p + strlen(bad[i]), NULL), 0, "bad case %zu accepted", i);
        char s[16];
        snprintf(s, sizeof s, "ok%sok", bad[i]);
        cr_expect_eq(utf8_valid(s), 0, "bad case %zu valid", i);
    }
    cr_expect_eq(utf8_valid(""), 1);
    cr_expect_eq(utf8_valid("plain \xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"), 1);
}

/* ---- request logs ---- */

typedef struct bad_list {
    char msg[16][LSIM_ERRLEN];
    size_t n;
} bad_list;

static void on_bad(void *ctx, const char *msg)
{
    bad_list *b = ctx;
    if (b->n < 16) snprintf(b->msg[b->n], LSIM_ERRLEN, "%s", msg);
    b->n++;
}

static request_set *read_text(const char *text, int delimited, const char *columns, bad_list *bad, int strict,
                              int *rc_out, char *err)
{
    char *dir = tu_tmpdir("reqlog");
    char path[512];
    snprintf(path, sizeof path, "%s/r.log", dir);
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    request_log_spec sp;
    request_log_spec_default(&sp);
    sp.delimited = delimited;
    sp.strict = strict;
    sp.max_candidates = 4;
    sp.on_bad = on_bad;
    sp.ctx = bad;
    if (columns) cr_assert_eq(log_spec_parse_columns(&sp.log, columns, err, LSIM_ERRLEN), 0, "%s", err);
    request_set *s = NULL;
    *rc_out = request_log_read(&s, path, &sp, err, LSIM_ERRLEN);
    tu_rmrf(dir);
    return s;
}

static void expect_request(const request_set *s, size_t i, const char *id, const char *user, int64_t time,
                           size_t n, const char *const *items, const char *const *cats, const float *labels)
{
    request_view v;
    request_set_get(s, i, &v);
    cr_expect_str_eq(v.id, id);
    cr_expect_str_eq(v.user, user);
    cr_expect_eq(v.user_len, strlen(user));
    cr_expect_eq(v.time, time);
    cr_assert_eq(v.n, n, "request %s: %zu candidates", id, v.n);
    lsim_candidate c[8];
    request_set_fill(s, i, c);
    for (size_t k = 0; k < n; k++) {
        cr_expect_eq(c[k].item_len, strlen(items[k]));
        cr_expect(memcmp(c[k].item, items[k], c[k].item_len) == 0, "request %s candidate %zu", id, k);
        if (cats[k]) {
            cr_assert(c[k].category != NULL);
            cr_expect_str_eq(c[k].category, cats[k]);
        } else {
            cr_expect_null(c[k].category);
        }
        cr_expect_eq(v.label[k], labels[k]);
    }
}

Test(request_log, json_lines)
{
    const char *text =
        "{\"id\": \"r1\", \"user\": \"u7\", \"time\": 1512259200, \"candidates\": "
        "[{\"item\": \"i1\", \"category\": \"c1\", \"label\": 1}, {\"item\": 55, \"label\": 0}]}\n"
        "\n"
        "{\"candidates\": [{\"label\": 0, \"item\": \"z\", \"extra\": [1, {\"x\": null}]}], \"note\": \"hi\","
        " \"time\": 1, \"user\": 12, \"id\": 9}\r\n"
        "{\"id\":\"r3\",\"user\":\"\\u00e9\",\"time\":4102444799,\"candidates\":[{\"item\":\"a\",\"label\":1}]}";
    bad_list bad = {0};
    char err[LSIM_ERRLEN];
    int rc;
    request_set *s = read_text(text, 0, NULL, &bad, 0, &rc, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(bad.n, 0, "%s", bad.msg[0]);
    cr_assert_eq(request_set_size(s), 3);
    cr_expect_eq(request_set_candidates(s), 4);
    cr_expect_eq(request_set_max_n(s), 2);
    expect_request(s, 0, "r1", "u7", 1512259200, 2, (const char *[]){"i1", "55"}, (const char *[]){"c1", NULL},
                   (const float[]){1, 0});
    expect_request(s, 1, "9", "12", 1, 1, (const char *[]){"z"}, (const char *[]){NULL}, (const float[]){0});
    expect_request(s, 2, "r3", "\xc3\xa9", 4102444799, 1, (const char *[]){"a"}, (const char *[]){NULL},
                   (const float[]){1});
    request_view v;
    request_set_get(s, 2, &v);
    cr_expect_eq(v.line, 4);
    cr_expect_eq(v.user_no, 2);
    cr_expect_eq(request_set_users(s), 3);
    request_set_free(s);
}

/* Each bad line is dropped with a message naming the file, the line and the
 * field; the good lines around them are all kept. */
Test(request_log, json_bad_lines)
{
    static const struct { const char *line, *why; } bad_lines[] = {
        {"{\"id\": 1, \"user\": 2, \"time\": 3}", "no candidates"},
        {"{\"id\": 1, \"user\": 2, \"candidates\": [{\"item\": 1, \"label\": 1}]}", "no \"time\""},
        {"{\"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 1}]}", "no \"id\""},
        {"{\"id\": 1, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 1}]}", "no \"user\""},
        {"{\"id\": 1, \"user\": 2, \"time\": 0, \"candidates\": [{\"item\": 1, \"label\": 1}]}", "time: 0 is outside"},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 2}]}",
         "candidates[0].label: 2 is outside [0, 1]"},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 1}, {\"label\": 0}]}",
         "candidates[1]: no \"item\""},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": \"\", \"label\": 1}]}",
         "candidates[0].item: empty id"},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1}]}", "candidates[0]: no \"label\""},
        {"{\"id\": 1, \"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": []}", "\"id\" given twice"},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 1}]} x", "trailing 'x'"},
        {"{\"id\": 1, \"user\": \"a\\u0000\", \"time\": 3, \"candidates\": []}", "NUL"},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 1},"
         " {\"item\": 2, \"label\": 0}, {\"item\": 3, \"label\": 0}, {\"item\": 4, \"label\": 0},"
         " {\"item\": 5, \"label\": 0}]}", "more than 4 candidates"},
        {"[1, 2]", "expected a request object"},
        {"{\"id\": 1, \"user\": 2, \"time\": 3, \"candidates\": [{\"item\": 1, \"label\": 1}", "expected ',' or ']', found the end"},
    };
    size_t nb = sizeof bad_lines / sizeof bad_lines[0];
    const char *good = "{\"id\": \"g\", \"user\": \"u\", \"time\": 5, \"candidates\": [{\"item\": \"i\", \"label\": 1}]}";
    /* a user id of 256 bytes: over LSIM_MAX_ID_LEN */
    char longid[LSIM_MAX_ID_LEN + 2];
    memset(longid, 'k', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    size_t len = 0;
    len += (size_t)snprintf(text + len, cap - len, "%s\n", good);
    for (size_t i = 0; i < nb; i++) len += (size_t)snprintf(text + len, cap - len, "%s\n%s\n", bad_lines[i].line, good);
    len += (size_t)snprintf(text + len, cap - len,
                            "{\"id\": 1, \"user\": \"%s\", \"time\": 3, \"candidates\": []}\n%s\n", longid, good);
    bad_list bad = {0};
    char err[LSIM_ERRLEN];
    int rc;
    request_set *s = read_text(text, 0, NULL, &bad, 0, &rc, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(request_set_size(s), nb + 2, "the good requests: %zu", request_set_size(s));
    cr_expect_eq(request_set_bad(s), nb + 1);
    cr_assert_eq(bad.n, nb + 1);
    for (size_t i = 0; i < nb && i < 15; i++) {
        char where[64];
        snprintf(where, sizeof where, "r.log:%zu: byte ", 2 * i + 2);
        cr_expect(strstr(bad.msg[i], where) != NULL, "line %zu: '%s' lacks '%s'", 2 * i + 2, bad.msg[i], where);
        cr_expect(strstr(bad.msg[i], bad_lines[i].why) != NULL, "'%s' lacks '%s'", bad.msg[i], bad_lines[i].why);
    }
    cr_expect(strstr(bad.msg[nb], "user: longer than 255 bytes") != NULL, "%s", bad.msg[nb]);
    for (size_t i = 0; i < request_set_size(s); i++) {
        request_view v;
        request_set_get(s, i, &v);
        cr_expect_str_eq(v.id, "g");
        cr_expect_eq(v.n, 1);
        cr_expect_eq(v.line, 2 * i + 1);
    }
    request_set_free(s);

    /* strict: the first bad line is the error */
    memset(&bad, 0, sizeof bad);
    s = read_text(text, 0, NULL, &bad, 1, &rc, err);
    cr_expect_eq(rc, LSIM_E_FORMAT);
    cr_expect_null(s);
    cr_expect(strstr(err, "r.log:2: byte ") != NULL && strstr(err, "no candidates") != NULL, "%s", err);
    free(text);
}

Test(request_log, delimited)
{
    const char *cols = "request=1,user=2,item=3,category=4,ts=5,label=6";
    const char *text = "a,u1,i1,c1,100,1\n"
                       "a,u1,i2,c2,100,0\n"
                       "b,u2,i3,c1,200,0\n"
                       "b,u2,i4,c1,200,1\n"
                       "b,u2,i5,c2,200,0\n";
    bad_list bad = {0};
    char err[LSIM_ERRLEN];
    int rc;
    request_set *s = read_text(text, 1, cols, &bad, 0, &rc, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(bad.n, 0);
    cr_assert_eq(request_set_size(s), 2);
    expect_request(s, 0, "a", "u1", 100, 2, (const char *[]){"i1", "i2"}, (const char *[]){"c1", "c2"},
                   (const float[]){1, 0});
    expect_request(s, 1, "b", "u2", 200, 3, (const char *[]){"i3", "i4", "i5"}, (const char *[]){"c1", "c1", "c2"},
                   (const float[]){0, 1, 0});
    request_set_free(s);

    /* users are numbered in order of first appearance, over many (the table grows) */
    size_t cap = 4000 * 40, len = 0;
    char *many = malloc(cap);
    for (int i = 0; i < 4000; i++)
        len += (size_t)snprintf(many + len, cap - len, "r%d,user%d,i,c,%d,1\n", i, (i * 7) % 1500, 100 + i);
    s = read_text(many, 1, cols, &bad, 0, &rc, err);
    free(many);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(request_set_size(s), 4000);
    cr_expect_eq(request_set_users(s), 1500);
    uint32_t first_no[1500];
    for (int u = 0; u < 1500; u++) first_no[u] = UINT32_MAX;
    uint32_t next = 0;
    for (int i = 0; i < 4000; i++) {
        request_view v;
        request_set_get(s, (size_t)i, &v);
        int u = (i * 7) % 1500;
        if (first_no[u] == UINT32_MAX) first_no[u] = next++;
        cr_assert_eq(v.user_no, first_no[u], "request %d (user%d): number %u, want %u", i, u, v.user_no, first_no[u]);
    }
    request_set_free(s);

    /* A row of another user, a bad label, a bad row between two requests:
     * each drops what it may belong to, and says so; the rest is kept. */
    const char *bad_text = "a,u1,i1,c1,100,1\n"
                           "a,u9,i2,c2,100,0\n" /* user differs: request a dropped */
                           "b,u2,i3,c1,200,0\n"
                           "b,u2,i4,c1,200,2\n" /* bad label: b dropped */
                           "b,u2,i5,c1,200,0\n"
                           "c,u3,i6,c1,300,1\n"
                           "d,u3,i7,c1\n"       /* bad row after c: c dropped, and d (its first row?) */
                           "d,u3,i8,c1,400,0\n"
                           "e,u4,i9,c1,500,1\n"
                           "e,u4,i9,c1,501,0\n" /* ts differs: e dropped */
                           "f,u5,i1,c1,600,1\n";
    memset(&bad, 0, sizeof bad);
    s = read_text(bad_text, 1, cols, &bad, 0, &rc, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(request_set_size(s), 1, "kept %zu", request_set_size(s));
    expect_request(s, 0, "f", "u5", 600, 1, (const char *[]){"i1"}, (const char *[]){"c1"}, (const float[]){1});
    static const char *const want[] = {
        "r.log:2: request a dropped: user differs",
        "r.log:4: label: want 0 or 1",
        "r.log:3: request b dropped: a bad row follows",
        "r.log:7: ", /* the bad row itself */
        "r.log:6: request c dropped: a bad row follows",
        "r.log:8: request d dropped: the bad row before it may be its first",
        "r.log:10: request e dropped: ts differs",
    };
    cr_assert_eq(bad.n, 7, "%zu messages", bad.n);
    for (size_t i = 0; i < 7; i++)
        cr_expect(strstr(bad.msg[i], want[i]) != NULL, "message %zu '%s' lacks '%s'", i, bad.msg[i], want[i]);
    request_set_free(s);

    /* a mapping without request or label is refused */
    request_log_spec sp;
    request_log_spec_default(&sp);
    sp.delimited = 1;
    cr_assert_eq(log_spec_parse_columns(&sp.log, "user=1,item=2,ts=3", err, sizeof err), 0);
    cr_expect_eq(request_log_read(&s, "/dev/null", &sp, err, sizeof err), LSIM_E_INVAL);
    cr_expect(strstr(err, "request and label") != NULL, "%s", err);
}

/* Found by tests/fuzz/fuzz_request_log: a file whose first line is empty
 * wrote the line's NUL through a buffer not yet allocated. */
Test(request_log, empty_first_line)
{
    const char *texts[] = {"\n", "\r\n", "\n\n{\"id\": \"r1\", \"user\": \"u\", \"time\": 5, "
                                         "\"candidates\": [{\"item\": \"3\", \"label\": 1}]}\n"};
    for (size_t t = 0; t < 3; t++) {
        bad_list bad = {0};
        char err[LSIM_ERRLEN];
        int rc;
        request_set *s = read_text(texts[t], 0, NULL, &bad, 1, &rc, err);
        cr_assert_eq(rc, 0, "text %zu: %s", t, err);
        cr_expect_eq(request_set_size(s), t == 2 ? 1u : 0u);
        cr_expect_eq(bad.n, 0);
        request_set_free(s);
    }
}

Test(request_log, missing_file)
{
    request_log_spec sp;
    request_log_spec_default(&sp);
    request_set *s;
    char err[LSIM_ERRLEN];
    cr_expect_eq(request_log_read(&s, "/nonexistent/r.jsonl", &sp, err, sizeof err), LSIM_E_IO);
    cr_expect(strstr(err, "/nonexistent/r.jsonl: No such file") != NULL, "%s", err);
}
