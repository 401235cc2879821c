/*
 * batch.h: a batch of samples as the models take it (private).
 *
 * A sample is (user's behaviors before time t, target item, label). Ids are
 * dense index ids (index/vocab.h); an id >= the model's vocabulary size is
 * out of vocabulary and maps to the table's last row. Sequences are padded
 * to a common length, row-major (B, S); len[b] gives the valid prefix, and
 * a sequence is in time order (oldest first), so its most recent behavior
 * is at len[b] - 1. Nothing at or after the sample's time is ever in a
 * batch (DESIGN.md: time discipline); the batch builder guarantees it.
 */
#ifndef LSIM_BATCH_H
#define LSIM_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct model_batch {
    size_t b;                    /* samples */
    const uint32_t *target_item; /* (B) */
    const uint32_t *target_cat;  /* (B) */
    /* short-term behaviors (DIN, DIEN, DSIN branches) */
    size_t s;                    /* padded length */
    const uint32_t *hist_item;   /* (B, S) */
    const uint32_t *hist_cat;    /* (B, S) */
    const uint32_t *hist_len;    /* (B) */
    const int64_t *hist_ts;      /* (B, S) */
    const uint32_t *hist_neg_item; /* (B, S) DIEN's auxiliary loss: a sampled item the user */
    const uint32_t *hist_neg_cat;  /* (B, S) did not take, beside each behavior (or NULL) */
    /* long-term behaviors: avg-pooling long DIN's sequence; SIM hard's
     * hard-search result (the GSU ran in the index); SIM soft's sequence to
     * search (the GSU runs in the model) */
    size_t k;                    /* padded length; 0 when unused */
    const uint32_t *long_item;   /* (B, K) */
    const uint32_t *long_cat;    /* (B, K) */
    const int64_t *long_ts;      /* (B, K) unix seconds (SIM's time info) */
    const uint32_t *long_len;    /* (B) */
    const int64_t *now;          /* (B) the sample's time: every behavior is before it */
    const float *label;          /* (B), 0 or 1; NULL at inference */
    /* Serving (engine/): one request's candidates. */
    int hist_shared;   /* every sample has sample 0's short-term history (the builder knows it: no check) */
    int long_shared;   /* avg-pooling DIN: long_* hold one sequence (1, K), long_len[0] its
                          length, that every sample shares (a model built with MODEL_LONG_SHARED) */
    int long_selected; /* SIM soft: each sample's long list is already the GSU's choice (at
                          most topk rows, time order): the model attends over it as given */
    const uint32_t *long_group; /* (B) or NULL. SIM hard at serving: samples with the same group
                          (each < B) have the same long list (the candidates of one category);
                          at inference the model embeds it once and attends over the one copy */
    /* MIMN: each sample's WHOLE history before its time (train/samples.h, LONG_ALL), however
     * long: sample b's behaviors are all_item / all_cat [all_off[b], all_off[b] + all_len[b]),
     * oldest first, in flat arrays of any length (no padding to the longest). Samples with the
     * same offset and length have the same history (one copy: a request's candidates). */
    const uint32_t *all_item, *all_cat;
    const size_t *all_off;       /* (B) */
    const uint32_t *all_len;     /* (B) */
    /* MIMN serving: the users' states folded beforehand (esu/mimn.h, mimn_state_fold) instead of
     * all_*: (B, mimn_state_floats) one per sample, or one (1, mimn_state_floats) that every
     * sample shares when state_shared (one request's candidates). NULL: fold all_*. */
    const float *mimn_state;
    int state_shared;
} model_batch;

/* Whether every sample has sample 0's short-term history, as the candidates
 * of one request do: the models then compute what depends on it once. */
static inline int batch_shared_history(const model_batch *bt)
{
    if (bt->hist_shared) return 1;
    size_t s = bt->s, n = bt->hist_len[0] < s ? bt->hist_len[0] : s;
    for (size_t b = 1; b < bt->b; b++) {
        size_t m = bt->hist_len[b] < s ? bt->hist_len[b] : s;
        if (m != n || memcmp(bt->hist_item + b * s, bt->hist_item, n * sizeof *bt->hist_item) ||
            memcmp(bt->hist_cat + b * s, bt->hist_cat, n * sizeof *bt->hist_cat) ||
            (bt->hist_ts && memcmp(bt->hist_ts + b * s, bt->hist_ts, n * sizeof *bt->hist_ts)))
            return 0;
    }
    return 1;
}

/* The same for the long-term sequence (items, categories, times). */
static inline int batch_shared_long(const model_batch *bt)
{
    size_t k = bt->k, n = bt->long_len[0] < k ? bt->long_len[0] : k;
    for (size_t b = 1; b < bt->b; b++) {
        size_t m = bt->long_len[b] < k ? bt->long_len[b] : k;
        if (m != n || memcmp(bt->long_item + b * k, bt->long_item, n * sizeof *bt->long_item) ||
            memcmp(bt->long_cat + b * k, bt->long_cat, n * sizeof *bt->long_cat) ||
            (bt->long_ts && memcmp(bt->long_ts + b * k, bt->long_ts, n * sizeof *bt->long_ts)))
            return 0;
    }
    return 1;
}

#endif
