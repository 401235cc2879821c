/*
 * index_read.c: opening an index and hard search (SIM's GSU in hard mode),
 * exactly as DESIGN.md defines it: the user's K most recent events of a
 * category strictly before `before`, most recent first, ties in log order.
 *
 * A (user, category) lives in one chain: its own, or the user's mixed chain
 * (ubt_layout.h). The search seeks to the end of the chain and walks blocks
 * backwards, skipping by header blocks that start at or after `before`, and
 * stops as soon as K events are found: it reads one or two blocks in the
 * common case, whatever the user's sequence length.
 *
 * Not here: writing (index_write.c), whole-index checks (index_verify.c).
 */
#include "index/index_internal.h"
#include "index/ubt_meta.h"
#include "storage/lmdb_env.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

static int rd_err(lsim_index_reader *rd, int code, const char *msg)
{
    return err_set(RD_MSG(rd), code, "%s", msg);
}

static int read_meta(lsim_index *ix, MDB_txn *txn, int stamped, char *err, size_t errlen)
{
    ubt_meta m;
    int rc = ubt_meta_read(txn, ix->db_meta, ix->dir, stamped, &m, err, errlen);
    if (rc) return rc;
    ix->counts = m.counts;
    ix->has_uic = m.has_uic;
    ix->uic = m.uic;
    if (m.has_uic) {
        int r = mdb_dbi_open(txn, UIC_DB, 0, &ix->db_uic);
        if (r == MDB_NOTFOUND)
            return err_set(err, errlen, LSIM_E_CORRUPT,
                           "%s: corrupt: the User Interest Center's database is missing", ix->dir);
        if (r) return lmdb_err(r, err, errlen, ix->dir);
    }
    if (m.zdict) {
        if (!(ix->dict = malloc(m.zdict_len))) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
        memcpy(ix->dict, m.zdict, m.zdict_len);
        ix->dict_len = m.zdict_len;
    }
    return 0;
}

/* Loads the vocabularies (refresh: brings loaded ones up to this snapshot,
 * decoding only the blocks an append changed; handed-out strings stay). */
static int load_vocabs(lsim_index *ix, MDB_txn *txn, int refresh, char *err, size_t errlen)
{
    for (int i = 0; i < IX_KINDS; i++) {
        char why[LSIM_ERRLEN];
        int rc = refresh ? vocab_refresh(ix->voc[i], txn, ix->db_vocab, why, sizeof why)
                         : vocab_load(ix->voc[i], txn, ix->db_vocab, why, sizeof why);
        if (rc) return err_set(err, errlen, rc, "%s: %s", ix->dir, why);
    }
    if (vocab_size(ix->voc[IX_USER]) != ix->counts.users || vocab_size(ix->voc[IX_ITEM]) != ix->counts.items ||
        vocab_size(ix->voc[IX_CAT]) != ix->counts.categories || vocab_size(ix->voc[IX_TYPE]) != ix->counts.types)
        return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: vocabulary sizes disagree with the index counts",
                       ix->dir);
    return 0;
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static lsim_index *registry;

static void really_close(lsim_index *ix);
static int open_new(lsim_index **out, const char *dir, char *err, size_t errlen);

/* One handle per index file in the process: a second open of the same
 * data.mdb (by any path) shares the first's handle, counted. */
LSIM_API int lsim_index_open(lsim_index **out, const char *dir, char *err, size_t errlen)
{
    if (!out || !dir) return err_set(err, errlen, LSIM_E_INVAL, "lsim_index_open: NULL argument");
    *out = NULL;
    char path[4096];
    struct stat st;
    if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
        return err_set(err, errlen, LSIM_E_INVAL, "%.200s...: path too long", dir);
    int have = stat(path, &st) == 0;
    pthread_mutex_lock(&registry_lock);
    int rc = 0;
    lsim_index *ix = NULL;
    for (lsim_index *p = registry; have && p; p = p->next)
        if (p->dev == st.st_dev && p->ino == st.st_ino) ix = p;
    if (ix) {
        ix->refs++;
    } else if (!(rc = open_new(&ix, dir, err, errlen))) {
        ix->refs = 1;
        ix->dev = have ? st.st_dev : 0;
        ix->ino = have ? st.st_ino : 0;
        if (have) ix->next = registry, registry = ix;
    }
    pthread_mutex_unlock(&registry_lock);
    if (rc) return rc;
    *out = ix;
    return 0;
}

