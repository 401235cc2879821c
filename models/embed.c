/*
 * embed.c: see embed.h.
 */
#include "models/embed.h"

#include <string.h>

int embed_register(param_list *p, uint32_t n_items, uint32_t n_cats, uint32_t d_item, uint32_t d_cat)
{
    size_t si[2] = {(size_t)n_items + 1, d_item}, sc[2] = {(size_t)n_cats + 1, d_cat};
    int rc = param_list_add(p, "emb.item", 2, si);
    return rc ? rc : param_list_add(p, "emb.cat", 2, sc);
}

void embed_bind(embed_layer *e, uint32_t n_items, uint32_t n_cats, uint32_t d_item, uint32_t d_cat,
                const param_set *p, const param_set *g)
{
    e->n_items = n_items;
    e->n_cats = n_cats;
    e->d_item = d_item;
    e->d_cat = d_cat;
    e->item = param_find(p, "emb.item");
    e->cat = param_find(p, "emb.cat");
    e->g_item = g ? param_find(g, "emb.item") : NULL;
    e->g_cat = g ? param_find(g, "emb.cat") : NULL;
}

void embed_forward(const embed_layer *e, float *out, const uint32_t *item, const uint32_t *cat, size_t n)
{
    size_t E = embed_width(e);
    for (size_t i = 0; i < n; i++) {
        uint32_t it = item[i] < e->n_items ? item[i] : e->n_items;
        uint32_t ct = cat[i] < e->n_cats ? cat[i] : e->n_cats;
        /* loops, not memcpy: rows of a few dozen floats, and a request embeds thousands */
        const float *si = e->item + (size_t)it * e->d_item, *sc = e->cat + (size_t)ct * e->d_cat;
        float *o = out + i * E;
        for (size_t k = 0; k < e->d_item; k++) o[k] = si[k];
        for (size_t k = 0; k < e->d_cat; k++) o[e->d_item + k] = sc[k];
    }
}

void embed_backward(embed_layer *e, const float *dout, const uint32_t *item, const uint32_t *cat, size_t n)
{
    size_t E = embed_width(e);
    for (size_t i = 0; i < n; i++) {
        uint32_t it = item[i] < e->n_items ? item[i] : e->n_items;
        uint32_t ct = cat[i] < e->n_cats ? cat[i] : e->n_cats;
        float *ri = e->g_item + (size_t)it * e->d_item, *rc = e->g_cat + (size_t)ct * e->d_cat;
        const float *d = dout + i * E;
        for (size_t k = 0; k < e->d_item; k++) ri[k] += d[k];
        for (size_t k = 0; k < e->d_cat; k++) rc[k] += d[e->d_item + k];
    }
}
