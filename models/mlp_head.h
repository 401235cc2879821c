/*
 * mlp_head.h: the prediction head shared by the models: fc -> Dice -> fc ->
 * Dice -> fc -> one logit (DIN's 200-80-2 with the 2-way softmax written as
 * one sigmoid logit, which is the same function) (private).
 *
 * Parameters, under a prefix P ("mlp" for a model's head, "gsu.mlp" for
 * SIM's auxiliary GSU head): P.fc1.weight (h1, in), P.fc1.bias (h1),
 * P.dice1.alpha (h1), P.fc2.weight (h2, h1), P.fc2.bias, P.dice2.alpha (h2),
 * P.fc3.weight (1, h2), P.fc3.bias (1).
 * Buffers: P.dice{1,2}.running_mean / running_var (Dice at inference).
 */
#ifndef LSIM_MLP_HEAD_H
#define LSIM_MLP_HEAD_H

#include "models/arena.h"
#include "models/params.h"

#include <stddef.h>

typedef struct mlp_head {
    size_t in, h1, h2;
    float momentum;
    const float *w1, *b1, *al1, *w2, *b2, *al2, *w3, *b3;
    float *gw1, *gb1, *gal1, *gw2, *gb2, *gal2, *gw3, *gb3;
    float *rm1, *rv1, *rm2, *rv2;
    /* activations of the last forward (max_b rows) */
    const float *inp;
    size_t b;
    float *z1, *d1, *z2, *d2, *logit, *mean1, *var1, *mean2, *var2;
    float *dd2, *dz2, *dd1, *dz1;
} mlp_head;

int mlp_head_register(param_list *p, param_list *buf, const char *prefix, size_t in, size_t h1, size_t h2);
void mlp_head_bind(mlp_head *h, const char *prefix, size_t in, size_t h1, size_t h2, float momentum,
                   const param_set *p, const param_set *g, const param_set *buf);
void mlp_head_carve(mlp_head *h, arena *a, size_t max_b);
/* Running variances to 1, means to 0 (a fresh model). */
void mlp_head_reset_buffers(mlp_head *h);

// logit (B), inp (B, in): inp must stay unchanged until backward
void mlp_head_forward(mlp_head *h, float *logit, const float *inp, size_t b, int train);
// dinp (B, in) += ; dlogit (B)
void mlp_head_backward(mlp_head *h, float *dinp, const float *dlogit);

#endif
