/*
 * din_unit.h: DIN's local activation unit: attention pooling of a user's
 * behaviors toward the target item (private).
 *
 *   x_j = [e_j, e_a, e_j - e_a, e_j * e_a]                       (4E)
 *   s_j = fc3(sigmoid(fc2(sigmoid(fc1(x_j)))))    widths h1, h2, 1 (80, 40)
 *   w_j = s_j (the paper: no softmax) or softmax over the sample's behaviors
 *   v   = sum_j w_j e_j                                            (E)
 * Behaviors come packed (models/seq_pack.h). A sample without behaviors
 * gets v = 0. Parameters, under a prefix P (DIN uses "att"):
 * P.fc1.weight (h1, 4E), P.fc1.bias, P.fc2.weight (h2, h1), P.fc2.bias,
 * P.fc3.weight (1, h2), P.fc3.bias (1).
 */
#ifndef LSIM_DIN_UNIT_H
#define LSIM_DIN_UNIT_H

#include "models/arena.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

#define DIN_UNIT_GROUPS 8

typedef struct din_unit {
    size_t e, h1, h2;
    int softmax;
    const float *w1, *b1, *w2, *b2, *w3, *b3;
    float *gw1, *gb1, *gw2, *gb2, *gw3, *gb3;
    /* the last forward (inputs are the caller's and must stay until backward) */
    const float *ea, *es;
    const uint32_t *off;
    size_t b, r;
    float *x, *a1, *a2, *sc, *w;
    float *dx, *da1, *da2, *dp1, *dp2, *dsc, *dw;
    /* fc1 folded by its column blocks (see below): wj = W1 + W3, wa = W2 - W3,
     * wd = W4 (h1, E) each; w2e = [wj | wd] (h1, 2E); q (B, h1) the
     * per-sample term wa e_a + b1; p (S, h1) the shared path's per-behavior term */
    float *wj, *wa, *wd, *w2e, *p, *q;
    /* the shared path's second split (see din_unit_forward_shared): split = d_item (0: none),
     * wdi (h1, split) and wdc (h1, E - split) wd's column blocks; grp (rows) each history
     * row's group, rep (DIN_UNIT_GROUPS) a row of each; qg (B, groups, h1), zc (B, groups, E) */
    size_t split;
    float *wdi, *wdc, *qg, *zc;
    float *wzt, *w2t; /* the fused pair kernel's weights (esu/din_pairs.h) */
    uint32_t *grp, *rep;
    float *gw2e, *g2; /* backward scratch: d[wj | wd] (h1, 2E), d(W2) (h1, E) */
} din_unit;

int din_unit_register(param_list *p, const char *prefix, size_t e, size_t h1, size_t h2);
void din_unit_bind(din_unit *u, const char *prefix, size_t e, size_t h1, size_t h2, int softmax, const param_set *p,
                   const param_set *g);
/* max_rows: the packed rows of a batch; max_shared: the longest history
 * din_unit_forward_shared takes (its per-behavior rows). */
void din_unit_carve(din_unit *u, arena *a, size_t max_b, size_t max_rows, size_t max_shared);

/* Both forwards fold fc1 of [e_j, e_a, e_j - e_a, e_j * e_a] by its column
 * blocks [W1 | W2 | W3 | W4] into (W1 + W3) e_j + W4 (e_j * e_a) per row and
 * (W2 - W3) e_a + b1 once per sample: 2E inputs a row instead of 4E, half
 * of fc1's work in the forward and in the backward. Backward maps the
 * gradients back: dW1 = G1, dW2 = G2, dW3 = G1 - G2, dW4 = G4 with
 * G1 = sum dpre e_j^T, G2 = sum dpre e_a^T, G4 = sum dpre (e_j * e_a)^T.
 * The same function as the unfolded form, summed in another order (the
 * PyTorch fixtures hold it to 1e-5 / 1e-4). */
// v (B, E); ea (B, E); es (R, E) packed; off (B + 1)
void din_unit_forward(din_unit *u, float *v, const float *ea, const float *es, const uint32_t *off, size_t b);
// dea (B, E) +=, des (R, E) +=; dv (B, E)
void din_unit_backward(din_unit *u, float *dea, float *des, const float *dv);

/* The same forward when all B samples share one history es (S, E), as the
 * candidates of one request do (inference only: no backward follows it).
 * fc1 of [e_j, e_a, e_j - e_a, e_j * e_a] splits by its column blocks
 * [W1 | W2 | W3 | W4] into (W1 + W3) e_j + (W2 - W3) e_a + W4 (e_j * e_a):
 * the first term is computed once per behavior, the second once per
 * candidate, and only the third for every (candidate, behavior) pair, with
 * E inputs instead of 4E. Equal to din_unit_forward up to float rounding
 * (tested); din_unit_forward is its reference. A history that repeats a
 * behavior may come as its distinct rows es (S) and map (N) from each of
 * its N rows, in order, to its distinct row (or NULL: N = S, every row
 * distinct): every occurrence has the same score, so the MLP runs once per
 * distinct row, and the weights and v = sum_j w_j e_j are then taken over
 * the N rows in order, the same operations as the general path's.
 * With split = d_item set (the branch sets it), W4 (e_j * e_a) splits once
 * more by the embedding's [item | category] blocks: the category term
 * depends only on (the behavior's category, the candidate), and a short
 * history has few categories (the behaviors come in sessions), so it is
 * computed once per (history category, candidate) (up to DIN_UNIT_GROUPS
 * of them; more, and the path keeps the whole W4 per pair), and only the
 * item term per pair: d_item inputs instead of E. */
// v (B, E); ea (B, E); es (S, E), S <= max_shared; map (N) or NULL
void din_unit_forward_shared(din_unit *u, float *v, const float *ea, const float *es, size_t s, const uint32_t *map,
                             size_t n, size_t b);

#endif
