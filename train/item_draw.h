/*
 * item_draw.h: the random draws the sample and request generators share
 * (private): splitmix64, and an item drawn uniformly or by popularity.
 */
#ifndef LSIM_ITEM_DRAW_H
#define LSIM_ITEM_DRAW_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64 */
static inline uint64_t tr_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [0, n), n > 0 (the modulo bias, below n / 2^64, is immaterial here) */
static inline uint64_t tr_rnd_below(uint64_t *s, uint64_t n)
{
    return tr_rnd(s) % n;
}

/* An item of [0, n), n > 0: uniform when cum is NULL, else with probability
 * proportional to its count (cum: cumulative counts, cum[n - 1] > 0). */
static inline uint32_t tr_draw_item(const uint64_t *cum, uint32_t n, uint64_t *rng)
{
    if (!cum) return (uint32_t)tr_rnd_below(rng, n);
    uint64_t x = tr_rnd_below(rng, cum[n - 1]);
    size_t lo = 0, hi = n - 1; /* the first i with cum[i] > x */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return (uint32_t)lo;
}

#endif
