/*
 * uic_info.h: the User Interest Center's records as stored (private; the
 * layout is written down in index/uic.h and docs/FORMATS.md).
 */
#ifndef LSIM_UIC_INFO_H
#define LSIM_UIC_INFO_H

#include <stddef.h>
#include <stdint.h>

#define UIC_DB "uic"
#define UIC_META_KEY "uic"
#define UIC_KEY_LEN 12
#define UIC_VERSION 1u
#define UIC_EVERY_DEFAULT 1024u
#define UIC_EVERY_MAX (1u << 30)
#define UIC_NAME_MAX 64u
/* count, due, head */
#define UIC_RECORD_HEADER 17u

/* The "uic" meta record. */
typedef struct uic_info {
    uint32_t version, state_floats, every;
    uint64_t model_id;
    char name[UIC_NAME_MAX]; /* NUL-terminated */
} uic_info;

/* Encodes info (payload, unsealed) into out; returns its length (<= 21 + UIC_NAME_MAX). */
size_t uic_info_encode(uint8_t *out, const uic_info *info);
/* 0, or LSIM_E_CORRUPT for a payload that is not one. */
int uic_info_decode(uic_info *info, const uint8_t *p, size_t len);

void uic_key(uint8_t key[UIC_KEY_LEN], uint32_t user, int64_t ts);
int64_t uic_key_ts(const uint8_t key[UIC_KEY_LEN]);

/* One snapshot as stored (index/uic.h), decoded. */
typedef struct uic_record {
    uint64_t count, due;
    int head;
    const uint8_t *state; /* state_floats f32 LE, in the record's memory (unaligned) */
} uic_record;

/* Bytes of a record's value (sealed) for a state of n floats. */
static inline size_t uic_record_bytes(uint32_t n)
{
    return UIC_RECORD_HEADER + 4 * (size_t)n + 4;
}
/* Writes the sealed value into out (uic_record_bytes(n)); returns its length. */
size_t uic_record_encode(uint8_t *out, const uint8_t key[UIC_KEY_LEN], uint64_t count, uint64_t due, int head,
                         const float *state, uint32_t n);
/* 0, or LSIM_E_CORRUPT: a wrong size, a failed seal, a bad flag. */
int uic_record_decode(uic_record *r, const uint8_t key[UIC_KEY_LEN], const void *val, size_t len, uint32_t n);
void uic_record_state(const uic_record *r, float *state, uint32_t n);

#endif
