/*
 * utf8.h: UTF-8 decoding, encoding and validation (private), shared by the
 * JSON scanner and the safetensors writer.
 *
 * Valid means RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF),
 * nothing above U+10FFFF. These functions never read past `end` and never
 * allocate.
 */
#ifndef LSIM_UTF8_H
#define LSIM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the valid UTF-8 sequence at p (1..4; p < end), its code point in
 * *cp if cp is not NULL; 0 if the bytes at p are not valid UTF-8. */
size_t utf8_next(const unsigned char *p, const unsigned char *end, uint32_t *cp);
/* Writes code point cp (a valid one: <= U+10FFFF, not a surrogate) to d,
 * which has room for 4 bytes; returns the bytes written (1..4). */
size_t utf8_put(unsigned char *d, uint32_t cp);
/* 1 if the NUL-terminated s is valid UTF-8, else 0. */
int utf8_valid(const char *s);

#endif
