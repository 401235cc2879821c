/*
 * index_write.c: `lsim index build` and `lsim index append`: logs in, User
 * Behavior Tree out (see index_write.h for the crash-safety contract and
 * ubt_layout.h for the layout and its invariants).
 *
 * Pipeline: read lines (loaders/) -> intern raw ids into the vocabularies ->
 * buffer dense events up to mem_limit -> sort the batch by (user, ts) keeping
 * log order among ties -> per user: give each event its tie rank, plan the
 * chains (own / mixed), and write blocks. A user new to the index is written
 * with MDB_APPEND (its keys sort after every stored key, since dense ids only
 * grow); a user already stored is merged chain by chain, rewriting only the
 * blocks from the first one the new events fall into.
 *
 * Not here: the reading side (index_read.c), verification (index_verify.c).
 */
#include "index/index_write.h"

#include "index/chain_plan.h"
#include "index/event_sort.h"
#include "index/ubt_layout.h"
#include "index/vocab.h"
#include "loaders/log_pipe.h"
#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"
#include "storage/lmdb_env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DICT_SAMPLE_BYTES (2u << 20)
#define DICT_CAP (16u << 10)
#define MAX_TYPES 255u

enum { V_USER, V_ITEM, V_CAT, V_TYPE, V_KINDS };
static const char vocab_kinds[V_KINDS] = {UBT_VOCAB_USER, UBT_VOCAB_ITEM, UBT_VOCAB_CAT,
                                          UBT_VOCAB_TYPE};

/* A growable array of ubt_event. */
typedef struct ev_buf {
    ubt_event *v;
    size_t n, cap;
} ev_buf;

typedef struct writer {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi db_meta, db_ubt, db_users, db_vocab;
    vocab *voc[V_KINDS];
    ubt_counts counts;
    uint32_t own_min, mixed_max;
    block_codec *codec;
    int zstd_level;
    const ubt_write_opts *o;
    ubt_write_result *res;
    /* the batch */
    batch_event *ev, *tmp;
    size_t n, cap;
    size_t *starts;
    size_t starts_cap;
    uint32_t users_before_batch; /* users with ids >= this have nothing stored yet */
    /* per-user scratch */
    ev_buf user, grouped, old, merged, mixed;
    int64_t *old_ts;
    size_t old_ts_cap;
    chain_plan plan;
    uint8_t *blk;
    size_t blk_cap;
    /* dictionary training: while set, chunks are collected instead of written */
    int training;
    uint8_t *samples;
    size_t samples_len, samples_cap;
    size_t *sample_lens;
    size_t n_samples, sample_lens_cap;
    int want_dict;
    uint32_t last_id[V_KINDS]; /* the previous line's ids, UINT32_MAX: none */
    /* progress */
    struct timespec t0, t_last;
    uint64_t bytes_done; /* of finished inputs */
    uint64_t bytes_total;
    char *err;
    size_t errlen;
} writer;

void ubt_write_opts_default(ubt_write_opts *o)
{
    memset(o, 0, sizeof *o);
    log_spec_default(&o->spec, LOG_FORMAT_TAOBAO);
    o->mem_limit = (size_t)1 << 30;
}

uint32_t ubt_shard_of(const char *user, size_t len, uint32_t count)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)user[i];
        h *= 0x100000001b3ULL;
    }
    return count ? (uint32_t)(h % count) : 0;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int ev_reserve(ev_buf *b, size_t n)
{
    if (n <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < n) nc *= 2;
    ubt_event *v = realloc(b->v, nc * sizeof *v);
    if (!v) return LSIM_E_NOMEM;
    b->v = v;
    b->cap = nc;
    return 0;
}

static int nomem(writer *w)
{
    return err_set(w->err, w->errlen, LSIM_E_NOMEM, "out of memory");
}

/* ---------------------------------------------------------------- blocks */

static int dict_sample(writer *w, const ubt_event *ev, size_t m, int with_cat)
{
    if (w->samples_len >= DICT_SAMPLE_BYTES) return 0;
    size_t need = w->samples_len + block_encoded_bound(m);
    if (need > w->samples_cap) {
        size_t nc = w->samples_cap ? w->samples_cap * 2 : (1u << 20);
        while (nc < need) nc *= 2;
        uint8_t *s = realloc(w->samples, nc);
        if (!s) return nomem(w);
        w->samples = s;
        w->samples_cap = nc;
    }
    if (w->n_samples == w->sample_lens_cap) {
        size_t nc = w->sample_lens_cap ? w->sample_lens_cap * 2 : 4096;
        size_t *l = realloc(w->sample_lens, nc * sizeof *l);
        if (!l) return nomem(w);
        w->sample_lens = l;
        w->sample_lens_cap = nc;
    }
    size_t len;
    int rc = block_raw_payload(w->samples + w->samples_len, w->samples_cap - w->samples_len, &len,
                               ev, m, with_cat);
    if (rc) return err_set(w->err, w->errlen, rc, "block payload for the dictionary failed");
    w->samples_len += len;
    w->sample_lens[w->n_samples++] = len;
    return 0;
}

