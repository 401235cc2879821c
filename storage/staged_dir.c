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
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void staged_dir_abort(const char *tmp)
{
    if (tmp && *tmp) nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void parent_of(const char *dir, char *out, size_t cap)
{
    const char *slash = strrchr(dir, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == dir) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - dir), dir);
}

/* Removes DIR.tmp-PID directories whose process is gone. */
static void remove_stale(const char *dir)
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
        if (pid <= 0 || *end || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char p[2 * PATH_CAP];
        snprintf(p, sizeof p, "%s/%s", parent, de->d_name);
        staged_dir_abort(p);
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

int staged_dir_begin(const char *dir_arg, int replace, const char *marker, char *tmp, size_t tmpcap, char *err,
                     size_t errlen)
{
    struct stat st;
    char dir[PATH_CAP];
    if (clean_path(dir_arg, dir, sizeof dir)) return err_set(err, errlen, LSIM_E_INVAL, "%s: path too long", dir_arg);
    if (stat(dir, &st) == 0) {
        char m[2 * PATH_CAP];
        snprintf(m, sizeof m, "%s/%s", dir, marker);
        if (!replace)
            return err_set(err, errlen, LSIM_E_INVAL, "%s already exists (--force replaces it)", dir);
        if (!S_ISDIR(st.st_mode) || access(m, F_OK) != 0)
            return err_set(err, errlen, LSIM_E_INVAL, "%s exists and is not an lsim index: not replacing it", dir);
    }
    remove_stale(dir);
    snprintf(tmp, tmpcap, "%s.tmp-%ld", dir, (long)getpid());
    staged_dir_abort(tmp);
    if (mkdir(tmp, 0755) != 0) return err_set(err, errlen, LSIM_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
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

int staged_dir_commit(const char *tmp, const char *dir_arg, const char *const *files, char *err, size_t errlen)
{
    char p[2 * PATH_CAP], parent[PATH_CAP], dir[PATH_CAP];
    if (clean_path(dir_arg, dir, sizeof dir)) return err_set(err, errlen, LSIM_E_INVAL, "%s: path too long", dir_arg);
    for (size_t i = 0; files && files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
        if (fsync_path(p)) return err_set(err, errlen, LSIM_E_IO, "%s: fsync: %s", p, strerror(errno));
    }
    if (fsync_path(tmp)) return err_set(err, errlen, LSIM_E_IO, "%s: fsync: %s", tmp, strerror(errno));
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0)
            return err_set(err, errlen, LSIM_E_IO, "replacing %s: %s", dir, strerror(errno));
        staged_dir_abort(tmp); /* now the old directory */
    } else if (rename(tmp, dir) != 0)
        return err_set(err, errlen, LSIM_E_IO, "renaming %s to %s: %s", tmp, dir, strerror(errno));
    parent_of(dir, parent, sizeof parent);
    fsync_path(parent); /* make the rename durable; a failure here loses nothing written */
    return 0;
}
