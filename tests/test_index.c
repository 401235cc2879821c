/*
 * test_index.c: the behavior index against a brute-force in-memory
 * reference: build, append, hard search (with and without category), verify,
 * strict mode, the real Taobao sample, and builds / appends killed with
 * SIGKILL at random points.
 *
 * The reference keeps every event with its global log line number; hard
 * search is then: filter (user, category, ts < before), sort by (ts desc,
 * line desc), take k. Nothing of the index code is used to compute it.
 */
#include "index/index_verify.h"
#include "index/index_write.h"
#include "lsim.h"
#include "tests/ref_log.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const types[] = {"pv", "buy", "cart", "fav"};

/* A random Taobao-format log with many collisions: few users, categories,
 * items and distinct timestamps; duplicate lines; one heavy user whose
 * chains span several blocks. Lines are appended to both file and ref. */
static void random_log(const char *path, ref_log *ref, uint64_t *seed, size_t lines, int heavy)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    char prev[128] = "";
    for (size_t i = 0; i < lines; i++) {
        char u[32], it[32], c[32];
        const char *t = types[tu_rand(seed) % 4];
        int64_t ts;
        uint64_t r = tu_rand(seed);
        if (prev[0] && r % 20 == 0) { /* an exact duplicate line */
            fputs(prev, f);
            char pu[32], pi[32], pc[32], pt[8];
            long long pts;
            sscanf(prev, "%31[^,],%31[^,],%31[^,],%7[^,],%lld", pu, pi, pc, pt, &pts);
            ref_add(ref, pu, pi, pc, pt, pts);
            continue;
        }
        if (heavy && r % 3 == 0) {
            snprintf(u, sizeof u, "heavy");
            snprintf(c, sizeof c, "%d", (int)(tu_rand(seed) % 3));
            ts = 1500000000 + (int64_t)(tu_rand(seed) % 5000);
        } else {
            snprintf(u, sizeof u, "%d", (int)(tu_rand(seed) % 40));
            snprintf(c, sizeof c, "%d", (int)(tu_rand(seed) % 12));
            ts = 1500000000 + (int64_t)(tu_rand(seed) % 300);
        }
        snprintf(it, sizeof it, "i%d", (int)(tu_rand(seed) % 200));
        snprintf(prev, sizeof prev, "%s,%s,%s,%s,%lld\n", u, it, c, t, (long long)ts);
        fputs(prev, f);
        ref_add(ref, u, it, c, t, ts);
    }
    fclose(f);
}

static void build_opts(ubt_write_opts *o, const char **inputs, size_t n, uint32_t own_min, uint32_t mixed_max)
{
    ubt_write_opts_default(o);
    o->inputs = inputs;
    o->n_inputs = n;
    o->own_min = own_min;
    o->mixed_max = mixed_max;
}

static void check_verify(const char *dir)
{
    char err[512];
    lsim_index *ix;
    cr_assert_eq(lsim_index_open(&ix, dir, err, sizeof err), 0, "open: %s", err);
    index_verify_report rep;
    int rc = index_verify(ix, &rep, NULL, NULL, 0);
    cr_assert_eq(rc, 0, "verify found %llu problems", (unsigned long long)rep.problems);
    lsim_index_close(ix);
}

