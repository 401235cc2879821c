/*
 * lsim_error.c: error names and the small helpers every layer uses to write a
 * detail message into a caller's buffer. Never prints.
 */
#include "lsim.h"
#include "storage/error_detail.h"

#include <stdarg.h>
#include <stdio.h>

LSIM_API const char *lsim_strerror(int code)
{
    switch (code) {
    case LSIM_OK: return "success";
    case LSIM_E_INVAL: return "invalid argument";
    case LSIM_E_NOMEM: return "out of memory";
    case LSIM_E_IO: return "input/output error";
    case LSIM_E_STORAGE: return "storage (LMDB) error";
    case LSIM_E_CORRUPT: return "corrupt data";
    case LSIM_E_NOTFOUND: return "not found";
    case LSIM_E_FORMAT: return "malformed input";
    case LSIM_E_VERSION: return "unsupported schema version";
    case LSIM_E_INCOMPLETE: return "index is incomplete (an interrupted build)";
    case LSIM_E_FULL: return "disk or map full";
    case LSIM_E_LIMIT: return "limit exceeded";
    case LSIM_E_SEARCH: return "vector search error";
    default: return "unknown error";
    }
}

LSIM_API const char *lsim_version(void)
{
    return "0.1.0";
}

int err_set(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
