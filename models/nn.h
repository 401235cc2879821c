/*
 * nn.h: the numerical kernels the models are built from (private).
 *
 * Conventions (llm.c style), which every kernel here follows:
 *   - float32, row-major. A shape comment names each buffer: `// out (N, OC)`.
 *   - Signature order: outputs, inputs, weights, then dimensions.
 *   - Forward kernels overwrite their outputs.
 *   - Backward kernels ADD into gradient buffers (+=); the caller zeroes them.
 *     A gradient pointer may be NULL when that gradient is not wanted (e.g.
 *     dinp of a layer whose input is data).
 *   - Weights use PyTorch's layouts (nn.Linear weight is (OC, C)), so a
 *     PyTorch state_dict maps onto them without transposes.
 *   - Sizes are size_t; no product of dimensions is formed in int.
 *   - Kernels allocate nothing and never fail; they assume valid arguments.
 *   - Each kernel with a BLAS path has a plain C reference beside it; when
 *     nn_force_reference(1) is set (or LSIM_NN_REFERENCE=1 in the
 *     environment, read once by nn_init_from_env) every kernel takes its
 *     reference path. Tests compare the two.
 *
 * Numerical truth comes from tests/golden/gen_*.py (PyTorch), whose fixtures the
 * C tests compare against.
 */
#ifndef LSIM_NN_H
#define LSIM_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- switches ----
 * A process-wide plain int, meant for tests and benchmarks: set it before
 * any thread runs a kernel, not while they do. */
void nn_force_reference(int on);
int nn_reference_forced(void);
void nn_init_from_env(void);

/* ---- dot product (8 partial sums: vectorized, in a fixed order) ---- */
float nn_dot(const float *a, const float *b, size_t n);

/* ---- linear: out = inp @ w^T + b ---- */
// out (N, OC), inp (N, C), w (OC, C), b (OC) or NULL
void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, size_t n, size_t c,
                       size_t oc);
/* out += inp @ w^T: accumulates onto what out holds (a bias or other terms
 * already laid down), sparing a pass over out */
// out (N, OC), inp (N, C), w (OC, C)
void nn_linear_forward_acc(float *out, const float *inp, const float *w, size_t n, size_t c, size_t oc);
// dinp (N, C), dw (OC, C), db (OC): each may be NULL; dout (N, OC)
void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        size_t n, size_t c, size_t oc);

/* ---- embedding: out[i] = table[min(ids[i], vocab)] (row `vocab` is the out-of-vocabulary row) ---- */
// out (N, C), ids (N), table (vocab + 1, C)
void nn_embedding_forward(float *out, const uint32_t *ids, const float *table, size_t n, size_t vocab, size_t c);
// dtable (vocab + 1, C)
void nn_embedding_backward(float *dtable, const float *dout, const uint32_t *ids, size_t n, size_t vocab, size_t c);

/* ---- elementwise activations ---- */
// out, inp (N)
void nn_sigmoid_forward(float *out, const float *inp, size_t n);
void nn_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
void nn_tanh_forward(float *out, const float *inp, size_t n);
void nn_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);
void nn_relu_forward(float *out, const float *inp, size_t n);
void nn_relu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* PReLU with one alpha per channel (PyTorch nn.PReLU(C) on (N, C)) */
// out, inp (N, C), alpha (C)
void nn_prelu_forward(float *out, const float *inp, const float *alpha, size_t n, size_t c);
// dalpha (C) may be NULL
void nn_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *inp, const float *alpha, size_t n,
                       size_t c);

/* ---- Dice (DIN): p = sigmoid((x - mean) / sqrt(var + eps)), out = p x + (1 - p) alpha x ----
 * Training (train = 1): mean and var are the batch's, per channel over N
 * (var biased, as batch normalization normalizes), saved in mean/var for
 * backward, and the running statistics move:
 *   run_mean = (1 - m) run_mean + m mean;  run_var = (1 - m) run_var + m var_unbiased
 * Inference (train = 0): mean/var are the running statistics (the arguments
 * mean/var are then ignored). eps = NN_DICE_EPS. This is PyTorch's
 * BatchNorm1d(C, eps=1e-8, momentum=m, affine=False) followed by the gate. */
#define NN_DICE_EPS 1e-8f
// out, inp (N, C); alpha, run_mean, run_var, mean, var (C)
void nn_dice_forward(float *out, float *mean, float *var, float *run_mean, float *run_var, const float *inp,
                     const float *alpha, float momentum, int train, size_t n, size_t c);
/* Backward of the training forward (gradients through the batch statistics). */
void nn_dice_backward(float *dinp, float *dalpha, const float *dout, const float *inp, const float *alpha,
                      const float *mean, const float *var, size_t n, size_t c);

/* ---- softmax over the last dimension with a length mask ----
 * Row r holds len[r] valid entries (the first ones; a len above t counts as
 * t); the others are padding and get probability 0. A row with len 0 is all
 * zeros (no NaN). */
// out, inp (R, T), len (R)
void nn_softmax_masked_forward(float *out, const float *inp, const uint32_t *len, size_t rows, size_t t);
void nn_softmax_masked_backward(float *dinp, const float *dout, const float *out, const uint32_t *len, size_t rows,
                                size_t t);

/* ---- layer normalization over the last dimension (PyTorch nn.LayerNorm(C), eps) ---- */
// out, inp (N, C), gamma, beta (C); mean, rstd (N) saved for backward
void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *gamma,
                          const float *beta, float eps, size_t n, size_t c);
void nn_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                           const float *gamma, const float *mean, const float *rstd, size_t n, size_t c);

/* ---- loss: binary cross-entropy with logits, mean over N ---- */
// logits, labels (N); returns the mean loss; dlogits (N) += (sigmoid(logit) - label) / N * scale
float nn_bce_logits_forward(const float *logits, const float *labels, size_t n);
void nn_bce_logits_backward(float *dlogits, const float *logits, const float *labels, float scale, size_t n);

#endif