/* Writes ev[0..m) as the blocks of chain (user, cat) from seq0 on. */
static int write_chain(writer *w, uint32_t user, uint32_t cat, uint32_t seq0, const ubt_event *ev,
                       size_t m, int with_cat, unsigned put_flags)
{
    int with = with_cat ? 1 : 0;
    size_t i = 0;
    uint32_t seq = seq0;
    while (i < m) {
        size_t take = m - i < UBT_CHUNK_EVENTS ? m - i : UBT_CHUNK_EVENTS;
        if (w->training) {
            int rc = dict_sample(w, ev + i, take, with);
            if (rc) return rc;
            i += take;
            continue;
        }
        size_t len = 0;
        for (;;) {
            size_t bound = block_encoded_bound(take);
            if (bound > w->blk_cap) {
                uint8_t *b = realloc(w->blk, bound);
                if (!b) return nomem(w);
                w->blk = b;
                w->blk_cap = bound;
            }
            int rc = block_encode(w->codec, w->blk, w->blk_cap, &len, ev + i, take, with);
            if (rc) return err_set(w->err, w->errlen, rc, "encoding a block of user %u failed", user);
            if (len <= UBT_BLOCK_MAX_BYTES || take == 1) break;
            take = (take + 1) / 2; /* keep blocks inline in LMDB pages */
        }
        uint8_t key[UBT_KEY_LEN];
        ubt_key(key, user, cat, seq);
        MDB_val k = {UBT_KEY_LEN, key}, d = {len, w->blk};
        int rc = mdb_put(w->txn, w->db_ubt, &k, &d, put_flags);
        if (rc) return lmdb_err(rc, w->err, w->errlen, "writing an event block");
        w->counts.blocks++;
        if (seq == UINT32_MAX) return err_set(w->err, w->errlen, LSIM_E_LIMIT, "chain too long");
        seq++;
        i += take;
    }
    return 0;
}

/* Decodes the block in d, appending its events to out. */
static int decode_into(writer *w, ev_buf *out, const MDB_val *d, uint32_t cat, uint32_t user)
{
    if (ev_reserve(out, out->n + BLOCK_MAX_EVENTS)) return nomem(w);
    size_t got = 0;
    int rc = block_decode(w->codec, out->v + out->n, BLOCK_MAX_EVENTS, &got, d->mv_data, d->mv_size,
                          cat);
    if (rc)
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT,
                       "corrupt event block of user %u category %u: run `lsim index verify`", user, cat);
    out->n += got;
    return 0;
}

/* ------------------------------------------------------------ user merge */

static int put_summary(writer *w, uint32_t user, const ubt_user_summary *s, unsigned flags)
{
    uint8_t key[4], val[UBT_SUMMARY_MAX_BYTES];
    ubt_put_u32be(key, user);
    MDB_val k = {4, key}, d = {ubt_summary_encode(val, s), val};
    int rc = mdb_put(w->txn, w->db_users, &k, &d, flags);
    return rc ? lmdb_err(rc, w->err, w->errlen, "writing a user summary") : 0;
}

static int get_summary(writer *w, uint32_t user, ubt_user_summary *s)
{
    uint8_t key[4];
    ubt_put_u32be(key, user);
    MDB_val k = {4, key}, d;
    int rc = mdb_get(w->txn, w->db_users, &k, &d);
    if (rc) return lmdb_err(rc, w->err, w->errlen, "reading a user summary");
    if (ubt_summary_decode(s, d.mv_data, d.mv_size))
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT, "corrupt summary of user %u", user);
    return 0;
}

/* Blocks of one chain: their seq and header, in key order. */
typedef struct chain_block {
    uint32_t seq;
    block_header h;
} chain_block;

static int list_chain(writer *w, MDB_cursor *cur, uint32_t user, uint32_t cat, chain_block **out,
                      size_t *n, size_t *cap)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, 0);
    MDB_val k = {UBT_KEY_LEN, key}, d;
    *n = 0;
    int rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == UBT_KEY_LEN && memcmp(k.mv_data, key, 8) == 0) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            chain_block *b = realloc(*out, nc * sizeof *b);
            if (!b) return nomem(w);
            *out = b;
            *cap = nc;
        }
        chain_block *b = &(*out)[(*n)++];
        b->seq = ubt_get_u32be((const uint8_t *)k.mv_data + 8);
        if (block_read_header(d.mv_data, d.mv_size, &b->h))
            return err_set(w->err, w->errlen, LSIM_E_CORRUPT,
                           "corrupt block header, user %u category %u seq %u", user, cat, b->seq);
        rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(rc, w->err, w->errlen, "reading a chain");
    return 0;
}

static int del_key(writer *w, uint32_t user, uint32_t cat, uint32_t seq)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, seq);
    MDB_val k = {UBT_KEY_LEN, key};
    int rc = mdb_del(w->txn, w->db_ubt, &k, NULL);
    if (rc) return lmdb_err(rc, w->err, w->errlen, "deleting an event block");
    w->counts.blocks--;
    return 0;
}

static int get_block(writer *w, uint32_t user, uint32_t cat, uint32_t seq, MDB_val *d)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, seq);
    MDB_val k = {UBT_KEY_LEN, key};
    int rc = mdb_get(w->txn, w->db_ubt, &k, d);
    return rc ? lmdb_err(rc, w->err, w->errlen, "reading an event block") : 0;
}

