/*
 * block_codec.h: the compressed, checksummed block that holds a time-ordered
 * run of one user's events in one category (private).
 *
 * It is only the byte format, not the storage: it knows nothing of LMDB or
 * of keys. docs/BLOCK_FORMAT.md describes the bytes.
 *
 * Invariants of an encoded block:
 *   - 1 <= n <= BLOCK_MAX_EVENTS events, ordered by (ts, tie), both
 *     non-decreasing; the order of events is kept exactly.
 *   - The header (uncompressed, at the front) gives n, first_ts and last_ts,
 *     so a reader can skip a block without decompressing it.
 *   - A CRC-32C covers every byte of the block but the CRC itself; a block
 *     whose CRC, header or payload does not check is LSIM_E_CORRUPT, never
 *     decoded as data.
 *   - The payload is a bit stream of columns: timestamp deltas, sparse tie
 *     ranks, types, items, categories; numbers in Exp-Golomb codes whose
 *     order is chosen per column and block, ids through a block-local
 *     dictionary when that is shorter. It is stored raw, or as a zstd frame
 *     (optionally with a dictionary) when that is strictly smaller, which
 *     the entropy-coded stream makes rare.
 */
#ifndef LSIM_BLOCK_CODEC_H
#define LSIM_BLOCK_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* One stored behavior: timestamp, dense item id, dense category id, behavior
 * type id. A block either stores the category of every event (a user's
 * "mixed" chain, which holds the user's small categories together) or none
 * (a chain of one category, given by its key). */
typedef struct ubt_event {
    int64_t ts;
    uint32_t item;
    uint32_t cat;
    uint32_t tie;  /* rank among the user's events with this same ts, in log order
                      (0 for nearly every event): orders ties across chains. Stored
                      as a sparse column. Events of a block are ordered by (ts, tie). */
    uint8_t type;
} ubt_event;

#define BLOCK_MAX_EVENTS 4096u

typedef struct block_header {
    uint32_t n;
    int64_t first_ts, last_ts;
    int with_cat;
} block_header;

/* Codec state: zstd contexts and an optional dictionary. One per thread. */
typedef struct block_codec block_codec;

/* Creates a codec. dict/dict_len may be NULL/0 (no dictionary); the bytes are
 * copied. level is the zstd level (e.g. 3). Allocates its scratch here
 * (about 0.3 MB, plus zstd's contexts): encode and decode then allocate
 * nothing. Returns 0,
 * LSIM_E_INVAL (bad level, dict NULL with dict_len > 0), LSIM_E_NOMEM, or
 * LSIM_E_CORRUPT when zstd refuses the dictionary bytes. */
int block_codec_new(block_codec **out, const void *dict, size_t dict_len, int level);
void block_codec_free(block_codec *c);

/* Upper bound of an encoded block of n events. */
size_t block_encoded_bound(size_t n);

/* Encodes ev[0..n) (1 <= n <= BLOCK_MAX_EVENTS, ordered by (ts, tie)) into
 * dst[0..cap). with_cat = 1 stores each event's cat; with_cat = 0 drops it
 * (the decoder then fills in the caller's default). Returns 0 and the length
 * in *len, or LSIM_E_INVAL (n out of range, not ordered, cap too small). The
 * bytes do not depend on cap: cap = block_encoded_bound(n) always suffices,
 * and a smaller cap either fits the same block or fails. */
int block_encode(block_codec *c, uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev,
                 size_t n, int with_cat);

/* Reads and checks the header only (not the CRC): LSIM_E_CORRUPT if it is
 * malformed. Cheap: no decompression. */
int block_read_header(const uint8_t *src, size_t len, block_header *h);

/* Checks the CRC and decodes all events into out[0..cap); returns 0 and the
 * count in *n, LSIM_E_CORRUPT on any inconsistency, LSIM_E_INVAL if cap is
 * too small (checked after the CRC, so a corrupt n is reported as corrupt).
 * Events of a block stored without categories get cat = default_cat. A block
 * compressed with a dictionary decodes only with a codec made with that same
 * dictionary (its CRC is seeded with it); others get LSIM_E_CORRUPT. On
 * failure *n is 0 and out[] may have been written. */
int block_decode(block_codec *c, ubt_event *out, size_t cap, size_t *n, const uint8_t *src,
                 size_t len, uint32_t default_cat);

/* block_encode and block_decode with the CRC also seeded with key[0..key_len) (after the
 * dictionary): the block then decodes only with that key, so a block found
 * under another key (a corrupt LMDB node or page) fails its CRC. The index
 * passes the block's 12-byte LMDB key. key_len 0 is block_encode /
 * block_decode. */
int block_encode_keyed(block_codec *c, uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev, size_t n,
                       int with_cat, const void *key, size_t key_len);
int block_decode_keyed(block_codec *c, ubt_event *out, size_t cap, size_t *n, const uint8_t *src, size_t len,
                       uint32_t default_cat, const void *key, size_t key_len);

/* Trains a zstd dictionary of at most dict_cap bytes from sample blocks'
 * raw (uncompressed) payloads, as produced by block_raw_payload. Returns 0
 * and *dict_len, LSIM_E_INVAL for NULL pointers, or LSIM_E_LIMIT when there
 * is too little to train on (fewer than 8 samples, under 1 KiB, dict_cap
 * under 256, or ZDICT refuses): the caller then runs without a dictionary.
 * The payloads are entropy-coded bit streams, so a dictionary gains little
 * (measured: under 1% on held-out data). */
int block_train_dict(void *dict, size_t dict_cap, size_t *dict_len, const void *samples,
                     const size_t *sample_lens, size_t n_samples);

/* Writes the raw (pre-compression) payload of ev[0..n) into dst[0..cap) and
 * its length into *len: the sample block_train_dict learns from. */
int block_raw_payload(uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev, size_t n,
                      int with_cat);

/* CRC-32C (Castagnoli) of buf[0..len), continuing from crc (0 to start):
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b). Thread-safe. Uses the SSE4.2
 * instruction when the CPU has it (checked once at run time). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The same function, by name: the plain C slice-by-8 reference, and the
 * SSE4.2 path (which falls back to the reference when crc32c_hw_available()
 * is 0). For tests and benchmarks; callers use crc32c(). */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
int crc32c_hw_available(void);

#endif
