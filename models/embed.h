/*
 * embed.h: the behavior embedding: a behavior (item, category) is the
 * concatenation of its item's row and its category's row (private).
 *
 * Parameters: emb.item (n_items + 1, d_item), emb.cat (n_cats + 1, d_cat).
 * The last row of each table is the out-of-vocabulary row: an id >= the
 * vocabulary size (an item the index learned after the model was trained)
 * uses it, never an error.
 */
#ifndef LSIM_EMBED_H
#define LSIM_EMBED_H

#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct embed_layer {
    uint32_t n_items, n_cats, d_item, d_cat;
    const float *item, *cat; /* (n_items + 1, d_item), (n_cats + 1, d_cat) */
    float *g_item, *g_cat;   /* their gradients; NULL without a gradient set */
} embed_layer;

int embed_register(param_list *p, uint32_t n_items, uint32_t n_cats, uint32_t d_item, uint32_t d_cat);
void embed_bind(embed_layer *e, uint32_t n_items, uint32_t n_cats, uint32_t d_item, uint32_t d_cat,
                const param_set *p, const param_set *g);

static inline size_t embed_width(const embed_layer *e)
{
    return (size_t)e->d_item + e->d_cat;
}

// out (N, E), item, cat (N)
void embed_forward(const embed_layer *e, float *out, const uint32_t *item, const uint32_t *cat, size_t n);
// gradients += dout (N, E) at the rows used
void embed_backward(embed_layer *e, const float *dout, const uint32_t *item, const uint32_t *cat, size_t n);

#endif
