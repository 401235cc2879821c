/*
 * index_verify.c: see index_verify.h. One read transaction, one pass over
 * the "ubt" database in key order (user, chain, seq), so a user's chains are
 * seen together; a user's events are gathered to check tie ranks across
 * chains and the summary.
 */
#include "index/index_verify.h"

#include "index/index_internal.h"
#include "index/uic.h"
#include "storage/lmdb_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct verifier {
    lsim_index *ix;
    index_verify_report *rep;
    void (*on_problem)(void *, const char *);
    void *ctx;
    uint64_t max_problems;
    /* current user */
    uint32_t user;
    int have_user;
    ubt_event *evs;
    size_t n_evs, cap_evs;
    uint32_t *own;
    size_t n_own, cap_own;
} verifier;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void problem(verifier *v, const char *fmt, ...)
{
    v->rep->problems++;
    if (v->rep->problems > v->max_problems || !v->on_problem) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->on_problem(v->ctx, msg);
}

static int by_ts_tie(const void *a, const void *b)
{
    const ubt_event *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->tie > y->tie) - (x->tie < y->tie);
}

static int finish_user(verifier *v, MDB_txn *txn)
{
    if (!v->have_user) return 0;
    lsim_index *ix = v->ix;
    qsort(v->evs, v->n_evs, sizeof *v->evs, by_ts_tie);
    for (size_t i = 0; i < v->n_evs; i++) {
        uint32_t want = (i > 0 && v->evs[i - 1].ts == v->evs[i].ts) ? v->evs[i - 1].tie + 1 : 0;
        if (v->evs[i].tie != want) {
            problem(v, "user %u: tie ranks at ts %lld are not 0, 1, 2, ...", v->user, (long long)v->evs[i].ts);
            break;
        }
    }
    uint8_t key[4];
    ubt_put_u32be(key, v->user);
    MDB_val k = {4, key}, d;
    ubt_user_summary s;
    if (mdb_get(txn, ix->db_users, &k, &d) || ubt_summary_decode(&s, v->user, d.mv_data, d.mv_size))
        problem(v, "user %u: summary missing or corrupt", v->user);
    else if (s.events != v->n_evs || (v->n_evs && (s.first_ts != v->evs[0].ts || s.last_ts != v->evs[v->n_evs - 1].ts)))
        problem(v, "user %u: summary says %llu events, blocks hold %zu", v->user, (unsigned long long)s.events,
                v->n_evs);
    v->rep->users++;
    v->n_evs = 0;
    v->n_own = 0;
    v->have_user = 0;
    return 0;
}

static int grow(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap) return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < want) nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q) return LSIM_E_NOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int check_block(verifier *v, lsim_index_reader *rd, const uint8_t key[UBT_KEY_LEN], const MDB_val *d,
                       ubt_event *last, int first_of_chain)
{
    uint32_t user = ubt_get_u32be(key), cat = ubt_get_u32be(key + 4), seq = ubt_get_u32be(key + 8);
    lsim_index *ix = v->ix;
    size_t got = 0;
    block_header h;
    if (d->mv_size > UBT_BLOCK_MAX_BYTES) {
        problem(v, "user %u chain %u seq %u: block of %zu bytes, more than %u", user, cat, seq, d->mv_size,
                UBT_BLOCK_MAX_BYTES);
        return 0;
    }
    if (block_read_header(d->mv_data, d->mv_size, &h) ||
        block_decode_keyed(rd->codec, rd->blk, BLOCK_MAX_EVENTS, &got, d->mv_data, d->mv_size, cat, key, UBT_KEY_LEN)) {
        problem(v, "user %u chain %u seq %u: block fails its checksum or structure", user, cat, seq);
        return 0;
    }
    if (got != h.n || got > UBT_CHUNK_EVENTS)
        problem(v, "user %u chain %u seq %u: bad block size (%zu events, %zu bytes)", user, cat, seq, got,
                d->mv_size);
    if (h.with_cat != (cat == UBT_MIXED))
        problem(v, "user %u chain %u seq %u: category column %s", user, cat, seq,
                h.with_cat ? "in an own chain" : "missing in a mixed chain");
    if (grow((void **)&v->evs, &v->cap_evs, v->n_evs + got, sizeof *v->evs)) return LSIM_E_NOMEM;
    for (size_t i = 0; i < got; i++) {
        ubt_event e = rd->blk[i];
        if ((i > 0 || !first_of_chain) && by_ts_tie(last, &e) >= 0)
            problem(v, "user %u chain %u seq %u: events out of (time, tie) order", user, cat, seq);
        *last = e;
        if (e.item >= ix->counts.items || e.type >= ix->counts.types || e.cat >= ix->counts.categories)
            problem(v, "user %u chain %u seq %u: id outside the vocabulary", user, cat, seq);
        if (cat == UBT_MIXED)
            for (size_t j = 0; j < v->n_own; j++)
                if (v->own[j] == e.cat) {
                    problem(v, "user %u: category %u is in both its own chain and the mixed chain", user, e.cat);
                    break;
                }
        v->evs[v->n_evs++] = e;
    }
    v->rep->events += got;
    v->rep->blocks++;
    return 0;
}