/* Thousands of random queries, each equal to the brute force. */
static void check_queries(const char *dir, const ref_log *ref, uint64_t *seed, int n_queries)
{
    char err[512];
    lsim_index *ix;
    cr_assert_eq(lsim_index_open(&ix, dir, err, sizeof err), 0, "open: %s", err);
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(ix, &rd), 0);
    size_t kmax = 2000;
    lsim_event *got = malloc(kmax * sizeof *got);
    const ref_event **want = malloc(kmax * sizeof *want);
    for (int q = 0; q < n_queries; q++) {
        const ref_event *pick = &ref->ev[tu_rand(seed) % ref->n];
        char user[sizeof pick->user], cat[sizeof pick->cat];
        snprintf(user, sizeof user, "%s", pick->user);
        snprintf(cat, sizeof cat, "%s", pick->cat);
        uint64_t r = tu_rand(seed);
        if (r % 17 == 0) snprintf(user, sizeof user, "nobody");
        if (r % 13 == 0) snprintf(cat, sizeof cat, "nocat");
        const char *catp = (r % 5 == 0) ? NULL : cat;
        int64_t before;
        switch (tu_rand(seed) % 6) {
        case 0: before = pick->ts; break;
        case 1: before = pick->ts + 1; break;
        case 2: before = pick->ts - 1; break;
        case 3: before = INT64_MAX; break;
        case 4: before = 0; break;
        default: before = ref->ev[tu_rand(seed) % ref->n].ts; break;
        }
        size_t k = (size_t)(tu_rand(seed) % 4 == 0 ? tu_rand(seed) % kmax : tu_rand(seed) % 60);
        size_t n = 99999;
        int rc = lsim_index_hard_search(rd, user, strlen(user), catp, catp ? strlen(catp) : 0, before, k, got, &n);
        cr_assert_eq(rc, 0, "query failed: %s", lsim_index_reader_errmsg(rd));
        size_t m = ref_search(ref, user, catp, before, k, want);
        cr_assert_eq(n, m, "query %d user %s cat %s before %lld k %zu: %zu events, want %zu", q, user,
                     catp ? catp : "(any)", (long long)before, k, n, m);
        for (size_t i = 0; i < n; i++) {
            cr_assert(got[i].ts == want[i]->ts && !strcmp(got[i].item, want[i]->item) &&
                          !strcmp(got[i].category, want[i]->cat) && !strcmp(got[i].type, want[i]->type),
                      "query %d user %s cat %s before %lld: event %zu is (%s,%s,%s,%lld), want (%s,%s,%s,%lld) "
                      "from line %llu",
                      q, user, catp ? catp : "(any)", (long long)before, i, got[i].item, got[i].category,
                      got[i].type, (long long)got[i].ts, want[i]->item, want[i]->cat, want[i]->type,
                      (long long)want[i]->ts, (unsigned long long)want[i]->line + 1);
        }
    }
    free(got);
    free(want);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void build_ok(const char *idx, const char **inputs, size_t n, uint32_t own_min, uint32_t mixed_max)
{
    ubt_write_opts o;
    ubt_write_result res;
    char err[512];
    build_opts(&o, inputs, n, own_min, mixed_max);
    cr_assert_eq(ubt_build(idx, &o, &res, err, sizeof err), 0, "build: %s", err);
}

static void append_ok(const char *idx, const char *input)
{
    ubt_write_opts o;
    ubt_write_result res;
    char err[512];
    const char *in[1] = {input};
    build_opts(&o, in, 1, 0, 0);
    cr_assert_eq(ubt_append(idx, &o, &res, err, sizeof err), 0, "append: %s", err);
}

