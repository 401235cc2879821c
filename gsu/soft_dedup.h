/*
 * soft_dedup.h: a request's sequence by distinct behavior (private).
 *
 * A GSU vector depends only on the behavior's (item, category), and a heavy
 * user repeats items: user 1 of the default generated log has 54,000
 * behaviors and 4,807 distinct (item, category) pairs. Soft search scores
 * each distinct pair once; every behavior of a pair has that pair's score,
 * to the bit (gsu/soft_score.h), so the K best behaviors by (score, then the
 * more recent) are recovered from the pairs' scores exactly:
 *
 *   s* = the score of the K-th best behavior; every behavior scoring above
 *   s* is kept, and of those scoring exactly s*, the most recent ones fill
 *   the K. (soft_dedup_expand; equal to soft_gsu_topk on the rows.)
 *
 * The build is one hash probe per behavior; a pair's behaviors are chained
 * (its latest row, each row's previous row of the same pair), not sorted into
 * groups, since only the few pairs that reach some candidate's top K are ever
 * walked, and each of those once per build (its newest K rows kept).
 *
 * With the soft search's recency bias (gsu/soft_search.h) a behavior's score
 * also depends on its time bucket: the build then takes each row's tag (the
 * bucket, < 256) and the distinct unit is the (item, category, tag) triple.
 *
 * Allocation-free after soft_dedup_carve.
 */
#ifndef LSIM_SOFT_DEDUP_H
#define LSIM_SOFT_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#define SOFT_DEDUP_NONE UINT32_MAX

/* One slot of the open-addressing table: a probe reads one cache line. */
typedef struct soft_dedup_slot {
    uint32_t item, cat;
    uint32_t stamp; /* gen << 8 | tag: the request the slot belongs to (no clearing between requests), the tag */
    uint32_t id;    /* the pair's distinct id */
} soft_dedup_slot;

typedef struct soft_dedup {
    size_t max_n, slots, k;
    unsigned shift;        /* 64 - log2(slots) */
    soft_dedup_slot *slot; /* (slots) */
    uint32_t gen;         /* the build's stamp, < 2^24 */
    uint32_t *item, *cat; /* (max_n) each distinct pair */
    uint8_t *tag;         /* (max_n) each distinct pair's tag (0 without tags) */
    uint32_t *cnt;   /* (max_n) each pair's behaviors */
    uint32_t *last;  /* (max_n) each pair's latest row; the rows before it follow prev */
    uint32_t *prev;  /* (max_n) each row's previous row of the same pair, or SOFT_DEDUP_NONE */
    uint32_t *tie;   /* (max_n) scratch of expand */
    uint32_t *top;   /* (k + 1) scratch of expand: the tied pairs */
    uint32_t *above; /* (k + 1) the pairs above the K-th score */
    uint32_t *rbuf;  /* (2 k) their rows taken */
    uint32_t *mat;   /* (max_n) where a pair's newest rows sit in pool, or SOFT_DEDUP_NONE (not walked yet) */
    uint32_t *pool;  /* (max_n) pairs' newest min(cnt, k) rows, newest first, as candidates need them */
    size_t pool_n;
    uint32_t **heads;       /* (2 (k + 1)) merge cursors */
    int64_t *headv;         /* (k + 1) their rows */
    uint64_t *heap;  /* (k + 1) */
    size_t u;        /* distinct pairs of the last build */
} soft_dedup;

size_t soft_dedup_bytes(size_t max_n, size_t k);
void soft_dedup_carve(soft_dedup *s, void *mem, size_t max_n, size_t k);

/* Groups items[i], cats[i] (and tags[i], unless tags is NULL) (i < n <=
 * max_n) into distinct pairs, in order of first appearance; returns their
 * number. */
size_t soft_dedup_build(soft_dedup *s, const uint32_t *items, const uint32_t *cats, const uint8_t *tags, size_t n);

/* The K best behaviors (ascending rows) among the pairs ids[0..m) (NULL:
 * pairs 0..m-1), score[j] being pair ids[j]'s score: exact when those pairs
 * hold every pair that could reach the top K (all of them, or a shortlist
 * known to). Returns the count, min(k, their behaviors); *kth (if not NULL)
 * gets the K-th behavior's score (-inf when they hold fewer than k).
 * O(m) compares, 16 at a time below the running floor, plus O(log k) per
 * pair that enters the running best. */
size_t soft_dedup_expand(soft_dedup *s, const float *score, const uint32_t *ids, size_t m, uint32_t *out,
                         float *kth);

#endif
