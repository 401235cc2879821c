/*
 * nn_rnn.c: DIEN's GRU / AUGRU, PyTorch's LSTM and DSIN's Bi-LSTM (see
 * nn_rnn.h for the equations, the masking rules and the buffer contracts).
 *
 * How it is organized: two cores, gru_forward/gru_backward (AUGRU with
 * att = NULL is the GRU) and lstm_forward/lstm_backward (a `rev` flag runs a
 * sequence backwards within its own length; Bi-LSTM is two calls). Each core:
 *   1. one GEMM projects all B*T input rows onto the gates (into saved),
 *   2. a loop over steps s does one recurrent GEMM on the compact running
 *      state (B, H) in scratch, then the element-wise gate math per (b, j),
 *   3. backward walks the steps in reverse, leaves the pre-activation
 *      gradients of all steps in scratch, and ends with GEMMs over all B*T
 *      rows for dinp, dW and dU / dW_hh.
 * The GEMMs go through mm_nt / mm_nn / mm_tn: cblas_sgemm, or plain loops
 * when nn_reference_forced(). The gate activations go through
 * nn_sigmoid_forward / nn_tanh_forward over each row's gates (vectorized, or
 * libm when nn_reference_forced()); the rest of the element-wise math has a
 * single version.
 *
 * Invariants: the running state is compact (row b of a (B, H) buffer), the
 * saved tensors are indexed by time t (b, t); step s of sequence b is time
 * t = s (forward) or len[b]-1-s (reverse). Rows b >= n_active(s) are padded at
 * step s, so the recurrent GEMM skips them; padded rows inside it produce
 * values that are ignored (forward) or zero (backward).
 */
#include "models/nn_rnn.h"

#include "models/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- GEMM helpers (row-major, contiguous) ---- */

/* C (M, N) = or += A (M, K) @ B (N, K)^T */
static void mm_nt(float *c, const float *a, const float *b, size_t m, size_t n, size_t k, int acc)
{
    if (m == 0 || n == 0) return;
    if (k == 0) {
        if (!acc) memset(c, 0, m * n * sizeof *c);
        return;
    }
    if (!nn_reference_forced()) {
        /* beta = 0 costs OpenBLAS a slow scaling pass over C; memset and beta = 1 is cheaper */
        if (!acc) memset(c, 0, m * n * sizeof *c);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)k,
                    1.0f, c, (int)n);
        return;
    }
    for (size_t i = 0; i < m; i++) {
        const float *ai = a + i * k;
        for (size_t j = 0; j < n; j++) {
            const float *bj = b + j * k;
            float s = 0.0f;
            for (size_t p = 0; p < k; p++) s += ai[p] * bj[p];
            c[i * n + j] = acc ? c[i * n + j] + s : s;
        }
    }
}

/* C (M, N) += A (M, K) @ B (K, N) */
static void mm_nn(float *c, const float *a, const float *b, size_t m, size_t n, size_t k)
{
    if (m == 0 || n == 0 || k == 0) return;
    if (!nn_reference_forced()) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)n,
                    1.0f, c, (int)n);
        return;
    }
    for (size_t i = 0; i < m; i++) {
        float *ci = c + i * n;
        for (size_t p = 0; p < k; p++) {
            float aip = a[i * k + p];
            const float *bp = b + p * n;
            for (size_t j = 0; j < n; j++) ci[j] += aip * bp[j];
        }
    }
}

/* C (M, N) += A (K, M)^T @ B (K, N) */
static void mm_tn(float *c, const float *a, const float *b, size_t m, size_t n, size_t k)
{
    if (m == 0 || n == 0 || k == 0) return;
    if (!nn_reference_forced()) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)m, b, (int)n,
                    1.0f, c, (int)n);
        return;
    }
    for (size_t p = 0; p < k; p++) {
        const float *ap = a + p * m;
        const float *bp = b + p * n;
        for (size_t i = 0; i < m; i++) {
            float api = ap[i];
            float *ci = c + i * n;
            for (size_t j = 0; j < n; j++) ci[j] += api * bp[j];
        }
    }
}

/* ---- small helpers ---- */