LSIM_API void lsim_index_close(lsim_index *ix)
{
    if (!ix) return;
    pthread_mutex_lock(&registry_lock);
    int last = --ix->refs == 0;
    if (last)
        for (lsim_index **p = &registry; *p; p = &(*p)->next)
            if (*p == ix) {
                *p = ix->next;
                break;
            }
    pthread_mutex_unlock(&registry_lock);
    if (last) really_close(ix);
}

static int open_new(lsim_index **out, const char *dir, char *err, size_t errlen)
{
    lsim_index *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->dir = strdup(dir))) {
        free(ix);
        return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    }
    pthread_rwlock_init(&ix->lock, NULL);
    int rc = 0;
    for (int i = 0; i < IX_KINDS && !rc; i++)
        if (vocab_new(&ix->voc[i], "uict"[i], i == IX_ITEM)) rc = err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    /* the file is checked before LMDB reads it; the first snapshot must be the one checked (else an append
     * committed in between: again) */
    MDB_txn *txn = NULL;
    lmdb_check_result chk;
    for (int attempt = 0; !rc; attempt++) {
        rc = lmdb_env_open(&ix->env, dir, LMDB_ENV_READ, 0, ubt_check_spec(), &chk, err, errlen);
        if (!rc && (rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn))) rc = lmdb_err(rc, err, errlen, dir);
        if (rc || (uint64_t)mdb_txn_id(txn) == chk.txnid) break;
        mdb_txn_abort(txn);
        txn = NULL;
        mdb_env_close(ix->env);
        ix->env = NULL;
        if (attempt == 4)
            rc = err_set(err, errlen, LSIM_E_STORAGE, "%s: the index kept changing while it was opened", dir);
    }
    if (!rc) {
        int r;
        if ((r = mdb_dbi_open(txn, UBT_DB_META, 0, &ix->db_meta)) ||
            (r = mdb_dbi_open(txn, UBT_DB_UBT, 0, &ix->db_ubt)) ||
            (r = mdb_dbi_open(txn, UBT_DB_USERS, 0, &ix->db_users)) ||
            (r = mdb_dbi_open(txn, UBT_DB_VOCAB, 0, &ix->db_vocab)))
            rc = r == MDB_NOTFOUND
                     ? err_set(err, errlen, LSIM_E_INCOMPLETE, "%s: not an lsim index (missing databases)", dir)
                     : lmdb_err(r, err, errlen, dir);
    }
    if (!rc) rc = read_meta(ix, txn, chk.stamped, err, errlen);
    if (!rc) rc = load_vocabs(ix, txn, 0, err, errlen);
    /* commit, not abort: database handles opened in an aborted transaction are closed */
    if (txn && !rc && (rc = mdb_txn_commit(txn))) rc = lmdb_err(rc, err, errlen, dir);
    else if (txn && rc) mdb_txn_abort(txn);
    if (rc) {
        really_close(ix);
        return rc;
    }
    *out = ix;
    return 0;
}

static void really_close(lsim_index *ix)
{
    if (ix->env) mdb_env_close(ix->env);
    for (int i = 0; i < IX_KINDS; i++) vocab_free(ix->voc[i]);
    pthread_rwlock_destroy(&ix->lock);
    free(ix->dict);
    free(ix->dir);
    free(ix);
}

/* Pages in use by one database (what a compacting copy would keep). */
static uint64_t db_pages(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;
    if (mdb_stat(txn, dbi, &st)) return 0;
    return (uint64_t)st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
}

LSIM_API int lsim_index_stats_get(lsim_index *ix, lsim_index_stats *out)
{
    if (!ix || !out) return LSIM_E_INVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
    if (rc) return lmdb_err(rc, NULL, 0, "stats");
    ubt_counts c;
    rc = ubt_meta_counts(txn, ix->db_meta, ix->dir, &c, NULL, 0);
    MDB_stat st;
    mdb_env_stat(ix->env, &st);
    uint64_t pages = 2 /* the two meta pages */ + db_pages(txn, 0 /* main */) + db_pages(txn, ix->db_meta) +
                     db_pages(txn, ix->db_ubt) + db_pages(txn, ix->db_users) + db_pages(txn, ix->db_vocab) +
                     (ix->has_uic ? db_pages(txn, ix->db_uic) : 0);
    mdb_txn_abort(txn);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->users = c.users;
    out->items = c.items;
    out->categories = c.categories;
    out->types = c.types;
    out->events = c.events;
    out->blocks = c.blocks;
    out->bytes = lmdb_env_disk_bytes(ix->dir);
    out->used_bytes = pages * st.ms_psize;
    out->schema_version = UBT_SCHEMA_VERSION;
    return 0;
}

