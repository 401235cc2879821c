/*
 * chain_merge.c: see chain_merge.h.
 *
 * LMDB's rule: a value read in the write transaction is valid only until the
 * next write, so blocks are decoded into merger memory before anything is
 * deleted or put.
 */
#include "index/chain_merge.h"

#include "lsim.h"
#include "storage/lmdb_env.h"

#include <stdlib.h>
#include <string.h>

static int nomem(chain_merger *mg)
{
    return err_set(mg->err, mg->errlen, LSIM_E_NOMEM, "out of memory");
}

static int enc_err(chain_merger *mg, int rc)
{
    return err_set(mg->err, mg->errlen, rc, "%s", mg->enc->err);
}

static int put_direct(void *ctx, const uint8_t key[UBT_KEY_LEN], const uint8_t *blk, size_t len)
{
    chain_merger *mg = ctx;
    MDB_val k = {UBT_KEY_LEN, (void *)key}, d = {len, (void *)blk};
    int rc = mdb_put(mg->txn, mg->db_ubt, &k, &d, 0);
    return rc ? lmdb_err(rc, mg->enc->err, sizeof mg->enc->err, "writing an event block") : 0;
}

int chain_merger_init(chain_merger *mg, MDB_txn *txn, MDB_dbi db_ubt, MDB_dbi db_users, chain_encoder *enc,
                      uint64_t *blocks, uint32_t own_min, uint32_t mixed_max, char *err, size_t errlen)
{
    memset(mg, 0, sizeof *mg);
    mg->txn = txn;
    mg->db_ubt = db_ubt;
    mg->db_users = db_users;
    mg->enc = enc;
    mg->blocks = blocks;
    mg->own_min = own_min;
    mg->mixed_max = mixed_max;
    mg->err = err;
    mg->errlen = errlen;
    int rc = mdb_cursor_open(txn, db_ubt, &mg->cur);
    return rc ? lmdb_err(rc, err, errlen, "opening a cursor") : 0;
}

void chain_merger_free(chain_merger *mg)
{
    if (mg->cur) mdb_cursor_close(mg->cur);
    free(mg->old.v);
    free(mg->merged.v);
    free(mg->to_mixed.v);
    free(mg->add.v);
    free(mg->groups);
    free(mg->old_ts);
    free(mg->list);
    memset(mg, 0, sizeof *mg);
}

/* Decodes the block in d, stored under key (user | cat | seq), appending its events to out. */
static int decode_into(chain_merger *mg, ev_buf *out, const MDB_val *d, const uint8_t key[UBT_KEY_LEN])
{
    if (ev_reserve(out, out->n + BLOCK_MAX_EVENTS)) return nomem(mg);
    size_t got = 0;
    uint32_t user = ubt_get_u32be(key), cat = ubt_get_u32be(key + 4);
    if (d->mv_size > UBT_BLOCK_MAX_BYTES || block_decode_keyed(mg->enc->codec, out->v + out->n, BLOCK_MAX_EVENTS, &got,
                                                                d->mv_data, d->mv_size, cat, key, UBT_KEY_LEN))
        return err_set(mg->err, mg->errlen, LSIM_E_CORRUPT,
                       "corrupt event block of user %u chain %u: run `lsim index verify`", user, cat);
    out->n += got;
    return 0;
}

static int put_summary(chain_merger *mg, uint32_t user, const ubt_user_summary *s)
{
    uint8_t key[4], val[UBT_SUMMARY_MAX_BYTES];
    ubt_put_u32be(key, user);
    MDB_val k = {4, key}, d = {ubt_summary_encode(val, user, s), val};
    int rc = mdb_put(mg->txn, mg->db_users, &k, &d, 0);
    return rc ? lmdb_err(rc, mg->err, mg->errlen, "writing a user summary") : 0;
}

static int get_summary(chain_merger *mg, uint32_t user, ubt_user_summary *s)
{
    uint8_t key[4];
    ubt_put_u32be(key, user);
    MDB_val k = {4, key}, d;
    int rc = mdb_get(mg->txn, mg->db_users, &k, &d);
    if (rc) return lmdb_err(rc, mg->err, mg->errlen, "reading a user summary");
    if (ubt_summary_decode(s, user, d.mv_data, d.mv_size))
        return err_set(mg->err, mg->errlen, LSIM_E_CORRUPT, "corrupt summary of user %u", user);
    return 0;
}

