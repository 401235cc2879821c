/*
 * test_uic.c: the User Interest Center (index/uic.h) against a brute-force
 * fold: for a user and a time, the state the index gives must be, bit for
 * bit, the fold from the initial state of every event of the user before
 * that time in the reference's order (time, then log order), whatever
 * snapshots the index keeps. And an index built from part of a log and
 * appended the rest (events out of order and tied timestamps included) must
 * hold exactly the records a build over the whole log writes.
 *
 * The model here is a small fold of our own (a few order-sensitive running
 * sums of the ids): this file tests the storage, the snapshot rule and the
 * reading, not MIMN, whose fold test_mimn checks.
 */
#include "index/index_internal.h"
#include "index/index_verify.h"
#include "index/index_write.h"
#include "index/uic.h"
#include "lsim.h"
#include "storage/lmdb_check.h"
#include "tests/ref_log.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SF 5 /* state floats */

static void toy_init(void *ud, float *s)
{
    (void)ud;
    for (int i = 0; i < SF; i++) s[i] = 0.5f * (float)i;
}

static void toy_fold(void *ud, float *s, const uint32_t *item, const uint32_t *cat, size_t n)
{
    (void)ud;
    for (size_t t = 0; t < n; t++) {
        s[0] = s[0] * 0.75f + (float)item[t];
        s[1] = s[1] * 0.5f + (float)cat[t];
        s[2] += 1.0f;
        s[3] = s[3] * 0.9f + (float)((item[t] ^ cat[t]) % 7);
        s[4] = s[4] * 0.99f + s[0] * 1e-3f;
    }
}

static uic_model toy_model(uint64_t id)
{
    uic_model m = {.id = id, .state_floats = SF, .init = toy_init, .fold = toy_fold};
    snprintf(m.name, sizeof m.name, "toy-%llu", (unsigned long long)id);
    return m;
}

/* A log with few users, categories and timestamps (many ties), one heavy user,
 * lines in random time order. */
static void random_log(const char *path, ref_log *ref, uint64_t *seed, size_t lines, int64_t t0, int64_t span)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    for (size_t i = 0; i < lines; i++) {
        char u[32], it[32], c[32];
        uint64_t r = tu_rand(seed);
        snprintf(u, sizeof u, r % 3 == 0 ? "heavy" : "u%d", (int)(tu_rand(seed) % 25));
        snprintf(c, sizeof c, "c%d", (int)(tu_rand(seed) % 9));
        snprintf(it, sizeof it, "i%d", (int)(tu_rand(seed) % 150));
        int64_t ts = t0 + (int64_t)(tu_rand(seed) % (uint64_t)span);
        fprintf(f, "%s,%s,%s,pv,%lld\n", u, it, c, (long long)ts);
        ref_add(ref, u, it, c, "pv", ts);
    }
    fclose(f);
}

static int write_index(int append, const char *idx, const char *log, const uic_model *m, uint32_t every, char *err)
{
    ubt_write_opts o;
    ubt_write_result res;
    ubt_write_opts_default(&o);
    const char *in[1] = {log};
    o.inputs = in;
    o.n_inputs = 1;
    o.uic = m;
    o.uic_every = every;
    o.own_min = 8; /* chains of their own and mixed ones both */
    return append ? ubt_append(idx, &o, &res, err, 512) : ubt_build(idx, &o, &res, err, 512);
}

/* The brute force: the fold of user's reference events with ts < before, oldest first. */
static void ref_state(const ref_log *ref, lsim_index *ix, const char *user, int64_t before, float *s)
{
    const ref_event **ev = malloc((ref->n + 1) * sizeof *ev);
    size_t n = 0;
    for (size_t i = 0; i < ref->n; i++)
        if (!strcmp(ref->ev[i].user, user) && ref->ev[i].ts < before) ev[n++] = &ref->ev[i];
    qsort(ev, n, sizeof *ev, ref_oldest_first);
    toy_init(NULL, s);
    for (size_t i = 0; i < n; i++) {
        uint32_t it, c;
        cr_assert_eq(vocab_find(ix->voc[IX_ITEM], ev[i]->item, strlen(ev[i]->item), &it), 0);
        cr_assert_eq(vocab_find(ix->voc[IX_CAT], ev[i]->cat, strlen(ev[i]->cat), &c), 0);
        toy_fold(NULL, s, &it, &c, 1);
    }
    free(ev);
}

/* n_q random (user, before) queries, each bit-equal to the brute force; returns the events folded on top of
 * snapshots, at most. */
