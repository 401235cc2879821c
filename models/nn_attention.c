/*
 * nn_attention.c: the transformer encoder block of nn_attention.h (see it
 * for the equations, the masking rules and the buffer contracts).
 *
 * How it is organized: the valid rows of the padded batch are packed into R
 * = sum(len) contiguous rows (sequence n's rows are [off[n], off[n] +
 * len[n]), off the prefix sums of the clamped lengths, recomputed by each
 * call from len). On the packed rows:
 *   forward   qkv = linear(x); per (sequence, head) the L x L scores,
 *             softmax and weighted sum into ctx; r1 = x + linear(ctx);
 *             y1 = LN1(r1); h = linear1(y1), a = relu(h); r2 = y1 + linear2(a);
 *             out = LN2(r2), written straight into the padded rows of out.
 *   backward  the same in reverse; the attention core walks one query row at
 *             a time with a T-float temporary.
 * The linear layers go through nn_linear_* (OpenBLAS, or its plain C
 * reference when nn_reference_forced()); everything else has one version.
 *
 * Invariants: padded rows are never read (inp, dout) nor written (dinp);
 * out's padded rows are set to 0. Every packed row of saved that backward
 * reads was written by the forward on the same lengths.
 */
#include "models/nn_attention.h"

#include "models/nn.h"

#include <math.h>
#include <string.h>

/* ---- the layout of saved ---- */

typedef struct enc_saved {
    float *x, *qkv, *att, *ctx, *r1, *y1, *r2, *mean1, *rstd1, *mean2, *rstd2, *h, *a;
} enc_saved;

static enc_saved saved_layout(float *s, size_t N, size_t T, size_t C, size_t F, size_t NH)
{
    const size_t R = N * T;
    enc_saved v;
    v.x = s;
    v.qkv = v.x + R * C;
    v.att = v.qkv + R * 3 * C;
    v.ctx = v.att + N * NH * T * T;
    v.r1 = v.ctx + R * C;
    v.y1 = v.r1 + R * C;
    v.r2 = v.y1 + R * C;
    v.mean1 = v.r2 + R * C;
    v.rstd1 = v.mean1 + R;
    v.mean2 = v.rstd1 + R;
    v.rstd2 = v.mean2 + R;
    v.h = v.rstd2 + R;
    v.a = v.h + R * F;
    return v;
}

size_t nn_encoder_saved_floats(size_t N, size_t T, size_t C, size_t F, size_t NH)
{
    const size_t R = N * T;
    return R * C * 8 + N * NH * T * T + 4 * R + 2 * R * F;
}

size_t nn_encoder_scratch_floats(size_t N, size_t T, size_t C, size_t F, size_t NH)
{
    (void)NH;
    const size_t R = N * T;
    return 6 * R * C + R * F + T;
}

static size_t clamp_len(uint32_t l, size_t T)
{
    return l < T ? (size_t)l : T;
}

/* ---- forward ---- */

