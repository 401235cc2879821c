/*
 * index_internal.h: the read-side handles behind lsim_index /
 * lsim_index_reader, shared by index_read.c, index_verify.c and the tools
 * (private).
 *
 * Concurrency: vocabularies are loaded at open and refreshed when a reader's
 * snapshot shows that an append added entries; the rwlock guards them (readers
 * hold it shared while they resolve ids to strings). Strings never move, so
 * pointers handed out stay valid until close.
 */
#ifndef LSIM_INDEX_INTERNAL_H
#define LSIM_INDEX_INTERNAL_H

#include "index/ubt_layout.h"
#include "index/uic_info.h"
#include "index/vocab.h"
#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"

#include <lmdb.h>
#include <pthread.h>
#include <sys/types.h>

enum { IX_USER, IX_ITEM, IX_CAT, IX_TYPE, IX_KINDS };

struct lsim_index {
    MDB_env *env;
    MDB_dbi db_meta, db_ubt, db_users, db_vocab;
    /* its User Interest Center (index/uic.h), as of the open */
    int has_uic;
    MDB_dbi db_uic;
    uic_info uic;
    vocab *voc[IX_KINDS];
    ubt_counts counts;   /* as of the last vocabulary load */
    void *dict;
    size_t dict_len;
    char *dir;
    pthread_rwlock_t lock;
    /* the process-wide registry of open indexes (LMDB allows one environment
     * per file per process): opens of the same data.mdb share this handle */
    dev_t dev;
    ino_t ino;
    unsigned refs;     /* guarded by the registry's mutex */
    lsim_index *next;
};

/* One chain's events in a reader's accumulator: acc[pos .. end), newest first;
 * the chain's category key, and a bound on its newest event's time before the
 * search's limit (from its last block's header). */
typedef struct index_run {
    size_t pos, end;
    uint32_t cat;
    int64_t bound;
} index_run;

struct lsim_index_reader {
    lsim_index *ix;
    MDB_txn *txn;        /* reset between calls, renewed at the next */
    MDB_cursor *cur;
    MDB_cursor *uic_cur; /* on the User Interest Center, opened at its first use */
    int active;
    block_codec *codec;
    ubt_event *blk;      /* one decoded block, BLOCK_MAX_EVENTS */
    ubt_event *acc;      /* candidates of an all-category search */
    size_t acc_cap;
    index_run *runs;     /* the chains of an all-category search (grows) */
    uint32_t *run_heap;
    size_t runs_cap;
    ubt_event *res;      /* dense results of the last search */
    uint32_t *res_cat;
    size_t res_cap;
    char errmsg[LSIM_ERRLEN]; /* "DIR: " (pfx bytes), then the last failure's detail */
    size_t pfx;
};

/* Where a reader's detail goes (err_set, lmdb_err): after its "DIR: ". */
#define RD_MSG(rd) ((rd)->errmsg + (rd)->pfx), (sizeof (rd)->errmsg - (rd)->pfx)

/* Starts a snapshot (renews the read transaction; refreshes the vocabularies
 * if an append added entries). Every search calls it; index_reader_end ends it. */
int index_reader_begin(lsim_index_reader *rd);
void index_reader_end(lsim_index_reader *rd);

/* Hard search on dense ids within a begun snapshot. cat = UBT_MIXED means
 * every category. Fills out[0..*n) newest first (events carry their
 * category). */
int index_hard_search_dense(lsim_index_reader *rd, uint32_t user, uint32_t cat, int64_t before,
                            size_t k, ubt_event *out, size_t *n);

/* Every event of dense user `user` with ts < before, oldest first (time,
 * then log order), in one snapshot, into *buf (grown with realloc as
 * needed; *cap its capacity in events, the caller frees it). An unknown
 * user has none. */
int index_user_events(lsim_index_reader *rd, uint32_t user, int64_t before, ubt_event **buf, size_t *cap,
                      size_t *n);

/* The same within a snapshot the caller began (index_reader_begin) and
 * ends. */
int index_user_events_in(lsim_index_reader *rd, uint32_t user, int64_t before, ubt_event **buf, size_t *cap,
                         size_t *n);

/* Every event of dense user `user` with after < ts < before, oldest first,
 * within a begun snapshot, into *buf as index_user_events does. Reads only
 * the blocks that can hold such events. */
int index_user_events_range(lsim_index_reader *rd, uint32_t user, int64_t after, int64_t before, ubt_event **buf,
                            size_t *cap, size_t *n);

/* A reader over a write transaction the caller holds (the UIC's update in
 * build and append), for index_user_events_range: `view` is an lsim_index
 * the caller fills with dir, db_ubt, db_users and the block dictionary
 * (dict, dict_len); both must outlive the reader. Free it with
 * index_reader_over_txn_free before the transaction ends. */
int index_reader_over_txn(lsim_index_reader **out, lsim_index *view, MDB_txn *txn);
void index_reader_over_txn_free(lsim_index_reader *rd);

/* The newest k events of every category with ts < before, oldest first (the
 * all-category hard search in time order), within a begun snapshot. */
int index_recent_dense(lsim_index_reader *rd, uint32_t user, int64_t before, size_t k, ubt_event *out, size_t *n);

/* The count of events e[0..n) (time-ordered) strictly before t: the first position with ts >= t. */
static inline size_t ubt_events_before(const ubt_event *e, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].ts < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The dense ids of request candidates, as lsim_score maps them (call with
 * ix->lock held for reading): an item the index does not know is n_items
 * (the models' out-of-vocabulary row); a given category is its id, or
 * n_cats if unknown; no category: the item's (n_cats if it has none). */
void index_candidate_ids(const lsim_index *ix, const lsim_candidate *cand, size_t n, uint32_t *item, uint32_t *cat);

/* The bytes of the pages each database uses (branch, leaf and overflow
 * pages times the page size), and the UIC's record count (0 without one). */
typedef struct index_space {
    uint64_t tree_bytes, users_bytes, vocab_bytes, uic_bytes, uic_records;
} index_space;
int index_space_get(lsim_index *ix, index_space *out);

/* The first and last event times over all users (INT64_MAX / INT64_MIN
 * for an empty index), from the user summaries. */
int index_time_range(lsim_index_reader *rd, int64_t *first, int64_t *last);

/* The summary (event count, first and last ts) of a user given by raw id,
 * in a snapshot of its own. LSIM_E_NOTFOUND for an unknown user. */
int index_user_summary(lsim_index_reader *rd, const char *user, size_t len, ubt_user_summary *s);

/* The first key after every key that starts with prefix[0..len) (big-endian
 * increment); returns 0 if there is none (prefix all 0xff). */
int index_next_prefix(uint8_t *key, const uint8_t *prefix, size_t len);

#endif
