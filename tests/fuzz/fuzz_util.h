/*
 * fuzz_util.h: helpers shared by the libFuzzer targets (tests/fuzz/): the
 * input written to a temporary file, for the readers that take a path, and
 * the check that a library call returned 0 or a negative LSIM_E_* code.
 * Not part of the library or of the default build (tests/run_fuzzers.sh).
 */
#ifndef LSIM_FUZZ_UTIL_H
#define LSIM_FUZZ_UTIL_H

#include "lsim.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes data to a fresh temporary file; returns its path (static buffer,
 * one per process) or NULL. The caller unlinks it. */
static inline const char *fuzz_temp_file(const uint8_t *data, size_t size)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/lsim_fuzz_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return NULL;
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

/* A library call must return 0 (or, where stated, a small positive value) or
 * a negative LSIM_E_* code; anything else is a bug the fuzzer reports. */
static inline void fuzz_check_rc(int rc, const char *what)
{
    if (rc > 0 || rc < LSIM_E_SEARCH) {
        fprintf(stderr, "%s: unexpected return code %d\n", what, rc);
        abort();
    }
}

#endif