/* Scores, softmax and context of one sequence's L packed rows, every head. */
static void attend_forward(float *ctx, float *att, const float *qkv, size_t L, size_t T, size_t C, size_t NH)
{
    const size_t D = C / NH, C3 = 3 * C;
    const float scale = (float)(1.0 / sqrt((double)D));
    for (size_t hd = 0; hd < NH; hd++) {
        float *ph = att + hd * T * T; // (T, T), the first L rows and columns used
        for (size_t i = 0; i < L; i++) {
            const float *q = qkv + i * C3 + hd * D;
            float *p = ph + i * T;
            float mx = -INFINITY;
            for (size_t j = 0; j < L; j++) {
                const float *k = qkv + j * C3 + C + hd * D;
                float s = 0.0f;
                for (size_t e = 0; e < D; e++)
                    s += q[e] * k[e];
                p[j] = s * scale;
                mx = p[j] > mx ? p[j] : mx;
            }
            double sum = 0.0;
            for (size_t j = 0; j < L; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            const float inv = (float)(1.0 / sum);
            float *c = ctx + i * C + hd * D;
            memset(c, 0, D * sizeof *c);
            for (size_t j = 0; j < L; j++) {
                p[j] *= inv;
                const float *v = qkv + j * C3 + 2 * C + hd * D;
                for (size_t e = 0; e < D; e++)
                    c[e] += p[j] * v[e];
            }
        }
    }
}

void nn_encoder_forward(float *out, float *saved, float *scratch, const float *inp, const uint32_t *len,
                        const nn_encoder_weights *w, size_t N, size_t T, size_t C, size_t F, size_t NH)
{
    (void)scratch;
    if (N == 0 || T == 0)
        return;
    enc_saved s = saved_layout(saved, N, T, C, F, NH);
    /* pack the valid rows */
    size_t R = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t L = clamp_len(len[n], T);
        memcpy(s.x + R * C, inp + n * T * C, L * C * sizeof *inp);
        R += L;
    }
    if (R == 0) {
        memset(out, 0, N * T * C * sizeof *out);
        return;
    }
    // qkv (R, 3C) = x (R, C) @ in_w^T + in_b
    nn_linear_forward(s.qkv, s.x, w->in_w, w->in_b, R, C, 3 * C);
    size_t off = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t L = clamp_len(len[n], T);
        attend_forward(s.ctx + off * C, s.att + n * NH * T * T, s.qkv + off * 3 * C, L, T, C, NH);
        off += L;
    }
    // r1 = x + out_proj(ctx); y1 = LN1(r1)
    nn_linear_forward(s.r1, s.ctx, w->out_w, w->out_b, R, C, C);
    for (size_t i = 0; i < R * C; i++)
        s.r1[i] += s.x[i];
    nn_layernorm_forward(s.y1, s.mean1, s.rstd1, s.r1, w->n1_w, w->n1_b, NN_ENCODER_LN_EPS, R, C);
    // a = relu(linear1(y1)); r2 = y1 + linear2(a)
    nn_linear_forward(s.h, s.y1, w->l1_w, w->l1_b, R, C, F);
    nn_relu_forward(s.a, s.h, R * F);
    nn_linear_forward(s.r2, s.a, w->l2_w, w->l2_b, R, F, C);
    for (size_t i = 0; i < R * C; i++)
        s.r2[i] += s.y1[i];
    // out = LN2(r2) at the valid rows, 0 at the padded ones
    off = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t L = clamp_len(len[n], T);
        float *o = out + n * T * C;
        nn_layernorm_forward(o, s.mean2 + off, s.rstd2 + off, s.r2 + off * C, w->n2_w, w->n2_b, NN_ENCODER_LN_EPS,
                             L, C);
        memset(o + L * C, 0, (T - L) * C * sizeof *o);
        off += L;
    }
}

/* ---- backward ---- */

/* Gradients of one sequence's attention core: dqkv (L, 3C) += from dctx (L, C). */
static void attend_backward(float *dqkv, float *dp, const float *dctx, const float *att, const float *qkv, size_t L,
                            size_t T, size_t C, size_t NH)
{
    const size_t D = C / NH, C3 = 3 * C;
    const float scale = (float)(1.0 / sqrt((double)D));
    for (size_t hd = 0; hd < NH; hd++) {
        const float *ph = att + hd * T * T;
        for (size_t i = 0; i < L; i++) {
            const float *p = ph + i * T;
            const float *dc = dctx + i * C + hd * D;
            // dp_j = dctx_i . v_j; dv_j += p_ij dctx_i
            double sum = 0.0;
            for (size_t j = 0; j < L; j++) {
                const float *v = qkv + j * C3 + 2 * C + hd * D;
                float *dv = dqkv + j * C3 + 2 * C + hd * D;
                float d = 0.0f;
                for (size_t e = 0; e < D; e++) {
                    d += dc[e] * v[e];
                    dv[e] += p[j] * dc[e];
                }
                dp[j] = d;
                sum += (double)p[j] * d;
            }
            // ds_j = p_ij (dp_j - sum); dq_i += scale ds_j k_j; dk_j += scale ds_j q_i
            const float sf = (float)sum;
            const float *q = qkv + i * C3 + hd * D;
            float *dq = dqkv + i * C3 + hd * D;
            for (size_t j = 0; j < L; j++) {
                const float ds = p[j] * (dp[j] - sf) * scale;
                const float *k = qkv + j * C3 + C + hd * D;
                float *dk = dqkv + j * C3 + C + hd * D;
                for (size_t e = 0; e < D; e++) {
                    dq[e] += ds * k[e];
                    dk[e] += ds * q[e];
                }
            }
        }
    }
}