/* One past the last sequence with a step s (len[b] > s); 0 when none. */
static size_t n_active(const uint32_t *len, size_t B, size_t s)
{
    size_t n = 0;
    for (size_t b = 0; b < B; b++)
        if ((size_t)len[b] > s) n = b + 1;
    return n;
}

/* Time index of step s of sequence b (s < len). */
static size_t time_of(size_t s, size_t l, int rev)
{
    return rev ? l - 1 - s : s;
}

// x (R, N) += broadcast v (N)
static void add_rows(float *x, const float *v, size_t r, size_t n)
{
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < n; j++) x[i * n + j] += v[j];
}

// v (N) += column sums of x (R, N)
static void colsum_add(float *v, const float *x, size_t r, size_t n)
{
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < n; j++) v[j] += x[i * n + j];
}

/* ================= GRU / AUGRU ================= */

size_t nn_gru_saved_floats(size_t B, size_t T, size_t C, size_t H)
{
    (void)C;
    return B * T * 5 * H; /* gates (B,T,3H), uh (B,T,H), hprev (B,T,H) */
}

size_t nn_gru_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    (void)T, (void)C;
    return B * 3 * H + B * H; /* rec (B,3H), h (B,H) */
}

size_t nn_gru_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    size_t fwd = nn_gru_forward_scratch_floats(B, T, C, H);
    size_t bwd = 2 * B * T * 3 * H + B * 3 * H + B * H;     /* dxp, drec_all (B,T,3H), drec (B,3H), dh (B,H) */
    return fwd > bwd ? fwd : bwd;
}

size_t nn_augru_saved_floats(size_t B, size_t T, size_t C, size_t H)
{
    return nn_gru_saved_floats(B, T, C, H);
}

size_t nn_augru_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    return nn_gru_scratch_floats(B, T, C, H);
}

size_t nn_augru_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    return nn_gru_forward_scratch_floats(B, T, C, H);
}

/* att (B, T) or NULL (the plain GRU: a = 1) */
static void gru_forward(float *out, float *hfinal, float *saved, float *scratch, const float *inp, const float *att,
                        const uint32_t *len, const float *w, const float *u, const float *bias, size_t B, size_t T,
                        size_t C, size_t H)
{
    const size_t G = 3 * H;
    float *gates = saved;                 // (B, T, 3H): projections, then [u, r, h~]
    float *uh = gates + B * T * G;        // (B, T, H)
    float *hprev = uh + B * T * H;        // (B, T, H)
    float *rec = scratch;                 // (B, 3H): U h_{t-1} of this step
    float *h = rec + B * G;               // (B, H): running state

    mm_nt(gates, inp, w, B * T, G, C, 0);
    add_rows(gates, bias, B * T, G);
    memset(h, 0, B * H * sizeof *h);

    for (size_t t = 0; t < T; t++) {
        size_t na = n_active(len, B, t);
        if (na == 0) break;
        mm_nt(rec, h, u, na, G, H, 0);
        for (size_t b = 0; b < na; b++) {
            if (t >= (size_t)len[b]) continue;
            size_t bt = b * T + t;
            float *g = gates + bt * G;
            const float *rb = rec + b * G;
            float *hb = h + b * H;
            float a = att ? att[bt] : 1.0f;
            memcpy(hprev + bt * H, hb, H * sizeof *hb);
            /* u, r = sigmoid(x W + b + h U), h~ = tanh(x W_h + b_h + r * (h U_h)), in place in g */
            for (size_t j = 0; j < 2 * H; j++) g[j] += rb[j];
            nn_sigmoid_forward(g, g, 2 * H);
            for (size_t j = 0; j < H; j++) {
                float uhj = rb[2 * H + j];
                g[2 * H + j] += g[H + j] * uhj;
                uh[bt * H + j] = uhj;
            }
            nn_tanh_forward(g + 2 * H, g + 2 * H, H);
            for (size_t j = 0; j < H; j++) {
                float ue = a * g[j];
                float hn = (1.0f - ue) * hb[j] + ue * g[2 * H + j];
                hb[j] = hn;
                if (out) out[bt * H + j] = hn;
            }
        }
    }
    /* padded steps: zeros everywhere (out and every saved tensor) */
    for (size_t b = 0; b < B; b++) {
        size_t l = len[b], np = T - l;
        memset(gates + (b * T + l) * G, 0, np * G * sizeof *gates);
        memset(uh + (b * T + l) * H, 0, np * H * sizeof *uh);
        memset(hprev + (b * T + l) * H, 0, np * H * sizeof *hprev);
        if (out) memset(out + (b * T + l) * H, 0, np * H * sizeof *out);
    }
    if (hfinal) memcpy(hfinal, h, B * H * sizeof *h);
}