/* The blocks of chain (user, cat): their seq and header, in key order. */
static int list_chain(chain_merger *mg, uint32_t user, uint32_t cat, size_t *n)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, 0);
    MDB_val k = {UBT_KEY_LEN, key}, d;
    *n = 0;
    int rc = mdb_cursor_get(mg->cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == UBT_KEY_LEN && memcmp(k.mv_data, key, 8) == 0) {
        if (*n == mg->list_cap) {
            size_t nc = mg->list_cap ? mg->list_cap * 2 : 64;
            chain_block *b = realloc(mg->list, nc * sizeof *b);
            if (!b) return nomem(mg);
            mg->list = b;
            mg->list_cap = nc;
        }
        chain_block *b = &mg->list[(*n)++];
        b->seq = ubt_get_u32be((const uint8_t *)k.mv_data + 8);
        if (d.mv_size > UBT_BLOCK_MAX_BYTES || block_read_header(d.mv_data, d.mv_size, &b->h))
            return err_set(mg->err, mg->errlen, LSIM_E_CORRUPT, "corrupt block header, user %u chain %u seq %u",
                           user, cat, b->seq);
        rc = mdb_cursor_get(mg->cur, &k, &d, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(rc, mg->err, mg->errlen, "reading a chain");
    return 0;
}

static int del_key(chain_merger *mg, uint32_t user, uint32_t cat, uint32_t seq)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, seq);
    MDB_val k = {UBT_KEY_LEN, key};
    int rc = mdb_del(mg->txn, mg->db_ubt, &k, NULL);
    if (rc) return lmdb_err(rc, mg->err, mg->errlen, "deleting an event block");
    (*mg->blocks)--;
    return 0;
}

static int get_block(chain_merger *mg, uint32_t user, uint32_t cat, uint32_t seq, MDB_val *d)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, seq);
    MDB_val k = {UBT_KEY_LEN, key};
    int rc = mdb_get(mg->txn, mg->db_ubt, &k, d);
    return rc ? lmdb_err(rc, mg->err, mg->errlen, "reading an event block") : 0;
}

static int cmp_ev(const ubt_event *a, const ubt_event *b)
{
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return (a->tie > b->tie) - (a->tie < b->tie);
}

/* merged = a (+) b, by (ts, tie). */
static int merge_lists(chain_merger *mg, const ubt_event *a, size_t na, const ubt_event *b, size_t nb)
{
    ev_buf *out = &mg->merged;
    out->n = 0;
    if (ev_reserve(out, na + nb)) return nomem(mg);
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) out->v[k++] = cmp_ev(&b[j], &a[i]) < 0 ? b[j++] : a[i++];
    while (i < na) out->v[k++] = a[i++];
    while (j < nb) out->v[k++] = b[j++];
    out->n = k;
    return 0;
}

/* Reads blocks [from, nb) of the listed chain into mg->old and deletes them. */
static int take_blocks(chain_merger *mg, uint32_t user, uint32_t cat, size_t from, size_t nb)
{
    int rc;
    mg->old.n = 0;
    for (size_t i = from; i < nb; i++) {
        MDB_val d;
        uint8_t key[UBT_KEY_LEN];
        ubt_key(key, user, cat, mg->list[i].seq);
        if ((rc = get_block(mg, user, cat, mg->list[i].seq, &d)) || (rc = decode_into(mg, &mg->old, &d, key)))
            return rc;
    }
    for (size_t i = from; i < nb; i++)
        if ((rc = del_key(mg, user, cat, mg->list[i].seq))) return rc;
    return 0;
}

/* Merges add[0..m) (one category) into its own chain (user, cat). */
static int merge_own_chain(chain_merger *mg, uint32_t user, uint32_t cat, const ubt_event *add, size_t m)
{
    size_t nb;
    int rc = list_chain(mg, user, cat, &nb);
    if (rc) return rc;
    const chain_block *b = mg->list;
    /* the first block holding an event after add[0]; an equal second is not after, since
     * the new events' tie ranks put them after every stored event of that second */
    size_t j = 0;
    while (j < nb && b[j].h.last_ts <= add[0].ts) j++;
    if (j == nb && nb > 0 && b[nb - 1].h.n < UBT_CHUNK_EVENTS) j = nb - 1; /* refill the tail */
    uint32_t seq0 = j < nb ? b[j].seq : (nb ? b[nb - 1].seq + 1 : 0);
    if ((rc = take_blocks(mg, user, cat, j, nb)) || (rc = merge_lists(mg, mg->old.v, mg->old.n, add, m))) return rc;
    rc = chain_write(mg->enc, user, cat, seq0, mg->merged.v, mg->merged.n, 0, mg->blocks);
    return rc ? enc_err(mg, rc) : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted timestamps of the stored events of `user` at or after from_ts, in
 * mg->old_ts (so new events get tie ranks after them). */
static int stored_ts_from(chain_merger *mg, uint32_t user, int64_t from_ts, size_t *count)
{
    *count = 0;
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, 0, 0);
    MDB_val k = {UBT_KEY_LEN, key}, d;
    mg->old.n = 0;
    int rc = mdb_cursor_get(mg->cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == UBT_KEY_LEN && ubt_get_u32be(k.mv_data) == user) {
        block_header h;
        if (d.mv_size > UBT_BLOCK_MAX_BYTES || block_read_header(d.mv_data, d.mv_size, &h))
            return err_set(mg->err, mg->errlen, LSIM_E_CORRUPT, "corrupt block header of user %u", user);
        if (h.last_ts >= from_ts && (rc = decode_into(mg, &mg->old, &d, k.mv_data))) return rc;
        rc = mdb_cursor_get(mg->cur, &k, &d, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(rc, mg->err, mg->errlen, "reading a user's chains");
    if (mg->old.n > mg->old_ts_cap) {
        int64_t *t = realloc(mg->old_ts, mg->old.n * sizeof *t);
        if (!t) return nomem(mg);
        mg->old_ts = t;
        mg->old_ts_cap = mg->old.n;
    }
    size_t c = 0;
    for (size_t i = 0; i < mg->old.n; i++)
        if (mg->old.v[i].ts >= from_ts) mg->old_ts[c++] = mg->old.v[i].ts;
    qsort(mg->old_ts, c, sizeof *mg->old_ts, cmp_i64);
    *count = c;
    return 0;
}

static int chain_exists(chain_merger *mg, uint32_t user, uint32_t cat, int *exists)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, 0);
    MDB_val k = {UBT_KEY_LEN, key}, d;
    int rc = mdb_cursor_get(mg->cur, &k, &d, MDB_SET_RANGE);
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(rc, mg->err, mg->errlen, "looking up a chain");
    *exists = rc == 0 && k.mv_size == UBT_KEY_LEN && memcmp(k.mv_data, key, 8) == 0;
    return 0;
}

