/*
 * error_detail.h: writing a detail message beside a negative error code (private).
 *
 *   return err_set(err, errlen, LSIM_E_FORMAT, "%s:%llu: empty user id", path, line);
 *
 * err may be NULL (the message is dropped). The message is always
 * NUL-terminated and truncated to errlen.
 */
#ifndef LSIM_ERROR_DETAIL_H
#define LSIM_ERROR_DETAIL_H

#include <stddef.h>

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int err_set(char *err, size_t errlen, int code, const char *fmt, ...);

#define LSIM_ERRLEN 512

#endif
