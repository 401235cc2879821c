/*
 * log_pipe.h: a log reader running in a thread of its own, handing its lines
 * over in batches (private).
 *
 * It is log_reader.h moved off the caller's thread: the reader parses and
 * validates batch k+1 while the caller consumes batch k, so on two cores the
 * parse costs (almost) nothing on the caller's critical path. Lines come out
 * in log order, bad lines included, exactly as log_reader_next gives them.
 * Memory: two batches of LOG_PIPE_BATCH lines and their bytes.
 */
#ifndef LSIM_LOG_PIPE_H
#define LSIM_LOG_PIPE_H

#include "loaders/log_reader.h"

#define LOG_PIPE_BATCH 8192

/* One line: an event, or a bad line (bad != NULL: "FILE:LINE: reason"). */
typedef struct log_item {
    log_event ev;
    const char *bad;
} log_item;

typedef struct log_batch {
    const log_item *items;
    size_t n;
    int last;           /* 1: no batch follows */
    int rc;             /* on the last batch: 0 at end of file, or a negative read error */
    const char *errmsg; /* the read error's message when rc < 0 */
    uint64_t bytes_read;/* of the file, after this batch */
} log_batch;

typedef struct log_pipe log_pipe;

/* Opens `path` like log_reader_open and starts the reading thread. */
int log_pipe_open(log_pipe **out, const char *path, const log_spec *spec, char *err, size_t errlen);

/* The next batch; it stays valid until the next call or close (which hands
 * its memory back to the reader). Blocks until it is ready. */
const log_batch *log_pipe_next(log_pipe *p);

uint64_t log_pipe_bytes_total(const log_pipe *p);

/* Stops the thread (it may be mid-file) and frees everything. */
void log_pipe_close(log_pipe *p);

#endif
