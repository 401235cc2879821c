/*
 * nn_basic.c: the basic numerical kernels of models/nn.h: linear (OpenBLAS
 * and a plain C reference), embedding with an out-of-vocabulary row,
 * sigmoid / tanh / ReLU / PReLU, Dice, masked softmax, layer normalization
 * and binary cross-entropy with logits.
 *
 * What it is not: a tensor library. No allocation, no shapes checked, no
 * errors: the callers (models/) size every buffer and pass valid arguments.
 *
 * Invariants:
 *   - Forward kernels overwrite their outputs; backward kernels add (+=)
 *     into gradient buffers, and skip a gradient whose pointer is NULL.
 *   - Batch statistics (Dice, layer norm, the BCE mean, softmax sums) are
 *     accumulated in double; elementwise math stays in float.
 *   - The only BLAS use is linear; its reference path is a plain C loop
 *     taken when nn_reference_forced() is set.
 *   - Channel-wise reductions over (N, C) walk the rows in order and keep
 *     per-channel accumulators for a block of NN_BLK channels on the stack,
 *     so the inner loops are contiguous and nothing is allocated.
 */
#include "models/nn.h"
#include "models/nn_vmath.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Channels per stack block in the channel-wise reductions (Dice). */
#define NN_BLK 64

/* ---- switches ----
 * A process-wide switch, meant for tests and benchmarks: set it before any
 * thread runs kernels (it is a plain int, read without synchronization). */
static int g_reference;
static int g_env_read;

void nn_force_reference(int on)
{
    g_reference = on != 0;
}

int nn_reference_forced(void)
{
    return g_reference;
}

void nn_init_from_env(void)
{
    if (g_env_read)
        return;
    g_env_read = 1;
    const char *v = getenv("LSIM_NN_REFERENCE");
    if (v != NULL && v[0] != '\0')
        g_reference = strcmp(v, "0") != 0;
}

/* ---- linear ---- */

/* cblas takes int dimensions; larger problems take the reference path. */
static int blas_ok(size_t n, size_t c, size_t oc)
{
    return n <= INT_MAX && c <= INT_MAX && oc <= INT_MAX;
}

/* Dot product with 8 independent partial sums, so that the compiler can keep
 * them in one vector register (a float reduction is otherwise sequential). */
static float dot_f32(const float *a, const float *b, size_t n);

float nn_dot(const float *a, const float *b, size_t n)
{
    return dot_f32(a, b, n);
}

static float dot_f32(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (size_t j = 0; j < 8; j++)
            acc[j] += a[k + j] * b[k + j];
    float s = 0.0f;
    for (; k < n; k++)
        s += a[k] * b[k];
    return s + (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])));
}

static void linear_forward_ref(float *out, const float *inp, const float *w, const float *b, size_t n, size_t c,
                               size_t oc)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = inp + i * c; // x (C)
        float *y = out + i * oc;      // y (OC)
        for (size_t o = 0; o < oc; o++)
            y[o] = (b != NULL ? b[o] : 0.0f) + dot_f32(x, w + o * c, c);
    }
}

void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, size_t n, size_t c,
                       size_t oc)
{
    if (n == 0 || oc == 0)
        return;
    if (g_reference || c == 0 || !blas_ok(n, c, oc)) {
        linear_forward_ref(out, inp, w, b, n, c, oc);
        return;
    }
    // out (N, OC) = b broadcast (or 0), then out += inp (N, C) @ w^T (C, OC). beta = 0
    // would cost OpenBLAS a slow scaling pass over out; memset and beta = 1 is cheaper.
    if (b != NULL)
        for (size_t i = 0; i < n; i++)
            memcpy(out + i * oc, b, oc * sizeof *b);
    else
        memset(out, 0, n * oc * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)oc, (int)c, 1.0f, inp, (int)c, w, (int)c,
                1.0f, out, (int)oc);
}

void nn_linear_forward_acc(float *out, const float *inp, const float *w, size_t n, size_t c, size_t oc)
{
    if (n == 0 || oc == 0 || c == 0)
        return;
    if (g_reference || !blas_ok(n, c, oc)) {
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < oc; o++)
                out[i * oc + o] += dot_f32(inp + i * c, w + o * c, c);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)oc, (int)c, 1.0f, inp, (int)c, w, (int)c,
                1.0f, out, (int)oc);
}