static void gru_backward(float *dinp, float *datt, float *dw, float *du, float *db, float *scratch,
                         const float *dout, const float *dhfinal, const float *saved, const float *inp,
                         const float *att, const uint32_t *len, const float *w, const float *u, size_t B, size_t T,
                         size_t C, size_t H)
{
    const size_t G = 3 * H;
    const float *gates = saved;              // (B, T, 3H) [u, r, h~]
    const float *uh = gates + B * T * G;     // (B, T, H)
    const float *hprev = uh + B * T * H;     // (B, T, H)
    float *dxp = scratch;                    // (B, T, 3H): d(input projection + bias)
    float *drec_all = dxp + B * T * G;       // (B, T, 3H): d(U h_{t-1}) per step
    float *drec = drec_all + B * T * G;      // (B, 3H): this step's rows of drec_all, compact
    float *dh = drec + B * G;                // (B, H): dL/dh of the running state

    if (dhfinal)
        memcpy(dh, dhfinal, B * H * sizeof *dh);
    else
        memset(dh, 0, B * H * sizeof *dh);
    memset(dxp, 0, 2 * B * T * G * sizeof *dxp); /* padded steps stay 0 */

    for (size_t t = T; t-- > 0;) {
        size_t na = n_active(len, B, t);
        if (na == 0) continue;
        for (size_t b = 0; b < na; b++) {
            float *dr_b = drec + b * G;
            if (t >= (size_t)len[b]) {
                memset(dr_b, 0, G * sizeof *dr_b); /* state carried: dh unchanged */
                continue;
            }
            size_t bt = b * T + t;
            const float *g = gates + bt * G;
            const float *hp = hprev + bt * H;
            const float *uhb = uh + bt * H;
            float *dx = dxp + bt * G;
            float *dhb = dh + b * H;
            float a = att ? att[bt] : 1.0f;
            float da = 0.0f;
            for (size_t j = 0; j < H; j++) {
                float d = dhb[j] + (dout ? dout[bt * H + j] : 0.0f);
                float uu = g[j], rr = g[H + j], hh = g[2 * H + j];
                float ue = a * uu;
                float due = d * (hh - hp[j]);
                float dph = d * ue * (1.0f - hh * hh);
                float dpu = due * a * uu * (1.0f - uu);
                float dpr = dph * uhb[j] * rr * (1.0f - rr);
                da += due * uu;
                dx[j] = dpu;
                dx[H + j] = dpr;
                dx[2 * H + j] = dph;
                dr_b[j] = dpu;
                dr_b[H + j] = dpr;
                dr_b[2 * H + j] = dph * rr;
                dhb[j] = d * (1.0f - ue); /* direct path; the GEMM below adds U^T drec */
            }
            memcpy(drec_all + bt * G, dr_b, G * sizeof *dr_b);
            if (datt) datt[bt] += da;
        }
        mm_nn(dh, drec, u, na, H, G);
    }

    if (dinp) mm_nn(dinp, dxp, w, B * T, C, G);
    if (dw) mm_tn(dw, dxp, inp, G, C, B * T);
    if (du) mm_tn(du, drec_all, hprev, G, H, B * T);
    if (db) colsum_add(db, dxp, B * T, G);
}

void nn_gru_forward(float *out, float *hfinal, float *saved, float *scratch, const float *inp, const uint32_t *len,
                    const float *w, const float *u, const float *b, size_t B, size_t T, size_t C, size_t H)
{
    gru_forward(out, hfinal, saved, scratch, inp, NULL, len, w, u, b, B, T, C, H);
}

