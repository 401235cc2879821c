/*
 * test_cli.c: end-to-end tests of the `lsim` command, run as a separate
 * process through tu_run_lsim: usage errors and exit codes, the generator,
 * index build (Taobao, Amazon, generic CSV), bad-line reporting and --strict,
 * query / dump / stats JSON against a brute force over logs written here,
 * verify on corrupted copies, missing and existing index directories.
 *
 * Not tested here: the index internals (tests/test_index.c does that through
 * the library). Every expectation is computed from the input files this test
 * writes (or the shared samples it parses itself) or worked out by hand, never
 * taken from lsim's own output. JSON is checked with a small strict parser
 * below, so a malformed document fails the test rather than a strstr.
 */
#include "tests/json_dom.h"
#include "tests/ref_log.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Runs lsim with the given arguments (no NULL needed); the exit status, -1 on a signal. */
#define RUN(out, err, ...) tu_run_lsim((const char *const[]){__VA_ARGS__, NULL}, (out), (err))

/* ---- small helpers ---- */

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    cr_assert(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static char *read_all(const char *path, size_t *len)
{
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static void write_all(const char *path, const void *data, size_t len)
{
    cr_assert_eq(tu_write_file(path, data, len), 0, "cannot write %s", path);
}

static void copy_file(const char *from, const char *to)
{
    cr_assert_eq(tu_copy_file(from, to), 0, "cannot copy %s to %s", from, to);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries in dir other than . and .. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* How many lines of text start with prefix. */
static int lines_starting_with(const char *text, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, pl)) n++;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return n;
}

/* Parses stdout of a command that must have succeeded. */
static void parse_ok(const char *out, jval *v, const char *what)
{
    cr_assert(out, "%s: no output", what);
    cr_assert_eq(jparse(out, v), 0, "%s: output is not valid JSON: %s", what, out);
}

Test(cli_json_parser, accepts_valid_rejects_invalid)
{
    /* the parser the other tests rely on */
    jval v;
    cr_assert_eq(jparse(" {\"a\": [1, -2, 3.5e1, \"x\\\"\\\\\\t\\u0001\\u00e9\"], \"b\": null, \"c\": {}}\n", &v), 0);
    const jval *a = jget(&v, "a");
    cr_assert(a && a->kind == J_ARR && a->n == 4);
    cr_assert(a->items[0].is_int && a->items[0].i == 1);
    cr_assert(a->items[1].is_int && a->items[1].i == -2);
    cr_assert(!a->items[2].is_int && a->items[2].d == 35.0);
    cr_assert_str_eq(a->items[3].str, "x\"\\\t\x01\xc3\xa9");
    cr_assert_eq(jget(&v, "b")->kind, J_NULL);
    cr_assert(jget(&v, "c")->kind == J_OBJ && jget(&v, "c")->n == 0);
    cr_assert_null(jget(&v, "d"));
    jfree(&v);
    static const char *const bad[] = {"",        "{",           "{\"a\": 1,}", "[1 2]",  "{\"a\": 1, \"a\": 2}",
                                      "\"\t\"", "01",          "{} x",        "[\"\\x\"]", "{a: 1}",
                                      "1.",      "[\"\\u00\"]", "nul",         "-",      "[1,]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_neq(jparse(bad[i], &v), 0, "accepted invalid JSON «%s»", bad[i]);
}

/* ---- the reference (tests/ref_log.h) and its summaries ---- */

/* The distinct values of one field. */
static size_t ref_distinct(const ref_log *r, size_t field_offset)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *s = (const char *)&r->ev[i] + field_offset;
        size_t j = 0;
        for (; j < i; j++)
            if (!strcmp((const char *)&r->ev[j] + field_offset, s)) break;
        if (j == i) n++;
    }
    return n;
}

/* Ids with bytes JSON must escape (quote, backslash, tab, a control byte) and UTF-8. */
static const char *const odd_users[] = {"1", "2", "u\"q", "back\\slash", "\xc3\xa9t\xc3\xa9", "7"};
static const char *const odd_cats[] = {"10", "11", "12", "x\"y", "13"};
static const char *const odd_items[] = {"tab\there", "ctl\x01x", "sl/ash"};
static const char *const taobao_types[] = {"pv", "buy", "cart", "fav"};

typedef struct log_shape {
    size_t lines;
    int users, items, cats; /* how many distinct of each (odd ids when odd) */
    int ts_span;            /* timestamps in [1500000000, +ts_span) */
    int odd;                /* use the odd ids above */
} log_shape;

/* A random Taobao-format log with many collisions: equal timestamps, exact
 * duplicate lines, one dominant user. Each line also goes into ref. */
static void random_log(const char *path, ref_log *ref, uint64_t *seed, const log_shape *s)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    char prev[1024] = "";
    ref_event prev_ev = {0};
    for (size_t l = 0; l < s->lines; l++) {
        uint64_t r = tu_rand(seed);
        if (prev[0] && r % 10 == 0) { /* an exact duplicate of the previous line */
            fputs(prev, f);
            ref_add(ref, prev_ev.user, prev_ev.item, prev_ev.cat, prev_ev.type, prev_ev.ts);
            continue;
        }
        char u[64], it[64], c[64];
        int ui = (r >> 8) % 5 < 2 ? 0 : (int)(tu_rand(seed) % (uint64_t)s->users);
        int ci = (int)(tu_rand(seed) % (uint64_t)s->cats);
        int ii = (int)(tu_rand(seed) % (uint64_t)s->items);
        if (s->odd) {
            snprintf(u, sizeof u, "%s", odd_users[ui % 6]);
            snprintf(c, sizeof c, "%s", odd_cats[ci % 5]);
            if (ii < 3) snprintf(it, sizeof it, "%s", odd_items[ii]);
            else snprintf(it, sizeof it, "i%d", ii);
        } else {
            snprintf(u, sizeof u, "u%d", ui);
            snprintf(c, sizeof c, "c%d", ci);
            snprintf(it, sizeof it, "i%d", ii);
        }
        const char *t = taobao_types[tu_rand(seed) % 4];
        int64_t ts = 1500000000 + (int64_t)(tu_rand(seed) % (uint64_t)s->ts_span);
        snprintf(prev, sizeof prev, "%s,%s,%s,%s,%lld\n", u, it, c, t, (long long)ts);
        fputs(prev, f);
        ref_add(ref, u, it, c, t, ts);
        prev_ev = ref->ev[ref->n - 1];
    }
    cr_assert_eq(fclose(f), 0);
}

static void build_ok(const char *idx, const char *log)
{
    char *err = NULL;
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", log);
    cr_assert_eq(rc, 0, "build of %s failed (%d): %s", log, rc, err);
    free(err);
}

/* stats --json, parsed; the caller frees v. */
static void stats_json(const char *idx, jval *v)
{
    char *out = NULL, *err = NULL;
    int rc = RUN(&out, &err, "index", "stats", "--index", idx, "--json");
    cr_assert_eq(rc, 0, "stats failed (%d): %s", rc, err);
    parse_ok(out, v, "index stats --json");
    cr_assert_eq(v->kind, J_OBJ);
    free(out);
    free(err);
}

/* ---- 1. usage ---- */

Test(cli_usage, help_of_every_command)
{
    const char *const helps[][4] = {
        {"--help", NULL},          {"gen", "--help", NULL},     {"gen", "log", "--help", NULL},
        {"index", "--help", NULL}, {"index", "build", "--help", NULL}, {"index", "append", "--help", NULL},
        {"index", "stats", "--help", NULL}, {"index", "verify", "--help", NULL}, {"index", "dump", "--help", NULL},
        {"index", "uic", "--help", NULL},
        {"query", "--help", NULL}, {"train", "--help", NULL}, {"eval", "--help", NULL},
        {"score", "--help", NULL}, {"explain", "--help", NULL},
    };
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = tu_run_lsim(helps[i], &out, &err);
        cr_assert_eq(rc, 0, "lsim %s %s: exit %d", helps[i][0], helps[i][1] ? helps[i][1] : "", rc);
        cr_assert(strstr(out, "usage:"), "lsim %s %s: no usage line on stdout: %s", helps[i][0],
                  helps[i][1] ? helps[i][1] : "", out);
        free(out);
        free(err);
    }
    char *out = NULL, *err = NULL;
    cr_assert_eq(RUN(&out, &err, "version"), 0);
    cr_assert(!strncmp(out, "lsim ", 5), "version: %s", out);
    free(out);
    free(err);
}

Test(cli_usage, no_command_and_unknown_commands_exit_2)
{
    const char *const none[] = {NULL};
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run_lsim(none, &out, &err), 2);
    cr_assert(strstr(err, "usage:"), "lsim alone prints the usage on stderr: %s", err);
    free(out);
    free(err);
    cr_assert_eq(RUN(NULL, &err, "frobnicate"), 2);
    cr_assert(strstr(err, "frobnicate"), "the message names the unknown command: %s", err);
    free(err);
    cr_assert_eq(RUN(NULL, NULL, "index"), 2);
    cr_assert_eq(RUN(NULL, NULL, "index", "frobnicate"), 2);
    cr_assert_eq(RUN(NULL, NULL, "gen"), 2);
    cr_assert_eq(RUN(NULL, NULL, "gen", "table", "--users", "3", "--out", "/dev/null"), 2);
    cr_assert_eq(RUN(NULL, NULL, "query", "--index", "x", "--user", "1", "--frobnicate"), 2);
    cr_assert_eq(RUN(NULL, NULL, "index", "stats", "--index", "x", "--frobnicate"), 2);
    cr_assert_eq(RUN(NULL, NULL, "index", "stats", "--index", "x", "extra"), 2);
}