static int cmp_ev(const ubt_event *a, const ubt_event *b)
{
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return (a->tie > b->tie) - (a->tie < b->tie);
}

/* merged = old (+) add, by (ts, tie). */
static int merge_lists(writer *w, ev_buf *merged, const ubt_event *a, size_t na, const ubt_event *b,
                       size_t nb)
{
    merged->n = 0;
    if (ev_reserve(merged, na + nb)) return nomem(w);
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) merged->v[k++] = cmp_ev(&b[j], &a[i]) < 0 ? b[j++] : a[i++];
    while (i < na) merged->v[k++] = a[i++];
    while (j < nb) merged->v[k++] = b[j++];
    merged->n = k;
    return 0;
}

/* Merges add[0..m) (one category, (ts, tie) order) into the own chain (user, cat). */
static int merge_own_chain(writer *w, MDB_cursor *cur, uint32_t user, uint32_t cat,
                           const ubt_event *add, size_t m, chain_block **blocks, size_t *blocks_cap)
{
    size_t nb;
    int rc = list_chain(w, cur, user, cat, blocks, &nb, blocks_cap);
    if (rc) return rc;
    chain_block *b = *blocks;
    /* first block holding an event after add[0]: an equal ts is not after, as the new
     * events' ties rank them after every stored event of that second */
    size_t j = 0;
    while (j < nb && b[j].h.last_ts <= add[0].ts) j++;
    if (j == nb && nb > 0 && b[nb - 1].h.n < UBT_CHUNK_EVENTS) j = nb - 1; /* refill the tail */
    uint32_t seq0 = j < nb ? b[j].seq : (nb ? b[nb - 1].seq + 1 : 0);
    w->old.n = 0;
    for (size_t i = j; i < nb; i++) {
        MDB_val d;
        if ((rc = get_block(w, user, cat, b[i].seq, &d)) || (rc = decode_into(w, &w->old, &d, cat, user)))
            return rc;
    }
    for (size_t i = j; i < nb; i++)
        if ((rc = del_key(w, user, cat, b[i].seq))) return rc;
    if ((rc = merge_lists(w, &w->merged, w->old.v, w->old.n, add, m))) return rc;
    return write_chain(w, user, cat, seq0, w->merged.v, w->merged.n, 0, 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Per-second counts of stored events of `user` at or after from_ts, so new
 * events get tie ranks after them. Fills w->old_ts sorted; returns count. */
static int stored_ts_from(writer *w, MDB_cursor *cur, uint32_t user, int64_t from_ts, size_t *count)
{
    *count = 0;
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, 0, 0);
    MDB_val k = {UBT_KEY_LEN, key}, d;
    /* collect (cat) of every chain of the user first: cursor walks are invalidated by nothing
     * here since we only read */
    w->old.n = 0;
    int rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == UBT_KEY_LEN && ubt_get_u32be(k.mv_data) == user) {
        block_header h;
        uint32_t cat = ubt_get_u32be((const uint8_t *)k.mv_data + 4);
        if (block_read_header(d.mv_data, d.mv_size, &h))
            return err_set(w->err, w->errlen, LSIM_E_CORRUPT, "corrupt block header of user %u", user);
        if (h.last_ts >= from_ts && (rc = decode_into(w, &w->old, &d, cat, user))) return rc;
        rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(rc, w->err, w->errlen, "reading a user's chains");
    if (w->old.n > w->old_ts_cap) {
        int64_t *t = realloc(w->old_ts, w->old.n * sizeof *t);
        if (!t) return nomem(w);
        w->old_ts = t;
        w->old_ts_cap = w->old.n;
    }
    size_t c = 0;
    for (size_t i = 0; i < w->old.n; i++)
        if (w->old.v[i].ts >= from_ts) w->old_ts[c++] = w->old.v[i].ts;
    qsort(w->old_ts, c, sizeof *w->old_ts, cmp_i64);
    *count = c;
    return 0;
}

static size_t count_equal(const int64_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    size_t c = 0;
    while (lo + c < n && a[lo + c] == x) c++;
    return c;
}

/* Converts a user's run of the batch (ts order, log order among ties) into
 * w->user with tie ranks continuing those of stored events. */
static int user_events(writer *w, const batch_event *run, size_t m, const int64_t *stored_ts,
                       size_t n_stored)
{
    w->user.n = 0;
    if (ev_reserve(&w->user, m)) return nomem(w);
    uint32_t tie = 0;
    for (size_t i = 0; i < m; i++) {
        if (i > 0 && run[i].ts == run[i - 1].ts)
            tie++;
        else
            tie = n_stored ? (uint32_t)count_equal(stored_ts, n_stored, run[i].ts) : 0;
        w->user.v[i] = (ubt_event){.ts = run[i].ts, .item = run[i].item, .cat = run[i].cat,
                                   .tie = tie, .type = run[i].type};
    }
    w->user.n = m;
    return 0;
}

static int is_own(const chain_plan *p, uint32_t cat)
{
    size_t lo = 0, hi = p->n_groups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->groups[mid].cat < cat) lo = mid + 1;
        else hi = mid;
    }
    return lo < p->n_groups && p->groups[lo].cat == cat && p->groups[lo].own;
}