static void linear_backward_ref(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                size_t n, size_t c, size_t oc)
{
    // dinp[i, :] += sum_o dout[i, o] w[o, :]
    if (dinp != NULL)
        for (size_t i = 0; i < n; i++) {
            float *dx = dinp + i * c;
            const float *g = dout + i * oc;
            for (size_t o = 0; o < oc; o++) {
                const float d = g[o];
                const float *wr = w + o * c;
                for (size_t k = 0; k < c; k++)
                    dx[k] += d * wr[k];
            }
        }
    // dw[o, :] += sum_i dout[i, o] inp[i, :]
    if (dw != NULL)
        for (size_t o = 0; o < oc; o++) {
            float *dwr = dw + o * c;
            for (size_t i = 0; i < n; i++) {
                const float d = dout[i * oc + o];
                const float *x = inp + i * c;
                for (size_t k = 0; k < c; k++)
                    dwr[k] += d * x[k];
            }
        }
}

void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        size_t n, size_t c, size_t oc)
{
    if (n == 0 || oc == 0)
        return;
    // db (OC) += column sums of dout (N, OC): the same loop on both paths
    if (db != NULL)
        for (size_t i = 0; i < n; i++) {
            const float *g = dout + i * oc;
            for (size_t o = 0; o < oc; o++)
                db[o] += g[o];
        }
    if (c == 0)
        return;
    if (g_reference || !blas_ok(n, c, oc)) {
        linear_backward_ref(dinp, dw, dout, inp, w, n, c, oc);
        return;
    }
    // dinp (N, C) += dout (N, OC) @ w (OC, C)
    if (dinp != NULL)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)oc, 1.0f, dout, (int)oc, w,
                    (int)c, 1.0f, dinp, (int)c);
    // dw (OC, C) += dout^T (OC, N) @ inp (N, C)
    if (dw != NULL)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)oc, (int)c, (int)n, 1.0f, dout, (int)oc, inp,
                    (int)c, 1.0f, dw, (int)c);
}

/* ---- embedding ---- */

void nn_embedding_forward(float *out, const uint32_t *ids, const float *table, size_t n, size_t vocab, size_t c)
{
    for (size_t i = 0; i < n; i++) {
        const size_t row = ids[i] < vocab ? (size_t)ids[i] : vocab;
        memcpy(out + i * c, table + row * c, c * sizeof *table);
    }
}

void nn_embedding_backward(float *dtable, const float *dout, const uint32_t *ids, size_t n, size_t vocab, size_t c)
{
    if (dtable == NULL)
        return;
    // in id order of appearance: repeated ids accumulate
    for (size_t i = 0; i < n; i++) {
        const size_t row = ids[i] < vocab ? (size_t)ids[i] : vocab;
        float *dt = dtable + row * c;
        const float *g = dout + i * c;
        for (size_t k = 0; k < c; k++)
            dt[k] += g[k];
    }
}

/* ---- elementwise activations ---- */

static inline float sigmoidf(float x)
{
    return vm_sigmoid_ref(x);
}

void nn_sigmoid_forward(float *out, const float *inp, size_t n)
{
    vm_sigmoid(out, inp, n);
}

void nn_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    if (dinp == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void nn_tanh_forward(float *out, const float *inp, size_t n)
{
    vm_tanh(out, inp, n);
}

void nn_tanh_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    if (dinp == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void nn_relu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void nn_relu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
    if (dinp == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

void nn_prelu_forward(float *out, const float *inp, const float *alpha, size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = inp + i * c;
        float *y = out + i * c;
        for (size_t k = 0; k < c; k++)
            y[k] = x[k] > 0.0f ? x[k] : alpha[k] * x[k];
    }
}

/* As PyTorch: at x == 0 the input gradient is alpha * dout. */
void nn_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *inp, const float *alpha, size_t n,
                       size_t c)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = inp + i * c;
        const float *g = dout + i * c;
        if (dinp != NULL) {
            float *dx = dinp + i * c;
            for (size_t k = 0; k < c; k++)
                dx[k] += x[k] > 0.0f ? g[k] : alpha[k] * g[k];
        }
        if (dalpha != NULL)
            for (size_t k = 0; k < c; k++)
                dalpha[k] += x[k] > 0.0f ? 0.0f : x[k] * g[k];
    }
}

/* ---- Dice ----
 * out = x (alpha + p (1 - alpha)), p = sigmoid(xh), xh = (x - mean) rstd,
 * rstd = 1 / sqrt(var + eps). */