Test(cli_usage, missing_required_option_is_named)
{
    /* each: the arguments, then the option the message must name */
    static const char *const cases[][12] = {
        {"query", "--user", "1", NULL, "--index"},
        {"query", "--index", "x", NULL, "--user"},
        {"index", "build", "--input", "f", NULL, "--index"},
        {"index", "build", "--index", "x", NULL, "--input"},
        {"index", "append", "--index", "x", NULL, "--input"},
        {"index", "stats", NULL, "--index"},
        {"index", "verify", NULL, "--index"},
        {"index", "dump", "--user", "1", NULL, "--index"},
        {"index", "dump", "--index", "x", NULL, "--user"},
        {"gen", "log", "--out", "/dev/null", NULL, "--users"},
        {"gen", "log", "--users", "3", NULL, "--out"},
        {"index", "build", "--index", "x", "--input", "f", "--format", "amazon", NULL, "--item-info"},
        {"index", "build", "--index", "x", "--input", "f", "--format", "csv", NULL, "--columns"},
        {"index", "uic", "--index", "x", NULL, "--uic"},
        {"index", "uic", "--uic", "x", NULL, "--index"},
        {"index", "build", "--index", "x", "--input", "f", "--uic-every", "5", NULL, "--uic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        while (cases[i][n]) n++;
        const char *opt = cases[i][n + 1];
        char *err = NULL;
        int rc = tu_run_lsim(cases[i], NULL, &err);
        cr_assert_eq(rc, 2, "case %zu (lacks %s): exit %d, want 2", i, opt, rc);
        cr_assert(strstr(err, opt), "case %zu: the message does not name %s: %s", i, opt, err);
        free(err);
    }
}

Test(cli_usage, bad_numbers_exit_2)
{
    static const char *const cases[][10] = {
        {"query", "--index", "x", "--user", "1", "-k", "abc", NULL},
        {"query", "--index", "x", "--user", "1", "-k", "", NULL},
        {"query", "--index", "x", "--user", "1", "-k", "-1", NULL},
        {"query", "--index", "x", "--user", "1", "-k", "1000001", NULL},
        {"query", "--index", "x", "--user", "1", "--before", "12x", NULL},
        {"query", "--index", "x", "--user", "1", "--before", "1.5", NULL},
        {"query", "--index", "x", "--user", "1", "--before", "99999999999999999999", NULL},
        {"gen", "log", "--users", "1x", "--out", "/dev/null", NULL},
        {"gen", "log", "--users", "3", "--seed", "-1", "--out", "/dev/null", NULL},
        {"index", "build", "--index", "x", "--input", "f", "--ts-min", "1.5", NULL},
        {"index", "build", "--index", "x", "--input", "f", "--mem-limit", "x", NULL},
        {"index", "build", "--index", "x", "--input", "f", "--shard", "3/3", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        int rc = tu_run_lsim(cases[i], NULL, &err);
        cr_assert_eq(rc, 2, "case %zu: exit %d, want 2 (%s)", i, rc, err);
        cr_assert(err && *err, "case %zu: no message", i);
        free(err);
    }
}

Test(cli_usage, train_options_that_do_not_go_together)
{
    /* each: the arguments, then what the message must say */
    static const char *const cases[][13] = {
        {"train", "--index", "x", "--model", "sim-hard", "--out", "y", "--gsu-pool", "sum", NULL, "sim-soft"},
        {"train", "--index", "x", "--model", "sim-soft", "--out", "y", "--time-info", "--recency", "last,x", NULL,
         "'x' is not one of last, cat, gsu, none"},
        {"train", "--index", "x", "--model", "sim-soft", "--out", "y", "--time-info", "--recency", "cat", NULL,
         "cat needs last"},
        {"train", "--index", "x", "--model", "sim-hard", "--out", "y", "--time-info", "--recency", "last,gsu", NULL,
         "gsu is for sim-soft"},
        {"train", "--index", "x", "--model", "sim-soft", "--out", "y", "--recency", "last", NULL, "--time-info"},
        {"train", "--index", "x", "--model", "din", "--out", "y", "--alpha-aux", "0", NULL, "--alpha-aux is for dien"},
        {"train", "--index", "x", "--model", "sim-soft", "--out", "y", "--gsu-pool", "max", NULL, "'max'"},
        {"train", "--index", "x", "--model", "sim-soft", "--out", "y", "--no-recency", NULL, "--time-info"},
        {"train", "--index", "x", "--model", "din", "--out", "y", "--time-info", NULL, "sim-hard and sim-soft"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        while (cases[i][n]) n++;
        const char *want = cases[i][n + 1];
        char *err = NULL;
        int rc = tu_run_lsim(cases[i], NULL, &err);
        cr_assert_eq(rc, 2, "case %zu: exit %d, want 2 (%s)", i, rc, err);
        cr_assert(err && strstr(err, want), "case %zu: the message does not say %s: %s", i, want, err);
        free(err);
    }
}

/* ---- 2. gen log ---- */

Test(cli_gen, deterministic_for_a_seed)
{
    char *dir = tu_tmpdir("cli");
    char *a = path_in(dir, "a.csv"), *b = path_in(dir, "b.csv"), *c = path_in(dir, "c.csv");
#define GEN_ARGS "--users", "30", "--min-len", "5", "--max-len", "300", "--days", "20"
    cr_assert_eq(RUN(NULL, NULL, "gen", "log", GEN_ARGS, "--seed", "5", "--out", a), 0);
    cr_assert_eq(RUN(NULL, NULL, "gen", "log", GEN_ARGS, "--seed", "5", "--out", b), 0);
    cr_assert_eq(RUN(NULL, NULL, "gen", "log", GEN_ARGS, "--seed", "6", "--out", c), 0);
    char *stdout_copy = NULL;
    cr_assert_eq(RUN(&stdout_copy, NULL, "gen", "log", GEN_ARGS, "--seed", "5", "--out", "-"), 0);
#undef GEN_ARGS
    size_t na = 0, nb = 0, nc = 0;
    char *da = read_all(a, &na), *db = read_all(b, &nb), *dc = read_all(c, &nc);
    cr_assert(da && db && dc);
    cr_assert(na > 0);
    cr_assert(na == nb && !memcmp(da, db, na), "the same seed gave different bytes (%zu vs %zu)", na, nb);
    cr_assert(na != nc || memcmp(da, dc, na), "a different seed gave the same bytes");
    cr_assert(strlen(stdout_copy) == na && !memcmp(stdout_copy, da, na), "--out - differs from the file");
    /* the log is Taobao format: every line indexes */
    size_t lines = 0;
    for (size_t i = 0; i < na; i++) lines += da[i] == '\n';
    char *idx = path_in(dir, "idx");
    build_ok(idx, a);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), (long long)lines);
    cr_assert_eq(jint(&s, "users"), 30);
    jfree(&s);
    cr_assert_eq(RUN(NULL, NULL, "gen", "log", "--users", "0", "--out", c), 2);
    free(da);
    free(db);
    free(dc);
    free(stdout_copy);
    tu_rmrf(dir);
}

/* ---- 3. Amazon sample ---- */

Test(cli_build, amazon_sample_unknown_categories)
{
    char *reviews = tu_shared_data("amazon/reviews-info_sample");
    char *info = tu_shared_data("amazon/item-info_sample");
    if (!reviews || !info) cr_skip_test("the shared Amazon sample (../shared/data/amazon) is absent");
    /* item-info: item -> category, the last line wins */
    size_t n_items = 0, cap_items = 256;
    char(*items)[64] = malloc(cap_items * sizeof *items);
    char(*icats)[64] = malloc(cap_items * sizeof *icats);
    FILE *f = fopen(info, "r");
    cr_assert(f);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char it[64], c[64];
        /* the sample has CRLF line ends: one trailing \r is stripped (docs/LOG_FORMATS.md) */
        cr_assert_eq(sscanf(line, "%63[^\t]\t%63[^\t\r\n]", it, c), 2, "item-info line: %s", line);
        size_t j = 0;
        while (j < n_items && strcmp(items[j], it)) j++;
        if (j == n_items) {
            if (n_items == cap_items) {
                cap_items *= 2;
                items = realloc(items, cap_items * sizeof *items);
                icats = realloc(icats, cap_items * sizeof *icats);
            }
            n_items++;
        }
        strcpy(items[j], it);
        strcpy(icats[j], c);
    }
    fclose(f);
    /* reviews: each an event; category from item-info or "unknown" */
    ref_log ref = {0};
    f = fopen(reviews, "r");
    cr_assert(f);
    size_t unknown = 0;
    while (fgets(line, sizeof line, f)) {
        char u[64], it[64], rating[16];
        long long ts;
        cr_assert_eq(sscanf(line, "%63[^\t]\t%63[^\t]\t%15[^\t]\t%lld", u, it, rating, &ts), 4, "review: %s", line);
        size_t j = 0;
        while (j < n_items && strcmp(items[j], it)) j++;
        unknown += j == n_items;
        ref_add(&ref, u, it, j < n_items ? icats[j] : "unknown", "review", ts);
    }
    fclose(f);
    cr_assert_eq(ref.n, 1000, "the sample has 1000 reviews");
    cr_assert_eq(unknown, 154, "154 reviews name an item absent from item-info");

    char *dir = tu_tmpdir("cli");
    char *idx = path_in(dir, "idx");
    char *err = NULL;
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--format", "amazon", "--input", reviews,
                 "--item-info", info);
    cr_assert_eq(rc, 0, "amazon build (%d): %s", rc, err);
    free(err);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), 1000);
    cr_assert_eq(jint(&s, "users"), (long long)ref_distinct(&ref, offsetof(ref_event, user)));
    cr_assert_eq(jint(&s, "items"), (long long)ref_distinct(&ref, offsetof(ref_event, item)));
    cr_assert_eq(jint(&s, "categories"), (long long)ref_distinct(&ref, offsetof(ref_event, cat)),
                 "the categories are those of the reviewed items plus 'unknown'");
    jfree(&s);

    /* every user: dump's categories, and query --cat unknown, against the reference */
    const ref_event **want = malloc(ref.n * sizeof *want);
    size_t seen_unknown = 0, users = 0;
    for (size_t i = 0; i < ref.n; i++) {
        const char *u = ref.ev[i].user;
        size_t j = 0;
        while (j < i && strcmp(ref.ev[j].user, u)) j++;
        if (j < i) continue; /* done already */
        users++;
        char *out = NULL;
        cr_assert_eq(RUN(&out, NULL, "index", "dump", "--index", idx, "--user", u, "--json"), 0, "dump %s", u);
        jval d;
        parse_ok(out, &d, "index dump --json");
        const jval *evs = jget(&d, "events");
        cr_assert(evs && evs->kind == J_ARR);
        size_t m = ref_search(&ref, u, NULL, INT64_MAX, ref.n, want);
        cr_assert_eq(evs->n, m, "user %s: %zu events dumped, want %zu", u, evs->n, m);
        size_t want_unknown = 0;
        for (size_t e = 0; e < m; e++) {
            const ref_event *w = want[m - 1 - e]; /* dump is oldest first */
            cr_assert_str_eq(jstr(&evs->items[e], "category"), w->cat, "user %s event %zu", u, e);
            cr_assert_str_eq(jstr(&evs->items[e], "item"), w->item);
            cr_assert_str_eq(jstr(&evs->items[e], "type"), "review");
            cr_assert_eq(jint(&evs->items[e], "ts"), w->ts);
            if (!strcmp(w->cat, "unknown")) want_unknown++;
        }
        seen_unknown += want_unknown;
        jfree(&d);
        free(out);
        if (want_unknown) {
            cr_assert_eq(RUN(&out, NULL, "query", "--index", idx, "--user", u, "--cat", "unknown", "-k", "1000",
                             "--json"),
                         0);
            jval q;
            parse_ok(out, &q, "query --json");
            const jval *qe = jget(&q, "events");
            cr_assert(qe && qe->kind == J_ARR);
            cr_assert_eq(qe->n, want_unknown, "user %s: query --cat unknown gives %zu, want %zu", u, qe->n,
                         want_unknown);
            jfree(&q);
            free(out);
        }
    }
    cr_assert_eq(seen_unknown, 154);
    cr_log_info("amazon sample: %zu users, %zu reviews of unknown items, all found", users, seen_unknown);
    free(want);
    ref_free(&ref);
    free(items);
    free(icats);
    free(reviews);
    free(info);
    tu_rmrf(dir);
}

