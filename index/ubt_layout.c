/*
 * ubt_layout.c: the small fixed records of the index layout (counts, user
 * summaries). See ubt_layout.h.
 */
#include "index/ubt_layout.h"

#include "lsim.h"
#include "storage/block_codec.h"
#include "storage/byte_order.h"
#include "storage/varint.h"

#include <string.h>

void ubt_counts_encode(uint8_t out[UBT_COUNTS_BYTES], const ubt_counts *c)
{
    const uint64_t f[7] = {c->users, c->items, c->categories, c->types, c->events, c->blocks,
                           c->appends};
    for (int i = 0; i < 7; i++) le64_put(out + 8 * i, f[i]);
}

int ubt_counts_decode(ubt_counts *c, const void *buf, size_t len)
{
    if (len != UBT_COUNTS_BYTES) return LSIM_E_CORRUPT;
    const uint8_t *p = buf;
    c->users = le64_get(p);
    c->items = le64_get(p + 8);
    c->categories = le64_get(p + 16);
    c->types = le64_get(p + 24);
    c->events = le64_get(p + 32);
    c->blocks = le64_get(p + 40);
    c->appends = le64_get(p + 48);
    return 0;
}

size_t ubt_seal(uint8_t *out, const void *key, size_t klen, const void *payload, size_t len)
{
    uint32_t crc = crc32c(crc32c(0, key, klen), payload, len);
    if (out != payload) memmove(out, payload, len);
    for (int i = 0; i < 4; i++) out[len + (size_t)i] = (uint8_t)(crc >> (8 * i));
    return len + UBT_SEAL_BYTES;
}

int ubt_unseal(const void *key, size_t klen, const void *val, size_t len, size_t *plen)
{
    if (len < UBT_SEAL_BYTES) return LSIM_E_CORRUPT;
    const uint8_t *p = val;
    size_t n = len - UBT_SEAL_BYTES;
    uint32_t want = (uint32_t)p[n] | (uint32_t)p[n + 1] << 8 | (uint32_t)p[n + 2] << 16 | (uint32_t)p[n + 3] << 24;
    if (crc32c(crc32c(0, key, klen), p, n) != want) return LSIM_E_CORRUPT;
    *plen = n;
    return 0;
}

size_t ubt_summary_encode(uint8_t out[UBT_SUMMARY_MAX_BYTES], uint32_t user, const ubt_user_summary *s)
{
    size_t n = varint_put(out, s->events);
    n += varint_put(out + n, zigzag_enc(s->first_ts));
    n += varint_put(out + n, (uint64_t)s->last_ts - (uint64_t)s->first_ts);
    uint8_t key[UBT_USER_KEY_LEN];
    ubt_put_u32be(key, user);
    return ubt_seal(out, key, sizeof key, out, n);
}

int ubt_summary_decode(ubt_user_summary *s, uint32_t user, const void *buf, size_t len)
{
    uint8_t key[UBT_USER_KEY_LEN];
    ubt_put_u32be(key, user);
    if (ubt_unseal(key, sizeof key, buf, len, &len)) return LSIM_E_CORRUPT;
    const uint8_t *p = buf, *end = p + len;
    uint64_t ev, first, span;
    if (varint_get(&p, end, &ev) || varint_get(&p, end, &first) || varint_get(&p, end, &span) ||
        p != end)
        return LSIM_E_CORRUPT;
    s->events = ev;
    s->first_ts = zigzag_dec(first);
    if (span > (uint64_t)INT64_MAX - (uint64_t)(s->first_ts < 0 ? 0 : s->first_ts))
        return LSIM_E_CORRUPT;
    s->last_ts = (int64_t)((uint64_t)s->first_ts + span);
    if (ev == 0 || s->last_ts < s->first_ts) return LSIM_E_CORRUPT;
    return 0;
}
