/*
 * chain_plan.c: see chain_plan.h. Linear in the number of events plus a sort
 * of the user's distinct categories.
 */
#include "index/chain_plan.h"

#include "lsim.h"

#include <stdlib.h>
#include <string.h>

void chain_plan_init(chain_plan *p)
{
    memset(p, 0, sizeof *p);
}

void chain_plan_free(chain_plan *p)
{
    free(p->groups);
    free(p->map_keys);
    free(p->map_vals);
    memset(p, 0, sizeof *p);
}

static int by_cat(const void *a, const void *b)
{
    const cat_group *x = a, *y = b;
    return (x->cat > y->cat) - (x->cat < y->cat);
}

static int by_count_desc(const void *a, const void *b)
{
    const cat_group *x = *(const cat_group *const *)a, *y = *(const cat_group *const *)b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return (x->cat > y->cat) - (x->cat < y->cat);
}

static uint32_t hash_cat(uint32_t c)
{
    return c * 2654435761u;
}

static int map_reset(chain_plan *p, size_t n)
{
    size_t want = 16;
    while (want < 2 * n) want *= 2;
    if (want > p->map_cap) {
        uint32_t *k = realloc(p->map_keys, want * sizeof *k), *v;
        if (!k) return LSIM_E_NOMEM;
        p->map_keys = k;
        if (!(v = realloc(p->map_vals, want * sizeof *v))) return LSIM_E_NOMEM;
        p->map_vals = v;
        p->map_cap = want;
    }
    memset(p->map_vals, 0xff, p->map_cap * sizeof *p->map_vals);
    return 0;
}

int chain_plan_make(chain_plan *p, ubt_event *grouped, const ubt_event *ev, size_t n,
                    uint32_t own_min, uint32_t mixed_max)
{
    p->n_groups = 0;
    if (map_reset(p, n < 4096 ? n : 4096)) return LSIM_E_NOMEM;
    size_t mask = p->map_cap - 1;
    /* count per category */
    for (size_t i = 0; i < n; i++) {
        uint32_t c = ev[i].cat;
        size_t s = hash_cat(c) & mask;
        while (p->map_vals[s] != UINT32_MAX && p->map_keys[s] != c) s = (s + 1) & mask;
        if (p->map_vals[s] == UINT32_MAX) {
            if (p->n_groups == p->groups_cap) {
                size_t nc = p->groups_cap ? 2 * p->groups_cap : 64;
                cat_group *g = realloc(p->groups, nc * sizeof *g);
                if (!g) return LSIM_E_NOMEM;
                p->groups = g;
                p->groups_cap = nc;
            }
            if ((p->n_groups + 1) * 2 > p->map_cap) {
                /* grow the map and rehash the groups seen so far */
                size_t ng = p->n_groups;
                if (map_reset(p, p->map_cap)) return LSIM_E_NOMEM;
                mask = p->map_cap - 1;
                for (size_t g = 0; g < ng; g++) {
                    size_t t = hash_cat(p->groups[g].cat) & mask;
                    while (p->map_vals[t] != UINT32_MAX) t = (t + 1) & mask;
                    p->map_keys[t] = p->groups[g].cat;
                    p->map_vals[t] = (uint32_t)g;
                }
                s = hash_cat(c) & mask;
                while (p->map_vals[s] != UINT32_MAX) s = (s + 1) & mask;
            }
            p->map_keys[s] = c;
            p->map_vals[s] = (uint32_t)p->n_groups;
            p->groups[p->n_groups++] = (cat_group){c, 0, 0, 0};
        }
        p->groups[p->map_vals[s]].count++;
    }
    /* categories ascending; rebuild the map to the sorted positions */
    qsort(p->groups, p->n_groups, sizeof *p->groups, by_cat);
    for (size_t g = 0; g < p->n_groups; g++) {
        size_t s = hash_cat(p->groups[g].cat) & mask;
        while (p->map_keys[s] != p->groups[g].cat || p->map_vals[s] == UINT32_MAX) s = (s + 1) & mask;
        p->map_vals[s] = (uint32_t)g;
    }
    uint32_t off = 0, mixed = 0;
    for (size_t g = 0; g < p->n_groups; g++) {
        p->groups[g].start = off;
        off += p->groups[g].count;
        p->groups[g].own = p->groups[g].count >= own_min;
        if (!p->groups[g].own) mixed += p->groups[g].count;
    }
    if (mixed > mixed_max) {
        cat_group **order = malloc(p->n_groups * sizeof *order);
        if (!order) return LSIM_E_NOMEM;
        size_t k = 0;
        for (size_t g = 0; g < p->n_groups; g++)
            if (!p->groups[g].own) order[k++] = &p->groups[g];
        qsort(order, k, sizeof *order, by_count_desc);
        for (size_t i = 0; i < k && mixed > mixed_max; i++) {
            order[i]->own = 1;
            mixed -= order[i]->count;
        }
        free(order);
    }
    /* scatter, stable */
    uint32_t *fill = malloc(p->n_groups * sizeof *fill);
    if (!fill) return LSIM_E_NOMEM;
    for (size_t g = 0; g < p->n_groups; g++) fill[g] = p->groups[g].start;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = ev[i].cat;
        size_t s = hash_cat(c) & mask;
        while (p->map_keys[s] != c || p->map_vals[s] == UINT32_MAX) s = (s + 1) & mask;
        grouped[fill[p->map_vals[s]]++] = ev[i];
    }
    free(fill);
    return 0;
}
