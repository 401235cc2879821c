/*
 * mlp_head.c: see mlp_head.h.
 */
#include "models/mlp_head.h"

#include "models/nn.h"

#include <stdio.h>
#include <string.h>

static const char *const param_names[8] = {"fc1.weight", "fc1.bias", "dice1.alpha", "fc2.weight",
                                           "fc2.bias",   "dice2.alpha", "fc3.weight", "fc3.bias"};
static const char *const buffer_names[4] = {"dice1.running_mean", "dice1.running_var", "dice2.running_mean",
                                            "dice2.running_var"};

static void full_name(char *out, const char *prefix, const char *name)
{
    snprintf(out, PARAM_NAME_MAX, "%s.%s", prefix, name);
}

int mlp_head_register(param_list *p, param_list *buf, const char *prefix, size_t in, size_t h1, size_t h2)
{
    size_t shapes[8][2] = {{h1, in}, {h1, 0}, {h1, 0}, {h2, h1}, {h2, 0}, {h2, 0}, {1, h2}, {1, 0}};
    size_t bshapes[4] = {h1, h1, h2, h2};
    char name[PARAM_NAME_MAX];
    int rc = 0;
    for (int i = 0; i < 8 && !rc; i++) {
        full_name(name, prefix, param_names[i]);
        rc = param_list_add(p, name, shapes[i][1] ? 2 : 1, shapes[i]);
    }
    for (int i = 0; i < 4 && !rc; i++) {
        full_name(name, prefix, buffer_names[i]);
        rc = param_list_add(buf, name, 1, &bshapes[i]);
    }
    return rc;
}

void mlp_head_bind(mlp_head *h, const char *prefix, size_t in, size_t h1, size_t h2, float momentum,
                   const param_set *p, const param_set *g, const param_set *buf)
{
    h->in = in;
    h->h1 = h1;
    h->h2 = h2;
    h->momentum = momentum;
    const float **pv[8] = {&h->w1, &h->b1, &h->al1, &h->w2, &h->b2, &h->al2, &h->w3, &h->b3};
    float **gv[8] = {&h->gw1, &h->gb1, &h->gal1, &h->gw2, &h->gb2, &h->gal2, &h->gw3, &h->gb3};
    float **bv[4] = {&h->rm1, &h->rv1, &h->rm2, &h->rv2};
    char name[PARAM_NAME_MAX];
    for (int i = 0; i < 8; i++) {
        full_name(name, prefix, param_names[i]);
        *pv[i] = param_find(p, name);
        *gv[i] = g ? param_find(g, name) : NULL;
    }
    for (int i = 0; i < 4; i++) {
        full_name(name, prefix, buffer_names[i]);
        *bv[i] = param_find(buf, name);
    }
}

void mlp_head_carve(mlp_head *h, arena *a, size_t max_b)
{
    h->z1 = ARENA_FLOATS(a, max_b * h->h1);
    h->d1 = ARENA_FLOATS(a, max_b * h->h1);
    h->z2 = ARENA_FLOATS(a, max_b * h->h2);
    h->d2 = ARENA_FLOATS(a, max_b * h->h2);
    h->logit = ARENA_FLOATS(a, max_b);
    h->mean1 = ARENA_FLOATS(a, h->h1);
    h->var1 = ARENA_FLOATS(a, h->h1);
    h->mean2 = ARENA_FLOATS(a, h->h2);
    h->var2 = ARENA_FLOATS(a, h->h2);
    h->dd2 = ARENA_TRAIN_FLOATS(a, max_b * h->h2);
    h->dz2 = ARENA_TRAIN_FLOATS(a, max_b * h->h2);
    h->dd1 = ARENA_TRAIN_FLOATS(a, max_b * h->h1);
    h->dz1 = ARENA_TRAIN_FLOATS(a, max_b * h->h1);
}

void mlp_head_reset_buffers(mlp_head *h)
{
    memset(h->rm1, 0, h->h1 * sizeof(float));
    memset(h->rm2, 0, h->h2 * sizeof(float));
    for (size_t i = 0; i < h->h1; i++) h->rv1[i] = 1.0f;
    for (size_t i = 0; i < h->h2; i++) h->rv2[i] = 1.0f;
}

void mlp_head_forward(mlp_head *h, float *logit, const float *inp, size_t b, int train)
{
    h->inp = inp;
    h->b = b;
    nn_linear_forward(h->z1, inp, h->w1, h->b1, b, h->in, h->h1);
    nn_dice_forward(h->d1, h->mean1, h->var1, h->rm1, h->rv1, h->z1, h->al1, h->momentum, train, b, h->h1);
    nn_linear_forward(h->z2, h->d1, h->w2, h->b2, b, h->h1, h->h2);
    nn_dice_forward(h->d2, h->mean2, h->var2, h->rm2, h->rv2, h->z2, h->al2, h->momentum, train, b, h->h2);
    nn_linear_forward(h->logit, h->d2, h->w3, h->b3, b, h->h2, 1);
    if (logit) memcpy(logit, h->logit, b * sizeof(float));
}

void mlp_head_backward(mlp_head *h, float *dinp, const float *dlogit)
{
    size_t b = h->b;
    memset(h->dd2, 0, b * h->h2 * sizeof(float));
    nn_linear_backward(h->dd2, h->gw3, h->gb3, dlogit, h->d2, h->w3, b, h->h2, 1);
    memset(h->dz2, 0, b * h->h2 * sizeof(float));
    nn_dice_backward(h->dz2, h->gal2, h->dd2, h->z2, h->al2, h->mean2, h->var2, b, h->h2);
    memset(h->dd1, 0, b * h->h1 * sizeof(float));
    nn_linear_backward(h->dd1, h->gw2, h->gb2, h->dz2, h->d1, h->w2, b, h->h1, h->h2);
    memset(h->dz1, 0, b * h->h1 * sizeof(float));
    nn_dice_backward(h->dz1, h->gal1, h->dd1, h->z1, h->al1, h->mean1, h->var1, b, h->h1);
    nn_linear_backward(dinp, h->gw1, h->gb1, h->dz1, h->inp, h->w1, b, h->in, h->h1);
}
