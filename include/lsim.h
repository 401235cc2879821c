/*
 * lsim.h: the public contract of lsim, a serving engine for Alibaba's SIM
 * (search-based interest model) over lifelong user behavior.
 *
 * This header is the whole public API. It compiles on its own (C11, no other
 * project headers). Everything else in the source tree is private.
 *
 * Conventions, which hold for every function below unless it says otherwise:
 *   - Functions return int: 0 on success, a negative LSIM_E_* code on failure.
 *     lsim_strerror() names a code; handles also keep a detail message
 *     (which file, which key, which field) readable until their next call.
 *   - The library never prints and never calls exit().
 *   - Handles are opaque. Every *_open / *_new has a paired *_close / *_free,
 *     which accepts NULL.
 *   - Raw ids (users, items, categories, behavior types) are byte strings as
 *     they appear in the logs, passed with an explicit length; they may hold
 *     any byte but NUL and are at most LSIM_MAX_ID_LEN bytes long.
 *   - Timestamps are unix seconds, int64_t.
 */
#ifndef LSIM_H
#define LSIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LSIM_BUILDING) && defined(__GNUC__)
#define LSIM_API __attribute__((visibility("default")))
#else
#define LSIM_API
#endif

#define LSIM_VERSION_MAJOR 0
#define LSIM_VERSION_MINOR 1
#define LSIM_VERSION_PATCH 0

/* Longest raw id (user, item, category, type) in bytes. Longer ids are bad input. */
#define LSIM_MAX_ID_LEN 255

/* Error codes. 0 is success; every failure is one of these, negative. */
enum lsim_error {
    LSIM_OK = 0,
    LSIM_E_INVAL = -1,      /* a bad argument: NULL where a pointer is needed, a bad size */
    LSIM_E_NOMEM = -2,      /* an allocation failed */
    LSIM_E_IO = -3,         /* reading or writing a file failed (errno in the detail) */
    LSIM_E_STORAGE = -4,    /* LMDB failed (its message in the detail) */
    LSIM_E_CORRUPT = -5,    /* stored data failed a checksum or a structural check */
    LSIM_E_NOTFOUND = -6,   /* the thing asked for is not there */
    LSIM_E_FORMAT = -7,     /* input (a log line, a file) is malformed */
    LSIM_E_VERSION = -8,    /* stored data has a schema version this build cannot read */
    LSIM_E_INCOMPLETE = -9, /* the index was never finished (a build was interrupted) */
    LSIM_E_FULL = -10,      /* the disk or the LMDB map is full */
    LSIM_E_LIMIT = -11,     /* a configured limit was exceeded (ids, types, sizes) */
    LSIM_E_SEARCH = -12     /* the vector search library failed */
};

/* A static, never-NULL English name of an error code. Thread-safe. */
LSIM_API const char *lsim_strerror(int code);

/* The library's version string, "MAJOR.MINOR.PATCH". Thread-safe. */
LSIM_API const char *lsim_version(void);

/* ---------------------------------------------------------------------------
 * The behavior index (User Behavior Tree), read side.
 *
 * An index is a directory holding one LMDB environment built by
 * `lsim index build`. It maps user -> category -> that user's events in the
 * category, time-ordered. Opening checks the schema version and that the
 * build finished; an interrupted build is refused with LSIM_E_INCOMPLETE.
 * It also reads data.mdb once before LMDB does, and refuses a damaged or
 * truncated file with LSIM_E_CORRUPT ("DIR/data.mdb: corrupt: ..."); every
 * value read later is checked against its own CRC (docs/FORMATS.md,
 * "Corruption").
 *
 * Thread safety: an lsim_index may be shared by any number of threads once
 * opened. Each lsim_index_reader belongs to one thread at a time; give each
 * thread its own. Each search call reads one consistent snapshot (one LMDB
 * read transaction): an append committed meanwhile is seen whole by a later
 * call, or not at all.
 * ------------------------------------------------------------------------- */

typedef struct lsim_index lsim_index;
typedef struct lsim_index_reader lsim_index_reader;

/* One behavior, as returned by searches. The string pointers point into
 * the index's vocabulary and stay valid until lsim_index_close. */
typedef struct lsim_event {
    const char *item;     /* raw item id, NUL-terminated */
    const char *category; /* raw category id as the log gave it, NUL-terminated */
    const char *type;     /* behavior type ("pv", "buy", ...), NUL-terminated */
    int64_t ts;           /* unix seconds */
} lsim_event;

/* Counts over the whole index. */
typedef struct lsim_index_stats {
    uint64_t users, items, categories, types;
    uint64_t events;  /* behaviors stored */
    uint64_t blocks;  /* compressed event blocks */
    uint64_t bytes;      /* size of the index's files on disk (data.mdb + lock.mdb) */
    uint64_t used_bytes; /* bytes of the pages in use: what a compacting copy
                            (mdb_copy -c) would write. After an append the file
                            also holds the pages the append replaced, which
                            LMDB reuses for the next writes. */
    uint32_t schema_version;
} lsim_index_stats;