void nn_dice_forward(float *out, float *mean, float *var, float *run_mean, float *run_var, const float *inp,
                     const float *alpha, float momentum, int train, size_t n, size_t c)
{
    for (size_t c0 = 0; c0 < c; c0 += NN_BLK) {
        const size_t cb = c - c0 < NN_BLK ? c - c0 : NN_BLK;
        float mu[NN_BLK], rs[NN_BLK]; // per-channel mean and rstd of this block
        if (train) {
            double s[NN_BLK] = {0}, m[NN_BLK], ss[NN_BLK] = {0};
            for (size_t i = 0; i < n; i++) {
                const float *x = inp + i * c + c0;
                for (size_t k = 0; k < cb; k++)
                    s[k] += x[k];
            }
            for (size_t k = 0; k < cb; k++)
                m[k] = n > 0 ? s[k] / (double)n : 0.0;
            for (size_t i = 0; i < n; i++) {
                const float *x = inp + i * c + c0;
                for (size_t k = 0; k < cb; k++) {
                    const double d = x[k] - m[k];
                    ss[k] += d * d;
                }
            }
            for (size_t k = 0; k < cb; k++) {
                const size_t j = c0 + k;
                const double v = n > 0 ? ss[k] / (double)n : 0.0;
                /* PyTorch refuses n == 1 in training; the unbiased variance
                 * then falls back to the biased one rather than dividing by 0 */
                const double vu = n > 1 ? ss[k] / (double)(n - 1) : v;
                mean[j] = (float)m[k];
                var[j] = (float)v;
                run_mean[j] = (float)((1.0 - (double)momentum) * run_mean[j] + (double)momentum * m[k]);
                run_var[j] = (float)((1.0 - (double)momentum) * run_var[j] + (double)momentum * vu);
                mu[k] = (float)m[k];
                rs[k] = (float)(1.0 / sqrt(v + (double)NN_DICE_EPS));
            }
        } else {
            for (size_t k = 0; k < cb; k++) {
                mu[k] = run_mean[c0 + k];
                rs[k] = (float)(1.0 / sqrt((double)run_var[c0 + k] + (double)NN_DICE_EPS));
            }
        }
        const float *a = alpha + c0;
        for (size_t i = 0; i < n; i++) {
            const float *x = inp + i * c + c0;
            float *y = out + i * c + c0, p[NN_BLK];
            for (size_t k = 0; k < cb; k++)
                p[k] = (x[k] - mu[k]) * rs[k];
            vm_sigmoid(p, p, cb);
            for (size_t k = 0; k < cb; k++)
                y[k] = x[k] * (a[k] + p[k] * (1.0f - a[k]));
        }
    }
}

/* With g = dout * x (1 - alpha) p (1 - p) the gradient at xh, batch-norm
 * backward gives dx = rstd (g - mean(g) - xh mean(g xh)); the direct term is
 * dout (alpha + p (1 - alpha)); dalpha = sum dout x (1 - p). */
void nn_dice_backward(float *dinp, float *dalpha, const float *dout, const float *inp, const float *alpha,
                      const float *mean, const float *var, size_t n, size_t c)
{
    if (n == 0 || (dinp == NULL && dalpha == NULL))
        return;
    for (size_t c0 = 0; c0 < c; c0 += NN_BLK) {
        const size_t cb = c - c0 < NN_BLK ? c - c0 : NN_BLK;
        const float *a = alpha + c0;
        float mu[NN_BLK], rs[NN_BLK];
        double sg[NN_BLK] = {0}, sgx[NN_BLK] = {0}, sa[NN_BLK] = {0};
        for (size_t k = 0; k < cb; k++) {
            mu[k] = mean[c0 + k];
            rs[k] = (float)(1.0 / sqrt((double)var[c0 + k] + (double)NN_DICE_EPS));
        }
        for (size_t i = 0; i < n; i++) {
            const float *x = inp + i * c + c0;
            const float *d = dout + i * c + c0;
            for (size_t k = 0; k < cb; k++) {
                const float xh = (x[k] - mu[k]) * rs[k];
                const float p = sigmoidf(xh);
                const float dx = d[k] * x[k];
                const float g = dx * (1.0f - a[k]) * p * (1.0f - p);
                sg[k] += g;
                sgx[k] += (double)g * xh;
                sa[k] += dx * (1.0f - p);
            }
        }
        if (dalpha != NULL)
            for (size_t k = 0; k < cb; k++)
                dalpha[c0 + k] += (float)sa[k];
        if (dinp == NULL)
            continue;
        float mg[NN_BLK], mgx[NN_BLK];
        for (size_t k = 0; k < cb; k++) {
            mg[k] = (float)(sg[k] / (double)n);
            mgx[k] = (float)(sgx[k] / (double)n);
        }
        for (size_t i = 0; i < n; i++) {
            const float *x = inp + i * c + c0;
            const float *d = dout + i * c + c0;
            float *di = dinp + i * c + c0;
            for (size_t k = 0; k < cb; k++) {
                const float xh = (x[k] - mu[k]) * rs[k];
                const float p = sigmoidf(xh);
                const float g = d[k] * x[k] * (1.0f - a[k]) * p * (1.0f - p);
                di[k] += d[k] * (a[k] + p * (1.0f - a[k])) + rs[k] * (g - mg[k] - xh * mgx[k]);
            }
        }
    }
}