/* ---- 4. generic CSV ---- */

/* Runs query --json and checks it against (item, ts, type[, category]) tuples given as a
 * NULL-terminated list of strings "item|ts|type|category". */
static void expect_query(const char *idx, const char *user, const char *cat, const char *before, const char *k,
                         const char *const *want)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = "query";
    argv[n++] = "--index";
    argv[n++] = idx;
    argv[n++] = "--user";
    argv[n++] = user;
    if (cat) {
        argv[n++] = "--cat";
        argv[n++] = cat;
    }
    if (before) {
        argv[n++] = "--before";
        argv[n++] = before;
    }
    if (k) {
        argv[n++] = "-k";
        argv[n++] = k;
    }
    argv[n++] = "--json";
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = tu_run_lsim(argv, &out, &err);
    cr_assert_eq(rc, 0, "query %s/%s: exit %d: %s", user, cat ? cat : "-", rc, err);
    jval v;
    parse_ok(out, &v, "query --json");
    cr_assert_str_eq(jstr(&v, "user"), user);
    const jval *evs = jget(&v, "events");
    cr_assert(evs && evs->kind == J_ARR);
    size_t m = 0;
    while (want[m]) m++;
    cr_assert_eq(evs->n, m, "query %s/%s before %s k %s: %zu events, want %zu: %s", user, cat ? cat : "-",
                 before ? before : "-", k ? k : "-", evs->n, m, out);
    for (size_t i = 0; i < m; i++) {
        char it[64], type[64], c[64];
        long long ts;
        cr_assert_eq(sscanf(want[i], "%63[^|]|%lld|%63[^|]|%63s", it, &ts, type, c), 4);
        const jval *e = &evs->items[i];
        cr_assert(!strcmp(jstr(e, "item"), it) && jint(e, "ts") == ts && !strcmp(jstr(e, "type"), type),
                  "query %s/%s event %zu: %s, want %s", user, cat ? cat : "-", i, out, want[i]);
        if (!cat) cr_assert_str_eq(jstr(e, "category"), c, "event %zu", i);
    }
    jfree(&v);
    free(out);
    free(err);
}

Test(cli_build, csv_columns_in_another_order)
{
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "events.tsv"), *idx = path_in(dir, "idx");
    /* ts, item, user, category, type (+ an ignored sixth column on some lines) */
    const char text[] = "when\twhat\twho\tcat\tkind\n"      /* 1: header */
                        "1000\ti1\talice\tshoes\tview\n"     /* 2 */
                        "1000\ti2\talice\tshoes\tbuy\n"      /* 3 */
                        "999\ti3\talice\tshoes\tview\n"      /* 4 */
                        "1001\ti4\talice\thats\tview\textra\n" /* 5 */
                        "1000\ti5\tbob\tshoes\tview\n"       /* 6 */
                        "1002\ti6\talice\tshoes\tcart\r\n"   /* 7: CRLF */
                        "1000\ti7\talice\tshoes\tfav\textra\n" /* 8 */
                        "998\ti1\talice\tshoes\tview";       /* 9: no final newline */
    write_all(log, text, sizeof text - 1);
    char *err = NULL;
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--format", "csv", "--input", log, "--columns",
                 "ts=1,user=3,item=2,type=5,category=4", "--delimiter", "\\t", "--header");
    cr_assert_eq(rc, 0, "csv build (%d): %s", rc, err);
    free(err);
    /* alice/shoes, newest first; at ts 1000 lines 8, 3, 2 */
    const char *const shoes[] = {"i6|1002|cart|shoes", "i7|1000|fav|shoes", "i2|1000|buy|shoes",
                                 "i1|1000|view|shoes", "i3|999|view|shoes", "i1|998|view|shoes", NULL};
    expect_query(idx, "alice", "shoes", NULL, NULL, shoes);
    expect_query(idx, "alice", "shoes", NULL, "6", shoes);
    const char *const first2[] = {"i6|1002|cart|shoes", "i7|1000|fav|shoes", NULL};
    expect_query(idx, "alice", "shoes", NULL, "2", first2);
    const char *const before1000[] = {"i3|999|view|shoes", "i1|998|view|shoes", NULL};
    expect_query(idx, "alice", "shoes", "1000", NULL, before1000);
    const char *const before1001[] = {"i7|1000|fav|shoes", "i2|1000|buy|shoes", NULL};
    expect_query(idx, "alice", "shoes", "1001", "2", before1001);
    const char *const all[] = {"i6|1002|cart|shoes", "i4|1001|view|hats", "i7|1000|fav|shoes",
                               "i2|1000|buy|shoes", "i1|1000|view|shoes", "i3|999|view|shoes",
                               "i1|998|view|shoes", NULL};
    expect_query(idx, "alice", NULL, NULL, NULL, all);
    const char *const hats[] = {"i4|1001|view|hats", NULL};
    expect_query(idx, "alice", "hats", NULL, NULL, hats);
    const char *const bob[] = {"i5|1000|view|shoes", NULL};
    expect_query(idx, "bob", "shoes", NULL, NULL, bob);
    const char *const none[] = {NULL};
    expect_query(idx, "bob", "hats", NULL, NULL, none);
    expect_query(idx, "alice", "shoes", "998", NULL, none);
    expect_query(idx, "alice", "shoes", NULL, "0", none);
    expect_query(idx, "carol", NULL, NULL, NULL, none);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), 8);
    cr_assert_eq(jint(&s, "users"), 2);
    cr_assert_eq(jint(&s, "items"), 7);
    cr_assert_eq(jint(&s, "categories"), 2);
    jfree(&s);
    tu_rmrf(dir);
}

Test(cli_build, csv_without_category_and_type)
{
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "events.csv"), *idx = path_in(dir, "idx");
    const char text[] = "u1,a,100\nu1,b,100\nu1,c,50\nu2,a,70\n";
    write_all(log, text, sizeof text - 1);
    char *err = NULL;
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--format", "csv", "--input", log, "--columns",
                 "user=1,item=2,ts=3");
    cr_assert_eq(rc, 0, "csv build (%d): %s", rc, err);
    free(err);
    /* docs/LOG_FORMATS.md: an unmapped category becomes `unknown`, an unmapped type `event` */
    const char *const u1[] = {"b|100|event|unknown", "a|100|event|unknown", "c|50|event|unknown", NULL};
    expect_query(idx, "u1", NULL, NULL, NULL, u1);
    expect_query(idx, "u1", "unknown", NULL, NULL, u1);
    const char *const u2[] = {"a|70|event|unknown", NULL};
    expect_query(idx, "u2", "unknown", NULL, NULL, u2);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), 4);
    cr_assert_eq(jint(&s, "categories"), 1);
    jfree(&s);
    tu_rmrf(dir);
}

/* ---- 5. bad lines ---- */

typedef struct bad_case {
    int line;
    const char *reason;
} bad_case;

/* Builds `log` (extra options after), checks exit 0, each expected `FILE:LINE: reason`
 * on stderr, the counts in the summary and --json, and the events indexed. */
