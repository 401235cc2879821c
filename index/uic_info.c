/*
 * uic_info.c: see uic_info.h.
 */
#include "index/uic_info.h"

#include "index/ubt_layout.h"
#include "lsim.h"
#include "storage/byte_order.h"

#include <string.h>

/* version u32, state_floats u32, every u32, model_id u64, name_len u8, name: all LE */
size_t uic_info_encode(uint8_t *out, const uic_info *info)
{
    size_t nl = strnlen(info->name, UIC_NAME_MAX - 1);
    le32_put(out, info->version);
    le32_put(out + 4, info->state_floats);
    le32_put(out + 8, info->every);
    le32_put(out + 12, (uint32_t)info->model_id);
    le32_put(out + 16, (uint32_t)(info->model_id >> 32));
    out[20] = (uint8_t)nl;
    memcpy(out + 21, info->name, nl);
    return 21 + nl;
}

int uic_info_decode(uic_info *info, const uint8_t *p, size_t len)
{
    memset(info, 0, sizeof *info);
    if (len < 21 || len != 21u + p[20] || p[20] >= UIC_NAME_MAX) return LSIM_E_CORRUPT;
    info->version = le32_get(p);
    info->state_floats = le32_get(p + 4);
    info->every = le32_get(p + 8);
    info->model_id = le32_get(p + 12) | (uint64_t)le32_get(p + 16) << 32;
    memcpy(info->name, p + 21, p[20]);
    if (info->version != UIC_VERSION || !info->state_floats || info->state_floats > (1u << 24) || !info->every ||
        info->every > UIC_EVERY_MAX)
        return LSIM_E_CORRUPT;
    return 0;
}

void uic_key(uint8_t key[UIC_KEY_LEN], uint32_t user, int64_t ts)
{
    uint64_t t = (uint64_t)ts ^ (UINT64_C(1) << 63);
    ubt_put_u32be(key, user);
    ubt_put_u32be(key + 4, (uint32_t)(t >> 32));
    ubt_put_u32be(key + 8, (uint32_t)t);
}

int64_t uic_key_ts(const uint8_t key[UIC_KEY_LEN])
{
    uint64_t t = (uint64_t)ubt_get_u32be(key + 4) << 32 | ubt_get_u32be(key + 8);
    return (int64_t)(t ^ (UINT64_C(1) << 63));
}

size_t uic_record_encode(uint8_t *out, const uint8_t key[UIC_KEY_LEN], uint64_t count, uint64_t due, int head,
                         const float *state, uint32_t n)
{
    le64_put(out, count);
    le64_put(out + 8, due);
    out[16] = head ? 1 : 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &state[i], 4);
        le32_put(out + UIC_RECORD_HEADER + 4 * (size_t)i, b);
    }
    return ubt_seal(out, key, UIC_KEY_LEN, out, UIC_RECORD_HEADER + 4 * (size_t)n);
}

int uic_record_decode(uic_record *r, const uint8_t key[UIC_KEY_LEN], const void *val, size_t len, uint32_t n)
{
    size_t plen;
    if (len != uic_record_bytes(n) || ubt_unseal(key, UIC_KEY_LEN, val, len, &plen)) return LSIM_E_CORRUPT;
    const uint8_t *p = val;
    r->count = le64_get(p);
    r->due = le64_get(p + 8);
    r->head = p[16];
    r->state = p + UIC_RECORD_HEADER;
    if (p[16] > 1 || !r->count) return LSIM_E_CORRUPT;
    return 0;
}

void uic_record_state(const uic_record *r, float *state, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = le32_get(r->state + 4 * (size_t)i);
        memcpy(&state[i], &b, 4);
    }
}