/* ---- masked softmax ---- */

void nn_softmax_masked_forward(float *out, const float *inp, const uint32_t *len, size_t rows, size_t t)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = inp + r * t;
        float *y = out + r * t;
        const size_t l = len[r] < t ? (size_t)len[r] : t;
        if (l == 0) {
            memset(y, 0, t * sizeof *y);
            continue;
        }
        float mx = x[0];
        for (size_t k = 1; k < l; k++)
            mx = x[k] > mx ? x[k] : mx;
        double s = 0.0;
        for (size_t k = 0; k < l; k++) {
            y[k] = expf(x[k] - mx);
            s += y[k];
        }
        const float inv = (float)(1.0 / s);
        for (size_t k = 0; k < l; k++)
            y[k] *= inv;
        for (size_t k = l; k < t; k++)
            y[k] = 0.0f;
    }
}

/* dinp = out (dout - sum(out dout)) over the valid entries; padding gets
 * nothing added (its gradient is exactly 0). */
void nn_softmax_masked_backward(float *dinp, const float *dout, const float *out, const uint32_t *len, size_t rows,
                                size_t t)
{
    if (dinp == NULL)
        return;
    for (size_t r = 0; r < rows; r++) {
        const float *y = out + r * t;
        const float *g = dout + r * t;
        float *dx = dinp + r * t;
        const size_t l = len[r] < t ? (size_t)len[r] : t;
        double s = 0.0;
        for (size_t k = 0; k < l; k++)
            s += (double)y[k] * g[k];
        const float sf = (float)s;
        for (size_t k = 0; k < l; k++)
            dx[k] += y[k] * (g[k] - sf);
    }
}

/* ---- layer normalization ---- */

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *gamma,
                          const float *beta, float eps, size_t n, size_t c)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = inp + i * c;
        float *y = out + i * c;
        double s = 0.0;
        for (size_t k = 0; k < c; k++)
            s += x[k];
        const double m = c > 0 ? s / (double)c : 0.0;
        double ss = 0.0;
        for (size_t k = 0; k < c; k++) {
            const double d = x[k] - m;
            ss += d * d;
        }
        const double v = c > 0 ? ss / (double)c : 0.0; // biased, as PyTorch
        const float mf = (float)m;
        const float rf = (float)(1.0 / sqrt(v + (double)eps));
        for (size_t k = 0; k < c; k++)
            y[k] = (x[k] - mf) * rf * gamma[k] + beta[k];
        mean[i] = mf;
        rstd[i] = rf;
    }
}

/* With g = dout gamma: dx = rstd (g - mean(g) - xh mean(g xh)). */
void nn_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                           const float *gamma, const float *mean, const float *rstd, size_t n, size_t c)
{
    if (c == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const float *x = inp + i * c;
        const float *d = dout + i * c;
        const float m = mean[i], rs = rstd[i];
        if (dbeta != NULL)
            for (size_t k = 0; k < c; k++)
                dbeta[k] += d[k];
        if (dgamma != NULL)
            for (size_t k = 0; k < c; k++)
                dgamma[k] += d[k] * (x[k] - m) * rs;
        if (dinp == NULL)
            continue;
        double sg = 0.0, sgx = 0.0;
        for (size_t k = 0; k < c; k++) {
            const float g = d[k] * gamma[k];
            sg += g;
            sgx += (double)g * ((x[k] - m) * rs);
        }
        const float mg = (float)(sg / (double)c), mgx = (float)(sgx / (double)c);
        float *dx = dinp + i * c;
        for (size_t k = 0; k < c; k++)
            dx[k] += rs * (d[k] * gamma[k] - mg - (x[k] - m) * rs * mgx);
    }
}

/* ---- binary cross-entropy with logits ---- */

/* max(x, 0) - x y + log1p(exp(-|x|)): no overflow for any finite x. */
float nn_bce_logits_forward(const float *logits, const float *labels, size_t n)
{
    if (n == 0)
        return 0.0f;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double x = logits[i];
        s += (x > 0.0 ? x : 0.0) - x * labels[i] + log1p(exp(-fabs(x)));
    }
    return (float)(s / (double)n);
}

void nn_bce_logits_backward(float *dlogits, const float *logits, const float *labels, float scale, size_t n)
{
    if (dlogits == NULL || n == 0)
        return;
    const float k = scale / (float)n;
    for (size_t i = 0; i < n; i++)
        dlogits[i] += (sigmoidf(logits[i]) - labels[i]) * k;
}