static void check_bad_lines(const char *dir, const char *log, const bad_case *bad, size_t n_bad, long long good,
                            const char *const *extra)
{
    char *idx = path_in(dir, "idx");
    tu_rmrf(idx);
    const char *argv[20] = {"index", "build", "--index", idx, "--input", log, "--json"};
    int n = 7;
    for (size_t i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = tu_run_lsim(argv, &out, &err);
    cr_assert_eq(rc, 0, "build with bad lines: exit %d: %s", rc, err);
    for (size_t i = 0; i < n_bad && i < 10; i++) {
        char want[1024];
        snprintf(want, sizeof want, "%s:%d: %s\n", log, bad[i].line, bad[i].reason);
        cr_assert(strstr(err, want), "stderr lacks «%s»; it is:\n%s", want, err);
    }
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:", log);
    cr_assert_eq(lines_starting_with(err, prefix), n_bad < 10 ? (int)n_bad : 10, "bad lines shown:\n%s", err);
    cr_assert_eq(strstr(err, "further bad lines") != NULL, n_bad > 10, "the 'further' note:\n%s", err);
    char summary[64];
    snprintf(summary, sizeof summary, "(%zu bad lines skipped", n_bad);
    cr_assert(strstr(err, summary), "the summary lacks '%s':\n%s", summary, err);
    jval v;
    parse_ok(out, &v, "index build --json");
    cr_assert_eq(jint(&v, "bad_lines"), (long long)n_bad);
    cr_assert_eq(jint(&v, "events"), good);
    jfree(&v);
    stats_json(idx, &v);
    cr_assert_eq(jint(&v, "events"), good, "every good line is indexed");
    jfree(&v);
    free(out);
    free(err);
    free(idx);
}

static void put_line(FILE *f, const char *s)
{
    fputs(s, f);
    fputc('\n', f);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

Test(cli_bad_lines, each_kind_reported_good_lines_kept)
{
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "a.csv");
    char *longline = repeat('x', 65537), *id256 = repeat('q', 256), *id255 = repeat('q', 255);
    char buf[1024];
    FILE *f = fopen(log, "wb");
    put_line(f, "u1,i1,c1,pv,1500000000");     /* 1 good */
    put_line(f, longline);                      /* 2 */
    put_line(f, "");                            /* 3 */
    fwrite("u1,i\0x,c1,pv,1500000000\n", 1, 24, f); /* 4 */
    put_line(f, "u1,i1,c1,1500000000");         /* 5 */
    put_line(f, "u1");                          /* 6 */
    put_line(f, ",i1,c1,pv,1500000000");        /* 7 */
    put_line(f, "u2,i2,c2,buy,1500000001\r");   /* 8 good (CRLF) */
    put_line(f, "u1,,c1,pv,1500000000");        /* 9 */
    put_line(f, "u1,i1,,pv,1500000000");        /* 10 */
    put_line(f, "u1,i1,c1,pv,12a");             /* 11 */
    put_line(f, "u1,i1,c1,pv,4102444800");      /* 12 */
    put_line(f, "u3,i3,c3,cart,0");             /* 13 good: the lowest timestamp */
    fputs("u3,i3,c3,fav,4102444799", f);        /* 14 good: the highest, no final newline */
    fclose(f);
    const bad_case a[] = {
        {2, "line longer than 65536 bytes"},
        {3, "empty line"},
        {4, "NUL byte in line"},
        {5, "wrong field count: 4 fields, need 5"},
        {6, "wrong field count: 1 field, need 5"},
        {7, "empty user id"},
        {9, "empty item id"},
        {10, "empty category id"},
        {11, "non-numeric timestamp '12a'"},
        {12, "timestamp 4102444800 out of range [0, 4102444799]"},
    };
    check_bad_lines(dir, log, a, 10, 4, NULL);

    f = fopen(log, "wb");
    snprintf(buf, sizeof buf, "%s,i9,c9,pv,1500000000", id255);
    put_line(f, buf);                                  /* 1 good: a 255-byte id */
    put_line(f, "\r");                                 /* 2 */
    put_line(f, "u1,i1,c1,click,1500000000");          /* 3 */
    snprintf(buf, sizeof buf, "%s,i1,c1,pv,1500000000", id256);
    put_line(f, buf);                                  /* 4 */
    snprintf(buf, sizeof buf, "u1,%s,c1,pv,1500000000", id256);
    put_line(f, buf);                                  /* 5 */
    snprintf(buf, sizeof buf, "u1,i1,%s,pv,1500000000", id256);
    put_line(f, buf);                                  /* 6 */
    put_line(f, "u1,i1,c1,pv,99999999999999999999");   /* 7 */
    put_line(f, "u1,i1,c1,pv,-1");                     /* 8 */
    put_line(f, "u5,i5,c5,pv,0001500000000");          /* 9 good: leading zeros */
    put_line(f, "u1,i1,c1,pv,");                       /* 10 */
    put_line(f, "u1,i1,c1,pv,12345678901234567890123456789012345678901234567890x"); /* 11 */
    put_line(f, "u1,i1,c1,pv,1500000000,");            /* 12: 6 fields */
    fclose(f);
    const bad_case b[] = {
        {2, "empty line"},
        {3, "unknown behavior type 'click' (pv, buy, cart, fav)"},
        {4, "user id longer than 255 bytes"},
        {5, "item id longer than 255 bytes"},
        {6, "category id longer than 255 bytes"},
        {7, "timestamp 99999999999999999999 out of range [0, 4102444799]"},
        {8, "timestamp -1 out of range [0, 4102444799]"},
        {10, "non-numeric timestamp ''"},
        {11, "non-numeric timestamp '1234567890123456789012345678901234567890...'"},
        {12, "wrong field count: 6 fields, need 5"},
    };
    check_bad_lines(dir, log, b, 10, 2, NULL);

    /* the csv format: type ids and "at least" field counts; a narrowed timestamp range */
    f = fopen(log, "wb");
    put_line(f, "u1,i0,t0,150");        /* 1 good */
    put_line(f, "u1,i1,,100");          /* 2 */
    snprintf(buf, sizeof buf, "u1,i1,%s,100", id256);
    put_line(f, buf);                   /* 3 */
    put_line(f, "u1,i1");               /* 4 */
    put_line(f, "u1,i1,t1,100,extra");  /* 5 good */
    put_line(f, "u1,i1,t1,300");        /* 6: outside [100, 200] */
    put_line(f, "u1,i2,t2,200");        /* 7 good */
    fclose(f);
    const bad_case c[] = {
        {2, "empty type id"},
        {3, "type id longer than 255 bytes"},
        {4, "wrong field count: 2 fields, need at least 4"},
        {6, "timestamp 300 out of range [100, 200]"},
    };
    const char *const csv_opts[] = {"--format", "csv", "--columns", "user=1,item=2,type=3,ts=4",
                                    "--ts-min", "100", "--ts-max", "200", NULL};
    check_bad_lines(dir, log, c, 4, 3, csv_opts);
    free(longline);
    free(id256);
    free(id255);
    tu_rmrf(dir);
}

Test(cli_bad_lines, only_ten_shown_all_counted)
{
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "many.csv");
    FILE *f = fopen(log, "wb");
    bad_case bad[24];
    char reasons[24][64];
    int line = 0, n_bad = 0;
    for (int i = 0; i < 28; i++) {
        line++;
        if (i % 9 == 0) { /* 4 good lines: 1, 10, 19, 28 */
            fprintf(f, "u%d,i%d,c1,pv,1500000000\n", i, i);
            continue;
        }
        fprintf(f, "u%d,i%d,c1,pv,t%d\n", i, i, i);
        snprintf(reasons[n_bad], sizeof reasons[n_bad], "non-numeric timestamp 't%d'", i);
        bad[n_bad].line = line;
        bad[n_bad].reason = reasons[n_bad];
        n_bad++;
    }
    fclose(f);
    cr_assert_eq(n_bad, 24);
    check_bad_lines(dir, log, bad, 24, 4, NULL);
    /* the 11th bad line is not shown */
    char *err = NULL, *idx = path_in(dir, "idx2");
    cr_assert_eq(RUN(NULL, &err, "index", "build", "--index", idx, "--input", log), 0);
    char eleventh[600];
    snprintf(eleventh, sizeof eleventh, "%s:%d:", log, bad[10].line);
    cr_assert(!strstr(err, eleventh), "the 11th bad line is shown:\n%s", err);
    free(err);
    tu_rmrf(dir);
}

/*
 * Regression: a bad line that opens a batch of the reading thread (lines 1,
 * 8193, 16385, ... of each input) sat at arena offset 0, so its message
 * pointer read as NULL ("not bad"): it went unreported and was indexed with
 * empty ids. It must be reported, counted and stopped by --strict like any
 * other bad line.
 */
Test(cli_bad_lines, bad_first_line_of_a_batch)
{
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "a.csv"), *small = path_in(dir, "small.csv"), *idx = path_in(dir, "idx");
    FILE *f = fopen(log, "wb");
    put_line(f, "u1,i1,c1,pv,t0");                                             /* 1: bad */
    for (int l = 2; l <= 8192; l++) fprintf(f, "u%d,i%d,c1,pv,%d\n", l % 50, l, 1500000000 + l); /* good */
    put_line(f, "u2,i2,c2,pv,x");                                              /* 8193: bad */
    put_line(f, "u3,i3,c3,pv,1500000000");                                     /* 8194: good */
    fclose(f);
    char *out = NULL, *err = NULL;
    int rc = RUN(&out, &err, "index", "build", "--index", idx, "--input", log, "--json");
    cr_assert_eq(rc, 0, "build: exit %d: %s", rc, err);
    char want[600];
    snprintf(want, sizeof want, "%s:1: non-numeric timestamp 't0'\n", log);
    cr_assert(strstr(err, want), "line 1 is not reported:\n%s", err);
    snprintf(want, sizeof want, "%s:8193: non-numeric timestamp 'x'\n", log);
    cr_assert(strstr(err, want), "line 8193 is not reported:\n%s", err);
    jval v;
    parse_ok(out, &v, "index build --json");
    cr_assert_eq(jint(&v, "bad_lines"), 2);
    cr_assert_eq(jint(&v, "events"), 8192);
    jfree(&v);
    stats_json(idx, &v);
    cr_assert_eq(jint(&v, "events"), 8192);
    jfree(&v);
    cr_assert_eq(RUN(NULL, NULL, "index", "verify", "--index", idx), 0);
    free(out);
    free(err);
    write_all(small, "u1,i1,c1,pv,t0\nu1,i2,c1,pv,1500000000\n", 38);
    tu_rmrf(idx);
    rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", small, "--strict");
    cr_assert_eq(rc, 1, "strict build with a bad line 1: exit %d: %s", rc, err);
    cr_assert(!exists(idx));
    free(err);
    tu_rmrf(dir);
}