void nn_encoder_backward(float *dinp, const nn_encoder_grads *g, float *scratch, const float *dout,
                         const float *saved, const uint32_t *len, const nn_encoder_weights *w, size_t N, size_t T,
                         size_t C, size_t F, size_t NH)
{
    static const nn_encoder_grads none;
    if (N == 0 || T == 0)
        return;
    if (g == NULL)
        g = &none;
    enc_saved s = saved_layout((float *)saved, N, T, C, F, NH); // read only below
    size_t R = 0;
    for (size_t n = 0; n < N; n++)
        R += clamp_len(len[n], T);
    if (R == 0)
        return;
    const size_t NT = N * T;
    float *da = scratch;        // (R, C): dr2, later dctx
    float *dy1 = da + NT * C;   // (R, C)
    float *dx = dy1 + NT * C;   // (R, C): dr1, later dx
    float *dqkv = dx + NT * C;  // (R, 3C)
    float *dh = dqkv + NT * 3 * C; // (R, F)
    float *dp = dh + NT * F;    // (T)

    // LN2: dr2 from the valid rows of dout
    memset(da, 0, R * C * sizeof *da);
    size_t off = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t L = clamp_len(len[n], T);
        nn_layernorm_backward(da + off * C, g->n2_w, g->n2_b, dout + n * T * C, s.r2 + off * C, w->n2_w,
                              s.mean2 + off, s.rstd2 + off, L, C);
        off += L;
    }
    // r2 = y1 + linear2(relu(linear1(y1)))
    memcpy(dy1, da, R * C * sizeof *dy1);
    memset(dh, 0, R * F * sizeof *dh);
    nn_linear_backward(dh, g->l2_w, g->l2_b, da, s.a, w->l2_w, R, F, C);
    for (size_t i = 0; i < R * F; i++)
        dh[i] = s.h[i] > 0.0f ? dh[i] : 0.0f;
    nn_linear_backward(dy1, g->l1_w, g->l1_b, dh, s.y1, w->l1_w, R, C, F);
    // LN1: dr1; r1 = x + out_proj(ctx)
    memset(dx, 0, R * C * sizeof *dx);
    nn_layernorm_backward(dx, g->n1_w, g->n1_b, dy1, s.r1, w->n1_w, s.mean1, s.rstd1, R, C);
    float *dctx = da;
    memset(dctx, 0, R * C * sizeof *dctx);
    nn_linear_backward(dctx, g->out_w, g->out_b, dx, s.ctx, w->out_w, R, C, C);
    // the attention core, then the input projection (dx already holds the residual's dr1)
    memset(dqkv, 0, R * 3 * C * sizeof *dqkv);
    off = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t L = clamp_len(len[n], T);
        attend_backward(dqkv + off * 3 * C, dp, dctx + off * C, s.att + n * NH * T * T, s.qkv + off * 3 * C, L, T, C,
                        NH);
        off += L;
    }
    nn_linear_backward(dx, g->in_w, g->in_b, dqkv, s.x, w->in_w, R, C, 3 * C);
    if (dinp == NULL)
        return;
    off = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t L = clamp_len(len[n], T);
        float *di = dinp + n * T * C;
        const float *d = dx + off * C;
        for (size_t i = 0; i < L * C; i++)
            di[i] += d[i];
        off += L;
    }
}
