/*
 * lmdb_env.c: see lmdb_env.h.
 */
#include "storage/lmdb_env.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int lmdb_err(int rc, char *err, size_t errlen, const char *what)
{
    int code;
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: code = LSIM_E_NOTFOUND; break;
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT: code = LSIM_E_FULL; break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID: code = LSIM_E_CORRUPT; break;
    case MDB_VERSION_MISMATCH: code = LSIM_E_VERSION; break;
    case ENOMEM: code = LSIM_E_NOMEM; break;
    default: code = LSIM_E_STORAGE; break;
    }
    if (code == LSIM_E_CORRUPT) return err_set(err, errlen, code, "%s: corrupt: %s", what, mdb_strerror(rc));
    return err_set(err, errlen, code, "%s: %s", what, mdb_strerror(rc));
}

int lmdb_env_open(MDB_env **out, const char *dir, enum lmdb_env_mode mode, uint64_t mapsize,
                  const lmdb_check_spec *check, lmdb_check_result *checked, char *err, size_t errlen)
{
    *out = NULL;
    if (!mapsize) mapsize = LMDB_ENV_MAPSIZE_DEFAULT;
    if (check && mode != LMDB_ENV_BULK) {
        int crc = lmdb_check(dir, check, checked, err, errlen);
        if (crc) return crc;
        if (mode == LMDB_ENV_READ) mapsize = checked->mapsize;
        else if (mapsize < checked->mapsize_max) mapsize = checked->mapsize_max;
    }
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc) return lmdb_err(rc, err, errlen, "mdb_env_create");
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (mode == LMDB_ENV_READ) flags |= MDB_RDONLY;
    if (mode == LMDB_ENV_BULK) flags |= MDB_NOSYNC;
    if ((rc = mdb_env_set_maxdbs(env, LMDB_ENV_MAXDBS)) ||
        (rc = mdb_env_set_maxreaders(env, 1024)) ||
        ((mode != LMDB_ENV_READ || check) && (rc = mdb_env_set_mapsize(env, (size_t)mapsize)))) {
        mdb_env_close(env);
        return lmdb_err(rc, err, errlen, dir);
    }
    rc = mdb_env_open(env, dir, flags, 0644);
    if (rc) {
        mdb_env_close(env);
        if (rc == ENOENT)
            return err_set(err, errlen, LSIM_E_NOTFOUND, "%s: no index here (no data.mdb)", dir);
        return lmdb_err(rc, err, errlen, dir);
    }
    *out = env;
    return 0;
}

static uint64_t file_bytes(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) != 0) return 0;
    return (uint64_t)st.st_size;
}

uint64_t lmdb_env_disk_bytes(const char *dir)
{
    return file_bytes(dir, "data.mdb") + file_bytes(dir, "lock.mdb");
}