Test(cli_bad_lines, strict_build_writes_nothing_strict_append_changes_nothing)
{
    char *dir = tu_tmpdir("cli");
    char *good = path_in(dir, "good.csv"), *bad = path_in(dir, "bad.csv"), *idx = path_in(dir, "idx");
    const char g[] = "u1,i1,c1,pv,1500000000\nu1,i2,c1,buy,1500000005\nu2,i1,c2,pv,1500000001\n";
    const char b[] = "u3,i3,c3,pv,1500000002\nu3,i4,c3,pv,1500000003\nu1,i5,c1,pv,15000000x3\nu4,i6,c4,pv,1\n";
    write_all(good, g, sizeof g - 1);
    write_all(bad, b, sizeof b - 1);
    char *err = NULL;
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", good, "--input", bad, "--strict");
    cr_assert_eq(rc, 1, "strict build with a bad line: exit %d", rc);
    char want[600];
    snprintf(want, sizeof want, "%s:3:", bad);
    cr_assert(strstr(err, want), "the message names %s: %s", want, err);
    cr_assert(!exists(idx), "a failed strict build leaves no index directory");
    cr_assert_eq(dir_entries(dir), 2, "a failed strict build leaves nothing beside the logs");
    free(err);

    build_ok(idx, good);
    jval before, after;
    stats_json(idx, &before);
    cr_assert_eq(jint(&before, "events"), 3);
    char *dump_before = NULL, *dump_after = NULL;
    cr_assert_eq(RUN(&dump_before, NULL, "index", "dump", "--index", idx, "--user", "u1", "--json"), 0);
    rc = RUN(NULL, &err, "index", "append", "--index", idx, "--input", bad, "--strict");
    cr_assert_eq(rc, 1, "strict append with a bad line: exit %d", rc);
    cr_assert(strstr(err, want), "the message names %s: %s", want, err);
    free(err);
    stats_json(idx, &after);
    static const char *const keys[] = {"users", "items", "categories", "types", "events", "blocks"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_eq(jint(&after, keys[i]), jint(&before, keys[i]), "'%s' changed after a failed append", keys[i]);
    cr_assert_eq(RUN(&dump_after, NULL, "index", "dump", "--index", idx, "--user", "u1", "--json"), 0);
    cr_assert_str_eq(dump_after, dump_before);
    jfree(&after);
    free(dump_after);
    /* without --strict the good lines of bad.csv go in */
    cr_assert_eq(RUN(NULL, NULL, "index", "append", "--index", idx, "--input", bad), 0);
    stats_json(idx, &after);
    cr_assert_eq(jint(&after, "events"), 6);
    cr_assert_eq(jint(&after, "users"), 4);
    jfree(&after);
    jfree(&before);
    free(dump_before);
    tu_rmrf(dir);
}

/* ---- 6. query against a brute force ---- */

/* Runs one query and compares its JSON with the reference. */
static void check_one_query(const char *idx, const ref_log *ref, const ref_event **want, const char *user,
                            const char *cat, int64_t before, int has_before, long k, int q)
{
    char bbuf[32], kbuf[32];
    const char *argv[16];
    int n = 0;
    argv[n++] = "query";
    argv[n++] = "--index";
    argv[n++] = idx;
    argv[n++] = "--user";
    argv[n++] = user;
    if (cat) {
        argv[n++] = "--cat";
        argv[n++] = cat;
    }
    if (has_before) {
        snprintf(bbuf, sizeof bbuf, "%lld", (long long)before);
        argv[n++] = "--before";
        argv[n++] = bbuf;
    }
    if (k >= 0) {
        snprintf(kbuf, sizeof kbuf, "%ld", k);
        argv[n++] = "-k";
        argv[n++] = kbuf;
    }
    argv[n++] = "--json";
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = tu_run_lsim(argv, &out, &err);
    cr_assert_eq(rc, 0, "query %d: exit %d: %s", q, rc, err);
    size_t m = ref_search(ref, user, cat, has_before ? before : INT64_MAX, k >= 0 ? (size_t)k : 50, want);
    jval v;
    parse_ok(out, &v, "query --json");
    /* {"user": .., "category": .. or null, "events": [...]} and nothing else */
    cr_assert(v.kind == J_OBJ && v.n == 3, "query %d: not a 3-key object: %s", q, out);
    cr_assert_str_eq(jstr(&v, "user"), user, "query %d", q);
    const jval *c = jget(&v, "category");
    cr_assert(c, "query %d: no category key", q);
    if (cat) cr_assert(c->kind == J_STR && !strcmp(c->str, cat), "query %d: category %s", q, out);
    else cr_assert_eq(c->kind, J_NULL, "query %d: category without --cat is null: %s", q, out);
    const jval *evs = jget(&v, "events");
    cr_assert(evs && evs->kind == J_ARR, "query %d: events is not an array", q);
    cr_assert_eq(evs->n, m, "query %d (user %s cat %s before %s k %ld): %zu events, want %zu", q, user,
                 cat ? cat : "(any)", has_before ? bbuf : "-", k, evs->n, m);
    for (size_t i = 0; i < m; i++) {
        const jval *e = &evs->items[i];
        cr_assert(e->kind == J_OBJ && e->n == (cat ? 3u : 4u), "query %d event %zu: keys", q, i);
        const ref_event *w = want[i];
        cr_assert(!strcmp(jstr(e, "item"), w->item) && jint(e, "ts") == w->ts && !strcmp(jstr(e, "type"), w->type) &&
                      (cat || !strcmp(jstr(e, "category"), w->cat)),
                  "query %d (user %s cat %s before %s k %ld) event %zu: (%s, %lld, %s), "
                  "want (%s, %lld, %s) of line %zu",
                  q, user, cat ? cat : "(any)", has_before ? bbuf : "-", k, i, jstr(e, "item"), jint(e, "ts"),
                  jstr(e, "type"), w->item, (long long)w->ts, w->type, w->line + 1);
    }
    jfree(&v);
    free(out);
    free(err);
}

Test(cli_query, matches_brute_force)
{
    uint64_t seed = 2024;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    const log_shape shape = {400, 6, 40, 5, 60, 1};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    const ref_event **want = malloc(ref.n * sizeof *want);
    int empty = 0;
    for (int q = 0; q < 200; q++) {
        const ref_event *pick = &ref.ev[tu_rand(&seed) % ref.n];
        const char *user = pick->user, *cat = pick->cat;
        uint64_t r = tu_rand(&seed);
        if (r % 11 == 0) user = "nobody";
        if (r % 4 == 0) cat = NULL;
        else if (r % 13 == 1) cat = "nocat";
        int64_t before = 0;
        int has_before = 1;
        switch (tu_rand(&seed) % 7) {
        case 0: before = pick->ts; break;
        case 1: before = pick->ts - 1; break;
        case 2: before = pick->ts + 1; break;
        case 3: has_before = 0; break;
        case 4: before = 1500000000; break; /* before everything */
        case 5: before = INT64_MIN; break;
        default: before = ref.ev[tu_rand(&seed) % ref.n].ts; break;
        }
        long k;
        switch (tu_rand(&seed) % 5) {
        case 0: k = -1; break; /* the default, 50 */
        case 1: k = 1000; break;
        case 2: k = 0; break;
        default: k = (long)(tu_rand(&seed) % 12) + 1; break;
        }
        check_one_query(idx, &ref, want, user, cat, before, has_before, k, q);
        if (!strcmp(user, "nobody") || (cat && !strcmp(cat, "nocat"))) empty++;
    }
    cr_assert(empty >= 10, "only %d queries of unknown users or categories", empty);
    free(want);
    ref_free(&ref);
    tu_rmrf(dir);
}

/* ---- 7. stats ---- */

static long long file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return (long long)st.st_size;
}

Test(cli_stats, keys_and_counts_match_the_input)
{
    uint64_t seed = 77;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *log2 = path_in(dir, "log2.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    const log_shape shape = {900, 25, 150, 9, 500, 0};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    for (int round = 0; round < 2; round++) {
        jval s;
        stats_json(idx, &s);
        static const char *const keys[] = {"users", "items", "categories", "events", "bytes", "bytes_per_event"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const jval *v = jget(&s, keys[i]);
            cr_assert(v && v->kind == J_NUM, "stats --json lacks the number '%s'", keys[i]);
        }
        cr_assert_eq(jint(&s, "events"), (long long)ref.n);
        cr_assert_eq(jint(&s, "users"), (long long)ref_distinct(&ref, offsetof(ref_event, user)));
        cr_assert_eq(jint(&s, "items"), (long long)ref_distinct(&ref, offsetof(ref_event, item)));
        cr_assert_eq(jint(&s, "categories"), (long long)ref_distinct(&ref, offsetof(ref_event, cat)));
        cr_assert_eq(jint(&s, "types"), (long long)ref_distinct(&ref, offsetof(ref_event, type)));
        char *data = path_in(idx, "data.mdb"), *lock = path_in(idx, "lock.mdb");
        long long bytes = file_size(data) + file_size(lock);
        cr_assert_eq(jint(&s, "bytes"), bytes, "bytes = data.mdb + lock.mdb");
        double bpe = jget(&s, "bytes_per_event")->d, want_bpe = (double)bytes / (double)ref.n;
        cr_assert(bpe > want_bpe * 0.999 && bpe < want_bpe * 1.001, "bytes_per_event %f, want %f", bpe, want_bpe);
        jfree(&s);
        free(data);
        free(lock);
        if (round == 0) { /* an append: new and old users, items, categories */
            const log_shape more = {300, 40, 200, 12, 500, 0};
            random_log(log2, &ref, &seed, &more);
            cr_assert_eq(RUN(NULL, NULL, "index", "append", "--index", idx, "--input", log2), 0);
        }
    }
    ref_free(&ref);
    tu_rmrf(dir);
}

