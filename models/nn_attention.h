/*
 * nn_attention.h: a transformer encoder block as kernels (private): DSIN's
 * session interest extractor, and any model that wants self-attention over
 * short padded sequences.
 *
 * Conventions: those of models/nn.h (float32 row-major; outputs, inputs,
 * weights, dimensions; forward overwrites its outputs; backward ADDS (+=)
 * into gradient buffers, any of which may be NULL; sizes are size_t; no
 * allocation, no failure; the linear layers take a plain C reference path
 * when nn_reference_forced(), the attention core is plain C on both paths).
 * Dimensions: N sequences, T steps (the padded length), C model width,
 * F feed-forward width, NH heads of D = C / NH units (NH must divide C).
 *
 * The block, exactly PyTorch's nn.TransformerEncoderLayer(C, NH,
 * dim_feedforward=F, dropout=0, activation="relu", layer_norm_eps=1e-5,
 * batch_first=True, norm_first=False) with src_key_padding_mask = padding:
 *   [q; k; v] = W_in x + b_in                        (per row; q, k, v of C)
 *   per head h (units h D .. h D + D - 1 of q, k, v):
 *     p_ij = softmax_j(q_i . k_j / sqrt(D)) over the valid keys j < len
 *     ctx_i = sum_j p_ij v_j
 *   a = W_out ctx + b_out
 *   y = LN1(x + a)                                   (post-norm)
 *   z = LN2(y + W_2 relu(W_1 y + b_1) + b_2)         out = z
 * Weights in PyTorch's layout, so the layer's state_dict maps on by name
 * (nn_encoder_weights lists them).
 *
 * Batching and masking:
 *   - Sequence n holds len[n] valid steps (a len above T counts as T), the
 *     first ones of its row: inp[n, 0 .. len[n]-1]. Steps t >= len[n] are
 *     padding: never read (they may hold anything, NaN included), neither as
 *     queries nor as keys.
 *   - out at padded steps is 0; a sequence with len 0 is all 0 (PyTorch
 *     would give NaN there: every key masked).
 *   - dout at padded steps is ignored; dinp at padded steps receives += 0
 *     (nothing is added). Weight gradients come from the valid steps only.
 * Internally the valid rows are packed (sum(len) rows), so padding costs
 * nothing: the four linear layers are one GEMM each over the packed rows.
 *
 * Memory: the caller owns two buffers per call.
 *   saved   written by forward, read (never written) by backward: the packed
 *           input, the projections, the attention probabilities, the
 *           pre-norm sums with their statistics, the FFN activations. Sized
 *           by nn_encoder_saved_floats(N, T, C, F, NH). It must stay
 *           untouched between a forward and its backward; backward may run
 *           several times on one forward (gradients then accumulate).
 *   scratch temporaries of backward (forward uses none; it may be passed
 *           anyway); sized by nn_encoder_scratch_floats(N, T, C, F, NH);
 *           contents undefined after a call; must not overlap saved.
 * Neither is read before it is written, so neither needs zeroing.
 * The layout inside saved depends on (N, T, C, F, NH): backward must get the
 * same dimensions and lengths as its forward.
 *
 * What this is not: causal or additive masks, dropout, pre-norm (norm_first),
 * GELU, cross-attention, distinct key/value widths.
 */
#ifndef LSIM_NN_ATTENTION_H
#define LSIM_NN_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#define NN_ENCODER_LN_EPS 1e-5f

/* The weights, named by their nn.TransformerEncoderLayer state_dict keys. */
typedef struct nn_encoder_weights {
    const float *in_w;  /* (3C, C) self_attn.in_proj_weight: rows [W_q; W_k; W_v] */
    const float *in_b;  /* (3C)    self_attn.in_proj_bias */
    const float *out_w; /* (C, C)  self_attn.out_proj.weight */
    const float *out_b; /* (C)     self_attn.out_proj.bias */
    const float *l1_w;  /* (F, C)  linear1.weight */
    const float *l1_b;  /* (F)     linear1.bias */
    const float *l2_w;  /* (C, F)  linear2.weight */
    const float *l2_b;  /* (C)     linear2.bias */
    const float *n1_w;  /* (C)     norm1.weight */
    const float *n1_b;  /* (C)     norm1.bias */
    const float *n2_w;  /* (C)     norm2.weight */
    const float *n2_b;  /* (C)     norm2.bias */
} nn_encoder_weights;

/* Their gradients, the same shapes; backward adds (+=) into each non-NULL one. */
typedef struct nn_encoder_grads {
    float *in_w, *in_b, *out_w, *out_b, *l1_w, *l1_b, *l2_w, *l2_b, *n1_w, *n1_b, *n2_w, *n2_b;
} nn_encoder_grads;

/* saved: x (NT, C), qkv (NT, 3C), att (N, NH, T, T), ctx, r1, y1, r2 (NT, C),
 * LN statistics 4 NT, FFN pre- and post-activation (NT, F) */
size_t nn_encoder_saved_floats(size_t N, size_t T, size_t C, size_t F, size_t NH);
/* scratch (backward): 6 (NT, C) + (NT, F) + T */
size_t nn_encoder_scratch_floats(size_t N, size_t T, size_t C, size_t F, size_t NH);

// out (N, T, C), saved, scratch (unused, may be NULL); inp (N, T, C), len (N)
void nn_encoder_forward(float *out, float *saved, float *scratch, const float *inp, const uint32_t *len,
                        const nn_encoder_weights *w, size_t N, size_t T, size_t C, size_t F, size_t NH);
/* Backward of L with dL/dout = dout (N, T, C). dinp (N, T, C) += (may be
 * NULL); g: += into each non-NULL member (g itself may be NULL). saved: the
 * forward's; len, w, dimensions: as given to the forward. */
void nn_encoder_backward(float *dinp, const nn_encoder_grads *g, float *scratch, const float *dout,
                         const float *saved, const uint32_t *len, const nn_encoder_weights *w, size_t N, size_t T,
                         size_t C, size_t F, size_t NH);

#endif
