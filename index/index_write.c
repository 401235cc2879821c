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

#include "index/chain_encode.h"
#include "index/chain_merge.h"
#include "index/chain_plan.h"
#include "index/event_sort.h"
#include "index/ubt_layout.h"
#include "index/vocab.h"
#include "loaders/log_pipe.h"
#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"
#include "index/ubt_meta.h"
#include "storage/lmdb_env.h"
#include "storage/staged_dir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DICT_CAP (16u << 10) /* <= UBT_DICT_MAX_BYTES */
#define MAX_TYPES 255u

enum { V_USER, V_ITEM, V_CAT, V_TYPE, V_KINDS };
static const char vocab_kinds[V_KINDS] = {UBT_VOCAB_USER, UBT_VOCAB_ITEM, UBT_VOCAB_CAT,
                                          UBT_VOCAB_TYPE};

#define ENCODE_THREADS 2
/* events a worker encodes between two commits (one job) */
#define ENCODE_JOB_EVENTS (256u << 10)

/* Encoded records of new users, made by a worker, stored in key order by the
 * writing thread: 'b' blocks (12-byte key) and 's' summaries (4-byte key),
 * each as kind | u32 value length | key | value. */
typedef struct rec_buf {
    uint8_t *p;
    size_t len, cap;
} rec_buf;

typedef struct encode_job {
    chain_encoder *enc;
    const batch_event *ev;
    const size_t *starts;
    uint32_t u0, u1;     /* users [u0, u1) */
    uint32_t own_min, mixed_max;
    rec_buf out;
    uint64_t blocks;
    int rc;
} encode_job;

