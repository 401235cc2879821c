/*
 * chain_encode.h: turning one user's events into chain blocks (private).
 *
 * A chain_encoder is the per-thread scratch of the index writer: a block
 * codec and buffers. It knows nothing of LMDB: the blocks it makes go to a
 * sink the caller chooses (a record buffer that a worker thread fills and
 * the writing thread stores later, or a direct put into the write
 * transaction), or, while a zstd dictionary is being trained, into a sample
 * buffer instead of being encoded.
 */
#ifndef LSIM_CHAIN_ENCODE_H
#define LSIM_CHAIN_ENCODE_H

#include "index/chain_plan.h"
#include "index/event_sort.h"
#include "index/ubt_layout.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"

#include <stddef.h>
#include <stdint.h>

/* A growable array of events. */
typedef struct ev_buf {
    ubt_event *v;
    size_t n, cap;
} ev_buf;

int ev_reserve(ev_buf *b, size_t n);

/* Receives one encoded block (key = user | chain | seq). */
typedef int (*chain_put_fn)(void *ctx, const uint8_t key[UBT_KEY_LEN], const uint8_t *blk, size_t len);

typedef struct chain_encoder {
    block_codec *codec;
    ev_buf user, grouped, mixed; /* scratch of one user */
    chain_plan plan;
    uint8_t *blk;
    size_t blk_cap;
    chain_put_fn put;
    void *put_ctx;
    /* dictionary training: while set, chain_write collects raw payloads */
    int training;
    uint8_t *samples;
    size_t samples_len, samples_cap, samples_max;
    size_t *sample_lens;
    size_t n_samples, sample_lens_cap;
    char err[LSIM_ERRLEN];
} chain_encoder;

int chain_encoder_init(chain_encoder *e, const void *dict, size_t dict_len, int level);
void chain_encoder_free(chain_encoder *e);
/* Replaces the codec (e.g. once a dictionary is trained). */
int chain_encoder_set_dict(chain_encoder *e, const void *dict, size_t dict_len, int level);

/* Writes ev[0..m) ((ts, tie) order) as the blocks of chain (user, cat),
 * numbered from seq0: blocks of at most UBT_CHUNK_EVENTS events, split
 * further when one would exceed UBT_BLOCK_MAX_BYTES. Returns the count of
 * blocks in *blocks. Errors: a negative code, message in e->err. */
int chain_write(chain_encoder *e, uint32_t user, uint32_t cat, uint32_t seq0, const ubt_event *ev,
                size_t m, int with_cat, uint64_t *blocks);

/* Fills e->user with run[0..m) (ts order, log order among ties) as stored
 * events, each with its tie rank: its rank among the user's events of the
 * same second, counting n_stored(ts) events already stored at that second
 * first (stored_ts: sorted timestamps of stored events, may be NULL). */
int chain_user_events(chain_encoder *e, const batch_event *run, size_t m, const int64_t *stored_ts,
                      size_t n_stored);

/* dst = the events of src[0..n) whose category is not own under the plan, in order. */
size_t chain_filter_mixed(const chain_plan *p, ubt_event *dst, const ubt_event *src, size_t n);

/* All chains of a user the index does not hold yet: plans own / mixed
 * chains and writes them in key order (own chains by category, then the
 * mixed chain). The summary is returned in *sum. */
int chain_encode_new_user(chain_encoder *e, uint32_t user, const batch_event *run, size_t m,
                          uint32_t own_min, uint32_t mixed_max, ubt_user_summary *sum,
                          uint64_t *blocks);

#endif
