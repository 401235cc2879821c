/*
 * staged_dir.h: a directory written under a temporary name and moved into
 * place whole (private).
 *
 * The writer fills DIR.tmp-PID; commit fsyncs it and renames it to DIR, or,
 * when DIR exists, exchanges the two atomically (renameat2 RENAME_EXCHANGE)
 * and removes the old one. At any instant DIR is absent, the old directory,
 * or the new one: never a part of the new one. Temporary directories left by
 * killed processes are removed by the next begin.
 */
#ifndef LSIM_STAGED_DIR_H
#define LSIM_STAGED_DIR_H

#include <stddef.h>

/* Prepares DIR.tmp-PID (written to tmp[0..tmpcap)). If DIR exists: without
 * replace, LSIM_E_INVAL; with replace, DIR must be a directory holding
 * `marker` (so that a wrong path is never replaced), else LSIM_E_INVAL. */
int staged_dir_begin(const char *dir, int replace, const char *marker, char *tmp, size_t tmpcap, char *err,
                     size_t errlen);

/* fsyncs tmp/<file> for each file in files (NULL-terminated) and tmp itself,
 * then moves tmp to dir as described above. */
int staged_dir_commit(const char *tmp, const char *dir, const char *const *files, char *err, size_t errlen);

/* Removes tmp and everything in it. */
void staged_dir_abort(const char *tmp);

#endif
