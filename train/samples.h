/*
 * samples.h: training and test samples drawn from the behavior index,
 * time-respecting, streamed batch by batch (private).
 *
 * A sample is (user, time t, target item, label):
 *   positives  the user's logged events: each event at time t is a positive
 *              for its item (every behavior type counts: pv, cart, fav, buy);
 *   negatives  `negatives` per positive, at the same user and time, items
 *              drawn uniformly from the item vocabulary or by popularity (the
 *              items' event counts before test_from); a draw may hit the
 *              positive's item (it stays a negative: the truth output's
 *              posterior assumes exactly this sampling).
 * What a sample sees is the user's events strictly before t (DESIGN.md, time
 * discipline: an event at t itself, or a tie at t, is never visible):
 *   short-term   the last short_len of them, oldest first;
 *   long-term    per long_mode:
 *                  LONG_NONE  nothing;
 *                  LONG_HARD  the last long_k in the target's category (SIM
 *                             hard's GSU: what the index's hard search returns);
 *                  LONG_FULL  the last long_max of them, any category (SIM
 *                             soft's sequence to search; avg-pooling DIN's);
 *                  LONG_ALL   every one of them (MIMN's memory covers the whole
 *                             history): model_batch.all_*, each sample's history
 *                             copied once into flat arrays at its own offset, so a
 *                             batch holds the sum of its samples' lengths, not B
 *                             times the longest (a user has up to 54,000 events);
 *                             consecutive samples of one user and time (a given
 *                             request's candidates) share one copy: the same
 *                             offset and length. The arrays grow to the largest
 *                             batch seen.
 * With long_before_short, the long-term list is drawn from the events
 * before the short-term window only (the last short_len events are left to
 * the short-term branch), as SIM's Taobao data split does (not LONG_ALL: the
 * whole history is every event before t).
 * The split is by time: SAMPLES_TRAIN takes positives with
 * train_from <= t < test_from, SAMPLES_TEST those with t >= test_from (their
 * history still includes everything before t, test-window events too).
 *
 * Streaming: users are visited in a random order (seeded; a new one each
 * pass), window_users at a time: their events are read from the index, their
 * samples listed (at most user_cap positives per user, chosen at random, with
 * their negatives), shuffled, and handed out in batches. Memory is one
 * window's events and samples, never the whole set. Deterministic for a
 * seed.
 */
#ifndef LSIM_SAMPLES_H
#define LSIM_SAMPLES_H

#include "lsim.h"
#include "models/batch.h"

#include <stddef.h>
#include <stdint.h>

typedef enum long_mode { LONG_NONE, LONG_HARD, LONG_FULL, LONG_ALL } long_mode;
typedef enum sample_split { SAMPLES_TRAIN, SAMPLES_TEST } sample_split;
typedef enum neg_mode { NEG_UNIFORM, NEG_POPULARITY } neg_mode;

/* A sample the caller gives (sample_config.given), e.g. a logged request's
 * candidate: the user's dense id (SAMPLE_NO_USER: a user the index does not
 * know, who has no history), the time, the target's dense item and category
 * (ids past the vocabulary are out of vocabulary), the label. */
typedef struct sample_given {
    uint32_t user, item, cat;
    int64_t t;
    float label;
} sample_given;
#define SAMPLE_NO_USER UINT32_MAX

typedef struct sample_config {
    sample_split split;
    int64_t test_from;      /* the split time (unix seconds) */
    int64_t train_from;     /* SAMPLES_TRAIN: only positives at or after this (default INT64_MIN: all) */
    uint32_t batch;         /* samples per batch (default 256) */
    uint32_t short_len;     /* S (default 50) */
    long_mode long_mode;
    uint32_t long_k;        /* LONG_HARD's K (default 50) */
    uint32_t long_max;      /* LONG_FULL's cap (default 1000) */
    uint32_t negatives;     /* per positive (default 1) */
    neg_mode neg;           /* default NEG_POPULARITY */
    uint32_t user_cap;      /* positives per user and pass, 0 = all (default 200) */
    uint32_t window_users;  /* users per shuffle window (default 512) */
    int dien_negatives;     /* also draw hist_neg_* (DIEN's auxiliary loss) */
    int long_before_short;  /* the long-term list from the events before the short-term window only
                               (SIM's Taobao split); default 0: from every event before t */
    uint64_t seed;
    /* Non-NULL: the samples are exactly given[0..n_given), in this order (no
     * shuffle), each seeing what a drawn sample at its time would; split,
     * train_from, negatives, user_cap and window order do not apply. */
    const sample_given *given;
    size_t n_given;
} sample_config;

void sample_config_default(sample_config *c);

/* The padded width of a batch's long-term list (model_batch.k): long_k for
 * LONG_HARD, long_max for LONG_FULL, 0 for LONG_NONE and LONG_ALL (not padded).
 * Models are built with it as their max_k. */
size_t sample_config_long_width(const sample_config *c);

typedef struct sample_source sample_source;

/* Reads the vocabularies and counts the items' events before test_from (one
 * pass over the index). err gets a message on failure. */
int sample_source_open(sample_source **out, lsim_index *ix, const sample_config *c, char *err, size_t errlen);
void sample_source_free(sample_source *s);

/* The next batch: 0 and *bt (valid until the next call) with bt->b > 0, or
 * 0 and bt->b == 0 at the end of the pass; a negative code on an index
 * error (detail in err). users (B) gets the samples' dense user ids. */
int sample_source_next(sample_source *s, model_batch *bt, const uint32_t **users, char *err, size_t errlen);

/* Starts another pass (a new user order and new draws). */
void sample_source_rewind(sample_source *s);

/* The index's vocabulary sizes, the item counts before test_from (n_items
 * entries), and how many positives a pass over the split yields. */
uint32_t sample_source_items(const sample_source *s);
uint32_t sample_source_cats(const sample_source *s);
const uint32_t *sample_source_item_counts(const sample_source *s);
const uint32_t *sample_source_item_cats(const sample_source *s); /* (n_items) each item's category */
uint64_t sample_source_positives(const sample_source *s);

#endif