void nn_gru_backward(float *dinp, float *dw, float *du, float *db, float *scratch, const float *dout,
                     const float *dhfinal, const float *saved, const float *inp, const uint32_t *len, const float *w,
                     const float *u, size_t B, size_t T, size_t C, size_t H)
{
    gru_backward(dinp, NULL, dw, du, db, scratch, dout, dhfinal, saved, inp, NULL, len, w, u, B, T, C, H);
}

void nn_augru_forward(float *out, float *hfinal, float *saved, float *scratch, const float *inp, const float *att,
                      const uint32_t *len, const float *w, const float *u, const float *b, size_t B, size_t T,
                      size_t C, size_t H)
{
    gru_forward(out, hfinal, saved, scratch, inp, att, len, w, u, b, B, T, C, H);
}

void nn_augru_backward(float *dinp, float *datt, float *dw, float *du, float *db, float *scratch,
                       const float *dout, const float *dhfinal, const float *saved, const float *inp,
                       const float *att, const uint32_t *len, const float *w, const float *u, size_t B, size_t T,
                       size_t C, size_t H)
{
    gru_backward(dinp, datt, dw, du, db, scratch, dout, dhfinal, saved, inp, att, len, w, u, B, T, C, H);
}

/* ================= LSTM / Bi-LSTM ================= */

size_t nn_lstm_saved_floats(size_t B, size_t T, size_t C, size_t H)
{
    (void)C;
    return B * T * 7 * H; /* gates (B,T,4H), hprev, cprev, tc (B,T,H) */
}

size_t nn_lstm_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    (void)T, (void)C;
    return B * 4 * H + 2 * B * H; /* rec (B,4H), h, c (B,H) */
}

size_t nn_lstm_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    size_t fwd = nn_lstm_forward_scratch_floats(B, T, C, H);
    size_t bwd = B * T * 4 * H + B * 4 * H + 2 * B * H; /* dxp (B,T,4H), drec (B,4H), dh, dc (B,H) */
    return fwd > bwd ? fwd : bwd;
}

size_t nn_bilstm_saved_floats(size_t B, size_t T, size_t C, size_t H)
{
    return 2 * nn_lstm_saved_floats(B, T, C, H);
}

size_t nn_bilstm_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    return nn_lstm_scratch_floats(B, T, C, H); /* the directions run one after the other */
}

size_t nn_bilstm_forward_scratch_floats(size_t B, size_t T, size_t C, size_t H)
{
    return nn_lstm_forward_scratch_floats(B, T, C, H);
}

/* rev: run each sequence from len-1 down to 0. add_out: out += instead of =
 * at valid steps (padded steps of out are left as they are). */