/* ---- 8. verify ---- */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

typedef struct val_loc {
    size_t node; /* offset of the LMDB leaf node */
    size_t off;  /* offset of its value */
    size_t len;
} val_loc;

/* Finds the values of the `ubt` database (the event blocks) in an LMDB
 * data.mdb, knowing only LMDB's page layout (lmdb.h / mdb.c, little-endian
 * x86-64): they are the inline values of leaf nodes with 12-byte keys (no
 * other database of an index has 12-byte keys). Returns the count; *psize
 * gets the page size. */
static size_t find_block_values(const unsigned char *d, size_t len, val_loc *out, size_t cap, size_t *psize)
{
    if (len < 64 || rd32(d + 16) != 0xBEEFC0DEu) return 0; /* MDB_meta.mm_magic */
    size_t ps = rd32(d + 40);                               /* mm_dbs[FREE_DBI].md_pad holds the page size */
    if (ps < 512 || (ps & (ps - 1))) return 0;
    *psize = ps;
    size_t n = 0;
    for (size_t pg = 2; (pg + 1) * ps <= len; pg++) {
        const unsigned char *p = d + pg * ps;
        uint16_t flags = rd16(p + 10), lower = rd16(p + 12);
        if (flags & 0x04) { /* P_OVERFLOW: skip its pages */
            uint32_t pages = rd32(p + 12);
            if (pages > 1) pg += pages - 1;
            continue;
        }
        if (!(flags & 0x02) || (flags & 0x20) || lower < 16 || lower > ps) continue; /* leaf, not LEAF2 */
        for (size_t i = 0; i < (size_t)(lower - 16) / 2; i++) {
            size_t node = rd16(p + 16 + 2 * i);
            if (node < 16 || node + 8 > ps) continue;
            const unsigned char *nd = p + node;
            size_t vlen = rd16(nd) | (size_t)rd16(nd + 2) << 16;
            uint16_t nflags = rd16(nd + 4), ksize = rd16(nd + 6);
            if (ksize != 12 || nflags != 0 || node + 8 + ksize + vlen > ps) continue;
            if (n < cap) out[n] = (val_loc){pg * ps + node, pg * ps + node + 8 + ksize, vlen};
            n++;
        }
    }
    return n;
}

/* A copy of the index directory (data.mdb with `data` instead) at dst. */
static void write_index_copy(const char *src, const char *dst, const unsigned char *data, size_t len)
{
    tu_rmrf(dst);
    cr_assert_eq(mkdir(dst, 0755), 0);
    char *d = path_in(dst, "data.mdb"), *l = path_in(dst, "lock.mdb"), *sl = path_in(src, "lock.mdb");
    write_all(d, data, len);
    copy_file(sl, l);
    free(d);
    free(l);
    free(sl);
}

/* The distinct users of a log. */
static size_t ref_users(const ref_log *r, const char ***out)
{
    const char **u = malloc(r->n * sizeof *u);
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t j = 0;
        while (j < n && strcmp(u[j], r->ev[i].user)) j++;
        if (j == n) u[n++] = r->ev[i].user;
    }
    *out = u;
    return n;
}

/* Runs verify and a full query of every user on a (possibly corrupt) index:
 * every exit is 0 or 1, never a signal. Returns verify's status; *query_fail
 * gets how many queries exited 1. */
static int verify_and_query(const char *idx, const char **users, size_t n_users, int *query_fail, const char *what)
{
    char *out = NULL, *err = NULL;
    int v = RUN(&out, &err, "index", "verify", "--index", idx);
    cr_assert(v == 0 || v == 1, "%s: verify exit %d (a signal is -1): %s", what, v, err);
    if (v == 1)
        cr_assert(strstr(out, "CORRUPT") || strstr(err, "problem") || strstr(err, "lsim index verify:"),
                  "%s: verify exit 1 without a clear message: %s / %s", what, out, err);
    else
        cr_assert(!strncmp(out, "ok", 2), "%s: verify exit 0 prints ok: %s", what, out);
    free(out);
    free(err);
    *query_fail = 0;
    for (size_t u = 0; u < n_users; u++) {
        int q = RUN(NULL, &err, "query", "--index", idx, "--user", users[u], "-k", "1000000");
        cr_assert(q == 0 || q == 1, "%s: query of user %s: exit %d (a signal is -1): %s", what, users[u], q, err);
        if (q == 1) {
            cr_assert(err && strstr(err, "lsim query:"), "%s: query exit 1 without a message", what);
            *query_fail += 1;
        }
        free(err);
    }
    return v;
}

Test(cli_verify, good_index_verifies)
{
    uint64_t seed = 31;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    const log_shape shape = {3000, 6, 400, 4, 100000, 0};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    char *out = NULL, *err = NULL;
    cr_assert_eq(RUN(&out, &err, "index", "verify", "--index", idx), 0, "verify of a good index: %s", err);
    char want[64];
    snprintf(want, sizeof want, "%zu events checked, 0 problems", ref.n);
    cr_assert(!strncmp(out, "ok", 2) && strstr(out, want), "verify: %s", out);
    free(out);
    free(err);
    ref_free(&ref);
    tu_rmrf(dir);
}

Test(cli_verify, flipped_bytes_inside_event_blocks_are_detected)
{
    /* The bytes of event blocks, located in data.mdb through LMDB's page
     * layout: every flip there must be found by verify (a CRC-32C covers every
     * byte of a block) and by a query that reads the block, with exit 1 and no crash. */
    uint64_t seed = 8;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx"), *copy = path_in(dir, "copy");
    ref_log ref = {0};
    const log_shape shape = {3000, 6, 400, 4, 100000, 0};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    const char **users;
    size_t n_users = ref_users(&ref, &users);
    char *data_path = path_in(idx, "data.mdb");
    size_t len = 0, psize = 0;
    unsigned char *data = (unsigned char *)read_all(data_path, &len);
    cr_assert(data, "cannot read %s", data_path);
    val_loc blocks[4096];
    size_t n_blocks = find_block_values(data, len, blocks, 4096, &psize);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq((long long)n_blocks, jint(&s, "blocks"), "found %zu block values in data.mdb, stats says %lld",
                 n_blocks, jint(&s, "blocks"));
    jfree(&s);
    unsigned char *bad = malloc(len);
    int detected = 0, query_detected = 0;
    const int trials = 30;
    for (int t = 0; t < trials; t++) {
        memcpy(bad, data, len);
        const val_loc *b = &blocks[tu_rand(&seed) % n_blocks];
        int flips = 1 + (int)(tu_rand(&seed) % 3);
        for (int i = 0; i < flips; i++) {
            size_t at = b->off + tu_rand(&seed) % b->len;
            bad[at] ^= (unsigned char)(1 + tu_rand(&seed) % 255); /* a nonzero xor: the byte changes */
        }
        write_index_copy(idx, copy, bad, len);
        char what[64];
        snprintf(what, sizeof what, "trial %d", t);
        int qf;
        int v = verify_and_query(copy, users, n_users, &qf, what);
        detected += v == 1;
        query_detected += qf > 0;
    }
    cr_log_info("flips inside event blocks: verify detected %d of %d, a query failed in %d", detected, trials,
                query_detected);
    cr_assert_eq(detected, trials, "verify missed %d of %d corrupted blocks", trials - detected, trials);
    cr_assert_eq(query_detected, trials, "the full queries missed %d of %d corrupted blocks", trials - query_detected,
                 trials);
    free(bad);
    free(data);
    free(data_path);
    free(users);
    ref_free(&ref);
    tu_rmrf(dir);
}

/*
 * Random flips anywhere past LMDB's two meta pages: every run must exit 0 (the
 * flip hit unused space or was not read) or 1, never die of a signal, and some
 * trials must be found corrupt. Flips in LMDB's page or node headers, on which
 * liblmdb itself could fault (it has no page checksums), are refused before
 * LMDB reads the file (storage/lmdb_check.h); tests/test_corrupt.c covers every
 * kind of page systematically.
 */
Test(cli_verify, random_flips_in_data_mdb_never_crash)
{
    uint64_t seed = 1;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx"), *copy = path_in(dir, "copy");
    ref_log ref = {0};
    const log_shape shape = {3000, 6, 400, 4, 100000, 0};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    const char **users;
    size_t n_users = ref_users(&ref, &users);
    char *data_path = path_in(idx, "data.mdb");
    size_t len = 0;
    unsigned char *data = (unsigned char *)read_all(data_path, &len);
    cr_assert(data, "cannot read %s", data_path);
    size_t lo = 2 * 4096; /* past the meta pages */
    cr_assert(len > lo + 4096);
    unsigned char *bad = malloc(len);
    int detected = 0, query_detected = 0;
    const int trials = 30;
    for (int t = 0; t < trials; t++) {
        memcpy(bad, data, len);
        for (int i = 0; i < 4; i++) {
            size_t at = lo + tu_rand(&seed) % (len - lo);
            bad[at] ^= (unsigned char)(1 + tu_rand(&seed) % 255);
        }
        write_index_copy(idx, copy, bad, len);
        char what[64];
        snprintf(what, sizeof what, "trial %d", t);
        int qf;
        detected += verify_and_query(copy, users, n_users, &qf, what) == 1;
        query_detected += qf > 0;
    }
    cr_log_info("random flips: verify detected %d of %d, a query failed in %d", detected, trials, query_detected);
    cr_assert(detected > 0, "no trial was detected as corrupt");
    free(bad);
    free(data);
    free(data_path);
    free(users);
    ref_free(&ref);
    tu_rmrf(dir);
}