static size_t check_states(const char *idx, const ref_log *ref, const uic_model *m, uint64_t *seed, int n_q)
{
    char err[512];
    lsim_index *ix;
    cr_assert_eq(lsim_index_open(&ix, idx, err, sizeof err), 0, "open: %s", err);
    cr_assert(ix->has_uic);
    cr_assert_eq(ix->uic.model_id, m->id);
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_reader_new(ix, &rd), 0);
    ubt_event *evbuf = NULL;
    uint32_t *ids = NULL;
    size_t cap = 0, ids_cap = 0, most = 0;
    for (int q = 0; q < n_q; q++) {
        const ref_event *pick = &ref->ev[tu_rand(seed) % ref->n];
        int64_t before = pick->ts + (int64_t)(tu_rand(seed) % 3) - 1; /* at, just before and after an event */
        if (q % 10 == 0) before = INT64_MAX;
        if (q % 10 == 1) before = INT64_MIN;
        uint32_t uid;
        cr_assert_eq(vocab_find(ix->voc[IX_USER], pick->user, strlen(pick->user), &uid), 0);
        float got[SF], want[SF];
        size_t folded = 0;
        cr_assert_eq(index_reader_begin(rd), 0);
        int rc = index_uic_state(rd, m, uid, before, got, &evbuf, &cap, &ids, &ids_cap, &folded);
        index_reader_end(rd);
        cr_assert_eq(rc, 0, "uic state: %s", lsim_index_reader_errmsg(rd));
        ref_state(ref, ix, pick->user, before, want);
        cr_assert(memcmp(got, want, sizeof got) == 0,
                  "user %s before %lld: state (%g %g %g %g %g), want (%g %g %g %g %g)", pick->user,
                  (long long)before, got[0], got[1], got[2], got[3], got[4], want[0], want[1], want[2], want[3],
                  want[4]);
        if (folded > most) most = folded;
    }
    free(evbuf);
    free(ids);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return most;
}