/* dst = the events of src[0..n) whose category is not own under the plan, in order. */
static size_t filter_mixed(const chain_plan *p, ubt_event *dst, const ubt_event *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_own(p, src[i].cat)) dst[k++] = src[i];
    return k;
}

static int write_new_user(writer *w, uint32_t user, const batch_event *run, size_t m)
{
    int rc = user_events(w, run, m, NULL, 0);
    if (rc) return rc;
    if (ev_reserve(&w->grouped, m) || ev_reserve(&w->mixed, m)) return nomem(w);
    if (chain_plan_make(&w->plan, w->grouped.v, w->user.v, m, w->own_min, w->mixed_max))
        return nomem(w);
    /* own chains in ascending category order, then the mixed chain: ascending keys */
    for (size_t g = 0; g < w->plan.n_groups; g++) {
        const cat_group *cg = &w->plan.groups[g];
        if (cg->own && (rc = write_chain(w, user, cg->cat, 0, w->grouped.v + cg->start, cg->count, 0,
                                         MDB_APPEND)))
            return rc;
    }
    w->mixed.n = filter_mixed(&w->plan, w->mixed.v, w->user.v, m);
    if (w->mixed.n) {
        if ((rc = write_chain(w, user, UBT_MIXED, 0, w->mixed.v, w->mixed.n, 1, MDB_APPEND))) return rc;
    }
    if (w->training) return 0;
    ubt_user_summary s = {m, run[0].ts, run[m - 1].ts};
    return put_summary(w, user, &s, MDB_APPEND);
}

static int chain_exists(writer *w, MDB_cursor *cur, uint32_t user, uint32_t cat, int *exists)
{
    uint8_t key[UBT_KEY_LEN];
    ubt_key(key, user, cat, 0);
    MDB_val k = {UBT_KEY_LEN, key}, d;
    int rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(rc, w->err, w->errlen, "looking up a chain");
    *exists = rc == 0 && k.mv_size == UBT_KEY_LEN && memcmp(k.mv_data, key, 8) == 0;
    return 0;
}

/* Merges the events of categories without an own chain into the user's mixed
 * chain, promoting categories that outgrow it. */
static int merge_mixed(writer *w, MDB_cursor *cur, uint32_t user, const ubt_event *add, size_t m,
                       chain_block **blocks, size_t *blocks_cap)
{
    size_t nb;
    int rc = list_chain(w, cur, user, UBT_MIXED, blocks, &nb, blocks_cap);
    if (rc) return rc;
    w->old.n = 0;
    for (size_t i = 0; i < nb; i++) {
        MDB_val d;
        if ((rc = get_block(w, user, UBT_MIXED, (*blocks)[i].seq, &d)) ||
            (rc = decode_into(w, &w->old, &d, UBT_MIXED, user)))
            return rc;
    }
    for (size_t i = 0; i < nb; i++)
        if ((rc = del_key(w, user, UBT_MIXED, (*blocks)[i].seq))) return rc;
    if ((rc = merge_lists(w, &w->merged, w->old.v, w->old.n, add, m))) return rc;
    size_t total = w->merged.n;
    if (ev_reserve(&w->grouped, total) || ev_reserve(&w->mixed, total)) return nomem(w);
    if (chain_plan_make(&w->plan, w->grouped.v, w->merged.v, total, w->own_min, w->mixed_max))
        return nomem(w);
    w->mixed.n = 0;
    for (size_t g = 0; g < w->plan.n_groups; g++) {
        const cat_group *cg = &w->plan.groups[g];
        if (cg->own) {
            rc = write_chain(w, user, cg->cat, 0, w->grouped.v + cg->start, cg->count, 0, 0);
            if (rc) return rc;
        }
    }
    w->mixed.n = filter_mixed(&w->plan, w->mixed.v, w->merged.v, total);
    return w->mixed.n ? write_chain(w, user, UBT_MIXED, 0, w->mixed.v, w->mixed.n, 1, 0) : 0;
}

static int merge_user(writer *w, MDB_cursor *cur, uint32_t user, const batch_event *run, size_t m,
                      chain_block **blocks, size_t *blocks_cap)
{
    ubt_user_summary s;
    int rc = get_summary(w, user, &s);
    if (rc) return rc;
    size_t n_stored = 0;
    if (run[0].ts <= s.last_ts &&
        (rc = stored_ts_from(w, cur, user, run[0].ts, &n_stored)))
        return rc;
    if ((rc = user_events(w, run, m, w->old_ts, n_stored))) return rc;
    if (ev_reserve(&w->grouped, m)) return nomem(w);
    if (chain_plan_make(&w->plan, w->grouped.v, w->user.v, m, UINT32_MAX, UINT32_MAX)) return nomem(w);
    /* copy the groups: merge_own_chain and merge_mixed reuse the plan and scratch */
    size_t ng = w->plan.n_groups;
    cat_group *groups = malloc(ng * sizeof *groups);
    ubt_event *grouped = malloc(m * sizeof *grouped);
    ev_buf to_mixed = {0};
    if (!groups || !grouped || ev_reserve(&to_mixed, m)) {
        free(groups);
        free(grouped);
        free(to_mixed.v);
        return nomem(w);
    }
    memcpy(groups, w->plan.groups, ng * sizeof *groups);
    memcpy(grouped, w->grouped.v, m * sizeof *grouped);
    for (size_t g = 0; g < ng && !rc; g++) {
        int exists = 0;
        rc = chain_exists(w, cur, user, groups[g].cat, &exists);
        if (rc) break;
        if (exists) {
            rc = merge_own_chain(w, cur, user, groups[g].cat, grouped + groups[g].start, groups[g].count,
                                 blocks, blocks_cap);
            groups[g].own = 1;
        }
    }
    if (!rc) {
        chain_plan own = w->plan;
        own.groups = groups; /* the per-category own flags found above */
        own.n_groups = ng;
        to_mixed.n = filter_mixed(&own, to_mixed.v, w->user.v, m);
        if (to_mixed.n) rc = merge_mixed(w, cur, user, to_mixed.v, to_mixed.n, blocks, blocks_cap);
    }
    free(groups);
    free(grouped);
    free(to_mixed.v);
    if (rc) return rc;
    s.events += m;
    if (run[0].ts < s.first_ts) s.first_ts = run[0].ts;
    if (run[m - 1].ts > s.last_ts) s.last_ts = run[m - 1].ts;
    return put_summary(w, user, &s, 0);
}

