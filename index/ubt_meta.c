/*
 * ubt_meta.c: see ubt_meta.h.
 */
#include "index/ubt_meta.h"

#include "index/uic_info.h"
#include "lsim.h"
#include "storage/byte_order.h"
#include "storage/error_detail.h"
#include "storage/lmdb_check.h"
#include "storage/lmdb_env.h"

#include <stdlib.h>
#include <string.h>

static const char *const meta_keys[] = {"schema", "complete", "counts", "policy", "zdict", LMDB_STAMP_KEY,
                                        UIC_META_KEY};
#define N_META_KEYS (sizeof meta_keys / sizeof meta_keys[0])

static const lmdb_check_db ubt_dbs[] = {
    {UBT_DB_META, 0, 0}, {UBT_DB_UBT, UBT_KEY_LEN, 0}, {UBT_DB_USERS, UBT_USER_KEY_LEN, 0}, {UBT_DB_VOCAB, 5, 0},
    {UIC_DB, UIC_KEY_LEN, 1}};
static const lmdb_check_spec ubt_spec = {ubt_dbs, sizeof ubt_dbs / sizeof ubt_dbs[0], UBT_DB_META};

const lmdb_check_spec *ubt_check_spec(void)
{
    return &ubt_spec;
}

/* Record `key`, unsealed: 0 with its payload, LSIM_E_NOTFOUND, LSIM_E_CORRUPT. */
static int get_sealed(MDB_txn *txn, MDB_dbi dbi, const char *key, const uint8_t **val, size_t *len)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc == MDB_NOTFOUND) return LSIM_E_NOTFOUND;
    if (rc) return lmdb_err(rc, NULL, 0, key);
    if (ubt_unseal(key, k.mv_size, d.mv_data, d.mv_size, len)) return LSIM_E_CORRUPT;
    *val = d.mv_data;
    return 0;
}

/* The schema: 0 for this one; LSIM_E_VERSION, LSIM_E_INCOMPLETE or LSIM_E_CORRUPT. */
static int check_schema(MDB_txn *txn, MDB_dbi dbi, const char *dir, char *err, size_t errlen)
{
    MDB_val k = {6, "schema"}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc == MDB_NOTFOUND)
        return err_set(err, errlen, LSIM_E_INCOMPLETE, "%s: not an lsim index (no schema version)", dir);
    if (rc) return lmdb_err(rc, err, errlen, dir);
    const uint8_t *v = d.mv_data;
    if (d.mv_size == 4 && v[0] == 1 && !v[1] && !v[2] && !v[3]) /* schema 1: no seals */
        return err_set(err, errlen, LSIM_E_VERSION,
                       "%s: index schema 1 (an earlier lsim); this lsim reads schema %u: build the index again", dir,
                       UBT_SCHEMA_VERSION);
    size_t len;
    if (ubt_unseal("schema", 6, v, d.mv_size, &len) || len != 4)
        return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the schema record fails its checksum", dir);
    uint32_t s = le32_get(v);
    if (s != UBT_SCHEMA_VERSION)
        return err_set(err, errlen, LSIM_E_VERSION, "%s: index schema %u, this lsim reads schema %u", dir, s,
                       UBT_SCHEMA_VERSION);
    return 0;
}

int ubt_meta_read(MDB_txn *txn, MDB_dbi dbi, const char *dir, int stamped, ubt_meta *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    int rc = check_schema(txn, dbi, dir, err, errlen);
    if (rc) return rc;
    if (!stamped) return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: no commit stamp", dir);
    /* every record: a known key, sealed */
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, dbi, &cur))) return lmdb_err(rc, err, errlen, dir);
    MDB_val k, d;
    int seen_complete = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        size_t i = 0, len;
        while (i < N_META_KEYS && (k.mv_size != strlen(meta_keys[i]) || memcmp(k.mv_data, meta_keys[i], k.mv_size)))
            i++;
        if (i == N_META_KEYS) {
            rc = err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: an unknown record '%.*s' in the metadata", dir,
                         (int)(k.mv_size < 32 ? k.mv_size : 32), (const char *)k.mv_data);
            break;
        }
        if (ubt_unseal(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &len)) {
            rc = err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the metadata record %s fails its checksum", dir,
                         meta_keys[i]);
            break;
        }
        seen_complete |= i == 1;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return rc > 0 ? lmdb_err(rc, err, errlen, dir) : rc;
    if (!seen_complete)
        return err_set(err, errlen, LSIM_E_INCOMPLETE,
                       "%s: the index build never finished (interrupted?); build it again", dir);
    const uint8_t *v = NULL;
    size_t len = 0;
    if ((rc = ubt_meta_counts(txn, dbi, dir, &m->counts, err, errlen))) return rc;
    if (get_sealed(txn, dbi, "policy", &v, &len) || len != 8)
        return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the chain policy is missing or damaged", dir);
    m->own_min = le32_get(v);
    m->mixed_max = le32_get(v + 4);
    rc = get_sealed(txn, dbi, UIC_META_KEY, &v, &len);
    if (rc == 0) {
        if (uic_info_decode(&m->uic, v, len))
            return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the User Interest Center's record is damaged",
                           dir);
        m->has_uic = 1;
    } else if (rc != LSIM_E_NOTFOUND) {
        return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the User Interest Center's record is damaged", dir);
    }
    rc = get_sealed(txn, dbi, "zdict", &v, &len);
    if (rc == 0 && len <= UBT_DICT_MAX_BYTES) {
        m->zdict = v;
        m->zdict_len = len;
    } else if (rc != LSIM_E_NOTFOUND) {
        return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the block dictionary is damaged", dir);
    }
    return 0;
}

int ubt_meta_counts(MDB_txn *txn, MDB_dbi dbi, const char *dir, ubt_counts *c, char *err, size_t errlen)
{
    const uint8_t *v = NULL;
    size_t len = 0;
    int rc = get_sealed(txn, dbi, "counts", &v, &len);
    if (rc == LSIM_E_NOTFOUND || rc == LSIM_E_CORRUPT || (!rc && ubt_counts_decode(c, v, len)))
        return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt: the index counts are missing or damaged", dir);
    if (rc) return err_set(err, errlen, rc, "%s: reading the index counts: %s", dir, lsim_strerror(rc));
    return 0;
}

int ubt_meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *val, size_t len, char *err,
                 size_t errlen)
{
    size_t klen = strlen(key);
    uint8_t *buf = malloc(len + UBT_SEAL_BYTES);
    if (!buf) return err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
    MDB_val k = {klen, (void *)key}, d = {ubt_seal(buf, key, klen, val, len), buf};
    int rc = mdb_put(txn, dbi, &k, &d, 0);
    free(buf);
    return rc ? lmdb_err(rc, err, errlen, "writing index metadata") : 0;
}
