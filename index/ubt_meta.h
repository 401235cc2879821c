/*
 * ubt_meta.h: the index's "meta" database (private; ubt_layout.h lists its
 * records, docs/FORMATS.md describes them).
 *
 * Every record is sealed (ubt_seal: a CRC-32C of its key and value), and the
 * set of keys is fixed: a record that fails its seal, an unknown key (a
 * damaged one) and a missing one are refused. Schema 1 (an lsim before the
 * seals) is told apart and refused as a version, not as corruption.
 */
#ifndef LSIM_UBT_META_H
#define LSIM_UBT_META_H

#include "index/ubt_layout.h"
#include "index/uic_info.h"
#include "storage/lmdb_check.h"

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ubt_meta {
    ubt_counts counts;
    int has_uic;  /* a User Interest Center (index/uic.h), described by uic */
    uic_info uic;
    uint32_t own_min, mixed_max;
    const void *zdict; /* NULL when there is none; in the transaction's memory */
    size_t zdict_len;
} ubt_meta;

/* Reads and checks every record of the snapshot txn; `stamped`: the
 * snapshot holds its commit stamp (lmdb_check_result.stamped). Errors, each
 * "DIR: ...": LSIM_E_VERSION for another schema; LSIM_E_INCOMPLETE without
 * a schema or without "complete" (an interrupted build); LSIM_E_CORRUPT. */
int ubt_meta_read(MDB_txn *txn, MDB_dbi dbi, const char *dir, int stamped, ubt_meta *m, char *err, size_t errlen);

/* Only "counts": 0, or LSIM_E_CORRUPT / an LMDB error's code (message "DIR: ..."). */
int ubt_meta_counts(MDB_txn *txn, MDB_dbi dbi, const char *dir, ubt_counts *c, char *err, size_t errlen);

/* What lmdb_check expects of an index: its four databases, their key sizes,
 * the stamp in "meta". */
const lmdb_check_spec *ubt_check_spec(void);

/* Writes record `key` sealed. */
int ubt_meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *val, size_t len, char *err,
                 size_t errlen);

#endif