/*
 * Regression: a block's LMDB node whose size field is corrupt (here 1 MiB too
 * large) made verify and query read past the end of data.mdb (SIGBUS) while
 * checking the block. Blocks are at most 1,900 bytes (docs/FORMATS.md): a
 * larger value is refused as corrupt before it is read, exit 1.
 */
Test(cli_verify, oversized_block_value_is_refused)
{
    uint64_t seed = 9;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx"), *copy = path_in(dir, "copy");
    ref_log ref = {0};
    const log_shape shape = {3000, 6, 400, 4, 100000, 0};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    const char **users;
    size_t n_users = ref_users(&ref, &users);
    char *data_path = path_in(idx, "data.mdb");
    size_t len = 0, psize = 0;
    unsigned char *data = (unsigned char *)read_all(data_path, &len);
    cr_assert(data, "cannot read %s", data_path);
    val_loc blocks[4096];
    size_t n_blocks = find_block_values(data, len, blocks, 4096, &psize);
    cr_assert(n_blocks > 0);
    data[blocks[0].node + 2] += 0x10; /* mn_hi: the value's size + 1 MiB */
    write_index_copy(idx, copy, data, len);
    int qf;
    int v = verify_and_query(copy, users, n_users, &qf, "oversized block value");
    cr_assert_eq(v, 1, "verify must report the oversized block");
    cr_assert(qf > 0, "the query that reads the block must fail");
    free(data);
    free(data_path);
    free(users);
    ref_free(&ref);
    tu_rmrf(dir);
}

/* ---- 9. a missing index ---- */

Test(cli_missing, every_command_names_the_path)
{
    char *dir = tu_tmpdir("cli");
    char *idx = path_in(dir, "no-such-index"), *log = path_in(dir, "log.csv");
    write_all(log, "u1,i1,c1,pv,1500000000\n", 23);
    static const char *const cmds[][3] = {{"query", "--user", "u1"}, {"index", "stats", NULL},
                                          {"index", "verify", NULL},  {"index", "dump", "--user"},
                                          {"index", "append", "--input"}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *argv[10];
        int n = 0;
        argv[n++] = cmds[i][0];
        if (!strcmp(cmds[i][0], "index")) argv[n++] = cmds[i][1];
        argv[n++] = "--index";
        argv[n++] = idx;
        if (!strcmp(cmds[i][0], "query")) {
            argv[n++] = "--user";
            argv[n++] = "u1";
        } else if (cmds[i][2]) {
            argv[n++] = cmds[i][2];
            argv[n++] = !strcmp(cmds[i][2], "--user") ? "u1" : log;
        }
        argv[n] = NULL;
        char *out = NULL, *err = NULL;
        int rc = tu_run_lsim(argv, &out, &err);
        cr_assert_eq(rc, 1, "%s %s on a missing index: exit %d", argv[0], argv[1], rc);
        cr_assert(strstr(err, idx), "%s %s: the message does not name %s: %s", argv[0], argv[1], idx, err);
        cr_assert(!exists(idx), "%s %s created the missing index", argv[0], argv[1]);
        free(out);
        free(err);
    }
    tu_rmrf(dir);
}

/* ---- 10. build over an existing index ---- */

Test(cli_build, existing_index_needs_force)
{
    char *dir = tu_tmpdir("cli");
    char *a = path_in(dir, "a.csv"), *b = path_in(dir, "b.csv"), *idx = path_in(dir, "idx");
    const char ta[] = "u1,i1,c1,pv,1500000000\nu1,i2,c1,pv,1500000001\n";
    const char tb[] = "v1,j1,d1,pv,1500000000\nv2,j2,d2,buy,1500000001\nv3,j3,d3,cart,1500000002\n";
    write_all(a, ta, sizeof ta - 1);
    write_all(b, tb, sizeof tb - 1);
    build_ok(idx, a);
    char *dump_a = NULL, *err = NULL;
    cr_assert_eq(RUN(&dump_a, NULL, "index", "dump", "--index", idx, "--user", "u1", "--json"), 0);
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", b);
    cr_assert(rc == 1 || rc == 2, "build over an index without --force: exit %d", rc);
    cr_assert(strstr(err, idx) && strstr(err, "--force"), "the message names the index and --force: %s", err);
    free(err);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), 2, "the old index is intact");
    cr_assert_eq(jint(&s, "users"), 1);
    jfree(&s);
    char *dump = NULL;
    cr_assert_eq(RUN(&dump, NULL, "index", "dump", "--index", idx, "--user", "u1", "--json"), 0);
    cr_assert_str_eq(dump, dump_a);
    free(dump);
    cr_assert_eq(RUN(NULL, NULL, "index", "verify", "--index", idx), 0);

    rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", b, "--force");
    cr_assert_eq(rc, 0, "build --force: exit %d: %s", rc, err);
    free(err);
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), 3, "--force replaced the index");
    cr_assert_eq(jint(&s, "users"), 3);
    jfree(&s);
    const char *const none[] = {NULL};
    expect_query(idx, "u1", NULL, NULL, NULL, none);
    const char *const v2[] = {"j2|1500000001|buy|d2", NULL};
    expect_query(idx, "v2", NULL, NULL, NULL, v2);
    cr_assert_eq(dir_entries(dir), 3, "nothing is left beside the logs and the index");
    cr_assert_eq(RUN(NULL, NULL, "index", "verify", "--index", idx), 0);
    free(dump_a);
    tu_rmrf(dir);
}

/*
 * Regression: `--index DIR/` (a trailing slash, as shell completion writes
 * it) staged the build inside DIR instead of beside it, so a new build failed
 * and --force could not replace the old index. It must work as `DIR`.
 */
Test(cli_build, index_path_with_trailing_slash)
{
    char *dir = tu_tmpdir("cli");
    char *a = path_in(dir, "a.csv"), *idx = path_in(dir, "idx/");
    const char ta[] = "u1,i1,c1,pv,1500000000\n";
    write_all(a, ta, sizeof ta - 1);
    char *err = NULL;
    int rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", a);
    cr_assert_eq(rc, 0, "build --index DIR/: exit %d: %s", rc, err);
    free(err);
    rc = RUN(NULL, &err, "index", "build", "--index", idx, "--input", a, "--force");
    cr_assert_eq(rc, 0, "build --force --index DIR/: exit %d: %s", rc, err);
    free(err);
    jval s;
    stats_json(idx, &s);
    cr_assert_eq(jint(&s, "events"), 1);
    jfree(&s);
    tu_rmrf(dir);
}

/* ---- 11. dump ---- */

Test(cli_dump, equals_the_users_log_lines_in_time_order)
{
    uint64_t seed = 555;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    const log_shape shape = {600, 6, 30, 5, 40, 1};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    const char **users;
    size_t n_users = ref_users(&ref, &users);
    const ref_event **mine = malloc(ref.n * sizeof *mine);
    for (size_t u = 0; u < n_users; u++) {
        /* the user's lines, stably sorted by time */
        size_t m = 0;
        for (size_t i = 0; i < ref.n; i++)
            if (!strcmp(ref.ev[i].user, users[u])) mine[m++] = &ref.ev[i];
        qsort(mine, m, sizeof *mine, ref_oldest_first);
        char *out = NULL, *err = NULL;
        int rc = RUN(&out, &err, "index", "dump", "--index", idx, "--user", users[u], "--json");
        cr_assert_eq(rc, 0, "dump %s: exit %d: %s", users[u], rc, err);
        jval v;
        parse_ok(out, &v, "index dump --json");
        cr_assert(v.kind == J_OBJ && v.n == 2, "dump: {user, events}: %s", out);
        cr_assert_str_eq(jstr(&v, "user"), users[u]);
        const jval *evs = jget(&v, "events");
        cr_assert(evs && evs->kind == J_ARR);
        cr_assert_eq(evs->n, m, "user %s: %zu events dumped, %zu in the log", users[u], evs->n, m);
        for (size_t i = 0; i < m; i++) {
            const jval *e = &evs->items[i];
            cr_assert(e->kind == J_OBJ && e->n == 4);
            cr_assert(!strcmp(jstr(e, "item"), mine[i]->item) && !strcmp(jstr(e, "category"), mine[i]->cat) &&
                          jint(e, "ts") == mine[i]->ts && !strcmp(jstr(e, "type"), mine[i]->type),
                      "user %s event %zu: (%s, %s, %lld, %s), want line %zu", users[u], i, jstr(e, "item"),
                      jstr(e, "category"), jint(e, "ts"), jstr(e, "type"), mine[i]->line + 1);
        }
        jfree(&v);
        free(out);
        free(err);
    }
    free(mine);
    free(users);
    ref_free(&ref);
    tu_rmrf(dir);
}

/* dump --all: every user's lines (users in the order the log first names them), each
 * user's oldest first; the same text from a build of the whole log and from a build of its
 * first half with the second appended; --json: a line per user. */
