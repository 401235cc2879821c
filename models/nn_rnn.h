/*
 * nn_rnn.h: the recurrent kernels of the models (private): DIEN's GRU and
 * AUGRU, PyTorch's LSTM, and DSIN's Bi-LSTM.
 *
 * Conventions: those of models/nn.h (float32 row-major; outputs, inputs,
 * weights, dimensions; forward overwrites its outputs; backward ADDS (+=)
 * into gradient buffers, any of which may be NULL; sizes are size_t; no
 * allocation, no failure; a plain C reference path is taken when
 * nn_reference_forced()). Dimensions: B sequences, T steps (the padded
 * length), C input features, H hidden units.
 *
 * Batching and masking, the same for every kernel here:
 *   - Sequence b holds len[b] valid steps (0 <= len[b] <= T), the first ones
 *     of its row: inp[b, 0 .. len[b]-1]. Steps t >= len[b] are padding.
 *   - At a padded step the state is carried unchanged and the output is 0.
 *     The final state of sequence b is therefore its state after step
 *     len[b]-1; an empty sequence (len 0) keeps the initial state.
 *   - The initial state (h_0, and c_0 for the LSTM) is always 0.
 *   - The padded steps of inp are never used in forward, but backward forms
 *     dW += dpre^T inp over all B*T rows with dpre = 0 at padded steps, so
 *     padded inputs must be finite (any finite value; usually 0). dinp at
 *     padded steps receives += 0.
 *   - dout at padded steps is ignored (those outputs are constants).
 *
 * Memory: the caller owns two buffers per call.
 *   saved   written by forward, read (never written) by backward: the gate
 *           activations and the states entering each step. Sized by
 *           nn_*_saved_floats(B, T, C, H). It must stay untouched between a
 *           forward and its backward; backward may be called several times on
 *           one forward (gradients then accumulate).
 *   scratch temporaries of forward and of backward, contents undefined after
 *           either call; sized by nn_*_scratch_floats(B, T, C, H) (one size
 *           serves both directions), or by nn_*_forward_scratch_floats for
 *           a caller that never runs backward (a few rows: the backward's
 *           is (B, T, .)). It must not overlap saved.
 * Neither is read before it is written, so neither needs zeroing.
 *
 * BLAS: the input projections (and, in backward, dinp and dW) are one GEMM
 * over all B*T rows; the recurrent products are one (B, H) x (H, kH) GEMM
 * per step, over the rows 0 .. n_active-1 where n_active is one past the
 * last sequence still running at that step (sorting a batch by decreasing
 * length makes every step's GEMM as small as it can be). dU / dW_hh are one
 * GEMM over all steps at the end of backward. BLAS takes int dimensions:
 * B*T, C and 4H must each stay below 2^31.
 *
 * What this is not: multi-layer or dropout RNNs, user-given initial states,
 * PyTorch's nn.GRU (see below).
 */
#ifndef LSIM_NN_RNN_H
#define LSIM_NN_RNN_H

#include <stddef.h>
#include <stdint.h>

/* ==== GRU (DIEN, the interest extractor) ====
 * Exactly the DIEN paper's equations (Zhou et al., AAAI 2019, arXiv 1809.03672):
 *   u_t  = sigmoid(W_u i_t + U_u h_{t-1} + b_u)               update gate
 *   r_t  = sigmoid(W_r i_t + U_r h_{t-1} + b_r)               reset gate
 *   h~_t = tanh(W_h i_t + r_t * (U_h h_{t-1}) + b_h)
 *   h_t  = (1 - u_t) * h_{t-1} + u_t * h~_t
 * Weights, gate blocks in the order [u, r, h]:
 *   w (3H, C)  rows [W_u; W_r; W_h]
 *   u (3H, H)  rows [U_u; U_r; U_h]
 *   b (3H)     [b_u; b_r; b_h]       (one bias vector; b_h sits outside r * (.))
 *
 * NOT a drop-in for PyTorch's nn.GRU state_dict. nn.GRU computes
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h
 * with gate order [r, z, n] in weight_ih_l0 (3H, C) / weight_hh_l0 (3H, H)
 * and two bias vectors bias_ih_l0, bias_hh_l0. So z = 1 - u: to convert,
 * reorder the blocks [r, z, n] -> [u, r, h], negate the z block of both
 * weights and of the summed bias (u = sigmoid(-(z pre-activation))), and set
 * b_u = -(b_iz + b_hz), b_r = b_ir + b_hr, b_h = b_in; this is exact only when
 * b_hn = 0, because PyTorch's b_hn is multiplied by r and this GRU has no
 * such term.
 *
 * Saved per call (nn_gru_saved_floats): gates (B, T, 3H) [u, r, h~]
 * activations; uh (B, T, H) = U_h h_{t-1}; hprev (B, T, H) = h_{t-1}.
 * Every saved tensor holds 0 at padded steps.
 */
