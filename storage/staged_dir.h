/*
 * staged_dir.h: a directory written under a temporary name and moved into
 * place whole (private).
 *
 * The writer fills DIR.tmp-PID; commit fsyncs it and renames it to DIR, or,
 * when DIR exists, exchanges the two atomically (renameat2 RENAME_EXCHANGE)
 * and removes the old one. At any instant DIR is absent, the old directory,
 * or the new one: never a part of the new one.
 *
 * Leftovers: a killed writer leaves its DIR.tmp-PID (before the move: the
 * part written; after an exchange: the old directory, partly removed). The
 * writer holds an flock on its staging directory from begin to commit or
 * abort, so a leftover is one nobody holds: its process is gone, or the PID
 * now names another process (PIDs are reused, and mean nothing across
 * containers that share the disk). staged_dir_remove_stale removes those;
 * every begin calls it, and so should other writers of DIR (append).
 */
#ifndef LSIM_STAGED_DIR_H
#define LSIM_STAGED_DIR_H

#include <stddef.h>

#define STAGED_DIR_PATH_CAP 4200

typedef struct staged_dir {
    char tmp[STAGED_DIR_PATH_CAP]; /* DIR.tmp-PID; "" when there is none */
    int lock_fd;                   /* the staging directory, flock'ed; -1 when none */
} staged_dir;

/* Prepares DIR.tmp-PID (in sd->tmp) and locks it. If DIR exists: without
 * replace, LSIM_E_INVAL; with replace, DIR must be a directory holding
 * `marker` (so that a wrong path is never replaced), else LSIM_E_INVAL.
 * Removes stale leftovers first (staged_dir_remove_stale). */
int staged_dir_begin(staged_dir *sd, const char *dir, int replace, const char *marker, char *err, size_t errlen);

/* fsyncs tmp/<file> for each file in files (NULL-terminated) and tmp itself,
 * then moves tmp to dir as described above and releases the lock. */
int staged_dir_commit(staged_dir *sd, const char *dir, const char *const *files, char *err, size_t errlen);

/* Removes tmp and everything in it, and releases the lock (nothing after a commit). */
void staged_dir_abort(staged_dir *sd);

/* Removes the DIR.tmp-* directories no writer holds (see above). A
 * directory made in the last minute by a live PID is left alone: its writer
 * may be between mkdir and flock, or removing the old directory it moved. */
void staged_dir_remove_stale(const char *dir);

#endif