/* ----------------------------------------------------------------- batch */

static int train_dict(writer *w)
{
    /* a dry run of the first users' chains collects raw payloads to learn from */
    w->training = 1;
    uint32_t n_users = vocab_size(w->voc[V_USER]);
    int rc = 0;
    for (uint32_t u = 0; u < n_users && !rc && w->samples_len < DICT_SAMPLE_BYTES; u++) {
        size_t lo = w->starts[u], hi = w->starts[u + 1];
        if (hi > lo) rc = write_new_user(w, u, w->ev + lo, hi - lo);
    }
    w->training = 0;
    if (rc) return rc;
    uint8_t *dict = malloc(DICT_CAP);
    if (!dict) return nomem(w);
    size_t dict_len = 0;
    if (block_train_dict(dict, DICT_CAP, &dict_len, w->samples, w->sample_lens, w->n_samples) == 0 &&
        dict_len > 0) {
        block_codec *c;
        if (block_codec_new(&c, dict, dict_len, w->zstd_level)) {
            free(dict);
            return nomem(w);
        }
        block_codec_free(w->codec);
        w->codec = c;
        MDB_val k = {5, "zdict"}, d = {dict_len, dict};
        rc = mdb_put(w->txn, w->db_meta, &k, &d, 0);
        if (rc) rc = lmdb_err(rc, w->err, w->errlen, "writing the dictionary");
    }
    free(dict);
    free(w->samples);
    free(w->sample_lens);
    w->samples = NULL;
    w->sample_lens = NULL;
    w->samples_len = w->samples_cap = w->n_samples = w->sample_lens_cap = 0;
    w->want_dict = 0;
    return rc;
}

static int flush_batch(writer *w)
{
    if (!w->n) return 0;
    uint32_t n_users = vocab_size(w->voc[V_USER]);
    if ((size_t)n_users + 1 > w->starts_cap) {
        size_t *s = realloc(w->starts, ((size_t)n_users + 1) * sizeof *s);
        if (!s) return nomem(w);
        w->starts = s;
        w->starts_cap = (size_t)n_users + 1;
    }
    event_sort_by_user_ts(w->ev, w->tmp, w->n, n_users, w->starts);
    int rc = 0;
    if (w->want_dict && (rc = train_dict(w))) return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(w->txn, w->db_ubt, &cur);
    if (rc) return lmdb_err(rc, w->err, w->errlen, "opening a cursor");
    chain_block *blocks = NULL;
    size_t blocks_cap = 0;
    for (uint32_t u = 0; u < n_users && !rc; u++) {
        size_t lo = w->starts[u], hi = w->starts[u + 1];
        if (hi == lo) continue;
        if (u >= w->users_before_batch)
            rc = write_new_user(w, u, w->ev + lo, hi - lo);
        else
            rc = merge_user(w, cur, u, w->ev + lo, hi - lo, &blocks, &blocks_cap);
    }
    free(blocks);
    mdb_cursor_close(cur);
    if (rc) return rc;
    w->counts.events += w->n;
    w->users_before_batch = n_users;
    w->n = 0;
    return 0;
}

static void report_progress(writer *w, uint64_t file_bytes, int done)
{
    if (!w->o->on_progress) return;
    ubt_progress p = {0};
    p.bytes_read = w->bytes_done + file_bytes;
    p.bytes_total = w->bytes_total;
    p.lines = w->res->lines;
    p.events = w->res->events;
    p.bad_lines = w->res->bad_lines;
    p.seconds = seconds_since(&w->t0);
    p.done = done;
    w->o->on_progress(w->o->cb_ctx, &p);
}

