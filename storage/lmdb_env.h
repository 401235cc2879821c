/*
 * lmdb_env.h: opening the index's LMDB environment and translating LMDB's
 * errors into lsim's codes (private).
 *
 * This is the only place that chooses LMDB flags. It is not the index
 * layout (index/ubt_layout.h names the databases and keys).
 *
 * LMDB's rules restated: memory returned by mdb_get / mdb_cursor_get lives
 * until its transaction ends (or the next write in a write transaction):
 * decode into caller memory first. A read transaction belongs to one thread
 * (the environment is opened MDB_NOTLS so a reader's transaction may be
 * reset and renewed by whichever thread owns the reader). One write
 * transaction at a time, across processes: LMDB's lock serializes them.
 */
#ifndef LSIM_LMDB_ENV_H
#define LSIM_LMDB_ENV_H

#include "storage/lmdb_check.h"

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#define LMDB_ENV_MAXDBS 8
/* Virtual map size: address space only, the file grows as pages are used. */
#define LMDB_ENV_MAPSIZE_DEFAULT (1ULL << 40)

enum lmdb_env_mode {
    LMDB_ENV_READ,   /* read-only, for searches and stats */
    LMDB_ENV_WRITE,  /* read-write with full durability: each commit is synced */
    LMDB_ENV_BULK    /* a fresh build: no sync per commit; the builder syncs once at the end */
};

/* Opens the environment in directory `dir` (which must exist). With
 * `check` (READ and WRITE), the file is checked first (lmdb_check.h), and
 * *checked says what was: the caller's first transaction must see that
 * snapshot (mdb_txn_id: checked->txnid for a read, one more for a write),
 * else a commit came in between and the caller opens again. A reader maps
 * the checked meta page's map size; a writer at least mapsize (0: the
 * default) and both meta pages' (so that its stamps match). */
int lmdb_env_open(MDB_env **out, const char *dir, enum lmdb_env_mode mode, uint64_t mapsize,
                  const lmdb_check_spec *check, lmdb_check_result *checked, char *err, size_t errlen);

/* Translates an LMDB return code: MDB_NOTFOUND -> LSIM_E_NOTFOUND,
 * MDB_MAP_FULL / ENOSPC -> LSIM_E_FULL, MDB_CORRUPTED / MDB_PAGE_NOTFOUND /
 * MDB_INVALID -> LSIM_E_CORRUPT, MDB_VERSION_MISMATCH -> LSIM_E_VERSION,
 * others -> LSIM_E_STORAGE; writes "what: lmdb message" to err. rc 0 -> 0. */
int lmdb_err(int rc, char *err, size_t errlen, const char *what);

/* After a failed write into the environment in `dir`: when rc is LSIM_E_FULL or
 * LSIM_E_STORAGE and the disk is the cause (its file system has under 1 MiB free, or
 * data.mdb is within 1 MiB of the file size limit, RLIMIT_FSIZE), rewrites err to
 * "NAME: no space left on device (N bytes free; <the detail err held>)" and returns
 * LSIM_E_FULL. LMDB reports a write cut short by a full disk as EIO: this says why.
 * Otherwise returns rc, err untouched. A full LMDB map (MDB_MAP_FULL) stays as it is. */
int lmdb_env_explain_full(const char *dir, const char *name, int rc, char *err, size_t errlen);

/* After a write transaction failed: gives back the disk it took. A commit cut short leaves
 * the pages it wrote past the end of the last committed state in data.mdb (unreferenced;
 * the next write would overwrite them); this truncates data.mdb to the committed state,
 * holding LMDB's write lock. Readers never read past the state they see. Returns 1 if it
 * truncated, 0 if there was nothing to give back or it could not (the lock, a fatal
 * environment): never an error, the index is sound either way. */
int lmdb_env_trim(MDB_env *env, const char *dir);

/* Bytes of the environment's files on disk (data.mdb + lock.mdb). */
uint64_t lmdb_env_disk_bytes(const char *dir);

#endif