/* Opens the index in directory `dir` read-only. On failure *out is NULL and,
 * if err is not NULL, err[0..errlen) receives a NUL-terminated detail. */
LSIM_API int lsim_index_open(lsim_index **out, const char *dir, char *err, size_t errlen);
LSIM_API void lsim_index_close(lsim_index *ix);

/* Whole-index counts, as of the latest committed build or append. */
LSIM_API int lsim_index_stats_get(lsim_index *ix, lsim_index_stats *out);

/* A per-thread reader with its own scratch memory. */
LSIM_API int lsim_index_reader_new(lsim_index *ix, lsim_index_reader **out);
LSIM_API void lsim_index_reader_free(lsim_index_reader *rd);

/* The detail message of the reader's last failure ("" if none). Valid until
 * the reader's next call. */
LSIM_API const char *lsim_index_reader_errmsg(const lsim_index_reader *rd);

/*
 * Hard search (SIM's GSU, hard mode): the user's `k` most recent events in
 * category `category` with timestamp strictly less than `before`, most recent
 * first. Events with equal timestamps keep log order: of two, the one on the
 * later line (or in the later appended log) is the more recent. Duplicate
 * lines are distinct events.
 *
 * category == NULL means every category: the user's k most recent events
 * before `before`, whatever their category.
 *
 * Writes at most k events to out[0..k) and their count to *n. An unknown user
 * or category is not an error: *n = 0. The out[] strings stay valid until
 * lsim_index_close. Returns 0, or LSIM_E_CORRUPT / LSIM_E_STORAGE with a
 * detail in lsim_index_reader_errmsg.
 */
LSIM_API int lsim_index_hard_search(lsim_index_reader *rd, const char *user, size_t user_len,
                                    const char *category, size_t category_len, int64_t before,
                                    size_t k, lsim_event *out, size_t *n);

/* ---------------------------------------------------------------------------
 * The request engine: score one user's candidates in one call.
 *
 * An engine is an index and a checkpoint opened together, with settings; it
 * is opened once and shared by every thread. Each thread scores through a
 * context of its own (lsim_ctx), which holds all the memory a request needs:
 * after a context's first requests have grown it to the largest user and
 * candidate count seen, scoring allocates nothing.
 *
 * What a request computes (docs/ENGINE.md): the user's behaviors strictly
 * before `now` are read from the index in one snapshot; the short-term
 * branch takes the last short_len of them; SIM's GSU takes, per candidate,
 * the top K of the long-term list (hard: the most recent of the candidate's
 * category; soft: the highest inner products of the learned GSU vectors);
 * the model turns them into a click probability. These are exactly the
 * inputs `lsim eval` and `lsim train` build for a sample at time `now`.
 *
 * Unknown users score with no history; unknown items (or categories) score
 * through the model's out-of-vocabulary row. Neither is an error.
 *
 * Thread safety: lsim_engine_* calls other than close, and lsim_ctx_new, may
 * be made from any thread at any time. A context is used by one thread at a
 * time. An `lsim index append` committing meanwhile is seen by a request
 * whole or not at all.
 * ------------------------------------------------------------------------- */

typedef struct lsim_engine lsim_engine;
typedef struct lsim_ctx lsim_ctx;

/* How SIM soft search finds each candidate's top K (docs/ENGINE.md). */
typedef enum lsim_soft_search {
    LSIM_SOFT_EXACT = 0, /* every behavior scored, exactly as `lsim eval` scores them (default) */
    LSIM_SOFT_FAISS = 1, /* a FAISS IndexFlatIP shortlist, then exact ranking: the same top K;
                            FAISS allocates inside its search */
    LSIM_SOFT_APPROX = 2 /* probe the user's categories best centroid first,
                            scoring about approx_fraction of the user's distinct (item,
                            category) pairs per candidate: fast, not exact */
} lsim_soft_search;

typedef struct lsim_settings {
    uint32_t max_candidates; /* most candidates one call may score (default 1000) */
    uint32_t short_len;      /* short-term behaviors; 0 = the checkpoint's (else 50) */
    uint32_t long_max;       /* long-term behaviors searched per request; 0 = the
                                checkpoint's lsim.long_max (else 54000). The model
                                was trained on lists this long: keep the default
                                unless you know better. */
    int64_t max_future;      /* `now` may lie at most this many seconds after the
                                index's last event (default 366 days); later is
                                refused as a likely unit error (ms for s) */
    int soft_search;         /* lsim_soft_search (default LSIM_SOFT_EXACT) */
    float approx_fraction;   /* LSIM_SOFT_APPROX: share of the distinct pairs scored per
                                candidate, in (0, 1] (default 0.2; whole categories are
                                probed, so a little more is scored) */
    int uic;                 /* MIMN: lsim_uic_mode (default LSIM_UIC_AUTO) */
} lsim_settings;