static void lstm_forward(float *out, int add_out, float *hfinal, float *cfinal, float *saved, float *scratch,
                         const float *inp, const uint32_t *len, int rev, const float *w_ih, const float *w_hh,
                         const float *b_ih, const float *b_hh, size_t B, size_t T, size_t C, size_t H)
{
    const size_t G = 4 * H;
    float *gates = saved;              // (B, T, 4H): projections, then [i, f, g, o]
    float *hprev = gates + B * T * G;  // (B, T, H)
    float *cprev = hprev + B * T * H;  // (B, T, H)
    float *tc = cprev + B * T * H;     // (B, T, H): tanh(c_t)
    float *rec = scratch;              // (B, 4H): w_hh h of this step
    float *h = rec + B * G;            // (B, H)
    float *c = h + B * H;              // (B, H)

    mm_nt(gates, inp, w_ih, B * T, G, C, 0);
    add_rows(gates, b_ih, B * T, G);
    add_rows(gates, b_hh, B * T, G);
    memset(h, 0, 2 * B * H * sizeof *h);

    for (size_t s = 0; s < T; s++) {
        size_t na = n_active(len, B, s);
        if (na == 0) break;
        mm_nt(rec, h, w_hh, na, G, H, 0);
        for (size_t b = 0; b < na; b++) {
            size_t l = len[b];
            if (s >= l) continue;
            size_t bt = b * T + time_of(s, l, rev);
            float *g = gates + bt * G;
            const float *rb = rec + b * G;
            float *hb = h + b * H, *cb = c + b * H;
            memcpy(hprev + bt * H, hb, H * sizeof *hb);
            memcpy(cprev + bt * H, cb, H * sizeof *cb);
            /* [i, f, g, o] in place in g: sigmoid, sigmoid, tanh, sigmoid of x W_ih + b + h W_hh */
            for (size_t j = 0; j < G; j++) g[j] += rb[j];
            nn_sigmoid_forward(g, g, 2 * H);
            nn_tanh_forward(g + 2 * H, g + 2 * H, H);
            nn_sigmoid_forward(g + 3 * H, g + 3 * H, H);
            float *tcb = tc + bt * H;
            for (size_t j = 0; j < H; j++) {
                cb[j] = g[H + j] * cb[j] + g[j] * g[2 * H + j];
                tcb[j] = cb[j];
            }
            nn_tanh_forward(tcb, tcb, H);
            for (size_t j = 0; j < H; j++) {
                float hn = g[3 * H + j] * tcb[j];
                hb[j] = hn;
                if (out) out[bt * H + j] = add_out ? out[bt * H + j] + hn : hn;
            }
        }
    }
    for (size_t b = 0; b < B; b++) {
        size_t l = len[b], np = T - l;
        memset(gates + (b * T + l) * G, 0, np * G * sizeof *gates);
        memset(hprev + (b * T + l) * H, 0, np * H * sizeof *hprev);
        memset(cprev + (b * T + l) * H, 0, np * H * sizeof *cprev);
        memset(tc + (b * T + l) * H, 0, np * H * sizeof *tc);
        if (out && !add_out) memset(out + (b * T + l) * H, 0, np * H * sizeof *out);
    }
    if (hfinal) memcpy(hfinal, h, B * H * sizeof *h);
    if (cfinal) memcpy(cfinal, c, B * H * sizeof *c);
}

static void lstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *scratch,
                          const float *dout, const float *dhfinal, const float *dcfinal, const float *saved,
                          const float *inp, const uint32_t *len, int rev, const float *w_ih, const float *w_hh,
                          size_t B, size_t T, size_t C, size_t H)
{
    const size_t G = 4 * H;
    const float *gates = saved;              // (B, T, 4H) [i, f, g, o]
    const float *hprev = gates + B * T * G;  // (B, T, H)
    const float *cprev = hprev + B * T * H;  // (B, T, H)
    const float *tc = cprev + B * T * H;     // (B, T, H)
    float *dxp = scratch;                    // (B, T, 4H): d(gate pre-activations), also d(w_hh h)
    float *drec = dxp + B * T * G;           // (B, 4H): this step's rows of dxp, compact
    float *dh = drec + B * G;                // (B, H)
    float *dc = dh + B * H;                  // (B, H)

    if (dhfinal)
        memcpy(dh, dhfinal, B * H * sizeof *dh);
    else
        memset(dh, 0, B * H * sizeof *dh);
    if (dcfinal)
        memcpy(dc, dcfinal, B * H * sizeof *dc);
    else
        memset(dc, 0, B * H * sizeof *dc);
    memset(dxp, 0, B * T * G * sizeof *dxp);

    for (size_t s = T; s-- > 0;) {
        size_t na = n_active(len, B, s);
        if (na == 0) continue;
        for (size_t b = 0; b < na; b++) {
            size_t l = len[b];
            float *dr_b = drec + b * G;
            if (s >= l) {
                memset(dr_b, 0, G * sizeof *dr_b);
                continue;
            }
            size_t bt = b * T + time_of(s, l, rev);
            const float *g = gates + bt * G;
            const float *cp = cprev + bt * H;
            const float *tcb = tc + bt * H;
            float *dhb = dh + b * H, *dcb = dc + b * H;
            for (size_t j = 0; j < H; j++) {
                float d = dhb[j] + (dout ? dout[bt * H + j] : 0.0f);
                float ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
                float t = tcb[j];
                float dcn = dcb[j] + d * og * (1.0f - t * t);
                dr_b[j] = dcn * gg * ig * (1.0f - ig);
                dr_b[H + j] = dcn * cp[j] * fg * (1.0f - fg);
                dr_b[2 * H + j] = dcn * ig * (1.0f - gg * gg);
                dr_b[3 * H + j] = d * t * og * (1.0f - og);
                dcb[j] = dcn * fg;
                dhb[j] = 0.0f; /* the GEMM below sets it to w_hh^T drec */
            }
            memcpy(dxp + bt * G, dr_b, G * sizeof *dr_b);
        }
        mm_nn(dh, drec, w_hh, na, H, G);
    }

    if (dinp) mm_nn(dinp, dxp, w_ih, B * T, C, G);
    if (dw_ih) mm_tn(dw_ih, dxp, inp, G, C, B * T);
    if (dw_hh) mm_tn(dw_hh, dxp, hprev, G, H, B * T);
    if (db_ih) colsum_add(db_ih, dxp, B * T, G);
    if (db_hh) colsum_add(db_hh, dxp, B * T, G);
}