static int intern_event(writer *w, const log_event *e, batch_event *out, const char *path)
{
    uint32_t ids[V_KINDS];
    const char *s[V_KINDS] = {e->user, e->item, e->cat, e->type};
    const uint32_t len[V_KINDS] = {e->user_len, e->item_len, e->cat_len, e->type_len};
    static const uint32_t limit[V_KINDS] = {UINT32_MAX - 1, UINT32_MAX - 1, UINT32_MAX - 2, MAX_TYPES};
    static const char *const what[V_KINDS] = {"users", "items", "categories", "behavior types"};
    for (int k = 0; k < V_KINDS; k++) {
        /* logs are grouped by user and have few types: the last id usually repeats */
        if (k != V_ITEM && w->last_id[k] != UINT32_MAX && len[k] == vocab_len(w->voc[k], w->last_id[k]) &&
            memcmp(s[k], vocab_str(w->voc[k], w->last_id[k]), len[k]) == 0) {
            ids[k] = w->last_id[k];
            continue;
        }
        int rc = vocab_intern(w->voc[k], s[k], len[k], &ids[k], limit[k]);
        if (rc == LSIM_E_LIMIT)
            return err_set(w->err, w->errlen, rc, "%s:%llu: more than %u %s", path,
                           (unsigned long long)e->line, limit[k], what[k]);
        if (rc) return nomem(w);
        w->last_id[k] = ids[k];
    }
    vocab_set_cat(w->voc[V_ITEM], ids[V_ITEM], ids[V_CAT]);
    *out = (batch_event){.ts = e->ts, .user = ids[V_USER], .item = ids[V_ITEM], .cat = ids[V_CAT],
                         .type = (uint8_t)ids[V_TYPE]};
    return 0;
}

static int push_event(writer *w, const batch_event *e)
{
    if (w->n == w->cap) {
        size_t limit = w->o->mem_limit / (2 * sizeof(batch_event));
        if (limit < 1024) limit = 1024;
        if (w->n >= limit) {
            int rc = flush_batch(w);
            if (rc) return rc;
        } else {
            size_t nc = w->cap ? w->cap * 2 : 65536;
            if (nc > limit) nc = limit;
            batch_event *v = realloc(w->ev, nc * sizeof *v);
            if (!v) return nomem(w);
            w->ev = v;
            batch_event *t = realloc(w->tmp, nc * sizeof *t);
            if (!t) return nomem(w);
            w->tmp = t;
            w->cap = nc;
            size_t bytes = 2 * nc * sizeof *v;
            if (bytes > w->res->peak_batch_bytes) w->res->peak_batch_bytes = bytes;
        }
    }
    w->ev[w->n++] = *e;
    return 0;
}

static int ingest_file(writer *w, const char *path)
{
    log_pipe *lp;
    int rc = log_pipe_open(&lp, path, &w->o->spec, w->err, w->errlen);
    if (rc) return rc;
    const ubt_write_opts *o = w->o;
    uint64_t bytes = 0;
    for (int last = 0; !last && !rc;) {
        const log_batch *b = log_pipe_next(lp);
        last = b->last;
        bytes = b->bytes_read;
        for (size_t i = 0; i < b->n && !rc; i++) {
            const log_item *it = &b->items[i];
            w->res->lines++;
            if (it->bad) {
                w->res->bad_lines++;
                if (o->on_bad_line) o->on_bad_line(o->cb_ctx, it->bad);
                if (o->strict)
                    rc = err_set(w->err, w->errlen, LSIM_E_FORMAT, "%s (--strict: nothing was written)", it->bad);
                continue;
            }
            const log_event *e = &it->ev;
            if (o->shard_count && ubt_shard_of(e->user, e->user_len, o->shard_count) != o->shard_index) {
                w->res->other_shard++;
                continue;
            }
            batch_event be;
            if ((rc = intern_event(w, e, &be, path)) || (rc = push_event(w, &be))) break;
            w->res->events++;
        }
        if (!rc && b->rc < 0) rc = err_set(w->err, w->errlen, b->rc, "%s", b->errmsg);
        if (!rc && o->on_progress && seconds_since(&w->t_last) > 0.25) {
            clock_gettime(CLOCK_MONOTONIC, &w->t_last);
            report_progress(w, bytes, 0);
        }
    }
    w->bytes_done += bytes;
    log_pipe_close(lp);
    return rc;
}

/* ------------------------------------------------------------- lifecycle */

static int open_dbs(writer *w, unsigned flags)
{
    int rc;
    if ((rc = mdb_dbi_open(w->txn, UBT_DB_META, flags, &w->db_meta)) ||
        (rc = mdb_dbi_open(w->txn, UBT_DB_UBT, flags, &w->db_ubt)) ||
        (rc = mdb_dbi_open(w->txn, UBT_DB_USERS, flags, &w->db_users)) ||
        (rc = mdb_dbi_open(w->txn, UBT_DB_VOCAB, flags, &w->db_vocab))) {
        if (rc == MDB_NOTFOUND)
            return err_set(w->err, w->errlen, LSIM_E_INCOMPLETE, "not an lsim index (missing databases)");
        return lmdb_err(rc, w->err, w->errlen, "opening the index databases");
    }
    return 0;
}

static int meta_put(writer *w, const char *key, const void *val, size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, d = {len, (void *)val};
    int rc = mdb_put(w->txn, w->db_meta, &k, &d, 0);
    return rc ? lmdb_err(rc, w->err, w->errlen, "writing index metadata") : 0;
}