Test(index, build_matches_brute_force)
{
    uint64_t seed = 42;
    char *dir = tu_tmpdir("ix");
    char *log = path_in(dir, "a.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 6000, 1);
    const char *in[1] = {log};
    build_ok(idx, in, 1, 0, 0);
    check_verify(idx);
    check_queries(idx, &ref, &seed, 3000);
    tu_rmrf(dir);
    ref_free(&ref);
}

Test(index, small_chain_policy_matches_brute_force)
{
    /* own_min 3 / mixed_max 8 makes most categories own chains and promotes often */
    uint64_t seed = 7;
    char *dir = tu_tmpdir("ix");
    char *log = path_in(dir, "a.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 4000, 0);
    const char *in[1] = {log};
    build_ok(idx, in, 1, 3, 8);
    check_verify(idx);
    check_queries(idx, &ref, &seed, 2000);
    tu_rmrf(dir);
    ref_free(&ref);
}

Test(index, several_inputs_and_appends_match_brute_force)
{
    uint64_t seed = 99;
    char *dir = tu_tmpdir("ix");
    char *a = path_in(dir, "a.csv"), *b = path_in(dir, "b.csv"), *c = path_in(dir, "c.csv"),
         *d = path_in(dir, "d.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(a, &ref, &seed, 3000, 1);
    random_log(b, &ref, &seed, 1500, 0);
    const char *in[2] = {a, b};
    build_ok(idx, in, 2, 4, 16);
    check_verify(idx);
    check_queries(idx, &ref, &seed, 1000);
    /* appends with overlapping times (out of order against stored events), new users and equal ts */
    random_log(c, &ref, &seed, 2000, 1);
    append_ok(idx, c);
    check_verify(idx);
    check_queries(idx, &ref, &seed, 1500);
    random_log(d, &ref, &seed, 800, 0);
    append_ok(idx, d);
    check_verify(idx);
    check_queries(idx, &ref, &seed, 1500);
    tu_rmrf(dir);
    ref_free(&ref);
}

Test(index, batches_under_a_small_memory_limit)
{
    /* a tiny mem_limit forces many batches: later batches merge into stored chains */
    uint64_t seed = 5;
    char *dir = tu_tmpdir("ix");
    char *log = path_in(dir, "a.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 9000, 1);
    const char *in[1] = {log};
    ubt_write_opts o;
    ubt_write_result res;
    char err[512];
    build_opts(&o, in, 1, 0, 0);
    o.mem_limit = 1; /* the floor: 1024 events a batch */
    cr_assert_eq(ubt_build(idx, &o, &res, err, sizeof err), 0, "build: %s", err);
    check_verify(idx);
    check_queries(idx, &ref, &seed, 2000);
    tu_rmrf(dir);
    ref_free(&ref);
}

Test(index, append_to_missing_or_incomplete_index_is_refused)
{
    char *dir = tu_tmpdir("ix");
    char *log = path_in(dir, "a.csv"), *idx = path_in(dir, "nothere");
    cr_assert_eq(tu_write_file(log, "1,2,3,pv,1500000000\n", 20), 0);
    ubt_write_opts o;
    ubt_write_result res;
    char err[512] = "";
    const char *in[1] = {log};
    build_opts(&o, in, 1, 0, 0);
    cr_assert_neq(ubt_append(idx, &o, &res, err, sizeof err), 0);
    lsim_index *ix;
    int rc = lsim_index_open(&ix, idx, err, sizeof err);
    cr_assert_eq(rc, LSIM_E_NOTFOUND, "open of a missing index: %d %s", rc, err);
    cr_assert(strstr(err, "no index here"), "message: %s", err);
    tu_rmrf(dir);
}

Test(index, strict_build_and_append_leave_nothing_or_the_old_state)
{
    char *dir = tu_tmpdir("ix");
    char *good = path_in(dir, "good.csv"), *bad = path_in(dir, "bad.csv"), *idx = path_in(dir, "idx");
    const char g[] = "1,10,100,pv,1500000000\n1,11,100,buy,1500000001\n";
    const char b[] = "2,20,200,pv,1500000002\n2,21,200,pv,notatime\n2,22,200,pv,1500000003\n";
    cr_assert_eq(tu_write_file(good, g, sizeof g - 1), 0);
    cr_assert_eq(tu_write_file(bad, b, sizeof b - 1), 0);
    ubt_write_opts o;
    ubt_write_result res;
    char err[512];
    const char *in_bad[1] = {bad};
    build_opts(&o, in_bad, 1, 0, 0);
    o.strict = 1;
    cr_assert_neq(ubt_build(idx, &o, &res, err, sizeof err), 0);
    cr_assert(strstr(err, "bad.csv:2:"), "message names file and line: %s", err);
    struct stat st;
    cr_assert_neq(stat(idx, &st), 0, "a failed strict build leaves no index");
    /* without strict: the bad line is skipped and counted, the others kept */
    o.strict = 0;
    cr_assert_eq(ubt_build(idx, &o, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.bad_lines, 1);
    cr_assert_eq(res.events, 2);
    tu_rmrf(idx);
    const char *in_good[1] = {good};
    build_opts(&o, in_good, 1, 0, 0);
    cr_assert_eq(ubt_build(idx, &o, &res, err, sizeof err), 0, "%s", err);
    build_opts(&o, in_bad, 1, 0, 0);
    o.strict = 1;
    cr_assert_neq(ubt_append(idx, &o, &res, err, sizeof err), 0);
    lsim_index *ix;
    cr_assert_eq(lsim_index_open(&ix, idx, err, sizeof err), 0, "%s", err);
    lsim_index_stats s;
    cr_assert_eq(lsim_index_stats_get(ix, &s), 0);
    cr_assert_eq(s.events, 2, "a failed strict append changes nothing");
    cr_assert_eq(s.users, 1);
    lsim_index_close(ix);
    tu_rmrf(dir);
}

Test(index, real_taobao_sample_every_line_indexed)
{
    char *sample = tu_shared_data("taobao/UserBehavior_sample.csv");
    if (!sample) cr_skip_test("../shared/data is absent");
    FILE *f = fopen(sample, "r");
    cr_assert(f);
    ref_log ref = {0};
    char line[256];
    size_t lines = 0;
    while (fgets(line, sizeof line, f)) {
        char u[32], it[32], c[32], t[8];
        long long ts;
        lines++;
        cr_assert_eq(sscanf(line, "%31[^,],%31[^,],%31[^,],%7[^,],%lld", u, it, c, t, &ts), 5);
        ref_add(&ref, u, it, c, t, ts);
    }
    fclose(f);
    char *dir = tu_tmpdir("ix");
    char *idx = path_in(dir, "idx");
    const char *in[1] = {sample};
    ubt_write_opts o;
    ubt_write_result res;
    char err[512];
    build_opts(&o, in, 1, 0, 0);
    cr_assert_eq(ubt_build(idx, &o, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.lines, lines);
    cr_assert_eq(res.events, lines, "every line of the sample is indexed");
    cr_assert_eq(res.bad_lines, 0);
    check_verify(idx);
    uint64_t seed = 3;
    check_queries(idx, &ref, &seed, 3000);
    tu_rmrf(dir);
    ref_free(&ref);
    free(sample);
}

/* ---- killed builds and appends ---- */

static char *dump_all(const char *idx, const ref_log *ref)
{
    /* every known user's whole history, as text: equal strings = equal content */
    char err[512];
    lsim_index *ix;
    if (lsim_index_open(&ix, idx, err, sizeof err)) return NULL;
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(ix, &rd), 0);
    size_t cap = ref->n + 1, len = 0, tcap = 1 << 20;
    lsim_event *ev = malloc(cap * sizeof *ev);
    char *text = malloc(tcap);
    text[0] = 0;
    for (int u = 0; u < 41; u++) {
        char user[32];
        if (u == 40) snprintf(user, sizeof user, "heavy");
        else snprintf(user, sizeof user, "%d", u);
        size_t n;
        cr_assert_eq(lsim_index_hard_search(rd, user, strlen(user), NULL, 0, INT64_MAX, cap, ev, &n), 0);
        for (size_t i = 0; i < n; i++) {
            if (len + 200 > tcap) text = realloc(text, tcap *= 2);
            len += (size_t)sprintf(text + len, "%s,%s,%s,%s,%lld\n", user, ev[i].item, ev[i].category, ev[i].type,
                                   (long long)ev[i].ts);
        }
    }
    free(ev);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return text;
}

static pid_t spawn_lsim(const char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        size_t n = 0;
        while (argv[n]) n++;
        const char **full = calloc(n + 2, sizeof *full);
        full[0] = tu_lsim_bin();
        memcpy(full + 1, argv, n * sizeof *argv);
        execv(full[0], (char *const *)full);
        _exit(127);
    }
    return pid;
}

static double run_time(const char *const *argv)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = spawn_lsim(argv);
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lsim did not succeed");
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

static int kill_at(const char *const *argv, double seconds)
{
    pid_t pid = spawn_lsim(argv);
    usleep((useconds_t)(seconds * 1e6));
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st); /* 0 if it finished first */
}

Test(index, killed_build_leaves_no_index_or_the_whole_one, .timeout = 240)
{
    uint64_t seed = 11;
    char *dir = tu_tmpdir("kill");
    char *log = path_in(dir, "a.csv"), *idx = path_in(dir, "idx"), *ref_idx = path_in(dir, "ref");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 150000, 1);
    const char *ref_argv[] = {"index", "build", "--index", ref_idx, "--input", log, NULL};
    double t = run_time(ref_argv);
    char *want = dump_all(ref_idx, &ref);
    cr_assert(want);
    int killed = 0;
    for (int i = 0; i < 8; i++) {
        const char *argv[] = {"index", "build", "--index", idx, "--input", log, NULL};
        killed += kill_at(argv, t * (double)(tu_rand(&seed) % 1000) / 1000.0);
        struct stat st;
        if (stat(idx, &st) == 0) {
            char *have = dump_all(idx, &ref);
            cr_assert(have && !strcmp(have, want), "a killed build left an index that differs");
            check_verify(idx);
            free(have);
            tu_rmrf(idx);
        } else {
            char *out = NULL, *err = NULL;
            const char *q[] = {"query", "--index", idx, "--user", "1", NULL};
            int rc = tu_run_lsim(q, &out, &err);
            cr_assert_eq(rc, 1, "a command on a missing index exits 1");
            cr_assert(strstr(err, "no index here"), "clear message: %s", err);
            free(out);
            free(err);
        }
    }
    cr_log_info("killed %d of 8 builds mid-run", killed);
    free(want);
    tu_rmrf(dir);
    ref_free(&ref);
}

Test(index, killed_append_leaves_old_or_new_state, .timeout = 240)
{
    uint64_t seed = 23;
    char *dir = tu_tmpdir("kill");
    char *a = path_in(dir, "a.csv"), *b = path_in(dir, "b.csv"), *idx = path_in(dir, "idx"),
         *new_idx = path_in(dir, "new");
    ref_log ref = {0};
    random_log(a, &ref, &seed, 20000, 1);
    const char *build_argv[] = {"index", "build", "--index", idx, "--input", a, NULL};
    run_time(build_argv);
    char *old_state = dump_all(idx, &ref);
    random_log(b, &ref, &seed, 150000, 1);
    const char *new_argv[] = {"index", "build", "--index", new_idx, "--input", a, "--input", b, NULL};
    run_time(new_argv);
    char *new_state = dump_all(new_idx, &ref);
    char *copy = path_in(dir, "copy");
    int killed = 0, saw_old = 0, saw_new = 0;
    double t_append = 1;
    for (int i = 0; i < 8; i++) {
        char cmd[4096];
        tu_rmrf(copy);
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", idx, copy);
        cr_assert_eq(system(cmd), 0);
        const char *argv[] = {"index", "append", "--index", copy, "--input", b, NULL};
        if (i == 0) {
            t_append = run_time(argv);
            char *have = dump_all(copy, &ref);
            cr_assert(!strcmp(have, new_state), "append equals a build of both logs");
            free(have);
            continue;
        }
        killed += kill_at(argv, t_append * (double)(tu_rand(&seed) % 1000) / 1000.0);
        check_verify(copy);
        char *have = dump_all(copy, &ref);
        cr_assert(have);
        int is_old = !strcmp(have, old_state), is_new = !strcmp(have, new_state);
        cr_assert(is_old || is_new, "a killed append left a state that is neither the old nor the new");
        saw_old += is_old;
        saw_new += is_new;
        free(have);
    }
    cr_log_info("killed %d appends: %d left the old state, %d the new", killed, saw_old, saw_new);
    free(old_state);
    free(new_state);
    tu_rmrf(dir);
    ref_free(&ref);
}

Test(index, shards_partition_the_users)
{
    /* three shard builds hold every event of the whole build exactly once, each user whole in
     * the shard its FNV-1a hash names */
    uint64_t seed = 77;
    char *dir = tu_tmpdir("shard");
    char *log = path_in(dir, "a.csv"), *whole = path_in(dir, "whole");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 5000, 1);
    const char *in[1] = {log};
    build_ok(whole, in, 1, 0, 0);
    char *want = dump_all(whole, &ref);
    size_t got_len = 0;
    uint64_t events = 0;
    for (uint32_t s = 0; s < 3; s++) {
        char name[32];
        snprintf(name, sizeof name, "shard%u", s);
        char *idx = path_in(dir, name);
        ubt_write_opts o;
        ubt_write_result res;
        char err[512];
        build_opts(&o, in, 1, 0, 0);
        o.shard_index = s;
        o.shard_count = 3;
        cr_assert_eq(ubt_build(idx, &o, &res, err, sizeof err), 0, "%s", err);
        events += res.events;
        cr_assert_eq(res.events + res.other_shard, ref.n);
        /* every user of this shard is whole here */
        lsim_index *ix;
        cr_assert_eq(lsim_index_open(&ix, idx, err, sizeof err), 0, "%s", err);
        lsim_index_reader *rd;
        cr_assert_eq(lsim_index_reader_new(ix, &rd), 0);
        lsim_event *ev = malloc((ref.n + 1) * sizeof *ev);
        for (size_t i = 0; i < ref.n; i++) {
            const char *u = ref.ev[i].user;
            int here = ubt_shard_of(u, strlen(u), 3) == s;
            size_t n, m = 0;
            cr_assert_eq(lsim_index_hard_search(rd, u, strlen(u), NULL, 0, INT64_MAX, ref.n, ev, &n), 0);
            for (size_t j = 0; j < ref.n; j++) m += strcmp(ref.ev[j].user, u) == 0;
            cr_assert_eq(n, here ? m : 0, "user %s in shard %u: %zu events, want %zu", u, s, n, here ? m : 0);
        }
        free(ev);
        lsim_index_reader_free(rd);
        lsim_index_close(ix);
        char *part = dump_all(idx, &ref);
        got_len += strlen(part);
        free(part);
        free(idx);
    }
    cr_assert_eq(events, ref.n);
    cr_assert_eq(got_len, strlen(want));
    free(want);
    tu_rmrf(dir);
    ref_free(&ref);
}

/* ---- copies and older schemas (docs/FORMATS.md, "Corruption") ---- */

/* An index copied with LMDB's own copy, plain (mdb_copy) or compacting
 * (mdb_copy -c, which renumbers its snapshot as transaction 1): the copy
 * opens, verifies and answers as the original. */
Test(index, lmdb_copies_open_and_match)
{
    uint64_t seed = 5;
    char *dir = tu_tmpdir("ix");
    char *log = path_in(dir, "a.csv"), *log2 = path_in(dir, "b.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 3000, 1);
    random_log(log2, &ref, &seed, 1000, 1);
    const char *in[1] = {log};
    build_ok(idx, in, 1, 0, 0);
    append_ok(idx, log2); /* two commits: the copies have a previous meta page to compare */
    for (int compact = 0; compact < 2; compact++) {
        char *copy = path_in(dir, compact ? "compact" : "plain");
        cr_assert_eq(mkdir(copy, 0755), 0);
        MDB_env *env;
        cr_assert_eq(mdb_env_create(&env), 0);
        cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
        cr_assert_eq(mdb_env_open(env, idx, MDB_RDONLY, 0644), 0);
        cr_assert_eq(mdb_env_copy2(env, copy, compact ? MDB_CP_COMPACT : 0), 0);
        mdb_env_close(env);
        check_verify(copy);
        check_queries(copy, &ref, &seed, 500);
        free(copy);
    }
    tu_rmrf(dir);
    ref_free(&ref);
}

/* An index of schema 1 (an lsim before the checksums: no seals, no commit
 * stamp) is refused as a version, not as corruption. */
Test(index, schema_1_is_refused_as_a_version)
{
    char *dir = tu_tmpdir("ix");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi[4];
    static const char *const names[4] = {"meta", "ubt", "users", "vocab"};
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    for (int i = 0; i < 4; i++) cr_assert_eq(mdb_dbi_open(txn, names[i], MDB_CREATE, &dbi[i]), 0);
    MDB_val k = {6, "schema"}, v = {4, "\1\0\0\0"};
    cr_assert_eq(mdb_put(txn, dbi[0], &k, &v, 0), 0);
    k = (MDB_val){8, "complete"}, v = (MDB_val){1, "\1"};
    cr_assert_eq(mdb_put(txn, dbi[0], &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    lsim_index *ix;
    char err[512] = "";
    int rc = lsim_index_open(&ix, dir, err, sizeof err);
    cr_assert_eq(rc, LSIM_E_VERSION, "%d %s", rc, err);
    cr_assert(strstr(err, "index schema 1") && strstr(err, "build the index again"), "%s", err);
    tu_rmrf(dir);
}

/* The previous commit's meta page with its transaction id raised (a flipped
 * bit): LMDB would open that older snapshot as the newest. Refused, and so is
 * the newest meta page's id lowered below it. */
Test(index, a_meta_page_with_another_transaction_id_is_refused)
{
    uint64_t seed = 6;
    char *dir = tu_tmpdir("ix");
    char *log = path_in(dir, "a.csv"), *log2 = path_in(dir, "b.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 500, 0);
    random_log(log2, &ref, &seed, 500, 0);
    const char *in[1] = {log};
    build_ok(idx, in, 1, 0, 0);
    append_ok(idx, log2); /* transactions 1 (meta page 1) and 2 (meta page 0) */
    char *mdb = path_in(idx, "data.mdb");
    const size_t txnid_at = 16 + 128; /* the page header, then MDB_meta's mm_txnid */
    struct { size_t page; uint64_t txnid; } cases[] = {{1, 3}, {1, 5}, {0, 0}, {1, 0x101}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int fd = open(mdb, O_RDWR);
        cr_assert(fd >= 0);
        uint64_t old, t = cases[c].txnid;
        uint32_t psize;
        cr_assert_eq(pread(fd, &psize, 4, 40), 4); /* the free list's md_pad in meta page 0 */
        off_t at = (off_t)(cases[c].page * psize + txnid_at);
        cr_assert_eq(pread(fd, &old, 8, at), 8);
        cr_assert_eq(pwrite(fd, &t, 8, at), 8);
        lsim_index *ix;
        char err[512] = "";
        int rc = lsim_index_open(&ix, idx, err, sizeof err);
        cr_assert_eq(rc, LSIM_E_CORRUPT, "meta page %zu with transaction %llu: %d %s", cases[c].page,
                     (unsigned long long)t, rc, err);
        cr_assert(strstr(err, "data.mdb: corrupt: "), "%s", err);
        cr_assert_eq(pwrite(fd, &old, 8, at), 8);
        close(fd);
    }
    check_verify(idx);
    free(mdb);
    tu_rmrf(dir);
    ref_free(&ref);
}