int index_space_get(lsim_index *ix, index_space *out)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
    if (rc) return lmdb_err(rc, NULL, 0, "stats");
    MDB_stat st;
    mdb_env_stat(ix->env, &st);
    uint64_t ps = st.ms_psize;
    out->tree_bytes = db_pages(txn, ix->db_ubt) * ps;
    out->users_bytes = db_pages(txn, ix->db_users) * ps;
    out->vocab_bytes = db_pages(txn, ix->db_vocab) * ps;
    if (ix->has_uic) {
        out->uic_bytes = db_pages(txn, ix->db_uic) * ps;
        if (!mdb_stat(txn, ix->db_uic, &st)) out->uic_records = st.ms_entries;
    }
    mdb_txn_abort(txn);
    return 0;
}

LSIM_API int lsim_index_reader_new(lsim_index *ix, lsim_index_reader **out)
{
    if (out) *out = NULL;
    if (!ix || !out) return LSIM_E_INVAL;
    lsim_index_reader *rd = calloc(1, sizeof *rd);
    if (!rd) return LSIM_E_NOMEM;
    rd->ix = ix;
    /* every detail message names the index: "DIR: what" */
    snprintf(rd->errmsg, sizeof rd->errmsg / 2, "%s: ", ix->dir);
    rd->pfx = strlen(rd->errmsg);
    rd->blk = malloc(BLOCK_MAX_EVENTS * sizeof *rd->blk);
    if (!rd->blk || block_codec_new(&rd->codec, ix->dict, ix->dict_len, 3)) {
        lsim_index_reader_free(rd);
        return LSIM_E_NOMEM;
    }
    *out = rd;
    return 0;
}

LSIM_API void lsim_index_reader_free(lsim_index_reader *rd)
{
    if (!rd) return;
    if (rd->uic_cur) mdb_cursor_close(rd->uic_cur);
    if (rd->cur) mdb_cursor_close(rd->cur);
    if (rd->txn) mdb_txn_abort(rd->txn);
    block_codec_free(rd->codec);
    free(rd->blk);
    free(rd->acc);
    free(rd->runs);
    free(rd->run_heap);
    free(rd->res);
    free(rd->res_cat);
    free(rd);
}

LSIM_API const char *lsim_index_reader_errmsg(const lsim_index_reader *rd)
{
    return rd && rd->errmsg[rd->pfx] ? rd->errmsg : "";
}

