/*
 * vocab.h: one vocabulary of raw ids <-> dense ids (users, items, categories
 * or behavior types), in memory and as blocks in LMDB (private).
 *
 * Dense ids are assigned 0, 1, 2, ... in order of first appearance and never
 * change, so a vocabulary only grows: an append adds entries at the end and
 * rewrites only the blocks from the first one it touched.
 *
 * In memory: the strings in one arena (NUL-terminated), an offset per id, an
 * open-addressing hash table raw -> id, and for items the category id.
 * In LMDB (database "vocab"): key kind | block number (u32 BE), value one
 * block of VOCAB_BLOCK_ENTRIES consecutive ids:
 *   u32 LE count | u32 LE CRC-32C of what follows | u8 mode (0 raw, 1 zstd)
 *   | varint raw length | payload
 * payload (before compression): count x (varint length, bytes), then, for
 * items, count x varint category id.
 *
 * Not thread-safe for writers; concurrent lookups on a vocabulary nobody
 * modifies are safe.
 */
#ifndef LSIM_VOCAB_H
#define LSIM_VOCAB_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#define VOCAB_BLOCK_ENTRIES 1024u
#define VOCAB_NO_CAT 0xFFFFFFFFu

typedef struct vocab vocab;

/* kind is one of enum ubt_vocab_kind; with_cat: keep a category per entry (items). */
int vocab_new(vocab **out, char kind, int with_cat);
void vocab_free(vocab *v);

uint32_t vocab_size(const vocab *v);

/* Bytes of string storage held (chunks are kept until vocab_free). */
size_t vocab_string_bytes(const vocab *v);

/* Finds s[0..len): 0 and *id, or LSIM_E_NOTFOUND. */
int vocab_find(const vocab *v, const char *s, size_t len, uint32_t *id);

/* Finds or adds s[0..len); returns 0 and *id, or LSIM_E_NOMEM, or
 * LSIM_E_LIMIT past `limit` entries (e.g. 255 behavior types). */
int vocab_intern(vocab *v, const char *s, size_t len, uint32_t *id, uint32_t limit);

/* The raw id of dense id (NUL-terminated; id < vocab_size). Valid until the
 * vocabulary is freed or grows. */
const char *vocab_str(const vocab *v, uint32_t id);
size_t vocab_len(const vocab *v, uint32_t id);

/* Items: the category of an item (VOCAB_NO_CAT if never set), and setting it. */
uint32_t vocab_cat(const vocab *v, uint32_t id);
void vocab_set_cat(vocab *v, uint32_t id, uint32_t cat);

/* Reads all blocks of this kind from the txn (replacing the contents), and
 * checks each (CRC, counts, lengths, no duplicate). LSIM_E_CORRUPT with a
 * message naming the block on failure. */
int vocab_load(vocab *v, MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen);

/* Brings a loaded vocabulary up to a later snapshot (after an append):
 * blocks whose checksum is unchanged are skipped, the rest decoded; loaded
 * ids keep their strings (the same pointers), their categories may change,
 * new ids are added. Cost: the blocks' headers plus the changed blocks. */
int vocab_refresh(vocab *v, MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen);

/* Writes every block changed since the last load/store. */
int vocab_store(vocab *v, MDB_txn *txn, MDB_dbi dbi, char *err, size_t errlen);

/* Number of blocks of n entries. */
static inline uint32_t vocab_blocks(uint32_t n)
{
    return (n + VOCAB_BLOCK_ENTRIES - 1) / VOCAB_BLOCK_ENTRIES;
}

#endif