typedef struct writer {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi db_meta, db_ubt, db_users, db_vocab;
    vocab *voc[V_KINDS];
    ubt_counts counts;
    uint32_t own_min, mixed_max;
    chain_encoder enc[ENCODE_THREADS]; /* enc[0] also serves merges and dictionary training */
    encode_job jobs[ENCODE_THREADS];
    int zstd_level;
    const ubt_write_opts *o;
    ubt_write_result *res;
    /* the batch */
    batch_event *ev, *tmp;
    size_t n, cap;
    size_t *starts;
    size_t starts_cap;
    uint32_t users_before_batch; /* users with ids >= this have nothing stored yet */
    int want_dict;
    int renumber_items; /* a fresh build's first batch: order item ids by category */
    uint32_t last_id[V_KINDS]; /* the previous line's ids, UINT32_MAX: none */
    /* the User Interest Center: per dense user, the time of its earliest event written by this run
     * (INT64_MAX: none), kept when uic_on */
    int uic_on;
    int has_uic;       /* append: the index has a UIC, described by uic_info */
    uic_info uic_info;
    int64_t *uic_from;
    size_t uic_from_cap;
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

static int nomem(writer *w)
{
    return err_set(w->err, w->errlen, LSIM_E_NOMEM, "out of memory");
}

/* ----------------------------------------------------------------- batch */

static int meta_put(writer *w, const char *key, const void *val, size_t len)
{
    return ubt_meta_put(w->txn, w->db_meta, key, val, len, w->err, w->errlen);
}

static int train_dict(writer *w)
{
    /* a dry run over the first users' chains collects raw payloads to learn from */
    chain_encoder *e = &w->enc[0];
    e->training = 1;
    uint32_t n_users = vocab_size(w->voc[V_USER]);
    int rc = 0;
    uint64_t unused = 0;
    ubt_user_summary sum;
    for (uint32_t u = 0; u < n_users && !rc && e->samples_len < e->samples_max; u++) {
        size_t lo = w->starts[u], hi = w->starts[u + 1];
        if (hi > lo) rc = chain_encode_new_user(e, u, w->ev + lo, hi - lo, w->own_min, w->mixed_max, &sum, &unused);
    }
    e->training = 0;
    if (rc) return err_set(w->err, w->errlen, rc, "%s", e->err);
    w->want_dict = 0;
    uint8_t *dict = malloc(DICT_CAP);
    if (!dict) return nomem(w);
    size_t dict_len = 0;
    if (block_train_dict(dict, DICT_CAP, &dict_len, e->samples, e->sample_lens, e->n_samples) == 0 && dict_len) {
        for (int t = 0; t < ENCODE_THREADS && !rc; t++)
            if (chain_encoder_set_dict(&w->enc[t], dict, dict_len, w->zstd_level)) rc = nomem(w);
        if (!rc) rc = meta_put(w, "zdict", dict, dict_len);
    }
    free(dict);
    free(e->samples);
    free(e->sample_lens);
    e->samples = NULL;
    e->sample_lens = NULL;
    e->samples_len = e->samples_cap = e->n_samples = e->sample_lens_cap = 0;
    return rc;
}

static int rec_add(rec_buf *r, uint8_t kind, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    size_t need = r->len + 5 + klen + vlen;
    if (need > r->cap) {
        size_t nc = r->cap ? r->cap : (1u << 20);
        while (nc < need) nc *= 2;
        uint8_t *p = realloc(r->p, nc);
        if (!p) return LSIM_E_NOMEM;
        r->p = p;
        r->cap = nc;
    }
    uint8_t *q = r->p + r->len;
    q[0] = kind;
    memcpy(q + 1, &(uint32_t){(uint32_t)vlen}, 4);
    memcpy(q + 5, key, klen);
    memcpy(q + 5 + klen, val, vlen);
    r->len = need;
    return 0;
}

static int rec_put_block(void *ctx, const uint8_t key[UBT_KEY_LEN], const uint8_t *blk, size_t len)
{
    encode_job *j = ctx;
    if (rec_add(&j->out, 'b', key, UBT_KEY_LEN, blk, len))
        return err_set(j->enc->err, sizeof j->enc->err, LSIM_E_NOMEM, "out of memory");
    return 0;
}

/* Encodes the chains and summaries of new users [u0, u1) into job->out. */
static void *encode_job_run(void *arg)
{
    encode_job *j = arg;
    chain_encoder *e = j->enc;
    e->put = rec_put_block;
    e->put_ctx = j;
    j->out.len = 0;
    j->blocks = 0;
    j->rc = 0;
    for (uint32_t u = j->u0; u < j->u1 && !j->rc; u++) {
        size_t lo = j->starts[u], hi = j->starts[u + 1];
        if (hi == lo) continue;
        ubt_user_summary sum;
        j->rc = chain_encode_new_user(e, u, j->ev + lo, hi - lo, j->own_min, j->mixed_max, &sum, &j->blocks);
        if (j->rc) break;
        uint8_t key[4], val[UBT_SUMMARY_MAX_BYTES];
        ubt_put_u32be(key, u);
        if (rec_add(&j->out, 's', key, 4, val, ubt_summary_encode(val, u, &sum)))
            j->rc = err_set(e->err, sizeof e->err, LSIM_E_NOMEM, "out of memory");
    }
    return NULL;
}

/* Stores a job's records. Keys ascend (new users' keys sort after every stored
 * key, and jobs are committed in user order), so MDB_APPEND holds. */
static int commit_job(writer *w, encode_job *j)
{
    if (j->rc) return err_set(w->err, w->errlen, j->rc, "%s", j->enc->err);
    for (size_t off = 0; off < j->out.len;) {
        const uint8_t *q = j->out.p + off;
        uint32_t vlen;
        memcpy(&vlen, q + 1, 4);
        size_t klen = q[0] == 'b' ? UBT_KEY_LEN : 4;
        MDB_val k = {klen, (void *)(q + 5)}, d = {vlen, (void *)(q + 5 + klen)};
        int rc = mdb_put(w->txn, q[0] == 'b' ? w->db_ubt : w->db_users, &k, &d, MDB_APPEND);
        if (rc) return lmdb_err(rc, w->err, w->errlen, "writing the index");
        off += 5 + klen + vlen;
    }
    w->counts.blocks += j->blocks;
    return 0;
}

/* Encodes new users [u0, n_users) on ENCODE_THREADS threads, a job each at a
 * time, and stores the jobs in order. */
static int encode_new_users(writer *w, uint32_t u0, uint32_t n_users)
{
    uint32_t u = u0;
    int rc = 0;
    while (u < n_users && !rc) {
        int n_jobs = 0;
        for (int t = 0; t < ENCODE_THREADS && u < n_users; t++) {
            encode_job *j = &w->jobs[t];
            j->enc = &w->enc[t];
            j->ev = w->ev;
            j->starts = w->starts;
            j->own_min = w->own_min;
            j->mixed_max = w->mixed_max;
            j->u0 = u;
            size_t events = 0;
            while (u < n_users && events < ENCODE_JOB_EVENTS) {
                events += w->starts[u + 1] - w->starts[u];
                u++;
            }
            j->u1 = u;
            n_jobs++;
        }
        pthread_t th[ENCODE_THREADS];
        int started[ENCODE_THREADS] = {0};
        for (int t = 1; t < n_jobs; t++) started[t] = pthread_create(&th[t], NULL, encode_job_run, &w->jobs[t]) == 0;
        encode_job_run(&w->jobs[0]);
        for (int t = 1; t < n_jobs; t++) {
            if (started[t]) pthread_join(th[t], NULL);
            else encode_job_run(&w->jobs[t]); /* no thread: do it here */
        }
        for (int t = 0; t < n_jobs && !rc; t++) rc = commit_job(w, &w->jobs[t]);
    }
    return rc;
}

typedef struct item_key {
    uint64_t key; /* category << 32 | (UINT32_MAX - count): by category, then most frequent first */
    uint32_t id;
} item_key;

static int by_item_key(const void *a, const void *b)
{
    const item_key *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Gives the items of a fresh build dense ids grouped by category, most
 * frequent first, before anything is written: the items of one chain then
 * have close ids, which the block codec stores in far fewer bits (its
 * per-block dictionary codes id gaps). Items first seen by a later batch or
 * append get the next ids as they come. */
static int renumber_items(writer *w)
{
    vocab *old = w->voc[V_ITEM];
    uint32_t n = vocab_size(old);
    item_key *keys = calloc(n ? n : 1, sizeof *keys);
    uint32_t *new_id = malloc((n ? n : 1) * sizeof *new_id);
    vocab *nv = NULL;
    int rc = (!keys || !new_id || vocab_new(&nv, UBT_VOCAB_ITEM, 1)) ? nomem(w) : 0;
    if (!rc) {
        for (uint32_t i = 0; i < n; i++) keys[i].id = i;
        for (size_t i = 0; i < w->n; i++) keys[w->ev[i].item].key++;
        for (uint32_t i = 0; i < n; i++)
            keys[i].key = (uint64_t)vocab_cat(old, i) << 32 | (UINT32_MAX - (uint32_t)keys[i].key);
        qsort(keys, n, sizeof *keys, by_item_key);
        for (uint32_t j = 0; j < n && !rc; j++) {
            uint32_t id, o = keys[j].id;
            if (vocab_intern(nv, vocab_str(old, o), vocab_len(old, o), &id, UINT32_MAX - 1)) rc = nomem(w);
            vocab_set_cat(nv, id, vocab_cat(old, o));
            new_id[o] = id;
        }
    }
    if (!rc) {
        for (size_t i = 0; i < w->n; i++) w->ev[i].item = new_id[w->ev[i].item];
        w->voc[V_ITEM] = nv;
        vocab_free(old);
    } else
        vocab_free(nv);
    free(keys);
    free(new_id);
    return rc;
}

/* Notes each user's earliest event of the batch (sorted: starts[u] is u's first). */
static int note_uic_from(writer *w, uint32_t n_users)
{
    if (w->uic_from_cap < n_users) {
        size_t nc = w->uic_from_cap ? w->uic_from_cap : 1024;
        while (nc < n_users) nc *= 2;
        int64_t *f = realloc(w->uic_from, nc * sizeof *f);
        if (!f) return nomem(w);
        for (size_t u = w->uic_from_cap; u < nc; u++) f[u] = INT64_MAX;
        w->uic_from = f;
        w->uic_from_cap = nc;
    }
    for (uint32_t u = 0; u < n_users; u++)
        if (w->starts[u + 1] > w->starts[u] && w->ev[w->starts[u]].ts < w->uic_from[u])
            w->uic_from[u] = w->ev[w->starts[u]].ts;
    return 0;
}

static int flush_batch(writer *w)
{
    if (!w->n) return 0;
    int rc;
    if (w->renumber_items) {
        if ((rc = renumber_items(w))) return rc;
        w->renumber_items = 0;
    }
    uint32_t n_users = vocab_size(w->voc[V_USER]);
    if ((size_t)n_users + 1 > w->starts_cap) {
        size_t *s = realloc(w->starts, ((size_t)n_users + 1) * sizeof *s);
        if (!s) return nomem(w);
        w->starts = s;
        w->starts_cap = (size_t)n_users + 1;
    }
    event_sort_by_user_ts(w->ev, w->tmp, w->n, n_users, w->starts);
    if (w->uic_on && (rc = note_uic_from(w, n_users))) return rc;
    if (w->want_dict && (rc = train_dict(w))) return rc;
    /* users already stored (ids below users_before_batch) first, in id order, then the new ones */
    uint32_t first_new = w->users_before_batch < n_users ? w->users_before_batch : n_users;
    chain_merger mg;
    rc = chain_merger_init(&mg, w->txn, w->db_ubt, w->db_users, &w->enc[0], &w->counts.blocks, w->own_min,
                           w->mixed_max, w->err, w->errlen);
    for (uint32_t u = 0; u < first_new && !rc; u++) {
        size_t lo = w->starts[u], hi = w->starts[u + 1];
        if (hi > lo) rc = chain_merge_user(&mg, u, w->ev + lo, hi - lo);
    }
    chain_merger_free(&mg);
    if (!rc) rc = encode_new_users(w, first_new, n_users);
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

/* Makes room for one more event in the batch, writing the batch out when it
 * is at its memory limit. Called before the event's ids are interned: a
 * flush may renumber ids. */
static int batch_room(writer *w)
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
            if ((rc = batch_room(w)) || (rc = intern_event(w, e, &w->ev[w->n], path))) break;
            w->n++;
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
    if ((rc = lmdb_stamp_put(w->txn, w->db_meta, w->err, w->errlen))) return rc; /* last: lmdb_check.h */
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
    w->zstd_level = o->zstd_level ? o->zstd_level : 1;
    memset(w->last_id, 0xff, sizeof w->last_id);
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
    for (int t = 0; t < ENCODE_THREADS; t++) {
        chain_encoder_free(&w->enc[t]);
        free(w->jobs[t].out.p);
    }
    free(w->ev);
    free(w->tmp);
    free(w->starts);
    free(w->uic_from);
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

/* The block dictionary as this transaction has it (NULL, 0: none). */
static int txn_zdict(writer *w, const void **dict, size_t *len)
{
    MDB_val k = {5, "zdict"}, d;
    *dict = NULL;
    *len = 0;
    int rc = mdb_get(w->txn, w->db_meta, &k, &d);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return lmdb_err(rc, w->err, w->errlen, "reading the block dictionary");
    if (ubt_unseal("zdict", 5, d.mv_data, d.mv_size, len))
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT, "corrupt: the block dictionary is damaged");
    *dict = d.mv_data;
    return 0;
}

/* Writes the User Interest Center's records: every user's (all) or those this
 * run touched (from uic_from), and its meta record. */
static int write_uic(writer *w, const char *dir, uint32_t every, int all)
{
    const uic_model *model = w->o->uic;
    MDB_dbi db;
    int rc = mdb_dbi_open(w->txn, UIC_DB, MDB_CREATE, &db);
    if (rc) return lmdb_err(rc, w->err, w->errlen, "creating the User Interest Center");
    if (all && (rc = mdb_drop(w->txn, db, 0))) return lmdb_err(rc, w->err, w->errlen, "clearing the User Interest Center");
    uic_info info = {.version = UIC_VERSION, .state_floats = model->state_floats, .every = every,
                     .model_id = model->id};
    snprintf(info.name, sizeof info.name, "%s", model->name);
    uint8_t buf[32 + UIC_NAME_MAX];
    if ((rc = meta_put(w, UIC_META_KEY, buf, uic_info_encode(buf, &info)))) return rc;
    lsim_index view;
    memset(&view, 0, sizeof view);
    view.dir = (char *)dir;
    view.db_ubt = w->db_ubt;
    view.db_users = w->db_users;
    const void *dict;
    if ((rc = txn_zdict(w, &dict, &view.dict_len))) return rc;
    view.dict = (void *)dict;
    lsim_index_reader *rd;
    if ((rc = index_reader_over_txn(&rd, &view, w->txn))) return err_set(w->err, w->errlen, rc, "%s: %s", dir,
                                                                        lsim_strerror(rc));
    uic_writer uw;
    rc = uic_writer_init(&uw, model, every, w->txn, db, rd, w->err, w->errlen);
    uw.in_order = all; /* users ascending into an empty database */
    uint32_t n_users = vocab_size(w->voc[V_USER]);
    for (uint32_t u = 0; u < n_users && !rc; u++) {
        int64_t from = all ? INT64_MIN : u < w->uic_from_cap ? w->uic_from[u] : INT64_MAX;
        if (from == INT64_MAX) continue;
        rc = uic_writer_update(&uw, u, from);
        w->res->uic_users++;
    }
    w->res->uic_records += uw.records;
    w->res->uic_bytes += uw.bytes;
    uic_writer_free(&uw);
    index_reader_over_txn_free(rd);
    return rc;
}

int ubt_build(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err,
              size_t errlen)
{
    if (!dir || !*dir || !o || !o->n_inputs)
        return err_set(err, errlen, LSIM_E_INVAL, "an index directory and at least one input are needed");
    staged_dir sd;
    int rc = staged_dir_begin(&sd, dir, o->force, "data.mdb", err, errlen);
    if (rc) return rc;
    writer w;
    rc = writer_init(&w, o, res, err, errlen);
    w.own_min = o->own_min ? o->own_min : UBT_OWN_MIN_DEFAULT;
    w.mixed_max = o->mixed_max ? o->mixed_max : UBT_MIXED_MAX_DEFAULT;
    w.want_dict = !o->no_dict;
    w.renumber_items = 1;
    for (int t = 0; t < ENCODE_THREADS && !rc; t++)
        if (chain_encoder_init(&w.enc[t], NULL, 0, w.zstd_level)) rc = nomem(&w);
    if (!rc) rc = lmdb_env_open(&w.env, sd.tmp, LMDB_ENV_BULK, o->mapsize, NULL, NULL, err, errlen);
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
    if (!rc && o->uic) rc = write_uic(&w, dir, o->uic_every ? o->uic_every : UIC_EVERY_DEFAULT, 1);
    if (!rc) rc = finish_txn(&w, 1);
    if (!rc && (rc = mdb_env_sync(w.env, 1))) rc = lmdb_err(rc, err, errlen, "syncing the index");
    if (!rc) finish_result(&w);
    writer_free(&w);
    static const char *const files[] = {"data.mdb", NULL};
    if (!rc) rc = staged_dir_commit(&sd, dir, files, err, errlen);
    if (rc) {
        rc = lmdb_env_explain_full(sd.tmp, dir, rc, err, errlen); /* before the abort gives the space back */
        staged_dir_abort(&sd);
    }
    return rc;
}

static int load_existing(writer *w, const char *dir, int stamped)
{
    int rc = open_dbs(w, 0);
    if (rc) return rc;
    ubt_meta m;
    if ((rc = ubt_meta_read(w->txn, w->db_meta, dir, stamped, &m, w->err, w->errlen))) return rc;
    w->counts = m.counts;
    w->has_uic = m.has_uic;
    w->uic_info = m.uic;
    w->own_min = m.own_min;
    w->mixed_max = m.mixed_max;
    for (int t = 0; t < ENCODE_THREADS; t++)
        if (chain_encoder_init(&w->enc[t], m.zdict, m.zdict_len, w->zstd_level)) return nomem(w);
    for (int i = 0; i < V_KINDS; i++) {
        char why[LSIM_ERRLEN];
        if ((rc = vocab_load(w->voc[i], w->txn, w->db_vocab, why, sizeof why)))
            return err_set(w->err, w->errlen, rc, "%s: %s", dir, why);
    }
    if (vocab_size(w->voc[V_USER]) != w->counts.users || vocab_size(w->voc[V_ITEM]) != w->counts.items)
        return err_set(w->err, w->errlen, LSIM_E_CORRUPT,
                       "%s: corrupt: vocabulary sizes disagree with the index counts", dir);
    w->users_before_batch = vocab_size(w->voc[V_USER]);
    w->res->users_added = vocab_size(w->voc[V_USER]);
    w->res->items_added = vocab_size(w->voc[V_ITEM]);
    return 0;
}

/* Whether this append may run with o->uic against the index's UIC. */
static int uic_check(writer *w, const char *dir, int rebuild)
{
    const uic_model *u = w->o->uic;
    if (rebuild) return 0;
    if (w->has_uic && !u)
        return err_set(w->err, w->errlen, LSIM_E_INVAL,
                       "%s has a User Interest Center (for %s): give its checkpoint with --uic, or the states would "
                       "fall behind the events",
                       dir, w->uic_info.name);
    if (w->has_uic && (u->id != w->uic_info.model_id || u->state_floats != w->uic_info.state_floats))
        return err_set(w->err, w->errlen, LSIM_E_INVAL,
                       "%s: its User Interest Center is for %s, not for %s: give that checkpoint, or replace the UIC "
                       "with `lsim index uic`",
                       dir, w->uic_info.name, u->name);
    return 0;
}

/* append (rebuild 0) or the UIC's rebuild (1: no inputs read). */
static int append_run(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err, size_t errlen,
                      int rebuild)
{
    writer w;
    int rc = writer_init(&w, o, res, err, errlen);
    /* the file is checked before LMDB writes to it (a corrupt free list would have it overwrite pages in use);
     * the transaction must follow the snapshot checked, else another append committed in between: again */
    lmdb_check_result chk;
    for (int attempt = 0; !rc; attempt++) {
        rc = lmdb_env_open(&w.env, dir, LMDB_ENV_WRITE, o->mapsize, ubt_check_spec(), &chk, err, errlen);
        if (!rc && (rc = mdb_txn_begin(w.env, NULL, 0, &w.txn))) rc = lmdb_err(rc, err, errlen, "begin");
        if (rc || (uint64_t)mdb_txn_id(w.txn) == chk.txnid + 1) break;
        mdb_txn_abort(w.txn);
        w.txn = NULL;
        mdb_env_close(w.env);
        w.env = NULL;
        if (attempt == 4)
            rc = err_set(err, errlen, LSIM_E_STORAGE, "%s: the index kept changing while it was opened", dir);
    }
    if (!rc) rc = load_existing(&w, dir, chk.stamped);
    if (!rc) rc = uic_check(&w, dir, rebuild);
    w.uic_on = o->uic != NULL;
    if (!rc) staged_dir_remove_stale(dir); /* what killed builds left beside it: disk back before writing */
    if (!rc && !rebuild) rc = ingest_all(&w);
    if (!rc && o->uic) {
        uint32_t every = rebuild && o->uic_every ? o->uic_every
                         : w.has_uic        ? w.uic_info.every
                         : o->uic_every     ? o->uic_every
                                            : UIC_EVERY_DEFAULT;
        rc = write_uic(&w, dir, every, rebuild || !w.has_uic);
    }
    if (!rc) {
        if (!rebuild) w.counts.appends++;
        rc = finish_txn(&w, 0);
    }
    if (!rc) finish_result(&w);
    if (rc && w.env) {
        rc = lmdb_env_explain_full(dir, dir, rc, err, errlen);
        if (w.txn) mdb_txn_abort(w.txn); /* the index is as it was */
        w.txn = NULL;
        lmdb_env_trim(w.env, dir); /* and a commit cut short gives back the pages it wrote */
    }
    writer_free(&w);
    return rc;
}

int ubt_append(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err,
               size_t errlen)
{
    if (!dir || !*dir || !o || !o->n_inputs)
        return err_set(err, errlen, LSIM_E_INVAL, "an index directory and at least one input are needed");
    return append_run(dir, o, res, err, errlen, 0);
}

int ubt_uic_rebuild(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err, size_t errlen)
{
    if (!dir || !*dir || !o || !o->uic)
        return err_set(err, errlen, LSIM_E_INVAL, "an index directory and a model are needed");
    return append_run(dir, o, res, err, errlen, 1);
}