/* Reloads the vocabularies when this snapshot holds more entries than loaded. */
static int refresh_if_grown(lsim_index_reader *rd)
{
    lsim_index *ix = rd->ix;
    ubt_counts c;
    char why[LSIM_ERRLEN];
    int rc = ubt_meta_counts(rd->txn, ix->db_meta, ix->dir, &c, why, sizeof why);
    if (rc) return err_set(rd->errmsg, sizeof rd->errmsg, rc, "%s", why); /* why names the index */
    pthread_rwlock_rdlock(&ix->lock);
    int grown = c.users > ix->counts.users || c.items > ix->counts.items ||
                c.categories > ix->counts.categories || c.types > ix->counts.types;
    pthread_rwlock_unlock(&ix->lock);
    if (!grown) return 0;
    pthread_rwlock_wrlock(&ix->lock);
    if (c.users > ix->counts.users || c.items > ix->counts.items || c.categories > ix->counts.categories ||
        c.types > ix->counts.types) {
        ubt_counts keep = ix->counts;
        ix->counts = c;
        rc = load_vocabs(ix, rd->txn, 1, RD_MSG(rd));
        if (rc) ix->counts = keep;
    }
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

int index_reader_begin(lsim_index_reader *rd)
{
    int rc;
    rd->errmsg[rd->pfx] = 0;
    if (!rd->txn) {
        rc = mdb_txn_begin(rd->ix->env, NULL, MDB_RDONLY, &rd->txn);
        if (!rc) rc = mdb_cursor_open(rd->txn, rd->ix->db_ubt, &rd->cur);
    } else {
        rc = mdb_txn_renew(rd->txn);
        if (!rc) rc = mdb_cursor_renew(rd->txn, rd->cur);
    }
    if (rc) return lmdb_err(rc, RD_MSG(rd), "starting a read transaction");
    rd->active = 1;
    rc = refresh_if_grown(rd);
    if (rc) index_reader_end(rd);
    return rc;
}

void index_reader_end(lsim_index_reader *rd)
{
    if (rd->active) mdb_txn_reset(rd->txn);
    rd->active = 0;
}

int index_next_prefix(uint8_t *key, const uint8_t *prefix, size_t len)
{
    memcpy(key, prefix, len);
    for (size_t i = len; i-- > 0;) {
        if (key[i] != 0xff) {
            key[i]++;
            return 1;
        }
        key[i] = 0;
    }
    return 0;
}

/* Positions the cursor on the last block of chain (user, keycat); 0 if the
 * chain is empty (or an error). */
static int seek_chain_last(lsim_index_reader *rd, uint32_t user, uint32_t keycat, MDB_val *k, MDB_val *d)
{
    uint8_t prefix[8], next[UBT_KEY_LEN] = {0};
    ubt_put_u32be(prefix, user);
    ubt_put_u32be(prefix + 4, keycat);
    int rc;
    if (index_next_prefix(next, prefix, 8)) {
        k->mv_size = UBT_KEY_LEN;
        k->mv_data = next;
        rc = mdb_cursor_get(rd->cur, k, d, MDB_SET_RANGE);
        rc = rc == 0 ? mdb_cursor_get(rd->cur, k, d, MDB_PREV)
                     : (rc == MDB_NOTFOUND ? mdb_cursor_get(rd->cur, k, d, MDB_LAST) : rc);
    } else
        rc = mdb_cursor_get(rd->cur, k, d, MDB_LAST);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return lmdb_err(rc, RD_MSG(rd), "seeking a chain");
    return k->mv_size == UBT_KEY_LEN && memcmp(k->mv_data, prefix, 8) == 0;
}

/* Walks chain (user, keycat) backwards from its cursor position, appending to
 * out the newest events with after < ts < before (of category `want` unless
 * it is UBT_MIXED) until *n == k. */
static int walk_back(lsim_index_reader *rd, uint32_t user, uint32_t keycat, uint32_t want, int64_t after,
                     int64_t before, size_t k, ubt_event *out, size_t *n, MDB_val *key, MDB_val *d)
{
    uint8_t prefix[8];
    ubt_put_u32be(prefix, user);
    ubt_put_u32be(prefix + 4, keycat);
    int rc = 0;
    while (*n < k) {
        block_header h;
        /* the size first: a corrupt node size must not send the checksum past the map */
        if (d->mv_size > UBT_BLOCK_MAX_BYTES || block_read_header(d->mv_data, d->mv_size, &h))
            return err_set(RD_MSG(rd), LSIM_E_CORRUPT,
                           "corrupt block header (user %u, chain %u)", user, keycat);
        if (h.first_ts < before) {
            size_t got = 0;
            if (block_decode_keyed(rd->codec, rd->blk, BLOCK_MAX_EVENTS, &got, d->mv_data, d->mv_size,
                                   keycat == UBT_MIXED ? 0 : keycat, key->mv_data, UBT_KEY_LEN))
                return err_set(RD_MSG(rd), LSIM_E_CORRUPT,
                               "corrupt event block (user %u, chain %u): run `lsim index verify`", user, keycat);
            for (size_t i = got; i-- > 0 && *n < k;) {
                const ubt_event *e = &rd->blk[i];
                if (e->ts <= after) return 0;
                if (e->ts < before && (want == UBT_MIXED || e->cat == want)) out[(*n)++] = *e;
            }
        }
        rc = mdb_cursor_get(rd->cur, key, d, MDB_PREV);
        if (rc == MDB_NOTFOUND) return 0;
        if (rc) return lmdb_err(rc, RD_MSG(rd), "walking a chain");
        if (key->mv_size != UBT_KEY_LEN || memcmp(key->mv_data, prefix, 8) != 0) return 0;
    }
    return 0;
}

/* x comes before y, newest first: (ts, tie) is unique within a user. */
static int newer(const ubt_event *x, const ubt_event *y)
{
    return x->ts != y->ts ? x->ts > y->ts : x->tie > y->tie;
}

/* Restores the heap of runs (the run with the newest head at the root) below i. */
static void run_sift(const ubt_event *acc, const index_run *runs, uint32_t *h, size_t n, size_t i)
{
    uint32_t x = h[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= n) break;
        if (l + 1 < n && newer(&acc[runs[h[l + 1]].pos], &acc[runs[h[l]].pos])) m = l + 1;
        if (!newer(&acc[runs[h[m]].pos], &acc[runs[x].pos])) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

/* The newest k of the chains' runs (each newest first) into out, newest
 * first, or oldest first (filled from the back): a k-way merge through a heap
 * of runs, allocating nothing. */
static size_t merge_runs(lsim_index_reader *rd, size_t n_runs, size_t k, ubt_event *out, int oldest_first)
{
    index_run *runs = rd->runs;
    uint32_t *h = rd->run_heap;
    size_t n = 0, live = 0, total = 0;
    for (size_t r = 0; r < n_runs; r++)
        if (runs[r].pos < runs[r].end) h[live++] = (uint32_t)r, total += runs[r].end - runs[r].pos;
    size_t m = total < k ? total : k;
    ptrdiff_t step = oldest_first ? -1 : 1;
    ubt_event *o = oldest_first ? out + m - 1 : out;
    for (size_t i = live / 2; i-- > 0;) run_sift(rd->acc, runs, h, live, i);
    while (live && n < k) {
        /* the root run's events while they are newer than every other run's head (users browse
         * in sessions: long stretches come from one chain), then one sift */
        index_run *r = &runs[h[0]];
        const ubt_event *next = NULL;
        if (live > 1) next = &rd->acc[runs[h[1]].pos];
        if (live > 2 && newer(&rd->acc[runs[h[2]].pos], next)) next = &rd->acc[runs[h[2]].pos];
        do *o = rd->acc[r->pos++], o += step, n++;
        while (n < k && r->pos < r->end && (!next || newer(&rd->acc[r->pos], next)));
        if (r->pos == r->end) h[0] = h[--live];
        if (live) run_sift(rd->acc, runs, h, live, 0);
    }
    return n;
}

/* Grows the accumulator to hold `need` events and the run list to `runs` runs. */
static int reserve(lsim_index_reader *rd, size_t need, size_t runs)
{
    if (rd->acc_cap < need) {
        size_t nc = rd->acc_cap ? rd->acc_cap : 1024;
        while (nc < need) nc *= 2;
        ubt_event *a = realloc(rd->acc, nc * sizeof *a);
        if (!a) return rd_err(rd, LSIM_E_NOMEM, "out of memory");
        rd->acc = a;
        rd->acc_cap = nc;
    }
    if (rd->runs_cap < runs) {
        size_t nc = rd->runs_cap ? 2 * rd->runs_cap : 64;
        index_run *r = realloc(rd->runs, nc * sizeof *r);
        if (r) rd->runs = r;
        uint32_t *hh = r ? realloc(rd->run_heap, nc * sizeof *hh) : NULL;
        if (!r || !hh) return rd_err(rd, LSIM_E_NOMEM, "out of memory");
        rd->run_heap = hh;
        rd->runs_cap = nc;
    }
    return 0;
}

/* A small k (the short-term window) prunes: chains are read newest bound
 * first, and once k events are in hand, a chain whose newest event is older
 * than the k-th newest of them cannot contribute, nor can any after it. A
 * user's recent behaviors come in sessions of few categories, so a few
 * chains are decoded instead of all. Above PRUNE_K every chain is read. */
#define PRUNE_K 256

/* Merges run r's times (newest first) into top (the k newest times so far, newest first, *nt of them). */
static void keep_newest(int64_t *top, size_t *nt, int64_t *tmp, const ubt_event *run, size_t m, size_t k)
{
    size_t a = 0, b = 0, n = 0;
    while (n < k && (a < *nt || b < m)) tmp[n++] = b >= m || (a < *nt && top[a] >= run[b].ts) ? top[a++] : run[b++].ts;
    memcpy(top, tmp, n * sizeof *top);
    *nt = n;
}

static int search_all_categories(lsim_index_reader *rd, uint32_t user, int64_t after, int64_t before, size_t k,
                                 ubt_event *out, size_t *n, int oldest_first)
{
    /* the user's chains, each with a bound on its newest time before `before` */
    size_t n_runs = 0;
    uint8_t key0[UBT_KEY_LEN];
    ubt_key(key0, user, 0, 0);
    MDB_val key = {UBT_KEY_LEN, key0}, d;
    int rc = mdb_cursor_get(rd->cur, &key, &d, MDB_SET_RANGE);
    for (;;) {
        if (rc == MDB_NOTFOUND) break;
        if (rc) return lmdb_err(rc, RD_MSG(rd), "listing a user's chains");
        if (key.mv_size != UBT_KEY_LEN || ubt_get_u32be(key.mv_data) != user) break;
        uint32_t cat = ubt_get_u32be((const uint8_t *)key.mv_data + 4);
        if ((rc = reserve(rd, 0, n_runs + 1))) return rc;
        if ((rc = seek_chain_last(rd, user, cat, &key, &d)) < 0) return rc;
        if (rc) {
            block_header h;
            if (d.mv_size > UBT_BLOCK_MAX_BYTES || block_read_header(d.mv_data, d.mv_size, &h))
                return err_set(RD_MSG(rd), LSIM_E_CORRUPT,
                               "corrupt block header (user %u, chain %u)", user, cat);
            int64_t bound = h.last_ts < before ? h.last_ts : before > INT64_MIN ? before - 1 : INT64_MIN;
            if (h.last_ts > after) rd->runs[n_runs++] = (index_run){0, 0, cat, bound};
        }
        if (cat == UBT_MIXED) break;
        ubt_key(key0, user, cat + 1, 0);
        key = (MDB_val){UBT_KEY_LEN, key0};
        rc = mdb_cursor_get(rd->cur, &key, &d, MDB_SET_RANGE);
    }
    /* each chain's newest k before `before` (a run), newest bound first while it can contribute */
    int64_t top[PRUNE_K], tmp[PRUNE_K];
    size_t total = 0, nt = 0;
    int prune = k <= PRUNE_K;
    for (size_t done = 0; done < n_runs; done++) {
        size_t r = done;
        if (prune) { /* the undone chain with the newest bound: a swap keeps runs[0 .. done) the done ones */
            for (size_t i = done + 1; i < n_runs; i++)
                if (rd->runs[i].bound > rd->runs[r].bound) r = i;
            if (nt == k && rd->runs[r].bound < top[k - 1]) break;
            index_run t = rd->runs[r];
            rd->runs[r] = rd->runs[done];
            rd->runs[done] = t;
            r = done;
        }
        if ((rc = reserve(rd, total + k, n_runs))) return rc;
        size_t got = 0;
        if ((rc = seek_chain_last(rd, user, rd->runs[r].cat, &key, &d)) < 0) return rc;
        if (rc && (rc = walk_back(rd, user, rd->runs[r].cat, UBT_MIXED, after, before, k, rd->acc + total, &got, &key,
                                  &d)))
            return rc;
        rd->runs[r].pos = total;
        rd->runs[r].end = total + got;
        if (prune) keep_newest(top, &nt, tmp, rd->acc + total, got, k);
        total += got;
    }
    *n = merge_runs(rd, n_runs, k, out, oldest_first);
    return 0;
}

int index_hard_search_dense(lsim_index_reader *rd, uint32_t user, uint32_t cat, int64_t before, size_t k,
                            ubt_event *out, size_t *n)
{
    *n = 0;
    if (k == 0) return 0;
    if (cat == UBT_MIXED) return search_all_categories(rd, user, INT64_MIN, before, k, out, n, 0);
    MDB_val key, d;
    int rc = seek_chain_last(rd, user, cat, &key, &d);
    if (rc < 0) return rc;
    if (rc) return walk_back(rd, user, cat, cat, INT64_MIN, before, k, out, n, &key, &d);
    rc = seek_chain_last(rd, user, UBT_MIXED, &key, &d);
    if (rc <= 0) return rc;
    return walk_back(rd, user, UBT_MIXED, cat, INT64_MIN, before, k, out, n, &key, &d);
}

/* The number of events of dense user `user` (0 for a user without a summary), within a begun snapshot. */
static int user_event_count(lsim_index_reader *rd, uint32_t user, uint64_t *events)
{
    uint8_t key[4];
    ubt_put_u32be(key, user);
    MDB_val k = {4, key}, d;
    ubt_user_summary s;
    *events = 0;
    int rc = mdb_get(rd->txn, rd->ix->db_users, &k, &d);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return lmdb_err(rc, RD_MSG(rd), "reading a user summary");
    if (ubt_summary_decode(&s, user, d.mv_data, d.mv_size)) return rd_err(rd, LSIM_E_CORRUPT, "corrupt user summary");
    if (s.events > SIZE_MAX / 2 / sizeof(ubt_event))
        return err_set(RD_MSG(rd), LSIM_E_CORRUPT, "corrupt user summary of user %u: %llu events", user,
                       (unsigned long long)s.events);
    *events = s.events;
    return 0;
}

LSIM_API int lsim_index_hard_search(lsim_index_reader *rd, const char *user, size_t user_len,
                                    const char *category, size_t category_len, int64_t before, size_t k,
                                    lsim_event *out, size_t *n)
{
    if (!rd || !user || !n || (k && !out)) return LSIM_E_INVAL;
    *n = 0;
    if (user_len > LSIM_MAX_ID_LEN || (category && category_len > LSIM_MAX_ID_LEN)) return 0;
    int rc = index_reader_begin(rd);
    if (rc) return rc;
    lsim_index *ix = rd->ix;
    pthread_rwlock_rdlock(&ix->lock);
    uint32_t uid, cid = UBT_MIXED;
    size_t got = 0;
    uint64_t events = 0;
    if (vocab_find(ix->voc[IX_USER], user, user_len, &uid) == 0 &&
        (!category || vocab_find(ix->voc[IX_CAT], category, category_len, &cid) == 0) &&
        !(rc = user_event_count(rd, uid, &events)) && events) {
        if (k > events) k = (size_t)events; /* no search returns more than the user has: bounds the buffers */
        if (rd->res_cap < k) {
            ubt_event *r = realloc(rd->res, k * sizeof *r);
            if (!r) rc = rd_err(rd, LSIM_E_NOMEM, "out of memory");
            else rd->res = r, rd->res_cap = k;
        }
        if (!rc) rc = index_hard_search_dense(rd, uid, cid, before, k, rd->res, &got);
        for (size_t i = 0; i < got && !rc; i++) {
            const ubt_event *e = &rd->res[i];
            if (e->item >= vocab_size(ix->voc[IX_ITEM]) || e->cat >= vocab_size(ix->voc[IX_CAT]) ||
                e->type >= vocab_size(ix->voc[IX_TYPE])) {
                rc = rd_err(rd, LSIM_E_CORRUPT, "corrupt: an event block names an id outside the vocabulary");
                break;
            }
            out[i].item = vocab_str(ix->voc[IX_ITEM], e->item);
            out[i].category = vocab_str(ix->voc[IX_CAT], e->cat);
            out[i].type = vocab_str(ix->voc[IX_TYPE], e->type);
            out[i].ts = e->ts;
        }
    }
    pthread_rwlock_unlock(&ix->lock);
    index_reader_end(rd);
    if (rc) return rc;
    *n = got;
    return 0;
}

int index_user_events(lsim_index_reader *rd, uint32_t user, int64_t before, ubt_event **buf, size_t *cap,
                      size_t *n)
{
    *n = 0;
    int rc = index_reader_begin(rd);
    if (rc) return rc;
    rc = index_user_events_in(rd, user, before, buf, cap, n);
    index_reader_end(rd);
    return rc;
}

void index_candidate_ids(const lsim_index *ix, const lsim_candidate *cand, size_t n, uint32_t *item, uint32_t *cat)
{
    uint32_t n_items = vocab_size(ix->voc[IX_ITEM]), n_cats = vocab_size(ix->voc[IX_CAT]);
    for (size_t i = 0; i < n; i++) {
        uint32_t it, ct;
        if (vocab_find(ix->voc[IX_ITEM], cand[i].item, cand[i].item_len, &it)) it = n_items;
        if (cand[i].category) {
            if (vocab_find(ix->voc[IX_CAT], cand[i].category, cand[i].category_len, &ct)) ct = n_cats;
        } else {
            ct = it < n_items ? vocab_cat(ix->voc[IX_ITEM], it) : n_cats;
            if (ct == VOCAB_NO_CAT) ct = n_cats;
        }
        item[i] = it;
        cat[i] = ct;
    }
}

int index_user_events_in(lsim_index_reader *rd, uint32_t user, int64_t before, ubt_event **buf, size_t *cap,
                         size_t *n)
{
    return index_user_events_range(rd, user, INT64_MIN, before, buf, cap, n);
}

int index_user_events_range(lsim_index_reader *rd, uint32_t user, int64_t after, int64_t before, ubt_event **buf,
                            size_t *cap, size_t *n)
{
    *n = 0;
    uint64_t events;
    int rc = user_event_count(rd, user, &events);
    if (!rc && events > *cap) {
        ubt_event *b = realloc(*buf, (size_t)events * sizeof *b);
        if (!b) rc = rd_err(rd, LSIM_E_NOMEM, "out of memory");
        else *buf = b, *cap = (size_t)events;
    }
    if (!rc && events) rc = search_all_categories(rd, user, after, before, (size_t)events, *buf, n, 1);
    return rc;
}

int index_reader_over_txn(lsim_index_reader **out, lsim_index *view, MDB_txn *txn)
{
    lsim_index_reader *rd;
    int rc = lsim_index_reader_new(view, &rd);
    if (rc) return rc;
    rd->txn = txn;
    if ((rc = mdb_cursor_open(txn, view->db_ubt, &rd->cur))) {
        rd->txn = NULL;
        lsim_index_reader_free(rd);
        return lmdb_err(rc, NULL, 0, "opening a cursor");
    }
    rd->active = 1;
    *out = rd;
    return 0;
}

void index_reader_over_txn_free(lsim_index_reader *rd)
{
    if (!rd) return;
    if (rd->cur) mdb_cursor_close(rd->cur);
    rd->cur = NULL;
    rd->txn = NULL; /* the caller's */
    rd->active = 0;
    lsim_index_reader_free(rd);
}

int index_recent_dense(lsim_index_reader *rd, uint32_t user, int64_t before, size_t k, ubt_event *out, size_t *n)
{
    *n = 0;
    return k ? search_all_categories(rd, user, INT64_MIN, before, k, out, n, 1) : 0;
}

int index_time_range(lsim_index_reader *rd, int64_t *first, int64_t *last)
{
    *first = INT64_MAX;
    *last = INT64_MIN;
    int rc = index_reader_begin(rd);
    if (rc) return rc;
    MDB_cursor *cur;
    MDB_val k, d;
    if ((rc = mdb_cursor_open(rd->txn, rd->ix->db_users, &cur))) {
        rc = lmdb_err(rc, RD_MSG(rd), "listing the user summaries");
    } else {
        int r = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        for (; r == 0; r = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            ubt_user_summary s;
            if (k.mv_size != UBT_USER_KEY_LEN ||
                ubt_summary_decode(&s, ubt_get_u32be(k.mv_data), d.mv_data, d.mv_size)) {
                rc = rd_err(rd, LSIM_E_CORRUPT, "corrupt user summary");
                break;
            }
            if (s.events && s.first_ts < *first) *first = s.first_ts;
            if (s.events && s.last_ts > *last) *last = s.last_ts;
        }
        if (!rc && r != MDB_NOTFOUND) rc = lmdb_err(r, RD_MSG(rd), "listing the user summaries");
        mdb_cursor_close(cur);
    }
    index_reader_end(rd);
    return rc;
}

int index_user_summary(lsim_index_reader *rd, const char *user, size_t len, ubt_user_summary *s)
{
    int rc = index_reader_begin(rd);
    if (rc) return rc;
    uint32_t uid;
    pthread_rwlock_rdlock(&rd->ix->lock);
    rc = vocab_find(rd->ix->voc[IX_USER], user, len, &uid);
    pthread_rwlock_unlock(&rd->ix->lock);
    if (rc == 0) {
        uint8_t key[4];
        ubt_put_u32be(key, uid);
        MDB_val k = {4, key}, d;
        rc = mdb_get(rd->txn, rd->ix->db_users, &k, &d);
        if (rc) rc = lmdb_err(rc, RD_MSG(rd), "reading a user summary");
        else if (ubt_summary_decode(s, uid, d.mv_data, d.mv_size))
            rc = rd_err(rd, LSIM_E_CORRUPT, "corrupt user summary");
    }
    index_reader_end(rd);
    return rc;
}