size_t nn_gru_saved_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_gru_scratch_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_gru_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H);

// out (B, T, H) or NULL, hfinal (B, H) or NULL, saved, scratch;
// inp (B, T, C), len (B); w (3H, C), u (3H, H), b (3H)
void nn_gru_forward(float *out, float *hfinal, float *saved, float *scratch, const float *inp, const uint32_t *len,
                    const float *w, const float *u, const float *b, size_t B, size_t T, size_t C, size_t H);
/* Backward of L with dL/dout = dout and dL/dhfinal = dhfinal (either NULL
 * means zero). dinp (B, T, C), dw (3H, C), du (3H, H), db (3H): += , each
 * may be NULL. inp, len, w, u: as given to the forward; saved: its output. */
void nn_gru_backward(float *dinp, float *dw, float *du, float *db, float *scratch, const float *dout,
                     const float *dhfinal, const float *saved, const float *inp, const uint32_t *len, const float *w,
                     const float *u, size_t B, size_t T, size_t C, size_t H);

/* ==== AUGRU (DIEN, the interest evolving layer) ====
 * The GRU above with its update gate scaled by an attention score:
 *   u'_t = a_t * u_t
 *   h'_t = (1 - u'_t) * h'_{t-1} + u'_t * h~'_t
 * (u_t, r_t, h~'_t as in the GRU, from h'_{t-1}). att (B, T) is an input
 * (DIEN: a_t = softmax_t(h_t W e_a), computed by the caller); att at padded
 * steps is ignored and its gradient there is not touched. With att = 1 this
 * is the GRU. Same weights, same saved layout and sizes as the GRU (gates
 * hold the unscaled u_t).
 */
size_t nn_augru_saved_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_augru_scratch_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_augru_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H);

// out (B, T, H) or NULL, hfinal (B, H) or NULL; inp (B, T, C), att (B, T), len (B)
void nn_augru_forward(float *out, float *hfinal, float *saved, float *scratch, const float *inp, const float *att,
                      const uint32_t *len, const float *w, const float *u, const float *b, size_t B, size_t T,
                      size_t C, size_t H);
// datt (B, T) += dL/da_t at valid steps (may be NULL); the rest as nn_gru_backward
void nn_augru_backward(float *dinp, float *datt, float *dw, float *du, float *db, float *scratch,
                       const float *dout, const float *dhfinal, const float *saved, const float *inp,
                       const float *att, const uint32_t *len, const float *w, const float *u, size_t B, size_t T,
                       size_t C, size_t H);

/* ==== LSTM (PyTorch nn.LSTM, one layer, one direction, batch_first) ====
 *   [i; f; g; o] = w_ih x_t + b_ih + w_hh h_{t-1} + b_hh   (gate blocks of H)
 *   i, f, o = sigmoid(.), g = tanh(.)
 *   c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
 * Weights are nn.LSTM's, unchanged: w_ih (4H, C) = weight_ih_l0,
 * w_hh (4H, H) = weight_hh_l0, b_ih (4H) = bias_ih_l0, b_hh (4H) = bias_hh_l0.
 * With the masking rules above, out/hfinal/cfinal equal PyTorch's output /
 * h_n / c_n for a pack_padded_sequence(lengths) input (outputs padded with 0
 * by pad_packed_sequence), except that len 0 is allowed here.
 * db_ih and db_hh receive the same gradient (both biases enter the same sum).
 *
 * Saved (nn_lstm_saved_floats): gates (B, T, 4H) [i, f, g, o] activations;
 * hprev, cprev (B, T, H) = h_{t-1}, c_{t-1}; tc (B, T, H) = tanh(c_t);
 * 0 at padded steps.
 */