/* Merges add[0..m) (categories without an own chain) into the mixed chain,
 * promoting categories that outgrow it. */
static int merge_mixed(chain_merger *mg, uint32_t user, const ubt_event *add, size_t m)
{
    chain_encoder *e = mg->enc;
    size_t nb;
    int rc = list_chain(mg, user, UBT_MIXED, &nb);
    if (rc || (rc = take_blocks(mg, user, UBT_MIXED, 0, nb)) || (rc = merge_lists(mg, mg->old.v, mg->old.n, add, m)))
        return rc;
    size_t total = mg->merged.n;
    if (ev_reserve(&e->grouped, total) || ev_reserve(&e->mixed, total)) return nomem(mg);
    if (chain_plan_make(&e->plan, e->grouped.v, mg->merged.v, total, mg->own_min, mg->mixed_max)) return nomem(mg);
    for (size_t g = 0; g < e->plan.n_groups; g++) {
        const cat_group *cg = &e->plan.groups[g];
        if (cg->own && (rc = chain_write(e, user, cg->cat, 0, e->grouped.v + cg->start, cg->count, 0, mg->blocks)))
            return enc_err(mg, rc);
    }
    e->mixed.n = chain_filter_mixed(&e->plan, e->mixed.v, mg->merged.v, total);
    if (e->mixed.n && (rc = chain_write(e, user, UBT_MIXED, 0, e->mixed.v, e->mixed.n, 1, mg->blocks)))
        return enc_err(mg, rc);
    return 0;
}

int chain_merge_user(chain_merger *mg, uint32_t user, const batch_event *run, size_t m)
{
    chain_encoder *e = mg->enc;
    e->put = put_direct;
    e->put_ctx = mg;
    ubt_user_summary s;
    int rc = get_summary(mg, user, &s);
    if (rc) return rc;
    size_t n_stored = 0;
    if (run[0].ts <= s.last_ts && (rc = stored_ts_from(mg, user, run[0].ts, &n_stored))) return rc;
    if ((rc = chain_user_events(e, run, m, mg->old_ts, n_stored))) return enc_err(mg, rc);
    /* group the new events by category (the plan here only groups: nothing is promoted) */
    if (ev_reserve(&e->grouped, m) || ev_reserve(&mg->add, m) || ev_reserve(&mg->to_mixed, m)) return nomem(mg);
    if (chain_plan_make(&e->plan, e->grouped.v, e->user.v, m, UINT32_MAX, UINT32_MAX)) return nomem(mg);
    size_t ng = e->plan.n_groups;
    if (ng > mg->groups_cap) {
        cat_group *g = realloc(mg->groups, ng * sizeof *g);
        if (!g) return nomem(mg);
        mg->groups = g;
        mg->groups_cap = ng;
    }
    /* keep copies: merging reuses the encoder's plan and scratch */
    memcpy(mg->groups, e->plan.groups, ng * sizeof *mg->groups);
    memcpy(mg->add.v, e->grouped.v, m * sizeof *mg->add.v);
    memcpy(mg->to_mixed.v, e->user.v, m * sizeof *mg->to_mixed.v);
    for (size_t g = 0; g < ng; g++) {
        int exists = 0;
        if ((rc = chain_exists(mg, user, mg->groups[g].cat, &exists))) return rc;
        mg->groups[g].own = exists;
        if (exists && (rc = merge_own_chain(mg, user, mg->groups[g].cat, mg->add.v + mg->groups[g].start,
                                            mg->groups[g].count)))
            return rc;
    }
    chain_plan own = {.groups = mg->groups, .n_groups = ng};
    mg->to_mixed.n = chain_filter_mixed(&own, mg->to_mixed.v, mg->to_mixed.v, m);
    if (mg->to_mixed.n && (rc = merge_mixed(mg, user, mg->to_mixed.v, mg->to_mixed.n))) return rc;
    s.events += m;
    if (run[0].ts < s.first_ts) s.first_ts = run[0].ts;
    if (run[m - 1].ts > s.last_ts) s.last_ts = run[m - 1].ts;
    return put_summary(mg, user, &s);
}