void nn_lstm_forward(float *out, float *hfinal, float *cfinal, float *saved, float *scratch, const float *inp,
                     const uint32_t *len, const float *w_ih, const float *w_hh, const float *b_ih,
                     const float *b_hh, size_t B, size_t T, size_t C, size_t H)
{
    lstm_forward(out, 0, hfinal, cfinal, saved, scratch, inp, len, 0, w_ih, w_hh, b_ih, b_hh, B, T, C, H);
}

void nn_lstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *scratch,
                      const float *dout, const float *dhfinal, const float *dcfinal, const float *saved,
                      const float *inp, const uint32_t *len, const float *w_ih, const float *w_hh, size_t B,
                      size_t T, size_t C, size_t H)
{
    lstm_backward(dinp, dw_ih, dw_hh, db_ih, db_hh, scratch, dout, dhfinal, dcfinal, saved, inp, len, 0, w_ih,
                  w_hh, B, T, C, H);
}

/* p + d * n, or NULL when p is NULL (one direction's slice of a (2, ...) tensor) */
static float *dir_of(float *p, size_t d, size_t n)
{
    return p ? p + d * n : NULL;
}

static const float *dir_of_c(const float *p, size_t d, size_t n)
{
    return p ? p + d * n : NULL;
}

void nn_bilstm_forward(float *out, float *hfinal, float *cfinal, float *saved, float *scratch, const float *inp,
                       const uint32_t *len, const float *w_ih, const float *w_hh, const float *b_ih,
                       const float *b_hh, size_t B, size_t T, size_t C, size_t H)
{
    const size_t G = 4 * H, ns = nn_lstm_saved_floats(B, T, C, H);
    for (size_t d = 0; d < 2; d++)
        lstm_forward(out, (int)d, dir_of(hfinal, d, B * H), dir_of(cfinal, d, B * H), saved + d * ns, scratch, inp,
                     len, (int)d, w_ih + d * G * C, w_hh + d * G * H, b_ih + d * G, b_hh + d * G, B, T, C, H);
}

void nn_bilstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, float *scratch,
                        const float *dout, const float *dhfinal, const float *dcfinal, const float *saved,
                        const float *inp, const uint32_t *len, const float *w_ih, const float *w_hh, size_t B,
                        size_t T, size_t C, size_t H)
{
    const size_t G = 4 * H, ns = nn_lstm_saved_floats(B, T, C, H);
    /* out = h_fwd + h_bwd: dout reaches both directions unchanged */
    for (size_t d = 0; d < 2; d++)
        lstm_backward(dinp, dir_of(dw_ih, d, G * C), dir_of(dw_hh, d, G * H), dir_of(db_ih, d, G),
                      dir_of(db_hh, d, G), scratch, dout, dir_of_c(dhfinal, d, B * H), dir_of_c(dcfinal, d, B * H),
                      saved + d * ns, inp, len, (int)d, w_ih + d * G * C, w_hh + d * G * H, B, T, C, H);
}