static int finish_txn(writer *w, int complete)
{
    int rc = 0;
    for (int k = 0; k < V_KINDS && !rc; k++) rc = vocab_store(w->voc[k], w->txn, w->db_vocab, w->err, w->errlen);
    if (rc) return rc;
    w->counts.users = vocab_size(w->voc[V_USER]);
    w->counts.items = vocab_size(w->voc[V_ITEM]);
    w->counts.categories = vocab_size(w->voc[V_CAT]);
    w->counts.types = vocab_size(w->voc[V_TYPE]);
    uint8_t buf[UBT_COUNTS_BYTES];
    ubt_counts_encode(buf, &w->counts);
    if ((rc = meta_put(w, "counts", buf, sizeof buf))) return rc;
    if (complete && (rc = meta_put(w, "complete", "\1", 1))) return rc;
    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    return rc ? lmdb_err(rc, w->err, w->errlen, "committing the index") : 0;
}

static int writer_init(writer *w, const ubt_write_opts *o, ubt_write_result *res, char *err,
                       size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->o = o;
    w->res = res;
    w->err = err;
    w->errlen = errlen;
    memset(res, 0, sizeof *res);
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    w->t_last = w->t0;
    w->zstd_level = o->zstd_level ? o->zstd_level : 3;
    memset(w->last_id, 0xff, sizeof w->last_id);
    chain_plan_init(&w->plan);
    for (int k = 0; k < V_KINDS; k++)
        if (vocab_new(&w->voc[k], vocab_kinds[k], k == V_ITEM)) return nomem(w);
    for (size_t i = 0; i < o->n_inputs; i++) {
        struct stat st;
        if (strcmp(o->inputs[i], "-") != 0 && stat(o->inputs[i], &st) == 0) w->bytes_total += (uint64_t)st.st_size;
    }
    return 0;
}

static void writer_free(writer *w)
{
    if (w->txn) mdb_txn_abort(w->txn);
    if (w->env) mdb_env_close(w->env);
    for (int k = 0; k < V_KINDS; k++) vocab_free(w->voc[k]);
    block_codec_free(w->codec);
    free(w->ev);
    free(w->tmp);
    free(w->starts);
    free(w->user.v);
    free(w->grouped.v);
    free(w->old.v);
    free(w->merged.v);
    free(w->mixed.v);
    free(w->old_ts);
    free(w->blk);
    free(w->samples);
    free(w->sample_lens);
    chain_plan_free(&w->plan);
}

static int ingest_all(writer *w)
{
    int rc = 0;
    for (size_t i = 0; i < w->o->n_inputs && !rc; i++) rc = ingest_file(w, w->o->inputs[i]);
    if (!rc) rc = flush_batch(w);
    return rc;
}

static void finish_result(writer *w)
{
    w->res->users_added = vocab_size(w->voc[V_USER]) - w->res->users_added;
    w->res->items_added = vocab_size(w->voc[V_ITEM]) - w->res->items_added;
    w->res->total_events = w->counts.events;
    w->res->seconds = seconds_since(&w->t0);
    report_progress(w, 0, 1);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes DIR.tmp-PID left by killed builds whose process is gone. */
static void remove_stale_tmp(const char *dir)
{
    char parent[4096];
    const char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (slash) snprintf(parent, sizeof parent, "%.*s", (int)(slash - dir) ? (int)(slash - dir) : 1, dir);
    else snprintf(parent, sizeof parent, ".");
    DIR *d = opendir(parent);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, base, bl) != 0 || strncmp(de->d_name + bl, ".tmp-", 5) != 0) continue;
        long pid = strtol(de->d_name + bl + 5, NULL, 10);
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", parent, de->d_name);
        rm_tree(p);
    }
    closedir(d);
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int parent_of(const char *dir, char *out, size_t cap)
{
    const char *slash = strrchr(dir, '/');
    if (!slash) return snprintf(out, cap, ".") < 0;
    if (slash == dir) return snprintf(out, cap, "/") < 0;
    return snprintf(out, cap, "%.*s", (int)(slash - dir), dir) < 0;
}