/* Every record of the UIC database, keys and values, as one string of hex-free bytes. */
static char *dump_uic(const char *idx, size_t *len, size_t *records)
{
    char err[512];
    lsim_index *ix;
    cr_assert_eq(lsim_index_open(&ix, idx, err, sizeof err), 0, "open: %s", err);
    MDB_txn *txn;
    MDB_cursor *cur;
    cr_assert_eq(mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_cursor_open(txn, ix->db_uic, &cur), 0);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    MDB_val k, d;
    *records = 0;
    for (int rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        while (n + k.mv_size + d.mv_size + 16 > cap) buf = realloc(buf, cap *= 2);
        memcpy(buf + n, &k.mv_size, sizeof k.mv_size);
        memcpy(buf + n + 8, k.mv_data, k.mv_size);
        n += 8 + k.mv_size;
        memcpy(buf + n, &d.mv_size, sizeof d.mv_size);
        memcpy(buf + n + 8, d.mv_data, d.mv_size);
        n += 8 + d.mv_size;
        (*records)++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    lsim_index_close(ix);
    *len = n;
    return buf;
}

/* `lsim index verify`'s checks: 0 problems, or the count; uic_records: the states it read. */
static uint64_t verify_problems(const char *idx, uint64_t *uic_records)
{
    char err[512];
    lsim_index *ix;
    cr_assert_eq(lsim_index_open(&ix, idx, err, sizeof err), 0, "open: %s", err);
    index_verify_report rep;
    int rc = index_verify(ix, &rep, NULL, NULL, 0);
    cr_assert(rc == 0 || rc == LSIM_E_CORRUPT, "verify: %d", rc);
    lsim_index_close(ix);
    if (uic_records) *uic_records = rep.uic_records;
    return rep.problems;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void cat_files(const char *out, const char *a, const char *b)
{
    FILE *o = fopen(out, "w");
    const char *in[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(in[i], "r");
        cr_assert(f);
        int ch;
        while ((ch = fgetc(f)) != EOF) fputc(ch, o);
        fclose(f);
    }
    fclose(o);
}

Test(uic, states_equal_brute_force)
{
    uint64_t seed = 7;
    char *dir = tu_tmpdir("uic"), *log = path_in(dir, "a.csv"), *idx = path_in(dir, "idx");
    ref_log ref = {0};
    random_log(log, &ref, &seed, 5000, 1500000000, 900);
    uic_model m = toy_model(11);
    char err[512];
    cr_assert_eq(write_index(0, idx, log, &m, 16, err), 0, "build: %s", err);
    size_t most = check_states(idx, &ref, &m, &seed, 3000);
    /* snapshots bound the fold: about `every` events plus a run of ties (few timestamps here) */
    cr_assert(most > 0 && most < 16 + 64, "at most %zu events folded on top of a snapshot", most);
    uint64_t recs;
    cr_assert_eq(verify_problems(idx, &recs), 0);
    cr_assert_gt(recs, 100);
    ref_free(&ref);
    tu_rmrf(dir);
}

static void copy_file(const char *from, const char *to)
{
    cr_assert_eq(tu_copy_file(from, to), 0, "cannot copy %s to %s", from, to);
}

/* The UIC after appends holds exactly the records of a UIC written from scratch over the same index (the same
 * dense ids: a fresh index build numbers items otherwise, so it is compared through the brute force). */
Test(uic, append_equals_build)
{
    uint64_t seed = 99;
    char *dir = tu_tmpdir("uic"), *a = path_in(dir, "a.csv"), *b = path_in(dir, "b.csv"), *c = path_in(dir, "c.csv"),
         *ab = path_in(dir, "ab.csv"), *abc = path_in(dir, "abc.csv"), *abcd = path_in(dir, "abcd.csv");
    ref_log ref = {0};
    /* b: later events and some earlier than a's newest; c: all older (out of order), with ties; then appends
     * after everything, a few events each (the head's position is then checked for a snapshot) */
    random_log(a, &ref, &seed, 3000, 1500000000, 600);
    random_log(b, &ref, &seed, 1500, 1500000400, 600);
    random_log(c, &ref, &seed, 700, 1500000000, 300);
    char *late[6];
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "late%d.csv", i);
        late[i] = path_in(dir, name);
        random_log(late[i], &ref, &seed, 60 + 20 * (size_t)i, 1500002000 + 100 * i, 100);
    }
    cat_files(ab, a, b);
    cat_files(abc, ab, c);
    cat_files(abcd, abc, late[0]);
    for (int i = 1; i < 6; i++) {
        cat_files(ab, abcd, late[i]);
        copy_file(ab, abcd);
    }
    uic_model m = toy_model(5);
    char err[512];
    char *inc = path_in(dir, "inc"), *fresh = path_in(dir, "fresh"), *whole = path_in(dir, "whole");
    cr_assert_eq(write_index(0, inc, a, &m, 8, err), 0, "build: %s", err);
    cr_assert_eq(write_index(1, inc, b, &m, 0, err), 0, "append b: %s", err);
    cr_assert_eq(write_index(1, inc, c, &m, 0, err), 0, "append c: %s", err);
    for (int i = 0; i < 6; i++) cr_assert_eq(write_index(1, inc, late[i], &m, 0, err), 0, "append: %s", err);
    /* the same index, its UIC written again from the first event of every user */
    cr_assert_eq(mkdir(fresh, 0755), 0);
    char *src = path_in(inc, "data.mdb"), *dst = path_in(fresh, "data.mdb");
    copy_file(src, dst);
    ubt_write_opts o;
    ubt_write_result res;
    ubt_write_opts_default(&o);
    o.uic = &m;
    cr_assert_eq(ubt_uic_rebuild(fresh, &o, &res, err, sizeof err), 0, "%s", err);
    size_t la, lb, ra, rb;
    char *da = dump_uic(inc, &la, &ra), *db = dump_uic(fresh, &lb, &rb);
    cr_assert_gt(ra, 25, "only %zu records", ra);
    cr_assert_eq(ra, rb, "%zu records after the appends, %zu written from scratch", ra, rb);
    cr_assert(la == lb && memcmp(da, db, la) == 0, "the appended index's UIC differs from one written from scratch");
    cr_assert_eq(verify_problems(inc, NULL), 0);
    check_states(inc, &ref, &m, &seed, 1500);
    /* a build over the whole log: the same snapshots (the same count of records), and the brute force's states */
    cr_assert_eq(write_index(0, whole, abcd, &m, 8, err), 0, "build: %s", err);
    size_t lw, rw;
    char *dw = dump_uic(whole, &lw, &rw);
    cr_assert_eq(rw, ra, "%zu records after a whole build, %zu after the appends", rw, ra);
    check_states(whole, &ref, &m, &seed, 1500);
    free(da);
    free(db);
    free(dw);
    free(src);
    free(dst);
    ref_free(&ref);
    tu_rmrf(dir);
}