/* Where a MIMN checkpoint's per-user state comes from (docs/ENGINE.md):
 *   LSIM_UIC_AUTO     the index's User Interest Center when it holds this
 *                     checkpoint's states (`lsim index build|append|uic --uic`):
 *                     a request reads the state before `now` and folds at most
 *                     the few events after it; else every event before `now`
 *                     is folded per request (time grows with the history)
 *   LSIM_UIC_OFF      always fold every event (for comparison)
 *   LSIM_UIC_REQUIRE  as AUTO, but lsim_engine_open fails without a matching UIC */
enum lsim_uic_mode { LSIM_UIC_AUTO = 0, LSIM_UIC_OFF = 1, LSIM_UIC_REQUIRE = 2 };

/* Fills the defaults above. */
LSIM_API void lsim_settings_default(lsim_settings *s);

/* Opens the index in `index_dir` and the checkpoint (a safetensors file
 * written by `lsim train` or by PyTorch, docs/CHECKPOINT_FORMAT.md). s may
 * be NULL (defaults). On failure *out is NULL and err[0..errlen) (if not
 * NULL) says which file or setting and why; a checkpoint whose checksum
 * fails (a flipped byte, a truncation), whose size disagrees with its header,
 * or holding NaN or infinity is refused with LSIM_E_CORRUPT; so is a damaged
 * index (lsim_index_open). */
LSIM_API int lsim_engine_open(lsim_engine **out, const char *index_dir, const char *checkpoint,
                              const lsim_settings *s, char *err, size_t errlen);
LSIM_API void lsim_engine_close(lsim_engine *e);

/* 1 when the engine reads MIMN's states from the index's User Interest Center,
 * 0 otherwise (another model, no UIC for this checkpoint, LSIM_UIC_OFF). */
LSIM_API int lsim_engine_uses_uic(const lsim_engine *e);

/* A scoring context for one thread at a time. Free every context of an
 * engine before closing the engine (contexts read its weights).
 * Memory: a context reads the engine's weights (no copy) and allocates its
 * activations for max_candidates at once, inference only (no training
 * buffers): at the default max_candidates of 1000, about 52 MiB for DIN,
 * 87 MiB for DIEN, 144 MiB for DSIN, 91 MiB for SIM hard and 98 MiB for SIM
 * soft (the checkpoint's default short_len 50, topk 50), roughly linear in
 * max_candidates; SIM soft adds scratch linear in long_max
 * (docs/BENCHMARKS.md, "Memory per scoring context"). */
LSIM_API int lsim_ctx_new(lsim_engine *e, lsim_ctx **out);
LSIM_API void lsim_ctx_free(lsim_ctx *c);

/* The detail message of the context's last failure ("" if none). Valid
 * until the context's next call. */
LSIM_API const char *lsim_ctx_errmsg(const lsim_ctx *c);

/* One candidate: a raw item id and, optionally, its category (NULL: the
 * category the index last saw for the item; an item the index never saw is
 * out of vocabulary). */
typedef struct lsim_candidate {
    const char *item;
    size_t item_len;
    const char *category; /* NULL: look it up */
    size_t category_len;
} lsim_candidate;

/*
 * Scores n candidates for `user` at time `now` (unix seconds): scores[i] is
 * the click probability of candidates[i], in [0, 1] (a float sigmoid reaches
 * 0 or 1 for very large logits).
 * Errors (nothing is written to scores): LSIM_E_INVAL for a NULL pointer,
 * n = 0, n above max_candidates, now <= 0 or beyond max_future, or an id
 * that is empty, longer than LSIM_MAX_ID_LEN or holds a NUL byte (the detail
 * names the candidate and the field); LSIM_E_CORRUPT / LSIM_E_STORAGE when
 * the index cannot be read; LSIM_E_NOMEM.
 */
LSIM_API int lsim_score(lsim_ctx *c, const char *user, size_t user_len, int64_t now,
                        const lsim_candidate *candidates, size_t n, float *scores);

/* One behavior the GSU picked, with the ESU's attention to it. */
typedef struct lsim_explained {
    lsim_event event; /* strings valid until lsim_engine_close */
    float weight;     /* the ESU's attention, averaged over its heads: the
                         weights of one candidate sum to 1 */
} lsim_explained;

/*
 * Why a candidate scored as it did, for a SIM model (hard or soft search):
 * its score, as lsim_score gives it in a request of this one candidate, and
 * the behaviors the GSU picked for it, oldest first, with their attention.
 * Writes at most cap entries to out and the number picked (at most the
 * model's K) to *n. Models without a GSU (DIN, avg-pooling DIN, DIEN, DSIN)
 * give LSIM_E_INVAL. Other errors as lsim_score.
 */
LSIM_API int lsim_explain(lsim_ctx *c, const char *user, size_t user_len, int64_t now,
                          const lsim_candidate *candidate, float *score, lsim_explained *out, size_t cap,
                          size_t *n);

#ifdef __cplusplus
}
#endif
#endif /* LSIM_H */
