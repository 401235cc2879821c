/*
 * seq_pack.h: the valid positions of a padded batch of sequences as packed
 * rows (private, header-only).
 *
 * Sample b's valid positions are rows [off[b], off[b+1]) in time order, so
 * layers work on exactly the behaviors that exist: padding costs nothing
 * and cannot leak into a result or a gradient.
 */
#ifndef LSIM_SEQ_PACK_H
#define LSIM_SEQ_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* off (B + 1); r_item, r_cat (rows); item, cat (B, T); len (B), clamped to T.
 * Returns the number of rows. */
static inline size_t seq_pack(uint32_t *off, uint32_t *r_item, uint32_t *r_cat, const uint32_t *item,
                              const uint32_t *cat, const uint32_t *len, size_t b, size_t t)
{
    size_t r = 0;
    for (size_t i = 0; i < b; i++) {
        off[i] = (uint32_t)r;
        size_t n = len[i] < t ? len[i] : t;
        memcpy(r_item + r, item + i * t, n * sizeof *item);
        memcpy(r_cat + r, cat + i * t, n * sizeof *cat);
        r += n;
    }
    off[b] = (uint32_t)r;
    return r;
}

#endif