Test(uic, append_needs_the_same_model)
{
    uint64_t seed = 3;
    char *dir = tu_tmpdir("uic"), *a = path_in(dir, "a.csv"), *b = path_in(dir, "b.csv"), *idx = path_in(dir, "i");
    ref_log ref = {0};
    random_log(a, &ref, &seed, 500, 1500000000, 600);
    random_log(b, &ref, &seed, 100, 1500000500, 600);
    uic_model m = toy_model(1), other = toy_model(2);
    char err[512];
    cr_assert_eq(write_index(0, idx, a, &m, 0, err), 0, "build: %s", err);
    size_t l0, r0;
    char *before = dump_uic(idx, &l0, &r0);
    cr_assert_eq(write_index(1, idx, b, NULL, 0, err), LSIM_E_INVAL);
    cr_assert(strstr(err, "User Interest Center") && strstr(err, "toy-1"), "%s", err);
    cr_assert_eq(write_index(1, idx, b, &other, 0, err), LSIM_E_INVAL);
    cr_assert(strstr(err, "toy-1") && strstr(err, "toy-2"), "%s", err);
    size_t l1, r1;
    char *after = dump_uic(idx, &l1, &r1);
    cr_assert(l0 == l1 && !memcmp(before, after, l0), "a refused append changed the UIC");
    /* replacing it for another model: every user's state is that model's; a reader opened before sees that its
     * model's states are gone */
    lsim_index *ix;
    lsim_index_reader *rd;
    cr_assert_eq(lsim_index_open(&ix, idx, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lsim_index_reader_new(ix, &rd), 0);
    ubt_write_opts o;
    ubt_write_result res;
    ubt_write_opts_default(&o);
    o.uic = &other;
    cr_assert_eq(ubt_uic_rebuild(idx, &o, &res, err, sizeof err), 0, "%s", err);
    float st[SF];
    ubt_event *ev = NULL;
    uint32_t *ids = NULL;
    size_t cap = 0, ids_cap = 0, folded;
    cr_assert_eq(index_reader_begin(rd), 0);
    cr_assert_eq(index_uic_state(rd, &m, 0, INT64_MAX, st, &ev, &cap, &ids, &ids_cap, &folded), LSIM_E_NOTFOUND);
    cr_assert_eq(index_uic_state(rd, &other, 0, INT64_MAX, st, &ev, &cap, &ids, &ids_cap, &folded), 0);
    index_reader_end(rd);
    free(ev);
    free(ids);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    cr_assert_eq(write_index(1, idx, b, &other, 0, err), 0, "%s", err);
    check_states(idx, &ref, &other, &seed, 500);
    free(before);
    free(after);
    ref_free(&ref);
    tu_rmrf(dir);
}

Test(uic, corrupt_record_is_refused)
{
    uint64_t seed = 5;
    char *dir = tu_tmpdir("uic"), *a = path_in(dir, "a.csv"), *idx = path_in(dir, "i");
    ref_log ref = {0};
    random_log(a, &ref, &seed, 400, 1500000000, 600);
    uic_model m = toy_model(1);
    char err[512];
    cr_assert_eq(write_index(0, idx, a, &m, 0, err), 0, "build: %s", err);
    /* damage one record's state: its seal no longer holds */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi db;
    MDB_cursor *cur;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_open(env, idx, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, UIC_DB, 0, &db), 0);
    cr_assert_eq(mdb_cursor_open(txn, db, &cur), 0);
    MDB_val k, d;
    cr_assert_eq(mdb_cursor_get(cur, &k, &d, MDB_FIRST), 0);
    uint32_t user = ubt_get_u32be(k.mv_data);
    uint8_t val[256];
    cr_assert_leq(d.mv_size, sizeof val);
    memcpy(val, d.mv_data, d.mv_size);
    val[UIC_RECORD_HEADER + 1] ^= 0x10;
    MDB_val nd = {d.mv_size, val};
    cr_assert_eq(mdb_cursor_put(cur, &k, &nd, MDB_CURRENT), 0);
    mdb_cursor_close(cur);
    MDB_dbi meta; /* stamped as lsim's writers do, or the open refuses the file before any record is read */
    cr_assert_eq(mdb_dbi_open(txn, UBT_DB_META, 0, &meta), 0);
    cr_assert_eq(lmdb_stamp_put(txn, meta, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    cr_assert_geq(verify_problems(idx, NULL), 1);
    lsim_index *ix;
    int rc = lsim_index_open(&ix, idx, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    {
        lsim_index_reader *rd;
        cr_assert_eq(lsim_index_reader_new(ix, &rd), 0);
        float s[SF];
        ubt_event *ev = NULL;
        uint32_t *ids = NULL;
        size_t cap = 0, ids_cap = 0, folded;
        cr_assert_eq(index_reader_begin(rd), 0);
        rc = index_uic_state(rd, &m, user, INT64_MAX, s, &ev, &cap, &ids, &ids_cap, &folded);
        index_reader_end(rd);
        cr_assert_eq(rc, LSIM_E_CORRUPT);
        cr_assert(strstr(lsim_index_reader_errmsg(rd), "User Interest Center"), "%s",
                  lsim_index_reader_errmsg(rd));
        free(ev);
        free(ids);
        lsim_index_reader_free(rd);
        lsim_index_close(ix);
    }
    ref_free(&ref);
    tu_rmrf(dir);
}
