/*
 * mimn.h: MIMN, the Multi-channel user Interest Memory Network (Pi et al.,
 * KDD 2019, arXiv 1905.09248, "Practice on Long Sequential User Behavior
 * Modeling for Click-Through Rate Prediction") (private).
 *
 * The model, exactly (E = d_item + d_cat, the memory's width; m = mem_slots;
 * H = d_ctrl; k = miu_k; sigma the logistic function; softplus(x) = ln(1 + e^x)):
 *
 * State carried from behavior to behavior (one user's; all zeros before the
 * first behavior):
 *   h (H) the controller's hidden state   r (E) the last read vector
 *   M (m, E) the memory                    S (m, E) the MIU's per-slot states
 *   g (m) the accumulated (rebalanced) write weights
 *
 * One behavior t with embedding x_t = [item row, cat row] (models/embed.h,
 * the same tables as the target's), from the state (h, r, M, S, g):
 *   controller  h' = GRUCell([x_t, r], h)         PyTorch's nn.GRUCell(2E, H):
 *                 rg = sig(W_ir c + b_ir + W_hr h + b_hr), z = sig(W_iz c + b_iz + W_hz h + b_hz),
 *                 n = tanh(W_in c + b_in + rg * (W_hn h + b_hn)), h' = (1 - z) n + z h
 *   parameters  p = W_o h' + b_o  (4E + 2) = [p_kr (E), p_br, p_kw (E), p_bw, p_e (E), p_a (E)]
 *   heads       for the read head (kr, br) and the write head (kw, bw):
 *                 key k = tanh(p_k), strength beta = 2 (1 + softplus(p_b))
 *                 c(i) = (cos(k, K(i)) + cos(k, M(i))) / 2,   w = softmax_i(beta c)
 *               K = tanh(key_m) (m, E): a learned key per slot (the official code's key_M);
 *               cos(u, v) = u.v / sqrt((|u|^2 + eps) (|v|^2 + eps)), eps = MIMN_COS_EPS
 *   read        r' = sum_i w_r(i) M(i)                      (the memory before this write)
 *   rebalance   gh = g / max(sum_i g(i), 1)  (the slots' share of the writes so far; no gradient)
 *               P = softmax over each row of reshape(W_g gh + b_g, m, m)
 *               wt(j) = sum_i w_w(i) P(i, j)                 (the paper's eqs 3, 4: w~ = w P)
 *   write       e = sig(p_e), a = tanh(p_a)
 *               M'(i) = M(i) * (1 - wt(i) e) + wt(i) a
 *               g' = g + wt
 *   MIU         the k slots with the largest w_r (ties: the lower slot) each take a step of a
 *               second GRUCell(2E, E) over [M'(i), x_t] (M' with its gradient stopped):
 *               S'(i) = GRUCell_miu([M'(i), x_t], S(i)); the other slots keep S(i)
 *   state       (h', r', M', S', g')
 *
 * A target a with embedding e_a, from the state (h, r, M, S, g) after the
 * sample's whole history:
 *   [q_k (E), q_b] = W_q e_a + b_q;  k = tanh(q_k), beta = 2 (1 + softplus(q_b))
 *   w_a = softmax_i(beta (cos(k, K(i)) + cos(k, M(i))) / 2)    (the heads' addressing)
 *   read_M = sum_i w_a(i) M(i),  read_S = sum_i w_a(i) S(i)
 *   logit = head([e_a, read_M, read_S, h])   (models/mlp_head.h, input 3E + H; fc-Dice-fc-Dice-fc)
 * Loss (training, labels given): mean BCE + util_reg * (1/B) sum_b Var_i(u_b(i)),
 *   u_b = g_b / max(sum_i g_b(i), 1) (the denominator taken as a constant), Var the population
 *   variance over the m slots: the memory utilization regularization (paper eq. 5), on the share
 *   of the writes each slot took over the sample's whole history.
 *
 * The history: every behavior of the user strictly before the sample's time, in
 * time order (the index's order for ties): model_batch.all_* (train/samples.h,
 * LONG_ALL), however long; or a state folded beforehand (model_batch.mimn_state).
 * Training folds the state over the first n - W behaviors forward only (nothing
 * kept), then runs the last W = min(n, bptt) keeping what backward needs:
 * truncated backpropagation through time. The gradient into the state entering
 * that window is dropped (as the fixture's PyTorch model detaches it), and so is
 * the regularizer's gradient into the writes before it.
 *
 * Choices where the paper or the official code (MIMNCell, model.py Model_MIMN)
 * is vague or where lsim departs from it:
 *   - one read and one write head, content addressing only: no interpolation
 *     with the previous weights, no location shift (the official code's shift
 *     and sharpening are its stand-in for the rebalancing, which follows the
 *     paper's P = softmax(W_g g) here; b_g starts at 3 I, so that P starts close
 *     to the identity and the writes keep their content addressing);
 *   - the key strength: the official code's learned beta = 2 (1 + softplus(.));
 *     no clipping of p (the official code clips it to +-20);
 *   - eps inside the norms, so a zero slot (the memory starts at 0) has a
 *     cosine of 0 and a gradient (the official code: |u||v| + 1e-8);
 *   - the state starts at zero (the official code: learned initial read
 *     vector, random near-zero memory);
 *   - g feeds the rebalancing normalized by its sum (histories of 54,000 make raw
 *     counts useless; the official code divides by a constant 400) and the
 *     regularizer penalizes that share's variance, not the raw counts';
 *   - the MIU: k = 1 slot per behavior by default (the official code's top-1), its
 *     GRU over [M'(i), x_t] (the paper's inputs; the official code uses M(i)),
 *     state width E; the target reads the MIU states with the same weights w_a
 *     as the memory (the official code attends over the last step's MIU
 *     outputs with DIN's unit);
 *   - the readout: a learned read head for the target instead of another
 *     controller step (the official code steps the cell on e_a and feeds its
 *     output layer o2o(h', r')): the same addressing, no GRU step per candidate;
 *     h joins the head input for what the controller remembers of the latest
 *     behaviors. No avg-pooled history, no mean_memory * e_a feature, no
 *     short-term branch (the official code has no other branch either);
 *   - the head is lsim's fc-Dice-fc-Dice-fc (200-80-1), not the official PReLU one;
 *   - bptt (30 by default): docs/MODELS.md gives the measurement behind it.
 *
 * Parameters (PyTorch state_dict style, shapes):
 *   emb.item (n_items + 1, d_item), emb.cat (n_cats + 1, d_cat)
 *   mimn.controller.weight_ih (3H, 2E), .bias_ih (3H), .weight_hh (3H, H), .bias_hh (3H)  (nn.GRUCell)
 *   mimn.o2p.weight (4E + 2, H), mimn.o2p.bias (4E + 2)
 *   mimn.key_m (m, E)
 *   mimn.rebalance.weight (m m, m), mimn.rebalance.bias (m m)       (row-major (m, m) blocks)
 *   mimn.miu.weight_ih (3E, 2E), .bias_ih (3E), .weight_hh (3E, E), .bias_hh (3E)        (nn.GRUCell)
 *   mimn.query.weight (E + 1, E), mimn.query.bias (E + 1)
 *   mlp.* (the head, input 3E + H); buffers mlp.dice{1,2}.running_mean/running_var.
 *
 * Memory: mimn_new sizes everything for max_b and bptt and allocates once; forward
 * and backward allocate nothing, whatever the histories' lengths (a fold keeps one
 * step's activations; the window keeps (max_b, bptt) of them). One mimn per thread.
 */
