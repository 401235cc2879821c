/*
 * lmdb_env.c: see lmdb_env.h.
 */
#include "storage/lmdb_env.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAXREADERS 1024
/* The lock file made for a new environment: LMDB needs MAXREADERS 64-byte reader slots
 * and a header of under 4 KiB; a larger file only gives it more slots. */
#define LOCK_FILE_BYTES (MAXREADERS * 64 + 4096)
/* A short write (LMDB reports EIO) with less than this free is a full disk. */
#define FULL_BELOW_BYTES (1u << 20)

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

/* LMDB creates lock.mdb with ftruncate (a file with holes) and writes it through a shared
 * map: on a full disk the first store into a hole kills the process with SIGBUS. So its
 * blocks are allocated here first, where a full disk is an error code: the whole file for a
 * new environment, the holes of an existing lock file (its size and contents unchanged).
 * Best effort where the file cannot be opened for writing (a read-only index) or the file
 * system cannot allocate ahead (EOPNOTSUPP): LMDB then does as it always did. */
static int prepare_lock_file(const char *dir, enum lmdb_env_mode mode, char *err, size_t errlen)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (mode != LMDB_ENV_BULK && stat(path, &st) != 0) return 0; /* no index here: lmdb_env_open says so */
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    off_t len = fstat(fd, &st) == 0 && st.st_size > 0 ? st.st_size : LOCK_FILE_BYTES;
    int rc = posix_fallocate(fd, 0, len);
    close(fd);
    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG)
        return err_set(err, errlen, LSIM_E_FULL, "%s: no space left on device (allocating the lock file: %s)",
                       path, strerror(rc));
    return 0;
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
    int prc = prepare_lock_file(dir, mode, err, errlen);
    if (prc) return prc;
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc) return lmdb_err(rc, err, errlen, "mdb_env_create");
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (mode == LMDB_ENV_READ) flags |= MDB_RDONLY;
    if (mode == LMDB_ENV_BULK) flags |= MDB_NOSYNC;
    if ((rc = mdb_env_set_maxdbs(env, LMDB_ENV_MAXDBS)) ||
        (rc = mdb_env_set_maxreaders(env, MAXREADERS)) ||
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

/* Free bytes for this process on the file system of path (-1 if unknown). */
static int64_t free_bytes(const char *path)
{
    struct statvfs vs;
    if (statvfs(path, &vs) != 0) return -1;
    uint64_t blocks = geteuid() == 0 ? vs.f_bfree : vs.f_bavail;
    return (int64_t)(blocks * vs.f_frsize);
}

int lmdb_env_explain_full(const char *dir, const char *name, int rc, char *err, size_t errlen)
{
    if (rc != LSIM_E_FULL && rc != LSIM_E_STORAGE) return rc; /* not LSIM_E_IO: that is the input logs' */
    if (rc == LSIM_E_FULL && err && strstr(err, "MDB_MAP_FULL")) return rc; /* the map, not the disk */
    if (rc == LSIM_E_FULL && err && strstr(err, ": no space left on device")) return rc; /* said already */
    char was[512];
    snprintf(was, sizeof was, "%s", err ? err : "");
    int64_t avail = free_bytes(dir);
    if (avail >= 0 && avail < FULL_BELOW_BYTES)
        return err_set(err, errlen, LSIM_E_FULL, "%s: no space left on device (%lld bytes free; %s)", name,
                       (long long)avail, was);
    struct rlimit rl;
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && stat(path, &st) == 0 &&
        (uint64_t)st.st_size + FULL_BELOW_BYTES > (uint64_t)rl.rlim_cur)
        return err_set(err, errlen, LSIM_E_FULL, "%s: no space: the file size limit (ulimit -f, %llu bytes) is reached "
                       "(%s)", name, (unsigned long long)rl.rlim_cur, was);
    return rc;
}

int lmdb_env_trim(MDB_env *env, const char *dir)
{
    MDB_txn *txn;
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    /* the write lock: no other writer may be extending the file meanwhile */
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0) return 0;
    int trimmed = 0;
    if (mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &st) == 0 && stat(path, &fs) == 0) {
        off_t used = (off_t)(info.me_last_pgno + 1) * st.ms_psize;
        if (fs.st_size > used && truncate(path, used) == 0) trimmed = 1;
    }
    mdb_txn_abort(txn);
    return trimmed;
}
