/*
 * arena.h: carving a model's workspace out of one allocation (private,
 * header-only).
 *
 * A model sizes every buffer for its largest batch, then allocates once
 * (zstd's workspace, llm.c's malloc_and_point). Components describe their
 * buffers with arena_take in a function called twice: first on a measuring
 * arena (base NULL: only sizes add up), then on the real one (pointers are
 * set). Each buffer is 64-byte aligned.
 *
 * A forward-only workspace (forward_only set: a serving model, made by
 * model_new_sharing, that has no gradients and runs inference forwards only)
 * carves no training buffers: what only a backward reads or writes
 * (gradients of activations, backward scratch) and what only a training
 * forward keeps for it, taken with ARENA_TRAIN_*, get no bytes there and
 * stay NULL. The training workspace is the same with or without the
 * distinction: the same buffers, sizes and order.
 */
#ifndef LSIM_ARENA_H
#define LSIM_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct arena {
    char *base;       /* NULL while measuring */
    size_t used;
    int forward_only; /* no training buffers (ARENA_TRAIN_*) */
} arena;

static inline void *arena_take(arena *a, size_t count, size_t size)
{
    size_t bytes = ((count ? count : 1) * size + 63) & ~(size_t)63;
    void *p = a->base ? a->base + a->used : NULL;
    a->used += bytes;
    return p;
}

#define ARENA_FLOATS(a, n) ((float *)arena_take((a), (n), sizeof(float)))
#define ARENA_U32(a, n) ((uint32_t *)arena_take((a), (n), sizeof(uint32_t)))
/* A training buffer: NULL, and no bytes, in a forward-only workspace. */
#define ARENA_TRAIN_FLOATS(a, n) ((a)->forward_only ? (float *)NULL : ARENA_FLOATS((a), (n)))

/* Allocates (zeroed) what a measuring pass counted; returns NULL on failure. */
static inline void *arena_alloc(arena *a, size_t bytes)
{
    void *p = aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
    if (p) memset(p, 0, bytes);
    a->base = p;
    a->used = 0;
    return p;
}

#endif
