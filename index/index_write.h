/*
 * index_write.h: building and appending to the behavior index (private; the
 * `lsim index build|append` commands are its users).
 *
 * Crash safety:
 *   build  writes a new environment in a sibling temporary directory
 *          (DIR.tmp-PID), marks it complete in its last transaction, syncs it,
 *          and only then renames it to DIR (with --force, atomically exchanges
 *          it with the old DIR, then removes the old). A killed build leaves
 *          no DIR (or the old one), never a half-built one under DIR.
 *   append runs in one LMDB write transaction: a killed append leaves the
 *          index exactly as it was; a finished one is durable. It also
 *          removes the staging directories killed builds left beside DIR.
 * With strict set, the first bad line aborts the whole run the same way.
 * A full disk: LSIM_E_FULL, "DIR: no space left on device (...)"; a build
 * removes its staging directory, an append gives back the pages its cut
 * short commit wrote (data.mdb back to its committed size). Both leave the
 * disk as they found it. tests/fault_kill.sh and tests/fault_disk.sh check
 * all of this (docs/RELIABILITY.md).
 */
#ifndef LSIM_INDEX_WRITE_H
#define LSIM_INDEX_WRITE_H

#include "index/uic.h"
#include "loaders/log_reader.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ubt_progress {
    uint64_t bytes_read, bytes_total; /* over all inputs; total 0 if unknown */
    uint64_t lines, events, bad_lines;
    double seconds;
    int done;                         /* 1 on the last call */
} ubt_progress;

typedef struct ubt_write_opts {
    const char *const *inputs; /* log files, read in order (their lines are in log order) */
    size_t n_inputs;
    log_spec spec;
    int strict;                /* the first bad line fails the run, nothing is written */
    int force;                 /* build: replace an existing index */
    uint32_t shard_index, shard_count; /* keep users with ubt_shard_of(user) == index; count 0 = all */
    size_t mem_limit;          /* bytes of parsed events held before writing a batch */
    uint64_t mapsize;          /* LMDB map size; 0 = default */
    uint32_t own_min, mixed_max; /* chain policy for a build (0 = defaults) */
    int zstd_level;            /* 0 = default (3) */
    int no_dict;               /* build without a zstd dictionary */
    /* The User Interest Center (index/uic.h): build writes one for this model;
     * append must be given the model of the index's own (the same id), and
     * brings it up to date for the users the append touched (an index without
     * one gets one, for every user). NULL: none (append refuses an index that
     * has one). */
    const uic_model *uic;
    uint32_t uic_every;        /* build: the snapshot interval (0 = UIC_EVERY_DEFAULT) */
    /* Called for every bad line with "FILE:LINE: reason" (not only the first 10). */
    void (*on_bad_line)(void *ctx, const char *msg);
    /* Called now and then (about every 0.25 s) and once at the end. */
    void (*on_progress)(void *ctx, const ubt_progress *p);
    void *cb_ctx;
} ubt_write_opts;

void ubt_write_opts_default(ubt_write_opts *o);

typedef struct ubt_write_result {
    uint64_t lines, events, bad_lines, other_shard;
    uint64_t users_added, items_added;
    uint64_t total_events;     /* in the index afterwards */
    double seconds;
    size_t peak_batch_bytes;
    uint64_t uic_users, uic_records, uic_bytes; /* User Interest Center records written */
} ubt_write_result;

int ubt_build(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err,
              size_t errlen);
int ubt_append(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err,
               size_t errlen);
/* Writes the User Interest Center of o->uic for every user of the index at
 * dir, replacing the one it has (any model's), in one transaction; o's
 * inputs are not read (uic_every: 0 keeps the index's interval, or the
 * default). */
int ubt_uic_rebuild(const char *dir, const ubt_write_opts *o, ubt_write_result *res, char *err, size_t errlen);

/* The shard of a raw user id: FNV-1a 64 of its bytes, modulo count. Routers
 * compute the same to send a user's requests to the host holding its shard. */
uint32_t ubt_shard_of(const char *user, size_t len, uint32_t count);

#endif