#ifndef LSIM_MIMN_H
#define LSIM_MIMN_H

#include "esu/din.h"
#include "models/batch.h"
#include "models/params.h"

#include <stddef.h>
#include <stdint.h>

#define MIMN_COS_EPS 1e-6f

typedef struct mimn_config {
    din_config base;    /* embeddings, head widths, Dice momentum (att_*, att_softmax, long_avgpool unused) */
    uint32_t mem_slots; /* m: memory slots (4, the official code's; the paper: 4 to 8) */
    uint32_t d_ctrl;    /* H: the controller's GRU width (E, 36 at the defaults: the official code's hidden = E) */
    uint32_t miu_k;     /* the slots the MIU updates per behavior, 1 .. m (1, the official code's top-1) */
    uint32_t bptt;      /* truncated BPTT: the behaviors backward reaches per sample (30) */
    float util_reg;     /* lambda of the utilization regularizer (0.1; 0 off) */
} mimn_config;

void mimn_config_default(mimn_config *c, uint32_t n_items, uint32_t n_cats);

typedef struct mimn mimn;

/* max_b: the largest batch->b (the workspace does not depend on the histories'
 * lengths). LSIM_E_INVAL for zero sizes or widths, miu_k outside 1 .. m, m > 64,
 * bptt > 100000 or sizes whose products would overflow; LSIM_E_NOMEM. */
