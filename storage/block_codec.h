/*
 * block_codec.h: the compressed, checksummed block that holds a time-ordered
 * run of one user's events in one category (private).
 *
 * It is only the byte format, not the storage: it knows nothing of LMDB or
 * of keys. docs/FORMATS.md describes the bytes.
 *
 * Invariants of an encoded block:
 *   - n >= 1 events, time-ordered (ts non-decreasing); order among equal
 *     timestamps is kept exactly.
 *   - The header (uncompressed, at the front) gives n, first_ts and last_ts,
 *     so a reader can skip a block without decompressing it.
 *   - A CRC-32C covers every byte of the block but the CRC itself; a block
 *     whose CRC, header or payload does not check is LSIM_E_CORRUPT, never
 *     decoded as data.
 *   - Timestamps are delta-coded; item ids and types are column-coded; the
 *     payload is zstd-compressed (optionally with a dictionary), or stored
 *     raw when compression does not pay.
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
 * copied. level is the zstd level (e.g. 3). */
int block_codec_new(block_codec **out, const void *dict, size_t dict_len, int level);
void block_codec_free(block_codec *c);

/* Upper bound of an encoded block of n events. */
size_t block_encoded_bound(size_t n);

/* Encodes ev[0..n) (1 <= n <= BLOCK_MAX_EVENTS, time-ordered) into
 * dst[0..cap). with_cat = 1 stores each event's cat; with_cat = 0 drops it
 * (the decoder then fills in the caller's default). Returns 0 and the length
 * in *len, or LSIM_E_INVAL (n out of range, not time-ordered, cap too small). */
int block_encode(block_codec *c, uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev,
                 size_t n, int with_cat);

/* Reads and checks the header only (not the CRC): LSIM_E_CORRUPT if it is
 * malformed. Cheap: no decompression. */
int block_read_header(const uint8_t *src, size_t len, block_header *h);

/* Checks the CRC and decodes all events into out[0..cap); returns 0 and the
 * count in *n, LSIM_E_CORRUPT on any inconsistency, LSIM_E_INVAL if cap is
 * too small. Events of a block stored without categories get cat = default_cat. */
int block_decode(block_codec *c, ubt_event *out, size_t cap, size_t *n, const uint8_t *src,
                 size_t len, uint32_t default_cat);

/* Trains a zstd dictionary of at most dict_cap bytes from sample blocks'
 * raw (uncompressed) payloads, as produced by block_raw_payload. Returns 0
 * and *dict_len, or a negative code when there is too little to train on
 * (the caller then runs without a dictionary). */
int block_train_dict(void *dict, size_t dict_cap, size_t *dict_len, const void *samples,
                     const size_t *sample_lens, size_t n_samples);

/* Writes the raw (pre-compression) payload of ev[0..n) into dst[0..cap) and
 * its length into *len: the sample block_train_dict learns from. */
int block_raw_payload(uint8_t *dst, size_t cap, size_t *len, const ubt_event *ev, size_t n,
                      int with_cat);

/* CRC-32C (Castagnoli) of buf[0..len), continuing from crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