/* The user summary of `user` (0), or a problem reported (1). */
static int summary_of(verifier *v, MDB_txn *txn, uint32_t user, ubt_user_summary *s)
{
    uint8_t key[4];
    ubt_put_u32be(key, user);
    MDB_val k = {4, key}, d;
    if (mdb_get(txn, v->ix->db_users, &k, &d) || ubt_summary_decode(s, user, d.mv_data, d.mv_size)) {
        problem(v, "user %u: a User Interest Center state for a user without a summary", user);
        return 1;
    }
    return 0;
}

/* The User Interest Center (index/uic.h): every record sealed under its key, of a known user; per user counts
 * rising to one head, last, that holds all the user's events and is keyed by the newest one's time; a head for
 * every user. */
static int verify_uic(verifier *v, lsim_index_reader *rd)
{
    lsim_index *ix = v->ix;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(rd->txn, ix->db_uic, &cur);
    if (rc) return lmdb_err(rc, RD_MSG(rd), "reading the User Interest Center");
    MDB_val k, d;
    uint64_t heads = 0, prev_count = 0;
    uint32_t user = UINT32_MAX;
    int have_user = 0, head_seen = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        v->rep->uic_records++;
        if (k.mv_size != UIC_KEY_LEN) {
            problem(v, "a User Interest Center key of %zu bytes", k.mv_size);
            continue;
        }
        uint32_t u = ubt_get_u32be(k.mv_data);
        int64_t ts = uic_key_ts(k.mv_data);
        if (!have_user || u != user) {
            if (have_user && !head_seen) problem(v, "user %u: User Interest Center states without a head", user);
            user = u;
            have_user = 1;
            head_seen = 0;
            prev_count = 0;
            if (u >= ix->counts.users) problem(v, "a User Interest Center state of user %u, beyond the users", u);
        }
        uic_record r;
        if (uic_record_decode(&r, k.mv_data, d.mv_data, d.mv_size, ix->uic.state_floats)) {
            problem(v, "user %u: a User Interest Center state (time %lld) fails its checksum or structure", u,
                    (long long)ts);
            continue;
        }
        if (head_seen) problem(v, "user %u: a User Interest Center state after its head", u);
        if (r.count <= prev_count) problem(v, "user %u: User Interest Center states out of order", u);
        prev_count = r.count;
        if (r.head) {
            head_seen = 1;
            heads++;
            ubt_user_summary s;
            if (!summary_of(v, rd->txn, u, &s) && (s.events != r.count || s.last_ts != ts))
                problem(v, "user %u: the User Interest Center's head holds %llu events up to %lld, the user has "
                        "%llu up to %lld", u, (unsigned long long)r.count, (long long)ts,
                        (unsigned long long)s.events, (long long)s.last_ts);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return lmdb_err(rc, RD_MSG(rd), "reading the User Interest Center");
    if (have_user && !head_seen) problem(v, "user %u: User Interest Center states without a head", user);
    if (heads != ix->counts.users)
        problem(v, "the User Interest Center has %llu users' states, the index %llu users",
                (unsigned long long)heads, (unsigned long long)ix->counts.users);
    return 0;
}

int index_verify(lsim_index *ix, index_verify_report *rep, void (*on_problem)(void *, const char *), void *ctx,
                 uint64_t max_problems)
{
    memset(rep, 0, sizeof *rep);
    verifier v = {.ix = ix, .rep = rep, .on_problem = on_problem, .ctx = ctx, .max_problems = max_problems};
    lsim_index_reader *rd;
    int rc = lsim_index_reader_new(ix, &rd);
    if (rc) return rc;
    if ((rc = index_reader_begin(rd))) {
        lsim_index_reader_free(rd);
        return rc;
    }
    MDB_val k, d;
    uint32_t chain_user = 0, chain_cat = 0;
    int in_chain = 0;
    ubt_event last = {0};
    rc = mdb_cursor_get(rd->cur, &k, &d, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size != UBT_KEY_LEN) {
            problem(&v, "a block key of %zu bytes (want %d)", k.mv_size, UBT_KEY_LEN);
            rc = mdb_cursor_get(rd->cur, &k, &d, MDB_NEXT);
            continue;
        }
        uint32_t user = ubt_get_u32be(k.mv_data), cat = ubt_get_u32be((const uint8_t *)k.mv_data + 4);
        if (!v.have_user || user != v.user) {
            finish_user(&v, rd->txn);
            v.user = user;
            v.have_user = 1;
            if (user >= ix->counts.users) problem(&v, "block of user %u, beyond the %llu users", user,
                                                  (unsigned long long)ix->counts.users);
        }
        int first = !in_chain || chain_user != user || chain_cat != cat;
        if (first) {
            rep->chains++;
            if (cat != UBT_MIXED) {
                if (cat >= ix->counts.categories) problem(&v, "user %u: chain of unknown category %u", user, cat);
                if (grow((void **)&v.own, &v.cap_own, v.n_own + 1, sizeof *v.own)) {
                    rc = LSIM_E_NOMEM;
                    break;
                }
                v.own[v.n_own++] = cat;
            }
        }
        in_chain = 1;
        chain_user = user;
        chain_cat = cat;
        if ((rc = check_block(&v, rd, k.mv_data, &d, &last, first))) break;
        rc = mdb_cursor_get(rd->cur, &k, &d, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    else if (rc > 0) rc = lmdb_err(rc, RD_MSG(rd), "reading blocks");
    if (!rc) finish_user(&v, rd->txn);
    if (!rc) {
        MDB_stat st;
        mdb_stat(rd->txn, ix->db_users, &st);
        if (st.ms_entries != ix->counts.users || rep->users != ix->counts.users)
            problem(&v, "%llu users in the vocabulary, %zu summaries, %llu users with blocks",
                    (unsigned long long)ix->counts.users, (size_t)st.ms_entries, (unsigned long long)rep->users);
        if (rep->events != ix->counts.events)
            problem(&v, "counts say %llu events, blocks hold %llu", (unsigned long long)ix->counts.events,
                    (unsigned long long)rep->events);
        if (rep->blocks != ix->counts.blocks)
            problem(&v, "counts say %llu blocks, there are %llu", (unsigned long long)ix->counts.blocks,
                    (unsigned long long)rep->blocks);
        for (uint32_t i = 0; i < ix->counts.items; i++) {
            uint32_t c = vocab_cat(ix->voc[IX_ITEM], i);
            if (c != VOCAB_NO_CAT && c >= ix->counts.categories) {
                problem(&v, "item %u has category %u outside the vocabulary", i, c);
                break;
            }
        }
    }
    if (!rc && ix->has_uic) rc = verify_uic(&v, rd);
    index_reader_end(rd);
    lsim_index_reader_free(rd);
    free(v.evs);
    free(v.own);
    if (!rc && rep->problems) rc = LSIM_E_CORRUPT;
    return rc;
}