size_t nn_lstm_saved_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_lstm_scratch_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_lstm_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H);

// out (B, T, H) or NULL, hfinal (B, H) or NULL, cfinal (B, H) or NULL;
// inp (B, T, C), len (B); w_ih (4H, C), w_hh (4H, H), b_ih (4H), b_hh (4H)
void nn_lstm_forward(float *out, float *hfinal, float *cfinal, float *saved, float *scratch, const float *inp,
                     const uint32_t *len, const float *w_ih, const float *w_hh, const float *b_ih,
                     const float *b_hh, size_t B, size_t T, size_t C, size_t H);
// dout (B, T, H), dhfinal (B, H), dcfinal (B, H): each may be NULL (zero);
// dinp (B, T, C), dw_ih (4H, C), dw_hh (4H, H), db_ih (4H), db_hh (4H): +=, each may be NULL
void nn_lstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *scratch,
                      const float *dout, const float *dhfinal, const float *dcfinal, const float *saved,
                      const float *inp, const uint32_t *len, const float *w_ih, const float *w_hh, size_t B,
                      size_t T, size_t C, size_t H);

/* ==== Bi-LSTM (DSIN: H_k = forward (+) backward, an element-wise SUM) ====
 * Direction 0 runs an LSTM over steps 0 .. len[b]-1 of each sequence;
 * direction 1 runs a second LSTM over steps len[b]-1 .. 0 (each sequence
 * reversed within its own length, not the padded length T). Its output for
 * step t is the state it reached after consuming inp[b, t] (PyTorch's
 * reverse-direction convention). Then
 *   out[b, t] = h_fwd[b, t] + h_bwd[b, t]   for t < len[b], 0 otherwise
 * (a SUM of the directions, not PyTorch's concatenation: out is (B, T, H)).
 * Final states: hfinal[0, b] = the forward state after step len[b]-1,
 * hfinal[1, b] = the reverse state after step 0 (its last step), i.e.
 * PyTorch's h_n layout (num_directions, B, H); likewise cfinal.
 *
 * Weights, direction-major: w_ih (2, 4H, C), w_hh (2, 4H, H), b_ih (2, 4H),
 * b_hh (2, 4H). From a PyTorch nn.LSTM(C, H, bidirectional=True,
 * batch_first=True) state_dict:
 *   w_ih = stack(weight_ih_l0, weight_ih_l0_reverse)
 *   w_hh = stack(weight_hh_l0, weight_hh_l0_reverse)
 *   b_ih = stack(bias_ih_l0,   bias_ih_l0_reverse)
 *   b_hh = stack(bias_hh_l0,   bias_hh_l0_reverse)
 * and PyTorch's output (B, T, 2H) gives out = output[..., :H] + output[..., H:].
 * Gradients use the same layout. Saved: two LSTM saves (direction 0 then 1);
 * the reverse direction's saved tensors are indexed by time t, not by its
 * step count.
 */
size_t nn_bilstm_saved_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_bilstm_scratch_floats(size_t B, size_t T, size_t C, size_t H);
size_t nn_bilstm_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H);

// out (B, T, H) or NULL, hfinal (2, B, H) or NULL, cfinal (2, B, H) or NULL;
// inp (B, T, C), len (B); w_ih (2, 4H, C), w_hh (2, 4H, H), b_ih (2, 4H), b_hh (2, 4H)
void nn_bilstm_forward(float *out, float *hfinal, float *cfinal, float *saved, float *scratch, const float *inp,
                       const uint32_t *len, const float *w_ih, const float *w_hh, const float *b_ih,
                       const float *b_hh, size_t B, size_t T, size_t C, size_t H);
// dout (B, T, H), dhfinal (2, B, H), dcfinal (2, B, H): each may be NULL;
// dinp (B, T, C), dw_ih (2, 4H, C), dw_hh (2, 4H, H), db_ih (2, 4H), db_hh (2, 4H): +=, each may be NULL
void nn_bilstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *scratch,
                        const float *dout, const float *dhfinal, const float *dcfinal, const float *saved,
                        const float *inp, const uint32_t *len, const float *w_ih, const float *w_hh, size_t B,
                        size_t T, size_t C, size_t H);

#endif
