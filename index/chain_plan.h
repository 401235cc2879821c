/*
 * chain_plan.h: which of a user's categories get a chain of their own and
 * which share the user's mixed chain (private).
 *
 * A category gets its own chain when the user has at least own_min events in
 * it; then, while the remaining (mixed) events exceed mixed_max, the largest
 * remaining category is promoted too (ties: the smaller category id). So a
 * hard search reads either one category's own chain, or a mixed chain of at
 * most about mixed_max events.
 */
#ifndef LSIM_CHAIN_PLAN_H
#define LSIM_CHAIN_PLAN_H

#include "storage/block_codec.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cat_group {
    uint32_t cat;
    uint32_t count;
    uint32_t start; /* offset of its events in the grouped array */
    int own;        /* 1: own chain, 0: mixed */
} cat_group;

typedef struct chain_plan {
    cat_group *groups; /* ascending cat */
    size_t n_groups, groups_cap;
    uint32_t *map_keys, *map_vals; /* cat -> group index, open addressing */
    size_t map_cap;
} chain_plan;

void chain_plan_init(chain_plan *p);
void chain_plan_free(chain_plan *p);

/* Groups ev[0..n) (time-ordered) by category into grouped[0..n) (each
 * category's events contiguous, time order kept, categories ascending) and
 * decides own/mixed. Returns 0 or LSIM_E_NOMEM. */
int chain_plan_make(chain_plan *p, ubt_event *grouped, const ubt_event *ev, size_t n,
                    uint32_t own_min, uint32_t mixed_max);

#endif