int mimn_new(mimn **out, const mimn_config *cfg, size_t max_b);
void mimn_free(mimn *m);
param_set *mimn_params(mimn *m);
param_set *mimn_grads(mimn *m);
param_set *mimn_buffers(mimn *m);
size_t mimn_workspace_bytes(const mimn *m);
const mimn_config *mimn_cfg(const mimn *m);

/* Random initialization, deterministic for a seed: param_set_randomize's rules,
 * then mimn.rebalance.bias = 3 I (flattened (m, m)); running variances 1, means 0. */
void mimn_init(mimn *m, uint64_t seed);

/* Forward: logits (B). batch: target_*, label (or NULL), and the histories:
 * either all_item, all_cat, all_off, all_len (each sample folds its own; at
 * inference a sample with the previous one's offset and length takes its state), or
 * mimn_state (B states, or one with state_shared: nothing is folded; a training
 * forward then keeps no window, so backward reaches the readout and the head
 * only). b <= max_b. train = 1 uses batch statistics in the head's Dice, updates
 * the running ones, and keeps what backward needs. Returns the loss (mean BCE +
 * the utilization regularizer) when labels are set, else 0. */
float mimn_forward(mimn *m, const model_batch *batch, float *logits, int train);

/* Backward of the last training forward: adds d(loss)/d(param) into the
 * gradients (zero them first with param_set_zero(mimn_grads(m))). */
void mimn_backward(mimn *m, const model_batch *batch);

/* ---- The state fold: the contract the User Interest Center builds on ----
 * One user's state is a flat float vector of mimn_state_floats(c) floats:
 *   [h (H) | r (E) | M (m, E) row-major | S (m, E) row-major | g (m)]
 * (H + E + 2 m E + m: 364 floats, 1,456 bytes at the defaults). It depends on the
 * model's parameters: a state folded with one checkpoint means nothing to another.
 * mimn_state_init writes the state before any behavior (all zeros).
 * mimn_state_fold folds n behaviors (dense item and category ids, time order; ids
 * past the vocabulary are out of vocabulary) into state, forward only. It is
 * deterministic and bit-for-bit what the model's forward computes for the same
 * history: the forward folds with this same code, and folding a history in two
 * pieces (a prefix, then the rest) gives the bits of folding it at once. scratch
 * holds mimn_fold_scratch_floats(c) floats, contents undefined after the call.
 * Reads m's parameters only: any number of threads may fold with one model at
 * once, each with its own state and scratch (not while the parameters change).
 * n = 0 leaves state unchanged. The cost is O(n) (docs/MODELS.md gives ns per
 * behavior). */
size_t mimn_state_floats(const mimn_config *c);
void mimn_state_init(const mimn *m, float *state);
void mimn_state_fold(const mimn *m, float *state, const uint32_t *item, const uint32_t *cat, size_t n,
                     float *scratch);
size_t mimn_fold_scratch_floats(const mimn_config *c);

#endif