Test(cli_dump, all_equals_every_users_log_lines_and_is_canonical)
{
    uint64_t seed = 556;
    char *dir = tu_tmpdir("cli");
    char *log = path_in(dir, "log.csv"), *idx = path_in(dir, "idx"), *idx2 = path_in(dir, "idx2");
    char *half1 = path_in(dir, "h1.csv"), *half2 = path_in(dir, "h2.csv");
    ref_log ref = {0};
    const log_shape shape = {900, 12, 40, 6, 50, 0};
    random_log(log, &ref, &seed, &shape);
    build_ok(idx, log);
    const char **users;
    size_t n_users = ref_users(&ref, &users);
    const ref_event **mine = malloc(ref.n * sizeof *mine);
    size_t cap = ref.n * 96 + 1, len = 0;
    char *want = malloc(cap);
    for (size_t u = 0; u < n_users; u++) {
        size_t m = 0;
        for (size_t i = 0; i < ref.n; i++)
            if (!strcmp(ref.ev[i].user, users[u])) mine[m++] = &ref.ev[i];
        qsort(mine, m, sizeof *mine, ref_oldest_first);
        for (size_t i = 0; i < m; i++)
            len += (size_t)snprintf(want + len, cap - len, "%s\t%lld\t%s\t%s\t%s\n", users[u], (long long)mine[i]->ts,
                                    mine[i]->item, mine[i]->cat, mine[i]->type);
    }
    char *out = NULL, *out2 = NULL, *err = NULL;
    int rc = RUN(&out, &err, "index", "dump", "--index", idx, "--all");
    cr_assert_eq(rc, 0, "dump --all: exit %d: %s", rc, err);
    cr_assert_str_eq(out, want, "dump --all differs from the log's lines by user and time");
    /* the first half built, the second appended */
    FILE *in = fopen(log, "r"), *a = fopen(half1, "w"), *b = fopen(half2, "w");
    cr_assert(in && a && b);
    char line[256];
    for (size_t l = 0; fgets(line, sizeof line, in); l++) fputs(line, l < ref.n / 2 ? a : b);
    fclose(in);
    fclose(a);
    fclose(b);
    build_ok(idx2, half1);
    cr_assert_eq(RUN(NULL, NULL, "index", "append", "--index", idx2, "--input", half2), 0);
    cr_assert_eq(RUN(&out2, NULL, "index", "dump", "--index", idx2, "--all"), 0);
    cr_assert_str_eq(out2, out, "build + append dumps other bytes than one build");
    free(out2);
    cr_assert_eq(RUN(&out2, NULL, "index", "dump", "--index", idx2, "--all", "--json"), 0);
    size_t lines = 0;
    for (char *p = out2; (p = strchr(p, '\n')); p++) lines++;
    cr_assert_eq(lines, n_users, "dump --all --json: %zu lines for %zu users", lines, n_users);
    char *nl = strchr(out2, '\n');
    *nl = 0;
    jval v;
    parse_ok(out2, &v, "index dump --all --json");
    cr_assert_str_eq(jstr(&v, "user"), users[0]);
    jfree(&v);
    free(out2);
    free(out);
    free(err);
    free(want);
    free(mine);
    free(users);
    ref_free(&ref);
    free(half1);
    free(half2);
    free(idx2);
    free(idx);
    free(log);
    tu_rmrf(dir);
}

/* Training and evaluation on the real Taobao sample, end to end through the
 * binary: too small to mean much, so the check is that it works and prints
 * well-formed numbers: AUC and GAUC in [0, 1], a positive logloss, the
 * samples counted. Then the errors: an unknown model kind (usage, exit 2),
 * a file that is not a checkpoint and a missing index (exit 1, named). */
static double json_field(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    cr_assert(p, "no %s in %s", key, json);
    return strtod(p + strlen(pat), NULL);
}

Test(cli, train_and_eval_on_the_taobao_sample)
{
    char *log = tu_shared_data("taobao/UserBehavior_sample.csv");
    if (!log) cr_skip_test("the shared Taobao sample (../shared/data/taobao) is absent");
    char *dir = tu_tmpdir("cli_train"), idx[512], ckpt[512], bad[512];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(ckpt, sizeof ckpt, "%s/m.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    char *out = NULL, *err = NULL;
    const char *build[] = {"index", "build", "--index", idx, "--input", log, NULL};
    cr_assert_eq(tu_run_lsim(build, NULL, &err), 0, "%s", err);
    free(err);
    static const char *const kinds[][2] = {{"din", NULL}, {"sim-hard", "--time-info"}, {"sim-soft", "--time-info"}};
    for (size_t k = 0; k < 3; k++) {
        const char *train[] = {"train", "--index", idx, "--model", kinds[k][0], "--out", ckpt, "--threads", "1",
                               kinds[k][1], NULL};
        cr_assert_eq(tu_run_lsim(train, &out, &err), 0, "train %s: %s", kinds[k][0], err);
        cr_expect(strstr(out, "trained") != NULL, "%s", out);
        free(out);
        free(err);
        const char *eval[] = {"eval", "--index", idx, "--model", ckpt, "--json", NULL};
        cr_assert_eq(tu_run_lsim(eval, &out, &err), 0, "eval %s: %s", kinds[k][0], err);
        double auc = json_field(out, "auc"), gauc = json_field(out, "gauc"), ll = json_field(out, "logloss"),
               n = json_field(out, "samples");
        cr_expect(auc >= 0 && auc <= 1 && gauc >= 0 && gauc <= 1 && ll > 0 && n >= 100, "%s: %s", kinds[k][0], out);
        free(out);
        free(err);
    }
    /* the last checkpoint (SIM soft + time) through the request engine: a user and an item of the log */
    FILE *lf = fopen(log, "r");
    char line[256] = "", user[64] = "", item[64] = "", now[32] = "1512345600";
    cr_assert(lf && fgets(line, sizeof line, lf));
    fclose(lf);
    cr_assert_eq(sscanf(line, "%63[^,],%63[^,]", user, item), 2, "%s", line);
    char items[160];
    snprintf(items, sizeof items, "%s,no-such-item", item);
    const char *score[] = {"score", "--index", idx, "--model", ckpt, "--user", user, "--now", now, "--items", items,
                           "--json", NULL};
    cr_assert_eq(tu_run_lsim(score, &out, &err), 0, "score: %s", err);
    double s0, s1;
    cr_assert_eq(sscanf(out, "{\"scores\": [%lf, %lf]}", &s0, &s1), 2, "%s", out);
    cr_expect(s0 > 0 && s0 < 1 && s1 > 0 && s1 < 1, "%s", out);
    free(out);
    free(err);
    const char *explain[] = {"explain", "--index", idx, "--model", ckpt, "--user", user, "--now", now, "--item", item,
                             "--json", NULL};
    cr_assert_eq(tu_run_lsim(explain, &out, &err), 0, "explain: %s", err);
    double es = json_field(out, "score");
    cr_expect(fabs(es - s0) < 1e-6, "explain's score %g, score's %g", es, s0);
    cr_expect(strstr(out, "\"behaviors\": [") != NULL, "%s", out);
    free(out);
    free(err);
    const char *score_ms[] = {"score", "--index", idx, "--model", ckpt, "--user", user, "--now", "1512345600000",
                              "--items", item, NULL};
    cr_expect_eq(tu_run_lsim(score_ms, NULL, &err), 1);
    cr_expect(strstr(err, "milliseconds") != NULL, "%s", err);
    free(err);
    const char *bogus[] = {"train", "--index", idx, "--model", "transformer", "--out", ckpt, NULL};
    cr_expect_eq(tu_run_lsim(bogus, NULL, &err), 2);
    cr_expect(strstr(err, "transformer") != NULL, "%s", err);
    free(err);
    cr_assert_eq(tu_write_file(bad, "{\"not\": \"a checkpoint\"}", 23), 0);
    const char *eval_bad[] = {"eval", "--index", idx, "--model", bad, NULL};
    cr_expect_eq(tu_run_lsim(eval_bad, NULL, &err), 1);
    cr_expect(strstr(err, "bad.safetensors") != NULL, "%s", err);
    free(err);
    /* a checkpoint written by PyTorch has no sampling metadata: eval needs --test-from, then scores */
    char *root = getenv("LSIM_SOURCE_ROOT"), golden[1024];
    snprintf(golden, sizeof golden, "%s/tests/golden/ckpt_din.safetensors", root ? root : ".");
    const char *eval_torch[] = {"eval", "--index", idx, "--model", golden, "--json", NULL};
    cr_expect_eq(tu_run_lsim(eval_torch, NULL, &err), 1);
    cr_expect(strstr(err, "lsim.test_from") && strstr(err, "--test-from"), "%s", err);
    free(err);
    const char *eval_torch2[] = {"eval", "--index", idx, "--model", golden, "--json", "--test-from", "1512259200", NULL};
    cr_expect_eq(tu_run_lsim(eval_torch2, &out, &err), 0, "%s", err);
    cr_expect(json_field(out, "samples") > 0, "%s", out);
    free(out);
    free(err);
    const char *no_index[] = {"train", "--index", bad, "--model", "din", "--out", ckpt, NULL};
    cr_expect_eq(tu_run_lsim(no_index, NULL, &err), 1);
    cr_expect(strstr(err, "bad.safetensors") != NULL, "%s", err);
    free(err);
    tu_rmrf(dir);
    free(log);
}

/* A User Interest Center holds MIMN's states: another model's checkpoint is refused, naming the file, and
 * nothing is written */
Test(cli_usage, uic_wants_a_mimn_checkpoint)
{
    char *root = getenv("LSIM_SOURCE_ROOT"), golden[1024];
    snprintf(golden, sizeof golden, "%s/tests/golden/ckpt_din.safetensors", root ? root : ".");
    char *dir = tu_tmpdir("cli-uic"), idx[1100];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    const char *args[] = {"index", "uic", "--index", idx, "--uic", golden, NULL};
    char *err = NULL;
    cr_assert_eq(tu_run_lsim(args, NULL, &err), 1);
    cr_assert(strstr(err, "ckpt_din.safetensors") && strstr(err, "MIMN"), "%s", err);
    free(err);
    tu_rmrf(dir);
}
