/*
 * staged_dir.c: see staged_dir.h.
 */
#include "storage/staged_dir.h"

#include "lsim.h"
#include "storage/error_detail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4096

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* A failed write: LSIM_E_FULL when the disk is full, LSIM_E_IO otherwise. */
static int io_code(int e)
{
    return e == ENOSPC || e == EDQUOT ? LSIM_E_FULL : LSIM_E_IO;
}

static void remove_tree(const char *p)
{
    if (p && *p) nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void release(staged_dir *sd)
{
    if (sd->lock_fd >= 0) close(sd->lock_fd); /* releases the flock */
    sd->lock_fd = -1;
    sd->tmp[0] = 0;
}

void staged_dir_abort(staged_dir *sd)
{
    if (!sd) return;
    remove_tree(sd->tmp);
    release(sd);
}

static void parent_of(const char *dir, char *out, size_t cap)
{
    const char *slash = strrchr(dir, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == dir) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - dir), dir);
}

/* Whether the leftover p (of process pid) is stale; if so, returns with it locked in *fd. */
static int is_stale(const char *p, long pid, int *fd)
{
    *fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0) return 0;
    struct stat st;
    int stale = flock(*fd, LOCK_EX | LOCK_NB) == 0 && fstat(*fd, &st) == 0 &&
                ((kill((pid_t)pid, 0) != 0 && errno == ESRCH) || time(NULL) - st.st_ctime > 60);
    if (!stale) {
        close(*fd);
        *fd = -1;
    }
    return stale;
}

void staged_dir_remove_stale(const char *dir)
{
    char parent[PATH_CAP];
    parent_of(dir, parent, sizeof parent);
    const char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    size_t bl = strlen(base);
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, base, bl) != 0 || strncmp(de->d_name + bl, ".tmp-", 5) != 0) continue;
        char *end;
        long pid = strtol(de->d_name + bl + 5, &end, 10);
        if (pid <= 0 || *end || pid == (long)getpid()) continue;
        char p[2 * PATH_CAP];
        snprintf(p, sizeof p, "%s/%s", parent, de->d_name);
        int fd;
        if (!is_stale(p, pid, &fd)) continue;
        remove_tree(p);
        close(fd);
    }
    closedir(d);
}

/* dir without trailing slashes ("idx/" is "idx"; "/" stays "/"). */
static int clean_path(const char *dir, char *out, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    if (n + 32 > cap) return -1;
    memcpy(out, dir, n);
    out[n] = 0;
    return 0;
}

int staged_dir_begin(staged_dir *sd, const char *dir_arg, int replace, const char *marker, char *err, size_t errlen)
{
    struct stat st;
    char dir[PATH_CAP];
    sd->tmp[0] = 0;
    sd->lock_fd = -1;
    if (clean_path(dir_arg, dir, sizeof dir)) return err_set(err, errlen, LSIM_E_INVAL, "%s: path too long", dir_arg);
    if (stat(dir, &st) == 0) {
        char m[2 * PATH_CAP];
        snprintf(m, sizeof m, "%s/%s", dir, marker);
        if (!replace)
            return err_set(err, errlen, LSIM_E_INVAL, "%s already exists (--force replaces it)", dir);
        if (!S_ISDIR(st.st_mode) || access(m, F_OK) != 0)
            return err_set(err, errlen, LSIM_E_INVAL, "%s exists and is not an lsim index: not replacing it", dir);
    }
    staged_dir_remove_stale(dir);
    snprintf(sd->tmp, sizeof sd->tmp, "%s.tmp-%ld", dir, (long)getpid());
    remove_tree(sd->tmp); /* an earlier run of this process's PID */
    if (mkdir(sd->tmp, 0755) != 0) {
        int e = errno;
        sd->tmp[0] = 0;
        return err_set(err, errlen, io_code(e), "%s.tmp-%ld: cannot create: %s", dir, (long)getpid(), strerror(e));
    }
    sd->lock_fd = open(sd->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sd->lock_fd < 0 || flock(sd->lock_fd, LOCK_EX) != 0) {
        int e = errno;
        char t[STAGED_DIR_PATH_CAP];
        snprintf(t, sizeof t, "%s", sd->tmp);
        staged_dir_abort(sd);
        return err_set(err, errlen, LSIM_E_IO, "%s: cannot lock: %s", t, strerror(e));
    }
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int staged_dir_commit(staged_dir *sd, const char *dir_arg, const char *const *files, char *err, size_t errlen)
{
    char p[2 * PATH_CAP], parent[PATH_CAP], dir[PATH_CAP];
    const char *tmp = sd->tmp;
    if (clean_path(dir_arg, dir, sizeof dir)) return err_set(err, errlen, LSIM_E_INVAL, "%s: path too long", dir_arg);
    for (size_t i = 0; files && files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
        if (fsync_path(p)) return err_set(err, errlen, io_code(errno), "%s: fsync: %s", p, strerror(errno));
    }
    if (fsync_path(tmp)) return err_set(err, errlen, io_code(errno), "%s: fsync: %s", tmp, strerror(errno));
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0)
            return err_set(err, errlen, LSIM_E_IO, "replacing %s: %s", dir, strerror(errno));
        remove_tree(tmp); /* now the old directory */
    } else if (rename(tmp, dir) != 0)
        return err_set(err, errlen, LSIM_E_IO, "renaming %s to %s: %s", tmp, dir, strerror(errno));
    release(sd);
    parent_of(dir, parent, sizeof parent);
    fsync_path(parent); /* make the rename durable; a failure here loses nothing written */
    return 0;
}
