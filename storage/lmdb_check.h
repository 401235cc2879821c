/*
 * lmdb_check.h: checking an LMDB environment's file before LMDB reads it
 * (private; docs/FORMATS.md, "Corruption").
 *
 * LMDB 0.9 keeps no checksums of its own pages and trusts them: one flipped
 * byte in a page header, a node or a meta page can make liblmdb read past
 * the end of the file (SIGBUS), find the wrong record, lose records, or open
 * an older snapshot. lmdb_check reads data.mdb itself, bounds-checking every
 * access, and refuses (LSIM_E_CORRUPT, "DIR/data.mdb: corrupt: ...") a file
 * that LMDB could not read safely and correctly:
 *   - both meta pages: page header, magic, version, page size, address, the
 *     parity of the transaction id (it says which meta page LMDB reads), the
 *     last page within the file (a shorter file is truncated), map size;
 *   - the newest snapshot's trees (the free list, the main database and each
 *     named database): every page reached once, within the last page, its
 *     page number, flags and bounds; node offsets and sizes inside the page;
 *     keys in order and within the range their branch pages route to them;
 *     every leaf at the tree's depth; overflow pages; page and entry counts
 *     as the database records them; free-list pages in the file and in no
 *     tree; exactly the named databases expected, with the key sizes given;
 *   - the stamp: each commit lsim makes records its transaction id and map
 *     size (lmdb_stamp_put). The snapshot of each meta page must hold that
 *     meta page's own, so a meta page whose transaction id was changed (LMDB
 *     would open an older snapshot, or read the wrong meta page) is refused.
 * What it is not: a check of the values (their formats carry CRCs bound to
 * their keys), nor of the older snapshot beyond the path to its stamp.
 *
 * Cost: one pass over the pages in use, through a read-only mapping.
 */
#ifndef LSIM_LMDB_CHECK_H
#define LSIM_LMDB_CHECK_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* The key of the stamp, in the database the caller names; its value: u64 LE
 * transaction id, u64 LE map size, u32 LE CRC-32C of the key and those 16
 * bytes. A commit's meta page holds the larger of the previous one's map
 * size and the environment's: writers open with at least both meta pages'
 * (lmdb_check_result.mapsize_max), so the stamp's is the meta page's. */
#define LMDB_STAMP_KEY "commit"
#define LMDB_STAMP_BYTES 20

typedef struct lmdb_check_db {
    const char *name;
    size_t key_len; /* every key of the database has this size; 0: any */
    int optional;   /* may be absent (e.g. the index's User Interest Center) */
} lmdb_check_db;

typedef struct lmdb_check_spec {
    const lmdb_check_db *dbs; /* exactly these named databases (the optional ones may be absent) */
    size_t n_dbs;
    const char *stamp_db;     /* the one lmdb_stamp_put writes to */
} lmdb_check_spec;

typedef struct lmdb_check_result {
    uint64_t txnid;      /* the snapshot checked: the newest commit */
    uint64_t mapsize;    /* its map size: what readers map */
    uint64_t mapsize_max; /* the larger of both meta pages' map sizes: the least a writer maps */
    uint64_t pages;      /* pages in use by it, meta pages included */
    uint64_t free_pages; /* pages its free list holds */
    int stamped;         /* it holds a stamp (0: written without, e.g. by an older lsim) */
} lmdb_check_result;

/* Checks dir/data.mdb. 0 and *res; LSIM_E_CORRUPT naming the file and what
 * is wrong; LSIM_E_NOTFOUND when there is no data.mdb; LSIM_E_IO when it
 * cannot be read; LSIM_E_VERSION when both meta pages carry the same LMDB
 * data version other than 0.9's; LSIM_E_INCOMPLETE for an environment no
 * commit ever wrote to, or one that holds none of the databases expected
 * (not an lsim index). */
int lmdb_check(const char *dir, const lmdb_check_spec *spec, lmdb_check_result *res, char *err, size_t errlen);

/* Writes the stamp of write transaction txn into dbi: its id and the map
 * size, as the meta page its commit writes will hold them. Call it last
 * before mdb_txn_commit. */
int lmdb_stamp_put(MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen);

#endif
