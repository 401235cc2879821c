/*
 * ubt_layout.h: how the User Behavior Tree sits in LMDB (private). Schema 2.
 *
 * Databases of one environment:
 *   "meta"   string keys -> small values, each sealed (ubt_seal):
 *              "schema"   u32 LE, UBT_SCHEMA_VERSION
 *              "complete" 1 byte, written by the last transaction of a build;
 *                         an environment without it is an interrupted build
 *              "counts"   ubt_counts (see below), kept current by every commit
 *              "zdict"    the zstd dictionary of the event blocks (optional)
 *              "policy"   chain policy the index was built with (u32 LE x 2:
 *                         own_min, mixed_max)
 *              "commit"   the LMDB transaction that wrote this snapshot and the
 *                         map size (storage/lmdb_check.h), checked at open
 *   "ubt"    user(u32 BE) | cat(u32 BE) | seq(u32 BE) -> one event block
 *            (storage/block_codec.h), its CRC seeded with this key. A chain is the keys of one (user, cat),
 *            seq ascending = time ascending; cat = UBT_MIXED is the user's
 *            "mixed" chain, holding the user's small categories together
 *            (blocks with a category column). Big-endian, so one user's chains
 *            are one key range and one chain is a sub-range.
 *   "users"  user(u32 BE) -> user summary (varints: events, first_ts zigzag,
 *            last_ts - first_ts), sealed with its key
 *   "vocab"  kind(1 byte: 'u','i','c','t') | block(u32 BE) -> vocabulary block
 *            (index/vocab.h)
 *
 * Invariants (checked by `lsim index verify`):
 *   - every (user, category) has its events in exactly one chain: its own, or
 *     the user's mixed chain;
 *   - within a chain, events are in (ts, tie) order across blocks, where tie
 *     is the event's rank among the user's events with the same timestamp,
 *     in log order (so ties keep log order, across chains too);
 *   - each block has at most UBT_CHUNK_EVENTS events and fits inline in a
 *     page (UBT_BLOCK_MAX_BYTES);
 *   - the user summary and "counts" agree with the blocks.
 *
 * Corruption: every value is bound to its key (a CRC-32C seeded with the
 * key), so a value LMDB finds under another key, or changed, is refused;
 * LMDB's own pages are checked when an index is opened (lmdb_check.h).
 */
#ifndef LSIM_UBT_LAYOUT_H
#define LSIM_UBT_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define UBT_SCHEMA_VERSION 2u
#define UBT_MIXED 0xFFFFFFFFu
#define UBT_KEY_LEN 12
#define UBT_USER_KEY_LEN 4
#define UBT_CHUNK_EVENTS 512u
/* LMDB keeps a value inline (no overflow page) below about 2018 bytes with a
 * 12-byte key on 4 KiB pages; stay well under. */
#define UBT_BLOCK_MAX_BYTES 1900u
/* A category gets its own chain once the user has this many events in it... */
#define UBT_OWN_MIN_DEFAULT 32u
/* ...or when the mixed chain would exceed this many events (largest first). */
#define UBT_MIXED_MAX_DEFAULT 512u

/* The zstd dictionary the writer trains is at most this big. */
#define UBT_DICT_MAX_BYTES (64u << 10)

#define UBT_DB_META "meta"
#define UBT_DB_UBT "ubt"
#define UBT_DB_USERS "users"
#define UBT_DB_VOCAB "vocab"

enum ubt_vocab_kind { UBT_VOCAB_USER = 'u', UBT_VOCAB_ITEM = 'i', UBT_VOCAB_CAT = 'c', UBT_VOCAB_TYPE = 't' };

typedef struct ubt_counts {
    uint64_t users, items, categories, types, events, blocks, appends;
} ubt_counts;
#define UBT_COUNTS_BYTES 56

typedef struct ubt_user_summary {
    uint64_t events;
    int64_t first_ts, last_ts;
} ubt_user_summary;
#define UBT_SUMMARY_MAX_BYTES 34 /* three varints and the seal */

/* A sealed value ends with UBT_SEAL_BYTES: the CRC-32C (LE) of the record's
 * key followed by the value's other bytes. */
#define UBT_SEAL_BYTES 4

static inline void ubt_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t ubt_get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void ubt_key(uint8_t key[UBT_KEY_LEN], uint32_t user, uint32_t cat, uint32_t seq)
{
    ubt_put_u32be(key, user);
    ubt_put_u32be(key + 4, cat);
    ubt_put_u32be(key + 8, seq);
}

void ubt_counts_encode(uint8_t out[UBT_COUNTS_BYTES], const ubt_counts *c);
int ubt_counts_decode(ubt_counts *c, const void *buf, size_t len);

/* Writes payload[0..len) then its seal under key[0..klen) to out (len +
 * UBT_SEAL_BYTES bytes; out may be payload). Returns the length. */
size_t ubt_seal(uint8_t *out, const void *key, size_t klen, const void *payload, size_t len);
/* Checks the seal of val[0..len) under key: 0 and the payload's length in
 * *plen, or LSIM_E_CORRUPT. */
int ubt_unseal(const void *key, size_t klen, const void *val, size_t len, size_t *plen);

/* The summary of dense user `user`, sealed with its key. Returns the
 * encoded length. */
size_t ubt_summary_encode(uint8_t out[UBT_SUMMARY_MAX_BYTES], uint32_t user, const ubt_user_summary *s);
int ubt_summary_decode(ubt_user_summary *s, uint32_t user, const void *buf, size_t len);

#endif