int ubt_build(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err,
              size_t errlen)
{
    struct stat st;
    if (!dir || !*dir || !o || !o->n_inputs)
        return err_set(err, errlen, LSIM_E_INVAL, "an index directory and at least one input are needed");
    if (stat(dir, &st) == 0) {
        char data[4200];
        snprintf(data, sizeof data, "%s/data.mdb", dir);
        if (!o->force)
            return err_set(err, errlen, LSIM_E_INVAL,
                           "%s already exists (use --force to replace it, or `lsim index append`)", dir);
        if (!S_ISDIR(st.st_mode) || access(data, F_OK) != 0)
            return err_set(err, errlen, LSIM_E_INVAL,
                           "%s exists and is not an lsim index: not replacing it", dir);
    }
    remove_stale_tmp(dir);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)getpid());
    rm_tree(tmp);
    if (mkdir(tmp, 0755) != 0)
        return err_set(err, errlen, LSIM_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    writer w;
    int rc = writer_init(&w, o, res, err, errlen);
    w.own_min = o->own_min ? o->own_min : UBT_OWN_MIN_DEFAULT;
    w.mixed_max = o->mixed_max ? o->mixed_max : UBT_MIXED_MAX_DEFAULT;
    w.want_dict = !o->no_dict;
    if (!rc && block_codec_new(&w.codec, NULL, 0, w.zstd_level)) rc = nomem(&w);
    if (!rc) rc = lmdb_env_open(&w.env, tmp, LMDB_ENV_BULK, o->mapsize, err, errlen);
    if (!rc && (rc = mdb_txn_begin(w.env, NULL, 0, &w.txn))) rc = lmdb_err(rc, err, errlen, "begin");
    if (!rc) rc = open_dbs(&w, MDB_CREATE);
    if (!rc) {
        uint8_t v[4] = {UBT_SCHEMA_VERSION, 0, 0, 0}, pol[8];
        for (int i = 0; i < 4; i++) {
            pol[i] = (uint8_t)(w.own_min >> (8 * i));
            pol[4 + i] = (uint8_t)(w.mixed_max >> (8 * i));
        }
        rc = meta_put(&w, "schema", v, 4);
        if (!rc) rc = meta_put(&w, "policy", pol, 8);
    }
    if (!rc) rc = ingest_all(&w);
    if (!rc) rc = finish_txn(&w, 1);
    if (!rc && (rc = mdb_env_sync(w.env, 1))) rc = lmdb_err(rc, err, errlen, "syncing the index");
    if (!rc) finish_result(&w);
    writer_free(&w);
    if (!rc) {
        char data[4200], parent[4096];
        snprintf(data, sizeof data, "%s/data.mdb", tmp);
        parent_of(dir, parent, sizeof parent);
        if (fsync_path(data) || fsync_path(tmp))
            rc = err_set(err, errlen, LSIM_E_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        else if (stat(dir, &st) == 0) {
            if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0)
                rc = err_set(err, errlen, LSIM_E_IO, "replacing %s: %s", dir, strerror(errno));
            else
                rm_tree(tmp); /* now the old index */
        } else if (rename(tmp, dir) != 0)
            rc = err_set(err, errlen, LSIM_E_IO, "renaming %s to %s: %s", tmp, dir, strerror(errno));
        if (!rc) fsync_path(parent);
    }
    if (rc) rm_tree(tmp);
    return rc;
}

static int load_existing(writer *w)
{
    int rc = open_dbs(w, 0);
    if (rc) return rc;
    MDB_val k = {6, "schema"}, d;
    rc = mdb_get(w->txn, w->db_meta, &k, &d);
    if (rc || d.mv_size != 4) return err_set(w->err, w->errlen, LSIM_E_INCOMPLETE, "not an lsim index (no schema)");
    const uint8_t *v = d.mv_data;
    if (v[0] != UBT_SCHEMA_VERSION || v[1] || v[2] || v[3])
        return err_set(w->err, w->errlen, LSIM_E_VERSION, "index schema %u; this lsim reads schema %u", v[0],
                       UBT_SCHEMA_VERSION);
    k = (MDB_val){8, "complete"};
    if (mdb_get(w->txn, w->db_meta, &k, &d))
        return err_set(w->err, w->errlen, LSIM_E_INCOMPLETE, "the index build never finished; build it again");
    k = (MDB_val){6, "counts"};
    if (mdb_get(w->txn, w->db_meta, &k, &d) || ubt_counts_decode(&w->counts, d.mv_data, d.mv_size))
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT, "index counts missing or corrupt");
    k = (MDB_val){6, "policy"};
    if (mdb_get(w->txn, w->db_meta, &k, &d) || d.mv_size != 8)
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT, "index chain policy missing");
    const uint8_t *p = d.mv_data;
    w->own_min = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    w->mixed_max = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    k = (MDB_val){5, "zdict"};
    rc = mdb_get(w->txn, w->db_meta, &k, &d);
    if (rc == 0) {
        if (block_codec_new(&w->codec, d.mv_data, d.mv_size, w->zstd_level)) return nomem(w);
    } else if (block_codec_new(&w->codec, NULL, 0, w->zstd_level))
        return nomem(w);
    for (int i = 0; i < V_KINDS; i++)
        if ((rc = vocab_load(w->voc[i], w->txn, w->db_vocab, w->err, w->errlen))) return rc;
    if (vocab_size(w->voc[V_USER]) != w->counts.users || vocab_size(w->voc[V_ITEM]) != w->counts.items)
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT, "vocabulary sizes disagree with the index counts");
    w->users_before_batch = vocab_size(w->voc[V_USER]);
    w->res->users_added = vocab_size(w->voc[V_USER]);
    w->res->items_added = vocab_size(w->voc[V_ITEM]);
    return 0;
}

int ubt_append(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err,
               size_t errlen)
{
    if (!dir || !*dir || !o || !o->n_inputs)
        return err_set(err, errlen, LSIM_E_INVAL, "an index directory and at least one input are needed");
    writer w;
    int rc = writer_init(&w, o, res, err, errlen);
    if (!rc) rc = lmdb_env_open(&w.env, dir, LMDB_ENV_WRITE, o->mapsize, err, errlen);
    if (!rc && (rc = mdb_txn_begin(w.env, NULL, 0, &w.txn))) rc = lmdb_err(rc, err, errlen, "begin");
    if (!rc) rc = load_existing(&w);
    if (!rc) rc = ingest_all(&w);
    if (!rc) {
        w.counts.appends++;
        rc = finish_txn(&w, 0);
    }
    if (!rc) finish_result(&w);
    writer_free(&w); /* aborts the transaction on failure: the index is as it was */
    return rc;
}
